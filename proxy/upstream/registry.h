/*
 * The registry client, on top of the transport (transport.h). One logical request (an xfer)
 * for a registry path on an origin may take several transport requests: a token fetch after a
 * 401, Basic auth, redirects to a CDN (with Authorization dropped, and only to public https
 * addresses unless the origin allows private ones), each retried with backoff on connect
 * errors, 5xx and 429 while no byte has been handed to the caller.
 */
#ifndef PROXY_UPSTREAM_H
#define PROXY_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "oci.h"
#include "upstream-t.h"

struct event_base;
struct transport;
struct upstream;
struct upstream_xfer;

struct upstream_target {
    const struct upstream_origin *ut_origin; /* base URL, credentials, redirect policy
                                                (borrowed) */
    const char *ut_name;                     /* repository name upstream, for the token scope */
    const char *ut_path;                     /* "/v2/<name>/manifests/<ref>", query included */
    int ut_head;                             /* HEAD instead of GET */
    const char *ut_accept;                   /* Accept header value, or NULL */
    int ut_max_retries;                      /* further attempts while nothing was delivered */
    int64_t ut_max_body; /* larger bodies are refused (UPSTREAM_TOO_LARGE); -1: no cap */
};

struct upstream_callbacks {
    /* The final 2xx response's headers; return -1 to abort the xfer. May be NULL. */
    int (*on_headers)(void *arg, const struct upstream_response *r);
    /* Body bytes of the 2xx response as they arrive; return -1 to abort. May be NULL. */
    int (*on_data)(void *arg, const char *data, size_t len);
    /*
     * The end, called exactly once unless the xfer was cancelled, from the event loop (never
     * from inside libcurl): <res>, the final response <r> (status 0 when none came), a human
     * <err> ("" on success) and, for non-2xx responses, up to 16 KiB of their <body>.
     * The xfer is freed after this returns.
     */
    void (*on_done)(void *arg, enum upstream_result res, const struct upstream_response *r,
                    const char *err, const char *body, size_t body_len);
};

/* Create the client, and its transport, on <base>. Returns NULL with *err (caller frees). */
struct upstream *upstream_create(struct event_base *base, const struct upstream_settings *s,
                                 char **err);
/* Cancel every xfer and token fetch (no callbacks), free them and the transport; accepts
 * NULL. */
void upstream_destroy(struct upstream *up);

/*
 * The transport <up> sends on, for requests to origins that are no registry (borrowed: it
 * lives until upstream_destroy, which cancels whatever still runs on it).
 */
struct transport *upstream_transport(struct upstream *up);

/*
 * Start an xfer for <t> (copied; the origin is borrowed and must outlive it). Callbacks get
 * <arg>. Returns the xfer, owned by the client until on_done returns or upstream_cancel.
 */
struct upstream_xfer *upstream_start(struct upstream *up, const struct upstream_target *t,
                                     const struct upstream_callbacks *cbs, void *arg);

/* Stop <x> now; no callback fires after this. Must not be called from inside its callbacks. */
void upstream_cancel(struct upstream_xfer *x);

/* Counters for logs and metrics. */
struct upstream_stats {
    uint64_t us_requests; /* HTTP exchanges sent, tokens and redirects included */
    uint64_t us_token_fetches;
    uint64_t us_retries;
    uint64_t us_bytes;  /* body bytes received, each counted once (transport.c) */
    uint64_t us_pauses; /* bodies paused for a turn of the loop (TRANSPORT_BURST_MAX) */
};
void upstream_get_stats(const struct upstream *up, struct upstream_stats *out);

/*
 * The health of one origin as its exchanges ended: the last final status, the last failure
 * (its text holds no secret: URLs as transport_url_shown writes them) and the last
 * ratelimit-remaining header seen, as received ("100;w=21600"). Updated when an xfer ends
 * (never when it is cancelled); times are util_now()'s.
 */
enum upstream_health_state {
    UPSTREAM_HEALTH_UNKNOWN = 0, /* no exchange with it has ended yet */
    UPSTREAM_HEALTH_OK,          /* the last one was answered: 2xx, 404 or another refusal */
    UPSTREAM_HEALTH_FAILING,     /* network error, 5xx, 429, 401/403, auth or redirect refused */
};

struct upstream_health {
    enum upstream_health_state uh_state;
    int uh_status;           /* the last final HTTP status, 0 when none came */
    int64_t uh_ended_at;     /* when the last exchange ended; 0: never */
    int64_t uh_failed_at;    /* when the last failure happened; 0: never */
    char uh_error[256];      /* what that failure was; "" when none */
    int64_t uh_ratelimit_at; /* when uh_ratelimit was received; 0: never */
    char uh_ratelimit[64];   /* ratelimit-remaining as received; "" when never seen */
    uint64_t uh_exchanges, uh_failures;
};

/* How an xfer that ended with <res> and <status> counts for its origin's health;
 * UPSTREAM_HEALTH_UNKNOWN when it says nothing of the origin (the caller aborted). */
enum upstream_health_state upstream_health_classify(enum upstream_result res, int status);

/*
 * <o>'s health into <out> (all zero, UPSTREAM_HEALTH_UNKNOWN, when <up> never ended an xfer
 * for it). <o> is matched by address: pass the origin the xfers were started with.
 */
void upstream_health_get(const struct upstream *up, const struct upstream_origin *o,
                         struct upstream_health *out);

/*
 * The OCI error that answers a client when an upstream request ended with <res> and
 * <status>: <notfound> for a 404 (MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN), 401/403/429
 * as UNAUTHORIZED/DENIED/TOOMANYREQUESTS, a body over the cap as MANIFEST_TOO_BIG, anything
 * else as the proxy's upstream error.
 */
enum oci_error upstream_oci_error(enum upstream_result res, int status, enum oci_error notfound);

#endif
