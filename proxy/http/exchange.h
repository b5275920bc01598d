/*
 * The exchange: one client request from arrival until its response is written or its
 * connection dies. The server makes one per request and hands it to the handler with the
 * request; docs/internals/exchange.md tells the "gone" protocol whole.
 */
#ifndef HTTP_EXCHANGE_H
#define HTTP_EXCHANGE_H

/*
 * One client request from arrival until its response is written or its connection dies.
 * A handler that answers later registers <cb> to learn that the client went away first: the
 * request then usually has no connection, and the handler must still end it once with
 * evhttp_send_reply_end() (which frees it); when it still has one (the server itself is
 * freeing the connection), the connection frees it. Either way the exchange is gone.
 */
struct exchange;

void exchange_on_gone(struct exchange *x, void (*cb)(void *arg), void *arg);
/*
 * A large body follows: hold partial TCP segments (TCP_CORK) until the response completes, so
 * sendfile's pieces leave as full segments (nginx's tcp_nopush). On loopback this moved a warm
 * 1 GiB GET from 0.79x to 0.99x nginx. Whatever is still held goes when the response ends.
 */
void exchange_cork(struct exchange *x);

#endif
