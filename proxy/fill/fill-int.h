/*
 * Inside proxy/fill/ only: the registry, fill, follower and commit-job records and the calls
 * fill.c (registry, upstream side, hashing), follow.c (followers) and commit.c (the commit
 * thread) make of one another. No other module includes this (unit tests may, to look inside).
 *
 * A fill's lifetime is its reference count, f->refs; it is freed when the last one goes
 * (fill_unref), and every reference has exactly one owner:
 *
 *   the fetch      taken by fill_start, dropped at the end of fill_settle (upstream has ended
 *                  and the hasher is done with it) or by fills_destroy. While it is held the
 *                  fill is FILL_RUNNING and findable; the hasher only ever holds a fill
 *                  within that span, so it needs no reference of its own.
 *   each follower  taken by fill_follow, dropped by follower_detach (finished, cut off,
 *                  refused, or its client gone) or follow_cut_all.
 *   the commit     taken by commit_enqueue for a verified fill, dropped by commit_done once
 *                  the commit thread's result is back on the loop (or taken by fills_destroy).
 *                  While it is held the fill stays findable and late joiners read its temp
 *                  file (the same inode after the rename).
 *
 * A fill whose temp file could not be made holds no fetch reference: it is FILL_FAILED from
 * the start, and the fill_follow its creator must call next holds the only one.
 */
#ifndef FILL_INT_H
#define FILL_INT_H

#include <event2/event.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>

#include "fill.h"
#include "oci.h"
#include "registry.h"
#include "store.h"

#define FILLS_MAGIC 0x46494c53u    /* "FILS" */
#define FILL_MAGIC 0x46494c4cu     /* "FILL" */
#define FOLLOWER_MAGIC 0x464f4c4cu /* "FOLL" */
#define COMMIT_MAGIC 0x434d4954u   /* "CMIT" */

struct evhttp_request;
struct exchange;

enum fill_state { FILL_RUNNING = 0, FILL_DONE, FILL_FAILED };

/*
 * A verified fill waiting for its fsync and rename on the commit thread; or (fill NULL) a
 * small verified object held in memory, a manifest, to be written, fsynced and renamed.
 */
struct commit_job {
    unsigned magic;
    struct commit_job *next;
    struct fill *fill; /* holds the fill's commit reference */
    int fd;            /* a dup of the fill's fd, closed by the worker */
    char tmp[STORE_PATH_MAX];
    char digest[144];
    char *data; /* small objects: a copy of the bytes, owned by the job */
    size_t len;
    fills_commit_fn done; /* small objects: called on the loop with the result */
    void *done_arg;
    int ok;
    char *err;
};

struct fills {
    unsigned magic;
    struct store *st;
    struct upstream *up;
    fill_done_fn done;
    fill_fallback_fn fallback;
    fill_keep_fn keep;
    void *done_arg;
    struct fill *list; /* the findable fills */
    struct fill_stats stats;
    int64_t live; /* fills allocated and not yet freed */

    /* fsync + rename happen on one worker thread so the event loop never waits on the disk;
     * finished jobs come back through a pipe the loop watches. */
    pthread_t worker;
    int worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct commit_job *queue, *queue_tail;
    int stopping;
    int pipe_rd, pipe_wr;
    int small_pending; /* small-object jobs whose result the loop has not taken */
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
    int refs; /* the fetch, one per follower, the commit job (above) */
    struct fills *fs;
    struct fill *next;
    int listed;     /* still findable by digest (on fs->list) */
    int committing; /* the commit job holds its reference, result not yet taken */
    char digest[144];
    int64_t repo;
    char tmp[STORE_PATH_MAX];
    int fd;
    EVP_MD_CTX *md; /* the hasher's while it runs; the loop's once it settled */
    int64_t written;
    struct fill *hnext;          /* in the hasher's queue */
    int64_t hash_target;         /* hash up to here (the loop's written) */
    int64_t hashed;              /* hashed so far */
    int hash_queued, hash_busy;  /* in the queue / being hashed: the hasher holds the fill */
    int hash_settle;             /* upstream ended: tell the loop once the hasher is idle */
    int hash_cancel;             /* upstream failed: the hash is not needed */
    enum upstream_result up_res; /* how upstream ended, kept until the fill is settled */
    int up_status;
    int64_t length; /* upstream Content-Length, -1 until known or when absent */
    int headers;    /* upstream's 2xx headers arrived */
    char content_type[256];
    enum fill_state state;
    struct upstream_xfer *xfer;
    /* The fallback target (fill_start_from), its strings owned; has_then until it starts. */
    int has_then, source; /* source: fill_done_fn's */
    struct upstream_target then;
    char *then_name, *then_path, *then_accept;
    struct follower *followers;
    enum oci_error err; /* FILL_FAILED before headers: what followers are told */
    char errmsg[256];
};

/* One client response following a fill; holds one reference on it. */
struct follower {
    unsigned magic;
    struct fill *fill;
    struct follower *next;
    struct evhttp_request *req;
    struct exchange *x; /* NULL once the client is gone or the follower is done */
    int fd;             /* dup of the fill's fd */
    int head;
    int started, writing, gone, closing;
    int64_t off, end; /* bytes [off, end) still to send; end -1 until known */
    int chunked;      /* no length known: chunked transfer encoding */
};

/* ---- fill.c ---------------------------------------------------------------------------------- */

/* Take or drop a reference on <f>; the last one dropped frees it (and its temp file's fd). */
void fill_ref(struct fill *f);
void fill_unref(struct fill *f);
/* <f> is no longer findable by digest; idempotent. */
void fill_unlist(struct fill *f);
/* The hasher's pipe is readable (<arg> the registry): settle the fills it sent back. */
void fill_hash_pipe_cb(evutil_socket_t fd, short what, void *arg);
/* A pipe from a worker thread to the loop: <cb>(<arg>) runs when its read end is readable. */
int fill_pipe_watch(struct event_base *base, int *rd, int *wr, struct event **ev,
                    event_callback_fn cb, void *arg);
void fill_pipe_unwatch(int rd, int wr, struct event *ev);
/* Tell a worker thread to stop (under its mutex, <*stopping> = 1) and wait for it. */
void fill_worker_stop(pthread_mutex_t *mu, pthread_cond_t *cv, int *stopping, pthread_t t);

/* ---- follow.c -------------------------------------------------------------------------------- */

/* Upstream's headers or new bytes landed: start or pump every follower of <f>. */
void follow_pump_all(struct fill *f);
/*
 * <f> is settled, verified (<ok>) or not: followers that never sent headers start, or get
 * <f>'s error; the others finish, or are cut off short of their length.
 */
void follow_settled(struct fill *f, int ok);
/* fills_destroy: free every follower of <f> without answering it. The caller holds a
 * reference of its own on <f>. */
void follow_cut_all(struct fill *f);

/* ---- commit.c -------------------------------------------------------------------------------- */

/* Start the commit thread and the pipe its results come back through. 0, or -1. */
int commit_start(struct fills *fs, struct event_base *base);
/*
 * fills_destroy: let queued commits land, stop the thread and take their results without
 * callbacks (logged, each fill's followers cut and its commit reference dropped).
 */
void commit_stop(struct fills *fs);
/* Hand verified <f> to the commit thread; takes the commit reference. */
void commit_enqueue(struct fill *f);

#endif
