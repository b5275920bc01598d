/*
 * Unit tests for proxy/ecr/creds.c (and creds_local.c, creds_imds.c): the chain's sources in
 * order and precedence, IMDSv2's token (fetched first, again on a 401, IMDSv1 refused), the
 * container endpoint and its rotating token file, web identity and its rotating token file,
 * renewal ahead of expiry while the old credentials serve, backoff and counting of failures,
 * and no secret in the log. Live requests on a real libevent base against two evhttp servers on
 * 127.0.0.1 served by the same loop: "metadata" (IMDS and the container endpoint, registered
 * as denied to other requests) and "sts"; the environment comes through co_getenv, the clock
 * through co_clock.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "log.h"
#include "transport.h"
#include "util.h"

#define IMDS_SECRET "imds-secret-value"
#define IMDS_SESSION "imds-session-token"
#define CONTAINER_SECRET "container-secret-value"
#define STS_SECRET "sts-secret-value"
#define STS_SESSION "sts-session-token"

static struct event_base *base;
static struct evhttp *meta_http, *sts_http;
static struct transport *tp;
static struct creds *cr;
static char meta_url[64], sts_url[64], home[64];
static int64_t clock_offset;

/* ---- the environment and the clock ------------------------------------------------------ */

static struct {
    char name[64];
    char value[512];
} env[32];
static int nenv;

static void set_env(const char *name, const char *value)
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

static int64_t test_clock(void)
{
    return util_now() + clock_offset;
}

static double mono_s(void)
{
    return (double)util_mono_usec() / 1e6;
}

/* ---- the servers -------------------------------------------------------------------------- */

/* What they do. */
static int imds_v1_only; /* PUT /latest/api/token answers 405 */
static int imds_lifetime = 3600, container_lifetime = 3600, sts_lifetime = 3600;
static int container_status = 200, sts_status = 200;
static int delay_ms;         /* credential answers wait this long */
static char valid_token[64]; /* the IMDS token GETs must carry, "" after a "restart" */
static int token_serial, creds_serial;

/* What they saw. */
static int hits_put, hits_role, hits_imds_creds, hits_region, hits_container, hits_sts;
static int hits_get_without_token;
static char container_auth[256], sts_token[256], sts_role[256], sts_session[256];
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

static int changed_ok, changed_fail, timed_out;
static char last_err[512];
static double fail_at[16];

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
static void run_until(const int *counter, int want, int secs)
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
static void run_for(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *deadline = evtimer_new(base, deadline_cb, NULL);

    timed_out = 0;
    evtimer_add(deadline, &tv);
    while (!timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(deadline);
}

static void start_chain(void)
{
    struct creds_options o = {test_getenv, test_clock, on_changed, NULL};
    char *err = NULL;

    cr = creds_create(base, tp, &o, &err);
    cr_assert_not_null(cr, "%s", err ? err : "");
    creds_start(cr);
}

static struct aws_credentials held(void)
{
    struct aws_credentials ac;

    cr_assert_eq(creds_get(cr, &ac), 1, "no credentials held (last error: %s)", last_err);
    return ac;
}

static struct creds_stats stats(void)
{
    struct creds_stats s;

    creds_get_stats(cr, &s);
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
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

static void teardown(void)
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

TestSuite(creds, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the sources, in order ------------------------------------------------------------------ */

/* The environment's keys win over every other source, and nothing is asked of any server. */
Test(creds, environment_first)
{
    char path[128];
    struct aws_credentials ac;

    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    set_env("AWS_SESSION_TOKEN", "envtoken");
    set_env("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z");
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/r");
    start_chain();
    cr_assert_eq(creds_get(cr, &ac), 0, "credentials before the loop ran");
    run_until(&changed_ok, 1, 5);
    ac = held();
    cr_assert_str_eq(ac.ac_access_key, "AKIAENV");
    cr_assert_str_eq(ac.ac_secret, "envsecret");
    cr_assert_str_eq(ac.ac_token, "envtoken");
    cr_assert_eq(ac.ac_expires_at, 4070908800LL);
    cr_assert_str_eq(stats().cs_source, "environment");
    cr_assert_eq(stats().cs_refreshes, 1);
    cr_assert_eq(hits_sts + hits_put + hits_container, 0);
}

/* One key alone is not the environment's: the chain goes on to the profile, which wins over
 * web identity; a profile named but absent is the chain's failure. */
Test(creds, shared_files_then_config)
{
    char dir[128], path[160];

    set_env("AWS_ACCESS_KEY_ID", "AKIALONE");
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path); /* comes after the profile */
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/r");
    snprintf(dir, sizeof(dir), "%s/.aws", home);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/credentials", dir);
    write_file(path, "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = fs\n");
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(held().ac_access_key, "AKIAFILE");
    cr_assert_str_eq(held().ac_source, "profile");
    cr_assert_eq(held().ac_expires_at, 0);
    creds_destroy(cr);
    cr = NULL;

    /* A named profile that only the config file (AWS_CONFIG_FILE) has. */
    snprintf(path, sizeof(path), "%s/cfg", home);
    write_file(path, "[profile ops]\naws_access_key_id = AKIACFG\naws_secret_access_key = cs\n");
    set_env("AWS_CONFIG_FILE", path);
    set_env("AWS_PROFILE", "ops");
    changed_ok = 0;
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(held().ac_access_key, "AKIACFG");
    creds_destroy(cr);
    cr = NULL;

    /* A profile that neither file has, named: the chain fails, and does not go on. */
    set_env("AWS_PROFILE", "nowhere");
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_not_null(strstr(last_err, "nowhere"), "%s", last_err);
    cr_assert_eq(hits_put + hits_sts, 0, "the chain went past the profile");
}

/* A profile that wants more than static keys is logged and skipped: the next source decides. */
Test(creds, unsupported_profile_falls_through)
{
    char path[128], arn[32];

    snprintf(path, sizeof(path), "%s/credentials", home);
    write_file(path, "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n");
    set_env("AWS_SHARED_CREDENTIALS_FILE", path);
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-token\n");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(held().ac_source, "web-identity");
    cr_assert_str_eq(held().ac_secret, STS_SECRET);
    cr_assert_str_eq(held().ac_token, STS_SESSION);
    cr_assert_str_eq(sts_token, "jwt-token", "the token file's newline was sent");
    cr_assert_str_eq(sts_role, "arn:aws:iam::1:role/web");
    snprintf(arn, sizeof(arn), "ecr-ptc-proxy-%ld", (long)getpid());
    cr_assert_str_eq(sts_session, arn);
    cr_assert_eq(hits_put + hits_container, 0);
}

/* Web identity is configured, STS refuses: that is the chain's failure, IMDS is not asked. */
Test(creds, web_identity_failure_is_final)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-secret-value");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    set_env("AWS_ROLE_SESSION_NAME", "my session");
    sts_status = 400;
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_not_null(strstr(last_err, "InvalidIdentityToken"), "%s", last_err);
    cr_assert_null(strstr(last_err, "jwt-secret-value"), "%s", last_err);
    cr_assert_str_eq(sts_session, "my session");
    cr_assert_eq(hits_sts, 1, "a 400 was retried");
    cr_assert_eq(hits_put + hits_container, 0, "the chain went past a failing web identity");
    cr_assert_eq(stats().cs_failures, 1);
    cr_assert_str_empty(stats().cs_source);
}

/* The token file is read again for every renewal (IRSA rotates it). */
Test(creds, web_identity_token_file_read_again)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-1");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    sts_lifetime = 3; /* renewed after 1 or 2 s */
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(sts_token, "jwt-1");
    write_file(path, "jwt-2");
    sts_lifetime = 3600;
    run_until(&changed_ok, 2, 5);
    cr_assert_str_eq(sts_token, "jwt-2");
    cr_assert_eq(hits_sts, 2);
    cr_assert_eq(stats().cs_refreshes, 2);
}

/* The container endpoint wins over IMDS; its token file is read again on every renewal. */
Test(creds, container_full_uri_token_file_read_again)
{
    char path[128], url[128];

    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    snprintf(path, sizeof(path), "%s/eks-token", home);
    write_file(path, "pod-token-1\n");
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path);
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-this-one");
    container_lifetime = 3;
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(container_auth, "pod-token-1");
    cr_assert_str_eq(held().ac_source, "container");
    cr_assert_str_eq(held().ac_secret, CONTAINER_SECRET);
    write_file(path, "pod-token-2");
    container_lifetime = 3600;
    run_until(&changed_ok, 2, 5);
    cr_assert_str_eq(container_auth, "pod-token-2");
    cr_assert_eq(hits_put, 0, "IMDS was asked with a container endpoint configured");

    /* Without the file, the variable's token. */
    creds_destroy(cr);
    cr = NULL;
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "");
    start_chain();
    run_until(&changed_ok, 3, 5);
    cr_assert_str_eq(container_auth, "not-this-one");
}

/* A FULL_URI over http to a host that is neither loopback nor the ECS/EKS hosts is refused,
 * without a request. */
Test(creds, container_full_uri_host_refused)
{
    static const char *const bad[] = {"http://example.com/creds", "http://10.0.0.1/creds",
                                      "http://169.254.169.254/latest/meta-data/",
                                      "http://127.0.0.1.example.com/creds", "ftp://127.0.0.1/"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad[i]);
        changed_fail = 0;
        start_chain();
        run_until(&changed_fail, 1, 5);
        cr_assert_not_null(strstr(last_err, "FULL_URI"), "%s: %s", bad[i], last_err);
        creds_destroy(cr);
        cr = NULL;
    }
    cr_assert_eq(hits_container + hits_put, 0);
}

/* An endpoint that does not answer: the error names its host, never its path. */
Test(creds, container_unreachable_path_not_shown)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char url[128];
    int s = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
    close(s); /* nobody listens there now */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/capability-uuid",
             ntohs(sin.sin_port));
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    start_chain();
    run_until(&changed_fail, 1, 10);
    cr_assert_null(strstr(last_err, "capability-uuid"), "%s", last_err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d: ", ntohs(sin.sin_port));
    cr_assert_not_null(strstr(last_err, url), "%s", last_err);
}

/* IMDSv2: a token first, then the role, then its credentials, each GET with the token; the
 * region with the same token. */
Test(creds, imds_v2)
{
    struct aws_credentials ac;

    start_chain();
    run_until(&changed_ok, 1, 10);
    ac = held();
    cr_assert_str_eq(ac.ac_source, "imds");
    cr_assert_str_eq(ac.ac_secret, IMDS_SECRET);
    cr_assert_str_eq(ac.ac_token, IMDS_SESSION);
    cr_assert_gt(ac.ac_expires_at, test_clock() + 3000);
    cr_assert_eq(hits_put, 1);
    cr_assert_eq(hits_role, 1);
    cr_assert_eq(hits_imds_creds, 1);
    cr_assert_eq(hits_get_without_token, 0);
}

static int region_calls;
static char region_got[64], region_err[256];

static void on_region(void *arg, const char *region, const char *err)
{
    (void)arg;
    region_calls++;
    snprintf(region_got, sizeof(region_got), "%s", region != NULL ? region : "(null)");
    snprintf(region_err, sizeof(region_err), "%s", err != NULL ? err : "");
}

Test(creds, imds_region)
{
    start_chain();
    run_until(&changed_ok, 1, 10);
    creds_imds_region(cr, on_region, NULL);
    cr_assert_eq(region_calls, 0, "called back from inside creds_imds_region");
    run_until(&region_calls, 1, 5);
    cr_assert_str_eq(region_got, "eu-west-3", "%s", region_err);
    cr_assert_eq(hits_put, 1, "the held token was not used");
    cr_assert_eq(hits_region, 1);

    /* Disabled: an error, from the loop. */
    creds_destroy(cr);
    set_env("AWS_EC2_METADATA_DISABLED", "true");
    start_chain();
    creds_imds_region(cr, on_region, NULL);
    cr_assert_eq(region_calls, 1);
    run_until(&region_calls, 2, 5);
    cr_assert_str_eq(region_got, "(null)");
    cr_assert_not_null(strstr(region_err, "disabled"), "%s", region_err);
    run_until(&changed_fail, 1, 5);
    cr_assert_eq(hits_put, 1);
}

/* A server that only speaks IMDSv1 is not used: the PUT fails, no GET goes without a token. */
Test(creds, imds_v1_only_refused)
{
    imds_v1_only = 1;
    start_chain();
    run_until(&changed_fail, 1, 10);
    cr_assert_not_null(strstr(last_err, "IMDSv1 is not used"), "%s", last_err);
    cr_assert_eq(hits_put, 1);
    cr_assert_eq(hits_role + hits_imds_creds, 0, "a GET went without a token");
    cr_assert_eq(stats().cs_failures, 1);
}

/* A 401 (the token expired, or IMDS restarted) fetches a fresh token and asks again, once. */
Test(creds, imds_token_fetched_again_on_401)
{
    start_chain();
    run_until(&changed_ok, 1, 10);
    cr_assert_eq(hits_put, 1);
    valid_token[0] = '\0'; /* IMDS "restarted": the held token is no longer valid */
    creds_start(cr);
    run_until(&changed_ok, 2, 10);
    cr_assert_eq(hits_put, 2);
    cr_assert_eq(hits_role, 3, "role: ok, 401, ok");
    cr_assert_eq(hits_imds_creds, 2);
}

/* ---- renewal ------------------------------------------------------------------------------ */

/*
 * Credentials of a 6 s lifetime are renewed 3 s ahead (half their lifetime; 10 min for real
 * ones), and while the renewal waits on a slow endpoint the old credentials keep serving.
 */
Test(creds, renewal_ahead_old_credentials_meanwhile)
{
    struct aws_credentials first, during, after;
    double t0;

    imds_lifetime = 6;
    start_chain();
    run_until(&changed_ok, 1, 10);
    first = held();
    t0 = mono_s();
    delay_ms = 1000;
    imds_lifetime = 3600;
    run_until(&hits_imds_creds, 2, 5); /* the renewal asked */
    cr_assert_leq(test_clock(), first.ac_expires_at - 2, "the renewal began too late");
    cr_assert_gt(mono_s() - t0, 0.5, "renewed at once, not ahead of expiry");
    during = held();
    cr_assert_str_eq(during.ac_access_key, first.ac_access_key);
    run_until(&changed_ok, 2, 5);
    after = held();
    cr_assert_str_neq(after.ac_access_key, first.ac_access_key);
    cr_assert_gt(after.ac_expires_at, first.ac_expires_at);
    cr_assert_eq(stats().cs_refreshes, 2);
    cr_assert_eq(stats().cs_expires_at, after.ac_expires_at);
}

/* Failures are counted and retried after 1 s, 2 s, 4 s ...; a renewal that fails keeps the
 * held credentials until they expire, and never past. */
Test(creds, failure_backoff_and_counting)
{
    char url[128];

    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    container_status = 500;
    start_chain();
    run_until(&changed_fail, 3, 10);
    cr_assert_eq(stats().cs_failures, 3);
    cr_assert_eq(hits_container, 9, "each failure is 3 attempts (2 retries)");
    cr_assert_gt(fail_at[1] - fail_at[0], 0.8, "%f", fail_at[1] - fail_at[0]);
    cr_assert_lt(fail_at[1] - fail_at[0], 1.6, "%f", fail_at[1] - fail_at[0]);
    cr_assert_gt(fail_at[2] - fail_at[1], 1.8, "%f", fail_at[2] - fail_at[1]);
    cr_assert_lt(fail_at[2] - fail_at[1], 2.6, "%f", fail_at[2] - fail_at[1]);
    cr_assert_not_null(strstr(last_err, "answered 500"), "%s", last_err);
    cr_assert_null(strstr(last_err, "/container/creds"), "the path was shown: %s", last_err);

    /* It recovers: the backoff starts again from 1 s after a success. */
    container_status = 200;
    container_lifetime = 2;
    run_until(&changed_ok, 1, 6);
    cr_assert_eq(stats().cs_failures, 3);
    container_status = 500;
    run_until(&changed_fail, 4, 5);
    {
        struct aws_credentials ac;
        /* Still held, until the clock passes their expiry. */
        if (creds_get(cr, &ac) == 1)
            cr_assert_lt(test_clock(), ac.ac_expires_at);
        clock_offset = 5;
        cr_assert_eq(creds_get(cr, &ac), 0, "expired credentials were returned");
    }
}

/* creds_get never returns credentials past their expiry, whatever the timers did. */
Test(creds, never_expired)
{
    struct aws_credentials ac;

    imds_lifetime = 900;
    start_chain();
    run_until(&changed_ok, 1, 10);
    ac = held();
    clock_offset = ac.ac_expires_at - test_clock() - 1;
    cr_assert_eq(creds_get(cr, &ac), 1, "one second before expiry");
    clock_offset += 1;
    cr_assert_eq(creds_get(cr, &ac), 0, "at the expiry");
    clock_offset += 100;
    cr_assert_eq(creds_get(cr, &ac), 0);
    cr_assert_neq(stats().cs_expires_at, 0);

    /* Environment credentials past AWS_CREDENTIAL_EXPIRATION are never held. */
    creds_destroy(cr);
    clock_offset = 0;
    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    set_env("AWS_CREDENTIAL_EXPIRATION", "2001-01-01T00:00:00Z");
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_eq(creds_get(cr, &ac), 0);
}

/* ---- the log ------------------------------------------------------------------------------- */

/* Every line the chain logged, successes and failures of every source: no secret in any. */
Test(creds, no_secret_in_the_log)
{
    static const char *const secrets[] = {
        IMDS_SECRET,  IMDS_SESSION, CONTAINER_SECRET, STS_SECRET, STS_SESSION, "imds-token-",
        "jwt-secret", "pod-secret", "ASIA",           "AKIAENV",  "envsecret"};
    char logpath[128], path[128], url[128], *text;
    int saved = dup(STDERR_FILENO), fd;
    FILE *f;
    long n;

    snprintf(logpath, sizeof(logpath), "%s/log", home);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_neq(fd, -1);
    cr_assert_neq(dup2(fd, STDERR_FILENO), -1);
    close(fd);
    log_setup(LOG_FORMAT_TEXT, LOG_DEBUG);

    /* IMDS: success, region, then a failure of its renewal. */
    start_chain();
    run_until(&changed_ok, 1, 10);
    creds_imds_region(cr, on_region, NULL);
    run_until(&region_calls, 1, 5);
    imds_v1_only = 1;
    valid_token[0] = '\0';
    creds_start(cr);
    run_until(&changed_fail, 1, 10);
    creds_destroy(cr);

    /* The container endpoint with a token, success then 500 (retried: upstream-retry lines). */
    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-secret-token");
    start_chain();
    run_until(&changed_ok, 2, 5);
    container_status = 500;
    creds_start(cr);
    run_until(&changed_fail, 2, 5);
    creds_destroy(cr);

    /* Web identity, success then STS's error. */
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-secret-token");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    start_chain();
    run_until(&changed_ok, 3, 5);
    sts_status = 403;
    creds_start(cr);
    run_until(&changed_fail, 3, 5);
    creds_destroy(cr);

    /* The environment, and one key alone. */
    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    start_chain();
    run_until(&changed_ok, 4, 5);
    creds_destroy(cr);
    set_env("AWS_ACCESS_KEY_ID", "");
    start_chain();
    run_for(200);

    log_flush();
    dup2(saved, STDERR_FILENO);
    close(saved);
    f = fopen(logpath, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    cr_assert_not_null(strstr(text, "aws-credentials source=imds"), "%s", text);
    cr_assert_not_null(strstr(text, "aws-credentials-failed source=web-identity"), "%s", text);
    cr_assert_not_null(strstr(text, "upstream-retry"), "%s", text);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        cr_assert_null(strstr(text, secrets[i]), "%s is in the log:\n%s", secrets[i], text);
    free(text);
}
