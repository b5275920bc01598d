/*
 * The SQLite index at DATA_DIR/index.db: repositories, tags with their freshness, manifests
 * and what they reference, blobs, and which repository each digest is known in.
 * The only module that speaks SQL. Not thread-safe: one connection, used from the event loop.
 */
#ifndef DB_INDEX_H
#define DB_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define INDEX_DIGEST_MAX 140
#define INDEX_MEDIA_TYPE_MAX 256

struct index;

/*
 * Open (creating if needed) the database at <path> (":memory:" for tests), in WAL mode with
 * synchronous=NORMAL, foreign keys on, a busy timeout, and run the versioned migrations
 * (PRAGMA user_version). Returns NULL with *err (caller frees) on failure.
 */
struct index *index_open(const char *path, char **err);
void index_close(struct index *ix); /* accepts NULL */

/* The id of repository (<rule>, <name>), created when absent; -1 on error. <rule> is the rule's
 * prefix, <name> the repository's name on the upstream. */
int64_t index_repo_id(struct index *ix, const char *rule, const char *name);

/* The id of repository (<rule>, <name>) when it exists, 0 when not (nothing is created), -1
 * on error. */
int64_t index_repo_find(struct index *ix, const char *rule, const char *name);

struct index_tag {
    char it_digest[INDEX_DIGEST_MAX];
    char it_media_type[INDEX_MEDIA_TYPE_MAX];
    int64_t it_checked_at; /* last time upstream confirmed it */
    int64_t it_changed_at; /* last time the digest changed */
    int64_t it_last_pulled_at;
};

/* 1 and <out> filled when the tag exists, 0 when not, -1 on error. */
int index_tag_get(struct index *ix, int64_t repo, const char *tag, struct index_tag *out);

/* Record that upstream says <tag> is <digest> (<media_type>) at <now>: checked_at = now;
 * changed_at = now when the tag is new or its digest differs. 0 or -1. */
int index_tag_put(struct index *ix, int64_t repo, const char *tag, const char *digest,
                  const char *media_type, int64_t now);

/* Upstream confirmed the same digest: only checked_at moves. 0 or -1. */
int index_tag_checked(struct index *ix, int64_t repo, const char *tag, int64_t now);

/* last_pulled_at = <now> for each of <n> (repo, tag) pairs, and pulls += <counts>[i] (NULL:
 * 1 each), in one transaction. 0 or -1. */
int index_tags_pulled(struct index *ix, const int64_t *repos, const char *const *tags,
                      const int64_t *counts, size_t n, int64_t now);

/*
 * Up to <limit> tag names of <repo> sorted ascending (byte order), strictly after <last>
 * (NULL or "" for the start), into a fresh array *tags of *count strings (caller frees each
 * and the array; index_strings_free does both). 0 or -1.
 */
int index_tags_list(struct index *ix, int64_t repo, const char *last, int limit, char ***tags,
                    size_t *count);
void index_strings_free(char **v, size_t n);

/* What a manifest references, for index_manifest_put. */
struct index_child {
    const char *ic_digest;
    const char *ic_kind; /* "config", "layer", "manifest", "subject", "blob" */
};

/*
 * Record manifest <digest> (<media_type>, <size> bytes) with its <n> children, and mark the
 * manifest (fetched from <repo> upstream) known in <repo>, in one transaction. The children
 * are recorded, not marked: a descriptor list is no proof that a repository holds them.
 * Idempotent. 0 or -1.
 */
int index_manifest_put(struct index *ix, int64_t repo, const char *digest, const char *media_type,
                       int64_t size, const struct index_child *children, size_t n, int64_t now);

/* 1 with media type and size when manifest <digest> is recorded, 0 when not, -1 on error. */
int index_manifest_get(struct index *ix, const char *digest, char *media_type, size_t mtsize,
                       int64_t *size);

/* Manifests whose subject is <digest> (referrers), fresh arrays like index_tags_list. */
int index_referrers(struct index *ix, const char *subject, char ***digests, size_t *count);

/* Record blob <digest> of <size> bytes stored at <now> (last_access = now). Idempotent. */
int index_blob_put(struct index *ix, const char *digest, int64_t size, int64_t now);

/* 1 with *size when blob <digest> is recorded, 0 when not, -1 on error. */
int index_blob_get(struct index *ix, const char *digest, int64_t *size);

/* last_access (blobs) and last_pulled_at (manifests) = <now> for each of <n> digests, in one
 * transaction. 0 or -1. */
int index_blobs_touch(struct index *ix, const char *const *digests, size_t n, int64_t now);

/* Mark <digest> (blob or manifest) known in <repo>. Idempotent. 0 or -1. */
int index_repo_digest_add(struct index *ix, int64_t repo, const char *digest);

/*
 * 1 when <digest> is known in <repo>: marked there by index_repo_digest_add or as the
 * manifest of index_manifest_put, never through another manifest's references. 0 when not,
 * -1 on error.
 */
int index_repo_has(struct index *ix, int64_t repo, const char *digest);

/*
 * Start-up reconciliation: every blob and manifest row whose content <exists>(digest, arg)
 * says is missing from the store is dropped, with its references and repository marks; tags
 * pointing at a dropped manifest are dropped. Returns the number of rows dropped, or -1.
 */
long index_reconcile(struct index *ix, int (*exists)(const char *digest, void *arg), void *arg);

/* Every digest the index knows (blobs and manifests), for the store's orphan sweep. */
int index_all_digests(struct index *ix, char ***digests, size_t *count);

/* PRAGMA integrity_check == "ok": 1, else 0; -1 on error. */
int index_integrity_ok(struct index *ix);

/* ---- the ECR tier's write-behind push queue (db_push.c) ---------------------------------- */

#define INDEX_ECR_REPO_MAX 257 /* an ECR repository name: at most 256 bytes */
#define INDEX_TAG_MAX 129      /* an OCI tag: at most 128 bytes */

/* One queued push: manifest <digest> (and, when <tag> is not "", that tag) into ECR
 * repository <ecr_repo>, for local repository <repo>. */
struct index_push {
    int64_t ip_id;
    char ip_ecr_repo[INDEX_ECR_REPO_MAX];
    int64_t ip_repo; /* the local repository's id (index_repo_id) */
    char ip_digest[INDEX_DIGEST_MAX];
    char ip_tag[INDEX_TAG_MAX]; /* "" for a push by digest only */
    int64_t ip_queued_at;       /* when it was first queued */
    int64_t ip_next_at;         /* not taken before this */
    int64_t ip_attempts;        /* attempts that ended in a retry */
    char ip_last_error[256];    /* the last retry's reason, "" */
};

/*
 * Queue the push of (<ecr_repo>, <digest>, <tag>) for <repo> at <now>, due at once. An equal
 * row already queued is left as it is (deduplicated; its attempts and backoff stand). 1 when
 * a row was added, 0 when one was there already, -1 on error.
 */
int index_push_enqueue(struct index *ix, const char *ecr_repo, int64_t repo, const char *digest,
                       const char *tag, int64_t now);

/*
 * Take up to <limit> rows due at <now> (next_at <= now, not taken), oldest next_at first,
 * into <out>, and mark them taken so no later call returns them until index_push_retry or
 * index_push_release_all. *n is how many. 0 or -1.
 */
int index_push_take(struct index *ix, int64_t now, size_t limit, struct index_push *out, size_t *n);

/* Row <id> is done: removed. 0 or -1 (a missing row is no error). */
int index_push_done(struct index *ix, int64_t id);

/* Row <id> failed with <err> (no secret in it): attempts + 1, last_error = err, untaken,
 * due at <next_at>. 0 or -1. */
int index_push_retry(struct index *ix, int64_t id, int64_t next_at, const char *err);

/* Rows of local repository <repo> put back with exactly <reason> as their last error (the
 * tier's "waiting for content") are due at <now> instead of later: what they waited for may
 * have come. Returns how many, or -1. */
long index_push_wake(struct index *ix, int64_t repo, int64_t now, const char *reason);

/* Start-up: every taken row is untaken (a push in flight when the process died). Returns
 * how many, or -1. */
long index_push_release_all(struct index *ix);

/* The queue's depth (rows) and the oldest row's queued_at (0 when empty). 0 or -1. */
int index_push_stats(struct index *ix, int64_t *depth, int64_t *oldest_queued_at);

/* Blobs the tier knows are in an ECR repository (pushed, or found by HEAD): 1, 0, or -1. */
int index_ecr_blob_has(struct index *ix, const char *ecr_repo, const char *digest);
/* Record that <digest> is in ECR repository <ecr_repo>. Idempotent. 0 or -1. */
int index_ecr_blob_add(struct index *ix, const char *ecr_repo, const char *digest);
/* Forget that <digest> (NULL: every blob) is in <ecr_repo>: ECR lost it (the repository was
 * deleted, a lifecycle policy expired it), so the next push asks again. 0 or -1. */
int index_ecr_blob_forget(struct index *ix, const char *ecr_repo, const char *digest);

/* ---- the sweep: images, their content, what goes (db_gc.c) --------------------------------- */

/* One image of a repository (db_gc.c's definition): a manifest it holds that is not an
 * untagged child of another it holds, nor a referrer of a stored subject. Strings owned by the
 * array. */
struct index_image {
    int64_t ii_repo;
    char *ii_rule, *ii_name;
    char ii_digest[INDEX_DIGEST_MAX];
    char *ii_tags;        /* the repository's tags pointing at it, comma-separated, or "" */
    int64_t ii_pushed_at; /* the manifest's stored_at: first cached here */
    int64_t ii_pulled_at; /* the latest of its tags' and its own pull stamps and pushed_at */
};
/* Every image, ordered by repository: a fresh array (index_gc_images_free). 0 or -1. */
int index_gc_images(struct index *ix, struct index_image **out, size_t *n);
void index_gc_images_free(struct index_image *v, size_t n);

/* What the mark phase reads, row by row: every stored blob and manifest (a digest stored both
 * ways comes twice), every reference, every digest a queued ECR push still needs. */
struct index_gc_walk_fns {
    void (*gw_content)(void *arg, const char *digest, int64_t size, int64_t stored_at, int manifest,
                       int64_t used_at); /* used_at: last_access, last_pulled_at */
    void (*gw_ref)(void *arg, const char *manifest, const char *child, int subject);
    void (*gw_pinned)(void *arg, const char *digest);
};
int index_gc_walk(struct index *ix, const struct index_gc_walk_fns *fns, void *arg);

/* An image a repository no longer holds: its tags there and its mark there go. */
struct index_unretain {
    int64_t iu_repo;
    const char *iu_digest;
};
/*
 * Apply a sweep: forget the <nu> images of <u>, then drop every row of the <nd> digests of
 * <drop> (blob, manifest, its references, every repository's mark, tags pointing at it), in
 * transactions of a few hundred changes. 0, or -1 (what was committed stays).
 */
int index_gc_apply(struct index *ix, const struct index_unretain *u, size_t nu,
                   const char *const *drop, size_t nd);

/* 1 when what the sweep planned to remove was used after <since> (the plan's own flush stamps
 * <since> itself, so a use within that second is not seen): with <repo> > 0 the
 * image <digest> of <repo> (a tag of it there or the manifest pulled), else the content
 * <digest> (served, pulled, stored again, or referenced by a manifest stored since). 0 when
 * not, -1 on error (the caller keeps it then). */
int index_gc_used_since(struct index *ix, const char *digest, int64_t repo, int64_t since);

/* Bytes of every stored blob and manifest the index holds, each digest once; -1 on error. */
int64_t index_used_bytes(struct index *ix);

/* A tag and how often it was pulled, for the status page. */
struct index_top {
    char it_rule[128];
    char it_name[320];
    char it_tag[INDEX_TAG_MAX];
    int64_t it_pulls, it_last_pulled_at;
};
/* The <limit> tags pulled most, most first, into <out>; *n how many. 0 or -1. */
int index_top_pulled(struct index *ix, size_t limit, struct index_top *out, size_t *n);

/* ---- listings for the admin commands (db_list.c) ------------------------------------------ */

#define INDEX_LIST_MAX 1000 /* rows one listing call returns at most */
#define INDEX_RULE_MAX 128  /* a rule's prefix, as the catalog's listings copy it */
#define INDEX_NAME_MAX 300  /* a repository name (RULES_NAME_MAX) */

/* One repository row: its id, rule prefix, upstream name and how many tags it has. */
struct index_repo_row {
    int64_t irr_id;
    char irr_rule[INDEX_RULE_MAX];
    char irr_name[INDEX_NAME_MAX];
    int64_t irr_ntags;
};

/*
 * Up to <limit> (at most INDEX_LIST_MAX) repositories with an id greater than <after> (0 for
 * the start), by id, into <out>; *n how many. A caller pages by passing the last id back.
 * 0 or -1.
 */
int index_repos_page(struct index *ix, int64_t after, size_t limit, struct index_repo_row *out,
                     size_t *n);

/*
 * The image under manifest <digest>: every distinct manifest, config and layer it reaches
 * (through an index's children too; a referrer's subject is not part of it). *bytes sums the
 * sizes the index knows (manifests and stored blobs), *parts counts the digests reached,
 * *missing those whose size is not known (not stored here yet). 0 or -1.
 */
int index_image_bytes(struct index *ix, const char *digest, int64_t *bytes, int64_t *parts,
                      int64_t *missing);

/* One tag of a repository with its facts and its image's size (index_image_bytes). */
struct index_tag_row {
    char itr_tag[INDEX_TAG_MAX];
    struct index_tag itr_t;
    int64_t itr_bytes, itr_parts, itr_missing;
};

/*
 * Up to <limit> (at most INDEX_LIST_MAX) tags of <repo> sorted ascending (byte order),
 * strictly after <after> (NULL or "" for the start), with their facts, into <out>; *n how
 * many. 0 or -1.
 */
int index_tags_page(struct index *ix, int64_t repo, const char *after, size_t limit,
                    struct index_tag_row *out, size_t *n);

/*
 * Make <tag> of <repo> due for its upstream check: checked_at becomes <before> when it was
 * later (an older check stays as it is, so stale-if-error keeps counting from it). 1 when the
 * tag exists, 0 when not, -1 on error.
 */
int index_tag_expire(struct index *ix, int64_t repo, const char *tag, int64_t before);

#endif
