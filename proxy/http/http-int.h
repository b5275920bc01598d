/*
 * Inside proxy/http/ only: the server's, connections' and episodes' records, and the calls
 * server.c, conn.c and exchange.c make of one another. No other module includes this (unit
 * tests may, to look inside).
 */
#ifndef HTTP_INT_H
#define HTTP_INT_H

#include <event2/util.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "server.h"

struct bufferevent;
struct config;
struct evbuffer_cb_entry;
struct event;
struct evconnlistener;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;
struct exchange;

#define SERVER_MAGIC 0x53525652u  /* "SRVR" */
#define CONN_MAGIC 0x434f4e4eu    /* "CONN" */
#define EPISODE_MAGIC 0x45504953u /* "EPIS" */
#define SERVER_CLIENT_BUCKETS 1024
#define ACCEPT_BACKOFF_MIN_MS 50 /* an accept error pauses accepting this long at first */

/* Why accepting stopped, or what is being done to stay under max_connections. */
enum episode_kind { EP_MAX_CONNECTIONS = 0, EP_EMFILE, EP_ACCEPT_ERROR, EP_EVICT, EP_NKINDS };

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
    struct bufferevent *bev;         /* evhttp's; we hold a reference only while CONN_NEW */
    struct evhttp_connection *evcon; /* NULL while CONN_NEW */
    evutil_socket_t fd;
    enum conn_state state;
    int used; /* answered a request: idle now means keep-alive */
    int over; /* accepted past max_connections: refuse it */
    int deadline_on;
    struct event *deadline; /* the header deadline */
    struct evbuffer_cb_entry *in_cb, *out_cb;
    struct client *client;
    struct exchange *x;     /* the request being answered, or NULL */
    TAILQ_ENTRY(conn) link; /* srv->pending (CONN_NEW) or srv->idlers (CONN_IDLE) */
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
    struct timeval idle;             /* a client silent this long, or not reading, is dropped */
    struct timeval header_tv;        /* from accept or a request's first byte to the request read */
    const struct timeval *header_common;
    server_handler_fn handler;
    void *handler_arg;
    int closed; /* server_close ran */
    struct event *sigterm;
    struct event *sigint;
    struct event *sighup;
    void (*reload_fn)(void *arg); /* server_on_reload's */
    void *reload_arg;
    struct event *deadline;
    int64_t inflight;
    int stopping;
    int64_t drain_usec;

    int64_t max_conns;   /* max_connections in force */
    int64_t per_client;  /* max_connections_per_client; 0: no cap */
    int64_t nconns;      /* client connections open, CONN_NEW included */
    struct conn **by_fd; /* adopted connections by socket */
    size_t nby_fd;
    struct conn_list pending; /* CONN_NEW, oldest first */
    struct conn_list idlers;  /* CONN_IDLE, longest idle first */
    struct event *adopt;      /* adopts srv->pending once evhttp has set them up */
    struct client *clients[SERVER_CLIENT_BUCKETS];
    struct event *backoff; /* re-enables accepting after an accept error */
    int backoff_ms;
    struct episode ep[EP_NKINDS];
    struct ratelog rl_timeout, rl_refused;
    uint64_t m_paused[EP_EVICT]; /* pauses by reason */
    uint64_t m_evicted;
    uint64_t m_refused_per_client;
    uint64_t m_refused_max;
    struct event *watch; /* the listening socket, read while paused at the cap */
    int watching;
    uint64_t m_header_timeouts;
    struct server *next; /* live_servers */

    /* The admin socket (server_listen_admin): its own evhttp, no connection records. */
    struct evhttp *admin_http;
    char *admin_path;              /* the socket file this server made; unlinked at close */
    uint64_t admin_dev, admin_ino; /* that file's identity: unlink only our own */
    server_handler_fn admin_handler;
    void *admin_arg;
};

/* ---- server.c: the listener ---------------------------------------------------------------- */

/* Accepting pauses for reason <k> (<error> may be NULL), or that reason is over. */
void accept_pause(struct server *srv, enum episode_kind k, const char *error);
void accept_resume(struct server *srv, enum episode_kind k);
/* A graceful stop is under way and nothing is in flight: end the loop. */
void server_drain_check(struct server *srv);

/* ---- conn.c: connection records, limits, episodes -------------------------------------------- */

/*
 * Set up what the connection records need on <srv> (its loop made): max_connections and the
 * per-client cap from <cfg> and RLIMIT_NOFILE, the header deadline, the adopt event, the
 * episodes' timers, and evhttp's bufferevent callback. conn_teardown frees those; the records
 * themselves go as their connections close (server_close).
 */
void conn_setup(struct server *srv, const struct config *cfg);
void conn_teardown(struct server *srv);
/* Undo everything <c> holds and free it; the connection itself is evhttp's to free. */
void conn_release(struct conn *c);
/* The listening socket is readable while accepting is paused at the cap (srv->watch). */
void conn_watch_cb(evutil_socket_t fd, short what, void *arg);
/*
 * A request has been read on <evcon> (may be NULL): its connection record, if it has one, is
 * busy with <x> until conn_exchange_end. Returns that record or NULL.
 */
struct conn *conn_exchange_begin(struct server *srv, struct evhttp_connection *evcon,
                                 struct exchange *x);
/* <c>'s response is written: uncork when <corked>, and wait for the next request. */
void conn_exchange_end(struct conn *c, int corked);
/* The condition <k> has just happened (once more), or is over for now; <error> may be NULL. */
void episode_begin(struct server *srv, enum episode_kind k, const char *error);
void episode_end_soon(struct server *srv, enum episode_kind k);

/* ---- exchange.c: one request ----------------------------------------------------------------- */

/* evhttp's request callback (<arg> the server): make the exchange, call the handler. */
void exchange_arrive_cb(struct evhttp_request *req, void *arg);
/* The same for the admin socket's requests: no connection record, the admin handler. */
void exchange_admin_arrive_cb(struct evhttp_request *req, void *arg);
/* <x>'s connection is going away before its response was written: log, tell the handler. */
void exchange_gone(struct exchange *x);
/* Bytes of <x>'s response were queued: the first carry its status line. */
void exchange_note_sent(struct exchange *x);
/* TCP_CORK on (1) or off (0) for <evcon>'s socket. */
void http_cork(struct evhttp_connection *evcon, int on);

#endif
