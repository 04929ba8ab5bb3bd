/*
 * token_verify.c: libFuzzer target for URI Signing tokens (token.h): base64url, verification
 * and the scope check.
 *
 * Input layout: byte 0 picks the mode, the rest is text split on the first '\n' into A and B.
 *   mode even: A is a token, B a request path.
 *   mode odd:  A is a header's JSON text, B is "payload JSON text\nrequest path"; the target
 *              signs them with the ring's first key (OpenSSL's HMAC(), not the module's), so
 *              the claim checks behind the signature are reached too.
 * A missing path is "/v/abc-1/x". Tokens are verified at a fixed time, 30 s of skew, against a
 * ring of two keys (those of tests/unit/core/token/vectors.json, so its tokens seed the corpus).
 *
 * Every check that fails calls abort(), so libFuzzer reports it:
 * - base64url: decoding what was encoded gives the bytes back, and anything that decodes
 *   encodes back to the same text (one spelling per byte string);
 * - the verdict is a known one, with a text, and verification is deterministic;
 * - OK implies: strings NUL-terminated in their buffers, iss and sub not empty, a valid kid
 *   that is in the ring, a prefix starting with '/', exp > now, iat and nbf <= now + skew, the
 *   same token EXPIRED at exp, and NOT_YET_VALID before iat - skew when that is representable;
 * - OK implies the scope check is well defined: it answers for the given path, and a prefix
 *   in normalized form covers itself;
 * - OK implies re-signing the claims with the key that verified them gives a token that
 *   verifies to the same claims, or TMT_ELIMIT (it may spell things longer), or TMT_EINVAL
 *   only for a prefix the signer refuses (not normalized, or a character it cannot carry).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz_util.h"
#include "tmt/err.h"
#include "tmt/http.h"
#include "tmt/token.h"

#define T "token_verify"
#define NOW INT64_C(1767225600)
#define SKEW 30

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ring_init(struct tmt_token_key ring[2])
{
    memset(ring, 0, 2 * sizeof(ring[0]));
    strcpy(ring[0].kid, "k1");
    for (int i = 0; i < 32; i++)
        ring[0].secret[i] = (unsigned char)(0x20 + i);
    ring[0].secret_len = 32;
    strcpy(ring[1].kid, "k2-2026_b");
    for (int i = 0; i < 48; i++)
        ring[1].secret[i] = (unsigned char)(0x80 + i);
    ring[1].secret_len = 48;
}

static void check_b64(const uint8_t *data, size_t size)
{
    size_t n = size > 600 ? 600 : size;
    char enc[801];
    unsigned char back[600];
    size_t el = tmt_b64url_encode(data, n, enc, sizeof(enc));
    FUZZ_CHECK(T, el == (n * 4 + 2) / 3 && enc[el] == '\0');
    FUZZ_CHECK(T, tmt_b64url_decode(enc, el, back, sizeof(back)) == (long)n);
    FUZZ_CHECK(T, memcmp(back, data, n) == 0);
    long m = tmt_b64url_decode((const char *)data, n, back, sizeof(back));
    if (m >= 0) {
        FUZZ_CHECK(T, tmt_b64url_encode(back, (size_t)m, enc, sizeof(enc)) == n);
        FUZZ_CHECK(T, memcmp(enc, data, n) == 0);
    }
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static bool signer_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("/_~!&',;=:@%.$()*+-", c) != NULL);
}

static bool normalized(const char *prefix)
{
    char norm[TMT_TOKEN_PREFIX_MAX + 1];
    size_t n = strlen(prefix);
    size_t m = tmt_http_path_normalize((struct tmt_slice){prefix, n}, norm, sizeof(norm));
    return m == n && memcmp(norm, prefix, n) == 0;
}

static bool same_claims(const struct tmt_token_claims *a, const struct tmt_token_claims *b)
{
    return strcmp(a->kid, b->kid) == 0 && strcmp(a->iss, b->iss) == 0 &&
           strcmp(a->sub, b->sub) == 0 && strcmp(a->dev, b->dev) == 0 &&
           strcmp(a->lease, b->lease) == 0 && strcmp(a->prefix, b->prefix) == 0 &&
           a->iat == b->iat && a->exp == b->exp && a->nbf == b->nbf;
}

static void check_ok(const struct tmt_token_key ring[2], struct tmt_slice tok,
                     const struct tmt_token_claims *c, struct tmt_slice path)
{
    FUZZ_CHECK(T, terminated(c->kid, sizeof(c->kid)) && terminated(c->iss, sizeof(c->iss)) &&
                      terminated(c->sub, sizeof(c->sub)) && terminated(c->dev, sizeof(c->dev)) &&
                      terminated(c->lease, sizeof(c->lease)) &&
                      terminated(c->prefix, sizeof(c->prefix)));
    FUZZ_CHECK(T, c->iss[0] != '\0' && c->sub[0] != '\0' && c->prefix[0] == '/');
    const struct tmt_token_key *k = NULL;
    for (int i = 0; i < 2; i++) {
        if (strcmp(ring[i].kid, c->kid) == 0 && k == NULL)
            k = &ring[i];
    }
    FUZZ_CHECK(T, k != NULL);
    FUZZ_CHECK(T, c->exp > NOW && c->iat <= NOW + SKEW && c->nbf <= NOW + SKEW);

    struct tmt_token_claims again;
    FUZZ_CHECK(T, tmt_token_verify(ring, 2, tok, c->exp, SKEW, &again) == TMT_TOKEN_EXPIRED);
    /* nbf 0 is an absent nbf, which must not stand in for a later iat. */
    int64_t early = c->nbf != 0 && c->nbf > c->iat ? c->nbf : c->iat;
    if (early > INT64_MIN + SKEW + 1 && early - SKEW - 1 < c->exp)
        FUZZ_CHECK(T, tmt_token_verify(ring, 2, tok, early - SKEW - 1, SKEW, &again) ==
                          TMT_TOKEN_NOT_YET_VALID);

    (void)tmt_token_path_ok(c, path);
    if (normalized(c->prefix))
        FUZZ_CHECK(T, tmt_token_path_ok(c, (struct tmt_slice){c->prefix, strlen(c->prefix)}));

    char re[TMT_TOKEN_MAX + 1];
    long n = tmt_token_sign(k, c, re, sizeof(re));
    if (n > 0) {
        struct tmt_token_claims back;
        FUZZ_CHECK(T, (size_t)n == strlen(re));
        FUZZ_CHECK(T, tmt_token_verify(ring, 2, (struct tmt_slice){re, (size_t)n}, NOW, SKEW,
                                       &back) == TMT_TOKEN_OK);
        FUZZ_CHECK(T, same_claims(c, &back));
    } else if (n == TMT_EINVAL) {
        bool odd = !normalized(c->prefix);
        for (const char *p = c->prefix; *p != '\0'; p++)
            odd = odd || !signer_char(*p);
        FUZZ_CHECK(T, odd);
    } else {
        FUZZ_CHECK(T, n == TMT_ELIMIT);
    }
}

/* header "." payload "." HMAC-SHA-256 with k, into out (cap bytes); false if it does not fit. */
static bool build(const struct tmt_token_key *k, struct tmt_slice h, struct tmt_slice p, char *out,
                  size_t cap)
{
    size_t n = tmt_b64url_encode(h.p, h.len, out, cap);
    if ((n == 0 && h.len > 0) || cap - n < 2)
        return false;
    out[n++] = '.';
    size_t m = tmt_b64url_encode(p.p, p.len, out + n, cap - n);
    if ((m == 0 && p.len > 0) || cap - n - m < 2)
        return false;
    n += m;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    if (HMAC(EVP_sha256(), k->secret, (int)k->secret_len, (const unsigned char *)out, n, mac,
             &ml) == NULL)
        return false;
    out[n++] = '.';
    return tmt_b64url_encode(mac, ml, out + n, cap - n) > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_b64(data, size);
    if (size < 1)
        return 0;
    struct tmt_token_key ring[2];
    ring_init(ring);
    int mode = data[0] & 1;
    char *text = fuzz_dup(data + 1, size - 1);
    size_t len = size - 1;
    const char *nl = memchr(text, '\n', len);
    struct tmt_slice a = {text, nl != NULL ? (size_t)(nl - text) : len};
    struct tmt_slice b = {nl != NULL ? nl + 1 : NULL, nl != NULL ? len - a.len - 1 : 0};
    struct tmt_slice tok = a, path = b;
    char *built = NULL;
    if (mode == 1) {
        const char *nl2 = b.p != NULL ? memchr(b.p, '\n', b.len) : NULL;
        struct tmt_slice payload = {b.p, nl2 != NULL ? (size_t)(nl2 - b.p) : b.len};
        path = (struct tmt_slice){nl2 != NULL ? nl2 + 1 : NULL,
                                  nl2 != NULL ? b.len - payload.len - 1 : 0};
        size_t cap = 2 * (a.len + payload.len) + 128;
        built = malloc(cap);
        FUZZ_CHECK(T, built != NULL);
        if (!build(&ring[0], a, payload, built, cap)) {
            free(built);
            free(text);
            return 0;
        }
        tok = (struct tmt_slice){built, strlen(built)};
    }
    if (path.p == NULL)
        path = TMT_SLICE_LIT("/v/abc-1/x");

    struct tmt_token_claims c;
    enum tmt_token_verdict v = tmt_token_verify(ring, 2, tok, NOW, SKEW, &c);
    FUZZ_CHECK(T, v >= TMT_TOKEN_OK && v < TMT_TOKEN_PATH_OUTSIDE);
    FUZZ_CHECK(T, strcmp(tmt_token_verdict_text(v), "unknown verdict") != 0);
    FUZZ_CHECK(T, tmt_token_verify(ring, 2, tok, NOW, SKEW, NULL) == v);
    if (v == TMT_TOKEN_OK)
        check_ok(ring, tok, &c, path);
    free(built);
    free(text);
    return 0;
}
