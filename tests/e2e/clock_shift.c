/*
 * An LD_PRELOAD shim for the end-to-end tests: a wall clock the test can move. time(),
 * gettimeofday() and clock_gettime(CLOCK_REALTIME / CLOCK_REALTIME_COARSE) answer the real
 * time plus an offset read from the file named by CLOCK_SHIFT_FILE: one decimal number of
 * seconds, sign and up to nine fractional digits allowed ("0", "6.2", "-1.5"). Every other
 * clock (CLOCK_MONOTONIC above all, which libevent's timers and curl's timeouts run on) is
 * left alone. The test moves the clock by writing a temp file and renaming it over the old
 * one; each call stats the file and re-reads it only when it is another file or was modified,
 * so the next call after the rename sees the new offset. Without CLOCK_SHIFT_FILE, or while
 * the file cannot be read or parsed, the last good offset holds (0 at first).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000LL

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_gettimeofday)(struct timeval *, void *);
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct stat seen;       /* the file the offset was read from; under <lock> */
static int64_t offset_ns;      /* under <lock> */

/*
 * The real functions come from the next object after this one: libc. The shim never calls
 * clock_gettime() by name, since under ASan that name is the sanitizer's interceptor in the
 * executable, which would call back into the shim and shift twice.
 */
static void resolve(void)
{
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    real_gettimeofday = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
}

/* "[-]D[.F]" seconds into nanoseconds in <out>; -1 when <s> is not that. */
static int parse(const char *s, int64_t *out)
{
    int neg = 0, digits = 0;
    int64_t sec = 0, frac = 0, scale = NSEC;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (sec >= 100000000) /* a tenth digit: 31 years or more, a mistake */
            return -1;
        sec = sec * 10 + (*s - '0');
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (scale > 1) {
                scale /= 10;
                frac += (*s - '0') * scale;
            }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s != '\0' || digits == 0)
        return -1;
    *out = (sec * NSEC + frac) * (neg ? -1 : 1);
    return 0;
}

/* The offset now in force, re-read when the file changed since it was last read. */
static int64_t offset(void)
{
    const char *path = getenv("CLOCK_SHIFT_FILE");
    struct stat st;
    int64_t off;

    pthread_mutex_lock(&lock);
    if (path != NULL && path[0] != '\0' && stat(path, &st) == 0 &&
        (st.st_ino != seen.st_ino || st.st_dev != seen.st_dev || st.st_size != seen.st_size ||
         st.st_mtim.tv_sec != seen.st_mtim.tv_sec || st.st_mtim.tv_nsec != seen.st_mtim.tv_nsec ||
         st.st_ctim.tv_sec != seen.st_ctim.tv_sec || st.st_ctim.tv_nsec != seen.st_ctim.tv_nsec)) {
        char buf[64];
        ssize_t n = -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd != -1) {
            n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
        }
        if (n > 0) {
            buf[n] = '\0';
            if (parse(buf, &off) == 0) {
                offset_ns = off;
                seen = st;
            }
        }
    }
    off = offset_ns;
    pthread_mutex_unlock(&lock);
    return off;
}

/* The real wall clock <id> plus the offset, in <ts>. */
static int shifted(clockid_t id, struct timespec *ts)
{
    int64_t ns;

    pthread_once(&once, resolve);
    if (real_clock_gettime(id, ts) == -1)
        return -1;
    ns = (int64_t)ts->tv_sec * NSEC + ts->tv_nsec + offset();
    ts->tv_sec = (time_t)(ns / NSEC);
    ts->tv_nsec = (long)(ns % NSEC);
    if (ts->tv_nsec < 0) {
        ts->tv_sec--;
        ts->tv_nsec += NSEC;
    }
    return 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)
        return shifted(id, ts);
    pthread_once(&once, resolve);
    return real_clock_gettime(id, ts);
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timeval unused;
    struct timespec ts;

    pthread_once(&once, resolve);
    if (tz != NULL && real_gettimeofday(&unused, tz) == -1)
        return -1;
    if (shifted(CLOCK_REALTIME, &ts) == -1)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *t)
{
    struct timespec ts;

    if (shifted(CLOCK_REALTIME, &ts) == -1)
        return (time_t)-1;
    if (t != NULL)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
