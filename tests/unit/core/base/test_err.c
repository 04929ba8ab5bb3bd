/*
 * Unit tests of status codes, their HTTP mapping and struct tmt_err.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "tmt/err.h"

static void test_names_and_statuses(void **state)
{
    (void)state;
    assert_string_equal(tmt_strerror(TMT_OK), "success");
    assert_string_equal(tmt_strerror(TMT_EINVAL), "invalid input");
    assert_string_equal(tmt_strerror(TMT_ECORRUPT), "corrupt data");
    assert_string_equal(tmt_strerror(-999), "unknown error");
    assert_int_equal(tmt_err_http_status(TMT_EINVAL), 400);
    assert_int_equal(tmt_err_http_status(TMT_EPERM), 403);
    assert_int_equal(tmt_err_http_status(TMT_ENOTFOUND), 404);
    assert_int_equal(tmt_err_http_status(TMT_EEXIST), 409);
    assert_int_equal(tmt_err_http_status(TMT_EUPSTREAM), 502);
    assert_int_equal(tmt_err_http_status(TMT_ELIMIT), 503);
    assert_int_equal(tmt_err_http_status(TMT_ETIMEDOUT), 504);
    assert_int_equal(tmt_err_http_status(TMT_EIO), 500);
    assert_int_equal(tmt_err_http_status(TMT_ECORRUPT), 500);
}

static void test_err_fill(void **state)
{
    (void)state;
    struct tmt_err err;
    tmt_err_clear(&err);
    assert_int_equal(err.code, TMT_OK);
    assert_string_equal(err.msg, "");
    assert_int_equal(tmt_err_set(&err, TMT_EINVAL, "bad %s at %d", "thing", 7), TMT_EINVAL);
    assert_string_equal(err.msg, "bad thing at 7");
    assert_int_equal(tmt_err_set_errno(&err, TMT_EIO, ENOENT, "open %s", "/x"), TMT_EIO);
    assert_int_equal(err.sys_errno, ENOENT);
    assert_string_equal(err.msg, "open /x: No such file or directory");
    /* NULL is allowed and still returns the code. */
    assert_int_equal(tmt_err_set(NULL, TMT_ELIMIT, "x"), TMT_ELIMIT);
    /* Long messages are cut, never overflow. */
    char big[TMT_ERR_MSG_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tmt_err_set(&err, TMT_EINVAL, "%s", big);
    assert_int_equal(strlen(err.msg), TMT_ERR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_statuses),
        cmocka_unit_test(test_err_fill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
