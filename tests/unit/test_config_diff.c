/* Unit tests for proxy/config/config_diff.c: what a reload applies, what needs a restart. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config_diff.h"
#include "config_file.h"

#define RULE_A "{\"prefix\":\"a\",\"upstream\":\"https://a.example\"}"
#define RULE_B "{\"prefix\":\"b\",\"upstream\":\"https://b.example\"}"

static struct config *load(const char *json)
{
    char *errs = NULL;
    struct config *cfg = config_load_string(json, &errs);

    cr_assert_not_null(cfg, "%s: %s", json, errs ? errs : "");
    return cfg;
}

Test(config_diff, identical_files_change_nothing)
{
    const char *json = "{\"listen\":\"127.0.0.1:5000\",\"rules\":[" RULE_A "]}";
    struct config *a = load(json), *b = load(json);
    char *changed = config_diff_changed(a, b);

    cr_assert_null(config_diff_restart(a, b));
    cr_assert_str_eq(changed, "");
    free(changed);
    config_free(a);
    config_free(b);
}

Test(config_diff, reloadable_keys_are_named)
{
    struct config *a = load("{\"refresh_interval\":\"1h\",\"rules\":[" RULE_A "]}");
    struct config *b =
        load("{\"refresh_interval\":\"60s\",\"stale_if_error\":\"1d\",\"rules\":[" RULE_A "," RULE_B
             "]}");
    char *changed = config_diff_changed(a, b);

    /* The rules inherit refresh_interval, so they changed too. */
    cr_assert_str_eq(changed, "rules refresh_interval stale_if_error");
    cr_assert_null(config_diff_restart(a, b));
    free(changed);
    config_free(a);
    config_free(b);
}

Test(config_diff, credentials_are_named_never_shown)
{
    struct config *a = load("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.example\","
                            "\"credentials\":{\"username\":\"u\",\"password\":\"hunter1\"}}]}");
    struct config *b = load("{\"rules\":[{\"prefix\":\"a\",\"upstream\":\"https://a.example\","
                            "\"credentials\":{\"username\":\"u\",\"password\":\"hunter2\"}}]}");
    char *changed = config_diff_changed(a, b);

    cr_assert_str_eq(changed, "credentials");
    cr_assert_null(strstr(changed, "hunter"));
    free(changed);
    config_free(a);
    config_free(b);
}

Test(config_diff, restart_keys_one_line_each_with_the_value_kept)
{
    struct config *a =
        load("{\"listen\":\"127.0.0.1:5000\",\"data_dir\":\"/d1\","
             "\"max_connections\":100,\"header_timeout\":\"10s\",\"rules\":[" RULE_A "]}");
    struct config *b =
        load("{\"listen\":\"127.0.0.1:6000\",\"data_dir\":\"/d2\","
             "\"max_connections\":200,\"header_timeout\":\"20s\",\"rules\":[" RULE_A "]}");
    char *r = config_diff_restart(a, b);

    cr_assert_not_null(r);
    cr_assert_str_eq(r, "listen: a change needs a restart; keeping 127.0.0.1:5000\n"
                        "data_dir: a change needs a restart; keeping /d1\n"
                        "max_connections: a change needs a restart; keeping 100\n"
                        "header_timeout: a change needs a restart; keeping 10s");
    free(r);
    config_diff_keep(b, a);
    cr_assert_str_eq(b->cfg_listen, "127.0.0.1:5000");
    cr_assert_str_eq(b->cfg_data_dir, "/d1");
    cr_assert_eq(b->cfg_max_connections, 100);
    cr_assert_eq(b->cfg_header_timeout, 10);
    cr_assert_null(config_diff_restart(a, b), "after keep, nothing but the ecr block may differ");
    config_free(a);
    config_free(b);
}

Test(config_diff, per_client_default_is_spelled_out)
{
    struct config *a = load("{\"rules\":[" RULE_A "]}");
    struct config *b = load("{\"max_connections_per_client\":8,\"rules\":[" RULE_A "]}");
    char *r = config_diff_restart(a, b);

    cr_assert_str_eq(r, "max_connections_per_client: a change needs a restart; keeping the "
                        "default (a quarter of max_connections)");
    free(r);
    config_free(a);
    config_free(b);
}

Test(config_diff, ecr_block_needs_a_restart)
{
    struct config *a = load("{\"rules\":[" RULE_A "]}");
    struct config *b = load("{\"ecr\":{\"region\":\"eu-west-1\"},\"rules\":[" RULE_A "]}");
    struct config *c = load("{\"ecr\":{\"region\":\"eu-west-2\"},\"rules\":[" RULE_A "]}");
    char *r = config_diff_restart(a, b);

    cr_assert_str_eq(r, "ecr: a change needs a restart; keeping no ECR tier");
    free(r);
    r = config_diff_restart(b, c);
    cr_assert_str_eq(r, "ecr: a change needs a restart; keeping the block the proxy started with");
    free(r);
    cr_assert_null(config_diff_restart(c, c));
    config_free(a);
    config_free(b);
    config_free(c);
}

Test(config_diff, admin_socket_default_names_the_path)
{
    struct config *a = load("{\"data_dir\":\"/d\",\"rules\":[" RULE_A "]}");
    struct config *b = load("{\"data_dir\":\"/d\",\"rules\":[" RULE_A "]}");
    char *r;

    b->cfg_admin_socket = strdup("/run/x.sock"); /* the key's parser is another change's */
    r = config_diff_restart(a, b);
    cr_assert_str_eq(r, "admin_socket: a change needs a restart; keeping /d/admin.sock");
    free(r);
    config_diff_keep(b, a);
    cr_assert_null(b->cfg_admin_socket);
    config_free(a);
    config_free(b);
}
