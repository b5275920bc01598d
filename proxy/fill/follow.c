/*
 * Followers: the clients of one fill. A follower is one client response: it keeps its own
 * offset and sends the next slice [offset, min(written, end)) of the fill's growing temp file
 * as a sendfile file segment (its own dup of the fd), and asks for nothing more until evhttp
 * says that slice was flushed to the socket. A slow client therefore holds no memory and never
 * slows the fill or the other followers down; a client that leaves only removes its follower
 * (the exchange's gone callback), and the fill goes on for the cache.
 *
 * A follower never sends the last byte of its response before the fill is verified, so a
 * body that fails its digest never looks complete: followers that have not sent headers get
 * the fill's OCI error, the others have their connection closed short of Content-Length.
 * HEAD followers answer as soon as upstream's headers are known; Range followers send their
 * own [start, end). Each follower holds one reference on its fill, dropped by
 * follower_detach.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exchange.h"
#include "fill-int.h"
#include "range.h"
#include "reply.h"
#include "util.h"

#define FOLLOW_SLICE (8 * 1024 * 1024)

static void follower_pump(struct follower *fw);

/* Unlink and free <fw> (its request is answered or gone), dropping its reference. */
static void follower_detach(struct follower *fw)
{
    struct fill *f = fw->fill;
    struct follower **pp;

    for (pp = &f->followers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == fw) {
            *pp = fw->next;
            break;
        }
    }
    if (fw->fd != -1)
        close(fw->fd);
    fw->magic = 0;
    free(fw);
    fill_unref(f);
}

/*
 * Forget the exchange before answering: evhttp may complete (and the server free the exchange)
 * inside the reply call itself.
 */
static void follower_unhook(struct follower *fw)
{
    if (fw->x != NULL)
        exchange_on_gone(fw->x, NULL, NULL);
    fw->x = NULL;
}

static void follower_gone_cb(void *arg)
{
    struct follower *fw;

    CAST_OBJ_NOTNULL(fw, arg, FOLLOWER_MAGIC);
    CHECK_OBJ_NOTNULL(fw->fill, FILL_MAGIC);
    if (fw->closing)
        return;
    fw->gone = 1;
    fw->x = NULL;
    /* The request has no connection now: end it (this frees it) unless a slice is still
     * queued, whose flush callback will never come either. */
    if (evhttp_request_get_connection(fw->req) == NULL)
        evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

/* Cut the client's connection short: the transfer ends before its Content-Length. */
static void follower_abort(struct follower *fw)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(fw->req);

    fw->closing = 1;
    follower_unhook(fw);
    if (evcon != NULL)
        evhttp_connection_free(evcon); /* frees the request too */
    else
        evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

static void set_blob_headers(struct evhttp_request *req, const struct fill *f)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char etag[160];

    evhttp_add_header(h, "Docker-Distribution-API-Version", "registry/2.0");
    evhttp_add_header(h, "Content-Type",
                      f->content_type[0] != '\0' ? f->content_type : "application/octet-stream");
    evhttp_add_header(h, "Docker-Content-Digest", f->digest);
    snprintf(etag, sizeof(etag), "\"%s\"", f->digest);
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Accept-Ranges", "bytes");
}

/* Upstream headers are known: send the client's status line and headers. */
static void follower_start(struct follower *fw)
{
    struct fill *f = fw->fill;
    struct evkeyvalq *h = evhttp_request_get_output_headers(fw->req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(fw->req);
    const char *range = http_range_header(evhttp_find_header(in, "Range"),
                                          evhttp_find_header(in, "If-Range"), f->digest);
    char buf[96];
    int64_t start = 0, end = f->length;
    int status = 200;

    /* An empty body is complete with its headers: they wait for the digest check. */
    if (!fw->head && f->length == 0 && f->state != FILL_DONE)
        return;
    set_blob_headers(fw->req, f);
    if (f->length >= 0 && range != NULL) {
        int r = http_parse_range(range, f->length, &start, &end);
        if (r == -1) {
            snprintf(buf, sizeof(buf), "bytes */%" PRId64, f->length);
            evhttp_add_header(h, "Content-Range", buf);
            fw->started = 1;
            follower_unhook(fw);
            http_send_error(fw->req, OCI_ERR_RANGE_INVALID, "range not satisfiable", range);
            fw->req = NULL;
            fw->closing = 1;
            follower_detach(fw);
            return;
        }
        if (r == 1) {
            status = 206;
            snprintf(buf, sizeof(buf), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, start, end - 1,
                     f->length);
            evhttp_add_header(h, "Content-Range", buf);
        }
    }
    fw->off = start;
    fw->end = end;
    fw->started = 1;
    if (f->length >= 0) {
        snprintf(buf, sizeof(buf), "%" PRId64, end - start);
        evhttp_add_header(h, "Content-Length", buf);
    } else {
        fw->chunked = 1;
    }
    if (fw->head) {
        /* HEAD: headers only, the length is the one a GET would send. */
        struct evbuffer *empty = evbuffer_new();
        fw->closing = 1;
        follower_unhook(fw);
        evhttp_send_reply(fw->req, status, status == 206 ? "Partial Content" : "OK", empty);
        evbuffer_free(empty);
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    evhttp_send_reply_start(fw->req, status, status == 206 ? "Partial Content" : "OK");
    follower_pump(fw);
}

static void follower_flushed_cb(struct evhttp_connection *evcon, void *arg)
{
    struct follower *fw;

    CAST_OBJ_NOTNULL(fw, arg, FOLLOWER_MAGIC);
    CHECK_OBJ_NOTNULL(fw->fill, FILL_MAGIC);
    fw->writing = 0;
    follower_pump(fw);
}

static void follower_finish(struct follower *fw)
{
    fw->closing = 1;
    follower_unhook(fw);
    evhttp_send_reply_end(fw->req);
    fw->req = NULL;
    follower_detach(fw);
}

/* Send what is on disk and not yet sent; end the response when everything went. */
static void follower_pump(struct follower *fw)
{
    struct fill *f = fw->fill;
    int64_t avail, want, n;
    struct evbuffer *buf;
    struct evbuffer_file_segment *seg;

    if (fw->writing || fw->gone || fw->closing || !fw->started)
        return;
    if (f->state == FILL_FAILED) {
        follower_abort(fw);
        return;
    }
    /* Where this response ends: its range, or (no length known) when the fill is done. */
    want = fw->end >= 0 ? fw->end : (f->state == FILL_DONE ? f->written : INT64_MAX);
    if (fw->off >= want) {
        /* Even an empty body ends only once the digest check has passed. */
        if (f->state == FILL_DONE)
            follower_finish(fw);
        return;
    }
    avail = f->written < want ? f->written : want;
    /* The last byte waits for the digest check: a body that fails it must never look complete. */
    if (f->state != FILL_DONE && fw->end >= 0 && avail >= fw->end)
        avail = fw->end - 1;
    if (fw->off >= avail)
        return; /* wait for more bytes */
    n = avail - fw->off;
    if (n > FOLLOW_SLICE)
        n = FOLLOW_SLICE;
    seg = evbuffer_file_segment_new(fw->fd, fw->off, n, 0);
    if (seg == NULL) {
        follower_abort(fw);
        return;
    }
    buf = evbuffer_new();
    /* Without this flag libevent maps the segment into memory instead of sendfile'ing it. */
    evbuffer_set_flags(buf, EVBUFFER_FLAG_DRAINS_TO_FD);
    evbuffer_add_file_segment(buf, seg, 0, n);
    evbuffer_file_segment_free(seg);
    fw->off += n;
    f->fs->stats.fs_bytes_sent += (uint64_t)n;
    fw->writing = 1;
    evhttp_send_reply_chunk_with_cb(fw->req, buf, follower_flushed_cb, fw);
    evbuffer_free(buf);
}

/* The fetch reference is held throughout (the fill is running): detaching cannot free it. */
void follow_pump_all(struct fill *f)
{
    struct follower *fw = f->followers, *next;

    for (; fw != NULL; fw = next) {
        next = fw->next;
        if (!fw->started)
            follower_start(fw);
        else
            follower_pump(fw);
    }
}

void fill_follow(struct fill *f, struct evhttp_request *req, struct exchange *x)
{
    struct follower *fw = xcalloc(1, sizeof(*fw));

    CHECK_OBJ_NOTNULL(f, FILL_MAGIC);
    fill_ref(f);
    fw->magic = FOLLOWER_MAGIC;
    fw->fill = f;
    fw->req = req;
    fw->x = x;
    fw->fd = dup(f->fd);
    fw->end = -1;
    fw->head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    fw->next = f->followers;
    f->followers = fw;
    f->fs->stats.fs_joined++;
    exchange_on_gone(x, follower_gone_cb, fw);
    if (fw->fd == -1) {
        fw->closing = 1;
        follower_unhook(fw);
        http_send_error(req, OCI_ERR_UNAVAILABLE, "cannot follow the fill", strerror(errno));
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    if (f->state == FILL_FAILED) {
        fw->closing = 1;
        follower_unhook(fw);
        http_send_error(req, f->err, f->errmsg, NULL);
        fw->req = NULL;
        follower_detach(fw);
        return;
    }
    if (f->headers)
        follower_start(fw);
}

/* Called from fill_settle, which holds the fetch reference until it has returned. */
void follow_settled(struct fill *f, int ok)
{
    struct follower *fw = f->followers, *next;

    for (; fw != NULL; fw = next) {
        next = fw->next;
        if (!fw->started && !ok) {
            fw->closing = 1;
            follower_unhook(fw);
            http_send_error(fw->req, f->err, f->errmsg, NULL);
            fw->req = NULL;
            follower_detach(fw);
        } else if (!fw->started) {
            follower_start(fw);
        } else {
            follower_pump(fw);
        }
    }
}

void follow_cut_all(struct fill *f)
{
    while (f->followers != NULL) {
        struct follower *fw = f->followers;
        f->followers = fw->next;
        fw->next = NULL;
        follower_unhook(fw); /* its exchange, if still alive, must not call back here */
        if (fw->fd != -1)
            close(fw->fd);
        fw->magic = 0;
        free(fw);
        fill_unref(f);
    }
}
