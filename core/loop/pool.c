/*
 * pool.c: blocking-work threads (see pool.h). One mutex and condition variable guard a FIFO of
 * jobs; a job is one allocation, freed after its done callback is posted.
 */
#include "tmt/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "tmt/log.h"

struct pool_job {
    struct pool_job *next;
    tmt_task_fn *work, *done;
    void *arg;
    struct tmt_loop *loop;
};

struct tmt_pool {
    unsigned magic;
#define POOL_MAGIC 0x9001f00du
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pool_job *head, *tail;
    size_t pending;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
};

static void *pool_main(void *arg)
{
    struct tmt_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        struct pool_job *j = p->head;
        if (j == NULL) {
            pthread_mutex_unlock(&p->mu);
            return NULL; /* stopping and drained */
        }
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->pending--;
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        if (j->done != NULL)
            tmt_loop_post(j->loop, j->done, j->arg);
        free(j);
    }
}

struct tmt_pool *tmt_pool_new(unsigned threads, const char *name)
{
    struct tmt_pool *p = tmt_xcalloc(1, sizeof(*p));
    p->magic = POOL_MAGIC;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (threads == 0)
        threads = 1;
    p->threads = tmt_xcalloc(threads, sizeof(*p->threads));
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0) {
            tmt_log(TMT_LOG_ERROR, "pool", "cannot start a thread", "name=%s started=%u", name,
                    p->n_threads);
            break;
        }
        char tn[16];
        snprintf(tn, sizeof(tn), "%.8s-%u", name, i % 1000u);
        pthread_setname_np(p->threads[i], tn);
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        tmt_pool_free(&p);
        return NULL;
    }
    return p;
}

void tmt_pool_submit(struct tmt_pool *p, tmt_task_fn *work, tmt_task_fn *done, void *arg,
                     struct tmt_loop *loop)
{
    TMT_CHECK_OBJ(p, POOL_MAGIC);
    struct pool_job *j = tmt_xmalloc(sizeof(*j));
    *j = (struct pool_job){.work = work, .done = done, .arg = arg, .loop = loop};
    pthread_mutex_lock(&p->mu);
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->pending++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

size_t tmt_pool_pending(struct tmt_pool *p)
{
    TMT_CHECK_OBJ(p, POOL_MAGIC);
    pthread_mutex_lock(&p->mu);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void tmt_pool_free(struct tmt_pool **pp)
{
    struct tmt_pool *p = *pp;
    if (p == NULL)
        return;
    TMT_CHECK_OBJ(p, POOL_MAGIC);
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->magic = 0;
    free(p);
    *pp = NULL;
}
