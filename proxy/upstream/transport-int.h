/* The transport's private helpers in transport_addr.c, shared with transport.c only. */
#ifndef PROXY_TRANSPORT_INT_H
#define PROXY_TRANSPORT_INT_H

#include <stddef.h>

struct denylist;

/*
 * The egress proxy for <url> from the environment (egress_proxy_for), or NULL for a direct
 * connection. Deciding here rather than inside libcurl lets the address check know whether
 * the connected address is the target's or the proxy's.
 */
const char *transport_proxy_for(const char *url);

/* Deny, on <dl>, the metadata endpoints this host's environment names for the credential
 * chain (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_CONTAINER_CREDENTIALS_FULL_URI). */
void transport_deny_env(struct denylist *dl);

/* The length of <url>'s scheme and host part ("http://host:port"), without the path. */
size_t transport_origin_len(const char *url);

#endif
