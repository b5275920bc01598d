/*
 * warm: pre-fetch images through the daemon, as a pull would. Each IMAGE is resolved by the
 * rules (the admin socket's rewrite), its manifest fetched from the daemon's HTTP listener
 * with an Accept of every manifest type; for an index each child manifest (every platform,
 * or only --platform's), then each distinct config and layer blob, read and discarded. Every
 * digest is fetched once per run; the daemon's fills store them (one upstream fetch per
 * digest). Progress (bytes, blobs done/total, rate) on one updating line when stderr is a
 * terminal, nothing in a pipe; a summary line (or JSON) at the end.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli-int.h"
#include "util.h"

#define WARM_MANIFEST_MAX (4 * 1024 * 1024)
#define WARM_LINE_MAX 4096
#define WARM_DRAW_USEC 200000

struct blob {
    char *bl_digest;
    int64_t bl_size; /* from the descriptor */
};

/* A run's state: the distinct digests seen, the progress line. */
struct warm {
    struct cli *w_cli;
    const struct cli_warm_opts *w_o;
    char **w_seen; /* manifest and blob digests already fetched in this run */
    size_t w_nseen, w_capseen;
    int w_tty;
    int64_t w_start_usec, w_drawn_usec;
    int64_t w_bytes;     /* blob bytes read so far, the current blob's included */
    int64_t w_blob_base; /* w_bytes when the current blob began */
    size_t w_blobs, w_blobs_total, w_manifests;
    const char *w_image;
};

static int seen(struct warm *w, const char *digest)
{
    for (size_t i = 0; i < w->w_nseen; i++)
        if (strcmp(w->w_seen[i], digest) == 0)
            return 1;
    if (w->w_nseen == w->w_capseen) {
        w->w_capseen = w->w_capseen ? w->w_capseen * 2 : 64;
        w->w_seen = xrealloc(w->w_seen, w->w_capseen * sizeof(*w->w_seen));
    }
    w->w_seen[w->w_nseen++] = xstrdup(digest);
    return 0;
}

static void draw(struct warm *w, int force)
{
    int64_t now = util_mono_usec();
    double secs;
    char bytes[32], rate[32];

    if (!w->w_tty || (!force && now - w->w_drawn_usec < WARM_DRAW_USEC))
        return;
    w->w_drawn_usec = now;
    secs = (double)(now - w->w_start_usec) / 1e6;
    cli_bytes(w->w_bytes, bytes, sizeof(bytes));
    cli_bytes(secs > 0.05 ? (int64_t)((double)w->w_bytes / secs) : 0, rate, sizeof(rate));
    fprintf(stderr, "\r\033[K%s: %zu/%zu layers, %s, %s/s", w->w_image, w->w_blobs,
            w->w_blobs_total, bytes, rate);
    fflush(stderr);
}

/* ---- transfers ---- */

struct mbuf {
    char *mb_p;
    size_t mb_len, mb_cap;
    char mb_digest[160];
};

static size_t mbuf_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mbuf *b = arg;
    size_t n = size * nmemb;

    if (b->mb_len + n + 1 > WARM_MANIFEST_MAX)
        return 0;
    if (b->mb_len + n + 1 > b->mb_cap) {
        b->mb_cap = (b->mb_len + n + 1) * 2;
        b->mb_p = xrealloc(b->mb_p, b->mb_cap);
    }
    memcpy(b->mb_p + b->mb_len, data, n);
    b->mb_len += n;
    b->mb_p[b->mb_len] = '\0';
    return n;
}

static size_t mbuf_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mbuf *b = arg;

    cli_digest_header(data, size * nmemb, b->mb_digest, sizeof(b->mb_digest));
    return size * nmemb;
}

/* GET manifest <ref> of <path> through the proxy: its JSON (caller decrefs) and digest into
 * <digest> (160 bytes), or NULL with the reason on stderr. */
static json_t *get_manifest(struct warm *w, const char *path, const char *ref, char *digest)
{
    struct cli *c = w->w_cli;
    struct mbuf b;
    struct curl_slist *hdrs = curl_slist_append(NULL, cli_accept_header);
    char url[2048];
    json_error_t jerr;
    json_t *doc = NULL;
    long status = 0;
    CURLcode cc;

    memset(&b, 0, sizeof(b));
    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", c->cl_proxy_base, path, ref);
    curl_easy_reset(c->cl_proxy);
    curl_easy_setopt(c->cl_proxy, CURLOPT_URL, url);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->cl_proxy, CURLOPT_WRITEFUNCTION, mbuf_cb);
    curl_easy_setopt(c->cl_proxy, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HEADERFUNCTION, mbuf_header_cb);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HEADERDATA, &b);
    curl_easy_setopt(c->cl_proxy, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(c->cl_proxy);
    curl_slist_free_all(hdrs);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c->cl_proxy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK || status != 200) {
        if (w->w_tty)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "ecr-ptc-proxy warm: %s: manifest %s: %s\n", w->w_image, ref,
                cc != CURLE_OK ? curl_easy_strerror(cc) : "the proxy refused it");
        if (cc == CURLE_OK && b.mb_p != NULL)
            fprintf(stderr, "  %.300s\n", b.mb_p);
        goto out;
    }
    doc = b.mb_p != NULL ? json_loadb(b.mb_p, b.mb_len, 0, &jerr) : NULL;
    if (!json_is_object(doc)) {
        fprintf(stderr, "ecr-ptc-proxy warm: %s: manifest %s is not JSON\n", w->w_image, ref);
        json_decref(doc);
        doc = NULL;
        goto out;
    }
    (void)str_copy(digest, 160, b.mb_digest[0] ? b.mb_digest : ref);
    w->w_manifests++;
out:
    free(b.mb_p);
    return doc;
}

static size_t discard_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct warm *w = arg;

    (void)data;
    w->w_bytes += (int64_t)(size * nmemb);
    draw(w, 0);
    return size * nmemb;
}

/* GET blob <digest> of <path> through the proxy, the body counted and dropped. 0 or -1. */
static int get_blob(struct warm *w, const char *path, const char *digest)
{
    struct cli *c = w->w_cli;
    char url[2048];
    long status = 0;
    CURLcode cc;

    snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", c->cl_proxy_base, path, digest);
    curl_easy_reset(c->cl_proxy);
    curl_easy_setopt(c->cl_proxy, CURLOPT_URL, url);
    curl_easy_setopt(c->cl_proxy, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(c->cl_proxy, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c->cl_proxy, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_NOSIGNAL, 1L);
    w->w_blob_base = w->w_bytes;
    cc = curl_easy_perform(c->cl_proxy);
    curl_easy_getinfo(c->cl_proxy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        if (w->w_tty)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "ecr-ptc-proxy warm: %s: blob %s: %s\n", w->w_image, digest,
                curl_easy_strerror(cc));
        w->w_bytes = w->w_blob_base;
        return -1;
    }
    return 0;
}

/* ---- one image ---- */

/* 1 when the index entry <m>'s platform is --platform's (always without --platform). */
static int platform_wanted(const struct warm *w, json_t *m)
{
    json_t *p = json_object_get(m, "platform");
    const char *want = w->w_o->cw_platform, *os, *arch, *variant;
    char have[256];

    if (want == NULL)
        return 1;
    os = json_string_value(json_object_get(p, "os"));
    arch = json_string_value(json_object_get(p, "architecture"));
    variant = json_string_value(json_object_get(p, "variant"));
    if (os == NULL || arch == NULL)
        return 0;
    snprintf(have, sizeof(have), "%s/%s", os, arch);
    if (strcmp(want, have) == 0)
        return 1;
    if (variant == NULL)
        return 0;
    snprintf(have, sizeof(have), "%s/%s/%s", os, arch, variant);
    return strcmp(want, have) == 0;
}

/* Append <m>'s config and layers to <blobs> (a JSON array of {digest,size}). */
static void add_blobs(json_t *blobs, json_t *m)
{
    json_t *cfg = json_object_get(m, "config"), *layers = json_object_get(m, "layers"), *l;
    size_t i;

    if (json_is_string(json_object_get(cfg, "digest")))
        json_array_append(blobs, cfg);
    json_array_foreach(layers, i, l) if (json_is_string(json_object_get(l, "digest")))
        json_array_append(blobs, l);
}

/* Warm <image>: its summary object for the JSON output (caller decrefs), "error" set when
 * something failed. */
static json_t *warm_image(struct warm *w, const char *image)
{
    struct cli *c = w->w_cli;
    char *e = cli_escape(c, image), pathq[2048], digest[160];
    json_t *rw = NULL, *top = NULL, *blobs = json_array(), *platforms = json_array(), *b;
    json_t *res = json_pack("{s:s}", "image", image);
    const char *path, *ref, *mt;
    size_t i, manifests0 = w->w_manifests, blobs0 = w->w_blobs, nblobs = 0;
    int64_t bytes0 = w->w_bytes;
    int failed = 0;

    w->w_image = image;
    snprintf(pathq, sizeof(pathq), "/admin/v1/rewrite?image=%s", e);
    free(e);
    if (cli_admin(c, "GET", pathq, &rw) == -1) {
        failed = 1;
        goto out;
    }
    path = json_string_value(json_object_get(rw, "proxy_path"));
    ref = json_string_value(json_object_get(rw, "reference"));
    json_object_set(res, "proxy_path", json_object_get(rw, "proxy_path"));
    json_object_set(res, "reference", json_object_get(rw, "reference"));
    top = get_manifest(w, path, ref, digest);
    if (top == NULL) {
        failed = 1;
        goto out;
    }
    json_object_set_new(res, "digest", json_string(digest));
    (void)seen(w, digest);
    mt = json_string_value(json_object_get(top, "mediaType"));
    if (json_is_array(json_object_get(top, "manifests")) &&
        (mt == NULL || strstr(mt, "index") != NULL || strstr(mt, "list") != NULL)) {
        json_t *m;
        json_array_foreach(json_object_get(top, "manifests"), i, m)
        {
            const char *cd = json_string_value(json_object_get(m, "digest"));
            json_t *child, *p = json_object_get(m, "platform");
            char cdig[160];

            if (cd == NULL || !platform_wanted(w, m))
                continue;
            if (p != NULL)
                json_array_append_new(
                    platforms,
                    json_sprintf("%s/%s%s%s", json_string_value(json_object_get(p, "os")),
                                 json_string_value(json_object_get(p, "architecture")),
                                 json_object_get(p, "variant") ? "/" : "",
                                 json_object_get(p, "variant")
                                     ? json_string_value(json_object_get(p, "variant"))
                                     : ""));
            if (seen(w, cd))
                continue;
            child = get_manifest(w, path, cd, cdig);
            if (child == NULL) {
                failed = 1;
                continue;
            }
            add_blobs(blobs, child);
            json_decref(child);
        }
        if (w->w_o->cw_platform != NULL && json_array_size(platforms) == 0) {
            fprintf(stderr, "ecr-ptc-proxy warm: %s: no platform %s in its index\n", image,
                    w->w_o->cw_platform);
            failed = 1;
        }
    } else {
        add_blobs(blobs, top);
    }
    /* Count what is new to this run first, so the progress line knows the total. */
    json_array_foreach(blobs, i, b)
    {
        const char *d = json_string_value(json_object_get(b, "digest"));
        if (seen(w, d)) {
            json_array_remove(blobs, i);
            i--;
            continue;
        }
        nblobs++;
    }
    w->w_blobs_total += nblobs;
    draw(w, 1);
    json_array_foreach(blobs, i, b)
    {
        if (get_blob(w, path, json_string_value(json_object_get(b, "digest"))) == -1)
            failed = 1;
        else
            w->w_blobs++;
        draw(w, 1);
    }
out:
    json_object_set_new(res, "platforms", platforms);
    json_object_set_new(res, "manifests", json_integer((json_int_t)(w->w_manifests - manifests0)));
    json_object_set_new(res, "blobs", json_integer((json_int_t)(w->w_blobs - blobs0)));
    json_object_set_new(res, "bytes", json_integer((json_int_t)(w->w_bytes - bytes0)));
    json_object_set_new(res, "ok", json_boolean(!failed));
    json_decref(blobs);
    json_decref(top);
    json_decref(rw);
    return res;
}

/* ---- the command ---- */

/* The images of --file <path>: one a line, '#' comments and blank lines skipped. */
static int read_list(const char *path, char ***out, size_t *n)
{
    FILE *f = fopen(path, "r");
    char line[WARM_LINE_MAX];
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (f == NULL) {
        fprintf(stderr, "ecr-ptc-proxy warm: --file %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = line, *end, *hash = strchr(line, '#');

        if (hash != NULL)
            *hash = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        end = s + strlen(s);
        while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*s == '\0')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[(*n)++] = xstrdup(s);
    }
    fclose(f);
    return 0;
}

int cli_warm(struct cli *c, const struct cli_warm_opts *o, int argc, char **argv)
{
    struct warm w;
    char **list = NULL, bytes[32];
    size_t n = 0, failed = 0;
    json_t *results = json_array();
    double secs;
    int rc = CLI_EXIT_FAIL;

    memset(&w, 0, sizeof(w));
    w.w_cli = c;
    w.w_o = o;
    w.w_tty = isatty(STDERR_FILENO);
    w.w_start_usec = util_mono_usec();
    if (o->cw_file != NULL && read_list(o->cw_file, &list, &n) == -1) {
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (cli_proxy_base(c) == -1)
        goto out;
    for (size_t i = 0; i < (o->cw_file != NULL ? n : (size_t)argc); i++) {
        json_t *r = warm_image(&w, o->cw_file != NULL ? list[i] : argv[i]);

        if (!json_is_true(json_object_get(r, "ok")))
            failed++;
        json_array_append_new(results, r);
    }
    if (w.w_tty)
        fprintf(stderr, "\r\033[K");
    secs = (double)(util_mono_usec() - w.w_start_usec) / 1e6;
    cli_bytes(w.w_bytes, bytes, sizeof(bytes));
    if (c->cl_json) {
        json_t *doc =
            json_pack("{s:o, s:I, s:I, s:I, s:I, s:f}", "images", results, "manifests",
                      (json_int_t)w.w_manifests, "blobs", (json_int_t)w.w_blobs, "bytes",
                      (json_int_t)w.w_bytes, "failed", (json_int_t)failed, "seconds", secs);
        char *s = json_dumps(doc, JSON_INDENT(2));
        printf("%s\n", s != NULL ? s : "null");
        free(s);
        json_decref(doc);
        results = NULL;
    } else {
        printf("warmed %zu image%s: %zu manifest%s, %zu blob%s, %s in %.1f s%s\n",
               json_array_size(results) - failed, json_array_size(results) - failed == 1 ? "" : "s",
               w.w_manifests, w.w_manifests == 1 ? "" : "s", w.w_blobs, w.w_blobs == 1 ? "" : "s",
               bytes, secs, failed ? "; some failed (above)" : "");
    }
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    json_decref(results);
    for (size_t i = 0; i < w.w_nseen; i++)
        free(w.w_seen[i]);
    free(w.w_seen);
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}
