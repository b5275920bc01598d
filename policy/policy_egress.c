/* The egress rules: private addresses, which redirect and realm targets may be followed,
 * which egress proxy carries a request. */
#include "config.h"

#include "policy_egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util.h"

static int ipv4_private(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
           (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 */
           (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 */
           (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
           (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
           (a & 0xffffff00u) == 0xc0000000u || /* 192.0.0/24 */
           (a & 0xfffe0000u) == 0xc6120000u || /* 198.18/15 */
           (a >> 28) >= 14;                    /* multicast, reserved, broadcast */
}

static int ipv6_private(const struct in6_addr *a)
{
    const uint8_t *b = a->s6_addr;
    static const uint8_t zero[16];

    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
        return 1; /* :: and ::1 */
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        uint32_t v4 =
            ((uint32_t)b[12] << 24) | ((uint32_t)b[13] << 16) | ((uint32_t)b[14] << 8) | b[15];
        return ipv4_private(v4);
    }
    return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 site-local */
           b[0] == 0xff ||                            /* multicast */
           (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) || /* documentation */
           (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b);   /* NAT64 */
}

int egress_addr_is_private(const char *addr)
{
    struct in_addr v4;
    struct in6_addr v6;

    if (inet_pton(AF_INET, addr, &v4) == 1)
        return ipv4_private(ntohl(v4.s_addr));
    if (inet_pton(AF_INET6, addr, &v6) == 1)
        return ipv6_private(&v6);
    return 1; /* not an address at all: not trusted */
}

int egress_sockaddr_is_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ipv4_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return ipv6_private(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 1;
}

/* <host> as a URL names it ("[::1]" for IPv6) without the brackets, in <out>. */
static void host_unbracketed(const char *host, char *out, size_t size)
{
    size_t n = strlen(host);

    if (host[0] == '[' && n > 2 && n - 2 < size) {
        memcpy(out, host + 1, n - 2);
        out[n - 2] = '\0';
    } else {
        str_copy(out, size, host);
    }
}

int egress_target_allowed(int allow_private, const char *scheme, const char *host, const char *what,
                          char **why)
{
    char h[256] = "";
    struct in_addr a4;
    struct in6_addr a6;

    *why = NULL;
    if (allow_private)
        return 1;
    if (scheme == NULL || strcmp(scheme, "https") != 0) {
        *why = xasprintf("%s to a non-https URL", what);
        return 0;
    }
    if (host != NULL)
        host_unbracketed(host, h, sizeof(h));
    if ((inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1) &&
        egress_addr_is_private(h)) {
        *why = xasprintf("%s to a private address %s", what, h);
        return 0;
    }
    if (strcasecmp(h, "localhost") == 0) {
        *why = xasprintf("%s to localhost", what);
        return 0;
    }
    return 1;
}

/* Is <host> (no brackets) matched by NO_PROXY entry <e> (length n)? */
static int no_proxy_entry_matches(const char *host, const char *e, size_t n)
{
    char ent[256];
    const char *slash;
    size_t hl = strlen(host);

    while (n > 0 && *e == '.') {
        e++;
        n--;
    }
    if (n > 1 && e[0] == '[' && e[n - 1] == ']') {
        e++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(ent))
        return 0;
    memcpy(ent, e, n);
    ent[n] = '\0';
    if (strcmp(ent, "*") == 0)
        return 1;
    slash = strchr(ent, '/');
    if (slash != NULL) {
        struct in_addr net, h;
        char *end;
        long bits;
        ent[slash - ent] = '\0';
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno != 0 || *end != '\0' || bits < 0 || bits > 32 ||
            inet_pton(AF_INET, ent, &net) != 1 || inet_pton(AF_INET, host, &h) != 1)
            return 0;
        if (bits == 0)
            return 1;
        {
            uint32_t mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
            return (ntohl(net.s_addr) & mask) == (ntohl(h.s_addr) & mask);
        }
    }
    if (strcasecmp(host, ent) == 0)
        return 1;
    return hl > n && host[hl - n - 1] == '.' && strcasecmp(host + hl - n, ent) == 0;
}

int egress_no_proxy_matches(const char *host, const char *no_proxy)
{
    char h[256];

    host_unbracketed(host, h, sizeof(h));
    for (const char *e = no_proxy; *e != '\0';) {
        size_t n;
        while (*e == ',' || *e == ' ' || *e == '\t')
            e++;
        n = strcspn(e, ", \t");
        if (n > 0 && no_proxy_entry_matches(h, e, n))
            return 1;
        e += n;
    }
    return 0;
}

/* <name>'s value through <env>, or NULL when unset or empty. */
static const char *env_nonempty(const char *(*env)(const char *name), const char *name)
{
    const char *v = env(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The first of the two spellings of a variable that is set. */
static const char *env_either(const char *(*env)(const char *name), const char *lower,
                              const char *upper)
{
    const char *v = env_nonempty(env, lower);
    return v != NULL ? v : env_nonempty(env, upper);
}

const char *egress_proxy_for(const char *url, const char *host,
                             const char *(*env)(const char *name))
{
    const char *p = NULL, *np;

    if (strncmp(url, "https://", 8) == 0)
        p = env_either(env, "https_proxy", "HTTPS_PROXY");
    else if (strncmp(url, "http://", 7) == 0)
        p = env_either(env, "http_proxy", "HTTP_PROXY");
    if (p == NULL)
        p = env_either(env, "all_proxy", "ALL_PROXY");
    if (p == NULL)
        return NULL;
    np = env_either(env, "no_proxy", "NO_PROXY");
    if (np != NULL && host != NULL && egress_no_proxy_matches(host, np))
        return NULL;
    return p;
}
