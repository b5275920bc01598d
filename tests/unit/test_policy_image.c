/* Unit tests for policy/policy_image.c: what users type for an image → rule, name, reference. */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "policy_image.h"

static char *const ecr_hosts[] = {"public.ecr.aws"};
static char *const hub_hosts[] = {"docker.io", "registry-1.docker.io"};
static char *const local_hosts[] = {"localhost:5001"};

static const struct rules_rule rules[] = {
    {"ecr-public", ecr_hosts, 1, 0, 0}, /* 0 */
    {"docker-hub", hub_hosts, 2, 1, 1}, /* 1: the default, library/ */
    {"local", local_hosts, 1, 0, 0},    /* 2 */
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))
#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void expect_ok(const char *image, size_t rule, const char *host, const char *name,
                      const char *ref, int by_digest)
{
    struct rules_image ri;
    char err[256];

    cr_assert_eq(rules_map_image(rules, NRULES, image, &ri, err, sizeof(err)), 0, "%s: %s", image,
                 err);
    cr_assert_eq(ri.ri_rule, rule, "%s: rule %zu", image, ri.ri_rule);
    cr_assert_str_eq(ri.ri_host, host, "%s", image);
    cr_assert_str_eq(ri.ri_name, name, "%s", image);
    cr_assert_str_eq(ri.ri_reference, ref, "%s", image);
    cr_assert_eq(ri.ri_by_digest, by_digest, "%s", image);
}

static void expect_err(const struct rules_rule *rs, size_t n, const char *image, const char *part)
{
    struct rules_image ri;
    char err[256];

    cr_assert_eq(rules_map_image(rs, n, image, &ri, err, sizeof(err)), -1, "%s", image);
    cr_assert(strstr(err, part) != NULL, "%s: \"%s\" lacks \"%s\"", image, err, part);
}

Test(policy_image, the_issue_examples)
{
    expect_ok("nginx", 1, "", "library/nginx", "latest", 0);
    expect_ok("docker.io/library/nginx:1.27", 1, "docker.io", "library/nginx", "1.27", 0);
    expect_ok("public.ecr.aws/aws-observability/aws-for-fluent-bit:2.23.3", 0, "public.ecr.aws",
              "aws-observability/aws-for-fluent-bit", "2.23.3", 0);
    expect_ok("nginx@sha256:" D64, 1, "", "library/nginx", "sha256:" D64, 1);
}

Test(policy_image, hosts_and_names)
{
    expect_ok("docker.io/nginx", 1, "docker.io", "library/nginx", "latest", 0);
    expect_ok("REGISTRY-1.docker.io/bitnami/redis:7", 1, "REGISTRY-1.docker.io", "bitnami/redis",
              "7", 0);
    expect_ok("bitnami/redis", 1, "", "bitnami/redis", "latest", 0);
    expect_ok("localhost:5001/x:v1.0_a-b", 2, "localhost:5001", "x", "v1.0_a-b", 0);
    /* A digest wins over a tag given with it. */
    expect_ok("public.ecr.aws/a/b:1@sha256:" D64, 0, "public.ecr.aws", "a/b", "sha256:" D64, 1);
    /* "localhost" without a port is a host too (and no rule mirrors it). */
    expect_err(rules, NRULES, "localhost/x", "localhost");
}

Test(policy_image, errors)
{
    static const struct rules_rule nodefault[] = {{"ecr-public", ecr_hosts, 1, 0, 0}};

    expect_err(rules, NRULES, "quay.io/coreos/etcd:3", "quay.io");
    expect_err(rules, NRULES, "", "empty");
    expect_err(rules, NRULES, "Nginx", "not a repository name");
    expect_err(rules, NRULES, "a//b", "not a repository name");
    expect_err(rules, NRULES, "nginx:", "not a tag");
    expect_err(rules, NRULES, "nginx:.x", "not a tag");
    expect_err(rules, NRULES, "nginx@sha256:abc", "not a digest");
    expect_err(rules, NRULES, "nginx@md5:" D64, "not a digest");
    expect_err(nodefault, 1, "nginx", "default");
    /* Found by image_fuzz: separators side by side, and library/ pushing a name past 255. */
    expect_err(rules, NRULES, "public.ecr.-bit", "not a repository name");
    expect_err(rules, NRULES, "library/a..b", "not a repository name");
    expect_err(rules, NRULES, "a/b/", "not a repository name");
    {
        char longname[260];
        memset(longname, 'a', 250);
        longname[250] = '\0';
        expect_err(rules, NRULES, longname,
                   ": the"); /* "...: the repository name is too long", cut */
    }
}
