/*
 * Manifests: by tag (the 24-hour rule: fresh from the catalog, else a HEAD upstream and a GET
 * only when the digest moved, stale-if-error on an outage) and by digest (the catalog, a
 * confirmation HEAD for one stored for another repository, else one verified fetch per
 * digest). A client that takes no index gets the index's linux/amd64 child.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "fill.h"
#include "log.h"
#include "manifest.h"
#include "policy_access.h"
#include "policy_refresh.h"
#include "reply.h"
#include "util.h"

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
    if (cache_repo_has(m->api->cache, m->repo, digest) == 1 &&
        manifest_serve(m, digest, warning) == 0)
        return;
    manifest_fetch_digest(m, digest);
}

static int manifest_serve(struct mreq *m, const char *digest, const char *warning)
{
    struct api *api = m->api;
    const char *mt, *body = NULL;
    size_t len = 0;

    mt = cache_manifest_load(api->cache, &m->repo, digest, &body, &len, m->now);
    if (mt == NULL)
        return -1;
    m->repo = cache_repo_confirm(api->cache, m->repo);
    if (m->repo > 0 && cache_repo_has(api->cache, m->repo, digest) != 1)
        cache_repo_add(api->cache, m->repo, digest);
    cache_note_touched(api->cache, digest, m->now);
    /* A pull of the tag, whichever platform child it is answered with. */
    if (m->tagname[0] != '\0' && m->repo > 0)
        cache_note_pulled(api->cache, m->repo, m->tagname, m->now);
    if (wants_child(m, mt)) {
        /* The hot map's bytes may move on the next put: serve_child reads them first. */
        char *copy = xmalloc(len + 1);
        memcpy(copy, body, len);
        serve_child(m, copy, len, warning);
        free(copy);
        return 0;
    }
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

/* The media type of fetched manifest <f>: its Content-Type when that names one, else its
 * body's mediaType, else OCI's. */
static void fetched_type(const struct fetch *f, char *mt, size_t size)
{
    if (f->resp.ur_content_type[0] != '\0' && manifest_type_known(f->resp.ur_content_type)) {
        str_copy(mt, size, f->resp.ur_content_type);
    } else {
        struct manifest_info mi;
        const char *perr;
        memset(&mi, 0, sizeof(mi));
        str_copy(mt, size, "application/vnd.oci.image.manifest.v1+json");
        if (manifest_parse(f->body ? f->body : "", f->len, NULL, &mi, &perr) == 0 &&
            mi.mi_media_type[0] != '\0')
            str_copy(mt, size, mi.mi_media_type);
        manifest_info_free(&mi);
    }
}

/*
 * Store verified manifest <digest> of <f> for <m>'s repository, once per fetch, not per waiter
 * (they share rule and path, so repository): written, fsynced and renamed on the commit
 * thread, so a slow disk stalls no client; until it lands, the copy in memory
 * (manifest_remember) serves it. 1 when this call stored it.
 */
static int fetched_store(struct mreq *m, struct fetch *f, const char *digest, const char *mt)
{
    if (f->stored)
        return 0;
    f->stored = 1;
    if (!cache_has(m->api->cache, digest))
        fills_commit_small(m->api->fills, digest, f->body ? f->body : "", f->len,
                           manifest_committed, m->api);
    cache_manifest_put(m->api->cache, &m->repo, digest, mt, f->body ? f->body : "", f->len, m->now);
    cache_manifest_remember(m->api->cache, digest, mt, f->body ? f->body : "", f->len);
    return 1;
}

/* Answer <m> with fetched manifest <digest> (or its platform child) and release it. */
static void fetched_answer(struct mreq *m, struct fetch *f, const char *digest, const char *mt,
                           const char *warning)
{
    /* A cold pull is a pull too (the tag's row exists once the fetch stored it). */
    if (m->tagname[0] != '\0') {
        m->repo = cache_repo_confirm(m->api->cache, m->repo);
        if (m->repo > 0)
            cache_note_pulled(m->api->cache, m->repo, m->tagname, m->now);
    }
    if (m->gone) {
        mreq_free(m);
        return;
    }
    if (wants_child(m, mt)) {
        serve_child(m, f->body ? f->body : "", f->len, warning);
        return;
    }
    /* Answer from the bytes in hand: the store may have refused them (disk full). */
    {
        struct evkeyvalq *h = evhttp_request_get_output_headers(m->req);
        char etag[INDEX_DIGEST_MAX + 2];
        evhttp_add_header(h, "Docker-Content-Digest", digest);
        snprintf(etag, sizeof(etag), "\"%s\"", digest);
        evhttp_add_header(h, "ETag", etag);
        if (warning != NULL)
            evhttp_add_header(h, "Warning", warning);
        http_send_body(m->req, 200, mt, f->body ? f->body : "", f->len);
    }
    mreq_free(m);
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
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
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
    fetched_type(f, mt, sizeof(mt));
    if (fetched_store(m, f, digest, mt)) {
        if (m->from_ecr)
            m->api->mx.content_bytes_ecr += f->len;
        else
            m->api->mx.content_bytes_upstream += f->len;
    }
    m->repo = cache_repo_confirm(m->api->cache, m->repo);
    if (m->tagname[0] != '\0' && !m->child) {
        cache_tag_put(m->api->cache, m->repo, m->tagname, digest, mt, m->now);
        api_ecr_queue(m, digest, m->tagname);
    } else if (!m->from_ecr) {
        api_ecr_queue(m, digest, NULL);
    }
    fetched_answer(m, f, digest, mt, NULL);
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

static void manifest_ecr_fetched(struct mreq *m, struct fetch *f);

/* GET manifest <digest> from ECR, else upstream (joined per digest), then serve it. */
static void manifest_fetch_digest(struct mreq *m, const char *digest)
{
    struct upstream_target t;
    char path[1024], key[1200];

    if (strcmp(m->want, digest) != 0)
        m->ecr_tried = 0;
    str_copy(m->want, sizeof(m->want), digest);
    if (!m->ecr_tried && api_ecr_target(m, &t, path, sizeof(path), "manifests", digest, 0)) {
        m->ecr_tried = 1;
        t.ut_accept = upstream_accept(m);
        t.ut_max_body = MANIFEST_MAX_BYTES;
        api_ecr_key(m, key, sizeof(key), 0, path);
        fetch_join(m, key, &t, manifest_ecr_fetched);
        return;
    }
    m->from_ecr = 0;
    snprintf(path, sizeof(path), "/v2/%s/manifests/%s", m->upname, digest);
    snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
    api_target_init(&t, m, path, 0);
    t.ut_accept = upstream_accept(m);
    t.ut_max_body = MANIFEST_MAX_BYTES;
    fetch_join(m, key, &t, manifest_by_digest_fetched);
}

/* ECR answered the read-through GET for m->want: its verified copy, else the upstream. */
static void manifest_ecr_fetched(struct mreq *m, struct fetch *f)
{
    char digest[INDEX_DIGEST_MAX];

    api_ecr_answered(m->api, f->resp.ur_status);
    if (f->res == UPSTREAM_OK) {
        digest_of(m->want, f->body ? f->body : "", f->len, digest, sizeof(digest));
        if (strcmp(digest, m->want) == 0) {
            m->api->mx.ecr_reads[0][0]++;
            m->from_ecr = 1;
            manifest_fetched(m, f, m->want);
            return;
        }
        log_event(LOG_ERROR, "ecr-manifest-digest-mismatch", "want", m->want, "got", digest, NULL);
    }
    m->api->mx.ecr_reads[0][1]++;
    manifest_fetch_digest(m, m->want);
}

static void serve_tag_after_fetch(struct mreq *m, struct fetch *f);

/*
 * An upstream outage (network error, 5xx, 429) while checking or fetching tag <m->tagname>:
 * serve the cached manifest with a Warning when stale_if_error allows. 1 when served.
 */
static int serve_stale(struct mreq *m, struct fetch *f)
{
    struct api *api = m->api;
    struct refresh_facts facts = {m->have_tag, m->tag.it_checked_at, m->rule->rule_refresh_interval,
                                  m->rule->rule_stale_if_error};
    char status[16];

    if (m->tagname[0] == '\0' || !m->have_tag || m->child)
        return 0;
    if (api_outcome(f) != OUTCOME_OUTAGE)
        return 0;
    if (refresh_on_error(&facts, m->now) != REFRESH_SERVE_STALE ||
        !cache_has(api->cache, m->tag.it_digest))
        return 0;
    snprintf(status, sizeof(status), "%d", f->resp.ur_status);
    api->mx.stale_served++;
    log_event(LOG_WARN, "serve-stale", "repo", m->upname, "tag", m->tagname, "digest",
              m->tag.it_digest, "upstream_status", status, "error", f->err, NULL);
    return manifest_serve(m, m->tag.it_digest, STALE_WARNING) == 0;
}

static void tag_checked(struct mreq *m, struct fetch *f);
static int manifest_head(struct mreq *m, int retries, void (*cont)(struct mreq *, struct fetch *));

/* ECR answered the GET of a tag upstream could not confirm and this cache does not hold. */
static void ecr_tag_fetched(struct mreq *m, struct fetch *f)
{
    char digest[INDEX_DIGEST_MAX], mt[INDEX_MEDIA_TYPE_MAX], st[16];
    const char *d = f->resp.ur_digest;

    api_ecr_answered(m->api, f->resp.ur_status);
    if (f->res == UPSTREAM_OK) {
        digest_of(d[0] != '\0' ? d : "sha256:", f->body ? f->body : "", f->len, digest,
                  sizeof(digest));
        if (d[0] == '\0' || strcmp(digest, d) == 0) {
            fetched_type(f, mt, sizeof(mt));
            if (fetched_store(m, f, digest, mt))
                m->api->mx.content_bytes_ecr += f->len;
            m->repo = cache_repo_confirm(m->api->cache, m->repo);
            m->api->mx.ecr_stale_served++;
            m->api->mx.stale_served++;
            snprintf(st, sizeof(st), "%d", m->up_status);
            log_event(LOG_WARN, "serve-stale-ecr", "repo", m->upname, "tag", m->tagname, "digest",
                      digest, "upstream_status", st, "error", m->up_err, NULL);
            fetched_answer(m, f, digest, mt, STALE_WARNING);
            return;
        }
        log_event(LOG_ERROR, "ecr-manifest-digest-mismatch", "want", d, "got", digest, NULL);
    }
    if (!m->tag_rechecked && !m->gone) {
        /* Nothing to fall back on after all: upstream is asked again with the retries any
         * uncached tag has (the first check went without, counting on ECR). */
        m->tag_rechecked = 1;
        if (manifest_head(m, 2, tag_checked))
            m->api->mx.tag_checks++;
        return;
    }
    mreq_error(m, upstream_oci_error(m->up_res, m->up_status, OCI_ERR_MANIFEST_UNKNOWN),
               "upstream could not confirm the tag", m->up_err);
}

/*
 * Upstream failed (an outage) on tag m->tagname, which this cache does not hold: ECR's tag,
 * pushed by this appliance or another, is served stale with the Warning. 1 when asked.
 */
static int ecr_stale_tag(struct mreq *m, struct fetch *f)
{
    struct upstream_target t;
    char path[1024], key[1200];

    if (m->tagname[0] == '\0' || m->have_tag || m->child || m->tag_rechecked ||
        api_outcome(f) != OUTCOME_OUTAGE)
        return 0;
    if (!api_ecr_target(m, &t, path, sizeof(path), "manifests", m->tagname, 0))
        return 0;
    t.ut_accept = upstream_accept(m);
    t.ut_max_body = MANIFEST_MAX_BYTES;
    m->up_res = f->res;
    m->up_status = f->resp.ur_status;
    str_copy(m->up_err, sizeof(m->up_err), f->err);
    api_ecr_key(m, key, sizeof(key), 0, path);
    fetch_join(m, key, &t, ecr_tag_fetched);
    return 1;
}

/* The tag check (HEAD) ended. */
static void tag_checked(struct mreq *m, struct fetch *f)
{
    struct api *api = m->api;
    const char *d = f->resp.ur_digest;
    int64_t now = m->now;
    const char *tag = m->tagname;

    if (f->res != UPSTREAM_OK)
        api->mx.tag_check_errors++;
    if (f->res == UPSTREAM_OK && d[0] != '\0' &&
        oci_digest_parse(d, strlen(d)) != OCI_DIGEST_NONE) {
        if (!m->have_tag || strcmp(d, m->tag.it_digest) != 0)
            api->mx.tag_changed++;
        if (m->have_tag && strcmp(d, m->tag.it_digest) == 0)
            cache_tag_checked(api->cache, m->repo, tag, now);
        else if (cache_has(api->cache, d)) {
            cache_tag_put(
                api->cache, m->repo, tag, d,
                f->resp.ur_content_type[0] ? f->resp.ur_content_type : m->tag.it_media_type, now);
            /* Upstream named stored content for this repository: its row, then the push. */
            m->repo = cache_repo_confirm(api->cache, m->repo);
            api_ecr_queue(m, d, tag);
        }
        if (cache_has(api->cache, d)) {
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
        api_target_init(&t, m, path, 0);
        t.ut_accept = upstream_accept(m);
        t.ut_max_body = MANIFEST_MAX_BYTES;
        fetch_join(m, key, &t, serve_tag_after_fetch);
        return;
    }
    if (serve_stale(m, f) || ecr_stale_tag(m, f))
        return;
    mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
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
    api_target_init(&t, m, path, 1);
    t.ut_accept = upstream_accept(m);
    t.ut_max_retries = retries;
    return fetch_join(m, key, &t, cont);
}

/* Upstream answered the HEAD for a manifest stored for another repository. */
static void manifest_confirmed(struct mreq *m, struct fetch *f)
{
    const char *d = f->resp.ur_digest;

    if (f->res != UPSTREAM_OK) {
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
                   "manifest unknown to this repository upstream", f->err);
        return;
    }
    if (d[0] != '\0' && strcmp(d, m->rt.rq_ref) != 0) {
        mreq_error(m, OCI_ERR_UPSTREAM, "upstream confirmed another digest", d);
        return;
    }
    m->api->mx.manifest_hits++;
    /* Now known in this repository: its mirror in ECR gets it too (unless ECR said so). */
    m->repo = cache_repo_confirm(m->api->cache, m->repo);
    if (!m->from_ecr)
        api_ecr_queue(m, m->rt.rq_ref, NULL);
    if (manifest_serve(m, m->rt.rq_ref, NULL) == 0)
        return;
    m->api->mx.manifest_hits--;
    m->api->mx.manifest_misses++;
    manifest_fetch_digest(m, m->rt.rq_ref);
}

/* ECR answered the HEAD for a manifest stored for another repository: what ECR holds for this
 * repository counts as its own; else upstream's HEAD decides. */
static void manifest_confirmed_ecr(struct mreq *m, struct fetch *f)
{
    const char *d = f->resp.ur_digest;

    api_ecr_answered(m->api, f->resp.ur_status);
    if (f->res == UPSTREAM_OK && (d[0] == '\0' || strcmp(d, m->rt.rq_ref) == 0)) {
        m->api->mx.ecr_confirmations++;
        m->from_ecr = 1;
        manifest_confirmed(m, f);
        return;
    }
    if (manifest_head(m, 2, manifest_confirmed))
        m->api->mx.confirmations++;
}

void api_manifest(struct mreq *m)
{
    struct api *api = m->api;
    int64_t now = m->now;

    if (m->rt.rq_ref_is_digest) {
        /* Only what this repository is known to hold: a digest is not a capability. */
        struct access_facts af = {0};
        enum access_decision d;
        af.af_known = cache_repo_has(api->cache, m->repo, m->rt.rq_ref) == 1;
        af.af_stored = !af.af_known && cache_has(api->cache, m->rt.rq_ref);
        af.af_indexed =
            af.af_stored && cache_manifest_info(api->cache, m->rt.rq_ref, NULL, 0, NULL) == 1;
        d = access_manifest(&af);
        if (d == ACCESS_SERVE && manifest_serve(m, m->rt.rq_ref, NULL) == 0) {
            api->mx.manifest_hits++;
            return;
        }
        if (d == ACCESS_CONFIRM) {
            /* Stored for another repository: ECR's or upstream's HEAD says whether this one
             * has it. */
            struct upstream_target t;
            char path[1024], key[1200];
            if (api_ecr_target(m, &t, path, sizeof(path), "manifests", m->rt.rq_ref, 1)) {
                t.ut_accept = upstream_accept(m);
                api_ecr_key(m, key, sizeof(key), 1, path);
                fetch_join(m, key, &t, manifest_confirmed_ecr);
                return;
            }
            if (manifest_head(m, 2, manifest_confirmed))
                api->mx.confirmations++;
            return;
        }
        api->mx.manifest_misses++;
        manifest_fetch_digest(m, m->rt.rq_ref);
        return;
    }
    str_copy(m->tagname, sizeof(m->tagname), m->rt.rq_ref);
    m->have_tag = cache_tag_get(api->cache, m->repo, m->tagname, &m->tag) == 1;
    {
        struct refresh_facts facts = {m->have_tag, m->tag.it_checked_at,
                                      m->rule->rule_refresh_interval, m->rule->rule_stale_if_error};
        if (m->have_tag && refresh_decide(&facts, now) == REFRESH_FRESH) {
            struct api *a = m->api;
            if (manifest_serve(m, m->tag.it_digest, NULL) == 0) {
                a->mx.tag_fresh++;
                a->mx.manifest_hits++;
                return;
            }
        }
    }
    /* A tag check with an answer to fall back on, cached here or ECR's, does not linger on a
     * failing upstream. */
    if (manifest_head(m, m->have_tag || api_ecr_ready(m) ? 0 : 2, tag_checked))
        api->mx.tag_checks++;
}
