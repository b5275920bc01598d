/* Which rule answers a repository name: prefix, containerd's ?ns=, or the default. Pure. */
#ifndef POLICY_RULES_H
#define POLICY_RULES_H

#include <stddef.h>

/* The facts of one rule that routing needs; strings borrowed from the config. */
struct rules_rule {
    const char *rr_prefix;      /* "docker-hub", may hold '/' */
    char *const *rr_mirror_for; /* hosts for ?ns= */
    size_t rr_nmirror_for;
    int rr_default;
    int rr_library_prefix;
};

#define RULES_NAME_MAX 300

struct rules_match {
    size_t rm_rule;                        /* index into the rules array */
    char rm_upstream_name[RULES_NAME_MAX]; /* repository name on the upstream */
};

enum rules_result {
    RULES_OK = 0,
    RULES_UNKNOWN,    /* no rule answers: NAME_UNKNOWN */
    RULES_EMPTY_NAME, /* the name is only a prefix ("docker-hub"): NAME_INVALID */
};

/*
 * Route the (already grammar-checked) repository <name>, with containerd's <ns> (NULL or ""
 * when absent), over <rules>[0..<n>):
 *  1. ns names a host in some rule's mirror_for (case-insensitive): that rule; when <name>
 *     starts with that rule's prefix + '/', the prefix is cut (a hosts.toml mirror URL with a
 *     path and override_path = true).
 *  2. otherwise the rule with the longest prefix that is a whole-segment prefix of <name>
 *     ("docker-hub/x" matches "docker-hub", "docker-hubx/y" does not); the rest is the name.
 *     A name equal to a prefix is RULES_EMPTY_NAME.
 *  3. otherwise, only when ns is absent, the default rule with the whole name.
 *  4. otherwise RULES_UNKNOWN.
 * Then, when the rule has library_prefix and the name has one segment, "library/" is added.
 * Fills <out> on RULES_OK.
 */
enum rules_result rules_match(const struct rules_rule *rules, size_t n, const char *name,
                              const char *ns, struct rules_match *out);

/* "docker-hub, ecr-public" (configured prefixes, comma-separated) into <buf>; for errors. */
void rules_prefix_list(const struct rules_rule *rules, size_t n, char *buf, size_t size);

#endif
