/*
 * Blobs: from the store (sendfile, Range) when this repository may be served it, after a
 * confirmation HEAD when it was stored for another, else the one fill for that digest, which
 * every client of it follows (fill/).
 */
#include "config.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "ecr.h"
#include "fill.h"
#include "log.h"
#include "policy_access.h"
#include "reply.h"
#include "util.h"

/* ---- blobs ------------------------------------------------------------------------------ */

void api_blob_filled(void *arg, const char *digest, int ok, int64_t size, int64_t repo, int source)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);

    api_gc_release(api, digest);
    if (source == 1)
        api->mx.ecr_reads[1][ok ? 0 : 1]++;
    if (!ok)
        return;
    if (source == 1)
        api->mx.content_bytes_ecr += (uint64_t)size;
    else
        api->mx.content_bytes_upstream += (uint64_t)size;
    if (ok == 2)
        return; /* served, not kept: nothing stored to index or push */
    cache_blob_stored(api->cache, digest, size, repo, api->clock());
    /* Pushes waiting for this blob may go on. */
    if (api->ecr != NULL)
        ecr_content_stored(api->ecr, repo);
}

void api_blob_fallback(void *arg, const char *digest, int status, const char *err)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    (void)digest;
    (void)err;
    api->mx.ecr_reads[1][1]++;
    api_ecr_answered(api, status);
}

static void blob_start_or_join(struct mreq *m)
{
    struct api *api = m->api;
    struct fill *f = fill_find(api->fills, m->rt.rq_ref);
    struct evhttp_request *req = m->req;
    struct exchange *x = m->x;

    if (f == NULL) {
        struct upstream_target t;
        char path[1024];
        /* A full disk never fails a pull: room is made first, and a fill that still does
         * not fit when it ends is served and not kept (api_blob_keep). */
        if (!access_disk_admits(cache_free_bytes(api->cache), api->cfg->cfg_min_free_space)) {
            api_gc_make_room(api);
            if (!access_disk_admits(cache_free_bytes(api->cache), api->cfg->cfg_min_free_space))
                log_event(LOG_WARN, "disk-low", "digest", m->rt.rq_ref, NULL);
        }
        struct upstream_target et;
        char epath[1024];
        snprintf(path, sizeof(path), "/v2/%s/blobs/%s", m->upname, m->rt.rq_ref);
        api_target_init(&t, m, path, 0);
        t.ut_max_retries = 3;
        /* ECR first when the tier can be asked, the upstream when it has not got it. */
        if (api_ecr_target(m, &et, epath, sizeof(epath), "blobs", m->rt.rq_ref, 0))
            f = fill_start_from(api->fills, &et, &t, m->rt.rq_ref, m->repo);
        else
            f = fill_start(api->fills, &t, m->rt.rq_ref, m->repo);
    }
    /* The follower takes the request over. */
    m->x = NULL;
    m->magic = 0;
    free(m);
    fill_follow(f, req, x);
}

static void blob_serve_or_fill(struct mreq *m)
{
    struct api *api = m->api;

    if (cache_has(api->cache, m->rt.rq_ref)) {
        cache_blob_repair(api->cache, m->rt.rq_ref, m->now);
        if (cache_repo_has(api->cache, m->repo, m->rt.rq_ref) != 1)
            cache_repo_add(api->cache, m->repo, m->rt.rq_ref);
        cache_note_touched(api->cache, m->rt.rq_ref, m->now);
        if (m->gone || api_serve_stored(m->req, m->x, api->cache, m->rt.rq_ref,
                                        "application/octet-stream", NULL, 1) == 0) {
            mreq_free(m);
            return;
        }
    }
    if (m->gone) {
        mreq_free(m);
        return;
    }
    blob_start_or_join(m);
}

/*
 * Upstream answered the HEAD that confirms a blob belongs to this repository: from now on it
 * is known there (the one place besides a fill for this repository that marks a blob).
 */
static void blob_confirmed(struct mreq *m, struct fetch *f)
{
    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_BLOB_UNKNOWN),
                   "blob unknown to this repository upstream", f->err);
        return;
    }
    cache_repo_add(m->api->cache, m->repo, m->rt.rq_ref);
    blob_serve_or_fill(m);
}

/*
 * ECR answered the HEAD that asks whether this repository's mirror holds a blob stored here
 * for another: what ECR holds for a repository was verified and pushed for it, so it counts as
 * that repository's. Else upstream's HEAD decides, as without the tier.
 */
static void blob_confirmed_ecr(struct mreq *m, struct fetch *f)
{
    struct upstream_target t;
    char path[1024], key[1200];

    api_ecr_answered(m->api, f->resp.ur_status);
    if (f->res == UPSTREAM_OK) {
        m->api->mx.ecr_confirmations++;
        blob_confirmed(m, f);
        return;
    }
    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", m->upname, m->rt.rq_ref);
    snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
    api_target_init(&t, m, path, 1);
    if (fetch_join(m, key, &t, blob_confirmed))
        m->api->mx.confirmations++;
}

/* HEAD of a blob nobody has fetched: answer from upstream's HEAD. */
static void blob_head_answered(struct mreq *m, struct fetch *f)
{
    struct evkeyvalq *h;
    char buf[64];

    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_BLOB_UNKNOWN),
                   "blob unknown upstream", f->err);
        return;
    }
    if (!m->gone) {
        h = evhttp_request_get_output_headers(m->req);
        http_set_common_headers(m->req);
        evhttp_add_header(h, "Content-Type", "application/octet-stream");
        evhttp_add_header(h, "Docker-Content-Digest", m->rt.rq_ref);
        evhttp_add_header(h, "Accept-Ranges", "bytes");
        if (f->resp.ur_content_length >= 0) {
            snprintf(buf, sizeof(buf), "%" PRId64, f->resp.ur_content_length);
            evhttp_add_header(h, "Content-Length", buf);
        }
        evhttp_send_reply(m->req, 200, "OK", NULL);
    }
    mreq_free(m);
}

void api_blob(struct mreq *m)
{
    struct api *api = m->api;
    struct fill *f;
    struct access_facts af = {0};
    struct upstream_target t;
    char path[1024], epath[1024], key[1200];

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", m->upname, m->rt.rq_ref);
    af.af_known = cache_repo_has(api->cache, m->repo, m->rt.rq_ref) == 1;
    af.af_stored = cache_has(api->cache, m->rt.rq_ref);
    /* A fill still listed once its file is stored is committing: the file is ours too. */
    f = fill_find(api->fills, m->rt.rq_ref);
    af.af_filling = f != NULL;
    af.af_fill_ours = f != NULL && fill_repo(f) == m->repo;
    af.af_head = m->head;
    if (af.af_stored)
        api->mx.blob_hits++;
    else
        api->mx.blob_misses++;
    switch (access_blob(&af)) {
    case ACCESS_SERVE: blob_serve_or_fill(m); return;
    case ACCESS_CONFIRM:
        /* This repository's mirror in ECR first, then upstream (blob_confirmed_ecr). */
        if (api_ecr_target(m, &t, epath, sizeof(epath), "blobs", m->rt.rq_ref, 1)) {
            api_ecr_key(m, key, sizeof(key), 1, epath);
            fetch_join(m, key, &t, blob_confirmed_ecr);
            return;
        }
        snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
        api_target_init(&t, m, path, 1);
        if (fetch_join(m, key, &t, blob_confirmed))
            api->mx.confirmations++;
        return;
    case ACCESS_ASK:
        snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
        api_target_init(&t, m, path, 1);
        fetch_join(m, key, &t, blob_head_answered);
        return;
    case ACCESS_FETCH: blob_start_or_join(m); return;
    }
}
