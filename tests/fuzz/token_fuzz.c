/* Fuzzes auth_parse_token_response (proxy/upstream/auth.c): a token endpoint's JSON body. */
#include "config.h"

#include "fuzz.h"
#include "auth.h"

/* A fixed clock (2023-11-14T22:13:20Z), so a crash replays the same way. */
#define FUZZ_NOW INT64_C(1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = NULL;
    int64_t expires_at = 0;

    /* The raw bytes, with no NUL after them: the parser takes a length. */
    if (auth_parse_token_response((const char *)data, size, FUZZ_NOW, &token, &expires_at) == 0) {
        FUZZ_CHECK(token != NULL && token[0] != '\0');
        /* issued_at may only move the start back from now, and expires_in is clamped to
         * AUTH_EXPIRES_MAX (366 days, auth.c). */
        FUZZ_CHECK(expires_at <= FUZZ_NOW + INT64_C(366) * 24 * 3600);
    } else {
        FUZZ_CHECK(token == NULL);
    }
    free(token);
    return 0;
}
