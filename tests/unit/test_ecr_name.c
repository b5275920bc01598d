/* Unit tests for proxy/aws/ecr_name.c: ECR's repositoryName pattern, its lengths, the joining. */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "ecr_name.h"

static void name_ok(const char *s)
{
    const char *why = NULL;

    cr_assert_eq(ecr_name_valid(s, &why), 1, "rejected \"%s\": %s", s, why ? why : "");
}

/* <s> is refused, for a reason that contains <want>. */
static void name_bad(const char *s, const char *want)
{
    const char *why = NULL;

    cr_assert_eq(ecr_name_valid(s, &why), 0, "accepted \"%s\"", s);
    cr_assert_not_null(why, "no reason for \"%s\"", s);
    cr_assert(strstr(why, want) != NULL, "\"%s\": reason \"%s\" lacks \"%s\"", s, why, want);
}

Test(ecr_name, valid)
{
    name_ok("ab");
    name_ok("a/b");
    name_ok("nginx");
    name_ok("docker-hub/library/nginx");
    name_ok("ecr-public/aws-observability/aws-for-fluent-bit");
    name_ok("cache/docker-hub/bitnami/charts/redis");
    name_ok("a.b_c-d/e0");
    name_ok("0/9");
    name_ok("a1.2.3");
    name_ok("x/y/z/w/v/u");
    name_ok("library/ubuntu_22.04-lts");
}

Test(ecr_name, invalid_pattern)
{
    name_bad("", "shorter than 2 bytes");
    name_bad("a", "shorter than 2 bytes");
    name_bad("Nginx", "uppercase");
    name_bad("docker-hub/library/Nginx", "uppercase");
    name_bad("/nginx", "starts with '/'");
    name_bad("nginx/", "ends with '/'");
    name_bad("a//b", "empty path component");
    name_bad("a__b", "two of");
    name_bad("a--b", "two of");
    name_bad("a.-b", "two of");
    name_bad("a..b", "two of");
    name_bad("_ab", "starts with");
    name_bad("a/-b", "starts with");
    name_bad("ab-", "ends with");
    name_bad("a./b", "component ends with");
    name_bad("a b", "character other than");
    name_bad("a:b", "character other than");
    name_bad("a@sha256", "character other than");
    name_bad("caf\xc3\xa9", "character other than");
}

Test(ecr_name, why_may_be_null)
{
    cr_assert_eq(ecr_name_valid("Bad", NULL), 0);
    cr_assert_eq(ecr_name_valid("good", NULL), 1);
}

Test(ecr_name, length_boundary)
{
    char s[ECR_NAME_MAX + 2];

    memset(s, 'a', ECR_NAME_MAX);
    s[ECR_NAME_MAX] = '\0';
    name_ok(s);
    s[100] = '/';
    name_ok(s);
    memset(s, 'b', ECR_NAME_MAX + 1);
    s[ECR_NAME_MAX + 1] = '\0';
    name_bad(s, "longer than 256 bytes");
}

Test(ecr_repo_name, joins_with_and_without_prefix)
{
    char out[ECR_NAME_MAX + 1];
    const char *why = NULL;

    cr_assert_eq(ecr_repo_name("", "docker-hub", "library/nginx", out, sizeof(out), &why), 0);
    cr_assert_str_eq(out, "docker-hub/library/nginx");
    cr_assert_eq(ecr_repo_name(NULL, "docker-hub", "library/nginx", out, sizeof(out), &why), 0);
    cr_assert_str_eq(out, "docker-hub/library/nginx");
    cr_assert_eq(ecr_repo_name("cache", "ecr-public", "nginx/nginx", out, sizeof(out), &why), 0);
    cr_assert_str_eq(out, "cache/ecr-public/nginx/nginx");
    cr_assert_eq(ecr_repo_name("team/cache", "mirrors/quay", "a/b", out, sizeof(out), &why), 0);
    cr_assert_str_eq(out, "team/cache/mirrors/quay/a/b");
    cr_assert_eq(ecr_repo_name(NULL, "a", "b", out, sizeof(out), &why), 0);
    cr_assert_str_eq(out, "a/b");
}

Test(ecr_repo_name, refuses_invalid_results)
{
    char out[ECR_NAME_MAX + 1];
    const char *why = NULL;

    /* An OCI name ECR cannot hold: '__' and '--' are OCI separators, not ECR ones. */
    cr_assert_eq(ecr_repo_name("", "docker-hub", "bitnami/a__b", out, sizeof(out), &why), -1);
    cr_assert_str_eq(out, "", "a refused name leaves nothing in out");
    cr_assert(strstr(why, "two of") != NULL, "%s", why);
    cr_assert_eq(ecr_repo_name("", "docker--hub", "nginx", out, sizeof(out), &why), -1);
    cr_assert_eq(ecr_repo_name("Cache", "docker-hub", "nginx", out, sizeof(out), &why), -1);
    cr_assert(strstr(why, "uppercase") != NULL, "%s", why);
    cr_assert_eq(ecr_repo_name("cache/", "docker-hub", "nginx", out, sizeof(out), &why), -1);
    cr_assert(strstr(why, "empty path component") != NULL, "%s", why);
    cr_assert_eq(ecr_repo_name("", "docker-hub", "", out, sizeof(out), &why), -1);
    cr_assert(strstr(why, "ends with '/'") != NULL, "%s", why);
    cr_assert_eq(ecr_repo_name("", "", "nginx", out, sizeof(out), &why), -1);
    cr_assert(strstr(why, "starts with '/'") != NULL, "%s", why);
    cr_assert_eq(ecr_repo_name("", NULL, "nginx", out, sizeof(out), NULL), -1);
}

/* "docker-hub/" is 11 bytes: a name part of 245 bytes makes exactly 256. */
Test(ecr_repo_name, length_boundary_and_buffer)
{
    char out[ECR_NAME_MAX + 1], small[17], name[300];
    const char *why = NULL;

    memset(name, 'n', 245);
    name[245] = '\0';
    cr_assert_eq(ecr_repo_name("", "docker-hub", name, out, sizeof(out), &why), 0, "%s", why);
    cr_assert_eq(strlen(out), ECR_NAME_MAX);
    /* 256 bytes and its NUL need 257: one byte less does not fit. */
    cr_assert_eq(ecr_repo_name("", "docker-hub", name, out, ECR_NAME_MAX, &why), -1);
    cr_assert(strstr(why, "does not fit") != NULL, "%s", why);
    name[245] = 'n';
    name[246] = '\0';
    cr_assert_eq(ecr_repo_name("", "docker-hub", name, out, sizeof(out), &why), -1);
    cr_assert(strstr(why, "longer than 256 bytes") != NULL, "%s", why);
    /* The prefix counts with its '/': "cache/docker-hub/" is 17 bytes. */
    name[239] = '\0';
    cr_assert_eq(ecr_repo_name("cache", "docker-hub", name, out, sizeof(out), &why), 0, "%s", why);
    cr_assert_eq(strlen(out), ECR_NAME_MAX);
    cr_assert_eq(ecr_repo_name("cache", "docker-hub", "nginx", small, sizeof(small), &why), -1);
    cr_assert(strstr(why, "does not fit") != NULL, "%s", why);
    cr_assert_str_eq(small, "");
    /* "docker-hub/nginx" is 16 bytes: 17 with its NUL, exactly small's size. */
    cr_assert_eq(ecr_repo_name("", "docker-hub", "nginx", small, sizeof(small), &why), 0);
    cr_assert_str_eq(small, "docker-hub/nginx");
}
