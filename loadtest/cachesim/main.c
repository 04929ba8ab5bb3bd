/*
 * tomato-cachesim: replays a request trace through the edge's cache code, with no network and no
 * storage (sizes only).
 *
 * It reads and checks a trace and prints its statistics: requests, distinct objects, the
 * footprint (bytes of all distinct objects, the base for cache sizes given as fractions) and the
 * compulsory misses every cache pays (each object's first request), which bound any policy's miss
 * ratios from below. With a cache size (sim.size) it also replays every request through the
 * edge's eviction policy (edge/cache, sim.policy) and ends with the line
 * `miss_ratio=<float> byte_miss_ratio=<float>`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "tmt/cache_policy.h"
#include "tmt/err.h"
#include "tmt/prog.h"
#include "tmt/trace.h"

struct sim_conf {
    char *trace;
    uint64_t size;
    int policy; /* enum tmt_policy_kind */
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
};

static const struct tmt_conf_part sim_parts[] = {{sim_keys, TMT_ARRAY_LEN(sim_keys), 0}};

static const struct tmt_conf_schema sim_schema = {
    .program = "tomato-cachesim",
    .parts = sim_parts,
    .n_parts = TMT_ARRAY_LEN(sim_parts),
    .size = sizeof(struct sim_conf),
};

static const struct tmt_prog_flag sim_flags[] = {
    {"trace", "FILE", "sim.trace"},
    {"size", "BYTES", "sim.size"},
    {"policy", "NAME", "sim.policy"},
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
    uint64_t misses = 0, missed_bytes = 0;
    struct tmt_policy *policy = NULL;
    rc = TMT_EXIT_FAIL;
    if (trace == NULL)
        goto out;
    if (conf->size != 0) {
        /* The settings loader checked the name and the size is non-zero: this cannot fail. */
        policy = tmt_policy_new((enum tmt_policy_kind)conf->policy, conf->size, NULL, NULL);
        TMT_ASSERT(policy != NULL);
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
        if (policy != NULL) {
            struct tmt_policy_hint hint;
            trace_hint(req.obj_id, &hint);
            if (!tmt_policy_access(policy, req.obj_id, req.size, req.time_s, &hint)) {
                misses++;
                missed_bytes += req.size;
            }
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
    if (policy != NULL) {
        printf("policy=%s size_bytes=%" PRIu64 " misses=%" PRIu64 " missed_bytes=%" PRIu64
               " resident_objects=%" PRIu64 " resident_bytes=%" PRIu64 "\n",
               tmt_policy_kind_name((enum tmt_policy_kind)conf->policy), conf->size, misses,
               missed_bytes, tmt_policy_objects(policy), tmt_policy_bytes(policy));
        printf("miss_ratio=%.6f byte_miss_ratio=%.6f\n",
               requests ? (double)misses / (double)requests : 0.0,
               bytes ? (double)missed_bytes / (double)bytes : 0.0);
    }
    rc = TMT_EXIT_OK;
out:
    if (err.code != TMT_OK)
        fprintf(stderr, "tomato-cachesim: %s\n", err.msg);
    free(seen.slots);
    tmt_policy_free(&policy);
    tmt_trace_close(&trace);
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return rc;
}
