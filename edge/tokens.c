/*
 * tokens.c: the edge's token gate (see tokens.h).
 *
 * State and who touches it:
 * - t->ring, t->rev: the current key ring and revocation set, immutable and refcounted
 *   (atomic counts), replaced by the main thread under t->mu, which then bumps t->gen.
 * - Each worker holds its own references (w->ring, w->rev) and the t->gen it took them at
 *   (w->seen). A request reads t->gen once (an acquire load of a line that only changes when
 *   the main thread installs something) and takes t->mu only when it moved: no lock per
 *   request, and the old ring is freed by whoever drops its last reference.
 * - The verified-token cache of a worker is the worker's alone: n_sets sets of WAYS entries
 *   indexed by a seeded hash of the token string; an entry holds the whole token (compared
 *   byte for byte, so a hash collision can never pass a token that was not verified) and the
 *   claims the later checks need. It remembers the ring and revocation generations it was
 *   checked against: a new ring means a full verification again (a removed key's tokens fail
 *   it), a new revocation set one lookup of the lease. Expiry and scope are checked on every
 *   request. A token that fails is never cached, so a forgery costs its signature check every
 *   time (one HMAC, the payload never parsed: about 1.7 us).
 * - Activity: w->cur, the worker's set of (sub, dev, lease) triples since the last drain,
 *   under w->mu, which only that worker and the drain take. A cache entry remembers the drain
 *   epoch it was recorded in, so the worker takes w->mu once per token per epoch, not per
 *   request. The drain swaps in the spare set and bumps the epoch under w->mu, then reports
 *   outside it; w->spare belongs to the drain (t->drain_mu).
 */
#include "tokens.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "tmt/http.h"
#include "tmt/log.h"
#include "tmt/metrics.h"

#define WAYS 4
#define ACT_TABLE (2 * EDGE_TOKENS_ACTIVITY_MAX) /* open addressing, at most half full */
#define PREFIX_MAX 1024

_Static_assert(EDGE_TOKENS_ACTIVITY_MAX < 65535, "activity indexes are 16-bit");
_Static_assert((ACT_TABLE & (ACT_TABLE - 1)) == 0, "a power of two");
_Static_assert(TMT_TOKEN_MAX < 65536 && TMT_TOKEN_PREFIX_MAX < 65536, "16-bit lengths");

/* ---- counters ---- */

enum {
    M_CACHED,
    M_VERIFIED,
    M_DENY_MISSING,
    M_DENY_MALFORMED,
    M_DENY_SIGNATURE,
    M_DENY_TIME,
    M_DENY_SCOPE,
    M_DENY_REVOKED,
    M_ACT_DROPPED,
    M_N,
};

#define CHECKS_HELP                                                                                \
    "token checks on protected paths: answered from the worker's verified-token cache, or by "     \
    "a signature check"
#define DENIED_HELP "requests to protected paths refused with 403, by reason"

static const struct tmt_metric_def token_metrics[] = {
    {"tmt_edge_token_checks_total", "result=\"cached\"", TMT_METRIC_COUNTER, CHECKS_HELP},
    {"tmt_edge_token_checks_total", "result=\"verified\"", TMT_METRIC_COUNTER, CHECKS_HELP},
    {"tmt_edge_token_denied_total", "reason=\"missing\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_denied_total", "reason=\"malformed\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_denied_total", "reason=\"signature\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_denied_total", "reason=\"time\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_denied_total", "reason=\"scope\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_denied_total", "reason=\"revoked\"", TMT_METRIC_COUNTER, DENIED_HELP},
    {"tmt_edge_token_activity_dropped_total", NULL, TMT_METRIC_COUNTER,
     "lease activity not recorded: a worker's set was full until the next drain"},
};
_Static_assert(TMT_ARRAY_LEN(token_metrics) == M_N, "one definition per counter");

/* ---- shared immutable objects ---- */

struct ring {
    unsigned magic;
#define RING_MAGIC 0xed9e70c1u
    atomic_uint refs;
    uint64_t gen;
    size_t n;
    struct tmt_token_key keys[];
};

struct rslot {
    uint64_t h; /* 0: empty */
    const char *id;
};

struct revset {
    unsigned magic;
#define REVSET_MAGIC 0xed9e70c2u
    atomic_uint refs;
    uint64_t gen;
    size_t n;
    size_t mask;         /* slots: mask + 1, a power of two at least twice n */
    struct rslot *slots; /* NULL when n is 0 */
    char *ids;
};

/* ---- per worker ---- */

struct centry {
    uint64_t h;    /* seeded hash of the token; 0: empty */
    char *blob;    /* token, then prefix, sub, dev and lease, each NUL-terminated */
    uint32_t cap;  /* bytes allocated at blob */
    uint32_t last; /* the worker's tick at its last use: the least recent goes first */
    uint16_t tok_len, prefix_len;
    uint8_t sub_len, dev_len, lease_len;
    int64_t exp;
    uint64_t lease_h;
    uint64_t key_gen;   /* the ring it was verified with */
    uint64_t rev_gen;   /* the revocation set its lease was last found absent from; 0: none */
    uint64_t act_epoch; /* the activity epoch it was recorded in; 0: none */
};

struct act {
    uint64_t h;
    char sub[TMT_TOKEN_STR_MAX + 1];
    char dev[TMT_TOKEN_STR_MAX + 1];
    char lease[TMT_TOKEN_STR_MAX + 1];
};

struct actset {
    size_t n;
    uint16_t idx[ACT_TABLE]; /* index + 1 into v; 0: empty */
    struct act v[EDGE_TOKENS_ACTIVITY_MAX];
};

struct tworker {
    /* The worker's own (on its own cache lines, so workers never share a written line). */
    _Alignas(64) struct ring *ring;
    struct revset *rev;
    uint64_t seen;        /* t->gen when ring and rev were taken; 0: never */
    struct centry *slots; /* n_sets * WAYS, NULL without a cache */
    uint32_t tick;
    tmt_metric_slot *shard;
    /* Activity: cur under mu (this worker and the drain); spare is the drain's. */
    pthread_mutex_t mu;
    _Atomic uint64_t epoch; /* written under mu by the drain; read by the worker without it */
    struct actset *cur;
    struct actset *spare;
};

struct prefix {
    char *p;
    size_t len;
};

struct edge_tokens {
    unsigned magic;
#define EDGE_TOKENS_MAGIC 0xed9e70c0u
    struct prefix *protect, *public_;
    size_t n_protect, n_public;
    int64_t skew_s;
    size_t n_sets;
    uint64_t seed;
    unsigned n_workers;
    struct tworker *w;
    struct tmt_metrics *metrics;
    size_t m_base;
    unsigned shard0;
    /* what the main thread installs */
    pthread_mutex_t mu;
    struct ring *ring;    /* under mu */
    struct revset *rev;   /* under mu */
    uint64_t next_gen;    /* main thread */
    _Atomic uint64_t gen; /* bumped by each install, read by every request */
    pthread_mutex_t drain_mu;
    const struct act **seen_tab; /* the drain's scratch table */
    size_t seen_cap;
};

static void count(struct edge_tokens *t, struct tworker *w, unsigned worker, size_t m)
{
    if (t->metrics == NULL)
        return;
    if (w->shard == NULL)
        w->shard = tmt_metrics_shard(t->metrics, t->shard0 + worker);
    tmt_metric_inc(w->shard, t->m_base + m);
}

static uint64_t hash_of(const struct edge_tokens *t, const void *p, size_t len)
{
    uint64_t h = XXH3_64bits_withSeed(p, len, t->seed);
    return h != 0 ? h : 1;
}

/* ---- rings and revocation sets ---- */

static struct ring *ring_new(size_t n, uint64_t gen)
{
    struct ring *r = tmt_xcalloc(1, sizeof(*r) + n * sizeof(r->keys[0]));
    r->magic = RING_MAGIC;
    atomic_init(&r->refs, 1);
    r->gen = gen;
    r->n = n;
    return r;
}

static struct ring *ring_ref(struct ring *r)
{
    TMT_CHECK_OBJ(r, RING_MAGIC);
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

static void ring_unref(struct ring **rp)
{
    struct ring *r = *rp;
    *rp = NULL;
    if (r == NULL)
        return;
    TMT_CHECK_OBJ(r, RING_MAGIC);
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    explicit_bzero(r->keys, r->n * sizeof(r->keys[0]));
    r->magic = 0;
    free(r);
}

static bool ring_same(const struct ring *r, const struct tmt_token_key *keys, size_t n)
{
    if (r->n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct tmt_token_key *a = &r->keys[i], *b = &keys[i];
        if (strncmp(a->kid, b->kid, sizeof(a->kid)) != 0 || a->secret_len != b->secret_len ||
            a->secret_len > sizeof(a->secret) || memcmp(a->secret, b->secret, a->secret_len) != 0)
            return false;
    }
    return true;
}

static struct revset *rev_new(uint64_t gen)
{
    struct revset *v = tmt_xcalloc(1, sizeof(*v));
    v->magic = REVSET_MAGIC;
    atomic_init(&v->refs, 1);
    v->gen = gen;
    return v;
}

static struct revset *rev_ref(struct revset *v)
{
    TMT_CHECK_OBJ(v, REVSET_MAGIC);
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

static void rev_unref(struct revset **vp)
{
    struct revset *v = *vp;
    *vp = NULL;
    if (v == NULL)
        return;
    TMT_CHECK_OBJ(v, REVSET_MAGIC);
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    v->magic = 0;
    free(v->slots);
    free(v->ids);
    free(v);
}

static bool rev_has(const struct revset *v, uint64_t h, const char *lease)
{
    if (v->n == 0)
        return false;
    for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
        const struct rslot *s = &v->slots[i];
        if (s->h == 0)
            return false;
        if (s->h == h && strcmp(s->id, lease) == 0)
            return true;
    }
}

/* ---- lifecycle ---- */

static bool prefix_ok(const char *p, size_t len)
{
    if (len == 0 || len > PREFIX_MAX || p[0] != '/' || memchr(p, '?', len) != NULL ||
        memchr(p, '#', len) != NULL)
        return false;
    char norm[PREFIX_MAX + 1];
    return tmt_http_path_normalize((struct tmt_slice){p, len}, norm, sizeof(norm)) == len &&
           memcmp(norm, p, len) == 0;
}

static int copy_prefixes(const char *setting, const char *const *in, size_t n, struct prefix **out,
                         struct tmt_err *err)
{
    if (n > EDGE_TOKENS_PREFIXES_MAX)
        return tmt_err_set(err, TMT_EINVAL, "%s: at most %d prefixes", setting,
                           EDGE_TOKENS_PREFIXES_MAX);
    *out = tmt_xcalloc(n > 0 ? n : 1, sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(in[i]);
        if (!prefix_ok(in[i], len))
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: \"%.200s\" is not a normalized path starting with '/' "
                               "(no '?', '#', '//', '.' or '..' components, escapes of "
                               "unreserved characters decoded, others in upper case)",
                               setting, in[i]);
        (*out)[i] = (struct prefix){tmt_xstrdup(in[i]), len};
    }
    return TMT_OK;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = tmt_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid());
    }
    return s;
}

struct edge_tokens *edge_tokens_new(const struct edge_tokens_opts *o, struct tmt_metrics *metrics,
                                    struct tmt_err *err)
{
    TMT_ASSERT(o != NULL && o->n_workers > 0);
    struct edge_tokens *t = tmt_xcalloc(1, sizeof(*t));
    t->magic = EDGE_TOKENS_MAGIC;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->drain_mu, NULL);
    t->n_workers = o->n_workers;
    t->w = aligned_alloc(64, o->n_workers * sizeof(*t->w));
    TMT_ASSERT(t->w != NULL);
    memset(t->w, 0, o->n_workers * sizeof(*t->w));
    for (unsigned i = 0; i < o->n_workers; i++) {
        pthread_mutex_init(&t->w[i].mu, NULL);
        atomic_init(&t->w[i].epoch, 1);
    }
    t->n_protect = o->n_protect;
    t->n_public = o->n_public;
    if (copy_prefixes("tokens.protect", o->protect, o->n_protect, &t->protect, err) != TMT_OK ||
        copy_prefixes("tokens.public", o->public_prefixes, o->n_public, &t->public_, err) !=
            TMT_OK) {
        edge_tokens_free(&t);
        return NULL;
    }
    t->skew_s = o->clock_skew_s;
    t->seed = random_seed();
    t->n_sets = o->cache_entries / o->n_workers / WAYS;
    if (o->cache_entries > 0 && t->n_sets == 0)
        t->n_sets = 1;
    for (unsigned i = 0; i < o->n_workers; i++) {
        struct tworker *w = &t->w[i];
        /* Large callocs come from fresh zero pages: a cache costs memory as it fills. */
        if (t->n_sets > 0)
            w->slots = tmt_xcalloc(t->n_sets * WAYS, sizeof(*w->slots));
        w->cur = tmt_xcalloc(1, sizeof(*w->cur));
        w->spare = tmt_xcalloc(1, sizeof(*w->spare));
    }
    t->next_gen = 1;
    t->ring = ring_new(0, t->next_gen++);
    t->rev = rev_new(t->next_gen++);
    atomic_init(&t->gen, 1);
    t->shard0 = o->metrics_shard0;
    if (metrics != NULL) {
        t->metrics = metrics;
        t->m_base = tmt_metrics_register(metrics, token_metrics, TMT_ARRAY_LEN(token_metrics));
    }
    return t;
}

void edge_tokens_free(struct edge_tokens **tp)
{
    struct edge_tokens *t = *tp;
    if (t == NULL)
        return;
    TMT_CHECK_OBJ(t, EDGE_TOKENS_MAGIC);
    for (unsigned i = 0; i < t->n_workers; i++) {
        struct tworker *w = &t->w[i];
        ring_unref(&w->ring);
        rev_unref(&w->rev);
        if (w->slots != NULL) {
            for (size_t j = 0; j < t->n_sets * WAYS; j++) {
                if (w->slots[j].blob != NULL)
                    explicit_bzero(w->slots[j].blob, w->slots[j].cap);
                free(w->slots[j].blob);
            }
        }
        free(w->slots);
        free(w->cur);
        free(w->spare);
        pthread_mutex_destroy(&w->mu);
    }
    free(t->w);
    ring_unref(&t->ring);
    rev_unref(&t->rev);
    for (size_t i = 0; t->protect != NULL && i < t->n_protect; i++)
        free(t->protect[i].p);
    for (size_t i = 0; t->public_ != NULL && i < t->n_public; i++)
        free(t->public_[i].p);
    free(t->protect);
    free(t->public_);
    free(t->seen_tab);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->drain_mu);
    t->magic = 0;
    free(t);
    *tp = NULL;
}

/* ---- paths ---- */

/* The length of the longest prefix of list[0..n) that starts npath; 0: none (prefixes are
 * never empty). */
static size_t longest(const struct prefix *list, size_t n, const char *npath, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].len <= len && list[i].len > best && memcmp(npath, list[i].p, list[i].len) == 0)
            best = list[i].len;
    }
    return best;
}

enum edge_tokens_scope edge_tokens_scope(const struct edge_tokens *t, const char *npath, size_t len)
{
    size_t prot = longest(t->protect, t->n_protect, npath, len);
    size_t pub = longest(t->public_, t->n_public, npath, len);
    if (prot == 0 && pub == 0)
        return EDGE_TOKENS_OPEN;
    return prot > pub ? EDGE_TOKENS_PROTECTED : EDGE_TOKENS_PUBLIC;
}

int edge_tokens_split(struct tmt_slice path, struct tmt_slice *token, struct tmt_slice *rest)
{
    if (path.len < 3 || memcmp(path.p, "/t/", 3) != 0) {
        *token = (struct tmt_slice){NULL, 0};
        *rest = path;
        return 0;
    }
    const char *slash = memchr(path.p + 3, '/', path.len - 3);
    if (slash == NULL || slash == path.p + 3)
        return -1;
    *token = (struct tmt_slice){path.p + 3, (size_t)(slash - path.p - 3)};
    *rest = (struct tmt_slice){slash, path.len - (size_t)(slash - path.p)};
    return 1;
}

/* ---- the check ---- */

/* What the checks after verification need, from fresh claims or from a cache entry. */
struct view {
    const char *prefix, *sub, *dev, *lease;
    size_t prefix_len, lease_len;
    uint64_t lease_h;
};

static void view_of_entry(const struct centry *e, struct view *v)
{
    const char *p = e->blob + e->tok_len;
    v->prefix = p;
    v->prefix_len = e->prefix_len;
    v->sub = p += e->prefix_len + 1;
    v->dev = p += e->sub_len + 1;
    v->lease = p + e->dev_len + 1;
    v->lease_len = e->lease_len;
    v->lease_h = e->lease_h;
}

static void view_of_claims(const struct edge_tokens *t, const struct tmt_token_claims *c,
                           struct view *v)
{
    v->prefix = c->prefix;
    v->prefix_len = strlen(c->prefix);
    v->sub = c->sub;
    v->dev = c->dev;
    v->lease = c->lease;
    v->lease_len = strlen(c->lease);
    v->lease_h = hash_of(t, c->lease, v->lease_len);
}

/* Takes the current ring and revocation set (the main thread installed new ones). */
static void refresh(struct edge_tokens *t, struct tworker *w)
{
    pthread_mutex_lock(&t->mu);
    struct ring *r = ring_ref(t->ring);
    struct revset *v = rev_ref(t->rev);
    uint64_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);
    pthread_mutex_unlock(&t->mu);
    ring_unref(&w->ring);
    rev_unref(&w->rev);
    w->ring = r;
    w->rev = v;
    w->seen = g;
}

static struct centry *cache_find(const struct edge_tokens *t, struct tworker *w, uint64_t h,
                                 struct tmt_slice tok)
{
    struct centry *set = &w->slots[(h % t->n_sets) * WAYS];
    for (unsigned i = 0; i < WAYS; i++) {
        struct centry *e = &set[i];
        if (e->h == h && e->tok_len == tok.len && memcmp(e->blob, tok.p, tok.len) == 0)
            return e;
    }
    return NULL;
}

/* The entry of h's set to replace: an empty one, else an expired one, else the least recent. */
static struct centry *cache_victim(const struct edge_tokens *t, struct tworker *w, uint64_t h,
                                   int64_t now_s)
{
    struct centry *set = &w->slots[(h % t->n_sets) * WAYS], *best = &set[0];
    uint32_t best_age = 0;
    for (unsigned i = 0; i < WAYS; i++) {
        struct centry *e = &set[i];
        if (e->h == 0 || now_s >= e->exp)
            return e;
        uint32_t age = w->tick - e->last;
        if (age >= best_age) {
            best = e;
            best_age = age;
        }
    }
    return best;
}

static void cache_fill(struct edge_tokens *t, struct tworker *w, struct centry *e, uint64_t h,
                       struct tmt_slice tok, const struct tmt_token_claims *c)
{
    size_t pl = strlen(c->prefix), sl = strlen(c->sub), dl = strlen(c->dev), ll = strlen(c->lease);
    size_t need = tok.len + pl + sl + dl + ll + 4;
    if (e->cap < need) {
        if (e->blob != NULL)
            explicit_bzero(e->blob, e->cap);
        free(e->blob);
        e->cap = (uint32_t)((need + 63) & ~(size_t)63);
        e->blob = tmt_xmalloc(e->cap);
    }
    char *p = e->blob;
    memcpy(p, tok.p, tok.len);
    p += tok.len;
    memcpy(p, c->prefix, pl + 1);
    p += pl + 1;
    memcpy(p, c->sub, sl + 1);
    p += sl + 1;
    memcpy(p, c->dev, dl + 1);
    p += dl + 1;
    memcpy(p, c->lease, ll + 1);
    e->h = h;
    e->tok_len = (uint16_t)tok.len;
    e->prefix_len = (uint16_t)pl;
    e->sub_len = (uint8_t)sl;
    e->dev_len = (uint8_t)dl;
    e->lease_len = (uint8_t)ll;
    e->exp = c->exp;
    e->lease_h = hash_of(t, c->lease, ll);
    e->key_gen = w->ring->gen;
    e->rev_gen = 0;
    e->act_epoch = 0;
    e->last = w->tick;
}

static size_t deny_class(enum tmt_token_verdict v)
{
    switch (v) {
    case TMT_TOKEN_UNKNOWN_KID:
    case TMT_TOKEN_BAD_SIGNATURE:
        return M_DENY_SIGNATURE;
    case TMT_TOKEN_EXPIRED:
    case TMT_TOKEN_NOT_YET_VALID:
        return M_DENY_TIME;
    case TMT_TOKEN_PATH_OUTSIDE:
        return M_DENY_SCOPE;
    default:
        return M_DENY_MALFORMED;
    }
}

/* Adds the triple to the worker's current set unless it is there; counts a full set. */
static void record(struct edge_tokens *t, struct tworker *w, unsigned worker, const struct view *v)
{
    size_t sl = strlen(v->sub), dl = strlen(v->dev);
    char buf[3 * (TMT_TOKEN_STR_MAX + 1)];
    memcpy(buf, v->sub, sl + 1);
    memcpy(buf + sl + 1, v->dev, dl + 1);
    memcpy(buf + sl + dl + 2, v->lease, v->lease_len);
    uint64_t h = hash_of(t, buf, sl + dl + 2 + v->lease_len);
    bool dropped = false;
    pthread_mutex_lock(&w->mu);
    struct actset *s = w->cur;
    size_t i = h & (ACT_TABLE - 1);
    for (; s->idx[i] != 0; i = (i + 1) & (ACT_TABLE - 1)) {
        const struct act *a = &s->v[s->idx[i] - 1];
        if (a->h == h && strcmp(a->sub, v->sub) == 0 && strcmp(a->dev, v->dev) == 0 &&
            strcmp(a->lease, v->lease) == 0)
            break;
    }
    if (s->idx[i] == 0) {
        if (s->n == EDGE_TOKENS_ACTIVITY_MAX) {
            dropped = true;
        } else {
            struct act *a = &s->v[s->n++];
            a->h = h;
            memcpy(a->sub, v->sub, sl + 1);
            memcpy(a->dev, v->dev, dl + 1);
            memcpy(a->lease, v->lease, v->lease_len + 1);
            s->idx[i] = (uint16_t)s->n;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (dropped)
        count(t, w, worker, M_ACT_DROPPED);
}

bool edge_tokens_check(struct edge_tokens *t, unsigned worker, struct tmt_slice token,
                       struct tmt_slice raw_path, int64_t now_s, const char **reason)
{
    TMT_CHECK_OBJ(t, EDGE_TOKENS_MAGIC);
    TMT_ASSERT(worker < t->n_workers);
    struct tworker *w = &t->w[worker];
    if (token.p == NULL || token.len == 0) {
        count(t, w, worker, M_DENY_MISSING);
        *reason = "token required";
        return false;
    }
    if (atomic_load_explicit(&t->gen, memory_order_acquire) != w->seen)
        refresh(t, w);

    struct centry *e = NULL;
    uint64_t h = 0;
    struct view v;
    struct tmt_token_claims c;
    w->tick++;
    if (t->n_sets > 0 && token.len <= TMT_TOKEN_MAX) {
        h = hash_of(t, token.p, token.len);
        e = cache_find(t, w, h, token);
    }
    if (e != NULL && e->key_gen == w->ring->gen) {
        count(t, w, worker, M_CACHED);
        e->last = w->tick;
        if (now_s >= e->exp) {
            e->h = 0;
            count(t, w, worker, M_DENY_TIME);
            *reason = tmt_token_verdict_text(TMT_TOKEN_EXPIRED);
            return false;
        }
        view_of_entry(e, &v);
    } else {
        /* Not cached, or verified with a ring that has been replaced since. */
        count(t, w, worker, M_VERIFIED);
        enum tmt_token_verdict vd =
            tmt_token_verify(w->ring->keys, w->ring->n, token, now_s, t->skew_s, &c);
        if (vd != TMT_TOKEN_OK) {
            if (e != NULL)
                e->h = 0;
            count(t, w, worker, deny_class(vd));
            *reason = tmt_token_verdict_text(vd);
            return false;
        }
        if (t->n_sets > 0 && token.len <= TMT_TOKEN_MAX) {
            if (e == NULL)
                e = cache_victim(t, w, h, now_s);
            cache_fill(t, w, e, h, token, &c);
            view_of_entry(e, &v);
        } else {
            view_of_claims(t, &c, &v);
        }
    }

    if (e == NULL || e->rev_gen != w->rev->gen) {
        if (v.lease_len > 0 && rev_has(w->rev, v.lease_h, v.lease)) {
            count(t, w, worker, M_DENY_REVOKED);
            *reason = "revoked lease";
            return false;
        }
        if (e != NULL)
            e->rev_gen = w->rev->gen;
    }

    /* tmt_token_path_ok reads only the prefix of the claims. */
    struct tmt_token_claims scope;
    memcpy(scope.prefix, v.prefix, v.prefix_len + 1);
    if (!tmt_token_path_ok(&scope, raw_path)) {
        count(t, w, worker, M_DENY_SCOPE);
        *reason = tmt_token_verdict_text(TMT_TOKEN_PATH_OUTSIDE);
        return false;
    }

    if (v.lease_len > 0) {
        uint64_t ep = atomic_load_explicit(&w->epoch, memory_order_relaxed);
        if (e == NULL || e->act_epoch != ep) {
            record(t, w, worker, &v);
            if (e != NULL)
                e->act_epoch = ep;
        }
    }
    return true;
}

/* ---- what the main thread installs ---- */

static void install(struct edge_tokens *t, struct ring *r, struct revset *v)
{
    pthread_mutex_lock(&t->mu);
    if (r != NULL) {
        struct ring *old = t->ring;
        t->ring = r;
        r = old;
    }
    if (v != NULL) {
        struct revset *old = t->rev;
        t->rev = v;
        v = old;
    }
    atomic_store_explicit(&t->gen, atomic_load_explicit(&t->gen, memory_order_relaxed) + 1,
                          memory_order_release);
    pthread_mutex_unlock(&t->mu);
    ring_unref(&r);
    rev_unref(&v);
}

void edge_tokens_set_keys(struct edge_tokens *t, const struct tmt_token_key *keys, size_t n)
{
    TMT_CHECK_OBJ(t, EDGE_TOKENS_MAGIC);
    TMT_ASSERT(keys != NULL || n == 0);
    if (n > EDGE_TOKENS_KEYS_MAX) {
        tmt_log(TMT_LOG_ERROR, "tokens", "too many token keys; the first ones are kept",
                "keys=%zu kept=%d", n, EDGE_TOKENS_KEYS_MAX);
        n = EDGE_TOKENS_KEYS_MAX;
    }
    /* Only the main thread replaces t->ring, so reading it here needs no lock. */
    if (ring_same(t->ring, keys, n)) {
        tmt_log(TMT_LOG_INFO, "tokens", "token keys unchanged", "keys=%zu", n);
        return;
    }
    struct ring *r = ring_new(n, t->next_gen++);
    char kids[EDGE_TOKENS_KEYS_MAX * (TMT_TOKEN_KID_MAX + 1) + 1];
    size_t kl = 0;
    kids[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        r->keys[i] = keys[i];
        size_t l = strnlen(keys[i].kid, sizeof(keys[i].kid));
        if (l == sizeof(keys[i].kid))
            continue; /* not terminated: never matches (tmt_token_verify) */
        memcpy(kids + kl, keys[i].kid, l);
        kl += l;
        kids[kl++] = ',';
    }
    kids[kl > 0 ? kl - 1 : 0] = '\0';
    tmt_log(TMT_LOG_INFO, "tokens", "token keys installed", "keys=%zu kids=%s", n, kids);
    install(t, r, NULL);
}

void edge_tokens_set_revoked(struct edge_tokens *t, const char *const *lease_ids, size_t n)
{
    TMT_CHECK_OBJ(t, EDGE_TOKENS_MAGIC);
    TMT_ASSERT(lease_ids != NULL || n == 0);
    struct revset *v = rev_new(t->next_gen++);
    size_t bytes = 0, ok = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strnlen(lease_ids[i], TMT_TOKEN_STR_MAX + 1);
        if (l > 0 && l <= TMT_TOKEN_STR_MAX) {
            bytes += l + 1;
            ok++;
        }
    }
    if (ok > 0) {
        size_t cap = 2;
        while (cap < 2 * ok)
            cap *= 2;
        v->mask = cap - 1;
        v->slots = tmt_xcalloc(cap, sizeof(*v->slots));
        v->ids = tmt_xmalloc(bytes);
        char *p = v->ids;
        for (size_t i = 0; i < n; i++) {
            size_t l = strnlen(lease_ids[i], TMT_TOKEN_STR_MAX + 1);
            if (l == 0 || l > TMT_TOKEN_STR_MAX)
                continue;
            uint64_t h = hash_of(t, lease_ids[i], l);
            if (rev_has(v, h, lease_ids[i]))
                continue;
            memcpy(p, lease_ids[i], l + 1);
            size_t j = h & v->mask;
            while (v->slots[j].h != 0)
                j = (j + 1) & v->mask;
            v->slots[j] = (struct rslot){h, p};
            p += l + 1;
            v->n++;
        }
    }
    tmt_log(TMT_LOG_INFO, "tokens", "revoked leases installed", "leases=%zu skipped=%zu", v->n,
            n - ok);
    install(t, NULL, v);
}

/* ---- activity ---- */

static bool act_same(const struct act *a, const struct act *b)
{
    return a->h == b->h && strcmp(a->sub, b->sub) == 0 && strcmp(a->dev, b->dev) == 0 &&
           strcmp(a->lease, b->lease) == 0;
}

size_t edge_tokens_drain_activity(struct edge_tokens *t, edge_tokens_activity_fn *fn, void *arg)
{
    TMT_CHECK_OBJ(t, EDGE_TOKENS_MAGIC);
    pthread_mutex_lock(&t->drain_mu);
    size_t total = 0;
    for (unsigned i = 0; i < t->n_workers; i++) {
        struct tworker *w = &t->w[i];
        struct actset *fresh = w->spare;
        pthread_mutex_lock(&w->mu);
        w->spare = w->cur;
        w->cur = fresh;
        atomic_store_explicit(&w->epoch, atomic_load_explicit(&w->epoch, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        pthread_mutex_unlock(&w->mu);
        total += w->spare->n;
    }
    /* Each triple once, whichever workers saw it: an open-addressing table over all sets. */
    size_t cap = 16;
    while (cap < 2 * total)
        cap *= 2;
    if (cap > t->seen_cap) {
        free(t->seen_tab);
        t->seen_tab = tmt_xmalloc(cap * sizeof(*t->seen_tab));
        t->seen_cap = cap;
    }
    memset(t->seen_tab, 0, cap * sizeof(*t->seen_tab));
    size_t calls = 0;
    for (unsigned i = 0; i < t->n_workers; i++) {
        struct actset *s = t->w[i].spare;
        for (size_t j = 0; j < s->n; j++) {
            const struct act *a = &s->v[j];
            size_t k = a->h & (cap - 1);
            while (t->seen_tab[k] != NULL && !act_same(t->seen_tab[k], a))
                k = (k + 1) & (cap - 1);
            if (t->seen_tab[k] != NULL)
                continue;
            t->seen_tab[k] = a;
            fn(arg, a->sub, a->dev, a->lease);
            calls++;
        }
    }
    for (unsigned i = 0; i < t->n_workers; i++) {
        struct actset *s = t->w[i].spare;
        s->n = 0;
        memset(s->idx, 0, sizeof(s->idx));
    }
    pthread_mutex_unlock(&t->drain_mu);
    return calls;
}
