/*
 * The ECR tier as the handlers see it: targets on ECR for read-through, the push queue's
 * entry, and the tier's metrics. Everything here is a no-op without an "ecr" block.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "api-int.h"
#include "config_file.h"
#include "ecr.h"
#include "util.h"

int api_ecr_target(struct mreq *m, struct upstream_target *t, char *path, size_t psize,
                   const char *kind, const char *ref, int head)
{
    struct api *api = m->api;
    const struct upstream_origin *o;
    char repo[INDEX_ECR_REPO_MAX];

    if (api->ecr == NULL || (o = ecr_origin(api->ecr)) == NULL ||
        !ecr_repo_for(api->ecr, m->rule, m->upname, repo, sizeof(repo)))
        return 0;
    snprintf(path, psize, "/v2/%s/%s/%s", repo, kind, ref);
    memset(t, 0, sizeof(*t));
    t->ut_origin = o;
    t->ut_name = NULL; /* Basic: no token scope */
    t->ut_path = path;
    t->ut_head = head;
    t->ut_max_retries = 1;
    t->ut_max_body = -1;
    return 1;
}

int api_ecr_ready(struct mreq *m)
{
    char repo[INDEX_ECR_REPO_MAX];

    return m->api->ecr != NULL && ecr_origin(m->api->ecr) != NULL &&
           ecr_repo_for(m->api->ecr, m->rule, m->upname, repo, sizeof(repo));
}

void api_ecr_key(const struct mreq *m, char *key, size_t size, int head, const char *path)
{
    (void)m;
    snprintf(key, size, "%s ecr %s", head ? "HEAD" : "GET", path);
}

void api_ecr_queue(struct mreq *m, const char *digest, const char *tag)
{
    if (m->api->ecr == NULL || m->repo <= 0)
        return;
    ecr_queue(m->api->ecr, m->rule, m->upname, m->repo, digest, tag);
}

void api_ecr_answered(struct api *api, int status)
{
    if (api->ecr != NULL && (status == 401 || status == 403))
        ecr_unauthorized(api->ecr);
}

static void line(struct evbuffer *b, const char *name, const char *type, const char *help,
                 const char *labels, long long v)
{
    if (help != NULL)
        evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    evbuffer_add_printf(b, "%s%s %lld\n", name, labels ? labels : "", v);
}

void api_ecr_metrics(struct api *api, struct evbuffer *b)
{
    const struct api_metrics *mx = &api->mx;
    struct ecr_stats st;
    char lab[96];
    static const char *const what[2] = {"manifest", "blob"};

    line(b, "ecr_ptc_content_bytes_total", "counter",
         "verified blob and manifest bytes fetched on a miss, by origin: ECR or the upstream "
         "(the NAT)",
         "{from=\"ecr\"}", (long long)mx->content_bytes_ecr);
    line(b, "ecr_ptc_content_bytes_total", "counter", NULL, "{from=\"upstream\"}",
         (long long)mx->content_bytes_upstream);
    if (api->ecr == NULL)
        return;
    ecr_get_stats(api->ecr, &st);
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < 2; r++) {
            snprintf(lab, sizeof(lab), "{kind=\"%s\",result=\"%s\"}", what[k],
                     r == 0 ? "found" : "missed");
            line(b, "ecr_ptc_ecr_reads_total", "counter",
                 k == 0 && r == 0 ? "read-through lookups in ECR on a local miss" : NULL, lab,
                 (long long)mx->ecr_reads[k][r]);
        }
    }
    line(b, "ecr_ptc_ecr_stale_served_total", "counter",
         "tags served from ECR with a Warning: upstream failed and the tag was not cached here",
         NULL, (long long)mx->ecr_stale_served);
    line(b, "ecr_ptc_ecr_confirmations_total", "counter",
         "cross-repository confirmations answered by ECR instead of the upstream", NULL,
         (long long)mx->ecr_confirmations);
    for (int k = 0; k < ECR_KIND_N; k++) {
        for (int r = 0; r < ECR_RESULT_N; r++) {
            snprintf(lab, sizeof(lab), "{kind=\"%s\",result=\"%s\"}", ecr_kind_names[k],
                     ecr_result_names[r]);
            line(b, "ecr_ptc_ecr_pushes_total", "counter",
                 k == 0 && r == 0 ? "pushes to ECR by kind and result" : NULL, lab,
                 (long long)st.es_pushes[k][r]);
        }
    }
    line(b, "ecr_ptc_ecr_pushed_bytes_total", "counter", "blob bytes uploaded to ECR", NULL,
         (long long)st.es_bytes_pushed);
    line(b, "ecr_ptc_ecr_push_jobs_total", "counter", "push jobs by how they ended",
         "{result=\"done\"}", (long long)st.es_jobs_done);
    line(b, "ecr_ptc_ecr_push_jobs_total", "counter", NULL, "{result=\"retried\"}",
         (long long)st.es_jobs_retried);
    line(b, "ecr_ptc_ecr_push_jobs_total", "counter", NULL, "{result=\"waiting\"}",
         (long long)st.es_jobs_waiting);
    line(b, "ecr_ptc_ecr_push_jobs_total", "counter", NULL, "{result=\"abandoned\"}",
         (long long)st.es_jobs_abandoned);
    line(b, "ecr_ptc_ecr_queue_depth", "gauge", "pushes queued (the index's ecr_push rows)", NULL,
         st.es_queue_depth);
    line(b, "ecr_ptc_ecr_queue_oldest_age_seconds", "gauge",
         "age of the oldest queued push, 0 when the queue is empty", NULL, st.es_queue_oldest_age);
    line(b, "ecr_ptc_ecr_repositories_created_total", "counter",
         "ECR repositories this process created", NULL, (long long)st.es_repos_created);
    line(b, "ecr_ptc_ecr_unmirrorable_total", "counter",
         "repository names ECR cannot hold: not mirrored", NULL, (long long)st.es_unmirrorable);
    line(b, "ecr_ptc_ecr_token_refreshes_total", "counter",
         "data-plane tokens obtained (GetAuthorizationToken)", NULL,
         (long long)st.es_token_refreshes);
    line(b, "ecr_ptc_ecr_token_failures_total", "counter", "GetAuthorizationToken failures", NULL,
         (long long)st.es_token_failures);
    line(b, "ecr_ptc_aws_credential_refreshes_total", "counter",
         "AWS credentials obtained from the chain", NULL, (long long)st.es_cred_refreshes);
    line(b, "ecr_ptc_aws_credential_failures_total", "counter",
         "credential chain resolutions or renewals that failed", NULL,
         (long long)st.es_cred_failures);
    line(b, "ecr_ptc_ecr_ready", "gauge", "1 while a data-plane token is held", NULL, st.es_ready);
}
