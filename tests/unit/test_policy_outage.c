/* Unit tests for policy/policy_outage.c: which upstream failures are an outage. */
#include "config.h"

#include <criterion/criterion.h>

#include "policy_outage.h"

Test(classify, answers_by_status)
{
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 200), OUTCOME_OK);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 206), OUTCOME_OK);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 404), OUTCOME_NOT_FOUND);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 401), OUTCOME_DENIED);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 403), OUTCOME_DENIED);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 400), OUTCOME_REFUSED);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 405), OUTCOME_REFUSED);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 499), OUTCOME_REFUSED);
}

Test(classify, throttling_and_server_errors_are_outages)
{
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 429), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 500), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 502), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 503), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 599), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_NETWORK, 0), OUTCOME_OUTAGE);
    cr_assert_eq(outage_classify(OUTAGE_VIA_NETWORK, 200), OUTCOME_OUTAGE,
                 "a body cut short is an outage whatever the status said");
}

Test(classify, the_proxys_own_refusals_are_not_outages)
{
    cr_assert_eq(outage_classify(OUTAGE_VIA_LOCAL, 0), OUTCOME_OTHER);
    cr_assert_eq(outage_classify(OUTAGE_VIA_LOCAL, 503), OUTCOME_OTHER);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 0), OUTCOME_OTHER);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 304), OUTCOME_OTHER);
    cr_assert_eq(outage_classify(OUTAGE_VIA_HTTP, 101), OUTCOME_OTHER);
}

Test(refusal, upstreams_answer_stands)
{
    cr_assert(outage_is_refusal(OUTCOME_NOT_FOUND));
    cr_assert(outage_is_refusal(OUTCOME_DENIED));
    cr_assert(outage_is_refusal(OUTCOME_REFUSED));
    cr_assert_not(outage_is_refusal(OUTCOME_OK));
    cr_assert_not(outage_is_refusal(OUTCOME_OUTAGE));
    cr_assert_not(outage_is_refusal(OUTCOME_OTHER));
}
