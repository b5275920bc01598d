/* Response header lines into struct upstream_response. */
#include "config.h"

#include "response.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void copy_value(char *dst, size_t size, const char *v, size_t len)
{
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    if (len >= size)
        len = size - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int header_is(const char *line, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t k = strlen(name);

    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return 0;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return 1;
}

void response_reset(struct upstream_response *r, char *location)
{
    memset(r, 0, sizeof(*r));
    r->ur_content_length = -1;
    location[0] = '\0';
}

enum response_line response_header_line(struct upstream_response *r, char *location,
                                        size_t loc_size, const char *line, size_t n)
{
    const char *v;
    size_t vl;

    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', n);
        response_reset(r, location);
        if (sp != NULL && (size_t)(sp - line) + 4 <= n)
            r->ur_status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        return RESPONSE_STATUS;
    }
    if (n <= 2 && (n == 0 || line[0] == '\r' || line[0] == '\n'))
        return RESPONSE_END;
    if (header_is(line, n, "content-length", &v, &vl)) {
        char buf[32];
        char *end;
        long long cl;
        copy_value(buf, sizeof(buf), v, vl);
        errno = 0;
        cl = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0' && end != buf && cl >= 0)
            r->ur_content_length = cl;
    } else if (header_is(line, n, "content-type", &v, &vl)) {
        copy_value(r->ur_content_type, sizeof(r->ur_content_type), v, vl);
    } else if (header_is(line, n, "docker-content-digest", &v, &vl)) {
        copy_value(r->ur_digest, sizeof(r->ur_digest), v, vl);
    } else if (header_is(line, n, "etag", &v, &vl)) {
        copy_value(r->ur_etag, sizeof(r->ur_etag), v, vl);
    } else if (header_is(line, n, "link", &v, &vl)) {
        copy_value(r->ur_link, sizeof(r->ur_link), v, vl);
    } else if (header_is(line, n, "retry-after", &v, &vl)) {
        copy_value(r->ur_retry_after, sizeof(r->ur_retry_after), v, vl);
    } else if (header_is(line, n, "ratelimit-remaining", &v, &vl)) {
        copy_value(r->ur_ratelimit_remaining, sizeof(r->ur_ratelimit_remaining), v, vl);
    } else if (header_is(line, n, "www-authenticate", &v, &vl)) {
        if (r->ur_www_authenticate[0] == '\0')
            copy_value(r->ur_www_authenticate, sizeof(r->ur_www_authenticate), v, vl);
    } else if (header_is(line, n, "x-amzn-errortype", &v, &vl)) {
        copy_value(r->ur_amzn_error_type, sizeof(r->ur_amzn_error_type), v, vl);
    } else if (header_is(line, n, "location", &v, &vl)) {
        copy_value(location, loc_size, v, vl);
    }
    return RESPONSE_FIELD;
}
