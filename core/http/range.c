/*
 * range.c: evaluation of a Range header value (RFC 9110 section 14.1-14.2) against a
 * representation of known size.
 *
 * Only a single range of unit "bytes" is served; anything else is NONE (serve 200), which the RFC
 * allows since a server may ignore Range. Invariant of the result: OK implies
 * first <= last < size, so OK never happens for size 0.
 *
 * Syntax decisions:
 * - The unit is compared case-insensitively and must be followed directly by '=' (no OWS there,
 *   as in the grammar).
 * - The range set is a list: OWS around elements and empty elements (", ,") are accepted and
 *   skipped, as RFC 9110 section 5.6.1 asks of recipients. OWS around the whole value is ignored
 *   too (a field value carries none). Inside a range-spec no whitespace is allowed.
 * - Numbers are 1*DIGIT; leading zeros are fine; a value past UINT64_MAX is a syntax error.
 *
 * Satisfiability follows RFC 9110 section 14.1.1, with one case the result type cannot carry: a
 * non-zero suffix on an empty representation is satisfiable by the RFC but has no byte to send,
 * so it is NONE (the empty 200 is the whole representation).
 */
#include "tmt/http.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Parses 1*DIGIT at p[*i..end) into *out, advancing *i. False if there is no digit or the value
 * does not fit 64 bits.
 */
static bool parse_u64(const char *p, size_t end, size_t *i, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;
    while (*i < end && p[*i] >= '0' && p[*i] <= '9') {
        unsigned dgt = (unsigned)(p[*i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return false;
        v = v * 10 + dgt;
        (*i)++;
    }
    *out = v;
    return *i > start;
}

enum spec_kind {
    SPEC_BAD,
    SPEC_FROM,    /* "a-" */
    SPEC_FROM_TO, /* "a-b" */
    SPEC_SUFFIX,  /* "-n" */
};

/* One range-spec occupying exactly p[0..len). */
static enum spec_kind parse_spec(const char *p, size_t len, uint64_t *a, uint64_t *b)
{
    size_t i = 0;
    if (len > 0 && p[0] == '-') {
        i = 1;
        if (!parse_u64(p, len, &i, b) || i != len)
            return SPEC_BAD;
        return SPEC_SUFFIX;
    }
    if (!parse_u64(p, len, &i, a) || i == len || p[i] != '-')
        return SPEC_BAD;
    i++;
    if (i == len)
        return SPEC_FROM;
    if (!parse_u64(p, len, &i, b) || i != len)
        return SPEC_BAD;
    return SPEC_FROM_TO;
}

enum tmt_http_range_result tmt_http_range_parse(struct tmt_slice value, uint64_t size,
                                                uint64_t *first, uint64_t *last)
{
    const char *p = value.p;
    size_t len = value.len;
    while (len > 0 && is_ows(p[0])) {
        p++;
        len--;
    }
    while (len > 0 && is_ows(p[len - 1]))
        len--;

    static const char unit[] = "bytes=";
    const size_t unit_len = sizeof(unit) - 1;
    if (len < unit_len || !tmt_http_slice_ieq((struct tmt_slice){p, unit_len - 1}, "bytes") ||
        p[unit_len - 1] != '=')
        return TMT_HTTP_RANGE_NONE;

    /* Find the one non-empty element of the range set. */
    const char *spec = NULL;
    size_t spec_len = 0;
    size_t i = unit_len;
    while (i < len) {
        while (i < len && (is_ows(p[i]) || p[i] == ','))
            i++;
        size_t start = i;
        while (i < len && p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(p[end - 1]))
            end--;
        if (end == start)
            continue;
        if (spec != NULL)
            return TMT_HTTP_RANGE_NONE; /* several ranges: we serve only one */
        spec = p + start;
        spec_len = end - start;
    }
    if (spec == NULL)
        return TMT_HTTP_RANGE_NONE;

    uint64_t a = 0, b = 0;
    switch (parse_spec(spec, spec_len, &a, &b)) {
    case SPEC_BAD:
        return TMT_HTTP_RANGE_NONE;
    case SPEC_SUFFIX:
        if (b == 0)
            return TMT_HTTP_RANGE_UNSATISFIABLE;
        if (size == 0)
            return TMT_HTTP_RANGE_NONE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return TMT_HTTP_RANGE_OK;
    case SPEC_FROM_TO:
        if (a > b)
            return TMT_HTTP_RANGE_NONE; /* invalid, not unsatisfiable (RFC 9110 14.1.1) */
        if (a >= size)
            return TMT_HTTP_RANGE_UNSATISFIABLE;
        *first = a;
        *last = b < size ? b : size - 1;
        return TMT_HTTP_RANGE_OK;
    case SPEC_FROM:
        if (a >= size)
            return TMT_HTTP_RANGE_UNSATISFIABLE;
        *first = a;
        *last = size - 1;
        return TMT_HTTP_RANGE_OK;
    }
    TMT_UNREACHABLE("range spec kind");
}
