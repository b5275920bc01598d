/* Shared by sigv4.c (signing) and sigv4_canon.c (the canonical request's parts); nothing else. */
#ifndef AWS_SIGV4_INT_H
#define AWS_SIGV4_INT_H

#include <stddef.h>

#include "sigv4.h"

/* A growing string; always NUL-terminated once anything was added. */
struct sbuf {
    char *sb_p;
    size_t sb_len, sb_cap;
};

void sigv4_sb_add(struct sbuf *sb, const char *s, size_t n);
void sigv4_sb_adds(struct sbuf *sb, const char *s);
void sigv4_sb_addc(struct sbuf *sb, char c);
/* The string built so far (caller frees); the sbuf is empty again. */
char *sigv4_sb_take(struct sbuf *sb);

/* *err = a formatted message when <err> is not NULL. */
void sigv4_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* <n> bytes of <in> as 2n lowercase hex digits and a NUL into <out>. */
void sigv4_hex(const unsigned char *in, size_t n, char *out);
/* RFC 3986 unreserved; RFC 9110 token characters. */
int sigv4_is_unreserved(unsigned char c);
int sigv4_is_tchar(unsigned char c);

/* The canonical request's URI, query and headers appended to <sb> (sigv4_canon.c says how);
 * 0, or -1 with *err naming the bad part by position, never by value. */
int sigv4_canonical_uri(struct sbuf *sb, const char *path, unsigned flags, char **err);
int sigv4_canonical_query(struct sbuf *sb, const char *query, char **err);
int sigv4_canonical_headers(struct sbuf *sb, struct sbuf *signed_names,
                            const struct sigv4_request *rq, const struct sigv4_credentials *cr,
                            const struct sigv4_header *added, size_t nadded, char **err);

#endif
