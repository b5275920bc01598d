/*
 * The commit thread: verified fills (and small verified objects, manifests) are fsynced,
 * renamed into the store and their directory fsynced on one worker thread, so the event loop
 * never waits on the disk. Results come back through a pipe the loop watches; a fill's commit
 * job holds its commit reference until then, so the fill stays findable and late joiners read
 * its temp file (the same inode after the rename). fills_drain takes the results still due
 * once the loop has stopped.
 */
#include "config.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fill-int.h"
#include "log.h"
#include "store.h"
#include "util.h"

static void *commit_worker(void *arg)
{
    struct fills *fs;
    struct commit_job *job;

    CAST_OBJ_NOTNULL(fs, arg, FILLS_MAGIC);
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
        CHECK_OBJ_NOTNULL(job, COMMIT_MAGIC);
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

static void commit_job_free(struct commit_job *job)
{
    free(job->data);
    free(job->err);
    job->magic = 0;
    free(job);
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

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    f->committing = 0;
    fill_unlist(f);
    commit_note(f, ok, err);
    if (!ok)
        store_tmp_discard(fs->st, f->tmp);
    if (fs->done != NULL)
        fs->done(fs->done_arg, f->digest, ok, f->written, f->repo, f->source);
    fill_unref(f); /* the commit reference */
}

static void commit_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fills *fs;
    struct commit_job *job;

    (void)what;
    CAST_OBJ_NOTNULL(fs, arg, FILLS_MAGIC);
    while (read(fd, &job, sizeof(job)) == (ssize_t)sizeof(job)) {
        CHECK_OBJ_NOTNULL(job, COMMIT_MAGIC);
        if (job->fill != NULL) {
            commit_done(job->fill, job->ok, job->err);
        } else {
            fs->small_pending--;
            if (job->done != NULL)
                job->done(job->done_arg, job->digest, job->ok, job->err);
        }
        commit_job_free(job);
    }
}

int commit_start(struct fills *fs, struct event_base *base)
{
    if (fill_pipe_watch(base, &fs->pipe_rd, &fs->pipe_wr, &fs->pipe_ev, commit_pipe_cb, fs) == -1 ||
        pthread_create(&fs->worker, NULL, commit_worker, fs) != 0)
        return -1;
    fs->worker_started = 1;
    return 0;
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

    CHECK_OBJ_NOTNULL(fs, FILLS_MAGIC);
    job->magic = COMMIT_MAGIC;
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

void commit_enqueue(struct fill *f)
{
    struct fills *fs = f->fs;
    struct commit_job *job = xcalloc(1, sizeof(*job));

    fill_ref(f);
    f->committing = 1;
    job->magic = COMMIT_MAGIC;
    job->fill = f;
    job->fd = dup(f->fd);
    str_copy(job->tmp, sizeof(job->tmp), f->tmp);
    str_copy(job->digest, sizeof(job->digest), f->digest);
    if (job->fd == -1) {
        commit_done(f, 0, "cannot dup the temp file");
        commit_job_free(job);
        return;
    }
    commit_queue(fs, job);
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
            fill_hash_pipe_cb(fs->hpipe_rd, EV_READ, fs);
        if (pfd[0].revents & POLLIN)
            commit_pipe_cb(fs->pipe_rd, EV_READ, fs);
    }
}

void commit_stop(struct fills *fs)
{
    if (fs->worker_started) {
        /*
         * Let queued commits land, then take their results without callbacks (the owner is
         * going away; fills_drain first gives it them). A drain usually gets here with one:
         * the loop stops when the last client is done, which is before the fsync is. The
         * blob is kept, so fill-done is still logged; the index learns it when it is next
         * asked for (a stored file the index lacks is put back).
         */
        fill_worker_stop(&fs->mu, &fs->cv, &fs->stopping, fs->worker);
        fs->worker_started = 0;
        for (;;) {
            struct commit_job *job;
            struct fill *f;
            if (read(fs->pipe_rd, &job, sizeof(job)) != (ssize_t)sizeof(job))
                break;
            CHECK_OBJ_NOTNULL(job, COMMIT_MAGIC);
            f = job->fill;
            if (f == NULL) {
                /* A manifest: committed or not, its owner is gone; the index has its row. */
                if (!job->ok)
                    log_event(LOG_ERROR, "store-failed", "digest", job->digest, "error", job->err,
                              NULL);
                commit_job_free(job);
                continue;
            }
            CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
            f->committing = 0;
            commit_note(f, job->ok, job->err);
            if (!job->ok)
                store_tmp_discard(fs->st, job->tmp);
            commit_job_free(job);
            fill_unlist(f);
            f->state = FILL_FAILED;
            follow_cut_all(f);
            fill_unref(f); /* the commit reference */
        }
    }
    fill_pipe_unwatch(fs->pipe_rd, fs->pipe_wr, fs->pipe_ev);
    fs->pipe_rd = fs->pipe_wr = -1;
    fs->pipe_ev = NULL;
    pthread_mutex_destroy(&fs->mu);
    pthread_cond_destroy(&fs->cv);
}
