/*
 * AWS Signature Version 4 (header form, AWS4-HMAC-SHA256): the canonical request, the string
 * to sign, the signature and the Authorization value for one request. Pure functions: no I/O
 * but the payload hash of a file range, no clock (the time is a parameter), no logging; a
 * secret or a key derived from it never leaves these functions but as a signature.
 * docs/internals/sigv4.md says how the upstream transport re-signs every attempt.
 */
#ifndef AWS_SIGV4_H
#define AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_KEY_LEN 32      /* the derived signing key, raw bytes */
#define SIGV4_HEX_LEN 64      /* a SHA-256 or a signature in lowercase hex */
#define SIGV4_AMZ_DATE_LEN 16 /* "YYYYMMDDTHHMMSSZ" */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Caps on what a request may carry; more is an error, never a truncation. */
#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_NAME 128       /* a header name, a method */
#define SIGV4_MAX_VALUE 8192     /* a header value (a session token is ~1-2 KiB) */
#define SIGV4_MAX_PATH 8192      /* the path, and the query, each */
#define SIGV4_MAX_SCOPE_PART 128 /* a region, a service */

enum sigv4_flags {
    SIGV4_NONE = 0,
    /* S3: the path is used as sent, neither normalized nor encoded again (only bytes outside
     * the unreserved set, '/' and '%XX' escapes are encoded). */
    SIGV4_S3_PATH = 1 << 0,
    /* Sign and add X-Amz-Content-Sha256: <sr_payload_hash> (S3 wants it). */
    SIGV4_CONTENT_SHA256 = 1 << 1,
};

/* One header to sign: borrowed strings. */
struct sigv4_header {
    const char *sh_name;
    const char *sh_value;
};

/*
 * The request to sign; every pointer is borrowed for the call. Every header in sr_headers is
 * signed, Host among them (required: the signer does not add it, and it must be what the
 * transport sends, "host:port" for a port not the scheme's default); the
 * signer's own headers (x-amz-date, x-amz-security-token, x-amz-content-sha256) and
 * Authorization must not be.
 */
struct sigv4_request {
    const char *sr_method;                 /* "GET", "POST", ... */
    const char *sr_path;                   /* as sent on the wire, without the query: for
                                              non-S3 services it is normalized (dot segments
                                              removed, "//" collapsed) and encoded once
                                              more, per segment, as AWS wants */
    const char *sr_query;                  /* raw, without '?'; NULL or "" for none */
    const struct sigv4_header *sr_headers; /* sr_nheaders of them, in the order sent */
    size_t sr_nheaders;
    const char *sr_payload_hash; /* from sigv4_payload_hash(_fd), or
                                    SIGV4_UNSIGNED_PAYLOAD; NULL: an empty body */
    unsigned sr_flags;           /* enum sigv4_flags */
};

/* Who signs; borrowed. */
struct sigv4_credentials {
    const char *cr_access_key;
    const char *cr_secret;               /* may be NULL when cr_signing_key is given */
    const char *cr_session_token;        /* NULL or "": none; else signed and added as
                                            X-Amz-Security-Token */
    const unsigned char *cr_signing_key; /* SIGV4_KEY_LEN bytes from sigv4_signing_key for
                                            this scope's day, region and service, which the
                                            caller may cache; NULL: derived from cr_secret */
};

/* Where and when; borrowed. */
struct sigv4_scope {
    const char *sc_region;   /* "us-east-1" */
    const char *sc_service;  /* "ecr", "s3", ... */
    const char *sc_amz_date; /* "YYYYMMDDTHHMMSSZ"; NULL: from sc_time */
    time_t sc_time;          /* UTC seconds, used when sc_amz_date is NULL */
};

/* What sigv4_sign adds to the request, besides Authorization: up to three. */
#define SIGV4_MAX_ADDED 3

/*
 * A signed request. Owned by the caller, who releases it with sigv4_signed_free; every
 * string below is owned by it (sg_added's names are constants, its values point into it, so
 * the struct is not to be copied by value). Nothing in it is secret but sg_token.
 */
struct sigv4_signed {
    char *sg_canonical_request;
    char *sg_string_to_sign;
    char *sg_authorization;  /* the Authorization header's value */
    char *sg_signed_headers; /* "host;x-amz-date" */
    char sg_signature[SIGV4_HEX_LEN + 1];
    char sg_amz_date[SIGV4_AMZ_DATE_LEN + 1];
    /* X-Amz-Date, then X-Amz-Security-Token (with a session token), then
     * X-Amz-Content-Sha256 (SIGV4_CONTENT_SHA256): to send with Authorization. */
    struct sigv4_header sg_added[SIGV4_MAX_ADDED];
    size_t sg_nadded;
    char *sg_token; /* storage for the token's header value */
    char sg_content_sha256[SIGV4_HEX_LEN + 1];
};

/*
 * Sign <rq> as <cr> in <sc> into <out> (overwritten; caller-allocated). Returns 0, or -1 with
 * *err (caller frees; it never holds a secret) when an input is malformed or over a cap:
 * <out> is then empty, and sigv4_signed_free on it is harmless either way.
 */
int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_credentials *cr,
               const struct sigv4_scope *sc, struct sigv4_signed *out, char **err);

/* Free what <s> holds and zero it; accepts a zeroed or half-filled one. */
void sigv4_signed_free(struct sigv4_signed *s);

/*
 * The signing key for <secret> on <date8> ("YYYYMMDD"), <region>, <service> into <key>:
 * HMAC-SHA256 chained over "AWS4"<secret>, the date, region, service and "aws4_request".
 * Returns 0, or -1 with *err (caller frees) for a malformed date or empty part. The caller
 * owns <key> and should OPENSSL_cleanse it when it drops it.
 */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[SIGV4_KEY_LEN], char **err);

/* <t> (UTC seconds) as "YYYYMMDDTHHMMSSZ" into <out>. Returns 0, -1 if out of range. */
int sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1]);

/* The lowercase hex SHA-256 of <len> bytes at <data> (NULL when 0) into <out>. */
void sigv4_payload_hash(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1]);

/*
 * The same for <length> bytes of <fd> from <offset>, read with pread through a fixed buffer
 * (the file offset is not moved). Returns 0, or -1 with *err (caller frees) on a read error
 * or a file shorter than the range.
 */
int sigv4_payload_hash_fd(int fd, int64_t offset, int64_t length, char out[SIGV4_HEX_LEN + 1],
                          char **err);

#endif
