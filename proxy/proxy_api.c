/* The OCI Distribution API handlers: /v2/, /healthz, and the spec's error JSON for the rest. */
#include "config.h"

#include "proxy_api.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_config.h"
#include "proxy_log.h"
#include "proxy_server.h"
#include "proxy_util.h"

#define API_MAGIC 0x41504921u /* "API!" */

struct api {
    unsigned magic;
    struct event_base *base;
    const struct config *cfg;
    struct server *srv;
};

static void set_common_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Docker-Distribution-API-Version", "registry/2.0");
}

/* Send <body> of <len> bytes with <status>; for HEAD only the headers go out. */
static void send_body(struct evhttp_request *req, int status, const char *reason,
                      const char *content_type, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();
    char clen[32];

    set_common_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    snprintf(clen, sizeof(clen), "%zu", len);
    evhttp_add_header(h, "Content-Length", clen);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(buf, body, len);
    evhttp_send_reply(req, status, reason, buf);
    evbuffer_free(buf);
}

static const char *reason_for(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

void api_send_error(struct evhttp_request *req, enum oci_error e, const char *message,
                    const char *detail)
{
    char *body = oci_error_body(e, message, detail);
    int status = oci_error_status(e);

    send_body(req, status, reason_for(status), "application/json", body, strlen(body));
    free(body);
}

/* A path with the query string cut off; decoded nowhere: the API's paths need no decoding. */
static void request_path(struct evhttp_request *req, char *out, size_t size)
{
    const char *uri = evhttp_request_get_uri(req);
    size_t n = strcspn(uri, "?#");

    if (n >= size)
        n = size - 1;
    memcpy(out, uri, n);
    out[n] = '\0';
}

void api_handle(struct evhttp_request *req, void *arg)
{
    struct api *api = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char path[2048];

    if (api->magic != API_MAGIC)
        abort();
    request_path(req, path, sizeof(path));
    if (strcmp(path, "/healthz") == 0) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            api_send_error(req, OCI_ERR_METHOD, "only GET and HEAD", NULL);
            return;
        }
        send_body(req, 200, "OK", "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    if (strncmp(path, "/v2", 3) != 0 || (path[3] != '\0' && path[3] != '/')) {
        api_send_error(req, OCI_ERR_NOT_FOUND, "not an OCI distribution API path",
                       "the API lives under /v2/");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        api_send_error(req, OCI_ERR_UNSUPPORTED,
                       "this is a pull-through cache: only GET and HEAD are supported", NULL);
        return;
    }
    if (strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0) {
        send_body(req, 200, "OK", "application/json", "{}", 2);
        return;
    }
    api_send_error(req, OCI_ERR_NOT_FOUND, "unknown API path", NULL);
}

struct api *api_create(struct event_base *base, const struct config *cfg, struct server *srv,
                       char **err)
{
    struct api *api = xcalloc(1, sizeof(*api));

    *err = NULL;
    api->magic = API_MAGIC;
    api->base = base;
    api->cfg = cfg;
    api->srv = srv;
    return api;
}

void api_destroy(struct api *api)
{
    if (api == NULL)
        return;
    api->magic = 0;
    free(api);
}
