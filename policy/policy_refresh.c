/* The 24-hour tag rule: whether a cached tag is fresh, and whether it may be served stale. */
#include "config.h"

#include "policy_refresh.h"

#include <stdint.h>

/*
 * Seconds from <checked_at> to <now>, or -1 when checked_at lies in the future (the clock
 * moved back). The difference is taken in unsigned arithmetic so that no pair of int64_t
 * values can overflow; it fits because now >= checked_at.
 */
static int64_t age_of(int64_t checked_at, int64_t now)
{
    uint64_t age;

    if (checked_at > now)
        return -1;
    age = (uint64_t)now - (uint64_t)checked_at;
    if (age > (uint64_t)INT64_MAX)
        return INT64_MAX;
    return (int64_t)age;
}

enum refresh_decision refresh_decide(const struct refresh_facts *f, int64_t now)
{
    int64_t age;

    if (!f->rf_cached)
        return REFRESH_CHECK;
    age = age_of(f->rf_checked_at, now);
    if (age == -1)
        return REFRESH_CHECK;
    if (f->rf_refresh_interval <= 0)
        return REFRESH_CHECK;
    if (age < f->rf_refresh_interval)
        return REFRESH_FRESH;
    return REFRESH_CHECK;
}

/*
 * A checked_at in the future counts as age 0: the digest was confirmed recently by some
 * clock, and refusing it would turn a clock step into an outage. stale_if_error <= 0 means
 * "never serve stale", whatever the clock says.
 */
enum refresh_fallback refresh_on_error(const struct refresh_facts *f, int64_t now)
{
    int64_t age;

    if (!f->rf_cached || f->rf_stale_if_error <= 0)
        return REFRESH_FAIL;
    age = age_of(f->rf_checked_at, now);
    if (age == -1)
        age = 0;
    if (age < f->rf_stale_if_error)
        return REFRESH_SERVE_STALE;
    return REFRESH_FAIL;
}
