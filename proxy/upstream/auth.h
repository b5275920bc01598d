/* Registry token auth: WWW-Authenticate challenges, token responses, a token cache. */
#ifndef PROXY_AUTH_H
#define PROXY_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum auth_scheme { AUTH_NONE = 0, AUTH_BEARER, AUTH_BASIC };

/* One parsed challenge. Strings are NUL-terminated, truncated values are an error. */
struct auth_challenge {
    enum auth_scheme ac_scheme;
    char ac_realm[1024];  /* Bearer: token endpoint URL; Basic: realm name (may be "") */
    char ac_service[256]; /* "" when absent */
    char ac_scope[1024];  /* "" when absent; may hold several space-separated scopes */
    char ac_error[64];    /* "insufficient_scope", "invalid_token", or "" */
};

/*
 * Parse the value of a WWW-Authenticate header (RFC 7235 auth-params; quoted-string values
 * with backslash escapes, or tokens; parameter names case-insensitive; scheme
 * case-insensitive). Returns 0 and fills <out>, or -1 when <hdr> is not a Bearer or Basic
 * challenge, a Bearer challenge has no realm, or a value does not fit.
 */
int auth_parse_challenge(const char *hdr, struct auth_challenge *out);

/*
 * Parse a token endpoint's JSON body (<len> bytes, at most 64 KiB): "token" or
 * "access_token" (the first non-empty), "expires_in" (seconds, default 60, minimum 60 as
 * docker does), "issued_at" (RFC 3339, optional: when present and parseable the expiry counts
 * from it, else from <now>). Returns 0 with *token (caller frees) and *expires_at (Unix s),
 * or -1 on a malformed body.
 */
int auth_parse_token_response(const char *body, size_t len, int64_t now, char **token,
                              int64_t *expires_at);

/* "repository:<name>:pull" into <buf>; returns -1 if it does not fit. */
int auth_pull_scope(const char *name, char *buf, size_t size);

/*
 * Tokens cached per (upstream, scope), until 10 seconds before their expiry. At most
 * AUTH_CACHE_MAX entries; when full, expired entries go first, then the soonest to expire.
 */
#define AUTH_CACHE_MAX 4096
struct auth_cache;

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c); /* accepts NULL */

/* The token for (<upstream>, <scope>) still good at <now>, or NULL. Borrowed: valid until the
 * next put or free. */
const char *auth_cache_get(struct auth_cache *c, const char *upstream, const char *scope,
                           int64_t now);

/* Store a copy of <token> for (<upstream>, <scope>), replacing any previous one. */
void auth_cache_put(struct auth_cache *c, const char *upstream, const char *scope,
                    const char *token, int64_t expires_at, int64_t now);

/* Drop the token for (<upstream>, <scope>) (upstream said it is invalid). */
void auth_cache_drop(struct auth_cache *c, const char *upstream, const char *scope);

#endif
