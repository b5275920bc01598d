/*
 * The metadata endpoints that only the credential chain may reach (docs/internals/
 * credentials.md): the instance metadata service and the container credentials endpoints,
 * by address (169.254.169.254, 169.254.170.2, 169.254.170.23, fd00:ec2::/64, any port) and by
 * the host:port of the endpoints configured for this host (AWS_EC2_METADATA_SERVICE_ENDPOINT,
 * AWS_CONTAINER_CREDENTIALS_FULL_URI, or whatever transport_deny_endpoint names). The
 * transport asks here for every request that is not flagged tr_metadata: the URL before
 * anything is sent, the connected address where the socket is opened (a name that resolves
 * there) and when a pooled connection is reused.
 */
#ifndef PROXY_DENYLIST_H
#define PROXY_DENYLIST_H

struct denylist;
struct sockaddr;

/* A list holding the built-in endpoints. Caller frees it with denylist_free. */
struct denylist *denylist_new(void);
/* Accepts NULL. */
void denylist_free(struct denylist *dl);

/*
 * Deny the host and port of <url> ("http://host:port/path"; the scheme's default port when it
 * names none). "localhost" also denies 127.0.0.1 and ::1 on that port. 0, or -1 with *err
 * (caller frees) when the URL does not parse.
 */
int denylist_add_url(struct denylist *dl, const char *url, char **err);

/* 1 when <url>'s host:port is denied, or its host a metadata address literal; else 0. A URL
 * that does not parse is 0: the transport fails it on its own. */
int denylist_url(const struct denylist *dl, const char *url);

/* 1 when the connected address <sa> (IPv4 or IPv6, port included) is a metadata address or a
 * denied address:port. */
int denylist_sockaddr(const struct denylist *dl, const struct sockaddr *sa);

/* The same for an address as text (no brackets) and a port. */
int denylist_addr(const struct denylist *dl, const char *ip, int port);

#endif
