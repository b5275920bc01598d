/*
 * Logging to stderr: one line per event, text key=value or JSON. A line is written with a
 * single write(2), or, while the event loop batches (log_batch), info and debug lines wait
 * in a buffer for the end of the loop's turn and go out together: one system call for a
 * turn's worth of request lines instead of one each. Warnings and errors are never held
 * (anything held goes out first, so the order is kept).
 */
#include "config.h"

#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

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

/*
 * JSON lines: every line is one complete object, at most LOG_LINE_MAX bytes with its newline.
 * When the values do not fit (a 64 KiB request URI), the longest are cut, never the object:
 * the short values keep all their bytes, and the long ones share what is left equally, each
 * ending in "…" (U+2026), and the object gains "truncated":true. Values are also made valid
 * UTF-8 (a stray byte becomes U+FFFD), which jansson insists on: before, such a field was
 * silently left out of the line.
 */
#define LOG_LINE_MAX 4096 /* bytes in a line, newline included */
#define LOG_PAIRS_MAX 48  /* keys in a JSON line, ts, level and event included */

static const char ellipsis[] = "\xe2\x80\xa6";    /* U+2026, ends a cut value */
static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD, stands for an invalid byte */
#define TRUNCATED_MARK_LEN (sizeof(",\"truncated\":true") - 1)

struct log_pair {
    const char *k, *v;
};

/* Bytes of the valid UTF-8 sequence at <s> (<n> bytes left), or 0 when it is not one: the
 * rules jansson checks (no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Bytes the character starting with <c> (a sequence of <seq> bytes) takes in a JSON string as
 * jansson writes it: quote, backslash and control bytes escaped, the rest as they are. */
static size_t json_char_len(unsigned char c, size_t seq)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    if (c < 0x20)
        return 6; /* \u00XX */
    return seq;
}

/* Bytes <v> takes inside a JSON string, an invalid byte counted as U+FFFD. */
static size_t json_len(const char *v)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v), len = 0;

    for (size_t i = 0; i < n;) {
        size_t q = utf8_seq(s + i, n - i);
        len += q == 0 ? sizeof(replacement) - 1 : json_char_len(s[i], q);
        i += q == 0 ? 1 : q;
    }
    return len;
}

/*
 * A copy of <v> as valid UTF-8 whose JSON form takes at most <limit> bytes: whole when it fits,
 * else cut at a character boundary and ended with "…" (within the limit). *cut is set to 1 when
 * it was cut. The caller frees the copy.
 */
static char *json_fit(const char *v, size_t limit, int *cut)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v), room = limit, used = 0, o = 0;
    char *out;

    *cut = json_len(v) > limit;
    if (*cut)
        room = limit >= sizeof(ellipsis) - 1 ? limit - (sizeof(ellipsis) - 1) : 0;
    out = xmalloc(room + sizeof(ellipsis));
    for (size_t i = 0; i < n;) {
        size_t q = utf8_seq(s + i, n - i);
        size_t w = q == 0 ? sizeof(replacement) - 1 : json_char_len(s[i], q);
        if (used + w > room)
            break;
        if (q == 0)
            memcpy(out + o, replacement, sizeof(replacement) - 1);
        else
            memcpy(out + o, s + i, q);
        o += q == 0 ? sizeof(replacement) - 1 : q;
        used += w;
        i += q == 0 ? 1 : q;
    }
    if (*cut && limit >= sizeof(ellipsis) - 1) {
        memcpy(out + o, ellipsis, sizeof(ellipsis) - 1);
        o += sizeof(ellipsis) - 1;
    }
    out[o] = '\0';
    return out;
}

/*
 * Share <avail> bytes among <n> values of JSON lengths <len>: a value that fits in an equal
 * share of what the shorter ones leave keeps its length, the longer ones get that share each.
 */
static void json_share(const size_t *len, size_t n, size_t avail, size_t *limit)
{
    int fixed[LOG_PAIRS_MAX] = {0};
    size_t left = n, remaining = avail;

    while (left > 0) { /* each pass fixes at least one value, or ends */
        size_t share = remaining / left;
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            if (!fixed[i] && len[i] <= share) {
                limit[i] = len[i];
                remaining -= len[i];
                fixed[i] = 1;
                left--;
                any = 1;
            }
        }
        if (!any) {
            for (size_t i = 0; i < n; i++)
                if (!fixed[i])
                    limit[i] = share;
            break;
        }
    }
}

/*
 * <n> pairs as one compact JSON object: the values as they are when <limit> is NULL (NULL
 * returned when one is not valid UTF-8), else each fitted to its limit; "truncated":true when
 * <mark> or a value was cut. The caller frees the text.
 */
static char *json_pairs(const struct log_pair *p, size_t n, const size_t *limit, int mark)
{
    json_t *o = json_object();
    char *s = NULL;

    for (size_t i = 0; i < n; i++) {
        json_t *js;
        if (limit == NULL) {
            js = json_string(p[i].v);
        } else {
            int cut;
            char *fit = json_fit(p[i].v, limit[i], &cut);
            js = json_string(fit);
            free(fit);
            mark |= cut;
        }
        if (js == NULL)
            goto out;
        json_object_set_new(o, p[i].k, js);
    }
    if (mark)
        json_object_set_new(o, "truncated", json_true());
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(o);
    return s;
}

/* Write the JSON line for <p> (<n> pairs; <extra> when more were left out) into <line>
 * (LOG_LINE_MAX bytes). Returns its length, newline included. */
static size_t json_line(char *line, const struct log_pair *p, size_t n, int extra)
{
    size_t len[LOG_PAIRS_MAX], limit[LOG_PAIRS_MAX];
    size_t base = 1, total;
    char *s = extra ? NULL : json_pairs(p, n, NULL, 0);
    size_t sl = s != NULL ? strlen(s) : 0;

    if (s == NULL || sl + 1 > LOG_LINE_MAX) {
        /* Too long, or not valid UTF-8: fit every value to its share of the line. */
        free(s);
        for (size_t i = 0; i < n; i++) {
            len[i] = json_len(p[i].v);
            base += json_len(p[i].k) + 6; /* "k":"v", */
        }
        total = base;
        for (size_t i = 0; i < n; i++)
            total += len[i];
        if (!extra && total + 1 <= LOG_LINE_MAX) {
            memcpy(limit, len, n * sizeof(*limit));
        } else {
            size_t fixed = base + TRUNCATED_MARK_LEN + 1;
            json_share(len, n, fixed < LOG_LINE_MAX ? LOG_LINE_MAX - fixed : 0, limit);
        }
        s = json_pairs(p, n, limit, extra);
        sl = s != NULL ? strlen(s) : 0;
    }
    if (s == NULL || sl + 1 > LOG_LINE_MAX) {
        /* Keys too long to leave room for values (a bug in the caller): ts, level and the
         * start of the event name only. */
        static const size_t minimal[] = {64, 16, 256};
        free(s);
        s = json_pairs(p, n < 3 ? n : 3, minimal, 1);
        sl = s != NULL ? strlen(s) : 0;
    }
    if (s == NULL)
        return 0;
    memcpy(line, s, sl);
    line[sl] = '\n';
    free(s);
    return sl + 1;
}

void log_event(enum log_level level, const char *event, ...)
{
    char ts[40];
    char line[LOG_LINE_MAX];
    size_t pos = 0;
    va_list ap;
    const char *k, *v;

    if (level < log_min)
        return;
    timestamp(ts, sizeof(ts));
    va_start(ap, event);
    if (log_fmt == LOG_FORMAT_JSON) {
        struct log_pair p[LOG_PAIRS_MAX] = {
            {"ts", ts}, {"level", level_names[level]}, {"event", event}};
        size_t n = 3;
        int extra = 0;

        while ((k = va_arg(ap, const char *)) != NULL) {
            v = va_arg(ap, const char *);
            if (n == LOG_PAIRS_MAX) {
                extra = 1;
                continue;
            }
            p[n].k = k;
            p[n].v = v != NULL ? v : "";
            n++;
        }
        pos = json_line(line, p, n, extra);
    } else {
        int n = snprintf(line, sizeof(line), "%s %s %s", ts, level_names[level], event);
        pos = n < 0 || (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
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
