/*
 * The catalog (cache.h): the store, the index and their in-memory copies.
 *
 * Every read tries memory first and fills it from the index; every write goes to the index
 * and then drops or updates the copy, so a copy is never newer or older than the row. Only
 * positive answers are kept ("known in this repository" never becomes false while the proxy
 * runs: the index drops such rows only in index_reconcile, at open).
 */
#include "config.h"

#include "cache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache-int.h"
#include "hot.h"
#include "log.h"
#include "manifest.h"
#include "policy_rules.h"
#include "route.h"
#include "store.h"
#include "util.h"

/* 1 when the index has no row for <digest> (blob or manifest): storing it adds to the bytes
 * used. */
static int is_new_content(struct cache *c, const char *digest)
{
    int64_t sz;

    return index_blob_get(c->ix, digest, &sz) == 0 &&
           index_manifest_get(c->ix, digest, NULL, 0, NULL) == 0;
}

struct cache *cache_open(const char *data_dir, long *dropped, char **err)
{
    struct cache *c = xcalloc(1, sizeof(*c));
    char path[STORE_PATH_MAX];
    long n;

    *err = NULL;
    c->magic = CACHE_MAGIC;
    c->st = store_open(data_dir, err);
    if (c->st == NULL)
        goto fail;
    snprintf(path, sizeof(path), "%s/index.db", data_dir);
    c->ix = index_open(path, err);
    if (c->ix == NULL)
        goto fail;
    n = index_reconcile(c->ix, store_exists_cb, c->st);
    if (n == -1) {
        /* The store could not say what it holds (EACCES, EIO): drop nothing, start nothing. */
        const char *why = store_last_error(c->st);
        *err = xasprintf("reconcile: %s", why != NULL ? why : "cannot read the index");
        goto fail;
    }
    if (dropped != NULL)
        *dropped = n;
    c->used_bytes = index_used_bytes(c->ix);
    if (c->used_bytes == -1) {
        *err = xasprintf("cannot sum the stored bytes in %s", path);
        goto fail;
    }
    c->hot_repos = hot_new(HOT_REPOS, 1024 * 1024);
    c->hot_tags = hot_new(HOT_TAGS, 8 * 1024 * 1024);
    c->hot_known = hot_new(HOT_KNOWN, 8 * 1024 * 1024);
    c->hot_manifests = hot_new(HOT_MANIFESTS, HOT_MANIFEST_BYTES);
    c->hot_pending = hot_new(HOT_REPOS, 1024 * 1024);
    c->next_pending = -2;
    c->pulled_repos = xcalloc(CACHE_BATCH_MAX, sizeof(*c->pulled_repos));
    c->pulled_tags = xcalloc(CACHE_BATCH_MAX, sizeof(*c->pulled_tags));
    c->pulled_counts = xcalloc(CACHE_BATCH_MAX, sizeof(*c->pulled_counts));
    c->touched = xcalloc(CACHE_BATCH_MAX, sizeof(*c->touched));
    return c;
fail:
    index_close(c->ix);
    store_close(c->st);
    c->magic = 0;
    free(c);
    return NULL;
}

void cache_close(struct cache *c, int64_t now)
{
    if (c == NULL)
        return;
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    cache_flush(c, now);
    hot_free(c->hot_repos);
    hot_free(c->hot_tags);
    hot_free(c->hot_known);
    hot_free(c->hot_manifests);
    hot_free(c->hot_pending);
    free(c->pulled_repos);
    free(c->pulled_tags);
    free(c->pulled_counts);
    free(c->touched);
    index_close(c->ix);
    store_close(c->st);
    c->magic = 0;
    free(c);
}

struct store *cache_store(struct cache *c)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    return c->st;
}

struct index *cache_index(struct cache *c)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    return c->ix;
}

void cache_hot_key2(char *out, size_t size, int64_t repo, const char *s)
{
    snprintf(out, size, "%" PRId64 "\n%s", repo, s);
}

/* ---- repositories ----------------------------------------------------------------------- */

int64_t cache_repo_id(struct cache *c, const char *rule, const char *name)
{
    char key[REPO_KEY_MAX], rkey[32];
    const void *v;
    size_t n;
    int64_t id;

    snprintf(key, sizeof(key), "%s\n%s", rule, name);
    v = hot_get(c->hot_repos, key, &n);
    if (v != NULL && n == sizeof(id)) {
        memcpy(&id, v, sizeof(id));
        return id;
    }
    id = index_repo_find(c->ix, rule, name);
    if (id > 0) {
        hot_put(c->hot_repos, key, &id, sizeof(id));
        return id;
    }
    if (id == -1)
        return -1;
    v = hot_get(c->hot_pending, key, &n);
    if (v != NULL && n == sizeof(id)) {
        memcpy(&id, v, sizeof(id));
        return id;
    }
    id = c->next_pending--;
    hot_put(c->hot_pending, key, &id, sizeof(id));
    snprintf(rkey, sizeof(rkey), "#%" PRId64, id);
    hot_put(c->hot_pending, rkey, key, strlen(key) + 1);
    return id;
}

int64_t cache_repo_confirm(struct cache *c, int64_t repo)
{
    char rkey[32], key[REPO_KEY_MAX];
    const char *v, *nl;
    size_t n;
    int64_t id;

    if (repo > 0 || repo == -1)
        return repo;
    snprintf(rkey, sizeof(rkey), "#%" PRId64, repo);
    v = hot_get(c->hot_pending, rkey, &n);
    if (v == NULL || n == 0 || n > sizeof(key) || v[n - 1] != '\0')
        return -1;
    memcpy(key, v, n);
    nl = strchr(key, '\n');
    if (nl == NULL)
        return -1;
    key[nl - key] = '\0';
    id = index_repo_id(c->ix, key, nl + 1);
    key[nl - key] = '\n';
    if (id <= 0)
        return -1;
    hot_put(c->hot_repos, key, &id, sizeof(id));
    /* New requests find the row now; "#id" stays until evicted, so requests that already
     * hold the pending id (a fetch's other waiters, a fill's) resolve to the same row. */
    hot_del(c->hot_pending, key);
    return id;
}

int cache_repo_has(struct cache *c, int64_t repo, const char *digest)
{
    char key[INDEX_DIGEST_MAX + 32];
    int rc;

    cache_hot_key2(key, sizeof(key), repo, digest);
    if (hot_get(c->hot_known, key, NULL) != NULL)
        return 1;
    rc = index_repo_has(c->ix, repo, digest);
    if (rc == 1)
        hot_put(c->hot_known, key, "", 0);
    return rc;
}

int cache_repo_add(struct cache *c, int64_t repo, const char *digest)
{
    char key[INDEX_DIGEST_MAX + 32];
    int rc;

    repo = cache_repo_confirm(c, repo);
    if (repo <= 0)
        return -1;
    rc = index_repo_digest_add(c->ix, repo, digest);
    if (rc == 0) {
        cache_hot_key2(key, sizeof(key), repo, digest);
        hot_put(c->hot_known, key, "", 0);
    }
    return rc;
}

/* ---- tags ------------------------------------------------------------------------------- */

int cache_tag_get(struct cache *c, int64_t repo, const char *tag, struct index_tag *out)
{
    char key[ROUTE_REF_MAX + 32];
    const void *v;
    size_t n;
    int rc;

    cache_hot_key2(key, sizeof(key), repo, tag);
    v = hot_get(c->hot_tags, key, &n);
    if (v != NULL && n == sizeof(*out)) {
        memcpy(out, v, sizeof(*out));
        return 1;
    }
    rc = index_tag_get(c->ix, repo, tag, out);
    if (rc == 1)
        hot_put(c->hot_tags, key, out, sizeof(*out));
    return rc;
}

static void tag_forget(struct cache *c, int64_t repo, const char *tag)
{
    char key[ROUTE_REF_MAX + 32];

    cache_hot_key2(key, sizeof(key), repo, tag);
    hot_del(c->hot_tags, key);
}

int cache_tag_put(struct cache *c, int64_t repo, const char *tag, const char *digest,
                  const char *media_type, int64_t now)
{
    int rc;

    repo = cache_repo_confirm(c, repo);
    if (repo <= 0)
        return -1;
    rc = index_tag_put(c->ix, repo, tag, digest, media_type, now);
    tag_forget(c, repo, tag);
    return rc;
}

int cache_tag_checked(struct cache *c, int64_t repo, const char *tag, int64_t now)
{
    int rc = index_tag_checked(c->ix, repo, tag, now);

    tag_forget(c, repo, tag);
    return rc;
}

int cache_tags_list(struct cache *c, int64_t repo, char ***tags, size_t *n)
{
    return index_tags_list(c->ix, repo, NULL, -1, tags, n);
}

/* ---- manifests -------------------------------------------------------------------------- */

int cache_has(struct cache *c, const char *digest)
{
    return store_has(c->st, digest);
}

int cache_manifest_info(struct cache *c, const char *digest, char *mt, size_t mt_size,
                        int64_t *size)
{
    return index_manifest_get(c->ix, digest, mt, mt_size, size);
}

static const char *const manifest_kinds[] = {
    [MANIFEST_REF_CONFIG] = "config",     [MANIFEST_REF_LAYER] = "layer",
    [MANIFEST_REF_MANIFEST] = "manifest", [MANIFEST_REF_SUBJECT] = "subject",
    [MANIFEST_REF_BLOB] = "blob",
};

int cache_manifest_put(struct cache *c, int64_t *repo, const char *digest, const char *media_type,
                       const char *body, size_t len, int64_t now)
{
    struct manifest_info mi;
    const char *err = NULL;
    struct index_child *kids = NULL;
    int rc, fresh;

    *repo = cache_repo_confirm(c, *repo);
    if (*repo <= 0)
        return -1;
    fresh = is_new_content(c, digest);
    memset(&mi, 0, sizeof(mi));
    if (manifest_parse(body, len, media_type, &mi, &err) == -1) {
        rc = index_manifest_put(c->ix, *repo, digest, media_type, (int64_t)len, NULL, 0, now);
        if (rc == 0 && fresh)
            c->used_bytes += (int64_t)len;
        return rc;
    }
    if (mi.mi_nrefs > 0)
        kids = xcalloc(mi.mi_nrefs, sizeof(*kids));
    for (size_t i = 0; i < mi.mi_nrefs; i++) {
        kids[i].ic_digest = mi.mi_refs[i].mr_digest;
        kids[i].ic_kind = manifest_kinds[mi.mi_refs[i].mr_kind];
    }
    rc = index_manifest_put(c->ix, *repo, digest, media_type, (int64_t)len, kids, mi.mi_nrefs, now);
    if (rc == 0 && fresh)
        c->used_bytes += (int64_t)len;
    free(kids);
    manifest_info_free(&mi);
    return rc;
}

void cache_manifest_remember(struct cache *c, const char *digest, const char *media_type,
                             const char *body, size_t len)
{
    size_t mtl = strlen(media_type);
    char *v = xmalloc(mtl + 1 + len);

    memcpy(v, media_type, mtl + 1);
    memcpy(v + mtl + 1, body, len);
    hot_put(c->hot_manifests, digest, v, mtl + 1 + len);
    free(v);
}

/* The in-memory manifest <digest>: its media type, bytes and length; NULL when not held. */
static const char *manifest_recall(struct cache *c, const char *digest, const char **body,
                                   size_t *len)
{
    size_t n;
    const char *v = hot_get(c->hot_manifests, digest, &n);
    size_t mtl;

    if (v == NULL)
        return NULL;
    mtl = strnlen(v, n);
    if (mtl == n)
        return NULL;
    *body = v + mtl + 1;
    *len = n - mtl - 1;
    return v;
}

/*
 * The media type stored manifest <digest> (<body>, <len>) is served with: the index's, else its
 * own mediaType field; indexed for *repo when that repository did not hold it.
 */
static void manifest_media_type(struct cache *c, int64_t *repo, const char *digest,
                                const char *body, size_t len, char *out, size_t size, int64_t now)
{
    int64_t sz;
    struct manifest_info mi;
    const char *err;

    if (index_manifest_get(c->ix, digest, out, size, &sz) == 1 && out[0] != '\0')
        return;
    str_copy(out, size, "application/vnd.oci.image.manifest.v1+json");
    memset(&mi, 0, sizeof(mi));
    if (manifest_parse(body, len, NULL, &mi, &err) == 0 && mi.mi_media_type[0] != '\0')
        str_copy(out, size, mi.mi_media_type);
    if (cache_repo_has(c, *repo, digest) != 1)
        cache_manifest_put(c, repo, digest, out, body, len, now);
    manifest_info_free(&mi);
}

const char *cache_manifest_load(struct cache *c, int64_t *repo, const char *digest,
                                const char **body, size_t *len, int64_t now)
{
    const char *mt = manifest_recall(c, digest, body, len);
    char type[INDEX_MEDIA_TYPE_MAX];
    char *bytes;
    size_t n;

    if (mt != NULL)
        return mt;
    if (!store_has(c->st, digest))
        return NULL;
    bytes = store_read_small(c->st, digest, MANIFEST_MAX_BYTES, &n);
    if (bytes == NULL)
        return NULL;
    manifest_media_type(c, repo, digest, bytes, n, type, sizeof(type), now);
    cache_manifest_remember(c, digest, type, bytes, n);
    free(bytes);
    return manifest_recall(c, digest, body, len);
}

char *cache_manifest_copy(struct cache *c, const char *digest, size_t *len)
{
    const char *body = NULL;
    char *copy;

    if (manifest_recall(c, digest, &body, len) == NULL)
        return store_read_small(c->st, digest, MANIFEST_MAX_BYTES, len);
    copy = xmalloc(*len + 1);
    memcpy(copy, body, *len);
    copy[*len] = '\0';
    return copy;
}

int cache_referrers(struct cache *c, const char *digest, char ***digests, size_t *n)
{
    return index_referrers(c->ix, digest, digests, n);
}

/* ---- blobs ------------------------------------------------------------------------------ */

int cache_open_blob(struct cache *c, const char *digest, int64_t *size)
{
    return store_open_blob(c->st, digest, size);
}

void cache_blob_stored(struct cache *c, const char *digest, int64_t size, int64_t repo, int64_t now)
{
    int fresh = is_new_content(c, digest);

    if (index_blob_put(c->ix, digest, size, now) == 0 && fresh)
        c->used_bytes += size;
    cache_repo_add(c, repo, digest);
}

void cache_blob_repair(struct cache *c, const char *digest, int64_t now)
{
    int64_t size;

    if (index_blob_get(c->ix, digest, &size) == 0 &&
        index_manifest_get(c->ix, digest, NULL, 0, NULL) == 0) {
        int fd = store_open_blob(c->st, digest, &size);
        if (fd != -1) {
            close(fd);
            if (index_blob_put(c->ix, digest, size, now) == 0)
                c->used_bytes += size;
        }
    }
}

int64_t cache_free_bytes(struct cache *c)
{
    return store_free_bytes(c->st);
}

/* ---- batched stamps --------------------------------------------------------------------- */

void cache_flush(struct cache *c, int64_t now)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    if (c->npulled > 0) {
        if (index_tags_pulled(c->ix, c->pulled_repos, (const char *const *)c->pulled_tags,
                              c->pulled_counts, c->npulled, now) == -1)
            log_event(LOG_WARN, "index-write-failed", "what", "last_pulled_at", NULL);
        for (size_t i = 0; i < c->npulled; i++)
            free(c->pulled_tags[i]);
        c->npulled = 0;
    }
    if (c->ntouched > 0) {
        if (index_blobs_touch(c->ix, (const char *const *)c->touched, c->ntouched, now) == -1)
            log_event(LOG_WARN, "index-write-failed", "what", "last_access", NULL);
        for (size_t i = 0; i < c->ntouched; i++)
            free(c->touched[i]);
        c->ntouched = 0;
    }
}

void cache_note_pulled(struct cache *c, int64_t repo, const char *tag, int64_t now)
{
    if (c->npulled > 0 && c->pulled_repos[c->npulled - 1] == repo &&
        strcmp(c->pulled_tags[c->npulled - 1], tag) == 0) {
        c->pulled_counts[c->npulled - 1]++;
        return;
    }
    if (c->npulled == CACHE_BATCH_MAX)
        cache_flush(c, now);
    c->pulled_repos[c->npulled] = repo;
    c->pulled_counts[c->npulled] = 1;
    c->pulled_tags[c->npulled++] = xstrdup(tag);
}

void cache_note_touched(struct cache *c, const char *digest, int64_t now)
{
    if (c->ntouched > 0 && strcmp(c->touched[c->ntouched - 1], digest) == 0)
        return;
    if (c->ntouched == CACHE_BATCH_MAX)
        cache_flush(c, now);
    c->touched[c->ntouched++] = xstrdup(digest);
}

/* ---- statistics ------------------------------------------------------------------------- */

const char *cache_map_stats(const struct cache *c, enum cache_map which, uint64_t *hits,
                            uint64_t *bytes)
{
    static const char *const names[CACHE_NMAPS] = {"repos", "tags", "known", "manifests"};
    const struct hot *maps[CACHE_NMAPS] = {c->hot_repos, c->hot_tags, c->hot_known,
                                           c->hot_manifests};
    struct hot_stats hs;

    hot_get_stats(maps[which], &hs);
    *hits = hs.hs_hits;
    *bytes = hs.hs_bytes;
    return names[which];
}
