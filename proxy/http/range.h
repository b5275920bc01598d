/* Range and If-Range for a stored or landing object (RFC 9110 14); pure functions. */
#ifndef HTTP_RANGE_H
#define HTTP_RANGE_H

#include <stdint.h>

/*
 * For a resource of <size> bytes, parse <hdr> ("bytes=a-b", "bytes=a-", "bytes=-n"). Returns
 * 0 when there is no usable single range (serve everything), 1 with [*start, *end) set, or -1
 * when unsatisfiable (416).
 */
int http_parse_range(const char *hdr, int64_t size, int64_t *start, int64_t *end);

/*
 * The Range header to honour for the object <digest> (ETag "<digest>"): <range> unless the
 * request's <if_range> (may be NULL) does not match, in which case NULL (answer 200 whole).
 */
const char *http_range_header(const char *range, const char *if_range, const char *digest);

#endif
