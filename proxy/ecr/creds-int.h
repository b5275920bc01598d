/* The credential chain's pieces shared by creds.c and creds_imds.c (the IMDSv2 client). */
#ifndef ECR_CREDS_INT_H
#define ECR_CREDS_INT_H

#include <stddef.h>
#include <stdint.h>

struct creds;
struct imds;
struct imds_op;
struct transport;
struct transport_outcome;
struct event_base;

/* ---- creds.c, for creds_imds.c ---------------------------------------------------------- */

/* The variable <name> through co_getenv; NULL when unset or empty. */
const char *creds_env(const struct creds *c, const char *name);
/* The clock's now (co_clock). */
int64_t creds_now(const struct creds *c);
struct transport *creds_transport(const struct creds *c);
struct event_base *creds_base(const struct creds *c);
struct imds *creds_imds(const struct creds *c);
/* Why <o> failed, into <out>, URLs shown with their host only (a container credentials path
 * is a capability; a role name no business of the log). */
void creds_reason(const struct transport_outcome *o, char *out, size_t size);

/* ---- creds_local.c ---------------------------------------------------------------------- */

struct aws_credentials;

/* 1 with <out> from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN,
 * AWS_CREDENTIAL_EXPIRATION), 0 when the two keys are not both set (one alone is logged), -1
 * with *err (caller frees). */
int creds_from_env(struct creds *c, struct aws_credentials *out, char **err);

/*
 * 1 with <out> from profile AWS_PROFILE ("default") in the shared credentials file, then the
 * config file: static keys only, a profile that asks for more (role_arn, sso_session,
 * credential_process, ...) is logged and gives nothing. 0 when the files give none, -1 with
 * *err (caller frees): a malformed file, or AWS_PROFILE naming a profile that neither has.
 */
int creds_from_profile(struct creds *c, struct aws_credentials *out, char **err);

/* The one-line token in file <path> (<what> names it in errors), trailing blanks dropped.
 * Caller frees it with creds_wipe_free; NULL with *err (caller frees). */
char *creds_read_token_file(const char *path, const char *what, char **err);

/* Wipe and free a NUL-terminated secret; accepts NULL. */
void creds_wipe_free(char *s);

/* ---- creds_imds.c ----------------------------------------------------------------------- */

/*
 * An IMDSv2 client on <base_url> ("http://169.254.169.254", copied) for <c>: a session token
 * (PUT /latest/api/token) fetched when none is held or it has expired, and again once when a
 * GET is answered 401; never a request without a token (IMDSv1). <disabled>: every GET fails.
 */
struct imds *imds_new(struct creds *c, const char *base_url, int disabled);
/* Cancel every op (no callbacks) and free; accepts NULL. */
void imds_free(struct imds *m);

/*
 * The end of a GET: <ok> 1 with the 2xx body (<len> bytes, NUL-terminated; borrowed for the
 * call), or 0 with <err> (no secret in it). Called on the loop, never from inside imds_get;
 * the op is freed after it returns.
 */
typedef void (*imds_done_fn)(void *arg, int ok, const char *body, size_t len, const char *err);

/* GET <path> ("/latest/meta-data/...") with the token. Returns the op, owned by <m> until
 * <cb> returns or imds_cancel. */
struct imds_op *imds_get(struct imds *m, const char *path, imds_done_fn cb, void *arg);
/* Stop <op> now, no callback; accepts NULL. Not from inside its own callback. */
void imds_cancel(struct imds_op *op);

#endif
