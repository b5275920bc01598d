/*
 * The daemon's event loop: one libevent base, an evhttp listener, SIGTERM/SIGINT handling.
 *
 * Every client connection gets a record (struct conn) from accept until evhttp frees it.
 * evhttp owns accept and has no hook for an accepted socket, so the record is made in the
 * bufferevent callback evhttp calls for each accepted connection, and adopted (socket, peer
 * address, close callback) from an event activated there, which runs in the same loop turn once
 * evhttp has set the connection up. The record owns the connection's close callback for its
 * whole life. With it come the limits: max_connections (at the cap the longest-idle connection
 * is closed to admit the new one, or accepting pauses when none is idle), accept errors such as
 * EMFILE (accepting pauses with backoff instead of spinning), max_connections_per_client, and
 * the header deadline (header_timeout from accept, or from a later request's first byte, until
 * the request is read; libevent's own read timeout restarts on every byte).
 *
 * Every request gets a small exchange record from the moment evhttp hands it to us until its
 * response is written (evhttp's on-complete callback) or its connection dies (the
 * connection record's close callback passes it on). The count of live exchanges is what a
 * graceful stop waits for: on the first signal the listener is closed, and the loop ends when
 * the count reaches zero or the drain deadline passes, whichever comes first. A second signal
 * ends it at once.
 */
#include "config.h"

#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "config_file.h"
#include "exchange.h"
#include "log.h"
#include "reply.h"
#include "util.h"

#define SERVER_MAGIC 0x53525652u   /* "SRVR" */
#define EXCHANGE_MAGIC 0x45584348u /* "EXCH" */
#define CONN_MAGIC 0x434f4e4eu     /* "CONN" */
#define EPISODE_MAGIC 0x45504953u  /* "EPIS" */
#define SERVER_MAX_HEADERS (64 * 1024)
#define SERVER_MAX_BODY (1024 * 1024)
#define SERVER_IDLE_TIMEOUT 120 /* seconds; ECR_PTC_PROXY_CLIENT_TIMEOUT overrides */
/*
 * The default max_connections: (RLIMIT_NOFILE - SERVER_FD_RESERVE) / SERVER_FDS_PER_CONN.
 * The reserve covers what the process holds whatever the load: stdio, epoll, libevent's signal
 * pair, the listener, SQLite's database, WAL and shm files, libcurl's wake-up pair, resolver
 * threads' pairs and pooled upstream connections. Per client connection: its socket, the file
 * it sends from (a store file, or its own dup of a fill's temp file) and, for a connection that
 * started a fill, a share of that fill's temp file, commit dup and upstream socket.
 */
#define SERVER_FD_RESERVE 64
#define SERVER_FDS_PER_CONN 4
#define SERVER_CLIENT_BUCKETS 1024
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000
#define EPISODE_QUIET_USEC 1000000 /* an episode ends after this long without its condition */
#define RATELOG_USEC 1000000       /* at most one line a second for per-connection events */

/* Why accepting stopped, or what is being done to stay under max_connections. */
enum episode_kind { EP_MAX_CONNECTIONS = 0, EP_EMFILE, EP_ACCEPT_ERROR, EP_EVICT, EP_NKINDS };

static const char *const episode_reason[EP_NKINDS] = {"max_connections", "emfile", "error",
                                                      "max_connections"};

/*
 * A spell of one condition (accept paused, idle connections being evicted), logged once when it
 * starts and once when it has been over for EPISODE_QUIET_USEC: a condition that flaps on every
 * connection is one episode, not a line per accept.
 */
struct episode {
    unsigned magic;
    int ep_on;              /* the condition holds now (accepting paused for this reason) */
    int ep_open;            /* the start was logged, the end not yet */
    int64_t ep_since_usec;  /* the episode's start */
    int64_t ep_last_usec;   /* the condition last ended */
    uint64_t ep_times;      /* pauses (or evictions) in this episode */
    struct event *ep_quiet; /* fires EPISODE_QUIET_USEC after the condition last ended */
    enum episode_kind ep_kind;
};

/* At most one log line a second for an event that a peer can repeat at will. */
struct ratelog {
    int64_t rl_last_usec;
    uint64_t rl_suppressed;
};

/* Client connections from one address (IPv4-mapped IPv6 counts as IPv4). */
struct client {
    struct client *cl_next;
    int cl_family;
    unsigned char cl_addr[16];
    int64_t cl_conns;
};

enum conn_state {
    CONN_NEW = 0, /* accepted, evhttp still setting it up: on srv->pending */
    CONN_IDLE,    /* no request bytes since accept or since its last response: on srv->idlers */
    CONN_READING, /* a request is arriving: the header deadline runs */
    CONN_BUSY     /* a request is being answered: it has an exchange */
};

/*
 * One client connection from accept until evhttp frees it. It owns the connection's close
 * callback for its whole life and passes the news to the request in flight (its exchange).
 */
struct conn {
    unsigned magic;
    struct server *srv;
    struct bufferevent *bev;           /* evhttp's; we hold a reference only while CONN_NEW */
    struct evhttp_connection *evcon;   /* NULL while CONN_NEW */
    evutil_socket_t fd;
    enum conn_state state;
    int used;                          /* answered a request: idle now means keep-alive */
    int over;                          /* accepted past max_connections: refuse it */
    int deadline_on;
    struct event *deadline;            /* the header deadline */
    struct evbuffer_cb_entry *in_cb, *out_cb;
    struct client *client;
    struct exchange *x;                /* the request being answered, or NULL */
    TAILQ_ENTRY(conn) link;            /* srv->pending (CONN_NEW) or srv->idlers (CONN_IDLE) */
};

TAILQ_HEAD(conn_list, conn);

struct server {
    unsigned magic;
    const struct config *cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener; /* the bound socket's; NULL once closed */
    int accepting;                   /* the listener is enabled */
    struct timeval idle;        /* a client silent this long, or not reading, is dropped */
    struct timeval header_tv;   /* from accept or a request's first byte to the request read */
    const struct timeval *header_common;
    server_handler_fn handler;
    void *handler_arg;
    int closed; /* server_close ran */
    struct event *sigterm;
    struct event *sigint;
    struct event *deadline;
    int64_t inflight;
    int stopping;
    int64_t drain_usec;

    int64_t max_conns;           /* max_connections in force */
    int64_t per_client;          /* max_connections_per_client; 0: no cap */
    int64_t nconns;              /* client connections open, CONN_NEW included */
    struct conn **by_fd;         /* adopted connections by socket */
    size_t nby_fd;
    struct conn_list pending;    /* CONN_NEW, oldest first */
    struct conn_list idlers;     /* CONN_IDLE, longest idle first */
    struct event *adopt;         /* adopts srv->pending once evhttp has set them up */
    struct client *clients[SERVER_CLIENT_BUCKETS];
    struct event *backoff;       /* re-enables accepting after an accept error */
    int backoff_ms;
    struct episode ep[EP_NKINDS];
    struct ratelog rl_timeout, rl_refused;
    uint64_t m_paused[EP_EVICT];  /* pauses by reason */
    uint64_t m_evicted;
    uint64_t m_refused_per_client;
    uint64_t m_refused_max;
    struct event *watch;         /* the listening socket, read while paused at the cap */
    int watching;
    uint64_t m_header_timeouts;
    struct server *next; /* live_servers */
};

/* One request from arrival to the end of its response. */
struct exchange {
    unsigned magic;
    struct server *srv;
    struct conn *conn; /* NULL when the request came without one, or once it is gone */
    struct evhttp_request *req;
    int64_t start_usec;
    int sent_status;   /* the status line that went out; 0 while nothing has been sent */
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
    log_event(LOG_INFO, "request", "method", method_name(evhttp_request_get_command(x->req)),
              "uri", uri ? uri : "", "status", status, "ms", ms, "outcome", outcome, NULL);
    x->magic = 0;
    free(x);
    server_inflight_end(srv);
}

/* ---- per-connection records --------------------------------------------------------------- */

static void episode_quiet_cb(evutil_socket_t fd, short what, void *arg)
{
    struct episode *ep = arg;
    char ms[32], n[32];

    CHECK_OBJ_NOTNULL(ep, EPISODE_MAGIC);

    (void)fd;
    (void)what;
    if (ep->ep_on || !ep->ep_open)
        return;
    snprintf(ms, sizeof(ms), "%lld", (long long)((ep->ep_last_usec - ep->ep_since_usec) / 1000));
    snprintf(n, sizeof(n), "%llu", (unsigned long long)ep->ep_times);
    if (ep->ep_kind == EP_EVICT)
        log_event(LOG_INFO, "evicting-idle-ended", "reason", episode_reason[ep->ep_kind], "ms",
                  ms, "evicted", n, NULL);
    else
        log_event(LOG_INFO, "accept-resumed", "reason", episode_reason[ep->ep_kind], "ms", ms,
                  "pauses", n, NULL);
    ep->ep_open = 0;
    ep->ep_times = 0;
}

/* The condition <ep> stands for has just happened (once more); <error> may be NULL. */
static void episode_begin(struct server *srv, enum episode_kind k, const char *error)
{
    struct episode *ep = &srv->ep[k];
    char n[32], max[32];

    ep->ep_times++;
    if (ep->ep_open) {
        evtimer_del(ep->ep_quiet);
        return;
    }
    ep->ep_open = 1;
    ep->ep_since_usec = util_mono_usec();
    snprintf(n, sizeof(n), "%lld", (long long)srv->nconns);
    snprintf(max, sizeof(max), "%lld", (long long)srv->max_conns);
    if (k == EP_EVICT)
        log_event(LOG_WARN, "evicting-idle", "reason", episode_reason[k], "connections", n,
                  "max", max, NULL);
    else if (error != NULL)
        log_event(LOG_WARN, "accept-paused", "reason", episode_reason[k], "error", error,
                  "connections", n, "max", max, NULL);
    else
        log_event(LOG_WARN, "accept-paused", "reason", episode_reason[k], "connections", n,
                  "max", max, NULL);
}

/* The condition is over for now: the episode ends unless it comes back within the quiet time. */
static void episode_end_soon(struct server *srv, enum episode_kind k)
{
    struct episode *ep = &srv->ep[k];
    struct timeval tv = {EPISODE_QUIET_USEC / 1000000, EPISODE_QUIET_USEC % 1000000};

    ep->ep_last_usec = util_mono_usec();
    if (ep->ep_open)
        evtimer_add(ep->ep_quiet, &tv);
}

/* Enable the listener exactly when nothing holds accepting back. */
static void accept_update(struct server *srv)
{
    int want = srv->listener != NULL && !srv->stopping;

    for (int k = 0; k < EP_EVICT; k++)
        if (srv->ep[k].ep_on)
            want = 0;
    if (srv->listener == NULL || want == srv->accepting)
        return;
    if (want)
        evconnlistener_enable(srv->listener);
    else
        evconnlistener_disable(srv->listener);
    srv->accepting = want;
}

static void accept_pause(struct server *srv, enum episode_kind k, const char *error)
{
    if (srv->ep[k].ep_on)
        return;
    srv->ep[k].ep_on = 1;
    srv->m_paused[k]++;
    episode_begin(srv, k, error);
    accept_update(srv);
}

static void accept_resume(struct server *srv, enum episode_kind k)
{
    if (!srv->ep[k].ep_on)
        return;
    srv->ep[k].ep_on = 0;
    episode_end_soon(srv, k);
    accept_update(srv);
}

/*
 * Servers whose listener is open. The listener's callback argument is evhttp's, so its error
 * callback finds its server here; the event loop's thread is the only one that touches it.
 */
static struct server *live_servers;

static void live_remove(struct server *srv)
{
    struct server **pp;

    for (pp = &live_servers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == srv) {
            *pp = srv->next;
            break;
        }
    }
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    accept_resume(srv, EP_EMFILE);
    accept_resume(srv, EP_ACCEPT_ERROR);
}

/*
 * accept() failed with something other than EAGAIN/EINTR/ECONNABORTED: out of descriptors
 * (EMFILE, ENFILE) or memory. Retrying at once would spin (the pending connection stays in the
 * backlog and the listener stays readable), so accepting pauses, 50 ms at first and doubling
 * to 1 s while it keeps failing.
 */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    struct server *srv;
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval tv;

    (void)arg; /* the listener's argument is evhttp's own */
    for (srv = live_servers; srv != NULL && srv->listener != lev; srv = srv->next)
        ;
    if (srv == NULL || srv->magic != SERVER_MAGIC)
        abort();
    accept_pause(srv, e == EMFILE || e == ENFILE ? EP_EMFILE : EP_ACCEPT_ERROR, strerror(e));
    tv.tv_sec = srv->backoff_ms / 1000;
    tv.tv_usec = (srv->backoff_ms % 1000) * 1000;
    evtimer_add(srv->backoff, &tv);
    srv->backoff_ms *= 2;
    if (srv->backoff_ms > ACCEPT_BACKOFF_MAX_MS)
        srv->backoff_ms = ACCEPT_BACKOFF_MAX_MS;
}

/* Log at most once a second; returns 1 when this one may be logged, with *skipped since. */
static int ratelog_ok(struct ratelog *rl, uint64_t *skipped)
{
    int64_t now = util_mono_usec();

    if (rl->rl_last_usec != 0 && now - rl->rl_last_usec < RATELOG_USEC) {
        rl->rl_suppressed++;
        return 0;
    }
    rl->rl_last_usec = now;
    *skipped = rl->rl_suppressed;
    rl->rl_suppressed = 0;
    return 1;
}

static void conn_addr_text(const struct conn *c, char *buf, size_t size)
{
    if (c->client == NULL || inet_ntop(c->client->cl_family, c->client->cl_addr, buf,
                                       (socklen_t)size) == NULL)
        str_copy(buf, size, "?");
}

static unsigned client_hash(int family, const unsigned char *addr)
{
    size_t n = family == AF_INET ? 4 : 16;
    unsigned h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h % SERVER_CLIENT_BUCKETS;
}

/* The client record for the peer of <fd>, created on first use; NULL when it has no address. */
static struct client *client_get(struct server *srv, evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    unsigned char addr[16] = {0};
    int family;
    struct client *cl;
    unsigned h;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
        return NULL;
    if (ss.ss_family == AF_INET) {
        family = AF_INET;
        memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(addr, a6->s6_addr + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(addr, a6->s6_addr, 16);
        }
    } else {
        return NULL;
    }
    h = client_hash(family, addr);
    for (cl = srv->clients[h]; cl != NULL; cl = cl->cl_next)
        if (cl->cl_family == family && memcmp(cl->cl_addr, addr, 16) == 0)
            return cl;
    cl = xcalloc(1, sizeof(*cl));
    cl->cl_family = family;
    memcpy(cl->cl_addr, addr, 16);
    cl->cl_next = srv->clients[h];
    srv->clients[h] = cl;
    return cl;
}

static void client_put(struct server *srv, struct client *cl)
{
    struct client **pp;

    if (--cl->cl_conns > 0)
        return;
    for (pp = &srv->clients[client_hash(cl->cl_family, cl->cl_addr)]; *pp != NULL;
         pp = &(*pp)->cl_next) {
        if (*pp == cl) {
            *pp = cl->cl_next;
            break;
        }
    }
    free(cl);
}

static void limits_update(struct server *srv);

static struct conn *conn_of(struct server *srv, struct evhttp_connection *evcon)
{
    evutil_socket_t fd;
    struct conn *c;

    if (evcon == NULL)
        return NULL;
    fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    if (fd < 0 || (size_t)fd >= srv->nby_fd)
        return NULL;
    c = srv->by_fd[fd];
    if (c == NULL || c->evcon != evcon)
        return NULL;
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    return c;
}

static void conn_set_state(struct conn *c, enum conn_state st)
{
    struct server *srv = c->srv;

    if (c->state == CONN_NEW)
        TAILQ_REMOVE(&srv->pending, c, link);
    else if (c->state == CONN_IDLE)
        TAILQ_REMOVE(&srv->idlers, c, link);
    c->state = st;
    if (st == CONN_IDLE)
        TAILQ_INSERT_TAIL(&srv->idlers, c, link);
    limits_update(srv);
}

/* Close <c> now (evhttp frees it; its close callback releases the record). */
static void conn_drop(struct conn *c)
{
    evhttp_connection_free(c->evcon);
}

static void conn_deadline_on(struct conn *c)
{
    if (c->deadline_on || c->deadline == NULL)
        return;
    evtimer_add(c->deadline, c->srv->header_common);
    c->deadline_on = 1;
}

static void conn_deadline_off(struct conn *c)
{
    if (!c->deadline_on)
        return;
    evtimer_del(c->deadline);
    c->deadline_on = 0;
}

/* The request that started arriving has not been read in header_timeout: drop it. */
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct server *srv;
    char addr[INET6_ADDRSTRLEN], secs[32], skipped_s[32];
    uint64_t skipped;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    srv = c->srv;
    c->deadline_on = 0;
    srv->m_header_timeouts++;
    if (ratelog_ok(&srv->rl_timeout, &skipped)) {
        conn_addr_text(c, addr, sizeof(addr));
        snprintf(secs, sizeof(secs), "%lld", (long long)srv->header_tv.tv_sec);
        snprintf(skipped_s, sizeof(skipped_s), "%llu", (unsigned long long)skipped);
        log_event(LOG_INFO, "header-timeout", "client", addr, "header_timeout_s", secs,
                  "unlogged_before", skipped_s, NULL);
    }
    conn_drop(c);
}

/* Bytes arrived: an idle connection is now reading a request, and its deadline runs. */
static void conn_input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    (void)buf;
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    if (info->n_added == 0 || c->state != CONN_IDLE)
        return;
    conn_set_state(c, CONN_READING);
    conn_deadline_on(c);
}

/* Bytes queued for the client: the first of a response carries its status line. */
static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;

    (void)buf;
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    if (info->n_added > 0 && c->x != NULL && c->x->sent_status == 0)
        c->x->sent_status = evhttp_request_get_response_code(c->x->req);
}

/* Undo everything <c> holds and free it; the connection itself is evhttp's to free. */
static void conn_release(struct conn *c)
{
    struct server *srv = c->srv;

    if (c->state == CONN_NEW) {
        TAILQ_REMOVE(&srv->pending, c, link);
        if (c->bev != NULL)
            bufferevent_decref(c->bev);
    } else if (c->state == CONN_IDLE) {
        TAILQ_REMOVE(&srv->idlers, c, link);
    }
    if (c->in_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
    if (c->out_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    if (c->deadline != NULL)
        event_free(c->deadline);
    if (c->fd >= 0 && (size_t)c->fd < srv->nby_fd && srv->by_fd[c->fd] == c)
        srv->by_fd[c->fd] = NULL;
    if (c->client != NULL)
        client_put(srv, c->client);
    srv->nconns--;
    free(c);
    limits_update(srv);
}

/* The request in flight on a connection that is going away: tell its handler, log it. */
static void exchange_gone(struct exchange *x)
{
    void (*gone)(void *) = x->gone_cb;
    void *gone_arg = x->gone_arg;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    x->conn = NULL;
    evhttp_request_set_on_complete_cb(x->req, NULL, NULL);
    /* The handler's gone callback may free the request: log first. */
    exchange_finish(x, "client-gone");
    if (gone != NULL)
        gone(gone_arg);
}

/* evhttp frees the connection (client gone, timeout, Connection: close, or shutdown). */
static void conn_close_cb(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;
    struct exchange *x;

    (void)evcon;
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    x = c->x;
    c->x = NULL;
    if (x != NULL)
        exchange_gone(x);
    conn_release(c);
}

/*
 * Take over a connection evhttp has finished setting up: its bufferevent now has the socket and
 * evhttp's callbacks, whose argument is the evhttp_connection. When evhttp gave up on it instead
 * (it freed the bufferevent, which clears the callbacks), only the record goes.
 */
static void conn_adopt(struct conn *c)
{
    struct server *srv = c->srv;
    bufferevent_data_cb readcb;
    void *cbarg = NULL;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    char addr[INET6_ADDRSTRLEN], n[32], skipped_s[32];
    uint64_t skipped;

    bufferevent_getcb(c->bev, &readcb, NULL, NULL, &cbarg);
    bufferevent_decref(c->bev);
    if (readcb == NULL || cbarg == NULL || fd < 0) {
        c->bev = NULL;
        conn_release(c);
        return;
    }
    c->evcon = cbarg;
    c->fd = fd;
    if ((size_t)fd >= srv->nby_fd) {
        size_t n2 = srv->nby_fd ? srv->nby_fd : 256;
        while (n2 <= (size_t)fd)
            n2 *= 2;
        srv->by_fd = xrealloc(srv->by_fd, n2 * sizeof(*srv->by_fd));
        memset(srv->by_fd + srv->nby_fd, 0, (n2 - srv->nby_fd) * sizeof(*srv->by_fd));
        srv->nby_fd = n2;
    }
    srv->by_fd[fd] = c;
    evhttp_connection_set_closecb(c->evcon, conn_close_cb, c);
    c->in_cb = evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input_cb, c);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_output_cb, c);
    c->deadline = evtimer_new(srv->base, conn_deadline_cb, c);
    c->client = client_get(srv, fd);
    if (c->client != NULL)
        c->client->cl_conns++;
    /* The first request's deadline runs from accept: a connection that sends nothing counts. */
    conn_set_state(c, CONN_IDLE);
    conn_deadline_on(c);
    if (c->over) {
        srv->m_refused_max++;
        conn_drop(c);
        return;
    }
    if (srv->per_client > 0 && c->client != NULL && c->client->cl_conns > srv->per_client) {
        srv->m_refused_per_client++;
        if (ratelog_ok(&srv->rl_refused, &skipped)) {
            conn_addr_text(c, addr, sizeof(addr));
            snprintf(n, sizeof(n), "%lld", (long long)srv->per_client);
            snprintf(skipped_s, sizeof(skipped_s), "%llu", (unsigned long long)skipped);
            log_event(LOG_WARN, "connection-refused", "reason", "per_client", "client", addr,
                      "max_connections_per_client", n, "unlogged_before", skipped_s, NULL);
        }
        conn_drop(c);
    }
}

static void conn_adopt_pending(struct server *srv)
{
    struct conn *c;

    while ((c = TAILQ_FIRST(&srv->pending)) != NULL)
        conn_adopt(c);
}

static void adopt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    conn_adopt_pending(srv);
}

/* Close the connection idle longest, to admit a new one at max_connections. */
static int conn_evict_one(struct server *srv)
{
    struct conn *victim = TAILQ_FIRST(&srv->idlers);

    if (victim == NULL)
        return 0;
    srv->m_evicted++;
    if (!srv->ep[EP_EVICT].ep_on) {
        srv->ep[EP_EVICT].ep_on = 1;
        episode_begin(srv, EP_EVICT, NULL);
    } else {
        srv->ep[EP_EVICT].ep_times++;
    }
    conn_drop(victim);
    return 1;
}

/* Paused at the cap, idle connections exist, and a client waits in the backlog: make room. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    conn_evict_one(srv);
}

/*
 * max_connections. Below it, accepting runs. At it, an accepted connection closes the one idle
 * longest (a keep-alive between requests, or one that has sent nothing yet): HTTP/1.1 lets a
 * server close an idle persistent connection at any time, and it keeps a flood of silent
 * connections from shutting everyone else out. With none idle, accepting pauses until one
 * closes; while paused, the listening socket is watched so that a client waiting in the
 * backlog makes room by closing a connection that went idle meanwhile. The count never goes
 * past the cap: accepting is paused whenever the count is at it with nothing to evict, and
 * that is checked at every change of either.
 */
static void limits_update(struct server *srv)
{
    struct episode *ev = &srv->ep[EP_EVICT];
    int want_watch;

    if (srv->nconns >= srv->max_conns && TAILQ_EMPTY(&srv->idlers))
        accept_pause(srv, EP_MAX_CONNECTIONS, NULL);
    else if (srv->nconns < srv->max_conns)
        accept_resume(srv, EP_MAX_CONNECTIONS);
    if (srv->nconns < srv->max_conns && ev->ep_on) {
        ev->ep_on = 0;
        episode_end_soon(srv, EP_EVICT);
    }
    want_watch = srv->watch != NULL && srv->listener != NULL &&
                 srv->ep[EP_MAX_CONNECTIONS].ep_on && !TAILQ_EMPTY(&srv->idlers);
    if (want_watch != srv->watching) {
        if (want_watch)
            event_add(srv->watch, NULL);
        else
            event_del(srv->watch);
        srv->watching = want_watch;
    }
}

/*
 * evhttp calls this for every accepted connection, before it sets the socket and its callbacks
 * on the bufferevent: count the connection here (so the accept loop stops at once at the cap),
 * and adopt it once evhttp is done with it, from an event activated now. That event runs in
 * this same loop turn, before the new socket can be read.
 */
static struct bufferevent *conn_bev_cb(struct event_base *base, void *arg)
{
    struct server *srv = arg;
    struct bufferevent *bev;
    struct conn *c;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    srv->backoff_ms = ACCEPT_BACKOFF_MIN_MS;
    /* Options 0, as evhttp's own: evhttp_connection_free shuts the socket down and closes it
     * after freeing the bufferevent; with CLOSE_ON_FREE the close came first, and the
     * shutdown could hit a descriptor number another thread had just been given. */
    bev = bufferevent_socket_new(base, -1, 0);
    if (bev == NULL)
        return NULL;
    c = xcalloc(1, sizeof(*c));
    c->magic = CONN_MAGIC;
    c->srv = srv;
    c->bev = bev;
    c->fd = -1;
    c->state = CONN_NEW;
    bufferevent_incref(bev);
    TAILQ_INSERT_TAIL(&srv->pending, c, link);
    srv->nconns++;
    event_active(srv->adopt, EV_TIMEOUT, 0);
    if (srv->nconns > srv->max_conns && !conn_evict_one(srv))
        c->over = 1; /* not expected (accepting pauses first): refused once adopted */
    limits_update(srv);
    return bev;
}

/* ---- exchanges ------------------------------------------------------------------------------ */

static void exchange_complete_cb(struct evhttp_request *req, void *arg)
{
    struct exchange *x = arg;
    struct conn *c;

    (void)req;
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    c = x->conn;
    if (c != NULL) {
        CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
        c->x = NULL;
        x->conn = NULL;
        c->used = 1;
        /* Every byte is with the kernel now: let the last partial segment go. */
        if (x->corked)
            conn_cork(c->evcon, 0);
        /* Between requests, a silent client times out again. */
        bufferevent_set_timeouts(c->bev, &x->srv->idle, &x->srv->idle);
        /* A pipelined request already waiting starts its deadline now. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            conn_set_state(c, CONN_READING);
            conn_deadline_on(c);
        } else {
            conn_set_state(c, CONN_IDLE);
        }
    }
    exchange_finish(x, "done");
}

static void server_request_cb(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    struct exchange *x;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct conn *c;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    x = xcalloc(1, sizeof(*x));
    x->magic = EXCHANGE_MAGIC;
    x->srv = srv;
    x->req = req;
    x->start_usec = util_mono_usec();
    server_inflight_begin(srv);
    evhttp_request_set_on_complete_cb(req, exchange_complete_cb, x);
    c = conn_of(srv, evcon);
    if (c != NULL) {
        conn_deadline_off(c);
        conn_set_state(c, CONN_BUSY);
        c->x = x;
        x->conn = c;
    }
    if (evcon != NULL) {
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
        http_send_error(req, OCI_ERR_UNAVAILABLE, "the proxy is shutting down", NULL);
        return;
    }
    srv->handler(srv->handler_arg, req, x);
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

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);

    snprintf(n, sizeof(n), "%lld", (long long)srv->inflight);
    log_event(LOG_WARN, "drain-deadline", "unfinished", n, NULL);
    event_base_loopbreak(srv->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    struct timeval tv;
    char n[32];

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);

    if (srv->stopping) {
        log_event(LOG_WARN, "stop-now", "signal", strsignal((int)sig), NULL);
        event_base_loopbreak(srv->base);
        return;
    }
    srv->stopping = 1;
    snprintf(n, sizeof(n), "%lld", (long long)srv->inflight);
    log_event(LOG_INFO, "stopping", "signal", strsignal((int)sig), "inflight", n, NULL);
    if (srv->bound != NULL) {
        live_remove(srv);
        srv->listener = NULL;
        srv->accepting = 0;
        evtimer_del(srv->backoff);
        event_free(srv->watch);
        srv->watch = NULL;
        srv->watching = 0;
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

/* max_connections when the config leaves it out: see SERVER_FD_RESERVE. */
static int64_t default_max_connections(uint64_t nofile)
{
    uint64_t n;

    if (nofile <= SERVER_FD_RESERVE + SERVER_FDS_PER_CONN)
        return 1;
    n = (nofile - SERVER_FD_RESERVE) / SERVER_FDS_PER_CONN;
    return n > CONFIG_MAX_CONNECTIONS_LIMIT ? CONFIG_MAX_CONNECTIONS_LIMIT : (int64_t)n;
}

/* Choose max_connections and the header deadline; warn when the config asks for more than the
 * descriptor limit can carry (accept errors then pause accepting instead). */
static void server_limits(struct server *srv, const struct config *cfg)
{
    struct rlimit rl;
    uint64_t nofile = 1024;
    int64_t derived;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)CONFIG_MAX_CONNECTIONS_LIMIT *
                                                    SERVER_FDS_PER_CONN
                                              : (uint64_t)rl.rlim_cur;
    derived = default_max_connections(nofile);
    srv->max_conns = cfg->cfg_max_connections > 0 ? cfg->cfg_max_connections : derived;
    if (cfg->cfg_max_connections > derived) {
        char want[32], lim[32], fits[32];
        snprintf(want, sizeof(want), "%lld", (long long)cfg->cfg_max_connections);
        snprintf(lim, sizeof(lim), "%llu", (unsigned long long)nofile);
        snprintf(fits, sizeof(fits), "%lld", (long long)derived);
        log_event(LOG_WARN, "max-connections-above-fd-limit", "max_connections", want,
                  "rlimit_nofile", lim, "fits", fits, NULL);
    }
    /* Absent: a quarter of the slots (at least 16), so one address can never take them all
     * while a node pulling many layers at once, or a NAT in front of many, is not refused. */
    if (cfg->cfg_max_conn_per_client >= 0)
        srv->per_client = cfg->cfg_max_conn_per_client;
    else
        srv->per_client = srv->max_conns / 4 > 16 ? srv->max_conns / 4 : 16;
    srv->header_tv.tv_sec = (time_t)cfg->cfg_header_timeout;
    srv->header_common = event_base_init_common_timeout(srv->base, &srv->header_tv);
    if (srv->header_common == NULL)
        srv->header_common = &srv->header_tv;
}

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help,
                   const char *labels, uint64_t v)
{
    if (help != NULL)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    evbuffer_add_printf(b, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

void server_metrics(const struct server *srv, struct evbuffer *b)
{
    metric(b, "ecr_ptc_connections", "gauge", "client connections open", NULL,
           (uint64_t)srv->nconns);
    metric(b, "ecr_ptc_connections_max", "gauge", "max_connections in force", NULL,
           (uint64_t)srv->max_conns);
    metric(b, "ecr_ptc_accept_paused", "gauge", "1 while accepting new connections is paused",
           NULL, (uint64_t)(srv->listener != NULL && !srv->accepting));
    metric(b, "ecr_ptc_accept_paused_total", "counter",
           "times accepting was paused: at max_connections with no idle connection to close, "
           "out of descriptors, or another accept error",
           "{reason=\"max_connections\"}", srv->m_paused[EP_MAX_CONNECTIONS]);
    metric(b, "ecr_ptc_accept_paused_total", "counter", NULL, "{reason=\"emfile\"}",
           srv->m_paused[EP_EMFILE]);
    metric(b, "ecr_ptc_accept_paused_total", "counter", NULL, "{reason=\"error\"}",
           srv->m_paused[EP_ACCEPT_ERROR]);
    metric(b, "ecr_ptc_connections_evicted_total", "counter",
           "idle connections closed at max_connections to admit a new one", NULL,
           srv->m_evicted);
    metric(b, "ecr_ptc_connections_refused_total", "counter",
           "connections closed at once on accept", "{reason=\"per_client\"}",
           srv->m_refused_per_client);
    metric(b, "ecr_ptc_connections_refused_total", "counter", NULL,
           "{reason=\"max_connections\"}", srv->m_refused_max);
    metric(b, "ecr_ptc_header_timeouts_total", "counter",
           "connections dropped because a request was not read within header_timeout", NULL,
           srv->m_header_timeouts);
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

    *err = NULL;
    srv->magic = SERVER_MAGIC;
    srv->cfg = cfg;
    TAILQ_INIT(&srv->pending);
    TAILQ_INIT(&srv->idlers);
    srv->backoff_ms = ACCEPT_BACKOFF_MIN_MS;
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
    server_limits(srv, cfg);
    srv->adopt = event_new(srv->base, -1, 0, adopt_cb, srv);
    srv->backoff = evtimer_new(srv->base, backoff_cb, srv);
    for (int k = 0; k < EP_NKINDS; k++) {
        srv->ep[k].magic = EPISODE_MAGIC;
        srv->ep[k].ep_kind = (enum episode_kind)k;
        srv->ep[k].ep_quiet = evtimer_new(srv->base, episode_quiet_cb, &srv->ep[k]);
    }
    evhttp_set_bevcb(srv->http, conn_bev_cb, srv);
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

struct event_base *server_base(const struct server *srv)
{
    return srv->base;
}

int server_listen(struct server *srv, server_handler_fn handler, void *arg, char **err)
{
    char host[256];
    int port;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    srv->handler = handler;
    srv->handler_arg = arg;
    if (config_parse_listen(srv->cfg->cfg_listen, host, sizeof(host), &port) == -1) {
        *err = xasprintf("listen: \"%s\" is not HOST:PORT", srv->cfg->cfg_listen);
        return -1;
    }
    evhttp_set_gencb(srv->http, server_request_cb, srv);
    srv->bound = evhttp_bind_socket_with_handle(srv->http, host, (ev_uint16_t)port);
    if (srv->bound == NULL) {
        *err = xasprintf("listen: cannot listen on %s: %s", srv->cfg->cfg_listen, strerror(errno));
        return -1;
    }
    srv->listener = evhttp_bound_socket_get_listener(srv->bound);
    srv->accepting = 1;
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    srv->next = live_servers;
    live_servers = srv;
    srv->watch = event_new(srv->base, evconnlistener_get_fd(srv->listener), EV_READ | EV_PERSIST,
                           watch_cb, srv);
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
    return 0;
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
    char max[32], per[32];
    int rc;

    snprintf(max, sizeof(max), "%lld", (long long)srv->max_conns);
    snprintf(per, sizeof(per), "%lld", (long long)srv->per_client);
    srv->drain_usec = drain_usec;
    log_event(LOG_INFO, "listening", "addr", srv->cfg->cfg_listen, "data_dir",
              srv->cfg->cfg_data_dir, "max_connections", max, "max_connections_per_client",
              per, "version", PACKAGE_VERSION, NULL);
    log_batch(log_pending, flush);
    rc = event_base_dispatch(srv->base);
    log_batch(NULL, NULL);
    event_free(flush);
    if (rc == -1)
        return -1;
    log_event(LOG_INFO, "stopped", NULL);
    return 0;
}

void server_close(struct server *srv)
{
    if (srv == NULL || srv->closed)
        return;
    srv->closed = 1;
    /* Freeing the listener and every connection: their close callbacks must not reach it. */
    live_remove(srv);
    srv->listener = NULL;
    srv->stopping = 1;
    if (srv->watch != NULL)
        event_free(srv->watch);
    srv->watch = NULL;
    srv->watching = 0;
    if (srv->http != NULL)
        evhttp_free(srv->http);
    /* Connections evhttp had not finished setting up: it freed them, we hold the last ref. */
    while (!TAILQ_EMPTY(&srv->pending))
        conn_release(TAILQ_FIRST(&srv->pending));
    srv->http = NULL;
}

void server_destroy(struct server *srv)
{
    if (srv == NULL)
        return;
    server_close(srv);
    if (srv->adopt != NULL)
        event_free(srv->adopt);
    if (srv->backoff != NULL)
        event_free(srv->backoff);
    for (int k = 0; k < EP_NKINDS; k++)
        if (srv->ep[k].ep_quiet != NULL)
            event_free(srv->ep[k].ep_quiet);
    free(srv->by_fd);
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
