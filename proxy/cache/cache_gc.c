/*
 * The sweep (cache.h, "the byte budget and the lifecycle rules"): which images the cache
 * keeps, and removing everything else.
 *
 * The mark phase runs in memory over one read of the index: every stored digest becomes a node
 * of a graph whose edges say "keeping A keeps B" (a manifest keeps what it references; a
 * subject keeps its referrers). Then, in order:
 *   1. digests a queued ECR push still needs are kept, whatever the budget says;
 *   2. each repository's lifecycle policy (policy_lifecycle) expires its images;
 *   3. the images left, and the blobs no manifest references (fetched by digest alone, or
 *      listed by a manifest the proxy cannot parse) each on its own, most recently used first,
 *      are kept while what they keep fits the limit: the budget less the bytes about to be
 *      written, and less what the filesystem's free-space floor asks for. Past the first one
 *      that does not fit, only those that cost nothing more (their content is kept already)
 *      stay: the least recently pulled go first, strictly. Without a budget or a floor to
 *      meet, everything the lifecycle rules leave stays;
 *   4. a row whose file is not there yet and that is less than a minute old is a commit in
 *      flight (a manifest's row is written before the commit thread lands its file): kept.
 * Every node not kept is garbage: its file is unlinked (a reader holding it open reads on),
 * then its rows dropped, so a crash in between leaves rows without files, which the next
 * start's reconcile drops. Expired images lose their tags and marks in their repository.
 * Space unlinked while readers hold it is not free yet: the floor counts what sweeps freed in
 * the last minute as on its way, so sweeps in a row do not each evict the same shortfall.
 * In-memory copies: the manifest bytes of removed digests go, and the tag and mark maps are
 * cleared whenever anything changed, so no copy outlives its row.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache-int.h"
#include "cache.h"
#include "hot.h"
#include "log.h"
#include "policy_lifecycle.h"
#include "store.h"
#include "util.h"

/* A row younger than this whose file is missing is a commit in flight. */
#define GC_COMMIT_SECONDS 60
/* Bytes a sweep unlinked count as on their way to the filesystem's free space this long. */
#define GC_FREED_SECONDS 60

struct gc_node {
    char *gn_digest;
    int64_t gn_size;
    int64_t gn_stored_at;
    int64_t gn_used_at; /* last served (blobs) or pulled (manifests), 0 never */
    int gn_manifest;    /* indexed as a manifest */
    int gn_has_parent;  /* some manifest references it, or it is a referrer */
    int gn_kept;
    int gn_attributed; /* its bytes were counted for an expired image already */
    size_t gn_edge0, gn_nedges;
};

struct gc_graph {
    struct gc_node *nodes;
    size_t nnodes, cap;
    size_t *slots; /* open addressing: node index + 1, 0 empty */
    size_t nslots;
    size_t (*edges)[2]; /* (from, to) while reading, then sorted by from */
    size_t nedges, ecap;
    size_t *to; /* CSR targets after gc_graph_seal */
    char **pinned;
    size_t npinned, pcap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The node of <digest>, or (size_t)-1. */
static size_t node_find(const struct gc_graph *g, const char *digest)
{
    size_t i;

    if (g->nslots == 0)
        return (size_t)-1;
    for (i = hash_str(digest) & (g->nslots - 1); g->slots[i] != 0; i = (i + 1) & (g->nslots - 1))
        if (strcmp(g->nodes[g->slots[i] - 1].gn_digest, digest) == 0)
            return g->slots[i] - 1;
    return (size_t)-1;
}

static void slots_grow(struct gc_graph *g)
{
    size_t n = g->nslots ? g->nslots * 2 : 1024;

    free(g->slots);
    g->slots = xcalloc(n, sizeof(*g->slots));
    g->nslots = n;
    for (size_t k = 0; k < g->nnodes; k++) {
        size_t i = hash_str(g->nodes[k].gn_digest) & (n - 1);
        while (g->slots[i] != 0)
            i = (i + 1) & (n - 1);
        g->slots[i] = k + 1;
    }
}

static void on_content(void *arg, const char *digest, int64_t size, int64_t stored_at, int manifest,
                       int64_t used_at)
{
    struct gc_graph *g = arg;
    size_t i = node_find(g, digest);

    if (i != (size_t)-1) {
        g->nodes[i].gn_manifest |= manifest; /* stored both ways: one file */
        if (used_at > g->nodes[i].gn_used_at)
            g->nodes[i].gn_used_at = used_at;
        return;
    }
    if (g->nnodes == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->nodes = xrealloc(g->nodes, g->cap * sizeof(*g->nodes));
    }
    memset(&g->nodes[g->nnodes], 0, sizeof(g->nodes[0]));
    g->nodes[g->nnodes].gn_digest = xstrdup(digest);
    g->nodes[g->nnodes].gn_size = size;
    g->nodes[g->nnodes].gn_stored_at = stored_at;
    g->nodes[g->nnodes].gn_manifest = manifest;
    g->nodes[g->nnodes].gn_used_at = used_at;
    g->nnodes++;
    if (g->nnodes * 2 > g->nslots) {
        slots_grow(g);
        return;
    }
    i = hash_str(digest) & (g->nslots - 1);
    while (g->slots[i] != 0)
        i = (i + 1) & (g->nslots - 1);
    g->slots[i] = g->nnodes;
}

static void on_ref(void *arg, const char *manifest, const char *child, int subject)
{
    struct gc_graph *g = arg;
    size_t m = node_find(g, manifest), c = node_find(g, child);

    if (m == (size_t)-1 || c == (size_t)-1 || m == c)
        return; /* what is not stored keeps nothing and is not kept */
    if (g->nedges == g->ecap) {
        g->ecap = g->ecap ? g->ecap * 2 : 1024;
        g->edges = xrealloc(g->edges, g->ecap * sizeof(*g->edges));
    }
    /* A manifest keeps its child; a subject keeps its referrer. */
    g->edges[g->nedges][0] = subject ? c : m;
    g->edges[g->nedges][1] = subject ? m : c;
    g->nodes[subject ? m : c].gn_has_parent = 1;
    g->nedges++;
}

static void on_pinned(void *arg, const char *digest)
{
    struct gc_graph *g = arg;

    if (g->npinned == g->pcap) {
        g->pcap = g->pcap ? g->pcap * 2 : 64;
        g->pinned = xrealloc(g->pinned, g->pcap * sizeof(*g->pinned));
    }
    g->pinned[g->npinned++] = xstrdup(digest);
}

static int edge_cmp(const void *a, const void *b)
{
    const size_t *x = a, *y = b;

    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

/* Sort the edges by their source and give each node its range of targets. */
static void gc_graph_seal(struct gc_graph *g)
{
    if (g->nedges > 0)
        qsort(g->edges, g->nedges, sizeof(*g->edges), edge_cmp);
    g->to = xcalloc(g->nedges + 1, sizeof(*g->to));
    for (size_t e = 0; e < g->nedges; e++) {
        struct gc_node *n = &g->nodes[g->edges[e][0]];
        if (n->gn_nedges == 0)
            n->gn_edge0 = e;
        n->gn_nedges++;
        g->to[e] = g->edges[e][1];
    }
}

static void gc_graph_free(struct gc_graph *g)
{
    for (size_t i = 0; i < g->nnodes; i++)
        free(g->nodes[i].gn_digest);
    for (size_t i = 0; i < g->npinned; i++)
        free(g->pinned[i]);
    free(g->pinned);
    free(g->nodes);
    free(g->slots);
    free(g->edges);
    free(g->to);
}

/* A stack of node indexes, reused by every walk. */
struct gc_stack {
    size_t *v;
    size_t n, cap;
};

static void push(struct gc_stack *s, size_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = x;
}

/*
 * Keep <root> and everything it keeps that is not kept yet; each newly kept node is pushed on
 * <added> (for an undo). Returns the bytes newly kept.
 */
static int64_t keep_from(struct gc_graph *g, size_t root, struct gc_stack *work,
                         struct gc_stack *added)
{
    int64_t bytes = 0;

    work->n = 0;
    if (g->nodes[root].gn_kept)
        return 0;
    g->nodes[root].gn_kept = 1;
    push(work, root);
    while (work->n > 0) {
        struct gc_node *n = &g->nodes[work->v[--work->n]];
        bytes += n->gn_size;
        push(added, (size_t)(n - g->nodes));
        for (size_t e = n->gn_edge0; e < n->gn_edge0 + n->gn_nedges; e++) {
            size_t t = g->to[e];
            if (!g->nodes[t].gn_kept) {
                g->nodes[t].gn_kept = 1;
                push(work, t);
            }
        }
    }
    return bytes;
}

/* The bytes of what <root> alone keeps among the garbage (each byte counted for one image). */
static int64_t attribute_from(struct gc_graph *g, size_t root, struct gc_stack *work)
{
    int64_t bytes = 0;

    work->n = 0;
    if (g->nodes[root].gn_kept || g->nodes[root].gn_attributed)
        return 0;
    g->nodes[root].gn_attributed = 1;
    push(work, root);
    while (work->n > 0) {
        struct gc_node *n = &g->nodes[work->v[--work->n]];
        bytes += n->gn_size;
        for (size_t e = n->gn_edge0; e < n->gn_edge0 + n->gn_nedges; e++) {
            struct gc_node *t = &g->nodes[g->to[e]];
            if (!t->gn_kept && !t->gn_attributed) {
                t->gn_attributed = 1;
                push(work, g->to[e]);
            }
        }
    }
    return bytes;
}

/* One image as the sweep sees it. */
struct gc_image {
    const struct index_image *im;
    size_t node;
    int expired; /* a lifecycle rule's priority, 0 */
    int evicted; /* the byte budget's */
};

/* What the byte budget orders: an image, or a blob no manifest references. */
struct gc_cand {
    struct gc_image *img; /* NULL: the blob <node> alone */
    size_t node;
    int64_t pulled, pushed;
    const char *digest;
    int64_t repo;
};

static int by_recent_use(const void *a, const void *b)
{
    const struct gc_cand *x = a, *y = b;

    if (x->pulled != y->pulled)
        return x->pulled > y->pulled ? -1 : 1;
    if (x->pushed != y->pushed)
        return x->pushed > y->pushed ? -1 : 1;
    if (x->repo != y->repo)
        return x->repo < y->repo ? -1 : 1;
    return strcmp(x->digest, y->digest);
}

/* Split "a,b,c" into a fresh array of strings (caller frees each and the array). */
static char **split_tags(const char *s, size_t *n)
{
    char **v = NULL;
    size_t k = 0;

    *n = 0;
    if (*s == '\0')
        return NULL;
    for (const char *p = s;; p++)
        if (*p == ',' || *p == '\0') {
            k++;
            if (*p == '\0')
                break;
        }
    v = xcalloc(k, sizeof(*v));
    for (const char *p = s; *n < k;) {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        v[*n] = xmalloc(len + 1);
        memcpy(v[*n], p, len);
        v[*n][len] = '\0';
        (*n)++;
        p += len + 1;
    }
    return v;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Run each repository's lifecycle policy over its images (grouped: the index orders them by
 * repository). */
static void run_lifecycle(const struct cache_gc_opts *o, struct gc_image *imgs, size_t n,
                          int64_t now)
{
    for (size_t a = 0, b; a < n; a = b) {
        const struct lc_policy *p;
        struct lc_image *li;
        char ***tags;
        int *out;

        for (b = a + 1; b < n && imgs[b].im->ii_repo == imgs[a].im->ii_repo; b++)
            ;
        p = o->cg_policy != NULL ? o->cg_policy(o->cg_arg, imgs[a].im->ii_rule) : NULL;
        if (p == NULL || p->lp_nrules == 0)
            continue;
        li = xcalloc(b - a, sizeof(*li));
        tags = xcalloc(b - a, sizeof(*tags));
        out = xcalloc(b - a, sizeof(*out));
        for (size_t i = a; i < b; i++) {
            li[i - a].li_digest = imgs[i].im->ii_digest;
            tags[i - a] = split_tags(imgs[i].im->ii_tags, &li[i - a].li_ntags);
            li[i - a].li_tags = (const char *const *)tags[i - a];
            li[i - a].li_pushed_at = imgs[i].im->ii_pushed_at;
            li[i - a].li_pulled_at = imgs[i].im->ii_pulled_at;
        }
        lifecycle_evaluate(p, li, b - a, now, out);
        for (size_t i = a; i < b; i++) {
            imgs[i].expired = out[i - a];
            free_strings(tags[i - a], li[i - a].li_ntags);
        }
        free(out);
        free(tags);
        free(li);
    }
}

/* The most the kept content may weigh, or INT64_MAX when nothing limits it. <freeing>: bytes
 * recent sweeps unlinked that the filesystem may not show as free yet. */
static int64_t gc_limit(const struct cache_gc_opts *o, int64_t used, int64_t free_bytes,
                        int64_t freeing)
{
    int64_t limit = INT64_MAX;

    if (o->cg_budget > 0)
        limit = o->cg_budget - o->cg_need;
    /* The filesystem must keep cg_min_free: free what is missing. (A fill asking for room has
     * written its temp file already: cg_need is in free_bytes.) */
    if (o->cg_min_free > 0 && free_bytes >= 0 && free_bytes + freeing < o->cg_min_free) {
        int64_t floor = used - (o->cg_min_free - free_bytes - freeing);
        if (floor < limit)
            limit = floor;
    }
    return limit < 0 ? 0 : limit;
}

/* Fill <out>'s image entry for <g>. */
static void result_add(struct cache_gc_result *out, const struct gc_image *g, int64_t bytes)
{
    struct cache_gc_image *r;

    out->gr_images = xrealloc(out->gr_images, (out->gr_nimages + 1) * sizeof(*out->gr_images));
    r = &out->gr_images[out->gr_nimages++];
    memset(r, 0, sizeof(*r));
    r->gi_rule = xstrdup(g->im->ii_rule);
    r->gi_name = xstrdup(g->im->ii_name);
    r->gi_digest = xstrdup(g->im->ii_digest);
    r->gi_tags = split_tags(g->im->ii_tags, &r->gi_ntags);
    r->gi_bytes = bytes;
    r->gi_rule_priority = g->expired;
}

/*
 * A planned sweep, applied a slice at a time (cache_gc_step) so that the event loop serves
 * between slices. Everything is copied out of the plan's graph. Between the plan and a
 * slice, clients go on pulling: a digest used since the plan (served, pulled, or referenced
 * by a manifest stored since) is skipped, and so is an image pulled since.
 */
struct cache_sweep {
    int64_t cs_planned_at;
    struct cs_unretain {
        int64_t repo;
        char digest[INDEX_DIGEST_MAX];
    } * cs_u;
    size_t cs_nu, cs_iu;
    struct cs_drop {
        char digest[INDEX_DIGEST_MAX];
        int64_t size;
    } * cs_d;
    size_t cs_nd, cs_id;
    int64_t cs_freed, cs_files, cs_skipped;
};

static struct cache_sweep *sweep_from_plan(struct gc_graph *g, const struct gc_image *imgs,
                                           size_t n, int64_t now)
{
    struct cache_sweep *sw = xcalloc(1, sizeof(*sw));

    sw->cs_planned_at = now;
    sw->cs_u = xcalloc(n + 1, sizeof(*sw->cs_u));
    for (size_t i = 0; i < n; i++)
        if (imgs[i].expired || imgs[i].evicted) {
            sw->cs_u[sw->cs_nu].repo = imgs[i].im->ii_repo;
            str_copy(sw->cs_u[sw->cs_nu++].digest, INDEX_DIGEST_MAX, imgs[i].im->ii_digest);
        }
    sw->cs_d = xcalloc(g->nnodes + 1, sizeof(*sw->cs_d));
    for (size_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].gn_kept) {
            str_copy(sw->cs_d[sw->cs_nd].digest, INDEX_DIGEST_MAX, g->nodes[i].gn_digest);
            sw->cs_d[sw->cs_nd++].size = g->nodes[i].gn_size;
        }
    return sw;
}

int cache_gc_step(struct cache *c, struct cache_sweep *sw, int64_t now, size_t max)
{
    struct index_unretain *u = xcalloc(max + 1, sizeof(*u));
    const char **drop = xcalloc(max + 1, sizeof(*drop));
    size_t nu = 0, nd = 0, done = 0;
    int rc = 0;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    /* Pulls since the last slice carry their stamps into the index first. */
    cache_flush(c, now);
    for (; done < max && sw->cs_iu < sw->cs_nu; done++, sw->cs_iu++) {
        const struct cs_unretain *x = &sw->cs_u[sw->cs_iu];
        if (index_gc_used_since(c->ix, x->digest, x->repo, sw->cs_planned_at) != 0) {
            sw->cs_skipped++;
            continue;
        }
        u[nu].iu_repo = x->repo;
        u[nu++].iu_digest = x->digest;
    }
    for (; done < max && sw->cs_id < sw->cs_nd; done++, sw->cs_id++) {
        const struct cs_drop *x = &sw->cs_d[sw->cs_id];
        if (index_gc_used_since(c->ix, x->digest, 0, sw->cs_planned_at) != 0) {
            sw->cs_skipped++;
            continue;
        }
        /* The file first: a crash before the rows go leaves rows the next start drops. */
        if (store_remove(c->st, x->digest) == -1) {
            log_event(LOG_WARN, "gc-remove-failed", "digest", x->digest, NULL);
            continue;
        }
        hot_del(c->hot_manifests, x->digest);
        drop[nd++] = x->digest;
        sw->cs_freed += x->size;
        sw->cs_files++;
    }
    if (nu > 0 || nd > 0) {
        rc = index_gc_apply(c->ix, u, nu, drop, nd);
        hot_clear(c->hot_tags);
        hot_clear(c->hot_known);
    }
    free(drop);
    free(u);
    if (rc == -1)
        return -1;
    return sw->cs_iu < sw->cs_nu || sw->cs_id < sw->cs_nd;
}

void cache_gc_end(struct cache *c, struct cache_sweep *sw, int64_t now, struct cache_gc_result *out)
{
    int64_t used;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    if (sw == NULL)
        return;
    c->freed_recent += sw->cs_freed;
    c->freed_at = now;
    used = index_used_bytes(c->ix);
    if (used >= 0)
        c->used_bytes = used; /* else the running sum stands */
    if (out != NULL) {
        out->gr_freed = sw->cs_freed;
        out->gr_files = sw->cs_files;
        out->gr_skipped = sw->cs_skipped;
        out->gr_used_after = c->used_bytes;
    }
    free(sw->cs_u);
    free(sw->cs_d);
    free(sw);
}

int cache_gc_begin(struct cache *c, const struct cache_gc_opts *o, int64_t now,
                   struct cache_gc_result *out, struct cache_sweep **sweep)
{
    static const struct index_gc_walk_fns fns = {on_content, on_ref, on_pinned};
    struct gc_graph g;
    struct index_image *ims = NULL;
    struct gc_image *imgs = NULL;
    struct gc_stack work = {0}, added = {0};
    struct gc_cand *cands = NULL;
    size_t nims = 0, ncands = 0;
    int64_t kept = 0, limit;
    int overflow = 0, rc = -1;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    memset(out, 0, sizeof(*out));
    memset(&g, 0, sizeof(g));
    *sweep = NULL;
    cache_flush(c, now); /* the pull stamps the order depends on */
    out->gr_used_before = index_used_bytes(c->ix);
    if (out->gr_used_before == -1 || index_gc_images(c->ix, &ims, &nims) == -1 ||
        index_gc_walk(c->ix, &fns, &g) == -1)
        goto out;
    gc_graph_seal(&g);
    if (now - c->freed_at > GC_FREED_SECONDS)
        c->freed_recent = 0;
    limit =
        gc_limit(o, out->gr_used_before,
                 o->cg_free_given ? o->cg_free_bytes : store_free_bytes(c->st), c->freed_recent);

    /* 1. What a queued push still needs. */
    for (size_t i = 0; i < g.npinned; i++) {
        size_t k = node_find(&g, g.pinned[i]);
        if (k != (size_t)-1)
            kept += keep_from(&g, k, &work, &added);
    }
    /* 2. The lifecycle rules. */
    imgs = xcalloc(nims + 1, sizeof(*imgs));
    for (size_t i = 0; i < nims; i++) {
        imgs[i].im = &ims[i];
        imgs[i].node = node_find(&g, ims[i].ii_digest);
    }
    run_lifecycle(o, imgs, nims, now);
    /* 3. The budget: images and lone blobs, most recently used first. */
    cands = xcalloc(nims + g.nnodes + 1, sizeof(*cands));
    for (size_t i = 0; i < nims; i++)
        if (!imgs[i].expired && imgs[i].node != (size_t)-1)
            cands[ncands++] = (struct gc_cand){
                &imgs[i],         imgs[i].node,  ims[i].ii_pulled_at, ims[i].ii_pushed_at,
                ims[i].ii_digest, ims[i].ii_repo};
    for (size_t i = 0; i < g.nnodes; i++) {
        const struct gc_node *n = &g.nodes[i];
        int64_t used = n->gn_used_at > n->gn_stored_at ? n->gn_used_at : n->gn_stored_at;
        if (!n->gn_has_parent && !n->gn_manifest)
            cands[ncands++] = (struct gc_cand){NULL, i, used, n->gn_stored_at, n->gn_digest, 0};
    }
    qsort(cands, ncands, sizeof(*cands), by_recent_use);
    for (size_t i = 0; i < ncands; i++) {
        int64_t more;

        added.n = 0;
        more = keep_from(&g, cands[i].node, &work, &added);
        if ((!overflow && kept + more <= limit) || more == 0) {
            kept += more;
            continue;
        }
        overflow = 1;
        if (cands[i].img != NULL)
            cands[i].img->evicted = 1;
        while (added.n > 0)
            g.nodes[added.v[--added.n]].gn_kept = 0;
    }
    /* 4. A row without its file yet, young: the commit thread has not landed it. */
    for (size_t i = 0; i < g.nnodes; i++)
        if (!g.nodes[i].gn_kept && g.nodes[i].gn_stored_at > now - GC_COMMIT_SECONDS &&
            !store_has(c->st, g.nodes[i].gn_digest))
            g.nodes[i].gn_kept = 1;

    for (size_t i = 0; i < nims; i++)
        if (imgs[i].expired || imgs[i].evicted)
            result_add(out, &imgs[i],
                       imgs[i].node != (size_t)-1 ? attribute_from(&g, imgs[i].node, &work) : 0);
    for (size_t i = 0; i < g.nnodes; i++)
        if (!g.nodes[i].gn_kept) {
            out->gr_freed += g.nodes[i].gn_size;
            out->gr_files++;
        }
    out->gr_used_after = out->gr_used_before - out->gr_freed;
    if (!o->cg_dry_run)
        *sweep = sweep_from_plan(&g, imgs, nims, now);
    rc = 0;
out:
    free(work.v);
    free(added.v);
    free(cands);
    free(imgs);
    index_gc_images_free(ims, nims);
    gc_graph_free(&g);
    if (rc == -1)
        cache_gc_result_free(out);
    return rc;
}

int cache_gc(struct cache *c, const struct cache_gc_opts *o, int64_t now,
             struct cache_gc_result *out)
{
    struct cache_sweep *sw;
    int more = 0;

    if (cache_gc_begin(c, o, now, out, &sw) == -1)
        return -1;
    if (sw == NULL)
        return 0;
    do
        more = cache_gc_step(c, sw, now, CACHE_GC_SLICE);
    while (more == 1);
    cache_gc_end(c, sw, now, out);
    if (more == -1) {
        cache_gc_result_free(out);
        return -1;
    }
    return 0;
}

void cache_gc_result_free(struct cache_gc_result *r)
{
    for (size_t i = 0; i < r->gr_nimages; i++) {
        free(r->gr_images[i].gi_rule);
        free(r->gr_images[i].gi_name);
        free(r->gr_images[i].gi_digest);
        free_strings(r->gr_images[i].gi_tags, r->gr_images[i].gi_ntags);
    }
    free(r->gr_images);
    memset(r, 0, sizeof(*r));
}

int64_t cache_used_bytes(const struct cache *c)
{
    return c->used_bytes;
}

int cache_top_pulled(struct cache *c, size_t limit, struct cache_pulled *out, size_t *n)
{
    struct index_top *t = xcalloc(limit + 1, sizeof(*t));
    int rc;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    /* Pulls still batched (at most a flush interval's) are not counted yet. */
    rc = index_top_pulled(c->ix, limit, t, n);
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        str_copy(out[i].cp_rule, sizeof(out[i].cp_rule), t[i].it_rule);
        str_copy(out[i].cp_name, sizeof(out[i].cp_name), t[i].it_name);
        str_copy(out[i].cp_tag, sizeof(out[i].cp_tag), t[i].it_tag);
        out[i].cp_pulls = t[i].it_pulls;
        out[i].cp_last_pulled_at = t[i].it_last_pulled_at;
    }
    free(t);
    return rc;
}
