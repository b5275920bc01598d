/* Shared by db_index.c, db_push.c and db_schema.c, and by nothing outside db/: the index's
 * layout, its prepared statements and the small helpers every query uses. */
#ifndef DB_INT_H
#define DB_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define INDEX_MAGIC 0x49445821u /* "IDX!" */

/* db_index.c's statements, in its statements[] table. */
enum st {
    ST_SP_BEGIN = 0,
    ST_SP_RELEASE,
    ST_SP_ROLLBACK,
    ST_REPO_GET,
    ST_REPO_INS,
    ST_TAG_GET,
    ST_TAG_PUT,
    ST_TAG_CHECKED,
    ST_TAG_PULLED,
    ST_TAGS_LIST,
    ST_MANIFEST_INS,
    ST_MANIFEST_GET,
    ST_REF_INS,
    ST_REPO_DIGEST_INS,
    ST_REPO_HAS,
    ST_REFERRERS,
    ST_BLOB_PUT,
    ST_BLOB_GET,
    ST_BLOB_TOUCH,
    ST_ALL_DIGESTS,
    ST_DROP_REFS,
    ST_DROP_MANIFEST,
    ST_DROP_BLOB,
    ST_DROP_REPO_DIGESTS,
    ST_DROP_TAGS,
    ST_MANIFEST_TOUCH,
    ST_COUNT
};

/* db_push.c's statements (the ECR push queue), in db_push_statements[]. */
enum push_st {
    PST_ENQUEUE = 0,
    PST_TAKE_MARK,
    PST_TAKE_READ,
    PST_TAKE_DONE,
    PST_DONE,
    PST_RETRY,
    PST_RELEASE_ALL,
    PST_STATS,
    PST_BLOB_HAS,
    PST_BLOB_ADD,
    PST_BLOB_FORGET,
    PST_WAKE,
    PST_COUNT
};

/* Indexed by enum push_st; index_open prepares them with db_index.c's own. */
extern const char *const db_push_statements[PST_COUNT];

struct index {
    unsigned magic;
    sqlite3 *ix_db;
    sqlite3_stmt *ix_st[ST_COUNT];       /* owned; finalized by index_close */
    sqlite3_stmt *ix_push_st[PST_COUNT]; /* the same, for db_push_statements */
    sqlite3_stmt *ix_gc_used[2];         /* db_gc.c's, prepared at first use; index_close */
};

#define CHECK_INDEX(ix) CHECK_OBJ_NOTNULL(ix, INDEX_MAGIC)

/* Reset <s> and drop its bindings so it holds no pointer to the caller's strings. */
static inline void st_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/*
 * The statement <id>, ready to bind. Every use ends with st_done on every path. Text is bound
 * SQLITE_STATIC: the caller's strings outlive the statement's use, which ends before we return.
 */
static inline sqlite3_stmt *st(struct index *ix, enum st id)
{
    return ix->ix_st[id];
}

/* As st, for db_push.c's statements. */
static inline sqlite3_stmt *pst(struct index *ix, enum push_st id)
{
    return ix->ix_push_st[id];
}

static inline int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

static inline int bind_int(sqlite3_stmt *s, int i, int64_t v)
{
    return sqlite3_bind_int64(s, i, v) == SQLITE_OK ? 0 : -1;
}

/* Step <s> once, expecting it to finish (a write); st_done either way. 0 or -1. */
static inline int st_exec(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;

    st_done(s);
    return rc;
}

/* Copy column <col> of the current row into <dst> of <size> bytes, truncating; "" for NULL. */
static inline void column_copy(sqlite3_stmt *s, int col, char *dst, size_t size)
{
    const unsigned char *t = sqlite3_column_text(s, col);

    (void)str_copy(dst, size, t != NULL ? (const char *)t : "");
}

/*
 * Savepoints rather than BEGIN, so that a caller who already opened a transaction nests
 * instead of failing. Outside a transaction SAVEPOINT begins a deferred one; every transaction
 * here starts with a write, so the write lock is taken up front and the busy timeout applies.
 */
static inline int tx_begin(struct index *ix)
{
    return st_exec(st(ix, ST_SP_BEGIN));
}

static inline int tx_commit(struct index *ix)
{
    return st_exec(st(ix, ST_SP_RELEASE));
}

/* Undo everything since tx_begin. SQLite may already have rolled back on its own (out of
 * memory, disk full); then both steps fail harmlessly. */
static inline void tx_rollback(struct index *ix)
{
    (void)st_exec(st(ix, ST_SP_ROLLBACK));
    (void)st_exec(st(ix, ST_SP_RELEASE));
}

/*
 * Bring the schema of <db> (at <path>, for messages) up to the newest version. Each step
 * re-reads user_version under BEGIN IMMEDIATE, so two processes opening the same file at once
 * apply each step once. 0, or -1 with *err.
 */
int db_migrate(struct sqlite3 *db, const char *path, char **err);

/* Run the one-row pragma <sql> on <db>; column 0 as an integer / copied into <buf>. 0 or -1. */
int db_pragma_int(struct sqlite3 *db, const char *sql, int *out);
int db_pragma_text(struct sqlite3 *db, const char *sql, char *buf, size_t size);

/* *err = <msg> when <err> is not NULL, else free <msg>. */
void db_set_err(char **err, char *msg);

#endif
