/*
 * The push worker's plan: the steps that mirror one queued image, from what is stored here
 * (push.c runs them). An index's children come first, each with its blobs; content not stored
 * here yet leaves the job incomplete, pushed as far as it goes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "manifest.h"
#include "push-int.h"
#include "util.h"

/* ---- the plan --------------------------------------------------------------------------- */

static struct step *add_step(struct pjob *j, enum step_kind k, const char *digest, const char *mt)
{
    struct step *s;

    j->steps = xrealloc(j->steps, (j->nsteps + 1) * sizeof(*j->steps));
    s = &j->steps[j->nsteps++];
    memset(s, 0, sizeof(*s));
    s->kind = k;
    str_copy(s->digest, sizeof(s->digest), digest != NULL ? digest : "");
    str_copy(s->media_type, sizeof(s->media_type), mt != NULL ? mt : "");
    return s;
}

/* A blob the push sends: config, layers, artifact blobs; not foreign (non-distributable)
 * layers, which no registry holds, nor a subject or child, which are manifests. */
static int pushed_blob(const struct manifest_ref *r)
{
    return r->mr_kind != MANIFEST_REF_SUBJECT && r->mr_kind != MANIFEST_REF_MANIFEST &&
           strstr(r->mr_media_type, "foreign") == NULL &&
           strstr(r->mr_media_type, "nondistributable") == NULL;
}

/*
 * The steps of manifest <digest> stored here: its check, its blobs, its PUT. 1 when added, 0
 * when it or part of its content is not stored here (nothing added), -1 when it is no
 * manifest we know. For an index only its own check and PUT: the caller plans the children.
 */
static int plan_manifest(struct pjob *j, const char *digest, struct manifest_info *mi)
{
    struct cache *c = j->p->e->cache;
    char mt[INDEX_MEDIA_TYPE_MAX];
    int64_t size = 0;
    char *body;
    size_t len = 0, check;
    const char *perr;

    memset(mi, 0, sizeof(*mi));
    if (cache_manifest_info(c, digest, mt, sizeof(mt), &size) != 1 || !cache_has(c, digest))
        return 0;
    body = cache_manifest_copy(c, digest, &len);
    if (body == NULL)
        return 0;
    if (manifest_parse(body, len, mt, mi, &perr) != 0) {
        free(body);
        return -1;
    }
    free(body);
    if (!mi->mi_is_index) {
        for (size_t i = 0; i < mi->mi_nrefs; i++) {
            const struct manifest_ref *r = &mi->mi_refs[i];
            if (pushed_blob(r) && !cache_has(c, r->mr_digest))
                return 0;
        }
    }
    check = j->nsteps;
    add_step(j, ST_MANIFEST_CHECK, digest, mt);
    if (!mi->mi_is_index) {
        for (size_t i = 0; i < mi->mi_nrefs; i++) {
            const struct manifest_ref *r = &mi->mi_refs[i];
            if (pushed_blob(r))
                add_step(j, ST_BLOB, r->mr_digest, NULL);
        }
    }
    add_step(j, ST_MANIFEST_PUT, digest, mt);
    j->steps[check].skip_to = j->nsteps;
    return 1;
}

/* 0 with the steps planned (maybe j->incomplete), -1 when the image is gone from here. */
int push_plan(struct pjob *j)
{
    struct manifest_info mi, ci;
    int r;

    add_step(j, ST_REPO, NULL, NULL);
    {
        /* An index's children first, each with its content; the index after all of them. */
        char mt[INDEX_MEDIA_TYPE_MAX];
        int64_t size;
        if (cache_manifest_info(j->p->e->cache, j->row.ip_digest, mt, sizeof(mt), &size) != 1)
            return -1;
        if (manifest_is_index_type(mt)) {
            char *body;
            size_t len = 0;
            const char *perr;
            memset(&mi, 0, sizeof(mi));
            body = cache_manifest_copy(j->p->e->cache, j->row.ip_digest, &len);
            if (body == NULL || manifest_parse(body, len, mt, &mi, &perr) != 0) {
                free(body);
                return -1;
            }
            free(body);
            for (size_t i = 0; i < mi.mi_nrefs; i++) {
                if (mi.mi_refs[i].mr_kind != MANIFEST_REF_MANIFEST)
                    continue;
                r = plan_manifest(j, mi.mi_refs[i].mr_digest, &ci);
                manifest_info_free(&ci);
                if (r != 1)
                    j->incomplete = 1;
            }
            manifest_info_free(&mi);
            if (j->incomplete)
                return 0;
        }
    }
    r = plan_manifest(j, j->row.ip_digest, &mi);
    manifest_info_free(&mi);
    if (r == -1)
        return -1;
    if (r == 0) {
        j->incomplete = 1;
        return 0;
    }
    if (j->row.ip_tag[0] != '\0') {
        /* The root's media type, copied: add_step moves the array. */
        char mt[INDEX_MEDIA_TYPE_MAX];
        struct step *s;
        struct index_tag t;
        /* A row queued before the tag moved here (it waited out an outage, or for content)
         * must not move ECR's tag back: only what the tag is here now is pushed as the tag. */
        if (cache_tag_get(j->p->e->cache, j->row.ip_repo, j->row.ip_tag, &t) != 1 ||
            strcmp(t.it_digest, j->row.ip_digest) != 0) {
            push_job_log(j, LOG_INFO, "ecr-push-tag-moved",
                         "the tag points elsewhere here now: pushed by digest only");
            return 0;
        }
        str_copy(mt, sizeof(mt), j->steps[j->nsteps - 1].media_type);
        s = add_step(j, ST_TAG_CHECK, j->row.ip_digest, NULL);
        s->skip_to = j->nsteps + 1;
        add_step(j, ST_TAG_PUT, j->row.ip_digest, mt);
    }
    return 0;
}
