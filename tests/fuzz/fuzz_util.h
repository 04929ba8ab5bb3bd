/*
 * fuzz_util.h: checks the HTTP/1.1 fuzz targets share: an invariant that aborts with its text,
 * the token character set of RFC 9110, and "this slice lies inside the input".
 */
#ifndef TMT_FUZZ_UTIL_H
#define TMT_FUZZ_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/base.h"

#define FUZZ_CHECK(target, cond)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s invariant failed: %s (line %d)\n", target, #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline bool fuzz_is_tchar(char c)
{
    return c != 0 && (strchr("!#$%&'*+-.^_`|~", c) != NULL || (c >= '0' && c <= '9') ||
                      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static inline bool fuzz_inside(struct tmt_slice s, const char *p, size_t len)
{
    return s.p != NULL && s.p >= p && s.p + s.len <= p + len;
}

/* A heap copy of exactly len bytes, so that reading past it is an ASan report. */
static inline char *fuzz_dup(const uint8_t *data, size_t len)
{
    char *b = malloc(len > 0 ? len : 1);
    FUZZ_CHECK("fuzz", b != NULL);
    if (len > 0)
        memcpy(b, data, len);
    return b;
}

#endif
