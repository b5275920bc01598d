/*
 * ecr-ptc-proxy: a pull-through cache for container images.
 *
 * main.c wires the layers together: config, then the server (its loop, not yet listening),
 * then the api on that loop (which opens the catalog, starts the fills and the upstream
 * client, and with an "ecr" block the ECR tier), then the listener. The layers, lowest first
 * (Makefile.am builds one library each, with only its own and lower include paths;
 * tests/e2e/00-layers.sh checks the includes):
 *
 *   base/            util (allocation, strings, clock, checked objects), log
 *   policy/          pure decisions: refresh (the tag rule), rules (which upstream), access
 *                    (which repository may be served which digest), outage, egress, retry
 *   db/              the SQLite index: db_schema (migrations), db_index (queries)
 *   proxy/oci/       names, digests, error codes (oci), the URI grammar (route), manifests
 *   proxy/aws/       SigV4 request signing, the credential chain's parsers, ECR names
 *   proxy/config/    the JSON configuration and its validation
 *   proxy/cache/     the catalog (cache: store + index + hot maps), store, hot
 *   proxy/upstream/  the transport (curl on libevent), the registry client, token auth
 *   proxy/http/      the server, the exchange and its gone protocol, replies, Range
 *   proxy/fill/      one upstream fetch per blob (ECR, then upstream), followers, the commit
 *                    thread
 *   proxy/ecr/       the ECR tier: credential chain, ECR API, data-plane token, push worker
 *   proxy/api/       dispatch, manifests, blobs, tags, referrers, the coalesced fetch, the
 *                    tier's read-through and push hooks (mirror), metrics
 *   proxy/cli/       the admin commands: list, warm, refresh, gc, rewrite (the admin socket)
 *   proxy/main.c     CLI: serve | check-config | the admin commands | --version | --help
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "config_diff.h"
#include "config_file.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define EXIT_USAGE 2
#define EXIT_CONFIG 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ecr-ptc-proxy serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
            "                           [--log-format text|json] [--drain-timeout DURATION]\n"
            "       ecr-ptc-proxy check-config --config FILE\n"
            "       ecr-ptc-proxy list|warm|refresh|gc|rewrite ... (--help for each)\n"
            "       ecr-ptc-proxy --version | --help\n"
            "\n"
            "A pull-through cache for container images (OCI Distribution API).\n"
            "Without --config, serve uses the embedded default: listen %s, data in\n"
            "%s (or $STATE_DIRECTORY), rules ecr-public -> https://public.ecr.aws and\n"
            "docker-hub -> https://registry-1.docker.io (the default, with library/).\n"
            "\n"
            "check-config exits 0 when FILE is valid, else prints one line per problem,\n"
            "each naming its key (rules[1].upstream: ...), and exits 2.\n",
            CONFIG_DEFAULT_LISTEN, CONFIG_DEFAULT_DATA_DIR);
}

/* The config at <path>, or the embedded one; problems printed, NULL returned. */
static struct config *load(const char *path)
{
    struct config *cfg;
    char *errs = NULL;

    if (path == NULL)
        return config_default();
    cfg = config_load_file(path, &errs);
    if (cfg == NULL) {
        config_problems_print(stderr, path, errs);
        free(errs);
    }
    return cfg;
}

/* --listen and --data-dir win over the file, at start and at each reload. */
static void apply_overrides(struct config *cfg, const char *listen, const char *data_dir)
{
    if (listen != NULL) {
        free(cfg->cfg_listen);
        cfg->cfg_listen = xstrdup(listen);
    }
    if (data_dir != NULL) {
        free(cfg->cfg_data_dir);
        cfg->cfg_data_dir = xstrdup(data_dir);
    }
}

/*
 * A SIGHUP reload (docs/internals/reload.md): what serve was started with, and every
 * configuration read since, the one in force last. None is freed before the api and the server
 * are: requests, fills, the server and the ECR tier borrow pointers into the ones they started
 * with. A reload is rare and a configuration a few KiB.
 */
struct reload {
    const char *rl_path; /* --config, or NULL: the embedded default */
    const char *rl_listen, *rl_data_dir;
    struct api *rl_api;
    struct config **rl_cfgs;
    size_t rl_ncfgs;
};

/* One <event> per line of <text>: <key> = "<origin>: LINE" (as check-config prints problems),
 * or LINE alone when <origin> is NULL. */
static void log_lines(enum log_level level, const char *event, const char *key, const char *origin,
                      const char *text)
{
    const char *line = text;

    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        char *msg =
            origin != NULL ? xasprintf("%s: %.*s", origin, n, line) : xasprintf("%.*s", n, line);
        log_event(level, event, key, msg, NULL);
        free(msg);
        line = nl ? nl + 1 : NULL;
    }
}

/* The server's reload callback: read the file again; refuse it whole, or apply it. */
static void reload_cb(void *arg)
{
    struct reload *rl = arg;
    const struct config *running = rl->rl_cfgs[rl->rl_ncfgs - 1];
    struct config *next;
    char *errs = NULL, *restart, *changed;

    if (rl->rl_path == NULL) {
        log_event(LOG_INFO, "config-reload-default", "reason",
                  "serve runs without --config: the embedded default is applied again", NULL);
        next = config_default();
    } else {
        next = config_load_file(rl->rl_path, &errs);
    }
    if (next == NULL) {
        log_lines(LOG_ERROR, "config-reload-failed", "error", rl->rl_path, errs);
        free(errs);
        api_reload_failed(rl->rl_api);
        return;
    }
    apply_overrides(next, rl->rl_listen, rl->rl_data_dir);
    restart = config_diff_restart(running, next);
    log_lines(LOG_WARN, "config-reload-restart-needed", "detail", NULL, restart);
    free(restart);
    config_diff_keep(next, running);
    changed = config_diff_changed(running, next);
    rl->rl_cfgs = xrealloc(rl->rl_cfgs, (rl->rl_ncfgs + 1) * sizeof(*rl->rl_cfgs));
    rl->rl_cfgs[rl->rl_ncfgs++] = next;
    api_reload(rl->rl_api, next);
    {
        char n[32];
        snprintf(n, sizeof(n), "%zu", next->cfg_nrules);
        log_event(LOG_INFO, "config-reloaded", "config",
                  rl->rl_path != NULL ? rl->rl_path : "(embedded default)", "rules", n, "changed",
                  changed[0] != '\0' ? changed : "nothing", NULL);
    }
    free(changed);
}

static int cmd_check_config(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    struct config *cfg;
    int c;

    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "ecr-ptc-proxy check-config: --config FILE is required\n");
        return EXIT_USAGE;
    }
    cfg = load(path);
    if (cfg == NULL)
        return EXIT_CONFIG;
    printf("%s: ok (%zu rule%s)\n", path, cfg->cfg_nrules, cfg->cfg_nrules == 1 ? "" : "s");
    config_free(cfg);
    return 0;
}

/* The admin socket for the CLI (admin_socket, else DATA_DIR/admin.sock). */
static int listen_admin(struct server *srv, const struct config *cfg, struct api *api, char **err)
{
    char *path = config_admin_socket_path(cfg);
    int rc = server_listen_admin(srv, path, api_admin_handle, api, err);

    free(path);
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"log-format", required_argument, NULL, 'f'},
        {"drain-timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *listen = NULL, *data_dir = NULL;
    enum log_format fmt = LOG_FORMAT_TEXT;
    int64_t drain = 10;
    struct config *cfg;
    struct server *srv;
    struct api *api = NULL;
    struct reload rl;
    char *err = NULL;
    char host[256];
    int c, port, rc;

    while ((c = getopt_long(argc, argv, "c:l:d:f:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'f':
            if (log_format_parse(optarg, &fmt) == -1) {
                fprintf(stderr, "--log-format: \"%s\" is not text or json\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (config_parse_duration(optarg, &drain) == -1) {
                fprintf(stderr, "--drain-timeout: \"%s\" is not a duration (e.g. 10s)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ecr-ptc-proxy serve: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (listen != NULL && config_parse_listen(listen, host, sizeof(host), &port) == -1) {
        fprintf(stderr, "--listen: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:5000)\n", listen);
        return EXIT_USAGE;
    }
    log_setup(fmt, LOG_INFO);
    cfg = load(path);
    if (cfg == NULL)
        return EXIT_CONFIG;
    apply_overrides(cfg, listen, data_dir);
    /* The server's loop and front; then the api on that loop (store, index, reconcile);
     * only then the listener, so no client connects before the cache is ready. */
    srv = server_create(cfg, &err);
    if (srv != NULL) {
        api = api_create(server_base(srv), cfg, srv, &err);
        if (api == NULL || server_listen(srv, api_handle, api, &err) == -1 ||
            listen_admin(srv, cfg, api, &err) == -1) {
            api_destroy(api);
            server_destroy(srv);
            srv = NULL;
        }
    }
    if (srv == NULL) {
        log_event(LOG_ERROR, "start-failed", "error", err, NULL);
        free(err);
        config_free(cfg);
        return 1;
    }
    rl.rl_path = path;
    rl.rl_listen = listen;
    rl.rl_data_dir = data_dir;
    rl.rl_api = api;
    rl.rl_cfgs = xmalloc(sizeof(*rl.rl_cfgs));
    rl.rl_cfgs[0] = cfg;
    rl.rl_ncfgs = 1;
    server_on_reload(srv, reload_cb, &rl);
    rc = server_run(srv, drain * 1000000) == 0 ? 0 : 1;
    /* Connections first (their gone callbacks reach the api), then the api, then the loop;
     * every configuration read last (reload_cb's rule). */
    server_close(srv);
    api_destroy(api);
    server_destroy(srv);
    for (size_t i = 0; i < rl.rl_ncfgs; i++)
        config_free(rl.rl_cfgs[i]);
    free(rl.rl_cfgs);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("ecr-ptc-proxy %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "check-config") == 0)
        return cmd_check_config(argc - 1, argv + 1);
    if (cli_is_command(argv[1]))
        return cli_main(argc - 1, argv + 1);
    fprintf(stderr, "ecr-ptc-proxy: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
