/*
 * The admin API on the daemon's Unix socket (server_listen_admin): JSON over HTTP under
 * /admin/v1/, for the CLI's list, warm, refresh, gc and rewrite. Every change goes through the
 * catalog, so the hot copies follow. Errors are {"error": "..."} with 400, 404, 405 or 500.
 *
 *   GET  /admin/v1/info                          version, data_dir, listen address, bound port
 *   GET  /admin/v1/rewrite?image=IMAGE           the rule and the proxy path IMAGE maps to
 *   GET  /admin/v1/repositories?after=ID&limit=N a page of repositories, "next" the cursor
 *   GET  /admin/v1/tags?repo=REPO&after=T&limit=N  a page of one repository's tags
 *   POST /admin/v1/refresh?image=IMAGE:TAG       the tag is due for its upstream check now
 *   POST /admin/v1/gc?dry_run=1                  the lifecycle rules and the byte budget now
 */
#include "config.h"

#include "api.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "policy_image.h"
#include "reply.h"
#include "server.h"
#include "util.h"

#define ADMIN_PREFIX "/admin/v1/"
#define ADMIN_PAGE_DEFAULT 100

/* Send <doc> (taken) with <status>. */
static void admin_reply(struct evhttp_request *req, int status, json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT);

    json_decref(doc);
    if (body == NULL) {
        http_send_body(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    http_send_body(req, status, "application/json", body, strlen(body));
    free(body);
}

static void admin_error(struct evhttp_request *req, int status, const char *msg)
{
    admin_reply(req, status, json_pack("{s:s}", "error", msg));
}

/* *<limit> from the "limit" parameter (default ADMIN_PAGE_DEFAULT, at most INDEX_LIST_MAX).
 * 0, or -1 with <why>. */
static int page_limit(struct evkeyvalq *q, size_t *limit, char *why, size_t whysize)
{
    const char *v = evhttp_find_header(q, "limit");
    char *end;
    long n;

    *limit = ADMIN_PAGE_DEFAULT;
    if (v == NULL)
        return 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1) {
        snprintf(why, whysize, "limit: \"%s\" is not a number from 1 to %d", v, INDEX_LIST_MAX);
        return -1;
    }
    *limit = n > INDEX_LIST_MAX ? INDEX_LIST_MAX : (size_t)n;
    return 0;
}

static json_t *time_or_null(int64_t t)
{
    return t > 0 ? json_integer(t) : json_null();
}

/* ---- info ---- */

static void admin_info(struct api *api, struct evhttp_request *req)
{
    const struct config *cfg = api->cfg;
    char host[256];
    int port = -1;
    json_t *rules = json_array();
    char *sock = config_admin_socket_path(cfg);

    if (config_parse_listen(cfg->cfg_listen, host, sizeof(host), &port) == -1)
        host[0] = '\0';
    if (api->srv != NULL && server_port(api->srv) > 0)
        port = server_port(api->srv);
    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        const struct config_rule *r = &cfg->cfg_rules[i];
        json_t *mf = json_array();

        for (size_t j = 0; j < r->rule_nmirror_for; j++)
            json_array_append_new(mf, json_string(r->rule_mirror_for[j]));
        json_array_append_new(rules,
                              json_pack("{s:s, s:s, s:o, s:b, s:b, s:I}", "prefix", r->rule_prefix,
                                        "upstream", r->rule_upstream, "mirror_for", mf, "default",
                                        r->rule_default, "library_prefix", r->rule_library_prefix,
                                        "refresh_interval", (json_int_t)r->rule_refresh_interval));
    }
    admin_reply(req, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:o}", "version", PACKAGE_VERSION,
                          "data_dir", cfg->cfg_data_dir, "listen", cfg->cfg_listen, "host", host,
                          "port", port, "admin_socket", sock, "rules", rules));
    free(sock);
}

/* ---- image names ---- */

/* Map the "image" parameter over the rules: 0, or -1 answered with a 400. */
static int admin_image(struct api *api, struct evhttp_request *req, struct evkeyvalq *q,
                       struct rules_image *ri)
{
    const char *image = evhttp_find_header(q, "image");
    char why[512];

    if (image == NULL) {
        admin_error(req, 400, "the image parameter is required");
        return -1;
    }
    if (rules_map_image(api->rules, api->cfg->cfg_nrules, image, ri, why, sizeof(why)) == -1) {
        admin_error(req, 400, why);
        return -1;
    }
    return 0;
}

/* The proxy path of <ri>: "<rule prefix>/<upstream name>". */
static void proxy_path(const struct api *api, const struct rules_image *ri, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", api->cfg->cfg_rules[ri->ri_rule].rule_prefix, ri->ri_name);
}

static void admin_rewrite(struct api *api, struct evhttp_request *req, struct evkeyvalq *q)
{
    struct rules_image ri;
    char path[RULES_NAME_MAX + 160], host[256], rewritten[1024];
    int port = -1;

    if (admin_image(api, req, q, &ri) == -1)
        return;
    proxy_path(api, &ri, path, sizeof(path));
    if (config_parse_listen(api->cfg->cfg_listen, host, sizeof(host), &port) == -1)
        snprintf(host, sizeof(host), "PROXY");
    if (api->srv != NULL && server_port(api->srv) > 0)
        port = server_port(api->srv);
    snprintf(rewritten, sizeof(rewritten), "%s%s%s:%d/%s%s%s", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port, path, ri.ri_by_digest ? "@" : ":",
             ri.ri_reference);
    admin_reply(req, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "image",
                          evhttp_find_header(q, "image"), "rule",
                          api->cfg->cfg_rules[ri.ri_rule].rule_prefix, "host", ri.ri_host, "name",
                          ri.ri_name, "proxy_path", path, "reference", ri.ri_reference, "by_digest",
                          ri.ri_by_digest, "rewritten", rewritten));
}

/* ---- listings ---- */

static void admin_repositories(struct api *api, struct evhttp_request *req, struct evkeyvalq *q)
{
    const char *after_s = evhttp_find_header(q, "after");
    struct index_repo_row *rows = NULL;
    int64_t after = 0;
    size_t limit, n = 0;
    char why[256];
    json_t *list;

    if (page_limit(q, &limit, why, sizeof(why)) == -1) {
        admin_error(req, 400, why);
        return;
    }
    if (after_s != NULL) {
        char *end;
        errno = 0;
        after = strtoll(after_s, &end, 10);
        if (errno != 0 || end == after_s || *end != '\0' || after < 0) {
            admin_error(req, 400, "after: not a repository id");
            return;
        }
    }
    rows = xcalloc(limit, sizeof(*rows));
    if (cache_repos_page(api->cache, after, limit, rows, &n, api->clock()) == -1) {
        free(rows);
        admin_error(req, 500, "the index could not be read");
        return;
    }
    list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            list, json_pack("{s:I, s:s, s:s, s:s++, s:I}", "id", (json_int_t)rows[i].irr_id, "rule",
                            rows[i].irr_rule, "name", rows[i].irr_name, "path", rows[i].irr_rule,
                            "/", rows[i].irr_name, "tags", (json_int_t)rows[i].irr_ntags));
    admin_reply(req, 200,
                json_pack("{s:o, s:o}", "repositories", list, "next",
                          n == limit ? json_integer(rows[n - 1].irr_id) : json_null()));
    free(rows);
}

/*
 * The repository <repo> names: a proxy path ("docker-hub/library/nginx", as the repository
 * listing prints it) when the index has that one, else an image as users write it ("nginx",
 * "public.ecr.aws/x/y"). Its id (0 when not cached), rule and name. -1 when neither parses.
 */
static int64_t admin_find_repo(struct api *api, const char *repo, const struct config_rule **rule,
                               char *name, size_t size, char *why, size_t whysize)
{
    struct rules_match m;
    struct rules_image ri;
    int64_t id;

    if (rules_match(api->rules, api->cfg->cfg_nrules, repo, NULL, &m) == RULES_OK) {
        *rule = &api->cfg->cfg_rules[m.rm_rule];
        id = cache_repo_find(api->cache, (*rule)->rule_prefix, m.rm_upstream_name);
        if (id != 0) {
            (void)str_copy(name, size, m.rm_upstream_name);
            return id;
        }
    }
    if (rules_map_image(api->rules, api->cfg->cfg_nrules, repo, &ri, why, whysize) == -1)
        return -1;
    *rule = &api->cfg->cfg_rules[ri.ri_rule];
    (void)str_copy(name, size, ri.ri_name);
    id = cache_repo_find(api->cache, (*rule)->rule_prefix, ri.ri_name);
    return id < 0 ? -2 : id;
}

static void admin_tags(struct api *api, struct evhttp_request *req, struct evkeyvalq *q)
{
    const char *repo = evhttp_find_header(q, "repo");
    const char *after = evhttp_find_header(q, "after");
    const struct config_rule *rule = NULL;
    struct index_tag_row *rows = NULL;
    char name[RULES_NAME_MAX], why[512];
    size_t limit, n = 0;
    int64_t id;
    json_t *list;

    if (repo == NULL) {
        admin_error(req, 400, "the repo parameter is required");
        return;
    }
    if (page_limit(q, &limit, why, sizeof(why)) == -1) {
        admin_error(req, 400, why);
        return;
    }
    id = admin_find_repo(api, repo, &rule, name, sizeof(name), why, sizeof(why));
    if (id == -1) {
        admin_error(req, 400, why);
        return;
    }
    if (id < -1) {
        admin_error(req, 500, "the index could not be read");
        return;
    }
    if (id == 0) {
        char msg[RULES_NAME_MAX + 200];
        snprintf(msg, sizeof(msg), "%s/%s is not cached", rule->rule_prefix, name);
        admin_error(req, 404, msg);
        return;
    }
    rows = xcalloc(limit, sizeof(*rows));
    if (cache_tags_page(api->cache, id, after, limit, rows, &n, api->clock()) == -1) {
        free(rows);
        admin_error(req, 500, "the index could not be read");
        return;
    }
    list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct index_tag *t = &rows[i].itr_t;

        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:I, s:b, s:o, s:I, s:I, s:I}", "tag", rows[i].itr_tag,
                      "digest", t->it_digest, "media_type", t->it_media_type, "bytes",
                      (json_int_t)rows[i].itr_bytes, "complete", rows[i].itr_missing == 0,
                      "last_pulled_at", time_or_null(t->it_last_pulled_at), "checked_at",
                      (json_int_t)t->it_checked_at, "changed_at", (json_int_t)t->it_changed_at,
                      "fresh_until", (json_int_t)(t->it_checked_at + rule->rule_refresh_interval)));
    }
    admin_reply(req, 200,
                json_pack("{s:s, s:s, s:s++, s:o, s:o}", "rule", rule->rule_prefix, "name", name,
                          "path", rule->rule_prefix, "/", name, "tags", list, "next",
                          n == limit ? json_string(rows[n - 1].itr_tag) : json_null()));
    free(rows);
}

/* ---- changes ---- */

static void admin_refresh(struct api *api, struct evhttp_request *req, struct evkeyvalq *q)
{
    const struct config_rule *rule;
    struct rules_image ri;
    struct index_tag old;
    char path[RULES_NAME_MAX + 160];
    int64_t repo, now = api->clock();
    int rc = 0;

    if (admin_image(api, req, q, &ri) == -1)
        return;
    if (ri.ri_by_digest) {
        admin_error(req, 400, "a digest never changes: refresh takes IMAGE[:TAG]");
        return;
    }
    rule = &api->cfg->cfg_rules[ri.ri_rule];
    proxy_path(api, &ri, path, sizeof(path));
    repo = cache_repo_find(api->cache, rule->rule_prefix, ri.ri_name);
    if (repo > 0)
        rc = cache_tag_expire(api->cache, repo, ri.ri_reference, now - rule->rule_refresh_interval,
                              &old);
    if (repo < 0 || rc == -1) {
        admin_error(req, 500, "the index could not be changed");
        return;
    }
    admin_reply(req, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "image",
                          evhttp_find_header(q, "image"), "rule", rule->rule_prefix, "name",
                          ri.ri_name, "proxy_path", path, "tag", ri.ri_reference, "cached", rc == 1,
                          "old_digest", rc == 1 ? json_string(old.it_digest) : json_null()));
}

void api_admin_gc_reply(struct evhttp_request *req, int dry_run, const struct cache_gc_result *r)
{
    json_t *images;

    if (r == NULL) {
        admin_error(req, 500, "the sweep failed: the index could not be read or written");
        return;
    }
    images = json_array();
    for (size_t i = 0; i < r->gr_nimages; i++) {
        const struct cache_gc_image *g = &r->gr_images[i];
        json_t *tags = json_array();

        for (size_t j = 0; j < g->gi_ntags; j++)
            json_array_append_new(tags, json_string(g->gi_tags[j]));
        json_array_append_new(
            images, json_pack("{s:s, s:s, s:s, s:o, s:I, s:i, s:s}", "rule", g->gi_rule, "name",
                              g->gi_name, "digest", g->gi_digest, "tags", tags, "bytes",
                              (json_int_t)g->gi_bytes, "rule_priority", g->gi_rule_priority,
                              "reason", g->gi_rule_priority > 0 ? "lifecycle" : "budget"));
    }
    admin_reply(req, 200,
                json_pack("{s:b, s:o, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry_run, "images",
                          images, "used_before", (json_int_t)r->gr_used_before, "used_after",
                          (json_int_t)r->gr_used_after, "freed", (json_int_t)r->gr_freed, "files",
                          (json_int_t)r->gr_files, "skipped", (json_int_t)r->gr_skipped));
}

/*
 * Run the lifecycle rules and the byte budget now. A dry run answers the plan at once; a real
 * sweep runs in slices between other requests (api_gc_async), and this request is answered
 * when it is done (a sweep already running is joined: its result is the answer).
 */
static void admin_gc(struct api *api, struct evhttp_request *req, struct exchange *x,
                     struct evkeyvalq *q)
{
    const char *d = evhttp_find_header(q, "dry_run");
    struct cache_gc_result r;

    if (d != NULL && strcmp(d, "0") != 0 && strcmp(d, "1") != 0) {
        admin_error(req, 400, "dry_run: 0 or 1");
        return;
    }
    if (d != NULL && strcmp(d, "1") == 0) {
        memset(&r, 0, sizeof(r));
        if (api_gc(api, 1, 0, &r) == -1) {
            api_admin_gc_reply(req, 1, NULL);
            return;
        }
        api_admin_gc_reply(req, 1, &r);
        cache_gc_result_free(&r);
        return;
    }
    if (api_gc_async(api, req, x) == -1)
        api_admin_gc_reply(req, 0, NULL);
}

/* ---- dispatch ---- */

void api_admin_handle(void *arg, struct evhttp_request *req, struct exchange *x)
{
    struct api *api = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
    const char *query = u != NULL ? evhttp_uri_get_query(u) : NULL;
    struct evkeyvalq q;
    const char *what;
    int post;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    TAILQ_INIT(&q);
    if (path == NULL || strncmp(path, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) != 0) {
        admin_error(req, 404, "not an admin API path: the API lives under " ADMIN_PREFIX);
        return;
    }
    if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
        admin_error(req, 400, "the query string is malformed");
        goto out;
    }
    what = path + strlen(ADMIN_PREFIX);
    post = strcmp(what, "refresh") == 0 || strcmp(what, "gc") == 0;
    if (strcmp(what, "info") != 0 && strcmp(what, "rewrite") != 0 &&
        strcmp(what, "repositories") != 0 && strcmp(what, "tags") != 0 && !post) {
        admin_error(req, 404, "no such admin endpoint");
        goto out;
    }
    if (post ? cmd != EVHTTP_REQ_POST : cmd != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", post ? "POST" : "GET");
        admin_error(req, 405, post ? "only POST" : "only GET");
        goto out;
    }
    if (strcmp(what, "info") == 0)
        admin_info(api, req);
    else if (strcmp(what, "rewrite") == 0)
        admin_rewrite(api, req, &q);
    else if (strcmp(what, "repositories") == 0)
        admin_repositories(api, req, &q);
    else if (strcmp(what, "tags") == 0)
        admin_tags(api, req, &q);
    else if (strcmp(what, "refresh") == 0)
        admin_refresh(api, req, &q);
    else
        admin_gc(api, req, x, &q);
out:
    evhttp_clear_headers(&q);
}
