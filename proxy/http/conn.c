/*
 * Connection records: one per client connection from accept until evhttp frees it, and the
 * limits that hang on them. evhttp owns accept and has no hook for an accepted socket, so the
 * record is made in the bufferevent callback evhttp calls for each accepted connection, and
 * adopted (socket, peer address, close callback) from an event activated there, which runs in
 * the same loop turn once evhttp has set the connection up. The record owns the connection's
 * close callback for its whole life and passes the news to the request in flight (its
 * exchange). With it come max_connections (at the cap the longest-idle connection is closed to
 * admit the new one, or accepting pauses when none is idle), max_connections_per_client, the
 * header deadline (header_timeout from accept, or from a later request's first byte, until the
 * request is read; libevent's own read timeout restarts on every byte), and the episodes that
 * log a pause or a spell of evictions once when it starts and once when it ends.
 */
#include "config.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "config_file.h"
#include "http-int.h"
#include "log.h"
#include "util.h"

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
#define EPISODE_QUIET_USEC 1000000 /* an episode ends after this long without its condition */
#define RATELOG_USEC 1000000       /* at most one line a second for per-connection events */

static const char *const episode_reason[EP_NKINDS] = {"max_connections", "emfile", "error",
                                                      "max_connections"};

/* ---- episodes ------------------------------------------------------------------------------- */

static void episode_quiet_cb(evutil_socket_t fd, short what, void *arg)
{
    struct episode *ep;
    char ms[32], n[32];

    CAST_OBJ_NOTNULL(ep, arg, EPISODE_MAGIC);
    (void)fd;
    (void)what;
    if (ep->ep_on || !ep->ep_open)
        return;
    snprintf(ms, sizeof(ms), "%lld", (long long)((ep->ep_last_usec - ep->ep_since_usec) / 1000));
    snprintf(n, sizeof(n), "%llu", (unsigned long long)ep->ep_times);
    if (ep->ep_kind == EP_EVICT)
        log_event(LOG_INFO, "evicting-idle-ended", "reason", episode_reason[ep->ep_kind], "ms", ms,
                  "evicted", n, NULL);
    else
        log_event(LOG_INFO, "accept-resumed", "reason", episode_reason[ep->ep_kind], "ms", ms,
                  "pauses", n, NULL);
    ep->ep_open = 0;
    ep->ep_times = 0;
}

/* The condition <ep> stands for has just happened (once more); <error> may be NULL. */
void episode_begin(struct server *srv, enum episode_kind k, const char *error)
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
        log_event(LOG_WARN, "evicting-idle", "reason", episode_reason[k], "connections", n, "max",
                  max, NULL);
    else if (error != NULL)
        log_event(LOG_WARN, "accept-paused", "reason", episode_reason[k], "error", error,
                  "connections", n, "max", max, NULL);
    else
        log_event(LOG_WARN, "accept-paused", "reason", episode_reason[k], "connections", n, "max",
                  max, NULL);
}

/* The condition is over for now: the episode ends unless it comes back within the quiet time. */
void episode_end_soon(struct server *srv, enum episode_kind k)
{
    struct episode *ep = &srv->ep[k];
    struct timeval tv = {EPISODE_QUIET_USEC / 1000000, EPISODE_QUIET_USEC % 1000000};

    ep->ep_last_usec = util_mono_usec();
    if (ep->ep_open)
        evtimer_add(ep->ep_quiet, &tv);
}

/* ---- client addresses and rate-limited lines ------------------------------------------------ */

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
    if (c->client == NULL ||
        inet_ntop(c->client->cl_family, c->client->cl_addr, buf, (socklen_t)size) == NULL)
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

/* ---- connection records ---------------------------------------------------------------------- */

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
    if (info->n_added > 0 && c->x != NULL)
        exchange_note_sent(c->x);
}

/* Undo everything <c> holds and free it; the connection itself is evhttp's to free. */
void conn_release(struct conn *c)
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
void conn_watch_cb(evutil_socket_t fd, short what, void *arg)
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
    want_watch = srv->watch != NULL && srv->listener != NULL && srv->ep[EP_MAX_CONNECTIONS].ep_on &&
                 !TAILQ_EMPTY(&srv->idlers);
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

struct conn *conn_exchange_begin(struct server *srv, struct evhttp_connection *evcon,
                                 struct exchange *x)
{
    struct conn *c = conn_of(srv, evcon);

    if (c != NULL) {
        conn_deadline_off(c);
        conn_set_state(c, CONN_BUSY);
        c->x = x;
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
    return c;
}

void conn_exchange_end(struct conn *c, int corked)
{
    CHECK_OBJ_NOTNULL(c, CONN_MAGIC);
    c->x = NULL;
    c->used = 1;
    /* Every byte is with the kernel now: let the last partial segment go. */
    if (corked)
        http_cork(c->evcon, 0);
    /* Between requests, a silent client times out again. */
    bufferevent_set_timeouts(c->bev, &c->srv->idle, &c->srv->idle);
    /* A pipelined request already waiting starts its deadline now. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        conn_set_state(c, CONN_READING);
        conn_deadline_on(c);
    } else {
        conn_set_state(c, CONN_IDLE);
    }
}

/* ---- set-up --------------------------------------------------------------------------------- */

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
static void conn_limits(struct server *srv, const struct config *cfg)
{
    struct rlimit rl;
    uint64_t nofile = 1024;
    int64_t derived;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY
                     ? (uint64_t)CONFIG_MAX_CONNECTIONS_LIMIT * SERVER_FDS_PER_CONN
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

void conn_setup(struct server *srv, const struct config *cfg)
{
    conn_limits(srv, cfg);
    srv->adopt = event_new(srv->base, -1, 0, adopt_cb, srv);
    for (int k = 0; k < EP_NKINDS; k++) {
        srv->ep[k].magic = EPISODE_MAGIC;
        srv->ep[k].ep_kind = (enum episode_kind)k;
        srv->ep[k].ep_quiet = evtimer_new(srv->base, episode_quiet_cb, &srv->ep[k]);
    }
    evhttp_set_bevcb(srv->http, conn_bev_cb, srv);
}

void conn_teardown(struct server *srv)
{
    if (srv->adopt != NULL)
        event_free(srv->adopt);
    srv->adopt = NULL;
    for (int k = 0; k < EP_NKINDS; k++) {
        if (srv->ep[k].ep_quiet != NULL)
            event_free(srv->ep[k].ep_quiet);
        srv->ep[k].ep_quiet = NULL;
    }
    free(srv->by_fd);
    srv->by_fd = NULL;
    srv->nby_fd = 0;
}
