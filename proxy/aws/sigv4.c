/* AWS Signature Version 4: canonical request, string to sign, signature (OpenSSL HMAC). */
#include "config.h"

#include "sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_FD_BUF (64 * 1024)

/* A growing string; always NUL-terminated once anything was added. */
struct sbuf {
    char *sb_p;
    size_t sb_len, sb_cap;
};

/* One header as it goes into the canonical form: a lowercased name and a trimmed value. */
struct canon_header {
    char *ch_name;
    char *ch_value;
    size_t ch_order; /* the position it was given in: equal names keep it */
};

/* One query parameter, both halves encoded. */
struct canon_param {
    char *cp_name;
    char *cp_value;
};

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    char buf[256];

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    *err = xstrdup(buf);
}

static void sb_add(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->sb_len + n + 1 > sb->sb_cap) {
        size_t cap = sb->sb_cap == 0 ? 256 : sb->sb_cap;

        while (sb->sb_len + n + 1 > cap)
            cap *= 2;
        sb->sb_p = xrealloc(sb->sb_p, cap);
        sb->sb_cap = cap;
    }
    if (n > 0)
        memcpy(sb->sb_p + sb->sb_len, s, n);
    sb->sb_len += n;
    sb->sb_p[sb->sb_len] = '\0';
}

static void sb_adds(struct sbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

static void sb_addc(struct sbuf *sb, char c)
{
    sb_add(sb, &c, 1);
}

/* The string built so far, owned by the caller; "" when nothing was added. */
static char *sb_take(struct sbuf *sb)
{
    char *p = sb->sb_p != NULL ? sb->sb_p : xstrdup("");

    sb->sb_p = NULL;
    sb->sb_len = sb->sb_cap = 0;
    return p;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 2.3: the only bytes SigV4 leaves unencoded. */
static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Append <n> bytes of <s> with every byte outside the unreserved set as "%XX". */
static void uri_encode(struct sbuf *sb, const char *s, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_unreserved(c)) {
            sb_addc(sb, (char)c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};

            sb_add(sb, esc, 3);
        }
    }
}

/* <n> bytes of <s> with "%XX" decoded into a fresh buffer (*outlen bytes, NUL after them); a
 * '%' not followed by two hex digits stays a '%'. */
static char *uri_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = xmalloc(n + 1);
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
            (lo = hex_value(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Bytes a path or a query may hold: anything but controls (the suite sends a raw space and
 * raw UTF-8, which the canonical form encodes). */
static int check_uri_part(const char *what, const char *s, char **err)
{
    size_t i, n = strlen(s);

    if (n > SIGV4_MAX_PATH) {
        set_err(err, "sigv4: the %s is longer than %d bytes", what, SIGV4_MAX_PATH);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (is_ctl((unsigned char)s[i])) {
            set_err(err, "sigv4: the %s has a control character at byte %zu", what, i);
            return -1;
        }
    }
    return 0;
}

/*
 * The canonical URI of <path>. Non-S3: the path's segments with RFC 3986 5.2.4's dot segments
 * removed and empty segments (from "//") dropped, each percent-encoded again (so a '%' of the
 * wire form becomes "%25": AWS's double encoding); a trailing '/' (or a trailing "." or "..")
 * keeps one '/' after the last segment; nothing left is "/". S3: the path as sent.
 */
static int canonical_uri(struct sbuf *sb, const char *path, unsigned flags, char **err)
{
    struct seg {
        const char *s_p;
        size_t s_n;
    } *segs = NULL;
    size_t nsegs = 0, n, i;
    const char *p;
    int trailing = 0, rc = -1;

    if (check_uri_part("path", path, err) == -1)
        goto out;
    n = strlen(path);
    if (n == 0) {
        sb_addc(sb, '/');
        rc = 0;
        goto out;
    }
    if (flags & SIGV4_S3_PATH) {
        if (path[0] != '/')
            sb_addc(sb, '/');
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)path[i];

            if (c == '/' || (c == '%' && i + 2 < n && hex_value(path[i + 1]) >= 0 &&
                             hex_value(path[i + 2]) >= 0))
                sb_addc(sb, (char)c);
            else
                uri_encode(sb, path + i, 1);
        }
        rc = 0;
        goto out;
    }
    segs = xcalloc(n / 2 + 2, sizeof(*segs));
    p = path;
    while (*p != '\0') {
        const char *e;
        size_t len;

        while (*p == '/')
            p++;
        if (*p == '\0') {
            trailing = 1;
            break;
        }
        e = strchr(p, '/');
        len = e != NULL ? (size_t)(e - p) : strlen(p);
        trailing = 0;
        if (len == 1 && p[0] == '.') {
            trailing = 1;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (nsegs > 0)
                nsegs--;
            trailing = 1;
        } else {
            segs[nsegs].s_p = p;
            segs[nsegs].s_n = len;
            nsegs++;
        }
        p += len;
    }
    for (i = 0; i < nsegs; i++) {
        sb_addc(sb, '/');
        uri_encode(sb, segs[i].s_p, segs[i].s_n);
    }
    if (nsegs == 0 || trailing)
        sb_addc(sb, '/');
    rc = 0;
out:
    free(segs);
    return rc;
}

static int param_cmp(const void *a, const void *b)
{
    const struct canon_param *x = a, *y = b;
    int c = strcmp(x->cp_name, y->cp_name);

    return c != 0 ? c : strcmp(x->cp_value, y->cp_value);
}

/* One half of a parameter: decoded, then encoded the SigV4 way. Caller frees. */
static char *param_part(const char *s, size_t n)
{
    struct sbuf sb = {0};
    size_t dn;
    char *d = uri_decode(s, n, &dn);

    uri_encode(&sb, d, dn);
    free(d);
    return sb_take(&sb);
}

/*
 * The canonical query of <query>: split on '&' (empty pieces dropped), each on its first '='
 * (none: an empty value), both halves decoded and re-encoded with the unreserved set ('+'
 * is a literal plus, RFC 3986, and becomes "%2B"), sorted by name then value, joined by '&'.
 */
static int canonical_query(struct sbuf *sb, const char *query, char **err)
{
    struct canon_param *params = NULL;
    size_t nparams = 0, i, n;
    const char *p;
    int rc = -1;

    if (query == NULL || query[0] == '\0')
        return 0;
    if (check_uri_part("query", query, err) == -1)
        return -1;
    n = strlen(query);
    params = xcalloc(n / 2 + 1, sizeof(*params));
    for (p = query; *p != '\0';) {
        const char *e = strchr(p, '&'), *eq;
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

        if (len > 0) {
            eq = memchr(p, '=', len);
            if (eq == NULL) {
                params[nparams].cp_name = param_part(p, len);
                params[nparams].cp_value = xstrdup("");
            } else {
                params[nparams].cp_name = param_part(p, (size_t)(eq - p));
                params[nparams].cp_value = param_part(eq + 1, len - (size_t)(eq - p) - 1);
            }
            nparams++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    qsort(params, nparams, sizeof(*params), param_cmp);
    for (i = 0; i < nparams; i++) {
        if (i > 0)
            sb_addc(sb, '&');
        sb_adds(sb, params[i].cp_name);
        sb_addc(sb, '=');
        sb_adds(sb, params[i].cp_value);
    }
    rc = 0;
    for (i = 0; i < nparams; i++) {
        free(params[i].cp_name);
        free(params[i].cp_value);
    }
    free(params);
    return rc;
}

static int header_name_cmp(const void *a, const void *b)
{
    const struct canon_header *x = a, *y = b;

    return strcmp(x->ch_name, y->ch_name);
}

static int header_cmp(const void *a, const void *b)
{
    const struct canon_header *x = a, *y = b;
    int c = strcmp(x->ch_name, y->ch_name);

    if (c != 0)
        return c;
    return x->ch_order < y->ch_order ? -1 : x->ch_order > y->ch_order;
}

/*
 * <name>: <value> as it enters the canonical headers, into <h>: the name checked (a token of
 * at most SIGV4_MAX_NAME bytes) and lowercased; the value checked (no control but HT, at
 * most SIGV4_MAX_VALUE bytes), trimmed, and each run of spaces and tabs made one space (the
 * suite's get-header-value-trim collapses inside quotes too). <idx> names it in errors: a
 * header is never echoed, it may carry a secret.
 */
static int canon_header_make(struct canon_header *h, const char *name, const char *value,
                             size_t idx, char **err)
{
    size_t nn, vn, i, o = 0;
    const char *v, *end;
    int space = 0;

    if (name == NULL || value == NULL) {
        set_err(err, "sigv4: header %zu has no name or no value", idx);
        return -1;
    }
    nn = strlen(name);
    if (nn == 0 || nn > SIGV4_MAX_NAME) {
        set_err(err, "sigv4: header %zu: a name of %zu bytes (1 to %d)", idx, nn, SIGV4_MAX_NAME);
        return -1;
    }
    for (i = 0; i < nn; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!is_tchar(c)) {
            set_err(err, "sigv4: header %zu: the name has %s at byte %zu", idx,
                    is_ctl(c) ? "a control character" : "a byte outside the token set", i);
            return -1;
        }
    }
    vn = strlen(value);
    if (vn > SIGV4_MAX_VALUE) {
        set_err(err, "sigv4: header %zu: a value longer than %d bytes", idx, SIGV4_MAX_VALUE);
        return -1;
    }
    for (i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)value[i];

        if (is_ctl(c) && c != '\t') {
            set_err(err, "sigv4: header %zu: the value has a control character at byte %zu", idx,
                    i);
            return -1;
        }
    }
    h->ch_name = xmalloc(nn + 1);
    for (i = 0; i < nn; i++) {
        char c = name[i];

        h->ch_name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    h->ch_name[nn] = '\0';
    v = value;
    end = value + vn;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    h->ch_value = xmalloc((size_t)(end - v) + 1);
    for (; v < end; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            h->ch_value[o++] = ' ';
        space = 0;
        h->ch_value[o++] = *v;
    }
    h->ch_value[o] = '\0';
    h->ch_order = idx;
    return 0;
}

/* A name the signer writes itself, which a caller's header may not carry. */
static int reserved_name(const char *lname, const struct sigv4_credentials *cr, unsigned flags)
{
    if (strcmp(lname, "authorization") == 0 || strcmp(lname, "x-amz-date") == 0)
        return 1;
    if (strcmp(lname, "x-amz-security-token") == 0 && cr->cr_session_token != NULL &&
        cr->cr_session_token[0] != '\0')
        return 1;
    return strcmp(lname, "x-amz-content-sha256") == 0 && (flags & SIGV4_CONTENT_SHA256);
}

/*
 * The canonical headers of <rq> plus the signer's <added> (<nadded>) into <sb>, each
 * "name:value\n", sorted by name, values of one name joined by ',' in the order given; the
 * names joined by ';' into <signed_names>.
 */
static int canonical_headers(struct sbuf *sb, struct sbuf *signed_names,
                             const struct sigv4_request *rq, const struct sigv4_credentials *cr,
                             const struct sigv4_header *added, size_t nadded, char **err)
{
    struct canon_header *hs = NULL;
    size_t n = 0, i, total;
    int rc = -1;

    if (rq->sr_nheaders > SIGV4_MAX_HEADERS) {
        set_err(err, "sigv4: %zu headers, more than %d", rq->sr_nheaders, SIGV4_MAX_HEADERS);
        return -1;
    }
    if (rq->sr_nheaders > 0 && rq->sr_headers == NULL) {
        set_err(err, "sigv4: %zu headers but no array", rq->sr_nheaders);
        return -1;
    }
    total = rq->sr_nheaders + nadded;
    hs = xcalloc(total, sizeof(*hs));
    for (i = 0; i < rq->sr_nheaders; i++) {
        if (canon_header_make(&hs[n], rq->sr_headers[i].sh_name, rq->sr_headers[i].sh_value, i,
                              err) == -1)
            goto out;
        n++;
        if (reserved_name(hs[n - 1].ch_name, cr, rq->sr_flags)) {
            set_err(err, "sigv4: header %zu: %s is the signer's to add", i, hs[n - 1].ch_name);
            goto out;
        }
    }
    for (i = 0; i < nadded; i++) {
        if (canon_header_make(&hs[n], added[i].sh_name, added[i].sh_value, rq->sr_nheaders + i,
                              err) == -1)
            goto out;
        n++;
    }
    qsort(hs, n, sizeof(*hs), header_cmp);
    if (bsearch(&(struct canon_header){"host", NULL, 0}, hs, n, sizeof(*hs), header_name_cmp) ==
        NULL) {
        set_err(err, "sigv4: no Host header (AWS signs it always)");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(hs[i].ch_name, hs[i - 1].ch_name) == 0) {
            sb_addc(sb, ',');
            sb_adds(sb, hs[i].ch_value);
            continue;
        }
        if (i > 0) {
            sb_addc(sb, '\n');
            sb_addc(signed_names, ';');
        }
        sb_adds(sb, hs[i].ch_name);
        sb_addc(sb, ':');
        sb_adds(sb, hs[i].ch_value);
        sb_adds(signed_names, hs[i].ch_name);
    }
    if (n > 0)
        sb_addc(sb, '\n');
    rc = 0;
out:
    for (i = 0; i < n; i++) {
        free(hs[i].ch_name);
        free(hs[i].ch_value);
    }
    free(hs);
    return rc;
}

static int check_amz_date(const char *d)
{
    size_t i;

    if (strlen(d) != SIGV4_AMZ_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return -1;
    for (i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return -1;
    return 0;
}

/* A region or service name: 1 to SIGV4_MAX_SCOPE_PART of [A-Za-z0-9._-]. */
static int check_scope_part(const char *what, const char *s, char **err)
{
    size_t i, n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > SIGV4_MAX_SCOPE_PART) {
        set_err(err, "sigv4: the %s must have 1 to %d bytes", what, SIGV4_MAX_SCOPE_PART);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!is_unreserved(c) || c == '~') {
            set_err(err, "sigv4: the %s has a byte outside [A-Za-z0-9._-] at %zu", what, i);
            return -1;
        }
    }
    return 0;
}

static int check_payload_hash(const char *h)
{
    size_t i;

    if (strcmp(h, SIGV4_UNSIGNED_PAYLOAD) == 0)
        return 0;
    if (strlen(h) != SIGV4_HEX_LEN)
        return -1;
    for (i = 0; i < SIGV4_HEX_LEN; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return -1;
    return 0;
}

/* HMAC-SHA256 of <n> bytes at <data> with <key> (<keylen>) into <out>. */
static int hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                       unsigned char out[SIGV4_KEY_LEN])
{
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) == NULL || len != SIGV4_KEY_LEN)
        return -1;
    return 0;
}

int sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    if (strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_LEN)
        return -1;
    return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[SIGV4_KEY_LEN], char **err)
{
    unsigned char k_date[SIGV4_KEY_LEN], k_region[SIGV4_KEY_LEN], k_service[SIGV4_KEY_LEN];
    char *k_secret = NULL;
    size_t sn, i;
    int rc = -1;

    if (secret == NULL || (sn = strlen(secret)) == 0 || sn > SIGV4_MAX_VALUE) {
        set_err(err, "sigv4: the secret must have 1 to %d bytes", SIGV4_MAX_VALUE);
        goto out;
    }
    if (date8 == NULL || strlen(date8) != 8) {
        set_err(err, "sigv4: the scope's date is not YYYYMMDD");
        goto out;
    }
    for (i = 0; i < 8; i++) {
        if (date8[i] < '0' || date8[i] > '9') {
            set_err(err, "sigv4: the scope's date is not YYYYMMDD");
            goto out;
        }
    }
    if (check_scope_part("region", region, err) == -1 ||
        check_scope_part("service", service, err) == -1)
        goto out;
    k_secret = xmalloc(sn + 5);
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, sn + 1);
    if (hmac_sha256(k_secret, sn + 4, date8, 8, k_date) == -1 ||
        hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region) == -1 ||
        hmac_sha256(k_region, sizeof(k_region), service, strlen(service), k_service) == -1 ||
        hmac_sha256(k_service, sizeof(k_service), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR),
                    key) == -1) {
        set_err(err, "sigv4: HMAC-SHA256 failed");
        OPENSSL_cleanse(key, SIGV4_KEY_LEN);
        goto out;
    }
    rc = 0;
out:
    if (k_secret != NULL) {
        OPENSSL_cleanse(k_secret, sn + 4);
        free(k_secret);
    }
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    return rc;
}

void sigv4_signed_free(struct sigv4_signed *s)
{
    if (s == NULL)
        return;
    free(s->sg_canonical_request);
    free(s->sg_string_to_sign);
    free(s->sg_authorization);
    free(s->sg_signed_headers);
    free(s->sg_token);
    memset(s, 0, sizeof(*s));
}

/* The access key: 1 to SIGV4_MAX_NAME letters and digits (AKIA..., ASIA...). */
static int check_access_key(const char *k, char **err)
{
    size_t i, n = k != NULL ? strlen(k) : 0;

    if (n == 0 || n > SIGV4_MAX_NAME) {
        set_err(err, "sigv4: the access key must have 1 to %d bytes", SIGV4_MAX_NAME);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            set_err(err, "sigv4: the access key has a byte outside [A-Za-z0-9] at %zu", i);
            return -1;
        }
    }
    return 0;
}

/*
 * Signing, as AWS documents it ("Create a signed AWS API request"): the canonical request
 * (method, URI, query, headers, signed header names, payload hash, one per line), the string
 * to sign (algorithm, date, scope, SHA-256 of the canonical request), and the signature, the
 * HMAC of the string to sign under the key derived for the scope's day.
 */
int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_credentials *cr,
               const struct sigv4_scope *sc, struct sigv4_signed *out, char **err)
{
    struct sbuf creq = {0}, headers = {0}, names = {0}, sts = {0};
    unsigned char derived[SIGV4_KEY_LEN], md[EVP_MAX_MD_SIZE], sig[SIGV4_KEY_LEN];
    const unsigned char *key;
    char date8[9], creq_hash[SIGV4_HEX_LEN + 1];
    const char *payload, *token;
    unsigned int mdlen = 0;
    size_t i;
    int rc = -1, have_derived = 0;

    memset(out, 0, sizeof(*out));
    if (rq == NULL || cr == NULL || sc == NULL || rq->sr_method == NULL || rq->sr_path == NULL) {
        set_err(err, "sigv4: no request, credentials, scope, method or path");
        goto out;
    }
    if (check_access_key(cr->cr_access_key, err) == -1)
        goto out;
    if (sc->sc_amz_date != NULL) {
        if (check_amz_date(sc->sc_amz_date) == -1) {
            set_err(err, "sigv4: the date is not YYYYMMDDTHHMMSSZ");
            goto out;
        }
        memcpy(out->sg_amz_date, sc->sc_amz_date, SIGV4_AMZ_DATE_LEN + 1);
    } else if (sigv4_amz_date(sc->sc_time, out->sg_amz_date) == -1) {
        set_err(err, "sigv4: the time %lld is out of range", (long long)sc->sc_time);
        goto out;
    }
    memcpy(date8, out->sg_amz_date, 8);
    date8[8] = '\0';
    if (check_scope_part("region", sc->sc_region, err) == -1 ||
        check_scope_part("service", sc->sc_service, err) == -1)
        goto out;
    payload = rq->sr_payload_hash != NULL ? rq->sr_payload_hash : SIGV4_EMPTY_HASH;
    if (check_payload_hash(payload) == -1) {
        set_err(err, "sigv4: the payload hash is neither 64 lowercase hex digits nor %s",
                SIGV4_UNSIGNED_PAYLOAD);
        goto out;
    }
    for (i = 0; rq->sr_method[i] != '\0'; i++) {
        if (!is_tchar((unsigned char)rq->sr_method[i]) || i >= SIGV4_MAX_NAME) {
            set_err(err, "sigv4: the method is not a token of at most %d bytes", SIGV4_MAX_NAME);
            goto out;
        }
    }
    if (i == 0) {
        set_err(err, "sigv4: the method is empty");
        goto out;
    }

    /* What the signer adds, signed with the rest. */
    out->sg_added[out->sg_nadded].sh_name = "X-Amz-Date";
    out->sg_added[out->sg_nadded++].sh_value = out->sg_amz_date;
    token = cr->cr_session_token;
    if (token != NULL && token[0] != '\0') {
        out->sg_token = xstrdup(token);
        out->sg_added[out->sg_nadded].sh_name = "X-Amz-Security-Token";
        out->sg_added[out->sg_nadded++].sh_value = out->sg_token;
    }
    if (rq->sr_flags & SIGV4_CONTENT_SHA256) {
        str_copy(out->sg_content_sha256, sizeof(out->sg_content_sha256), payload);
        out->sg_added[out->sg_nadded].sh_name = "X-Amz-Content-Sha256";
        out->sg_added[out->sg_nadded++].sh_value = out->sg_content_sha256;
    }

    sb_adds(&creq, rq->sr_method);
    sb_addc(&creq, '\n');
    if (canonical_uri(&creq, rq->sr_path, rq->sr_flags, err) == -1)
        goto out;
    sb_addc(&creq, '\n');
    if (canonical_query(&creq, rq->sr_query, err) == -1)
        goto out;
    sb_addc(&creq, '\n');
    if (canonical_headers(&headers, &names, rq, cr, out->sg_added, out->sg_nadded, err) == -1)
        goto out;
    sb_add(&creq, headers.sb_p != NULL ? headers.sb_p : "", headers.sb_len);
    sb_addc(&creq, '\n');
    sb_add(&creq, names.sb_p != NULL ? names.sb_p : "", names.sb_len);
    sb_addc(&creq, '\n');
    sb_adds(&creq, payload);

    if (EVP_Digest(creq.sb_p, creq.sb_len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    hex_encode(md, mdlen, creq_hash);
    sb_adds(&sts, SIGV4_ALGORITHM "\n");
    sb_adds(&sts, out->sg_amz_date);
    sb_addc(&sts, '\n');
    sb_adds(&sts, date8);
    sb_addc(&sts, '/');
    sb_adds(&sts, sc->sc_region);
    sb_addc(&sts, '/');
    sb_adds(&sts, sc->sc_service);
    sb_adds(&sts, "/" SIGV4_TERMINATOR "\n");
    sb_adds(&sts, creq_hash);

    if (cr->cr_signing_key != NULL) {
        key = cr->cr_signing_key;
    } else {
        if (sigv4_signing_key(cr->cr_secret, date8, sc->sc_region, sc->sc_service, derived, err) ==
            -1)
            goto out;
        have_derived = 1;
        key = derived;
    }
    if (hmac_sha256(key, SIGV4_KEY_LEN, sts.sb_p, sts.sb_len, sig) == -1) {
        set_err(err, "sigv4: HMAC-SHA256 failed");
        goto out;
    }
    hex_encode(sig, sizeof(sig), out->sg_signature);
    out->sg_signed_headers = sb_take(&names);
    out->sg_canonical_request = sb_take(&creq);
    out->sg_string_to_sign = sb_take(&sts);
    out->sg_authorization = xasprintf(SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
                                                      ", SignedHeaders=%s, Signature=%s",
                                      cr->cr_access_key, date8, sc->sc_region, sc->sc_service,
                                      out->sg_signed_headers, out->sg_signature);
    rc = 0;
out:
    if (have_derived)
        OPENSSL_cleanse(derived, sizeof(derived));
    free(creq.sb_p);
    free(headers.sb_p);
    free(names.sb_p);
    free(sts.sb_p);
    if (rc == -1)
        sigv4_signed_free(out);
    return rc;
}

void sigv4_payload_hash(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (EVP_Digest(len > 0 ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 ||
        n != SIGV4_HEX_LEN / 2)
        abort(); /* SHA-256 in the default provider does not fail but out of memory */
    hex_encode(md, n, out);
}

int sigv4_payload_hash_fd(int fd, int64_t offset, int64_t length, char out[SIGV4_HEX_LEN + 1],
                          char **err)
{
    EVP_MD_CTX *ctx = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *buf = NULL;
    int64_t done = 0;
    int rc = -1;

    if (offset < 0 || length < 0 || offset > INT64_MAX - length) {
        set_err(err, "sigv4: a bad file range (%lld, %lld)", (long long)offset, (long long)length);
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    buf = xmalloc(SIGV4_FD_BUF);
    while (done < length) {
        size_t want = length - done < SIGV4_FD_BUF ? (size_t)(length - done) : SIGV4_FD_BUF;
        ssize_t got = pread(fd, buf, want, (off_t)(offset + done));

        if (got == -1) {
            if (errno == EINTR)
                continue;
            set_err(err, "sigv4: reading the body at %lld: %s", (long long)(offset + done),
                    strerror(errno));
            goto out;
        }
        if (got == 0) {
            set_err(err, "sigv4: the body file ends at %lld, before %lld",
                    (long long)(offset + done), (long long)(offset + length));
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1) {
            set_err(err, "sigv4: SHA-256 failed");
            goto out;
        }
        done += got;
    }
    if (EVP_DigestFinal_ex(ctx, md, &n) != 1) {
        set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    hex_encode(md, n, out);
    rc = 0;
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}
