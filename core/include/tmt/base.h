/*
 * base.h: the few macros and helpers every file of Tomato CDN uses.
 *
 * Assertions come in three levels. TMT_ASSERT is always compiled in and guards cheap invariants;
 * TMT_DASSERT only in debug, sanitizer and fuzz builds (TMT_DEBUG_CHECKS) for costly ones;
 * TMT_UNREACHABLE marks impossible branches. None of them may guard anything an outsider controls
 * (socket bytes, files, config, API bodies, media): those are validated and answered instead.
 *
 * Objects that travel through void * (callback arguments, user data) or are refcounted carry an
 * `unsigned magic` as their first member; TMT_OBJ_CAST checks it, and free() zeroes it, so a stale
 * pointer fails at its first touch.
 *
 * tmt_xmalloc and friends are for small fixed-size allocations: on failure they log and abort
 * (with overcommit a NULL here means the process is already lost). Allocations sized by input or
 * by configured budgets must use plain malloc and handle NULL as a clean error.
 */
#ifndef TMT_BASE_H
#define TMT_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TMT_MUST_CHECK __attribute__((warn_unused_result))
#define TMT_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#define TMT_NORETURN _Noreturn
#define TMT_UNUSED __attribute__((unused))
#define TMT_LIKELY(x) __builtin_expect(!!(x), 1)
#define TMT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * A borrowed run of bytes: a view into memory someone else owns (a read buffer, a config string).
 * Not NUL-terminated unless said so. Valid only as long as what it points into.
 */
struct tmt_slice {
    const char *p;
    size_t len;
};

#define TMT_SLICE_LIT(s) ((struct tmt_slice){(s), sizeof(s) - 1})

/* A 64-bit mix with full avalanche (MurmurHash3's finalizer): for hash tables keyed by integers. */
static inline uint64_t tmt_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int tmt_hex_value(unsigned char c)
{
    if ((unsigned)(c - '0') < 10)
        return c - '0';
    c |= 0x20;
    if ((unsigned)(c - 'a') < 6)
        return c - 'a' + 10;
    return -1;
}

#define TMT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TMT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TMT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Called by the assertion macros: logs where and why, runs the panic hook, aborts. */
TMT_NORETURN void tmt_panic(const char *cond, const char *func, const char *file, int line);

/*
 * A hook that dumps "what this thread was working on" (request, connection) when a panic happens.
 * Set per thread by the daemons; NULL by default. The hook must not allocate.
 */
typedef void tmt_panic_dump_fn(void *arg);
void tmt_panic_set_dump(tmt_panic_dump_fn *fn, void *arg);

#define TMT_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (TMT_UNLIKELY(!(cond)))                                                                 \
            tmt_panic(#cond, __func__, __FILE__, __LINE__);                                        \
    } while (0)

#if defined(TMT_DEBUG_CHECKS) && TMT_DEBUG_CHECKS
#define TMT_DASSERT(cond) TMT_ASSERT(cond)
#else
#define TMT_DASSERT(cond) ((void)sizeof(cond))
#endif

#define TMT_UNREACHABLE(why) tmt_panic("unreachable: " why, __func__, __FILE__, __LINE__)

/* Checked conversion of a void * to an object with a magic number. */
#define TMT_OBJ_CAST(to, from, magic_value)                                                        \
    do {                                                                                           \
        (to) = (from);                                                                             \
        TMT_ASSERT((to) != NULL);                                                                  \
        TMT_ASSERT((to)->magic == (magic_value));                                                  \
    } while (0)

#define TMT_CHECK_OBJ(obj, magic_value)                                                            \
    do {                                                                                           \
        TMT_ASSERT((obj) != NULL);                                                                 \
        TMT_ASSERT((obj)->magic == (magic_value));                                                 \
    } while (0)

void *tmt_xmalloc(size_t n);
void *tmt_xcalloc(size_t count, size_t n);
void *tmt_xrealloc(void *p, size_t n);
char *tmt_xstrdup(const char *s);
char *tmt_xstrndup(const char *s, size_t n);

#endif
