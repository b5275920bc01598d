/*
 * The registry client: registry semantics on top of the transport. An xfer walks through
 * transport requests until one answer is final:
 *   send ─▶ 401 Bearer ─▶ fetch a token (joined with any fetch in flight for the same
 *           origin and scope) ─▶ send again with the token (once)
 *        ─▶ 401 Basic ─▶ send again with the origin's credentials (once)
 *        ─▶ 3xx ─▶ check the Location against the origin's redirect policy ─▶ send there,
 *           without Authorization (at most 5 hops)
 *        ─▶ anything else is final: 2xx bodies stream to the caller as they arrive.
 * Connect errors, 5xx and 429 are retried inside each transport request, ut_max_retries times
 * over the whole xfer. Authorization is added by the transport's per-attempt hook
 * (xfer_attempt), so every attempt, retries included, carries the token cached at that moment.
 */
#include "config.h"

#include "registry.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "policy_egress.h"
#include "transport.h"
#include "util.h"

#define UPSTREAM_MAGIC 0x55505354u    /* "UPST" */
#define XFER_MAGIC 0x58464552u        /* "XFER" */
#define TOKEN_FETCH_MAGIC 0x544f4b46u /* "TOKF" */
#define TOKEN_BODY_MAX (64 * 1024)
#define MAX_REDIRECTS 5
#define HEALTH_MAX 64 /* origins whose health is kept: rules, the ECR tier, with room */

struct token_fetch;

/* One origin's health record, found by its name and base URL (as the token cache is): a
 * reload's new origin for the same rule and upstream finds the same record, and reloads never
 * use up the table. */
struct health {
    char h_name[128];
    char h_base_url[512];
    struct upstream_health h;
};

/* 1 when record <rec> is origin <o>'s. */
static int health_is(const struct health *rec, const struct upstream_origin *o)
{
    return strcmp(rec->h_name, o->uo_name != NULL ? o->uo_name : "") == 0 &&
           strcmp(rec->h_base_url, o->uo_base_url != NULL ? o->uo_base_url : "") == 0;
}

struct upstream {
    unsigned magic;
    struct transport *tp;
    struct auth_cache *tokens;
    struct upstream_xfer *xfers; /* every live xfer, linked */
    struct token_fetch *fetches; /* token fetches in flight */
    uint64_t token_fetches;
    struct health health[HEALTH_MAX];
    size_t nhealth;
};

struct upstream_xfer {
    unsigned magic;
    struct upstream *up;
    struct upstream_xfer *next, *prev;

    /* The target, owned copies (the origin borrowed). */
    const struct upstream_origin *origin;
    char *accept, *scope;
    char *auth_key; /* token cache key: the origin and a fingerprint of its credentials, so
                       one origin's credentials never lend their tokens to another, nor do
                       the credentials a reload replaced */
    int head, max_retries;
    int64_t max_body;
    struct upstream_callbacks cbs;
    struct transport_callbacks tcbs; /* ours, NULL where the caller's is */
    void *arg;

    struct transport_req *req; /* in flight; NULL while waiting for a token */
    char *url;                 /* current URL (the origin's, or a redirect target) */
    int redirected;            /* the current URL is a redirect target: no Authorization */
    int redirects, retries, token_tried, basic_tried; /* retries: after errors, 5xx, 429 */
    struct token_fetch *waiting_for; /* the token fetch whose waiters list holds this xfer */
    struct upstream_xfer *next_waiter;
    struct upstream_response resp; /* the 401 a token wait follows, and its body: the end's */
    char *body;                    /* if the token fetch fails */
    size_t body_len;
};

/* One token fetch for (origin, scope) and the xfers waiting for it. */
struct token_fetch {
    unsigned magic;
    struct upstream *up;
    struct token_fetch *next;
    char *key_upstream, *key_scope;
    char *username, *password; /* the origin's, copied: the fetch may outlive its xfers */
    struct transport_req *req;
    struct upstream_xfer *waiters;
};

static void xfer_send(struct upstream_xfer *x);

/* ---- origins ---------------------------------------------------------------------------- */

/* 1 when <url> is on <base>'s scheme, host and port (an origin's ca_file is for that origin
 * only: redirects to a CDN and token realms elsewhere keep the system's trust store). */
static int same_origin(const char *url, const char *base)
{
    const char *sep = strstr(base, "://");
    size_t host_at = sep != NULL ? (size_t)(sep - base) + 3 : 0;
    size_t origin = host_at + strcspn(base + host_at, "/");

    if (strncmp(url, base, origin) != 0)
        return 0;
    return url[origin] == '\0' || url[origin] == '/' || url[origin] == '?';
}

static const char *ca_for(const struct upstream_origin *o, const char *url)
{
    return o->uo_ca_file != NULL && same_origin(url, o->uo_base_url) ? o->uo_ca_file : NULL;
}

/*
 * May <o> send a request to <ref> (resolved against <base>, which may be NULL)? The egress
 * policy decides on the scheme and host (egress_target_allowed). Returns 1 with the absolute
 * URL in *next_url (curl_free it), or 0 with *why (free it).
 */
static int target_allowed(const struct upstream_origin *o, const char *base, const char *ref,
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
    if (!egress_target_allowed(o->uo_allow_private, scheme, host, what, why))
        goto out;
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

/* ---- health ----------------------------------------------------------------------------- */

enum upstream_health_state upstream_health_classify(enum upstream_result res, int status)
{
    switch (res) {
    case UPSTREAM_OK:
    case UPSTREAM_TOO_LARGE: return UPSTREAM_HEALTH_OK;
    case UPSTREAM_HTTP:
        if (status >= 500 || status == 429 || status == 401 || status == 403 || status < 100)
            return UPSTREAM_HEALTH_FAILING;
        return UPSTREAM_HEALTH_OK;
    case UPSTREAM_ABORTED: return UPSTREAM_HEALTH_UNKNOWN;
    default: return UPSTREAM_HEALTH_FAILING;
    }
}

/* <o>'s record in <up>, created if need be; NULL when the table is full. */
static struct health *health_find(struct upstream *up, const struct upstream_origin *o)
{
    struct health *rec;

    for (size_t i = 0; i < up->nhealth; i++)
        if (health_is(&up->health[i], o))
            return &up->health[i];
    if (up->nhealth == HEALTH_MAX)
        return NULL;
    rec = &up->health[up->nhealth++];
    str_copy(rec->h_name, sizeof(rec->h_name), o->uo_name != NULL ? o->uo_name : "");
    str_copy(rec->h_base_url, sizeof(rec->h_base_url),
             o->uo_base_url != NULL ? o->uo_base_url : "");
    return rec;
}

/* Note how an xfer for <o> ended, at <now>. */
static void health_note(struct upstream *up, const struct upstream_origin *o,
                        enum upstream_result res, const struct upstream_response *r,
                        const char *err, int64_t now)
{
    struct health *rec = health_find(up, o);
    int status = r != NULL ? r->ur_status : 0;
    enum upstream_health_state st = upstream_health_classify(res, status);
    struct upstream_health *h;

    if (rec == NULL)
        return;
    h = &rec->h;
    if (r != NULL && r->ur_ratelimit_remaining[0] != '\0') {
        str_copy(h->uh_ratelimit, sizeof(h->uh_ratelimit), r->ur_ratelimit_remaining);
        h->uh_ratelimit_at = now;
    }
    if (st == UPSTREAM_HEALTH_UNKNOWN)
        return;
    h->uh_state = st;
    h->uh_status = status;
    h->uh_ended_at = now;
    h->uh_exchanges++;
    if (st == UPSTREAM_HEALTH_FAILING) {
        h->uh_failures++;
        h->uh_failed_at = now;
        if (err != NULL && err[0] != '\0')
            str_copy(h->uh_error, sizeof(h->uh_error), err);
        else
            snprintf(h->uh_error, sizeof(h->uh_error), "HTTP %d", status);
    }
}

void upstream_health_get(const struct upstream *up, const struct upstream_origin *o,
                         struct upstream_health *out)
{
    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < up->nhealth; i++) {
        if (health_is(&up->health[i], o)) {
            *out = up->health[i].h;
            return;
        }
    }
}

/* ---- xfer lifecycle --------------------------------------------------------------------- */

static void waiter_unlink(struct upstream_xfer *x)
{
    struct upstream_xfer **pp;

    if (x->waiting_for == NULL)
        return;
    for (pp = &x->waiting_for->waiters; *pp != NULL; pp = &(*pp)->next_waiter) {
        if (*pp == x) {
            *pp = x->next_waiter;
            break;
        }
    }
    x->waiting_for = NULL;
    x->next_waiter = NULL;
}

static void xfer_free(struct upstream_xfer *x)
{
    struct upstream *up = x->up;

    transport_cancel(x->req);
    waiter_unlink(x);
    if (x->prev != NULL)
        x->prev->next = x->next;
    else if (up->xfers == x)
        up->xfers = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    free(x->accept);
    free(x->scope);
    free(x->auth_key);
    free(x->url);
    free(x->body);
    x->magic = 0;
    free(x);
}

/* The caller's end of <x>, then <x> is freed. Its transport request has ended already. */
static void xfer_end(struct upstream_xfer *x, enum upstream_result res,
                     const struct upstream_response *r, const char *err, const char *body,
                     size_t body_len)
{
    health_note(x->up, x->origin, res, r, err, util_now());
    if (x->cbs.on_done != NULL)
        x->cbs.on_done(x->arg, res, r, err != NULL ? err : "", body != NULL ? body : "", body_len);
    xfer_free(x);
}

/* The per-attempt hook: Authorization for this attempt, from the token cache at this moment. */
static int xfer_attempt(void *arg, int attempt, struct transport_headers *h)
{
    struct upstream_xfer *x;
    const struct upstream_origin *o;
    const char *tok;

    CAST_OBJ_NOTNULL(x, arg, XFER_MAGIC);
    (void)attempt;
    o = x->origin;
    if (x->redirected)
        return 0;
    tok = auth_cache_get(x->up->tokens, x->auth_key, x->scope, util_now());
    if (tok != NULL) {
        char *bearer = xasprintf("Bearer %s", tok);
        transport_headers_add(h, "Authorization", bearer);
        explicit_bzero(bearer, strlen(bearer));
        free(bearer);
        return 0;
    }
    if (o->uo_username != NULL &&
        (x->basic_tried || auth_cache_get(x->up->tokens, x->auth_key, "basic:", util_now())))
        transport_headers_basic(h, o->uo_username, o->uo_password);
    return 0;
}

static int xfer_headers(void *arg, const struct upstream_response *r)
{
    struct upstream_xfer *x;

    CAST_OBJ_NOTNULL(x, arg, XFER_MAGIC);
    return x->cbs.on_headers(x->arg, r);
}

static int xfer_data(void *arg, const char *data, size_t len)
{
    struct upstream_xfer *x;

    CAST_OBJ_NOTNULL(x, arg, XFER_MAGIC);
    return x->cbs.on_data(x->arg, data, len);
}

/* ---- tokens ----------------------------------------------------------------------------- */

static void token_fetch_free(struct token_fetch *tf)
{
    transport_cancel(tf->req);
    free(tf->key_upstream);
    free(tf->key_scope);
    free(tf->username);
    if (tf->password != NULL)
        explicit_bzero(tf->password, strlen(tf->password));
    free(tf->password);
    tf->magic = 0;
    free(tf);
}

/*
 * The token fetch <tf> of <up> ended: unlink it, wake its waiters one by one (a waiter's end
 * may cancel another waiter), and free it. A token endpoint that is down or overloaded
 * (network error, 5xx, 429) fails the waiters as such, so callers treat it as an upstream
 * outage (serve stale) and not as refused credentials.
 */
static void token_fetch_done(struct upstream *up, struct token_fetch *tf, int ok,
                             enum upstream_result res, const struct upstream_response *r)
{
    int outage = res == UPSTREAM_NETWORK || (res == UPSTREAM_HTTP && r != NULL &&
                                             (r->ur_status >= 500 || r->ur_status == 429));
    struct upstream_xfer *w;
    struct token_fetch **pp;

    for (pp = &up->fetches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == tf) {
            *pp = tf->next;
            break;
        }
    }
    while ((w = tf->waiters) != NULL) {
        waiter_unlink(w);
        if (ok) {
            xfer_send(w);
        } else if (outage) {
            char msg[96];
            if (res == UPSTREAM_HTTP) {
                w->resp.ur_status = r->ur_status;
                str_copy(w->resp.ur_retry_after, sizeof(w->resp.ur_retry_after), r->ur_retry_after);
                snprintf(msg, sizeof(msg), "the token endpoint answered %d", r->ur_status);
            } else {
                w->resp.ur_status = 0;
                str_copy(msg, sizeof(msg), "the token endpoint is unreachable");
            }
            xfer_end(w, res, &w->resp, msg, w->body, w->body_len);
        } else {
            xfer_end(w, UPSTREAM_AUTH_FAILED, &w->resp, "the token endpoint did not give a token",
                     w->body, w->body_len);
        }
    }
    token_fetch_free(tf);
}

static int token_attempt(void *arg, int attempt, struct transport_headers *h)
{
    struct token_fetch *tf;

    CAST_OBJ_NOTNULL(tf, arg, TOKEN_FETCH_MAGIC);
    (void)attempt;
    if (tf->username != NULL)
        transport_headers_basic(h, tf->username, tf->password);
    return 0;
}

static void token_req_done(void *arg, const struct transport_outcome *o)
{
    struct token_fetch *tf;
    const struct upstream_response *r;
    char *tok = NULL;
    int64_t exp = 0;
    int ok = 0;

    CAST_OBJ_NOTNULL(tf, arg, TOKEN_FETCH_MAGIC);
    tf->req = NULL;
    r = o->to_resp;
    if (o->to_res == UPSTREAM_OK ||
        (o->to_res == UPSTREAM_HTTP && r->ur_status >= 200 && r->ur_status < 300)) {
        if (auth_parse_token_response(o->to_body, o->to_body_len, util_now(), &tok, &exp) == 0) {
            auth_cache_put(tf->up->tokens, tf->key_upstream, tf->key_scope, tok, exp, util_now());
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
                  "status", st, "error", o->to_err, NULL);
    }
    token_fetch_done(tf->up, tf, ok, o->to_res, r);
}

/*
 * The token endpoint URL for <x> after challenge <ch>, asking for <scope>: the realm (checked
 * against the origin's policy) with service and scope added to its query. NULL when the
 * realm is refused or unusable. Caller frees.
 */
static char *token_url(struct upstream_xfer *x, const struct auth_challenge *ch, const char *scope)
{
    CURLU *u;
    char *checked = NULL, *why = NULL, *q, *url = NULL, *out = NULL;
    char *esc_service, *esc_scope;

    if (!target_allowed(x->origin, x->url, ch->ac_realm, "token realm", &checked, &why)) {
        log_event(LOG_WARN, "token-realm-refused", "realm", ch->ac_realm, "why", why, NULL);
        free(why);
        return NULL;
    }
    u = curl_url();
    if (curl_url_set(u, CURLUPART_URL, checked, 0) != CURLUE_OK)
        goto out;
    esc_service = curl_easy_escape(NULL, ch->ac_service, 0);
    esc_scope = curl_easy_escape(NULL, scope, 0);
    q = ch->ac_service[0] != '\0' ? xasprintf("service=%s&scope=%s", esc_service, esc_scope)
                                  : xasprintf("scope=%s", esc_scope);
    curl_free(esc_service);
    curl_free(esc_scope);
    curl_url_set(u, CURLUPART_QUERY, q, CURLU_APPENDQUERY);
    free(q);
    if (curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
        out = xstrdup(url);
out:
    curl_free(url);
    curl_free(checked);
    curl_url_cleanup(u);
    return out;
}

/* Join or start the token fetch for <x>'s (origin, scope) after challenge <ch>. 0, or -1. */
static int token_join(struct upstream_xfer *x, const struct auth_challenge *ch)
{
    static const struct transport_callbacks cbs = {token_attempt, NULL, NULL, token_req_done};
    struct upstream *up = x->up;
    const struct upstream_origin *o = x->origin;
    struct token_fetch *tf;

    for (tf = up->fetches; tf != NULL; tf = tf->next)
        if (strcmp(tf->key_upstream, x->auth_key) == 0 && strcmp(tf->key_scope, x->scope) == 0)
            break;
    if (tf == NULL) {
        struct transport_request rq;
        char *url = token_url(x, ch, ch->ac_scope[0] != '\0' ? ch->ac_scope : x->scope);
        if (url == NULL)
            return -1;
        tf = xcalloc(1, sizeof(*tf));
        tf->magic = TOKEN_FETCH_MAGIC;
        tf->up = up;
        tf->key_upstream = xstrdup(x->auth_key);
        tf->key_scope = xstrdup(x->scope);
        tf->username = o->uo_username != NULL ? xstrdup(o->uo_username) : NULL;
        tf->password = o->uo_password != NULL ? xstrdup(o->uo_password) : NULL;
        tf->next = up->fetches;
        up->fetches = tf;
        memset(&rq, 0, sizeof(rq));
        rq.tr_method = TRANSPORT_GET;
        rq.tr_url = url;
        rq.tr_ca_file = ca_for(o, url);
        rq.tr_proxy = o->uo_proxy;
        rq.tr_check_address = !o->uo_allow_private; /* a host the operator did not name */
        rq.tr_max_retries = 1;
        rq.tr_retry_status = 0; /* a 5xx or 429 fails the waiters as an outage at once */
        rq.tr_max_body = -1;
        rq.tr_buffer_max = TOKEN_BODY_MAX;
        up->token_fetches++;
        tf->req = transport_start(up->tp, &rq, &cbs, tf);
        free(url);
    }
    x->next_waiter = tf->waiters;
    tf->waiters = x;
    x->waiting_for = tf;
    return 0;
}

/* ---- deciding what follows an answer ---------------------------------------------------- */

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/*
 * <x>'s request ended with the non-2xx answer <o>. A 401 may send it to the token endpoint or
 * again with Basic credentials, a 3xx to the Location. Returns 1 when <x> goes on (or ended
 * here), 0 when <o> is its end.
 */
static int xfer_follow(struct upstream_xfer *x, const struct transport_outcome *o)
{
    const struct upstream_response *r = o->to_resp;
    int status = r->ur_status;

    if (status == 401 && !x->redirected) {
        struct auth_challenge ch;
        if (auth_parse_challenge(r->ur_www_authenticate, &ch) == 0) {
            if (ch.ac_scheme == AUTH_BEARER && !x->token_tried) {
                x->token_tried = 1;
                auth_cache_drop(x->up->tokens, x->auth_key, x->scope);
                x->resp = *r;
                free(x->body);
                x->body = xmalloc(o->to_body_len + 1);
                memcpy(x->body, o->to_body, o->to_body_len);
                x->body[o->to_body_len] = '\0';
                x->body_len = o->to_body_len;
                if (token_join(x, &ch) == 0)
                    return 1;
                xfer_end(x, UPSTREAM_AUTH_FAILED, r, "the token realm is unusable or not allowed",
                         o->to_body, o->to_body_len);
                return 1;
            }
            if (ch.ac_scheme == AUTH_BASIC && !x->basic_tried && x->origin->uo_username != NULL) {
                x->basic_tried = 1;
                auth_cache_put(x->up->tokens, x->auth_key, "basic:", "1", util_now() + 86400,
                               util_now());
                xfer_send(x);
                return 1;
            }
        }
    }
    if (is_redirect(status) && o->to_location[0] != '\0') {
        char *next = NULL, *why = NULL;
        char msg[1024], shown[384];
        if (++x->redirects > MAX_REDIRECTS) {
            xfer_end(x, UPSTREAM_NETWORK, r, "too many redirects", o->to_body, o->to_body_len);
            return 1;
        }
        if (!target_allowed(x->origin, x->url, o->to_location, "redirect", &next, &why)) {
            transport_url_shown(x->url, shown, sizeof(shown));
            snprintf(msg, sizeof(msg), "%s (from %s)", why, shown);
            free(why);
            xfer_end(x, UPSTREAM_REDIRECT_REFUSED, r, msg, o->to_body, o->to_body_len);
            return 1;
        }
        free(x->url);
        x->url = xstrdup(next);
        curl_free(next);
        x->redirected = 1;
        xfer_send(x);
        return 1;
    }
    return 0;
}

static void xfer_req_done(void *arg, const struct transport_outcome *o)
{
    struct upstream_xfer *x;

    CAST_OBJ_NOTNULL(x, arg, XFER_MAGIC);
    x->req = NULL;
    x->retries = o->to_retries;
    if (o->to_res == UPSTREAM_HTTP && xfer_follow(x, o))
        return;
    xfer_end(x, o->to_res, o->to_resp, o->to_err, o->to_body, o->to_body_len);
}

/* One transport request for <x>'s current URL; the retries it may make are what is left. */
static void xfer_send(struct upstream_xfer *x)
{
    const struct upstream_origin *o = x->origin;
    struct transport_request rq;
    const char *lines[2] = {NULL, NULL};
    char *accept = NULL;

    memset(&rq, 0, sizeof(rq));
    rq.tr_method = x->head ? TRANSPORT_HEAD : TRANSPORT_GET;
    rq.tr_url = x->url;
    if (x->accept != NULL) {
        accept = xasprintf("Accept: %s", x->accept);
        lines[0] = accept;
        rq.tr_headers = lines;
    }
    rq.tr_ca_file = ca_for(o, x->url);
    rq.tr_proxy = o->uo_proxy;
    rq.tr_check_address = x->redirected && !o->uo_allow_private;
    rq.tr_max_retries = x->max_retries;
    rq.tr_retries_used = x->retries;
    rq.tr_retry_status = 1;
    rq.tr_max_body = x->max_body;
    x->req = transport_start(x->up->tp, &rq, &x->tcbs, x);
    free(accept);
}

/* ---- public ----------------------------------------------------------------------------- */

struct upstream *upstream_create(struct event_base *base, const struct upstream_settings *s,
                                 char **err)
{
    struct transport *tp = transport_create(base, s, err);
    struct upstream *up;

    if (tp == NULL)
        return NULL;
    up = xcalloc(1, sizeof(*up));
    up->magic = UPSTREAM_MAGIC;
    up->tp = tp;
    up->tokens = auth_cache_new();
    return up;
}

void upstream_destroy(struct upstream *up)
{
    if (up == NULL)
        return;
    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);
    while (up->xfers != NULL)
        xfer_free(up->xfers);
    while (up->fetches != NULL) {
        struct token_fetch *tf = up->fetches;
        up->fetches = tf->next;
        token_fetch_free(tf);
    }
    transport_destroy(up->tp);
    auth_cache_free(up->tokens);
    up->magic = 0;
    free(up);
}

struct transport *upstream_transport(struct upstream *up)
{
    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);
    return up->tp;
}

/* "<name> <base URL>", and " <fingerprint>" when the origin has credentials: 64 bits of FNV-1a
 * over the username and password. Not a secret's hash anyone sees (the key never leaves the
 * process); it only tells one set of credentials from the next. */
static char *auth_key_of(const struct upstream_origin *o)
{
    uint64_t h = 14695981039346656037ull;
    const char *parts[2] = {o->uo_username, o->uo_password};

    if (o->uo_username == NULL && o->uo_password == NULL)
        return xasprintf("%s %s", o->uo_name != NULL ? o->uo_name : "", o->uo_base_url);
    for (int i = 0; i < 2; i++) {
        const unsigned char *c = (const unsigned char *)(parts[i] != NULL ? parts[i] : "");
        do {
            h ^= *c;
            h *= 1099511628211ull;
        } while (*c++ != '\0'); /* the NUL too: ("ab", "c") is not ("a", "bc") */
    }
    return xasprintf("%s %s %016" PRIx64, o->uo_name != NULL ? o->uo_name : "", o->uo_base_url, h);
}

struct upstream_xfer *upstream_start(struct upstream *up, const struct upstream_target *t,
                                     const struct upstream_callbacks *cbs, void *arg)
{
    struct upstream_xfer *x = xcalloc(1, sizeof(*x));
    const struct upstream_origin *o = t->ut_origin;
    char scope[1024];

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);
    x->magic = XFER_MAGIC;
    x->up = up;
    x->next = up->xfers;
    if (up->xfers != NULL)
        up->xfers->prev = x;
    up->xfers = x;
    x->origin = o;
    x->accept = t->ut_accept ? xstrdup(t->ut_accept) : NULL;
    x->head = t->ut_head;
    x->max_retries = t->ut_max_retries;
    x->max_body = t->ut_max_body;
    if (auth_pull_scope(t->ut_name, scope, sizeof(scope)) == -1)
        scope[0] = '\0';
    x->scope = xstrdup(scope);
    x->cbs = *cbs;
    x->arg = arg;
    x->tcbs.on_attempt = xfer_attempt;
    x->tcbs.on_headers = cbs->on_headers != NULL ? xfer_headers : NULL;
    x->tcbs.on_data = cbs->on_data != NULL ? xfer_data : NULL;
    x->tcbs.on_done = xfer_req_done;
    x->url = xasprintf("%s%s", o->uo_base_url, t->ut_path);
    x->auth_key = auth_key_of(o);
    xfer_send(x);
    return x;
}

void upstream_cancel(struct upstream_xfer *x)
{
    if (x == NULL)
        return;
    CHECK_OBJ_NOTNULL(x, XFER_MAGIC);
    xfer_free(x);
}

void upstream_get_stats(const struct upstream *up, struct upstream_stats *out)
{
    struct transport_stats ts;

    CHECK_OBJ_NOTNULL(up, UPSTREAM_MAGIC);
    transport_get_stats(up->tp, &ts);
    out->us_requests = ts.ts_requests;
    out->us_token_fetches = up->token_fetches;
    out->us_retries = ts.ts_retries;
    out->us_bytes = ts.ts_bytes;
    out->us_pauses = ts.ts_pauses;
}

enum oci_error upstream_oci_error(enum upstream_result res, int status, enum oci_error notfound)
{
    if (res == UPSTREAM_HTTP) {
        switch (status) {
        case 404: return notfound;
        case 401: return OCI_ERR_UNAUTHORIZED;
        case 403: return OCI_ERR_DENIED;
        case 429: return OCI_ERR_TOOMANYREQUESTS;
        default: return OCI_ERR_UPSTREAM;
        }
    }
    if (res == UPSTREAM_AUTH_FAILED)
        return OCI_ERR_UNAUTHORIZED;
    if (res == UPSTREAM_TOO_LARGE)
        return OCI_ERR_MANIFEST_TOO_BIG;
    return OCI_ERR_UPSTREAM;
}
