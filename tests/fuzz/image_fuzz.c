/* Fuzzes rules_map_image (policy/policy_image.c): an image name as an operator types it, or as
 * the admin socket's ?image= carries it. */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "oci.h"
#include "policy_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *hub_hosts[] = {"docker.io", "registry-1.docker.io"};
    static char *ecr_hosts[] = {"public.ecr.aws"};
    static char *local_hosts[] = {"localhost:5000"};
    static const struct rules_rule rules[] = {
        {"ecr-public", ecr_hosts, 1, 0, 0},
        {"docker-hub", hub_hosts, 2, 1, 1},
        {"mirrors/local", local_hosts, 1, 0, 0},
    };
    char *image = fuzz_cstring(data, size);
    struct rules_image out;
    char err[256];

    memset(err, 0, sizeof(err));
    if (rules_map_image(rules, 3, image, &out, err, sizeof(err)) == 0) {
        /* What the header promises of an image it maps. */
        FUZZ_CHECK(out.ri_rule < 3);
        FUZZ_CHECK(fuzz_terminated(out.ri_host, sizeof(out.ri_host)));
        FUZZ_CHECK(fuzz_terminated(out.ri_name, sizeof(out.ri_name)));
        FUZZ_CHECK(fuzz_terminated(out.ri_reference, sizeof(out.ri_reference)));
        FUZZ_CHECK(oci_name_valid(out.ri_name, strlen(out.ri_name)));
        if (out.ri_by_digest)
            FUZZ_CHECK(oci_digest_parse(out.ri_reference, strlen(out.ri_reference)) !=
                       OCI_DIGEST_NONE);
        else
            FUZZ_CHECK(oci_tag_valid(out.ri_reference, strlen(out.ri_reference)));
        if (out.ri_host[0] == '\0')
            FUZZ_CHECK(out.ri_rule == 1); /* no host: the default rule */
        if (out.ri_rule == 1 && strchr(out.ri_name, '/') == NULL)
            FUZZ_CHECK(0); /* library_prefix: never a one-segment name upstream */
    } else {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(fuzz_terminated(err, sizeof(err)));
    }
    free(image);
    return 0;
}
