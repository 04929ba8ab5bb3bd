/*
 * date.c: HTTP dates (RFC 9110 section 5.6.7): formatting IMF-fixdate and parsing the three forms
 * a recipient must accept.
 *
 * Pure and thread-safe: no locale, no TZ, no libc time conversion. Calendar arithmetic is done here
 * on the proleptic Gregorian calendar (Howard Hinnant's days_from_civil / civil_from_days), so the
 * result never depends on the process environment.
 *
 * Range: years 0000 to 9999, the years the 4-digit grammar can carry, i.e. unix seconds from
 * DATE_MIN_S to DATE_MAX_S. Every date parse accepts lies in that range, and format clamps its
 * input into it, so parse(format(t)) == t for every t parse can return.
 *
 * Parsing decisions (each one a deliberate reading of the RFC):
 * - Names (day, month, "GMT") are case-sensitive, as the grammar's %s strings say.
 * - The weekday must be a valid name of the right form, but whether it matches the date is not
 *   checked: a mismatch says nothing useful and a validator must not hinge on it.
 * - Second 60 (a leap second) is accepted and read as 59: unix time has no leap seconds, and 59
 *   keeps the value inside the same minute, so ordering against Last-Modified is preserved.
 * - RFC 850's two-digit year uses a fixed pivot instead of the RFC's "50 years from now" sliding
 *   window (that would need a clock, and this module is pure): 00-69 are 2000-2069, 70-99 are
 *   1970-1999. RFC 850 dates are obsolete; senders of them predate 2000.
 * - Optional whitespace (SP, HTAB) around the whole value is ignored; nothing else is.
 */
#include "tmt/http.h"

#include <assert.h>
#include <string.h>

#include "tmt/err.h"

#define SECS_PER_DAY 86400
/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define DATE_MIN_S INT64_C(-62167219200)
#define DATE_MAX_S INT64_C(253402300799)

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Indexed by days since Sunday; 1970-01-01 was a Thursday (4). */
static const char wday_short[] = "SunMonTueWedThuFriSat";
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char month_short[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static_assert(sizeof(digit_pairs) == 201, "two digits for each of 0..99");
static_assert(sizeof(wday_short) == 7 * 3 + 1, "seven 3-letter names");
static_assert(sizeof(month_short) == 12 * 3 + 1, "twelve 3-letter names");

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31), proleptic Gregorian. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

static inline void put2(char *o, unsigned v)
{
    memcpy(o, &digit_pairs[2 * v], 2);
}

void tmt_http_date_format(int64_t unix_s, char out[TMT_HTTP_DATE_LEN + 1])
{
    if (unix_s < DATE_MIN_S)
        unix_s = DATE_MIN_S;
    if (unix_s > DATE_MAX_S)
        unix_s = DATE_MAX_S;
    /* Floor division: the day of a negative time starts before it. */
    int64_t days = unix_s / SECS_PER_DAY;
    int64_t rem = unix_s % SECS_PER_DAY;
    if (rem < 0) {
        rem += SECS_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned wd = (unsigned)(((days + 4) % 7 + 7) % 7);
    unsigned secs = (unsigned)rem;

    memcpy(out, &wday_short[3 * wd], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, &month_short[3 * (m - 1)], 3);
    out[11] = ' ';
    put2(out + 12, (unsigned)y / 100);
    put2(out + 14, (unsigned)y % 100);
    out[16] = ' ';
    put2(out + 17, secs / 3600);
    out[19] = ':';
    put2(out + 20, secs / 60 % 60);
    out[22] = ':';
    put2(out + 23, secs % 60);
    memcpy(out + 25, " GMT", 4);
    out[TMT_HTTP_DATE_LEN] = '\0';
}

/* ---- parsing ---- */

struct civil {
    int64_t year;
    unsigned month, day, hour, min, sec;
};

/* Value of exactly n ASCII digits at p, or -1. */
static int digits(const char *p, unsigned n)
{
    int v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Month 1..12 of a 3-letter name at p, or 0. */
static unsigned month_of(const char *p)
{
    for (unsigned i = 0; i < 12; i++) {
        if (memcmp(p, &month_short[3 * i], 3) == 0)
            return i + 1;
    }
    return 0;
}

static bool is_wday_short(const char *p)
{
    for (unsigned i = 0; i < 7; i++) {
        if (memcmp(p, &wday_short[3 * i], 3) == 0)
            return true;
    }
    return false;
}

static bool is_wday_long(const char *p, size_t len)
{
    for (unsigned i = 0; i < 7; i++) {
        if (strlen(wday_long[i]) == len && memcmp(p, wday_long[i], len) == 0)
            return true;
    }
    return false;
}

/* "HH:MM:SS" at p (8 bytes); ranges are checked later. */
static bool time_of_day(const char *p, struct civil *c)
{
    int h = digits(p, 2), mi = digits(p + 3, 2), s = digits(p + 6, 2);
    if (h < 0 || mi < 0 || s < 0 || p[2] != ':' || p[5] != ':')
        return false;
    c->hour = (unsigned)h;
    c->min = (unsigned)mi;
    c->sec = (unsigned)s;
    return true;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT": exactly TMT_HTTP_DATE_LEN bytes. */
static bool parse_imf(const char *p, struct civil *c)
{
    if (!is_wday_short(p) || memcmp(p + 3, ", ", 2) != 0 || p[7] != ' ' || p[11] != ' ' ||
        p[16] != ' ' || memcmp(p + 25, " GMT", 4) != 0)
        return false;
    int d = digits(p + 5, 2), y = digits(p + 12, 4);
    c->month = month_of(p + 8);
    if (d < 0 || y < 0 || c->month == 0 || !time_of_day(p + 17, c))
        return false;
    c->day = (unsigned)d;
    c->year = y;
    return true;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT": the comma and what follows are 24 bytes. */
static bool parse_rfc850(const char *p, size_t len, struct civil *c)
{
    if (len < 24 + 6 || p[len - 24] != ',' || !is_wday_long(p, len - 24))
        return false;
    const char *q = p + len - 23;
    if (q[0] != ' ' || q[3] != '-' || q[7] != '-' || q[10] != ' ' || memcmp(q + 19, " GMT", 4) != 0)
        return false;
    int d = digits(q + 1, 2), y = digits(q + 8, 2);
    c->month = month_of(q + 4);
    if (d < 0 || y < 0 || c->month == 0 || !time_of_day(q + 11, c))
        return false;
    c->day = (unsigned)d;
    c->year = y < 70 ? 2000 + y : 1900 + y;
    return true;
}

/* "Sun Nov  6 08:49:37 1994" (a two-digit day is also accepted): 24 bytes. */
static bool parse_asctime(const char *p, struct civil *c)
{
    if (!is_wday_short(p) || p[3] != ' ' || p[7] != ' ' || p[10] != ' ' || p[19] != ' ')
        return false;
    int d = p[8] == ' ' ? digits(p + 9, 1) : digits(p + 8, 2);
    int y = digits(p + 20, 4);
    c->month = month_of(p + 4);
    if (d < 0 || y < 0 || c->month == 0 || !time_of_day(p + 11, c))
        return false;
    c->day = (unsigned)d;
    c->year = y;
    return true;
}

int tmt_http_date_parse(struct tmt_slice s, int64_t *unix_s)
{
    const char *p = s.p;
    size_t len = s.len;
    while (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;

    struct civil c;
    bool ok;
    if (len == TMT_HTTP_DATE_LEN && p[3] == ',')
        ok = parse_imf(p, &c);
    else if (len == 24 && p[3] == ' ')
        ok = parse_asctime(p, &c);
    else
        ok = parse_rfc850(p, len, &c);
    if (!ok)
        return TMT_EINVAL;

    if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in_month(c.year, c.month) ||
        c.hour > 23 || c.min > 59 || c.sec > 60)
        return TMT_EINVAL;
    if (c.sec == 60)
        c.sec = 59;
    *unix_s = days_from_civil(c.year, c.month, c.day) * SECS_PER_DAY +
              (int64_t)(c.hour * 3600 + c.min * 60 + c.sec);
    return 0;
}
