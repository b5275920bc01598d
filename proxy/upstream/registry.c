/*
 * The upstream client: libcurl multi on the libevent loop (curl's socket and timer callbacks
 * become libevent events), with token auth, safe redirects and retries.
 *
 * An xfer walks through HTTP exchanges until one is final:
 *   send ─▶ 401 Bearer ─▶ fetch a token (joined with any fetch in flight for the same
 *           upstream and scope) ─▶ send again with the token (once)
 *        ─▶ 401 Basic ─▶ send again with the rule's credentials (once)
 *        ─▶ 3xx ─▶ check the Location against the rule's redirect policy ─▶ send there,
 *           without Authorization (at most 5 hops)
 *        ─▶ connect error / 5xx / 429, nothing delivered yet ─▶ wait (Retry-After or
 *           backoff) ─▶ send again (ut_max_retries times)
 *        ─▶ anything else is final: 2xx bodies stream to the caller as they arrive.
 * Completed exchanges are handled in check_multi_info, outside libcurl's callbacks, so the
 * caller's on_done may start or cancel xfers freely.
 */
#include "config.h"

#include "registry.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth.h"
#include "config_file.h"
#include "log.h"
#include "util.h"

#define UPSTREAM_MAGIC 0x55505354u /* "UPST" */
#define XFER_MAGIC 0x58464552u     /* "XFER" */
#define TOKEN_FETCH_MAGIC 0x544f4b46u /* "TOKF" */
#define ERR_BODY_MAX (16 * 1024)
#define TOKEN_BODY_MAX (64 * 1024)
#define MAX_REDIRECTS 5
/*
 * A body delivers at most this much per turn of the event loop; then the xfer pauses until
 * the next turn. libcurl otherwise drains a fast upstream socket in one go (tens of MiB on
 * loopback) before the loop gets to write a single byte of it to the waiting clients.
 */
#define UPSTREAM_BURST_MAX (1024 * 1024)
/*
 * libcurl hands a body over in pieces of at most 16 KiB (CURL_MAX_WRITE_SIZE) however much one
 * read returned. Pieces are gathered per xfer and given to on_data in batches of up to this
 * much: when the batch is full, and for what is left when libcurl returns to the loop. A cold
 * fill then makes one write, one hash hand-off and one pump of its followers per batch rather
 * than per 16 KiB (6400 pwrites for 100 MiB before, 410 after).
 */
#define UPSTREAM_BATCH (256 * 1024)

struct token_fetch;

struct upstream {
    unsigned magic;
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct upstream_settings set;
    struct auth_cache *tokens;
    struct upstream_xfer *xfers;       /* every live xfer, linked */
    struct token_fetch *fetches;       /* token fetches in flight */
    struct upstream_stats stats;
    size_t burst;                      /* body bytes delivered in this turn of the loop */
    struct upstream_xfer *batched;     /* xfers holding body bytes not yet given to on_data */
};

enum xfer_kind { XFER_CALLER = 0, XFER_TOKEN };

struct upstream_xfer {
    unsigned magic;
    struct upstream *up;
    struct upstream_xfer *next, *prev;
    enum xfer_kind kind;
    struct token_fetch *token_for;     /* XFER_TOKEN: the fetch it serves */

    /* The target, owned copies. */
    const struct config_rule *rule;
    char *name, *path, *accept, *scope;
    char *auth_key;          /* token cache key: the rule, not just the upstream, so one rule's
                                credentials never lend their tokens to another rule */
    int head, max_retries;
    int64_t max_body;

    struct upstream_callbacks cbs;
    void *arg;

    /* The exchange in progress. */
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;               /* current URL (the upstream's, or a redirect target) */
    int redirected;          /* the current URL is a redirect target: no Authorization */
    int redirects, retries, token_tried, basic_tried; /* retries: after errors, 5xx, 429 */
    int refused_addr;        /* the address check refused the connection */
    int via_proxy;           /* an egress proxy carries this exchange: its address is the
                                proxy's, and the proxy resolves the name */
    int delivered;           /* on_headers was called */
    int aborted;             /* a callback returned -1 */
    int too_large;
    int64_t received;
    char *batch;             /* body bytes gathered for on_data (UPSTREAM_BATCH) */
    size_t batch_len, batch_cap;
    int batch_listed;        /* on up->batched */
    struct upstream_xfer *next_batched;
    struct upstream_response resp;
    char *errbody;
    size_t errlen;
    char location[2048];
    struct event *wait;      /* retry backoff or token wait */
    struct event *unpause;   /* ends a pause (UPSTREAM_BURST_MAX) at the next loop turn */
    int paused;
    int waiting_token;
    struct upstream_xfer *next_waiter; /* in a token fetch's waiters list */
};

/* One token fetch for (upstream, scope) and the xfers waiting for it. */
struct token_fetch {
    unsigned magic;
    struct token_fetch *next;
    char *key_upstream, *key_scope;
    struct upstream_xfer *fetcher;
    struct upstream_xfer *waiters;
};

static void xfer_send(struct upstream_xfer *x);
static void xfer_finish(struct upstream_xfer *x, enum upstream_result res, const char *err);
static int target_allowed(const struct config_rule *rule, const char *base, const char *ref,
                          const char *what, char **next_url, char **why);

/* ---- addresses ------------------------------------------------------------------------ */

static int ipv4_private(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
           (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 */
           (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 */
           (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
           (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
           (a & 0xffffff00u) == 0xc0000000u || /* 192.0.0/24 */
           (a & 0xfffe0000u) == 0xc6120000u || /* 198.18/15 */
           (a >> 28) >= 14;                    /* multicast, reserved, broadcast */
}

static int ipv6_private(const struct in6_addr *a)
{
    const uint8_t *b = a->s6_addr;
    static const uint8_t zero[16];

    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
        return 1; /* :: and ::1 */
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        uint32_t v4 = ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
        return ipv4_private(v4);
    }
    return (b[0] & 0xfe) == 0xfc ||                 /* fc00::/7 unique local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 site-local */
           b[0] == 0xff ||                           /* multicast */
           (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* documentation */
           (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b);   /* NAT64 */
}

int upstream_addr_is_private(const char *addr)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (inet_pton(AF_INET, addr, &v4) == 1)
        return ipv4_private(ntohl(v4.s_addr));
    if (inet_pton(AF_INET6, addr, &v6) == 1)
        return ipv6_private(&v6);
    return 1; /* not an address at all: not trusted */
}

static int sockaddr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ipv4_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return ipv6_private(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 1;
}

/* Does redirect target / token realm exchange <x> need its connected address checked? */
static int xfer_checks_address(const struct upstream_xfer *x)
{
    return x->redirected && !x->rule->rule_allow_private_redirects && !x->via_proxy;
}

/*
 * Redirect targets are checked where libcurl opens the socket, after DNS: no rebinding. A
 * connection libcurl reuses from its pool is checked in prereq_cb, before the request goes.
 */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *address)
{
    struct upstream_xfer *x = clientp;

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);

    (void)purpose;
    if (xfer_checks_address(x) && sockaddr_private(&address->addr)) {
        x->refused_addr = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static int prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    struct upstream_xfer *x = clientp;

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);

    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (xfer_checks_address(x) && upstream_addr_is_private(conn_primary_ip)) {
        x->refused_addr = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/*
 * <url> as logs and error bodies may show it: scheme, host and path. A redirect target's
 * query is a presigned URL's signature, and userinfo is a password.
 */
static const char *url_shown(const char *url, char *out, size_t size)
{
    const char *host = strstr(url, "://"), *at, *end;
    size_t k = 0, n;

    host = host != NULL ? host + 3 : url;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    n = (size_t)(host - url);
    if (n >= size)
        n = size - 1;
    memcpy(out, url, n);
    k = n;
    if (at != NULL)
        host = at + 1;
    n = strcspn(host, "?#");
    if (n >= size - k)
        n = size - k - 1;
    memcpy(out + k, host, n);
    out[k + n] = '\0';
    return out;
}

/* <host> as a URL names it ("[::1]" for IPv6) without the brackets, in <out>. */
static void host_unbracketed(const char *host, char *out, size_t size)
{
    size_t n = strlen(host);

    if (host[0] == '[' && n > 2 && n - 2 < size) {
        memcpy(out, host + 1, n - 2);
        out[n - 2] = '\0';
    } else {
        str_copy(out, size, host);
    }
}

/* ---- egress proxy ----------------------------------------------------------------------- */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Is <host> (no brackets) matched by NO_PROXY entry <e> (length n)? Names match by suffix at
 * a dot boundary; IPv4 entries may be CIDR blocks; anything else matches exactly. */
static int no_proxy_entry_matches(const char *host, const char *e, size_t n)
{
    char ent[256];
    const char *slash;
    size_t hl = strlen(host);

    while (n > 0 && *e == '.') {
        e++;
        n--;
    }
    if (n > 1 && e[0] == '[' && e[n - 1] == ']') {
        e++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(ent))
        return 0;
    memcpy(ent, e, n);
    ent[n] = '\0';
    if (strcmp(ent, "*") == 0)
        return 1;
    slash = strchr(ent, '/');
    if (slash != NULL) {
        struct in_addr net, h;
        char *end;
        long bits;
        ent[slash - ent] = '\0';
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || bits < 0 || bits > 32 ||
            inet_pton(AF_INET, ent, &net) != 1 || inet_pton(AF_INET, host, &h) != 1)
            return 0;
        if (bits == 0)
            return 1;
        {
            uint32_t mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
            return (ntohl(net.s_addr) & mask) == (ntohl(h.s_addr) & mask);
        }
    }
    if (strcasecmp(host, ent) == 0)
        return 1;
    return hl > n && host[hl - n - 1] == '.' && strcasecmp(host + hl - n, ent) == 0;
}

/*
 * The egress proxy for <url>, from the environment as curl reads it (http_proxy, HTTP_PROXY
 * for plain http too; https_proxy / HTTPS_PROXY; all_proxy / ALL_PROXY; no_proxy /
 * NO_PROXY), or NULL for a direct connection. Deciding here rather than inside libcurl lets
 * the address check know whether the connected address is the target's or the proxy's.
 */
static const char *proxy_for(const char *url)
{
    const char *p = NULL, *np;
    CURLU *u;
    char *host = NULL;

    if (strncmp(url, "https://", 8) == 0)
        p = env_nonempty("https_proxy") ? env_nonempty("https_proxy") : env_nonempty("HTTPS_PROXY");
    else if (strncmp(url, "http://", 7) == 0)
        p = env_nonempty("http_proxy") ? env_nonempty("http_proxy") : env_nonempty("HTTP_PROXY");
    if (p == NULL)
        p = env_nonempty("all_proxy") ? env_nonempty("all_proxy") : env_nonempty("ALL_PROXY");
    if (p == NULL)
        return NULL;
    np = env_nonempty("no_proxy") ? env_nonempty("no_proxy") : env_nonempty("NO_PROXY");
    if (np == NULL)
        return p;
    u = curl_url();
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != NULL) {
        char h[256];
        host_unbracketed(host, h, sizeof(h));
        for (const char *e = np; *e != '\0';) {
            size_t n;
            while (*e == ',' || *e == ' ' || *e == '\t')
                e++;
            n = strcspn(e, ", \t");
            if (n > 0 && no_proxy_entry_matches(h, e, n)) {
                p = NULL;
                break;
            }
            e += n;
        }
    }
    curl_free(host);
    curl_url_cleanup(u);
    return p;
}

/* ---- libcurl ↔ libevent ----------------------------------------------------------------- */

static void check_multi_info(struct upstream *up);

static void socket_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct upstream *up = arg;
    int running = 0;
    int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) | ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);

    up->burst = 0;
    curl_multi_socket_action(up->multi, fd, action, &running);
    check_multi_info(up);
}

static void unpause_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct upstream_xfer *x = arg;
    struct upstream *up;

    (void)fd;
    (void)kind;
    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);
    up = x->up;
    if (!x->paused || x->easy == NULL)
        return;
    x->paused = 0;
    up->burst = 0;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    check_multi_info(up);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct upstream *up = userp;
    struct event *ev = socketp;
    short kind;

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);

    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_free(ev);
            curl_multi_assign(up->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (ev != NULL) {
        event_del(ev);
        event_assign(ev, up->base, s, kind, socket_event_cb, up);
    } else {
        ev = event_new(up->base, s, kind, socket_event_cb, up);
        curl_multi_assign(up->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static void timer_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct upstream *up = arg;
    int running = 0;

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);

    up->burst = 0;
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(up);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct upstream *up = userp;
    struct timeval tv;

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);

    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(up->timer, &tv);
    return 0;
}

/* ---- one HTTP exchange ------------------------------------------------------------------ */

static void copy_value(char *dst, size_t size, const char *v, size_t len)
{
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    if (len >= size)
        len = size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);

    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return 0;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return 1;
}

static void reset_response(struct upstream_xfer *x)
{
    memset(&x->resp, 0, sizeof(x->resp));
    x->resp.ur_content_length = -1;
    x->location[0] = '\0';
    x->errlen = 0;
    x->received = 0;
}

static int final_2xx(const struct upstream_xfer *x)
{
    return x->resp.ur_status >= 200 && x->resp.ur_status < 300;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
    struct upstream_xfer *x = userdata;
    size_t n = size * nitems;
    const char *v;
    size_t vl;

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);

    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', n);
        reset_response(x);
        if (sp != NULL && (size_t)(sp - line) + 4 <= n)
            x->resp.ur_status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        return n;
    }
    if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        /* End of this response's headers. 1xx responses are followed by another. */
        if (x->resp.ur_status < 200 || !final_2xx(x) || x->kind == XFER_TOKEN)
            return n;
        if (x->max_body >= 0 && x->resp.ur_content_length > x->max_body) {
            x->too_large = 1;
            return 0;
        }
        if (!x->delivered) {
            x->delivered = 1;
            if (x->cbs.on_headers != NULL && x->cbs.on_headers(x->arg, &x->resp) == -1) {
                x->aborted = 1;
                return 0;
            }
        }
        return n;
    }
    if (header_is(line, n, "content-length", &v, &vl)) {
        char buf[32];
        char *end;
        long long cl;
        copy_value(buf, sizeof(buf), v, vl);
        errno = 0;
        cl = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0' && end != buf && cl >= 0)
            x->resp.ur_content_length = cl;
    } else if (header_is(line, n, "content-type", &v, &vl)) {
        copy_value(x->resp.ur_content_type, sizeof(x->resp.ur_content_type), v, vl);
    } else if (header_is(line, n, "docker-content-digest", &v, &vl)) {
        copy_value(x->resp.ur_digest, sizeof(x->resp.ur_digest), v, vl);
    } else if (header_is(line, n, "etag", &v, &vl)) {
        copy_value(x->resp.ur_etag, sizeof(x->resp.ur_etag), v, vl);
    } else if (header_is(line, n, "link", &v, &vl)) {
        copy_value(x->resp.ur_link, sizeof(x->resp.ur_link), v, vl);
    } else if (header_is(line, n, "retry-after", &v, &vl)) {
        copy_value(x->resp.ur_retry_after, sizeof(x->resp.ur_retry_after), v, vl);
    } else if (header_is(line, n, "ratelimit-remaining", &v, &vl)) {
        copy_value(x->resp.ur_ratelimit_remaining, sizeof(x->resp.ur_ratelimit_remaining), v, vl);
    } else if (header_is(line, n, "www-authenticate", &v, &vl)) {
        if (x->resp.ur_www_authenticate[0] == '\0')
            copy_value(x->resp.ur_www_authenticate, sizeof(x->resp.ur_www_authenticate), v, vl);
    } else if (header_is(line, n, "location", &v, &vl)) {
        copy_value(x->location, sizeof(x->location), v, vl);
    }
    return n;
}

/* Give the gathered body bytes to on_data. Returns what on_data returned (0 when empty). */
static int batch_deliver(struct upstream_xfer *x)
{
    size_t n = x->batch_len;

    if (n == 0)
        return 0;
    x->batch_len = 0;
    return x->cbs.on_data(x->arg, x->batch, n);
}

/* Gather <n> body bytes, delivering the batch when it fills. -1 when on_data refused. */
static int batch_add(struct upstream_xfer *x, const char *data, size_t n)
{
    if (x->batch == NULL) {
        /* A body known to be small (a manifest) gets a batch of its own size. */
        int64_t len = x->resp.ur_content_length;
        x->batch_cap = len > 0 && len < UPSTREAM_BATCH ? (size_t)len : UPSTREAM_BATCH;
        x->batch = xmalloc(x->batch_cap);
    }
    if (x->batch_len + n > x->batch_cap && batch_deliver(x) == -1)
        return -1;
    if (n >= x->batch_cap)
        return x->cbs.on_data(x->arg, data, n);
    memcpy(x->batch + x->batch_len, data, n);
    x->batch_len += n;
    if (!x->batch_listed) {
        x->batch_listed = 1;
        x->next_batched = x->up->batched;
        x->up->batched = x;
    }
    return 0;
}

static void batch_unlist(struct upstream_xfer *x)
{
    struct upstream_xfer **pp;

    if (!x->batch_listed)
        return;
    for (pp = &x->up->batched; *pp != NULL; pp = &(*pp)->next_batched) {
        if (*pp == x) {
            *pp = x->next_batched;
            break;
        }
    }
    x->batch_listed = 0;
}

/*
 * libcurl has returned to the loop: give every xfer's gathered bytes to on_data, before any
 * xfer's end is handled. An on_data that refuses ends its xfer as UPSTREAM_ABORTED, as it
 * would have inside libcurl's callback.
 */
static void batch_flush_all(struct upstream *up)
{
    struct upstream_xfer *x;

    while ((x = up->batched) != NULL) {
        up->batched = x->next_batched;
        x->batch_listed = 0;
        if (batch_deliver(x) == -1) {
            x->aborted = 1;
            xfer_finish(x, UPSTREAM_ABORTED, "aborted by the caller");
        }
    }
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct upstream_xfer *x = userdata;
    size_t n = size * nmemb;

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);

    if (x->kind == XFER_TOKEN || !final_2xx(x)) {
        size_t cap = x->kind == XFER_TOKEN ? TOKEN_BODY_MAX : ERR_BODY_MAX;
        size_t take = x->errlen + n > cap ? cap - x->errlen : n;
        x->up->stats.us_bytes += n;
        if (x->kind == XFER_TOKEN && x->errlen + n > cap) {
            x->too_large = 1;
            return 0;
        }
        if (take > 0) {
            x->errbody = xrealloc(x->errbody, cap + 1);
            memcpy(x->errbody + x->errlen, data, take);
            x->errlen += take;
            x->errbody[x->errlen] = '\0';
        }
        return n;
    }
    if (x->cbs.on_data != NULL && x->up->burst >= UPSTREAM_BURST_MAX) {
        static const struct timeval now = {0, 0};
        /* Not consumed: libcurl hands the same bytes over again after the pause. */
        if (x->unpause == NULL)
            x->unpause = evtimer_new(x->up->base, unpause_cb, x);
        x->paused = 1;
        x->up->stats.us_pauses++;
        evtimer_add(x->unpause, &now);
        return CURL_WRITEFUNC_PAUSE;
    }
    /* Counted once, here: paused bytes above come back in a later call. */
    x->up->stats.us_bytes += n;
    x->up->burst += n;
    x->received += (int64_t)n;
    if (x->max_body >= 0 && x->received > x->max_body) {
        x->too_large = 1;
        return 0;
    }
    if (x->cbs.on_data != NULL && batch_add(x, data, n) == -1) {
        x->aborted = 1;
        return 0;
    }
    return n;
}

/* 1 when <url> is on <base>'s scheme, host and port (a rule's ca_file is for that origin only:
 * redirects to a CDN and token realms elsewhere keep the system's trust store). */
static int same_origin(const char *url, const char *base)
{
    const char *sep = strstr(base, "://");
    size_t host_at = sep != NULL ? (size_t)(sep - base) + 3 : 0;
    size_t origin = host_at + strcspn(base + host_at, "/");

    if (strncmp(url, base, origin) != 0)
        return 0;
    return url[origin] == '\0' || url[origin] == '/' || url[origin] == '?';
}

static void add_header(struct upstream_xfer *x, const char *name, const char *v)
{
    char buf[8448];

    snprintf(buf, sizeof(buf), "%s: %s", name, v);
    x->hdrs = curl_slist_append(x->hdrs, buf);
}

static void set_auth_header(struct upstream_xfer *x)
{
    const char *tok;

    if (x->redirected || x->kind == XFER_TOKEN)
        return;
    tok = auth_cache_get(x->up->tokens, x->auth_key, x->scope, util_now());
    if (tok != NULL) {
        {
            char bearer[8192];
            snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
            add_header(x, "Authorization", bearer);
            explicit_bzero(bearer, sizeof(bearer));
        }
        return;
    }
    if (x->rule->rule_username != NULL &&
        (x->basic_tried || auth_cache_get(x->up->tokens, x->auth_key, "basic:", util_now()))) {
        curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(x->easy, CURLOPT_USERNAME, x->rule->rule_username);
        curl_easy_setopt(x->easy, CURLOPT_PASSWORD, x->rule->rule_password);
    }
}

static void xfer_send(struct upstream_xfer *x)
{
    struct upstream *up = x->up;
    const struct upstream_settings *s = &up->set;

    reset_response(x);
    x->refused_addr = 0;
    x->paused = 0;
    if (x->unpause != NULL)
        evtimer_del(x->unpause);
    if (x->easy == NULL)
        x->easy = curl_easy_init();
    else
        curl_easy_reset(x->easy);
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;

    curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    curl_easy_setopt(x->easy, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)s->us_connect_timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, (long)s->us_stall_timeout_s);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "ecr-ptc-proxy/" PACKAGE_VERSION);
    curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(x->easy, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(x->easy, CURLOPT_ACCEPT_ENCODING, NULL);
    {
        const char *proxy = proxy_for(x->url);
        x->via_proxy = proxy != NULL;
        /* "" turns libcurl's own reading of the environment off: ours is the decision. */
        curl_easy_setopt(x->easy, CURLOPT_PROXY, proxy != NULL ? proxy : "");
        curl_easy_setopt(x->easy, CURLOPT_NOPROXY, "");
    }
    /*
     * Through an egress proxy, an https URL goes through a CONNECT tunnel; libcurl would hand the
     * proxy's "200 Connection established" to header_cb as if it were the registry's answer.
     */
    curl_easy_setopt(x->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (x->rule->rule_ca_file != NULL && same_origin(x->url, x->rule->rule_upstream))
        curl_easy_setopt(x->easy, CURLOPT_CAINFO, x->rule->rule_ca_file);
    curl_easy_setopt(x->easy, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(x->easy, CURLOPT_PREREQDATA, x);
    if (x->head && x->kind != XFER_TOKEN)
        curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
    if (x->accept != NULL && x->kind != XFER_TOKEN)
        add_header(x, "Accept", x->accept);
    if (x->kind == XFER_TOKEN && x->rule->rule_username != NULL) {
        curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(x->easy, CURLOPT_USERNAME, x->rule->rule_username);
        curl_easy_setopt(x->easy, CURLOPT_PASSWORD, x->rule->rule_password);
    }
    set_auth_header(x);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    up->stats.us_requests++;
    curl_multi_add_handle(up->multi, x->easy);
}

/* ---- xfer lifecycle --------------------------------------------------------------------- */

static void xfer_unlink(struct upstream_xfer *x)
{
    struct upstream *up = x->up;

    if (x->prev != NULL)
        x->prev->next = x->next;
    else if (up->xfers == x)
        up->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static void xfer_free(struct upstream_xfer *x)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(x->up->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdrs);
    if (x->wait != NULL)
        event_free(x->wait);
    if (x->unpause != NULL)
        event_free(x->unpause);
    batch_unlist(x);
    free(x->batch);
    xfer_unlink(x);
    free(x->name);
    free(x->path);
    free(x->accept);
    free(x->scope);
    free(x->auth_key);
    free(x->url);
    free(x->errbody);
    x->magic = 0;
    free(x);
}

static struct upstream_xfer *xfer_new(struct upstream *up, const struct config_rule *rule)
{
    struct upstream_xfer *x = xcalloc(1, sizeof(*x));

    x->magic = XFER_MAGIC;
    x->up = up;
    x->rule = rule;
    x->max_body = -1;
    x->next = up->xfers;
    if (up->xfers != NULL)
        up->xfers->prev = x;
    up->xfers = x;
    return x;
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_xfer *x = arg;

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);
    xfer_send(x);
}

static void xfer_retry_later(struct upstream_xfer *x, int64_t delay_ms)
{
    struct timeval tv;

    if (x->wait == NULL)
        x->wait = evtimer_new(x->up->base, wait_cb, x);
    tv.tv_sec = (time_t)(delay_ms / 1000);
    tv.tv_usec = (suseconds_t)((delay_ms % 1000) * 1000);
    x->up->stats.us_retries++;
    x->retries++;
    evtimer_add(x->wait, &tv);
}

static void xfer_finish(struct upstream_xfer *x, enum upstream_result res, const char *err)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(x->up->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    if (x->cbs.on_done != NULL)
        x->cbs.on_done(x->arg, res, &x->resp, err ? err : "", x->errbody ? x->errbody : "",
                       x->errlen);
    xfer_free(x);
}

/* ---- tokens ----------------------------------------------------------------------------- */

static void token_fetch_done(struct upstream *up, struct token_fetch *tf, int ok,
                             enum upstream_result res, const struct upstream_response *r);

static void token_xfer_done(void *arg, enum upstream_result res, const struct upstream_response *r,
                            const char *err, const char *body, size_t body_len)
{
    struct token_fetch *tf = arg;
    struct upstream_xfer *fx;
    char *tok = NULL;
    int64_t exp = 0;
    int ok = 0;

    CHECK_OBJ_NOTNULL(tf, TOKEN_FETCH_MAGIC);
    fx = tf->fetcher;

    if (res == UPSTREAM_OK || (res == UPSTREAM_HTTP && r->ur_status >= 200 && r->ur_status < 300)) {
        if (auth_parse_token_response(body, body_len, util_now(), &tok, &exp) == 0) {
            auth_cache_put(fx->up->tokens, tf->key_upstream, tf->key_scope, tok, exp, util_now());
            explicit_bzero(tok, strlen(tok));
            free(tok);
            ok = 1;
        } else {
            log_event(LOG_WARN, "token-invalid", "upstream", tf->key_upstream, "scope",
                      tf->key_scope, NULL);
        }
    } else {
        char st[16];
        snprintf(st, sizeof(st), "%d", r->ur_status);
        log_event(LOG_WARN, "token-failed", "upstream", tf->key_upstream, "scope", tf->key_scope,
                  "status", st, "error", err, NULL);
    }
    tf->fetcher = NULL;
    token_fetch_done(fx->up, tf, ok, res, r);
}

/*
 * The token fetch <tf> of <up> ended: wake its waiters, unlink and free it. A token endpoint
 * that is down or overloaded (network error, 5xx, 429) fails the waiters as such, so callers
 * treat it as an upstream outage (serve stale) and not as refused credentials.
 */
static void token_fetch_done(struct upstream *up, struct token_fetch *tf, int ok,
                             enum upstream_result res, const struct upstream_response *r)
{
    int outage = res == UPSTREAM_NETWORK ||
                 (res == UPSTREAM_HTTP && r != NULL && (r->ur_status >= 500 || r->ur_status == 429));

    struct upstream_xfer *w = tf->waiters, *next;
    struct token_fetch **pp;

    for (pp = &up->fetches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == tf) {
            *pp = tf->next;
            break;
        }
    }
    for (; w != NULL; w = next) {
        next = w->next_waiter;
        w->next_waiter = NULL;
        w->waiting_token = 0;
        if (ok) {
            xfer_send(w);
        } else if (outage) {
            char msg[96];
            if (res == UPSTREAM_HTTP) {
                w->resp.ur_status = r->ur_status;
                str_copy(w->resp.ur_retry_after, sizeof(w->resp.ur_retry_after),
                         r->ur_retry_after);
                snprintf(msg, sizeof(msg), "the token endpoint answered %d", r->ur_status);
            } else {
                w->resp.ur_status = 0;
                str_copy(msg, sizeof(msg), "the token endpoint is unreachable");
            }
            xfer_finish(w, res, msg);
        } else {
            xfer_finish(w, UPSTREAM_AUTH_FAILED, "the token endpoint did not give a token");
        }
    }
    free(tf->key_upstream);
    free(tf->key_scope);
    tf->magic = 0;
    free(tf);
}

/* Join or start the token fetch for <x>'s (upstream, scope) after challenge <ch>. */
static int token_join(struct upstream_xfer *x, const struct auth_challenge *ch)
{
    struct upstream *up = x->up;
    struct token_fetch *tf;
    struct upstream_xfer *fx;
    CURLU *u;
    char *q = NULL, *url = NULL;
    char *esc_service, *esc_scope;
    const char *scope = ch->ac_scope[0] != '\0' ? ch->ac_scope : x->scope;
    int rc = -1;

    for (tf = up->fetches; tf != NULL; tf = tf->next)
        if (strcmp(tf->key_upstream, x->auth_key) == 0 &&
            strcmp(tf->key_scope, x->scope) == 0)
            break;
    if (tf == NULL) {
        char *checked = NULL, *why = NULL;
        if (!target_allowed(x->rule, x->url, ch->ac_realm, "token realm", &checked, &why)) {
            log_event(LOG_WARN, "token-realm-refused", "realm", ch->ac_realm, "why", why, NULL);
            free(why);
            return -1;
        }
        u = curl_url();
        if (curl_url_set(u, CURLUPART_URL, checked, 0) != CURLUE_OK) {
            curl_free(checked);
            curl_url_cleanup(u);
            return -1;
        }
        curl_free(checked);
        esc_service = curl_easy_escape(NULL, ch->ac_service, 0);
        esc_scope = curl_easy_escape(NULL, scope, 0);
        q = ch->ac_service[0] != '\0' ? xasprintf("service=%s&scope=%s", esc_service, esc_scope)
                                     : xasprintf("scope=%s", esc_scope);
        curl_free(esc_service);
        curl_free(esc_scope);
        curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY);
        if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
            curl_url_cleanup(u);
            free(q);
            return -1;
        }
        curl_url_cleanup(u);
        free(q);
        tf = xcalloc(1, sizeof(*tf));
        tf->magic = TOKEN_FETCH_MAGIC;
        tf->key_upstream = xstrdup(x->auth_key);
        tf->key_scope = xstrdup(x->scope);
        tf->next = up->fetches;
        up->fetches = tf;
        fx = xfer_new(up, x->rule);
        fx->kind = XFER_TOKEN;
        fx->token_for = tf;
        fx->redirected = 1; /* a host the operator did not name: the address check applies */
        fx->url = xstrdup(url);
        fx->scope = xstrdup(x->scope);
        fx->auth_key = xstrdup(x->auth_key);
        fx->max_retries = 1;
        fx->cbs.on_done = token_xfer_done;
        fx->arg = tf;
        tf->fetcher = fx;
        curl_free(url);
        up->stats.us_token_fetches++;
        xfer_send(fx);
    }
    x->next_waiter = tf->waiters;
    tf->waiters = x;
    x->waiting_token = 1;
    rc = 0;
    return rc;
}

/* ---- deciding what follows an exchange -------------------------------------------------- */

static int64_t retry_delay_ms(struct upstream_xfer *x)
{
    const char *ra = x->resp.ur_retry_after;
    int64_t base = x->up->set.us_backoff_ms << (x->retries > 6 ? 6 : x->retries);

    if (ra[0] != '\0') {
        char *end;
        long v;
        errno = 0;
        v = strtol(ra, &end, 10);
        if (errno == 0 && *end == '\0' && v >= 0) {
            if (v > x->up->set.us_max_retry_after_s)
                return -1;
            return (int64_t)v * 1000;
        }
    }
    return base;
}

/*
 * May <rule> send a request to <ref> (resolved against <base>, which may be NULL)? Redirect
 * targets and token realms are hosts the operator never named: without
 * allow_private_redirects they must be https and not a loopback, private or link-local
 * literal (names are checked again on the connected address, in open_socket_cb). Returns 1
 * with the absolute URL in *next_url (curl_free it), or 0 with *why (free it).
 */
static int target_allowed(const struct config_rule *rule, const char *base, const char *ref,
                          const char *what, char **next_url, char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = 0;

    *next_url = NULL;
    *why = NULL;
    if ((base != NULL && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) ||
        curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK) {
        *why = xasprintf("unparseable %s URL", what);
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (!rule->rule_allow_private_redirects) {
        char h[256] = "";
        struct in_addr a4;
        struct in6_addr a6;
        if (scheme == NULL || strcmp(scheme, "https") != 0) {
            *why = xasprintf("%s to a non-https URL", what);
            goto out;
        }
        if (host != NULL)
            host_unbracketed(host, h, sizeof(h));
        if ((inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1) &&
            upstream_addr_is_private(h)) {
            *why = xasprintf("%s to a private address %s", what, h);
            goto out;
        }
        if (strcasecmp(h, "localhost") == 0) {
            *why = xasprintf("%s to localhost", what);
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, next_url, 0) != CURLUE_OK) {
        *why = xasprintf("unusable %s URL", what);
        goto out;
    }
    ok = 1;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static int redirect_allowed(struct upstream_xfer *x, char **next_url, char **why)
{
    return target_allowed(x->rule, x->url, x->location, "redirect", next_url, why);
}

static void exchange_done(struct upstream_xfer *x, CURLcode cc)
{
    int status = x->resp.ur_status;
    char msg[1024], shown[384];

    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);
    curl_multi_remove_handle(x->up->multi, x->easy);
    url_shown(x->url, shown, sizeof(shown));
    if (x->aborted) {
        xfer_finish(x, UPSTREAM_ABORTED, "aborted by the caller");
        return;
    }
    if (x->too_large) {
        xfer_finish(x, UPSTREAM_TOO_LARGE, "the response is larger than allowed");
        return;
    }
    if (cc != CURLE_OK) {
        if (x->refused_addr) {
            snprintf(msg, sizeof(msg), "redirect to a private address refused: %s", shown);
            xfer_finish(x, UPSTREAM_REDIRECT_REFUSED, msg);
            return;
        }
        snprintf(msg, sizeof(msg), "%s: %s", shown, curl_easy_strerror(cc));
        if (!x->delivered && x->retries < x->max_retries) {
            int64_t d = retry_delay_ms(x);
            log_event(LOG_WARN, "upstream-retry", "url", shown, "error", curl_easy_strerror(cc),
                      NULL);
            xfer_retry_later(x, d < 0 ? x->up->set.us_backoff_ms : d);
            return;
        }
        xfer_finish(x, UPSTREAM_NETWORK, msg);
        return;
    }
    if (x->kind == XFER_TOKEN) {
        xfer_finish(x, status >= 200 && status < 300 ? UPSTREAM_OK : UPSTREAM_HTTP, "");
        return;
    }
    if (status == 401 && !x->redirected) {
        struct auth_challenge ch;
        if (auth_parse_challenge(x->resp.ur_www_authenticate, &ch) == 0) {
            if (ch.ac_scheme == AUTH_BEARER && !x->token_tried) {
                x->token_tried = 1;
                auth_cache_drop(x->up->tokens, x->auth_key, x->scope);
                if (token_join(x, &ch) == 0)
                    return;
                xfer_finish(x, UPSTREAM_AUTH_FAILED, "the token realm is unusable or not allowed");
                return;
            }
            if (ch.ac_scheme == AUTH_BASIC && !x->basic_tried && x->rule->rule_username != NULL) {
                x->basic_tried = 1;
                auth_cache_put(x->up->tokens, x->auth_key, "basic:", "1",
                               util_now() + 86400, util_now());
                xfer_send(x);
                return;
            }
        }
    }
    if ((status == 301 || status == 302 || status == 303 || status == 307 || status == 308) &&
        x->location[0] != '\0') {
        char *next = NULL, *why = NULL;
        if (++x->redirects > MAX_REDIRECTS) {
            xfer_finish(x, UPSTREAM_NETWORK, "too many redirects");
            return;
        }
        if (!redirect_allowed(x, &next, &why)) {
            snprintf(msg, sizeof(msg), "%s (from %s)", why, shown);
            free(why);
            xfer_finish(x, UPSTREAM_REDIRECT_REFUSED, msg);
            return;
        }
        free(x->url);
        x->url = xstrdup(next);
        curl_free(next);
        x->redirected = 1;
        xfer_send(x);
        return;
    }
    if ((status >= 500 || status == 429) && !x->delivered && x->retries < x->max_retries) {
        int64_t d = retry_delay_ms(x);
        if (d >= 0) {
            char st[16];
            snprintf(st, sizeof(st), "%d", status);
            log_event(LOG_WARN, "upstream-retry", "url", shown, "status", st, "retry_after",
                      x->resp.ur_retry_after, NULL);
            xfer_retry_later(x, d);
            return;
        }
    }
    if (status >= 200 && status < 300) {
        if (!x->delivered && !x->head) {
            /* An empty body never passed through the header callback's delivery. */
            x->delivered = 1;
            if (x->cbs.on_headers != NULL && x->cbs.on_headers(x->arg, &x->resp) == -1) {
                xfer_finish(x, UPSTREAM_ABORTED, "aborted by the caller");
                return;
            }
        }
        if (x->resp.ur_content_length >= 0 && !x->head && x->received != x->resp.ur_content_length) {
            xfer_finish(x, UPSTREAM_NETWORK, "truncated body");
            return;
        }
        xfer_finish(x, UPSTREAM_OK, "");
        return;
    }
    snprintf(msg, sizeof(msg), "%s answered %d", shown, status);
    xfer_finish(x, UPSTREAM_HTTP, msg);
}

static void check_multi_info(struct upstream *up)
{
    CURLMsg *m;
    int left;

    batch_flush_all(up);
    while ((m = curl_multi_info_read(up->multi, &left)) != NULL) {
        struct upstream_xfer *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        exchange_done(x, m->data.result);
    }
}

/* ---- public ----------------------------------------------------------------------------- */

struct upstream *upstream_create(struct event_base *base, const struct upstream_settings *s,
                                 char **err)
{
    struct upstream *up;
    static int global_done;

    *err = NULL;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            *err = xstrdup("libcurl initialisation failed");
            return NULL;
        }
        global_done = 1;
    }
    up = xcalloc(1, sizeof(*up));
    up->magic = UPSTREAM_MAGIC;
    up->base = base;
    up->set = *s;
    up->tokens = auth_cache_new();
    up->multi = curl_multi_init();
    up->timer = evtimer_new(base, timer_event_cb, up);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    return up;
}

void upstream_destroy(struct upstream *up)
{
    if (up == NULL)
        return;
    while (up->xfers != NULL) {
        struct upstream_xfer *x = up->xfers;
        xfer_free(x);
    }
    while (up->fetches != NULL) {
        struct token_fetch *tf = up->fetches;
        up->fetches = tf->next;
        free(tf->key_upstream);
        free(tf->key_scope);
        tf->magic = 0;
        free(tf);
    }
    curl_multi_cleanup(up->multi);
    event_free(up->timer);
    auth_cache_free(up->tokens);
    up->magic = 0;
    free(up);
}

struct upstream_xfer *upstream_start(struct upstream *up, const struct upstream_target *t,
                                     const struct upstream_callbacks *cbs, void *arg)
{
    struct upstream_xfer *x = xfer_new(up, t->ut_rule);
    char scope[1024];

    x->kind = XFER_CALLER;
    x->name = xstrdup(t->ut_name);
    x->path = xstrdup(t->ut_path);
    x->accept = t->ut_accept ? xstrdup(t->ut_accept) : NULL;
    x->head = t->ut_head;
    x->max_retries = t->ut_max_retries;
    x->max_body = t->ut_max_body;
    if (auth_pull_scope(t->ut_name, scope, sizeof(scope)) == -1)
        scope[0] = '\0';
    x->scope = xstrdup(scope);
    x->cbs = *cbs;
    x->arg = arg;
    x->url = xasprintf("%s%s", t->ut_rule->rule_upstream, t->ut_path);
    x->auth_key = xasprintf("%s %s", t->ut_rule->rule_prefix, t->ut_rule->rule_upstream);
    xfer_send(x);
    return x;
}

void upstream_cancel(struct upstream_xfer *x)
{
    if (x == NULL)
        return;
    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);
    if (x->waiting_token) {
        struct token_fetch *tf;
        for (tf = x->up->fetches; tf != NULL; tf = tf->next) {
            struct upstream_xfer **pp;
            for (pp = &tf->waiters; *pp != NULL; pp = &(*pp)->next_waiter) {
                if (*pp == x) {
                    *pp = x->next_waiter;
                    break;
                }
            }
        }
    }
    xfer_free(x);
}

void upstream_get_stats(const struct upstream *up, struct upstream_stats *out)
{
    *out = up->stats;
}
