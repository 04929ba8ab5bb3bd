/*
 * Fuzz target: arbitrary bytes as an HTTP/1.1 response head (tmt_h1_parse_response), under a
 * generous and a tight set of limits.
 *
 * Besides memory safety (every parse reads an exact-size heap copy), it checks the contract and
 * aborts on a violation: the result is a length in (0, size] within max_head_bytes, or EAGAIN,
 * EINVAL or ELIMIT with a reason; on success the status is 100..599, every slice lies inside the
 * head, header names are tokens, values carry no CR, LF or NUL, and framing fields agree (chunked
 * excludes a Content-Length; a non-chunked Transfer-Encoding means no keep-alive); parsing
 * exactly the head again gives the same result; and prefixes fed in order with prev_len give
 * EAGAIN until the first final result, which every longer prefix and the whole input share.
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

#define CHECK(cond) FUZZ_CHECK("h1_response", cond)

static const struct tmt_h1_limits limit_sets[] = {
    {.max_head_bytes = 8192, .max_target_len = 0, .max_headers = MAXH},
    {.max_head_bytes = 80, .max_target_len = 0, .max_headers = 2},
};

struct run {
    char *buf;
    size_t len;
    int rc;
    struct tmt_h1_response resp;
    struct tmt_http_header hdrs[MAXH];
};

static void run_parse(struct run *r, const uint8_t *data, size_t len, size_t prev,
                      const struct tmt_h1_limits *lim)
{
    r->buf = fuzz_dup(data, len);
    r->len = len;
    r->rc = tmt_h1_parse_response(r->buf, len, prev, lim, &r->resp, r->hdrs);
}

static void check_result(const struct run *r, const struct tmt_h1_limits *lim)
{
    const struct tmt_h1_response *s = &r->resp;
    if (r->rc <= 0) {
        CHECK(r->rc == TMT_EAGAIN || r->rc == TMT_EINVAL || r->rc == TMT_ELIMIT);
        if (r->rc == TMT_EAGAIN)
            CHECK(r->len <= lim->max_head_bytes);
        else
            CHECK(s->err_reason != NULL && s->err_reason[0] != 0);
        return;
    }
    size_t head = (size_t)r->rc;
    CHECK(head <= r->len && head <= lim->max_head_bytes);
    CHECK(r->buf[head - 1] == '\n');
    CHECK(s->err_reason == NULL);
    CHECK(s->minor_version == 0 || s->minor_version == 1);
    CHECK(s->status >= 100 && s->status <= 599);
    CHECK(s->reason.len == 0 || fuzz_inside(s->reason, r->buf, head));
    for (size_t j = 0; j < s->reason.len; j++)
        CHECK(s->reason.p[j] != '\r' && s->reason.p[j] != '\n' && s->reason.p[j] != 0);
    CHECK(s->headers == r->hdrs && s->n_headers <= lim->max_headers);
    for (size_t i = 0; i < s->n_headers; i++) {
        struct tmt_slice n = r->hdrs[i].name, v = r->hdrs[i].value;
        CHECK(fuzz_inside(n, r->buf, head) && n.len > 0);
        for (size_t j = 0; j < n.len; j++)
            CHECK(fuzz_is_tchar(n.p[j]));
        CHECK(v.len == 0 || fuzz_inside(v, r->buf, head));
        for (size_t j = 0; j < v.len; j++)
            CHECK(v.p[j] != '\r' && v.p[j] != '\n' && v.p[j] != 0);
    }
    CHECK(s->content_length >= -1);
    bool te = tmt_http_header_find(r->hdrs, s->n_headers, "transfer-encoding") != NULL;
    if (s->chunked)
        CHECK(te && s->content_length == -1 && s->minor_version == 1);
    if (te && !s->chunked)
        CHECK(!s->keep_alive && s->content_length == -1);
    if (te)
        CHECK(s->content_length == -1);
}

static bool same_slice(struct tmt_slice a, const struct run *ra, struct tmt_slice b,
                       const struct run *rb)
{
    if (a.len != b.len || (a.p == NULL) != (b.p == NULL))
        return false;
    return a.p == NULL || a.p - ra->buf == b.p - rb->buf;
}

static void check_same(const struct run *a, const struct run *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc == TMT_EINVAL)
        CHECK(strcmp(a->resp.err_reason, b->resp.err_reason) == 0);
    if (a->rc <= 0)
        return;
    const struct tmt_h1_response *x = &a->resp, *y = &b->resp;
    CHECK(x->minor_version == y->minor_version && x->status == y->status);
    CHECK(same_slice(x->reason, a, y->reason, b));
    CHECK(x->n_headers == y->n_headers);
    for (size_t i = 0; i < x->n_headers; i++) {
        CHECK(same_slice(a->hdrs[i].name, a, b->hdrs[i].name, b));
        CHECK(same_slice(a->hdrs[i].value, a, b->hdrs[i].value, b));
    }
    CHECK(x->content_length == y->content_length);
    CHECK(x->chunked == y->chunked && x->keep_alive == y->keep_alive);
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

        /* Prefixes in order with prev_len (meaningful only while earlier calls gave EAGAIN),
         * then fresh: every one for short inputs, a sample otherwise. */
        size_t step = size <= 256 ? 1 : size / 32 + 1, prev = 0;
        struct run final = {.rc = TMT_EAGAIN};
        for (size_t k = 0;; k += step) {
            if (k > size)
                k = size;
            struct run cur;
            run_parse(&cur, data, k, final.rc == TMT_EAGAIN ? prev : 0, lim);
            check_result(&cur, lim);
            if (final.rc == TMT_EAGAIN && cur.rc != TMT_EAGAIN) {
                if (cur.rc > 0 && step == 1)
                    CHECK((size_t)cur.rc == k);
                final = cur;
            } else {
                if (final.rc != TMT_EAGAIN)
                    check_same(&cur, &final);
                free(cur.buf);
            }
            prev = k;
            if (k == size)
                break;
        }
        check_same(&whole, &final);
        free(final.buf);
        free(whole.buf);
    }
    return 0;
}
