/*
 * The write-behind push worker. Rows of the index's push queue (db_index.h) are taken a few
 * at a time, and each becomes a job that mirrors one image into its ECR repository:
 *
 *   repository    DescribeRepositories, else CreateRepository with create_repository's
 *                 settings (then PutLifecyclePolicy and SetRepositoryPolicy when given);
 *                 RepositoryAlreadyExistsException is success
 *   per manifest  HEAD by digest: there already, nothing of it is sent; else each blob (known
 *                 pushed, or a HEAD, else POST an upload and one monolithic PUT streamed from
 *                 the stored file), then PUT the manifest by digest; an index's children first
 *   the tag       HEAD by tag: pointing at this digest already, done; else PUT by tag
 *
 * Manifest PUTs (PutImage, about 10/s per account and region) are paced. Content that is not
 * stored here yet (a client still pulling the layers, platforms nobody pulled) is pushed as
 * far as it goes and the job waits for the rest with backoff; a failure anywhere retries the
 * job with backoff from the start, where the HEADs make what already landed cheap. Nothing of
 * this runs on a client's path.
 */
#include "config.h"

#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config_file.h"
#include "db_index.h"
#include "push-int.h"
#include "ecr_api.h"
#include "log.h"
#include "manifest.h"
#include "transport.h"
#include "util.h"

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push_poll_later(struct push *p, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(p->poll, &tv);
}

/* ---- the end of a job ------------------------------------------------------------------- */

static void job_free(struct pjob *j)
{
    struct push *p = j->p;

    for (struct pjob **pp = &p->jobs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    p->njobs--;
    if (j->req != NULL)
        transport_cancel(j->req);
    if (j->call != NULL)
        ecr_call_cancel(j->call);
    if (j->timer != NULL)
        event_free(j->timer);
    free(j->steps);
    free(j->body);
    j->magic = 0;
    free(j);
}

static int64_t backoff(int64_t base, int64_t attempts)
{
    int64_t s = base;

    for (int64_t i = 0; i < attempts && s < PUSH_BACKOFF_MAX_S; i++)
        s *= 2;
    return s < PUSH_BACKOFF_MAX_S ? s : PUSH_BACKOFF_MAX_S;
}

void push_job_log(const struct pjob *j, enum log_level lvl, const char *event, const char *err)
{
    char att[24];

    snprintf(att, sizeof(att), "%lld", (long long)j->row.ip_attempts);
    log_event(lvl, event, "ecr_repo", j->row.ip_ecr_repo, "digest", j->row.ip_digest, "tag",
              j->row.ip_tag, "attempts", att, "error", err != NULL ? err : "", NULL);
}

/* The job is over: done, or back in the queue for later. */
void push_job_end(struct pjob *j, const char *fail)
{
    struct push *p = j->p;
    struct ecr *e = p->e;
    struct index *ix = cache_index(e->cache);
    int64_t now = e->clock();

    if (fail != NULL) {
        e->stats.es_jobs_retried++;
        push_job_log(j, LOG_WARN, "ecr-push-retry", fail);
        index_push_retry(ix, j->row.ip_id, now + backoff(PUSH_RETRY_BASE_S, j->row.ip_attempts),
                         fail);
    } else if (j->incomplete) {
        if (now - j->row.ip_queued_at > PUSH_WAIT_GIVE_UP_S) {
            e->stats.es_jobs_abandoned++;
            push_job_log(j, LOG_WARN, "ecr-push-abandoned",
                         "part of the image was never stored here; pushed what was");
            index_push_done(ix, j->row.ip_id);
        } else {
            e->stats.es_jobs_waiting++;
            index_push_retry(ix, j->row.ip_id, now + backoff(PUSH_WAIT_BASE_S, j->row.ip_attempts),
                             PUSH_WAITING);
        }
    } else {
        e->stats.es_jobs_done++;
        push_job_log(j, LOG_INFO, "ecr-pushed", NULL);
        index_push_done(ix, j->row.ip_id);
    }
    job_free(j);
    push_poll_later(p, 0);
}

/* ---- the data plane --------------------------------------------------------------------- */

static void step_run(struct pjob *j);

void push_step_next(struct pjob *j)
{
    j->cur++;
    j->phase = 0;
    step_run(j);
}

static void count(struct pjob *j, enum ecr_push_kind k, enum ecr_push_result r)
{
    j->p->e->stats.es_pushes[k][r]++;
}

static int dp_attempt(void *arg, int attempt, struct transport_headers *h)
{
    struct pjob *j;
    struct ecr *e;

    CAST_OBJ_NOTNULL(j, arg, PJOB_MAGIC);
    (void)attempt;
    e = j->p->e;
    if (e->password == NULL)
        return -1;
    transport_headers_basic(h, "AWS", e->password);
    return 0;
}

static void dp_done(void *arg, const struct transport_outcome *o);

/* <header>: one "Name: value" line sent with the request (Content-Type, Accept), or NULL. */
static void dp_send(struct pjob *j, enum transport_method m, const char *url, const char *header,
                    int fd, int64_t len, const char *body, size_t body_len)
{
    struct transport_request rq;
    const char *headers[2] = {header, NULL};
    static const struct transport_callbacks cbs = {dp_attempt, NULL, NULL, dp_done};

    memset(&rq, 0, sizeof(rq));
    rq.tr_method = m;
    rq.tr_url = url;
    if (header != NULL)
        rq.tr_headers = headers;
    rq.tr_body_fd = -1;
    if (fd >= 0) {
        rq.tr_body_kind = TRANSPORT_BODY_FD;
        rq.tr_body_fd = fd;
        rq.tr_body_offset = 0;
        rq.tr_body_length = len;
    } else if (body != NULL) {
        rq.tr_body_kind = TRANSPORT_BODY_MEMORY;
        rq.tr_body = body;
        rq.tr_body_len = body_len;
    }
    rq.tr_check_address = 0; /* the ECR VPC endpoint has a private address */
    rq.tr_max_retries = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = PUSH_MANIFEST_TIMEOUT_BYTES;
    rq.tr_buffer_max = PUSH_MANIFEST_TIMEOUT_BYTES;
    j->req = transport_start(j->p->e->tp, &rq, &cbs, j);
}

static void url_of(const struct pjob *j, char *out, size_t size, const char *kind, const char *ref)
{
    snprintf(out, size, "%s/v2/%s/%s/%s", j->p->e->data_url, j->row.ip_ecr_repo, kind, ref);
}

/* The OCI error code in a data-plane error body, "" when none. */
static void oci_code(const char *body, size_t len, char *out, size_t size)
{
    json_t *v = body != NULL && len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *c =
        json_string_value(json_object_get(json_array_get(json_object_get(v, "errors"), 0), "code"));

    str_copy(out, size, c != NULL ? c : "");
    json_decref(v);
}

/* A failed data-plane answer: why, for the log and the queue row. */
static void dp_fail(struct pjob *j, const struct transport_outcome *o, const char *what)
{
    char why[512], code[64];
    int st = o->to_resp->ur_status;

    oci_code(o->to_body, o->to_body_len, code, sizeof(code));
    if (st == 401 || st == 403)
        ecr_unauthorized(j->p->e);
    if (st == 404 && strcmp(code, "NAME_UNKNOWN") == 0) {
        /* Deleted under us: made again, and nothing of the old one counts as pushed. */
        ecr_known_drop(j->p->e, j->row.ip_ecr_repo);
        index_ecr_blob_forget(cache_index(j->p->e->cache), j->row.ip_ecr_repo, NULL);
    } else if ((st == 400 || st == 404) && j->cur < j->nsteps &&
               (j->steps[j->cur].kind == ST_MANIFEST_PUT || j->steps[j->cur].kind == ST_TAG_PUT)) {
        /* MANIFEST_BLOB_UNKNOWN and the like: ECR lost blobs we recorded as there (a lifecycle
         * policy expired them); the next attempt asks with HEADs again. */
        index_ecr_blob_forget(cache_index(j->p->e->cache), j->row.ip_ecr_repo, NULL);
    }
    if (o->to_res == UPSTREAM_HTTP)
        snprintf(why, sizeof(why), "%s: HTTP %d %s", what, st, code);
    else
        snprintf(why, sizeof(why), "%s: %s", what, o->to_err);
    push_job_end(j, why);
}

static void paced_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pjob *j;

    CAST_OBJ_NOTNULL(j, arg, PJOB_MAGIC);
    (void)fd;
    (void)what;
    step_run(j);
}

/* 1 when a paced PUT may go now (the slot is taken), else 0 with the job's timer set. */
static int pace(struct pjob *j)
{
    struct push *p = j->p;
    int64_t now = mono_ms();

    if (j->phase == 1)
        return 1; /* woke for its slot */
    if (now < p->next_put_ms) {
        int64_t wait = p->next_put_ms - now;
        struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
        p->next_put_ms += PUSH_PUT_INTERVAL_MS;
        j->phase = 1;
        evtimer_add(j->timer, &tv);
        return 0;
    }
    p->next_put_ms = now + PUSH_PUT_INTERVAL_MS;
    return 1;
}

/* Location of an upload (absolute, or a path on the data plane) plus ?digest= into j. */
static int upload_target(struct pjob *j, const char *loc, const char *digest)
{
    char base[600];
    const char *host_end;

    if (loc[0] == '\0')
        return -1;
    if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0) {
        /* The Basic token goes with the PUT: only to the data plane's own scheme and host. */
        size_t n;
        str_copy(base, sizeof(base), j->p->e->data_url);
        host_end = strchr(base + (strncmp(base, "https://", 8) == 0 ? 8 : 7), '/');
        n = host_end != NULL ? (size_t)(host_end - base) : strlen(base);
        if (strncmp(loc, base, n) != 0 || (loc[n] != '/' && loc[n] != '\0'))
            return -1;
        snprintf(j->upload_url, sizeof(j->upload_url), "%s", loc);
    } else {
        /* scheme://host[:port] of the data plane */
        str_copy(base, sizeof(base), j->p->e->data_url);
        host_end = strchr(base + (strncmp(base, "https://", 8) == 0 ? 8 : 7), '/');
        if (host_end != NULL)
            base[host_end - base] = '\0';
        snprintf(j->upload_url, sizeof(j->upload_url), "%s%s%s", base, loc[0] == '/' ? "" : "/",
                 loc);
    }
    {
        size_t n = strlen(j->upload_url);
        const char *colon = strchr(digest, ':');
        if (colon == NULL)
            return -1;
        snprintf(j->upload_url + n, sizeof(j->upload_url) - n, "%sdigest=%.*s%%3A%s",
                 strchr(j->upload_url, '?') != NULL ? "&" : "?", (int)(colon - digest), digest,
                 colon + 1);
    }
    return 0;
}

static void dp_done(void *arg, const struct transport_outcome *o)
{
    struct pjob *j;
    struct step *s;
    struct ecr *e;
    int st = o->to_resp->ur_status;

    CAST_OBJ_NOTNULL(j, arg, PJOB_MAGIC);
    j->req = NULL;
    e = j->p->e;
    s = &j->steps[j->cur];
    switch (s->kind) {
    case ST_MANIFEST_CHECK:
        if (st == 200) {
            count(j, ECR_KIND_MANIFEST, ECR_RESULT_PRESENT);
            j->cur = s->skip_to;
            j->phase = 0;
            step_run(j);
        } else if (st == 404) {
            push_step_next(j);
        } else {
            dp_fail(j, o, "manifest HEAD");
        }
        return;
    case ST_BLOB:
        if (j->phase == 0) { /* HEAD */
            if (st == 200 || st == 307) {
                count(j, ECR_KIND_BLOB, ECR_RESULT_PRESENT);
                index_ecr_blob_add(cache_index(e->cache), j->row.ip_ecr_repo, s->digest);
                push_step_next(j);
            } else if (st == 404) {
                j->phase = 1;
                step_run(j);
            } else {
                dp_fail(j, o, "blob HEAD");
            }
        } else if (j->phase == 1) { /* POST uploads/ */
            if (st == 202 && upload_target(j, o->to_location, s->digest) == 0) {
                j->phase = 2;
                step_run(j);
            } else {
                dp_fail(j, o, "upload start");
            }
        } else { /* the monolithic PUT */
            if (st == 201 || st == 200 || st == 204) {
                int64_t size = 0;
                count(j, ECR_KIND_BLOB, ECR_RESULT_PUSHED);
                if (index_blob_get(cache_index(e->cache), s->digest, &size) == 1)
                    e->stats.es_bytes_pushed += (uint64_t)size;
                index_ecr_blob_add(cache_index(e->cache), j->row.ip_ecr_repo, s->digest);
                push_step_next(j);
            } else {
                count(j, ECR_KIND_BLOB, ECR_RESULT_FAILED);
                dp_fail(j, o, "blob upload");
            }
        }
        return;
    case ST_MANIFEST_PUT:
    case ST_TAG_PUT: {
        enum ecr_push_kind k = s->kind == ST_TAG_PUT ? ECR_KIND_TAG : ECR_KIND_MANIFEST;
        free(j->body);
        j->body = NULL;
        if (st == 201 || st == 200) {
            count(j, k, ECR_RESULT_PUSHED);
            push_step_next(j);
            return;
        }
        if (k == ECR_KIND_TAG && st == 400) {
            char code[64];
            oci_code(o->to_body, o->to_body_len, code, sizeof(code));
            if (strcmp(code, "TAG_INVALID") == 0) {
                /* An immutable tag holding another digest: not retried. */
                count(j, k, ECR_RESULT_REFUSED);
                push_job_log(j, LOG_WARN, "ecr-tag-refused", code);
                push_step_next(j);
                return;
            }
        }
        count(j, k, ECR_RESULT_FAILED);
        dp_fail(j, o, k == ECR_KIND_TAG ? "tag PUT" : "manifest PUT");
        return;
    }
    case ST_TAG_CHECK:
        if (st == 200 && strcmp(o->to_resp->ur_digest, s->digest) == 0) {
            count(j, ECR_KIND_TAG, ECR_RESULT_PRESENT);
            j->cur = s->skip_to;
            j->phase = 0;
            step_run(j);
        } else if (st == 200 || st == 404) {
            push_step_next(j);
        } else {
            dp_fail(j, o, "tag HEAD");
        }
        return;
    case ST_REPO: break;
    }
    push_job_end(j, "unexpected data-plane answer");
}

/* ---- running the steps ------------------------------------------------------------------ */

static void step_run(struct pjob *j)
{
    struct ecr *e = j->p->e;
    struct step *s;
    char url[2048];

    if (j->cur >= j->nsteps) {
        push_job_end(j, NULL);
        return;
    }
    if (ecr_origin(e) == NULL) {
        push_job_end(j, "no valid ECR token is held");
        return;
    }
    s = &j->steps[j->cur];
    switch (s->kind) {
    case ST_REPO: push_repo_step(j); return;
    case ST_MANIFEST_CHECK:
        url_of(j, url, sizeof(url), "manifests", s->digest);
        /* Every manifest type, or a registry answers 404 for OCI ones (distribution) or
         * converts to schema 1 (ECR). */
        dp_send(j, TRANSPORT_HEAD, url, j->p->accept, -1, 0, NULL, 0);
        return;
    case ST_BLOB:
        if (j->phase == 0) {
            if (index_ecr_blob_has(cache_index(e->cache), j->row.ip_ecr_repo, s->digest) == 1) {
                count(j, ECR_KIND_BLOB, ECR_RESULT_PRESENT);
                push_step_next(j);
                return;
            }
            url_of(j, url, sizeof(url), "blobs", s->digest);
            dp_send(j, TRANSPORT_HEAD, url, NULL, -1, 0, NULL, 0);
        } else if (j->phase == 1) {
            snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/", e->data_url, j->row.ip_ecr_repo);
            dp_send(j, TRANSPORT_POST, url, NULL, -1, 0, NULL, 0);
        } else {
            int64_t size = 0;
            int fd = cache_open_blob(e->cache, s->digest, &size);
            if (fd < 0) {
                /* Gone since the plan (evicted): the image waits for it again. */
                j->incomplete = 1;
                push_job_end(j, NULL);
                return;
            }
            dp_send(j, TRANSPORT_PUT, j->upload_url, "Content-Type: application/octet-stream", fd,
                    size, NULL, 0);
            close(fd); /* the transport holds a dup */
        }
        return;
    case ST_MANIFEST_PUT:
    case ST_TAG_PUT:
        if (!pace(j))
            return;
        free(j->body);
        j->body = cache_manifest_copy(e->cache, s->digest, &j->body_len);
        if (j->body == NULL) {
            j->incomplete = 1;
            push_job_end(j, NULL);
            return;
        }
        url_of(j, url, sizeof(url), "manifests", s->kind == ST_TAG_PUT ? j->row.ip_tag : s->digest);
        {
            char ct[INDEX_MEDIA_TYPE_MAX + 16];
            snprintf(ct, sizeof(ct), "Content-Type: %s", s->media_type);
            dp_send(j, TRANSPORT_PUT, url, ct, -1, 0, j->body, j->body_len);
        }
        return;
    case ST_TAG_CHECK:
        url_of(j, url, sizeof(url), "manifests", j->row.ip_tag);
        dp_send(j, TRANSPORT_HEAD, url, j->p->accept, -1, 0, NULL, 0);
        return;
    }
}

/* ---- the queue -------------------------------------------------------------------------- */

static void job_begin(struct push *p, const struct index_push *row)
{
    struct pjob *j = xcalloc(1, sizeof(*j));

    j->magic = PJOB_MAGIC;
    j->p = p;
    j->row = *row;
    j->timer = evtimer_new(p->e->base, paced_cb, j);
    j->next = p->jobs;
    p->jobs = j;
    p->njobs++;
    if (push_plan(j) == -1) {
        push_job_log(j, LOG_WARN, "ecr-push-dropped", "the manifest is no longer stored here");
        index_push_done(cache_index(p->e->cache), j->row.ip_id);
        job_free(j);
        return;
    }
    step_run(j);
}

/* 1 when a job for ECR repository <ecr_repo> is running. */
static int repo_busy(const struct push *p, const char *ecr_repo)
{
    for (const struct pjob *j = p->jobs; j != NULL; j = j->next)
        if (strcmp(j->row.ip_ecr_repo, ecr_repo) == 0)
            return 1;
    return 0;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct push *p = arg;
    struct ecr *e;
    struct index_push rows[PUSH_CONCURRENCY];
    size_t n = 0, limit;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(p, PUSH_MAGIC);
    e = p->e;
    push_poll_later(p, PUSH_POLL_S * 1000);
    /* Without a token (ECR down, no credentials) the queue waits; it is never consumed. */
    if (ecr_origin(e) == NULL || e->api == NULL)
        return;
    /* Held rows first, in the order they were taken. job_begin may end a job at once, and
     * that job's end polls again: a copy of the row, taken off the list before it starts. */
    for (size_t i = 0; i < p->nheld && p->njobs < PUSH_CONCURRENCY;) {
        struct index_push row;
        if (repo_busy(p, p->held[i].ip_ecr_repo)) {
            i++;
            continue;
        }
        row = p->held[i];
        memmove(&p->held[i], &p->held[i + 1], (p->nheld - i - 1) * sizeof(row));
        p->nheld--;
        job_begin(p, &row);
    }
    if (p->njobs >= PUSH_CONCURRENCY)
        return;
    limit = PUSH_CONCURRENCY - (size_t)p->njobs;
    if (limit > PUSH_HELD_MAX - p->nheld)
        limit = PUSH_HELD_MAX - p->nheld; /* every row taken may have to be held */
    if (limit == 0)
        return;
    if (index_push_take(cache_index(e->cache), e->clock(), limit, rows, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (repo_busy(p, rows[i].ip_ecr_repo))
            p->held[p->nheld++] = rows[i];
        else
            job_begin(p, &rows[i]);
    }
}

struct push *push_create(struct ecr *e)
{
    struct push *p = xcalloc(1, sizeof(*p));

    p->magic = PUSH_MAGIC;
    p->e = e;
    p->poll = evtimer_new(e->base, poll_cb, p);
    p->accept = xasprintf("Accept: %s", manifest_accept_all);
    return p;
}

void push_start(struct push *p)
{
    CHECK_OBJ_NOTNULL(p, PUSH_MAGIC);
    p->started = 1;
    push_poll_later(p, 0);
}

void push_wake(struct push *p, int64_t repo)
{
    if (p == NULL || !p->started)
        return;
    CHECK_OBJ_NOTNULL(p, PUSH_MAGIC);
    if (index_push_wake(cache_index(p->e->cache), repo, p->e->clock(), PUSH_WAITING) > 0)
        push_poll_later(p, 0);
}

void push_poke(struct push *p)
{
    if (p == NULL || !p->started)
        return;
    CHECK_OBJ_NOTNULL(p, PUSH_MAGIC);
    push_poll_later(p, 0);
}

void push_destroy(struct push *p)
{
    if (p == NULL)
        return;
    CHECK_OBJ_NOTNULL(p, PUSH_MAGIC);
    while (p->jobs != NULL)
        job_free(p->jobs);
    if (p->poll != NULL)
        event_free(p->poll);
    free(p->accept);
    p->magic = 0;
    free(p);
}

void ecr_queue(struct ecr *e, const struct config_rule *rule, const char *name, int64_t repo,
               const char *digest, const char *tag)
{
    char ecr_repo[INDEX_ECR_REPO_MAX];

    CHECK_OBJ_NOTNULL(e, ECR_MAGIC);
    if (!e->ec->ecr_push || repo <= 0 || !ecr_repo_for(e, rule, name, ecr_repo, sizeof(ecr_repo)))
        return;
    if (index_push_enqueue(cache_index(e->cache), ecr_repo, repo, digest, tag != NULL ? tag : "",
                           e->clock()) == 1)
        push_poke(e->push);
}
