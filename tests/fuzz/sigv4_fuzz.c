/*
 * Fuzzes sigv4_sign (proxy/aws/sigv4.c): an HTTP request as the test suite writes one (request
 * line, header lines, a blank line, the body), signed with the suite's credentials at its
 * X-Amz-Date (20150830T123600Z without one), as an ordinary service and as S3 with
 * X-Amz-Content-Sha256.
 */
#include "config.h"

#include <strings.h>

#include "fuzz.h"
#include "sigv4.h"

#define FUZZ_HEADERS (SIGV4_MAX_HEADERS + 2) /* one over the signer's cap, to reach it */

/* What a signed request must look like, whatever went in. */
static void check_signed(const struct sigv4_signed *sg, size_t nadded)
{
    static const char prefix[] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/";
    const char *uri, *end;
    size_t i;

    FUZZ_CHECK(sg->sg_canonical_request != NULL && sg->sg_string_to_sign != NULL);
    FUZZ_CHECK(strncmp(sg->sg_authorization, prefix, strlen(prefix)) == 0);
    FUZZ_CHECK(strncmp(sg->sg_authorization + strlen(prefix), sg->sg_amz_date, 8) == 0);
    FUZZ_CHECK(strchr(sg->sg_authorization, '\n') == NULL);
    FUZZ_CHECK(strlen(sg->sg_signature) == SIGV4_HEX_LEN);
    for (i = 0; i < SIGV4_HEX_LEN; i++)
        FUZZ_CHECK(strchr("0123456789abcdef", sg->sg_signature[i]) != NULL);
    FUZZ_CHECK(strstr(sg->sg_signed_headers, "host") != NULL);
    FUZZ_CHECK(sg->sg_nadded == nadded);
    /* The canonical URI is encoded: one line starting with '/', no space in it. */
    uri = strchr(sg->sg_canonical_request, '\n') + 1;
    end = strchr(uri, '\n');
    FUZZ_CHECK(end != NULL && uri[0] == '/');
    FUZZ_CHECK(memchr(uri, ' ', (size_t)(end - uri)) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned modes[] = {SIGV4_NONE, SIGV4_S3_PATH | SIGV4_CONTENT_SHA256};
    struct sigv4_header hs[FUZZ_HEADERS];
    struct sigv4_request rq = {0};
    struct sigv4_credentials cr = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL,
                                   NULL};
    struct sigv4_scope sc = {"us-east-1", "service", "20150830T123600Z", 0};
    char *text = fuzz_cstring(data, size), *p = text, *nl, *sp1, *sp2, *q, *end;
    char payload[SIGV4_HEX_LEN + 1];
    const char *last = NULL;
    size_t n = 0, m;

    end = text + strlen(text);
    nl = strchr(p, '\n');
    if (nl == NULL)
        goto out;
    *nl = '\0';
    sp1 = strchr(p, ' ');
    sp2 = strrchr(p, ' ');
    if (sp1 == NULL || sp1 == sp2)
        goto out;
    *sp1 = *sp2 = '\0';
    rq.sr_method = p;
    rq.sr_path = sp1 + 1;
    q = strchr(sp1 + 1, '?');
    if (q != NULL) {
        *q = '\0';
        rq.sr_query = q + 1;
    }
    for (p = nl + 1; p < end && *p != '\n' && n < FUZZ_HEADERS;) {
        char *line = p, *colon;

        nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = end;
        }
        if ((line[0] == ' ' || line[0] == '\t') && last != NULL) {
            hs[n].sh_name = last;
            hs[n++].sh_value = line;
            continue;
        }
        colon = strchr(line, ':');
        if (colon == NULL)
            goto out;
        *colon = '\0';
        last = line;
        /* As in tests/unit/test_sigv4.c: the signer adds these two itself. */
        if (strcasecmp(line, "X-Amz-Date") == 0) {
            sc.sc_amz_date = colon + 1;
            continue;
        }
        if (strcasecmp(line, "X-Amz-Security-Token") == 0) {
            cr.cr_session_token = colon + 1;
            continue;
        }
        hs[n].sh_name = line;
        hs[n++].sh_value = colon + 1;
    }
    if (p < end && *p == '\n')
        p++;
    sigv4_payload_hash(p, (size_t)(end - p), payload);
    rq.sr_headers = hs;
    rq.sr_nheaders = n;
    rq.sr_payload_hash = payload;
    for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        struct sigv4_signed sg;
        char *err = NULL;

        rq.sr_flags = modes[m];
        if (sigv4_sign(&rq, &cr, &sc, &sg, &err) == 0) {
            FUZZ_CHECK(err == NULL);
            check_signed(&sg, 1 + (cr.cr_session_token != NULL && cr.cr_session_token[0]) +
                                  ((modes[m] & SIGV4_CONTENT_SHA256) != 0));
        } else {
            FUZZ_CHECK(err != NULL && sg.sg_authorization == NULL);
        }
        free(err);
        sigv4_signed_free(&sg);
    }
out:
    free(text);
    return 0;
}
