/* The OCI Distribution API handlers: routes requests, answers errors in the spec's JSON. */
#ifndef API_API_H
#define API_API_H

#include <stdint.h>

#include "oci.h"

struct api;
struct config;
struct event_base;
struct evhttp_request;
struct server;

/* Create the handlers for <cfg> on <base>; both borrowed. Returns NULL with *err set. */
struct api *api_create(struct event_base *base, const struct config *cfg, struct server *srv,
                       char **err);

struct exchange;

/* Every request lands here (a server_handler_fn: <api> is the struct api) with the server's
 * exchange <x> for it. */
void api_handle(void *api, struct evhttp_request *req, struct exchange *x);

/* The admin socket's requests (a server_handler_fn for server_listen_admin: <api> is the
 * struct api): the JSON admin API under /admin/v1/ (admin.c). */
void api_admin_handle(void *api, struct evhttp_request *req, struct exchange *x);

/*
 * Replace the api's wall clock (util_now: seconds since the epoch) with <clock>: the tag rule,
 * stale-if-error and every time the api writes follow it. For tests, which move a clock
 * instead of sleeping.
 */
void api_set_clock(struct api *api, int64_t (*clock)(void));

/*
 * A reload: <cfg> (borrowed, as api_create's) becomes the configuration in force. Its rules,
 * durations, budget, lifecycle policies and credentials apply to requests that arrive from now
 * on; requests and fills in flight finish with the configuration they started with, which the
 * caller keeps alive until api_destroy, as the api keeps what it derived from it. The caller
 * has compared the two (config_diff): the listener, the data directory and the ECR tier stay
 * as they were created. Counts ecr_ptc_config_reloads_total{result="ok"}.
 */
void api_reload(struct api *api, const struct config *cfg);
/* A reload was refused (the file did not parse): counts {result="failed"}. */
void api_reload_failed(struct api *api);

void api_destroy(struct api *api);

#endif
