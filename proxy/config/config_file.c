/* Loads and validates the JSON configuration; every problem becomes one line naming its key. */
#include "config.h"

#include "config_file.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-int.h"
#include "oci.h"
#include "policy_lifecycle.h"
#include "util.h"

#define CONFIG_MAX_BYTES (1 << 20)
#define SECRET_MAX_BYTES 4096
#define ADMIN_SOCKET_MAX 107 /* sun_path's 108 bytes less the NUL */

void config_problem(struct problems *p, const char *fmt, ...)
{
    va_list ap;
    char *line = NULL;
    size_t n;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) == -1)
        abort();
    va_end(ap);
    n = strlen(line);
    p->buf = xrealloc(p->buf, p->len + n + 2);
    memcpy(p->buf + p->len, line, n);
    p->len += n;
    p->buf[p->len++] = '\n';
    p->buf[p->len] = '\0';
    p->count++;
    free(line);
}

int config_parse_duration(const char *s, int64_t *out)
{
    int64_t v = 0, mult;
    size_t i = 0, n = strlen(s);

    if (n < 2)
        return -1;
    for (; i < n - 1; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    switch (s[n - 1]) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    default: return -1;
    }
    if (v > INT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int config_parse_size(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"B", 1},
        {"KiB", (int64_t)1 << 10},
        {"MiB", (int64_t)1 << 20},
        {"GiB", (int64_t)1 << 30},
        {"TiB", (int64_t)1 << 40},
        {"KB", 1000},
        {"MB", 1000000},
        {"GB", 1000000000},
        {"TB", 1000000000000LL},
    };
    int64_t v = 0;
    size_t i = 0;

    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    for (size_t u = 0; u < ARRAY_LEN(units); u++) {
        if (strcmp(s + i, units[u].unit) == 0) {
            if (v > INT64_MAX / units[u].mult)
                return -1;
            *out = v * units[u].mult;
            return 0;
        }
    }
    return -1;
}

/*
 * A port: 1 to 5 decimal digits worth 1..65535, nothing else (no sign, no space). Digits are
 * checked before any arithmetic, so no input can overflow. Sets *end past the digits.
 */
static int parse_port(const char *s, const char **end, int *out)
{
    int v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (++n > 5)
            return -1;
        v = v * 10 + (s[n - 1] - '0');
    }
    if (n == 0 || v < 1 || v > 65535)
        return -1;
    *end = s + n;
    *out = v;
    return 0;
}

int config_parse_listen(const char *s, char *host, size_t hostsize, int *port)
{
    const char *colon, *end;
    size_t hlen;
    int p;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return -1; /* a bare IPv6 address needs brackets */
    }
    if (hlen == 0 || hlen >= hostsize)
        return -1;
    if (parse_port(colon + 1, &end, &p) == -1 || *end != '\0')
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    *port = p;
    return 0;
}

int config_url_valid(const char *u, const char **why)
{
    const char *host, *p;
    size_t hostlen;

    if (strncmp(u, "https://", 8) == 0)
        host = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        host = u + 7;
    else {
        *why = "not a URL (want http:// or https:// followed by a host)";
        return 0;
    }
    p = host;
    if (*p == '[') {
        p = strchr(p, ']');
        if (p == NULL) {
            *why = "not a URL (unclosed '[')";
            return 0;
        }
        p++;
    } else {
        while (*p != '\0' && *p != ':' && *p != '/') {
            char c = *p;
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-')) {
                *why = "not a URL (bad character in host)";
                return 0;
            }
            p++;
        }
    }
    hostlen = (size_t)(p - host);
    if (hostlen == 0) {
        *why = "not a URL (no host)";
        return 0;
    }
    if (*p == ':') {
        int port;
        if (parse_port(p + 1, &p, &port) == -1) {
            *why = "not a URL (bad port)";
            return 0;
        }
    }
    if (*p == '/' && p[1] == '\0')
        return 1;
    if (*p != '\0') {
        *why = "must be a registry's base URL, with no path, query or fragment";
        return 0;
    }
    return 1;
}

/* Host names in mirror_for: a DNS name or name:port, lowercase letters, digits, '.', '-'. */
static int host_valid(const char *h)
{
    size_t n = strlen(h);

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':'))
            return 0;
    }
    return 1;
}

static char *read_secret_file(const char *path, struct problems *p, const char *key)
{
    FILE *f = fopen(path, "r");
    char buf[SECRET_MAX_BYTES + 1];
    size_t n;

    if (f == NULL) {
        config_problem(p, "%s: cannot read %s: %s", key, path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n > SECRET_MAX_BYTES) {
        config_problem(p, "%s: %s is larger than %d bytes", key, path, SECRET_MAX_BYTES);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        config_problem(p, "%s: %s is empty", key, path);
        return NULL;
    }
    return xstrndup(buf, n);
}

int config_get_string(json_t *v, const char *key, struct problems *p, const char **out)
{
    if (!json_is_string(v)) {
        config_problem(p, "%s: must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int config_get_bool(json_t *v, const char *key, struct problems *p, int *out)
{
    if (!json_is_boolean(v)) {
        config_problem(p, "%s: must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static void get_duration(json_t *v, const char *key, struct problems *p, int64_t *out)
{
    const char *s;

    if (config_get_string(v, key, p, &s) == -1)
        return;
    if (config_parse_duration(s, out) == -1)
        config_problem(
            p,
            "%s: \"%s\" is not a duration (use a whole number with s, m, h or d: 90s, 15m, "
            "24h, 7d)",
            key, s);
}

/* A whole JSON number from <min> to <max>. */
static void get_count(json_t *v, const char *key, struct problems *p, int64_t min, int64_t max,
                      int64_t *out)
{
    json_int_t n;

    if (!json_is_integer(v) || (n = json_integer_value(v)) < min || n > max) {
        config_problem(p, "%s: must be a whole number from %lld to %lld", key, (long long)min,
                       (long long)max);
        return;
    }
    *out = (int64_t)n;
}

/* Keep <pw> (owned) as the rule's secret; a second source (an error reported later) replaces
 * the first, which is wiped and freed. */
static void set_password(struct config_rule *r, char *pw)
{
    if (r->rule_password != NULL) {
        explicit_bzero(r->rule_password, strlen(r->rule_password));
        free(r->rule_password);
    }
    r->rule_password = pw;
}

static void load_credentials(json_t *o, const char *key, struct config_rule *r, struct problems *p)
{
    const char *k, *s;
    json_t *v;
    int sources = 0;
    char path[128];

    if (!json_is_object(o)) {
        config_problem(p,
                       "%s: must be an object with username and password, password_env or "
                       "password_file",
                       key);
        return;
    }
    json_object_foreach(o, k, v)
    {
        snprintf(path, sizeof(path), "%s.%s", key, k);
        if (strcmp(k, "username") == 0) {
            if (config_get_string(v, path, p, &s) == 0) {
                if (s[0] == '\0')
                    config_problem(p, "%s: must not be empty", path);
                else
                    r->rule_username = xstrdup(s);
            }
        } else if (strcmp(k, "password") == 0) {
            sources++;
            if (config_get_string(v, path, p, &s) == 0)
                set_password(r, xstrdup(s));
        } else if (strcmp(k, "password_env") == 0) {
            sources++;
            if (config_get_string(v, path, p, &s) == 0) {
                const char *val = s[0] != '\0' ? getenv(s) : NULL;
                if (s[0] == '\0')
                    config_problem(p, "%s: must name an environment variable", path);
                else if (val == NULL || val[0] == '\0')
                    config_problem(p, "%s: environment variable %s is not set", path, s);
                else
                    set_password(r, xstrdup(val));
            }
        } else if (strcmp(k, "password_file") == 0) {
            sources++;
            if (config_get_string(v, path, p, &s) == 0)
                set_password(r, read_secret_file(s, p, path));
        } else {
            config_problem(p, "%s: unknown key", path);
        }
    }
    if (json_object_get(o, "username") == NULL)
        config_problem(p, "%s.username: missing", key);
    if (sources == 0)
        config_problem(p, "%s: needs one of password, password_env, password_file", key);
    else if (sources > 1)
        config_problem(p, "%s: give only one of password, password_env, password_file", key);
}

static void load_rule(json_t *o, size_t idx, struct config *cfg, struct config_rule *r,
                      struct problems *p)
{
    char key[96];
    const char *k, *s;
    json_t *v;

    r->rule_refresh_interval = -1;
    r->rule_stale_if_error = -1;
    r->rule_ecr = 1;
    if (!json_is_object(o)) {
        config_problem(p, "rules[%zu]: must be an object", idx);
        return;
    }
    json_object_foreach(o, k, v)
    {
        snprintf(key, sizeof(key), "rules[%zu].%s", idx, k);
        if (strcmp(k, "prefix") == 0) {
            if (config_get_string(v, key, p, &s) == 0) {
                if (!oci_name_valid(s, strlen(s)))
                    config_problem(
                        p,
                        "%s: \"%s\" is not a repository path (lowercase letters, digits, "
                        "'.', '_', '-', components joined by '/')",
                        key, s);
                else
                    r->rule_prefix = xstrdup(s);
            }
        } else if (strcmp(k, "upstream") == 0) {
            if (config_get_string(v, key, p, &s) == 0) {
                const char *why = NULL;
                if (!config_url_valid(s, &why)) {
                    config_problem(p, "%s: %s", key, why);
                } else {
                    size_t n = strlen(s);
                    if (s[n - 1] == '/')
                        n--;
                    r->rule_upstream = xstrndup(s, n);
                }
            }
        } else if (strcmp(k, "mirror_for") == 0) {
            size_t i;
            json_t *h;
            if (!json_is_array(v)) {
                config_problem(p, "%s: must be a list of host names", key);
                continue;
            }
            r->rule_mirror_for = xcalloc(json_array_size(v) + 1, sizeof(char *));
            json_array_foreach(v, i, h)
            {
                char hk[128];
                snprintf(hk, sizeof(hk), "%s[%zu]", key, i);
                if (config_get_string(h, hk, p, &s) == -1)
                    continue;
                if (!host_valid(s)) {
                    config_problem(p,
                                   "%s: \"%s\" is not a host name (lowercase, as containerd sends "
                                   "it in ?ns=)",
                                   hk, s);
                    continue;
                }
                r->rule_mirror_for[r->rule_nmirror_for++] = xstrdup(s);
            }
        } else if (strcmp(k, "default") == 0) {
            config_get_bool(v, key, p, &r->rule_default);
        } else if (strcmp(k, "library_prefix") == 0) {
            config_get_bool(v, key, p, &r->rule_library_prefix);
        } else if (strcmp(k, "allow_private_redirects") == 0) {
            config_get_bool(v, key, p, &r->rule_allow_private_redirects);
        } else if (strcmp(k, "ca_file") == 0) {
            if (config_get_string(v, key, p, &s) == 0) {
                FILE *f = fopen(s, "r");
                if (f == NULL)
                    config_problem(p, "%s: cannot read %s: %s", key, s, strerror(errno));
                else if (fclose(f) == 0)
                    r->rule_ca_file = xstrdup(s);
            }
        } else if (strcmp(k, "refresh_interval") == 0) {
            get_duration(v, key, p, &r->rule_refresh_interval);
        } else if (strcmp(k, "stale_if_error") == 0) {
            get_duration(v, key, p, &r->rule_stale_if_error);
        } else if (strcmp(k, "credentials") == 0) {
            load_credentials(v, key, r, p);
        } else if (strcmp(k, "ecr") == 0) {
            config_get_bool(v, key, p, &r->rule_ecr);
        } else if (strcmp(k, "lifecycle_policy") == 0) {
            r->rule_lifecycle = config_load_lifecycle(v, key, p);
        } else {
            config_problem(p, "%s: unknown key", key);
        }
    }
    if (json_object_get(o, "prefix") == NULL)
        config_problem(p, "rules[%zu].prefix: missing", idx);
    if (json_object_get(o, "upstream") == NULL)
        config_problem(p, "rules[%zu].upstream: missing", idx);
    (void)cfg;
}

/* Contradictions between rules: duplicate prefixes, two defaults, a host mirrored twice. */
static void check_rules(struct config *cfg, struct problems *p)
{
    size_t ndefault = 0;

    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        struct config_rule *a = &cfg->cfg_rules[i];
        if (a->rule_default && ++ndefault > 1)
            config_problem(p, "rules[%zu].default: only one rule may be the default", i);
        for (size_t j = 0; j < i; j++) {
            struct config_rule *b = &cfg->cfg_rules[j];
            if (a->rule_prefix && b->rule_prefix && strcmp(a->rule_prefix, b->rule_prefix) == 0)
                config_problem(p, "rules[%zu].prefix: \"%s\" is already the prefix of rules[%zu]",
                               i, a->rule_prefix, j);
            for (size_t x = 0; x < a->rule_nmirror_for; x++)
                for (size_t y = 0; y < b->rule_nmirror_for; y++)
                    if (strcmp(a->rule_mirror_for[x], b->rule_mirror_for[y]) == 0)
                        config_problem(p,
                                       "rules[%zu].mirror_for[%zu]: \"%s\" is already mirrored by "
                                       "rules[%zu]",
                                       i, x, a->rule_mirror_for[x], j);
        }
    }
}

static void apply_rule_defaults(struct config *cfg)
{
    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        struct config_rule *r = &cfg->cfg_rules[i];
        if (r->rule_refresh_interval < 0)
            r->rule_refresh_interval = cfg->cfg_refresh_interval;
        if (r->rule_stale_if_error < 0)
            r->rule_stale_if_error = cfg->cfg_stale_if_error;
    }
}

static const char *default_data_dir(void)
{
    const char *state = getenv("STATE_DIRECTORY");

    /* systemd may pass several directories separated by ':'; the first is ours. */
    if (state != NULL && state[0] != '\0' && strchr(state, ':') == NULL)
        return state;
    return CONFIG_DEFAULT_DATA_DIR;
}

static struct config *config_new(void)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));

    cfg->cfg_refresh_interval = CONFIG_DEFAULT_REFRESH;
    cfg->cfg_stale_if_error = CONFIG_DEFAULT_STALE;
    cfg->cfg_min_free_space = CONFIG_DEFAULT_MIN_FREE;
    cfg->cfg_max_conn_per_client = CONFIG_DEFAULT_MAX_CONN_PER_CLIENT;
    cfg->cfg_header_timeout = CONFIG_DEFAULT_HEADER_TIMEOUT;
    cfg->cfg_egress_price_per_gb = CONFIG_DEFAULT_EGRESS_PRICE_PER_GB;
    return cfg;
}

struct config *config_load_string(const char *json, char **errs)
{
    struct problems p = {NULL, 0, 0};
    struct config *cfg = config_new();
    json_error_t jerr;
    json_t *root, *v;
    const char *k, *s;

    *errs = NULL;
    root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        config_problem(&p, "(file): line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        config_problem(&p, "(top level): must be a JSON object");
        goto out;
    }
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "listen") == 0) {
            char host[256];
            int port;
            if (config_get_string(v, k, &p, &s) == 0) {
                if (config_parse_listen(s, host, sizeof(host), &port) == -1)
                    config_problem(&p,
                                   "listen: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:5000, "
                                   "[::1]:5000)",
                                   s);
                else
                    cfg->cfg_listen = xstrdup(s);
            }
        } else if (strcmp(k, "data_dir") == 0) {
            if (config_get_string(v, k, &p, &s) == 0) {
                if (s[0] == '\0')
                    config_problem(&p, "data_dir: must not be empty");
                else
                    cfg->cfg_data_dir = xstrdup(s);
            }
        } else if (strcmp(k, "refresh_interval") == 0) {
            get_duration(v, k, &p, &cfg->cfg_refresh_interval);
        } else if (strcmp(k, "stale_if_error") == 0) {
            get_duration(v, k, &p, &cfg->cfg_stale_if_error);
        } else if (strcmp(k, "min_free_space") == 0) {
            if (config_get_string(v, k, &p, &s) == 0 &&
                config_parse_size(s, &cfg->cfg_min_free_space) == -1)
                config_problem(&p, "min_free_space: \"%s\" is not a size (use e.g. 500MiB, 200GiB)",
                               s);
        } else if (strcmp(k, "max_connections") == 0) {
            get_count(v, k, &p, 1, CONFIG_MAX_CONNECTIONS_LIMIT, &cfg->cfg_max_connections);
        } else if (strcmp(k, "max_connections_per_client") == 0) {
            get_count(v, k, &p, 0, CONFIG_MAX_CONNECTIONS_LIMIT, &cfg->cfg_max_conn_per_client);
        } else if (strcmp(k, "header_timeout") == 0) {
            int64_t t = cfg->cfg_header_timeout;
            get_duration(v, k, &p, &t);
            if (t < 1 || t > 3600)
                config_problem(&p, "header_timeout: must be from 1s to 1h");
            else
                cfg->cfg_header_timeout = t;
        } else if (strcmp(k, "rules") == 0) {
            size_t i;
            json_t *r;
            if (!json_is_array(v)) {
                config_problem(&p, "rules: must be a list of rules");
                continue;
            }
            cfg->cfg_rules = xcalloc(json_array_size(v) + 1, sizeof(struct config_rule));
            json_array_foreach(v, i, r)
            {
                load_rule(r, i, cfg, &cfg->cfg_rules[i], &p);
                cfg->cfg_nrules++;
            }
        } else if (strcmp(k, "ecr") == 0) {
            config_load_ecr(v, cfg, &p);
        } else if (strcmp(k, "cache_size") == 0) {
            int64_t size;
            if (config_get_string(v, k, &p, &s) == -1)
                continue;
            if (config_parse_size(s, &size) == -1)
                config_problem(&p, "cache_size: \"%s\" is not a size (use e.g. 500MiB, 200GiB)", s);
            else if (size == 0)
                config_problem(&p, "cache_size: must be more than 0 (leave it out for no budget)");
            else
                cfg->cfg_cache_size = size;
        } else if (strcmp(k, "lifecycle_policy") == 0) {
            cfg->cfg_lifecycle = config_load_lifecycle(v, k, &p);
        } else if (strcmp(k, "admin_socket") == 0) {
            if (config_get_string(v, k, &p, &s) == -1)
                continue;
            if (s[0] == '\0')
                config_problem(&p, "admin_socket: must not be empty");
            else if (strlen(s) > ADMIN_SOCKET_MAX)
                config_problem(&p, "admin_socket: longer than %d bytes (a Unix socket's limit)",
                               ADMIN_SOCKET_MAX);
            else
                cfg->cfg_admin_socket = xstrdup(s);
        } else if (strcmp(k, "egress_price_per_gb") == 0) {
            if (!json_is_number(v) || json_number_value(v) < 0)
                config_problem(&p,
                               "egress_price_per_gb: must be a number of at least 0 (US dollars "
                               "per GB)");
            else
                cfg->cfg_egress_price_per_gb = json_number_value(v);
        } else {
            config_problem(&p, "%s: unknown key", k);
        }
    }
    if (json_object_get(root, "rules") == NULL)
        config_problem(&p, "rules: missing (at least one rule is needed)");
    else if (json_is_array(json_object_get(root, "rules")) && cfg->cfg_nrules == 0)
        config_problem(&p, "rules: empty (at least one rule is needed)");
    check_rules(cfg, &p);
    if (cfg->cfg_ecr != NULL)
        config_check_ecr_rules(cfg, &p);
    if (cfg->cfg_listen == NULL)
        cfg->cfg_listen = xstrdup(CONFIG_DEFAULT_LISTEN);
    if (cfg->cfg_data_dir == NULL)
        cfg->cfg_data_dir = xstrdup(default_data_dir());
    apply_rule_defaults(cfg);
out:
    json_decref(root);
    if (p.count > 0) {
        config_free(cfg);
        *errs = p.buf;
        return NULL;
    }
    return cfg;
}

void config_problems_print(FILE *f, const char *origin, const char *errs)
{
    const char *line = errs;

    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(f, "%s: %.*s\n", origin, n, line);
        line = nl ? nl + 1 : NULL;
    }
}

struct config *config_load_file(const char *path, char **errs)
{
    FILE *f;
    char *buf;
    size_t n;
    struct config *cfg;

    *errs = NULL;
    f = fopen(path, "r");
    if (f == NULL) {
        *errs = xasprintf("%s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = xmalloc(CONFIG_MAX_BYTES + 1);
    n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        *errs = xasprintf("%s: cannot read: %s\n", path, strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    if (n > CONFIG_MAX_BYTES) {
        *errs = xasprintf("%s: larger than %d bytes\n", path, CONFIG_MAX_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        *errs = xasprintf("%s: not a text file (holds a NUL byte)\n", path);
        free(buf);
        return NULL;
    }
    cfg = config_load_string(buf, errs);
    free(buf);
    return cfg;
}

struct config *config_default(void)
{
    struct config *cfg = config_new();
    struct config_rule *r;

    cfg->cfg_listen = xstrdup(CONFIG_DEFAULT_LISTEN);
    cfg->cfg_data_dir = xstrdup(default_data_dir());
    cfg->cfg_rules = xcalloc(2, sizeof(struct config_rule));
    cfg->cfg_nrules = 2;

    r = &cfg->cfg_rules[0];
    r->rule_prefix = xstrdup("ecr-public");
    r->rule_upstream = xstrdup("https://public.ecr.aws");
    r->rule_mirror_for = xcalloc(2, sizeof(char *));
    r->rule_mirror_for[r->rule_nmirror_for++] = xstrdup("public.ecr.aws");
    r->rule_refresh_interval = -1;
    r->rule_stale_if_error = -1;
    r->rule_ecr = 1;

    r = &cfg->cfg_rules[1];
    r->rule_prefix = xstrdup("docker-hub");
    r->rule_upstream = xstrdup("https://registry-1.docker.io");
    r->rule_mirror_for = xcalloc(3, sizeof(char *));
    r->rule_mirror_for[r->rule_nmirror_for++] = xstrdup("docker.io");
    r->rule_mirror_for[r->rule_nmirror_for++] = xstrdup("registry-1.docker.io");
    r->rule_library_prefix = 1;
    r->rule_default = 1;
    r->rule_refresh_interval = -1;
    r->rule_stale_if_error = -1;
    r->rule_ecr = 1;

    apply_rule_defaults(cfg);
    return cfg;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->cfg_nrules; i++) {
        struct config_rule *r = &cfg->cfg_rules[i];
        free(r->rule_prefix);
        free(r->rule_upstream);
        for (size_t j = 0; j < r->rule_nmirror_for; j++)
            free(r->rule_mirror_for[j]);
        free(r->rule_mirror_for);
        free(r->rule_username);
        free(r->rule_ca_file);
        if (r->rule_password != NULL) {
            explicit_bzero(r->rule_password, strlen(r->rule_password));
            free(r->rule_password);
        }
        lifecycle_policy_free(r->rule_lifecycle);
    }
    free(cfg->cfg_rules);
    config_ecr_free(cfg->cfg_ecr);
    free(cfg->cfg_listen);
    free(cfg->cfg_data_dir);
    lifecycle_policy_free(cfg->cfg_lifecycle);
    free(cfg->cfg_admin_socket);
    free(cfg);
}

const struct lc_policy *config_rule_lifecycle(const struct config *cfg,
                                              const struct config_rule *rule)
{
    if (rule != NULL && rule->rule_lifecycle != NULL)
        return rule->rule_lifecycle;
    return cfg != NULL ? cfg->cfg_lifecycle : NULL;
}

char *config_admin_socket_path(const struct config *cfg)
{
    if (cfg->cfg_admin_socket != NULL)
        return xstrdup(cfg->cfg_admin_socket);
    return xasprintf("%s/admin.sock", cfg->cfg_data_dir);
}
