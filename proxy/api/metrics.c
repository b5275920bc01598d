/*
 * GET /metrics: the api's, the catalog's, the fills', the upstream client's and the server's
 * counters in Prometheus text format (README's metrics table).
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "fill.h"
#include "reply.h"
#include "server.h"
#include "util.h"

/* ---- metrics ---------------------------------------------------------------------------- */

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help,
                   const char *labels, uint64_t v)
{
    if (help != NULL)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    evbuffer_add_printf(b, "%s%s %llu\n", name, labels ? labels : "", (unsigned long long)v);
}

/* The byte budget and the sweep (gc.c). */
static void gc_metrics(struct api *api, struct evbuffer *b)
{
    const struct api_metrics *mx = &api->mx;
    int64_t free_bytes = cache_free_bytes(api->cache);

    metric(b, "ecr_ptc_cache_bytes", "gauge",
           "bytes of every stored blob and manifest (what cache_size counts)", NULL,
           (uint64_t)cache_used_bytes(api->cache));
    metric(b, "ecr_ptc_cache_budget_bytes", "gauge", "cache_size; 0: no budget", NULL,
           (uint64_t)api->cfg->cfg_cache_size);
    if (free_bytes >= 0)
        metric(b, "ecr_ptc_disk_free_bytes", "gauge",
               "bytes free on the data directory's filesystem", NULL, (uint64_t)free_bytes);
    metric(b, "ecr_ptc_gc_runs_total", "counter", "sweeps run (lifecycle rules and byte budget)",
           NULL, mx->gc_runs);
    metric(b, "ecr_ptc_gc_failures_total", "counter", "sweeps the index failed", NULL,
           mx->gc_failures);
    metric(b, "ecr_ptc_gc_images_expired_total", "counter", "images the sweep removed, by why",
           "{reason=\"lifecycle\"}", mx->gc_images[0]);
    metric(b, "ecr_ptc_gc_images_expired_total", "counter", NULL, "{reason=\"budget\"}",
           mx->gc_images[1]);
    metric(b, "ecr_ptc_gc_bytes_freed_total", "counter", "bytes of blobs and manifests removed",
           NULL, mx->gc_bytes);
    metric(b, "ecr_ptc_gc_files_removed_total", "counter", "blob and manifest files removed", NULL,
           mx->gc_files);
}

void api_label_escape(char *out, size_t size, const char *v)
{
    size_t n = 0;

    for (; *v != '\0'; v++) {
        const char *e = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        size_t el = e != NULL ? 2 : 1;
        if (n + el >= size)
            break;
        if (e != NULL)
            memcpy(out + n, e, 2);
        else
            out[n] = *v;
        n += el;
    }
    if (size > 0)
        out[n] = '\0';
}

int64_t api_ratelimit_value(const char *v)
{
    int64_t n = 0;
    int digits = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v >= '0' && *v <= '9' && digits < 18; v++, digits++)
        n = n * 10 + (*v - '0');
    return digits > 0 ? n : -1;
}

/* Per rule: ecr_ptc_upstream_up (1 when its upstream's last exchange was answered, 0 when it
 * failed; absent until one ended) and ecr_ptc_upstream_ratelimit_remaining (absent until a
 * ratelimit-remaining header came). */
static void upstream_health_metrics(struct api *api, struct evbuffer *b)
{
    int up_help = 1, rl_help = 1;

    for (size_t i = 0; i < api->cfg->cfg_nrules; i++) {
        struct upstream_health h;
        char v[256], lab[300];
        int64_t rl;

        upstream_health_get(api->up, &api->origins[i], &h);
        api_label_escape(v, sizeof(v), api->cfg->cfg_rules[i].rule_prefix);
        snprintf(lab, sizeof(lab), "{rule=\"%s\"}", v);
        if (h.uh_state != UPSTREAM_HEALTH_UNKNOWN) {
            metric(b, "ecr_ptc_upstream_up", "gauge",
                   up_help ? "1 when the rule's upstream answered its last exchange, 0 when it "
                             "failed (network, 5xx, 429, 401/403)"
                           : NULL,
                   lab, h.uh_state == UPSTREAM_HEALTH_OK);
            up_help = 0;
        }
        rl = api_ratelimit_value(h.uh_ratelimit);
        if (rl >= 0) {
            metric(b, "ecr_ptc_upstream_ratelimit_remaining", "gauge",
                   rl_help ? "the last ratelimit-remaining the rule's upstream sent" : NULL, lab,
                   (uint64_t)rl);
            rl_help = 0;
        }
    }
}

void api_metrics(struct api *api, struct evhttp_request *req)
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
        metric(b, "ecr_ptc_requests_total", "counter", i == 0 ? "API requests by route" : NULL, lab,
               mx->requests[i]);
    }
    metric(b, "ecr_ptc_cache_hits_total", "counter", "served from the store", "{kind=\"manifest\"}",
           mx->manifest_hits);
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
    metric(b, "ecr_ptc_bytes_served_total", "counter", NULL, "{from=\"fill\"}", fs.fs_bytes_sent);
    metric(b, "ecr_ptc_upstream_bytes_total", "counter",
           "response body bytes received from upstreams, each counted once (blobs, manifests, "
           "tokens, error bodies; not headers): what crossed the NAT",
           NULL, us.us_bytes);
    metric(b, "ecr_ptc_upstream_requests_total", "counter",
           "HTTP exchanges with upstreams, tokens and redirects included", NULL, us.us_requests);
    metric(b, "ecr_ptc_upstream_token_fetches_total", "counter", "token endpoint requests", NULL,
           us.us_token_fetches);
    metric(b, "ecr_ptc_upstream_retries_total", "counter", "retries after 5xx, 429 or errors", NULL,
           us.us_retries);
    metric(b, "ecr_ptc_fills_total", "counter", "blob fills by outcome", "{state=\"started\"}",
           fs.fs_started);
    metric(b, "ecr_ptc_fills_total", "counter", NULL, "{state=\"completed\"}", fs.fs_completed);
    metric(b, "ecr_ptc_fills_total", "counter", NULL, "{state=\"failed\"}", fs.fs_failed);
    metric(b, "ecr_ptc_fills_total", "counter", NULL, "{state=\"not_kept\"}", fs.fs_not_kept);
    metric(b, "ecr_ptc_fill_followers_total", "counter", "client responses streamed from fills",
           NULL, fs.fs_joined);
    metric(b, "ecr_ptc_error_responses_total", "counter", "OCI error answers", NULL,
           http_error_responses());
    metric(b, "ecr_ptc_config_reloads_total", "counter",
           "SIGHUP reloads of the configuration: applied, or refused (the old one kept)",
           "{result=\"ok\"}", mx->reloads[0]);
    metric(b, "ecr_ptc_config_reloads_total", "counter", NULL, "{result=\"failed\"}",
           mx->reloads[1]);
    metric(b, "ecr_ptc_uptime_seconds", "gauge", "seconds since start", NULL,
           (uint64_t)(api->clock() - api->started_at));
    {
        char labels[64];
        uint64_t hits, bytes;
        for (int i = 0; i < CACHE_NMAPS; i++) {
            const char *name = cache_map_stats(api->cache, (enum cache_map)i, &hits, &bytes);
            snprintf(labels, sizeof(labels), "{map=\"%s\"}", name);
            metric(b, "ecr_ptc_memory_hits_total", "counter",
                   i == 0 ? "in-memory map lookups answered without the index or the store" : NULL,
                   labels, hits);
        }
        for (int i = 0; i < CACHE_NMAPS; i++) {
            const char *name = cache_map_stats(api->cache, (enum cache_map)i, &hits, &bytes);
            snprintf(labels, sizeof(labels), "{map=\"%s\"}", name);
            metric(b, "ecr_ptc_memory_bytes", "gauge",
                   i == 0 ? "bytes held by the in-memory maps" : NULL, labels, bytes);
        }
    }
    gc_metrics(api, b);
    upstream_health_metrics(api, b);
    api_ecr_metrics(api, b);
    server_metrics(api->srv, b);
    len = evbuffer_get_length(b);
    body = xmalloc(len + 1);
    evbuffer_remove(b, body, len);
    http_send_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
    evbuffer_free(b);
}
