/*
 * The AWS credential chain, in the SDKs' order: the environment, the shared files, web
 * identity (STS AssumeRoleWithWebIdentity; IRSA), container credentials (ECS, EKS Pod
 * Identity), IMDSv2. Runs on the daemon's loop through the upstream transport; credentials
 * that expire are renewed ahead of time (minutes, not seconds) while the current ones keep
 * serving, so no request waits on a renewal. Failures are logged and counted, never a secret.
 * The metadata endpoints are reachable by these requests only (transport.h).
 */
#ifndef ECR_CREDS_H
#define ECR_CREDS_H

#include <stdint.h>

#include "aws_creds.h"

struct event_base;
struct transport;
struct creds;

struct creds_options {
    const char *(*co_getenv)(const char *name); /* NULL: getenv(3) */
    int64_t (*co_clock)(void);                  /* wall-clock seconds; NULL: util_now */
    /* Called on the loop when credentials became available or were renewed (ok 1), or a
     * resolution failed (ok 0, err a reason without secrets). May be NULL. */
    void (*co_changed)(void *arg, int ok, const char *err);
    void *co_arg;
};

/* Create the chain on <base>, sending on <tp> (borrowed). Nothing is read or sent before
 * creds_start. Returns NULL with *err (caller frees). */
struct creds *creds_create(struct event_base *base, struct transport *tp,
                           const struct creds_options *o, char **err);
/* Cancel what is in flight (no callbacks) and free; accepts NULL. */
void creds_destroy(struct creds *c);

/* Resolve the chain now (again, when called later: SIGHUP). */
void creds_start(struct creds *c);

/* 1 with *out when credentials valid at the clock's now are held, else 0. */
int creds_get(struct creds *c, struct aws_credentials *out);

/* The instance's region from IMDSv2 (placement/region), for an "ecr" block without a region
 * and no AWS_REGION: <cb>(<arg>, region, NULL) or (<arg>, NULL, err) once, on the loop. */
typedef void (*creds_region_fn)(void *arg, const char *region, const char *err);
void creds_imds_region(struct creds *c, creds_region_fn cb, void *arg);

struct creds_stats {
    uint64_t cs_refreshes; /* credentials obtained, the first time included */
    uint64_t cs_failures;  /* resolutions or renewals that failed */
    int64_t cs_expires_at; /* of the held credentials; 0: none held or no expiry */
    char cs_source[24];    /* of the held credentials, "" when none */
};
void creds_get_stats(const struct creds *c, struct creds_stats *out);

#endif
