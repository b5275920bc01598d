/* When a failed upstream attempt is tried again, and after how long. Pure. */
#ifndef POLICY_RETRY_H
#define POLICY_RETRY_H

#include <stdint.h>

/* The backoff doubles at most this many times: the 7th and later retries wait 64 backoffs. */
#define RETRY_DOUBLINGS_MAX 6

/* 1 when an answer with HTTP <status> is worth another attempt: 5xx and 429. */
int retry_status_retryable(int status);

/*
 * 1 when a transfer whose attempt failed in a retryable way may make another: nothing of the
 * response was <delivered> to the caller yet, and fewer than <max_retries> retries were made
 * (<retries>).
 */
int retry_attempt_allowed(int delivered, int retries, int max_retries);

/*
 * A Retry-After value <v> in delta-seconds ("120"; leading blanks and '+' accepted) into
 * *seconds. Returns 0, or -1 when <v> is empty, negative, not a whole number or an HTTP-date
 * (not understood here: the backoff applies).
 */
int retry_after_parse(const char *v, int64_t *seconds);

/*
 * The wait in milliseconds before the retry that follows <retries> retries: the Retry-After
 * value <retry_after> ("" when absent) when it parses, or -1 when it asks for more than
 * <max_retry_after_s> seconds (not waited for: the failure is final); else <backoff_ms>
 * doubled <retries> times, at most RETRY_DOUBLINGS_MAX times.
 */
int64_t retry_delay_ms(int64_t backoff_ms, int retries, const char *retry_after,
                       int64_t max_retry_after_s);

#endif
