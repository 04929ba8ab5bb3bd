/*
 * Unit tests of tomato-load's histogram (bucket layout, quantiles within the bucket error,
 * merging) and Zipf sampler (probabilities and sampled frequencies with a seed).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tmt/load_lib.h"

static void test_buckets(void **state)
{
    (void)state;
    uint64_t vals[] = {0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456789, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        size_t b = tmt_hist_bucket(vals[i]);
        assert_true(b < TMT_HIST_BUCKETS);
        assert_true(tmt_hist_bucket_low(b) <= vals[i]);
        if (b + 1 < TMT_HIST_BUCKETS)
            assert_true(tmt_hist_bucket_low(b + 1) > vals[i]);
    }
    assert_int_equal(tmt_hist_bucket(31), 31);
    assert_int_not_equal(tmt_hist_bucket(64), tmt_hist_bucket(66));
}

static void test_quantiles(void **state)
{
    (void)state;
    struct tmt_hist *h = calloc(1, sizeof(*h));
    assert_int_equal(tmt_hist_quantile(h, 0.5), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        tmt_hist_record(h, v);
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 100000);
    double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000;
        double got = (double)tmt_hist_quantile(h, qs[i]);
        assert_true(fabs(got - want) / want < 0.02);
    }
    assert_int_equal(tmt_hist_quantile(h, 1.0), 100000);
    /* small values are exact */
    struct tmt_hist *s = calloc(1, sizeof(*s));
    for (uint64_t v = 1; v <= 20; v++)
        tmt_hist_record(s, v);
    assert_int_equal(tmt_hist_quantile(s, 0.5), 10);
    assert_int_equal(tmt_hist_quantile(s, 0.9), 18);
    /* merging two halves gives the whole */
    struct tmt_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    for (uint64_t v = 1; v <= 100000; v++)
        tmt_hist_record(v % 2 ? a : b, v);
    tmt_hist_merge(a, b);
    assert_memory_equal(a, h, sizeof(*h));
    /* a skewed distribution: 99 % fast, 1 % slow */
    struct tmt_hist *k = calloc(1, sizeof(*k));
    for (int i = 0; i < 9900; i++)
        tmt_hist_record(k, 1000);
    for (int i = 0; i < 100; i++)
        tmt_hist_record(k, 500000);
    assert_true(tmt_hist_quantile(k, 0.99) < 1100);
    assert_true(tmt_hist_quantile(k, 0.999) > 480000);
    free(h);
    free(s);
    free(a);
    free(b);
    free(k);
}

static void test_zipf(void **state)
{
    (void)state;
    size_t n = 100;
    struct tmt_zipf *z = tmt_zipf_new(n, 1.0);
    assert_non_null(z);
    double h = 0;
    for (size_t k = 1; k <= n; k++)
        h += 1.0 / (double)k;
    assert_true(fabs(tmt_zipf_prob(z, 0) - 1 / h) < 1e-9);
    assert_true(fabs(tmt_zipf_prob(z, 9) - 0.1 / h) < 1e-9);
    struct tmt_rng r;
    tmt_rng_seed(&r, 42);
    unsigned counts[100] = {0};
    int draws = 200000;
    for (int i = 0; i < draws; i++) {
        size_t k = tmt_zipf_rank(z, tmt_rng_unit(&r));
        assert_true(k < n);
        counts[k]++;
    }
    /* rank 0 within 2 % of its probability; rank 0 about twice rank 1, ten times rank 9 */
    double f0 = (double)counts[0] / draws;
    assert_true(fabs(f0 - 1 / h) / (1 / h) < 0.02);
    assert_true(fabs((double)counts[0] / counts[1] - 2.0) < 0.1);
    assert_true(fabs((double)counts[0] / counts[9] - 10.0) < 0.8);
    /* the first n ranks only */
    for (int i = 0; i < 1000; i++)
        assert_true(tmt_zipf_rank_below(z, tmt_rng_unit(&r), 5) < 5);
    tmt_zipf_free(&z);
    assert_null(z);
    /* alpha 0 is uniform */
    z = tmt_zipf_new(4, 0);
    assert_true(fabs(tmt_zipf_prob(z, 3) - 0.25) < 1e-12);
    tmt_zipf_free(&z);
    /* the same seed, the same draws */
    struct tmt_rng x, y;
    tmt_rng_seed(&x, 7);
    tmt_rng_seed(&y, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(tmt_rng_next(&x), tmt_rng_next(&y));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_zipf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
