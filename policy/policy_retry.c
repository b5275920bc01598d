/* The retry rule: which failures are retried, the doubling backoff, Retry-After and its cap. */
#include "config.h"

#include "policy_retry.h"

#include <errno.h>
#include <stdlib.h>

int retry_status_retryable(int status)
{
    return status >= 500 || status == 429;
}

int retry_attempt_allowed(int delivered, int retries, int max_retries)
{
    return !delivered && retries < max_retries;
}

int retry_after_parse(const char *v, int64_t *seconds)
{
    char *end;
    long n;

    if (v[0] == '\0')
        return -1;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || end == v || n < 0)
        return -1;
    *seconds = n;
    return 0;
}

int64_t retry_delay_ms(int64_t backoff_ms, int retries, const char *retry_after,
                       int64_t max_retry_after_s)
{
    int64_t s;
    int doublings = retries > RETRY_DOUBLINGS_MAX ? RETRY_DOUBLINGS_MAX : retries;

    if (retry_after_parse(retry_after, &s) == 0) {
        if (s > max_retry_after_s)
            return -1;
        return s * 1000;
    }
    return backoff_ms << (doublings < 0 ? 0 : doublings);
}
