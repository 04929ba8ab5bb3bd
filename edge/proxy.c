/*
 * proxy.c: the edge's caching reverse proxy (see proxy.h).
 *
 * A request first passes the token gate (tokens.h): a path under a protected prefix needs a
 * valid /t/{token}/ in front of it, or gets 403 before anything else happens. It is then keyed
 * (normalized path with the token part taken out, plus the query outside /v/), looked up in the
 * store, and answered from it while fresh. Otherwise it joins the fill in flight for its key or
 * starts one. A fill is one upstream request made on the worker that started it; its response
 * is received into an object whose body buffer is allocated once from Content-Length, so every
 * client waiting on the fill, on any worker, is sent the bytes as they arrive by reference (no
 * copy), and other workers are woken through their loop's post queue. A fill that fails midway ends
 * the responses already started (short, so their connections close) and stores nothing.
 *
 * Upstreams are tried in rendezvous order for the key (highest mix of key hash and upstream
 * hash first); a connect error, a timeout before the head, or a 5xx moves to the next one. A
 * connect error, a timeout or a reset also holds that upstream off for upstream.holdoff: fills try
 * it after the others (a hung shield would otherwise cost every fill it comes first for a whole
 * upstream.response_timeout). Once the time is up, one fill tries it first again (a probe); an
 * answer ends the hold, a failure renews it. When the last one answers 500, 502, 503 or 504, a
 * stored copy within its stale-if-error window is served instead (RFC 5861), as after a connect
 * error or a timeout.
 *
 * Vary keeps one variant per key (the request values it was stored with ride along as ':name'
 * fields); stale-while-revalidate serves the stored object and revalidates it with a fill that
 * has no reader.
 *
 * A body larger than cache.max_object_size (by Content-Length, or an unknown-length body once
 * it outgrows it) is passed through: copied piece by piece to the clients of the fill's own
 * worker, with the upstream paused while they lag; clients on other workers make fills of
 * their own, and nothing is kept.
 */
#include "proxy.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include <event2/event.h>

#include "keys.h"
#include "store.h"
#include "tokens.h"
#include "tmt/client.h"
#include "tmt/http_cache.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/secret.h"

#define MAX_KEY 4096
#define MAX_UPSTREAMS 64
#define MAX_FWD_HEADERS 64
#define FILL_BUCKETS 4096

/* ---- counters ---- */

enum {
    M_HIT_HOT,
    M_HIT_WARM,
    M_HIT_COLD,
    M_MISS,
    M_REVALIDATED,
    M_STALE,
    M_PASS,
    M_COALESCED,
    M_UP_REQUESTS,
    M_UP_ERRORS,
    M_UP_RETRIES,
    M_BYTES_HOT,
    M_BYTES_WARM,
    M_BYTES_COLD,
    M_UP_BYTES,
    M_N_COUNTERS,
};

static const struct tmt_metric_def proxy_metrics[] = {
    {"tmt_edge_requests_total", "result=\"hit_hot\"", TMT_METRIC_COUNTER,
     "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"hit_warm\"", TMT_METRIC_COUNTER,
     "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"hit_cold\"", TMT_METRIC_COUNTER,
     "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"miss\"", TMT_METRIC_COUNTER, "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"revalidated\"", TMT_METRIC_COUNTER,
     "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"stale\"", TMT_METRIC_COUNTER,
     "cache requests by outcome"},
    {"tmt_edge_requests_total", "result=\"pass\"", TMT_METRIC_COUNTER, "cache requests by outcome"},
    {"tmt_edge_coalesced_waits_total", NULL, TMT_METRIC_COUNTER,
     "requests that waited for a fill already in flight"},
    {"tmt_edge_upstream_requests_total", NULL, TMT_METRIC_COUNTER, "requests sent upstream"},
    {"tmt_edge_upstream_errors_total", NULL, TMT_METRIC_COUNTER,
     "upstream attempts that failed (connect, timeout, 5xx, bad response)"},
    {"tmt_edge_upstream_retries_total", NULL, TMT_METRIC_COUNTER,
     "attempts moved to the next upstream"},
    {"tmt_edge_hit_bytes_total", "tier=\"hot\"", TMT_METRIC_COUNTER, "body bytes of hits by tier"},
    {"tmt_edge_hit_bytes_total", "tier=\"warm\"", TMT_METRIC_COUNTER, "body bytes of hits by tier"},
    {"tmt_edge_hit_bytes_total", "tier=\"cold\"", TMT_METRIC_COUNTER, "body bytes of hits by tier"},
    {"tmt_edge_upstream_bytes_total", NULL, TMT_METRIC_COUNTER,
     "body bytes received from upstreams (fills, revalidations, passes)"},
};
_Static_assert(TMT_ARRAY_LEN(proxy_metrics) == M_N_COUNTERS, "one definition per counter");

enum {
    G_OBJECTS_HOT,
    G_OBJECTS_WARM,
    G_OBJECTS_COLD,
    G_BYTES_HOT,
    G_BYTES_WARM,
    G_BYTES_COLD,
    G_PROMOTIONS,
    G_DEMOTIONS,
    G_EVICTIONS,
    G_CHECKSUM,
    G_WRITE_ERRORS,
    G_UPSTREAMS,
    G_N,
};

static const struct tmt_metric_def store_metrics[] = {
    {"tmt_edge_cache_objects", "tier=\"hot\"", TMT_METRIC_GAUGE, "objects stored per tier"},
    {"tmt_edge_cache_objects", "tier=\"warm\"", TMT_METRIC_GAUGE, "objects stored per tier"},
    {"tmt_edge_cache_objects", "tier=\"cold\"", TMT_METRIC_GAUGE, "objects stored per tier"},
    {"tmt_edge_cache_bytes", "tier=\"hot\"", TMT_METRIC_GAUGE, "body bytes stored per tier"},
    {"tmt_edge_cache_bytes", "tier=\"warm\"", TMT_METRIC_GAUGE, "body bytes stored per tier"},
    {"tmt_edge_cache_bytes", "tier=\"cold\"", TMT_METRIC_GAUGE, "body bytes stored per tier"},
    {"tmt_edge_cache_promotions_total", NULL, TMT_METRIC_COUNTER, "objects moved up a tier"},
    {"tmt_edge_cache_demotions_total", NULL, TMT_METRIC_COUNTER, "objects moved down a tier"},
    {"tmt_edge_cache_evictions_total", NULL, TMT_METRIC_COUNTER, "objects that left the cache"},
    {"tmt_edge_cache_checksum_failures_total", NULL, TMT_METRIC_COUNTER,
     "stored objects found damaged on read (dropped, never sent)"},
    {"tmt_edge_cache_write_errors_total", NULL, TMT_METRIC_COUNTER,
     "store writes that failed (the object stays out of that tier)"},
    {"tmt_edge_upstreams", NULL, TMT_METRIC_GAUGE,
     "upstreams fills go to (upstream.shields, or the control plane's shield list)"},
};
_Static_assert(TMT_ARRAY_LEN(store_metrics) == G_N, "one definition per gauge");

/* ---- state ---- */

struct upstreams {
    atomic_uint refs;
    size_t n;
    char *name[MAX_UPSTREAMS];
    uint64_t hash[MAX_UPSTREAMS];
    char auth[TMT_SECRET_MAX + 8]; /* "Bearer <fill key>", or "" */
    size_t auth_len;
    /* held off until this monotonic time (ms) after a failure; 0 = not held (see the top) */
    _Atomic uint64_t held_until[MAX_UPSTREAMS];
};

struct pworker {
    unsigned idx;
    struct tmt_loop *loop;
    struct tmt_http_client *client;
    /* Upstream failures logged at most once a second per upstream (by its index in the
     * snapshot) on this worker, the others counted: a dead shield fails every fill it is first
     * for, and tmt_edge_upstream_errors_total counts them all. Owner thread only. */
    uint64_t up_logged_ms[MAX_UPSTREAMS];
    uint64_t up_quiet[MAX_UPSTREAMS];
};

struct fill;

struct fill_table {
    pthread_mutex_t mu;
    struct fill *b[FILL_BUCKETS];
};

struct edge_proxy {
    unsigned magic;
#define PROXY_MAGIC 0xed9e0001u
    struct edge_store *store;
    struct tmt_hc_opts hc;
    /* The upstreams and the fill key: an immutable snapshot that the main thread replaces
     * (node config) and each fill holds a reference to for its retries. */
    pthread_mutex_t ups_mu;
    struct upstreams *ups;
    struct tmt_http_client_opts copts;
    uint64_t holdoff_ms; /* upstream.holdoff (see the top); 0 = off */
    uint64_t max_object;
    char *name;
    struct pworker *workers;
    unsigned n_workers;
    struct fill_table fills;
    struct edge_tokens *tokens; /* borrowed; NULL: no token gate */
    struct tmt_metrics *metrics;
    size_t m_base, g_base;
    /* gauges: the main thread publishes the store's figures once a second */
    struct event *gauge_ev;
    tmt_metric_slot *main_shard;
    uint64_t g_last[G_N];
};

enum fill_state { F_HEAD, F_BODY, F_DONE, F_FAILED };

struct reader {
    struct reader *next;
    struct fill *f;
    struct tmt_http_req *req;
    struct pworker *w;
    uint64_t sent;
    bool whole;   /* needs the complete object (Range, conditionals, HEAD) */
    bool started; /* response head sent */
    bool posted;  /* a wake-up is queued on its loop */
    bool done;
    bool joined; /* waited for a fill it did not start */
};

struct fill {
    atomic_uint refs;
    pthread_mutex_t mu;
    struct edge_proxy *p;
    struct pworker *owner;
    struct fill *tnext;
    bool in_table;
    uint64_t hkey;
    char *key;
    size_t key_len;
    struct tmt_policy_hint hint;
    /* the upstream request */
    enum tmt_http_method method;
    char *path;
    size_t path_len;
    char *host;
    size_t host_len;
    struct tmt_http_header fwd[MAX_FWD_HEADERS + 2];
    size_t n_fwd;
    char *fwd_mem;
    char *body;
    size_t body_len;
    struct edge_obj *stale; /* stored copy being revalidated, or NULL */
    char inm_etag[256];
    char ims[TMT_HTTP_DATE_LEN + 1];
    struct upstreams *ups; /* the snapshot this fill tries, in order */
    unsigned order[MAX_UPSTREAMS];
    unsigned tried;
    struct tmt_http_call *call;
    bool retry_next;
    /* The last upstream answered this 5xx while the stale copy may stand in for an error
     * (stale-if-error): the fill fails once the response has ended, its readers get the copy. */
    int stale_error;
    int64_t request_time_ms;
    /* the response (owner thread writes; readers read under mu) */
    enum fill_state state;
    struct edge_obj *obj;
    uint64_t cap;
    uint64_t received;
    bool known_len;
    bool storable;
    bool purged; /* a purge matched it while in flight: nothing it brings is stored */
    bool revalidated;
    /*
     * Pass mode (a body over cache.max_object_size): nothing is kept; the owner worker's
     * readers are sent each piece as it arrives, other workers' readers make fills of their
     * own. Owner thread only: pass_out (bytes handed to clients, not yet sent) and paused.
     */
    bool pass;
    bool paused;
    uint64_t pass_out;
    int fail_status;
    char fail_why[160];
    struct reader *readers;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void count(struct edge_proxy *p, const struct tmt_http_req *req, size_t m, uint64_t v)
{
    if (p->metrics != NULL)
        tmt_metric_add(tmt_metrics_shard(p->metrics, req->worker), p->m_base + m, v);
}

static void count_shard(struct edge_proxy *p, const struct pworker *w, size_t m)
{
    if (p->metrics != NULL)
        tmt_metric_inc(tmt_metrics_shard(p->metrics, w->idx), p->m_base + m);
}

static void count_shard_add(struct edge_proxy *p, const struct pworker *w, size_t m, uint64_t v)
{
    if (p->metrics != NULL)
        tmt_metric_add(tmt_metrics_shard(p->metrics, w->idx), p->m_base + m, v);
}

/* ---- keys ---- */

/* ---- fills table ---- */

static struct fill *table_find(struct fill_table *t, uint64_t hkey, const char *key, size_t len)
{
    for (struct fill *f = t->b[hkey % FILL_BUCKETS]; f != NULL; f = f->tnext) {
        if (f->hkey == hkey && f->key_len == len && memcmp(f->key, key, len) == 0)
            return f;
    }
    return NULL;
}

static void table_remove(struct fill_table *t, struct fill *f)
{
    pthread_mutex_lock(&t->mu);
    if (f->in_table) {
        struct fill **pp = &t->b[f->hkey % FILL_BUCKETS];
        while (*pp != f)
            pp = &(*pp)->tnext;
        *pp = f->tnext;
        f->in_table = false;
    }
    pthread_mutex_unlock(&t->mu);
}

static void ups_put(struct upstreams *u)
{
    if (u == NULL || atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < u->n; i++)
        free(u->name[i]);
    free(u);
}

static struct upstreams *ups_get(struct edge_proxy *p)
{
    pthread_mutex_lock(&p->ups_mu);
    struct upstreams *u = p->ups;
    atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->ups_mu);
    return u;
}

/* A snapshot of names[0..n) (at most MAX_UPSTREAMS) and auth, one reference. */
static struct upstreams *ups_new(const char *const *names, size_t n, const char *auth,
                                 size_t auth_len)
{
    struct upstreams *u = tmt_xcalloc(1, sizeof(*u));
    atomic_init(&u->refs, 1);
    u->n = TMT_MIN(n, (size_t)MAX_UPSTREAMS);
    for (size_t i = 0; i < u->n; i++) {
        u->name[i] = tmt_xstrdup(names[i]);
        u->hash[i] = XXH3_64bits(u->name[i], strlen(u->name[i]));
    }
    memcpy(u->auth, auth, auth_len);
    u->auth_len = auth_len;
    return u;
}

/* The holds of cur's upstreams that u names too carry over to u. */
static void ups_keep_holds(struct upstreams *u, struct upstreams *cur)
{
    for (size_t i = 0; i < u->n; i++) {
        for (size_t k = 0; k < cur->n; k++) {
            if (strcmp(u->name[i], cur->name[k]) == 0)
                atomic_store(&u->held_until[i], atomic_load(&cur->held_until[k]));
        }
    }
}

/* Is upstream u held off (to be tried after the others)? When its hold is over, the first
 * caller that would try it first (first) renews the hold for as long as its attempt may take
 * (probe_ms) and gets false: that fill is the probe, the only one until it ends. A fill that
 * would try another upstream first leaves the probe to one that would not. */
static bool up_held(struct upstreams *ups, unsigned u, uint64_t now, uint64_t probe_ms, bool first)
{
    uint64_t v = atomic_load_explicit(&ups->held_until[u], memory_order_relaxed);
    if (v == 0)
        return false;
    if (v > now || !first)
        return true;
    return !atomic_compare_exchange_strong(&ups->held_until[u], &v, now + probe_ms);
}

/* Installs u as the current snapshot (takes its reference). */
static void ups_install(struct edge_proxy *p, struct upstreams *u)
{
    pthread_mutex_lock(&p->ups_mu);
    struct upstreams *old = p->ups;
    p->ups = u;
    pthread_mutex_unlock(&p->ups_mu);
    ups_put(old);
}

static void fill_unref(struct fill *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    TMT_ASSERT(f->readers == NULL && !f->in_table);
    edge_obj_unref(f->obj);
    edge_obj_unref(f->stale);
    ups_put(f->ups);
    pthread_mutex_destroy(&f->mu);
    free(f->key);
    free(f->path);
    free(f->host);
    free(f->fwd_mem);
    free(f->body);
    free(f);
}

/* ---- answering ---- */

/*
 * For a 200 served through tmt_http_serve_entity: the stored fields it writes itself (from the
 * object's derived validators and type). X-Cache and Age are never stored (see stored_field).
 */
static bool written_by_entity(const struct edge_obj *o, struct tmt_slice name)
{
    if (name.len == 12 && strncasecmp(name.p, "content-type", 12) == 0)
        return o->ctype[0] != '\0';
    if (name.len == 4 && strncasecmp(name.p, "etag", 4) == 0)
        return o->val.etag.len > 0;
    if (name.len == 13 && strncasecmp(name.p, "last-modified", 13) == 0)
        return o->val.last_modified >= 0;
    return name.len == 13 && strncasecmp(name.p, "accept-ranges", 13) == 0;
}

/* The request values a Vary response was stored with (see struct edge_obj): never sent. */
static bool internal_field(const struct edge_obj *o, struct tmt_slice name)
{
    return o->vary && name.len > 0 && name.p[0] == ':';
}

/* May o (stored with Vary or not) answer a request with these header fields? */
static bool vary_ok(const struct edge_obj *o, const struct tmt_http_header *req, size_t n_req)
{
    if (!o->vary)
        return true;
    struct tmt_http_header stored[MAX_FWD_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < o->n_hdrs && n < MAX_FWD_HEADERS; i++) {
        struct tmt_slice nm = o->hdrs[i].name;
        if (nm.len > 1 && nm.p[0] == ':')
            stored[n++] = (struct tmt_http_header){{nm.p + 1, nm.len - 1}, o->hdrs[i].value};
    }
    return tmt_hc_vary_match(o->hdrs, o->n_hdrs, stored, n, req, n_req);
}

struct our_fields {
    char age[24];
    char status[200];
    struct tmt_http_header h[3];
};

static size_t build_fields(struct edge_proxy *p, struct our_fields *of, const char *xcache,
                           const char *cs_detail, int64_t age_s)
{
    int al = snprintf(of->age, sizeof(of->age), "%" PRId64, age_s < 0 ? 0 : age_s);
    int sl = snprintf(of->status, sizeof(of->status), "%s; %s", p->name, cs_detail);
    if (sl < 0 || (size_t)sl >= sizeof(of->status))
        sl = 0;
    of->h[0] = (struct tmt_http_header){TMT_SLICE_LIT("X-Cache"), {xcache, strlen(xcache)}};
    of->h[1] = (struct tmt_http_header){TMT_SLICE_LIT("Age"), {of->age, (size_t)al}};
    of->h[2] = (struct tmt_http_header){TMT_SLICE_LIT("Cache-Status"), {of->status, (size_t)sl}};
    return 3;
}

/* Answers req from a complete object (takes over one reference). Ends the request. */
static void serve_obj(struct edge_proxy *p, struct tmt_http_req *req, struct edge_obj *o,
                      const char *xcache, const char *cs_detail)
{
    int64_t age_ms =
        tmt_hc_current_age_ms(o->meta.initial_age_ms, o->meta.response_time_ms, (int64_t)wall_ms());
    struct our_fields of;
    size_t n_of = build_fields(p, &of, xcache, cs_detail, age_ms / 1000);
    struct tmt_http_header h[MAX_FWD_HEADERS + 8];
    size_t n = 0;
    /* A 200 goes through tmt_http_serve_entity, which writes the validators and the type. */
    bool entity = o->status == 200;
    struct tmt_http_entity e = {.size = o->size, .fd = -1, .val = o->val};
    if (entity && o->ctype[0] != '\0')
        e.content_type = o->ctype;
    for (size_t i = 0; i < o->n_hdrs && n < MAX_FWD_HEADERS; i++) {
        const struct tmt_http_header *f = &o->hdrs[i];
        if ((entity && written_by_entity(o, f->name)) || internal_field(o, f->name))
            continue;
        h[n++] = *f;
    }
    for (size_t i = 0; i < n_of; i++)
        h[n++] = of.h[i];
    if (entity) {
        e.extra = h;
        e.n_extra = n;
        e.p = o->body != NULL ? o->body : "";
        e.release = edge_obj_release;
        e.release_arg = o;
        tmt_http_serve_entity(req, &e);
        return;
    }
    if (tmt_http_resp_start(req, o->status, h, n, (int64_t)o->size) == TMT_OK && o->size > 0) {
        edge_obj_ref(o);
        tmt_http_resp_ref(req, o->body, o->size, edge_obj_release, o);
    }
    tmt_http_resp_end(req);
    edge_obj_unref(o);
}

static bool fresh(const struct edge_obj *o, int64_t now_ms)
{
    if (o->meta.flags & EDGE_META_NO_CACHE)
        return false;
    int64_t age = tmt_hc_current_age_ms(o->meta.initial_age_ms, o->meta.response_time_ms, now_ms);
    return age < o->meta.lifetime_ms;
}

/* May o be served stale after an upstream error (stale-if-error, RFC 5861)? */
static bool stale_if_error_ok(const struct edge_obj *o, int64_t now_ms)
{
    if (o == NULL || o->meta.sie_ms < 0 || (o->meta.flags & EDGE_META_MUST_REVALIDATE))
        return false;
    int64_t age = tmt_hc_current_age_ms(o->meta.initial_age_ms, o->meta.response_time_ms, now_ms);
    return age < o->meta.lifetime_ms + o->meta.sie_ms;
}

/* May o be served stale while it is revalidated in the background (RFC 5861)? */
static bool stale_while_revalidate_ok(const struct edge_obj *o, int64_t now_ms)
{
    if (o->meta.swr_ms < 0 || (o->meta.flags & (EDGE_META_MUST_REVALIDATE | EDGE_META_NO_CACHE)))
        return false;
    int64_t age = tmt_hc_current_age_ms(o->meta.initial_age_ms, o->meta.response_time_ms, now_ms);
    return age < o->meta.lifetime_ms + o->meta.swr_ms;
}

static void serve_swr(struct edge_proxy *p, struct tmt_http_req *req, struct edge_obj *o)
{
    count(p, req, M_STALE, 1);
    req->cache_status = "stale";
    serve_obj(p, req, o, "STALE", "hit; detail=stale-while-revalidate");
}

/* ---- readers ---- */

static void reader_step(struct reader *r);
static struct fill *fill_new(struct edge_proxy *p, struct pworker *w, struct tmt_http_req *req,
                             uint64_t hkey, const char *key, size_t key_len, const char *path,
                             size_t path_len, const struct tmt_policy_hint *hint);
static void reader_add(struct fill *f, struct tmt_http_req *req, struct pworker *w, bool joined);
static void fill_attempt(struct fill *f);

static void reader_posted(void *arg)
{
    struct reader *r = arg;
    struct fill *f = r->f;
    pthread_mutex_lock(&f->mu);
    r->posted = false;
    bool gone = r->done;
    pthread_mutex_unlock(&f->mu);
    if (gone) {
        free(r);
        fill_unref(f);
        return;
    }
    reader_step(r);
}

/* Finishes a reader: off the fill's list; freed now unless a wake-up is still queued. */
static void reader_finish(struct reader *r)
{
    struct fill *f = r->f;
    pthread_mutex_lock(&f->mu);
    r->done = true;
    struct reader **pp = &f->readers;
    while (*pp != NULL && *pp != r)
        pp = &(*pp)->next;
    if (*pp == r)
        *pp = r->next;
    bool keep = r->posted;
    pthread_mutex_unlock(&f->mu);
    if (!keep) {
        free(r);
        fill_unref(f);
    }
}

/* Gives r's request a fill of its own (on r's worker, not stored), and finishes r. */
static void reader_refill(struct reader *r)
{
    struct fill *f = r->f;
    struct tmt_http_req *req = r->req;
    struct pworker *w = r->w;
    struct fill *nf =
        fill_new(f->p, w, req, f->hkey, f->key, f->key_len, f->path, f->path_len, &f->hint);
    reader_finish(r);
    reader_add(nf, req, w, false);
    fill_attempt(nf);
    fill_unref(nf);
}

/* Starts r's response as a fill streams in (X-Cache: MISS): the object's fields and ours. */
static int start_streamed(struct edge_proxy *p, struct reader *r, const struct edge_obj *o,
                          const char *detail, int64_t clen)
{
    struct our_fields of;
    size_t n_of = build_fields(p, &of, "MISS", detail, 0);
    struct tmt_http_header h[MAX_FWD_HEADERS + 8];
    size_t n = 0;
    for (size_t i = 0; i < o->n_hdrs && n < MAX_FWD_HEADERS; i++) {
        if (!internal_field(o, o->hdrs[i].name))
            h[n++] = o->hdrs[i];
    }
    for (size_t i = 0; i < n_of; i++)
        h[n++] = of.h[i];
    int rc = tmt_http_resp_start(r->req, o->status, h, n, clen);
    r->started = rc == TMT_OK;
    return rc;
}

#define PASS_HIGH (1u << 20) /* bytes queued to clients before the upstream is paused */
#define PASS_LOW (256u << 10)

struct pass_piece {
    struct fill *f;
    size_t len;
    char data[];
};

static void pass_release(void *arg)
{
    struct pass_piece *pc = arg;
    struct fill *f = pc->f;
    f->pass_out -= pc->len;
    if (f->paused && f->pass_out < PASS_LOW && f->call != NULL) {
        f->paused = false;
        tmt_http_call_resume(f->call);
    }
    free(pc);
    fill_unref(f);
}

/* Pass mode, owner thread: a copy of the piece to each started reader; pauses the upstream
 * while clients lag. */
static void pass_push(struct fill *f, const char *data, size_t len)
{
    struct reader *to[64];
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (struct reader *r = f->readers; r != NULL && n < TMT_ARRAY_LEN(to); r = r->next) {
        if (r->started && !r->done && r->w == f->owner)
            to[n++] = r;
    }
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        struct pass_piece *pc = tmt_xmalloc(sizeof(*pc) + len);
        pc->f = f;
        pc->len = len;
        memcpy(pc->data, data, len);
        atomic_fetch_add(&f->refs, 1);
        f->pass_out += len;
        to[i]->sent += len;
        tmt_http_resp_ref(to[i]->req, pc->data, len, pass_release, pc);
    }
    if (!f->paused && f->pass_out > PASS_HIGH && f->call != NULL) {
        f->paused = true;
        tmt_http_call_pause(f->call);
    }
}

/* Pass mode, a reader's step: other workers' readers refill; the owner's start or end. */
static void pass_step(struct reader *r, enum fill_state st, struct edge_obj *o, uint64_t received)
{
    struct fill *f = r->f;
    struct edge_proxy *p = f->p;
    if (!r->started && r->w != f->owner) {
        reader_refill(r);
        return;
    }
    if (!r->started) {
        if (start_streamed(p, r, o, "fwd=miss; detail=larger-than-max-object",
                           f->known_len ? (int64_t)f->cap : -1) != TMT_OK) {
            reader_finish(r);
            return;
        }
        if (received > 0 && o->body != NULL) {
            /* What an unknown-length body had buffered before it outgrew the limit. */
            edge_obj_ref(o);
            tmt_http_resp_ref(r->req, o->body, received, edge_obj_release, o);
            r->sent = received;
        }
    }
    if (st == F_DONE || st == F_FAILED) {
        tmt_http_resp_end(r->req);
        reader_finish(r);
    }
}

static void reader_step(struct reader *r)
{
    struct fill *f = r->f;
    struct edge_proxy *p = f->p;
    if (r->done)
        return;
    pthread_mutex_lock(&f->mu);
    enum fill_state st = f->state;
    uint64_t received = f->received;
    bool known_len = f->known_len;
    bool revalidated = f->revalidated;
    bool stored = f->storable;
    bool pass = f->pass;
    struct edge_obj *o = f->obj;
    if (o != NULL)
        edge_obj_ref(o);
    pthread_mutex_unlock(&f->mu);

    if (st == F_HEAD) {
        edge_obj_unref(o);
        return;
    }
    if (!r->started && r->joined && o != NULL && !vary_ok(o, r->req->headers, r->req->n_headers)) {
        /* The response varies on fields this request has otherwise: a fill of its own (not
         * stored: the stored variant is the first request's). */
        edge_obj_unref(o);
        reader_refill(r);
        return;
    }
    if (pass && o != NULL && (r->started || st != F_FAILED)) {
        pass_step(r, st, o, received);
        edge_obj_unref(o);
        return;
    }
    if (st == F_FAILED && !r->started) {
        edge_obj_unref(o);
        if (stale_if_error_ok(f->stale, (int64_t)wall_ms()) &&
            vary_ok(f->stale, r->req->headers, r->req->n_headers)) {
            edge_obj_ref(f->stale);
            count(p, r->req, M_STALE, 1);
            r->req->cache_status = "stale";
            serve_obj(p, r->req, f->stale, "STALE", "hit; fwd=stale; detail=stale-if-error");
        } else {
            r->req->cache_status = "error";
            tmt_http_respond_error(r->req, f->fail_status, f->fail_why);
        }
        reader_finish(r);
        return;
    }
    if (!r->started) {
        if (revalidated) {
            if (st != F_DONE) {
                edge_obj_unref(o);
                return;
            }
            count(p, r->req, M_REVALIDATED, 1);
            r->req->cache_status = "revalidated";
            serve_obj(p, r->req, o, "REVALIDATED", "fwd=stale; fwd-status=304");
            reader_finish(r);
            return;
        }
        const char *detail = r->joined
                                 ? (stored ? "fwd=miss; stored; collapsed" : "fwd=miss; collapsed")
                                 : (stored ? "fwd=miss; stored" : "fwd=miss");
        if (f->stale != NULL)
            detail = stored ? "fwd=stale; stored" : "fwd=stale";
        if (r->whole || !known_len) {
            if (st != F_DONE) {
                edge_obj_unref(o);
                return;
            }
            serve_obj(p, r->req, o, "MISS", detail);
            reader_finish(r);
            return;
        }
        if (start_streamed(p, r, o, detail, (int64_t)f->cap) != TMT_OK) {
            edge_obj_unref(o);
            reader_finish(r);
            return;
        }
    }
    if (received > r->sent) {
        edge_obj_ref(o);
        tmt_http_resp_ref(r->req, o->body + r->sent, received - r->sent, edge_obj_release, o);
        r->sent = received;
    }
    edge_obj_unref(o);
    if (st == F_DONE || st == F_FAILED) {
        /* After a failure the response ends short: the server closes that connection. */
        tmt_http_resp_end(r->req);
        reader_finish(r);
    }
}

/* Wakes every reader: those of the owner's worker at once, the others through their loop. */
static void fill_notify(struct fill *f)
{
    struct reader *local[64];
    size_t n_local = 0;
    pthread_mutex_lock(&f->mu);
    for (struct reader *r = f->readers; r != NULL; r = r->next) {
        if (r->posted || r->done)
            continue;
        if (r->w == f->owner && n_local < TMT_ARRAY_LEN(local)) {
            local[n_local++] = r;
            continue;
        }
        r->posted = true;
        tmt_loop_post(r->w->loop, reader_posted, r);
    }
    pthread_mutex_unlock(&f->mu);
    /* A local reader may finish (and be freed) in its step; each is stepped once. */
    for (size_t i = 0; i < n_local; i++)
        reader_step(local[i]);
}

/* ---- the upstream side of a fill (owner thread) ---- */

static void fill_attempt(struct fill *f);

static void fill_fail(struct fill *f, int status, const char *why)
{
    table_remove(&f->p->fills, f);
    pthread_mutex_lock(&f->mu);
    f->state = F_FAILED;
    f->fail_status = status;
    snprintf(f->fail_why, sizeof(f->fail_why), "%s", why);
    pthread_mutex_unlock(&f->mu);
    fill_notify(f);
}

static bool stored_field(struct tmt_slice name, const struct tmt_http_header *h, size_t n)
{
    /* CORS is each hop's own (http.cors_origin): the upstream's fields would double ours. */
    if (name.len > 15 && strncasecmp(name.p, "access-control-", 15) == 0)
        return false;
    static const char *const drop[] = {"content-length", "date", "server", "x-cache", "age"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(drop); i++) {
        if (name.len == strlen(drop[i]) && strncasecmp(name.p, drop[i], name.len) == 0)
            return false;
    }
    return !tmt_hc_hop_by_hop(name, h, n);
}

static void set_meta(struct edge_obj *o, const struct tmt_hc_resp *hc, int64_t response_time_ms)
{
    o->meta = (struct edge_meta){
        .response_time_ms = response_time_ms,
        .initial_age_ms = hc->initial_age_ms,
        .lifetime_ms = hc->lifetime_ms,
        .swr_ms = hc->swr_ms,
        .sie_ms = hc->sie_ms,
        .flags = (hc->must_revalidate ? EDGE_META_MUST_REVALIDATE : 0u) |
                 (hc->no_cache ? EDGE_META_NO_CACHE : 0u),
    };
}

/* A 304 for the stored copy: its fields refreshed, body kept (RFC 9111 4.3.4). */
static void on_not_modified(struct fill *f, const struct tmt_http_client_resp *resp)
{
    struct edge_obj *s = f->stale;
    struct tmt_http_header h[MAX_FWD_HEADERS * 2];
    size_t n = 0;
    for (size_t i = 0; i < s->n_hdrs && n < MAX_FWD_HEADERS; i++) {
        struct tmt_slice name = s->hdrs[i].name;
        bool replaced = false;
        if (tmt_hc_304_updates(name) && !tmt_hc_hop_by_hop(name, resp->headers, resp->n_headers)) {
            for (size_t k = 0; k < resp->n_headers && !replaced; k++) {
                replaced = resp->headers[k].name.len == name.len &&
                           strncasecmp(resp->headers[k].name.p, name.p, name.len) == 0;
            }
        }
        if (!replaced)
            h[n++] = s->hdrs[i];
    }
    for (size_t k = 0; k < resp->n_headers && n < TMT_ARRAY_LEN(h); k++) {
        struct tmt_slice name = resp->headers[k].name;
        if (tmt_hc_304_updates(name) && stored_field(name, resp->headers, resp->n_headers))
            h[n++] = resp->headers[k];
    }
    int64_t now = (int64_t)wall_ms();
    struct tmt_hc_resp hc;
    /* Freshness from the merged fields, plus the 304's own Date and Age. */
    struct tmt_http_header all[MAX_FWD_HEADERS * 2 + 4];
    size_t na = 0;
    for (size_t i = 0; i < n; i++)
        all[na++] = h[i];
    for (size_t k = 0; k < resp->n_headers && na < TMT_ARRAY_LEN(all); k++) {
        struct tmt_slice nm = resp->headers[k].name;
        if ((nm.len == 4 && strncasecmp(nm.p, "date", 4) == 0) ||
            (nm.len == 3 && strncasecmp(nm.p, "age", 3) == 0))
            all[na++] = resp->headers[k];
    }
    tmt_hc_evaluate(&f->p->hc, TMT_HTTP_GET, s->status, NULL, 0, all, na, f->request_time_ms, now,
                    &hc);
    struct edge_obj *o = edge_obj_refresh(s, h, n);
    set_meta(o, &hc, now);
    pthread_mutex_lock(&f->mu);
    bool purged = f->purged;
    pthread_mutex_unlock(&f->mu);
    if (hc.storable && !purged)
        edge_store_replace(f->p->store, o);
    pthread_mutex_lock(&f->mu);
    f->obj = o;
    f->revalidated = true;
    f->storable = hc.storable && !purged;
    f->known_len = true;
    f->cap = o->size;
    f->received = o->size;
    pthread_mutex_unlock(&f->mu);
}

/* Is the field `name` listed in one of resp's Vary lines? */
static bool vary_names(const struct tmt_http_client_resp *resp, struct tmt_slice name)
{
    char lower[64];
    if (name.len >= sizeof(lower))
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.p[i];
        lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    lower[name.len] = '\0';
    for (size_t i = 0; i < resp->n_headers; i++) {
        struct tmt_slice nm = resp->headers[i].name;
        if (nm.len == 4 && strncasecmp(nm.p, "vary", 4) == 0 &&
            tmt_http_list_has(resp->headers[i].value, lower))
            return true;
    }
    return false;
}

/* f's current upstream failed: hold it off. */
static void up_failed(struct fill *f)
{
    if (f->p->holdoff_ms > 0)
        atomic_store_explicit(&f->ups->held_until[f->order[f->tried - 1]],
                              mono_ms() + f->p->holdoff_ms, memory_order_relaxed);
}

/* f's current upstream answered: its hold, if any, is over. */
static void up_answered(struct fill *f)
{
    _Atomic uint64_t *h = &f->ups->held_until[f->order[f->tried - 1]];
    if (atomic_load_explicit(h, memory_order_relaxed) != 0)
        atomic_store_explicit(h, 0, memory_order_relaxed);
}

/* Should the failure of f's current upstream be logged (true: *quiet is how many were not
 * since its last line), or only counted (see pworker)? */
static bool up_log_due(struct fill *f, uint64_t *quiet)
{
    struct pworker *w = f->owner;
    unsigned u = f->order[f->tried - 1];
    uint64_t now = mono_ms();
    if (w->up_logged_ms[u] != 0 && now - w->up_logged_ms[u] < 1000) {
        w->up_quiet[u]++;
        return false;
    }
    *quiet = w->up_quiet[u];
    w->up_logged_ms[u] = now;
    w->up_quiet[u] = 0;
    return true;
}

static void up_on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct fill *f = arg;
    struct edge_proxy *p = f->p;
    up_answered(f); /* a 5xx too: the shield is up, the next one is tried for this key only */
    if (resp->status >= 500 && f->tried < f->ups->n &&
        (f->method == TMT_HTTP_GET || f->method == TMT_HTTP_HEAD)) {
        f->retry_next = true;
        count_shard(p, f->owner, M_UP_ERRORS);
        uint64_t quiet;
        if (up_log_due(f, &quiet))
            tmt_log(TMT_LOG_WARN, "edge", "upstream error, trying the next one",
                    "upstream=%s status=%d unlogged_before=%" PRIu64,
                    f->ups->name[f->order[f->tried - 1]], resp->status, quiet);
        return;
    }
    if (f->stale != NULL &&
        (resp->status == 500 || resp->status == 502 || resp->status == 503 ||
         resp->status == 504) &&
        stale_if_error_ok(f->stale, (int64_t)wall_ms())) {
        /* RFC 5861 section 4: these statuses are errors the stale copy may stand in for. */
        f->stale_error = resp->status;
        count_shard(p, f->owner, M_UP_ERRORS);
        uint64_t quiet;
        if (up_log_due(f, &quiet))
            tmt_log(TMT_LOG_WARN, "edge", "upstream error, serving the stale copy",
                    "upstream=%s status=%d unlogged_before=%" PRIu64,
                    f->ups->name[f->order[f->tried - 1]], resp->status, quiet);
        return;
    }
    if (resp->status == 304 && f->stale != NULL) {
        on_not_modified(f, resp);
        return;
    }
    bool pass = resp->content_length > (int64_t)p->max_object;
    struct tmt_http_header h[MAX_FWD_HEADERS * 2];
    size_t n = 0;
    bool vary = false;
    for (size_t i = 0; i < resp->n_headers && n < MAX_FWD_HEADERS; i++) {
        struct tmt_slice nm = resp->headers[i].name;
        if (stored_field(nm, resp->headers, resp->n_headers) && (nm.len == 0 || nm.p[0] != ':')) {
            h[n++] = resp->headers[i];
            vary = vary || (nm.len == 4 && strncasecmp(nm.p, "vary", 4) == 0);
        }
    }
    /* With Vary, the request's values of the fields it names, as ':name' fields (see edge_obj). */
    char vnames[MAX_FWD_HEADERS * 64];
    size_t vused = 0;
    for (size_t i = 0; vary && i < f->n_fwd && n < TMT_ARRAY_LEN(h); i++) {
        struct tmt_slice nm = f->fwd[i].name;
        if (nm.len + 1 > sizeof(vnames) - vused || !vary_names(resp, nm))
            continue;
        vnames[vused] = ':';
        memcpy(vnames + vused + 1, nm.p, nm.len);
        h[n++] = (struct tmt_http_header){{vnames + vused, nm.len + 1}, f->fwd[i].value};
        vused += nm.len + 1;
    }
    int64_t now = (int64_t)wall_ms();
    struct tmt_hc_resp hc;
    tmt_hc_evaluate(&p->hc, f->method, resp->status, f->fwd, f->n_fwd, resp->headers,
                    resp->n_headers, f->request_time_ms, now, &hc);
    bool known = resp->content_length >= 0;
    uint64_t cap = known ? (uint64_t)resp->content_length : 64 * 1024;
    struct edge_obj *o = edge_obj_new(f->hkey, (struct tmt_slice){f->key, f->key_len}, resp->status,
                                      h, n, pass ? 0 : cap);
    o->hint = f->hint;
    set_meta(o, &hc, now);
    pthread_mutex_lock(&f->mu);
    f->obj = o;
    f->cap = cap;
    f->known_len = known;
    f->storable = hc.storable && f->in_table && !f->purged && !pass;
    f->state = F_BODY;
    f->pass = pass;
    pthread_mutex_unlock(&f->mu);
    if (pass)
        table_remove(&p->fills, f); /* later requests make their own fills */
    fill_notify(f);
}

/* Switches a fill to pass mode (owner thread): out of the table, nothing stored, readers told. */
static void pass_enter(struct fill *f)
{
    table_remove(&f->p->fills, f);
    pthread_mutex_lock(&f->mu);
    f->pass = true;
    f->storable = false;
    pthread_mutex_unlock(&f->mu);
    fill_notify(f);
}

static void up_on_data(void *arg, const char *data, size_t len)
{
    struct fill *f = arg;
    count_shard_add(f->p, f->owner, M_UP_BYTES, len);
    if (f->retry_next || f->stale_error != 0 || f->revalidated || f->obj == NULL)
        return;
    struct edge_obj *o = f->obj;
    if (f->known_len && f->received + len > f->cap) {
        fill_fail(f, 502, "upstream sent more than its Content-Length");
        tmt_http_call_cancel(&f->call);
        fill_unref(f);
        return;
    }
    if (!f->pass && !f->known_len && f->received + len > f->p->max_object) {
        /* An unknown-length body outgrew the limit: passed through from here, not kept. */
        pass_enter(f);
    }
    if (f->pass) {
        pthread_mutex_lock(&f->mu);
        f->received += len;
        pthread_mutex_unlock(&f->mu);
        pass_push(f, data, len);
        return;
    }
    if (f->received + len > f->cap) {
        /* Unknown length: every reader waits for the whole object, so the buffer may move. */
        uint64_t cap = TMT_MIN(f->p->max_object, TMT_MAX(f->cap * 2, f->received + len));
        o->body_mem = tmt_xrealloc(o->body_mem, cap);
        o->body = o->body_mem;
        f->cap = cap;
    }
    memcpy(o->body_mem + f->received, data, len);
    pthread_mutex_lock(&f->mu);
    f->received += len;
    pthread_mutex_unlock(&f->mu);
    if (f->known_len)
        fill_notify(f);
}

static void up_on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct fill *f = arg;
    struct edge_proxy *p = f->p;
    f->call = NULL;
    if (f->retry_next) {
        f->retry_next = false;
        fill_attempt(f);
        fill_unref(f);
        return;
    }
    if (f->stale_error != 0) {
        char why[64];
        snprintf(why, sizeof(why), "upstream answered %d", f->stale_error);
        fill_fail(f, f->stale_error, why);
        fill_unref(f);
        return;
    }
    if (rc != TMT_OK) {
        bool before_head = f->obj == NULL && !f->revalidated;
        uint64_t quiet;
        if (up_log_due(f, &quiet))
            tmt_log(TMT_LOG_WARN, "edge", "upstream request failed",
                    "upstream=%s why=\"%s\" unlogged_before=%" PRIu64,
                    f->ups->name[f->order[f->tried - 1]], err->msg, quiet);
        count_shard(p, f->owner, M_UP_ERRORS);
        up_failed(f);
        if (before_head && f->tried < f->ups->n) {
            fill_attempt(f);
        } else {
            char why[160];
            int wl = snprintf(why, sizeof(why), "upstream failed: %.120s", err->msg);
            (void)wl;
            fill_fail(f, rc == TMT_ETIMEDOUT ? 504 : 502, why);
        }
        fill_unref(f);
        return;
    }
    if (!f->revalidated) {
        struct edge_obj *o = f->obj;
        if (o == NULL) {
            fill_fail(f, 502, "upstream sent no response");
            fill_unref(f);
            return;
        }
        if (f->known_len && f->received != f->cap) {
            fill_fail(f, 502, "upstream body shorter than its Content-Length");
            fill_unref(f);
            return;
        }
        if (!f->pass)
            o->size = f->received;
        pthread_mutex_lock(&f->mu);
        bool storable = f->storable;
        pthread_mutex_unlock(&f->mu);
        if (storable && edge_store_put(p->store, o, mono_ms()) == TMT_TIER_NONE) {
            pthread_mutex_lock(&f->mu);
            f->storable = false;
            pthread_mutex_unlock(&f->mu);
        }
    }
    table_remove(&p->fills, f);
    pthread_mutex_lock(&f->mu);
    f->state = F_DONE;
    pthread_mutex_unlock(&f->mu);
    fill_notify(f);
    fill_unref(f);
}

/* Starts the next upstream attempt, or fails the fill when none is left. */
static void fill_attempt(struct fill *f)
{
    struct edge_proxy *p = f->p;
    if (f->tried >= f->ups->n) {
        fill_fail(f, f->ups->n == 0 ? 503 : 502,
                  f->ups->n == 0 ? "no upstream known yet" : "no upstream answered");
        return;
    }
    if (f->tried > 0)
        count_shard(p, f->owner, M_UP_RETRIES);
    const char *up = f->ups->name[f->order[f->tried++]];
    struct tmt_http_header h[MAX_FWD_HEADERS + 3];
    size_t n = 0;
    for (size_t i = 0; i < f->n_fwd; i++) {
        if (f->ups->auth_len > 0 && tmt_http_slice_ieq(f->fwd[i].name, "authorization"))
            continue; /* the fill key replaces the viewer's */
        h[n++] = f->fwd[i];
    }
    if (f->ups->auth_len > 0)
        h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Authorization"),
                                          {f->ups->auth, f->ups->auth_len}};
    if (f->stale != NULL) {
        if (f->inm_etag[0] != '\0')
            h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("If-None-Match"),
                                              {f->inm_etag, strlen(f->inm_etag)}};
        else if (f->ims[0] != '\0')
            h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("If-Modified-Since"),
                                              {f->ims, strlen(f->ims)}};
    }
    struct tmt_http_client_req cr = {
        .upstream = up,
        .method = f->method,
        .path = {f->path, f->path_len},
        .host = {f->host, f->host_len},
        .headers = h,
        .n_headers = n,
        .body = {f->body, f->body_len},
    };
    static const struct tmt_http_client_cbs cbs = {up_on_head, up_on_data, up_on_done};
    f->request_time_ms = (int64_t)wall_ms();
    atomic_fetch_add(&f->refs, 1); /* the call's */
    count_shard(p, f->owner, M_UP_REQUESTS);
    f->call = tmt_http_client_fetch(f->owner->client, &cr, &cbs, f);
}

/* ---- requests ---- */

static bool forward_request_field(struct tmt_slice name, const struct tmt_http_req *req)
{
    static const char *const drop[] = {"host",     "content-length",      "range",
                                       "if-range", "if-none-match",       "if-modified-since",
                                       "if-match", "if-unmodified-since", "expect"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(drop); i++) {
        if (name.len == strlen(drop[i]) && strncasecmp(name.p, drop[i], name.len) == 0)
            return false;
    }
    return !tmt_hc_hop_by_hop(name, req->headers, req->n_headers);
}

static struct fill *fill_new(struct edge_proxy *p, struct pworker *w, struct tmt_http_req *req,
                             uint64_t hkey, const char *key, size_t key_len, const char *path,
                             size_t path_len, const struct tmt_policy_hint *hint)
{
    struct fill *f = tmt_xcalloc(1, sizeof(*f));
    atomic_init(&f->refs, 1);
    pthread_mutex_init(&f->mu, NULL);
    f->p = p;
    f->owner = w;
    f->hkey = hkey;
    f->key = tmt_xmalloc(key_len + 1);
    memcpy(f->key, key, key_len);
    f->key_len = key_len;
    f->hint = *hint;
    f->method = req->method == TMT_HTTP_HEAD ? TMT_HTTP_GET : req->method;
    f->path = tmt_xmalloc(path_len + 1);
    memcpy(f->path, path, path_len);
    f->path_len = path_len;
    f->host = tmt_xmalloc(req->authority.len + 1);
    memcpy(f->host, req->authority.p, req->authority.len);
    f->host_len = req->authority.len;
    size_t bytes = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        bytes += req->headers[i].name.len + req->headers[i].value.len;
    f->fwd_mem = tmt_xmalloc(bytes + 1);
    char *m = f->fwd_mem;
    for (size_t i = 0; i < req->n_headers && f->n_fwd < MAX_FWD_HEADERS; i++) {
        const struct tmt_http_header *h = &req->headers[i];
        if (!forward_request_field(h->name, req))
            continue;
        memcpy(m, h->name.p, h->name.len);
        memcpy(m + h->name.len, h->value.p, h->value.len);
        f->fwd[f->n_fwd++] =
            (struct tmt_http_header){{m, h->name.len}, {m + h->name.len, h->value.len}};
        m += h->name.len + h->value.len;
    }
    if (req->body.len > 0) {
        f->body = tmt_xmalloc(req->body.len);
        memcpy(f->body, req->body.p, req->body.len);
        f->body_len = req->body.len;
    }
    /* Rendezvous order: the upstream with the highest mix of key and upstream hash first. */
    f->ups = ups_get(p);
    uint64_t score[MAX_UPSTREAMS];
    for (unsigned i = 0; i < f->ups->n; i++) {
        uint64_t sc = tmt_mix64(hkey ^ f->ups->hash[i]);
        unsigned k = i;
        while (k > 0 && score[k - 1] < sc) {
            score[k] = score[k - 1];
            f->order[k] = f->order[k - 1];
            k--;
        }
        score[k] = sc;
        f->order[k] = i;
    }
    /* Held-off upstreams after the others, each group in rendezvous order. */
    uint64_t now = mono_ms();
    uint64_t probe_ms = p->copts.connect_timeout_ms + p->copts.response_timeout_ms + 1000;
    unsigned held[MAX_UPSTREAMS], n_held = 0, n_up = 0;
    for (unsigned i = 0; i < f->ups->n; i++) {
        unsigned u = f->order[i];
        if (up_held(f->ups, u, now, probe_ms, n_up == 0))
            held[n_held++] = u;
        else
            f->order[n_up++] = u;
    }
    for (unsigned i = 0; i < n_held; i++)
        f->order[n_up + i] = held[i];
    return f;
}

static void reader_add(struct fill *f, struct tmt_http_req *req, struct pworker *w, bool joined)
{
    struct reader *r = tmt_xcalloc(1, sizeof(*r));
    r->f = f;
    r->req = req;
    r->w = w;
    r->joined = joined;
    r->whole = req->method == TMT_HTTP_HEAD ||
               tmt_http_header_find(req->headers, req->n_headers, "range") != NULL ||
               tmt_http_header_find(req->headers, req->n_headers, "if-none-match") != NULL ||
               tmt_http_header_find(req->headers, req->n_headers, "if-modified-since") != NULL ||
               tmt_http_header_find(req->headers, req->n_headers, "if-match") != NULL ||
               tmt_http_header_find(req->headers, req->n_headers, "if-unmodified-since") != NULL;
    atomic_fetch_add(&f->refs, 1);
    pthread_mutex_lock(&f->mu);
    r->next = f->readers;
    f->readers = r;
    bool ready = f->state != F_HEAD;
    pthread_mutex_unlock(&f->mu);
    if (ready)
        reader_step(r);
}

static struct pworker *worker_of(struct edge_proxy *p, struct tmt_http_req *req)
{
    struct pworker *w = &p->workers[req->worker];
    if (w->client == NULL) {
        w->loop = tmt_http_req_loop(req);
        w->client = tmt_http_client_new(w->loop, &p->copts);
    }
    return w;
}

/* 403 for a request the token gate refused: the reason in a header and a short body. */
static void deny(struct tmt_http_req *req, const char *why)
{
    const struct tmt_http_header h[] = {
        {TMT_SLICE_LIT("X-Tomato-Reason"), {why, strlen(why)}},
        {TMT_SLICE_LIT("Content-Type"), TMT_SLICE_LIT("text/plain")},
        {TMT_SLICE_LIT("Cache-Control"), TMT_SLICE_LIT("no-store")},
    };
    char body[128];
    int bl = snprintf(body, sizeof(body), "403 Forbidden: %s\n", why);
    if (bl < 0 || (size_t)bl >= sizeof(body))
        bl = 0;
    req->cache_status = "denied";
    tmt_log(TMT_LOG_DEBUG, "edge", "token refused", "rid=%" PRIu64 " why=\"%s\"", req->id, why);
    if (tmt_http_resp_start(req, 403, h, TMT_ARRAY_LEN(h), bl) == TMT_OK && bl > 0)
        tmt_http_resp_copy(req, body, (size_t)bl);
    tmt_http_resp_end(req);
}

void edge_proxy_handle(struct tmt_http_req *req, void *arg)
{
    struct edge_proxy *p = arg;
    TMT_CHECK_OBJ(p, PROXY_MAGIC);
    struct pworker *w = worker_of(p, req);
    /* /t/{token}/...: the token is not part of the key, the upstream path or the log. */
    struct tmt_slice path, token;
    int tokened = edge_tokens_split(req->path, &token, &path);
    if (tokened < 0) {
        req->log_path = TMT_SLICE_LIT("/t/-");
        tmt_http_respond_error(req, 400, "bad token path: /t/{token}/v/...");
        return;
    }
    if (tokened > 0)
        req->log_path = path;
    char key[MAX_KEY];
    int status = 0;
    const char *why = NULL;
    size_t klen = edge_cache_key(path, req->query, key, sizeof(key) - 1, &status, &why);
    if (klen == 0) {
        tmt_http_respond_error(req, status, why);
        return;
    }
    if (p->tokens != NULL) {
        enum edge_tokens_scope scope = edge_tokens_scope(p->tokens, key, klen);
        if (tokened > 0 && scope == EDGE_TOKENS_OPEN) {
            tmt_http_respond_error(
                req, 400, "a token path leads to a tokens.protect or tokens.public prefix");
            return;
        }
        if (scope == EDGE_TOKENS_PROTECTED &&
            !edge_tokens_check(p->tokens, req->worker, token, path, (int64_t)(wall_ms() / 1000),
                               &why)) {
            deny(req, why);
            return;
        }
    } else if (tokened > 0 && (klen < 3 || memcmp(key, "/v/", 3) != 0)) {
        tmt_http_respond_error(req, 400, "a token path leads to /v/ only");
        return;
    }
    uint64_t hkey = XXH3_64bits(key, klen);
    struct tmt_policy_hint hint;
    tmt_policy_hint_of_key(key, klen, &hint);
    bool cacheable = req->method == TMT_HTTP_GET || req->method == TMT_HTTP_HEAD;

    if (!cacheable) {
        /* Forwarded as is, never coalesced or stored. */
        count(p, req, M_PASS, 1);
        req->cache_status = "pass";
        struct fill *f = fill_new(p, w, req, hkey, key, klen, key, klen, &hint);
        reader_add(f, req, w, false);
        fill_attempt(f);
        fill_unref(f);
        /* An unsafe method invalidates what is stored for its URI (RFC 9111 4.4). */
        if (req->method != TMT_HTTP_OPTIONS && req->method != TMT_HTTP_TRACE)
            (void)edge_store_remove(p->store, hkey);
        return;
    }

    bool looked_again = false;
look:;
    int64_t now = (int64_t)wall_ms();
    enum tmt_tier tier;
    struct edge_obj *o =
        edge_store_get(p->store, hkey, (struct tmt_slice){key, klen}, &hint, mono_ms(), &tier);
    if (o != NULL && !vary_ok(o, req->headers, req->n_headers)) {
        /* Stored for another variant: this request's fill replaces it. */
        edge_obj_unref(o);
        o = NULL;
    }
    if (o != NULL && fresh(o, now)) {
        static const size_t hit_m[] = {M_HIT_HOT, M_HIT_WARM, M_HIT_COLD};
        static const size_t byte_m[] = {M_BYTES_HOT, M_BYTES_WARM, M_BYTES_COLD};
        static const char *const xc[] = {"HIT-hot", "HIT-warm", "HIT-cold"};
        static const char *const cs[] = {"hit; detail=hot", "hit; detail=warm", "hit; detail=cold"};
        count(p, req, hit_m[tier], 1);
        count(p, req, byte_m[tier], o->size);
        req->cache_status = xc[tier];
        serve_obj(p, req, o, xc[tier], cs[tier]);
        return;
    }

    /* Stale within stale-while-revalidate: served now, revalidated in the background. */
    bool swr = o != NULL && stale_while_revalidate_ok(o, now);
    pthread_mutex_lock(&p->fills.mu);
    struct fill *f = table_find(&p->fills, hkey, key, klen);
    if (f == NULL && o == NULL && !looked_again && edge_store_has(p->store, hkey)) {
        /* A fill finished between the lookup and here: its object answers (a miss was not
         * counted, so the simulator's one access per request holds). */
        pthread_mutex_unlock(&p->fills.mu);
        looked_again = true;
        goto look;
    }
    if (f != NULL && swr) {
        pthread_mutex_unlock(&p->fills.mu);
        serve_swr(p, req, o);
        return;
    }
    if (f != NULL) {
        atomic_fetch_add(&f->refs, 1);
        pthread_mutex_unlock(&p->fills.mu);
        edge_obj_unref(o);
        count(p, req, M_COALESCED, 1);
        count(p, req, M_MISS, 1);
        req->cache_status = "miss";
        reader_add(f, req, w, true);
        fill_unref(f);
        return;
    }
    f = fill_new(p, w, req, hkey, key, klen, key, klen, &hint);
    f->in_table = true;
    f->tnext = p->fills.b[hkey % FILL_BUCKETS];
    p->fills.b[hkey % FILL_BUCKETS] = f;
    pthread_mutex_unlock(&p->fills.mu);
    if (o != NULL) {
        /* Stale: revalidate with its validators; keep it for stale-if-error. */
        f->stale = o;
        for (size_t i = 0; i < o->n_hdrs; i++) {
            const struct tmt_http_header *h = &o->hdrs[i];
            if (h->name.len == 4 && strncasecmp(h->name.p, "etag", 4) == 0 &&
                h->value.len < sizeof(f->inm_etag)) {
                memcpy(f->inm_etag, h->value.p, h->value.len);
                f->inm_etag[h->value.len] = '\0';
            } else if (h->name.len == 13 && strncasecmp(h->name.p, "last-modified", 13) == 0 &&
                       h->value.len < sizeof(f->ims)) {
                memcpy(f->ims, h->value.p, h->value.len);
                f->ims[h->value.len] = '\0';
            }
        }
    }
    if (swr) {
        /* A fill with no reader: it stores (or refreshes) what it gets, if anything. */
        edge_obj_ref(o);
        serve_swr(p, req, o);
        fill_attempt(f);
        fill_unref(f);
        return;
    }
    count(p, req, M_MISS, 1);
    req->cache_status = "miss";
    reader_add(f, req, w, false);
    fill_attempt(f);
    fill_unref(f);
}

/* ---- purge (admin listener) ---- */

/* Fills in flight that match stop being storable: what they bring is from before the purge. */
static void unstore_fills(struct edge_proxy *p, uint64_t hkey, uint64_t group, bool by_group)
{
    pthread_mutex_lock(&p->fills.mu);
    for (size_t b = by_group ? 0 : hkey % FILL_BUCKETS; b < FILL_BUCKETS; b++) {
        for (struct fill *f = p->fills.b[b]; f != NULL; f = f->tnext) {
            if (by_group ? f->hint.group == group : f->hkey == hkey) {
                pthread_mutex_lock(&f->mu);
                f->storable = false;
                f->purged = true;
                pthread_mutex_unlock(&f->mu);
            }
        }
        if (!by_group)
            break;
    }
    pthread_mutex_unlock(&p->fills.mu);
}

static bool asset_id_ok(const char *a, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

void edge_proxy_purge(struct tmt_http_req *req, struct edge_proxy *p)
{
    TMT_CHECK_OBJ(p, PROXY_MAGIC);
    if (req->method != TMT_HTTP_POST) {
        tmt_http_respond_error(req, 405, "purge is POST /purge?key=PATH or ?asset=ID");
        return;
    }
    char val[MAX_KEY], key[MAX_KEY];
    size_t purged = 0;
    long kl = tmt_http_query_param(req->query, "key", val, sizeof(val));
    long al = tmt_http_query_param(req->query, "asset", val, sizeof(val));
    if ((kl >= 0) == (al >= 0) || kl == -2 || al == -2) {
        tmt_http_respond_error(req, 400, "give one of key=PATH or asset=ID, percent-encoded");
        return;
    }
    if (kl >= 0) {
        /* The key as a request target: path, then an optional query. */
        const char *q = memchr(val, '?', (size_t)kl);
        struct tmt_slice path = {val, q != NULL ? (size_t)(q - val) : (size_t)kl};
        struct tmt_slice query = {NULL, 0};
        if (q != NULL)
            query = (struct tmt_slice){q + 1, (size_t)kl - path.len - 1};
        int status = 0;
        const char *why = NULL;
        size_t klen = edge_cache_key(path, query, key, sizeof(key) - 1, &status, &why);
        if (klen == 0) {
            tmt_http_respond_error(req, status, why);
            return;
        }
        uint64_t hkey = XXH3_64bits(key, klen);
        unstore_fills(p, hkey, 0, false);
        purged = edge_store_remove(p->store, hkey) ? 1 : 0;
        tmt_log(TMT_LOG_INFO, "edge", "purge", "key=%.*s purged=%zu", (int)TMT_MIN(klen, 300), key,
                purged);
    } else {
        if (!asset_id_ok(val, (size_t)al)) {
            tmt_http_respond_error(req, 400, "asset ids are 1 to 64 of [A-Za-z0-9_-]");
            return;
        }
        uint64_t group = XXH3_64bits(val, (size_t)al);
        unstore_fills(p, 0, group, true);
        purged = edge_store_remove_group(p->store, group);
        tmt_log(TMT_LOG_INFO, "edge", "purge", "asset=%.*s purged=%zu", (int)al, val, purged);
    }
    char body[64];
    int bl = snprintf(body, sizeof(body), "{\"purged\":%zu}\n", purged);
    tmt_http_respond(req, 200, "application/json", body, (size_t)bl);
}

void edge_proxy_cache_report(struct tmt_http_req *req, struct edge_proxy *p, bool compact)
{
    TMT_CHECK_OBJ(p, PROXY_MAGIC);
    if (req->method != (compact ? TMT_HTTP_POST : TMT_HTTP_GET)) {
        tmt_http_respond_error(req, 405, compact ? "use POST /cache/compact" : "use GET /cache");
        return;
    }
    uint64_t disk[TMT_TIER_N] = {0};
    for (unsigned t = TMT_TIER_WARM; t < TMT_TIER_N; t++)
        disk[t] = edge_store_disk_bytes(p->store, (enum tmt_tier)t, compact);
    struct edge_store_stats st;
    edge_store_stats(p->store, &st);
    char body[1024];
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "{");
    for (unsigned t = 0; t < TMT_TIER_N; t++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s\"%s\":{\"budget\":%" PRIu64 ",\"bytes\":%" PRIu64
                              ",\"objects\":%" PRIu64,
                              t > 0 ? "," : "", tmt_tier_name((enum tmt_tier)t), st.budget[t],
                              st.bytes[t], st.objects[t]);
        if (t != TMT_TIER_HOT)
            n += (size_t)snprintf(body + n, sizeof(body) - n, ",\"disk_bytes\":%" PRIu64, disk[t]);
        n += (size_t)snprintf(body + n, sizeof(body) - n, "}");
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, "}\n");
    if (compact)
        tmt_log(TMT_LOG_INFO, "edge", "cache compacted",
                "warm_disk_bytes=%" PRIu64 " cold_disk_bytes=%" PRIu64, disk[TMT_TIER_WARM],
                disk[TMT_TIER_COLD]);
    tmt_http_respond(req, 200, "application/json", body, TMT_MIN(n, sizeof(body) - 1));
}

/* ---- lifecycle ---- */

struct edge_proxy *edge_proxy_new(const struct edge_conf *c, unsigned n_workers,
                                  struct tmt_metrics *metrics, struct edge_tokens *tokens,
                                  struct tmt_err *err)
{
    struct edge_proxy *p = tmt_xcalloc(1, sizeof(*p));
    p->magic = PROXY_MAGIC;
    p->tokens = tokens;
    pthread_mutex_init(&p->fills.mu, NULL);
    tmt_hc_opts_default(&p->hc);
    p->hc.heuristic_max_ms = (int64_t)c->heuristic_max_ms;
    p->hc.cdn_cache_control = c->cdn_cache_control;
    pthread_mutex_init(&p->ups_mu, NULL);
    char auth[TMT_SECRET_MAX + 8];
    size_t auth_len = 0;
    tmt_http_client_opts_default(&p->copts);
    p->copts.connect_timeout_ms = c->up_connect_ms;
    p->copts.response_timeout_ms = c->up_response_ms;
    p->copts.read_timeout_ms = c->up_read_ms;
    p->holdoff_ms = c->up_holdoff_ms;
    p->max_object = c->max_object_size;
    p->name = tmt_xstrdup(c->cache_name);
    if (c->fill_key_file[0] != '\0') {
        char key[TMT_SECRET_MAX];
        size_t kl;
        if (tmt_secret_load("upstream.fill_key_file", c->fill_key_file, key, &kl, err) != TMT_OK) {
            edge_proxy_free(&p);
            return NULL;
        }
        memcpy(auth, "Bearer ", 7);
        memcpy(auth + 7, key, kl);
        auth_len = 7 + kl;
    }
    p->ups = ups_new((const char *const *)c->shields.items, c->shields.n, auth, auth_len);
    p->n_workers = n_workers;
    p->workers = tmt_xcalloc(n_workers, sizeof(*p->workers));
    for (unsigned i = 0; i < n_workers; i++)
        p->workers[i].idx = i;
    struct edge_store_opts so = {
        .policy = (enum tmt_policy_kind)c->policy,
        .budget = {c->hot_size, c->warm_size, c->cold_size},
        .max_object = c->max_object_size,
        .path = {NULL, c->warm_path, c->cold_path},
        .zstd_level = {0, (int)c->warm_zstd, (int)c->cold_zstd},
        .start_ms = mono_ms(),
        .frozen_clock = c->policy_clock == 1,
        .mrc_rate = strtod(c->mrc_rate, NULL),
        .mrc_memory = c->mrc_memory,
    };
    p->store = edge_store_open(&so, err);
    if (p->store == NULL) {
        edge_proxy_free(&p);
        return NULL;
    }
    if (metrics != NULL) {
        p->metrics = metrics;
        p->m_base = tmt_metrics_register(metrics, proxy_metrics, TMT_ARRAY_LEN(proxy_metrics));
        p->g_base = tmt_metrics_register(metrics, store_metrics, TMT_ARRAY_LEN(store_metrics));
    }
    struct edge_store_stats st;
    edge_store_stats(p->store, &st);
    tmt_log(TMT_LOG_INFO, "edge", "cache open",
            "restored=%" PRIu64 " warm_objects=%" PRIu64 " cold_objects=%" PRIu64 " upstreams=%zu",
            st.restored, st.objects[TMT_TIER_WARM], st.objects[TMT_TIER_COLD], p->ups->n);
    return p;
}

static void publish(struct edge_proxy *p)
{
    struct edge_store_stats st;
    edge_store_stats(p->store, &st);
    pthread_mutex_lock(&p->ups_mu);
    uint64_t n_ups = p->ups->n;
    pthread_mutex_unlock(&p->ups_mu);
    uint64_t v[G_N] = {st.objects[0], st.objects[1],        st.objects[2],   st.bytes[0],
                       st.bytes[1],   st.bytes[2],          st.promotions,   st.demotions,
                       st.evictions,  st.checksum_failures, st.write_errors, n_ups};
    for (unsigned i = 0; i < G_N; i++) {
        tmt_metric_add(p->main_shard, p->g_base + i, v[i] - p->g_last[i]);
        p->g_last[i] = v[i];
    }
}

static void on_gauge_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    publish(arg);
}

void edge_proxy_start(struct edge_proxy *p, struct tmt_loop *main_loop, unsigned main_shard)
{
    if (p->metrics == NULL)
        return;
    p->main_shard = tmt_metrics_shard(p->metrics, main_shard);
    publish(p);
    p->gauge_ev = event_new(tmt_loop_base(main_loop), -1, EV_PERSIST, on_gauge_tick, p);
    static const struct timeval second = {1, 0};
    if (p->gauge_ev != NULL)
        event_add(p->gauge_ev, &second);
}

void edge_proxy_free(struct edge_proxy **pp)
{
    struct edge_proxy *p = *pp;
    if (p == NULL)
        return;
    TMT_CHECK_OBJ(p, PROXY_MAGIC);
    if (p->gauge_ev != NULL)
        event_free(p->gauge_ev);
    for (unsigned i = 0; i < p->n_workers; i++)
        tmt_http_client_free(&p->workers[i].client);
    edge_store_close(&p->store);
    ups_put(p->ups);
    pthread_mutex_destroy(&p->ups_mu);
    free(p->workers);
    free(p->name);
    pthread_mutex_destroy(&p->fills.mu);
    p->magic = 0;
    free(p);
    *pp = NULL;
}

void edge_proxy_set_upstreams(struct edge_proxy *p, const char *const *names, size_t n)
{
    struct upstreams *cur = ups_get(p);
    struct upstreams *u = ups_new(names, n, cur->auth, cur->auth_len);
    bool same = u->n == cur->n;
    for (size_t i = 0; same && i < u->n; i++)
        same = strcmp(u->name[i], cur->name[i]) == 0;
    if (!same)
        ups_keep_holds(u, cur);
    ups_put(cur);
    if (same) {
        ups_put(u);
        return;
    }
    tmt_log(TMT_LOG_INFO, "edge", "upstreams replaced", "count=%zu first=%s", u->n,
            u->n > 0 ? u->name[0] : "-");
    ups_install(p, u);
    if (p->main_shard != NULL)
        publish(p);
}

void edge_proxy_set_fill_key(struct edge_proxy *p, const char *key, size_t len)
{
    if (len == 0 || len > TMT_SECRET_MAX)
        return;
    struct upstreams *cur = ups_get(p);
    char auth[TMT_SECRET_MAX + 8];
    memcpy(auth, "Bearer ", 7);
    memcpy(auth + 7, key, len);
    bool same = cur->auth_len == 7 + len && memcmp(cur->auth, auth, 7 + len) == 0;
    struct upstreams *u =
        same ? NULL : ups_new((const char *const *)cur->name, cur->n, auth, 7 + len);
    if (u != NULL)
        ups_keep_holds(u, cur);
    ups_put(cur);
    if (u != NULL)
        ups_install(p, u);
}

size_t edge_proxy_mrc(struct edge_proxy *p, struct tmt_mrc_point *out, size_t cap, double *rate,
                      uint64_t *sampled, uint64_t *budget)
{
    TMT_CHECK_OBJ(p, PROXY_MAGIC);
    return edge_store_mrc(p->store, out, cap, rate, sampled, budget);
}
