/*
 * mrc.c: the miss-ratio-curve estimator (see cache_mrc.h): SHARDS sampling feeding miniature
 * simulations of the edge's own policy.
 *
 * Sampling. A key is in the sample when the top 24 bits of mix64(key ^ seed) are below the
 * threshold T, so the rate is R = T / 2^24 and a key is either always or never sampled while T
 * stays. Lowering T only takes keys out: the sample at the lower rate is a subset of the one
 * before, which is what lets the miniature caches keep their state when the rate drops.
 *
 * Miniature caches. One policy per size, built with tmt_pol_new_mini (policy_int.h): the same
 * code as the edge's, starting with a handful of nodes instead of a thousand, a smaller band
 * table, and a band weight of 1/R (segment-pooled frequency pools the requests of a band, and
 * a sample holds a fraction R of each band's objects: without the weight a band would look R
 * times colder than it is, and the miniature cache would admit by the object's own count
 * alone). Budgets are R x (S - 2 x max_object): the full cache's policy budget scaled.
 *
 * Counting. Every sampled request counts with weight 1/R at the time it is sampled, in doubles,
 * so that counts from before and after a lowering of the rate add up to estimates of the same
 * stream.
 *
 * Memory bound. Before a sampled request, the allocated bytes plus what the next admission
 * could allocate in every miniature cache (a doubling of a node array or of a table) are
 * compared with the limit; over it, the rate drops by a quarter (repeatedly if needed): keys
 * out of the new sample leave every cache (ghosts too), budgets shrink to the new rate and
 * the arrays are compacted. So the allocated bytes never pass the limit, apart from the moment
 * of a compaction, when old and new arrays of one cache coexist.
 */
#include "tmt/cache_mrc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

#define MRC_MAGIC 0x3c2c0a11u
#define MRC_HASH_BITS 24
#define MRC_P (UINT64_C(1) << MRC_HASH_BITS)
#define MRC_INITIAL_NODES 16
#define MRC_DEFAULT_BANDS_LOG2 12

struct mrc_size {
    uint64_t size_bytes;
    uint64_t max_object;
    uint64_t policy_budget; /* of the full cache: size_bytes - 2 x max_object */
    struct tmt_policy *p;
    /* Weighted by 1/R at sampling time. */
    double requests, bytes, misses, missed_bytes;
};

struct tmt_mrc {
    unsigned magic;
    enum tmt_policy_kind kind;
    unsigned bands_log2;
    uint64_t seed;
    uint64_t threshold0; /* asked for */
    uint64_t threshold;  /* now */
    double weight;       /* 1/R now */
    uint64_t memory_limit;
    uint64_t requests, sampled;
    unsigned n;
    struct mrc_size sizes[TMT_MRC_MAX_SIZES];
};

static uint64_t sample_hash(const struct tmt_mrc *m, uint64_t key)
{
    return tmt_mix64(key ^ m->seed) >> (64 - MRC_HASH_BITS);
}

static uint64_t mini_budget(const struct tmt_mrc *m, const struct mrc_size *s)
{
    double b = (double)s->policy_budget * (double)m->threshold / (double)MRC_P;
    return b < 1.0 ? 1 : (uint64_t)b;
}

static void build_caches(struct tmt_mrc *m)
{
    const struct tmt_pol_mini mini = {.initial_nodes = MRC_INITIAL_NODES,
                                      .bands_log2 = m->bands_log2,
                                      .band_weight = m->weight,
                                      .all_starts = true};
    for (unsigned i = 0; i < m->n; i++) {
        struct mrc_size *s = &m->sizes[i];
        s->p = tmt_pol_new_mini(m->kind, mini_budget(m, s), &mini);
        TMT_ASSERT(s->p != NULL);
        s->requests = s->bytes = s->misses = s->missed_bytes = 0;
    }
}

static void free_caches(struct tmt_mrc *m)
{
    for (unsigned i = 0; i < m->n; i++)
        tmt_policy_free(&m->sizes[i].p);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sizes asked for, sorted, without duplicates. Returns how many, or 0 on bad options. */
static unsigned wanted_sizes(const struct tmt_mrc_opts *o, uint64_t *out, struct tmt_err *err)
{
    unsigned n = o->n_sizes != 0 ? o->n_sizes : TMT_MRC_DEFAULT_SIZES;
    if (n > TMT_MRC_MAX_SIZES) {
        tmt_err_set(err, TMT_EINVAL, "%u sizes: at most %u", n, TMT_MRC_MAX_SIZES);
        return 0;
    }
    if (o->sizes != NULL) {
        if (o->n_sizes == 0) {
            tmt_err_set(err, TMT_EINVAL, "explicit sizes without their number");
            return 0;
        }
        memcpy(out, o->sizes, n * sizeof(*out));
    } else {
        double lo = o->min_factor != 0 ? o->min_factor : 1.0 / 16;
        double hi = o->max_factor != 0 ? o->max_factor : 16.0;
        if (o->budget_bytes == 0 || !(lo > 0) || !(hi >= lo)) {
            tmt_err_set(err, TMT_EINVAL, "a budget and factors 0 < min <= max are needed");
            return 0;
        }
        for (unsigned k = 0; k < n; k++) {
            double f = n == 1 ? 1.0 : pow(hi / lo, (double)k / (double)(n - 1));
            out[k] = (uint64_t)((double)o->budget_bytes * lo * f);
        }
    }
    qsort(out, n, sizeof(*out), cmp_u64);
    unsigned d = 0;
    for (unsigned k = 0; k < n; k++) {
        if (d == 0 || out[k] != out[d - 1])
            out[d++] = out[k];
    }
    return d;
}

struct tmt_mrc *tmt_mrc_new(const struct tmt_mrc_opts *o, struct tmt_err *err)
{
    if (tmt_policy_kind_name(o->policy) == NULL) {
        tmt_err_set(err, TMT_EINVAL, "unknown policy kind %d", (int)o->policy);
        return NULL;
    }
    double rate = o->sample_rate != 0 ? o->sample_rate : TMT_MRC_DEFAULT_RATE;
    if (!(rate > 0 && rate <= 1)) {
        tmt_err_set(err, TMT_EINVAL, "sample rate %g is not in (0, 1]", rate);
        return NULL;
    }
    unsigned bands_log2 = o->bands_log2 != 0 ? o->bands_log2 : MRC_DEFAULT_BANDS_LOG2;
    if (bands_log2 > 24) {
        tmt_err_set(err, TMT_EINVAL, "bands_log2 %u: at most 24", bands_log2);
        return NULL;
    }
    uint64_t want[TMT_MRC_MAX_SIZES];
    unsigned n_want = wanted_sizes(o, want, err);
    if (n_want == 0)
        return NULL;
    struct tmt_mrc *m = tmt_xcalloc(1, sizeof(*m));
    m->magic = MRC_MAGIC;
    m->kind = o->policy;
    m->bands_log2 = bands_log2;
    m->seed = o->seed;
    m->threshold0 = TMT_MAX((uint64_t)llround(rate * (double)MRC_P), UINT64_C(1));
    m->threshold = m->threshold0;
    m->weight = (double)MRC_P / (double)m->threshold;
    m->memory_limit = o->memory_limit_bytes != 0 ? o->memory_limit_bytes : TMT_MRC_DEFAULT_MEMORY;
    for (unsigned k = 0; k < n_want; k++) {
        uint64_t mo = o->max_object;
        if (mo == 0)
            mo = TMT_MIN(want[k] / 64, UINT64_C(16) << 20);
        /* Like the tiers, a size must leave room beyond twice the largest object. */
        if (mo == 0 || want[k] / 2 <= mo)
            continue;
        m->sizes[m->n++] = (struct mrc_size){
            .size_bytes = want[k], .max_object = mo, .policy_budget = want[k] - 2 * mo};
    }
    if (m->n == 0) {
        tmt_err_set(err, TMT_EINVAL, "no size leaves room beyond twice the largest object");
        goto fail;
    }
    build_caches(m);
    if (tmt_mrc_memory(m) > m->memory_limit) {
        tmt_err_set(err, TMT_EINVAL,
                    "%u empty miniature caches take %zu bytes, over the limit %llu", m->n,
                    tmt_mrc_memory(m), (unsigned long long)m->memory_limit);
        goto fail;
    }
    return m;
fail:
    tmt_mrc_free(&m);
    return NULL;
}

void tmt_mrc_free(struct tmt_mrc **mp)
{
    struct tmt_mrc *m = *mp;
    if (m == NULL)
        return;
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    free_caches(m);
    m->magic = 0;
    free(m);
    *mp = NULL;
}

void tmt_mrc_reset(struct tmt_mrc *m)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    free_caches(m);
    m->threshold = m->threshold0;
    m->weight = (double)MRC_P / (double)m->threshold;
    m->requests = m->sampled = 0;
    build_caches(m);
}

size_t tmt_mrc_memory(const struct tmt_mrc *m)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    size_t n = sizeof(*m);
    for (unsigned i = 0; i < m->n; i++) {
        if (m->sizes[i].p != NULL)
            n += tmt_pol_memory(m->sizes[i].p);
    }
    return n;
}

/* What the allocations could reach during the next sampled request. */
static size_t memory_next(const struct tmt_mrc *m)
{
    size_t n = tmt_mrc_memory(m);
    for (unsigned i = 0; i < m->n; i++)
        n += tmt_pol_growth(m->sizes[i].p);
    return n;
}

/* Takes the keys that left the sample out of p, ghosts included. */
static void drop_unsampled(const struct tmt_mrc *m, struct tmt_policy *p)
{
    /* Dropping a node frees it and moves no other node, so the walk by index stays valid. */
    for (uint32_t i = 1; i < p->n_nodes; i++) {
        struct pol_node *n = &p->nodes[i];
        if (tmt_pol_find(p, n->key) != i || sample_hash(m, n->key) < m->threshold)
            continue;
        if (n->queue == POL_Q_GHOST) {
            tmt_pol_unlink(p, i);
            tmt_pol_node_drop(p, i);
        } else {
            tmt_pol_remove(p, i);
        }
    }
}

static void lower_rate(struct tmt_mrc *m)
{
    TMT_ASSERT(m->threshold > 1);
    m->threshold -= TMT_MAX(m->threshold / 4, UINT64_C(1));
    m->weight = (double)MRC_P / (double)m->threshold;
    for (unsigned i = 0; i < m->n; i++) {
        struct mrc_size *s = &m->sizes[i];
        drop_unsampled(m, s->p);
        tmt_pol_set_band_weight(s->p, m->weight);
        tmt_pol_set_budget(s->p, mini_budget(m, s));
        tmt_pol_compact(s->p);
    }
}

void tmt_mrc_access(struct tmt_mrc *m, uint64_t key, uint64_t size, uint64_t now_s,
                    const struct tmt_policy_hint *hint)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    m->requests++;
    /* Session starts reach every miniature, sampled or not (tmt_pol_mini.all_starts). */
    if (hint != NULL && hint->position == 1 && hint->group != 0) {
        for (unsigned i = 0; i < m->n; i++)
            tmt_pol_observe_start(m->sizes[i].p, now_s, hint);
    }
    uint64_t h = sample_hash(m, key);
    if (h >= m->threshold)
        return;
    while (m->threshold > 1 && memory_next(m) > m->memory_limit) {
        lower_rate(m);
        if (h >= m->threshold)
            return;
    }
    m->sampled++;
    double w = m->weight;
    for (unsigned i = 0; i < m->n; i++) {
        struct mrc_size *s = &m->sizes[i];
        s->requests += w;
        s->bytes += w * (double)size;
        /* Larger than the largest object: never admitted, the policy does not see it. */
        if (size > s->max_object || !tmt_policy_access(s->p, key, size, now_s, hint)) {
            s->misses += w;
            s->missed_bytes += w * (double)size;
        }
    }
}

size_t tmt_mrc_curve(const struct tmt_mrc *m, struct tmt_mrc_point *out, size_t cap)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    for (unsigned i = 0; i < m->n && i < cap; i++) {
        const struct mrc_size *s = &m->sizes[i];
        out[i] = (struct tmt_mrc_point){
            .size_bytes = s->size_bytes,
            .miss_ratio = s->requests > 0 ? s->misses / s->requests : 0.0,
            .byte_miss_ratio = s->bytes > 0 ? s->missed_bytes / s->bytes : 0.0,
        };
    }
    return m->n;
}

int tmt_mrc_size_for(const struct tmt_mrc *m, double target, uint64_t *size_bytes)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    if (!(target >= 0 && target <= 1))
        return TMT_EINVAL;
    if (m->sampled == 0 || m->sizes[0].bytes <= 0)
        return TMT_EAGAIN;
    /* Hit ratios of the non-increasing envelope of the byte miss ratios. */
    double best_miss = 2.0, prev_hit = 0;
    for (unsigned i = 0; i < m->n; i++) {
        const struct mrc_size *s = &m->sizes[i];
        best_miss = TMT_MIN(best_miss, s->missed_bytes / s->bytes);
        double hit = 1.0 - best_miss;
        if (hit < target) {
            prev_hit = hit;
            continue;
        }
        if (i == 0) {
            *size_bytes = s->size_bytes;
            return 0;
        }
        /* prev_hit < target <= hit: interpolate in log(size). */
        double lo = log((double)m->sizes[i - 1].size_bytes), hi = log((double)s->size_bytes);
        double frac = (target - prev_hit) / (hit - prev_hit);
        double v = ceil(exp(lo + frac * (hi - lo)));
        uint64_t x = v >= (double)s->size_bytes ? s->size_bytes : (uint64_t)v;
        *size_bytes = TMT_MAX(x, m->sizes[i - 1].size_bytes);
        return 0;
    }
    *size_bytes = m->sizes[m->n - 1].size_bytes;
    return TMT_ENOTFOUND;
}

double tmt_mrc_rate(const struct tmt_mrc *m)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    return (double)m->threshold / (double)MRC_P;
}

uint64_t tmt_mrc_requests(const struct tmt_mrc *m)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    return m->requests;
}

uint64_t tmt_mrc_sampled(const struct tmt_mrc *m)
{
    TMT_CHECK_OBJ(m, MRC_MAGIC);
    return m->sampled;
}
