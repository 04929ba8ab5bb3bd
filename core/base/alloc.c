/*
 * alloc.c: allocation helpers for small fixed-size objects. Failure writes one line to stderr and
 * aborts; see base.h for when these are not the right tool.
 */
#include "tmt/base.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static TMT_NORETURN void out_of_memory(void)
{
    /* No formatting here: it might need memory itself. */
    static const char msg[] = "level=error mod=base msg=\"out of memory\"\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    abort();
}

void *tmt_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (TMT_UNLIKELY(p == NULL))
        out_of_memory();
    return p;
}

void *tmt_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (TMT_UNLIKELY(p == NULL))
        out_of_memory();
    return p;
}

void *tmt_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (TMT_UNLIKELY(q == NULL))
        out_of_memory();
    return q;
}

char *tmt_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = tmt_xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *tmt_xstrdup(const char *s)
{
    return tmt_xstrndup(s, strlen(s));
}
