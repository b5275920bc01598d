/* Where the transport's requests go: the egress proxy per URL, the metadata endpoints named by
 * the environment, URLs as logs may show them. */
#include "config.h"

#include "transport.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "denylist.h"
#include "log.h"
#include "policy_egress.h"
#include "transport-int.h"
#include "util.h"

const char *transport_url_shown(const char *url, char *out, size_t size)
{
    const char *host = strstr(url, "://"), *at, *end;
    size_t k = 0, n;

    host = host != NULL ? host + 3 : url;
    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(end - host));
    n = (size_t)(host - url);
    if (n >= size)
        n = size - 1;
    memcpy(out, url, n);
    k = n;
    if (at != NULL)
        host = at + 1;
    n = strcspn(host, "?#");
    if (n >= size - k)
        n = size - k - 1;
    memcpy(out + k, host, n);
    out[k + n] = '\0';
    return out;
}

size_t transport_origin_len(const char *url)
{
    const char *host = strstr(url, "://");

    host = host != NULL ? host + 3 : url;
    return (size_t)(host - url) + strcspn(host, "/?#");
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

const char *transport_proxy_for(const char *url)
{
    const char *p;
    CURLU *u = curl_url();
    char *host = NULL;

    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        host = NULL;
    p = egress_proxy_for(url, host, env_get);
    curl_free(host);
    curl_url_cleanup(u);
    return p;
}

void transport_deny_env(struct denylist *dl)
{
    static const char *const vars[] = {"AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI"};

    for (size_t i = 0; i < ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        char *err = NULL;
        if (v != NULL && v[0] != '\0' && denylist_add_url(dl, v, &err) == -1)
            log_event(LOG_WARN, "metadata-endpoint-unparsed", "variable", vars[i], NULL);
        free(err);
    }
}
