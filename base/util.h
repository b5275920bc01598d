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
/* Days from 1970-01-01 to <y>-<m>-<d> in the proleptic Gregorian calendar (H. Hinnant's
 * algorithm), for the token and credential expiry parsers; <m> 1-12, <d> 1-31. */
int64_t util_days_from_civil(int64_t y, int m, int d);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Objects that live across callbacks (STYLE.md 8) start with "unsigned magic", a number of
 * their own type, set at creation and zeroed when freed. Every callback entry takes its object
 * through one of these, never through an unchecked cast of its void *arg (Varnish's
 * CHECK_OBJ_NOTNULL and CAST_OBJ_NOTNULL, include/miniobj.h). They guard memory, so unlike
 * assert() they stay in an NDEBUG build: a wrong or freed object stops the process with one
 * line naming the place, never runs on.
 */
#define CHECK_OBJ_NOTNULL(ptr, type_magic)                                                         \
    do {                                                                                           \
        if ((ptr) == NULL || (ptr)->magic != (type_magic))                                         \
            util_bad_object(#ptr, __FILE__, __LINE__);                                             \
    } while (0)
#define CAST_OBJ_NOTNULL(to, from, type_magic)                                                     \
    do {                                                                                           \
        (to) = (from);                                                                             \
        CHECK_OBJ_NOTNULL(to, type_magic);                                                         \
    } while (0)
/* Print "<what> at <file>:<line> is not the object it should be" to stderr and abort. */
void util_bad_object(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
