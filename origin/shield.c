/*
 * shield.c: packaging on request behind the shield cache (see shield.h).
 *
 * A request is parsed strictly (an asset id that is not [A-Za-z0-9_-]{1,64} is 400; any other
 * shape 404), keyed by its canonical path and looked up in the store. A miss joins the job in
 * flight for its key or starts one on the blocking pool: the job finds the asset's index (RAM,
 * else the blob kept in the cache, else built from the mezzanines, one build at a time), cuts
 * or writes the object, stores it, and posts the answer to every waiting request's own loop.
 * Errors are answered, never stored: a missing asset, rendition or segment is 404, a mezzanine
 * or asset.json that cannot be used is 502 with a log line naming the file.
 */
#include "shield.h"
#include "shield_path.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
/* XXH3 over whole bodies: the library's runtime dispatch picks AVX2 or AVX-512 where the CPU has
 * them (same results, about twice the speed of the baseline SSE2 build on segments). */
#include <xxh_x86dispatch.h>
#endif

#include "store.h"
#include "tmt/kv.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/pack.h"
#include "tmt/pool.h"
#include "tmt/secret.h"

#define JOB_BUCKETS 1024
#define MAX_KEY 192

enum {
    M_HIT,
    M_MISS,
    M_COALESCED,
    M_ERRORS,
    M_PACKAGED,
    M_PACKAGED_BYTES,
    M_INDEX_BUILDS,
    M_N,
};

static const struct tmt_metric_def shield_metrics[] = {
    {"tmt_shield_requests_total", "result=\"hit\"", TMT_METRIC_COUNTER,
     "packaged-object requests by outcome"},
    {"tmt_shield_requests_total", "result=\"miss\"", TMT_METRIC_COUNTER,
     "packaged-object requests by outcome"},
    {"tmt_shield_coalesced_total", NULL, TMT_METRIC_COUNTER,
     "requests that waited for a packaging already in flight"},
    {"tmt_shield_errors_total", NULL, TMT_METRIC_COUNTER,
     "requests answered with an error by packaging (404, 502)"},
    {"tmt_shield_packaged_total", NULL, TMT_METRIC_COUNTER, "objects packaged"},
    {"tmt_shield_packaged_bytes_total", NULL, TMT_METRIC_COUNTER, "bytes packaged"},
    {"tmt_shield_index_builds_total", NULL, TMT_METRIC_COUNTER,
     "asset indexes built from mezzanines (not found in the cache)"},
};
_Static_assert(TMT_ARRAY_LEN(shield_metrics) == M_N, "one definition per counter");

struct asset {
    struct asset *next;
    char id[TMT_PACK_ID_MAX + 1];
    struct tmt_pack_index *ix;
    int64_t last_modified; /* asset.json's mtime, Unix seconds */
};

struct waiter;

struct job {
    atomic_uint refs;
    struct shield *s;
    struct job *tnext;
    uint64_t hkey;
    char key[MAX_KEY];
    size_t key_len;
    struct shield_path rp;
    struct waiter *waiters; /* under s->jobs_mu until the job is out of the table */
    /* the result, written by the pool thread before the waiters are posted */
    struct edge_obj *obj;
    int status;
    char why[200];
    bool built_index;    /* this job built an asset's index */
    bool from_store;     /* found stored after all: nothing was packaged */
    atomic_bool counted; /* its packaging was counted (by the first waiter, on a worker) */
};

struct waiter {
    struct waiter *next;
    struct job *j;
    struct tmt_http_req *req;
    struct tmt_loop *loop;
};

struct shield {
    unsigned magic;
#define SHIELD_MAGIC 0x5e1d0001u
    char *root;
    struct edge_store *store;
    struct tmt_kv *indexes; /* asset id -> index blob: kept outside the evicting cache */
    struct tmt_pool *pool;
    struct tmt_metrics *metrics;
    size_t m_base;
    /* fill key and server.open: written by reload on the main loop, read by workers */
    pthread_rwlock_t key_lock;
    char fill_key[TMT_SECRET_MAX];
    size_t fill_key_len;
    bool managed_key; /* the fill key came from the control plane: reloads keep it */
    bool open;
    /* assets whose index is in RAM; entries are never removed (assets are immutable) */
    pthread_mutex_t assets_mu;
    struct asset *assets;
    pthread_mutex_t build_mu; /* one index build at a time */
    pthread_mutex_t jobs_mu;
    struct job *jobs[JOB_BUCKETS];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct shield *s, unsigned shard, size_t m, uint64_t v)
{
    if (s->metrics != NULL)
        tmt_metric_add(tmt_metrics_shard(s->metrics, shard), s->m_base + m, v);
}

/* ---- answering ---- */

static void serve(struct tmt_http_req *req, struct edge_obj *o, bool hit)
{
    struct tmt_http_header h[8];
    size_t n = 0;
    for (size_t i = 0; i < o->n_hdrs && n < 5; i++) {
        struct tmt_slice nm = o->hdrs[i].name;
        if (nm.len == 13 && strncasecmp(nm.p, "cache-control", 13) == 0)
            h[n++] = o->hdrs[i];
    }
    h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("X-Cache"),
                                      hit ? TMT_SLICE_LIT("HIT") : TMT_SLICE_LIT("MISS")};
    h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Cache-Status"),
                                      hit ? TMT_SLICE_LIT("tomato-shield; hit")
                                          : TMT_SLICE_LIT("tomato-shield; fwd=miss")};
    req->cache_status = hit ? "HIT" : "MISS";
    struct tmt_http_entity e = {
        .size = o->size,
        .content_type = o->ctype[0] != '\0' ? o->ctype : NULL,
        .val = o->val,
        .extra = h,
        .n_extra = n,
        .p = o->body != NULL ? o->body : "",
        .fd = -1,
        .release = edge_obj_release,
        .release_arg = o,
    };
    tmt_http_serve_entity(req, &e);
}

/* ---- indexes ---- */

static struct asset *asset_find(struct shield *s, const char *id)
{
    pthread_mutex_lock(&s->assets_mu);
    struct asset *a = s->assets;
    while (a != NULL && strcmp(a->id, id) != 0)
        a = a->next;
    pthread_mutex_unlock(&s->assets_mu);
    return a;
}

/*
 * The asset's index (pool thread): in RAM, else the blob in the cache, else built from the
 * mezzanines (and the blob stored). NULL with *status and why filled.
 */
static struct asset *asset_get(struct shield *s, const char *id, int *status, char *why,
                               size_t why_cap, bool *built)
{
    struct asset *a = asset_find(s, id);
    if (a != NULL)
        return a;
    pthread_mutex_lock(&s->build_mu);
    a = asset_find(s, id);
    if (a != NULL) {
        pthread_mutex_unlock(&s->build_mu);
        return a;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/asset.json", s->root, id);
    struct stat st;
    if (stat(path, &st) != 0) {
        pthread_mutex_unlock(&s->build_mu);
        *status = 404;
        snprintf(why, why_cap, "no such asset");
        return NULL;
    }
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_index *ix = NULL;
    struct tmt_slice idkey = {id, strlen(id)};
    struct tmt_kv_val v;
    int got = tmt_kv_get(s->indexes, idkey, &v, &err);
    if (got == 1) {
        ix = tmt_pack_index_load(v.p, v.len, &err);
        tmt_kv_val_release(v.pin);
        if (ix == NULL)
            tmt_log(TMT_LOG_WARN, "shield", "stored index unusable, rebuilding",
                    "asset=%s why=\"%s\"", id, err.msg);
    } else if (got < 0) {
        tmt_log(TMT_LOG_WARN, "shield", "cannot read the stored index, rebuilding",
                "asset=%s why=\"%s\"", id, err.msg);
    }
    if (ix == NULL) {
        uint64_t t0 = mono_ms();
        tmt_err_clear(&err);
        struct tmt_pack_asset *pa = tmt_pack_asset_load(s->root, id, &err);
        if (pa != NULL) {
            ix = tmt_pack_index_build(pa, s->root, &err);
            tmt_pack_asset_free(&pa);
        }
        if (ix == NULL) {
            pthread_mutex_unlock(&s->build_mu);
            tmt_log(TMT_LOG_ERROR, "shield", "cannot index the asset", "asset=%s why=\"%s\"", id,
                    err.msg);
            *status =
                err.code == TMT_ENOTFOUND && strstr(err.msg, "asset.json") != NULL ? 404 : 502;
            snprintf(why, why_cap, "cannot package this asset (see the shield's log)");
            return NULL;
        }
        *built = true;
        tmt_log(TMT_LOG_INFO, "shield", "asset indexed", "asset=%s renditions=%u ms=%" PRIu64, id,
                tmt_pack_index_renditions(ix), mono_ms() - t0);
        struct tmt_pack_buf b;
        tmt_pack_buf_init(&b);
        if (tmt_pack_index_save(ix, &b) == TMT_OK) {
            struct tmt_slice part = {(const char *)b.p, b.len};
            struct tmt_kv_op op = {.key = idkey, .parts = &part, .n_parts = 1};
            tmt_err_clear(&err);
            if (tmt_kv_write(s->indexes, &op, 1, &err) != TMT_OK)
                tmt_log(TMT_LOG_ERROR, "shield", "cannot keep the index (it will be rebuilt)",
                        "asset=%s why=\"%s\"", id, err.msg);
        }
        tmt_pack_buf_fini(&b);
    }
    a = tmt_xcalloc(1, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->ix = ix;
    a->last_modified = (int64_t)st.st_mtime;
    pthread_mutex_lock(&s->assets_mu);
    a->next = s->assets;
    s->assets = a;
    pthread_mutex_unlock(&s->assets_mu);
    pthread_mutex_unlock(&s->build_mu);
    return a;
}

/* ---- packaging (pool thread) ---- */

/* Cuts media segment n of rendition r into b. 0, or the status with why filled. */
static int cut_segment(struct shield *s, const struct asset *a, unsigned r, unsigned n,
                       struct tmt_pack_buf *b, char *why, size_t why_cap)
{
    struct tmt_pack_rendition_info info;
    tmt_pack_index_info(a->ix, r, &info);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", s->root, a->id, info.file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        tmt_log(TMT_LOG_ERROR, "shield", "cannot open a mezzanine", "file=%s", path);
        if (fd >= 0)
            close(fd);
        snprintf(why, why_cap, "mezzanine unavailable (see the shield's log)");
        return 502;
    }
    struct tmt_pack_io io;
    tmt_pack_io_init_fd(&io, fd, (uint64_t)st.st_size, path);
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_pack_media_segment(a->ix, r, n, &io, b, &err);
    close(fd);
    if (rc == TMT_OK)
        return 0;
    if (rc == TMT_ENOTFOUND) {
        snprintf(why, why_cap, "no such segment");
        return 404;
    }
    tmt_log(TMT_LOG_ERROR, "shield", "cannot cut a segment", "file=%s why=\"%s\"", path, err.msg);
    snprintf(why, why_cap, "mezzanine damaged (see the shield's log)");
    return 502;
}

static void job_unref(struct job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
        return;
    edge_obj_unref(j->obj);
    free(j);
}

static void package(struct job *j)
{
    struct shield *s = j->s;
    const struct shield_path *rp = &j->rp;
    /* A job that finished between this request's lookup and its start may have stored it. */
    struct tmt_policy_hint hint;
    tmt_policy_hint_of_key(j->key, j->key_len, &hint);
    enum tmt_tier tier;
    j->obj = edge_store_get(s->store, j->hkey, (struct tmt_slice){j->key, j->key_len}, &hint,
                            mono_ms(), &tier);
    if (j->obj != NULL) {
        j->status = 200;
        j->from_store = true;
        return;
    }
    struct asset *a = asset_get(s, rp->asset, &j->status, j->why, sizeof(j->why), &j->built_index);
    if (a == NULL)
        return;
    int r = -1;
    if (rp->kind != K_MASTER && rp->kind != K_MPD) {
        r = tmt_pack_index_find(a->ix, rp->rend);
        if (r < 0) {
            j->status = 404;
            snprintf(j->why, sizeof(j->why), "no such rendition");
            return;
        }
    }
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    int rc = TMT_OK;
    const char *ctype = "application/vnd.apple.mpegurl";
    /* Playlists may change when an asset is packaged again; while no shield answers, a cache
     * may go on serving one it has for a day (RFC 5861), as it serves the segments. */
    const char *cc = "public, max-age=300, stale-if-error=86400";
    switch (rp->kind) {
    case K_MASTER:
        rc = tmt_pack_hls_master(a->ix, &b);
        break;
    case K_MPD:
        rc = tmt_pack_dash_mpd(a->ix, &b);
        ctype = "application/dash+xml";
        break;
    case K_MEDIA_PL:
        rc = tmt_pack_hls_media(a->ix, (unsigned)r, &b);
        break;
    case K_INIT:
        rc = tmt_pack_init_segment(a->ix, (unsigned)r, &b);
        ctype = "video/mp4";
        cc = "public, max-age=31536000, immutable";
        break;
    case K_SEGMENT:
        j->status = cut_segment(s, a, (unsigned)r, rp->n, &b, j->why, sizeof(j->why));
        if (j->status != 0) {
            tmt_pack_buf_fini(&b);
            return;
        }
        ctype = "video/iso.segment";
        cc = "public, max-age=31536000, immutable";
        break;
    }
    if (rc != TMT_OK) {
        tmt_pack_buf_fini(&b);
        j->status = rc == TMT_ENOTFOUND ? 404 : 500;
        snprintf(j->why, sizeof(j->why), rc == TMT_ENOTFOUND ? "not found" : "packaging failed");
        return;
    }
    char etag[24], lm[TMT_HTTP_DATE_LEN + 1];
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", XXH3_64bits(b.p, b.len));
    tmt_http_date_format(a->last_modified, lm);
    const struct tmt_http_header h[] = {
        {TMT_SLICE_LIT("Content-Type"), {ctype, strlen(ctype)}},
        {TMT_SLICE_LIT("Cache-Control"), {cc, strlen(cc)}},
        {TMT_SLICE_LIT("ETag"), {etag, strlen(etag)}},
        {TMT_SLICE_LIT("Last-Modified"), {lm, strlen(lm)}},
    };
    struct edge_obj *o =
        edge_obj_new(j->hkey, (struct tmt_slice){j->key, j->key_len}, 200, h, 4, b.len);
    if (b.len > 0)
        memcpy(o->body_mem, b.p, b.len);
    o->size = b.len;
    tmt_policy_hint_of_key(j->key, j->key_len, &o->hint);
    int64_t now = wall_ms();
    o->meta = (struct edge_meta){.response_time_ms = now,
                                 .lifetime_ms = INT64_C(365) * 86400 * 1000,
                                 .swr_ms = -1,
                                 .sie_ms = -1};
    tmt_pack_buf_fini(&b);
    (void)edge_store_put(s->store, o, mono_ms());
    j->obj = o;
    j->status = 200;
}

static void waiter_done(void *arg)
{
    struct waiter *w = arg;
    struct job *j = w->j;
    struct shield *s = j->s;
    /* Counters are per worker shard: the job's are added by its first waiter. */
    if (!atomic_exchange(&j->counted, true)) {
        count(s, w->req->worker, M_INDEX_BUILDS, j->built_index ? 1 : 0);
        if (j->obj != NULL && !j->from_store) {
            count(s, w->req->worker, M_PACKAGED, 1);
            count(s, w->req->worker, M_PACKAGED_BYTES, j->obj->size);
        }
    }
    if (j->obj != NULL) {
        edge_obj_ref(j->obj);
        serve(w->req, j->obj, false);
    } else {
        count(s, w->req->worker, M_ERRORS, 1);
        w->req->cache_status = "error";
        tmt_http_respond_error(w->req, j->status, j->why);
    }
    job_unref(j);
    free(w);
}

static void job_work(void *arg)
{
    struct job *j = arg;
    struct shield *s = j->s;
    package(j);
    pthread_mutex_lock(&s->jobs_mu);
    struct job **pp = &s->jobs[j->hkey % JOB_BUCKETS];
    while (*pp != j)
        pp = &(*pp)->tnext;
    *pp = j->tnext;
    struct waiter *ws = j->waiters;
    j->waiters = NULL;
    pthread_mutex_unlock(&s->jobs_mu);
    for (struct waiter *w = ws, *next; w != NULL; w = next) {
        next = w->next;
        tmt_loop_post(w->loop, waiter_done, w);
    }
    job_unref(j);
}

/* ---- requests ---- */

static bool fill_key_ok(struct shield *s, const struct tmt_http_req *req, int *status,
                        const char **why)
{
    pthread_rwlock_rdlock(&s->key_lock);
    bool ok = s->open;
    if (!ok && s->fill_key_len == 0) {
        *status = 403;
        *why = "this shield serves edges with a fill key (fill.key_file) and has none";
    } else if (!ok) {
        ok = tmt_secret_bearer_ok(req->headers, req->n_headers, s->fill_key, s->fill_key_len);
        *status = 401;
        *why = "fill key missing or wrong";
    }
    pthread_rwlock_unlock(&s->key_lock);
    return ok;
}

void shield_handle(struct tmt_http_req *req, void *arg)
{
    struct shield *s = arg;
    TMT_CHECK_OBJ(s, SHIELD_MAGIC);
    if (req->method != TMT_HTTP_GET && req->method != TMT_HTTP_HEAD) {
        tmt_http_respond_error(req, 405, "the shield answers GET and HEAD");
        return;
    }
    int status = 0;
    const char *why = NULL;
    if (!fill_key_ok(s, req, &status, &why)) {
        tmt_log(TMT_LOG_WARN, "shield", "fill refused", "client=%s why=\"%s\"", req->client, why);
        tmt_http_respond_error(req, status, why);
        return;
    }
    struct shield_path rp;
    status = shield_parse_path(req->path, &rp);
    if (status != 0) {
        tmt_http_respond_error(req, status,
                               status == 400 ? "asset ids are 1 to 64 of [A-Za-z0-9_-]"
                                             : "no such path (/v/{asset}/master.m3u8, "
                                               "manifest.mpd, {rendition}/index.m3u8, "
                                               "init.mp4, {n}.m4s)");
        return;
    }
    char key[MAX_KEY];
    size_t kl = shield_canonical_key(&rp, key, sizeof(key));
    uint64_t hkey = XXH3_64bits(key, kl);
    struct tmt_policy_hint hint;
    tmt_policy_hint_of_key(key, kl, &hint);
    enum tmt_tier tier;
    struct edge_obj *o =
        edge_store_get(s->store, hkey, (struct tmt_slice){key, kl}, &hint, mono_ms(), &tier);
    if (o != NULL) {
        count(s, req->worker, M_HIT, 1);
        serve(req, o, true);
        return;
    }
    count(s, req->worker, M_MISS, 1);
    struct waiter *w = tmt_xcalloc(1, sizeof(*w));
    w->req = req;
    w->loop = tmt_http_req_loop(req);
    pthread_mutex_lock(&s->jobs_mu);
    struct job *j = s->jobs[hkey % JOB_BUCKETS];
    while (j != NULL && !(j->hkey == hkey && j->key_len == kl && memcmp(j->key, key, kl) == 0))
        j = j->tnext;
    bool start = j == NULL;
    if (start) {
        j = tmt_xcalloc(1, sizeof(*j));
        atomic_init(&j->refs, 1); /* the work's */
        j->s = s;
        j->hkey = hkey;
        memcpy(j->key, key, kl);
        j->key_len = kl;
        j->rp = rp;
        j->tnext = s->jobs[hkey % JOB_BUCKETS];
        s->jobs[hkey % JOB_BUCKETS] = j;
    } else {
        count(s, req->worker, M_COALESCED, 1);
    }
    atomic_fetch_add(&j->refs, 1); /* the waiter's */
    w->j = j;
    w->next = j->waiters;
    j->waiters = w;
    pthread_mutex_unlock(&s->jobs_mu);
    if (start)
        tmt_pool_submit(s->pool, job_work, NULL, j, NULL);
}

/* ---- lifecycle ---- */

void shield_reload(struct shield *s, const struct shield_conf *c)
{
    char key[TMT_SECRET_MAX];
    size_t kl = 0;
    struct tmt_err err;
    tmt_err_clear(&err);
    bool have = c->fill_key_file[0] != '\0';
    if (have && tmt_secret_load("fill.key_file", c->fill_key_file, key, &kl, &err) != TMT_OK) {
        tmt_log(TMT_LOG_ERROR, "shield", "fill key reload rejected; the old one stays",
                "why=\"%s\"", err.msg);
        have = false;
        kl = SIZE_MAX;
    }
    pthread_rwlock_wrlock(&s->key_lock);
    s->open = c->open;
    if (kl != SIZE_MAX && !s->managed_key) {
        memcpy(s->fill_key, key, kl);
        s->fill_key_len = have ? kl : 0;
    }
    pthread_rwlock_unlock(&s->key_lock);
}

void shield_set_fill_key(struct shield *s, const char *key, size_t len)
{
    if (len == 0 || len > TMT_SECRET_MAX)
        return;
    pthread_rwlock_wrlock(&s->key_lock);
    memcpy(s->fill_key, key, len);
    s->fill_key_len = len;
    s->managed_key = true;
    pthread_rwlock_unlock(&s->key_lock);
}

struct shield *shield_new(const struct shield_conf *c, struct tmt_metrics *metrics,
                          struct tmt_err *err)
{
    struct shield *s = tmt_xcalloc(1, sizeof(*s));
    s->magic = SHIELD_MAGIC;
    pthread_rwlock_init(&s->key_lock, NULL);
    pthread_mutex_init(&s->assets_mu, NULL);
    pthread_mutex_init(&s->build_mu, NULL);
    pthread_mutex_init(&s->jobs_mu, NULL);
    s->root = tmt_xstrdup(c->mezzanine_root);
    s->open = c->open;
    if (c->fill_key_file[0] != '\0' &&
        tmt_secret_load("fill.key_file", c->fill_key_file, s->fill_key, &s->fill_key_len, err) !=
            TMT_OK)
        goto fail;
    char opath[4096];
    snprintf(opath, sizeof(opath), "%s/objects", c->cache_path);
    struct edge_store_opts so = {
        .policy = TMT_POLICY_LRU,
        .budget = {c->ram_size, c->disk_size, 0},
        .max_object = c->max_object_size,
        .path = {NULL, opath, NULL},
        .start_ms = mono_ms(),
    };
    s->store = edge_store_open(&so, err);
    if (s->store == NULL)
        goto fail;
    char ipath[4096];
    snprintf(ipath, sizeof(ipath), "%s/indexes", c->cache_path);
    struct tmt_kv_opts ko = {
        .path = ipath, .zstd_level = 3, .blob_files = true, .min_blob_size = 64 * 1024};
    s->indexes = tmt_kv_open(&ko, err);
    if (s->indexes == NULL)
        goto fail;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads =
        c->pack_threads > 0 ? (unsigned)c->pack_threads : (unsigned)(2 * (ncpu > 0 ? ncpu : 1));
    s->pool = tmt_pool_new(threads, "pack");
    if (s->pool == NULL) {
        tmt_err_set(err, TMT_EIO, "cannot start the packaging threads");
        goto fail;
    }
    tmt_pack_libav_log_init();
    if (metrics != NULL) {
        s->metrics = metrics;
        s->m_base = tmt_metrics_register(metrics, shield_metrics, TMT_ARRAY_LEN(shield_metrics));
    }
    return s;
fail:
    shield_free(&s);
    return NULL;
}

void shield_free(struct shield **sp)
{
    struct shield *s = *sp;
    if (s == NULL)
        return;
    TMT_CHECK_OBJ(s, SHIELD_MAGIC);
    tmt_pool_free(&s->pool);
    edge_store_close(&s->store);
    tmt_kv_close(&s->indexes);
    for (struct asset *a = s->assets, *next; a != NULL; a = next) {
        next = a->next;
        tmt_pack_index_free(&a->ix);
        free(a);
    }
    free(s->root);
    pthread_mutex_destroy(&s->jobs_mu);
    pthread_mutex_destroy(&s->build_mu);
    pthread_mutex_destroy(&s->assets_mu);
    pthread_rwlock_destroy(&s->key_lock);
    s->magic = 0;
    free(s);
    *sp = NULL;
}
