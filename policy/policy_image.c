/* Maps an image reference as users type it to the rule that mirrors its registry. */
#include "config.h"

#include "policy_image.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * 1 when <s> of <len> bytes is a repository path the distribution spec allows: at most 255
 * bytes of components [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* split by '/'. (The same grammar as
 * proxy/oci's oci_name_valid, which policy/ may not include.)
 */
static int name_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || len > 255)
        return 0;
    while (i < len) {
        /* One component: a run, then (separator, run)*, up to '/' or the end. */
        if (!lower_alnum(s[i]))
            return 0;
        while (i < len && s[i] != '/') {
            if (lower_alnum(s[i])) {
                i++;
                continue;
            }
            if (s[i] == '.') {
                i++;
            } else if (s[i] == '_') {
                i++;
                if (i < len && s[i] == '_')
                    i++;
            } else if (s[i] == '-') {
                while (i < len && s[i] == '-')
                    i++;
            } else {
                return 0;
            }
            if (i >= len || !lower_alnum(s[i]))
                return 0;
        }
        if (i < len && ++i == len)
            return 0; /* a trailing '/' */
    }
    return 1;
}

/* 1 when <s> is a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
static int tag_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

/* 1 when <s> is "sha256:" + 64 or "sha512:" + 128 lowercase hex digits. */
static int digest_ok(const char *s, size_t len)
{
    size_t hex;

    if (len > 7 && strncmp(s, "sha256:", 7) == 0)
        hex = 64;
    else if (len > 7 && strncmp(s, "sha512:", 7) == 0)
        hex = 128;
    else
        return 0;
    if (len != 7 + hex)
        return 0;
    for (size_t i = 7; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static long rule_for_host(const struct rules_rule *rules, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < rules[i].rr_nmirror_for; j++)
            if (rules[i].rr_mirror_for[j] != NULL &&
                strcasecmp(rules[i].rr_mirror_for[j], host) == 0)
                return (long)i;
    return -1;
}

int rules_map_image(const struct rules_rule *rules, size_t n, const char *image,
                    struct rules_image *out, char *err, size_t errsize)
{
    const char *name, *end, *at, *slash, *colon;
    size_t namelen;
    long r = -1;
    int len;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    if (image == NULL || image[0] == '\0') {
        snprintf(err, errsize, "empty image name");
        return -1;
    }
    name = image;
    slash = strchr(image, '/');
    if (slash != NULL) {
        size_t hl = (size_t)(slash - image);
        if (memchr(image, '.', hl) != NULL || memchr(image, ':', hl) != NULL ||
            (hl == 9 && strncmp(image, "localhost", 9) == 0)) {
            if (hl == 0 || hl >= sizeof(out->ri_host)) {
                snprintf(err, errsize, "%s: bad registry host", image);
                return -1;
            }
            memcpy(out->ri_host, image, hl);
            out->ri_host[hl] = '\0';
            name = slash + 1;
        }
    }
    end = name + strlen(name);
    at = strchr(name, '@');
    if (at != NULL) {
        if (!digest_ok(at + 1, (size_t)(end - at - 1))) {
            snprintf(err, errsize, "%s: \"%s\" is not a digest (sha256:<64 hex>)", image, at + 1);
            return -1;
        }
        memcpy(out->ri_reference, at + 1, (size_t)(end - at - 1));
        out->ri_reference[end - at - 1] = '\0';
        out->ri_by_digest = 1;
        end = at;
    }
    /* A tag: the last ':' after the last '/' of the name. */
    colon = NULL;
    for (const char *p = name; p < end; p++) {
        if (*p == '/')
            colon = NULL;
        else if (*p == ':')
            colon = p;
    }
    if (colon != NULL) {
        if (!tag_ok(colon + 1, (size_t)(end - colon - 1))) {
            snprintf(err, errsize, "%s: \"%.*s\" is not a tag", image, (int)(end - colon - 1),
                     colon + 1);
            return -1;
        }
        if (!out->ri_by_digest) {
            memcpy(out->ri_reference, colon + 1, (size_t)(end - colon - 1));
            out->ri_reference[end - colon - 1] = '\0';
        }
        end = colon;
    }
    if (out->ri_reference[0] == '\0')
        memcpy(out->ri_reference, "latest", sizeof("latest"));
    namelen = (size_t)(end - name);
    if (!name_ok(name, namelen)) {
        snprintf(err, errsize,
                 "%s: \"%.*s\" is not a repository name (lowercase letters, "
                 "digits and . _ - between slashes)",
                 image, (int)namelen, name);
        return -1;
    }
    if (out->ri_host[0] != '\0') {
        r = rule_for_host(rules, n, out->ri_host);
        if (r == -1) {
            snprintf(err, errsize,
                     "%s: no rule mirrors the registry %s (add it to a rule's "
                     "mirror_for)",
                     image, out->ri_host);
            return -1;
        }
    } else {
        for (size_t i = 0; i < n && r == -1; i++)
            if (rules[i].rr_default)
                r = (long)i;
        if (r == -1) {
            snprintf(err, errsize, "%s: no registry host given and no rule is the default", image);
            return -1;
        }
    }
    if (rules[r].rr_library_prefix && memchr(name, '/', namelen) == NULL)
        len = snprintf(out->ri_name, sizeof(out->ri_name), "library/%.*s", (int)namelen, name);
    else
        len = snprintf(out->ri_name, sizeof(out->ri_name), "%.*s", (int)namelen, name);
    if (len < 0 || (size_t)len >= sizeof(out->ri_name) || len > 255) {
        snprintf(err, errsize, "%s: the repository name is too long (at most 255 bytes)", image);
        return -1;
    }
    out->ri_rule = (size_t)r;
    return 0;
}
