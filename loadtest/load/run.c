/*
 * run.c: tomato-load's workers, its request layer and its report.
 *
 * Each worker thread owns a loop, a client (keep-alive pool to the one target address: the core
 * HTTP/1.1 client for plain HTTP/1.1, conn.c for TLS and HTTP/2) and a driver (trace replay or
 * viewers); a viewer with viewers.connection=per-viewer has a client of its own. Every request goes
 * through load_fetch, which takes a ticket from the process-wide budget (load.requests), times the
 * head and the whole response, reads X-Cache and classifies errors; request records come from a
 * per-worker freelist, so the steady state allocates nothing per request but the client's own call.
 * A 100 ms timer per worker enforces load.duration and SIGINT: in-flight calls are then cancelled
 * and counted as cancelled, not as requests. The main thread prints the progress line once a second
 * from the workers' relaxed-atomic live counters, joins the threads, merges their stats and prints
 * the report (text, or one JSON object with --json).
 */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load_int.h"
#include "tmt/loop.h"
#include "tmt/prog.h"

#define LOAD_REQ_MAGIC 0x10adf00du
#define LOAD_WORKER_MAGIC 0x10ad0001u
#define LOAD_BODY_MAX (1u << 20)

static atomic_int_fast64_t budget_left; /* requests still allowed; < 0 means none left */
static atomic_bool budget_unlimited;
static volatile sig_atomic_t interrupted;

struct load_req {
    unsigned magic;
    struct load_worker *w;
    struct load_req *next, *prev; /* in flight, or the freelist (next only) */
    struct tmt_http_call *call;   /* plain HTTP/1.1 (core client) */
    struct lc_call *lcall;        /* TLS or HTTP/2 (conn.c) */
    load_done_fn *cb;
    void *arg;
    uint64_t t0_us, ttfb_us, bytes;
    int status;
    enum load_xcache xc;
    enum load_hm hm;
    bool keep_body, body_over;
    char *body;
    size_t body_len, body_cap;
};

struct load_worker {
    unsigned magic;
    unsigned index;
    const struct load_plan *plan;
    struct tmt_loop *loop;
    struct load_client *client;
    struct event *tick;
    uint64_t deadline_ms;
    struct load_req *inflight, *free_reqs;
    size_t n_inflight;
    bool stopping, driver_done;
    void *driver;
    struct load_stats st;
    struct load_live live;
    pthread_t thread;
    atomic_bool finished;
};

struct load_client {
    struct tmt_http_client *h1; /* plain HTTP/1.1 */
    struct lc_client *lc;       /* TLS or HTTP/2 */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct tmt_loop *load_worker_loop(struct load_worker *w)
{
    return w->loop;
}
const struct load_plan *load_worker_plan(struct load_worker *w)
{
    return w->plan;
}
unsigned load_worker_index(struct load_worker *w)
{
    return w->index;
}
struct load_stats *load_worker_stats(struct load_worker *w)
{
    return &w->st;
}
bool load_worker_stopping(struct load_worker *w)
{
    return w->stopping;
}

struct event *load_timer_new(struct load_worker *w, void (*cb)(int, short, void *), void *arg)
{
    return evtimer_new(tmt_loop_base(w->loop), cb, arg);
}

void load_timer_arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void maybe_finish(struct load_worker *w)
{
    if (w->n_inflight == 0 && (w->driver_done || w->stopping))
        tmt_loop_stop(w->loop);
}

void load_worker_driver_done(struct load_worker *w)
{
    w->driver_done = true;
    maybe_finish(w);
}

static bool take_ticket(void)
{
    if (atomic_load_explicit(&budget_unlimited, memory_order_relaxed))
        return true;
    return atomic_fetch_sub_explicit(&budget_left, 1, memory_order_relaxed) > 0;
}

static enum load_xcache xcache_class(struct tmt_slice v)
{
    static const char *const names[] = {"hit-hot", "hit-warm", "hit-cold",
                                        "miss",    "stale",    "revalidated"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(names); i++) {
        if (tmt_http_slice_ieq(v, names[i]))
            return (enum load_xcache)i;
    }
    return LOAD_XC_OTHER;
}

static bool starts_with_ci(struct tmt_slice v, const char *prefix)
{
    size_t n = strlen(prefix);
    return v.len >= n && tmt_http_slice_ieq((struct tmt_slice){v.p, n}, prefix);
}

static void on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct load_req *r;
    TMT_OBJ_CAST(r, arg, LOAD_REQ_MAGIC);
    r->ttfb_us = now_us() - r->t0_us;
    r->status = resp->status;
    const struct tmt_http_header *h =
        tmt_http_header_find(resp->headers, resp->n_headers, "x-cache");
    r->xc = h != NULL ? xcache_class(h->value) : LOAD_XC_NONE;
    r->hm = h == NULL                          ? LOAD_HM_NONE
            : starts_with_ci(h->value, "hit")  ? LOAD_HM_HIT
            : starts_with_ci(h->value, "miss") ? LOAD_HM_MISS
                                               : LOAD_HM_NONE;
}

static void on_data(void *arg, const char *p, size_t len)
{
    struct load_req *r;
    TMT_OBJ_CAST(r, arg, LOAD_REQ_MAGIC);
    r->bytes += len;
    __atomic_fetch_add(&r->w->live.bytes, len, __ATOMIC_RELAXED);
    if (!r->keep_body || r->body_over)
        return;
    if (r->body_len + len > LOAD_BODY_MAX) {
        r->body_over = true;
        return;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = TMT_MAX(r->body_cap * 2, r->body_len + len);
        r->body = tmt_xrealloc(r->body, cap);
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
}

static enum load_err_class err_class(int rc, const struct tmt_err *err, int status)
{
    if (rc == TMT_ETIMEDOUT)
        return LOAD_ERR_TIMEOUT;
    if (rc == TMT_EUPSTREAM && status == 0 && strstr(err->msg, ": connect") != NULL)
        return LOAD_ERR_CONNECT;
    return LOAD_ERR_OTHER;
}

static void req_unlink(struct load_worker *w, struct load_req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        w->inflight = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    w->n_inflight--;
    r->next = w->free_reqs;
    r->prev = NULL;
    w->free_reqs = r;
}

static void on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct load_req *r;
    TMT_OBJ_CAST(r, arg, LOAD_REQ_MAGIC);
    struct load_worker *w = r->w;
    r->call = NULL;
    r->lcall = NULL;
    if (w->stopping) {
        /* the run's time is up: neither a request nor an error */
        w->st.cancelled++;
        req_unlink(w, r);
        maybe_finish(w);
        return;
    }
    uint64_t total = now_us() - r->t0_us;
    struct load_stats *st = &w->st;
    struct load_result res = {.rc = rc,
                              .status = r->status,
                              .xc = r->xc,
                              .bytes = r->bytes,
                              .ttfb_us = r->ttfb_us,
                              .total_us = total};
    st->requests++;
    st->bytes += r->bytes;
    st->xcache[r->xc]++;
    st->status[r->status >= 100 && r->status < 600 ? r->status / 100 : 0]++;
    bool error = true;
    if (rc != 0)
        st->errors[err_class(rc, err, r->status)]++;
    else if (r->status >= 500)
        st->errors[LOAD_ERR_5XX]++;
    else if (r->status >= 400)
        st->errors[LOAD_ERR_4XX]++;
    else
        error = false;
    if (r->status != 0) {
        tmt_hist_record(&st->ttfb_us, r->ttfb_us);
        if (r->hm != LOAD_HM_NONE)
            tmt_hist_record(&st->ttfb_hm_us[r->hm], r->ttfb_us);
        if (rc == 0) {
            tmt_hist_record(&st->total_us, total);
            if (r->hm != LOAD_HM_NONE)
                tmt_hist_record(&st->total_hm_us[r->hm], total);
        }
    }
    __atomic_fetch_add(&w->live.requests, 1, __ATOMIC_RELAXED);
    if (error)
        __atomic_fetch_add(&w->live.errors, 1, __ATOMIC_RELAXED);
    if (r->xc <= LOAD_XC_COLD)
        __atomic_fetch_add(&w->live.hits, 1, __ATOMIC_RELAXED);
    if (r->xc != LOAD_XC_NONE)
        __atomic_fetch_add(&w->live.with_xcache, 1, __ATOMIC_RELAXED);
    if (r->keep_body && !r->body_over && rc == 0) {
        res.body = r->body != NULL ? r->body : "";
        res.body_len = r->body_len;
    }
    load_done_fn *cb = r->cb;
    void *cb_arg = r->arg;
    req_unlink(w, r);
    cb(cb_arg, &res);
    maybe_finish(w);
}

bool load_fetch(struct load_worker *w, const char *path, bool keep_body, load_done_fn *cb,
                void *arg)
{
    return load_fetch_via(w, w->client, path, keep_body, cb, arg);
}

bool load_fetch_via(struct load_worker *w, struct load_client *client, const char *path,
                    bool keep_body, load_done_fn *cb, void *arg)
{
    if (w->stopping || !take_ticket())
        return false;
    struct load_req *r = w->free_reqs;
    if (r != NULL) {
        w->free_reqs = r->next;
    } else {
        r = tmt_xcalloc(1, sizeof(*r));
        r->magic = LOAD_REQ_MAGIC;
        r->w = w;
    }
    r->cb = cb;
    r->arg = arg;
    r->t0_us = now_us();
    r->ttfb_us = r->bytes = 0;
    r->status = 0;
    r->xc = LOAD_XC_NONE;
    r->hm = LOAD_HM_NONE;
    r->keep_body = keep_body;
    r->body_over = false;
    r->body_len = 0;
    r->prev = NULL;
    r->next = w->inflight;
    if (w->inflight != NULL)
        w->inflight->prev = r;
    w->inflight = r;
    w->n_inflight++;
    static const struct tmt_http_client_cbs cbs = {on_head, on_data, on_done};
    if (client->lc != NULL) {
        r->lcall = lc_fetch(client->lc, path, &cbs, r);
        return true;
    }
    const struct load_plan *p = w->plan;
    struct tmt_http_client_req req = {.upstream = p->upstream,
                                      .method = TMT_HTTP_GET,
                                      .path = {path, strlen(path)},
                                      .host = {p->authority, strlen(p->authority)}};
    r->call = tmt_http_client_fetch(client->h1, &req, &cbs, r);
    return true;
}

static void stop_worker(struct load_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    while (w->inflight != NULL) {
        struct load_req *r = w->inflight;
        if (r->call != NULL)
            tmt_http_call_cancel(&r->call);
        if (r->lcall != NULL)
            lc_call_cancel(&r->lcall);
        w->st.cancelled++;
        req_unlink(w, r);
    }
    maybe_finish(w);
}

static void on_tick(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct load_worker *w;
    TMT_OBJ_CAST(w, arg, LOAD_WORKER_MAGIC);
    if (interrupted || tmt_loop_now_ms(w->loop) >= w->deadline_ms) {
        stop_worker(w);
        return;
    }
    load_timer_arm(w->tick, 100);
}

struct load_client *load_client_new(struct load_worker *w, bool own)
{
    const struct load_plan *p = w->plan;
    const struct load_conf *c = p->conf;
    struct load_client *lcl = tmt_xcalloc(1, sizeof(*lcl));
    if (p->tls || p->h2) {
        struct lc_opts o = {.ssl_ctx = p->ssl_ctx,
                            .h2 = p->h2,
                            .connect_timeout_ms = c->connect_timeout_ms,
                            .timeout_ms = c->timeout_ms,
                            .max_streams = own ? 1u : (unsigned)c->h2_streams,
                            .tls_resume = c->tls_resume};
        snprintf(o.upstream, sizeof(o.upstream), "%s", p->upstream);
        snprintf(o.ip, sizeof(o.ip), "%s", p->ip);
        snprintf(o.authority, sizeof(o.authority), "%s", p->authority);
        snprintf(o.sni, sizeof(o.sni), "%s", c->host);
        lcl->lc = lc_client_new(w->loop, &o, &p->ss, p->sslen);
        return lcl;
    }
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.connect_timeout_ms = c->connect_timeout_ms;
    o.response_timeout_ms = c->timeout_ms;
    o.read_timeout_ms = c->timeout_ms;
    /* a viewer's own: one idle connection, kept until the target closes it (a player's
     * keep-alive); shared: as many as were needed at once */
    o.max_idle_per_upstream = own ? 1 : 4096;
    if (own)
        o.idle_timeout_ms = 0;
    lcl->h1 = tmt_http_client_new(w->loop, &o);
    return lcl;
}

void load_client_free(struct load_worker *w, struct load_client **cp)
{
    struct load_client *c = *cp;
    *cp = NULL;
    if (c == NULL)
        return;
    if (c->lc != NULL)
        lc_client_tls_stats(c->lc, &w->st.tls_handshakes, &w->st.tls_resumed);
    tmt_http_client_free(&c->h1);
    lc_client_free(&c->lc);
    free(c);
}

static void *worker_main(void *arg)
{
    struct load_worker *w = arg;
    const struct load_conf *c = w->plan->conf;
    w->client = load_client_new(w, false);
    w->deadline_ms = tmt_loop_now_ms(w->loop) + c->duration_ms;
    w->tick = load_timer_new(w, on_tick, w);
    load_timer_arm(w->tick, 100);
    w->driver = c->mode == LOAD_MODE_REPLAY ? load_replay_start(w) : load_viewers_start(w);
    if (!(w->n_inflight == 0 && w->driver_done)) {
        if (tmt_loop_run(w->loop) != 0)
            fprintf(stderr, "tomato-load: worker %u: event loop failed\n", w->index);
    }
    w->stopping = true;
    event_free(w->tick);
    load_client_free(w, &w->client);
    if (c->mode == LOAD_MODE_REPLAY)
        load_replay_free(w->driver);
    else
        load_viewers_free(w->driver);
    while (w->free_reqs != NULL) {
        struct load_req *r = w->free_reqs;
        w->free_reqs = r->next;
        free(r->body);
        free(r);
    }
    atomic_store(&w->finished, true);
    return NULL;
}

static void on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

static void print_progress(struct load_worker *ws, unsigned n, double secs, struct load_live *prev)
{
    struct load_live now = {0};
    for (unsigned i = 0; i < n; i++) {
        now.requests += __atomic_load_n(&ws[i].live.requests, __ATOMIC_RELAXED);
        now.bytes += __atomic_load_n(&ws[i].live.bytes, __ATOMIC_RELAXED);
        now.errors += __atomic_load_n(&ws[i].live.errors, __ATOMIC_RELAXED);
        now.hits += __atomic_load_n(&ws[i].live.hits, __ATOMIC_RELAXED);
        now.with_xcache += __atomic_load_n(&ws[i].live.with_xcache, __ATOMIC_RELAXED);
    }
    double hr = now.with_xcache > 0 ? 100.0 * (double)now.hits / (double)now.with_xcache : 0;
    fprintf(stderr,
            "[%5.0fs] %8.0f req/s %8.2f MB/s  requests %" PRIu64 "  errors %" PRIu64
            "  hit %.1f%%\n",
            secs, (double)(now.requests - prev->requests), (double)(now.bytes - prev->bytes) / 1e6,
            now.requests, now.errors, hr);
    *prev = now;
}

static void merge(struct load_stats *d, const struct load_stats *s)
{
    d->requests += s->requests;
    d->bytes += s->bytes;
    for (int i = 0; i < 6; i++)
        d->status[i] += s->status[i];
    for (int i = 0; i < LOAD_ERR_N; i++)
        d->errors[i] += s->errors[i];
    for (int i = 0; i < LOAD_XC_N; i++)
        d->xcache[i] += s->xcache[i];
    d->cancelled += s->cancelled;
    d->sessions += s->sessions;
    d->sessions_abandoned += s->sessions_abandoned;
    d->segments += s->segments;
    d->switches += s->switches;
    d->stalls += s->stalls;
    d->stall_ms += s->stall_ms;
    d->playbacks += s->playbacks;
    d->heartbeats += s->heartbeats;
    d->tls_handshakes += s->tls_handshakes;
    d->tls_resumed += s->tls_resumed;
    d->control_errors += s->control_errors;
    tmt_hist_merge(&d->ttfb_us, &s->ttfb_us);
    tmt_hist_merge(&d->total_us, &s->total_us);
    for (int i = 0; i < 2; i++) {
        tmt_hist_merge(&d->ttfb_hm_us[i], &s->ttfb_hm_us[i]);
        tmt_hist_merge(&d->total_hm_us[i], &s->total_hm_us[i]);
    }
}

static const char *const err_names[LOAD_ERR_N] = {"connect", "timeout", "4xx", "5xx", "other"};
static const char *const xc_names[LOAD_XC_N] = {"hit_hot", "hit_warm",    "hit_cold", "miss",
                                                "stale",   "revalidated", "other",    "none"};
static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};
static const char *const q_names[] = {"p50", "p90", "p99", "p99_9"};

static const char *const hm_names[] = {"hit", "miss"};

static const char *proto_name(const struct load_plan *p)
{
    return p->h2 ? (p->tls ? "h2" : "h2c") : (p->tls ? "http/1.1+tls" : "http/1.1");
}

/* lead "name":{count, mean, max, quantiles} in ms */
static void hist_json(const char *lead, const char *name, const struct tmt_hist *h)
{
    printf("%s\"%s\":{\"count\":%" PRIu64 ",\"mean\":%.3f,\"max\":%.3f", lead, name, h->count,
           h->count ? (double)h->sum / (double)h->count / 1000 : 0, (double)h->max / 1000);
    for (int q = 0; q < 4; q++)
        printf(",\"%s\":%.3f", q_names[q], (double)tmt_hist_quantile(h, quantiles[q]) / 1000);
    printf("}");
}

static void report_json(const struct load_plan *p, const struct load_stats *s, double secs)
{
    uint64_t errs = 0, with_xc = s->requests - s->xcache[LOAD_XC_NONE];
    for (int i = 0; i < LOAD_ERR_N; i++)
        errs += s->errors[i];
    printf("{\"mode\":\"%s\",\"target\":\"%s\",\"protocol\":\"%s\",\"workers\":%u,"
           "\"elapsed_s\":%.3f,"
           "\"requests\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"cancelled\":%" PRIu64
           ",\"requests_per_s\":%.1f,\"mbytes_per_s\":%.3f,\"errors\":%" PRIu64
           ",\"errors_by_class\":{",
           p->conf->mode == LOAD_MODE_REPLAY ? "replay" : "viewers", p->upstream, proto_name(p),
           p->workers, secs, s->requests, s->bytes, s->cancelled,
           secs > 0 ? (double)s->requests / secs : 0, secs > 0 ? (double)s->bytes / secs / 1e6 : 0,
           errs);
    for (int i = 0; i < LOAD_ERR_N; i++)
        printf("%s\"%s\":%" PRIu64, i ? "," : "", err_names[i], s->errors[i]);
    printf("},\"status\":{\"none\":%" PRIu64, s->status[0]);
    for (int i = 1; i < 6; i++)
        printf(",\"%dxx\":%" PRIu64, i, s->status[i]);
    printf("},\"x_cache\":{");
    for (int i = 0; i < LOAD_XC_N; i++)
        printf("%s\"%s\":%" PRIu64, i ? "," : "", xc_names[i], s->xcache[i]);
    printf("},\"hit_ratio\":%.4f",
           with_xc > 0 ? (double)(s->xcache[0] + s->xcache[1] + s->xcache[2]) / (double)with_xc
                       : 0);
    hist_json(",", "ttfb_ms", &s->ttfb_us);
    hist_json(",", "total_ms", &s->total_us);
    for (int i = 0; i < 2; i++) {
        printf(",\"%s\":{", hm_names[i]);
        hist_json("", "ttfb_ms", &s->ttfb_hm_us[i]);
        hist_json(",", "total_ms", &s->total_hm_us[i]);
        printf("}");
    }
    if (p->tls)
        printf(",\"tls\":{\"handshakes\":%" PRIu64 ",\"resumed\":%" PRIu64 "}", s->tls_handshakes,
               s->tls_resumed);
    if (p->conf->mode == LOAD_MODE_VIEWERS)
        printf(",\"viewers\":{\"sessions\":%" PRIu64 ",\"abandoned\":%" PRIu64
               ",\"segments\":%" PRIu64 ",\"switches\":%" PRIu64 ",\"stalls\":%" PRIu64
               ",\"stall_s\":%.3f,\"playbacks\":%" PRIu64 ",\"heartbeats\":%" PRIu64
               ",\"control_errors\":%" PRIu64 "}",
               s->sessions, s->sessions_abandoned, s->segments, s->switches, s->stalls,
               (double)s->stall_ms / 1000, s->playbacks, s->heartbeats, s->control_errors);
    printf("}\n");
}

static void report_text(const struct load_plan *p, const struct load_stats *s, double secs)
{
    uint64_t errs = 0, with_xc = s->requests - s->xcache[LOAD_XC_NONE];
    for (int i = 0; i < LOAD_ERR_N; i++)
        errs += s->errors[i];
    printf("tomato-load %s against %s (%s), %u worker(s), %.3f s\n",
           p->conf->mode == LOAD_MODE_REPLAY ? "replay" : "viewers", p->upstream, proto_name(p),
           p->workers, secs);
    printf("requests    %" PRIu64 " (%.1f/s), %" PRIu64 " cancelled at the end\n", s->requests,
           secs > 0 ? (double)s->requests / secs : 0, s->cancelled);
    printf("bytes       %" PRIu64 " (%.2f MB/s)\n", s->bytes,
           secs > 0 ? (double)s->bytes / secs / 1e6 : 0);
    printf("status      none %" PRIu64 "  2xx %" PRIu64 "  3xx %" PRIu64 "  4xx %" PRIu64
           "  5xx %" PRIu64 "\n",
           s->status[0], s->status[2], s->status[3], s->status[4], s->status[5]);
    printf("errors      %" PRIu64 ":", errs);
    for (int i = 0; i < LOAD_ERR_N; i++)
        printf(" %s %" PRIu64, err_names[i], s->errors[i]);
    printf("\nx-cache    ");
    for (int i = 0; i < LOAD_XC_N; i++)
        printf(" %s %" PRIu64, xc_names[i], s->xcache[i]);
    printf("\nhit ratio   %.2f %%\n",
           with_xc > 0
               ? 100.0 * (double)(s->xcache[0] + s->xcache[1] + s->xcache[2]) / (double)with_xc
               : 0);
    const struct tmt_hist *hs[] = {&s->ttfb_us,        &s->total_us,      &s->ttfb_hm_us[0],
                                   &s->total_hm_us[0], &s->ttfb_hm_us[1], &s->total_hm_us[1]};
    const char *hn[] = {"ttfb  ms   ", "total ms   ", "hit   ttfb ",
                        "hit   total", "miss  ttfb ", "miss  total"};
    for (int k = 0; k < 6; k++) {
        printf("%s", hn[k]);
        for (int q = 0; q < 4; q++)
            printf(" %s %.3f", q_names[q], (double)tmt_hist_quantile(hs[k], quantiles[q]) / 1000);
        printf(" max %.3f (%" PRIu64 ")\n", (double)hs[k]->max / 1000, hs[k]->count);
    }
    if (p->conf->mode == LOAD_MODE_VIEWERS)
        printf("viewers     sessions %" PRIu64 " (abandoned %" PRIu64 "), segments %" PRIu64
               ", switches %" PRIu64 ", stalls %" PRIu64 " (%.3f s)\n",
               s->sessions, s->sessions_abandoned, s->segments, s->switches, s->stalls,
               (double)s->stall_ms / 1000);
    if (p->tls)
        printf("tls         handshakes %" PRIu64 " (resumed %" PRIu64 ")\n", s->tls_handshakes,
               s->tls_resumed);
    if (p->control)
        printf("control     playbacks %" PRIu64 ", heartbeats %" PRIu64 ", errors %" PRIu64 "\n",
               s->playbacks, s->heartbeats, s->control_errors);
}

int load_run(struct load_plan *plan)
{
    const struct load_conf *c = plan->conf;
    atomic_store(&budget_unlimited, c->requests == 0);
    atomic_store(&budget_left, c->requests);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (plan->tls) {
        struct tmt_err err;
        tmt_err_clear(&err);
        plan->ssl_ctx = lc_tls_ctx_new(plan->h2, c->ca_file, c->insecure, &err);
        if (plan->ssl_ctx == NULL) {
            fprintf(stderr, "tomato-load: target.ca_file: %s\n",
                    err.msg[0] ? err.msg : "cannot make a TLS context");
            return TMT_EXIT_FAIL;
        }
    }
    unsigned n = plan->workers;
    struct load_worker *ws = tmt_xcalloc(n, sizeof(*ws));
    uint64_t t0 = now_us();
    unsigned started = 0;
    int rc = TMT_EXIT_OK;
    for (unsigned i = 0; i < n; i++) {
        ws[i].magic = LOAD_WORKER_MAGIC;
        ws[i].index = i;
        ws[i].plan = plan;
        ws[i].loop = tmt_loop_new();
        if (ws[i].loop == NULL || pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "tomato-load: cannot start worker %u\n", i);
            tmt_loop_free(&ws[i].loop);
            interrupted = 1;
            rc = TMT_EXIT_FAIL;
            break;
        }
        started++;
    }
    struct load_live prev = {0};
    uint64_t next_print = t0 + 1000000;
    for (;;) {
        bool all = true;
        for (unsigned i = 0; i < started; i++)
            all = all && atomic_load(&ws[i].finished);
        if (all)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t t = now_us();
        if (c->progress && t >= next_print) {
            print_progress(ws, started, (double)(t - t0) / 1e6, &prev);
            next_print += 1000000;
        }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    struct load_stats *total = tmt_xcalloc(1, sizeof(*total));
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        merge(total, &ws[i].st);
        tmt_loop_free(&ws[i].loop);
    }
    if (c->json)
        report_json(plan, total, secs);
    else
        report_text(plan, total, secs);
    fflush(stdout);
    free(total);
    free(ws);
    if (plan->ssl_ctx != NULL) {
        lc_tls_ctx_free(plan->ssl_ctx);
        plan->ssl_ctx = NULL;
    }
    return rc;
}
