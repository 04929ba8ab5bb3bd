/*
 * test_geo_db.c: libtmt_geo with MaxMind City databases: locations of known networks (IPv4,
 * IPv6, IPv4-mapped, private), networks without a location, an IPv4-only database, refused files
 * (missing, empty, garbage, truncated, a Country database), damaged files that still open (lookup
 * errors, never a crash, and the decision falling back), and the decision order with a database
 * (a zone hit beats the database's location).
 *
 * The group setup runs make_city_mmdb.pl (next to this file; Debian's libmaxmind-db-writer-perl)
 * into a temporary folder, which the teardown removes: no binary fixture is committed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmt/err.h"
#include "tmt/geo.h"

#ifndef TMT_GEO_MMDB_SCRIPT
#error "TMT_GEO_MMDB_SCRIPT must name make_city_mmdb.pl"
#endif

static char g_dir[64];

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", g_dir, name);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/tmt-geo-db.XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s'", TMT_GEO_MMDB_SCRIPT, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr,
                "test_geo_db: %s failed: is libmaxmind-db-writer-perl installed? "
                "(scripts/setup.sh installs it)\n",
                cmd);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct tmt_geo_db *open_ok(const char *name)
{
    char p[256];
    struct tmt_err err;
    path_of(p, sizeof(p), name);
    struct tmt_geo_db *db = tmt_geo_db_open(p, &err);
    if (db == NULL)
        fail_msg("%s refused: %s", p, err.msg);
    return db;
}

static struct tmt_geo_addr addr(const char *s)
{
    struct tmt_geo_addr a;
    if (tmt_geo_addr_parse(s, &a) != 0)
        fail_msg("address %s does not parse", s);
    return a;
}

static int locate(const struct tmt_geo_db *db, const char *client, double *lat, double *lon)
{
    struct tmt_geo_addr a = addr(client);
    return tmt_geo_db_locate(db, &a, lat, lon);
}

static void test_locate(void **state)
{
    (void)state;
    struct tmt_geo_db *db = open_ok("city.mmdb");
    assert_string_equal(tmt_geo_db_type(db), "GeoIP2-City");
    assert_true(tmt_geo_db_build_epoch(db) > 1700000000ull);
    static const struct {
        const char *client;
        double lat, lon;
    } known[] = {
        {"81.2.69.1", 51.5074, -0.1278},
        {"81.2.69.255", 51.5074, -0.1278},
        {"::ffff:81.2.69.7", 51.5074, -0.1278},
        {"2.125.160.1", 48.8566, 2.3522},
        {"2.125.191.254", 48.8566, 2.3522},
        {"216.160.83.56", 40.7128, -74.0060},
        {"10.20.3.4", -33.8688, 151.2093},
        {"2001:db8:1::5", 35.6762, 139.6503},
        {"2001:db8:1:ffff::1%eth0", 35.6762, 139.6503},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(known); i++) {
        double lat = 0, lon = 0;
        int rc = locate(db, known[i].client, &lat, &lon);
        if (rc != 1 || lat != known[i].lat || lon != known[i].lon)
            fail_msg("%s: rc %d at %f,%f", known[i].client, rc, lat, lon);
    }
    static const char *const unknown[] = {
        "81.2.70.1",     /* next to a known network */
        "2.125.192.0",   /* just past Paris's /19 */
        "89.160.20.5",   /* a country, no location */
        "175.16.199.1",  /* a latitude, no longitude */
        "192.0.2.1",     /* not in the database */
        "2001:db8:2::1", /* not in the database */
        "::1",
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(unknown); i++) {
        double lat = 99, lon = 99;
        int rc = locate(db, unknown[i], &lat, &lon);
        if (rc != 0 || lat != 99 || lon != 99)
            fail_msg("%s: rc %d, want 0 and nothing written", unknown[i], rc);
    }
    struct tmt_geo_addr bad = {.family = 0};
    double lat, lon;
    assert_int_equal(tmt_geo_db_locate(db, &bad, &lat, &lon), 0);
    assert_int_equal(tmt_geo_db_locate(db, NULL, &lat, &lon), 0);
    tmt_geo_db_close(&db);
    assert_null(db);
    tmt_geo_db_close(&db);

    /* An IPv4-only database: IPv6 clients are simply not in it. */
    db = open_ok("city4.mmdb");
    assert_string_equal(tmt_geo_db_type(db), "GeoLite2-City");
    assert_int_equal(locate(db, "81.2.69.1", &lat, &lon), 1);
    assert_true(lat == 51.5074 && lon == -0.1278);
    assert_int_equal(locate(db, "::ffff:81.2.69.1", &lat, &lon), 1);
    assert_int_equal(locate(db, "2001:db8:1::5", &lat, &lon), 0);
    tmt_geo_db_close(&db);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *b = malloc(1 << 20);
    assert_non_null(b);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    assert_true(*len > 0 && *len < (1 << 20));
    return b;
}

static void expect_refused(const char *path, int code, const char *in_msg)
{
    struct tmt_err err;
    struct tmt_geo_db *db = tmt_geo_db_open(path, &err);
    if (db != NULL)
        fail_msg("%s opened", path);
    if (err.code != code || strncmp(err.msg, path, strlen(path)) != 0 ||
        strstr(err.msg, in_msg) == NULL)
        fail_msg("%s: %d %s", path, err.code, err.msg);
}

static void test_refused(void **state)
{
    (void)state;
    char p[256];
    path_of(p, sizeof(p), "country.mmdb");
    expect_refused(p, TMT_EINVAL, "database type \"GeoIP2-Country\" has no locations");

    path_of(p, sizeof(p), "missing.mmdb");
    expect_refused(p, TMT_EIO, "");
    struct tmt_err err;
    assert_null(tmt_geo_db_open(p, &err));
    assert_int_equal(err.sys_errno, ENOENT);

    path_of(p, sizeof(p), "empty.mmdb");
    write_file(p, "", 0);
    expect_refused(p, TMT_ECORRUPT, "not a valid MaxMind DB file");

    path_of(p, sizeof(p), "garbage.mmdb");
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    write_file(p, junk, sizeof(junk));
    expect_refused(p, TMT_ECORRUPT, "not a valid MaxMind DB file");

    path_of(p, sizeof(p), "zones.mmdb");
    const char *json = "{\"coverageZones\": {}}";
    write_file(p, json, strlen(json));
    expect_refused(p, TMT_ECORRUPT, "not a valid MaxMind DB file");

    /* The metadata is at the end: a file cut short loses it. */
    char src[256];
    path_of(src, sizeof(src), "city.mmdb");
    size_t len;
    unsigned char *b = read_file(src, &len);
    path_of(p, sizeof(p), "cut.mmdb");
    write_file(p, b, len / 2);
    expect_refused(p, TMT_ECORRUPT, "not a valid MaxMind DB file");
    /* The metadata's marker alone, with nothing after it. */
    static const char marker[] = "\xab\xcd\xefMaxMind.com";
    write_file(p, marker, sizeof(marker) - 1);
    expect_refused(p, TMT_ECORRUPT, "not a valid MaxMind DB file");
    free(b);

    path_of(p, sizeof(p), "");
    expect_refused(p, TMT_EIO, "");
}

/* The offset of the data section's 16-byte zero separator, i.e. the size of the search tree. */
static size_t tree_size(const unsigned char *b, size_t len)
{
    static const unsigned char zero[16];
    for (size_t i = 0; i + 16 <= len; i++) {
        if (memcmp(b + i, zero, 16) == 0)
            return i;
    }
    fail_msg("no data section separator");
    return 0;
}

static void test_damaged(void **state)
{
    (void)state;
    char src[256], p[256];
    path_of(src, sizeof(src), "city.mmdb");
    path_of(p, sizeof(p), "damaged.mmdb");
    size_t len;
    unsigned char *orig = read_file(src, &len);
    size_t tree = tree_size(orig, len);
    assert_int_equal(tree % 7, 0); /* 28-bit records: 7 bytes a node */
    unsigned char *b = malloc(len);
    assert_non_null(b);

    /* A search tree whose records point past the data: the lookup reports it. */
    memcpy(b, orig, len);
    memset(b, 0xff, tree);
    write_file(p, b, len);
    struct tmt_geo_db *db = open_ok("damaged.mmdb");
    double lat = 0, lon = 0;
    assert_int_equal(locate(db, "81.2.69.1", &lat, &lon), TMT_ECORRUPT);
    assert_int_equal(locate(db, "2001:db8:1::5", &lat, &lon), TMT_ECORRUPT);
    /* The decision goes on: default group, and the error is said. */
    struct tmt_geo_edge e[] = {{"d-1", "dflt", 0, 0, 0.1, true},
                               {"l-1", "lon", 51.5, 0, 0.1, true}};
    struct tmt_geo_addr a = addr("81.2.69.1");
    struct tmt_geo_choice c;
    assert_int_equal(tmt_geo_choose(NULL, db, "dflt", &a, "x", e, 2, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, 0);
    assert_true(c.db_error);
    assert_non_null(strstr(c.why, "database error"));
    tmt_geo_db_close(&db);

    /* A data section of garbage: the record cannot be decoded. */
    memcpy(b, orig, len);
    size_t meta = len - 14;
    while (meta > 0 && memcmp(b + meta, "\xab\xcd\xefMaxMind.com", 14) != 0)
        meta--;
    assert_true(meta > tree + 16);
    memset(b + tree + 16, 0xff, meta - tree - 16);
    write_file(p, b, len);
    db = open_ok("damaged.mmdb");
    int rc = locate(db, "81.2.69.1", &lat, &lon);
    assert_true(rc == TMT_ECORRUPT || rc == 0);
    tmt_geo_db_close(&db);

    /* Random damage anywhere: each file opens or is refused; lookups answer, never crash. */
    static const char *const clients[] = {"81.2.69.1",     "2.125.160.1", "10.20.3.4",
                                          "2001:db8:1::5", "89.160.20.5", "192.0.2.1"};
    uint64_t x = 0x243f6a8885a308d3ull;
    int opened = 0;
    for (int round = 0; round < 400; round++) {
        memcpy(b, orig, len);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int flips = 1 + (int)(x % 8);
        for (int f = 0; f < flips; f++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[(x >> 8) % len] ^= (unsigned char)(1u << (x % 8));
        }
        write_file(p, b, len);
        struct tmt_err err;
        db = tmt_geo_db_open(p, &err);
        if (db == NULL) {
            assert_true(err.code == TMT_ECORRUPT || err.code == TMT_EINVAL ||
                        err.code == TMT_ELIMIT);
            continue;
        }
        opened++;
        for (size_t i = 0; i < TMT_ARRAY_LEN(clients); i++) {
            rc = locate(db, clients[i], &lat, &lon);
            assert_true(rc == 1 || rc == 0 || rc == TMT_ECORRUPT);
            if (rc == 1)
                assert_true(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180);
        }
        tmt_geo_db_close(&db);
    }
    assert_true(opened > 0);
    free(b);
    free(orig);
}

static void test_choose_with_db(void **state)
{
    (void)state;
    struct tmt_geo_db *db = open_ok("city.mmdb");
    struct tmt_err err;
    const char *zt = "{\"coverageZones\": {\"par\": {\"network\": [\"10.20.0.0/16\"]}}}";
    struct tmt_geo_zones *z = tmt_geo_zones_parse("z.json", zt, strlen(zt), &err);
    assert_non_null(z);
    struct tmt_geo_edge e[] = {
        {"par-1", "par", 48.8566, 2.3522, 0.2, true},
        {"lon-1", "lon", 51.5074, -0.1278, 0.2, true},
        {"nyc-1", "nyc", 40.7128, -74.0060, 0.2, true},
        {"tok-1", "tok", 35.6762, 139.6503, 0.2, true},
    };
    size_t n = TMT_ARRAY_LEN(e);
    struct tmt_geo_choice c;
    struct tmt_geo_addr a;

    /* 10.20.0.0/16 is Sydney in the database, but the zone file says par: the zone wins. */
    a = addr("10.20.1.1");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_ZONE);
    assert_int_equal(c.edge, 0);
    /* Without the zones, the private address is looked up in the database like any other:
     * Sydney, whose nearest edge is Tokyo. */
    assert_int_equal(tmt_geo_choose(NULL, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_LOCATION);
    assert_int_equal(c.edge, 3);
    assert_true(fabs(c.distance_km - 7826) < 1);
    /* Location hits, IPv4, IPv4-mapped and IPv6. */
    a = addr("81.2.69.1");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_LOCATION);
    assert_int_equal(c.edge, 1);
    assert_true(c.distance_km < 0.001);
    assert_non_null(strstr(c.why, "client's location"));
    a = addr("::ffff:2.125.160.1");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.edge, 0);
    a = addr("2001:db8:1::5");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.edge, 3);
    /* London overloaded: Paris. */
    e[1].load = 0.95;
    a = addr("81.2.69.1");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.edge, 0);
    assert_true(fabs(c.distance_km - 343.6) < 1);
    e[1].load = 0.2;
    /* Not in the zones nor the database, or a network without a location: default. */
    a = addr("192.0.2.1");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_int_equal(c.edge, 2);
    assert_false(c.db_error);
    assert_non_null(strstr(c.why, "nor in the location database"));
    a = addr("89.160.20.5");
    assert_int_equal(tmt_geo_choose(z, db, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    /* No database (it failed to open): default, said so. */
    a = addr("81.2.69.1");
    assert_int_equal(tmt_geo_choose(z, NULL, "nyc", &a, "x", e, n, 0.9, 50, &c), 0);
    assert_int_equal(c.how, TMT_GEO_BY_DEFAULT);
    assert_non_null(strstr(c.why, "no location database"));
    tmt_geo_zones_free(&z);
    tmt_geo_db_close(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locate),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_choose_with_db),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
