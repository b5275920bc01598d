/*
 * The push worker's repository step: DescribeRepositories, else CreateRepository with
 * create_repository's settings (RepositoryAlreadyExistsException is success), then
 * PutLifecyclePolicy and SetRepositoryPolicy when configured and this job created it.
 * Repositories known to exist are remembered for the process (ecr.c).
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config_file.h"
#include "ecr_api.h"
#include "push-int.h"
#include "util.h"

/* ---- the repository --------------------------------------------------------------------- */

static json_t *repo_params(const struct pjob *j)
{
    json_t *o = json_pack("{s:s}", "repositoryName", j->row.ip_ecr_repo);

    if (j->p->e->ec->ecr_registry_id != NULL)
        json_object_set_new(o, "registryId", json_string(j->p->e->ec->ecr_registry_id));
    return o;
}

static json_t *create_params(const struct pjob *j)
{
    const struct config_ecr *ec = j->p->e->ec;
    json_t *o = repo_params(j);

    json_object_set_new(
        o, "imageTagMutability",
        json_string(ec->ecr_tag_mutability != NULL ? ec->ecr_tag_mutability : "MUTABLE"));
    if (ec->ecr_nmutability_exclusions > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < ec->ecr_nmutability_exclusions; i++)
            json_array_append_new(a, json_pack("{s:s,s:s}", "filterType", "WILDCARD", "filter",
                                               ec->ecr_mutability_exclusions[i]));
        json_object_set_new(o, "imageTagMutabilityExclusionFilters", a);
    }
    json_object_set_new(o, "imageScanningConfiguration",
                        json_pack("{s:b}", "scanOnPush", ec->ecr_scan_on_push));
    if (ec->ecr_encryption_type != NULL) {
        json_t *enc = json_pack("{s:s}", "encryptionType", ec->ecr_encryption_type);
        if (ec->ecr_kms_key != NULL)
            json_object_set_new(enc, "kmsKey", json_string(ec->ecr_kms_key));
        json_object_set_new(o, "encryptionConfiguration", enc);
    }
    if (ec->ecr_ntags > 0) {
        json_t *a = json_array();
        for (size_t i = 0; i < ec->ecr_ntags; i++)
            json_array_append_new(a, json_pack("{s:s,s:s}", "Key", ec->ecr_tags[i].ct_key, "Value",
                                               ec->ecr_tags[i].ct_value));
        json_object_set_new(o, "tags", a);
    }
    return o;
}

static void repo_done(void *arg, const struct ecr_api_result *r)
{
    struct pjob *j;
    char why[512];

    CAST_OBJ_NOTNULL(j, arg, PJOB_MAGIC);
    j->call = NULL;
    switch (j->phase) {
    case 0: /* DescribeRepositories */
        if (r->ok) {
            ecr_known_add(j->p->e, j->row.ip_ecr_repo);
            push_step_next(j);
            return;
        }
        if (strcmp(r->type, "RepositoryNotFoundException") == 0) {
            j->phase = 1;
            push_repo_step(j);
            return;
        }
        break;
    case 1: /* CreateRepository */
        if (r->ok || strcmp(r->type, "RepositoryAlreadyExistsException") == 0) {
            if (r->ok) {
                const struct config_ecr *ec = j->p->e->ec;
                j->created = 1;
                j->p->e->stats.es_repos_created++;
                log_event(LOG_INFO, "ecr-repository-created", "ecr_repo", j->row.ip_ecr_repo, NULL);
                /* Until both are set a retry sets them, whatever fails in between. */
                if (ec->ecr_lifecycle_policy != NULL || ec->ecr_repository_policy != NULL)
                    ecr_policies_pending_set(j->p->e, j->row.ip_ecr_repo, 1);
            }
            j->phase = 2;
            push_repo_step(j);
            return;
        }
        break;
    case 2: /* PutLifecyclePolicy */
    case 3: /* SetRepositoryPolicy */
        if (r->ok) {
            j->phase++;
            push_repo_step(j);
            return;
        }
        break;
    }
    snprintf(why, sizeof(why), "%s: %s%s%s (HTTP %d)",
             j->phase == 0   ? "DescribeRepositories"
             : j->phase == 1 ? "CreateRepository"
             : j->phase == 2 ? "PutLifecyclePolicy"
                             : "SetRepositoryPolicy",
             r->type, r->type[0] ? ": " : "", r->message, r->status);
    push_job_end(j, why);
}

void push_repo_step(struct pjob *j)
{
    struct ecr *e = j->p->e;
    const struct config_ecr *ec = e->ec;
    json_t *o;

    if (e->api == NULL) {
        push_job_end(j, "the ECR API is not set up yet");
        return;
    }
    switch (j->phase) {
    case 0:
        if (ecr_known_has(e, j->row.ip_ecr_repo)) {
            push_step_next(j);
            return;
        }
        if (ecr_policies_pending(e, j->row.ip_ecr_repo)) {
            /* Created by an earlier job whose policy calls failed: those again. */
            j->created = 1;
            j->phase = 2;
            push_repo_step(j);
            return;
        }
        o = json_object();
        json_object_set_new(o, "repositoryNames", json_pack("[s]", j->row.ip_ecr_repo));
        if (ec->ecr_registry_id != NULL)
            json_object_set_new(o, "registryId", json_string(ec->ecr_registry_id));
        j->call = ecr_api_call(e->api, "DescribeRepositories", o, repo_done, j);
        return;
    case 1:
        j->call = ecr_api_call(e->api, "CreateRepository", create_params(j), repo_done, j);
        return;
    case 2:
        if (j->created && ec->ecr_lifecycle_policy != NULL) {
            o = repo_params(j);
            json_object_set_new(o, "lifecyclePolicyText", json_string(ec->ecr_lifecycle_policy));
            j->call = ecr_api_call(e->api, "PutLifecyclePolicy", o, repo_done, j);
            return;
        }
        j->phase = 3;
        /* fall through */
    case 3:
        if (j->created && ec->ecr_repository_policy != NULL) {
            j->phase = 3;
            o = repo_params(j);
            json_object_set_new(o, "policyText", json_string(ec->ecr_repository_policy));
            j->call = ecr_api_call(e->api, "SetRepositoryPolicy", o, repo_done, j);
            return;
        }
        /* fall through */
    default:
        ecr_policies_pending_set(e, j->row.ip_ecr_repo, 0);
        ecr_known_add(e, j->row.ip_ecr_repo);
        push_step_next(j);
        return;
    }
}
