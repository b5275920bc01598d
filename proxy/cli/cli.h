/* The admin commands (list, warm, refresh, gc, rewrite): clients of the daemon's admin socket. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

/* 1 when <name> is one of the admin commands. */
int cli_is_command(const char *name);

/*
 * Run admin command <argv>[0] with its arguments (<argc> of them, the command included).
 * Returns the process's exit status: 0 done, 1 the operation failed (or the daemon could not
 * be reached), 2 bad usage or configuration.
 */
int cli_main(int argc, char **argv);

#endif
