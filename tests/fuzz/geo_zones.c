/*
 * Fuzz target: arbitrary bytes as a coverage-zone file through tmt_geo_zones_parse, then lookups
 * on what parsed; the first bytes also as a client address.
 *
 * Checks: a refusal is TMT_EINVAL or TMT_ELIMIT with "fz.json:LINE: " and a line that exists in
 * the input. A file that loaded keeps distinct prefixes with their host bits clear, and every
 * prefix's first and last address is found by a lookup and maps to that prefix or a longer one
 * inside it (the same answer as a linear scan of all prefixes, for files of up to 512 prefixes),
 * with its group's name, which tmt_geo_zones_group finds. Addresses made of input bytes get the
 * linear scan's answer too. An address that parses formats back to text that parses to the same
 * address. A decision over a few edges in the file's groups never fails for a client in a zone
 * whose group has an edge.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "geo_int.h"
#include "tmt/err.h"
#include "tmt/geo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) FUZZ_CHECK("geo_zones", cond)
#define ORACLE_MAX 512

static void addr_of_key(const uint64_t k[2], bool v6, struct tmt_geo_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->family = v6 ? AF_INET6 : AF_INET;
    for (int i = 0; i < 8; i++) {
        a->b[i] = (unsigned char)(k[0] >> (56 - 8 * i));
        if (v6)
            a->b[8 + i] = (unsigned char)(k[1] >> (56 - 8 * i));
    }
}

/* The longest prefix containing a, by a scan of all of them. */
static int32_t scan(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a)
{
    uint64_t k[2];
    geo_addr_key(a, k);
    int32_t best = -1;
    for (size_t i = 0; i < z->n_prefixes; i++) {
        const struct geo_prefix *p = &z->prefixes[i];
        if ((p->v6 != 0) != (a->family == AF_INET6) || !geo_key_match(k, p->k, p->plen))
            continue;
        if (best < 0 || p->plen > z->prefixes[best].plen)
            best = (int32_t)i;
    }
    return best;
}

static void check_lookup(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a,
                         int32_t must_cover)
{
    int32_t m = geo_zones_match(z, a);
    const char *g = tmt_geo_zones_lookup(z, a, NULL, NULL, NULL);
    if (z->n_prefixes <= ORACLE_MAX)
        CHECK(m == scan(z, a));
    if (must_cover >= 0) {
        const struct geo_prefix *p = &z->prefixes[must_cover];
        CHECK(m >= 0);
        const struct geo_prefix *q = &z->prefixes[m];
        CHECK(q->v6 == p->v6);
        CHECK(q->plen >= p->plen);
        CHECK(geo_key_match(q->k, p->k, p->plen)); /* q lies inside p */
        if (q->plen == p->plen)
            CHECK(m == must_cover);
    }
    if (m < 0) {
        CHECK(g == NULL);
        return;
    }
    CHECK(g != NULL && g == z->groups[z->prefixes[m].group].name);
    CHECK(tmt_geo_zones_group(z, g, NULL, NULL, NULL));
}

static void check_loaded(const struct tmt_geo_zones *z, const uint8_t *data, size_t size)
{
    CHECK(tmt_geo_zones_prefixes(z) == z->n_prefixes);
    CHECK(tmt_geo_zones_groups(z) == z->n_groups);
    for (size_t i = 0; i < z->n_prefixes; i++) {
        const struct geo_prefix *p = &z->prefixes[i];
        CHECK(p->plen <= (p->v6 ? 128 : 32));
        CHECK(p->group < z->n_groups);
        uint64_t k[2] = {p->k[0], p->k[1]};
        geo_key_mask(k, p->plen);
        CHECK(k[0] == p->k[0] && k[1] == p->k[1]);
        if (i > 0) {
            const struct geo_prefix *o = &z->prefixes[i - 1];
            CHECK(!(o->v6 == p->v6 && o->plen == p->plen && o->k[0] == p->k[0] &&
                    o->k[1] == p->k[1]));
        }
        struct tmt_geo_addr a;
        addr_of_key(p->k, p->v6, &a);
        check_lookup(z, &a, (int32_t)i);
        unsigned bits = p->v6 ? 128 : 32;
        for (unsigned b = p->plen; b < bits; b++)
            k[b >> 6] |= UINT64_C(1) << (63 - (b & 63));
        addr_of_key(k, p->v6, &a);
        check_lookup(z, &a, (int32_t)i);
    }
    for (size_t g = 0; g < z->n_groups; g++)
        CHECK(tmt_geo_zones_group(z, z->groups[g].name, NULL, NULL, NULL));
    /* Addresses from the input's bytes. */
    for (size_t off = 0; off + 16 <= size && off < 256; off += 16) {
        struct tmt_geo_addr a = {.family = AF_INET6};
        memcpy(a.b, data + off, 16);
        check_lookup(z, &a, -1);
        a.family = AF_INET;
        memset(a.b + 4, 0, 12);
        check_lookup(z, &a, -1);
    }
    /* A decision: one edge in each of the first groups. */
    struct tmt_geo_edge e[4];
    size_t n = 0;
    for (size_t g = 0; g < z->n_groups && n < 4; g++, n++)
        e[n] = (struct tmt_geo_edge){z->groups[g].name, z->groups[g].name, NAN, NAN, 0.5, true};
    for (size_t i = 0; i < z->n_prefixes && i < 64; i++) {
        struct tmt_geo_addr a;
        struct tmt_geo_choice c;
        addr_of_key(z->prefixes[i].k, z->prefixes[i].v6, &a);
        int rc = tmt_geo_choose(z, NULL, NULL, &a, "asset", e, n, 0.9, 50, &c);
        const char *zg = tmt_geo_zones_lookup(z, &a, NULL, NULL, NULL);
        bool has_edge = false;
        for (size_t j = 0; j < n; j++)
            has_edge |= strcmp(e[j].group, zg) == 0;
        if (has_edge) {
            CHECK(rc == 0 && c.how == TMT_GEO_BY_ZONE && strcmp(c.group, zg) == 0);
        } else {
            CHECK(rc == 0 || rc == TMT_ENOTFOUND);
        }
    }
}

static void check_refused(const struct tmt_err *err, const uint8_t *data, size_t size)
{
    CHECK(err->code == TMT_EINVAL || err->code == TMT_ELIMIT);
    CHECK(strncmp(err->msg, "fz.json:", 8) == 0);
    const char *p = err->msg + 8;
    unsigned long line = 0;
    CHECK(*p >= '1' && *p <= '9');
    while (*p >= '0' && *p <= '9')
        line = line * 10 + (unsigned long)(*p++ - '0');
    CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
    unsigned long lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    CHECK(line <= lines);
}

static void check_addr(const uint8_t *data, size_t size)
{
    struct tmt_geo_addr a, b;
    size_t n = size < 70 ? size : 70;
    if (tmt_geo_addr_parse_n((const char *)data, n, &a) != 0) {
        CHECK(a.family == 0);
        return;
    }
    CHECK(a.family == AF_INET || a.family == AF_INET6);
    if (a.family == AF_INET6)
        CHECK(!(memcmp(a.b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0));
    char t[TMT_GEO_ADDR_TEXT_MAX];
    tmt_geo_addr_format(&a, t, sizeof(t));
    CHECK(tmt_geo_addr_parse(t, &b) == 0);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_addr(data, size);
    char *copy = fuzz_dup(data, size);
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_geo_zones *z = tmt_geo_zones_parse("fz.json", copy, size, &err);
    if (z == NULL) {
        check_refused(&err, data, size);
    } else {
        CHECK(err.code == TMT_OK);
        check_loaded(z, data, size);
        tmt_geo_zones_free(&z);
        CHECK(z == NULL);
    }
    free(copy);
    return 0;
}
