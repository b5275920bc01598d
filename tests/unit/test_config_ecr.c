/* Unit tests for proxy/config/config_ecr.c: the "ecr" block, every key and default, each bad
 * value's exact key path, and the rules' prefixes the tier needs. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "util.h"

static const char *const ok_rules =
    "\"rules\":[{\"prefix\":\"ecr-public\",\"upstream\":\"https://public.ecr.aws\"}]";

/* Load <json>; expect failure whose message lines include <want>. */
static void expect_error(const char *json, const char *want)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);

    cr_assert_null(cfg, "expected %s to fail", json);
    cr_assert_not_null(errs);
    cr_assert(strstr(errs, want) != NULL, "errors \"%s\" lack \"%s\"", errs, want);
    free(errs);
}

static struct config *expect_ok(const char *json)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);

    cr_assert_not_null(cfg, "expected %s to load, got: %s", json, errs ? errs : "");
    cr_assert_null(errs);
    return cfg;
}

/* {"ecr": {<inner>}, <ok_rules>} loaded; the caller frees. */
static struct config *ecr_ok(const char *inner)
{
    char *json = xasprintf("{\"ecr\":{%s},%s}", inner, ok_rules);
    struct config *cfg = expect_ok(json);

    free(json);
    return cfg;
}

Test(config_ecr, absent_and_default_have_no_tier)
{
    struct config *cfg = config_default();
    char json[256];

    cr_assert_null(cfg->cfg_ecr);
    cr_assert(cfg->cfg_rules[0].rule_ecr && cfg->cfg_rules[1].rule_ecr);
    config_free(cfg);
    snprintf(json, sizeof(json), "{%s}", ok_rules);
    cfg = expect_ok(json);
    cr_assert_null(cfg->cfg_ecr);
    cr_assert_eq(cfg->cfg_rules[0].rule_ecr, 1, "rules[].ecr defaults to true");
    config_free(cfg);
}

Test(config_ecr, empty_block_is_every_default)
{
    struct config *cfg = ecr_ok("");
    struct config_ecr *e = cfg->cfg_ecr;

    cr_assert_not_null(e);
    cr_assert_null(e->ecr_region);
    cr_assert_null(e->ecr_registry_id);
    cr_assert_null(e->ecr_endpoint);
    cr_assert_null(e->ecr_repository_prefix);
    cr_assert_eq(e->ecr_allow_private_redirects, 0);
    cr_assert_eq(e->ecr_push, 1);
    cr_assert_str_eq(e->ecr_tag_mutability, "MUTABLE");
    cr_assert_eq(e->ecr_nmutability_exclusions, 0);
    cr_assert_eq(e->ecr_scan_on_push, 0);
    cr_assert_null(e->ecr_encryption_type);
    cr_assert_null(e->ecr_kms_key);
    cr_assert_eq(e->ecr_ntags, 0);
    cr_assert_null(e->ecr_lifecycle_policy);
    cr_assert_null(e->ecr_repository_policy);
    config_free(cfg);
    cfg = ecr_ok("\"create_repository\":{}");
    cr_assert_str_eq(cfg->cfg_ecr->ecr_tag_mutability, "MUTABLE");
    config_free(cfg);
}

/* The contract's example, as the tests and the Terraform module write it. */
Test(config_ecr, every_key)
{
    struct config *cfg = ecr_ok(
        "\"region\":\"us-east-1\",\"registry_id\":\"123456789012\","
        "\"endpoint\":\"https://api.ecr.us-east-1.amazonaws.com\",\"repository_prefix\":\"\","
        "\"allow_private_redirects\":false,\"push\":true,\"create_repository\":{"
        "\"image_tag_mutability\":\"IMMUTABLE_WITH_EXCLUSION\","
        "\"image_tag_mutability_exclusion_filters\":[\"latest\",\"dev-*\"],"
        "\"scan_on_push\":true,\"encryption\":{\"type\":\"KMS\",\"kms_key\":"
        "\"arn:aws:kms:us-east-1:123456789012:key/abcd\"},\"tags\":{\"owner\":\"platform\","
        "\"cost-centre\":\"\"},\"lifecycle_policy\":{\"rules\":[{\"rulePriority\":1,"
        "\"selection\":{\"tagStatus\":\"untagged\",\"countType\":\"sinceImagePushed\","
        "\"countUnit\":\"days\",\"countNumber\":14},\"action\":{\"type\":\"expire\"}}]},"
        "\"repository_policy\":{\"Version\":\"2012-10-17\",\"Statement\":[]}}");
    struct config_ecr *e = cfg->cfg_ecr;

    cr_assert_str_eq(e->ecr_region, "us-east-1");
    cr_assert_str_eq(e->ecr_registry_id, "123456789012");
    cr_assert_str_eq(e->ecr_endpoint, "https://api.ecr.us-east-1.amazonaws.com");
    cr_assert_str_eq(e->ecr_repository_prefix, "");
    cr_assert_eq(e->ecr_allow_private_redirects, 0);
    cr_assert_eq(e->ecr_push, 1);
    cr_assert_str_eq(e->ecr_tag_mutability, "IMMUTABLE_WITH_EXCLUSION");
    cr_assert_eq(e->ecr_nmutability_exclusions, 2);
    cr_assert_str_eq(e->ecr_mutability_exclusions[0], "latest");
    cr_assert_str_eq(e->ecr_mutability_exclusions[1], "dev-*");
    cr_assert_eq(e->ecr_scan_on_push, 1);
    cr_assert_str_eq(e->ecr_encryption_type, "KMS");
    cr_assert_str_eq(e->ecr_kms_key, "arn:aws:kms:us-east-1:123456789012:key/abcd");
    cr_assert_eq(e->ecr_ntags, 2);
    cr_assert_str_eq(e->ecr_tags[0].ct_key, "owner");
    cr_assert_str_eq(e->ecr_tags[0].ct_value, "platform");
    cr_assert_str_eq(e->ecr_tags[1].ct_key, "cost-centre");
    cr_assert_str_eq(e->ecr_tags[1].ct_value, "");
    cr_assert_str_eq(e->ecr_lifecycle_policy,
                     "{\"rules\":[{\"action\":{\"type\":\"expire\"},\"rulePriority\":1,"
                     "\"selection\":{\"countNumber\":14,\"countType\":\"sinceImagePushed\","
                     "\"countUnit\":\"days\",\"tagStatus\":\"untagged\"}}]}");
    cr_assert_str_eq(e->ecr_repository_policy, "{\"Statement\":[],\"Version\":\"2012-10-17\"}");
    config_free(cfg);
}

Test(config_ecr, other_valid_forms)
{
    static const char *const regions[] = {"eu-central-2", "us-gov-west-1", "cn-north-1",
                                          "ap-southeast-5", "il-central-1"};
    struct config *cfg;
    char inner[128];

    for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
        snprintf(inner, sizeof(inner), "\"region\":\"%s\"", regions[i]);
        cfg = ecr_ok(inner);
        cr_assert_str_eq(cfg->cfg_ecr->ecr_region, regions[i]);
        config_free(cfg);
    }
    cfg = ecr_ok("\"endpoint\":\"http://127.0.0.1:4566/\",\"push\":false,"
                 "\"allow_private_redirects\":true,\"repository_prefix\":\"team/cache\","
                 "\"create_repository\":{\"encryption\":\"AES256\","
                 "\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
                 "\"image_tag_mutability_exclusion_filters\":[\"v*\",\"*\",\"a.b_C-9\"]}");
    cr_assert_str_eq(cfg->cfg_ecr->ecr_endpoint, "http://127.0.0.1:4566", "no trailing '/'");
    cr_assert_eq(cfg->cfg_ecr->ecr_push, 0);
    cr_assert_eq(cfg->cfg_ecr->ecr_allow_private_redirects, 1);
    cr_assert_str_eq(cfg->cfg_ecr->ecr_repository_prefix, "team/cache");
    cr_assert_str_eq(cfg->cfg_ecr->ecr_encryption_type, "AES256");
    cr_assert_null(cfg->cfg_ecr->ecr_kms_key);
    cr_assert_str_eq(cfg->cfg_ecr->ecr_tag_mutability, "MUTABLE_WITH_EXCLUSION");
    cr_assert_eq(cfg->cfg_ecr->ecr_nmutability_exclusions, 3);
    config_free(cfg);
    cfg = ecr_ok("\"create_repository\":{\"encryption\":{\"type\":\"KMS_DSSE\"},"
                 "\"image_tag_mutability_exclusion_filters\":[]}");
    cr_assert_str_eq(cfg->cfg_ecr->ecr_encryption_type, "KMS_DSSE");
    cr_assert_null(cfg->cfg_ecr->ecr_kms_key, "no kms_key: the AWS managed key");
    cr_assert_eq(cfg->cfg_ecr->ecr_nmutability_exclusions, 0, "an empty list is no filter");
    config_free(cfg);
    cfg = ecr_ok("\"create_repository\":{\"encryption\":{\"type\":\"AES256\"}}");
    cr_assert_str_eq(cfg->cfg_ecr->ecr_encryption_type, "AES256");
    config_free(cfg);
}

Test(config_errors, ecr_block)
{
    static const char *const bad[][2] = {
        {"\"region\":\"US-EAST-1\"", "ecr.region: \"US-EAST-1\" is not an AWS region"},
        {"\"region\":\"us-east\"", "ecr.region: \"us-east\" is not an AWS region"},
        {"\"region\":\"us-1\"", "ecr.region: \"us-1\" is not an AWS region"},
        {"\"region\":\"useast-1\"", "ecr.region: \"useast-1\" is not an AWS region"},
        {"\"region\":\"us-east-1a\"", "ecr.region: \"us-east-1a\" is not an AWS region"},
        {"\"region\":\"us--east-1\"", "ecr.region: \"us--east-1\" is not an AWS region"},
        {"\"region\":\"\"", "ecr.region: \"\" is not an AWS region"},
        {"\"region\":1", "ecr.region: must be a string"},
        {"\"registry_id\":\"12345678901\"",
         "ecr.registry_id: \"12345678901\" is not an AWS account id (12 digits)"},
        {"\"registry_id\":\"1234567890123\"", "ecr.registry_id: \"1234567890123\" is not an"},
        {"\"registry_id\":\"12345678901a\"", "ecr.registry_id: \"12345678901a\" is not an"},
        {"\"registry_id\":123456789012", "ecr.registry_id: must be a string"},
        {"\"endpoint\":\"api.ecr.us-east-1.amazonaws.com\"", "ecr.endpoint: not a URL"},
        {"\"endpoint\":\"https://api.ecr.example/v2\"",
         "ecr.endpoint: must be a registry's base URL"},
        {"\"endpoint\":\"https://x:0\"", "ecr.endpoint: not a URL (bad port)"},
        {"\"repository_prefix\":\"/cache\"",
         "ecr.repository_prefix: \"/cache\" must not start or end with '/'"},
        {"\"repository_prefix\":\"cache/\"",
         "ecr.repository_prefix: \"cache/\" must not start or end with '/'"},
        {"\"repository_prefix\":\"Cache\"",
         "ecr.repository_prefix: \"Cache\" is not an ECR repository path (uppercase"},
        {"\"repository_prefix\":\"a__b\"", "ecr.repository_prefix: \"a__b\" is not an ECR"},
        {"\"repository_prefix\":\"a//b\"", "ecr.repository_prefix: \"a//b\" is not an ECR"},
        {"\"repository_prefix\":7", "ecr.repository_prefix: must be a string"},
        {"\"push\":\"yes\"", "ecr.push: must be true or false"},
        {"\"allow_private_redirects\":1", "ecr.allow_private_redirects: must be true or false"},
        {"\"regoin\":\"us-east-1\"", "ecr.regoin: unknown key"},
        {"\"create_repository\":[]", "ecr.create_repository: must be an object"},
        {"\"create_repository\":{\"scan\":true}", "ecr.create_repository.scan: unknown key"},
        {"\"create_repository\":{\"scan_on_push\":\"true\"}",
         "ecr.create_repository.scan_on_push: must be true or false"},
        {"\"create_repository\":{\"image_tag_mutability\":\"IMMUTABLE\"}",
         "ecr.create_repository.image_tag_mutability: IMMUTABLE cannot hold a cache: a tag "
         "refreshed from upstream could never be pushed again (use IMMUTABLE_WITH_EXCLUSION"},
        {"\"create_repository\":{\"image_tag_mutability\":\"mutable\"}",
         "ecr.create_repository.image_tag_mutability: \"mutable\" must be MUTABLE, "
         "MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION"},
        {"\"create_repository\":{\"image_tag_mutability\":true}",
         "ecr.create_repository.image_tag_mutability: must be a string"},
        {"\"create_repository\":{\"image_tag_mutability\":\"IMMUTABLE_WITH_EXCLUSION\"}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: missing "
         "(IMMUTABLE_WITH_EXCLUSION needs at least one filter)"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":[]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: empty "
         "(MUTABLE_WITH_EXCLUSION needs at least one filter)"},
        {"\"create_repository\":{\"image_tag_mutability_exclusion_filters\":[\"latest\"]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: only with "
         "image_tag_mutability MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE\","
         "\"image_tag_mutability_exclusion_filters\":[\"latest\"]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: only with"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: at most 5 filters"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":\"latest\"}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters: must be a list"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":[\"ok\",\"v 1\"]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters[1]: \"v 1\" is not a "
         "tag filter"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":[\"\"]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters[0]: \"\" is not a"},
        {"\"create_repository\":{\"image_tag_mutability\":\"MUTABLE_WITH_EXCLUSION\","
         "\"image_tag_mutability_exclusion_filters\":[5]}",
         "ecr.create_repository.image_tag_mutability_exclusion_filters[0]: must be a string"},
        {"\"create_repository\":{\"encryption\":\"KMS\"}",
         "ecr.create_repository.encryption: must be \"AES256\" or an object"},
        {"\"create_repository\":{\"encryption\":true}",
         "ecr.create_repository.encryption: must be \"AES256\" or an object"},
        {"\"create_repository\":{\"encryption\":{}}",
         "ecr.create_repository.encryption.type: missing"},
        {"\"create_repository\":{\"encryption\":{\"type\":\"SSE\"}}",
         "ecr.create_repository.encryption.type: \"SSE\" must be AES256, KMS or KMS_DSSE"},
        {"\"create_repository\":{\"encryption\":{\"type\":\"AES256\",\"kms_key\":\"k\"}}",
         "ecr.create_repository.encryption.kms_key: only with type KMS or KMS_DSSE"},
        {"\"create_repository\":{\"encryption\":{\"type\":\"KMS\",\"kms_key\":\"\"}}",
         "ecr.create_repository.encryption.kms_key: must not be empty"},
        {"\"create_repository\":{\"encryption\":{\"type\":\"KMS\",\"key\":\"k\"}}",
         "ecr.create_repository.encryption.key: unknown key"},
        {"\"create_repository\":{\"tags\":[]}",
         "ecr.create_repository.tags: must be an object of \"key\": \"value\" strings"},
        {"\"create_repository\":{\"tags\":{\"owner\":1}}",
         "ecr.create_repository.tags.owner: must be a string"},
        {"\"create_repository\":{\"tags\":{\"\":\"x\"}}",
         "ecr.create_repository.tags: a tag key must not be empty"},
        {"\"create_repository\":{\"tags\":{\"aws:x\":\"y\"}}",
         "ecr.create_repository.tags.aws:x: the aws: prefix is reserved"},
        {"\"create_repository\":{\"lifecycle_policy\":[]}",
         "ecr.create_repository.lifecycle_policy: must be an object (an ECR lifecycle policy)"},
        {"\"create_repository\":{\"lifecycle_policy\":{}}",
         "ecr.create_repository.lifecycle_policy.rules: missing"},
        {"\"create_repository\":{\"lifecycle_policy\":{\"rules\":{}}}",
         "ecr.create_repository.lifecycle_policy.rules: must be a list of lifecycle rules"},
        {"\"create_repository\":{\"repository_policy\":\"{}\"}",
         "ecr.create_repository.repository_policy: must be an object (an IAM policy document)"},
    };
    char inner[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *errs = NULL;
        struct config *cfg;
        snprintf(inner, sizeof(inner), "{\"ecr\":{%s},%s}", bad[i][0], ok_rules);
        cfg = config_load_string(inner, &errs);
        cr_assert_null(cfg, "expected %s to fail", inner);
        cr_assert(strstr(errs, bad[i][1]) != NULL, "errors \"%s\" lack \"%s\"", errs, bad[i][1]);
        cr_assert(strstr(errs, bad[i][1]) == errs, "\"%s\" is not the first problem: %s", bad[i][1],
                  errs);
        cr_assert_eq(strchr(errs, '\n'), errs + strlen(errs) - 1, "one line for %s: %s", inner,
                     errs);
        free(errs);
    }
    expect_error("{\"ecr\":[],\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"}]}",
                 "ecr: must be an object");
}

/* Tags: at most 50, keys up to 128 characters and values up to 256 (characters, not bytes). */
Test(config_errors, ecr_tag_limits)
{
    char inner[16384], big[600];
    struct config *cfg;
    size_t n = 0;

    n += (size_t)snprintf(inner + n, sizeof(inner) - n, "\"create_repository\":{\"tags\":{");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(inner + n, sizeof(inner) - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(inner + n, sizeof(inner) - n, "}}");
    cfg = ecr_ok(inner);
    cr_assert_eq(cfg->cfg_ecr->ecr_ntags, 50);
    config_free(cfg);
    snprintf(inner + n, sizeof(inner) - n, ",\"k50\":\"v\"}}");
    {
        char *json = xasprintf("{\"ecr\":{%s},%s}", inner, ok_rules);
        expect_error(json, "ecr.create_repository.tags: at most 50 tags");
        free(json);
    }

    /* 128 two-byte characters are a good key; 129 are not. */
    n = 0;
    for (int i = 0; i < 128; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "\xc3\xa9");
    snprintf(inner, sizeof(inner), "\"create_repository\":{\"tags\":{\"%s\":\"v\"}}", big);
    cfg = ecr_ok(inner);
    cr_assert_eq(strlen(cfg->cfg_ecr->ecr_tags[0].ct_key), 256);
    config_free(cfg);
    snprintf(inner, sizeof(inner),
             "{\"ecr\":{\"create_repository\":{\"tags\":{\"%se\":\"v\"}}},%s}", big, ok_rules);
    expect_error(inner, "ecr.create_repository.tags: a tag key is longer than 128 characters");

    memset(big, 'v', 256);
    big[256] = '\0';
    snprintf(inner, sizeof(inner), "\"create_repository\":{\"tags\":{\"k\":\"%s\"}}", big);
    cfg = ecr_ok(inner);
    config_free(cfg);
    snprintf(inner, sizeof(inner),
             "{\"ecr\":{\"create_repository\":{\"tags\":{\"k\":\"%sv\"}}},%s}", big, ok_rules);
    expect_error(inner, "ecr.create_repository.tags.k: value longer than 256 characters");
}

/* With the tier on, each rule that goes to it needs a prefix ECR can hold ("__" is OCI's). */
Test(config_errors, ecr_rule_prefixes)
{
    struct config *cfg;
    char json[1024], prefix[300];

    expect_error("{\"ecr\":{},\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"},"
                 "{\"prefix\":\"docker__hub\",\"upstream\":\"https://b.io\"}]}",
                 "rules[1].prefix: \"docker__hub\" makes no valid ECR repository name (two of "
                 "'.', '_', '-' in a row); set \"ecr\": false on this rule");
    cfg = expect_ok("{\"ecr\":{},\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"},"
                    "{\"prefix\":\"docker__hub\",\"upstream\":\"https://b.io\",\"ecr\":false}]}");
    cr_assert_eq(cfg->cfg_rules[0].rule_ecr, 1);
    cr_assert_eq(cfg->cfg_rules[1].rule_ecr, 0);
    config_free(cfg);
    /* Without the tier, OCI's pattern alone decides. */
    cfg = expect_ok("{\"rules\":[{\"prefix\":\"docker__hub\",\"upstream\":\"https://b.io\","
                    "\"ecr\":true}]}");
    config_free(cfg);
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"ecr\":\"no\"}]}",
                 "rules[0].ecr: must be true or false");
    /* The repository prefix counts: 252 + "/" + "ab" + "/x" is 257, over 256. */
    memset(prefix, 'p', 252);
    prefix[252] = '\0';
    snprintf(json, sizeof(json),
             "{\"ecr\":{\"repository_prefix\":\"%s\"},\"rules\":[{\"prefix\":\"ab\","
             "\"upstream\":\"https://a.io\"}]}",
             prefix);
    expect_error(json, "rules[0].prefix: \"ab\" makes no valid ECR repository name (longer than "
                       "256 bytes)");
    prefix[240] = '\0';
    snprintf(json, sizeof(json),
             "{\"ecr\":{\"repository_prefix\":\"%s\"},\"rules\":[{\"prefix\":\"ab\","
             "\"upstream\":\"https://a.io\"}]}",
             prefix);
    cfg = expect_ok(json);
    config_free(cfg);
}
