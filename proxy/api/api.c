/*
 * The OCI Distribution API handlers (pull category): /v2/, manifests, blobs, tags/list,
 * referrers, /healthz, / (the status page, status.c), and the spec's error JSON for everything
 * else.
 *
 * This file: dispatch, the api's life, and the waiting request (mreq). A request is routed
 * (route: URI grammar; policy_rules: which upstream), then:
 *  - manifest by tag: the index's entry and policy_refresh decide between the cache, a HEAD
 *    upstream (a GET only when the digest changed), or stale-if-error;
 *  - manifest by digest: the store, else one buffered fetch per digest shared by every
 *    waiting client, verified before it is stored;
 *  - blob: the store (sendfile, Range), else the fill for that digest (fill/);
 *  - tags/list and referrers: upstream's answer, or what the catalog holds in an outage.
 * What the cache knows is the catalog's (cache/); policy_access decides which repository may
 * be served which digest. Time is the api's clock, read once at each entry (a request's
 * arrival, the end of its wait, a timer) and passed down.
 */
#include "config.h"

#include "api.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "ecr.h"
#include "exchange.h"
#include "fill.h"
#include "log.h"
#include "reply.h"
#include "server.h"
#include "util.h"

/* ---- responses -------------------------------------------------------------------------- */

/* How fetch <f> ended, in the outage policy's terms. */
enum outage_class api_outcome(const struct fetch *f)
{
    switch (f->res) {
    case UPSTREAM_OK:
    case UPSTREAM_HTTP: return outage_classify(OUTAGE_VIA_HTTP, f->resp.ur_status);
    case UPSTREAM_NETWORK: return outage_classify(OUTAGE_VIA_NETWORK, 0);
    default: return outage_classify(OUTAGE_VIA_LOCAL, 0);
    }
}

/* Serve stored <digest> (http_send_file); -1 when it is not in the store or unreadable. */
int api_serve_stored(struct evhttp_request *req, struct exchange *x, struct cache *c,
                     const char *digest, const char *content_type, const char *warning, int ranges)
{
    int64_t size;
    int fd = cache_open_blob(c, digest, &size);

    if (fd == -1)
        return -1;
    return http_send_file(req, x, fd, size, digest, content_type, warning, ranges);
}

/* ---- waiting requests ------------------------------------------------------------------- */

static void mreq_gone_cb(void *arg)
{
    struct mreq *m = arg;

    CHECK_OBJ_NOTNULL(m, MREQ_MAGIC);
    m->gone = 1;
    m->x = NULL;
}

struct mreq *mreq_new(struct api *api, struct evhttp_request *req, struct exchange *x)
{
    struct mreq *m = xcalloc(1, sizeof(*m));
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    size_t n = 0;

    m->magic = MREQ_MAGIC;
    m->api = api;
    m->req = req;
    m->x = x;
    m->head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    m->now = api->clock();
    /* Clients such as skopeo send one Accept header per media type: join them all. */
    TAILQ_FOREACH(kv, in, next)
    {
        size_t vl;
        if (strcasecmp(kv->key, "Accept") != 0)
            continue;
        vl = strlen(kv->value);
        if (n + vl + 3 >= sizeof(m->accept))
            break;
        if (n > 0) {
            memcpy(m->accept + n, ", ", 2);
            n += 2;
        }
        memcpy(m->accept + n, kv->value, vl);
        n += vl;
        m->accept[n] = '\0';
    }
    return m;
}

/*
 * The gone callback is hooked only while <m> waits on the network (fetch_join); synchronous
 * code runs unhooked, so a reply that completes at once (and frees the exchange) is safe.
 */
void mreq_hook(struct mreq *m)
{
    if (m->x != NULL)
        exchange_on_gone(m->x, mreq_gone_cb, m);
}

void mreq_unhook(struct mreq *m)
{
    if (m->x != NULL)
        exchange_on_gone(m->x, NULL, NULL);
}

void mreq_free(struct mreq *m)
{
    api_tags_free(m);
    if (m->gone && m->req != NULL && evhttp_request_get_connection(m->req) == NULL)
        evhttp_send_reply_end(m->req); /* frees the detached request */
    m->magic = 0;
    free(m);
}

/* Answer <m> with an error and release it. */
void mreq_error(struct mreq *m, enum oci_error e, const char *msg, const char *detail)
{
    if (!m->gone)
        http_send_error(m->req, e, msg, detail);
    mreq_free(m);
}

/* ---- dispatch --------------------------------------------------------------------------- */

void api_handle(void *arg, struct evhttp_request *req, struct exchange *x)
{
    struct api *api = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    struct route_req rt;
    struct rules_match match;
    enum oci_error e;
    const char *why = NULL;
    struct mreq *m;
    enum rules_result rr;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (strcmp(uri, "/healthz") == 0 || strncmp(uri, "/healthz?", 9) == 0) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            http_send_error(req, OCI_ERR_METHOD, "only GET and HEAD", NULL);
            return;
        }
        http_send_body(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    if (strcmp(uri, "/metrics") == 0 && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)) {
        api_metrics(api, req);
        return;
    }
    if (strcmp(uri, "/") == 0 || strncmp(uri, "/?", 2) == 0) {
        api_status(api, req);
        return;
    }
    if (strncmp(uri, "/v2", 3) != 0 || (uri[3] != '\0' && uri[3] != '/' && uri[3] != '?')) {
        http_send_error(req, OCI_ERR_NOT_FOUND, "not an OCI distribution API path",
                        "the API lives under /v2/");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        http_send_error(req, OCI_ERR_UNSUPPORTED,
                        "this is a pull-through cache: only GET and HEAD are supported", NULL);
        return;
    }
    if (route_parse(uri, &rt, &e, &why) == -1) {
        http_send_error(req, e, why, NULL);
        return;
    }
    if (rt.rq_kind < ARRAY_LEN(api->mx.requests))
        api->mx.requests[rt.rq_kind]++;
    if (rt.rq_kind == ROUTE_BASE) {
        http_send_body(req, 200, "application/json", "{}", 2);
        return;
    }
    rr = rules_match(api->rules, api->cfg->cfg_nrules, rt.rq_name, rt.rq_ns, &match);
    if (rr != RULES_OK) {
        char prefixes[1024], detail[1200];
        rules_prefix_list(api->rules, api->cfg->cfg_nrules, prefixes, sizeof(prefixes));
        snprintf(detail, sizeof(detail), "configured prefixes: %s", prefixes);
        if (rr == RULES_EMPTY_NAME)
            http_send_error(req, OCI_ERR_NAME_INVALID, "a prefix alone is not a repository",
                            detail);
        else
            http_send_error(req, OCI_ERR_NAME_UNKNOWN,
                            rt.rq_ns[0] ? "no rule mirrors this namespace or prefix"
                                        : "no rule answers this repository prefix",
                            detail);
        return;
    }
    if (server_stopping(api->srv)) {
        http_send_error(req, OCI_ERR_UNAVAILABLE, "the proxy is shutting down", NULL);
        return;
    }
    m = mreq_new(api, req, x);
    m->rt = rt;
    m->rule = &api->cfg->cfg_rules[match.rm_rule];
    m->origin = &api->origins[match.rm_rule];
    str_copy(m->upname, sizeof(m->upname), match.rm_upstream_name);
    m->repo = cache_repo_id(api->cache, m->rule->rule_prefix, m->upname);
    if (m->repo == -1) {
        mreq_error(m, OCI_ERR_UNAVAILABLE, "the index is not available", NULL);
        return;
    }
    switch (rt.rq_kind) {
    case ROUTE_MANIFEST: api_manifest(m); break;
    case ROUTE_BLOB: api_blob(m); break;
    case ROUTE_TAGS: api_tags(m); break;
    case ROUTE_REFERRERS: api_referrers(m); break;
    default: mreq_error(m, OCI_ERR_NOT_FOUND, "unknown API path", NULL); break;
    }
}

/* The upstream origin of rule <r>; its strings stay the config's. */
static void origin_from_rule(struct upstream_origin *o, const struct config_rule *r)
{
    memset(o, 0, sizeof(*o));
    o->uo_name = r->rule_prefix;
    o->uo_base_url = r->rule_upstream;
    o->uo_username = r->rule_username;
    o->uo_password = r->rule_password;
    o->uo_allow_private = r->rule_allow_private_redirects;
    o->uo_ca_file = r->rule_ca_file;
}

/* What the api derives from <cfg>'s rules: the routing table and one upstream origin per rule,
 * in cfg_rules' order (the caller frees both; their strings stay the config's). */
static void api_derive(const struct config *cfg, struct rules_rule **rules,
                       struct upstream_origin **origins)
{
    *rules = xcalloc(cfg->cfg_nrules + 1, sizeof(**rules));
    *origins = xcalloc(cfg->cfg_nrules + 1, sizeof(**origins));
    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        const struct config_rule *r = &cfg->cfg_rules[i];
        (*rules)[i].rr_prefix = r->rule_prefix;
        (*rules)[i].rr_mirror_for = r->rule_mirror_for;
        (*rules)[i].rr_nmirror_for = r->rule_nmirror_for;
        (*rules)[i].rr_default = r->rule_default;
        (*rules)[i].rr_library_prefix = r->rule_library_prefix;
        origin_from_rule(&(*origins)[i], r);
    }
}

/* The catalog's batched stamps go to the index every API_FLUSH_SECONDS. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct api *api;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(api, arg, API_MAGIC);
    cache_flush(api->cache, api->clock());
}

struct api *api_create(struct event_base *base, const struct config *cfg, struct server *srv,
                       char **err)
{
    struct api *api = xcalloc(1, sizeof(*api));
    struct upstream_settings us = {10000, 30, 200, 10};
    long dropped = 0;

    *err = NULL;
    api->magic = API_MAGIC;
    api->base = base;
    api->cfg = cfg;
    api->srv = srv;
    api->clock = util_now;
    api->started_at = api->clock();
    api->cache = cache_open(cfg->cfg_data_dir, &dropped, err);
    if (api->cache == NULL)
        goto fail;
    if (dropped > 0) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", dropped);
        log_event(LOG_WARN, "reconcile", "dropped_rows", n, NULL);
    }
    api_derive(cfg, &api->rules, &api->origins);
    api->up = upstream_create(base, &us, err);
    if (api->up == NULL)
        goto fail;
    api->fills = fills_create(base, cache_store(api->cache), api->up, api_blob_filled, api);
    if (api->fills == NULL) {
        *err = xstrdup("cannot start the commit thread");
        goto fail;
    }
    fills_on_fallback(api->fills, api_blob_fallback);
    if (cfg->cfg_ecr != NULL) {
        api->ecr = ecr_create(base, cfg, api->up, api->cache, NULL, err);
        if (api->ecr == NULL)
            goto fail;
        ecr_start(api->ecr);
    }
    api->flush = event_new(base, -1, EV_PERSIST, flush_cb, api);
    {
        struct timeval tv = {API_FLUSH_SECONDS, 0};
        event_add(api->flush, &tv);
    }
    if (api_gc_start(api) == -1) {
        *err = xstrdup("cannot start the sweep's timer");
        goto fail;
    }
    api_status_start(api);
    return api;
fail:
    api_destroy(api);
    return NULL;
}

void api_set_clock(struct api *api, int64_t (*clock)(void))
{
    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    api->clock = clock;
    api->started_at = clock(); /* the uptime metric on the same clock */
}

/*
 * The routing table and the origins of the configuration in force are swapped for <cfg>'s;
 * the old ones join api->retired. Requests and fills in flight hold pointers into them (and
 * into the old config, which main keeps): nothing is freed before api_destroy.
 */
void api_reload(struct api *api, const struct config *cfg)
{
    struct api_retired *old = xcalloc(1, sizeof(*old));

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    old->ar_rules = api->rules;
    old->ar_origins = api->origins;
    old->ar_next = api->retired;
    api->retired = old;
    api_derive(cfg, &api->rules, &api->origins);
    api->cfg = cfg;
    api->mx.reloads[0]++;
}

void api_reload_failed(struct api *api)
{
    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    api->mx.reloads[1]++;
}

void api_destroy(struct api *api)
{
    if (api == NULL)
        return;
    /* Commits still on the worker thread reach the index and the log before the maps go. */
    fills_drain(api->fills);
    while (api->fetches != NULL) {
        struct fetch *f = api->fetches;
        api->fetches = f->next;
        if (f->xfer != NULL)
            upstream_cancel(f->xfer);
        while (f->waiters != NULL) {
            struct mreq *w = f->waiters;
            f->waiters = w->next_waiter;
            api_tags_free(w);
            w->magic = 0;
            free(w);
        }
        free(f->key);
        free(f->body);
        free(f);
    }
    if (api->flush != NULL)
        event_free(api->flush);
    api_gc_stop(api);
    api_status_stop(api);
    /* The fills' xfers borrow the tier's origin; the tier's requests run on the upstream's
     * transport. */
    fills_destroy(api->fills);
    ecr_destroy(api->ecr);
    upstream_destroy(api->up);
    cache_close(api->cache, api->clock());
    free(api->rules);
    free(api->origins);
    while (api->retired != NULL) {
        struct api_retired *r = api->retired;
        api->retired = r->ar_next;
        free(r->ar_rules);
        free(r->ar_origins);
        free(r);
    }
    api->magic = 0;
    free(api);
}
