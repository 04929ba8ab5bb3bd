/*
 * policy_segpool.c: segment-pooled frequency, the edge's own eviction policy (see
 * TMT_POLICY_SEGPOOL in cache_policy.h for the idea).
 *
 * Estimate. An object's estimate is its own decayed request count plus its band's score. A band
 * is (group, floor(log2(position))): the positions 1, 2-3, 4-7, 8-15... of one asset across its
 * renditions. Viewers read in order and most stop early, so the segments of a band are requested
 * at similar rates, and a band sees many more requests than any one segment: its count, divided
 * by the band's width, is a far less noisy estimate of a segment's rate than the segment's own
 * count, and it exists before the segment's second request. Counts decay exponentially; decay
 * is applied lazily from the time of the last update, so nothing is swept.
 *
 * Half-life. It follows the cache: SEGPOOL_AGE_FACTOR times the moving average of the time
 * since its victims were last requested. A larger budget or slower traffic keeps objects longer,
 * and the counts then remember longer. The floor (ten minutes, a few viewing sessions) keeps a
 * very small cache, whose victims are young, from forgetting a band between two viewers: without
 * it the policy fell behind S3-FIFO at 0.1 % of the footprint.
 *
 * Eviction. SEGPOOL_SAMPLES resident objects drawn at random from the node array; the lowest
 * estimate leaves. A hit updates two fields of its node and moves nothing. The list only keeps
 * admission order, as a fallback victim if sampling keeps drawing free slots.
 *
 * Admission. A missed object enters only if its estimate is at least each victim's it would
 * displace; victims already evicted before a refusal stay evicted (the space serves the next
 * admission).
 *
 * Bands live in a direct-mapped table of fixed size (2^18 entries; smaller in the miniature
 * simulations of mrc.c, whose sample holds fewer bands): a colliding band replaces the old one,
 * which only loses an estimate. Memory is bounded and a request costs one probe. A request adds
 * one to its band, or 1/R in a miniature simulation of a sample at rate R, so that a band's count
 * still estimates the requests of the whole stream.
 */
#include <math.h>
#include <stdlib.h>

#include "policy_int.h"
#include "tmt/base.h"

#define SEGPOOL_SAMPLES 16
#define SEGPOOL_AGE_FACTOR 3.0
#define SEGPOOL_MIN_HALF_LIFE_S 600.0
#define SEGPOOL_INITIAL_HALF_LIFE_S 3600.0

struct pol_band {
    uint64_t tag; /* hash of (group, band), 0 = empty */
    double count;
    uint64_t last_s;
};

struct pol_segpool {
    struct pol_band *bands;
    uint64_t band_mask;
    uint64_t now_s;
    double half_life_s;
    double avg_victim_age_s;
    uint64_t rng;
};

static uint64_t band_tag(uint64_t group, uint32_t position, unsigned *width_log2)
{
    unsigned b = 31u - (unsigned)__builtin_clz(position);
    *width_log2 = b;
    uint64_t x = group * 0x9e3779b97f4a7c15ull ^ ((uint64_t)b + 1) * 0xc2b2ae3d27d4eb4full;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return x | 1;
}

static double decay(const struct pol_segpool *sp, double count, uint64_t last_s)
{
    if (sp->now_s <= last_s)
        return count;
    return count * exp2(-(double)(sp->now_s - last_s) / sp->half_life_s);
}

/* The entry of tag in its set of two, or NULL. */
static struct pol_band *band_find(const struct pol_segpool *sp, uint64_t tag)
{
    struct pol_band *set = &sp->bands[tag & sp->band_mask & ~UINT64_C(1)];
    return set[0].tag == tag ? &set[0] : set[1].tag == tag ? &set[1] : NULL;
}

static void band_count(struct pol_segpool *sp, const struct tmt_policy_hint *hint, double weight)
{
    if (hint->position == 0)
        return;
    unsigned w;
    uint64_t tag = band_tag(hint->group, hint->position, &w);
    struct pol_band *b = band_find(sp, tag);
    if (b == NULL) {
        /* A new band replaces the colder of its set (an empty entry has count 0). */
        struct pol_band *set = &sp->bands[tag & sp->band_mask & ~UINT64_C(1)];
        b = decay(sp, set[0].count, set[0].last_s) <= decay(sp, set[1].count, set[1].last_s)
                ? &set[0]
                : &set[1];
        *b = (struct pol_band){.tag = tag, .count = 0, .last_s = sp->now_s};
    }
    b->count = decay(sp, b->count, b->last_s) + weight;
    b->last_s = sp->now_s;
}

static double estimate(const struct tmt_policy *p, const struct pol_node *n)
{
    const struct pol_segpool *sp = p->segpool;
    double own = decay(sp, n->count, n->last_s);
    if (n->position == 0)
        return own;
    unsigned w;
    uint64_t tag = band_tag(n->group, n->position, &w);
    const struct pol_band *b = band_find(sp, tag);
    if (b == NULL)
        return own;
    /*
     * In a sample (band weight 1/R > 1) the object's own requests are in its band with that
     * weight, though they stand for themselves only: counted once, the others' weighted
     * requests estimate the rest of the band. For the full stream this subtracts nothing.
     */
    double band = decay(sp, b->count, b->last_s) - own * (p->band_weight - 1.0);
    return own + ldexp(band > 0 ? band : 0, -(int)w);
}

static uint64_t rng_next(struct pol_segpool *sp)
{
    sp->rng ^= sp->rng << 13;
    sp->rng ^= sp->rng >> 7;
    sp->rng ^= sp->rng << 17;
    return sp->rng;
}

/* The resident object with the lowest estimate among a sample. There is at least one. */
static uint32_t sample_victim(struct tmt_policy *p, double *victim_est)
{
    struct pol_segpool *sp = p->segpool;
    uint32_t best = 0;
    double best_est = 0;
    unsigned drawn = 0;
    for (unsigned tries = 0; drawn < SEGPOOL_SAMPLES && tries < 64 * SEGPOOL_SAMPLES; tries++) {
        uint32_t i = 1 + (uint32_t)(rng_next(sp) % (p->n_nodes - 1));
        if (p->nodes[i].queue != POL_Q_MAIN)
            continue;
        drawn++;
        double e = estimate(p, &p->nodes[i]);
        if (best == 0 || e < best_est) {
            best = i;
            best_est = e;
        }
    }
    if (best == 0) {
        best = p->lists[POL_Q_MAIN].tail;
        best_est = estimate(p, &p->nodes[best]);
    }
    *victim_est = best_est;
    return best;
}

/* Evicts v, learning from its age how long the counts should remember. */
static void evict_victim(struct tmt_policy *p, uint32_t v)
{
    struct pol_segpool *sp = p->segpool;
    double age = (double)(sp->now_s - TMT_MIN(sp->now_s, p->nodes[v].last_s));
    sp->avg_victim_age_s += (age - sp->avg_victim_age_s) / 256;
    sp->half_life_s = TMT_MAX(SEGPOOL_MIN_HALF_LIFE_S, SEGPOOL_AGE_FACTOR * sp->avg_victim_age_s);
    tmt_pol_evict(p, v);
}

static void segpool_evict_one(struct tmt_policy *p)
{
    double est;
    evict_victim(p, sample_victim(p, &est));
}

static bool segpool_access(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                           const struct tmt_policy_hint *hint)
{
    struct pol_segpool *sp = p->segpool;
    sp->now_s = now_s;
    band_count(sp, hint, p->band_weight);
    uint32_t i = tmt_pol_find(p, key);
    if (i != 0) {
        struct pol_node *n = &p->nodes[i];
        n->count = (float)(decay(sp, n->count, n->last_s) + 1);
        n->last_s = now_s;
        return true;
    }
    if (size > p->budget_bytes)
        return false;
    const struct pol_node probe = {
        .group = hint->group, .position = hint->position, .count = 1, .last_s = now_s};
    double new_est = estimate(p, &probe);
    while (p->bytes + size > p->budget_bytes) {
        double victim_est;
        uint32_t v = sample_victim(p, &victim_est);
        if (victim_est > new_est)
            return false;
        evict_victim(p, v);
    }
    i = tmt_pol_node_new(p, key, size, hint);
    p->nodes[i].count = 1;
    p->nodes[i].last_s = now_s;
    tmt_pol_push_head(p, POL_Q_MAIN, i);
    return false;
}

static void segpool_init(struct tmt_policy *p)
{
    struct pol_segpool *sp = tmt_xcalloc(1, sizeof(*sp));
    sp->band_mask = (UINT64_C(1) << p->bands_log2) - 1;
    sp->bands = tmt_xcalloc(sp->band_mask + 1, sizeof(*sp->bands));
    sp->half_life_s = SEGPOOL_INITIAL_HALF_LIFE_S;
    sp->rng = 0x2545f4914f6cdd1dull; /* fixed: replays are reproducible */
    p->segpool = sp;
}

static void segpool_fini(struct tmt_policy *p)
{
    if (p->segpool != NULL)
        free(p->segpool->bands);
    free(p->segpool);
    p->segpool = NULL;
}

static size_t segpool_memory(const struct tmt_policy *p)
{
    return sizeof(*p->segpool) + (size_t)(p->segpool->band_mask + 1) * sizeof(struct pol_band);
}

const struct pol_ops tmt_pol_segpool_ops = {.init = segpool_init,
                                            .fini = segpool_fini,
                                            .access = segpool_access,
                                            .evict_one = segpool_evict_one,
                                            .memory = segpool_memory};
