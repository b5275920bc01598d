/* The sources read on this host: environment keys, the shared files' static keys, token
 * files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws_creds.h"
#include "creds-int.h"
#include "log.h"
#include "util.h"

#define CREDS_FILE_MAX (1024 * 1024) /* a shared credentials or config file */
#define CREDS_TOKEN_FILE_MAX 16384   /* a web identity or container authorization token */

/*
 * The file <path>, whole, NUL-terminated, at most <max> bytes: caller frees (and wipes) it.
 * NULL with *err, and errno ENOENT when the file does not exist.
 */
static char *read_file(const char *path, size_t max, size_t *len, char **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t n = 0;
    struct stat st;

    *err = NULL;
    if (fd == -1) {
        int e = errno;
        *err = xasprintf("%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        *err = xasprintf("%s: not a regular file of at most %zu bytes", path, max);
        goto fail;
    }
    buf = xmalloc(max + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            *err = xasprintf("%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            *err = xasprintf("%s: more than %zu bytes", path, max);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    errno = 0;
    return buf;
fail:
    close(fd);
    if (buf != NULL)
        explicit_bzero(buf, n);
    free(buf);
    errno = EINVAL;
    return NULL;
}

void creds_wipe_free(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

char *creds_read_token_file(const char *path, const char *what, char **err)
{
    size_t n = 0;
    char *t = read_file(path, CREDS_TOKEN_FILE_MAX, &n, err);

    if (t == NULL)
        return NULL;
    while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
        t[--n] = '\0';
    if (n == 0 || strpbrk(t, "\r\n") != NULL || strlen(t) != n) {
        *err = xasprintf("%s %s is empty or not one line", what, path);
        creds_wipe_free(t);
        return NULL;
    }
    return t;
}

int creds_from_env(struct creds *c, struct aws_credentials *out, char **err)
{
    const char *id = creds_env(c, "AWS_ACCESS_KEY_ID");
    const char *secret = creds_env(c, "AWS_SECRET_ACCESS_KEY");
    const char *token = creds_env(c, "AWS_SESSION_TOKEN");
    const char *exp = creds_env(c, "AWS_CREDENTIAL_EXPIRATION");

    if (id == NULL || secret == NULL) {
        if (id != NULL || secret != NULL)
            log_event(LOG_WARN, "aws-credentials-partial", "source", "environment", "missing",
                      id == NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY", NULL);
        return 0;
    }
    if (str_copy(out->ac_access_key, sizeof(out->ac_access_key), id) == -1 ||
        str_copy(out->ac_secret, sizeof(out->ac_secret), secret) == -1 ||
        str_copy(out->ac_token, sizeof(out->ac_token), token != NULL ? token : "") == -1) {
        *err = xstrdup("an AWS_ variable is longer than allowed");
        return -1;
    }
    if (exp != NULL && aws_parse_iso8601(exp, &out->ac_expires_at) == -1) {
        *err = xstrdup("AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
        return -1;
    }
    str_copy(out->ac_source, sizeof(out->ac_source), "environment");
    return 1;
}

/* <var>'s path, or $HOME/<dflt>; NULL when neither is set. Caller frees. */
static char *file_path(struct creds *c, const char *var, const char *dflt)
{
    const char *v = creds_env(c, var), *home = creds_env(c, "HOME");

    if (v != NULL)
        return xstrdup(v);
    return home != NULL ? xasprintf("%s/%s", home, dflt) : NULL;
}

/*
 * Profile <profile> in one shared file: 1 with <out>, 0 when it gives no static keys (an
 * unsupported profile is logged), -1 with *err. *found is set when the profile exists there.
 */
static int from_file(struct creds *c, const char *var, const char *dflt, int config_file,
                     const char *profile, struct aws_credentials *out, int *found, char **err)
{
    char *path = file_path(c, var, dflt), *text, *ferr = NULL;
    const char *why;
    size_t len;
    int rc = 0;

    if (path == NULL)
        return 0;
    text = read_file(path, CREDS_FILE_MAX, &len, &ferr);
    if (text == NULL) {
        if (errno != ENOENT)
            log_event(LOG_WARN, "aws-shared-file-unreadable", "error", ferr, NULL);
        free(ferr);
        free(path);
        return 0;
    }
    rc = aws_parse_shared_file(text, profile, config_file, out, err);
    if (rc == -1) {
        char *e = xasprintf("%s: %s", path, *err);
        free(*err);
        *err = e;
    } else if (rc == 0 && (why = aws_profile_unsupported(text, profile, config_file)) != NULL) {
        log_event(LOG_WARN, "aws-profile-unsupported", "profile", profile, "file", path, "setting",
                  why, "note", "only static keys are read from the shared files", NULL);
    }
    if (aws_profile_exists(text, profile, config_file) == 1)
        *found = 1;
    explicit_bzero(text, len);
    free(text);
    free(path);
    return rc;
}

int creds_from_profile(struct creds *c, struct aws_credentials *out, char **err)
{
    const char *named = creds_env(c, "AWS_PROFILE");
    const char *profile = named != NULL ? named : "default";
    int found = 0, rc;

    rc = from_file(c, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", 0, profile, out, &found,
                   err);
    if (rc == 0)
        rc = from_file(c, "AWS_CONFIG_FILE", ".aws/config", 1, profile, out, &found, err);
    if (rc == 0 && named != NULL && !found) {
        *err = xasprintf("AWS_PROFILE names profile %s, which no shared file has", profile);
        rc = -1;
    }
    return rc;
}
