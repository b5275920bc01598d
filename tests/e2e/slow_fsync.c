/*
 * An LD_PRELOAD shim for the end-to-end tests: a slow disk. Every fsync() and fdatasync()
 * first sleeps SLOW_FSYNC_MS milliseconds (default 1000), then does the real call, and counts
 * itself: the file named by SLOW_FSYNC_LOG (if set) gets one line per call, "fsync <tid>",
 * so a test can tell which thread waited on the disk.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void slow(const char *what)
{
    const char *v = getenv("SLOW_FSYNC_MS"), *log = getenv("SLOW_FSYNC_LOG");
    long ms = v != NULL ? strtol(v, NULL, 10) : 1000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    if (log != NULL && log[0] != '\0') {
        char line[64];
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd != -1) {
            int n = snprintf(line, sizeof(line), "%s %ld\n", what, (long)syscall(SYS_gettid));
            if (n > 0 && write(fd, line, (size_t)n) == -1) {
                /* a test log; nothing to do */
            }
            close(fd);
        }
    }
    while (ms > 0 && nanosleep(&ts, &ts) == -1)
        ;
}

int fsync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

    slow("fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

    slow("fdatasync");
    return real(fd);
}
