/*
 * choose.c: the routing decision (order and rules at the top of geo.h): great-circle distance,
 * rendezvous hashing, nearest group with load as the tie-breaker.
 *
 * Nothing here allocates or keeps state: the edge list is the caller's snapshot, read during the
 * call only. Groups are not materialised: the nearest group is the group of the nearest
 * available edge, so one pass finds it; only when other groups have an edge within tie_km of it
 * are those few groups' mean loads computed (one more pass each; past GEO_TIE_MAX groups in the
 * window, a slower pass compares them all, so the answer never depends on the list's order).
 *
 * Ranking edges needs no distance in km: the chord between two points of the unit sphere grows
 * with their great-circle distance, and costs two sincos per edge (the client's point is made
 * once) where the haversine formula takes two sines, two cosines, a square root and an arcsine;
 * this was most of a location decision's time over 200 edges. Kilometres (2R asin(chord / 2),
 * the same great circle) are computed only for the nearest edge and the edges that tie with it.
 * Squared chords of the first pass are kept on the stack for the first GEO_DIST_CACHE edges.
 */
#include "geo_int.h"

#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "tmt/err.h"

#define EARTH_RADIUS_KM 6371.0088
#define GEO_TIE_MAX 32
#define GEO_DIST_CACHE 512

double tmt_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
    double a = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;
    if (a > 1)
        a = 1; /* rounding, near antipodes */
    return 2 * EARTH_RADIUS_KM * asin(sqrt(a));
}

/* ---- rendezvous ---- */

static uint64_t asset_seed(const char *asset)
{
    if (asset == NULL)
        asset = "";
    return XXH3_64bits(asset, strlen(asset));
}

static uint64_t score(uint64_t seed, const char *id)
{
    return XXH3_64bits_withSeed(id, strlen(id), seed);
}

/* Whether edge i (score s) beats the best so far (index best, score bs). */
static bool beats(const struct tmt_geo_edge *edges, size_t i, uint64_t s, int best, uint64_t bs)
{
    if (best < 0 || s > bs)
        return true;
    return s == bs && strcmp(edges[i].id, edges[best].id) < 0;
}

int tmt_geo_rendezvous(const char *asset, const struct tmt_geo_edge *edges, size_t n)
{
    uint64_t seed = asset_seed(asset), bs = 0;
    int best = -1;
    for (size_t i = 0; i < n && i < INT32_MAX; i++) {
        if (!edges[i].healthy || edges[i].id == NULL)
            continue;
        uint64_t s = score(seed, edges[i].id);
        if (beats(edges, i, s, best, bs)) {
            best = (int)i;
            bs = s;
        }
    }
    return best;
}

/* ---- the decision ---- */

struct ctx {
    const struct tmt_geo_zones *z;
    const struct tmt_geo_edge *edges;
    size_t n;
    double overload;
    bool all_overloaded; /* no healthy edge is below overload: every healthy edge is available */
    uint64_t seed;
};

static bool same_group(const char *a, const char *b)
{
    return a == b || strcmp(a, b) == 0;
}

static bool available(const struct ctx *c, size_t i)
{
    const struct tmt_geo_edge *e = &c->edges[i];
    if (!e->healthy || e->id == NULL || e->group == NULL)
        return false;
    return c->all_overloaded || e->load < c->overload; /* a NaN load counts as overloaded */
}

/* Rendezvous over the available edges of group g; -1 when it has none. */
static int pick_in_group(const struct ctx *c, const char *g)
{
    uint64_t bs = 0;
    int best = -1;
    for (size_t i = 0; i < c->n; i++) {
        if (!available(c, i) || !same_group(c->edges[i].group, g))
            continue;
        uint64_t s = score(c->seed, c->edges[i].id);
        if (beats(c->edges, i, s, best, bs)) {
            best = (int)i;
            bs = s;
        }
    }
    return best;
}

/* The edge's coordinates, or its group's from the zones file; false when neither is known. */
static bool edge_coords(const struct ctx *c, size_t i, double *lat, double *lon)
{
    const struct tmt_geo_edge *e = &c->edges[i];
    if (!isnan(e->lat) && !isnan(e->lon)) {
        *lat = e->lat;
        *lon = e->lon;
        return true;
    }
    bool has = false;
    return tmt_geo_zones_group(c->z, e->group, lat, lon, &has) && has;
}

/* A point of the unit sphere. */
struct point {
    double x, y, z;
};

static struct point point_of(double lat, double lon)
{
    const double rad = M_PI / 180.0;
    double sa, ca, so, co;
    sincos(lat * rad, &sa, &ca);
    sincos(lon * rad, &so, &co);
    return (struct point){ca * co, ca * so, sa};
}

/*
 * The last edge place turned into a point: edges of one site usually share its coordinates and
 * are listed together, so the next edge often needs no sincos.
 */
struct memo {
    double lat, lon;
    struct point q;
};

/* The squared chord from p to edge i, or NaN when the edge is not available or not placed. */
static double edge_chord2(const struct ctx *c, size_t i, const struct point *p, struct memo *m)
{
    double elat, elon;
    if (!available(c, i) || !edge_coords(c, i, &elat, &elon))
        return NAN;
    if (elat != m->lat || elon != m->lon) {
        m->lat = elat;
        m->lon = elon;
        m->q = point_of(elat, elon);
    }
    double dx = p->x - m->q.x, dy = p->y - m->q.y, dz = p->z - m->q.z;
    return dx * dx + dy * dy + dz * dz;
}

static double chord2_km(double c2)
{
    double h = sqrt(c2) / 2;
    return 2 * EARTH_RADIUS_KM * asin(h < 1 ? h : 1);
}

struct cand {
    const char *group;
    double dist;      /* to its nearest available edge */
    double mean_load; /* of its available edges */
};

static bool cand_better(const struct cand *a, const struct cand *b)
{
    if (a->mean_load != b->mean_load)
        return a->mean_load < b->mean_load;
    if (a->dist != b->dist)
        return a->dist < b->dist;
    return strcmp(a->group, b->group) < 0;
}

/* Mean load of group g's available edges; INFINITY when it has none or a load is NaN. */
static double mean_load(const struct ctx *c, const char *g)
{
    double sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (available(c, i) && same_group(c->edges[i].group, g)) {
            sum += c->edges[i].load;
            k++;
        }
    }
    double m = k > 0 ? sum / (double)k : INFINITY;
    return isnan(m) ? INFINITY : m;
}

/* The edges' squared chords from the client, with the first ones cached. */
struct chords {
    const struct ctx *c;
    struct point p;
    struct memo m;
    double cache[GEO_DIST_CACHE];
};

static double chord2_of(struct chords *ch, size_t i)
{
    return i < GEO_DIST_CACHE ? ch->cache[i] : edge_chord2(ch->c, i, &ch->p, &ch->m);
}

/*
 * More than GEO_TIE_MAX groups within the tie window: each group met in the window is compared
 * in turn (O(n) per edge in the window), so the answer still does not depend on the list's order.
 */
static struct cand tie_break_all(struct chords *ch, double c2max)
{
    const struct ctx *c = ch->c;
    struct cand best = {.group = NULL};
    for (size_t i = 0; i < c->n; i++) {
        if (!(chord2_of(ch, i) <= c2max))
            continue;
        const char *g = c->edges[i].group;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = same_group(c->edges[k].group, g) && chord2_of(ch, k) <= c2max;
        if (seen)
            continue;
        struct cand x = {.group = g, .dist = INFINITY, .mean_load = mean_load(c, g)};
        for (size_t k = i; k < c->n; k++) {
            double c2 = chord2_of(ch, k);
            if (c2 <= c2max && same_group(c->edges[k].group, g) && chord2_km(c2) < x.dist)
                x.dist = chord2_km(c2);
        }
        if (best.group == NULL || cand_better(&x, &best))
            best = x;
    }
    return best;
}

/*
 * The nearest group to (lat, lon) with an available, placed edge; load breaks ties within
 * tie_km. Returns the group (from the edge list) and its distance, or NULL.
 */
static const char *nearest_group(const struct ctx *c, double lat, double lon, double tie_km,
                                 double *dist_out)
{
    struct chords ch = {.c = c, .p = point_of(lat, lon), .m = {.lat = NAN, .lon = NAN}};
    double c2min = INFINITY;
    size_t imin = 0;
    for (size_t i = 0; i < c->n; i++) {
        double c2 = edge_chord2(c, i, &ch.p, &ch.m);
        if (i < GEO_DIST_CACHE)
            ch.cache[i] = c2;
        if (c2 < c2min) {
            c2min = c2;
            imin = i;
        }
    }
    if (isinf(c2min))
        return NULL;
    double dmin = chord2_km(c2min);
    /* The tie window as a squared chord: central angle (dmin + tie_km) / R, capped at pi. */
    double ang = (dmin + tie_km) / EARTH_RADIUS_KM, c2max = 4;
    if (ang < M_PI) {
        double h = 2 * sin(ang / 2);
        c2max = h * h * (1 + 1e-12);
    }
    /* Groups with an edge within tie_km of the nearest: usually just the nearest's own. */
    struct cand cands[GEO_TIE_MAX];
    size_t nc = 0;
    cands[nc++] = (struct cand){.group = c->edges[imin].group, .dist = dmin};
    for (size_t i = 0; i < c->n; i++) {
        double c2 = chord2_of(&ch, i);
        if (!(c2 <= c2max) || i == imin)
            continue;
        double d = chord2_km(c2);
        size_t j = 0;
        while (j < nc && !same_group(cands[j].group, c->edges[i].group))
            j++;
        if (j < nc) {
            if (d < cands[j].dist)
                cands[j].dist = d;
            continue;
        }
        if (nc == GEO_TIE_MAX) {
            struct cand b = tie_break_all(&ch, c2max);
            *dist_out = b.dist;
            return b.group;
        }
        cands[nc++] = (struct cand){.group = c->edges[i].group, .dist = d};
    }
    size_t best = 0;
    for (size_t j = 0; nc > 1 && j < nc; j++) {
        cands[j].mean_load = mean_load(c, cands[j].group);
        if (j > 0 && cand_better(&cands[j], &cands[best]))
            best = j;
    }
    *dist_out = cands[best].dist;
    return cands[best].group;
}

static int chosen(struct tmt_geo_choice *out, const struct ctx *c, int edge, enum tmt_geo_how how,
                  const char *why)
{
    out->edge = edge;
    out->group = c->edges[edge].group;
    out->how = how;
    out->why = why;
    return 0;
}

int tmt_geo_choose(const struct tmt_geo_zones *z, const struct tmt_geo_db *db,
                   const char *default_group, const struct tmt_geo_addr *client, const char *asset,
                   const struct tmt_geo_edge *edges, size_t n, double overload, double tie_km,
                   struct tmt_geo_choice *out)
{
    *out = (struct tmt_geo_choice){.edge = -1,
                                   .how = TMT_GEO_NONE,
                                   .distance_km = -1,
                                   .why = "no group has an available edge"};
    if (!(overload > 0) || !(tie_km >= 0) || isinf(tie_km) || (edges == NULL && n > 0) ||
        n > INT32_MAX) {
        out->why = "bad arguments";
        return TMT_EINVAL;
    }
    struct ctx c = {.z = z,
                    .edges = edges,
                    .n = n,
                    .overload = overload,
                    .all_overloaded = true,
                    .seed = asset_seed(asset)};
    for (size_t i = 0; i < n && c.all_overloaded; i++) {
        if (edges[i].healthy && edges[i].id != NULL && edges[i].group != NULL &&
            edges[i].load < overload)
            c.all_overloaded = false;
    }

    /* 1. Coverage zone. */
    double lat = 0, lon = 0;
    bool have_loc = false;
    const char *why_loc = "nearest group to the client's location";
    if (client != NULL && z != NULL) {
        bool zc = false;
        const char *g = tmt_geo_zones_lookup(z, client, &lat, &lon, &zc);
        if (g != NULL) {
            out->zone_group = g;
            int e = pick_in_group(&c, g);
            if (e >= 0)
                return chosen(out, &c, e, TMT_GEO_BY_ZONE, "client in a coverage zone");
            have_loc = zc;
            why_loc = zc ? "coverage zone's group has no available edge; nearest group to the "
                           "zone's coordinates"
                         : "coverage zone's group has no available edge; nearest group to the "
                           "client's location";
        }
    }
    /* 2. Location: the zone's coordinates (above), else the database. */
    if (client != NULL && !have_loc && db != NULL) {
        int r = tmt_geo_db_locate(db, client, &lat, &lon);
        if (r == 1)
            have_loc = true;
        else if (r < 0)
            out->db_error = true;
    }
    if (have_loc) {
        double d = -1;
        const char *g = nearest_group(&c, lat, lon, tie_km, &d);
        if (g != NULL) {
            int e = pick_in_group(&c, g);
            TMT_ASSERT(e >= 0);
            double elat, elon;
            out->distance_km = edge_coords(&c, (size_t)e, &elat, &elon)
                                   ? tmt_geo_distance_km(lat, lon, elat, elon)
                                   : d;
            return chosen(out, &c, e, TMT_GEO_BY_LOCATION, why_loc);
        }
    }
    /* 3. Default group. */
    if (default_group != NULL) {
        int e = pick_in_group(&c, default_group);
        if (e >= 0) {
            const char *why = client == NULL  ? "client address unparsable; default group"
                              : out->db_error ? "location database error; default group"
                              : have_loc      ? "no placed group has an available edge; "
                                                "default group"
                              : db == NULL    ? "not in a coverage zone, no location database; "
                                                "default group"
                                              : "not in a coverage zone nor in the location "
                                                "database; default group";
            return chosen(out, &c, e, TMT_GEO_BY_DEFAULT, why);
        }
    }
    return TMT_ENOTFOUND;
}
