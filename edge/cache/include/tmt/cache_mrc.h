/*
 * cache_mrc.h: a bounded-memory estimate of the edge cache's miss-ratio curve: for cache sizes
 * from a fraction to many times the edge's budget, the miss ratio and byte miss ratio that the
 * edge's own eviction policy would have on the requests it sees.
 *
 * How: spatial sampling (SHARDS, Waldspurger et al., FAST '15) keeps the requests whose key
 * hashes below a threshold, a fixed fraction R of the keys and all requests to each of them;
 * the sample feeds miniature simulations (Waldspurger et al., USENIX ATC '17): one policy of
 * the configured kind (cache_policy.h, the code tomato-edge runs) per size S, with the budget
 * R x S. A miniature cache of a sample behaves like the full cache of the full stream, so its
 * ratios estimate the full cache's. Sizes and counts are in bytes of the full cache; the
 * miniature budget leaves out, like tmt_tiers, twice the largest object (which is never
 * admitted, as on the edge). Placement on tiers does not change what is kept (cache_tiers.h),
 * so the tiers are not simulated.
 *
 * Memory is bounded (opts.memory_limit_bytes, 4 MiB by default): before a sampled request that
 * could make the miniature caches grow past it, the sample rate is lowered (the fixed-size
 * variant of SHARDS): the threshold drops by a quarter, keys above it leave every miniature
 * cache, budgets shrink to the new rate and the arrays are shrunk to what is left. Requests
 * counted before count with the weight 1/R they were sampled with, so the ratios stay
 * estimates of the whole stream.
 *
 * Cost: a request that is not sampled costs one hash and a compare; a sampled one costs one
 * access per size.
 *
 * Threads: not locked; one thread at a time (the owner serialises, as for the tiers). Memory:
 * the estimator owns everything it allocates; allocation failure aborts (tmt_xmalloc).
 */
#ifndef TMT_CACHE_MRC_H
#define TMT_CACHE_MRC_H

#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/cache_policy.h"
#include "tmt/err.h"

#define TMT_MRC_MAX_SIZES 64
#define TMT_MRC_DEFAULT_SIZES 16
#define TMT_MRC_DEFAULT_RATE 0.01
#define TMT_MRC_DEFAULT_MEMORY (UINT64_C(4) << 20)

struct tmt_mrc_opts {
    enum tmt_policy_kind policy; /* the edge's cache.policy */
    /*
     * The edge's budget (the sum of its tiers). Without explicit sizes the curve spans
     * min_factor to max_factor times it, n_sizes sizes spaced evenly in log scale.
     */
    uint64_t budget_bytes;
    unsigned n_sizes;  /* 0: TMT_MRC_DEFAULT_SIZES; at most TMT_MRC_MAX_SIZES */
    double min_factor; /* 0: 1/16 */
    double max_factor; /* 0: 16 */
    /* Explicit sizes in bytes instead (any order; duplicates count once); n_sizes of them. */
    const uint64_t *sizes;
    /*
     * Largest object cached (cache.max_object_size, no larger than the largest tier); larger
     * ones are always misses and twice it is kept free. 0: per size S, min(S / 64, 16 MiB),
     * tomato-cachesim's default.
     */
    uint64_t max_object;
    double sample_rate;          /* R in (0, 1]; 0: TMT_MRC_DEFAULT_RATE */
    uint64_t memory_limit_bytes; /* 0: TMT_MRC_DEFAULT_MEMORY */
    /*
     * Segment-pooled frequency keeps a table of bands per miniature cache: 2^bands_log2
     * entries of 24 bytes (0: 12, 96 KiB). The full cache's has 2^18; a sample holds fewer
     * bands.
     */
    unsigned bands_log2;
    uint64_t seed; /* of the sampling hash: the same seed samples the same keys */
};

/* One point of the curve, in bytes of the full cache. */
struct tmt_mrc_point {
    uint64_t size_bytes;
    double miss_ratio;
    double byte_miss_ratio;
};

struct tmt_mrc;

/*
 * Creates an estimator. NULL with err filled (TMT_EINVAL) for an unknown policy, a rate out of
 * (0, 1], no size, too many sizes, or sizes too small to leave room beyond the reserve for the
 * largest object.
 */
struct tmt_mrc *tmt_mrc_new(const struct tmt_mrc_opts *o, struct tmt_err *err);
void tmt_mrc_free(struct tmt_mrc **m);

/*
 * One request for key (a well-mixed 64-bit key, e.g. the edge's cache key hash; size bytes; a
 * key keeps its size) at now_s seconds of the caller's clock (non-decreasing), with the hint the
 * edge gives its policy (may be NULL). Never fails; may lower the sample rate (see above).
 */
void tmt_mrc_access(struct tmt_mrc *m, uint64_t key, uint64_t size, uint64_t now_s,
                    const struct tmt_policy_hint *hint);

/*
 * Writes up to cap points, by increasing size, and returns the number of sizes (which may be
 * larger than cap). The ratios are 0 until a request has been sampled.
 */
size_t tmt_mrc_curve(const struct tmt_mrc *m, struct tmt_mrc_point *out, size_t cap);

/*
 * The smallest cache size (bytes) that reaches target_byte_hit_ratio (in [0, 1]) on the curve,
 * interpolated in log(size) between the two sizes that bracket it. The curve is first made
 * non-increasing (each point takes the lowest byte miss ratio of the sizes up to it), so the
 * answer grows with the target. Returns 0 with *size_bytes set; TMT_ENOTFOUND with the largest
 * size when even it falls short; TMT_EAGAIN when nothing has been sampled yet; TMT_EINVAL for a
 * target out of [0, 1]. A target met by the smallest size answers the smallest size.
 */
int tmt_mrc_size_for(const struct tmt_mrc *m, double target_byte_hit_ratio,
                     uint64_t *size_bytes) TMT_MUST_CHECK;

/* Bytes allocated by the estimator (its struct and every miniature cache, by capacity). */
size_t tmt_mrc_memory(const struct tmt_mrc *m);

/* The sample rate now (lower than the one asked for after the memory bound lowered it). */
double tmt_mrc_rate(const struct tmt_mrc *m);

/* Requests seen, and those sampled. */
uint64_t tmt_mrc_requests(const struct tmt_mrc *m);
uint64_t tmt_mrc_sampled(const struct tmt_mrc *m);

/* Forgets every request and object (a new window); keeps the sizes and the rate asked for. */
void tmt_mrc_reset(struct tmt_mrc *m);

#endif
