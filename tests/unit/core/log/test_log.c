/*
 * Unit tests of the logger: level filtering, the line format, escaping, truncation, and the count
 * of lines a failing sink dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmt/err.h"
#include "tmt/log.h"

static int fds[2];

static int setup(void **state)
{
    (void)state;
    if (pipe(fds) != 0)
        return -1;
    tmt_log_set_fd(fds[1]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmt_log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
    return 0;
}

static size_t drain(char *buf, size_t cap)
{
    /* Whatever was written is in the pipe already: writes are synchronous. */
    tmt_log_set_fd(-1);
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fds[0]);
    assert_int_equal(pipe(fds), 0);
    tmt_log_set_fd(fds[1]);
    return n;
}

static void test_format_and_levels(void **state)
{
    (void)state;
    char buf[8192];
    tmt_log_set_level(TMT_LOG_INFO);
    tmt_log(TMT_LOG_DEBUG, "t", "hidden", "k=%d", 1);
    tmt_log(TMT_LOG_WARN, "cache", "a \"quoted\"\tmessage", "key=%s n=%d", "v", 42);
    drain(buf, sizeof(buf));
    assert_null(strstr(buf, "hidden"));
    assert_int_equal(strncmp(buf, "ts=", 3), 0);
    assert_non_null(
        strstr(buf, "Z level=warn mod=cache msg=\"a \\\"quoted\\\"\\x09message\" key=v n=42\n"));
    /* One line, one newline. */
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);

    tmt_log_set_level(TMT_LOG_DEBUG);
    tmt_log(TMT_LOG_DEBUG, "t", "shown", "%s", "");
    drain(buf, sizeof(buf));
    assert_non_null(strstr(buf, "level=debug mod=t msg=\"shown\"\n"));
    tmt_log_set_level(TMT_LOG_INFO);
}

static void test_truncation(void **state)
{
    (void)state;
    char buf[8192], big[TMT_LOG_LINE_MAX * 2];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tmt_log(TMT_LOG_ERROR, "t", "long", "v=%s", big);
    size_t n = drain(buf, sizeof(buf));
    assert_int_equal(n, TMT_LOG_LINE_MAX);
    assert_memory_equal(buf + n - 4, "...\n", 4);
}

static void test_level_names(void **state)
{
    (void)state;
    enum tmt_log_level l;
    assert_int_equal(tmt_log_level_parse("warn", &l), 0);
    assert_int_equal(l, TMT_LOG_WARN);
    assert_int_equal(tmt_log_level_parse("verbose", &l), TMT_EINVAL);
    assert_string_equal(tmt_log_level_name(TMT_LOG_DEBUG), "debug");
}

static void test_dropped(void **state)
{
    (void)state;
    unsigned long before = tmt_log_dropped();
    int saved = tmt_log_set_fd(-1);
    tmt_log(TMT_LOG_ERROR, "t", "lost", "%s", "");
    tmt_log_set_fd(saved);
    assert_int_equal(tmt_log_dropped(), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_levels),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_dropped),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
