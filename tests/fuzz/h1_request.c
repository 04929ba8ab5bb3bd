/*
 * Fuzz target: arbitrary bytes as an HTTP/1.1 request head (tmt_h1_parse_request), under a
 * generous and a tight set of limits.
 *
 * Besides memory safety (every parse reads an exact-size heap copy, so the sanitizers see a read
 * past `len`), it checks the parser's contract and aborts on a violation:
 * - the result is a length in (0, size] and within max_head_bytes, or EAGAIN, EINVAL or ELIMIT
 *   with a status that fits the code and a reason;
 * - on success every slice lies inside the head (the "/" of an absolute-form target without a
 *   path aside), the method and header names are tokens, values carry no CR, LF or NUL and no
 *   outer whitespace, and the framing fields agree with each other;
 * - parsing exactly the head again gives the same result;
 * - every prefix, fed in order with prev_len, gives EAGAIN until the first final result, which
 *   equals a fresh parse of that prefix and is then the result of every longer prefix and of the
 *   whole input, at exactly the head length for a success.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tmt/err.h"
#include "tmt/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXH 32
#define ALL_PREFIXES_MAX 512 /* longer inputs get a sample of prefixes */

#define CHECK(cond) FUZZ_CHECK("h1_request", cond)

static const struct tmt_h1_limits limit_sets[] = {
    {.max_head_bytes = 8192, .max_target_len = 2048, .max_headers = MAXH},
    {.max_head_bytes = 96, .max_target_len = 24, .max_headers = 3},
};

struct run {
    char *buf;
    size_t len;
    int rc;
    struct tmt_h1_request req;
    struct tmt_http_header hdrs[MAXH];
};

static void run_parse(struct run *r, const uint8_t *data, size_t len, size_t prev,
                      const struct tmt_h1_limits *lim)
{
    r->buf = fuzz_dup(data, len);
    r->len = len;
    r->rc = tmt_h1_parse_request(r->buf, len, prev, lim, &r->req, r->hdrs);
}

static void check_result(const struct run *r, const struct tmt_h1_limits *lim)
{
    const struct tmt_h1_request *q = &r->req;
    if (r->rc <= 0) {
        CHECK(r->rc == TMT_EAGAIN || r->rc == TMT_EINVAL || r->rc == TMT_ELIMIT);
        if (r->rc == TMT_EAGAIN)
            CHECK(r->len <= lim->max_head_bytes);
        if (r->rc == TMT_EINVAL)
            CHECK(q->err_status == 400 || q->err_status == 501 || q->err_status == 505);
        if (r->rc == TMT_ELIMIT)
            CHECK(q->err_status == 414 || q->err_status == 431);
        if (r->rc != TMT_EAGAIN)
            CHECK(q->err_reason != NULL && q->err_reason[0] != 0);
        return;
    }
    size_t head = (size_t)r->rc;
    CHECK(head <= r->len && head <= lim->max_head_bytes);
    CHECK(r->buf[head - 1] == '\n');
    CHECK(q->err_status == 0 && q->err_reason == NULL);

    CHECK(fuzz_inside(q->method_name, r->buf, head) && q->method_name.len > 0);
    for (size_t i = 0; i < q->method_name.len; i++)
        CHECK(fuzz_is_tchar(q->method_name.p[i]));
    CHECK(fuzz_inside(q->target, r->buf, head) && q->target.len > 0);
    CHECK(q->target.len <= lim->max_target_len);
    for (size_t i = 0; i < q->target.len; i++)
        CHECK(q->target.p[i] > 0x20 && q->target.p[i] < 0x7f && q->target.p[i] != '#');
    CHECK(fuzz_inside(q->path, q->target.p, q->target.len) ||
          (q->path.len == 1 && q->path.p[0] == '/' && q->target.p[0] != '/'));
    CHECK(q->path.len > 0);
    if (q->query.p == NULL) {
        CHECK(q->query.len == 0);
        CHECK(memchr(q->target.p, '?', q->target.len) == NULL);
    } else {
        CHECK(fuzz_inside(q->query, q->target.p, q->target.len));
        CHECK(q->query.p[-1] == '?');
        CHECK(q->query.p + q->query.len == q->target.p + q->target.len);
    }
    CHECK(q->minor_version == 0 || q->minor_version == 1);

    CHECK(q->headers == r->hdrs && q->n_headers <= lim->max_headers);
    for (size_t i = 0; i < q->n_headers; i++) {
        struct tmt_slice n = r->hdrs[i].name, v = r->hdrs[i].value;
        CHECK(fuzz_inside(n, r->buf, head) && n.len > 0);
        for (size_t j = 0; j < n.len; j++)
            CHECK(fuzz_is_tchar(n.p[j]));
        CHECK(v.len == 0 || fuzz_inside(v, r->buf, head));
        for (size_t j = 0; j < v.len; j++)
            CHECK(v.p[j] != '\r' && v.p[j] != '\n' && v.p[j] != 0);
        if (v.len > 0) {
            CHECK(v.p[0] != ' ' && v.p[0] != '\t');
            CHECK(v.p[v.len - 1] != ' ' && v.p[v.len - 1] != '\t');
        }
    }
    CHECK(q->host.len == 0 || fuzz_inside(q->host, r->buf, head));
    if (q->minor_version == 1)
        CHECK(tmt_http_header_find(r->hdrs, q->n_headers, "host") != NULL);
    CHECK(q->content_length >= -1);
    if (q->chunked)
        CHECK(q->content_length == -1 && q->minor_version == 1);
    if (q->content_length >= 0 || q->chunked)
        CHECK(tmt_http_header_find(r->hdrs, q->n_headers,
                                   q->chunked ? "transfer-encoding" : "content-length") != NULL);
    if (q->expect_continue)
        CHECK(q->minor_version == 1);
}

/* Same slice at the same offset of two copies (or the same constant). */
static bool same_slice(struct tmt_slice a, const struct run *ra, struct tmt_slice b,
                       const struct run *rb)
{
    if (a.len != b.len || (a.p == NULL) != (b.p == NULL))
        return false;
    if (a.p == NULL)
        return true;
    bool ia = fuzz_inside(a, ra->buf, ra->len), ib = fuzz_inside(b, rb->buf, rb->len);
    if (ia != ib)
        return false;
    return ia ? a.p - ra->buf == b.p - rb->buf : a.p == b.p;
}

static void check_same(const struct run *a, const struct run *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc == TMT_EINVAL) {
        CHECK(a->req.err_status == b->req.err_status);
        CHECK(strcmp(a->req.err_reason, b->req.err_reason) == 0);
    }
    if (a->rc <= 0)
        return;
    const struct tmt_h1_request *x = &a->req, *y = &b->req;
    CHECK(x->method == y->method);
    CHECK(same_slice(x->method_name, a, y->method_name, b));
    CHECK(same_slice(x->target, a, y->target, b));
    CHECK(same_slice(x->path, a, y->path, b));
    CHECK(same_slice(x->query, a, y->query, b));
    CHECK(same_slice(x->host, a, y->host, b));
    CHECK(x->minor_version == y->minor_version);
    CHECK(x->n_headers == y->n_headers);
    for (size_t i = 0; i < x->n_headers; i++) {
        CHECK(same_slice(a->hdrs[i].name, a, b->hdrs[i].name, b));
        CHECK(same_slice(a->hdrs[i].value, a, b->hdrs[i].value, b));
    }
    CHECK(x->content_length == y->content_length);
    CHECK(x->chunked == y->chunked);
    CHECK(x->keep_alive == y->keep_alive);
    CHECK(x->expect_continue == y->expect_continue);
}

static void check_prefixes(const uint8_t *data, size_t size, const struct tmt_h1_limits *lim,
                           const struct run *whole)
{
    size_t step = size <= ALL_PREFIXES_MAX ? 1 : size / 64 + 1;
    size_t prev = 0;
    struct run final = {.rc = TMT_EAGAIN};
    for (size_t k = 0;; k += step) {
        if (k > size)
            k = size;
        struct run fresh;
        run_parse(&fresh, data, k, 0, lim);
        check_result(&fresh, lim);
        if (final.rc == TMT_EAGAIN) {
            /* prev_len is only meaningful while the earlier calls gave EAGAIN. */
            struct run inc;
            run_parse(&inc, data, k, prev, lim);
            check_result(&inc, lim);
            check_same(&inc, &fresh);
            if (inc.rc != TMT_EAGAIN) {
                if (inc.rc > 0 && step == 1)
                    CHECK((size_t)inc.rc == k);
                final = inc;
            } else {
                free(inc.buf);
            }
        } else {
            check_same(&fresh, &final);
        }
        free(fresh.buf);
        prev = k;
        if (k == size)
            break;
    }
    check_same(whole, &final);
    free(final.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    for (size_t i = 0; i < sizeof(limit_sets) / sizeof(limit_sets[0]); i++) {
        const struct tmt_h1_limits *lim = &limit_sets[i];
        struct run whole;
        run_parse(&whole, data, size, 0, lim);
        check_result(&whole, lim);
        if (whole.rc > 0) {
            struct run again;
            run_parse(&again, data, (size_t)whole.rc, 0, lim);
            check_same(&whole, &again);
            free(again.buf);
        }
        check_prefixes(data, size, lim, &whole);
        free(whole.buf);
    }
    return 0;
}
