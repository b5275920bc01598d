/* Registry token auth: parse WWW-Authenticate challenges and token responses, cache tokens. */
#include "config.h"

#include "auth.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define AUTH_BODY_MAX (64 * 1024)
#define AUTH_EXPIRES_DEFAULT 60
#define AUTH_EXPIRES_MIN 60                /* docker's minimum token lifetime */
#define AUTH_EXPIRES_MAX (366 * 24 * 3600) /* clamp: keeps expiry arithmetic far from overflow */
#define AUTH_CACHE_MARGIN 10               /* seconds before expiry a token stops being served */
#define AUTH_CACHE_BUCKETS 4096            /* power of two */
#define AUTH_CACHE_MAGIC 0x7a0c4e11U

/* Go's zero time.Time, "0001-01-01T00:00:00Z": token servers written in Go may send it when
 * they never set issued_at; docker treats it as absent, so do we. */
#define AUTH_GO_ZERO_TIME (-62135596800LL)

/* ---- WWW-Authenticate ------------------------------------------------------------------ */

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Unquoted values: tchar would reject the ':' and '/' a lenient server may leave unquoted in
 * a scope or realm, so take any visible character that cannot end or open something. */
static int is_bare_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != '\\';
}

static const char *skip_ows(const char *p)
{
    while (is_ows((unsigned char)*p))
        p++;
    return p;
}

static size_t scan_token(const char *p)
{
    size_t n = 0;

    while (is_tchar((unsigned char)p[n]))
        n++;
    return n;
}

static int token_is(const char *tok, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(tok, word, len) == 0;
}

/*
 * Parse one value (quoted-string or bare) at *<pp> into <dst> of <size> bytes; <dst> NULL
 * only validates and skips. Advances *<pp> past the value. Returns -1 on an unterminated or
 * empty value, a control character, or a value that does not fit.
 */
static int parse_value(const char **pp, char *dst, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    int overflow = 0;
    unsigned char c;

    if (*p == '"') {
        for (p++;; p++) {
            c = (unsigned char)*p;
            if (c == '\0')
                return -1;
            if (c == '"')
                break;
            if (c == '\\') {
                c = (unsigned char)*++p;
                if (c == '\0')
                    return -1;
            }
            if (is_ctl(c) && c != '\t')
                return -1;
            if (dst != NULL) {
                if (n + 1 < size)
                    dst[n++] = (char)c;
                else
                    overflow = 1;
            }
        }
        p++; /* closing quote */
    } else {
        if (!is_bare_char((unsigned char)*p))
            return -1;
        for (; is_bare_char((unsigned char)*p); p++) {
            if (dst != NULL) {
                if (n + 1 < size)
                    dst[n++] = *p;
                else
                    overflow = 1;
            }
        }
    }
    if (overflow)
        return -1;
    if (dst != NULL)
        dst[n] = '\0';
    *pp = p;
    return 0;
}

/*
 * The challenge grammar (RFC 7235 section 2.1, list rules of RFC 7230 section 7):
 *
 *   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 *
 * Several challenges may share one header, separated by the same commas that separate
 * parameters. A name that follows a comma and is not followed by "=" therefore starts the
 * next challenge, where parsing stops: only the first challenge counts. A name right after
 * the scheme without "=" is a token68, which neither Bearer nor Basic uses here: an error.
 * Known parameters may appear once; unknown ones are validated and ignored.
 */
int auth_parse_challenge(const char *hdr, struct auth_challenge *out)
{
    int rc = -1;
    enum auth_scheme scheme;
    const char *p, *name;
    size_t len, size;
    char *dst;
    int seen_comma;
    unsigned seen = 0, bit;

    if (out == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (hdr == NULL)
        goto out;

    p = hdr;
    while (is_ows((unsigned char)*p) || *p == ',')
        p++;
    len = scan_token(p);
    if (token_is(p, len, "Bearer"))
        scheme = AUTH_BEARER;
    else if (token_is(p, len, "Basic"))
        scheme = AUTH_BASIC;
    else
        goto out;
    p += len;
    if (*p == '\0' || *p == ',')
        goto done; /* no parameters; anything after the comma is another challenge */
    if (!is_ows((unsigned char)*p))
        goto out;

    seen_comma = 0;
    for (;;) {
        while (is_ows((unsigned char)*p) || *p == ',') {
            if (*p == ',')
                seen_comma = 1;
            p++;
        }
        if (*p == '\0')
            break;
        name = p;
        len = scan_token(p);
        if (len == 0)
            goto out;
        p = skip_ows(p + len);
        if (*p != '=') {
            if (seen_comma)
                break; /* the next challenge's scheme */
            goto out;
        }
        p = skip_ows(p + 1);

        dst = NULL;
        size = 0;
        bit = 0;
        if (token_is(name, len, "realm")) {
            dst = out->ac_realm;
            size = sizeof(out->ac_realm);
            bit = 1;
        } else if (token_is(name, len, "service")) {
            dst = out->ac_service;
            size = sizeof(out->ac_service);
            bit = 2;
        } else if (token_is(name, len, "scope")) {
            dst = out->ac_scope;
            size = sizeof(out->ac_scope);
            bit = 4;
        } else if (token_is(name, len, "error")) {
            dst = out->ac_error;
            size = sizeof(out->ac_error);
            bit = 8;
        }
        if (seen & bit)
            goto out;
        seen |= bit;
        if (parse_value(&p, dst, size) == -1)
            goto out;
        p = skip_ows(p);
        if (*p != ',' && *p != '\0')
            goto out;
        seen_comma = 0;
    }

done:
    if (scheme == AUTH_BEARER && out->ac_realm[0] == '\0')
        goto out;
    out->ac_scheme = scheme;
    rc = 0;
out:
    if (rc == -1)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- token response --------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Exactly <n> decimal digits at *<pp> into *<out>; advances *<pp>. */
static int parse_digits(const char **pp, int n, int *out)
{
    const char *p = *pp;
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *pp = p + n;
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 date-time ("2026-11-22T07:00:00.5+01:00") into Unix seconds; fraction dropped. */
static int parse_rfc3339(const char *s, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int year, mon, mday, hour, min, sec, oh = 0, om = 0, sign = 0, maxday;

    if (parse_digits(&p, 4, &year) == -1 || *p++ != '-')
        return -1;
    if (parse_digits(&p, 2, &mon) == -1 || *p++ != '-')
        return -1;
    if (parse_digits(&p, 2, &mday) == -1)
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (parse_digits(&p, 2, &hour) == -1 || *p++ != ':')
        return -1;
    if (parse_digits(&p, 2, &min) == -1 || *p++ != ':')
        return -1;
    if (parse_digits(&p, 2, &sec) == -1)
        return -1;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return -1;
        while (is_digit(*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (parse_digits(&p, 2, &oh) == -1 || *p++ != ':')
            return -1;
        if (parse_digits(&p, 2, &om) == -1)
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;

    if (mon < 1 || mon > 12 || hour > 23 || min > 59 || sec > 60 || oh > 23 || om > 59)
        return -1;
    maxday = mdays[mon - 1] + (mon == 2 && is_leap(year));
    if (mday < 1 || mday > maxday)
        return -1;
    *out = util_days_from_civil(year, mon, mday) * 86400 + hour * 3600 + min * 60 + sec -
           (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

/*
 * The string member <key> of <root>: 0 with *<val> (borrowed, NULL when absent, null or
 * empty), -1 when it is some other type.
 */
static int member_string(json_t *root, const char *key, json_t **val)
{
    json_t *v = json_object_get(root, key);

    *val = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    if (json_string_length(v) > 0)
        *val = v;
    return 0;
}

/* A token goes into an Authorization header: visible ASCII only, no NUL, CR or LF. */
static int token_chars_ok(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return -1;
    }
    return 0;
}

/* Overwrite the secret held in a jansson string before the document is freed. */
static void wipe_json_string(json_t *v)
{
    if (v != NULL && json_is_string(v))
        explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

int auth_parse_token_response(const char *body, size_t len, int64_t now, char **token,
                              int64_t *expires_at)
{
    int rc = -1;
    json_t *root = NULL, *tok = NULL, *atok = NULL, *chosen, *v;
    json_error_t jerr;
    int64_t expires_in = AUTH_EXPIRES_DEFAULT, base = now;

    if (token != NULL)
        *token = NULL;
    if (body == NULL || token == NULL || expires_at == NULL || len > AUTH_BODY_MAX)
        goto out;
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL || !json_is_object(root))
        goto out;

    if (member_string(root, "token", &tok) == -1 ||
        member_string(root, "access_token", &atok) == -1)
        goto out;
    chosen = tok != NULL ? tok : atok;
    if (chosen == NULL)
        goto out;
    if (token_chars_ok(json_string_value(chosen), json_string_length(chosen)) == -1)
        goto out;

    v = json_object_get(root, "expires_in");
    if (v != NULL && !json_is_null(v)) {
        if (json_is_integer(v)) {
            json_int_t n = json_integer_value(v);
            expires_in = n > AUTH_EXPIRES_MAX ? AUTH_EXPIRES_MAX : (int64_t)n;
        } else if (json_is_real(v)) {
            double d = json_real_value(v);
            expires_in = d > AUTH_EXPIRES_MAX ? AUTH_EXPIRES_MAX : d < 0 ? 0 : (int64_t)d;
        } else {
            goto out;
        }
    }
    if (expires_in < AUTH_EXPIRES_MIN)
        expires_in = AUTH_EXPIRES_MIN;

    v = json_object_get(root, "issued_at");
    if (json_is_string(v)) {
        int64_t t;
        /* Never later than <now>: a server clock running ahead cannot stretch the lifetime. */
        if (parse_rfc3339(json_string_value(v), &t) == 0 && t != AUTH_GO_ZERO_TIME && t < now)
            base = t;
    }

    *token = xstrndup(json_string_value(chosen), json_string_length(chosen));
    *expires_at = base + expires_in;
    rc = 0;
out:
    if (root != NULL) {
        wipe_json_string(tok);
        wipe_json_string(atok);
        json_decref(root);
    }
    return rc;
}

int auth_pull_scope(const char *name, char *buf, size_t size)
{
    int n;

    if (name == NULL || name[0] == '\0' || buf == NULL || size == 0)
        return -1;
    n = snprintf(buf, size, "repository:%s:pull", name);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- token cache ------------------------------------------------------------------------- */

/* One cached token; the entry owns all three strings. */
struct auth_cache_entry {
    struct auth_cache_entry *ace_next;
    char *ace_upstream;
    char *ace_scope;
    char *ace_token; /* secret: wiped before free */
    int64_t ace_expires_at;
};

/* A chained hash table on (upstream, scope); owns its entries. */
struct auth_cache {
    unsigned magic;
    size_t acache_count;
    struct auth_cache_entry *acache_buckets[AUTH_CACHE_BUCKETS];
};

#define CHECK_CACHE(c) CHECK_OBJ_NOTNULL(c, AUTH_CACHE_MAGIC)

static void token_free(char *t)
{
    if (t == NULL)
        return;
    explicit_bzero(t, strlen(t));
    free(t);
}

static void entry_free(struct auth_cache_entry *e)
{
    if (e == NULL)
        return;
    token_free(e->ace_token);
    free(e->ace_upstream);
    free(e->ace_scope);
    free(e);
}

/* FNV-1a over upstream, a NUL, then scope. */
static size_t cache_bucket(const char *upstream, const char *scope)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *s;

    for (s = (const unsigned char *)upstream; *s != '\0'; s++)
        h = (h ^ *s) * 0x100000001b3ULL;
    h *= 0x100000001b3ULL;
    for (s = (const unsigned char *)scope; *s != '\0'; s++)
        h = (h ^ *s) * 0x100000001b3ULL;
    return (size_t)(h & (AUTH_CACHE_BUCKETS - 1));
}

/* The link pointing at the entry for (<upstream>, <scope>), or at the chain's NULL end. */
static struct auth_cache_entry **cache_link(struct auth_cache *c, const char *upstream,
                                            const char *scope)
{
    struct auth_cache_entry **lp = &c->acache_buckets[cache_bucket(upstream, scope)];

    for (; *lp != NULL; lp = &(*lp)->ace_next) {
        if (strcmp((*lp)->ace_upstream, upstream) == 0 && strcmp((*lp)->ace_scope, scope) == 0)
            break;
    }
    return lp;
}

/* Whether <e> may still be served at <now>: more than the margin left before expiry. */
static int entry_good(const struct auth_cache_entry *e, int64_t now)
{
    if (now > INT64_MAX - AUTH_CACHE_MARGIN)
        return 0;
    return e->ace_expires_at > now + AUTH_CACHE_MARGIN;
}

static void cache_unlink(struct auth_cache *c, struct auth_cache_entry **lp)
{
    struct auth_cache_entry *e = *lp;

    *lp = e->ace_next;
    entry_free(e);
    c->acache_count--;
}

/*
 * Make room for one entry in a full cache: drop every entry no longer servable at <now>; if
 * none was, drop the one that expires soonest. A full scan, but only when the cache is full,
 * and a sweep frees all stale entries at once.
 */
static void cache_make_room(struct auth_cache *c, int64_t now)
{
    struct auth_cache_entry **lp, **victim = NULL;
    size_t i;

    for (i = 0; i < AUTH_CACHE_BUCKETS; i++) {
        lp = &c->acache_buckets[i];
        while (*lp != NULL) {
            if (!entry_good(*lp, now))
                cache_unlink(c, lp);
            else
                lp = &(*lp)->ace_next;
        }
    }
    if (c->acache_count < AUTH_CACHE_MAX)
        return;
    for (i = 0; i < AUTH_CACHE_BUCKETS; i++) {
        for (lp = &c->acache_buckets[i]; *lp != NULL; lp = &(*lp)->ace_next) {
            if (victim == NULL || (*lp)->ace_expires_at < (*victim)->ace_expires_at)
                victim = lp;
        }
    }
    if (victim != NULL)
        cache_unlink(c, victim);
}

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *c = xcalloc(1, sizeof(*c));

    c->magic = AUTH_CACHE_MAGIC;
    return c;
}

void auth_cache_free(struct auth_cache *c)
{
    struct auth_cache_entry *e, *next;
    size_t i;

    if (c == NULL)
        return;
    CHECK_CACHE(c);
    for (i = 0; i < AUTH_CACHE_BUCKETS; i++) {
        for (e = c->acache_buckets[i]; e != NULL; e = next) {
            next = e->ace_next;
            entry_free(e);
        }
    }
    c->magic = 0;
    free(c);
}

const char *auth_cache_get(struct auth_cache *c, const char *upstream, const char *scope,
                           int64_t now)
{
    struct auth_cache_entry *e;

    CHECK_CACHE(c);
    if (upstream == NULL || scope == NULL)
        return NULL;
    e = *cache_link(c, upstream, scope);
    if (e == NULL || !entry_good(e, now))
        return NULL;
    return e->ace_token;
}

void auth_cache_put(struct auth_cache *c, const char *upstream, const char *scope,
                    const char *token, int64_t expires_at, int64_t now)
{
    struct auth_cache_entry **lp, *e;

    CHECK_CACHE(c);
    if (upstream == NULL || scope == NULL || token == NULL)
        return;
    lp = cache_link(c, upstream, scope);
    if (*lp != NULL) {
        e = *lp;
        token_free(e->ace_token);
        e->ace_token = xstrdup(token);
        e->ace_expires_at = expires_at;
        return;
    }
    if (c->acache_count >= AUTH_CACHE_MAX) {
        cache_make_room(c, now);
        lp = cache_link(c, upstream, scope); /* the sweep may have moved the chain's end */
    }
    e = xcalloc(1, sizeof(*e));
    e->ace_upstream = xstrdup(upstream);
    e->ace_scope = xstrdup(scope);
    e->ace_token = xstrdup(token);
    e->ace_expires_at = expires_at;
    *lp = e;
    c->acache_count++;
}

void auth_cache_drop(struct auth_cache *c, const char *upstream, const char *scope)
{
    struct auth_cache_entry **lp;

    CHECK_CACHE(c);
    if (upstream == NULL || scope == NULL)
        return;
    lp = cache_link(c, upstream, scope);
    if (*lp != NULL)
        cache_unlink(c, lp);
}
