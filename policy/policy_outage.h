/*
 * What an upstream failure means, decided once: an outage (the proxy may fall back on what it
 * holds: a stale tag, the cached tags and referrers), a refusal (the client gets upstream's
 * answer), or the proxy's own refusal. A pure function of how the request ended.
 */
#ifndef POLICY_OUTAGE_H
#define POLICY_OUTAGE_H

enum outage_via {
    OUTAGE_VIA_HTTP = 0, /* upstream answered with <status> */
    OUTAGE_VIA_NETWORK,  /* connect error, reset, timeout, stall, truncated body */
    OUTAGE_VIA_LOCAL,    /* the proxy stopped it: too large, a redirect or a realm refused,
                            the challenge unusable, aborted */
};

enum outage_class {
    OUTCOME_OK = 0,    /* 2xx */
    OUTCOME_NOT_FOUND, /* 404 */
    OUTCOME_DENIED,    /* 401, 403 */
    OUTCOME_REFUSED,   /* any other 4xx but 429 */
    OUTCOME_OUTAGE,    /* a network failure, 5xx, 429: upstream is down or throttling */
    OUTCOME_OTHER,     /* the proxy's own refusal, or a final answer below 400 but not 2xx */
};

enum outage_class outage_classify(enum outage_via via, int status);

/* 1 for OUTCOME_NOT_FOUND, _DENIED and _REFUSED: upstream's answer stands. */
int outage_is_refusal(enum outage_class c);

#endif
