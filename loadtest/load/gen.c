/*
 * gen.c: the trace generator of load_lib.h.
 *
 * A discrete-event simulation on virtual time: viewing sessions arrive as a Poisson process,
 * pick an asset by Zipf popularity over a ranking into which new releases enter near the top
 * (churn: older titles drift down), and then request, in order, the master playlist, the media
 * playlist and init segment of each rendition they use, and segments from the start (or, one
 * time in ten, from a resume point) until they abandon: the watched fraction is exponential with
 * the configured mean, capped at the whole asset. The player starts at the lowest rung and climbs
 * one rung every three segments up to a per-session cap, with an occasional down-switch.
 * Pending sessions sit in a binary heap ordered by (next request time, session number), so the
 * output is in time order and the same parameters always give the same bytes.
 *
 * Object sizes are functions of (seed, obj_id) alone, so an object keeps its size.
 */
#include "tmt/load_lib.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/trace.h"

#define GEN_RUNG_MASTER 99u
#define GEN_SEG_PLAYLIST 9999u

static const uint64_t gen_bitrates[6] = {400000, 800000, 1600000, 3000000, 4500000, 6000000};

enum gen_step { STEP_MASTER, STEP_PLAYLIST, STEP_INIT, STEP_SEG };

struct gen_session {
    double t;
    uint64_t id, asset;
    unsigned seg, last, nsegs, seg_s, burst;
    unsigned rung, max_rung, rungs_seen;
    enum gen_step step;
};

struct gen_heap {
    struct gen_session *a;
    size_t n, cap;
};

static bool sess_before(const struct gen_session *x, const struct gen_session *y)
{
    return x->t < y->t || (x->t == y->t && x->id < y->id);
}

static void heap_push(struct gen_heap *h, struct gen_session s)
{
    if (h->n == h->cap) {
        h->cap = h->cap == 0 ? 64 : h->cap * 2;
        h->a = tmt_xrealloc(h->a, h->cap * sizeof(*h->a));
    }
    size_t i = h->n++;
    while (i > 0 && sess_before(&s, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = s;
}

static struct gen_session heap_pop(struct gen_heap *h)
{
    struct gen_session top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && sess_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!sess_before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

void tmt_gen_params_default(struct tmt_gen_params *p)
{
    *p = (struct tmt_gen_params){.seed = 1,
                                 .requests = 100000,
                                 .duration_s = 86400,
                                 .assets = 1000,
                                 .first_asset = 1,
                                 .churn_per_hour = 10,
                                 .alpha = 0.9,
                                 .rungs = 6,
                                 .seg_min = 30,
                                 .seg_max = 900,
                                 .sessions_per_s = 2,
                                 .watch_mean = 0.3,
                                 .realtime = true};
}

static uint64_t gen_hash(const struct tmt_gen_params *p, uint64_t x)
{
    return tmt_mix64(x ^ tmt_mix64(p->seed + 0x51ed27u));
}

unsigned tmt_gen_seg_seconds(const struct tmt_gen_params *p, uint64_t asset)
{
    return 2 + 2 * (unsigned)(gen_hash(p, asset * 3 + 1) % 3);
}

unsigned tmt_gen_seg_count(const struct tmt_gen_params *p, uint64_t asset)
{
    unsigned span = p->seg_max - p->seg_min + 1;
    return p->seg_min + (unsigned)(gen_hash(p, asset * 3 + 2) % span);
}

uint64_t tmt_gen_obj_size(const struct tmt_gen_params *p, uint64_t obj_id)
{
    struct tmt_trace_obj o;
    tmt_trace_decode(obj_id, &o);
    uint64_t h = gen_hash(p, obj_id);
    if (o.rung == GEN_RUNG_MASTER)
        return 300 + 180 * (uint64_t)p->rungs + h % 200;
    if (o.seg == GEN_SEG_PLAYLIST)
        return 120 + 28 * (uint64_t)tmt_gen_seg_count(p, o.asset) + h % 64;
    if (o.seg == 0)
        return 700 + h % 600;
    double nominal = (double)gen_bitrates[o.rung % 6] * tmt_gen_seg_seconds(p, o.asset) / 8;
    return (uint64_t)(nominal * (0.7 + 0.6 * (double)(h >> 11) * 0x1.0p-53));
}

static int check_params(const struct tmt_gen_params *p, struct tmt_err *err)
{
    if (p->assets == 0 || p->first_asset == 0)
        return tmt_err_set(err, TMT_EINVAL, "assets and first_asset must be at least 1");
    double released = p->churn_per_hour * (double)p->duration_s / 3600.0;
    if (!(released >= 0) || (double)p->assets + released + (double)p->first_asset > 1e9)
        return tmt_err_set(err, TMT_EINVAL, "catalog too large (at most 1e9 assets in all)");
    if (p->rungs < 1 || p->rungs > 6)
        return tmt_err_set(err, TMT_EINVAL, "rungs must be 1..6");
    if (p->seg_min < 1 || p->seg_max > 9998 || p->seg_min > p->seg_max)
        return tmt_err_set(err, TMT_EINVAL, "segments must satisfy 1 <= min <= max <= 9998");
    if (!(p->sessions_per_s > 0) || !(p->watch_mean > 0) || !(p->alpha >= 0))
        return tmt_err_set(err, TMT_EINVAL, "session rate and watch mean must be > 0, alpha >= 0");
    if (p->requests == 0 && p->duration_s == 0)
        return tmt_err_set(err, TMT_EINVAL, "a request count or a duration is needed");
    return 0;
}

static struct gen_session new_session(const struct tmt_gen_params *p, struct tmt_rng *rng, double t,
                                      uint64_t id, uint64_t asset)
{
    struct gen_session s = {.t = t, .id = id, .asset = asset, .step = STEP_MASTER};
    s.nsegs = tmt_gen_seg_count(p, asset);
    s.seg_s = tmt_gen_seg_seconds(p, asset);
    s.seg = 1;
    if (s.nsegs > 3 && tmt_rng_unit(rng) < 0.1)
        s.seg = 1 + (unsigned)(tmt_rng_next(rng) % (s.nsegs / 2));
    double f = tmt_rng_exp(rng, p->watch_mean);
    unsigned left = s.nsegs - s.seg + 1;
    unsigned watch = f >= 1 ? left : (unsigned)ceil(f * left);
    s.last = s.seg + TMT_MAX(watch, 1u) - 1;
    double u = tmt_rng_unit(rng);
    unsigned drop = (unsigned)(u * u * p->rungs);
    s.max_rung = p->rungs - 1 - TMT_MIN(drop, p->rungs - 1);
    return s;
}

/* Emits s's current request and advances it; false when the session has ended. */
static bool session_step(const struct tmt_gen_params *p, struct tmt_rng *rng, struct gen_session *s,
                         uint64_t *obj)
{
    uint64_t base = s->asset * 1000000;
    switch (s->step) {
    case STEP_MASTER:
        *obj = base + GEN_RUNG_MASTER * 10000 + GEN_SEG_PLAYLIST;
        s->step = STEP_PLAYLIST;
        return true;
    case STEP_PLAYLIST:
        *obj = base + s->rung * 10000 + GEN_SEG_PLAYLIST;
        s->rungs_seen |= 1u << s->rung;
        s->step = STEP_INIT;
        return true;
    case STEP_INIT:
        *obj = base + s->rung * 10000;
        s->step = STEP_SEG;
        return true;
    case STEP_SEG:
        break;
    }
    *obj = base + s->rung * 10000 + s->seg;
    if (s->seg >= s->last)
        return false;
    s->seg++;
    if (s->burst < 2)
        s->burst++;
    else if (p->realtime)
        s->t += s->seg_s;
    if (s->rung < s->max_rung && s->seg % 3 == 0)
        s->rung++;
    else if (s->rung > 0 && tmt_rng_unit(rng) < 0.03)
        s->rung--;
    if ((s->rungs_seen & (1u << s->rung)) == 0)
        s->step = STEP_PLAYLIST;
    return true;
}

int tmt_gen_write(const struct tmt_gen_params *p, FILE *out, struct tmt_gen_stats *st,
                  struct tmt_err *err)
{
    memset(st, 0, sizeof(*st));
    int rc = check_params(p, err);
    if (rc != 0)
        return rc;
    uint64_t total = p->assets + (uint64_t)(p->churn_per_hour * (double)p->duration_s / 3600.0) + 1;
    struct tmt_zipf *z = tmt_zipf_new((size_t)total, p->alpha);
    uint64_t *rank = malloc((size_t)total * sizeof(*rank));
    struct gen_heap heap = {0};
    if (z == NULL || rank == NULL) {
        rc = tmt_err_set(err, TMT_ELIMIT, "no memory for a catalog of %" PRIu64 " assets", total);
        goto out;
    }
    struct tmt_rng rng, arrivals, releases;
    tmt_rng_seed(&rng, p->seed);
    tmt_rng_seed(&arrivals, p->seed * 3 + 1);
    tmt_rng_seed(&releases, p->seed * 7 + 2);
    size_t n = (size_t)p->assets;
    for (size_t i = 0; i < n; i++)
        rank[i] = p->first_asset + i;
    uint64_t next_id = p->first_asset + n, sess_no = 0;
    double next_arrival = tmt_rng_exp(&arrivals, 1.0 / p->sessions_per_s);
    double next_release =
        p->churn_per_hour > 0 ? tmt_rng_exp(&releases, 3600.0 / p->churn_per_hour) : INFINITY;
    if (fprintf(out, "time,obj_id,obj_size\n") < 0)
        goto io;
    for (;;) {
        if (p->requests != 0 && st->requests >= p->requests)
            break;
        double t_sess = heap.n > 0 ? heap.a[0].t : INFINITY;
        double t = TMT_MIN(TMT_MIN(t_sess, next_arrival), next_release);
        if (p->duration_s != 0 && t >= (double)p->duration_s)
            break;
        if (t == next_release && n < total) {
            /* a release enters among the top ten and pushes the rest down */
            size_t at = (size_t)(tmt_rng_next(&releases) % TMT_MIN(n + 1, (size_t)10));
            memmove(rank + at + 1, rank + at, (n - at) * sizeof(*rank));
            rank[at] = next_id++;
            n++;
            next_release += tmt_rng_exp(&releases, 3600.0 / p->churn_per_hour);
            continue;
        }
        if (t == next_release) {
            next_release = INFINITY;
            continue;
        }
        if (t == next_arrival && next_arrival < t_sess) {
            size_t r = tmt_zipf_rank_below(z, tmt_rng_unit(&arrivals), n);
            heap_push(&heap, new_session(p, &rng, t, sess_no++, rank[r]));
            st->sessions++;
            next_arrival += tmt_rng_exp(&arrivals, 1.0 / p->sessions_per_s);
            continue;
        }
        struct gen_session s = heap_pop(&heap);
        uint64_t obj, tsec = (uint64_t)s.t;
        bool more = session_step(p, &rng, &s, &obj);
        uint64_t size = tmt_gen_obj_size(p, obj);
        if (fprintf(out, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", tsec, obj, size) < 0)
            goto io;
        st->requests++;
        st->bytes += size;
        if (more)
            heap_push(&heap, s);
    }
    st->assets = next_id - p->first_asset;
    if (fflush(out) != 0)
        goto io;
    goto out;
io:
    rc = tmt_err_set_errno(err, TMT_EIO, errno, "writing the trace");
out:
    free(heap.a);
    free(rank);
    tmt_zipf_free(&z);
    return rc;
}
