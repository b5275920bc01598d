/*
 * Unit tests for proxy/cache/cache_gc.c, the sweep: least recently pulled images out first
 * until the budget holds, shared content kept while anything retained references it, an
 * index's children and a subject's referrers following their parent, content a queued push
 * needs kept, young unreferenced content kept, a dry run removing nothing, lifecycle rules
 * applied per repository, and files, rows and in-memory copies all going together.
 * A real store and SQLite file in a temporary directory; times are parameters.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "db_index.h"
#include "policy_lifecycle.h"
#include "store.h"
#include "util.h"

#define MT_OCI "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define T0 ((int64_t)1764576000)
#define DAY 86400

static char dir[64];

static void mk(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_cache_gc.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(gc, .init = mk, .fini = rm);

static struct cache *open_cache(void)
{
    char *err = NULL;
    struct cache *c = cache_open(dir, NULL, &err);

    cr_assert_not_null(c, "cache_open: %s", err ? err : "");
    return c;
}

/* A digest made of <n>: sha256:000…n. */
static const char *dg(int n)
{
    static char bufs[16][80];
    static int k;
    char *b = bufs[k++ % 16];

    snprintf(b, 80, "sha256:%064x", n);
    return b;
}

static void put_file(struct cache *c, const char *digest, int64_t size)
{
    char *buf = xcalloc(1, (size_t)size + 1);
    char *err = NULL;

    cr_assert_eq(store_put_small(cache_store(c), digest, buf, (size_t)size, &err), 0, "%s",
                 err ? err : "");
    free(buf);
}

/* A stored blob of <size> bytes fetched for <repo> at <now>. */
static void blob(struct cache *c, int64_t repo, int n, int64_t size, int64_t now)
{
    put_file(c, dg(n), size);
    cache_blob_stored(c, dg(n), size, repo, now);
}

/* Image manifest <m> in *repo with config <cfg> and <nl> layers, stored at <now>; tagged <tag>
 * when not NULL. Its blobs are stored too, each <size> bytes. */
static void image(struct cache *c, int64_t *repo, int m, const char *tag, int cfg, const int *l,
                  size_t nl, int64_t size, int64_t now)
{
    char body[4096];
    size_t len;
    char *err = NULL;

    len = (size_t)snprintf(body, sizeof(body),
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI "\",\"config\":"
                           "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                           "\"digest\":\"%s\",\"size\":%lld},\"layers\":[",
                           dg(cfg), (long long)size);
    blob(c, *repo, cfg, size, now);
    for (size_t i = 0; i < nl; i++) {
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                                "\"digest\":\"%s\",\"size\":%lld}",
                                i ? "," : "", dg(l[i]), (long long)size);
        blob(c, *repo, l[i], size, now);
    }
    len += (size_t)snprintf(body + len, sizeof(body) - len, "]}");
    cr_assert_eq(store_put_small(cache_store(c), dg(m), body, len, &err), 0);
    cr_assert_eq(cache_manifest_put(c, repo, dg(m), MT_OCI, body, len, now), 0);
    if (tag != NULL)
        cr_assert_eq(cache_tag_put(c, *repo, tag, dg(m), MT_OCI, now), 0);
}

static int64_t repo(struct cache *c, const char *name)
{
    int64_t r = cache_repo_confirm(c, cache_repo_id(c, "hub", name));

    cr_assert_gt(r, 0);
    return r;
}

static int run(struct cache *c, int64_t budget, int dry, int64_t now, struct cache_gc_result *r)
{
    struct cache_gc_opts o = {0};

    o.cg_budget = budget;
    o.cg_dry_run = dry;
    return cache_gc(c, &o, now, r);
}

/* The image of <r> whose manifest is <m>, or NULL. */
static const struct cache_gc_image *expired(const struct cache_gc_result *r, int m)
{
    for (size_t i = 0; i < r->gr_nimages; i++)
        if (strcmp(r->gr_images[i].gi_digest, dg(m)) == 0)
            return &r->gr_images[i];
    return NULL;
}

Test(gc, least_recently_pulled_go_first_until_the_budget_holds)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a"), b = repo(c, "b"), d = repo(c, "d");
    struct cache_gc_result r;
    struct index_tag t;
    const char *body;
    size_t len;

    /* Three images of 3 x 1000 bytes plus their manifests. */
    image(c, &a, 100, "1", 101, (const int[]){102, 103}, 2, 1000, T0);
    image(c, &b, 200, "1", 201, (const int[]){202, 203}, 2, 1000, T0);
    image(c, &d, 300, "1", 301, (const int[]){302, 303}, 2, 1000, T0);
    cr_assert_gt(cache_used_bytes(c), 9000);
    /* Pulled in the order b, a, d: b is the least recently pulled. */
    cache_note_pulled(c, b, "1", T0 + 10);
    cache_flush(c, T0 + 10); /* stamps carry the flush time */
    cache_note_pulled(c, a, "1", T0 + 20);
    cache_flush(c, T0 + 20); /* stamps carry the flush time */
    cache_note_pulled(c, d, "1", T0 + 30);
    cache_flush(c, T0 + 30); /* stamps carry the flush time */
    cr_assert_not_null(cache_manifest_load(c, &b, dg(200), &body, &len, T0 + 30));
    cr_assert_eq(cache_tag_get(c, b, "1", &t), 1);

    cr_assert_eq(run(c, 7500, 0, T0 + 100, &r), 0);
    cr_assert_eq(r.gr_nimages, 1, "%zu", r.gr_nimages);
    cr_assert_not_null(expired(&r, 200));
    cr_assert_eq(expired(&r, 200)->gi_rule_priority, 0, "the budget, not a rule");
    cr_assert_gt(expired(&r, 200)->gi_bytes, 3000);
    cr_assert_eq(r.gr_files, 4, "manifest, config and two layers");
    cr_assert_leq(r.gr_used_after, 7500);
    cr_assert_eq(cache_used_bytes(c), r.gr_used_after);
    cr_assert_eq(cache_has(c, dg(200)), 0);
    cr_assert_eq(cache_has(c, dg(202)), 0);
    cr_assert_eq(cache_has(c, dg(102)), 1);
    cr_assert_eq(cache_has(c, dg(302)), 1);
    cr_assert_eq(cache_tag_get(c, b, "1", &t), 0, "the tag went, and its copy with it");
    cr_assert_null(cache_manifest_load(c, &b, dg(200), &body, &len, T0 + 100),
                   "the manifest's bytes in memory went too");
    cr_assert_eq(cache_repo_has(c, b, dg(202)), 0);
    cr_assert_eq(cache_tag_get(c, a, "1", &t), 1);
    cache_gc_result_free(&r);

    /* Within budget: nothing more goes. */
    cr_assert_eq(run(c, 7500, 0, T0 + 200, &r), 0);
    cr_assert_eq(r.gr_nimages, 0);
    cr_assert_eq(r.gr_files, 0);
    cache_gc_result_free(&r);
    cache_close(c, T0);

    /* The sums survive a restart. */
    c = open_cache();
    cr_assert_leq(cache_used_bytes(c), 7500);
    cr_assert_gt(cache_used_bytes(c), 6000);
    cache_close(c, T0);
}

Test(gc, shared_content_stays_while_a_retained_image_references_it)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a"), b = repo(c, "b");
    struct cache_gc_result r;

    /* Both images share layer 900; a is pulled first. */
    image(c, &a, 100, "x", 101, (const int[]){900, 102}, 2, 1000, T0);
    image(c, &b, 200, "x", 201, (const int[]){900, 202}, 2, 1000, T0);
    cache_note_pulled(c, a, "x", T0 + 1);
    cache_flush(c, T0 + 1); /* stamps carry the flush time */
    cache_note_pulled(c, b, "x", T0 + 2);
    cache_flush(c, T0 + 2); /* stamps carry the flush time */
    cr_assert_eq(run(c, 4000, 0, T0 + 10, &r), 0);
    cr_assert_eq(r.gr_nimages, 1);
    cr_assert_not_null(expired(&r, 100));
    cr_assert_eq(cache_has(c, dg(900)), 1, "b still references the shared layer");
    cr_assert_eq(cache_has(c, dg(102)), 0);
    cr_assert_eq(cache_has(c, dg(101)), 0);
    cr_assert_lt(expired(&r, 100)->gi_bytes, 3000, "the shared layer is not a's to free");
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, a_dry_run_removes_nothing)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a"), b = repo(c, "b");
    struct cache_gc_result r;
    int64_t used;

    image(c, &a, 100, "x", 101, (const int[]){102}, 1, 1000, T0);
    image(c, &b, 200, "x", 201, (const int[]){202}, 1, 1000, T0);
    cache_note_pulled(c, a, "x", T0 + 1);
    cache_flush(c, T0 + 1); /* stamps carry the flush time */
    used = cache_used_bytes(c);
    cr_assert_eq(run(c, 2500, 1, T0 + 10, &r), 0);
    cr_assert_eq(r.gr_nimages, 1);
    cr_assert_not_null(expired(&r, 200), "b was never pulled: it goes first");
    cr_assert_eq(r.gr_files, 3, "%lld", (long long)r.gr_files);
    cr_assert_eq(r.gr_used_after, used - r.gr_freed);
    cr_assert_eq(cache_used_bytes(c), used);
    cr_assert_eq(cache_has(c, dg(200)), 1);
    cr_assert_eq(cache_has(c, dg(202)), 1);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, an_index_keeps_its_children_and_a_subject_its_referrers)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "multi"), b = repo(c, "other");
    struct cache_gc_result r;
    char body[2048], *err = NULL;
    size_t len;

    image(c, &a, 110, NULL, 111, (const int[]){112}, 1, 1000, T0);
    image(c, &a, 120, NULL, 121, (const int[]){122}, 1, 1000, T0);
    len = (size_t)snprintf(body, sizeof(body),
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":["
                           "{\"mediaType\":\"" MT_OCI "\",\"digest\":\"%s\",\"size\":10,"
                           "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
                           "{\"mediaType\":\"" MT_OCI "\",\"digest\":\"%s\",\"size\":10,"
                           "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
                           dg(110), dg(120));
    cr_assert_eq(store_put_small(cache_store(c), dg(100), body, len, &err), 0);
    cr_assert_eq(cache_manifest_put(c, &a, dg(100), MT_INDEX, body, len, T0), 0);
    cr_assert_eq(cache_tag_put(c, a, "latest", dg(100), MT_INDEX, T0), 0);
    /* A referrer of platform manifest 110 (an SBOM, say). */
    len = (size_t)snprintf(body, sizeof(body),
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI "\",\"artifactType\":"
                           "\"application/x-sbom\",\"config\":{\"mediaType\":\"application/"
                           "vnd.oci.empty.v1+json\",\"digest\":\"%s\",\"size\":2},\"layers\":[],"
                           "\"subject\":{\"mediaType\":\"" MT_OCI "\",\"digest\":\"%s\","
                           "\"size\":10}}",
                           dg(131), dg(110));
    blob(c, a, 131, 2, T0);
    cr_assert_eq(store_put_small(cache_store(c), dg(130), body, len, &err), 0);
    cr_assert_eq(cache_manifest_put(c, &a, dg(130), MT_OCI, body, len, T0), 0);
    /* A second, small image, pulled more recently. */
    image(c, &b, 200, "x", 201, (const int[]){202}, 1, 10, T0);
    cache_note_pulled(c, a, "latest", T0 + 1);
    cache_flush(c, T0 + 1); /* stamps carry the flush time */
    cache_note_pulled(c, b, "x", T0 + 2);
    cache_flush(c, T0 + 2); /* stamps carry the flush time */

    /* Enough room for everything: the index's children and the referrer are kept. */
    cr_assert_eq(run(c, 100000, 0, T0 + 100, &r), 0);
    cr_assert_eq(r.gr_nimages, 0, "children and referrers are not images of their own");
    cr_assert_eq(r.gr_files, 0);
    cache_gc_result_free(&r);

    /* No room for the index: it goes with both children, their blobs and the referrer. */
    cr_assert_eq(run(c, 1000, 0, T0 + 200, &r), 0);
    cr_assert_eq(r.gr_nimages, 1);
    cr_assert_not_null(expired(&r, 100));
    for (int d = 100; d <= 131; d++)
        if (d == 100 || d == 110 || d == 111 || d == 112 || d == 120 || d == 121 || d == 122 ||
            d == 130 || d == 131)
            cr_assert_eq(cache_has(c, dg(d)), 0, "%d", d);
    cr_assert_eq(cache_has(c, dg(200)), 1);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, content_a_queued_push_needs_stays)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a"), b = repo(c, "b");
    struct cache_gc_result r;

    image(c, &a, 100, "x", 101, (const int[]){102}, 1, 1000, T0);
    image(c, &b, 200, "x", 201, (const int[]){202}, 1, 1000, T0);
    cache_note_pulled(c, b, "x", T0 + 2);
    cache_flush(c, T0 + 2); /* stamps carry the flush time */
    cr_assert_eq(index_push_enqueue(cache_index(c), "hub/a", a, dg(100), "x", T0), 1);
    cr_assert_eq(run(c, 3500, 0, T0 + 10, &r), 0);
    cr_assert_eq(cache_has(c, dg(102)), 1, "the push still needs a's layer");
    cr_assert_eq(cache_has(c, dg(202)), 0, "b had to make room instead");
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, lone_blobs_are_kept_without_a_budget_and_go_least_recently_used_with_one)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a");
    struct cache_gc_result r;

    blob(c, a, 500, 100, T0);                /* fetched by digest, no manifest references it */
    blob(c, a, 501, 100, T0 + 90);           /* the same, more recently */
    cache_note_touched(c, dg(500), T0 + 95); /* ... but 500 was served since */
    cache_flush(c, T0 + 95);
    blob(c, a, 502, 100, T0 + 10);
    /* No budget, no policy: nothing goes, however old (a schema 1 image's layers are such). */
    cr_assert_eq(run(c, 0, 0, T0 + 10000, &r), 0);
    cr_assert_eq(r.gr_files, 0);
    cache_gc_result_free(&r);
    /* A budget for two: the least recently used lone blob goes. */
    cr_assert_eq(run(c, 250, 0, T0 + 10000, &r), 0);
    cr_assert_eq(r.gr_files, 1);
    cr_assert_eq(cache_has(c, dg(502)), 0);
    cr_assert_eq(cache_has(c, dg(500)), 1, "served at T0+95: used more recently than stored");
    cr_assert_eq(cache_has(c, dg(501)), 1);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, a_tagged_child_of_an_evicted_index_stays)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "multi"), b = repo(c, "other");
    struct cache_gc_result r;
    char body[2048], *err = NULL;
    size_t len;

    image(c, &a, 110, "v1-amd64", 111, (const int[]){112}, 1, 1000, T0);
    image(c, &a, 120, NULL, 121, (const int[]){122}, 1, 1000, T0);
    len = (size_t)snprintf(body, sizeof(body),
                           "{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":["
                           "{\"mediaType\":\"" MT_OCI "\",\"digest\":\"%s\",\"size\":10},"
                           "{\"mediaType\":\"" MT_OCI "\",\"digest\":\"%s\",\"size\":10}]}",
                           dg(110), dg(120));
    cr_assert_eq(store_put_small(cache_store(c), dg(100), body, len, &err), 0);
    cr_assert_eq(cache_manifest_put(c, &a, dg(100), MT_INDEX, body, len, T0), 0);
    cr_assert_eq(cache_tag_put(c, a, "v1", dg(100), MT_INDEX, T0), 0);
    image(c, &b, 200, "x", 201, (const int[]){202}, 1, 1000, T0);
    cache_note_pulled(c, a, "v1", T0 + 1);
    cache_flush(c, T0 + 1);
    cache_note_pulled(c, b, "x", T0 + 50);
    cache_flush(c, T0 + 50);
    cache_note_pulled(c, a, "v1-amd64", T0 + 90); /* the most recent pull of all */
    cache_flush(c, T0 + 90);
    /* Room for two single images, not for the index with both children. */
    cr_assert_eq(run(c, 5000, 0, T0 + 100, &r), 0);
    cr_assert_not_null(expired(&r, 100), "the index goes");
    cr_assert_null(expired(&r, 110), "its tagged child is an image of its own, the newest");
    cr_assert_eq(cache_has(c, dg(110)), 1);
    cr_assert_eq(cache_has(c, dg(112)), 1);
    cr_assert_eq(cache_has(c, dg(122)), 0, "the untagged child went with the index");
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, a_row_whose_file_is_still_being_committed_stays)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a");
    struct cache_gc_result r;
    const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI "\",\"layers\":[]}";

    /* The manifest's row is written before the commit thread lands its file. */
    cr_assert_eq(cache_manifest_put(c, &a, dg(100), MT_OCI, body, strlen(body), T0), 0);
    cr_assert_eq(run(c, 1, 0, T0 + 10, &r), 0);
    cr_assert_eq(r.gr_files, 0, "young and without its file: a commit in flight");
    cache_gc_result_free(&r);
    cr_assert_eq(cache_manifest_info(c, dg(100), NULL, 0, NULL), 1, "its row stays");
    /* A minute on, a row without its file is just that: dropped. */
    cr_assert_eq(run(c, 1, 0, T0 + 100, &r), 0);
    cr_assert_eq(cache_manifest_info(c, dg(100), NULL, 0, NULL), 0);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, space_held_by_readers_does_not_make_sweeps_cascade)
{
    struct cache *c = open_cache();
    struct cache_gc_result r;
    struct cache_gc_opts o = {0};
    int fds[32], nfd = 0;
    int64_t size;

    for (int i = 0; i < 6; i++) {
        int64_t rp = repo(c, i == 0   ? "r0"
                             : i == 1 ? "r1"
                             : i == 2 ? "r2"
                             : i == 3 ? "r3"
                             : i == 4 ? "r4"
                                      : "r5");
        image(c, &rp, 100 + 10 * i, "x", 101 + 10 * i, (const int[]){102 + 10 * i}, 1, 100000,
              T0 + i);
        cache_note_pulled(c, rp, "x", T0 + i);
        cache_flush(c, T0 + i);
    }
    /* Every file held open, as readers being sent them would: unlinking frees no space. */
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++) {
            int fd = cache_open_blob(c, dg(100 + 10 * i + k), &size);
            if (fd != -1)
                fds[nfd++] = fd;
        }
    /* 150 kB short of the floor, and the filesystem's free space does not move (the files
     * are held open): given, so that other processes writing to the disk cannot change it. */
    o.cg_free_given = 1;
    o.cg_free_bytes = 1000000;
    o.cg_min_free = 1150000;
    cr_assert_eq(cache_gc(c, &o, T0 + 100, &r), 0);
    cr_assert_geq(r.gr_freed, 150000);
    cr_assert_lt(r.gr_nimages, 3, "only what the shortfall needs: %zu images", r.gr_nimages);
    cache_gc_result_free(&r);
    cr_assert_eq(cache_gc(c, &o, T0 + 101, &r), 0);
    cr_assert_eq(r.gr_nimages, 0, "the space on its way is counted: no second eviction");
    cache_gc_result_free(&r);
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    cache_close(c, T0);
}

/* The policy, as the config would parse it. */
static const struct lc_policy *policy_for(void *arg, const char *rule)
{
    (void)rule;
    return arg;
}

Test(gc, lifecycle_rules_expire_per_repository)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "app"), b = repo(c, "other");
    struct cache_gc_result r;
    struct cache_gc_opts o = {0};
    char *prefixes[] = {"prod-"};
    struct lc_rule rules[2] = {
        {.lr_priority = 1,
         .lr_tag_status = LC_TAGGED,
         .lr_prefixes = prefixes,
         .lr_nprefixes = 1,
         .lr_count_type = LC_COUNT_MORE_THAN,
         .lr_count_number = 2},
        {.lr_priority = 2,
         .lr_tag_status = LC_UNTAGGED,
         .lr_count_type = LC_SINCE_PUSHED,
         .lr_count_number = 1},
    };
    struct lc_policy p = {rules, 2};
    char tag[16];

    /* app: prod-1..prod-4 pushed a day apart; an untagged image pushed 3 days ago. */
    for (int i = 1; i <= 4; i++) {
        snprintf(tag, sizeof(tag), "prod-%d", i);
        image(c, &a, 100 + 10 * i, tag, 101 + 10 * i, (const int[]){102 + 10 * i}, 1, 10,
              T0 + i * DAY);
    }
    image(c, &a, 200, NULL, 201, (const int[]){202}, 1, 10, T0 + 2 * DAY);
    /* other: prod-1..prod-3, all kept (its own count) but for the oldest. */
    for (int i = 1; i <= 3; i++) {
        snprintf(tag, sizeof(tag), "prod-%d", i);
        image(c, &b, 300 + 10 * i, tag, 301 + 10 * i, (const int[]){302 + 10 * i}, 1, 10,
              T0 + i * DAY);
    }
    o.cg_policy = policy_for;
    o.cg_arg = &p;
    cr_assert_eq(cache_gc(c, &o, T0 + 5 * DAY, &r), 0);
    cr_assert_eq(r.gr_nimages, 4, "%zu", r.gr_nimages);
    cr_assert_eq(expired(&r, 110)->gi_rule_priority, 1);
    cr_assert_eq(expired(&r, 120)->gi_rule_priority, 1);
    cr_assert_eq(expired(&r, 200)->gi_rule_priority, 2);
    cr_assert_eq(expired(&r, 310)->gi_rule_priority, 1);
    cr_assert_null(expired(&r, 130));
    cr_assert_null(expired(&r, 320));
    cr_assert_eq(cache_has(c, dg(112)), 0);
    cr_assert_eq(cache_has(c, dg(142)), 1);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}

Test(gc, slices_skip_what_was_used_since_the_plan)
{
    struct cache *c = open_cache();
    int64_t a = repo(c, "a"), b = repo(c, "b"), d = repo(c, "d");
    struct cache_gc_result r;
    struct cache_gc_opts o = {0};
    struct cache_sweep *sw = NULL;
    struct index_tag t;
    int more, steps = 0;

    image(c, &a, 100, "x", 101, (const int[]){102}, 1, 1000, T0);
    image(c, &b, 200, "x", 201, (const int[]){202}, 1, 1000, T0);
    image(c, &d, 300, "x", 301, (const int[]){302}, 1, 1000, T0 + 5);
    cache_note_pulled(c, d, "x", T0 + 50);
    cache_flush(c, T0 + 50);
    o.cg_budget = 2500; /* room for d only: a and b are planned out */
    cr_assert_eq(cache_gc_begin(c, &o, T0 + 100, &r, &sw), 0);
    cr_assert_not_null(sw);
    cr_assert_eq(r.gr_nimages, 2);
    cr_assert_eq(cache_has(c, dg(102)), 1, "the plan removes nothing");
    /* Between the plan and its slices a client pulls a's tag and its layer. */
    cache_note_pulled(c, a, "x", T0 + 101);
    cache_note_touched(c, dg(102), T0 + 101);
    cache_note_touched(c, dg(101), T0 + 101);
    cache_note_touched(c, dg(100), T0 + 101);
    do {
        more = cache_gc_step(c, sw, T0 + 101, 1);
        steps++;
    } while (more == 1 && steps < 100);
    cr_assert_eq(more, 0);
    cr_assert_gt(steps, 3, "one removal per slice");
    cache_gc_end(c, sw, T0 + 101, &r);
    cr_assert_eq(cache_has(c, dg(202)), 0, "b went");
    cr_assert_eq(cache_has(c, dg(102)), 1, "a's layer was served since the plan: kept");
    cr_assert_eq(cache_has(c, dg(100)), 1);
    cr_assert_eq(cache_tag_get(c, a, "x", &t), 1, "a was pulled since the plan: kept");
    cr_assert_geq(r.gr_skipped, 4);
    cr_assert_eq(r.gr_files, 3, "b's manifest, config and layer");
    cr_assert_eq(cache_used_bytes(c), r.gr_used_after);
    cache_gc_result_free(&r);
    cache_close(c, T0);
}
