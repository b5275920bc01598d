/*
 * Unit tests for proxy/api/: dispatch and the handlers, linked alone with the server, the
 * catalog, the fills and the upstream client, against an in-process upstream registry on
 * 127.0.0.1 that counts what it served. The api's clock is the test's: the tag rule and
 * stale-if-error are shown by moving it, never by sleeping.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "config_file.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define T0 ((int64_t)1764576000)
#define HOUR 3600
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"

/* ---- the upstream --------------------------------------------------------------------- */

static char manifest[1024], manifest_digest[80], blob_digest[80];
static const char blob[] = "the bytes of one layer";
static int upstream_down; /* answer 503 to everything */
static int served_head, served_get_manifest, served_get_blob, served_total;

static void sha256_hex(const char *data, size_t len, char *out, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    size_t p;

    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    p = (size_t)snprintf(out, size, "sha256:");
    for (unsigned i = 0; i < n && p + 2 < size; i++)
        p += (size_t)snprintf(out + p, size - p, "%02x", md[i]);
}

static void upstream_cb(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evbuffer_new();
    int head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    char path[256];

    (void)arg;
    served_total++;
    if (upstream_down) {
        evhttp_send_reply(req, 503, "Service Unavailable", out);
        evbuffer_free(out);
        return;
    }
    snprintf(path, sizeof(path), "/v2/library/alpine/blobs/%s", blob_digest);
    if (strcmp(uri, "/v2/library/alpine/manifests/latest") == 0 ||
        (strncmp(uri, "/v2/library/alpine/manifests/", 29) == 0 &&
         strcmp(uri + 29, manifest_digest) == 0)) {
        if (head)
            served_head++;
        else
            served_get_manifest++;
        evhttp_add_header(h, "Content-Type", MT_MANIFEST);
        evhttp_add_header(h, "Docker-Content-Digest", manifest_digest);
        evbuffer_add(out, manifest, strlen(manifest));
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(uri, path) == 0) {
        if (!head)
            served_get_blob++;
        evhttp_add_header(h, "Content-Type", "application/octet-stream");
        evbuffer_add(out, blob, strlen(blob));
        evhttp_send_reply(req, 200, "OK", out);
    } else {
        evhttp_send_reply(req, 404, "Not Found", out);
    }
    evbuffer_free(out);
}

/* ---- the proxy under test ------------------------------------------------------------- */

static int64_t now_s;
static int64_t test_clock(void)
{
    return now_s;
}

static char dir[64];
static struct config *cfg;
static struct server *srv;
static struct api *api;
static struct evhttp *up_http;
static int proxy_port;

static void setup(void)
{
    struct evhttp_bound_socket *bs;
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    char json[1024], *err = NULL;
    int up_port;

    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    snprintf(manifest, sizeof(manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"" MT_MANIFEST "\",\"config\":{\"mediaType\":"
             "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%064d\","
             "\"size\":2},\"layers\":[]}",
             0);
    sha256_hex(manifest, strlen(manifest), manifest_digest, sizeof(manifest_digest));
    sha256_hex(blob, strlen(blob), blob_digest, sizeof(blob_digest));
    upstream_down = 0;
    served_head = served_get_manifest = served_get_blob = served_total = 0;
    now_s = T0;
    snprintf(dir, sizeof(dir), "/tmp/test_api.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));

    /* The server first: its loop carries the upstream too. */
    snprintf(json, sizeof(json),
             "{\"listen\":\"127.0.0.1:5000\",\"data_dir\":\"%s\",\"min_free_space\":\"1MiB\","
             "\"rules\":[{\"prefix\":\"hub\",\"upstream\":\"http://127.0.0.1:1\","
             "\"refresh_interval\":\"1h\",\"stale_if_error\":\"2h\"}]}",
             dir);
    cfg = config_load_string(json, &err);
    cr_assert_not_null(cfg, "config: %s", err ? err : "");
    srv = server_create(cfg, &err);
    cr_assert_not_null(srv, "server_create: %s", err ? err : "");
    up_http = evhttp_new(server_base(srv));
    bs = evhttp_bind_socket_with_handle(up_http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &len), 0);
    up_port = ntohs(a.sin_port);
    evhttp_set_allowed_methods(up_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(up_http, upstream_cb, NULL);
    free(cfg->cfg_rules[0].rule_upstream);
    cfg->cfg_rules[0].rule_upstream = xasprintf("http://127.0.0.1:%d", up_port);

    api = api_create(server_base(srv), cfg, srv, &err);
    cr_assert_not_null(api, "api_create: %s", err ? err : "");
    api_set_clock(api, test_clock);
    /* Port 0: the kernel picks a free one (the config's listen is not used). */
    cr_assert_eq(server_listen_at(srv, "127.0.0.1", 0, api_handle, api, &err), 0, "listen: %s",
                 err ? err : "");
    proxy_port = server_port(srv);
}

static void teardown(void)
{
    char cmd[128];

    server_close(srv);
    api_destroy(api);
    evhttp_free(up_http);
    server_destroy(srv);
    config_free(cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- a client ------------------------------------------------------------------------- */

struct reply {
    int done, status;
    char body[4096];
    size_t len;
    char warning[256], digest[128], clen[32];
};

static void reply_cb(struct evhttp_request *req, void *arg)
{
    struct reply *r = arg;

    r->done = 1;
    if (req == NULL)
        return;
    r->status = evhttp_request_get_response_code(req);
    {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *v;
        r->len = evbuffer_remove(b, r->body, sizeof(r->body) - 1);
        r->body[r->len] = '\0';
        if ((v = evhttp_find_header(h, "Warning")) != NULL)
            str_copy(r->warning, sizeof(r->warning), v);
        if ((v = evhttp_find_header(h, "Docker-Content-Digest")) != NULL)
            str_copy(r->digest, sizeof(r->digest), v);
        if ((v = evhttp_find_header(h, "Content-Length")) != NULL)
            str_copy(r->clen, sizeof(r->clen), v);
    }
    event_base_loopbreak(server_base(srv));
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(server_base(srv));
}

/* <method> <path> through the proxy; the loop runs until the answer, at most 10 s. */
static struct reply ask(enum evhttp_cmd_type method, const char *path)
{
    static struct reply r;
    struct event_base *base = server_base(srv);
    struct evhttp_connection *c =
        evhttp_connection_base_new(base, NULL, "127.0.0.1", (ev_uint16_t)proxy_port);
    struct evhttp_request *req;
    struct event *t = evtimer_new(base, timeout_cb, NULL);
    struct timeval tv = {10, 0};

    memset(&r, 0, sizeof(r));
    req = evhttp_request_new(reply_cb, &r);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Accept", MT_MANIFEST);
    cr_assert_eq(evhttp_make_request(c, req, method, path), 0);
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    event_free(t);
    evhttp_connection_free(c);
    cr_assert(r.done, "no answer to %s within 10 s", path);
    return r;
}

/*
 * Run the loop until stored <digest> has landed in the store (manifests are committed on the
 * fills' commit thread, fsync and all): 10 ms turns, at most 5 s.
 */
static void landed(const char *digest)
{
    char path[256];
    struct timeval tv = {0, 10000};

    snprintf(path, sizeof(path), "%s/blobs/sha256/%.2s/%s", dir, digest + 7, digest + 7);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++) {
        event_base_loopexit(server_base(srv), &tv);
        event_base_dispatch(server_base(srv));
    }
    cr_assert_eq(access(path, F_OK), 0, "%s never landed", path);
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 60);

Test(api, dispatch_answers_what_needs_no_upstream)
{
    struct reply r;

    r = ask(EVHTTP_REQ_GET, "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok\n");
    r = ask(EVHTTP_REQ_GET, "/v2/");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{}");
    r = ask(EVHTTP_REQ_DELETE, "/v2/hub/library/alpine/manifests/latest");
    cr_assert_eq(r.status, 405);
    cr_assert_not_null(strstr(r.body, "\"UNSUPPORTED\""), "%s", r.body);
    r = ask(EVHTTP_REQ_GET, "/v3/");
    cr_assert_eq(r.status, 404);
    r = ask(EVHTTP_REQ_GET, "/v2/other/library/alpine/manifests/latest");
    cr_assert_eq(r.status, 404);
    cr_assert_not_null(strstr(r.body, "\"NAME_UNKNOWN\""), "%s", r.body);
    r = ask(EVHTTP_REQ_GET, "/v2/hub/Library/alpine/manifests/latest");
    cr_assert_eq(r.status, 400);
    cr_assert_not_null(strstr(r.body, "\"NAME_INVALID\""), "%s", r.body);
    r = ask(EVHTTP_REQ_GET, "/v2/hub/library/alpine/manifests/latest/extra");
    cr_assert_geq(r.status, 400);
    r = ask(EVHTTP_REQ_GET, "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "ecr_ptc_requests_total{route=\"base\"} 1"));
    cr_assert_eq(served_total, 0, "none of these asked upstream");
}

Test(api, the_tag_rule_follows_the_clock)
{
    const char *tag = "/v2/hub/library/alpine/manifests/latest";
    struct reply r;
    int before;

    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, manifest);
    cr_assert_str_eq(r.digest, manifest_digest);
    cr_assert_eq(served_get_manifest, 1, "the manifest fetched once");
    landed(manifest_digest);
    before = served_total;

    now_s = T0 + HOUR - 1;
    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, manifest);
    cr_assert_eq(served_total, before, "inside refresh_interval: upstream is not asked");

    now_s = T0 + HOUR + 1;
    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, manifest);
    cr_assert_eq(served_total, before + 1, "past it: one request upstream");
    cr_assert_eq(served_head, 2, "... a HEAD (the first pull's and this one)");
    cr_assert_eq(served_get_manifest, 1, "... and no GET: the digest did not move");

    now_s = T0 + 2 * HOUR;
    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(served_total, before + 1, "the check restarted the interval");
}

Test(api, stale_if_error_follows_the_clock)
{
    const char *tag = "/v2/hub/library/alpine/manifests/latest";
    struct reply r;

    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 200);
    landed(manifest_digest);
    upstream_down = 1;

    now_s = T0 + HOUR + 1;
    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 200, "upstream 503 inside stale_if_error: the cached manifest");
    cr_assert_str_eq(r.body, manifest);
    cr_assert_not_null(strstr(r.warning, "299 - "), "with a Warning (%s)", r.warning);

    now_s = T0 + 2 * HOUR + 1;
    r = ask(EVHTTP_REQ_GET, tag);
    cr_assert_eq(r.status, 502, "past stale_if_error: upstream's failure (%d)", r.status);
    cr_assert_str_eq(r.warning, "");
}

Test(api, a_blob_is_fetched_once_then_served_from_the_store)
{
    char path[256];
    struct reply r;

    snprintf(path, sizeof(path), "/v2/hub/library/alpine/blobs/%s", blob_digest);
    r = ask(EVHTTP_REQ_GET, path);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, blob);
    r = ask(EVHTTP_REQ_GET, path);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, blob);
    r = ask(EVHTTP_REQ_HEAD, path);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(atoi(r.clen), (int)strlen(blob));
    cr_assert_eq(served_get_blob, 1, "one upstream GET for three answers");

    upstream_down = 1;
    r = ask(EVHTTP_REQ_GET, path);
    cr_assert_eq(r.status, 200, "a stored blob needs no upstream (%d %s)", r.status, r.body);
    cr_assert_str_eq(r.body, blob);
}

Test(api, a_digest_stored_for_one_repository_is_confirmed_for_another)
{
    char path[256];
    struct reply r;
    int total;

    snprintf(path, sizeof(path), "/v2/hub/library/alpine/blobs/%s", blob_digest);
    r = ask(EVHTTP_REQ_GET, path);
    cr_assert_eq(r.status, 200);
    total = served_total;
    snprintf(path, sizeof(path), "/v2/hub/someone/else/blobs/%s", blob_digest);
    r = ask(EVHTTP_REQ_GET, path);
    cr_assert_eq(r.status, 404, "upstream does not have it there: not served (%d)", r.status);
    cr_assert_not_null(strstr(r.body, "BLOB_UNKNOWN"), "%s", r.body);
    cr_assert_eq(served_total, total + 1, "one confirmation HEAD, no GET");
    cr_assert_eq(served_get_blob, 1);
}
