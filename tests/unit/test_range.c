/*
 * Unit tests for proxy/http/range.c: http_parse_range and http_range_header, the Range rules
 * fills and stored files answer by (fills themselves: test_fill.c and e2e).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdint.h>

#include "range.h"

/* <hdr> on a resource of <size> bytes gives [<s>, <e>). */
static void range_ok(const char *hdr, int64_t size, int64_t s, int64_t e)
{
    int64_t start = -7, end = -7;

    cr_assert_eq(http_parse_range(hdr, size, &start, &end), 1, "\"%s\" (size %lld) not a range",
                 hdr, (long long)size);
    cr_assert_eq(start, s, "\"%s\": start %lld, want %lld", hdr, (long long)start, (long long)s);
    cr_assert_eq(end, e, "\"%s\": end %lld, want %lld", hdr, (long long)end, (long long)e);
}

/* <hdr> is ignored: the whole resource is served. */
static void range_ignored(const char *hdr, int64_t size)
{
    int64_t start = -7, end = -7;

    cr_assert_eq(http_parse_range(hdr, size, &start, &end), 0, "\"%s\" (size %lld) not ignored",
                 hdr, (long long)size);
}

/* <hdr> cannot be satisfied: 416. */
static void range_unsatisfiable(const char *hdr, int64_t size)
{
    int64_t start = -7, end = -7;

    cr_assert_eq(http_parse_range(hdr, size, &start, &end), -1,
                 "\"%s\" (size %lld) not unsatisfiable", hdr, (long long)size);
}

Test(range, first_last)
{
    range_ok("bytes=0-99", 1000, 0, 100);
    range_ok("bytes=10-19", 1000, 10, 20);
    range_ok("bytes=0-0", 1000, 0, 1);
    range_ok("bytes=999-999", 1000, 999, 1000);
    range_ok("bytes=0-999", 1000, 0, 1000);
}

Test(range, open_ended)
{
    range_ok("bytes=500-", 1000, 500, 1000);
    range_ok("bytes=0-", 1000, 0, 1000);
    range_ok("bytes=999-", 1000, 999, 1000);
}

Test(range, suffix)
{
    range_ok("bytes=-100", 1000, 900, 1000);
    range_ok("bytes=-1", 1000, 999, 1000);
    range_ok("bytes=-1000", 1000, 0, 1000);
    range_ok("bytes=-2000", 1000, 0, 1000); /* longer than the resource: all of it */
}

Test(range, last_beyond_size_clamps)
{
    range_ok("bytes=900-5000", 1000, 900, 1000);
    range_ok("bytes=0-1000", 1000, 0, 1000);
    range_ok("bytes=0-9223372036854775807", 1000, 0, 1000);
}

Test(range, first_beyond_size)
{
    range_unsatisfiable("bytes=1000-", 1000);
    range_unsatisfiable("bytes=1000-1001", 1000);
    range_unsatisfiable("bytes=5000-6000", 1000);
    range_unsatisfiable("bytes=1-", 1);
}

Test(range, empty_suffix)
{
    range_unsatisfiable("bytes=-0", 1000);
    range_unsatisfiable("bytes=-00", 1000);
}

Test(range, last_before_first_ignored)
{
    range_ignored("bytes=20-10", 1000);
    range_ignored("bytes=1-0", 1000);
    range_ignored("bytes=5000-10", 1000);
}

Test(range, several_ranges_ignored)
{
    range_ignored("bytes=0-1,5-6", 1000);
    range_ignored("bytes=0-1, 5-6", 1000);
    range_ignored("bytes=-5,0-", 1000);
    range_ignored("bytes=5000-,6000-", 1000); /* even when none is satisfiable */
}

Test(range, garbage_ignored)
{
    static const char *bad[] = {
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=1",
        "bytes=1-x",
        "bytes=x-1",
        "bytes=1-2x",
        "bytes=1-2-3",
        "bytes=--5",
        "bytes=-5x",
        "bytes=-1-2",
        "bytes=-x",
        "bytes=0--5",
        "bytes=-5-",
        "bytes=1x-2",
        "bytes=99999999999999999999-",
        "bytes=0-99999999999999999999",
        "bytes=-99999999999999999999",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        range_ignored(bad[i], 1000);
}

Test(range, other_units_ignored)
{
    range_ignored("", 1000);
    range_ignored("items=0-1", 1000);
    range_ignored("bytes 0-1", 1000);
    range_ignored("byte=0-1", 1000);
    range_ignored("0-1", 1000);
    range_ignored("bytes", 1000);
}

Test(range, empty_resource)
{
    range_unsatisfiable("bytes=0-", 0);
    range_unsatisfiable("bytes=0-0", 0);
    range_unsatisfiable("bytes=0-100", 0);
    range_unsatisfiable("bytes=-1", 0);
    range_unsatisfiable("bytes=-0", 0);
    range_ignored("bytes=1-0", 0);
    range_ignored("bytes=0-1,2-3", 0);
    range_ignored("bytes=x", 0);
    range_ignored("items=0-", 0);
}

Test(range, large_resource)
{
    const int64_t tib = (int64_t)1 << 40;

    range_ok("bytes=1099511627775-", tib, tib - 1, tib);
    range_ok("bytes=-1099511627776", tib, 0, tib);
    range_ok("bytes=1073741824-2147483647", tib, (int64_t)1 << 30, (int64_t)1 << 31);
    range_unsatisfiable("bytes=1099511627776-", tib);
}

Test(range, if_range_must_match_the_etag)
{
    const char *d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const char *etag =
        "\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"";

    cr_assert_str_eq(http_range_header("bytes=0-9", NULL, d), "bytes=0-9");
    cr_assert_str_eq(http_range_header("bytes=0-9", etag, d), "bytes=0-9");
    cr_assert_null(http_range_header(NULL, etag, d));
    /* RFC 9110: If-Range that does not match means the whole body, 200. */
    cr_assert_null(http_range_header("bytes=0-9", "\"sha256:0000\"", d));
    cr_assert_null(http_range_header("bytes=0-9",
                                     "W/"
                                     "\"sha256:e3b0\"",
                                     d));
    cr_assert_null(http_range_header("bytes=0-9", "Tue, 01 Dec 2026 08:00:00 GMT", d));
    cr_assert_null(http_range_header("bytes=0-9", d, d)); /* unquoted is not our ETag */
    cr_assert_null(http_range_header("bytes=0-9", "", d));
}
