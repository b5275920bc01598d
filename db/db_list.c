/*
 * The admin commands' listings over the index: repositories and tags page by page (a cursor
 * and a bounded limit, so a listing of 100,000 tags never holds them all), an image's size,
 * and expiring one tag. Rare calls: each prepares its statements and finalizes them.
 */
#include "config.h"

#include "db_index.h"

#include <sqlite3.h>
#include <string.h>

#include "db-int.h"
#include "util.h"

int index_repos_page(struct index *ix, int64_t after, size_t limit, struct index_repo_row *out,
                     size_t *n)
{
    static const char sql[] =
        "SELECT r.id, r.rule, r.name, (SELECT count(*) FROM tags t WHERE t.repo_id = r.id)"
        " FROM repositories r WHERE r.id > ?1 ORDER BY r.id LIMIT ?2";
    sqlite3_stmt *s = NULL;
    int rc = -1, step;

    CHECK_INDEX(ix);
    *n = 0;
    if (limit > INDEX_LIST_MAX)
        limit = INDEX_LIST_MAX;
    if (sqlite3_prepare_v2(ix->ix_db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (bind_int(s, 1, after) == -1 || bind_int(s, 2, (int64_t)limit) == -1)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
        struct index_repo_row *r = &out[(*n)++];

        r->irr_id = sqlite3_column_int64(s, 0);
        column_copy(s, 1, r->irr_rule, sizeof(r->irr_rule));
        column_copy(s, 2, r->irr_name, sizeof(r->irr_name));
        r->irr_ntags = sqlite3_column_int64(s, 3);
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(s);
    return rc;
}

/*
 * Every digest an image reaches from its top manifest: UNION (not UNION ALL) keeps each once,
 * so a layer two platforms share counts once and a cycle cannot loop.
 */
static const char image_sql[] =
    "WITH RECURSIVE parts(d) AS (SELECT ?1"
    "  UNION SELECT r.child FROM manifest_refs r JOIN parts p ON r.manifest = p.d"
    "  WHERE r.kind IN ('manifest', 'config', 'layer', 'blob'))"
    " SELECT coalesce(sum(coalesce(m.size, b.size, 0)), 0), count(*),"
    "  coalesce(sum(m.size IS NULL AND b.size IS NULL), 0)"
    " FROM parts LEFT JOIN manifests m ON m.digest = parts.d"
    " LEFT JOIN blobs b ON b.digest = parts.d";

/* Run the prepared image_sql <s> for <digest>. 0 or -1; <s> is reset either way. */
static int image_bytes(sqlite3_stmt *s, const char *digest, int64_t *bytes, int64_t *parts,
                       int64_t *missing)
{
    int rc = -1;

    if (bind_text(s, 1, digest) == -1)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    *bytes = sqlite3_column_int64(s, 0);
    *parts = sqlite3_column_int64(s, 1);
    *missing = sqlite3_column_int64(s, 2);
    rc = 0;
out:
    st_done(s);
    return rc;
}

int index_image_bytes(struct index *ix, const char *digest, int64_t *bytes, int64_t *parts,
                      int64_t *missing)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;

    CHECK_INDEX(ix);
    if (sqlite3_prepare_v2(ix->ix_db, image_sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    rc = image_bytes(s, digest, bytes, parts, missing);
out:
    sqlite3_finalize(s);
    return rc;
}

int index_tags_page(struct index *ix, int64_t repo, const char *after, size_t limit,
                    struct index_tag_row *out, size_t *n)
{
    static const char sql[] =
        "SELECT tag, digest, media_type, checked_at, changed_at, last_pulled_at FROM tags"
        " WHERE repo_id = ?1 AND tag > ?2 ORDER BY tag LIMIT ?3";
    sqlite3_stmt *s = NULL, *sz = NULL;
    int rc = -1, step;

    CHECK_INDEX(ix);
    *n = 0;
    if (limit > INDEX_LIST_MAX)
        limit = INDEX_LIST_MAX;
    if (sqlite3_prepare_v2(ix->ix_db, sql, -1, &s, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ix->ix_db, image_sql, -1, &sz, NULL) != SQLITE_OK)
        goto out;
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, after != NULL ? after : "") == -1 ||
        bind_int(s, 3, (int64_t)limit) == -1)
        goto out;
    while ((step = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
        struct index_tag_row *r = &out[*n];

        memset(r, 0, sizeof(*r));
        column_copy(s, 0, r->itr_tag, sizeof(r->itr_tag));
        column_copy(s, 1, r->itr_t.it_digest, sizeof(r->itr_t.it_digest));
        column_copy(s, 2, r->itr_t.it_media_type, sizeof(r->itr_t.it_media_type));
        r->itr_t.it_checked_at = sqlite3_column_int64(s, 3);
        r->itr_t.it_changed_at = sqlite3_column_int64(s, 4);
        r->itr_t.it_last_pulled_at = sqlite3_column_int64(s, 5);
        if (image_bytes(sz, r->itr_t.it_digest, &r->itr_bytes, &r->itr_parts, &r->itr_missing) ==
            -1)
            goto out;
        (*n)++;
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(sz);
    sqlite3_finalize(s);
    return rc;
}

int index_tag_expire(struct index *ix, int64_t repo, const char *tag, int64_t before)
{
    static const char sql[] = "UPDATE tags SET checked_at = min(checked_at, ?3)"
                              " WHERE repo_id = ?1 AND tag = ?2";
    sqlite3_stmt *s = NULL;
    int rc = -1;

    CHECK_INDEX(ix);
    if (sqlite3_prepare_v2(ix->ix_db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (bind_int(s, 1, repo) == -1 || bind_text(s, 2, tag) == -1 || bind_int(s, 3, before) == -1)
        goto out;
    if (sqlite3_step(s) != SQLITE_DONE)
        goto out;
    rc = sqlite3_changes(ix->ix_db) > 0 ? 1 : 0;
out:
    sqlite3_finalize(s);
    return rc;
}
