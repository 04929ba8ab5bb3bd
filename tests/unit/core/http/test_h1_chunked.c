/*
 * test_h1_chunked.c: the chunked transfer coding decoder (core/http/h1_chunked.c) through h1.h.
 *
 * Table rows give an input, the expected result, the decoded data and how many input bytes the
 * message took. Every row is decoded in one call, split in two at every position, split in three
 * at every pair of positions (for short rows), and fed one byte at a time, each input piece in an
 * exact-size heap copy: all must agree. The limits are tested at their exact boundaries.
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
#include "tmt/h1.h"

#define IN(s) s, sizeof(s) - 1

struct result {
    int rc;
    char *data; /* decoded bytes, malloc'd */
    size_t data_len;
    size_t consumed; /* total input bytes used */
};

/*
 * Decodes in[0..len) cut at the sorted positions cuts[0..n_cuts), each piece in its own
 * exact-size copy, stopping at the first result other than TMT_EAGAIN. Checks the per-call
 * contract on the way: EAGAIN consumes the whole piece, out_len <= consumed <= piece length.
 */
static struct result decode_split(const char *in, size_t len, const size_t *cuts, size_t n_cuts)
{
    struct tmt_h1_chunked d;
    tmt_h1_chunked_init(&d);
    struct result res = {TMT_EAGAIN, malloc(len > 0 ? len : 1), 0, 0};
    assert_non_null(res.data);
    size_t start = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t stop = i < n_cuts ? cuts[i] : len;
        size_t n = stop - start;
        char *piece = malloc(n > 0 ? n : 1);
        assert_non_null(piece);
        memcpy(piece, in + start, n);
        size_t out = 99, used = 99;
        int rc = tmt_h1_chunked_decode(&d, piece, n, &out, &used);
        assert_true(out <= used);
        assert_true(used <= n);
        if (rc == TMT_EAGAIN)
            assert_int_equal(used, n);
        memcpy(res.data + res.data_len, piece, out);
        res.data_len += out;
        res.consumed += used;
        free(piece);
        start = stop;
        res.rc = rc;
        if (rc != TMT_EAGAIN)
            break;
    }
    return res;
}

struct chunk_case {
    const char *in;
    size_t len;
    int rc;
    const char *data; /* for rc 0 and EAGAIN: the decoded bytes */
    size_t data_len;
    size_t consumed; /* for rc 0: input bytes of the message (0: all of it) */
};

#define OK_ROW(s, d)                                                                               \
    {                                                                                              \
        IN(s), 0, IN(d), 0                                                                         \
    }
#define OK_NEXT(s, d, used)                                                                        \
    {                                                                                              \
        IN(s), 0, IN(d), used                                                                      \
    }
#define AGAIN(s, d)                                                                                \
    {                                                                                              \
        IN(s), TMT_EAGAIN, IN(d), 0                                                                \
    }
#define BAD(s)                                                                                     \
    {                                                                                              \
        IN(s), TMT_EINVAL, NULL, 0, 0                                                              \
    }
#define LIMIT(s)                                                                                   \
    {                                                                                              \
        IN(s), TMT_ELIMIT, NULL, 0, 0                                                              \
    }

static const struct chunk_case cases[] = {
    OK_ROW("0\r\n\r\n", ""),
    OK_ROW("5\r\nhello\r\n0\r\n\r\n", "hello"),
    OK_ROW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
    OK_ROW("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"),
    OK_ROW("00005\r\nhello\r\n000\r\n\r\n", "hello"),
    OK_ROW("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n"),
    OK_ROW("3\r\n\x00\xff\x7f\r\n0\r\n\r\n", "\x00\xff\x7f"),
    /* extensions */
    OK_ROW("5;foo=bar\r\nhello\r\n0\r\n\r\n", "hello"),
    OK_ROW("5 ;foo\r\nhello\r\n0;last\r\n\r\n", "hello"),
    OK_ROW("5\t; a=\"x y;z\" ; b\r\nhello\r\n0\r\n\r\n", "hello"),
    OK_ROW("5;\xc3\xa9\r\nhello\r\n0\r\n\r\n", "hello"),
    /* trailers */
    OK_ROW("5\r\nhello\r\n0\r\nX-A: 1\r\nX-B:\t2 \r\n\r\n", "hello"),
    OK_ROW("0\r\nChecksum: abc\r\n\r\n", ""),
    OK_ROW("0\r\nX:\r\n\r\n", ""),
    /* bare LF ends size and trailer lines */
    OK_ROW("5\nhello\r\n0\n\n", "hello"),
    OK_ROW("5;x\nhello\r\n0\nX: 1\nY: 2\r\n\n", "hello"),
    OK_ROW("0\r\n\n", ""),
    /* the next message follows */
    OK_NEXT("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "hello", 15),
    OK_NEXT("0\r\n\r\n0\r\n\r\n", "", 5),
    OK_NEXT("0\n\nX", "", 3),
    /* incomplete */
    AGAIN("", ""),
    AGAIN("5", ""),
    AGAIN("5\r\nhel", "hel"),
    AGAIN("5\r\nhello", "hello"),
    AGAIN("5\r\nhello\r", "hello"),
    AGAIN("5\r\nhello\r\n0\r\n", "hello"),
    AGAIN("5\r\nhello\r\n0\r\nX: 1\r\n", "hello"),
    AGAIN("5\r\nhello\r\n0\r\n\r", "hello"),
    AGAIN("ffffffffffffffff\r\nabc", "abc"),
    AGAIN("0000000000000000000000000000000000000001\r\n", ""),
    /* syntax */
    BAD("\r\n"),
    BAD("g\r\n"),
    BAD("-1\r\n"),
    BAD("+1\r\n"),
    BAD("0x5\r\nhello\r\n0\r\n\r\n"),
    BAD(" 5\r\nhello\r\n"),
    BAD("5 5\r\nhello\r\n"),
    BAD("5x\r\nhello\r\n"),
    BAD("5 x\r\nhello\r\n"),
    BAD("5\rhello\r\n"),
    BAD("5\r\r\nhello\r\n"),
    BAD("5;a\x01\r\nhello\r\n"),
    BAD("5;a\x7f\r\nhello\r\n"),
    BAD("5;a\rb\r\nhello\r\n"),
    BAD("5\r\nhelloX\r\n0\r\n\r\n"),
    BAD("5\r\nhello\n0\r\n\r\n"),
    BAD("5\r\nhello\rX0\r\n\r\n"),
    BAD("5\r\nhello\r\n\r\n"),
    BAD("3\r\nhello\r\n0\r\n\r\n"),
    BAD("0\r\n X: 1\r\n\r\n"),
    BAD("0\r\n\tX: 1\r\n\r\n"),
    BAD("0\r\nX : 1\r\n\r\n"),
    BAD("0\r\n: 1\r\n\r\n"),
    BAD("0\r\nNoColon\r\n\r\n"),
    BAD("0\r\nX(: 1\r\n\r\n"),
    BAD("0\r\nX: a\x00"
        "b\r\n\r\n"),
    BAD("0\r\nX: a\rb\r\n\r\n"),
    BAD("0\r\nX: 1\r\r\n"),
    BAD("0\r\n\rX"),
    BAD("0\r\nX: 1\r\n\rX"),
    /* size limits */
    LIMIT("10000000000000000\r\n"),
    LIMIT("fffffffffffffffff\r\n"),
    LIMIT("00000000000000000000000000000000000000000000000000000000000000001\r\n"),
};

static void check_same(const struct result *a, const struct result *b, size_t row, const char *how)
{
    if (a->rc != b->rc || a->data_len != b->data_len ||
        (a->rc != TMT_EINVAL && a->rc != TMT_ELIMIT && a->consumed != b->consumed))
        fprintf(stderr, "row %zu (%s): rc %d/%d data %zu/%zu consumed %zu/%zu\n", row, how, a->rc,
                b->rc, a->data_len, b->data_len, a->consumed, b->consumed);
    assert_int_equal(a->rc, b->rc);
    if (a->rc == TMT_EINVAL || a->rc == TMT_ELIMIT)
        return;
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->data_len, b->data_len);
    assert_memory_equal(a->data, b->data, a->data_len);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        const struct chunk_case *c = &cases[i];
        struct result one = decode_split(c->in, c->len, NULL, 0);
        if (one.rc != c->rc)
            fprintf(stderr, "row %zu: got %d want %d\n", i, one.rc, c->rc);
        assert_int_equal(one.rc, c->rc);
        if (c->rc == 0 || c->rc == TMT_EAGAIN) {
            size_t n = c->rc == 0 && c->consumed ? c->consumed : c->len;
            assert_int_equal(one.consumed, n);
            assert_int_equal(one.data_len, c->data_len);
            if (c->data_len > 0)
                assert_memory_equal(one.data, c->data, c->data_len);
        }

        /* Every split in two. */
        for (size_t cut = 0; cut <= c->len; cut++) {
            struct result two = decode_split(c->in, c->len, &cut, 1);
            check_same(&one, &two, i, "two pieces");
            free(two.data);
        }
        /* Every split in three, for the shorter rows. */
        if (c->len <= 64) {
            for (size_t a = 0; a <= c->len; a++) {
                for (size_t b = a; b <= c->len; b++) {
                    size_t cuts[2] = {a, b};
                    struct result three = decode_split(c->in, c->len, cuts, 2);
                    check_same(&one, &three, i, "three pieces");
                    free(three.data);
                }
            }
        }
        /* One byte at a time. */
        size_t *cuts = malloc((c->len + 1) * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t k = 0; k < c->len; k++)
            cuts[k] = k + 1;
        struct result bytes = decode_split(c->in, c->len, cuts, c->len > 0 ? c->len - 1 : 0);
        check_same(&one, &bytes, i, "bytes");
        free(bytes.data);
        free(cuts);
        free(one.data);
    }
}

/* A larger body with extensions and trailers, checked at every split against the known data. */
static void test_sample_body_all_splits(void **state)
{
    (void)state;
    static const char in[] = "1a;name=\"va;lue\"\r\n"
                             "abcdefghijklmnopqrstuvwxyz\r\n"
                             "10\r\n"
                             "0123456789ABCDEF\r\n"
                             "3 ; x\r\n"
                             "\r\n\r\r\n"
                             "0;end\r\n"
                             "Expires: never\r\n"
                             "X-Sum:  42\r\n"
                             "\r\n";
    static const char want[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF\r\n\r";
    for (size_t a = 0; a <= sizeof(in) - 1; a++) {
        for (size_t b = a; b <= sizeof(in) - 1; b++) {
            size_t cuts[2] = {a, b};
            struct result r = decode_split(in, sizeof(in) - 1, cuts, 2);
            assert_int_equal(r.rc, 0);
            assert_int_equal(r.consumed, sizeof(in) - 1);
            assert_int_equal(r.data_len, sizeof(want) - 1);
            assert_memory_equal(r.data, want, sizeof(want) - 1);
            free(r.data);
        }
    }
}

/* Data is moved to the front of the caller's buffer, in place. */
static void test_in_place(void **state)
{
    (void)state;
    char buf[] = "3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\nrest";
    struct tmt_h1_chunked d;
    tmt_h1_chunked_init(&d);
    size_t out, used;
    assert_int_equal(tmt_h1_chunked_decode(&d, buf, sizeof(buf) - 1, &out, &used), 0);
    assert_int_equal(out, 5);
    assert_memory_equal(buf, "abcde", 5);
    assert_int_equal(used, sizeof(buf) - 1 - 4);
    assert_memory_equal(buf + used, "rest", 4);
}

static void test_limits(void **state)
{
    (void)state;
    char buf[TMT_H1_TRAILERS_MAX + 64];
    struct result r;

    /* Largest chunk size: 16 digits of f; it starts fine and waits for data. */
    r = decode_split(IN("FFFFFFFFFFFFFFFF\r\n"), NULL, 0);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.data);

    /* Extensions: TMT_H1_CHUNK_EXT_MAX bytes after the size are fine, one more is not. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        buf[n++] = '1';
        buf[n++] = ';';
        memset(buf + n, 'e', TMT_H1_CHUNK_EXT_MAX - 1 + (size_t)extra);
        n += TMT_H1_CHUNK_EXT_MAX - 1 + (size_t)extra;
        memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
        n += 10;
        r = decode_split(buf, n, NULL, 0);
        assert_int_equal(r.rc, extra ? TMT_ELIMIT : 0);
        free(r.data);
        size_t cut = n / 2;
        r = decode_split(buf, n, &cut, 1);
        assert_int_equal(r.rc, extra ? TMT_ELIMIT : 0);
        free(r.data);
    }

    /* Trailers: TMT_H1_TRAILERS_MAX bytes of field lines are fine, one more is not. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        memcpy(buf, "0\r\nX: ", 6);
        n = 6;
        size_t fill = TMT_H1_TRAILERS_MAX - 5 + (size_t)extra; /* "X: ", value, CRLF */
        memset(buf + n, 'v', fill);
        n += fill;
        memcpy(buf + n, "\r\n\r\n", 4);
        n += 4;
        r = decode_split(buf, n, NULL, 0);
        assert_int_equal(r.rc, extra ? TMT_ELIMIT : 0);
        free(r.data);
    }
    /* The limit is per message, over many small lines too. */
    size_t n = 0;
    memcpy(buf, "0\r\n", 3);
    n = 3;
    while (n < TMT_H1_TRAILERS_MAX + 16) {
        memcpy(buf + n, "A: b\r\n", 6);
        n += 6;
    }
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    r = decode_split(buf, n, NULL, 0);
    assert_int_equal(r.rc, TMT_ELIMIT);
    free(r.data);
}

/* After the end the decoder returns 0 and takes nothing; after an error it stays failed. */
static void test_sticky_states(void **state)
{
    (void)state;
    struct tmt_h1_chunked d;
    size_t out, used;
    char done[] = "0\r\n\r\nmore";
    tmt_h1_chunked_init(&d);
    assert_int_equal(tmt_h1_chunked_decode(&d, done, sizeof(done) - 1, &out, &used), 0);
    assert_int_equal(used, 5);
    assert_int_equal(tmt_h1_chunked_decode(&d, done + used, 4, &out, &used), 0);
    assert_int_equal(used, 0);
    assert_int_equal(out, 0);

    char bad[] = "zz";
    tmt_h1_chunked_init(&d);
    assert_int_equal(tmt_h1_chunked_decode(&d, bad, 2, &out, &used), TMT_EINVAL);
    char good[] = "0\r\n\r\n";
    assert_int_equal(tmt_h1_chunked_decode(&d, good, 5, &out, &used), TMT_EINVAL);
    assert_int_equal(used, 0);

    char big[] = "10000000000000000";
    tmt_h1_chunked_init(&d);
    assert_int_equal(tmt_h1_chunked_decode(&d, big, sizeof(big) - 1, &out, &used), TMT_ELIMIT);
    assert_int_equal(tmt_h1_chunked_decode(&d, good, 5, &out, &used), TMT_ELIMIT);

    /* A zeroed decoder is a fresh one, and init resets a used one. */
    struct tmt_h1_chunked z;
    memset(&z, 0, sizeof(z));
    char one[] = "1\r\nq\r\n0\r\n\r\n";
    assert_int_equal(tmt_h1_chunked_decode(&z, one, sizeof(one) - 1, &out, &used), 0);
    assert_int_equal(out, 1);
    tmt_h1_chunked_init(&d);
    char again[] = "1\r\nq\r\n0\r\n\r\n";
    assert_int_equal(tmt_h1_chunked_decode(&d, again, sizeof(again) - 1, &out, &used), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_sample_body_all_splits),
        cmocka_unit_test(test_in_place),      cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sticky_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
