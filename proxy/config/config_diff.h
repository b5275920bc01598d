/* What a configuration read again changes: the keys a reload applies, and those only a restart
 * can (SIGHUP, docs/internals/reload.md). */
#ifndef PROXY_CONFIG_DIFF_H
#define PROXY_CONFIG_DIFF_H

struct config;

/*
 * The keys only a restart applies that differ between <running> (in force) and <next> (read
 * again): listen, data_dir, admin_socket, max_connections, max_connections_per_client,
 * header_timeout and the "ecr" block. One line per key, newline-separated, each naming the key
 * and the value kept: "listen: a change needs a restart; keeping 127.0.0.1:5000". Returns NULL
 * when none differs, else a string the caller frees. Secrets are never compared or printed
 * here (the ECR block holds none).
 */
char *config_diff_restart(const struct config *running, const struct config *next);

/*
 * The keys a reload applies that differ between <running> and <next>, space-separated in a
 * fixed order ("rules credentials refresh_interval"), "" when none; the caller frees it. Rule
 * changes are "rules"; a rule whose username, password or ca_file changed adds "credentials"
 * (never a value).
 */
char *config_diff_changed(const struct config *running, const struct config *next);

/*
 * Set every restart-only key of <next> back to <running>'s value (strings copied: <next> still
 * owns all of its own), so that <next> tells what is in force. The "ecr" block is left as
 * <next> read it: the ECR tier keeps the block it was created with (it borrows it, and
 * every configuration lives until exit).
 */
void config_diff_keep(struct config *next, const struct config *running);

#endif
