/*
 * Bounded LRU map: a chained hash table (FNV-1a, power-of-two buckets sized for max_entries)
 * and a doubly linked recency list. Each entry is one allocation: header, key, value.
 */
#include "config.h"

#include "hot.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HOT_MAGIC 0x484f5421u /* "HOT!" */

struct hot_entry {
    struct hot_entry *chain; /* next in the bucket */
    struct hot_entry *newer, *older;
    uint64_t hash;
    size_t klen, vlen;
    char data[]; /* key, NUL, value */
};

struct hot {
    unsigned magic;
    struct hot_entry **buckets;
    size_t nbuckets; /* a power of two */
    struct hot_entry *newest, *oldest;
    size_t max_entries, max_bytes;
    struct hot_stats stats;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t entry_bytes(const struct hot_entry *e)
{
    return e->klen + e->vlen;
}

struct hot *hot_new(size_t max_entries, size_t max_bytes)
{
    struct hot *h = xcalloc(1, sizeof(*h));

    assert(max_entries > 0 && max_bytes > 0);
    h->magic = HOT_MAGIC;
    h->max_entries = max_entries;
    h->max_bytes = max_bytes;
    h->nbuckets = 16;
    while (h->nbuckets < max_entries && h->nbuckets < ((size_t)1 << 24))
        h->nbuckets <<= 1;
    h->buckets = xcalloc(h->nbuckets, sizeof(*h->buckets));
    return h;
}

static struct hot_entry **find_slot(struct hot *h, const char *key, size_t klen, uint64_t hash)
{
    struct hot_entry **pp = &h->buckets[hash & (h->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->chain)
        if ((*pp)->hash == hash && (*pp)->klen == klen && memcmp((*pp)->data, key, klen) == 0)
            return pp;
    return pp;
}

static void list_unlink(struct hot *h, struct hot_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        h->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        h->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void list_push_newest(struct hot *h, struct hot_entry *e)
{
    e->older = h->newest;
    e->newer = NULL;
    if (h->newest != NULL)
        h->newest->newer = e;
    h->newest = e;
    if (h->oldest == NULL)
        h->oldest = e;
}

/* Unlink <e> (found at *slot) from everything and free it. */
static void entry_drop(struct hot *h, struct hot_entry **slot, struct hot_entry *e)
{
    *slot = e->chain;
    list_unlink(h, e);
    h->stats.hs_entries--;
    h->stats.hs_bytes -= entry_bytes(e);
    free(e);
}

static void drop_key(struct hot *h, const char *key, size_t klen, uint64_t hash)
{
    struct hot_entry **slot = find_slot(h, key, klen, hash);

    if (*slot != NULL)
        entry_drop(h, slot, *slot);
}

int hot_put(struct hot *h, const char *key, const void *val, size_t len)
{
    size_t klen = strlen(key);
    uint64_t hash = fnv1a(key, klen);
    struct hot_entry *e, **slot;

    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    drop_key(h, key, klen, hash);
    if (klen + len > h->max_bytes)
        return -1;
    while (h->oldest != NULL && (h->stats.hs_entries + 1 > h->max_entries ||
                                 h->stats.hs_bytes + klen + len > h->max_bytes)) {
        struct hot_entry *old = h->oldest;
        entry_drop(h, find_slot(h, old->data, old->klen, old->hash), old);
        h->stats.hs_evictions++;
    }
    e = xmalloc(sizeof(*e) + klen + 1 + len);
    e->hash = hash;
    e->klen = klen;
    e->vlen = len;
    memcpy(e->data, key, klen + 1);
    if (len > 0)
        memcpy(e->data + klen + 1, val, len);
    slot = find_slot(h, key, klen, hash);
    e->chain = NULL;
    *slot = e;
    list_push_newest(h, e);
    h->stats.hs_entries++;
    h->stats.hs_bytes += entry_bytes(e);
    return 0;
}

const void *hot_get(struct hot *h, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    uint64_t hash = fnv1a(key, klen);
    struct hot_entry *e;

    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    e = *find_slot(h, key, klen, hash);
    if (e == NULL) {
        h->stats.hs_misses++;
        return NULL;
    }
    h->stats.hs_hits++;
    if (h->newest != e) {
        list_unlink(h, e);
        list_push_newest(h, e);
    }
    if (len != NULL)
        *len = e->vlen;
    return e->data + e->klen + 1;
}

void hot_del(struct hot *h, const char *key)
{
    size_t klen = strlen(key);

    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    drop_key(h, key, klen, fnv1a(key, klen));
}

void hot_clear(struct hot *h)
{
    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    while (h->oldest != NULL) {
        struct hot_entry *old = h->oldest;
        entry_drop(h, find_slot(h, old->data, old->klen, old->hash), old);
    }
}

void hot_get_stats(const struct hot *h, struct hot_stats *out)
{
    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    *out = h->stats;
}

void hot_free(struct hot *h)
{
    if (h == NULL)
        return;
    CHECK_OBJ_NOTNULL(h, HOT_MAGIC);
    hot_clear(h);
    free(h->buckets);
    h->magic = 0;
    free(h);
}
