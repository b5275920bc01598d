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

/* last_pulled_at = <now> for each of <n> (repo, tag) pairs, in one transaction. 0 or -1. */
int index_tags_pulled(struct index *ix, const int64_t *repos, const char *const *tags, size_t n,
                      int64_t now);

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

/* last_access = <now> for each of <n> digests in one transaction. 0 or -1. */
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

#endif
