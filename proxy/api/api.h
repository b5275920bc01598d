/* The OCI Distribution API handlers: routes requests, answers errors in the spec's JSON. */
#ifndef PROXY_API_H
#define PROXY_API_H

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

/* Every request lands here (a server_handler_fn; <api> is the struct api), with the server's exchange record <x> for it. */
void api_handle(void *api, struct evhttp_request *req, struct exchange *x);

void api_destroy(struct api *api);

#endif
