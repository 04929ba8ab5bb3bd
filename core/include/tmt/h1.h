/*
 * h1.h: HTTP/1.1 message heads (RFC 9112): a request parser for the server, a response parser for
 * the client, and an in-place chunked body decoder for both.
 *
 * The parsers follow picohttpparser's contract: they read at most `len` bytes of the buffer they
 * are given, never write to it, and return the number of bytes the head took (> 0), TMT_EAGAIN
 * when the head is not complete yet, or an error. Parsed fields are slices into the buffer, valid
 * while it is. They allocate nothing; headers go into an array the caller provides.
 *
 * They are strict where leniency opens request smuggling or cache poisoning (RFC 9112 sections
 * 6.3 and 11.2): Content-Length together with Transfer-Encoding, differing or malformed
 * Content-Length values, a Transfer-Encoding whose final coding is not chunked, whitespace
 * between a field name and its colon, obsolete line folding, bare CR, and control bytes in values
 * are all errors. A bare LF as line end is accepted (the RFC allows it) but a CR must be
 * followed by LF.
 *
 * Slow-client safety: `prev_len` is how many bytes of the same buffer an earlier call already saw
 * and found incomplete. The parser then only scans the new bytes for the end of the head, so a
 * client that sends one byte at a time costs O(n) in total, not O(n^2).
 */
#ifndef TMT_H1_H
#define TMT_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/http.h"

struct tmt_h1_limits {
    size_t max_head_bytes; /* request/status line plus headers, final empty line included */
    size_t max_target_len; /* request-target (URI) length; longer gives 414 */
    size_t max_headers;    /* number of header fields; more gives 431 */
};

/*
 * A parsed request head. On an error return, err_status is the status to answer (400 bad
 * syntax, 414 URI too long, 431 head or header count too large, 501 unsupported transfer coding,
 * 505 unsupported version) and err_reason a short static text naming the cause
 * ("both Content-Length and Transfer-Encoding"), fit for a log line and a response body.
 */
struct tmt_h1_request {
    enum tmt_http_method method;
    struct tmt_slice method_name;
    struct tmt_slice target; /* request-target exactly as sent */
    struct tmt_slice path;   /* target up to '?' (origin-form), or "*"; for an absolute-form
                              * target without a path, a constant "/" outside the buffer */
    struct tmt_slice query;  /* after the first '?', without it; p == NULL when there is no '?' */
    int minor_version;       /* HTTP/1.<minor_version>: 0 or 1 */

    struct tmt_http_header *headers; /* the caller's array, n_headers used */
    size_t n_headers;

    /* Derived from the headers. */
    struct tmt_slice host;  /* Host value, or the authority of an absolute-form target; len 0
                             * if absent */
    int64_t content_length; /* -1 if no Content-Length */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    bool expect_continue;   /* Expect: 100-continue */

    int err_status;
    const char *err_reason;
};

/*
 * Parses a request head from buf[0..len). hdrs has room for limits->max_headers entries.
 * Returns the head's length in bytes, TMT_EAGAIN (incomplete; also when len is still within
 * max_head_bytes), TMT_EINVAL (bad syntax; err_status 400/501/505) or TMT_ELIMIT (err_status 414
 * or 431: the target or head is too long, or there are too many headers). When the head is
 * incomplete but already longer than max_head_bytes the result is TMT_ELIMIT with 414 if the
 * request line itself is not finished and longer than max_target_len, else 431.
 *
 * HTTP/1.1 requests without Host are refused (400), as RFC 9112 section 3.2 requires; absolute-form
 * targets ("http://host/path") are accepted and their path and query split out.
 */
int tmt_h1_parse_request(const char *buf, size_t len, size_t prev_len,
                         const struct tmt_h1_limits *limits, struct tmt_h1_request *req,
                         struct tmt_http_header *hdrs) TMT_MUST_CHECK;

/* A parsed response head (for the client). */
struct tmt_h1_response {
    int minor_version;
    int status; /* 100..599 */
    struct tmt_slice reason;
    struct tmt_http_header *headers;
    size_t n_headers;
    int64_t content_length; /* -1 if none */
    bool chunked;
    bool keep_alive;
    const char *err_reason; /* on error: a short static text naming the cause */
};

/*
 * Parses a response head from buf[0..len), as tmt_h1_parse_request does (same return values;
 * TMT_EINVAL for any syntax error, TMT_ELIMIT when the head is larger than max_head_bytes or has
 * more than max_headers fields). The caller decides body framing from the request method and the
 * status too (HEAD, 1xx, 204 and 304 responses have no body). Transfer-Encoding only decides
 * framing: a coding before the final chunked (gzip) is neither decoded nor refused, so a caller
 * that stores bodies checks the header itself.
 */
int tmt_h1_parse_response(const char *buf, size_t len, size_t prev_len,
                          const struct tmt_h1_limits *limits, struct tmt_h1_response *resp,
                          struct tmt_http_header *hdrs) TMT_MUST_CHECK;

/* ---- chunked transfer coding (RFC 9112 section 7.1) ---- */

#define TMT_H1_CHUNK_EXT_MAX 1024      /* bytes of chunk extensions per chunk line */
#define TMT_H1_TRAILERS_MAX (8 * 1024) /* bytes of trailer section */

/* Decoder state; caller-provided storage, set up with tmt_h1_chunked_init. */
struct tmt_h1_chunked {
    int _state;
    uint64_t _chunk_left;
    size_t _line_bytes;
    size_t _trailer_bytes;
    unsigned _size_digits;
};

void tmt_h1_chunked_init(struct tmt_h1_chunked *d);

/*
 * Decodes buf[0..len) in place: the data bytes it finds are moved to the front of buf and their
 * count goes to *out_len; *consumed is set to how many input bytes were used. Returns 0 when the
 * last chunk and the trailer section have been read (the bytes after *consumed belong to the next
 * message), TMT_EAGAIN when all of the input was used and more is needed (call again with the next
 * bytes, a fresh buffer or the remainder), TMT_EINVAL on bad syntax (bad hex, missing CRLF after
 * data, bare CR), or TMT_ELIMIT when a chunk size overflows 64 bits or extensions or trailers
 * exceed the limits above. Trailer fields are checked for syntax and dropped. Data decoded
 * before an error is delivered; an error or the end is sticky (later calls consume nothing). A
 * zeroed struct is an initialised one. A bare LF ends size and trailer lines; the line end after
 * chunk data must be CRLF.
 */
int tmt_h1_chunked_decode(struct tmt_h1_chunked *d, char *buf, size_t len, size_t *out_len,
                          size_t *consumed) TMT_MUST_CHECK;

#endif
