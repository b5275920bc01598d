/* Unit tests for db/db_index.c: schema and migrations, tags, manifests, reachability, reconcile. */
#include "config.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_index.h"
#include "util.h"

#define D_IDX "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D_MAN "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D_CFG "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D_L1 "sha256:4444444444444444444444444444444444444444444444444444444444444444"
#define D_L2 "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define D_SIG "sha256:6666666666666666666666666666666666666666666666666666666666666666"
#define D_SBOM "sha256:7777777777777777777777777777777777777777777777777777777777777777"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"

static struct index *open_mem(void)
{
    char *err = NULL;
    struct index *ix = index_open(":memory:", &err);

    cr_assert_not_null(ix, "index_open: %s", err ? err : "");
    cr_assert_null(err);
    return ix;
}

/* A temporary directory holding index.db; rm_tmp removes the database, its WAL and the dir. */
struct tmpdb {
    char dir[64];
    char path[128];
};

static void mk_tmp(struct tmpdb *t)
{
    cr_assert_eq(str_copy(t->dir, sizeof(t->dir), "/tmp/ecr-ptc-index-XXXXXX"), 0);
    cr_assert_not_null(mkdtemp(t->dir));
    cr_assert_geq(snprintf(t->path, sizeof(t->path), "%s/index.db", t->dir), 0);
}

static void rm_tmp(struct tmpdb *t)
{
    const char *suffix[] = {"", "-wal", "-shm"};

    for (size_t i = 0; i < ARRAY_LEN(suffix); i++) {
        char *p = xasprintf("%s%s", t->path, suffix[i]);
        unlink(p);
        free(p);
    }
    rmdir(t->dir);
}

/* A second, raw connection to <path>, to look where the API does not. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v;

    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sqlite3_errmsg(db));
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Column <col> of every row of <sql>, each followed by a newline, in a fresh string. */
static char *raw_text_rows(sqlite3 *db, const char *sql, int col)
{
    sqlite3_stmt *s = NULL;
    char *acc = xstrdup("");

    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    while (sqlite3_step(s) == SQLITE_ROW) {
        char *next = xasprintf("%s%s\n", acc, (const char *)sqlite3_column_text(s, col));
        free(acc);
        acc = next;
    }
    sqlite3_finalize(s);
    return acc;
}

static void expect_strings(char **v, size_t n, const char *const *want, size_t nwant)
{
    cr_assert_eq(n, nwant, "got %zu strings, want %zu", n, nwant);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(v[i], want[i], "[%zu]", i);
}

Test(open, memory_and_integrity)
{
    struct index *ix = open_mem();

    cr_assert_eq(index_integrity_ok(ix), 1);
    index_close(ix);
    index_close(NULL);
}

Test(open, bad_path_reports)
{
    char *err = NULL;
    struct index *ix = index_open("/nonexistent-dir/for/sure/index.db", &err);

    cr_assert_null(ix);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "/nonexistent-dir/for/sure/index.db") != NULL, "%s", err);
    free(err);
}

Test(open, file_wal_and_reopen_idempotent)
{
    struct tmpdb t;
    struct index_tag tag;
    char *err = NULL, *schema1, *schema2;
    struct index *ix;
    sqlite3 *db;
    int64_t repo, version;

    mk_tmp(&t);
    ix = index_open(t.path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    repo = index_repo_id(ix, "ecr-public", "nginx/nginx");
    cr_assert_gt(repo, 0);
    cr_assert_eq(index_tag_put(ix, repo, "latest", D_MAN, MT_MANIFEST, 100), 0);
    index_close(ix);

    db = raw_open(t.path);
    schema1 = raw_text_rows(db, "SELECT sql FROM sqlite_master ORDER BY name", 0);
    version = raw_int(db, "PRAGMA user_version");
    cr_assert_gt(version, 0);
    sqlite3_close(db);

    ix = index_open(t.path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    cr_assert_eq(index_repo_id(ix, "ecr-public", "nginx/nginx"), repo);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 1);
    cr_assert_str_eq(tag.it_digest, D_MAN);
    cr_assert_eq(index_integrity_ok(ix), 1);

    /* While our connection is open, a second one sees the WAL the first one set. */
    db = raw_open(t.path);
    cr_assert_eq(access(t.path, F_OK), 0);
    {
        char *mode = raw_text_rows(db, "PRAGMA journal_mode", 0);
        cr_assert_str_eq(mode, "wal\n");
        free(mode);
    }
    cr_assert_eq(raw_int(db, "PRAGMA user_version"), version);
    schema2 = raw_text_rows(db, "SELECT sql FROM sqlite_master ORDER BY name", 0);
    cr_assert_str_eq(schema1, schema2, "reopening changed the schema");
    sqlite3_close(db);
    index_close(ix);

    free(schema1);
    free(schema2);
    rm_tmp(&t);
}

/* A new index.db in a fresh temp dir <t>, closed again, and a raw connection to it. */
static sqlite3 *fresh_raw(struct tmpdb *t)
{
    char *err = NULL;
    struct index *ix;

    mk_tmp(t);
    ix = index_open(t->path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    index_close(ix);
    return raw_open(t->path);
}

Test(open, newer_schema_refused)
{
    struct tmpdb t;
    char *err = NULL;
    struct index *ix;
    sqlite3 *db;

    db = fresh_raw(&t);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    ix = index_open(t.path, &err);
    cr_assert_null(ix);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "index.db schema version 999 is newer than this binary (") == err,
              "unexpected error: %s", err);
    free(err);
    rm_tmp(&t);
}

Test(open, v2_drops_marks_made_from_descriptor_lists)
{
    struct tmpdb t;
    char *err = NULL;
    struct index *ix;
    sqlite3 *db;

    /* A version-1 database: the manifest's layer was marked known from its descriptor list.
     * Versions 1 and 2 have the same tables; what version 3 added goes. */
    db = fresh_raw(&t);
    cr_assert_eq(sqlite3_exec(db,
                              "DROP INDEX tags_repo_digest; ALTER TABLE tags DROP COLUMN pulls;"
                              "ALTER TABLE manifests DROP COLUMN last_pulled_at;"
                              "DROP TABLE ecr_push; DROP TABLE ecr_blobs;"
                              "PRAGMA user_version = 1;"
                              "INSERT INTO repositories (id, rule, name) VALUES (1, 'r', 'evil');"
                              "INSERT INTO manifests VALUES ('" D_MAN "', 'x', 10, 1);"
                              "INSERT INTO manifest_refs VALUES ('" D_MAN "', '" D_L1 "', 'layer');"
                              "INSERT INTO repo_digests VALUES (1, '" D_MAN "');"
                              "INSERT INTO repo_digests VALUES (1, '" D_L1 "');"
                              "INSERT INTO repo_digests VALUES (1, '" D_L2 "');"
                              "INSERT INTO manifests VALUES ('" D_IDX "', 'x', 10, 1);"
                              "INSERT INTO repo_digests VALUES (1, '" D_IDX "');"
                              "INSERT INTO manifest_refs VALUES ('" D_IDX "', '" D_MAN "',"
                              " 'manifest');"
                              "INSERT INTO tags VALUES (1, 'pinned', '" D_MAN "', 'x', 50, 50, 0);"
                              "INSERT INTO tags VALUES (1, 'index', '" D_IDX "', 'x', 50, 50, 0);",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    ix = index_open(t.path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    cr_assert_eq(index_repo_has(ix, 1, D_IDX), 1, "the top manifest's own mark went");
    cr_assert_eq(index_repo_has(ix, 1, D_MAN), 0, "an index child's mark survived");
    cr_assert_eq(index_repo_has(ix, 1, D_L1), 0, "a descriptor-made mark survived");
    cr_assert_eq(index_repo_has(ix, 1, D_L2), 1, "a mark nothing references is a real fetch");
    {
        struct index_tag tg;
        cr_assert_eq(index_tag_get(ix, 1, "pinned", &tg), 1);
        cr_assert_eq(tg.it_checked_at, 0, "a tag pinned to an index's child is not re-checked");
        cr_assert_eq(index_tag_get(ix, 1, "index", &tg), 1);
        cr_assert_eq(tg.it_checked_at, 50);
    }
    index_close(ix);
    rm_tmp(&t);
}

Test(repo, id_create_and_lookup)
{
    struct index *ix = open_mem();
    int64_t a = index_repo_id(ix, "ecr-public", "nginx/nginx");
    int64_t b = index_repo_id(ix, "ecr-public", "docker/library/redis");
    int64_t c = index_repo_id(ix, "docker-hub", "nginx/nginx");

    cr_assert_gt(a, 0);
    cr_assert_gt(b, 0);
    cr_assert_gt(c, 0);
    cr_assert_neq(a, b);
    cr_assert_neq(a, c);
    cr_assert_neq(b, c);
    cr_assert_eq(index_repo_id(ix, "ecr-public", "nginx/nginx"), a);
    cr_assert_eq(index_repo_id(ix, "docker-hub", "nginx/nginx"), c);
    index_close(ix);
}

Test(tag, put_get)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    struct index_tag tag;

    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 0);
    cr_assert_eq(index_tag_put(ix, repo, "latest", D_MAN, MT_MANIFEST, 1000), 0);
    memset(&tag, 0x5a, sizeof(tag));
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 1);
    cr_assert_str_eq(tag.it_digest, D_MAN);
    cr_assert_str_eq(tag.it_media_type, MT_MANIFEST);
    cr_assert_eq(tag.it_checked_at, 1000);
    cr_assert_eq(tag.it_changed_at, 1000);
    cr_assert_eq(tag.it_last_pulled_at, 0);
    /* The same tag in another repository is another tag. */
    cr_assert_eq(index_tag_get(ix, index_repo_id(ix, "r", "other"), "latest", &tag), 0);
    index_close(ix);
}

Test(tag, changed_at_moves_only_on_new_digest)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    struct index_tag tag;

    cr_assert_eq(index_tag_put(ix, repo, "v1", D_MAN, MT_MANIFEST, 1000), 0);
    cr_assert_eq(index_tag_put(ix, repo, "v1", D_MAN, MT_MANIFEST, 2000), 0);
    cr_assert_eq(index_tag_get(ix, repo, "v1", &tag), 1);
    cr_assert_eq(tag.it_checked_at, 2000);
    cr_assert_eq(tag.it_changed_at, 1000);

    cr_assert_eq(index_tag_put(ix, repo, "v1", D_IDX, MT_INDEX, 3000), 0);
    cr_assert_eq(index_tag_get(ix, repo, "v1", &tag), 1);
    cr_assert_str_eq(tag.it_digest, D_IDX);
    cr_assert_str_eq(tag.it_media_type, MT_INDEX);
    cr_assert_eq(tag.it_checked_at, 3000);
    cr_assert_eq(tag.it_changed_at, 3000);

    cr_assert_eq(index_tag_checked(ix, repo, "v1", 4000), 0);
    cr_assert_eq(index_tag_get(ix, repo, "v1", &tag), 1);
    cr_assert_str_eq(tag.it_digest, D_IDX);
    cr_assert_eq(tag.it_checked_at, 4000);
    cr_assert_eq(tag.it_changed_at, 3000);

    /* Checking a tag that is not there changes nothing and is not an error. */
    cr_assert_eq(index_tag_checked(ix, repo, "absent", 5000), 0);
    cr_assert_eq(index_tag_get(ix, repo, "absent", &tag), 0);
    index_close(ix);
}

Test(tag, put_refuses_unknown_repo_and_oversize)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    char big[INDEX_MEDIA_TYPE_MAX + 1];
    struct index_tag tag;

    cr_assert_eq(index_tag_put(ix, repo + 100, "latest", D_MAN, MT_MANIFEST, 1), -1);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(index_tag_put(ix, repo, "latest", D_MAN, big, 1), -1);
    cr_assert_eq(index_tag_put(ix, repo, "latest", big, MT_MANIFEST, 1), -1);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 0);
    /* The index still works after the failures. */
    cr_assert_eq(index_tag_put(ix, repo, "latest", D_MAN, MT_MANIFEST, 1), 0);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 1);
    index_close(ix);
}

Test(tag, pulled)
{
    struct index *ix = open_mem();
    int64_t a = index_repo_id(ix, "r", "a"), b = index_repo_id(ix, "r", "b");
    const int64_t repos[] = {a, b, a};
    const char *const tags[] = {"1.0", "2.0", "missing"};
    struct index_tag tag;

    cr_assert_eq(index_tag_put(ix, a, "1.0", D_MAN, MT_MANIFEST, 10), 0);
    cr_assert_eq(index_tag_put(ix, a, "2.0", D_MAN, MT_MANIFEST, 10), 0);
    cr_assert_eq(index_tag_put(ix, b, "2.0", D_MAN, MT_MANIFEST, 10), 0);
    cr_assert_eq(index_tags_pulled(ix, repos, tags, NULL, 3, 77), 0);
    cr_assert_eq(index_tag_get(ix, a, "1.0", &tag), 1);
    cr_assert_eq(tag.it_last_pulled_at, 77);
    cr_assert_eq(tag.it_checked_at, 10);
    cr_assert_eq(index_tag_get(ix, b, "2.0", &tag), 1);
    cr_assert_eq(tag.it_last_pulled_at, 77);
    cr_assert_eq(index_tag_get(ix, a, "2.0", &tag), 1);
    cr_assert_eq(tag.it_last_pulled_at, 0);
    cr_assert_eq(index_tags_pulled(ix, repos, tags, NULL, 0, 99), 0);
    index_close(ix);
}

Test(tag, list_paging)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app"), other = index_repo_id(ix, "r", "other");
    const char *const put[] = {"b", "latest", "10", "B", "9", "a", "1.0", "a-b"};
    const char *const all[] = {"1.0", "10", "9", "B", "a", "a-b", "b", "latest"};
    char **v = NULL;
    size_t n = 99;

    for (size_t i = 0; i < ARRAY_LEN(put); i++)
        cr_assert_eq(index_tag_put(ix, repo, put[i], D_MAN, MT_MANIFEST, 1), 0);
    cr_assert_eq(index_tag_put(ix, other, "0-other", D_MAN, MT_MANIFEST, 1), 0);

    cr_assert_eq(index_tags_list(ix, repo, NULL, -1, &v, &n), 0);
    expect_strings(v, n, all, ARRAY_LEN(all));
    index_strings_free(v, n);

    cr_assert_eq(index_tags_list(ix, repo, "", 3, &v, &n), 0);
    expect_strings(v, n, all, 3);
    index_strings_free(v, n);

    cr_assert_eq(index_tags_list(ix, repo, "9", 3, &v, &n), 0);
    expect_strings(v, n, all + 3, 3);
    index_strings_free(v, n);

    /* <last> need not be a tag that exists. */
    cr_assert_eq(index_tags_list(ix, repo, "a-a", -1, &v, &n), 0);
    expect_strings(v, n, all + 5, 3);
    index_strings_free(v, n);

    cr_assert_eq(index_tags_list(ix, repo, "latest", 10, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);

    cr_assert_eq(index_tags_list(ix, repo, NULL, 0, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);

    cr_assert_eq(index_tags_list(ix, index_repo_id(ix, "r", "empty"), NULL, -1, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    index_close(ix);
}

Test(manifest, put_get_with_children)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    const struct index_child ch[] = {{D_CFG, "config"}, {D_L1, "layer"}, {D_L2, "layer"}};
    char mt[INDEX_MEDIA_TYPE_MAX], tiny[8];
    int64_t size = 0;

    cr_assert_eq(index_manifest_get(ix, D_MAN, mt, sizeof(mt), &size), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 1234, ch, 3, 50), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 1234, ch, 3, 60), 0);
    cr_assert_eq(index_manifest_get(ix, D_MAN, mt, sizeof(mt), &size), 1);
    cr_assert_str_eq(mt, MT_MANIFEST);
    cr_assert_eq(size, 1234);
    /* A short buffer gets a truncated, terminated copy. */
    cr_assert_eq(index_manifest_get(ix, D_MAN, tiny, sizeof(tiny), &size), 1);
    cr_assert_str_eq(tiny, "applica");
    /* The manifest was fetched from the repository; what it lists was not. */
    for (size_t i = 0; i < ARRAY_LEN(ch); i++)
        cr_assert_eq(index_repo_has(ix, repo, ch[i].ic_digest), 0, "%s", ch[i].ic_digest);
    cr_assert_eq(index_repo_has(ix, repo, D_MAN), 1);
    index_close(ix);
}

Test(manifest, failed_put_leaves_nothing)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    const struct index_child ch[] = {{D_L1, "layer"}};
    char **v = NULL;
    size_t n = 0;

    /* The manifest row goes in first; the repository mark then fails its foreign key. */
    cr_assert_eq(index_manifest_put(ix, repo + 100, D_MAN, MT_MANIFEST, 10, ch, 1, 1), -1);
    cr_assert_eq(index_manifest_get(ix, D_MAN, NULL, 0, NULL), 0);
    cr_assert_eq(index_all_digests(ix, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    /* No transaction is left open: the next put commits. */
    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 10, ch, 1, 1), 0);
    cr_assert_eq(index_manifest_get(ix, D_MAN, NULL, 0, NULL), 1);
    cr_assert_eq(index_repo_has(ix, repo, D_MAN), 1);
    index_close(ix);
}

Test(manifest, all_digests)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    const struct index_child ch[] = {{D_L1, "layer"}};
    const char *const want[] = {D_MAN, D_L1, D_L2};
    char **v = NULL;
    size_t n = 0;

    cr_assert_eq(index_all_digests(ix, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 10, ch, 1, 1), 0);
    cr_assert_eq(index_blob_put(ix, D_L1, 5, 1), 0);
    cr_assert_eq(index_blob_put(ix, D_L2, 5, 1), 0);
    cr_assert_eq(index_all_digests(ix, &v, &n), 0);
    expect_strings(v, n, want, ARRAY_LEN(want));
    index_strings_free(v, n);
    index_close(ix);
}

Test(repo_has, direct_and_not_across_repos)
{
    struct index *ix = open_mem();
    int64_t a = index_repo_id(ix, "r", "a"), b = index_repo_id(ix, "r", "b");

    cr_assert_eq(index_blob_put(ix, D_L1, 10, 1), 0);
    cr_assert_eq(index_repo_has(ix, a, D_L1), 0);
    cr_assert_eq(index_repo_digest_add(ix, a, D_L1), 0);
    cr_assert_eq(index_repo_digest_add(ix, a, D_L1), 0);
    cr_assert_eq(index_repo_has(ix, a, D_L1), 1);
    cr_assert_eq(index_repo_has(ix, b, D_L1), 0);
    cr_assert_eq(index_repo_has(ix, a, D_L2), 0);
    index_close(ix);
}

Test(repo_has, a_descriptor_list_vouches_for_nothing)
{
    /*
     * Issue 9: a manifest in lax/evil lists the private repository's layers while its own blob
     * endpoint answers 404. Knowing that manifest must not make those layers readable there.
     */
    struct index *ix = open_mem();
    int64_t victim = index_repo_id(ix, "cred", "private/a");
    int64_t evil = index_repo_id(ix, "anon", "lax/evil");
    const struct index_child man[] = {{D_CFG, "config"}, {D_L1, "layer"}, {D_L2, "layer"}};

    cr_assert_eq(index_repo_digest_add(ix, victim, D_L1), 0); /* fetched there */
    cr_assert_eq(index_repo_digest_add(ix, victim, D_L2), 0);
    cr_assert_eq(index_manifest_put(ix, evil, D_MAN, MT_MANIFEST, 10, man, 3, 1), 0);
    cr_assert_eq(index_repo_has(ix, evil, D_MAN), 1);
    cr_assert_eq(index_repo_has(ix, evil, D_L1), 0);
    cr_assert_eq(index_repo_has(ix, evil, D_L2), 0);
    cr_assert_eq(index_repo_has(ix, evil, D_CFG), 0);
    cr_assert_eq(index_repo_has(ix, victim, D_L1), 1);
    index_close(ix);
}

Test(repo_has, no_walk_through_indexes_or_subjects)
{
    struct index *ix = open_mem();
    int64_t a = index_repo_id(ix, "r", "a"), b = index_repo_id(ix, "r", "b");
    const struct index_child man[] = {{D_CFG, "config"}, {D_L1, "layer"}, {D_L2, "layer"}};
    const struct index_child idx[] = {{D_MAN, "manifest"}};
    const struct index_child art[] = {{D_MAN, "subject"}, {D_L2, "layer"}};

    cr_assert_eq(index_manifest_put(ix, b, D_MAN, MT_MANIFEST, 10, man, 3, 1), 0);
    cr_assert_eq(index_manifest_put(ix, a, D_IDX, MT_INDEX, 10, idx, 1, 1), 0);
    cr_assert_eq(index_manifest_put(ix, a, D_SIG, MT_MANIFEST, 10, art, 2, 1), 0);
    cr_assert_eq(index_repo_has(ix, a, D_IDX), 1);
    cr_assert_eq(index_repo_has(ix, a, D_SIG), 1);
    cr_assert_eq(index_repo_has(ix, a, D_MAN), 0);
    cr_assert_eq(index_repo_has(ix, a, D_L1), 0);
    cr_assert_eq(index_repo_has(ix, a, D_L2), 0);
    /* The references are still recorded: the referrers list finds the artifact. */
    {
        char **v = NULL;
        size_t n = 0;
        cr_assert_eq(index_referrers(ix, D_MAN, &v, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(v[0], D_SIG);
        index_strings_free(v, n);
    }
    index_close(ix);
}

Test(referrers, by_subject)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    const struct index_child man[] = {{D_L1, "layer"}};
    const struct index_child sig[] = {{D_MAN, "subject"}, {D_L2, "layer"}};
    const char *const want[] = {D_SIG, D_SBOM};
    char **v = NULL;
    size_t n = 0;

    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 10, man, 1, 1), 0);
    cr_assert_eq(index_referrers(ix, D_MAN, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    /* D_SBOM sorts after D_SIG, whatever the order of recording. */
    cr_assert_eq(index_manifest_put(ix, repo, D_SBOM, MT_MANIFEST, 10, sig, 2, 1), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_SIG, MT_MANIFEST, 10, sig, 2, 1), 0);
    cr_assert_eq(index_referrers(ix, D_MAN, &v, &n), 0);
    expect_strings(v, n, want, 2);
    index_strings_free(v, n);
    /* A layer reference is not a subject. */
    cr_assert_eq(index_referrers(ix, D_L1, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    index_close(ix);
}

Test(blob, put_get_touch)
{
    struct tmpdb t;
    char *err = NULL;
    struct index *ix;
    const char *const touch[] = {D_L1, D_L2};
    int64_t size = 0;
    sqlite3 *db;

    mk_tmp(&t);
    ix = index_open(t.path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    cr_assert_eq(index_blob_get(ix, D_L1, &size), 0);
    cr_assert_eq(index_blob_put(ix, D_L1, 4096, 100), 0);
    cr_assert_eq(index_blob_put(ix, D_L1, 4096, 150), 0);
    cr_assert_eq(index_blob_get(ix, D_L1, &size), 1);
    cr_assert_eq(size, 4096);
    /* D_L2 is not recorded: touching it is a no-op. */
    cr_assert_eq(index_blobs_touch(ix, touch, 2, 200), 0);
    cr_assert_eq(index_blob_get(ix, D_L2, &size), 0);
    cr_assert_eq(index_blobs_touch(ix, touch, 0, 300), 0);

    db = raw_open(t.path);
    cr_assert_eq(raw_int(db, "SELECT last_access FROM blobs WHERE digest = '" D_L1 "'"), 200);
    cr_assert_eq(raw_int(db, "SELECT stored_at FROM blobs WHERE digest = '" D_L1 "'"), 100);
    sqlite3_close(db);
    index_close(ix);
    rm_tmp(&t);
}

/* <arg> is a NULL-terminated list of the digests the store holds. */
static int exists_in(const char *digest, void *arg)
{
    for (const char *const *p = arg; *p != NULL; p++)
        if (strcmp(*p, digest) == 0)
            return 1;
    return 0;
}

static int exists_fails(const char *digest, void *arg)
{
    return -1;
}

Test(reconcile, drops_missing_blobs_manifests_and_their_tags)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "app");
    const struct index_child man[] = {{D_CFG, "config"}, {D_L1, "layer"}};
    const struct index_child sig[] = {{D_MAN, "subject"}};
    const char *const present[] = {D_MAN, D_CFG, NULL};
    const char *const want_all[] = {D_MAN, D_CFG};
    struct index_tag tag;
    int64_t size;
    char **v = NULL;
    size_t n = 0;

    cr_assert_eq(index_manifest_put(ix, repo, D_MAN, MT_MANIFEST, 10, man, 2, 1), 0);
    cr_assert_eq(index_manifest_put(ix, repo, D_SIG, MT_MANIFEST, 10, sig, 1, 1), 0);
    cr_assert_eq(index_blob_put(ix, D_CFG, 5, 1), 0);
    cr_assert_eq(index_blob_put(ix, D_L1, 5, 1), 0);
    cr_assert_eq(index_repo_digest_add(ix, repo, D_CFG), 0); /* fetched through repo */
    cr_assert_eq(index_tag_put(ix, repo, "latest", D_MAN, MT_MANIFEST, 1), 0);
    cr_assert_eq(index_tag_put(ix, repo, "sig", D_SIG, MT_MANIFEST, 1), 0);

    /* A store that cannot answer drops nothing. */
    cr_assert_eq(index_reconcile(ix, exists_fails, NULL), -1);
    cr_assert_eq(index_blob_get(ix, D_L1, &size), 1);

    /* D_SIG (a manifest) and D_L1 (a blob) are gone from the store. */
    cr_assert_eq(index_reconcile(ix, exists_in, (void *)present), 2);
    cr_assert_eq(index_blob_get(ix, D_L1, &size), 0);
    cr_assert_eq(index_manifest_get(ix, D_SIG, NULL, 0, &size), 0);
    cr_assert_eq(index_tag_get(ix, repo, "sig", &tag), 0);
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 1);
    cr_assert_eq(index_repo_has(ix, repo, D_SIG), 0);
    cr_assert_eq(index_repo_has(ix, repo, D_MAN), 1);
    cr_assert_eq(index_repo_has(ix, repo, D_CFG), 1);
    cr_assert_eq(index_referrers(ix, D_MAN, &v, &n), 0);
    cr_assert_eq(n, 0);
    index_strings_free(v, n);
    cr_assert_eq(index_all_digests(ix, &v, &n), 0);
    expect_strings(v, n, want_all, ARRAY_LEN(want_all));
    index_strings_free(v, n);

    /* Nothing more is missing: a second pass drops nothing. */
    cr_assert_eq(index_reconcile(ix, exists_in, (void *)present), 0);
    cr_assert_eq(index_integrity_ok(ix), 1);
    index_close(ix);
}

#define BULK_TAGS 100000

Test(bulk, tag_lookup_with_100k_tags, .timeout = 30)
{
    struct index *ix = open_mem();
    int64_t repo = index_repo_id(ix, "r", "big"), t0, dt;
    struct index_tag tag;
    char name[32];

    for (int i = 0; i < BULK_TAGS; i++) {
        cr_assert_geq(snprintf(name, sizeof(name), "v%06d", i), 0);
        cr_assert_eq(index_tag_put(ix, repo, name, D_MAN, MT_MANIFEST, i), 0);
    }
    t0 = util_mono_usec();
    for (int i = 0; i < BULK_TAGS; i += 997) {
        cr_assert_geq(snprintf(name, sizeof(name), "v%06d", i), 0);
        cr_assert_eq(index_tag_get(ix, repo, name, &tag), 1, "%s", name);
        cr_assert_eq(tag.it_changed_at, i);
    }
    dt = util_mono_usec() - t0;
    cr_assert_eq(index_tag_get(ix, repo, "v100000", &tag), 0);
    /* ~100 indexed lookups: generous for sanitizers, far below a scan per lookup. */
    cr_assert_lt(dt, 500000, "100 lookups took %lld us", (long long)dt);
    index_close(ix);
}

/* The plan, not a stopwatch, is what keeps the hot paths O(log n). */
Test(bulk, hot_queries_use_indexes)
{
    struct tmpdb t;
    char *err = NULL, *plan;
    struct index *ix;
    sqlite3 *db;

    mk_tmp(&t);
    ix = index_open(t.path, &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    index_close(ix);
    db = raw_open(t.path);
    plan = raw_text_rows(db,
                         "EXPLAIN QUERY PLAN SELECT digest FROM tags"
                         " WHERE repo_id = 1 AND tag = 'latest'",
                         3);
    cr_assert(strstr(plan, "SEARCH tags USING PRIMARY KEY (repo_id=? AND tag=?)") != NULL, "%s",
              plan);
    free(plan);
    plan = raw_text_rows(
        db, "EXPLAIN QUERY PLAN SELECT manifest FROM manifest_refs WHERE child = 'x'", 3);
    cr_assert(strstr(plan, "SEARCH manifest_refs USING") != NULL, "%s", plan);
    free(plan);
    plan = raw_text_rows(db,
                         "EXPLAIN QUERY PLAN SELECT manifest FROM manifest_refs"
                         " WHERE kind = 'subject' AND child = 'x' ORDER BY manifest",
                         3);
    cr_assert(strstr(plan, "SEARCH manifest_refs USING COVERING INDEX manifest_refs_kind_child") !=
                  NULL,
              "%s", plan);
    cr_assert(strstr(plan, "TEMP B-TREE") == NULL, "%s", plan);
    free(plan);
    sqlite3_close(db);
    rm_tmp(&t);
}
