/*
 * The catalog's listings and changes for the admin commands: pages of repositories and tags
 * (with the batched stamps written first), and expiring a tag so its next pull checks
 * upstream, the index row and its hot copy together.
 */
#include "config.h"

#include "cache.h"

#include <string.h>

#include "cache-int.h"
#include "db_index.h"
#include "hot.h"
#include "route.h"
#include "util.h"

int cache_repos_page(struct cache *c, int64_t after, size_t limit, struct index_repo_row *out,
                     size_t *n, int64_t now)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    cache_flush(c, now);
    return index_repos_page(c->ix, after, limit, out, n);
}

int64_t cache_repo_find(struct cache *c, const char *rule, const char *name)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    return index_repo_find(c->ix, rule, name);
}

int cache_tags_page(struct cache *c, int64_t repo, const char *after, size_t limit,
                    struct index_tag_row *out, size_t *n, int64_t now)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    cache_flush(c, now);
    return index_tags_page(c->ix, repo, after, limit, out, n);
}

int cache_tag_expire(struct cache *c, int64_t repo, const char *tag, int64_t before,
                     struct index_tag *old)
{
    char key[ROUTE_REF_MAX + 32];
    struct index_tag was;
    int rc;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    rc = index_tag_get(c->ix, repo, tag, &was);
    if (rc != 1)
        return rc;
    rc = index_tag_expire(c->ix, repo, tag, before);
    /* Whatever the index did, the hot copy may no longer say what it holds. */
    cache_hot_key2(key, sizeof(key), repo, tag);
    hot_del(c->hot_tags, key);
    if (rc == 1 && old != NULL)
        *old = was;
    return rc;
}
