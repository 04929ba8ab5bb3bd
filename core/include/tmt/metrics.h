/*
 * metrics.h: the counters registry behind every daemon's /metrics.
 *
 * Modules declare their counters once, in a const table of struct tmt_metric_def (name, labels,
 * type, help). From that table come the slots the hot path increments, the Prometheus text
 * exposition and the reference in the docs.
 *
 * Writes never contend: the registry has one shard per writer thread (each worker, plus one for
 * the main thread), and a shard is a plain array of 64-bit slots written only by its owner with
 * relaxed atomic load + store (a plain add on x86, no lock prefix). Readers (the admin listener,
 * on any thread) sum the shards with relaxed loads. Gauges are kept the same way: each shard
 * holds its thread's contribution (connections it has open, say) and the sum is the value;
 * contributions wrap modulo 2^64, so a shard may go "negative" and the sum stays right.
 *
 * Lifetime: process. Register all tables, then seal, then start the threads; after the seal the
 * registry's layout is fixed and only slot values change.
 */
#ifndef TMT_METRICS_H
#define TMT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"

enum tmt_metric_type {
    TMT_METRIC_COUNTER, /* only goes up; name ends in _total */
    TMT_METRIC_GAUGE,   /* goes up and down */
};

/*
 * One metric. Several defs may share a name with different label sets
 * (`code="2xx"`, `code="4xx"`); they must then be adjacent in the table and have the same type
 * and help, and HELP/TYPE are printed once. Names follow Prometheus rules
 * ([a-zA-Z_:][a-zA-Z0-9_:]*) and carry the program-wide prefix themselves ("tmt_http_...");
 * labels is NULL (never "") or the text between the braces, already escaped; '}' is refused
 * even inside a value. A name belongs to one table: another table cannot add label sets to it.
 */
struct tmt_metric_def {
    const char *name;
    const char *labels;
    enum tmt_metric_type type;
    const char *help;
};

struct tmt_metrics;

typedef _Atomic uint64_t tmt_metric_slot;

/* A registry with n_shards writer shards (at least 1). Never NULL (aborts on OOM). */
struct tmt_metrics *tmt_metrics_new(unsigned n_shards);
void tmt_metrics_free(struct tmt_metrics **m);

/*
 * Adds a table. `defs` must stay valid for the registry's life (a static const table). Returns the
 * slot index of defs[0]; defs[i] is at that index + i. Before tmt_metrics_seal only; panics on a
 * malformed table (bad name, a counter without _total, split label group), which is a bug in the
 * table, not an input.
 */
size_t tmt_metrics_register(struct tmt_metrics *m, const struct tmt_metric_def *defs, size_t n);

/*
 * Fixes the layout and allocates the shards (each on its own cache lines). format, value and
 * shard need a sealed registry; find and reference work at any time.
 */
void tmt_metrics_seal(struct tmt_metrics *m);

/* Shard `i`'s slot array, to be written only by the thread that owns shard i. After seal. */
tmt_metric_slot *tmt_metrics_shard(struct tmt_metrics *m, unsigned i);

unsigned tmt_metrics_n_shards(const struct tmt_metrics *m);

/* Adds v to a slot of the caller's own shard. */
static inline void tmt_metric_add(tmt_metric_slot *shard, size_t slot, uint64_t v)
{
    atomic_store_explicit(&shard[slot],
                          atomic_load_explicit(&shard[slot], memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void tmt_metric_inc(tmt_metric_slot *shard, size_t slot)
{
    tmt_metric_add(shard, slot, 1);
}

/* Subtracts v (for gauges). */
static inline void tmt_metric_sub(tmt_metric_slot *shard, size_t slot, uint64_t v)
{
    tmt_metric_add(shard, slot, (uint64_t)0 - v);
}

/* The value of a slot summed over all shards. Any thread. */
uint64_t tmt_metrics_value(const struct tmt_metrics *m, size_t slot);

/*
 * Looks a metric up by name and labels (labels NULL for none); returns its slot or -1. For tests
 * and the admin listener, not for hot paths.
 */
long tmt_metrics_find(const struct tmt_metrics *m, const char *name, const char *labels);

/*
 * The Prometheus text exposition (version 0.0.4) of every metric: "# HELP", "# TYPE" and one
 * sample line per def, values summed over shards. Returns a malloc'd NUL-terminated string and
 * its length in *len, or NULL if memory ran out. Any thread.
 */
char *tmt_metrics_format(const struct tmt_metrics *m, size_t *len);

/*
 * A Markdown reference of the registered metrics (one table row per name: name, type, labels,
 * help), for docs. malloc'd, NULL on OOM.
 */
char *tmt_metrics_reference(const struct tmt_metrics *m);

#endif
