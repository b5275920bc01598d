/*
 * Access: may this repository be served this digest, and may a new fill start. Pure
 * functions of what the catalog and the fills say; the api gathers the facts and acts.
 *
 * A digest is not a capability: content stored for one repository is served under another
 * only once upstream confirms (HEAD) that this repository holds it. What a repository was
 * fetched for, or upstream confirmed, it holds ("known").
 */
#ifndef POLICY_ACCESS_H
#define POLICY_ACCESS_H

#include <stdint.h>

struct access_facts {
    int af_known;     /* this repository is known to hold the digest */
    int af_stored;    /* the digest's file is in the store */
    int af_indexed;   /* manifests: the digest is indexed as a manifest (for any repository) */
    int af_filling;   /* blobs: a fill of the digest is in flight (fetching or committing) */
    int af_fill_ours; /* ... and it was started for this repository */
    int af_head;      /* the client asked HEAD */
};

enum access_decision {
    ACCESS_SERVE = 0, /* from the store, or by following the fill in flight */
    ACCESS_CONFIRM,   /* here for another repository: ask upstream (HEAD) first */
    ACCESS_FETCH,     /* not here: fetch it upstream for this repository */
    ACCESS_ASK,       /* a HEAD of a blob not here: answer with upstream's HEAD */
};

/* A manifest by digest: SERVE when known, CONFIRM when stored and indexed, else FETCH. */
enum access_decision access_manifest(const struct access_facts *f);

/*
 * A blob: stored or filling → SERVE when known or when a fill for this repository is in flight
 * (still fetching, or stored and not yet recorded: the commit's window), else CONFIRM;
 * neither → ASK for a HEAD, FETCH for a GET.
 */
enum access_decision access_blob(const struct access_facts *f);

/* 1 when a new fill may start with <free_bytes> free (-1: unknown) and <min_free> required. */
int access_disk_admits(int64_t free_bytes, int64_t min_free);

#endif
