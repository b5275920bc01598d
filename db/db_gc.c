/*
 * The sweep's queries (db_index.h, "the sweep"): each repository's images with their facts,
 * every stored digest and reference for the mark phase, and the deletions, batched. The
 * decisions are the catalog's (cache_gc.c) and the lifecycle policy's; this file only reads
 * and writes rows. Rarely run: statements are prepared per call, not kept.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db-int.h"
#include "db_index.h"
#include "util.h"

/* Changes per transaction while applying a sweep: short write locks, bounded journal. */
#define GC_BATCH 256

/*
 * An image is a manifest a repository holds (marked there, or tagged) that is neither an
 * untagged child of another manifest that repository holds (a platform manifest of its index)
 * nor a referrer whose subject is stored (those follow their parent or subject in the mark
 * phase). A child with a tag of its own there is an image too: its pulls are its own.
 */
static const char images_sql[] =
    "SELECT r.id, r.rule, r.name, m.digest, m.stored_at, m.last_pulled_at,"
    " (SELECT group_concat(t.tag, ',') FROM tags t WHERE t.repo_id = r.id AND t.digest = m.digest),"
    " (SELECT max(t.last_pulled_at) FROM tags t WHERE t.repo_id = r.id AND t.digest = m.digest)"
    " FROM (SELECT repo_id, digest FROM repo_digests UNION SELECT repo_id, digest FROM tags) x"
    " JOIN repositories r ON r.id = x.repo_id"
    " JOIN manifests m ON m.digest = x.digest"
    " WHERE (EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = x.repo_id AND t.digest = x.digest)"
    "   OR NOT EXISTS (SELECT 1 FROM manifest_refs p"
    "   JOIN repo_digests rd ON rd.digest = p.manifest AND rd.repo_id = x.repo_id"
    "   WHERE p.child = x.digest AND p.kind = 'manifest' AND p.manifest != x.digest))"
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs s JOIN manifests sm ON sm.digest = s.child"
    "   WHERE s.manifest = x.digest AND +s.kind = 'subject')" /* by manifest: the primary key */
    " ORDER BY r.id, m.digest";

int index_gc_images(struct index *ix, struct index_image **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    struct index_image *v = NULL;
    size_t len = 0, cap = 0;
    int rc = -1, step;

    CHECK_INDEX(ix);
    *out = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(ix->ix_db, images_sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        struct index_image *im;
        const unsigned char *t;
        int64_t tag_pulled;

        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, cap * sizeof(*v));
        }
        im = &v[len++];
        memset(im, 0, sizeof(*im));
        im->ii_repo = sqlite3_column_int64(s, 0);
        t = sqlite3_column_text(s, 1);
        im->ii_rule = xstrdup(t != NULL ? (const char *)t : "");
        t = sqlite3_column_text(s, 2);
        im->ii_name = xstrdup(t != NULL ? (const char *)t : "");
        column_copy(s, 3, im->ii_digest, sizeof(im->ii_digest));
        im->ii_pushed_at = sqlite3_column_int64(s, 4);
        im->ii_pulled_at = sqlite3_column_int64(s, 5);
        t = sqlite3_column_text(s, 6);
        im->ii_tags = xstrdup(t != NULL ? (const char *)t : "");
        tag_pulled = sqlite3_column_int64(s, 7);
        if (tag_pulled > im->ii_pulled_at)
            im->ii_pulled_at = tag_pulled;
        /* Stored here means pulled here then: a cold pull's stamp may not be written yet. */
        if (im->ii_pushed_at > im->ii_pulled_at)
            im->ii_pulled_at = im->ii_pushed_at;
    }
    if (step != SQLITE_DONE)
        goto out;
    *out = v;
    *n = len;
    v = NULL;
    len = 0;
    rc = 0;
out:
    index_gc_images_free(v, len);
    sqlite3_finalize(s);
    return rc;
}

void index_gc_images_free(struct index_image *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].ii_rule);
        free(v[i].ii_name);
        free(v[i].ii_tags);
    }
    free(v);
}

/* Run <sql> and hand each row to <row>. 0 or -1. */
static int each_row(struct index *ix, const char *sql, void (*row)(sqlite3_stmt *s, void *arg),
                    void *arg)
{
    sqlite3_stmt *s = NULL;
    int step, rc = -1;

    if (sqlite3_prepare_v2(ix->ix_db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW)
        row(s, arg);
    rc = step == SQLITE_DONE ? 0 : -1;
out:
    sqlite3_finalize(s);
    return rc;
}

struct walk {
    const struct index_gc_walk_fns *fns;
    void *arg;
};

static const char *col(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t != NULL ? (const char *)t : "";
}

static void content_row(sqlite3_stmt *s, void *arg)
{
    struct walk *w = arg;

    w->fns->gw_content(w->arg, col(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                       sqlite3_column_int(s, 3), sqlite3_column_int64(s, 4));
}

static void ref_row(sqlite3_stmt *s, void *arg)
{
    struct walk *w = arg;

    w->fns->gw_ref(w->arg, col(s, 0), col(s, 1), strcmp(col(s, 2), "subject") == 0);
}

static void pinned_row(sqlite3_stmt *s, void *arg)
{
    struct walk *w = arg;

    w->fns->gw_pinned(w->arg, col(s, 0));
}

int index_gc_walk(struct index *ix, const struct index_gc_walk_fns *fns, void *arg)
{
    struct walk w = {fns, arg};

    CHECK_INDEX(ix);
    if (each_row(ix,
                 "SELECT digest, size, stored_at, 0, last_access FROM blobs"
                 " UNION ALL SELECT digest, size, stored_at, 1, last_pulled_at FROM manifests",
                 content_row, &w) == -1)
        return -1;
    if (each_row(ix, "SELECT manifest, child, kind FROM manifest_refs", ref_row, &w) == -1)
        return -1;
    return each_row(ix, "SELECT DISTINCT digest FROM ecr_push", pinned_row, &w);
}

/* Bind <a> (and <b> when not NULL; an integer when <num>) and run <s>; 0 or -1. */
static int run_text(sqlite3_stmt *s, const char *a)
{
    if (bind_text(s, 1, a) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

static int run_repo_text(sqlite3_stmt *s, int64_t repo, const char *a)
{
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, a) == -1) {
        st_done(s);
        return -1;
    }
    return st_exec(s);
}

enum gc_st {
    GST_UNTAG = 0,
    GST_UNMARK,
    GST_REFS,
    GST_MANIFEST,
    GST_BLOB,
    GST_MARKS,
    GST_TAGS,
    GST_N
};

static const char *const gc_statements[GST_N] = {
    [GST_UNTAG] = "DELETE FROM tags WHERE repo_id = ?1 AND digest = ?2",
    [GST_UNMARK] = "DELETE FROM repo_digests WHERE repo_id = ?1 AND digest = ?2",
    [GST_REFS] = "DELETE FROM manifest_refs WHERE manifest = ?1",
    [GST_MANIFEST] = "DELETE FROM manifests WHERE digest = ?1",
    [GST_BLOB] = "DELETE FROM blobs WHERE digest = ?1",
    [GST_MARKS] = "DELETE FROM repo_digests WHERE digest = ?1",
    [GST_TAGS] = "DELETE FROM tags WHERE digest = ?1",
};

int index_gc_apply(struct index *ix, const struct index_unretain *u, size_t nu,
                   const char *const *drop, size_t nd)
{
    sqlite3_stmt *s[GST_N] = {0};
    size_t done = 0, total = nu + nd;
    int rc = -1, in_tx = 0;

    CHECK_INDEX(ix);
    for (int i = 0; i < GST_N; i++)
        if (sqlite3_prepare_v2(ix->ix_db, gc_statements[i], -1, &s[i], NULL) != SQLITE_OK)
            goto out;
    while (done < total) {
        if (tx_begin(ix) == -1)
            goto out;
        in_tx = 1;
        for (size_t k = 0; k < GC_BATCH && done < total; k++, done++) {
            if (done < nu) {
                const struct index_unretain *x = &u[done];
                if (run_repo_text(s[GST_UNTAG], x->iu_repo, x->iu_digest) == -1 ||
                    run_repo_text(s[GST_UNMARK], x->iu_repo, x->iu_digest) == -1)
                    goto out;
            } else {
                const char *d = drop[done - nu];
                for (int i = GST_REFS; i <= GST_TAGS; i++)
                    if (run_text(s[i], d) == -1)
                        goto out;
            }
        }
        if (tx_commit(ix) == -1)
            goto out;
        in_tx = 0;
    }
    rc = 0;
out:
    if (in_tx)
        tx_rollback(ix);
    for (int i = 0; i < GST_N; i++)
        sqlite3_finalize(s[i]);
    return rc;
}

int index_gc_used_since(struct index *ix, const char *digest, int64_t repo, int64_t since)
{
    /* An image (repo > 0): one of its tags there, or the manifest itself, pulled since. A
     * digest: served or pulled since, stored again since, or listed by a manifest stored
     * since. */
    static const char image_sql[] =
        "SELECT EXISTS (SELECT 1 FROM tags WHERE repo_id = ?2 AND digest = ?1"
        "   AND last_pulled_at > ?3)"
        " OR EXISTS (SELECT 1 FROM manifests WHERE digest = ?1 AND last_pulled_at > ?3)";
    static const char digest_sql[] =
        "SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1"
        "   AND (last_access > ?3 OR stored_at > ?3))"
        " OR EXISTS (SELECT 1 FROM manifests WHERE digest = ?1"
        "   AND (last_pulled_at > ?3 OR stored_at > ?3))"
        " OR EXISTS (SELECT 1 FROM manifest_refs r JOIN manifests m ON m.digest = r.manifest"
        "   WHERE r.child = ?1 AND m.stored_at > ?3)";
    sqlite3_stmt **slot = repo > 0 ? &ix->ix_gc_used[0] : &ix->ix_gc_used[1];
    int rc = -1;

    CHECK_INDEX(ix);
    if (*slot == NULL && sqlite3_prepare_v2(ix->ix_db, repo > 0 ? image_sql : digest_sql, -1, slot,
                                            NULL) != SQLITE_OK)
        return -1;
    if (bind_text(*slot, 1, digest) == 0 && (repo <= 0 || bind_int(*slot, 2, repo) == 0) &&
        bind_int(*slot, 3, since) == 0 && sqlite3_step(*slot) == SQLITE_ROW)
        rc = sqlite3_column_int(*slot, 0) != 0;
    st_done(*slot);
    return rc;
}

int64_t index_used_bytes(struct index *ix)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    CHECK_INDEX(ix);
    /* A digest fetched both as a blob and as a manifest has two rows and one file. */
    if (sqlite3_prepare_v2(ix->ix_db,
                           "SELECT coalesce(sum(size), 0) FROM (SELECT digest, size FROM blobs"
                           " UNION SELECT digest, size FROM manifests)",
                           -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

int index_top_pulled(struct index *ix, size_t limit, struct index_top *out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    int step, rc = -1;

    CHECK_INDEX(ix);
    *n = 0;
    if (sqlite3_prepare_v2(ix->ix_db,
                           "SELECT r.rule, r.name, t.tag, t.pulls, t.last_pulled_at FROM tags t"
                           " JOIN repositories r ON r.id = t.repo_id WHERE t.pulls > 0"
                           " ORDER BY t.pulls DESC, t.last_pulled_at DESC, r.id, t.tag LIMIT ?1",
                           -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (bind_int(s, 1, (int64_t)limit) == -1)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
        struct index_top *t = &out[(*n)++];
        column_copy(s, 0, t->it_rule, sizeof(t->it_rule));
        column_copy(s, 1, t->it_name, sizeof(t->it_name));
        column_copy(s, 2, t->it_tag, sizeof(t->it_tag));
        t->it_pulls = sqlite3_column_int64(s, 3);
        t->it_last_pulled_at = sqlite3_column_int64(s, 4);
    }
    rc = step == SQLITE_DONE || step == SQLITE_ROW ? 0 : -1;
out:
    sqlite3_finalize(s);
    return rc;
}
