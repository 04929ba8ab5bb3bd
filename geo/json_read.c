/*
 * json_read.c: the small JSON reader of the coverage-zone file (zones.c leads it by the schema).
 *
 * Why not jansson: every error must name the line of the value at fault (a bad CIDR among ten
 * thousand), and jansson gives positions only for syntax errors. The reader is strict RFC 8259
 * (UTF-8 checked, no comments, no trailing commas, numbers by the grammar), never reads past the
 * length it was given, bounds its recursion (GEO_JSON_DEPTH) and the strings it decodes
 * (GEO_STR_MAX), and keeps the first error only: every function returns 0 or that error's code.
 */
#include "geo_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"

int geo_jr_fail(struct jr *r, unsigned line, int code, const char *fmt, ...)
{
    if (r->code != TMT_OK)
        return r->code;
    char msg[TMT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->code = code;
    tmt_err_set(r->err, code, "%s:%u: %s", r->name, line, msg);
    return code;
}

void geo_jr_ws(struct jr *r)
{
    while (r->p < r->end) {
        char c = *r->p;
        if (c == '\n')
            r->line++;
        else if (c != ' ' && c != '\t' && c != '\r')
            return;
        r->p++;
    }
}

/* Skips whitespace, then consumes c if it is next. */
bool geo_jr_eat(struct jr *r, char c)
{
    geo_jr_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

const char *geo_jr_next_kind(const struct jr *r)
{
    if (r->p >= r->end)
        return "the end of the file";
    switch (*r->p) {
    case '{':
        return "an object";
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    case ']':
        return "']'";
    case '}':
        return "'}'";
    case ',':
        return "','";
    default:
        return (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) ? "a number" : "a stray character";
    }
}

/* Length of the well-formed UTF-8 sequence at p (first byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = tmt_hex_value((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

static void put(char *buf, size_t cap, size_t *len, bool *long_, const char *s, size_t n)
{
    if (*len + n >= cap) {
        *long_ = true;
        return;
    }
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/*
 * Reads a string (the opening quote next, after whitespace). Decodes into buf (NUL-terminated)
 * when buf is not NULL; *too_long when it did not fit (the string is still read and checked).
 */
int geo_jr_string(struct jr *r, char *buf, size_t cap, size_t *len, bool *too_long)
{
    size_t n = 0;
    bool tl = false;
    if (buf != NULL)
        buf[0] = '\0';
    geo_jr_ws(r);
    if (r->p >= r->end || *r->p != '"')
        return GEO_JR_FAIL(r, "expected a string, found %s", geo_jr_next_kind(r));
    r->p++;
    for (;;) {
        if (r->p >= r->end)
            return GEO_JR_FAIL(r, "unterminated string");
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            r->p++;
            break;
        }
        if (c < 0x20)
            return GEO_JR_FAIL(r, "control character in a string");
        if (c >= 0x80) {
            size_t u = utf8_len((const unsigned char *)r->p, (const unsigned char *)r->end);
            if (u == 0)
                return GEO_JR_FAIL(r, "invalid UTF-8 in a string");
            if (buf != NULL)
                put(buf, cap, &n, &tl, r->p, u);
            r->p += u;
            continue;
        }
        if (c != '\\') {
            if (buf != NULL)
                put(buf, cap, &n, &tl, r->p, 1);
            r->p++;
            continue;
        }
        if (r->end - r->p < 2)
            return GEO_JR_FAIL(r, "unterminated string");
        char e = r->p[1], out;
        r->p += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            out = e;
            break;
        case 'b':
            out = '\b';
            break;
        case 'f':
            out = '\f';
            break;
        case 'n':
            out = '\n';
            break;
        case 'r':
            out = '\r';
            break;
        case 't':
            out = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (r->end - r->p < 4 || hex4(r->p, &cp) != 0)
                return GEO_JR_FAIL(r, "bad \\u escape");
            r->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return GEO_JR_FAIL(r, "lone surrogate in a \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                    hex4(r->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    return GEO_JR_FAIL(r, "lone surrogate in a \\u escape");
                r->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            char u[4];
            size_t un;
            if (cp < 0x80) {
                u[0] = (char)cp;
                un = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6);
                u[1] = (char)(0x80 | (cp & 0x3f));
                un = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | cp >> 12);
                u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                un = 3;
            } else {
                u[0] = (char)(0xf0 | cp >> 18);
                u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
                u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                un = 4;
            }
            if (buf != NULL)
                put(buf, cap, &n, &tl, u, un);
            continue;
        }
        default:
            return GEO_JR_FAIL(r, "bad escape \\%c in a string", e >= 0x20 && e < 0x7f ? e : '?');
        }
        if (buf != NULL)
            put(buf, cap, &n, &tl, &out, 1);
    }
    if (len != NULL)
        *len = n;
    if (too_long != NULL)
        *too_long = tl;
    return 0;
}

/* Reads a number (RFC 8259 grammar); *out is NaN when it does not fit a double. */
int geo_jr_number(struct jr *r, double *out)
{
    geo_jr_ws(r);
    const char *s = r->p, *p = r->p;
    if (p < r->end && *p == '-')
        p++;
    if (p >= r->end || *p < '0' || *p > '9')
        return GEO_JR_FAIL(r, "expected a number, found %s", geo_jr_next_kind(r));
    if (*p == '0') {
        p++;
    } else {
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && *p == '.') {
        p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return GEO_JR_FAIL(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return GEO_JR_FAIL(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    r->p = p;
    if (out != NULL) {
        char buf[64];
        size_t n = (size_t)(p - s);
        if (n >= sizeof(buf)) {
            *out = NAN; /* too many digits for a coordinate anyway */
        } else {
            memcpy(buf, s, n);
            buf[n] = '\0';
            errno = 0;
            double v = strtod(buf, NULL);
            *out = (errno == ERANGE && isinf(v)) ? NAN : v;
        }
    }
    return 0;
}

static int literal(struct jr *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return GEO_JR_FAIL(r, "expected a value, found %s", geo_jr_next_kind(r));
    r->p += n;
    return 0;
}

/* Reads and discards any value, checking it. */
int geo_jr_skip(struct jr *r, int depth)
{
    geo_jr_ws(r);
    if (depth > GEO_JSON_DEPTH)
        return GEO_JR_FAIL(r, "nested deeper than %d", GEO_JSON_DEPTH);
    if (r->p >= r->end)
        return GEO_JR_FAIL(r, "expected a value, found the end of the file");
    switch (*r->p) {
    case '"':
        return geo_jr_string(r, NULL, 0, NULL, NULL);
    case 't':
        return literal(r, "true");
    case 'f':
        return literal(r, "false");
    case 'n':
        return literal(r, "null");
    case '[':
        r->p++;
        if (geo_jr_eat(r, ']'))
            return 0;
        do {
            if (geo_jr_skip(r, depth + 1) != 0)
                return r->code;
        } while (geo_jr_eat(r, ','));
        return geo_jr_eat(r, ']') ? 0 : GEO_JR_FAIL(r, "expected ',' or ']' in an array");
    case '{':
        r->p++;
        if (geo_jr_eat(r, '}'))
            return 0;
        do {
            if (geo_jr_string(r, NULL, 0, NULL, NULL) != 0)
                return r->code;
            if (!geo_jr_eat(r, ':'))
                return GEO_JR_FAIL(r, "expected ':' after a member name");
            if (geo_jr_skip(r, depth + 1) != 0)
                return r->code;
        } while (geo_jr_eat(r, ','));
        return geo_jr_eat(r, '}') ? 0 : GEO_JR_FAIL(r, "expected ',' or '}' in an object");
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return geo_jr_number(r, NULL);
        return GEO_JR_FAIL(r, "expected a value, found %s", geo_jr_next_kind(r));
    }
}

bool geo_jr_key_is(const struct key *k, const char *name)
{
    return !k->too_long && k->len == strlen(name) && memcmp(k->s, name, k->len) == 0;
}

/*
 * Object iteration: begin (expects '{'), then next() until it returns 0 (end of object) or an
 * error; 1 means a member name is in *k and the reader stands before its value.
 */
int geo_jr_obj_begin(struct jr *r, const char *what)
{
    geo_jr_ws(r);
    if (r->p >= r->end || *r->p != '{')
        return GEO_JR_FAIL(r, "%s must be an object, found %s", what, geo_jr_next_kind(r));
    r->p++;
    return 0;
}

int geo_jr_obj_next(struct jr *r, bool *first, struct key *k)
{
    if (*first) {
        *first = false;
        if (geo_jr_eat(r, '}'))
            return 0;
    } else if (!geo_jr_eat(r, ',')) {
        return geo_jr_eat(r, '}') ? 0 : GEO_JR_FAIL(r, "expected ',' or '}' after a member");
    }
    geo_jr_ws(r);
    k->line = r->line;
    if (geo_jr_string(r, k->s, sizeof(k->s), &k->len, &k->too_long) != 0)
        return r->code;
    if (!geo_jr_eat(r, ':'))
        return GEO_JR_FAIL(r, "expected ':' after a member name");
    return 1;
}

/*
 * Outside text as a message may show it: printable ASCII, anything else (quotes and backslashes
 * too) as '?', at most 64 characters and then "...".
 */
const char *geo_shown(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        if (i == 64) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        out[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    out[o] = '\0';
    return out;
}
