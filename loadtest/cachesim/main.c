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
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

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
};

static void sim_check(const void *settings, struct tmt_conf_check *chk)
{
    const struct sim_conf *c = settings;
    if (c->hot_size + c->warm_size > c->size && c->size != 0)
        tmt_conf_check_fail(chk, "sim.hot_size", "sim.hot_size + sim.warm_size exceed sim.size");
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
        struct tmt_tiers_opts to = {.policy = (enum tmt_policy_kind)conf->policy,
                                    .max_object = conf->max_object};
        if (to.max_object == 0)
            to.max_object = TMT_MIN(conf->size / 64, UINT64_C(16) << 20);
        to.budget[TMT_TIER_HOT] = conf->hot_size != 0 ? conf->hot_size : conf->size / 10;
        to.budget[TMT_TIER_WARM] = conf->warm_size != 0 ? conf->warm_size : conf->size / 10 * 3;
        if (to.budget[TMT_TIER_HOT] + to.budget[TMT_TIER_WARM] > conf->size)
            to.budget[TMT_TIER_WARM] = conf->size - to.budget[TMT_TIER_HOT];
        to.budget[TMT_TIER_COLD] = conf->size - to.budget[TMT_TIER_HOT] - to.budget[TMT_TIER_WARM];
        tiers = tmt_tiers_new(&to);
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
            uint64_t key = req.obj_id;
            if (conf->keys == 1) {
                char path[64];
                size_t pl = tmt_trace_path(req.obj_id, path, sizeof(path));
                key = XXH3_64bits(path, pl);
                tmt_policy_hint_of_key(path, pl, &hint);
            } else {
                trace_hint(req.obj_id, &hint);
            }
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
