/*
 * The AWS credential chain (docs/internals/credentials.md). One resolution walks the sources
 * in order and the first that is configured decides, its failure being the chain's:
 *   environment keys ─▶ shared files' static keys (profile) ─▶ web identity (STS, when
 *   AWS_WEB_IDENTITY_TOKEN_FILE is set) ─▶ container credentials (when a container URI is
 *   set) ─▶ IMDSv2 (unless disabled).
 * Every resolution runs from the timer on the loop, never on a caller's path: creds_start arms
 * it at once; credentials that expire arm it for expires_at - min(10 min, half their lifetime);
 * a failure arms it after a backoff (1 s doubling to 60 s). The held credentials keep serving
 * until they expire or better ones replace them; creds_get only copies them.
 */
#include "config.h"

#include "creds.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "creds-int.h"
#include "log.h"
#include "transport.h"
#include "util.h"

#define CREDS_MAGIC 0x43524453u  /* "CRDS" */
#define REGION_MAGIC 0x52474e51u /* "RGNQ" */
#define CREDS_BACKOFF_MIN 1
#define CREDS_BACKOFF_MAX 60
#define CREDS_RENEW_LEAD_MAX 600
#define CREDS_BODY_MAX (64 * 1024) /* an STS or container answer */
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

struct region_req {
    unsigned magic;
    struct creds *c;
    struct region_req *next;
    struct imds_op *op;
    creds_region_fn cb;
    void *arg;
};

struct creds {
    unsigned magic;
    struct event_base *base;
    struct transport *tp;
    struct creds_options o;
    struct imds *imds;
    struct aws_credentials held; /* valid while have and before held.ac_expires_at */
    int have;
    struct event *timer;       /* the next resolution: start, renewal or retry */
    int64_t backoff_s;         /* the wait after the next failure */
    struct transport_req *req; /* the web identity or container request in flight */
    struct imds_op *imds_op;   /* or the IMDS step in flight */
    char source[24];           /* the source of the resolution in flight */
    struct region_req *regions;
    struct creds_stats stats;
};

static void chain_resolve(struct creds *c);

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *default_getenv(const char *name)
{
    return getenv(name);
}

const char *creds_env(const struct creds *c, const char *name)
{
    const char *v = c->o.co_getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

int64_t creds_now(const struct creds *c)
{
    return c->o.co_clock();
}

struct transport *creds_transport(const struct creds *c)
{
    return c->tp;
}

struct event_base *creds_base(const struct creds *c)
{
    return c->base;
}

struct imds *creds_imds(const struct creds *c)
{
    return c->imds;
}

void creds_reason(const struct transport_outcome *o, char *out, size_t size)
{
    const char *s = o->to_err;
    size_t k = 0;

    if (o->to_res == UPSTREAM_HTTP) {
        snprintf(out, size, "answered %d", o->to_resp->ur_status);
        return;
    }
    /* Copy to_err, each URL in it cut after its host. */
    while (*s != '\0' && k + 1 < size) {
        const char *sep = strstr(s, "://");
        size_t n = sep != NULL ? (size_t)(sep - s) + 3 : strlen(s);
        n += sep != NULL ? strcspn(sep + 3, "/ ") : 0;
        if (n > size - 1 - k)
            n = size - 1 - k;
        memcpy(out + k, s, n);
        k += n;
        s += n;
        while (sep != NULL && *s != '\0' && *s != ' ' && !(s[0] == ':' && s[1] == ' '))
            s++; /* the path */
    }
    out[k] = '\0';
}

/* <s> form-urlencoded (application/x-www-form-urlencoded, unreserved bytes kept). Caller
 * frees. */
static char *form_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *p = out;

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}

/* ---- the end of a resolution -------------------------------------------------------------- */

static void arm(struct creds *c, int64_t delay_s)
{
    struct timeval tv = {(time_t)(delay_s > 0 ? delay_s : 0), 0};

    evtimer_add(c->timer, &tv);
}

static void iso_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL)
        str_copy(out, size, "never");
    else
        strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Held credentials offered again with less than this left: the source is stuck, a failure. */
#define CREDS_SAME_GRACE_S 10

static void failed(struct creds *c, const char *source, const char *err)
{
    int64_t delay = c->backoff_s;
    char in[32], n[32];

    c->stats.cs_failures++;
    c->backoff_s = c->backoff_s * 2 > CREDS_BACKOFF_MAX ? CREDS_BACKOFF_MAX : c->backoff_s * 2;
    arm(c, delay);
    snprintf(in, sizeof(in), "%llds", (long long)delay);
    snprintf(n, sizeof(n), "%llu", (unsigned long long)c->stats.cs_failures);
    log_event(LOG_WARN, "aws-credentials-failed", "source", source, "error", err, "retry_in", in,
              "failures", n, NULL);
    if (c->o.co_changed != NULL)
        c->o.co_changed(c->o.co_arg, 0, err);
}

/*
 * <ac> came from the chain: hold it, and arm the renewal when it expires. Credentials that
 * have expired already, or the very ones held again with the same expiry (a source that has
 * not renewed yet), are a failure: the held ones stay, and the retry backs off.
 */
static void obtained(struct creds *c, const struct aws_credentials *ac)
{
    int64_t now = creds_now(c), lead;
    char exp[32], in[32];

    if (ac->ac_expires_at != 0 && ac->ac_expires_at <= now) {
        failed(c, ac->ac_source, "the credentials had expired already");
        return;
    }
    if (c->have && ac->ac_expires_at != 0 && ac->ac_expires_at == c->held.ac_expires_at &&
        strcmp(ac->ac_access_key, c->held.ac_access_key) == 0) {
        /* Not renewed yet: IMDS hands out new ones only in the last minutes. Asked again in a
         * minute (or half what is left), quietly: no failure while the held ones serve. */
        int64_t left = ac->ac_expires_at - now, again = left / 2 < 60 ? left / 2 : 60;
        if (left <= CREDS_SAME_GRACE_S) {
            failed(c, ac->ac_source,
                   "the source gave the held credentials again, not renewed ones");
            return;
        }
        log_event(LOG_DEBUG, "aws-credentials-unchanged", "source", ac->ac_source, NULL);
        arm(c, again > 1 ? again : 1);
        return;
    }
    c->held = *ac; /* overwrites the old ones whole */
    c->have = 1;
    c->stats.cs_refreshes++;
    c->backoff_s = CREDS_BACKOFF_MIN;
    iso_time(ac->ac_expires_at, exp, sizeof(exp));
    if (ac->ac_expires_at != 0) {
        lead = (ac->ac_expires_at - now) / 2;
        if (lead > CREDS_RENEW_LEAD_MAX)
            lead = CREDS_RENEW_LEAD_MAX;
        arm(c, ac->ac_expires_at - lead - now);
        snprintf(in, sizeof(in), "%llds", (long long)(ac->ac_expires_at - lead - now));
    } else {
        str_copy(in, sizeof(in), "never");
    }
    log_event(LOG_INFO, "aws-credentials", "source", ac->ac_source, "expires", exp, "renew_in", in,
              NULL);
    if (c->o.co_changed != NULL)
        c->o.co_changed(c->o.co_arg, 1, NULL);
}

/* ---- web identity (STS AssumeRoleWithWebIdentity) ------------------------------------------ */

/* Where STS is: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the region's endpoint, the global one.
 * Caller frees. */
static char *sts_url(struct creds *c)
{
    const char *u = creds_env(c, "AWS_ENDPOINT_URL_STS"), *region;

    if (u == NULL)
        u = creds_env(c, "AWS_ENDPOINT_URL");
    if (u != NULL)
        return u[strlen(u) - 1] == '/' ? xstrdup(u) : xasprintf("%s/", u);
    region = creds_env(c, "AWS_REGION");
    if (region == NULL)
        region = creds_env(c, "AWS_DEFAULT_REGION");
    if (region == NULL)
        return xstrdup("https://sts.amazonaws.com/");
    return xasprintf("https://sts.%s.amazonaws.com%s/", region,
                     strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

static void sts_done(void *arg, const struct transport_outcome *o)
{
    struct creds *c;
    struct aws_credentials ac;
    char *err = NULL, why[300], msg[512];

    CAST_OBJ_NOTNULL(c, arg, CREDS_MAGIC);
    c->req = NULL;
    memset(&ac, 0, sizeof(ac));
    if (o->to_res == UPSTREAM_OK) {
        if (aws_parse_sts_web_identity(o->to_body, o->to_body_len, &ac, &err) == 0)
            obtained(c, &ac);
        else
            failed(c, "web-identity", err);
    } else {
        creds_reason(o, why, sizeof(why));
        /* An error answer says why in its XML: Code and Message, never the token. */
        if (o->to_res == UPSTREAM_HTTP &&
            aws_parse_sts_web_identity(o->to_body, o->to_body_len, &ac, &err) == -1 &&
            strncmp(err, "STS error", 9) == 0)
            snprintf(msg, sizeof(msg), "STS %s: %s", why, err);
        else
            snprintf(msg, sizeof(msg), "STS %s", why);
        failed(c, "web-identity", msg);
    }
    explicit_bzero(&ac, sizeof(ac));
    free(err);
}

static void start_web_identity(struct creds *c, const char *token_file)
{
    static const struct transport_callbacks cbs = {NULL, NULL, NULL, sts_done};
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded",
                                       "Accept: text/xml", NULL};
    const char *role = creds_env(c, "AWS_ROLE_ARN"), *name = creds_env(c, "AWS_ROLE_SESSION_NAME");
    struct transport_request rq;
    char *token, *err = NULL, *url, *e_role, *e_name, *e_token, *body, pidname[64];

    if (role == NULL) {
        failed(c, "web-identity", "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        return;
    }
    /* Read again on every renewal: the kubelet rotates the token (IRSA). */
    token = creds_read_token_file(token_file, "web identity token file", &err);
    if (token == NULL) {
        failed(c, "web-identity", err);
        free(err);
        return;
    }
    if (name == NULL) {
        snprintf(pidname, sizeof(pidname), "ecr-ptc-proxy-%ld", (long)getpid());
        name = pidname;
    }
    e_role = form_escape(role);
    e_name = form_escape(name);
    e_token = form_escape(token);
    body = xasprintf("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s"
                     "&RoleSessionName=%s&WebIdentityToken=%s",
                     e_role, e_name, e_token);
    url = sts_url(c);
    memset(&rq, 0, sizeof(rq));
    rq.tr_method = TRANSPORT_POST;
    rq.tr_url = url;
    rq.tr_headers = hdrs;
    rq.tr_body_kind = TRANSPORT_BODY_MEMORY;
    rq.tr_body = body;
    rq.tr_body_len = strlen(body);
    /* STS is a public AWS endpoint, no metadata one: through the egress proxy the environment
     * names, as the SDKs go there. */
    rq.tr_proxy = NULL;
    rq.tr_check_address = 0;
    rq.tr_max_retries = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    rq.tr_buffer_max = CREDS_BODY_MAX;
    rq.tr_timeout_ms = 15000;
    c->req = transport_start(c->tp, &rq, &cbs, c);
    creds_wipe_free(body);
    creds_wipe_free(e_token);
    creds_wipe_free(token);
    free(e_role);
    free(e_name);
    free(url);
}

/* ---- container credentials (ECS, EKS Pod Identity) -------------------------------------- */

/*
 * May the chain ask <url> (AWS_CONTAINER_CREDENTIALS_FULL_URI) for credentials? As the SDKs
 * allow: https anywhere; http to a loopback address, "localhost", or the ECS and EKS hosts
 * 169.254.170.2, 169.254.170.23, [fd00:ec2::23]. Names other than localhost are not resolved
 * here: over http they are refused.
 */
static int full_uri_allowed(const char *url)
{
    static const char *const hosts[] = {"localhost", "169.254.170.2", "169.254.170.23",
                                        "[fd00:ec2::23]", "[::1]"};
    const char *h;
    size_t n;

    if (strncasecmp(url, "https://", 8) == 0)
        return 1;
    if (strncasecmp(url, "http://", 7) != 0)
        return 0;
    h = url + 7;
    n = strcspn(h, "/?#");
    if (memchr(h, '@', n) != NULL)
        return 0;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (close == NULL)
            return 0;
        n = (size_t)(close - h) + 1;
    } else {
        n = strcspn(h, ":/?#");
    }
    for (size_t i = 0; i < ARRAY_LEN(hosts); i++)
        if (strlen(hosts[i]) == n && strncasecmp(h, hosts[i], n) == 0)
            return 1;
    /* 127.0.0.0/8, as a dotted quad of digits. */
    if (n >= 9 && strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") >= n) {
        int dots = 0;
        for (size_t i = 0; i < n; i++)
            dots += h[i] == '.';
        return dots == 3;
    }
    return 0;
}

static void container_done(void *arg, const struct transport_outcome *o)
{
    struct creds *c;
    struct aws_credentials ac;
    char *err = NULL, why[300], msg[400];

    CAST_OBJ_NOTNULL(c, arg, CREDS_MAGIC);
    c->req = NULL;
    memset(&ac, 0, sizeof(ac));
    if (o->to_res != UPSTREAM_OK) {
        creds_reason(o, why, sizeof(why));
        snprintf(msg, sizeof(msg), "container credentials endpoint %s", why);
        failed(c, "container", msg);
    } else if (aws_parse_creds_json(o->to_body, o->to_body_len, &ac, &err) == -1) {
        failed(c, "container", err);
    } else {
        str_copy(ac.ac_source, sizeof(ac.ac_source), "container");
        obtained(c, &ac);
    }
    explicit_bzero(&ac, sizeof(ac));
    free(err);
}

static void start_container(struct creds *c, const char *relative, const char *full)
{
    static const struct transport_callbacks cbs = {NULL, NULL, NULL, container_done};
    const char *tfile = creds_env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *hdrs[3] = {"Accept: application/json", NULL, NULL};
    struct transport_request rq;
    char *url, *token = NULL, *auth = NULL, *err = NULL;

    if (relative != NULL && relative[0] != '/') {
        failed(c, "container", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with /");
        return;
    }
    if (relative == NULL && !full_uri_allowed(full)) {
        failed(c, "container",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address "
               "or the ECS or EKS credentials host");
        return;
    }
    if (tfile != NULL) {
        /* Read again on every renewal: EKS Pod Identity rotates it. */
        token = creds_read_token_file(tfile, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &err);
        if (token == NULL) {
            failed(c, "container", err);
            free(err);
            return;
        }
    } else if (creds_env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN") != NULL) {
        token = xstrdup(creds_env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN"));
        if (strpbrk(token, "\r\n") != NULL) {
            creds_wipe_free(token);
            failed(c, "container", "AWS_CONTAINER_AUTHORIZATION_TOKEN is not one line");
            return;
        }
    }
    if (token != NULL) {
        auth = xasprintf("Authorization: %s", token);
        hdrs[1] = auth;
    }
    url = relative != NULL ? xasprintf("%s%s", CONTAINER_HOST, relative) : xstrdup(full);
    memset(&rq, 0, sizeof(rq));
    rq.tr_method = TRANSPORT_GET;
    rq.tr_url = url;
    rq.tr_headers = hdrs;
    rq.tr_proxy = "";
    rq.tr_check_address = 0;
    rq.tr_metadata = 1;
    rq.tr_max_retries = 2;
    rq.tr_retry_status = 1;
    rq.tr_max_body = -1;
    rq.tr_buffer_max = CREDS_BODY_MAX;
    rq.tr_connect_timeout_ms = 1000;
    rq.tr_timeout_ms = 5000;
    c->req = transport_start(c->tp, &rq, &cbs, c);
    creds_wipe_free(auth);
    creds_wipe_free(token);
    free(url);
}

/* ---- IMDSv2 ------------------------------------------------------------------------------- */

static void imds_creds_done(void *arg, int ok, const char *body, size_t len, const char *err)
{
    struct creds *c;
    struct aws_credentials ac;
    char *perr = NULL;

    CAST_OBJ_NOTNULL(c, arg, CREDS_MAGIC);
    c->imds_op = NULL;
    memset(&ac, 0, sizeof(ac));
    if (!ok) {
        failed(c, "imds", err);
    } else if (aws_parse_creds_json(body, len, &ac, &perr) == -1) {
        failed(c, "imds", perr);
    } else {
        str_copy(ac.ac_source, sizeof(ac.ac_source), "imds");
        obtained(c, &ac);
    }
    explicit_bzero(&ac, sizeof(ac));
    free(perr);
}

/* The role name: the list's first line, as IAM spells names ([\w+=,.@-], 1 to 64). */
static int role_name(const char *body, size_t len, char out[65])
{
    size_t n = strcspn(body, "\r\n");

    if (n > len)
        n = len;
    if (n == 0 || n > 64)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = body[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              strchr("_+=,.@-", ch) != NULL))
            return -1;
    }
    memcpy(out, body, n);
    out[n] = '\0';
    return 0;
}

static void imds_role_done(void *arg, int ok, const char *body, size_t len, const char *err)
{
    struct creds *c;
    char role[65], *path;

    CAST_OBJ_NOTNULL(c, arg, CREDS_MAGIC);
    c->imds_op = NULL;
    if (!ok) {
        failed(c, "imds", err);
        return;
    }
    if (role_name(body, len, role) == -1) {
        failed(c, "imds", "IMDS names no usable IAM role (is an instance profile attached?)");
        return;
    }
    path = xasprintf("%s%s", IMDS_CREDS_PATH, role);
    c->imds_op = imds_get(c->imds, path, imds_creds_done, c);
    free(path);
}

/* ---- the chain ------------------------------------------------------------------------------ */

static void chain_resolve(struct creds *c)
{
    struct aws_credentials ac;
    const char *v, *full;
    char *err = NULL;
    int rc;

    memset(&ac, 0, sizeof(ac));
    str_copy(c->source, sizeof(c->source), "environment");
    rc = creds_from_env(c, &ac, &err);
    if (rc == 0) {
        str_copy(c->source, sizeof(c->source), "profile");
        rc = creds_from_profile(c, &ac, &err);
    }
    if (rc == 1)
        obtained(c, &ac);
    else if (rc == -1)
        failed(c, c->source, err);
    explicit_bzero(&ac, sizeof(ac));
    free(err);
    if (rc != 0)
        return;
    if ((v = creds_env(c, "AWS_WEB_IDENTITY_TOKEN_FILE")) != NULL) {
        str_copy(c->source, sizeof(c->source), "web-identity");
        start_web_identity(c, v);
        return;
    }
    v = creds_env(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    full = creds_env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (v != NULL || full != NULL) {
        str_copy(c->source, sizeof(c->source), "container");
        start_container(c, v, full);
        return;
    }
    str_copy(c->source, sizeof(c->source), "imds");
    c->imds_op = imds_get(c->imds, IMDS_CREDS_PATH, imds_role_done, c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct creds *c;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, CREDS_MAGIC);
    chain_resolve(c);
}

/* ---- region ------------------------------------------------------------------------------- */

static void region_done(void *arg, int ok, const char *body, size_t len, const char *err)
{
    struct region_req *q, **pp;
    struct creds *c;
    char region[64];
    size_t n;

    CAST_OBJ_NOTNULL(q, arg, REGION_MAGIC);
    c = q->c;
    for (pp = &c->regions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    n = ok ? strcspn(body, "\r\n \t") : 0;
    if (ok && (n == 0 || n >= sizeof(region) || n > len ||
               strspn(body, "abcdefghijklmnopqrstuvwxyz0123456789-") < n)) {
        ok = 0;
        err = "IMDS answered no usable region";
    }
    if (ok) {
        memcpy(region, body, n);
        region[n] = '\0';
        q->cb(q->arg, region, NULL);
    } else {
        q->cb(q->arg, NULL, err);
    }
    q->magic = 0;
    free(q);
}

void creds_imds_region(struct creds *c, creds_region_fn cb, void *arg)
{
    struct region_req *q = xcalloc(1, sizeof(*q));

    CHECK_OBJ_NOTNULL(c, CREDS_MAGIC);
    q->magic = REGION_MAGIC;
    q->c = c;
    q->cb = cb;
    q->arg = arg;
    q->next = c->regions;
    c->regions = q;
    q->op = imds_get(c->imds, "/latest/meta-data/placement/region", region_done, q);
}

/* ---- public ------------------------------------------------------------------------------- */

struct creds *creds_create(struct event_base *base, struct transport *tp,
                           const struct creds_options *o, char **err)
{
    struct creds *c = xcalloc(1, sizeof(*c));
    const char *v;
    int disabled;

    *err = NULL;
    c->magic = CREDS_MAGIC;
    c->base = base;
    c->tp = tp;
    c->o = *o;
    if (c->o.co_getenv == NULL)
        c->o.co_getenv = default_getenv;
    if (c->o.co_clock == NULL)
        c->o.co_clock = util_now;
    c->backoff_s = CREDS_BACKOFF_MIN;
    c->timer = evtimer_new(base, timer_cb, c);
    v = creds_env(c, "AWS_EC2_METADATA_DISABLED");
    disabled = v != NULL && strcasecmp(v, "true") == 0;
    v = creds_env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (v != NULL && strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0) {
        *err = xstrdup("AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http or https URL");
        creds_destroy(c);
        return NULL;
    }
    c->imds = imds_new(c, v != NULL ? v : IMDS_DEFAULT, disabled);
    /* The metadata endpoints this environment names are for these requests only. */
    if ((v != NULL && transport_deny_endpoint(tp, v, err) == -1) ||
        ((v = creds_env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) != NULL &&
         transport_deny_endpoint(tp, v, err) == -1)) {
        creds_destroy(c);
        return NULL;
    }
    return c;
}

void creds_destroy(struct creds *c)
{
    if (c == NULL)
        return;
    CHECK_OBJ_NOTNULL(c, CREDS_MAGIC);
    transport_cancel(c->req);
    while (c->regions != NULL) {
        struct region_req *q = c->regions;
        c->regions = q->next;
        imds_cancel(q->op);
        q->magic = 0;
        free(q);
    }
    imds_cancel(c->imds_op);
    imds_free(c->imds);
    if (c->timer != NULL)
        event_free(c->timer);
    explicit_bzero(&c->held, sizeof(c->held));
    c->magic = 0;
    free(c);
}

void creds_start(struct creds *c)
{
    CHECK_OBJ_NOTNULL(c, CREDS_MAGIC);
    transport_cancel(c->req);
    c->req = NULL;
    imds_cancel(c->imds_op);
    c->imds_op = NULL;
    c->backoff_s = CREDS_BACKOFF_MIN;
    arm(c, 0);
}

int creds_get(struct creds *c, struct aws_credentials *out)
{
    CHECK_OBJ_NOTNULL(c, CREDS_MAGIC);
    if (!c->have || (c->held.ac_expires_at != 0 && creds_now(c) >= c->held.ac_expires_at))
        return 0;
    *out = c->held;
    return 1;
}

void creds_get_stats(const struct creds *c, struct creds_stats *out)
{
    CHECK_OBJ_NOTNULL(c, CREDS_MAGIC);
    *out = c->stats;
    out->cs_expires_at = c->have ? c->held.ac_expires_at : 0;
    str_copy(out->cs_source, sizeof(out->cs_source), c->have ? c->held.ac_source : "");
}
