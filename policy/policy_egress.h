/* Where upstream requests may go, as pure functions: private addresses, redirect and token
 * realm targets, NO_PROXY matching. */
#ifndef POLICY_EGRESS_H
#define POLICY_EGRESS_H

#include <stddef.h>

struct sockaddr;

/*
 * 1 when <addr> (IPv4 or IPv6 text, no brackets) is loopback, private, link-local (the
 * instance's 169.254.169.254), unspecified, multicast, reserved, documentation or NAT64, or not
 * an address at all; 0 for a public unicast address.
 */
int egress_addr_is_private(const char *addr);

/* As egress_addr_is_private for a connected address <sa>; 1 for a family other than IPv4/6. */
int egress_sockaddr_is_private(const struct sockaddr *sa);

/*
 * May a request go to a URL whose <scheme> and <host> (as the URL spells it: "[::1]" for IPv6;
 * either may be NULL when absent) come from upstream, a redirect's Location or a token realm,
 * not from the operator? With <allow_private> (the origin's allow_private_redirects) anything
 * goes. Otherwise it must be https, and the host neither a loopback, private or link-local
 * literal nor "localhost" (names are checked again on the connected address by the transport).
 * <what> names the URL in the reason ("redirect", "token realm"). Returns 1, or 0 with *why
 * (caller frees).
 */
int egress_target_allowed(int allow_private, const char *scheme, const char *host, const char *what,
                          char **why);

/*
 * 1 when <host> (brackets allowed) is matched by the NO_PROXY list <no_proxy> (entries
 * separated by commas, spaces or tabs): "*" matches everything, names match exactly or as a
 * suffix at a dot (a leading dot is ignored), IPv4 entries may be CIDR blocks, "[v6]" entries
 * lose their brackets and match exactly. Case-insensitive.
 */
int egress_no_proxy_matches(const char *host, const char *no_proxy);

/*
 * The egress proxy for a request to <url> with host <host> (brackets allowed; NULL when it
 * did not parse), read from the environment through <env> (getenv in the daemon) as libcurl
 * reads it: https_proxy then HTTPS_PROXY for https, http_proxy then HTTP_PROXY for http, then
 * all_proxy, ALL_PROXY; empty values count as unset. NULL (a direct connection) when none is
 * set or no_proxy / NO_PROXY matches <host>. The result is <env>'s string.
 */
const char *egress_proxy_for(const char *url, const char *host,
                             const char *(*env)(const char *name));

#endif
