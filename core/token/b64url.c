/*
 * b64url.c: base64url without padding (RFC 4648 section 5), as JWS compact form uses it.
 *
 * Decoding is strict: no padding, no whitespace, no length that no encoding has, and the unused
 * low bits of the last character must be zero (RFC 4648 section 3.5 lets a decoder insist). A
 * lax decoder maps several strings to one byte string, so one signed token would have several
 * spellings, and anything keyed by the token's text (a cache of verdicts, a replay list) could
 * be walked around.
 */
#include "tmt/token.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t tmt_b64url_encode(const void *in, size_t len, char *out, size_t cap)
{
    const unsigned char *p = in;
    if (len > SIZE_MAX / 2) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    size_t olen = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
    if (cap == 0 || olen > cap - 1) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    size_t i = 0, j = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[j++] = alphabet[v >> 18];
        out[j++] = alphabet[v >> 12 & 63];
        out[j++] = alphabet[v >> 6 & 63];
        out[j++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        out[j++] = alphabet[p[i] >> 2];
        out[j++] = alphabet[(p[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[j++] = alphabet[v >> 10];
        out[j++] = alphabet[v >> 4 & 63];
        out[j++] = alphabet[(v & 15) << 2];
    }
    out[j] = '\0';
    return j;
}

long tmt_b64url_decode(const char *in, size_t len, void *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n > cap || n > (size_t)INT32_MAX)
        return -1;
    unsigned char *o = out;
    size_t i = 0, j = 0;
    for (; i + 4 <= len; i += 4) {
        int a = b64url_value((unsigned char)in[i]), b = b64url_value((unsigned char)in[i + 1]);
        int c = b64url_value((unsigned char)in[i + 2]), d = b64url_value((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        o[j++] = (unsigned char)(v >> 16);
        o[j++] = (unsigned char)(v >> 8);
        o[j++] = (unsigned char)v;
    }
    if (len - i == 2) {
        int a = b64url_value((unsigned char)in[i]), b = b64url_value((unsigned char)in[i + 1]);
        if ((a | b) < 0 || (b & 15) != 0)
            return -1;
        o[j++] = (unsigned char)(a << 2 | b >> 4);
    } else if (len - i == 3) {
        int a = b64url_value((unsigned char)in[i]), b = b64url_value((unsigned char)in[i + 1]);
        int c = b64url_value((unsigned char)in[i + 2]);
        if ((a | b | c) < 0 || (c & 3) != 0)
            return -1;
        o[j++] = (unsigned char)(a << 2 | b >> 4);
        o[j++] = (unsigned char)((b & 15) << 4 | c >> 2);
    }
    return (long)j;
}
