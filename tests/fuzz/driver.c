/* Replays files through a fuzz target when libFuzzer is absent: `make check` with gcc. */
#include "config.h"

#ifdef HAVE_LIBFUZZER
#error "driver.c is for builds without libFuzzer, which brings its own main"
#endif

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define DRIVER_INPUT_MAX (16 * 1024 * 1024)

/* Run the file at <path> through the target once; 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = NULL;
    uint8_t *buf = NULL;
    struct stat st;
    size_t n;
    int rc = -1;

    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &st) == -1) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        goto out;
    }
    if (st.st_size > DRIVER_INPUT_MAX) {
        fprintf(stderr, "%s: larger than %d bytes\n", path, DRIVER_INPUT_MAX);
        goto out;
    }
    /* Exactly the input's size, so ASan sees a read one byte past its end. */
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL)
        abort();
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (n != (size_t)st.st_size) {
        fprintf(stderr, "%s: short read\n", path);
        goto out;
    }
    fprintf(stderr, "Running: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, n);
    rc = 0;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every regular file of the directory <dir>, in name order; sets *<count>. */
static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len;

        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap == 0 ? 64 : cap * 2;
            names = realloc(names, cap * sizeof(*names));
            if (names == NULL)
                abort();
        }
        len = strlen(dir) + 1 + strlen(de->d_name) + 1;
        names[n] = malloc(len);
        if (names[n] == NULL)
            abort();
        snprintf(names[n], len, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), compare_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;

        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) == -1)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/*
 * Each argument is an input file or a directory of them; arguments starting with '-' are
 * libFuzzer options, accepted and ignored so both builds take the same command line.
 */
int main(int argc, char **argv)
{
    int count = 0, rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;

        if (argv[i][0] == '-')
            continue;
        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) == -1)
                rc = 1;
        } else if (replay_file(argv[i]) == -1) {
            rc = 1;
        } else {
            count++;
        }
    }
    fprintf(stderr, "%s: replayed %d inputs\n", argv[0], count);
    return rc;
}
