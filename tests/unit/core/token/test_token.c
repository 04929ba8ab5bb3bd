/*
 * test_token.c: URI Signing tokens (core/token) through token.h.
 *
 * Tokens are made three ways: by tmt_token_sign, by hand here (JSON text, base64url and
 * OpenSSL's HMAC() one-shot, independent of the module's own HMAC), and by python3-jwt in
 * vectors.json (make_vectors.py), whose every verdict is checked at the end. Tables print the
 * failing row before the test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"
#include "tmt/token.h"
#include "token_names.h"

#ifndef TMT_TOKEN_VECTORS
#error "TMT_TOKEN_VECTORS must name vectors.json"
#endif

#define NOW INT64_C(1767225600)
#define SKEW 30

static struct tmt_slice sl(const char *s)
{
    return (struct tmt_slice){s, strlen(s)};
}

static struct tmt_token_key key_of(const char *kid, unsigned char fill, size_t len)
{
    struct tmt_token_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "%s", kid);
    for (size_t i = 0; i < len && i < sizeof(k.secret); i++)
        k.secret[i] = (unsigned char)(fill + i);
    k.secret_len = len;
    return k;
}

static struct tmt_token_claims base_claims(void)
{
    struct tmt_token_claims c;
    memset(&c, 0, sizeof(c));
    strcpy(c.iss, "ctl-1");
    strcpy(c.sub, "u-3f9a1c");
    strcpy(c.dev, "dev-7");
    strcpy(c.lease, "lease-42");
    c.iat = NOW - 60;
    c.exp = NOW + 3600;
    strcpy(c.prefix, "/v/abc-1/");
    return c;
}

static void sign_ok(const struct tmt_token_key *k, const struct tmt_token_claims *c, char *out,
                    size_t cap)
{
    long n = tmt_token_sign(k, c, out, cap);
    if (n <= 0)
        print_error("tmt_token_sign: %ld (%s)\n", n, tmt_strerror((int)n));
    assert_true(n > 0);
    assert_int_equal(strlen(out), (size_t)n);
}

/* A token from header and payload JSON text, HMAC-SHA-256 with k by OpenSSL's HMAC(). */
static void build(char *out, size_t cap, const char *header, const char *payload,
                  const struct tmt_token_key *k)
{
    size_t n = tmt_b64url_encode(header, strlen(header), out, cap);
    assert_true(n > 0 && n + 1 < cap);
    out[n++] = '.';
    size_t m = tmt_b64url_encode(payload, strlen(payload), out + n, cap - n);
    assert_true(m > 0 && n + m + 1 < cap);
    n += m;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    assert_non_null(
        HMAC(EVP_sha256(), k->secret, (int)k->secret_len, (const unsigned char *)out, n, mac, &ml));
    out[n++] = '.';
    assert_true(tmt_b64url_encode(mac, ml, out + n, cap - n) > 0);
}

#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"
#define CLAIMS_HEAD "{\"iss\":\"ctl-1\",\"sub\":\"u\",\"iat\":1767225540,\"exp\":1767229200"
#define UC ",\"cdniuc\":\"regex:^/v/abc\\\\-1/\""
#define V1 ",\"cdniv\":1"

static enum tmt_token_verdict verify1(const struct tmt_token_key *k, const char *tok,
                                      struct tmt_token_claims *out)
{
    return tmt_token_verify(k, 1, sl(tok), NOW, SKEW, out);
}

/* ---- round trip ---- */

static void sign_verify_round_trip(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    struct tmt_token_claims c = base_claims(), got;
    c.nbf = NOW - 5;
    char tok[TMT_TOKEN_MAX + 1];
    sign_ok(&k, &c, tok, sizeof(tok));
    /* Header {"alg":"HS256","typ":"JWT","kid":"k1"}, byte for byte. */
    assert_memory_equal(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.", 52);
    memset(&got, 0x55, sizeof(got));
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_OK);
    assert_string_equal(got.kid, "k1");
    assert_string_equal(got.iss, c.iss);
    assert_string_equal(got.sub, c.sub);
    assert_string_equal(got.dev, c.dev);
    assert_string_equal(got.lease, c.lease);
    assert_string_equal(got.prefix, c.prefix);
    assert_int_equal(got.iat, c.iat);
    assert_int_equal(got.exp, c.exp);
    assert_int_equal(got.nbf, c.nbf);
    /* The payload escapes '-' in cdniuc and leaves out nothing it was given. */
    char payload[TMT_TOKEN_MAX];
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    long pl = tmt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload) - 1);
    assert_true(pl > 0);
    payload[pl] = '\0';
    assert_string_equal(payload, "{\"iss\":\"ctl-1\",\"sub\":\"u-3f9a1c\",\"iat\":1767225540,"
                                 "\"exp\":1767229200,\"nbf\":1767225595,\"cdniv\":1,"
                                 "\"cdniuc\":\"regex:^/v/abc\\\\-1/\",\"tmt_dev\":\"dev-7\","
                                 "\"tmt_lease\":\"lease-42\"}");
    /* out may be NULL; empty optional claims are left out and come back empty. */
    assert_int_equal(verify1(&k, tok, NULL), TMT_TOKEN_OK);
    c.dev[0] = c.lease[0] = '\0';
    c.nbf = 0;
    sign_ok(&k, &c, tok, sizeof(tok));
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_OK);
    assert_string_equal(got.dev, "");
    assert_string_equal(got.lease, "");
    assert_int_equal(got.nbf, 0);
}

static void sign_escapes_strings(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k-2_B", 1, 64);
    struct tmt_token_claims c = base_claims(), got;
    strcpy(c.iss, "q\"b\\s\n\x01\x7f");
    strcpy(c.sub, "contr\xc3\xb4le \xe4\xb8\xad \xf0\x9f\x8d\x85");
    strcpy(c.prefix, "/v/a.b+c$(1)*~_!&',;=:@%2F/");
    char tok[TMT_TOKEN_MAX + 1];
    sign_ok(&k, &c, tok, sizeof(tok));
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_OK);
    assert_string_equal(got.iss, c.iss);
    assert_string_equal(got.sub, c.sub);
    assert_string_equal(got.prefix, c.prefix);
    assert_true(tmt_token_path_ok(&got, sl("/v/a.b+c$(1)*~_!&',;=:@%2f/x")));
}

static void sign_longest(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("abcdefghijklmnopqrstuvwxyz012345", 9, 32);
    struct tmt_token_claims c = base_claims(), got;
    memset(c.iss, 'i', TMT_TOKEN_STR_MAX);
    memset(c.sub, 's', TMT_TOKEN_STR_MAX);
    memset(c.dev, 'd', TMT_TOKEN_STR_MAX);
    memset(c.lease, 'l', TMT_TOKEN_STR_MAX);
    c.prefix[0] = '/';
    memset(c.prefix + 1, 'p', TMT_TOKEN_PREFIX_MAX - 1);
    c.iat = INT64_MIN;
    c.exp = INT64_MAX;
    c.nbf = -1;
    char tok[TMT_TOKEN_MAX + 1];
    sign_ok(&k, &c, tok, sizeof(tok));
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_OK);
    assert_memory_equal(&got.iss, &c.iss, sizeof(c.iss));
    assert_memory_equal(&got.prefix, &c.prefix, sizeof(c.prefix));
    assert_int_equal(got.iat, INT64_MIN);
    assert_int_equal(got.exp, INT64_MAX);
    assert_int_equal(got.nbf, -1);
    /* Exactly the room it needs, and one byte less. */
    long n = (long)strlen(tok);
    char *exact = malloc((size_t)n + 1);
    assert_non_null(exact);
    assert_int_equal(tmt_token_sign(&k, &c, exact, (size_t)n + 1), n);
    assert_int_equal(tmt_token_sign(&k, &c, exact, (size_t)n), TMT_ELIMIT);
    assert_string_equal(exact, "");
    free(exact);
    assert_int_equal(tmt_token_sign(&k, &c, NULL, 0), TMT_ELIMIT);
    /* Control characters take six bytes each in JSON: too long for TMT_TOKEN_MAX. */
    memset(c.iss, 1, TMT_TOKEN_STR_MAX);
    memset(c.sub, 1, TMT_TOKEN_STR_MAX);
    memset(c.dev, 1, TMT_TOKEN_STR_MAX);
    memset(c.lease, 1, TMT_TOKEN_STR_MAX);
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_ELIMIT);
}

static void sign_refuses(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        bool ok;
    } prefixes[] = {
        {"/v/a/", true},         {"/", true},        {"/v/a", true},     {"/v/a.b/", true},
        {"/v/%2F/", true},       {"", false},        {"v/a/", false},    {"/v//a/", false},
        {"/v/./a/", false},      {"/v/a/..", false}, {"/v/%41/", false}, {"/v/%2f/", false},
        {"/v/a b/", false},      {"/v/a#/", false},  {"/v/a?/", false},  {"/v/\x01/", false},
        {"/v/\xc3\xa9/", false}, {"/v/[a]/", false}, {"/v/a|b/", false}, {"/v/a\\b/", false},
        {"/v/%zz/", false},      {"/v/a^b/", false},
    };
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    char tok[TMT_TOKEN_MAX + 1];
    for (size_t i = 0; i < TMT_ARRAY_LEN(prefixes); i++) {
        struct tmt_token_claims c = base_claims();
        strcpy(c.prefix, prefixes[i].prefix);
        long n = tmt_token_sign(&k, &c, tok, sizeof(tok));
        if ((n > 0) != prefixes[i].ok || (n <= 0 && n != TMT_EINVAL)) {
            print_error("prefix %zu \"%s\": %ld\n", i, prefixes[i].prefix, n);
            fail();
        }
    }
    struct tmt_token_claims c = base_claims();
    c.iss[0] = '\0';
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_EINVAL);
    assert_string_equal(tok, "");
    c = base_claims();
    c.sub[0] = '\0';
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_EINVAL);
    c = base_claims();
    strcpy(c.dev, "bad \xc3(");
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_EINVAL);
    c = base_claims();
    strcpy(c.lease, "\xed\xa0\x80"); /* a UTF-16 surrogate */
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_EINVAL);
    c = base_claims();
    memset(c.iss, 'x', sizeof(c.iss)); /* not terminated */
    assert_int_equal(tmt_token_sign(&k, &c, tok, sizeof(tok)), TMT_EINVAL);
    c = base_claims();
    struct tmt_token_key bad = key_of("k1", 0, 31);
    assert_int_equal(tmt_token_sign(&bad, &c, tok, sizeof(tok)), TMT_EINVAL);
    bad = key_of("k1", 0, 65);
    assert_int_equal(tmt_token_sign(&bad, &c, tok, sizeof(tok)), TMT_EINVAL);
    bad = key_of("k.1", 0, 32);
    assert_int_equal(tmt_token_sign(&bad, &c, tok, sizeof(tok)), TMT_EINVAL);
    bad = key_of("", 0, 32);
    assert_int_equal(tmt_token_sign(&bad, &c, tok, sizeof(tok)), TMT_EINVAL);
    assert_int_equal(tmt_token_sign(&k, &c, tok, 40), TMT_ELIMIT);
}

/* ---- verdicts ---- */

static void verdict_each(void **state)
{
    (void)state;
    struct tmt_token_key ring[3] = {key_of("old", 0x11, 32), key_of("k1", 0x20, 32),
                                    key_of("k1", 0x77, 32)};
    struct tmt_token_key other = key_of("k1", 0x21, 32), unknown = key_of("k9", 0x20, 32);
    struct tmt_token_claims c = base_claims(), got;
    char tok[TMT_TOKEN_MAX + 1];
    sign_ok(&ring[1], &c, tok, sizeof(tok));
    /* The first key with the kid is the one used. */
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW, SKEW, &got), TMT_TOKEN_OK);
    assert_int_equal(tmt_token_verify(ring + 2, 1, sl(tok), NOW, SKEW, &got),
                     TMT_TOKEN_BAD_SIGNATURE);
    assert_int_equal(tmt_token_verify(ring, 0, sl(tok), NOW, SKEW, &got), TMT_TOKEN_UNKNOWN_KID);
    assert_int_equal(tmt_token_verify(NULL, 0, sl(tok), NOW, SKEW, &got), TMT_TOKEN_UNKNOWN_KID);
    /* A key with an unusable secret never matches. */
    struct tmt_token_key short_key = ring[1];
    short_key.secret_len = 16;
    assert_int_equal(tmt_token_verify(&short_key, 1, sl(tok), NOW, SKEW, &got),
                     TMT_TOKEN_UNKNOWN_KID);

    sign_ok(&other, &c, tok, sizeof(tok));
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW, SKEW, &got), TMT_TOKEN_BAD_SIGNATURE);
    sign_ok(&unknown, &c, tok, sizeof(tok));
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW, SKEW, &got), TMT_TOKEN_UNKNOWN_KID);

    /* Time: exp has no skew, nbf and iat have it. */
    sign_ok(&ring[1], &c, tok, sizeof(tok));
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.exp - 1, SKEW, &got), TMT_TOKEN_OK);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.exp, SKEW, &got), TMT_TOKEN_EXPIRED);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), INT64_MAX, SKEW, &got), TMT_TOKEN_EXPIRED);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.iat - SKEW, SKEW, &got), TMT_TOKEN_OK);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.iat - SKEW - 1, SKEW, &got),
                     TMT_TOKEN_NOT_YET_VALID);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.iat - 1, 0, &got),
                     TMT_TOKEN_NOT_YET_VALID);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), c.iat - 1, -50, &got),
                     TMT_TOKEN_NOT_YET_VALID);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW - 1000000, INT64_MAX, &got),
                     TMT_TOKEN_OK); /* now + skew saturates */
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), INT64_MIN, INT64_MAX, &got),
                     TMT_TOKEN_NOT_YET_VALID); /* now + skew is -1 */
    c.nbf = NOW + 100;
    sign_ok(&ring[1], &c, tok, sizeof(tok));
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW + 70, SKEW, &got), TMT_TOKEN_OK);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW + 69, SKEW, &got),
                     TMT_TOKEN_NOT_YET_VALID);
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW + 69, INT64_MAX, &got), TMT_TOKEN_OK);

    /* *out is untouched unless OK. */
    memset(&got, 0x5a, sizeof(got));
    struct tmt_token_claims before = got;
    assert_int_equal(tmt_token_verify(ring, 3, sl(tok), NOW, SKEW, &got), TMT_TOKEN_NOT_YET_VALID);
    assert_memory_equal(&got, &before, sizeof(got));
}

/* Hand-built tokens: one row per rule of the profile. */
static const struct {
    const char *header;
    const char *payload;
    enum tmt_token_verdict want;
} hand_cases[] = {
    {HDR, CLAIMS_HEAD V1 UC "}", TMT_TOKEN_OK},
    {"{\"kid\":\"k1\",\"alg\":\"HS256\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_OK},
    {" { \"alg\" : \"HS256\" , \"kid\" : \"k1\" } ", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_OK},
    {HDR,
     CLAIMS_HEAD V1 UC ",\"cdnicrit\":\"iss,sub,iat,exp,nbf,cdniv,cdniuc,cdnicrit,tmt_dev,"
                       "tmt_lease\"}",
     TMT_TOKEN_OK},
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":[\"exp\"]}", TMT_TOKEN_OK},
    {HDR, CLAIMS_HEAD V1 UC ",\"aud\":[\"x\"],\"o\":{\"a\":[1,2.5,null,true,{}]},\"e\":\"\"}",
     TMT_TOKEN_OK},
    {HDR,
     CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a\\\\.b\\\\*\\\\?\\\\(\\\\)\\\\[\\\\]\\\\{\\\\}"
                    "\\\\|\\\\$\\\\^\\\\\\\\\\\\/\\\\-\\\\\\\"/\"}",
     TMT_TOKEN_OK},
    /* alg */
    {"{\"alg\":\"none\",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"alg\":\"HS512\",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"alg\":\"RS256\",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"alg\":\"HS256 \",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"alg\":[\"HS256\"],\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    {"{\"alg\":\"none\",\"crit\":[\"x\"]}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_BAD_ALG},
    /* the rest of the header */
    {"{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":null,\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false,\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"crit\":[],\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k/1\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k1\",\"kid\":\"k1\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k1\"", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"\"HS256\"", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"kid\":\"k2\"}", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_UNKNOWN_KID},
    /* the signer's own header spelling, which skips the JSON parser, and near misses */
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k2\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_UNKNOWN_KID},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k 1\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"crit\":\"x\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"x\":\"}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"} ", CLAIMS_HEAD V1 UC "}", TMT_TOKEN_OK},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}}", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"", CLAIMS_HEAD V1 UC "}",
     TMT_TOKEN_MALFORMED},
    /* claims: types, sizes, presence */
    {HDR, CLAIMS_HEAD V1 UC, TMT_TOKEN_MALFORMED},
    {HDR, "[" CLAIMS_HEAD V1 UC "}]", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"exp\":1}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"x\":1,\"x\":1}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":\"1767229200\"" V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":1767229200.0" V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":true" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":9223372036854775808" V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"exp\":1767229200" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"sub\":\"u\",\"iat\":1,\"exp\":1767229200" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"iat\":1,\"exp\":1767229200" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":1,\"sub\":\"u\",\"iat\":1,\"exp\":1767229200" V1 UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"\",\"sub\":\"u\",\"iat\":1,\"exp\":1767229200" V1 UC "}",
     TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"nbf\":\"0\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"tmt_dev\":7}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"tmt_lease\":null}", TMT_TOKEN_MALFORMED},
    {HDR,
     CLAIMS_HEAD V1 UC ",\"tmt_dev\":\"0123456789012345678901234567890123456789012345678901"
                       "234567890123\"}",
     TMT_TOKEN_OK},
    {HDR,
     CLAIMS_HEAD V1 UC ",\"tmt_dev\":\"0123456789012345678901234567890123456789012345678901"
                       "2345678901234\"}",
     TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"s\":\"a\\u0000b\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"s\":\"\\ud800\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"s\":\"\xff\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"n\":NaN}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 "}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":[\"regex:^/v/\"]}", TMT_TOKEN_MALFORMED},
    /* cdnicrit */
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":\"cdniip\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":\"exp,\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":\"EXP\"}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":[\"exp\",1]}", TMT_TOKEN_MALFORMED},
    {HDR, CLAIMS_HEAD V1 UC ",\"cdnicrit\":{\"exp\":1}}", TMT_TOKEN_MALFORMED},
    /* version */
    {HDR, CLAIMS_HEAD ",\"cdniv\":2" UC "}", TMT_TOKEN_BAD_VERSION},
    {HDR, CLAIMS_HEAD ",\"cdniv\":0" UC "}", TMT_TOKEN_BAD_VERSION},
    {HDR, CLAIMS_HEAD ",\"cdniv\":1.0" UC "}", TMT_TOKEN_BAD_VERSION},
    {HDR, CLAIMS_HEAD ",\"cdniv\":\"1\"" UC "}", TMT_TOKEN_BAD_VERSION},
    {HDR, CLAIMS_HEAD ",\"cdniv\":null" UC "}", TMT_TOKEN_BAD_VERSION},
    {HDR, CLAIMS_HEAD UC "}", TMT_TOKEN_MALFORMED},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":1,\"cdniv\":2" UC "}",
     TMT_TOKEN_BAD_VERSION},
    /* URI container */
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/.*\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/abc/$\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a+/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a?/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/(a)/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/[ab]/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a{2}/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a|/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/^/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/a b/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/\\u00e9/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/\\\\w/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/\\\\1/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/\\\\ /\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^/v/\\\\\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:^v/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"regex:/v/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"REGEX:^/v/\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"hash:abc\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, CLAIMS_HEAD V1 ",\"cdniuc\":\"\"}", TMT_TOKEN_BAD_URI_CONTAINER},
    {HDR, "{\"iss\":\"i\",\"sub\":\"u\",\"iat\":1,\"exp\":1" V1 ",\"cdniuc\":\"regex:^.*\"}",
     TMT_TOKEN_EXPIRED},
};

static void verdict_hand_built(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    char tok[4 * TMT_TOKEN_MAX];
    for (size_t i = 0; i < TMT_ARRAY_LEN(hand_cases); i++) {
        build(tok, sizeof(tok), hand_cases[i].header, hand_cases[i].payload, &k);
        enum tmt_token_verdict v = verify1(&k, tok, NULL);
        if (v != hand_cases[i].want) {
            print_error("case %zu: %s . %s: got %s, want %s\n", i, hand_cases[i].header,
                        hand_cases[i].payload, token_verdict_name(v),
                        token_verdict_name(hand_cases[i].want));
            fail();
        }
    }
}

static void verdict_prefix_sizes(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    char payload[1024], tok[TMT_TOKEN_MAX * 2];
    struct tmt_token_claims got;
    /* 256 characters once unescaped, each '-' escaped: fits; one more does not. */
    int n = snprintf(payload, sizeof(payload), "%s%s,\"cdniuc\":\"regex:^/", CLAIMS_HEAD, V1);
    for (int i = 1; i < TMT_TOKEN_PREFIX_MAX; i++)
        n += snprintf(payload + n, sizeof(payload) - (size_t)n, "\\\\-");
    snprintf(payload + n, sizeof(payload) - (size_t)n, "\"}");
    build(tok, sizeof(tok), HDR, payload, &k);
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_OK);
    assert_int_equal(strlen(got.prefix), TMT_TOKEN_PREFIX_MAX);
    snprintf(payload + n, sizeof(payload) - (size_t)n, "x\"}");
    build(tok, sizeof(tok), HDR, payload, &k);
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_MALFORMED);
    /* ... unless it is not a prefix we read at all. */
    snprintf(payload + n, sizeof(payload) - (size_t)n, "x.*\"}");
    build(tok, sizeof(tok), HDR, payload, &k);
    assert_int_equal(verify1(&k, tok, &got), TMT_TOKEN_BAD_URI_CONTAINER);
}

static void verdict_structure(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    struct tmt_token_claims c = base_claims();
    char tok[TMT_TOKEN_MAX + 1], bad[TMT_TOKEN_MAX * 2];
    sign_ok(&k, &c, tok, sizeof(tok));
    size_t n = strlen(tok);
    const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    size_t h = (size_t)(d1 - tok), s = (size_t)(d2 - tok);

    assert_int_equal(verify1(&k, "", NULL), TMT_TOKEN_MALFORMED);
    assert_int_equal(tmt_token_verify(&k, 1, (struct tmt_slice){NULL, 0}, NOW, SKEW, NULL),
                     TMT_TOKEN_MALFORMED);
    assert_int_equal(verify1(&k, "..", NULL), TMT_TOKEN_MALFORMED);
    /* Two parts, four parts, an empty header or payload. */
    snprintf(bad, sizeof(bad), "%.*s", (int)s, tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    snprintf(bad, sizeof(bad), "%s.", tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    snprintf(bad, sizeof(bad), "%s", tok + h);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    snprintf(bad, sizeof(bad), "%.*s%s", (int)h + 1, tok, tok + s);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    /* Signature: empty, short, long, flipped; its base64url strict. */
    snprintf(bad, sizeof(bad), "%.*s", (int)s + 1, tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_BAD_SIGNATURE);
    snprintf(bad, sizeof(bad), "%.*s", (int)n - 3, tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_BAD_SIGNATURE);
    snprintf(bad, sizeof(bad), "%sAAAA", tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_BAD_SIGNATURE);
    for (size_t at = s + 1; at < n - 1; at++) { /* every byte of the MAC counts */
        snprintf(bad, sizeof(bad), "%s", tok);
        bad[at] = bad[at] == 'A' ? 'B' : 'A';
        assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_BAD_SIGNATURE);
    }
    snprintf(bad, sizeof(bad), "%s=", tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[n - 1] = (char)(bad[n - 1] + 1); /* the last character's unused bits set */
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    /* A flipped payload byte is a signature problem, not a claims one. */
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[h + 6] = bad[h + 6] == 'A' ? 'B' : 'A';
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_BAD_SIGNATURE);
    /* Stray characters. */
    snprintf(bad, sizeof(bad), " %s", tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    snprintf(bad, sizeof(bad), "%s\n", tok);
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
    /* The slice's length counts, not a NUL. */
    snprintf(bad, sizeof(bad), "%sXYZ.", tok);
    assert_int_equal(tmt_token_verify(&k, 1, (struct tmt_slice){bad, n}, NOW, SKEW, NULL),
                     TMT_TOKEN_OK);
    /* Longer than TMT_TOKEN_MAX: refused before anything else. */
    memset(bad, 'A', TMT_TOKEN_MAX + 1);
    bad[TMT_TOKEN_MAX + 1] = '\0';
    bad[10] = bad[20] = '.';
    assert_int_equal(verify1(&k, bad, NULL), TMT_TOKEN_MALFORMED);
}

/* ---- scope ---- */

static void path_ok_table(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        const char *path;
        bool ok;
    } cases[] = {
        {"/v/a/", "/v/a/x", true},
        {"/v/a/", "/v/a/", true},
        {"/v/a/", "/v/a", false},
        {"/v/a/", "/v/ab/x", false},
        {"/v/a", "/v/ab/x", true}, /* what "regex:^/v/a" means */
        {"/v/a/", "/v/a/../b/x", false},
        {"/v/a/", "/v/a/%2e%2e/b", false},
        {"/v/a/", "/v/a/%2E./b", false},
        {"/v/a/", "/v/a/.%2e/b", false},
        {"/v/a/", "/v/a/x/../y", true},
        {"/v/a/", "/v/b/../a/x", true},
        {"/v/a/", "/v/a/./x", true},
        {"/v/a/", "/v/a//x", true},
        {"/v/a/", "//v///a//x", true},
        {"/v/a/", "/v/%61/x", true},
        {"/v/a-1/", "/v/a%2D1/x", true},
        {"/v/a~_./", "/v/a%7e%5F%2E/x", true},
        {"/v/a/", "/v/a%2Fx", false},
        {"/v/a%2F/", "/v/a%2f/x", true},
        {"/v/a/", "/v/a/%zz", false},
        {"/v/a/", "/v/a/%", false},
        {"/v/a/", "/v/a/../../..", false},
        {"/v/a/", "v/a/x", false},
        {"/v/a/", "", false},
        {"/", "/anything", true},
        {"/", "/..", false},
        {"/v/A/", "/v/a/x", false},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        struct tmt_token_claims c;
        memset(&c, 0, sizeof(c));
        strcpy(c.prefix, cases[i].prefix);
        if (tmt_token_path_ok(&c, sl(cases[i].path)) != cases[i].ok) {
            print_error("case %zu: prefix \"%s\" path \"%s\": want %d\n", i, cases[i].prefix,
                        cases[i].path, cases[i].ok);
            fail();
        }
    }
    /* No prefix allows nothing. */
    struct tmt_token_claims none;
    memset(&none, 0, sizeof(none));
    assert_false(tmt_token_path_ok(&none, sl("/v/a/x")));
}

static void path_ok_long(void **state)
{
    (void)state;
    struct tmt_token_claims c;
    memset(&c, 0, sizeof(c));
    strcpy(c.prefix, "/v/a/");
    /* Longer than the stack buffer: the heap path, ".." walking back out at the end. */
    size_t len = 20000;
    char *p = malloc(len + 1);
    assert_non_null(p);
    memcpy(p, "/v/a/", 5);
    for (size_t i = 5; i < len; i++)
        p[i] = (i % 10 == 9) ? '/' : 'x';
    p[len] = '\0';
    assert_true(tmt_token_path_ok(&c, (struct tmt_slice){p, len}));
    size_t dots = 0;
    for (size_t i = 5; i < len; i++)
        dots += p[i] == '/';
    char *q = malloc(len + 3 * (dots + 2) + 1);
    assert_non_null(q);
    memcpy(q, p, len);
    size_t n = len;
    for (size_t i = 0; i < dots + 2; i++) {
        memcpy(q + n, "/..", 3);
        n += 3;
    }
    assert_false(tmt_token_path_ok(&c, (struct tmt_slice){q, n}));
    free(q);
    free(p);
}

/* ---- base64url ---- */

static void b64url_table(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
        const char *enc;
    } cases[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"fooba", 5, "Zm9vYmE"},
        {"foobar", 6, "Zm9vYmFy"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        {"\x00\x00", 2, "AAA"},
        {"\xff", 1, "_w"},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        char enc[32], dec[32];
        size_t el = strlen(cases[i].enc);
        memset(enc, 'x', sizeof(enc));
        size_t n = tmt_b64url_encode(cases[i].raw, cases[i].len, enc, sizeof(enc));
        long m = tmt_b64url_decode(cases[i].enc, el, dec, sizeof(dec));
        if (n != el || strcmp(enc, cases[i].enc) != 0 || m != (long)cases[i].len ||
            memcmp(dec, cases[i].raw, cases[i].len) != 0) {
            print_error("case %zu \"%s\": encoded %zu \"%s\", decoded %ld\n", i, cases[i].enc, n,
                        enc, m);
            fail();
        }
        /* Exactly enough room, then one byte less. */
        if (el > 0) {
            assert_int_equal(tmt_b64url_encode(cases[i].raw, cases[i].len, enc, el + 1), el);
            assert_int_equal(tmt_b64url_encode(cases[i].raw, cases[i].len, enc, el), 0);
            assert_string_equal(enc, "");
            assert_int_equal(tmt_b64url_decode(cases[i].enc, el, dec, cases[i].len),
                             (long)cases[i].len);
            assert_int_equal(tmt_b64url_decode(cases[i].enc, el, dec, cases[i].len - 1), -1);
        }
    }
    /* Decoding: padding, other alphabets, impossible lengths, unused bits set, stray bytes. */
    static const struct {
        const char *enc;
        size_t len;
        long want;
    } dec_cases[] = {
        {"Zg==", 4, -1},
        {"Zg=", 3, -1},
        {"Zm9v=", 5, -1},
        {"Z", 1, -1},
        {"Zm9vY", 5, -1},
        {"Zm+v", 4, -1},
        {"Zm/v", 4, -1},
        {"Zm9 v", 5, -1},
        {"Zm9\n", 4, -1},
        {"Zh", 2, -1},
        {"Zm9", 3, -1},
        {"Zm-", 3, -1},
        {"Zm9vYmF", 7, -1},
        {"Zm9vYmG", 7, -1},
        {"\xc3\xa9"
         "AA",
         4, -1},
        {"Z\0AA", 4, -1},
        {"Zm8", 3, 2},
        {"Zw", 2, 1},
        {"_w", 2, 1},
        {"Zm9vYmE", 7, 5},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(dec_cases); i++) {
        char dec[32];
        long m = tmt_b64url_decode(dec_cases[i].enc, dec_cases[i].len, dec, sizeof(dec));
        if (m != dec_cases[i].want) {
            print_error("decode %zu \"%s\": %ld, want %ld\n", i, dec_cases[i].enc, m,
                        dec_cases[i].want);
            fail();
        }
    }
    char dec[4];
    assert_int_equal(tmt_b64url_decode(NULL, 0, dec, 0), 0);
    char one[1] = {'x'};
    assert_int_equal(tmt_b64url_encode("", 0, one, 1), 0);
    assert_int_equal(one[0], '\0');
    assert_int_equal(tmt_b64url_encode("a", 1, one, 0), 0);
}

static void b64url_round_trip(void **state)
{
    (void)state;
    unsigned char raw[300], back[300];
    char enc[401];
    uint64_t x = 88172645463325252ull;
    for (size_t len = 0; len < sizeof(raw); len++) {
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
        size_t n = tmt_b64url_encode(raw, len, enc, sizeof(enc));
        assert_int_equal(n, (len * 4 + 2) / 3);
        assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789-_"),
                         n);
        assert_int_equal(tmt_b64url_decode(enc, n, back, sizeof(back)), (long)len);
        assert_memory_equal(raw, back, len);
    }
}

/* ---- texts ---- */

static void verdict_texts(void **state)
{
    (void)state;
    assert_string_equal(tmt_token_verdict_text(TMT_TOKEN_EXPIRED), "expired token");
    assert_string_equal(tmt_token_verdict_text(TMT_TOKEN_BAD_SIGNATURE), "bad signature");
    for (size_t i = 0; i < TMT_ARRAY_LEN(token_verdict_names); i++) {
        const char *t = tmt_token_verdict_text(token_verdict_names[i].v);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown verdict");
        /* Fit for a header value: visible ASCII and spaces. */
        for (const char *p = t; *p != '\0'; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(t, tmt_token_verdict_text(token_verdict_names[j].v));
    }
    assert_string_equal(tmt_token_verdict_text((enum tmt_token_verdict)99), "unknown verdict");
}

/* ---- threads ---- */

struct thread_arg {
    const struct tmt_token_key *k;
    const char *tok;
    int bad;
};

static void *verify_many(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        struct tmt_token_claims c;
        if (tmt_token_verify(a->k, 1, sl(a->tok), NOW, SKEW, &c) != TMT_TOKEN_OK ||
            strcmp(c.prefix, "/v/abc-1/") != 0)
            a->bad++;
    }
    return NULL;
}

static void verify_threads(void **state)
{
    (void)state;
    struct tmt_token_key k = key_of("k1", 0x20, 32);
    struct tmt_token_claims c = base_claims();
    char tok[TMT_TOKEN_MAX + 1];
    sign_ok(&k, &c, tok, sizeof(tok));
    pthread_t t[4];
    struct thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct thread_arg){&k, tok, 0};
        assert_int_equal(pthread_create(&t[i], NULL, verify_many, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].bad, 0);
    }
}

/* ---- vectors.json (python3-jwt) ---- */

static void claims_from_json(const json_t *j, struct tmt_token_claims *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->kid, sizeof(c->kid), "%s", json_string_value(json_object_get(j, "kid")));
    snprintf(c->iss, sizeof(c->iss), "%s", json_string_value(json_object_get(j, "iss")));
    snprintf(c->sub, sizeof(c->sub), "%s", json_string_value(json_object_get(j, "sub")));
    snprintf(c->dev, sizeof(c->dev), "%s", json_string_value(json_object_get(j, "dev")));
    snprintf(c->lease, sizeof(c->lease), "%s", json_string_value(json_object_get(j, "lease")));
    snprintf(c->prefix, sizeof(c->prefix), "%s", json_string_value(json_object_get(j, "prefix")));
    c->iat = json_integer_value(json_object_get(j, "iat"));
    c->exp = json_integer_value(json_object_get(j, "exp"));
    c->nbf = json_integer_value(json_object_get(j, "nbf"));
}

static void vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *doc = json_load_file(TMT_TOKEN_VECTORS, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        print_error("%s:%d: %s\n", TMT_TOKEN_VECTORS, jerr.line, jerr.text);
    assert_non_null(doc);
    const json_t *jkeys = json_object_get(doc, "keys");
    struct tmt_token_key keys[8];
    size_t nk = json_array_size(jkeys);
    assert_true(nk > 0 && nk <= TMT_ARRAY_LEN(keys));
    for (size_t i = 0; i < nk; i++) {
        const json_t *jk = json_array_get(jkeys, i);
        const char *hex = json_string_value(json_object_get(jk, "secret_hex"));
        memset(&keys[i], 0, sizeof(keys[i]));
        snprintf(keys[i].kid, sizeof(keys[i].kid), "%s",
                 json_string_value(json_object_get(jk, "kid")));
        keys[i].secret_len = strlen(hex) / 2;
        assert_true(keys[i].secret_len <= TMT_TOKEN_SECRET_MAX);
        for (size_t b = 0; b < keys[i].secret_len; b++)
            keys[i].secret[b] = (unsigned char)(tmt_hex_value((unsigned char)hex[2 * b]) * 16 +
                                                tmt_hex_value((unsigned char)hex[2 * b + 1]));
    }
    const json_t *vs = json_object_get(doc, "vectors");
    size_t nv = json_array_size(vs), failed = 0;
    size_t seen[TMT_TOKEN_PATH_OUTSIDE + 1] = {0};
    assert_true(nv >= 50);
    for (size_t i = 0; i < nv; i++) {
        const json_t *v = json_array_get(vs, i);
        const char *name = json_string_value(json_object_get(v, "name"));
        const json_t *jt = json_object_get(v, "token");
        const char *path = json_string_value(json_object_get(v, "path"));
        int want = token_verdict_parse(json_string_value(json_object_get(v, "verdict")));
        assert_true(want >= 0);
        seen[want]++;
        /* An exact-size heap copy: a read past the token is an ASan report. */
        size_t tl = json_string_length(jt);
        char *tok = malloc(tl > 0 ? tl : 1);
        assert_non_null(tok);
        memcpy(tok, json_string_value(jt), tl);
        struct tmt_token_claims got;
        enum tmt_token_verdict r = tmt_token_verify(
            keys, nk, (struct tmt_slice){tok, tl}, json_integer_value(json_object_get(v, "now")),
            json_integer_value(json_object_get(v, "skew")), &got);
        free(tok);
        if (r == TMT_TOKEN_OK && !tmt_token_path_ok(&got, sl(path)))
            r = TMT_TOKEN_PATH_OUTSIDE;
        bool ok = (int)r == want;
        if (ok && r == TMT_TOKEN_OK) {
            struct tmt_token_claims exp;
            claims_from_json(json_object_get(v, "claims"), &exp);
            ok = strcmp(exp.kid, got.kid) == 0 && strcmp(exp.iss, got.iss) == 0 &&
                 strcmp(exp.sub, got.sub) == 0 && strcmp(exp.dev, got.dev) == 0 &&
                 strcmp(exp.lease, got.lease) == 0 && strcmp(exp.prefix, got.prefix) == 0 &&
                 exp.iat == got.iat && exp.exp == got.exp && exp.nbf == got.nbf;
        }
        if (!ok) {
            print_error("vector %s: got %s, want %s\n", name, token_verdict_name(r),
                        token_verdict_name((enum tmt_token_verdict)want));
            failed++;
        }
    }
    json_decref(doc);
    assert_int_equal(failed, 0);
    /* Every verdict is exercised. */
    for (size_t i = 0; i < TMT_ARRAY_LEN(seen); i++) {
        if (seen[i] == 0)
            print_error("no vector for %s\n", token_verdict_name((enum tmt_token_verdict)i));
        assert_true(seen[i] > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_verify_round_trip),
        cmocka_unit_test(sign_escapes_strings),
        cmocka_unit_test(sign_longest),
        cmocka_unit_test(sign_refuses),
        cmocka_unit_test(verdict_each),
        cmocka_unit_test(verdict_hand_built),
        cmocka_unit_test(verdict_prefix_sizes),
        cmocka_unit_test(verdict_structure),
        cmocka_unit_test(path_ok_table),
        cmocka_unit_test(path_ok_long),
        cmocka_unit_test(b64url_table),
        cmocka_unit_test(b64url_round_trip),
        cmocka_unit_test(verdict_texts),
        cmocka_unit_test(verify_threads),
        cmocka_unit_test(vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
