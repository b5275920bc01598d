/* Unit tests for proxy/cache/store.c: layout, digests, temp files, commits, small reads, what
 * reconcile is told. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_index.h"
#include "store.h"

/* sha256("") and sha512(""); the store trusts its caller to have verified content. */
#define HEX256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D256 "sha256:" HEX256
#define HEX512                                                                                     \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877e" \
    "ec2f63b931bd47417a81a538327af927da3e"
#define D512 "sha512:" HEX512
#define HEXB "abcd000000000000000000000000000000000000000000000000000000000000"
#define D256B "sha256:" HEXB

static char dir[256]; /* short, so every path built from it fits */
static struct store *st;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/ptc-store-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    store_close(st);
    st = NULL;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
    char *err = NULL;

    st = store_open(dir, &err);
    cr_assert_not_null(st, "store_open: %s", err ? err : "?");
    cr_assert_null(err);
}

static int is_dir(const char *sub)
{
    char p[PATH_MAX];
    struct stat sb;

    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0;
}

static void write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(data, f);
    fclose(f);
}

/* Entries of <sub> other than "." and "..". */
static int count_entries(const char *sub)
{
    char p[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    d = opendir(p);
    cr_assert_not_null(d, "%s: %s", p, strerror(errno));
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Write <data> to a fresh temp file and commit it as <digest>; the temp path must be gone. */
static void commit_data(const char *digest, const char *data)
{
    char tmp[STORE_PATH_MAX];
    char *err = NULL;
    int fd = store_tmp_create(st, tmp, sizeof(tmp));

    cr_assert_neq(fd, -1, "tmp_create: %s", strerror(errno));
    cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    cr_assert_eq(store_commit(st, fd, tmp, digest, &err), 0, "commit: %s", err ? err : "?");
    cr_assert_null(err);
    cr_assert_not(exists(tmp), "temp file %s still there after commit", tmp);
    close(fd);
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, open_creates_layout)
{
    open_store();
    cr_assert(is_dir("blobs"));
    cr_assert(is_dir("blobs/sha256"));
    cr_assert(is_dir("blobs/sha512"));
    cr_assert(is_dir("tmp"));
    cr_assert_eq(count_entries("tmp"), 0);
    store_close(st);
    st = NULL;
    open_store(); /* a second open of the same directory is fine */
}

Test(store, open_creates_missing_parents)
{
    char *err = NULL;
    char deep[PATH_MAX];

    snprintf(deep, sizeof(deep), "%s/a/b/data", dir);
    st = store_open(deep, &err);
    cr_assert_not_null(st, "%s", err ? err : "?");
    cr_assert(is_dir("a/b/data/blobs/sha256"));
    cr_assert(is_dir("a/b/data/tmp"));
}

Test(store, open_empties_tmp_but_keeps_blobs)
{
    char p[PATH_MAX];

    open_store();
    commit_data(D256, "kept");
    store_close(st);
    st = NULL;
    snprintf(p, sizeof(p), "%s/tmp/fill-1-1-1", dir);
    write_file(p, "half a layer");
    snprintf(p, sizeof(p), "%s/tmp/fill-2-2-2", dir);
    write_file(p, "another");
    cr_assert_eq(count_entries("tmp"), 2);

    open_store();
    cr_assert_eq(count_entries("tmp"), 0);
    cr_assert(store_has(st, D256));
}

Test(store, open_failure_reports)
{
    char *err = NULL;
    char file[PATH_MAX];

    snprintf(file, sizeof(file), "%s/plain", dir);
    write_file(file, "x");
    st = store_open(file, &err); /* a regular file where the data directory should be */
    cr_assert_null(st);
    cr_assert_not_null(err);
    cr_assert_neq(err[0], '\0');
    free(err);
    store_close(NULL);
}

Test(store, blob_path_layout)
{
    char p[STORE_PATH_MAX], want[STORE_PATH_MAX];

    open_store();
    cr_assert_eq(store_blob_path(st, D256B, p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/blobs/sha256/ab/%s", dir, HEXB);
    cr_assert_str_eq(p, want);

    cr_assert_eq(store_blob_path(st, D512, p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/blobs/sha512/cf/%s", dir, HEX512);
    cr_assert_str_eq(p, want);

    /* Too small a buffer is an error, not a truncated path. */
    cr_assert_eq(store_blob_path(st, D256, p, strlen(dir) + 20), -1);
}

Test(store, invalid_digests_refused)
{
    static const char *bad[] = {
        "",
        "sha256:",
        "sha256:abc",
        "sha256:" HEX256 "0",                                                      /* 65 hex */
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", /* upper */
        "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:../../../../../../../../../../../../../../../../../../../etc/pwd", /* 64 */
        "sha512:" HEX256, /* 64 hex for sha512 */
        "sha256:" HEX512,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "SHA256:" HEX256,
        HEX256,
        "sha256/" HEX256,
    };
    char p[STORE_PATH_MAX];
    char *err = NULL;
    int64_t size = 0;

    open_store();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(store_blob_path(st, bad[i], p, sizeof(p)), -1, "accepted \"%s\"", bad[i]);
        cr_assert_eq(store_has(st, bad[i]), 0);
        errno = 0;
        cr_assert_eq(store_open_blob(st, bad[i], &size), -1);
        cr_assert_eq(errno, EINVAL);
        cr_assert_eq(store_put_small(st, bad[i], "x", 1, &err), -1, "put \"%s\"", bad[i]);
        cr_assert_not_null(err);
        free(err);
        err = NULL;
    }
    /* A refused put leaves nothing behind in tmp/. */
    cr_assert_eq(count_entries("tmp"), 0);
}

Test(store, tmp_create_distinct)
{
    char a[STORE_PATH_MAX], b[STORE_PATH_MAX], tmpdir[PATH_MAX];
    int fa, fb;
    struct stat sa, sb;
    char buf[4] = {0};

    open_store();
    fa = store_tmp_create(st, a, sizeof(a));
    fb = store_tmp_create(st, b, sizeof(b));
    cr_assert_neq(fa, -1);
    cr_assert_neq(fb, -1);
    cr_assert_str_neq(a, b);
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp/", dir);
    cr_assert_eq(strncmp(a, tmpdir, strlen(tmpdir)), 0, "%s not in %s", a, tmpdir);
    cr_assert_eq(strncmp(b, tmpdir, strlen(tmpdir)), 0, "%s not in %s", b, tmpdir);
    cr_assert_eq(fstat(fa, &sa), 0);
    cr_assert_eq(fstat(fb, &sb), 0);
    cr_assert_neq(sa.st_ino, sb.st_ino);
    cr_assert(S_ISREG(sa.st_mode));
    cr_assert_eq(sa.st_size, 0);
    cr_assert_eq(count_entries("tmp"), 2);
    /* Read-write: what a fill writes, its followers read back. */
    cr_assert_eq(write(fa, "abc", 3), 3);
    cr_assert_eq(pread(fa, buf, 3, 0), 3);
    cr_assert_str_eq(buf, "abc");
    cr_assert(fcntl(fa, F_GETFD) & FD_CLOEXEC);
    close(fa);
    close(fb);

    /* A path buffer too small fails with ENAMETOOLONG, no file created. */
    errno = 0;
    cr_assert_eq(store_tmp_create(st, a, 8), -1);
    cr_assert_eq(errno, ENAMETOOLONG);
    cr_assert_eq(count_entries("tmp"), 2);
}

Test(store, commit_and_read_back)
{
    const char *data = "{\"schemaVersion\":2}";
    char *got;
    char p[STORE_PATH_MAX], rd[64] = {0};
    int64_t size = -1;
    size_t len = 0;
    int fd;

    open_store();
    cr_assert_eq(store_has(st, D256B), 0);
    errno = 0;
    cr_assert_eq(store_open_blob(st, D256B, &size), -1);
    cr_assert_eq(errno, ENOENT);
    cr_assert_null(store_read_small(st, D256B, 1024, &len));

    commit_data(D256B, data);
    cr_assert_eq(store_has(st, D256B), 1);
    cr_assert_eq(store_blob_path(st, D256B, p, sizeof(p)), 0);
    cr_assert(exists(p));
    cr_assert_eq(count_entries("tmp"), 0);
    cr_assert_eq(count_entries("blobs/sha256"), 1);

    fd = store_open_blob(st, D256B, &size);
    cr_assert_neq(fd, -1);
    cr_assert_eq(size, (int64_t)strlen(data));
    cr_assert_eq(read(fd, rd, sizeof(rd) - 1), (ssize_t)strlen(data));
    cr_assert_str_eq(rd, data);
    close(fd);

    got = store_read_small(st, D256B, 1024, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, strlen(data));
    cr_assert_str_eq(got, data); /* NUL-terminated for the JSON parser */
    free(got);

    /* Committing the same digest again replaces it atomically. */
    commit_data(D256B, data);
    cr_assert_eq(store_has(st, D256B), 1);

    /* A sha512 digest lands in its own tree. */
    commit_data(D512, "");
    cr_assert_eq(store_has(st, D512), 1);
    cr_assert_eq(count_entries("blobs/sha512/cf"), 1);
    got = store_read_small(st, D512, 0, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, 0);
    free(got);
}

Test(store, commit_bad_digest_leaves_tmp)
{
    char tmp[STORE_PATH_MAX];
    char *err = NULL;
    int fd;

    open_store();
    fd = store_tmp_create(st, tmp, sizeof(tmp));
    cr_assert_neq(fd, -1);
    cr_assert_eq(store_commit(st, fd, tmp, "sha256:nope", &err), -1);
    cr_assert_not_null(err);
    free(err);
    cr_assert(exists(tmp), "the caller discards a failed commit's temp file");
    store_tmp_discard(st, tmp);
    cr_assert_not(exists(tmp));
    close(fd);
}

Test(store, read_small_refuses_over_max)
{
    char *err = NULL, *got;
    size_t len = 12345;

    open_store();
    cr_assert_eq(store_put_small(st, D256, "0123456789", 10, &err), 0, "%s", err ? err : "");
    cr_assert_null(store_read_small(st, D256, 9, &len));
    cr_assert_null(store_read_small(st, D256, 0, &len));
    got = store_read_small(st, D256, 10, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, 10);
    cr_assert_str_eq(got, "0123456789");
    free(got);
}

Test(store, put_small)
{
    char *err = (char *)"unset", *got;
    size_t len = 0;
    const char bin[] = {'a', '\0', 'b', '\n'};

    open_store();
    cr_assert_eq(store_put_small(st, D256B, bin, sizeof(bin), &err), 0);
    cr_assert_null(err);
    cr_assert(store_has(st, D256B));
    cr_assert_eq(count_entries("tmp"), 0);
    got = store_read_small(st, D256B, 100, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, sizeof(bin));
    cr_assert_arr_eq(got, bin, sizeof(bin));
    free(got);

    /* Zero bytes are a valid blob. */
    cr_assert_eq(store_put_small(st, D256, "", 0, &err), 0);
    cr_assert(store_has(st, D256));
}

Test(store, put_small_fails_cleanly_when_commit_fails)
{
    char p[PATH_MAX];
    char *err = NULL;

    open_store();
    /* A regular file where the fan-out directory belongs: the rename fails even for root. */
    snprintf(p, sizeof(p), "%s/blobs/sha256/e3", dir);
    write_file(p, "in the way");
    cr_assert_eq(store_put_small(st, D256, "x", 1, &err), -1);
    cr_assert_not_null(err);
    cr_assert_neq(err[0], '\0');
    free(err);
    cr_assert_eq(count_entries("tmp"), 0, "the failed put's temp file was left behind");
    cr_assert_not(store_has(st, D256));
}

Test(store, tmp_discard)
{
    char tmp[STORE_PATH_MAX];
    int fd;

    open_store();
    fd = store_tmp_create(st, tmp, sizeof(tmp));
    cr_assert_neq(fd, -1);
    close(fd);
    cr_assert(exists(tmp));
    store_tmp_discard(st, tmp);
    cr_assert_not(exists(tmp));
    store_tmp_discard(st, tmp); /* already gone: no complaint */
    cr_assert_eq(count_entries("tmp"), 0);
}

Test(store, exists_cb)
{
    char *err = NULL;

    open_store();
    cr_assert_eq(store_exists_cb(D256, st), 0);
    cr_assert_eq(store_put_small(st, D256, "", 0, &err), 0);
    cr_assert_eq(store_exists_cb(D256, st), 1);
    cr_assert_eq(store_exists_cb(D512, st), 0);
    cr_assert_eq(store_exists_cb("garbage", st), 0);
}

/* The shard directory of <digest> (blobs/sha256/xx) into <p>. */
static void shard_path(const char *digest, char *p, size_t size)
{
    cr_assert_eq(store_blob_path(st, digest, p, size), 0);
    *strrchr(p, '/') = '\0';
}

/*
 * Only "no such file" means absent. Tests run as root, where a chmod 000 denies nothing, so
 * the failure that is neither present nor absent is a real stat(2) error another way: the
 * shard directory is a symlink to itself (ELOOP), as EACCES or EIO would be.
 */
Test(store, exists_cb_tells_absent_from_unknown)
{
    char p[STORE_PATH_MAX];
    const char *why;

    open_store();
    cr_assert_null(store_last_error(st));
    /* ENOENT: the shard directory does not exist. */
    cr_assert_eq(store_exists_cb(D256B, st), 0);
    /* ENOTDIR: the shard is a file, so the blob cannot be there either. */
    shard_path(D256B, p, sizeof(p));
    write_file(p, "not a directory");
    cr_assert_eq(store_exists_cb(D256B, st), 0);
    cr_assert_null(store_last_error(st), "absent is not an error");
    cr_assert_eq(unlink(p), 0);
    /* ELOOP: the store cannot tell. */
    cr_assert_eq(symlink(p, p), 0, "%s", strerror(errno));
    cr_assert_eq(store_exists_cb(D256B, st), -1, "a stat error was taken for a missing blob");
    why = store_last_error(st);
    cr_assert_not_null(why);
    cr_assert_eq(store_blob_path(st, D256B, p, sizeof(p)), 0);
    cr_assert_not_null(strstr(why, p), "the message does not name the path: %s", why);
    cr_assert_not_null(strstr(why, strerror(ELOOP)), "%s", why);
    cr_assert_not_null(strstr(why, "errno 40"), "%s", why);
    cr_assert_null(strchr(why, '\n'), "one line");
}

/* The real pair at start-up: a store that cannot tell makes index_reconcile drop nothing. */
Test(store, reconcile_drops_nothing_when_stat_fails)
{
    char loop[STORE_PATH_MAX], *err = NULL;
    struct index *ix;
    int64_t size;

    open_store();
    ix = index_open(":memory:", &err);
    cr_assert_not_null(ix, "%s", err ? err : "");
    cr_assert_eq(store_put_small(st, D256, "", 0, &err), 0);
    cr_assert_eq(index_blob_put(ix, D256, 0, 1), 0);  /* stored */
    cr_assert_eq(index_blob_put(ix, D256B, 5, 1), 0); /* its shard cannot be read */
    cr_assert_eq(index_blob_put(ix, D512, 0, 1), 0);  /* really missing */
    shard_path(D256B, loop, sizeof(loop));
    cr_assert_eq(symlink(loop, loop), 0, "%s", strerror(errno));

    cr_assert_eq(index_reconcile(ix, store_exists_cb, st), -1);
    cr_assert_eq(index_blob_get(ix, D256, &size), 1);
    cr_assert_eq(index_blob_get(ix, D256B, &size), 1, "a row was dropped on a stat error");
    cr_assert_eq(index_blob_get(ix, D512, &size), 1, "nothing is dropped when the pass aborts");

    /* Once the store can tell again, only what is missing goes. */
    cr_assert_eq(unlink(loop), 0);
    cr_assert_eq(index_reconcile(ix, store_exists_cb, st), 2);
    cr_assert_eq(index_blob_get(ix, D256, &size), 1);
    cr_assert_eq(index_blob_get(ix, D256B, &size), 0);
    cr_assert_eq(index_blob_get(ix, D512, &size), 0);
    index_close(ix);
}

Test(store, has_ignores_directories)
{
    char p[STORE_PATH_MAX];

    open_store();
    cr_assert_eq(store_blob_path(st, D256B, p, sizeof(p)), 0);
    *strrchr(p, '/') = '\0';
    cr_assert_eq(mkdir(p, 0750), 0);
    cr_assert_eq(store_blob_path(st, D256B, p, sizeof(p)), 0);
    cr_assert_eq(mkdir(p, 0750), 0);
    cr_assert_eq(store_has(st, D256B), 0);
}

Test(store, free_bytes)
{
    open_store();
    cr_assert_gt(store_free_bytes(st), 0);
}
