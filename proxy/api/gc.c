/*
 * The sweep as the daemon runs it: with the config's cache_size, min_free_space and lifecycle
 * policies, before a fill is committed when it would not fit (fill_keep_fn), when a fill
 * starts on a disk below its floor, every API_GC_SECONDS, and when the admin gc command asks.
 * The decisions are cache_gc's (proxy/cache/cache_gc.c) and the lifecycle policy's; here are
 * when, with what, and the log lines and counters.
 */
#include "config.h"

#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "exchange.h"
#include "fill.h"
#include "log.h"
#include "util.h"

static const struct lc_policy *policy_for(void *arg, const char *rule)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    for (size_t i = 0; i < api->cfg->cfg_nrules; i++)
        if (strcmp(api->cfg->cfg_rules[i].rule_prefix, rule) == 0)
            return config_rule_lifecycle(api->cfg, &api->cfg->cfg_rules[i]);
    /* A repository of a rule no longer configured: the default policy, if any. */
    return api->cfg->cfg_lifecycle;
}

static void gc_opts(struct api *api, int dry_run, int64_t need, struct cache_gc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->cg_budget = api->cfg->cfg_cache_size;
    o->cg_min_free = api->cfg->cfg_min_free_space;
    o->cg_need = need;
    o->cg_dry_run = dry_run;
    o->cg_policy = policy_for;
    o->cg_arg = api;
}

/* A sweep ended with <out> after <usec>: counters and log lines. */
static void gc_note(struct api *api, const struct cache_gc_result *out, int64_t usec)
{
    char images[32], freed[32], files[32], used[32], us[32], skipped[32];
    size_t nlife = 0;

    for (size_t i = 0; i < out->gr_nimages; i++)
        if (out->gr_images[i].gi_rule_priority > 0)
            nlife++;
    snprintf(images, sizeof(images), "%zu", out->gr_nimages);
    snprintf(freed, sizeof(freed), "%" PRId64, out->gr_freed);
    snprintf(files, sizeof(files), "%" PRId64, out->gr_files);
    snprintf(used, sizeof(used), "%" PRId64, out->gr_used_after);
    snprintf(us, sizeof(us), "%" PRId64, usec);
    snprintf(skipped, sizeof(skipped), "%" PRId64, out->gr_skipped);
    api->mx.gc_runs++;
    api->mx.gc_images[0] += nlife;
    api->mx.gc_images[1] += out->gr_nimages - nlife;
    api->mx.gc_bytes += (uint64_t)out->gr_freed;
    api->mx.gc_files += (uint64_t)out->gr_files;
    if (out->gr_nimages > 0 || out->gr_files > 0)
        log_event(LOG_INFO, "gc-done", "images", images, "bytes_freed", freed, "files", files,
                  "skipped", skipped, "used_bytes", used, "usec", us, NULL);
    for (size_t i = 0; i < out->gr_nimages; i++) {
        const struct cache_gc_image *g = &out->gr_images[i];
        char prio[16], bytes[32];
        snprintf(prio, sizeof(prio), "%d", g->gi_rule_priority);
        snprintf(bytes, sizeof(bytes), "%" PRId64, g->gi_bytes);
        log_event(LOG_INFO, "gc-expired", "rule", g->gi_rule, "repository", g->gi_name, "digest",
                  g->gi_digest, "tag", g->gi_ntags > 0 ? g->gi_tags[0] : "", "reason",
                  g->gi_rule_priority > 0 ? "lifecycle" : "budget", "rule_priority", prio, "bytes",
                  bytes, NULL);
    }
}

/* ---- the sweep in slices ----------------------------------------------------------------
 * The timer's sweeps, the admin command's and those a fill starting below the floor asks for
 * run a slice of CACHE_GC_SLICE removals per turn of the loop, so clients are served between
 * slices (a sweep of 10,000 images unlinks 10,000 files: seconds on a slow disk). Only the
 * plan, one read of the index, runs in one go. A fill that must know now whether it fits
 * (api_blob_keep) finishes a running sweep first and sweeps synchronously. */

#define GC_WAITER_MAGIC 0x47435752u /* "GCWR" */

/* An admin request waiting for the running sweep's result. */
struct gc_waiter {
    unsigned magic;
    struct evhttp_request *req;
    struct exchange *x; /* NULL once its client is gone */
    int gone;
    struct gc_waiter *next;
};

static void waiter_gone_cb(void *arg)
{
    struct gc_waiter *w = arg;

    CHECK_OBJ_NOTNULL(w, GC_WAITER_MAGIC);
    w->gone = 1;
    w->x = NULL;
}

/* The running sweep is done (<ok>) or abandoned: note it and answer its waiters. */
static void sweep_finish(struct api *api, int ok)
{
    struct gc_waiter *w = api->gc_waiters;

    cache_gc_end(api->cache, api->sweep, api->clock(), &api->sweep_res);
    api->sweep = NULL;
    if (ok)
        gc_note(api, &api->sweep_res, util_mono_usec() - api->sweep_t0);
    else {
        log_event(LOG_ERROR, "gc-failed", "error", "the index could not be written", NULL);
        api->mx.gc_failures++;
    }
    api->gc_waiters = NULL;
    while (w != NULL) {
        struct gc_waiter *next = w->next;
        if (w->gone) {
            if (evhttp_request_get_connection(w->req) == NULL)
                evhttp_send_reply_end(w->req); /* frees the detached request */
        } else {
            exchange_on_gone(w->x, NULL, NULL);
            api_admin_gc_reply(w->req, 0, ok ? &api->sweep_res : NULL);
        }
        w->magic = 0;
        free(w);
        w = next;
    }
    cache_gc_result_free(&api->sweep_res);
}

static void slice_cb(evutil_socket_t fd, short what, void *arg)
{
    struct api *api;
    struct timeval now0 = {0, 0};
    int more;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(api, arg, API_MAGIC);
    if (api->sweep == NULL)
        return;
    more = cache_gc_step(api->cache, api->sweep, api->clock(), CACHE_GC_SLICE);
    if (more == 1)
        event_add(api->sweep_ev, &now0);
    else
        sweep_finish(api, more == 0);
}

/* Run the running sweep to its end now. */
static void sweep_drain(struct api *api)
{
    int more = 1;

    if (api->sweep == NULL)
        return;
    event_del(api->sweep_ev);
    while (more == 1)
        more = cache_gc_step(api->cache, api->sweep, api->clock(), CACHE_GC_SLICE);
    sweep_finish(api, more == 0);
}

int api_gc_async(struct api *api, struct evhttp_request *req, struct exchange *x)
{
    struct timeval now0 = {0, 0};

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (api->sweep == NULL) {
        struct cache_gc_opts o;
        gc_opts(api, 0, 0, &o);
        api->sweep_t0 = util_mono_usec();
        if (cache_gc_begin(api->cache, &o, api->clock(), &api->sweep_res, &api->sweep) == -1) {
            log_event(LOG_ERROR, "gc-failed", "error", "the index could not be read", NULL);
            api->mx.gc_failures++;
            return -1;
        }
        event_add(api->sweep_ev, &now0);
    }
    if (req != NULL) {
        struct gc_waiter *w = xcalloc(1, sizeof(*w));
        w->magic = GC_WAITER_MAGIC;
        w->req = req;
        w->x = x;
        w->next = api->gc_waiters;
        api->gc_waiters = w;
        if (x != NULL)
            exchange_on_gone(x, waiter_gone_cb, w);
    }
    return 0;
}

int api_gc(struct api *api, int dry_run, int64_t need, struct cache_gc_result *out)
{
    struct cache_gc_opts o;
    int64_t t0;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (!dry_run)
        sweep_drain(api); /* one sweep at a time, and its removals count */
    t0 = util_mono_usec();
    gc_opts(api, dry_run, need, &o);
    if (cache_gc(api->cache, &o, api->clock(), out) == -1) {
        log_event(LOG_ERROR, "gc-failed", "error", "the index could not be read or written", NULL);
        api->mx.gc_failures++;
        return -1;
    }
    if (!dry_run)
        gc_note(api, out, util_mono_usec() - t0);
    return 0;
}

/* 1 when storing <need> more bytes would break the budget or the free-space floor. */
static int over(struct api *api, int64_t need)
{
    int64_t budget = api->cfg->cfg_cache_size, floor = api->cfg->cfg_min_free_space;
    int64_t free_bytes = cache_free_bytes(api->cache);

    if (budget > 0 && cache_used_bytes(api->cache) + api->reserved_bytes + need > budget)
        return 1;
    return floor > 0 && free_bytes >= 0 && free_bytes < floor;
}

int api_blob_keep(void *arg, const char *digest, int64_t size)
{
    struct api *api = arg;
    struct cache_gc_result r;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (over(api, size)) {
        /* Room for this one and for the fills kept and not committed yet. */
        if (api_gc(api, 0, size + api->reserved_bytes, &r) == 0)
            cache_gc_result_free(&r);
        if (over(api, size))
            return 0; /* the fills count and log it */
    }
    if (api->nreserved == api->capreserved) {
        api->capreserved = api->capreserved ? api->capreserved * 2 : 16;
        api->reserved = xrealloc(api->reserved, api->capreserved * sizeof(*api->reserved));
    }
    str_copy(api->reserved[api->nreserved].ar_digest, sizeof(api->reserved[0].ar_digest), digest);
    api->reserved[api->nreserved++].ar_size = size;
    api->reserved_bytes += size;
    return 1;
}

void api_gc_release(struct api *api, const char *digest)
{
    for (size_t i = 0; i < api->nreserved; i++)
        if (strcmp(api->reserved[i].ar_digest, digest) == 0) {
            api->reserved_bytes -= api->reserved[i].ar_size;
            api->reserved[i] = api->reserved[--api->nreserved];
            return;
        }
}

void api_gc_make_room(struct api *api)
{
    if (api->sweep == NULL && over(api, 0))
        (void)api_gc_async(api, NULL, NULL);
}

/* Every API_GC_SECONDS: the lifecycle rules (they expire by days) and the budget. */
static void gc_cb(evutil_socket_t fd, short what, void *arg)
{
    struct api *api;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(api, arg, API_MAGIC);
    if (api->sweep == NULL)
        (void)api_gc_async(api, NULL, NULL);
}

int api_gc_start(struct api *api)
{
    struct timeval tv = {API_GC_SECONDS, 0};

    api->gc_timer = event_new(api->base, -1, EV_PERSIST, gc_cb, api);
    api->sweep_ev = event_new(api->base, -1, 0, slice_cb, api);
    if (api->gc_timer == NULL || api->sweep_ev == NULL)
        return -1;
    fills_on_keep(api->fills, api_blob_keep);
    return event_add(api->gc_timer, &tv);
}

void api_gc_stop(struct api *api)
{
    /* Stopping: what the running sweep removed stays removed, the rest waits for the next. */
    if (api->sweep != NULL)
        sweep_finish(api, 1);
    if (api->sweep_ev != NULL)
        event_free(api->sweep_ev);
    api->sweep_ev = NULL;
    if (api->gc_timer != NULL)
        event_free(api->gc_timer);
    api->gc_timer = NULL;
    free(api->reserved);
    api->reserved = NULL;
    api->nreserved = api->capreserved = 0;
}
