/*
 * Referrers: upstream's answer; a 404 when upstream has no referrers API; in an outage, the
 * referrers this repository pulled through the proxy, as an OCI index marked stale.
 */
#include "config.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "manifest.h"
#include "reply.h"
#include "util.h"

#define REFERRERS_BODY_MAX (4 * 1024 * 1024)

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
    const char *body = NULL;
    size_t len = 0;
    char *bytes = NULL;
    json_t *root, *d = NULL, *at, *ann;
    json_error_t jerr;

    bytes = cache_manifest_copy(api->cache, digest, &len);
    if (bytes == NULL)
        return NULL;
    body = bytes;
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

    if (cache_referrers(m->api->cache, m->rt.rq_ref, &ds, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char mt[INDEX_MEDIA_TYPE_MAX];
            int64_t size = 0;
            json_t *d, *at;
            /* Only referrers pulled through this repository: the index is shared. */
            if (cache_repo_has(m->api->cache, m->repo, ds[i]) != 1 ||
                cache_manifest_info(m->api->cache, ds[i], mt, sizeof(mt), &size) != 1)
                continue;
            d = referrer_descriptor(m->api, ds[i], mt, size);
            if (d == NULL)
                continue;
            at = json_object_get(d, "artifactType");
            if (want[0] != '\0' &&
                !(json_is_string(at) && strcmp(json_string_value(at), want) == 0)) {
                json_decref(d);
                continue;
            }
            json_array_append_new(arr, d);
        }
    }
    index_strings_free(ds, n);
    json_object_set_new(root, "schemaVersion", json_integer(2));
    json_object_set_new(root, "mediaType", json_string("application/vnd.oci.image.index.v1+json"));
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
    enum outage_class oc = api_outcome(f);

    if (oc == OUTCOME_NOT_FOUND) {
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
    if (outage_is_refusal(oc)) {
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_MANIFEST_UNKNOWN),
                   "upstream refused the referrers list", f->err);
        return;
    }
    /* An outage (network, 5xx, 429): what this repository is known to hold. */
    referrers_from_index(m);
}

void api_referrers(struct mreq *m)
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
    api_target_init(&t, m, path, 0);
    t.ut_max_body = REFERRERS_BODY_MAX;
    t.ut_max_retries = 1;
    snprintf(key, sizeof(key), "GET %s %s", m->rule->rule_prefix, path);
    fetch_join(m, key, &t, referrers_fetched);
}
