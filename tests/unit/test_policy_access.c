/* Unit tests for policy/policy_access.c: which repository may be served which digest. */
#include "config.h"

#include <criterion/criterion.h>

#include "policy_access.h"

Test(manifest, known_is_served)
{
    struct access_facts f = {.af_known = 1, .af_stored = 1, .af_indexed = 1};

    cr_assert_eq(access_manifest(&f), ACCESS_SERVE);
    f.af_stored = 0; /* known but the file is gone: the api's serve fails and it fetches */
    cr_assert_eq(access_manifest(&f), ACCESS_SERVE);
}

Test(manifest, stored_for_another_repository_is_confirmed)
{
    struct access_facts f = {.af_stored = 1, .af_indexed = 1};

    cr_assert_eq(access_manifest(&f), ACCESS_CONFIRM);
}

Test(manifest, a_digest_is_not_a_capability)
{
    struct access_facts f = {.af_stored = 1, .af_indexed = 0}; /* a blob with that digest */

    cr_assert_eq(access_manifest(&f), ACCESS_FETCH);
    f.af_stored = 0;
    f.af_indexed = 1; /* indexed, file gone */
    cr_assert_eq(access_manifest(&f), ACCESS_FETCH);
    f.af_indexed = 0;
    cr_assert_eq(access_manifest(&f), ACCESS_FETCH);
}

Test(blob, stored_and_known_is_served)
{
    struct access_facts f = {.af_known = 1, .af_stored = 1};

    cr_assert_eq(access_blob(&f), ACCESS_SERVE);
    f.af_head = 1;
    cr_assert_eq(access_blob(&f), ACCESS_SERVE);
}

Test(blob, stored_for_another_is_confirmed_get_or_head)
{
    struct access_facts f = {.af_stored = 1};

    cr_assert_eq(access_blob(&f), ACCESS_CONFIRM);
    f.af_head = 1;
    cr_assert_eq(access_blob(&f), ACCESS_CONFIRM);
}

Test(blob, a_fill_for_this_repository_is_followed)
{
    struct access_facts f = {.af_filling = 1, .af_fill_ours = 1};

    cr_assert_eq(access_blob(&f), ACCESS_SERVE);
}

Test(blob, a_committing_fill_for_this_repository_needs_no_confirmation)
{
    /* The file is renamed into the store before the loop records the fill's repository. */
    struct access_facts f = {.af_stored = 1, .af_filling = 1, .af_fill_ours = 1};

    cr_assert_eq(access_blob(&f), ACCESS_SERVE);
    f.af_fill_ours = 0;
    cr_assert_eq(access_blob(&f), ACCESS_CONFIRM);
}

Test(blob, a_fill_for_another_repository_is_confirmed_first)
{
    struct access_facts f = {.af_filling = 1, .af_fill_ours = 0};

    cr_assert_eq(access_blob(&f), ACCESS_CONFIRM);
    f.af_known = 1;
    cr_assert_eq(access_blob(&f), ACCESS_SERVE);
}

Test(blob, nothing_here_fetches_or_asks)
{
    struct access_facts f = {0};

    cr_assert_eq(access_blob(&f), ACCESS_FETCH);
    f.af_head = 1;
    cr_assert_eq(access_blob(&f), ACCESS_ASK);
    f.af_known = 1; /* known but evicted: still upstream's business */
    cr_assert_eq(access_blob(&f), ACCESS_ASK);
}

Test(disk, admission_at_the_boundary)
{
    cr_assert_eq(access_disk_admits(100, 100), 1);
    cr_assert_eq(access_disk_admits(99, 100), 0);
    cr_assert_eq(access_disk_admits(0, 0), 1);
    cr_assert_eq(access_disk_admits(-1, 1000), 1, "an unknown free space does not refuse");
    cr_assert_eq(access_disk_admits(INT64_MAX, INT64_MAX), 1);
}
