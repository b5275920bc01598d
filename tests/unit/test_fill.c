/*
 * Unit tests for proxy/fill/: the follower protocol end to end inside one process. An evhttp
 * server on 127.0.0.1 plays the upstream registry (counting what it served, and sending the
 * body when the test says), a store lives in a temp dir, and a real server (server_create on
 * 127.0.0.1, any free port) answers GET /b/<digest> with fill_find or fill_start, then
 * fill_follow. The followers are real HTTP clients (evhttp_connection requests) on the same
 * loop. Every test checks the bytes each client got, how many upstream fetches there were,
 * what the store holds, and that every fill was freed (fs->live; the sanitizer build checks
 * the rest).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_file.h"
#include "fill-int.h"
#include "fill.h"
#include "log.h"
#include "registry.h"
#include "server.h"
#include "store.h"
#include "util.h"

#define BODY_LEN (3 * 1024 * 1024 + 123) /* several of the upstream layer's 256 KiB batches */
#define HALF (BODY_LEN / 2)
#define WAIT_MS 10000
#define MAX_CLIENTS 4

static struct config *cfg;
static struct server *srv;
static struct event_base *base;
static struct store *st;
static struct upstream *up;
static struct fills *fs;
static struct upstream_origin origin;
static char dir[256], upstream_url[64], prefix[] = "t";
static int front_port;

static unsigned char *body; /* what the digest is of */
static char digest[80];
static int front_handled; /* requests the front server handed to the fills */

/* The upstream: what it was asked, and the response it is sending. */
static struct evhttp *uphttp;
static int up_hits;
static struct evhttp_request *up_req; /* the GET being answered, when the test says */
static int up_corrupt;                /* flip one byte of what is sent */
static int use_fallback;              /* the front starts fills on "first", then "r" */
static int first_hits;                /* GETs of /v2/first/...: answered 404 at once */
static int fallbacks;                 /* fills_on_fallback calls */
static int done_source;

/* The done callback. */
static int done_calls, done_ok;
static int64_t done_size;

/* A following client. */
struct client {
    struct evhttp_connection *evcon;
    int done;   /* the request callback ran */
    int failed; /* without a complete response */
    int status;
    unsigned char *got;
    size_t len;
    char content_range[96];
    int left; /* the test closed its connection mid-transfer */
};
static struct client clients[MAX_CLIENTS];

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/*
 * Run the loop until <cond>() holds: at most <ms> milliseconds and 200000 turns (a 10 ms tick
 * bounds each turn). Returns what <cond>() says at the end.
 */
static int wait_for(int (*cond)(void), int ms)
{
    int64_t end = util_mono_usec() + (int64_t)ms * 1000;
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};

    event_add(tick, &tv);
    for (int i = 0; i < 200000 && !cond() && util_mono_usec() < end; i++)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return cond();
}

static int cond_never(void)
{
    return 0;
}

static void run_for(int ms)
{
    (void)wait_for(cond_never, ms);
}

/* ---- the upstream ----------------------------------------------------------------------- */

static void up_serve(struct evhttp_request *req, void *arg)
{
    char want[128];

    (void)arg;
    snprintf(want, sizeof(want), "/v2/first/blobs/%s", digest);
    if (strcmp(evhttp_request_get_uri(req), want) == 0) {
        /* The first origin (ECR in the daemon) has not got it. */
        struct evbuffer *b = evbuffer_new();
        first_hits++;
        evbuffer_add_printf(b, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}");
        evhttp_send_reply(req, 404, "Not Found", b);
        evbuffer_free(b);
        return;
    }
    snprintf(want, sizeof(want), "/v2/r/blobs/%s", digest);
    if (strcmp(evhttp_request_get_uri(req), want) != 0) {
        evhttp_send_error(req, 400, "unexpected path");
        return;
    }
    up_hits++;
    up_req = req;
}

/* Upstream answers the held GET with 404. */
static void up_not_found(void)
{
    struct evbuffer *b = evbuffer_new();

    cr_assert_not_null(up_req, "upstream was never asked");
    evbuffer_add_printf(b, "{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}");
    evhttp_send_reply(up_req, 404, "Not Found", b);
    evbuffer_free(b);
    up_req = NULL;
}

/* Upstream answers the held GET: 200 with Content-Length, no body yet. */
static void up_start(void)
{
    char n[32];

    cr_assert_not_null(up_req, "upstream was never asked");
    snprintf(n, sizeof(n), "%d", BODY_LEN);
    evhttp_add_header(evhttp_request_get_output_headers(up_req), "Content-Length", n);
    evhttp_add_header(evhttp_request_get_output_headers(up_req), "Content-Type",
                      "application/octet-stream");
    evhttp_send_reply_start(up_req, 200, "OK");
}

/* Upstream sends body bytes [from, to). */
static void up_send(size_t from, size_t to)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body + from, to - from);
    if (up_corrupt && from <= BODY_LEN / 3 && BODY_LEN / 3 < to) {
        unsigned char *p = evbuffer_pullup(b, -1);
        p[BODY_LEN / 3 - from] ^= 0x55;
    }
    evhttp_send_reply_chunk(up_req, b);
    evbuffer_free(b);
}

static void up_end(void)
{
    evhttp_send_reply_end(up_req);
    up_req = NULL;
}

static void fell_back(void *arg, const char *d, int status, const char *err)
{
    (void)arg;
    (void)err;
    cr_assert_str_eq(d, digest);
    cr_assert_eq(status, 404);
    fallbacks++;
}

/* ---- the front: a real server whose handler follows fills -------------------------------- */

static void front(void *arg, struct evhttp_request *req, struct exchange *x)
{
    const char *uri = evhttp_request_get_uri(req);
    struct fill *f;
    char path[128];

    (void)arg;
    cr_assert_eq(strncmp(uri, "/b/", 3), 0, "%s", uri);
    front_handled++;
    f = fill_find(fs, uri + 3);
    if (f == NULL) {
        struct upstream_target t;
        memset(&t, 0, sizeof(t));
        snprintf(path, sizeof(path), "/v2/r/blobs/%s", uri + 3);
        t.ut_origin = &origin;
        t.ut_name = "r";
        t.ut_path = path;
        t.ut_max_retries = 0;
        t.ut_max_body = -1;
        if (use_fallback) {
            struct upstream_target first = t;
            char fpath[128];
            snprintf(fpath, sizeof(fpath), "/v2/first/blobs/%s", uri + 3);
            first.ut_name = "first";
            first.ut_path = fpath;
            f = fill_start_from(fs, &first, &t, uri + 3, 7);
        } else {
            f = fill_start(fs, &t, uri + 3, 7);
        }
    }
    fill_follow(f, req, x);
}

static void fill_done(void *arg, const char *d, int ok, int64_t size, int64_t repo, int source)
{
    (void)arg;
    cr_assert_str_eq(d, digest);
    cr_assert_eq(repo, 7);
    done_source = source;
    cr_assert_eq(source, use_fallback ? 2 : 0, "0: fill_start; 2: the fallback served it");
    done_calls++;
    done_ok += ok;
    done_size = size;
}

/* ---- clients ---------------------------------------------------------------------------- */

static void client_take(struct client *c, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);

    cr_assert_leq(c->len + n, (size_t)BODY_LEN, "a client got more than the body");
    evbuffer_remove(in, c->got + c->len, n);
    c->len += n;
}

static void client_chunk_cb(struct evhttp_request *req, void *arg)
{
    client_take(arg, req);
}

static void client_done_cb(struct evhttp_request *req, void *arg)
{
    struct client *c = arg;
    const char *cr;

    c->done = 1;
    if (req == NULL || evhttp_request_get_response_code(req) == 0) {
        c->failed = 1;
        return;
    }
    client_take(c, req);
    c->status = evhttp_request_get_response_code(req);
    cr = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Range");
    snprintf(c->content_range, sizeof(c->content_range), "%s", cr != NULL ? cr : "");
}

static void client_error_cb(enum evhttp_request_error e, void *arg)
{
    struct client *c = arg;

    (void)e;
    c->failed = 1;
}

/* Client <i> asks for the blob, with <range> (may be NULL). */
static void client_get(int i, const char *range)
{
    struct client *c = &clients[i];
    struct evhttp_request *req;
    char uri[128];

    c->evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1", (unsigned short)front_port);
    cr_assert_not_null(c->evcon);
    req = evhttp_request_new(client_done_cb, c);
    evhttp_request_set_chunked_cb(req, client_chunk_cb);
    evhttp_request_set_error_cb(req, client_error_cb);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "t");
    if (range != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Range", range);
    snprintf(uri, sizeof(uri), "/b/%s", digest);
    cr_assert_eq(evhttp_make_request(c->evcon, req, EVHTTP_REQ_GET, uri), 0);
}

/* Client <i> goes away mid-transfer. */
static void client_leave(int i)
{
    evhttp_connection_free(clients[i].evcon);
    clients[i].evcon = NULL;
    clients[i].left = 1;
}

/* Client <i> got exactly the body bytes [from, to) with <status>. */
static void assert_got(int i, int status, size_t from, size_t to)
{
    struct client *c = &clients[i];

    cr_assert(c->done && !c->failed, "client %d: no complete response", i);
    cr_assert_eq(c->status, status, "client %d: status %d", i, c->status);
    cr_assert_eq(c->len, to - from, "client %d: %zu bytes, want %zu", i, c->len, to - from);
    cr_assert_eq(memcmp(c->got, body + from, to - from), 0, "client %d: wrong bytes", i);
}

static int ndone(void)
{
    int n = 0;

    for (int i = 0; i < MAX_CLIENTS; i++)
        n += clients[i].done;
    return n;
}

static int cond_two_joined(void)
{
    return front_handled >= 2 && up_req != NULL;
}
static int cond_three_joined(void)
{
    return front_handled >= 3 && up_req != NULL;
}
static int cond_one_joined(void)
{
    return front_handled >= 1 && up_req != NULL;
}
static int cond_committed(void)
{
    return done_calls >= 1;
}
static int cond_all_freed(void)
{
    return fs->live == 0;
}
static int cond_c0_has_bytes(void)
{
    return clients[0].len > 0;
}
static int cond_three_have_bytes(void)
{
    return clients[0].len > 0 && clients[1].len > 0 && clients[2].len > 0;
}
static int cond_two_done(void)
{
    return ndone() >= 2;
}
static int cond_three_done(void)
{
    return ndone() >= 3;
}
static int cond_c1_short_by_one(void)
{
    return clients[1].len == 1999;
}

/* The followers of the fill in progress, or -1 when there is none. */
static int followers(void)
{
    struct fill *f = fill_find(fs, digest);
    int n = 0;

    if (f == NULL)
        return -1;
    for (struct follower *fw = f->followers; fw != NULL; fw = fw->next)
        n++;
    return n;
}

static int cond_two_followers(void)
{
    return followers() == 2;
}

/* Files left in DATA_DIR/tmp. */
static int tmp_files(void)
{
    char path[512];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "%s/tmp", dir);
    d = opendir(path);
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static struct fill_stats stats(void)
{
    struct fill_stats s;

    fills_get_stats(fs, &s);
    return s;
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void make_body(void)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int off;

    body = malloc(BODY_LEN);
    cr_assert_not_null(body);
    for (size_t i = 0; i < BODY_LEN; i++)
        body[i] = (unsigned char)((i * 131 + (i >> 12)) & 0xff);
    EVP_Digest(body, BODY_LEN, md, &n, EVP_sha256(), NULL);
    off = snprintf(digest, sizeof(digest), "sha256:");
    for (unsigned i = 0; i < n; i++)
        off += snprintf(digest + off, sizeof(digest) - (size_t)off, "%02x", md[i]);
}

static void setup(void)
{
    /* Connect within 2 s, stall after 10 s, back off from 5 ms, wait out Retry-After <= 5 s. */
    static const struct upstream_settings set = {2000, 10, 5, 5};
    const char *tmp = getenv("TMPDIR");
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *err = NULL;

    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
    make_body();
    memset(clients, 0, sizeof(clients));
    for (int i = 0; i < MAX_CLIENTS; i++) {
        clients[i].got = malloc(BODY_LEN);
        cr_assert_not_null(clients[i].got);
    }
    snprintf(dir, sizeof(dir), "%s/test_fill.XXXXXX", tmp != NULL ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    cfg = config_default();
    free(cfg->cfg_data_dir);
    cfg->cfg_data_dir = xstrdup(dir);
    srv = server_create(cfg, &err);
    cr_assert_not_null(srv, "%s", err ? err : "");
    base = server_base(srv);
    st = store_open(dir, &err);
    cr_assert_not_null(st, "%s", err ? err : "");

    uphttp = evhttp_new(base);
    evhttp_set_gencb(uphttp, up_serve, NULL);
    bs = evhttp_bind_socket_with_handle(uphttp, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    snprintf(upstream_url, sizeof(upstream_url), "http://127.0.0.1:%d", ntohs(sin.sin_port));
    memset(&origin, 0, sizeof(origin));
    origin.uo_name = prefix;
    origin.uo_base_url = upstream_url;
    up = upstream_create(base, &set, &err);
    cr_assert_not_null(up, "%s", err ? err : "");

    fs = fills_create(base, st, up, fill_done, NULL);
    cr_assert_not_null(fs);
    fills_on_fallback(fs, fell_back);
    cr_assert_eq(server_listen_at(srv, "127.0.0.1", 0, front, NULL, &err), 0, "%s", err ? err : "");
    front_port = server_port(srv);
    cr_assert_gt(front_port, 0);

    front_handled = up_hits = up_corrupt = 0;
    use_fallback = first_hits = fallbacks = 0;
    done_source = -1;
    up_req = NULL;
    done_calls = done_ok = 0;
    done_size = -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* As main does it: connections (their gone callbacks reach the fills), then the fills. */
static void teardown(void)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (clients[i].evcon != NULL)
            evhttp_connection_free(clients[i].evcon);
        free(clients[i].got);
    }
    server_close(srv);
    fills_drain(fs);
    fills_destroy(fs);
    upstream_destroy(up);
    evhttp_free(uphttp);
    store_close(st);
    server_destroy(srv);
    config_free(cfg);
    free(body);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(fill, .init = setup, .fini = teardown, .timeout = 60);

/* ---- tests ------------------------------------------------------------------------------ */

Test(fill, two_followers_one_fetch)
{
    client_get(0, NULL);
    client_get(1, NULL);
    cr_assert(wait_for(cond_two_joined, WAIT_MS), "handled %d, upstream asked %d", front_handled,
              up_hits);
    cr_assert_eq(up_hits, 1);
    up_start();
    up_send(0, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    assert_got(0, 200, 0, BODY_LEN);
    assert_got(1, 200, 0, BODY_LEN);
    cr_assert(wait_for(cond_committed, WAIT_MS), "never committed");
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(done_ok, 1);
    cr_assert_eq(done_size, BODY_LEN);
    cr_assert_eq(up_hits, 1, "upstream fetched %d times", up_hits);
    cr_assert(store_has(st, digest));
    cr_assert_eq(tmp_files(), 0);
    cr_assert_eq(stats().fs_started, 1);
    cr_assert_eq(stats().fs_joined, 2);
    cr_assert_eq(stats().fs_completed, 1);
    cr_assert_eq(stats().fs_failed, 0);
    cr_assert_eq(stats().fs_bytes_sent, 2 * (uint64_t)BODY_LEN);
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
    cr_assert_null(fill_find(fs, digest));
}

/*
 * fill_start_from: the first origin (ECR in the daemon) answers 404 before any byte; the same
 * fill goes on with the fallback, and both followers, who never saw the 404, get the body
 * from it: one fill, one fetch of each origin, the done callback says the fallback served it.
 */
Test(fill, the_fallback_serves_what_the_first_origin_has_not)
{
    use_fallback = 1;
    client_get(0, NULL);
    client_get(1, NULL);
    cr_assert(wait_for(cond_two_joined, WAIT_MS), "handled %d, fallback asked %d", front_handled,
              up_hits);
    cr_assert_eq(first_hits, 1, "the first origin was asked %d times", first_hits);
    cr_assert_eq(fallbacks, 1);
    cr_assert_eq(up_hits, 1);
    up_start();
    up_send(0, HALF);
    cr_assert(wait_for(cond_c0_has_bytes, WAIT_MS), "no bytes reached the first client");
    up_send(HALF, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    assert_got(0, 200, 0, BODY_LEN);
    assert_got(1, 200, 0, BODY_LEN);
    cr_assert(wait_for(cond_committed, WAIT_MS), "never committed");
    cr_assert_eq(done_ok, 1);
    cr_assert_eq(done_source, 2);
    cr_assert(store_has(st, digest));
    cr_assert_eq(stats().fs_started, 1);
    cr_assert_eq(stats().fs_failed, 0);
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}

Test(fill, late_joiner_gets_the_whole_body)
{
    client_get(0, NULL);
    cr_assert(wait_for(cond_one_joined, WAIT_MS));
    up_start();
    up_send(0, HALF);
    cr_assert(wait_for(cond_c0_has_bytes, WAIT_MS), "the first client got nothing");
    client_get(1, NULL);
    cr_assert(wait_for(cond_two_followers, WAIT_MS), "the late client never joined");
    cr_assert_eq(up_hits, 1);
    up_send(HALF, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    assert_got(0, 200, 0, BODY_LEN);
    assert_got(1, 200, 0, BODY_LEN);
    cr_assert(wait_for(cond_committed, WAIT_MS));
    cr_assert_eq(done_ok, 1);
    cr_assert_eq(up_hits, 1);
    cr_assert(store_has(st, digest));
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}

Test(fill, range_followers_get_their_slice)
{
    client_get(0, NULL);
    cr_assert(wait_for(cond_one_joined, WAIT_MS));
    up_start();
    up_send(0, HALF);
    cr_assert(wait_for(cond_c0_has_bytes, WAIT_MS));
    /* A range that has landed already: all but its last byte, which waits for the digest. */
    client_get(1, "bytes=1000-2999");
    client_get(2, "bytes=-100");
    cr_assert(wait_for(cond_c1_short_by_one, WAIT_MS), "range client has %zu bytes",
              clients[1].len);
    run_for(100);
    cr_assert_eq(clients[1].len, 1999);
    cr_assert_not(clients[1].done, "a range finished before the fill was verified");
    up_send(HALF, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_three_done, WAIT_MS), "clients done: %d", ndone());
    assert_got(0, 200, 0, BODY_LEN);
    assert_got(1, 206, 1000, 3000);
    assert_got(2, 206, BODY_LEN - 100, BODY_LEN);
    {
        char want[96];
        snprintf(want, sizeof(want), "bytes 1000-2999/%d", BODY_LEN);
        cr_assert_str_eq(clients[1].content_range, want);
        snprintf(want, sizeof(want), "bytes %d-%d/%d", BODY_LEN - 100, BODY_LEN - 1, BODY_LEN);
        cr_assert_str_eq(clients[2].content_range, want);
    }
    cr_assert_eq(up_hits, 1);
    cr_assert(wait_for(cond_committed, WAIT_MS));
    cr_assert_eq(done_ok, 1);
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}

Test(fill, a_follower_leaving_disturbs_no_one)
{
    client_get(0, NULL);
    client_get(1, NULL);
    client_get(2, NULL);
    cr_assert(wait_for(cond_three_joined, WAIT_MS));
    up_start();
    up_send(0, HALF);
    cr_assert(wait_for(cond_three_have_bytes, WAIT_MS), "bytes: %zu %zu %zu", clients[0].len,
              clients[1].len, clients[2].len);
    cr_assert_eq(followers(), 3);
    client_leave(1);
    cr_assert(wait_for(cond_two_followers, WAIT_MS), "followers: %d", followers());
    up_send(HALF, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    assert_got(0, 200, 0, BODY_LEN);
    assert_got(2, 200, 0, BODY_LEN);
    cr_assert_not(clients[1].done);
    cr_assert(wait_for(cond_committed, WAIT_MS), "never committed");
    cr_assert_eq(done_ok, 1);
    cr_assert(store_has(st, digest));
    cr_assert_eq(up_hits, 1);
    cr_assert_eq(stats().fs_joined, 3);
    cr_assert_eq(stats().fs_completed, 1);
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}

Test(fill, digest_mismatch_commits_nothing_and_cuts_the_followers_short)
{
    up_corrupt = 1;
    client_get(0, NULL);
    client_get(1, NULL);
    cr_assert(wait_for(cond_two_joined, WAIT_MS));
    up_start();
    up_send(0, HALF);
    up_send(HALF, BODY_LEN);
    up_end();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    for (int i = 0; i < 2; i++) {
        cr_assert(clients[i].failed, "client %d got a complete response (status %d, %zu bytes)", i,
                  clients[i].status, clients[i].len);
        cr_assert_lt(clients[i].len, (size_t)BODY_LEN, "client %d got every byte", i);
    }
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(done_ok, 0);
    cr_assert_not(store_has(st, digest));
    cr_assert_eq(tmp_files(), 0);
    cr_assert_eq(stats().fs_failed, 1);
    cr_assert_eq(stats().fs_completed, 0);
    cr_assert_eq(up_hits, 1);
    cr_assert_null(fill_find(fs, digest));
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}

Test(fill, upstream_error_reaches_every_follower)
{
    client_get(0, NULL);
    client_get(1, NULL);
    cr_assert(wait_for(cond_two_joined, WAIT_MS));
    up_not_found();
    cr_assert(wait_for(cond_two_done, WAIT_MS), "clients done: %d", ndone());
    for (int i = 0; i < 2; i++) {
        cr_assert_not(clients[i].failed, "client %d", i);
        cr_assert_eq(clients[i].status, 404, "client %d: %d", i, clients[i].status);
        clients[i].got[clients[i].len < BODY_LEN ? clients[i].len : BODY_LEN - 1] = '\0';
        cr_assert_not_null(strstr((char *)clients[i].got, "BLOB_UNKNOWN"), "client %d: %s", i,
                           (char *)clients[i].got);
    }
    cr_assert_eq(up_hits, 1);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(done_ok, 0);
    cr_assert_eq(stats().fs_failed, 1);
    cr_assert_not(store_has(st, digest));
    cr_assert_eq(tmp_files(), 0);
    cr_assert(wait_for(cond_all_freed, WAIT_MS), "%lld fills not freed", (long long)fs->live);
}
