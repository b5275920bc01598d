/* The OCI distribution grammar: repository names, tags, digests; and OCI error codes. */
#ifndef PROXY_OCI_H
#define PROXY_OCI_H

#include <stddef.h>

#define OCI_NAME_MAX 255
#define OCI_TAG_MAX 128

/* 1 when <s> (of <len> bytes) is a valid repository name (path components joined by '/'). */
int oci_name_valid(const char *s, size_t len);

/* 1 when <s> is a valid tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
int oci_tag_valid(const char *s, size_t len);

enum oci_digest_alg { OCI_DIGEST_NONE = 0, OCI_DIGEST_SHA256, OCI_DIGEST_SHA512 };

/*
 * Parse "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>" strictly. Returns the
 * algorithm, or OCI_DIGEST_NONE when <s> is not such a digest.
 */
enum oci_digest_alg oci_digest_parse(const char *s, size_t len);

/* The error codes of the distribution spec, each with its HTTP status. */
enum oci_error {
    OCI_ERR_BLOB_UNKNOWN = 0,
    OCI_ERR_BLOB_UPLOAD_UNKNOWN,
    OCI_ERR_DIGEST_INVALID,
    OCI_ERR_MANIFEST_BLOB_UNKNOWN,
    OCI_ERR_MANIFEST_INVALID,
    OCI_ERR_MANIFEST_TOO_BIG, /* MANIFEST_INVALID with 413: over 4 MiB */
    OCI_ERR_MANIFEST_UNKNOWN,
    OCI_ERR_NAME_INVALID,
    OCI_ERR_NAME_UNKNOWN,
    OCI_ERR_SIZE_INVALID,
    OCI_ERR_UNAUTHORIZED,
    OCI_ERR_DENIED,
    OCI_ERR_UNSUPPORTED,
    OCI_ERR_TOOMANYREQUESTS,
    OCI_ERR_RANGE_INVALID,
    OCI_ERR_PAGINATION_NUMBER_INVALID,
    OCI_ERR_UPSTREAM,    /* upstream failed: 502, code UNKNOWN */
    OCI_ERR_UNAVAILABLE, /* shutting down or overloaded: 503, code UNAVAILABLE */
    OCI_ERR_NOT_FOUND,   /* a path outside the API: 404, code NOT_FOUND */
    OCI_ERR_METHOD,      /* 405, code UNSUPPORTED */
};

/* The spec's code string ("NAME_INVALID") of <e>. */
const char *oci_error_code(enum oci_error e);
/* The HTTP status that goes with <e>. */
int oci_error_status(enum oci_error e);
/* A fresh JSON body {"errors":[{"code","message","detail"}]}; <detail> may be NULL. Caller frees.
 */
char *oci_error_body(enum oci_error e, const char *message, const char *detail);

#endif
