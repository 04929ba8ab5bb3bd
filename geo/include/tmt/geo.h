/*
 * geo.h: which edge serves a client: coverage zones, MaxMind locations, nearest group, rendezvous.
 *
 * libtmt_geo has no sockets, no event loop and no global state. The control plane calls it from
 * its API threads; the router, /v1/route and trusted proxies are the control plane's.
 *
 * The decision (tmt_geo_choose), in order:
 *   1. Coverage zones. The client address is matched against the coverage-zone file (longest
 *      prefix wins). If the zone's group has an available edge, that group serves (BY_ZONE).
 *   2. Location. Otherwise the client's location is taken from the MaxMind City database (or, when
 *      the client was in a zone whose group has no available edge and the file gives that zone
 *      coordinates, from those coordinates, as Apache Traffic Control's router does). The nearest
 *      group with an available edge serves (BY_LOCATION). A group's distance is the great-circle
 *      distance to its nearest available edge; groups within tie_km of the nearest one are
 *      compared by the mean load of their available edges (lower wins), then by distance, then
 *      by name, so the answer never depends on the order of the edge list.
 *   3. The default group, if it has an available edge (BY_DEFAULT).
 *   4. Nothing (NONE, TMT_ENOTFOUND).
 *   Within the chosen group the edge is picked by rendezvous hashing: the available edge with the
 *   highest XXH3-64 of its id seeded with the XXH3-64 of the asset id. The same asset goes to
 *   the same edge while that edge is available (its cache stays warm), and removing an edge moves
 *   only the assets that were on it.
 *
 * "Available" means healthy (unhealthy and draining edges are the caller's healthy = false) and
 * with load < overload. When no healthy edge anywhere is below overload, every healthy edge is
 * available again: an overloaded edge is better than none. An edge's coordinates are its own;
 * when they are NaN, those its group has in the coverage-zone file; with neither it can still
 * serve zone and default clients but is not ranked by distance.
 *
 * Client addresses. Private, reserved and loopback addresses are looked up like any other: zones
 * first (operators and tests map their private ranges there), then the database, then the
 * default group. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 addresses everywhere: they
 * match IPv4 prefixes (the `network` lists) and are looked up as IPv4 in the database. Only an
 * address that does not parse is special: the caller passes client = NULL, which gives the
 * default group, and counts it.
 *
 * Coverage-zone file: Apache Traffic Control's format (JSON):
 *     {"coverageZones": {"GROUP": {"network": ["192.168.8.0/24", ...],
 *                                  "network6": ["2001:db8:1::/48", ...],
 *                                  "coordinates": {"latitude": 48.85, "longitude": 2.35}}},
 *      "customerName": "...", "revision": "..."}
 * Every member of a group is optional; `coordinates` needs both numbers (latitude -90..90,
 * longitude -180..180). Refused with "FILE:LINE: what" (TMT_EINVAL): anything not strict JSON
 * (RFC 8259: UTF-8, no comments, no trailing commas), a member of the format given twice (so a
 * group cannot be listed twice), a missing `coverageZones`, unknown members in a group or in
 * `coordinates` (a misspelt `netwrok` would silently route a network elsewhere), group names
 * outside [A-Za-z0-9._-]{1,64}, a CIDR that does not parse, lacks its /length, has host bits set
 * (10.0.0.1/8), is IPv6 in `network` or IPv4 in `network6`, or is IPv4-mapped (list it in
 * `network`), and the same CIDR in two groups (the message names the other group and its line).
 * The same CIDR twice in one group is accepted. Other top-level members (`customerName`,
 * `revision`, anything else) are ignored. Files are at most 256 MiB; JSON nests at most 64 deep.
 * Traffic Router accepts some of what is refused here (host bits, a network in two groups, where
 * its answer then depends on its scan order); files like those its documentation shows load
 * unchanged.
 *
 * Objects and threads. A struct tmt_geo_zones and a struct tmt_geo_db are immutable once built:
 * any number of threads may look up in them at once without locks. A reload builds a new object
 * and the caller swaps its pointer; the caller keeps the old one alive until no thread uses it
 * (e.g. inside its own refcounted routing snapshot), then frees it. Lookups and tmt_geo_choose
 * allocate nothing.
 *
 * The MaxMind database is mapped (libmaxminddb's MMDB_MODE_MMAP): replace the file by renaming a
 * new one over it, never by rewriting it in place (a truncated mapping kills the process with
 * SIGBUS), then open the new file and swap. A database that fails to open is reported through
 * err and routing goes on without it (pass db = NULL); a lookup error (a damaged file that
 * opened) is reported in the choice (db_error) and the decision falls back to the default group.
 *
 * Costs (loadtest/bench/geo.sh, docs/BENCHMARKS.md): a zone lookup is a walk down a
 * path-compressed trie (0.2 us with 10,000 prefixes, parsing the address included); a decision
 * adds passes over the edge list (1.25 us for a zone hit with 200 edges), and a location decision
 * two sincos per edge to rank distances (edges listed together with the same coordinates, as a
 * site's usually are, share theirs): 10 us over 200 edges placed apart.
 * XXX: a prepared fleet (points and interned groups computed when the edge list changes) would
 * take most of that away if fleets grow to thousands of edges.
 */
#ifndef TMT_GEO_H
#define TMT_GEO_H

#include <stdbool.h>
#include <stddef.h>

#include "tmt/base.h"

struct tmt_err;

/* Longest text tmt_geo_addr_parse accepts (an IPv6 address with a scope) and tmt_geo_addr_format
 * writes, NUL included. */
#define TMT_GEO_ADDR_TEXT_MAX 64
/* Longest group name in a coverage-zone file. */
#define TMT_GEO_GROUP_MAX 64

/* A client address. family is AF_INET (b[0..3] used, the rest zero) or AF_INET6. */
struct tmt_geo_addr {
    int family;
    unsigned char b[16];
};

/*
 * Parses "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1" (becomes IPv4 192.0.2.1) or
 * "fe80::1%eth0" (the scope is dropped: it names an interface, not a place). The text must be
 * exactly an address: no brackets, port, prefix length or spaces; IPv4 parts in decimal without
 * leading zeros. Returns 0, or TMT_EINVAL with *out zeroed. Any thread.
 */
int tmt_geo_addr_parse(const char *text, struct tmt_geo_addr *out) TMT_MUST_CHECK;
/* The same for len bytes at p (a slice of a header), not NUL-terminated. */
int tmt_geo_addr_parse_n(const char *p, size_t len, struct tmt_geo_addr *out) TMT_MUST_CHECK;
/* Writes the address's usual text into buf (TMT_GEO_ADDR_TEXT_MAX is always enough); returns buf,
 * or "?" for a family that is neither. */
const char *tmt_geo_addr_format(const struct tmt_geo_addr *a, char *buf, size_t size);

/* ---- coverage zones ---- */

struct tmt_geo_zones;

/*
 * Reads and parses a coverage-zone file (see the top of this header). Returns a new immutable
 * object owned by the caller (tmt_geo_zones_free), or NULL with err set: TMT_EINVAL and
 * "PATH:LINE: what" for content, TMT_EIO (errno kept) for a file that cannot be read, TMT_ELIMIT
 * for a file over 256 MiB.
 */
struct tmt_geo_zones *tmt_geo_zones_load(const char *path, struct tmt_err *err);
/* The same for len bytes of text (not NUL-terminated); name is what messages call the file. */
struct tmt_geo_zones *tmt_geo_zones_parse(const char *name, const char *text, size_t len,
                                          struct tmt_err *err);
/* Frees *z (NULL is fine) and sets *z to NULL. No other thread may still use it. */
void tmt_geo_zones_free(struct tmt_geo_zones **z);

/*
 * Longest-prefix match of a against the zones of its family. Returns the group's name (valid
 * while z lives) and, when the file gives them, the group's coordinates (*has_coords true);
 * NULL when no prefix matches or a is NULL. lat, lon and has_coords may each be NULL.
 */
const char *tmt_geo_zones_lookup(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a,
                                 double *lat, double *lon, bool *has_coords);
/* Whether the file has a group of this name; its coordinates as for tmt_geo_zones_lookup. */
bool tmt_geo_zones_group(const struct tmt_geo_zones *z, const char *name, double *lat, double *lon,
                         bool *has_coords);
/* Counts, for logs: distinct prefixes (IPv4 and IPv6 together) and groups. */
size_t tmt_geo_zones_prefixes(const struct tmt_geo_zones *z);
size_t tmt_geo_zones_groups(const struct tmt_geo_zones *z);

/* ---- MaxMind City database ---- */

struct tmt_geo_db;

/*
 * Opens a MaxMind DB file of a City kind (GeoIP2/GeoLite2-City, GeoIP2-Enterprise, DB-IP City:
 * its database_type names City or Enterprise). Returns a new object owned by the caller
 * (tmt_geo_db_close), or NULL with err: TMT_EIO (errno kept) when the file cannot be opened or
 * mapped, TMT_ECORRUPT when it is not a valid MaxMind DB, TMT_EINVAL when it is not a City kind.
 * Messages start with the path.
 */
struct tmt_geo_db *tmt_geo_db_open(const char *path, struct tmt_err *err);
/* Unmaps and frees *db (NULL is fine), sets *db to NULL. No other thread may still use it. */
void tmt_geo_db_close(struct tmt_geo_db **db);
/*
 * The client's location.latitude / location.longitude. Returns 1 with *lat, *lon set, 0 when the
 * database has no location for a (not in it, no location record, an IPv6 address in an IPv4-only
 * database), or TMT_ECORRUPT when the lookup finds the file damaged (coordinates out of range
 * included). Any thread; allocates nothing.
 */
int tmt_geo_db_locate(const struct tmt_geo_db *db, const struct tmt_geo_addr *a, double *lat,
                      double *lon);
/* The database's type and build time (seconds since the epoch), for logs. */
const char *tmt_geo_db_type(const struct tmt_geo_db *db);
unsigned long long tmt_geo_db_build_epoch(const struct tmt_geo_db *db);

/* ---- decision ---- */

/* Great-circle distance in km by the haversine formula on a sphere of the mean earth radius
 * (6371.0088 km); degrees in. Within 0.5 % of the ellipsoid's distance. */
double tmt_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/* One edge as the caller knows it now. id and group must stay valid during the call; an edge
 * with either NULL is never chosen. */
struct tmt_geo_edge {
    const char *id;    /* unique among the edges; the rendezvous key */
    const char *group; /* the edge group, the name coverage zones map to */
    double lat, lon;   /* degrees; NaN: use the group's coordinates from the zones file */
    double load;       /* 0..1 of capacity (more is allowed: over capacity) */
    bool healthy;      /* false for unhealthy and draining edges: never chosen */
};

enum tmt_geo_how {
    TMT_GEO_BY_ZONE,     /* the client's coverage zone */
    TMT_GEO_BY_LOCATION, /* the nearest group to the client's location */
    TMT_GEO_BY_DEFAULT,  /* the default group */
    TMT_GEO_NONE,        /* no group could serve */
};

/* What tmt_geo_choose decided. The pointers borrow: group from edges, zone_group from the zones,
 * why is a static string. */
struct tmt_geo_choice {
    int edge;               /* index into edges, -1 for none */
    const char *group;      /* the chosen edge's group (edges[edge].group), NULL for none */
    enum tmt_geo_how how;   /* which step decided */
    double distance_km;     /* client location to the chosen edge; -1 when no location was used */
    const char *why;        /* a short fixed English sentence, for logs and debug answers */
    const char *zone_group; /* the client's coverage-zone group, even one that could not serve */
    bool db_error;          /* the database lookup failed (damaged file); the choice fell back */
};

/*
 * The full decision (see the top of this header) for the client at *client (NULL: its address did
 * not parse) asking for asset (NULL counts as ""). z, db and default_group may each be NULL.
 * overload must be > 0 (e.g. 0.9), tie_km >= 0 (e.g. 50). Fills *out and returns 0 when an edge
 * was chosen, TMT_ENOTFOUND when none could be (out->edge -1, how NONE), TMT_EINVAL for
 * arguments out of range. Any thread; allocates nothing; O(n) plus O(n) per group within tie_km.
 */
int tmt_geo_choose(const struct tmt_geo_zones *z, const struct tmt_geo_db *db,
                   const char *default_group, const struct tmt_geo_addr *client, const char *asset,
                   const struct tmt_geo_edge *edges, size_t n, double overload, double tie_km,
                   struct tmt_geo_choice *out);

/*
 * Rendezvous pick alone: among the healthy edges, the index whose id scores highest for asset
 * (NULL counts as ""), or -1 when none is healthy. The score is XXH3-64 of the id seeded with
 * XXH3-64 of the asset; equal scores go to the smaller id. Any thread.
 */
int tmt_geo_rendezvous(const char *asset, const struct tmt_geo_edge *edges, size_t n);

#endif
