/*
 * Unit tests of the edge cache's eviction policies (edge/cache): outcomes of hand-made request
 * sequences derived by hand for LRU, SIEVE and S3-FIFO, and for every policy the invariants of
 * cache_policy.h: budget held, evictions reported with their sizes, oversized objects refused.
 */
#include "tmt/cache_policy.h"
#include "policy_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define MAX_EVICTED 4096

struct evictions {
    uint64_t keys[MAX_EVICTED];
    size_t n;
    uint64_t bytes;
};

static void on_evict(void *arg, uint64_t key, uint64_t size)
{
    struct evictions *ev = arg;
    if (ev->n < MAX_EVICTED)
        ev->keys[ev->n] = key;
    ev->n++;
    ev->bytes += size;
}

static bool get(struct tmt_policy *p, uint64_t key, uint64_t size)
{
    return tmt_policy_access(p, key, size, 0, NULL);
}

/* budget 300, objects of 100: the least recently used leaves. */
static void test_lru_sequence(void **state)
{
    (void)state;
    struct evictions ev = {0};
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_LRU, 300, on_evict, &ev);
    assert_non_null(p);
    assert_false(get(p, 1, 100));
    assert_false(get(p, 2, 100));
    assert_false(get(p, 3, 100));
    assert_true(get(p, 1, 100));  /* recency: 1 3 2 */
    assert_false(get(p, 4, 100)); /* evicts 2 */
    assert_false(get(p, 2, 100)); /* evicts 3 */
    assert_true(get(p, 1, 100));  /* 1 2 4 */
    assert_false(get(p, 3, 100)); /* evicts 4 */
    assert_true(get(p, 2, 100));
    assert_int_equal(ev.n, 3);
    assert_int_equal(ev.keys[0], 2);
    assert_int_equal(ev.keys[1], 3);
    assert_int_equal(ev.keys[2], 4);
    assert_int_equal(ev.bytes, 300);
    assert_int_equal(tmt_policy_bytes(p), 300);
    assert_int_equal(tmt_policy_objects(p), 3);
    tmt_policy_free(&p);
    assert_null(p);
}

/*
 * budget 300, objects of 100. Queue (new..old) 3 2 1, 1 and 3 visited. Admitting 4: the hand
 * starts at the tail, clears 1, evicts 2, stops on 3. Queue 4 3 1. Admitting 5: clears 3,
 * evicts 4 (new and unvisited: LRU would evict 1), hand falls off the head. Queue 5 3 1.
 * Admitting 6: the hand restarts at the tail and evicts 1 (its bit was cleared).
 */
static void test_sieve_sequence(void **state)
{
    (void)state;
    struct evictions ev = {0};
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_SIEVE, 300, on_evict, &ev);
    assert_false(get(p, 1, 100));
    assert_false(get(p, 2, 100));
    assert_false(get(p, 3, 100));
    assert_true(get(p, 1, 100));
    assert_true(get(p, 3, 100));
    assert_false(get(p, 4, 100));
    assert_false(get(p, 5, 100));
    assert_false(get(p, 6, 100));
    assert_int_equal(ev.n, 3);
    assert_int_equal(ev.keys[0], 2);
    assert_int_equal(ev.keys[1], 4);
    assert_int_equal(ev.keys[2], 1);
    assert_true(get(p, 3, 100));
    assert_true(get(p, 5, 100));
    assert_true(get(p, 6, 100));
    assert_false(get(p, 4, 100)); /* re-access after eviction: a miss, admitted again */
    assert_int_equal(tmt_policy_bytes(p), 300);
    tmt_policy_free(&p);
}

/*
 * S3-FIFO, budget 1000: small 100, main 900, ghost 900; objects of 50. Warm-up: 1 and 2 fill
 * small, 3..20 go to main (small full, nothing evicted yet). A scan of 100 new keys only churns
 * small (each victim is small's oldest, unhit, and goes to the ghost), so main's 3..20 all hit
 * afterwards, where LRU keeps none of them. A missed key still in the ghost goes to main.
 */
static void test_s3fifo_scan_and_ghost(void **state)
{
    (void)state;
    struct evictions ev = {0};
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_S3FIFO, 1000, on_evict, &ev);
    struct tmt_policy *lru = tmt_policy_new(TMT_POLICY_LRU, 1000, NULL, NULL);
    for (uint64_t k = 1; k <= 20; k++) {
        assert_false(get(p, k, 50));
        assert_false(get(lru, k, 50));
    }
    assert_int_equal(tmt_policy_bytes(p), 1000);
    assert_int_equal(ev.n, 0);
    for (uint64_t k = 100; k < 200; k++) {
        assert_false(get(p, k, 50));
        assert_false(get(lru, k, 50));
    }
    /* 1, 2, then 100..197 left through small; 198 and 199 are in small. */
    assert_int_equal(ev.n, 100);
    assert_int_equal(ev.keys[0], 1);
    assert_int_equal(ev.keys[1], 2);
    assert_int_equal(ev.keys[99], 197);
    for (uint64_t k = 3; k <= 20; k++) {
        assert_true(get(p, k, 50));
        assert_false(tmt_policy_contains(lru, k));
    }
    /* 190 is in the ghost (the last 18 victims: 180..197): it enters main, and evicting for it
     * takes small's oldest, 198. */
    assert_false(tmt_policy_contains(p, 190));
    assert_false(get(p, 190, 50));
    assert_true(tmt_policy_contains(p, 190));
    assert_int_equal(ev.keys[ev.n - 1], 198);
    assert_true(get(p, 190, 50));
    /* Main now holds 950 bytes, over its 900: room for 150 (out of the ghost by now) comes from
     * main. 3..20 and 190 were hit once: each goes back to main's head with its frequency down
     * to 0, then 3 is the tail again and leaves. 150 enters small beside 199. */
    assert_false(get(p, 150, 50));
    assert_int_equal(ev.keys[ev.n - 1], 3);
    assert_true(get(p, 150, 50));
    assert_true(get(p, 199, 50));
    assert_true(get(p, 4, 50));
    assert_false(tmt_policy_contains(p, 3));
    assert_int_equal(ev.bytes, ev.n * 50);
    tmt_policy_free(&lru);
    tmt_policy_free(&p);
}

/* An object hit twice in small moves to main when small is flushed; once is not enough. */
static void test_s3fifo_small_to_main(void **state)
{
    (void)state;
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_S3FIFO, 1000, NULL, NULL);
    for (uint64_t k = 1; k <= 20; k++)
        assert_false(get(p, k, 50));
    assert_false(get(p, 100, 50)); /* evicts 1 from small; 100 in small */
    assert_false(get(p, 101, 50)); /* evicts 2; small: 100 101 */
    assert_true(get(p, 100, 50));
    assert_true(get(p, 100, 50)); /* two hits */
    assert_true(get(p, 101, 50)); /* one hit */
    /* 102 needs room: small's oldest is 100 (hit twice), it moves to main; then 101 (hit once)
     * leaves. */
    assert_false(get(p, 102, 50));
    assert_true(tmt_policy_contains(p, 100));
    assert_false(tmt_policy_contains(p, 101));
    tmt_policy_free(&p);
}

/* S3-FIFO does not admit what would fill its small queue (a tenth of the budget). */
static void test_s3fifo_large_object(void **state)
{
    (void)state;
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_S3FIFO, 1000, NULL, NULL);
    assert_false(get(p, 1, 100));
    assert_false(tmt_policy_contains(p, 1));
    assert_false(get(p, 2, 99));
    assert_true(tmt_policy_contains(p, 2));
    tmt_policy_free(&p);
}

/* segpool: a full cache of often requested objects does not let a cold one displace them. */
static void test_segpool_admission(void **state)
{
    (void)state;
    struct evictions ev = {0};
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_SEGPOOL, 300, on_evict, &ev);
    for (int round = 0; round < 5; round++) {
        for (uint64_t k = 1; k <= 3; k++)
            assert_int_equal(get(p, k, 100), round > 0);
    }
    assert_false(get(p, 4, 100));
    assert_false(tmt_policy_contains(p, 4));
    assert_int_equal(ev.n, 0);
    /* A segment whose band (same group, positions 4-7) is requested a lot gets in although it
     * was never requested itself: keys 10..13 are its neighbours. */
    struct tmt_policy_hint h = {.group = 7, .position = 4};
    for (int round = 0; round < 20; round++) {
        for (uint32_t pos = 4; pos < 8; pos++) {
            h.position = pos;
            (void)tmt_policy_access(p, 10 + pos, 1000, 0, &h); /* larger than the budget */
        }
    }
    h.position = 5;
    assert_false(tmt_policy_access(p, 99, 100, 0, &h));
    assert_true(tmt_policy_contains(p, 99));
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.bytes, 100);
    tmt_policy_free(&p);
}

/*
 * segpool: the bands of a young asset count for what its rate will fill them to. A cache full of
 * an asset watched hours ago (band counts decayed to 1/16) refuses a lone viewer of a new asset,
 * whose first session start is what made the asset known, but admits the third viewer of
 * another new asset whose three sessions started within a minute: its counts are small only
 * because they have been counting for a minute.
 */
static void test_segpool_new_asset(void **state)
{
    (void)state;
    struct evictions ev = {0};
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_SEGPOOL, 1000, on_evict, &ev);
    struct tmt_policy_hint h = {.group = 1};
    /* Asset 1: positions 2 and 3 of five renditions, 20 requests each at time 0. */
    for (int round = 0; round < 20; round++) {
        for (uint32_t r = 0; r < 5; r++) {
            for (h.position = 2; h.position <= 3; h.position++)
                (void)tmt_policy_access(p, 100 + r * 10 + h.position, 100, 0, &h);
        }
    }
    assert_int_equal(tmt_policy_objects(p), 10);
    const uint64_t t0 = 4 * 3600;
    /* Asset 2: one session, positions 1 to 3. */
    h.group = 2;
    for (h.position = 1; h.position <= 3; h.position++)
        assert_false(tmt_policy_access(p, 200 + h.position, 100, t0, &h));
    for (uint64_t k = 201; k <= 203; k++)
        assert_false(tmt_policy_contains(p, k));
    assert_int_equal(ev.n, 0);
    /* Asset 3: three sessions 30 s apart; the third one's segments get in. */
    h.group = 3;
    for (uint64_t s = 0; s < 3; s++) {
        for (h.position = 1; h.position <= 3; h.position++)
            (void)tmt_policy_access(p, 300 + s * 10 + h.position, 100, t0 + 30 * s, &h);
    }
    assert_true(tmt_policy_contains(p, 322));
    assert_true(tmt_policy_contains(p, 323));
    assert_true(ev.n >= 2);
    tmt_policy_free(&p);
}

/*
 * A sample's policy (all_starts, as mrc.c builds them) learns an asset's session starts from
 * tmt_pol_observe_start, whether or not its sample holds the keys of position 1: asset 3's
 * third session gets in as in test_segpool_new_asset, though no start was an access. Without
 * the starts it does not.
 */
static void test_segpool_observed_starts(void **state)
{
    (void)state;
    for (int observe = 0; observe <= 1; observe++) {
        const struct tmt_pol_mini mini = {
            .initial_nodes = 64, .bands_log2 = 10, .band_weight = 1.0, .all_starts = true};
        struct tmt_policy *p = tmt_pol_new_mini(TMT_POLICY_SEGPOOL, 1000, &mini);
        struct tmt_policy_hint h = {.group = 1};
        for (int round = 0; round < 20; round++) {
            for (uint32_t r = 0; r < 5; r++) {
                for (h.position = 2; h.position <= 3; h.position++)
                    (void)tmt_policy_access(p, 100 + r * 10 + h.position, 100, 0, &h);
            }
        }
        const uint64_t t0 = 4 * 3600;
        h.group = 3;
        for (uint64_t s = 0; s < 3; s++) {
            h.position = 1;
            if (observe)
                tmt_pol_observe_start(p, t0 + 30 * s, &h);
            for (h.position = 2; h.position <= 3; h.position++)
                (void)tmt_policy_access(p, 300 + s * 10 + h.position, 100, t0 + 30 * s, &h);
        }
        assert_int_equal(tmt_policy_contains(p, 322), observe);
        assert_int_equal(tmt_policy_contains(p, 323), observe);
        tmt_policy_free(&p);
    }
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Every policy on a random skewed sequence: the budget holds after every request, evicted bytes
 * add up (admitted = evicted + resident), hits only for resident objects, and objects larger
 * than the budget are never admitted.
 */
static void test_invariants(void **state)
{
    (void)state;
    for (int kind = TMT_POLICY_LRU; kind <= TMT_POLICY_SEGPOOL; kind++) {
        struct evictions ev = {0};
        const uint64_t budget = 50000;
        struct tmt_policy *p = tmt_policy_new((enum tmt_policy_kind)kind, budget, on_evict, &ev);
        assert_non_null(p);
        uint64_t seed = 0x9e3779b97f4a7c15ull, admitted = 0, hits = 0;
        for (int n = 0; n < 200000; n++) {
            uint64_t r = rnd(&seed);
            uint64_t key = (r % 1000) * (r % 7 == 0 ? 1 : (r >> 20) % 1000 + 1) % 3000;
            uint64_t size = 1 + key * 7919 % 3000;
            if (key == 42)
                size = budget + 1;
            struct tmt_policy_hint h = {.group = key / 50, .position = (uint32_t)(key % 50)};
            bool resident = tmt_policy_contains(p, key);
            uint64_t before = tmt_policy_bytes(p);
            bool hit = tmt_policy_access(p, key, size, (uint64_t)n / 100, &h);
            assert_int_equal(hit, resident);
            hits += hit;
            if (!hit && tmt_policy_contains(p, key))
                admitted += size;
            assert_true(tmt_policy_bytes(p) <= budget);
            if (hit)
                assert_int_equal(tmt_policy_bytes(p), before);
        }
        assert_false(tmt_policy_contains(p, 42));
        assert_true(hits > 0);
        assert_true(ev.n > 0);
        assert_int_equal(admitted, ev.bytes + tmt_policy_bytes(p));
        tmt_policy_free(&p);
    }
}

static void test_names(void **state)
{
    (void)state;
    enum tmt_policy_kind k;
    assert_true(tmt_policy_kind_parse("sieve", &k));
    assert_int_equal(k, TMT_POLICY_SIEVE);
    assert_string_equal(tmt_policy_kind_name(TMT_POLICY_SEGPOOL), "segpool");
    assert_false(tmt_policy_kind_parse("arc", &k));
    assert_null(tmt_policy_new(TMT_POLICY_LRU, 0, NULL, NULL));
    assert_null(tmt_policy_new((enum tmt_policy_kind)99, 100, NULL, NULL));
    /* An object larger than the whole budget is never admitted (LRU). */
    struct tmt_policy *p = tmt_policy_new(TMT_POLICY_LRU, 100, NULL, NULL);
    assert_false(get(p, 1, 101));
    assert_false(get(p, 1, 101));
    assert_int_equal(tmt_policy_objects(p), 0);
    tmt_policy_free(&p);
    tmt_policy_free(&p); /* NULL is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_sequence),
        cmocka_unit_test(test_sieve_sequence),
        cmocka_unit_test(test_s3fifo_scan_and_ghost),
        cmocka_unit_test(test_s3fifo_small_to_main),
        cmocka_unit_test(test_s3fifo_large_object),
        cmocka_unit_test(test_segpool_admission),
        cmocka_unit_test(test_segpool_new_asset),
        cmocka_unit_test(test_segpool_observed_starts),
        cmocka_unit_test(test_invariants),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
