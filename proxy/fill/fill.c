/*
 * Fills and their followers.
 *
 * A fill owns one upstream GET, one temp file and one running hash. Upstream bytes are
 * appended to the file (pwrite at <written>), then every follower is pumped; the hash is
 * computed on a worker thread that reads the new bytes back from the page cache, so the
 * loop's core only receives, writes and sends. When upstream ends, the fill is settled
 * once the hasher has caught up. A follower is one client response: it keeps its own offset and sends the next
 * slice [offset, min(written, end)) as a sendfile file segment, and asks for nothing more
 * until evhttp says that slice was flushed to the socket. A slow client therefore holds no
 * memory and never slows the fill or the other followers down; a client that leaves only
 * removes its follower, and the fill goes on for the cache.
 *
 * A follower never sends the last byte of its response before the fill is verified.
 * When upstream is done the digest and length are checked. A match is fsynced and renamed
 * into the store and followers finish from the same (renamed) inode. A mismatch, a
 * truncation or an upstream error discards the temp file: followers that have not sent
 * headers yet get an OCI error, the others get their connection closed short of
 * Content-Length — a broken transfer, never a wrong one that looks complete.
 */
#include "config.h"

#include "fill.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exchange.h"
#include "log.h"
#include "range.h"
#include "reply.h"
#include "server.h"
#include "store.h"
#include "registry.h"
#include "util.h"

#define FILLS_MAGIC 0x46494c53u    /* "FILS" */
#define FILL_MAGIC 0x46494c4cu     /* "FILL" */
#define FOLLOWER_MAGIC 0x464f4c4cu /* "FOLL" */
#define FOLLOW_SLICE (8 * 1024 * 1024)

enum fill_state { FILL_RUNNING = 0, FILL_DONE, FILL_FAILED };

struct follower;

/*
 * A verified fill waiting for its fsync and rename on the commit thread; or (fill NULL) a
 * small verified object held in memory, a manifest, to be written, fsynced and renamed.
 */
struct commit_job {
    struct commit_job *next;
    struct fill *fill;
    int fd;                     /* a dup of the fill's fd, closed by the worker */
    char tmp[STORE_PATH_MAX];
    char digest[144];
    char *data;                 /* small objects: a copy of the bytes, owned by the job */
    size_t len;
    fills_commit_fn done;       /* small objects: called on the loop with the result */
    void *done_arg;
    int ok;
    char *err;
};

struct fills {
    unsigned magic;
    struct store *st;
    struct upstream *up;
    fill_done_fn done;
    void *done_arg;
    struct fill *list;
    struct fill_stats stats;

    /* fsync + rename happen on one worker thread so the event loop never waits on the disk;
     * finished jobs come back through a pipe the loop watches. */
    pthread_t worker;
    int worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct commit_job *queue, *queue_tail;
    int stopping;
    int pipe_rd, pipe_wr;
    int small_pending;          /* small-object jobs whose result the loop has not taken */
    struct event *pipe_ev;

    /* Hashing happens on a second worker thread, reading back what the loop wrote to the
     * temp file (from the page cache), so the loop only receives, writes and sends. A fill
     * whose upstream has ended is settled once the hasher has caught up: it comes back
     * through a second pipe. Guarded by hmu: the queue and every fill's hash_* fields. */
    pthread_t hasher;
    int hasher_started;
    pthread_mutex_t hmu;
    pthread_cond_t hcv;
    struct fill *hqueue, *hqueue_tail;
    int hstopping;
    int hpipe_rd, hpipe_wr;
    struct event *hpipe_ev;
};

struct fill {
    unsigned magic;
    struct fills *fs;
    struct fill *next;
    int listed;                 /* still findable by digest */
    int busy;                   /* walking the followers: do not free yet */
    int committing;             /* verified, its commit job is on the worker thread */
    char digest[144];
    int64_t repo;
    char tmp[STORE_PATH_MAX];
    int fd;
    EVP_MD_CTX *md;             /* the hasher's while it runs; the loop's once it settled */
    int64_t written;
    struct fill *hnext;         /* in the hasher's queue */
    int64_t hash_target;        /* hash up to here (the loop's written) */
    int64_t hashed;             /* hashed so far */
    int hash_queued, hash_busy; /* in the queue / being hashed: the hasher holds the fill */
    int hash_settle;            /* upstream ended: tell the loop once the hasher is idle */
    int hash_cancel;            /* upstream failed: the hash is not needed */
    enum upstream_result up_res; /* how upstream ended, kept until the fill is settled */
    int up_status;
    int64_t length;             /* upstream Content-Length, -1 until known or when absent */
    int headers;                /* upstream's 2xx headers arrived */
    char content_type[256];
    enum fill_state state;
    struct upstream_xfer *xfer;
    struct follower *followers;
    enum oci_error err;         /* FILL_FAILED before headers: what followers are told */
    char errmsg[256];
};

struct follower {
    unsigned magic;
    struct fill *fill;
    struct follower *next;
    struct evhttp_request *req;
    struct exchange *x;         /* NULL once the client is gone or the follower is done */
    int fd;                     /* dup of the fill's fd */
    int head;
    int started, writing, gone, closing;
    int64_t off, end;           /* bytes [off, end) still to send; end -1 until known */
    int chunked;                /* no length known: chunked transfer encoding */
};

static void follower_pump(struct follower *fw);

/* ---- fills ------------------------------------------------------------------------------ */

static void commit_done(struct fill *f, int ok, const char *err);

static void *commit_worker(void *arg)
{
    struct fills *fs = arg;
    struct commit_job *job;

    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);

    for (;;) {
        pthread_mutex_lock(&fs->mu);
        while (fs->queue == NULL && !fs->stopping)
            pthread_cond_wait(&fs->cv, &fs->mu);
        job = fs->queue;
        if (job != NULL) {
            fs->queue = job->next;
            if (fs->queue == NULL)
                fs->queue_tail = NULL;
        }
        pthread_mutex_unlock(&fs->mu);
        if (job == NULL)
            return NULL; /* stopping and nothing left */
        if (job->fill == NULL) {
            job->ok = store_has(fs->st, job->digest) ||
                      store_put_small(fs->st, job->digest, job->data, job->len, &job->err) == 0;
        } else {
            job->ok = store_commit(fs->st, job->fd, job->tmp, job->digest, &job->err) == 0;
            close(job->fd);
        }
        while (write(fs->pipe_wr, &job, sizeof(job)) == -1 && errno == EINTR)
            ;
    }
}

static void commit_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct commit_job *job;

    while (read(fd, &job, sizeof(job)) == (ssize_t)sizeof(job)) {
        if (job->fill != NULL) {
            commit_done(job->fill, job->ok, job->err);
        } else {
            struct fills *fs = arg;
            CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);
            fs->small_pending--;
            if (job->done != NULL)
                job->done(job->done_arg, job->digest, job->ok, job->err);
            free(job->data);
        }
        free(job->err);
        free(job);
    }
}

#define HASH_CHUNK (1024 * 1024)

/* Under hmu: put <f> on the hasher's queue unless it is there already or being hashed. */
static void hash_enqueue_locked(struct fills *fs, struct fill *f)
{
    if (f->hash_queued || f->hash_busy)
        return;
    f->hash_queued = 1;
    f->hnext = NULL;
    if (fs->hqueue_tail != NULL)
        fs->hqueue_tail->hnext = f;
    else
        fs->hqueue = f;
    fs->hqueue_tail = f;
    pthread_cond_signal(&fs->hcv);
}

static void *hash_worker(void *arg)
{
    struct fills *fs = arg;
    unsigned char *buf = xmalloc(HASH_CHUNK);

    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);

    pthread_mutex_lock(&fs->hmu);
    for (;;) {
        struct fill *f;
        int64_t off, target;
        int cancel, failed = 0;

        while (fs->hqueue == NULL && !fs->hstopping)
            pthread_cond_wait(&fs->hcv, &fs->hmu);
        if (fs->hstopping)
            break;
        f = fs->hqueue;
        fs->hqueue = f->hnext;
        if (fs->hqueue == NULL)
            fs->hqueue_tail = NULL;
        f->hash_queued = 0;
        f->hash_busy = 1;
        off = f->hashed;
        target = f->hash_target;
        cancel = f->hash_cancel;
        pthread_mutex_unlock(&fs->hmu);
        while (!cancel && !failed && off < target) {
            size_t want = target - off > HASH_CHUNK ? HASH_CHUNK : (size_t)(target - off);
            ssize_t got = pread(f->fd, buf, want, (off_t)off);
            if (got == -1 && errno == EINTR)
                continue;
            if (got <= 0) {
                failed = 1; /* the file lost bytes: the digest check will fail */
                break;
            }
            EVP_DigestUpdate(f->md, buf, (size_t)got);
            off += got;
        }
        pthread_mutex_lock(&fs->hmu);
        f->hashed = failed ? -1 : off;
        f->hash_busy = 0;
        if (!failed && !f->hash_cancel && f->hash_target > f->hashed) {
            hash_enqueue_locked(fs, f);
        } else if (f->hash_settle) {
            f->hash_settle = 0;
            while (write(fs->hpipe_wr, &f, sizeof(f)) == -1 && errno == EINTR)
                ;
        }
    }
    pthread_mutex_unlock(&fs->hmu);
    free(buf);
    return NULL;
}

static void fill_settle(struct fill *f);

static void hash_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fill *f;

    (void)what;
    (void)arg;
    while (read(fd, &f, sizeof(f)) == (ssize_t)sizeof(f))
        fill_settle(f);
}

/* A pipe from a worker thread to the loop: <cb> runs when its read end is readable. */
static int pipe_watch(struct event_base *base, int *rd, int *wr, struct event **ev,
                      event_callback_fn cb, void *arg)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) == -1)
        return -1;
    *rd = p[0];
    *wr = p[1];
    evutil_make_socket_nonblocking(*rd);
    *ev = event_new(base, *rd, EV_READ | EV_PERSIST, cb, arg);
    event_add(*ev, NULL);
    return 0;
}

static void pipe_unwatch(int rd, int wr, struct event *ev)
{
    if (ev != NULL)
        event_free(ev);
    if (rd != -1)
        close(rd);
    if (wr != -1)
        close(wr);
}

struct fills *fills_create(struct event_base *base, struct store *st, struct upstream *up,
                           fill_done_fn done, void *arg)
{
    struct fills *fs = xcalloc(1, sizeof(*fs));

    fs->magic = FILLS_MAGIC;
    fs->st = st;
    fs->up = up;
    fs->done = done;
    fs->done_arg = arg;
    fs->pipe_rd = fs->pipe_wr = -1;
    fs->hpipe_rd = fs->hpipe_wr = -1;
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->cv, NULL);
    pthread_mutex_init(&fs->hmu, NULL);
    pthread_cond_init(&fs->hcv, NULL);
    if (pipe_watch(base, &fs->hpipe_rd, &fs->hpipe_wr, &fs->hpipe_ev, hash_pipe_cb, fs) == -1 ||
        pthread_create(&fs->hasher, NULL, hash_worker, fs) != 0)
        goto fail;
    fs->hasher_started = 1;
    if (pipe_watch(base, &fs->pipe_rd, &fs->pipe_wr, &fs->pipe_ev, commit_pipe_cb, fs) == -1 ||
        pthread_create(&fs->worker, NULL, commit_worker, fs) != 0)
        goto fail;
    fs->worker_started = 1;
    return fs;
fail:
    fills_destroy(fs);
    return NULL;
}

/* Put <job> at the tail of the commit thread's queue. */
static void commit_queue(struct fills *fs, struct commit_job *job)
{
    pthread_mutex_lock(&fs->mu);
    if (fs->queue_tail != NULL)
        fs->queue_tail->next = job;
    else
        fs->queue = job;
    fs->queue_tail = job;
    pthread_cond_signal(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
}

void fills_commit_small(struct fills *fs, const char *digest, const char *data, size_t len,
                        fills_commit_fn done, void *arg)
{
    struct commit_job *job = xcalloc(1, sizeof(*job));

    job->fd = -1;
    str_copy(job->digest, sizeof(job->digest), digest);
    job->data = xmalloc(len > 0 ? len : 1);
    memcpy(job->data, data, len);
    job->len = len;
    job->done = done;
    job->done_arg = arg;
    fs->small_pending++;
    commit_queue(fs, job);
}

/* Hand verified <f> to the commit thread. */
static void commit_enqueue(struct fill *f)
{
    struct fills *fs = f->fs;
    struct commit_job *job = xcalloc(1, sizeof(*job));

    job->fill = f;
    job->fd = dup(f->fd);
    str_copy(job->tmp, sizeof(job->tmp), f->tmp);
    str_copy(job->digest, sizeof(job->digest), f->digest);
    if (job->fd == -1) {
        commit_done(f, 0, "cannot dup the temp file");
        free(job);
        return;
    }
    commit_queue(fs, job);
}

struct fill *fill_find(struct fills *fs, const char *digest)
{
    for (struct fill *f = fs->list; f != NULL; f = f->next)
        if (f->listed && strcmp(f->digest, digest) == 0)
            return f;
    return NULL;
}

int64_t fill_repo(const struct fill *f)
{
    return f->repo;
}

void fills_get_stats(const struct fills *fs, struct fill_stats *out)
{
    *out = fs->stats;
}

static void fill_unlist(struct fill *f)
{
    struct fill **pp;

    if (!f->listed)
        return;
    for (pp = &f->fs->list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    f->listed = 0;
}

/* Free <f> once upstream is done and no follower is left. */
static void fill_maybe_free(struct fill *f)
{
    if (f->state == FILL_RUNNING || f->followers != NULL || f->busy || f->committing)
        return;
    fill_unlist(f);
    if (f->fd != -1)
        close(f->fd);
    EVP_MD_CTX_free(f->md);
    f->magic = 0;
    free(f);
}

/* ---- followers -------------------------------------------------------------------------- */

static void follower_detach(struct follower *fw)
{
    struct fill *f = fw->fill;
    struct follower **pp;

    for (pp = &f->followers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == fw) {
            *pp = fw->next;
            break;
        }
    }
    if (fw->fd != -1)
        close(fw->fd);
    fw->magic = 0;
    free(fw);
    fill_maybe_free(f);
}

/*
 * Forget the exchange before answering: evhttp may complete (and the server free the exchange)
 * inside the reply call itself.
 */
static void follower_unhook(struct follower *fw)
{
    if (fw->x != NULL)
        exchange_on_gone(fw->x, NULL, NULL);
    fw->x = NULL;
}

static void follower_gone_cb(void *arg)
{
    struct follower *fw = arg;

    CHECK_OBJ_NOTNULL(fw, FOLLOWER_MAGIC);
    if (fw->closing)
        return;
    fw->gone = 1;
    fw->x = NULL;
    /* The request has no connection now: end it (this frees it) unless a slice is still
     * queued, whose flush callback will never come either. */
    if (evhttp_request_get_connection(fw->req) == NULL)
        evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

/* Cut the client's connection short: the transfer ends before its Content-Length. */
static void follower_abort(struct follower *fw)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(fw->req);

    fw->closing = 1;
    follower_unhook(fw);
    if (evcon != NULL)
        evhttp_connection_free(evcon); /* frees the request too */
    else
        evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

static void set_blob_headers(struct evhttp_request *req, const struct fill *f)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char etag[160];

    evhttp_add_header(h, "Docker-Distribution-API-Version", "registry/2.0");
    evhttp_add_header(h, "Content-Type",
                      f->content_type[0] != '\0' ? f->content_type : "application/octet-stream");
    evhttp_add_header(h, "Docker-Content-Digest", f->digest);
    snprintf(etag, sizeof(etag), "\"%s\"", f->digest);
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Accept-Ranges", "bytes");
}

/* Upstream headers are known: send the client's status line and headers. */
static void follower_start(struct follower *fw)
{
    struct fill *f = fw->fill;
    struct evkeyvalq *h = evhttp_request_get_output_headers(fw->req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(fw->req);
    const char *range = http_range_header(evhttp_find_header(in, "Range"),
                                          evhttp_find_header(in, "If-Range"), f->digest);
    char buf[96];
    int64_t start = 0, end = f->length;
    int status = 200;

    /* An empty body is complete with its headers: they wait for the digest check. */
    if (!fw->head && f->length == 0 && f->state != FILL_DONE)
        return;
    set_blob_headers(fw->req, f);
    if (f->length >= 0 && range != NULL) {
        int r = http_parse_range(range, f->length, &start, &end);
        if (r == -1) {
            snprintf(buf, sizeof(buf), "bytes */%" PRId64, f->length);
            evhttp_add_header(h, "Content-Range", buf);
            fw->started = 1;
            follower_unhook(fw);
            http_send_error(fw->req, OCI_ERR_RANGE_INVALID, "range not satisfiable", range);
            fw->req = NULL;
            fw->closing = 1;
            follower_detach(fw);
            return;
        }
        if (r == 1) {
            status = 206;
            snprintf(buf, sizeof(buf), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, start, end - 1,
                     f->length);
            evhttp_add_header(h, "Content-Range", buf);
        }
    }
    fw->off = start;
    fw->end = end;
    fw->started = 1;
    if (f->length >= 0) {
        snprintf(buf, sizeof(buf), "%" PRId64, end - start);
        evhttp_add_header(h, "Content-Length", buf);
    } else {
        fw->chunked = 1;
    }
    if (fw->head) {
        /* HEAD: headers only, the length is the one a GET would send. */
        struct evbuffer *empty = evbuffer_new();
        fw->closing = 1;
        follower_unhook(fw);
        evhttp_send_reply(fw->req, status, status == 206 ? "Partial Content" : "OK", empty);
        evbuffer_free(empty);
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    evhttp_send_reply_start(fw->req, status, status == 206 ? "Partial Content" : "OK");
    follower_pump(fw);
}

static void follower_flushed_cb(struct evhttp_connection *evcon, void *arg)
{
    struct follower *fw = arg;

    CHECK_OBJ_NOTNULL(fw, FOLLOWER_MAGIC);
    fw->writing = 0;
    follower_pump(fw);
}

static void follower_finish(struct follower *fw)
{
    fw->closing = 1;
    follower_unhook(fw);
    evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

/* Send what is on disk and not yet sent; end the response when everything went. */
static void follower_pump(struct follower *fw)
{
    struct fill *f = fw->fill;
    int64_t avail, want, n;
    struct evbuffer *buf;
    struct evbuffer_file_segment *seg;

    if (fw->writing || fw->gone || fw->closing || !fw->started)
        return;
    if (f->state == FILL_FAILED) {
        follower_abort(fw);
        return;
    }
    /* Where this response ends: its range, or (no length known) when the fill is done. */
    want = fw->end >= 0 ? fw->end : (f->state == FILL_DONE ? f->written : INT64_MAX);
    if (fw->off >= want) {
        /* Even an empty body ends only once the digest check has passed. */
        if (f->state == FILL_DONE)
            follower_finish(fw);
        return;
    }
    avail = f->written < want ? f->written : want;
    /* The last byte waits for the digest check: a body that fails it must never look complete. */
    if (f->state != FILL_DONE && fw->end >= 0 && avail >= fw->end)
        avail = fw->end - 1;
    if (fw->off >= avail)
        return; /* wait for more bytes */
    n = avail - fw->off;
    if (n > FOLLOW_SLICE)
        n = FOLLOW_SLICE;
    seg = evbuffer_file_segment_new(fw->fd, fw->off, n, 0);
    if (seg == NULL) {
        follower_abort(fw);
        return;
    }
    buf = evbuffer_new();
    /* Without this flag libevent maps the segment into memory instead of sendfile'ing it. */
    evbuffer_set_flags(buf, EVBUFFER_FLAG_DRAINS_TO_FD);
    evbuffer_add_file_segment(buf, seg, 0, n);
    evbuffer_file_segment_free(seg);
    fw->off += n;
    f->fs->stats.fs_bytes_sent += (uint64_t)n;
    fw->writing = 1;
    evhttp_send_reply_chunk_with_cb(fw->req, buf, follower_flushed_cb, fw);
    evbuffer_free(buf);
}

static void pump_all(struct fill *f)
{
    struct follower *fw = f->followers, *next;

    f->busy++;
    for (; fw != NULL; fw = next) {
        next = fw->next;
        if (!fw->started)
            follower_start(fw);
        else
            follower_pump(fw);
    }
    f->busy--;
    fill_maybe_free(f);
}

void fill_follow(struct fill *f, struct evhttp_request *req, struct exchange *x)
{
    struct follower *fw = xcalloc(1, sizeof(*fw));

    fw->magic = FOLLOWER_MAGIC;
    fw->fill = f;
    fw->req = req;
    fw->x = x;
    fw->fd = dup(f->fd);
    fw->end = -1;
    fw->head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    fw->next = f->followers;
    f->followers = fw;
    f->fs->stats.fs_joined++;
    exchange_on_gone(x, follower_gone_cb, fw);
    if (fw->fd == -1) {
        fw->closing = 1;
        follower_unhook(fw);
        http_send_error(req, OCI_ERR_UNAVAILABLE, "cannot follow the fill", strerror(errno));
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    if (f->state == FILL_FAILED) {
        fw->closing = 1;
        follower_unhook(fw);
        http_send_error(req, f->err, f->errmsg, NULL);
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    if (f->headers)
        follower_start(fw);
}

/* ---- the upstream side ------------------------------------------------------------------ */

static int fill_on_headers(void *arg, const struct upstream_response *r)
{
    struct fill *f = arg;

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    f->headers = 1;
    f->length = r->ur_content_length;
    str_copy(f->content_type, sizeof(f->content_type), "application/octet-stream");
    pump_all(f);
    return 0;
}

static int fill_on_data(void *arg, const char *data, size_t len)
{
    struct fill *f = arg;
    size_t off = 0;

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    while (off < len) {
        ssize_t w = pwrite(f->fd, data + off, len - off, (off_t)(f->written + (int64_t)off));
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1) {
            snprintf(f->errmsg, sizeof(f->errmsg), "write to the temp file: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    f->written += (int64_t)len;
    pthread_mutex_lock(&f->fs->hmu);
    f->hash_target = f->written;
    hash_enqueue_locked(f->fs, f);
    pthread_mutex_unlock(&f->fs->hmu);
    pump_all(f);
    return 0;
}

static enum oci_error error_for(enum upstream_result res, int status)
{
    if (res == UPSTREAM_HTTP) {
        switch (status) {
        case 404: return OCI_ERR_BLOB_UNKNOWN;
        case 401: return OCI_ERR_UNAUTHORIZED;
        case 403: return OCI_ERR_DENIED;
        case 429: return OCI_ERR_TOOMANYREQUESTS;
        default: return OCI_ERR_UPSTREAM;
        }
    }
    if (res == UPSTREAM_AUTH_FAILED)
        return OCI_ERR_UNAUTHORIZED;
    return OCI_ERR_UPSTREAM;
}

/* 1 when the hash of what was written equals the digest. */
static int fill_verify(struct fill *f)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    static const char digits[] = "0123456789abcdef";
    const char *want = strchr(f->digest, ':') + 1;

    EVP_DigestFinal_ex(f->md, md, &n);
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
    return strcmp(hex, want) == 0;
}

static void fill_on_done(void *arg, enum upstream_result res, const struct upstream_response *r,
                         const char *err, const char *body, size_t body_len)
{
    struct fill *f = arg;
    struct fills *fs;
    int idle;

    (void)body;
    (void)body_len;
    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    fs = f->fs;
    f->xfer = NULL;
    f->up_res = res;
    f->up_status = r->ur_status;
    if (res != UPSTREAM_OK)
        snprintf(f->errmsg, sizeof(f->errmsg), "%s", err);
    /* Settle now if the hasher is done with this fill, else when it is. */
    pthread_mutex_lock(&fs->hmu);
    if (res != UPSTREAM_OK)
        f->hash_cancel = 1;
    idle = !f->hash_queued && !f->hash_busy;
    if (!idle)
        f->hash_settle = 1;
    pthread_mutex_unlock(&fs->hmu);
    if (idle)
        fill_settle(f);
}

/* Upstream has ended and the hasher is idle: verify, then commit or discard, and tell the
 * followers. */
static void fill_settle(struct fill *f)
{
    struct fills *fs = f->fs;
    enum upstream_result res = f->up_res;
    char size[32];
    int64_t hashed;
    int ok = 0;

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    pthread_mutex_lock(&fs->hmu);
    hashed = f->hashed;
    pthread_mutex_unlock(&fs->hmu);
    snprintf(size, sizeof(size), "%" PRId64, f->written);
    if (res != UPSTREAM_OK) {
        f->err = error_for(res, f->up_status);
        log_event(LOG_WARN, "fill-failed", "digest", f->digest, "bytes", size, "error", f->errmsg,
                  NULL);
    } else if (hashed != f->written) {
        f->err = OCI_ERR_UPSTREAM;
        snprintf(f->errmsg, sizeof(f->errmsg), "the temp file could not be read back");
        log_event(LOG_ERROR, "fill-failed", "digest", f->digest, "error", f->errmsg, NULL);
    } else if (f->length >= 0 && f->written != f->length) {
        f->err = OCI_ERR_UPSTREAM;
        snprintf(f->errmsg, sizeof(f->errmsg), "truncated: %" PRId64 " of %" PRId64 " bytes",
                 f->written, f->length);
        log_event(LOG_WARN, "fill-failed", "digest", f->digest, "error", f->errmsg, NULL);
    } else if (!fill_verify(f)) {
        f->err = OCI_ERR_UPSTREAM;
        snprintf(f->errmsg, sizeof(f->errmsg), "upstream content does not match its digest");
        log_event(LOG_ERROR, "fill-digest-mismatch", "digest", f->digest, "bytes", size, NULL);
    } else {
        ok = 1;
    }
    f->busy++;
    if (ok) {
        /* Verified: followers may send their last bytes now. The fill stays findable, serving
         * from its temp file, until the commit thread has fsynced and renamed it. */
        f->state = FILL_DONE;
        f->length = f->written;
        f->committing = 1;
        commit_enqueue(f);
    } else {
        fill_unlist(f);
        f->state = FILL_FAILED;
        fs->stats.fs_failed++;
        store_tmp_discard(fs->st, f->tmp);
        if (fs->done != NULL)
            fs->done(fs->done_arg, f->digest, 0, f->written, f->repo);
    }
    /* Followers that never got headers get the error; the others finish or are cut off. */
    {
        struct follower *fw = f->followers, *next;
        for (; fw != NULL; fw = next) {
            next = fw->next;
            if (!fw->started && !ok) {
                fw->closing = 1;
                follower_unhook(fw);
                http_send_error(fw->req, f->err, f->errmsg, NULL);
                fw->req = NULL;
                follower_detach(fw);
            } else if (!fw->started) {
                follower_start(fw);
            } else {
                follower_pump(fw);
            }
        }
    }
    f->busy--;
    fill_maybe_free(f);
}

/* Log and count how the commit of <f> ended: in the store (<ok>) or not (<err>). */
static void commit_note(struct fill *f, int ok, const char *err)
{
    struct fills *fs = f->fs;
    char size[32];

    snprintf(size, sizeof(size), "%" PRId64, f->written);
    if (ok) {
        fs->stats.fs_completed++;
        log_event(LOG_INFO, "fill-done", "digest", f->digest, "bytes", size, NULL);
    } else {
        fs->stats.fs_failed++;
        log_event(LOG_ERROR, "fill-commit-failed", "digest", f->digest, "error", err, NULL);
    }
}

/* The commit thread is done with <f>: the blob is in the store (<ok>) or it is not. */
static void commit_done(struct fill *f, int ok, const char *err)
{
    struct fills *fs = f->fs;

    f->committing = 0;
    fill_unlist(f);
    commit_note(f, ok, err);
    if (!ok)
        store_tmp_discard(fs->st, f->tmp);
    if (fs->done != NULL)
        fs->done(fs->done_arg, f->digest, ok, f->written, f->repo);
    fill_maybe_free(f);
}

struct fill *fill_start(struct fills *fs, const struct upstream_target *t, const char *digest,
                        int64_t repo)
{
    struct fill *f = xcalloc(1, sizeof(*f));
    static const struct upstream_callbacks cbs = {fill_on_headers, fill_on_data, fill_on_done};
    const EVP_MD *alg = strncmp(digest, "sha512:", 7) == 0 ? EVP_sha512() : EVP_sha256();

    f->magic = FILL_MAGIC;
    f->fs = fs;
    str_copy(f->digest, sizeof(f->digest), digest);
    f->repo = repo;
    f->length = -1;
    f->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(f->md, alg, NULL);
    f->fd = store_tmp_create(fs->st, f->tmp, sizeof(f->tmp));
    f->next = fs->list;
    fs->list = f;
    f->listed = 1;
    fs->stats.fs_started++;
    if (f->fd == -1) {
        /* No temp file: fail like an upstream error, after the caller attached followers. */
        f->state = FILL_FAILED;
        f->err = OCI_ERR_UNAVAILABLE;
        snprintf(f->errmsg, sizeof(f->errmsg), "cannot create a temp file: %s", strerror(errno));
        fill_unlist(f);
        log_event(LOG_ERROR, "fill-failed", "digest", digest, "error", f->errmsg, NULL);
        return f;
    }
    f->xfer = upstream_start(fs->up, t, &cbs, f);
    return f;
}

/* Tell a worker thread to stop (under its mutex, <*stopping> = 1) and wait for it. */
static void worker_stop(pthread_mutex_t *mu, pthread_cond_t *cv, int *stopping, pthread_t t)
{
    pthread_mutex_lock(mu);
    *stopping = 1;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    pthread_join(t, NULL);
}

void fills_drain(struct fills *fs)
{
    if (fs == NULL || !fs->worker_started)
        return;
    for (;;) { /* each turn takes at least one result, or ends */
        struct pollfd pfd[2] = {{fs->pipe_rd, POLLIN, 0}, {fs->hpipe_rd, POLLIN, 0}};
        struct fill *f;
        int pending = fs->small_pending;

        /* Commits on the worker, and fills whose upstream ended while the hasher still had
         * them: they settle (and most go on to commit) once it is done. */
        for (f = fs->list; f != NULL; f = f->next)
            pending += f->committing || (f->state == FILL_RUNNING && f->xfer == NULL);
        if (pending == 0)
            return;
        if (poll(pfd, 2, -1) == -1 && errno != EINTR)
            return;
        if (pfd[1].revents & POLLIN)
            hash_pipe_cb(fs->hpipe_rd, EV_READ, fs);
        if (pfd[0].revents & POLLIN)
            commit_pipe_cb(fs->pipe_rd, EV_READ, fs);
    }
}

void fills_destroy(struct fills *fs)
{
    if (fs == NULL)
        return;
    /* Fills still hashing are abandoned below with everything else. */
    if (fs->hasher_started)
        worker_stop(&fs->hmu, &fs->hcv, &fs->hstopping, fs->hasher);
    pipe_unwatch(fs->hpipe_rd, fs->hpipe_wr, fs->hpipe_ev);
    pthread_mutex_destroy(&fs->hmu);
    pthread_cond_destroy(&fs->hcv);
    if (fs->worker_started) {
        /*
         * Let queued commits land, then take their results without callbacks (the owner is
         * going away; fills_drain first gives it them). A drain usually gets here with one:
         * the loop stops when the last client is done, which is before the fsync is. The
         * blob is kept, so fill-done is still logged; the index learns it when it is next
         * asked for (a stored file the index lacks is put back).
         */
        worker_stop(&fs->mu, &fs->cv, &fs->stopping, fs->worker);
        for (;;) {
            struct commit_job *job;
            if (read(fs->pipe_rd, &job, sizeof(job)) != (ssize_t)sizeof(job))
                break;
            if (job->fill == NULL) {
                /* A manifest: committed or not, its owner is gone; the index has its row. */
                if (!job->ok)
                    log_event(LOG_ERROR, "store-failed", "digest", job->digest, "error",
                              job->err, NULL);
                free(job->data);
                free(job->err);
                free(job);
                continue;
            }
            job->fill->committing = 0;
            commit_note(job->fill, job->ok, job->err);
            if (!job->ok)
                store_tmp_discard(fs->st, job->tmp);
            free(job->err);
            free(job);
        }
    }
    pipe_unwatch(fs->pipe_rd, fs->pipe_wr, fs->pipe_ev);
    pthread_mutex_destroy(&fs->mu);
    pthread_cond_destroy(&fs->cv);
    while (fs->list != NULL) {
        struct fill *f = fs->list;
        fill_unlist(f);
        if (f->xfer != NULL)
            upstream_cancel(f->xfer);
        f->xfer = NULL;
        if (f->state == FILL_RUNNING) {
            char size[32];
            snprintf(size, sizeof(size), "%" PRId64, f->written);
            fs->stats.fs_failed++;
            log_event(LOG_WARN, "fill-failed", "digest", f->digest, "bytes", size, "error",
                      "the proxy stopped before the fill ended", NULL);
            store_tmp_discard(fs->st, f->tmp);
        }
        f->state = FILL_FAILED;
        while (f->followers != NULL) {
            struct follower *fw = f->followers;
            f->followers = fw->next;
            fw->next = NULL;
            if (fw->fd != -1)
                close(fw->fd);
            free(fw);
        }
        fill_maybe_free(f);
    }
    fs->magic = 0;
    free(fs);
}
