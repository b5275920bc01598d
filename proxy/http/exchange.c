/*
 * Exchanges: one client request from the moment evhttp hands it to us until its response is
 * written (evhttp's on-complete callback) or its connection dies (the connection record's close
 * callback passes that on: the "gone" protocol). Here too: the in-flight count a graceful stop
 * waits for, TCP_CORK for large bodies, and the access log line. docs/internals/exchange.md.
 */
#include "config.h"

#include "exchange.h"

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http-int.h"
#include "log.h"
#include "oci.h"
#include "reply.h"
#include "util.h"

#define EXCHANGE_MAGIC 0x45584348u /* "EXCH" */

/* One request from arrival to the end of its response. */
struct exchange {
    unsigned magic;
    struct server *srv;
    struct conn *conn; /* NULL when the request came without one, or once it is gone */
    struct evhttp_request *req;
    int64_t start_usec;
    int sent_status; /* the status line that went out; 0 while nothing has been sent */
    void (*gone_cb)(void *arg);
    void *gone_arg;
    int corked; /* TCP_CORK is on for the connection until this response completes */
};

void exchange_on_gone(struct exchange *x, void (*cb)(void *arg), void *arg)
{
    x->gone_cb = cb;
    x->gone_arg = arg;
}

void http_cork(struct evhttp_connection *evcon, int on)
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
    http_cork(evcon, 1);
    x->corked = 1;
}

void exchange_note_sent(struct exchange *x)
{
    if (x->sent_status == 0)
        x->sent_status = evhttp_request_get_response_code(x->req);
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

/*
 * Log the request and release the exchange. Reads the request, so call it before anything
 * that may free the request. The status logged is the one that went on the wire (a client that
 * left mid-body got its 200), or 0 when nothing was sent: evhttp rewrites the code of a request
 * whose connection failed to 400, and that 400 never reached anyone.
 */
static void exchange_finish(struct exchange *x, const char *outcome)
{
    struct server *srv = x->srv;
    char status[16], ms[32];
    const char *uri = evhttp_request_get_uri(x->req);
    int code = x->sent_status;

    if (code == 0 && strcmp(outcome, "done") == 0)
        code = evhttp_request_get_response_code(x->req);
    snprintf(status, sizeof(status), "%d", code);
    snprintf(ms, sizeof(ms), "%.3f", (double)(util_mono_usec() - x->start_usec) / 1000.0);
    log_event(LOG_INFO, "request", "method", method_name(evhttp_request_get_command(x->req)), "uri",
              uri ? uri : "", "status", status, "ms", ms, "outcome", outcome, NULL);
    x->magic = 0;
    free(x);
    server_inflight_end(srv);
}

void exchange_gone(struct exchange *x)
{
    void (*gone)(void *);
    void *gone_arg;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    gone = x->gone_cb;
    gone_arg = x->gone_arg;
    x->conn = NULL;
    evhttp_request_set_on_complete_cb(x->req, NULL, NULL);
    /* The handler's gone callback may free the request: log first. */
    exchange_finish(x, "client-gone");
    if (gone != NULL)
        gone(gone_arg);
}

static void exchange_complete_cb(struct evhttp_request *req, void *arg)
{
    struct exchange *x;
    struct conn *c;

    (void)req;
    CAST_OBJ_NOTNULL(x, arg, EXCHANGE_MAGIC);
    c = x->conn;
    if (c != NULL) {
        x->conn = NULL;
        conn_exchange_end(c, x->corked);
    }
    exchange_finish(x, "done");
}

/* Make the exchange for <req> on <srv> and hand it to <handler> (503 while stopping). Admin
 * requests (<admin>) have no connection record: no limits, no header deadline. */
static void exchange_start(struct server *srv, struct evhttp_request *req, int admin)
{
    struct exchange *x;

    x = xcalloc(1, sizeof(*x));
    x->magic = EXCHANGE_MAGIC;
    x->srv = srv;
    x->req = req;
    x->start_usec = util_mono_usec();
    server_inflight_begin(srv);
    evhttp_request_set_on_complete_cb(req, exchange_complete_cb, x);
    if (!admin)
        x->conn = conn_exchange_begin(srv, evhttp_request_get_connection(req), x);
    if (srv->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        http_send_error(req, OCI_ERR_UNAVAILABLE, "the proxy is shutting down", NULL);
        return;
    }
    if (admin)
        srv->admin_handler(srv->admin_arg, req, x);
    else
        srv->handler(srv->handler_arg, req, x);
}

void exchange_arrive_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv;

    CAST_OBJ_NOTNULL(srv, arg, SERVER_MAGIC);
    exchange_start(srv, req, 0);
}

void exchange_admin_arrive_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv;

    CAST_OBJ_NOTNULL(srv, arg, SERVER_MAGIC);
    exchange_start(srv, req, 1);
}

void server_inflight_begin(struct server *srv)
{
    srv->inflight++;
}

void server_inflight_end(struct server *srv)
{
    srv->inflight--;
    server_drain_check(srv);
}
