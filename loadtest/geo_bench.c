/*
 * tmt-geo-bench: route decisions per second of libtmt_geo (geo.h) on one thread, next to the
 * naive or library way of doing the same lookup, in the same process and run. Used by
 * loadtest/bench/geo.sh; not installed.
 *
 *   tmt-geo-bench DB NETWORKS [ITER [RUNS [SEED]]]      (default 200000, 5, 1)
 *
 * DB is a City database and NETWORKS the "CIDR LAT LON" list of its networks, both made by
 * tests/unit/geo/make_city_mmdb.pl --random. From SEED the program makes a coverage-zone file of
 * 10,000 distinct random CIDRs (8,000 IPv4 of /12 to /28, 2,000 IPv6 of /24 to /64) over 50
 * groups, each with coordinates, and 200 edges (4 a group, placed near their group, loads 0 to
 * 0.8, all healthy), then three sets of 1024 client addresses as text: inside a random zone
 * prefix ("coverage"), inside a database network and in no zone ("geo"), and in neither
 * ("default"). Each operation takes the client as text, as a request carries it.
 *
 * Rows, each ITER operations per run, RUNS runs after one untimed pass, ours and theirs in turn:
 *   zone_choose   ours: tmt_geo_addr_parse + tmt_geo_choose (a coverage hit: trie lookup, then
 *                 rendezvous among the group's edges)
 *   zone_lookup   ours: tmt_geo_addr_parse + tmt_geo_zones_lookup
 *   zone_scan     theirs for both: inet_pton, then a linear scan of the CIDR list sorted
 *                 longest prefix first, stopping at the first match (Traffic Router's Go
 *                 coverage zones scan unsorted and stop at the first match)
 *   geo_choose    ours: parse + tmt_geo_choose (zone miss, database hit, nearest of 50 groups
 *                 over 200 edges, rendezvous)
 *   geo_locate    ours: parse + tmt_geo_db_locate
 *   geo_mmdb      theirs for both: libmaxminddb's MMDB_lookup_string, then MMDB_get_value for
 *                 location.latitude and location.longitude
 *   geo_mmdb_sa   theirs without its text parsing: inet_pton + MMDB_lookup_sockaddr + the same
 *                 two MMDB_get_value
 *   dflt_choose   ours: parse + tmt_geo_choose ending at the default group
 *   dflt_naive    theirs: the linear scan missing, then MMDB_lookup_string missing
 * Every answer is checked once before timing (our zone groups equal the scan's, our locations
 * equal libmaxminddb's, the decision kinds are as expected), and the timed loops fold their
 * results into a sum that is printed, so no call can be skipped. The program calls MMDB_*
 * itself only as the peer.
 *
 * Output, one key=value per line: the set-up (prefixes, groups, edges, database networks), the
 * zone file's parse time and the heap it keeps (mallinfo2), then per row the median nanoseconds
 * per operation over the runs, operations per second at that median, and the per-run figures.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <maxminddb.h>

#include "tmt/err.h"
#include "tmt/geo.h"

#define N_PREFIXES 10000
#define N_V6 2000
#define N_GROUPS 50
#define EDGES_PER_GROUP 4
#define N_CLIENTS 1024
#define MAX_RUNS 101
#define MAX_NETS 1000000

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double rnd_unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
    double s[MAX_RUNS];
    memcpy(s, v, n * sizeof(v[0]));
    qsort(s, n, sizeof(s[0]), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void report(const char *what, const double *ns, size_t runs)
{
    double m = median(ns, runs);
    printf("%s_ns_median=%.1f\n%s_per_s=%.0f\n%s_ns_runs=", what, m, what, 1e9 / m, what);
    for (size_t i = 0; i < runs; i++)
        printf("%s%.1f", i ? "," : "", ns[i]);
    printf("\n");
}

/* ---- the naive coverage zones: a list scanned longest prefix first ---- */

struct net {
    uint64_t k[2], m[2]; /* network and mask, IPv4 in the top 32 bits of k[0] */
    int plen;
    int v6;
    int group;
};

static struct net nets[N_PREFIXES];

static void key_of(const unsigned char *b, int v6, uint64_t k[2])
{
    k[0] = k[1] = 0;
    for (int i = 0; i < 8; i++)
        k[0] = k[0] << 8 | (v6 || i < 4 ? b[i] : 0);
    if (v6) {
        for (int i = 8; i < 16; i++)
            k[1] = k[1] << 8 | b[i];
    }
}

static void mask_of(int plen, uint64_t m[2])
{
    m[0] = plen >= 64 ? ~UINT64_C(0) : plen == 0 ? 0 : ~UINT64_C(0) << (64 - plen);
    m[1] = plen <= 64 ? 0 : plen >= 128 ? ~UINT64_C(0) : ~UINT64_C(0) << (128 - plen);
}

static int cmp_net(const void *a, const void *b)
{
    const struct net *x = a, *y = b;
    return y->plen - x->plen;
}

/* The group of the longest prefix containing the address in text, -1 for none, -2 bad text. */
static int scan_lookup(const char *text)
{
    unsigned char b[16] = {0};
    int v6 = strchr(text, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, b) != 1)
        return -2;
    uint64_t k[2];
    key_of(b, v6, k);
    for (size_t i = 0; i < N_PREFIXES; i++) {
        const struct net *n = &nets[i];
        if (n->v6 == v6 && (k[0] & n->m[0]) == n->k[0] && (k[1] & n->m[1]) == n->k[1])
            return n->group;
    }
    return -1;
}

/* ---- the peer: libmaxminddb ---- */

static int mmdb_latlon(MMDB_lookup_result_s *r, double *lat, double *lon)
{
    if (!r->found_entry)
        return 0;
    MMDB_entry_data_s d1, d2;
    if (MMDB_get_value(&r->entry, &d1, "location", "latitude", NULL) != MMDB_SUCCESS ||
        MMDB_get_value(&r->entry, &d2, "location", "longitude", NULL) != MMDB_SUCCESS ||
        !d1.has_data || !d2.has_data)
        return 0;
    *lat = d1.double_value;
    *lon = d2.double_value;
    return 1;
}

static int mmdb_string(const MMDB_s *mm, const char *text, double *lat, double *lon)
{
    int gai = 0, err = 0;
    MMDB_lookup_result_s r = MMDB_lookup_string(mm, text, &gai, &err);
    if (gai != 0 || err != MMDB_SUCCESS)
        return -1;
    return mmdb_latlon(&r, lat, lon);
}

static int mmdb_sockaddr(const MMDB_s *mm, const char *text, double *lat, double *lon)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    memset(&sa, 0, sizeof(sa));
    if (strchr(text, ':') != NULL) {
        sa.in6.sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, text, &sa.in6.sin6_addr) != 1)
            return -1;
    } else {
        sa.in4.sin_family = AF_INET;
        if (inet_pton(AF_INET, text, &sa.in4.sin_addr) != 1)
            return -1;
    }
    int err = 0;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(mm, &sa.sa, &err);
    if (err != MMDB_SUCCESS)
        return -1;
    return mmdb_latlon(&r, lat, lon);
}

/* ---- set-up ---- */

static char zone_text[N_PREFIXES * 64 + N_GROUPS * 128];
static char group_names[N_GROUPS][16];
static double group_lat[N_GROUPS], group_lon[N_GROUPS];
static struct tmt_geo_edge edges[N_GROUPS * EDGES_PER_GROUP];
static char edge_ids[N_GROUPS * EDGES_PER_GROUP][24];
static char clients[3][N_CLIENTS][TMT_GEO_ADDR_TEXT_MAX];

static void format_net(const struct net *n, char *buf, size_t size)
{
    unsigned char b[16] = {0};
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(n->k[0] >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(n->k[1] >> (56 - 8 * i));
    }
    char t[INET6_ADDRSTRLEN];
    inet_ntop(n->v6 ? AF_INET6 : AF_INET, b, t, sizeof(t));
    snprintf(buf, size, "%s/%d", t, n->plen);
}

static void make_zones(void)
{
    size_t n = 0;
    while (n < N_PREFIXES) {
        struct net x = {.v6 = n < N_V6};
        x.plen = x.v6 ? 24 + (int)(rnd() % 41) : 12 + (int)(rnd() % 17);
        x.k[0] = rnd();
        x.k[1] = x.v6 ? rnd() : 0;
        if (x.v6)
            x.k[0] = (x.k[0] & 0x1fffffffffffffffull) | 0x2000000000000000ull; /* 2000::/3 */
        else
            x.k[0] &= 0xffffffff00000000ull;
        mask_of(x.plen, x.m);
        x.k[0] &= x.m[0];
        x.k[1] &= x.m[1];
        x.group = (int)(rnd() % N_GROUPS);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = nets[i].v6 == x.v6 && nets[i].plen == x.plen && nets[i].k[0] == x.k[0] &&
                  nets[i].k[1] == x.k[1];
        if (!dup)
            nets[n++] = x;
    }
    size_t len = 0;
    len += (size_t)snprintf(zone_text + len, sizeof(zone_text) - len, "{\"coverageZones\": {\n");
    for (int g = 0; g < N_GROUPS; g++) {
        snprintf(group_names[g], sizeof(group_names[g]), "group-%02d", g);
        group_lat[g] = rnd_unit() * 120 - 50;
        group_lon[g] = rnd_unit() * 360 - 180;
        len += (size_t)snprintf(zone_text + len, sizeof(zone_text) - len,
                                "%s  \"%s\": {\n    \"coordinates\": {\"latitude\": %.4f, "
                                "\"longitude\": %.4f},\n",
                                g ? ",\n" : "", group_names[g], group_lat[g], group_lon[g]);
        for (int v6 = 0; v6 < 2; v6++) {
            len += (size_t)snprintf(zone_text + len, sizeof(zone_text) - len, "    \"%s\": [",
                                    v6 ? "network6" : "network");
            bool first = true;
            for (size_t i = 0; i < N_PREFIXES; i++) {
                if (nets[i].group != g || nets[i].v6 != v6)
                    continue;
                char t[80];
                format_net(&nets[i], t, sizeof(t));
                len += (size_t)snprintf(zone_text + len, sizeof(zone_text) - len,
                                        "%s\n      \"%s\"", first ? "" : ",", t);
                first = false;
            }
            len +=
                (size_t)snprintf(zone_text + len, sizeof(zone_text) - len, "]%s\n", v6 ? "" : ",");
        }
        len += (size_t)snprintf(zone_text + len, sizeof(zone_text) - len, "  }");
    }
    snprintf(zone_text + len, sizeof(zone_text) - len, "\n}}\n");
    qsort(nets, N_PREFIXES, sizeof(nets[0]), cmp_net);
    for (int g = 0; g < N_GROUPS; g++) {
        for (int j = 0; j < EDGES_PER_GROUP; j++) {
            int i = g * EDGES_PER_GROUP + j;
            snprintf(edge_ids[i], sizeof(edge_ids[i]), "edge-%02d-%d", g, j);
            edges[i] = (struct tmt_geo_edge){edge_ids[i],
                                             group_names[g],
                                             group_lat[g] + rnd_unit() - 0.5,
                                             group_lon[g] + rnd_unit() - 0.5,
                                             rnd_unit() * 0.8,
                                             true};
        }
    }
}

/* A random address inside nets[i]. */
static void addr_in(const struct net *n, char *buf, size_t size)
{
    struct net h = *n;
    h.k[0] |= rnd() & ~n->m[0] & (n->v6 ? ~UINT64_C(0) : 0xffffffff00000000ull);
    h.k[1] |= n->v6 ? rnd() & ~n->m[1] : 0;
    h.plen = 0;
    char t[80];
    format_net(&h, t, sizeof(t));
    *strchr(t, '/') = '\0';
    snprintf(buf, size, "%.63s", t);
}

static int make_clients(const struct tmt_geo_zones *z, const MMDB_s *mm, const char *nets_path)
{
    FILE *f = fopen(nets_path, "r");
    if (f == NULL) {
        perror(nets_path);
        return -1;
    }
    static char db_nets[MAX_NETS][20];
    size_t nn = 0;
    char line[128];
    while (nn < MAX_NETS && fgets(line, sizeof(line), f) != NULL) {
        char *sp = strchr(line, '/');
        if (sp == NULL)
            continue;
        *sp = '\0';
        snprintf(db_nets[nn++], sizeof(db_nets[0]), "%.19s", line);
    }
    fclose(f);
    if (nn == 0) {
        fprintf(stderr, "tmt-geo-bench: no networks in %s\n", nets_path);
        return -1;
    }
    for (int i = 0; i < N_CLIENTS; i++)
        addr_in(&nets[rnd() % N_PREFIXES], clients[0][i], sizeof(clients[0][i]));
    /* Database networks (IPv4 /24s) that no zone covers. */
    for (int i = 0, tries = 0; i < N_CLIENTS; tries++) {
        if (tries > 1000000)
            return -1;
        char *c = clients[1][i];
        snprintf(c, TMT_GEO_ADDR_TEXT_MAX, "%s", db_nets[rnd() % nn]);
        char *dot = strrchr(c, '.');
        snprintf(dot + 1, 4, "%d", (int)(rnd() % 256));
        if (scan_lookup(c) == -1)
            i++;
    }
    /* Neither: random IPv4 and IPv6 addresses that the scan and libmaxminddb both miss. */
    for (int i = 0, tries = 0; i < N_CLIENTS; tries++) {
        if (tries > 10000000)
            return -1;
        struct net h = {.v6 = (int)(rnd() % 5 == 0)};
        h.k[0] = h.v6 ? rnd() : rnd() & 0xffffffff00000000ull;
        h.k[1] = h.v6 ? rnd() : 0;
        char t[80];
        format_net(&h, t, sizeof(t));
        *strchr(t, '/') = '\0';
        double la, lo;
        if (scan_lookup(t) == -1 && mmdb_string(mm, t, &la, &lo) == 0)
            snprintf(clients[2][i++], TMT_GEO_ADDR_TEXT_MAX, "%.63s", t);
    }
    (void)z;
    return 0;
}

/* The untimed check of every answer. */
static int verify(const struct tmt_geo_zones *z, const struct tmt_geo_db *db, const MMDB_s *mm)
{
    for (int i = 0; i < N_CLIENTS; i++) {
        struct tmt_geo_addr a;
        struct tmt_geo_choice c;
        const char *t = clients[0][i];
        int g = scan_lookup(t);
        const char *zg;
        if (tmt_geo_addr_parse(t, &a) != 0 || g < 0 ||
            (zg = tmt_geo_zones_lookup(z, &a, NULL, NULL, NULL)) == NULL ||
            strcmp(zg, group_names[g]) != 0 ||
            tmt_geo_choose(z, db, "group-00", &a, "show-1-v1", edges, TMT_ARRAY_LEN(edges), 0.9, 50,
                           &c) != 0 ||
            c.how != TMT_GEO_BY_ZONE || strcmp(c.group, zg) != 0) {
            fprintf(stderr, "tmt-geo-bench: coverage client %s: ours and the scan differ\n", t);
            return -1;
        }
        t = clients[1][i];
        double la1, lo1, la2, lo2, la3, lo3;
        if (tmt_geo_addr_parse(t, &a) != 0 || tmt_geo_db_locate(db, &a, &la1, &lo1) != 1 ||
            mmdb_string(mm, t, &la2, &lo2) != 1 || mmdb_sockaddr(mm, t, &la3, &lo3) != 1 ||
            la1 != la2 || lo1 != lo2 || la1 != la3 || lo1 != lo3 ||
            tmt_geo_choose(z, db, "group-00", &a, "show-1-v1", edges, TMT_ARRAY_LEN(edges), 0.9, 50,
                           &c) != 0 ||
            c.how != TMT_GEO_BY_LOCATION) {
            fprintf(stderr, "tmt-geo-bench: geo client %s: ours and libmaxminddb differ\n", t);
            return -1;
        }
        t = clients[2][i];
        if (tmt_geo_addr_parse(t, &a) != 0 ||
            tmt_geo_choose(z, db, "group-00", &a, "show-1-v1", edges, TMT_ARRAY_LEN(edges), 0.9, 50,
                           &c) != 0 ||
            c.how != TMT_GEO_BY_DEFAULT) {
            fprintf(stderr, "tmt-geo-bench: default client %s: not routed to the default\n", t);
            return -1;
        }
    }
    return 0;
}

enum row {
    ZONE_CHOOSE,
    ZONE_LOOKUP,
    ZONE_SCAN,
    GEO_CHOOSE,
    GEO_LOCATE,
    GEO_MMDB,
    GEO_MMDB_SA,
    DFLT_CHOOSE,
    DFLT_NAIVE,
    N_ROWS
};

static const char *const row_names[N_ROWS] = {
    "zone_choose", "zone_lookup", "zone_scan",   "geo_choose", "geo_locate",
    "geo_mmdb",    "geo_mmdb_sa", "dflt_choose", "dflt_naive",
};

static const char assets[8][16] = {"show-1-v1", "show-2-v3", "show-3-v1", "show-4-v2",
                                   "show-5-v1", "show-6-v1", "show-7-v5", "show-8-v1"};

/* Runs ITER operations of one row; returns a sum of the answers. */
static uint64_t run_row(enum row r, long iter, const struct tmt_geo_zones *z,
                        const struct tmt_geo_db *db, const MMDB_s *mm)
{
    uint64_t sum = 0;
    for (long i = 0; i < iter; i++) {
        int k = (int)(i % N_CLIENTS);
        struct tmt_geo_addr a;
        struct tmt_geo_choice c;
        double la = 0, lo = 0;
        switch (r) {
        case ZONE_CHOOSE:
        case GEO_CHOOSE:
        case DFLT_CHOOSE: {
            const char *t = clients[r == ZONE_CHOOSE ? 0 : r == GEO_CHOOSE ? 1 : 2][k];
            if (tmt_geo_addr_parse(t, &a) == 0 &&
                tmt_geo_choose(z, db, "group-00", &a, assets[i & 7], edges, TMT_ARRAY_LEN(edges),
                               0.9, 50, &c) == 0)
                sum += (uint64_t)c.edge;
            break;
        }
        case ZONE_LOOKUP:
            if (tmt_geo_addr_parse(clients[0][k], &a) == 0)
                sum += (uintptr_t)tmt_geo_zones_lookup(z, &a, NULL, NULL, NULL);
            break;
        case ZONE_SCAN:
            sum += (uint64_t)scan_lookup(clients[0][k]);
            break;
        case GEO_LOCATE:
            if (tmt_geo_addr_parse(clients[1][k], &a) == 0)
                sum += (uint64_t)tmt_geo_db_locate(db, &a, &la, &lo) + (uint64_t)(la * 1000);
            break;
        case GEO_MMDB:
            sum += (uint64_t)mmdb_string(mm, clients[1][k], &la, &lo) + (uint64_t)(la * 1000);
            break;
        case GEO_MMDB_SA:
            sum += (uint64_t)mmdb_sockaddr(mm, clients[1][k], &la, &lo) + (uint64_t)(la * 1000);
            break;
        case DFLT_NAIVE:
            sum += (uint64_t)scan_lookup(clients[2][k]);
            sum += (uint64_t)mmdb_string(mm, clients[2][k], &la, &lo);
            break;
        case N_ROWS:
            break;
        }
    }
    return sum;
}

int main(int argc, char **argv)
{
    long iter = argc > 3 ? strtol(argv[3], NULL, 10) : 200000;
    long runs = argc > 4 ? strtol(argv[4], NULL, 10) : 5;
    long seed = argc > 5 ? strtol(argv[5], NULL, 10) : 1;
    if (argc < 3 || argc > 6 || iter < 1 || iter > 100000000 || runs < 1 || runs > MAX_RUNS ||
        seed < 1) {
        fprintf(stderr,
                "usage: tmt-geo-bench DB NETWORKS [ITER [RUNS [SEED]]] (ITER >= 1, "
                "1 <= RUNS <= %d, SEED >= 1)\n",
                MAX_RUNS);
        return 2;
    }
    rng = 0x9e3779b97f4a7c15ull * (uint64_t)seed;
    make_zones();

    struct tmt_err err;
    double parse_ns[5];
    struct tmt_geo_zones *z = NULL;
    size_t heap = 0;
    for (int i = 0; i < 5; i++) {
        tmt_geo_zones_free(&z);
        size_t before = mallinfo2().uordblks;
        int64_t t0 = now_ns();
        z = tmt_geo_zones_parse("bench.json", zone_text, strlen(zone_text), &err);
        parse_ns[i] = (double)(now_ns() - t0);
        if (z == NULL) {
            fprintf(stderr, "tmt-geo-bench: zones: %s\n", err.msg);
            return 1;
        }
        heap = mallinfo2().uordblks - before;
    }
    struct tmt_geo_db *db = tmt_geo_db_open(argv[1], &err);
    if (db == NULL) {
        fprintf(stderr, "tmt-geo-bench: %s\n", err.msg);
        return 1;
    }
    MMDB_s mm;
    if (MMDB_open(argv[1], MMDB_MODE_MMAP, &mm) != MMDB_SUCCESS) {
        fprintf(stderr, "tmt-geo-bench: MMDB_open %s failed\n", argv[1]);
        return 1;
    }
    if (make_clients(z, &mm, argv[2]) != 0 || verify(z, db, &mm) != 0)
        return 1;

    static double ns[N_ROWS][MAX_RUNS];
    uint64_t sink = 0;
    for (long r = -1; r < runs; r++) { /* run -1 warms up and is not counted */
        for (int row = 0; row < N_ROWS; row++) {
            int64_t t0 = now_ns();
            sink += run_row((enum row)row, iter, z, db, &mm);
            int64_t t1 = now_ns();
            if (r >= 0)
                ns[row][r] = (double)(t1 - t0) / (double)iter;
        }
    }

    printf("prefixes=%zu\ngroups=%zu\nprefixes_v6=%d\nedges=%zu\ndb_networks_file=%s\n"
           "db_type=%s\nzone_file_bytes=%zu\nzone_parse_ms=%.2f\nzone_heap_bytes=%zu\n"
           "clients=%d\niter=%ld\nruns=%ld\nseed=%ld\nsink=%" PRIu64 "\n",
           tmt_geo_zones_prefixes(z), tmt_geo_zones_groups(z), N_V6, TMT_ARRAY_LEN(edges), argv[2],
           tmt_geo_db_type(db), strlen(zone_text), median(parse_ns, 5) / 1e6, heap, N_CLIENTS, iter,
           runs, seed, sink);
    for (int row = 0; row < N_ROWS; row++)
        report(row_names[row], ns[row], (size_t)runs);
    MMDB_close(&mm);
    tmt_geo_db_close(&db);
    tmt_geo_zones_free(&z);
    return 0;
}
