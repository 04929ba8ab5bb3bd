/*
 * http_cache.c: HTTP caching semantics for a shared cache (http_cache.h): Cache-Control and
 * CDN-Cache-Control parsing, storability, freshness lifetime, age, hop-by-hop fields, Vary
 * matching and 304 refresh rules.
 *
 * Pure functions over borrowed slices: no allocation, no clock, no global state besides const
 * tables. Every loop over outside bytes is bounded by the slice length it was given, and every
 * sum or difference of times goes through the saturating helpers, because the times and header
 * values are not ours to trust (the cache_control fuzz target checks both).
 *
 * Directive merging is monotone (min, max, or) so the order of directives and field lines never
 * matters; tmt_cc_parse_cdn() relies on that to parse into a copy and commit only on success.
 */
#include "tmt/http_cache.h"

#include <string.h>

#include "tmt/err.h"

#define DELTA_MAX_MS (TMT_CC_DELTA_MAX * 1000)
#define DAY_MS INT64_C(86400000)

/* A slice of a string literal, usable in static initialisers. */
#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

/* ---- small helpers ---- */

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t clamp_ms(int64_t v)
{
    return v < 0 ? 0 : (v > DELTA_MAX_MS ? DELTA_MAX_MS : v);
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool slice_ieq(struct tmt_slice a, struct tmt_slice b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
            return false;
    }
    return true;
}

static bool slice_eq(struct tmt_slice a, struct tmt_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alpha(char c)
{
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 section 5.6.2 tchar. */
static bool is_tchar(char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

static struct tmt_slice trim(struct tmt_slice s)
{
    while (s.len > 0 && is_ows(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && is_ows(s.p[s.len - 1]))
        s.len--;
    return s;
}

/*
 * delta-seconds (RFC 9111 section 1.2.2): 1*DIGIT, clamped to TMT_CC_DELTA_MAX however many
 * digits follow. -1 if s is empty or holds anything but digits.
 */
static int64_t parse_delta(const char *p, size_t len)
{
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return -1;
        if (v < TMT_CC_DELTA_MAX)
            v = v * 10 + (p[i] - '0');
    }
    return v > TMT_CC_DELTA_MAX ? TMT_CC_DELTA_MAX : v;
}

/* ---- directives ---- */

enum dir {
    D_UNKNOWN,
    D_MAX_AGE,
    D_S_MAXAGE,
    D_SWR,
    D_SIE,
    D_MIN_FRESH,
    D_MAX_STALE,
    D_NO_STORE,
    D_NO_CACHE,
    D_PRIVATE,
    D_PUBLIC,
    D_MUST_REVALIDATE,
    D_PROXY_REVALIDATE,
    D_NO_TRANSFORM,
    D_IMMUTABLE,
    D_ONLY_IF_CACHED,
    D_MUST_UNDERSTAND,
};

static const struct {
    struct tmt_slice name;
    enum dir d;
} dir_names[] = {
    {LIT("max-age"), D_MAX_AGE},
    {LIT("s-maxage"), D_S_MAXAGE},
    {LIT("stale-while-revalidate"), D_SWR},
    {LIT("stale-if-error"), D_SIE},
    {LIT("min-fresh"), D_MIN_FRESH},
    {LIT("max-stale"), D_MAX_STALE},
    {LIT("no-store"), D_NO_STORE},
    {LIT("no-cache"), D_NO_CACHE},
    {LIT("private"), D_PRIVATE},
    {LIT("public"), D_PUBLIC},
    {LIT("must-revalidate"), D_MUST_REVALIDATE},
    {LIT("proxy-revalidate"), D_PROXY_REVALIDATE},
    {LIT("no-transform"), D_NO_TRANSFORM},
    {LIT("immutable"), D_IMMUTABLE},
    {LIT("only-if-cached"), D_ONLY_IF_CACHED},
    {LIT("must-understand"), D_MUST_UNDERSTAND},
};

static enum dir dir_lookup(struct tmt_slice name)
{
    for (size_t i = 0; i < TMT_ARRAY_LEN(dir_names); i++) {
        if (slice_ieq(name, dir_names[i].name))
            return dir_names[i].d;
    }
    return D_UNKNOWN;
}

/*
 * A directive's argument as both parsers reduce it: absent (or Structured Fields Boolean true),
 * a valid delta-seconds, Boolean false (CDN-Cache-Control only), or anything else.
 */
enum arg_kind {
    ARG_NONE,
    ARG_DELTA,
    ARG_FALSE,
    ARG_BAD,
};

struct arg {
    enum arg_kind kind;
    int64_t delta; /* for ARG_DELTA, in [0, TMT_CC_DELTA_MAX] */
};

static void merge_min(int64_t *field, int64_t v)
{
    if (*field < 0 || v < *field)
        *field = v;
}

static void merge_max(int64_t *field, int64_t v)
{
    if (v > *field)
        *field = v;
}

/* The flag of a boolean directive, and whether it restricts caching (see tmt_cc_parse). */
static bool *dir_flag(struct tmt_cc *cc, enum dir d, bool *restricts)
{
    *restricts = true;
    switch (d) {
    case D_NO_STORE:
        return &cc->no_store;
    case D_NO_CACHE:
        return &cc->no_cache;
    case D_PRIVATE:
        return &cc->private_;
    case D_MUST_REVALIDATE:
        return &cc->must_revalidate;
    case D_PROXY_REVALIDATE:
        return &cc->proxy_revalidate;
    case D_NO_TRANSFORM:
        return &cc->no_transform;
    case D_ONLY_IF_CACHED:
        return &cc->only_if_cached;
    case D_PUBLIC:
        *restricts = false;
        return &cc->public_;
    case D_IMMUTABLE:
        *restricts = false;
        return &cc->immutable;
    case D_MUST_UNDERSTAND:
        *restricts = false;
        return &cc->must_understand;
    default:
        return NULL;
    }
}

static void dir_apply(struct tmt_cc *cc, enum dir d, struct arg a)
{
    switch (d) {
    case D_UNKNOWN:
        return;
    case D_MAX_AGE:
        /* Invalid freshness information makes the response stale (RFC 9111 section 4.2.1). */
        merge_min(&cc->max_age, a.kind == ARG_DELTA ? a.delta : 0);
        return;
    case D_S_MAXAGE:
        merge_min(&cc->s_maxage, a.kind == ARG_DELTA ? a.delta : 0);
        return;
    case D_SWR:
        if (a.kind == ARG_DELTA)
            merge_min(&cc->stale_while_revalidate, a.delta);
        return;
    case D_SIE:
        if (a.kind == ARG_DELTA)
            merge_min(&cc->stale_if_error, a.delta);
        return;
    case D_MIN_FRESH:
        if (a.kind == ARG_DELTA)
            merge_max(&cc->min_fresh, a.delta);
        return;
    case D_MAX_STALE:
        if (a.kind == ARG_DELTA)
            merge_min(&cc->max_stale, a.delta);
        else if (a.kind == ARG_NONE)
            merge_min(&cc->max_stale, TMT_CC_DELTA_MAX);
        return;
    default:
        break;
    }
    bool restricts;
    bool *flag = dir_flag(cc, d, &restricts);
    if (flag == NULL)
        return;
    if (restricts ? a.kind != ARG_FALSE : a.kind == ARG_NONE)
        *flag = true;
}

void tmt_cc_init(struct tmt_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = -1;
    cc->s_maxage = -1;
    cc->stale_while_revalidate = -1;
    cc->stale_if_error = -1;
    cc->min_fresh = -1;
    cc->max_stale = -1;
}

/* ---- Cache-Control (RFC 9111 section 5.2) ---- */

static size_t skip_ows(const char *v, size_t len, size_t i)
{
    while (i < len && is_ows(v[i]))
        i++;
    return i;
}

/*
 * v[i] is '"': returns the index after the closing quote, or len if there is none (*closed then
 * false). A backslash escapes the next byte (quoted-pair).
 */
static size_t skip_quoted(const char *v, size_t len, size_t i, bool *closed)
{
    for (i++; i < len; i++) {
        if (v[i] == '\\') {
            if (++i >= len)
                break;
        } else if (v[i] == '"') {
            *closed = true;
            return i + 1;
        }
    }
    *closed = false;
    return len;
}

/* The index of the next ',' at or after i that is not inside a quoted-string, or len. */
static size_t skip_element(const char *v, size_t len, size_t i)
{
    while (i < len && v[i] != ',') {
        if (v[i] == '"') {
            bool closed;
            i = skip_quoted(v, len, i, &closed);
        } else {
            i++;
        }
    }
    return i;
}

static struct arg delta_arg(const char *p, size_t len)
{
    int64_t d = parse_delta(p, len);
    return d < 0 ? (struct arg){ARG_BAD, 0} : (struct arg){ARG_DELTA, d};
}

void tmt_cc_parse(struct tmt_cc *cc, const char *v, size_t len)
{
    cc->present = true;
    size_t i = 0;
    while (i < len) {
        if (v[i] == ',' || is_ows(v[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && is_tchar(v[i]))
            i++;
        if (i == start) { /* not a directive name: skip the element */
            i = skip_element(v, len, i);
            continue;
        }
        struct tmt_slice name = {v + start, i - start};
        struct arg a = {ARG_NONE, 0};
        size_t j = skip_ows(v, len, i);
        if (j < len && v[j] == '=') {
            j = skip_ows(v, len, j + 1);
            if (j < len && v[j] == '"') {
                bool closed;
                size_t end = skip_quoted(v, len, j, &closed);
                /* A quoted delta-seconds has no escapes, so the raw content must be digits. */
                a = closed ? delta_arg(v + j + 1, end - j - 2) : (struct arg){ARG_BAD, 0};
                j = end;
            } else {
                size_t vs = j;
                while (j < len && is_tchar(v[j]))
                    j++;
                a = delta_arg(v + vs, j - vs);
            }
            j = skip_ows(v, len, j);
        }
        if (j < len && v[j] != ',') { /* junk after the directive */
            a.kind = ARG_BAD;
            j = skip_element(v, len, j);
        }
        i = j;
        dir_apply(cc, dir_lookup(name), a);
    }
}

/* ---- CDN-Cache-Control: a Structured Fields Dictionary (RFC 8941 section 4.2) ---- */

struct sf {
    const char *v;
    size_t len, i;
};

static bool sf_key(struct sf *s, struct tmt_slice *key)
{
    size_t start = s->i;
    if (s->i >= s->len || !(is_lcalpha(s->v[s->i]) || s->v[s->i] == '*'))
        return false;
    for (s->i++; s->i < s->len; s->i++) {
        char c = s->v[s->i];
        if (!(is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.' || c == '*'))
            break;
    }
    *key = (struct tmt_slice){s->v + start, s->i - start};
    return true;
}

/* Integer or Decimal (RFC 8941 section 4.2.4); a non-negative Integer becomes ARG_DELTA. */
static bool sf_number(struct sf *s, struct arg *a)
{
    bool neg = false, decimal = false;
    if (s->v[s->i] == '-') {
        neg = true;
        s->i++;
    }
    size_t start = s->i, ndigits = 0, frac = 0;
    if (s->i >= s->len || !is_digit(s->v[s->i]))
        return false;
    for (; s->i < s->len; s->i++) {
        char c = s->v[s->i];
        if (is_digit(c)) {
            ndigits++;
            if (decimal)
                frac++;
        } else if (c == '.' && !decimal) {
            if (ndigits > 12)
                return false;
            decimal = true;
        } else {
            break;
        }
        if (!decimal && ndigits > 15)
            return false;
        if (decimal && ndigits > 15) /* 16 characters with the dot */
            return false;
    }
    if (decimal && (frac == 0 || frac > 3))
        return false;
    if (decimal || neg)
        *a = (struct arg){ARG_BAD, 0};
    else
        *a = delta_arg(s->v + start, s->i - start);
    return true;
}

static bool sf_string(struct sf *s)
{
    for (s->i++; s->i < s->len; s->i++) {
        char c = s->v[s->i];
        if (c == '\\') {
            if (++s->i >= s->len || (s->v[s->i] != '"' && s->v[s->i] != '\\'))
                return false;
        } else if (c == '"') {
            s->i++;
            return true;
        } else if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return false;
}

static bool sf_bytes(struct sf *s)
{
    for (s->i++; s->i < s->len; s->i++) {
        char c = s->v[s->i];
        if (c == ':') {
            s->i++;
            return true;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '='))
            return false;
    }
    return false;
}

static bool sf_bare_item(struct sf *s, struct arg *a)
{
    *a = (struct arg){ARG_BAD, 0};
    if (s->i >= s->len)
        return false;
    char c = s->v[s->i];
    if (c == '-' || is_digit(c))
        return sf_number(s, a);
    if (c == '"')
        return sf_string(s);
    if (c == ':')
        return sf_bytes(s);
    if (c == '?') {
        if (s->i + 1 >= s->len || (s->v[s->i + 1] != '0' && s->v[s->i + 1] != '1'))
            return false;
        a->kind = s->v[s->i + 1] == '1' ? ARG_NONE : ARG_FALSE;
        s->i += 2;
        return true;
    }
    if (is_alpha(c) || c == '*') { /* Token */
        for (s->i++; s->i < s->len; s->i++) {
            c = s->v[s->i];
            if (!(is_tchar(c) || c == ':' || c == '/'))
                break;
        }
        return true;
    }
    return false;
}

static bool sf_params(struct sf *s)
{
    while (s->i < s->len && s->v[s->i] == ';') {
        s->i++;
        while (s->i < s->len && s->v[s->i] == ' ')
            s->i++;
        struct tmt_slice key;
        if (!sf_key(s, &key))
            return false;
        if (s->i < s->len && s->v[s->i] == '=') {
            s->i++;
            struct arg ignored;
            if (!sf_bare_item(s, &ignored))
                return false;
        }
    }
    return true;
}

static bool sf_inner_list(struct sf *s)
{
    s->i++; /* '(' */
    for (;;) {
        while (s->i < s->len && s->v[s->i] == ' ')
            s->i++;
        if (s->i >= s->len)
            return false;
        if (s->v[s->i] == ')') {
            s->i++;
            return sf_params(s);
        }
        struct arg ignored;
        if (!sf_bare_item(s, &ignored) || !sf_params(s))
            return false;
        if (s->i >= s->len || (s->v[s->i] != ' ' && s->v[s->i] != ')'))
            return false;
    }
}

int tmt_cc_parse_cdn(struct tmt_cc *cc, const char *v, size_t len)
{
    struct tmt_slice line = trim((struct tmt_slice){v, len});
    struct sf s = {line.p, line.len, 0};
    struct tmt_cc t = *cc;
    size_t members = 0;
    while (s.i < s.len) {
        struct tmt_slice key;
        if (!sf_key(&s, &key))
            return TMT_EINVAL;
        struct arg a = {ARG_NONE, 0};
        if (s.i < s.len && s.v[s.i] == '=') {
            s.i++;
            if (s.i < s.len && s.v[s.i] == '(') {
                if (!sf_inner_list(&s))
                    return TMT_EINVAL;
                a.kind = ARG_BAD;
            } else if (!sf_bare_item(&s, &a) || !sf_params(&s)) {
                return TMT_EINVAL;
            }
        } else if (!sf_params(&s)) {
            return TMT_EINVAL;
        }
        dir_apply(&t, dir_lookup(key), a);
        members++;
        while (s.i < s.len && is_ows(s.v[s.i]))
            s.i++;
        if (s.i >= s.len)
            break;
        if (s.v[s.i] != ',')
            return TMT_EINVAL;
        s.i++;
        while (s.i < s.len && is_ows(s.v[s.i]))
            s.i++;
        if (s.i >= s.len) /* trailing comma */
            return TMT_EINVAL;
    }
    if (members > 0)
        t.present = true;
    *cc = t;
    return 0;
}

/* ---- storing and freshness (RFC 9111 sections 3 and 4.2) ---- */

/* RFC 9110 section 15.1, without 206 (the caller never stores partial content). */
static bool status_heuristic(int status)
{
    switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
        return true;
    default:
        return false;
    }
}

/* Statuses whose caching rules this cache implements, for must-understand. */
static bool status_understood(int status)
{
    return status_heuristic(status) || status == 302 || status == 307;
}

void tmt_hc_opts_default(struct tmt_hc_opts *o)
{
    o->heuristic_max_ms = DAY_MS;
    o->cdn_cache_control = true;
}

/* An HTTP date in unix ms, or false. Years 0..9999 only, so the product cannot overflow. */
static bool date_ms(struct tmt_slice v, int64_t *ms)
{
    int64_t s;
    if (tmt_http_date_parse(v, &s) != 0)
        return false;
    *ms = s * 1000;
    return true;
}

/* What one pass over the response fields collects. */
struct resp_fields {
    struct tmt_cc cc, cdn;
    bool cdn_bad;
    bool have_expires, have_date, have_lm;
    struct tmt_slice expires;
    int64_t date_ms, lm_ms;
    int64_t age_s; /* -1: absent or invalid */
    bool age_seen, date_seen, lm_seen;
    bool vary_star;
};

static void scan_resp(const struct tmt_hc_opts *o, const struct tmt_http_header *h, size_t n,
                      struct resp_fields *f)
{
    memset(f, 0, sizeof(*f));
    tmt_cc_init(&f->cc);
    tmt_cc_init(&f->cdn);
    f->date_ms = f->lm_ms = f->age_s = -1;
    for (size_t i = 0; i < n; i++) {
        struct tmt_slice name = h[i].name, v = h[i].value;
        if (tmt_http_slice_ieq(name, "cache-control")) {
            tmt_cc_parse(&f->cc, v.p, v.len);
        } else if (tmt_http_slice_ieq(name, "cdn-cache-control")) {
            if (o->cdn_cache_control && !f->cdn_bad && tmt_cc_parse_cdn(&f->cdn, v.p, v.len) != 0)
                f->cdn_bad = true;
        } else if (tmt_http_slice_ieq(name, "expires")) {
            /* Several Expires lines: the first is used (RFC 9111 section 4.2.1 allows it). */
            if (!f->have_expires) {
                f->have_expires = true;
                f->expires = v;
            }
        } else if (tmt_http_slice_ieq(name, "date")) {
            if (!f->date_seen) {
                f->date_seen = true;
                f->have_date = date_ms(v, &f->date_ms);
                if (!f->have_date)
                    f->date_ms = -1;
            }
        } else if (tmt_http_slice_ieq(name, "last-modified")) {
            if (!f->lm_seen) {
                f->lm_seen = true;
                f->have_lm = date_ms(v, &f->lm_ms);
                if (!f->have_lm)
                    f->lm_ms = -1;
            }
        } else if (tmt_http_slice_ieq(name, "age")) {
            if (!f->age_seen) {
                f->age_seen = true;
                struct tmt_slice t = trim(v);
                f->age_s = parse_delta(t.p, t.len);
            }
        } else if (tmt_http_slice_ieq(name, "vary")) {
            if (tmt_http_list_has(v, "*"))
                f->vary_star = true;
        }
    }
}

static int64_t lifetime_ms(const struct tmt_hc_opts *o, int status, const struct tmt_cc *d,
                           const struct resp_fields *f, bool use_expires, int64_t response_time_ms,
                           bool *heuristic)
{
    /* Without a valid Date the time the response arrived stands in (RFC 9110 section 6.6.1). */
    int64_t date = f->have_date ? f->date_ms : response_time_ms;
    *heuristic = false;
    if (d->s_maxage >= 0)
        return d->s_maxage * 1000;
    if (d->max_age >= 0)
        return d->max_age * 1000;
    if (use_expires && f->have_expires) {
        int64_t exp;
        if (!date_ms(f->expires, &exp))
            return 0; /* invalid Expires, "0" included: already expired (RFC 9111 5.3) */
        return clamp_ms(sat_sub(exp, date));
    }
    *heuristic = true;
    if (!status_heuristic(status) || !f->have_lm)
        return 0;
    int64_t since = sat_sub(date, f->lm_ms);
    if (since <= 0)
        return 0;
    int64_t cap = o->heuristic_max_ms > 0 ? o->heuristic_max_ms : 0;
    return clamp_ms(TMT_MIN(since / 10, cap));
}

static const char *why_not(enum tmt_http_method method, int status, const struct tmt_cc *rq,
                           const struct tmt_cc *d, bool explicit_fresh, bool authorization,
                           bool vary_star)
{
    if (method != TMT_HTTP_GET)
        return "method";
    if (status < 200 || status > 599 || status == 206 || status == 304)
        return "status";
    bool understood = status_understood(status);
    if (rq->no_store || (d->no_store && !(d->must_understand && understood)))
        return "no-store";
    if (d->must_understand && !understood)
        return "status";
    if (d->private_)
        return "private";
    if (authorization && !(d->public_ || d->s_maxage >= 0 || d->must_revalidate))
        return "authorization";
    if (vary_star)
        return "vary *";
    if (!explicit_fresh && !status_heuristic(status))
        return "no freshness info";
    return NULL;
}

void tmt_hc_evaluate(const struct tmt_hc_opts *o, enum tmt_http_method method, int status,
                     const struct tmt_http_header *req, size_t n_req,
                     const struct tmt_http_header *resp, size_t n_resp, int64_t request_time_ms,
                     int64_t response_time_ms, struct tmt_hc_resp *out)
{
    TMT_ASSERT(o != NULL && out != NULL);
    TMT_ASSERT(req != NULL || n_req == 0);
    TMT_ASSERT(resp != NULL || n_resp == 0);

    struct tmt_cc rq;
    tmt_cc_init(&rq);
    bool authorization = false;
    for (size_t i = 0; i < n_req; i++) {
        if (tmt_http_slice_ieq(req[i].name, "cache-control"))
            tmt_cc_parse(&rq, req[i].value.p, req[i].value.len);
        else if (tmt_http_slice_ieq(req[i].name, "authorization"))
            authorization = true;
    }

    struct resp_fields f;
    scan_resp(o, resp, n_resp, &f);
    /* RFC 9213 section 2.1: a valid, non-empty CDN-Cache-Control replaces Cache-Control and
     * Expires for this cache; an invalid one is ignored as a whole. */
    bool use_cdn = o->cdn_cache_control && !f.cdn_bad && f.cdn.present;
    const struct tmt_cc *d = use_cdn ? &f.cdn : &f.cc;
    bool use_expires = !use_cdn;

    memset(out, 0, sizeof(*out));
    out->cdn_cache_control = use_cdn;
    out->date_ms = f.date_ms;
    out->last_modified_ms = f.lm_ms;
    out->lifetime_ms =
        lifetime_ms(o, status, d, &f, use_expires, response_time_ms, &out->heuristic);
    out->no_cache = d->no_cache;
    if (out->no_cache)
        out->lifetime_ms = 0;
    /* s-maxage implies proxy-revalidate for a shared cache (RFC 9111 section 5.2.2.10). */
    out->must_revalidate = d->must_revalidate || d->proxy_revalidate || d->s_maxage >= 0;
    bool no_stale = out->must_revalidate || out->no_cache;
    out->swr_ms =
        !no_stale && d->stale_while_revalidate >= 0 ? d->stale_while_revalidate * 1000 : -1;
    out->sie_ms = !no_stale && d->stale_if_error >= 0 ? d->stale_if_error * 1000 : -1;

    /* RFC 9111 section 4.2.3. */
    int64_t apparent = f.have_date ? TMT_MAX(0, sat_sub(response_time_ms, f.date_ms)) : 0;
    int64_t delay = TMT_MAX(0, sat_sub(response_time_ms, request_time_ms));
    int64_t corrected = sat_add(f.age_s >= 0 ? f.age_s * 1000 : 0, delay);
    out->initial_age_ms = TMT_MAX(apparent, corrected);

    bool explicit_fresh =
        d->max_age >= 0 || d->s_maxage >= 0 || d->public_ || (use_expires && f.have_expires);
    out->why = why_not(method, status, &rq, d, explicit_fresh, authorization, f.vary_star);
    out->storable = out->why == NULL;
}

int64_t tmt_hc_current_age_ms(int64_t initial_age_ms, int64_t response_time_ms, int64_t now_ms)
{
    int64_t resident = TMT_MAX(0, sat_sub(now_ms, response_time_ms));
    return sat_add(TMT_MAX(0, initial_age_ms), resident);
}

bool tmt_hc_is_fresh(const struct tmt_hc_resp *r, int64_t current_age_ms)
{
    return r->lifetime_ms > current_age_ms;
}

/* ---- field lists: hop-by-hop, Vary, 304 ---- */

/*
 * The next non-empty element of a comma-separated value from *pos on, trimmed; false at the end.
 */
static bool next_element(struct tmt_slice v, size_t *pos, struct tmt_slice *out)
{
    while (*pos < v.len) {
        size_t start = *pos;
        while (*pos < v.len && v.p[*pos] != ',')
            (*pos)++;
        struct tmt_slice e = trim((struct tmt_slice){v.p + start, *pos - start});
        if (*pos < v.len)
            (*pos)++;
        if (e.len > 0) {
            *out = e;
            return true;
        }
    }
    return false;
}

/* Walks the elements of every field line named `name` in h[0..n), in order. */
struct field_iter {
    const struct tmt_http_header *h;
    size_t n, i, pos;
    struct tmt_slice name;
};

static bool field_next(struct field_iter *it, struct tmt_slice *out)
{
    for (; it->i < it->n; it->i++, it->pos = 0) {
        if (slice_ieq(it->h[it->i].name, it->name) &&
            next_element(it->h[it->i].value, &it->pos, out))
            return true;
    }
    return false;
}

static bool field_present(const struct tmt_http_header *h, size_t n, struct tmt_slice name)
{
    for (size_t i = 0; i < n; i++) {
        if (slice_ieq(h[i].name, name))
            return true;
    }
    return false;
}

static const struct tmt_slice hop_names[] = {
    LIT("connection"),
    LIT("keep-alive"),
    LIT("proxy-connection"),
    LIT("te"),
    LIT("trailer"),
    LIT("transfer-encoding"),
    LIT("upgrade"),
    LIT("proxy-authenticate"),
    LIT("proxy-authorization"),
};

static bool fixed_hop_by_hop(struct tmt_slice name)
{
    for (size_t i = 0; i < TMT_ARRAY_LEN(hop_names); i++) {
        if (slice_ieq(name, hop_names[i]))
            return true;
    }
    return false;
}

bool tmt_hc_hop_by_hop(struct tmt_slice name, const struct tmt_http_header *h, size_t n)
{
    if (fixed_hop_by_hop(name))
        return true;
    struct field_iter it = {h, n, 0, 0, TMT_SLICE_LIT("connection")};
    struct tmt_slice e;
    while (field_next(&it, &e)) {
        if (slice_ieq(e, name))
            return true;
    }
    return false;
}

/* Whether the values of field `name` agree in two requests (see tmt_hc_vary_match). */
static bool field_values_match(struct tmt_slice name, const struct tmt_http_header *a, size_t na,
                               const struct tmt_http_header *b, size_t nb)
{
    bool pa = field_present(a, na, name), pb = field_present(b, nb, name);
    if (pa != pb)
        return false;
    if (!pa)
        return true;
    bool nocase = tmt_http_slice_ieq(name, "accept-encoding");
    struct field_iter ia = {a, na, 0, 0, name}, ib = {b, nb, 0, 0, name};
    for (;;) {
        struct tmt_slice ea, eb;
        bool ha = field_next(&ia, &ea), hb = field_next(&ib, &eb);
        if (ha != hb)
            return false;
        if (!ha)
            return true;
        if (!(nocase ? slice_ieq(ea, eb) : slice_eq(ea, eb)))
            return false;
    }
}

bool tmt_hc_vary_match(const struct tmt_http_header *stored_resp, size_t n_resp,
                       const struct tmt_http_header *stored_req, size_t n_stored_req,
                       const struct tmt_http_header *req, size_t n_req)
{
    struct field_iter it = {stored_resp, n_resp, 0, 0, TMT_SLICE_LIT("vary")};
    struct tmt_slice name;
    while (field_next(&it, &name)) {
        if (name.len == 1 && name.p[0] == '*')
            return false;
        if (!field_values_match(name, stored_req, n_stored_req, req, n_req))
            return false;
    }
    return true;
}

bool tmt_hc_304_updates(struct tmt_slice name)
{
    /* Content-Length and the framing and coding of the stored bytes stay as stored (RFC 9111
     * section 3.2); Content-Range is processed by the HTTP layer, not stored. */
    return !fixed_hop_by_hop(name) && !tmt_http_slice_ieq(name, "content-length") &&
           !tmt_http_slice_ieq(name, "content-encoding") &&
           !tmt_http_slice_ieq(name, "content-range");
}
