/*
 * load_lib.h: the pure parts of tomato-load, without sockets or loops, so that they are
 * unit-tested and fuzzed alone: a seeded random generator, a Zipf sampler, a log-bucketed latency
 * histogram, a minimal HLS playlist parser with URI resolution, and the trace generator.
 *
 * Threads: nothing here is shared; each object belongs to its caller (the load generator keeps
 * one of each per worker and merges histograms at the end).
 */
#ifndef TMT_LOAD_LIB_H
#define TMT_LOAD_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tmt/base.h"
#include "tmt/err.h"

/* ---- random numbers (splitmix64: small state, good enough for workloads, deterministic) ---- */

struct tmt_rng {
    uint64_t s;
};

void tmt_rng_seed(struct tmt_rng *r, uint64_t seed);
uint64_t tmt_rng_next(struct tmt_rng *r);
/* A double in [0, 1). */
double tmt_rng_unit(struct tmt_rng *r);
/* An exponential variate of the given mean (> 0). */
double tmt_rng_exp(struct tmt_rng *r, double mean);

/* ---- Zipf sampler over ranks 0..n-1: P(rank k) proportional to 1 / (k + 1)^alpha ---- */

struct tmt_zipf;

/* n >= 1, alpha >= 0 (0 = uniform). A table of n doubles; NULL if n is too large to allocate. */
struct tmt_zipf *tmt_zipf_new(size_t n, double alpha);
void tmt_zipf_free(struct tmt_zipf **z);
/* The rank drawn for a uniform u in [0, 1) (binary search of the cumulative table). */
size_t tmt_zipf_rank(const struct tmt_zipf *z, double u);
/* The same among the first n ranks only (1 <= n <= the table's n): a catalog that grows. */
size_t tmt_zipf_rank_below(const struct tmt_zipf *z, double u, size_t n);
/* The probability of rank k. */
double tmt_zipf_prob(const struct tmt_zipf *z, size_t k);

/* ---- latency histogram: microseconds in log buckets, 32 per power of two (about 3 %) ---- */

#define TMT_HIST_SUB_BITS 5
#define TMT_HIST_BUCKETS ((64 - TMT_HIST_SUB_BITS + 1) << TMT_HIST_SUB_BITS)

/* A value type placed by the caller (about 15 KiB); zero it to initialise. */
struct tmt_hist {
    uint64_t count, sum, max;
    uint64_t min; /* valid when count > 0 */
    uint64_t b[TMT_HIST_BUCKETS];
};

void tmt_hist_record(struct tmt_hist *h, uint64_t v);
/* Adds every sample of src to dst. */
void tmt_hist_merge(struct tmt_hist *dst, const struct tmt_hist *src);
/*
 * The value at quantile q in [0, 1] (0.5 = median): the middle of the bucket holding the
 * ceil(q * count)-th smallest sample, clamped to [min, max]; exact below 32. 0 when empty.
 */
uint64_t tmt_hist_quantile(const struct tmt_hist *h, double q);
/* The bucket of a value, and the lowest value of a bucket (exposed for tests). */
size_t tmt_hist_bucket(uint64_t v);
uint64_t tmt_hist_bucket_low(size_t i);

/* ---- HLS playlists (RFC 8216), the little a viewer needs ---- */

struct tmt_m3u8_variant {
    uint64_t bandwidth;     /* BANDWIDTH, bits/s (0 if absent) */
    unsigned width, height; /* RESOLUTION, 0 if absent */
    char *uri;
};

struct tmt_m3u8_seg {
    uint32_t dur_ms; /* EXTINF, rounded to milliseconds */
    char *uri;
};

/* A parsed playlist: a master (variants) or a media playlist (map and segments). */
struct tmt_m3u8 {
    bool master;
    bool endlist;
    uint32_t target_s;
    char *map_uri; /* EXT-X-MAP URI, or NULL */
    struct tmt_m3u8_variant *variants;
    size_t n_variants;
    struct tmt_m3u8_seg *segs;
    size_t n_segs;
};

#define TMT_M3U8_MAX_ENTRIES 100000 /* variants or segments */
#define TMT_M3U8_MAX_URI 2048

/*
 * Parses a playlist of len bytes (need not be NUL-terminated; never read past len). Lines end
 * in LF or CRLF; unknown tags and comments are skipped; attribute lists may quote values with
 * commas. Returns 0 with *out filled (free with tmt_m3u8_fini), or TMT_EINVAL (no #EXTM3U, a
 * URI line without its tag, bad numbers) / TMT_ELIMIT (too many entries, a URI too long) with
 * err saying which line; *out is then empty.
 */
int tmt_m3u8_parse(const char *p, size_t len, struct tmt_m3u8 *out,
                   struct tmt_err *err) TMT_MUST_CHECK;
/* Frees what the playlist owns and zeroes it. Accepts a zeroed struct. */
void tmt_m3u8_fini(struct tmt_m3u8 *m);

/*
 * Resolves a playlist URI against the path of the playlist that named it (base_path: origin-form,
 * "/v/a1/master.m3u8", query allowed) into an origin-form path in out (NUL-terminated). Relative
 * references are joined to base_path's directory and "." and ".." segments are removed (never
 * above the root); "/x" stays as is. Absolute http:// URLs are accepted only when their
 * authority equals `authority` ("127.0.0.1:8080"): the load goes only where it was told.
 * Returns the length, or TMT_EINVAL (another host, another scheme, empty) / TMT_ELIMIT (cap).
 */
long tmt_m3u8_resolve(const char *base_path, const char *uri, const char *authority, char *out,
                      size_t cap);

/* ---- trace generator: CSV time,obj_id,obj_size in the object id scheme of tmt/trace.h ---- */

struct tmt_gen_params {
    uint64_t seed;
    uint64_t requests;         /* stop after this many lines (0: by duration only) */
    uint64_t duration_s;       /* stop at this trace time */
    uint64_t assets;           /* catalog at time 0, ids first_asset.. */
    uint64_t first_asset;      /* >= 1 */
    double churn_per_hour;     /* new assets released per hour of trace time (enter near the top) */
    double alpha;              /* Zipf exponent of popularity by rank */
    unsigned rungs;            /* renditions 1..6 */
    unsigned seg_min, seg_max; /* segments per asset (1..9998) */
    double sessions_per_s;     /* mean arrival rate of viewing sessions */
    double watch_mean;         /* mean fraction of an asset watched (exponential, capped at 1) */
    bool realtime; /* one segment per segment duration after a burst of 3; else all at once */
};

struct tmt_gen_stats {
    uint64_t requests, sessions, assets, bytes;
};

void tmt_gen_params_default(struct tmt_gen_params *p);

/* Segment duration (2, 4 or 6 s), segment count and the size of an object, all derived from the
 * ids and the params alone, so that an object keeps its size. */
unsigned tmt_gen_seg_seconds(const struct tmt_gen_params *p, uint64_t asset);
unsigned tmt_gen_seg_count(const struct tmt_gen_params *p, uint64_t asset);
uint64_t tmt_gen_obj_size(const struct tmt_gen_params *p, uint64_t obj_id);

/*
 * Writes a trace (header line, then requests in time order) to out. Deterministic: the same
 * params give the same bytes. Returns 0 with st filled, TMT_EINVAL for bad params, TMT_EIO for a
 * write error; err says which.
 */
int tmt_gen_write(const struct tmt_gen_params *p, FILE *out, struct tmt_gen_stats *st,
                  struct tmt_err *err) TMT_MUST_CHECK;

#endif
