/* The ECR tier's write-behind push queue and its record of blobs already in ECR (db_index.h),
 * on the index's connection and prepared statements. */
#include "config.h"

#include "db_index.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db-int.h"
#include "util.h"

/* ip_last_error's size: what index_push_take can hand back whole. */
#define PUSH_ERROR_MAX (sizeof(((struct index_push *)0)->ip_last_error) - 1)

/*
 * Indexed by enum push_st; prepared once in index_open. The take is three statements in one
 * transaction (index_push_take says why). taken = -1 marks the rows of the take in progress
 * and never outlives its transaction.
 */
const char *const db_push_statements[PST_COUNT] = {
    [PST_ENQUEUE] = "INSERT INTO ecr_push (ecr_repo, repo, digest, tag, queued_at, next_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                    " ON CONFLICT (ecr_repo, digest, tag) DO NOTHING",
    /* ecr_push_due is (taken, next_at) and ends in the rowid, id: no sort. */
    [PST_TAKE_MARK] = "UPDATE ecr_push SET taken = -1 WHERE id IN (SELECT id FROM ecr_push"
                      " WHERE taken = 0 AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2)",
    [PST_TAKE_READ] = "SELECT id, ecr_repo, repo, digest, tag, queued_at, next_at, attempts,"
                      " last_error FROM ecr_push WHERE taken = -1 ORDER BY next_at, id",
    [PST_TAKE_DONE] = "UPDATE ecr_push SET taken = 1 WHERE taken = -1",
    [PST_DONE] = "DELETE FROM ecr_push WHERE id = ?1",
    [PST_RETRY] = "UPDATE ecr_push SET attempts = attempts + 1, last_error = ?3, taken = 0,"
                  " next_at = ?2 WHERE id = ?1",
    [PST_RELEASE_ALL] = "UPDATE ecr_push SET taken = 0 WHERE taken != 0",
    [PST_STATS] = "SELECT count(*), coalesce(min(queued_at), 0) FROM ecr_push",
    [PST_BLOB_HAS] = "SELECT EXISTS (SELECT 1 FROM ecr_blobs WHERE ecr_repo = ?1 AND digest = ?2)",
    [PST_BLOB_ADD] = "INSERT INTO ecr_blobs (ecr_repo, digest) VALUES (?1, ?2)"
                     " ON CONFLICT (ecr_repo, digest) DO NOTHING",
    /* ?2 NULL: every blob of the repository. */
    [PST_WAKE] = "UPDATE ecr_push SET next_at = ?2 WHERE repo = ?1 AND taken = 0 AND next_at > ?2"
                 " AND last_error = ?3",
    [PST_BLOB_FORGET] = "DELETE FROM ecr_blobs WHERE ecr_repo = ?1 AND (?2 IS NULL OR digest = ?2)",
};

int index_push_enqueue(struct index *ix, const char *ecr_repo, int64_t repo, const char *digest,
                       const char *tag, int64_t now)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    if (tag == NULL)
        tag = "";
    /* What index_push_take could not hand back whole is refused rather than stored. */
    if (strlen(ecr_repo) >= INDEX_ECR_REPO_MAX || strlen(digest) >= INDEX_DIGEST_MAX ||
        strlen(tag) >= INDEX_TAG_MAX)
        return -1;
    s = pst(ix, PST_ENQUEUE);
    if (bind_text(s, 1, ecr_repo) == -1 || bind_int(s, 2, repo) == -1 ||
        bind_text(s, 3, digest) == -1 || bind_text(s, 4, tag) == -1 || bind_int(s, 5, now) == -1) {
        st_done(s);
        return -1;
    }
    if (st_exec(s) == -1)
        return -1;
    return sqlite3_changes(ix->ix_db) > 0;
}

static void read_push(sqlite3_stmt *s, struct index_push *p)
{
    p->ip_id = sqlite3_column_int64(s, 0);
    column_copy(s, 1, p->ip_ecr_repo, sizeof(p->ip_ecr_repo));
    p->ip_repo = sqlite3_column_int64(s, 2);
    column_copy(s, 3, p->ip_digest, sizeof(p->ip_digest));
    column_copy(s, 4, p->ip_tag, sizeof(p->ip_tag));
    p->ip_queued_at = sqlite3_column_int64(s, 5);
    p->ip_next_at = sqlite3_column_int64(s, 6);
    p->ip_attempts = sqlite3_column_int64(s, 7);
    column_copy(s, 8, p->ip_last_error, sizeof(p->ip_last_error));
}

/*
 * Mark, read, confirm, inside one savepoint. The mark is the transaction's first statement,
 * so the write lock is taken before anything is read (a read first, then a write, could meet
 * SQLITE_BUSY_SNAPSHOT when another connection wrote in between), and no other connection
 * sees the rows between being chosen and being taken. Nothing before 3.35 has RETURNING,
 * hence the three steps.
 */
int index_push_take(struct index *ix, int64_t now, size_t limit, struct index_push *out, size_t *n)
{
    sqlite3_stmt *s;
    size_t got = 0;
    int rc = -1, r;

    CHECK_INDEX(ix);
    *n = 0;
    if (limit == 0)
        return 0;
    if (tx_begin(ix) == -1)
        return -1;
    s = pst(ix, PST_TAKE_MARK);
    if (bind_int(s, 1, now) == -1 ||
        bind_int(s, 2, limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit) == -1) {
        st_done(s);
        goto out;
    }
    if (st_exec(s) == -1)
        goto out;
    s = pst(ix, PST_TAKE_READ);
    while ((r = sqlite3_step(s)) == SQLITE_ROW && got < limit)
        read_push(s, &out[got++]);
    st_done(s);
    if (r != SQLITE_DONE) /* an error, or more rows marked than asked for */
        goto out;
    if (st_exec(pst(ix, PST_TAKE_DONE)) == -1)
        goto out;
    if (tx_commit(ix) == -1)
        goto out;
    *n = got;
    rc = 0;
out:
    if (rc == -1)
        tx_rollback(ix);
    return rc;
}

int index_push_done(struct index *ix, int64_t id)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = pst(ix, PST_DONE);
    if (bind_int(s, 1, id) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

/* The length of <err> cut to PUSH_ERROR_MAX bytes, never inside a UTF-8 character. */
static size_t error_len(const char *err)
{
    size_t n = strlen(err);

    if (n <= PUSH_ERROR_MAX)
        return n;
    n = PUSH_ERROR_MAX;
    while (n > 0 && ((unsigned char)err[n] & 0xc0) == 0x80)
        n--;
    return n;
}

int index_push_retry(struct index *ix, int64_t id, int64_t next_at, const char *err)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    if (err == NULL)
        err = "";
    s = pst(ix, PST_RETRY);
    if (bind_int(s, 1, id) == -1 || bind_int(s, 2, next_at) == -1 ||
        sqlite3_bind_text(s, 3, err, (int)error_len(err), SQLITE_STATIC) != SQLITE_OK) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

long index_push_release_all(struct index *ix)
{
    CHECK_INDEX(ix);
    if (st_exec(pst(ix, PST_RELEASE_ALL)) == -1)
        return -1;
    return (long)sqlite3_changes(ix->ix_db);
}

int index_push_stats(struct index *ix, int64_t *depth, int64_t *oldest_queued_at)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    s = pst(ix, PST_STATS);
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    if (depth != NULL)
        *depth = sqlite3_column_int64(s, 0);
    if (oldest_queued_at != NULL)
        *oldest_queued_at = sqlite3_column_int64(s, 1);
    rc = 0;
out:
    st_done(s);
    return rc;
}

int index_ecr_blob_has(struct index *ix, const char *ecr_repo, const char *digest)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    s = pst(ix, PST_BLOB_HAS);
    if (bind_text(s, 1, ecr_repo) == -1 || bind_text(s, 2, digest) == -1)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    rc = sqlite3_column_int(s, 0) != 0;
out:
    st_done(s);
    return rc;
}

int index_ecr_blob_add(struct index *ix, const char *ecr_repo, const char *digest)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = pst(ix, PST_BLOB_ADD);
    if (bind_text(s, 1, ecr_repo) == -1 || bind_text(s, 2, digest) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

int index_ecr_blob_forget(struct index *ix, const char *ecr_repo, const char *digest)
{
    sqlite3_stmt *s;
    int rc;

    CHECK_INDEX(ix);
    s = pst(ix, PST_BLOB_FORGET);
    if (bind_text(s, 1, ecr_repo) == -1 ||
        (digest != NULL ? bind_text(s, 2, digest) : sqlite3_bind_null(s, 2)) != 0) {
        st_done(s);
        return -1;
    }
    rc = st_exec(s);
    return rc;
}

long index_push_wake(struct index *ix, int64_t repo, int64_t now, const char *reason)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = pst(ix, PST_WAKE);
    if (sqlite3_bind_int64(s, 1, repo) != SQLITE_OK || sqlite3_bind_int64(s, 2, now) != SQLITE_OK ||
        bind_text(s, 3, reason) == -1) {
        st_done(s);
        return -1;
    }
    if (st_exec(s) == -1)
        return -1;
    return (long)sqlite3_changes(ix->ix_db);
}
