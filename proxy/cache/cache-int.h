/*
 * The catalog's own declarations, shared by its files (cache.c: lookups and writes;
 * cache_gc.c: the byte budget and lifecycle sweep; cache_list.c: the admin listings) and by
 * nothing else.
 */
#ifndef CACHE_INT_H
#define CACHE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "policy_rules.h"

struct hot;
struct index;
struct store;

#define CACHE_MAGIC 0x43414348u /* "CACH" */

#define HOT_REPOS 4096
#define HOT_TAGS 16384
#define HOT_KNOWN 65536
#define HOT_MANIFESTS 2048
#define HOT_MANIFEST_BYTES (16 * 1024 * 1024)
#define CACHE_BATCH_MAX 4096
#define REPO_KEY_MAX (RULES_NAME_MAX + 256)

struct cache {
    unsigned magic;
    struct store *st;
    struct index *ix;

    struct hot *hot_repos;     /* "rule\nname" -> repository id */
    struct hot *hot_tags;      /* "repo\ntag" -> struct index_tag */
    struct hot *hot_known;     /* "repo\ndigest" -> "" (index_repo_has said 1) */
    struct hot *hot_manifests; /* digest -> media type, NUL, manifest bytes */
    /* Pending repositories: "rule\nname" -> id and "#id" -> "rule\nname" (cache.h). */
    struct hot *hot_pending;
    int64_t next_pending;

    /* Hits are written to the index in batches, off the hot path of every request. */
    int64_t *pulled_repos;
    char **pulled_tags;
    int64_t *pulled_counts; /* pulls of the same tag in a row count in one entry */
    size_t npulled;
    char **touched;
    size_t ntouched;

    /* The byte budget (cache_gc.c): bytes of every stored blob and manifest the index holds. */
    int64_t used_bytes;
    /* Bytes the last sweeps unlinked (since freed_at, within a minute): readers holding them
     * keep the space taken, so the free-space floor counts them as on their way. */
    int64_t freed_recent, freed_at;
};

/* "repo\n<s>" into <out>: the key of the tags and known maps. */
void cache_hot_key2(char *out, size_t size, int64_t repo, const char *s);

#endif
