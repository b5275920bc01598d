/* Unit tests for proxy/upstream/auth.c: challenges, token responses, pull scopes, the cache. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define T_ISSUED 1795330800LL /* 2026-11-22T07:00:00Z */

static struct auth_challenge ch;

static void parse_ok(const char *hdr)
{
    cr_assert_eq(auth_parse_challenge(hdr, &ch), 0, "rejected \"%s\"", hdr);
}

static void parse_bad(const char *hdr)
{
    memset(&ch, 0x5a, sizeof(ch));
    cr_assert_eq(auth_parse_challenge(hdr, &ch), -1, "accepted \"%s\"", hdr);
    cr_assert_eq(ch.ac_scheme, AUTH_NONE);
    cr_assert_str_empty(ch.ac_realm);
}

/* ---- challenges ---- */

Test(challenge, docker_hub)
{
    parse_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
             "scope=\"repository:library/nginx:pull\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    cr_assert_str_eq(ch.ac_realm, "https://auth.docker.io/token");
    cr_assert_str_eq(ch.ac_service, "registry.docker.io");
    cr_assert_str_eq(ch.ac_scope, "repository:library/nginx:pull");
    cr_assert_str_empty(ch.ac_error);
}

Test(challenge, public_ecr)
{
    parse_ok("Bearer realm=\"https://public.ecr.aws/token/\",service=\"public.ecr.aws\","
             "scope=\"aws\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    cr_assert_str_eq(ch.ac_realm, "https://public.ecr.aws/token/");
    cr_assert_str_eq(ch.ac_service, "public.ecr.aws");
    cr_assert_str_eq(ch.ac_scope, "aws");
}

Test(challenge, ghcr)
{
    parse_ok("Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\","
             "scope=\"repository:user/image:pull\"");
    cr_assert_str_eq(ch.ac_realm, "https://ghcr.io/token");
    cr_assert_str_eq(ch.ac_service, "ghcr.io");
    cr_assert_str_eq(ch.ac_scope, "repository:user/image:pull");
}

Test(challenge, insufficient_scope_and_multi_scope)
{
    parse_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
             "scope=\"repository:a/b:pull repository:c/d:pull,push\","
             "error=\"insufficient_scope\"");
    cr_assert_str_eq(ch.ac_scope, "repository:a/b:pull repository:c/d:pull,push");
    cr_assert_str_eq(ch.ac_error, "insufficient_scope");
}

Test(challenge, only_realm_and_any_order)
{
    parse_ok("Bearer realm=\"https://r/t\"");
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_empty(ch.ac_service);
    cr_assert_str_empty(ch.ac_scope);

    parse_ok("Bearer scope=\"s\",error=\"invalid_token\",service=\"v\",realm=\"https://r/t\"");
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_eq(ch.ac_service, "v");
    cr_assert_str_eq(ch.ac_scope, "s");
    cr_assert_str_eq(ch.ac_error, "invalid_token");
}

Test(challenge, basic)
{
    parse_ok("Basic realm=\"Registry\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_eq(ch.ac_realm, "Registry");

    parse_ok("Basic realm=\"Registry Realm\", charset=\"UTF-8\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_eq(ch.ac_realm, "Registry Realm");

    parse_ok("Basic");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_empty(ch.ac_realm);

    parse_ok("Basic realm=\"\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_empty(ch.ac_realm);
}

Test(challenge, case_insensitive)
{
    parse_ok("bearer REALM=\"https://r/t\",Service=\"svc\",sCoPe=\"Repository:X:pull\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_eq(ch.ac_service, "svc");
    cr_assert_str_eq(ch.ac_scope, "Repository:X:pull", "values keep their case");

    parse_ok("BEARER realm=\"x\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    parse_ok("bAsIc realm=x");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
}

Test(challenge, unquoted_values)
{
    parse_ok("Bearer realm=https://auth.example.com/token,service=registry.example.com,"
             "scope=repository:library/nginx:pull");
    cr_assert_str_eq(ch.ac_realm, "https://auth.example.com/token");
    cr_assert_str_eq(ch.ac_service, "registry.example.com");
    cr_assert_str_eq(ch.ac_scope, "repository:library/nginx:pull");

    parse_ok("Basic realm=Registry");
    cr_assert_str_eq(ch.ac_realm, "Registry");
}

Test(challenge, escapes)
{
    parse_ok("Bearer realm=\"https://r/t\",service=\"a \\\"quoted\\\" svc\","
             "scope=\"back\\\\slash\\x\"");
    cr_assert_str_eq(ch.ac_service, "a \"quoted\" svc");
    cr_assert_str_eq(ch.ac_scope, "back\\slashx");

    /* A comma inside quotes does not split parameters. */
    parse_ok("Bearer realm=\"https://r/t\",scope=\"repository:a:pull,push\",service=\"s\"");
    cr_assert_str_eq(ch.ac_scope, "repository:a:pull,push");
    cr_assert_str_eq(ch.ac_service, "s");
}

Test(challenge, whitespace)
{
    parse_ok("  Bearer   realm = \"https://r/t\" ,\tservice=\"s\" , scope =\"x\"  ");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_eq(ch.ac_service, "s");
    cr_assert_str_eq(ch.ac_scope, "x");

    parse_ok("Bearer\trealm=\"https://r/t\",,, service=\"s\",");
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_eq(ch.ac_service, "s");

    parse_ok("Bearer realm=\"https://r/t\", service=s ,scope=x");
    cr_assert_str_eq(ch.ac_service, "s");
    cr_assert_str_eq(ch.ac_scope, "x");
}

Test(challenge, first_of_several)
{
    parse_ok("Bearer realm=\"https://r/t\",service=\"s\", Basic realm=\"other\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BEARER);
    cr_assert_str_eq(ch.ac_realm, "https://r/t");
    cr_assert_str_eq(ch.ac_service, "s");

    parse_ok("Basic realm=\"Registry\", Bearer realm=\"https://r/t\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_eq(ch.ac_realm, "Registry");

    parse_ok("Basic, Bearer realm=\"https://r/t\"");
    cr_assert_eq(ch.ac_scheme, AUTH_BASIC);
    cr_assert_str_empty(ch.ac_realm);

    parse_ok("Bearer realm=\"https://r/t\", Negotiate");
    cr_assert_str_eq(ch.ac_realm, "https://r/t");

    parse_bad("Negotiate, Bearer realm=\"https://r/t\"");
}

Test(challenge, missing_realm)
{
    parse_bad("Bearer service=\"registry.docker.io\",scope=\"repository:library/nginx:pull\"");
    parse_bad("Bearer realm=\"\",service=\"s\"");
    parse_bad("Bearer, Basic realm=\"x\"");
}

Test(challenge, overlong)
{
    char big[2048 + 64];
    char val[1100];

    memset(val, 'a', sizeof(val));

    /* realm: 1023 characters fit, 1024 do not */
    val[1023] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"%s\"", val);
    parse_ok(big);
    cr_assert_eq(strlen(ch.ac_realm), 1023);
    val[1023] = 'a';
    val[1024] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"%s\"", val);
    parse_bad(big);
    snprintf(big, sizeof(big), "Bearer realm=%s", val);
    parse_bad(big);

    /* service: 255 fit, 256 do not */
    memset(val, 'b', sizeof(val));
    val[255] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"r\",service=\"%s\"", val);
    parse_ok(big);
    val[255] = 'b';
    val[256] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"r\",service=\"%s\"", val);
    parse_bad(big);

    /* scope 1024 and error 64 do not fit either */
    memset(val, 'c', sizeof(val));
    val[1024] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"r\",scope=\"%s\"", val);
    parse_bad(big);
    val[64] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"r\",error=\"%s\"", val);
    parse_bad(big);

    /* An escaped character counts once. */
    {
        char esc[2100];
        size_t i, n = 0;

        n += (size_t)snprintf(esc, sizeof(esc), "Bearer realm=\"");
        for (i = 0; i < 1023; i++) {
            esc[n++] = '\\';
            esc[n++] = 'q';
        }
        esc[n++] = '"';
        esc[n] = '\0';
        parse_ok(esc);
        cr_assert_eq(strlen(ch.ac_realm), 1023);
    }

    /* A long unknown parameter is skipped, not an error. */
    memset(val, 'd', sizeof(val));
    val[1099] = '\0';
    snprintf(big, sizeof(big), "Bearer realm=\"r\",comment=\"%s\"", val);
    parse_ok(big);
    cr_assert_str_eq(ch.ac_realm, "r");
}

Test(challenge, garbage)
{
    char noise[512];
    size_t i;

    parse_bad("");
    parse_bad("   ");
    parse_bad(",");
    parse_bad("Bearer");
    parse_bad("Bearer ");
    parse_bad("Bearer realm");
    parse_bad("Bearer realm=");
    parse_bad("Bearer realm= ,service=\"s\"");
    parse_bad("Bearer realm=\"unterminated");
    parse_bad("Bearer realm=\"ends in backslash\\");
    parse_bad("Bearer realm=\"r\" service=\"s\"");
    parse_bad("Bearer realm=\"r\"x");
    parse_bad("Bearer abc123==");
    parse_bad("Bearer =\"x\"");
    parse_bad("Bearer\"realm\"");
    parse_bad("Bearerrealm=\"x\"");
    parse_bad("Negotiate abc");
    parse_bad("Negotiate");
    parse_bad("Digest realm=\"x\", nonce=\"y\"");
    parse_bad("Basic dXNlcjpwYXNz");
    parse_bad("Bearer realm=\"a\nb\"");
    parse_bad("Bearer realm=\"r\",realm=\"s\"");
    parse_bad("Bearer realm=\"r\", scope=\"\x01\"");
    parse_bad("\"Bearer\" realm=\"r\"");
    cr_assert_eq(auth_parse_challenge(NULL, &ch), -1);
    cr_assert_eq(auth_parse_challenge("Bearer realm=\"r\"", NULL), -1);

    /* Deterministic noise must not crash (ASan catches overreads). */
    srand(7);
    for (i = 0; i < 20000; i++) {
        size_t n = (size_t)rand() % (sizeof(noise) - 1), j;
        static const char alpha[] = "Bearer Basic realm=\"\\,= \t:/";
        for (j = 0; j < n; j++)
            noise[j] = (char)(rand() % 2 ? alpha[rand() % (sizeof(alpha) - 1)] : 1 + rand() % 255);
        noise[n] = '\0';
        (void)auth_parse_challenge(noise, &ch);
    }
}

/* ---- token responses ---- */

static char *tok;
static int64_t exp_at;

static int parse_tok(const char *body, int64_t now)
{
    free(tok);
    tok = NULL;
    exp_at = -1;
    return auth_parse_token_response(body, strlen(body), now, &tok, &exp_at);
}

static void tok_fini(void)
{
    free(tok);
    tok = NULL;
}

TestSuite(token, .fini = tok_fini);

Test(token, token_field)
{
    cr_assert_eq(parse_tok("{\"token\":\"abc.def.ghi\",\"expires_in\":300}", 1000), 0);
    cr_assert_str_eq(tok, "abc.def.ghi");
    cr_assert_eq(exp_at, 1300);
}

Test(token, access_token_only)
{
    cr_assert_eq(parse_tok("{\"access_token\":\"xyz\",\"expires_in\":3600}", 1000), 0);
    cr_assert_str_eq(tok, "xyz");
    cr_assert_eq(exp_at, 4600);
}

Test(token, both_first_non_empty)
{
    cr_assert_eq(parse_tok("{\"token\":\"t1\",\"access_token\":\"a1\"}", 1000), 0);
    cr_assert_str_eq(tok, "t1");
    cr_assert_eq(parse_tok("{\"access_token\":\"a1\",\"token\":\"t1\"}", 1000), 0);
    cr_assert_str_eq(tok, "t1");
    cr_assert_eq(parse_tok("{\"token\":\"\",\"access_token\":\"a1\"}", 1000), 0);
    cr_assert_str_eq(tok, "a1");
    cr_assert_eq(parse_tok("{\"token\":null,\"access_token\":\"a1\"}", 1000), 0);
    cr_assert_str_eq(tok, "a1");
    cr_assert_eq(parse_tok("{\"token\":\"t1\",\"access_token\":\"\"}", 1000), 0);
    cr_assert_str_eq(tok, "t1");
}

Test(token, expires_in_rules)
{
    cr_assert_eq(parse_tok("{\"token\":\"t\"}", 1000), 0);
    cr_assert_eq(exp_at, 1060, "default 60");
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":10}", 1000), 0);
    cr_assert_eq(exp_at, 1060, "raised to 60");
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":0}", 1000), 0);
    cr_assert_eq(exp_at, 1060);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":-5}", 1000), 0);
    cr_assert_eq(exp_at, 1060);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":60}", 1000), 0);
    cr_assert_eq(exp_at, 1060);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":61}", 1000), 0);
    cr_assert_eq(exp_at, 1061);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":null}", 1000), 0);
    cr_assert_eq(exp_at, 1060);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":300.0}", 1000), 0);
    cr_assert_eq(exp_at, 1300);
    /* Absurd lifetimes are clamped, never overflow. */
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":9223372036854775807}", 1000), 0);
    cr_assert(exp_at > 1000 && exp_at <= 1000 + 366LL * 86400);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":1e300}", 1000), 0);
    cr_assert(exp_at > 1000 && exp_at <= 1000 + 366LL * 86400);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":\"300\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":true}", 1000), -1);
}

Test(token, issued_at)
{
    int64_t now = T_ISSUED + 20;

    cr_assert_eq(
        parse_tok("{\"token\":\"t\",\"expires_in\":300,\"issued_at\":\"2026-11-22T07:00:00Z\"}",
                  now),
        0);
    cr_assert_eq(exp_at, T_ISSUED + 300);

    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":300,"
                           "\"issued_at\":\"2026-11-22T07:00:00.123456789Z\"}",
                           now),
                 0);
    cr_assert_eq(exp_at, T_ISSUED + 300);

    /* Offsets: 08:00+01:00 and 06:30-00:30 are both 07:00Z. */
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"2026-11-22T08:00:00+01:00\"}", now),
                 0);
    cr_assert_eq(exp_at, T_ISSUED + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"2026-11-22T06:30:00.5-00:30\"}", now),
                 0);
    cr_assert_eq(exp_at, T_ISSUED + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"2026-11-22t07:00:00z\"}", now), 0);
    cr_assert_eq(exp_at, T_ISSUED + 60);

    /* Leap day and the epoch. */
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"2024-02-29T23:59:59Z\"}", now), 0);
    cr_assert_eq(exp_at, 1709251199LL + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"1969-12-31T23:59:59Z\"}", now), 0);
    cr_assert_eq(exp_at, -1 + 60);

    /* Absent, null, unparseable, Go's zero time, or in the future: counts from now. */
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"expires_in\":300}", now), 0);
    cr_assert_eq(exp_at, now + 300);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":null}", now), 0);
    cr_assert_eq(exp_at, now + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":12345}", now), 0);
    cr_assert_eq(exp_at, now + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"0001-01-01T00:00:00Z\"}", now), 0);
    cr_assert_eq(exp_at, now + 60);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"issued_at\":\"2030-01-01T00:00:00Z\"}", now), 0);
    cr_assert_eq(exp_at, now + 60);

    static const char *const bad[] = {
        "",
        "yesterday",
        "2026-11-22",
        "2026-11-22T07:00:00",
        "2026-11-22T07:00Z",
        "2026-11-22T07:00:00.Z",
        "2026-11-22T07:00:00Zjunk",
        "2026-11-22T07:00:00+0100",
        "2026-13-22T07:00:00Z",
        "2026-02-29T07:00:00Z",
        "2026-11-31T07:00:00Z",
        "2026-11-00T07:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T07:60:00Z",
        "2026-11-22T07:00:61Z",
        "2026-11-22T07:00:00+24:00",
        "2026-1-22T07:00:00Z",
        "+2026-11-22T07:00:00Z",
    };
    size_t i;
    char body[256];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"token\":\"t\",\"issued_at\":\"%s\"}", bad[i]);
        cr_assert_eq(parse_tok(body, now), 0, "%s", body);
        cr_assert_eq(exp_at, now + 60, "\"%s\" should count from now", bad[i]);
    }
}

Test(token, malformed)
{
    char *t = (char *)0x1;
    int64_t e = 0;
    char *huge;
    size_t n;

    cr_assert_eq(parse_tok("", 1000), -1);
    cr_assert_null(tok);
    cr_assert_eq(parse_tok("{", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"t\"", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"t\"} trailing", 1000), -1);
    cr_assert_eq(parse_tok("not json", 1000), -1);
    cr_assert_eq(parse_tok("[\"token\"]", 1000), -1);
    cr_assert_eq(parse_tok("\"token\"", 1000), -1);
    cr_assert_eq(parse_tok("{}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"\",\"access_token\":\"\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":null}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":42}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":{\"a\":1}}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":[\"t\"]}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"t\",\"access_token\":7}", 1000), -1);
    cr_assert_eq(parse_tok("{\"access_token\":true}", 1000), -1);
    /* Tokens become header values: no whitespace, control or non-ASCII bytes. */
    cr_assert_eq(parse_tok("{\"token\":\"a\\r\\nX-Evil: 1\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"a b\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"a\\u0000b\"}", 1000), -1);
    cr_assert_eq(parse_tok("{\"token\":\"caf\\u00e9\"}", 1000), -1);
    cr_assert_null(tok);

    /* Length is what counts, not a NUL. */
    cr_assert_eq(auth_parse_token_response("{\"token\":\"ab\"}XXXX", 14, 0, &t, &e), 0);
    cr_assert_str_eq(t, "ab");
    free(t);
    t = (char *)0x1;
    cr_assert_eq(auth_parse_token_response("{\"token\":\"ab\"}", 5, 0, &t, &e), -1);
    cr_assert_null(t);
    cr_assert_eq(auth_parse_token_response(NULL, 0, 0, &t, &e), -1);
    cr_assert_eq(auth_parse_token_response("{\"token\":\"a\"}", 13, 0, NULL, &e), -1);
    cr_assert_eq(auth_parse_token_response("{\"token\":\"a\"}", 13, 0, &t, NULL), -1);
    cr_assert_null(t);

    /* 64 KiB cap: a valid body one byte over is refused. */
    n = 64 * 1024;
    huge = malloc(n + 2);
    cr_assert_not_null(huge);
    memset(huge, ' ', n + 1);
    memcpy(huge, "{\"token\":\"t\"}", 13);
    huge[n + 1] = '\0';
    cr_assert_eq(auth_parse_token_response(huge, n, 0, &t, &e), 0);
    free(t);
    t = NULL;
    cr_assert_eq(auth_parse_token_response(huge, n + 1, 0, &t, &e), -1);
    cr_assert_null(t);
    free(huge);
}

Test(token, real_world_shapes)
{
    /* Docker Hub */
    cr_assert_eq(parse_tok("{\"token\":\"eyJhbGciOiJSUzI1NiJ9.e30.sig\","
                           "\"access_token\":\"eyJhbGciOiJSUzI1NiJ9.e30.sig\","
                           "\"expires_in\":300,\"issued_at\":\"2026-11-22T07:00:00.123456789Z\"}",
                           T_ISSUED + 1),
                 0);
    cr_assert_str_eq(tok, "eyJhbGciOiJSUzI1NiJ9.e30.sig");
    cr_assert_eq(exp_at, T_ISSUED + 300);
    /* ghcr / public.ecr.aws: token only */
    cr_assert_eq(parse_tok("{\"token\":\"djE6b3JnOjE2ODc=\"}", 5000), 0);
    cr_assert_str_eq(tok, "djE6b3JnOjE2ODc=");
    cr_assert_eq(exp_at, 5060);
}

/* ---- pull scope ---- */

Test(scope, pull)
{
    char buf[64];
    char small[24];

    cr_assert_eq(auth_pull_scope("library/nginx", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "repository:library/nginx:pull");
    /* "repository:" + name + ":pull" + NUL = 11 + n + 5 + 1 */
    cr_assert_eq(auth_pull_scope("abcdefg", small, sizeof(small)), 0);
    cr_assert_str_eq(small, "repository:abcdefg:pull");
    cr_assert_eq(auth_pull_scope("abcdefgh", small, sizeof(small)), -1);
    cr_assert_eq(auth_pull_scope("x", small, 0), -1);
    cr_assert_eq(auth_pull_scope("", buf, sizeof(buf)), -1);
    cr_assert_eq(auth_pull_scope(NULL, buf, sizeof(buf)), -1);
    cr_assert_eq(auth_pull_scope("x", NULL, 10), -1);
}

/* ---- cache ---- */

static struct auth_cache *cache;

static void cache_init(void)
{
    cache = auth_cache_new();
    cr_assert_not_null(cache);
}

static void cache_fini(void)
{
    auth_cache_free(cache);
    cache = NULL;
}

TestSuite(cache, .init = cache_init, .fini = cache_fini);

#define UP "registry-1.docker.io"
#define SC "repository:library/nginx:pull"

Test(cache, get_put_replace_drop)
{
    cr_assert_null(auth_cache_get(cache, UP, SC, 1000));
    auth_cache_put(cache, UP, SC, "tok1", 1300, 1000);
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 1000), "tok1");

    auth_cache_put(cache, UP, SC, "tok2", 1600, 1100);
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 1100), "tok2");
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 1500), "tok2", "replacement's expiry counts");

    auth_cache_drop(cache, UP, SC);
    cr_assert_null(auth_cache_get(cache, UP, SC, 1100));
    auth_cache_drop(cache, UP, SC); /* dropping twice is harmless */
    auth_cache_drop(cache, "nowhere", "nothing");

    auth_cache_put(cache, UP, SC, "tok3", 1600, 1100);
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 1100), "tok3");
}

Test(cache, stored_copy)
{
    char t[] = "secret";

    auth_cache_put(cache, UP, SC, t, 2000, 1000);
    t[0] = 'X';
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 1000), "secret");
}

Test(cache, expiry_margin)
{
    auth_cache_put(cache, UP, SC, "t", 1000, 0);
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 0), "t");
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 989), "t");
    cr_assert_null(auth_cache_get(cache, UP, SC, 990), "10 s before expiry it is not served");
    cr_assert_null(auth_cache_get(cache, UP, SC, 1000));
    cr_assert_null(auth_cache_get(cache, UP, SC, 5000));
    /* A fresh put revives it. */
    auth_cache_put(cache, UP, SC, "t2", 6000, 5000);
    cr_assert_str_eq(auth_cache_get(cache, UP, SC, 5000), "t2");
}

Test(cache, keys_do_not_collide)
{
    auth_cache_put(cache, "a", "s1", "a-s1", 9000, 0);
    auth_cache_put(cache, "a", "s2", "a-s2", 9000, 0);
    auth_cache_put(cache, "b", "s1", "b-s1", 9000, 0);
    /* Concatenations that match must still be different keys. */
    auth_cache_put(cache, "ab", "c", "ab-c", 9000, 0);
    auth_cache_put(cache, "a", "bc", "a-bc", 9000, 0);

    cr_assert_str_eq(auth_cache_get(cache, "a", "s1", 0), "a-s1");
    cr_assert_str_eq(auth_cache_get(cache, "a", "s2", 0), "a-s2");
    cr_assert_str_eq(auth_cache_get(cache, "b", "s1", 0), "b-s1");
    cr_assert_str_eq(auth_cache_get(cache, "ab", "c", 0), "ab-c");
    cr_assert_str_eq(auth_cache_get(cache, "a", "bc", 0), "a-bc");
    cr_assert_null(auth_cache_get(cache, "b", "s2", 0));

    auth_cache_drop(cache, "a", "s1");
    cr_assert_null(auth_cache_get(cache, "a", "s1", 0));
    cr_assert_str_eq(auth_cache_get(cache, "a", "s2", 0), "a-s2");
    cr_assert_str_eq(auth_cache_get(cache, "b", "s1", 0), "b-s1");
}

static void key_of(int i, char *buf, size_t size)
{
    snprintf(buf, size, "repository:img%d:pull", i);
}

static int present(int i, int64_t now)
{
    char sc[64];

    key_of(i, sc, sizeof(sc));
    return auth_cache_get(cache, UP, sc, now) != NULL;
}

static void fill(int64_t now, int64_t base_expiry)
{
    char sc[64], t[32];
    int i;

    for (i = 0; i < AUTH_CACHE_MAX; i++) {
        key_of(i, sc, sizeof(sc));
        snprintf(t, sizeof(t), "t%d", i);
        auth_cache_put(cache, UP, sc, t, base_expiry + i, now);
    }
}

Test(cache, evicts_soonest_when_full)
{
    int i;

    /* Entry i expires at 10000 + i: entry 0 is soonest, then 1, ... */
    fill(0, 10000);
    for (i = 0; i < AUTH_CACHE_MAX; i++)
        cr_assert(present(i, 0), "entry %d missing before eviction", i);

    auth_cache_put(cache, "other", "new1", "n1", 50000, 0);
    cr_assert_str_eq(auth_cache_get(cache, "other", "new1", 0), "n1");
    cr_assert(!present(0, 0), "soonest to expire evicted");
    for (i = 1; i < AUTH_CACHE_MAX; i++)
        cr_assert(present(i, 0), "entry %d wrongly evicted", i);

    auth_cache_put(cache, "other", "new2", "n2", 50000, 0);
    cr_assert(!present(1, 0));
    cr_assert(present(2, 0));
    cr_assert_str_eq(auth_cache_get(cache, "other", "new1", 0), "n1");

    /* Replacing an existing key when full evicts nothing. */
    auth_cache_put(cache, "other", "new2", "n2b", 60000, 0);
    cr_assert(present(2, 0));
    cr_assert_str_eq(auth_cache_get(cache, "other", "new2", 0), "n2b");
}

Test(cache, evicts_expired_first)
{
    char sc[64];
    int i;

    fill(0, 10000);
    /* Make three entries with late indexes stale by now=5000: expired ones go first even
     * though fresher-looking by index. */
    for (i = 100; i < 103; i++) {
        key_of(i, sc, sizeof(sc));
        auth_cache_put(cache, UP, sc, "stale", 5005, 0);
    }
    for (i = 100; i < 103; i++)
        cr_assert(!present(i, 5000), "entry %d should be stale within the margin", i);

    /* One put sweeps all three stale entries; the next two fit without evicting anything. */
    auth_cache_put(cache, "other", "a", "a", 50000, 5000);
    auth_cache_put(cache, "other", "b", "b", 50000, 5000);
    auth_cache_put(cache, "other", "c", "c", 50000, 5000);
    for (i = 0; i < AUTH_CACHE_MAX; i++) {
        if (i >= 100 && i < 103)
            continue;
        cr_assert(present(i, 5000), "good entry %d evicted while stale ones remained", i);
    }
    cr_assert_str_eq(auth_cache_get(cache, "other", "a", 5000), "a");
    cr_assert_str_eq(auth_cache_get(cache, "other", "b", 5000), "b");
    cr_assert_str_eq(auth_cache_get(cache, "other", "c", 5000), "c");

    /* Full again with no stale entries: the soonest good one (entry 0) goes. */
    auth_cache_put(cache, "other", "d", "d", 50000, 5000);
    cr_assert(!present(0, 5000));
    cr_assert(present(1, 5000));
    cr_assert_str_eq(auth_cache_get(cache, "other", "d", 5000), "d");
}

Test(cache, everything_expired_when_full)
{
    int i;

    fill(0, 1000);
    /* At now=20000 every entry is stale: one put clears them all. */
    auth_cache_put(cache, "other", "x", "x", 30000, 20000);
    cr_assert_str_eq(auth_cache_get(cache, "other", "x", 20000), "x");
    for (i = 0; i < AUTH_CACHE_MAX - 1; i++) {
        char sc[32];
        snprintf(sc, sizeof(sc), "k%d", i);
        auth_cache_put(cache, "other", sc, "y", 30000, 20000);
    }
    cr_assert_str_eq(auth_cache_get(cache, "other", "x", 20000), "x", "nothing evicted yet");
    cr_assert_str_eq(auth_cache_get(cache, "other", "k0", 20000), "y");
}

Test(cache, free_null_and_empty)
{
    struct auth_cache *c = auth_cache_new();

    auth_cache_free(NULL);
    auth_cache_free(c);
}
