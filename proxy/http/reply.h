/*
 * Replies: the registry's common headers, a stored object's headers, bodies from memory, the
 * OCI error JSON, and files (whole or one Range) through sendfile. Used by the server (503
 * while stopping), the fills and the api; none of them keeps state but two counters.
 */
#ifndef HTTP_REPLY_H
#define HTTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "oci.h"

struct evhttp_request;
struct exchange;

/* Docker-Distribution-API-Version. */
void http_set_common_headers(struct evhttp_request *req);
/* A stored object's answer: Content-Type, Docker-Content-Digest, ETag, and <warning> if any. */
void http_set_object_headers(struct evhttp_request *req, const char *content_type,
                             const char *digest, const char *warning);
/* The reason phrase for <status>. */
const char *http_reason(int status);
/* Send <body> of <len> bytes with <status>; for HEAD only the headers go out. */
void http_send_body(struct evhttp_request *req, int status, const char *content_type,
                    const char *body, size_t len);
/* Answer <req> with the OCI error <e>; <detail> may be NULL. */
void http_send_error(struct evhttp_request *req, enum oci_error e, const char *message,
                     const char *detail);

/*
 * Answer <req> (exchange <x>) with the object <digest> held in <fd> (<size> bytes; taken over:
 * closed or handed to the reply): the whole file, or the client's Range when <ranges>, small
 * bodies read, large ones sendfile'd and corked. <warning> adds a Warning header. Returns -1
 * when the file could not be read (nothing was sent), else 0.
 */
int http_send_file(struct evhttp_request *req, struct exchange *x, int fd, int64_t size,
                   const char *digest, const char *content_type, const char *warning, int ranges);

/* Counters for /metrics: OCI error answers, body bytes sent by http_send_file. */
uint64_t http_error_responses(void);
uint64_t http_file_bytes(void);

#endif
