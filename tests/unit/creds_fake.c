/*
 * The fake endpoints and the harness of test_creds.c: "metadata" (IMDS and the container
 * endpoint) and "sts", two evhttp servers on 127.0.0.1 served by the test's loop and counting
 * what they were asked; the environment (co_getenv) and the clock (co_clock) the chain sees.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "creds_fake.h"
#include "log.h"
#include "transport.h"
#include "util.h"

static struct event_base *base;
static struct evhttp *meta_http, *sts_http;
static struct transport *tp;
struct creds *cr;
char meta_url[64], sts_url[64], home[64];
int64_t clock_offset;

/* ---- the environment and the clock ------------------------------------------------------ */

static struct {
    char name[64];
    char value[512];
} env[32];
static int nenv;

void set_env(const char *name, const char *value)
{
    for (int i = 0; i < nenv; i++) {
        if (strcmp(env[i].name, name) == 0) {
            snprintf(env[i].value, sizeof(env[i].value), "%s", value != NULL ? value : "");
            return;
        }
    }
    cr_assert_lt(nenv, 32);
    snprintf(env[nenv].name, sizeof(env[nenv].name), "%s", name);
    snprintf(env[nenv].value, sizeof(env[nenv].value), "%s", value != NULL ? value : "");
    nenv++;
}

static const char *test_getenv(const char *name)
{
    for (int i = 0; i < nenv; i++)
        if (strcmp(env[i].name, name) == 0)
            return env[i].value;
    return NULL;
}

int64_t test_clock(void)
{
    return util_now() + clock_offset;
}

double mono_s(void)
{
    return (double)util_mono_usec() / 1e6;
}

/* ---- the servers -------------------------------------------------------------------------- */

/* What they do. */
int imds_v1_only; /* PUT /latest/api/token answers 405 */
int imds_lifetime = 3600, container_lifetime = 3600, sts_lifetime = 3600;
int container_status = 200, sts_status = 200;
int delay_ms;         /* credential answers wait this long */
char valid_token[64]; /* the IMDS token GETs must carry, "" after a "restart" */
static int token_serial, creds_serial;

/* What they saw. */
int hits_put, hits_role, hits_imds_creds, hits_region, hits_container, hits_sts;
int hits_get_without_token;
char container_auth[256], sts_token[256], sts_role[256], sts_session[256];
static double last_creds_request_at; /* mono_s() */

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, code < 300 ? "OK" : "X", b);
    evbuffer_free(b);
}

static void iso(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct delayed {
    struct evhttp_request *req;
    int code;
    char body[4096];
    struct event *ev;
};

static void delayed_cb(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;

    (void)fd;
    (void)what;
    reply(d->req, d->code, d->body);
    event_free(d->ev);
    free(d);
}

/* Answer now, or after delay_ms. */
static void answer(struct evhttp_request *req, int code, const char *body)
{
    struct delayed *d;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

    if (delay_ms == 0) {
        reply(req, code, body);
        return;
    }
    d = calloc(1, sizeof(*d));
    d->req = req;
    d->code = code;
    snprintf(d->body, sizeof(d->body), "%s", body);
    d->ev = evtimer_new(base, delayed_cb, d);
    evtimer_add(d->ev, &tv);
}

static void creds_json(char *out, size_t size, const char *prefix, const char *secret,
                       const char *token, int lifetime)
{
    char exp[32];

    iso(util_now() + lifetime, exp, sizeof(exp));
    snprintf(out, size,
             "{\"Code\":\"Success\",\"AccessKeyId\":\"%s%d\",\"SecretAccessKey\":\"%s\","
             "\"Token\":\"%s\",\"Expiration\":\"%s\"}",
             prefix, ++creds_serial, secret, token, exp);
}

static int imds_token_ok(struct evhttp_request *req)
{
    const char *t =
        evhttp_find_header(evhttp_request_get_input_headers(req), "X-aws-ec2-metadata-token");

    if (t == NULL)
        hits_get_without_token++;
    if (t == NULL || valid_token[0] == '\0' || strcmp(t, valid_token) != 0) {
        reply(req, 401, "");
        return 0;
    }
    return 1;
}

static void serve_meta(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    char body[2048];

    (void)arg;
    if (strcmp(uri, "/latest/api/token") == 0 && m == EVHTTP_REQ_PUT) {
        const char *ttl = evhttp_find_header(in, "X-aws-ec2-metadata-token-ttl-seconds");
        hits_put++;
        if (imds_v1_only) {
            reply(req, 405, "");
            return;
        }
        cr_assert_str_eq(ttl != NULL ? ttl : "", "21600");
        snprintf(valid_token, sizeof(valid_token), "imds-token-%d", ++token_serial);
        reply(req, 200, valid_token);
    } else if (strcmp(uri, "/latest/meta-data/iam/security-credentials/") == 0) {
        hits_role++;
        if (imds_v1_only || imds_token_ok(req))
            reply(req, 200, "test-role\nsecond-role\n");
    } else if (strcmp(uri, "/latest/meta-data/iam/security-credentials/test-role") == 0) {
        hits_imds_creds++;
        last_creds_request_at = mono_s();
        if (imds_token_ok(req)) {
            creds_json(body, sizeof(body), "ASIAIMDS", IMDS_SECRET, IMDS_SESSION, imds_lifetime);
            answer(req, 200, body);
        }
    } else if (strcmp(uri, "/latest/meta-data/placement/region") == 0) {
        hits_region++;
        if (imds_token_ok(req))
            reply(req, 200, "eu-west-3");
    } else if (strcmp(uri, "/container/creds") == 0) {
        const char *a = evhttp_find_header(in, "Authorization");
        hits_container++;
        last_creds_request_at = mono_s();
        snprintf(container_auth, sizeof(container_auth), "%s", a != NULL ? a : "(none)");
        if (container_status != 200) {
            reply(req, container_status, "{\"message\":\"no\"}");
            return;
        }
        creds_json(body, sizeof(body), "ASIACONT", CONTAINER_SECRET, "container-session",
                   container_lifetime);
        answer(req, 200, body);
    } else {
        reply(req, 404, "");
    }
}

/* The value of <name> in the form <body>, decoded, into <out>. */
static void form_value(const char *body, const char *name, char *out, size_t size)
{
    struct evkeyvalq q;
    const char *v;

    cr_assert_eq(evhttp_parse_query_str(body, &q), 0);
    v = evhttp_find_header(&q, name);
    snprintf(out, size, "%s", v != NULL ? v : "(none)");
    evhttp_clear_headers(&q);
}

static void serve_sts(struct evhttp_request *req, void *arg)
{
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(ib);
    char *body = calloc(1, n + 1), xml[4096], exp[32], action[64];

    (void)arg;
    hits_sts++;
    last_creds_request_at = mono_s();
    evbuffer_copyout(ib, body, n);
    cr_assert_eq(evhttp_request_get_command(req), EVHTTP_REQ_POST);
    form_value(body, "Action", action, sizeof(action));
    cr_assert_str_eq(action, "AssumeRoleWithWebIdentity");
    form_value(body, "Version", action, sizeof(action));
    cr_assert_str_eq(action, "2011-06-15");
    form_value(body, "WebIdentityToken", sts_token, sizeof(sts_token));
    form_value(body, "RoleArn", sts_role, sizeof(sts_role));
    form_value(body, "RoleSessionName", sts_session, sizeof(sts_session));
    free(body);
    if (sts_status != 200) {
        reply(req, sts_status,
              "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
              "<Message>No OpenIDConnect provider found</Message></Error></ErrorResponse>");
        return;
    }
    iso(util_now() + sts_lifetime, exp, sizeof(exp));
    snprintf(xml, sizeof(xml),
             "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
             "<AccessKeyId>ASIASTS%d</AccessKeyId><SecretAccessKey>" STS_SECRET
             "</SecretAccessKey><SessionToken>" STS_SESSION "</SessionToken>"
             "<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
             "</AssumeRoleWithWebIdentityResponse>",
             ++creds_serial, exp);
    answer(req, 200, xml);
}

static struct evhttp *server(void (*cb)(struct evhttp_request *, void *), char *url, size_t size)
{
    struct evhttp *h = evhttp_new(base);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST);
    evhttp_set_gencb(h, cb, NULL);
    bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    snprintf(url, size, "http://127.0.0.1:%d", ntohs(sin.sin_port));
    return h;
}

/* ---- the chain's side --------------------------------------------------------------------- */

int changed_ok, changed_fail;
static int timed_out;
char last_err[512];
double fail_at[16];

static void on_changed(void *arg, int ok, const char *err)
{
    (void)arg;
    if (ok) {
        changed_ok++;
    } else {
        if (changed_fail < 16)
            fail_at[changed_fail] = mono_s();
        changed_fail++;
        snprintf(last_err, sizeof(last_err), "%s", err);
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    timed_out = 1;
}

/* Run the loop until *<counter> reaches <want>, at most <secs> seconds. */
void run_until(const int *counter, int want, int secs)
{
    struct timeval tv = {secs, 0};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);

    timed_out = 0;
    evtimer_add(deadline, &tv);
    while (*counter < want && !timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(deadline);
    cr_assert_geq(*counter, want, "waited %d s for %d events, saw %d (last error: %s)", secs, want,
                  *counter, last_err);
}

/* Run the loop for <ms> milliseconds. */
void run_for(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);

    timed_out = 0;
    evtimer_add(deadline, &tv);
    while (!timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(deadline);
}

void start_chain(void)
{
    struct creds_options o = {test_getenv, test_clock, on_changed, NULL};
    char *err = NULL;

    cr = creds_create(base, tp, &o, &err);
    cr_assert_not_null(cr, "%s", err ? err : "");
    creds_start(cr);
}

struct aws_credentials creds_fake_held(void)
{
    struct aws_credentials ac;

    cr_assert_eq(creds_get(cr, &ac), 1, "no credentials held (last error: %s)", last_err);
    return ac;
}

struct creds_stats creds_fake_stats(void)
{
    struct creds_stats s;

    creds_get_stats(cr, &s);
    return s;
}

void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

void creds_fake_setup(void)
{
    static const struct upstream_settings set = {2000, 10, 5, 5};
    char *err = NULL, url[96];

    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    base = event_base_new();
    meta_http = server(serve_meta, meta_url, sizeof(meta_url));
    sts_http = server(serve_sts, sts_url, sizeof(sts_url));
    tp = transport_create(base, &set, &err);
    cr_assert_not_null(tp, "%s", err ? err : "");
    /* A HOME without .aws, and IMDS on the fake server: nothing of this host is read. */
    snprintf(home, sizeof(home), "/tmp/test_creds.XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    set_env("HOME", home);
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", meta_url);
    snprintf(url, sizeof(url), "%s/sts", sts_url);
    set_env("AWS_ENDPOINT_URL_STS", url);
}

void creds_fake_teardown(void)
{
    char cmd[128];

    creds_destroy(cr);
    transport_destroy(tp);
    evhttp_free(meta_http);
    evhttp_free(sts_http);
    event_base_free(base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}
