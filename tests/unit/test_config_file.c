/* Unit tests for proxy/config/config_file.c: every valid form, each invalid case with its message.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"
#include "policy_lifecycle.h"

static const char *const ok_rules =
    "\"rules\":[{\"prefix\":\"ecr-public\",\"upstream\":\"https://public.ecr.aws\"}]";

/* Load <json>; expect failure whose message lines include <want>; return nothing. */
static void expect_error(const char *json, const char *want)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);

    cr_assert_null(cfg, "expected %s to fail", json);
    cr_assert_not_null(errs);
    cr_assert(strstr(errs, want) != NULL, "errors \"%s\" lack \"%s\"", errs, want);
    free(errs);
}

static struct config *expect_ok(const char *json)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);

    cr_assert_not_null(cfg, "expected %s to load, got: %s", json, errs ? errs : "");
    cr_assert_null(errs);
    return cfg;
}

Test(duration, valid_forms)
{
    int64_t v;

    cr_assert_eq(config_parse_duration("90s", &v), 0);
    cr_assert_eq(v, 90);
    cr_assert_eq(config_parse_duration("15m", &v), 0);
    cr_assert_eq(v, 900);
    cr_assert_eq(config_parse_duration("24h", &v), 0);
    cr_assert_eq(v, 86400);
    cr_assert_eq(config_parse_duration("7d", &v), 0);
    cr_assert_eq(v, 604800);
    cr_assert_eq(config_parse_duration("0s", &v), 0);
    cr_assert_eq(v, 0);
}

Test(duration, garbage_and_overflow)
{
    int64_t v = 42;
    const char *bad[] = {"",
                         "s",
                         "10",
                         "10x",
                         "-5s",
                         "+5s",
                         "1.5h",
                         " 5s",
                         "5s ",
                         "5 s",
                         "5ss",
                         "9223372036854775807d",
                         "99999999999999999999s",
                         "1h30m",
                         "0x10s"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_duration(bad[i], &v), -1, "accepted \"%s\"", bad[i]);
    cr_assert_eq(v, 42, "a failed parse must not write its output");
    cr_assert_eq(config_parse_duration("106751991167300d", &v), 0);
    cr_assert_eq(config_parse_duration("106751991167301d", &v), -1);
}

Test(size, valid_forms)
{
    int64_t v;

    cr_assert_eq(config_parse_size("500MiB", &v), 0);
    cr_assert_eq(v, 500LL << 20);
    cr_assert_eq(config_parse_size("200GiB", &v), 0);
    cr_assert_eq(v, 200LL << 30);
    cr_assert_eq(config_parse_size("1TiB", &v), 0);
    cr_assert_eq(v, 1LL << 40);
    cr_assert_eq(config_parse_size("4KiB", &v), 0);
    cr_assert_eq(v, 4096);
    cr_assert_eq(config_parse_size("1024B", &v), 0);
    cr_assert_eq(v, 1024);
    cr_assert_eq(config_parse_size("10MB", &v), 0);
    cr_assert_eq(v, 10000000);
}

Test(size, garbage_and_overflow)
{
    int64_t v = 7;
    const char *bad[] = {"",
                         "MiB",
                         "10",
                         "10mib",
                         "10 MiB",
                         "-1MiB",
                         "1.5GiB",
                         "10PiB",
                         "9999999999999GiB",
                         "99999999999999999999B",
                         "10MiBs"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_size(bad[i], &v), -1, "accepted \"%s\"", bad[i]);
    cr_assert_eq(v, 7);
    cr_assert_eq(config_parse_size("8388607TiB", &v), 0);
    cr_assert_eq(config_parse_size("8388608TiB", &v), -1);
}

Test(listen, forms)
{
    char host[64];
    int port;

    cr_assert_eq(config_parse_listen("127.0.0.1:5000", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 5000);
    cr_assert_eq(config_parse_listen("[::1]:8080", host, sizeof(host), &port), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 8080);
    cr_assert_eq(config_parse_listen("localhost:1", host, sizeof(host), &port), 0);
    cr_assert_eq(config_parse_listen("127.0.0.1", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen(":5000", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("h:0", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("h:65536", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("h:-1", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("h:50x", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("::1:5000", host, sizeof(host), &port), -1);
    cr_assert_eq(config_parse_listen("[::1]5000", host, sizeof(host), &port), -1);
}

/* A port is 1 to 5 digits and nothing else: no overflow, no sign, no space before it. */
Test(listen, port_digits_only)
{
    char host[64];
    int port = 42;
    const char *bad[] = {"h:99999999999999999999999",
                         "h:9223372036854775808",
                         "h: 80",
                         "h:\t80",
                         "h:+80",
                         "h:080x",
                         "h:000080",
                         "[::1]:99999999999999999999"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(config_parse_listen(bad[i], host, sizeof(host), &port), -1, "accepted \"%s\"",
                     bad[i]);
    cr_assert_eq(port, 42, "a failed parse must not write its output");
    cr_assert_eq(config_parse_listen("h:65535", host, sizeof(host), &port), 0);
    cr_assert_eq(port, 65535);
    cr_assert_eq(config_parse_listen("h:00080", host, sizeof(host), &port), 0);
    cr_assert_eq(port, 80);
}

/* The port of an upstream URL: an overlong one is refused before any arithmetic on it. */
Test(config_errors, upstream_port_overflow)
{
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":"
                 "\"https://x.example:99999999999999999999999\"}]}",
                 "rules[0].upstream: not a URL (bad port)");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":"
                 "\"https://[::1]:99999999999999999999999/\"}]}",
                 "rules[0].upstream: not a URL (bad port)");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://x.example:0\"}]}",
                 "rules[0].upstream: not a URL (bad port)");
    expect_error("{\"listen\":\"127.0.0.1:99999999999999999999999\",\"rules\":[{\"prefix\":"
                 "\"a\",\"upstream\":\"https://a.io\"}]}",
                 "listen: \"127.0.0.1:99999999999999999999999\" is not HOST:PORT");
}

Test(config, connection_limits)
{
    struct config *cfg;
    char json[512];

    snprintf(json, sizeof(json), "{%s}", ok_rules);
    cfg = expect_ok(json);
    cr_assert_eq(cfg->cfg_max_connections, 0, "absent: derived from RLIMIT_NOFILE at start");
    cr_assert_eq(cfg->cfg_max_conn_per_client, -1, "absent: a quarter of max_connections");
    cr_assert_eq(cfg->cfg_header_timeout, 10);
    config_free(cfg);

    snprintf(json, sizeof(json),
             "{\"max_connections\":1048576,\"max_connections_per_client\":0,"
             "\"header_timeout\":\"1h\",%s}",
             ok_rules);
    cfg = expect_ok(json);
    cr_assert_eq(cfg->cfg_max_connections, 1048576);
    cr_assert_eq(cfg->cfg_max_conn_per_client, 0);
    cr_assert_eq(cfg->cfg_header_timeout, 3600);
    config_free(cfg);

    snprintf(json, sizeof(json), "{\"max_connections\":1,\"header_timeout\":\"1s\",%s}", ok_rules);
    cfg = expect_ok(json);
    cr_assert_eq(cfg->cfg_max_connections, 1);
    cr_assert_eq(cfg->cfg_header_timeout, 1);
    config_free(cfg);
}

Test(config_errors, connection_limits)
{
    static const char *const bad[][2] = {
        {"\"max_connections\":0", "max_connections: must be a whole number from 1 to 1048576"},
        {"\"max_connections\":-5", "max_connections: must be a whole number from 1 to 1048576"},
        {"\"max_connections\":1048577", "max_connections: must be a whole number from 1 to"},
        {"\"max_connections\":\"100\"", "max_connections: must be a whole number"},
        {"\"max_connections\":1.5", "max_connections: must be a whole number"},
        {"\"max_connections\":true", "max_connections: must be a whole number"},
        {"\"max_connections_per_client\":-1",
         "max_connections_per_client: must be a whole number from 0 to 1048576"},
        {"\"max_connections_per_client\":null", "max_connections_per_client: must be a whole"},
        {"\"header_timeout\":\"0s\"", "header_timeout: must be from 1s to 1h"},
        {"\"header_timeout\":\"2h\"", "header_timeout: must be from 1s to 1h"},
        {"\"header_timeout\":\"10\"", "header_timeout: \"10\" is not a duration"},
        {"\"header_timeout\":10", "header_timeout: must be a string"},
    };
    char json[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *errs = NULL;
        struct config *cfg;
        snprintf(json, sizeof(json), "{%s,%s}", bad[i][0], ok_rules);
        cfg = config_load_string(json, &errs);
        cr_assert_null(cfg, "expected %s to fail", json);
        cr_assert(strstr(errs, bad[i][1]) != NULL, "errors \"%s\" lack \"%s\"", errs, bad[i][1]);
        cr_assert_eq(strchr(errs, '\n'), errs + strlen(errs) - 1, "one line for %s: %s", json,
                     errs);
        free(errs);
    }
}

Test(config, default_matches_design)
{
    struct config *cfg = config_default();

    cr_assert_str_eq(cfg->cfg_listen, "0.0.0.0:5000");
    cr_assert_eq(cfg->cfg_nrules, 2);
    cr_assert_str_eq(cfg->cfg_rules[0].rule_prefix, "ecr-public");
    cr_assert_str_eq(cfg->cfg_rules[0].rule_upstream, "https://public.ecr.aws");
    cr_assert_str_eq(cfg->cfg_rules[1].rule_prefix, "docker-hub");
    cr_assert_str_eq(cfg->cfg_rules[1].rule_upstream, "https://registry-1.docker.io");
    cr_assert(cfg->cfg_rules[1].rule_default);
    cr_assert(cfg->cfg_rules[1].rule_library_prefix);
    cr_assert_eq(cfg->cfg_rules[1].rule_refresh_interval, 86400);
    cr_assert_eq(cfg->cfg_stale_if_error, 7 * 86400);
    config_free(cfg);
}

Test(config, default_data_dir_follows_state_directory)
{
    struct config *cfg;

    setenv("STATE_DIRECTORY", "/var/lib/ecr-ptc-proxy", 1);
    cfg = config_default();
    cr_assert_str_eq(cfg->cfg_data_dir, "/var/lib/ecr-ptc-proxy");
    config_free(cfg);
    unsetenv("STATE_DIRECTORY");
    cfg = config_default();
    cr_assert_str_eq(cfg->cfg_data_dir, "./ecr-ptc-proxy-data");
    config_free(cfg);
}

Test(config, design_example_loads)
{
    struct config *cfg;

    setenv("DOCKERHUB_TOKEN", "s3cret-token", 1);
    cfg =
        expect_ok("{\"listen\":\"127.0.0.1:5000\",\"data_dir\":\"/var/lib/ecr-ptc-proxy\","
                  "\"refresh_interval\":\"24h\",\"stale_if_error\":\"7d\",\"rules\":["
                  "{\"prefix\":\"ecr-public\",\"upstream\":\"https://public.ecr.aws\","
                  "\"mirror_for\":[\"public.ecr.aws\"]},"
                  "{\"prefix\":\"docker-hub\",\"upstream\":\"https://registry-1.docker.io/\","
                  "\"mirror_for\":[\"docker.io\",\"registry-1.docker.io\"],\"library_prefix\":true,"
                  "\"default\":true,\"credentials\":{\"username\":\"me\",\"password_env\":"
                  "\"DOCKERHUB_TOKEN\"}}]}");
    cr_assert_str_eq(cfg->cfg_listen, "127.0.0.1:5000");
    cr_assert_str_eq(cfg->cfg_data_dir, "/var/lib/ecr-ptc-proxy");
    cr_assert_eq(cfg->cfg_nrules, 2);
    cr_assert_str_eq(cfg->cfg_rules[1].rule_upstream, "https://registry-1.docker.io");
    cr_assert_eq(cfg->cfg_rules[1].rule_nmirror_for, 2);
    cr_assert_str_eq(cfg->cfg_rules[1].rule_mirror_for[1], "registry-1.docker.io");
    cr_assert_str_eq(cfg->cfg_rules[1].rule_username, "me");
    cr_assert_str_eq(cfg->cfg_rules[1].rule_password, "s3cret-token");
    cr_assert(cfg->cfg_rules[1].rule_default);
    cr_assert(!cfg->cfg_rules[0].rule_default);
    config_free(cfg);
    unsetenv("DOCKERHUB_TOKEN");
}

Test(config, per_rule_overrides_and_sizes)
{
    struct config *cfg = expect_ok(
        "{\"refresh_interval\":\"1h\",\"min_free_space\":\"500MiB\",\"rules\":["
        "{\"prefix\":\"a\",\"upstream\":\"http://127.0.0.1:5001\",\"refresh_interval\":\"90s\","
        "\"stale_if_error\":\"15m\",\"allow_private_redirects\":true},"
        "{\"prefix\":\"mirrors/quay\",\"upstream\":\"https://[::1]:443\"}]}");

    cr_assert_eq(cfg->cfg_min_free_space, 500LL << 20);
    cr_assert_eq(cfg->cfg_rules[0].rule_refresh_interval, 90);
    cr_assert_eq(cfg->cfg_rules[0].rule_stale_if_error, 900);
    cr_assert(cfg->cfg_rules[0].rule_allow_private_redirects);
    cr_assert_eq(cfg->cfg_rules[1].rule_refresh_interval, 3600);
    cr_assert_eq(cfg->cfg_rules[1].rule_stale_if_error, 7 * 86400);
    cr_assert_str_eq(cfg->cfg_rules[1].rule_prefix, "mirrors/quay");
    config_free(cfg);
}

/* Create the mkstemp <path> (its template is overwritten) holding <content>. */
static void temp_file_with(char *path, const char *content)
{
    int fd = mkstemp(path);
    size_t n = strlen(content);

    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
}

Test(config, password_file_and_inline)
{
    char path[] = "/tmp/ecr-ptc-secret-XXXXXX";
    char json[512];
    struct config *cfg;

    temp_file_with(path, "from-file\n");
    snprintf(json, sizeof(json),
             "{\"rules\":[{\"prefix\":\"q\",\"upstream\":\"https://quay.io\",\"credentials\":"
             "{\"username\":\"u\",\"password_file\":\"%s\"}},{\"prefix\":\"g\",\"upstream\":"
             "\"https://ghcr.io\",\"credentials\":{\"username\":\"u\",\"password\":\"p\"}}]}",
             path);
    cfg = expect_ok(json);
    cr_assert_str_eq(cfg->cfg_rules[0].rule_password, "from-file");
    cr_assert_str_eq(cfg->cfg_rules[1].rule_password, "p");
    config_free(cfg);
    unlink(path);
}

Test(config, listen_and_data_dir_default_when_absent)
{
    struct config *cfg;
    char json[256];

    unsetenv("STATE_DIRECTORY");
    snprintf(json, sizeof(json), "{%s}", ok_rules);
    cfg = expect_ok(json);
    cr_assert_str_eq(cfg->cfg_listen, "0.0.0.0:5000");
    cr_assert_str_eq(cfg->cfg_data_dir, "./ecr-ptc-proxy-data");
    config_free(cfg);
}

Test(config_errors, syntax)
{
    expect_error("{\"rules\": [", "(file): line 1");
    expect_error("[]", "(top level): must be a JSON object");
    expect_error("{\"rules\":[],\"rules\":[]}", "duplicate");
}

Test(config_errors, top_level_keys)
{
    char json[512];

    snprintf(json, sizeof(json), "{\"listne\":\"x\",%s}", ok_rules);
    expect_error(json, "listne: unknown key");
    snprintf(json, sizeof(json), "{\"listen\":\"127.0.0.1\",%s}", ok_rules);
    expect_error(json, "listen: \"127.0.0.1\" is not HOST:PORT");
    snprintf(json, sizeof(json), "{\"listen\":5000,%s}", ok_rules);
    expect_error(json, "listen: must be a string");
    snprintf(json, sizeof(json), "{\"refresh_interval\":\"24\",%s}", ok_rules);
    expect_error(json, "refresh_interval: \"24\" is not a duration");
    snprintf(json, sizeof(json), "{\"stale_if_error\":7,%s}", ok_rules);
    expect_error(json, "stale_if_error: must be a string");
    snprintf(json, sizeof(json), "{\"min_free_space\":\"2 GiB\",%s}", ok_rules);
    expect_error(json, "min_free_space: \"2 GiB\" is not a size");
    snprintf(json, sizeof(json), "{\"data_dir\":\"\",%s}", ok_rules);
    expect_error(json, "data_dir: must not be empty");
    expect_error("{}", "rules: missing");
    expect_error("{\"rules\":[]}", "rules: empty");
    expect_error("{\"rules\":{}}", "rules: must be a list");
}

Test(config_errors, rule_keys)
{
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"},"
                 "{\"prefix\":\"b\",\"upstream\":\"ftp://b.io\"}]}",
                 "rules[1].upstream: not a URL");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://\"}]}",
                 "rules[0].upstream: not a URL (no host)");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io/v2/x\"}]}",
                 "rules[0].upstream: must be a registry's base URL");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io:99999\"}]}",
                 "rules[0].upstream: not a URL (bad port)");
    expect_error("{\"rules\":[{\"prefix\":\"A\",\"upstream\":\"https://a.io\"}]}",
                 "rules[0].prefix: \"A\" is not a repository path");
    expect_error("{\"rules\":[{\"prefix\":\"a//b\",\"upstream\":\"https://a.io\"}]}",
                 "rules[0].prefix: \"a//b\" is not a repository path");
    expect_error("{\"rules\":[{\"upstream\":\"https://a.io\"}]}", "rules[0].prefix: missing");
    expect_error("{\"rules\":[{\"prefix\":\"a\"}]}", "rules[0].upstream: missing");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"mirorr_for\":[]}]}",
                 "rules[0].mirorr_for: unknown key");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"default\":1}]}",
                 "rules[0].default: must be true or false");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\","
                 "\"mirror_for\":\"docker.io\"}]}",
                 "rules[0].mirror_for: must be a list of host names");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\","
                 "\"mirror_for\":[\"ok.io\",\"Bad Host\"]}]}",
                 "rules[0].mirror_for[1]: \"Bad Host\" is not a host name");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\","
                 "\"refresh_interval\":\"1w\"}]}",
                 "rules[0].refresh_interval: \"1w\" is not a duration");
    expect_error("{\"rules\":[7]}", "rules[0]: must be an object");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\","
                 "\"ca_file\":\"/nonexistent/ca.pem\"}]}",
                 "rules[0].ca_file: cannot read /nonexistent/ca.pem: No such file or directory");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"ca_file\":7}]}",
                 "rules[0].ca_file: must be a string");
}

Test(config, ca_file_kept_when_readable)
{
    char path[] = "/tmp/ecr-ptc-ca-XXXXXX";
    char json[512];
    struct config *cfg;

    temp_file_with(path, "-----BEGIN CERTIFICATE-----\n");
    snprintf(json, sizeof(json),
             "{\"rules\":[{\"prefix\":\"p\",\"upstream\":\"https://registry.corp.example\","
             "\"ca_file\":\"%s\"},{\"prefix\":\"q\",\"upstream\":\"https://quay.io\"}]}",
             path);
    cfg = expect_ok(json);
    cr_assert_str_eq(cfg->cfg_rules[0].rule_ca_file, path);
    cr_assert_null(cfg->cfg_rules[1].rule_ca_file);
    config_free(cfg);
    unlink(path);
}

Test(config_errors, contradictions)
{
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"default\":true},"
                 "{\"prefix\":\"b\",\"upstream\":\"https://b.io\",\"default\":true}]}",
                 "rules[1].default: only one rule may be the default");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"},"
                 "{\"prefix\":\"a\",\"upstream\":\"https://b.io\"}]}",
                 "rules[1].prefix: \"a\" is already the prefix of rules[0]");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\","
                 "\"mirror_for\":[\"docker.io\"]},{\"prefix\":\"b\",\"upstream\":\"https://b.io\","
                 "\"mirror_for\":[\"docker.io\"]}]}",
                 "rules[1].mirror_for[0]: \"docker.io\" is already mirrored by rules[0]");
}

Test(config_errors, credentials_without_leaking_secrets)
{
    char *errs = NULL;
    struct config *cfg;

    unsetenv("NO_SUCH_TOKEN_VAR");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"credentials\":"
                 "{\"username\":\"u\",\"password_env\":\"NO_SUCH_TOKEN_VAR\"}}]}",
                 "rules[0].credentials.password_env: environment variable NO_SUCH_TOKEN_VAR is "
                 "not set");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"credentials\":"
                 "{\"password\":\"x\"}}]}",
                 "rules[0].credentials.username: missing");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"credentials\":"
                 "{\"username\":\"u\"}}]}",
                 "rules[0].credentials: needs one of password, password_env, password_file");
    expect_error("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"credentials\":"
                 "{\"username\":\"u\",\"password_file\":\"/nonexistent/secret\"}}]}",
                 "rules[0].credentials.password_file: cannot read /nonexistent/secret");
    /* A secret given inline next to an error elsewhere never shows in the messages. */
    cfg = config_load_string(
        "{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"credentials\":"
        "{\"username\":\"u\",\"password\":\"hunter2-secret\",\"password_env\":\"X\",\"pin\":1}}]}",
        &errs);
    cr_assert_null(cfg);
    cr_assert(strstr(errs, "give only one of") != NULL, "%s", errs);
    cr_assert(strstr(errs, "rules[0].credentials.pin: unknown key") != NULL, "%s", errs);
    cr_assert(strstr(errs, "hunter2") == NULL, "secret leaked: %s", errs);
    free(errs);
}

Test(config_errors, one_line_per_problem)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(
        "{\"listen\":\"x\",\"bogus\":1,\"rules\":[{\"prefix\":\"a\",\"upstream\":\"nope\"}]}",
        &errs);
    int lines = 0;

    cr_assert_null(cfg);
    for (const char *p = errs; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 3, "want 3 lines, got: %s", errs);
    free(errs);
}

Test(config_errors, file_problems)
{
    char *errs = NULL;

    cr_assert_null(config_load_file("/nonexistent/config.json", &errs));
    cr_assert(strstr(errs, "/nonexistent/config.json: cannot open") != NULL, "%s", errs);
    free(errs);
}

/* --- the operations keys (#12): cache_size, lifecycle_policy, admin_socket, egress price --- */

/* Load <json>; expect exactly one problem line, starting with <want>. */
static void expect_only(const char *json, const char *want)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);
    size_t lines = 0;

    cr_assert_null(cfg, "expected %s to fail", json);
    cr_assert_not_null(errs);
    for (const char *c = errs; *c != '\0'; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 1, "want one line, got: %s", errs);
    cr_assert(strncmp(errs, want, strlen(want)) == 0, "errors \"%s\" do not start with \"%s\"",
              errs, want);
    free(errs);
}

#define LC_RULE(prio, sel)                                                                         \
    "{\"rulePriority\":" #prio ",\"selection\":{" sel "},\"action\":{\"type\":\"expire\"}}"
#define LC_UNTAGGED_14                                                                             \
    "\"tagStatus\":\"untagged\",\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\","        \
    "\"countNumber\":14"
#define LC_PROD_KEEP_3                                                                             \
    "\"tagStatus\":\"tagged\",\"tagPatternList\":[\"prod*\"],\"countType\":"                       \
    "\"imageCountMoreThan\",\"countNumber\":3"
#define LC_ANY_PULLED_30                                                                           \
    "\"tagStatus\":\"any\",\"countType\":\"sinceImagePulled\",\"countUnit\":\"days\","             \
    "\"countNumber\":30"

Test(config, operations_defaults)
{
    char json[512];
    struct config *cfg;
    char *sock;

    snprintf(json, sizeof(json), "{\"data_dir\":\"/var/lib/p\",%s}", ok_rules);
    cfg = expect_ok(json);
    cr_assert_eq(cfg->cfg_cache_size, 0);
    cr_assert_null(cfg->cfg_lifecycle);
    cr_assert_null(cfg->cfg_admin_socket);
    cr_assert_float_eq(cfg->cfg_egress_price_per_gb, 0.045, 1e-12);
    cr_assert_null(config_rule_lifecycle(cfg, &cfg->cfg_rules[0]));
    sock = config_admin_socket_path(cfg);
    cr_assert_str_eq(sock, "/var/lib/p/admin.sock");
    free(sock);
    config_free(cfg);

    cfg = config_default();
    cr_assert_eq(cfg->cfg_cache_size, 0);
    cr_assert_null(cfg->cfg_lifecycle);
    cr_assert_float_eq(cfg->cfg_egress_price_per_gb, CONFIG_DEFAULT_EGRESS_PRICE_PER_GB, 1e-12);
    config_free(cfg);
}

Test(config, operations_keys)
{
    char json[1024];
    struct config *cfg;
    char *sock;

    snprintf(json, sizeof(json),
             "{\"cache_size\":\"200GiB\",\"admin_socket\":\"/run/p/admin.sock\","
             "\"egress_price_per_gb\":0.09,%s}",
             ok_rules);
    cfg = expect_ok(json);
    cr_assert_eq(cfg->cfg_cache_size, (int64_t)200 << 30);
    cr_assert_str_eq(cfg->cfg_admin_socket, "/run/p/admin.sock");
    sock = config_admin_socket_path(cfg);
    cr_assert_str_eq(sock, "/run/p/admin.sock");
    free(sock);
    cr_assert_float_eq(cfg->cfg_egress_price_per_gb, 0.09, 1e-12);
    config_free(cfg);

    snprintf(json, sizeof(json), "{\"egress_price_per_gb\":0,\"admin_socket\":\"a.sock\",%s}",
             ok_rules);
    cfg = expect_ok(json);
    cr_assert_float_eq(cfg->cfg_egress_price_per_gb, 0.0, 1e-12);
    cr_assert_str_eq(cfg->cfg_admin_socket, "a.sock");
    config_free(cfg);
}

Test(config, lifecycle_policy_object_sorted)
{
    const char *json =
        "{\"lifecycle_policy\":{\"rules\":[" LC_RULE(9, LC_ANY_PULLED_30) "," LC_RULE(
            1, LC_UNTAGGED_14) "," LC_RULE(5,
                                           LC_PROD_KEEP_3) "]},"
                                                           "\"rules\":[{\"prefix\":\"a\","
                                                           "\"upstream\":\"https://a.io\"},"
                                                           "{\"prefix\":\"b\",\"upstream\":\"https:"
                                                           "//b.io\","
                                                           "\"lifecycle_policy\":{\"rules\":[{"
                                                           "\"rulePriority\":3,"
                                                           "\"description\":\"keep 2 "
                                                           "v\",\"selection\":{\"tagStatus\":"
                                                           "\"tagged\",\"tagPrefixList\":[\"v\","
                                                           "\"release\"],\"countType\":"
                                                           "\"imageCountMoreThan\",\"countNumber\":"
                                                           "2},\"action\":{\"type\":"
                                                           "\"expire\"}}]}}]}";
    struct config *cfg = expect_ok(json);
    const struct lc_policy *lp = cfg->cfg_lifecycle;
    const struct lc_policy *rp;

    cr_assert_not_null(lp);
    cr_assert_eq(lp->lp_nrules, 3);
    cr_assert_eq(lp->lp_rules[0].lr_priority, 1);
    cr_assert_eq(lp->lp_rules[0].lr_tag_status, LC_UNTAGGED);
    cr_assert_eq(lp->lp_rules[0].lr_count_type, LC_SINCE_PUSHED);
    cr_assert_eq(lp->lp_rules[0].lr_count_number, 14);
    cr_assert_eq(lp->lp_rules[1].lr_priority, 5);
    cr_assert_eq(lp->lp_rules[1].lr_tag_status, LC_TAGGED);
    cr_assert_eq(lp->lp_rules[1].lr_npatterns, 1);
    cr_assert_str_eq(lp->lp_rules[1].lr_patterns[0], "prod*");
    cr_assert_eq(lp->lp_rules[1].lr_nprefixes, 0);
    cr_assert_eq(lp->lp_rules[1].lr_count_type, LC_COUNT_MORE_THAN);
    cr_assert_eq(lp->lp_rules[1].lr_count_number, 3);
    cr_assert_eq(lp->lp_rules[2].lr_priority, 9);
    cr_assert_eq(lp->lp_rules[2].lr_tag_status, LC_ANY);
    cr_assert_eq(lp->lp_rules[2].lr_count_type, LC_SINCE_PULLED);

    cr_assert_eq(config_rule_lifecycle(cfg, &cfg->cfg_rules[0]), lp, "rule a: the default");
    rp = config_rule_lifecycle(cfg, &cfg->cfg_rules[1]);
    cr_assert_eq(rp, cfg->cfg_rules[1].rule_lifecycle, "rule b: its own");
    cr_assert_eq(rp->lp_nrules, 1);
    cr_assert_eq(rp->lp_rules[0].lr_nprefixes, 2);
    cr_assert_str_eq(rp->lp_rules[0].lr_prefixes[1], "release");
    config_free(cfg);
}

/* Terraform's jsonencode() writes the policy as a string of JSON text. */
Test(config, lifecycle_policy_as_string)
{
    const char *json =
        "{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\",\"lifecycle_policy\":"
        "\"{\\\"rules\\\":[{\\\"rulePriority\\\":1,\\\"selection\\\":{\\\"tagStatus\\\":"
        "\\\"untagged\\\",\\\"countType\\\":\\\"imageCountMoreThan\\\",\\\"countNumber\\\":1},"
        "\\\"action\\\":{\\\"type\\\":\\\"expire\\\"}}]}\"}]}";
    struct config *cfg = expect_ok(json);
    const struct lc_policy *lp = cfg->cfg_rules[0].rule_lifecycle;

    cr_assert_not_null(lp);
    cr_assert_eq(lp->lp_nrules, 1);
    cr_assert_eq(lp->lp_rules[0].lr_tag_status, LC_UNTAGGED);
    cr_assert_eq(lp->lp_rules[0].lr_count_number, 1);
    cr_assert_null(cfg->cfg_lifecycle);
    config_free(cfg);
}

Test(config_errors, operations_keys)
{
    char json[512];

    snprintf(json, sizeof(json), "{\"cache_size\":\"lots\",%s}", ok_rules);
    expect_only(json, "cache_size: \"lots\" is not a size");
    snprintf(json, sizeof(json), "{\"cache_size\":\"0GiB\",%s}", ok_rules);
    expect_only(json, "cache_size: must be more than 0");
    snprintf(json, sizeof(json), "{\"cache_size\":200,%s}", ok_rules);
    expect_only(json, "cache_size: must be a string");
    snprintf(json, sizeof(json), "{\"egress_price_per_gb\":-0.01,%s}", ok_rules);
    expect_only(json, "egress_price_per_gb: must be a number of at least 0");
    snprintf(json, sizeof(json), "{\"egress_price_per_gb\":\"0.045\",%s}", ok_rules);
    expect_only(json, "egress_price_per_gb: must be a number");
    snprintf(json, sizeof(json), "{\"admin_socket\":\"\",%s}", ok_rules);
    expect_only(json, "admin_socket: must not be empty");
    snprintf(json, sizeof(json), "{\"admin_socket\":true,%s}", ok_rules);
    expect_only(json, "admin_socket: must be a string");
    snprintf(json, sizeof(json), "{\"admin_socket\":\"/%0107d\",%s}", 0, ok_rules);
    expect_only(json, "admin_socket: longer than 107 bytes");
    snprintf(json, sizeof(json), "{\"admin_socket\":\"/%0106d\",%s}", 0, ok_rules);
    config_free(expect_ok(json));
}

/* One bad lifecycle policy each, given at the top level: the one line it must produce. */
Test(config_errors, lifecycle_policy)
{
    static const struct {
        const char *policy;
        const char *want;
    } cases[] = {
        {"[]", "lifecycle_policy: must be an object, or a string holding one"},
        {"\"{\\\"rules\\\": \"", "lifecycle_policy: not a JSON lifecycle policy: line 1"},
        {"{}", "lifecycle_policy.rules: missing"},
        {"{\"rules\":{}}", "lifecycle_policy.rules: must be a list"},
        {"{\"rules\":[]}", "lifecycle_policy.rules: empty"},
        {"{\"rules\":[" LC_RULE(1, LC_UNTAGGED_14) "],\"version\":1}",
         "lifecycle_policy.version: unknown key"},
        {"{\"rules\":[7]}", "lifecycle_policy.rules[0]: must be an object"},
        {"{\"rules\":[{\"selection\":{" LC_UNTAGGED_14 "},\"action\":{\"type\":\"expire\"}}]}",
         "lifecycle_policy.rules[0].rulePriority: missing"},
        {"{\"rules\":[" LC_RULE(0, LC_UNTAGGED_14) "]}",
         "lifecycle_policy.rules[0].rulePriority: must be a whole number from 1"},
        {"{\"rules\":[" LC_RULE(1.5, LC_UNTAGGED_14) "]}",
         "lifecycle_policy.rules[0].rulePriority: must be a whole number from 1"},
        {"{\"rules\":[{\"rulePriority\":1,\"action\":{\"type\":\"expire\"}}]}",
         "lifecycle_policy.rules[0].selection: missing"},
        {"{\"rules\":[{\"rulePriority\":1,\"selection\":{" LC_UNTAGGED_14 "}}]}",
         "lifecycle_policy.rules[0].action: missing"},
        {"{\"rules\":[{\"rulePriority\":1,\"description\":2,\"selection\":{" LC_UNTAGGED_14
         "},\"action\":{\"type\":\"expire\"}}]}",
         "lifecycle_policy.rules[0].description: must be a string"},
        {"{\"rules\":[{\"rulePriority\":1,\"selection\":{" LC_UNTAGGED_14
         "},\"action\":{\"type\":\"transition\"}}]}",
         "lifecycle_policy.rules[0].action.type: \"transition\" is not supported"},
        {"{\"rules\":[{\"rulePriority\":1,\"selection\":{" LC_UNTAGGED_14
         "},\"action\":{\"type\":\"expire\",\"targetStorageClass\":\"archive\"}}]}",
         "lifecycle_policy.rules[0].action.targetStorageClass: unknown key"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"all\",\"countType\":\"imageCountMoreThan\","
                                   "\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagStatus: \"all\" must be tagged, untagged or any"},
        {"{\"rules\":[" LC_RULE(1, "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagStatus: missing"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"countType\":\"imageCountMoreThan\","
                                   "\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection: tagStatus \"tagged\" needs tagPrefixList or "
         "tagPatternList"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPrefixList\":[\"v\"],"
                                   "\"tagPatternList\":[\"v*\"],\"countType\":"
                                   "\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPatternList: not with tagPrefixList"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"untagged\",\"tagPrefixList\":[\"v\"],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPrefixList: only with tagStatus \"tagged\""},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"tagPatternList\":[\"v*\"],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPatternList: only with tagStatus \"tagged\""},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPrefixList\":[],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPrefixList: must not be empty"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPrefixList\":[\"v\",\"\"],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPrefixList[1]: must not be empty"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPatternList\":[3],"
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPatternList[0]: must be a string"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPatternList\":\"v*\","
                                   "\"countType\":\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPatternList: must be a list of strings"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"tagged\",\"tagPatternList\":"
                                   "[\"*test*1*2*3\",\"test*1*2*3*4*5*6\"],\"countType\":"
                                   "\"imageCountMoreThan\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.tagPatternList[1]: \"test*1*2*3*4*5*6\" has more "
         "than 4 wildcards"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"sinceImageTransitioned\","
                                   "\"countUnit\":\"days\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.countType: \"sinceImageTransitioned\" must be"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.countType: missing"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"sinceImagePushed\","
                                   "\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.countUnit: missing"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"sinceImagePulled\","
                                   "\"countUnit\":\"hours\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.countUnit: \"hours\" must be \"days\""},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
                                   "\"countUnit\":\"days\",\"countNumber\":1") "]}",
         "lifecycle_policy.rules[0].selection.countUnit: not with countType "
         "\"imageCountMoreThan\""},
        {"{\"rules\":[" LC_RULE(1,
                                "\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\"") "]}",
         "lifecycle_policy.rules[0].selection.countNumber: missing"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
                                   "\"countNumber\":0") "]}",
         "lifecycle_policy.rules[0].selection.countNumber: must be a whole number of at least 1"},
        {"{\"rules\":[" LC_RULE(1, "\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\","
                                   "\"countNumber\":\"5\"") "]}",
         "lifecycle_policy.rules[0].selection.countNumber: must be a whole number of at least 1"},
        {"{\"rules\":[" LC_RULE(1, LC_UNTAGGED_14 ",\"storageClass\":\"standard\"") "]}",
         "lifecycle_policy.rules[0].selection.storageClass: unknown key"},
        {"{\"rules\":[" LC_RULE(2, LC_UNTAGGED_14) "," LC_RULE(2, LC_PROD_KEEP_3) "]}",
         "lifecycle_policy.rules[1].rulePriority: 2 is already the priority of rules[0]"},
        {"{\"rules\":[" LC_RULE(1, LC_UNTAGGED_14) "," LC_RULE(2, LC_UNTAGGED_14) "]}",
         "lifecycle_policy.rules[1].selection.tagStatus: only one rule may select untagged"},
        {"{\"rules\":[" LC_RULE(1, LC_ANY_PULLED_30) "," LC_RULE(2, LC_ANY_PULLED_30) "]}",
         "lifecycle_policy.rules[1].selection.tagStatus: only one rule may have tagStatus \"any\""},
        {"{\"rules\":[" LC_RULE(3, LC_ANY_PULLED_30) "," LC_RULE(4, LC_PROD_KEEP_3) "]}",
         "lifecycle_policy.rules[0].rulePriority: the rule with tagStatus \"any\" must have the "
         "highest rulePriority"},
    };
    char json[2048];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json), "{\"lifecycle_policy\":%s,%s}", cases[i].policy, ok_rules);
        expect_only(json, cases[i].want);
    }
}

/* Inside a rule the path starts at the rule; inside a string it goes on into the text. */
Test(config_errors, lifecycle_policy_paths)
{
    expect_only("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"},{\"prefix\":\"b\","
                "\"upstream\":\"https://b.io\",\"lifecycle_policy\":{\"rules\":[" LC_RULE(
                    1, LC_UNTAGGED_14) "," LC_RULE(2, "\"tagStatus\":\"any\",\"countType\":"
                                                      "\"sinceImagePushed\",\"countUnit\":"
                                                      "\"weeks\",\"countNumber\":2") "]}}]}",
                "rules[1].lifecycle_policy.rules[1].selection.countUnit: \"weeks\" must be "
                "\"days\"");
    expect_only(
        "{\"lifecycle_policy\":\"{\\\"rules\\\":[{\\\"rulePriority\\\":1,"
        "\\\"selection\\\":{\\\"tagStatus\\\":\\\"none\\\",\\\"countType\\\":"
        "\\\"imageCountMoreThan\\\",\\\"countNumber\\\":1},\\\"action\\\":{\\\"type\\\":"
        "\\\"expire\\\"}}]}\",\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.io\"}]}",
        "lifecycle_policy.rules[0].selection.tagStatus: \"none\" must be tagged, untagged "
        "or any");
}

/* Each problem on a line of its own, named by where the config came from. */
Test(config_errors, problems_print)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    cr_assert_not_null(f);
    config_problems_print(f, "/etc/p.json",
                          "listen: not an address\nrules[1].upstream: not a URL\n");
    config_problems_print(f, "x", "no newline at the end");
    config_problems_print(f, "x", "");
    config_problems_print(f, "x", NULL);
    fclose(f);
    cr_assert_str_eq(out, "/etc/p.json: listen: not an address\n"
                          "/etc/p.json: rules[1].upstream: not a URL\n"
                          "x: no newline at the end\n");
    free(out);
}
