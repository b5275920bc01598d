/*
 * The api's own declarations, shared by its files and by nothing else: the api, a waiting
 * request (mreq), a coalesced upstream fetch and its waiters, and the calls between the
 * handlers (manifests.c, blobs.c, tags.c, referrers.c), the fetches (fetch.c), the metrics
 * (metrics.c) and dispatch (api.c).
 */
#ifndef API_INT_H
#define API_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "db_index.h"
#include "oci.h"
#include "policy_outage.h"
#include "policy_rules.h"
#include "registry.h"
#include "route.h"

struct cache;
struct config;
struct config_rule;
struct event;
struct event_base;
struct evhttp_request;
struct exchange;
struct fills;
struct server;
struct status;

#define API_MAGIC 0x41504921u   /* "API!" */
#define MREQ_MAGIC 0x4d524551u  /* "MREQ" */
#define FETCH_MAGIC 0x46544348u /* "FTCH" */
/* The distribution spec's warning: clients show only code 299 to their users. */
#define STALE_WARNING "299 - \"stale: upstream failed, serving the cached copy\""

struct fetch;
struct tags_acc;

/* Counters for /metrics (Prometheus text format). */
struct api_metrics {
    uint64_t requests[5]; /* by route kind: base, manifest, blob, tags, referrers */
    uint64_t manifest_hits, manifest_misses;
    uint64_t blob_hits, blob_misses;
    uint64_t tag_fresh, tag_checks, tag_changed, tag_check_errors, stale_served;
    uint64_t confirmations; /* HEADs sent: does this repository hold a digest stored here? */
    /* Verified content fetched (blobs and manifests), by origin: ECR or the upstream. */
    uint64_t content_bytes_ecr, content_bytes_upstream;
    uint64_t ecr_reads[2][2];   /* [manifest, blob][found, missed] read-through lookups */
    uint64_t ecr_stale_served;  /* tags served from ECR, upstream failing, none cached here */
    uint64_t ecr_confirmations; /* cross-repository confirmations ECR answered */
    /* The sweep (gc.c). */
    uint64_t gc_runs, gc_failures;
    uint64_t gc_images[2]; /* images expired: [by a lifecycle rule, by the byte budget] */
    uint64_t gc_bytes, gc_files;
    uint64_t reloads[2]; /* configuration reloads: [applied, refused] */
};

/* A routing table and its origins replaced by a reload: in-flight requests and fills may still
 * point into them, so they live until api_destroy. */
struct api_retired {
    struct rules_rule *ar_rules;
    struct upstream_origin *ar_origins;
    struct api_retired *ar_next;
};

struct api {
    unsigned magic;
    struct event_base *base;
    const struct config *cfg;
    struct server *srv;
    struct cache *cache;
    struct upstream *up;
    struct fills *fills;
    struct ecr *ecr; /* the private ECR tier; NULL without an "ecr" block */
    struct rules_rule *rules;
    struct upstream_origin *origins; /* one per rule, in cfg_rules' order */
    struct fetch *fetches;           /* buffered upstream fetches in flight, shared by key */
    struct api_retired *retired;     /* replaced by reloads (api_reload) */

    struct event *flush;    /* writes the catalog's batched stamps */
    struct event *gc_timer; /* the periodic sweep (gc.c) */
    /* The sweep running in slices (gc.c), its plan's result, and admin requests waiting. */
    struct cache_sweep *sweep;
    struct event *sweep_ev;
    struct cache_gc_result sweep_res;
    int64_t sweep_t0;
    struct gc_waiter *gc_waiters;
    /* Fills kept (api_blob_keep said yes) whose commit has not landed: their bytes count as
     * used until api_blob_filled, so fills ending together cannot all take the same room. */
    struct api_reserved {
        char ar_digest[INDEX_DIGEST_MAX];
        int64_t ar_size;
    } * reserved;
    size_t nreserved, capreserved;
    int64_t reserved_bytes;
    struct status *status; /* the status page's 24 h samples (status.c) */
    struct api_metrics mx;
    int64_t started_at;
    int64_t (*clock)(void); /* wall-clock seconds: util_now, or a test's */
};

#define API_FLUSH_SECONDS 5
#define API_GC_SECONDS 600 /* the lifecycle rules expire by days; the budget is kept per fill */

/* One client request that waits on something. */
struct mreq {
    unsigned magic;
    struct api *api;
    struct evhttp_request *req;
    struct exchange *x;
    int gone, head;
    int64_t now; /* the clock when the request arrived, or when its last wait ended */
    struct route_req rt;
    const struct config_rule *rule;
    const struct upstream_origin *origin; /* the rule's, from the routing table it matched */
    char upname[RULES_NAME_MAX];
    int64_t repo;
    int have_tag;
    struct index_tag tag;
    char accept[1024];
    char tagname[ROUTE_REF_MAX + 1]; /* the tag asked for, "" for pulls by digest */
    char want[INDEX_DIGEST_MAX];     /* the digest being fetched */
    int child;                       /* serving the platform child of the tag's index */
    int ecr_tried;                   /* the ECR tier was asked for m->want already */
    int from_ecr;                    /* what is being stored came from ECR: not pushed back */
    int tag_rechecked;               /* ECR had no tag to fall back on: upstream asked again */
    enum upstream_result up_res;     /* the upstream failure an ECR lookup may cover */
    int up_status;
    char up_err[512];
    struct tags_acc *tags; /* tags/list: upstream's pages gathered so far */
    void (*cont)(struct mreq *m, struct fetch *f);
    struct mreq *next_waiter;
};

/* A buffered upstream request (manifests, HEADs, tags, referrers) and its waiters. */
struct fetch {
    unsigned magic;
    struct api *api;
    struct fetch *next;
    char *key;
    struct upstream_xfer *xfer;
    char *body;
    size_t len, cap;
    int64_t max;
    enum upstream_result res;
    struct upstream_response resp;
    char err[512];
    int stored; /* a manifest: committed and indexed by its first waiter */
    struct mreq *waiters;
};

/* ---- api.c: replies and waiting requests ---- */

/* How fetch <f> ended, in the outage policy's terms. */
enum outage_class api_outcome(const struct fetch *f);
/* Serve stored <digest> (http_send_file); -1 when it is not in the store or unreadable. */
int api_serve_stored(struct evhttp_request *req, struct exchange *x, struct cache *c,
                     const char *digest, const char *content_type, const char *warning, int ranges);

struct mreq *mreq_new(struct api *api, struct evhttp_request *req, struct exchange *x);
/* The gone callback is hooked only while <m> waits on the network (fetch_join). */
void mreq_hook(struct mreq *m);
void mreq_unhook(struct mreq *m);
/* The request is answered (or its client left): release it. */
void mreq_free(struct mreq *m);
/* Answer <m> with an error and release it. */
void mreq_error(struct mreq *m, enum oci_error e, const char *msg, const char *detail);

/* ---- fetch.c: coalesced upstream requests ---- */

/*
 * Join the fetch named <key>, or start it with <t>; <m> continues in <cont> when it ends,
 * with m->now read again. 1 when this call sent a request upstream, 0 when it joined one.
 */
int fetch_join(struct mreq *m, const char *key, const struct upstream_target *t,
               void (*cont)(struct mreq *, struct fetch *));
/* A target for <m>'s upstream and repository: <path>, GET or <head>, 2 retries, no cap. */
void api_target_init(struct upstream_target *t, const struct mreq *m, const char *path, int head);

/* ---- mirror.c: the ECR tier as seen from the api ---- */

/*
 * A target on the ECR tier for <m>'s repository: GET (or <head>) <kind> ("manifests",
 * "blobs") <ref>, path written into <path>. 1 when ECR can be asked (a token is held and the
 * rule and name are mirrored), else 0.
 */
int api_ecr_target(struct mreq *m, struct upstream_target *t, char *path, size_t psize,
                   const char *kind, const char *ref, int head);
/* 1 when ECR can be asked for <m>'s repository now (api_ecr_target would succeed). */
int api_ecr_ready(struct mreq *m);
/* The fetch key of that target, for fetch_join. */
void api_ecr_key(const struct mreq *m, char *key, size_t size, int head, const char *path);
/* Queue the push of manifest <digest> (and <tag>, or NULL) of <m>'s repository. */
void api_ecr_queue(struct mreq *m, const char *digest, const char *tag);
/* An ECR fetch ended with status <status>: a 401 or 403 renews the token. */
void api_ecr_answered(struct api *api, int status);
/* The tier's lines for /metrics. */
struct evbuffer;
void api_ecr_metrics(struct api *api, struct evbuffer *b);

/* ---- the handlers: each answers <m> (now or later) and releases it ---- */

void api_manifest(struct mreq *m);  /* manifests.c */
void api_blob(struct mreq *m);      /* blobs.c */
void api_tags(struct mreq *m);      /* tags.c */
void api_referrers(struct mreq *m); /* referrers.c */
/* tags.c: free <m>'s gathered tag pages, if any. */
void api_tags_free(struct mreq *m);
/* blobs.c: the fills' done callback (fill_done_fn; <arg> is the api). */
void api_blob_filled(void *arg, const char *digest, int ok, int64_t size, int64_t repo, int source);
/* blobs.c: the fills' fallback callback (fill_fallback_fn). */
void api_blob_fallback(void *arg, const char *digest, int status, const char *err);
/* gc.c: run the lifecycle rules and the byte budget now (cache_gc with the config's
 * cache_size, min_free_space and lifecycle policies), <need> bytes about to be written
 * counted as used; with <dry_run> nothing is removed. 0 with *out filled (the caller frees it
 * with cache_gc_result_free), or -1. Logs and counts what it removed. */
struct cache_gc_result;
int api_gc(struct api *api, int dry_run, int64_t need, struct cache_gc_result *out);
/* gc.c: the fills' keep callback (fill_keep_fn; <arg> is the api): a sweep first when <size>
 * more bytes would not fit; 0 when they still do not. */
int api_blob_keep(void *arg, const char *digest, int64_t size);
/* gc.c: the fill of <digest> ended (committed or not): its reserved room is released. */
void api_gc_release(struct api *api, const char *digest);
/* gc.c: start a sweep in slices (or join the one running); when <req> is not NULL it is
 * answered with the result (api_admin_gc_reply) once the sweep is done, or released if its
 * client left (<x>'s gone protocol). 0, or -1 when the plan failed (nothing answered). */
struct exchange;
int api_gc_async(struct api *api, struct evhttp_request *req, struct exchange *x);
/* admin.c: answer <req> with sweep result <r> (NULL: the sweep failed, a 500). */
void api_admin_gc_reply(struct evhttp_request *req, int dry_run, const struct cache_gc_result *r);
/* gc.c: a sweep now when the budget or the free-space floor is broken already. */
void api_gc_make_room(struct api *api);
/* gc.c: hook the keep callback and start the periodic sweep / stop it. */
int api_gc_start(struct api *api);
void api_gc_stop(struct api *api);
/* metrics.c: GET /metrics. */
void api_metrics(struct api *api, struct evhttp_request *req);
/* metrics.c: <v> escaped as a Prometheus label value (\\, \", \n) into <out>, cut to fit. */
void api_label_escape(char *out, size_t size, const char *v);
/* metrics.c: the leading integer of a ratelimit-remaining value ("100;w=21600": 100); -1 when
 * it has none. */
int64_t api_ratelimit_value(const char *v);
/* status.c: GET and HEAD / (the status page). */
void api_status(struct api *api, struct evhttp_request *req);
/* status.c: sample the chart's counters now and every 5 min on api->base (api->status);
 * api_status_stop frees that and accepts an api that never started it. */
void api_status_start(struct api *api);
void api_status_stop(struct api *api);

#endif
