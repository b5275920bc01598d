/* The metadata endpoints only the credential chain may reach: URLs and connected addresses. */
#include "config.h"

#include "denylist.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util.h"

#define DENY_HOST_MAX 256

struct deny_entry {
    char de_host[DENY_HOST_MAX]; /* lowercase, IPv6 without brackets */
    int de_family;               /* AF_INET, AF_INET6, or 0 for a name */
    unsigned char de_addr[16];
    int de_port;
};

struct denylist {
    struct deny_entry *dl_entries;
    size_t dl_n;
};

/* Is the binary address <a> of <family> one of the metadata services' addresses? */
static int metadata_address(int family, const unsigned char *a)
{
    static const unsigned char v4[][4] = {
        {169, 254, 169, 254}, {169, 254, 170, 2}, {169, 254, 170, 23}};
    static const unsigned char ec2_64[8] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0};

    if (family == AF_INET6)
        return memcmp(a, ec2_64, sizeof(ec2_64)) == 0;
    for (size_t i = 0; i < ARRAY_LEN(v4); i++)
        if (memcmp(a, v4[i], 4) == 0)
            return 1;
    return 0;
}

/* <host> (no brackets) as an address: its family with <out> filled, or 0 for a name. */
static int parse_ip(const char *host, unsigned char out[16])
{
    if (inet_pton(AF_INET, host, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, host, out) == 1)
        return AF_INET6;
    return 0;
}

/* The host (lowercase, no brackets) and port of <url>. 0 or -1. */
static int url_host_port(const char *url, char host[DENY_HOST_MAX], int *port)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL;
    size_t n;
    int rc = -1;

    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    n = strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        memmove(h, h + 1, n - 2);
        h[n - 2] = '\0';
        /* A zone id ("%25eth0") is no part of the address compared. */
        h[strcspn(h, "%")] = '\0';
    }
    if (str_copy(host, DENY_HOST_MAX, h) == -1)
        goto out;
    for (char *c = host; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    *port = (int)strtol(p, NULL, 10);
    rc = 0;
out:
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

static void add_entry(struct denylist *dl, const char *host, int port)
{
    struct deny_entry *e;

    dl->dl_entries = xrealloc(dl->dl_entries, (dl->dl_n + 1) * sizeof(*dl->dl_entries));
    e = &dl->dl_entries[dl->dl_n++];
    memset(e, 0, sizeof(*e));
    str_copy(e->de_host, sizeof(e->de_host), host);
    e->de_family = parse_ip(host, e->de_addr);
    e->de_port = port;
}

struct denylist *denylist_new(void)
{
    static const char *const builtin[] = {"169.254.169.254", "169.254.170.2", "169.254.170.23",
                                          "fd00:ec2::254", "fd00:ec2::23"};
    struct denylist *dl = xcalloc(1, sizeof(*dl));

    for (size_t i = 0; i < ARRAY_LEN(builtin); i++)
        add_entry(dl, builtin[i], 80);
    return dl;
}

void denylist_free(struct denylist *dl)
{
    if (dl == NULL)
        return;
    free(dl->dl_entries);
    free(dl);
}

int denylist_add_url(struct denylist *dl, const char *url, char **err)
{
    char host[DENY_HOST_MAX];
    int port;

    *err = NULL;
    if (url_host_port(url, host, &port) == -1) {
        *err = xstrdup("a metadata endpoint URL that does not parse");
        return -1;
    }
    add_entry(dl, host, port);
    if (strcmp(host, "localhost") == 0) {
        add_entry(dl, "127.0.0.1", port);
        add_entry(dl, "::1", port);
    }
    return 0;
}

/* Is (<family>, <a>, <port>) or the name <host> on <dl>? */
static int denied(const struct denylist *dl, const char *host, int family, const unsigned char *a,
                  int port)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (family == AF_INET6 && memcmp(a, mapped, sizeof(mapped)) == 0) {
        family = AF_INET;
        a += 12;
    }
    if (family != 0 && metadata_address(family, a))
        return 1;
    for (size_t i = 0; i < dl->dl_n; i++) {
        const struct deny_entry *e = &dl->dl_entries[i];
        if (e->de_port != port)
            continue;
        if (family != 0 && e->de_family == family &&
            memcmp(e->de_addr, a, family == AF_INET ? 4 : 16) == 0)
            return 1;
        if (family == 0 && host != NULL && e->de_family == 0 && strcmp(e->de_host, host) == 0)
            return 1;
    }
    return 0;
}

int denylist_url(const struct denylist *dl, const char *url)
{
    char host[DENY_HOST_MAX];
    unsigned char a[16];
    int port, family;

    if (url_host_port(url, host, &port) == -1)
        return 0;
    /* A trailing dot names the same host. */
    if (host[0] != '\0' && host[strlen(host) - 1] == '.')
        host[strlen(host) - 1] = '\0';
    family = parse_ip(host, a);
    return denied(dl, host, family, a, port);
}

int denylist_sockaddr(const struct denylist *dl, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return denied(dl, NULL, AF_INET, (const unsigned char *)&in->sin_addr, ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return denied(dl, NULL, AF_INET6, in6->sin6_addr.s6_addr, ntohs(in6->sin6_port));
    }
    return 0;
}

int denylist_addr(const struct denylist *dl, const char *ip, int port)
{
    unsigned char a[16];
    int family = ip != NULL ? parse_ip(ip, a) : 0;

    return family != 0 && denied(dl, NULL, family, a, port);
}
