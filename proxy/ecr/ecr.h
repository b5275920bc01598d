/*
 * The private ECR tier (docs/internals/ecr.md): every image the proxy verified and stored is
 * mirrored into ECR repository "<repository_prefix>/<rule prefix>/<upstream name>" by a
 * write-behind push queue in the index, and a local miss for a digest is looked up there
 * (ecr_origin) before the upstream. Owns the credential chain, the ECR API client, the
 * data-plane token and the push worker; runs on the daemon's loop and never makes a client
 * wait: without a token the api goes to the upstream, and the queue waits.
 */
#ifndef ECR_ECR_H
#define ECR_ECR_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct config;
struct config_rule;
struct ecr;
struct event_base;
struct upstream;
struct upstream_origin;

/*
 * The tier for <cfg> (its "ecr" block must be set; borrowed, as are <up> and <cache>),
 * sending on <up>'s transport. <clock>: wall-clock seconds (NULL: util_now). Nothing is sent
 * before ecr_start. NULL with *err (caller frees).
 */
struct ecr *ecr_create(struct event_base *base, const struct config *cfg, struct upstream *up,
                       struct cache *cache, int64_t (*clock)(void), char **err);
/* Resolve credentials, region and the data-plane token; start the push worker. */
void ecr_start(struct ecr *e);
/* Cancel everything in flight (queued pushes stay queued) and free; accepts NULL. */
void ecr_destroy(struct ecr *e);

/*
 * The ECR data plane as an origin for read-through (Basic with the current token; redirects
 * to S3 followed without Authorization), or NULL while no token is held. Borrowed: valid
 * until ecr_destroy (the token inside is renewed in place).
 */
const struct upstream_origin *ecr_origin(struct ecr *e);

/*
 * The ECR repository that mirrors <rule>'s repository <name> (its name upstream) into <out>:
 * 1, or 0 when that rule is left out ("ecr": false) or ECR cannot hold the name (logged and
 * counted once per name).
 */
int ecr_repo_for(struct ecr *e, const struct config_rule *rule, const char *name, char *out,
                 size_t size);

/*
 * Manifest <digest> (and <tag>, when not NULL or "") of local repository <repo>, rule
 * <rule>'s <name>, is verified and stored: queue its push (deduplicated; nothing when push is
 * off or the name is not mirrored). Never blocks on the network.
 */
void ecr_queue(struct ecr *e, const struct config_rule *rule, const char *name, int64_t repo,
               const char *digest, const char *tag);

/* A blob was stored locally for local repository <repo>: its pushes waiting for their
 * content try again now rather than after their backoff. */
void ecr_content_stored(struct ecr *e, int64_t repo);

/* An ECR request answered 401 or 403 (ECR's answer to an expired token): the token is
 * renewed at once, at most every 30 s. */
void ecr_unauthorized(struct ecr *e);

enum ecr_push_kind { ECR_KIND_BLOB = 0, ECR_KIND_MANIFEST, ECR_KIND_TAG, ECR_KIND_N };
enum ecr_push_result {
    ECR_RESULT_PUSHED = 0, /* sent */
    ECR_RESULT_PRESENT,    /* ECR had it already: not sent again */
    ECR_RESULT_FAILED,     /* an attempt failed: the push is retried */
    ECR_RESULT_REFUSED,    /* ECR refused it for good (an immutable tag): not retried */
    ECR_RESULT_N
};

struct ecr_stats {
    uint64_t es_pushes[ECR_KIND_N][ECR_RESULT_N];
    uint64_t es_bytes_pushed; /* blob bytes sent, each upload counted once it succeeded */
    uint64_t es_jobs_done, es_jobs_retried, es_jobs_waiting, es_jobs_abandoned;
    uint64_t es_unmirrorable; /* names ECR cannot hold */
    uint64_t es_token_refreshes, es_token_failures;
    uint64_t es_repos_created;
    uint64_t es_cred_refreshes, es_cred_failures;
    int64_t es_queue_depth, es_queue_oldest_age; /* seconds; 0 when empty */
    int64_t es_token_expires_at;                 /* 0 when none is held */
    int es_ready;                                /* a token is held */
};
void ecr_get_stats(struct ecr *e, struct ecr_stats *out);

extern const char *const ecr_kind_names[ECR_KIND_N];
extern const char *const ecr_result_names[ECR_RESULT_N];

#endif
