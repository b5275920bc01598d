/*
 * AWS credentials and the pure parsers of the credential chain (proxy/ecr/creds.c does the
 * I/O): the shared credentials and config files, the JSON of the container-credentials and
 * instance-metadata endpoints, STS's AssumeRoleWithWebIdentity XML, ISO 8601 times. No I/O,
 * no clock, nothing logged; error messages never hold a secret.
 */
#ifndef AWS_CREDS_H
#define AWS_CREDS_H

#include <stddef.h>
#include <stdint.h>

#define AWS_ACCESS_KEY_MAX 128
#define AWS_SECRET_MAX 128
#define AWS_TOKEN_MAX 4096

struct aws_credentials {
    char ac_access_key[AWS_ACCESS_KEY_MAX];
    char ac_secret[AWS_SECRET_MAX];
    char ac_token[AWS_TOKEN_MAX]; /* "" for long-term keys */
    int64_t ac_expires_at;        /* UTC seconds; 0: does not expire */
    char ac_source[24]; /* "environment", "profile", "web-identity", "container", "imds" */
};

/*
 * The keys of profile <profile> in the text of a shared credentials file (<config_file> 0:
 * sections "[name]") or config file (1: "[profile name]", "[default]"):
 * aws_access_key_id, aws_secret_access_key, aws_session_token. 1 with <out> filled, 0 when the
 * profile or its keys are absent, -1 with *err (caller frees) when malformed.
 */
int aws_parse_shared_file(const char *text, const char *profile, int config_file,
                          struct aws_credentials *out, char **err);

/* 1 when <text> has a section for <profile> (as aws_parse_shared_file reads it), keys or not;
 * 0 when not or malformed. */
int aws_profile_exists(const char *text, const char *profile, int config_file);

/*
 * The first setting of profile <profile> in <text> (as aws_parse_shared_file reads it) that
 * asks for a credential provider other than static keys (role_arn, source_profile,
 * credential_process, sso_session, sso_start_url, web_identity_token_file, ...), as a static
 * string; NULL when there is none, or the profile is absent or the text malformed.
 */
const char *aws_profile_unsupported(const char *text, const char *profile, int config_file);

/*
 * The JSON that the container-credentials endpoint and IMDS's security-credentials/ROLE
 * answer: AccessKeyId, SecretAccessKey, Token, Expiration (ISO 8601; absent: no expiry). IMDS
 * also sends Code, which must then be "Success". 0, or -1 with *err (caller frees).
 */
int aws_parse_creds_json(const char *body, size_t len, struct aws_credentials *out, char **err);

/* STS AssumeRoleWithWebIdentity's XML answer (its Credentials element). 0 or -1 with *err;
 * an ErrorResponse gives its Code and Message in *err. */
int aws_parse_sts_web_identity(const char *body, size_t len, struct aws_credentials *out,
                               char **err);

/* "2026-12-01T15:04:05Z" (fractional seconds and "+00:00" accepted) → UTC seconds. 0 or -1. */
int aws_parse_iso8601(const char *s, int64_t *out);

#endif
