/*
 * The ECR API client: JSON 1.1 POSTs signed with SigV4 on every attempt (ecr_api.h).
 */
#include "config.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "ecr_api.h"
#include "log.h"
#include "sigv4.h"
#include "transport.h"
#include "util.h"

#define ECR_API_MAGIC 0x45415049u  /* "EAPI" */
#define ECR_CALL_MAGIC 0x4543414cu /* "ECAL" */
#define ECR_API_MAX_BODY (4 * 1024 * 1024)
#define ECR_API_THROTTLE_BACKOFF_MS 400

struct ecr_api {
    unsigned magic;
    struct event_base *base;
    struct transport *tp;
    struct creds *cr;
    int64_t (*clock)(void);
    char *url;  /* the endpoint, as given */
    char *host; /* the Host header libcurl sends: host, or host:port for a port not the
                   scheme's default */
    char *path; /* the canonical path: the endpoint's, or "/" */
    char region[64];
    struct ecr_call *calls;
    struct ecr_api_stats stats;
};

struct ecr_call {
    unsigned magic;
    struct ecr_api *api;
    struct ecr_call *next;
    char op[96];
    char *body;
    size_t body_len;
    char payload_hash[SIGV4_HEX_LEN + 1];
    ecr_api_fn cb;
    void *arg;
    struct transport_req *req;
    struct event *timer; /* the next attempt after a throttle, or the deferred callback */
    int throttles;
    /* The result, when it is reported from the timer (a call that could not start). */
    int pending_fail;
    char fail_msg[256];
};

void ecr_api_error_type(const char *raw, char *out, size_t size)
{
    const char *p = raw, *hash = strchr(raw, '#');
    size_t n;

    if (hash != NULL)
        p = hash + 1;
    n = strcspn(p, ":");
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Split <url> into the Host header libcurl will send and the path. -1 when no http(s) URL. */
static int split_endpoint(const char *url, char **host, char **path)
{
    const char *p, *slash;
    int https;
    size_t hl;

    if (strncmp(url, "https://", 8) == 0) {
        https = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        https = 0;
        p = url + 7;
    } else {
        return -1;
    }
    slash = strchr(p, '/');
    hl = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || memchr(p, '@', hl) != NULL || memchr(p, '?', hl) != NULL)
        return -1;
    *host = xstrndup(p, hl);
    /* libcurl leaves the scheme's default port out of Host. */
    {
        const char *def = https ? ":443" : ":80";
        size_t dl = strlen(def);
        if (hl > dl && strcmp(*host + hl - dl, def) == 0 && (*host)[hl - dl - 1] != ':')
            (*host)[hl - dl] = '\0';
    }
    *path = xstrdup(slash != NULL && slash[1] != '\0' ? slash : "/");
    return 0;
}

struct ecr_api *ecr_api_create(struct event_base *base, struct transport *tp, struct creds *cr,
                               const char *endpoint, const char *region, int64_t (*clock)(void),
                               char **err)
{
    struct ecr_api *a = xcalloc(1, sizeof(*a));

    a->magic = ECR_API_MAGIC;
    a->base = base;
    a->tp = tp;
    a->cr = cr;
    a->clock = clock != NULL ? clock : util_now;
    if (split_endpoint(endpoint, &a->host, &a->path) == -1) {
        *err = xasprintf("the ECR endpoint is no http(s) URL: %s", endpoint);
        free(a);
        return NULL;
    }
    a->url = xstrdup(endpoint);
    str_copy(a->region, sizeof(a->region), region);
    return a;
}

static void call_free(struct ecr_call *c)
{
    struct ecr_call **pp;

    for (pp = &c->api->calls; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->timer != NULL)
        event_free(c->timer);
    free(c->body);
    c->magic = 0;
    free(c);
}

void ecr_call_cancel(struct ecr_call *c)
{
    if (c == NULL)
        return;
    CHECK_OBJ_NOTNULL(c, ECR_CALL_MAGIC);
    if (c->req != NULL)
        transport_cancel(c->req);
    call_free(c);
}

void ecr_api_destroy(struct ecr_api *a)
{
    if (a == NULL)
        return;
    CHECK_OBJ_NOTNULL(a, ECR_API_MAGIC);
    while (a->calls != NULL)
        ecr_call_cancel(a->calls);
    free(a->url);
    free(a->host);
    free(a->path);
    a->magic = 0;
    free(a);
}

void ecr_api_get_stats(const struct ecr_api *a, struct ecr_api_stats *out)
{
    *out = a->stats;
}

/* Sign this attempt with the credentials held now. */
static int call_attempt(void *arg, int attempt, struct transport_headers *h)
{
    struct ecr_call *c;
    struct ecr_api *a;
    struct aws_credentials ac;
    struct sigv4_header hdrs[3];
    char target[160];
    struct sigv4_request rq;
    struct sigv4_credentials cr;
    struct sigv4_scope sc;
    struct sigv4_signed sg;
    char *err = NULL;
    int rc = -1;

    CAST_OBJ_NOTNULL(c, arg, ECR_CALL_MAGIC);
    (void)attempt;
    a = c->api;
    memset(&sg, 0, sizeof(sg));
    if (creds_get(a->cr, &ac) != 1) {
        a->stats.as_unsigned++;
        str_copy(c->fail_msg, sizeof(c->fail_msg), "no AWS credentials are held");
        return -1;
    }
    snprintf(target, sizeof(target), "%s%s", ECR_API_TARGET_PREFIX, c->op);
    hdrs[0] = (struct sigv4_header){"Host", a->host};
    hdrs[1] = (struct sigv4_header){"Content-Type", "application/x-amz-json-1.1"};
    hdrs[2] = (struct sigv4_header){"X-Amz-Target", target};
    memset(&rq, 0, sizeof(rq));
    rq.sr_method = "POST";
    rq.sr_path = a->path;
    rq.sr_headers = hdrs;
    rq.sr_nheaders = 3;
    rq.sr_payload_hash = c->payload_hash;
    cr = (struct sigv4_credentials){ac.ac_access_key, ac.ac_secret, ac.ac_token, NULL};
    sc = (struct sigv4_scope){a->region, "ecr", NULL, (time_t)a->clock()};
    if (sigv4_sign(&rq, &cr, &sc, &sg, &err) == 0) {
        transport_headers_add(h, "Authorization", sg.sg_authorization);
        for (size_t i = 0; i < sg.sg_nadded; i++)
            transport_headers_add(h, sg.sg_added[i].sh_name, sg.sg_added[i].sh_value);
        rc = 0;
    } else {
        snprintf(c->fail_msg, sizeof(c->fail_msg), "signing failed: %s", err);
        free(err);
    }
    sigv4_signed_free(&sg);
    explicit_bzero(&ac, sizeof(ac));
    return rc;
}

static void call_send(struct ecr_call *c);

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ecr_call *c;

    CAST_OBJ_NOTNULL(c, arg, ECR_CALL_MAGIC);
    (void)fd;
    (void)what;
    call_send(c);
}

/* Report <r> and free the call. */
static void call_finish(struct ecr_call *c, const struct ecr_api_result *r)
{
    if (!r->ok)
        c->api->stats.as_failed++;
    c->cb(c->arg, r);
    call_free(c);
}

static void call_done(void *arg, const struct transport_outcome *o)
{
    struct ecr_call *c;
    struct ecr_api_result r;
    json_t *body = NULL;
    char type[160] = "";
    const char *msg = "";

    CAST_OBJ_NOTNULL(c, arg, ECR_CALL_MAGIC);
    c->req = NULL;
    memset(&r, 0, sizeof(r));
    r.status = o->to_resp->ur_status;
    if (o->to_body_len > 0)
        body = json_loadb(o->to_body, o->to_body_len, 0, NULL);
    if (o->to_resp->ur_amzn_error_type[0] != '\0')
        ecr_api_error_type(o->to_resp->ur_amzn_error_type, type, sizeof(type));
    if (json_is_object(body)) {
        const char *t = json_string_value(json_object_get(body, "__type"));
        const char *m = json_string_value(json_object_get(body, "message"));
        if (m == NULL)
            m = json_string_value(json_object_get(body, "Message"));
        if (type[0] == '\0' && t != NULL)
            ecr_api_error_type(t, type, sizeof(type));
        if (m != NULL)
            msg = m;
    }
    if (o->to_res == UPSTREAM_OK && json_is_object(body)) {
        r.ok = 1;
        type[0] = '\0';
        msg = "";
    } else if (o->to_res == UPSTREAM_OK) {
        msg = "the ECR API answered no JSON object";
    } else if (o->to_res == UPSTREAM_ABORTED && c->fail_msg[0] != '\0') {
        msg = c->fail_msg;
    } else if (o->to_res != UPSTREAM_HTTP) {
        msg = o->to_err;
    } else if (strcmp(type, "ThrottlingException") == 0) {
        c->api->stats.as_throttled++;
        if (c->throttles < ECR_API_MAX_THROTTLE_RETRIES) {
            struct timeval tv;
            int64_t ms = (int64_t)ECR_API_THROTTLE_BACKOFF_MS << c->throttles;
            ms += random() % (ms / 2 + 1); /* jitter: appliances throttled together spread */
            c->throttles++;
            tv.tv_sec = ms / 1000;
            tv.tv_usec = (ms % 1000) * 1000;
            json_decref(body);
            evtimer_add(c->timer, &tv);
            return;
        }
    }
    r.type = type;
    r.message = msg;
    r.body = body;
    call_finish(c, &r);
    json_decref(body);
}

static void call_send(struct ecr_call *c)
{
    struct ecr_api *a = c->api;
    struct transport_request rq;
    char target[160];
    const char *headers[3];
    static const struct transport_callbacks cbs = {call_attempt, NULL, NULL, call_done};

    c->fail_msg[0] = '\0';
    snprintf(target, sizeof(target), "X-Amz-Target: %s%s", ECR_API_TARGET_PREFIX, c->op);
    headers[0] = "Content-Type: application/x-amz-json-1.1";
    headers[1] = target;
    headers[2] = NULL;
    memset(&rq, 0, sizeof(rq));
    rq.tr_method = TRANSPORT_POST;
    rq.tr_url = a->url;
    rq.tr_headers = headers;
    rq.tr_body_kind = TRANSPORT_BODY_MEMORY;
    rq.tr_body = c->body;
    rq.tr_body_len = c->body_len;
    rq.tr_body_fd = -1;
    rq.tr_proxy = NULL;      /* the operator's egress proxy, as for registries */
    rq.tr_check_address = 0; /* a VPC endpoint has a private address */
    rq.tr_max_retries = 3;
    rq.tr_retry_status = 1;
    rq.tr_max_body = ECR_API_MAX_BODY;
    rq.tr_buffer_max = ECR_API_MAX_BODY;
    c->req = transport_start(a->tp, &rq, &cbs, c);
}

struct ecr_call *ecr_api_call(struct ecr_api *a, const char *op, json_t *params, ecr_api_fn cb,
                              void *arg)
{
    struct ecr_call *c = xcalloc(1, sizeof(*c));

    CHECK_OBJ_NOTNULL(a, ECR_API_MAGIC);
    c->magic = ECR_CALL_MAGIC;
    c->api = a;
    str_copy(c->op, sizeof(c->op), op);
    c->body = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    if (c->body == NULL)
        c->body = xstrdup("{}");
    c->body_len = strlen(c->body);
    sigv4_payload_hash(c->body, c->body_len, c->payload_hash);
    c->cb = cb;
    c->arg = arg;
    c->timer = evtimer_new(a->base, call_timer_cb, c);
    c->next = a->calls;
    a->calls = c;
    a->stats.as_calls++;
    call_send(c);
    return c;
}
