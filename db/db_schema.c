/* The index's schema: every version's step, and the migration that applies them in order. */
#include "config.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "db-int.h"
#include "util.h"

/*
 * The schema, one step per element: step i takes user_version i to i + 1 and runs in its own
 * transaction. Append new steps; never edit a step that has shipped. See docs/internals/index.md.
 */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE repositories ("
    "\n  id INTEGER PRIMARY KEY,"
    "\n  rule TEXT NOT NULL,"
    "\n  name TEXT NOT NULL,"
    "\n  UNIQUE (rule, name));\n"
    "CREATE TABLE tags ("
    "\n  repo_id INTEGER NOT NULL REFERENCES repositories (id),"
    "\n  tag TEXT NOT NULL,"
    "\n  digest TEXT NOT NULL,"
    "\n  media_type TEXT NOT NULL,"
    "\n  checked_at INTEGER NOT NULL,"
    "\n  changed_at INTEGER NOT NULL,"
    "\n  last_pulled_at INTEGER NOT NULL DEFAULT 0,"
    "\n  PRIMARY KEY (repo_id, tag)) WITHOUT ROWID;\n"
    "CREATE INDEX tags_digest ON tags (digest);\n"
    "CREATE TABLE manifests ("
    "\n  digest TEXT NOT NULL PRIMARY KEY,"
    "\n  media_type TEXT NOT NULL,"
    "\n  size INTEGER NOT NULL,"
    "\n  stored_at INTEGER NOT NULL) WITHOUT ROWID;\n"
    "CREATE TABLE manifest_refs ("
    "\n  manifest TEXT NOT NULL REFERENCES manifests (digest),"
    "\n  child TEXT NOT NULL,"
    "\n  kind TEXT NOT NULL,"
    "\n  PRIMARY KEY (manifest, child, kind)) WITHOUT ROWID;\n"
    "CREATE INDEX manifest_refs_child ON manifest_refs (child);\n"
    "CREATE INDEX manifest_refs_kind_child ON manifest_refs (kind, child);\n"
    "CREATE TABLE blobs ("
    "\n  digest TEXT NOT NULL PRIMARY KEY,"
    "\n  size INTEGER NOT NULL,"
    "\n  stored_at INTEGER NOT NULL,"
    "\n  last_access INTEGER NOT NULL) WITHOUT ROWID;\n"
    "CREATE TABLE repo_digests ("
    "\n  repo_id INTEGER NOT NULL REFERENCES repositories (id),"
    "\n  digest TEXT NOT NULL,"
    "\n  PRIMARY KEY (repo_id, digest)) WITHOUT ROWID;\n"
    "CREATE INDEX repo_digests_digest ON repo_digests (digest);\n",
    /*
     * 2: a manifest's descriptor list no longer vouches that its repository holds what it
     * lists (any repository can list any digest). The marks that version 1 made from
     * descriptors cannot be told from marks of real fetches, so all marks of referenced
     * digests go; each costs one upstream confirmation (HEAD) the next time it is asked.
     */
    "DELETE FROM repo_digests WHERE digest IN (SELECT child FROM manifest_refs);\n"
    /* Tags that a client taking no index pinned to an index's child (the first client's
     * Accept used to decide what a tag meant) are re-checked at their next pull. */
    "UPDATE tags SET checked_at = 0"
    " WHERE digest IN (SELECT child FROM manifest_refs WHERE kind = 'manifest');\n",
    /*
     * 3: the ECR tier. ecr_push is the write-behind push queue (db_push.c): one row per
     * manifest (and tag) to push, taken while a push is in flight. ecr_blobs is what the tier
     * knows each ECR repository holds, so a push uploads only what is missing.
     */
    "CREATE TABLE ecr_push ("
    "\n  id INTEGER PRIMARY KEY,"
    "\n  ecr_repo TEXT NOT NULL,"
    "\n  repo INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,"
    "\n  digest TEXT NOT NULL,"
    "\n  tag TEXT NOT NULL DEFAULT '',"
    "\n  queued_at INTEGER NOT NULL,"
    "\n  next_at INTEGER NOT NULL,"
    "\n  attempts INTEGER NOT NULL DEFAULT 0,"
    "\n  last_error TEXT NOT NULL DEFAULT '',"
    "\n  taken INTEGER NOT NULL DEFAULT 0,"
    "\n  UNIQUE (ecr_repo, digest, tag));\n"
    "CREATE INDEX ecr_push_due ON ecr_push (taken, next_at);\n"
    /* The foreign key's child index: a deleted repository's rows go without a scan. */
    "CREATE INDEX ecr_push_repo ON ecr_push (repo);\n"
    "CREATE TABLE ecr_blobs ("
    "\n  ecr_repo TEXT NOT NULL,"
    "\n  digest TEXT NOT NULL,"
    "\n  PRIMARY KEY (ecr_repo, digest)) WITHOUT ROWID;\n",
    /*
     * 4: operations. The sweep orders images by their last pull: a manifest pulled by digest
     * gets its own stamp (until now only blobs had one), starting at when it was stored. The
     * status page ranks tags by pulls, counted from now on.
     */
    "ALTER TABLE manifests ADD COLUMN last_pulled_at INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE manifests SET last_pulled_at = stored_at;\n"
    "ALTER TABLE tags ADD COLUMN pulls INTEGER NOT NULL DEFAULT 0;\n"
    /* The sweep reads each repository's images through its marks, by digest. */
    "CREATE INDEX tags_repo_digest ON tags (repo_id, digest);\n",
};

#define INDEX_SCHEMA_VERSION ((int)ARRAY_LEN(migrations))

/* Run the one-row pragma <sql> on <db> and read column 0 as an integer. 0 or -1. */
int db_pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int(s, 0);
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

/*
 * Bring the schema of <db> (at <path>, for messages) up to INDEX_SCHEMA_VERSION. Each step
 * re-reads user_version under BEGIN IMMEDIATE, so two processes opening the same file at once
 * apply each step once. 0, or -1 with *err.
 */
int db_migrate(sqlite3 *db, const char *path, char **err)
{
    char *sql = NULL;
    int rc = -1, in_tx = 0, v;

    for (;;) {
        if (db_pragma_int(db, "PRAGMA user_version", &v) == -1) {
            db_set_err(err, xasprintf("%s: reading schema version: %s", path, sqlite3_errmsg(db)));
            goto out;
        }
        if (v > INDEX_SCHEMA_VERSION) {
            db_set_err(err, xasprintf("index.db schema version %d is newer than this binary (%d)",
                                      v, INDEX_SCHEMA_VERSION));
            goto out;
        }
        if (v == INDEX_SCHEMA_VERSION)
            break;
        if (!in_tx) {
            /* Take the write lock, then read the version again under it. */
            if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
                db_set_err(err,
                           xasprintf("%s: locking for migration: %s", path, sqlite3_errmsg(db)));
                goto out;
            }
            in_tx = 1;
            continue;
        }
        free(sql);
        sql = xasprintf("PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            db_set_err(err, xasprintf("%s: schema migration to version %d: %s", path, v + 1,
                                      sqlite3_errmsg(db)));
            goto out;
        }
        in_tx = 0;
    }
    rc = 0;
out:
    /* Still inside BEGIN: nothing to keep on success (another process migrated), undo on error. */
    if (in_tx && !sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    free(sql);
    return rc;
}
