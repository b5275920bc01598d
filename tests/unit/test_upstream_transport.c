/*
 * Unit tests for proxy/upstream/transport.c: methods and request bodies (from memory, from a
 * file range streamed with pread), the per-attempt header hook on every attempt, buffered
 * responses. Live requests on a real libevent base against an evhttp server on 127.0.0.1 served
 * by the same loop, which records what it received.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "transport.h"

static struct event_base *base;
static struct evhttp *http;
static struct transport *tp;
static char url_base[64];

/* ---- the server: what it received, per request ------------------------------------------ */

#define SEEN_MAX 8
struct seen {
    enum evhttp_cmd_type method;
    char uri[128];
    unsigned char *body;
    size_t len;
    char sig[64], attempt[16], fixed[64], ctype[64], clen[32];
    int nsig;   /* X-Sig headers in the request */
    int expect; /* an Expect header came */
};
static struct seen seen[SEEN_MAX];
static int nseen, hits_flaky, hang; /* hang: /hang is never answered (evhttp_free ends it) */

static void header_copy(struct evkeyvalq *in, const char *name, char *out, size_t size)
{
    const char *v = evhttp_find_header(in, name);

    snprintf(out, size, "%s", v != NULL ? v : "");
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, code < 300 ? "OK" : "X", b);
    evbuffer_free(b);
}

static void serve(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    struct evkeyval *kv;
    struct seen *s;
    char msg[64];

    (void)arg;
    cr_assert_lt(nseen, SEEN_MAX, "more requests than the test expects");
    s = &seen[nseen++];
    s->method = evhttp_request_get_command(req);
    snprintf(s->uri, sizeof(s->uri), "%s", uri);
    s->len = evbuffer_get_length(ib);
    s->body = malloc(s->len + 1);
    evbuffer_copyout(ib, s->body, s->len);
    header_copy(in, "X-Sig", s->sig, sizeof(s->sig));
    header_copy(in, "X-Attempt", s->attempt, sizeof(s->attempt));
    header_copy(in, "X-Fixed", s->fixed, sizeof(s->fixed));
    header_copy(in, "Content-Type", s->ctype, sizeof(s->ctype));
    header_copy(in, "Content-Length", s->clen, sizeof(s->clen));
    for (kv = in->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
        s->nsig += strcasecmp(kv->key, "X-Sig") == 0;
        s->expect += strcasecmp(kv->key, "Expect") == 0;
    }
    if (strcmp(uri, "/hang") == 0 && hang) {
        return;
    } else if (strcmp(uri, "/flaky") == 0 && hits_flaky++ == 0) {
        reply(req, 500, "busy");
    } else if (strcmp(uri, "/json") == 0) {
        reply(req, 200, "{\"token\":\"t\"}");
    } else if (strcmp(uri, "/missing") == 0) {
        reply(req, 404, "no such thing");
    } else {
        snprintf(msg, sizeof(msg), "got %zu", s->len);
        reply(req, s->method == EVHTTP_REQ_PUT ? 201 : 200, msg);
    }
}

/* ---- the client side -------------------------------------------------------------------- */

/* What the hook saw and computed, per call. */
static int hook_calls, hook_fail_at, sig_counter;
static int hook_attempt[SEEN_MAX];
static char hook_sig[SEEN_MAX][64];

/* What the callbacks saw. */
static int done, timed_out, nheaders;
static char data[4096];
static size_t ndata;
static struct {
    enum upstream_result res;
    int status, delivered, retries;
    char err[256], body[4096];
    size_t body_len;
} out;

/*
 * A signer's stand-in: a header whose value changes on every call (as a SigV4 date and
 * signature would), plus the attempt number.
 */
static int on_attempt(void *arg, int attempt, struct transport_headers *h)
{
    char n[16];

    (void)arg;
    cr_assert_lt(hook_calls, SEEN_MAX);
    sig_counter += 7919;
    snprintf(hook_sig[hook_calls], sizeof(hook_sig[0]), "sig-%d-%d", attempt, sig_counter);
    hook_attempt[hook_calls] = attempt;
    snprintf(n, sizeof(n), "%d", attempt);
    transport_headers_add(h, "X-Sig", hook_sig[hook_calls]);
    transport_headers_add(h, "X-Attempt", n);
    hook_calls++;
    return hook_calls == hook_fail_at ? -1 : 0;
}

static int on_headers(void *arg, const struct upstream_response *r)
{
    (void)arg;
    (void)r;
    nheaders++;
    return 0;
}

static int on_data(void *arg, const char *d, size_t len)
{
    (void)arg;
    cr_assert_leq(ndata + len, sizeof(data) - 1);
    memcpy(data + ndata, d, len);
    ndata += len;
    data[ndata] = '\0';
    return 0;
}

static void on_done(void *arg, const struct transport_outcome *o)
{
    (void)arg;
    done++;
    out.res = o->to_res;
    out.status = o->to_resp->ur_status;
    out.delivered = o->to_delivered;
    out.retries = o->to_retries;
    snprintf(out.err, sizeof(out.err), "%s", o->to_err);
    cr_assert_lt(o->to_body_len, sizeof(out.body));
    memcpy(out.body, o->to_body, o->to_body_len);
    out.body[o->to_body_len] = '\0';
    out.body_len = o->to_body_len;
    event_base_loopbreak(base);
}

static const struct transport_callbacks cbs = {on_attempt, on_headers, on_data, on_done};

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    timed_out = 1;
    event_base_loopbreak(base);
}

/* Start <rq> and run the loop until it ends (at most 10 s). */
static void run(const struct transport_request *rq)
{
    struct timeval tv = {10, 0};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);

    done = timed_out = nheaders = 0;
    ndata = 0;
    data[0] = '\0';
    cr_assert_not_null(transport_start(tp, rq, &cbs, NULL));
    cr_assert_eq(done, 0, "on_done called from inside transport_start");
    evtimer_add(deadline, &tv);
    while (!done && !timed_out)
        event_base_dispatch(base);
    event_free(deadline);
    cr_assert_not(timed_out, "%s: no end within 10 s", rq->tr_url);
    cr_assert_eq(done, 1);
}

static void url_of(char *buf, size_t size, const char *path)
{
    snprintf(buf, size, "%s%s", url_base, path);
}

static struct transport_stats stats(void)
{
    struct transport_stats s;

    transport_get_stats(tp, &s);
    return s;
}

/* A byte of the temp file at position <i>: a pattern that no shift of the range repeats. */
static unsigned char file_byte(int64_t i)
{
    return (unsigned char)((i * 131 + i / 251) & 0xff);
}

#define FILE_LEN (2 * 1024 * 1024)

/* A temp file of FILE_LEN pattern bytes, open for reading; the caller closes it. */
static int temp_file(void)
{
    char path[] = "/tmp/test_upstream_transport.XXXXXX";
    unsigned char *p = malloc(FILE_LEN);
    int fd = mkstemp(path);

    cr_assert_neq(fd, -1);
    unlink(path);
    for (int64_t i = 0; i < FILE_LEN; i++)
        p[i] = file_byte(i);
    cr_assert_eq(write(fd, p, FILE_LEN), FILE_LEN);
    free(p);
    return fd;
}

/* Assert that request <s> carried exactly bytes [off, off + len) of the temp file. */
static void body_is_range(const struct seen *s, int64_t off, int64_t len)
{
    int64_t bad = 0;

    cr_assert_eq((int64_t)s->len, len, "the server got %zu bytes, not %lld", s->len,
                 (long long)len);
    for (int64_t i = 0; i < len; i++)
        bad += s->body[i] != file_byte(off + i);
    cr_assert_eq(bad, 0, "%lld bytes differ from the file's range", (long long)bad);
}

static void setup(void)
{
    /* Connect within 2 s, stall after 10 s, back off from 5 ms, wait out Retry-After <= 5 s. */
    static const struct upstream_settings set = {2000, 10, 5, 5};
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *err = NULL;

    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    base = event_base_new();
    cr_assert_not_null(base);
    http = evhttp_new(base);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_POST | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(http, serve, NULL);
    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    snprintf(url_base, sizeof(url_base), "http://127.0.0.1:%d", ntohs(sin.sin_port));
    tp = transport_create(base, &set, &err);
    cr_assert_not_null(tp, "%s", err ? err : "");
}

static void teardown(void)
{
    transport_destroy(tp);
    evhttp_free(http);
    event_base_free(base);
    for (int i = 0; i < nseen; i++)
        free(seen[i].body);
}

TestSuite(transport, .init = setup, .fini = teardown, .timeout = 30);

/*
 * (a) A PUT whose body is a range of a file, not at its start, arrives byte-exact; the
 * caller's descriptor may be closed at once and its offset is never moved.
 */
Test(transport, put_body_from_file_range)
{
    struct transport_request rq = {0};
    char url[128];
    int fd = temp_file();
    off_t before = lseek(fd, 12345, SEEK_SET);
    const int64_t off = 777, len = 300 * 1024 + 3;

    url_of(url, sizeof(url), "/v2/r/blobs/uploads/1?digest=sha256:x");
    rq.tr_method = TRANSPORT_PUT;
    rq.tr_url = url;
    rq.tr_body_kind = TRANSPORT_BODY_FD;
    rq.tr_body_fd = fd;
    rq.tr_body_offset = off;
    rq.tr_body_length = len;
    rq.tr_max_body = -1;
    run(&rq);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), before, "the caller's file offset moved");
    close(fd);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    cr_assert_eq(out.status, 201);
    cr_assert_eq(nseen, 1);
    cr_assert_eq(seen[0].method, EVHTTP_REQ_PUT);
    cr_assert_str_eq(seen[0].uri, "/v2/r/blobs/uploads/1?digest=sha256:x");
    body_is_range(&seen[0], off, len);
    cr_assert_eq(strtoll(seen[0].clen, NULL, 10), len, "Content-Length %s", seen[0].clen);
    cr_assert_eq(seen[0].expect, 0, "an Expect header was sent");
    cr_assert_str_empty(seen[0].ctype, "an implicit Content-Type: %s", seen[0].ctype);
    cr_assert_eq(hook_calls, 1);
    cr_assert_eq(nheaders, 1);
    cr_assert_str_eq(data, "got 307203");
    cr_assert_eq(stats().ts_bytes_sent, (uint64_t)len);
    cr_assert_eq(stats().ts_requests, 1);
}

/* The same with the descriptor closed right after transport_start: the req holds its own. */
Test(transport, put_body_fd_may_be_closed_at_once)
{
    struct transport_request rq = {0};
    struct timeval tv = {10, 0};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);
    char url[128];
    int fd = temp_file();

    url_of(url, sizeof(url), "/put");
    rq.tr_method = TRANSPORT_PUT;
    rq.tr_url = url;
    rq.tr_body_kind = TRANSPORT_BODY_FD;
    rq.tr_body_fd = fd;
    rq.tr_body_offset = 1;
    rq.tr_body_length = 65537;
    rq.tr_max_body = -1;
    cr_assert_not_null(transport_start(tp, &rq, &cbs, NULL));
    close(fd);
    evtimer_add(deadline, &tv);
    while (!done && !timed_out)
        event_base_dispatch(base);
    event_free(deadline);
    cr_assert_eq(done, 1);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    body_is_range(&seen[0], 1, 65537);
}

/*
 * (b) The hook runs before every attempt: the server answers the first PUT 500 and the second
 * 201. The second attempt carries the header the hook computed for it, and only that one;
 * the fixed headers come on both; the body is sent again from the range's start, complete.
 */
Test(transport, hook_on_every_attempt_and_body_rewound)
{
    struct transport_request rq = {0};
    const char *fixed[] = {"X-Fixed: kept", NULL};
    char url[128];
    int fd = temp_file();
    const int64_t off = 4099, len = 1536 * 1024 + 13;

    url_of(url, sizeof(url), "/flaky");
    rq.tr_method = TRANSPORT_PUT;
    rq.tr_url = url;
    rq.tr_headers = fixed;
    rq.tr_body_kind = TRANSPORT_BODY_FD;
    rq.tr_body_fd = fd;
    rq.tr_body_offset = off;
    rq.tr_body_length = len;
    rq.tr_max_retries = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    run(&rq);
    close(fd);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    cr_assert_eq(out.status, 201);
    cr_assert_eq(out.retries, 1);
    cr_assert_eq(hits_flaky, 2);
    cr_assert_eq(nseen, 2);

    cr_assert_eq(hook_calls, 2, "the hook ran %d times for 2 attempts", hook_calls);
    cr_assert_eq(hook_attempt[0], 0);
    cr_assert_eq(hook_attempt[1], 1);
    cr_assert_str_neq(hook_sig[0], hook_sig[1]);
    cr_assert_str_eq(seen[0].sig, hook_sig[0]);
    cr_assert_str_eq(seen[1].sig, hook_sig[1], "the retry carried %s", seen[1].sig);
    cr_assert_str_eq(seen[0].attempt, "0");
    cr_assert_str_eq(seen[1].attempt, "1");
    cr_assert_eq(seen[1].nsig, 1, "the first attempt's header came again");
    cr_assert_str_eq(seen[0].fixed, "kept");
    cr_assert_str_eq(seen[1].fixed, "kept");

    body_is_range(&seen[0], off, len);
    body_is_range(&seen[1], off, len);
    cr_assert_eq(nheaders, 1, "the 500 reached on_headers");
    cr_assert_eq(stats().ts_requests, 2);
    cr_assert_eq(stats().ts_retries, 1);
    cr_assert_eq(stats().ts_bytes_sent, 2 * (uint64_t)len);
}

/* (c) A POST with a body from memory (NUL bytes included), with the caller's Content-Type. */
Test(transport, post_body_from_memory)
{
    static const char body[] = "{\"repositoryName\":\"docker-hub/library/nginx\"}\0\x01\xff tail";
    struct transport_request rq = {0};
    const char *hdrs[] = {"Content-Type: application/x-amz-json-1.1", "X-Fixed: post", NULL};
    char url[128], *copy = malloc(sizeof(body));

    memcpy(copy, body, sizeof(body));
    url_of(url, sizeof(url), "/post");
    rq.tr_method = TRANSPORT_POST;
    rq.tr_url = url;
    rq.tr_headers = hdrs;
    rq.tr_body_kind = TRANSPORT_BODY_MEMORY;
    rq.tr_body = copy;
    rq.tr_body_len = sizeof(body);
    rq.tr_max_body = -1;
    cr_assert_not_null(transport_start(tp, &rq, &cbs, NULL));
    memset(copy, 'x', sizeof(body)); /* transport_start copied it */
    free(copy);
    {
        struct timeval tv = {10, 0};
        struct event *deadline = evtimer_new(base, deadline_cb, NULL);
        evtimer_add(deadline, &tv);
        while (!done && !timed_out)
            event_base_dispatch(base);
        event_free(deadline);
    }
    cr_assert_eq(done, 1);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    cr_assert_eq(nseen, 1);
    cr_assert_eq(seen[0].method, EVHTTP_REQ_POST);
    cr_assert_eq(seen[0].len, sizeof(body));
    cr_assert_eq(memcmp(seen[0].body, body, sizeof(body)), 0, "the POST body changed");
    cr_assert_str_eq(seen[0].ctype, "application/x-amz-json-1.1");
    cr_assert_str_eq(seen[0].fixed, "post");
    cr_assert_eq(seen[0].expect, 0);
    snprintf(url, sizeof(url), "got %zu", sizeof(body));
    cr_assert_str_eq(data, url, "the response body: %s", data);
    cr_assert_eq(stats().ts_bytes_sent, sizeof(body));
}

/* The other methods arrive as themselves; a POST without a body sends Content-Length: 0. */
Test(transport, methods)
{
    static const struct {
        enum transport_method m;
        enum evhttp_cmd_type want;
    } cases[] = {
        {TRANSPORT_GET, EVHTTP_REQ_GET},     {TRANSPORT_HEAD, EVHTTP_REQ_HEAD},
        {TRANSPORT_PATCH, EVHTTP_REQ_PATCH}, {TRANSPORT_DELETE, EVHTTP_REQ_DELETE},
        {TRANSPORT_POST, EVHTTP_REQ_POST},
    };
    char url[128];
    int fd = temp_file();

    url_of(url, sizeof(url), "/m");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct transport_request rq = {0};
        rq.tr_method = cases[i].m;
        rq.tr_url = url;
        rq.tr_max_body = -1;
        if (cases[i].m == TRANSPORT_PATCH) {
            rq.tr_body_kind = TRANSPORT_BODY_FD;
            rq.tr_body_fd = fd;
            rq.tr_body_offset = 100;
            rq.tr_body_length = 5000;
        }
        run(&rq);
        cr_assert_eq(out.res, UPSTREAM_OK, "case %zu: %d: %s", i, out.res, out.err);
        cr_assert_eq((int)nseen, (int)i + 1);
        cr_assert_eq(seen[i].method, cases[i].want, "case %zu: method %d", i, seen[i].method);
    }
    close(fd);
    body_is_range(&seen[2], 100, 5000);
    cr_assert_eq(seen[3].len, 0, "DELETE sent a body");
    cr_assert_str_empty(seen[3].clen);
    cr_assert_eq(seen[4].len, 0);
    cr_assert_str_eq(seen[4].clen, "0");
}

/* A hook that fails ends the req as aborted, from the loop, and nothing is sent. */
Test(transport, hook_refusal_aborts_before_sending)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/never");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_retries = 3;
    hook_fail_at = 1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_ABORTED, "%d: %s", out.res, out.err);
    cr_assert_eq(hook_calls, 1);
    cr_assert_eq(nseen, 0, "the server was asked anyway");
    cr_assert_eq(stats().ts_requests, 0);
}

/* Connect errors are retried, the hook running again before each attempt. */
Test(transport, connect_error_retried_with_the_hook)
{
    struct transport_request rq = {0};
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char url[128];
    int s = socket(AF_INET, SOCK_STREAM, 0);

    /* A port nobody listens on: bound, then closed. */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
    close(s);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
    rq.tr_method = TRANSPORT_PUT;
    rq.tr_url = url;
    rq.tr_body_kind = TRANSPORT_BODY_MEMORY;
    rq.tr_body = "abc";
    rq.tr_body_len = 3;
    rq.tr_max_retries = 2;
    rq.tr_max_body = -1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_NETWORK, "%d: %s", out.res, out.err);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(hook_calls, 3);
    cr_assert_eq(hook_attempt[2], 2);
    cr_assert_eq(out.retries, 2);
    cr_assert_eq(stats().ts_requests, 3);
}

/* tr_retries_used counts against the budget: none left, no retry. */
Test(transport, retries_used_count_against_the_budget)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/flaky");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_retries = 2;
    rq.tr_retries_used = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_HTTP, "%d: %s", out.res, out.err);
    cr_assert_eq(out.status, 500);
    cr_assert_str_eq(out.body, "busy");
    cr_assert_eq(out.retries, 2);
    cr_assert_eq(hook_calls, 1);
}

/* Without tr_retry_status a 5xx is final at once. */
Test(transport, status_not_retried_unless_asked)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/flaky");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_retries = 2;
    rq.tr_max_body = -1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_HTTP);
    cr_assert_eq(out.status, 500);
    cr_assert_eq(nseen, 1);
}

/* A buffered response comes whole in on_done, never through on_headers or on_data. */
Test(transport, buffered_response)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/json");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_body = -1;
    rq.tr_buffer_max = 64 * 1024;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    cr_assert_str_eq(out.body, "{\"token\":\"t\"}");
    cr_assert_eq(out.body_len, strlen("{\"token\":\"t\"}"));
    cr_assert_eq(out.delivered, 0);
    cr_assert_eq(nheaders, 0);
    cr_assert_eq(ndata, 0);

    rq.tr_buffer_max = 5; /* smaller than the body */
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_TOO_LARGE, "%d: %s", out.res, out.err);
}

/* A non-2xx answer's body comes with on_done; the body never reaches on_data. */
Test(transport, http_error_body)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/missing");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_retries = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_HTTP);
    cr_assert_eq(out.status, 404);
    cr_assert_str_eq(out.body, "no such thing");
    cr_assert_not_null(strstr(out.err, "/missing answered 404"), "%s", out.err);
    cr_assert_eq(ndata, 0);
    cr_assert_eq(nseen, 1, "a 404 is not retried");
}

/* A file range that runs past the end of the file fails as unreadable, without a retry. */
Test(transport, body_range_past_the_end)
{
    struct transport_request rq = {0};
    char url[128];
    int fd = temp_file();

    url_of(url, sizeof(url), "/put");
    rq.tr_method = TRANSPORT_PUT;
    rq.tr_url = url;
    rq.tr_body_kind = TRANSPORT_BODY_FD;
    rq.tr_body_fd = fd;
    rq.tr_body_offset = FILE_LEN - 10;
    rq.tr_body_length = 100;
    rq.tr_max_retries = 3;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    run(&rq);
    close(fd);
    cr_assert_eq(out.res, UPSTREAM_ABORTED, "%d: %s", out.res, out.err);
    cr_assert_not_null(strstr(out.err, "the file ends inside its range"), "%s", out.err);
    cr_assert_eq(hook_calls, 1, "an unreadable body was retried");
}

/*
 * The metadata endpoints are for tr_metadata requests only: without the flag, a denied
 * endpoint (this server, registered as the credential chain registers its endpoints) and the
 * instance's metadata addresses in any spelling are refused before anything is sent.
 */
Test(transport, metadata_endpoints_only_for_metadata_requests)
{
    static const char *const builtin[] = {
        "http://169.254.169.254/latest/api/token", "http://169.254.169.254:8080/",
        "http://2852039166/latest/meta-data/",     "http://169.254.170.2/v2/credentials/x",
        "http://169.254.170.23/v1/credentials",    "http://[fd00:ec2::23]/v1/credentials",
        "http://[fd00:ec2::254]/latest/api/token", "http://[::ffff:169.254.169.254]/",
    };
    struct transport_request rq = {0};
    char url[128], *err = NULL;

    cr_assert_eq(transport_deny_endpoint(tp, url_base, &err), 0, "%s", err);
    url_of(url, sizeof(url), "/json");
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_retries = 2;
    rq.tr_max_body = -1;
    rq.tr_buffer_max = 1024;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", out.res, out.err);
    cr_assert_not_null(strstr(out.err, "metadata endpoint"), "%s", out.err);
    cr_assert_eq(nseen, 0);
    cr_assert_eq(hook_calls, 0, "the hook ran for a refused request");

    rq.tr_metadata = 1;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_OK, "%d: %s", out.res, out.err);
    cr_assert_eq(nseen, 1);

    rq.tr_metadata = 0;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        rq.tr_url = builtin[i];
        run(&rq);
        cr_assert_eq(out.res, UPSTREAM_REDIRECT_REFUSED, "%s: %d: %s", builtin[i], out.res,
                     out.err);
    }
    cr_assert_eq(stats().ts_requests, 1, "a refused request was sent");
}

/* A request's own connect and total timeouts: a server that never answers ends it quickly. */
Test(transport, request_timeout)
{
    struct transport_request rq = {0};
    char url[128];

    url_of(url, sizeof(url), "/hang");
    hang = 1;
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_max_body = -1;
    rq.tr_connect_timeout_ms = 500;
    rq.tr_timeout_ms = 300;
    run(&rq);
    cr_assert_eq(out.res, UPSTREAM_NETWORK, "%d: %s", out.res, out.err);
    cr_assert_not_null(strstr(out.err, "imeout"), "%s", out.err);
}
