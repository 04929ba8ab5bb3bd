/*
 * Unit tests of the tier model (cache_tiers.h): placement, promotion, demotion, packing from
 * below after an eviction, restore and removal on hand-made sequences; and for every policy, a
 * long random run checked against a shadow copy kept only from the reported moves (what
 * tomato-edge does with its stores), with every tier within its budget after every call.
 */
#include "tmt/cache_tiers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define SHADOW_KEYS 512

/* Where the moves say each key is; keys are small integers. */
struct shadow {
    enum tmt_tier where[SHADOW_KEYS];
    uint64_t size[SHADOW_KEYS];
    uint64_t bytes[TMT_TIER_N];
    unsigned moves, bad;
};

static void shadow_init(struct shadow *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < SHADOW_KEYS; i++)
        s->where[i] = TMT_TIER_NONE;
}

static void on_move(void *arg, uint64_t key, uint64_t size, enum tmt_tier from, enum tmt_tier to)
{
    struct shadow *s = arg;
    s->moves++;
    if (key >= SHADOW_KEYS || s->where[key] != from || from == to) {
        s->bad++;
        return;
    }
    if (from != TMT_TIER_NONE)
        s->bytes[from] -= size;
    if (to != TMT_TIER_NONE)
        s->bytes[to] += size;
    s->where[key] = to;
    s->size[key] = size;
}

static struct tmt_tiers *mk(enum tmt_policy_kind kind, uint64_t hot, uint64_t warm, uint64_t cold,
                            struct shadow *s)
{
    shadow_init(s);
    struct tmt_tiers_opts o = {
        .policy = kind, .budget = {hot, warm, cold}, .on_move = on_move, .arg = s};
    struct tmt_tiers *t = tmt_tiers_new(&o);
    assert_non_null(t);
    return t;
}

static enum tmt_tier get(struct tmt_tiers *t, uint64_t key, uint64_t size)
{
    return tmt_tiers_access(t, key, size, 0, NULL);
}

/* LRU, tiers of 200/200/200, objects of 100: two per tier, newest on top. */
static void test_lru_place_and_promote(void **state)
{
    (void)state;
    struct shadow s;
    struct tmt_tiers *t = mk(TMT_POLICY_LRU, 200, 200, 200, &s);
    for (uint64_t k = 1; k <= 6; k++)
        assert_int_equal(get(t, k, 100), TMT_TIER_NONE);
    /* 6 5 | 4 3 | 2 1 */
    assert_int_equal(tmt_tiers_where(t, 6), TMT_TIER_HOT);
    assert_int_equal(tmt_tiers_where(t, 5), TMT_TIER_HOT);
    assert_int_equal(tmt_tiers_where(t, 4), TMT_TIER_WARM);
    assert_int_equal(tmt_tiers_where(t, 3), TMT_TIER_WARM);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_COLD);
    assert_int_equal(tmt_tiers_where(t, 1), TMT_TIER_COLD);
    /* A cold hit promotes 1 to hot; 5 goes to warm, 3 to cold. */
    assert_int_equal(get(t, 1, 100), TMT_TIER_COLD);
    assert_int_equal(tmt_tiers_where(t, 1), TMT_TIER_HOT);
    assert_int_equal(tmt_tiers_where(t, 5), TMT_TIER_WARM);
    assert_int_equal(tmt_tiers_where(t, 3), TMT_TIER_COLD);
    assert_int_equal(get(t, 1, 100), TMT_TIER_HOT);
    /* A new object: LRU evicts 2, the least recent, from cold. */
    assert_int_equal(get(t, 7, 100), TMT_TIER_NONE);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_NONE);
    assert_int_equal(s.bad, 0);
    for (unsigned k = 0; k < TMT_TIER_N; k++) {
        assert_int_equal(s.bytes[k], tmt_tiers_bytes(t, (enum tmt_tier)k));
        assert_int_equal(tmt_tiers_bytes(t, (enum tmt_tier)k), 200);
    }
    tmt_tiers_free(&t);
    assert_null(t);
}

/* Removing a hot object pulls the most recent warm one up, and a cold one into warm. */
static void test_pull_up_after_removal(void **state)
{
    (void)state;
    struct shadow s;
    struct tmt_tiers *t = mk(TMT_POLICY_LRU, 200, 200, 200, &s);
    for (uint64_t k = 1; k <= 6; k++)
        get(t, k, 100);
    assert_int_equal(tmt_tiers_remove(t, 6), TMT_TIER_HOT);
    s.where[6] = TMT_TIER_NONE; /* removal is not reported */
    s.bytes[TMT_TIER_HOT] -= 100;
    assert_int_equal(tmt_tiers_where(t, 6), TMT_TIER_NONE);
    /* The next call packs: 4 goes up to hot, 2 up to warm. */
    get(t, 5, 100);
    assert_int_equal(tmt_tiers_where(t, 4), TMT_TIER_HOT);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_WARM);
    assert_int_equal(tmt_tiers_bytes(t, TMT_TIER_HOT), 200);
    assert_int_equal(tmt_tiers_bytes(t, TMT_TIER_COLD), 100);
    assert_int_equal(tmt_tiers_remove(t, 99), TMT_TIER_NONE);
    assert_int_equal(s.bad, 0);
    tmt_tiers_free(&t);
}

/* Objects larger than hot skip it; larger than every tier (or max_object) are never kept. */
static void test_sizes(void **state)
{
    (void)state;
    struct shadow s;
    struct tmt_tiers *t = mk(TMT_POLICY_LRU, 100, 300, 300, &s);
    get(t, 1, 250);
    assert_int_equal(tmt_tiers_where(t, 1), TMT_TIER_WARM);
    assert_int_equal(get(t, 1, 250), TMT_TIER_WARM);
    get(t, 2, 400);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_NONE);
    get(t, 3, 50);
    assert_int_equal(tmt_tiers_where(t, 3), TMT_TIER_HOT);
    assert_int_equal(s.bad, 0);
    tmt_tiers_free(&t);

    struct tmt_tiers_opts o = {
        .policy = TMT_POLICY_LRU, .budget = {100, 100, 100}, .max_object = 60};
    t = tmt_tiers_new(&o);
    assert_non_null(t);
    get(t, 1, 61);
    assert_int_equal(tmt_tiers_where(t, 1), TMT_TIER_NONE);
    get(t, 2, 60);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_HOT);
    tmt_tiers_free(&t);
    /* The reserve of twice max_object must leave room. */
    o.budget[1] = o.budget[2] = 0;
    assert_null(tmt_tiers_new(&o));
    o.policy = (enum tmt_policy_kind)42;
    o.max_object = 0;
    assert_null(tmt_tiers_new(&o));
}

/* Restore puts objects back least recent first; what does not fit is refused. */
static void test_restore(void **state)
{
    (void)state;
    struct shadow s;
    struct tmt_tiers *t = mk(TMT_POLICY_LRU, 200, 200, 200, &s);
    assert_true(tmt_tiers_restore(t, 1, 100, TMT_TIER_WARM, 0, NULL));
    assert_true(tmt_tiers_restore(t, 2, 100, TMT_TIER_COLD, 0, NULL));
    assert_false(tmt_tiers_restore(t, 1, 100, TMT_TIER_COLD, 0, NULL)); /* already there */
    assert_false(tmt_tiers_restore(t, 3, 300, TMT_TIER_COLD, 0, NULL)); /* too big */
    assert_int_equal(tmt_tiers_where(t, 1), TMT_TIER_WARM);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_COLD);
    assert_int_equal(s.moves, 0);
    assert_int_equal(get(t, 2, 100), TMT_TIER_COLD);
    assert_int_equal(tmt_tiers_where(t, 2), TMT_TIER_HOT);
    tmt_tiers_free(&t);
}

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Every policy, random sizes and keys: moves are consistent and every budget holds. */
static void test_random_invariants(void **state)
{
    (void)state;
    static const enum tmt_policy_kind kinds[] = {TMT_POLICY_LRU, TMT_POLICY_S3FIFO,
                                                 TMT_POLICY_SIEVE, TMT_POLICY_SEGPOOL};
    for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
        struct shadow s;
        struct tmt_tiers *t = mk(kinds[ki], 3000, 5000, 9000, &s);
        uint64_t x = 88172645463325252ull + ki;
        uint64_t sizes[SHADOW_KEYS];
        for (unsigned k = 0; k < SHADOW_KEYS; k++)
            sizes[k] = 1 + rng(&x) % 1200;
        unsigned hits = 0;
        for (unsigned n = 0; n < 40000; n++) {
            uint64_t r = rng(&x);
            uint64_t key = (r % 7 == 0) ? r % SHADOW_KEYS : r % 64; /* a hot set and a tail */
            if (r % 97 == 0) {
                enum tmt_tier was = tmt_tiers_remove(t, key);
                assert_int_equal(was, s.where[key]);
                if (was != TMT_TIER_NONE) {
                    s.bytes[was] -= s.size[key];
                    s.where[key] = TMT_TIER_NONE;
                }
                continue;
            }
            enum tmt_tier before = s.where[key];
            enum tmt_tier got = tmt_tiers_access(t, key, sizes[key], n / 100, NULL);
            assert_int_equal(got, before);
            hits += got != TMT_TIER_NONE;
            assert_int_equal(s.bad, 0);
            for (unsigned k = 0; k < TMT_TIER_N; k++) {
                assert_int_equal(s.bytes[k], tmt_tiers_bytes(t, (enum tmt_tier)k));
                assert_true(tmt_tiers_bytes(t, (enum tmt_tier)k) <=
                            tmt_tiers_budget(t, (enum tmt_tier)k));
            }
            assert_int_equal(tmt_tiers_where(t, key), s.where[key]);
        }
        assert_true(hits > 10000);
        tmt_tiers_free(&t);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tmt_tier_name(TMT_TIER_HOT), "hot");
    assert_string_equal(tmt_tier_name(TMT_TIER_COLD), "cold");
    assert_string_equal(tmt_tier_name(TMT_TIER_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_place_and_promote),
        cmocka_unit_test(test_pull_up_after_removal),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_random_invariants),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
