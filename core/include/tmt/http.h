/*
 * http.h: the HTTP message model shared by the HTTP/1.1 and HTTP/2 code, the server and the
 * client, plus the protocol-independent pieces of HTTP semantics: methods, status texts, header
 * lookup, HTTP dates, byte ranges and conditional requests.
 *
 * Everything here is pure: no sockets, no loop, no allocation. Slices point into memory the caller
 * owns (usually a connection's read buffer or a request arena) and stay valid as long as it does.
 * Header names handed to the lookup functions are lowercase; HTTP/2 delivers them so, and the
 * HTTP/1.1 parser compares case-insensitively.
 */
#ifndef TMT_HTTP_H
#define TMT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"

enum tmt_http_method {
    TMT_HTTP_OTHER = 0, /* syntactically valid token we do not know */
    TMT_HTTP_GET,
    TMT_HTTP_HEAD,
    TMT_HTTP_POST,
    TMT_HTTP_PUT,
    TMT_HTTP_DELETE,
    TMT_HTTP_OPTIONS,
    TMT_HTTP_PATCH,
    TMT_HTTP_CONNECT,
    TMT_HTTP_TRACE,
};

struct tmt_http_header {
    struct tmt_slice name;
    struct tmt_slice value;
};

/* The method for an exact (case-sensitive, RFC 9110) method token; TMT_HTTP_OTHER if unknown. */
enum tmt_http_method tmt_http_method_parse(const char *p, size_t len);

/* "GET", ...; "OTHER" for TMT_HTTP_OTHER. Never NULL. */
const char *tmt_http_method_name(enum tmt_http_method m);

/* Reason phrase of a status ("Not Found"); "Unknown" for codes without one. Never NULL. */
const char *tmt_http_status_text(int status);

/* ASCII case-insensitive comparison of a slice with a NUL-terminated lowercase literal. */
bool tmt_http_slice_ieq(struct tmt_slice s, const char *lower);

/*
 * The first header whose name equals `lower_name` (ASCII case-insensitively), or NULL.
 */
const struct tmt_http_header *tmt_http_header_find(const struct tmt_http_header *h, size_t n,
                                                   const char *lower_name);

/*
 * True when a comma-separated header value (such as Connection or Cache-Control) contains the
 * token `lower_token` as one of its elements, compared case-insensitively, ignoring optional
 * whitespace around elements.
 */
bool tmt_http_list_has(struct tmt_slice value, const char *lower_token);

/*
 * The value of the first parameter `name` of a query string ("a=1&b=x%2Fy"), percent-decoded
 * ('+' stays '+') into out: returns its length (0 for "name" or "name="), -1 if the parameter is
 * absent, -2 if its value has a bad escape or does not fit in cap bytes.
 */
long tmt_http_query_param(struct tmt_slice query, const char *name, char *out, size_t cap);

/*
 * Normalizes a path: %XX of unreserved characters decoded, other escapes in upper case, empty
 * path components collapsed, "." and ".." components removed (".." above the root refused).
 * Returns the length written to out (at most cap), or 0 if the path is invalid or does not fit.
 */
size_t tmt_http_path_normalize(struct tmt_slice in, char *out, size_t cap);

/* ---- HTTP dates (RFC 9110 section 5.6.7) ---- */

#define TMT_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/*
 * Writes the IMF-fixdate of unix_s (seconds since the epoch, UTC) and a NUL: 30 bytes. Times
 * outside the years 0000-9999 are clamped to them.
 */
void tmt_http_date_format(int64_t unix_s, char out[TMT_HTTP_DATE_LEN + 1]);

/*
 * Parses an HTTP date in any of the three forms a recipient must accept (IMF-fixdate, RFC 850,
 * asctime). Returns 0 and sets *unix_s, or TMT_EINVAL for anything else (out-of-range fields
 * included). Never reads outside s.
 */
int tmt_http_date_parse(struct tmt_slice s, int64_t *unix_s) TMT_MUST_CHECK;

/* ---- Byte ranges (RFC 9110 section 14) ---- */

enum tmt_http_range_result {
    TMT_HTTP_RANGE_NONE,          /* no usable range: serve the whole representation (200) */
    TMT_HTTP_RANGE_OK,            /* serve bytes first..last inclusive (206) */
    TMT_HTTP_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * / size */
};

/*
 * Evaluates a Range header value against a representation of `size` bytes. Only one range of
 * unit "bytes" is served: "a-b", "a-" and "-n" (suffix) forms; b past the end is clipped to
 * size - 1. A header that does not parse, uses another unit, has a > b, or asks for several
 * ranges gives NONE (a server may ignore Range). A range starting at or past the end, or a suffix
 * of 0, gives UNSATISFIABLE. Numbers that overflow 64 bits are a syntax error (NONE). A suffix
 * range on an empty representation gives NONE (there is no byte to send in a 206). first and last
 * are written only for OK.
 */
enum tmt_http_range_result tmt_http_range_parse(struct tmt_slice value, uint64_t size,
                                                uint64_t *first, uint64_t *last);

/* ---- Conditional requests (RFC 9110 section 13) ---- */

/* What the server knows about the selected representation. */
struct tmt_http_validators {
    struct tmt_slice etag; /* as sent in ETag, quotes included ("W/" prefix if weak); len 0: none */
    int64_t last_modified; /* unix seconds, or -1 if unknown */
};

enum tmt_http_cond_result {
    TMT_HTTP_COND_PROCEED,      /* evaluate the request normally */
    TMT_HTTP_COND_NOT_MODIFIED, /* answer 304 */
    TMT_HTTP_COND_FAILED,       /* answer 412 */
};

/*
 * Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in the order of
 * RFC 9110 section 13.2.2 for a request with `method` and `headers`. If-Match uses the strong
 * comparison, If-None-Match the weak one; "*" matches any current representation. Dates that do
 * not parse are ignored, as the RFC says. If-Modified-Since and the 304 outcome apply to GET and
 * HEAD only; If-None-Match on other methods fails with 412. The representation is assumed to
 * exist (so "*" always matches); callers answer 404 before asking when it does not.
 */
enum tmt_http_cond_result tmt_http_cond_evaluate(enum tmt_http_method method,
                                                 const struct tmt_http_header *headers, size_t n,
                                                 const struct tmt_http_validators *v);

/*
 * True if a Range should be honoured given an If-Range value (RFC 9110 section 13.1.5): an entity
 * tag must match strongly (a weak one never matches), a date must equal last_modified exactly.
 * An If-Range that parses as neither is false (serve the whole representation).
 */
bool tmt_http_if_range_ok(struct tmt_slice if_range, const struct tmt_http_validators *v);

#endif
