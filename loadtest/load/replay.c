/*
 * replay.c: trace mode. Each worker reads the whole trace and sends the requests whose line
 * number modulo the worker count is its own, so W workers split one trace without sharing a
 * reader. With replay.rate the worker paces its share at rate / W requests per second (late
 * requests go as soon as a connection frees up); without it, as fast as its share of
 * replay.connections concurrent requests allows. obj_id becomes the trace's URL path
 * (tmt_trace_path) behind the target's prefix and token. Reading the file happens on the loop
 * thread: buffered local reads, a few microseconds per line.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_int.h"
#include "tmt/loop.h"
#include "tmt/trace.h"

#define REPLAY_MAGIC 0x4e9a1a70u

struct replay {
    unsigned magic;
    struct load_worker *w;
    struct tmt_trace *trace;
    struct event *timer;
    uint64_t line, sent, start_ms;
    unsigned conc, inflight;
    double rate; /* per worker, 0 = as fast as possible */
    bool eof;
    char path[1024];
};

static void pump(struct replay *r);

static void on_result(void *arg, const struct load_result *res)
{
    (void)res;
    struct replay *r;
    TMT_OBJ_CAST(r, arg, REPLAY_MAGIC);
    r->inflight--;
    pump(r);
}

static void on_timer(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct replay *r;
    TMT_OBJ_CAST(r, arg, REPLAY_MAGIC);
    pump(r);
}

/* The next request of this worker's share, or false at the end (or on a bad line). */
static bool next_req(struct replay *r, struct tmt_trace_req *req)
{
    const struct load_plan *p = load_worker_plan(r->w);
    for (;;) {
        struct tmt_err err;
        tmt_err_clear(&err);
        int rc = tmt_trace_next(r->trace, req, &err);
        if (rc != 1) {
            if (rc < 0)
                fprintf(stderr, "tomato-load: %s\n", err.msg);
            return false;
        }
        if (r->line++ % p->workers == load_worker_index(r->w))
            return true;
    }
}

static void pump(struct replay *r)
{
    struct load_worker *w = r->w;
    const struct load_plan *p = load_worker_plan(w);
    while (!r->eof && r->inflight < r->conc && !load_worker_stopping(w)) {
        if (r->rate > 0) {
            uint64_t due = r->start_ms + (uint64_t)((double)r->sent * 1000.0 / r->rate);
            uint64_t now = tmt_loop_now_ms(load_worker_loop(w));
            if (now < due) {
                if (!evtimer_pending(r->timer, NULL))
                    load_timer_arm(r->timer, due - now);
                return;
            }
        }
        struct tmt_trace_req req;
        if (!next_req(r, &req)) {
            r->eof = true;
            break;
        }
        int n = snprintf(r->path, sizeof(r->path), "%s", p->prefix);
        tmt_trace_path(req.obj_id, r->path + n, sizeof(r->path) - (size_t)n);
        if (!load_fetch(w, r->path, false, on_result, r)) {
            r->eof = true;
            break;
        }
        r->sent++;
        r->inflight++;
    }
    if (r->eof && r->inflight == 0)
        load_worker_driver_done(w);
}

void *load_replay_start(struct load_worker *w)
{
    const struct load_plan *p = load_worker_plan(w);
    struct replay *r = tmt_xcalloc(1, sizeof(*r));
    r->magic = REPLAY_MAGIC;
    r->w = w;
    unsigned idx = load_worker_index(w);
    uint64_t c = (uint64_t)p->conf->connections;
    r->conc = (unsigned)(c / p->workers + (idx < c % p->workers ? 1 : 0));
    if (r->conc == 0)
        r->conc = 1;
    r->rate = (double)p->conf->rate / p->workers;
    r->timer = load_timer_new(w, on_timer, r);
    r->start_ms = tmt_loop_now_ms(load_worker_loop(w));
    struct tmt_err err;
    tmt_err_clear(&err);
    r->trace = tmt_trace_open(p->conf->trace, &err);
    if (r->trace == NULL) {
        fprintf(stderr, "tomato-load: %s\n", err.msg);
        r->eof = true;
        load_worker_driver_done(w);
        return r;
    }
    pump(r);
    return r;
}

void load_replay_free(void *d)
{
    struct replay *r = d;
    if (r == NULL)
        return;
    event_free(r->timer);
    tmt_trace_close(&r->trace);
    r->magic = 0;
    free(r);
}
