/*
 * The canonical request's parts for SigV4: the URI (normalized and encoded again, or as sent
 * for S3), the query (decoded, encoded, sorted) and the headers (lowercased, trimmed, joined,
 * sorted), with the strings they are built in.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4-int.h"
#include "util.h"

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

void sigv4_set_err(char **err, const char *fmt, ...)
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

void sigv4_sb_add(struct sbuf *sb, const char *s, size_t n)
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

void sigv4_sb_adds(struct sbuf *sb, const char *s)
{
    sigv4_sb_add(sb, s, strlen(s));
}

void sigv4_sb_addc(struct sbuf *sb, char c)
{
    sigv4_sb_add(sb, &c, 1);
}

/* The string built so far, owned by the caller; "" when nothing was added. */
char *sigv4_sb_take(struct sbuf *sb)
{
    char *p = sb->sb_p != NULL ? sb->sb_p : xstrdup("");

    sb->sb_p = NULL;
    sb->sb_len = sb->sb_cap = 0;
    return p;
}

void sigv4_hex(const unsigned char *in, size_t n, char *out)
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
int sigv4_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* RFC 9110 5.6.2 tchar. */
int sigv4_is_tchar(unsigned char c)
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

        if (sigv4_is_unreserved(c)) {
            sigv4_sb_addc(sb, (char)c);
        } else {
            char esc[3] = {'%', digits[c >> 4], digits[c & 0xf]};

            sigv4_sb_add(sb, esc, 3);
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
        sigv4_set_err(err, "sigv4: the %s is longer than %d bytes", what, SIGV4_MAX_PATH);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (is_ctl((unsigned char)s[i])) {
            sigv4_set_err(err, "sigv4: the %s has a control character at byte %zu", what, i);
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
int sigv4_canonical_uri(struct sbuf *sb, const char *path, unsigned flags, char **err)
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
        sigv4_sb_addc(sb, '/');
        rc = 0;
        goto out;
    }
    if (flags & SIGV4_S3_PATH) {
        if (path[0] != '/')
            sigv4_sb_addc(sb, '/');
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)path[i];

            if (c == '/' || (c == '%' && i + 2 < n && hex_value(path[i + 1]) >= 0 &&
                             hex_value(path[i + 2]) >= 0))
                sigv4_sb_addc(sb, (char)c);
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
        sigv4_sb_addc(sb, '/');
        uri_encode(sb, segs[i].s_p, segs[i].s_n);
    }
    if (nsegs == 0 || trailing)
        sigv4_sb_addc(sb, '/');
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
    return sigv4_sb_take(&sb);
}

/*
 * The canonical query of <query>: split on '&' (empty pieces dropped), each on its first '='
 * (none: an empty value), both halves decoded and re-encoded with the unreserved set ('+'
 * is a literal plus, RFC 3986, and becomes "%2B"), sorted by name then value, joined by '&'.
 */
int sigv4_canonical_query(struct sbuf *sb, const char *query, char **err)
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
            sigv4_sb_addc(sb, '&');
        sigv4_sb_adds(sb, params[i].cp_name);
        sigv4_sb_addc(sb, '=');
        sigv4_sb_adds(sb, params[i].cp_value);
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
        sigv4_set_err(err, "sigv4: header %zu has no name or no value", idx);
        return -1;
    }
    nn = strlen(name);
    if (nn == 0 || nn > SIGV4_MAX_NAME) {
        sigv4_set_err(err, "sigv4: header %zu: a name of %zu bytes (1 to %d)", idx, nn,
                      SIGV4_MAX_NAME);
        return -1;
    }
    for (i = 0; i < nn; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!sigv4_is_tchar(c)) {
            sigv4_set_err(err, "sigv4: header %zu: the name has %s at byte %zu", idx,
                          is_ctl(c) ? "a control character" : "a byte outside the token set", i);
            return -1;
        }
    }
    vn = strlen(value);
    if (vn > SIGV4_MAX_VALUE) {
        sigv4_set_err(err, "sigv4: header %zu: a value longer than %d bytes", idx, SIGV4_MAX_VALUE);
        return -1;
    }
    for (i = 0; i < vn; i++) {
        unsigned char c = (unsigned char)value[i];

        if (is_ctl(c) && c != '\t') {
            sigv4_set_err(err, "sigv4: header %zu: the value has a control character at byte %zu",
                          idx, i);
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
int sigv4_canonical_headers(struct sbuf *sb, struct sbuf *signed_names,
                            const struct sigv4_request *rq, const struct sigv4_credentials *cr,
                            const struct sigv4_header *added, size_t nadded, char **err)
{
    struct canon_header *hs = NULL;
    size_t n = 0, i, total;
    int rc = -1;

    if (rq->sr_nheaders > SIGV4_MAX_HEADERS) {
        sigv4_set_err(err, "sigv4: %zu headers, more than %d", rq->sr_nheaders, SIGV4_MAX_HEADERS);
        return -1;
    }
    if (rq->sr_nheaders > 0 && rq->sr_headers == NULL) {
        sigv4_set_err(err, "sigv4: %zu headers but no array", rq->sr_nheaders);
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
            sigv4_set_err(err, "sigv4: header %zu: %s is the signer's to add", i,
                          hs[n - 1].ch_name);
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
        sigv4_set_err(err, "sigv4: no Host header (AWS signs it always)");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(hs[i].ch_name, hs[i - 1].ch_name) == 0) {
            sigv4_sb_addc(sb, ',');
            sigv4_sb_adds(sb, hs[i].ch_value);
            continue;
        }
        if (i > 0) {
            sigv4_sb_addc(sb, '\n');
            sigv4_sb_addc(signed_names, ';');
        }
        sigv4_sb_adds(sb, hs[i].ch_name);
        sigv4_sb_addc(sb, ':');
        sigv4_sb_adds(sb, hs[i].ch_value);
        sigv4_sb_adds(signed_names, hs[i].ch_name);
    }
    if (n > 0)
        sigv4_sb_addc(sb, '\n');
    rc = 0;
out:
    for (i = 0; i < n; i++) {
        free(hs[i].ch_name);
        free(hs[i].ch_value);
    }
    free(hs);
    return rc;
}
