/*
 * The OCI Distribution API handlers (pull category): /v2/, manifests, blobs, tags/list,
 * referrers, /healthz, and the spec's error JSON for everything else.
 *
 * A request is routed (proxy_route: URI grammar; policy_rules: which upstream), then:
 *  - manifest by tag: the index's entry and policy_refresh decide between the cache, a HEAD
 *    upstream (a GET only when the digest changed), or stale-if-error;
 *  - manifest by digest: the store, else one buffered fetch per digest shared by every
 *    waiting client, verified before it is stored;
 *  - blob: the store (sendfile, Range), else the fill for that digest (proxy_fill).
 * Content fetched for one repository is served under another only when the index knows
 * that repository references it, or upstream confirms it with a HEAD.
 */
#include "config.h"

#include "api.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include "db_index.h"
#include "policy_refresh.h"
#include "policy_rules.h"
#include "config_file.h"
#include "fill.h"
#include "hot.h"
#include "log.h"
#include "manifest.h"
#include "range.h"
#include "reply.h"
#include "route.h"
#include "exchange.h"
#include "server.h"
#include "store.h"
#include "registry.h"
#include "util.h"

#define API_MAGIC 0x41504921u   /* "API!" */
#define MREQ_MAGIC 0x4d524551u  /* "MREQ" */
#define FETCH_MAGIC 0x46544348u /* "FTCH" */
#define TAGS_BODY_MAX (4 * 1024 * 1024)
/* The distribution spec's warning: clients show only code 299 to their users. */
#define STALE_WARNING "299 - \"stale: upstream failed, serving the cached copy\""
#define REFERRERS_BODY_MAX (4 * 1024 * 1024)

struct fetch;
struct tags_acc;

/* Counters for /metrics (Prometheus text format). */
struct api_metrics {
    uint64_t requests[5];       /* by route kind: base, manifest, blob, tags, referrers */
    uint64_t manifest_hits, manifest_misses;
    uint64_t blob_hits, blob_misses;
    uint64_t tag_fresh, tag_checks, tag_changed, tag_check_errors, stale_served;
    uint64_t confirmations;     /* HEADs sent: does this repository hold a digest stored here? */
    uint64_t bytes_from_store;  /* body bytes served from stored files */
};

struct api {
    unsigned magic;
    struct event_base *base;
    const struct config *cfg;
    struct server *srv;
    struct store *st;
    struct index *ix;
    struct upstream *up;
    struct fills *fills;
    struct rules_rule *rules;
    struct upstream_origin *origins; /* one per rule, in cfg_rules' order */
    struct fetch *fetches;  /* buffered upstream fetches in flight, shared by key */

    /* Hits are written to the index in batches, off the hot path of every request. */
    struct event *flush;
    int64_t *pulled_repos;
    char **pulled_tags;
    size_t npulled;
    char **touched;
    size_t ntouched;
    struct api_metrics mx;
    int64_t started_at;

    /* In-memory copies of what the index and the store said, for the hot path. */
    struct hot *hot_repos;     /* "rule\nname" -> repository id */
    struct hot *hot_tags;      /* "repo\ntag" -> struct index_tag */
    struct hot *hot_known;     /* "repo\ndigest" -> "" (index_repo_has said 1) */
    struct hot *hot_manifests; /* digest -> media type, NUL, manifest bytes */
    /*
     * Repositories upstream has not confirmed yet live only here, under ids from -2 down
     * (-1 is the index's error): "rule\nname" -> id and "#id" -> "rule\nname". The index row
     * is made by repo_confirm, when upstream first answers with content for it, so anonymous
     * probes of made-up names never grow the repositories table.
     */
    struct hot *hot_pending;
    int64_t next_pending;
};

#define API_BATCH_MAX 4096
#define API_FLUSH_SECONDS 5

/* One client request that waits on something. */
struct mreq {
    unsigned magic;
    struct api *api;
    struct evhttp_request *req;
    struct exchange *x;
    int gone, head;
    struct route_req rt;
    const struct config_rule *rule;
    char upname[RULES_NAME_MAX];
    int64_t repo;
    int have_tag;
    struct index_tag tag;
    char accept[1024];
    char tagname[ROUTE_REF_MAX + 1]; /* the tag asked for, "" for pulls by digest */
    char want[INDEX_DIGEST_MAX];     /* the digest being fetched */
    int child;                       /* serving the platform child of the tag's index */
    struct tags_acc *tags;           /* tags/list: upstream's pages gathered so far */
    void (*cont)(struct mreq *m, struct fetch *f);
    struct mreq *next_waiter;
};

/* A buffered upstream request (manifests, HEADs, tags, referrers) and its waiters. */
struct fetch {
    unsigned magic;
    struct api *api;
    struct fetch *next;
    char *key;
    struct upstream_xfer *xfer;
    char *body;
    size_t len, cap;
    int64_t max;
    enum upstream_result res;
    struct upstream_response resp;
    char err[512];
    int stored;           /* a manifest: committed and indexed by its first waiter */
    struct mreq *waiters;
};

/* ---- responses -------------------------------------------------------------------------- */

/* The OCI error that answers a failed upstream request. */
static enum oci_error upstream_error(enum upstream_result res, int status, enum oci_error notfound)
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

/* Serve stored <digest> (http_send_file); -1 when it is not in the store or unreadable. */
static int serve_stored(struct evhttp_request *req, struct exchange *x, const struct store *st,
                        const char *digest, const char *content_type, const char *warning,
                        int ranges)
{
    int64_t size;
    int fd = store_open_blob(st, digest, &size);

    if (fd == -1)
        return -1;
    return http_send_file(req, x, fd, size, digest, content_type, warning, ranges);
}

/* ---- batched index writes --------------------------------------------------------------- */

/* Write the pending last_pulled_at and last_access stamps in one transaction each. */
static void api_flush(struct api *api)
{
    int64_t now = util_now();

    if (api->npulled > 0) {
        if (index_tags_pulled(api->ix, api->pulled_repos, (const char *const *)api->pulled_tags,
                              api->npulled, now) == -1)
            log_event(LOG_WARN, "index-write-failed", "what", "last_pulled_at", NULL);
        for (size_t i = 0; i < api->npulled; i++)
            free(api->pulled_tags[i]);
        api->npulled = 0;
    }
    if (api->ntouched > 0) {
        if (index_blobs_touch(api->ix, (const char *const *)api->touched, api->ntouched, now) == -1)
            log_event(LOG_WARN, "index-write-failed", "what", "last_access", NULL);
        for (size_t i = 0; i < api->ntouched; i++)
            free(api->touched[i]);
        api->ntouched = 0;
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    api_flush(api);
}

/* Remember that <tag> of <repo> was pulled; written at the next flush. */
static void note_pulled(struct api *api, int64_t repo, const char *tag)
{
    if (api->npulled > 0 && api->pulled_repos[api->npulled - 1] == repo &&
        strcmp(api->pulled_tags[api->npulled - 1], tag) == 0)
        return;
    if (api->npulled == API_BATCH_MAX)
        api_flush(api);
    api->pulled_repos[api->npulled] = repo;
    api->pulled_tags[api->npulled++] = xstrdup(tag);
}

/* Remember that stored <digest> was served; written at the next flush. */
static void note_touched(struct api *api, const char *digest)
{
    if (api->ntouched > 0 && strcmp(api->touched[api->ntouched - 1], digest) == 0)
        return;
    if (api->ntouched == API_BATCH_MAX)
        api_flush(api);
    api->touched[api->ntouched++] = xstrdup(digest);
}

/* ---- the hot maps ------------------------------------------------------------------------
 *
 * Every read below tries memory first and fills it from the index; every write goes to the
 * index and then drops or updates the copy, so a copy is never newer or older than the row.
 * Only positive answers are kept ("known in this repository" never becomes false while the
 * proxy runs: the index drops such rows only in index_reconcile, at start).
 */

#define HOT_REPOS 4096
#define HOT_TAGS 16384
#define HOT_KNOWN 65536
#define HOT_MANIFESTS 2048
#define HOT_MANIFEST_BYTES (16 * 1024 * 1024)

static void hot_key2(char *out, size_t size, int64_t repo, const char *s)
{
    snprintf(out, size, "%" PRId64 "\n%s", repo, s);
}

#define REPO_KEY_MAX (RULES_NAME_MAX + 256)

/*
 * The id of repository (<rule>, <name>): the index's when it has a row, else a pending id
 * (< -1) held in memory until repo_confirm; -1 on an index error.
 */
static int64_t repo_id_cached(struct api *api, const char *rule, const char *name)
{
    char key[REPO_KEY_MAX], rkey[32];
    const void *v;
    size_t n;
    int64_t id;

    snprintf(key, sizeof(key), "%s\n%s", rule, name);
    v = hot_get(api->hot_repos, key, &n);
    if (v != NULL && n == sizeof(id)) {
        memcpy(&id, v, sizeof(id));
        return id;
    }
    id = index_repo_find(api->ix, rule, name);
    if (id > 0) {
        hot_put(api->hot_repos, key, &id, sizeof(id));
        return id;
    }
    if (id == -1)
        return -1;
    v = hot_get(api->hot_pending, key, &n);
    if (v != NULL && n == sizeof(id)) {
        memcpy(&id, v, sizeof(id));
        return id;
    }
    id = api->next_pending--;
    hot_put(api->hot_pending, key, &id, sizeof(id));
    snprintf(rkey, sizeof(rkey), "#%" PRId64, id);
    hot_put(api->hot_pending, rkey, key, strlen(key) + 1);
    return id;
}

/*
 * Upstream answered with content for repository <repo>: make its index row if it is still
 * pending. Returns the index's id, or -1 when the row cannot be made (or the pending entry
 * was evicted: the caller then records nothing, which only costs a later confirmation).
 */
static int64_t repo_confirm(struct api *api, int64_t repo)
{
    char rkey[32], key[REPO_KEY_MAX];
    const char *v, *nl;
    size_t n;
    int64_t id;

    if (repo > 0 || repo == -1)
        return repo;
    snprintf(rkey, sizeof(rkey), "#%" PRId64, repo);
    v = hot_get(api->hot_pending, rkey, &n);
    if (v == NULL || n == 0 || n > sizeof(key) || v[n - 1] != '\0')
        return -1;
    memcpy(key, v, n);
    nl = strchr(key, '\n');
    if (nl == NULL)
        return -1;
    key[nl - key] = '\0';
    id = index_repo_id(api->ix, key, nl + 1);
    key[nl - key] = '\n';
    if (id <= 0)
        return -1;
    hot_put(api->hot_repos, key, &id, sizeof(id));
    /* New requests find the row now; "#id" stays until evicted, so requests that already
     * hold the pending id (a fetch's other waiters, a fill's) resolve to the same row. */
    hot_del(api->hot_pending, key);
    return id;
}

static int tag_get_cached(struct api *api, int64_t repo, const char *tag, struct index_tag *out)
{
    char key[ROUTE_REF_MAX + 32];
    const void *v;
    size_t n;
    int rc;

    hot_key2(key, sizeof(key), repo, tag);
    v = hot_get(api->hot_tags, key, &n);
    if (v != NULL && n == sizeof(*out)) {
        memcpy(out, v, sizeof(*out));
        return 1;
    }
    rc = index_tag_get(api->ix, repo, tag, out);
    if (rc == 1)
        hot_put(api->hot_tags, key, out, sizeof(*out));
    return rc;
}

static void tag_forget(struct api *api, int64_t repo, const char *tag)
{
    char key[ROUTE_REF_MAX + 32];

    hot_key2(key, sizeof(key), repo, tag);
    hot_del(api->hot_tags, key);
}

static int tag_put_cached(struct api *api, int64_t repo, const char *tag, const char *digest,
                          const char *media_type, int64_t now)
{
    int rc;

    repo = repo_confirm(api, repo);
    if (repo <= 0)
        return -1;
    rc = index_tag_put(api->ix, repo, tag, digest, media_type, now);
    tag_forget(api, repo, tag);
    return rc;
}

static int tag_checked_cached(struct api *api, int64_t repo, const char *tag, int64_t now)
{
    int rc = index_tag_checked(api->ix, repo, tag, now);
    tag_forget(api, repo, tag);
    return rc;
}

static int repo_has_cached(struct api *api, int64_t repo, const char *digest)
{
    char key[INDEX_DIGEST_MAX + 32];
    int rc;

    hot_key2(key, sizeof(key), repo, digest);
    if (hot_get(api->hot_known, key, NULL) != NULL)
        return 1;
    rc = index_repo_has(api->ix, repo, digest);
    if (rc == 1)
        hot_put(api->hot_known, key, "", 0);
    return rc;
}

static int repo_add_cached(struct api *api, int64_t repo, const char *digest)
{
    char key[INDEX_DIGEST_MAX + 32];
    int rc;

    repo = repo_confirm(api, repo);
    if (repo <= 0)
        return -1;
    rc = index_repo_digest_add(api->ix, repo, digest);

    if (rc == 0) {
        hot_key2(key, sizeof(key), repo, digest);
        hot_put(api->hot_known, key, "", 0);
    }
    return rc;
}

/* Keep manifest <digest> (verified bytes) and its media type in memory. */
static void manifest_remember(struct api *api, const char *digest, const char *media_type,
                              const char *body, size_t len)
{
    size_t mtl = strlen(media_type);
    char *v = xmalloc(mtl + 1 + len);

    memcpy(v, media_type, mtl + 1);
    memcpy(v + mtl + 1, body, len);
    hot_put(api->hot_manifests, digest, v, mtl + 1 + len);
    free(v);
}

/* The in-memory manifest <digest>: its media type, bytes and length; NULL when not held. */
static const char *manifest_recall(struct api *api, const char *digest, const char **body,
                                   size_t *len)
{
    size_t n;
    const char *v = hot_get(api->hot_manifests, digest, &n);
    size_t mtl;

    if (v == NULL)
        return NULL;
    mtl = strnlen(v, n);
    if (mtl == n)
        return NULL;
    *body = v + mtl + 1;
    *len = n - mtl - 1;
    return v;
}

/* ---- waiting requests ------------------------------------------------------------------- */

static void mreq_gone_cb(void *arg)
{
    struct mreq *m = arg;

    CHECK_OBJ_NOTNULL(m, MREQ_MAGIC);
    m->gone = 1;
    m->x = NULL;
}

static struct mreq *mreq_new(struct api *api, struct evhttp_request *req, struct exchange *x)
{
    struct mreq *m = xcalloc(1, sizeof(*m));
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    size_t n = 0;

    m->magic = MREQ_MAGIC;
    m->api = api;
    m->req = req;
    m->x = x;
    m->head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    /* Clients such as skopeo send one Accept header per media type: join them all. */
    TAILQ_FOREACH(kv, in, next) {
        size_t vl;
        if (strcasecmp(kv->key, "Accept") != 0)
            continue;
        vl = strlen(kv->value);
        if (n + vl + 3 >= sizeof(m->accept))
            break;
        if (n > 0) {
            memcpy(m->accept + n, ", ", 2);
            n += 2;
        }
        memcpy(m->accept + n, kv->value, vl);
        n += vl;
        m->accept[n] = '\0';
    }
    return m;
}

/*
 * The gone callback is hooked only while <m> waits on the network (fetch_join); synchronous
 * code runs unhooked, so a reply that completes at once (and frees the exchange) is safe.
 */
static void mreq_hook(struct mreq *m)
{
    if (m->x != NULL)
        exchange_on_gone(m->x, mreq_gone_cb, m);
}

static void mreq_unhook(struct mreq *m)
{
    if (m->x != NULL)
        exchange_on_gone(m->x, NULL, NULL);
}

/* The request is answered (or its client left): release it. */
static void tags_acc_free(struct mreq *m);

static void mreq_free(struct mreq *m)
{
    tags_acc_free(m);
    if (m->gone && m->req != NULL && evhttp_request_get_connection(m->req) == NULL)
        evhttp_send_reply_end(m->req); /* frees the detached request */
    m->magic = 0;
    free(m);
}

/* Answer <m> with an error and release it. */
static void mreq_error(struct mreq *m, enum oci_error e, const char *msg, const char *detail)
{
    if (!m->gone)
        http_send_error(m->req, e, msg, detail);
    mreq_free(m);
}

/* ---- buffered fetches ------------------------------------------------------------------- */

static int fetch_on_data(void *arg, const char *data, size_t len)
{
    struct fetch *f = arg;

    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);

    if (f->len + len > (size_t)f->max)
        return -1;
    if (f->len + len + 1 > f->cap) {
        f->cap = (f->len + len + 1) * 2;
        if (f->cap > (size_t)f->max + 1)
            f->cap = (size_t)f->max + 1;
        f->body = xrealloc(f->body, f->cap);
    }
    memcpy(f->body + f->len, data, len);
    f->len += len;
    f->body[f->len] = '\0';
    return 0;
}

static void fetch_on_done(void *arg, enum upstream_result res, const struct upstream_response *r,
                          const char *err, const char *body, size_t body_len)
{
    struct fetch *f = arg;
    struct api *api;
    struct fetch **pp;
    struct mreq *w, *next;

    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    api = f->api;
    f->xfer = NULL;
    f->res = res;
    f->resp = *r;
    if (res == UPSTREAM_ABORTED && f->len >= (size_t)f->max)
        f->res = UPSTREAM_TOO_LARGE;
    str_copy(f->err, sizeof(f->err), err);
    if (res == UPSTREAM_HTTP && f->body == NULL && body_len > 0) {
        f->body = xstrndup(body, body_len);
        f->len = strlen(f->body);
    }
    for (pp = &api->fetches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    for (w = f->waiters; w != NULL; w = next) {
        next = w->next_waiter;
        w->next_waiter = NULL;
        mreq_unhook(w);
        if (w->gone)
            mreq_free(w);
        else
            w->cont(w, f);
    }
    free(f->key);
    free(f->body);
    f->magic = 0;
    free(f);
}

/*
 * Join the fetch named <key>, or start it with <t>; <m> continues in <cont> when it ends.
 * Returns 1 when this call sent a request upstream, 0 when it joined one in flight.
 */
static int fetch_join(struct mreq *m, const char *key, const struct upstream_target *t,
                      void (*cont)(struct mreq *, struct fetch *))
{
    struct api *api = m->api;
    struct fetch *f;
    static const struct upstream_callbacks cbs = {NULL, fetch_on_data, fetch_on_done};

    m->cont = cont;
    mreq_hook(m);
    for (f = api->fetches; f != NULL; f = f->next)
        if (strcmp(f->key, key) == 0)
            break;
    if (f == NULL) {
        f = xcalloc(1, sizeof(*f));
        f->magic = FETCH_MAGIC;
        f->api = api;
        f->key = xstrdup(key);
        f->max = t->ut_max_body >= 0 ? t->ut_max_body : MANIFEST_MAX_BYTES;
        f->next = api->fetches;
        api->fetches = f;
        f->waiters = m;
        f->xfer = upstream_start(api->up, t, &cbs, f);
        return 1;
    }
    m->next_waiter = f->waiters;
    f->waiters = m;
    return 0;
}

static void target_init(struct upstream_target *t, const struct mreq *m, const char *path,
                        int head)
{
    memset(t, 0, sizeof(*t));
    t->ut_origin = &m->api->origins[m->rule - m->api->cfg->cfg_rules];
    t->ut_name = m->upname;
    t->ut_path = path;
    t->ut_head = head;
    t->ut_max_retries = 2;
    t->ut_max_body = -1;
}

/* ---- manifests -------------------------------------------------------------------------- */

static void digest_of(const char *alg_of, const char *data, size_t len, char *out, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char digits[] = "0123456789abcdef";
    int sha512 = alg_of != NULL && strncmp(alg_of, "sha512:", 7) == 0;
    size_t p;

    EVP_Digest(data, len, md, &n, sha512 ? EVP_sha512() : EVP_sha256(), NULL);
    p = (size_t)snprintf(out, size, "%s", sha512 ? "sha512:" : "sha256:");
    for (unsigned i = 0; i < n && p + 2 < size; i++) {
        out[p++] = digits[md[i] >> 4];
        out[p++] = digits[md[i] & 15];
    }
    out[p] = '\0';
}

static const char *const manifest_kinds[] = {
    [MANIFEST_REF_CONFIG] = "config", [MANIFEST_REF_LAYER] = "layer",
    [MANIFEST_REF_MANIFEST] = "manifest", [MANIFEST_REF_SUBJECT] = "subject",
    [MANIFEST_REF_BLOB] = "blob",
};

/* Index manifest <digest> (<body>, <len>) for <m>'s repository with what it references. */
static int manifest_index(struct mreq *m, const char *digest, const char *media_type,
                          const char *body, size_t len)
{
    struct manifest_info mi;
    const char *err = NULL;
    struct index_child *kids = NULL;
    int rc;

    m->repo = repo_confirm(m->api, m->repo);
    if (m->repo <= 0)
        return -1;
    memset(&mi, 0, sizeof(mi));
    if (manifest_parse(body, len, media_type, &mi, &err) == -1)
        return index_manifest_put(m->api->ix, m->repo, digest, media_type, (int64_t)len, NULL,
                                  0, util_now());
    if (mi.mi_nrefs > 0)
        kids = xcalloc(mi.mi_nrefs, sizeof(*kids));
    for (size_t i = 0; i < mi.mi_nrefs; i++) {
        kids[i].ic_digest = mi.mi_refs[i].mr_digest;
        kids[i].ic_kind = manifest_kinds[mi.mi_refs[i].mr_kind];
    }
    rc = index_manifest_put(m->api->ix, m->repo, digest, media_type, (int64_t)len, kids,
                            mi.mi_nrefs, util_now());
    free(kids);
    manifest_info_free(&mi);
    return rc;
}

/* The media type a manifest is served with: the index's, else its own mediaType field. */
static void manifest_media_type(struct mreq *m, const char *digest, char *out, size_t size)
{
    int64_t sz;
    size_t len;
    char *body;
    struct manifest_info mi;
    const char *err;

    if (index_manifest_get(m->api->ix, digest, out, size, &sz) == 1 && out[0] != '\0')
        return;
    str_copy(out, size, "application/vnd.oci.image.manifest.v1+json");
    body = store_read_small(m->api->st, digest, MANIFEST_MAX_BYTES, &len);
    if (body == NULL)
        return;
    memset(&mi, 0, sizeof(mi));
    if (manifest_parse(body, len, NULL, &mi, &err) == 0 && mi.mi_media_type[0] != '\0')
        str_copy(out, size, mi.mi_media_type);
    if (repo_has_cached(m->api, m->repo, digest) != 1)
        manifest_index(m, digest, out, body, len);
    manifest_info_free(&mi);
    free(body);
}

/* Answer <req> with manifest bytes held in memory. */
static void send_manifest(struct evhttp_request *req, const char *digest, const char *media_type,
                          const char *body, size_t len, const char *warning)
{
    struct evbuffer *out = evbuffer_new();
    char buf[32];

    http_set_object_headers(req, media_type, digest, warning);
    snprintf(buf, sizeof(buf), "%zu", len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", buf);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(out, body, len);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/*
 * Serve manifest <digest> to <m> and release it: from memory, else from the store (and keep
 * it in memory for the next time). -1 when the store does not have it (nothing was sent).
 */
static void manifest_fetch_digest(struct mreq *m, const char *digest);
static int manifest_serve(struct mreq *m, const char *digest, const char *warning);

/*
 * A tag's manifest of type <mt> for <m>'s client: 1 when the client cannot take it and must
 * get a platform child instead (the tag is an index or list and the client's Accept names
 * manifest types, none of which covers it).
 */
static int wants_child(const struct mreq *m, const char *mt)
{
    return m->tagname[0] != '\0' && !m->child && manifest_is_index_type(mt) &&
           manifest_accepts(m->accept, mt) == 0;
}

#define CHILD_OS "linux"
#define CHILD_ARCH "amd64"

/*
 * <m>'s client takes no index: answer with the linux/amd64 child of index <body> (as
 * distribution and ECR do), from the store when this repository is known to hold it, else
 * fetched by digest. Releases <m>.
 */
static void serve_child(struct mreq *m, const char *body, size_t len, const char *warning)
{
    char digest[INDEX_DIGEST_MAX], mt[INDEX_MEDIA_TYPE_MAX];
    int r = manifest_pick_platform(body, len, CHILD_OS, CHILD_ARCH, digest, sizeof(digest), mt,
                                   sizeof(mt));

    m->child = 1;
    if (r != 1) {
        mreq_error(m, OCI_ERR_MANIFEST_UNKNOWN,
                   "the client accepts no index and the index has no linux/amd64 manifest",
                   m->tagname);
        return;
    }
    if (repo_has_cached(m->api, m->repo, digest) == 1 && manifest_serve(m, digest, warning) == 0)
        return;
    manifest_fetch_digest(m, digest);
}

static int manifest_serve(struct mreq *m, const char *digest, const char *warning)
{
    struct api *api = m->api;
    const char *mt, *body = NULL;
    size_t len = 0;

    mt = manifest_recall(api, digest, &body, &len);
    if (mt == NULL) {
        char type[INDEX_MEDIA_TYPE_MAX];
        char *bytes;
        if (!store_has(api->st, digest))
            return -1;
        manifest_media_type(m, digest, type, sizeof(type));
        bytes = store_read_small(api->st, digest, MANIFEST_MAX_BYTES, &len);
        if (bytes == NULL)
            return -1;
        manifest_remember(api, digest, type, bytes, len);
        free(bytes);
        mt = manifest_recall(api, digest, &body, &len);
        if (mt == NULL)
            return -1;
    }
    m->repo = repo_confirm(api, m->repo);
    if (m->repo > 0 && repo_has_cached(api, m->repo, digest) != 1)
        repo_add_cached(api, m->repo, digest);
    note_touched(api, digest);
    if (wants_child(m, mt)) {
        /* The hot map's bytes may move on the next put: serve_child reads them first. */
        char *copy = xmalloc(len + 1);
        memcpy(copy, body, len);
        serve_child(m, copy, len, warning);
        free(copy);
        return 0;
    }
    if (m->tagname[0] != '\0' && m->repo > 0)
        note_pulled(api, m->repo, m->tagname);
    if (!m->gone)
        send_manifest(m->req, digest, mt, body, len, warning);
    mreq_free(m);
    return 0;
}

static int manifest_type_known(const char *ct)
{
    return strstr(ct, "manifest") != NULL || strstr(ct, "image.index") != NULL;
}

static int serve_stale(struct mreq *m, struct fetch *f);

/* The commit thread stored (or failed to store) a fetched manifest. */
static void manifest_committed(void *arg, const char *digest, int ok, const char *err)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (!ok)
        log_event(LOG_ERROR, "store-failed", "digest", digest, "error", err, NULL);
}

/* A manifest GET ended: verify, store, index, answer. <want> is the digest asked for or "". */
static void manifest_fetched(struct mreq *m, struct fetch *f, const char *want)
{
    char digest[INDEX_DIGEST_MAX];
    char mt[INDEX_MEDIA_TYPE_MAX];

    if (f->res == UPSTREAM_TOO_LARGE) {
        mreq_error(m, OCI_ERR_MANIFEST_TOO_BIG, "manifest larger than 4 MiB", NULL);
        return;
    }
    if (f->res != UPSTREAM_OK) {
        /* The tag moved upstream, then the manifest GET failed: the old one is still ours. */
        if (serve_stale(m, f))
            return;
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
                   "upstream refused the manifest", f->err);
        return;
    }
    digest_of(want[0] != '\0' ? want : f->resp.ur_digest, f->body ? f->body : "", f->len, digest,
              sizeof(digest));
    if (want[0] != '\0' && strcmp(digest, want) != 0) {
        log_event(LOG_ERROR, "manifest-digest-mismatch", "want", want, "got", digest, NULL);
        mreq_error(m, OCI_ERR_UPSTREAM, "upstream manifest does not match its digest", want);
        return;
    }
    if (f->resp.ur_content_type[0] != '\0' && manifest_type_known(f->resp.ur_content_type)) {
        str_copy(mt, sizeof(mt), f->resp.ur_content_type);
    } else {
        struct manifest_info mi;
        const char *perr;
        memset(&mi, 0, sizeof(mi));
        str_copy(mt, sizeof(mt), "application/vnd.oci.image.manifest.v1+json");
        if (manifest_parse(f->body ? f->body : "", f->len, NULL, &mi, &perr) == 0 &&
            mi.mi_media_type[0] != '\0')
            str_copy(mt, sizeof(mt), mi.mi_media_type);
        manifest_info_free(&mi);
    }
    /*
     * Once per fetch, not per waiter (they share rule and path, so repository): written,
     * fsynced and renamed on the commit thread, so a slow disk stalls no client; until it
     * lands, the copy in memory (manifest_remember) serves it.
     */
    if (!f->stored) {
        f->stored = 1;
        if (!store_has(m->api->st, digest))
            fills_commit_small(m->api->fills, digest, f->body ? f->body : "", f->len,
                               manifest_committed, m->api);
        manifest_index(m, digest, mt, f->body ? f->body : "", f->len);
        manifest_remember(m->api, digest, mt, f->body ? f->body : "", f->len);
    }
    m->repo = repo_confirm(m->api, m->repo);
    if (m->tagname[0] != '\0' && !m->child)
        tag_put_cached(m->api, m->repo, m->tagname, digest, mt, util_now());
    if (m->gone) {
        mreq_free(m);
        return;
    }
    if (wants_child(m, mt)) {
        serve_child(m, f->body ? f->body : "", f->len, NULL);
        return;
    }
    /* Answer from the bytes in hand: the store may have refused them (disk full). */
    {
        struct evkeyvalq *h = evhttp_request_get_output_headers(m->req);
        char etag[INDEX_DIGEST_MAX + 2];
        evhttp_add_header(h, "Docker-Content-Digest", digest);
        snprintf(etag, sizeof(etag), "\"%s\"", digest);
        evhttp_add_header(h, "ETag", etag);
        http_send_body(m->req, 200, mt, f->body ? f->body : "", f->len);
    }
    mreq_free(m);
}

static void manifest_by_digest_fetched(struct mreq *m, struct fetch *f)
{
    manifest_fetched(m, f, m->want);
}

/*
 * The Accept header for manifest requests upstream: every type we know, whatever the client
 * sent. A tag then means what upstream calls it (an index stays an index), requests joined
 * by several clients are the same request, and each client is answered by its own Accept
 * (manifest_serve). ("*" + "/" + "*" alone would make a registry such as distribution 2.8
 * answer 404 for an OCI manifest, or down-convert a Docker one.)
 */
static const char *upstream_accept(const struct mreq *m)
{
    (void)m;
    return manifest_accept_all;
}

/* GET manifest <digest> upstream (joined per digest), then serve it. */
static void manifest_fetch_digest(struct mreq *m, const char *digest)
{
    struct upstream_target t;
    char path[1024], key[1200];

    str_copy(m->want, sizeof(m->want), digest);
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", m->upname, digest);
    snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
    target_init(&t, m, path, 0);
    t.ut_accept = upstream_accept(m);
    t.ut_max_body = MANIFEST_MAX_BYTES;
    fetch_join(m, key, &t, manifest_by_digest_fetched);
}

static void serve_tag_after_fetch(struct mreq *m, struct fetch *f);

/*
 * An upstream outage (network error, 5xx, 429) while checking or fetching tag <m->tagname>:
 * serve the cached manifest with a Warning when stale_if_error allows. 1 when served.
 */
static int serve_stale(struct mreq *m, struct fetch *f)
{
    struct api *api = m->api;
    struct refresh_facts facts = {m->have_tag, m->tag.it_checked_at,
                                  m->rule->rule_refresh_interval, m->rule->rule_stale_if_error};
    char status[16];

    if (m->tagname[0] == '\0' || !m->have_tag || m->child)
        return 0;
    if (f->res != UPSTREAM_NETWORK &&
        !(f->res == UPSTREAM_HTTP && (f->resp.ur_status >= 500 || f->resp.ur_status == 429)))
        return 0;
    if (refresh_on_error(&facts, util_now()) != REFRESH_SERVE_STALE ||
        !store_has(api->st, m->tag.it_digest))
        return 0;
    snprintf(status, sizeof(status), "%d", f->resp.ur_status);
    api->mx.stale_served++;
    log_event(LOG_WARN, "serve-stale", "repo", m->upname, "tag", m->tagname, "digest",
              m->tag.it_digest, "upstream_status", status, "error", f->err, NULL);
    return manifest_serve(m, m->tag.it_digest, STALE_WARNING) == 0;
}

/* The tag check (HEAD) ended. */
static void tag_checked(struct mreq *m, struct fetch *f)
{
    struct api *api = m->api;
    const char *d = f->resp.ur_digest;
    int64_t now = util_now();
    const char *tag = m->tagname;

    if (f->res != UPSTREAM_OK)
        api->mx.tag_check_errors++;
    if (f->res == UPSTREAM_OK && d[0] != '\0' && oci_digest_parse(d, strlen(d)) != OCI_DIGEST_NONE) {
        if (!m->have_tag || strcmp(d, m->tag.it_digest) != 0)
            api->mx.tag_changed++;
        if (m->have_tag && strcmp(d, m->tag.it_digest) == 0)
            tag_checked_cached(api, m->repo, tag, now);
        else if (store_has(api->st, d))
            tag_put_cached(api, m->repo, tag, d,
                          f->resp.ur_content_type[0] ? f->resp.ur_content_type : m->tag.it_media_type,
                          now);
        if (store_has(api->st, d)) {
            if (manifest_serve(m, d, NULL) == 0)
                return;
        }
        manifest_fetch_digest(m, d);
        return;
    }
    if (f->res == UPSTREAM_OK) {
        /* No usable Docker-Content-Digest: GET by tag and hash it ourselves. */
        struct upstream_target t;
        char path[1024], key[1200];
        snprintf(path, sizeof(path), "/v2/%s/manifests/%s", m->upname, tag);
        snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
        target_init(&t, m, path, 0);
        t.ut_accept = upstream_accept(m);
        t.ut_max_body = MANIFEST_MAX_BYTES;
        fetch_join(m, key, &t, serve_tag_after_fetch);
        return;
    }
    if (serve_stale(m, f))
        return;
    mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
               "upstream could not confirm the tag", f->err);
}

static void serve_tag_after_fetch(struct mreq *m, struct fetch *f)
{
    manifest_fetched(m, f, "");
}

/*
 * HEAD manifests/<the client's reference> upstream (joined per path, every manifest type
 * accepted, <retries> further attempts); <m> continues in <cont>. 1 when a HEAD was sent.
 */
static int manifest_head(struct mreq *m, int retries, void (*cont)(struct mreq *, struct fetch *))
{
    struct upstream_target t;
    char path[1024], key[1200];

    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", m->upname, m->rt.rq_ref);
    snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
    target_init(&t, m, path, 1);
    t.ut_accept = upstream_accept(m);
    t.ut_max_retries = retries;
    return fetch_join(m, key, &t, cont);
}

/* Upstream answered the HEAD for a manifest stored for another repository. */
static void manifest_confirmed(struct mreq *m, struct fetch *f)
{
    const char *d = f->resp.ur_digest;

    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
                   "manifest unknown to this repository upstream", f->err);
        return;
    }
    if (d[0] != '\0' && strcmp(d, m->rt.rq_ref) != 0) {
        mreq_error(m, OCI_ERR_UPSTREAM, "upstream confirmed another digest", d);
        return;
    }
    m->api->mx.manifest_hits++;
    if (manifest_serve(m, m->rt.rq_ref, NULL) == 0)
        return;
    m->api->mx.manifest_hits--;
    m->api->mx.manifest_misses++;
    manifest_fetch_digest(m, m->rt.rq_ref);
}

static void handle_manifest(struct mreq *m)
{
    struct api *api = m->api;
    int64_t now = util_now();

    if (m->rt.rq_ref_is_digest) {
        /* Only what this repository is known to hold: a digest is not a capability. */
        if (repo_has_cached(api, m->repo, m->rt.rq_ref) == 1) {
            if (manifest_serve(m, m->rt.rq_ref, NULL) == 0) {
                api->mx.manifest_hits++;
                return;
            }
        } else if (store_has(api->st, m->rt.rq_ref) &&
                   index_manifest_get(api->ix, m->rt.rq_ref, NULL, 0, NULL) == 1) {
            /* Stored for another repository: upstream's HEAD says whether this one has it. */
            if (manifest_head(m, 2, manifest_confirmed))
                api->mx.confirmations++;
            return;
        }
        api->mx.manifest_misses++;
        manifest_fetch_digest(m, m->rt.rq_ref);
        return;
    }
    str_copy(m->tagname, sizeof(m->tagname), m->rt.rq_ref);
    m->have_tag = tag_get_cached(api, m->repo, m->tagname, &m->tag) == 1;
    {
        struct refresh_facts facts = {m->have_tag, m->tag.it_checked_at,
                                      m->rule->rule_refresh_interval,
                                      m->rule->rule_stale_if_error};
        if (m->have_tag && refresh_decide(&facts, now) == REFRESH_FRESH) {
            struct api *a = m->api;
            if (manifest_serve(m, m->tag.it_digest, NULL) == 0) {
                a->mx.tag_fresh++;
                a->mx.manifest_hits++;
                return;
            }
        }
    }
    /* A tag check with a cached answer does not linger on a failing upstream. */
    if (manifest_head(m, m->have_tag ? 0 : 2, tag_checked))
        api->mx.tag_checks++;
}

/* ---- blobs ------------------------------------------------------------------------------ */

static void blob_fill_done(void *arg, const char *digest, int ok, int64_t size, int64_t repo)
{
    struct api *api = arg;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);

    if (!ok)
        return;
    index_blob_put(api->ix, digest, size, util_now());
    repo_add_cached(api, repo, digest);
}

static void blob_start_or_join(struct mreq *m)
{
    struct api *api = m->api;
    struct fill *f = fill_find(api->fills, m->rt.rq_ref);
    struct evhttp_request *req = m->req;
    struct exchange *x = m->x;

    if (f == NULL) {
        struct upstream_target t;
        char path[1024];
        int64_t free_bytes = store_free_bytes(api->st);
        if (free_bytes >= 0 && free_bytes < api->cfg->cfg_min_free_space) {
            log_event(LOG_ERROR, "disk-full", "digest", m->rt.rq_ref, NULL);
            mreq_error(m, OCI_ERR_UNAVAILABLE, "the cache disk is full", NULL);
            return;
        }
        snprintf(path, sizeof(path), "/v2/%s/blobs/%s", m->upname, m->rt.rq_ref);
        target_init(&t, m, path, 0);
        t.ut_max_retries = 3;
        f = fill_start(api->fills, &t, m->rt.rq_ref, m->repo);
    }
    /* The follower takes the request over. */
    m->x = NULL;
    m->magic = 0;
    free(m);
    fill_follow(f, req, x);
}

static void blob_serve_or_fill(struct mreq *m)
{
    struct api *api = m->api;
    int64_t size;

    if (store_has(api->st, m->rt.rq_ref)) {
        if (index_blob_get(api->ix, m->rt.rq_ref, &size) == 0 &&
            index_manifest_get(api->ix, m->rt.rq_ref, NULL, 0, NULL) == 0) {
            /* A stored file the index lost (crash between rename and insert). */
            int fd = store_open_blob(api->st, m->rt.rq_ref, &size);
            if (fd != -1) {
                close(fd);
                index_blob_put(api->ix, m->rt.rq_ref, size, util_now());
            }
        }
        if (repo_has_cached(api, m->repo, m->rt.rq_ref) != 1)
            repo_add_cached(api, m->repo, m->rt.rq_ref);
        note_touched(api, m->rt.rq_ref);
        if (m->gone || serve_stored(m->req, m->x, api->st, m->rt.rq_ref,
                                    "application/octet-stream", NULL, 1) == 0) {
            mreq_free(m);
            return;
        }
    }
    if (m->gone) {
        mreq_free(m);
        return;
    }
    blob_start_or_join(m);
}

/*
 * Upstream answered the HEAD that confirms a blob belongs to this repository: from now on it
 * is known there (the one place besides a fill for this repository that marks a blob).
 */
static void blob_confirmed(struct mreq *m, struct fetch *f)
{
    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_BLOB_UNKNOWN),
                   "blob unknown to this repository upstream", f->err);
        return;
    }
    repo_add_cached(m->api, m->repo, m->rt.rq_ref);
    blob_serve_or_fill(m);
}

/* HEAD of a blob nobody has fetched: answer from upstream's HEAD. */
static void blob_head_answered(struct mreq *m, struct fetch *f)
{
    struct evkeyvalq *h;
    char buf[64];

    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_BLOB_UNKNOWN),
                   "blob unknown upstream", f->err);
        return;
    }
    if (!m->gone) {
        h = evhttp_request_get_output_headers(m->req);
        http_set_common_headers(m->req);
        evhttp_add_header(h, "Content-Type", "application/octet-stream");
        evhttp_add_header(h, "Docker-Content-Digest", m->rt.rq_ref);
        evhttp_add_header(h, "Accept-Ranges", "bytes");
        if (f->resp.ur_content_length >= 0) {
            snprintf(buf, sizeof(buf), "%" PRId64, f->resp.ur_content_length);
            evhttp_add_header(h, "Content-Length", buf);
        }
        evhttp_send_reply(m->req, 200, "OK", NULL);
    }
    mreq_free(m);
}

static void handle_blob(struct mreq *m)
{
    struct api *api = m->api;
    struct fill *f = NULL;
    int known = repo_has_cached(api, m->repo, m->rt.rq_ref) == 1;
    struct upstream_target t;
    char path[1024], key[1200];

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", m->upname, m->rt.rq_ref);
    if (store_has(api->st, m->rt.rq_ref))
        api->mx.blob_hits++;
    else
        api->mx.blob_misses++;
    if (store_has(api->st, m->rt.rq_ref) || (f = fill_find(api->fills, m->rt.rq_ref)) != NULL) {
        if (!known && !(store_has(api->st, m->rt.rq_ref) == 0 && f != NULL &&
                        fill_repo(f) == m->repo)) {
            snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
            target_init(&t, m, path, 1);
            if (fetch_join(m, key, &t, blob_confirmed))
                api->mx.confirmations++;
            return;
        }
        blob_serve_or_fill(m);
        return;
    }
    if (m->head) {
        snprintf(key, sizeof(key), "HEAD %s %s", m->rule->rule_prefix, path);
        target_init(&t, m, path, 1);
        fetch_join(m, key, &t, blob_head_answered);
        return;
    }
    blob_start_or_join(m);
}

/* ---- tags/list and referrers ------------------------------------------------------------ */

#define TAGS_PAGES_MAX 64                  /* upstream pages followed for one list */
#define TAGS_TOTAL_BYTES (8 * 1024 * 1024) /* and the page bodies they may add up to */

/* The Link to the page after <last>, for <m>'s client: its own name and ?ns=. */
static void tags_link(struct mreq *m, int n, const char *last)
{
    char link[1400];

    snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%d&last=%s%s%s>; rel=\"next\"",
             m->rt.rq_name, n, last, m->rt.rq_ns[0] ? "&ns=" : "", m->rt.rq_ns);
    evhttp_add_header(evhttp_request_get_output_headers(m->req), "Link", link);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Answer <m> with the <*np> tag names <tags> (sorted here, whatever order they came in;
 * duplicates freed, *np updated: the caller still owns and frees tags[0..*np)), the client's
 * ?last= and ?n= applied, and a Link when more follow. <warning> adds a Warning. Releases <m>.
 */
static void tags_answer(struct mreq *m, char **tags, size_t *np, const char *warning)
{
    json_t *root = json_object(), *arr = json_array();
    size_t i = 0, out = 0, k = 0, n = *np;
    int limit = m->rt.rq_n;
    char *s;

    qsort(tags, n, sizeof(*tags), str_cmp);
    /* Drop duplicates (pages that overlap). */
    for (size_t j = 0; j < n; j++) {
        if (k == 0 || strcmp(tags[k - 1], tags[j]) != 0)
            tags[k++] = tags[j];
        else
            free(tags[j]);
    }
    n = *np = k;
    if (m->rt.rq_last[0] != '\0')
        while (i < n && strcmp(tags[i], m->rt.rq_last) <= 0)
            i++;
    for (; i < n && (limit < 0 || out < (size_t)limit); i++, out++)
        json_array_append_new(arr, json_string(tags[i]));
    json_object_set_new(root, "name", json_string(m->rt.rq_name));
    json_object_set_new(root, "tags", arr);
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!m->gone) {
        if (warning != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(m->req), "Warning", warning);
        if (limit > 0 && out == (size_t)limit && i < n)
            tags_link(m, limit, tags[i - 1]);
        http_send_body(m->req, 200, "application/json", s, strlen(s));
    }
    free(s);
    mreq_free(m);
}

static void tags_from_index(struct mreq *m, const char *why)
{
    char **tags = NULL;
    size_t n = 0;

    if (index_tags_list(m->api->ix, m->repo, NULL, -1, &tags, &n) == -1 || n == 0) {
        index_strings_free(tags, n);
        mreq_error(m, OCI_ERR_UPSTREAM, "upstream failed and no tags are cached", why);
        return;
    }
    tags_answer(m, tags, &n, STALE_WARNING);
    index_strings_free(tags, n);
}

/* The tags gathered so far from upstream's pages, for one client. */
struct tags_acc {
    char **ta_tags;
    size_t ta_n, ta_cap;
    int ta_pages;
    size_t ta_bytes; /* page bodies so far */
};

static void tags_acc_free(struct mreq *m)
{
    struct tags_acc *a = m->tags;

    if (a == NULL)
        return;
    index_strings_free(a->ta_tags, a->ta_n);
    free(a);
    m->tags = NULL;
}

static void tags_fetched(struct mreq *m, struct fetch *f);

/*
 * Upstream's Link header <link> (RFC 8288: one or more "<target>; params", comma separated):
 * the target of the link whose params say rel="next", as a path on the rule's upstream (a
 * relative reference, or an absolute URL on that upstream), in <path>. 1 when there is a next
 * page and it is a page of this same list ("/v2/UPNAME/tags/list?..."), 0 when there is no
 * next page, -1 when there is one the proxy cannot follow (another origin, another path,
 * too long, malformed).
 */
static int tags_next_page(const struct mreq *m, const char *link, char *path, size_t size)
{
    const char *p = link, *base = m->rule->rule_upstream;
    char want[RULES_NAME_MAX + 32];
    size_t wl = (size_t)snprintf(want, sizeof(want), "/v2/%s/tags/list?", m->upname);
    size_t bl = strlen(base);

    while ((p = strchr(p, '<')) != NULL) {
        const char *lt = p + 1, *gt = strchr(lt, '>'), *params, *end, *t;
        int next = 0;
        size_t tl;
        if (gt == NULL)
            return -1;
        params = gt + 1;
        end = strchr(params, ',');
        if (end == NULL)
            end = params + strlen(params);
        for (t = params; t < end; t++) {
            /* rel="next" or rel=next, any case, as one of the params */
            if (strncasecmp(t, "rel=", 4) != 0)
                continue;
            t += 4;
            if (t < end && *t == '"')
                t++;
            if (t < end && (size_t)(end - t) >= 4 && strncasecmp(t, "next", 4) == 0 &&
                (t + 4 == end || t[4] == '"' || t[4] == ';' || t[4] == ' '))
                next = 1;
        }
        p = end;
        if (!next)
            continue;
        tl = (size_t)(gt - lt);
        if (tl > bl && strncmp(lt, base, bl) == 0 && lt[bl] == '/') {
            lt += bl; /* an absolute URL on the rule's upstream */
            tl -= bl;
        }
        if (tl <= wl || strncmp(lt, want, wl) != 0 || tl >= size)
            return -1;
        for (const char *c = lt; c < lt + tl; c++)
            if ((unsigned char)*c <= ' ' || *c == '#' || (unsigned char)*c >= 0x7f)
                return -1;
        memcpy(path, lt, tl);
        path[tl] = '\0';
        return 1;
    }
    return 0;
}

static void tags_fetch_page(struct mreq *m, const char *path)
{
    struct upstream_target t;
    char key[1500];

    target_init(&t, m, path, 0);
    t.ut_max_body = TAGS_BODY_MAX;
    t.ut_max_retries = 1;
    snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
    fetch_join(m, key, &t, tags_fetched);
}

static void tags_fetched(struct mreq *m, struct fetch *f)
{
    json_error_t jerr;
    json_t *root, *arr;
    struct tags_acc *a;
    char next[1400];
    int r;

    if (f->res == UPSTREAM_HTTP && (f->resp.ur_status == 404 || f->resp.ur_status == 401 ||
                                    f->resp.ur_status == 403)) {
        tags_acc_free(m);
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_NAME_UNKNOWN),
                   "upstream refused the tag list", f->err);
        return;
    }
    if (f->res != UPSTREAM_OK) {
        tags_acc_free(m);
        tags_from_index(m, f->err);
        return;
    }
    root = json_loadb(f->body ? f->body : "", f->len, 0, &jerr);
    arr = json_is_object(root) ? json_object_get(root, "tags") : NULL;
    if (root == NULL || !json_is_object(root) || !(json_is_array(arr) || json_is_null(arr))) {
        json_decref(root);
        tags_acc_free(m);
        tags_from_index(m, "upstream sent a malformed tag list");
        return;
    }
    if (m->tags == NULL)
        m->tags = xcalloc(1, sizeof(*m->tags));
    a = m->tags;
    a->ta_pages++;
    a->ta_bytes += f->len;
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i);
        /* A name outside the tag grammar can never be pulled, and would reshape our Link. */
        if (!json_is_string(t) || !oci_tag_valid(json_string_value(t), json_string_length(t)))
            continue;
        if (a->ta_n == a->ta_cap) {
            a->ta_cap = a->ta_cap ? a->ta_cap * 2 : 64;
            a->ta_tags = xrealloc(a->ta_tags, a->ta_cap * sizeof(*a->ta_tags));
        }
        a->ta_tags[a->ta_n++] = xstrdup(json_string_value(t));
    }
    json_decref(root);
    /* Upstream pages (ghcr, quay): gather every page, then sort and page for the client. */
    r = f->resp.ur_link[0] != '\0' ? tags_next_page(m, f->resp.ur_link, next, sizeof(next)) : 0;
    if (r == 1 && a->ta_pages < TAGS_PAGES_MAX && a->ta_bytes < TAGS_TOTAL_BYTES) {
        tags_fetch_page(m, next);
        return;
    }
    if (r != 0) {
        /* A list cut short would look complete to the client: say it is not. */
        char pages[16];
        snprintf(pages, sizeof(pages), "%d", a->ta_pages);
        log_event(LOG_WARN, "tags-list-incomplete", "repo", m->upname, "pages", pages, "link",
                  f->resp.ur_link, NULL);
        tags_acc_free(m);
        mreq_error(m, OCI_ERR_UPSTREAM,
                   r == -1 ? "upstream's next tags page cannot be followed"
                           : "upstream's tag list is longer than the proxy gathers",
                   r == -1 ? "its Link leaves this repository's list" : "64 pages or 8 MiB");
        return;
    }
    m->tags = NULL;
    tags_answer(m, a->ta_tags, &a->ta_n, NULL);
    index_strings_free(a->ta_tags, a->ta_n);
    free(a);
}

/*
 * tags/list: upstream's whole list (every page of it), sorted and paged here by the client's
 * ?n= and ?last= (distribution 2.8 does neither); the cached tags when upstream fails.
 */
static void handle_tags(struct mreq *m)
{
    char path[1400];

    snprintf(path, sizeof(path), "/v2/%s/tags/list", m->upname);
    tags_fetch_page(m, path);
}

static const char empty_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":[]}";

/*
 * The descriptor of referrer <digest> for a referrers answer: mediaType, digest, size, and
 * the artifactType (the manifest's, else its config's mediaType) and annotations the spec
 * requires, read from the manifest's bytes. NULL when its bytes are not at hand.
 */
static json_t *referrer_descriptor(struct api *api, const char *digest, const char *mt,
                                   int64_t size)
{
    const char *held, *body = NULL;
    size_t len = 0;
    char *bytes = NULL;
    json_t *root, *d = NULL, *at, *ann;
    json_error_t jerr;

    held = manifest_recall(api, digest, &body, &len);
    if (held == NULL) {
        bytes = store_read_small(api->st, digest, MANIFEST_MAX_BYTES, &len);
        if (bytes == NULL)
            return NULL;
        body = bytes;
    }
    root = json_loadb(body, len, 0, &jerr);
    if (json_is_object(root)) {
        d = json_object();
        json_object_set_new(d, "mediaType", json_string(mt));
        json_object_set_new(d, "digest", json_string(digest));
        json_object_set_new(d, "size", json_integer(size));
        at = json_object_get(root, "artifactType");
        if (!json_is_string(at))
            at = json_object_get(json_object_get(root, "config"), "mediaType");
        if (json_is_string(at))
            json_object_set(d, "artifactType", at);
        ann = json_object_get(root, "annotations");
        if (json_is_object(ann))
            json_object_set(d, "annotations", ann);
    }
    json_decref(root);
    free(bytes);
    return d;
}

/*
 * Referrers this repository is known to hold, as an OCI index: upstream failed (an outage, not
 * a refusal), so the answer is what this repository pulled through the proxy, marked stale.
 * ?artifactType= is applied (and said so with OCI-Filters-Applied).
 */
static void referrers_from_index(struct mreq *m)
{
    char **ds = NULL;
    size_t n = 0;
    json_t *root = json_object(), *arr = json_array();
    const char *want = m->rt.rq_artifact_type;
    char *s;

    if (index_referrers(m->api->ix, m->rt.rq_ref, &ds, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char mt[INDEX_MEDIA_TYPE_MAX];
            int64_t size = 0;
            json_t *d, *at;
            /* Only referrers pulled through this repository: the index is shared. */
            if (repo_has_cached(m->api, m->repo, ds[i]) != 1 ||
                index_manifest_get(m->api->ix, ds[i], mt, sizeof(mt), &size) != 1)
                continue;
            d = referrer_descriptor(m->api, ds[i], mt, size);
            if (d == NULL)
                continue;
            at = json_object_get(d, "artifactType");
            if (want[0] != '\0' && !(json_is_string(at) && strcmp(json_string_value(at), want) == 0)) {
                json_decref(d);
                continue;
            }
            json_array_append_new(arr, d);
        }
    }
    index_strings_free(ds, n);
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType",
                        json_string("application/vnd.oci.image.index.v1+json"));
    json_object_set_new(root, "manifests", arr);
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!m->gone) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(m->req);
        evhttp_add_header(h, "Warning", STALE_WARNING);
        if (want[0] != '\0')
            evhttp_add_header(h, "OCI-Filters-Applied", "artifactType");
        http_send_body(m->req, 200, "application/vnd.oci.image.index.v1+json", s ? s : empty_index,
                  strlen(s ? s : empty_index));
    }
    free(s);
    mreq_free(m);
}

static void referrers_fetched(struct mreq *m, struct fetch *f)
{
    if (f->res == UPSTREAM_OK && !m->gone) {
        const char *ct = f->resp.ur_content_type[0] ? f->resp.ur_content_type
                                                    : "application/vnd.oci.image.index.v1+json";
        http_send_body(m->req, 200, ct, f->body ? f->body : "", f->len);
        mreq_free(m);
        return;
    }
    if (f->res == UPSTREAM_HTTP && f->resp.ur_status == 404) {
        /*
         * The upstream has no referrers API (one that has it answers 200 for any digest).
         * Neither has the proxy, then: a 404 sends clients to the spec's fallback, the
         * "sha256-<hex>" tag, which the proxy serves like any tag. An index of what passed
         * through here would hide the referrers upstream holds under that tag.
         */
        mreq_error(m, OCI_ERR_NOT_FOUND, "the upstream has no referrers API",
                   "use the referrers tag schema");
        return;
    }
    if (f->res == UPSTREAM_HTTP && f->resp.ur_status >= 400 && f->resp.ur_status < 500 &&
        f->resp.ur_status != 429) {
        mreq_error(m, upstream_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
                   "upstream refused the referrers list", f->err);
        return;
    }
    /* An outage (network, 5xx, 429): what this repository is known to hold. */
    referrers_from_index(m);
}

static void handle_referrers(struct mreq *m)
{
    struct upstream_target t;
    char path[1400], key[1500];
    size_t n;

    n = (size_t)snprintf(path, sizeof(path), "/v2/%s/referrers/%s", m->upname, m->rt.rq_ref);
    if (m->rt.rq_artifact_type[0] != '\0' && n < sizeof(path)) {
        static const char hexd[] = "0123456789ABCDEF";
        char esc[3 * sizeof(m->rt.rq_artifact_type)];
        size_t k = 0;
        /* Percent-encode everything but unreserved characters ('+' would read as a space). */
        for (const unsigned char *p = (const unsigned char *)m->rt.rq_artifact_type; *p; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~') {
                esc[k++] = (char)*p;
            } else {
                esc[k++] = '%';
                esc[k++] = hexd[*p >> 4];
                esc[k++] = hexd[*p & 15];
            }
        }
        esc[k] = '\0';
        snprintf(path + n, sizeof(path) - n, "?artifactType=%s", esc);
    }
    target_init(&t, m, path, 0);
    t.ut_max_body = REFERRERS_BODY_MAX;
    t.ut_max_retries = 1;
    snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
    fetch_join(m, key, &t, referrers_fetched);
}

/* ---- metrics ---------------------------------------------------------------------------- */

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help,
                   const char *labels, uint64_t v)
{
    if (help != NULL)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    evbuffer_add_printf(b, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

static void handle_metrics(struct api *api, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    struct upstream_stats us;
    struct fill_stats fs;
    const struct api_metrics *mx = &api->mx;
    static const char *const kinds[] = {"base", "manifest", "blob", "tags", "referrers"};
    char lab[64];
    size_t len;
    char *body;

    upstream_get_stats(api->up, &us);
    fills_get_stats(api->fills, &fs);
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        snprintf(lab, sizeof(lab), "{route=\"%s\"}", kinds[i]);
        metric(b, "ecr_ptc_requests_total", "counter", i == 0 ? "API requests by route" : NULL,
               lab, mx->requests[i]);
    }
    metric(b, "ecr_ptc_cache_hits_total", "counter", "served from the store",
           "{kind=\"manifest\"}", mx->manifest_hits);
    metric(b, "ecr_ptc_cache_hits_total", "counter", NULL, "{kind=\"blob\"}", mx->blob_hits);
    metric(b, "ecr_ptc_cache_misses_total", "counter", "not in the store when asked",
           "{kind=\"manifest\"}", mx->manifest_misses);
    metric(b, "ecr_ptc_cache_misses_total", "counter", NULL, "{kind=\"blob\"}", mx->blob_misses);
    metric(b, "ecr_ptc_tag_fresh_total", "counter",
           "tag pulls answered inside refresh_interval without asking upstream", NULL,
           mx->tag_fresh);
    metric(b, "ecr_ptc_tag_checks_total", "counter", "tag checks sent upstream (HEAD)", NULL,
           mx->tag_checks);
    metric(b, "ecr_ptc_tag_changes_total", "counter", "tag checks that found a new digest", NULL,
           mx->tag_changed);
    metric(b, "ecr_ptc_tag_check_errors_total", "counter", "tag checks upstream failed", NULL,
           mx->tag_check_errors);
    metric(b, "ecr_ptc_upstream_confirmations_total", "counter",
           "HEADs sent to confirm that a repository holds a digest stored for another", NULL,
           mx->confirmations);
    metric(b, "ecr_ptc_stale_served_total", "counter",
           "tags served stale because upstream failed (stale_if_error)", NULL, mx->stale_served);
    metric(b, "ecr_ptc_bytes_served_total", "counter",
           "body bytes sent to clients, by where they came from", "{from=\"store\"}",
           http_file_bytes());
    metric(b, "ecr_ptc_bytes_served_total", "counter", NULL, "{from=\"fill\"}",
           fs.fs_bytes_sent);
    metric(b, "ecr_ptc_upstream_bytes_total", "counter",
           "response body bytes received from upstreams, each counted once (blobs, manifests, "
           "tokens, error bodies; not headers): what crossed the NAT",
           NULL, us.us_bytes);
    metric(b, "ecr_ptc_upstream_requests_total", "counter",
           "HTTP exchanges with upstreams, tokens and redirects included", NULL, us.us_requests);
    metric(b, "ecr_ptc_upstream_token_fetches_total", "counter", "token endpoint requests", NULL,
           us.us_token_fetches);
    metric(b, "ecr_ptc_upstream_retries_total", "counter", "retries after 5xx, 429 or errors",
           NULL, us.us_retries);
    metric(b, "ecr_ptc_fills_total", "counter", "blob fills by outcome", "{state=\"started\"}",
           fs.fs_started);
    metric(b, "ecr_ptc_fills_total", "counter", NULL, "{state=\"completed\"}", fs.fs_completed);
    metric(b, "ecr_ptc_fills_total", "counter", NULL, "{state=\"failed\"}", fs.fs_failed);
    metric(b, "ecr_ptc_fill_followers_total", "counter",
           "client responses streamed from fills", NULL, fs.fs_joined);
    metric(b, "ecr_ptc_error_responses_total", "counter", "OCI error answers", NULL, http_error_responses());
    metric(b, "ecr_ptc_uptime_seconds", "gauge", "seconds since start", NULL,
           (uint64_t)(util_now() - api->started_at));
    {
        static const char *const names[] = {"repos", "tags", "known", "manifests"};
        struct hot *maps[] = {api->hot_repos, api->hot_tags, api->hot_known, api->hot_manifests};
        char labels[64];
        for (size_t i = 0; i < 4; i++) {
            struct hot_stats hs;
            hot_get_stats(maps[i], &hs);
            snprintf(labels, sizeof(labels), "{map=\"%s\"}", names[i]);
            metric(b, "ecr_ptc_memory_hits_total", "counter",
                   i == 0 ? "in-memory map lookups answered without the index or the store"
                          : NULL, labels, hs.hs_hits);
        }
        for (size_t i = 0; i < 4; i++) {
            struct hot_stats hs;
            hot_get_stats(maps[i], &hs);
            snprintf(labels, sizeof(labels), "{map=\"%s\"}", names[i]);
            metric(b, "ecr_ptc_memory_bytes", "gauge",
                   i == 0 ? "bytes held by the in-memory maps" : NULL, labels, hs.hs_bytes);
        }
    }
    server_metrics(api->srv, b);
    len = evbuffer_get_length(b);
    body = xmalloc(len + 1);
    evbuffer_remove(b, body, len);
    http_send_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
    evbuffer_free(b);
}

/* ---- dispatch --------------------------------------------------------------------------- */

void api_handle(void *arg, struct evhttp_request *req, struct exchange *x)
{
    struct api *api = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    struct route_req rt;
    struct rules_match match;
    enum oci_error e;
    const char *why = NULL;
    struct mreq *m;
    enum rules_result rr;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (strcmp(uri, "/healthz") == 0 || strncmp(uri, "/healthz?", 9) == 0) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            http_send_error(req, OCI_ERR_METHOD, "only GET and HEAD", NULL);
            return;
        }
        http_send_body(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    if (strcmp(uri, "/metrics") == 0 && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)) {
        handle_metrics(api, req);
        return;
    }
    if (strncmp(uri, "/v2", 3) != 0 || (uri[3] != '\0' && uri[3] != '/' && uri[3] != '?')) {
        http_send_error(req, OCI_ERR_NOT_FOUND, "not an OCI distribution API path",
                       "the API lives under /v2/");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        http_send_error(req, OCI_ERR_UNSUPPORTED,
                       "this is a pull-through cache: only GET and HEAD are supported", NULL);
        return;
    }
    if (route_parse(uri, &rt, &e, &why) == -1) {
        http_send_error(req, e, why, NULL);
        return;
    }
    if (rt.rq_kind < ARRAY_LEN(api->mx.requests))
        api->mx.requests[rt.rq_kind]++;
    if (rt.rq_kind == ROUTE_BASE) {
        http_send_body(req, 200, "application/json", "{}", 2);
        return;
    }
    rr = rules_match(api->rules, api->cfg->cfg_nrules, rt.rq_name, rt.rq_ns, &match);
    if (rr != RULES_OK) {
        char prefixes[1024], detail[1200];
        rules_prefix_list(api->rules, api->cfg->cfg_nrules, prefixes, sizeof(prefixes));
        snprintf(detail, sizeof(detail), "configured prefixes: %s", prefixes);
        if (rr == RULES_EMPTY_NAME)
            http_send_error(req, OCI_ERR_NAME_INVALID, "a prefix alone is not a repository",
                           detail);
        else
            http_send_error(req, OCI_ERR_NAME_UNKNOWN,
                           rt.rq_ns[0] ? "no rule mirrors this namespace or prefix"
                                       : "no rule answers this repository prefix",
                           detail);
        return;
    }
    if (server_stopping(api->srv)) {
        http_send_error(req, OCI_ERR_UNAVAILABLE, "the proxy is shutting down", NULL);
        return;
    }
    m = mreq_new(api, req, x);
    m->rt = rt;
    m->rule = &api->cfg->cfg_rules[match.rm_rule];
    str_copy(m->upname, sizeof(m->upname), match.rm_upstream_name);
    m->repo = repo_id_cached(api, m->rule->rule_prefix, m->upname);
    if (m->repo == -1) {
        mreq_error(m, OCI_ERR_UNAVAILABLE, "the index is not available", NULL);
        return;
    }
    switch (rt.rq_kind) {
    case ROUTE_MANIFEST: handle_manifest(m); break;
    case ROUTE_BLOB: handle_blob(m); break;
    case ROUTE_TAGS: handle_tags(m); break;
    case ROUTE_REFERRERS: handle_referrers(m); break;
    default: mreq_error(m, OCI_ERR_NOT_FOUND, "unknown API path", NULL); break;
    }
}

/* The upstream origin of rule <r>; its strings stay the config's. */
static void origin_from_rule(struct upstream_origin *o, const struct config_rule *r)
{
    memset(o, 0, sizeof(*o));
    o->uo_name = r->rule_prefix;
    o->uo_base_url = r->rule_upstream;
    o->uo_username = r->rule_username;
    o->uo_password = r->rule_password;
    o->uo_allow_private = r->rule_allow_private_redirects;
    o->uo_ca_file = r->rule_ca_file;
}

struct api *api_create(struct event_base *base, const struct config *cfg, struct server *srv,
                       char **err)
{
    struct api *api = xcalloc(1, sizeof(*api));
    struct upstream_settings us = {10000, 30, 200, 10};
    char path[STORE_PATH_MAX];
    long dropped;

    *err = NULL;
    api->magic = API_MAGIC;
    api->base = base;
    api->cfg = cfg;
    api->srv = srv;
    api->started_at = util_now();
    api->st = store_open(cfg->cfg_data_dir, err);
    if (api->st == NULL)
        goto fail;
    snprintf(path, sizeof(path), "%s/index.db", cfg->cfg_data_dir);
    api->ix = index_open(path, err);
    if (api->ix == NULL)
        goto fail;
    dropped = index_reconcile(api->ix, store_exists_cb, api->st);
    if (dropped == -1) {
        /* The store could not say what it holds (EACCES, EIO): drop nothing, start nothing. */
        const char *why = store_last_error(api->st);
        *err = xasprintf("reconcile: %s", why != NULL ? why : "cannot read the index");
        goto fail;
    }
    if (dropped > 0) {
        char n[32];
        snprintf(n, sizeof(n), "%ld", dropped);
        log_event(LOG_WARN, "reconcile", "dropped_rows", n, NULL);
    }
    api->origins = xcalloc(cfg->cfg_nrules + 1, sizeof(*api->origins));
    for (size_t i = 0; i < cfg->cfg_nrules; i++)
        origin_from_rule(&api->origins[i], &cfg->cfg_rules[i]);
    api->up = upstream_create(base, &us, err);
    if (api->up == NULL)
        goto fail;
    api->fills = fills_create(base, api->st, api->up, blob_fill_done, api);
    if (api->fills == NULL) {
        *err = xstrdup("cannot start the commit thread");
        goto fail;
    }
    api->hot_repos = hot_new(HOT_REPOS, 1024 * 1024);
    api->hot_tags = hot_new(HOT_TAGS, 8 * 1024 * 1024);
    api->hot_known = hot_new(HOT_KNOWN, 8 * 1024 * 1024);
    api->hot_manifests = hot_new(HOT_MANIFESTS, HOT_MANIFEST_BYTES);
    api->hot_pending = hot_new(HOT_REPOS, 1024 * 1024);
    api->next_pending = -2;
    api->pulled_repos = xcalloc(API_BATCH_MAX, sizeof(*api->pulled_repos));
    api->pulled_tags = xcalloc(API_BATCH_MAX, sizeof(*api->pulled_tags));
    api->touched = xcalloc(API_BATCH_MAX, sizeof(*api->touched));
    api->flush = event_new(base, -1, EV_PERSIST, flush_cb, api);
    {
        struct timeval tv = {API_FLUSH_SECONDS, 0};
        event_add(api->flush, &tv);
    }
    api->rules = xcalloc(cfg->cfg_nrules + 1, sizeof(*api->rules));
    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        const struct config_rule *r = &cfg->cfg_rules[i];
        api->rules[i].rr_prefix = r->rule_prefix;
        api->rules[i].rr_mirror_for = r->rule_mirror_for;
        api->rules[i].rr_nmirror_for = r->rule_nmirror_for;
        api->rules[i].rr_default = r->rule_default;
        api->rules[i].rr_library_prefix = r->rule_library_prefix;
    }
    return api;
fail:
    api_destroy(api);
    return NULL;
}

void api_destroy(struct api *api)
{
    if (api == NULL)
        return;
    /* Commits still on the worker thread reach the index and the log before the maps go. */
    fills_drain(api->fills);
    while (api->fetches != NULL) {
        struct fetch *f = api->fetches;
        api->fetches = f->next;
        if (f->xfer != NULL)
            upstream_cancel(f->xfer);
        while (f->waiters != NULL) {
            struct mreq *w = f->waiters;
            f->waiters = w->next_waiter;
            tags_acc_free(w);
            w->magic = 0;
            free(w);
        }
        free(f->key);
        free(f->body);
        free(f);
    }
    if (api->ix != NULL && api->pulled_tags != NULL && api->touched != NULL)
        api_flush(api);
    if (api->flush != NULL)
        event_free(api->flush);
    hot_free(api->hot_repos);
    hot_free(api->hot_tags);
    hot_free(api->hot_known);
    hot_free(api->hot_manifests);
    hot_free(api->hot_pending);
    free(api->pulled_repos);
    free(api->pulled_tags);
    free(api->touched);
    fills_destroy(api->fills);
    upstream_destroy(api->up);
    index_close(api->ix);
    store_close(api->st);
    free(api->rules);
    free(api->origins);
    api->magic = 0;
    free(api);
}
