/*
 * pool.h: a fixed set of threads for work that blocks (file reads, packaging, password hashing),
 * so that event loops never wait on it.
 *
 * A job is submitted with a loop: work(arg) runs on one of the pool's threads, then done(arg)
 * runs on that loop's thread (through tmt_loop_post), so the caller touches its state only from
 * its own loop. Jobs start in the order submitted (several at once, one per thread). Any thread
 * may submit.
 */
#ifndef TMT_POOL_H
#define TMT_POOL_H

#include <stddef.h>

#include "tmt/loop.h"

struct tmt_pool;

/* Starts `threads` threads (at least 1) named "{name}-{i}". NULL (logged) if none can start. */
struct tmt_pool *tmt_pool_new(unsigned threads, const char *name);

/*
 * Queues a job. work runs on a pool thread, then done is posted to loop (done may be NULL: then
 * nothing is posted and work must release arg itself).
 */
void tmt_pool_submit(struct tmt_pool *p, tmt_task_fn *work, tmt_task_fn *done, void *arg,
                     struct tmt_loop *loop);

/* Jobs queued and not yet started. */
size_t tmt_pool_pending(struct tmt_pool *p);

/*
 * Runs what is still queued, joins the threads and frees the pool (NULL-safe). The loops the
 * jobs' done callbacks go to must outlive this call and run once more to receive them.
 */
void tmt_pool_free(struct tmt_pool **p);

#endif
