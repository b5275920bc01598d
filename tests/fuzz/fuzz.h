/* What every fuzz target shares: the libFuzzer entry point and a check that aborts. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The entry point libFuzzer (or tests/fuzz/driver.c) calls once per input: <data> of <size>
 * bytes, owned by the caller and valid for the call only. Returns 0; anything the target
 * allocates is freed before it returns (libFuzzer's leak check runs under ASan).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the parser under test, from its header's contract: abort when it breaks. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated copy of <data> of <size> bytes (an embedded NUL ends the string early).
 * The caller frees it. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* 1 when the array <buf> of <size> bytes holds a NUL. */
static inline int fuzz_terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

#endif
