/* Unit tests for proxy_log: line formats and batching. stderr is redirected to a temp file. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy_log.h"

static char path[] = "/tmp/test_proxy_log.XXXXXX";
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
    cr_assert_not_null(strstr(written(), "\"level\":\"warn\",\"event\":\"serve-stale\",\"tag\":\"latest\"}\n"));
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
