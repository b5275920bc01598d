/*
 * The content-addressed store under DATA_DIR: blobs/<alg>/<xx>/<hex> for manifests and layers
 * alike, and tmp/ for fills in progress on the same filesystem. Only verified content is ever
 * renamed into blobs/.
 */
#ifndef PROXY_STORE_H
#define PROXY_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_PATH_MAX 4096

struct store;

/*
 * Open the store in <data_dir>: create blobs/sha256, blobs/sha512 and tmp/, and remove every
 * file left in tmp/ (fills cut off by a crash). Returns NULL with *err (caller frees).
 */
struct store *store_open(const char *data_dir, char **err);
void store_close(struct store *st); /* accepts NULL */

/* The file path of <digest> into <buf>; -1 when <digest> is not a valid digest. */
int store_blob_path(const struct store *st, const char *digest, char *buf, size_t size);

/* 1 when <digest> is stored, else 0. */
int store_has(const struct store *st, const char *digest);

/*
 * For index_reconcile: <arg> is the struct store. 1 when <digest> is stored, 0 when it is not
 * (the file or a directory on its path does not exist), -1 when stat failed for any other
 * reason (EACCES, EIO, ...): the store cannot tell, and store_last_error says why.
 */
int store_exists_cb(const char *digest, void *arg);

/* The last failure of store_exists_cb, one line naming the path and errno ("cannot stat
 * PATH: REASON (errno N)"), owned by <st>; NULL when there was none. */
const char *store_last_error(const struct store *st);

/*
 * Open stored <digest> for reading: returns an fd the caller closes and sets *size; -1 when
 * it is not stored (errno ENOENT) or cannot be opened.
 */
int store_open_blob(const struct store *st, const char *digest, int64_t *size);

/* Read stored <digest> of at most <max> bytes into a fresh buffer (caller frees) and *len.
 * Returns NULL when absent, unreadable or larger than <max>. */
char *store_read_small(const struct store *st, const char *digest, size_t max, size_t *len);

/*
 * Create a fresh temp file in tmp/ for a fill: returns an O_RDWR fd the caller owns and
 * writes its path into <path>. -1 on error (errno set).
 */
int store_tmp_create(const struct store *st, char *path, size_t size);

/*
 * Commit verified content: fsync <fd>, rename <tmp_path> to <digest>'s place, fsync the
 * directory. <fd> stays open and owned by the caller. 0, or -1 with *err (caller frees); on
 * failure the temp file is left for the caller to discard.
 */
int store_commit(const struct store *st, int fd, const char *tmp_path, const char *digest,
                 char **err);

/* Write <len> bytes of <data> as <digest> (already verified) through tmp/ and commit. 0/-1. */
int store_put_small(const struct store *st, const char *digest, const char *data, size_t len,
                    char **err);

/*
 * Remove stored <digest> (the sweep): its file is unlinked; a reader holding it open keeps
 * reading the same inode to its end. A file already gone is no error. 0, or -1 (errno set).
 */
int store_remove(const struct store *st, const char *digest);

/* Remove a temp file; accepts a path that no longer exists. */
void store_tmp_discard(const struct store *st, const char *tmp_path);

/* Bytes available to unprivileged writers on the store's filesystem, or -1. */
int64_t store_free_bytes(const struct store *st);

#endif
