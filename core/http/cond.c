/*
 * cond.c: conditional requests (RFC 9110 section 13): If-Match, If-Unmodified-Since,
 * If-None-Match, If-Modified-Since evaluated in the order of section 13.2.2, and If-Range.
 *
 * Pure: reads the request's headers and the representation's validators, allocates nothing.
 *
 * Decisions:
 * - If-Match and If-None-Match may come as several fields; they are one list together (RFC 9110
 *   section 5.3), so every field of the name is read. The list is "*" alone or entity-tags; OWS and
 *   empty elements are tolerated. A list that does not parse (including "*" next to anything
 *   else) matches nothing: If-Match then fails, If-None-Match lets the request proceed.
 * - Entity-tags follow the grammar strictly: case-sensitive "W/", DQUOTE, etagc bytes (no SP, no
 *   DQUOTE, no controls), DQUOTE. A tag may contain commas, so lists are split quote-aware.
 * - An ETag of our own that does not parse is treated as no ETag: only "*" can match it.
 * - Dates that do not parse are ignored, and so is a date field sent more than once (it "appears
 *   to be a list"), as the RFC says. A date condition is ignored when the representation has no
 *   Last-Modified (last_modified == -1), also per section 13.1.3 and 13.1.4.
 */
#include "tmt/http.h"

#include <string.h>

/* An entity-tag split into its parts: opaque is the quoted string, quotes included. */
struct etag {
    bool weak;
    struct tmt_slice opaque;
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/*
 * Parses an entity-tag starting at p[*i], stopping at end; advances *i past it. False on any
 * syntax error.
 */
static bool parse_etag_at(const char *p, size_t end, size_t *i, struct etag *t)
{
    size_t j = *i;
    t->weak = false;
    if (end - j >= 2 && p[j] == 'W' && p[j + 1] == '/') {
        t->weak = true;
        j += 2;
    }
    if (j >= end || p[j] != '"')
        return false;
    size_t start = j++;
    while (j < end && is_etagc((unsigned char)p[j]))
        j++;
    if (j >= end || p[j] != '"')
        return false;
    j++;
    t->opaque = (struct tmt_slice){p + start, j - start};
    *i = j;
    return true;
}

/* A whole value that must be exactly one entity-tag, OWS around it allowed. */
static bool parse_etag(struct tmt_slice s, struct etag *t)
{
    size_t i = 0;
    while (i < s.len && is_ows(s.p[i]))
        i++;
    if (!parse_etag_at(s.p, s.len, &i, t))
        return false;
    while (i < s.len && is_ows(s.p[i]))
        i++;
    return i == s.len;
}

static bool opaque_eq(struct tmt_slice a, struct tmt_slice b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* What an If-Match or If-None-Match list says about our entity-tag. */
struct list_scan {
    bool bad;     /* the list does not parse */
    bool star;    /* "*" was an element */
    bool matched; /* some element matched under the comparison asked for */
    size_t elements;
};

/* Adds one field value of the list to the scan. `ours` is NULL when we have no entity-tag. */
static void scan_list(struct tmt_slice s, const struct etag *ours, bool strong,
                      struct list_scan *ls)
{
    size_t i = 0;
    while (i < s.len && !ls->bad) {
        while (i < s.len && (is_ows(s.p[i]) || s.p[i] == ','))
            i++;
        if (i == s.len)
            break;
        ls->elements++;
        if (s.p[i] == '*') {
            ls->star = true;
            i++;
        } else {
            struct etag t;
            if (!parse_etag_at(s.p, s.len, &i, &t)) {
                ls->bad = true;
                break;
            }
            if (ours != NULL && opaque_eq(t.opaque, ours->opaque) &&
                (!strong || (!t.weak && !ours->weak)))
                ls->matched = true;
        }
        /* Between elements: OWS then a comma, or the end. */
        while (i < s.len && is_ows(s.p[i]))
            i++;
        if (i < s.len && s.p[i] != ',')
            ls->bad = true;
    }
}

/* The preconditions evaluated here, by header name. */
enum precondition {
    PRE_IF_MATCH,
    PRE_IF_NONE_MATCH,
    PRE_IF_MODIFIED_SINCE,
    PRE_IF_UNMODIFIED_SINCE,
    PRE_COUNT,
};

/* Which precondition a header name is, or -1 for any other header. */
static int precondition_of(struct tmt_slice name)
{
    /* Cheap filter first: most request headers are none of these. */
    if (name.len < 8 || (name.p[0] | 0x20) != 'i')
        return -1;
    switch (name.len) {
    case 8:
        return tmt_http_slice_ieq(name, "if-match") ? PRE_IF_MATCH : -1;
    case 13:
        return tmt_http_slice_ieq(name, "if-none-match") ? PRE_IF_NONE_MATCH : -1;
    case 17:
        return tmt_http_slice_ieq(name, "if-modified-since") ? PRE_IF_MODIFIED_SINCE : -1;
    case 19:
        return tmt_http_slice_ieq(name, "if-unmodified-since") ? PRE_IF_UNMODIFIED_SINCE : -1;
    default:
        return -1;
    }
}

struct found {
    size_t count;
    size_t first; /* index of the first header of this name, valid when count > 0 */
};

/*
 * Evaluates one list precondition over all its fields. True when the condition "matches": some
 * element names our representation (always so for a lone "*", since we have one). A list that
 * does not parse never matches.
 */
static bool list_matches(const struct tmt_http_header *headers, size_t n, struct found f, int pre,
                         const struct etag *ours, bool strong)
{
    struct list_scan ls = {0};
    for (size_t i = f.first; i < n && !ls.bad; i++) {
        if (precondition_of(headers[i].name) == pre)
            scan_list(headers[i].value, ours, strong, &ls);
    }
    if (ls.bad || (ls.star && ls.elements != 1))
        return false;
    return ls.star || ls.matched;
}

/* The date of a date precondition, or false when it must be ignored. */
static bool usable_date(const struct tmt_http_header *headers, struct found f, int64_t *out)
{
    if (f.count != 1)
        return false;
    return tmt_http_date_parse(headers[f.first].value, out) == 0;
}

enum tmt_http_cond_result tmt_http_cond_evaluate(enum tmt_http_method method,
                                                 const struct tmt_http_header *headers, size_t n,
                                                 const struct tmt_http_validators *v)
{
    TMT_ASSERT(v != NULL);
    TMT_ASSERT(headers != NULL || n == 0);

    struct found f[PRE_COUNT] = {{0, 0}};
    for (size_t i = 0; i < n; i++) {
        int pre = precondition_of(headers[i].name);
        if (pre < 0)
            continue;
        if (f[pre].count++ == 0)
            f[pre].first = i;
    }

    struct etag ours_buf;
    const struct etag *ours = v->etag.len > 0 && parse_etag(v->etag, &ours_buf) ? &ours_buf : NULL;
    bool lm_known = v->last_modified != -1;
    bool get_or_head = method == TMT_HTTP_GET || method == TMT_HTTP_HEAD;
    int64_t date;

    /* Step 1, or step 2 when If-Match is absent. */
    if (f[PRE_IF_MATCH].count > 0) {
        if (!list_matches(headers, n, f[PRE_IF_MATCH], PRE_IF_MATCH, ours, true))
            return TMT_HTTP_COND_FAILED;
    } else if (lm_known && usable_date(headers, f[PRE_IF_UNMODIFIED_SINCE], &date)) {
        if (v->last_modified > date)
            return TMT_HTTP_COND_FAILED;
    }

    /* Step 3, or step 4 when If-None-Match is absent. */
    if (f[PRE_IF_NONE_MATCH].count > 0) {
        if (list_matches(headers, n, f[PRE_IF_NONE_MATCH], PRE_IF_NONE_MATCH, ours, false))
            return get_or_head ? TMT_HTTP_COND_NOT_MODIFIED : TMT_HTTP_COND_FAILED;
    } else if (get_or_head && lm_known && usable_date(headers, f[PRE_IF_MODIFIED_SINCE], &date)) {
        if (v->last_modified <= date)
            return TMT_HTTP_COND_NOT_MODIFIED;
    }
    return TMT_HTTP_COND_PROCEED;
}

bool tmt_http_if_range_ok(struct tmt_slice if_range, const struct tmt_http_validators *v)
{
    TMT_ASSERT(v != NULL);
    size_t i = 0;
    while (i < if_range.len && is_ows(if_range.p[i]))
        i++;
    /* An entity-tag starts with W/ or a quote; a date never does ("Wed, ..." starts with W). */
    bool is_tag = i < if_range.len &&
                  (if_range.p[i] == '"' ||
                   (if_range.p[i] == 'W' && i + 1 < if_range.len && if_range.p[i + 1] == '/'));
    if (is_tag) {
        struct etag theirs, ours;
        if (!parse_etag(if_range, &theirs) || theirs.weak)
            return false;
        if (v->etag.len == 0 || !parse_etag(v->etag, &ours) || ours.weak)
            return false;
        return opaque_eq(theirs.opaque, ours.opaque);
    }
    int64_t t;
    if (v->last_modified == -1 || tmt_http_date_parse(if_range, &t) != 0)
        return false;
    return t == v->last_modified;
}
