/*
 * token.c: signing and verification of our URI Signing tokens (see token.h for the profile).
 *
 * Verification order is the contract: structure (three base64url parts) and the header's JSON,
 * alg, the rest of the header, kid, signature, and only then the payload's JSON and claims. The
 * payload is never parsed before its HMAC matched, so a forged token costs one header parse and
 * one HMAC, and the JSON parser never sees a payload we did not sign ourselves.
 *
 * HMAC-SHA-256 is computed here from SHA-256 (RFC 2104; keys are at most one 64-byte block, so
 * they are only padded, never hashed). OpenSSL 3's HMAC() one-shot fetches the HMAC and SHA-256
 * implementations on every call, about 1.3 us for a 400-byte token on the reference machine;
 * a SHA-256 fetched once per process and two digests over a per-call EVP_MD_CTX take 0.54 us,
 * less than an EVP_MAC context duplicated from an unkeyed template (0.83 us) and without the
 * per-thread state a reused EVP_MAC context (0.59 us) would need. The fetched EVP_MD is shared
 * read-only by all threads, which OpenSSL allows; it lives until the process exits.
 *
 * JSON is read with jansson (strict: duplicates rejected, no NUL in strings); the signer writes
 * its JSON itself into a stack buffer, in a fixed member order.
 *
 * Nothing is allocated beyond jansson's parse trees (freed before returning) and the per-call
 * digest context; no lock is taken after the first call.
 */
#include "tmt/token.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tmt/err.h"
#include "tmt/http.h"

#define MAC_LEN 32
#define BLOCK_LEN 64

static_assert(TMT_TOKEN_SECRET_MAX <= BLOCK_LEN, "a key longer than a block would be hashed");

/* ---- HMAC-SHA-256 ---- */

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
/* Fetched once (process lifetime, read-only afterwards); NULL if the fetch failed. */
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static bool hmac_sha256(const unsigned char *key, size_t key_len, const void *msg, size_t len,
                        unsigned char mac[MAC_LEN])
{
    pthread_once(&sha256_once, sha256_fetch);
    /* Without an explicit fetch (an odd provider setup), fall back to the implicit one. */
    const EVP_MD *md = sha256_fetched != NULL ? sha256_fetched : EVP_sha256();
    unsigned char pad[BLOCK_LEN], inner[MAC_LEN];
    unsigned int l = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return false;
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] = (unsigned char)((i < key_len ? key[i] : 0) ^ 0x36);
    bool ok = EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
              EVP_DigestUpdate(ctx, pad, BLOCK_LEN) == 1 && EVP_DigestUpdate(ctx, msg, len) == 1 &&
              EVP_DigestFinal_ex(ctx, inner, &l) == 1 && l == MAC_LEN;
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] = (unsigned char)((i < key_len ? key[i] : 0) ^ 0x5c);
    ok = ok && EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
         EVP_DigestUpdate(ctx, pad, BLOCK_LEN) == 1 && EVP_DigestUpdate(ctx, inner, MAC_LEN) == 1 &&
         EVP_DigestFinal_ex(ctx, mac, &l) == 1 && l == MAC_LEN;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(pad, sizeof(pad));
    return ok;
}

/* ---- shared rules ---- */

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool kid_valid(const char *p, size_t len)
{
    if (len == 0 || len > TMT_TOKEN_KID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(p[i]) && p[i] != '_' && p[i] != '-')
            return false;
    }
    return true;
}

static bool key_usable(const struct tmt_token_key *k)
{
    size_t kl = strnlen(k->kid, sizeof(k->kid));
    return kl < sizeof(k->kid) && kid_valid(k->kid, kl) && k->secret_len >= TMT_TOKEN_SECRET_MIN &&
           k->secret_len <= TMT_TOKEN_SECRET_MAX;
}

/*
 * Characters a cdniuc prefix may hold without a backslash: those that are literal in every
 * regular expression dialect and that a path carries as they are (RFC 3986 pchar without the
 * metacharacters). '-' is literal outside brackets, so it is accepted bare as well as escaped.
 */
static bool prefix_plain(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("/_~!&',;=:@%-", c) != NULL);
}

/* Path characters the signer writes with a backslash in front (metacharacters, and '-'). */
static bool prefix_escaped(char c)
{
    return c != '\0' && strchr(".$()*+-", c) != NULL;
}

/* Claims this module understands, for cdnicrit. */
static bool claim_understood(const char *name, size_t len)
{
    static const char *const known[] = {"iss",   "sub",    "iat",      "exp",     "nbf",
                                        "cdniv", "cdniuc", "cdnicrit", "tmt_dev", "tmt_lease"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(known); i++) {
        if (strlen(known[i]) == len && memcmp(known[i], name, len) == 0)
            return true;
    }
    return false;
}

const char *tmt_token_verdict_text(enum tmt_token_verdict v)
{
    switch (v) {
    case TMT_TOKEN_OK:
        return "ok";
    case TMT_TOKEN_MALFORMED:
        return "malformed token";
    case TMT_TOKEN_BAD_ALG:
        return "unsupported algorithm";
    case TMT_TOKEN_UNKNOWN_KID:
        return "unknown key id";
    case TMT_TOKEN_BAD_SIGNATURE:
        return "bad signature";
    case TMT_TOKEN_EXPIRED:
        return "expired token";
    case TMT_TOKEN_NOT_YET_VALID:
        return "token not yet valid";
    case TMT_TOKEN_BAD_VERSION:
        return "unsupported token version";
    case TMT_TOKEN_BAD_URI_CONTAINER:
        return "unsupported URI container";
    case TMT_TOKEN_PATH_OUTSIDE:
        return "path outside token scope";
    }
    return "unknown verdict";
}

/* ---- signing ---- */

/* A bounded writer: appends stop at cap and set over, which the caller checks once. */
struct wbuf {
    char *p;
    size_t len, cap;
    bool over;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_lit(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

/* A JSON string: '"' and '\' escaped, control characters as \u00XX, UTF-8 as it is. */
static void put_json_str(struct wbuf *w, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    put(w, "\"", 1);
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(w, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
            put(w, e, 6);
        } else {
            put(w, s + i, 1);
        }
    }
    put(w, "\"", 1);
}

static void put_i64(struct wbuf *w, int64_t v)
{
    char d[24];
    size_t n = sizeof(d);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        d[--n] = '-';
    put(w, d + n, sizeof(d) - n);
}

/* A member after the first: ,"name": and the value. */
static void put_str_member(struct wbuf *w, const char *name, const char *value)
{
    put(w, ",\"", 2);
    put_lit(w, name);
    put(w, "\":", 2);
    put_json_str(w, value);
}

static void put_int_member(struct wbuf *w, const char *name, int64_t value)
{
    put(w, ",\"", 2);
    put_lit(w, name);
    put(w, "\":", 2);
    put_i64(w, value);
}

/*
 * True for well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF), the same set jansson accepts when it reads the token back.
 */
static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* A claim string the signer accepts: terminated inside its buffer, valid UTF-8. */
static bool claim_str_ok(const char *s, size_t size, bool required)
{
    size_t n = strnlen(s, size);
    return n < size && (n > 0 || !required) && utf8_valid(s, n);
}

/* A prefix the signer accepts (see tmt_token_sign in token.h). */
static bool sign_prefix_ok(const char *prefix)
{
    size_t n = strnlen(prefix, TMT_TOKEN_PREFIX_MAX + 1);
    if (n == 0 || n > TMT_TOKEN_PREFIX_MAX || prefix[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!prefix_plain(prefix[i]) && !prefix_escaped(prefix[i]))
            return false;
    }
    char norm[TMT_TOKEN_PREFIX_MAX + 1];
    size_t m = tmt_http_path_normalize((struct tmt_slice){prefix, n}, norm, sizeof(norm));
    return m == n && memcmp(norm, prefix, n) == 0;
}

/*
 * The token for k and c into out[0..limit), limit <= TMT_TOKEN_MAX + 1: its length, or
 * TMT_ELIMIT or TMT_EIO. The claims are valid.
 */
static long sign_into(const struct tmt_token_key *k, const struct tmt_token_claims *c, char *out,
                      size_t limit)
{
    /* The longest JSON that still fits TMT_TOKEN_MAX once encoded is 3/4 of it. */
    char json[TMT_TOKEN_MAX];
    struct wbuf w = {json, 0, sizeof(json), false};
    put_lit(&w, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"");
    put_lit(&w, k->kid);
    put_lit(&w, "\"}");
    size_t n = tmt_b64url_encode(json, w.len, out, limit);
    if (n == 0 || limit - n < 2)
        return TMT_ELIMIT;
    out[n++] = '.';

    w.len = 0;
    put_lit(&w, "{\"iss\":");
    put_json_str(&w, c->iss);
    put_str_member(&w, "sub", c->sub);
    put_int_member(&w, "iat", c->iat);
    put_int_member(&w, "exp", c->exp);
    if (c->nbf != 0)
        put_int_member(&w, "nbf", c->nbf);
    put_int_member(&w, "cdniv", 1);
    put_lit(&w, ",\"cdniuc\":\"regex:^");
    for (const char *p = c->prefix; *p != '\0'; p++) {
        /* A backslash in a JSON string is itself escaped: "\\-" is the two characters \-. */
        if (prefix_escaped(*p))
            put(&w, "\\\\", 2);
        put(&w, p, 1);
    }
    put(&w, "\"", 1);
    if (c->dev[0] != '\0')
        put_str_member(&w, "tmt_dev", c->dev);
    if (c->lease[0] != '\0')
        put_str_member(&w, "tmt_lease", c->lease);
    put(&w, "}", 1);
    if (w.over)
        return TMT_ELIMIT;
    size_t m = tmt_b64url_encode(json, w.len, out + n, limit - n);
    if (m == 0 || limit - (n + m) < 2)
        return TMT_ELIMIT;
    n += m;

    unsigned char mac[MAC_LEN];
    if (!hmac_sha256(k->secret, k->secret_len, out, n, mac))
        return TMT_EIO;
    out[n++] = '.';
    m = tmt_b64url_encode(mac, MAC_LEN, out + n, limit - n);
    if (m == 0)
        return TMT_ELIMIT;
    return (long)(n + m);
}

long tmt_token_sign(const struct tmt_token_key *k, const struct tmt_token_claims *c, char *out,
                    size_t cap)
{
    TMT_ASSERT(k != NULL && c != NULL && (out != NULL || cap == 0));
    if (!key_usable(k) || !claim_str_ok(c->iss, sizeof(c->iss), true) ||
        !claim_str_ok(c->sub, sizeof(c->sub), true) ||
        !claim_str_ok(c->dev, sizeof(c->dev), false) ||
        !claim_str_ok(c->lease, sizeof(c->lease), false) || !sign_prefix_ok(c->prefix)) {
        if (cap > 0)
            out[0] = '\0';
        return TMT_EINVAL;
    }
    if (cap == 0)
        return TMT_ELIMIT;
    long r = sign_into(k, c, out, TMT_MIN(cap, (size_t)TMT_TOKEN_MAX + 1));
    if (r < 0)
        out[0] = '\0';
    return r;
}

/* ---- verification ---- */

/* What parsing cdniuc found; the verdict waits for its turn in the order of checks. */
enum uc_state {
    UC_OK,
    UC_UNSUPPORTED, /* not "regex:^" plus a literal path prefix */
    UC_TOO_LONG,    /* a literal prefix, longer than the claims' buffer: malformed */
};

/*
 * Reads a cdniuc value of the form "regex:^PREFIX" into prefix (NUL-terminated): plain
 * characters, or a backslash and a printable non-alphanumeric ASCII character, which stands for
 * itself. Anything else is a regular expression we do not evaluate.
 */
static enum uc_state parse_uri_container(const char *s, size_t len,
                                         char prefix[TMT_TOKEN_PREFIX_MAX + 1])
{
    static const char form[] = "regex:^";
    const size_t fl = sizeof(form) - 1;
    if (len < fl || memcmp(s, form, fl) != 0)
        return UC_UNSUPPORTED;
    size_t n = 0;
    bool too_long = false;
    for (size_t i = fl; i < len; i++) {
        char c = s[i];
        if (c == '\\') {
            if (i + 1 == len)
                return UC_UNSUPPORTED;
            c = s[++i];
            if (c < 0x21 || c > 0x7e || is_alnum(c))
                return UC_UNSUPPORTED; /* \d, \1, \b ... are not literals */
        } else if (!prefix_plain(c)) {
            return UC_UNSUPPORTED;
        }
        if (n == TMT_TOKEN_PREFIX_MAX)
            too_long = true;
        else
            prefix[n++] = c;
    }
    prefix[n] = '\0';
    if (n == 0 || prefix[0] != '/')
        return UC_UNSUPPORTED;
    return too_long ? UC_TOO_LONG : UC_OK;
}

/* Copies a JSON string of at most TMT_TOKEN_STR_MAX bytes; false for other values. */
static bool copy_str(const json_t *v, char dst[TMT_TOKEN_STR_MAX + 1])
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    if (n > TMT_TOKEN_STR_MAX)
        return false;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return true;
}

static bool get_int(const json_t *v, int64_t *dst)
{
    if (!json_is_integer(v))
        return false;
    *dst = (int64_t)json_integer_value(v);
    return true;
}

static bool crit_name_ok(const char *p, size_t len)
{
    return len > 0 && claim_understood(p, len);
}

/* cdnicrit: a string of comma-separated names or an array of names, none of them unknown. */
static bool crit_ok(const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), start = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i == len || s[i] == ',') {
                if (!crit_name_ok(s + start, i - start))
                    return false;
                start = i + 1;
            }
        }
        return true;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || !crit_name_ok(json_string_value(e), json_string_length(e)))
            return false;
    }
    return true;
}

/* What the payload says, before the checks that need it. */
struct payload {
    struct tmt_token_claims c;
    bool has_iss, has_sub, has_iat, has_exp, has_nbf, has_cdniv, has_cdniuc;
    bool version_ok;
    enum uc_state uc;
};

/* Reads the claims; false when the payload is malformed (types, sizes, required, cdnicrit). */
static bool read_claims(json_t *o, struct payload *pl)
{
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        bool ok = true;
        if (strcmp(name, "iss") == 0) {
            ok = copy_str(v, pl->c.iss) && pl->c.iss[0] != '\0';
            pl->has_iss = true;
        } else if (strcmp(name, "sub") == 0) {
            ok = copy_str(v, pl->c.sub) && pl->c.sub[0] != '\0';
            pl->has_sub = true;
        } else if (strcmp(name, "iat") == 0) {
            ok = get_int(v, &pl->c.iat);
            pl->has_iat = true;
        } else if (strcmp(name, "exp") == 0) {
            ok = get_int(v, &pl->c.exp);
            pl->has_exp = true;
        } else if (strcmp(name, "nbf") == 0) {
            ok = get_int(v, &pl->c.nbf);
            pl->has_nbf = true;
        } else if (strcmp(name, "cdniv") == 0) {
            pl->version_ok = json_is_integer(v) && json_integer_value(v) == 1;
            pl->has_cdniv = true;
        } else if (strcmp(name, "cdniuc") == 0) {
            ok = json_is_string(v);
            if (ok) {
                pl->uc =
                    parse_uri_container(json_string_value(v), json_string_length(v), pl->c.prefix);
                ok = pl->uc != UC_TOO_LONG;
            }
            pl->has_cdniuc = true;
        } else if (strcmp(name, "cdnicrit") == 0) {
            ok = crit_ok(v);
        } else if (strcmp(name, "tmt_dev") == 0) {
            ok = copy_str(v, pl->c.dev);
        } else if (strcmp(name, "tmt_lease") == 0) {
            ok = copy_str(v, pl->c.lease);
        }
        if (!ok)
            return false;
    }
    return pl->has_iss && pl->has_sub && pl->has_iat && pl->has_exp && pl->has_cdniv &&
           pl->has_cdniuc;
}

/* now + skew_s, saturated. */
static int64_t time_limit(int64_t now, int64_t skew_s)
{
    if (skew_s < 0)
        skew_s = 0;
    return now > INT64_MAX - skew_s ? INT64_MAX : now + skew_s;
}

/* The header's verdict: alg, then typ, crit and kid (copied to kid). */
static enum tmt_token_verdict check_header(const json_t *h, char kid[TMT_TOKEN_KID_MAX + 1])
{
    const json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        return TMT_TOKEN_BAD_ALG;
    const json_t *typ = json_object_get(h, "typ");
    if (typ != NULL && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0))
        return TMT_TOKEN_MALFORMED;
    /* We implement no header extension, so any critical one is one we do not understand. */
    if (json_object_get(h, "crit") != NULL)
        return TMT_TOKEN_MALFORMED;
    const json_t *k = json_object_get(h, "kid");
    if (!json_is_string(k) || !kid_valid(json_string_value(k), json_string_length(k)))
        return TMT_TOKEN_MALFORMED;
    memcpy(kid, json_string_value(k), json_string_length(k) + 1);
    return TMT_TOKEN_OK;
}

/*
 * True when the header is byte for byte the one tmt_token_sign writes, with a valid kid (copied
 * to kid): that text can only parse to alg HS256, typ JWT and that kid, so the JSON parser is
 * skipped: that parse was a sixth of a whole check and half of refusing a forgery (0.9 us of
 * 5.2 and of 1.7, docs/BENCHMARKS.md, Tokens). Any other spelling takes the parser.
 */
static bool header_ours(const char *h, size_t len, char kid[TMT_TOKEN_KID_MAX + 1])
{
    static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"";
    const size_t hl = sizeof(head) - 1;
    if (len <= hl + 2 || memcmp(h, head, hl) != 0 || h[len - 2] != '"' || h[len - 1] != '}')
        return false;
    size_t kl = len - hl - 2;
    if (!kid_valid(h + hl, kl))
        return false;
    memcpy(kid, h + hl, kl);
    kid[kl] = '\0';
    return true;
}

enum tmt_token_verdict tmt_token_verify(const struct tmt_token_key *keys, size_t n,
                                        struct tmt_slice token, int64_t now, int64_t skew_s,
                                        struct tmt_token_claims *out)
{
    TMT_ASSERT(keys != NULL || n == 0);
    if (token.p == NULL || token.len == 0 || token.len > TMT_TOKEN_MAX)
        return TMT_TOKEN_MALFORMED;
    const char *end = token.p + token.len;
    const char *d1 = memchr(token.p, '.', token.len);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return TMT_TOKEN_MALFORMED;

    /* All three parts decoded side by side: at most 3/4 of TMT_TOKEN_MAX bytes in all. */
    unsigned char buf[TMT_TOKEN_MAX];
    long hl = tmt_b64url_decode(token.p, (size_t)(d1 - token.p), buf, sizeof(buf));
    long pl = hl > 0 ? tmt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), buf + hl,
                                         sizeof(buf) - (size_t)hl)
                     : -1;
    long sl = pl > 0 ? tmt_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), buf + hl + pl,
                                         sizeof(buf) - (size_t)(hl + pl))
                     : -1;
    if (hl <= 0 || pl <= 0 || sl < 0)
        return TMT_TOKEN_MALFORMED;

    char kid[TMT_TOKEN_KID_MAX + 1];
    if (!header_ours((const char *)buf, (size_t)hl, kid)) {
        json_t *h = json_loadb((const char *)buf, (size_t)hl, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(h)) {
            json_decref(h);
            return TMT_TOKEN_MALFORMED;
        }
        enum tmt_token_verdict v = check_header(h, kid);
        json_decref(h);
        if (v != TMT_TOKEN_OK)
            return v;
    }

    const struct tmt_token_key *key = NULL;
    for (size_t i = 0; i < n && key == NULL; i++) {
        if (key_usable(&keys[i]) && strcmp(keys[i].kid, kid) == 0)
            key = &keys[i];
    }
    if (key == NULL)
        return TMT_TOKEN_UNKNOWN_KID;

    unsigned char mac[MAC_LEN];
    if (sl != MAC_LEN ||
        !hmac_sha256(key->secret, key->secret_len, token.p, (size_t)(d2 - token.p), mac) ||
        CRYPTO_memcmp(mac, buf + hl + pl, MAC_LEN) != 0)
        return TMT_TOKEN_BAD_SIGNATURE;

    json_t *p = json_loadb((const char *)buf + hl, (size_t)pl, JSON_REJECT_DUPLICATES, NULL);
    struct payload cl;
    memset(&cl, 0, sizeof(cl));
    bool ok = json_is_object(p) && read_claims(p, &cl);
    json_decref(p);
    if (!ok)
        return TMT_TOKEN_MALFORMED;
    if (!cl.version_ok)
        return TMT_TOKEN_BAD_VERSION;
    if (now >= cl.c.exp)
        return TMT_TOKEN_EXPIRED;
    int64_t limit = time_limit(now, skew_s);
    if ((cl.has_nbf && cl.c.nbf > limit) || cl.c.iat > limit)
        return TMT_TOKEN_NOT_YET_VALID;
    if (cl.uc != UC_OK)
        return TMT_TOKEN_BAD_URI_CONTAINER;
    if (out != NULL) {
        memcpy(cl.c.kid, kid, sizeof(kid));
        *out = cl.c;
    }
    return TMT_TOKEN_OK;
}

/* ---- scope ---- */

bool tmt_token_path_ok(const struct tmt_token_claims *c, struct tmt_slice raw_path)
{
    TMT_ASSERT(c != NULL);
    size_t plen = strnlen(c->prefix, sizeof(c->prefix));
    if (plen == 0 || plen == sizeof(c->prefix) || raw_path.len == 0)
        return false;
    /* Normalizing never lengthens a path, so raw_path.len + 1 bytes always suffice. */
    char local[4096];
    char *buf = local;
    size_t cap = sizeof(local);
    if (raw_path.len >= cap) {
        cap = raw_path.len + 1;
        buf = malloc(cap);
        if (buf == NULL)
            return false;
    }
    size_t m = tmt_http_path_normalize(raw_path, buf, cap);
    bool ok = m >= plen && memcmp(buf, c->prefix, plen) == 0;
    if (buf != local)
        free(buf);
    return ok;
}
