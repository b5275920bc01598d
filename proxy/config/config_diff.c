/* What a configuration read again changes: the keys a reload applies and those only a restart
 * can (config_diff.h). Pure: compares two parsed configurations, reads nothing else. */
#include "config.h"

#include "config_diff.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "policy_lifecycle.h"
#include "util.h"

/* A growing text: lines or words appended. */
struct diff_text {
    char *dt_buf;
    size_t dt_len;
};

static void text_add(struct diff_text *t, const char *sep, const char *s)
{
    size_t sl = t->dt_len > 0 ? strlen(sep) : 0, n = strlen(s);

    t->dt_buf = xrealloc(t->dt_buf, t->dt_len + sl + n + 1);
    memcpy(t->dt_buf + t->dt_len, sep, sl);
    memcpy(t->dt_buf + t->dt_len + sl, s, n + 1);
    t->dt_len += sl + n;
}

static int str_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int strv_same(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_same(a[i], b[i]))
            return 0;
    return 1;
}

static int lifecycle_same(const struct lc_policy *a, const struct lc_policy *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->lp_nrules != b->lp_nrules)
        return 0;
    for (size_t i = 0; i < a->lp_nrules; i++) {
        const struct lc_rule *x = &a->lp_rules[i], *y = &b->lp_rules[i];
        if (x->lr_priority != y->lr_priority || x->lr_tag_status != y->lr_tag_status ||
            x->lr_count_type != y->lr_count_type || x->lr_count_number != y->lr_count_number ||
            !strv_same(x->lr_prefixes, x->lr_nprefixes, y->lr_prefixes, y->lr_nprefixes) ||
            !strv_same(x->lr_patterns, x->lr_npatterns, y->lr_patterns, y->lr_npatterns))
            return 0;
    }
    return 1;
}

static int ecr_same(const struct config_ecr *a, const struct config_ecr *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (!str_same(a->ecr_region, b->ecr_region) ||
        !str_same(a->ecr_registry_id, b->ecr_registry_id) ||
        !str_same(a->ecr_endpoint, b->ecr_endpoint) ||
        !str_same(a->ecr_repository_prefix, b->ecr_repository_prefix) ||
        a->ecr_allow_private_redirects != b->ecr_allow_private_redirects ||
        a->ecr_push != b->ecr_push || !str_same(a->ecr_tag_mutability, b->ecr_tag_mutability) ||
        !strv_same(a->ecr_mutability_exclusions, a->ecr_nmutability_exclusions,
                   b->ecr_mutability_exclusions, b->ecr_nmutability_exclusions) ||
        a->ecr_scan_on_push != b->ecr_scan_on_push ||
        !str_same(a->ecr_encryption_type, b->ecr_encryption_type) ||
        !str_same(a->ecr_kms_key, b->ecr_kms_key) ||
        !str_same(a->ecr_lifecycle_policy, b->ecr_lifecycle_policy) ||
        !str_same(a->ecr_repository_policy, b->ecr_repository_policy) ||
        a->ecr_ntags != b->ecr_ntags)
        return 0;
    for (size_t i = 0; i < a->ecr_ntags; i++)
        if (!str_same(a->ecr_tags[i].ct_key, b->ecr_tags[i].ct_key) ||
            !str_same(a->ecr_tags[i].ct_value, b->ecr_tags[i].ct_value))
            return 0;
    return 1;
}

/* 1 when rule <a> and rule <b> route, fetch and refresh alike (credentials aside). */
static int rule_same(const struct config_rule *a, const struct config_rule *b)
{
    return str_same(a->rule_prefix, b->rule_prefix) &&
           str_same(a->rule_upstream, b->rule_upstream) &&
           strv_same(a->rule_mirror_for, a->rule_nmirror_for, b->rule_mirror_for,
                     b->rule_nmirror_for) &&
           a->rule_default == b->rule_default && a->rule_library_prefix == b->rule_library_prefix &&
           a->rule_allow_private_redirects == b->rule_allow_private_redirects &&
           a->rule_refresh_interval == b->rule_refresh_interval &&
           a->rule_stale_if_error == b->rule_stale_if_error && a->rule_ecr == b->rule_ecr &&
           lifecycle_same(a->rule_lifecycle, b->rule_lifecycle);
}

static int rule_creds_same(const struct config_rule *a, const struct config_rule *b)
{
    return str_same(a->rule_username, b->rule_username) &&
           str_same(a->rule_password, b->rule_password) &&
           str_same(a->rule_ca_file, b->rule_ca_file);
}

static void restart_line(struct diff_text *t, const char *key, const char *kept)
{
    char *line = xasprintf("%s: a change needs a restart; keeping %s", key, kept);

    text_add(t, "\n", line);
    free(line);
}

/* <kept> with <unit> ("" or "s"), or <absent> (when not NULL) for a negative value. */
static void restart_int(struct diff_text *t, const char *key, int64_t kept, const char *unit,
                        const char *absent)
{
    char v[40];

    if (kept < 0 && absent != NULL) {
        restart_line(t, key, absent);
        return;
    }
    snprintf(v, sizeof(v), "%" PRId64 "%s", kept, unit);
    restart_line(t, key, v);
}

char *config_diff_restart(const struct config *running, const struct config *next)
{
    struct diff_text t = {NULL, 0};

    if (!str_same(running->cfg_listen, next->cfg_listen))
        restart_line(&t, "listen", running->cfg_listen);
    if (!str_same(running->cfg_data_dir, next->cfg_data_dir))
        restart_line(&t, "data_dir", running->cfg_data_dir);
    if (!str_same(running->cfg_admin_socket, next->cfg_admin_socket)) {
        char *kept = running->cfg_admin_socket != NULL
                         ? xstrdup(running->cfg_admin_socket)
                         : xasprintf("%s/admin.sock", running->cfg_data_dir);
        restart_line(&t, "admin_socket", kept);
        free(kept);
    }
    if (running->cfg_max_connections != next->cfg_max_connections)
        restart_int(&t, "max_connections", running->cfg_max_connections, "", NULL);
    if (running->cfg_max_conn_per_client != next->cfg_max_conn_per_client)
        restart_int(&t, "max_connections_per_client", running->cfg_max_conn_per_client, "",
                    "the default (a quarter of max_connections)");
    if (running->cfg_header_timeout != next->cfg_header_timeout)
        restart_int(&t, "header_timeout", running->cfg_header_timeout, "s", NULL);
    if (!ecr_same(running->cfg_ecr, next->cfg_ecr))
        restart_line(&t, "ecr",
                     running->cfg_ecr != NULL ? "the block the proxy started with" : "no ECR tier");
    return t.dt_buf;
}

char *config_diff_changed(const struct config *running, const struct config *next)
{
    struct diff_text t = {NULL, 0};
    int rules = running->cfg_nrules != next->cfg_nrules, creds = 0;

    for (size_t i = 0; i < running->cfg_nrules && i < next->cfg_nrules; i++) {
        if (!rule_same(&running->cfg_rules[i], &next->cfg_rules[i]))
            rules = 1;
        if (!rule_creds_same(&running->cfg_rules[i], &next->cfg_rules[i]))
            creds = 1;
    }
    if (rules)
        text_add(&t, " ", "rules");
    if (creds)
        text_add(&t, " ", "credentials");
    if (running->cfg_refresh_interval != next->cfg_refresh_interval)
        text_add(&t, " ", "refresh_interval");
    if (running->cfg_stale_if_error != next->cfg_stale_if_error)
        text_add(&t, " ", "stale_if_error");
    if (running->cfg_min_free_space != next->cfg_min_free_space)
        text_add(&t, " ", "min_free_space");
    if (running->cfg_cache_size != next->cfg_cache_size)
        text_add(&t, " ", "cache_size");
    if (!lifecycle_same(running->cfg_lifecycle, next->cfg_lifecycle))
        text_add(&t, " ", "lifecycle_policy");
    if (running->cfg_egress_price_per_gb != next->cfg_egress_price_per_gb)
        text_add(&t, " ", "egress_price_per_gb");
    return t.dt_buf != NULL ? t.dt_buf : xstrdup("");
}

static void keep_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src != NULL ? xstrdup(src) : NULL;
}

void config_diff_keep(struct config *next, const struct config *running)
{
    keep_str(&next->cfg_listen, running->cfg_listen);
    keep_str(&next->cfg_data_dir, running->cfg_data_dir);
    keep_str(&next->cfg_admin_socket, running->cfg_admin_socket);
    next->cfg_max_connections = running->cfg_max_connections;
    next->cfg_max_conn_per_client = running->cfg_max_conn_per_client;
    next->cfg_header_timeout = running->cfg_header_timeout;
}
