/* The content-addressed store: verified blobs and manifests on disk, temp files for fills. */
#include "config.h"

#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "oci.h"
#include "util.h"

#define STORE_MAGIC 0x53544f52u /* "STOR" */

struct store {
    unsigned magic;
    char *root;  /* DATA_DIR */
    char *blobs; /* DATA_DIR/blobs */
    char *tmp;   /* DATA_DIR/tmp */
    unsigned long seq;
    char err[STORE_PATH_MAX + 128]; /* why store_exists_cb last returned -1 */
};

static int mkdir_p(const char *path)
{
    char buf[STORE_PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0750) == -1 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

/* Remove every regular file in <dir>; subdirectories are not expected there. */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

struct store *store_open(const char *data_dir, char **err)
{
    struct store *st = xcalloc(1, sizeof(*st));
    char path[STORE_PATH_MAX];
    const char *subs[] = {"blobs/sha256", "blobs/sha512", "tmp"};

    *err = NULL;
    st->magic = STORE_MAGIC;
    st->root = xstrdup(data_dir);
    st->blobs = xasprintf("%s/blobs", data_dir);
    st->tmp = xasprintf("%s/tmp", data_dir);
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        snprintf(path, sizeof(path), "%s/%s", data_dir, subs[i]);
        if (mkdir_p(path) == -1) {
            *err = xasprintf("cannot create %s: %s", path, strerror(errno));
            store_close(st);
            return NULL;
        }
    }
    clear_dir(st->tmp);
    return st;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    free(st->root);
    free(st->blobs);
    free(st->tmp);
    st->magic = 0;
    free(st);
}

int store_blob_path(const struct store *st, const char *digest, char *buf, size_t size)
{
    enum oci_digest_alg alg = oci_digest_parse(digest, strlen(digest));
    const char *hex = digest + 7;
    int n;

    if (alg == OCI_DIGEST_NONE)
        return -1;
    n = snprintf(buf, size, "%s/%s/%.2s/%s", st->blobs,
                 alg == OCI_DIGEST_SHA256 ? "sha256" : "sha512", hex, hex);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int store_has(const struct store *st, const char *digest)
{
    char path[STORE_PATH_MAX];
    struct stat sb;

    if (store_blob_path(st, digest, path, sizeof(path)) == -1)
        return 0;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/*
 * Only ENOENT and ENOTDIR (a path component is a file) mean "not there". Any other failure
 * (EACCES, EIO, ELOOP, ...) says nothing about the blob: -1, so that index_reconcile drops
 * nothing, and the reason is kept for store_last_error.
 */
int store_exists_cb(const char *digest, void *arg)
{
    struct store *st = arg;
    char path[STORE_PATH_MAX];
    struct stat sb;

    CHECK_OBJ_NOTNULL(st, STORE_MAGIC);

    if (store_blob_path(st, digest, path, sizeof(path)) == -1)
        return 0; /* not a digest: nothing the store could hold */
    if (stat(path, &sb) == 0)
        return S_ISREG(sb.st_mode);
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    snprintf(st->err, sizeof(st->err), "cannot stat %s: %s (errno %d)", path, strerror(errno),
             errno);
    return -1;
}

const char *store_last_error(const struct store *st)
{
    return st->err[0] != '\0' ? st->err : NULL;
}

int store_open_blob(const struct store *st, const char *digest, int64_t *size)
{
    char path[STORE_PATH_MAX];
    struct stat sb;
    int fd;

    if (store_blob_path(st, digest, path, sizeof(path)) == -1) {
        errno = EINVAL;
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    if (fstat(fd, &sb) == -1) {
        close(fd);
        return -1;
    }
    *size = (int64_t)sb.st_size;
    return fd;
}

char *store_read_small(const struct store *st, const char *digest, size_t max, size_t *len)
{
    int64_t size;
    int fd = store_open_blob(st, digest, &size);
    char *buf = NULL;
    size_t got = 0;

    if (fd == -1)
        return NULL;
    if (size < 0 || (uint64_t)size > max)
        goto out;
    buf = xmalloc((size_t)size + 1);
    while (got < (size_t)size) {
        ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
out:
    close(fd);
    return buf;
}

int store_tmp_create(const struct store *st, char *path, size_t size)
{
    struct store *mut = (struct store *)st;
    int fd, n;

    for (int tries = 0; tries < 100; tries++) {
        /* Atomic: the loop (fills) and the commit thread (manifests) both make temp files. */
        unsigned long seq = __atomic_add_fetch(&mut->seq, 1, __ATOMIC_RELAXED);
        n = snprintf(path, size, "%s/fill-%ld-%lu-%lld", st->tmp, (long)getpid(), seq,
                     (long long)util_mono_usec());
        if (n < 0 || (size_t)n >= size) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd != -1 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd == -1)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int store_commit(const struct store *st, int fd, const char *tmp_path, const char *digest,
                 char **err)
{
    char path[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    char *slash;

    *err = NULL;
    if (store_blob_path(st, digest, path, sizeof(path)) == -1) {
        *err = xasprintf("not a digest: %s", digest);
        return -1;
    }
    if (fsync(fd) == -1) {
        *err = xasprintf("fsync %s: %s", tmp_path, strerror(errno));
        return -1;
    }
    memcpy(dir, path, strlen(path) + 1);
    slash = strrchr(dir, '/');
    *slash = '\0';
    if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (rename(tmp_path, path) == -1) {
        *err = xasprintf("rename %s to %s: %s", tmp_path, path, strerror(errno));
        return -1;
    }
    if (fsync_dir(dir) == -1) {
        *err = xasprintf("fsync %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int store_put_small(const struct store *st, const char *digest, const char *data, size_t len,
                    char **err)
{
    char tmp[STORE_PATH_MAX];
    size_t off = 0;
    int fd, rc = -1;

    *err = NULL;
    fd = store_tmp_create(st, tmp, sizeof(tmp));
    if (fd == -1) {
        *err = xasprintf("create temp file: %s", strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1) {
            *err = xasprintf("write %s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (store_commit(st, fd, tmp, digest, err) == -1)
        goto out;
    rc = 0;
out:
    close(fd);
    if (rc == -1)
        store_tmp_discard(st, tmp);
    return rc;
}

int store_remove(const struct store *st, const char *digest)
{
    char path[STORE_PATH_MAX];

    if (store_blob_path(st, digest, path, sizeof(path)) == -1)
        return -1;
    if (unlink(path) == -1 && errno != ENOENT)
        return -1;
    return 0;
}

void store_tmp_discard(const struct store *st, const char *tmp_path)
{
    (void)st;
    if (unlink(tmp_path) == -1 && errno != ENOENT) {
        /* Left for the next start-up's sweep of tmp/. */
    }
}

int64_t store_free_bytes(const struct store *st)
{
    struct statvfs sv;

    if (statvfs(st->root, &sv) == -1)
        return -1;
    return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}
