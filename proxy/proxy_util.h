/* Small helpers shared by every module: allocation that aborts on failure, bounded strings. */
#ifndef PROXY_UTIL_H
#define PROXY_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Allocate or abort: out of memory in a daemon is not recoverable here. Caller owns the result. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy <src> into <dst> of <size> bytes, always NUL-terminated; returns -1 if truncated. */
int str_copy(char *dst, size_t size, const char *src);

/* Monotonic and wall-clock time in microseconds / seconds. */
int64_t util_mono_usec(void);
int64_t util_now(void);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
