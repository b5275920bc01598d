/*
 * Inside proxy/ecr/ only: the tier's record, shared by ecr.c (credentials, region, token,
 * repositories) and push.c (the write-behind worker).
 */
#ifndef ECR_INT_H
#define ECR_INT_H

#include <stdint.h>

#include "ecr.h"
#include "upstream-t.h"

#define ECR_MAGIC 0x45435221u /* "ECR!" */

struct config_ecr;
struct creds;
struct ecr_api;
struct ecr_call;
struct event;
struct push;
struct transport;

/* A repository known to exist in ECR (described or created by this process). */
struct ecr_known {
    struct ecr_known *next;
    char name[]; /* flexible */
};

struct ecr {
    unsigned magic;
    struct event_base *base;
    const struct config *cfg;
    const struct config_ecr *ec;
    struct upstream *up;
    struct transport *tp;
    struct cache *cache;
    int64_t (*clock)(void);

    struct creds *creds;
    struct ecr_api *api;
    char region[64];
    char endpoint[512];
    int region_pending; /* waiting on IMDS for the region */

    /* The data-plane token (GetAuthorizationToken), renewed ahead of its expiry. */
    struct upstream_origin origin;
    char data_url[512];
    char *password, *old_password; /* the old one may still be in an xfer's attempt */
    int64_t token_expires_at;
    int have_token;
    struct ecr_call *token_call;
    struct event *token_timer;
    int token_backoff_s;
    int64_t token_forced_at; /* the last renewal a refused request asked for */

    struct ecr_known *known;
    struct ecr_known *policies_pending; /* created here, lifecycle or repository policy not
                                           set yet (a job failed in between) */
    struct push *push;
    struct ecr_stats stats;
    char **unmirrorable; /* names logged once */
    size_t nunmirrorable;
};

/* ecr.c: <name> exists in ECR (described or created); 1 when known. */
int ecr_known_has(const struct ecr *e, const char *name);
void ecr_known_add(struct ecr *e, const char *name);
void ecr_known_drop(struct ecr *e, const char *name);
/* <name> was created by this process and its policies are not set yet. */
int ecr_policies_pending(const struct ecr *e, const char *name);
void ecr_policies_pending_set(struct ecr *e, const char *name, int pending);

/* push.c */
struct push *push_create(struct ecr *e);
void push_start(struct push *p);
void push_destroy(struct push *p); /* accepts NULL; taken rows stay taken until restart */
void push_poke(struct push *p);    /* look for due rows now */
/* A blob of local repository <repo> landed: its rows waiting for content are due now. */
void push_wake(struct push *p, int64_t repo);

#endif
