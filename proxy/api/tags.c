/*
 * tags/list: upstream's whole list (every page of it), sorted and paged here by the client's
 * ?n= and ?last=, or the catalog's tags, marked stale, when upstream is down.
 */
#include "config.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "log.h"
#include "reply.h"
#include "util.h"

#define TAGS_BODY_MAX (4 * 1024 * 1024)
/* ---- tags/list and referrers ------------------------------------------------------------ */

#define TAGS_PAGES_MAX 64                  /* upstream pages followed for one list */
#define TAGS_TOTAL_BYTES (8 * 1024 * 1024) /* and the page bodies they may add up to */

/* The Link to the page after <last>, for <m>'s client: its own name and ?ns=. */
static void tags_link(struct mreq *m, int n, const char *last)
{
    char link[1400];

    snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%d&last=%s%s%s>; rel=\"next\"", m->rt.rq_name,
             n, last, m->rt.rq_ns[0] ? "&ns=" : "", m->rt.rq_ns);
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

    if (cache_tags_list(m->api->cache, m->repo, &tags, &n) == -1 || n == 0) {
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

void api_tags_free(struct mreq *m)
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

    api_target_init(&t, m, path, 0);
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
    enum outage_class oc = api_outcome(f);

    if (oc == OUTCOME_NOT_FOUND || oc == OUTCOME_DENIED) {
        api_tags_free(m);
        mreq_error(m, upstream_oci_error(f->res, f->resp.ur_status, OCI_ERR_NAME_UNKNOWN),
                   "upstream refused the tag list", f->err);
        return;
    }
    if (f->res != UPSTREAM_OK) {
        api_tags_free(m);
        tags_from_index(m, f->err);
        return;
    }
    root = json_loadb(f->body ? f->body : "", f->len, 0, &jerr);
    arr = json_is_object(root) ? json_object_get(root, "tags") : NULL;
    if (root == NULL || !json_is_object(root) || !(json_is_array(arr) || json_is_null(arr))) {
        json_decref(root);
        api_tags_free(m);
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
        api_tags_free(m);
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
void api_tags(struct mreq *m)
{
    char path[1400];

    snprintf(path, sizeof(path), "/v2/%s/tags/list", m->upname);
    tags_fetch_page(m, path);
}
