/*
 * The daemon's event loop: one libevent base, an evhttp listener, SIGTERM/SIGINT handling.
 *
 * Every request gets a small exchange record from the moment evhttp hands it to us until its
 * response is written (evhttp's on-complete callback) or its connection dies (the
 * connection's close callback). The count of live exchanges is what a graceful stop waits
 * for: on the first signal the listener is closed, and the loop ends when the count reaches
 * zero or the drain deadline passes, whichever comes first. A second signal ends it at once.
 */
#include "config.h"

#include "proxy_server.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "proxy_api.h"
#include "proxy_config.h"
#include "proxy_log.h"
#include "proxy_util.h"

#define SERVER_MAGIC 0x53525652u   /* "SRVR" */
#define EXCHANGE_MAGIC 0x45584348u /* "EXCH" */
#define SERVER_MAX_HEADERS (64 * 1024)
#define SERVER_MAX_BODY (1024 * 1024)
#define SERVER_IDLE_TIMEOUT 120 /* seconds; ECR_PTC_PROXY_CLIENT_TIMEOUT overrides */

struct server {
    unsigned magic;
    const struct config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct timeval idle;        /* a client silent this long, or not reading, is dropped */
    struct api *api;
    struct event *sigterm;
    struct event *sigint;
    struct event *deadline;
    int64_t inflight;
    int stopping;
    int64_t drain_usec;
};

/* One request from arrival to the end of its response. */
struct exchange {
    unsigned magic;
    struct server *srv;
    struct evhttp_request *req;
    int64_t start_usec;
    void (*gone_cb)(void *arg);
    void *gone_arg;
    int corked; /* TCP_CORK is on for the connection until this response completes */
};

void exchange_on_gone(struct exchange *x, void (*cb)(void *arg), void *arg)
{
    x->gone_cb = cb;
    x->gone_arg = arg;
}

static void conn_cork(struct evhttp_connection *evcon, int on)
{
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));

    if (fd != -1)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

void exchange_cork(struct exchange *x)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(x->req);

    if (x->corked || evcon == NULL)
        return;
    conn_cork(evcon, 1);
    x->corked = 1;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

/* Log the request and release the exchange. Reads the request, so call it before anything
 * that may free the request. */
static void exchange_finish(struct exchange *x, const char *outcome)
{
    struct server *srv = x->srv;
    char status[16], ms[32];
    const char *uri = evhttp_request_get_uri(x->req);

    snprintf(status, sizeof(status), "%d", evhttp_request_get_response_code(x->req));
    snprintf(ms, sizeof(ms), "%.3f", (double)(util_mono_usec() - x->start_usec) / 1000.0);
    log_event(LOG_INFO, "request", "method", method_name(evhttp_request_get_command(x->req)),
              "uri", uri ? uri : "", "status", status, "ms", ms, "outcome", outcome, NULL);
    x->magic = 0;
    free(x);
    server_inflight_end(srv);
}

static void exchange_complete_cb(struct evhttp_request *req, void *arg)
{
    struct exchange *x = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (x->magic != EXCHANGE_MAGIC)
        abort();
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        /* Every byte is with the kernel now: let the last partial segment go. */
        if (x->corked)
            conn_cork(evcon, 0);
        /* Between requests, a silent client times out again. */
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), &x->srv->idle,
                                 &x->srv->idle);
    }
    exchange_finish(x, "done");
}

static void exchange_close_cb(struct evhttp_connection *evcon, void *arg)
{
    struct exchange *x = arg;
    void (*gone)(void *);
    void *gone_arg;

    if (x->magic != EXCHANGE_MAGIC)
        abort();
    gone = x->gone_cb;
    gone_arg = x->gone_arg;

    evhttp_connection_set_closecb(evcon, NULL, NULL);
    evhttp_request_set_on_complete_cb(x->req, NULL, NULL);
    /* The handler's gone callback may free the request: log first. */
    exchange_finish(x, "client-gone");
    if (gone != NULL)
        gone(gone_arg);
}

static void server_request_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    struct exchange *x;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (srv->magic != SERVER_MAGIC)
        abort();
    x = xcalloc(1, sizeof(*x));
    x->magic = EXCHANGE_MAGIC;
    x->srv = srv;
    x->req = req;
    x->start_usec = util_mono_usec();
    server_inflight_begin(srv);
    evhttp_request_set_on_complete_cb(req, exchange_complete_cb, x);
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, exchange_close_cb, x);
        /*
         * The request is read: while its response is pending or streaming, libevent's
         * timeouts would cut every download longer than the idle timeout (they count from
         * when the write began, not from the last progress). A client that vanishes or stops
         * reading is dropped by the kernel instead: TCP_USER_TIMEOUT, set on the listener.
         */
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL, NULL);
    }
    if (srv->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        api_send_error(req, OCI_ERR_UNAVAILABLE, "the proxy is shutting down", NULL);
        return;
    }
    api_handle(srv->api, req, x);
}

static void maybe_finish_drain(struct server *srv)
{
    if (srv->stopping && srv->inflight == 0)
        event_base_loopbreak(srv->base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    char n[32];

    snprintf(n, sizeof(n), "%lld", (long long)srv->inflight);
    log_event(LOG_WARN, "drain-deadline", "unfinished", n, NULL);
    event_base_loopbreak(srv->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct timeval tv;
    char n[32];

    if (srv->stopping) {
        log_event(LOG_WARN, "stop-now", "signal", strsignal((int)sig), NULL);
        event_base_loopbreak(srv->base);
        return;
    }
    srv->stopping = 1;
    snprintf(n, sizeof(n), "%lld", (long long)srv->inflight);
    log_event(LOG_INFO, "stopping", "signal", strsignal((int)sig), "inflight", n, NULL);
    if (srv->bound != NULL) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
    }
    tv.tv_sec = (time_t)(srv->drain_usec / 1000000);
    tv.tv_usec = (suseconds_t)(srv->drain_usec % 1000000);
    srv->deadline = evtimer_new(srv->base, deadline_cb, srv);
    evtimer_add(srv->deadline, &tv);
    maybe_finish_drain(srv);
}

void server_inflight_begin(struct server *srv)
{
    srv->inflight++;
}

void server_inflight_end(struct server *srv)
{
    srv->inflight--;
    maybe_finish_drain(srv);
}

int server_stopping(const struct server *srv)
{
    return srv->stopping;
}

static int make_dir(const char *path, char **err)
{
    if (mkdir(path, 0750) == -1 && errno != EEXIST) {
        *err = xasprintf("data_dir: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

struct server *server_create(const struct config *cfg, char **err)
{
    struct server *srv = xcalloc(1, sizeof(*srv));
    char host[256];
    int port;

    *err = NULL;
    srv->magic = SERVER_MAGIC;
    srv->cfg = cfg;
    if (make_dir(cfg->cfg_data_dir, err) == -1)
        goto fail;
    {
        /*
         * evhttp flips a connection between reading and writing on every request; the
         * changelist folds those flips into the next epoll_wait instead of one epoll_ctl
         * each (4 system calls a request otherwise). Safe here: no socket is dup()ed.
         */
        struct event_config *ec = event_config_new();
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        srv->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    if (srv->base == NULL) {
        *err = xstrdup("cannot create the event loop");
        goto fail;
    }
    srv->http = evhttp_new(srv->base);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_max_headers_size(srv->http, SERVER_MAX_HEADERS);
    evhttp_set_max_body_size(srv->http, SERVER_MAX_BODY);
    srv->idle.tv_sec = SERVER_IDLE_TIMEOUT;
    {
        const char *v = getenv("ECR_PTC_PROXY_CLIENT_TIMEOUT");
        if (v != NULL && v[0] != '\0') {
            char *end;
            long secs;
            errno = 0;
            secs = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || secs < 1 || secs > 86400) {
                *err = xasprintf("ECR_PTC_PROXY_CLIENT_TIMEOUT: \"%s\" is not a number of "
                                 "seconds from 1 to 86400", v);
                goto fail;
            }
            srv->idle.tv_sec = (time_t)secs;
        }
    }
    evhttp_set_timeout_tv(srv->http, &srv->idle);
    if (config_parse_listen(cfg->cfg_listen, host, sizeof(host), &port) == -1) {
        *err = xasprintf("listen: \"%s\" is not HOST:PORT", cfg->cfg_listen);
        goto fail;
    }
    srv->api = api_create(srv->base, cfg, srv, err);
    if (srv->api == NULL)
        goto fail;
    evhttp_set_gencb(srv->http, server_request_cb, srv);
    srv->bound = evhttp_bind_socket_with_handle(srv->http, host, (ev_uint16_t)port);
    if (srv->bound == NULL) {
        *err = xasprintf("listen: cannot listen on %s: %s", cfg->cfg_listen, strerror(errno));
        goto fail;
    }
    {
        /*
         * Accepted sockets inherit TCP_NODELAY from the listener (Linux). Responses are
         * written whole or in large slices, so Nagle only ever delays a response's tail
         * (headers sent apart from a sendfile'd body wait for an ACK).
         */
        int one = 1;
        unsigned int user_ms = (unsigned int)srv->idle.tv_sec * 1000u;
        evutil_socket_t fd = evhttp_bound_socket_get_fd(srv->bound);
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
            log_event(LOG_WARN, "tcp-nodelay", "error", strerror(errno), NULL);
        /* Unacknowledged data, or a zero window, for this long ends the connection. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)) == -1)
            log_event(LOG_WARN, "tcp-user-timeout", "error", strerror(errno), NULL);
    }
    srv->sigterm = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
    srv->sigint = evsignal_new(srv->base, SIGINT, signal_cb, srv);
    evsignal_add(srv->sigterm, NULL);
    evsignal_add(srv->sigint, NULL);
    signal(SIGPIPE, SIG_IGN);
    return srv;
fail:
    server_destroy(srv);
    return NULL;
}

static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_flush();
}

/* A log line is held: flush once this turn's active callbacks have run. */
static void log_pending(void *arg)
{
    struct event *ev = arg;

    event_active(ev, EV_TIMEOUT, 0);
}

int server_run(struct server *srv, int64_t drain_usec)
{
    struct event *flush = event_new(srv->base, -1, 0, log_flush_cb, NULL);
    int rc;

    srv->drain_usec = drain_usec;
    log_event(LOG_INFO, "listening", "addr", srv->cfg->cfg_listen, "data_dir",
              srv->cfg->cfg_data_dir, "version", PACKAGE_VERSION, NULL);
    log_batch(log_pending, flush);
    rc = event_base_dispatch(srv->base);
    log_batch(NULL, NULL);
    event_free(flush);
    if (rc == -1)
        return -1;
    log_event(LOG_INFO, "stopped", NULL);
    return 0;
}

void server_destroy(struct server *srv)
{
    if (srv == NULL)
        return;
    if (srv->http != NULL)
        evhttp_free(srv->http);
    api_destroy(srv->api);
    if (srv->sigterm != NULL)
        event_free(srv->sigterm);
    if (srv->sigint != NULL)
        event_free(srv->sigint);
    if (srv->deadline != NULL)
        event_free(srv->deadline);
    if (srv->base != NULL)
        event_base_free(srv->base);
    srv->magic = 0;
    free(srv);
}
