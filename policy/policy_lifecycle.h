/*
 * ECR lifecycle-policy rules as a pure function: (one repository's images with their facts,
 * now) -> the images to expire, with ECR's evaluation semantics. The JSON text is parsed by
 * the config (config_lifecycle.c); nothing here reads a file, a clock or the index.
 *
 * The semantics (ECR user guide, "Lifecycle policy evaluation rules" and "Lifecycle policy
 * properties"; docs/internals/lifecycle.md has the sources and what we do not copy):
 *   - rules are applied in rulePriority order, lowest number first;
 *   - an image a rule's selection matches is not seen by any later rule, whether that rule
 *     expired it or kept it (imageCountMoreThan keeps the newest N it matches): later rules
 *     neither expire it nor count it; so an image is expired by one rule or none;
 *   - tagStatus "tagged" matches images with at least one tag and, as ECR documents it, with
 *     EVERY entry of the list matched by at least one of their tags (entries are ANDed, not
 *     ORed): tagPrefixList ["alpha", "beta"] wants a tag starting with "alpha" and a tag
 *     starting with "beta"; tagPatternList the same with patterns, '*' matching any run of
 *     characters (none included), the whole tag matched, case-sensitive. A tagged rule with
 *     both lists empty (the config refuses it) matches every tagged image. "untagged" matches
 *     images without tags; "any" every image;
 *   - imageCountMoreThan N: of the matched images, the N most recently pushed stay, the rest
 *     expire; images pushed at the same second are ordered by digest (strcmp), the smaller
 *     counting as the more recent, so the outcome never depends on input order;
 *   - sinceImagePushed / sinceImagePulled N days: matched images pushed / last pulled more
 *     than N*86400 seconds before <now> expire (exactly N days old stays); an image never
 *     pulled (li_pulled_at 0) counts from its push, as ECR does;
 *   - "pushed" is when this appliance first cached the image; "pulled" when it last served it.
 */
#ifndef POLICY_LIFECYCLE_H
#define POLICY_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

enum lc_tag_status { LC_TAGGED = 0, LC_UNTAGGED, LC_ANY };
enum lc_count_type { LC_COUNT_MORE_THAN = 0, LC_SINCE_PUSHED, LC_SINCE_PULLED };

struct lc_rule {
    int lr_priority; /* rulePriority, >= 1, unique in a policy */
    enum lc_tag_status lr_tag_status;
    char **lr_prefixes; /* tagPrefixList (tagged only), or NULL */
    size_t lr_nprefixes;
    char **lr_patterns; /* tagPatternList (tagged only), or NULL */
    size_t lr_npatterns;
    enum lc_count_type lr_count_type;
    int64_t lr_count_number; /* images for imageCountMoreThan, else days; >= 1 */
};

/* A parsed policy: its rules sorted by lr_priority, ascending. */
struct lc_policy {
    struct lc_rule *lp_rules;
    size_t lp_nrules;
};

/* One image of a repository: a manifest digest with the tags that point at it here. */
struct lc_image {
    const char *li_digest;
    const char *const *li_tags; /* may be NULL when li_ntags is 0 */
    size_t li_ntags;
    int64_t li_pushed_at; /* first cached here, Unix seconds */
    int64_t li_pulled_at; /* last served here, Unix seconds; 0: never */
};

/*
 * Evaluate <p> over the <n> images of one repository at <now>. For each image i, expired[i]
 * is set to the rulePriority of the rule that expires it, or 0 when it stays. Returns the
 * number of images expired. <p> NULL or empty expires nothing.
 */
size_t lifecycle_evaluate(const struct lc_policy *p, const struct lc_image *images, size_t n,
                          int64_t now, int *expired);

/* 1 when <tag> matches ECR wildcard <pattern> ('*' any run, everything else literal). */
int lifecycle_pattern_match(const char *pattern, const char *tag);

/* Free <p> and everything it owns; accepts NULL. */
void lifecycle_policy_free(struct lc_policy *p);

#endif
