/*
 * Unit tests of the miss-ratio-curve estimator (cache_mrc.h), on traces generated here: a
 * VOD-like stream (assets of Zipf popularity read in order by sessions that stop early) and a
 * loop. At rate 1 a miniature simulation is the exact one, so the estimate must equal the
 * tiered cache's figures (cache_tiers.h, as tomato-cachesim replays them) for every policy; at
 * lower rates it must stay close; the memory bound must hold at every request; the size for a
 * target must grow with the target and lie between the points that bracket it; sampling must
 * depend on the seed only.
 */
#include "tmt/cache_mrc.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tmt/cache_tiers.h"

#define ZIPF_S 0.8

struct req {
    uint64_t key, size, time_s;
    struct tmt_policy_hint hint;
};

struct trace {
    struct req *r;
    size_t n;
    uint64_t footprint;
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Object sizes from 50 KB to 1 MB, fixed per key. */
static uint64_t obj_size(uint64_t key)
{
    return 50000 + tmt_mix64(key) % 950000;
}

/*
 * n requests: sessions pick one of n_assets assets with probability ~ rank^-0.8, a rendition
 * of six, and read segments 1, 2, ... until they stop (a fifth stop after each segment).
 */
static struct trace make_vod(size_t n, unsigned n_assets, uint64_t seed)
{
    struct trace t = {calloc(n, sizeof(struct req)), n, 0};
    assert_non_null(t.r);
    double h = 0;
    for (unsigned a = 1; a <= n_assets; a++)
        h += pow(a, -ZIPF_S);
    uint64_t s = seed | 1, now = 0;
    size_t i = 0;
    while (i < n) {
        double u = (double)(rng_next(&s) % 1000000) / 1e6 * h, acc = 0;
        unsigned asset = 1;
        while (asset < n_assets && (acc += pow(asset, -ZIPF_S)) < u)
            asset++;
        unsigned rung = (unsigned)(rng_next(&s) % 6);
        for (unsigned seg = 1; i < n; seg++) {
            uint64_t key = (uint64_t)asset * 1000000 + rung * 10000 + seg;
            t.r[i++] = (struct req){key, obj_size(key), now, {asset, seg}};
            if (rng_next(&s) % 5 == 0)
                break;
        }
        now += rng_next(&s) % 3;
    }
    return t;
}

/* n requests cycling over n_objs objects of 100 KB. */
static struct trace make_loop(size_t n, unsigned n_objs)
{
    struct trace t = {calloc(n, sizeof(struct req)), n, 0};
    assert_non_null(t.r);
    for (size_t i = 0; i < n; i++)
        t.r[i] = (struct req){1000 + i % n_objs, 100000, i / 100, {0, 0}};
    return t;
}

static uint64_t footprint(const struct trace *t)
{
    /* Keys are small enough to mark in a bitmap of the key range. */
    uint64_t max = 0, sum = 0;
    for (size_t i = 0; i < t->n; i++)
        max = t->r[i].key > max ? t->r[i].key : max;
    unsigned char *seen = calloc(max + 1, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < t->n; i++) {
        if (!seen[t->r[i].key]) {
            seen[t->r[i].key] = 1;
            sum += t->r[i].size;
        }
    }
    free(seen);
    return sum;
}

struct exact {
    double miss_ratio, byte_miss_ratio;
};

/* The tiered cache tomato-cachesim replays at `size` with its default split. */
static struct exact exact_replay(const struct trace *t, enum tmt_policy_kind kind, uint64_t size)
{
    struct tmt_tiers_opts o = {.policy = kind};
    o.max_object = size / 64 < (UINT64_C(16) << 20) ? size / 64 : UINT64_C(16) << 20;
    o.budget[TMT_TIER_HOT] = size / 10;
    o.budget[TMT_TIER_WARM] = size / 10 * 3;
    o.budget[TMT_TIER_COLD] = size - o.budget[TMT_TIER_HOT] - o.budget[TMT_TIER_WARM];
    struct tmt_tiers *tiers = tmt_tiers_new(&o);
    assert_non_null(tiers);
    uint64_t misses = 0, missed = 0, bytes = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct req *r = &t->r[i];
        bytes += r->size;
        if (tmt_tiers_access(tiers, r->key, r->size, r->time_s, &r->hint) == TMT_TIER_NONE) {
            misses++;
            missed += r->size;
        }
    }
    tmt_tiers_free(&tiers);
    return (struct exact){(double)misses / (double)t->n, (double)missed / (double)bytes};
}

static struct tmt_mrc *estimate(const struct trace *t, const struct tmt_mrc_opts *o)
{
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_mrc *m = tmt_mrc_new(o, &err);
    assert_non_null(m);
    for (size_t i = 0; i < t->n; i++)
        tmt_mrc_access(m, t->r[i].key, t->r[i].size, t->r[i].time_s, &t->r[i].hint);
    assert_int_equal(tmt_mrc_requests(m), t->n);
    return m;
}

static const double fractions[] = {0.02, 0.1, 0.3};

static void sizes_of(const struct trace *t, uint64_t *sizes)
{
    for (size_t k = 0; k < 3; k++)
        sizes[k] = (uint64_t)((double)t->footprint * fractions[k]);
}

/* Rate 1: every miniature cache is the full cache, for every policy. */
static void test_rate_one_is_exact(void **state)
{
    (void)state;
    struct trace t = make_vod(60000, 300, 7);
    t.footprint = footprint(&t);
    uint64_t sizes[3];
    sizes_of(&t, sizes);
    for (int kind = TMT_POLICY_LRU; kind <= TMT_POLICY_SEGPOOL; kind++) {
        struct tmt_mrc_opts o = {.policy = (enum tmt_policy_kind)kind,
                                 .sizes = sizes,
                                 .n_sizes = 3,
                                 .sample_rate = 1.0,
                                 .bands_log2 = 18, /* the full policy's table */
                                 .memory_limit_bytes = UINT64_C(1) << 30};
        struct tmt_mrc *m = estimate(&t, &o);
        assert_int_equal(tmt_mrc_sampled(m), t.n);
        assert_true(tmt_mrc_rate(m) == 1.0);
        struct tmt_mrc_point pts[3];
        assert_int_equal(tmt_mrc_curve(m, pts, 3), 3);
        for (size_t k = 0; k < 3; k++) {
            struct exact e = exact_replay(&t, (enum tmt_policy_kind)kind, sizes[k]);
            assert_int_equal(pts[k].size_bytes, sizes[k]);
            assert_true(fabs(pts[k].miss_ratio - e.miss_ratio) < 1e-12);
            assert_true(fabs(pts[k].byte_miss_ratio - e.byte_miss_ratio) < 1e-12);
            /* Not a trivial curve: the sizes differ. */
            assert_true(e.byte_miss_ratio > 0.05 && e.byte_miss_ratio < 0.99);
        }
        assert_true(pts[0].byte_miss_ratio > pts[2].byte_miss_ratio);
        tmt_mrc_free(&m);
        assert_null(m);
    }
    free(t.r);
}

/* A loop larger than the cache misses always under LRU; one that fits misses once per object. */
static void test_loop_known_answer(void **state)
{
    (void)state;
    struct trace t = make_loop(20000, 200); /* 20 MB of objects */
    uint64_t sizes[2] = {10000000, 40000000};
    struct tmt_mrc_opts o = {
        .policy = TMT_POLICY_LRU, .sizes = sizes, .n_sizes = 2, .sample_rate = 1.0};
    struct tmt_mrc *m = estimate(&t, &o);
    struct tmt_mrc_point pts[2];
    assert_int_equal(tmt_mrc_curve(m, pts, 2), 2);
    assert_true(pts[0].miss_ratio == 1.0);
    assert_true(fabs(pts[1].miss_ratio - 200.0 / 20000) < 1e-12);
    tmt_mrc_free(&m);
    free(t.r);
}

/*
 * Rate 0.25 on a stream of many objects: close to the exact figures. One sample's error is
 * dominated by whether the few most requested objects fell in it; the mean over four seeds is
 * what is checked (each seed within a wider bound).
 */
static void test_low_rate_close(void **state)
{
    (void)state;
    struct trace t = make_vod(300000, 3000, 11);
    t.footprint = footprint(&t);
    uint64_t sizes[3];
    sizes_of(&t, sizes);
    const enum tmt_policy_kind kinds[] = {TMT_POLICY_LRU, TMT_POLICY_SEGPOOL};
    /* segpool's miniature caches come out slightly pessimistic (a band's count from a sample). */
    const double tolerance[] = {0.015, 0.04};
    for (size_t k = 0; k < 2; k++) {
        double mean[3] = {0, 0, 0};
        struct exact e[3];
        for (size_t j = 0; j < 3; j++)
            e[j] = exact_replay(&t, kinds[k], sizes[j]);
        for (uint64_t seed = 1; seed <= 4; seed++) {
            struct tmt_mrc_opts o = {.policy = kinds[k],
                                     .sizes = sizes,
                                     .n_sizes = 3,
                                     .sample_rate = 0.25,
                                     .seed = seed};
            struct tmt_mrc *m = estimate(&t, &o);
            double rate = (double)tmt_mrc_sampled(m) / (double)t.n;
            assert_true(rate > 0.2 && rate < 0.3);
            struct tmt_mrc_point pts[3];
            tmt_mrc_curve(m, pts, 3);
            for (size_t j = 0; j < 3; j++) {
                mean[j] += pts[j].byte_miss_ratio / 4;
                assert_true(fabs(pts[j].byte_miss_ratio - e[j].byte_miss_ratio) < 0.1);
            }
            tmt_mrc_free(&m);
        }
        for (size_t j = 0; j < 3; j++) {
            print_message("%s %.2f: estimate %.4f exact %.4f\n", tmt_policy_kind_name(kinds[k]),
                          fractions[j], mean[j], e[j].byte_miss_ratio);
            assert_true(fabs(mean[j] - e[j].byte_miss_ratio) < tolerance[k]);
        }
    }
    free(t.r);
}

/* A small bound lowers the rate; the allocations never pass it, the curve stays usable. */
static void test_memory_bound(void **state)
{
    (void)state;
    struct trace t = make_vod(200000, 3000, 13);
    t.footprint = footprint(&t);
    const uint64_t limit = 640 * 1024;
    struct tmt_mrc_opts o = {.policy = TMT_POLICY_SEGPOOL,
                             .budget_bytes = t.footprint / 10,
                             .sample_rate = 0.5,
                             .memory_limit_bytes = limit,
                             .bands_log2 = 8};
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_mrc *m = tmt_mrc_new(&o, &err);
    assert_non_null(m);
    size_t peak = 0;
    for (size_t i = 0; i < t.n; i++) {
        tmt_mrc_access(m, t.r[i].key, t.r[i].size, t.r[i].time_s, &t.r[i].hint);
        size_t mem = tmt_mrc_memory(m);
        peak = mem > peak ? mem : peak;
    }
    assert_true(peak <= limit);
    assert_true(peak > limit / 2); /* the bound, not the trace, was the limit */
    assert_true(tmt_mrc_rate(m) < 0.5);
    struct tmt_mrc_point pts[TMT_MRC_DEFAULT_SIZES];
    assert_int_equal(tmt_mrc_curve(m, pts, TMT_MRC_DEFAULT_SIZES), TMT_MRC_DEFAULT_SIZES);
    for (size_t k = 0; k < TMT_MRC_DEFAULT_SIZES; k++) {
        if (fabs((double)pts[k].size_bytes / (double)o.budget_bytes - 1.0) < 0.2) {
            struct exact e = exact_replay(&t, TMT_POLICY_SEGPOOL, pts[k].size_bytes);
            assert_true(fabs(pts[k].byte_miss_ratio - e.byte_miss_ratio) < 0.15);
        }
    }
    /* Without the bound the same stream takes more. */
    o.memory_limit_bytes = UINT64_C(1) << 30;
    struct tmt_mrc *big = estimate(&t, &o);
    assert_true(tmt_mrc_memory(big) > limit);
    assert_true(tmt_mrc_rate(big) == 0.5);
    tmt_mrc_free(&big);
    /* A bound below the empty caches is refused. */
    o.memory_limit_bytes = 4096;
    assert_null(tmt_mrc_new(&o, &err));
    assert_int_equal(err.code, TMT_EINVAL);
    tmt_mrc_free(&m);
    free(t.r);
}

static void test_size_for(void **state)
{
    (void)state;
    struct trace t = make_vod(100000, 1000, 17);
    t.footprint = footprint(&t);
    struct tmt_mrc_opts o = {
        .policy = TMT_POLICY_SEGPOOL, .budget_bytes = t.footprint / 10, .sample_rate = 0.2};
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_mrc *m = tmt_mrc_new(&o, &err);
    assert_non_null(m);
    uint64_t size;
    assert_int_equal(tmt_mrc_size_for(m, 0.5, &size), TMT_EAGAIN);
    for (size_t i = 0; i < t.n; i++)
        tmt_mrc_access(m, t.r[i].key, t.r[i].size, t.r[i].time_s, &t.r[i].hint);
    assert_int_equal(tmt_mrc_size_for(m, -0.1, &size), TMT_EINVAL);
    assert_int_equal(tmt_mrc_size_for(m, 1.0, &size), TMT_ENOTFOUND);
    struct tmt_mrc_point pts[TMT_MRC_DEFAULT_SIZES];
    size_t n = tmt_mrc_curve(m, pts, TMT_MRC_DEFAULT_SIZES);
    assert_int_equal(size, pts[n - 1].size_bytes);
    /* The envelope's hit ratios. */
    double env[TMT_MRC_DEFAULT_SIZES], best = 2;
    for (size_t k = 0; k < n; k++) {
        best = pts[k].byte_miss_ratio < best ? pts[k].byte_miss_ratio : best;
        env[k] = 1 - best;
    }
    assert_true(env[n - 1] > env[0] + 0.2);
    uint64_t prev = 0;
    unsigned answered = 0;
    for (double target = 0; target <= 1.0; target += 0.005) {
        int r = tmt_mrc_size_for(m, target, &size);
        if (r == TMT_ENOTFOUND) {
            assert_true(target > env[n - 1]);
            continue;
        }
        assert_int_equal(r, 0);
        answered++;
        assert_true(size >= prev);
        prev = size;
        if (target <= env[0]) {
            assert_int_equal(size, pts[0].size_bytes);
            continue;
        }
        /* Between the last point short of the target and the first that reaches it. */
        size_t k = 1;
        while (env[k] < target)
            k++;
        assert_true(env[k - 1] < target);
        assert_true(size >= pts[k - 1].size_bytes && size <= pts[k].size_bytes);
    }
    assert_true(answered > 50);
    /* After a reset nothing is known again. */
    tmt_mrc_reset(m);
    assert_int_equal(tmt_mrc_sampled(m), 0);
    assert_int_equal(tmt_mrc_size_for(m, 0.5, &size), TMT_EAGAIN);
    tmt_mrc_free(&m);
    free(t.r);
}

static void test_seed_determinism(void **state)
{
    (void)state;
    struct trace t = make_vod(50000, 500, 19);
    t.footprint = footprint(&t);
    struct tmt_mrc_opts o = {.policy = TMT_POLICY_SEGPOOL,
                             .budget_bytes = t.footprint / 10,
                             .sample_rate = 0.1,
                             .seed = 42};
    struct tmt_mrc *a = estimate(&t, &o), *b = estimate(&t, &o);
    o.seed = 43;
    struct tmt_mrc *c = estimate(&t, &o);
    struct tmt_mrc_point pa[TMT_MRC_DEFAULT_SIZES], pb[TMT_MRC_DEFAULT_SIZES],
        pc[TMT_MRC_DEFAULT_SIZES];
    tmt_mrc_curve(a, pa, TMT_MRC_DEFAULT_SIZES);
    tmt_mrc_curve(b, pb, TMT_MRC_DEFAULT_SIZES);
    tmt_mrc_curve(c, pc, TMT_MRC_DEFAULT_SIZES);
    assert_int_equal(tmt_mrc_sampled(a), tmt_mrc_sampled(b));
    assert_memory_equal(pa, pb, sizeof(pa));
    assert_int_not_equal(tmt_mrc_sampled(a), tmt_mrc_sampled(c));
    assert_true(memcmp(pa, pc, sizeof(pa)) != 0);
    /* A reset and the same stream again give the same curve. */
    tmt_mrc_reset(b);
    for (size_t i = 0; i < t.n; i++)
        tmt_mrc_access(b, t.r[i].key, t.r[i].size, t.r[i].time_s, &t.r[i].hint);
    tmt_mrc_curve(b, pb, TMT_MRC_DEFAULT_SIZES);
    assert_memory_equal(pa, pb, sizeof(pa));
    tmt_mrc_free(&a);
    tmt_mrc_free(&b);
    tmt_mrc_free(&c);
    free(t.r);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_mrc_opts o = {.policy = TMT_POLICY_LRU, .budget_bytes = 1 << 30};
    o.sample_rate = 1.5;
    assert_null(tmt_mrc_new(&o, &err));
    o.sample_rate = 0.01;
    o.policy = (enum tmt_policy_kind)99;
    assert_null(tmt_mrc_new(&o, &err));
    o.policy = TMT_POLICY_LRU;
    o.n_sizes = TMT_MRC_MAX_SIZES + 1;
    assert_null(tmt_mrc_new(&o, &err));
    o.n_sizes = 0;
    o.budget_bytes = 0;
    assert_null(tmt_mrc_new(&o, &err));
    /* Sizes that leave nothing beyond twice the largest object are left out, or refused. */
    uint64_t sizes[2] = {1000, 1 << 30};
    o = (struct tmt_mrc_opts){
        .policy = TMT_POLICY_LRU, .sizes = sizes, .n_sizes = 2, .max_object = 16 << 20};
    struct tmt_mrc *m = tmt_mrc_new(&o, &err);
    assert_non_null(m);
    struct tmt_mrc_point p[2];
    assert_int_equal(tmt_mrc_curve(m, p, 2), 1);
    assert_int_equal(p[0].size_bytes, 1 << 30);
    tmt_mrc_free(&m);
    o.n_sizes = 1;
    assert_null(tmt_mrc_new(&o, &err));
    tmt_mrc_free(&m); /* NULL is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_one_is_exact), cmocka_unit_test(test_loop_known_answer),
        cmocka_unit_test(test_low_rate_close),    cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_size_for),          cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
