/*
 * test_http_cache.c: the shared-cache semantics of edge/cache/http_cache.c through http_cache.h:
 * Cache-Control and CDN-Cache-Control parsing (every directive, syntax, bad values, clamping,
 * repeats), storability and its reasons, lifetime precedence, heuristics, ages, CDN-Cache-Control
 * replacing Cache-Control and Expires, hop-by-hop fields, Vary matching and 304 updates.
 *
 * Table-driven where the cases are many: a failing row prints its index and input. Every parse
 * reads an exact-size heap copy (no NUL after it), so a read past the length is caught in the
 * sanitizer build. Times are fixed constants; nothing here reads a clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"
#include "tmt/http_cache.h"

#define A (-1)                   /* absent */
#define DMAX TMT_CC_DELTA_MAX    /* 2^31 */
#define T0 INT64_C(784111777000) /* Sun, 06 Nov 1994 08:49:37 GMT, in ms */
#define D0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D0_P2 "Sun, 06 Nov 1994 08:49:39 GMT"    /* T0 + 2 s */
#define D0_P100 "Sun, 06 Nov 1994 08:51:17 GMT"  /* T0 + 100 s */
#define D0_M1000 "Sun, 06 Nov 1994 08:32:57 GMT" /* T0 - 1000 s */
#define D0_P3600 "Sun, 06 Nov 1994 09:49:37 GMT" /* T0 + 1 h */
#define D0_M5D "Tue, 01 Nov 1994 08:49:37 GMT"   /* T0 - 5 days */
#define D0_M20D "Mon, 17 Oct 1994 08:49:37 GMT"  /* T0 - 20 days */
#define D0_P10D "Wed, 16 Nov 1994 08:49:37 GMT"  /* T0 + 10 days */
#define D_LAST "Fri, 31 Dec 9999 23:59:59 GMT"
#define DAY_MS INT64_C(86400000)

/* ---- helpers ---- */

static char *dup_exact(const char *s, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);
    assert_non_null(c);
    memcpy(c, s, n);
    return c;
}

static void cc_parse_exact(struct tmt_cc *cc, const char *s)
{
    size_t n = strlen(s);
    char *c = dup_exact(s, n);
    tmt_cc_parse(cc, c, n);
    free(c);
}

static int cdn_parse_exact(struct tmt_cc *cc, const char *s)
{
    size_t n = strlen(s);
    char *c = dup_exact(s, n);
    int rc = tmt_cc_parse_cdn(cc, c, n);
    free(c);
    return rc;
}

enum {
    NS = 1 << 0,   /* no-store */
    NC = 1 << 1,   /* no-cache */
    PRIV = 1 << 2, /* private */
    PUB = 1 << 3,  /* public */
    MR = 1 << 4,   /* must-revalidate */
    PR = 1 << 5,   /* proxy-revalidate */
    NT = 1 << 6,   /* no-transform */
    IMM = 1 << 7,  /* immutable */
    OIC = 1 << 8,  /* only-if-cached */
    MU = 1 << 9,   /* must-understand */
};

struct cc_row {
    const char *in;
    int64_t ma, sma, swr, sie, mf, ms;
    unsigned flags;
};

static unsigned cc_flags(const struct tmt_cc *cc)
{
    return (cc->no_store ? NS : 0) | (cc->no_cache ? NC : 0) | (cc->private_ ? PRIV : 0) |
           (cc->public_ ? PUB : 0) | (cc->must_revalidate ? MR : 0) |
           (cc->proxy_revalidate ? PR : 0) | (cc->no_transform ? NT : 0) |
           (cc->immutable ? IMM : 0) | (cc->only_if_cached ? OIC : 0) |
           (cc->must_understand ? MU : 0);
}

static bool cc_matches(const struct tmt_cc *cc, const struct cc_row *r)
{
    return cc->max_age == r->ma && cc->s_maxage == r->sma && cc->stale_while_revalidate == r->swr &&
           cc->stale_if_error == r->sie && cc->min_fresh == r->mf && cc->max_stale == r->ms &&
           cc_flags(cc) == r->flags;
}

static void cc_print(const char *what, size_t i, const char *in, const struct tmt_cc *cc)
{
    print_error("%s row %zu \"%s\": got max-age %lld s-maxage %lld swr %lld sie %lld min-fresh "
                "%lld max-stale %lld flags %#x present %d\n",
                what, i, in, (long long)cc->max_age, (long long)cc->s_maxage,
                (long long)cc->stale_while_revalidate, (long long)cc->stale_if_error,
                (long long)cc->min_fresh, (long long)cc->max_stale, cc_flags(cc), cc->present);
}

static void run_cc_rows(const struct cc_row *rows, size_t n)
{
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        struct tmt_cc cc;
        tmt_cc_init(&cc);
        cc_parse_exact(&cc, rows[i].in);
        if (!cc_matches(&cc, &rows[i]) || !cc.present) {
            cc_print("cc", i, rows[i].in, &cc);
            failed = true;
        }
    }
    if (failed)
        fail();
}

static bool cc_equal(const struct tmt_cc *a, const struct tmt_cc *b)
{
    return a->max_age == b->max_age && a->s_maxage == b->s_maxage &&
           a->stale_while_revalidate == b->stale_while_revalidate &&
           a->stale_if_error == b->stale_if_error && a->min_fresh == b->min_fresh &&
           a->max_stale == b->max_stale && cc_flags(a) == cc_flags(b) && a->present == b->present;
}

#define MAXH 16
#define NONE ((const char *const[]){NULL})
#define HS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct hset {
    struct tmt_http_header h[MAXH];
    size_t n;
};

/* "Name: value" lines (NULL-terminated) into headers pointing into the literals. */
static void hset_build(struct hset *s, const char *const *lines)
{
    s->n = 0;
    for (size_t i = 0; lines[i] != NULL; i++) {
        assert_true(s->n < MAXH);
        const char *l = lines[i];
        const char *colon = strchr(l, ':');
        assert_non_null(colon);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        s->h[s->n].name = (struct tmt_slice){l, (size_t)(colon - l)};
        s->h[s->n].value = (struct tmt_slice){v, strlen(v)};
        s->n++;
    }
}

static struct tmt_hc_resp ev_full(const struct tmt_hc_opts *o, enum tmt_http_method m, int status,
                                  const char *const *req, const char *const *resp,
                                  int64_t request_time_ms, int64_t response_time_ms)
{
    struct hset rq, rs;
    hset_build(&rq, req);
    hset_build(&rs, resp);
    struct tmt_hc_resp out;
    memset(&out, 0xa5, sizeof(out));
    tmt_hc_evaluate(o, m, status, rq.h, rq.n, rs.h, rs.n, request_time_ms, response_time_ms, &out);
    /* The contract every result keeps. */
    assert_true(out.storable == (out.why == NULL));
    assert_true(out.lifetime_ms >= 0 && out.lifetime_ms <= DMAX * 1000);
    assert_true(out.initial_age_ms >= 0);
    if (out.no_cache)
        assert_int_equal(out.lifetime_ms, 0);
    if (out.no_cache || out.must_revalidate) {
        assert_int_equal(out.swr_ms, -1);
        assert_int_equal(out.sie_ms, -1);
    }
    return out;
}

/* GET, default options, request sent and response received at T0. */
static struct tmt_hc_resp ev(int status, const char *const *req, const char *const *resp)
{
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    return ev_full(&o, TMT_HTTP_GET, status, req, resp, T0, T0);
}

static void assert_why(const struct tmt_hc_resp *r, const char *why)
{
    if (why == NULL) {
        if (!r->storable)
            fail_msg("not storable: %s", r->why);
        return;
    }
    assert_false(r->storable);
    assert_non_null(r->why);
    assert_string_equal(r->why, why);
}

/* ---- Cache-Control ---- */

static void cc_init_absent(void **state)
{
    (void)state;
    struct tmt_cc cc;
    memset(&cc, 0x5a, sizeof(cc));
    tmt_cc_init(&cc);
    const struct cc_row none = {"", A, A, A, A, A, A, 0};
    assert_true(cc_matches(&cc, &none));
    assert_false(cc.present);
    /* An empty value still counts as a field line seen. */
    tmt_cc_parse(&cc, NULL, 0);
    assert_true(cc.present);
    assert_true(cc_matches(&cc, &none));
}

static void cc_every_directive(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        {"max-age=60", 60, A, A, A, A, A, 0},
        {"max-age=0", 0, A, A, A, A, A, 0},
        {"s-maxage=30", A, 30, A, A, A, A, 0},
        {"stale-while-revalidate=5", A, A, 5, A, A, A, 0},
        {"stale-if-error=7", A, A, A, 7, A, A, 0},
        {"min-fresh=9", A, A, A, A, 9, A, 0},
        {"max-stale=11", A, A, A, A, A, 11, 0},
        {"max-stale", A, A, A, A, A, DMAX, 0},
        {"no-store", A, A, A, A, A, A, NS},
        {"no-cache", A, A, A, A, A, A, NC},
        {"private", A, A, A, A, A, A, PRIV},
        {"public", A, A, A, A, A, A, PUB},
        {"must-revalidate", A, A, A, A, A, A, MR},
        {"proxy-revalidate", A, A, A, A, A, A, PR},
        {"no-transform", A, A, A, A, A, A, NT},
        {"immutable", A, A, A, A, A, A, IMM},
        {"only-if-cached", A, A, A, A, A, A, OIC},
        {"must-understand", A, A, A, A, A, A, MU},
        {"", A, A, A, A, A, A, 0},
        {"public, max-age=3600, s-maxage=60, stale-while-revalidate=30, stale-if-error=600, "
         "immutable, no-transform",
         3600, 60, 30, 600, A, A, PUB | IMM | NT},
        {"no-cache, no-store, must-revalidate, proxy-revalidate, private, only-if-cached, "
         "must-understand, min-fresh=1, max-stale=2",
         A, A, A, A, 1, 2, NS | NC | MR | PR | PRIV | OIC | MU},
        /* names are case-insensitive */
        {"MAX-AGE=5, No-Store, PUBLIC, S-MaxAge=4, Stale-While-Revalidate=3", 5, 4, 3, A, A, A,
         NS | PUB},
        /* unknown directives, with or without arguments, are ignored */
        {"foo, bar=baz, baz=\"q,q\", max-age=3, x-max-age=9, max-ages=8", 3, A, A, A, A, A, 0},
    };
    run_cc_rows(rows, TMT_ARRAY_LEN(rows));
}

static void cc_syntax(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        /* delta-seconds in quoted form (RFC 9111 5.2: recipients accept both forms) */
        {"max-age=\"60\"", 60, A, A, A, A, A, 0},
        {"max-stale=\"12\"", A, A, A, A, A, 12, 0},
        /* optional whitespace, empty elements */
        {"max-age = 60", 60, A, A, A, A, A, 0},
        {"max-age=\t60\t", 60, A, A, A, A, A, 0},
        {" , ,max-age=5 ,, public , ", 5, A, A, A, A, A, PUB},
        {"no-cache,no-store", A, A, A, A, A, A, NC | NS},
        {",,,", A, A, A, A, A, A, 0},
        /* commas and escaped quotes inside quoted-strings do not split */
        {"no-cache=\"set-cookie, x-foo\", max-age=5", 5, A, A, A, A, A, NC},
        {"private=\"a\\\"b, c\", max-age=7", 7, A, A, A, A, A, PRIV},
        {"\"junk, x\", max-age=5", 5, A, A, A, A, A, 0},
        {"\"junk, max-age=5\", public", A, A, A, A, A, A, PUB},
        {"max-age=5 \"x, no-store\", public", 0, A, A, A, A, A, PUB},
        /* an unterminated quoted-string runs to the end */
        {"private=\"abc, max-age=5", A, A, A, A, A, A, PRIV},
        {"private=\"abc\\", A, A, A, A, A, A, PRIV},
        /* junk after an argument spoils that element only */
        {"max-age=5;x, public", 0, A, A, A, A, A, PUB},
        {"max-age=5 6", 0, A, A, A, A, A, 0},
        {"max-age=6\"7, public\"", 0, A, A, A, A, A, 0},
        {"max-age==5", 0, A, A, A, A, A, 0},
        {"@@@, no-store", A, A, A, A, A, A, NS},
        {"=5, max-age=4", 4, A, A, A, A, A, 0},
        {"\x80\xff, max-age=1", 1, A, A, A, A, A, 0},
        {"no-store junk", A, A, A, A, A, A, NS},
        {"public junk", A, A, A, A, A, A, 0},
        /* restricting directives count with arguments, permissive ones do not */
        {"no-store=1", A, A, A, A, A, A, NS},
        {"must-revalidate=x", A, A, A, A, A, A, MR},
        {"proxy-revalidate=\"\"", A, A, A, A, A, A, PR},
        {"no-transform=1, only-if-cached=1", A, A, A, A, A, A, NT | OIC},
        {"private=\"set-cookie\"", A, A, A, A, A, A, PRIV},
        {"public=1", A, A, A, A, A, A, 0},
        {"immutable=\"\"", A, A, A, A, A, A, 0},
        {"must-understand=x", A, A, A, A, A, A, 0},
    };
    run_cc_rows(rows, TMT_ARRAY_LEN(rows));
}

static void cc_bad_values(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        /* invalid max-age / s-maxage: stale (0) */
        {"max-age", 0, A, A, A, A, A, 0},
        {"max-age=", 0, A, A, A, A, A, 0},
        {"max-age=-1", 0, A, A, A, A, A, 0},
        {"max-age=1.5", 0, A, A, A, A, A, 0},
        {"max-age=abc", 0, A, A, A, A, A, 0},
        {"max-age=+5", 0, A, A, A, A, A, 0},
        {"max-age=0x10", 0, A, A, A, A, A, 0},
        {"max-age=\"\"", 0, A, A, A, A, A, 0},
        {"max-age=\"6\\0\"", 0, A, A, A, A, A, 0},
        {"max-age=\"60", 0, A, A, A, A, A, 0},
        {"max-age=\" 60\"", 0, A, A, A, A, A, 0},
        {"s-maxage", A, 0, A, A, A, A, 0},
        {"s-maxage=x", A, 0, A, A, A, A, 0},
        /* invalid others: that occurrence is ignored */
        {"stale-while-revalidate", A, A, A, A, A, A, 0},
        {"stale-while-revalidate=x", A, A, A, A, A, A, 0},
        {"stale-if-error=-3", A, A, A, A, A, A, 0},
        {"stale-if-error", A, A, A, A, A, A, 0},
        {"min-fresh=", A, A, A, A, A, A, 0},
        {"min-fresh", A, A, A, A, A, A, 0},
        {"max-stale=x", A, A, A, A, A, A, 0},
    };
    run_cc_rows(rows, TMT_ARRAY_LEN(rows));
}

static void cc_clamp(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        {"max-age=2147483647", 2147483647, A, A, A, A, A, 0},
        {"max-age=2147483648", DMAX, A, A, A, A, A, 0},
        {"max-age=2147483649", DMAX, A, A, A, A, A, 0},
        {"max-age=99999999999999999999999999999999", DMAX, A, A, A, A, A, 0},
        {"max-age=00000000000000000000000000000005", 5, A, A, A, A, A, 0},
        {"s-maxage=9223372036854775808", A, DMAX, A, A, A, A, 0},
        {"stale-while-revalidate=4294967296", A, A, DMAX, A, A, A, 0},
        {"stale-if-error=4294967296", A, A, A, DMAX, A, A, 0},
        {"min-fresh=18446744073709551616", A, A, A, A, DMAX, A, 0},
        {"max-stale=18446744073709551616", A, A, A, A, A, DMAX, 0},
    };
    run_cc_rows(rows, TMT_ARRAY_LEN(rows));
}

static void cc_repeated(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        {"max-age=10, max-age=5", 5, A, A, A, A, A, 0},
        {"max-age=5, max-age=10", 5, A, A, A, A, A, 0},
        {"max-age=10, max-age", 0, A, A, A, A, A, 0},
        {"max-age=10, max-age=abc", 0, A, A, A, A, A, 0},
        {"s-maxage=9, s-maxage=3", A, 3, A, A, A, A, 0},
        {"stale-while-revalidate=9, stale-while-revalidate=3", A, A, 3, A, A, A, 0},
        {"stale-if-error=3, stale-if-error=9", A, A, A, 3, A, A, 0},
        {"stale-if-error=3, stale-if-error=x", A, A, A, 3, A, A, 0},
        {"min-fresh=3, min-fresh=9", A, A, A, A, 9, A, 0},
        {"min-fresh=9, min-fresh=3", A, A, A, A, 9, A, 0},
        {"max-stale, max-stale=10", A, A, A, A, A, 10, 0},
        {"max-stale=10, max-stale", A, A, A, A, A, 10, 0},
        {"public, public, no-store, no-store", A, A, A, A, A, A, PUB | NS},
    };
    run_cc_rows(rows, TMT_ARRAY_LEN(rows));

    /* Across field lines, in either order. */
    struct tmt_cc a, b;
    tmt_cc_init(&a);
    tmt_cc_init(&b);
    cc_parse_exact(&a, "max-age=10, public, min-fresh=4");
    cc_parse_exact(&a, "max-age=5, private, min-fresh=2");
    cc_parse_exact(&b, "max-age=5, private, min-fresh=2");
    cc_parse_exact(&b, "max-age=10, public, min-fresh=4");
    const struct cc_row want = {"", 5, A, A, A, 4, A, PUB | PRIV};
    if (!cc_matches(&a, &want))
        cc_print("lines", 0, "", &a);
    assert_true(cc_matches(&a, &want));
    assert_true(cc_equal(&a, &b));
}

/* The parser reads only the length it is given; no NUL is needed or looked for. */
static void cc_length_bound(void **state)
{
    (void)state;
    const char *full = "max-age=12345, no-store";
    struct tmt_cc cc;
    tmt_cc_init(&cc);
    char *c = dup_exact(full, 9); /* "max-age=1" */
    tmt_cc_parse(&cc, c, 9);
    free(c);
    assert_int_equal(cc.max_age, 1);
    assert_false(cc.no_store);

    tmt_cc_init(&cc);
    c = dup_exact(full, 5); /* "max-a": an unknown directive */
    tmt_cc_parse(&cc, c, 5);
    free(c);
    assert_int_equal(cc.max_age, A);
    assert_true(cc.present);

    tmt_cc_init(&cc);
    c = dup_exact("private=\"ab", 11);
    tmt_cc_parse(&cc, c, 11);
    free(c);
    assert_true(cc.private_);
}

/* ---- CDN-Cache-Control (Structured Fields Dictionary) ---- */

static void cdn_valid(void **state)
{
    (void)state;
    static const struct cc_row rows[] = {
        {"max-age=60", 60, A, A, A, A, A, 0},
        {"s-maxage=60", A, 60, A, A, A, A, 0},
        {"no-store", A, A, A, A, A, A, NS},
        {"no-store, max-age=5", 5, A, A, A, A, A, NS},
        {"max-age=60, stale-if-error=30;x=1, stale-while-revalidate=10", 60, A, 10, 30, A, A, 0},
        {"no-cache=\"a, b\", max-age=5", 5, A, A, A, A, A, NC},
        {"private", A, A, A, A, A, A, PRIV},
        {"private=\"set-cookie\"", A, A, A, A, A, A, PRIV},
        {"public", A, A, A, A, A, A, PUB},
        {"public=?1", A, A, A, A, A, A, PUB},
        {"public=?0", A, A, A, A, A, A, 0},
        {"public=1", A, A, A, A, A, A, 0},
        {"no-store=?0", A, A, A, A, A, A, 0},
        {"no-store=?1", A, A, A, A, A, A, NS},
        {"no-store=1", A, A, A, A, A, A, NS},
        {"must-revalidate, proxy-revalidate, immutable, no-transform", A, A, A, A, A, A,
         MR | PR | IMM | NT},
        {"must-understand, no-store", A, A, A, A, A, A, MU | NS},
        {"must-understand=?0", A, A, A, A, A, A, 0},
        /* max-age of the wrong type: stale */
        {"max-age=\"60\"", 0, A, A, A, A, A, 0},
        {"max-age=1.5", 0, A, A, A, A, A, 0},
        {"max-age=-1", 0, A, A, A, A, A, 0},
        {"max-age", 0, A, A, A, A, A, 0},
        {"max-age=?0", 0, A, A, A, A, A, 0},
        {"max-age=tok", 0, A, A, A, A, A, 0},
        {"max-age=:YWJj:", 0, A, A, A, A, A, 0},
        {"max-age=(1 2)", 0, A, A, A, A, A, 0},
        {"s-maxage=\"1\"", A, 0, A, A, A, A, 0},
        /* others of the wrong type: ignored */
        {"stale-if-error=tok", A, A, A, A, A, A, 0},
        {"stale-while-revalidate=-5", A, A, A, A, A, A, 0},
        {"min-fresh=1.0", A, A, A, A, A, A, 0},
        {"max-stale", A, A, A, A, A, DMAX, 0},
        {"max-stale=7", A, A, A, A, A, 7, 0},
        /* numbers, parameters, inner lists and the other bare items */
        {"max-age=60;a;b=2;c=\"x\"", 60, A, A, A, A, A, 0},
        {"max-age=999999999999999", DMAX, A, A, A, A, A, 0},
        {"max-age=10, max-age=60", 10, A, A, A, A, A, 0},
        {"max-age=60, max-age=10", 10, A, A, A, A, A, 0},
        {"a=(1 \"x\" tok);p, b;q=?1, max-age=5", 5, A, A, A, A, A, 0},
        {"a=(), b=( 1  2 ), c=(1;p=2 x);q, max-age=5", 5, A, A, A, A, A, 0},
        {"*a=1, a*.-_9=2, max-age=5", 5, A, A, A, A, A, 0},
        {"max-age=5 , public", 5, A, A, A, A, A, PUB},
        {"max-age=5,\tpublic", 5, A, A, A, A, A, PUB},
        {"  max-age=5  ", 5, A, A, A, A, A, 0},
        {"a=-0.5, b=123456789012.123, c=-999999999999999, max-age=1", 1, A, A, A, A, A, 0},
        {"a=*tok/x:y, b=\"x\\\"y\\\\\", c=:YQ==:, d=::, max-age=2", 2, A, A, A, A, A, 0},
        {"private, unknown-directive=?1", A, A, A, A, A, A, PRIV},
    };
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        struct tmt_cc cc;
        tmt_cc_init(&cc);
        int rc = cdn_parse_exact(&cc, rows[i].in);
        if (rc != 0 || !cc_matches(&cc, &rows[i]) || !cc.present) {
            print_error("rc %d\n", rc);
            cc_print("cdn", i, rows[i].in, &cc);
            failed = true;
        }
    }
    if (failed)
        fail();
}

static void cdn_invalid(void **state)
{
    (void)state;
    static const char *const rows[] = {
        "Max-Age=60",
        "max-age=60,",
        ",max-age=60",
        "max-age=60 public",
        "max-age=60,, public",
        "max-age=60;",
        "max-age=60;B=1",
        "max-age;=1",
        "max-age=\"60",
        "max-age=\"\\x\"",
        "max-age=\"\x01\"",
        "max-age=\"\xc3\xa9\"",
        "max-age=1.2345",
        "max-age=1234567890123.5",
        "max-age=1234567890123456",
        "max-age=1.",
        "max-age=-",
        "max-age=--1",
        "a=?2",
        "a=?",
        "a=:abc",
        "a=:a*c:",
        "a=(1 2",
        "a=(1,2)",
        "a=(1\"x\")",
        "a=(1)x",
        "a=@1",
        "a=%\"x\"",
        "a=5 ;b",
        "1a=5",
        "_a",
        "\xc3\xa9",
        "max-age=5,\n",
        "max-age=5, no-store=",
        "=5",
    };
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        struct tmt_cc cc, before;
        tmt_cc_init(&cc);
        cc_parse_exact(&cc, "max-age=7, no-cache");
        before = cc;
        int rc = cdn_parse_exact(&cc, rows[i]);
        if (rc != TMT_EINVAL || !cc_equal(&cc, &before)) {
            print_error("rc %d\n", rc);
            cc_print("cdn invalid", i, rows[i], &cc);
            failed = true;
        }
    }
    if (failed)
        fail();
}

static void cdn_empty(void **state)
{
    (void)state;
    struct tmt_cc cc;
    tmt_cc_init(&cc);
    assert_int_equal(cdn_parse_exact(&cc, ""), 0);
    assert_false(cc.present);
    assert_int_equal(cdn_parse_exact(&cc, "   "), 0);
    assert_false(cc.present);
    assert_int_equal(tmt_cc_parse_cdn(&cc, NULL, 0), 0);
    assert_false(cc.present);
    assert_int_equal(cdn_parse_exact(&cc, "x-unknown"), 0);
    assert_true(cc.present); /* a member, even an unknown one, makes it non-empty */
    assert_int_equal(cc.max_age, A);

    /* Bounded by len: "max-age=1" out of "max-age=12". */
    tmt_cc_init(&cc);
    char *c = dup_exact("max-age=12", 9);
    assert_int_equal(tmt_cc_parse_cdn(&cc, c, 9), 0);
    free(c);
    assert_int_equal(cc.max_age, 1);
}

/* ---- storing ---- */

static void eval_basic(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE, HS("Date: " D0, "Cache-Control: max-age=300"));
    assert_why(&r, NULL);
    assert_null(r.why);
    assert_false(r.heuristic);
    assert_int_equal(r.lifetime_ms, 300000);
    assert_int_equal(r.initial_age_ms, 0);
    assert_int_equal(r.swr_ms, -1);
    assert_int_equal(r.sie_ms, -1);
    assert_false(r.must_revalidate);
    assert_false(r.no_cache);
    assert_false(r.cdn_cache_control);
    assert_int_equal(r.date_ms, T0);
    assert_int_equal(r.last_modified_ms, -1);

    /* Header names are case-insensitive; several Cache-Control lines merge. */
    r = ev(200, NONE, HS("CACHE-CONTROL: max-age=300", "cache-control: max-age=50, public"));
    assert_why(&r, NULL);
    assert_int_equal(r.lifetime_ms, 50000);
    r = ev(200, NONE, HS("Cache-Control: public", "Cache-Control: private"));
    assert_why(&r, "private");
}

static void eval_method(void **state)
{
    (void)state;
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    static const enum tmt_http_method not_get[] = {
        TMT_HTTP_HEAD,  TMT_HTTP_POST,    TMT_HTTP_PUT,   TMT_HTTP_DELETE, TMT_HTTP_OPTIONS,
        TMT_HTTP_PATCH, TMT_HTTP_CONNECT, TMT_HTTP_TRACE, TMT_HTTP_OTHER,
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(not_get); i++) {
        struct tmt_hc_resp r =
            ev_full(&o, not_get[i], 200, NONE, HS("Cache-Control: public, max-age=60"), T0, T0);
        assert_why(&r, "method");
    }
    struct tmt_hc_resp r =
        ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Cache-Control: public, max-age=60"), T0, T0);
    assert_why(&r, NULL);
}

static void eval_status(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *bare;     /* why with no freshness information at all */
        const char *with_age; /* why with max-age=60 */
    } rows[] = {
        {0, "status", "status"},
        {-1, "status", "status"},
        {100, "status", "status"},
        {101, "status", "status"},
        {103, "status", "status"},
        {199, "status", "status"},
        {206, "status", "status"},
        {304, "status", "status"},
        {600, "status", "status"},
        {999, "status", "status"},
        /* heuristically cacheable */
        {200, NULL, NULL},
        {203, NULL, NULL},
        {204, NULL, NULL},
        {300, NULL, NULL},
        {301, NULL, NULL},
        {308, NULL, NULL},
        {404, NULL, NULL},
        {405, NULL, NULL},
        {410, NULL, NULL},
        {414, NULL, NULL},
        {501, NULL, NULL},
        /* the others need explicit freshness */
        {201, "no freshness info", NULL},
        {202, "no freshness info", NULL},
        {299, "no freshness info", NULL},
        {302, "no freshness info", NULL},
        {303, "no freshness info", NULL},
        {307, "no freshness info", NULL},
        {400, "no freshness info", NULL},
        {403, "no freshness info", NULL},
        {418, "no freshness info", NULL},
        {500, "no freshness info", NULL},
        {502, "no freshness info", NULL},
        {503, "no freshness info", NULL},
        {504, "no freshness info", NULL},
        {599, "no freshness info", NULL},
    };
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        struct tmt_hc_resp a = ev(rows[i].status, NONE, HS("Date: " D0));
        struct tmt_hc_resp b = ev(rows[i].status, NONE, HS("Cache-Control: max-age=60"));
        bool ok_a =
            rows[i].bare == NULL ? a.storable : (!a.storable && strcmp(a.why, rows[i].bare) == 0);
        bool ok_b = rows[i].with_age == NULL
                        ? b.storable
                        : (!b.storable && strcmp(b.why, rows[i].with_age) == 0);
        if (!ok_a || !ok_b) {
            print_error("status %d: bare %s, with max-age %s\n", rows[i].status,
                        a.why ? a.why : "storable", b.why ? b.why : "storable");
            failed = true;
        }
        if (b.storable && b.lifetime_ms != 60000) {
            print_error("status %d: lifetime %lld\n", rows[i].status, (long long)b.lifetime_ms);
            failed = true;
        }
    }
    if (failed)
        fail();

    /* Each kind of explicit freshness makes a 302 storable. */
    struct tmt_hc_resp r = ev(302, NONE, HS("Cache-Control: s-maxage=10"));
    assert_why(&r, NULL);
    r = ev(302, NONE, HS("Date: " D0, "Expires: " D0_P100));
    assert_why(&r, NULL);
    assert_int_equal(r.lifetime_ms, 100000);
    r = ev(500, NONE, HS("Expires: 0"));
    assert_why(&r, NULL);
    assert_int_equal(r.lifetime_ms, 0);
    r = ev(302, NONE, HS("Cache-Control: public", "Last-Modified: " D0_M5D, "Date: " D0));
    assert_why(&r, NULL);
    assert_true(r.heuristic);
    assert_int_equal(r.lifetime_ms, 0); /* heuristics only for heuristically cacheable codes */
    /* no-cache or must-revalidate alone are not freshness information */
    r = ev(302, NONE, HS("Cache-Control: no-cache, must-revalidate"));
    assert_why(&r, "no freshness info");
}

static void eval_no_store(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE, HS("Cache-Control: no-store, max-age=60"));
    assert_why(&r, "no-store");
    r = ev(200, NONE, HS("Cache-Control: max-age=60", "Cache-Control: No-Store"));
    assert_why(&r, "no-store");
    /* in the request */
    r = ev(200, HS("Cache-Control: no-store"), HS("Cache-Control: max-age=60"));
    assert_why(&r, "no-store");
    r = ev(200, HS("cache-control: max-age=0, NO-STORE"), HS("Cache-Control: max-age=60"));
    assert_why(&r, "no-store");
    /* other request directives do not stop storing */
    r = ev(200, HS("Cache-Control: no-cache, max-age=0", "Pragma: no-cache"),
           HS("Cache-Control: max-age=60"));
    assert_why(&r, NULL);
    /* must-understand with an understood status overrides a response no-store ... */
    r = ev(200, NONE, HS("Cache-Control: must-understand, no-store, max-age=60"));
    assert_why(&r, NULL);
    assert_int_equal(r.lifetime_ms, 60000);
    r = ev(307, NONE, HS("Cache-Control: must-understand, no-store, max-age=60"));
    assert_why(&r, NULL);
    /* ... but not a request no-store, and not with a status it does not understand */
    r = ev(200, HS("Cache-Control: no-store"),
           HS("Cache-Control: must-understand, no-store, max-age=60"));
    assert_why(&r, "no-store");
    r = ev(418, NONE, HS("Cache-Control: must-understand, no-store, max-age=60"));
    assert_why(&r, "no-store");
    r = ev(418, NONE, HS("Cache-Control: must-understand, max-age=60"));
    assert_why(&r, "status");
    r = ev(303, NONE, HS("Cache-Control: must-understand, max-age=60"));
    assert_why(&r, "status");
}

static void eval_private(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE, HS("Cache-Control: private, max-age=60"));
    assert_why(&r, "private");
    r = ev(200, NONE, HS("Cache-Control: private=\"set-cookie\", max-age=60"));
    assert_why(&r, "private");
    r = ev(200, NONE, HS("Cache-Control: public, private"));
    assert_why(&r, "private");
    /* reasons come in the documented order */
    r = ev(200, HS("Authorization: x"), HS("Cache-Control: private, no-store", "Vary: *"));
    assert_why(&r, "no-store");
    r = ev(200, HS("Authorization: x"), HS("Cache-Control: private", "Vary: *"));
    assert_why(&r, "private");
    r = ev(200, HS("Authorization: x"), HS("Vary: *"));
    assert_why(&r, "authorization");
    r = ev(206, HS("Authorization: x"), HS("Cache-Control: no-store"));
    assert_why(&r, "status");
}

static void eval_authorization(void **state)
{
    (void)state;
    static const struct {
        const char *cc;
        const char *why;
    } rows[] = {
        {"Cache-Control: max-age=60", "authorization"},
        {"Cache-Control: max-age=60, proxy-revalidate", "authorization"},
        {"Cache-Control: no-cache", "authorization"},
        {"Cache-Control: public", NULL},
        {"Cache-Control: public, max-age=60", NULL},
        {"Cache-Control: s-maxage=60", NULL},
        {"Cache-Control: must-revalidate, max-age=60", NULL},
        {"Cache-Control: must-revalidate", NULL},
        {"Cache-Control: public=1, max-age=60", "authorization"},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        struct tmt_hc_resp r = ev(200, HS("Authorization: Bearer abc"), HS(rows[i].cc));
        if (rows[i].why == NULL ? !r.storable : (r.storable || strcmp(r.why, rows[i].why) != 0))
            fail_msg("row %zu \"%s\": %s", i, rows[i].cc, r.why ? r.why : "storable");
        /* Without Authorization every row is storable. */
        r = ev(200, HS("Accept: */*"), HS(rows[i].cc));
        assert_why(&r, NULL);
    }
    /* the name is case-insensitive, the value does not matter */
    struct tmt_hc_resp r = ev(200, HS("AUTHORIZATION:"), HS("Cache-Control: max-age=60"));
    assert_why(&r, "authorization");
}

static void eval_vary(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE, HS("Cache-Control: max-age=60", "Vary: *"));
    assert_why(&r, "vary *");
    r = ev(200, NONE, HS("Cache-Control: max-age=60", "Vary: accept-encoding, *"));
    assert_why(&r, "vary *");
    r = ev(200, NONE, HS("Cache-Control: max-age=60", "Vary: accept-encoding", "VARY:  * "));
    assert_why(&r, "vary *");
    r = ev(200, NONE, HS("Cache-Control: max-age=60", "Vary: accept-encoding, accept-*"));
    assert_why(&r, NULL);
    r = ev(200, NONE, HS("Cache-Control: max-age=60", "Vary:"));
    assert_why(&r, NULL);
}

/* ---- freshness ---- */

static void eval_lifetime_precedence(void **state)
{
    (void)state;
    static const struct {
        const char *h[4];
        int64_t lifetime_ms;
        bool heuristic;
    } rows[] = {
        /* s-maxage, then max-age, then Expires - Date */
        {{"Cache-Control: max-age=100, s-maxage=10", "Expires: " D0_P3600, "Date: " D0},
         10000,
         false},
        {{"Cache-Control: s-maxage=100, max-age=10", "Expires: " D0_P3600, "Date: " D0},
         100000,
         false},
        {{"Cache-Control: max-age=100", "Expires: " D0_P3600, "Date: " D0}, 100000, false},
        {{"Cache-Control: max-age=0", "Expires: " D0_P3600, "Date: " D0}, 0, false},
        {{"Expires: " D0_P3600, "Date: " D0}, 3600000, false},
        {{"Date: " D0, "Expires: " D0_P3600}, 3600000, false},
        /* Expires relative to Date, not to the time of receipt */
        {{"Expires: " D0_P3600, "Date: " D0_P100}, 3500000, false},
        /* no (valid) Date: the response time stands in */
        {{"Expires: " D0_P3600}, 3600000, false},
        {{"Expires: " D0_P3600, "Date: yesterday"}, 3600000, false},
        /* invalid or past Expires: stale at once */
        {{"Expires: 0", "Date: " D0}, 0, false},
        {{"Expires: -1", "Date: " D0}, 0, false},
        {{"Expires:", "Date: " D0}, 0, false},
        {{"Expires: " D0_M1000, "Date: " D0}, 0, false},
        {{"Expires: " D0, "Date: " D0}, 0, false},
        /* several Expires: the first */
        {{"Expires: " D0_P100, "Expires: " D0_P3600, "Date: " D0}, 100000, false},
        {{"Expires: bad", "Expires: " D0_P3600, "Date: " D0}, 0, false},
        /* invalid max-age wins over Expires, as a 0 */
        {{"Cache-Control: max-age=x", "Expires: " D0_P3600, "Date: " D0}, 0, false},
        /* capped at 2^31 s */
        {{"Expires: " D_LAST, "Date: " D0}, DMAX * 1000, false},
        {{"Cache-Control: max-age=99999999999"}, DMAX * 1000, false},
        /* heuristic: 10 % of Date - Last-Modified, capped at a day */
        {{"Last-Modified: " D0_M5D, "Date: " D0}, DAY_MS / 2, true},
        {{"Last-Modified: " D0_M20D, "Date: " D0}, DAY_MS, true},
        {{"Last-Modified: " D0_M1000, "Date: " D0}, 100000, true},
        {{"Last-Modified: " D0_M1000}, 100000, true},
        {{"Last-Modified: " D0_P10D, "Date: " D0}, 0, true},
        {{"Last-Modified: " D0, "Date: " D0}, 0, true},
        {{"Last-Modified: garbage", "Date: " D0}, 0, true},
        {{"Date: " D0}, 0, true},
        {{"Cache-Control: public"}, 0, true},
        {{"Cache-Control: must-revalidate", "Last-Modified: " D0_M1000}, 100000, true},
    };
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        const char *lines[5] = {rows[i].h[0], rows[i].h[1], rows[i].h[2], rows[i].h[3], NULL};
        struct tmt_hc_resp r = ev(200, NONE, lines);
        if (!r.storable || r.lifetime_ms != rows[i].lifetime_ms ||
            r.heuristic != rows[i].heuristic) {
            print_error("row %zu (%s): storable %d lifetime %lld heuristic %d\n", i, rows[i].h[0],
                        r.storable, (long long)r.lifetime_ms, r.heuristic);
            failed = true;
        }
    }
    if (failed)
        fail();
}

static void eval_heuristic_options(void **state)
{
    (void)state;
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    assert_int_equal(o.heuristic_max_ms, DAY_MS);
    assert_true(o.cdn_cache_control);
    o.heuristic_max_ms = 60000;
    struct tmt_hc_resp r =
        ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0_M5D, "Date: " D0), T0, T0);
    assert_true(r.heuristic);
    assert_int_equal(r.lifetime_ms, 60000);
    o.heuristic_max_ms = 0;
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0_M5D, "Date: " D0), T0, T0);
    assert_int_equal(r.lifetime_ms, 0);
    o.heuristic_max_ms = -5;
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0_M5D, "Date: " D0), T0, T0);
    assert_int_equal(r.lifetime_ms, 0);
    /* the cap does not touch explicit lifetimes */
    o.heuristic_max_ms = 1;
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Cache-Control: max-age=600"), T0, T0);
    assert_int_equal(r.lifetime_ms, 600000);
    /* without Date, Last-Modified is measured from the response time */
    tmt_hc_opts_default(&o);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0), T0 - 1000, T0 + 1000 * 1000);
    assert_int_equal(r.lifetime_ms, 100000);
}

static void eval_no_cache(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE,
                              HS("Cache-Control: no-cache, max-age=100, stale-if-error=60, "
                                 "stale-while-revalidate=60"));
    assert_why(&r, NULL);
    assert_true(r.no_cache);
    assert_int_equal(r.lifetime_ms, 0);
    assert_int_equal(r.swr_ms, -1);
    assert_int_equal(r.sie_ms, -1);
    assert_false(r.must_revalidate);
    r = ev(200, NONE, HS("Cache-Control: no-cache=\"set-cookie\"", "Expires: " D0_P3600));
    assert_why(&r, NULL);
    assert_true(r.no_cache);
    assert_int_equal(r.lifetime_ms, 0);
    r = ev(200, NONE, HS("Cache-Control: max-age=100"));
    assert_false(r.no_cache);
    /* Pragma in a response means nothing (RFC 9111 5.4) */
    r = ev(200, NONE, HS("Cache-Control: max-age=100", "Pragma: no-cache"));
    assert_false(r.no_cache);
    assert_int_equal(r.lifetime_ms, 100000);
}

static void eval_revalidate_and_stale(void **state)
{
    (void)state;
    static const struct {
        const char *cc;
        bool must_revalidate;
        int64_t swr_ms, sie_ms;
    } rows[] = {
        {"Cache-Control: max-age=60, stale-while-revalidate=30, stale-if-error=600", false, 30000,
         600000},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", false, 30000, -1},
        {"Cache-Control: max-age=60, stale-if-error=0", false, -1, 0},
        {"Cache-Control: max-age=60", false, -1, -1},
        {"Cache-Control: max-age=60, stale-if-error=4294967296", false, -1, DMAX * 1000},
        {"Cache-Control: max-age=60, must-revalidate, stale-if-error=600", true, -1, -1},
        {"Cache-Control: max-age=60, proxy-revalidate, stale-while-revalidate=5", true, -1, -1},
        {"Cache-Control: s-maxage=60, stale-while-revalidate=5", true, -1, -1},
        {"Cache-Control: s-maxage=x", true, -1, -1},
        {"Cache-Control: max-age=60, must-revalidate=1", true, -1, -1},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        struct tmt_hc_resp r = ev(200, NONE, HS(rows[i].cc));
        if (!r.storable || r.must_revalidate != rows[i].must_revalidate ||
            r.swr_ms != rows[i].swr_ms || r.sie_ms != rows[i].sie_ms)
            fail_msg("row %zu \"%s\": must_revalidate %d swr %lld sie %lld", i, rows[i].cc,
                     r.must_revalidate, (long long)r.swr_ms, (long long)r.sie_ms);
    }
}

/* ---- age (RFC 9111 4.2.3) ---- */

static void eval_age(void **state)
{
    (void)state;
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    static const struct {
        const char *h[3];
        int64_t request_time_ms, response_time_ms;
        int64_t initial_age_ms;
    } rows[] = {
        /* apparent age 2 s, response delay 2 s */
        {{"Date: " D0}, T0, T0 + 2000, 2000},
        /* Age plus the response delay beats the apparent age */
        {{"Date: " D0, "Age: 100"}, T0, T0 + 1000, 101000},
        {{"Date: " D0, "Age:  100 "}, T0, T0 + 1000, 101000},
        /* apparent age beats a small Age */
        {{"Date: " D0, "Age: 1"}, T0 + 9000, T0 + 10000, 10000},
        /* Date in the future (clock skew): no apparent age */
        {{"Date: " D0_P100}, T0, T0 + 500, 500},
        /* invalid Age is ignored */
        {{"Date: " D0, "Age: abc"}, T0, T0 + 500, 500},
        {{"Date: " D0, "Age: -5"}, T0, T0 + 500, 500},
        {{"Date: " D0, "Age: 10, 20"}, T0, T0 + 500, 500},
        {{"Date: " D0, "Age: 1.5"}, T0, T0 + 500, 500},
        {{"Date: " D0, "Age:"}, T0, T0 + 500, 500},
        /* the first Age line counts */
        {{"Age: 7", "Age: 100"}, T0, T0, 7000},
        {{"Age: x", "Age: 100"}, T0, T0, 0},
        /* huge Age: clamped to 2^31 s */
        {{"Age: 99999999999999999999"}, T0, T0 + 5, DMAX * 1000 + 5},
        /* no Date: apparent age 0 */
        {{"Age: 3"}, T0, T0 + 1, 3001},
        {{"Date: garbage"}, T0, T0 + 1, 1},
        /* request time after response time: no delay */
        {{"Age: 3"}, T0 + 5000, T0, 3000},
        /* a Date far in the past */
        {{"Date: Thu, 01 Jan 1970 00:00:00 GMT"}, T0, T0, T0},
    };
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(rows); i++) {
        const char *lines[4] = {rows[i].h[0], rows[i].h[1], rows[i].h[2], NULL};
        struct tmt_hc_resp r = ev_full(&o, TMT_HTTP_GET, 200, NONE, lines, rows[i].request_time_ms,
                                       rows[i].response_time_ms);
        if (r.initial_age_ms != rows[i].initial_age_ms) {
            print_error("row %zu (%s, %s): initial age %lld want %lld\n", i, rows[i].h[0],
                        rows[i].h[1] ? rows[i].h[1] : "", (long long)r.initial_age_ms,
                        (long long)rows[i].initial_age_ms);
            failed = true;
        }
    }
    if (failed)
        fail();

    /* Extreme times saturate instead of overflowing. */
    struct tmt_hc_resp r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Date: " D0, "Age: 2147483648"),
                                   INT64_MIN, INT64_MAX);
    assert_int_equal(r.initial_age_ms, INT64_MAX);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Date: " D0, "Expires: " D0_P100), INT64_MAX,
                INT64_MIN);
    assert_int_equal(r.initial_age_ms, 0);
    assert_int_equal(r.lifetime_ms, 100000);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0, "Expires: " D_LAST),
                INT64_MIN, INT64_MIN);
    assert_int_equal(r.lifetime_ms, DMAX * 1000);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0), INT64_MAX, INT64_MAX);
    assert_int_equal(r.lifetime_ms, DAY_MS);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE, HS("Last-Modified: " D0), INT64_MIN, INT64_MIN);
    assert_int_equal(r.lifetime_ms, 0);
}

static void eval_dates(void **state)
{
    (void)state;
    struct tmt_hc_resp r = ev(200, NONE,
                              HS("Date: " D0, "Last-Modified: Sunday, 06-Nov-94 08:32:57 GMT",
                                 "Date: " D0_P100, "Last-Modified: " D0));
    assert_int_equal(r.date_ms, T0);
    assert_int_equal(r.last_modified_ms, T0 - 1000000);
    r = ev(200, NONE, HS("Date: Sun Nov  6 08:49:37 1994"));
    assert_int_equal(r.date_ms, T0);
    /* an invalid first line is not replaced by a later valid one */
    r = ev(200, NONE, HS("Date: soon", "Date: " D0, "Last-Modified: never"));
    assert_int_equal(r.date_ms, -1);
    assert_int_equal(r.last_modified_ms, -1);
    /* empty sets */
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    struct tmt_hc_resp e;
    tmt_hc_evaluate(&o, TMT_HTTP_GET, 200, NULL, 0, NULL, 0, T0, T0 + 250, &e);
    assert_true(e.storable);
    assert_null(e.why);
    assert_true(e.heuristic);
    assert_int_equal(e.lifetime_ms, 0);
    assert_int_equal(e.initial_age_ms, 250);
    assert_int_equal(e.date_ms, -1);
    assert_int_equal(e.last_modified_ms, -1);
    assert_int_equal(e.swr_ms, -1);
    assert_int_equal(e.sie_ms, -1);
}

/* ---- CDN-Cache-Control replaces Cache-Control and Expires (RFC 9213) ---- */

static void eval_cdn_cache_control(void **state)
{
    (void)state;
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    struct tmt_hc_resp r =
        ev(200, NONE, HS("Cache-Control: no-store", "CDN-Cache-Control: max-age=600"));
    assert_why(&r, NULL);
    assert_true(r.cdn_cache_control);
    assert_int_equal(r.lifetime_ms, 600000);

    /* switched off: Cache-Control rules */
    o.cdn_cache_control = false;
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE,
                HS("Cache-Control: no-store", "CDN-Cache-Control: max-age=600"), T0, T0);
    assert_why(&r, "no-store");
    assert_false(r.cdn_cache_control);
    r = ev_full(&o, TMT_HTTP_GET, 200, NONE,
                HS("Cache-Control: max-age=5", "CDN-Cache-Control: no-store"), T0, T0);
    assert_why(&r, NULL);
    assert_int_equal(r.lifetime_ms, 5000);

    /* CDN-Cache-Control restricts as well as it allows */
    r = ev(200, NONE, HS("Cache-Control: public, max-age=600", "CDN-Cache-Control: no-store"));
    assert_why(&r, "no-store");
    r = ev(200, NONE, HS("Cache-Control: max-age=600", "CDN-Cache-Control: private"));
    assert_why(&r, "private");
    r = ev(200, NONE, HS("Cache-Control: private", "CDN-Cache-Control: max-age=60"));
    assert_why(&r, NULL);
    r = ev(200, NONE, HS("Cache-Control: max-age=600", "CDN-Cache-Control: no-cache"));
    assert_why(&r, NULL);
    assert_true(r.no_cache);
    assert_int_equal(r.lifetime_ms, 0);
    r = ev(200, NONE, HS("CDN-Cache-Control: s-maxage=30, stale-if-error=60"));
    assert_true(r.must_revalidate);
    assert_int_equal(r.lifetime_ms, 30000);
    assert_int_equal(r.sie_ms, -1);
    r = ev(200, NONE, HS("CDN-Cache-Control: max-age=30, stale-if-error=60"));
    assert_int_equal(r.sie_ms, 60000);

    /* Expires is ignored too: with no freshness in CDN-Cache-Control, heuristics apply */
    r = ev(200, NONE,
           HS("Cache-Control: max-age=10", "Expires: " D0_P3600, "Date: " D0,
              "CDN-Cache-Control: no-transform"));
    assert_why(&r, NULL);
    assert_true(r.heuristic);
    assert_int_equal(r.lifetime_ms, 0);
    r = ev(302, NONE, HS("Expires: " D0_P3600, "Date: " D0, "CDN-Cache-Control: no-transform"));
    assert_why(&r, "no freshness info");
    r = ev(302, NONE, HS("Cache-Control: no-store", "CDN-Cache-Control: public"));
    assert_why(&r, NULL);

    /* several lines merge; one invalid line voids them all */
    r = ev(200, NONE, HS("CDN-Cache-Control: max-age=60", "cdn-cache-control: max-age=30"));
    assert_int_equal(r.lifetime_ms, 30000);
    r = ev(200, NONE,
           HS("Cache-Control: max-age=5", "CDN-Cache-Control: max-age=60",
              "CDN-Cache-Control: Max-Age=1"));
    assert_false(r.cdn_cache_control);
    assert_int_equal(r.lifetime_ms, 5000);
    r = ev(200, NONE,
           HS("Cache-Control: max-age=5", "CDN-Cache-Control: max-age=6x0",
              "CDN-Cache-Control: max-age=60"));
    assert_false(r.cdn_cache_control);
    assert_int_equal(r.lifetime_ms, 5000);
    /* empty: ignored, Cache-Control rules */
    r = ev(200, NONE, HS("Cache-Control: max-age=5", "CDN-Cache-Control:"));
    assert_false(r.cdn_cache_control);
    assert_int_equal(r.lifetime_ms, 5000);
    r = ev(200, NONE, HS("CDN-Cache-Control: ", "Cache-Control: no-store"));
    assert_why(&r, "no-store");
    /* an empty line next to a valid one does not void it */
    r = ev(200, NONE,
           HS("Cache-Control: no-store", "CDN-Cache-Control:", "CDN-Cache-Control: max-age=9"));
    assert_true(r.cdn_cache_control);
    assert_int_equal(r.lifetime_ms, 9000);

    /* request directives and Authorization still apply */
    r = ev(200, HS("Cache-Control: no-store"), HS("CDN-Cache-Control: max-age=60"));
    assert_why(&r, "no-store");
    r = ev(200, HS("Authorization: x"), HS("CDN-Cache-Control: max-age=60"));
    assert_why(&r, "authorization");
    r = ev(200, HS("Authorization: x"),
           HS("Cache-Control: public", "CDN-Cache-Control: max-age=60"));
    assert_why(&r, "authorization");
    r = ev(200, HS("Authorization: x"), HS("CDN-Cache-Control: max-age=60, public"));
    assert_why(&r, NULL);
    r = ev(200, NONE, HS("CDN-Cache-Control: max-age=60", "Vary: *"));
    assert_why(&r, "vary *");
}

static void current_age_and_freshness(void **state)
{
    (void)state;
    assert_int_equal(tmt_hc_current_age_ms(5000, T0, T0), 5000);
    assert_int_equal(tmt_hc_current_age_ms(5000, T0, T0 + 7000), 12000);
    assert_int_equal(tmt_hc_current_age_ms(0, T0, T0 + 1), 1);
    /* the clock went back */
    assert_int_equal(tmt_hc_current_age_ms(5000, T0, T0 - 7000), 5000);
    assert_int_equal(tmt_hc_current_age_ms(-5, T0, T0), 0);
    /* saturation */
    assert_int_equal(tmt_hc_current_age_ms(INT64_MAX, T0, T0 + 1), INT64_MAX);
    assert_int_equal(tmt_hc_current_age_ms(0, INT64_MIN, INT64_MAX), INT64_MAX);
    assert_int_equal(tmt_hc_current_age_ms(0, INT64_MAX, INT64_MIN), 0);

    struct tmt_hc_resp r = ev(200, NONE, HS("Cache-Control: max-age=10"));
    assert_true(tmt_hc_is_fresh(&r, 0));
    assert_true(tmt_hc_is_fresh(&r, 9999));
    assert_false(tmt_hc_is_fresh(&r, 10000));
    assert_false(tmt_hc_is_fresh(&r, INT64_MAX));
    r = ev(200, NONE, HS("Cache-Control: max-age=10, no-cache"));
    assert_false(tmt_hc_is_fresh(&r, 0));

    /* end to end: Age 4 s, one second in flight, then 5 s in the cache: 10 s old, stale */
    r = ev_full(&(struct tmt_hc_opts){DAY_MS, true}, TMT_HTTP_GET, 200, NONE,
                HS("Cache-Control: max-age=10", "Age: 4", "Date: " D0), T0, T0 + 1000);
    int64_t age = tmt_hc_current_age_ms(r.initial_age_ms, T0 + 1000, T0 + 5999);
    assert_int_equal(age, 9999);
    assert_true(tmt_hc_is_fresh(&r, age));
    age = tmt_hc_current_age_ms(r.initial_age_ms, T0 + 1000, T0 + 6000);
    assert_false(tmt_hc_is_fresh(&r, age));
}

/* ---- hop-by-hop, Vary, 304 ---- */

static struct tmt_slice sl(const char *s)
{
    return (struct tmt_slice){s, strlen(s)};
}

static void hop_by_hop(void **state)
{
    (void)state;
    static const char *const fixed[] = {
        "connection",
        "Keep-Alive",
        "PROXY-CONNECTION",
        "te",
        "TE",
        "Trailer",
        "transfer-encoding",
        "Upgrade",
        "Proxy-Authenticate",
        "proxy-authorization",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(fixed); i++) {
        if (!tmt_hc_hop_by_hop(sl(fixed[i]), NULL, 0))
            fail_msg("%s is hop-by-hop", fixed[i]);
    }
    static const char *const end_to_end[] = {
        "content-type",   "Cache-Control", "trailers", "connectionx", "t", "",
        "Content-Length", "Authorization", "Vary",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(end_to_end); i++) {
        if (tmt_hc_hop_by_hop(sl(end_to_end[i]), NULL, 0))
            fail_msg("%s is not hop-by-hop", end_to_end[i]);
    }

    /* names listed in Connection, any case, over several lines */
    struct hset h;
    hset_build(&h, HS("Content-Type: text/plain", "Connection: close, X-Foo , ,x-bar",
                      "connection:  X-Baz", "X-Foo: 1"));
    assert_true(tmt_hc_hop_by_hop(sl("x-foo"), h.h, h.n));
    assert_true(tmt_hc_hop_by_hop(sl("X-FOO"), h.h, h.n));
    assert_true(tmt_hc_hop_by_hop(sl("X-Bar"), h.h, h.n));
    assert_true(tmt_hc_hop_by_hop(sl("x-baz"), h.h, h.n));
    assert_true(tmt_hc_hop_by_hop(sl("close"), h.h, h.n));
    assert_false(tmt_hc_hop_by_hop(sl("x-fo"), h.h, h.n));
    assert_false(tmt_hc_hop_by_hop(sl("x-foo "), h.h, h.n));
    assert_false(tmt_hc_hop_by_hop(sl("content-type"), h.h, h.n));
    assert_false(tmt_hc_hop_by_hop(sl(""), h.h, h.n));
    /* Connection in another field's value does not count */
    hset_build(&h, HS("X-Connection: x-qux", "Keep-Alive: x-qux"));
    assert_false(tmt_hc_hop_by_hop(sl("x-qux"), h.h, h.n));
}

struct vary_case {
    const char *resp[4];
    const char *stored_req[5];
    const char *req[5];
    bool match;
};

static const struct vary_case vary_cases[] = {
    /* no Vary */
    {{"Content-Type: text/plain"}, {"Accept: a"}, {"Accept: b"}, true},
    {{"Vary:"}, {"Accept: a"}, {"Accept: b"}, true},
    /* one field, equal or not */
    {{"Vary: Accept-Language"}, {"Accept-Language: en"}, {"Accept-Language: en"}, true},
    {{"Vary: Accept-Language"}, {"Accept-Language: en"}, {"Accept-Language: fr"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language: en"}, {"Accept-Language: EN"}, false},
    {{"Vary: accept-language"}, {"ACCEPT-LANGUAGE: en"}, {"accept-language: en"}, true},
    /* Accept-Encoding compares case-insensitively */
    {{"Vary: Accept-Encoding"}, {"Accept-Encoding: GZIP, br"}, {"accept-encoding: gzip, BR"}, true},
    {{"Vary: Accept-Encoding"}, {"Accept-Encoding: gzip"}, {"Accept-Encoding: br"}, false},
    /* absent and present */
    {{"Vary: Accept-Language"}, {"Accept: x"}, {"Accept: y"}, true},
    {{"Vary: Accept-Language"}, {"Accept: x"}, {"Accept-Language: en"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language: en"}, {"Accept: x"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language:"}, {"Accept: x"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language:"}, {"Accept-Language: , "}, true},
    /* lines joined by commas, whitespace trimmed, empty elements dropped */
    {{"Vary: Accept-Language"},
     {"Accept-Language: en, fr"},
     {"Accept-Language: en", "Accept-Language: fr"},
     true},
    {{"Vary: Accept-Language"}, {"Accept-Language: en,fr"}, {"Accept-Language:  en ,  fr "}, true},
    {{"Vary: Accept-Language"}, {"Accept-Language: en,,fr,"}, {"Accept-Language: en, fr"}, true},
    {{"Vary: Accept-Language"}, {"Accept-Language: en, fr"}, {"Accept-Language: fr, en"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language: en, fr"}, {"Accept-Language: en"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language: en"}, {"Accept-Language: en, fr"}, false},
    {{"Vary: Accept-Language"}, {"Accept-Language: e n"}, {"Accept-Language: en"}, false},
    {{"Vary: Accept-Language"},
     {"Accept-Language: en", "X: 1", "Accept-Language: fr"},
     {"Accept-Language: en, fr"},
     true},
    /* several fields, over several Vary lines; all must agree */
    {{"Vary: Accept-Encoding, Accept-Language"},
     {"Accept-Encoding: gzip", "Accept-Language: en"},
     {"Accept-Language: en", "Accept-Encoding: gzip"},
     true},
    {{"Vary: Accept-Encoding", "Vary: Accept-Language"},
     {"Accept-Encoding: gzip", "Accept-Language: en"},
     {"Accept-Encoding: gzip", "Accept-Language: de"},
     false},
    {{"Vary: ,Accept-Encoding,, Origin ,"},
     {"Accept-Encoding: gzip", "Origin: https://a"},
     {"Accept-Encoding: gzip", "Origin: https://b"},
     false},
    /* "*" never matches */
    {{"Vary: *"}, {"Accept: a"}, {"Accept: a"}, false},
    {{"Vary: Accept-Encoding", "Vary: *"}, {"Accept: a"}, {"Accept: a"}, false},
    {{"Vary: X-*"}, {"Accept: a"}, {"Accept: a"}, true},
};

static void vary_match(void **state)
{
    (void)state;
    bool failed = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(vary_cases); i++) {
        const struct vary_case *c = &vary_cases[i];
        struct hset rs, sq, rq;
        const char *resp[5] = {c->resp[0], c->resp[1], c->resp[2], c->resp[3], NULL};
        const char *sreq[6] = {c->stored_req[0], c->stored_req[1], c->stored_req[2],
                               c->stored_req[3], c->stored_req[4], NULL};
        const char *req[6] = {c->req[0], c->req[1], c->req[2], c->req[3], c->req[4], NULL};
        hset_build(&rs, resp);
        hset_build(&sq, sreq);
        hset_build(&rq, req);
        bool got = tmt_hc_vary_match(rs.h, rs.n, sq.h, sq.n, rq.h, rq.n);
        /* matching is symmetric */
        bool back = tmt_hc_vary_match(rs.h, rs.n, rq.h, rq.n, sq.h, sq.n);
        if (got != c->match || back != c->match) {
            print_error("vary case %zu (%s / %s / %s): got %d, reversed %d\n", i, c->resp[0],
                        c->stored_req[0], c->req[0], got, back);
            failed = true;
        }
    }
    if (failed)
        fail();
    assert_true(tmt_hc_vary_match(NULL, 0, NULL, 0, NULL, 0));
    struct hset rs;
    hset_build(&rs, HS("Vary: Accept-Encoding"));
    assert_true(tmt_hc_vary_match(rs.h, rs.n, NULL, 0, NULL, 0));
}

static void refresh_304(void **state)
{
    (void)state;
    static const char *const kept[] = {
        "Content-Length",
        "content-length",
        "Content-Encoding",
        "Transfer-Encoding",
        "Content-Range",
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(kept); i++) {
        if (tmt_hc_304_updates(sl(kept[i])))
            fail_msg("a 304's %s must not replace the stored one", kept[i]);
    }
    static const char *const updated[] = {
        "Cache-Control",
        "Expires",
        "Date",
        "ETag",
        "Last-Modified",
        "Age",
        "Vary",
        "Content-Type",
        "Set-Cookie",
        "CDN-Cache-Control",
        "X-Custom",
        "Content-Location",
        "Content-Lengthx",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(updated); i++) {
        if (!tmt_hc_304_updates(sl(updated[i])))
            fail_msg("a 304's %s replaces the stored one", updated[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cc_init_absent),
        cmocka_unit_test(cc_every_directive),
        cmocka_unit_test(cc_syntax),
        cmocka_unit_test(cc_bad_values),
        cmocka_unit_test(cc_clamp),
        cmocka_unit_test(cc_repeated),
        cmocka_unit_test(cc_length_bound),
        cmocka_unit_test(cdn_valid),
        cmocka_unit_test(cdn_invalid),
        cmocka_unit_test(cdn_empty),
        cmocka_unit_test(eval_basic),
        cmocka_unit_test(eval_method),
        cmocka_unit_test(eval_status),
        cmocka_unit_test(eval_no_store),
        cmocka_unit_test(eval_private),
        cmocka_unit_test(eval_authorization),
        cmocka_unit_test(eval_vary),
        cmocka_unit_test(eval_lifetime_precedence),
        cmocka_unit_test(eval_heuristic_options),
        cmocka_unit_test(eval_no_cache),
        cmocka_unit_test(eval_revalidate_and_stale),
        cmocka_unit_test(eval_age),
        cmocka_unit_test(eval_dates),
        cmocka_unit_test(eval_cdn_cache_control),
        cmocka_unit_test(current_age_and_freshness),
        cmocka_unit_test(hop_by_hop),
        cmocka_unit_test(vary_match),
        cmocka_unit_test(refresh_304),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
