/*
 * The admin commands: list, refresh, gc and rewrite here, warm in cli_warm.c. Each finds the
 * admin socket (--admin-socket, else the config's admin_socket or DATA_DIR/admin.sock, from
 * --config or the embedded default), talks JSON over HTTP to it with libcurl, and prints a
 * table, or with --output json one JSON document. A listing is printed page by page as the
 * daemon answers it (a cursor and a bounded limit), never held whole.
 */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli-int.h"
#include "config_file.h"
#include "util.h"

#define CLI_BODY_MAX (16 * 1024 * 1024) /* an admin answer: a page of at most 1000 tags */
#define CLI_PAGE 500

const char *const cli_accept_header = "Accept: application/vnd.oci.image.index.v1+json, "
                                      "application/vnd.docker.distribution.manifest.list.v2+json, "
                                      "application/vnd.oci.image.manifest.v1+json, "
                                      "application/vnd.docker.distribution.manifest.v2+json";

static const char *const commands[] = {"list", "warm", "refresh", "gc", "rewrite"};

/* A string of the daemon's answer for printing: "" when it is absent or not a string. */
static const char *jstr(const json_t *v)
{
    const char *s = json_string_value(v);

    return s != NULL ? s : "";
}

int cli_is_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(name, commands[i]) == 0)
            return 1;
    return 0;
}

static void usage(FILE *out, const char *cmd)
{
    const char *common = "[--config FILE | --admin-socket PATH] [--output text|json]";

    if (cmd == NULL || strcmp(cmd, "list") == 0)
        fprintf(out,
                "usage: ecr-ptc-proxy list [REPO] %s\n"
                "  repositories, or REPO's tags: digest, size, last pulled, fresh until\n",
                common);
    if (cmd == NULL || strcmp(cmd, "warm") == 0)
        fprintf(out,
                "usage: ecr-ptc-proxy warm IMAGE... | --file FILE [--platform os/arch[/variant]] "
                "%s\n"
                "  pre-fetch images through the proxy, every platform unless --platform\n",
                common);
    if (cmd == NULL || strcmp(cmd, "refresh") == 0)
        fprintf(out,
                "usage: ecr-ptc-proxy refresh IMAGE:TAG %s\n"
                "  re-check the tag upstream now\n",
                common);
    if (cmd == NULL || strcmp(cmd, "gc") == 0)
        fprintf(out,
                "usage: ecr-ptc-proxy gc [--dry-run] %s\n"
                "  run the lifecycle rules and the byte budget now\n",
                common);
    if (cmd == NULL || strcmp(cmd, "rewrite") == 0)
        fprintf(out,
                "usage: ecr-ptc-proxy rewrite IMAGE [--proxy HOST[:PORT]] %s\n"
                "  the image's name through the proxy: public.ecr.aws/x/y:1 -> "
                "PROXY/ecr-public/x/y:1\n",
                common);
}

/* ---- the admin socket ---- */

struct body {
    char *b_p;
    size_t b_len, b_cap;
};

static size_t body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;

    if (b->b_len + n + 1 > CLI_BODY_MAX)
        return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
    if (b->b_len + n + 1 > b->b_cap) {
        b->b_cap = (b->b_len + n + 1) * 2;
        b->b_p = xrealloc(b->b_p, b->b_cap);
    }
    memcpy(b->b_p + b->b_len, data, n);
    b->b_len += n;
    b->b_p[b->b_len] = '\0';
    return n;
}

/* Why connecting to <path> fails, in the system's words (curl only says it could not). */
static const char *connect_error(const char *path, char *buf, size_t size)
{
    struct sockaddr_un sa;
    int fd, e = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) == -1)
        return "the path is too long for a socket";
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
        e = errno;
    if (fd != -1)
        close(fd);
    if (e == 0)
        return NULL;
    snprintf(buf, size, "%s (is the daemon running?)", strerror(e));
    return buf;
}

int cli_admin(struct cli *c, const char *method, const char *pathq, json_t **out)
{
    struct body b = {NULL, 0, 0};
    char url[4096], why[256];
    json_error_t jerr;
    json_t *doc = NULL;
    long status = 0;
    CURLcode cc;
    int rc = -1;

    *out = NULL;
    snprintf(url, sizeof(url), "http://localhost%s", pathq);
    curl_easy_reset(c->cl_admin);
    curl_easy_setopt(c->cl_admin, CURLOPT_URL, url);
    curl_easy_setopt(c->cl_admin, CURLOPT_UNIX_SOCKET_PATH, c->cl_sock);
    curl_easy_setopt(c->cl_admin, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(c->cl_admin, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c->cl_admin, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c->cl_admin, CURLOPT_TIMEOUT, 3600L); /* a gc of a large cache */
    curl_easy_setopt(c->cl_admin, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c->cl_admin, CURLOPT_POST, 1L);
        curl_easy_setopt(c->cl_admin, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c->cl_admin, CURLOPT_POSTFIELDSIZE, 0L);
    }
    cc = curl_easy_perform(c->cl_admin);
    if (cc == CURLE_COULDNT_CONNECT) {
        const char *e = connect_error(c->cl_sock, why, sizeof(why));
        fprintf(stderr, "ecr-ptc-proxy %s: cannot reach the admin socket %s: %s\n", c->cl_cmd,
                c->cl_sock, e != NULL ? e : curl_easy_strerror(cc));
        goto out;
    }
    if (cc != CURLE_OK) {
        fprintf(stderr, "ecr-ptc-proxy %s: the admin socket %s: %s\n", c->cl_cmd, c->cl_sock,
                curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c->cl_admin, CURLINFO_RESPONSE_CODE, &status);
    doc = b.b_p != NULL ? json_loadb(b.b_p, b.b_len, 0, &jerr) : NULL;
    if (status < 200 || status > 299) {
        const char *e = json_string_value(json_object_get(doc, "error"));
        fprintf(stderr, "ecr-ptc-proxy %s: %s\n", c->cl_cmd,
                e != NULL ? e : "the daemon refused the request");
        goto out;
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "ecr-ptc-proxy %s: the daemon's answer is not JSON\n", c->cl_cmd);
        goto out;
    }
    *out = doc;
    doc = NULL;
    rc = 0;
out:
    json_decref(doc);
    free(b.b_p);
    return rc;
}

char *cli_escape(struct cli *c, const char *s)
{
    char *e = curl_easy_escape(c->cl_admin, s, 0);
    char *r = xstrdup(e != NULL ? e : "");

    curl_free(e);
    return r;
}

int cli_proxy_base(struct cli *c)
{
    json_t *info;
    const char *host;
    int port;

    if (cli_admin(c, "GET", "/admin/v1/info", &info) == -1)
        return -1;
    host = json_string_value(json_object_get(info, "host"));
    port = (int)json_integer_value(json_object_get(info, "port"));
    if (host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    snprintf(c->cl_proxy_base, sizeof(c->cl_proxy_base), "http://%s%s%s:%d",
             strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
    json_decref(info);
    return 0;
}

void cli_bytes(int64_t n, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;

    if (n < 1024) {
        snprintf(buf, size, "%lld B", (long long)n);
        return;
    }
    v /= 1024.0;
    while (v >= 1024.0 && u + 1 < ARRAY_LEN(units)) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* "2025-12-01 10:00Z", or "never" for 0. */
static void when(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, size, "never");
        return;
    }
    strftime(buf, size, "%Y-%m-%d %H:%MZ", &tm);
}

/* Print <v> (a JSON element of a streamed array) after a comma when not <first>. */
static void json_element(json_t *v, int first)
{
    char *s = json_dumps(v, JSON_COMPACT);

    printf("%s%s", first ? "\n" : ",\n", s != NULL ? s : "null");
    free(s);
}

/* ---- list ---- */

static int list_repositories(struct cli *c)
{
    char pathq[256];
    json_int_t after = 0;
    int first = 1;

    if (c->cl_json)
        printf("[");
    else
        printf("%-60s %6s\n", "REPOSITORY", "TAGS");
    for (;;) {
        json_t *page, *list, *v, *next;
        size_t i;

        snprintf(pathq, sizeof(pathq), "/admin/v1/repositories?after=%lld&limit=%d",
                 (long long)after, CLI_PAGE);
        if (cli_admin(c, "GET", pathq, &page) == -1)
            return CLI_EXIT_FAIL;
        list = json_object_get(page, "repositories");
        json_array_foreach(list, i, v)
        {
            if (c->cl_json)
                json_element(v, first);
            else
                printf("%-60s %6lld\n", json_string_value(json_object_get(v, "path")),
                       (long long)json_integer_value(json_object_get(v, "tags")));
            first = 0;
        }
        next = json_object_get(page, "next");
        after = json_integer_value(next);
        json_decref(page);
        fflush(stdout);
        if (!json_is_integer(next))
            break;
    }
    if (c->cl_json)
        printf("%s]\n", first ? "" : "\n");
    return CLI_EXIT_OK;
}

static int list_tags(struct cli *c, const char *repo)
{
    char *erepo = cli_escape(c, repo), *eafter = NULL;
    char pathq[1024];
    int first = 1, partial = 0, rc = CLI_EXIT_FAIL;

    for (;;) {
        json_t *page, *list, *v, *next;
        size_t i;

        snprintf(pathq, sizeof(pathq), "/admin/v1/tags?repo=%s&limit=%d%s%s", erepo, CLI_PAGE,
                 eafter != NULL ? "&after=" : "", eafter != NULL ? eafter : "");
        if (cli_admin(c, "GET", pathq, &page) == -1)
            goto out;
        if (first && c->cl_json)
            printf("[");
        else if (first)
            printf("%s\n%-28s %-19s %11s  %-17s  %-17s\n", jstr(json_object_get(page, "path")),
                   "TAG", "DIGEST", "SIZE", "LAST PULLED", "FRESH UNTIL");
        list = json_object_get(page, "tags");
        json_array_foreach(list, i, v)
        {
            if (c->cl_json) {
                json_element(v, first);
            } else {
                char size[32], pulled[32], fresh[32], digest[20];
                int complete = json_is_true(json_object_get(v, "complete"));
                cli_bytes(json_integer_value(json_object_get(v, "bytes")), size, sizeof(size));
                when(json_integer_value(json_object_get(v, "last_pulled_at")), pulled,
                     sizeof(pulled));
                when(json_integer_value(json_object_get(v, "fresh_until")), fresh, sizeof(fresh));
                snprintf(digest, sizeof(digest), "%s", jstr(json_object_get(v, "digest")));
                printf("%-28s %-19s %10s%s  %-17s  %-17s\n", jstr(json_object_get(v, "tag")),
                       digest, size, complete ? " " : "*", pulled, fresh);
                partial |= !complete;
            }
            first = 0;
        }
        next = json_object_get(page, "next");
        free(eafter);
        eafter = json_is_string(next) ? cli_escape(c, json_string_value(next)) : NULL;
        json_decref(page);
        fflush(stdout);
        if (eafter == NULL)
            break;
    }
    if (c->cl_json)
        printf("%s]\n", first ? "" : "\n");
    else if (partial)
        printf("* some layers are not cached yet: the size counts what is\n");
    rc = CLI_EXIT_OK;
out:
    free(eafter);
    free(erepo);
    return rc;
}

/* ---- rewrite ---- */

/* GET /admin/v1/rewrite for <image>: the daemon's answer (caller decrefs), or NULL told. */
static json_t *rewrite_of(struct cli *c, const char *image)
{
    char *e = cli_escape(c, image);
    char pathq[2048];
    json_t *doc = NULL;

    snprintf(pathq, sizeof(pathq), "/admin/v1/rewrite?image=%s", e);
    free(e);
    if (cli_admin(c, "GET", pathq, &doc) == -1)
        return NULL;
    return doc;
}

static int cmd_rewrite(struct cli *c, const char *image, const char *proxy)
{
    json_t *doc = rewrite_of(c, image);
    char host[300], out[2048];

    if (doc == NULL)
        return CLI_EXIT_FAIL;
    if (proxy != NULL) {
        snprintf(host, sizeof(host), "%s", proxy);
    } else {
        json_t *info;
        const char *h;
        if (cli_admin(c, "GET", "/admin/v1/info", &info) == -1) {
            json_decref(doc);
            return CLI_EXIT_FAIL;
        }
        h = json_string_value(json_object_get(info, "host"));
        if (h == NULL || h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0) {
            if (gethostname(host, sizeof(host) - 8) == -1)
                snprintf(host, sizeof(host), "PROXY");
            host[sizeof(host) - 8] = '\0';
            h = NULL;
        }
        if (h != NULL)
            snprintf(host, sizeof(host), "%s%s%s", strchr(h, ':') ? "[" : "", h,
                     strchr(h, ':') ? "]" : "");
        snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%lld",
                 (long long)json_integer_value(json_object_get(info, "port")));
        json_decref(info);
    }
    snprintf(out, sizeof(out), "%s/%s%s%s", host, jstr(json_object_get(doc, "proxy_path")),
             json_is_true(json_object_get(doc, "by_digest")) ? "@" : ":",
             jstr(json_object_get(doc, "reference")));
    if (c->cl_json) {
        char *s;
        json_object_set_new(doc, "rewritten", json_string(out));
        s = json_dumps(doc, JSON_INDENT(2));
        printf("%s\n", s != NULL ? s : "null");
        free(s);
    } else {
        printf("%s\n", out);
    }
    json_decref(doc);
    return CLI_EXIT_OK;
}

/* ---- refresh ---- */

void cli_digest_header(const char *data, size_t n, char *out, size_t size)
{
    static const char name[] = "docker-content-digest:";

    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vl = n - (sizeof(name) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < size) {
            memcpy(out, v, vl);
            out[vl] = '\0';
        }
    }
}

/* The Docker-Content-Digest header into <arg> (a 160-byte buffer). */
static size_t digest_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    cli_digest_header(data, size * nmemb, arg, 160);
    return size * nmemb;
}

static int cmd_refresh(struct cli *c, const char *image)
{
    json_t *doc = NULL;
    char *e = cli_escape(c, image);
    char pathq[2048], url[2048], digest[160] = "";
    const char *old, *path, *tag;
    struct curl_slist *hdrs = NULL;
    long status = 0;
    CURLcode cc;
    int rc = CLI_EXIT_FAIL;

    snprintf(pathq, sizeof(pathq), "/admin/v1/refresh?image=%s", e);
    free(e);
    if (cli_proxy_base(c) == -1 || cli_admin(c, "POST", pathq, &doc) == -1)
        goto out;
    old = json_string_value(json_object_get(doc, "old_digest"));
    path = json_string_value(json_object_get(doc, "proxy_path"));
    tag = json_string_value(json_object_get(doc, "tag"));
    /* The pull a client would make: the daemon checks upstream with one HEAD. */
    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", c->cl_proxy_base, path, tag);
    hdrs = curl_slist_append(hdrs, cli_accept_header);
    curl_easy_setopt(c->cl_proxy, CURLOPT_URL, url);
    curl_easy_setopt(c->cl_proxy, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HEADERFUNCTION, digest_header_cb);
    curl_easy_setopt(c->cl_proxy, CURLOPT_HEADERDATA, digest);
    curl_easy_setopt(c->cl_proxy, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c->cl_proxy, CURLOPT_NOSIGNAL, 1L);
    cc = curl_easy_perform(c->cl_proxy);
    if (cc != CURLE_OK) {
        fprintf(stderr, "ecr-ptc-proxy refresh: %s: %s\n", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c->cl_proxy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || digest[0] == '\0') {
        fprintf(stderr, "ecr-ptc-proxy refresh: %s:%s: the proxy answered %ld\n", path, tag,
                status);
        goto out;
    }
    if (c->cl_json) {
        json_t *r =
            json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "image", image, "proxy_path", path, "tag",
                      tag, "old_digest", old != NULL ? json_string(old) : json_null(), "new_digest",
                      digest, "changed", old == NULL || strcmp(old, digest) != 0);
        char *s = json_dumps(r, JSON_INDENT(2));
        printf("%s\n", s != NULL ? s : "null");
        free(s);
        json_decref(r);
    } else if (old == NULL) {
        printf("%s:%s: not cached before -> %s\n", path, tag, digest);
    } else if (strcmp(old, digest) == 0) {
        printf("%s:%s: unchanged %s\n", path, tag, digest);
    } else {
        printf("%s:%s: %s -> %s\n", path, tag, old, digest);
    }
    rc = CLI_EXIT_OK;
out:
    curl_slist_free_all(hdrs);
    json_decref(doc);
    return rc;
}

/* ---- gc ---- */

static int cmd_gc(struct cli *c, int dry_run)
{
    json_t *doc, *images, *v;
    char freed[32], before[32], after[32];
    size_t i;

    if (cli_admin(c, "POST", dry_run ? "/admin/v1/gc?dry_run=1" : "/admin/v1/gc?dry_run=0", &doc) ==
        -1)
        return CLI_EXIT_FAIL;
    if (c->cl_json) {
        char *s = json_dumps(doc, JSON_INDENT(2));
        printf("%s\n", s != NULL ? s : "null");
        free(s);
        json_decref(doc);
        return CLI_EXIT_OK;
    }
    images = json_object_get(doc, "images");
    json_array_foreach(images, i, v)
    {
        char bytes[32], tags[1024] = "";
        json_t *t;
        size_t j, off = 0;
        json_int_t prio = json_integer_value(json_object_get(v, "rule_priority"));

        json_array_foreach(json_object_get(v, "tags"), j, t)
        {
            int n = snprintf(tags + off, sizeof(tags) - off, "%s%s", off ? "," : "", jstr(t));
            if (n < 0 || (size_t)n >= sizeof(tags) - off)
                break;
            off += (size_t)n;
        }
        cli_bytes(json_integer_value(json_object_get(v, "bytes")), bytes, sizeof(bytes));
        printf("%s %s/%s@%s%s%s%s  %s  (", dry_run ? "would remove" : "removed",
               jstr(json_object_get(v, "rule")), jstr(json_object_get(v, "name")),
               jstr(json_object_get(v, "digest")), off ? " [" : "", tags, off ? "]" : "", bytes);
        if (prio > 0)
            printf("lifecycle rule %lld)\n", (long long)prio);
        else
            printf("byte budget)\n");
    }
    cli_bytes(json_integer_value(json_object_get(doc, "freed")), freed, sizeof(freed));
    cli_bytes(json_integer_value(json_object_get(doc, "used_before")), before, sizeof(before));
    cli_bytes(json_integer_value(json_object_get(doc, "used_after")), after, sizeof(after));
    printf("%s %s in %zu image%s, %lld file%s; used %s -> %s\n", dry_run ? "would free" : "freed",
           freed, json_array_size(images), json_array_size(images) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(doc, "files")),
           json_integer_value(json_object_get(doc, "files")) == 1 ? "" : "s", before, after);
    json_decref(doc);
    return CLI_EXIT_OK;
}

/* ---- dispatch ---- */

/* The admin socket: --admin-socket, else from the config (--config, or the embedded one). */
static char *socket_path(const char *config, const char *sock)
{
    struct config *cfg;
    char *errs = NULL, *p;

    if (sock != NULL)
        return xstrdup(sock);
    cfg = config != NULL ? config_load_file(config, &errs) : config_default();
    if (cfg == NULL) {
        config_problems_print(stderr, config, errs);
        free(errs);
        return NULL;
    }
    p = config_admin_socket_path(cfg);
    config_free(cfg);
    return p;
}

int cli_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"admin-socket", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"file", required_argument, NULL, 'f'},
        {"platform", required_argument, NULL, 'p'},
        {"dry-run", no_argument, NULL, 'n'},
        {"proxy", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    struct cli_warm_opts wo = {NULL, NULL};
    const char *config = NULL, *sock = NULL, *proxy = NULL;
    const char *cmd = argv[0];
    int opt, dry_run = 0, rc = CLI_EXIT_USAGE, nargs;

    memset(&c, 0, sizeof(c));
    c.cl_cmd = cmd;
    while ((opt = getopt_long(argc, argv, "c:s:o:f:p:nP:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'o':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0) {
                fprintf(stderr, "ecr-ptc-proxy %s: --output: \"%s\" is not text or json\n", cmd,
                        optarg);
                return CLI_EXIT_USAGE;
            }
            c.cl_json = strcmp(optarg, "json") == 0;
            break;
        case 'f': wo.cw_file = optarg; break;
        case 'p': wo.cw_platform = optarg; break;
        case 'n': dry_run = 1; break;
        case 'P': proxy = optarg; break;
        case 'h': usage(stdout, cmd); return CLI_EXIT_OK;
        default: usage(stderr, cmd); return CLI_EXIT_USAGE;
        }
    }
    nargs = argc - optind;
    /* Options only some commands take, and the number of arguments each wants. */
    if ((wo.cw_file != NULL || wo.cw_platform != NULL) && strcmp(cmd, "warm") != 0) {
        fprintf(stderr, "ecr-ptc-proxy %s: --file and --platform are warm's\n", cmd);
        goto usage;
    }
    if (dry_run && strcmp(cmd, "gc") != 0) {
        fprintf(stderr, "ecr-ptc-proxy %s: --dry-run is gc's\n", cmd);
        goto usage;
    }
    if (proxy != NULL && strcmp(cmd, "rewrite") != 0) {
        fprintf(stderr, "ecr-ptc-proxy %s: --proxy is rewrite's\n", cmd);
        goto usage;
    }
    if (wo.cw_platform != NULL) {
        const char *s1 = strchr(wo.cw_platform, '/');
        if (s1 == NULL || s1 == wo.cw_platform || s1[1] == '\0' || s1[1] == '/') {
            fprintf(stderr, "ecr-ptc-proxy warm: --platform: \"%s\" is not os/arch[/variant]\n",
                    wo.cw_platform);
            goto usage;
        }
    }
    if ((strcmp(cmd, "list") == 0 && nargs > 1) || (strcmp(cmd, "gc") == 0 && nargs != 0) ||
        ((strcmp(cmd, "refresh") == 0 || strcmp(cmd, "rewrite") == 0) && nargs != 1) ||
        (strcmp(cmd, "warm") == 0 && (nargs == 0) == (wo.cw_file == NULL))) {
        fprintf(stderr, "ecr-ptc-proxy %s: wrong arguments\n", cmd);
        goto usage;
    }
    if (config != NULL && sock != NULL) {
        fprintf(stderr, "ecr-ptc-proxy %s: --config or --admin-socket, not both\n", cmd);
        goto usage;
    }
    c.cl_sock = socket_path(config, sock);
    if (c.cl_sock == NULL)
        return CLI_EXIT_USAGE;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.cl_admin = curl_easy_init();
    c.cl_proxy = curl_easy_init();
    if (c.cl_admin == NULL || c.cl_proxy == NULL) {
        fprintf(stderr, "ecr-ptc-proxy %s: cannot start libcurl\n", cmd);
        rc = CLI_EXIT_FAIL;
    } else if (strcmp(cmd, "list") == 0) {
        rc = nargs == 0 ? list_repositories(&c) : list_tags(&c, argv[optind]);
    } else if (strcmp(cmd, "rewrite") == 0) {
        rc = cmd_rewrite(&c, argv[optind], proxy);
    } else if (strcmp(cmd, "refresh") == 0) {
        rc = cmd_refresh(&c, argv[optind]);
    } else if (strcmp(cmd, "gc") == 0) {
        rc = cmd_gc(&c, dry_run);
    } else {
        rc = cli_warm(&c, &wo, nargs, argv + optind);
    }
    curl_easy_cleanup(c.cl_admin);
    curl_easy_cleanup(c.cl_proxy);
    curl_global_cleanup();
    free(c.cl_sock);
    return rc;
usage:
    usage(stderr, cmd);
    return CLI_EXIT_USAGE;
}
