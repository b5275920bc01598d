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
    char mr_media_type[256]; /* "" when absent */
    long long mr_size;       /* -1 when absent */
};

struct manifest_info {
    char mi_media_type[256];      /* the body's mediaType field, "" when absent */
    int mi_is_index;              /* OCI index or Docker manifest list */
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

/* The Accept header the proxy sends upstream for manifests: every type it reads. Tags are
 * always resolved with it, so what a tag means never depends on the first client's Accept. */
extern const char *const manifest_accept_all;

/* 1 when <media_type> is an OCI index or a Docker manifest list. */
int manifest_is_index_type(const char *media_type);

/*
 * Does a client whose joined Accept header values are <accept> take <media_type>? 1 when a
 * listed media range covers it (parameters ignored, "*" "/" "*" covers all), 0 when the
 * client names manifest types but not this one, -1 when it names no manifest type at all
 * (no Accept, or only "*" "/" "*" and the like: such a client takes what the tag is).
 */
int manifest_accepts(const char *accept, const char *media_type);

/*
 * In index <body> (<len> bytes), the first child whose platform is <os>/<arch>: 1 with its
 * digest and media type ("" when the descriptor has none) copied out, 0 when no child
 * matches, -1 when <body> is not an index.
 */
int manifest_pick_platform(const char *body, size_t len, const char *os, const char *arch,
                           char *digest, size_t dsize, char *media_type, size_t mtsize);

#endif
