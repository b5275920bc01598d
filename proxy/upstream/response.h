/* What an upstream answered, one header line at a time: the status, the headers the proxy
 * uses, and Location. Pure. */
#ifndef PROXY_RESPONSE_H
#define PROXY_RESPONSE_H

#include <stddef.h>

#include "upstream-t.h"

enum response_line {
    RESPONSE_FIELD = 0, /* a header field (kept when it is one the proxy uses) or anything else */
    RESPONSE_STATUS,    /* a status line: a new response began */
    RESPONSE_END,       /* the empty line that ends a response's headers */
};

/* Empty <r> and <location> for a new response: status 0, no content length, strings "". */
void response_reset(struct upstream_response *r, char *location);

/*
 * Take one header line <line> of <n> bytes as libcurl's header callback gives it (CRLF
 * included, not NUL-terminated). A status line resets <r> and <location> and sets the status;
 * a field the proxy uses (Content-Length, Content-Type, Docker-Content-Digest, ETag, Link,
 * Retry-After, RateLimit-Remaining, the first WWW-Authenticate) is copied into <r> trimmed and
 * truncated to fit, Location into <location> of <loc_size> bytes. Returns what the line was.
 */
enum response_line response_header_line(struct upstream_response *r, char *location,
                                        size_t loc_size, const char *line, size_t n);

#endif
