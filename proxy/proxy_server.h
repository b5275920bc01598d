/* The daemon's event loop: HTTP listener, signal handling, graceful stop. */
#ifndef PROXY_SERVER_H
#define PROXY_SERVER_H

#include <stdint.h>

struct config;
struct evbuffer;
struct evhttp_request;
struct server;

/*
 * Create a server for <cfg> (borrowed; must outlive the server), bind its listener and open
 * its data directory. Returns NULL with *err set (caller frees) when it cannot start.
 */
struct server *server_create(const struct config *cfg, char **err);

/*
 * Run the loop until SIGTERM/SIGINT: then stop accepting, let in-flight responses finish for
 * up to <drain_usec>, and return 0. Returns -1 on a fatal loop error.
 */
int server_run(struct server *srv, int64_t drain_usec);

/* Undo server_create; accepts NULL. */
void server_destroy(struct server *srv);

/*
 * Handlers that answer asynchronously mark the request in flight so a graceful stop waits
 * for it; each server_inflight_begin is paired with one server_inflight_end.
 */
void server_inflight_begin(struct server *srv);
void server_inflight_end(struct server *srv);

/*
 * One client request from arrival until its response is written or its connection dies.
 * A handler that answers later registers <cb> to learn that the client went away first: the
 * request then usually has no connection, and the handler must still end it once with
 * evhttp_send_reply_end() (which frees it); when it still has one (the server itself is
 * freeing the connection), the connection frees it. Either way the exchange is gone.
 */
struct exchange;
void exchange_on_gone(struct exchange *x, void (*cb)(void *arg), void *arg);
/*
 * A large body follows: hold partial TCP segments (TCP_CORK) until the response completes, so
 * sendfile's pieces leave as full segments (nginx's tcp_nopush). On loopback this moved a warm
 * 1 GiB GET from 0.79x to 0.99x nginx. Whatever is still held goes when the response ends.
 */
void exchange_cork(struct exchange *x);

/*
 * Append the connection metrics (open, the cap, accept pauses, evictions, refusals, header
 * timeouts) to <b> in Prometheus text format. <b> stays the caller's.
 */
void server_metrics(const struct server *srv, struct evbuffer *b);

/* 1 once a stop was asked for: handlers refuse new work with 503. */
int server_stopping(const struct server *srv);

#endif
