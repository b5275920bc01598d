/*
 * libcurl's multi interface on a libevent base: curl's socket callback becomes one libevent
 * event per socket and its timer callback one libevent timer, so no call blocks the loop and
 * no thread is made per request. Connections are reused by the multi handle's cache.
 */
#ifndef PROXY_EVCURL_H
#define PROXY_EVCURL_H

#include <curl/curl.h>

struct event_base;
struct evcurl;

struct evcurl_callbacks {
    void (*ec_turn)(void *arg); /* a socket or timer event is about to run libcurl */
    void (*ec_ran)(void *arg);  /* libcurl ran for that event and returned to the loop: handle
                                   the easy handles that finished (curl_multi_info_read) */
};

/* A multi handle driven by <base>; callbacks get <arg>. Caller frees with evcurl_destroy. */
struct evcurl *evcurl_create(struct event_base *base, const struct evcurl_callbacks *cbs,
                             void *arg);
/* Free the multi handle and its events; remove every easy handle first. Accepts NULL. */
void evcurl_destroy(struct evcurl *ec);
/* The multi handle, for curl_multi_add_handle, _remove_handle, _info_read and _setopt
 * (borrowed). */
CURLM *evcurl_multi(struct evcurl *ec);

#endif
