/*
 * Unit tests for proxy/api/status.c (included, to reach its statics): HTML escaping, byte
 * formatting, the 24 h ring and the chart drawn from it; and the helpers it shares with
 * /metrics (label escaping, ratelimit-remaining's integer) and the registry's health rule.
 */
#include "../../proxy/api/status.c"

#include <criterion/criterion.h>

static char *drain(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = xmalloc(n + 1);

    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

Test(status, html_escape)
{
    struct evbuffer *b = evbuffer_new();
    char *s;

    html_esc(b, "<a href=\"x\">&'\x01\x7fok\tno");
    s = drain(b);
    cr_assert_str_eq(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;okno");
    free(s);
}

Test(status, bytes_for_people)
{
    char s[32];

    fmt_bytes(s, sizeof(s), 0);
    cr_assert_str_eq(s, "0 B");
    fmt_bytes(s, sizeof(s), 999);
    cr_assert_str_eq(s, "999 B");
    fmt_bytes(s, sizeof(s), 21184);
    cr_assert_str_eq(s, "21.2 kB");
    fmt_bytes(s, sizeof(s), 1e9);
    cr_assert_str_eq(s, "1.00 GB");
    fmt_bytes(s, sizeof(s), 456e9);
    cr_assert_str_eq(s, "456 GB");
}

Test(status, ring_keeps_the_last_288)
{
    struct status_ring *r = xcalloc(1, sizeof(*r));

    for (int i = 0; i < 300; i++) {
        struct status_sample s = {1000 + i, (uint64_t)i, (uint64_t)(2 * i)};
        ring_add(r, &s);
    }
    cr_assert_eq(r->sr_n, STATUS_SAMPLES);
    cr_assert_eq(ring_at(r, 0)->ss_at, 1000 + 300 - STATUS_SAMPLES, "the oldest kept");
    cr_assert_eq(ring_at(r, STATUS_SAMPLES - 1)->ss_at, 1299, "the newest last");
    cr_assert_eq(ring_at(r, STATUS_SAMPLES - 1)->ss_upstream, 598);
    free(r);
}

Test(status, chart_draws_the_window_and_now)
{
    struct status_ring *r = xcalloc(1, sizeof(*r));
    struct evbuffer *b = evbuffer_new();
    int64_t now = 1764576000;
    struct status_sample old = {now - STATUS_WINDOW - 600, 0, 0};
    struct status_sample a = {now - 3600, 1000, 500};
    struct status_sample cur = {now, 3000, 2500};
    char *s;

    ring_add(r, &old); /* outside the window: not drawn */
    ring_add(r, &a);
    chart(b, r, &cur, now);
    s = drain(b);
    cr_assert(strstr(s, "data-points=\"2\"") != NULL, "%s", s);
    cr_assert(strstr(s, "<polyline class=\"cache\"") != NULL);
    cr_assert(strstr(s, "<polyline class=\"upstream\"") != NULL);
    /* Each line from 0 at its first point; the top label is the larger rise (2000 B). */
    cr_assert(strstr(s, ">2.00 kB</text>") != NULL, "%s", s);
    cr_assert(strstr(s, ">now</text>") != NULL && strstr(s, ">-24 h</text>") != NULL);
    cr_assert(strstr(s, "<script") == NULL && strstr(s, "http") == NULL);
    free(s);

    /* A fresh process: one sample and now still make a line. */
    memset(r, 0, sizeof(*r));
    ring_add(r, &cur);
    b = evbuffer_new();
    chart(b, r, &cur, now);
    s = drain(b);
    cr_assert(strstr(s, "data-points=\"2\"") != NULL, "%s", s);
    free(s);
    free(r);
}

Test(status, label_escape)
{
    char out[64], small[5];

    api_label_escape(out, sizeof(out), "a\"b\\c\nd");
    cr_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    api_label_escape(small, sizeof(small), "ab\"cd");
    cr_assert_str_eq(small, "ab\\\"", "cut to fit, never half an escape");
}

Test(status, ratelimit_value)
{
    cr_assert_eq(api_ratelimit_value("100;w=21600"), 100);
    cr_assert_eq(api_ratelimit_value("0;w=21600"), 0);
    cr_assert_eq(api_ratelimit_value(" 42"), 42);
    cr_assert_eq(api_ratelimit_value(""), -1);
    cr_assert_eq(api_ratelimit_value("w=1"), -1);
}

Test(status, health_rule)
{
    cr_assert_eq(upstream_health_classify(UPSTREAM_OK, 200), UPSTREAM_HEALTH_OK);
    cr_assert_eq(upstream_health_classify(UPSTREAM_HTTP, 404), UPSTREAM_HEALTH_OK);
    cr_assert_eq(upstream_health_classify(UPSTREAM_TOO_LARGE, 200), UPSTREAM_HEALTH_OK);
    cr_assert_eq(upstream_health_classify(UPSTREAM_HTTP, 429), UPSTREAM_HEALTH_FAILING);
    cr_assert_eq(upstream_health_classify(UPSTREAM_HTTP, 503), UPSTREAM_HEALTH_FAILING);
    cr_assert_eq(upstream_health_classify(UPSTREAM_HTTP, 401), UPSTREAM_HEALTH_FAILING);
    cr_assert_eq(upstream_health_classify(UPSTREAM_NETWORK, 0), UPSTREAM_HEALTH_FAILING);
    cr_assert_eq(upstream_health_classify(UPSTREAM_AUTH_FAILED, 401), UPSTREAM_HEALTH_FAILING);
    cr_assert_eq(upstream_health_classify(UPSTREAM_ABORTED, 200), UPSTREAM_HEALTH_UNKNOWN);
}
