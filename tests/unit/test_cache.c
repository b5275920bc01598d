/*
 * Unit tests for proxy/cache/cache.c, the catalog: pending repositories and their rows, the
 * hot copies staying coherent with the index through every write, a digest known only to
 * the repository it was recorded for, manifests loaded from the store, and reconcile at open.
 * A real store and SQLite file in a temporary directory; times are parameters, no sleeping.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "db_index.h"
#include "store.h"
#include "util.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER "application/vnd.docker.distribution.manifest.v2+json"
#define T0 ((int64_t)1764576000)

static char dir[64];

static void mk(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_cache.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static struct cache *open_cache(long *dropped)
{
    char *err = NULL;
    struct cache *c = cache_open(dir, dropped, &err);

    cr_assert_not_null(c, "cache_open: %s", err ? err : "");
    return c;
}

static uint64_t hits(struct cache *c, enum cache_map m)
{
    uint64_t h, b;

    cache_map_stats(c, m, &h, &b);
    return h;
}

TestSuite(cache, .init = mk, .fini = rm);

Test(cache, a_repository_gets_its_row_only_when_confirmed)
{
    struct cache *c = open_cache(NULL);
    int64_t p = cache_repo_id(c, "hub", "library/alpine");
    int64_t q = cache_repo_id(c, "hub", "made/up");
    int64_t row;

    cr_assert_lt(p, -1, "a repository upstream has not answered for is pending (%lld)",
                 (long long)p);
    cr_assert_eq(cache_repo_id(c, "hub", "library/alpine"), p, "the same pending id again");
    cr_assert_neq(q, p);
    row = cache_repo_confirm(c, p);
    cr_assert_gt(row, 0);
    cr_assert_eq(cache_repo_confirm(c, p), row, "the pending id still resolves to the row");
    cr_assert_eq(cache_repo_id(c, "hub", "library/alpine"), row);
    cr_assert_eq(cache_repo_confirm(c, row), row, "a row is its own confirmation");
    cache_close(c, T0);

    c = open_cache(NULL);
    cr_assert_eq(cache_repo_id(c, "hub", "library/alpine"), row, "the row survives");
    cr_assert_lt(cache_repo_id(c, "hub", "made/up"), -1, "the probe left no row");
    cache_close(c, T0);
}

Test(cache, tag_writes_keep_the_copy_in_memory_coherent)
{
    struct cache *c = open_cache(NULL);
    int64_t repo = cache_repo_id(c, "hub", "library/alpine");
    struct index_tag t;
    uint64_t h0;

    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 0);
    cr_assert_eq(cache_tag_put(c, repo, "latest", D1, MT_MANIFEST, T0), 0, "confirms the repo");
    repo = cache_repo_id(c, "hub", "library/alpine");
    cr_assert_gt(repo, 0);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1);
    cr_assert_str_eq(t.it_digest, D1);
    cr_assert_eq(t.it_checked_at, T0);
    h0 = hits(c, CACHE_MAP_TAGS);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1);
    cr_assert_eq(hits(c, CACHE_MAP_TAGS), h0 + 1, "the second read comes from memory");

    cr_assert_eq(cache_tag_put(c, repo, "latest", D2, MT_DOCKER, T0 + 60), 0);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1);
    cr_assert_str_eq(t.it_digest, D2, "a moved tag is never answered from the old copy");
    cr_assert_str_eq(t.it_media_type, MT_DOCKER);
    cr_assert_eq(t.it_checked_at, T0 + 60);
    cr_assert_eq(t.it_changed_at, T0 + 60);

    cr_assert_eq(cache_tag_checked(c, repo, "latest", T0 + 86400), 0);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1);
    cr_assert_eq(t.it_checked_at, T0 + 86400, "a check moves checked_at, in memory too");
    cr_assert_eq(t.it_changed_at, T0 + 60);
    cache_close(c, T0);
}

Test(cache, a_digest_is_known_only_where_it_was_recorded)
{
    struct cache *c = open_cache(NULL);
    int64_t a = cache_repo_id(c, "hub", "team/a"), b = cache_repo_id(c, "hub", "team/b");

    cr_assert_eq(cache_repo_has(c, a, D1), 0);
    cr_assert_eq(cache_repo_add(c, a, D1), 0);
    a = cache_repo_id(c, "hub", "team/a");
    cr_assert_eq(cache_repo_has(c, a, D1), 1);
    cr_assert_eq(cache_repo_has(c, b, D1), 0, "another repository does not hold it");
    cr_assert_eq(cache_repo_has(c, a, D2), 0);
    cache_close(c, T0);
}

Test(cache, a_stored_manifest_is_loaded_indexed_and_remembered)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER "\",\"config\":{\"mediaType\":"
        "\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" D2 "\",\"size\":7},"
        "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"digest\":\"" D3 "\",\"size\":9}]}";
    struct cache *c = open_cache(NULL);
    int64_t repo = cache_repo_id(c, "hub", "library/alpine");
    const char *b = NULL, *mt;
    size_t len = 0, n = 0;
    char type[256];
    char *copy, *err = NULL;
    uint64_t h0;

    cr_assert_null(cache_manifest_load(c, &repo, D1, &b, &len, T0), "not stored: NULL");
    cr_assert_eq(store_put_small(cache_store(c), D1, body, strlen(body), &err), 0);
    cr_assert(cache_has(c, D1));
    mt = cache_manifest_load(c, &repo, D1, &b, &len, T0);
    cr_assert_not_null(mt);
    cr_assert_str_eq(mt, MT_DOCKER, "the media type from the manifest's own field");
    cr_assert_eq(len, strlen(body));
    cr_assert_eq(memcmp(b, body, len), 0);
    cr_assert_gt(repo, 0, "loading for a pending repository confirmed it");
    cr_assert_eq(cache_repo_has(c, repo, D1), 1, "indexed for the repository it was loaded for");
    cr_assert_eq(cache_manifest_info(c, D1, type, sizeof(type), NULL), 1);
    cr_assert_str_eq(type, MT_DOCKER);
    cr_assert_eq(cache_repo_has(c, repo, D3), 0, "its layers are not vouched for by it");

    h0 = hits(c, CACHE_MAP_MANIFESTS);
    cr_assert_not_null(cache_manifest_load(c, &repo, D1, &b, &len, T0));
    cr_assert_eq(hits(c, CACHE_MAP_MANIFESTS), h0 + 1, "the second load comes from memory");
    copy = cache_manifest_copy(c, D1, &n);
    cr_assert_not_null(copy);
    cr_assert_eq(n, strlen(body));
    cr_assert_eq(memcmp(copy, body, n), 0);
    free(copy);
    cache_close(c, T0);
}

Test(cache, open_reconciles_rows_with_files)
{
    struct cache *c = open_cache(NULL);
    int64_t repo = cache_repo_confirm(c, cache_repo_id(c, "hub", "library/alpine"));
    char *err = NULL;
    long dropped = -7;
    int fd;
    int64_t size;

    cr_assert_eq(store_put_small(cache_store(c), D1, "kept", 4, &err), 0);
    cache_blob_stored(c, D1, 4, repo, T0);
    cache_blob_stored(c, D2, 4, repo, T0); /* a row whose file never landed */
    cache_close(c, T0);

    c = open_cache(&dropped);
    cr_assert_geq(dropped, 1, "the row without a file is dropped (%ld)", dropped);
    cr_assert_eq(cache_repo_has(c, repo, D1), 1);
    cr_assert_eq(cache_repo_has(c, repo, D2), 0);
    fd = cache_open_blob(c, D1, &size);
    cr_assert_geq(fd, 0);
    cr_assert_eq(size, 4);
    close(fd);
    cr_assert_eq(cache_open_blob(c, D2, &size), -1);
    cache_close(c, T0);
}

Test(cache, a_file_the_index_lost_gets_its_row_back)
{
    struct cache *c = open_cache(NULL);
    struct index *ix;
    char *err = NULL, path[128];
    int64_t size = -1;

    cr_assert_eq(store_put_small(cache_store(c), D3, "orphan", 6, &err), 0);
    cache_blob_repair(c, D3, T0);
    cache_close(c, T0);
    snprintf(path, sizeof(path), "%s/index.db", dir);
    ix = index_open(path, &err);
    cr_assert_not_null(ix);
    cr_assert_eq(index_blob_get(ix, D3, &size), 1);
    cr_assert_eq(size, 6);
    index_close(ix);
}

Test(cache, open_fails_with_one_line_on_an_unusable_directory)
{
    char *err = NULL;
    char file[96];
    FILE *f;

    snprintf(file, sizeof(file), "%s/not-a-dir", dir);
    f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_null(cache_open(file, NULL, &err));
    cr_assert_not_null(err);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    free(err);
}
