/*
 * Coalesced upstream requests for the api (manifests, HEADs, tags, referrers): one request per
 * key however many clients wait on it, its body buffered up to a cap, each waiter continued
 * in its own callback when it ends. Blobs are not buffered: they are fills (fill/).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "api-int.h"
#include "config_file.h"
#include "manifest.h"
#include "util.h"

/* ---- buffered fetches ------------------------------------------------------------------- */

static int fetch_on_data(void *arg, const char *data, size_t len)
{
    struct fetch *f = arg;

    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);

    if (f->len + len > (size_t)f->max)
        return -1;
    if (f->len + len + 1 > f->cap) {
        f->cap = (f->len + len + 1) * 2;
        if (f->cap > (size_t)f->max + 1)
            f->cap = (size_t)f->max + 1;
        f->body = xrealloc(f->body, f->cap);
    }
    memcpy(f->body + f->len, data, len);
    f->len += len;
    f->body[f->len] = '\0';
    return 0;
}

static void fetch_on_done(void *arg, enum upstream_result res, const struct upstream_response *r,
                          const char *err, const char *body, size_t body_len)
{
    struct fetch *f = arg;
    struct api *api;
    struct fetch **pp;
    struct mreq *w, *next;

    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    api = f->api;
    f->xfer = NULL;
    f->res = res;
    f->resp = *r;
    if (res == UPSTREAM_ABORTED && f->len >= (size_t)f->max)
        f->res = UPSTREAM_TOO_LARGE;
    str_copy(f->err, sizeof(f->err), err);
    if (res == UPSTREAM_HTTP && f->body == NULL && body_len > 0) {
        f->body = xstrndup(body, body_len);
        f->len = strlen(f->body);
    }
    for (pp = &api->fetches; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    for (w = f->waiters; w != NULL; w = next) {
        next = w->next_waiter;
        w->next_waiter = NULL;
        mreq_unhook(w);
        if (w->gone) {
            mreq_free(w);
        } else {
            w->now = api->clock();
            w->cont(w, f);
        }
    }
    free(f->key);
    free(f->body);
    f->magic = 0;
    free(f);
}

/*
 * Join the fetch named <key>, or start it with <t>; <m> continues in <cont> when it ends.
 * Returns 1 when this call sent a request upstream, 0 when it joined one in flight.
 */
int fetch_join(struct mreq *m, const char *key, const struct upstream_target *t,
               void (*cont)(struct mreq *, struct fetch *))
{
    struct api *api = m->api;
    struct fetch *f;
    static const struct upstream_callbacks cbs = {NULL, fetch_on_data, fetch_on_done};

    m->cont = cont;
    mreq_hook(m);
    for (f = api->fetches; f != NULL; f = f->next)
        if (strcmp(f->key, key) == 0)
            break;
    if (f == NULL) {
        f = xcalloc(1, sizeof(*f));
        f->magic = FETCH_MAGIC;
        f->api = api;
        f->key = xstrdup(key);
        f->max = t->ut_max_body >= 0 ? t->ut_max_body : MANIFEST_MAX_BYTES;
        f->next = api->fetches;
        api->fetches = f;
        f->waiters = m;
        f->xfer = upstream_start(api->up, t, &cbs, f);
        return 1;
    }
    m->next_waiter = f->waiters;
    f->waiters = m;
    return 0;
}

void api_target_init(struct upstream_target *t, const struct mreq *m, const char *path, int head)
{
    memset(t, 0, sizeof(*t));
    t->ut_origin = m->origin;
    t->ut_name = m->upname;
    t->ut_path = path;
    t->ut_head = head;
    t->ut_max_retries = 2;
    t->ut_max_body = -1;
}
