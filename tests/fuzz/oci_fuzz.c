/* Fuzzes the OCI grammar (proxy/oci/oci.c): repository names, tags, digests, error bodies. */
#include "config.h"

#include "fuzz.h"
#include "oci.h"

static int is_lower_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The length-taking checks get the raw bytes: no NUL after them, so ASan sees an overread. */
    const char *s = (const char *)data;
    enum oci_digest_alg alg = oci_digest_parse(s, size);
    char *msg;
    char *body;

    if (oci_name_valid(s, size)) {
        FUZZ_CHECK(size > 0 && size <= OCI_NAME_MAX);
        FUZZ_CHECK(memchr(s, '\0', size) == NULL);
        FUZZ_CHECK(s[0] != '/' && s[size - 1] != '/');
    }
    if (oci_tag_valid(s, size)) {
        FUZZ_CHECK(size > 0 && size <= OCI_TAG_MAX);
        FUZZ_CHECK(memchr(s, ':', size) == NULL && memchr(s, '/', size) == NULL);
    }
    if (alg == OCI_DIGEST_SHA256)
        FUZZ_CHECK(size == 7 + 64 && memcmp(s, "sha256:", 7) == 0 && is_lower_hex(data + 7, 64));
    else if (alg == OCI_DIGEST_SHA512)
        FUZZ_CHECK(size == 7 + 128 && memcmp(s, "sha512:", 7) == 0 && is_lower_hex(data + 7, 128));
    else
        FUZZ_CHECK(alg == OCI_DIGEST_NONE);

    /* The error body quotes what a client sent: any bytes must come out as a JSON string. */
    msg = fuzz_cstring(data, size);
    body = oci_error_body((enum oci_error)(size % (OCI_ERR_METHOD + 1)), "fuzz", msg);
    FUZZ_CHECK(body != NULL);
    free(body);
    free(msg);
    return 0;
}
