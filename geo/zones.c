/*
 * zones.c: the coverage-zone file (Apache Traffic Control's format; rules at the top of geo.h)
 * into an immutable struct tmt_geo_zones.
 *
 * The file is read by our JSON reader (json_read.c, which says why not jansson), led by the
 * schema: the members of the format are decoded and checked where they stand, so that each error
 * names its line; other top-level members are skipped (still checked as JSON).
 *
 * Prefixes are collected in file order with their group and line, then sorted: equal prefixes
 * are found next to each other (the same CIDR in two groups is refused, naming the first line
 * that conflicts; twice in one group is kept once), and the tries are built from the distinct
 * prefixes. Group names are kept in one pool with an open-addressing index by name (duplicates
 * are refused while reading; tmt_geo_zones_group uses the same index). The object owns all its
 * memory; nothing in it changes after tmt_geo_zones_parse returns.
 */
#include "geo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xxhash.h>

#include "tmt/err.h"

#define GEO_FILE_MAX ((size_t)256 << 20)

/* ---- building state ---- */

struct build {
    struct tmt_geo_zones *z;
    size_t groups_cap;
    uint32_t *name_off; /* per group, into pool while building */
    size_t pool_len, pool_cap;
    size_t prefixes_cap;
};

/* ---- groups ---- */

static bool group_name_ok(const char *s, size_t n, bool too_long)
{
    if (too_long || n == 0 || n > TMT_GEO_GROUP_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static const char *build_name(const struct build *b, uint32_t g)
{
    return b->z->pool + b->name_off[g];
}

/* Finds a group in the index; with b (building), names are still offsets into the pool. */
static int64_t index_find(const struct tmt_geo_zones *z, const struct build *b, const char *name,
                          size_t n)
{
    if (z->group_index == NULL)
        return -1;
    size_t i = (size_t)XXH3_64bits(name, n) & z->group_index_mask;
    for (;; i = (i + 1) & z->group_index_mask) {
        uint32_t v = z->group_index[i];
        if (v == 0)
            return -1;
        const char *gn = b != NULL ? build_name(b, v - 1) : z->groups[v - 1].name;
        if (strncmp(gn, name, n) == 0 && gn[n] == '\0')
            return (int64_t)v - 1;
    }
}

static int index_put(struct tmt_geo_zones *z, const struct build *b, uint32_t g)
{
    /* Kept at most half full: rebuilt at twice the size when it would pass that. */
    size_t slots = z->group_index == NULL ? 0 : z->group_index_mask + 1;
    if (2 * (size_t)(g + 1) > slots) {
        size_t ns = slots == 0 ? 64 : slots * 2;
        uint32_t *ni = calloc(ns, sizeof(*ni));
        if (ni == NULL)
            return TMT_ELIMIT;
        free(z->group_index);
        z->group_index = ni;
        z->group_index_mask = ns - 1;
        for (uint32_t j = 0; j < g; j++) {
            const char *nm = build_name(b, j);
            size_t i = (size_t)XXH3_64bits(nm, strlen(nm)) & z->group_index_mask;
            while (z->group_index[i] != 0)
                i = (i + 1) & z->group_index_mask;
            z->group_index[i] = j + 1;
        }
    }
    const char *nm = build_name(b, g);
    size_t i = (size_t)XXH3_64bits(nm, strlen(nm)) & z->group_index_mask;
    while (z->group_index[i] != 0)
        i = (i + 1) & z->group_index_mask;
    z->group_index[i] = g + 1;
    return 0;
}

static int add_group(struct jr *r, struct build *b, const char *name, size_t n, uint32_t *out)
{
    struct tmt_geo_zones *z = b->z;
    if (z->n_groups == b->groups_cap) {
        size_t nc = b->groups_cap == 0 ? 16 : b->groups_cap * 2;
        struct geo_group *ng = realloc(z->groups, nc * sizeof(*ng));
        if (ng == NULL)
            return geo_jr_fail(r, r->line, TMT_ELIMIT, "out of memory");
        z->groups = ng;
        uint32_t *no = realloc(b->name_off, nc * sizeof(*no));
        if (no == NULL)
            return geo_jr_fail(r, r->line, TMT_ELIMIT, "out of memory");
        b->name_off = no;
        b->groups_cap = nc;
    }
    if (b->pool_len + n + 1 > b->pool_cap) {
        size_t nc = b->pool_cap == 0 ? 1024 : b->pool_cap * 2;
        while (nc < b->pool_len + n + 1)
            nc *= 2;
        char *np = realloc(z->pool, nc);
        if (np == NULL)
            return geo_jr_fail(r, r->line, TMT_ELIMIT, "out of memory");
        z->pool = np;
        b->pool_cap = nc;
    }
    uint32_t g = (uint32_t)z->n_groups;
    memcpy(z->pool + b->pool_len, name, n);
    z->pool[b->pool_len + n] = '\0';
    b->name_off[g] = (uint32_t)b->pool_len;
    b->pool_len += n + 1;
    z->groups[g] = (struct geo_group){.name = NULL, .lat = 0, .lon = 0, .has_coords = false};
    z->n_groups++;
    if (index_put(z, b, g) != 0)
        return geo_jr_fail(r, r->line, TMT_ELIMIT, "out of memory");
    *out = g;
    return 0;
}

/* ---- members of a group ---- */

static void format_network(const uint64_t k[2], unsigned plen, bool v6, char *buf, size_t size)
{
    struct tmt_geo_addr a = {.family = v6 ? AF_INET6 : AF_INET};
    for (int i = 0; i < 8; i++) {
        a.b[i] = (unsigned char)(k[0] >> (56 - 8 * i));
        a.b[8 + i] = (unsigned char)(k[1] >> (56 - 8 * i));
    }
    char t[TMT_GEO_ADDR_TEXT_MAX];
    snprintf(buf, size, "%s/%u", tmt_geo_addr_format(&a, t, sizeof(t)), plen);
}

static int cidr_list(struct jr *r, struct build *b, uint32_t g, bool v6)
{
    const char *member = v6 ? "network6" : "network";
    const char *gname = build_name(b, g);
    geo_jr_ws(r);
    if (r->p >= r->end || *r->p != '[')
        return GEO_JR_FAIL(r, "group \"%s\": %s must be an array of CIDR strings, found %s", gname,
                           member, geo_jr_next_kind(r));
    r->p++;
    if (geo_jr_eat(r, ']'))
        return 0;
    do {
        char s[GEO_STR_MAX];
        size_t n;
        bool tl;
        geo_jr_ws(r);
        unsigned line = r->line;
        if (r->p < r->end && *r->p != '"')
            return GEO_JR_FAIL(r, "group \"%s\": %s must hold CIDR strings, found %s", gname,
                               member, geo_jr_next_kind(r));
        if (geo_jr_string(r, s, sizeof(s), &n, &tl) != 0)
            return r->code;
        struct geo_prefix p = {.group = g, .line = line, .v6 = v6};
        const char *why = NULL;
        char sh[80];
        if (tl)
            return geo_jr_fail(r, line, TMT_EINVAL,
                               "group \"%s\": %s: \"%s...\" is not a CIDR: too long", gname, member,
                               geo_shown(s, TMT_MIN(n, 64), sh, sizeof(sh)));
        if (geo_cidr_parse(s, n, v6, p.k, &p.plen, &why) != 0) {
            if (strcmp(why, "host bits set") == 0) {
                char net[TMT_GEO_ADDR_TEXT_MAX + 8];
                format_network(p.k, p.plen, v6, net, sizeof(net));
                return geo_jr_fail(r, line, TMT_EINVAL,
                                   "group \"%s\": %s: \"%s\" has host bits set (the network is %s)",
                                   gname, member, geo_shown(s, n, sh, sizeof(sh)), net);
            }
            return geo_jr_fail(r, line, TMT_EINVAL, "group \"%s\": %s: \"%s\" is not a CIDR: %s",
                               gname, member, geo_shown(s, n, sh, sizeof(sh)), why);
        }
        if (b->z->n_prefixes == b->prefixes_cap) {
            size_t nc = b->prefixes_cap == 0 ? 64 : b->prefixes_cap * 2;
            struct geo_prefix *np = realloc(b->z->prefixes, nc * sizeof(*np));
            if (np == NULL)
                return geo_jr_fail(r, line, TMT_ELIMIT, "out of memory");
            b->z->prefixes = np;
            b->prefixes_cap = nc;
        }
        b->z->prefixes[b->z->n_prefixes++] = p;
    } while (geo_jr_eat(r, ','));
    if (!geo_jr_eat(r, ']'))
        return GEO_JR_FAIL(r, "group \"%s\": expected ',' or ']' in %s", gname, member);
    return 0;
}

static int coordinates(struct jr *r, struct build *b, uint32_t g, unsigned at)
{
    const char *gname = build_name(b, g);
    struct key k;
    bool first = true, has_lat = false, has_lon = false;
    double lat = 0, lon = 0;
    int rc;
    char what[96];
    snprintf(what, sizeof(what), "group \"%s\": coordinates", gname);
    if (geo_jr_obj_begin(r, what) != 0)
        return r->code;
    while ((rc = geo_jr_obj_next(r, &first, &k)) == 1) {
        bool is_lat = geo_jr_key_is(&k, "latitude");
        const char *key = is_lat ? "latitude" : "longitude";
        char sh[80];
        if (!is_lat && !geo_jr_key_is(&k, "longitude"))
            return geo_jr_fail(r, k.line, TMT_EINVAL,
                               "group \"%s\": unknown member \"%s\" in coordinates (known: "
                               "latitude, longitude)",
                               gname, geo_shown(k.s, k.len, sh, sizeof(sh)));
        if (is_lat ? has_lat : has_lon)
            return geo_jr_fail(r, k.line, TMT_EINVAL, "group \"%s\": coordinates: %s given twice",
                               gname, key);
        double v;
        geo_jr_ws(r);
        unsigned vline = r->line;
        if (r->p >= r->end || (*r->p != '-' && (*r->p < '0' || *r->p > '9')))
            return GEO_JR_FAIL(r, "group \"%s\": coordinates: %s must be a number, found %s", gname,
                               key, geo_jr_next_kind(r));
        if (geo_jr_number(r, &v) != 0)
            return r->code;
        double lim = is_lat ? 90 : 180;
        if (!(v >= -lim && v <= lim))
            return geo_jr_fail(r, vline, TMT_EINVAL,
                               "group \"%s\": coordinates: %s out of range (-%g to %g)", gname, key,
                               lim, lim);
        if (is_lat) {
            lat = v;
            has_lat = true;
        } else {
            lon = v;
            has_lon = true;
        }
    }
    if (rc < 0)
        return rc;
    if (!has_lat || !has_lon)
        return geo_jr_fail(r, at, TMT_EINVAL,
                           "group \"%s\": coordinates need latitude and longitude", gname);
    b->z->groups[g].lat = lat;
    b->z->groups[g].lon = lon;
    b->z->groups[g].has_coords = true;
    return 0;
}

static int group(struct jr *r, struct build *b, uint32_t g)
{
    struct key k;
    bool first = true, seen[3] = {false, false, false};
    static const char *const names[3] = {"network", "network6", "coordinates"};
    int rc;
    char what[96];
    snprintf(what, sizeof(what), "group \"%s\"", build_name(b, g));
    if (geo_jr_obj_begin(r, what) != 0)
        return r->code;
    while ((rc = geo_jr_obj_next(r, &first, &k)) == 1) {
        int m = -1;
        for (int i = 0; i < 3; i++) {
            if (geo_jr_key_is(&k, names[i]))
                m = i;
        }
        char sh[80];
        if (m < 0)
            return geo_jr_fail(r, k.line, TMT_EINVAL,
                               "group \"%s\": unknown member \"%s%s\" (known: network, network6, "
                               "coordinates)",
                               build_name(b, g), geo_shown(k.s, k.len, sh, sizeof(sh)),
                               k.too_long ? "..." : "");
        if (seen[m])
            return geo_jr_fail(r, k.line, TMT_EINVAL, "group \"%s\": %s given twice",
                               build_name(b, g), names[m]);
        seen[m] = true;
        if ((m == 2 ? coordinates(r, b, g, k.line) : cidr_list(r, b, g, m == 1)) != 0)
            return r->code;
    }
    return rc;
}

static int coverage_zones(struct jr *r, struct build *b)
{
    struct key k;
    bool first = true;
    int rc;
    if (geo_jr_obj_begin(r, "coverageZones") != 0)
        return r->code;
    while ((rc = geo_jr_obj_next(r, &first, &k)) == 1) {
        char sh[80];
        if (!group_name_ok(k.s, k.len, k.too_long))
            return geo_jr_fail(
                r, k.line, TMT_EINVAL, "group name \"%s%s\" is not 1 to %d of A-Z a-z 0-9 . _ -",
                geo_shown(k.s, k.len, sh, sizeof(sh)), k.too_long ? "..." : "", TMT_GEO_GROUP_MAX);
        if (index_find(b->z, b, k.s, k.len) >= 0)
            return geo_jr_fail(r, k.line, TMT_EINVAL, "group \"%s\" given twice", k.s);
        uint32_t g = 0;
        if (add_group(r, b, k.s, k.len, &g) != 0 || group(r, b, g) != 0)
            return r->code;
    }
    return rc;
}

static int top(struct jr *r, struct build *b)
{
    struct key k;
    bool first = true, seen = false;
    int rc;
    if (r->end - r->p >= 3 && memcmp(r->p, "\xef\xbb\xbf", 3) == 0)
        r->p += 3; /* a UTF-8 byte order mark, as some editors write */
    geo_jr_ws(r);
    if (r->p >= r->end)
        return GEO_JR_FAIL(r, "empty file");
    if (geo_jr_obj_begin(r, "the file") != 0)
        return r->code;
    while ((rc = geo_jr_obj_next(r, &first, &k)) == 1) {
        if (geo_jr_key_is(&k, "coverageZones")) {
            if (seen)
                return geo_jr_fail(r, k.line, TMT_EINVAL, "coverageZones given twice");
            seen = true;
            if (coverage_zones(r, b) != 0)
                return r->code;
        } else if (geo_jr_skip(r, 2) != 0) { /* customerName, revision, anything else */
            return r->code;
        }
    }
    if (rc < 0)
        return rc;
    geo_jr_ws(r);
    if (r->p < r->end)
        return GEO_JR_FAIL(r, "%s after the top-level object", geo_jr_next_kind(r));
    if (!seen)
        return geo_jr_fail(r, 1, TMT_EINVAL, "no coverageZones member");
    return 0;
}

/* ---- prefixes ---- */

static int cmp_prefix(const void *x, const void *y)
{
    const struct geo_prefix *a = x, *b = y;
    if (a->v6 != b->v6)
        return a->v6 < b->v6 ? -1 : 1;
    if (a->k[0] != b->k[0])
        return a->k[0] < b->k[0] ? -1 : 1;
    if (a->k[1] != b->k[1])
        return a->k[1] < b->k[1] ? -1 : 1;
    if (a->plen != b->plen)
        return a->plen < b->plen ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

static bool same_prefix(const struct geo_prefix *a, const struct geo_prefix *b)
{
    return a->v6 == b->v6 && a->k[0] == b->k[0] && a->k[1] == b->k[1] && a->plen == b->plen;
}

/* Sorts, refuses a CIDR listed in two groups, keeps one of each. */
static int dedup_prefixes(struct jr *r, struct build *b)
{
    struct tmt_geo_zones *z = b->z;
    if (z->n_prefixes == 0)
        return 0;
    qsort(z->prefixes, z->n_prefixes, sizeof(z->prefixes[0]), cmp_prefix);
    /* Copies, not pointers: the compaction below overwrites entries. */
    struct geo_prefix bad = {0}, first_of_bad = {0};
    bool have_bad = false;
    size_t out = 0;
    for (size_t i = 0; i < z->n_prefixes; i++) {
        const struct geo_prefix *p = &z->prefixes[i];
        if (out > 0 && same_prefix(&z->prefixes[out - 1], p)) {
            const struct geo_prefix *f = &z->prefixes[out - 1];
            if (f->group != p->group && (!have_bad || p->line < bad.line)) {
                bad = *p;
                first_of_bad = *f;
                have_bad = true;
            }
            continue;
        }
        z->prefixes[out++] = *p;
    }
    if (have_bad) {
        char net[TMT_GEO_ADDR_TEXT_MAX + 8];
        format_network(bad.k, bad.plen, bad.v6, net, sizeof(net));
        return geo_jr_fail(
            r, bad.line, TMT_EINVAL, "group \"%s\": %s is already in group \"%s\" (line %u)",
            build_name(b, bad.group), net, build_name(b, first_of_bad.group), first_of_bad.line);
    }
    z->n_prefixes = out;
    struct geo_prefix *shrunk = realloc(z->prefixes, out * sizeof(z->prefixes[0]));
    if (shrunk != NULL)
        z->prefixes = shrunk;
    return 0;
}

/* ---- public ---- */

struct tmt_geo_zones *tmt_geo_zones_parse(const char *name, const char *text, size_t len,
                                          struct tmt_err *err)
{
    tmt_err_clear(err);
    struct tmt_geo_zones *z = tmt_xcalloc(1, sizeof(*z));
    z->magic = GEO_ZONES_MAGIC;
    struct build b = {.z = z};
    if (text == NULL)
        text = len == 0 ? "" : NULL;
    struct jr r = {.p = text,
                   .end = text != NULL ? text + len : NULL,
                   .name = name != NULL ? name : "zones",
                   .line = 1,
                   .err = err,
                   .code = TMT_OK};
    if (len > GEO_FILE_MAX) {
        geo_jr_fail(&r, 1, TMT_ELIMIT, "over %zu MiB", GEO_FILE_MAX >> 20);
        goto fail;
    }
    if (text == NULL) {
        geo_jr_fail(&r, 1, TMT_EINVAL, "no text");
        goto fail;
    }
    if (top(&r, &b) != 0 || dedup_prefixes(&r, &b) != 0)
        goto fail;
    for (size_t g = 0; g < z->n_groups; g++)
        z->groups[g].name = z->pool + b.name_off[g];
    free(b.name_off);
    b.name_off = NULL;
    if (geo_trie_build(&z->v4, z->prefixes, z->n_prefixes, false) != 0 ||
        geo_trie_build(&z->v6, z->prefixes, z->n_prefixes, true) != 0) {
        geo_jr_fail(&r, 1, TMT_ELIMIT, "out of memory for %zu prefixes", z->n_prefixes);
        goto fail;
    }
    return z;
fail:
    free(b.name_off);
    tmt_geo_zones_free(&z);
    return NULL;
}

struct tmt_geo_zones *tmt_geo_zones_load(const char *path, struct tmt_err *err)
{
    tmt_err_clear(err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tmt_err_set_errno(err, TMT_EIO, errno, "%s: cannot open", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        tmt_err_set_errno(err, TMT_EIO, errno, "%s: cannot stat", path);
        close(fd);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        tmt_err_set_errno(err, TMT_EIO, EISDIR, "%s: cannot read", path);
        close(fd);
        return NULL;
    }
    /* Read to the end (the size may change under us), never past the limit. */
    size_t cap = S_ISREG(st.st_mode) && (size_t)st.st_size < GEO_FILE_MAX ? (size_t)st.st_size + 1
                                                                          : 65536,
           len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", path);
            close(fd);
            return NULL;
        }
        if (len == cap) {
            if (len > GEO_FILE_MAX) {
                tmt_err_set(err, TMT_ELIMIT, "%s: over %zu MiB", path, GEO_FILE_MAX >> 20);
                free(buf);
                close(fd);
                return NULL;
            }
            cap = TMT_MIN(cap * 2, GEO_FILE_MAX + 1);
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                free(buf);
            buf = nb;
            continue;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tmt_err_set_errno(err, TMT_EIO, errno, "%s: cannot read", path);
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    struct tmt_geo_zones *z = tmt_geo_zones_parse(path, buf, len, err);
    free(buf);
    return z;
}

void tmt_geo_zones_free(struct tmt_geo_zones **zp)
{
    struct tmt_geo_zones *z = *zp;
    if (z == NULL)
        return;
    TMT_CHECK_OBJ(z, GEO_ZONES_MAGIC);
    geo_trie_fini(&z->v4);
    geo_trie_fini(&z->v6);
    free(z->prefixes);
    free(z->groups);
    free(z->group_index);
    free(z->pool);
    z->magic = 0;
    free(z);
    *zp = NULL;
}

int32_t geo_zones_match(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a)
{
    uint64_t k[2];
    if (a->family != AF_INET && a->family != AF_INET6)
        return -1;
    geo_addr_key(a, k);
    return geo_trie_match(a->family == AF_INET ? &z->v4 : &z->v6, k);
}

const char *tmt_geo_zones_lookup(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a,
                                 double *lat, double *lon, bool *has_coords)
{
    if (has_coords != NULL)
        *has_coords = false;
    if (z == NULL || a == NULL)
        return NULL;
    TMT_CHECK_OBJ(z, GEO_ZONES_MAGIC);
    int32_t i = geo_zones_match(z, a);
    if (i < 0)
        return NULL;
    const struct geo_group *g = &z->groups[z->prefixes[i].group];
    if (g->has_coords) {
        if (lat != NULL)
            *lat = g->lat;
        if (lon != NULL)
            *lon = g->lon;
        if (has_coords != NULL)
            *has_coords = true;
    }
    return g->name;
}

bool tmt_geo_zones_group(const struct tmt_geo_zones *z, const char *name, double *lat, double *lon,
                         bool *has_coords)
{
    if (has_coords != NULL)
        *has_coords = false;
    if (z == NULL || name == NULL)
        return false;
    TMT_CHECK_OBJ(z, GEO_ZONES_MAGIC);
    int64_t g = index_find(z, NULL, name, strlen(name));
    if (g < 0)
        return false;
    const struct geo_group *gr = &z->groups[g];
    if (gr->has_coords) {
        if (lat != NULL)
            *lat = gr->lat;
        if (lon != NULL)
            *lon = gr->lon;
        if (has_coords != NULL)
            *has_coords = true;
    }
    return true;
}

size_t tmt_geo_zones_prefixes(const struct tmt_geo_zones *z)
{
    return z != NULL ? z->n_prefixes : 0;
}

size_t tmt_geo_zones_groups(const struct tmt_geo_zones *z)
{
    return z != NULL ? z->n_groups : 0;
}
