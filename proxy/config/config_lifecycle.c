/* Parses and validates an ECR lifecycle policy (object or JSON text) into a struct lc_policy. */
#include "config.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-int.h"
#include "policy_lifecycle.h"
#include "util.h"

#define LC_MAX_WILDCARDS 4 /* ECR: "a maximum limit of four wildcards (*) per string" */
#define LC_KEY_MAX 256

/* What a rule's JSON said, beyond the lc_rule itself, for the checks across rules. */
struct rule_seen {
    int rs_has_priority;
    int rs_has_status;
};

/* "<a>.<b>" into <dst>; a path too long for it ends in "..." rather than being cut silently. */
static void join_key(char *dst, size_t size, const char *a, const char *b)
{
    int n = snprintf(dst, size, "%s.%s", a, b);

    if (n < 0 || (size_t)n >= size)
        memcpy(dst + size - 4, "...", 4);
}

static int count_stars(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        n += *s == '*';
    return n;
}

/* A tagPrefixList / tagPatternList at <key> into *out / *nout (owned); -1 with problems. */
static int load_tag_list(json_t *v, const char *key, int patterns, char ***out, size_t *nout,
                         struct problems *p)
{
    char ik[LC_KEY_MAX];
    size_t i;
    json_t *x;
    int before = p->count;

    if (!json_is_array(v)) {
        config_problem(p, "%s: must be a list of strings", key);
        return -1;
    }
    if (json_array_size(v) == 0) {
        config_problem(p, "%s: must not be empty", key);
        return -1;
    }
    *out = xcalloc(json_array_size(v), sizeof(char *));
    json_array_foreach(v, i, x)
    {
        const char *s;
        snprintf(ik, sizeof(ik), "%s[%zu]", key, i);
        if (config_get_string(x, ik, p, &s) == -1)
            continue;
        if (s[0] == '\0') {
            config_problem(p, "%s: must not be empty", ik);
            continue;
        }
        if (patterns && count_stars(s) > LC_MAX_WILDCARDS) {
            config_problem(p, "%s: \"%s\" has more than %d wildcards ('*'), ECR's limit", ik, s,
                           LC_MAX_WILDCARDS);
            continue;
        }
        (*out)[(*nout)++] = xstrdup(s);
    }
    return p->count == before ? 0 : -1;
}

static void load_selection(json_t *o, const char *key, struct lc_rule *r, struct rule_seen *rs,
                           struct problems *p)
{
    char k2[LC_KEY_MAX];
    const char *k, *s;
    json_t *v;
    json_t *prefixes, *patterns, *unit, *type;
    int type_ok = 0;

    if (!json_is_object(o)) {
        config_problem(p, "%s: must be an object", key);
        return;
    }
    json_object_foreach(o, k, v)
    {
        join_key(k2, sizeof(k2), key, k);
        if (strcmp(k, "tagStatus") == 0) {
            if (config_get_string(v, k2, p, &s) == -1)
                continue;
            if (strcmp(s, "tagged") == 0)
                r->lr_tag_status = LC_TAGGED;
            else if (strcmp(s, "untagged") == 0)
                r->lr_tag_status = LC_UNTAGGED;
            else if (strcmp(s, "any") == 0)
                r->lr_tag_status = LC_ANY;
            else {
                config_problem(p, "%s: \"%s\" must be tagged, untagged or any", k2, s);
                continue;
            }
            rs->rs_has_status = 1;
        } else if (strcmp(k, "tagPrefixList") == 0) {
            load_tag_list(v, k2, 0, &r->lr_prefixes, &r->lr_nprefixes, p);
        } else if (strcmp(k, "tagPatternList") == 0) {
            load_tag_list(v, k2, 1, &r->lr_patterns, &r->lr_npatterns, p);
        } else if (strcmp(k, "countType") == 0) {
            if (config_get_string(v, k2, p, &s) == -1)
                continue;
            if (strcmp(s, "imageCountMoreThan") == 0)
                r->lr_count_type = LC_COUNT_MORE_THAN;
            else if (strcmp(s, "sinceImagePushed") == 0)
                r->lr_count_type = LC_SINCE_PUSHED;
            else if (strcmp(s, "sinceImagePulled") == 0)
                r->lr_count_type = LC_SINCE_PULLED;
            else {
                config_problem(
                    p,
                    "%s: \"%s\" must be imageCountMoreThan, sinceImagePushed or sinceImagePulled",
                    k2, s);
                continue;
            }
            type_ok = 1;
        } else if (strcmp(k, "countUnit") == 0) {
            if (config_get_string(v, k2, p, &s) == 0 && strcmp(s, "days") != 0)
                config_problem(p, "%s: \"%s\" must be \"days\"", k2, s);
        } else if (strcmp(k, "countNumber") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                config_problem(p, "%s: must be a whole number of at least 1", k2);
            else
                r->lr_count_number = (int64_t)json_integer_value(v);
        } else {
            config_problem(p, "%s: unknown key", k2);
        }
    }
    prefixes = json_object_get(o, "tagPrefixList");
    patterns = json_object_get(o, "tagPatternList");
    unit = json_object_get(o, "countUnit");
    type = json_object_get(o, "countType");
    if (json_object_get(o, "tagStatus") == NULL)
        config_problem(p, "%s.tagStatus: missing (tagged, untagged or any)", key);
    if (rs->rs_has_status && r->lr_tag_status != LC_TAGGED) {
        if (prefixes != NULL)
            config_problem(p, "%s.tagPrefixList: only with tagStatus \"tagged\"", key);
        if (patterns != NULL)
            config_problem(p, "%s.tagPatternList: only with tagStatus \"tagged\"", key);
    } else if (rs->rs_has_status) {
        if (prefixes != NULL && patterns != NULL)
            config_problem(p, "%s.tagPatternList: not with tagPrefixList (give one of them)", key);
        else if (prefixes == NULL && patterns == NULL)
            config_problem(p, "%s: tagStatus \"tagged\" needs tagPrefixList or tagPatternList",
                           key);
    }
    if (type == NULL)
        config_problem(p,
                       "%s.countType: missing (imageCountMoreThan, sinceImagePushed or "
                       "sinceImagePulled)",
                       key);
    if (json_object_get(o, "countNumber") == NULL)
        config_problem(p, "%s.countNumber: missing", key);
    if (type_ok && r->lr_count_type == LC_COUNT_MORE_THAN && unit != NULL)
        config_problem(p, "%s.countUnit: not with countType \"imageCountMoreThan\"", key);
    else if (type_ok && r->lr_count_type != LC_COUNT_MORE_THAN && unit == NULL)
        config_problem(p, "%s.countUnit: missing (\"days\", with countType %s)", key,
                       json_string_value(type));
}

static void load_action(json_t *o, const char *key, struct problems *p)
{
    char k2[LC_KEY_MAX];
    const char *k, *s;
    json_t *v;

    if (!json_is_object(o)) {
        config_problem(p, "%s: must be an object ({\"type\": \"expire\"})", key);
        return;
    }
    json_object_foreach(o, k, v)
    {
        join_key(k2, sizeof(k2), key, k);
        if (strcmp(k, "type") == 0) {
            if (config_get_string(v, k2, p, &s) == 0 && strcmp(s, "expire") != 0)
                config_problem(p, "%s: \"%s\" is not supported (only \"expire\")", k2, s);
        } else {
            config_problem(p, "%s: unknown key", k2);
        }
    }
    if (json_object_get(o, "type") == NULL)
        config_problem(p, "%s.type: missing (\"expire\")", key);
}

static void load_rule(json_t *o, const char *key, struct lc_rule *r, struct rule_seen *rs,
                      struct problems *p)
{
    char k2[LC_KEY_MAX];
    const char *k, *s;
    json_t *v;

    if (!json_is_object(o)) {
        config_problem(p, "%s: must be an object", key);
        return;
    }
    json_object_foreach(o, k, v)
    {
        join_key(k2, sizeof(k2), key, k);
        if (strcmp(k, "rulePriority") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > INT_MAX) {
                config_problem(p, "%s: must be a whole number from 1 to %d", k2, INT_MAX);
                continue;
            }
            r->lr_priority = (int)json_integer_value(v);
            rs->rs_has_priority = 1;
        } else if (strcmp(k, "description") == 0) {
            config_get_string(v, k2, p, &s);
        } else if (strcmp(k, "selection") == 0) {
            load_selection(v, k2, r, rs, p);
        } else if (strcmp(k, "action") == 0) {
            load_action(v, k2, p);
        } else {
            config_problem(p, "%s: unknown key", k2);
        }
    }
    if (json_object_get(o, "rulePriority") == NULL)
        config_problem(p, "%s.rulePriority: missing", key);
    if (json_object_get(o, "selection") == NULL)
        config_problem(p, "%s.selection: missing", key);
    if (json_object_get(o, "action") == NULL)
        config_problem(p, "%s.action: missing ({\"type\": \"expire\"})", key);
}

/*
 * ECR's checks across rules: unique priorities; at most one rule with tagStatus "any", and it
 * has the highest priority; at most one rule selecting untagged images.
 */
static void check_rules(const struct lc_policy *lp, const struct rule_seen *rs, const char *key,
                        struct problems *p)
{
    size_t nany = 0, nuntagged = 0;

    for (size_t i = 0; i < lp->lp_nrules; i++) {
        const struct lc_rule *a = &lp->lp_rules[i];
        if (rs[i].rs_has_priority) {
            for (size_t j = 0; j < i; j++) {
                if (rs[j].rs_has_priority && lp->lp_rules[j].lr_priority == a->lr_priority) {
                    config_problem(p,
                                   "%s.rules[%zu].rulePriority: %d is already the priority of "
                                   "rules[%zu]",
                                   key, i, a->lr_priority, j);
                    break;
                }
            }
        }
        if (!rs[i].rs_has_status)
            continue;
        if (a->lr_tag_status == LC_UNTAGGED && ++nuntagged > 1)
            config_problem(p,
                           "%s.rules[%zu].selection.tagStatus: only one rule may select untagged "
                           "images",
                           key, i);
        if (a->lr_tag_status == LC_ANY && ++nany > 1)
            config_problem(p,
                           "%s.rules[%zu].selection.tagStatus: only one rule may have "
                           "tagStatus \"any\"",
                           key, i);
    }
    if (nany != 1)
        return;
    for (size_t i = 0; i < lp->lp_nrules; i++) {
        const struct lc_rule *a = &lp->lp_rules[i];
        if (!rs[i].rs_has_status || a->lr_tag_status != LC_ANY || !rs[i].rs_has_priority)
            continue;
        for (size_t j = 0; j < lp->lp_nrules; j++) {
            if (j != i && rs[j].rs_has_priority && lp->lp_rules[j].lr_priority > a->lr_priority) {
                config_problem(p,
                               "%s.rules[%zu].rulePriority: the rule with tagStatus \"any\" must "
                               "have the highest rulePriority (rules[%zu] has %d)",
                               key, i, j, lp->lp_rules[j].lr_priority);
                break;
            }
        }
    }
}

static int by_priority(const void *a, const void *b)
{
    const struct lc_rule *x = a, *y = b;

    return (x->lr_priority > y->lr_priority) - (x->lr_priority < y->lr_priority);
}

struct lc_policy *config_load_lifecycle(json_t *v, const char *key, struct problems *p)
{
    struct lc_policy *lp = xcalloc(1, sizeof(*lp));
    struct rule_seen *rs = NULL;
    json_t *parsed = NULL, *rules, *x;
    char k2[LC_KEY_MAX];
    const char *k;
    int before = p->count;
    size_t i;

    if (json_is_string(v)) {
        json_error_t jerr;
        parsed = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, &jerr);
        if (parsed == NULL) {
            config_problem(p, "%s: not a JSON lifecycle policy: line %d column %d: %s", key,
                           jerr.line, jerr.column, jerr.text);
            goto out;
        }
        v = parsed;
    }
    if (!json_is_object(v)) {
        config_problem(p,
                       "%s: must be an object, or a string holding one (an ECR lifecycle "
                       "policy: {\"rules\": [...]})",
                       key);
        goto out;
    }
    json_object_foreach(v, k, x)
    {
        if (strcmp(k, "rules") != 0)
            config_problem(p, "%s.%s: unknown key", key, k);
    }
    rules = json_object_get(v, "rules");
    if (rules == NULL) {
        config_problem(p, "%s.rules: missing (a lifecycle policy is {\"rules\": [...]})", key);
        goto out;
    }
    if (!json_is_array(rules)) {
        config_problem(p, "%s.rules: must be a list of lifecycle rules", key);
        goto out;
    }
    if (json_array_size(rules) == 0) {
        config_problem(p, "%s.rules: empty (at least one rule is needed)", key);
        goto out;
    }
    lp->lp_rules = xcalloc(json_array_size(rules), sizeof(struct lc_rule));
    rs = xcalloc(json_array_size(rules), sizeof(*rs));
    json_array_foreach(rules, i, x)
    {
        snprintf(k2, sizeof(k2), "%s.rules[%zu]", key, i);
        load_rule(x, k2, &lp->lp_rules[i], &rs[i], p);
        lp->lp_nrules++;
    }
    check_rules(lp, rs, key, p);
    qsort(lp->lp_rules, lp->lp_nrules, sizeof(struct lc_rule), by_priority);
out:
    free(rs);
    json_decref(parsed);
    if (p->count != before) {
        lifecycle_policy_free(lp);
        return NULL;
    }
    return lp;
}
