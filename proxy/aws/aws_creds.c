/* The credential chain's pure parsers: shared files (INI), credential JSON, STS XML, ISO 8601. */
#include "config.h"

#include "aws_creds.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define XML_DEPTH_MAX 16
#define XML_NAME_MAX 64

/* ---- ISO 8601 ---------------------------------------------------------------------------- */

/* <n> decimal digits at <s> into *out; -1 unless all are digits. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

int aws_parse_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    const char *p;

    if (s == NULL || strlen(s) < 20)
        return -1;
    if (digits(s, 4, &y) == -1 || s[4] != '-' || digits(s + 5, 2, &mo) == -1 || s[7] != '-' ||
        digits(s + 8, 2, &d) == -1 || (s[10] != 'T' && s[10] != 't') ||
        digits(s + 11, 2, &h) == -1 || s[13] != ':' || digits(s + 14, 2, &mi) == -1 ||
        s[16] != ':' || digits(s + 17, 2, &sec) == -1)
        return -1;
    p = s + 19;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return -1;
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    }
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        sign = 0;
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':' &&
               digits(p + 1, 2, &oh) == 0 && digits(p + 4, 2, &om) == 0 && oh <= 23 && om <= 59) {
        sign = p[0] == '+' ? 1 : -1;
    } else {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -1;
    *out = util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
           sign * (oh * 3600 + om * 60);
    return 0;
}

/* ---- shared files (INI) ----------------------------------------------------------------- */

static void set_err(char **err, int lineno, const char *what)
{
    if (err != NULL)
        *err = xasprintf("aws shared file: line %d: %s", lineno, what);
}

/* Trim ASCII blanks from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

static int span_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Is the section header's inside [s, s + n) profile <profile>'s section? */
static int section_matches(const char *s, size_t n, const char *profile, int config_file)
{
    if (!config_file)
        return span_eq(s, n, profile);
    if (strcmp(profile, "default") == 0 && span_eq(s, n, "default"))
        return 1;
    if (n > 7 && memcmp(s, "profile", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
        s += 7;
        n -= 7;
        trim(&s, &n);
        return span_eq(s, n, profile);
    }
    return 0;
}

typedef int (*ini_key_fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);

/*
 * Call <fn> for every "key = value" of <profile>'s sections in <text> (several sections of one
 * name merge, later values after earlier). Indented lines under a key continue it (nested
 * settings such as "s3 =") and are skipped; "#" and ";" start a comment line. 1 when the
 * profile has a section, 0 when not, -1 with *err on a line that is none of these.
 */
static int ini_walk(const char *text, const char *profile, int config_file, ini_key_fn fn,
                    void *arg, char **err)
{
    const char *p = text;
    int in = 0, found = 0, lineno = 0, have_key = 0;

    while (*p != '\0') {
        const char *line = p, *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        int indented = n > 0 && (line[0] == ' ' || line[0] == '\t');
        const char *eq;

        p = eol != NULL ? eol + 1 : p + n;
        lineno++;
        trim(&line, &n);
        if (n == 0 || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            const char *in_s = line + 1;
            size_t in_n;
            if (line[n - 1] != ']') {
                set_err(err, lineno, "a section header without ']'");
                return -1;
            }
            in_n = n - 2;
            trim(&in_s, &in_n);
            in = section_matches(in_s, in_n, profile, config_file);
            found |= in;
            have_key = 0;
            continue;
        }
        if (indented && have_key)
            continue; /* a nested setting */
        eq = memchr(line, '=', n);
        if (eq == NULL) {
            set_err(err, lineno, "neither a section, a comment nor key = value");
            return -1;
        }
        have_key = 1;
        if (in) {
            const char *k = line, *v = eq + 1;
            size_t kn = (size_t)(eq - line), vn = n - kn - 1;
            trim(&k, &kn);
            trim(&v, &vn);
            if (fn != NULL && fn(arg, k, kn, v, vn) == -1) {
                set_err(err, lineno, "a value longer than allowed");
                return -1;
            }
        }
    }
    return found;
}

struct keys {
    struct aws_credentials *out;
    int have_id, have_secret;
};

static int copy_span(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int key_cb(void *arg, const char *k, size_t kn, const char *v, size_t vn)
{
    struct keys *ks = arg;
    struct aws_credentials *o = ks->out;

    if (kn == 17 && strncasecmp(k, "aws_access_key_id", kn) == 0) {
        ks->have_id = vn > 0;
        return copy_span(o->ac_access_key, sizeof(o->ac_access_key), v, vn);
    }
    if (kn == 21 && strncasecmp(k, "aws_secret_access_key", kn) == 0) {
        ks->have_secret = vn > 0;
        return copy_span(o->ac_secret, sizeof(o->ac_secret), v, vn);
    }
    if (kn == 17 && strncasecmp(k, "aws_session_token", kn) == 0)
        return copy_span(o->ac_token, sizeof(o->ac_token), v, vn);
    return 0;
}

int aws_parse_shared_file(const char *text, const char *profile, int config_file,
                          struct aws_credentials *out, char **err)
{
    struct aws_credentials tmp;
    struct keys ks = {&tmp, 0, 0};
    int rc;

    *err = NULL;
    memset(&tmp, 0, sizeof(tmp));
    rc = ini_walk(text, profile, config_file, key_cb, &ks, err);
    if (rc == 1 && ks.have_id != ks.have_secret) {
        *err = xasprintf("profile %s has %s but not %s", profile,
                         ks.have_id ? "aws_access_key_id" : "aws_secret_access_key",
                         ks.have_id ? "aws_secret_access_key" : "aws_access_key_id");
        rc = -1;
    } else if (rc == 1 && !ks.have_id) {
        rc = 0;
    }
    if (rc == 1) {
        str_copy(tmp.ac_source, sizeof(tmp.ac_source), "profile");
        *out = tmp;
    }
    explicit_bzero(&tmp, sizeof(tmp));
    return rc;
}

int aws_profile_exists(const char *text, const char *profile, int config_file)
{
    char *err = NULL;
    int rc = ini_walk(text, profile, config_file, NULL, NULL, &err);

    free(err);
    return rc == 1;
}

struct unsupported {
    const char *key;
};

static int unsupported_cb(void *arg, const char *k, size_t kn, const char *v, size_t vn)
{
    static const char *const keys[] = {
        "role_arn",       "source_profile", "credential_source",       "credential_process",
        "sso_session",    "sso_start_url",  "web_identity_token_file", "login_session",
        "sso_account_id",
    };
    struct unsupported *u = arg;

    (void)v;
    if (u->key != NULL || vn == 0)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strlen(keys[i]) == kn && strncasecmp(k, keys[i], kn) == 0)
            u->key = keys[i];
    return 0;
}

const char *aws_profile_unsupported(const char *text, const char *profile, int config_file)
{
    struct unsupported u = {NULL};
    char *err = NULL;

    if (ini_walk(text, profile, config_file, unsupported_cb, &u, &err) == -1)
        u.key = NULL;
    free(err);
    return u.key;
}

/* ---- credential JSON ---------------------------------------------------------------------- */

/* Copy the string member <key> of <root> into <dst>. 0; 1 when absent or null (and not
 * <required>); -1 with *err when of another type, empty or too long. */
static int json_member(json_t *root, const char *key, int required, char *dst, size_t size,
                       char **err)
{
    json_t *v = json_object_get(root, key);

    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 1;
        *err = xasprintf("credentials JSON without %s", key);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size) {
        *err = xasprintf("credentials JSON: %s is not a string of 1 to %zu bytes", key, size - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static void wipe_member(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);

    if (v != NULL && json_is_string(v))
        explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

int aws_parse_creds_json(const char *body, size_t len, struct aws_credentials *out, char **err)
{
    struct aws_credentials tmp;
    json_error_t jerr;
    json_t *root;
    char when[64], code[64] = "";
    int rc = -1;

    *err = NULL;
    memset(&tmp, 0, sizeof(tmp));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        *err = xstrdup("credentials answer is not a JSON object");
        goto out;
    }
    rc = json_member(root, "Code", 0, code, sizeof(code), err);
    if (rc == -1)
        goto out;
    rc = -1;
    if (code[0] != '\0' && strcmp(code, "Success") != 0) {
        *err = xasprintf("credentials answer has Code %s", code);
        goto out;
    }
    if (json_member(root, "AccessKeyId", 1, tmp.ac_access_key, sizeof(tmp.ac_access_key), err) ==
            -1 ||
        json_member(root, "SecretAccessKey", 1, tmp.ac_secret, sizeof(tmp.ac_secret), err) == -1 ||
        json_member(root, "Token", 0, tmp.ac_token, sizeof(tmp.ac_token), err) == -1)
        goto out;
    switch (json_member(root, "Expiration", 0, when, sizeof(when), err)) {
    case -1: goto out;
    case 0:
        if (aws_parse_iso8601(when, &tmp.ac_expires_at) == -1) {
            *err = xstrdup("credentials JSON: Expiration is not an ISO 8601 time");
            goto out;
        }
        break;
    default: break;
    }
    *out = tmp;
    rc = 0;
out:
    if (root != NULL) {
        wipe_member(root, "SecretAccessKey");
        wipe_member(root, "Token");
        json_decref(root);
    }
    explicit_bzero(&tmp, sizeof(tmp));
    return rc;
}

/* ---- STS XML ------------------------------------------------------------------------------ */

/*
 * A small XML reader for exactly what STS answers: elements (namespace prefixes dropped,
 * attributes skipped), text with the five named entities and numeric character references,
 * the XML declaration, comments and CDATA. No DTD, so no other entity can exist. Leaf text of
 * the elements the caller asks for is kept, up to its buffer; everything else is skipped.
 */
struct xml_want {
    const char *xw_grandparent, *xw_parent, *xw_name;
    char *xw_out;
    size_t xw_size;
    int xw_seen;
};

/* Append the code point <cp> as UTF-8 to <dst> at *n (bounded by <size>). -1 if it overflows. */
static int put_utf8(char *dst, size_t size, size_t *n, unsigned long cp)
{
    unsigned char b[4];
    size_t k;

    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp, k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6)), b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    if (dst == NULL)
        return 0;
    if (*n + k >= size)
        return -1;
    memcpy(dst + *n, b, k);
    *n += k;
    return 0;
}

/* Decode the text [s, e) into <dst> (may be NULL: only checked). 0 or -1. */
static int xml_text(const char *s, const char *e, char *dst, size_t size, size_t *n)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};

    while (s < e) {
        if (*s != '&') {
            if (dst != NULL) {
                if (*n + 1 >= size)
                    return -1;
                dst[(*n)++] = *s;
            }
            s++;
            continue;
        }
        s++;
        if (s < e && *s == '#') {
            unsigned long cp = 0;
            int hex = s + 1 < e && (s[1] == 'x' || s[1] == 'X'), nd = 0;
            for (s += hex ? 2 : 1; s < e && *s != ';'; s++, nd++) {
                int v = *s >= '0' && *s <= '9'          ? *s - '0'
                        : hex && *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
                        : hex && *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                                        : -1;
                if (v < 0 || nd > 8)
                    return -1;
                cp = cp * (hex ? 16 : 10) + (unsigned long)v;
            }
            if (s >= e || nd == 0 || put_utf8(dst, size, n, cp) == -1)
                return -1;
            s++;
            continue;
        }
        {
            size_t i;
            for (i = 0; i < ARRAY_LEN(ents); i++) {
                size_t l = strlen(ents[i].name);
                if ((size_t)(e - s) >= l && memcmp(s, ents[i].name, l) == 0) {
                    if (dst != NULL) {
                        if (*n + 1 >= size)
                            return -1;
                        dst[(*n)++] = ents[i].c;
                    }
                    s += l;
                    break;
                }
            }
            if (i == ARRAY_LEN(ents))
                return -1;
        }
    }
    return 0;
}

/* The local name of the tag whose name starts at <s> (before <e>) into <name>; *after past it. */
static int xml_name(const char *s, const char *e, char name[XML_NAME_MAX], const char **after)
{
    const char *start = s, *colon = NULL;

    while (s < e && *s != '>' && *s != '/' && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\n') {
        if (*s == ':')
            colon = s;
        s++;
    }
    if (colon != NULL)
        start = colon + 1;
    if (s == start || (size_t)(s - start) >= XML_NAME_MAX)
        return -1;
    memcpy(name, start, (size_t)(s - start));
    name[s - start] = '\0';
    *after = s;
    return 0;
}

static struct xml_want *xml_wanted(struct xml_want *w, size_t nw, char stack[][XML_NAME_MAX],
                                   int depth)
{
    if (depth < 3)
        return NULL;
    for (size_t i = 0; i < nw; i++)
        if (strcmp(stack[depth - 1], w[i].xw_name) == 0 &&
            strcmp(stack[depth - 2], w[i].xw_parent) == 0 &&
            strcmp(stack[depth - 3], w[i].xw_grandparent) == 0)
            return &w[i];
    return NULL;
}

/*
 * The start tag at <lt> (before <e>): pushed onto <stack>, or, self-closing, an empty value
 * for a wanted element. Attributes may hold '>' inside quotes. *p goes past the tag. 0 or -1.
 */
static int xml_start_tag(struct xml_want *w, size_t nw, char stack[][XML_NAME_MAX], int *depth,
                         int *seen_root, const char *lt, const char *e, const char **p)
{
    const char *q, *after;
    char quote = 0;
    struct xml_want *x;

    for (q = lt + 1; q < e; q++) {
        if (quote != 0) {
            if (*q == quote)
                quote = 0;
        } else if (*q == '"' || *q == '\'') {
            quote = *q;
        } else if (*q == '>') {
            break;
        }
    }
    if (q >= e || *depth >= XML_DEPTH_MAX || (*depth == 0 && *seen_root) ||
        xml_name(lt + 1, q, stack[*depth], &after) == -1)
        return -1;
    *seen_root = 1;
    *p = q + 1;
    if (q[-1] != '/') {
        (*depth)++;
        return 0;
    }
    x = xml_wanted(w, nw, stack, *depth + 1);
    if (x != NULL && !x->xw_seen) {
        x->xw_out[0] = '\0';
        x->xw_seen = 1;
    }
    return 0;
}

/* Walk <body>, filling <w>. 0, or -1 when it is not well-formed enough or a value overflows. */
static int xml_walk(const char *body, size_t len, struct xml_want *w, size_t nw)
{
    char stack[XML_DEPTH_MAX][XML_NAME_MAX];
    const char *p = body, *e = body + len, *text = NULL;
    int depth = 0, seen_root = 0;

    while (p < e) {
        const char *lt = memchr(p, '<', (size_t)(e - p)), *gt;
        char name[XML_NAME_MAX];

        if (lt == NULL)
            lt = e;
        if (depth == 0 && lt > p) {
            for (const char *q = p; q < lt; q++)
                if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
                    return -1; /* text outside the root */
        }
        if (lt == e)
            break;
        if (e - lt >= 4 && memcmp(lt, "<!--", 4) == 0) {
            const char *end = lt + 4;
            while (end + 3 <= e && memcmp(end, "-->", 3) != 0)
                end++;
            if (end + 3 > e)
                return -1;
            p = end + 3;
            continue;
        }
        if (e - lt >= 9 && memcmp(lt, "<![CDATA[", 9) == 0) {
            const char *s = lt + 9, *end = s;
            struct xml_want *x = xml_wanted(w, nw, stack, depth);
            while (end + 3 <= e && memcmp(end, "]]>", 3) != 0)
                end++;
            if (end + 3 > e || depth == 0 || text != NULL)
                return -1; /* CDATA mixed with text: STS never sends it */
            if (x != NULL) {
                if ((size_t)(end - s) >= x->xw_size)
                    return -1;
                memcpy(x->xw_out, s, (size_t)(end - s));
                x->xw_out[end - s] = '\0';
                x->xw_seen = 1;
            }
            p = end + 3;
            continue;
        }
        if (depth > 0 && lt > p && text == NULL)
            text = p;
        gt = memchr(lt, '>', (size_t)(e - lt));
        if (gt == NULL)
            return -1;
        if (lt[1] == '?') {
            if (seen_root || gt[-1] != '?')
                return -1;
            p = gt + 1;
            continue;
        }
        if (lt[1] == '!')
            return -1; /* a DOCTYPE: none expected */
        if (lt[1] == '/') {
            const char *after;
            struct xml_want *x;
            if (depth == 0 || xml_name(lt + 2, gt, name, &after) == -1 ||
                strcmp(name, stack[depth - 1]) != 0)
                return -1;
            x = xml_wanted(w, nw, stack, depth);
            if (x != NULL && !x->xw_seen) {
                size_t n = 0;
                if (text != NULL && xml_text(text, lt, x->xw_out, x->xw_size, &n) == -1)
                    return -1;
                x->xw_out[n] = '\0';
                x->xw_seen = 1;
            } else if (text != NULL && xml_text(text, lt, NULL, 0, NULL) == -1) {
                return -1;
            }
            text = NULL;
            depth--;
            p = gt + 1;
            continue;
        }
        if (xml_start_tag(w, nw, stack, &depth, &seen_root, lt, e, &p) == -1)
            return -1;
        text = NULL; /* text before a child: not a leaf's */
    }
    return depth == 0 && seen_root ? 0 : -1;
}

int aws_parse_sts_web_identity(const char *body, size_t len, struct aws_credentials *out,
                               char **err)
{
    struct aws_credentials tmp;
    char when[64], code[128], message[512];
    struct xml_want w[] = {
        {"AssumeRoleWithWebIdentityResult", "Credentials", "AccessKeyId", tmp.ac_access_key,
         sizeof(tmp.ac_access_key), 0},
        {"AssumeRoleWithWebIdentityResult", "Credentials", "SecretAccessKey", tmp.ac_secret,
         sizeof(tmp.ac_secret), 0},
        {"AssumeRoleWithWebIdentityResult", "Credentials", "SessionToken", tmp.ac_token,
         sizeof(tmp.ac_token), 0},
        {"AssumeRoleWithWebIdentityResult", "Credentials", "Expiration", when, sizeof(when), 0},
        {"ErrorResponse", "Error", "Code", code, sizeof(code), 0},
        {"ErrorResponse", "Error", "Message", message, sizeof(message), 0},
    };
    int rc = -1;

    *err = NULL;
    memset(&tmp, 0, sizeof(tmp));
    if (xml_walk(body, len, w, ARRAY_LEN(w)) == -1) {
        *err = xstrdup("STS answer is not well-formed XML, or a value is too long");
        goto out;
    }
    if (w[4].xw_seen) {
        *err = xasprintf("STS error %s: %s", code, w[5].xw_seen ? message : "");
        goto out;
    }
    if (!w[0].xw_seen || !w[1].xw_seen || !w[2].xw_seen || !w[3].xw_seen ||
        tmp.ac_access_key[0] == '\0' || tmp.ac_secret[0] == '\0' || tmp.ac_token[0] == '\0') {
        *err = xstrdup("STS answer without complete Credentials");
        goto out;
    }
    if (aws_parse_iso8601(when, &tmp.ac_expires_at) == -1) {
        *err = xstrdup("STS answer: Expiration is not an ISO 8601 time");
        goto out;
    }
    str_copy(tmp.ac_source, sizeof(tmp.ac_source), "web-identity");
    *out = tmp;
    rc = 0;
out:
    explicit_bzero(&tmp, sizeof(tmp));
    return rc;
}
