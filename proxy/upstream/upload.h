/*
 * A request body for libcurl: bytes copied from memory, or a range of a file read with pread
 * as libcurl sends it (never whole into memory, the file offset never moved), sent from its
 * start again on every attempt.
 */
#ifndef PROXY_UPLOAD_H
#define PROXY_UPLOAD_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

struct upload;

/* A body of a copy of the <len> bytes at <data> (NULL when <len> is 0). Caller frees. */
struct upload *upload_from_memory(const char *data, size_t len);

/*
 * A body of the <len> bytes of <fd> from <offset>. The fd is dup'ed: the caller may close its
 * own at once. Returns NULL with *err (caller frees) when the dup fails or <offset> or <len>
 * is negative. Caller frees.
 */
struct upload *upload_from_fd(int fd, int64_t offset, int64_t len, char **err);

/* Close and free; accepts NULL. */
void upload_free(struct upload *u);

/*
 * Send <u>, from its start, as the body of the request about to go on <easy>: CURLOPT_UPLOAD
 * with the length (Content-Length, no implicit Content-Type) and the read and seek callbacks.
 * Bytes handed to libcurl are added to *<sent>. <u> must outlive the transfer.
 */
void upload_attach(struct upload *u, CURL *easy, uint64_t *sent);

/* Why the body could not be read during the current attempt, or NULL. Borrowed. */
const char *upload_error(const struct upload *u);

#endif
