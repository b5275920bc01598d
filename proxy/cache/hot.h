/*
 * A bounded in-memory map from string keys to byte values, least recently used out first.
 *
 * The hot path of a pull (a fresh tag's manifest) answers from these maps: the repository
 * id, the tag's digest and freshness, the manifest's bytes. SQLite and the store stay the
 * truth; a map only ever holds copies of what they said, and the code that writes them
 * updates the map in the same place. Single-threaded (the event loop's).
 */
#ifndef ECRPTC_PROXY_HOT_H
#define ECRPTC_PROXY_HOT_H

#include <stddef.h>
#include <stdint.h>

struct hot;

struct hot_stats {
    uint64_t hs_hits, hs_misses, hs_evictions;
    size_t hs_entries, hs_bytes; /* bytes: keys and values */
};

/* At most <max_entries> entries and <max_bytes> of keys plus values (both > 0). */
struct hot *hot_new(size_t max_entries, size_t max_bytes);
void hot_free(struct hot *h);

/*
 * Store a copy of <val> (<len> bytes) under <key>, replacing any older value, and evict the
 * least recently used entries until the map is within its bounds. A value larger than the
 * byte bound is not stored (and any older value for <key> is dropped). 0, or -1 if not
 * stored.
 */
int hot_put(struct hot *h, const char *key, const void *val, size_t len);

/* The value under <key> (and its length), now the most recently used; NULL when absent. The
 * pointer stays valid until the next hot_put, hot_del or hot_clear on <h>. */
const void *hot_get(struct hot *h, const char *key, size_t *len);

void hot_del(struct hot *h, const char *key);
void hot_clear(struct hot *h);
void hot_get_stats(const struct hot *h, struct hot_stats *out);

#endif
