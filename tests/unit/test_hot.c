/* Unit tests for proxy/cache/hot.c: the bounded LRU map behind the manifest hot path. */
#include "config.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "hot.h"
#include "util.h"

static const char *get_str(struct hot *h, const char *key)
{
    size_t n = 0;
    const char *v = hot_get(h, key, &n);
    static char buf[256];

    if (v == NULL)
        return NULL;
    cr_assert_lt(n, sizeof(buf));
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

Test(hot, put_get_replace_del)
{
    struct hot *h = hot_new(8, 1024);
    struct hot_stats st;

    cr_assert_null(hot_get(h, "a", NULL));
    cr_assert_eq(hot_put(h, "a", "one", 3), 0);
    cr_assert_str_eq(get_str(h, "a"), "one");
    cr_assert_eq(hot_put(h, "a", "three", 5), 0);
    cr_assert_str_eq(get_str(h, "a"), "three");
    hot_get_stats(h, &st);
    cr_assert_eq(st.hs_entries, 1);
    cr_assert_eq(st.hs_bytes, 1 + 5);
    cr_assert_eq(st.hs_hits, 2);
    cr_assert_eq(st.hs_misses, 1);
    hot_del(h, "a");
    hot_del(h, "never");
    cr_assert_null(hot_get(h, "a", NULL));
    hot_get_stats(h, &st);
    cr_assert_eq(st.hs_entries, 0);
    cr_assert_eq(st.hs_bytes, 0);
    hot_free(h);
}

Test(hot, empty_value_and_binary)
{
    struct hot *h = hot_new(4, 64);
    const char bin[] = {0, 1, 0, 2};
    size_t n = 99;

    cr_assert_eq(hot_put(h, "empty", "", 0), 0);
    cr_assert_not_null(hot_get(h, "empty", &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(hot_put(h, "bin", bin, sizeof(bin)), 0);
    cr_assert_eq(memcmp(hot_get(h, "bin", &n), bin, sizeof(bin)), 0);
    cr_assert_eq(n, sizeof(bin));
    hot_free(h);
}

Test(hot, evicts_least_recently_used_by_count)
{
    struct hot *h = hot_new(3, 1 << 20);
    struct hot_stats st;

    hot_put(h, "a", "1", 1);
    hot_put(h, "b", "2", 1);
    hot_put(h, "c", "3", 1);
    cr_assert_not_null(hot_get(h, "a", NULL)); /* a is now the most recent: b is oldest */
    hot_put(h, "d", "4", 1);
    cr_assert_null(hot_get(h, "b", NULL));
    cr_assert_not_null(hot_get(h, "a", NULL));
    cr_assert_not_null(hot_get(h, "c", NULL));
    cr_assert_not_null(hot_get(h, "d", NULL));
    hot_get_stats(h, &st);
    cr_assert_eq(st.hs_entries, 3);
    cr_assert_eq(st.hs_evictions, 1);
    hot_free(h);
}

Test(hot, evicts_by_bytes_and_refuses_oversize)
{
    struct hot *h = hot_new(100, 20);
    char big[32];
    struct hot_stats st;

    memset(big, 'x', sizeof(big));
    cr_assert_eq(hot_put(h, "k1", "12345678", 8), 0); /* 10 bytes */
    cr_assert_eq(hot_put(h, "k2", "12345678", 8), 0); /* 20 bytes */
    cr_assert_eq(hot_put(h, "k3", "1234", 4), 0);     /* k1 goes */
    cr_assert_null(hot_get(h, "k1", NULL));
    cr_assert_not_null(hot_get(h, "k2", NULL));
    hot_get_stats(h, &st);
    cr_assert_leq(st.hs_bytes, 20);
    /* Larger than the whole bound: refused, and the old value under the key is gone too. */
    cr_assert_eq(hot_put(h, "k2", big, sizeof(big)), -1);
    cr_assert_null(hot_get(h, "k2", NULL));
    cr_assert_not_null(hot_get(h, "k3", NULL));
    hot_free(h);
}

Test(hot, many_keys_collide_and_stay_consistent)
{
    struct hot *h = hot_new(1000, 1 << 20);
    char key[32], val[32];
    struct hot_stats st;

    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "val-%d", i);
        cr_assert_eq(hot_put(h, key, val, strlen(val)), 0);
    }
    hot_get_stats(h, &st);
    cr_assert_eq(st.hs_entries, 1000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "val-%d", i);
        if (i < 4000)
            cr_assert_null(hot_get(h, key, NULL), "%s should be evicted", key);
        else
            cr_assert_str_eq(get_str(h, key), val);
    }
    hot_clear(h);
    hot_get_stats(h, &st);
    cr_assert_eq(st.hs_entries, 0);
    cr_assert_eq(st.hs_bytes, 0);
    hot_free(h);
}

/* The checked-object idiom of proxy_util.h, which the maps use at every entry. */
struct obj {
    unsigned magic;
};

Test(check_obj, passes_the_right_object)
{
    struct obj o = {0x4f424a21u}, *p = NULL;
    void *arg = &o;

    CAST_OBJ_NOTNULL(p, arg, 0x4f424a21u);
    cr_assert_eq(p, &o);
}

Test(check_obj, stops_on_another_type, .signal = SIGABRT)
{
    struct obj o = {1}, *p = &o;

    CHECK_OBJ_NOTNULL(p, 0x4f424a21u);
}

Test(check_obj, stops_on_null, .signal = SIGABRT)
{
    struct obj *p = NULL;

    CHECK_OBJ_NOTNULL(p, 0x4f424a21u);
}

Test(check_obj, stops_on_a_freed_map, .signal = SIGABRT)
{
    struct hot *h = hot_new(4, 1024);
    struct {
        unsigned magic;
    } *raw = (void *)h;

    raw->magic = 0; /* what the map's own free does before free() */
    hot_put(h, "k", "v", 1);
}
