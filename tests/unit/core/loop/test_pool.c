/*
 * test_pool.c: blocking-work pool: every job's work runs once on a pool thread (never on the
 * loop's), its done runs once on the loop, in submission order per pool thread count 1, and
 * freeing the pool runs what is still queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "tmt/loop.h"
#include "tmt/pool.h"

#define JOBS 2000

struct ctx {
    struct tmt_loop *loop;
    pthread_t loop_thread;
    atomic_int worked[JOBS];
    int done[JOBS];
    int done_order[JOBS];
    int n_done;
    atomic_int on_loop_thread;
};

struct job {
    struct ctx *c;
    int i;
};

static void work(void *arg)
{
    struct job *j = arg;
    if (pthread_equal(pthread_self(), j->c->loop_thread))
        atomic_fetch_add(&j->c->on_loop_thread, 1);
    atomic_fetch_add(&j->c->worked[j->i], 1);
    if (j->i % 97 == 0)
        usleep(200);
}

static void done(void *arg)
{
    struct job *j = arg;
    struct ctx *c = j->c;
    assert_true(pthread_equal(pthread_self(), c->loop_thread));
    assert_int_equal(atomic_load(&c->worked[j->i]), 1);
    c->done[j->i]++;
    c->done_order[c->n_done++] = j->i;
    free(j);
    if (c->n_done == JOBS)
        tmt_loop_stop(c->loop);
}

static void keep_alive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void run_jobs(unsigned threads, bool ordered)
{
    struct ctx *c = calloc(1, sizeof(*c));
    c->loop = tmt_loop_new();
    c->loop_thread = pthread_self();
    struct tmt_pool *p = tmt_pool_new(threads, "test");
    assert_non_null(p);
    for (int i = 0; i < JOBS; i++) {
        struct job *j = malloc(sizeof(*j));
        *j = (struct job){c, i};
        tmt_pool_submit(p, work, done, j, c->loop);
    }
    /* A loop with nothing registered returns at once: a timer keeps it waiting for the posts. */
    struct event *keep = event_new(tmt_loop_base(c->loop), -1, EV_PERSIST, keep_alive, NULL);
    static const struct timeval second = {1, 0};
    event_add(keep, &second);
    assert_int_equal(tmt_loop_run(c->loop), 0);
    event_free(keep);
    assert_int_equal(c->n_done, JOBS);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(c->done[i], 1);
        if (ordered)
            assert_int_equal(c->done_order[i], i);
    }
    assert_int_equal(atomic_load(&c->on_loop_thread), 0);
    assert_int_equal(tmt_pool_pending(p), 0);
    tmt_pool_free(&p);
    assert_null(p);
    tmt_loop_free(&c->loop);
    free(c);
}

static void one_thread_in_order(void **state)
{
    (void)state;
    run_jobs(1, true);
}

static void four_threads(void **state)
{
    (void)state;
    run_jobs(4, false);
}

static atomic_int drained;

static void slow_work(void *arg)
{
    (void)arg;
    usleep(1000);
    atomic_fetch_add(&drained, 1);
}

static void free_drains_the_queue(void **state)
{
    (void)state;
    struct tmt_pool *p = tmt_pool_new(2, "drain");
    for (int i = 0; i < 50; i++)
        tmt_pool_submit(p, slow_work, NULL, NULL, NULL);
    tmt_pool_free(&p);
    assert_int_equal(atomic_load(&drained), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_thread_in_order),
        cmocka_unit_test(four_threads),
        cmocka_unit_test(free_drains_the_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
