/*
 * conf_snap.c: a loaded settings struct shared between threads.
 *
 * The settings are immutable once the snapshot exists; the reference count is atomic because
 * worker threads take and drop references while the main thread swaps in reloads.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "tmt/config.h"

struct tmt_conf_snap {
    unsigned magic;
#define TMT_CONF_SNAP_MAGIC 0x5c0f5a9du
    atomic_uint refs;
    const struct tmt_conf_schema *schema;
    void *settings;
    uint64_t generation;
};

struct tmt_conf_snap *tmt_conf_snap_new(const struct tmt_conf_schema *schema, void *settings,
                                        uint64_t generation)
{
    struct tmt_conf_snap *snap = tmt_xcalloc(1, sizeof(*snap));
    snap->magic = TMT_CONF_SNAP_MAGIC;
    atomic_init(&snap->refs, 1);
    snap->schema = schema;
    snap->settings = settings;
    snap->generation = generation;
    return snap;
}

struct tmt_conf_snap *tmt_conf_snap_ref(struct tmt_conf_snap *snap)
{
    TMT_CHECK_OBJ(snap, TMT_CONF_SNAP_MAGIC);
    unsigned prev = atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    TMT_ASSERT(prev > 0);
    return snap;
}

void tmt_conf_snap_unref(struct tmt_conf_snap **snapp)
{
    struct tmt_conf_snap *snap = *snapp;
    *snapp = NULL;
    if (snap == NULL)
        return;
    TMT_CHECK_OBJ(snap, TMT_CONF_SNAP_MAGIC);
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
        return;
    tmt_conf_fini(snap->schema, snap->settings);
    free(snap->settings);
    snap->magic = 0;
    free(snap);
}

const void *tmt_conf_snap_get(const struct tmt_conf_snap *snap)
{
    TMT_CHECK_OBJ(snap, TMT_CONF_SNAP_MAGIC);
    return snap->settings;
}

uint64_t tmt_conf_snap_generation(const struct tmt_conf_snap *snap)
{
    TMT_CHECK_OBJ(snap, TMT_CONF_SNAP_MAGIC);
    return snap->generation;
}
