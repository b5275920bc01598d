/* The daemon's event loop: HTTP listener, signal handling, graceful stop. */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <stdint.h>

struct config;
struct evbuffer;
struct evhttp_request;
struct server;

struct event_base;
struct exchange;

/*
 * Create a server for <cfg> (borrowed; must outlive the server): its event loop and HTTP
 * front, not yet listening. Returns NULL with *err set (caller frees) when it cannot.
 */
struct server *server_create(const struct config *cfg, char **err);

/* The server's event loop, for the handler's own events. */
struct event_base *server_base(const struct server *srv);

/*
 * Every request the server does not refuse itself (503 while stopping) goes to <handler>
 * with <arg> and its exchange. The handler answers it now or later (see exchange.h).
 */
typedef void (*server_handler_fn)(void *arg, struct evhttp_request *req, struct exchange *x);

/* Set the handler and bind the listener. Returns -1 with *err set when it cannot listen. */
int server_listen(struct server *srv, server_handler_fn handler, void *arg, char **err);
/*
 * As server_listen, on <host>:<port> instead of the config's listen address; port 0 takes any
 * free port (tests), which server_port tells.
 */
int server_listen_at(struct server *srv, const char *host, int port, server_handler_fn handler,
                     void *arg, char **err);
/*
 * Listen on the Unix socket <path> (mode 0600) for the admin API: its requests go to
 * <handler> with <arg>, without the client connections' limits. A stale socket file is
 * replaced; a path that exists and is not a socket, or a socket another process listens on,
 * is refused. The file is removed at server_close. -1 with *err set when it cannot listen.
 */
int server_listen_admin(struct server *srv, const char *path, server_handler_fn handler, void *arg,
                        char **err);
/* The port the listener is bound to, or -1 when it is not listening. */
int server_port(const struct server *srv);

/*
 * Run the loop until SIGTERM/SIGINT: then stop accepting, let in-flight responses finish for
 * up to <drain_usec>, and return 0. Returns -1 on a fatal loop error.
 */
int server_run(struct server *srv, int64_t drain_usec);

/*
 * Close the listener and every connection: requests still waiting get their gone callbacks,
 * so the handler's state must still be alive. Then the handler may be freed, and last
 * server_destroy. Idempotent.
 */
void server_close(struct server *srv);

/* Undo server_create (closing first if need be); accepts NULL. */
void server_destroy(struct server *srv);

/*
 * Handlers that answer asynchronously mark the request in flight so a graceful stop waits
 * for it; each server_inflight_begin is paired with one server_inflight_end.
 */
void server_inflight_begin(struct server *srv);
void server_inflight_end(struct server *srv);

/*
 * Append the connection metrics (open, the cap, accept pauses, evictions, refusals, header
 * timeouts) to <b> in Prometheus text format. <b> stays the caller's.
 */
void server_metrics(const struct server *srv, struct evbuffer *b);

/*
 * On SIGHUP (once listening, and not while stopping) the loop calls <fn>(<arg>), between
 * callbacks. <arg> stays the caller's and must outlive the loop; NULL <fn> stops calling.
 */
void server_on_reload(struct server *srv, void (*fn)(void *arg), void *arg);

/* 1 once a stop was asked for: handlers refuse new work with 503. */
int server_stopping(const struct server *srv);

#endif
