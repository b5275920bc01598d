/*
 * Unit tests for proxy/aws/sigv4.c: every case of AWS's SigV4 test suite
 * (../shared/testdata/aws-sig-v4-test-suite, read from disk) signed and compared byte for byte,
 * then the signer's own rules: session token, UNSIGNED-PAYLOAD, the file-range hash, the
 * signing key's known answer, bad input.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"
#include "util.h"

/* The suite's credentials and scope (its README). */
#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_REGION "us-east-1"
#define SUITE_SERVICE "service"
#define SUITE_REL "tests/unit/data/aws-sig-v4-test-suite/aws-sig-v4-test-suite"
/* Leaf folders with a <name>.req: 22 at the top, 7 in normalize-path/, 2 in post-sts-token/. */
#define SUITE_CASES 31
#define SUITE_MAX_CASES 128
#define MAX_FIELDS 64

/*
 * Cases whose own files disagree: their .creq is the canonical form of their .req (with its
 * Content-Length), but their .sts hashes another canonical request (without Content-Length,
 * and for -parameters with "charset=utf8" where the .req has "utf-8"), so no signer can match
 * both. The test finds them by that mismatch, not by name, and then insists the list is this.
 */
static const char *const suite_inconsistent[] = {
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
};

/* A .req file parsed: borrowed pointers into one buffer. */
struct parsed_req {
    char *buf;
    const char *method, *path, *query;
    struct sigv4_header headers[MAX_FIELDS];
    size_t nheaders;
    const char *amz_date, *token;
    const char *body;
    size_t body_len;
};

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "%s: short read", path);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* $SIGV4_TEST_SUITE, which the Makefile exports (the copy under tests/unit/data), or
 * $TOP_SRCDIR/SUITE_REL when run by hand; missing is a failure, never a skip. */
static const char *suite_dir(void)
{
    static char dir[4096];
    const char *top = getenv("TOP_SRCDIR"), *over = getenv("SIGV4_TEST_SUITE");
    struct stat st;

    if (over != NULL && over[0] != '\0') {
        snprintf(dir, sizeof(dir), "%s", over);
    } else {
        cr_assert_not_null(top, "TOP_SRCDIR is not set (make check exports it)");
        snprintf(dir, sizeof(dir), "%s/%s", top, SUITE_REL);
    }
    cr_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "the SigV4 test suite is missing: %s",
              dir);
    return dir;
}

/* Every folder under <dir> (recursively) that holds <its name>.req, into <out> as paths. */
static void find_cases(const char *dir, char **out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    const char *base = strrchr(dir, '/') + 1;
    char path[4096];
    struct stat st;

    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s.req", dir, base);
    if (stat(path, &st) == 0) {
        cr_assert_lt(*n, SUITE_MAX_CASES);
        out[(*n)++] = strdup(dir);
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            find_cases(path, out, n);
    }
    closedir(d);
}

/*
 * Parse the HTTP request in <buf>: the request line (the target between the first and the last
 * space, so get-space's raw space stays in the path), header lines up to a blank line, the
 * body. A line starting with a space or tab continues the field above (obs-fold); the suite's
 * get-header-value-multiline canonicalizes each folded line as one more value of that name,
 * which is how it is handed over. X-Amz-Date gives the scope's date and X-Amz-Security-Token
 * the session token: the signer adds both itself.
 */
static void parse_req(const char *name, char *buf, size_t len, struct parsed_req *r)
{
    char *p = buf, *nl, *sp1, *sp2, *q;
    const char *last_name = NULL;

    memset(r, 0, sizeof(*r));
    r->buf = buf;
    nl = strchr(p, '\n');
    cr_assert_not_null(nl, "%s: no request line", name);
    *nl = '\0';
    sp1 = strchr(p, ' ');
    sp2 = strrchr(p, ' ');
    cr_assert(sp1 != NULL && sp2 != NULL && sp1 != sp2, "%s: bad request line", name);
    *sp1 = '\0';
    *sp2 = '\0';
    r->method = p;
    r->path = sp1 + 1;
    q = strchr(sp1 + 1, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    p = nl + 1;
    while (p < buf + len && *p != '\n') {
        char *colon, *line = p;

        nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = buf + len;
        }
        cr_assert_lt(r->nheaders, MAX_FIELDS, "%s: too many header lines", name);
        if (line[0] == ' ' || line[0] == '\t') {
            cr_assert_not_null(last_name, "%s: a continuation line first", name);
            r->headers[r->nheaders].sh_name = last_name;
            r->headers[r->nheaders++].sh_value = line;
            continue;
        }
        colon = strchr(line, ':');
        cr_assert_not_null(colon, "%s: a header line without ':'", name);
        *colon = '\0';
        last_name = line;
        if (strcasecmp(line, "X-Amz-Date") == 0) {
            r->amz_date = colon + 1;
            continue;
        }
        if (strcasecmp(line, "X-Amz-Security-Token") == 0) {
            r->token = colon + 1;
            continue;
        }
        r->headers[r->nheaders].sh_name = line;
        r->headers[r->nheaders++].sh_value = colon + 1;
    }
    if (p < buf + len && *p == '\n')
        p++;
    r->body = p;
    r->body_len = (size_t)(buf + len - p);
    cr_assert_not_null(r->amz_date, "%s: no X-Amz-Date", name);
}

/* The file <dir>/<base><ext>, which must exist. Caller frees. */
static char *case_file(const char *dir, const char *base, const char *ext, size_t *len)
{
    char path[4096];
    char *s;

    snprintf(path, sizeof(path), "%s/%s%s", dir, base, ext);
    s = read_all(path, len);
    cr_assert_not_null(s, "%s: %s", path, strerror(errno));
    return s;
}

static void sha256_hex(const char *s, size_t n, char out[SIGV4_HEX_LEN + 1])
{
    sigv4_payload_hash(s, n, out);
}

/* The value after "Signature=" in <authz>, or "". */
static const char *signature_of(const char *authz)
{
    const char *s = strstr(authz, "Signature=");

    return s != NULL ? s + strlen("Signature=") : "";
}

/* The Authorization line of a .sreq, into <out>. */
static void sreq_authorization(const char *name, const char *sreq, char *out, size_t size)
{
    const char *a = strstr(sreq, "\nAuthorization: ");
    const char *e;

    cr_assert_not_null(a, "%s: .sreq has no Authorization line", name);
    a += strlen("\nAuthorization: ");
    e = strchr(a, '\n');
    if (e == NULL)
        e = a + strlen(a);
    cr_assert_lt((size_t)(e - a), size);
    memcpy(out, a, (size_t)(e - a));
    out[e - a] = '\0';
}

/*
 * Sign one case and compare with its files. Returns 1 when the case's own files disagree
 * (.sts not the hash of .creq): then the canonical request must still match, and the suite's
 * .sts, signed with the suite's key, must give the suite's signature.
 */
static int run_case(const char *dir)
{
    const char *name = strrchr(dir, '/') + 1;
    struct parsed_req r;
    struct sigv4_request rq = {0};
    struct sigv4_credentials cr = {SUITE_KEY, SUITE_SECRET, NULL, NULL};
    struct sigv4_scope sc = {SUITE_REGION, SUITE_SERVICE, NULL, 0};
    struct sigv4_signed sg;
    char payload[SIGV4_HEX_LEN + 1], creq_hash[SIGV4_HEX_LEN + 1], authz_line[8192];
    char *req, *creq, *sts, *authz, *sreq, *err = NULL;
    size_t req_len, creq_len;
    int inconsistent;

    req = case_file(dir, name, ".req", &req_len);
    creq = case_file(dir, name, ".creq", &creq_len);
    sts = case_file(dir, name, ".sts", NULL);
    authz = case_file(dir, name, ".authz", NULL);
    sreq = case_file(dir, name, ".sreq", NULL);
    parse_req(name, req, req_len, &r);

    sigv4_payload_hash(r.body, r.body_len, payload);
    rq.sr_method = r.method;
    rq.sr_path = r.path;
    rq.sr_query = r.query;
    rq.sr_headers = r.headers;
    rq.sr_nheaders = r.nheaders;
    rq.sr_payload_hash = payload;
    cr.cr_session_token = r.token;
    sc.sc_amz_date = r.amz_date;
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), 0, "%s: sigv4_sign: %s", name,
                 err ? err : "?");

    cr_expect_str_eq(sg.sg_canonical_request, creq, "%s: canonical request\n%s\n-- want\n%s", name,
                     sg.sg_canonical_request, creq);
    sha256_hex(creq, creq_len, creq_hash);
    inconsistent = strcmp(strrchr(sts, '\n') + 1, creq_hash) != 0;
    sreq_authorization(name, sreq, authz_line, sizeof(authz_line));
    if (!inconsistent) {
        cr_expect_str_eq(sg.sg_string_to_sign, sts, "%s: string to sign\n%s\n-- want\n%s", name,
                         sg.sg_string_to_sign, sts);
        cr_expect_str_eq(sg.sg_authorization, authz, "%s: Authorization\n%s\n-- want\n%s", name,
                         sg.sg_authorization, authz);
        cr_expect_str_eq(sg.sg_authorization, authz_line, "%s: .sreq Authorization", name);
        cr_expect_str_eq(sg.sg_signature, signature_of(authz), "%s: signature", name);
    } else {
        unsigned char key[SIGV4_KEY_LEN], mac[SIGV4_KEY_LEN];
        unsigned int n = 0;
        char hex[SIGV4_HEX_LEN + 1];
        size_t i;

        cr_assert_eq(
            sigv4_signing_key(SUITE_SECRET, "20150830", SUITE_REGION, SUITE_SERVICE, key, NULL), 0);
        HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)sts, strlen(sts), mac, &n);
        for (i = 0; i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        cr_expect_str_eq(hex, signature_of(authz), "%s: the suite's .sts signed", name);
        cr_expect_str_eq(hex, signature_of(authz_line), "%s: the suite's .sts signed (.sreq)",
                         name);
    }
    sigv4_signed_free(&sg);
    free(req);
    free(creq);
    free(sts);
    free(authz);
    free(sreq);
    return inconsistent;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(sigv4_suite, every_case)
{
    char *cases[SUITE_MAX_CASES];
    const char *odd[SUITE_MAX_CASES];
    size_t n = 0, nodd = 0, i;

    find_cases(suite_dir(), cases, &n);
    cr_assert_geq(n, SUITE_CASES, "found %zu cases of the suite, want at least %d", n, SUITE_CASES);
    qsort(cases, n, sizeof(cases[0]), str_cmp);
    for (i = 0; i < n; i++) {
        cr_log_info("sigv4 suite: %s", strrchr(cases[i], '/') + 1);
        if (run_case(cases[i]))
            odd[nodd++] = strrchr(cases[i], '/') + 1;
    }
    cr_expect_eq(nodd, ARRAY_LEN(suite_inconsistent), "%zu cases whose .sts is not their .creq",
                 nodd);
    for (i = 0; i < nodd && i < ARRAY_LEN(suite_inconsistent); i++)
        cr_expect_str_eq(odd[i], suite_inconsistent[i], "an unexpected inconsistent case");
    for (i = 0; i < n; i++)
        free(cases[i]);
}

/* get-vanilla, as the suite has it: the base of the tests below. */
static const struct sigv4_header vanilla_headers[] = {{"Host", "example.amazonaws.com"}};
#define VANILLA_DATE "20150830T123600Z"
#define VANILLA_AUTHZ                                                                              \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "            \
    "SignedHeaders=host;x-amz-date, "                                                              \
    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static struct sigv4_request vanilla(const char *method)
{
    struct sigv4_request rq = {0};

    rq.sr_method = method;
    rq.sr_path = "/";
    rq.sr_headers = vanilla_headers;
    rq.sr_nheaders = 1;
    return rq;
}

static const struct sigv4_credentials suite_cr = {SUITE_KEY, SUITE_SECRET, NULL, NULL};
static const struct sigv4_scope suite_sc = {SUITE_REGION, SUITE_SERVICE, VANILLA_DATE, 0};

Test(sigv4, signing_key_known_answer)
{
    /* AWS's documented example ("Examples of how to derive a signing key"). */
    unsigned char key[SIGV4_KEY_LEN];
    char hex[SIGV4_HEX_LEN + 1], *err = NULL;
    size_t i;

    cr_assert_eq(sigv4_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam", key, &err), 0,
                 "%s", err ? err : "?");
    for (i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    cr_assert_str_eq(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    cr_assert_eq(sigv4_signing_key(SUITE_SECRET, "2012021", "us-east-1", "iam", key, &err), -1);
    cr_assert_not_null(err);
    free(err);
}

Test(sigv4, time_and_cached_key)
{
    /* 2015-08-30T12:36:00Z as a time_t, and a key the caller derived once. */
    struct sigv4_request rq = vanilla("GET");
    struct sigv4_scope sc = {SUITE_REGION, SUITE_SERVICE, NULL, 1440938160};
    unsigned char key[SIGV4_KEY_LEN];
    struct sigv4_credentials cr = {SUITE_KEY, NULL, NULL, key};
    struct sigv4_signed sg;
    char *err = NULL;

    cr_assert_eq(
        sigv4_signing_key(SUITE_SECRET, "20150830", SUITE_REGION, SUITE_SERVICE, key, NULL), 0);
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), 0, "%s", err ? err : "?");
    cr_assert_str_eq(sg.sg_amz_date, VANILLA_DATE);
    cr_assert_str_eq(sg.sg_authorization, VANILLA_AUTHZ);
    cr_assert_eq(sg.sg_nadded, 1);
    cr_assert_str_eq(sg.sg_added[0].sh_name, "X-Amz-Date");
    cr_assert_str_eq(sg.sg_added[0].sh_value, VANILLA_DATE);
    sigv4_signed_free(&sg);
}

Test(sigv4, session_token)
{
    /* post-vanilla with the suite's token gives post-sts-header-before's signature. */
    static const char token[] =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXm"
        "xfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy"
        "0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64l"
        "IZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    struct sigv4_request rq = vanilla("POST");
    struct sigv4_credentials cr = {SUITE_KEY, SUITE_SECRET, token, NULL};
    struct sigv4_header with_token[] = {{"Host", "example.amazonaws.com"},
                                        {"x-amz-security-token", token}};
    struct sigv4_signed sg;
    char *err = NULL;

    cr_assert_eq(sigv4_sign(&rq, &cr, &suite_sc, &sg, &err), 0, "%s", err ? err : "?");
    cr_assert_str_eq(sg.sg_signed_headers, "host;x-amz-date;x-amz-security-token");
    cr_assert_str_eq(sg.sg_signature,
                     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
    cr_assert_eq(sg.sg_nadded, 2);
    cr_assert_str_eq(sg.sg_added[1].sh_name, "X-Amz-Security-Token");
    cr_assert_str_eq(sg.sg_added[1].sh_value, token);
    cr_assert_neq(sg.sg_added[1].sh_value, token, "the token's value is the result's own copy");
    sigv4_signed_free(&sg);

    /* The token is the signer's to add: a caller's copy is refused, not doubled. */
    rq.sr_headers = with_token;
    rq.sr_nheaders = 2;
    cr_assert_eq(sigv4_sign(&rq, &cr, &suite_sc, &sg, &err), -1);
    cr_assert_not_null(err);
    cr_assert_null(strstr(err, token), "the error shows the token: %s", err);
    free(err);
    sigv4_signed_free(&sg);
}

Test(sigv4, unsigned_payload)
{
    struct sigv4_request rq = vanilla("PUT");
    struct sigv4_signed sg;
    char *err = NULL;
    const char *creq;

    rq.sr_payload_hash = SIGV4_UNSIGNED_PAYLOAD;
    cr_assert_eq(sigv4_sign(&rq, &suite_cr, &suite_sc, &sg, &err), 0, "%s", err ? err : "?");
    creq = sg.sg_canonical_request;
    cr_assert_str_eq(creq + strlen(creq) - strlen("\nUNSIGNED-PAYLOAD"), "\nUNSIGNED-PAYLOAD");
    cr_assert_eq(sg.sg_nadded, 1);
    sigv4_signed_free(&sg);

    /* Asked for, X-Amz-Content-Sha256 carries it and is signed. */
    rq.sr_flags = SIGV4_CONTENT_SHA256;
    cr_assert_eq(sigv4_sign(&rq, &suite_cr, &suite_sc, &sg, &err), 0, "%s", err ? err : "?");
    cr_assert_str_eq(sg.sg_canonical_request,
                     "PUT\n/\n\nhost:example.amazonaws.com\n"
                     "x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20150830T123600Z\n\n"
                     "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD");
    cr_assert_eq(sg.sg_nadded, 2);
    cr_assert_str_eq(sg.sg_added[1].sh_name, "X-Amz-Content-Sha256");
    cr_assert_str_eq(sg.sg_added[1].sh_value, SIGV4_UNSIGNED_PAYLOAD);
    sigv4_signed_free(&sg);

    /* Neither a hash nor UNSIGNED-PAYLOAD. */
    rq.sr_payload_hash = "unsigned-payload";
    cr_assert_eq(sigv4_sign(&rq, &suite_cr, &suite_sc, &sg, &err), -1);
    free(err);
}

Test(sigv4, payload_hash_fd_range)
{
    char path[256], mem[SIGV4_HEX_LEN + 1], fd_hex[SIGV4_HEX_LEN + 1], *err = NULL;
    const char *tmp = getenv("TMPDIR");
    size_t len = 300 * 1000, i;
    unsigned char *data = malloc(len);
    int fd;

    cr_assert_not_null(data);
    for (i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    snprintf(path, sizeof(path), "%s/ptc-sigv4-XXXXXX", tmp != NULL ? tmp : "/tmp");
    fd = mkstemp(path);
    cr_assert_neq(fd, -1);
    unlink(path);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    cr_assert_eq(lseek(fd, 17, SEEK_SET), 17);

    /* A range longer than the read buffer, off both ends. */
    sigv4_payload_hash(data + 1001, 200 * 1000, mem);
    cr_assert_eq(sigv4_payload_hash_fd(fd, 1001, 200 * 1000, fd_hex, &err), 0, "%s",
                 err ? err : "?");
    cr_assert_str_eq(fd_hex, mem);
    sigv4_payload_hash(data, len, mem);
    cr_assert_eq(sigv4_payload_hash_fd(fd, 0, (int64_t)len, fd_hex, &err), 0);
    cr_assert_str_eq(fd_hex, mem);
    sigv4_payload_hash(NULL, 0, mem);
    cr_assert_str_eq(mem, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    cr_assert_eq(sigv4_payload_hash_fd(fd, 5, 0, fd_hex, &err), 0);
    cr_assert_str_eq(fd_hex, mem);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 17, "the file offset moved");

    /* Past the end of the file, a bad range, a bad fd. */
    cr_assert_eq(sigv4_payload_hash_fd(fd, (int64_t)len - 10, 11, fd_hex, &err), -1);
    cr_assert_not_null(err);
    free(err);
    err = NULL;
    cr_assert_eq(sigv4_payload_hash_fd(fd, -1, 1, fd_hex, &err), -1);
    free(err);
    err = NULL;
    close(fd);
    cr_assert_eq(sigv4_payload_hash_fd(fd, 0, 1, fd_hex, &err), -1);
    cr_assert_not_null(err);
    free(err);
    free(data);
}

/* Signing <rq> fails with an error and leaves <sg> empty. */
static void sign_fails(const struct sigv4_request *rq, const char *why)
{
    struct sigv4_signed sg;
    char *err = NULL;

    cr_assert_eq(sigv4_sign(rq, &suite_cr, &suite_sc, &sg, &err), -1, "%s: signed", why);
    cr_assert_not_null(err, "%s: no error", why);
    cr_assert_null(sg.sg_authorization, "%s: an Authorization", why);
    cr_log_info("%s: %s", why, err);
    free(err);
    sigv4_signed_free(&sg);
}

Test(sigv4, bad_headers)
{
    struct sigv4_request rq = vanilla("GET");
    struct sigv4_header hs[2] = {{"Host", "example.amazonaws.com"}, {NULL, NULL}};
    char *big = malloc(SIGV4_MAX_VALUE + 2);
    struct sigv4_header many[SIGV4_MAX_HEADERS + 1];
    size_t i;

    cr_assert_not_null(big);
    rq.sr_headers = hs;
    rq.sr_nheaders = 2;
    hs[1] = (struct sigv4_header){"My\x01Header", "v"};
    sign_fails(&rq, "control character in a name");
    hs[1] = (struct sigv4_header){"My Header", "v"};
    sign_fails(&rq, "space in a name");
    hs[1] = (struct sigv4_header){"", "v"};
    sign_fails(&rq, "empty name");
    hs[1] = (struct sigv4_header){"My-Header", "a\r\nInjected: 1"};
    sign_fails(&rq, "CR LF in a value");
    hs[1] = (struct sigv4_header){"My-Header", NULL};
    sign_fails(&rq, "no value");
    memset(big, 'a', SIGV4_MAX_VALUE + 1);
    big[SIGV4_MAX_VALUE + 1] = '\0';
    hs[1] = (struct sigv4_header){"My-Header", big};
    sign_fails(&rq, "over-long value");
    hs[1] = (struct sigv4_header){"X-Amz-Date", VANILLA_DATE};
    sign_fails(&rq, "the signer's X-Amz-Date");
    hs[1] = (struct sigv4_header){"authorization", "x"};
    sign_fails(&rq, "an Authorization");
    hs[1] = (struct sigv4_header){"My-Header", "v"};
    rq.sr_headers = hs + 1;
    rq.sr_nheaders = 1;
    sign_fails(&rq, "no Host");
    for (i = 0; i < ARRAY_LEN(many); i++)
        many[i] = (struct sigv4_header){"X-A", "b"};
    rq.sr_headers = many;
    rq.sr_nheaders = ARRAY_LEN(many);
    sign_fails(&rq, "too many headers");

    /* The longest value passes. */
    big[SIGV4_MAX_VALUE] = '\0';
    hs[1] = (struct sigv4_header){"My-Header", big};
    rq.sr_headers = hs;
    rq.sr_nheaders = 2;
    {
        struct sigv4_signed sg;
        char *err = NULL;

        cr_assert_eq(sigv4_sign(&rq, &suite_cr, &suite_sc, &sg, &err), 0, "%s", err ? err : "?");
        sigv4_signed_free(&sg);
    }
    free(big);
}

Test(sigv4, bad_request_parts)
{
    struct sigv4_request rq = vanilla("GET");
    struct sigv4_scope sc = suite_sc;
    struct sigv4_credentials cr = suite_cr;
    struct sigv4_signed sg;
    char *err = NULL;

    rq.sr_method = "GE T";
    sign_fails(&rq, "a method with a space");
    rq.sr_method = "GET";
    rq.sr_path = "/a\nb";
    sign_fails(&rq, "a newline in the path");
    rq.sr_path = "/";
    rq.sr_query = "a=\x7f";
    sign_fails(&rq, "DEL in the query");
    rq.sr_query = NULL;

    sc.sc_amz_date = "20150830T1236Z";
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), -1);
    free(err);
    err = NULL;
    sc = suite_sc;
    sc.sc_region = "us-east-1/x";
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), -1);
    free(err);
    err = NULL;
    sc = suite_sc;
    cr.cr_access_key = "AKID EXAMPLE";
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), -1);
    free(err);
    err = NULL;
    cr = suite_cr;
    cr.cr_secret = NULL;
    cr_assert_eq(sigv4_sign(&rq, &cr, &sc, &sg, &err), -1);
    cr_assert_not_null(err);
    free(err);
}

/* The canonical URI and query of <path>?<query> signed with <flags>. */
static void canonical_uri_query(const char *path, const char *query, unsigned flags,
                                const char *want)
{
    struct sigv4_request rq = vanilla("GET");
    struct sigv4_signed sg;
    char *err = NULL;
    size_t n = strlen(want);

    rq.sr_path = path;
    rq.sr_query = query;
    rq.sr_flags = flags;
    cr_assert_eq(sigv4_sign(&rq, &suite_cr, &suite_sc, &sg, &err), 0, "%s", err ? err : "?");
    cr_assert(strncmp(sg.sg_canonical_request + 4, want, n) == 0 &&
                  sg.sg_canonical_request[4 + n] == '\n',
              "%s?%s: got\n%s\n-- want the lines\n%s", path, query ? query : "",
              sg.sg_canonical_request, want);
    sigv4_signed_free(&sg);
}

Test(sigv4, paths_and_queries)
{
    /* Non-S3: what is sent encoded is encoded again (AWS's double encoding). */
    canonical_uri_query("/a%20b/c:d", NULL, 0, "/a%2520b/c%3Ad\n");
    canonical_uri_query("", NULL, 0, "/\n");
    canonical_uri_query("/a/b/..", NULL, 0, "/a/\n");
    canonical_uri_query("/a/./b/../../c", NULL, 0, "/c\n");
    canonical_uri_query("/../..", NULL, 0, "/\n");
    /* S3: as sent, empty segments kept, escapes not doubled. */
    canonical_uri_query("/my-object//example//photo.user", NULL, SIGV4_S3_PATH,
                        "/my-object//example//photo.user\n");
    canonical_uri_query("/a%20b/c d/%zz", NULL, SIGV4_S3_PATH, "/a%20b/c%20d/%25zz\n");
    /* Queries: decoded, re-encoded, sorted; no '=' is an empty value; '+' is a plus. */
    canonical_uri_query("/", "b=2&a&c=1+2&&a=%41%2f", 0, "/\na=&a=A%2F&b=2&c=1%2B2");
    canonical_uri_query("/", "x=%zz&y=%4", 0, "/\nx=%25zz&y=%254");
}
