/* Unit tests for policy/policy_rules.c: prefix, ?ns= and default routing, library/, errors. */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "policy_rules.h"

static char *const ecr_hosts[] = {"public.ecr.aws"};
static char *const hub_hosts[] = {"docker.io", "registry-1.docker.io"};
static char *const quay_hosts[] = {"quay.io"};

/* The embedded default plus two overlapping prefixes; docker-hub is the default. */
static const struct rules_rule rules[] = {
    {"ecr-public", ecr_hosts, 1, 0, 0},    /* 0 */
    {"docker-hub", hub_hosts, 2, 1, 1},    /* 1 */
    {"mirrors", NULL, 0, 0, 0},            /* 2 */
    {"mirrors/quay", quay_hosts, 1, 0, 0}, /* 3 */
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

/* Route <name>/<ns> over the rules above; expect OK with rule <idx> and upstream name <up>. */
static void expect_ok(const char *name, const char *ns, size_t idx, const char *up)
{
    struct rules_match m;
    enum rules_result r;

    memset(&m, 0x5a, sizeof(m));
    r = rules_match(rules, NRULES, name, ns, &m);
    cr_assert_eq(r, RULES_OK, "%s ns=%s: result %d", name, ns ? ns : "(null)", r);
    cr_assert_eq(m.rm_rule, idx, "%s ns=%s: rule %zu, want %zu", name, ns ? ns : "(null)",
                 m.rm_rule, idx);
    cr_assert_str_eq(m.rm_upstream_name, up, "%s ns=%s", name, ns ? ns : "(null)");
}

static void expect_result(const struct rules_rule *rs, size_t n, const char *name, const char *ns,
                          enum rules_result want)
{
    struct rules_match m;

    cr_assert_eq(rules_match(rs, n, name, ns, &m), want, "%s ns=%s", name, ns ? ns : "(null)");
}

Test(prefix, cut_and_rest)
{
    expect_ok("ecr-public/aws-observability/aws-for-fluent-bit", NULL, 0,
              "aws-observability/aws-for-fluent-bit");
    expect_ok("ecr-public/nginx/nginx", "", 0, "nginx/nginx");
    expect_ok("docker-hub/library/nginx", NULL, 1, "library/nginx");
}

Test(prefix, nested_names)
{
    expect_ok("docker-hub/bitnami/charts/redis", NULL, 1, "bitnami/charts/redis");
}

Test(prefix, longest_of_overlapping_prefixes)
{
    expect_ok("mirrors/quay/prometheus/node-exporter", NULL, 3, "prometheus/node-exporter");
    expect_ok("mirrors/quayx/app", NULL, 2, "quayx/app");
    expect_ok("mirrors/other/app", NULL, 2, "other/app");
}

Test(prefix, longest_wins_whatever_the_order)
{
    const struct rules_rule rev[] = {rules[3], rules[2]};

    struct rules_match m;
    cr_assert_eq(rules_match(rev, 2, "mirrors/quay/a/b", NULL, &m), RULES_OK);
    cr_assert_eq(m.rm_rule, 0);
    cr_assert_str_eq(m.rm_upstream_name, "a/b");
}

Test(prefix, string_prefix_is_not_segment_prefix)
{
    /* "docker-hubx" is not under "docker-hub": it falls to the default rule, whole. */
    expect_ok("docker-hubx/y", NULL, 1, "docker-hubx/y");
    /* Without a default it is unknown. */
    expect_result(rules, 1, "ecr-publicx/y", NULL, RULES_UNKNOWN);
}

Test(prefix, name_equal_to_prefix_is_empty)
{
    expect_result(rules, NRULES, "docker-hub", NULL, RULES_EMPTY_NAME);
    expect_result(rules, NRULES, "ecr-public", NULL, RULES_EMPTY_NAME);
    expect_result(rules, NRULES, "mirrors", NULL, RULES_EMPTY_NAME);
    expect_result(rules, NRULES, "mirrors/quay", NULL, RULES_EMPTY_NAME);
    expect_result(rules, NRULES, "", NULL, RULES_EMPTY_NAME);
}

Test(ns, match_without_prefix_in_name)
{
    expect_ok("library/nginx", "docker.io", 1, "library/nginx");
    expect_ok("aws-observability/aws-for-fluent-bit", "public.ecr.aws", 0,
              "aws-observability/aws-for-fluent-bit");
    expect_ok("prometheus/node-exporter", "quay.io", 3, "prometheus/node-exporter");
}

Test(ns, match_with_prefix_in_name_cuts_it)
{
    /* hosts.toml with a path and override_path = true. */
    expect_ok("docker-hub/library/nginx", "docker.io", 1, "library/nginx");
    expect_ok("ecr-public/nginx/nginx", "public.ecr.aws", 0, "nginx/nginx");
    expect_ok("mirrors/quay/prometheus/node-exporter", "quay.io", 3, "prometheus/node-exporter");
}

Test(ns, beats_another_rules_prefix)
{
    /* A Docker Hub repository that happens to be called ecr-public/...: ns decides. */
    expect_ok("ecr-public/thing", "docker.io", 1, "ecr-public/thing");
    /* The rule's own prefix as the whole name is a real one-segment repository there. */
    expect_ok("docker-hub", "docker.io", 1, "library/docker-hub");
}

Test(ns, case_insensitive)
{
    expect_ok("library/nginx", "Docker.IO", 1, "library/nginx");
    expect_ok("nginx/nginx", "PUBLIC.ECR.AWS", 0, "nginx/nginx");
    expect_ok("library/nginx", "registry-1.docker.io", 1, "library/nginx");
}

Test(ns, unknown_with_prefix_in_name_uses_prefix)
{
    expect_ok("ecr-public/nginx/nginx", "ghcr.io", 0, "nginx/nginx");
    expect_ok("docker-hub/redis", "ghcr.io", 1, "library/redis");
    expect_result(rules, NRULES, "docker-hub", "ghcr.io", RULES_EMPTY_NAME);
}

Test(ns, unknown_without_prefix_is_unknown_even_with_default)
{
    expect_result(rules, NRULES, "library/nginx", "ghcr.io", RULES_UNKNOWN);
    expect_result(rules, NRULES, "nginx", "ghcr.io", RULES_UNKNOWN);
}

Test(fallback, default_rule_takes_whole_name)
{
    expect_ok("library/nginx", NULL, 1, "library/nginx");
    expect_ok("bitnami/redis", "", 1, "bitnami/redis");
}

Test(fallback, no_default_is_unknown)
{
    const struct rules_rule nodef[] = {rules[0], rules[2]};

    expect_result(nodef, 2, "library/nginx", NULL, RULES_UNKNOWN);
    expect_result(nodef, 2, "nginx", "", RULES_UNKNOWN);
    expect_result(nodef, 0, "nginx", NULL, RULES_UNKNOWN);
    expect_result(NULL, 0, "nginx", "docker.io", RULES_UNKNOWN);
}

Test(library, one_segment_only)
{
    expect_ok("nginx", NULL, 1, "library/nginx");
    expect_ok("docker-hub/nginx", NULL, 1, "library/nginx");
    expect_ok("nginx", "docker.io", 1, "library/nginx");
    expect_ok("docker-hub/nginx", "docker.io", 1, "library/nginx");
    expect_ok("docker-hub/bitnami/redis", NULL, 1, "bitnami/redis");
    expect_ok("docker-hub/library/nginx", NULL, 1, "library/nginx");
}

Test(library, not_without_the_flag)
{
    expect_ok("ecr-public/nginx", NULL, 0, "nginx");
    expect_ok("nginx", "public.ecr.aws", 0, "nginx");
    expect_ok("mirrors/app", NULL, 2, "app");
}

Test(library, longest_name_fits)
{
    char name[256], want[300];
    struct rules_match m;

    memset(name, 'a', 255);
    name[255] = '\0';
    memcpy(want, "library/", 8);
    memcpy(want + 8, name, 256);
    cr_assert_eq(rules_match(rules, NRULES, name, NULL, &m), RULES_OK);
    cr_assert_str_eq(m.rm_upstream_name, want);
}

Test(prefix_list, formats)
{
    char buf[128];

    rules_prefix_list(rules, NRULES, buf, sizeof(buf));
    cr_assert_str_eq(buf, "ecr-public, docker-hub, mirrors, mirrors/quay");
    rules_prefix_list(rules, 1, buf, sizeof(buf));
    cr_assert_str_eq(buf, "ecr-public");
    rules_prefix_list(rules, 0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "");
}

Test(prefix_list, truncates_safely)
{
    char buf[16];

    memset(buf, 'x', sizeof(buf));
    rules_prefix_list(rules, NRULES, buf, sizeof(buf));
    cr_assert_eq(strnlen(buf, sizeof(buf)), sizeof(buf) - 1);
    cr_assert(strncmp(buf, "ecr-public, doc", sizeof(buf)) == 0, "got \"%s\"", buf);
    buf[0] = 'x';
    rules_prefix_list(rules, NRULES, buf, 1);
    cr_assert_eq(buf[0], '\0');
    rules_prefix_list(rules, NRULES, NULL, 0);
}
