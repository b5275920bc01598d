/*
 * Fuzzes the credential chain's parsers (proxy/aws/aws_creds.c), whose input comes from the
 * network (IMDS, the container endpoint, STS) or from files: the first byte picks the parser,
 * the rest is the text. Each either fails with a message or fills credentials whose strings
 * are terminated within their fields; a failure never leaves a secret in the message.
 */
#include "config.h"

#include "aws_creds.h"
#include "fuzz.h"

/* Every field of <ac> is a terminated string within its array. */
static void check_terminated(const struct aws_credentials *ac)
{
    FUZZ_CHECK(memchr(ac->ac_access_key, '\0', sizeof(ac->ac_access_key)) != NULL);
    FUZZ_CHECK(memchr(ac->ac_secret, '\0', sizeof(ac->ac_secret)) != NULL);
    FUZZ_CHECK(memchr(ac->ac_token, '\0', sizeof(ac->ac_token)) != NULL);
    FUZZ_CHECK(memchr(ac->ac_source, '\0', sizeof(ac->ac_source)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aws_credentials ac;
    char *text, *err = NULL;
    int r = 0;
    int64_t t;

    if (size == 0)
        return 0;
    text = fuzz_cstring(data + 1, size - 1);
    memset(&ac, 0, sizeof(ac));
    switch (data[0] % 5) {
    case 0:
        r = aws_parse_shared_file(text, "default", 0, &ac, &err);
        FUZZ_CHECK(r >= -1 && r <= 1);
        (void)aws_profile_exists(text, "default", 0);
        (void)aws_profile_unsupported(text, "default", 0);
        break;
    case 1:
        r = aws_parse_shared_file(text, "prod", 1, &ac, &err);
        FUZZ_CHECK(r >= -1 && r <= 1);
        (void)aws_profile_exists(text, "prod", 1);
        (void)aws_profile_unsupported(text, "prod", 1);
        break;
    case 2: r = aws_parse_creds_json(text, strlen(text), &ac, &err); break;
    case 3: r = aws_parse_sts_web_identity(text, strlen(text), &ac, &err); break;
    case 4: r = aws_parse_iso8601(text, &t); break;
    }
    check_terminated(&ac);
    if (r == -1 && data[0] % 5 != 4) {
        FUZZ_CHECK(err != NULL);
        /* A secret that parsed never shows in the message. */
        if (ac.ac_secret[0] != '\0' && strlen(ac.ac_secret) >= 8)
            FUZZ_CHECK(strstr(err, ac.ac_secret) == NULL);
    }
    if (r == 0 && (data[0] % 5 == 2 || data[0] % 5 == 3))
        FUZZ_CHECK(ac.ac_access_key[0] != '\0' && ac.ac_secret[0] != '\0');
    free(err);
    free(text);
    return 0;
}
