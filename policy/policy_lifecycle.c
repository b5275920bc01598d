/* ECR lifecycle-policy evaluation: which images of one repository a policy expires at <now>. */
#include "config.h"

#include "policy_lifecycle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LC_DAY 86400

int lifecycle_pattern_match(const char *pattern, const char *tag)
{
    const char *star = NULL, *resume = NULL;

    /* Greedy with one backtrack point: on a mismatch after a '*', let that '*' swallow one
     * more character and retry. Linear in practice, never recursive. */
    while (*tag != '\0') {
        if (*pattern == '*') {
            star = pattern++;
            resume = tag;
        } else if (*pattern == *tag) {
            pattern++;
            tag++;
        } else if (star != NULL) {
            pattern = star + 1;
            tag = ++resume;
        } else {
            return 0;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

static int any_tag_has_prefix(const struct lc_image *img, const char *prefix)
{
    size_t n = strlen(prefix);

    for (size_t t = 0; t < img->li_ntags; t++)
        if (strncmp(img->li_tags[t], prefix, n) == 0)
            return 1;
    return 0;
}

static int any_tag_matches(const struct lc_image *img, const char *pattern)
{
    for (size_t t = 0; t < img->li_ntags; t++)
        if (lifecycle_pattern_match(pattern, img->li_tags[t]))
            return 1;
    return 0;
}

/* ECR: an image matches a tag list when EVERY entry matches at least one of its tags. */
static int rule_selects(const struct lc_rule *r, const struct lc_image *img)
{
    switch (r->lr_tag_status) {
    case LC_ANY: return 1;
    case LC_UNTAGGED: return img->li_ntags == 0;
    case LC_TAGGED: break;
    }
    if (img->li_ntags == 0)
        return 0;
    for (size_t i = 0; i < r->lr_nprefixes; i++)
        if (!any_tag_has_prefix(img, r->lr_prefixes[i]))
            return 0;
    for (size_t i = 0; i < r->lr_npatterns; i++)
        if (!any_tag_matches(img, r->lr_patterns[i]))
            return 0;
    return 1;
}

/* Newest push first; equal push times by digest, byte order, the smaller counting as newer. */
static int newest_first(const void *a, const void *b)
{
    const struct lc_image *x = *(const struct lc_image *const *)a;
    const struct lc_image *y = *(const struct lc_image *const *)b;

    if (x->li_pushed_at != y->li_pushed_at)
        return x->li_pushed_at > y->li_pushed_at ? -1 : 1;
    return strcmp(x->li_digest ? x->li_digest : "", y->li_digest ? y->li_digest : "");
}

/* 1 when <t> lies more than <days> whole days before <now>; never on overflow. */
static int older_than_days(int64_t t, int64_t days, int64_t now)
{
    if (days < 0 || days > INT64_MAX / LC_DAY || t >= now)
        return 0;
    if (t < 0 && now > INT64_MAX + t)
        return 1; /* now - t would overflow: certainly older */
    return now - t > days * LC_DAY;
}

static int by_priority(const void *a, const void *b)
{
    const struct lc_rule *x = *(const struct lc_rule *const *)a;
    const struct lc_rule *y = *(const struct lc_rule *const *)b;

    return (x->lr_priority > y->lr_priority) - (x->lr_priority < y->lr_priority);
}

/*
 * Each rule in priority order: its selection is taken from the images no earlier rule
 * selected, and those images are then marked seen, so later rules neither expire nor count
 * them. Within the selection, imageCountMoreThan sorts newest first and expires past the
 * first N; the since* counts compare each image's own time with <now>.
 */
size_t lifecycle_evaluate(const struct lc_policy *p, const struct lc_image *images, size_t n,
                          int64_t now, int *expired)
{
    const struct lc_rule **order = NULL;
    const struct lc_image **sel = NULL;
    unsigned char *seen = NULL;
    size_t nexpired = 0;

    for (size_t i = 0; i < n; i++)
        expired[i] = 0;
    if (p == NULL || p->lp_nrules == 0 || n == 0)
        return 0;
    /* The config sorts the rules already; sorting a copy keeps this correct for any caller. */
    order = xcalloc(p->lp_nrules, sizeof(*order));
    for (size_t r = 0; r < p->lp_nrules; r++)
        order[r] = &p->lp_rules[r];
    qsort(order, p->lp_nrules, sizeof(*order), by_priority);
    sel = xcalloc(n, sizeof(*sel));
    seen = xcalloc(n, 1);

    for (size_t r = 0; r < p->lp_nrules; r++) {
        const struct lc_rule *rule = order[r];
        size_t m = 0;

        for (size_t i = 0; i < n; i++) {
            if (!seen[i] && rule_selects(rule, &images[i])) {
                seen[i] = 1;
                sel[m++] = &images[i];
            }
        }
        if (rule->lr_count_type == LC_COUNT_MORE_THAN) {
            if (rule->lr_count_number < 0 || (uint64_t)m <= (uint64_t)rule->lr_count_number)
                continue;
            qsort(sel, m, sizeof(*sel), newest_first);
            for (size_t k = (size_t)rule->lr_count_number; k < m; k++) {
                expired[sel[k] - images] = rule->lr_priority;
                nexpired++;
            }
            continue;
        }
        for (size_t k = 0; k < m; k++) {
            const struct lc_image *img = sel[k];
            int64_t t = img->li_pushed_at;
            /* ECR: an image never pulled counts from its push. */
            if (rule->lr_count_type == LC_SINCE_PULLED && img->li_pulled_at != 0)
                t = img->li_pulled_at;
            if (older_than_days(t, rule->lr_count_number, now)) {
                expired[img - images] = rule->lr_priority;
                nexpired++;
            }
        }
    }
    free(order);
    free(sel);
    free(seen);
    return nexpired;
}

static void free_list(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void lifecycle_policy_free(struct lc_policy *p)
{
    if (p == NULL)
        return;
    for (size_t r = 0; r < p->lp_nrules; r++) {
        free_list(p->lp_rules[r].lr_prefixes, p->lp_rules[r].lr_nprefixes);
        free_list(p->lp_rules[r].lr_patterns, p->lp_rules[r].lr_npatterns);
    }
    free(p->lp_rules);
    free(p);
}
