/* Reads what an image manifest or index references: layers, config, child manifests, subject. */
#ifndef PROXY_MANIFEST_H
#define PROXY_MANIFEST_H

#include <stddef.h>

#define MANIFEST_MAX_BYTES (4 * 1024 * 1024)

enum manifest_ref_kind {
    MANIFEST_REF_CONFIG = 0,
    MANIFEST_REF_LAYER,
    MANIFEST_REF_MANIFEST, /* a child of an index / manifest list */
    MANIFEST_REF_SUBJECT,  /* OCI 1.1 subject (referrers) */
    MANIFEST_REF_BLOB,     /* artifact manifest "blobs" */
};

struct manifest_ref {
    enum manifest_ref_kind mr_kind;
    char mr_digest[140];
    char mr_media_type[256];  /* "" when absent */
    long long mr_size;        /* -1 when absent */
};

struct manifest_info {
    char mi_media_type[256];  /* the body's mediaType field, "" when absent */
    int mi_is_index;          /* OCI index or Docker manifest list */
    struct manifest_ref *mi_refs; /* owned; free with manifest_info_free */
    size_t mi_nrefs;
};

/*
 * Parse the manifest <body> of <len> bytes (at most MANIFEST_MAX_BYTES) served with
 * <content_type> (may be NULL). Knows Docker schema 2 manifests and manifest lists, OCI
 * manifests and indexes, OCI artifact manifests; collects config, layers, manifests, blobs
 * and subject descriptors whose digest passes oci_digest_parse (others are skipped: a
 * foreign layer with a bad digest is not our concern). Docker schema 1 and unknown types
 * parse with no refs. Returns 0 and fills <out>, or -1 with *err (static string) when the
 * body is not a JSON object.
 */
int manifest_parse(const char *body, size_t len, const char *content_type,
                   struct manifest_info *out, const char **err);

void manifest_info_free(struct manifest_info *mi);

/* The Accept header the proxy sends upstream for manifests when the client sent none. */
extern const char *const manifest_accept_all;

#endif
