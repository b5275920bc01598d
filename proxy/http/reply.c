/* Replies shared by the server, the fills and the api (reply.h). */
#include "config.h"

#include "reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exchange.h"
#include "range.h"

#define DIGEST_TEXT_MAX 160 /* "sha512:" and 128 hex digits, with room */

void http_set_common_headers(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Docker-Distribution-API-Version",
                      "registry/2.0");
}

/* The headers of a stored object's answer: type, digest, ETag, and a Warning if any. */
void http_set_object_headers(struct evhttp_request *req, const char *content_type,
                             const char *digest, const char *warning)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char etag[DIGEST_TEXT_MAX + 4];

    http_set_common_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Docker-Content-Digest", digest);
    snprintf(etag, sizeof(etag), "\"%s\"", digest);
    evhttp_add_header(h, "ETag", etag);
    if (warning != NULL)
        evhttp_add_header(h, "Warning", warning);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* Send <body> of <len> bytes with <status>; for HEAD only the headers go out. */
void http_send_body(struct evhttp_request *req, int status, const char *content_type,
                    const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    char clen[32];

    /* An error after a stored object's headers were set (416) replaces them, once each. */
    evhttp_remove_header(h, "Content-Type");
    evhttp_remove_header(h, "Docker-Distribution-API-Version");
    evhttp_remove_header(h, "Content-Length");
    http_set_common_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    snprintf(clen, sizeof(clen), "%zu", len);
    evhttp_add_header(h, "Content-Length", clen);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(buf, body, len);
    evhttp_send_reply(req, status, http_reason(status), buf);
    evbuffer_free(buf);
}

static uint64_t error_responses; /* http_send_error's count; the loop is single-threaded */

void http_send_error(struct evhttp_request *req, enum oci_error e, const char *message,
                     const char *detail)
{
    error_responses++;
    char *body = oci_error_body(e, message, detail);

    http_send_body(req, oci_error_status(e), "application/json", body, strlen(body));
    free(body);
}

static uint64_t file_bytes; /* http_send_file's count; the loop is single-threaded */

#define SERVE_COPY_MAX (64 * 1024) /* bodies up to this size are read, not sendfile'd */

int http_send_file(struct evhttp_request *req, struct exchange *x, int fd, int64_t size,
                   const char *digest, const char *content_type, const char *warning, int ranges)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *range = http_range_header(evhttp_find_header(in, "Range"),
                                          evhttp_find_header(in, "If-Range"), digest);
    int64_t start = 0, end;
    char buf[192];
    int status = 200;
    struct evbuffer *out;

    end = size;
    http_set_object_headers(req, content_type, digest, warning);
    if (ranges) {
        evhttp_add_header(h, "Accept-Ranges", "bytes");
        if (range != NULL) {
            int r = http_parse_range(range, size, &start, &end);
            if (r == -1) {
                close(fd);
                snprintf(buf, sizeof(buf), "bytes */%" PRId64, size);
                evhttp_add_header(h, "Content-Range", buf);
                http_send_error(req, OCI_ERR_RANGE_INVALID, "range not satisfiable", range);
                return 0;
            }
            if (r == 1) {
                status = 206;
                snprintf(buf, sizeof(buf), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, start, end - 1,
                         size);
                evhttp_add_header(h, "Content-Range", buf);
            }
        }
    }
    snprintf(buf, sizeof(buf), "%" PRId64, end - start);
    evhttp_add_header(h, "Content-Length", buf);
    out = evbuffer_new();
    /* Without this flag libevent maps a file segment into memory instead of sendfile'ing it. */
    evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD && end > start &&
        end - start <= SERVE_COPY_MAX) {
        /* Small (manifests): one read, and the body leaves with the headers. */
        struct evbuffer_iovec v;
        ssize_t got = -1;
        if (evbuffer_reserve_space(out, end - start, &v, 1) == 1) {
            got = pread(fd, v.iov_base, (size_t)(end - start), start);
            if (got == end - start) {
                v.iov_len = (size_t)got;
                evbuffer_commit_space(out, &v, 1);
            }
        }
        close(fd);
        if (got != end - start) {
            evbuffer_free(out);
            return -1;
        }
        file_bytes += (uint64_t)(end - start);
    } else if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD && end > start) {
        struct evbuffer_file_segment *seg =
            evbuffer_file_segment_new(fd, start, end - start, EVBUF_FS_CLOSE_ON_FREE);
        if (seg == NULL) {
            close(fd);
            evbuffer_free(out);
            return -1;
        }
        evbuffer_add_file_segment(out, seg, 0, end - start);
        evbuffer_file_segment_free(seg);
        file_bytes += (uint64_t)(end - start);
        exchange_cork(x);
    } else {
        close(fd);
    }
    evhttp_send_reply(req, status, http_reason(status), out);
    evbuffer_free(out);
    return 0;
}

uint64_t http_error_responses(void)
{
    return error_responses;
}

uint64_t http_file_bytes(void)
{
    return file_bytes;
}
