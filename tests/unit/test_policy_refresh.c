/* Unit tests for policy/policy_refresh.c: the 24-hour tag rule at every boundary. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>

#include "policy_refresh.h"

#define DAY (24 * 3600)
#define WEEK (7 * DAY)
#define T0 ((int64_t)1700000000)

static struct refresh_facts cached_at(int64_t checked_at)
{
    struct refresh_facts f = {
        .rf_cached = 1,
        .rf_checked_at = checked_at,
        .rf_refresh_interval = DAY,
        .rf_stale_if_error = WEEK,
    };
    return f;
}

Test(decide, not_cached_checks)
{
    struct refresh_facts f = cached_at(T0);

    f.rf_cached = 0;
    cr_assert_eq(refresh_decide(&f, T0), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, T0 + 1), REFRESH_CHECK);
}

Test(decide, fresh_within_interval)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_decide(&f, T0), REFRESH_FRESH);
    cr_assert_eq(refresh_decide(&f, T0 + 1), REFRESH_FRESH);
    cr_assert_eq(refresh_decide(&f, T0 + DAY - 1), REFRESH_FRESH);
}

Test(decide, exactly_at_interval_checks)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_decide(&f, T0 + DAY), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, T0 + DAY + 1), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, T0 + 365 * DAY), REFRESH_CHECK);
}

Test(decide, interval_zero_always_checks)
{
    struct refresh_facts f = cached_at(T0);

    f.rf_refresh_interval = 0;
    cr_assert_eq(refresh_decide(&f, T0), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, T0 + 1), REFRESH_CHECK);
    f.rf_refresh_interval = -5;
    cr_assert_eq(refresh_decide(&f, T0), REFRESH_CHECK);
}

Test(decide, clock_moved_back_checks)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_decide(&f, T0 - 1), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, T0 - DAY), REFRESH_CHECK);
}

Test(decide, extreme_times_do_not_overflow)
{
    struct refresh_facts f = cached_at(INT64_MIN);

    cr_assert_eq(refresh_decide(&f, INT64_MAX), REFRESH_CHECK);
    f.rf_refresh_interval = INT64_MAX;
    cr_assert_eq(refresh_decide(&f, INT64_MAX), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, INT64_MIN + 1), REFRESH_FRESH);
    f = cached_at(INT64_MAX);
    cr_assert_eq(refresh_decide(&f, INT64_MIN), REFRESH_CHECK);
    cr_assert_eq(refresh_decide(&f, INT64_MAX), REFRESH_FRESH);
}

Test(on_error, not_cached_fails)
{
    struct refresh_facts f = cached_at(T0);

    f.rf_cached = 0;
    cr_assert_eq(refresh_on_error(&f, T0), REFRESH_FAIL);
    cr_assert_eq(refresh_on_error(&f, T0 + DAY), REFRESH_FAIL);
}

Test(on_error, stale_within_window_serves)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_on_error(&f, T0), REFRESH_SERVE_STALE);
    cr_assert_eq(refresh_on_error(&f, T0 + DAY), REFRESH_SERVE_STALE);
    cr_assert_eq(refresh_on_error(&f, T0 + WEEK - 1), REFRESH_SERVE_STALE);
}

Test(on_error, stale_after_window_fails)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_on_error(&f, T0 + WEEK), REFRESH_FAIL);
    cr_assert_eq(refresh_on_error(&f, T0 + WEEK + 1), REFRESH_FAIL);
    cr_assert_eq(refresh_on_error(&f, INT64_MAX), REFRESH_FAIL);
}

Test(on_error, stale_if_error_zero_never_serves)
{
    struct refresh_facts f = cached_at(T0);

    f.rf_stale_if_error = 0;
    cr_assert_eq(refresh_on_error(&f, T0), REFRESH_FAIL);
    cr_assert_eq(refresh_on_error(&f, T0 - 10), REFRESH_FAIL);
    f.rf_stale_if_error = -1;
    cr_assert_eq(refresh_on_error(&f, T0), REFRESH_FAIL);
}

Test(on_error, clock_moved_back_serves_stale)
{
    struct refresh_facts f = cached_at(T0);

    cr_assert_eq(refresh_on_error(&f, T0 - 1), REFRESH_SERVE_STALE);
    cr_assert_eq(refresh_on_error(&f, T0 - 30 * DAY), REFRESH_SERVE_STALE);
}

Test(on_error, independent_of_refresh_interval)
{
    struct refresh_facts f = cached_at(T0);

    f.rf_refresh_interval = 0;
    cr_assert_eq(refresh_on_error(&f, T0 + DAY), REFRESH_SERVE_STALE);
    f.rf_stale_if_error = 60;
    cr_assert_eq(refresh_on_error(&f, T0 + 59), REFRESH_SERVE_STALE);
    cr_assert_eq(refresh_on_error(&f, T0 + 60), REFRESH_FAIL);
}
