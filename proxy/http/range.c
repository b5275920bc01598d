/* Range and If-Range for objects served whole from a file or as they land (RFC 9110 14). */
#include "config.h"

#include "range.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *http_range_header(const char *range, const char *if_range, const char *digest)
{
    size_t dl;

    if (range == NULL || if_range == NULL)
        return range;
    /* RFC 9110 13.1.5: a strong comparison with our ETag, "<digest>"; a date (we send no
     * Last-Modified) or another tag never matches, and the Range is then ignored. */
    dl = strlen(digest);
    if (strlen(if_range) == dl + 2 && if_range[0] == '"' && if_range[dl + 1] == '"' &&
        strncmp(if_range + 1, digest, dl) == 0)
        return range;
    return NULL;
}

int http_parse_range(const char *hdr, int64_t size, int64_t *start, int64_t *end)
{
    const char *p;
    char *e;
    long long a = -1, b = -1;

    if (strncmp(hdr, "bytes=", 6) != 0)
        return 0;
    p = hdr + 6;
    if (strchr(p, ',') != NULL)
        return 0; /* several ranges: answer with the whole thing, as RFC 9110 allows */
    if (*p == '-') {
        errno = 0;
        b = strtoll(p + 1, &e, 10);
        if (errno != 0 || *e != '\0' || e == p + 1 || b < 0)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *start = b >= size ? 0 : size - b;
        *end = size;
        return 1;
    }
    errno = 0;
    a = strtoll(p, &e, 10);
    if (errno != 0 || e == p || *e != '-' || a < 0)
        return 0;
    p = e + 1;
    if (*p != '\0') {
        errno = 0;
        b = strtoll(p, &e, 10);
        if (errno != 0 || *e != '\0' || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *start = a;
    *end = (b < 0 || b >= size) ? size : b + 1;
    return 1;
}
