/*
 * Unit tests for policy/policy_egress.c: the private-address rule, which redirect and token
 * realm targets may be followed, NO_PROXY matching.
 */
#include "config.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy_egress.h"

/* ---- egress_addr_is_private ------------------------------------------------------------- */

static void private(const char *a)
{
    cr_assert_eq(egress_addr_is_private(a), 1, "\"%s\" taken as public", a);
}

static void public(const char *a)
{
    cr_assert_eq(egress_addr_is_private(a), 0, "\"%s\" taken as private", a);
}

Test(addr, ipv4_private)
{
    private("127.0.0.1");
    private("127.255.255.254");
    private("10.0.0.1");
    private("10.255.255.255");
    private("172.16.0.1");
    private("172.20.1.2");
    private("172.31.255.255");
    private("192.168.0.1");
    private("192.168.255.255");
    private("169.254.169.254"); /* the instance metadata service */
    private("169.254.0.1");
    private("100.64.0.1");
    private("100.127.255.255");
    private("0.0.0.0");
    private("0.1.2.3");
    private("224.0.0.1");
    private("239.255.255.250");
    private("240.0.0.1");
    private("255.255.255.255");
    private("198.18.0.1");
    private("192.0.0.8");
}

Test(addr, ipv4_public)
{
    public("8.8.8.8");
    public("1.1.1.1");
    public("172.15.255.255");
    public("172.32.0.1");
    public("100.63.255.255");
    public("100.128.0.1");
    public("169.253.255.255");
    public("192.167.255.255");
    public("192.169.0.1");
    public("11.0.0.1");
    public("52.94.1.1");
    public("223.255.255.255");
}

Test(addr, ipv6)
{
    private("::1");
    private("::");
    private("fe80::1");
    private("febf::1");
    private("fc00::1");
    private("fd12:3456::1");
    private("fec0::1");
    private("ff02::1");
    private("2001:db8::1");
    private("::ffff:127.0.0.1");
    private("::ffff:10.1.2.3");
    private("::ffff:169.254.169.254");
    private("::ffff:0.0.0.0");
    public("::ffff:8.8.8.8");
    public("2001:4860::8888");
    public("2001:4860:4860::8888");
    public("2a00:1450:4001::1");
    public("fe00::1");
}

Test(addr, garbage_is_private)
{
    private("");
    private("localhost");
    private("example.com");
    private("127.0.0.1 ");
    private(" 8.8.8.8");
    private("8.8.8.8:443");
    private("[::1]");
    private("[2001:4860::8888]");
    private("256.1.1.1");
    private("1.2.3");
    private("::g");
}

/* ---- egress_sockaddr_is_private --------------------------------------------------------- */

Test(addr, sockaddr)
{
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr other;

    memset(&v4, 0, sizeof(v4));
    v4.sin_family = AF_INET;
    inet_pton(AF_INET, "169.254.169.254", &v4.sin_addr);
    cr_assert_eq(egress_sockaddr_is_private((struct sockaddr *)&v4), 1);
    inet_pton(AF_INET, "52.94.1.1", &v4.sin_addr);
    cr_assert_eq(egress_sockaddr_is_private((struct sockaddr *)&v4), 0);
    memset(&v6, 0, sizeof(v6));
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr);
    cr_assert_eq(egress_sockaddr_is_private((struct sockaddr *)&v6), 1);
    inet_pton(AF_INET6, "2001:4860::8888", &v6.sin6_addr);
    cr_assert_eq(egress_sockaddr_is_private((struct sockaddr *)&v6), 0);
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    cr_assert_eq(egress_sockaddr_is_private(&other), 1, "an unknown family is not trusted");
}

/* ---- egress_target_allowed -------------------------------------------------------------- */

static void allowed(int allow_private, const char *scheme, const char *host)
{
    char *why = (char *)"untouched";

    cr_assert_eq(egress_target_allowed(allow_private, scheme, host, "redirect", &why), 1,
                 "%s://%s refused: %s", scheme ? scheme : "(none)", host ? host : "(none)",
                 why ? why : "");
    cr_assert_null(why);
}

/* Refused, with a reason containing <want>. */
static void refused(const char *scheme, const char *host, const char *want)
{
    char *why = NULL;

    cr_assert_eq(egress_target_allowed(0, scheme, host, "redirect", &why), 0, "%s://%s allowed",
                 scheme ? scheme : "(none)", host ? host : "(none)");
    cr_assert_not_null(why);
    cr_assert_not_null(strstr(why, want), "reason \"%s\" lacks \"%s\"", why, want);
    free(why);
}

Test(target, public_https_names_and_addresses)
{
    allowed(0, "https", "production.cloudflare.docker.com");
    allowed(0, "https", "52.94.1.1");
    allowed(0, "https", "[2001:4860::8888]");
    /* A name is checked again on the connected address, after DNS: not here. */
    allowed(0, "https", "cdn.localhost");
    allowed(0, "https", "10.0.0.1.nip.io");
}

Test(target, refused_without_allow_private)
{
    refused("http", "registry.example.com", "redirect to a non-https URL");
    refused(NULL, "registry.example.com", "non-https");
    refused("ftp", "registry.example.com", "non-https");
    refused("HTTPS", "registry.example.com", "non-https"); /* libcurl gives the scheme lowered */
    refused("https", "127.0.0.1", "redirect to a private address 127.0.0.1");
    refused("https", "169.254.169.254", "private address 169.254.169.254");
    refused("https", "10.1.2.3", "private address");
    refused("https", "[::1]", "private address ::1");
    refused("https", "[fd00::1]", "private address fd00::1");
    refused("https", "[::ffff:169.254.169.254]", "private address");
    refused("https", "localhost", "redirect to localhost");
    refused("https", "LocalHost", "to localhost");
}

Test(target, names_what_in_the_reason)
{
    char *why = NULL;

    cr_assert_eq(egress_target_allowed(0, "http", "h", "token realm", &why), 0);
    cr_assert_str_eq(why, "token realm to a non-https URL");
    free(why);
}

Test(target, allow_private_allows_everything)
{
    allowed(1, "http", "127.0.0.1");
    allowed(1, "https", "169.254.169.254");
    allowed(1, "http", "localhost");
    allowed(1, NULL, NULL);
}

/* ---- egress_no_proxy_matches ------------------------------------------------------------ */

Test(no_proxy, names)
{
    cr_assert(egress_no_proxy_matches("registry.example.com", "example.com"));
    cr_assert(egress_no_proxy_matches("registry.example.com", ".example.com"));
    cr_assert(egress_no_proxy_matches("example.com", ".example.com"));
    cr_assert(egress_no_proxy_matches("Registry.Example.COM", "example.com"));
    cr_assert(egress_no_proxy_matches("a.b", "x.y, a.b"));
    cr_assert(egress_no_proxy_matches("a.b", "x.y,\ta.b"));
    cr_assert(egress_no_proxy_matches("anything", "x.y,*"));
    cr_assert_not(egress_no_proxy_matches("notexample.com", "example.com"));
    cr_assert_not(egress_no_proxy_matches("example.com.evil", "example.com"));
    cr_assert_not(egress_no_proxy_matches("example.com", "registry.example.com"));
    cr_assert_not(egress_no_proxy_matches("example.com", ""));
    cr_assert_not(egress_no_proxy_matches("example.com", " , ,"));
}

Test(no_proxy, addresses)
{
    cr_assert(egress_no_proxy_matches("127.0.0.1", "127.0.0.1"));
    cr_assert(egress_no_proxy_matches("10.1.2.3", "10.0.0.0/8"));
    cr_assert(egress_no_proxy_matches("172.31.255.255", "172.16.0.0/12"));
    cr_assert(egress_no_proxy_matches("1.2.3.4", "0.0.0.0/0"));
    cr_assert(egress_no_proxy_matches("10.1.2.3", "10.1.2.3/32"));
    cr_assert_not(egress_no_proxy_matches("172.32.0.1", "172.16.0.0/12"));
    cr_assert_not(egress_no_proxy_matches("10.1.2.4", "10.1.2.3/32"));
    cr_assert_not(egress_no_proxy_matches("10.1.2.3", "10.0.0.0/33"));
    cr_assert_not(egress_no_proxy_matches("10.1.2.3", "10.0.0.0/x"));
    cr_assert_not(egress_no_proxy_matches("name.example", "10.0.0.0/8"));
    /* IPv6: a URL's host has brackets, an entry may have them. */
    cr_assert(egress_no_proxy_matches("[::1]", "::1"));
    cr_assert(egress_no_proxy_matches("[::1]", "[::1]"));
    cr_assert(egress_no_proxy_matches("::1", "[::1]"));
    cr_assert_not(egress_no_proxy_matches("[::2]", "::1"));
}

/* ---- egress_proxy_for ------------------------------------------------------------------- */

/* A fake environment: NAME=value pairs. */
static const char *const *fake_env;

static const char *env_of(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; fake_env[i] != NULL; i++)
        if (strncmp(fake_env[i], name, n) == 0 && fake_env[i][n] == '=')
            return fake_env[i] + n + 1;
    return NULL;
}

static const char *proxy(const char *url, const char *host, const char *const *env)
{
    fake_env = env;
    return egress_proxy_for(url, host, env_of);
}

Test(proxy_for, by_scheme_lower_case_first)
{
    static const char *const env[] = {"https_proxy=http://s:1", "HTTPS_PROXY=http://S:1",
                                      "HTTP_PROXY=http://P:2", NULL};

    cr_assert_str_eq(proxy("https://r.example/v2/", "r.example", env), "http://s:1");
    cr_assert_str_eq(proxy("http://r.example/v2/", "r.example", env), "http://P:2");
}

Test(proxy_for, all_proxy_and_empty_values)
{
    static const char *const env[] = {"https_proxy=", "HTTPS_PROXY=", "ALL_PROXY=http://a:3", NULL};
    static const char *const none[] = {"no_proxy=*", NULL};

    cr_assert_str_eq(proxy("https://r.example/", "r.example", env), "http://a:3",
                     "an empty https_proxy counts as unset");
    cr_assert_str_eq(proxy("ftp://r.example/", "r.example", env), "http://a:3");
    cr_assert_null(proxy("https://r.example/", "r.example", none));
}

Test(proxy_for, no_proxy)
{
    static const char *const env[] = {"https_proxy=http://s:1", "NO_PROXY=.internal, 10.0.0.0/8",
                                      NULL};
    static const char *const lower[] = {"https_proxy=http://s:1", "no_proxy=a.b", "NO_PROXY=*",
                                        NULL};

    cr_assert_null(proxy("https://ecr.internal/", "ecr.internal", env));
    cr_assert_null(proxy("https://10.1.2.3/", "10.1.2.3", env));
    cr_assert_str_eq(proxy("https://r.example/", "r.example", env), "http://s:1");
    cr_assert_str_eq(proxy("https://r.example/", NULL, env), "http://s:1",
                     "an unparsed host goes through the proxy");
    cr_assert_str_eq(proxy("https://r.example/", "r.example", lower), "http://s:1",
                     "no_proxy wins over NO_PROXY");
    cr_assert_null(proxy("https://a.b/", "a.b", lower));
}
