/* Fuzzes http_parse_range (proxy/http/range.c): a client's Range header against a blob size. */
#include "config.h"

#include <errno.h>

#include "fuzz.h"
#include "range.h"

/* The blob size when the input does not give one. */
#define DEFAULT_SIZE INT64_C(1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    const char *hdr = text;
    int64_t blob = DEFAULT_SIZE, start = -7, end = -7;
    char *nl = strchr(text, '\n');
    int r;

    /* "<size>\n<header>" gives the blob size (0 .. INT64_MAX); else the whole input is the
     * header and the blob has DEFAULT_SIZE bytes. */
    if (nl != NULL) {
        char *e;
        long long v;

        *nl = '\0';
        errno = 0;
        v = strtoll(text, &e, 10);
        if (errno != 0 || e == text || *e != '\0' || v < 0)
            goto out;
        blob = v;
        hdr = nl + 1;
    }
    r = http_parse_range(hdr, blob, &start, &end);
    FUZZ_CHECK(r >= -1 && r <= 1);
    if (r == 1)
        FUZZ_CHECK(start >= 0 && start < end && end <= blob);
out:
    free(text);
    return 0;
}
