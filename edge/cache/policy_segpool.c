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
 * New assets. A decayed count estimates a rate only once it has been counting for a few
 * half-lives: an asset released an hour ago has a small count though its rate is the highest,
 * while a fading one keeps a large count for hours. Each asset (group) has its own entry in the
 * band table, with the time of its first request and the decayed count of its requests for
 * position 1, which a viewing session starts with. When the asset is young, its starts after the
 * first, divided by the decayed window it has been seen for, (S - 1) / (1 - 2^(-age/half-life)),
 * estimate what its count will be once the window is full; if that is more than S, the
 * estimates of the asset's segments (own count and band score) are scaled up by that ratio. The
 * first start is left out: it is what made the asset known, so it says nothing of its rate, and one
 * viewer reading an asset nobody else watches (whose bands are all new too) gets no credit. For an
 * asset seen longer than a few half-lives the ratio is below 1 and nothing changes. This is what
 * makes the policy follow churn (new titles entering at the top): without it, on traces with ten
 * new titles an hour, it was behind LRU at 5 and 10 % of the footprint.
 *
 * Bands live in a direct-mapped table of fixed size (2^18 entries; smaller in the miniature
 * simulations of mrc.c, whose sample holds fewer bands): a colliding band replaces the old one,
 * which only loses an estimate (a group's entry the same way: the group then looks new again).
 * Memory is bounded (32 bytes an entry, 8 MiB in all) and a request costs two probes, its group's
 * entry and its band's; an estimate costs the same two. A request adds one to its band, or 1/R in a
 * miniature simulation of a sample at rate R, so that a band's count still estimates the requests
 * of the whole stream.
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
    uint64_t first_s; /* time of the entry's first request */
};

/* The band number of a group's own entry (bands of positions are 0 to 31). */
#define SEGPOOL_GROUP_BAND 40u

struct pol_segpool {
    struct pol_band *bands;
    uint64_t band_mask;
    uint64_t now_s;
    double half_life_s;
    double avg_victim_age_s;
    uint64_t rng;
};

static uint64_t tag_of(uint64_t group, unsigned b)
{
    uint64_t x = group * 0x9e3779b97f4a7c15ull ^ ((uint64_t)b + 1) * 0xc2b2ae3d27d4eb4full;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return x | 1;
}

static uint64_t band_tag(uint64_t group, uint32_t position, unsigned *width_log2)
{
    unsigned b = 31u - (unsigned)__builtin_clz(position);
    *width_log2 = b;
    return tag_of(group, b);
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

/* Adds weight to the entry of tag, which is created (replacing the colder of its set) if absent. */
static void band_add(struct pol_segpool *sp, uint64_t tag, double weight)
{
    struct pol_band *b = band_find(sp, tag);
    if (b == NULL) {
        /* A new band replaces the colder of its set (an empty entry has count 0). */
        struct pol_band *set = &sp->bands[tag & sp->band_mask & ~UINT64_C(1)];
        b = decay(sp, set[0].count, set[0].last_s) <= decay(sp, set[1].count, set[1].last_s)
                ? &set[0]
                : &set[1];
        *b = (struct pol_band){.tag = tag, .count = 0, .last_s = sp->now_s, .first_s = sp->now_s};
    }
    b->count = decay(sp, b->count, b->last_s) + weight;
    b->last_s = sp->now_s;
}

/* start_weight: what a session start adds to its group (0 when starts come separately). */
static void band_count(struct pol_segpool *sp, const struct tmt_policy_hint *hint, double weight,
                       double start_weight)
{
    if (hint->group != 0)
        band_add(sp, tag_of(hint->group, SEGPOOL_GROUP_BAND),
                 hint->position == 1 ? start_weight : 0);
    if (hint->position == 0)
        return;
    unsigned w;
    band_add(sp, band_tag(hint->group, hint->position, &w), weight);
}

/*
 * How much a young group's band counts fall short of their rate (1 when they do not): its
 * session starts after the first, over the decayed window since its first request, against its
 * count of starts (see "New assets" above). weight is what the first start added.
 */
static double group_scale(const struct pol_segpool *sp, uint64_t group, double weight)
{
    const struct pol_band *g = band_find(sp, tag_of(group, SEGPOOL_GROUP_BAND));
    if (g == NULL)
        return 1;
    double starts = decay(sp, g->count, g->last_s);
    if (starts <= weight)
        return 1;
    /* The time resolution is a second: an age of 0 counts as 1. */
    double age = (double)(sp->now_s - TMT_MIN(sp->now_s, g->first_s)) + 1;
    double full = (starts - weight) / -expm1(-age * M_LN2 / sp->half_life_s);
    return full > starts ? full / starts : 1;
}

/*
 * The object's estimate, or, if it is not below bound, possibly only a lower bound of it that is
 * not below bound either (the group's scale, at least 1, is then not looked up).
 */
static double estimate_below(const struct tmt_policy *p, const struct pol_node *n, double bound)
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
    if (band <= 0)
        return own;
    /* The object's own count has been counting no longer than its asset: scaled the same. */
    double e = own + ldexp(band, -(int)w);
    return e >= bound ? e : e * group_scale(sp, n->group, p->all_starts ? 1.0 : p->band_weight);
}

static double estimate(const struct tmt_policy *p, const struct pol_node *n)
{
    return estimate_below(p, n, INFINITY);
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
        /* Only the lowest matters: a sample at or above it need not be exact. */
        double e = estimate_below(p, &p->nodes[i], best == 0 ? INFINITY : best_est);
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

/* Every session start of the stream, in a sample's policy (all_starts): each counts 1. */
static void segpool_observe_start(struct tmt_policy *p, uint64_t now_s, uint64_t group)
{
    struct pol_segpool *sp = p->segpool;
    if (now_s > sp->now_s)
        sp->now_s = now_s;
    band_add(sp, tag_of(group, SEGPOOL_GROUP_BAND), 1.0);
}

static bool segpool_access(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                           const struct tmt_policy_hint *hint)
{
    struct pol_segpool *sp = p->segpool;
    sp->now_s = now_s;
    band_count(sp, hint, p->band_weight, p->all_starts ? 0.0 : p->band_weight);
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
                                            .observe_start = segpool_observe_start,
                                            .memory = segpool_memory};
