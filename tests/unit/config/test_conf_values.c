/*
 * Unit tests of the single-value parsers: sizes, durations, booleans, addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmt/config.h"
#include "tmt/err.h"

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"64k", 65536},
        {"64K", 65536},
        {"10MiB", 10485760},
        {"10 MB", 10485760},
        {"2G", 2147483648u},
        {"1t", 1ull << 40},
        {"7b", 7},
        {"16777215TiB", 16777215ull << 40},
    };
    char why[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        assert_int_equal(tmt_conf_parse_size(ok[i].in, &v, why, sizeof(why)), 0);
        assert_int_equal(v, ok[i].want);
    }
    uint64_t v;
    assert_int_equal(tmt_conf_parse_size("", &v, why, sizeof(why)), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_size("-1", &v, why, sizeof(why)), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_size("1.5G", &v, why, sizeof(why)), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_size("12XB", &v, why, sizeof(why)), TMT_EINVAL);
    assert_string_equal(why, "\"12XB\" is not a size (examples: 512, 64k, 10MiB, 2G)");
    assert_int_equal(tmt_conf_parse_size("16777216T", &v, why, sizeof(why)), TMT_ELIMIT);
    assert_int_equal(tmt_conf_parse_size("18446744073709551616", &v, why, sizeof(why)), TMT_ELIMIT);
}

static void test_durations(void **state)
{
    (void)state;
    char why[128];
    uint64_t v;
    assert_int_equal(tmt_conf_parse_duration("250ms", &v, why, sizeof(why)), 0);
    assert_int_equal(v, 250);
    assert_int_equal(tmt_conf_parse_duration("10", &v, why, sizeof(why)), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(tmt_conf_parse_duration("5m", &v, why, sizeof(why)), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(tmt_conf_parse_duration("2d", &v, why, sizeof(why)), 0);
    assert_int_equal(v, 172800000);
    assert_int_equal(tmt_conf_parse_duration("1h", &v, why, sizeof(why)), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(tmt_conf_parse_duration("3w", &v, why, sizeof(why)), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_duration("s", &v, why, sizeof(why)), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_duration("9999999999999999999d", &v, why, sizeof(why)),
                     TMT_ELIMIT);
}

static void test_bools(void **state)
{
    (void)state;
    bool b = false;
    assert_int_equal(tmt_conf_parse_bool("On", &b), 0);
    assert_true(b);
    assert_int_equal(tmt_conf_parse_bool("0", &b), 0);
    assert_false(b);
    assert_int_equal(tmt_conf_parse_bool("enabled", &b), TMT_EINVAL);
    assert_int_equal(tmt_conf_parse_bool("", &b), TMT_EINVAL);
}

static void test_addr_split(void **state)
{
    (void)state;
    char host[256];
    uint16_t port;
    assert_int_equal(tmt_conf_addr_split("127.0.0.1:8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(tmt_conf_addr_split("[::1]:443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    assert_int_equal(tmt_conf_addr_split("*:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 0);
    assert_int_equal(tmt_conf_addr_split("localhost:65535", host, sizeof(host), &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(tmt_conf_addr_split("host", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("host:65536", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("[::1:80", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("[zz]:80", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("[:::::]:80", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("[::ffff:10.0.0.1]:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::ffff:10.0.0.1");
    assert_int_equal(tmt_conf_addr_split("a b:80", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("-x:80", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("x:8a", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("x:", host, sizeof(host), &port), TMT_EINVAL);
    assert_int_equal(tmt_conf_addr_split("abcdef:1", host, 4, &port), TMT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_addr_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
