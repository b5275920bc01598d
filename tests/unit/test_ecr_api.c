/*
 * Unit tests for proxy/ecr/ecr_api.c: the JSON 1.1 POST and its headers, a SigV4 signature on
 * every attempt that verifies against what the server received, ThrottlingException retried
 * with backoff, error types from x-amzn-ErrorType and __type, nothing sent without
 * credentials. Live requests against an evhttp server on 127.0.0.1 served by the same loop.
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

#include "creds.h"
#include "ecr_api.h"
#include "log.h"
#include "sigv4.h"
#include "transport.h"
#include "util.h"

#define AK "AKIDUNITTESTECRAPI01"
#define SK "unit-test-secret-key-for-ecr-api-000000"

static struct event_base *base;
static struct evhttp *http;
static struct transport *tp;
static struct creds *cr;
static char url[96], host[64];
static int with_keys;

/* What the server answers next: a list of (status, x-amzn-ErrorType or NULL, body). */
struct answer {
    int status;
    const char *error_type;
    const char *body;
};
static const struct answer *script;
static int nscript, nseen, verified, bad_sig;
static char seen_target[8][160], seen_ctype[8][80], seen_body[8][256];

static const char *fake_getenv(const char *name)
{
    if (!with_keys)
        return strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0 ? "true" : NULL;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return AK;
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return SK;
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    return NULL;
}

/* Recompute the signature from what arrived: the Authorization must be exactly that. */
static int signature_ok(struct evhttp_request *req, const char *body, size_t len)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *auth = evhttp_find_header(in, "Authorization");
    const char *date = evhttp_find_header(in, "X-Amz-Date");
    struct sigv4_header h[3] = {{"Host", evhttp_find_header(in, "Host")},
                                {"Content-Type", evhttp_find_header(in, "Content-Type")},
                                {"X-Amz-Target", evhttp_find_header(in, "X-Amz-Target")}};
    struct sigv4_request rq = {0};
    struct sigv4_credentials c = {AK, SK, NULL, NULL};
    struct sigv4_scope sc = {"us-west-2", "ecr", date, 0};
    struct sigv4_signed sg;
    char hash[SIGV4_HEX_LEN + 1];
    char *err = NULL;
    int ok;

    if (auth == NULL || date == NULL || h[0].sh_value == NULL || h[1].sh_value == NULL ||
        h[2].sh_value == NULL)
        return 0;
    sigv4_payload_hash(body, len, hash);
    rq.sr_method = "POST";
    rq.sr_path = "/";
    rq.sr_headers = h;
    rq.sr_nheaders = 3;
    rq.sr_payload_hash = hash;
    memset(&sg, 0, sizeof(sg));
    if (sigv4_sign(&rq, &c, &sc, &sg, &err) != 0) {
        free(err);
        return 0;
    }
    ok = strcmp(sg.sg_authorization, auth) == 0;
    sigv4_signed_free(&sg);
    return ok;
}

static void serve(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *ib = evhttp_request_get_input_buffer(req), *ob = evbuffer_new();
    size_t len = evbuffer_get_length(ib);
    char body[256] = "";
    const struct answer *a;
    int i = nseen++;

    (void)arg;
    cr_assert_lt(i, 8);
    if (len < sizeof(body))
        evbuffer_copyout(ib, body, len);
    snprintf(seen_target[i], sizeof(seen_target[i]), "%s",
             evhttp_find_header(in, "X-Amz-Target") ? evhttp_find_header(in, "X-Amz-Target") : "");
    snprintf(seen_ctype[i], sizeof(seen_ctype[i]), "%s",
             evhttp_find_header(in, "Content-Type") ? evhttp_find_header(in, "Content-Type") : "");
    snprintf(seen_body[i], sizeof(seen_body[i]), "%s", body);
    if (signature_ok(req, body, len))
        verified++;
    else
        bad_sig++;
    a = &script[i < nscript ? i : nscript - 1];
    if (a->error_type != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "x-amzn-ErrorType",
                          a->error_type);
    evbuffer_add(ob, a->body, strlen(a->body));
    evhttp_send_reply(req, a->status, "X", ob);
    evbuffer_free(ob);
}

/* What the callback saw. */
static int done;
static struct {
    int ok, status;
    char type[128], message[256], first_key[64];
} got;

static void call_cb(void *arg, const struct ecr_api_result *r)
{
    const char *k;
    json_t *v;

    (void)arg;
    done++;
    got.ok = r->ok;
    got.status = r->status;
    snprintf(got.type, sizeof(got.type), "%s", r->type ? r->type : "");
    snprintf(got.message, sizeof(got.message), "%s", r->message ? r->message : "");
    got.first_key[0] = '\0';
    if (r->ok) {
        json_object_foreach(r->body, k, v)
        {
            snprintf(got.first_key, sizeof(got.first_key), "%s", k);
            break;
        }
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
    event_base_loopbreak(base);
}

static void run_until_done(int seconds)
{
    int expired = 0;
    struct event *dl = evtimer_new(base, deadline_cb, &expired);
    struct timeval tv = {seconds, 0};

    evtimer_add(dl, &tv);
    while (!done && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(dl);
}

static struct ecr_api *api_for(const struct answer *s, int n)
{
    struct ecr_api *a;
    char *err = NULL;
    struct aws_credentials ac;
    int i;

    script = s;
    nscript = n;
    creds_start(cr);
    /* Environment keys are held at once, or after one turn of the loop. */
    for (i = 0; i < 100 && with_keys && creds_get(cr, &ac) != 1; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    a = ecr_api_create(base, tp, cr, url, "us-west-2", NULL, &err);
    cr_assert_not_null(a, "%s", err ? err : "");
    return a;
}

static void setup_common(int keys)
{
    static const struct upstream_settings set = {2000, 10, 5, 5};
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    struct creds_options co = {0};
    char *err = NULL;

    with_keys = keys;
    nseen = verified = bad_sig = done = 0;
    memset(&got, 0, sizeof(got));
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    base = event_base_new();
    http = evhttp_new(base);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST);
    evhttp_set_gencb(http, serve, NULL);
    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    snprintf(host, sizeof(host), "127.0.0.1:%d", ntohs(sin.sin_port));
    snprintf(url, sizeof(url), "http://%s", host);
    tp = transport_create(base, &set, &err);
    cr_assert_not_null(tp);
    co.co_getenv = fake_getenv;
    cr = creds_create(base, tp, &co, &err);
    cr_assert_not_null(cr, "%s", err ? err : "");
}

static void setup(void)
{
    setup_common(1);
}

static void setup_nokeys(void)
{
    setup_common(0);
}

static void teardown(void)
{
    creds_destroy(cr);
    transport_destroy(tp);
    evhttp_free(http);
    event_base_free(base);
}

TestSuite(ecr_api, .init = setup, .fini = teardown, .timeout = 30);

Test(ecr_api, a_call_is_a_signed_json_11_post)
{
    static const struct answer s[] = {
        {200, NULL, "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOng=\"}]}"}};
    struct ecr_api *a = api_for(s, 1);

    ecr_api_call(a, "GetAuthorizationToken", json_pack("{s:[s]}", "registryIds", "123456789012"),
                 call_cb, NULL);
    cr_assert_eq(done, 0, "the callback ran inside ecr_api_call");
    run_until_done(10);
    cr_assert_eq(done, 1);
    cr_assert(got.ok);
    cr_assert_eq(got.status, 200);
    cr_assert_str_eq(got.first_key, "authorizationData");
    cr_assert_eq(nseen, 1);
    cr_assert_eq(verified, 1, "the signature does not verify against what was sent");
    cr_assert_str_eq(seen_target[0], "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
    cr_assert_str_eq(seen_ctype[0], "application/x-amz-json-1.1");
    cr_assert_str_eq(seen_body[0], "{\"registryIds\":[\"123456789012\"]}");
    ecr_api_destroy(a);
}

Test(ecr_api, throttling_is_retried_and_every_attempt_signed)
{
    static const struct answer s[] = {
        {400, "ThrottlingException:http://internal.amazon.com/coral/com.amazonaws.ecr/",
         "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"},
        {400, NULL, "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}"},
        {200, NULL, "{\"repositories\":[]}"}};
    struct ecr_api *a = api_for(s, 3);
    struct ecr_api_stats st;

    ecr_api_call(a, "DescribeRepositories", json_object(), call_cb, NULL);
    run_until_done(15);
    cr_assert_eq(done, 1);
    cr_assert(got.ok, "%s %s", got.type, got.message);
    cr_assert_eq(nseen, 3);
    cr_assert_eq(verified, 3, "a retry went out unsigned or with a stale signature");
    ecr_api_get_stats(a, &st);
    cr_assert_eq(st.as_throttled, 2);
    cr_assert_eq(st.as_failed, 0);
    ecr_api_destroy(a);
}

Test(ecr_api, error_types_from_the_header_then_the_body)
{
    static const struct answer s1[] = {
        {400, "RepositoryNotFoundException:http://internal.amazon.com/coral/com.amazonaws.ecr/",
         "{\"message\":\"The repository does not exist\"}"}};
    static const struct answer s2[] = {
        {400, NULL,
         "{\"__type\":\"com.amazonaws.ecr#RepositoryAlreadyExistsException\","
         "\"message\":\"exists\"}"}};
    struct ecr_api *a = api_for(s1, 1);

    ecr_api_call(a, "DescribeRepositories", json_object(), call_cb, NULL);
    run_until_done(10);
    cr_assert(!got.ok);
    cr_assert_eq(got.status, 400);
    cr_assert_str_eq(got.type, "RepositoryNotFoundException");
    cr_assert_str_eq(got.message, "The repository does not exist");
    done = 0;
    nseen = 0;
    script = s2;
    ecr_api_call(a, "CreateRepository", json_object(), call_cb, NULL);
    run_until_done(10);
    cr_assert(!got.ok);
    cr_assert_str_eq(got.type, "RepositoryAlreadyExistsException");
    ecr_api_destroy(a);
}

Test(ecr_api, server_errors_are_retried_by_the_transport)
{
    static const struct answer s[] = {{500, NULL, "{}"}, {200, NULL, "{\"ok\":1}"}};
    struct ecr_api *a = api_for(s, 2);

    ecr_api_call(a, "DescribeRepositories", json_object(), call_cb, NULL);
    run_until_done(10);
    cr_assert(got.ok);
    cr_assert_eq(nseen, 2);
    cr_assert_eq(verified, 2);
    ecr_api_destroy(a);
}

Test(ecr_api, a_cancelled_call_never_calls_back)
{
    static const struct answer s[] = {{200, NULL, "{}"}};
    struct ecr_api *a = api_for(s, 1);
    struct ecr_call *c = ecr_api_call(a, "DescribeRepositories", json_object(), call_cb, NULL);

    ecr_call_cancel(c);
    run_until_done(1);
    cr_assert_eq(done, 0);
    ecr_api_destroy(a);
}

Test(ecr_api, error_type_forms)
{
    char out[64];

    ecr_api_error_type("ThrottlingException:http://internal.amazon.com/coral/x/", out, sizeof(out));
    cr_assert_str_eq(out, "ThrottlingException");
    ecr_api_error_type("com.amazonaws.ecr#ImageTagAlreadyExistsException", out, sizeof(out));
    cr_assert_str_eq(out, "ImageTagAlreadyExistsException");
    ecr_api_error_type("Plain", out, sizeof(out));
    cr_assert_str_eq(out, "Plain");
    ecr_api_error_type("VeryLongTypeName", out, 5);
    cr_assert_str_eq(out, "Very");
}

Test(ecr_api, an_endpoint_that_is_no_url_is_refused)
{
    char *err = NULL;

    cr_assert_null(ecr_api_create(base, tp, cr, "ftp://x", "us-west-2", NULL, &err));
    cr_assert_not_null(err);
    free(err);
}

Test(ecr_api, nothing_is_sent_without_credentials, .init = setup_nokeys)
{
    static const struct answer s[] = {{200, NULL, "{}"}};
    struct ecr_api *a = api_for(s, 1);

    ecr_api_call(a, "GetAuthorizationToken", json_object(), call_cb, NULL);
    run_until_done(10);
    cr_assert_eq(done, 1);
    cr_assert(!got.ok);
    cr_assert_eq(nseen, 0, "a request went out unsigned");
    cr_assert(strstr(got.message, "credentials") != NULL, "%s", got.message);
    ecr_api_destroy(a);
}
