/*
 * GET and HEAD /: the status page. One small HTML document, inline CSS and an inline SVG chart,
 * no script and nothing fetched from anywhere else (a Content-Security-Policy says so to the
 * browser): the hit ratio, bytes served from the store and from fills against what crossed the
 * NAT, the egress avoided in GB and dollars, fills in flight, disk used against the budget,
 * each rule's upstream health, the most pulled images, and the last 24 h of traffic.
 *
 * Every figure /metrics also has is written in an element carrying data-metric (the series,
 * as /metrics names it) and data-value (the exact integer), so a test can compare the page with
 * /metrics. Every string that comes from the config, an upstream or the index is escaped.
 *
 * The chart: a ring of STATUS_SAMPLES samples of the cumulative bytes served from the store
 * and received from upstreams, one every STATUS_SAMPLE_SECONDS (a timer on the api's loop),
 * drawn as what each counter added since the oldest sample of the window, with the current
 * figures as the last point so a fresh process draws a line too.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api-int.h"
#include "cache.h"
#include "config_file.h"
#include "fill.h"
#include "reply.h"
#include "util.h"

#define STATUS_MAGIC 0x53544154u /* "STAT" */
#define STATUS_SAMPLE_SECONDS 300
#define STATUS_SAMPLES 288 /* 24 h of them */
#define STATUS_WINDOW ((int64_t)STATUS_SAMPLES * STATUS_SAMPLE_SECONDS)
#define STATUS_TOP 10 /* images listed */

/* What the chart draws at one moment: cumulative bytes, since the process started. */
struct status_sample {
    int64_t ss_at;
    uint64_t ss_cache;    /* served from the store */
    uint64_t ss_upstream; /* received from upstreams */
};

/* The last STATUS_SAMPLES samples; sr_next is where the next one goes. */
struct status_ring {
    struct status_sample sr_s[STATUS_SAMPLES];
    size_t sr_next, sr_n;
};

struct status {
    unsigned magic;
    struct api *api;
    struct event *tick;
    struct status_ring ring;
};

/* ---- the ring --------------------------------------------------------------------------- */

static void ring_add(struct status_ring *r, const struct status_sample *s)
{
    r->sr_s[r->sr_next] = *s;
    r->sr_next = (r->sr_next + 1) % STATUS_SAMPLES;
    if (r->sr_n < STATUS_SAMPLES)
        r->sr_n++;
}

/* The <i>th sample, oldest first (i < r->sr_n). */
static const struct status_sample *ring_at(const struct status_ring *r, size_t i)
{
    return &r->sr_s[(r->sr_next + STATUS_SAMPLES - r->sr_n + i) % STATUS_SAMPLES];
}

/* ---- writing HTML ------------------------------------------------------------------------ */

/* <s> as HTML text or attribute value: & < > " ' escaped, control characters dropped. */
static void html_esc(struct evbuffer *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': evbuffer_add(b, "&amp;", 5); break;
        case '<': evbuffer_add(b, "&lt;", 4); break;
        case '>': evbuffer_add(b, "&gt;", 4); break;
        case '"': evbuffer_add(b, "&quot;", 6); break;
        case '\'': evbuffer_add(b, "&#39;", 5); break;
        default:
            if (c >= 0x20 && c != 0x7f)
                evbuffer_add(b, s, 1);
            break;
        }
    }
}

/* <n> bytes for people: "0 B", "12.3 kB", "4.56 GB" (SI units, as the dollars are per 1e9). */
static void fmt_bytes(char *out, size_t size, double n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    size_t u = 0;

    while (n >= 1000 && u + 1 < ARRAY_LEN(units)) {
        n /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%.0f B", n);
    else
        snprintf(out, size, "%.*f %s", n < 10 ? 2 : n < 100 ? 1 : 0, n, units[u]);
}

/* "2026-01-01 12:00:00 UTC (5 s ago)" for <at>, "never" for 0. */
static void fmt_when(char *out, size_t size, int64_t at, int64_t now)
{
    struct tm tm;
    time_t t = (time_t)at;
    char day[32];

    if (at <= 0 || gmtime_r(&t, &tm) == NULL) {
        str_copy(out, size, "never");
        return;
    }
    strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S UTC", &tm);
    snprintf(out, size, "%s (%" PRId64 " s ago)", day, now > at ? now - at : 0);
}

/* A table row: <label>, then <text> in a cell for the series <metric> (NULL: none) holding
 * <value>. */
static void row_metric(struct evbuffer *b, const char *label, const char *metric, uint64_t value,
                       const char *text)
{
    evbuffer_add_printf(b, "<tr><th>");
    html_esc(b, label);
    evbuffer_add_printf(b, "</th><td");
    if (metric != NULL) {
        evbuffer_add_printf(b, " data-metric=\"");
        html_esc(b, metric);
        evbuffer_add_printf(b, "\"");
    }
    evbuffer_add_printf(b, " data-value=\"%" PRIu64 "\">", value);
    html_esc(b, text);
    evbuffer_add_printf(b, "</td></tr>\n");
}

/* A byte count row: human text, exact data-value. */
static void row_bytes(struct evbuffer *b, const char *label, const char *metric, uint64_t value)
{
    char text[64];

    fmt_bytes(text, sizeof(text), (double)value);
    row_metric(b, label, metric, value, text);
}

static void row_count(struct evbuffer *b, const char *label, const char *metric, uint64_t value)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRIu64, value);
    row_metric(b, label, metric, value, text);
}

/* ---- the sections ----------------------------------------------------------------------- */

static void section_traffic(struct evbuffer *b, const struct api *api, uint64_t store,
                            uint64_t fill, uint64_t upstream)
{
    const struct api_metrics *mx = &api->mx;
    uint64_t hits = mx->manifest_hits + mx->blob_hits;
    uint64_t asked = hits + mx->manifest_misses + mx->blob_misses;

    evbuffer_add_printf(b, "<section id=\"traffic\"><h2>Traffic</h2>\n<table>\n");
    if (asked > 0)
        evbuffer_add_printf(b,
                            "<tr><th>Hit ratio</th><td id=\"hit-ratio\" data-hits=\"%" PRIu64
                            "\" data-asked=\"%" PRIu64 "\"><b>%.1f %%</b></td></tr>\n",
                            hits, asked, 100.0 * (double)hits / (double)asked);
    else
        evbuffer_add_printf(b, "<tr><th>Hit ratio</th><td id=\"hit-ratio\" data-hits=\"0\" "
                               "data-asked=\"0\">no manifest or blob asked yet</td></tr>\n");
    row_count(b, "Manifest hits", "ecr_ptc_cache_hits_total{kind=\"manifest\"}", mx->manifest_hits);
    row_count(b, "Manifest misses", "ecr_ptc_cache_misses_total{kind=\"manifest\"}",
              mx->manifest_misses);
    row_count(b, "Blob hits", "ecr_ptc_cache_hits_total{kind=\"blob\"}", mx->blob_hits);
    row_count(b, "Blob misses", "ecr_ptc_cache_misses_total{kind=\"blob\"}", mx->blob_misses);
    row_bytes(b, "Served from the store", "ecr_ptc_bytes_served_total{from=\"store\"}", store);
    row_bytes(b, "Served while filling", "ecr_ptc_bytes_served_total{from=\"fill\"}", fill);
    row_bytes(b, "Received from upstreams (the NAT)", "ecr_ptc_upstream_bytes_total", upstream);
    evbuffer_add_printf(b, "</table></section>\n");
}

/* The egress avoided: what the store served did not cross the NAT again. */
static void section_egress(struct evbuffer *b, const struct api *api, uint64_t store)
{
    double price = api->cfg->cfg_egress_price_per_gb;
    double gb = (double)store / 1e9;
    double dollars = gb * price;

    evbuffer_add_printf(b,
                        "<section id=\"egress\"><h2>NAT egress avoided</h2>\n<p class=\"big\" "
                        "id=\"egress-avoided\" data-value=\"%" PRIu64 "\" data-price=\"%.6f\" "
                        "data-dollars=\"%.6f\">%.3f GB &middot; $%.*f</p>\n"
                        "<p class=\"note\">bytes served from the store, at $%.4f per GB</p>"
                        "</section>\n",
                        store, price, dollars, gb, dollars < 1 ? 4 : 2, dollars, price);
}

static void section_fills(struct evbuffer *b, const struct fill_stats *fs)
{
    uint64_t ended = fs->fs_completed + fs->fs_failed + fs->fs_not_kept;
    uint64_t running = fs->fs_started > ended ? fs->fs_started - ended : 0;

    evbuffer_add_printf(b, "<section id=\"fills\"><h2>Fills</h2>\n<table>\n");
    evbuffer_add_printf(b,
                        "<tr><th>In flight</th><td id=\"fills-in-flight\" data-value=\"%" PRIu64
                        "\">%" PRIu64 "</td></tr>\n",
                        running, running);
    row_count(b, "Started", "ecr_ptc_fills_total{state=\"started\"}", fs->fs_started);
    row_count(b, "Completed", "ecr_ptc_fills_total{state=\"completed\"}", fs->fs_completed);
    row_count(b, "Failed", "ecr_ptc_fills_total{state=\"failed\"}", fs->fs_failed);
    row_count(b, "Clients following a fill", "ecr_ptc_fill_followers_total", fs->fs_joined);
    evbuffer_add_printf(b, "</table></section>\n");
}

static void section_disk(struct evbuffer *b, struct api *api)
{
    int64_t used = cache_used_bytes(api->cache);
    int64_t budget = api->cfg->cfg_cache_size;
    int64_t avail = cache_free_bytes(api->cache);
    char text[128], n[64];

    evbuffer_add_printf(b, "<section id=\"disk\"><h2>Disk</h2>\n<table>\n");
    if (used >= 0 && budget > 0) {
        fmt_bytes(n, sizeof(n), (double)used);
        snprintf(text, sizeof(text), "%s (%.1f %% of the budget)", n,
                 100.0 * (double)used / (double)budget);
    } else if (used >= 0) {
        fmt_bytes(text, sizeof(text), (double)used);
    } else {
        str_copy(text, sizeof(text), "unknown");
    }
    evbuffer_add_printf(b, "<tr><th>Used</th><td id=\"disk-used\" data-value=\"%" PRId64 "\">",
                        used);
    html_esc(b, text);
    if (used >= 0 && budget > 0) {
        int64_t pct = used >= budget ? 100 : used * 100 / budget;
        evbuffer_add_printf(b, "<div class=\"bar\"><div style=\"width:%" PRId64 "%%\"></div></div>",
                            pct);
    }
    evbuffer_add_printf(b, "</td></tr>\n");
    if (budget > 0)
        fmt_bytes(text, sizeof(text), (double)budget);
    else
        str_copy(text, sizeof(text), "no budget (cache_size unset)");
    evbuffer_add_printf(b, "<tr><th>Budget</th><td id=\"disk-budget\" data-value=\"%" PRId64 "\">",
                        budget);
    html_esc(b, text);
    evbuffer_add_printf(b, "</td></tr>\n");
    if (avail >= 0)
        fmt_bytes(text, sizeof(text), (double)avail);
    else
        str_copy(text, sizeof(text), "unknown");
    evbuffer_add_printf(b,
                        "<tr><th>Free on the filesystem</th><td id=\"disk-free\" "
                        "data-value=\"%" PRId64 "\">",
                        avail);
    html_esc(b, text);
    evbuffer_add_printf(b, "</td></tr>\n</table></section>\n");
}

static void section_upstreams(struct evbuffer *b, struct api *api, int64_t now)
{
    static const char *const states[] = {"unknown", "ok", "failing"};

    evbuffer_add_printf(b, "<section id=\"upstreams\"><h2>Upstreams</h2>\n<table class=\"wide\">\n"
                           "<tr><th>Rule</th><th>Upstream</th><th>Health</th><th>Last status</th>"
                           "<th>Last error</th><th>Rate-limit remaining</th></tr>\n");
    for (size_t i = 0; i < api->cfg->cfg_nrules; i++) {
        const struct config_rule *r = &api->cfg->cfg_rules[i];
        struct upstream_health h;
        char lab[256], series[320], when[96];
        int64_t rl;

        upstream_health_get(api->up, &api->origins[i], &h);
        api_label_escape(lab, sizeof(lab), r->rule_prefix);
        evbuffer_add_printf(b, "<tr class=\"rule\" data-rule=\"");
        html_esc(b, r->rule_prefix);
        evbuffer_add_printf(b, "\"><td>");
        html_esc(b, r->rule_prefix);
        evbuffer_add_printf(b, "</td><td>");
        html_esc(b, r->rule_upstream);
        evbuffer_add_printf(b, "</td><td class=\"%s\"", states[h.uh_state]);
        if (h.uh_state != UPSTREAM_HEALTH_UNKNOWN) {
            snprintf(series, sizeof(series), "ecr_ptc_upstream_up{rule=\"%s\"}", lab);
            evbuffer_add_printf(b, " data-metric=\"");
            html_esc(b, series);
            evbuffer_add_printf(b, "\" data-value=\"%d\"", h.uh_state == UPSTREAM_HEALTH_OK);
        }
        evbuffer_add_printf(b, ">%s</td><td>", states[h.uh_state]);
        if (h.uh_ended_at > 0) {
            fmt_when(when, sizeof(when), h.uh_ended_at, now);
            if (h.uh_status > 0)
                evbuffer_add_printf(b, "%d <span class=\"note\">", h.uh_status);
            else
                evbuffer_add_printf(b, "no answer <span class=\"note\">");
            html_esc(b, when);
            evbuffer_add_printf(b, "</span>");
        } else {
            evbuffer_add_printf(b, "&mdash;");
        }
        evbuffer_add_printf(b, "</td><td class=\"error\">");
        if (h.uh_failed_at > 0) {
            fmt_when(when, sizeof(when), h.uh_failed_at, now);
            html_esc(b, h.uh_error);
            evbuffer_add_printf(b, " <span class=\"note\">");
            html_esc(b, when);
            evbuffer_add_printf(b, "</span>");
        } else {
            evbuffer_add_printf(b, "none");
        }
        evbuffer_add_printf(b, "</td><td");
        rl = api_ratelimit_value(h.uh_ratelimit);
        if (rl >= 0) {
            snprintf(series, sizeof(series), "ecr_ptc_upstream_ratelimit_remaining{rule=\"%s\"}",
                     lab);
            evbuffer_add_printf(b, " data-metric=\"");
            html_esc(b, series);
            evbuffer_add_printf(b, "\" data-value=\"%" PRId64 "\"", rl);
        }
        evbuffer_add_printf(b, ">");
        if (h.uh_ratelimit[0] != '\0') {
            fmt_when(when, sizeof(when), h.uh_ratelimit_at, now);
            html_esc(b, h.uh_ratelimit);
            evbuffer_add_printf(b, " <span class=\"note\">");
            html_esc(b, when);
            evbuffer_add_printf(b, "</span>");
        } else {
            evbuffer_add_printf(b, "not seen");
        }
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    evbuffer_add_printf(b, "</table></section>\n");
}

static void section_top(struct evbuffer *b, struct api *api, int64_t now)
{
    struct cache_pulled top[STATUS_TOP];
    size_t n = 0;

    evbuffer_add_printf(b, "<section id=\"top-images\"><h2>Most pulled images</h2>\n");
    if (cache_top_pulled(api->cache, STATUS_TOP, top, &n) == -1) {
        evbuffer_add_printf(b, "<p>the index is not available</p></section>\n");
        return;
    }
    if (n == 0) {
        evbuffer_add_printf(b, "<p>nothing pulled yet</p></section>\n");
        return;
    }
    evbuffer_add_printf(b, "<table class=\"wide\">\n<tr><th>Image</th><th>Pulls</th>"
                           "<th>Last pulled</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        char when[96];
        fmt_when(when, sizeof(when), top[i].cp_last_pulled_at, now);
        evbuffer_add_printf(b, "<tr class=\"image\" data-image=\"");
        html_esc(b, top[i].cp_rule);
        evbuffer_add_printf(b, "/");
        html_esc(b, top[i].cp_name);
        evbuffer_add_printf(b, ":");
        html_esc(b, top[i].cp_tag);
        evbuffer_add_printf(b, "\" data-pulls=\"%" PRId64 "\"><td>", top[i].cp_pulls);
        html_esc(b, top[i].cp_rule);
        evbuffer_add_printf(b, "/");
        html_esc(b, top[i].cp_name);
        evbuffer_add_printf(b, ":");
        html_esc(b, top[i].cp_tag);
        evbuffer_add_printf(b, "</td><td>%" PRId64 "</td><td>", top[i].cp_pulls);
        html_esc(b, when);
        evbuffer_add_printf(b, "</td></tr>\n");
    }
    evbuffer_add_printf(b, "</table></section>\n");
}

/*
 * The chart of the last STATUS_WINDOW seconds before <now>: the samples of <r> inside it, then
 * <cur>, each line drawn as what its counter added since the first of those points. The
 * x axis is time (-24 h on the left, now on the right), the y axis bytes from 0 to the larger
 * line's top.
 */
#define CH_W 720
#define CH_H 220
#define CH_L 80 /* room for the y labels */
#define CH_B 30 /* room for the x labels */
#define CH_T 10
#define CH_R 20
static void chart(struct evbuffer *b, const struct status_ring *r, const struct status_sample *cur,
                  int64_t now)
{
    const struct status_sample *pts[STATUS_SAMPLES + 1];
    size_t n = 0;
    uint64_t top = 0;
    int64_t from = now - STATUS_WINDOW;
    double pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
    char label[64];

    for (size_t i = 0; i < r->sr_n; i++) {
        const struct status_sample *s = ring_at(r, i);
        if (s->ss_at >= from && s->ss_at <= now)
            pts[n++] = s;
    }
    pts[n++] = cur;
    for (size_t i = 0; i < n; i++) {
        uint64_t c = pts[i]->ss_cache - pts[0]->ss_cache;
        uint64_t u = pts[i]->ss_upstream - pts[0]->ss_upstream;
        if (c > top)
            top = c;
        if (u > top)
            top = u;
    }
    evbuffer_add_printf(b,
                        "<svg id=\"chart-svg\" width=\"%d\" "
                        "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" data-points=\"%zu\">\n"
                        "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" class=\"plot\"/>\n",
                        CH_W, CH_H, CH_W, CH_H, n, CH_L, CH_T, pw, ph);
    for (int k = 0; k <= 4; k++) {
        double x = CH_L + pw * k / 4;
        evbuffer_add_printf(b,
                            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.0f\" class=\"grid\"/>"
                            "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                            x, CH_T, x, CH_T + ph, x, CH_H - 10);
        if (k == 4)
            evbuffer_add_printf(b, "now</text>\n");
        else
            evbuffer_add_printf(b, "-%d h</text>\n", 24 - 6 * k);
    }
    fmt_bytes(label, sizeof(label), (double)top);
    evbuffer_add_printf(b,
                        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n"
                        "<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">0 B</text>\n",
                        CH_L - 6, CH_T + 10, label, CH_L - 6, CH_T + ph);
    for (int line = 0; line < 2; line++) {
        evbuffer_add_printf(b, "<polyline class=\"%s\" points=\"",
                            line == 0 ? "cache" : "upstream");
        for (size_t i = 0; i < n; i++) {
            uint64_t v = line == 0 ? pts[i]->ss_cache - pts[0]->ss_cache
                                   : pts[i]->ss_upstream - pts[0]->ss_upstream;
            int64_t at = pts[i]->ss_at < from ? from : pts[i]->ss_at;
            double x = CH_L + pw * (double)(at - from) / (double)STATUS_WINDOW;
            double y = CH_T + ph - (top > 0 ? ph * (double)v / (double)top : 0);
            evbuffer_add_printf(b, "%s%.1f,%.1f", i > 0 ? " " : "", x, y);
        }
        evbuffer_add_printf(b, "\"/>\n");
    }
    evbuffer_add_printf(b,
                        "</svg>\n<p class=\"legend\"><span class=\"k cache\"></span> served "
                        "from the store <span class=\"k upstream\"></span> received from "
                        "upstreams (bytes added since the first point; one every %d min)</p>\n",
                        STATUS_SAMPLE_SECONDS / 60);
}

static const char page_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d232a;background:#f6f7f9}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}"
    "section{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:12px 16px;"
    "margin:0 0 16px}"
    ".cards{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:0 16px}"
    "table{border-collapse:collapse}th,td{text-align:left;padding:3px 12px 3px 0;"
    "vertical-align:top}table.wide{width:100%}table.wide th{border-bottom:1px solid #d9dde3}"
    "td[data-value]{font-variant-numeric:tabular-nums}"
    ".big{font-size:24px;font-weight:600;margin:0}.note{color:#667;font-size:12px}"
    ".ok{color:#127a3a;font-weight:600}.failing{color:#b3261e;font-weight:600}"
    ".unknown{color:#667}.error{max-width:420px;word-break:break-word}"
    ".bar{width:240px;height:8px;background:#e4e7eb;border-radius:4px;margin-top:4px}"
    ".bar div{height:8px;background:#2f6fde;border-radius:4px}"
    "svg text{font-size:11px;fill:#445}.plot{fill:#fbfcfd;stroke:#c9ced6}"
    ".grid{stroke:#e4e7eb}polyline{fill:none;stroke-width:2}"
    "polyline.cache{stroke:#127a3a}polyline.upstream{stroke:#d9730d}"
    ".k{display:inline-block;width:14px;height:3px;vertical-align:middle;margin:0 4px 0 12px}"
    ".k.cache{background:#127a3a}.k.upstream{background:#d9730d}";

/* A sample of the counters the chart draws, at <now>. */
static void sample_now(struct api *api, int64_t now, struct status_sample *s)
{
    struct upstream_stats us;

    upstream_get_stats(api->up, &us);
    s->ss_at = now;
    s->ss_cache = http_file_bytes();
    s->ss_upstream = us.us_bytes;
}

void api_status(struct api *api, struct evhttp_request *req)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b;
    struct upstream_stats us;
    struct fill_stats fs;
    struct status_sample cur;
    int64_t now;
    char *body;
    size_t len;

    CHECK_OBJ_NOTNULL(api, API_MAGIC);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        http_send_error(req, OCI_ERR_METHOD, "only GET and HEAD", NULL);
        return;
    }
    now = api->clock();
    upstream_get_stats(api->up, &us);
    fills_get_stats(api->fills, &fs);
    sample_now(api, now, &cur);
    b = evbuffer_new();
    evbuffer_add_printf(b,
                        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<title>ecr-ptc-proxy status</title><link rel=\"icon\" href=\"data:,\">"
                        "<style>%s</style></head>\n<body>\n<h1>ecr-ptc-proxy status</h1>\n"
                        "<p class=\"note\">version %s &middot; up %" PRId64
                        " s &middot; %zu rules</p>\n",
                        page_css, PACKAGE_VERSION, now - api->started_at, api->cfg->cfg_nrules);
    evbuffer_add_printf(b, "<div class=\"cards\">\n");
    section_traffic(b, api, cur.ss_cache, fs.fs_bytes_sent, us.us_bytes);
    section_egress(b, api, cur.ss_cache);
    section_fills(b, &fs);
    section_disk(b, api);
    evbuffer_add_printf(b, "</div>\n");
    section_upstreams(b, api, now);
    section_top(b, api, now);
    evbuffer_add_printf(b, "<section id=\"chart\"><h2>Last 24 h</h2>\n");
    if (api->status != NULL)
        chart(b, &api->status->ring, &cur, now);
    evbuffer_add_printf(b, "</section>\n</body></html>\n");
    len = evbuffer_get_length(b);
    body = xmalloc(len + 1);
    evbuffer_remove(b, body, len);
    evbuffer_free(b);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    http_send_body(req, 200, "text/html; charset=utf-8", body, len);
    free(body);
}

/* ---- sampling --------------------------------------------------------------------------- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct status *st;
    struct status_sample s;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(st, arg, STATUS_MAGIC);
    sample_now(st->api, st->api->clock(), &s);
    ring_add(&st->ring, &s);
}

void api_status_start(struct api *api)
{
    struct status *st = xcalloc(1, sizeof(*st));
    struct timeval tv = {STATUS_SAMPLE_SECONDS, 0};
    struct status_sample s;

    st->magic = STATUS_MAGIC;
    st->api = api;
    sample_now(api, api->clock(), &s);
    ring_add(&st->ring, &s);
    st->tick = event_new(api->base, -1, EV_PERSIST, tick_cb, st);
    if (st->tick != NULL)
        event_add(st->tick, &tv);
    api->status = st;
}

void api_status_stop(struct api *api)
{
    struct status *st = api->status;

    if (st == NULL)
        return;
    if (st->tick != NULL)
        event_free(st->tick);
    st->magic = 0;
    free(st);
    api->status = NULL;
}
