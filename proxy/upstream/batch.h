/*
 * Body bytes gathered for a consumer. libcurl hands a body over in pieces of at most 16 KiB
 * (CURL_MAX_WRITE_SIZE) however much one read returned; a batch gathers them and hands them on
 * in pieces of up to BATCH_MAX: when it is full, and when the transport flushes its batches
 * because libcurl has returned to the loop. A cold fill then makes one write, one hash hand-off
 * and one pump of its followers per batch rather than per 16 KiB (6400 pwrites for 100 MiB
 * before, 410 after).
 */
#ifndef PROXY_BATCH_H
#define PROXY_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_MAX (256 * 1024)

struct batches; /* the batches of one transport, listed while they hold bytes */
struct batch;

/* Return what the consumer's on_data returned: 0, or -1 to refuse. */
typedef int (*batch_data_fn)(void *arg, const char *data, size_t len);

/* An empty list. Caller frees with batches_free, after every batch on it. */
struct batches *batches_new(void);
void batches_free(struct batches *bs); /* accepts NULL */

/*
 * A batch on <bs> handing its bytes to <on_data>(<arg>, ...). <size_hint> is the body's length
 * when known (a smaller body gets a buffer of its own size), else -1. Caller frees.
 */
struct batch *batch_new(struct batches *bs, batch_data_fn on_data, void *arg, int64_t size_hint);
/* Unlist and free <b>; bytes not handed on are dropped. Accepts NULL. */
void batch_free(struct batch *b);

/* Gather <n> bytes, handing the batch on first when they do not fit. -1 when on_data refused. */
int batch_add(struct batch *b, const char *data, size_t n);

/*
 * Hand every listed batch's bytes on. A batch whose on_data refuses is unlisted and
 * <refused>(its arg) called; it may free any batch. The list is empty afterwards.
 */
void batches_flush(struct batches *bs, void (*refused)(void *arg));

#endif
