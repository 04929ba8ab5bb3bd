/*
 * Fuzz target: arbitrary bytes as Cache-Control and CDN-Cache-Control values and as the fields of
 * a request and its response, through http_cache.h.
 *
 * Input layout:
 *   byte 0       bits 0-3 request method (0 GET, 1 HEAD, ... in enum order, TMT_HTTP_OTHER
 *                last, modulo the number of methods), bit 4 CDN-Cache-Control off, bit 5
 *                extreme request and response times, bits 6-7 heuristic cap (1 day, 0, -1 ms,
 *                1 minute)
 *   bytes 1..2   status, big-endian, modulo 1000
 *   bytes 3..4   response delay in ms (response time minus request time), big-endian
 *   bytes 5..6   request time as a signed offset in seconds from a fixed instant, big-endian
 *   the rest     text: first the whole text is one Cache-Control value and one CDN-Cache-Control
 *                value; then it is split on '\n' into field lines "name:value" (value trimmed),
 *                the request's up to a line "--", the response's after it (all the response's
 *                when there is no such line).
 * Inputs shorter than 7 bytes are all text, with GET and 200.
 *
 * Besides memory safety (every parse reads an exact-size heap copy), it checks, aborting on a
 * violation:
 * - directive values are -1 or in [0, 2^31]; parsing a value twice changes nothing; a value
 *   parsed whole equals its pieces (split at commas outside quoted-strings) parsed one by one,
 *   in either order;
 * - a CDN-Cache-Control value that fails leaves the directives untouched;
 * - the result of tmt_hc_evaluate keeps its contract (reason iff not storable, one of the listed
 *   reasons, bounds, no stale use with no-cache or must-revalidate, whole-second dates), does not
 *   depend on the order of the request's fields, agrees with the directives parsed here (no-store,
 *   private, no-cache, s-maxage and max-age), and ignores the CDN switch without
 *   CDN-Cache-Control;
 * - a request always matches itself under Vary unless Vary lists "*", and matching is symmetric;
 * - fixed hop-by-hop names are never refreshed by a 304, and names listed in Connection are
 *   hop-by-hop; the current age never goes below the initial age and grows with time.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tmt/err.h"
#include "tmt/http_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) FUZZ_CHECK("cache_control", cond)
#define MAXH 64
#define MAX_PIECES 64
#define METHOD_COUNT ((unsigned)TMT_HTTP_TRACE + 1)
#define T_BASE INT64_C(1700000000000)

static bool cc_equal(const struct tmt_cc *a, const struct tmt_cc *b)
{
    return a->max_age == b->max_age && a->s_maxage == b->s_maxage &&
           a->stale_while_revalidate == b->stale_while_revalidate &&
           a->stale_if_error == b->stale_if_error && a->min_fresh == b->min_fresh &&
           a->max_stale == b->max_stale && a->no_store == b->no_store &&
           a->no_cache == b->no_cache && a->private_ == b->private_ && a->public_ == b->public_ &&
           a->must_revalidate == b->must_revalidate && a->proxy_revalidate == b->proxy_revalidate &&
           a->no_transform == b->no_transform && a->immutable == b->immutable &&
           a->only_if_cached == b->only_if_cached && a->must_understand == b->must_understand &&
           a->present == b->present;
}

static bool delta_ok(int64_t v)
{
    return v == -1 || (v >= 0 && v <= TMT_CC_DELTA_MAX);
}

static void check_cc_bounds(const struct tmt_cc *cc)
{
    CHECK(delta_ok(cc->max_age) && delta_ok(cc->s_maxage));
    CHECK(delta_ok(cc->stale_while_revalidate) && delta_ok(cc->stale_if_error));
    CHECK(delta_ok(cc->min_fresh) && delta_ok(cc->max_stale));
}

static void cc_parse_copy(struct tmt_cc *cc, const char *p, size_t len)
{
    char *c = fuzz_dup((const uint8_t *)p, len);
    tmt_cc_parse(cc, c, len);
    free(c);
}

static int cdn_parse_copy(struct tmt_cc *cc, const char *p, size_t len)
{
    char *c = fuzz_dup((const uint8_t *)p, len);
    int rc = tmt_cc_parse_cdn(cc, c, len);
    free(c);
    return rc;
}

/* Commas outside quoted-strings, with the quoting rules of RFC 9110 (quoted-pair inside). */
static size_t top_level_commas(const char *p, size_t len, size_t *at, size_t max)
{
    size_t n = 0;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (quoted) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                quoted = false;
        } else if (p[i] == '"') {
            quoted = true;
        } else if (p[i] == ',' && n < max) {
            at[n++] = i;
        }
    }
    return n;
}

static void check_cache_control(const char *p, size_t len)
{
    struct tmt_cc whole;
    tmt_cc_init(&whole);
    cc_parse_copy(&whole, p, len);
    CHECK(whole.present);
    check_cc_bounds(&whole);

    struct tmt_cc twice = whole;
    cc_parse_copy(&twice, p, len);
    CHECK(cc_equal(&twice, &whole));

    size_t commas[MAX_PIECES];
    size_t n = top_level_commas(p, len, commas, MAX_PIECES);
    if (n == 0 || n == MAX_PIECES)
        return;
    struct tmt_cc fwd, back;
    tmt_cc_init(&fwd);
    tmt_cc_init(&back);
    size_t start = 0;
    for (size_t k = 0; k <= n; k++) {
        size_t end = k < n ? commas[k] : len;
        cc_parse_copy(&fwd, p + start, end - start);
        start = end + 1;
    }
    size_t end = len;
    for (size_t k = n + 1; k-- > 0;) {
        size_t s = k > 0 ? commas[k - 1] + 1 : 0;
        cc_parse_copy(&back, p + s, end - s);
        end = k > 0 ? commas[k - 1] : 0;
    }
    CHECK(cc_equal(&fwd, &whole));
    CHECK(cc_equal(&back, &whole));
}

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

static void check_cdn_cache_control(const char *p, size_t len)
{
    struct tmt_cc fresh, init;
    tmt_cc_init(&fresh);
    tmt_cc_init(&init);
    int rc = cdn_parse_copy(&fresh, p, len);
    CHECK(rc == 0 || rc == TMT_EINVAL);
    if (rc != 0) {
        CHECK(cc_equal(&fresh, &init));
    } else {
        /* A valid Dictionary that is not blank has a member. */
        CHECK(fresh.present == (trim((struct tmt_slice){p, len}).len > 0));
        check_cc_bounds(&fresh);
    }

    struct tmt_cc cc, before;
    tmt_cc_init(&cc);
    cc.max_age = 7;
    cc.no_cache = true;
    before = cc;
    CHECK(cdn_parse_copy(&cc, p, len) == rc);
    if (rc != 0) {
        CHECK(cc_equal(&cc, &before));
        return;
    }
    check_cc_bounds(&cc);
    CHECK(cc.no_cache &&
          cc.max_age == (fresh.max_age >= 0 && fresh.max_age < 7 ? fresh.max_age : 7));
    CHECK(cc.no_store == fresh.no_store && cc.s_maxage == fresh.s_maxage);
    struct tmt_cc again = cc;
    CHECK(cdn_parse_copy(&again, p, len) == 0);
    CHECK(cc_equal(&again, &cc));
}

struct fields {
    struct tmt_http_header h[MAXH];
    size_t n;
};

/* The next line of p[0..len) from *start on (without its '\n'); false after the last one. */
static bool next_line(const char *p, size_t len, size_t *start, struct tmt_slice *line)
{
    if (*start > len)
        return false;
    const char *nl = memchr(p + *start, '\n', len - *start);
    size_t end = nl != NULL ? (size_t)(nl - p) : len;
    *line = (struct tmt_slice){p + *start, end - *start};
    *start = end + 1;
    return true;
}

static bool is_separator(struct tmt_slice line)
{
    return line.len == 2 && line.p[0] == '-' && line.p[1] == '-';
}

static void split_fields(const char *p, size_t len, struct fields *req, struct fields *resp)
{
    req->n = resp->n = 0;
    bool has_sep = false;
    size_t pos = 0;
    struct tmt_slice line;
    while (next_line(p, len, &pos, &line))
        has_sep = has_sep || is_separator(line);
    struct fields *cur = has_sep ? req : resp;
    pos = 0;
    while (next_line(p, len, &pos, &line)) {
        if (is_separator(line)) {
            cur = resp;
            continue;
        }
        const char *colon = memchr(line.p, ':', line.len);
        if (colon == NULL || cur->n == MAXH)
            continue;
        size_t nlen = (size_t)(colon - line.p);
        cur->h[cur->n].name = (struct tmt_slice){line.p, nlen};
        cur->h[cur->n].value = trim((struct tmt_slice){colon + 1, line.len - nlen - 1});
        cur->n++;
    }
}

static bool resp_equal(const struct tmt_hc_resp *a, const struct tmt_hc_resp *b)
{
    return a->storable == b->storable &&
           (a->why == NULL ? b->why == NULL : b->why != NULL && strcmp(a->why, b->why) == 0) &&
           a->heuristic == b->heuristic && a->lifetime_ms == b->lifetime_ms &&
           a->initial_age_ms == b->initial_age_ms && a->swr_ms == b->swr_ms &&
           a->sie_ms == b->sie_ms && a->must_revalidate == b->must_revalidate &&
           a->no_cache == b->no_cache && a->cdn_cache_control == b->cdn_cache_control &&
           a->date_ms == b->date_ms && a->last_modified_ms == b->last_modified_ms;
}

static bool why_known(const char *why)
{
    static const char *const reasons[] = {"method",        "status", "no-store",         "private",
                                          "authorization", "vary *", "no freshness info"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(why, reasons[i]) == 0)
            return true;
    }
    return false;
}

static void check_result(const struct tmt_hc_opts *o, enum tmt_http_method m, int status,
                         const struct tmt_hc_resp *r)
{
    CHECK(r->storable == (r->why == NULL));
    if (r->why != NULL)
        CHECK(why_known(r->why));
    if (r->storable)
        CHECK(m == TMT_HTTP_GET && status >= 200 && status <= 599 && status != 206 &&
              status != 304);
    CHECK(r->lifetime_ms >= 0 && r->lifetime_ms <= TMT_CC_DELTA_MAX * 1000);
    CHECK(r->initial_age_ms >= 0);
    CHECK(r->swr_ms == -1 || (r->swr_ms >= 0 && r->swr_ms <= TMT_CC_DELTA_MAX * 1000));
    CHECK(r->sie_ms == -1 || (r->sie_ms >= 0 && r->sie_ms <= TMT_CC_DELTA_MAX * 1000));
    if (r->no_cache)
        CHECK(r->lifetime_ms == 0);
    if (r->no_cache || r->must_revalidate)
        CHECK(r->swr_ms == -1 && r->sie_ms == -1);
    if (r->heuristic)
        CHECK(r->lifetime_ms <= (o->heuristic_max_ms > 0 ? o->heuristic_max_ms : 0));
    CHECK(r->date_ms == -1 || r->date_ms % 1000 == 0);
    CHECK(r->last_modified_ms == -1 || r->last_modified_ms % 1000 == 0);
    CHECK(!r->cdn_cache_control || o->cdn_cache_control);
}

/* The directives that should have ruled, parsed here from the fields. */
static void check_against_directives(const struct fields *resp, const struct tmt_hc_resp *r)
{
    struct tmt_cc d;
    tmt_cc_init(&d);
    for (size_t i = 0; i < resp->n; i++) {
        struct tmt_slice name = resp->h[i].name, v = resp->h[i].value;
        if (r->cdn_cache_control && tmt_http_slice_ieq(name, "cdn-cache-control"))
            CHECK(cdn_parse_copy(&d, v.p, v.len) == 0);
        else if (!r->cdn_cache_control && tmt_http_slice_ieq(name, "cache-control"))
            cc_parse_copy(&d, v.p, v.len);
    }
    if (r->cdn_cache_control)
        CHECK(d.present);
    if (d.no_store && !d.must_understand)
        CHECK(!r->storable);
    if (d.private_)
        CHECK(!r->storable);
    CHECK(r->no_cache == d.no_cache);
    if (d.s_maxage >= 0)
        CHECK(r->must_revalidate);
    if (!d.no_cache) {
        if (d.s_maxage >= 0)
            CHECK(r->lifetime_ms == d.s_maxage * 1000 && !r->heuristic);
        else if (d.max_age >= 0)
            CHECK(r->lifetime_ms == d.max_age * 1000 && !r->heuristic);
    }
}

static void check_lists(const struct fields *req, const struct fields *resp)
{
    bool star = false;
    for (size_t i = 0; i < resp->n; i++) {
        if (tmt_http_slice_ieq(resp->h[i].name, "vary") && tmt_http_list_has(resp->h[i].value, "*"))
            star = true;
    }
    CHECK(tmt_hc_vary_match(resp->h, resp->n, req->h, req->n, req->h, req->n) == !star);
    CHECK(tmt_hc_vary_match(resp->h, resp->n, resp->h, resp->n, resp->h, resp->n) == !star);
    CHECK(tmt_hc_vary_match(resp->h, resp->n, req->h, req->n, resp->h, resp->n) ==
          tmt_hc_vary_match(resp->h, resp->n, resp->h, resp->n, req->h, req->n));

    for (size_t i = 0; i < resp->n; i++) {
        struct tmt_slice name = resp->h[i].name;
        bool fixed = tmt_hc_hop_by_hop(name, NULL, 0);
        CHECK(tmt_hc_hop_by_hop(name, resp->h, resp->n) || !fixed);
        if (fixed)
            CHECK(!tmt_hc_304_updates(name));
        if (tmt_http_slice_ieq(name, "connection")) {
            /* Each listed element (trimmed, non-empty) is hop-by-hop in this message. */
            struct tmt_slice v = resp->h[i].value;
            size_t s = 0;
            for (size_t k = 0; k <= v.len; k++) {
                if (k == v.len || v.p[k] == ',') {
                    struct tmt_slice e = trim((struct tmt_slice){v.p + s, k - s});
                    if (e.len > 0)
                        CHECK(tmt_hc_hop_by_hop(e, resp->h, resp->n));
                    s = k + 1;
                }
            }
        }
    }
}

static void check_evaluate(const uint8_t *data, size_t size, const char *text, size_t len)
{
    enum tmt_http_method m = TMT_HTTP_GET;
    int status = 200;
    struct tmt_hc_opts o;
    tmt_hc_opts_default(&o);
    int64_t request_time = T_BASE, response_time = T_BASE;
    if (size >= 7) {
        m = (enum tmt_http_method)(((data[0] & 0x0f) + 1u) % METHOD_COUNT); /* 0: GET */
        o.cdn_cache_control = (data[0] & 0x10) == 0;
        static const int64_t caps[] = {INT64_C(86400000), 0, -1, 60000};
        o.heuristic_max_ms = caps[data[0] >> 6];
        status = ((data[1] << 8) | data[2]) % 1000;
        int64_t delay = (data[3] << 8) | data[4];
        int64_t offset = (int16_t)((data[5] << 8) | data[6]);
        if (data[0] & 0x20) {
            request_time = (data[3] & 1) ? INT64_MIN : INT64_MAX - delay;
            response_time = (data[4] & 1) ? INT64_MAX : INT64_MIN + delay;
        } else {
            request_time = T_BASE + offset * 1000;
            response_time = request_time + delay;
        }
    }

    struct fields req, resp;
    split_fields(text, len, &req, &resp);

    struct tmt_hc_resp r, again;
    tmt_hc_evaluate(&o, m, status, req.h, req.n, resp.h, resp.n, request_time, response_time, &r);
    check_result(&o, m, status, &r);
    check_against_directives(&resp, &r);
    tmt_hc_evaluate(&o, m, status, req.h, req.n, resp.h, resp.n, request_time, response_time,
                    &again);
    CHECK(resp_equal(&r, &again));

    /* The request's fields in reverse order. */
    struct fields rev;
    rev.n = req.n;
    for (size_t i = 0; i < req.n; i++)
        rev.h[i] = req.h[req.n - 1 - i];
    tmt_hc_evaluate(&o, m, status, rev.h, rev.n, resp.h, resp.n, request_time, response_time,
                    &again);
    CHECK(resp_equal(&r, &again));

    /* The CDN switch matters only with CDN-Cache-Control. */
    bool has_cdn = tmt_http_header_find(resp.h, resp.n, "cdn-cache-control") != NULL;
    o.cdn_cache_control = !o.cdn_cache_control;
    tmt_hc_evaluate(&o, m, status, req.h, req.n, resp.h, resp.n, request_time, response_time,
                    &again);
    check_result(&o, m, status, &again);
    if (!has_cdn)
        CHECK(resp_equal(&r, &again));

    check_lists(&req, &resp);

    int64_t a0 = tmt_hc_current_age_ms(r.initial_age_ms, response_time, response_time);
    int64_t later = response_time > INT64_MAX - 1000 ? INT64_MAX : response_time + 1000;
    int64_t a1 = tmt_hc_current_age_ms(r.initial_age_ms, response_time, later);
    CHECK(a0 >= r.initial_age_ms && a1 >= a0);
    CHECK(tmt_hc_is_fresh(&r, a0) == (r.lifetime_ms > a0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    size_t skip = size >= 7 ? 7 : 0;
    char *text = fuzz_dup(data + skip, size - skip);
    size_t len = size - skip;
    check_cache_control(text, len);
    check_cdn_cache_control(text, len);
    check_evaluate(data, size, text, len);
    free(text);
    return 0;
}
