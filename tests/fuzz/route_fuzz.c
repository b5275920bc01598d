/* Fuzzes route_parse (proxy/oci/route.c): a request URI straight off the wire. */
#include "config.h"

#include "fuzz.h"
#include "oci.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = fuzz_cstring(data, size);
    struct route_req rq;
    enum oci_error err = OCI_ERR_UPSTREAM;
    const char *why = NULL;

    if (route_parse(uri, &rq, &err, &why) == 0) {
        /* What the header promises of a request it accepts. */
        FUZZ_CHECK(rq.rq_kind >= ROUTE_BASE && rq.rq_kind <= ROUTE_REFERRERS);
        FUZZ_CHECK(fuzz_terminated(rq.rq_name, sizeof(rq.rq_name)));
        FUZZ_CHECK(fuzz_terminated(rq.rq_ref, sizeof(rq.rq_ref)));
        FUZZ_CHECK(fuzz_terminated(rq.rq_ns, sizeof(rq.rq_ns)));
        FUZZ_CHECK(fuzz_terminated(rq.rq_last, sizeof(rq.rq_last)));
        FUZZ_CHECK(fuzz_terminated(rq.rq_artifact_type, sizeof(rq.rq_artifact_type)));
        FUZZ_CHECK(rq.rq_n >= -1 && rq.rq_n <= 10000);
        if (rq.rq_kind != ROUTE_BASE)
            FUZZ_CHECK(oci_name_valid(rq.rq_name, strlen(rq.rq_name)));
        if (rq.rq_kind == ROUTE_BLOB || rq.rq_kind == ROUTE_REFERRERS)
            FUZZ_CHECK(rq.rq_ref_is_digest);
        if (rq.rq_ref_is_digest)
            FUZZ_CHECK(oci_digest_parse(rq.rq_ref, strlen(rq.rq_ref)) != OCI_DIGEST_NONE);
        else if (rq.rq_kind == ROUTE_MANIFEST)
            FUZZ_CHECK(oci_tag_valid(rq.rq_ref, strlen(rq.rq_ref)));
        if (rq.rq_last[0] != '\0')
            FUZZ_CHECK(oci_tag_valid(rq.rq_last, strlen(rq.rq_last)));
        for (const char *p = rq.rq_ns; *p != '\0'; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    } else {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(oci_error_status(err) >= 400);
    }
    free(uri);
    return 0;
}
