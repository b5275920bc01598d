/* Unit tests for policy/policy_lifecycle.c: ECR's documented examples, priorities, the tag lists,
 * the counts, ties and the clock. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "policy_lifecycle.h"

#define DAY 86400
#define NOW ((int64_t)1700000000)
#define AGO(days) (NOW - (int64_t)(days)*DAY)
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static char *prod[] = {"prod"};
static char *beta[] = {"beta"};
static char *alpha_beta[] = {"alpha", "beta"};
static char *prod_star[] = {"prod*"};
static char *beta_star[] = {"beta*"};
static char *v_star[] = {"v*"};

static struct lc_rule count_rule(int prio, char **prefixes, size_t np, char **patterns, size_t npat,
                                 int64_t keep)
{
    struct lc_rule r = {prio, LC_TAGGED, prefixes, np, patterns, npat, LC_COUNT_MORE_THAN, keep};
    return r;
}

/* Evaluate <rules> over <imgs>; expect expired[i] == want[i] for each image. */
static void expect(struct lc_rule *rules, size_t nrules, const struct lc_image *imgs, size_t n,
                   const int *want)
{
    struct lc_policy p = {rules, nrules};
    int got[16];
    size_t nwant = 0;

    cr_assert(n <= LEN(got));
    memset(got, 0x5a, sizeof(got));
    for (size_t i = 0; i < n; i++)
        nwant += want[i] != 0;
    cr_assert_eq(lifecycle_evaluate(&p, imgs, n, NOW, got), nwant);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "image %zu (%s): expired by %d, want %d", i,
                     imgs[i].li_digest, got[i], want[i]);
}

Test(pattern, ecr_wildcards)
{
    cr_assert(lifecycle_pattern_match("prod*", "prod"));
    cr_assert(lifecycle_pattern_match("prod*", "prod1"));
    cr_assert(lifecycle_pattern_match("prod*", "production-team1"));
    cr_assert(lifecycle_pattern_match("*prod*", "repo-production"));
    cr_assert(lifecycle_pattern_match("*prod*", "prod-team"));
    cr_assert_not(lifecycle_pattern_match("prod*", "pro"));
    cr_assert_not(lifecycle_pattern_match("prod*", "xprod"));
    cr_assert_not(lifecycle_pattern_match("prod*", "Prod1"), "case-sensitive");
    cr_assert(lifecycle_pattern_match("latest", "latest"));
    cr_assert_not(lifecycle_pattern_match("latest", "latest2"), "the whole tag must match");
    cr_assert_not(lifecycle_pattern_match("latest", "xlatest"));
    cr_assert(lifecycle_pattern_match("*test*1*2*3", "my-test-1-2-3"));
    cr_assert_not(lifecycle_pattern_match("*test*1*2*3", "my-test-1-2-3-4"));
    cr_assert(lifecycle_pattern_match("test*1*2*3*", "test123"));
    cr_assert(lifecycle_pattern_match("*", "anything"));
    cr_assert(lifecycle_pattern_match("a*b*c", "aXbYbZc"));
    cr_assert_not(lifecycle_pattern_match("a*b*c", "aXbYbZ"));
    cr_assert(lifecycle_pattern_match("**x", "x"));
    cr_assert(lifecycle_pattern_match("v*.*", "v1.2"));
    cr_assert_not(lifecycle_pattern_match("v*.*", "v12"));
}

/* ECR's "Filtering on multiple rules", example A: only Image A expires (by rule 1). */
Test(ecr_examples, multiple_rules_a)
{
    const char *ta[] = {"beta-1", "prod-1"}, *tb[] = {"beta-2", "prod-2"}, *tc[] = {"beta-3"};
    struct lc_image imgs[] = {
        {"sha256:a", ta, 2, AGO(10), 0},
        {"sha256:b", tb, 2, AGO(9), 0},
        {"sha256:c", tc, 1, AGO(8), 0},
    };
    struct lc_rule rules[] = {count_rule(1, prod, 1, NULL, 0, 1),
                              count_rule(2, beta, 1, NULL, 0, 1)};
    int want[] = {1, 0, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* Example B: the same repository with the priorities swapped: A and B expire (by rule 1). */
Test(ecr_examples, multiple_rules_b)
{
    const char *ta[] = {"beta-1", "prod-1"}, *tb[] = {"beta-2", "prod-2"}, *tc[] = {"beta-3"};
    struct lc_image imgs[] = {
        {"sha256:a", ta, 2, AGO(10), 0},
        {"sha256:b", tb, 2, AGO(9), 0},
        {"sha256:c", tc, 1, AGO(8), 0},
    };
    struct lc_rule rules[] = {count_rule(1, beta, 1, NULL, 0, 1),
                              count_rule(2, prod, 1, NULL, 0, 1)};
    int want[] = {1, 1, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* "Filtering on multiple tags in a single rule", example A: prefixes are ANDed; only C. */
Test(ecr_examples, multiple_prefixes_all_must_match)
{
    const char *ta[] = {"alpha-1"}, *tb[] = {"beta-1"}, *tc[] = {"alpha-2", "beta-2"},
               *td[] = {"alpha-3"}, *te[] = {"beta-3"}, *tf[] = {"alpha-4", "beta-4"};
    struct lc_image imgs[] = {
        {"sha256:a", ta, 1, AGO(12), 0}, {"sha256:b", tb, 1, AGO(11), 0},
        {"sha256:c", tc, 2, AGO(10), 0}, {"sha256:d", td, 1, AGO(4), 0},
        {"sha256:e", te, 1, AGO(3), 0},  {"sha256:f", tf, 2, AGO(2), 0},
    };
    struct lc_rule rules[] = {
        {1, LC_TAGGED, alpha_beta, 2, NULL, 0, LC_SINCE_PUSHED, 5},
    };
    int want[] = {0, 0, 1, 0, 0, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* Example B: tags are not exclusive; of three images matching both prefixes, A and B go. */
Test(ecr_examples, tags_not_exclusive)
{
    const char *ta[] = {"alpha-1", "beta-1", "gamma-1"}, *tb[] = {"alpha-2", "beta-2"},
               *tc[] = {"alpha-3", "beta-3", "gamma-2"};
    struct lc_image imgs[] = {
        {"sha256:a", ta, 3, AGO(10), 0},
        {"sha256:b", tb, 2, AGO(9), 0},
        {"sha256:c", tc, 3, AGO(8), 0},
    };
    struct lc_rule rules[] = {count_rule(1, alpha_beta, 2, NULL, 0, 1)};
    int want[] = {1, 1, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* "Filtering on image age": prod* older than 14 days; exactly 14 days old stays. */
Test(ecr_examples, image_age_pattern)
{
    const char *p1[] = {"prod"}, *p2[] = {"production-team1"}, *p3[] = {"prod1"}, *d[] = {"dev-1"};
    struct lc_image imgs[] = {
        {"sha256:1", p1, 1, AGO(20), 0},   {"sha256:2", p2, 1, AGO(15), 0},
        {"sha256:3", p3, 1, AGO(14), 0},   {"sha256:4", d, 1, AGO(30), 0},
        {"sha256:5", NULL, 0, AGO(30), 0},
    };
    struct lc_rule rules[] = {{1, LC_TAGGED, NULL, 0, prod_star, 1, LC_SINCE_PUSHED, 14}};
    int want[] = {1, 1, 0, 0, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
    imgs[2].li_pushed_at = AGO(14) - 1; /* one second past 14 days */
    want[2] = 1;
    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* "Filtering on image count": keep only one untagged image, the newest. */
Test(ecr_examples, image_count_untagged)
{
    const char *t[] = {"latest"};
    struct lc_image imgs[] = {
        {"sha256:1", NULL, 0, AGO(3), 0},
        {"sha256:2", NULL, 0, AGO(1), 0},
        {"sha256:3", t, 1, AGO(9), 0},
        {"sha256:4", NULL, 0, AGO(2), 0},
    };
    struct lc_rule rules[] = {{1, LC_UNTAGGED, NULL, 0, NULL, 0, LC_COUNT_MORE_THAN, 1}};
    int want[] = {1, 0, 0, 1};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* The rules array's order does not matter: the lowest rulePriority applies first. */
Test(evaluate, lowest_priority_first)
{
    const char *ta[] = {"beta-1", "prod-1"}, *tb[] = {"beta-2", "prod-2"}, *tc[] = {"beta-3"};
    struct lc_image imgs[] = {
        {"sha256:a", ta, 2, AGO(10), 0},
        {"sha256:b", tb, 2, AGO(9), 0},
        {"sha256:c", tc, 1, AGO(8), 0},
    };
    struct lc_rule rules[] = {count_rule(20, prod, 1, NULL, 0, 1),
                              count_rule(7, beta, 1, NULL, 0, 1)};
    int want[] = {7, 7, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* An image a rule selected and kept is neither expired nor counted by a later rule. */
Test(evaluate, kept_images_not_seen_later)
{
    const char *tx[] = {"prod-1", "beta-1"}, *ty[] = {"beta-2"};
    struct lc_image imgs[] = {
        {"sha256:x", tx, 2, AGO(1), 0},
        {"sha256:y", ty, 1, AGO(5), 0},
    };
    struct lc_rule rules[] = {{1, LC_TAGGED, NULL, 0, prod_star, 1, LC_COUNT_MORE_THAN, 1},
                              {2, LC_TAGGED, NULL, 0, beta_star, 1, LC_COUNT_MORE_THAN, 1}};
    int want[] = {0, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* An "any" rule last only sees what the earlier rules left. */
Test(evaluate, any_rule_sees_the_rest)
{
    const char *v1[] = {"v1"}, *v2[] = {"v2"}, *v3[] = {"v3"}, *dev[] = {"dev"};
    struct lc_image imgs[] = {
        {"sha256:1", v1, 1, AGO(100), 0},  {"sha256:2", v2, 1, AGO(90), 0},
        {"sha256:3", v3, 1, AGO(80), 0},   {"sha256:4", dev, 1, AGO(70), 0},
        {"sha256:5", NULL, 0, AGO(60), 0},
    };
    struct lc_rule rules[] = {{1, LC_TAGGED, NULL, 0, v_star, 1, LC_COUNT_MORE_THAN, 10},
                              {2, LC_ANY, NULL, 0, NULL, 0, LC_SINCE_PUSHED, 65}};
    int want[] = {0, 0, 0, 2, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/*
 * The operator's policy of issue #12 in DESIGN.md's words: expire untagged after 1 day, keep
 * the last 2 v* tags, expire whatever was not pulled in 30 days.
 */
Test(evaluate, operator_policy)
{
    const char *v1[] = {"v1.0"}, *v2[] = {"v1.1"}, *v3[] = {"v1.2", "latest"}, *l[] = {"nightly"},
               *m[] = {"main"};
    struct lc_image imgs[] = {
        {"sha256:01", NULL, 0, AGO(2), AGO(1)},   /* untagged, 2 days: expires (1) */
        {"sha256:02", NULL, 0, NOW - 3600, 0},    /* untagged, an hour: stays */
        {"sha256:03", v1, 1, AGO(300), AGO(200)}, /* oldest v*: expires (2) */
        {"sha256:04", v2, 1, AGO(200), AGO(100)}, /* kept by rule 2 though not pulled */
        {"sha256:05", v3, 2, AGO(100), AGO(1)},   /* kept by rule 2 */
        {"sha256:06", l, 1, AGO(40), AGO(31)},    /* pulled 31 days ago: expires (3) */
        {"sha256:07", m, 1, AGO(40), AGO(29)},    /* pulled 29 days ago: stays */
        {"sha256:08", m, 1, AGO(31), 0},          /* never pulled, pushed 31 days ago: (3) */
    };
    struct lc_rule rules[] = {{1, LC_UNTAGGED, NULL, 0, NULL, 0, LC_SINCE_PUSHED, 1},
                              {2, LC_TAGGED, NULL, 0, v_star, 1, LC_COUNT_MORE_THAN, 2},
                              {3, LC_ANY, NULL, 0, NULL, 0, LC_SINCE_PULLED, 30}};
    int want[] = {1, 0, 2, 0, 0, 3, 0, 3};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

/* Equal push times: the larger digest counts as older, whatever the input order. */
Test(evaluate, ties_by_digest)
{
    struct lc_image imgs[] = {
        {"sha256:bb", NULL, 0, AGO(1), 0},
        {"sha256:aa", NULL, 0, AGO(1), 0},
        {"sha256:cc", NULL, 0, AGO(1), 0},
    };
    struct lc_image swapped[] = {imgs[2], imgs[0], imgs[1]};
    struct lc_rule rules[] = {{1, LC_UNTAGGED, NULL, 0, NULL, 0, LC_COUNT_MORE_THAN, 1}};
    int want[] = {1, 0, 1};
    int want_swapped[] = {1, 1, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
    expect(rules, LEN(rules), swapped, LEN(swapped), want_swapped);
}

/* sinceImagePulled: the last pull, else the push; the clock is <now> only. */
Test(evaluate, since_pulled)
{
    struct lc_image imgs[] = {
        {"sha256:1", NULL, 0, AGO(100), AGO(2)}, {"sha256:2", NULL, 0, AGO(100), AGO(8)},
        {"sha256:3", NULL, 0, AGO(100), 0},      {"sha256:4", NULL, 0, AGO(3), 0},
        {"sha256:5", NULL, 0, NOW + 100, 0}, /* in the future: never expires */
    };
    struct lc_rule rules[] = {{4, LC_ANY, NULL, 0, NULL, 0, LC_SINCE_PULLED, 7}};
    int want[] = {0, 4, 4, 0, 0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

Test(evaluate, huge_day_count_never_overflows)
{
    struct lc_image imgs[] = {{"sha256:1", NULL, 0, INT64_MIN + 1, 0}};
    struct lc_rule rules[] = {{1, LC_ANY, NULL, 0, NULL, 0, LC_SINCE_PUSHED, INT64_MAX}};
    int want[] = {0};

    expect(rules, LEN(rules), imgs, LEN(imgs), want);
    rules[0].lr_count_number = 1;
    want[0] = 1;
    expect(rules, LEN(rules), imgs, LEN(imgs), want);
}

Test(evaluate, empty_policy_expires_nothing)
{
    struct lc_image imgs[] = {{"sha256:1", NULL, 0, AGO(1000), 0}};
    struct lc_policy empty = {NULL, 0};
    int got[1] = {42};

    cr_assert_eq(lifecycle_evaluate(NULL, imgs, 1, NOW, got), 0);
    cr_assert_eq(got[0], 0);
    got[0] = 42;
    cr_assert_eq(lifecycle_evaluate(&empty, imgs, 1, NOW, got), 0);
    cr_assert_eq(got[0], 0);
    cr_assert_eq(lifecycle_evaluate(&empty, NULL, 0, NOW, got), 0);
}

Test(policy, free_accepts_null)
{
    lifecycle_policy_free(NULL);
}

/*
 * The issue's example policy: keep the last 10 images tagged with both a "prod-" and a
 * "release-" tag (ECR ANDs the prefixes), expire untagged images pushed over a day ago.
 */
Test(evaluate, the_issues_example_policy)
{
    static char *prod_release[] = {"prod-", "release-"};
    struct lc_rule rules[2] = {
        count_rule(1, prod_release, 2, NULL, 0, 10),
        {2, LC_UNTAGGED, NULL, 0, NULL, 0, LC_SINCE_PUSHED, 1},
    };
    static const char *both[12][2] = {
        {"prod-1", "release-1"},   {"prod-2", "release-2"},   {"prod-3", "release-3"},
        {"prod-4", "release-4"},   {"prod-5", "release-5"},   {"prod-6", "release-6"},
        {"prod-7", "release-7"},   {"prod-8", "release-8"},   {"prod-9", "release-9"},
        {"prod-10", "release-10"}, {"prod-11", "release-11"}, {"prod-12", "release-12"},
    };
    static const char *only_prod[] = {"prod-old"};
    static const char *digests[15] = {"d01", "d02", "d03", "d04", "d05", "d06",   "d07",  "d08",
                                      "d09", "d10", "d11", "d12", "p",   "u-old", "u-new"};
    struct lc_image imgs[15];
    int want[15] = {0};

    for (int i = 0; i < 12; i++) {
        imgs[i] = (struct lc_image){digests[i], both[i], 2, AGO(30 - i), 0};
    }
    imgs[12] = (struct lc_image){digests[12], only_prod, 1, AGO(100), 0};
    imgs[13] = (struct lc_image){digests[13], NULL, 0, AGO(2), NOW};
    imgs[14] = (struct lc_image){digests[14], NULL, 0, NOW - 3600, 0};
    /* The two oldest of the twelve; the image with only a prod- tag is not selected by rule 1
     * and is tagged, so rule 2 does not see it either; the untagged one pushed 2 days ago goes
     * whatever its pulls; the one pushed an hour ago stays. */
    want[0] = want[1] = 1;
    want[13] = 2;
    expect(rules, 2, imgs, 15, want);
}
