/* Unit tests for db/db_push.c: the ECR push queue (dedupe, take, retry, done, release after a
 * crash, stats), the ECR blob record, and schema 3's migration. */
#include "config.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db_index.h"
#include "util.h"

#define D_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define D_C "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define D_D "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define D_E "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
#define ECR_NGINX "docker-hub/library/nginx"
#define PUSH_SCHEMA_VERSION 4 /* the newest schema; step 3 added ecr_push and ecr_blobs */

static struct index *open_path(const char *path)
{
    char *err = NULL;
    struct index *ix = index_open(path, &err);

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
    cr_assert_eq(str_copy(t->dir, sizeof(t->dir), "/tmp/ecr-ptc-push-XXXXXX"), 0);
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

static void expect_depth(struct index *ix, int64_t depth, int64_t oldest)
{
    int64_t d = -1, o = -1;

    cr_assert_eq(index_push_stats(ix, &d, &o), 0);
    cr_assert_eq(d, depth, "depth %lld, want %lld", (long long)d, (long long)depth);
    cr_assert_eq(o, oldest, "oldest %lld, want %lld", (long long)o, (long long)oldest);
}

Test(push, enqueue_dedupes)
{
    struct index *ix = open_path(":memory:");
    int64_t repo = index_repo_id(ix, "docker-hub", "library/nginx");
    int64_t other = index_repo_id(ix, "docker-hub", "library/redis");
    char big[INDEX_ECR_REPO_MAX + 1];

    cr_assert_gt(repo, 0);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 10), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 20), 0, "the same push again");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, other, D_A, "", 20), 0,
                 "equal by (ecr_repo, digest, tag), whichever local repository asks");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "latest", 30), 1, "with a tag");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "1.27", 30), 1, "another tag");
    cr_assert_eq(index_push_enqueue(ix, "docker-hub/library/redis", other, D_A, "", 30), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_B, NULL, 40), 1, "NULL tag is \"\"");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_B, "", 40), 0);
    expect_depth(ix, 5, 10);

    /* What a take could not hand back whole, and a repository that does not exist. */
    memset(big, 'a', INDEX_ECR_REPO_MAX);
    big[INDEX_ECR_REPO_MAX] = '\0';
    cr_assert_eq(index_push_enqueue(ix, big, repo, D_C, "", 50), -1);
    big[INDEX_ECR_REPO_MAX - 1] = '\0';
    cr_assert_eq(index_push_enqueue(ix, big, repo, D_C, "", 50), 1, "256 bytes fit");
    memset(big, 't', INDEX_TAG_MAX);
    big[INDEX_TAG_MAX] = '\0';
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_C, big, 50), -1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo + 100, D_C, "", 50), -1,
                 "the foreign key refuses an unknown repository");
    expect_depth(ix, 6, 10);
    index_close(ix);
}

Test(push, take_orders_limits_and_excludes_taken)
{
    struct index *ix = open_path(":memory:");
    int64_t repo = index_repo_id(ix, "docker-hub", "library/nginx");
    struct index_push out[8];
    size_t n = 99;

    cr_assert_eq(index_push_take(ix, 1000, 8, out, &n), 0);
    cr_assert_eq(n, 0, "an empty queue");
    /* Queued out of order; D_D and D_E share a time, so id decides between them. */
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_C, "", 30), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "latest", 10), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_B, "", 20), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_D, "", 40), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_E, "", 40), 1);

    cr_assert_eq(index_push_take(ix, 25, 8, out, &n), 0);
    cr_assert_eq(n, 2, "due at 25: the rows queued at 10 and 20");
    cr_assert_str_eq(out[0].ip_digest, D_A);
    cr_assert_str_eq(out[0].ip_tag, "latest");
    cr_assert_str_eq(out[0].ip_ecr_repo, ECR_NGINX);
    cr_assert_eq(out[0].ip_repo, repo);
    cr_assert_eq(out[0].ip_queued_at, 10);
    cr_assert_eq(out[0].ip_next_at, 10);
    cr_assert_eq(out[0].ip_attempts, 0);
    cr_assert_str_eq(out[0].ip_last_error, "");
    cr_assert_str_eq(out[1].ip_digest, D_B);
    cr_assert_str_eq(out[1].ip_tag, "");
    cr_assert_gt(out[0].ip_id, 0);
    cr_assert_neq(out[0].ip_id, out[1].ip_id);

    cr_assert_eq(index_push_take(ix, 25, 8, out, &n), 0);
    cr_assert_eq(n, 0, "taken rows are not taken again");
    cr_assert_eq(index_push_take(ix, 1000, 0, out, &n), 0);
    cr_assert_eq(n, 0, "limit 0");
    cr_assert_eq(index_push_take(ix, 1000, 2, out, &n), 0);
    cr_assert_eq(n, 2, "the limit holds");
    cr_assert_str_eq(out[0].ip_digest, D_C);
    cr_assert_str_eq(out[1].ip_digest, D_D, "equal next_at: the older id first");
    cr_assert_eq(index_push_take(ix, 1000, 8, out, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(out[0].ip_digest, D_E);
    cr_assert_eq(index_push_take(ix, 1000, 8, out, &n), 0);
    cr_assert_eq(n, 0);
    expect_depth(ix, 5, 10);
    index_close(ix);
}

Test(push, retry_backs_off_and_keeps_queued_at)
{
    struct index *ix = open_path(":memory:");
    int64_t repo = index_repo_id(ix, "docker-hub", "library/nginx");
    struct index_push out[4];
    char long_err[400];
    size_t n;

    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 10), 1);
    cr_assert_eq(index_push_take(ix, 10, 4, out, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(index_push_retry(ix, out[0].ip_id, 500, "PutImage: HTTP 503"), 0);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 100), 0,
                 "queued again while waiting: its backoff stands");
    cr_assert_eq(index_push_take(ix, 499, 4, out, &n), 0);
    cr_assert_eq(n, 0, "not due before next_at");
    cr_assert_eq(index_push_take(ix, 500, 4, out, &n), 0);
    cr_assert_eq(n, 1, "untaken and due at next_at");
    cr_assert_eq(out[0].ip_attempts, 1);
    cr_assert_str_eq(out[0].ip_last_error, "PutImage: HTTP 503");
    cr_assert_eq(out[0].ip_next_at, 500);
    cr_assert_eq(out[0].ip_queued_at, 10, "queued_at is when it was first queued");
    expect_depth(ix, 1, 10);

    /* A reason longer than ip_last_error holds is cut at a character boundary. */
    memset(long_err, 'x', sizeof(long_err));
    memcpy(long_err + 254, "\xc3\xa9", 2); /* bytes 254 and 255: 'é' straddles the cut */
    long_err[sizeof(long_err) - 1] = '\0';
    cr_assert_eq(index_push_retry(ix, out[0].ip_id, 600, long_err), 0);
    cr_assert_eq(index_push_take(ix, 600, 4, out, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].ip_attempts, 2);
    cr_assert_eq(strlen(out[0].ip_last_error), 254, "%zu", strlen(out[0].ip_last_error));
    cr_assert_eq(index_push_retry(ix, out[0].ip_id, 700, NULL), 0);
    cr_assert_eq(index_push_take(ix, 700, 4, out, &n), 0);
    cr_assert_str_eq(out[0].ip_last_error, "");
    cr_assert_eq(out[0].ip_attempts, 3);
    cr_assert_eq(index_push_retry(ix, out[0].ip_id + 50, 700, "gone"), 0, "a missing row");
    index_close(ix);
}

Test(push, done_removes)
{
    struct index *ix = open_path(":memory:");
    int64_t repo = index_repo_id(ix, "docker-hub", "library/nginx");
    struct index_push out[4];
    size_t n;

    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 10), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_B, "", 20), 1);
    cr_assert_eq(index_push_take(ix, 15, 4, out, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(index_push_done(ix, out[0].ip_id), 0);
    expect_depth(ix, 1, 20);
    cr_assert_eq(index_push_done(ix, out[0].ip_id), 0, "a missing row is no error");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 30), 1,
                 "a done push can be queued again");
    expect_depth(ix, 2, 20);
    index_close(ix);
}

Test(push, stats_depth_and_oldest)
{
    struct index *ix = open_path(":memory:");
    int64_t repo = index_repo_id(ix, "docker-hub", "library/nginx");
    struct index_push out[4];
    size_t n;

    expect_depth(ix, 0, 0);
    cr_assert_eq(index_push_stats(ix, NULL, NULL), 0);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_B, "", 20), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 10), 1);
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_C, "", 30), 1);
    expect_depth(ix, 3, 10);
    cr_assert_eq(index_push_take(ix, 10, 4, out, &n), 0);
    expect_depth(ix, 3, 10);
    cr_assert_eq(index_push_done(ix, out[0].ip_id), 0);
    expect_depth(ix, 2, 20);
    index_close(ix);
}

/* Pushes taken when the process died come back at start-up, and only through release_all. */
Test(push, release_all_after_a_crash)
{
    struct tmpdb t;
    struct index *ix;
    struct index_push out[4];
    size_t n;
    pid_t pid;
    int status;

    mk_tmp(&t);
    ix = open_path(t.path);
    index_close(ix);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* The daemon: queues three, takes two, and dies with them in flight. */
        struct index *cx = index_open(t.path, NULL);
        int64_t repo = cx != NULL ? index_repo_id(cx, "docker-hub", "library/nginx") : -1;
        int ok = repo > 0 && index_push_enqueue(cx, ECR_NGINX, repo, D_A, "", 10) == 1 &&
                 index_push_enqueue(cx, ECR_NGINX, repo, D_B, "", 20) == 1 &&
                 index_push_enqueue(cx, ECR_NGINX, repo, D_C, "", 30) == 1 &&
                 index_push_take(cx, 25, 4, out, &n) == 0 && n == 2;
        _exit(ok ? 0 : 1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed");

    ix = open_path(t.path);
    cr_assert_eq(index_push_take(ix, 1000, 4, out, &n), 0);
    cr_assert_eq(n, 1, "the two in flight stay taken until released");
    cr_assert_str_eq(out[0].ip_digest, D_C);
    cr_assert_eq(index_push_release_all(ix), 3, "the two from the crash and ours");
    cr_assert_eq(index_push_release_all(ix), 0);
    cr_assert_eq(index_push_take(ix, 1000, 4, out, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[0].ip_digest, D_A);
    cr_assert_str_eq(out[1].ip_digest, D_B);
    cr_assert_str_eq(out[2].ip_digest, D_C);
    cr_assert_eq(out[0].ip_attempts, 0, "a release is no failed attempt");
    index_close(ix);

    /* A clean close keeps taken rows taken too: only release_all frees them. */
    ix = open_path(t.path);
    cr_assert_eq(index_push_take(ix, 1000, 4, out, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(index_push_release_all(ix), 3);
    index_close(ix);
    rm_tmp(&t);
}

Test(push, ecr_blobs)
{
    struct index *ix = open_path(":memory:");

    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_A), 0);
    cr_assert_eq(index_ecr_blob_add(ix, ECR_NGINX, D_A), 0);
    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_A), 1);
    cr_assert_eq(index_ecr_blob_add(ix, ECR_NGINX, D_A), 0, "idempotent");
    cr_assert_eq(index_ecr_blob_has(ix, "docker-hub/library/redis", D_A), 0, "per ECR repository");
    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_B), 0);
    index_close(ix);
}

/* ECR lost blobs (a repository deleted, a lifecycle expiry): one, or all of a repository. */
Test(push, ecr_blobs_forget)
{
    struct index *ix = open_path(":memory:");
    const char *redis = "docker-hub/library/redis";

    cr_assert_eq(index_ecr_blob_add(ix, ECR_NGINX, D_A), 0);
    cr_assert_eq(index_ecr_blob_add(ix, ECR_NGINX, D_B), 0);
    cr_assert_eq(index_ecr_blob_add(ix, redis, D_A), 0);
    cr_assert_eq(index_ecr_blob_forget(ix, ECR_NGINX, D_A), 0);
    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_A), 0);
    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_B), 1, "only that digest");
    cr_assert_eq(index_ecr_blob_has(ix, redis, D_A), 1, "only that repository");
    cr_assert_eq(index_ecr_blob_forget(ix, ECR_NGINX, NULL), 0);
    cr_assert_eq(index_ecr_blob_has(ix, ECR_NGINX, D_B), 0, "NULL: every blob of it");
    cr_assert_eq(index_ecr_blob_has(ix, redis, D_A), 1, "another repository keeps its own");
    cr_assert_eq(index_ecr_blob_forget(ix, "nothing/here", NULL), 0, "nothing to forget is fine");
    index_close(ix);
}

/* Deleting a local repository takes its queued pushes with it (ON DELETE CASCADE). */
Test(push, repository_delete_cascades)
{
    struct tmpdb t;
    struct index *ix;
    sqlite3 *db;
    int64_t repo;

    mk_tmp(&t);
    ix = open_path(t.path);
    repo = index_repo_id(ix, "docker-hub", "library/nginx");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "", 10), 1);
    index_close(ix);
    db = raw_open(t.path);
    cr_assert_eq(
        sqlite3_exec(db, "PRAGMA foreign_keys = ON; DELETE FROM repositories", NULL, NULL, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM ecr_push"), 0);
    sqlite3_close(db);
    rm_tmp(&t);
}

/* A database at version 2 gains the tables, keeps its rows, and ends as a fresh one is. */
Test(push, migration_from_version_2)
{
    struct tmpdb fresh, old;
    struct index *ix;
    struct index_tag tag;
    sqlite3 *db;
    char *want, *got;
    int64_t repo;

    mk_tmp(&fresh);
    index_close(open_path(fresh.path));
    db = raw_open(fresh.path);
    want = raw_text_rows(db,
                         "SELECT type || ' ' || name || ': ' || sql FROM sqlite_master"
                         " ORDER BY name",
                         0);
    sqlite3_close(db);
    cr_assert(strstr(want, "ecr_push") != NULL && strstr(want, "ecr_blobs") != NULL, "%s", want);

    /* Version 2's tables are today's without what step 3 added. */
    mk_tmp(&old);
    index_close(open_path(old.path));
    db = raw_open(old.path);
    cr_assert_eq(sqlite3_exec(db,
                              "DROP INDEX tags_repo_digest; ALTER TABLE tags DROP COLUMN pulls;"
                              "ALTER TABLE manifests DROP COLUMN last_pulled_at;"
                              "DROP TABLE ecr_push; DROP TABLE ecr_blobs; PRAGMA user_version = 2;"
                              "INSERT INTO repositories (id, rule, name) VALUES (7, 'docker-hub',"
                              " 'library/nginx');"
                              "INSERT INTO tags VALUES (7, 'latest', '" D_A "', 'x', 50, 40, 0);",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'ecr_%'"), 0);
    sqlite3_close(db);

    ix = open_path(old.path);
    repo = index_repo_find(ix, "docker-hub", "library/nginx");
    cr_assert_eq(repo, 7, "rows of version 2 stay");
    cr_assert_eq(index_tag_get(ix, repo, "latest", &tag), 1);
    cr_assert_str_eq(tag.it_digest, D_A);
    cr_assert_eq(tag.it_checked_at, 50, "step 2 did not run again");
    cr_assert_eq(index_push_enqueue(ix, ECR_NGINX, repo, D_A, "latest", 60), 1);
    cr_assert_eq(index_ecr_blob_add(ix, ECR_NGINX, D_B), 0);
    expect_depth(ix, 1, 60);
    index_close(ix);

    db = raw_open(old.path);
    cr_assert_eq(raw_int(db, "PRAGMA user_version"), PUSH_SCHEMA_VERSION);
    got = raw_text_rows(db,
                        "SELECT type || ' ' || name || ': ' || sql FROM sqlite_master"
                        " ORDER BY name",
                        0);
    cr_assert_str_eq(got, want, "a migrated schema differs from a fresh one");
    sqlite3_close(db);
    free(want);
    free(got);
    rm_tmp(&fresh);
    rm_tmp(&old);
}

Test(push, take_uses_the_due_index)
{
    struct tmpdb t;
    sqlite3 *db;
    char *plan;

    mk_tmp(&t);
    index_close(open_path(t.path));
    db = raw_open(t.path);
    plan = raw_text_rows(db,
                         "EXPLAIN QUERY PLAN SELECT id FROM ecr_push"
                         " WHERE taken = 0 AND next_at <= 100 ORDER BY next_at, id LIMIT 10",
                         3);
    cr_assert(strstr(plan, "SEARCH ecr_push USING") != NULL && strstr(plan, "ecr_push_due"), "%s",
              plan);
    cr_assert(strstr(plan, "TEMP B-TREE") == NULL, "%s", plan);
    free(plan);
    plan = raw_text_rows(db,
                         "EXPLAIN QUERY PLAN SELECT 1 FROM ecr_blobs"
                         " WHERE ecr_repo = 'a' AND digest = 'b'",
                         3);
    cr_assert(strstr(plan, "SEARCH ecr_blobs USING PRIMARY KEY") != NULL, "%s", plan);
    free(plan);
    sqlite3_close(db);
    rm_tmp(&t);
}
