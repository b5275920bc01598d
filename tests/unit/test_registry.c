/*
 * Unit tests for proxy/upstream/registry.c: live xfers on a real libevent base against a small
 * evhttp server on 127.0.0.1 served by the same loop (the private-address rule is in
 * test_policy_egress.c, the transport's bodies and hook in test_upstream_transport.c).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "registry.h"
#include "transport.h"

/* ---- live xfers ------------------------------------------------------------------------- */

#define TOKEN "tok-1"
#define TOKEN_JSON "{\"token\":\"" TOKEN "\",\"expires_in\":300}"
#define DENIED_JSON "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}"
#define BODY "hello, upstream"

static struct event_base *base;
static struct evhttp *http;
static struct upstream *up;
static struct upstream_origin origin;
static char upstream_url[64], prefix[] = "t";
static int port;

/* What the server saw. */
static int hits_flaky, hits_token, hits_private;
static char token_query[512], cdn_auth[256], seen_auth[4][256];
static char redirect_to[256]; /* Location for /v2/r/redir */
static char meta_url[64];     /* a fake metadata endpoint, denied */
static int hits_meta;
static struct upstream_xfer *cancel_on_token; /* cancelled when /token is asked */

/* What the client saw. */
static int done, timed_out, headers_before_data, nheaders;
static char order[64];
static char data[1024];
static size_t ndata;
static enum upstream_result res;
static struct upstream_response resp;
static char errmsg[512], errbody[256];

/* /v2/r/huge: a body of HUGE_LEN bytes of a known pattern, checked as it arrives. */
#define HUGE_LEN (3 * 1024 * 1024 + 7)
#define BULK_LEN (24 * 1024 * 1024 + 5) /* /v2/r/bulk: the same pattern, sent in large writes */
static int huge_mode;                   /* on_data checks the pattern instead of keeping bytes */
static int huge_refuse_at;              /* on_data returns -1 on this call (1-based; 0 never) */
static int64_t huge_got;
static int huge_calls, huge_bad;
static size_t huge_max;

static unsigned char huge_byte(int64_t i)
{
    return (unsigned char)((i * 7 + 3) & 0xff);
}

/* A fresh buffer of the first <len> bytes of the huge_byte pattern; the caller frees it. */
static struct evbuffer *patterned_body(int64_t len)
{
    struct evbuffer *b = evbuffer_new();
    unsigned char *p = malloc((size_t)len);

    for (int64_t i = 0; i < len; i++)
        p[i] = huge_byte(i);
    evbuffer_add(b, p, (size_t)len);
    free(p);
    return b;
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "X", b);
    evbuffer_free(b);
}

/* Answer 401 with a Bearer challenge unless <req> carries our token. 1 when answered. */
static int challenge(struct evhttp_request *req)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    char ch[256];

    if (a != NULL && strcmp(a, "Bearer " TOKEN) == 0)
        return 0;
    snprintf(ch, sizeof(ch), "Bearer realm=\"http://127.0.0.1:%d/token\",service=\"s\"", port);
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", ch);
    reply(req, 401, DENIED_JSON);
    return 1;
}

static void serve(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    const char *a = evhttp_find_header(in, "Authorization");

    if (strcmp(uri, "/v2/r/blobs/ok") == 0) {
        evhttp_add_header(out, "Docker-Content-Digest", "sha256:abc");
        reply(req, 200, BODY);
    } else if (strcmp(uri, "/v2/r/flaky") == 0) {
        if (hits_flaky++ == 0)
            reply(req, 503, "busy");
        else
            reply(req, 200, "fine");
    } else if (strcmp(uri, "/v2/r/down") == 0) {
        reply(req, 503, "busy");
    } else if (strcmp(uri, "/v2/r/limited") == 0) {
        evhttp_add_header(out, "Retry-After", "3600");
        reply(req, 429, "slow down");
    } else if (strncmp(uri, "/token?", 7) == 0) {
        hits_token++;
        snprintf(token_query, sizeof(token_query), "%s", uri + 7);
        if (cancel_on_token != NULL) {
            upstream_cancel(cancel_on_token);
            cancel_on_token = NULL;
        }
        reply(req, 200, TOKEN_JSON);
    } else if (strcmp(uri, "/v2/r/private") == 0) {
        snprintf(seen_auth[hits_private++ & 3], sizeof(seen_auth[0]), "%s", a ? a : "");
        if (!challenge(req))
            reply(req, 200, "secret");
    } else if (strcmp(uri, "/v2/r/meta-realm") == 0) {
        char ch[256];
        snprintf(ch, sizeof(ch), "Bearer realm=\"%s/token\",service=\"s\"", meta_url);
        evhttp_add_header(out, "WWW-Authenticate", ch);
        reply(req, 401, DENIED_JSON);
    } else if (strcmp(uri, "/v2/r/open-redir") == 0) {
        evhttp_add_header(out, "Location", redirect_to);
        reply(req, 307, "");
    } else if (strcmp(uri, "/v2/r/redir") == 0) {
        if (!challenge(req)) {
            evhttp_add_header(out, "Location", redirect_to);
            reply(req, 307, "");
        }
    } else if (strcmp(uri, "/cdn/flaky") == 0) {
        if (hits_flaky++ == 0)
            reply(req, 503, "busy");
        else
            reply(req, 200, "fine");
    } else if (strcmp(uri, "/cdn/blob") == 0) {
        snprintf(cdn_auth, sizeof(cdn_auth), "%s", a ? a : "(none)");
        reply(req, 200, "from the cdn");
    } else if (strcmp(uri, "/v2/r/huge") == 0) {
        struct evbuffer *b = patterned_body(HUGE_LEN);
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else if (strcmp(uri, "/v2/r/bulk") == 0) {
        /* Large writes (libevent's default is 16 KiB a write) let more than a burst's worth
         * wait in the socket when the client reads. */
        struct evbuffer *b = patterned_body(BULK_LEN);
        bufferevent_set_max_single_write(
            evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)), BULK_LEN);
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else if (strcmp(uri, "/v2/r/big") == 0) {
        reply(req, 200, "0123456789abcdefghijklmnopqrstuvwxyz");
    } else if (strcmp(uri, "/v2/r/bigchunked") == 0) {
        struct evbuffer *b = evbuffer_new();
        evhttp_send_reply_start(req, 200, "OK");
        evbuffer_add(b, "0123456789abcdefghijklmnopqrstuvwxyz", 36);
        evhttp_send_reply_chunk(req, b);
        evhttp_send_reply_end(req);
        evbuffer_free(b);
    } else {
        reply(req, 404, "no such thing");
    }
}

static void note(char c)
{
    size_t n = strlen(order);

    if (n < sizeof(order) - 1) {
        order[n] = c;
        order[n + 1] = '\0';
    }
}

static int on_headers(void *arg, const struct upstream_response *r)
{
    nheaders++;
    note('H');
    return 0;
}

static int on_data(void *arg, const char *d, size_t len)
{
    if (huge_mode) {
        huge_calls++;
        if (len > huge_max)
            huge_max = len;
        if (huge_calls == huge_refuse_at)
            return -1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)d[i] != huge_byte(huge_got + (int64_t)i))
                huge_bad++;
        huge_got += (int64_t)len;
        return 0;
    }
    if (strchr(order, 'H') != NULL)
        headers_before_data = 1;
    note('D');
    cr_assert_leq(ndata + len, sizeof(data));
    memcpy(data + ndata, d, len);
    ndata += len;
    return 0;
}

static void on_done(void *arg, enum upstream_result r, const struct upstream_response *rr,
                    const char *err, const char *body, size_t body_len)
{
    done++;
    res = r;
    resp = *rr;
    snprintf(errmsg, sizeof(errmsg), "%s", err);
    snprintf(errbody, sizeof(errbody), "%.*s", (int)body_len, body);
    event_base_loopbreak(base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    timed_out = 1;
    event_base_loopbreak(base);
}

static const struct upstream_callbacks cbs = {on_headers, on_data, on_done};

/* Run one xfer for <path> to its end (at most 10 s). */
static void run(const char *path, int retries, int64_t max_body)
{
    struct upstream_target t = {&origin, "r", path, 0, NULL, retries, max_body};
    struct timeval tv = {10, 0};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);

    done = timed_out = headers_before_data = nheaders = 0;
    order[0] = '\0';
    ndata = 0;
    memset(data, 0, sizeof(data));
    cr_assert_not_null(upstream_start(up, &t, &cbs, NULL));
    evtimer_add(deadline, &tv);
    while (!done && !timed_out)
        event_base_dispatch(base);
    event_free(deadline);
    cr_assert_not(timed_out, "%s: no answer within 10 s", path);
    cr_assert_eq(done, 1);
}

static void live_setup(void)
{
    /* Connect within 2 s, stall after 10 s, back off from 5 ms, wait out Retry-After <= 5 s. */
    static const struct upstream_settings set = {2000, 10, 5, 5};
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *err = NULL;

    /* Nothing between us and 127.0.0.1. */
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
    evhttp_set_gencb(http, serve, NULL);
    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    port = ntohs(sin.sin_port);
    snprintf(upstream_url, sizeof(upstream_url), "http://127.0.0.1:%d", port);
    memset(&origin, 0, sizeof(origin));
    origin.uo_name = prefix;
    origin.uo_base_url = upstream_url;
    up = upstream_create(base, &set, &err);
    cr_assert_not_null(up, "%s", err ? err : "");
}

static void live_teardown(void)
{
    upstream_destroy(up);
    up = NULL;
    evhttp_free(http);
    event_base_free(base);
}

TestSuite(live, .init = live_setup, .fini = live_teardown, .timeout = 30);

static struct upstream_stats stats(void)
{
    struct upstream_stats s;

    upstream_get_stats(up, &s);
    return s;
}

Test(live, ok_body_after_headers)
{
    run("/v2/r/blobs/ok", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_empty(errmsg);
    cr_assert_eq(resp.ur_status, 200);
    cr_assert_eq(resp.ur_content_length, (int64_t)strlen(BODY));
    cr_assert_str_eq(resp.ur_digest, "sha256:abc");
    cr_assert_eq(nheaders, 1);
    cr_assert(headers_before_data, "order %s", order);
    cr_assert_eq(order[0], 'H', "order %s", order);
    cr_assert_eq(ndata, strlen(BODY));
    cr_assert_str_eq(data, BODY);
    cr_assert_eq(stats().us_requests, 1);
    cr_assert_eq(stats().us_retries, 0);
}

Test(live, http_error_is_final)
{
    run("/v2/r/nothing", 3, -1);
    cr_assert_eq(res, UPSTREAM_HTTP);
    cr_assert_eq(resp.ur_status, 404);
    cr_assert_str_eq(errbody, "no such thing");
    cr_assert_eq(nheaders, 0);
    cr_assert_eq(ndata, 0);
    cr_assert_eq(stats().us_requests, 1, "a 404 is not retried");
}

Test(live, retry_503_then_200)
{
    run("/v2/r/flaky", 1, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_eq(data, "fine", "the 503's body leaked into the data: %s", data);
    cr_assert_eq(hits_flaky, 2);
    cr_assert_eq(stats().us_requests, 2);
    cr_assert_eq(stats().us_retries, 1);
}

Test(live, retries_run_out)
{
    run("/v2/r/down", 2, -1);
    cr_assert_eq(res, UPSTREAM_HTTP);
    cr_assert_eq(resp.ur_status, 503);
    cr_assert_str_eq(errbody, "busy");
    cr_assert_eq(stats().us_requests, 3);
    cr_assert_eq(stats().us_retries, 2);
    cr_assert_eq(nheaders, 0);
}

Test(live, long_retry_after_not_waited_for)
{
    run("/v2/r/limited", 3, -1);
    cr_assert_eq(res, UPSTREAM_HTTP);
    cr_assert_eq(resp.ur_status, 429);
    cr_assert_str_eq(resp.ur_retry_after, "3600");
    cr_assert_str_eq(errbody, "slow down");
    cr_assert_eq(stats().us_requests, 1);
    cr_assert_eq(stats().us_retries, 0);
}

Test(live, bearer_token)
{
    struct evkeyvalq q;

    origin.uo_allow_private = 1; /* the realm is on 127.0.0.1 */
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_eq(data, "secret");
    cr_assert_eq(hits_token, 1);
    cr_assert_eq(evhttp_parse_query_str(token_query, &q), 0, "%s", token_query);
    cr_assert_str_eq(evhttp_find_header(&q, "service"), "s");
    cr_assert_str_eq(evhttp_find_header(&q, "scope"), "repository:r:pull");
    evhttp_clear_headers(&q);
    cr_assert_eq(hits_private, 2);
    cr_assert_str_empty(seen_auth[0]);
    cr_assert_str_eq(seen_auth[1], "Bearer " TOKEN);
    cr_assert_eq(stats().us_token_fetches, 1);
    cr_assert_eq(stats().us_requests, 3); /* challenge, token, retry */

    /* The token is cached: the next xfer sends it straight away. */
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK);
    cr_assert_eq(hits_token, 1);
    cr_assert_eq(hits_private, 3);
    cr_assert_str_eq(seen_auth[2], "Bearer " TOKEN);
    cr_assert_eq(stats().us_token_fetches, 1);
}

/* A token is cached for the credentials that got it: a reload that changes the password (a
 * new origin with the same name and URL) asks for a new one; the same credentials again find
 * theirs. */
Test(live, token_cached_per_credentials)
{
    origin.uo_allow_private = 1;
    origin.uo_username = "robot";
    origin.uo_password = "first";
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_eq(hits_token, 1);
    run("/v2/r/private", 0, -1);
    cr_assert_eq(hits_token, 1, "the same credentials reuse their token");

    origin.uo_password = "second";
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_eq(hits_token, 2, "a token got with the old password was reused");

    origin.uo_username = "robo";
    origin.uo_password = "tsecond"; /* the same bytes, split elsewhere */
    run("/v2/r/private", 0, -1);
    cr_assert_eq(hits_token, 3, "credentials that concatenate alike shared a token");

    origin.uo_username = "robot";
    origin.uo_password = "first";
    run("/v2/r/private", 0, -1);
    cr_assert_eq(hits_token, 3, "the first credentials' token is still cached");
    origin.uo_username = NULL;
    origin.uo_password = NULL;
}

Test(live, token_realm_on_loopback_refused)
{
    /* A realm is a host the operator never named: without allow_private_redirects it must be
     * https on a public address, and the token endpoint is never contacted. */
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_AUTH_FAILED, "%d: %s", res, errmsg);
    cr_assert_eq(hits_token, 0);
    cr_assert_eq(stats().us_token_fetches, 0);
}

Test(live, redirect_to_private_refused)
{
    snprintf(redirect_to, sizeof(redirect_to), "http://127.0.0.1:%d/cdn/blob", port);
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);
    cr_assert_not_null(strstr(errmsg, "non-https"), "%s", errmsg);
    cr_assert_str_empty(cdn_auth, "the CDN was asked anyway");
    cr_assert_eq(nheaders, 0);

    /* https to a literal private address: refused before connecting. */
    snprintf(redirect_to, sizeof(redirect_to), "https://127.0.0.1:%d/cdn/blob", port);
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);
    cr_assert_not_null(strstr(errmsg, "private address 127.0.0.1"), "%s", errmsg);

    /* https to a name that resolves to loopback: refused where the socket is opened. */
    snprintf(redirect_to, sizeof(redirect_to), "https://cdn.localhost:%d/cdn/blob", port);
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);
    cr_assert_not_null(strstr(errmsg, "refused: https://cdn.localhost"), "%s", errmsg);
    cr_assert_str_empty(cdn_auth);
}

Test(live, redirect_followed_without_authorization)
{
    origin.uo_allow_private = 1;
    snprintf(redirect_to, sizeof(redirect_to), "http://127.0.0.1:%d/cdn/blob", port);
    run("/v2/r/redir", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_eq(data, "from the cdn");
    cr_assert_str_eq(cdn_auth, "(none)", "Authorization sent to the redirect target");
    cr_assert_eq(hits_token, 1);

    /* A relative Location resolves against the upstream. */
    snprintf(redirect_to, sizeof(redirect_to), "/cdn/blob");
    cdn_auth[0] = '\0';
    run("/v2/r/redir", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_eq(cdn_auth, "(none)");
}

Test(live, body_too_large)
{
    run("/v2/r/big", 3, 10); /* Content-Length says 36 */
    cr_assert_eq(res, UPSTREAM_TOO_LARGE, "%d: %s", res, errmsg);
    cr_assert_eq(ndata, 0);
    cr_assert_eq(stats().us_requests, 1, "a body too large is not retried");

    run("/v2/r/bigchunked", 3, 10); /* no length: counted as it arrives */
    cr_assert_eq(res, UPSTREAM_TOO_LARGE, "%d: %s", res, errmsg);
    cr_assert_leq(ndata, 10);

    run("/v2/r/big", 0, 36); /* exactly at the cap */
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_eq(ndata, 36);
}

/* Fetch <path> with on_data checking the pattern, refusing call <refuse_at> (0: none). */
static void run_pattern(const char *path, int refuse_at, int retries)
{
    huge_mode = 1;
    huge_refuse_at = refuse_at;
    huge_got = huge_calls = huge_bad = 0;
    huge_max = 0;
    run(path, retries, -1);
    huge_mode = 0;
}

static void run_huge(int refuse_at, int retries)
{
    run_pattern("/v2/r/huge", refuse_at, retries);
}

/*
 * libcurl hands a body over 16 KiB at a time; on_data gets it gathered into larger batches,
 * every byte in order, and all of it before on_done.
 */
Test(live, body_delivered_in_batches)
{
    run_huge(0, 0);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_eq(huge_got, HUGE_LEN);
    cr_assert_eq(huge_bad, 0, "%d bytes out of order or changed", huge_bad);
    cr_assert_gt(huge_max, 16 * 1024, "the largest delivery was %zu bytes", huge_max);
    /* libcurl's own pieces would be HUGE_LEN / 16 KiB = 192 calls. */
    cr_assert_lt(huge_calls, HUGE_LEN / (16 * 1024), "%d deliveries for %d bytes", huge_calls,
                 HUGE_LEN);
}

/*
 * us_bytes is what crossed the network: each body byte once. Past TRANSPORT_BURST_MAX in one
 * turn the write callback pauses the transfer and libcurl hands the same bytes over again on
 * resume; those must not be counted twice (a 64 MiB cold blob once counted 67,944,448).
 */
Test(live, body_bytes_counted_once_across_pauses)
{
    uint64_t before = stats().us_bytes, paused = stats().us_pauses;

    run_pattern("/v2/r/bulk", 0, 0);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_eq(huge_got, BULK_LEN);
    cr_assert_eq(huge_bad, 0, "%d bytes out of order or changed", huge_bad);
    cr_assert_gt(stats().us_pauses, paused, "the body never paused: the test proves nothing");
    cr_assert_eq(stats().us_bytes - before, (uint64_t)BULK_LEN,
                 "us_bytes counted %" PRIu64 " for a body of %d bytes (%" PRIu64 " pauses)",
                 stats().us_bytes - before, BULK_LEN, stats().us_pauses - paused);
}

/* An on_data that refuses a batch ends the xfer as aborted, with on_done called once. */
Test(live, refused_batch_aborts)
{
    run_huge(2, 3);
    cr_assert_eq(res, UPSTREAM_ABORTED, "%d: %s", res, errmsg);
    cr_assert_eq(done, 1);
    cr_assert_eq(huge_calls, 2, "on_data called %d times", huge_calls);
    cr_assert_lt(huge_got, HUGE_LEN);
    cr_assert_eq(stats().us_requests, 1, "an aborted xfer is not retried");
}

/*
 * An xfer cancelled while it waits for a token fetch it started: the fetch must still be
 * unlinked when it ends with no waiter left (it was once freed twice).
 */
Test(live, cancel_while_waiting_for_token)
{
    struct upstream_target t = {&origin, "r", "/v2/r/private", 0, NULL, 0, -1};
    struct timeval tv = {10, 0};
    struct event *deadline;

    origin.uo_allow_private = 1; /* the realm is on 127.0.0.1 */
    deadline = evtimer_new(base, deadline_cb, NULL);
    evtimer_add(deadline, &tv);
    cancel_on_token = upstream_start(up, &t, &cbs, NULL);
    /* Until the token response has been read (the 401's body and the token's). */
    while (!timed_out && stats().us_bytes < strlen(DENIED_JSON) + strlen(TOKEN_JSON))
        event_base_loop(base, EVLOOP_ONCE);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_free(deadline);
    cr_assert_not(timed_out);
    cr_assert_eq(hits_token, 1);
    cr_assert_null(cancel_on_token);
    cr_assert_eq(done, 0, "a cancelled xfer called back");

    /* A later xfer for the same scope, then the client goes away. */
    run("/v2/r/private", 0, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    upstream_destroy(up);
    up = NULL;
}

/*
 * ut_max_retries counts further attempts after connect errors, 5xx and 429 only: the token
 * retry and redirect hops do not use it up (after 401, token, 307, a CDN's 503 is retried).
 */
Test(live, auth_and_redirect_leave_the_retries)
{
    origin.uo_allow_private = 1;
    snprintf(redirect_to, sizeof(redirect_to), "http://127.0.0.1:%d/cdn/flaky", port);
    run("/v2/r/redir", 1, -1);
    cr_assert_eq(res, UPSTREAM_OK, "%d: %s", res, errmsg);
    cr_assert_str_eq(data, "fine");
    cr_assert_eq(hits_flaky, 2);
}

/* ---- the metadata endpoints ---------------------------------------------------------------- */

static void serve_meta(struct evhttp_request *req, void *arg)
{
    (void)arg;
    hits_meta++;
    reply(req, 200, "{\"token\":\"meta\",\"AccessKeyId\":\"leaked\"}");
}

/*
 * A metadata endpoint (here a fake one on 127.0.0.1, registered as the credential chain
 * registers AWS_EC2_METADATA_SERVICE_ENDPOINT) is for the chain's requests only: a registry's
 * redirect and token realm pointing there are refused without a byte reaching it, even with
 * allow_private_redirects, by URL, by a name that resolves there, and by the built-in
 * 169.254.169.254.
 */
Test(live, metadata_endpoint_refused_to_redirects_and_realms)
{
    struct evhttp *meta = evhttp_new(base);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *err = NULL;
    int mport;

    evhttp_set_gencb(meta, serve_meta, NULL);
    bs = evhttp_bind_socket_with_handle(meta, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    mport = ntohs(sin.sin_port);
    snprintf(meta_url, sizeof(meta_url), "http://127.0.0.1:%d", mport);
    cr_assert_eq(transport_deny_endpoint(upstream_transport(up), meta_url, &err), 0, "%s", err);
    origin.uo_allow_private = 1;

    snprintf(redirect_to, sizeof(redirect_to), "%s/latest/meta-data/iam/", meta_url);
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);
    cr_assert_not_null(strstr(errmsg, "metadata endpoint"), "%s", errmsg);

    /* A name that resolves to the endpoint: refused where the socket would be opened. */
    snprintf(redirect_to, sizeof(redirect_to), "http://localhost:%d/latest/meta-data/", mport);
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);

    /* The instance's own metadata service, on any port. */
    snprintf(redirect_to, sizeof(redirect_to), "http://169.254.169.254/latest/api/token");
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);
    snprintf(redirect_to, sizeof(redirect_to), "http://[fd00:ec2::254]:8080/");
    run("/v2/r/open-redir", 3, -1);
    cr_assert_eq(res, UPSTREAM_REDIRECT_REFUSED, "%d: %s", res, errmsg);

    /* A token realm there: the token fetch is refused, the xfer fails as unauthorized. */
    run("/v2/r/meta-realm", 3, -1);
    cr_assert_eq(res, UPSTREAM_AUTH_FAILED, "%d: %s", res, errmsg);
    cr_assert_eq(stats().us_token_fetches, 1);

    cr_assert_eq(hits_meta, 0, "%d requests reached the metadata endpoint", hits_meta);
    cr_assert_eq(stats().us_requests, 6, "only the registry's own 6 requests were sent");
    evhttp_free(meta);
}

/* What the client is told when upstream failed: one mapping for the api and the fills. */
Test(oci_error, upstream_answers_become_oci_errors)
{
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 404, OCI_ERR_BLOB_UNKNOWN),
                 OCI_ERR_BLOB_UNKNOWN);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 404, OCI_ERR_MANIFEST_UNKNOWN),
                 OCI_ERR_MANIFEST_UNKNOWN);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 401, OCI_ERR_BLOB_UNKNOWN),
                 OCI_ERR_UNAUTHORIZED);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 403, OCI_ERR_BLOB_UNKNOWN), OCI_ERR_DENIED);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 429, OCI_ERR_BLOB_UNKNOWN),
                 OCI_ERR_TOOMANYREQUESTS);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 500, OCI_ERR_BLOB_UNKNOWN), OCI_ERR_UPSTREAM);
    cr_assert_eq(upstream_oci_error(UPSTREAM_HTTP, 400, OCI_ERR_BLOB_UNKNOWN), OCI_ERR_UPSTREAM);
    cr_assert_eq(upstream_oci_error(UPSTREAM_AUTH_FAILED, 0, OCI_ERR_BLOB_UNKNOWN),
                 OCI_ERR_UNAUTHORIZED);
    cr_assert_eq(upstream_oci_error(UPSTREAM_TOO_LARGE, 200, OCI_ERR_MANIFEST_UNKNOWN),
                 OCI_ERR_MANIFEST_TOO_BIG);
    cr_assert_eq(upstream_oci_error(UPSTREAM_NETWORK, 0, OCI_ERR_BLOB_UNKNOWN), OCI_ERR_UPSTREAM);
    cr_assert_eq(upstream_oci_error(UPSTREAM_REDIRECT_REFUSED, 302, OCI_ERR_BLOB_UNKNOWN),
                 OCI_ERR_UPSTREAM);
}
