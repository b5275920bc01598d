/*
 * Logging to stderr: one line per event, text key=value or JSON. A line is written with a
 * single write(2), or, while the event loop batches (log_batch), info and debug lines wait
 * in a buffer for the end of the loop's turn and go out together: one system call for a
 * turn's worth of request lines instead of one each. Warnings and errors are never held
 * (anything held goes out first, so the order is kept).
 */
#include "config.h"

#include "proxy_log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_format log_fmt = LOG_FORMAT_TEXT;
static enum log_level log_min = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

#define LOG_HELD_MAX (64 * 1024)

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_held[LOG_HELD_MAX];
static size_t log_nheld;
static void (*log_hook)(void *);
static void *log_hook_arg;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return; /* nowhere left to report a failing stderr */
        p += w;
        n -= (size_t)w;
    }
}

/* Under log_mu. */
static void flush_held(void)
{
    write_all(log_held, log_nheld);
    log_nheld = 0;
}

void log_batch(void (*pending)(void *), void *arg)
{
    pthread_mutex_lock(&log_mu);
    flush_held();
    log_hook = pending;
    log_hook_arg = arg;
    pthread_mutex_unlock(&log_mu);
}

void log_flush(void)
{
    pthread_mutex_lock(&log_mu);
    flush_held();
    pthread_mutex_unlock(&log_mu);
}

static void emit(enum log_level level, const char *line, size_t n)
{
    void (*hook)(void *) = NULL;
    void *arg = NULL;

    pthread_mutex_lock(&log_mu);
    if (log_hook == NULL || level >= LOG_WARN) {
        flush_held();
        write_all(line, n);
    } else {
        if (log_nheld + n > sizeof(log_held))
            flush_held();
        if (log_nheld == 0) {
            hook = log_hook;
            arg = log_hook_arg;
        }
        memcpy(log_held + log_nheld, line, n);
        log_nheld += n;
    }
    pthread_mutex_unlock(&log_mu);
    if (hook != NULL)
        hook(arg);
}

void log_setup(enum log_format format, enum log_level min_level)
{
    log_fmt = format;
    log_min = min_level;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

static void timestamp(char *buf, size_t size)
{
    struct timeval tv;
    struct tm tm;
    char base[24];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%03dZ", base, (int)(tv.tv_usec / 1000) % 1000);
}

/* Values in text lines are quoted when they hold spaces, quotes or '='; control bytes escaped. */
static void text_value(char *out, size_t size, size_t *pos, const char *v)
{
    int quote = v[0] == '\0' || strpbrk(v, " \"=\t") != NULL;
    size_t p = *pos;

    if (quote && p + 1 < size)
        out[p++] = '"';
    for (; *v != '\0' && p + 4 < size; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\') {
            out[p++] = '\\';
            out[p++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            p += (size_t)snprintf(out + p, size - p, "\\x%02x", c);
        } else {
            out[p++] = (char)c;
        }
    }
    if (quote && p + 1 < size)
        out[p++] = '"';
    *pos = p;
}

void log_event(enum log_level level, const char *event, ...)
{
    char ts[40];
    char line[4096];
    size_t pos = 0;
    va_list ap;
    const char *k, *v;

    if (level < log_min)
        return;
    timestamp(ts, sizeof(ts));
    va_start(ap, event);
    if (log_fmt == LOG_FORMAT_JSON) {
        json_t *o = json_object();
        char *s;

        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "event", json_string(event));
        while ((k = va_arg(ap, const char *)) != NULL) {
            v = va_arg(ap, const char *);
            json_object_set_new(o, k, json_string(v ? v : ""));
        }
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (s != NULL) {
            size_t n = strlen(s);
            if (n > sizeof(line) - 2)
                n = sizeof(line) - 2;
            memcpy(line, s, n);
            line[n] = '\n';
            pos = n + 1;
            free(s);
        }
    } else {
        int n = snprintf(line, sizeof(line), "%s %s %s", ts, level_names[level], event);
        pos = (size_t)n;
        while ((k = va_arg(ap, const char *)) != NULL) {
            v = va_arg(ap, const char *);
            if (pos + strlen(k) + 8 >= sizeof(line))
                break;
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " %s=", k);
            text_value(line, sizeof(line) - 1, &pos, v ? v : "");
        }
        line[pos++] = '\n';
    }
    va_end(ap);
    if (pos > 0)
        emit(level, line, pos);
}
