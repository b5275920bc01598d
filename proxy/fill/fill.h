/*
 * Fills: one upstream fetch per blob digest, however many clients ask at once. The fill writes
 * to a temp file while hashing; each client (a follower) streams from that growing file at
 * its own pace with sendfile. Verified content is committed to the store; anything else is
 * discarded and the followers' transfers are cut short, never completed with wrong bytes.
 */
#ifndef PROXY_FILL_H
#define PROXY_FILL_H

#include <stdint.h>

#include "oci.h"

struct event_base;
struct evhttp_request;
struct exchange;
struct fill;
struct fills;
struct store;
struct upstream;
struct upstream_target;

/*
 * Called once per fill when it ends: <ok> 1 when the blob was verified and committed, 2 when
 * it was verified and served but not kept (fill_keep_fn said no), 0 when it failed;
 * <source> 0 for a fill_start fill, and for fill_start_from 1 when <first> served it, 2 when
 * <then> did.
 */
typedef void (*fill_done_fn)(void *arg, const char *digest, int ok, int64_t size, int64_t repo,
                             int source);
/* The first target failed before any byte (status: its HTTP status, 0 for none) and the fill
 * goes on with its fallback. */
typedef void (*fill_fallback_fn)(void *arg, const char *digest, int status, const char *err);

/* Create the fill registry on <base>, with the thread that commits verified fills. NULL on
 * failure. */
struct fills *fills_create(struct event_base *base, struct store *st, struct upstream *up,
                           fill_done_fn done, void *arg);
/*
 * Once the loop has stopped: wait for every verified fill's commit (fsync and rename) and
 * report each through the done callback, with its fill-done line, as the loop would have.
 * Call it before freeing what the callback uses; fills_destroy logs any result left but no
 * longer calls back. Accepts NULL.
 */
void fills_drain(struct fills *fs);
/* Cancel every fill (followers are cut off; one still fetching is logged as failed) and free;
 * accepts NULL. */
void fills_destroy(struct fills *fs);

/* The fill in progress for <digest>, or NULL. It takes no reference: follow it (fill_follow)
 * before returning to the loop. */
struct fill *fill_find(struct fills *fs, const char *digest);
/* The repository the fill was started for. */
int64_t fill_repo(const struct fill *f);

/*
 * Start fetching blob <digest> with GET <t> for repository <repo>. Returns the fill, owned by
 * <fs> and held by its references: it lives until the upstream transfer has ended, its commit
 * is back and its last follower is done. The caller follows it (fill_follow) before returning
 * to the loop; a fill that could not even start lives only as long as that follower.
 */
struct fill *fill_start(struct fills *fs, const struct upstream_target *t, const char *digest,
                        int64_t repo);

/*
 * As fill_start, from <first> (the ECR tier), and when that ends without a byte of a 2xx body
 * (a 404, an error, no answer), from <then> (the upstream; copied, its origin borrowed)
 * within the same fill: followers see one transfer. <then> NULL: fill_start.
 */
struct fill *fill_start_from(struct fills *fs, const struct upstream_target *first,
                             const struct upstream_target *then, const char *digest, int64_t repo);
/* Call <fn>(<arg> given to fills_create) whenever a fill falls back. */
void fills_on_fallback(struct fills *fs, fill_fallback_fn fn);
/*
 * A fill of <size> verified bytes is about to be committed: 1 to keep it, 0 to discard it
 * (the disk has no room: its followers still get every byte). Called on the loop; it may
 * make room first (the sweep).
 */
typedef int (*fill_keep_fn)(void *arg, const char *digest, int64_t size);
/* Ask <fn>(<arg> given to fills_create) before each commit; NULL (the default) keeps all. */
void fills_on_keep(struct fills *fs, fill_keep_fn fn);

/*
 * Answer <req> (GET or HEAD; exchange <x>) from <f>: headers as soon as upstream's arrive,
 * then the bytes as they land, honouring the client's Range header. Takes over the request;
 * the follower holds a reference on <f> until its response is done or its client gone.
 */
void fill_follow(struct fill *f, struct evhttp_request *req, struct exchange *x);

/*
 * Store <len> bytes of verified <data> (copied) as <digest> on the commit thread: written,
 * fsynced, renamed, the directory fsynced, so the loop never waits on the disk for a manifest
 * either. <done>(<arg>, digest, ok, err) runs on the loop once it is done (err: a static-ish
 * message, valid during the call), or at fills_drain; never after fills_destroy began.
 */
typedef void (*fills_commit_fn)(void *arg, const char *digest, int ok, const char *err);
void fills_commit_small(struct fills *fs, const char *digest, const char *data, size_t len,
                        fills_commit_fn done, void *arg);

/* Counters. */
struct fill_stats {
    uint64_t fs_started, fs_completed, fs_failed, fs_joined;
    uint64_t fs_not_kept;   /* verified and served, not stored: no room */
    uint64_t fs_bytes_sent; /* body bytes followers handed to clients */
};
void fills_get_stats(const struct fills *fs, struct fill_stats *out);

#endif
