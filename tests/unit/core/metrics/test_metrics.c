/*
 * Unit tests of the metrics registry: slot indices across tables, shard layout, sums over shards,
 * the Prometheus exposition and the Markdown reference byte for byte, gauges below zero, lookups,
 * and exact totals while writer threads race a reader.
 *
 * Malformed tables panic (abort) by design; they are not exercised here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "tmt/metrics.h"

#define RESP_HELP "Responses sent, by status class."

static const struct tmt_metric_def http_defs[] = {
    {"tmt_http_responses_total", "code=\"2xx\"", TMT_METRIC_COUNTER, RESP_HELP},
    {"tmt_http_responses_total", "code=\"4xx\"", TMT_METRIC_COUNTER, RESP_HELP},
    {"tmt_http_conns_open", NULL, TMT_METRIC_GAUGE, "Connections open now."},
};

static const struct tmt_metric_def store_defs[] = {
    {"tmt_store_hits_total", NULL, TMT_METRIC_COUNTER,
     "Lookups that found a fresh object.\nSee C:\\docs."},
    {"tmt_store_bytes", "tier=\"hot\"", TMT_METRIC_GAUGE, "Bytes | stored."},
};

/* http_defs then store_defs, sealed with n_shards shards. */
static struct tmt_metrics *two_tables(unsigned n_shards)
{
    struct tmt_metrics *m = tmt_metrics_new(n_shards);
    assert_int_equal(tmt_metrics_register(m, http_defs, TMT_ARRAY_LEN(http_defs)), 0);
    assert_int_equal(tmt_metrics_register(m, store_defs, TMT_ARRAY_LEN(store_defs)), 3);
    tmt_metrics_seal(m);
    return m;
}

static void test_register_indices(void **state)
{
    (void)state;
    struct tmt_metrics *m = tmt_metrics_new(3);
    assert_int_equal(tmt_metrics_n_shards(m), 3);
    size_t a = tmt_metrics_register(m, http_defs, TMT_ARRAY_LEN(http_defs));
    size_t b = tmt_metrics_register(m, store_defs, TMT_ARRAY_LEN(store_defs));
    assert_int_equal(a, 0);
    assert_int_equal(b, TMT_ARRAY_LEN(http_defs));
    tmt_metrics_seal(m);

    /* defs[i] of a table sits at its base + i, and every slot starts at zero. */
    for (size_t i = 0; i < TMT_ARRAY_LEN(http_defs); i++) {
        assert_int_equal(tmt_metrics_find(m, http_defs[i].name, http_defs[i].labels), a + i);
        assert_int_equal(tmt_metrics_value(m, a + i), 0);
    }
    for (size_t i = 0; i < TMT_ARRAY_LEN(store_defs); i++) {
        assert_int_equal(tmt_metrics_find(m, store_defs[i].name, store_defs[i].labels), b + i);
        assert_int_equal(tmt_metrics_value(m, b + i), 0);
    }
    tmt_metrics_free(&m);
    assert_null(m);
    tmt_metrics_free(&m); /* NULL is accepted */
}

static void test_shards_aligned_and_separate(void **state)
{
    (void)state;
    struct tmt_metrics *m = two_tables(4);
    tmt_metric_slot *s[4];
    for (unsigned i = 0; i < 4; i++) {
        s[i] = tmt_metrics_shard(m, i);
        assert_non_null(s[i]);
        assert_int_equal((uintptr_t)s[i] % 64, 0);
    }
    /* 5 slots each: no two shards may touch the same 64-byte line. */
    for (unsigned i = 0; i < 4; i++) {
        uintptr_t lo = (uintptr_t)s[i] / 64, hi = ((uintptr_t)(s[i] + 5) - 1) / 64;
        for (unsigned j = 0; j < 4; j++) {
            if (i == j)
                continue;
            uintptr_t lo2 = (uintptr_t)s[j] / 64, hi2 = ((uintptr_t)(s[j] + 5) - 1) / 64;
            assert_true(hi < lo2 || hi2 < lo);
        }
    }
    /* Every slot of the last shard, written to the end, leaves the others alone. */
    for (size_t k = 0; k < 5; k++)
        tmt_metric_add(s[3], k, 100 + k);
    for (unsigned i = 0; i < 3; i++) {
        for (size_t k = 0; k < 5; k++)
            assert_int_equal(atomic_load(&s[i][k]), 0);
    }
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(tmt_metrics_value(m, k), 100 + k);
    tmt_metrics_free(&m);
}

static void test_value_sums_shards(void **state)
{
    (void)state;
    struct tmt_metrics *m = two_tables(3);
    tmt_metric_inc(tmt_metrics_shard(m, 0), 1);
    tmt_metric_add(tmt_metrics_shard(m, 1), 1, 10);
    tmt_metric_add(tmt_metrics_shard(m, 2), 1, 100);
    tmt_metric_inc(tmt_metrics_shard(m, 2), 1);
    assert_int_equal(tmt_metrics_value(m, 1), 112);
    assert_int_equal(tmt_metrics_value(m, 0), 0);
    assert_int_equal(tmt_metrics_value(m, 2), 0);
    tmt_metrics_free(&m);
}

static void test_format_exact(void **state)
{
    (void)state;
    struct tmt_metrics *m = two_tables(2);
    tmt_metric_slot *s0 = tmt_metrics_shard(m, 0), *s1 = tmt_metrics_shard(m, 1);
    tmt_metric_add(s0, 0, 3);
    tmt_metric_add(s1, 0, 4);
    tmt_metric_inc(s1, 1);
    tmt_metric_add(s0, 2, 5);
    tmt_metric_sub(s1, 2, 2);
    tmt_metric_add(s1, 3, 1234567890);

    static const char want[] =
        "# HELP tmt_http_responses_total Responses sent, by status class.\n"
        "# TYPE tmt_http_responses_total counter\n"
        "tmt_http_responses_total{code=\"2xx\"} 7\n"
        "tmt_http_responses_total{code=\"4xx\"} 1\n"
        "# HELP tmt_http_conns_open Connections open now.\n"
        "# TYPE tmt_http_conns_open gauge\n"
        "tmt_http_conns_open 3\n"
        "# HELP tmt_store_hits_total Lookups that found a fresh object.\\nSee C:\\\\docs.\n"
        "# TYPE tmt_store_hits_total counter\n"
        "tmt_store_hits_total 1234567890\n"
        "# HELP tmt_store_bytes Bytes | stored.\n"
        "# TYPE tmt_store_bytes gauge\n"
        "tmt_store_bytes{tier=\"hot\"} 0\n";
    size_t len = 0;
    char *got = tmt_metrics_format(m, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, sizeof(want) - 1);
    free(got);
    tmt_metrics_free(&m);
}

static void test_gauge_negative(void **state)
{
    (void)state;
    static const struct tmt_metric_def defs[] = {
        {"tmt_pool_busy", NULL, TMT_METRIC_GAUGE, "Busy."},
        {"tmt_pool_low", NULL, TMT_METRIC_GAUGE, "Lowest."},
        {"tmt_pool_big_total", NULL, TMT_METRIC_COUNTER, "Big."},
    };
    struct tmt_metrics *m = tmt_metrics_new(2);
    assert_int_equal(tmt_metrics_register(m, defs, TMT_ARRAY_LEN(defs)), 0);
    tmt_metrics_seal(m);
    tmt_metric_slot *s0 = tmt_metrics_shard(m, 0), *s1 = tmt_metrics_shard(m, 1);

    /* Opened on one thread, closed on another: shard 1 alone is "negative". */
    tmt_metric_add(s0, 0, 2);
    tmt_metric_sub(s1, 0, 5);
    assert_int_equal(tmt_metrics_value(m, 0), (uint64_t)0 - 3);
    /* The most negative int64, and a counter above INT64_MAX that must stay unsigned. */
    tmt_metric_sub(s0, 1, (uint64_t)1 << 62);
    tmt_metric_sub(s1, 1, (uint64_t)1 << 62);
    tmt_metric_add(s0, 2, UINT64_MAX - 1);
    tmt_metric_inc(s1, 2);

    static const char want[] = "# HELP tmt_pool_busy Busy.\n"
                               "# TYPE tmt_pool_busy gauge\n"
                               "tmt_pool_busy -3\n"
                               "# HELP tmt_pool_low Lowest.\n"
                               "# TYPE tmt_pool_low gauge\n"
                               "tmt_pool_low -9223372036854775808\n"
                               "# HELP tmt_pool_big_total Big.\n"
                               "# TYPE tmt_pool_big_total counter\n"
                               "tmt_pool_big_total 18446744073709551615\n";
    size_t len = 0;
    char *got = tmt_metrics_format(m, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, sizeof(want) - 1);
    free(got);

    /* Back above zero once the other shard catches up. */
    tmt_metric_add(s0, 0, 4);
    assert_int_equal(tmt_metrics_value(m, 0), 1);
    tmt_metrics_free(&m);
}

static void test_reference(void **state)
{
    (void)state;
    static const struct tmt_metric_def q_defs[] = {
        {"tmt_q_depth", NULL, TMT_METRIC_GAUGE, "Queue depth."},
        {"tmt_q_depth", "q=\"`x`\"", TMT_METRIC_GAUGE, "Queue depth."},
        {"tmt_q_depth", "q=\"a|b\"", TMT_METRIC_GAUGE, "Queue depth."},
    };
    struct tmt_metrics *m = tmt_metrics_new(1);
    (void)tmt_metrics_register(m, http_defs, TMT_ARRAY_LEN(http_defs));
    (void)tmt_metrics_register(m, store_defs, TMT_ARRAY_LEN(store_defs));
    (void)tmt_metrics_register(m, q_defs, TMT_ARRAY_LEN(q_defs));

    static const char want[] =
        "| metric | type | labels | help |\n"
        "| --- | --- | --- | --- |\n"
        "| `tmt_http_responses_total` | counter | `code=\"2xx\"`, `code=\"4xx\"` | " RESP_HELP
        " |\n"
        "| `tmt_http_conns_open` | gauge | | Connections open now. |\n"
        "| `tmt_store_hits_total` | counter | | Lookups that found a fresh object. See "
        "C:\\\\docs. |\n"
        "| `tmt_store_bytes` | gauge | `tier=\"hot\"` | Bytes \\| stored. |\n"
        "| `tmt_q_depth` | gauge | (none), `` q=\"`x`\" ``, `q=\"a\\|b\"` | Queue depth. |\n";
    char *got = tmt_metrics_reference(m);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    tmt_metrics_free(&m);
}

static void test_find(void **state)
{
    (void)state;
    static const struct tmt_metric_def defs[] = {
        {"tmt_req_total", NULL, TMT_METRIC_COUNTER, "Requests."},
        {"tmt_req_total", "path=\"/a\\\"b\"", TMT_METRIC_COUNTER, "Requests."},
        {"tmt_req_total", "path=\"/a\",method=\"GET\"", TMT_METRIC_COUNTER, "Requests."},
    };
    struct tmt_metrics *m = tmt_metrics_new(1);
    assert_int_equal(tmt_metrics_register(m, http_defs, TMT_ARRAY_LEN(http_defs)), 0);
    assert_int_equal(tmt_metrics_register(m, defs, TMT_ARRAY_LEN(defs)), 3);

    assert_int_equal(tmt_metrics_find(m, "tmt_http_responses_total", "code=\"4xx\""), 1);
    assert_int_equal(tmt_metrics_find(m, "tmt_http_conns_open", NULL), 2);
    assert_int_equal(tmt_metrics_find(m, "tmt_req_total", NULL), 3);
    assert_int_equal(tmt_metrics_find(m, "tmt_req_total", "path=\"/a\\\"b\""), 4);
    assert_int_equal(tmt_metrics_find(m, "tmt_req_total", "path=\"/a\",method=\"GET\""), 5);
    /* Labels must match exactly; NULL is not "any". */
    assert_int_equal(tmt_metrics_find(m, "tmt_http_responses_total", NULL), -1);
    assert_int_equal(tmt_metrics_find(m, "tmt_http_conns_open", ""), -1);
    assert_int_equal(tmt_metrics_find(m, "tmt_http_responses_total", "code=\"5xx\""), -1);
    assert_int_equal(tmt_metrics_find(m, "tmt_http_responses", "code=\"2xx\""), -1);
    assert_int_equal(tmt_metrics_find(m, "tmt_nothing_total", NULL), -1);
    tmt_metrics_free(&m);
}

static void test_empty_registry(void **state)
{
    (void)state;
    struct tmt_metrics *m = tmt_metrics_new(2);
    tmt_metrics_seal(m);
    assert_non_null(tmt_metrics_shard(m, 1));
    size_t len = 99;
    char *got = tmt_metrics_format(m, &len);
    assert_non_null(got);
    assert_string_equal(got, "");
    assert_int_equal(len, 0);
    free(got);
    got = tmt_metrics_reference(m);
    assert_non_null(got);
    assert_string_equal(got, "| metric | type | labels | help |\n| --- | --- | --- | --- |\n");
    free(got);
    assert_int_equal(tmt_metrics_find(m, "tmt_x_total", NULL), -1);
    tmt_metrics_free(&m);
}

/* ---- writers racing a reader ---- */

#define RACE_WRITERS 4
#define RACE_ITERS 1000000u

static const struct tmt_metric_def race_defs[] = {
    {"tmt_race_ops_total", NULL, TMT_METRIC_COUNTER, "Operations."},
    {"tmt_race_level", NULL, TMT_METRIC_GAUGE, "Level."},
};

struct race {
    struct tmt_metrics *m;
    atomic_bool reader_started; /* writers wait for it, so formatting overlaps the writes */
    atomic_bool writers_done;
    /* Set by the reader; checked by the main thread (cmocka asserts only work there). */
    unsigned long formats;
    bool format_failed;
    bool went_backwards;
    bool overshot;
};

struct writer {
    struct race *race;
    unsigned shard;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    tmt_metric_slot *s = tmt_metrics_shard(w->race->m, w->shard);
    while (!atomic_load(&w->race->reader_started))
        sched_yield();
    for (unsigned i = 0; i < RACE_ITERS; i++) {
        tmt_metric_inc(s, 0);
        tmt_metric_sub(s, 1, 1);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    struct race *r = arg;
    static const char key[] = "\ntmt_race_ops_total ";
    unsigned long long last = 0;
    do {
        char *text = tmt_metrics_format(r->m, NULL);
        const char *at = text != NULL ? strstr(text, key) : NULL;
        if (at == NULL) {
            r->format_failed = true;
            free(text);
            atomic_store(&r->reader_started, true); /* let the writers finish */
            break;
        }
        unsigned long long v = strtoull(at + sizeof(key) - 1, NULL, 10);
        /* Each shard only grows, and later loads of a slot never see an older value. */
        if (v < last)
            r->went_backwards = true;
        if (v > (unsigned long long)RACE_WRITERS * RACE_ITERS)
            r->overshot = true;
        last = v;
        r->formats++;
        free(text);
        atomic_store(&r->reader_started, true);
    } while (!atomic_load(&r->writers_done));
    return NULL;
}

static void test_threads_exact(void **state)
{
    (void)state;
    struct race r = {.m = tmt_metrics_new(RACE_WRITERS)};
    atomic_init(&r.reader_started, false);
    atomic_init(&r.writers_done, false);
    assert_int_equal(tmt_metrics_register(r.m, race_defs, TMT_ARRAY_LEN(race_defs)), 0);
    tmt_metrics_seal(r.m);

    pthread_t reader, writers[RACE_WRITERS];
    struct writer w[RACE_WRITERS];
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &r), 0);
    for (unsigned i = 0; i < RACE_WRITERS; i++) {
        w[i] = (struct writer){&r, i};
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < RACE_WRITERS; i++)
        assert_int_equal(pthread_join(writers[i], NULL), 0);
    atomic_store(&r.writers_done, true);
    assert_int_equal(pthread_join(reader, NULL), 0);

    assert_false(r.format_failed);
    assert_false(r.went_backwards);
    assert_false(r.overshot);
    assert_true(r.formats >= 1);
    assert_int_equal(tmt_metrics_value(r.m, 0), (uint64_t)RACE_WRITERS * RACE_ITERS);
    assert_int_equal(tmt_metrics_value(r.m, 1), (uint64_t)0 - (uint64_t)RACE_WRITERS * RACE_ITERS);

    char *text = tmt_metrics_format(r.m, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "\ntmt_race_ops_total 4000000\n"));
    assert_non_null(strstr(text, "\ntmt_race_level -4000000\n"));
    free(text);
    tmt_metrics_free(&r.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_indices),
        cmocka_unit_test(test_shards_aligned_and_separate),
        cmocka_unit_test(test_value_sums_shards),
        cmocka_unit_test(test_format_exact),
        cmocka_unit_test(test_gauge_negative),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
