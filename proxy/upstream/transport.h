/*
 * The upstream transport: HTTP requests on the daemon's libevent loop through libcurl's multi
 * interface, knowing nothing of registries. One request (a req) is one method on one absolute
 * URL, with headers and an optional body from memory or from a file range, and may take
 * several attempts: connect errors, 5xx and 429 are retried with backoff (Retry-After
 * honoured up to a cap) while nothing was delivered to the caller. Before every attempt, the
 * first and each retry, the caller's on_attempt hook may add headers computed for that attempt
 * (a fresh token, a SigV4 date and signature). 3xx and 401 are answers like any other: the
 * caller (registry.c) decides what follows them.
 */
#ifndef PROXY_TRANSPORT_H
#define PROXY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "upstream-t.h"

struct event_base;
struct transport;
struct transport_req;
struct transport_headers;

enum transport_method {
    TRANSPORT_GET = 0,
    TRANSPORT_HEAD,
    TRANSPORT_PUT,
    TRANSPORT_POST,
    TRANSPORT_PATCH,
    TRANSPORT_DELETE,
};

enum transport_body {
    TRANSPORT_BODY_NONE = 0, /* PUT, POST and PATCH then send "Content-Length: 0" */
    TRANSPORT_BODY_MEMORY,   /* tr_body, tr_body_len: copied by transport_start */
    TRANSPORT_BODY_FD,       /* tr_body_length bytes of tr_body_fd from tr_body_offset, read
                                with pread as libcurl sends them, never whole into memory */
};

/* One request, as transport_start copies it: every pointer may go away once it returns. */
struct transport_request {
    enum transport_method tr_method;
    const char *tr_url;               /* absolute: "https://host/path?query" */
    const char *const *tr_headers;    /* "Name: value" lines sent on every attempt, NULL-ended;
                                         NULL for none */
    enum transport_body tr_body_kind; /* GET and HEAD never send a body */
    const char *tr_body;
    size_t tr_body_len;
    int tr_body_fd; /* dup'ed: the caller may close its own at once; the file
                       offset is never moved */
    int64_t tr_body_offset, tr_body_length;
    const char *tr_ca_file;        /* PEM bundle replacing the system's trust store, or NULL */
    const char *tr_proxy;          /* egress proxy URL; "": direct; NULL: from the environment */
    int tr_check_address;          /* refuse a private connected address (a host the operator
                                      did not name); not applied through an egress proxy */
    int tr_max_retries;            /* retries allowed to the caller's whole transfer */
    int tr_retries_used;           /* made already by its earlier requests: they count against
                                      tr_max_retries and the backoff doubles on from them */
    int tr_retry_status;           /* retry 5xx and 429 too; 0: only connect errors and the like */
    int64_t tr_max_body;           /* a larger streamed 2xx body: UPSTREAM_TOO_LARGE; -1: no cap */
    size_t tr_buffer_max;          /* 0: a 2xx body streams to on_data. Else every response
                                      body is gathered whole, up to this many bytes (more is
                                      UPSTREAM_TOO_LARGE), for on_done; on_headers is not
                                      called and any failure may be retried */
    int tr_metadata;               /* a request of the credential chain (proxy/ecr/creds.c), the
                                      only one allowed to a metadata endpoint (denylist.h): any
                                      other request there ends as UPSTREAM_REDIRECT_REFUSED
                                      without connecting */
    int64_t tr_connect_timeout_ms; /* 0: the transport's us_connect_timeout_ms */
    int64_t tr_timeout_ms;         /* the whole attempt at most this long; 0: no limit */
};

/* How a req ended. Everything is borrowed: valid only during on_done. */
struct transport_outcome {
    enum upstream_result to_res;
    const struct upstream_response *to_resp; /* status 0 when no response came */
    const char *to_location;                 /* the final response's Location header, or "" */
    const char *to_err;  /* a human reason, "" on success; URLs shown without query */
    const char *to_body; /* non-2xx: up to 16 KiB of the body; buffered: the whole body */
    size_t to_body_len;
    int to_delivered; /* on_headers was called */
    int to_retries;   /* tr_retries_used plus the retries this req made */
};

struct transport_callbacks {
    /*
     * Before every attempt, numbered from 0: add the attempt's own headers to <h> with
     * transport_headers_add/_basic (they follow tr_headers; nothing of an earlier attempt's
     * remains); <h> is valid during the call only. Return -1 to end the req as
     * UPSTREAM_ABORTED, reported from the loop, nothing sent. May be NULL.
     */
    int (*on_attempt)(void *arg, int attempt, struct transport_headers *h);
    /* The final 2xx response's headers, before its body; return -1 to abort. May be NULL. */
    int (*on_headers)(void *arg, const struct upstream_response *r);
    /* Body bytes of the 2xx response as they arrive; return -1 to abort. May be NULL. */
    int (*on_data)(void *arg, const char *data, size_t len);
    /*
     * The end, called exactly once unless the req was cancelled, from the event loop (never
     * from inside libcurl or transport_start), so it may start and cancel reqs. The req is
     * freed after this returns.
     */
    void (*on_done)(void *arg, const struct transport_outcome *o);
};

/* Create a transport on <base>. Returns NULL with *err (caller frees). */
struct transport *transport_create(struct event_base *base, const struct upstream_settings *s,
                                   char **err);
/* Cancel every req (no callbacks) and free; accepts NULL. */
void transport_destroy(struct transport *tp);

/*
 * Deny <url>'s host:port to every request without tr_metadata, as the built-in metadata
 * endpoints are (denylist.h). transport_create denies AWS_EC2_METADATA_SERVICE_ENDPOINT and
 * AWS_CONTAINER_CREDENTIALS_FULL_URI from getenv(3) itself; creds_create adds the ones it
 * reads through its own getenv. 0, or -1 with *err (caller frees) for a URL that does not
 * parse.
 */
int transport_deny_endpoint(struct transport *tp, const char *url, char **err);

/*
 * Start <rq> (copied; a body fd dup'ed). Callbacks get <arg>. Returns the req, owned by the
 * transport until on_done returns or transport_cancel.
 */
struct transport_req *transport_start(struct transport *tp, const struct transport_request *rq,
                                      const struct transport_callbacks *cbs, void *arg);

/* Stop <r> now; no callback fires after this. Not from inside <r>'s own callbacks. */
void transport_cancel(struct transport_req *r);

/* Add "<name>: <value>" to this attempt; a NULL <value> removes a header libcurl would add. */
void transport_headers_add(struct transport_headers *h, const char *name, const char *value);
/* Send this attempt with HTTP Basic credentials (libcurl builds the header; strings copied). */
void transport_headers_basic(struct transport_headers *h, const char *user, const char *password);

/* Counters for logs and metrics. */
struct transport_stats {
    uint64_t ts_requests; /* attempts sent */
    uint64_t ts_retries;
    uint64_t ts_bytes;      /* response body bytes received, each counted once (see write_cb) */
    uint64_t ts_bytes_sent; /* request body bytes handed to libcurl, again on each attempt */
    uint64_t ts_pauses;     /* bodies paused for a turn of the loop (TRANSPORT_BURST_MAX) */
};
void transport_get_stats(const struct transport *tp, struct transport_stats *out);

/* <url> as logs and error messages may show it, into <out>: scheme, host and path, never
 * userinfo (a password) or the query (a presigned URL's signature). Returns <out>. */
const char *transport_url_shown(const char *url, char *out, size_t size);

#endif
