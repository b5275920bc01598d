/* Unit tests for policy/policy_retry.c: what is retried, the doubling backoff, Retry-After. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>

#include "policy_retry.h"

Test(retryable, statuses)
{
    cr_assert(retry_status_retryable(500));
    cr_assert(retry_status_retryable(502));
    cr_assert(retry_status_retryable(503));
    cr_assert(retry_status_retryable(599));
    cr_assert(retry_status_retryable(429));
    cr_assert_not(retry_status_retryable(200));
    cr_assert_not(retry_status_retryable(307));
    cr_assert_not(retry_status_retryable(401));
    cr_assert_not(retry_status_retryable(403));
    cr_assert_not(retry_status_retryable(404));
    cr_assert_not(retry_status_retryable(499));
}

Test(retryable, only_before_delivery_and_within_the_budget)
{
    cr_assert(retry_attempt_allowed(0, 0, 1));
    cr_assert(retry_attempt_allowed(0, 1, 2));
    cr_assert_not(retry_attempt_allowed(0, 2, 2), "the budget is spent");
    cr_assert_not(retry_attempt_allowed(0, 0, 0), "no retries asked for");
    cr_assert_not(retry_attempt_allowed(1, 0, 3), "a byte reached the caller");
}

Test(retry_after, parse)
{
    int64_t s = -7;

    cr_assert_eq(retry_after_parse("120", &s), 0);
    cr_assert_eq(s, 120);
    cr_assert_eq(retry_after_parse("0", &s), 0);
    cr_assert_eq(s, 0);
    cr_assert_eq(retry_after_parse("+5", &s), 0);
    cr_assert_eq(s, 5);
    s = -7;
    cr_assert_eq(retry_after_parse("", &s), -1);
    cr_assert_eq(retry_after_parse("-1", &s), -1);
    cr_assert_eq(retry_after_parse("1.5", &s), -1);
    cr_assert_eq(retry_after_parse("soon", &s), -1);
    cr_assert_eq(retry_after_parse("5s", &s), -1);
    cr_assert_eq(retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", &s), -1);
    cr_assert_eq(retry_after_parse("99999999999999999999999", &s), -1, "overflow");
    cr_assert_eq(s, -7, "a failed parse leaves *seconds alone");
}

Test(delay, backoff_doubles_up_to_64_times)
{
    cr_assert_eq(retry_delay_ms(200, 0, "", 10), 200);
    cr_assert_eq(retry_delay_ms(200, 1, "", 10), 400);
    cr_assert_eq(retry_delay_ms(200, 2, "", 10), 800);
    cr_assert_eq(retry_delay_ms(200, 5, "", 10), 6400);
    cr_assert_eq(retry_delay_ms(200, 6, "", 10), 12800);
    cr_assert_eq(retry_delay_ms(200, 7, "", 10), 12800);
    cr_assert_eq(retry_delay_ms(200, 1000, "", 10), 200 << RETRY_DOUBLINGS_MAX);
    cr_assert_eq(retry_delay_ms(5, 3, "", 10), 40);
}

Test(delay, retry_after_wins_up_to_its_cap)
{
    cr_assert_eq(retry_delay_ms(200, 3, "2", 10), 2000, "Retry-After replaces the backoff");
    cr_assert_eq(retry_delay_ms(200, 3, "0", 10), 0);
    cr_assert_eq(retry_delay_ms(200, 0, "10", 10), 10000, "at the cap");
    cr_assert_eq(retry_delay_ms(200, 0, "11", 10), -1, "over the cap: not waited for");
    cr_assert_eq(retry_delay_ms(200, 0, "3600", 10), -1);
    /* Not understood: the backoff applies. */
    cr_assert_eq(retry_delay_ms(200, 1, "Wed, 21 Oct 2015 07:28:00 GMT", 10), 400);
    cr_assert_eq(retry_delay_ms(200, 1, "-3", 10), 400);
}
