/*
 * store.h: the edge's object store: the hot tier in RAM and the warm and cold tiers in RocksDB,
 * with objects placed by the tier model (cache_tiers.h) that tomato-cachesim replays.
 *
 * An object is one stored response: status, end-to-end header fields, freshness metadata and
 * the body. Objects are immutable and reference-counted; a hot object is shared by every worker
 * and served from its own memory, a warm or cold one from RocksDB's pinned value (no copy).
 *
 * On disk, each object is two RocksDB entries written and deleted in one batch: 'o' + key hash
 * (the record: a header with an XXH3-64 checksum over everything after it, the key, the header
 * fields and the body) and 'm' + key hash (size and policy hint, scanned at start to rebuild the
 * index without reading bodies). A record whose checksum, layout or key does not match is
 * never served: it is deleted, counted, and the request is a miss.
 *
 * Threads: every function may be called from any worker; one mutex guards the index and the
 * moves between tiers (disk reads and writes of moves happen under it: known cost, see
 * docs/ARCHITECTURE.md).
 */
#ifndef EDGE_STORE_H
#define EDGE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/cache_mrc.h"
#include "tmt/cache_tiers.h"
#include "tmt/err.h"
#include "tmt/http.h"

/* Freshness facts kept with an object (times are wall-clock Unix milliseconds). */
struct edge_meta {
    int64_t response_time_ms; /* when the response (or its last 304) arrived */
    int64_t initial_age_ms;   /* corrected initial age (RFC 9111 4.2.3) */
    int64_t lifetime_ms;      /* freshness lifetime */
    int64_t swr_ms, sie_ms;   /* stale-while-revalidate / stale-if-error, -1 none */
    uint32_t flags;           /* EDGE_META_* */
};
#define EDGE_META_MUST_REVALIDATE 0x1u
#define EDGE_META_NO_CACHE 0x2u

struct edge_obj {
    atomic_uint refs;
    uint64_t hkey;
    struct tmt_slice key;
    int status;
    struct tmt_http_header *hdrs;
    size_t n_hdrs;
    const char *body;
    uint64_t size;
    struct edge_meta meta;
    struct tmt_policy_hint hint;
    /*
     * Derived once from the fields, so that a hit parses nothing: the validators, and the
     * Content-Type as a C string (ctype[0] == 0 when absent or too long, then it stays a field).
     */
    struct tmt_http_validators val;
    char ctype[128];
    /*
     * The response has Vary: then the fields also hold, under the field name prefixed with ':'
     * (never a valid field name, never sent), the request's values of each field it names.
     */
    bool vary;
    /* owners of the memory above */
    void *pin;                   /* a pinned RocksDB value holding key, fields and body */
    char *mem;                   /* key and fields (objects built from a response) */
    char *body_mem;              /* body (objects built from a response) */
    struct edge_obj *body_owner; /* body shared with another object (a 304 refresh) */
    struct edge_obj *hnext;      /* hot table chain */
};

/* A new object from a response: copies key and fields; the body buffer is allocated (size). */
struct edge_obj *edge_obj_new(uint64_t hkey, struct tmt_slice key, int status,
                              const struct tmt_http_header *h, size_t n, uint64_t body_cap);
/* A new object with fields h and meta that shares src's body (a 304 refresh). */
struct edge_obj *edge_obj_refresh(struct edge_obj *src, const struct tmt_http_header *h, size_t n);
void edge_obj_ref(struct edge_obj *o);
void edge_obj_unref(struct edge_obj *o);
/* A tmt_release_fn: drops one reference. */
void edge_obj_release(void *o);

struct edge_store_opts {
    enum tmt_policy_kind policy;
    uint64_t budget[TMT_TIER_N];
    uint64_t max_object;
    const char *path[TMT_TIER_N]; /* warm and cold directories (hot: unused) */
    int zstd_level[TMT_TIER_N];
    uint64_t start_ms;   /* monotonic ms: the policy's clock is seconds since then */
    bool frozen_clock;   /* the policy's clock stays at 0 (replay checks) */
    double mrc_rate;     /* miss-ratio-curve estimate (tmt/cache_mrc.h): sample rate, 0 = none */
    uint64_t mrc_memory; /* and its memory bound */
};

struct edge_store_stats {
    uint64_t objects[TMT_TIER_N], bytes[TMT_TIER_N], budget[TMT_TIER_N];
    uint64_t promotions, demotions, evictions, checksum_failures, write_errors, restored;
};

struct edge_store;

/* Opens the tiers and rebuilds the index from warm and cold. NULL with err filled. */
struct edge_store *edge_store_open(const struct edge_store_opts *o, struct tmt_err *err);
void edge_store_close(struct edge_store **s);

/*
 * One request for a stored object: counts it in the tier model with the key's hint (as
 * tomato-cachesim does; the policy may use it on hits too), which may move objects, and
 * returns a reference to the object and the tier it was served from, or NULL (a miss: not
 * stored, or its stored copy was bad). key must match the stored key exactly.
 */
struct edge_obj *edge_store_get(struct edge_store *s, uint64_t hkey, struct tmt_slice key,
                                const struct tmt_policy_hint *hint, uint64_t now_ms,
                                enum tmt_tier *tier);

/*
 * Stores a complete object (the request that missed counts here), replacing what was stored
 * under the same key. The tier model may decline it. Returns the tier it went to or NONE.
 */
enum tmt_tier edge_store_put(struct edge_store *s, struct edge_obj *o, uint64_t now_ms);

/* Replaces a stored object's fields and metadata in place of the old (a 304 refresh). */
void edge_store_replace(struct edge_store *s, struct edge_obj *o);

/* Is key stored (on any tier)? Counts no request. */
bool edge_store_has(struct edge_store *s, uint64_t hkey);

/* Removes key (purge, invalidation). Returns true if it was stored. */
bool edge_store_remove(struct edge_store *s, uint64_t hkey);

/*
 * Removes every object whose policy hint has this group (all of one asset's keys: purge by
 * asset). Objects stored while it runs may stay. Returns how many it removed.
 */
size_t edge_store_remove_group(struct edge_store *s, uint64_t group);

void edge_store_stats(struct edge_store *s, struct edge_store_stats *out);

/*
 * The miss-ratio-curve estimate: up to cap points by increasing size (returns how many), the
 * sample rate now, the requests sampled and the cache's budget (the sum of the tiers'); 0
 * points when the estimate is off. Any thread.
 */
size_t edge_store_mrc(struct edge_store *s, struct tmt_mrc_point *out, size_t cap, double *rate,
                      uint64_t *sampled, uint64_t *budget);

/* Bytes on disk of tier t (after a compaction, for tests). */
uint64_t edge_store_disk_bytes(struct edge_store *s, enum tmt_tier t, bool compact);

#endif
