/* Fuzzes manifest_parse (proxy/oci/manifest.c): a manifest or index body from an upstream. */
#include "config.h"

#include "fuzz.h"
#include "manifest.h"
#include "oci.h"

#define CT_PREFIX "Content-Type: "

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t len = size;
    char *ct = NULL;
    struct manifest_info mi;
    const char *err = NULL;

    /* An input that starts with "Content-Type: <value>\n" gives the header the body came with;
     * otherwise the body came with none. */
    if (size > strlen(CT_PREFIX) && memcmp(data, CT_PREFIX, strlen(CT_PREFIX)) == 0) {
        const uint8_t *nl = memchr(data, '\n', size);

        if (nl != NULL) {
            size_t off = strlen(CT_PREFIX);

            ct = fuzz_cstring(data + off, (size_t)(nl - data) - off);
            body = (const char *)nl + 1;
            len = size - (size_t)(nl + 1 - data);
        }
    }
    if (manifest_parse(body, len, ct, &mi, &err) == 0) {
        FUZZ_CHECK(fuzz_terminated(mi.mi_media_type, sizeof(mi.mi_media_type)));
        FUZZ_CHECK(mi.mi_nrefs == 0 || mi.mi_refs != NULL);
        for (size_t i = 0; i < mi.mi_nrefs; i++) {
            const struct manifest_ref *r = &mi.mi_refs[i];

            FUZZ_CHECK(r->mr_kind >= MANIFEST_REF_CONFIG && r->mr_kind <= MANIFEST_REF_BLOB);
            FUZZ_CHECK(fuzz_terminated(r->mr_digest, sizeof(r->mr_digest)));
            FUZZ_CHECK(fuzz_terminated(r->mr_media_type, sizeof(r->mr_media_type)));
            FUZZ_CHECK(oci_digest_parse(r->mr_digest, strlen(r->mr_digest)) != OCI_DIGEST_NONE);
            FUZZ_CHECK(r->mr_size >= -1);
            if (r->mr_kind == MANIFEST_REF_MANIFEST)
                FUZZ_CHECK(mi.mi_is_index);
        }
    } else {
        FUZZ_CHECK(err != NULL);
    }
    manifest_info_free(&mi);
    free(ct);
    return 0;
}
