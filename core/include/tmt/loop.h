/*
 * loop.h: an event loop (one libevent event_base) and the clock it caches.
 *
 * One loop per thread; a loop and everything registered on it are touched only by its thread.
 * tmt_loop_now_ms() is the monotonic clock (read through the vDSO, no system call). Code on the
 * loop reads it once per event and passes `now` down: cache, token and lease code take time as a
 * parameter so tests and the cache simulator run on virtual time.
 *
 * Signals: tmt_loop_on_signal turns a signal into a callback on this loop (libevent's signal
 * events, which use a self-pipe), so no handler runs in signal context. Only one loop per process
 * should register signals: the main thread's.
 */
#ifndef TMT_LOOP_H
#define TMT_LOOP_H

#include <stdint.h>

#include "tmt/base.h"

struct tmt_loop;
struct event_base;

/* Creates a loop, or NULL (logged) if libevent cannot. */
struct tmt_loop *tmt_loop_new(void);
void tmt_loop_free(struct tmt_loop **loop);

/* Runs until tmt_loop_stop. Returns 0, or TMT_EIO if libevent failed. */
int tmt_loop_run(struct tmt_loop *loop) TMT_MUST_CHECK;

/* Makes tmt_loop_run return after the current callbacks. Loop thread only. */
void tmt_loop_stop(struct tmt_loop *loop);

/* Monotonic milliseconds. */
uint64_t tmt_loop_now_ms(struct tmt_loop *loop);

/* Calls cb(signo, arg) on the loop each time signo arrives. Returns 0 or TMT_EIO. */
typedef void tmt_signal_fn(int signo, void *arg);
int tmt_loop_on_signal(struct tmt_loop *loop, int signo, tmt_signal_fn *cb,
                       void *arg) TMT_MUST_CHECK;

/*
 * Runs fn(arg) on loop's thread soon. The one call here that other threads may make: workers hand
 * each other work this way (a fill finishing on one worker wakes the requests waiting on
 * another). Posts from one thread run in the order posted. Nothing posted runs after the loop
 * is freed (pending posts are dropped).
 */
typedef void tmt_task_fn(void *arg);
void tmt_loop_post(struct tmt_loop *loop, tmt_task_fn *fn, void *arg);

/* The underlying event_base, for the modules that register libevent objects themselves. */
struct event_base *tmt_loop_base(struct tmt_loop *loop);

#endif
