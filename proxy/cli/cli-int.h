/* Inside proxy/cli/ only: the command's state and the calls cli.c and cli_warm.c share. */
#ifndef CLI_INT_H
#define CLI_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* One command's run: its name, the admin socket, the output format, the two curl handles. */
struct cli {
    const char *cl_cmd;      /* "list", "warm", ... for messages */
    char *cl_sock;           /* the admin socket's path */
    int cl_json;             /* --output json */
    CURL *cl_admin;          /* to the admin socket */
    CURL *cl_proxy;          /* to the daemon's HTTP listener (warm, refresh) */
    char cl_proxy_base[300]; /* "http://127.0.0.1:5000", from /admin/v1/info */
};

/*
 * <method> ("GET", "POST") <pathq> ("/admin/v1/tags?repo=...") on the admin socket. The
 * answer's JSON into *out (caller decrefs) when it is a 2xx. Otherwise one line on stderr
 * (the daemon unreachable, or its {"error"}) and -1.
 */
int cli_admin(struct cli *c, const char *method, const char *pathq, json_t **out);

/* <s> percent-encoded for a query string (caller frees). */
char *cli_escape(struct cli *c, const char *s);

/* Set cl_proxy_base from /admin/v1/info (0.0.0.0 becomes 127.0.0.1, :: ::1). 0, or -1 told. */
int cli_proxy_base(struct cli *c);

/* A Docker-Content-Digest header line (<data>, <n> bytes, as curl hands it) into <out>
 * (<size> bytes); anything else leaves <out> as it was. */
void cli_digest_header(const char *data, size_t n, char *out, size_t size);

/* "12.3 MiB" into <buf>. */
void cli_bytes(int64_t n, char *buf, size_t size);

/* The Accept header a pull sends: every manifest type (OCI index and manifest, Docker v2). */
extern const char *const cli_accept_header;

/* The warm command (cli_warm.c): <argc>/<argv> are what remains after the options. */
struct cli_warm_opts {
    const char *cw_file;     /* --file: one image per line */
    const char *cw_platform; /* --platform os/arch[/variant], or NULL for every platform */
};
int cli_warm(struct cli *c, const struct cli_warm_opts *o, int argc, char **argv);

#endif
