/*
 * Fills: the registry of fills in progress and the upstream side of each.
 *
 * A fill owns one upstream GET, one temp file and one running hash. Upstream bytes are
 * appended to the file (pwrite at <written>), then every follower is pumped (follow.c); the
 * hash is computed on a worker thread that reads the new bytes back from the page cache, so
 * the loop's core only receives, writes and sends. When upstream ends, the fill is settled
 * once the hasher has caught up: the digest and length are checked, a match goes to the
 * commit thread (commit.c) and its followers may finish; a mismatch, a truncation or an
 * upstream error discards the temp file and the followers are refused or cut short.
 *
 * A fill lives as long as its reference count says: the fetch (here), one per follower and
 * the commit job; fill-int.h tells who takes and drops each.
 */
#include "config.h"

#include "fill.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fill-int.h"
#include "log.h"
#include "registry.h"
#include "store.h"
#include "util.h"

#define HASH_CHUNK (1024 * 1024)

static void fill_settle(struct fill *f);

/* ---- the hasher --------------------------------------------------------------------------- */

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
    struct fills *fs;
    unsigned char *buf = xmalloc(HASH_CHUNK);

    CAST_OBJ_NOTNULL(fs, arg, FILLS_MAGIC);

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
        CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
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

void fill_hash_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fills *fs;
    struct fill *f;

    (void)what;
    CAST_OBJ_NOTNULL(fs, arg, FILLS_MAGIC);
    while (read(fd, &f, sizeof(f)) == (ssize_t)sizeof(f))
        fill_settle(f);
}

/* ---- worker threads and the registry ------------------------------------------------------ */

int fill_pipe_watch(struct event_base *base, int *rd, int *wr, struct event **ev,
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

void fill_pipe_unwatch(int rd, int wr, struct event *ev)
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
    if (fill_pipe_watch(base, &fs->hpipe_rd, &fs->hpipe_wr, &fs->hpipe_ev, fill_hash_pipe_cb, fs) ==
            -1 ||
        pthread_create(&fs->hasher, NULL, hash_worker, fs) != 0)
        goto fail;
    fs->hasher_started = 1;
    if (commit_start(fs, base) == -1)
        goto fail;
    return fs;
fail:
    fills_destroy(fs);
    return NULL;
}

void fill_worker_stop(pthread_mutex_t *mu, pthread_cond_t *cv, int *stopping, pthread_t t)
{
    pthread_mutex_lock(mu);
    *stopping = 1;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    pthread_join(t, NULL);
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

void fill_unlist(struct fill *f)
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

void fill_ref(struct fill *f)
{
    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    f->refs++;
}

void fill_unref(struct fill *f)
{
    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    if (f->refs <= 0)
        util_bad_object("f->refs", __FILE__, __LINE__); /* dropped once too often */
    if (--f->refs > 0)
        return;
    fill_unlist(f);
    if (f->fd != -1)
        close(f->fd);
    EVP_MD_CTX_free(f->md);
    free(f->then_name);
    free(f->then_path);
    free(f->then_accept);
    f->fs->live--;
    f->magic = 0;
    free(f);
}

/* ---- the upstream side ------------------------------------------------------------------ */

static int fill_on_headers(void *arg, const struct upstream_response *r)
{
    struct fill *f;

    CAST_OBJ_NOTNULL(f, arg, FILL_MAGIC);
    f->headers = 1;
    f->length = r->ur_content_length;
    str_copy(f->content_type, sizeof(f->content_type), "application/octet-stream");
    follow_pump_all(f);
    return 0;
}

static int fill_on_data(void *arg, const char *data, size_t len)
{
    struct fill *f;
    size_t off = 0;

    CAST_OBJ_NOTNULL(f, arg, FILL_MAGIC);
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
    follow_pump_all(f);
    return 0;
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
    struct fill *f;
    struct fills *fs;
    int idle;

    (void)body;
    (void)body_len;
    CAST_OBJ_NOTNULL(f, arg, FILL_MAGIC);
    fs = f->fs;
    f->xfer = NULL;
    if (res != UPSTREAM_OK && f->has_then && !f->headers && f->written == 0) {
        /* Nothing reached a follower: the fallback serves this fill instead. */
        static const struct upstream_callbacks cbs = {fill_on_headers, fill_on_data, fill_on_done};
        char st[16];
        f->has_then = 0;
        f->source = 2;
        snprintf(st, sizeof(st), "%d", r->ur_status);
        log_event(LOG_INFO, "fill-fallback", "digest", f->digest, "status", st, "error", err, NULL);
        if (fs->fallback != NULL)
            fs->fallback(fs->done_arg, f->digest, r->ur_status, err);
        f->xfer = upstream_start(fs->up, &f->then, &cbs, f);
        return;
    }
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
 * followers. Drops the fetch reference. */
static void fill_settle(struct fill *f)
{
    struct fills *fs;
    enum upstream_result res;
    char size[32];
    int64_t hashed;
    int ok = 0;

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    fs = f->fs;
    res = f->up_res;
    pthread_mutex_lock(&fs->hmu);
    hashed = f->hashed;
    pthread_mutex_unlock(&fs->hmu);
    snprintf(size, sizeof(size), "%" PRId64, f->written);
    if (res != UPSTREAM_OK) {
        f->err = upstream_oci_error(res, f->up_status, OCI_ERR_BLOB_UNKNOWN);
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
    if (ok && fs->keep != NULL && !fs->keep(fs->done_arg, f->digest, f->written)) {
        /* Verified, and no room for it: the followers finish from the temp file they hold
         * open, and nothing is stored. */
        f->state = FILL_DONE;
        f->length = f->written;
        fill_unlist(f);
        store_tmp_discard(fs->st, f->tmp);
        fs->stats.fs_not_kept++;
        log_event(LOG_WARN, "fill-not-kept", "digest", f->digest, "bytes", size, "reason",
                  "no room within cache_size and min_free_space", NULL);
        if (fs->done != NULL)
            fs->done(fs->done_arg, f->digest, 2, f->written, f->repo, f->source);
    } else if (ok) {
        /* Verified: followers may send their last bytes now. The fill stays findable, serving
         * from its temp file, until the commit thread has fsynced and renamed it. */
        f->state = FILL_DONE;
        f->length = f->written;
        commit_enqueue(f);
    } else {
        fill_unlist(f);
        f->state = FILL_FAILED;
        fs->stats.fs_failed++;
        store_tmp_discard(fs->st, f->tmp);
        if (fs->done != NULL)
            fs->done(fs->done_arg, f->digest, 0, f->written, f->repo, f->source);
    }
    /* Followers that never got headers get the error; the others finish or are cut off. */
    follow_settled(f, ok);
    fill_unref(f); /* the fetch reference: upstream and the hasher are done with it */
}

void fills_on_keep(struct fills *fs, fill_keep_fn fn)
{
    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);
    fs->keep = fn;
}

void fills_on_fallback(struct fills *fs, fill_fallback_fn fn)
{
    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);
    fs->fallback = fn;
}

struct fill *fill_start_from(struct fills *fs, const struct upstream_target *first,
                             const struct upstream_target *then, const char *digest, int64_t repo)
{
    struct fill *f;

    if (then == NULL)
        return fill_start(fs, first, digest, repo);
    f = fill_start(fs, first, digest, repo);
    if (f->xfer == NULL)
        return f; /* failed at once (no temp file): nothing to fall back to */
    f->has_then = 1;
    f->source = 1;
    f->then = *then;
    f->then_name = then->ut_name != NULL ? xstrdup(then->ut_name) : NULL;
    f->then_path = xstrdup(then->ut_path);
    f->then_accept = then->ut_accept != NULL ? xstrdup(then->ut_accept) : NULL;
    f->then.ut_name = f->then_name;
    f->then.ut_path = f->then_path;
    f->then.ut_accept = f->then_accept;
    return f;
}

struct fill *fill_start(struct fills *fs, const struct upstream_target *t, const char *digest,
                        int64_t repo)
{
    struct fill *f = xcalloc(1, sizeof(*f));
    static const struct upstream_callbacks cbs = {fill_on_headers, fill_on_data, fill_on_done};
    const EVP_MD *alg = strncmp(digest, "sha512:", 7) == 0 ? EVP_sha512() : EVP_sha256();

    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);
    f->magic = FILL_MAGIC;
    f->refs = 1; /* the fetch */
    f->fs = fs;
    fs->live++;
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
        f->refs = 0; /* no fetch: the caller's fill_follow holds the only reference */
        log_event(LOG_ERROR, "fill-failed", "digest", digest, "error", f->errmsg, NULL);
        return f;
    }
    f->xfer = upstream_start(fs->up, t, &cbs, f);
    return f;
}

void fills_destroy(struct fills *fs)
{
    if (fs == NULL)
        return;
    /* Fills still hashing are abandoned below with everything else. */
    if (fs->hasher_started)
        fill_worker_stop(&fs->hmu, &fs->hcv, &fs->hstopping, fs->hasher);
    fill_pipe_unwatch(fs->hpipe_rd, fs->hpipe_wr, fs->hpipe_ev);
    pthread_mutex_destroy(&fs->hmu);
    pthread_cond_destroy(&fs->hcv);
    /* Commits land and their fills go; what is left on the list is still fetching. */
    commit_stop(fs);
    while (fs->list != NULL) {
        struct fill *f = fs->list;
        int fetching = f->state == FILL_RUNNING;
        fill_unlist(f);
        if (f->xfer != NULL)
            upstream_cancel(f->xfer);
        f->xfer = NULL;
        if (fetching) {
            char size[32];
            snprintf(size, sizeof(size), "%" PRId64, f->written);
            fs->stats.fs_failed++;
            log_event(LOG_WARN, "fill-failed", "digest", f->digest, "bytes", size, "error",
                      "the proxy stopped before the fill ended", NULL);
            store_tmp_discard(fs->st, f->tmp);
        }
        f->state = FILL_FAILED;
        fill_ref(f); /* while its followers go */
        follow_cut_all(f);
        if (fetching)
            fill_unref(f); /* the fetch reference */
        fill_unref(f);
    }
    fs->magic = 0;
    free(fs);
}
