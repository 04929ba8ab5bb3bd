/*
 * Unit tests of edge/assets.c: per-asset counts for report batches (Space-Saving per worker).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "assets.h"

static struct tmt_slice S(const char *s) {
    return (struct tmt_slice){s, strlen(s)};
}

static void
counts_and_resets(void **state)
{
    (void)state;
    struct edge_assets *a = edge_assets_new(2);
    for (int i = 0; i < 3; i++)
        edge_assets_count(a, 0, S("/v/film-v1/360p/1.m4s"), 100);
    edge_assets_count(a, 1, S("/v/film-v1/master.m3u8"), 7);
    edge_assets_count(a, 1, S("/v/news_2/init.mp4"), 50);
    /* Not asset paths, or not asset ids: not counted. */
    edge_assets_count(a, 0, S("/metrics"), 1);
    edge_assets_count(a, 0, S("/v/"), 1);
    edge_assets_count(a, 0, S("/v//x"), 1);
    edge_assets_count(a, 0, S("/v/a%2e/x"), 1);
    edge_assets_count(a, 0, S("/w/film-v1/x"), 1);
    edge_assets_count(a, 5, S("/v/film-v1/x"), 1); /* no such worker */
    struct edge_asset_count out[8];
    size_t n = edge_assets_take(a, out, 8);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].asset, "film-v1");
    assert_int_equal(out[0].requests, 4);
    assert_int_equal(out[0].bytes, 307);
    assert_string_equal(out[1].asset, "news_2");
    assert_int_equal(out[1].requests, 1);
    assert_int_equal(edge_assets_take(a, out, 8), 0); /* taken: empty again */
    edge_assets_count(a, 1, S("/v/film-v1/x"), 1);
    assert_int_equal(edge_assets_take(a, out, 1), 1);
    assert_int_equal(out[0].requests, 1);
    edge_assets_free(&a);
    assert_null(a);
}

static void keeps_the_busiest(void **state)
{
    (void)state;
    struct edge_assets *a = edge_assets_new(1);
    for (int i = 0; i < 10; i++)
        edge_assets_count(a, 0, S("/v/heavy/1.m4s"), 1000);
    char path[64];
    /* Twice the table's size of one-request assets: each new one replaces one with the fewest
     * requests and inherits its count (Space-Saving). */
    for (int i = 0; i < 2 * EDGE_ASSETS_K; i++) {
        snprintf(path, sizeof(path), "/v/light%d/1.m4s", i);
        edge_assets_count(a, 0, S(path), 1);
    }
    struct edge_asset_count out[EDGE_ASSETS_K + 1];
    size_t n = edge_assets_take(a, out, EDGE_ASSETS_K + 1);
    assert_int_equal(n, EDGE_ASSETS_K);
    assert_string_equal(out[0].asset, "heavy");
    assert_int_equal(out[0].requests, 10);
    assert_int_equal(out[0].bytes, 10000);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += out[i].requests;
    assert_int_equal(total, 10 + 2 * EDGE_ASSETS_K); /* counts are kept, never lost */
    for (size_t i = 1; i < n; i++)
        assert_true(out[i].requests <= 3); /* over-estimates bounded by what they replaced */
    edge_assets_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_and_resets),
        cmocka_unit_test(keeps_the_busiest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
