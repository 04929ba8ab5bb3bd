/*
 * reports.c: cache-hit reports. Nodes send numbered report batches (node.h); the control plane
 * adds each into time buckets and answers reports over a window.
 *
 * Store keys (times are unix minutes, hours or days since the epoch, zero-padded so that keys
 * sort by time):
 *   rep:{minute}:{nid}:{boot}:{seq}  "1": a batch taken (the minute of its end): a resend of it
 *                                     is acknowledged and not counted again
 *   ts:m:{minute}:{nid}              {"region","batches","c":{counter sums},"g":{last gauges},
 *   ts:h:{hour}:{nid}                 "lat":[histogram sums]}: one bucket per node and period;
 *   ts:d:{day}:{nid}                  a batch adds into the three buckets of its end time
 *
 * A batch and its three buckets are one atomic write under the store lock, so a batch is counted
 * once in every resolution or not at all. Retention (reports.*_retention) is kept by the sweep,
 * which deletes whole periods from the oldest: keys are in time order, so it reads only what it
 * deletes. Batches older than the minute retention are refused (their dedup record would be gone).
 *
 * Bandwidth: a minute bucket's bytes_served over 60 s is that minute's mean rate; the peak and the
 * 95th percentile are taken over the window's minutes (per group), which needs minute buckets
 * (hour buckets give hourly means instead) and batches at most a minute apart.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cp.h"
#include "tmt/log.h"

#define BATCH_MAX (4u << 20) /* decompressed */
#define LAT_BUCKETS 14
#define FUTURE_MS (10 * 60 * 1000)

static const unsigned lat_upper_ms[LAT_BUCKETS] = {1,   2,   5,    10,   20,   50,    100,
                                                   200, 500, 1000, 2000, 5000, 10000, 0};

enum res { RES_MINUTE, RES_HOUR, RES_DAY };
static const char res_letter[] = {'m', 'h', 'd'};
static const char *const res_names[] = {"minute", "hour", "day"};
static const int64_t res_ms[] = {60000, 3600000, 86400000};

static void bucket_key(char *out, size_t cap, enum res r, int64_t period, const char *nid)
{
    snprintf(out, cap, "ts:%c:%010lld:%s", res_letter[r], (long long)period, nid);
}

/* ---- taking a batch ---- */

#define BUCKET_ASSETS 200 /* per bucket, the busiest kept */

static int by_requests_desc(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_array_get(*(json_t *const *)x, 0));
    json_int_t b = json_integer_value(json_array_get(*(json_t *const *)y, 0));
    return a < b ? 1 : a > b ? -1 : 0;
}

/* Adds top assets into obj ({asset: [requests, bytes]}), keeping the busiest BUCKET_ASSETS. */
static void assets_add(json_t *obj, json_t *top)
{
    for (size_t i = 0; i < json_array_size(top); i++) {
        json_t *x = json_array_get(top, i);
        const char *id = json_string_value(json_object_get(x, "asset"));
        json_t *was = json_object_get(obj, id);
        json_int_t r = json_integer_value(json_object_get(x, "requests")) +
                       json_integer_value(json_array_get(was, 0));
        json_int_t b = json_integer_value(json_object_get(x, "bytes")) +
                       json_integer_value(json_array_get(was, 1));
        json_object_set_new(obj, id, json_pack("[I, I]", r, b));
    }
    size_t n = json_object_size(obj);
    if (n <= BUCKET_ASSETS)
        return;
    json_t **vals = tmt_xcalloc(n, sizeof(*vals));
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(obj, k, v) vals[i++] = v;
    qsort(vals, n, sizeof(*vals), by_requests_desc);
    json_int_t cut = json_integer_value(json_array_get(vals[BUCKET_ASSETS - 1], 0));
    free(vals);
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v)
    {
        if (json_integer_value(json_array_get(v, 0)) < cut)
            json_object_del(obj, k);
    }
}

/* The body, decompressed when it says Content-Encoding: zstd; NULL after answering. */
static char *body_of(struct cp_call *c, size_t *len)
{
    struct tmt_slice b = c->req->body;
    const struct tmt_http_header *ce =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "content-encoding");
    if (ce == NULL || ce->value.len == 0) {
        char *out = tmt_xmalloc(b.len + 1);
        if (b.len > 0)
            memcpy(out, b.p, b.len);
        *len = b.len;
        return out;
    }
    if (!(ce->value.len == 4 && strncasecmp(ce->value.p, "zstd", 4) == 0)) {
        cp_reply_error(c, 415, "unsupported media type",
                       "report batches are JSON, optionally with Content-Encoding: zstd");
        return NULL;
    }
    char *out = NULL;
    if (cp_zstd_inflate(b.p, b.len, BATCH_MAX, &out, len) != 0) {
        cp_reply_error(c, 400, "bad body",
                       "the body is not one complete zstd frame of at most %u bytes", BATCH_MAX);
        return NULL;
    }
    return out;
}

/* Adds batch b into the bucket object (new when NULL); returns the bucket. */
static json_t *bucket_add(json_t *bucket, json_t *b, const char *region)
{
    if (bucket == NULL)
        bucket = json_pack("{s:s, s:i, s:{}, s:{}, s:[]}", "region", region, "batches", 0, "c", "g",
                           "lat");
    json_object_set_new(bucket, "region", json_string(region));
    const char *role = json_string_value(json_object_get(b, "role"));
    json_object_set_new(bucket, "role", json_string(role != NULL ? role : "edge"));
    json_object_set_new(bucket, "batches",
                        json_integer(json_integer_value(json_object_get(bucket, "batches")) + 1));
    json_t *sums = json_object_get(bucket, "c");
    if (!json_is_object(sums)) {
        sums = json_object();
        json_object_set_new(bucket, "c", sums);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(b, "counters"), k, v)
    {
        json_int_t was = json_integer_value(json_object_get(sums, k));
        json_object_set_new(sums, k, json_integer(was + json_integer_value(v)));
    }
    json_t *g = json_object_get(bucket, "g");
    if (!json_is_object(g)) {
        g = json_object();
        json_object_set_new(bucket, "g", g);
    }
    if (json_is_object(json_object_get(b, "gauges")))
        json_object_update(g, json_object_get(b, "gauges"));
    json_t *top = json_object_get(b, "top_assets");
    if (json_array_size(top) > 0) {
        json_t *a = json_object_get(bucket, "a");
        if (!json_is_object(a)) {
            a = json_object();
            json_object_set_new(bucket, "a", a);
        }
        assets_add(a, top);
    }
    json_t *lat = json_object_get(bucket, "lat");
    if (!json_is_array(lat)) {
        lat = json_array();
        json_object_set_new(bucket, "lat", lat);
    }
    json_t *bl = json_object_get(b, "latency_ms");
    for (size_t i = 0; i < json_array_size(bl); i++) {
        if (i >= json_array_size(lat))
            json_array_append_new(lat, json_integer(0));
        json_int_t was = json_integer_value(json_array_get(lat, i));
        json_array_set_new(lat, i, json_integer(was + json_integer_value(json_array_get(bl, i))));
    }
    return bucket;
}

void cp_reports_take(struct cp_call *c)
{
    size_t len = 0;
    char *text = body_of(c, &len);
    if (text == NULL)
        return;
    static const char *const fields[] = {"boot",       "seq",      "from_ms", "to_ms",
                                         "role",       "counters", "gauges",  "latency_ms",
                                         "top_assets", "mrc",      NULL};
    json_t *b = cp_parse_object(c, (struct tmt_slice){text, len}, fields);
    free(text);
    if (b == NULL)
        return;
    const char *why = cp_report_batch_check(b, c->now_ms + FUTURE_MS,
                                            c->now_ms - (int64_t)c->conf->rep_minute_keep_ms);
    const char *boot = json_string_value(json_object_get(b, "boot"));
    json_t *seq = json_object_get(b, "seq");
    int64_t to_ms = json_integer_value(json_object_get(b, "to_ms"));
    if (why != NULL) {
        cp_reply_error(c, 422, "invalid field", "%s", why);
        json_decref(b);
        return;
    }
    const char *nid = json_string_value(json_object_get(c->node, "id"));
    const char *region = json_string_value(json_object_get(c->node, "region")) ?: "";
    char dkey[160];
    snprintf(dkey, sizeof(dkey), "rep:%010lld:%s:%s:%lld", (long long)(to_ms / res_ms[0]), nid,
             boot, (long long)json_integer_value(seq));
    pthread_mutex_lock(&c->cp->mu);
    char seen[4];
    int rc = cp_get_str(c->cp, dkey, seen, sizeof(seen), c);
    if (rc == 1) {
        cp_reply_json(c, 200, json_pack("{s:b}", "duplicate", 1));
    } else if (rc == 0) {
        struct cp_batch wb = {0};
        json_t *buckets[3] = {NULL, NULL, NULL};
        char keys[3][96];
        for (int r = RES_MINUTE; r <= RES_DAY; r++) {
            bucket_key(keys[r], sizeof(keys[r]), (enum res)r, to_ms / res_ms[r], nid);
            if (cp_get_json(c->cp, keys[r], &buckets[r], c) < 0)
                break;
            buckets[r] = bucket_add(buckets[r], b, region);
            cp_batch_put_json(&wb, keys[r], buckets[r]);
        }
        json_t *mrc = json_object_get(b, "mrc");
        if (mrc != NULL) { /* the latest curve of the node */
            char mkey[96];
            snprintf(mkey, sizeof(mkey), "mrc:%s", nid);
            json_t *rec = json_pack("{s:I, s:O}", "at_ms", (json_int_t)to_ms, "curve", mrc);
            cp_batch_put_json(&wb, mkey, rec);
            json_decref(rec);
        }
        if (buckets[RES_DAY] != NULL) {
            cp_batch_put(&wb, dkey, "1", 1);
            if (cp_batch_commit(c->cp, &wb, c) == 0)
                cp_reply_json(c, 200, json_pack("{s:b}", "duplicate", 0));
        } else {
            cp_batch_free(&wb);
        }
        for (int r = 0; r < 3; r++)
            json_decref(buckets[r]);
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(b);
}

/* ---- retention ---- */

struct sweep_ctx {
    const char *prefix;
    int64_t before; /* periods below this go */
    char **keys;
    size_t n;
};

static bool sweep_one(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)val;
    struct sweep_ctx *s = arg;
    if (rest.len < 10 || s->n >= 10000)
        return false;
    char num[11];
    memcpy(num, rest.p, 10);
    num[10] = '\0';
    if (strtoll(num, NULL, 10) >= s->before)
        return false; /* in time order: nothing older follows */
    size_t pl = strlen(s->prefix);
    char *k = tmt_xmalloc(pl + rest.len + 1);
    memcpy(k, s->prefix, pl);
    memcpy(k + pl, rest.p, rest.len);
    k[pl + rest.len] = '\0';
    s->keys = tmt_xrealloc(s->keys, (s->n + 1) * sizeof(*s->keys));
    s->keys[s->n++] = k;
    return true;
}

/* Deletes the keys prefix{period}... with period < before, oldest first, at most 10000. */
static void sweep_prefix(struct cp *cp, const char *prefix, int64_t before)
{
    struct sweep_ctx s = {.prefix = prefix, .before = before};
    if (cp_scan(cp, prefix, sweep_one, &s, NULL) == 0 && s.n > 0) {
        struct cp_batch b = {0};
        for (size_t i = 0; i < s.n; i++)
            cp_batch_del(&b, s.keys[i]);
        if (cp_batch_commit(cp, &b, NULL) == 0)
            tmt_log(TMT_LOG_DEBUG, "reports", "old report data removed", "prefix=%s keys=%zu",
                    prefix, s.n);
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.keys[i]);
    free(s.keys);
}

void cp_reports_sweep(struct cp *cp, int64_t now_ms)
{
    const struct cp_conf *conf = cp->conf;
    uint64_t keep[3] = {conf->rep_minute_keep_ms, conf->rep_hour_keep_ms, conf->rep_day_keep_ms};
    for (int r = RES_MINUTE; r <= RES_DAY; r++) {
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "ts:%c:", res_letter[r]);
        sweep_prefix(cp, prefix, (now_ms - (int64_t)keep[r]) / res_ms[r]);
    }
    sweep_prefix(cp, "rep:", (now_ms - (int64_t)keep[RES_MINUTE]) / res_ms[RES_MINUTE]);
}

/* ---- answering ---- */

/* A time: unix seconds, or RFC 3339 UTC ("2026-11-23T04:00:00Z"). -1 when it is neither. */
static int64_t parse_time(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s != '\0' && *end == '\0' && v >= 0)
        return (int64_t)v;
    struct tm tm = {0};
    const char *e = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (e == NULL || *e != '\0')
        return -1;
    return (int64_t)timegm(&tm);
}

enum group { G_TOTAL, G_NODE, G_REGION, G_MINUTE, G_HOUR, G_DAY, G_ASSET };
static const char *const group_names[] = {"total", "node", "region", "minute",
                                          "hour",  "day",  "asset"};

struct row {
    char key[80];
    json_t *c;      /* counter sums */
    json_t *g;      /* gauges: sum over nodes of each node's last value */
    json_t *gnodes; /* node -> its last gauges, to sum once per node */
    uint64_t lat[LAT_BUCKETS];
    json_t *nodes; /* set of node ids */
    /* bytes served per period of the window (for bandwidth), indexed from the window start */
    uint64_t *per;
    size_t n_per;
};

struct query {
    struct cp_call *c;
    enum res res;
    enum group group;
    int64_t p0, p1;                   /* periods of the window, inclusive */
    const char *node, *region, *role; /* filters; NULL: all */
    struct row *rows;
    size_t n_rows;
    int64_t period; /* being scanned */
};

static struct row *row_for(struct query *q, const char *key)
{
    for (size_t i = 0; i < q->n_rows; i++) {
        if (strcmp(q->rows[i].key, key) == 0)
            return &q->rows[i];
    }
    q->rows = tmt_xrealloc(q->rows, (q->n_rows + 1) * sizeof(*q->rows));
    struct row *r = &q->rows[q->n_rows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->c = json_object();
    r->g = json_object();
    r->gnodes = json_object();
    r->nodes = json_object();
    r->n_per = (size_t)(q->p1 - q->p0 + 1);
    r->per = tmt_xcalloc(r->n_per, sizeof(*r->per));
    return r;
}

static void time_key(char *out, size_t cap, int64_t unix_s, enum group g)
{
    int64_t step = g == G_MINUTE ? 60 : g == G_HOUR ? 3600 : 86400;
    time_t t = (time_t)(unix_s / step * step);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_int_t cnt(json_t *c, const char *k);

static bool add_bucket(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct query *q = arg;
    char nid[CP_ID_MAX + 1];
    snprintf(nid, sizeof(nid), "%.*s", (int)TMT_MIN(rest.len, CP_ID_MAX), rest.p);
    if (q->node != NULL && strcmp(q->node, nid) != 0)
        return true;
    json_t *b = json_loadb(val.p, val.len, 0, NULL);
    if (b == NULL)
        return true;
    const char *region = json_string_value(json_object_get(b, "region")) ?: "";
    const char *role = json_string_value(json_object_get(b, "role")) ?: "edge";
    if ((q->region != NULL && strcmp(q->region, region) != 0) ||
        (q->role != NULL && strcmp(q->role, role) != 0)) {
        json_decref(b);
        return true;
    }
    if (q->group == G_ASSET) {
        /* Per asset: the busiest assets each batch named, summed. */
        const char *id;
        json_t *v;
        json_object_foreach(json_object_get(b, "a"), id, v)
        {
            struct row *r = row_for(q, id);
            json_object_set_new(r->nodes, nid, json_true());
            json_object_set_new(
                r->c, "requests",
                json_integer(cnt(r->c, "requests") + json_integer_value(json_array_get(v, 0))));
            json_object_set_new(
                r->c, "bytes_served",
                json_integer(cnt(r->c, "bytes_served") + json_integer_value(json_array_get(v, 1))));
        }
        json_decref(b);
        return true;
    }
    char key[80];
    switch (q->group) {
    case G_TOTAL:
        snprintf(key, sizeof(key), "total");
        break;
    case G_NODE:
        snprintf(key, sizeof(key), "%s", nid);
        break;
    case G_REGION:
        snprintf(key, sizeof(key), "%s", region);
        break;
    default:
        time_key(key, sizeof(key), q->period * res_ms[q->res] / 1000, q->group);
        break;
    }
    struct row *r = row_for(q, key);
    json_object_set_new(r->nodes, nid, json_true());
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(b, "c"), k, v)
    {
        json_int_t was = json_integer_value(json_object_get(r->c, k));
        json_object_set_new(r->c, k, json_integer(was + json_integer_value(v)));
    }
    /* Gauges: the node's latest bucket wins (buckets are scanned in time order). */
    json_object_set(r->gnodes, nid, json_object_get(b, "g"));
    json_t *lat = json_object_get(b, "lat");
    for (size_t i = 0; i < LAT_BUCKETS && i < json_array_size(lat); i++)
        r->lat[i] += (uint64_t)json_integer_value(json_array_get(lat, i));
    r->per[q->period - q->p0] +=
        (uint64_t)json_integer_value(json_object_get(json_object_get(b, "c"), "bytes_served"));
    json_decref(b);
    return true;
}

static json_int_t cnt(json_t *c, const char *k)
{
    return json_integer_value(json_object_get(c, k));
}

/* The upper bound (ms) of the bucket where the q-quantile falls; -1 without data, 0 for "more
 * than the last bound". */
static json_t *quantile(const uint64_t *lat, double q)
{
    uint64_t total = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += lat[i];
    if (total == 0)
        return json_null();
    uint64_t want = (uint64_t)ceil(q * (double)total), run = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        run += lat[i];
        if (run >= want)
            return lat_upper_ms[i] != 0 ? json_integer(lat_upper_ms[i]) : json_string("inf");
    }
    return json_string("inf");
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double ratio(json_int_t a, json_int_t b)
{
    return b > 0 ? (double)a / (double)b : 0.0;
}

static json_t *row_json(const struct query *q, struct row *r)
{
    json_t *c = r->c;
    json_int_t hot = cnt(c, "hit_hot"), warm = cnt(c, "hit_warm"), cold = cnt(c, "hit_cold");
    /* Edges report hits per tier; shields one "hit" (their cache of packaged objects). */
    json_int_t hits = hot + warm + cold + cnt(c, "stale") + cnt(c, "revalidated") + cnt(c, "hit");
    json_int_t lookups = hits + cnt(c, "miss") + cnt(c, "pass");
    json_int_t bh = cnt(c, "hit_bytes_hot"), bw = cnt(c, "hit_bytes_warm"),
               bc = cnt(c, "hit_bytes_cold");
    json_int_t served = cnt(c, "bytes_served"), up = cnt(c, "upstream_bytes");
    /* Gauges: each node's last value, summed over the row's nodes. */
    const char *nid;
    json_t *gv;
    json_object_foreach(r->gnodes, nid, gv)
    {
        const char *k;
        json_t *v;
        json_object_foreach(gv, k, v)
        {
            json_int_t was = json_integer_value(json_object_get(r->g, k));
            json_object_set_new(r->g, k, json_integer(was + json_integer_value(v)));
        }
    }
    /* Bandwidth over the window's periods (bits per second). */
    double secs = (double)res_ms[q->res] / 1000.0;
    uint64_t *sorted = tmt_xcalloc(r->n_per, sizeof(*sorted));
    memcpy(sorted, r->per, r->n_per * sizeof(*sorted));
    qsort(sorted, r->n_per, sizeof(*sorted), cmp_u64);
    double peak = r->n_per > 0 ? (double)sorted[r->n_per - 1] * 8 / secs : 0;
    size_t i95 = r->n_per > 0 ? (size_t)ceil(0.95 * (double)r->n_per) - 1 : 0;
    double p95 = r->n_per > 0 ? (double)sorted[i95] * 8 / secs : 0;
    free(sorted);
    json_t *nodes = json_array();
    json_object_foreach(r->nodes, nid, gv) json_array_append_new(nodes, json_string(nid));
    json_t *v = json_pack(
        "{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I},"
        " s:I, s:I, s:I, s:{s:I, s:I}}",
        "key", r->key, "nodes", nodes, "requests", cnt(c, "requests"), "lookups", lookups, "hits",
        hits, "misses", cnt(c, "miss"), "passes", cnt(c, "pass"), "hit_ratio", ratio(hits, lookups),
        "byte_hit_ratio", ratio(bh + bw + bc, served), "origin_offload",
        served > 0 ? fmax(0.0, 1.0 - ratio(up, served)) : 0.0, "hits_by_tier", "hot", hot, "warm",
        warm, "cold", cold, "hit_bytes_by_tier", "hot", bh, "warm", bw, "cold", bc, "bytes_served",
        served, "upstream_bytes", up, "upstream_requests", cnt(c, "upstream_requests"), "errors",
        "4xx", cnt(c, "responses_4xx"), "5xx", cnt(c, "responses_5xx"));
    json_object_set_new(v, "evictions", json_integer(cnt(c, "evictions")));
    json_object_set_new(v, "latency_ms",
                        json_pack("{s:o, s:o, s:o}", "p50", quantile(r->lat, 0.50), "p95",
                                  quantile(r->lat, 0.95), "p99", quantile(r->lat, 0.99)));
    json_object_set_new(v, "bandwidth_bps", json_pack("{s:f, s:f}", "peak", peak, "p95", p95));
    json_object_set(v, "stored", r->g);
    return v;
}

static void row_free(struct row *r)
{
    json_decref(r->c);
    json_decref(r->g);
    json_decref(r->gnodes);
    json_decref(r->nodes);
    free(r->per);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->key, ((const struct row *)b)->key);
}

static int by_requests(const void *a, const void *b)
{
    json_int_t x = cnt(((const struct row *)a)->c, "requests");
    json_int_t y = cnt(((const struct row *)b)->c, "requests");
    if (x != y)
        return x < y ? 1 : -1;
    return strcmp(((const struct row *)a)->key, ((const struct row *)b)->key);
}

static void csv_put(char **buf, size_t *len, size_t *cap, const char *s);

/*
 * group_by=asset: the busiest assets (at most 100), by requests. Counts come from each batch's
 * top assets (Space-Saving on the edges), so an asset outside a batch's top is not counted there.
 */
static void reply_assets(struct cp_call *c, struct query *q, bool csv, int64_t from, int64_t to)
{
    json_int_t all_r = 0, all_b = 0;
    for (size_t i = 0; i < q->n_rows; i++) {
        all_r += cnt(q->rows[i].c, "requests");
        all_b += cnt(q->rows[i].c, "bytes_served");
    }
    size_t n = TMT_MIN(q->n_rows, (size_t)100);
    if (csv) {
        size_t len = 0, cap = 4096;
        char *buf = tmt_xmalloc(cap);
        csv_put(&buf, &len, &cap, "asset,requests,bytes_served,nodes\n");
        for (size_t i = 0; i < n; i++) {
            char line[200];
            snprintf(line, sizeof(line), "%s,%lld,%lld,%zu\n", q->rows[i].key,
                     (long long)cnt(q->rows[i].c, "requests"),
                     (long long)cnt(q->rows[i].c, "bytes_served"),
                     json_object_size(q->rows[i].nodes));
            csv_put(&buf, &len, &cap, line);
        }
        cp_reply_text(c, 200, buf, len, "text/csv");
        return;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        struct row *r = &q->rows[i];
        json_int_t rq = cnt(r->c, "requests"), by = cnt(r->c, "bytes_served");
        json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:f, s:f, s:i}", "key", r->key,
                                              "requests", rq, "bytes_served", by, "request_share",
                                              ratio(rq, all_r), "byte_share", ratio(by, all_b),
                                              "nodes", (int)json_object_size(r->nodes)));
    }
    cp_reply_json(c, 200,
                  json_pack("{s:o, s:o, s:s, s:s, s:o}", "from", cp_time_json(from), "to",
                            cp_time_json(to), "resolution", res_names[q->res], "group_by", "asset",
                            "rows", rows));
}

static void csv_num(char **buf, size_t *len, size_t *cap, json_t *v)
{
    char t[64];
    if (json_is_integer(v))
        snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(t, sizeof(t), "%.6g", json_real_value(v));
    else if (json_is_string(v))
        snprintf(t, sizeof(t), "%s", json_string_value(v));
    else
        t[0] = '\0';
    size_t n = strlen(t);
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *buf = tmt_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, t, n);
    *len += n;
}

static void csv_put(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *buf = tmt_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
}

/* The columns of format=csv: JSON paths into a row. */
static const char *const csv_cols[][2] = {
    {"key", NULL},
    {"requests", NULL},
    {"lookups", NULL},
    {"hits", NULL},
    {"misses", NULL},
    {"passes", NULL},
    {"hit_ratio", NULL},
    {"byte_hit_ratio", NULL},
    {"origin_offload", NULL},
    {"hits_by_tier", "hot"},
    {"hits_by_tier", "warm"},
    {"hits_by_tier", "cold"},
    {"hit_bytes_by_tier", "hot"},
    {"hit_bytes_by_tier", "warm"},
    {"hit_bytes_by_tier", "cold"},
    {"bytes_served", NULL},
    {"upstream_bytes", NULL},
    {"upstream_requests", NULL},
    {"errors", "4xx"},
    {"errors", "5xx"},
    {"latency_ms", "p50"},
    {"latency_ms", "p95"},
    {"latency_ms", "p99"},
    {"bandwidth_bps", "peak"},
    {"bandwidth_bps", "p95"},
};

static void reply_csv(struct cp_call *c, json_t *rows)
{
    size_t len = 0, cap = 4096;
    char *buf = tmt_xmalloc(cap);
    for (size_t i = 0; i < TMT_ARRAY_LEN(csv_cols); i++) {
        char h[64];
        if (csv_cols[i][1] != NULL)
            snprintf(h, sizeof(h), "%s_%s", csv_cols[i][0], csv_cols[i][1]);
        else
            snprintf(h, sizeof(h), "%s", csv_cols[i][0]);
        csv_put(&buf, &len, &cap, i > 0 ? "," : "");
        csv_put(&buf, &len, &cap, h);
    }
    csv_put(&buf, &len, &cap, "\n");
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        for (size_t k = 0; k < TMT_ARRAY_LEN(csv_cols); k++) {
            json_t *v = json_object_get(row, csv_cols[k][0]);
            if (csv_cols[k][1] != NULL)
                v = json_object_get(v, csv_cols[k][1]);
            csv_put(&buf, &len, &cap, k > 0 ? "," : "");
            csv_num(&buf, &len, &cap, v);
        }
        csv_put(&buf, &len, &cap, "\n");
    }
    cp_reply_text(c, 200, buf, len, "text/csv");
}

void cp_reports_cache(struct cp_call *c)
{
    char from_s[40], to_s[40], group[16], res[16], fmt[8], node[CP_ID_MAX + 1], region[80];
    long nf = cp_query(c, "from", from_s, sizeof(from_s));
    long nt = nf == -2 ? -2 : cp_query(c, "to", to_s, sizeof(to_s));
    long ng = nt == -2 ? -2 : cp_query(c, "group_by", group, sizeof(group));
    long nr = ng == -2 ? -2 : cp_query(c, "resolution", res, sizeof(res));
    long nfo = nr == -2 ? -2 : cp_query(c, "format", fmt, sizeof(fmt));
    long nn = nfo == -2 ? -2 : cp_query(c, "node", node, sizeof(node));
    long nre = nn == -2 ? -2 : cp_query(c, "region", region, sizeof(region));
    char role[16];
    long nro = nre == -2 ? -2 : cp_query(c, "role", role, sizeof(role));
    if (nro == -2)
        return;
    if (nro > 0 && strcmp(role, "edge") != 0 && strcmp(role, "shield") != 0 &&
        strcmp(role, "all") != 0) {
        cp_reply_error(c, 400, "bad query", "role is edge (the default), shield or all");
        return;
    }
    int64_t to = nt > 0 ? parse_time(to_s) : c->now;
    int64_t from = nf > 0 ? parse_time(from_s) : to - 3600;
    if (from < 0 || to < 0 || from > to) {
        cp_reply_error(c, 400, "bad query",
                       "from and to are unix seconds or RFC 3339 UTC times, from <= to");
        return;
    }
    struct query q = {.c = c, .group = G_TOTAL};
    if (ng > 0) {
        bool known = false;
        for (size_t i = 0; i < TMT_ARRAY_LEN(group_names); i++) {
            if (strcmp(group, group_names[i]) == 0) {
                q.group = (enum group)i;
                known = true;
            }
        }
        if (!known) {
            cp_reply_error(c, 400, "bad query",
                           "group_by is total, node, region, minute, hour, day or asset");
            return;
        }
    }
    /* The finest resolution the retention still holds for the whole window. */
    int64_t age_s = c->now - from;
    q.res = age_s * 1000 <= (int64_t)c->conf->rep_minute_keep_ms ? RES_MINUTE
            : age_s * 1000 <= (int64_t)c->conf->rep_hour_keep_ms ? RES_HOUR
                                                                 : RES_DAY;
    if (nr > 0) {
        bool known = false;
        for (int i = RES_MINUTE; i <= RES_DAY; i++) {
            if (strcmp(res, res_names[i]) == 0) {
                q.res = (enum res)i;
                known = true;
            }
        }
        if (!known) {
            cp_reply_error(c, 400, "bad query", "resolution is minute, hour or day");
            return;
        }
    }
    if ((q.group == G_MINUTE && q.res != RES_MINUTE) || (q.group == G_HOUR && q.res == RES_DAY)) {
        cp_reply_error(c, 400, "bad query",
                       "group_by=%s needs %s buckets, which the retention no longer holds for "
                       "this window",
                       group, q.group == G_MINUTE ? "minute" : "hour");
        return;
    }
    bool csv = nfo > 0 && strcmp(fmt, "csv") == 0;
    if (nfo > 0 && !csv && strcmp(fmt, "json") != 0) {
        cp_reply_error(c, 400, "bad query", "format is json or csv");
        return;
    }
    q.node = nn > 0 ? node : NULL;
    q.region = nre > 0 ? region : NULL;
    /* Edges by default: a shield's requests are the edges' misses, counted again. */
    q.role = nro <= 0 ? "edge" : strcmp(role, "all") == 0 ? NULL : role;
    q.p0 = from * 1000 / res_ms[q.res];
    q.p1 = to * 1000 / res_ms[q.res];
    if (q.p1 - q.p0 > 20000) {
        cp_reply_error(c, 400, "bad query",
                       "the window spans more than 20000 %ss; ask for a coarser resolution",
                       res_names[q.res]);
        return;
    }
    for (q.period = q.p0; q.period <= q.p1; q.period++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "ts:%c:%010lld:", res_letter[q.res], (long long)q.period);
        if (cp_scan(c->cp, prefix, add_bucket, &q, c) != 0)
            goto out;
    }
    if (q.n_rows > 1)
        qsort(q.rows, q.n_rows, sizeof(*q.rows), q.group == G_ASSET ? by_requests : by_key);
    if (q.group == G_ASSET) {
        reply_assets(c, &q, csv, from, to);
        goto out;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < q.n_rows; i++)
        json_array_append_new(rows, row_json(&q, &q.rows[i]));
    if (csv) {
        reply_csv(c, rows);
        json_decref(rows);
    } else {
        json_t *v = json_pack("{s:o, s:o, s:s, s:s, s:o}", "from", cp_time_json(from), "to",
                              cp_time_json(to), "resolution", res_names[q.res], "group_by",
                              group_names[q.group], "rows", rows);
        cp_reply_json(c, 200, v);
    }
out:
    for (size_t i = 0; i < q.n_rows; i++)
        row_free(&q.rows[i]);
    free(q.rows);
}

/* ---- miss-ratio curves ---- */

/*
 * The smallest size reaching byte hit ratio `target` on points [size, miss, byte miss], the curve
 * made non-increasing first and interpolated in log(size); NAN when even the largest falls short.
 */
static double size_for(json_t *pts, double target)
{
    double want = 1 - target, best = 1, prev_s = 0, prev_m = 1;
    for (size_t i = 0; i < json_array_size(pts); i++) {
        json_t *p = json_array_get(pts, i);
        double sz = (double)json_integer_value(json_array_get(p, 0));
        double m = fmin(best, json_number_value(json_array_get(p, 2)));
        best = m;
        if (m <= want) {
            if (i == 0 || prev_m == m)
                return sz;
            double f = (prev_m - want) / (prev_m - m);
            return exp(log(prev_s) + f * (log(sz) - log(prev_s)));
        }
        prev_s = sz;
        prev_m = m;
    }
    return NAN;
}

struct mrc_ctx {
    struct cp_call *c;
    const char *node;
    double targets[8];
    size_t n_targets;
    json_t *out;
};

static bool add_curve(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct mrc_ctx *m = arg;
    char nid[CP_ID_MAX + 1];
    snprintf(nid, sizeof(nid), "%.*s", (int)TMT_MIN(rest.len, CP_ID_MAX), rest.p);
    if (m->node != NULL && strcmp(m->node, nid) != 0)
        return true;
    json_t *rec = json_loadb(val.p, val.len, 0, NULL);
    json_t *curve = json_object_get(rec, "curve"), *pts = json_object_get(curve, "points");
    if (!json_is_array(pts)) {
        json_decref(rec);
        return true;
    }
    char nkey[96];
    snprintf(nkey, sizeof(nkey), "node:%s", nid);
    json_t *node = NULL;
    if (cp_get_json(m->c->cp, nkey, &node, NULL) != 1) { /* a node removed since */
        json_decref(rec);
        return true;
    }
    json_t *points = json_array(), *needed = json_array();
    for (size_t i = 0; i < json_array_size(pts); i++) {
        json_t *p = json_array_get(pts, i);
        json_array_append_new(points, json_pack("{s:O, s:O, s:O}", "size", json_array_get(p, 0),
                                                "miss_ratio", json_array_get(p, 1),
                                                "byte_miss_ratio", json_array_get(p, 2)));
    }
    for (size_t i = 0; i < m->n_targets; i++) {
        double sz = size_for(pts, m->targets[i]);
        json_array_append_new(needed,
                              json_pack("{s:f, s:o}", "byte_hit_ratio", m->targets[i], "size",
                                        isnan(sz) ? json_null() : json_integer((json_int_t)sz)));
    }
    json_array_append_new(
        m->out, json_pack("{s:s, s:s, s:s, s:o, s:O, s:O, s:O, s:o, s:o}", "node", nid, "name",
                          json_string_value(json_object_get(node, "name")) ?: "", "region",
                          json_string_value(json_object_get(node, "region")) ?: "", "at",
                          cp_time_json(json_integer_value(json_object_get(rec, "at_ms")) / 1000),
                          "budget", json_object_get(curve, "budget"), "sample_rate",
                          json_object_get(curve, "rate"), "sampled",
                          json_object_get(curve, "sampled"), "points", points, "needed", needed));
    json_decref(node);
    json_decref(rec);
    return true;
}

void cp_reports_mrc(struct cp_call *c)
{
    char node[CP_ID_MAX + 1], targets[128];
    long nn = cp_query(c, "node", node, sizeof(node));
    long nt = nn == -2 ? -2 : cp_query(c, "targets", targets, sizeof(targets));
    if (nt == -2)
        return;
    struct mrc_ctx m = {.c = c, .node = nn > 0 ? node : NULL, .out = json_array()};
    const char *t = nt > 0 ? targets : "0.8,0.9,0.95";
    while (*t != '\0') {
        char *end;
        double v = strtod(t, &end);
        if (end == t || !(v >= 0 && v <= 1) || m.n_targets == TMT_ARRAY_LEN(m.targets) ||
            (*end != ',' && *end != '\0')) {
            json_decref(m.out);
            cp_reply_error(c, 400, "bad query",
                           "targets is up to 8 byte hit ratios in [0, 1] separated by commas");
            return;
        }
        m.targets[m.n_targets++] = v;
        t = *end == ',' ? end + 1 : end;
    }
    if (cp_scan(c->cp, "mrc:", add_curve, &m, c) != 0) {
        json_decref(m.out);
        return;
    }
    cp_reply_json(c, 200, json_pack("{s:o}", "curves", m.out));
}

/* ---- the page ---- */

extern const unsigned char cp_reports_page_html[];
extern const size_t cp_reports_page_html_len;

void cp_reports_page(struct cp_call *c)
{
    /* The page holds no data: it logs in and reads /v1/reports/cache like any client. */
    char *b = tmt_xmalloc(cp_reports_page_html_len);
    memcpy(b, cp_reports_page_html, cp_reports_page_html_len);
    cp_add_header(c, "Content-Security-Policy",
                  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
                  "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'");
    cp_add_header(c, "X-Content-Type-Options", "nosniff");
    cp_add_header(c, "Cache-Control", "no-cache");
    cp_reply_text(c, 200, b, cp_reports_page_html_len, "text/html; charset=utf-8");
}
