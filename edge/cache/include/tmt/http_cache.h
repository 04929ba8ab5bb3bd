/*
 * http_cache.h: the shared-cache semantics of HTTP for the edge, after RFC 9111 (HTTP Caching),
 * RFC 9213 (CDN-Cache-Control) and RFC 5861 (stale-while-revalidate, stale-if-error): parsing
 * cache directives, deciding whether a response may be stored and for how long, its age, which
 * fields are hop-by-hop, whether a stored response's Vary allows it to serve a new request, and
 * which fields a 304 refreshes.
 *
 * Everything here is pure: no sockets, no clocks (times are parameters, unix milliseconds), no
 * allocation, no global state, so any thread may call any function at any time and
 * tomato-cachesim and the unit tests run it on virtual time. Inputs are borrowed for the duration
 * of a call only; nothing here keeps a pointer to them, and the only pointers returned are to
 * static strings. Header values are used as the HTTP parsers hand them over (no NUL needed,
 * outer whitespace usually trimmed, but tolerated); header names compare case-insensitively.
 *
 * The cache is a shared cache (RFC 9111 section 1): private, s-maxage and proxy-revalidate apply.
 * Where the RFCs leave a choice, this module takes the conservative one (store less, serve stale
 * less) and says so next to the function that makes it.
 */
#ifndef TMT_HTTP_CACHE_H
#define TMT_HTTP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/http.h"

/*
 * The largest delta-seconds value kept: RFC 9111 section 1.2.2 has a cache treat anything greater
 * (or anything that overflows) as 2^31 seconds. Every numeric directive is clamped to it, so
 * seconds * 1000 always fits in int64_t.
 */
#define TMT_CC_DELTA_MAX INT64_C(2147483648)

/*
 * Parsed Cache-Control or CDN-Cache-Control directives, request or response. Numbers are seconds
 * in [0, TMT_CC_DELTA_MAX], or -1 when the directive is absent. Booleans are true when the
 * directive was present. A directive that is not meaningful where it was found (max-stale in a
 * response, public in a request) is parsed all the same; the user decides what to look at.
 *
 * Repeated directives (in one field line or across lines) are invalid per RFC 9111 section 4.2.1,
 * which lets a cache use the first or treat the response as stale; this module keeps the most
 * restrictive value instead, which does not depend on order: the smallest max-age, s-maxage,
 * stale-while-revalidate, stale-if-error and max-stale, the largest min-fresh, and any occurrence
 * of a boolean directive.
 */
struct tmt_cc {
    int64_t max_age;
    int64_t s_maxage;
    int64_t stale_while_revalidate; /* RFC 5861 section 3 */
    int64_t stale_if_error;         /* RFC 5861 section 4 */
    int64_t min_fresh;              /* request only */
    int64_t max_stale;              /* request only; TMT_CC_DELTA_MAX when given without a value */
    bool no_store;
    bool no_cache; /* also for the qualified form no-cache="field": treated as unqualified */
    bool private_; /* also for the qualified form private="field": treated as unqualified */
    bool public_;
    bool must_revalidate;
    bool proxy_revalidate;
    bool no_transform;
    bool immutable;       /* RFC 8246 */
    bool only_if_cached;  /* request only */
    bool must_understand; /* RFC 9111 section 5.2.2.3 */
    /*
     * At least one field line was parsed. For CDN-Cache-Control: at least one line parsed as a
     * valid Dictionary with at least one member (RFC 9213 wants a "valid, non-empty" field).
     */
    bool present;
};

/* Sets every number to -1 and every flag to false: no directives, no field seen. */
void tmt_cc_init(struct tmt_cc *cc);

/*
 * Parses one Cache-Control field line value (RFC 9111 section 5.2: a comma-separated list of
 * token ["=" (token / quoted-string)], names case-insensitive) and merges its directives into cc
 * (initialised with tmt_cc_init; call once per field line, in any order). Reads exactly v[0..len),
 * needs no NUL; v may be NULL when len is 0. Sets cc->present.
 *
 * Error handling, all conservative:
 * - unknown directives are ignored; empty list elements are skipped; optional whitespace is
 *   accepted around '=' as well as around commas;
 * - an argument may be a token or a quoted-string; delta-seconds is accepted in both forms
 *   (max-age="60"), as the RFC asks recipients to;
 * - max-age or s-maxage without a valid delta-seconds (no argument, empty, signed, fractional,
 *   junk after it) counts as 0: invalid freshness information makes the response stale (RFC 9111
 *   section 4.2.1); for stale-while-revalidate, stale-if-error, min-fresh and max-stale the
 *   occurrence is ignored;
 * - the directives that restrict caching (no-store, no-cache, private, must-revalidate,
 *   proxy-revalidate, no-transform, only-if-cached) count with any argument or junk after them;
 *   those that allow more (public, immutable, must-understand) count only without an argument;
 * - an element with junk after its argument is skipped up to the next comma outside a
 *   quoted-string; an unterminated quoted-string runs to the end of the value.
 * Values above TMT_CC_DELTA_MAX (any number of digits) are clamped to it.
 */
void tmt_cc_parse(struct tmt_cc *cc, const char *v, size_t len);

/*
 * Parses one CDN-Cache-Control field line value, which RFC 9213 section 2 defines as a Structured
 * Field Dictionary (RFC 8941 section 3.2): keys are lowercase, a directive without a value is the
 * Boolean true, delta-seconds are Integers. The whole line must parse; otherwise it returns
 * TMT_EINVAL and leaves cc untouched (RFC 9213 section 2.2: a field that fails to parse is ignored
 * as a whole, so the caller then ignores every CDN-Cache-Control line of the message). On success
 * returns 0 and merges as tmt_cc_parse does, with these type rules (an empty or whitespace-only
 * line is a valid empty Dictionary and changes nothing):
 * - max-age, s-maxage: a non-negative Integer; any other value (String, Decimal, Token, negative)
 *   counts as 0, as in tmt_cc_parse;
 * - stale-while-revalidate, stale-if-error, min-fresh, max-stale: a non-negative Integer, else
 *   ignored (max-stale as Boolean true means any staleness);
 * - restricting directives count with any value but Boolean false (no-store=?0 is absent);
 *   public, immutable and must-understand count only as Boolean true;
 * - parameters (";a=1") are parsed and ignored.
 * Duplicate keys merge as in tmt_cc (most restrictive wins) rather than the Structured Fields
 * "last one wins": conservative, and the same for both fields.
 * Reads exactly v[0..len); v may be NULL when len is 0.
 *
 * XXX: lines are parsed one by one rather than joined first, so a String or Inner List split
 * across two field lines is rejected, and an empty line between others is accepted. Senders do
 * not split members; the difference only makes odd input fail or pass one way or the other.
 */
int tmt_cc_parse_cdn(struct tmt_cc *cc, const char *v, size_t len) TMT_MUST_CHECK;

/* What the cache decides about a response it received (RFC 9111 sections 3 and 4.2). */
struct tmt_hc_resp {
    bool storable; /* a shared cache may store it */
    /*
     * When !storable: a short static reason, one of "method", "status", "no-store", "private",
     * "authorization", "vary *", "no freshness info". NULL when storable.
     */
    const char *why;
    /*
     * No explicit expiration time (no s-maxage, max-age or Expires): lifetime_ms is this cache's
     * heuristic, 10 % of (Date - Last-Modified) capped at heuristic_max_ms, or 0 without a
     * Last-Modified (or when the status is not heuristically cacheable).
     */
    bool heuristic;
    int64_t lifetime_ms;    /* freshness lifetime, in [0, TMT_CC_DELTA_MAX * 1000]; 0: stale */
    int64_t initial_age_ms; /* corrected_initial_age (RFC 9111 section 4.2.3), >= 0 */
    /*
     * stale-while-revalidate / stale-if-error windows in ms, or -1 when absent or when stale use
     * is forbidden (must_revalidate or no_cache: RFC 9111 section 4.2.4).
     */
    int64_t swr_ms, sie_ms;
    /* must-revalidate, proxy-revalidate or s-maxage (shared cache): never serve it stale */
    bool must_revalidate;
    bool no_cache;          /* stored, but validated before each use; lifetime_ms is 0 */
    bool cdn_cache_control; /* the directives came from CDN-Cache-Control, not Cache-Control */
    /*
     * The first Date / Last-Modified line, unix ms, or -1 when absent or not a valid HTTP date
     * (valid dates are whole seconds, so never -1). A later line never replaces an invalid first.
     */
    int64_t date_ms, last_modified_ms;
};

/* Options for tmt_hc_evaluate; set with tmt_hc_opts_default() then change what is needed. */
struct tmt_hc_opts {
    int64_t heuristic_max_ms; /* cap for heuristic freshness; default 1 day */
    bool cdn_cache_control;   /* honour CDN-Cache-Control; default true */
};

void tmt_hc_opts_default(struct tmt_hc_opts *o);

/*
 * Decides whether a shared cache may store the response `status` + `resp` that answered the
 * client request `method` + `req`, and with what freshness, and fills *out (always completely;
 * lifetime, windows, age and dates are filled even when the response is not storable).
 * request_time_ms is when the request was sent upstream, response_time_ms when the response head
 * arrived (unix ms, the caller's clock). req may be NULL if n_req is 0, resp if n_resp is 0.
 *
 * Directives: the response's Cache-Control lines, all merged (see tmt_cc). When
 * o->cdn_cache_control is set and the response has CDN-Cache-Control lines that all parse and
 * hold at least one directive, those replace Cache-Control and Expires entirely, for storing and
 * for freshness (RFC 9213 section 2.1; the caller still forwards Cache-Control to clients).
 *
 * Not storable, checked in this order (the first failing check names `why`):
 * - "method": the method is not GET (HEAD is served from a stored GET by the caller);
 * - "status": 1xx, 206 (the caller fetches whole objects), 304 (see tmt_hc_304_updates),
 *   anything outside 200..599; or must-understand with a status outside the understood set below;
 * - "no-store": no-store in the response, or in the request's Cache-Control (RFC 9111 5.2.1.5),
 *   except that a response no-store is ignored with must-understand and an understood status
 *   (RFC 9111 5.2.2.3);
 * - "private": private, with or without field names;
 * - "authorization": the request has Authorization and the response has none of public,
 *   s-maxage, must-revalidate (RFC 9111 section 3.5);
 * - "vary *": a Vary element is "*" (it can never match, RFC 9111 section 4.1);
 * - "no freshness info": the status is not heuristically cacheable and the response has no
 *   explicit freshness (max-age, s-maxage, Expires, public) (RFC 9111 section 3).
 * Heuristically cacheable statuses (RFC 9110 section 15.1, without 206): 200, 203, 204, 300, 301,
 * 308, 404, 405, 410, 414, 501. Any other status in 200..599 (302, 307, 403, 500, 503...) is
 * stored only with explicit freshness. The understood statuses for must-understand are the
 * heuristically cacheable ones plus 302 and 307.
 *
 * Freshness lifetime (RFC 9111 section 4.2.1), first that applies: s-maxage; max-age; Expires
 * minus Date (the first Expires line; an Expires that does not parse, or lies before Date, gives
 * 0; without a valid Date, response_time_ms stands in); otherwise the heuristic (see `heuristic`:
 * only for heuristically cacheable statuses). no-cache forces 0 and sets no_cache.
 * must-revalidate, proxy-revalidate or s-maxage set must_revalidate. Lifetimes are capped at
 * TMT_CC_DELTA_MAX seconds.
 *
 * Age (RFC 9111 section 4.2.3): apparent_age = max(0, response_time - Date), response_delay =
 * max(0, response_time - request_time), corrected_age_value = Age + response_delay,
 * initial_age_ms = max(apparent_age, corrected_age_value). Without a valid Date the apparent age
 * is 0 (the received time stands in, RFC 9110 section 6.6.1); an Age that is not delta-seconds is
 * ignored. Arithmetic saturates; nothing overflows whatever the times.
 */
void tmt_hc_evaluate(const struct tmt_hc_opts *o, enum tmt_http_method method, int status,
                     const struct tmt_http_header *req, size_t n_req,
                     const struct tmt_http_header *resp, size_t n_resp, int64_t request_time_ms,
                     int64_t response_time_ms, struct tmt_hc_resp *out);

/*
 * current_age (RFC 9111 section 4.2.3): initial_age_ms plus the time resident in this cache,
 * now_ms - response_time_ms (0 if the clock went back). Saturates instead of overflowing.
 */
int64_t tmt_hc_current_age_ms(int64_t initial_age_ms, int64_t response_time_ms, int64_t now_ms);

/* RFC 9111 section 4.2: fresh while the lifetime exceeds the current age. */
bool tmt_hc_is_fresh(const struct tmt_hc_resp *r, int64_t current_age_ms);

/*
 * True if a field named `name` (any case) is hop-by-hop and must be neither stored nor forwarded:
 * Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization, and every name listed in the Connection field lines of
 * the message h[0..n) (RFC 9110 section 7.6.1). h may be NULL if n is 0.
 */
bool tmt_hc_hop_by_hop(struct tmt_slice name, const struct tmt_http_header *h, size_t n);

/*
 * Whether a stored response may serve a new request as far as its Vary goes (RFC 9111 section
 * 4.1): for every field name listed in the stored response's Vary lines, the request that caused
 * it to be stored (stored_req) and the new request (req) must agree. A field absent from both
 * agrees; absent from one only does not. Present values compare as lists: all lines of the name,
 * split on commas, each element trimmed of whitespace, empty elements dropped, then element by
 * element, case-sensitively except for Accept-Encoding (case-insensitive). A Vary element "*"
 * never matches. No Vary: true. Any pointer may be NULL when its count is 0.
 *
 * Splitting on every comma also splits inside quoted strings and non-list fields; that can only
 * make values equal that differ in whitespace or empty elements around commas, a normalisation
 * RFC 9111 section 4.1 allows for list fields and that is harmless for the others.
 */
bool tmt_hc_vary_match(const struct tmt_http_header *stored_resp, size_t n_resp,
                       const struct tmt_http_header *stored_req, size_t n_stored_req,
                       const struct tmt_http_header *req, size_t n_req);

/*
 * For freshening a stored response with a 304 (RFC 9111 sections 3.2 and 4.3.4): true if the
 * 304's field lines named `name` replace the stored lines of that name, false if the stored lines
 * stay. False for Content-Length, Content-Encoding (the stored bytes are coded as stored),
 * Transfer-Encoding, Content-Range and the fixed hop-by-hop names of tmt_hc_hop_by_hop(); true
 * for everything else. Names listed in the 304's Connection field are hop-by-hop too: the caller
 * also skips a field for which tmt_hc_hop_by_hop(name, 304 fields) is true.
 */
bool tmt_hc_304_updates(struct tmt_slice name);

#endif
