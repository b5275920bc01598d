/*
 * The daemon's event loop: one libevent base, an evhttp listener, SIGTERM/SIGINT/SIGHUP handling.
 *
 * Accepting is evhttp's; this file enables and disables its listener: paused at
 * max_connections with nothing idle to close (conn.c decides), and after accept errors such as
 * EMFILE, with backoff instead of spinning. Connections and their limits are conn.c's, each
 * request's exchange is exchange.c's.
 *
 * SIGHUP calls the reload callback (server_on_reload) on the loop, between requests; while
 * stopping it is ignored.
 *
 * A graceful stop waits for the count of live exchanges: on the first signal the listener is
 * closed, and the loop ends when the count reaches zero or the drain deadline passes, whichever
 * comes first. A second signal ends it at once.
 */
#include "config.h"

#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config_file.h"
#include "http-int.h"
#include "log.h"
#include "util.h"

#define SERVER_MAX_HEADERS (64 * 1024)
#define SERVER_MAX_BODY (1024 * 1024)
#define SERVER_IDLE_TIMEOUT 120 /* seconds; ECR_PTC_PROXY_CLIENT_TIMEOUT overrides */
#define ACCEPT_BACKOFF_MAX_MS 1000

/* ---- accepting ------------------------------------------------------------------------------ */

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

void accept_pause(struct server *srv, enum episode_kind k, const char *error)
{
    if (srv->ep[k].ep_on)
        return;
    srv->ep[k].ep_on = 1;
    srv->m_paused[k]++;
    episode_begin(srv, k, error);
    accept_update(srv);
}

void accept_resume(struct server *srv, enum episode_kind k)
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

/* ---- stopping ------------------------------------------------------------------------------- */

void server_drain_check(struct server *srv)
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
    server_drain_check(srv);
}

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    (void)sig;
    (void)what;
    if (srv->stopping || srv->reload_fn == NULL) {
        log_event(LOG_WARN, "reload-ignored", "reason",
                  srv->stopping ? "stopping" : "nothing to reload", NULL);
        return;
    }
    srv->reload_fn(srv->reload_arg);
}

void server_on_reload(struct server *srv, void (*fn)(void *arg), void *arg)
{
    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    srv->reload_fn = fn;
    srv->reload_arg = arg;
}

int server_stopping(const struct server *srv)
{
    return srv->stopping;
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
    metric(b, "ecr_ptc_accept_paused", "gauge", "1 while accepting new connections is paused", NULL,
           (uint64_t)(srv->listener != NULL && !srv->accepting));
    metric(b, "ecr_ptc_accept_paused_total", "counter",
           "times accepting was paused: at max_connections with no idle connection to close, "
           "out of descriptors, or another accept error",
           "{reason=\"max_connections\"}", srv->m_paused[EP_MAX_CONNECTIONS]);
    metric(b, "ecr_ptc_accept_paused_total", "counter", NULL, "{reason=\"emfile\"}",
           srv->m_paused[EP_EMFILE]);
    metric(b, "ecr_ptc_accept_paused_total", "counter", NULL, "{reason=\"error\"}",
           srv->m_paused[EP_ACCEPT_ERROR]);
    metric(b, "ecr_ptc_connections_evicted_total", "counter",
           "idle connections closed at max_connections to admit a new one", NULL, srv->m_evicted);
    metric(b, "ecr_ptc_connections_refused_total", "counter",
           "connections closed at once on accept", "{reason=\"per_client\"}",
           srv->m_refused_per_client);
    metric(b, "ecr_ptc_connections_refused_total", "counter", NULL, "{reason=\"max_connections\"}",
           srv->m_refused_max);
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
    conn_setup(srv, cfg);
    srv->backoff = evtimer_new(srv->base, backoff_cb, srv);
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
                                 "seconds from 1 to 86400",
                                 v);
                goto fail;
            }
            srv->idle.tv_sec = (time_t)secs;
        }
    }
    evhttp_set_timeout_tv(srv->http, &srv->idle);
    signal(SIGPIPE, SIG_IGN);
    /* Until the listener's handler is set (server_bind), a reload has nothing to reload: a
     * SIGHUP during a long reconcile must not end the process. */
    signal(SIGHUP, SIG_IGN);
    return srv;
fail:
    server_destroy(srv);
    return NULL;
}

struct event_base *server_base(const struct server *srv)
{
    return srv->base;
}

/* Set the handler and bind <host>:<port>; <what> names the address in an error. */
static int server_bind(struct server *srv, const char *host, int port, const char *what,
                       server_handler_fn handler, void *arg, char **err)
{
    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    srv->handler = handler;
    srv->handler_arg = arg;
    evhttp_set_gencb(srv->http, exchange_arrive_cb, srv);
    srv->bound = evhttp_bind_socket_with_handle(srv->http, host, (ev_uint16_t)port);
    if (srv->bound == NULL) {
        *err = xasprintf("listen: cannot listen on %s: %s", what, strerror(errno));
        return -1;
    }
    srv->listener = evhttp_bound_socket_get_listener(srv->bound);
    srv->accepting = 1;
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    srv->next = live_servers;
    live_servers = srv;
    srv->watch = event_new(srv->base, evconnlistener_get_fd(srv->listener), EV_READ | EV_PERSIST,
                           conn_watch_cb, srv);
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
    /* Only now: a SIGTERM while the cache opens (a long reconcile) still ends the process. */
    srv->sigterm = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
    srv->sigint = evsignal_new(srv->base, SIGINT, signal_cb, srv);
    evsignal_add(srv->sigterm, NULL);
    evsignal_add(srv->sigint, NULL);
    srv->sighup = evsignal_new(srv->base, SIGHUP, sighup_cb, srv);
    evsignal_add(srv->sighup, NULL);
    return 0;
}

int server_listen(struct server *srv, server_handler_fn handler, void *arg, char **err)
{
    char host[256];
    int port;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    if (config_parse_listen(srv->cfg->cfg_listen, host, sizeof(host), &port) == -1) {
        *err = xasprintf("listen: \"%s\" is not HOST:PORT", srv->cfg->cfg_listen);
        return -1;
    }
    return server_bind(srv, host, port, srv->cfg->cfg_listen, handler, arg, err);
}

int server_listen_at(struct server *srv, const char *host, int port, server_handler_fn handler,
                     void *arg, char **err)
{
    char what[300];

    snprintf(what, sizeof(what), "%s:%d", host, port);
    return server_bind(srv, host, port, what, handler, arg, err);
}

/*
 * The admin socket at <path>: a stale file from a process that died is removed, anything else
 * at the path is refused. bind, then chmod 0600, then listen: until listen nobody can
 * connect, so no client ever sees the socket with the umask's mode.
 */
static int admin_socket(const char *path, struct stat *made, char **err)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd = -1, probe = -1, rc = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) == -1) {
        *err = xasprintf("admin_socket: %s is longer than a socket path may be (%zu bytes)", path,
                         sizeof(sa.sun_path) - 1);
        goto out;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = xasprintf("admin_socket: %s exists and is not a socket", path);
            goto out;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe != -1 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            *err = xasprintf("admin_socket: another process is listening on %s", path);
            goto out;
        }
        if (unlink(path) == -1 && errno != ENOENT) {
            *err = xasprintf("admin_socket: cannot remove the stale %s: %s", path, strerror(errno));
            goto out;
        }
        log_event(LOG_INFO, "admin-socket-stale-removed", "path", path, NULL);
    } else if (errno != ENOENT) {
        *err = xasprintf("admin_socket: %s: %s", path, strerror(errno));
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        *err = xasprintf("admin_socket: socket: %s", strerror(errno));
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        *err = xasprintf("admin_socket: cannot bind %s: %s", path, strerror(errno));
        goto out;
    }
    /* Never through a symlink swapped in after the bind (glibc refuses one with
     * AT_SYMLINK_NOFOLLOW); then the lstat below must still find a socket. */
    if (fchmodat(AT_FDCWD, path, 0600, AT_SYMLINK_NOFOLLOW) == -1 || lstat(path, made) == -1 ||
        !S_ISSOCK(made->st_mode)) {
        *err = xasprintf("admin_socket: %s: %s", path, strerror(errno));
        (void)unlink(path);
        goto out;
    }
    if (listen(fd, 16) == -1) {
        *err = xasprintf("admin_socket: cannot listen on %s: %s", path, strerror(errno));
        (void)unlink(path);
        goto out;
    }
    rc = fd;
    fd = -1;
out:
    if (probe != -1)
        close(probe);
    if (fd != -1)
        close(fd);
    return rc;
}

int server_listen_admin(struct server *srv, const char *path, server_handler_fn handler, void *arg,
                        char **err)
{
    struct stat made;
    int fd;

    CHECK_OBJ_NOTNULL(srv, SERVER_MAGIC);
    if (srv->admin_http != NULL) {
        *err = xstrdup("admin_socket: already listening");
        return -1;
    }
    fd = admin_socket(path, &made, err);
    if (fd == -1)
        return -1;
    srv->admin_http = evhttp_new(srv->base);
    evhttp_set_allowed_methods(srv->admin_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(srv->admin_http, SERVER_MAX_HEADERS);
    evhttp_set_max_body_size(srv->admin_http, SERVER_MAX_BODY);
    evhttp_set_timeout_tv(srv->admin_http, &srv->idle);
    srv->admin_handler = handler;
    srv->admin_arg = arg;
    evhttp_set_gencb(srv->admin_http, exchange_admin_arrive_cb, srv);
    if (evhttp_accept_socket_with_handle(srv->admin_http, fd) == NULL) {
        *err = xasprintf("admin_socket: cannot accept on %s", path);
        close(fd);
        (void)unlink(path);
        evhttp_free(srv->admin_http);
        srv->admin_http = NULL;
        return -1;
    }
    srv->admin_path = xstrdup(path);
    srv->admin_dev = (uint64_t)made.st_dev;
    srv->admin_ino = (uint64_t)made.st_ino;
    log_event(LOG_INFO, "admin-listening", "path", path, NULL);
    return 0;
}

/* Close the admin socket and remove its file, when the file is still the one we made. */
static void admin_close(struct server *srv)
{
    struct stat st;

    if (srv->admin_http != NULL)
        evhttp_free(srv->admin_http);
    srv->admin_http = NULL;
    if (srv->admin_path != NULL && lstat(srv->admin_path, &st) == 0 &&
        (uint64_t)st.st_dev == srv->admin_dev && (uint64_t)st.st_ino == srv->admin_ino)
        (void)unlink(srv->admin_path);
    free(srv->admin_path);
    srv->admin_path = NULL;
}

int server_port(const struct server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (srv->bound == NULL ||
        getsockname(evhttp_bound_socket_get_fd(srv->bound), (struct sockaddr *)&ss, &len) == -1)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
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
              srv->cfg->cfg_data_dir, "max_connections", max, "max_connections_per_client", per,
              "version", PACKAGE_VERSION, NULL);
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
    srv->bound = NULL; /* evhttp_free freed it */
    admin_close(srv);
    srv->accepting = 0;
}

void server_destroy(struct server *srv)
{
    if (srv == NULL)
        return;
    server_close(srv);
    conn_teardown(srv);
    if (srv->backoff != NULL)
        event_free(srv->backoff);
    if (srv->sigterm != NULL)
        event_free(srv->sigterm);
    if (srv->sigint != NULL)
        event_free(srv->sigint);
    if (srv->sighup != NULL)
        event_free(srv->sighup);
    if (srv->deadline != NULL)
        event_free(srv->deadline);
    if (srv->base != NULL)
        event_base_free(srv->base);
    srv->magic = 0;
    free(srv);
}
