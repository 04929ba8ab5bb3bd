/*
 * Unit tests of the trace generator: the same seed gives the same bytes, another seed other
 * bytes; the output reads back through the trace reader tomato-cachesim uses (header, time
 * order, three integers), every object keeps its size, every id decodes to a playlist, an init
 * segment or a segment within the asset, sessions start with the master playlist, churn adds
 * assets and bad parameters are refused.
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

#include "tmt/load_lib.h"
#include "tmt/trace.h"

static char *gen_text(const struct tmt_gen_params *p, size_t *len, struct tmt_gen_stats *st)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    struct tmt_err err;
    tmt_err_clear(&err);
    assert_int_equal(tmt_gen_write(p, f, st, &err), 0);
    fclose(f);
    return buf;
}

static void small_params(struct tmt_gen_params *p)
{
    tmt_gen_params_default(p);
    p->requests = 20000;
    p->assets = 50;
    p->seg_min = 5;
    p->seg_max = 40;
    p->churn_per_hour = 60;
    p->sessions_per_s = 1;
}

static void test_determinism(void **state)
{
    (void)state;
    struct tmt_gen_params p;
    struct tmt_gen_stats s1, s2, s3;
    small_params(&p);
    size_t l1, l2, l3;
    char *a = gen_text(&p, &l1, &s1);
    char *b = gen_text(&p, &l2, &s2);
    assert_int_equal(l1, l2);
    assert_memory_equal(a, b, l1);
    assert_int_equal(s1.requests, 20000);
    p.seed = 2;
    char *c = gen_text(&p, &l3, &s3);
    assert_true(l1 != l3 || memcmp(a, c, l1) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_format(void **state)
{
    (void)state;
    struct tmt_gen_params p;
    struct tmt_gen_stats st;
    small_params(&p);
    size_t len;
    char *text = gen_text(&p, &len, &st);
    assert_true(strncmp(text, "time,obj_id,obj_size\n", 21) == 0);
    char path[] = "/tmp/tmt-gen-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_trace *t = tmt_trace_open(path, &err);
    assert_non_null(t);
    struct tmt_trace_req req;
    uint64_t n = 0, masters = 0, bytes = 0, max_asset = 0;
    int rc;
    while ((rc = tmt_trace_next(t, &req, &err)) == 1) {
        n++;
        bytes += req.size;
        struct tmt_trace_obj o;
        tmt_trace_decode(req.obj_id, &o);
        assert_true(o.asset >= 1);
        max_asset = o.asset > max_asset ? o.asset : max_asset;
        assert_int_equal(tmt_gen_obj_size(&p, req.obj_id), req.size);
        if (o.rung == 99) {
            assert_int_equal(o.seg, 9999);
            masters++;
        } else {
            assert_true(o.rung < p.rungs);
            assert_true(o.seg == 0 || o.seg == 9999 || o.seg <= tmt_gen_seg_count(&p, o.asset));
        }
        char pbuf[64];
        assert_true(tmt_trace_path(req.obj_id, pbuf, sizeof(pbuf)) > 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, st.requests);
    assert_int_equal(bytes, st.bytes);
    /* every started session asked for the master; some are still pending at the end */
    assert_true(masters > 0 && masters <= st.sessions);
    assert_true(st.sessions - masters < 50);
    /* churn released assets beyond the first catalog */
    assert_true(max_asset > p.assets);
    tmt_trace_close(&t);
    unlink(path);
    free(text);
}

static void test_bad_params(void **state)
{
    (void)state;
    struct tmt_gen_params p;
    struct tmt_gen_stats st;
    struct tmt_err err;
    tmt_gen_params_default(&p);
    p.rungs = 7;
    assert_int_equal(tmt_gen_write(&p, stdout, &st, &err), TMT_EINVAL);
    assert_non_null(strstr(err.msg, "rungs"));
    tmt_gen_params_default(&p);
    p.seg_min = 10;
    p.seg_max = 5;
    assert_int_equal(tmt_gen_write(&p, stdout, &st, &err), TMT_EINVAL);
    tmt_gen_params_default(&p);
    p.sessions_per_s = 0;
    assert_int_equal(tmt_gen_write(&p, stdout, &st, &err), TMT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
