/*
 * loop.c: libevent glue for one thread's event loop (see loop.h).
 */
#include "tmt/loop.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <stdbool.h>

#include "tmt/base.h"
#include "tmt/err.h"
#include "tmt/log.h"

#define MAX_SIGNALS 8

struct loop_signal {
    unsigned magic;
#define LOOP_SIGNAL_MAGIC 0x51a7e001u
    struct event *ev;
    tmt_signal_fn *cb;
    void *arg;
};

struct tmt_loop {
    unsigned magic;
#define TMT_LOOP_MAGIC 0x100b1e55u
    struct event_base *base;
    struct loop_signal signals[MAX_SIGNALS];
    unsigned n_signals;
    /* tmt_loop_post: a queue other threads append to, drained by post_ev on this thread */
    pthread_mutex_t post_mu;
    struct loop_task *post_head, *post_tail;
    struct event *post_ev;
};

struct loop_task {
    struct loop_task *next;
    tmt_task_fn *fn;
    void *arg;
};

static void on_post(evutil_socket_t fd, short what, void *arg)
{
    struct tmt_loop *loop = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&loop->post_mu);
    struct loop_task *t = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_mu);
    while (t != NULL) {
        struct loop_task *next = t->next;
        t->fn(t->arg);
        free(t);
        t = next;
    }
}

void tmt_loop_post(struct tmt_loop *loop, tmt_task_fn *fn, void *arg)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    struct loop_task *t = tmt_xmalloc(sizeof(*t));
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&loop->post_mu);
    bool was_empty = loop->post_head == NULL;
    if (loop->post_tail != NULL)
        loop->post_tail->next = t;
    else
        loop->post_head = t;
    loop->post_tail = t;
    pthread_mutex_unlock(&loop->post_mu);
    /* event_active is thread-safe once libevent's locking is on (evthread_use_pthreads). */
    if (was_empty)
        event_active(loop->post_ev, EV_READ, 0);
}

static void use_threads(void)
{
    (void)evthread_use_pthreads();
}

struct tmt_loop *tmt_loop_new(void)
{
    /* Before any event_base exists: bases made from now on can be woken from other threads. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, use_threads);
    struct tmt_loop *loop = tmt_xcalloc(1, sizeof(*loop));
    loop->magic = TMT_LOOP_MAGIC;
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        goto fail;
    loop->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (loop->base == NULL)
        goto fail;
    pthread_mutex_init(&loop->post_mu, NULL);
    loop->post_ev = event_new(loop->base, -1, 0, on_post, loop);
    if (loop->post_ev == NULL) {
        event_base_free(loop->base);
        goto fail;
    }
    return loop;
fail:
    tmt_log(TMT_LOG_ERROR, "loop", "cannot create event loop", "%s", "");
    free(loop);
    return NULL;
}

void tmt_loop_free(struct tmt_loop **loopp)
{
    struct tmt_loop *loop = *loopp;
    *loopp = NULL;
    if (loop == NULL)
        return;
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    for (unsigned i = 0; i < loop->n_signals; i++)
        event_free(loop->signals[i].ev);
    event_free(loop->post_ev);
    for (struct loop_task *t = loop->post_head, *next; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    pthread_mutex_destroy(&loop->post_mu);
    event_base_free(loop->base);
    loop->magic = 0;
    free(loop);
}

int tmt_loop_run(struct tmt_loop *loop)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    return event_base_dispatch(loop->base) < 0 ? TMT_EIO : TMT_OK;
}

void tmt_loop_stop(struct tmt_loop *loop)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    event_base_loopbreak(loop->base);
}

uint64_t tmt_loop_now_ms(struct tmt_loop *loop)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    /*
     * libevent's cached time is wall-clock time, which jumps; the monotonic clock is read through
     * the vDSO, which costs no system call.
     */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_signal_event(evutil_socket_t signo, short what, void *arg)
{
    struct loop_signal *s;
    (void)what;
    TMT_OBJ_CAST(s, arg, LOOP_SIGNAL_MAGIC);
    s->cb((int)signo, s->arg);
}

int tmt_loop_on_signal(struct tmt_loop *loop, int signo, tmt_signal_fn *cb, void *arg)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    TMT_ASSERT(loop->n_signals < MAX_SIGNALS);
    struct loop_signal *s = &loop->signals[loop->n_signals];
    s->magic = LOOP_SIGNAL_MAGIC;
    s->cb = cb;
    s->arg = arg;
    s->ev = evsignal_new(loop->base, signo, on_signal_event, s);
    if (s->ev == NULL || evsignal_add(s->ev, NULL) != 0) {
        if (s->ev != NULL)
            event_free(s->ev);
        s->magic = 0;
        return TMT_EIO;
    }
    loop->n_signals++;
    return TMT_OK;
}

struct event_base *tmt_loop_base(struct tmt_loop *loop)
{
    TMT_CHECK_OBJ(loop, TMT_LOOP_MAGIC);
    return loop->base;
}
