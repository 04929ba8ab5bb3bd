/*
 * test_h1_parse.c: the HTTP/1.1 request and response head parsers (core/http/h1_parse.c) through
 * h1.h.
 *
 * Most rules are table rows: an input, the expected result, and for an error the status and the
 * exact reason, so a row fails when another rule catches the input first. Every row is also fed
 * one byte at a time with prev_len and must give TMT_EAGAIN until it gives the one-shot result,
 * at the one-shot length for a success. Inputs are parsed from exact-size heap copies, so a read
 * past `len` is caught in sanitizer builds. Byte classes are checked against all 256 byte values
 * with sets written out here from the RFC grammar, independently of the parser's table.
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

#define MAXH 16
#define IN(s) s, sizeof(s) - 1

static const struct tmt_h1_limits LIM = {
    .max_head_bytes = 4096, .max_target_len = 1024, .max_headers = MAXH};

/* ---- helpers ---- */

struct req_run {
    char *buf; /* exact-size copy of the input */
    size_t len;
    int rc;
    struct tmt_h1_request req;
    struct tmt_http_header hdrs[MAXH];
};

struct resp_run {
    char *buf;
    size_t len;
    int rc;
    struct tmt_h1_response resp;
    struct tmt_http_header hdrs[MAXH];
};

static char *exact_copy(const char *s, size_t n)
{
    char *b = malloc(n > 0 ? n : 1);
    assert_non_null(b);
    if (n > 0)
        memcpy(b, s, n);
    return b;
}

static void req_run(struct req_run *r, const char *s, size_t n, size_t prev,
                    const struct tmt_h1_limits *lim)
{
    TMT_ASSERT(lim->max_headers <= MAXH);
    r->buf = exact_copy(s, n);
    r->len = n;
    r->rc = tmt_h1_parse_request(r->buf, n, prev, lim, &r->req, r->hdrs);
}

static void resp_run(struct resp_run *r, const char *s, size_t n, size_t prev,
                     const struct tmt_h1_limits *lim)
{
    TMT_ASSERT(lim->max_headers <= MAXH);
    r->buf = exact_copy(s, n);
    r->len = n;
    r->rc = tmt_h1_parse_response(r->buf, n, prev, lim, &r->resp, r->hdrs);
}

static void assert_slice(struct tmt_slice s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || (n > 0 && memcmp(s.p, want, n) != 0)) {
        fprintf(stderr, "slice \"%.*s\" != \"%s\"\n", (int)s.len, s.p ? s.p : "", want);
        fail();
    }
}

static bool inside(struct tmt_slice s, const char *buf, size_t len)
{
    return s.p >= buf && s.p + s.len <= buf + len;
}

/*
 * Two slices from two copies of the same input name the same bytes at the same offset, or are
 * both the same constant (the "/" of an absolute-form target without a path).
 */
#define assert_same_slice(a, ar, b, br)                                                            \
    assert_same_slice_((a), (ar)->buf, (ar)->len, (b), (br)->buf, (br)->len)
static void assert_same_slice_(struct tmt_slice a, const char *abuf, size_t alen,
                               struct tmt_slice b, const char *bbuf, size_t blen)
{
    assert_int_equal(a.len, b.len);
    assert_int_equal(a.p == NULL, b.p == NULL);
    if (a.p == NULL)
        return;
    if (a.len > 0)
        assert_memory_equal(a.p, b.p, a.len);
    assert_int_equal(inside(a, abuf, alen), inside(b, bbuf, blen));
    if (inside(a, abuf, alen))
        assert_int_equal(a.p - abuf, b.p - bbuf);
    else
        assert_ptr_equal(a.p, b.p);
}

static void assert_req_same(const struct req_run *a, const struct req_run *b)
{
    assert_int_equal(a->req.method, b->req.method);
    assert_same_slice(a->req.method_name, a, b->req.method_name, b);
    assert_same_slice(a->req.target, a, b->req.target, b);
    assert_same_slice(a->req.path, a, b->req.path, b);
    assert_same_slice(a->req.query, a, b->req.query, b);
    assert_same_slice(a->req.host, a, b->req.host, b);
    assert_int_equal(a->req.minor_version, b->req.minor_version);
    assert_int_equal(a->req.n_headers, b->req.n_headers);
    for (size_t i = 0; i < a->req.n_headers; i++) {
        assert_same_slice(a->hdrs[i].name, a, b->hdrs[i].name, b);
        assert_same_slice(a->hdrs[i].value, a, b->hdrs[i].value, b);
    }
    assert_int_equal(a->req.content_length, b->req.content_length);
    assert_int_equal(a->req.chunked, b->req.chunked);
    assert_int_equal(a->req.keep_alive, b->req.keep_alive);
    assert_int_equal(a->req.expect_continue, b->req.expect_continue);
}

static void assert_resp_same(const struct resp_run *a, const struct resp_run *b)
{
    assert_int_equal(a->resp.minor_version, b->resp.minor_version);
    assert_int_equal(a->resp.status, b->resp.status);
    assert_same_slice(a->resp.reason, a, b->resp.reason, b);
    assert_int_equal(a->resp.n_headers, b->resp.n_headers);
    for (size_t i = 0; i < a->resp.n_headers; i++) {
        assert_same_slice(a->hdrs[i].name, a, b->hdrs[i].name, b);
        assert_same_slice(a->hdrs[i].value, a, b->hdrs[i].value, b);
    }
    assert_int_equal(a->resp.content_length, b->resp.content_length);
    assert_int_equal(a->resp.chunked, b->resp.chunked);
    assert_int_equal(a->resp.keep_alive, b->resp.keep_alive);
}

/*
 * Feeds in[0..k) for k = 0..len, each call with prev_len = the previous k, and checks each
 * against a fresh parse of the same prefix (prev_len 0): TMT_EAGAIN until the first final result,
 * which must equal the one-shot result `one`, at exactly the head length for a success.
 */
static void check_incremental_req(const char *in, size_t len, const struct tmt_h1_limits *lim,
                                  const struct req_run *one)
{
    size_t prev = 0;
    for (size_t k = 0; k <= len; k++) {
        struct req_run inc, fresh;
        req_run(&inc, in, k, prev, lim);
        req_run(&fresh, in, k, 0, lim);
        assert_int_equal(inc.rc, fresh.rc);
        bool done = inc.rc != TMT_EAGAIN;
        if (done) {
            assert_int_equal(inc.rc, one->rc);
            if (inc.rc > 0) {
                assert_int_equal((size_t)inc.rc, k);
                assert_req_same(&inc, one);
                assert_req_same(&fresh, one);
            } else if (inc.rc == TMT_EINVAL) {
                assert_int_equal(inc.req.err_status, one->req.err_status);
                assert_string_equal(inc.req.err_reason, one->req.err_reason);
            }
        }
        free(inc.buf);
        free(fresh.buf);
        if (done)
            return;
        prev = k;
    }
    assert_int_equal(one->rc, TMT_EAGAIN);
}

static void check_incremental_resp(const char *in, size_t len, const struct tmt_h1_limits *lim,
                                   const struct resp_run *one)
{
    size_t prev = 0;
    for (size_t k = 0; k <= len; k++) {
        struct resp_run inc, fresh;
        resp_run(&inc, in, k, prev, lim);
        resp_run(&fresh, in, k, 0, lim);
        assert_int_equal(inc.rc, fresh.rc);
        bool done = inc.rc != TMT_EAGAIN;
        if (done) {
            assert_int_equal(inc.rc, one->rc);
            if (inc.rc > 0) {
                assert_int_equal((size_t)inc.rc, k);
                assert_resp_same(&inc, one);
            } else {
                assert_string_equal(inc.resp.err_reason, one->resp.err_reason);
            }
        }
        free(inc.buf);
        free(fresh.buf);
        if (done)
            return;
        prev = k;
    }
    assert_int_equal(one->rc, TMT_EAGAIN);
}

/* One-shot parse plus the incremental check; the caller frees r->buf. */
static void parse_req_checked(struct req_run *r, const char *in, size_t len,
                              const struct tmt_h1_limits *lim)
{
    req_run(r, in, len, 0, lim);
    check_incremental_req(in, len, lim, r);
}

static void parse_resp_checked(struct resp_run *r, const char *in, size_t len,
                               const struct tmt_h1_limits *lim)
{
    resp_run(r, in, len, 0, lim);
    check_incremental_resp(in, len, lim, r);
}

static const struct tmt_http_header *find(const struct tmt_http_header *h, size_t n,
                                          const char *name)
{
    return tmt_http_header_find(h, n, name);
}

/* ---- request table ---- */

struct req_case {
    const char *in;
    size_t len;
    int rc;     /* 0: success taking the whole input; else the error */
    int status; /* for errors */
    const char *reason;
};

#define OK_ROW(s)                                                                                  \
    {                                                                                              \
        IN(s), 0, 0, NULL                                                                          \
    }
#define BAD(s, st, why)                                                                            \
    {                                                                                              \
        IN(s), TMT_EINVAL, st, why                                                                 \
    }
#define HOST "Host: a\r\n"
#define GET11 "GET / HTTP/1.1\r\n"
#define POST11 "POST / HTTP/1.1\r\n" HOST

static const struct req_case req_cases[] = {
    /* well-formed */
    OK_ROW(GET11 HOST "\r\n"),
    OK_ROW("GET / HTTP/1.0\r\n\r\n"),
    OK_ROW("GET / HTTP/1.1\nHost: a\n\n"),
    OK_ROW("GET / HTTP/1.1\r\nHost: a\n\r\n"),
    OK_ROW("GET / HTTP/1.1\nHost: a\r\n\n"),
    OK_ROW("\r\n" GET11 HOST "\r\n"),
    OK_ROW("\n\n" GET11 HOST "\r\n"),
    OK_ROW("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" GET11 HOST "\r\n"),
    OK_ROW("OPTIONS * HTTP/1.1\r\n" HOST "\r\n"),
    OK_ROW("GET http://a/b?c HTTP/1.1\r\n" HOST "\r\n"),
    OK_ROW("FOO /x HTTP/1.1\r\n" HOST "\r\n"),
    OK_ROW("GET /~u/a;b=c,d!$&'()*+:@-._ HTTP/1.1\r\n" HOST "\r\n"),
    OK_ROW("GET /a?b?c=/d HTTP/1.1\r\n" HOST "\r\n"),
    OK_ROW(GET11 HOST "X:\r\n\r\n"),
    OK_ROW(GET11 HOST "X: \xff\x80 \xc3\xa9\r\n\r\n"),
    OK_ROW(GET11 HOST "X: a\tb\r\n\r\n"),
    OK_ROW(GET11 HOST "X-Long: 0123456789abcdef0123456789abcdef0123456789\r\n\r\n"),
    OK_ROW(POST11 "Content-Length: 5\r\n\r\n"),
    OK_ROW(POST11 "Content-Length: 5, 5\r\n\r\n"),
    OK_ROW(POST11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n"),
    OK_ROW(POST11 "Content-Length: 9223372036854775807\r\n\r\n"),
    OK_ROW(POST11 "Transfer-Encoding: chunked\r\n\r\n"),
    OK_ROW(POST11 "Transfer-Encoding: Chunked\r\n\r\n"),
    OK_ROW(POST11 "Transfer-Encoding: , chunked ,\r\n\r\n"),
    OK_ROW("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    OK_ROW("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),

    /* before and in the request line */
    BAD("\r\r\n" GET11 HOST "\r\n", 400, "bare CR"),
    BAD("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" GET11 HOST "\r\n", 400,
        "too many empty lines before request"),
    BAD(" GET / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    BAD("G(T / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    BAD("GET\t/ HTTP/1.1\r\n" HOST "\r\n", 400, "invalid method"),
    BAD("GET\r\n" HOST "\r\n", 400, "invalid method"),
    BAD("GET  / HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET / HTTP/1.1 \r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET /a b HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET /\x7f HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET /\x80 HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET /a\x01 HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET /a?b\x7f HTTP/1.1\r\n" HOST "\r\n", 400, "invalid request-target"),
    BAD("GET /a#f HTTP/1.1\r\n" HOST "\r\n", 400, "fragment in request-target"),
    BAD("GET /a?b#f HTTP/1.1\r\n" HOST "\r\n", 400, "fragment in request-target"),
    BAD("GET / HTTP/1.2\r\n" HOST "\r\n", 505, "unsupported HTTP version"),
    BAD("GET / HTTP/2.0\r\n" HOST "\r\n", 505, "unsupported HTTP version"),
    BAD("GET / HTTP/0.9\r\n" HOST "\r\n", 505, "unsupported HTTP version"),
    BAD("GET / HTTP/2.0 \r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET / http/1.1\r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET / HTTP/1.1x\r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET / HTTP/1\r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET / HTTP/11.1\r\n" HOST "\r\n", 400, "invalid request line"),
    BAD("GET / HTTP/1.1\rX\r\n" HOST "\r\n", 400, "bare CR"),
    BAD("GET /\r\n\r\n", 400, "invalid request line"),
    BAD("GET * HTTP/1.1\r\n" HOST "\r\n", 400, "'*' target without OPTIONS"),
    BAD("OPTIONS *x HTTP/1.1\r\n" HOST "\r\n", 400, "unsupported request-target form"),
    BAD("CONNECT a:443 HTTP/1.1\r\n" HOST "\r\n", 400, "unsupported request-target form"),
    BAD("GET ftp://a/ HTTP/1.1\r\n" HOST "\r\n", 400, "unsupported request-target form"),
    BAD("GET ?a HTTP/1.1\r\n" HOST "\r\n", 400, "unsupported request-target form"),
    BAD("GET http:/// HTTP/1.1\r\n" HOST "\r\n", 400, "missing authority in request-target"),
    BAD("GET http://u@a/ HTTP/1.1\r\n" HOST "\r\n", 400, "userinfo in request-target"),
    BAD("GET http://a\"b/ HTTP/1.1\r\n" HOST "\r\n", 400, "invalid authority in request-target"),

    /* field lines */
    BAD(GET11 " " HOST "\r\n", 400, "whitespace before the first header field"),
    BAD(GET11 HOST "X: 1\r\n  folded\r\n\r\n", 400, "obsolete line folding"),
    BAD(GET11 HOST "X: 1\r\n\tfolded\r\n\r\n", 400, "obsolete line folding"),
    BAD(GET11 "Host : a\r\n\r\n", 400, "whitespace between field name and colon"),
    BAD(GET11 "Host\t: a\r\n\r\n", 400, "whitespace between field name and colon"),
    BAD(GET11 HOST "X-A\x01: b\r\n\r\n", 400, "invalid header field name"),
    BAD(GET11 HOST "X(A): b\r\n\r\n", 400, "invalid header field name"),
    BAD(GET11 HOST "NoColon\r\n\r\n", 400, "invalid header field name"),
    BAD(GET11 HOST ": b\r\n\r\n", 400, "empty header field name"),
    BAD(GET11 HOST "X: a\x00"
                   "b\r\n\r\n",
        400, "control character in header field value"),
    BAD(GET11 HOST "X: a\x7f\r\n\r\n", 400, "control character in header field value"),
    BAD(GET11 HOST "X: a\x1b\r\n\r\n", 400, "control character in header field value"),
    BAD(GET11 HOST "X: a\rb\r\n\r\n", 400, "bare CR"),
    BAD(GET11 HOST "X: a\r\r\n\r\n", 400, "bare CR"),
    BAD(GET11 HOST "\rX: a\r\n\r\n", 400, "bare CR"),

    /* Host */
    BAD(GET11 "\r\n", 400, "missing Host"),
    BAD(GET11 "X: a\r\n\r\n", 400, "missing Host"),
    BAD(GET11 HOST HOST "\r\n", 400, "multiple Host fields"),
    BAD(GET11 HOST "Host: b\r\n\r\n", 400, "multiple Host fields"),
    BAD("GET / HTTP/1.0\r\n" HOST HOST "\r\n", 400, "multiple Host fields"),
    BAD(GET11 "Host: a b\r\n\r\n", 400, "invalid Host"),
    BAD(GET11 "Host: a/b\r\n\r\n", 400, "invalid Host"),
    BAD(GET11 "Host: u@a\r\n\r\n", 400, "invalid Host"),
    BAD(GET11 "Host: a\"\r\n\r\n", 400, "invalid Host"),

    /* Content-Length */
    BAD(POST11 "Content-Length: abc\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: +5\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: 0x5\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: 5 5\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length:\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: 5,\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: ,5\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: 5.0\r\n\r\n", 400, "invalid Content-Length"),
    BAD(POST11 "Content-Length: 5, 6\r\n\r\n", 400, "differing Content-Length values"),
    BAD(POST11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
        "differing Content-Length values"),
    BAD(POST11 "Content-Length: 5\r\ncontent-length: 5, 50\r\n\r\n", 400,
        "differing Content-Length values"),
    BAD(POST11 "Content-Length: 9223372036854775808\r\n\r\n", 400, "Content-Length out of range"),
    BAD(POST11 "Content-Length: 99999999999999999999999\r\n\r\n", 400,
        "Content-Length out of range"),

    /* Transfer-Encoding */
    BAD(POST11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
        "both Content-Length and Transfer-Encoding"),
    BAD(POST11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "both Content-Length and Transfer-Encoding"),
    BAD(POST11 "Content-Length: 0\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
        "both Content-Length and Transfer-Encoding"),
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "Transfer-Encoding in an HTTP/1.0 request"),
    BAD(POST11 "Transfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer coding"),
    BAD(POST11 "Transfer-Encoding: identity\r\n\r\n", 501, "unsupported transfer coding"),
    BAD(POST11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported transfer coding"),
    BAD(POST11 "Transfer-Encoding: gzip;q=1, chunked\r\n\r\n", 501, "unsupported transfer coding"),
    BAD(POST11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400,
        "chunked is not the final transfer coding"),
    BAD(POST11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
        "chunked is not the final transfer coding"),
    BAD(POST11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
        "chunked applied more than once"),
    BAD(POST11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "chunked applied more than once"),
    BAD(POST11 "Transfer-Encoding:\r\n\r\n", 400, "invalid Transfer-Encoding"),
    BAD(POST11 "Transfer-Encoding: ,\r\n\r\n", 400, "invalid Transfer-Encoding"),
    BAD(POST11 "Transfer-Encoding: chunked;a=b\r\n\r\n", 400, "invalid Transfer-Encoding"),
    BAD(POST11 "Transfer-Encoding: chunked x\r\n\r\n", 400, "invalid Transfer-Encoding"),
    BAD(POST11 "Transfer-Encoding: \"chunked\"\r\n\r\n", 400, "invalid Transfer-Encoding"),
    BAD(POST11 "Transfer-Encoding: chunked\x0b\r\n\r\n", 400,
        "control character in header field value"),
};

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(req_cases); i++) {
        const struct req_case *c = &req_cases[i];
        struct req_run r;
        req_run(&r, c->in, c->len, 0, &LIM);
        int want = c->rc == 0 ? (int)c->len : c->rc;
        if (r.rc != want || (c->rc != 0 && (r.req.err_status != c->status ||
                                            strcmp(r.req.err_reason, c->reason) != 0))) {
            fprintf(stderr, "row %zu: %.*s\n  got rc %d status %d reason %s\n", i, (int)c->len,
                    c->in, r.rc, r.req.err_status, r.req.err_reason ? r.req.err_reason : "-");
        }
        assert_int_equal(r.rc, want);
        if (c->rc == 0) {
            assert_int_equal(r.req.err_status, 0);
            assert_null(r.req.err_reason);
        } else {
            assert_int_equal(r.req.err_status, c->status);
            assert_string_equal(r.req.err_reason, c->reason);
        }
        check_incremental_req(c->in, c->len, &LIM, &r);
        free(r.buf);
    }
}

/* ---- request fields ---- */

static void test_request_fields(void **state)
{
    (void)state;
    static const char in[] = "GET /a/b?x=1&y HTTP/1.1\r\n"
                             "Host: example.com\r\n"
                             "User-Agent: t \t \r\n"
                             "Accept:\t */*\r\n"
                             "X-Empty:\r\n"
                             "\r\n";
    struct req_run r;
    parse_req_checked(&r, IN(in), &LIM);
    assert_int_equal(r.rc, (int)sizeof(in) - 1);
    assert_int_equal(r.req.method, TMT_HTTP_GET);
    assert_slice(r.req.method_name, "GET");
    assert_slice(r.req.target, "/a/b?x=1&y");
    assert_slice(r.req.path, "/a/b");
    assert_slice(r.req.query, "x=1&y");
    assert_int_equal(r.req.minor_version, 1);
    assert_ptr_equal(r.req.headers, r.hdrs);
    assert_int_equal(r.req.n_headers, 4);
    assert_slice(r.hdrs[0].name, "Host");
    assert_slice(r.hdrs[0].value, "example.com");
    assert_slice(r.hdrs[1].name, "User-Agent");
    assert_slice(r.hdrs[1].value, "t");
    assert_slice(r.hdrs[2].name, "Accept");
    assert_slice(r.hdrs[2].value, "*/*");
    assert_slice(r.hdrs[3].name, "X-Empty");
    assert_slice(r.hdrs[3].value, "");
    assert_slice(r.req.host, "example.com");
    assert_int_equal(r.req.content_length, -1);
    assert_false(r.req.chunked);
    assert_true(r.req.keep_alive);
    assert_false(r.req.expect_continue);
    assert_int_equal(r.req.err_status, 0);
    assert_null(r.req.err_reason);
    free(r.buf);
}

static void test_request_methods(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum tmt_http_method m;
    } cases[] = {
        {"GET", TMT_HTTP_GET},         {"HEAD", TMT_HTTP_HEAD},      {"POST", TMT_HTTP_POST},
        {"PUT", TMT_HTTP_PUT},         {"DELETE", TMT_HTTP_DELETE},  {"PATCH", TMT_HTTP_PATCH},
        {"OPTIONS", TMT_HTTP_OPTIONS}, {"TRACE", TMT_HTTP_TRACE},    {"get", TMT_HTTP_OTHER},
        {"PURGE", TMT_HTTP_OTHER},     {"M-SEARCH", TMT_HTTP_OTHER},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        char in[128];
        int n = snprintf(in, sizeof(in), "%s /x HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].name);
        struct req_run r;
        req_run(&r, in, (size_t)n, 0, &LIM);
        assert_int_equal(r.rc, n);
        assert_int_equal(r.req.method, cases[i].m);
        assert_slice(r.req.method_name, cases[i].name);
        free(r.buf);
    }
}

static void test_request_targets(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *path, *query, *host; /* query NULL: no '?' */
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "/", NULL, "h"},
        {"GET /? HTTP/1.1\r\nHost: h\r\n\r\n", "/", "", "h"},
        {"GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", "/a", "b?c", "h"},
        {"GET //a HTTP/1.1\r\nHost: h\r\n\r\n", "//a", NULL, "h"},
        {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", NULL, "h"},
        {"GET http://Example.com:8080/p?q HTTP/1.1\r\nHost: h\r\n\r\n", "/p", "q",
         "Example.com:8080"},
        {"GET HTTPS://e/ HTTP/1.1\r\nHost: h\r\n\r\n", "/", NULL, "e"},
        {"GET http://e HTTP/1.1\r\nHost: h\r\n\r\n", "/", NULL, "e"},
        {"GET http://e?x HTTP/1.1\r\nHost: h\r\n\r\n", "/", "x", "e"},
        {"GET http://[::1]:80/a HTTP/1.1\r\nHost: h\r\n\r\n", "/a", NULL, "[::1]:80"},
        {"GET http://e/ HTTP/1.0\r\n\r\n", "/", NULL, "e"},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        struct req_run r;
        parse_req_checked(&r, cases[i].in, strlen(cases[i].in), &LIM);
        assert_int_equal(r.rc, (int)strlen(cases[i].in));
        assert_slice(r.req.path, cases[i].path);
        if (cases[i].query == NULL) {
            assert_null(r.req.query.p);
            assert_int_equal(r.req.query.len, 0);
        } else {
            assert_slice(r.req.query, cases[i].query);
        }
        assert_slice(r.req.host, cases[i].host);
        /* The target is always the bytes as sent. */
        const char *sp = strchr(cases[i].in, ' ');
        assert_ptr_equal(r.req.target.p, r.buf + (sp + 1 - cases[i].in));
        free(r.buf);
    }
}

static void test_request_content_length(void **state)
{
    (void)state;
    static const struct {
        const char *fields;
        int64_t want;
    } cases[] = {
        {"Content-Length: 0\r\n", 0},
        {"Content-Length: 42\r\n", 42},
        {"Content-Length: 007\r\n", 7},
        {"Content-Length: 42 , 42,42\r\n", 42},
        {"Content-Length: 42\r\nX: y\r\ncontent-length: 42\r\n", 42},
        {"Content-Length: 9223372036854775807\r\n", INT64_MAX},
        {"", -1},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        char in[256];
        int n = snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", cases[i].fields);
        struct req_run r;
        req_run(&r, in, (size_t)n, 0, &LIM);
        assert_int_equal(r.rc, n);
        assert_int_equal(r.req.content_length, cases[i].want);
        assert_false(r.req.chunked);
        free(r.buf);
    }
}

static void test_request_chunked(void **state)
{
    (void)state;
    static const char in[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct req_run r;
    req_run(&r, IN(in), 0, &LIM);
    assert_int_equal(r.rc, (int)sizeof(in) - 1);
    assert_true(r.req.chunked);
    assert_int_equal(r.req.content_length, -1);
    free(r.buf);
}

static void test_request_keep_alive_expect(void **state)
{
    (void)state;
    static const struct {
        const char *version;
        const char *fields;
        bool keep_alive, expect;
    } cases[] = {
        {"1.1", "", true, false},
        {"1.1", "Connection: close\r\n", false, false},
        {"1.1", "Connection: Close\r\n", false, false},
        {"1.1", "Connection: keep-alive, close\r\n", false, false},
        {"1.1", "Connection: foo,  CLOSE \r\n", false, false},
        {"1.1", "Connection: keep-alive\r\nConnection: close\r\n", false, false},
        {"1.1", "Connection: closed\r\n", true, false},
        {"1.1", "Connection: upgrade\r\n", true, false},
        {"1.0", "", false, false},
        {"1.0", "Connection: keep-alive\r\n", true, false},
        {"1.0", "Connection: Keep-Alive\r\n", true, false},
        {"1.0", "Connection: x, keep-alive\r\n", true, false},
        {"1.0", "Connection: keep-alive, close\r\n", false, false},
        {"1.1", "Expect: 100-continue\r\n", true, true},
        {"1.1", "Expect: 100-Continue \r\n", true, true},
        {"1.1", "Expect: 200-ok\r\n", true, false},
        {"1.0", "Expect: 100-continue\r\n", false, false},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        char in[256];
        int n = snprintf(in, sizeof(in), "GET / HTTP/%s\r\nHost: h\r\n%s\r\n", cases[i].version,
                         cases[i].fields);
        struct req_run r;
        req_run(&r, in, (size_t)n, 0, &LIM);
        assert_int_equal(r.rc, n);
        if (r.req.keep_alive != cases[i].keep_alive || r.req.expect_continue != cases[i].expect)
            fprintf(stderr, "row %zu: %s", i, in);
        assert_int_equal(r.req.keep_alive, cases[i].keep_alive);
        assert_int_equal(r.req.expect_continue, cases[i].expect);
        free(r.buf);
    }
}

/* ---- byte classes, against sets written out from the RFC grammar ---- */

static const char TCHAR[] = "!#$%&'*+-.^_`|~0123456789"
                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

static bool in_set(int c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

/* Parses `tmpl` with its one 'Z' replaced by byte c. */
static int parse_with_byte(const char *tmpl, int c, struct req_run *r)
{
    char in[128];
    size_t n = strlen(tmpl);
    TMT_ASSERT(n < sizeof(in));
    memcpy(in, tmpl, n);
    char *z = memchr(in, 'Z', n);
    TMT_ASSERT(z != NULL);
    *z = (char)c;
    req_run(r, in, n, 0, &LIM);
    return (int)n;
}

static void test_byte_classes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        struct req_run r;
        bool tchar = in_set(c, TCHAR);
        bool vchar = c >= 0x21 && c <= 0x7e;
        bool value = c == '\t' || c == ' ' || vchar || c >= 0x80;
        bool host = in_set(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "-._~%!$&'()*+,;=:[]");

        int n = parse_with_byte("GZT / HTTP/1.1\r\nHost: h\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, tchar);
        if (r.rc > 0)
            assert_int_equal(r.rc, n);
        free(r.buf);

        n = parse_with_byte("GET /aZb HTTP/1.1\r\nHost: h\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, vchar && c != '#');
        free(r.buf);

        n = parse_with_byte("GET /a?Z HTTP/1.1\r\nHost: h\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, vchar && c != '#');
        free(r.buf);

        n = parse_with_byte("GET / HTTP/1.1\r\nHost: h\r\nXZY: v\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, tchar || c == ':'); /* "X:Y: v" is X with value "Y: v" */
        free(r.buf);

        n = parse_with_byte("GET / HTTP/1.1\r\nHost: h\r\nX: aZb\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, value);
        if (r.rc > 0)
            assert_int_equal(r.hdrs[1].value.len, 3);
        free(r.buf);

        /* A value long enough for the 8-byte scan, with the byte in each lane. */
        for (int at = 0; at < 16; at++) {
            char in[128];
            char v[17];
            memset(v, 'v', 16);
            v[16] = 0;
            v[at] = 'Z';
            n = snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: h\r\nX: a%sb\r\n\r\n", v);
            char *z = memchr(in, 'Z', (size_t)n);
            *z = (char)c;
            req_run(&r, in, (size_t)n, 0, &LIM);
            assert_int_equal(r.rc > 0, value);
            if (r.rc > 0)
                assert_int_equal(r.hdrs[1].value.len, 18);
            free(r.buf);
        }

        n = parse_with_byte("GET / HTTP/1.1\r\nHost: aZb\r\n\r\n", c, &r);
        assert_int_equal(r.rc > 0, host);
        free(r.buf);
        (void)n;
    }
}

/* ---- limits ---- */

static void test_request_limits(void **state)
{
    (void)state;
    static const char three[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    struct tmt_h1_limits lim = {.max_head_bytes = 4096, .max_target_len = 64, .max_headers = 3};
    struct req_run r;

    parse_req_checked(&r, IN(three), &lim);
    assert_int_equal(r.rc, (int)sizeof(three) - 1);
    free(r.buf);
    lim.max_headers = 2;
    parse_req_checked(&r, IN(three), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 431);
    assert_string_equal(r.req.err_reason, "too many header fields");
    free(r.buf);
    lim.max_headers = 0;
    parse_req_checked(&r, IN("GET / HTTP/1.0\r\n\r\n"), &lim);
    assert_int_equal(r.rc, 18);
    free(r.buf);
    parse_req_checked(&r, IN("GET / HTTP/1.0\r\nA: 1\r\n\r\n"), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 431);
    free(r.buf);

    /* Head exactly max_head_bytes long, then one byte over (complete or not). */
    lim = (struct tmt_h1_limits){sizeof(three) - 1, 64, 8};
    parse_req_checked(&r, IN(three), &lim);
    assert_int_equal(r.rc, (int)sizeof(three) - 1);
    free(r.buf);
    lim.max_head_bytes--;
    parse_req_checked(&r, IN(three), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 431);
    assert_string_equal(r.req.err_reason, "request head too large");
    free(r.buf);
    req_run(&r, three, lim.max_head_bytes, 0, &lim);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);

    /* Leading empty lines count toward the head. */
    static const char lead[] = "\r\n\r\nGET / HTTP/1.0\r\n\r\n";
    lim = (struct tmt_h1_limits){sizeof(lead) - 1, 64, 8};
    parse_req_checked(&r, IN(lead), &lim);
    assert_int_equal(r.rc, (int)sizeof(lead) - 1);
    assert_ptr_equal(r.req.method_name.p, r.buf + 4);
    free(r.buf);
    lim.max_head_bytes--;
    parse_req_checked(&r, IN(lead), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    free(r.buf);

    /* An unfinished request line past max_head_bytes: 414 if longer than max_target_len. */
    char line[300];
    memcpy(line, "GET /", 5);
    memset(line + 5, 'a', sizeof(line) - 5);
    lim = (struct tmt_h1_limits){.max_head_bytes = 200, .max_target_len = 100, .max_headers = 8};
    req_run(&r, line, 200, 0, &lim);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);
    parse_req_checked(&r, line, sizeof(line), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 414);
    assert_string_equal(r.req.err_reason, "request line too long");
    free(r.buf);
    lim.max_target_len = 200;
    req_run(&r, line, sizeof(line), 0, &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 431);
    free(r.buf);

    /* Finished request line, unfinished headers past the limit: 431. */
    char big[300];
    static const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    memcpy(big, start, sizeof(start) - 1);
    memset(big + sizeof(start) - 1, 'x', sizeof(big) - (sizeof(start) - 1));
    lim = (struct tmt_h1_limits){.max_head_bytes = 200, .max_target_len = 1, .max_headers = 8};
    parse_req_checked(&r, big, sizeof(big), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 431);
    assert_string_equal(r.req.err_reason, "request head too large");
    free(r.buf);

    /* A complete target: max_target_len itself is fine, one more is 414. */
    static const char t10[] = "GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
    lim = (struct tmt_h1_limits){.max_head_bytes = 4096, .max_target_len = 10, .max_headers = 8};
    parse_req_checked(&r, IN(t10), &lim);
    assert_int_equal(r.rc, (int)sizeof(t10) - 1);
    free(r.buf);
    lim.max_target_len = 9;
    parse_req_checked(&r, IN(t10), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_int_equal(r.req.err_status, 414);
    assert_string_equal(r.req.err_reason, "request-target too long");
    free(r.buf);

    /* Nothing, or only empty lines, within the limit: wait. */
    req_run(&r, "", 0, 0, &LIM);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);
    req_run(&r, IN("\r\n\r\n\r"), 0, &LIM);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);
}

/* ---- pipelining and prev_len ---- */

static void test_request_pipelined(void **state)
{
    (void)state;
    static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
    const size_t first = 28;
    struct req_run r;
    parse_req_checked(&r, IN(two), &LIM);
    assert_int_equal(r.rc, (int)first);
    assert_slice(r.req.path, "/a");
    assert_true(r.req.keep_alive);
    struct req_run r2;
    parse_req_checked(&r2, two + first, sizeof(two) - 1 - first, &LIM);
    assert_int_equal(r2.rc, (int)(sizeof(two) - 1 - first));
    assert_slice(r2.req.path, "/b");
    assert_slice(r2.req.host, "b");
    assert_false(r2.req.keep_alive);
    free(r.buf);
    free(r2.buf);

    /* A body between two heads: the head length excludes it. */
    static const char body[] = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                               "GET /g HTTP/1.1\r\nHost: a\r\n\r\n";
    parse_req_checked(&r, IN(body), &LIM);
    assert_int_equal(r.rc, 48);
    assert_int_equal(r.req.content_length, 5);
    size_t next = (size_t)r.rc + 5;
    parse_req_checked(&r2, body + next, sizeof(body) - 1 - next, &LIM);
    assert_int_equal(r2.rc, (int)(sizeof(body) - 1 - next));
    assert_slice(r2.req.path, "/g");
    free(r.buf);
    free(r2.buf);

    /* A second head that is only partly there does not disturb the first. */
    parse_req_checked(&r, two, first + 7, &LIM);
    assert_int_equal(r.rc, (int)first);
    free(r.buf);

    /* An extra CRLF after a body, as old clients send, is skipped before the next request. */
    static const char extra[] = "\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n";
    parse_req_checked(&r, IN(extra), &LIM);
    assert_int_equal(r.rc, (int)sizeof(extra) - 1);
    free(r.buf);
}

static void test_request_prev_len(void **state)
{
    (void)state;
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nXXXX";
    const size_t head = sizeof(in) - 1 - 4;
    struct req_run r;

    /* The terminator lies before prev_len - 3: a parser that rescans would find it; this one
     * trusts prev_len and only looks at the new bytes, so it must not. */
    req_run(&r, IN(in), sizeof(in) - 1, &LIM);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);

    /* Each split of the terminator is found from prev_len - 3 on. */
    for (size_t prev = head - 4; prev < head; prev++) {
        req_run(&r, in, head, prev, &LIM);
        assert_int_equal(r.rc, (int)head);
        free(r.buf);
    }
    /* A prev_len past len means nothing was seen. */
    req_run(&r, in, head, head + 100, &LIM);
    assert_int_equal(r.rc, (int)head);
    free(r.buf);
}

/* ---- responses ---- */

struct resp_case {
    const char *in;
    size_t len;
    int rc; /* 0: success taking the whole input */
    int status;
    const char *reason; /* expected reason phrase on success, err_reason on error */
    int64_t content_length;
    bool chunked, keep_alive;
};

#define RESP_OK(s, st, why, cl, ch, ka)                                                            \
    {                                                                                              \
        IN(s), 0, st, why, cl, ch, ka                                                              \
    }
#define RESP_BAD(s, why)                                                                           \
    {                                                                                              \
        IN(s), TMT_EINVAL, 0, why, 0, false, false                                                 \
    }

static const struct resp_case resp_cases[] = {
    RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, "OK", 5, false, true),
    RESP_OK("HTTP/1.1 404 Not Found\r\n\r\n", 404, "Not Found", -1, false, true),
    RESP_OK("HTTP/1.1 204 \r\n\r\n", 204, "", -1, false, true),
    RESP_OK("HTTP/1.1 204\r\n\r\n", 204, "", -1, false, true),
    RESP_OK("HTTP/1.1 304\nETag: \"x\"\n\n", 304, "", -1, false, true),
    RESP_OK("HTTP/1.1 200 \xc3\xa9t\xc3\xa9\t!\r\n\r\n", 200, "\xc3\xa9t\xc3\xa9\t!", -1, false,
            true),
    RESP_OK("HTTP/1.1 100 Continue\r\n\r\n", 100, "Continue", -1, false, true),
    RESP_OK("HTTP/1.1 599 x\r\n\r\n", 599, "x", -1, false, true),
    RESP_OK("HTTP/1.0 200 OK\r\n\r\n", 200, "OK", -1, false, false),
    RESP_OK("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 200, "OK", -1, false, true),
    RESP_OK("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", 200, "OK", 1,
            false, false),
    RESP_OK("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", 200, "OK", 3, false, true),
    RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, "OK", -1, true, true),
    RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 200, "OK", -1, true,
            true),
    RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 200, "OK", -1, false, false),
    RESP_OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 200, "OK", -1, false,
            false),
    RESP_OK("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b c\r\n\r\n", 200, "OK", -1, false, true),

    RESP_BAD("HTTP/1.1 099 x\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/1.1 600 x\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/1.1 2x0 OK\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/1.1 20 OK\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"),
    RESP_BAD("HTTP/1.1  200 OK\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/1.1\t200 OK\r\n\r\n", "invalid status line"),
    RESP_BAD("HTTP/1.1 20\r\n\r\n", "invalid status code"),
    RESP_BAD("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"),
    RESP_BAD("HTTP/1.2 200 OK\r\n\r\n", "unsupported HTTP version"),
    RESP_BAD("http/1.1 200 OK\r\n\r\n", "invalid status line"),
    RESP_BAD("ICY 200 OK\r\n\r\n", "invalid status line"),
    RESP_BAD("\r\nHTTP/1.1 200 OK\r\n\r\n", "invalid status line"),
    RESP_BAD("HTTP/1.1 200 O\x01K\r\n\r\n", "control character in reason phrase"),
    RESP_BAD("HTTP/1.1 200 OK\x7f\r\n\r\n", "control character in reason phrase"),
    RESP_BAD("HTTP/1.1 200 OK\rX\r\n\r\n", "bare CR"),
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
             "both Content-Length and Transfer-Encoding"),
    RESP_BAD("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             "Transfer-Encoding in an HTTP/1.0 response"),
    RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
             "chunked applied more than once"),
    RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", "invalid Transfer-Encoding"),
    RESP_BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x\r\n\r\n",
             "invalid Transfer-Encoding"),
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
             "differing Content-Length values"),
    RESP_BAD("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "invalid Content-Length"),
    RESP_BAD("HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n", "obsolete line folding"),
    RESP_BAD("HTTP/1.1 200 OK\r\nX : 1\r\n\r\n", "whitespace between field name and colon"),
    RESP_BAD("HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n", "control character in header field value"),
};

static void test_response_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(resp_cases); i++) {
        const struct resp_case *c = &resp_cases[i];
        struct resp_run r;
        parse_resp_checked(&r, c->in, c->len, &LIM);
        int want = c->rc == 0 ? (int)c->len : c->rc;
        if (r.rc != want)
            fprintf(stderr, "row %zu: %.*s  got %d (%s)\n", i, (int)c->len, c->in, r.rc,
                    r.resp.err_reason ? r.resp.err_reason : "-");
        assert_int_equal(r.rc, want);
        if (c->rc == 0) {
            assert_null(r.resp.err_reason);
            assert_int_equal(r.resp.status, c->status);
            assert_slice(r.resp.reason, c->reason);
            assert_int_equal(r.resp.content_length, c->content_length);
            assert_int_equal(r.resp.chunked, c->chunked);
            assert_int_equal(r.resp.keep_alive, c->keep_alive);
            assert_ptr_equal(r.resp.headers, r.hdrs);
        } else {
            assert_string_equal(r.resp.err_reason, c->reason);
        }
        free(r.buf);
    }
}

static void test_response_fields_and_limits(void **state)
{
    (void)state;
    static const char in[] = "HTTP/1.1 206 Partial Content\r\n"
                             "Content-Range: bytes 0-1/10\r\n"
                             "Content-Length: 2\r\n"
                             "\r\n"
                             "ab";
    struct resp_run r;
    parse_resp_checked(&r, IN(in), &LIM);
    assert_int_equal(r.rc, (int)sizeof(in) - 3);
    assert_int_equal(r.resp.minor_version, 1);
    assert_int_equal(r.resp.n_headers, 2);
    assert_slice(r.hdrs[0].name, "Content-Range");
    assert_slice(r.hdrs[0].value, "bytes 0-1/10");
    assert_non_null(find(r.hdrs, r.resp.n_headers, "content-length"));
    free(r.buf);

    struct tmt_h1_limits lim = {.max_head_bytes = 4096, .max_target_len = 8, .max_headers = 1};
    parse_resp_checked(&r, IN(in), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_string_equal(r.resp.err_reason, "too many header fields");
    free(r.buf);

    lim = (struct tmt_h1_limits){.max_head_bytes = sizeof(in) - 3, .max_headers = 8};
    parse_resp_checked(&r, IN(in), &lim);
    assert_int_equal(r.rc, (int)sizeof(in) - 3);
    free(r.buf);
    lim.max_head_bytes--;
    parse_resp_checked(&r, IN(in), &lim);
    assert_int_equal(r.rc, TMT_ELIMIT);
    assert_string_equal(r.resp.err_reason, "response head too large");
    free(r.buf);
    resp_run(&r, in, lim.max_head_bytes, 0, &lim);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);

    /* The no-rescan fast path, as for requests. */
    resp_run(&r, IN(in), sizeof(in) - 1, &LIM);
    assert_int_equal(r.rc, TMT_EAGAIN);
    free(r.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_methods),
        cmocka_unit_test(test_request_targets),
        cmocka_unit_test(test_request_content_length),
        cmocka_unit_test(test_request_chunked),
        cmocka_unit_test(test_request_keep_alive_expect),
        cmocka_unit_test(test_byte_classes),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_request_prev_len),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_fields_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
