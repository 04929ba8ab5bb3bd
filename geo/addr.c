/*
 * addr.c: client addresses and CIDR prefixes as text, and their 128-bit trie keys.
 *
 * Parsing goes through inet_pton on a bounded NUL-terminated copy: glibc's reader is strict
 * (four decimal IPv4 parts without leading zeros, one "::" at most, an embedded IPv4 tail only at
 * the end). What we add: the length bound, IPv6 scopes dropped, IPv4-mapped addresses turned into
 * IPv4 (a dual-stack socket reports IPv4 clients that way), and strict prefix lengths.
 */
#include "geo_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tmt/err.h"

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool scope_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

int tmt_geo_addr_parse_n(const char *p, size_t len, struct tmt_geo_addr *out)
{
    char buf[TMT_GEO_ADDR_TEXT_MAX];
    memset(out, 0, sizeof(*out));
    if (p == NULL || len == 0 || len >= sizeof(buf))
        return TMT_EINVAL;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL)
        return TMT_EINVAL;
    if (memchr(buf, ':', len) == NULL) {
        if (inet_pton(AF_INET, buf, out->b) != 1) {
            memset(out, 0, sizeof(*out));
            return TMT_EINVAL;
        }
        out->family = AF_INET;
        return 0;
    }
    char *pct = strchr(buf, '%');
    if (pct != NULL) {
        /* A scope: one or more interface-name characters, nothing after. */
        if (pct[1] == '\0')
            return TMT_EINVAL;
        for (const char *s = pct + 1; *s != '\0'; s++) {
            if (!scope_char(*s))
                return TMT_EINVAL;
        }
        *pct = '\0';
    }
    unsigned char b[16];
    if (inet_pton(AF_INET6, buf, b) != 1)
        return TMT_EINVAL;
    if (memcmp(b, mapped_prefix, sizeof(mapped_prefix)) == 0) {
        if (pct != NULL) /* a scope on an IPv4 address means nothing */
            return TMT_EINVAL;
        out->family = AF_INET;
        memcpy(out->b, b + 12, 4);
        return 0;
    }
    out->family = AF_INET6;
    memcpy(out->b, b, 16);
    return 0;
}

int tmt_geo_addr_parse(const char *text, struct tmt_geo_addr *out)
{
    if (text == NULL) {
        memset(out, 0, sizeof(*out));
        return TMT_EINVAL;
    }
    return tmt_geo_addr_parse_n(text, strnlen(text, TMT_GEO_ADDR_TEXT_MAX), out);
}

const char *tmt_geo_addr_format(const struct tmt_geo_addr *a, char *buf, size_t size)
{
    if (size == 0)
        return "?";
    if (a == NULL || (a->family != AF_INET && a->family != AF_INET6) ||
        inet_ntop(a->family, a->b, buf, (socklen_t)TMT_MIN(size, (size_t)INT32_MAX)) == NULL) {
        snprintf(buf, size, "?");
    }
    return buf;
}

static uint64_t load_be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

void geo_addr_key(const struct tmt_geo_addr *a, uint64_t k[2])
{
    if (a->family == AF_INET) {
        k[0] = (uint64_t)a->b[0] << 56 | (uint64_t)a->b[1] << 48 | (uint64_t)a->b[2] << 40 |
               (uint64_t)a->b[3] << 32;
        k[1] = 0;
        return;
    }
    k[0] = load_be64(a->b);
    k[1] = load_be64(a->b + 8);
}

void geo_key_mask(uint64_t k[2], unsigned plen)
{
    if (plen < 64) {
        k[0] &= plen == 0 ? 0 : ~UINT64_C(0) << (64 - plen);
        k[1] = 0;
    } else if (plen < 128) {
        k[1] &= plen == 64 ? 0 : ~UINT64_C(0) << (128 - plen);
    }
}

int geo_cidr_parse(const char *p, size_t len, bool v6, uint64_t key[2], uint8_t *plen,
                   const char **why)
{
    const char *slash = memchr(p, '/', len);
    if (slash == NULL) {
        *why = "no prefix length (/N)";
        return TMT_EINVAL;
    }
    size_t alen = (size_t)(slash - p), llen = len - alen - 1;
    unsigned max = v6 ? 128 : 32, n = 0;
    if (llen == 0 || llen > 3 || (llen > 1 && slash[1] == '0')) {
        *why = "bad prefix length";
        return TMT_EINVAL;
    }
    for (size_t i = 0; i < llen; i++) {
        char c = slash[1 + i];
        if (c < '0' || c > '9') {
            *why = "bad prefix length";
            return TMT_EINVAL;
        }
        n = n * 10 + (unsigned)(c - '0');
    }
    if (n > max) {
        *why = v6 ? "prefix length over 128" : "prefix length over 32";
        return TMT_EINVAL;
    }
    /* Addresses with scopes are for hosts, not networks: refuse them here. */
    if (memchr(p, '%', alen) != NULL) {
        *why = "not an address";
        return TMT_EINVAL;
    }
    char buf[TMT_GEO_ADDR_TEXT_MAX];
    if (alen == 0 || alen >= sizeof(buf)) {
        *why = "not an address";
        return TMT_EINVAL;
    }
    memcpy(buf, p, alen);
    buf[alen] = '\0';
    unsigned char b[16] = {0};
    bool has_colon = memchr(buf, ':', alen) != NULL;
    if (memchr(buf, '\0', alen) != NULL || inet_pton(has_colon ? AF_INET6 : AF_INET, buf, b) != 1) {
        *why = "not an address";
        return TMT_EINVAL;
    }
    if (has_colon != v6) {
        *why = v6 ? "an IPv4 prefix in network6 (it belongs in network)"
                  : "an IPv6 prefix in network (it belongs in network6)";
        return TMT_EINVAL;
    }
    if (v6 && memcmp(b, mapped_prefix, sizeof(mapped_prefix)) == 0 && n >= 96) {
        *why = "an IPv4-mapped prefix (list the IPv4 network in network)";
        return TMT_EINVAL;
    }
    struct tmt_geo_addr a = {.family = v6 ? AF_INET6 : AF_INET};
    memcpy(a.b, b, 16);
    uint64_t k[2], m[2];
    geo_addr_key(&a, k);
    m[0] = k[0];
    m[1] = k[1];
    geo_key_mask(m, n);
    key[0] = m[0];
    key[1] = m[1];
    *plen = (uint8_t)n;
    if (m[0] != k[0] || m[1] != k[1]) {
        *why = "host bits set";
        return TMT_EINVAL;
    }
    return 0;
}
