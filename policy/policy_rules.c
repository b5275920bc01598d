/* Routes a repository name and containerd's ?ns= to the configured rule that answers it. */
#include "config.h"

#include "policy_rules.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The first rule listing <ns> in its mirror_for (case-insensitive), or -1. */
static long rule_for_ns(const struct rules_rule *rules, size_t n, const char *ns)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < rules[i].rr_nmirror_for; j++)
            if (rules[i].rr_mirror_for[j] != NULL && strcasecmp(rules[i].rr_mirror_for[j], ns) == 0)
                return (long)i;
    return -1;
}

/*
 * 1 when <prefix> is a whole-segment prefix of <name>: equal to it, or followed in it by '/'.
 * An empty prefix never matches.
 */
static int segment_prefix(const char *prefix, const char *name)
{
    size_t plen = strlen(prefix);

    if (plen == 0 || strncmp(prefix, name, plen) != 0)
        return 0;
    return name[plen] == '\0' || name[plen] == '/';
}

/* The rule whose prefix is the longest whole-segment prefix of <name>, or -1. */
static long rule_for_prefix(const struct rules_rule *rules, size_t n, const char *name)
{
    long best = -1;
    size_t bestlen = 0;

    for (size_t i = 0; i < n; i++) {
        const char *p = rules[i].rr_prefix;

        if (p == NULL || !segment_prefix(p, name))
            continue;
        if (best == -1 || strlen(p) > bestlen) {
            best = (long)i;
            bestlen = strlen(p);
        }
    }
    return best;
}

static long rule_default(const struct rules_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rules[i].rr_default)
            return (long)i;
    return -1;
}

/* <name> without the leading "<prefix>/" when it has one; otherwise <name> itself. */
static const char *cut_prefix(const char *prefix, const char *name)
{
    size_t plen;

    if (prefix == NULL)
        return name;
    plen = strlen(prefix);
    if (plen > 0 && strncmp(prefix, name, plen) == 0 && name[plen] == '/')
        return name + plen + 1;
    return name;
}

enum rules_result rules_match(const struct rules_rule *rules, size_t n, const char *name,
                              const char *ns, struct rules_match *out)
{
    int has_ns = ns != NULL && ns[0] != '\0';
    char upstream[sizeof(out->rm_upstream_name)];
    const char *rest = NULL;
    long r = -1;
    int len;

    if (name == NULL || name[0] == '\0')
        return RULES_EMPTY_NAME;
    if (has_ns)
        r = rule_for_ns(rules, n, ns);
    if (r != -1) {
        rest = cut_prefix(rules[r].rr_prefix, name);
    } else {
        r = rule_for_prefix(rules, n, name);
        if (r != -1) {
            rest = name + strlen(rules[r].rr_prefix);
            if (*rest == '\0')
                return RULES_EMPTY_NAME;
            rest++; /* the '/' after the prefix */
        }
    }
    if (r == -1 && !has_ns) {
        r = rule_default(rules, n);
        rest = name;
    }
    if (r == -1)
        return RULES_UNKNOWN;
    if (*rest == '\0')
        return RULES_EMPTY_NAME;

    if (rules[r].rr_library_prefix && strchr(rest, '/') == NULL)
        len = snprintf(upstream, sizeof(upstream), "library/%s", rest);
    else
        len = snprintf(upstream, sizeof(upstream), "%s", rest);
    /* Cannot happen for a grammar-checked name (at most 255 bytes); refuse rather than cut. */
    if (len < 0 || (size_t)len >= sizeof(upstream))
        return RULES_EMPTY_NAME;
    memcpy(out->rm_upstream_name, upstream, (size_t)len + 1);
    out->rm_rule = (size_t)r;
    return RULES_OK;
}

void rules_prefix_list(const struct rules_rule *rules, size_t n, char *buf, size_t size)
{
    size_t off = 0;

    if (size == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int len;

        if (rules[i].rr_prefix == NULL)
            continue;
        len = snprintf(buf + off, size - off, "%s%s", off > 0 ? ", " : "", rules[i].rr_prefix);
        if (len < 0)
            return;
        if ((size_t)len >= size - off)
            return; /* truncated, still NUL-terminated */
        off += (size_t)len;
    }
}
