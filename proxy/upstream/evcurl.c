/* libcurl multi ↔ libevent: socket and timer callbacks into events, events into
 * curl_multi_socket_action. */
#include "config.h"

#include "evcurl.h"

#include <event2/event.h>
#include <stdlib.h>

#include "util.h"

#define EVCURL_MAGIC 0x45564355u /* "EVCU" */

struct evcurl {
    unsigned magic;
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct evcurl_callbacks cbs;
    void *arg;
};

/* Run libcurl for <fd> (or its timeout) with <action>, between the two callbacks. */
static void evcurl_run(struct evcurl *ec, curl_socket_t fd, int action)
{
    int running = 0;

    ec->cbs.ec_turn(ec->arg);
    curl_multi_socket_action(ec->multi, fd, action, &running);
    ec->cbs.ec_ran(ec->arg);
}

static void socket_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct evcurl *ec;
    int action =
        ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    CAST_OBJ_NOTNULL(ec, arg, EVCURL_MAGIC);
    evcurl_run(ec, fd, action);
}

static void timer_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct evcurl *ec;

    (void)fd;
    (void)kind;
    CAST_OBJ_NOTNULL(ec, arg, EVCURL_MAGIC);
    evcurl_run(ec, CURL_SOCKET_TIMEOUT, 0);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct evcurl *ec;
    struct event *ev = socketp;
    short kind;

    (void)e;
    CAST_OBJ_NOTNULL(ec, userp, EVCURL_MAGIC);
    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_free(ev);
            curl_multi_assign(ec->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (ev != NULL) {
        event_del(ev);
        event_assign(ev, ec->base, s, kind, socket_event_cb, ec);
    } else {
        ev = event_new(ec->base, s, kind, socket_event_cb, ec);
        curl_multi_assign(ec->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct evcurl *ec;
    struct timeval tv;

    (void)m;
    CAST_OBJ_NOTNULL(ec, userp, EVCURL_MAGIC);
    if (timeout_ms < 0) {
        evtimer_del(ec->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(ec->timer, &tv);
    return 0;
}

struct evcurl *evcurl_create(struct event_base *base, const struct evcurl_callbacks *cbs, void *arg)
{
    struct evcurl *ec = xcalloc(1, sizeof(*ec));

    ec->magic = EVCURL_MAGIC;
    ec->base = base;
    ec->cbs = *cbs;
    ec->arg = arg;
    ec->multi = curl_multi_init();
    ec->timer = evtimer_new(base, timer_event_cb, ec);
    curl_multi_setopt(ec->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(ec->multi, CURLMOPT_SOCKETDATA, ec);
    curl_multi_setopt(ec->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(ec->multi, CURLMOPT_TIMERDATA, ec);
    return ec;
}

void evcurl_destroy(struct evcurl *ec)
{
    if (ec == NULL)
        return;
    CHECK_OBJ_NOTNULL(ec, EVCURL_MAGIC);
    curl_multi_cleanup(ec->multi);
    event_free(ec->timer);
    ec->magic = 0;
    free(ec);
}

CURLM *evcurl_multi(struct evcurl *ec)
{
    CHECK_OBJ_NOTNULL(ec, EVCURL_MAGIC);
    return ec->multi;
}
