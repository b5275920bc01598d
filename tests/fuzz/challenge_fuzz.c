/* Fuzzes auth_parse_challenge (proxy/upstream/auth.c): an upstream's WWW-Authenticate value. */
#include "config.h"

#include "fuzz.h"
#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = fuzz_cstring(data, size);
    struct auth_challenge ch;

    if (auth_parse_challenge(hdr, &ch) == 0) {
        FUZZ_CHECK(ch.ac_scheme == AUTH_BEARER || ch.ac_scheme == AUTH_BASIC);
        FUZZ_CHECK(fuzz_terminated(ch.ac_realm, sizeof(ch.ac_realm)));
        FUZZ_CHECK(fuzz_terminated(ch.ac_service, sizeof(ch.ac_service)));
        FUZZ_CHECK(fuzz_terminated(ch.ac_scope, sizeof(ch.ac_scope)));
        FUZZ_CHECK(fuzz_terminated(ch.ac_error, sizeof(ch.ac_error)));
        if (ch.ac_scheme == AUTH_BEARER)
            FUZZ_CHECK(ch.ac_realm[0] != '\0');
    }
    free(hdr);
    return 0;
}
