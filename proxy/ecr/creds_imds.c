/*
 * The IMDSv2 client of the credential chain: every GET carries a session token, fetched with
 *   PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 21600) ─▶ 200: the token,
 *   held until a minute before its TTL ─▶ GET <path> (X-aws-ec2-metadata-token) ─▶ 401: the
 *   token is dropped, fetched again and the GET repeated, once ─▶ anything else is the end.
 * A PUT answered 403, 404 or 405 (IMDSv1 only, or the hop limit) fails the op: this client
 * never falls back to IMDSv1. Short timeouts and one retry, so a host without IMDS knows
 * within a few seconds. Every request is tr_metadata, direct (no egress proxy).
 */
#include "config.h"

#include "creds-int.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "util.h"

#define IMDS_MAGIC 0x494d4453u    /* "IMDS" */
#define IMDS_OP_MAGIC 0x494d4f50u /* "IMOP" */
#define IMDS_TOKEN_TTL 21600
#define IMDS_TOKEN_MAX 1024
#define IMDS_BODY_MAX (64 * 1024)
#define IMDS_CONNECT_MS 1000
#define IMDS_TIMEOUT_MS 3000
#define IMDS_RETRIES 1

struct imds {
    unsigned magic;
    struct creds *c;
    char *base; /* without a trailing '/' */
    int disabled;
    char token[IMDS_TOKEN_MAX]; /* "" when none is held */
    int64_t token_expires;
    struct imds_op *ops; /* every live op, linked */
};

struct imds_op {
    unsigned magic;
    struct imds *m;
    struct imds_op *next, *prev;
    char *path;
    int refetched;             /* a 401 has sent it for a fresh token already */
    struct transport_req *req; /* the PUT or the GET in flight */
    struct event *later;       /* ends from the loop with errmsg */
    char errmsg[256];
    imds_done_fn cb;
    void *arg;
};

static void op_send_get(struct imds_op *op);
static void op_send_put(struct imds_op *op);

static void op_free(struct imds_op *op)
{
    struct imds *m = op->m;

    transport_cancel(op->req);
    if (op->later != NULL)
        event_free(op->later);
    if (op->prev != NULL)
        op->prev->next = op->next;
    else if (m->ops == op)
        m->ops = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    free(op->path);
    op->magic = 0;
    free(op);
}

/* <op>'s end: the caller's callback, then <op> is freed. */
static void op_end(struct imds_op *op, int ok, const char *body, size_t len, const char *err)
{
    imds_done_fn cb = op->cb;
    void *arg = op->arg;

    op->req = NULL;
    /* Unlinked and freed first: the callback may start the next op or free the client. */
    op->cb = NULL;
    op_free(op);
    cb(arg, ok, body, len, err);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct imds_op *op;
    char msg[256];

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(op, arg, IMDS_OP_MAGIC);
    str_copy(msg, sizeof(msg), op->errmsg);
    op_end(op, 0, NULL, 0, msg);
}

static void op_fail_later(struct imds_op *op, const char *err)
{
    static const struct timeval now = {0, 0};

    str_copy(op->errmsg, sizeof(op->errmsg), err);
    if (op->later == NULL)
        op->later = evtimer_new(creds_base(op->m->c), later_cb, op);
    evtimer_add(op->later, &now);
}

static void op_request(struct imds_op *op, enum transport_method method, const char *path,
                       const char *const *headers,
                       void (*done)(void *, const struct transport_outcome *))
{
    struct transport_callbacks cbs = {NULL, NULL, NULL, done};
    struct transport_request rq;
    char *url = xasprintf("%s%s", op->m->base, path);

    memset(&rq, 0, sizeof(rq));
    rq.tr_method = method;
    rq.tr_url = url;
    rq.tr_headers = headers;
    rq.tr_proxy = "";
    rq.tr_check_address = 0;
    rq.tr_metadata = 1;
    rq.tr_max_retries = IMDS_RETRIES;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    rq.tr_buffer_max = IMDS_BODY_MAX;
    rq.tr_connect_timeout_ms = IMDS_CONNECT_MS;
    rq.tr_timeout_ms = IMDS_TIMEOUT_MS;
    op->req = transport_start(creds_transport(op->m->c), &rq, &cbs, op);
    free(url);
}

static int is_2xx(const struct transport_outcome *o)
{
    return o->to_res == UPSTREAM_OK;
}

static void put_done(void *arg, const struct transport_outcome *o)
{
    struct imds_op *op;
    struct imds *m;
    char why[300], msg[384];
    size_t n;

    CAST_OBJ_NOTNULL(op, arg, IMDS_OP_MAGIC);
    op->req = NULL;
    m = op->m;
    if (!is_2xx(o)) {
        int st = o->to_resp->ur_status;
        creds_reason(o, why, sizeof(why));
        snprintf(msg, sizeof(msg), "IMDSv2 token: %s%s", why,
                 st == 403 || st == 404 || st == 405 ? " (IMDSv1 is not used)" : "");
        op_end(op, 0, NULL, 0, msg);
        return;
    }
    n = o->to_body_len;
    while (n > 0 &&
           (o->to_body[n - 1] == '\n' || o->to_body[n - 1] == '\r' || o->to_body[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)o->to_body[i];
        if (ch <= ' ' || ch >= 0x7f)
            n = 0; /* not a header value */
    }
    if (n == 0 || n >= sizeof(m->token)) {
        op_end(op, 0, NULL, 0, "IMDSv2 token: an empty or unusable token");
        return;
    }
    memcpy(m->token, o->to_body, n);
    m->token[n] = '\0';
    m->token_expires = creds_now(m->c) + IMDS_TOKEN_TTL - 60;
    op_send_get(op);
}

static void get_done(void *arg, const struct transport_outcome *o)
{
    struct imds_op *op;
    struct imds *m;
    char why[300], msg[384];

    CAST_OBJ_NOTNULL(op, arg, IMDS_OP_MAGIC);
    op->req = NULL;
    m = op->m;
    if (is_2xx(o)) {
        op_end(op, 1, o->to_body, o->to_body_len, NULL);
        return;
    }
    if (o->to_res == UPSTREAM_HTTP && o->to_resp->ur_status == 401 && !op->refetched) {
        /* The token expired or IMDS restarted: a fresh one, once. */
        op->refetched = 1;
        explicit_bzero(m->token, sizeof(m->token));
        op_send_put(op);
        return;
    }
    creds_reason(o, why, sizeof(why));
    /* Not the path: it names the instance's role. */
    snprintf(msg, sizeof(msg), "IMDS: %s", why);
    op_end(op, 0, NULL, 0, msg);
}

static void op_send_put(struct imds_op *op)
{
    static const char *const hdrs[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};

    op_request(op, TRANSPORT_PUT, "/latest/api/token", hdrs, put_done);
}

static void op_send_get(struct imds_op *op)
{
    char *line = xasprintf("X-aws-ec2-metadata-token: %s", op->m->token);
    const char *hdrs[] = {line, NULL};

    op_request(op, TRANSPORT_GET, op->path, hdrs, get_done);
    explicit_bzero(line, strlen(line));
    free(line);
}

struct imds *imds_new(struct creds *c, const char *base_url, int disabled)
{
    struct imds *m = xcalloc(1, sizeof(*m));
    size_t n;

    m->magic = IMDS_MAGIC;
    m->c = c;
    m->base = xstrdup(base_url);
    n = strlen(m->base);
    while (n > 0 && m->base[n - 1] == '/')
        m->base[--n] = '\0';
    m->disabled = disabled;
    return m;
}

void imds_free(struct imds *m)
{
    if (m == NULL)
        return;
    CHECK_OBJ_NOTNULL(m, IMDS_MAGIC);
    while (m->ops != NULL)
        op_free(m->ops);
    explicit_bzero(m->token, sizeof(m->token));
    free(m->base);
    m->magic = 0;
    free(m);
}

struct imds_op *imds_get(struct imds *m, const char *path, imds_done_fn cb, void *arg)
{
    struct imds_op *op = xcalloc(1, sizeof(*op));

    CHECK_OBJ_NOTNULL(m, IMDS_MAGIC);
    op->magic = IMDS_OP_MAGIC;
    op->m = m;
    op->next = m->ops;
    if (m->ops != NULL)
        m->ops->prev = op;
    m->ops = op;
    op->path = xstrdup(path);
    op->cb = cb;
    op->arg = arg;
    if (m->disabled)
        op_fail_later(op, "instance metadata is disabled (AWS_EC2_METADATA_DISABLED)");
    else if (m->token[0] != '\0' && creds_now(m->c) < m->token_expires)
        op_send_get(op);
    else
        op_send_put(op);
    return op;
}

void imds_cancel(struct imds_op *op)
{
    if (op == NULL)
        return;
    CHECK_OBJ_NOTNULL(op, IMDS_OP_MAGIC);
    op_free(op);
}
