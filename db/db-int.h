/* Shared by db_index.c and db_schema.c, and by nothing outside db/. */
#ifndef DB_INT_H
#define DB_INT_H

#include <stddef.h>

struct sqlite3;

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
