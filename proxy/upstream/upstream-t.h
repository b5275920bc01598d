/*
 * The upstream layer's shared types: where requests go (an origin), how a request ended, what
 * the final response said, and the timeouts. Types only; transport.h and registry.h use them.
 */
#ifndef PROXY_UPSTREAM_T_H
#define PROXY_UPSTREAM_T_H

#include <stdint.h>

/*
 * One origin the upstream layer talks to: a registry named by a rule, and later ECR, the
 * instance metadata service, STS or the ECR API. Every string is borrowed from whoever built
 * the origin and must outlive every xfer started for it; NULL where a string is optional.
 */
struct upstream_origin {
    const char *uo_name;     /* names the origin in the token cache key (with uo_base_url), so
                                two origins on one registry never share tokens: a rule prefix */
    const char *uo_base_url; /* "https://registry-1.docker.io", no trailing '/' */
    const char *uo_username; /* Basic and token-endpoint credentials; NULL when anonymous */
    const char *uo_password; /* the secret; never logged */
    int uo_allow_private;    /* redirects and token realms may go to loopback, private and
                                link-local addresses and over plain http */
    const char *uo_ca_file;  /* PEM bundle trusted for uo_base_url's scheme, host and port only;
                                NULL: the system's store */
    const char *uo_proxy;    /* egress proxy URL for every exchange; "": always direct; NULL:
                                from http_proxy, https_proxy, all_proxy, no_proxy per URL */
};

enum upstream_result {
    UPSTREAM_OK = 0,           /* a 2xx response, completely received */
    UPSTREAM_HTTP,             /* a final non-2xx response: see the status */
    UPSTREAM_NETWORK,          /* connect error, reset, timeout, stall, truncated body */
    UPSTREAM_TOO_LARGE,        /* the body passed the request's cap */
    UPSTREAM_REDIRECT_REFUSED, /* a redirect to a host or scheme the origin does not allow */
    UPSTREAM_AUTH_FAILED,      /* the token endpoint failed or the challenge was unusable */
    UPSTREAM_ABORTED,          /* a callback asked to stop, or the request body was unreadable */
};

/* The final response's headers; strings are "" when absent. */
struct upstream_response {
    int ur_status;
    int64_t ur_content_length; /* -1 when absent */
    char ur_content_type[256];
    char ur_digest[140]; /* Docker-Content-Digest */
    char ur_etag[160];
    char ur_link[1024];
    char ur_retry_after[32];
    char ur_ratelimit_remaining[64];
    char ur_www_authenticate[1024];
    char ur_amzn_error_type[160]; /* x-amzn-ErrorType (AWS JSON APIs) */
};

struct upstream_settings {
    int64_t us_connect_timeout_ms;
    int64_t us_stall_timeout_s;   /* abort when under 1 byte/s for this long */
    int64_t us_backoff_ms;        /* first retry delay; doubles each time */
    int64_t us_max_retry_after_s; /* a longer Retry-After is not waited for */
};

#endif
