/*
 * test_geo.c: libtmt_geo without a MaxMind database: client addresses, the coverage-zone file
 * (Apache Traffic Control's format, every refusal with its line), the longest-prefix match
 * (nested prefixes, /0, /32, /128, and a random set checked against a linear scan), great-circle
 * distances, the decision order (zone, location, default, none; overload cut-off, unhealthy
 * edges, load as the tie-breaker within tie_km) and rendezvous stability. Locations come from the
 * zones' coordinates here (a client whose zone group has no edge is routed from that zone's
 * coordinates); test_geo_db.c covers the database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "geo_int.h"
#include "tmt/err.h"
#include "tmt/geo.h"

static struct tmt_geo_addr addr(const char *s)
{
    struct tmt_geo_addr a;
    int rc = tmt_geo_addr_parse(s, &a);
    if (rc != 0)
        fail_msg("address %s does not parse", s);
    return a;
}

static struct tmt_geo_zones *parse(const char *text, struct tmt_err *err)
{
    return tmt_geo_zones_parse("z.json", text, strlen(text), err);
}

static struct tmt_geo_zones *parse_ok(const char *text)
{
    struct tmt_err err;
    struct tmt_geo_zones *z = parse(text, &err);
    if (z == NULL)
        fail_msg("zones refused: %s", err.msg);
    return z;
}

static const char *zone_of(const struct tmt_geo_zones *z, const char *a)
{
    struct tmt_geo_addr ad = addr(a);
    return tmt_geo_zones_lookup(z, &ad, NULL, NULL, NULL);
}

/* ---- addresses ---- */

static void test_addr_parse(void **state)
{
    (void)state;
    struct tmt_geo_addr a;
    static const unsigned char v4[4] = {192, 0, 2, 1};
    assert_int_equal(tmt_geo_addr_parse("192.0.2.1", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.b, v4, 4);
    assert_int_equal(a.b[4] | a.b[15], 0);

    assert_int_equal(tmt_geo_addr_parse("2001:db8::1", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.b[0], 0x20);
    assert_int_equal(a.b[1], 0x01);
    assert_int_equal(a.b[15], 1);

    /* IPv4-mapped, in both spellings, becomes IPv4. */
    assert_int_equal(tmt_geo_addr_parse("::ffff:192.0.2.1", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.b, v4, 4);
    assert_int_equal(tmt_geo_addr_parse("::FFFF:c000:201", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.b, v4, 4);
    /* IPv4-compatible (deprecated) and NAT64 stay IPv6. */
    assert_int_equal(tmt_geo_addr_parse("::192.0.2.1", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(tmt_geo_addr_parse("64:ff9b::192.0.2.1", &a), 0);
    assert_int_equal(a.family, AF_INET6);

    /* A scope is dropped. */
    assert_int_equal(tmt_geo_addr_parse("fe80::1%eth0", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    struct tmt_geo_addr b = addr("fe80::1");
    assert_memory_equal(a.b, b.b, 16);

    /* Private and reserved addresses are addresses like any other. */
    assert_int_equal(tmt_geo_addr_parse("10.0.0.1", &a), 0);
    assert_int_equal(tmt_geo_addr_parse("127.0.0.1", &a), 0);
    assert_int_equal(tmt_geo_addr_parse("::1", &a), 0);
    assert_int_equal(tmt_geo_addr_parse("::", &a), 0);
    assert_int_equal(tmt_geo_addr_parse("0.0.0.0", &a), 0);
    assert_int_equal(tmt_geo_addr_parse("255.255.255.255", &a), 0);

    static const char *const bad[] = {
        "",
        " ",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4\n",
        "[::1]",
        "1.2.3.4:80",
        "::1/128",
        "10.0.0.0/8",
        "fe80::1%",
        "fe80::1%eth0/x",
        "fe80::1%et h0",
        "1.2.3.4%eth0",
        "::ffff:1.2.3.4%eth0",
        "gibberish",
        "1::2::3",
        "12345::",
        "::g",
        "0x1.2.3.4",
        "1.2.3.-4",
        "localhost",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad); i++) {
        memset(&a, 0xa5, sizeof(a));
        if (tmt_geo_addr_parse(bad[i], &a) != TMT_EINVAL)
            fail_msg("\"%s\" parsed", bad[i]);
        assert_int_equal(a.family, 0);
    }
    assert_int_equal(tmt_geo_addr_parse(NULL, &a), TMT_EINVAL);
    /* A NUL inside the length, and a slice that is not NUL-terminated. */
    assert_int_equal(tmt_geo_addr_parse_n("1.2.3.4\0", 8, &a), TMT_EINVAL);
    assert_int_equal(tmt_geo_addr_parse_n("10.9.8.7, 1.1.1.1", 8, &a), 0);
    static const unsigned char v4b[4] = {10, 9, 8, 7};
    assert_memory_equal(a.b, v4b, 4);
    assert_int_equal(tmt_geo_addr_parse_n("10.9.8.7", 0, &a), TMT_EINVAL);

    char buf[TMT_GEO_ADDR_TEXT_MAX];
    a = addr("::ffff:10.1.2.3");
    assert_string_equal(tmt_geo_addr_format(&a, buf, sizeof(buf)), "10.1.2.3");
    a = addr("2001:DB8:0:0:0:0:0:1");
    assert_string_equal(tmt_geo_addr_format(&a, buf, sizeof(buf)), "2001:db8::1");
    a.family = 0;
    assert_string_equal(tmt_geo_addr_format(&a, buf, sizeof(buf)), "?");
}

/* ---- the trie ---- */

static const char nested_v4[] =
    "{\"coverageZones\": {\n"
    "  \"host\": {\"network\": [\"10.1.2.3/32\"]},\n"
    "  \"world\": {\"network\": [\"0.0.0.0/0\"]},\n"
    "  \"ten-one-two\": {\"network\": [\"10.1.2.0/24\"]},\n"
    "  \"ten\": {\"network\": [\"10.0.0.0/8\"]},\n"
    "  \"ten-one\": {\"network\": [\"10.1.0.0/16\"]},\n"
    "  \"lan\": {\"network\": [\"192.168.0.0/16\", \"172.16.0.0/12\"]},\n"
    "  \"odd\": {\"network\": [\"10.1.2.128/25\", \"10.1.2.2/31\"]}\n"
    "}}\n";

static void test_trie_v4(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(nested_v4);
    assert_int_equal(tmt_geo_zones_prefixes(z), 9);
    assert_int_equal(tmt_geo_zones_groups(z), 7);
    assert_string_equal(zone_of(z, "10.1.2.3"), "host");
    assert_string_equal(zone_of(z, "::ffff:10.1.2.3"), "host");
    assert_string_equal(zone_of(z, "10.1.2.2"), "odd");
    assert_string_equal(zone_of(z, "10.1.2.4"), "ten-one-two");
    assert_string_equal(zone_of(z, "10.1.2.127"), "ten-one-two");
    assert_string_equal(zone_of(z, "10.1.2.128"), "odd");
    assert_string_equal(zone_of(z, "10.1.2.255"), "odd");
    assert_string_equal(zone_of(z, "10.1.3.1"), "ten-one");
    assert_string_equal(zone_of(z, "10.2.0.0"), "ten");
    assert_string_equal(zone_of(z, "10.255.255.255"), "ten");
    assert_string_equal(zone_of(z, "11.0.0.0"), "world");
    assert_string_equal(zone_of(z, "9.255.255.255"), "world");
    assert_string_equal(zone_of(z, "0.0.0.0"), "world");
    assert_string_equal(zone_of(z, "255.255.255.255"), "world");
    assert_string_equal(zone_of(z, "192.168.255.255"), "lan");
    assert_string_equal(zone_of(z, "172.31.0.1"), "lan");
    assert_string_equal(zone_of(z, "172.32.0.1"), "world");
    /* IPv4 prefixes, /0 included, are not IPv6 prefixes. */
    assert_null(zone_of(z, "::1"));
    assert_null(zone_of(z, "::10.1.2.3"));
    assert_null(tmt_geo_zones_lookup(z, NULL, NULL, NULL, NULL));
    tmt_geo_zones_free(&z);
    assert_null(z);
    tmt_geo_zones_free(&z);

    /* Without the /0 the gaps are gaps. */
    z = parse_ok("{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/8\", \"10.1.2.3/32\"]},"
                 " \"b\": {\"network\": [\"10.1.0.0/16\"]}}}");
    assert_string_equal(zone_of(z, "10.1.2.3"), "a");
    assert_string_equal(zone_of(z, "10.1.2.4"), "b");
    assert_string_equal(zone_of(z, "10.0.0.0"), "a");
    assert_null(zone_of(z, "11.0.0.0"));
    assert_null(zone_of(z, "9.255.255.255"));
    tmt_geo_zones_free(&z);

    /* An empty file has no zones. */
    z = parse_ok("{\"coverageZones\": {}}");
    assert_int_equal(tmt_geo_zones_prefixes(z), 0);
    assert_null(zone_of(z, "10.0.0.1"));
    assert_null(zone_of(z, "::1"));
    tmt_geo_zones_free(&z);
}

static void test_trie_v6(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(
        "{\"coverageZones\": {\n"
        "  \"host\": {\"network6\": [\"2001:db8:1:2::1/128\"]},\n"
        "  \"all\": {\"network6\": [\"::/0\"]},\n"
        "  \"doc\": {\"network6\": [\"2001:db8::/32\"]},\n"
        "  \"site\": {\"network6\": [\"2001:db8:1::/48\"], \"network\": [\"198.51.100.0/24\"]},\n"
        "  \"lan\": {\"network6\": [\"2001:db8:1:2::/64\", \"2001:db8:1:3::/64\"]},\n"
        "  \"last\": {\"network6\": [\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127\"]},\n"
        "  \"ula\": {\"network6\": [\"fc00::/7\"]}\n"
        "}}\n");
    assert_string_equal(zone_of(z, "2001:db8:1:2::1"), "host");
    assert_string_equal(zone_of(z, "2001:db8:1:2::2"), "lan");
    assert_string_equal(zone_of(z, "2001:db8:1:3:ffff::"), "lan");
    assert_string_equal(zone_of(z, "2001:db8:1:4::"), "site");
    assert_string_equal(zone_of(z, "2001:db8:2::"), "doc");
    assert_string_equal(zone_of(z, "2001:db9::"), "all");
    assert_string_equal(zone_of(z, "::"), "all");
    assert_string_equal(zone_of(z, "fd12:3456::1"), "ula");
    assert_string_equal(zone_of(z, "fe00::1"), "all");
    assert_string_equal(zone_of(z, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "last");
    assert_string_equal(zone_of(z, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"), "all");
    assert_string_equal(zone_of(z, "fe80::1%lo"), "all");
    /* IPv4 clients, mapped ones too, see only the network lists: not ::/0. */
    assert_string_equal(zone_of(z, "198.51.100.7"), "site");
    assert_string_equal(zone_of(z, "::ffff:198.51.100.7"), "site");
    assert_null(zone_of(z, "198.51.101.7"));
    tmt_geo_zones_free(&z);
}

/* A random set of nested prefixes, checked against a linear scan. */
struct ref_prefix {
    uint64_t k[2];
    unsigned plen;
    bool v6;
    int group;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int ref_match(const struct ref_prefix *p, size_t n, const struct tmt_geo_addr *a)
{
    uint64_t k[2];
    geo_addr_key(a, k);
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i].v6 != (a->family == AF_INET6) || !geo_key_match(k, p[i].k, p[i].plen))
            continue;
        if (best < 0 || p[i].plen > p[best].plen)
            best = (int)i;
    }
    return best;
}

static void key_addr(const uint64_t k[2], bool v6, struct tmt_geo_addr *a)
{
    memset(a, 0, sizeof(*a));
    a->family = v6 ? AF_INET6 : AF_INET;
    for (int i = 0; i < 8; i++) {
        a->b[i] = (unsigned char)(k[0] >> (56 - 8 * i));
        if (v6)
            a->b[8 + i] = (unsigned char)(k[1] >> (56 - 8 * i));
    }
}

static void test_trie_random(void **state)
{
    (void)state;
    enum { N = 3000, GROUPS = 40 };
    struct ref_prefix *p = calloc(N, sizeof(*p));
    size_t cap = (size_t)N * 64 + 4096, len = 0;
    char *text = malloc(cap);
    assert_non_null(p);
    assert_non_null(text);
    /* Prefixes cluster under a few roots so that they nest deeply. */
    size_t n = 0;
    while (n < N) {
        struct ref_prefix q = {.v6 = (rnd() & 3) == 0};
        unsigned bits = q.v6 ? 128 : 32;
        q.plen = (unsigned)(rnd() % (bits + 1));
        q.k[0] = rnd();
        q.k[1] = q.v6 ? rnd() : 0;
        if (!q.v6)
            q.k[0] &= 0xffffffff00000000ull;
        q.k[0] = (q.k[0] & 0x00ffffffffffffffull) | (uint64_t)(rnd() % 4) << 56; /* 4 roots */
        geo_key_mask(q.k, q.plen);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = p[i].v6 == q.v6 && p[i].plen == q.plen && p[i].k[0] == q.k[0] &&
                  p[i].k[1] == q.k[1];
        if (dup)
            continue;
        q.group = (int)(rnd() % GROUPS);
        p[n++] = q;
    }
    len += (size_t)snprintf(text + len, cap - len, "{\"coverageZones\": {\n");
    for (int g = 0; g < GROUPS; g++) {
        len += (size_t)snprintf(text + len, cap - len, "%s\"g%d\": {\"network\": [", g ? ",\n" : "",
                                g);
        bool first = true;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                len += (size_t)snprintf(text + len, cap - len, "], \"network6\": [");
                first = true;
            }
            for (size_t i = 0; i < n; i++) {
                if (p[i].group != g || p[i].v6 != (pass == 1))
                    continue;
                struct tmt_geo_addr a;
                char t[TMT_GEO_ADDR_TEXT_MAX];
                key_addr(p[i].k, p[i].v6, &a);
                len += (size_t)snprintf(text + len, cap - len, "%s\"%s/%u\"", first ? "" : ", ",
                                        tmt_geo_addr_format(&a, t, sizeof(t)), p[i].plen);
                first = false;
            }
        }
        len += (size_t)snprintf(text + len, cap - len, "]}");
    }
    len += (size_t)snprintf(text + len, cap - len, "}}\n");
    assert_true(len < cap);
    struct tmt_geo_zones *z = parse_ok(text);
    assert_int_equal(tmt_geo_zones_prefixes(z), n);
    /* The trie uses at most 2n - 1 nodes per family (plus the unused node 0). */
    assert_true(z->v4.n_nodes + z->v6.n_nodes <= 2 * n + 2);

    char name[16];
    for (int round = 0; round < 200000; round++) {
        struct tmt_geo_addr a;
        if (round < 2 * (int)n) {
            /* Each prefix's first and last address. */
            const struct ref_prefix *q = &p[round / 2];
            uint64_t k[2] = {q->k[0], q->k[1]};
            if (round & 1) {
                unsigned bits = q->v6 ? 128 : 32;
                for (unsigned b = q->plen; b < bits; b++)
                    k[b >> 6] |= 1ull << (63 - (b & 63));
            }
            key_addr(k, q->v6, &a);
        } else {
            uint64_t k[2] = {rnd(), rnd()};
            bool v6 = rnd() & 1;
            k[0] = (k[0] & 0x00ffffffffffffffull) | (uint64_t)(rnd() % 5) << 56;
            if (!v6) {
                k[0] &= 0xffffffff00000000ull;
                k[1] = 0;
            }
            key_addr(k, v6, &a);
        }
        int want = ref_match(p, n, &a);
        const char *got = tmt_geo_zones_lookup(z, &a, NULL, NULL, NULL);
        if (want < 0) {
            if (got != NULL)
                fail_msg("round %d: found %s, want nothing", round, got);
            continue;
        }
        snprintf(name, sizeof(name), "g%d", p[want].group);
        if (got == NULL || strcmp(got, name) != 0)
            fail_msg("round %d: found %s, want %s", round, got ? got : "nothing", name);
        int32_t m = geo_zones_match(z, &a);
        assert_true(m >= 0);
        assert_int_equal(z->prefixes[m].plen, p[want].plen);
    }
    tmt_geo_zones_free(&z);
    free(text);
    free(p);
}

/* ---- the file ---- */

static const char atc_example[] = "{\n"
                                  "\t\"coverageZones\": {\n"
                                  "\t\t\"cache-group-01\": {\n"
                                  "\t\t\t\"coordinates\": {\n"
                                  "\t\t\t\t\"latitude\":  1.1,\n"
                                  "\t\t\t\t\"longitude\": 2.2\n"
                                  "\t\t\t},\n"
                                  "\t\t\t\"network6\": [\n"
                                  "\t\t\t\t\"1234:5678::/64\",\n"
                                  "\t\t\t\t\"1234:5679::/64\"\n"
                                  "\t\t\t],\n"
                                  "\t\t\t\"network\": [\n"
                                  "\t\t\t\t\"192.168.8.0/24\",\n"
                                  "\t\t\t\t\"192.168.9.0/24\"\n"
                                  "\t\t\t]\n"
                                  "\t\t},\n"
                                  "\t\t\"cache-group-02\": {\n"
                                  "\t\t\t\"coordinates\": {\n"
                                  "\t\t\t\t\"latitude\":  3.3,\n"
                                  "\t\t\t\t\"longitude\": 4.4\n"
                                  "\t\t\t},\n"
                                  "\t\t\t\"network6\": [\n"
                                  "\t\t\t\t\"1234:567a::/64\",\n"
                                  "\t\t\t\t\"1234:567b::/64\"\n"
                                  "\t\t\t],\n"
                                  "\t\t\t\"network\": [\n"
                                  "\t\t\t\t\"192.168.4.0/24\",\n"
                                  "\t\t\t\t\"192.168.5.0/24\"\n"
                                  "\t\t\t]\n"
                                  "\t\t}\n"
                                  "\t},\n"
                                  "\t\"customerName\": \"Tomato\",\n"
                                  "\t\"revision\": \"2026-01-01\"\n"
                                  "}\n";

static void test_file_atc(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(atc_example);
    assert_int_equal(tmt_geo_zones_prefixes(z), 8);
    assert_int_equal(tmt_geo_zones_groups(z), 2);
    double lat = 0, lon = 0;
    bool has = false;
    struct tmt_geo_addr a = addr("192.168.9.200");
    assert_string_equal(tmt_geo_zones_lookup(z, &a, &lat, &lon, &has), "cache-group-01");
    assert_true(has);
    assert_true(lat == 1.1 && lon == 2.2);
    a = addr("1234:567b::42");
    assert_string_equal(tmt_geo_zones_lookup(z, &a, &lat, &lon, &has), "cache-group-02");
    assert_true(has && lat == 3.3 && lon == 4.4);
    assert_true(tmt_geo_zones_group(z, "cache-group-02", &lat, &lon, &has));
    assert_true(has && lat == 3.3 && lon == 4.4);
    assert_false(tmt_geo_zones_group(z, "cache-group-03", &lat, &lon, &has));
    assert_false(has);
    assert_false(tmt_geo_zones_group(z, "cache-group-0", NULL, NULL, NULL));
    tmt_geo_zones_free(&z);

    /* The documentation's first example: no coordinates. */
    z = parse_ok("{ \"coverageZones\": {\n\"cache-group-01\": {\n\"network6\": [\n"
                 "\"1234:5678::/64\",\n\"1234:5679::/64\"\n],\n\"network\": [\n"
                 "\"192.168.8.0/24\",\n\"192.168.9.0/24\"\n]\n}\n}}");
    a = addr("192.168.8.1");
    has = true;
    assert_string_equal(tmt_geo_zones_lookup(z, &a, &lat, &lon, &has), "cache-group-01");
    assert_false(has);
    tmt_geo_zones_free(&z);

    /* Unknown top-level members are ignored, whatever they hold; a BOM, escapes, empty groups,
     * the same CIDR twice in one group, many groups (the name index grows). */
    z = parse_ok(
        "\xef\xbb\xbf{\"x\": [1, -2.5e3, true, false, null, {\"a\": [\"\\u00e9\\ud83c\\udf45\"]}],"
        " \"coverageZones\": {\"\\u0061\": {\"network\": [\"10.0.0.0/8\", \"10.0.0.0/8\"]},"
        " \"e\": {}, \"c\": {\"coordinates\": {\"longitude\": -180, \"latitude\": -90}}},"
        " \"revision\": 7}");
    assert_int_equal(tmt_geo_zones_prefixes(z), 1);
    assert_string_equal(zone_of(z, "10.9.9.9"), "a");
    assert_true(tmt_geo_zones_group(z, "e", NULL, NULL, &has));
    assert_false(has);
    assert_true(tmt_geo_zones_group(z, "c", &lat, &lon, &has));
    assert_true(has && lat == -90 && lon == -180);
    tmt_geo_zones_free(&z);

    char big[64 * 1024];
    size_t l = (size_t)snprintf(big, sizeof(big), "{\"coverageZones\": {");
    for (int i = 0; i < 1000; i++)
        l += (size_t)snprintf(big + l, sizeof(big) - l,
                              "%s\"group-%d\": {\"network\": [\"10.%d.%d.0/24\"]}", i ? "," : "", i,
                              i / 256, i % 256);
    snprintf(big + l, sizeof(big) - l, "}}");
    z = parse_ok(big);
    assert_int_equal(tmt_geo_zones_groups(z), 1000);
    assert_string_equal(zone_of(z, "10.3.231.9"), "group-999");
    for (int i = 0; i < 1000; i++) {
        char g[32];
        snprintf(g, sizeof(g), "group-%d", i);
        assert_true(tmt_geo_zones_group(z, g, NULL, NULL, NULL));
    }
    tmt_geo_zones_free(&z);
}

struct bad_case {
    const char *text;
    const char *msg; /* the whole message */
};

static const struct bad_case bad_files[] = {
    {"{\"coverageZones\": {\n"
     "  \"a\": {\n"
     "    \"network\": [\"10.0.0.0/8\",\n"
     "                \"10.0.0.1/8\"]}}}",
     "z.json:4: group \"a\": network: \"10.0.0.1/8\" has host bits set (the network is "
     "10.0.0.0/8)"},
    {"{\"coverageZones\": {\n"
     "  \"a\": {\"network6\": [\"2001:db8::1/64\"]}}}",
     "z.json:2: group \"a\": network6: \"2001:db8::1/64\" has host bits set (the network is "
     "2001:db8::/64)"},
    {"{\"coverageZones\": {\n"
     "  \"a\": {\n"
     "    \"network\": [\"10.0.0.0/8\", \"192.0.2.0/24\"]},\n"
     "  \"b\": {\n"
     "    \"network6\": [\"2001:db8::/32\"],\n"
     "    \"network\": [\n"
     "      \"192.0.2.0/24\"]},\n"
     "  \"c\": {\"network\": [\"10.0.0.0/8\"]}}}",
     "z.json:7: group \"b\": 192.0.2.0/24 is already in group \"a\" (line 3)"},
    {"{\"coverageZones\": {\"a\": {\"network6\": [\"2001:db8::/32\"]},\n"
     "\"b\": {\"network6\": [\"2001:0db8:0::/32\"]}}}",
     "z.json:2: group \"b\": 2001:db8::/32 is already in group \"a\" (line 1)"},
    {"{\"coverageZones\": {\n\"a\": {\"netwrok\": [\"10.0.0.0/8\"]}}}",
     "z.json:2: group \"a\": unknown member \"netwrok\" (known: network, network6, coordinates)"},
    {"{\"coverageZones\": {\n\"a\": {\"caches\": []}}}",
     "z.json:2: group \"a\": unknown member \"caches\" (known: network, network6, coordinates)"},
    {"{\"coverageZones\": {\n\"a\": {\"coordinates\": {\n\"latitude\": 1,\n\"lng\": 2}}}}",
     "z.json:4: group \"a\": unknown member \"lng\" in coordinates (known: latitude, longitude)"},
    {"{\"coverageZones\": {\n\"a\": {\"coordinates\":\n {\"latitude\": 1}}}}",
     "z.json:2: group \"a\": coordinates need latitude and longitude"},
    {"{\"coverageZones\": {\"a\": {\"coordinates\": {\"latitude\": 1,\n\"longitude\": 180.5}}}}",
     "z.json:2: group \"a\": coordinates: longitude out of range (-180 to 180)"},
    {"{\"coverageZones\": {\"a\": {\"coordinates\": {\"latitude\": -90.01, \"longitude\": 1}}}}",
     "z.json:1: group \"a\": coordinates: latitude out of range (-90 to 90)"},
    {"{\"coverageZones\": {\"a\": {\"coordinates\": {\"latitude\": 1e999, \"longitude\": 1}}}}",
     "z.json:1: group \"a\": coordinates: latitude out of range (-90 to 90)"},
    {"{\"coverageZones\": {\"a\": {\"coordinates\": {\"latitude\": \"1\", \"longitude\": 1}}}}",
     "z.json:1: group \"a\": coordinates: latitude must be a number, found a string"},
    {"{\"coverageZones\": {\"a\": {\"coordinates\": {\"latitude\": 1, \"latitude\": 1}}}}",
     "z.json:1: group \"a\": coordinates: latitude given twice"},
    {"{\"coverageZones\": {\"a\": {\"network\": [], \"network\": []}}}",
     "z.json:1: group \"a\": network given twice"},
    {"{\"coverageZones\": {\"a\": {},\n\n\"a\": {}}}", "z.json:3: group \"a\" given twice"},
    {"{\"coverageZones\": {}, \"coverageZones\": {}}", "z.json:1: coverageZones given twice"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0\" is not a CIDR: no prefix length (/N)"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/33\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0/33\" is not a CIDR: prefix length over 32"},
    {"{\"coverageZones\": {\"a\": {\"network6\": [\"::/129\"]}}}",
     "z.json:1: group \"a\": network6: \"::/129\" is not a CIDR: prefix length over 128"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/08\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0/08\" is not a CIDR: bad prefix length"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0/\" is not a CIDR: bad prefix length"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/+8\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0/+8\" is not a CIDR: bad prefix length"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"300.0.0.0/8\"]}}}",
     "z.json:1: group \"a\": network: \"300.0.0.0/8\" is not a CIDR: not an address"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\" 10.0.0.0/8\"]}}}",
     "z.json:1: group \"a\": network: \" 10.0.0.0/8\" is not a CIDR: not an address"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/8\\u0000\"]}}}",
     "z.json:1: group \"a\": network: \"10.0.0.0/8?\" is not a CIDR: bad prefix length"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"2001:db8::/32\"]}}}",
     "z.json:1: group \"a\": network: \"2001:db8::/32\" is not a CIDR: an IPv6 prefix in network "
     "(it belongs in network6)"},
    {"{\"coverageZones\": {\"a\": {\"network6\": [\"10.0.0.0/8\"]}}}",
     "z.json:1: group \"a\": network6: \"10.0.0.0/8\" is not a CIDR: an IPv4 prefix in network6 "
     "(it belongs in network)"},
    {"{\"coverageZones\": {\"a\": {\"network6\": [\"::ffff:10.0.0.0/104\"]}}}",
     "z.json:1: group \"a\": network6: \"::ffff:10.0.0.0/104\" is not a CIDR: an IPv4-mapped "
     "prefix (list the IPv4 network in network)"},
    {"{\"coverageZones\": {\"a\": {\"network6\": [\"fe80::%eth0/64\"]}}}",
     "z.json:1: group \"a\": network6: \"fe80::%eth0/64\" is not a CIDR: not an address"},
    {"{\"coverageZones\": {\"a\": {\"network\": [10]}}}",
     "z.json:1: group \"a\": network must hold CIDR strings, found a number"},
    {"{\"coverageZones\": {\"a\": {\"network\": \"10.0.0.0/8\"}}}",
     "z.json:1: group \"a\": network must be an array of CIDR strings, found a string"},
    {"{\"coverageZones\": {\"a\": {\"network\": null}}}",
     "z.json:1: group \"a\": network must be an array of CIDR strings, found null"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/8\",]}}}",
     "z.json:1: group \"a\": network must hold CIDR strings, found ']'"},
    {"{\"coverageZones\": {\"a\": []}}", "z.json:1: group \"a\" must be an object, found an array"},
    {"{\"coverageZones\": []}", "z.json:1: coverageZones must be an object, found an array"},
    {"{\"coverageZones\": {\"a b\": {}}}",
     "z.json:1: group name \"a b\" is not 1 to 64 of A-Z a-z 0-9 . _ -"},
    {"{\"coverageZones\": {\"\": {}}}",
     "z.json:1: group name \"\" is not 1 to 64 of A-Z a-z 0-9 . _ -"},
    {"{\"coverageZones\": {\"\\u00e9\\n\": {}}}",
     "z.json:1: group name \"???\" is not 1 to 64 of A-Z a-z 0-9 . _ -"},
    {"{\"coverageZones\": {\"a\\u0000b\": {}}}",
     "z.json:1: group name \"a?b\" is not 1 to 64 of A-Z a-z 0-9 . _ -"},
    {"{\"coverageZones\": {\"a\": {\"network\\u0000\": []}}}",
     "z.json:1: group \"a\": unknown member \"network?\" (known: network, network6, coordinates)"},
    {"{\"coverageZones\": {\"a\": {}}", "z.json:1: expected ',' or '}' after a member"},
    {"{\"coverageZones\": {\"a\": {}}}}", "z.json:1: '}' after the top-level object"},
    {"{\"coverageZones\": {\"a\": {}}} {}", "z.json:1: an object after the top-level object"},
    {"{\"coverageZones\": {\"a\" {}}}", "z.json:1: expected ':' after a member name"},
    {"{\"coverageZones\": {\"a\": {},}}", "z.json:1: expected a string, found '}'"},
    {"{\"coverageZones\": {\"a\": {\"network\": [\"10.0.0.0/8]}}}",
     "z.json:1: unterminated string"},
    {"{\"coverageZones\": {\"a\n\": {}}}", "z.json:1: control character in a string"},
    {"{\"coverageZones\": {\"\xc3\x28\": {}}}", "z.json:1: invalid UTF-8 in a string"},
    {"{\"coverageZones\": {\"\xed\xa0\x80\": {}}}", "z.json:1: invalid UTF-8 in a string"},
    {"{\"coverageZones\": {\"\\ud800\": {}}}", "z.json:1: lone surrogate in a \\u escape"},
    {"{\"coverageZones\": {\"\\x41\": {}}}", "z.json:1: bad escape \\x in a string"},
    {"{\"coverageZones\": {\"\\u12\": {}}}", "z.json:1: bad \\u escape"},
    {"{\"x\": 01, \"coverageZones\": {}}", "z.json:1: expected ',' or '}' after a member"},
    {"{\"x\": 1., \"coverageZones\": {}}", "z.json:1: bad number"},
    {"{\"x\": tru, \"coverageZones\": {}}", "z.json:1: expected a value, found a boolean"},
    {"{\"x\": [1 2], \"coverageZones\": {}}", "z.json:1: expected ',' or ']' in an array"},
    {"{\"customerName\": \"x\"}", "z.json:1: no coverageZones member"},
    {"[]", "z.json:1: the file must be an object, found an array"},
    {"", "z.json:1: empty file"},
    {"\n\n  \n", "z.json:4: empty file"},
    {"{\"coverageZones\": {}} // comment",
     "z.json:1: a stray character after the top-level object"},
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad_files); i++) {
        struct tmt_err err;
        struct tmt_geo_zones *z = parse(bad_files[i].text, &err);
        if (z != NULL)
            fail_msg("case %zu loaded: %s", i, bad_files[i].text);
        if (err.code != TMT_EINVAL || strcmp(err.msg, bad_files[i].msg) != 0)
            fail_msg("case %zu:\n got  %s (%d)\n want %s", i, err.msg, err.code, bad_files[i].msg);
    }
    /* Nesting: 64 levels in an ignored member are read, 65 are refused. */
    char deep[512];
    for (int depth = 63; depth <= 64; depth++) {
        size_t l = (size_t)snprintf(deep, sizeof(deep), "{\"x\": ");
        for (int i = 0; i < depth; i++)
            deep[l++] = '[';
        for (int i = 0; i < depth; i++)
            deep[l++] = ']';
        snprintf(deep + l, sizeof(deep) - l, ", \"coverageZones\": {}}");
        struct tmt_err err;
        struct tmt_geo_zones *z = parse(deep, &err);
        if (depth == 63) {
            assert_non_null(z);
        } else {
            assert_null(z);
            assert_string_equal(err.msg, "z.json:1: nested deeper than 64");
        }
        tmt_geo_zones_free(&z);
    }
    /* A long name is refused without reading past what was given; a long CIDR too. */
    char lng[2048];
    size_t l = (size_t)snprintf(lng, sizeof(lng), "{\"coverageZones\": {\"");
    memset(lng + l, 'a', 1000);
    snprintf(lng + l + 1000, sizeof(lng) - l - 1000, "\": {}}}");
    struct tmt_err err;
    assert_null(parse(lng, &err));
    assert_non_null(strstr(err.msg, "z.json:1: group name \"aaaa"));
    assert_non_null(strstr(err.msg, "aaa......\" is not"));
    l = (size_t)snprintf(lng, sizeof(lng), "{\"coverageZones\": {\"a\": {\"network\": [\"");
    memset(lng + l, '1', 1000);
    snprintf(lng + l + 1000, sizeof(lng) - l - 1000, "\"]}}}");
    assert_null(parse(lng, &err));
    assert_non_null(strstr(err.msg, "is not a CIDR: too long"));
    /* Length, not NUL, ends the text. */
    const char *t = "{\"coverageZones\": {}}";
    assert_null(tmt_geo_zones_parse("z.json", t, strlen(t) - 1, &err));
    assert_string_equal(err.msg, "z.json:1: expected ',' or '}' after a member");
    assert_null(tmt_geo_zones_parse("z.json", NULL, 0, &err));
    assert_string_equal(err.msg, "z.json:1: empty file");
}

static void test_file_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/tmt-geo-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/zones.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(atc_example, f);
    fclose(f);
    struct tmt_err err;
    struct tmt_geo_zones *z = tmt_geo_zones_load(path, &err);
    assert_non_null(z);
    assert_int_equal(tmt_geo_zones_prefixes(z), 8);
    tmt_geo_zones_free(&z);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"coverageZones\": {\n\"a\": {\"network\": [\n\"10.0.0.1/8\"]}}}", f);
    fclose(f);
    assert_null(tmt_geo_zones_load(path, &err));
    assert_int_equal(err.code, TMT_EINVAL);
    char want[512];
    snprintf(want, sizeof(want),
             "%s:3: group \"a\": network: \"10.0.0.1/8\" has host bits set (the network is "
             "10.0.0.0/8)",
             path);
    assert_string_equal(err.msg, want);
    unlink(path);

    assert_null(tmt_geo_zones_load(path, &err));
    assert_int_equal(err.code, TMT_EIO);
    assert_int_equal(err.sys_errno, ENOENT);
    assert_non_null(strstr(err.msg, "zones.json: cannot open"));
    assert_null(tmt_geo_zones_load(dir, &err));
    assert_int_equal(err.code, TMT_EIO);
    rmdir(dir);
}

/* ---- distance ---- */

static void test_distance(void **state)
{
    (void)state;
    /* Paris - New York: 5837 km on the sphere (5853 km on the ellipsoid). */
    double d = tmt_geo_distance_km(48.8566, 2.3522, 40.7128, -74.0060);
    assert_true(fabs(d - 5837) < 3);
    assert_true(fabs(tmt_geo_distance_km(40.7128, -74.0060, 48.8566, 2.3522) - d) < 1e-9);
    /* London - Paris 343.6 km; Sydney - Tokyo 7826 km (across the equator). */
    assert_true(fabs(tmt_geo_distance_km(51.5074, -0.1278, 48.8566, 2.3522) - 343.6) < 0.5);
    assert_true(fabs(tmt_geo_distance_km(-33.8688, 151.2093, 35.6762, 139.6503) - 7826) < 1);
    /* Across the antimeridian: Fiji to Samoa, about 1150 km, not 38,000. */
    assert_true(tmt_geo_distance_km(-18.1248, 178.4501, -13.8333, -171.7500) < 1200);
    assert_true(tmt_geo_distance_km(1, 2, 1, 2) == 0);
    double half = M_PI * 6371.0088;
    assert_true(fabs(tmt_geo_distance_km(0, 0, 0, 180) - half) < 1e-6);
    assert_true(fabs(tmt_geo_distance_km(90, 0, -90, 0) - half) < 1e-6);
    assert_true(fabs(tmt_geo_distance_km(0, 0, 90, 0) - half / 2) < 1e-6);
    assert_true(fabs(tmt_geo_distance_km(89.9, 10, 89.9, -170) - 0.2 * M_PI / 180 * 6371.0088) <
                1e-3);
}

/* ---- the decision ---- */

#define PARIS 48.8566, 2.3522
#define LONDON 51.5074, -0.1278
#define NEWYORK 40.7128, -74.0060
#define TOKYO 35.6762, 139.6503
#define SYDNEY -33.8688, 151.2093

/*
 * Zones whose groups have no edges give locations: "at-london" is a client at London, etc.
 * Groups with edges: par, lon, nyc, tok; "fr" has coordinates only (its edges carry NaN).
 */
static const char decision_zones[] =
    "{\"coverageZones\": {\n"
    "  \"par\": {\"network\": [\"10.1.0.0/16\"], \"coordinates\": {\"latitude\": 48.8566, "
    "\"longitude\": 2.3522}},\n"
    "  \"nyc\": {\"network\": [\"10.2.0.0/16\"]},\n"
    "  \"fr\": {\"network\": [\"10.3.0.0/16\"], \"coordinates\": {\"latitude\": 45.764, "
    "\"longitude\": 4.8357}},\n"
    "  \"at-london\": {\"network\": [\"10.10.0.0/16\"], \"coordinates\": {\"latitude\": 51.5074, "
    "\"longitude\": -0.1278}},\n"
    "  \"at-tokyo\": {\"network6\": [\"2001:db8:10::/48\"], \"coordinates\": {\"latitude\": "
    "35.6762, \"longitude\": 139.6503}},\n"
    "  \"at-sydney\": {\"network\": [\"10.11.0.0/16\"], \"coordinates\": {\"latitude\": -33.8688, "
    "\"longitude\": 151.2093}},\n"
    "  \"nowhere\": {\"network\": [\"10.12.0.0/16\"]}\n"
    "}}\n";

enum { E_PAR1, E_PAR2, E_LON1, E_NYC1, E_TOK1, E_FR1, N_EDGES };

static void fleet(struct tmt_geo_edge *e)
{
    const struct tmt_geo_edge init[N_EDGES] = {
        [E_PAR1] = {"par-1", "par", PARIS, 0.2, true},
        [E_PAR2] = {"par-2", "par", PARIS, 0.3, true},
        [E_LON1] = {"lon-1", "lon", LONDON, 0.5, true},
        [E_NYC1] = {"nyc-1", "nyc", NEWYORK, 0.1, true},
        [E_TOK1] = {"tok-1", "tok", TOKYO, 0.1, true},
        [E_FR1] = {"fr-1", "fr", NAN, NAN, 0.1, true},
    };
    memcpy(e, init, sizeof(init));
}

static struct tmt_geo_choice choose(const struct tmt_geo_zones *z, const char *client,
                                    const char *asset, const struct tmt_geo_edge *e, size_t n,
                                    const char *dflt, int want_rc)
{
    struct tmt_geo_choice c;
    struct tmt_geo_addr a;
    const struct tmt_geo_addr *ap = NULL;
    if (client != NULL) {
        a = addr(client);
        ap = &a;
    }
    int rc = tmt_geo_choose(z, NULL, dflt, ap, asset, e, n, 0.9, 50, &c);
    if (rc != want_rc)
        fail_msg("client %s: rc %d, want %d (%s)", client != NULL ? client : "(none)", rc, want_rc,
                 c.why);
    return c;
}

static void test_choose_order(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(decision_zones);
    struct tmt_geo_edge e[N_EDGES];
    fleet(e);

    /* A zone hit: its group, by rendezvous within it; no distance. */
    struct tmt_geo_choice c = choose(z, "10.1.2.3", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_string_equal(c.group, "par");
    assert_true(c.edge == E_PAR1 || c.edge == E_PAR2);
    assert_string_equal(c.zone_group, "par");
    assert_true(c.distance_km == -1);
    assert_false(c.db_error);
    /* A zone without coordinates still routes by zone. */
    c = choose(z, "::ffff:10.2.0.9", "a1", e, N_EDGES, "par", 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_int_equal(c.edge, E_NYC1);
    /* The edge of "fr" has no coordinates of its own: its group's count. */
    c = choose(z, "10.3.0.1", "a1", e, N_EDGES, "par", 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_int_equal(c.edge, E_FR1);

    /* Location: the nearest group. */
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_LOCATION);
    assert_int_equal(c.edge, E_LON1);
    assert_string_equal(c.zone_group, "at-london");
    assert_true(c.distance_km >= 0 && c.distance_km < 1);
    c = choose(z, "2001:db8:10::1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.edge, E_TOK1);
    /* Sydney's nearest is Tokyo (7826 km). */
    c = choose(z, "10.11.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.edge, E_TOK1);
    assert_true(fabs(c.distance_km - 7826) < 1);

    /* A zone group with no edge of its own, and no coordinates: default. */
    c = choose(z, "10.12.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, E_NYC1);
    assert_string_equal(c.zone_group, "nowhere");
    /* Not in a zone, no database: default. */
    c = choose(z, "192.0.2.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, E_NYC1);
    assert_null(c.zone_group);
    assert_true(c.distance_km == -1);
    /* Unparsable address: default. */
    c = choose(z, NULL, "a1", e, N_EDGES, "tok", 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, E_TOK1);
    assert_non_null(strstr(c.why, "unparsable"));
    /* No zones at all. */
    c = choose(NULL, "10.1.2.3", "a1", e, N_EDGES, "tok", 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, E_TOK1);
    /* None: no default, or a default without an available edge, or no edges. */
    c = choose(z, "192.0.2.1", "a1", e, N_EDGES, NULL, TMT_ENOTFOUND);
    assert_int_equal(c.how, TMT_GEO_NONE);
    assert_int_equal(c.edge, -1);
    assert_null(c.group);
    c = choose(z, "192.0.2.1", "a1", e, N_EDGES, "mars", TMT_ENOTFOUND);
    assert_int_equal(c.how, TMT_GEO_NONE);
    c = choose(z, "10.10.0.1", "a1", e, 0, "nyc", TMT_ENOTFOUND);
    assert_int_equal(c.edge, -1);

    /* Arguments. */
    struct tmt_geo_addr a = addr("10.1.2.3");
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "a", e, N_EDGES, 0, 50, &c), TMT_EINVAL);
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "a", e, N_EDGES, NAN, 50, &c), TMT_EINVAL);
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "a", e, N_EDGES, 0.9, -1, &c), TMT_EINVAL);
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "a", e, N_EDGES, 0.9, INFINITY, &c),
                     TMT_EINVAL);
    assert_int_equal(c.edge, -1);
    /* A NULL asset is the empty one. */
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, NULL, e, N_EDGES, 0.9, 0, &c), 0);
    tmt_geo_zones_free(&z);
}

static void test_choose_health_and_load(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(decision_zones);
    struct tmt_geo_edge e[N_EDGES];
    fleet(e);

    /* Unhealthy edges are skipped inside the zone's group... */
    e[E_PAR1].healthy = false;
    struct tmt_geo_choice c = choose(z, "10.1.2.3", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_int_equal(c.edge, E_PAR2);
    /* ... and with none left, the client is routed from the zone's coordinates (Paris): London
     * is 343.6 km away, "fr" (Lyon) 391.5 km, within tie_km (50) of it and less loaded (0.1
     * against 0.5): fr. */
    e[E_PAR2].healthy = false;
    c = choose(z, "10.1.2.3", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_LOCATION);
    assert_int_equal(c.edge, E_FR1);
    assert_string_equal(c.zone_group, "par");
    assert_non_null(strstr(c.why, "zone's coordinates"));
    assert_true(fabs(c.distance_km - 391.5) < 1);
    /* As loaded as fr, London is the nearer. */
    e[E_LON1].load = 0.1;
    c = choose(z, "10.1.2.3", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.edge, E_LON1);
    assert_true(fabs(c.distance_km - 343.6) < 1);
    fleet(e);

    /* Overload cut-off: London at 0.95 of capacity sends London's clients to Paris. */
    e[E_LON1].load = 0.95;
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.how, TMT_GEO_BY_LOCATION);
    assert_string_equal(c.group, "par");
    /* Exactly at the cut-off counts as overloaded; a NaN load too. */
    e[E_LON1].load = 0.9;
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_string_equal(c.group, "par");
    e[E_LON1].load = NAN;
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_string_equal(c.group, "par");
    /* An overloaded zone group: the client goes by location (its zone has no coordinates: so
     * default here). */
    fleet(e);
    e[E_NYC1].load = 1.2;
    c = choose(z, "10.2.0.1", "a1", e, N_EDGES, "tok", 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, E_TOK1);
    /* Unless every healthy edge is overloaded: then they all count again. */
    for (int i = 0; i < N_EDGES; i++)
        e[i].load = 0.99;
    e[E_PAR1].load = 0.5;
    e[E_PAR1].healthy = false; /* an unhealthy edge below the cut-off does not count */
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_int_equal(c.edge, E_LON1);
    c = choose(z, "10.2.0.1", "a1", e, N_EDGES, "tok", 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_int_equal(c.edge, E_NYC1);

    /* Nothing healthy: none. */
    for (int i = 0; i < N_EDGES; i++)
        e[i].healthy = false;
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", TMT_ENOTFOUND);
    assert_int_equal(c.how, TMT_GEO_NONE);

    /* Edges without a place (NaN, group not in the file) serve their zone and the default but
     * are never ranked by distance. */
    fleet(e);
    e[E_LON1].lat = NAN;
    c = choose(z, "10.10.0.1", "a1", e, N_EDGES, "nyc", 0);
    assert_string_equal(c.group, "par");
    c = choose(z, "192.0.2.1", "a1", e, N_EDGES, "lon", 0);
    assert_int_equal(c.edge, E_LON1);
    tmt_geo_zones_free(&z);
}

static void test_choose_ties(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(decision_zones);
    /* Two London groups 20 km apart and Paris; the client is at London. */
    struct tmt_geo_edge e[] = {
        {"lon-a1", "lon-a", 51.5074, -0.1278, 0.6, true},
        {"lon-a2", "lon-a", 51.5074, -0.1278, 0.6, true},
        {"lon-b1", "lon-b", 51.5074 + 0.18, -0.1278, 0.2, true},
        {"lon-b2", "lon-b", 51.5074 + 0.18, -0.1278, 0.4, true},
        {"par-1", "par", PARIS, 0.0, true},
    };
    size_t n = TMT_ARRAY_LEN(e);
    struct tmt_geo_addr a = addr("10.10.0.1");
    struct tmt_geo_choice c;
    /* Within tie_km the lower mean load wins (0.3 < 0.6); Paris is too far to tie. */
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 50, &c), 0);
    assert_string_equal(c.group, "lon-b");
    assert_true(c.distance_km > 19 && c.distance_km < 21);
    /* tie_km 0: the nearest. */
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 0, &c), 0);
    assert_string_equal(c.group, "lon-a");
    /* Only available edges count in the mean: lon-a's mean becomes 0.1 when lon-a1 is out. */
    e[1].load = 0.1;
    e[0].healthy = false;
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 50, &c), 0);
    assert_string_equal(c.group, "lon-a");
    assert_int_equal(c.edge, 1);
    /* Equal loads: the nearer; then the name. */
    e[0].healthy = true;
    e[0].load = e[1].load = e[2].load = e[3].load = 0.3;
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 50, &c), 0);
    assert_string_equal(c.group, "lon-a");
    e[2].lat = e[3].lat = 51.5074;
    e[0].lat = e[1].lat = 51.5074 + 0.18;
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 50, &c), 0);
    assert_string_equal(c.group, "lon-b");
    e[0].lat = e[1].lat = 51.5074;
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, n, 0.9, 50, &c), 0);
    assert_string_equal(c.group, "lon-a");
    /* The order of the list changes nothing. */
    e[0].load = 0.5;
    for (int round = 0; round < 50; round++) {
        struct tmt_geo_edge s[TMT_ARRAY_LEN(e)];
        memcpy(s, e, sizeof(e));
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(rnd() % (i + 1));
            struct tmt_geo_edge t = s[i];
            s[i] = s[j];
            s[j] = t;
        }
        char asset[16];
        snprintf(asset, sizeof(asset), "a%d", round);
        struct tmt_geo_choice c1, c2;
        assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, asset, e, n, 0.9, 50, &c1), 0);
        assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, asset, s, n, 0.9, 50, &c2), 0);
        assert_string_equal(e[c1.edge].id, s[c2.edge].id);
    }
    tmt_geo_zones_free(&z);
}

/* Long lists: past the first 512 edges (not cached) and past 32 groups within tie_km. */
static void test_choose_many(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(decision_zones);
    struct tmt_geo_addr a = addr("10.10.0.1"); /* at London */
    struct tmt_geo_choice c;
    enum { N = 700 };
    static struct tmt_geo_edge e[N], s[N];
    static char ids[N][16], groups[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "e%d", i);
        snprintf(groups[i], sizeof(groups[i]), "far%d", i / 4);
        e[i] = (struct tmt_geo_edge){ids[i], groups[i], TOKYO, 0.1, true};
    }
    /* Late in the list: a London group, and a less loaded one 10 km away. */
    e[650] = (struct tmt_geo_edge){"near-1", "near", LONDON, 0.5, true};
    e[690] = (struct tmt_geo_edge){"near2-1", "near2", 51.5974, -0.1278, 0.1, true};
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, N, 0.9, 50, &c), 0);
    assert_int_equal(c.edge, 690);
    assert_true(fabs(c.distance_km - 10) < 0.1);
    assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", e, N, 0.9, 5, &c), 0);
    assert_int_equal(c.edge, 650);

    /* 40 groups at London (2 edges each), the least loaded is g23 (0.105, below near2's 0.2). */
    e[690].load = 0.2;
    for (int i = 0; i < 80; i++) {
        e[i].lat = 51.5074 + 0.001 * (i % 7);
        e[i].lon = -0.1278;
        snprintf(groups[i], sizeof(groups[i]), "g%d", i / 2);
        e[i].group = groups[i];
        e[i].load = i / 2 == 23 ? 0.1 + 0.01 * (i % 2) : 0.3 + 0.001 * i;
    }
    for (int round = 0; round < 20; round++) {
        memcpy(s, e, sizeof(e));
        for (size_t i = N - 1; i > 0; i--) {
            size_t j = (size_t)(rnd() % (i + 1));
            struct tmt_geo_edge t = s[i];
            s[i] = s[j];
            s[j] = t;
        }
        assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", s, N, 0.9, 50, &c), 0);
        assert_string_equal(c.group, "g23");
        /* With no tie window: a group with an edge exactly at London. */
        assert_int_equal(tmt_geo_choose(z, NULL, NULL, &a, "x", s, N, 0.9, 0, &c), 0);
        assert_true(c.distance_km < 1); /* its group has an edge at London, and one within 1 km */
    }
    tmt_geo_zones_free(&z);
}

/* ---- rendezvous ---- */

static void test_rendezvous(void **state)
{
    (void)state;
    enum { EDGES = 20, ASSETS = 20000 };
    struct tmt_geo_edge e[EDGES];
    char ids[EDGES][16];
    for (int i = 0; i < EDGES; i++) {
        snprintf(ids[i], sizeof(ids[i]), "edge-%02d", i);
        e[i] = (struct tmt_geo_edge){ids[i], "g", PARIS, 0.1, true};
    }
    static int before[ASSETS], after[ASSETS];
    int count[EDGES] = {0};
    for (int a = 0; a < ASSETS; a++) {
        char asset[24];
        snprintf(asset, sizeof(asset), "show%d-v1", a);
        before[a] = tmt_geo_rendezvous(asset, e, EDGES);
        assert_true(before[a] >= 0 && before[a] < EDGES);
        count[before[a]]++;
        /* The same through the full decision (the group is the default one). */
        struct tmt_geo_choice c;
        assert_int_equal(tmt_geo_choose(NULL, NULL, "g", NULL, asset, e, EDGES, 0.9, 50, &c), 0);
        assert_int_equal(c.edge, before[a]);
    }
    /* Spread: every edge within 20 % of the mean. */
    for (int i = 0; i < EDGES; i++) {
        if (count[i] < ASSETS / EDGES * 8 / 10 || count[i] > ASSETS / EDGES * 12 / 10)
            fail_msg("edge %d has %d of %d assets", i, count[i], ASSETS);
    }
    /* Removing one edge moves exactly the assets it had. */
    e[7].healthy = false;
    int moved = 0;
    for (int a = 0; a < ASSETS; a++) {
        char asset[24];
        snprintf(asset, sizeof(asset), "show%d-v1", a);
        after[a] = tmt_geo_rendezvous(asset, e, EDGES);
        if (before[a] == 7) {
            assert_int_not_equal(after[a], 7);
            moved++;
        } else {
            assert_int_equal(after[a], before[a]);
        }
    }
    assert_int_equal(moved, count[7]);
    /* It comes back: everything as before. */
    e[7].healthy = true;
    for (int a = 0; a < ASSETS; a += 7) {
        char asset[24];
        snprintf(asset, sizeof(asset), "show%d-v1", a);
        assert_int_equal(tmt_geo_rendezvous(asset, e, EDGES), before[a]);
    }
    /* Adding an edge takes only assets for itself. */
    struct tmt_geo_edge more[EDGES + 1];
    memcpy(more, e, sizeof(e));
    more[EDGES] = (struct tmt_geo_edge){"edge-new", "g", PARIS, 0.1, true};
    for (int a = 0; a < ASSETS; a++) {
        char asset[24];
        snprintf(asset, sizeof(asset), "show%d-v1", a);
        int r = tmt_geo_rendezvous(asset, more, EDGES + 1);
        assert_true(r == EDGES || r == before[a]);
    }
    /* Nothing healthy. */
    for (int i = 0; i < EDGES; i++)
        e[i].healthy = false;
    assert_int_equal(tmt_geo_rendezvous("x", e, EDGES), -1);
    assert_int_equal(tmt_geo_rendezvous("x", e, 0), -1);
}

/* ---- threads ---- */

struct reader {
    const struct tmt_geo_zones *z;
    const struct tmt_geo_edge *e;
    int mismatches;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    static const char *const clients[] = {"10.1.2.3", "10.10.0.1", "2001:db8:10::1", "10.11.0.1",
                                          "192.0.2.1"};
    static const int want[] = {-2, E_LON1, E_TOK1, E_TOK1, E_NYC1};
    for (int i = 0; i < 20000; i++) {
        size_t k = (size_t)i % TMT_ARRAY_LEN(clients);
        struct tmt_geo_addr a;
        struct tmt_geo_choice c;
        char asset[16];
        snprintf(asset, sizeof(asset), "a%d", i % 97);
        if (tmt_geo_addr_parse(clients[k], &a) != 0 ||
            tmt_geo_choose(r->z, NULL, "nyc", &a, asset, r->e, N_EDGES, 0.9, 50, &c) != 0 ||
            (want[k] >= 0 ? c.edge != want[k] : (c.edge != E_PAR1 && c.edge != E_PAR2)))
            r->mismatches++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    struct tmt_geo_zones *z = parse_ok(decision_zones);
    struct tmt_geo_edge e[N_EDGES];
    fleet(e);
    pthread_t t[4];
    struct reader r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct reader){z, e, 0};
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].mismatches, 0);
    }
    tmt_geo_zones_free(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),   cmocka_unit_test(test_trie_v4),
        cmocka_unit_test(test_trie_v6),      cmocka_unit_test(test_trie_random),
        cmocka_unit_test(test_file_atc),     cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_load),    cmocka_unit_test(test_distance),
        cmocka_unit_test(test_choose_order), cmocka_unit_test(test_choose_health_and_load),
        cmocka_unit_test(test_choose_ties),  cmocka_unit_test(test_choose_many),
        cmocka_unit_test(test_rendezvous),   cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
