/*
 * The ECR tier's control side: where the API is (region, endpoint), the credential chain,
 * the data-plane token and the origin read-through uses, the repositories known to exist,
 * the names ECR cannot hold. The pushes themselves are push.c's.
 */
#include "config.h"

#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config_file.h"
#include "creds.h"
#include "db_index.h"
#include "ecr-int.h"
#include "ecr_api.h"
#include "ecr_name.h"
#include "log.h"
#include "registry.h"
#include "util.h"

const char *const ecr_kind_names[ECR_KIND_N] = {"blob", "manifest", "tag"};
const char *const ecr_result_names[ECR_RESULT_N] = {"pushed", "present", "failed", "refused"};

/* The token is renewed this long before it expires, at most half its lifetime. */
#define ECR_TOKEN_AHEAD_S (30 * 60)
#define ECR_TOKEN_BACKOFF_MAX_S 60
#define ECR_TOKEN_MIN_LIFE_S 5 /* a token that lives less is refused */
#define ECR_TOKEN_FORCE_S 30   /* a refused request renews the token at most this often */

/* ---- repositories known to exist -------------------------------------------------------- */

static int list_has(const struct ecr_known *l, const char *name)
{
    for (; l != NULL; l = l->next)
        if (strcmp(l->name, name) == 0)
            return 1;
    return 0;
}

static void list_add(struct ecr_known **l, const char *name)
{
    struct ecr_known *k;
    size_t n = strlen(name);

    if (list_has(*l, name))
        return;
    k = xmalloc(sizeof(*k) + n + 1);
    memcpy(k->name, name, n + 1);
    k->next = *l;
    *l = k;
}

static void list_drop(struct ecr_known **l, const char *name)
{
    for (struct ecr_known **pp = l; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct ecr_known *k = *pp;
            *pp = k->next;
            free(k);
            return;
        }
    }
}

static void list_free(struct ecr_known **l)
{
    while (*l != NULL) {
        struct ecr_known *k = *l;
        *l = k->next;
        free(k);
    }
}

int ecr_known_has(const struct ecr *e, const char *name)
{
    return list_has(e->known, name);
}

void ecr_known_add(struct ecr *e, const char *name)
{
    list_add(&e->known, name);
}

void ecr_known_drop(struct ecr *e, const char *name)
{
    list_drop(&e->known, name);
}

int ecr_policies_pending(const struct ecr *e, const char *name)
{
    return list_has(e->policies_pending, name);
}

void ecr_policies_pending_set(struct ecr *e, const char *name, int pending)
{
    if (pending)
        list_add(&e->policies_pending, name);
    else
        list_drop(&e->policies_pending, name);
}

/* ---- names ------------------------------------------------------------------------------ */

int ecr_repo_for(struct ecr *e, const struct config_rule *rule, const char *name, char *out,
                 size_t size)
{
    const char *why = NULL;

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    if (!rule->rule_ecr)
        return 0;
    if (ecr_repo_name(e->ec->ecr_repository_prefix, rule->rule_prefix, name, out, size, &why) == 0)
        return 1;
    for (size_t i = 0; i < e->nunmirrorable; i++)
        if (strcmp(e->unmirrorable[i], name) == 0)
            return 0;
    e->stats.es_unmirrorable++;
    /* Logged once per name; the list is capped so a stream of made-up names stays small. */
    if (e->nunmirrorable < 1024) {
        e->unmirrorable = xrealloc(e->unmirrorable, (e->nunmirrorable + 1) * sizeof(char *));
        e->unmirrorable[e->nunmirrorable++] = xstrdup(name);
        log_event(LOG_WARN, "ecr-name-unmirrorable", "rule", rule->rule_prefix, "repo", name,
                  "reason", why != NULL ? why : "not a valid ECR repository name", NULL);
    }
    return 0;
}

/* ---- the data-plane token --------------------------------------------------------------- */

static void token_fetch(struct ecr *e);

static void token_schedule(struct ecr *e, int64_t seconds)
{
    struct timeval tv = {seconds > 0 ? seconds : 0, 0};

    evtimer_add(e->token_timer, &tv);
}

static void token_failed(struct ecr *e, const char *why)
{
    char next[16];

    e->stats.es_token_failures++;
    e->token_backoff_s = e->token_backoff_s == 0 ? 1 : e->token_backoff_s * 2;
    if (e->token_backoff_s > ECR_TOKEN_BACKOFF_MAX_S)
        e->token_backoff_s = ECR_TOKEN_BACKOFF_MAX_S;
    snprintf(next, sizeof(next), "%d", e->token_backoff_s);
    log_event(LOG_WARN, "ecr-token-failed", "error", why, "retry_in_s", next, NULL);
    token_schedule(e, e->token_backoff_s);
}

/* "AWS:<password>" base64 → the password; NULL when malformed. */
static char *token_password(const char *b64)
{
    size_t n = strlen(b64);
    unsigned char *raw = xmalloc(n + 4);
    int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    char *colon, *pw = NULL;

    if (len > 0) {
        /* EVP_DecodeBlock counts the padding's zero bytes. */
        while (n > 0 && b64[n - 1] == '=') {
            n--;
            len--;
        }
        raw[len] = '\0';
        colon = strchr((char *)raw, ':');
        if (colon != NULL && colon != (char *)raw && colon[1] != '\0')
            pw = xstrdup(colon + 1);
    }
    explicit_bzero(raw, n + 4);
    free(raw);
    return pw;
}

static void token_done(void *arg, const struct ecr_api_result *r)
{
    struct ecr *e = arg;
    json_t *d;
    const char *tok, *endpoint;
    double expires;
    char *pw;
    int64_t now, life, ahead;
    char exp_s[32];

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    e->token_call = NULL;
    if (!r->ok) {
        char why[512];
        snprintf(why, sizeof(why), "%s%s%s (HTTP %d)", r->type, r->type[0] ? ": " : "", r->message,
                 r->status);
        token_failed(e, why);
        return;
    }
    d = json_array_get(json_object_get(r->body, "authorizationData"), 0);
    tok = json_string_value(json_object_get(d, "authorizationToken"));
    endpoint = json_string_value(json_object_get(d, "proxyEndpoint"));
    expires = json_number_value(json_object_get(d, "expiresAt"));
    if (tok == NULL || endpoint == NULL ||
        (strncmp(endpoint, "https://", 8) != 0 && strncmp(endpoint, "http://", 7) != 0)) {
        token_failed(e, "GetAuthorizationToken answered no token or proxyEndpoint");
        return;
    }
    now = e->clock();
    /* expiresAt: epoch seconds. Absent or absurd (not finite, a month away): ECR's 12 hours.
     * In the past or about to pass (a clock far off): a failure, retried with backoff, never
     * a loop of renewals. */
    if (!isfinite(expires) || expires <= 0 || expires > (double)now + 30 * 86400.0)
        expires = (double)now + 12 * 3600;
    if (expires < (double)now + ECR_TOKEN_MIN_LIFE_S) {
        token_failed(e, "GetAuthorizationToken's token expires at once (is the clock right?)");
        return;
    }
    pw = token_password(tok);
    if (pw == NULL) {
        token_failed(e, "GetAuthorizationToken's token is not base64 of AWS:password");
        return;
    }
    /* The previous password may still be read by an attempt being set up: kept one round. */
    if (e->old_password != NULL) {
        explicit_bzero(e->old_password, strlen(e->old_password));
        free(e->old_password);
    }
    e->old_password = e->password;
    e->password = pw;
    str_copy(e->data_url, sizeof(e->data_url), endpoint);
    {
        size_t n = strlen(e->data_url);
        while (n > 0 && e->data_url[n - 1] == '/')
            e->data_url[--n] = '\0';
    }
    e->origin.uo_password = e->password;
    e->token_expires_at = (int64_t)expires;
    e->have_token = 1;
    e->token_backoff_s = 0;
    e->stats.es_token_refreshes++;
    life = e->token_expires_at - now;
    ahead = life / 2 < ECR_TOKEN_AHEAD_S ? life / 2 : ECR_TOKEN_AHEAD_S;
    token_schedule(e, life - ahead > 1 ? life - ahead : 1);
    snprintf(exp_s, sizeof(exp_s), "%lld", (long long)life);
    log_event(LOG_INFO, "ecr-token", "data_plane", e->data_url, "expires_in_s", exp_s, NULL);
    push_poke(e->push);
}

static void token_fetch(struct ecr *e)
{
    json_t *params;

    if (e->api == NULL || e->token_call != NULL)
        return;
    params = json_object();
    if (e->ec->ecr_registry_id != NULL)
        json_object_set_new(params, "registryIds", json_pack("[s]", e->ec->ecr_registry_id));
    e->token_call = ecr_api_call(e->api, "GetAuthorizationToken", params, token_done, e);
}

static void token_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ecr *e = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    /* A token past its expiry is no longer offered to read-through. */
    if (e->have_token && e->token_expires_at <= e->clock())
        e->have_token = 0;
    token_fetch(e);
}

void ecr_unauthorized(struct ecr *e)
{
    int64_t now;

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    now = e->clock();
    /* A 403 may be a policy that denies, not an expired token: at most one forced renewal per
     * ECR_TOKEN_FORCE_S, however many requests are refused. */
    if (e->token_call != NULL || e->api == NULL || now - e->token_forced_at < ECR_TOKEN_FORCE_S)
        return;
    e->token_forced_at = now;
    log_event(LOG_WARN, "ecr-unauthorized", "action", "renewing the token", NULL);
    token_fetch(e);
}

const struct upstream_origin *ecr_origin(struct ecr *e)
{
    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    if (!e->have_token || e->token_expires_at <= e->clock())
        return NULL;
    return &e->origin;
}

/* ---- credentials, region and endpoint ----------------------------------------------------- */

static void creds_changed(void *arg, int ok, const char *err)
{
    struct ecr *e = arg;

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    if (!ok) {
        e->stats.es_cred_failures++;
        log_event(LOG_WARN, "ecr-credentials-failed", "error", err, NULL);
        return;
    }
    e->stats.es_cred_refreshes++;
    if (!e->have_token)
        token_fetch(e);
}

/* With the region known: the API client, then the first token. */
static void region_known(struct ecr *e)
{
    const char *ep = e->ec->ecr_endpoint;
    char *err = NULL;

    if (ep == NULL)
        ep = getenv("AWS_ENDPOINT_URL_ECR");
    if (ep == NULL || ep[0] == '\0')
        ep = getenv("AWS_ENDPOINT_URL");
    if (ep != NULL && ep[0] != '\0')
        str_copy(e->endpoint, sizeof(e->endpoint), ep);
    else
        snprintf(e->endpoint, sizeof(e->endpoint), "https://api.ecr.%s.amazonaws.com%s", e->region,
                 strncmp(e->region, "cn-", 3) == 0 ? ".cn" : "");
    {
        size_t n = strlen(e->endpoint);
        while (n > 0 && e->endpoint[n - 1] == '/')
            e->endpoint[--n] = '\0';
    }
    e->api = ecr_api_create(e->base, e->tp, e->creds, e->endpoint, e->region, e->clock, &err);
    if (e->api == NULL) {
        log_event(LOG_ERROR, "ecr-disabled", "error", err, NULL);
        free(err);
        return;
    }
    log_event(LOG_INFO, "ecr-tier", "region", e->region, "endpoint", e->endpoint, "push",
              e->ec->ecr_push ? "on" : "off", NULL);
    /* With credentials held now; else the chain's first answer asks (creds_changed). */
    {
        struct aws_credentials ac;
        int have = creds_get(e->creds, &ac);
        explicit_bzero(&ac, sizeof(ac));
        if (have)
            token_fetch(e);
    }
}

static void imds_region(void *arg, const char *region, const char *err)
{
    struct ecr *e = arg;

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    e->region_pending = 0;
    if (region == NULL || region[0] == '\0') {
        log_event(LOG_ERROR, "ecr-disabled", "error",
                  "no region: set ecr.region or AWS_REGION (IMDS did not answer)", "detail",
                  err != NULL ? err : "", NULL);
        return;
    }
    str_copy(e->region, sizeof(e->region), region);
    region_known(e);
}

struct ecr *ecr_create(struct event_base *base, const struct config *cfg, struct upstream *up,
                       struct cache *cache, int64_t (*clock)(void), char **err)
{
    struct ecr *e;
    struct creds_options co;

    if (cfg->cfg_ecr == NULL) {
        *err = xstrdup("no ecr block in the configuration");
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->magic = ECR_MAGIC;
    e->base = base;
    e->cfg = cfg;
    e->ec = cfg->cfg_ecr;
    e->up = up;
    e->tp = upstream_transport(up);
    e->cache = cache;
    e->clock = clock != NULL ? clock : util_now;
    memset(&co, 0, sizeof(co));
    co.co_clock = e->clock;
    co.co_changed = creds_changed;
    co.co_arg = e;
    e->creds = creds_create(base, e->tp, &co, err);
    if (e->creds == NULL) {
        free(e);
        return NULL;
    }
    e->token_timer = evtimer_new(base, token_timer_cb, e);
    e->origin.uo_name = "ecr";
    e->origin.uo_base_url = e->data_url;
    e->origin.uo_username = "AWS";
    e->origin.uo_allow_private = e->ec->ecr_allow_private_redirects;
    e->push = push_create(e);
    return e;
}

void ecr_start(struct ecr *e)
{
    const char *r;

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    index_push_release_all(cache_index(e->cache));
    creds_start(e->creds);
    push_start(e->push);
    r = e->ec->ecr_region;
    if (r == NULL || r[0] == '\0')
        r = getenv("AWS_REGION");
    if (r == NULL || r[0] == '\0')
        r = getenv("AWS_DEFAULT_REGION");
    if (r != NULL && r[0] != '\0') {
        str_copy(e->region, sizeof(e->region), r);
        region_known(e);
        return;
    }
    e->region_pending = 1;
    creds_imds_region(e->creds, imds_region, e);
}

void ecr_content_stored(struct ecr *e, int64_t repo)
{
    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    push_wake(e->push, repo);
}

void ecr_get_stats(struct ecr *e, struct ecr_stats *out)
{
    struct creds_stats cs;
    int64_t depth = 0, oldest = 0, now = e->clock();

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    *out = e->stats;
    creds_get_stats(e->creds, &cs);
    out->es_cred_refreshes = cs.cs_refreshes;
    out->es_cred_failures = cs.cs_failures;
    if (index_push_stats(cache_index(e->cache), &depth, &oldest) == 0) {
        out->es_queue_depth = depth;
        out->es_queue_oldest_age = oldest > 0 && now > oldest ? now - oldest : 0;
    }
    out->es_ready = ecr_origin(e) != NULL;
    out->es_token_expires_at = e->have_token ? e->token_expires_at : 0;
}

void ecr_destroy(struct ecr *e)
{
    if (e == NULL)
        return;
    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    push_destroy(e->push);
    if (e->token_call != NULL)
        ecr_call_cancel(e->token_call);
    ecr_api_destroy(e->api);
    creds_destroy(e->creds);
    if (e->token_timer != NULL)
        event_free(e->token_timer);
    list_free(&e->known);
    list_free(&e->policies_pending);
    for (size_t i = 0; i < e->nunmirrorable; i++)
        free(e->unmirrorable[i]);
    free(e->unmirrorable);
    if (e->password != NULL) {
        explicit_bzero(e->password, strlen(e->password));
        free(e->password);
    }
    if (e->old_password != NULL) {
        explicit_bzero(e->old_password, strlen(e->old_password));
        free(e->old_password);
    }
    e->magic = 0;
    free(e);
}
