/*
 * policy_s3fifo.c: S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction",
 * SOSP 2023), as the authors' libCacheSim implements it, so our figures compare with theirs:
 *
 * - small FIFO (10 % of the budget) and main FIFO (the rest), ghost FIFO of keys whose objects
 *   left small unproven (90 % of the budget, counted in those objects' bytes);
 * - a hit increments the object's frequency (kept in 2 bits: at most 3) and moves nothing;
 * - a miss on a ghost key enters main; other misses enter small (or main while the cache has
 *   never evicted and small is full, so a cold cache fills up);
 * - to make room: if main holds more than its share (or small is empty), main's oldest object
 *   goes back to main's head with its frequency decremented if it was hit, else it leaves;
 *   otherwise small's oldest moves to main if it was hit at least twice, else it leaves and its
 *   key enters the ghost FIFO. Each leaving object is reported to the eviction callback.
 */
#include "policy_int.h"

#include "tmt/base.h"

/* Hits in small needed to move to main (libCacheSim's move-to-main-threshold). */
#define S3_MOVE_TO_MAIN 2
#define S3_FREQ_MAX 3

static void ghost_add(struct tmt_policy *p, uint32_t i)
{
    struct pol_list *g = &p->lists[POL_Q_GHOST];
    uint64_t size = p->nodes[i].size;
    if (size > p->ghost_budget) {
        tmt_pol_node_drop(p, i);
        return;
    }
    while (g->bytes + size > p->ghost_budget) {
        uint32_t t = g->tail;
        tmt_pol_unlink(p, t);
        tmt_pol_node_drop(p, t);
    }
    tmt_pol_push_head(p, POL_Q_GHOST, i);
}

static void evict_small(struct tmt_policy *p)
{
    struct pol_list *small = &p->lists[POL_Q_SMALL];
    while (small->n != 0) {
        uint32_t t = small->tail;
        tmt_pol_unlink(p, t);
        if (p->nodes[t].freq >= S3_MOVE_TO_MAIN) {
            p->nodes[t].freq = 0;
            tmt_pol_push_head(p, POL_Q_MAIN, t);
            continue;
        }
        uint64_t key = p->nodes[t].key, size = p->nodes[t].size;
        if (p->tiers != NULL)
            tmt_tiers_node_gone(p->tiers, t);
        ghost_add(p, t);
        if (p->on_evict != NULL)
            p->on_evict(p->arg, key, size);
        return;
    }
}

static void evict_main(struct tmt_policy *p)
{
    struct pol_list *main_q = &p->lists[POL_Q_MAIN];
    while (main_q->n != 0) {
        uint32_t t = main_q->tail;
        if (p->nodes[t].freq == 0) {
            tmt_pol_evict(p, t);
            return;
        }
        p->nodes[t].freq--;
        tmt_pol_unlink(p, t);
        tmt_pol_push_head(p, POL_Q_MAIN, t);
    }
}

static void evict_one(struct tmt_policy *p)
{
    p->has_evicted = true;
    if (p->lists[POL_Q_MAIN].bytes > p->main_budget || p->lists[POL_Q_SMALL].n == 0)
        evict_main(p);
    else
        evict_small(p);
}

static bool s3fifo_access(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                          const struct tmt_policy_hint *hint)
{
    (void)now_s;
    uint32_t i = tmt_pol_find(p, key);
    bool ghost = false;
    if (i != 0) {
        struct pol_node *n = &p->nodes[i];
        if (n->queue != POL_Q_GHOST) {
            if (n->freq < S3_FREQ_MAX)
                n->freq++;
            return true;
        }
        ghost = true;
        tmt_pol_unlink(p, i);
        tmt_pol_node_drop(p, i);
    }
    /* An object filling small would flush it at each admission: not admitted. */
    if (size > p->small_budget || (!ghost && size >= p->small_budget))
        return false;
    while (p->bytes + size > p->budget_bytes)
        evict_one(p);
    i = tmt_pol_node_new(p, key, size, hint);
    if (ghost || (!p->has_evicted && p->lists[POL_Q_SMALL].bytes >= p->small_budget))
        tmt_pol_push_head(p, POL_Q_MAIN, i);
    else
        tmt_pol_push_head(p, POL_Q_SMALL, i);
    return false;
}

const struct pol_ops tmt_pol_s3fifo_ops = {.access = s3fifo_access, .evict_one = evict_one};
