/*
 * The catalog: what the cache knows, in one place. It owns the store (the files), the index
 * (SQLite: repositories, tags, manifests, blobs, what each repository holds) and the hot maps
 * (in-memory copies of what those two said, for the hot path of a pull), and every write of
 * an index row or a hot copy goes through here, so a copy is never newer or older than its
 * row. The blob files themselves are written by the fills' commit thread (store.h), which
 * gets the store from cache_store(); the index learns of them through cache_blob_stored.
 *
 * cache_open needs no event loop and no HTTP: a command that inspects or changes the cache
 * (the admin commands to come) opens it the same way the daemon does. Single-threaded. Times
 * (<now>) are seconds since the epoch, passed in by the caller: nothing here reads the clock.
 *
 * Repository ids: > 0 an index row; -1 the index failed; < -1 a pending repository, one
 * upstream has not answered with content for yet, held only in memory until
 * cache_repo_confirm makes its row (so probes of made-up names never grow the index).
 */
#ifndef CACHE_CACHE_H
#define CACHE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "db_index.h"
#include "policy_rules.h"

struct cache;
struct store;

/*
 * Open the cache under <data_dir>: the store, the index (index.db, migrated), then reconcile
 * the index with the files (rows whose file is gone are dropped; *dropped says how many, may
 * be NULL). NULL with *err set (caller frees) when any of it fails, including a store that
 * cannot say what it holds (nothing is dropped then).
 */
struct cache *cache_open(const char *data_dir, long *dropped, char **err);
/* Write what is batched (cache_flush at <now>) and close; accepts NULL. */
void cache_close(struct cache *c, int64_t now);

/* The store, for the fills that write blob files into it. */
struct store *cache_store(struct cache *c);
/* The index, for the ECR tier's push queue: rows no hot map copies (db_index.h's push
 * queue functions), so they need not go through the catalog. */
struct index *cache_index(struct cache *c);

/* ---- repositories ---- */

/* The id of repository (<rule>, <name>): its row's, else a pending id; -1 on an index error. */
int64_t cache_repo_id(struct cache *c, const char *rule, const char *name);
/*
 * Upstream answered with content for <repo>: make its row if it is pending. The row's id, or
 * -1 when it cannot be made (or the pending entry was evicted: the caller then records
 * nothing, which only costs a later confirmation). Rows and -1 are returned as they are.
 */
int64_t cache_repo_confirm(struct cache *c, int64_t repo);
/* 1 when <repo> is known to hold <digest> (it was fetched for it, or upstream confirmed). */
int cache_repo_has(struct cache *c, int64_t repo, const char *digest);
/* Record that <repo> holds <digest> (confirming it first). 0, or -1. */
int cache_repo_add(struct cache *c, int64_t repo, const char *digest);

/* ---- tags ---- */

/* <tag> of <repo> into *out: 1 found, 0 not, -1 index error. */
int cache_tag_get(struct cache *c, int64_t repo, const char *tag, struct index_tag *out);
/* <tag> of <repo> now points at <digest> (<media_type>), checked at <now>. 0, or -1. */
int cache_tag_put(struct cache *c, int64_t repo, const char *tag, const char *digest,
                  const char *media_type, int64_t now);
/* Upstream confirmed <tag> of <repo> unchanged at <now>. */
int cache_tag_checked(struct cache *c, int64_t repo, const char *tag, int64_t now);
/* Every tag of <repo> the index holds (index_tags_list; free with index_strings_free). */
int cache_tags_list(struct cache *c, int64_t repo, char ***tags, size_t *n);

/* ---- manifests ---- */

/* 1 when <digest>'s file is in the store. */
int cache_has(struct cache *c, const char *digest);
/* 1 when <digest> is indexed as a manifest (<mt>/<size> filled when not NULL/0), 0, -1. */
int cache_manifest_info(struct cache *c, const char *digest, char *mt, size_t mt_size,
                        int64_t *size);
/*
 * Index manifest <digest> (<body>, <len>, served as <media_type>) for *<repo> (confirmed
 * first; *repo updated), with what it references, at <now>. 0, or -1.
 */
int cache_manifest_put(struct cache *c, int64_t *repo, const char *digest, const char *media_type,
                       const char *body, size_t len, int64_t now);
/* Keep the verified manifest <digest> and its media type in memory. */
void cache_manifest_remember(struct cache *c, const char *digest, const char *media_type,
                             const char *body, size_t len);
/*
 * Manifest <digest> for <repo>: its media type, with body and len set to its bytes, from memory,
 * else read from the store (and indexed for <repo> when it was not, at <now>) and kept in memory.
 * NULL when the store does not have it. The pointers stay valid until the next call that
 * puts into the manifests map (cache_manifest_load, cache_manifest_remember).
 */
const char *cache_manifest_load(struct cache *c, int64_t *repo, const char *digest,
                                const char **body, size_t *len, int64_t now);
/* A stored manifest's bytes (at most MANIFEST_MAX_BYTES), from memory or the store; caller
 * frees. NULL when not at hand. */
char *cache_manifest_copy(struct cache *c, const char *digest, size_t *len);
/* The digests of manifests whose subject is <digest> (index_referrers). */
int cache_referrers(struct cache *c, const char *digest, char ***digests, size_t *n);

/* ---- blobs ---- */

/* Open stored <digest> for reading: the fd and *size, or -1 when it is not stored. */
int cache_open_blob(struct cache *c, const char *digest, int64_t *size);
/* A fill for <repo> committed blob <digest> of <size> bytes at <now>. */
void cache_blob_stored(struct cache *c, const char *digest, int64_t size, int64_t repo,
                       int64_t now);
/* <digest> is about to be served from the store: give a file the index lost (a crash
 * between the rename and the insert) its row back, at <now>. */
void cache_blob_repair(struct cache *c, const char *digest, int64_t now);
/* Bytes free on the store's filesystem, -1 when unknown. */
int64_t cache_free_bytes(struct cache *c);

/* ---- batched stamps ---- */

/* <tag> of <repo> was pulled / stored <digest> was served: written at the next flush. */
void cache_note_pulled(struct cache *c, int64_t repo, const char *tag, int64_t now);
void cache_note_touched(struct cache *c, const char *digest, int64_t now);
/* Write the pending stamps (last_pulled_at, last_access) at <now>, one transaction each. */
void cache_flush(struct cache *c, int64_t now);

/* ---- statistics ---- */

enum cache_map {
    CACHE_MAP_REPOS,
    CACHE_MAP_TAGS,
    CACHE_MAP_KNOWN,
    CACHE_MAP_MANIFESTS,
    CACHE_NMAPS
};
/* The map's name for metrics ("repos", "tags", "known", "manifests"), its hits and bytes. */
const char *cache_map_stats(const struct cache *c, enum cache_map which, uint64_t *hits,
                            uint64_t *bytes);

/* ---- the byte budget and the lifecycle rules (cache_gc.c) ---- */

struct lc_policy;

/* Bytes of every stored blob and manifest the index holds (what the budget counts). */
int64_t cache_used_bytes(const struct cache *c);

struct cache_gc_opts {
    int64_t cg_budget;   /* bytes the store may hold; 0: no budget */
    int64_t cg_min_free; /* bytes to leave free on the filesystem; 0: no floor */
    int64_t cg_need;     /* bytes about to be stored (a fill's size): the budget must hold them
                            too; the floor's free bytes already count them (written to tmp/) */
    int cg_dry_run;      /* plan only: nothing is removed */
    int cg_free_given;   /* 1: cg_free_bytes is the filesystem's free space (tests), 0: ask */
    int64_t cg_free_bytes;
    /* The lifecycle policy of repositories of rule <rule> (its prefix), or NULL. */
    const struct lc_policy *(*cg_policy)(void *arg, const char *rule);
    void *cg_arg;
};

/* One image the sweep expires (or would, with cg_dry_run). */
struct cache_gc_image {
    char *gi_rule, *gi_name, *gi_digest;
    char **gi_tags;
    size_t gi_ntags;
    int64_t gi_bytes;     /* bytes freed with it: content no retained image references */
    int gi_rule_priority; /* the lifecycle rule that expired it; 0: the byte budget */
};

struct cache_gc_result {
    struct cache_gc_image *gr_images;
    size_t gr_nimages;
    int64_t gr_used_before, gr_used_after; /* cache_used_bytes before and after */
    int64_t gr_freed;                      /* bytes removed (planned, with cg_dry_run) */
    int64_t gr_files;                      /* blob and manifest files removed */
    int64_t gr_skipped; /* planned, and used between the plan and its slice: kept */
};

/*
 * Run the lifecycle rules, then the byte budget, at <now>: expire what the rules expire, then
 * the least recently pulled images until used + cg_need fits cg_budget and the filesystem
 * keeps cg_min_free; then mark and sweep: every stored blob and manifest no retained image
 * references is removed, with its rows and every in-memory copy of it. Content stored in the
 * last minute and not yet referenced is kept (a pull in progress). Readers holding a file open
 * keep reading it. 0 with *out filled (free with cache_gc_result_free), or -1.
 */
int cache_gc(struct cache *c, const struct cache_gc_opts *o, int64_t now,
             struct cache_gc_result *out);
void cache_gc_result_free(struct cache_gc_result *r);

/*
 * cache_gc in slices, so a loop can serve between them: cache_gc_begin plans (out filled as
 * cache_gc's, gr_freed and gr_files planned) and sets *sweep (NULL with cg_dry_run, or when
 * nothing is to go); then cache_gc_step applies up to <max> removals per call, at <now>,
 * skipping what was used since the plan (returns 1 while more is left, 0 done, -1 on an index
 * error); cache_gc_end frees the sweep and sets out's gr_freed, gr_files, gr_skipped and
 * gr_used_after to what was done (out may be NULL). One sweep at a time.
 */
struct cache_sweep;
#define CACHE_GC_SLICE 64
int cache_gc_begin(struct cache *c, const struct cache_gc_opts *o, int64_t now,
                   struct cache_gc_result *out, struct cache_sweep **sweep);
int cache_gc_step(struct cache *c, struct cache_sweep *sw, int64_t now, size_t max);
void cache_gc_end(struct cache *c, struct cache_sweep *sw, int64_t now,
                  struct cache_gc_result *out);

/* ---- the status page's figures (cache_gc.c) ---- */

struct cache_pulled {
    char cp_rule[128];
    char cp_name[RULES_NAME_MAX];
    char cp_tag[INDEX_TAG_MAX];
    int64_t cp_pulls, cp_last_pulled_at;
};
/* The <limit> tags pulled most (counted since they were first cached), most first, into
 * <out>; *n how many. 0 or -1. */
int cache_top_pulled(struct cache *c, size_t limit, struct cache_pulled *out, size_t *n);

/* ---- listings and changes for the admin commands (cache_list.c) ---- */

/*
 * A page of repositories (index_repos_page: ids above <after>, at most <limit>), after
 * writing the batched stamps at <now> so the listing shows the latest pulls. 0 or -1.
 */
int cache_repos_page(struct cache *c, int64_t after, size_t limit, struct index_repo_row *out,
                     size_t *n, int64_t now);
/* The id of repository (<rule>, <name>) when the index has it, 0 when not (nothing is made,
 * not even a pending entry), -1 on error. */
int64_t cache_repo_find(struct cache *c, const char *rule, const char *name);
/* A page of <repo>'s tags with their facts and image sizes (index_tags_page), after writing
 * the batched stamps at <now>. 0 or -1. */
int cache_tags_page(struct cache *c, int64_t repo, const char *after, size_t limit,
                    struct index_tag_row *out, size_t *n, int64_t now);
/*
 * Make <tag> of <repo> due for its upstream check now (checked_at at most <before>: the api
 * passes now - the rule's refresh interval), in the index and in the hot copy; <old> (may be
 * NULL) gets the tag as it was. 1 done, 0 no such tag, -1 on error.
 */
int cache_tag_expire(struct cache *c, int64_t repo, const char *tag, int64_t before,
                     struct index_tag *old);

#endif
