/*
 * Unit tests for proxy/http/exchange.c: the exchange protocol on a real server (server_create,
 * listening on 127.0.0.1, any free port) driven by raw TCP clients. A handler answers at once,
 * holds the request, or starts the answer and holds the rest; the tests check the gone
 * callback (once, only when the connection went before the answer was done), that ending a
 * request after it is gone is safe, the in-flight count, cork, and that a graceful stop waits
 * for the request in flight.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_file.h"
#include "exchange.h"
#include "http-int.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define BODY "hello"
#define WAIT_MS 5000

static struct config *cfg;
static struct server *srv;
static struct event_base *base;
static char dir[256];
static int port;

/* What the handler saw and did. */
enum mode { ANSWER_NOW = 0, HOLD, HOLD_CORKED, HOLD_STARTED };
static enum mode mode;
static int handled, gone, gone_had_conn;
static struct evhttp_request *held;
static struct exchange *held_x;
static int held_fd = -1; /* the server's socket of the held request */

/* The raw client. */
static int cfd = -1;
static char rbuf[16384];
static size_t rlen;
static int reof;

static void gone_cb(void *arg)
{
    (void)arg;
    gone++;
    gone_had_conn = evhttp_request_get_connection(held) != NULL;
}

static void answer(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, BODY, strlen(BODY));
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void handler(void *arg, struct evhttp_request *req, struct exchange *x)
{
    (void)arg;
    handled++;
    if (mode == ANSWER_NOW) {
        answer(req);
        return;
    }
    held = req;
    held_x = x;
    held_fd =
        bufferevent_getfd(evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
    exchange_on_gone(x, gone_cb, NULL);
    if (mode == HOLD_CORKED)
        exchange_cork(x);
    if (mode == HOLD_STARTED)
        evhttp_send_reply_start(req, 200, "OK"); /* the status line and headers go now */
}

/* Answer the held request now, forgetting it first (the answer may complete it at once). */
static void answer_held(void)
{
    struct evhttp_request *req = held;

    exchange_on_gone(held_x, NULL, NULL);
    held = NULL;
    held_x = NULL;
    answer(req);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/*
 * Run the loop until <cond>() holds: at most <ms> milliseconds and 100000 turns (a 10 ms tick
 * bounds each turn). Returns what <cond>() says at the end.
 */
static int wait_for(int (*cond)(void), int ms)
{
    int64_t end = util_mono_usec() + (int64_t)ms * 1000;
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};

    event_add(tick, &tv);
    for (int i = 0; i < 100000 && !cond() && util_mono_usec() < end; i++)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return cond();
}

static int cond_never(void)
{
    return 0;
}

/* Just run the loop for <ms> milliseconds. */
static void run_for(int ms)
{
    (void)wait_for(cond_never, ms);
}

/* Take whatever the client can read now; 1 once the server closed. */
static int client_pull(void)
{
    for (;;) {
        ssize_t n = recv(cfd, rbuf + rlen, sizeof(rbuf) - 1 - rlen, MSG_DONTWAIT);
        if (n > 0) {
            rlen += (size_t)n;
            rbuf[rlen] = '\0';
            if (rlen == sizeof(rbuf) - 1)
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            reof = 1;
        break;
    }
    return reof;
}

/* The number of times <needle> occurs in what the client read. */
static int client_count(const char *needle)
{
    int n = 0;

    for (const char *p = rbuf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int cond_handled(void)
{
    return handled >= 1;
}
static int cond_gone(void)
{
    return gone >= 1;
}
static int cond_eof(void)
{
    return client_pull();
}
static int cond_one_answer(void)
{
    client_pull();
    return client_count(BODY) >= 1;
}
static int cond_no_conns(void)
{
    return srv->nconns == 0;
}
static int cond_stopping(void)
{
    return server_stopping(srv);
}

static void client_connect(void)
{
    struct sockaddr_in sin;

    cfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_neq(cfd, -1);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %s",
                 strerror(errno));
    rlen = 0;
    rbuf[0] = '\0';
    reof = 0;
}

static void client_send(const char *s)
{
    size_t n = strlen(s), off = 0;

    while (off < n) {
        ssize_t w = send(cfd, s + off, n - off, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        off += (size_t)w;
    }
}

static void client_close(void)
{
    if (cfd != -1)
        close(cfd);
    cfd = -1;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char *err = NULL;

    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    snprintf(dir, sizeof(dir), "%s/test_http_exchange.XXXXXX", tmp != NULL ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    cfg = config_default();
    free(cfg->cfg_data_dir);
    cfg->cfg_data_dir = xstrdup(dir);
    free(cfg->cfg_listen);
    cfg->cfg_listen = xstrdup("127.0.0.1:1");
    srv = server_create(cfg, &err);
    cr_assert_not_null(srv, "%s", err ? err : "");
    cr_assert_eq(server_listen_at(srv, "127.0.0.1", 0, handler, NULL, &err), 0, "%s",
                 err ? err : "");
    port = server_port(srv);
    cr_assert_gt(port, 0);
    base = server_base(srv);
    srv->drain_usec = 5 * 1000000; /* server_run would set it */
    mode = ANSWER_NOW;
    handled = gone = gone_had_conn = 0;
    held = NULL;
    held_x = NULL;
    held_fd = -1;
}

static void teardown(void)
{
    client_close();
    server_destroy(srv);
    srv = NULL;
    config_free(cfg);
    rmdir(dir);
}

TestSuite(exchange, .init = setup, .fini = teardown, .timeout = 30);

Test(exchange, answered_at_once)
{
    client_connect();
    client_send("GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert(wait_for(cond_eof, WAIT_MS), "no complete answer: \"%s\"", rbuf);
    cr_assert_eq(strncmp(rbuf, "HTTP/1.1 200 ", 13), 0, "%s", rbuf);
    cr_assert_eq(client_count(BODY), 1, "%s", rbuf);
    cr_assert_eq(handled, 1);
    cr_assert_eq(gone, 0);
    cr_assert_eq(srv->inflight, 0);
    cr_assert(wait_for(cond_no_conns, WAIT_MS), "%lld connections left", (long long)srv->nconns);
}

Test(exchange, answered_later)
{
    mode = HOLD;
    client_connect();
    client_send("GET /later HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert(wait_for(cond_handled, WAIT_MS));
    cr_assert_eq(srv->inflight, 1);
    cr_assert_eq(rlen, 0); /* nothing before the answer */
    answer_held();
    cr_assert(wait_for(cond_eof, WAIT_MS), "no complete answer: \"%s\"", rbuf);
    cr_assert_eq(strncmp(rbuf, "HTTP/1.1 200 ", 13), 0, "%s", rbuf);
    cr_assert_eq(client_count(BODY), 1, "%s", rbuf);
    cr_assert_eq(gone, 0);
    cr_assert_eq(srv->inflight, 0);
}

static int cond_headers(void)
{
    client_pull();
    return strstr(rbuf, "\r\n\r\n") != NULL;
}

/*
 * The client leaves once the answer has begun (headers sent, body to come): the gone callback
 * runs once, with the request detached from its connection, and the handler ending it later is
 * safe.
 */
Test(exchange, client_gone_before_the_answer)
{
    mode = HOLD_STARTED;
    client_connect();
    client_send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_headers, WAIT_MS), "no headers: \"%s\"", rbuf);
    cr_assert_eq(srv->inflight, 1);
    client_close();
    cr_assert(wait_for(cond_gone, WAIT_MS), "the gone callback never came");
    cr_assert_eq(gone, 1);
    cr_assert_eq(gone_had_conn, 0, "a request whose client left still has its connection");
    cr_assert_eq(srv->inflight, 0);
    cr_assert_eq(srv->nconns, 0);
    /* The handler learns late and ends the request: safe, and nothing more is called back. */
    evhttp_send_reply_end(held);
    held = NULL;
    run_for(100);
    cr_assert_eq(gone, 1);
    cr_assert_eq(srv->inflight, 0);
}

/*
 * libevent 2.1.12 reads nothing between a request and the first byte of its response, so a
 * client that leaves before anything was written is noticed only once the answer is written.
 * Whatever that answer then meets, the exchange ends once and nothing stays in flight.
 */
Test(exchange, client_gone_before_anything_was_written)
{
    mode = HOLD;
    client_connect();
    client_send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_handled, WAIT_MS));
    client_close();
    run_for(100);
    cr_assert_eq(gone, 0, "libevent noticed the client leaving: update docs/internals/exchange.md");
    cr_assert_eq(srv->inflight, 1);
    answer_held();
    cr_assert(wait_for(cond_no_conns, WAIT_MS), "%lld connections left", (long long)srv->nconns);
    cr_assert_eq(srv->inflight, 0);
    cr_assert_leq(gone, 1);
}

Test(exchange, gone_when_the_server_closes)
{
    mode = HOLD;
    client_connect();
    client_send("GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_handled, WAIT_MS));
    server_close(srv);
    cr_assert_eq(gone, 1);
    /* The server is freeing the connection itself: the request goes with it, the handler must
     * not end it. */
    cr_assert_eq(gone_had_conn, 1);
    cr_assert_eq(srv->inflight, 0);
    cr_assert_eq(srv->nconns, 0);
    server_close(srv); /* idempotent */
    cr_assert_eq(gone, 1);
}

Test(exchange, pipelined_requests)
{
    client_connect();
    client_send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    cr_assert(wait_for(cond_eof, WAIT_MS), "no complete answers: \"%s\"", rbuf);
    cr_assert_eq(client_count("HTTP/1.1 200 "), 2, "%s", rbuf);
    cr_assert_eq(client_count(BODY), 2, "%s", rbuf);
    cr_assert_eq(handled, 2);
    cr_assert_eq(gone, 0);
    cr_assert_eq(srv->inflight, 0);
}

Test(exchange, cork_until_the_response_is_written)
{
    int on = -1;
    socklen_t len = sizeof(on);

    mode = HOLD_CORKED;
    client_connect();
    client_send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_handled, WAIT_MS));
    cr_assert_neq(held_fd, -1);
    cr_assert_eq(getsockopt(held_fd, IPPROTO_TCP, TCP_CORK, &on, &len), 0);
    cr_assert_eq(on, 1, "exchange_cork did not cork");
    exchange_cork(held_x); /* twice is once */
    answer_held();
    cr_assert(wait_for(cond_one_answer, WAIT_MS), "no answer: \"%s\"", rbuf);
    /* Kept alive: the same socket, uncorked once the response completed. */
    len = sizeof(on);
    cr_assert_eq(getsockopt(held_fd, IPPROTO_TCP, TCP_CORK, &on, &len), 0);
    cr_assert_eq(on, 0, "still corked after the response");
    cr_assert_eq(srv->inflight, 0);
    cr_assert_eq(srv->nconns, 1);
}

Test(exchange, stop_waits_for_the_request_in_flight)
{
    int64_t t0;

    mode = HOLD;
    client_connect();
    client_send("GET /draining HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_handled, WAIT_MS));
    cr_assert_eq(kill(getpid(), SIGTERM), 0);
    cr_assert(wait_for(cond_stopping, WAIT_MS));
    cr_assert_eq(srv->inflight, 1);
    cr_assert_eq(gone, 0);
    answer_held();
    /* The answer ends the drain: the loop breaks once nothing is in flight, long before the
     * drain deadline (5 s) would. */
    t0 = util_mono_usec();
    cr_assert_eq(event_base_dispatch(base), 0);
    cr_assert_lt(util_mono_usec() - t0, 4 * 1000000);
    cr_assert_eq(srv->inflight, 0);
    cr_assert(wait_for(cond_one_answer, WAIT_MS), "no answer: \"%s\"", rbuf);
    /* Another request on the same connection is refused while stopping. */
    client_send("GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(wait_for(cond_eof, WAIT_MS), "the connection stayed open: \"%s\"", rbuf);
    cr_assert_eq(client_count("HTTP/1.1 503 "), 1, "%s", rbuf);
    cr_assert_eq(handled, 1);
    cr_assert_eq(srv->inflight, 0);
}
