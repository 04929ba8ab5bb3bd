/*
 * tomato-cachesim: replays a request trace through the edge's cache code, with no network and no
 * storage (sizes only).
 *
 * It reads and checks a trace and prints its statistics: requests, distinct objects, the
 * footprint (bytes of all distinct objects, the base for cache sizes given as fractions) and the
 * compulsory misses every cache pays (each object's first request), which bound any policy's miss
 * ratios from below. With a cache size (sim.size) it also replays every request through the
 * edge's cache model (edge/cache: the eviction policy sim.policy over the whole budget, objects
 * placed on the hot, warm and cold tiers exactly as tomato-edge places them), prints the hits
 * per tier, and ends with the line `miss_ratio=<float> byte_miss_ratio=<float>`. With
 * sim.decisions it also writes, per request, where it was served from (hot, warm, cold, miss):
 * what a live edge with the same budgets must answer in X-Cache.
 *
 * With sim.mrc_rate (--mrc RATE) it instead replays the trace through the edge's miss-ratio-curve
 * estimator (edge/cache/mrc.c: a sample of the keys at that rate, miniature caches of the same
 * policy at scaled sizes) and prints the estimated curve, the estimator's memory and the cache
 * sizes that reach a few byte hit ratios. The curve spans sim.mrc_sizes sizes from 1/16 to
 * sim.mrc_span times a base: sim.size, or without it a tenth of the footprint (found by a first
 * pass over the trace, which must then be a file). With sim.mrc_check (fractions of the
 * footprint) it also replays those sizes exactly, in the same pass and through the same tiers
 * as above, and prints estimate, exact figure and absolute error for each.
 */
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tmt/cache_mrc.h"
#include "tmt/cache_policy.h"
#include "tmt/cache_tiers.h"
#include "tmt/err.h"
#include "tmt/prog.h"
#include "tmt/trace.h"

struct sim_conf {
    char *trace;
    uint64_t size;
    int policy; /* enum tmt_policy_kind */
    uint64_t hot_size, warm_size, max_object;
    char *decisions;
    int keys; /* 0: obj_id, 1: path */
    char *mrc_rate;
    int64_t mrc_sizes, mrc_span, mrc_seed;
    uint64_t mrc_memory;
    struct tmt_conf_list mrc_check;
};

static const struct tmt_conf_key sim_keys[] = {
    {.section = "sim",
     .name = "trace",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct sim_conf, trace),
     .flags = TMT_CONF_REQUIRED,
     .help = "trace to replay: CSV time,obj_id,obj_size with a header line; - for stdin"},
    {.section = "sim",
     .name = "size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct sim_conf, size),
     .dflt = "0",
     .help = "cache budget in bytes to replay the trace against; 0 only prints trace statistics"},
    {.section = "sim",
     .name = "policy",
     .type = TMT_CONF_ENUM,
     .offset = offsetof(struct sim_conf, policy),
     .dflt = "segpool",
     .choices = TMT_POLICY_CHOICES,
     .help = "eviction policy replayed (the edge cache's policy code)"},
    {.section = "sim",
     .name = "hot_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct sim_conf, hot_size),
     .dflt = "0",
     .help = "bytes of sim.size on the hot tier (RAM); 0 = a tenth of sim.size"},
    {.section = "sim",
     .name = "warm_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct sim_conf, warm_size),
     .dflt = "0",
     .help = "bytes of sim.size on the warm tier; 0 = 30 % of sim.size; cold gets the rest"},
    {.section = "sim",
     .name = "max_object_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct sim_conf, max_object),
     .dflt = "0",
     .help = "largest object cached (as the edge's cache.max_object_size; twice it is kept free); "
             "0 = sim.size/64, at most 16MiB"},
    {.section = "sim",
     .name = "decisions",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct sim_conf, decisions),
     .dflt = "",
     .help = "write one line per request (hot, warm, cold or miss) to this file; empty = none"},
    {.section = "sim",
     .name = "keys",
     .type = TMT_CONF_ENUM,
     .offset = offsetof(struct sim_conf, keys),
     .dflt = "id",
     .choices = "id|path",
     .help = "what the policy sees as the key: the trace's obj_id (and its asset and segment), or "
             "what tomato-edge sees for the replayed URL path (its hash and hint): for checking "
             "--decisions against a live edge"},
    {.section = "sim",
     .name = "mrc_rate",
     .type = TMT_CONF_STR,
     .offset = offsetof(struct sim_conf, mrc_rate),
     .dflt = "",
     .help = "sample rate in (0, 1] of a miss-ratio-curve estimate (edge/cache/mrc.c) to print "
             "instead of one replay; empty = none"},
    {.section = "sim",
     .name = "mrc_sizes",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct sim_conf, mrc_sizes),
     .dflt = "16",
     .min = 1,
     .max = 48,
     .help = "sizes of the estimated curve, log-spaced from 1/16 to sim.mrc_span times the base"},
    {.section = "sim",
     .name = "mrc_span",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct sim_conf, mrc_span),
     .dflt = "16",
     .min = 1,
     .max = 1024,
     .help = "largest size of the curve as a multiple of the base (sim.size, or a tenth of the "
             "footprint)"},
    {.section = "sim",
     .name = "mrc_memory",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct sim_conf, mrc_memory),
     .dflt = "4MiB",
     .min = 1,
     .help = "memory bound of the estimator; it lowers its sample rate to stay within it"},
    {.section = "sim",
     .name = "mrc_seed",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct sim_conf, mrc_seed),
     .dflt = "0",
     .min = 0,
     .max = INT64_MAX,
     .help = "seed of the estimator's sampling hash"},
    {.section = "sim",
     .name = "mrc_check",
     .type = TMT_CONF_LIST,
     .offset = offsetof(struct sim_conf, mrc_check),
     .dflt = "",
     .help = "fractions of the footprint (at most 16) also replayed exactly, to compare with the "
             "estimate: 0.01,0.05,0.1"},
};

#define SIM_MRC_MAX_CHECKS 16

/* A number in (0, hi], or NaN. */
static double parse_fraction(const char *text, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v > 0 && v <= hi))
        return NAN;
    return v;
}

static void sim_check(const void *settings, struct tmt_conf_check *chk)
{
    const struct sim_conf *c = settings;
    if (c->hot_size + c->warm_size > c->size && c->size != 0)
        tmt_conf_check_fail(chk, "sim.hot_size", "sim.hot_size + sim.warm_size exceed sim.size");
    if (c->mrc_rate[0] != '\0' && isnan(parse_fraction(c->mrc_rate, 1.0)))
        tmt_conf_check_fail(chk, "sim.mrc_rate", "\"%s\" is not a rate in (0, 1]", c->mrc_rate);
    if (c->mrc_check.n > SIM_MRC_MAX_CHECKS)
        tmt_conf_check_fail(chk, "sim.mrc_check", "at most %d fractions", SIM_MRC_MAX_CHECKS);
    for (size_t i = 0; i < c->mrc_check.n; i++) {
        if (isnan(parse_fraction(c->mrc_check.items[i], 100.0)))
            tmt_conf_check_fail(chk, "sim.mrc_check", "\"%s\" is not a fraction in (0, 100]",
                                c->mrc_check.items[i]);
    }
    if (c->mrc_check.n != 0 && c->mrc_rate[0] == '\0')
        tmt_conf_check_fail(chk, "sim.mrc_check", "needs sim.mrc_rate");
}

static const struct tmt_conf_part sim_parts[] = {{sim_keys, TMT_ARRAY_LEN(sim_keys), 0}};

static const struct tmt_conf_schema sim_schema = {
    .program = "tomato-cachesim",
    .parts = sim_parts,
    .n_parts = TMT_ARRAY_LEN(sim_parts),
    .size = sizeof(struct sim_conf),
    .check = sim_check,
};

static const struct tmt_prog_flag sim_flags[] = {
    {"trace", "FILE", "sim.trace"},          {"size", "BYTES", "sim.size"},
    {"policy", "NAME", "sim.policy"},        {"hot-size", "BYTES", "sim.hot_size"},
    {"warm-size", "BYTES", "sim.warm_size"}, {"max-object-size", "BYTES", "sim.max_object_size"},
    {"decisions", "FILE", "sim.decisions"},  {"keys", "id|path", "sim.keys"},
    {"mrc", "RATE", "sim.mrc_rate"},         {"mrc-sizes", "N", "sim.mrc_sizes"},
    {"mrc-span", "N", "sim.mrc_span"},       {"mrc-memory", "BYTES", "sim.mrc_memory"},
    {"mrc-seed", "N", "sim.mrc_seed"},       {"mrc-check", "FRACTIONS", "sim.mrc_check"},
};

static const struct tmt_prog sim_prog = {
    .name = "tomato-cachesim",
    .summary = "replays a request trace through the edge cache's code and reports miss ratios",
    .schema = &sim_schema,
    .flags = sim_flags,
    .n_flags = TMT_ARRAY_LEN(sim_flags),
};

/* Open-addressing set of object ids (id + 1 stored, so 0 means empty). */
struct id_set {
    uint64_t *slots;
    size_t cap; /* power of two */
    size_t n;
};

static bool id_set_insert(struct id_set *s, uint64_t id);

static void id_set_grow(struct id_set *s)
{
    struct id_set bigger = {tmt_xcalloc(s->cap * 2, sizeof(uint64_t)), s->cap * 2, 0};
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i] != 0)
            id_set_insert(&bigger, s->slots[i] - 1);
    }
    free(s->slots);
    *s = bigger;
}

/* Returns true if id was not in the set yet. */
static bool id_set_insert(struct id_set *s, uint64_t id)
{
    if ((s->n + 1) * 4 > s->cap * 3)
        id_set_grow(s);
    size_t mask = s->cap - 1;
    for (size_t i = tmt_mix64(id) & mask;; i = (i + 1) & mask) {
        if (s->slots[i] == id + 1)
            return false;
        if (s->slots[i] == 0) {
            s->slots[i] = id + 1;
            s->n++;
            return true;
        }
    }
}

/* What the key tells the policy: the asset is the group, a media segment's number its position. */
static void trace_hint(uint64_t obj_id, struct tmt_policy_hint *hint)
{
    struct tmt_trace_obj o;
    tmt_trace_decode(obj_id, &o);
    hint->group = o.asset;
    hint->position = o.rung <= 5 && o.seg >= 1 && o.seg <= 9998 ? o.seg : 0;
}

/* The tiered cache tomato-edge would have with `size` bytes and the budgets of the settings. */
static struct tmt_tiers *tiers_for(const struct sim_conf *conf, uint64_t size)
{
    struct tmt_tiers_opts to = {.policy = (enum tmt_policy_kind)conf->policy,
                                .max_object = conf->max_object};
    if (to.max_object == 0)
        to.max_object = TMT_MIN(size / 64, UINT64_C(16) << 20);
    to.budget[TMT_TIER_HOT] = conf->hot_size != 0 ? conf->hot_size : size / 10;
    to.budget[TMT_TIER_WARM] = conf->warm_size != 0 ? conf->warm_size : size / 10 * 3;
    if (to.budget[TMT_TIER_HOT] > size)
        to.budget[TMT_TIER_HOT] = size / 10;
    if (to.budget[TMT_TIER_HOT] + to.budget[TMT_TIER_WARM] > size)
        to.budget[TMT_TIER_WARM] = size - to.budget[TMT_TIER_HOT];
    to.budget[TMT_TIER_COLD] = size - to.budget[TMT_TIER_HOT] - to.budget[TMT_TIER_WARM];
    return tmt_tiers_new(&to);
}

/* The key the policy sees for a request, and its hint (sim.keys). */
static uint64_t request_key(const struct sim_conf *conf, uint64_t obj_id,
                            struct tmt_policy_hint *hint)
{
    if (conf->keys == 1) {
        char path[64];
        size_t pl = tmt_trace_path(obj_id, path, sizeof(path));
        tmt_policy_hint_of_key(path, pl, hint);
        return XXH3_64bits(path, pl);
    }
    trace_hint(obj_id, hint);
    return obj_id;
}

/* Bytes of the distinct objects of the trace (a first pass). */
static int trace_footprint(const char *path, uint64_t *footprint, struct tmt_err *err)
{
    if (strcmp(path, "-") == 0)
        return tmt_err_set(err, TMT_EINVAL,
                           "the estimate without sim.size, or with sim.mrc_check, reads the "
                           "trace twice: it must be a file, not stdin");
    struct tmt_trace *trace = tmt_trace_open(path, err);
    if (trace == NULL)
        return TMT_EIO;
    struct id_set seen = {tmt_xcalloc(1024, sizeof(uint64_t)), 1024, 0};
    struct tmt_trace_req req;
    int r;
    *footprint = 0;
    while ((r = tmt_trace_next(trace, &req, err)) == 1) {
        if (id_set_insert(&seen, req.obj_id))
            *footprint += req.size;
    }
    free(seen.slots);
    tmt_trace_close(&trace);
    return r < 0 ? r : 0;
}

struct mrc_check {
    double fraction;
    uint64_t size;
    struct tmt_tiers *tiers;
    uint64_t misses, missed_bytes;
};

static void print_curve(const struct tmt_mrc *mrc, uint64_t footprint)
{
    struct tmt_mrc_point pts[TMT_MRC_MAX_SIZES];
    size_t n = tmt_mrc_curve(mrc, pts, TMT_MRC_MAX_SIZES);
    for (size_t i = 0; i < n; i++)
        printf("mrc size_bytes=%" PRIu64 " footprint_fraction=%.5f miss_ratio=%.6f "
               "byte_miss_ratio=%.6f\n",
               pts[i].size_bytes, footprint ? (double)pts[i].size_bytes / (double)footprint : 0.0,
               pts[i].miss_ratio, pts[i].byte_miss_ratio);
    for (unsigned t = 1; t <= 9; t++) {
        uint64_t sz;
        int r = tmt_mrc_size_for(mrc, t / 10.0, &sz);
        if (r == 0)
            printf("size_for byte_hit_ratio=%.1f size_bytes=%" PRIu64 "\n", t / 10.0, sz);
        else
            printf("size_for byte_hit_ratio=%.1f size_bytes=unreachable\n", t / 10.0);
    }
}

/*
 * sim.mrc_rate: the estimated curve, and the exact replays of sim.mrc_check in the same pass.
 * Sizes of the curve: the log-spaced grid plus the checked sizes.
 */
static int run_mrc(const struct sim_conf *conf, struct tmt_err *err)
{
    uint64_t footprint = 0, base = conf->size;
    struct mrc_check checks[SIM_MRC_MAX_CHECKS];
    size_t n_checks = conf->mrc_check.n;
    struct tmt_mrc *mrc = NULL;
    struct tmt_trace *trace = NULL;
    int rc = TMT_EINVAL;
    memset(checks, 0, sizeof(checks));
    if ((base == 0 || n_checks != 0) && trace_footprint(conf->trace, &footprint, err) < 0)
        return TMT_EINVAL;
    if (base == 0)
        base = footprint / 10;
    uint64_t sizes[TMT_MRC_MAX_SIZES];
    unsigned n_sizes = 0, grid = (unsigned)conf->mrc_sizes;
    for (unsigned k = 0; k < grid; k++) {
        double f = grid == 1 ? 1.0 : pow(16.0 * (double)conf->mrc_span, (double)k / (grid - 1));
        sizes[n_sizes++] = (uint64_t)((double)base / 16.0 * f);
    }
    for (size_t i = 0; i < n_checks; i++) {
        checks[i].fraction = parse_fraction(conf->mrc_check.items[i], 100.0);
        checks[i].size = (uint64_t)((double)footprint * checks[i].fraction);
        sizes[n_sizes++] = checks[i].size;
        checks[i].tiers = tiers_for(conf, checks[i].size);
        if (checks[i].tiers == NULL) {
            tmt_err_set(err, TMT_EINVAL,
                        "sim.mrc_check %s: the size leaves nothing beyond the "
                        "reserve of twice sim.max_object_size",
                        conf->mrc_check.items[i]);
            goto out;
        }
    }
    struct tmt_mrc_opts mo = {
        .policy = (enum tmt_policy_kind)conf->policy,
        .budget_bytes = base,
        .n_sizes = n_sizes,
        .sizes = sizes,
        .max_object = conf->max_object,
        .sample_rate = parse_fraction(conf->mrc_rate, 1.0),
        .memory_limit_bytes = conf->mrc_memory,
        .seed = (uint64_t)conf->mrc_seed,
    };
    mrc = tmt_mrc_new(&mo, err);
    if (mrc == NULL)
        goto out;
    trace = tmt_trace_open(conf->trace, err);
    if (trace == NULL)
        goto out;
    struct tmt_trace_req req;
    uint64_t requests = 0, bytes = 0;
    size_t peak_memory = 0;
    int r;
    while ((r = tmt_trace_next(trace, &req, err)) == 1) {
        struct tmt_policy_hint hint;
        uint64_t key = request_key(conf, req.obj_id, &hint);
        requests++;
        bytes += req.size;
        tmt_mrc_access(mrc, key, req.size, req.time_s, &hint);
        for (size_t i = 0; i < n_checks; i++) {
            if (tmt_tiers_access(checks[i].tiers, key, req.size, req.time_s, &hint) ==
                TMT_TIER_NONE) {
                checks[i].misses++;
                checks[i].missed_bytes += req.size;
            }
        }
        if ((requests & 1023) == 0)
            peak_memory = TMT_MAX(peak_memory, tmt_mrc_memory(mrc));
    }
    if (r < 0)
        goto out;
    peak_memory = TMT_MAX(peak_memory, tmt_mrc_memory(mrc));
    printf("requests=%" PRIu64 " requested_bytes=%" PRIu64 " footprint_bytes=%" PRIu64
           " policy=%s base_bytes=%" PRIu64 "\n",
           requests, bytes, footprint, tmt_policy_kind_name((enum tmt_policy_kind)conf->policy),
           base);
    print_curve(mrc, footprint);
    double max_err = 0;
    struct tmt_mrc_point pts[TMT_MRC_MAX_SIZES];
    size_t n_pts = tmt_mrc_curve(mrc, pts, TMT_MRC_MAX_SIZES);
    for (size_t i = 0; i < n_checks; i++) {
        double exact = bytes ? (double)checks[i].missed_bytes / (double)bytes : 0.0;
        double exact_m = requests ? (double)checks[i].misses / (double)requests : 0.0;
        double est = NAN, est_m = NAN;
        for (size_t k = 0; k < n_pts; k++) {
            if (pts[k].size_bytes == checks[i].size) {
                est = pts[k].byte_miss_ratio;
                est_m = pts[k].miss_ratio;
            }
        }
        max_err = TMT_MAX(max_err, fabs(est - exact));
        printf("check fraction=%s size_bytes=%" PRIu64 " byte_miss_estimate=%.6f "
               "byte_miss_exact=%.6f byte_miss_error=%.6f miss_estimate=%.6f miss_exact=%.6f "
               "miss_error=%.6f\n",
               conf->mrc_check.items[i], checks[i].size, est, exact, fabs(est - exact), est_m,
               exact_m, fabs(est_m - exact_m));
    }
    printf("mrc_memory_bytes=%zu mrc_peak_memory_bytes=%zu sample_rate=%.6f sampled=%" PRIu64
           " max_byte_miss_error=%.6f\n",
           tmt_mrc_memory(mrc), peak_memory, tmt_mrc_rate(mrc), tmt_mrc_sampled(mrc),
           n_checks != 0 ? max_err : 0.0);
    rc = 0;
out:
    tmt_trace_close(&trace);
    tmt_mrc_free(&mrc);
    for (size_t i = 0; i < n_checks; i++)
        tmt_tiers_free(&checks[i].tiers);
    return rc;
}

int main(int argc, char **argv)
{
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    int rc = tmt_prog_start(&sim_prog, argc, argv, &cli, &snap);
    if (rc >= 0)
        return rc;
    const struct sim_conf *conf = tmt_conf_snap_get(snap);

    struct tmt_err err;
    tmt_err_clear(&err);
    if (conf->mrc_rate[0] != '\0') {
        rc = run_mrc(conf, &err) == 0 ? TMT_EXIT_OK : TMT_EXIT_FAIL;
        if (err.code != TMT_OK)
            fprintf(stderr, "tomato-cachesim: %s\n", err.msg);
        tmt_conf_snap_unref(&snap);
        tmt_prog_cli_fini(&cli);
        return rc;
    }
    struct tmt_trace *trace = tmt_trace_open(conf->trace, &err);
    struct id_set seen = {tmt_xcalloc(1024, sizeof(uint64_t)), 1024, 0};
    uint64_t requests = 0, bytes = 0, footprint = 0, first_time = 0, last_time = 0;
    uint64_t misses = 0, missed_bytes = 0, hits[TMT_TIER_N] = {0};
    struct tmt_tiers *tiers = NULL;
    FILE *dec = NULL;
    rc = TMT_EXIT_FAIL;
    if (trace == NULL)
        goto out;
    if (conf->size != 0) {
        tiers = tiers_for(conf, conf->size);
        if (tiers == NULL) {
            tmt_err_set(&err, TMT_EINVAL,
                        "sim.size leaves nothing beyond the reserve of twice sim.max_object_size");
            goto out;
        }
    }
    if (conf->decisions[0] != '\0') {
        dec = fopen(conf->decisions, "w");
        if (dec == NULL) {
            tmt_err_set(&err, TMT_EIO, "cannot write %s: %s", conf->decisions, strerror(errno));
            goto out;
        }
    }
    struct tmt_trace_req req;
    int r;
    while ((r = tmt_trace_next(trace, &req, &err)) == 1) {
        if (requests == 0)
            first_time = req.time_s;
        last_time = req.time_s;
        requests++;
        bytes += req.size;
        if (id_set_insert(&seen, req.obj_id))
            footprint += req.size;
        if (tiers != NULL) {
            struct tmt_policy_hint hint;
            uint64_t key = request_key(conf, req.obj_id, &hint);
            enum tmt_tier t = tmt_tiers_access(tiers, key, req.size, req.time_s, &hint);
            if (t == TMT_TIER_NONE) {
                misses++;
                missed_bytes += req.size;
            } else {
                hits[t]++;
            }
            if (dec != NULL)
                fputs(t == TMT_TIER_NONE   ? "miss\n"
                      : t == TMT_TIER_HOT  ? "hot\n"
                      : t == TMT_TIER_WARM ? "warm\n"
                                           : "cold\n",
                      dec);
        }
    }
    if (r < 0)
        goto out;
    printf("requests=%" PRIu64 " objects=%zu footprint_bytes=%" PRIu64 " requested_bytes=%" PRIu64
           " duration_s=%" PRIu64 "\n",
           requests, seen.n, footprint, bytes, last_time - first_time);
    printf("compulsory_miss_ratio=%.4f compulsory_byte_miss_ratio=%.4f\n",
           requests ? (double)seen.n / (double)requests : 0.0,
           bytes ? (double)footprint / (double)bytes : 0.0);
    if (tiers != NULL) {
        uint64_t objs = 0, res = 0;
        for (unsigned k = 0; k < TMT_TIER_N; k++) {
            objs += tmt_tiers_objects(tiers, (enum tmt_tier)k);
            res += tmt_tiers_bytes(tiers, (enum tmt_tier)k);
        }
        printf("policy=%s size_bytes=%" PRIu64 " misses=%" PRIu64 " missed_bytes=%" PRIu64
               " resident_objects=%" PRIu64 " resident_bytes=%" PRIu64 "\n",
               tmt_policy_kind_name((enum tmt_policy_kind)conf->policy), conf->size, misses,
               missed_bytes, objs, res);
        printf("hot_bytes=%" PRIu64 " warm_bytes=%" PRIu64 " cold_bytes=%" PRIu64
               " hits_hot=%" PRIu64 " hits_warm=%" PRIu64 " hits_cold=%" PRIu64 "\n",
               tmt_tiers_budget(tiers, TMT_TIER_HOT), tmt_tiers_budget(tiers, TMT_TIER_WARM),
               tmt_tiers_budget(tiers, TMT_TIER_COLD), hits[TMT_TIER_HOT], hits[TMT_TIER_WARM],
               hits[TMT_TIER_COLD]);
        printf("miss_ratio=%.6f byte_miss_ratio=%.6f\n",
               requests ? (double)misses / (double)requests : 0.0,
               bytes ? (double)missed_bytes / (double)bytes : 0.0);
    }
    rc = TMT_EXIT_OK;
out:
    if (err.code != TMT_OK)
        fprintf(stderr, "tomato-cachesim: %s\n", err.msg);
    if (dec != NULL && fclose(dec) != 0 && rc == TMT_EXIT_OK) {
        fprintf(stderr, "tomato-cachesim: cannot write %s\n", conf->decisions);
        rc = TMT_EXIT_FAIL;
    }
    free(seen.slots);
    tmt_tiers_free(&tiers);
    tmt_trace_close(&trace);
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return rc;
}
