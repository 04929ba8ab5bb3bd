/*
 * Unit tests of the trace reader: good traces, each kind of bad line, and the object id scheme.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmt/trace.h"

static char path[64];

static void write_trace(const char *text)
{
    strcpy(path, "/tmp/tmt-trace-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Reads the whole trace; returns the count of requests or the error code. */
static int read_all(const char *text, struct tmt_err *err, uint64_t *sum_size)
{
    write_trace(text);
    tmt_err_clear(err);
    struct tmt_trace *t = tmt_trace_open(path, err);
    int n = 0, r = 0;
    *sum_size = 0;
    if (t == NULL) {
        r = err->code;
        goto out;
    }
    struct tmt_trace_req req;
    while ((r = tmt_trace_next(t, &req, err)) == 1) {
        n++;
        *sum_size += req.size;
    }
out:
    tmt_trace_close(&t);
    unlink(path);
    return r < 0 ? r : n;
}

static void test_good(void **state)
{
    (void)state;
    struct tmt_err err;
    uint64_t sum;
    assert_int_equal(read_all("time,obj_id,obj_size\n0,1,10\n0,2,20\r\n\n5,1,10", &err, &sum), 3);
    assert_int_equal(sum, 40);
    assert_int_equal(read_all("time,obj_id,obj_size\n", &err, &sum), 0);
}

static void test_bad(void **state)
{
    (void)state;
    struct tmt_err err;
    uint64_t sum;
    assert_int_equal(read_all("", &err, &sum), TMT_EINVAL);
    assert_non_null(strstr(err.msg, "empty trace"));
    assert_int_equal(read_all("t,o,s\n", &err, &sum), TMT_EINVAL);
    assert_non_null(strstr(err.msg, ":1: expected header"));
    assert_int_equal(read_all("time,obj_id,obj_size\n0,1,10\n0,x,3\n", &err, &sum), TMT_EINVAL);
    assert_non_null(strstr(err.msg, ":3: expected three unsigned integers"));
    assert_int_equal(read_all("time,obj_id,obj_size\n0,1,10,4\n", &err, &sum), TMT_EINVAL);
    assert_int_equal(read_all("time,obj_id,obj_size\n0,1,-1\n", &err, &sum), TMT_EINVAL);
    assert_int_equal(read_all("time,obj_id,obj_size\n0,1,99999999999999999999\n", &err, &sum),
                     TMT_EINVAL);
    assert_int_equal(read_all("time,obj_id,obj_size\n5,1,1\n4,1,1\n", &err, &sum), TMT_EINVAL);
    assert_non_null(strstr(err.msg, ":3: time goes backwards (4 after 5)"));
    assert_int_equal(read_all("time,obj_id,obj_size\n/nope\n", &err, &sum), TMT_EINVAL);
    struct tmt_trace *t = tmt_trace_open("/nonexistent/trace.csv", &err);
    assert_null(t);
    assert_int_equal(err.code, TMT_EIO);
}

static void test_decode(void **state)
{
    (void)state;
    struct tmt_trace_obj o;
    tmt_trace_decode(170019999, &o);
    assert_int_equal(o.asset, 170);
    assert_int_equal(o.rung, 1);
    assert_int_equal(o.seg, 9999);
    tmt_trace_decode(42990000 + 9999, &o);
    assert_int_equal(o.asset, 42);
    assert_int_equal(o.rung, 99);
    tmt_trace_decode(5030017, &o);
    assert_int_equal(o.rung, 3);
    assert_int_equal(o.seg, 17);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
