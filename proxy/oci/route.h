/* Parses a request URI of the OCI distribution API into its parts, rejecting bad input. */
#ifndef PROXY_ROUTE_H
#define PROXY_ROUTE_H

#include "oci.h"

#define ROUTE_URI_MAX 2048
#define ROUTE_REF_MAX 140 /* "sha512:" + 128 hex, or a tag of at most 128 */
#define ROUTE_NS_MAX 256

enum route_kind {
    ROUTE_BASE = 0,  /* /v2/ or /v2 */
    ROUTE_MANIFEST,  /* /v2/<name>/manifests/<reference> */
    ROUTE_BLOB,      /* /v2/<name>/blobs/<digest> */
    ROUTE_TAGS,      /* /v2/<name>/tags/list */
    ROUTE_REFERRERS, /* /v2/<name>/referrers/<digest> */
};

struct route_req {
    enum route_kind rq_kind;
    char rq_name[OCI_NAME_MAX + 1];  /* the client's repository name, prefix included */
    char rq_ref[ROUTE_REF_MAX + 1];  /* tag or digest; empty for BASE and TAGS */
    int rq_ref_is_digest;            /* rq_ref is a digest (sha256:/sha512:) */
    char rq_ns[ROUTE_NS_MAX + 1];    /* ?ns= lowercased, "" when absent */
    int rq_n;                        /* ?n= for tags/list, -1 when absent */
    char rq_last[ROUTE_REF_MAX + 1]; /* ?last= for tags/list, "" when absent */
    char rq_artifact_type[256];      /* ?artifactType= for referrers, "" when absent */
};

/*
 * Parse <uri> (path and query as received, e.g. "/v2/library/nginx/manifests/latest?ns=docker.io").
 * Returns 0 and fills <out>; or -1 with <*err> the OCI error to answer and <*why> a static
 * human message. Rules:
 *  - the path must start with /v2; any '%' in the path (encoded slash, NUL, dot), a NUL, a
 *    '\\', an empty segment ("//"), "." or ".." segments, or a URI longer than ROUTE_URI_MAX
 *    → NAME_INVALID;
 *  - a path that is none of the forms above (e.g. /v2/x/uploads/) → NOT_FOUND;
 *  - the name must satisfy oci_name_valid → NAME_INVALID;
 *  - manifests: the reference is a digest (strict, oci_digest_parse) or a tag
 *    (oci_tag_valid); something with a ':' that is not a valid digest → DIGEST_INVALID; a bad
 *    tag → MANIFEST_INVALID ("invalid tag");
 *  - blobs and referrers: the reference must be a valid digest → DIGEST_INVALID;
 *  - query: ns (host-name characters and ':' only, lowercased, at most ROUTE_NS_MAX, else
 *    NAME_INVALID), n (0..10000, else PAGINATION_NUMBER_INVALID), last (a tag, else
 *    PAGINATION_NUMBER_INVALID), artifactType (kept as given, at most 255 bytes);
 *    percent-decoding applies to query values only; unknown query keys are ignored.
 */
int route_parse(const char *uri, struct route_req *out, enum oci_error *err, const char **why);

#endif
