/*
 * conf_values.c: parsers for single config values (sizes, durations, booleans, addresses, URLs).
 *
 * They only read the string they are given, check every multiplication against overflow before
 * doing it, and say in `why` what was wrong in words an operator can act on.
 */
#include "tmt/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_int.h"
#include "tmt/err.h"

/* Parses the leading decimal digits of s into *v; returns the first byte after them or NULL. */
static const char *parse_u64(const char *s, uint64_t *v)
{
    uint64_t n = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return NULL;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return NULL;
        n = n * 10 + d;
    }
    *v = n;
    return p;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static int parse_with_units(const char *s, uint64_t *out, const struct unit *units, size_t n_units,
                            const char *what, const char *examples, char *why, size_t why_len)
{
    uint64_t v;
    const char *p = parse_u64(s, &v);
    if (p == NULL) {
        if (isdigit((unsigned char)*s)) {
            snprintf(why, why_len, "\"%s\" is too large for a %s", s, what);
            return TMT_ELIMIT;
        }
        snprintf(why, why_len, "\"%s\" is not a %s (examples: %s)", s, what, examples);
        return TMT_EINVAL;
    }
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < n_units; i++) {
        if (strcasecmp(p, units[i].name) != 0)
            continue;
        if (units[i].mult != 0 && v > UINT64_MAX / units[i].mult) {
            snprintf(why, why_len, "\"%s\" is too large for a %s", s, what);
            return TMT_ELIMIT;
        }
        *out = v * units[i].mult;
        return TMT_OK;
    }
    snprintf(why, why_len, "\"%s\" is not a %s (examples: %s)", s, what, examples);
    return TMT_EINVAL;
}

int tmt_conf_parse_size(const char *s, uint64_t *bytes, char *why, size_t why_len)
{
    /* Like nginx, k/M/G/T are powers of 1024 whatever the spelling. */
    static const struct unit units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ull << 10},
        {"kb", 1ull << 10},
        {"kib", 1ull << 10},
        {"m", 1ull << 20},
        {"mb", 1ull << 20},
        {"mib", 1ull << 20},
        {"g", 1ull << 30},
        {"gb", 1ull << 30},
        {"gib", 1ull << 30},
        {"t", 1ull << 40},
        {"tb", 1ull << 40},
        {"tib", 1ull << 40},
    };
    return parse_with_units(s, bytes, units, TMT_ARRAY_LEN(units), "size", "512, 64k, 10MiB, 2G",
                            why, why_len);
}

int tmt_conf_parse_duration(const char *s, uint64_t *ms, char *why, size_t why_len)
{
    static const struct unit units[] = {
        {"", 1000},       {"ms", 1},          {"s", 1000},
        {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400ull * 1000},
    };
    return parse_with_units(s, ms, units, TMT_ARRAY_LEN(units), "duration",
                            "250ms, 10s, 5m, 1h, 2d", why, why_len);
}

int tmt_conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return TMT_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return TMT_OK;
        }
    }
    return TMT_EINVAL;
}

/* A DNS name or IPv4 literal: letters, digits, '-' and '.', not starting with '-' or '.'. */
static bool valid_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '.')
            return false;
    }
    return true;
}

static bool valid_ipv6_literal(const char *h, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/*
 * Splits "host:port" / "[v6]:port" / "*:port" at s..s+len. On success host points into s (brackets
 * excluded) and *port is set; `wildcard` allows "*".
 */
static int split_host_port(const char *s, size_t len, const char **host, size_t *host_len,
                           long *port, bool wildcard, bool port_required, char *why, size_t why_len)
{
    const char *colon = NULL;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL) {
            snprintf(why, why_len, "missing ']' after IPv6 address");
            return TMT_EINVAL;
        }
        *host = s + 1;
        *host_len = (size_t)(rb - s - 1);
        if (!valid_ipv6_literal(*host, *host_len)) {
            snprintf(why, why_len, "\"%.*s\" is not an IPv6 address", (int)*host_len, *host);
            return TMT_EINVAL;
        }
        if (rb + 1 < s + len) {
            if (rb[1] != ':') {
                snprintf(why, why_len, "expected ':' and a port after ']'");
                return TMT_EINVAL;
            }
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        *host = s;
        *host_len = colon != NULL ? (size_t)(colon - s) : len;
        bool star = wildcard && *host_len == 1 && s[0] == '*';
        if (!star && !valid_hostname(*host, *host_len)) {
            snprintf(why, why_len, "\"%.*s\" is not a host name or address", (int)*host_len, *host);
            return TMT_EINVAL;
        }
    }
    *port = -1;
    if (colon == NULL) {
        if (port_required) {
            snprintf(why, why_len, "missing ':port'");
            return TMT_EINVAL;
        }
        return TMT_OK;
    }
    const char *p = colon + 1;
    size_t plen = len - (size_t)(p - s);
    if (plen == 0 || plen > 5) {
        snprintf(why, why_len, "port must be a number from 0 to 65535");
        return TMT_EINVAL;
    }
    long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (!isdigit((unsigned char)p[i])) {
            snprintf(why, why_len, "port must be a number from 0 to 65535");
            return TMT_EINVAL;
        }
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535) {
        snprintf(why, why_len, "port must be a number from 0 to 65535");
        return TMT_ELIMIT;
    }
    *port = v;
    return TMT_OK;
}

int tmt_conf_check_addr(const char *s, char *why, size_t why_len)
{
    const char *host;
    size_t host_len;
    long port;
    return split_host_port(s, strlen(s), &host, &host_len, &port, true, true, why, why_len);
}

int tmt_conf_addr_split(const char *addr, char *host, size_t host_len, uint16_t *port)
{
    char why[128];
    const char *h;
    size_t hl;
    long p;
    if (split_host_port(addr, strlen(addr), &h, &hl, &p, true, true, why, sizeof(why)) != 0)
        return TMT_EINVAL;
    if (hl == 1 && h[0] == '*')
        hl = 0;
    if (hl >= host_len)
        return TMT_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return TMT_OK;
}

int tmt_conf_check_url(const char *s, char *why, size_t why_len)
{
    const char *rest;
    if (strncasecmp(s, "http://", 7) == 0) {
        rest = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        rest = s + 8;
    } else {
        snprintf(why, why_len, "\"%s\" is not an http:// or https:// URL", s);
        return TMT_EINVAL;
    }
    size_t auth_len = strcspn(rest, "/?#");
    if (rest[auth_len] == '?' || rest[auth_len] == '#') {
        snprintf(why, why_len, "a base URL takes no query or fragment");
        return TMT_EINVAL;
    }
    const char *host;
    size_t host_len;
    long port;
    int rc = split_host_port(rest, auth_len, &host, &host_len, &port, false, false, why, why_len);
    if (rc != 0)
        return rc;
    for (const char *p = rest + auth_len; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#') {
            snprintf(why, why_len, "the URL path may hold no spaces, controls, '?' or '#'");
            return TMT_EINVAL;
        }
    }
    return TMT_OK;
}
