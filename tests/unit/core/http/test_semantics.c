/*
 * test_semantics.c: HTTP dates, byte ranges and conditional requests (core/http/date.c, range.c,
 * cond.c) through http.h.
 *
 * Table-driven: each table row is one case, and a failing row prints its index and input before
 * the test fails. Date formatting is also checked against the C library's gmtime_r over the
 * whole supported range, as an oracle independent of our calendar arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tmt/err.h"
#include "tmt/http.h"

#define DATE_MIN_S INT64_C(-62167219200) /* 0000-01-01T00:00:00Z */
#define DATE_MAX_S INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define T_RFC INT64_C(784111777)         /* Sun, 06 Nov 1994 08:49:37 GMT */

static struct tmt_slice sl(const char *s)
{
    return (struct tmt_slice){s, strlen(s)};
}

/*
 * Parses s from an exact-size heap copy, so a read past the end is caught by the address
 * sanitizer in sanitizer builds.
 */
static int parse_date_exact(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    char *copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int rc = tmt_http_date_parse((struct tmt_slice){copy, n}, out);
    free(copy);
    return rc;
}

/* ---- dates: format ---- */

static const struct {
    int64_t t;
    const char *want;
} format_cases[] = {
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    {T_RFC, "Sun, 06 Nov 1994 08:49:37 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {1078056000, "Sun, 29 Feb 2004 12:00:00 GMT"},
    {1445412480, "Wed, 21 Oct 2015 07:28:00 GMT"},
    {INT64_C(2147483647), "Tue, 19 Jan 2038 03:14:07 GMT"},
    {INT64_C(2147483648), "Tue, 19 Jan 2038 03:14:08 GMT"},
    {INT64_C(-62135596800), "Mon, 01 Jan 0001 00:00:00 GMT"},
    {DATE_MIN_S, "Sat, 01 Jan 0000 00:00:00 GMT"},
    {DATE_MAX_S, "Fri, 31 Dec 9999 23:59:59 GMT"},
    /* Out of the 4-digit range: clamped. */
    {DATE_MAX_S + 1, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {DATE_MIN_S - 1, "Sat, 01 Jan 0000 00:00:00 GMT"},
    {INT64_MIN, "Sat, 01 Jan 0000 00:00:00 GMT"},
};

static void date_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(format_cases); i++) {
        char out[TMT_HTTP_DATE_LEN + 1];
        memset(out, 'x', sizeof(out));
        tmt_http_date_format(format_cases[i].t, out);
        if (strcmp(out, format_cases[i].want) != 0) {
            print_error("case %zu: t=%lld got \"%s\" want \"%s\"\n", i,
                        (long long)format_cases[i].t, out, format_cases[i].want);
            fail();
        }
    }
}

/* Our formatter against gmtime_r from year 1 to 9999: ~300k instants, about one every 37 days. */
static void date_format_matches_gmtime(void **state)
{
    (void)state;
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    unsigned checked = 0;
    for (int64_t t = INT64_C(-62135596800); t <= DATE_MAX_S; t += INT64_C(3200401)) {
        for (int64_t dt = 0; dt < 3; dt++) {
            int64_t u = t + dt * 86399;
            if (u > DATE_MAX_S)
                break;
            time_t tt = (time_t)u;
            struct tm tm;
            assert_non_null(gmtime_r(&tt, &tm));
            char want[64];
            snprintf(want, sizeof(want), "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday],
                     tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
            char got[TMT_HTTP_DATE_LEN + 1];
            tmt_http_date_format(u, got);
            if (strcmp(got, want) != 0) {
                print_error("t=%lld got \"%s\" want \"%s\"\n", (long long)u, got, want);
                fail();
            }
            checked++;
        }
    }
    assert_true(checked > 1000);
}

/* format then parse gives back the same time, over the whole range and at its edges. */
static void date_round_trip(void **state)
{
    (void)state;
    static const int64_t fixed[] = {0,
                                    1,
                                    -1,
                                    59,
                                    60,
                                    86399,
                                    86400,
                                    T_RFC,
                                    951782400,
                                    INT64_C(2147483647),
                                    INT64_C(2147483648),
                                    INT64_C(4294967295),
                                    INT64_C(4294967296),
                                    INT64_C(-62135596800),
                                    DATE_MIN_S,
                                    DATE_MIN_S + 1,
                                    DATE_MAX_S - 1,
                                    DATE_MAX_S};
    char buf[TMT_HTTP_DATE_LEN + 1];
    int64_t back;
    for (size_t i = 0; i < TMT_ARRAY_LEN(fixed); i++) {
        tmt_http_date_format(fixed[i], buf);
        assert_int_equal(tmt_http_date_parse(sl(buf), &back), 0);
        if (back != fixed[i]) {
            print_error("t=%lld -> \"%s\" -> %lld\n", (long long)fixed[i], buf, (long long)back);
            fail();
        }
    }
    /* A stride prime to 86400 and to the 400-year cycle walks every calendar shape. */
    unsigned n = 0;
    for (int64_t t = DATE_MIN_S; t <= DATE_MAX_S; t += INT64_C(299993)) {
        tmt_http_date_format(t, buf);
        back = 0;
        assert_int_equal(tmt_http_date_parse(sl(buf), &back), 0);
        if (back != t) {
            print_error("t=%lld -> \"%s\" -> %lld\n", (long long)t, buf, (long long)back);
            fail();
        }
        n++;
    }
    assert_true(n > 1000000);
}

/* ---- dates: parse ---- */

static const struct {
    const char *s;
    int rc;
    int64_t want;
} parse_cases[] = {
    /* The three forms of RFC 9110 section 5.6.7, all the same instant. */
    {"Sun, 06 Nov 1994 08:49:37 GMT", 0, T_RFC},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 0, T_RFC},
    {"Sun Nov  6 08:49:37 1994", 0, T_RFC},
    {"Sun Nov 06 08:49:37 1994", 0, T_RFC},
    /* OWS around the value. */
    {"  Sun, 06 Nov 1994 08:49:37 GMT\t", 0, T_RFC},
    {"\tSun Nov  6 08:49:37 1994 ", 0, T_RFC},
    /* The weekday is not checked against the date. */
    {"Mon, 06 Nov 1994 08:49:37 GMT", 0, T_RFC},
    {"Friday, 06-Nov-94 08:49:37 GMT", 0, T_RFC},
    {"Wednesday, 06-Nov-94 08:49:37 GMT", 0, T_RFC},
    {"Thu Nov  6 08:49:37 1994", 0, T_RFC},
    /* Epoch, pre-epoch, far future. */
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
    {"Wed, 31 Dec 1969 23:59:59 GMT", 0, -1},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 0, DATE_MAX_S},
    {"Sat, 01 Jan 0000 00:00:00 GMT", 0, DATE_MIN_S},
    {"Tue, 19 Jan 2038 03:14:08 GMT", 0, INT64_C(2147483648)},
    /* Leap years: 2000 and 2004 are, 1900 and 2001 are not. */
    {"Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400},
    {"Sun, 29 Feb 2004 12:00:00 GMT", 0, 1078056000},
    {"Thu, 29 Feb 1900 00:00:00 GMT", TMT_EINVAL, 0},
    {"Thu, 29 Feb 2001 00:00:00 GMT", TMT_EINVAL, 0},
    {"Thu, 30 Feb 2000 00:00:00 GMT", TMT_EINVAL, 0},
    {"Tuesday, 29-Feb-00 00:00:00 GMT", 0, 951782400},
    {"Thursday, 29-Feb-01 00:00:00 GMT", TMT_EINVAL, 0},
    {"Tue Feb 29 00:00:00 2000", 0, 951782400},
    {"Thu Feb 29 00:00:00 1900", TMT_EINVAL, 0},
    /* Month lengths. */
    {"Thu, 30 Apr 2015 00:00:00 GMT", 0, 1430352000},
    {"Fri, 31 Apr 2015 00:00:00 GMT", TMT_EINVAL, 0},
    {"Sat, 31 Jan 2015 00:00:00 GMT", 0, 1422662400},
    {"Sun, 32 Jan 2015 00:00:00 GMT", TMT_EINVAL, 0},
    {"Sun, 00 Jan 2015 00:00:00 GMT", TMT_EINVAL, 0},
    {"Thu, 31 Dec 2015 00:00:00 GMT", 0, 1451520000},
    /* Time fields: second 60 reads as 59, anything else past range is refused. */
    {"Wed, 31 Dec 2008 23:59:60 GMT", 0, 1230767999},
    {"Wed, 31 Dec 2008 23:59:61 GMT", TMT_EINVAL, 0},
    {"Wed, 31 Dec 2008 24:00:00 GMT", TMT_EINVAL, 0},
    {"Wed, 31 Dec 2008 23:60:00 GMT", TMT_EINVAL, 0},
    {"Wed, 31 Dec 2008 99:99:99 GMT", TMT_EINVAL, 0},
    {"Wednesday, 31-Dec-08 23:59:60 GMT", 0, 1230767999},
    {"Wednesday, 31-Dec-08 24:00:00 GMT", TMT_EINVAL, 0},
    {"Wed Dec 31 23:59:61 2008", TMT_EINVAL, 0},
    /* RFC 850 two-digit years: 00-69 are 20xx, 70-99 are 19xx. */
    {"Thursday, 01-Jan-70 00:00:00 GMT", 0, 0},
    {"Tuesday, 31-Dec-69 23:59:59 GMT", 0, INT64_C(3155759999)},
    {"Saturday, 01-Jan-00 00:00:00 GMT", 0, 946684800},
    {"Friday, 31-Dec-99 23:59:59 GMT", 0, 946684799},
    /* Case-sensitive names. */
    {"sun, 06 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 gmt", TMT_EINVAL, 0},
    {"SUNDAY, 06-Nov-94 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun NOV  6 08:49:37 1994", TMT_EINVAL, 0},
    /* Wrong names and zones. */
    {"Sux, 06 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nox 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 UTC", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 +0000", TMT_EINVAL, 0},
    {"Sunny, 06-Nov-94 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06-Nov-94 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sundayy, 06-Nov-94 08:49:37 GMT", TMT_EINVAL, 0},
    /* Mixed forms and bad separators. */
    {"Sunday, 06 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06-Nov-1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun,  6 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 08.49.37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 94 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 8:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT ,", TMT_EINVAL, 0},
    {"Sun Nov 6 08:49:37 1994", TMT_EINVAL, 0},
    {"Sun Nov  6 08:49:37 94", TMT_EINVAL, 0},
    {"Sun Nov  6 08:49:37 1994 GMT", TMT_EINVAL, 0},
    {"Sun Nov x6 08:49:37 1994", TMT_EINVAL, 0},
    {"Sun, 0x Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, 06 Nov 19x4 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sun, -6 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"Sunday, 06-Nov-9x 08:49:37 GMT", TMT_EINVAL, 0},
    /* A list of dates is not a date. */
    {"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", TMT_EINVAL, 0},
    {"", TMT_EINVAL, 0},
    {"   ", TMT_EINVAL, 0},
    {"0", TMT_EINVAL, 0},
    {"784111777", TMT_EINVAL, 0},
};

static void date_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(parse_cases); i++) {
        int64_t got = 12345;
        int rc = parse_date_exact(parse_cases[i].s, &got);
        if (rc != parse_cases[i].rc || (rc == 0 && got != parse_cases[i].want)) {
            print_error("case %zu \"%s\": rc %d got %lld, want rc %d value %lld\n", i,
                        parse_cases[i].s, rc, (long long)got, parse_cases[i].rc,
                        (long long)parse_cases[i].want);
            fail();
        }
        if (rc != 0 && got != 12345) {
            print_error("case %zu \"%s\": output written on failure\n", i, parse_cases[i].s);
            fail();
        }
    }
}

/* Every proper prefix of a valid date of each form is refused (and read within bounds). */
static void date_parse_prefixes(void **state)
{
    (void)state;
    static const char *const full[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Wednesday, 09-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(full); i++) {
        size_t n = strlen(full[i]);
        for (size_t k = 0; k < n; k++) {
            char *copy = malloc(k > 0 ? k : 1);
            assert_non_null(copy);
            memcpy(copy, full[i], k);
            int64_t t;
            int rc = tmt_http_date_parse((struct tmt_slice){copy, k}, &t);
            free(copy);
            if (rc != TMT_EINVAL) {
                print_error("prefix %zu of \"%s\" parsed\n", k, full[i]);
                fail();
            }
        }
        int64_t t;
        assert_int_equal(parse_date_exact(full[i], &t), 0);
    }
}

/* ---- ranges ---- */

#define U64MAX UINT64_MAX

static const struct {
    const char *v;
    uint64_t size;
    enum tmt_http_range_result want;
    uint64_t first, last;
} range_cases[] = {
    /* RFC 9110 section 14.1.2 examples on a 10000-byte representation. */
    {"bytes=0-499", 10000, TMT_HTTP_RANGE_OK, 0, 499},
    {"bytes=500-999", 10000, TMT_HTTP_RANGE_OK, 500, 999},
    {"bytes=-500", 10000, TMT_HTTP_RANGE_OK, 9500, 9999},
    {"bytes=9500-", 10000, TMT_HTTP_RANGE_OK, 9500, 9999},
    {"bytes=0-0", 10000, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=-1", 10000, TMT_HTTP_RANGE_OK, 9999, 9999},
    {"bytes=0-", 10000, TMT_HTTP_RANGE_OK, 0, 9999},
    /* The last byte, and just past it. */
    {"bytes=9999-9999", 10000, TMT_HTTP_RANGE_OK, 9999, 9999},
    {"bytes=9999-", 10000, TMT_HTTP_RANGE_OK, 9999, 9999},
    {"bytes=10000-", 10000, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=10000-10000", 10000, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=20000-30000", 10000, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    /* End past the end is clipped; a suffix larger than the size is the whole thing. */
    {"bytes=0-10000", 10000, TMT_HTTP_RANGE_OK, 0, 9999},
    {"bytes=100-99999999", 10000, TMT_HTTP_RANGE_OK, 100, 9999},
    {"bytes=-10000", 10000, TMT_HTTP_RANGE_OK, 0, 9999},
    {"bytes=-20000", 10000, TMT_HTTP_RANGE_OK, 0, 9999},
    {"bytes=-0", 10000, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-000", 10000, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    /* Size 1. */
    {"bytes=0-0", 1, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=0-", 1, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=0-5", 1, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=-1", 1, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=-5", 1, TMT_HTTP_RANGE_OK, 0, 0},
    {"bytes=1-", 1, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=1-1", 1, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    /* Size 0: no byte to send, ever. */
    {"bytes=0-", 0, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-0", 0, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 0, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-5", 0, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=5-3", 0, TMT_HTTP_RANGE_NONE, 0, 0},
    /* first > last is invalid, not unsatisfiable. */
    {"bytes=5-3", 10000, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=20000-10000", 10000, TMT_HTTP_RANGE_NONE, 0, 0},
    /* Leading zeros. */
    {"bytes=000-001", 10000, TMT_HTTP_RANGE_OK, 0, 1},
    /* 64-bit edges and overflow. */
    {"bytes=18446744073709551614-", U64MAX, TMT_HTTP_RANGE_OK, U64MAX - 1, U64MAX - 1},
    {"bytes=0-18446744073709551615", U64MAX, TMT_HTTP_RANGE_OK, 0, U64MAX - 1},
    {"bytes=-18446744073709551615", U64MAX, TMT_HTTP_RANGE_OK, 0, U64MAX - 1},
    {"bytes=18446744073709551615-", U64MAX, TMT_HTTP_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-18446744073709551615", 100, TMT_HTTP_RANGE_OK, 0, 99},
    {"bytes=-18446744073709551615", 100, TMT_HTTP_RANGE_OK, 0, 99},
    {"bytes=18446744073709551616-", U64MAX, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-18446744073709551616", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=-18446744073709551616", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=99999999999999999999999-", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-99999999999999999999999", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=00000000000000000000000000001-2", 100, TMT_HTTP_RANGE_OK, 1, 2},
    /* Syntax errors. */
    {"", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=-", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=,", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=a-b", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-1a", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0--1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=--1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=+1-2", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0x10-", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=1-2;x", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0 -1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0- 1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=- 1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes =0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes:0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    /* Units: "bytes" only, any case. */
    {"items=0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"byte=0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytesx=0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"BYTES=0-1", 100, TMT_HTTP_RANGE_OK, 0, 1},
    {"Bytes=0-1", 100, TMT_HTTP_RANGE_OK, 0, 1},
    /* Several ranges are not served, however they are spelled. */
    {"bytes=0-1,2-3", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-1, 2-3", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-1,0-1", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=-1,-2", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    {"bytes=0-1,500-600", 100, TMT_HTTP_RANGE_NONE, 0, 0},
    /* OWS around the value and around list elements, and empty elements, are tolerated. */
    {" bytes=0-1", 100, TMT_HTTP_RANGE_OK, 0, 1},
    {"bytes=0-1 \t", 100, TMT_HTTP_RANGE_OK, 0, 1},
    {"bytes= 0-1", 100, TMT_HTTP_RANGE_OK, 0, 1},
    {"bytes=0-1,", 100, TMT_HTTP_RANGE_OK, 0, 1},
    {"bytes=, 0-1 , ,", 100, TMT_HTTP_RANGE_OK, 0, 1},
};

static void range_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(range_cases); i++) {
        uint64_t first = 7, last = 7;
        enum tmt_http_range_result r =
            tmt_http_range_parse(sl(range_cases[i].v), range_cases[i].size, &first, &last);
        bool bad = r != range_cases[i].want;
        if (!bad && r == TMT_HTTP_RANGE_OK)
            bad = first != range_cases[i].first || last != range_cases[i].last;
        if (bad) {
            print_error("case %zu \"%s\" size %llu: got %d %llu-%llu, want %d %llu-%llu\n", i,
                        range_cases[i].v, (unsigned long long)range_cases[i].size, (int)r,
                        (unsigned long long)first, (unsigned long long)last,
                        (int)range_cases[i].want, (unsigned long long)range_cases[i].first,
                        (unsigned long long)range_cases[i].last);
            fail();
        }
    }
}

/* For every small size and every short spec, OK keeps first <= last < size. */
static void range_invariant_small(void **state)
{
    (void)state;
    unsigned ok = 0;
    for (uint64_t size = 0; size < 12; size++) {
        for (int a = -1; a < 14; a++) {
            for (int b = -1; b < 14; b++) {
                char v[32];
                if (a < 0 && b < 0)
                    continue;
                if (a < 0)
                    snprintf(v, sizeof(v), "bytes=-%d", b);
                else if (b < 0)
                    snprintf(v, sizeof(v), "bytes=%d-", a);
                else
                    snprintf(v, sizeof(v), "bytes=%d-%d", a, b);
                uint64_t first, last;
                if (tmt_http_range_parse(sl(v), size, &first, &last) != TMT_HTTP_RANGE_OK)
                    continue;
                if (!(first <= last && last < size)) {
                    print_error("\"%s\" size %llu gave %llu-%llu\n", v, (unsigned long long)size,
                                (unsigned long long)first, (unsigned long long)last);
                    fail();
                }
                ok++;
            }
        }
    }
    assert_true(ok > 100);
}

/* ---- conditional requests ---- */

#define LM T_RFC
#define D_EQ "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_OLDER "Sun, 06 Nov 1994 08:49:36 GMT"
#define D_NEWER "Sun, 06 Nov 1994 08:49:38 GMT"
#define D_EQ_850 "Sunday, 06-Nov-94 08:49:37 GMT"

#define IM "If-Match"
#define INM "If-None-Match"
#define IMS "If-Modified-Since"
#define IUS "If-Unmodified-Since"

#define PROCEED TMT_HTTP_COND_PROCEED
#define NOT_MOD TMT_HTTP_COND_NOT_MODIFIED
#define FAILED TMT_HTTP_COND_FAILED

#define MAX_H 4

struct cond_case {
    enum tmt_http_method method;
    const char *etag; /* ours, NULL for none */
    int64_t lm;
    const char *h[MAX_H][2];
    enum tmt_http_cond_result want;
};

static const struct cond_case cond_cases[] = {
    /* No preconditions. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{NULL, NULL}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{"Accept", "*/*"}, {"Range", "bytes=0-1"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{"If-Range", "\"abc\""}}, PROCEED},
    /* If-Match: strong comparison, "*", lists, several fields. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IM, "\"xyz\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"xyz\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "*"}}, PROCEED},
    {TMT_HTTP_GET, NULL, LM, {{IM, "*"}}, PROCEED},
    {TMT_HTTP_GET, NULL, LM, {{IM, "\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "W/\"abc\"", LM, {{IM, "\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "W/\"abc\"", LM, {{IM, "W/\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "W/\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"x\", \"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"x\""}, {IM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"x\""}, {"Accept", "*/*"}, {IM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"x\""}, {IM, "\"y\""}}, FAILED},
    /* A malformed If-Match list fails, even next to a match. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "abc"}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"abc\", junk"}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"abc\""}, {IM, "\"x"}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "*, \"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "*"}, {IM, "*"}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"abc\"\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "w/\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, ""}}, FAILED},
    /* If-Match failure beats If-None-Match (which alone would give 304). */
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc\""}, {IM, "\"x\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IM, "\"abc\""}, {INM, "\"abc\""}}, NOT_MOD},
    /* If-Unmodified-Since, only without If-Match. */
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, D_OLDER}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IUS, D_OLDER}}, FAILED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, D_EQ}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, D_NEWER}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, D_OLDER}, {IM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, "yesterday"}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", -1, {{IUS, D_OLDER}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", -1, {{IUS, "Wed, 31 Dec 1969 23:59:58 GMT"}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IUS, D_OLDER}, {IUS, D_OLDER}}, PROCEED},
    /* If-None-Match: "*", weak comparison, 304 for GET/HEAD, 412 otherwise. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "*"}}, NOT_MOD},
    {TMT_HTTP_HEAD, "\"abc\"", LM, {{INM, "*"}}, NOT_MOD},
    {TMT_HTTP_GET, NULL, -1, {{INM, "*"}}, NOT_MOD},
    {TMT_HTTP_POST, "\"abc\"", LM, {{INM, "*"}}, FAILED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{INM, "*"}}, FAILED},
    {TMT_HTTP_POST, "\"abc\"", LM, {{INM, "\"abc\""}}, FAILED},
    {TMT_HTTP_POST, "\"abc\"", LM, {{INM, "\"x\""}}, PROCEED},
    {TMT_HTTP_OTHER, "\"abc\"", LM, {{INM, "\"abc\""}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "W/\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "W/\"abc\"", LM, {{INM, "\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "W/\"abc\"", LM, {{INM, "W/\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"ABC\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"x\""}}, PROCEED},
    {TMT_HTTP_GET, NULL, LM, {{INM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, " \"x\" ,\t\"abc\" , "}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"x\""}, {INM, "\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"x\""}, {"Via", "1.1 a"}, {INM, "W/\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{"if-none-match", "\"abc\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{"IF-NONE-MATCH", "\"abc\""}}, NOT_MOD},
    /* Commas inside entity-tags are part of the tag. */
    {TMT_HTTP_GET, "\"a,b\"", LM, {{INM, "\"a,b\""}}, NOT_MOD},
    {TMT_HTTP_GET, "\"a,b\"", LM, {{INM, "\"a\", \"b\""}}, PROCEED},
    /* A malformed If-None-Match list matches nothing: proceed. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "abc"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc\" junk"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "*, \"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "*"}, {INM, "\"x\""}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc\""}, {INM, "bad"}}, PROCEED},
    {TMT_HTTP_POST, "\"abc\"", LM, {{INM, "*, *"}}, PROCEED},
    /* Our own ETag is malformed: only "*" matches it. */
    {TMT_HTTP_GET, "abc", LM, {{INM, "abc"}}, PROCEED},
    {TMT_HTTP_GET, "abc", LM, {{INM, "\"abc\""}}, PROCEED},
    {TMT_HTTP_GET, "abc", LM, {{INM, "*"}}, NOT_MOD},
    /* If-Modified-Since: GET/HEAD only, ignored beside If-None-Match or when it does not parse. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_EQ}}, NOT_MOD},
    {TMT_HTTP_HEAD, "\"abc\"", LM, {{IMS, D_EQ}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_NEWER}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_OLDER}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_EQ_850}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, "Sun Nov  6 08:49:37 1994"}}, NOT_MOD},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, "not a date"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, "Sun, 06 Nov 1994 08:49:37 GMT, x"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_EQ}, {IMS, D_EQ}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", -1, {{IMS, D_EQ}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", -1, {{IMS, "Wed, 31 Dec 1969 23:59:59 GMT"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", -2, {{IMS, "Wed, 31 Dec 1969 23:59:59 GMT"}}, NOT_MOD},
    {TMT_HTTP_POST, "\"abc\"", LM, {{IMS, D_EQ}}, PROCEED},
    {TMT_HTTP_PUT, "\"abc\"", LM, {{IMS, D_NEWER}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"x\""}, {IMS, D_EQ}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IMS, D_EQ}, {INM, "bad"}}, PROCEED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{INM, "\"abc\""}, {IMS, D_OLDER}}, NOT_MOD},
    /* Several at once, in the RFC's order. */
    {TMT_HTTP_GET, "\"abc\"", LM, {{IUS, D_OLDER}, {IMS, D_EQ}}, FAILED},
    {TMT_HTTP_GET, "\"abc\"", LM, {{IUS, D_EQ}, {IMS, D_EQ}}, NOT_MOD},
    {TMT_HTTP_GET,
     "\"abc\"",
     LM,
     {{IM, "*"}, {IUS, D_OLDER}, {INM, "\"x\""}, {IMS, D_EQ}},
     PROCEED},
};

static void cond_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(cond_cases); i++) {
        const struct cond_case *c = &cond_cases[i];
        struct tmt_http_header h[MAX_H];
        size_t n = 0;
        while (n < MAX_H && c->h[n][0] != NULL) {
            h[n].name = sl(c->h[n][0]);
            h[n].value = sl(c->h[n][1]);
            n++;
        }
        struct tmt_http_validators v = {
            .etag = c->etag != NULL ? sl(c->etag) : (struct tmt_slice){NULL, 0},
            .last_modified = c->lm,
        };
        enum tmt_http_cond_result r = tmt_http_cond_evaluate(c->method, h, n, &v);
        if (r != c->want) {
            print_error("case %zu (%s, etag %s, lm %lld, first header %s: %s): got %d want %d\n", i,
                        tmt_http_method_name(c->method), c->etag ? c->etag : "-", (long long)c->lm,
                        n > 0 ? c->h[0][0] : "-", n > 0 ? c->h[0][1] : "-", (int)r, (int)c->want);
            fail();
        }
    }
}

static void cond_no_headers(void **state)
{
    (void)state;
    struct tmt_http_validators v = {.etag = {NULL, 0}, .last_modified = -1};
    assert_int_equal(tmt_http_cond_evaluate(TMT_HTTP_GET, NULL, 0, &v), PROCEED);
}

static const struct {
    const char *if_range;
    const char *etag;
    int64_t lm;
    bool want;
} if_range_cases[] = {
    {"\"abc\"", "\"abc\"", LM, true},
    {" \"abc\"\t", "\"abc\"", LM, true},
    {"\"abc\"", "\"xyz\"", LM, false},
    {"\"abc\"", NULL, LM, false},
    {"\"abc\"", "abc", LM, false},
    /* Weak tags never match, on either side. */
    {"W/\"abc\"", "W/\"abc\"", LM, false},
    {"W/\"abc\"", "\"abc\"", LM, false},
    {"\"abc\"", "W/\"abc\"", LM, false},
    /* Broken tags. */
    {"\"abc", "\"abc\"", LM, false},
    {"\"abc\", \"abc\"", "\"abc\"", LM, false},
    {"*", "\"abc\"", LM, false},
    {"", "\"abc\"", LM, false},
    {"abc", "abc", LM, false},
    /* Dates must equal Last-Modified exactly. */
    {D_EQ, "\"abc\"", LM, true},
    {D_EQ_850, "\"abc\"", LM, true},
    {"Sun Nov  6 08:49:37 1994", "\"abc\"", LM, true},
    {D_OLDER, "\"abc\"", LM, false},
    {D_NEWER, "\"abc\"", LM, false},
    {D_EQ, "\"abc\"", -1, false},
    {"Wed, 31 Dec 1969 23:59:59 GMT", "\"abc\"", -1, false},
    {"Wed, 31 Dec 1969 23:59:58 GMT", "\"abc\"", -2, true},
    {D_EQ, NULL, LM, true},
    {"Wed, 21 Oct 2015 07:28:00 GMT", NULL, 1445412480, true},
    {"Wednesday, 21-Oct-15 07:28:00 GMT", NULL, 1445412480, true},
    {"Wed, 21 Oct 2015 07:28:01 GMT", NULL, 1445412480, false},
    {"Wed, 31 Feb 2015 07:28:00 GMT", NULL, 1445412480, false},
};

static void if_range_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < TMT_ARRAY_LEN(if_range_cases); i++) {
        struct tmt_http_validators v = {
            .etag = if_range_cases[i].etag != NULL ? sl(if_range_cases[i].etag)
                                                   : (struct tmt_slice){NULL, 0},
            .last_modified = if_range_cases[i].lm,
        };
        bool got = tmt_http_if_range_ok(sl(if_range_cases[i].if_range), &v);
        if (got != if_range_cases[i].want) {
            print_error("case %zu If-Range \"%s\" etag %s lm %lld: got %d\n", i,
                        if_range_cases[i].if_range,
                        if_range_cases[i].etag ? if_range_cases[i].etag : "-",
                        (long long)if_range_cases[i].lm, (int)got);
            fail();
        }
    }
}

static void query_param_table(void **state)
{
    (void)state;
    static const struct {
        const char *q, *name;
        long want;
        const char *val;
    } cases[] = {
        {"key=/v/a/1.m4s", "key", 10, "/v/a/1.m4s"},
        {"x=1&key=%2Fv%2Fa%3Fb%3D1", "key", 8, "/v/a?b=1"},
        {"keyx=1&key=2", "key", 1, "2"},
        {"ke=1", "key", -1, NULL},
        {"", "key", -1, NULL},
        {"key", "key", 0, ""},
        {"key=&a=b", "key", 0, ""},
        {"key=a+b", "key", 3, "a+b"},
        {"key=%2", "key", -2, NULL},
        {"key=%zz", "key", -2, NULL},
        {"key=%", "key", -2, NULL},
        {"a=%zz&key=ok", "key", 2, "ok"},
        {"key=0123456789abcdef", "key", -2, NULL}, /* longer than cap */
        {"key=1&key=2", "key", 1, "1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        long got = tmt_http_query_param(sl(cases[i].q), cases[i].name, out, sizeof(out) - 1);
        if (got != cases[i].want || (got >= 0 && (strlen(cases[i].val) != (size_t)got ||
                                                  memcmp(out, cases[i].val, (size_t)got) != 0))) {
            print_error("case %zu \"%s\": got %ld\n", i, cases[i].q, got);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(date_format_table),     cmocka_unit_test(date_format_matches_gmtime),
        cmocka_unit_test(date_round_trip),       cmocka_unit_test(date_parse_table),
        cmocka_unit_test(date_parse_prefixes),   cmocka_unit_test(range_table),
        cmocka_unit_test(range_invariant_small), cmocka_unit_test(cond_table),
        cmocka_unit_test(cond_no_headers),       cmocka_unit_test(if_range_table),
        cmocka_unit_test(query_param_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
