/* The SQLite index behind db_index.h: prepared statements and every query (the schema and its
 * migrations: db_schema.c; the ECR push queue: db_push.c). */
#include "config.h"

#include "db_index.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db-int.h"
#include "util.h"

#define INDEX_BUSY_TIMEOUT_MS 5000

/* Indexed by enum st; prepared once in index_open. Parameters are numbered to read the SQL. */
static const char *const statements[ST_COUNT] = {
    [ST_SP_BEGIN] = "SAVEPOINT ix",
    [ST_SP_RELEASE] = "RELEASE ix",
    [ST_SP_ROLLBACK] = "ROLLBACK TO ix",
    [ST_REPO_GET] = "SELECT id FROM repositories WHERE rule = ?1 AND name = ?2",
    [ST_REPO_INS] = "INSERT INTO repositories (rule, name) VALUES (?1, ?2)"
                    " ON CONFLICT (rule, name) DO NOTHING",
    [ST_TAG_GET] = "SELECT digest, media_type, checked_at, changed_at, last_pulled_at"
                   " FROM tags WHERE repo_id = ?1 AND tag = ?2",
    /* On the right of SET every column is the old value, so the order is irrelevant. */
    [ST_TAG_PUT] = "INSERT INTO tags (repo_id, tag, digest, media_type, checked_at, changed_at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?5)"
                   " ON CONFLICT (repo_id, tag) DO UPDATE SET"
                   "  changed_at = CASE WHEN digest = excluded.digest THEN changed_at"
                   "               ELSE excluded.changed_at END,"
                   "  digest = excluded.digest, media_type = excluded.media_type,"
                   "  checked_at = excluded.checked_at",
    [ST_TAG_CHECKED] = "UPDATE tags SET checked_at = ?3 WHERE repo_id = ?1 AND tag = ?2",
    [ST_TAG_PULLED] = "UPDATE tags SET last_pulled_at = ?3, pulls = pulls + ?4"
                      " WHERE repo_id = ?1 AND tag = ?2",
    [ST_TAGS_LIST] = "SELECT tag FROM tags WHERE repo_id = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3",
    [ST_MANIFEST_INS] = "INSERT INTO manifests (digest, media_type, size, stored_at)"
                        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (digest) DO NOTHING",
    [ST_MANIFEST_GET] = "SELECT media_type, size FROM manifests WHERE digest = ?1",
    [ST_REF_INS] = "INSERT INTO manifest_refs (manifest, child, kind) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (manifest, child, kind) DO NOTHING",
    [ST_REPO_DIGEST_INS] = "INSERT INTO repo_digests (repo_id, digest) VALUES (?1, ?2)"
                           " ON CONFLICT (repo_id, digest) DO NOTHING",
    /*
     * Known in a repository: marked there directly, and only by a fetch from that repository
     * upstream or upstream's confirmation (HEAD). A manifest known in the repository does not
     * vouch for what it lists: the spec allows dangling references, so listing a digest
     * proves nothing about who may read it.
     */
    [ST_REPO_HAS] = "SELECT EXISTS (SELECT 1 FROM repo_digests WHERE repo_id = ?1 AND digest = ?2)",
    [ST_REFERRERS] = "SELECT manifest FROM manifest_refs WHERE kind = 'subject' AND child = ?1"
                     " ORDER BY manifest",
    [ST_BLOB_PUT] = "INSERT INTO blobs (digest, size, stored_at, last_access)"
                    " VALUES (?1, ?2, ?3, ?3)"
                    " ON CONFLICT (digest) DO UPDATE SET last_access = excluded.last_access",
    [ST_BLOB_GET] = "SELECT size FROM blobs WHERE digest = ?1",
    [ST_BLOB_TOUCH] = "UPDATE blobs SET last_access = ?2 WHERE digest = ?1",
    [ST_ALL_DIGESTS] = "SELECT digest FROM blobs UNION SELECT digest FROM manifests",
    [ST_DROP_REFS] = "DELETE FROM manifest_refs WHERE manifest = ?1",
    [ST_DROP_MANIFEST] = "DELETE FROM manifests WHERE digest = ?1",
    [ST_DROP_BLOB] = "DELETE FROM blobs WHERE digest = ?1",
    [ST_DROP_REPO_DIGESTS] = "DELETE FROM repo_digests WHERE digest = ?1",
    [ST_DROP_TAGS] = "DELETE FROM tags WHERE digest = ?1",
    [ST_MANIFEST_TOUCH] = "UPDATE manifests SET last_pulled_at = ?2 WHERE digest = ?1",
};

/* Run the one-row pragma <sql> on <db> and copy column 0 into <buf>. 0 or -1. */
int db_pragma_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    column_copy(s, 0, buf, size);
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

void db_set_err(char **err, char *msg)
{
    if (err != NULL)
        *err = msg;
    else
        free(msg);
}

/* Prepare the <n> statements <sql> into <out>, once for the connection's life. 0, or -1 with
 * *err. */
static int prepare_all(struct index *ix, const char *const *sql, sqlite3_stmt **out, int n,
                       const char *path, char **err)
{
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(ix->ix_db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &out[i], NULL) !=
            SQLITE_OK) {
            db_set_err(err, xasprintf("%s: preparing \"%s\": %s", path, sql[i],
                                      sqlite3_errmsg(ix->ix_db)));
            return -1;
        }
    }
    return 0;
}

struct index *index_open(const char *path, char **err)
{
    struct index *ix = xcalloc(1, sizeof(*ix));
    struct index *ret = NULL;
    char mode[16];
    int fk = 0;

    ix->magic = INDEX_MAGIC;
    if (sqlite3_open_v2(path, &ix->ix_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        db_set_err(err, xasprintf("%s: %s", path,
                                  ix->ix_db != NULL ? sqlite3_errmsg(ix->ix_db) : "out of memory"));
        goto out;
    }
    sqlite3_extended_result_codes(ix->ix_db, 1);
    if (sqlite3_busy_timeout(ix->ix_db, INDEX_BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(ix->ix_db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", NULL, NULL,
                     NULL) != SQLITE_OK) {
        db_set_err(err, xasprintf("%s: %s", path, sqlite3_errmsg(ix->ix_db)));
        goto out;
    }
    /* A build without foreign key support ignores the pragma; reading it back shows that. */
    if (db_pragma_int(ix->ix_db, "PRAGMA foreign_keys", &fk) == -1 || fk != 1) {
        db_set_err(err, xasprintf("%s: cannot enable foreign keys", path));
        goto out;
    }
    if (db_pragma_text(ix->ix_db, "PRAGMA journal_mode = WAL", mode, sizeof(mode)) == -1) {
        db_set_err(err, xasprintf("%s: setting WAL mode: %s", path, sqlite3_errmsg(ix->ix_db)));
        goto out;
    }
    /* An in-memory database (tests) has no journal file and stays "memory". */
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
        db_set_err(err, xasprintf("%s: WAL mode refused (journal_mode is %s)", path, mode));
        goto out;
    }
    if (db_migrate(ix->ix_db, path, err) == -1)
        goto out;
    if (prepare_all(ix, statements, ix->ix_st, ST_COUNT, path, err) == -1 ||
        prepare_all(ix, db_push_statements, ix->ix_push_st, PST_COUNT, path, err) == -1)
        goto out;
    ret = ix;
    ix = NULL;
out:
    index_close(ix);
    return ret;
}

void index_close(struct index *ix)
{
    if (ix == NULL)
        return;
    CHECK_INDEX(ix);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(ix->ix_st[i]);
    for (int i = 0; i < PST_COUNT; i++)
        sqlite3_finalize(ix->ix_push_st[i]);
    for (int i = 0; i < 2; i++)
        sqlite3_finalize(ix->ix_gc_used[i]);
    /* Every statement is finalized, so this closes for good (and checkpoints the WAL). */
    sqlite3_close(ix->ix_db);
    ix->magic = 0;
    free(ix);
}

/* The id of (<rule>, <name>), 0 when absent (ids start at 1), -1 on error. */
static int64_t repo_get(struct index *ix, const char *rule, const char *name)
{
    sqlite3_stmt *s = st(ix, ST_REPO_GET);
    int64_t id = -1;
    int r;

    if (bind_text(s, 1, rule) == -1 || bind_text(s, 2, name) == -1)
        goto out;
    r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    else if (r == SQLITE_DONE)
        id = 0;
out:
    st_done(s);
    return id;
}

int64_t index_repo_find(struct index *ix, const char *rule, const char *name)
{
    CHECK_INDEX(ix);
    return repo_get(ix, rule, name);
}

int64_t index_repo_id(struct index *ix, const char *rule, const char *name)
{
    sqlite3_stmt *s;
    int64_t id;

    CHECK_INDEX(ix);
    /* Look up first: the common case stays a read and takes no write lock. */
    id = repo_get(ix, rule, name);
    if (id != 0)
        return id;
    s = st(ix, ST_REPO_INS);
    if (bind_text(s, 1, rule) == -1 || bind_text(s, 2, name) == -1) {
        st_done(s);
        return -1;
    }
    if (st_exec(s) == -1)
        return -1;
    /* Read back rather than last_insert_rowid: another process may have inserted it first. */
    id = repo_get(ix, rule, name);
    return id == 0 ? -1 : id;
}

int index_tag_get(struct index *ix, int64_t repo, const char *tag, struct index_tag *out)
{
    sqlite3_stmt *s;
    int rc = -1, r;

    CHECK_INDEX(ix);
    s = st(ix, ST_TAG_GET);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, tag) == -1)
        goto out;
    r = sqlite3_step(s);
    if (r == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    column_copy(s, 0, out->it_digest, sizeof(out->it_digest));
    column_copy(s, 1, out->it_media_type, sizeof(out->it_media_type));
    out->it_checked_at = sqlite3_column_int64(s, 2);
    out->it_changed_at = sqlite3_column_int64(s, 3);
    out->it_last_pulled_at = sqlite3_column_int64(s, 4);
    rc = 1;
out:
    st_done(s);
    return rc;
}

int index_tag_put(struct index *ix, int64_t repo, const char *tag, const char *digest,
                  const char *media_type, int64_t now)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    /* What index_tag_get could not hand back whole is refused rather than stored. */
    if (strlen(digest) >= INDEX_DIGEST_MAX || strlen(media_type) >= INDEX_MEDIA_TYPE_MAX)
        return -1;
    s = st(ix, ST_TAG_PUT);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, tag) == -1 || bind_text(s, 3, digest) == -1 ||
        bind_text(s, 4, media_type) == -1 || bind_int(s, 5, now) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

int index_tag_checked(struct index *ix, int64_t repo, const char *tag, int64_t now)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = st(ix, ST_TAG_CHECKED);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, tag) == -1 || bind_int(s, 3, now) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

int index_tags_pulled(struct index *ix, const int64_t *repos, const char *const *tags,
                      const int64_t *counts, size_t n, int64_t now)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    if (n == 0)
        return 0;
    if (tx_begin(ix) == -1)
        return -1;
    s = st(ix, ST_TAG_PULLED);
    for (size_t i = 0; i < n; i++) {
        if (bind_int(s, 1, repos[i]) == -1 || bind_text(s, 2, tags[i]) == -1 ||
            bind_int(s, 3, now) == -1 || bind_int(s, 4, counts != NULL ? counts[i] : 1) == -1) {
            st_done(s);
            goto out;
        }
        if (st_exec(s) == -1)
            goto out;
    }
    if (tx_commit(ix) == -1)
        goto out;
    rc = 0;
out:
    if (rc == -1)
        tx_rollback(ix);
    return rc;
}

void index_strings_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/*
 * Step <s>, already bound, to the end and collect column 0 of each row into a fresh array
 * *out of *count strings (NULL when empty; the caller owns both, index_strings_free). Resets
 * <s>. 0, or -1 with *out NULL and *count 0.
 */
static int collect_strings(sqlite3_stmt *s, char ***out, size_t *count)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = -1, r;

    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);

        if (t == NULL) /* NOT NULL columns: only out of memory gets here */
            goto out;
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = xstrdup((const char *)t);
    }
    if (r != SQLITE_DONE)
        goto out;
    *out = v;
    *count = n;
    v = NULL;
    n = 0;
    rc = 0;
out:
    st_done(s);
    index_strings_free(v, n);
    if (rc == -1) {
        *out = NULL;
        *count = 0;
    }
    return rc;
}

int index_tags_list(struct index *ix, int64_t repo, const char *last, int limit, char ***tags,
                    size_t *count)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = st(ix, ST_TAGS_LIST);
    /* Every tag sorts after "", and LIMIT -1 is no limit in SQLite. */
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, last != NULL ? last : "") == -1 ||
        bind_int(s, 3, limit < 0 ? -1 : limit) == -1) {
        st_done(s);
        *tags = NULL;
        *count = 0;
        return -1;
    }
    return collect_strings(s, tags, count);
}

int index_manifest_put(struct index *ix, int64_t repo, const char *digest, const char *media_type,
                       int64_t size, const struct index_child *children, size_t n, int64_t now)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    if (strlen(digest) >= INDEX_DIGEST_MAX || strlen(media_type) >= INDEX_MEDIA_TYPE_MAX)
        return -1;
    if (tx_begin(ix) == -1)
        return -1;
    s = st(ix, ST_MANIFEST_INS);
    if (bind_text(s, 1, digest) == -1 || bind_text(s, 2, media_type) == -1 ||
        bind_int(s, 3, size) == -1 || bind_int(s, 4, now) == -1) {
        st_done(s);
        goto out;
    }
    if (st_exec(s) == -1)
        goto out;
    s = st(ix, ST_REPO_DIGEST_INS);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, digest) == -1) {
        st_done(s);
        goto out;
    }
    if (st_exec(s) == -1)
        goto out;
    for (size_t i = 0; i < n; i++) {
        s = st(ix, ST_REF_INS);
        if (bind_text(s, 1, digest) == -1 || bind_text(s, 2, children[i].ic_digest) == -1 ||
            bind_text(s, 3, children[i].ic_kind) == -1) {
            st_done(s);
            goto out;
        }
        if (st_exec(s) == -1)
            goto out;
    }
    if (tx_commit(ix) == -1)
        goto out;
    rc = 0;
out:
    if (rc == -1)
        tx_rollback(ix);
    return rc;
}

int index_manifest_get(struct index *ix, const char *digest, char *media_type, size_t mtsize,
                       int64_t *size)
{
    sqlite3_stmt *s;
    int rc = -1, r;

    CHECK_INDEX(ix);
    s = st(ix, ST_MANIFEST_GET);
    if (bind_text(s, 1, digest) == -1)
        goto out;
    r = sqlite3_step(s);
    if (r == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    if (media_type != NULL)
        column_copy(s, 0, media_type, mtsize);
    if (size != NULL)
        *size = sqlite3_column_int64(s, 1);
    rc = 1;
out:
    st_done(s);
    return rc;
}

int index_referrers(struct index *ix, const char *subject, char ***digests, size_t *count)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = st(ix, ST_REFERRERS);
    if (bind_text(s, 1, subject) == -1) {
        st_done(s);
        *digests = NULL;
        *count = 0;
        return -1;
    }
    return collect_strings(s, digests, count);
}

int index_blob_put(struct index *ix, const char *digest, int64_t size, int64_t now)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = st(ix, ST_BLOB_PUT);
    if (bind_text(s, 1, digest) == -1 || bind_int(s, 2, size) == -1 || bind_int(s, 3, now) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

int index_blob_get(struct index *ix, const char *digest, int64_t *size)
{
    sqlite3_stmt *s;
    int rc = -1, r;

    CHECK_INDEX(ix);
    s = st(ix, ST_BLOB_GET);
    if (bind_text(s, 1, digest) == -1)
        goto out;
    r = sqlite3_step(s);
    if (r == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if (r != SQLITE_ROW)
        goto out;
    if (size != NULL)
        *size = sqlite3_column_int64(s, 0);
    rc = 1;
out:
    st_done(s);
    return rc;
}

int index_blobs_touch(struct index *ix, const char *const *digests, size_t n, int64_t now)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    if (n == 0)
        return 0;
    if (tx_begin(ix) == -1)
        return -1;
    /* A digest is a blob or a manifest (or, fetched both ways, both): each table's stamp. */
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            s = st(ix, k == 0 ? ST_BLOB_TOUCH : ST_MANIFEST_TOUCH);
            if (bind_text(s, 1, digests[i]) == -1 || bind_int(s, 2, now) == -1) {
                st_done(s);
                goto out;
            }
            if (st_exec(s) == -1)
                goto out;
        }
    }
    if (tx_commit(ix) == -1)
        goto out;
    rc = 0;
out:
    if (rc == -1)
        tx_rollback(ix);
    return rc;
}

int index_repo_digest_add(struct index *ix, int64_t repo, const char *digest)
{
    sqlite3_stmt *s;

    CHECK_INDEX(ix);
    s = st(ix, ST_REPO_DIGEST_INS);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, digest) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

int index_repo_has(struct index *ix, int64_t repo, const char *digest)
{
    sqlite3_stmt *s;
    int rc = -1;

    CHECK_INDEX(ix);
    s = st(ix, ST_REPO_HAS);
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, digest) == -1)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    rc = sqlite3_column_int(s, 0) != 0;
out:
    st_done(s);
    return rc;
}

int index_all_digests(struct index *ix, char ***digests, size_t *count)
{
    CHECK_INDEX(ix);
    return collect_strings(st(ix, ST_ALL_DIGESTS), digests, count);
}

/* Bind <digest> as ?1 of statement <id>, run it, and add the rows it changed to *changed. */
static int drop_by_digest(struct index *ix, enum st id, const char *digest, long *changed)
{
    sqlite3_stmt *s = st(ix, id);

    if (bind_text(s, 1, digest) == -1) {
        st_done(s);
        return -1;
    }
    if (st_exec(s) == -1)
        return -1;
    if (changed != NULL)
        *changed += sqlite3_changes(ix->ix_db);
    return 0;
}

/*
 * The digests are read into memory first and <exists> runs outside any transaction: it does
 * file-system work, may take a while over a large store, and must not hold the write lock.
 * Only the drops run in one transaction. A row is dropped only when <exists> returns 0; -1
 * from it (the store could not tell) aborts without dropping anything, since a transient
 * error must not empty the index. A dropped manifest's own references go (it is their
 * parent); references to it from surviving manifests stay, as those manifests still name it.
 */
long index_reconcile(struct index *ix, int (*exists)(const char *digest, void *arg), void *arg)
{
    char **all = NULL;
    size_t n = 0, nmissing = 0;
    size_t *missing = NULL;
    long dropped = 0, rc = -1;
    int in_tx = 0;

    CHECK_INDEX(ix);
    if (index_all_digests(ix, &all, &n) == -1)
        goto out;
    missing = xcalloc(n, sizeof(*missing));
    for (size_t i = 0; i < n; i++) {
        int r = exists(all[i], arg);

        if (r == -1)
            goto out;
        if (r == 0)
            missing[nmissing++] = i;
    }
    if (nmissing == 0) {
        rc = 0;
        goto out;
    }
    if (tx_begin(ix) == -1)
        goto out;
    in_tx = 1;
    for (size_t i = 0; i < nmissing; i++) {
        const char *d = all[missing[i]];

        if (drop_by_digest(ix, ST_DROP_REFS, d, NULL) == -1 ||
            drop_by_digest(ix, ST_DROP_MANIFEST, d, &dropped) == -1 ||
            drop_by_digest(ix, ST_DROP_BLOB, d, &dropped) == -1 ||
            drop_by_digest(ix, ST_DROP_REPO_DIGESTS, d, NULL) == -1 ||
            drop_by_digest(ix, ST_DROP_TAGS, d, NULL) == -1)
            goto out;
    }
    if (tx_commit(ix) == -1)
        goto out;
    in_tx = 0;
    rc = dropped;
out:
    if (in_tx)
        tx_rollback(ix);
    free(missing);
    index_strings_free(all, n);
    return rc;
}

int index_integrity_ok(struct index *ix)
{
    sqlite3_stmt *s = NULL;
    const unsigned char *t;
    int rc = -1;

    CHECK_INDEX(ix);
    /* Rare and slow anyway: prepared here, not kept. */
    if (sqlite3_prepare_v2(ix->ix_db, "PRAGMA integrity_check", -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    t = sqlite3_column_text(s, 0);
    if (t == NULL)
        goto out;
    rc = strcmp((const char *)t, "ok") == 0;
out:
    sqlite3_finalize(s);
    return rc;
}
