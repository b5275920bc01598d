/* Request bodies: from memory or from a file range, read piecewise for libcurl. */
#include "config.h"

#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define UPLOAD_MAGIC 0x55504c44u /* "UPLD" */

struct upload {
    unsigned magic;
    char *mem; /* the copy, or NULL for a file range */
    int fd;    /* our dup, or -1 */
    int64_t off, len;
    int64_t pos; /* bytes of the body handed to libcurl in this attempt */
    uint64_t *sent;
    int failed;
    char err[160];
};

struct upload *upload_from_memory(const char *data, size_t len)
{
    struct upload *u = xcalloc(1, sizeof(*u));

    u->magic = UPLOAD_MAGIC;
    u->fd = -1;
    u->len = (int64_t)len;
    u->mem = xmalloc(len > 0 ? len : 1);
    if (len > 0)
        memcpy(u->mem, data, len);
    return u;
}

struct upload *upload_from_fd(int fd, int64_t offset, int64_t len, char **err)
{
    struct upload *u;
    int dup;

    *err = NULL;
    if (offset < 0 || len < 0) {
        *err = xstrdup("the request body: a negative offset or length");
        return NULL;
    }
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup == -1) {
        *err = xasprintf("the request body: %s", strerror(errno));
        return NULL;
    }
    u = xcalloc(1, sizeof(*u));
    u->magic = UPLOAD_MAGIC;
    u->fd = dup;
    u->off = offset;
    u->len = len;
    return u;
}

void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    CHECK_OBJ_NOTNULL(u, UPLOAD_MAGIC);
    if (u->fd != -1)
        close(u->fd);
    free(u->mem);
    u->magic = 0;
    free(u);
}

/* The next piece of the body, from pos: copied from memory or pread from the file. */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u;
    size_t want = size * nitems;
    int64_t left;

    CAST_OBJ_NOTNULL(u, userdata, UPLOAD_MAGIC);
    left = u->len - u->pos;
    if ((int64_t)want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (u->mem == NULL) {
        ssize_t got;
        do
            got = pread(u->fd, buf, want, (off_t)(u->off + u->pos));
        while (got == -1 && errno == EINTR);
        if (got == -1 || got == 0) {
            snprintf(u->err, sizeof(u->err), "reading the request body: %s",
                     got == -1 ? strerror(errno) : "the file ends inside its range");
            u->failed = 1;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)got;
    } else {
        memcpy(buf, u->mem + u->pos, want);
    }
    u->pos += (int64_t)want;
    if (u->sent != NULL)
        *u->sent += want;
    return want;
}

/* libcurl rewinds on its own too (a reused connection found dead): only to a body offset. */
static int seek_cb(void *userp, curl_off_t offset, int origin)
{
    struct upload *u;

    CAST_OBJ_NOTNULL(u, userp, UPLOAD_MAGIC);
    if (origin != SEEK_SET || offset < 0 || offset > u->len)
        return CURL_SEEKFUNC_CANTSEEK;
    u->pos = offset;
    return CURL_SEEKFUNC_OK;
}

void upload_attach(struct upload *u, CURL *easy, uint64_t *sent)
{
    CHECK_OBJ_NOTNULL(u, UPLOAD_MAGIC);
    u->pos = 0;
    u->failed = 0;
    u->err[0] = '\0';
    u->sent = sent;
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u->len);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(easy, CURLOPT_READDATA, u);
    curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(easy, CURLOPT_SEEKDATA, u);
}

const char *upload_error(const struct upload *u)
{
    CHECK_OBJ_NOTNULL(u, UPLOAD_MAGIC);
    return u->failed ? u->err : NULL;
}
