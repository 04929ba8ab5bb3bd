/*
 * http_semantics.c: libFuzzer target for HTTP dates, Range and conditional requests (http.h).
 *
 * Input layout:
 *   bytes 0..7   representation size for Range, little-endian
 *   byte  8      request method (modulo the number of methods)
 *   the rest     text, also split on '\n' into lines:
 *                line 0 is our ETag, line 1 our Last-Modified (a date; -1 if it does not parse),
 *                lines 2.. are request headers "name:value" (value with OWS trimmed).
 * Inputs shorter than 9 bytes use the whole input as text with size 0 and GET.
 *
 * Every check that fails calls abort(), so libFuzzer reports it:
 * - a parsed date lies in years 0000-9999, and format then parse gives it back; for an
 *   IMF-fixdate input the formatted text equals the input apart from the weekday (which is not
 *   checked against the date) and a leap second (read as 59);
 * - Range OK implies first <= last < size;
 * - 304 only for GET and HEAD, and no precondition header means PROCEED;
 * - If-Range true only for an exact strong ETag or a date equal to Last-Modified.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/http.h"

#define DATE_MIN_S INT64_C(-62167219200) /* 0000-01-01T00:00:00Z */
#define DATE_MAX_S INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define MAX_LINES 64
#define METHOD_COUNT ((unsigned)TMT_HTTP_TRACE + 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tmt_slice trim(struct tmt_slice s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static void check_date(struct tmt_slice s)
{
    int64_t t;
    if (tmt_http_date_parse(s, &t) != 0)
        return;
    if (t < DATE_MIN_S || t > DATE_MAX_S)
        abort();
    char buf[TMT_HTTP_DATE_LEN + 1];
    tmt_http_date_format(t, buf);
    int64_t back;
    if (buf[TMT_HTTP_DATE_LEN] != '\0' || tmt_http_date_parse(TMT_SLICE_LIT(buf), &back) != 0 ||
        back != t)
        abort();
    struct tmt_slice v = trim(s);
    if (v.len == TMT_HTTP_DATE_LEN && v.p[3] == ',') {
        char want[TMT_HTTP_DATE_LEN];
        memcpy(want, v.p, TMT_HTTP_DATE_LEN);
        if (want[23] == '6' && want[24] == '0') {
            want[23] = '5';
            want[24] = '9';
        }
        if (memcmp(buf + 3, want + 3, TMT_HTTP_DATE_LEN - 3) != 0)
            abort();
    }
}

static void check_range(struct tmt_slice s, uint64_t rsize)
{
    uint64_t first = 0, last = 0;
    enum tmt_http_range_result r = tmt_http_range_parse(s, rsize, &first, &last);
    switch (r) {
    case TMT_HTTP_RANGE_OK:
        if (!(first <= last && last < rsize))
            abort();
        break;
    case TMT_HTTP_RANGE_NONE:
    case TMT_HTTP_RANGE_UNSATISFIABLE:
        break;
    default:
        abort();
    }
}

static bool is_precondition(struct tmt_slice name)
{
    return tmt_http_slice_ieq(name, "if-match") || tmt_http_slice_ieq(name, "if-none-match") ||
           tmt_http_slice_ieq(name, "if-modified-since") ||
           tmt_http_slice_ieq(name, "if-unmodified-since");
}

static void check_if_range(struct tmt_slice s, const struct tmt_http_validators *v)
{
    if (!tmt_http_if_range_ok(s, v))
        return;
    struct tmt_slice t = trim(s);
    bool tag_ok =
        t.len >= 2 && t.p[0] == '"' && t.len == v->etag.len && memcmp(t.p, v->etag.p, t.len) == 0;
    int64_t d;
    bool date_ok =
        v->last_modified != -1 && tmt_http_date_parse(s, &d) == 0 && d == v->last_modified;
    if (!tag_ok && !date_ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t rsize = 0;
    enum tmt_http_method method = TMT_HTTP_GET;
    const char *text = (const char *)data;
    size_t len = size;
    if (size >= 9) {
        for (int i = 7; i >= 0; i--)
            rsize = rsize << 8 | data[i];
        method = (enum tmt_http_method)(data[8] % METHOD_COUNT);
        text += 9;
        len -= 9;
    }
    struct tmt_slice all = {text, len};
    check_date(all);
    check_range(all, rsize);

    struct tmt_slice lines[MAX_LINES];
    size_t nl = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && nl < MAX_LINES; i++) {
        if (i == len || text[i] == '\n') {
            lines[nl++] = (struct tmt_slice){text + start, i - start};
            start = i + 1;
        }
    }
    for (size_t i = 0; i < nl; i++) {
        check_date(lines[i]);
        check_range(lines[i], rsize);
    }

    struct tmt_http_validators v = {.etag = {NULL, 0}, .last_modified = -1};
    if (nl > 0)
        v.etag = trim(lines[0]);
    if (nl > 1 && tmt_http_date_parse(lines[1], &v.last_modified) != 0)
        v.last_modified = -1;

    struct tmt_http_header h[MAX_LINES];
    size_t nh = 0;
    bool any_pre = false;
    for (size_t i = 2; i < nl; i++) {
        const char *colon = memchr(lines[i].p, ':', lines[i].len);
        size_t nlen = colon != NULL ? (size_t)(colon - lines[i].p) : lines[i].len;
        h[nh].name = (struct tmt_slice){lines[i].p, nlen};
        h[nh].value = colon != NULL ? trim((struct tmt_slice){colon + 1, lines[i].len - nlen - 1})
                                    : (struct tmt_slice){lines[i].p + nlen, 0};
        any_pre = any_pre || is_precondition(h[nh].name);
        check_if_range(h[nh].value, &v);
        nh++;
    }

    enum tmt_http_cond_result r = tmt_http_cond_evaluate(method, h, nh, &v);
    switch (r) {
    case TMT_HTTP_COND_PROCEED:
        break;
    case TMT_HTTP_COND_NOT_MODIFIED:
        if (method != TMT_HTTP_GET && method != TMT_HTTP_HEAD)
            abort();
        if (!any_pre)
            abort();
        break;
    case TMT_HTTP_COND_FAILED:
        if (!any_pre)
            abort();
        break;
    default:
        abort();
    }
    return 0;
}
