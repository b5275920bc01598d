/* The "ecr" block of the configuration (the private ECR tier): parsed and validated here, each
 * problem one line naming its key path, as in config_file.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-int.h"
#include "config_file.h"
#include "ecr_name.h"
#include "util.h"

#define ECR_REGION_MAX 32
#define ECR_REGISTRY_ID_LEN 12
#define ECR_MAX_EXCLUSIONS 5
#define ECR_EXCLUSION_MAX 128
#define ECR_MAX_TAGS 50
#define ECR_TAG_KEY_MAX 128
#define ECR_TAG_VALUE_MAX 256
#define ECR_LIFECYCLE_MAX 30720 /* ECR's limits on the policies' text, in characters */
#define ECR_REPO_POLICY_MAX 10240
#define KEY_MAX 256

#define CR "ecr.create_repository"

static int lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * An AWS region's shape: two lowercase letters, one or more "-word" parts, then "-N":
 * us-east-1, eu-central-2, us-gov-west-1, cn-north-1. The shape, not a list: new regions
 * must work without a new binary.
 */
static int region_valid(const char *s)
{
    size_t i = 2, words = 0;

    if (strlen(s) > ECR_REGION_MAX || !lower(s[0]) || !lower(s[1]))
        return 0;
    while (s[i] == '-') {
        i++;
        if (lower(s[i])) {
            while (lower(s[i]))
                i++;
            words++;
        } else if (digit(s[i]) && words > 0) {
            while (digit(s[i]))
                i++;
            return s[i] == '\0';
        } else {
            return 0;
        }
    }
    return 0;
}

static int registry_id_valid(const char *s)
{
    size_t i = 0;

    while (digit(s[i]))
        i++;
    return i == ECR_REGISTRY_ID_LEN && s[i] == '\0';
}

/* An image_tag_mutability_exclusion_filters entry: ^[0-9a-zA-Z._*-]{1,128}$. */
static int exclusion_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ECR_EXCLUSION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(lower(c) || digit(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '*' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Characters (code points) of the UTF-8 text <s>, as AWS counts tag lengths; jansson hands
 * only valid UTF-8 out. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A string key that must not be empty: a copy, or NULL with a problem at <key>. */
static char *get_nonempty(json_t *v, const char *key, struct problems *p)
{
    const char *s;

    if (config_get_string(v, key, p, &s) == -1)
        return NULL;
    if (s[0] == '\0') {
        config_problem(p, "%s: must not be empty", key);
        return NULL;
    }
    return xstrdup(s);
}

static void load_repository_prefix(json_t *v, struct config_ecr *e, struct problems *p)
{
    const char *s, *why = NULL;
    char probe[ECR_NAME_MAX + 2];
    size_t n;

    if (config_get_string(v, "ecr.repository_prefix", p, &s) == -1)
        return;
    n = strlen(s);
    if (n == 0) {
        e->ecr_repository_prefix = xstrdup("");
        return;
    }
    if (s[0] == '/' || s[n - 1] == '/') {
        config_problem(p, "ecr.repository_prefix: \"%s\" must not start or end with '/'", s);
        return;
    }
    /* A prefix is whole path components: valid when "<prefix>/x" is a valid name (which
     * also leaves it room for more). */
    if (n + 2 >= sizeof(probe)) {
        config_problem(p, "ecr.repository_prefix: longer than %d bytes", ECR_NAME_MAX - 2);
        return;
    }
    (void)snprintf(probe, sizeof(probe), "%s/x", s);
    if (!ecr_name_valid(probe, &why)) {
        config_problem(p, "ecr.repository_prefix: \"%s\" is not an ECR repository path (%s)", s,
                       why);
        return;
    }
    e->ecr_repository_prefix = xstrdup(s);
}

static void load_mutability(json_t *v, struct config_ecr *e, struct problems *p)
{
    static const char *const ok[] = {"MUTABLE", "MUTABLE_WITH_EXCLUSION",
                                     "IMMUTABLE_WITH_EXCLUSION"};
    const char *key = CR ".image_tag_mutability", *s;

    if (config_get_string(v, key, p, &s) == -1)
        return;
    if (strcmp(s, "IMMUTABLE") == 0) {
        config_problem(p,
                       "%s: IMMUTABLE cannot hold a cache: a tag refreshed from upstream could "
                       "never be pushed again (use IMMUTABLE_WITH_EXCLUSION with "
                       "image_tag_mutability_exclusion_filters naming the tags that move)",
                       key);
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        if (strcmp(s, ok[i]) == 0) {
            free(e->ecr_tag_mutability);
            e->ecr_tag_mutability = xstrdup(s);
            return;
        }
    }
    config_problem(p,
                   "%s: \"%s\" must be MUTABLE, MUTABLE_WITH_EXCLUSION or "
                   "IMMUTABLE_WITH_EXCLUSION",
                   key, s);
}

static void load_exclusions(json_t *v, struct config_ecr *e, struct problems *p)
{
    const char *key = CR ".image_tag_mutability_exclusion_filters", *s;
    char ik[KEY_MAX];
    json_t *f;
    size_t i;

    if (!json_is_array(v)) {
        config_problem(p, "%s: must be a list of tag filters", key);
        return;
    }
    if (json_array_size(v) > ECR_MAX_EXCLUSIONS) {
        config_problem(p, "%s: at most %d filters", key, ECR_MAX_EXCLUSIONS);
        return;
    }
    e->ecr_mutability_exclusions = xcalloc(json_array_size(v) + 1, sizeof(char *));
    json_array_foreach(v, i, f)
    {
        (void)snprintf(ik, sizeof(ik), "%s[%zu]", key, i);
        if (config_get_string(f, ik, p, &s) == -1)
            continue;
        if (!exclusion_valid(s)) {
            config_problem(p,
                           "%s: \"%s\" is not a tag filter (1 to %d of a-z, A-Z, 0-9, '.', '_', "
                           "'-' and the wildcard '*')",
                           ik, s, ECR_EXCLUSION_MAX);
            continue;
        }
        e->ecr_mutability_exclusions[e->ecr_nmutability_exclusions++] = xstrdup(s);
    }
}

/* "AES256", or {"type": "AES256" | "KMS" | "KMS_DSSE", "kms_key": ...} (kms_key with KMS). */
static void load_encryption(json_t *v, struct config_ecr *e, struct problems *p)
{
    static const char *const types[] = {"AES256", "KMS", "KMS_DSSE"};
    const char *key = CR ".encryption", *k, *s;
    char ik[KEY_MAX];
    json_t *t, *x;

    if (json_is_string(v) && strcmp(json_string_value(v), "AES256") == 0) {
        e->ecr_encryption_type = xstrdup("AES256");
        return;
    }
    if (!json_is_object(v)) {
        config_problem(p,
                       "%s: must be \"AES256\" or an object {\"type\": \"AES256\", \"KMS\" or "
                       "\"KMS_DSSE\", \"kms_key\": KEY (with KMS)}",
                       key);
        return;
    }
    json_object_foreach(v, k, x)
    {
        (void)snprintf(ik, sizeof(ik), "%s.%s", key, k);
        if (strcmp(k, "type") == 0) {
            if (config_get_string(x, ik, p, &s) == -1)
                continue;
            for (size_t i = 0; i < ARRAY_LEN(types); i++)
                if (strcmp(s, types[i]) == 0)
                    e->ecr_encryption_type = xstrdup(s);
            if (e->ecr_encryption_type == NULL)
                config_problem(p, "%s: \"%s\" must be AES256, KMS or KMS_DSSE", ik, s);
        } else if (strcmp(k, "kms_key") == 0) {
            e->ecr_kms_key = get_nonempty(x, ik, p);
        } else {
            config_problem(p, "%s: unknown key", ik);
        }
    }
    t = json_object_get(v, "type");
    if (t == NULL)
        config_problem(p, "%s.type: missing", key);
    else if (e->ecr_encryption_type != NULL && strcmp(e->ecr_encryption_type, "AES256") == 0 &&
             json_object_get(v, "kms_key") != NULL)
        config_problem(p, "%s.kms_key: only with type KMS or KMS_DSSE", key);
}

static void load_tags(json_t *v, struct config_ecr *e, struct problems *p)
{
    const char *key = CR ".tags", *k, *s;
    char ik[sizeof(CR ".tags.") + 4 * ECR_TAG_KEY_MAX]; /* a key of 128 UTF-8 characters */
    json_t *x;

    if (!json_is_object(v)) {
        config_problem(p, "%s: must be an object of \"key\": \"value\" strings", key);
        return;
    }
    if (json_object_size(v) > ECR_MAX_TAGS) {
        config_problem(p, "%s: at most %d tags", key, ECR_MAX_TAGS);
        return;
    }
    e->ecr_tags = xcalloc(json_object_size(v) + 1, sizeof(*e->ecr_tags));
    json_object_foreach(v, k, x)
    {
        if (k[0] == '\0') {
            config_problem(p, "%s: a tag key must not be empty", key);
            continue;
        }
        if (utf8_chars(k) > ECR_TAG_KEY_MAX) {
            config_problem(p, "%s: a tag key is longer than %d characters", key, ECR_TAG_KEY_MAX);
            continue;
        }
        (void)snprintf(ik, sizeof(ik), "%s.%s", key, k);
        if (strncmp(k, "aws:", 4) == 0) {
            config_problem(p, "%s: the aws: prefix is reserved for AWS's own tags", ik);
            continue;
        }
        if (config_get_string(x, ik, p, &s) == -1)
            continue;
        if (utf8_chars(s) > ECR_TAG_VALUE_MAX) {
            config_problem(p, "%s: value longer than %d characters", ik, ECR_TAG_VALUE_MAX);
            continue;
        }
        e->ecr_tags[e->ecr_ntags].ct_key = xstrdup(k);
        e->ecr_tags[e->ecr_ntags].ct_value = xstrdup(s);
        e->ecr_ntags++;
    }
}

/* A policy object <v> as compact JSON text, at most <max> characters; NULL with a problem. */
static char *policy_text(json_t *v, const char *key, const char *what, size_t max,
                         struct problems *p)
{
    char *text;

    if (!json_is_object(v)) {
        config_problem(p, "%s: must be an object (%s)", key, what);
        return NULL;
    }
    text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        abort(); /* only out of memory: the object came from the parser */
    if (utf8_chars(text) > max) {
        config_problem(p, "%s: longer than ECR's %zu characters as compact JSON", key, max);
        free(text);
        return NULL;
    }
    return text;
}

static void load_lifecycle(json_t *v, struct config_ecr *e, struct problems *p)
{
    const char *key = CR ".lifecycle_policy";

    if (json_is_object(v)) {
        json_t *rules = json_object_get(v, "rules");
        if (rules == NULL) {
            config_problem(p, "%s.rules: missing (a lifecycle policy is {\"rules\": [...]})", key);
            return;
        }
        if (!json_is_array(rules)) {
            config_problem(p, "%s.rules: must be a list of lifecycle rules", key);
            return;
        }
    }
    e->ecr_lifecycle_policy = policy_text(v, key, "an ECR lifecycle policy", ECR_LIFECYCLE_MAX, p);
}

/*
 * The mutability and its exclusion filters go together: a *_WITH_EXCLUSION value needs at
 * least one filter, and filters mean nothing without one. An empty list with MUTABLE is no
 * filter at all, and accepted. Checked after both keys, whatever their order, and only when
 * the mutability itself was valid.
 */
static void check_mutability(json_t *o, const struct config_ecr *e, struct problems *p)
{
    int with = strstr(e->ecr_tag_mutability, "_WITH_EXCLUSION") != NULL;
    json_t *f = json_object_get(o, "image_tag_mutability_exclusion_filters");

    if (with && f == NULL)
        config_problem(p,
                       CR ".image_tag_mutability_exclusion_filters: missing (%s needs at least "
                          "one filter)",
                       e->ecr_tag_mutability);
    else if (with && json_is_array(f) && json_array_size(f) == 0)
        config_problem(p,
                       CR ".image_tag_mutability_exclusion_filters: empty (%s needs at least "
                          "one filter)",
                       e->ecr_tag_mutability);
    else if (!with && json_is_array(f) && json_array_size(f) > 0)
        config_problem(p, CR
                       ".image_tag_mutability_exclusion_filters: only with "
                       "image_tag_mutability MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION");
}

static void load_create_repository(json_t *o, struct config_ecr *e, struct problems *p)
{
    const char *k;
    char key[KEY_MAX];
    json_t *v;
    int mutability_ok = 1;

    if (!json_is_object(o)) {
        config_problem(p, CR ": must be an object");
        return;
    }
    json_object_foreach(o, k, v)
    {
        (void)snprintf(key, sizeof(key), CR ".%s", k);
        if (strcmp(k, "image_tag_mutability") == 0) {
            int before = p->count;
            load_mutability(v, e, p);
            mutability_ok = p->count == before;
        } else if (strcmp(k, "image_tag_mutability_exclusion_filters") == 0) {
            load_exclusions(v, e, p);
        } else if (strcmp(k, "scan_on_push") == 0) {
            config_get_bool(v, key, p, &e->ecr_scan_on_push);
        } else if (strcmp(k, "encryption") == 0) {
            load_encryption(v, e, p);
        } else if (strcmp(k, "tags") == 0) {
            load_tags(v, e, p);
        } else if (strcmp(k, "lifecycle_policy") == 0) {
            load_lifecycle(v, e, p);
        } else if (strcmp(k, "repository_policy") == 0) {
            e->ecr_repository_policy =
                policy_text(v, key, "an IAM policy document", ECR_REPO_POLICY_MAX, p);
        } else {
            config_problem(p, "%s: unknown key", key);
        }
    }
    if (mutability_ok)
        check_mutability(o, e, p);
}

void config_load_ecr(json_t *o, struct config *cfg, struct problems *p)
{
    struct config_ecr *e;
    const char *k, *s, *why = NULL;
    char key[KEY_MAX];
    json_t *v;

    if (!json_is_object(o)) {
        config_problem(p, "ecr: must be an object (\"ecr\": {} turns the ECR tier on with "
                          "every default)");
        return;
    }
    e = xcalloc(1, sizeof(*e));
    e->ecr_push = 1;
    e->ecr_tag_mutability = xstrdup("MUTABLE");
    cfg->cfg_ecr = e;
    json_object_foreach(o, k, v)
    {
        (void)snprintf(key, sizeof(key), "ecr.%s", k);
        if (strcmp(k, "region") == 0) {
            if (config_get_string(v, key, p, &s) == -1)
                continue;
            if (!region_valid(s))
                config_problem(p,
                               "%s: \"%s\" is not an AWS region (like us-east-1, "
                               "eu-central-2, us-gov-west-1)",
                               key, s);
            else
                e->ecr_region = xstrdup(s);
        } else if (strcmp(k, "registry_id") == 0) {
            if (config_get_string(v, key, p, &s) == -1)
                continue;
            if (!registry_id_valid(s))
                config_problem(p, "%s: \"%s\" is not an AWS account id (12 digits)", key, s);
            else
                e->ecr_registry_id = xstrdup(s);
        } else if (strcmp(k, "endpoint") == 0) {
            if (config_get_string(v, key, p, &s) == -1)
                continue;
            if (!config_url_valid(s, &why)) {
                config_problem(p, "%s: %s", key, why);
            } else {
                size_t n = strlen(s);
                e->ecr_endpoint = xstrndup(s, s[n - 1] == '/' ? n - 1 : n);
            }
        } else if (strcmp(k, "repository_prefix") == 0) {
            load_repository_prefix(v, e, p);
        } else if (strcmp(k, "allow_private_redirects") == 0) {
            config_get_bool(v, key, p, &e->ecr_allow_private_redirects);
        } else if (strcmp(k, "push") == 0) {
            config_get_bool(v, key, p, &e->ecr_push);
        } else if (strcmp(k, "create_repository") == 0) {
            load_create_repository(v, e, p);
        } else {
            config_problem(p, "%s: unknown key", key);
        }
    }
}

/*
 * Each rule that goes to the tier names ECR repositories "[repository_prefix/]<prefix>/<name>":
 * the prefixes alone must already fit ECR's pattern (OCI allows "__" and "--", ECR does not)
 * and leave room for a name, tried here as the shortest one, "x".
 */
void config_check_ecr_rules(const struct config *cfg, struct problems *p)
{
    const char *rp = cfg->cfg_ecr->ecr_repository_prefix, *why = NULL;
    char name[ECR_NAME_MAX + 1];

    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        const struct config_rule *r = &cfg->cfg_rules[i];

        if (r->rule_prefix == NULL || !r->rule_ecr)
            continue;
        if (ecr_repo_name(rp, r->rule_prefix, "x", name, sizeof(name), &why) == -1)
            config_problem(p,
                           "rules[%zu].prefix: \"%s\" makes no valid ECR repository name (%s); "
                           "set \"ecr\": false on this rule to keep it out of the ECR tier",
                           i, r->rule_prefix, why);
    }
}

void config_ecr_free(struct config_ecr *e)
{
    if (e == NULL)
        return;
    free(e->ecr_region);
    free(e->ecr_registry_id);
    free(e->ecr_endpoint);
    free(e->ecr_repository_prefix);
    free(e->ecr_tag_mutability);
    for (size_t i = 0; i < e->ecr_nmutability_exclusions; i++)
        free(e->ecr_mutability_exclusions[i]);
    free(e->ecr_mutability_exclusions);
    free(e->ecr_encryption_type);
    free(e->ecr_kms_key);
    for (size_t i = 0; i < e->ecr_ntags; i++) {
        free(e->ecr_tags[i].ct_key);
        free(e->ecr_tags[i].ct_value);
    }
    free(e->ecr_tags);
    free(e->ecr_lifecycle_policy);
    free(e->ecr_repository_policy);
    free(e);
}
