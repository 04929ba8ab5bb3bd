/*
 * h1_parse.c: HTTP/1.1 request and response heads (RFC 9112 sections 2-6), as declared in h1.h.
 *
 * Every scan is bounded by an LF that is known to be there: a head ends with LF and no byte class
 * below contains LF, so the scanning loops need no bounds check, each stopping at that LF at the
 * latest. Field values are skipped 8 bytes at a time while no byte is a control byte.
 *
 * Two ways in. A first call (prev_len 0) whose data ends with LF, the usual case of a head that
 * arrived in one read, is parsed in one pass bounded by that LF; the parser finds the end of the
 * head on the way, and only a success is taken from this pass. Otherwise (and after any other
 * outcome of that pass) the end of the head is searched first: the first LF followed by an
 * optional CR and an LF, with memchr, only in the bytes an earlier call has not seen (from
 * prev_len - 3, so a terminator split across calls is still found) and only within
 * max_head_bytes; a found head is then parsed once. Both ways give the same result for the same
 * bytes, which the fuzz target checks.
 *
 * Invariants: the returned length is the exact head length, leading empty lines included, and
 * never more than max_head_bytes; every slice handed out lies inside buf[0..returned length),
 * except the path of an absolute-form target without one, which is the constant "/"; on error,
 * err_reason (and err_status for requests) are set and the other fields must not be used.
 * Nothing is allocated and buf is never written.
 *
 * Decisions (where the RFC leaves a choice):
 * - Up to H1_EMPTY_LINES_MAX empty lines before a request line are skipped (RFC 9112 section 2.2)
 *   and counted in the returned length; more is 400. A response gets no such leniency.
 * - A bare LF ends any line; a CR not followed by LF is 400.
 * - Request-target: origin-form; "*" with OPTIONS only; absolute-form with an http or https
 *   scheme, whose authority replaces Host in req->host (RFC 9112 section 3.2.2) and must carry no
 *   userinfo. Authority-form (CONNECT host:port) is refused with 400: nothing here tunnels. A
 *   fragment ('#') is refused, being no part of any request-target form.
 * - Versions: HTTP/1.0 and HTTP/1.1 only; any other well-formed HTTP/x.y is 505 for a request.
 * - Transfer-Encoding in a request: chunked listed twice, or not last, is 400; any other coding
 *   is 501, since none is decoded here. Empty list elements (", chunked") are skipped as RFC 9110
 *   section 5.6.1 asks. In a response, framing only is decided: chunked last means chunked,
 *   anything else means the body runs to the connection's close.
 * - Host is checked against the authority grammar's bytes (a value with '/', '@' or spaces is
 *   400); an empty Host is valid and leaves host.len 0. Expect: 100-continue is ignored in an
 *   HTTP/1.0 request (RFC 9110 section 10.1.1).
 */
#include "tmt/h1.h"

#include <limits.h>
#include <string.h>

#include "h1_int.h"
#include "tmt/err.h"

#define H1_EMPTY_LINES_MAX 8

/* clang-format off */
const uint8_t tmt_h1_char_class[256] = {
    /* 0x00 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x08 */ 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x10 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x18 */ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    /* 0x20 */ 0x08, 0x1f, 0x0e, 0x09, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x28 */ 0x1e, 0x1e, 0x1f, 0x1f, 0x1e, 0x1f, 0x1f, 0x0e,
    /* 0x30 */ 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x38 */ 0x1f, 0x1f, 0x1e, 0x1e, 0x0e, 0x1e, 0x0e, 0x0c,
    /* 0x40 */ 0x0e, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x48 */ 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x50 */ 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x58 */ 0x1f, 0x1f, 0x1f, 0x1e, 0x0e, 0x1e, 0x0f, 0x1f,
    /* 0x60 */ 0x0f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x68 */ 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x70 */ 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,
    /* 0x78 */ 0x1f, 0x1f, 0x1f, 0x0e, 0x0f, 0x0e, 0x1f, 0x00,
    /* 0x80 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0x88 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0x90 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0x98 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xa0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xa8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xb0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xb8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xc0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xc8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xd0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xd8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xe0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xe8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xf0 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
    /* 0xf8 */ 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08, 0x08,
};
/* clang-format on */

#define CLS(c) tmt_h1_char_class[(unsigned char)(c)]

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Compares n bytes of a token (header name, coding) with a lowercase literal made of letters and
 * '-'. OR-ing 0x20 lowercases letters; on token bytes it maps no other byte onto a lowercase
 * letter or '-', so the comparison is exact.
 */
static inline bool token_is(const char *p, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((char)(p[i] | 0x20) != lower[i])
            return false;
    }
    return true;
}

/* ASCII case-insensitive comparison with a lowercase literal, for any bytes (cold paths). */
static bool bytes_ieq(const char *p, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != lower[i])
            return false;
    }
    return true;
}

/*
 * The offset just past the first empty line whose LF starts in buf[from..lim), or 0 when the
 * window holds none. An empty line is LF LF or LF CR LF: the previous line's end and the blank.
 */
static size_t find_head_end(const char *buf, size_t from, size_t lim)
{
    const char *p = buf + from, *e = buf + lim;
    while (p < e) {
        const char *lf = memchr(p, '\n', (size_t)(e - p));
        if (lf == NULL)
            return 0;
        if (e - lf > 1 && lf[1] == '\n')
            return (size_t)(lf + 2 - buf);
        if (e - lf > 2 && lf[1] == '\r' && lf[2] == '\n')
            return (size_t)(lf + 3 - buf);
        p = lf + 1;
    }
    return 0;
}

#define SWAR_ONES UINT64_C(0x0101010101010101)
#define SWAR_HIGH UINT64_C(0x8080808080808080)

/*
 * Skips field-value bytes and returns the first byte that is not one (CR, LF or another control
 * byte), which exists before `end` since a head ends with LF. Eight bytes at a time while none is
 * below 0x20 or 0x7f; the byte loop then takes over (and goes on through HTAB).
 */
static inline const char *skip_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, sizeof(x));
        uint64_t ctl = (x - SWAR_ONES * 0x20) & ~x & SWAR_HIGH;
        uint64_t y = x ^ (SWAR_ONES * 0x7f);
        uint64_t del = (y - SWAR_ONES) & ~y & SWAR_HIGH;
        if (ctl | del)
            break;
        p += 8;
    }
    while (CLS(*p) & H1_C_VALUE)
        p++;
    return p;
}

/* ---- header fields, shared by both parsers ---- */

struct fields {
    const char *reason; /* set on error */
    int status;
    size_t n;
    struct tmt_slice host;
    unsigned hosts;
    int64_t content_length; /* -1: none */
    unsigned te_fields;     /* Transfer-Encoding fields */
    unsigned te_codings;    /* codings listed in them */
    unsigned te_chunked;    /* how many of those were chunked */
    bool te_chunked_last;
    bool te_other;   /* a coding other than chunked */
    bool te_bad;     /* a list element that is not a coding */
    bool conn_close; /* Connection: close */
    bool conn_keep_alive;
    bool expect_continue;
};

static int fail(struct fields *f, int code, int status, const char *reason)
{
    f->status = status;
    f->reason = reason;
    return code;
}

/*
 * A Content-Length value: one decimal number, or a list of equal ones (RFC 9110 section 8.6 lets
 * a recipient take "42, 42" as 42). Returns NULL and sets *out, or the reason it is refused.
 */
static const char *parse_content_length(const char *p, const char *e, int64_t *out)
{
    int64_t first = -1;
    for (;;) {
        while (p < e && is_ows(*p))
            p++;
        if (p == e || !is_digit(*p))
            return "invalid Content-Length";
        int64_t v = 0;
        while (p < e && is_digit(*p)) {
            int d = *p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return "Content-Length out of range";
            v = v * 10 + d;
        }
        while (p < e && is_ows(*p))
            p++;
        if (first >= 0 && v != first)
            return "differing Content-Length values";
        first = v;
        if (p == e)
            break;
        if (*p != ',')
            return "invalid Content-Length";
        p++;
    }
    *out = first;
    return NULL;
}

/*
 * Adds one Transfer-Encoding field's codings to f. Each list element is a token, optionally
 * followed by parameters (";..." up to the next comma, accepted but not parsed, except that
 * chunked takes none). Anything else marks the field bad.
 */
static void scan_transfer_encoding(struct fields *f, const char *p, const char *e)
{
    f->te_fields++;
    while (p < e) {
        while (p < e && (is_ows(*p) || *p == ','))
            p++;
        if (p == e)
            break;
        const char *t = p;
        while (p < e && (CLS(*p) & H1_C_TOKEN))
            p++;
        size_t tlen = (size_t)(p - t);
        while (p < e && is_ows(*p))
            p++;
        bool params = p < e && *p == ';';
        while (params && p < e && *p != ',')
            p++;
        if (tlen == 0 || (p < e && *p != ',')) {
            f->te_bad = true;
            return;
        }
        f->te_codings++;
        if (tlen == 7 && token_is(t, "chunked", 7)) {
            if (params) {
                f->te_bad = true;
                return;
            }
            f->te_chunked++;
            f->te_chunked_last = true;
        } else {
            f->te_other = true;
            f->te_chunked_last = false;
        }
    }
}

static bool host_valid(const char *p, const char *e)
{
    for (; p < e; p++) {
        if (!(CLS(*p) & H1_C_HOST))
            return false;
    }
    return true;
}

/*
 * Looks at the fields that frame the message or steer the connection. Names are dispatched on
 * their length first, so most fields cost one switch and no comparison.
 */
static int note_field(struct fields *f, bool request, const char *name, size_t name_len,
                      const char *v, const char *ve)
{
    struct tmt_slice value = {v, (size_t)(ve - v)};
    switch (name_len) {
    case 4:
        if (request && token_is(name, "host", 4)) {
            if (++f->hosts > 1)
                return fail(f, TMT_EINVAL, 400, "multiple Host fields");
            if (!host_valid(v, ve))
                return fail(f, TMT_EINVAL, 400, "invalid Host");
            f->host = value;
        }
        break;
    case 6:
        if (request && token_is(name, "expect", 6) && tmt_http_slice_ieq(value, "100-continue"))
            f->expect_continue = true;
        break;
    case 10:
        if (token_is(name, "connection", 10)) {
            if (tmt_http_list_has(value, "close"))
                f->conn_close = true;
            if (tmt_http_list_has(value, "keep-alive"))
                f->conn_keep_alive = true;
        }
        break;
    case 14:
        if (token_is(name, "content-length", 14)) {
            int64_t cl;
            const char *why = parse_content_length(v, ve, &cl);
            if (why != NULL)
                return fail(f, TMT_EINVAL, 400, why);
            if (f->content_length >= 0 && f->content_length != cl)
                return fail(f, TMT_EINVAL, 400, "differing Content-Length values");
            f->content_length = cl;
        }
        break;
    case 17:
        if (token_is(name, "transfer-encoding", 17))
            scan_transfer_encoding(f, v, ve);
        break;
    default:
        break;
    }
    return 0;
}

/*
 * Parses the field lines from p (just after the start line) up to the empty line that ends the
 * head, sets *head_end past it, and fills hdrs (room for max entries) and f. buf[end - 1] is LF,
 * which bounds every scan; when `end` is only the end of the data, TMT_EAGAIN says that no empty
 * line came before it.
 */
static int parse_fields(const char *p, const char *end, size_t max, struct tmt_http_header *hdrs,
                        bool request, struct fields *f, const char **head_end)
{
    if (p == end)
        return TMT_EAGAIN;
    if (is_ows(*p))
        return fail(f, TMT_EINVAL, 400, "whitespace before the first header field");
    for (;;) {
        if (p == end)
            return TMT_EAGAIN;
        if (*p == '\n') {
            p++;
            break;
        }
        if (*p == '\r') {
            if (p[1] != '\n')
                return fail(f, TMT_EINVAL, 400, "bare CR");
            p += 2;
            break;
        }
        if (is_ows(*p))
            return fail(f, TMT_EINVAL, 400, "obsolete line folding");

        const char *name = p;
        while (CLS(*p) & H1_C_TOKEN)
            p++;
        if (*p != ':') {
            if (p > name && is_ows(*p))
                return fail(f, TMT_EINVAL, 400, "whitespace between field name and colon");
            return fail(f, TMT_EINVAL, 400, "invalid header field name");
        }
        if (p == name)
            return fail(f, TMT_EINVAL, 400, "empty header field name");
        size_t name_len = (size_t)(p - name);
        p++;
        while (is_ows(*p))
            p++;
        const char *v = p;
        p = skip_value(p, end);
        const char *ve = p;
        if (*p == '\n') {
            p++;
        } else if (*p == '\r' && p[1] == '\n') {
            p += 2;
        } else {
            return fail(f, TMT_EINVAL, 400,
                        *p == '\r' ? "bare CR" : "control character in header field value");
        }
        while (ve > v && is_ows(ve[-1]))
            ve--;

        if (f->n == max)
            return fail(f, TMT_ELIMIT, 431, "too many header fields");
        hdrs[f->n].name = (struct tmt_slice){name, name_len};
        hdrs[f->n].value = (struct tmt_slice){v, (size_t)(ve - v)};
        f->n++;
        int rc = note_field(f, request, name, name_len, v, ve);
        if (rc != 0)
            return rc;
    }
    *head_end = p;
    return 0;
}

/*
 * At the end of a start line: returns the next line's start, or NULL if p is not CRLF or LF.
 * p[1] is readable when p[0] is CR, since the head ends with LF.
 */
static inline const char *start_line_end(const char *p)
{
    if (p[0] == '\n')
        return p + 1;
    if (p[0] == '\r' && p[1] == '\n')
        return p + 2;
    return NULL;
}

/*
 * The version at p, which has at least 9 readable bytes: 0 or 1 for HTTP/1.0 and HTTP/1.1, -2 for
 * another well-formed HTTP/x.y, -1 for anything else.
 */
static int parse_version(const char *p)
{
    if (memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1'))
        return p[7] - '0';
    if (memcmp(p, "HTTP/", 5) == 0 && is_digit(p[5]) && p[6] == '.' && is_digit(p[7]))
        return -2;
    return -1;
}

/* ---- requests ---- */

static int req_fail(struct tmt_h1_request *req, int code, int status, const char *reason)
{
    req->err_status = status;
    req->err_reason = reason;
    return code;
}

/*
 * Splits an absolute-form target t[0..tlen) (with the first '?' at q, or NULL): checks the scheme
 * and authority, sets path, and returns the authority in *authority.
 */
static int split_absolute(struct tmt_h1_request *req, const char *t, size_t tlen, const char *q,
                          struct tmt_slice *authority)
{
    size_t skip;
    if (tlen >= 7 && bytes_ieq(t, "http://", 7))
        skip = 7;
    else if (tlen >= 8 && bytes_ieq(t, "https://", 8))
        skip = 8;
    else
        return req_fail(req, TMT_EINVAL, 400, "unsupported request-target form");
    const char *a = t + skip, *stop = q != NULL ? q : t + tlen, *ae = a;
    while (ae < stop && *ae != '/')
        ae++;
    if (ae == a)
        return req_fail(req, TMT_EINVAL, 400, "missing authority in request-target");
    if (memchr(a, '@', (size_t)(ae - a)) != NULL)
        return req_fail(req, TMT_EINVAL, 400, "userinfo in request-target");
    if (!host_valid(a, ae))
        return req_fail(req, TMT_EINVAL, 400, "invalid authority in request-target");
    *authority = (struct tmt_slice){a, (size_t)(ae - a)};
    req->path = ae < stop ? (struct tmt_slice){ae, (size_t)(stop - ae)} : TMT_SLICE_LIT("/");
    return 0;
}

/* Parses the request line at p; returns the start of the header section or NULL (req failed). */
static const char *parse_request_line(const char *p, const char *end,
                                      const struct tmt_h1_limits *limits,
                                      struct tmt_h1_request *req, struct tmt_slice *authority,
                                      int *rc)
{
    *rc = TMT_EINVAL;
    const char *m = p;
    while (CLS(*p) & H1_C_TOKEN)
        p++;
    if (p == m || *p != ' ') {
        req_fail(req, TMT_EINVAL, 400, "invalid method");
        return NULL;
    }
    req->method_name = (struct tmt_slice){m, (size_t)(p - m)};
    req->method = tmt_http_method_parse(m, (size_t)(p - m));

    const char *t = ++p, *q = NULL;
    while (CLS(*p) & H1_C_PATH)
        p++;
    if (*p == '?') {
        q = p++;
        while (CLS(*p) & H1_C_QUERY)
            p++;
    }
    if (*p != ' ' || p == t) {
        const char *why = "invalid request-target";
        if (*p == '#')
            why = "fragment in request-target";
        else if (*p == '\r' || *p == '\n')
            why = "invalid request line"; /* no version: HTTP/0.9 or a cut line */
        req_fail(req, TMT_EINVAL, 400, why);
        return NULL;
    }
    size_t tlen = (size_t)(p - t);
    if (tlen > limits->max_target_len) {
        *rc = req_fail(req, TMT_ELIMIT, 414, "request-target too long");
        return NULL;
    }
    req->target = (struct tmt_slice){t, tlen};

    p++;
    int minor = end - p >= 9 ? parse_version(p) : -1;
    const char *next = minor != -1 ? start_line_end(p + 8) : NULL;
    if (next == NULL) {
        req_fail(req, TMT_EINVAL, 400,
                 minor != -1 && p[8] == '\r' ? "bare CR" : "invalid request line");
        return NULL;
    }
    if (minor < 0) {
        req_fail(req, TMT_EINVAL, 505, "unsupported HTTP version");
        return NULL;
    }
    req->minor_version = minor;

    if (*t == '/') {
        req->path = (struct tmt_slice){t, (size_t)((q != NULL ? q : t + tlen) - t)};
    } else if (*t == '*' && tlen == 1) {
        if (req->method != TMT_HTTP_OPTIONS) {
            req_fail(req, TMT_EINVAL, 400, "'*' target without OPTIONS");
            return NULL;
        }
        req->path = req->target;
    } else if (split_absolute(req, t, tlen, q, authority) != 0) {
        return NULL;
    }
    if (q != NULL)
        req->query = (struct tmt_slice){q + 1, (size_t)(t + tlen - q - 1)};
    return next;
}

/*
 * Parses the request head starting at buf + pos (the request line) and ending by buf + end, whose
 * last byte is LF. Returns the head's length from buf, an error, or TMT_EAGAIN when no empty line
 * comes before end.
 */
static int request_head(const char *buf, size_t pos, size_t end, const struct tmt_h1_limits *limits,
                        struct tmt_h1_request *req, struct tmt_http_header *hdrs)
{
    const char *e = buf + end;
    struct tmt_slice authority = {NULL, 0};
    int rc;
    const char *p = parse_request_line(buf + pos, e, limits, req, &authority, &rc);
    if (p == NULL)
        return rc;

    struct fields f = {.content_length = -1};
    rc = parse_fields(p, e, limits->max_headers, hdrs, true, &f, &e);
    if (rc == TMT_EAGAIN)
        return rc;
    if (rc != 0)
        return req_fail(req, rc, f.status, f.reason);
    req->n_headers = f.n;

    if (req->minor_version == 1 && f.hosts == 0)
        return req_fail(req, TMT_EINVAL, 400, "missing Host");
    if (f.te_fields > 0) {
        if (f.content_length >= 0)
            return req_fail(req, TMT_EINVAL, 400, "both Content-Length and Transfer-Encoding");
        if (req->minor_version == 0)
            return req_fail(req, TMT_EINVAL, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (f.te_bad || f.te_codings == 0)
            return req_fail(req, TMT_EINVAL, 400, "invalid Transfer-Encoding");
        if (f.te_chunked > 1)
            return req_fail(req, TMT_EINVAL, 400, "chunked applied more than once");
        if (f.te_chunked > 0 && !f.te_chunked_last)
            return req_fail(req, TMT_EINVAL, 400, "chunked is not the final transfer coding");
        if (f.te_other)
            return req_fail(req, TMT_EINVAL, 501, "unsupported transfer coding");
        req->chunked = true;
    }
    req->content_length = f.content_length;
    req->host = authority.p != NULL ? authority : f.host;
    req->keep_alive = !f.conn_close && (req->minor_version == 1 || f.conn_keep_alive);
    req->expect_continue = f.expect_continue && req->minor_version == 1;
    return (int)(e - buf);
}

int tmt_h1_parse_request(const char *buf, size_t len, size_t prev_len,
                         const struct tmt_h1_limits *limits, struct tmt_h1_request *req,
                         struct tmt_http_header *hdrs)
{
    TMT_ASSERT(limits != NULL && req != NULL);
    TMT_ASSERT(limits->max_head_bytes <= INT_MAX);
    *req = (struct tmt_h1_request){.content_length = -1, .headers = hdrs};
    size_t lim = TMT_MIN(len, limits->max_head_bytes);

    /* Empty lines before the request line (RFC 9112 section 2.2), a bounded number. */
    size_t pos = 0;
    unsigned empty = 0;
    while (pos < lim) {
        if (buf[pos] == '\n') {
            pos++;
        } else if (buf[pos] == '\r') {
            if (pos + 1 == lim)
                break;
            if (buf[pos + 1] != '\n')
                return req_fail(req, TMT_EINVAL, 400, "bare CR");
            pos += 2;
        } else {
            break;
        }
        if (++empty > H1_EMPTY_LINES_MAX)
            return req_fail(req, TMT_EINVAL, 400, "too many empty lines before request");
    }

    /*
     * The common case: a first read that holds a whole head and ends with a line. Its last byte,
     * LF, bounds every scan, so the head is parsed in one pass that finds its end on the way.
     * Only a success is taken from it; anything else is decided below, as for a caller feeding
     * the bytes in pieces, so both ways give the same result.
     */
    if (prev_len == 0 && lim > pos && buf[lim - 1] == '\n') {
        int rc = request_head(buf, pos, lim, limits, req, hdrs);
        if (rc > 0)
            return rc;
        *req = (struct tmt_h1_request){.content_length = -1, .headers = hdrs};
    }

    /* Bytes before prev_len - 3 were seen and held no terminator; the longest is 3 bytes. */
    size_t from = pos;
    if (prev_len <= len && prev_len > pos + 3)
        from = prev_len - 3;
    size_t end = find_head_end(buf, from, lim);
    if (end == 0) {
        if (len <= limits->max_head_bytes)
            return TMT_EAGAIN;
        size_t seen = lim - pos;
        if (memchr(buf + pos, '\n', seen) == NULL && seen > limits->max_target_len)
            return req_fail(req, TMT_ELIMIT, 414, "request line too long");
        return req_fail(req, TMT_ELIMIT, 431, "request head too large");
    }
    int rc = request_head(buf, pos, end, limits, req, hdrs);
    TMT_DASSERT(rc != TMT_EAGAIN && (rc < 0 || (size_t)rc == end));
    return rc;
}

/* ---- responses ---- */

static int resp_fail(struct tmt_h1_response *resp, int code, const char *reason)
{
    resp->err_reason = reason;
    return code;
}

/* As request_head, for a response head at buf[0..end). */
static int response_head(const char *buf, size_t end, const struct tmt_h1_limits *limits,
                         struct tmt_h1_response *resp, struct tmt_http_header *hdrs)
{
    /* Status line: HTTP-version SP 3DIGIT SP reason, where a missing SP before an empty reason
     * is tolerated (common in the wild). */
    const char *p = buf, *e = buf + end;
    if (e - p < 13)
        return resp_fail(resp, TMT_EINVAL, "invalid status line");
    int minor = parse_version(p);
    if (minor == -2)
        return resp_fail(resp, TMT_EINVAL, "unsupported HTTP version");
    if (minor < 0 || p[8] != ' ')
        return resp_fail(resp, TMT_EINVAL, "invalid status line");
    if (!is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]))
        return resp_fail(resp, TMT_EINVAL, "invalid status code");
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (status < 100 || status > 599)
        return resp_fail(resp, TMT_EINVAL, "invalid status code");
    p += 12;
    const char *r = p, *re = p;
    bool sp = *p == ' ';
    if (sp) {
        r = ++p;
        p = re = skip_value(p, e);
    }
    const char *next = start_line_end(p);
    if (next == NULL) {
        if (*p == '\r')
            return resp_fail(resp, TMT_EINVAL, "bare CR");
        return resp_fail(resp, TMT_EINVAL,
                         sp ? "control character in reason phrase" : "invalid status line");
    }
    resp->minor_version = minor;
    resp->status = status;
    resp->reason = (struct tmt_slice){r, (size_t)(re - r)};

    struct fields f = {.content_length = -1};
    int rc = parse_fields(next, e, limits->max_headers, hdrs, false, &f, &e);
    if (rc == TMT_EAGAIN)
        return rc;
    if (rc != 0)
        return resp_fail(resp, rc, f.reason);
    resp->n_headers = f.n;
    resp->content_length = f.content_length;
    resp->keep_alive = !f.conn_close && (minor == 1 || f.conn_keep_alive);
    if (f.te_fields > 0) {
        if (f.content_length >= 0)
            return resp_fail(resp, TMT_EINVAL, "both Content-Length and Transfer-Encoding");
        /* RFC 9112 section 6.1: the framing of such a message is faulty. */
        if (minor == 0)
            return resp_fail(resp, TMT_EINVAL, "Transfer-Encoding in an HTTP/1.0 response");
        if (f.te_bad || f.te_codings == 0)
            return resp_fail(resp, TMT_EINVAL, "invalid Transfer-Encoding");
        if (f.te_chunked > 1)
            return resp_fail(resp, TMT_EINVAL, "chunked applied more than once");
        if (f.te_chunked_last) {
            resp->chunked = true;
        } else {
            /* RFC 9112 section 6.3 rule 4: read until the connection closes. */
            resp->keep_alive = false;
        }
    }
    return (int)(e - buf);
}

int tmt_h1_parse_response(const char *buf, size_t len, size_t prev_len,
                          const struct tmt_h1_limits *limits, struct tmt_h1_response *resp,
                          struct tmt_http_header *hdrs)
{
    TMT_ASSERT(limits != NULL && resp != NULL);
    TMT_ASSERT(limits->max_head_bytes <= INT_MAX);
    *resp = (struct tmt_h1_response){.content_length = -1, .headers = hdrs};
    size_t lim = TMT_MIN(len, limits->max_head_bytes);

    /* One pass for a first read that ends with a line, as for requests. */
    if (prev_len == 0 && lim > 0 && buf[lim - 1] == '\n') {
        int rc = response_head(buf, lim, limits, resp, hdrs);
        if (rc > 0)
            return rc;
        *resp = (struct tmt_h1_response){.content_length = -1, .headers = hdrs};
    }

    size_t from = prev_len <= len && prev_len > 3 ? prev_len - 3 : 0;
    size_t end = find_head_end(buf, from, lim);
    if (end == 0) {
        if (len <= limits->max_head_bytes)
            return TMT_EAGAIN;
        return resp_fail(resp, TMT_ELIMIT, "response head too large");
    }
    int rc = response_head(buf, end, limits, resp, hdrs);
    TMT_DASSERT(rc != TMT_EAGAIN && (rc < 0 || (size_t)rc == end));
    return rc;
}
