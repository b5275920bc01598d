/*
 * Inside proxy/ecr/ only: the push worker's records (push.c), shared with its plan (push_plan.c:
 * which steps mirror an image) and its repository step (push_repo.c).
 */
#ifndef ECR_PUSH_INT_H
#define ECR_PUSH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "db_index.h"
#include "ecr-int.h"
#include "log.h"

#define PUSH_MAGIC 0x50555348u /* "PUSH" */
#define PJOB_MAGIC 0x504a4f42u /* "PJOB" */

#define PUSH_CONCURRENCY 4
#define PUSH_HELD_MAX 16 /* rows taken and waiting for their repository's job to end */
#define PUSH_POLL_S 1
#define PUSH_PUT_INTERVAL_MS 125        /* 8 PutImage a second at most */
#define PUSH_RETRY_BASE_S 2             /* a failed attempt: 2 s, doubling */
#define PUSH_WAIT_BASE_S 3              /* content not here yet: 3 s, doubling */
#define PUSH_BACKOFF_MAX_S 600          /* both capped at 10 minutes */
#define PUSH_WAIT_GIVE_UP_S (24 * 3600) /* content still missing a day later: dropped */
/* A row waiting for content (its last_error), woken when a blob of its repository lands. */
#define PUSH_WAITING "waiting for content not stored here yet"
#define PUSH_MANIFEST_TIMEOUT_BYTES 65536 /* error bodies read for their OCI code */

enum step_kind { ST_REPO, ST_MANIFEST_CHECK, ST_BLOB, ST_MANIFEST_PUT, ST_TAG_CHECK, ST_TAG_PUT };

struct step {
    enum step_kind kind;
    char digest[INDEX_DIGEST_MAX];
    char media_type[INDEX_MEDIA_TYPE_MAX];
    size_t skip_to; /* ST_MANIFEST_CHECK, ST_TAG_CHECK: where to go when ECR has it */
};

struct pjob {
    unsigned magic;
    struct push *p;
    struct pjob *next;
    struct index_push row;
    struct step *steps;
    size_t nsteps, cur;
    int incomplete; /* content missing here: push what is, wait for the rest */
    int phase;      /* within a step: ST_REPO's and ST_BLOB's sub-requests */
    int created;    /* this job created the repository */
    struct transport_req *req;
    struct ecr_call *call;
    struct event *timer; /* a paced PUT waiting for its turn */
    char upload_url[4096];
    char *body; /* a manifest being PUT */
    size_t body_len;
};

struct push {
    unsigned magic;
    struct ecr *e;
    struct pjob *jobs;
    int njobs;
    /* Rows taken while a job for their ECR repository ran: one job per repository at a time,
     * so two tags of one image, or two images sharing layers, never upload the same blobs
     * side by side (twice the bytes, and a registry may see a blob half-linked). Started, in
     * order, once their repository is free. Held rows take no job slot, so one repository's
     * long upload does not stop the others; at most PUSH_HELD_MAX are held. */
    struct index_push held[PUSH_HELD_MAX];
    size_t nheld;
    struct event *poll;
    int64_t next_put_ms; /* monotonic: the next paced PUT may go then */
    char *accept;        /* "Accept: " every manifest type, for the HEADs */
    int started;
};

/* push.c */
void push_step_next(struct pjob *j); /* the job's next step */
/* The job is over: done (<fail> NULL, or waiting when j->incomplete), or put back with backoff
 * for <fail>. Frees it. */
void push_job_end(struct pjob *j, const char *fail);
void push_job_log(const struct pjob *j, enum log_level lvl, const char *event, const char *err);

/* push_plan.c: the job's steps for its row. 0 (j->incomplete may be set), or -1 when the image
 * is no longer stored here. */
int push_plan(struct pjob *j);

/* push_repo.c: run the ST_REPO step (Describe, else Create, then the policies). */
void push_repo_step(struct pjob *j);

#endif
