/*
 * store.c: the edge's object store (see store.h).
 */
#include "store.h"

#include <endian.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#if defined(__x86_64__)
/* XXH3 over whole bodies: the library's runtime dispatch picks AVX2 or AVX-512 where the CPU has
 * them (same results, about twice the speed of the baseline SSE2 build on segments). */
#include <xxh_x86dispatch.h>
#endif

#include "tmt/kv.h"
#include "tmt/log.h"

/* ---- objects ---- */

static size_t fields_bytes(const struct tmt_http_header *h, size_t n)
{
    size_t b = 0;
    for (size_t i = 0; i < n; i++)
        b += h[i].name.len + h[i].value.len;
    return b;
}

/* Fills the fields derived from the header fields (see struct edge_obj). */
static void obj_derive(struct edge_obj *o)
{
    o->val = (struct tmt_http_validators){.last_modified = -1};
    o->ctype[0] = '\0';
    o->vary = false;
    for (size_t i = 0; i < o->n_hdrs; i++) {
        struct tmt_slice n = o->hdrs[i].name, v = o->hdrs[i].value;
        if (n.len == 12 && strncasecmp(n.p, "content-type", 12) == 0 && v.len < sizeof(o->ctype) &&
            memchr(v.p, '\0', v.len) == NULL) {
            memcpy(o->ctype, v.p, v.len);
            o->ctype[v.len] = '\0';
        } else if (n.len == 4 && strncasecmp(n.p, "etag", 4) == 0) {
            o->val.etag = v;
        } else if (n.len == 4 && strncasecmp(n.p, "vary", 4) == 0) {
            o->vary = true;
        } else if (n.len == 13 && strncasecmp(n.p, "last-modified", 13) == 0) {
            int64_t t;
            if (tmt_http_date_parse(v, &t) == TMT_OK)
                o->val.last_modified = t;
        }
    }
}

struct edge_obj *edge_obj_new(uint64_t hkey, struct tmt_slice key, int status,
                              const struct tmt_http_header *h, size_t n, uint64_t body_cap)
{
    struct edge_obj *o = tmt_xcalloc(1, sizeof(*o));
    atomic_init(&o->refs, 1);
    o->hkey = hkey;
    o->status = status;
    o->hdrs = tmt_xmalloc((n > 0 ? n : 1) * sizeof(*o->hdrs));
    o->mem = tmt_xmalloc(key.len + fields_bytes(h, n) + 1);
    char *p = o->mem;
    memcpy(p, key.p, key.len);
    o->key = (struct tmt_slice){p, key.len};
    p += key.len;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, h[i].name.p, h[i].name.len);
        o->hdrs[i].name = (struct tmt_slice){p, h[i].name.len};
        p += h[i].name.len;
        memcpy(p, h[i].value.p, h[i].value.len);
        o->hdrs[i].value = (struct tmt_slice){p, h[i].value.len};
        p += h[i].value.len;
    }
    o->n_hdrs = n;
    obj_derive(o);
    if (body_cap > 0)
        o->body_mem = tmt_xmalloc(body_cap);
    o->body = o->body_mem;
    return o;
}

struct edge_obj *edge_obj_refresh(struct edge_obj *src, const struct tmt_http_header *h, size_t n)
{
    struct edge_obj *o = edge_obj_new(src->hkey, src->key, src->status, h, n, 0);
    edge_obj_ref(src);
    o->body_owner = src;
    o->body = src->body;
    o->size = src->size;
    o->hint = src->hint;
    o->meta = src->meta;
    return o;
}

void edge_obj_ref(struct edge_obj *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void edge_obj_unref(struct edge_obj *o)
{
    if (o == NULL || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
        return;
    tmt_kv_val_release(o->pin);
    if (o->body_owner != NULL)
        edge_obj_unref(o->body_owner);
    free(o->hdrs);
    free(o->mem);
    free(o->body_mem);
    free(o);
}

void edge_obj_release(void *o)
{
    edge_obj_unref(o);
}

/* ---- records ---- */

#define REC_MAGIC 0x314f4d54u /* "TMO1" */

/* Fixed part of a record, little-endian on disk (this code runs on little-endian hosts only). */
struct rec_head {
    uint32_t magic;
    uint32_t status;
    uint64_t checksum; /* XXH3-64 of every byte after this field */
    uint64_t body_len;
    uint32_t key_len;
    uint32_t n_fields;
    uint32_t fields_len;
    uint32_t flags;
    int64_t response_time_ms, initial_age_ms, lifetime_ms, swr_ms, sie_ms;
    uint64_t group;
    uint32_t position;
    uint32_t pad;
};
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "records are little-endian");

#define REC_SUM_OFF (offsetof(struct rec_head, checksum) + sizeof(uint64_t))

/* Index entry 'm' + hash: what restoring needs without reading the record. */
struct rec_index {
    uint64_t size;
    uint64_t group;
    uint32_t position;
    uint32_t pad;
};

static void rec_key(char out[9], char kind, uint64_t hkey)
{
    out[0] = kind;
    uint64_t be = htobe64(hkey);
    memcpy(out + 1, &be, 8);
}

/*
 * Serialises o's head (record header, key, fields as u16 name length, u16 value length, name,
 * value) into a new buffer; the body is the second part. Fills in the checksum.
 */
static char *rec_build(const struct edge_obj *o, size_t *head_len)
{
    size_t flen = 0;
    for (size_t i = 0; i < o->n_hdrs; i++)
        flen += 4 + o->hdrs[i].name.len + o->hdrs[i].value.len;
    size_t len = sizeof(struct rec_head) + o->key.len + flen;
    char *b = tmt_xmalloc(len);
    struct rec_head rh = {
        .magic = REC_MAGIC,
        .status = (uint32_t)o->status,
        .body_len = o->size,
        .key_len = (uint32_t)o->key.len,
        .n_fields = (uint32_t)o->n_hdrs,
        .fields_len = (uint32_t)flen,
        .flags = o->meta.flags,
        .response_time_ms = o->meta.response_time_ms,
        .initial_age_ms = o->meta.initial_age_ms,
        .lifetime_ms = o->meta.lifetime_ms,
        .swr_ms = o->meta.swr_ms,
        .sie_ms = o->meta.sie_ms,
        .group = o->hint.group,
        .position = o->hint.position,
    };
    char *p = b + sizeof(rh);
    memcpy(p, o->key.p, o->key.len);
    p += o->key.len;
    for (size_t i = 0; i < o->n_hdrs; i++) {
        uint16_t nl = (uint16_t)o->hdrs[i].name.len, vl = (uint16_t)o->hdrs[i].value.len;
        memcpy(p, &nl, 2);
        memcpy(p + 2, &vl, 2);
        memcpy(p + 4, o->hdrs[i].name.p, nl);
        memcpy(p + 4 + nl, o->hdrs[i].value.p, vl);
        p += 4 + nl + vl;
    }
    memcpy(b, &rh, sizeof(rh));
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, b + REC_SUM_OFF, len - REC_SUM_OFF);
    XXH3_64bits_update(&st, o->body, o->size);
    rh.checksum = XXH3_64bits_digest(&st);
    memcpy(b, &rh, sizeof(rh));
    *head_len = len;
    return b;
}

/*
 * An object over a record read from RocksDB (pin released with the object). NULL if the record
 * is damaged in any way; *why says how.
 */
static struct edge_obj *rec_parse(uint64_t hkey, const char *p, size_t len, void *pin,
                                  const char **why)
{
    struct rec_head rh;
    *why = "short record";
    if (len < sizeof(rh))
        return NULL;
    memcpy(&rh, p, sizeof(rh));
    *why = "bad magic";
    if (rh.magic != REC_MAGIC)
        return NULL;
    *why = "bad lengths";
    uint64_t want = (uint64_t)sizeof(rh) + rh.key_len + rh.fields_len + rh.body_len;
    if (rh.body_len > len || want != len || rh.n_fields > 4096)
        return NULL;
    *why = "checksum mismatch";
    if (XXH3_64bits(p + REC_SUM_OFF, len - REC_SUM_OFF) != rh.checksum)
        return NULL;
    struct edge_obj *o = tmt_xcalloc(1, sizeof(*o));
    atomic_init(&o->refs, 1);
    o->hkey = hkey;
    o->status = (int)rh.status;
    const char *q = p + sizeof(rh);
    o->key = (struct tmt_slice){q, rh.key_len};
    q += rh.key_len;
    const char *fend = q + rh.fields_len;
    o->hdrs = tmt_xmalloc((rh.n_fields > 0 ? rh.n_fields : 1) * sizeof(*o->hdrs));
    for (uint32_t i = 0; i < rh.n_fields; i++) {
        uint16_t nl, vl;
        if (fend - q < 4)
            goto bad;
        memcpy(&nl, q, 2);
        memcpy(&vl, q + 2, 2);
        if ((size_t)(fend - q) < 4u + nl + vl)
            goto bad;
        o->hdrs[i].name = (struct tmt_slice){q + 4, nl};
        o->hdrs[i].value = (struct tmt_slice){q + 4 + nl, vl};
        q += 4 + nl + vl;
    }
    if (q != fend)
        goto bad;
    o->n_hdrs = rh.n_fields;
    obj_derive(o);
    o->body = fend;
    o->size = rh.body_len;
    o->meta = (struct edge_meta){.response_time_ms = rh.response_time_ms,
                                 .initial_age_ms = rh.initial_age_ms,
                                 .lifetime_ms = rh.lifetime_ms,
                                 .swr_ms = rh.swr_ms,
                                 .sie_ms = rh.sie_ms,
                                 .flags = rh.flags};
    o->hint = (struct tmt_policy_hint){rh.group, rh.position};
    o->pin = pin;
    return o;
bad:
    *why = "bad fields";
    free(o->hdrs);
    free(o);
    return NULL;
}

/* ---- the store ---- */

#define STORE_MAGIC 0x57023e00u
#define MAX_BAD 64

struct edge_store {
    unsigned magic;
    pthread_mutex_t mu;
    struct tmt_tiers *tiers;
    struct tmt_kv *kv[TMT_TIER_N]; /* warm and cold; NULL for hot and unused tiers */
    uint64_t start_ms;
    bool frozen_clock;
    /* write errors are logged at most once a second per tier (a full disk fails every write) */
    uint64_t err_logged_ms[TMT_TIER_N];
    uint64_t err_quiet[TMT_TIER_N];
    /* hot objects: chained table keyed by hash */
    struct edge_obj **hot;
    size_t hot_mask, hot_n;
    struct edge_obj *pending; /* the object tmt_tiers_access may admit */
    struct tmt_mrc *mrc;      /* the miss-ratio-curve estimate, fed one access per request */
    uint64_t budget_total;    /* the tiers' budgets summed */
    uint64_t bad[MAX_BAD];    /* keys found damaged during moves, removed after the call */
    unsigned n_bad;
    struct edge_store_stats st;
};

static struct edge_obj **hot_slot(struct edge_store *s, uint64_t hkey)
{
    struct edge_obj **pp = &s->hot[tmt_mix64(hkey) & s->hot_mask];
    while (*pp != NULL && (*pp)->hkey != hkey)
        pp = &(*pp)->hnext;
    return pp;
}

static void hot_put(struct edge_store *s, struct edge_obj *o)
{
    if (s->hot_n + 1 > s->hot_mask + 1) {
        size_t n = (s->hot_mask + 1) * 2;
        struct edge_obj **t = tmt_xcalloc(n, sizeof(*t));
        for (size_t i = 0; i <= s->hot_mask; i++) {
            for (struct edge_obj *e = s->hot[i], *next; e != NULL; e = next) {
                next = e->hnext;
                size_t b = tmt_mix64(e->hkey) & (n - 1);
                e->hnext = t[b];
                t[b] = e;
            }
        }
        free(s->hot);
        s->hot = t;
        s->hot_mask = n - 1;
    }
    struct edge_obj **pp = hot_slot(s, o->hkey);
    TMT_ASSERT(*pp == NULL);
    o->hnext = NULL;
    *pp = o;
    s->hot_n++;
}

static struct edge_obj *hot_take(struct edge_store *s, uint64_t hkey)
{
    struct edge_obj **pp = hot_slot(s, hkey);
    struct edge_obj *o = *pp;
    if (o != NULL) {
        *pp = o->hnext;
        o->hnext = NULL;
        s->hot_n--;
    }
    return o;
}

static void mark_bad(struct edge_store *s, uint64_t hkey)
{
    if (s->n_bad < MAX_BAD)
        s->bad[s->n_bad++] = hkey;
}

static uint64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Counts a failed write of tier t and logs it, or only counts it within a second of the last. */
static void write_failed(struct edge_store *s, enum tmt_tier t, const char *what,
                         const struct tmt_err *err)
{
    s->st.write_errors++;
    uint64_t now = mono_now_ms();
    if (s->err_logged_ms[t] != 0 && now - s->err_logged_ms[t] < 1000) {
        s->err_quiet[t]++;
        return;
    }
    tmt_log(TMT_LOG_ERROR, "store", what, "tier=%s why=\"%s\" unlogged_before=%" PRIu64,
            tmt_tier_name(t), err->msg, s->err_quiet[t]);
    s->err_logged_ms[t] = now;
    s->err_quiet[t] = 0;
}

static void kv_delete(struct edge_store *s, enum tmt_tier t, uint64_t hkey)
{
    char ok[9], mk[9];
    rec_key(ok, 'o', hkey);
    rec_key(mk, 'm', hkey);
    struct tmt_kv_op ops[2] = {{.del = true, .key = {ok, 9}}, {.del = true, .key = {mk, 9}}};
    struct tmt_err err = {0};
    if (tmt_kv_write(s->kv[t], ops, 2, &err) != TMT_OK)
        write_failed(s, t, "cannot delete", &err);
}

/* Writes o to tier t. false on a write error (logged): the caller drops the object. */
static bool kv_store(struct edge_store *s, enum tmt_tier t, const struct edge_obj *o)
{
    char ok[9], mk[9];
    rec_key(ok, 'o', o->hkey);
    rec_key(mk, 'm', o->hkey);
    struct rec_index ix = {.size = o->size, .group = o->hint.group, .position = o->hint.position};
    size_t head_len;
    char *head = rec_build(o, &head_len);
    struct tmt_slice rec[2] = {{head, head_len}, {o->body, o->size}};
    struct tmt_slice ixs = {(const char *)&ix, sizeof(ix)};
    struct tmt_kv_op ops[2] = {{.key = {ok, 9}, .parts = rec, .n_parts = 2},
                               {.key = {mk, 9}, .parts = &ixs, .n_parts = 1}};
    struct tmt_err err = {0};
    int rc = tmt_kv_write(s->kv[t], ops, 2, &err);
    free(head);
    if (rc != TMT_OK) {
        write_failed(s, t, "cannot store, dropping the object", &err);
        return false;
    }
    return true;
}

/* Reads key from tier t. NULL if absent or damaged (counted and logged; the caller removes). */
static struct edge_obj *kv_load(struct edge_store *s, enum tmt_tier t, uint64_t hkey)
{
    char ok[9];
    rec_key(ok, 'o', hkey);
    struct tmt_kv_val v;
    struct tmt_err err = {0};
    int rc = tmt_kv_get(s->kv[t], (struct tmt_slice){ok, 9}, &v, &err);
    const char *why = "missing";
    if (rc < 0) {
        /* RocksDB's own checks (block and blob CRCs) or the disk: the copy is lost either way. */
        why = err.msg;
        rc = 0;
    }
    struct edge_obj *o = rc == 1 ? rec_parse(hkey, v.p, v.len, v.pin, &why) : NULL;
    if (o == NULL) {
        if (rc == 1)
            tmt_kv_val_release(v.pin);
        s->st.checksum_failures++;
        tmt_log(TMT_LOG_WARN, "store", "stored object is damaged, dropped",
                "tier=%s hash=%016" PRIx64 " why=\"%s\"", tmt_tier_name(t), hkey, why);
    }
    return o;
}

static void on_move(void *arg, uint64_t hkey, uint64_t size, enum tmt_tier from, enum tmt_tier to)
{
    struct edge_store *s = arg;
    (void)size;
    if (from == TMT_TIER_NONE) {
        TMT_ASSERT(s->pending != NULL && s->pending->hkey == hkey);
    } else if (to == TMT_TIER_NONE) {
        s->st.evictions++;
    } else if (to < from) {
        s->st.promotions++;
    } else {
        s->st.demotions++;
    }
    if (to == TMT_TIER_NONE) {
        if (from == TMT_TIER_HOT)
            edge_obj_unref(hot_take(s, hkey));
        else if (from != TMT_TIER_NONE)
            kv_delete(s, from, hkey);
        return;
    }
    struct edge_obj *o;
    if (from == TMT_TIER_NONE) {
        o = s->pending;
        edge_obj_ref(o);
    } else if (from == TMT_TIER_HOT) {
        o = hot_take(s, hkey);
        TMT_ASSERT(o != NULL);
    } else {
        o = kv_load(s, from, hkey);
        if (o == NULL) {
            kv_delete(s, from, hkey);
            mark_bad(s, hkey);
            return;
        }
    }
    bool ok = true;
    if (to == TMT_TIER_HOT) {
        hot_put(s, o);
        o = NULL;
    } else {
        ok = kv_store(s, to, o);
    }
    if (from != TMT_TIER_NONE && from != TMT_TIER_HOT)
        kv_delete(s, from, hkey);
    edge_obj_unref(o);
    if (!ok)
        mark_bad(s, hkey);
}

/* Takes out what a move found damaged or could not write; each is gone from its tier's data. */
static void drop_bad(struct edge_store *s)
{
    for (unsigned i = 0; i < s->n_bad; i++) {
        enum tmt_tier t = tmt_tiers_remove(s->tiers, s->bad[i]);
        if (t == TMT_TIER_HOT)
            edge_obj_unref(hot_take(s, s->bad[i]));
        else if (t != TMT_TIER_NONE)
            kv_delete(s, t, s->bad[i]);
    }
    s->n_bad = 0;
}

static uint64_t now_s(const struct edge_store *s, uint64_t now_ms)
{
    if (s->frozen_clock)
        return 0;
    return now_ms > s->start_ms ? (now_ms - s->start_ms) / 1000 : 0;
}

struct restore_ctx {
    struct edge_store *s;
    enum tmt_tier tier;
    uint64_t *drop;
    size_t n_drop, cap_drop;
};

static bool restore_one(void *arg, struct tmt_slice key, struct tmt_slice val)
{
    struct restore_ctx *rc = arg;
    uint64_t be;
    struct rec_index ix;
    bool ok = key.len == 9 && val.len == sizeof(ix);
    uint64_t hkey = 0;
    if (ok) {
        memcpy(&be, key.p + 1, 8);
        hkey = be64toh(be);
        memcpy(&ix, val.p, sizeof(ix));
        struct tmt_policy_hint hint = {ix.group, ix.position};
        ok = tmt_tiers_restore(rc->s->tiers, hkey, ix.size, rc->tier, 0, &hint);
    }
    if (ok) {
        rc->s->st.restored++;
        return true;
    }
    if (key.len == 9) {
        if (rc->n_drop == rc->cap_drop) {
            rc->cap_drop = rc->cap_drop ? rc->cap_drop * 2 : 64;
            rc->drop = tmt_xrealloc(rc->drop, rc->cap_drop * sizeof(*rc->drop));
        }
        memcpy(&be, key.p + 1, 8);
        rc->drop[rc->n_drop++] = be64toh(be);
    }
    return true;
}

struct edge_store *edge_store_open(const struct edge_store_opts *o, struct tmt_err *err)
{
    struct edge_store *s = tmt_xcalloc(1, sizeof(*s));
    s->magic = STORE_MAGIC;
    pthread_mutex_init(&s->mu, NULL);
    s->start_ms = o->start_ms;
    s->frozen_clock = o->frozen_clock;
    s->hot_mask = 1023;
    s->hot = tmt_xcalloc(s->hot_mask + 1, sizeof(*s->hot));
    struct tmt_tiers_opts to = {
        .policy = o->policy, .max_object = o->max_object, .on_move = on_move, .arg = s};
    for (unsigned t = 0; t < TMT_TIER_N; t++)
        to.budget[t] = o->budget[t];
    s->tiers = tmt_tiers_new(&to);
    if (s->tiers == NULL) {
        tmt_err_set(err, TMT_EINVAL,
                    "cache budgets leave nothing beyond the reserve of twice max_object_size");
        goto fail;
    }
    s->budget_total = o->budget[0] + o->budget[1] + o->budget[2];
    if (o->mrc_rate > 0) {
        struct tmt_mrc_opts mo = {
            .policy = o->policy,
            .budget_bytes = o->budget[0] + o->budget[1] + o->budget[2],
            .max_object = o->max_object,
            .sample_rate = o->mrc_rate,
            .memory_limit_bytes = o->mrc_memory,
        };
        struct tmt_err merr;
        tmt_err_clear(&merr);
        s->mrc = tmt_mrc_new(&mo, &merr);
        if (s->mrc == NULL)
            tmt_log(TMT_LOG_WARN, "cache", "no miss-ratio-curve estimate", "why=\"%s\"", merr.msg);
    }
    for (unsigned t = TMT_TIER_WARM; t < TMT_TIER_N; t++) {
        if (o->budget[t] == 0)
            continue;
        uint64_t wbs = TMT_MIN(UINT64_C(16) << 20, TMT_MAX(o->budget[t] / 4, 1u << 20));
        struct tmt_kv_opts ko = {
            .path = o->path[t],
            .zstd_level = o->zstd_level[t],
            .blob_files = true,
            .min_blob_size = 4096,
            .own_checksums = true, /* every record carries its XXH3-64 */
            /* room for RocksDB's own flushes and compactions: a full disk stops the tier's
             * writes (objects stay in RAM or go) before RocksDB itself fails */
            .min_free_bytes = 2 * wbs + 2 * o->max_object + (UINT64_C(16) << 20),
            .write_buffer_size = wbs};
        s->kv[t] = tmt_kv_open(&ko, err);
        if (s->kv[t] == NULL)
            goto fail;
    }
    /* Rebuild the index: warm first (a crash between a move's write and delete leaves a
     * second copy below, which restore refuses and this deletes). */
    for (unsigned t = TMT_TIER_WARM; t < TMT_TIER_N; t++) {
        if (s->kv[t] == NULL)
            continue;
        struct restore_ctx rc = {.s = s, .tier = (enum tmt_tier)t};
        if (tmt_kv_scan(s->kv[t], (struct tmt_slice){"m", 1}, restore_one, &rc, err) != TMT_OK) {
            free(rc.drop);
            goto fail;
        }
        for (size_t i = 0; i < rc.n_drop; i++)
            kv_delete(s, (enum tmt_tier)t, rc.drop[i]);
        free(rc.drop);
    }
    return s;
fail:
    edge_store_close(&s);
    return NULL;
}

void edge_store_close(struct edge_store **sp)
{
    struct edge_store *s = *sp;
    if (s == NULL)
        return;
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    for (size_t i = 0; s->hot != NULL && i <= s->hot_mask; i++) {
        for (struct edge_obj *e = s->hot[i], *next; e != NULL; e = next) {
            next = e->hnext;
            edge_obj_unref(e);
        }
    }
    free(s->hot);
    tmt_tiers_free(&s->tiers);
    tmt_mrc_free(&s->mrc);
    for (unsigned t = 0; t < TMT_TIER_N; t++)
        tmt_kv_close(&s->kv[t]);
    pthread_mutex_destroy(&s->mu);
    s->magic = 0;
    free(s);
    *sp = NULL;
}

static bool key_eq(struct tmt_slice a, struct tmt_slice b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

struct edge_obj *edge_store_get(struct edge_store *s, uint64_t hkey, struct tmt_slice key,
                                const struct tmt_policy_hint *hint, uint64_t now_ms,
                                enum tmt_tier *tier)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    struct edge_obj *o = NULL;
    *tier = TMT_TIER_NONE;
    pthread_mutex_lock(&s->mu);
    if (tmt_tiers_where(s->tiers, hkey) == TMT_TIER_NONE)
        goto out;
    enum tmt_tier from = tmt_tiers_access(s->tiers, hkey, 0, now_s(s, now_ms), hint);
    enum tmt_tier now_at = tmt_tiers_where(s->tiers, hkey);
    if (now_at == TMT_TIER_HOT) {
        o = *hot_slot(s, hkey);
        if (o != NULL)
            edge_obj_ref(o);
    } else if (now_at != TMT_TIER_NONE) {
        o = kv_load(s, now_at, hkey);
        if (o == NULL)
            mark_bad(s, hkey);
    }
    if (o != NULL && !key_eq(o->key, key)) {
        /* Two keys with one 64-bit hash: the other key's object is not this one's. */
        edge_obj_unref(o);
        o = NULL;
    }
    if (o != NULL) {
        *tier = from;
        if (s->mrc != NULL)
            tmt_mrc_access(s->mrc, hkey, o->size, now_s(s, now_ms), hint);
    }
out:
    drop_bad(s);
    pthread_mutex_unlock(&s->mu);
    return o;
}

static void drop_data(struct edge_store *s, enum tmt_tier t, uint64_t hkey)
{
    if (t == TMT_TIER_HOT)
        edge_obj_unref(hot_take(s, hkey));
    else if (t != TMT_TIER_NONE)
        kv_delete(s, t, hkey);
}

enum tmt_tier edge_store_put(struct edge_store *s, struct edge_obj *o, uint64_t now_ms)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    pthread_mutex_lock(&s->mu);
    drop_data(s, tmt_tiers_remove(s->tiers, o->hkey), o->hkey);
    s->pending = o;
    (void)tmt_tiers_access(s->tiers, o->hkey, o->size, now_s(s, now_ms), &o->hint);
    s->pending = NULL;
    if (s->mrc != NULL) /* the miss that brought it */
        tmt_mrc_access(s->mrc, o->hkey, o->size, now_s(s, now_ms), &o->hint);
    drop_bad(s);
    enum tmt_tier t = tmt_tiers_where(s->tiers, o->hkey);
    pthread_mutex_unlock(&s->mu);
    return t;
}

void edge_store_replace(struct edge_store *s, struct edge_obj *o)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    pthread_mutex_lock(&s->mu);
    enum tmt_tier t = tmt_tiers_where(s->tiers, o->hkey);
    if (t == TMT_TIER_HOT) {
        edge_obj_unref(hot_take(s, o->hkey));
        edge_obj_ref(o);
        hot_put(s, o);
    } else if (t != TMT_TIER_NONE && !kv_store(s, t, o)) {
        mark_bad(s, o->hkey);
        drop_bad(s);
    }
    pthread_mutex_unlock(&s->mu);
}

bool edge_store_has(struct edge_store *s, uint64_t hkey)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    pthread_mutex_lock(&s->mu);
    bool has = tmt_tiers_where(s->tiers, hkey) != TMT_TIER_NONE;
    pthread_mutex_unlock(&s->mu);
    return has;
}

bool edge_store_remove(struct edge_store *s, uint64_t hkey)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    pthread_mutex_lock(&s->mu);
    enum tmt_tier t = tmt_tiers_remove(s->tiers, hkey);
    drop_data(s, t, hkey);
    pthread_mutex_unlock(&s->mu);
    return t != TMT_TIER_NONE;
}

struct group_scan {
    uint64_t group;
    uint64_t *keys;
    size_t n, cap;
};

static void group_add(struct group_scan *g, uint64_t hkey)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->keys = tmt_xrealloc(g->keys, g->cap * sizeof(*g->keys));
    }
    g->keys[g->n++] = hkey;
}

static bool group_scan_one(void *arg, struct tmt_slice key, struct tmt_slice val)
{
    struct group_scan *g = arg;
    struct rec_index ix;
    if (key.len != 9 || val.len != sizeof(ix))
        return true;
    memcpy(&ix, val.p, sizeof(ix));
    if (ix.group == g->group) {
        uint64_t be;
        memcpy(&be, key.p + 1, 8);
        group_add(g, be64toh(be));
    }
    return true;
}

size_t edge_store_remove_group(struct edge_store *s, uint64_t group)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    struct group_scan g = {.group = group};
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i <= s->hot_mask; i++) {
        for (const struct edge_obj *e = s->hot[i]; e != NULL; e = e->hnext) {
            if (e->hint.group == group)
                group_add(&g, e->hkey);
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* The index entries on disk are read without the lock (RocksDB iterators see a snapshot). */
    for (unsigned t = TMT_TIER_WARM; t < TMT_TIER_N; t++) {
        struct tmt_err err = {0};
        if (s->kv[t] != NULL &&
            tmt_kv_scan(s->kv[t], (struct tmt_slice){"m", 1}, group_scan_one, &g, &err) != TMT_OK)
            tmt_log(TMT_LOG_ERROR, "store", "cannot scan the index for a purge",
                    "tier=%s why=\"%s\"", tmt_tier_name((enum tmt_tier)t), err.msg);
    }
    size_t removed = 0;
    for (size_t i = 0; i < g.n; i++) {
        if (edge_store_remove(s, g.keys[i]))
            removed++;
    }
    free(g.keys);
    return removed;
}

void edge_store_stats(struct edge_store *s, struct edge_store_stats *out)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    for (unsigned t = 0; t < TMT_TIER_N; t++) {
        out->objects[t] = tmt_tiers_objects(s->tiers, (enum tmt_tier)t);
        out->bytes[t] = tmt_tiers_bytes(s->tiers, (enum tmt_tier)t);
        out->budget[t] = tmt_tiers_budget(s->tiers, (enum tmt_tier)t);
    }
    pthread_mutex_unlock(&s->mu);
}

uint64_t edge_store_disk_bytes(struct edge_store *s, enum tmt_tier t, bool compact)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    if (t >= TMT_TIER_N || s->kv[t] == NULL)
        return 0;
    if (compact)
        tmt_kv_compact(s->kv[t]);
    return tmt_kv_disk_bytes(s->kv[t]);
}

size_t edge_store_mrc(struct edge_store *s, struct tmt_mrc_point *out, size_t cap, double *rate,
                      uint64_t *sampled, uint64_t *budget)
{
    TMT_CHECK_OBJ(s, STORE_MAGIC);
    size_t n = 0;
    *rate = 0;
    *sampled = 0;
    pthread_mutex_lock(&s->mu);
    *budget = s->budget_total;
    if (s->mrc != NULL) {
        n = TMT_MIN(tmt_mrc_curve(s->mrc, out, cap), cap);
        *rate = tmt_mrc_rate(s->mrc);
        *sampled = tmt_mrc_sampled(s->mrc);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
