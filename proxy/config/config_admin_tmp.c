/*
 * TEMPORARY (branch h-admin): config_admin_socket_path until the config parser's branch
 * brings its own; the lead drops this file at the merge.
 */
#include "config.h"

#include "config_file.h"

#include "util.h"

char *config_admin_socket_path(const struct config *cfg)
{
    if (cfg->cfg_admin_socket != NULL && cfg->cfg_admin_socket[0] != '\0')
        return xstrdup(cfg->cfg_admin_socket);
    return xasprintf("%s/admin.sock", cfg->cfg_data_dir);
}
