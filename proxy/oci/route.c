/* Parses request URIs of the OCI distribution API into kind, name, reference and query. */
#include "config.h"

#include "route.h"

#include <stdlib.h>
#include <string.h>

#include "oci.h"

#define ROUTE_N_MAX 10000

static int set_error(enum oci_error *err, const char **why, enum oci_error e, const char *msg)
{
    if (err != NULL)
        *err = e;
    if (why != NULL)
        *why = msg;
    return -1;
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

/*
 * Percent-decode the query value <s> of <len> bytes into <dst> of <size> bytes (NUL-terminated).
 * '+' stays '+': media types in artifactType contain it. Returns the decoded length, or -1 on a
 * malformed escape, a decoded NUL, or a value that does not fit.
 */
static long decode_value(const char *s, size_t len, char *dst, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return -1;
            hi = hex_value(s[i + 1]);
            lo = hex_value(s[i + 2]);
            if (hi == -1 || lo == -1)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= size)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return (long)o;
}

static int ns_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':';
}

static int parse_ns(const char *v, size_t vlen, struct route_req *out)
{
    char buf[ROUTE_NS_MAX + 1];
    long len = decode_value(v, vlen, buf, sizeof(buf));

    if (len == -1)
        return -1;
    for (long i = 0; i < len; i++) {
        if (!ns_char(buf[i]))
            return -1;
        if (buf[i] >= 'A' && buf[i] <= 'Z')
            buf[i] = (char)(buf[i] - 'A' + 'a');
    }
    memcpy(out->rq_ns, buf, (size_t)len + 1);
    return 0;
}

/* ?n=: decimal digits only, 0..ROUTE_N_MAX; empty means absent. */
static int parse_n(const char *v, size_t vlen, struct route_req *out)
{
    char buf[16];
    char *end = NULL;
    long len = decode_value(v, vlen, buf, sizeof(buf));
    long n;

    if (len == -1)
        return -1;
    if (len == 0)
        return 0;
    for (long i = 0; i < len; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
    n = strtol(buf, &end, 10);
    if (end == buf || *end != '\0' || n < 0 || n > ROUTE_N_MAX)
        return -1;
    out->rq_n = (int)n;
    return 0;
}

static int parse_last(const char *v, size_t vlen, struct route_req *out)
{
    char buf[ROUTE_REF_MAX + 1];
    long len = decode_value(v, vlen, buf, sizeof(buf));

    if (len == -1)
        return -1;
    if (len > 0 && !oci_tag_valid(buf, (size_t)len))
        return -1;
    memcpy(out->rq_last, buf, (size_t)len + 1);
    return 0;
}

/* artifactType is kept as given, but never with control characters: it may reach a log. */
static int parse_artifact_type(const char *v, size_t vlen, struct route_req *out)
{
    char buf[sizeof(out->rq_artifact_type)];
    long len = decode_value(v, vlen, buf, sizeof(buf));

    if (len == -1)
        return -1;
    for (long i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            return -1;
    memcpy(out->rq_artifact_type, buf, (size_t)len + 1);
    return 0;
}

static int key_is(const char *k, size_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

/*
 * The query <q> of <qlen> bytes: '&'-separated key=value pairs. Keys are compared as sent;
 * values are percent-decoded. The first occurrence of a key wins, as in Go's Query().Get,
 * which the reference registries use. n and last count for tags/list only, artifactType for
 * referrers only; every other key is ignored.
 */
static int parse_query(const char *q, size_t qlen, struct route_req *out, enum oci_error *err,
                       const char **why)
{
    int seen_ns = 0, seen_n = 0, seen_last = 0, seen_at = 0;
    size_t pos = 0;

    while (pos < qlen) {
        const char *pair = q + pos;
        const char *amp = memchr(pair, '&', qlen - pos);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : qlen - pos;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;
        const char *v = eq != NULL ? eq + 1 : pair + plen;
        size_t vlen = plen - klen - (eq != NULL ? 1 : 0);

        pos += plen + 1;
        if (key_is(pair, klen, "ns") && !seen_ns) {
            seen_ns = 1;
            if (parse_ns(v, vlen, out) == -1)
                return set_error(err, why, OCI_ERR_NAME_INVALID, "invalid ns query parameter");
        } else if (key_is(pair, klen, "n") && !seen_n && out->rq_kind == ROUTE_TAGS) {
            seen_n = 1;
            if (parse_n(v, vlen, out) == -1)
                return set_error(err, why, OCI_ERR_PAGINATION_NUMBER_INVALID,
                                 "n must be a number from 0 to 10000");
        } else if (key_is(pair, klen, "last") && !seen_last && out->rq_kind == ROUTE_TAGS) {
            seen_last = 1;
            if (parse_last(v, vlen, out) == -1)
                return set_error(err, why, OCI_ERR_PAGINATION_NUMBER_INVALID, "last must be a tag");
        } else if (key_is(pair, klen, "artifactType") && !seen_at &&
                   out->rq_kind == ROUTE_REFERRERS) {
            seen_at = 1;
            if (parse_artifact_type(v, vlen, out) == -1)
                return set_error(err, why, OCI_ERR_NAME_INVALID,
                                 "invalid artifactType query parameter");
        }
    }
    return 0;
}

/* 1 when the segment <s> of <len> bytes is "." or "..". */
static int dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/*
 * The path <p> of <plen> bytes. Everything between "/v2/" and the last two segments is the
 * name; the last two are the kind and the reference ("tags/list" for tags). Canonical-form
 * checks come first, so that a path that could be read two ways is refused as NAME_INVALID
 * before its shape is judged.
 */
static int parse_path(const char *p, size_t plen, struct route_req *out, enum oci_error *err,
                      const char **why)
{
    const char *rest, *kind, *ref;
    size_t rlen, nlen, klen, reflen, start;
    const char *s1 = NULL, *s2 = NULL;
    int trailing = 0;

    if (plen < 3 || memcmp(p, "/v2", 3) != 0 || (plen > 3 && p[3] != '/'))
        return set_error(err, why, OCI_ERR_NOT_FOUND, "not a registry API path");
    for (size_t i = 0; i < plen; i++)
        if (p[i] == '%' || p[i] == '\\')
            return set_error(err, why, OCI_ERR_NAME_INVALID,
                             "percent-encoding and backslashes are not allowed in the path");
    if (plen <= 4) {
        out->rq_kind = ROUTE_BASE;
        return 0;
    }

    rest = p + 4;
    rlen = plen - 4;
    if (rest[rlen - 1] == '/') {
        trailing = 1;
        rlen--;
    }
    start = 0;
    for (size_t i = 0; i <= rlen; i++) {
        if (i < rlen && rest[i] != '/')
            continue;
        if (i == start)
            return set_error(err, why, OCI_ERR_NAME_INVALID, "empty path segment");
        if (dot_segment(rest + start, i - start))
            return set_error(err, why, OCI_ERR_NAME_INVALID, "dot segment in path");
        if (i < rlen) {
            s1 = s2;
            s2 = rest + i;
        }
        start = i + 1;
    }
    if (trailing)
        return set_error(err, why, OCI_ERR_NOT_FOUND, "not a registry API path");
    /* s2 is the last '/', s1 the one before it; the name needs at least one segment. */
    if (s1 == NULL)
        return set_error(err, why, OCI_ERR_NOT_FOUND, "not a registry API path");

    nlen = (size_t)(s1 - rest);
    kind = s1 + 1;
    klen = (size_t)(s2 - kind);
    ref = s2 + 1;
    reflen = (size_t)(rest + rlen - ref);

    if (klen == 9 && memcmp(kind, "manifests", 9) == 0)
        out->rq_kind = ROUTE_MANIFEST;
    else if (klen == 5 && memcmp(kind, "blobs", 5) == 0 &&
             !(reflen == 7 && memcmp(ref, "uploads", 7) == 0))
        out->rq_kind = ROUTE_BLOB;
    else if (klen == 4 && memcmp(kind, "tags", 4) == 0 && reflen == 4 &&
             memcmp(ref, "list", 4) == 0)
        out->rq_kind = ROUTE_TAGS;
    else if (klen == 9 && memcmp(kind, "referrers", 9) == 0)
        out->rq_kind = ROUTE_REFERRERS;
    else
        return set_error(err, why, OCI_ERR_NOT_FOUND, "not a registry API path");

    if (!oci_name_valid(rest, nlen))
        return set_error(err, why, OCI_ERR_NAME_INVALID, "invalid repository name");
    memcpy(out->rq_name, rest, nlen);
    out->rq_name[nlen] = '\0';

    if (out->rq_kind == ROUTE_TAGS)
        return 0;
    if (oci_digest_parse(ref, reflen) != OCI_DIGEST_NONE) {
        out->rq_ref_is_digest = 1;
    } else if (out->rq_kind != ROUTE_MANIFEST) {
        return set_error(err, why, OCI_ERR_DIGEST_INVALID, "invalid digest");
    } else if (memchr(ref, ':', reflen) != NULL || !oci_tag_valid(ref, reflen)) {
        /* The spec: a manifest GET or HEAD fails only with 404 (MANIFEST_INVALID is an
         * upload error). No tag or digest of that spelling can exist. */
        return set_error(err, why, OCI_ERR_MANIFEST_UNKNOWN, "no manifest can have this name");
    }
    /* A digest is at most 135 bytes and a tag at most 128: both fit rq_ref. */
    memcpy(out->rq_ref, ref, reflen);
    out->rq_ref[reflen] = '\0';
    return 0;
}

int route_parse(const char *uri, struct route_req *out, enum oci_error *err, const char **why)
{
    const char *q;
    size_t len, plen;

    memset(out, 0, sizeof(*out));
    out->rq_n = -1;
    if (uri == NULL)
        return set_error(err, why, OCI_ERR_NOT_FOUND, "not a registry API path");
    len = strnlen(uri, ROUTE_URI_MAX + 1);
    if (len > ROUTE_URI_MAX)
        return set_error(err, why, OCI_ERR_NAME_INVALID, "request URI too long");
    q = memchr(uri, '?', len);
    plen = q != NULL ? (size_t)(q - uri) : len;
    if (parse_path(uri, plen, out, err, why) == -1)
        return -1;
    if (q != NULL && parse_query(q + 1, len - plen - 1, out, err, why) == -1)
        return -1;
    return 0;
}
