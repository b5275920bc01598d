/* Gathering body pieces into batches, and handing them on when libcurl returns to the loop. */
#include "config.h"

#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define BATCHES_MAGIC 0x42415453u /* "BATS" */
#define BATCH_MAGIC 0x42415443u   /* "BATC" */

struct batches {
    unsigned magic;
    struct batch *listed; /* batches holding bytes not yet handed on */
};

struct batch {
    unsigned magic;
    struct batches *bs;
    batch_data_fn on_data;
    void *arg;
    char *buf;
    size_t len, cap;
    int listed;
    struct batch *next;
};

struct batches *batches_new(void)
{
    struct batches *bs = xcalloc(1, sizeof(*bs));

    bs->magic = BATCHES_MAGIC;
    return bs;
}

void batches_free(struct batches *bs)
{
    if (bs == NULL)
        return;
    CHECK_OBJ_NOTNULL(bs, BATCHES_MAGIC);
    bs->magic = 0;
    free(bs);
}

struct batch *batch_new(struct batches *bs, batch_data_fn on_data, void *arg, int64_t size_hint)
{
    struct batch *b = xcalloc(1, sizeof(*b));

    CHECK_OBJ_NOTNULL(bs, BATCHES_MAGIC);
    b->magic = BATCH_MAGIC;
    b->bs = bs;
    b->on_data = on_data;
    b->arg = arg;
    b->cap = size_hint > 0 && size_hint < BATCH_MAX ? (size_t)size_hint : BATCH_MAX;
    b->buf = xmalloc(b->cap);
    return b;
}

static void batch_unlist(struct batch *b)
{
    struct batch **pp;

    if (!b->listed)
        return;
    for (pp = &b->bs->listed; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    b->listed = 0;
}

void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    CHECK_OBJ_NOTNULL(b, BATCH_MAGIC);
    batch_unlist(b);
    free(b->buf);
    b->magic = 0;
    free(b);
}

/* Hand the gathered bytes on. Returns what on_data returned (0 when empty). */
static int batch_deliver(struct batch *b)
{
    size_t n = b->len;

    if (n == 0)
        return 0;
    b->len = 0;
    return b->on_data(b->arg, b->buf, n);
}

int batch_add(struct batch *b, const char *data, size_t n)
{
    CHECK_OBJ_NOTNULL(b, BATCH_MAGIC);
    if (b->len + n > b->cap && batch_deliver(b) == -1)
        return -1;
    if (n >= b->cap)
        return b->on_data(b->arg, data, n);
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    if (!b->listed) {
        b->listed = 1;
        b->next = b->bs->listed;
        b->bs->listed = b;
    }
    return 0;
}

void batches_flush(struct batches *bs, void (*refused)(void *arg))
{
    struct batch *b;

    CHECK_OBJ_NOTNULL(bs, BATCHES_MAGIC);
    while ((b = bs->listed) != NULL) {
        bs->listed = b->next;
        b->listed = 0;
        if (batch_deliver(b) == -1)
            refused(b->arg);
    }
}
