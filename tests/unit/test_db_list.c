/*
 * Unit tests for db/db_list.c and proxy/cache/cache_list.c: repositories and tags page by page
 * (cursor, bounded limit), an image's size through an index's children (shared layers once),
 * and expiring a tag in the index and in the catalog's hot copy.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "db_index.h"
#include "util.h"

#define D_IDX "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_M1 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D_M2 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D_CFG "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D_L1 "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D_L2 "sha256:6666666666666666666666666666666666666666666666666666666666666666"
#define D_SUBJ "sha256:7777777777777777777777777777777777777777777777777777777777777777"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define T0 ((int64_t)1764576000)

static struct index *open_mem(void)
{
    char *err = NULL;
    struct index *ix = index_open(":memory:", &err);

    cr_assert_not_null(ix, "index_open: %s", err ? err : "");
    return ix;
}

Test(db_list, repositories_page_by_id)
{
    struct index *ix = open_mem();
    struct index_repo_row rows[4];
    int64_t ids[5], after = 0;
    size_t n, seen = 0;
    char name[32];

    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "test/r%d", i);
        ids[i] = index_repo_id(ix, i % 2 ? "ecr-public" : "docker-hub", name);
        cr_assert_gt(ids[i], 0);
    }
    cr_assert_eq(index_tag_put(ix, ids[1], "a", D_M1, MT_MANIFEST, T0), 0);
    cr_assert_eq(index_tag_put(ix, ids[1], "b", D_M1, MT_MANIFEST, T0), 0);
    for (int page = 0; page < 10; page++) {
        cr_assert_eq(index_repos_page(ix, after, 2, rows, &n), 0);
        if (n == 0)
            break;
        cr_assert_leq(n, 2);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(rows[i].irr_id, ids[seen]);
            snprintf(name, sizeof(name), "test/r%zu", seen);
            cr_assert_str_eq(rows[i].irr_name, name);
            cr_assert_str_eq(rows[i].irr_rule, seen % 2 ? "ecr-public" : "docker-hub");
            cr_assert_eq(rows[i].irr_ntags, seen == 1 ? 2 : 0);
            seen++;
        }
        after = rows[n - 1].irr_id;
    }
    cr_assert_eq(seen, 5, "every repository once (%zu)", seen);
    index_close(ix);
}

/* An index of two platforms sharing a layer, one of them with a config; sizes add up once. */
static void put_image(struct index *ix, int64_t repo)
{
    struct index_child idx_kids[] = {{D_M1, "manifest"}, {D_M2, "manifest"}};
    struct index_child m1_kids[] = {{D_CFG, "config"}, {D_L1, "layer"}, {D_L2, "layer"}};
    struct index_child m2_kids[] = {{D_L1, "layer"}, {D_SUBJ, "subject"}};

    cr_assert_eq(index_manifest_put(ix, repo, D_IDX, MT_INDEX, 300, idx_kids, 2, T0), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_M1, MT_MANIFEST, 500, m1_kids, 3, T0), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_M2, MT_MANIFEST, 400, m2_kids, 2, T0), 0);
    cr_assert_eq(index_blob_put(ix, D_CFG, 10, T0), 0);
    cr_assert_eq(index_blob_put(ix, D_L1, 1000, T0), 0);
    /* D_L2 not stored yet; the subject is no part of the image. */
    cr_assert_eq(index_blob_put(ix, D_SUBJ, 77777, T0), 0);
}

Test(db_list, image_bytes_follow_children_once)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "docker-hub", "test/multi");
    int64_t bytes, parts, missing;

    put_image(ix, repo);
    cr_assert_eq(index_image_bytes(ix, D_IDX, &bytes, &parts, &missing), 0);
    cr_assert_eq(bytes, 300 + 500 + 400 + 10 + 1000, "bytes %lld", (long long)bytes);
    cr_assert_eq(parts, 6, "index, 2 manifests, config, 2 layers (%lld)", (long long)parts);
    cr_assert_eq(missing, 1, "the layer not stored (%lld)", (long long)missing);
    cr_assert_eq(index_image_bytes(ix, D_M2, &bytes, &parts, &missing), 0);
    cr_assert_eq(bytes, 400 + 1000);
    cr_assert_eq(index_image_bytes(ix, D_L2, &bytes, &parts, &missing), 0);
    cr_assert_eq(bytes, 0);
    cr_assert_eq(missing, 1);
    index_close(ix);
}

Test(db_list, tags_page_with_facts_and_expire)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "docker-hub", "test/multi");
    struct index_tag_row rows[3];
    struct index_tag t;
    const char *want[] = {"1", "1.2", "latest", "v2"};
    char after[INDEX_TAG_MAX] = "";
    size_t n, seen = 0;

    put_image(ix, repo);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(index_tag_put(ix, repo, want[3 - i], i == 0 ? D_M1 : D_IDX,
                                   i == 0 ? MT_MANIFEST : MT_INDEX, T0 + (int64_t)i),
                     0);
    for (int page = 0; page < 10; page++) {
        cr_assert_eq(index_tags_page(ix, repo, after, 3, rows, &n), 0);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++, seen++) {
            cr_assert_str_eq(rows[i].itr_tag, want[seen]);
            if (strcmp(rows[i].itr_tag, "v2") == 0) {
                cr_assert_str_eq(rows[i].itr_t.it_digest, D_M1);
                cr_assert_eq(rows[i].itr_bytes, 500 + 10 + 1000);
                cr_assert_eq(rows[i].itr_t.it_checked_at, T0);
            } else {
                cr_assert_str_eq(rows[i].itr_t.it_media_type, MT_INDEX);
                cr_assert_eq(rows[i].itr_bytes, 2210);
            }
        }
        snprintf(after, sizeof(after), "%s", rows[n - 1].itr_tag);
    }
    cr_assert_eq(seen, 4);

    cr_assert_eq(index_tag_expire(ix, repo, "latest", T0 - 100), 1);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &t), 1);
    cr_assert_eq(t.it_checked_at, T0 - 100);
    cr_assert_str_eq(t.it_digest, D_IDX, "the digest stays");
    cr_assert_eq(index_tag_expire(ix, repo, "latest", T0), 1);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &t), 1);
    cr_assert_eq(t.it_checked_at, T0 - 100, "an older check is kept");
    cr_assert_eq(index_tag_expire(ix, repo, "nope", T0), 0);
    index_close(ix);
}

static char dir[64];

static void mk(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_db_list.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(cache_list, expire_updates_the_hot_copy, .init = mk, .fini = rm)
{
    char *err = NULL;
    struct cache *c = cache_open(dir, NULL, &err);
    struct index_tag t, old;
    struct index_tag_row rows[2];
    struct index_repo_row repos[2];
    int64_t repo;
    size_t n;

    cr_assert_not_null(c, "cache_open: %s", err ? err : "");
    repo = cache_repo_confirm(c, cache_repo_id(c, "docker-hub", "library/nginx"));
    cr_assert_gt(repo, 0);
    cr_assert_eq(cache_repo_find(c, "docker-hub", "library/nginx"), repo);
    cr_assert_eq(cache_repo_find(c, "docker-hub", "library/none"), 0);
    cr_assert_eq(cache_tag_put(c, repo, "latest", D_M1, MT_MANIFEST, T0), 0);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1); /* now in the hot map */
    cr_assert_eq(t.it_checked_at, T0);
    cr_assert_eq(cache_tag_expire(c, repo, "latest", T0 - 86400, &old), 1);
    cr_assert_eq(old.it_checked_at, T0);
    cr_assert_str_eq(old.it_digest, D_M1);
    cr_assert_eq(cache_tag_get(c, repo, "latest", &t), 1);
    cr_assert_eq(t.it_checked_at, T0 - 86400, "the hot copy follows the index");
    cr_assert_eq(cache_tag_expire(c, repo, "other", T0, &old), 0);

    /* Pulls batched in memory are in the listing. */
    cache_note_pulled(c, repo, "latest", T0 + 5);
    cr_assert_eq(cache_tags_page(c, repo, NULL, 2, rows, &n, T0 + 7), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(rows[0].itr_t.it_last_pulled_at, T0 + 7);
    cr_assert_eq(cache_repos_page(c, 0, 2, repos, &n, T0 + 8), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(repos[0].irr_name, "library/nginx");
    cr_assert_eq(repos[0].irr_ntags, 1);
    cache_close(c, T0 + 9);
}
