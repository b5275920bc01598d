/* The 24-hour tag rule as a pure function: fresh, check upstream, or serve stale on error. */
#ifndef POLICY_REFRESH_H
#define POLICY_REFRESH_H

#include <stdint.h>

/* What the index knows of one tag, and the rule's settings. All times are Unix seconds. */
struct refresh_facts {
    int rf_cached;               /* 1 when the index has a digest for the tag */
    int64_t rf_checked_at;       /* last time upstream confirmed (or gave) the digest */
    int64_t rf_refresh_interval; /* seconds a check stays good; 0 = always check */
    int64_t rf_stale_if_error;   /* seconds past checked_at a stale digest may still be served */
};

enum refresh_decision {
    REFRESH_FRESH = 0, /* serve the cached digest, no upstream request */
    REFRESH_CHECK,     /* HEAD upstream (or GET when nothing is cached) */
};

enum refresh_fallback {
    REFRESH_FAIL = 0,    /* return the upstream's error to the client */
    REFRESH_SERVE_STALE, /* serve the cached digest with a Warning header */
};

/*
 * Decide whether the tag described by <f> may be served at <now> without asking upstream.
 * Not cached → CHECK. checked_at in the future (clock moved back) → CHECK.
 * now - checked_at < refresh_interval → FRESH; otherwise CHECK.
 */
enum refresh_decision refresh_decide(const struct refresh_facts *f, int64_t now);

/*
 * Upstream failed (connect error, 5xx, 429, timeout) while checking the tag of <f> at <now>:
 * SERVE_STALE when cached and now - checked_at < stale_if_error, else FAIL.
 */
enum refresh_fallback refresh_on_error(const struct refresh_facts *f, int64_t now);

#endif
