/* Logging to stderr: one line per event, as text (key=value) or one JSON object per line. */
#ifndef PROXY_LOG_H
#define PROXY_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Choose the output format and the lowest level written. Defaults: text, info. */
void log_setup(enum log_format format, enum log_level min_level);

/* Parse "text"/"json"; returns 0 and sets <out>, or -1. */
int log_format_parse(const char *s, enum log_format *out);

/*
 * Write one event: <event> is a short name ("listen", "request"), followed by pairs of
 * const char * key and value, ending with NULL. A NULL value is written as an empty string.
 * Nothing here is retained after the call.
 *
 * A line is at most 4096 bytes, its newline included. In JSON, every line is one complete
 * object: values that do not fit are cut (the longest first, each ending in "…", U+2026) and
 * the object then carries "truncated":true; bytes that are not valid UTF-8 become U+FFFD.
 */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

/*
 * Batch info and debug lines: each is held in memory (64 KiB at most) until log_flush, and
 * <pending>(arg) is called when a line is held and none was before (the event loop uses it
 * to flush at the end of its turn). log_batch(NULL, NULL) writes what is held and stops
 * batching. Warnings and errors are always written at once.
 */
void log_batch(void (*pending)(void *), void *arg);
void log_flush(void);

#endif
