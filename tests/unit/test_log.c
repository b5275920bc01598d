/* Unit tests for proxy_log: line formats, JSON lines under the cap, batching. stderr is redirected
 * to a temp file. */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char path[] = "/tmp/test_log.XXXXXX";
static int saved = -1;

static void redirect(void)
{
    int fd = mkstemp(path);

    cr_assert_neq(fd, -1);
    saved = dup(STDERR_FILENO);
    cr_assert_neq(dup2(fd, STDERR_FILENO), -1);
    close(fd);
}

static void restore(void)
{
    dup2(saved, STDERR_FILENO);
    close(saved);
    unlink(path);
}

/* What has been written so far (static buffer). */
static const char *written(void)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n;

    cr_assert_not_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int hook_calls;
static void hook(void *arg)
{
    cr_assert_eq(arg, &hook_calls);
    hook_calls++;
}

TestSuite(log, .init = redirect, .fini = restore);

Test(log, text_line_quotes_values)
{
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
    log_event(LOG_INFO, "request", "uri", "/v2/x", "msg", "two words", NULL);
    log_event(LOG_DEBUG, "hidden", NULL);
    cr_assert_not_null(strstr(written(), " info request uri=/v2/x msg=\"two words\"\n"));
    cr_assert_null(strstr(written(), "hidden"));
}

Test(log, json_line)
{
    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_WARN, "serve-stale", "tag", "latest", NULL);
    cr_assert_not_null(
        strstr(written(), "\"level\":\"warn\",\"event\":\"serve-stale\",\"tag\":\"latest\"}\n"));
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}

Test(log, batching_holds_info_until_flush_and_keeps_order)
{
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
    hook_calls = 0;
    log_batch(hook, &hook_calls);
    log_event(LOG_INFO, "one", NULL);
    log_event(LOG_INFO, "two", NULL);
    cr_assert_eq(hook_calls, 1, "the hook runs when the first line is held, not again");
    cr_assert_str_eq(written(), "");
    log_flush();
    cr_assert_not_null(strstr(written(), "one\n"));
    cr_assert_not_null(strstr(written(), "two\n"));
    /* A warning goes out at once, after whatever was held. */
    log_event(LOG_INFO, "three", NULL);
    cr_assert_eq(hook_calls, 2);
    log_event(LOG_ERROR, "four", NULL);
    {
        const char *w = written();
        const char *three = strstr(w, "three\n"), *four = strstr(w, "four\n");
        cr_assert(three != NULL && four != NULL && three < four);
    }
    /* Stopping the batch writes what is held. */
    log_event(LOG_INFO, "five", NULL);
    log_batch(NULL, NULL);
    cr_assert_not_null(strstr(written(), "five\n"));
    log_event(LOG_INFO, "six", NULL);
    cr_assert_not_null(strstr(written(), "six\n"));
}

Test(log, batching_spills_a_full_buffer)
{
    char big[300];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
    hook_calls = 0;
    log_batch(hook, &hook_calls);
    for (int i = 0; i < 400; i++) /* ~130 KiB: more than the 64 KiB held at most */
        log_event(LOG_INFO, "fill", "v", big, NULL);
    cr_assert_gt(strlen(written()), 0, "a full buffer is written without waiting for a flush");
    log_batch(NULL, NULL);
    {
        FILE *f = fopen(path, "r");
        int lines = 0, c;
        while ((c = fgetc(f)) != EOF)
            lines += c == '\n';
        fclose(f);
        cr_assert_eq(lines, 400);
    }
}

/* ---- JSON lines over the cap ------------------------------------------------------------- */

#define LINE_MAX_BYTES 4096

/* The one line written so far, checked to be newline-terminated, under the cap and one JSON
 * object; returns it parsed (caller decrefs) and its length with the newline in *len. */
static json_t *only_line(size_t *len)
{
    const char *w = written();
    size_t n = strlen(w);
    json_error_t e;
    json_t *o;

    cr_assert_gt(n, 0, "nothing written");
    cr_assert_eq(w[n - 1], '\n', "the line does not end in a newline: ...%s",
                 w + (n > 40 ? n - 40 : 0));
    cr_assert_eq(strchr(w, '\n'), w + n - 1, "more than one line written");
    cr_assert_leq(n, LINE_MAX_BYTES, "a line of %zu bytes, over the %d-byte cap", n,
                  LINE_MAX_BYTES);
    o = json_loadb(w, n - 1, 0, &e);
    cr_assert_not_null(o, "not one JSON object (%s at %d): %.80s...", e.text, e.position, w);
    cr_assert(json_is_object(o));
    if (len != NULL)
        *len = n;
    return o;
}

static const char *str_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    cr_assert(json_is_string(v), "\"%s\" is missing or not a string", k);
    return json_string_value(v);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

#define ELLIPSIS "\xe2\x80\xa6"

Test(log, json_64k_uri_cuts_the_field_not_the_object)
{
    size_t n = 64 * 1024, len;
    char *uri = malloc(n + 1);
    json_t *o;
    const char *u;

    memcpy(uri, "/v2/", 4);
    memset(uri + 4, 'a', n - 4);
    uri[n] = '\0';
    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_INFO, "request", "method", "GET", "uri", uri, "status", "404", "ms", "0.1", NULL);
    o = only_line(&len);
    cr_assert_str_eq(str_field(o, "event"), "request");
    cr_assert_str_eq(str_field(o, "method"), "GET", "a short field was cut");
    cr_assert_str_eq(str_field(o, "status"), "404");
    cr_assert_str_eq(str_field(o, "ms"), "0.1");
    cr_assert(json_is_true(json_object_get(o, "truncated")), "no \"truncated\":true");
    u = str_field(o, "uri");
    cr_assert(ends_with(u, ELLIPSIS), "the cut value is not marked");
    cr_assert_eq(strncmp(u, uri, strlen(u) - 3), 0, "the cut value is not the start of the URI");
    cr_assert_gt(strlen(u), 3500, "the URI kept only %zu bytes of a 4 KiB line", strlen(u));
    cr_assert_geq(len, LINE_MAX_BYTES - 8, "the line is %zu bytes: the cut is far too deep", len);
    json_decref(o);
    free(uri);
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}

/* Quotes and control bytes grow when escaped (\" and \u0001): the cap holds for the escaped form.
 */
Test(log, json_escaped_values_share_the_line)
{
    size_t n = 9000;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    json_t *o;
    const char *va, *vb;

    for (size_t i = 0; i < n; i++) {
        a[i] = "\"\\\x01z"[i % 4];
        b[i] = 'b';
    }
    a[n] = b[n] = '\0';
    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_WARN, "odd", "a", a, "short", "kept", "b", b, NULL);
    o = only_line(NULL);
    cr_assert_str_eq(str_field(o, "short"), "kept");
    cr_assert(json_is_true(json_object_get(o, "truncated")));
    va = str_field(o, "a");
    vb = str_field(o, "b");
    cr_assert(ends_with(va, ELLIPSIS) && ends_with(vb, ELLIPSIS));
    cr_assert_eq(strncmp(va, a, strlen(va) - 3), 0);
    cr_assert_eq(strncmp(vb, b, strlen(vb) - 3), 0);
    /* Each long value gets about half of the line, in its escaped form. */
    cr_assert_gt(strlen(vb), 1500, "b kept %zu bytes", strlen(vb));
    json_decref(o);
    free(a);
    free(b);
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}

/* A cut never splits a UTF-8 character; a byte that is not UTF-8 becomes U+FFFD (jansson
 * refuses such a string, and the field used to vanish from the line). */
Test(log, json_values_stay_valid_utf8)
{
    size_t n = 3 * 3000; /* 3000 "é€"-like 3-byte characters, far over the line */
    char *v = malloc(n + 1);
    json_t *o;
    const char *u;

    for (size_t i = 0; i < n; i += 3)
        memcpy(v + i, "\xe2\x82\xac", 3); /* € */
    v[n] = '\0';
    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_INFO, "request", "uri", v, NULL);
    o = only_line(NULL);
    u = str_field(o, "uri");
    cr_assert_eq(strlen(u) % 3, 0, "a character was split");
    cr_assert(ends_with(u, ELLIPSIS));
    json_decref(o);
    free(v);
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}

Test(log, json_invalid_utf8_is_replaced_not_dropped)
{
    json_t *o;

    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_INFO, "request", "uri", "/v2/\xff\xc0x/\xed\xa0\x80", "status", "404", NULL);
    o = only_line(NULL);
    cr_assert_str_eq(str_field(o, "uri"),
                     "/v2/\xef\xbf\xbd\xef\xbf\xbdx/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(str_field(o, "status"), "404");
    cr_assert_null(json_object_get(o, "truncated"), "nothing was cut");
    json_decref(o);
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}

/* A line of exactly the cap is written whole; one byte more and a value is cut. */
Test(log, json_cap_is_exact)
{
    char *v = malloc(LINE_MAX_BYTES + 1);
    size_t len0, len;
    json_t *o;

    log_setup(LOG_FORMAT_JSON, LOG_INFO);
    log_event(LOG_INFO, "e", "v", "", NULL);
    o = only_line(&len0);
    json_decref(o);
    cr_assert_eq(ftruncate(STDERR_FILENO, 0), 0);
    cr_assert_eq(lseek(STDERR_FILENO, 0, SEEK_SET), 0);

    memset(v, 'x', LINE_MAX_BYTES - len0);
    v[LINE_MAX_BYTES - len0] = '\0';
    log_event(LOG_INFO, "e", "v", v, NULL);
    o = only_line(&len);
    cr_assert_eq(len, LINE_MAX_BYTES);
    cr_assert_str_eq(str_field(o, "v"), v);
    cr_assert_null(json_object_get(o, "truncated"));
    json_decref(o);
    cr_assert_eq(ftruncate(STDERR_FILENO, 0), 0);
    cr_assert_eq(lseek(STDERR_FILENO, 0, SEEK_SET), 0);

    v[LINE_MAX_BYTES - len0] = 'x';
    v[LINE_MAX_BYTES - len0 + 1] = '\0';
    log_event(LOG_INFO, "e", "v", v, NULL);
    o = only_line(&len);
    cr_assert_leq(len, LINE_MAX_BYTES);
    cr_assert(json_is_true(json_object_get(o, "truncated")));
    cr_assert(ends_with(str_field(o, "v"), ELLIPSIS));
    json_decref(o);
    free(v);
    log_setup(LOG_FORMAT_TEXT, LOG_INFO);
}
