/*
 * The transport: requests on libcurl multi on the libevent loop (evcurl.c), one easy handle
 * per req, its attempts one after another until one is final:
 *   on_attempt (headers for this attempt) ─▶ send (body read from memory or pread from the
 *   file range, from its start) ─▶ connect error / 5xx / 429, nothing delivered yet ─▶ wait
 *   (Retry-After or backoff) ─▶ on_attempt ─▶ send ... (tr_max_retries in all)
 *        ─▶ anything else is final: 2xx bodies stream to on_data as they arrive.
 * Completed attempts are handled in check_multi_info, outside libcurl's callbacks, so the
 * caller's on_done may start or cancel reqs freely.
 */
#include "config.h"

#include "transport.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "batch.h"
#include "denylist.h"
#include "evcurl.h"
#include "log.h"
#include "policy_egress.h"
#include "policy_retry.h"
#include "response.h"
#include "transport-int.h"
#include "upload.h"
#include "util.h"

#define TRANSPORT_MAGIC 0x54525054u /* "TRPT" */
#define REQ_MAGIC 0x54524551u       /* "TREQ" */
#define HEADERS_MAGIC 0x54484452u   /* "THDR" */
#define ERR_BODY_MAX (16 * 1024)
/*
 * A body delivers at most this much per turn of the event loop; then the req pauses until
 * the next turn. libcurl otherwise drains a fast upstream socket in one go (tens of MiB on
 * loopback) before the loop gets to write a single byte of it to the waiting clients.
 */
#define TRANSPORT_BURST_MAX (1024 * 1024)

struct transport {
    unsigned magic;
    struct event_base *base;
    struct evcurl *ec;
    CURLM *multi; /* ec's */
    struct upstream_settings set;
    struct transport_req *reqs; /* every live req, linked */
    struct transport_stats stats;
    size_t burst;            /* body bytes delivered in this turn of the loop */
    struct batches *batches; /* reqs' body bytes not yet given to on_data (batch.h) */
    struct denylist *deny;   /* the metadata endpoints (denylist.h) */
};

/* What on_attempt adds to: the attempt's req (a stack object of req_send). */
struct transport_headers {
    unsigned magic;
    struct transport_req *th_req;
};

struct transport_req {
    unsigned magic;
    struct transport *tp;
    struct transport_req *next, *prev;

    /* The request, owned copies. */
    enum transport_method method;
    char *url, *ca_file, *proxy;
    char **lines;          /* tr_headers, NULL-ended, or NULL */
    struct upload *upload; /* the body, or NULL when the method sends none */
    int check_address, max_retries, retry_status, metadata;
    int64_t max_body, connect_timeout_ms, timeout_ms;
    size_t buffer_max;
    struct transport_callbacks cbs;
    void *arg;

    /* The attempt in progress. */
    CURL *easy;
    struct curl_slist *hdrs;
    int attempts, retries; /* attempts sent; retries including tr_retries_used */
    int refused_addr;      /* the address check refused the connection */
    int refused_metadata;  /* the connection would have gone to a metadata endpoint */
    int via_proxy;         /* an egress proxy carries this attempt: its address is the
                              proxy's, and the proxy resolves the name */
    int delivered;         /* on_headers was called */
    int aborted;           /* a callback returned -1 */
    int end_pending;       /* ends from the loop (wait_cb) with errmsg and end_res */
    enum upstream_result end_res;
    int too_large;
    int64_t received;
    struct batch *batch; /* body bytes gathered for on_data, made at the first */
    struct upstream_response resp;
    char *kept; /* a non-2xx body (ERR_BODY_MAX) or the buffered body */
    size_t kept_len, kept_cap;
    char location[2048];
    char errmsg[256];
    struct event *wait;    /* retry backoff, or the pending end */
    struct event *unpause; /* ends a pause (TRANSPORT_BURST_MAX) at the next loop turn */
    int paused;
};

static void req_finish(struct transport_req *r, enum upstream_result res, const char *err);

/* ---- addresses ------------------------------------------------------------------------ */

/* Does this attempt need its connected address checked? */
static int req_checks_address(const struct transport_req *r)
{
    return r->check_address && !r->via_proxy;
}

/*
 * Hosts the operator did not name are checked where libcurl opens the socket, after DNS: no
 * rebinding. A connection libcurl reuses from its pool is checked in prereq_cb, before the
 * request goes. The metadata endpoints (denylist.h) are refused there to every request but the
 * credential chain's, whatever the origin allows.
 */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    struct transport_req *r;

    CAST_OBJ_NOTNULL(r, clientp, REQ_MAGIC);
    (void)purpose;
    if (!r->metadata && denylist_sockaddr(r->tp->deny, &address->addr)) {
        r->refused_metadata = 1;
        return CURL_SOCKET_BAD;
    }
    if (req_checks_address(r) && egress_sockaddr_is_private(&address->addr)) {
        r->refused_addr = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static int prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    struct transport_req *r;

    CAST_OBJ_NOTNULL(r, clientp, REQ_MAGIC);
    (void)conn_local_ip;
    (void)conn_local_port;
    if (!r->metadata && denylist_addr(r->tp->deny, conn_primary_ip, conn_primary_port)) {
        r->refused_metadata = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    if (req_checks_address(r) && egress_addr_is_private(conn_primary_ip)) {
        r->refused_addr = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* ---- libcurl ↔ libevent (evcurl.c) ----------------------------------------------------- */

static void check_multi_info(struct transport *tp);

/* A socket or timer event is about to run libcurl: a new turn of the loop for the bursts. */
static void turn_cb(void *arg)
{
    struct transport *tp;

    CAST_OBJ_NOTNULL(tp, arg, TRANSPORT_MAGIC);
    tp->burst = 0;
}

static void ran_cb(void *arg)
{
    struct transport *tp;

    CAST_OBJ_NOTNULL(tp, arg, TRANSPORT_MAGIC);
    check_multi_info(tp);
}

static void unpause_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct transport_req *r;
    struct transport *tp;

    (void)fd;
    (void)kind;
    CAST_OBJ_NOTNULL(r, arg, REQ_MAGIC);
    tp = r->tp;
    if (!r->paused || r->easy == NULL)
        return;
    r->paused = 0;
    tp->burst = 0;
    curl_easy_pause(r->easy, CURLPAUSE_CONT);
    check_multi_info(tp);
}

/* ---- the response ----------------------------------------------------------------------- */

static void reset_response(struct transport_req *r)
{
    response_reset(&r->resp, r->location);
    r->kept_len = 0;
    r->received = 0;
}

static int final_2xx(const struct transport_req *r)
{
    return r->resp.ur_status >= 200 && r->resp.ur_status < 300;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
    struct transport_req *r;
    size_t n = size * nitems;
    enum response_line kind;

    CAST_OBJ_NOTNULL(r, userdata, REQ_MAGIC);
    kind = response_header_line(&r->resp, r->location, sizeof(r->location), line, n);
    if (kind == RESPONSE_STATUS) {
        /* A new response (after a 1xx): the parser has reset the headers, this the body. */
        r->kept_len = 0;
        r->received = 0;
        return n;
    }
    if (kind != RESPONSE_END)
        return n;
    /* End of this response's headers. 1xx responses are followed by another. */
    if (r->resp.ur_status < 200 || !final_2xx(r) || r->buffer_max > 0)
        return n;
    if (r->max_body >= 0 && r->resp.ur_content_length > r->max_body) {
        r->too_large = 1;
        return 0;
    }
    if (!r->delivered) {
        r->delivered = 1;
        if (r->cbs.on_headers != NULL && r->cbs.on_headers(r->arg, &r->resp) == -1) {
            r->aborted = 1;
            return 0;
        }
    }
    return n;
}

static int req_data(void *arg, const char *data, size_t len)
{
    struct transport_req *r;

    CAST_OBJ_NOTNULL(r, arg, REQ_MAGIC);
    return r->cbs.on_data(r->arg, data, len);
}

/* A batch that on_data refused when it was flushed ends its req, as it would have inside
 * libcurl's callback. */
static void req_refused(void *arg)
{
    struct transport_req *r;

    CAST_OBJ_NOTNULL(r, arg, REQ_MAGIC);
    r->aborted = 1;
    req_finish(r, UPSTREAM_ABORTED, "aborted by the caller");
}

/* Keep <n> bytes of a body that is not streamed, up to <cap>. */
static void kept_add(struct transport_req *r, const char *data, size_t n, size_t cap)
{
    size_t take = r->kept_len + n > cap ? cap - r->kept_len : n;

    if (take == 0)
        return;
    if (r->kept_len + take + 1 > r->kept_cap) {
        size_t want =
            r->kept_cap * 2 > r->kept_len + take + 1 ? r->kept_cap * 2 : r->kept_len + take + 1;
        r->kept_cap = want < 1024 ? 1024 : want > cap + 1 ? cap + 1 : want;
        r->kept = xrealloc(r->kept, r->kept_cap);
    }
    memcpy(r->kept + r->kept_len, data, take);
    r->kept_len += take;
    r->kept[r->kept_len] = '\0';
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transport_req *r;
    size_t n = size * nmemb;

    CAST_OBJ_NOTNULL(r, userdata, REQ_MAGIC);
    if (r->buffer_max > 0 || !final_2xx(r)) {
        size_t cap = r->buffer_max > 0 ? r->buffer_max : ERR_BODY_MAX;
        r->tp->stats.ts_bytes += n;
        r->received += (int64_t)n;
        if (r->buffer_max > 0 && r->kept_len + n > cap) {
            r->too_large = 1;
            return 0;
        }
        kept_add(r, data, n, cap);
        return n;
    }
    if (r->cbs.on_data != NULL && r->tp->burst >= TRANSPORT_BURST_MAX) {
        static const struct timeval now = {0, 0};
        /* Not consumed: libcurl hands the same bytes over again after the pause. */
        if (r->unpause == NULL)
            r->unpause = evtimer_new(r->tp->base, unpause_cb, r);
        r->paused = 1;
        r->tp->stats.ts_pauses++;
        evtimer_add(r->unpause, &now);
        return CURL_WRITEFUNC_PAUSE;
    }
    /* Counted once, here: paused bytes above come back in a later call. */
    r->tp->stats.ts_bytes += n;
    r->tp->burst += n;
    r->received += (int64_t)n;
    if (r->max_body >= 0 && r->received > r->max_body) {
        r->too_large = 1;
        return 0;
    }
    if (r->cbs.on_data != NULL && r->batch == NULL)
        r->batch = batch_new(r->tp->batches, req_data, r, r->resp.ur_content_length);
    if (r->cbs.on_data != NULL && batch_add(r->batch, data, n) == -1) {
        r->aborted = 1;
        return 0;
    }
    return n;
}

/* ---- one attempt ------------------------------------------------------------------------ */

/* Does <rq> send a body? PUT, POST and PATCH always (maybe empty), DELETE when it has one. */
static int req_takes_body(const struct transport_request *rq)
{
    return rq->tr_method == TRANSPORT_PUT || rq->tr_method == TRANSPORT_POST ||
           rq->tr_method == TRANSPORT_PATCH ||
           (rq->tr_method == TRANSPORT_DELETE && rq->tr_body_kind != TRANSPORT_BODY_NONE);
}

static const char *method_name(enum transport_method m)
{
    switch (m) {
    case TRANSPORT_GET: return "GET";
    case TRANSPORT_HEAD: return "HEAD";
    case TRANSPORT_PUT: return "PUT";
    case TRANSPORT_POST: return "POST";
    case TRANSPORT_PATCH: return "PATCH";
    case TRANSPORT_DELETE: return "DELETE";
    }
    return "GET";
}

/* Append a copy of <line> to the attempt's headers. */
static void add_line(struct transport_req *r, const char *line)
{
    r->hdrs = curl_slist_append(r->hdrs, line);
}

void transport_headers_add(struct transport_headers *h, const char *name, const char *value)
{
    char *line;

    CHECK_OBJ_NOTNULL(h, HEADERS_MAGIC);
    line = value != NULL ? xasprintf("%s: %s", name, value) : xasprintf("%s:", name);
    add_line(h->th_req, line);
    explicit_bzero(line, strlen(line)); /* it may hold a token */
    free(line);
}

void transport_headers_basic(struct transport_headers *h, const char *user, const char *password)
{
    CURL *e;

    CHECK_OBJ_NOTNULL(h, HEADERS_MAGIC);
    e = h->th_req->easy;
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, password);
}

/* End <r> from the loop with errmsg, as <res>: never from inside transport_start. */
static void req_end_later(struct transport_req *r, enum upstream_result res)
{
    static const struct timeval now = {0, 0};

    r->end_pending = 1;
    r->end_res = res;
    evtimer_add(r->wait, &now);
}

static void req_send(struct transport_req *r)
{
    struct transport *tp = r->tp;
    const struct upstream_settings *s = &tp->set;
    struct transport_headers h = {HEADERS_MAGIC, r};
    const char *proxy;

    reset_response(r);
    r->refused_addr = 0;
    r->refused_metadata = 0;
    r->paused = 0;
    if (r->unpause != NULL)
        evtimer_del(r->unpause);
    if (r->easy == NULL)
        r->easy = curl_easy_init();
    else
        curl_easy_reset(r->easy);
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;

    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(
        r->easy, CURLOPT_CONNECTTIMEOUT_MS,
        (long)(r->connect_timeout_ms > 0 ? r->connect_timeout_ms : s->us_connect_timeout_ms));
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(r->easy, CURLOPT_LOW_SPEED_TIME, (long)s->us_stall_timeout_s);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "ecr-ptc-proxy/" PACKAGE_VERSION);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, NULL);
    if (r->method == TRANSPORT_HEAD)
        curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
    if (r->upload != NULL)
        upload_attach(r->upload, r->easy, &tp->stats.ts_bytes_sent);
    if (r->method != TRANSPORT_GET && r->method != TRANSPORT_HEAD && r->method != TRANSPORT_PUT)
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method_name(r->method));
    proxy = r->proxy != NULL ? r->proxy : transport_proxy_for(r->url);
    r->via_proxy = proxy != NULL && proxy[0] != '\0';
    /* "" turns libcurl's own reading of the environment off: ours is the decision. */
    curl_easy_setopt(r->easy, CURLOPT_PROXY, proxy != NULL ? proxy : "");
    curl_easy_setopt(r->easy, CURLOPT_NOPROXY, "");
    /*
     * Through an egress proxy, an https URL goes through a CONNECT tunnel; libcurl would hand the
     * proxy's "200 Connection established" to header_cb as if it were the upstream's answer.
     */
    curl_easy_setopt(r->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (r->ca_file != NULL)
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, r->ca_file);
    curl_easy_setopt(r->easy, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(r->easy, CURLOPT_PREREQDATA, r);
    /* The body follows the headers at once: no "Expect: 100-continue" round trip. */
    if (r->upload != NULL)
        add_line(r, "Expect:");
    for (size_t i = 0; r->lines != NULL && r->lines[i] != NULL; i++)
        add_line(r, r->lines[i]);
    if (r->cbs.on_attempt != NULL && r->cbs.on_attempt(r->arg, r->attempts, &h) == -1) {
        r->aborted = 1;
        str_copy(r->errmsg, sizeof(r->errmsg), "aborted by the caller before sending");
        req_end_later(r, UPSTREAM_ABORTED);
        return;
    }
    r->attempts++;
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
    tp->stats.ts_requests++;
    curl_multi_add_handle(tp->multi, r->easy);
}

/* ---- req lifecycle ---------------------------------------------------------------------- */

static void req_unlink(struct transport_req *r)
{
    struct transport *tp = r->tp;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (tp->reqs == r)
        tp->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

static void req_free(struct transport_req *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(r->tp->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->hdrs);
    if (r->wait != NULL)
        event_free(r->wait);
    if (r->unpause != NULL)
        event_free(r->unpause);
    batch_free(r->batch);
    req_unlink(r);
    for (size_t i = 0; r->lines != NULL && r->lines[i] != NULL; i++) {
        explicit_bzero(r->lines[i], strlen(r->lines[i]));
        free(r->lines[i]);
    }
    free(r->lines);
    upload_free(r->upload);
    free(r->url);
    free(r->ca_file);
    free(r->proxy);
    free(r->kept);
    r->magic = 0;
    free(r);
}

static void req_finish(struct transport_req *r, enum upstream_result res, const char *err)
{
    struct transport_outcome o;

    if (r->easy != NULL) {
        curl_multi_remove_handle(r->tp->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    o.to_res = res;
    o.to_resp = &r->resp;
    o.to_location = r->location;
    o.to_err = err != NULL ? err : "";
    o.to_body = r->kept != NULL ? r->kept : "";
    o.to_body_len = r->kept_len;
    o.to_delivered = r->delivered;
    o.to_retries = r->retries;
    if (r->cbs.on_done != NULL)
        r->cbs.on_done(r->arg, &o);
    req_free(r);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    struct transport_req *r;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(r, arg, REQ_MAGIC);
    if (r->end_pending)
        req_finish(r, r->end_res, r->errmsg);
    else
        req_send(r);
}

static void req_retry_later(struct transport_req *r, int64_t delay_ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)((delay_ms % 1000) * 1000);
    r->tp->stats.ts_retries++;
    r->retries++;
    evtimer_add(r->wait, &tv);
}

/* <r>'s attempt ended in libcurl with <cc>: retry it, or end the req. */
static void attempt_done(struct transport_req *r, CURLcode cc)
{
    struct transport *tp = r->tp;
    const struct upstream_settings *s = &tp->set;
    int status = r->resp.ur_status;
    char msg[1024], shown[384];

    CHECK_OBJ_NOTNULL(r, REQ_MAGIC);
    curl_multi_remove_handle(tp->multi, r->easy);
    transport_url_shown(r->url, shown, sizeof(shown));
    if (r->metadata) /* a container credentials path is a capability: the host only */
        shown[transport_origin_len(shown)] = '\0';
    if (r->aborted) {
        req_finish(r, UPSTREAM_ABORTED, "aborted by the caller");
        return;
    }
    if (r->upload != NULL && upload_error(r->upload) != NULL) {
        req_finish(r, UPSTREAM_ABORTED, upload_error(r->upload));
        return;
    }
    if (r->too_large) {
        req_finish(r, UPSTREAM_TOO_LARGE, "the response is larger than allowed");
        return;
    }
    if (cc != CURLE_OK) {
        if (r->refused_metadata) {
            snprintf(msg, sizeof(msg), "a metadata endpoint refused: %s", shown);
            req_finish(r, UPSTREAM_REDIRECT_REFUSED, msg);
            return;
        }
        if (r->refused_addr) {
            snprintf(msg, sizeof(msg), "redirect to a private address refused: %s", shown);
            req_finish(r, UPSTREAM_REDIRECT_REFUSED, msg);
            return;
        }
        snprintf(msg, sizeof(msg), "%s: %s", shown, curl_easy_strerror(cc));
        if (retry_attempt_allowed(r->delivered, r->retries, r->max_retries)) {
            int64_t d = retry_delay_ms(s->us_backoff_ms, r->retries, r->resp.ur_retry_after,
                                       s->us_max_retry_after_s);
            log_event(LOG_WARN, "upstream-retry", "url", shown, "error", curl_easy_strerror(cc),
                      NULL);
            req_retry_later(r, d < 0 ? s->us_backoff_ms : d);
            return;
        }
        req_finish(r, UPSTREAM_NETWORK, msg);
        return;
    }
    if (r->retry_status && retry_status_retryable(status) &&
        retry_attempt_allowed(r->delivered, r->retries, r->max_retries)) {
        int64_t d = retry_delay_ms(s->us_backoff_ms, r->retries, r->resp.ur_retry_after,
                                   s->us_max_retry_after_s);
        if (d >= 0) {
            char st[16];
            snprintf(st, sizeof(st), "%d", status);
            log_event(LOG_WARN, "upstream-retry", "url", shown, "status", st, "retry_after",
                      r->resp.ur_retry_after, NULL);
            req_retry_later(r, d);
            return;
        }
    }
    if (final_2xx(r)) {
        if (r->buffer_max == 0 && !r->delivered && r->method != TRANSPORT_HEAD) {
            /* An empty body never passed through the header callback's delivery. */
            r->delivered = 1;
            if (r->cbs.on_headers != NULL && r->cbs.on_headers(r->arg, &r->resp) == -1) {
                req_finish(r, UPSTREAM_ABORTED, "aborted by the caller");
                return;
            }
        }
        if (r->resp.ur_content_length >= 0 && r->method != TRANSPORT_HEAD &&
            r->received != r->resp.ur_content_length) {
            req_finish(r, UPSTREAM_NETWORK, "truncated body");
            return;
        }
        req_finish(r, UPSTREAM_OK, "");
        return;
    }
    snprintf(msg, sizeof(msg), "%s answered %d", shown, status);
    req_finish(r, UPSTREAM_HTTP, msg);
}

static void check_multi_info(struct transport *tp)
{
    CURLMsg *m;
    int left;

    /* libcurl has returned to the loop: every req's gathered bytes go before any req ends. */
    batches_flush(tp->batches, req_refused);
    while ((m = curl_multi_info_read(tp->multi, &left)) != NULL) {
        struct transport_req *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        attempt_done(r, m->data.result);
    }
}

/* ---- public ----------------------------------------------------------------------------- */

int transport_deny_endpoint(struct transport *tp, const char *url, char **err)
{
    CHECK_OBJ_NOTNULL(tp, TRANSPORT_MAGIC);
    return denylist_add_url(tp->deny, url, err);
}

struct transport *transport_create(struct event_base *base, const struct upstream_settings *s,
                                   char **err)
{
    static const struct evcurl_callbacks ec_cbs = {turn_cb, ran_cb};
    struct transport *tp;
    static int global_done;

    *err = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            *err = xstrdup("libcurl initialisation failed");
            return NULL;
        }
        global_done = 1;
    }
    tp = xcalloc(1, sizeof(*tp));
    tp->magic = TRANSPORT_MAGIC;
    tp->base = base;
    tp->set = *s;
    tp->ec = evcurl_create(base, &ec_cbs, tp);
    tp->multi = evcurl_multi(tp->ec);
    tp->batches = batches_new();
    tp->deny = denylist_new();
    transport_deny_env(tp->deny);
    curl_multi_setopt(tp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    return tp;
}

void transport_destroy(struct transport *tp)
{
    if (tp == NULL)
        return;
    CHECK_OBJ_NOTNULL(tp, TRANSPORT_MAGIC);
    while (tp->reqs != NULL)
        req_free(tp->reqs);
    evcurl_destroy(tp->ec);
    batches_free(tp->batches);
    denylist_free(tp->deny);
    tp->magic = 0;
    free(tp);
}

struct transport_req *transport_start(struct transport *tp, const struct transport_request *rq,
                                      const struct transport_callbacks *cbs, void *arg)
{
    struct transport_req *r = xcalloc(1, sizeof(*r));
    size_t n = 0;

    CHECK_OBJ_NOTNULL(tp, TRANSPORT_MAGIC);
    r->magic = REQ_MAGIC;
    r->tp = tp;
    r->next = tp->reqs;
    if (tp->reqs != NULL)
        tp->reqs->prev = r;
    tp->reqs = r;
    r->method = rq->tr_method;
    r->url = xstrdup(rq->tr_url);
    while (rq->tr_headers != NULL && rq->tr_headers[n] != NULL)
        n++;
    if (n > 0) {
        r->lines = xcalloc(n + 1, sizeof(*r->lines));
        for (size_t i = 0; i < n; i++)
            r->lines[i] = xstrdup(rq->tr_headers[i]);
    }
    r->ca_file = rq->tr_ca_file != NULL ? xstrdup(rq->tr_ca_file) : NULL;
    r->proxy = rq->tr_proxy != NULL ? xstrdup(rq->tr_proxy) : NULL;
    r->check_address = rq->tr_check_address;
    r->metadata = rq->tr_metadata;
    r->connect_timeout_ms = rq->tr_connect_timeout_ms;
    r->timeout_ms = rq->tr_timeout_ms;
    r->max_retries = rq->tr_max_retries;
    r->retries = rq->tr_retries_used;
    r->retry_status = rq->tr_retry_status;
    r->max_body = rq->tr_max_body;
    r->buffer_max = rq->tr_buffer_max;
    r->cbs = *cbs;
    r->arg = arg;
    r->wait = evtimer_new(tp->base, wait_cb, r);
    if (!r->metadata && denylist_url(tp->deny, r->url)) {
        char shown[384];
        snprintf(r->errmsg, sizeof(r->errmsg), "a metadata endpoint refused: %s",
                 transport_url_shown(r->url, shown, sizeof(shown)));
        req_end_later(r, UPSTREAM_REDIRECT_REFUSED);
        return r;
    }
    if (req_takes_body(rq)) {
        char *err = NULL;
        if (rq->tr_body_kind == TRANSPORT_BODY_FD)
            r->upload =
                upload_from_fd(rq->tr_body_fd, rq->tr_body_offset, rq->tr_body_length, &err);
        else if (rq->tr_body_kind == TRANSPORT_BODY_MEMORY)
            r->upload = upload_from_memory(rq->tr_body, rq->tr_body_len);
        else
            r->upload = upload_from_memory(NULL, 0);
        if (r->upload == NULL) {
            str_copy(r->errmsg, sizeof(r->errmsg), err);
            free(err);
            req_end_later(r, UPSTREAM_ABORTED);
            return r;
        }
    }
    req_send(r);
    return r;
}

void transport_cancel(struct transport_req *r)
{
    if (r == NULL)
        return;
    CHECK_OBJ_NOTNULL(r, REQ_MAGIC);
    req_free(r);
}

void transport_get_stats(const struct transport *tp, struct transport_stats *out)
{
    CHECK_OBJ_NOTNULL(tp, TRANSPORT_MAGIC);
    *out = tp->stats;
}
