/*
 * token.h: signed URI tokens, our profile of CDNI URI Signing (RFC 9246), which is a JSON Web
 * Token (RFC 7519) in JWS compact form (RFC 7515). The control plane signs them, the servers
 * verify them on requests; both sides use this module, so they cannot drift apart.
 *
 * The profile, strict on purpose (anything outside it is refused, never guessed at):
 * - header: "alg" exactly "HS256" (HMAC-SHA-256; "none", HS512, RS256 and the rest are refused),
 *   "kid" required ([A-Za-z0-9_-]{1,32}), "typ" optional but "JWT" when present, no "crit"
 *   (we implement no header extension). Other header members are ignored.
 * - claims: "iss", "sub" (non-empty strings), "iat", "exp" (integers) and "cdniv" (the integer 1)
 *   are required; "nbf" (integer) is optional; "cdniuc" is required and must be a URI container
 *   of the form "regex:^PREFIX" where PREFIX is a literal path prefix: plain characters plus
 *   backslash escapes of non-alphanumeric characters, e.g. "regex:^/v/abc\-1/". A regular
 *   expression that does more than name a prefix is refused rather than evaluated. "cdnicrit",
 *   when present (a string of comma-separated claim names, or an array of names), may list
 *   only claims this module understands. Two private claims, "tmt_dev" and
 *   "tmt_lease", are optional strings. Other claims are ignored. Times are integer seconds since
 *   the epoch; fractional NumericDates are refused.
 * - JSON is strict: duplicate member names, numbers out of the 64-bit range, invalid UTF-8 and
 *   "\u0000" make a token malformed, as do strings longer than the buffers below. base64url is
 *   unpadded with zero trailing bits, so one token has one spelling.
 *
 * The scope check is a prefix comparison against the request path after normalization
 * (tmt_http_path_normalize: unreserved escapes decoded, empty, "." and ".." components removed),
 * so that "/v/a/../b/x" or "/v/a/%2e%2e/b/x" cannot borrow a token issued for "/v/a/".
 *
 * Everything here is pure and thread-safe: no allocation kept, no global state beyond the
 * HMAC-SHA-256 implementation fetched from OpenSSL once per process. Time is a parameter.
 */
#ifndef TMT_TOKEN_H
#define TMT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"

#define TMT_TOKEN_KID_MAX 32     /* kid: [A-Za-z0-9_-]{1,32} */
#define TMT_TOKEN_SECRET_MIN 32  /* HMAC key bytes: at least the hash size (RFC 7518 3.2) */
#define TMT_TOKEN_SECRET_MAX 64  /* ... and at most one SHA-256 block, so it is never hashed */
#define TMT_TOKEN_STR_MAX 64     /* iss, sub, tmt_dev, tmt_lease, in bytes of UTF-8 */
#define TMT_TOKEN_PREFIX_MAX 256 /* the path prefix of cdniuc once unescaped */
#define TMT_TOKEN_MAX 2048       /* longest token accepted or produced, in characters */

/*
 * One signing key. A key ring is an array of these, searched by kid; it usually holds the
 * current key and the previous one while tokens signed with it are still alive.
 */
struct tmt_token_key {
    char kid[TMT_TOKEN_KID_MAX + 1]; /* NUL-terminated */
    unsigned char secret[TMT_TOKEN_SECRET_MAX];
    size_t secret_len; /* TMT_TOKEN_SECRET_MIN..TMT_TOKEN_SECRET_MAX */
};

/* What a token says, NUL-terminated strings ("" when an optional claim is absent). */
struct tmt_token_claims {
    char kid[TMT_TOKEN_KID_MAX + 1]; /* from the header; ignored by tmt_token_sign */
    char iss[TMT_TOKEN_STR_MAX + 1];
    char sub[TMT_TOKEN_STR_MAX + 1];
    char dev[TMT_TOKEN_STR_MAX + 1];   /* tmt_dev */
    char lease[TMT_TOKEN_STR_MAX + 1]; /* tmt_lease */
    int64_t iat;
    int64_t exp;
    int64_t nbf;                           /* 0: absent */
    char prefix[TMT_TOKEN_PREFIX_MAX + 1]; /* cdniuc's path prefix, unescaped */
};

/*
 * The outcome of a check. Verification reports the first problem in the order of its checks:
 * form and header JSON (MALFORMED), alg (BAD_ALG), the rest of the header (MALFORMED), kid
 * (UNKNOWN_KID), signature, claims (MALFORMED), cdniv, exp, nbf and iat, cdniuc. So a forged
 * token is a BAD_SIGNATURE whatever its claims say, and an expired one is EXPIRED whatever
 * path it names. PATH_OUTSIDE is the caller's verdict when tmt_token_path_ok() is false for a
 * token that verified.
 */
enum tmt_token_verdict {
    TMT_TOKEN_OK = 0,
    TMT_TOKEN_MALFORMED,         /* not a token of our profile (syntax, types, sizes, crit) */
    TMT_TOKEN_BAD_ALG,           /* alg is not "HS256" */
    TMT_TOKEN_UNKNOWN_KID,       /* no key with this kid */
    TMT_TOKEN_BAD_SIGNATURE,     /* the HMAC does not match */
    TMT_TOKEN_EXPIRED,           /* now >= exp */
    TMT_TOKEN_NOT_YET_VALID,     /* nbf or iat later than now + skew */
    TMT_TOKEN_BAD_VERSION,       /* cdniv present but not the integer 1 */
    TMT_TOKEN_BAD_URI_CONTAINER, /* cdniuc is not "regex:^" and a literal path prefix */
    TMT_TOKEN_PATH_OUTSIDE,      /* the request path is outside the prefix */
};

/*
 * A short reason for a verdict, fit for a response header or a log field ("expired token",
 * "bad signature", ...). Never NULL; "unknown verdict" for values outside the enum.
 */
const char *tmt_token_verdict_text(enum tmt_token_verdict v);

/*
 * Signs the claims c with key k into out: the header {"alg":"HS256","typ":"JWT","kid":k->kid},
 * then iss, sub, iat, exp, nbf (when not 0), cdniv 1, cdniuc "regex:^" + prefix with regular
 * expression metacharacters and '-' backslash-escaped, tmt_dev and tmt_lease (when not empty).
 * c->kid is not used.
 *
 * Returns the token's length, with a NUL written after it in out; TMT_EINVAL when the key (kid
 * syntax, secret length) or the claims are invalid: iss or sub empty, a string not valid UTF-8,
 * a prefix that does not start with '/', is not in normalized form (tmt_http_path_normalize
 * would change it, so no request path could match it) or holds a control, space, non-ASCII or
 * other character a path prefix cannot carry literally; TMT_ELIMIT when the token would not fit
 * cap - 1 characters or TMT_TOKEN_MAX; TMT_EIO if OpenSSL fails to hash (out of memory). On
 * failure out holds "" (when cap > 0). Every token it returns verifies with the same key.
 */
long tmt_token_sign(const struct tmt_token_key *k, const struct tmt_token_claims *c, char *out,
                    size_t cap) TMT_MUST_CHECK;

/*
 * Verifies token against the key ring keys[0..n): structure, alg, kid (the first key with that
 * kid; keys with an invalid kid or secret length never match), signature (constant-time), then
 * the claims, cdniv, exp (expired when now >= exp), nbf and iat (not yet valid when later than
 * now + skew_s; skew_s < 0 counts as 0), and cdniuc. The signature is checked before any claim
 * is read, so a forged payload is never parsed. The verdict names the first problem found.
 *
 * On TMT_TOKEN_OK, *out (if not NULL) receives the claims; otherwise *out is left untouched.
 * The token is borrowed for the call only. It never returns TMT_TOKEN_PATH_OUTSIDE.
 */
enum tmt_token_verdict tmt_token_verify(const struct tmt_token_key *keys, size_t n,
                                        struct tmt_slice token, int64_t now, int64_t skew_s,
                                        struct tmt_token_claims *out);

/*
 * True when the request path raw_path (as received, still percent-encoded, without query and
 * with the caller's own token transport already taken out of it) normalizes with
 * tmt_http_path_normalize to a path that starts with c->prefix. A path that does not normalize
 * (".." above the root, a bad escape) is outside. Allocates only for paths longer than 4 KiB.
 */
bool tmt_token_path_ok(const struct tmt_token_claims *c, struct tmt_slice raw_path);

/*
 * base64url without padding (RFC 4648 section 5). Exported for other identifiers that travel in
 * URLs and headers (ids, session tokens).
 *
 * tmt_b64url_encode writes the encoding of in[0..len) and a NUL to out, and returns its length;
 * 0 if it does not fit in cap (the NUL included), which is also the length for len 0.
 *
 * tmt_b64url_decode decodes in[0..len) into out and returns the number of bytes, or -1 for a
 * character outside the alphabet ('=' padding included), a length no encoding has (len % 4 ==
 * 1), non-zero unused bits in the last character (so each byte string has a single spelling),
 * or a result larger than cap.
 */
size_t tmt_b64url_encode(const void *in, size_t len, char *out, size_t cap);
long tmt_b64url_decode(const char *in, size_t len, void *out, size_t cap);

#endif
