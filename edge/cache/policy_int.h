/*
 * policy_int.h: what the policy_*.c files share: the object table (open addressing keyed by the
 * 64-bit key, values are node indices), the node pool and intrusive doubly linked lists of
 * nodes.
 *
 * Nodes live in one array indexed from 1 (index 0 is "none"), so lists link by 32-bit indices
 * and the array may move when it grows (only on admission, never on a hit). A node is either
 * resident (counted in bytes/objects) or a ghost (a remembered key without bytes, S3-FIFO);
 * both are in the table so one probe answers both questions.
 */
#ifndef TMT_POLICY_INT_H
#define TMT_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/cache_policy.h"

#define TMT_POLICY_MAGIC 0x5e1ec7edu

/* Which list a node is on. */
enum pol_queue {
    POL_Q_NONE,
    POL_Q_MAIN,  /* LRU, SIEVE, S3-FIFO main FIFO, segpool admission order */
    POL_Q_SMALL, /* S3-FIFO small FIFO */
    POL_Q_GHOST, /* S3-FIFO ghost FIFO (not resident) */
    POL_Q_N,
};

struct pol_node {
    uint64_t key;
    uint64_t size;
    uint64_t group;    /* from the hint */
    uint64_t last_s;   /* segment-pooled frequency: time of count */
    uint32_t prev;     /* towards the head (newer) */
    uint32_t next;     /* towards the tail (older); freelist link when free */
    uint32_t position; /* from the hint */
    float count;       /* segment-pooled frequency: decayed request count at last_s */
    uint8_t queue;     /* enum pol_queue */
    uint8_t freq;      /* S3-FIFO hit count; SIEVE visited bit */
    uint8_t tier;      /* tiers.c: enum tmt_tier + 1, 0 = on no tier */
    uint32_t tprev;    /* tiers.c: the tier's recency list, towards the head (newer) */
    uint32_t tnext;    /* tiers.c: towards the tail (older) */
};

/* head is the newest node, tail the oldest. */
struct pol_list {
    uint32_t head, tail;
    uint64_t bytes;
    uint64_t n;
};

struct pol_ops {
    /* Optional: set up and tear down the policy's own state. */
    void (*init)(struct tmt_policy *p);
    void (*fini)(struct tmt_policy *p);
    /* hint is never NULL here. */
    bool (*access)(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                   const struct tmt_policy_hint *hint);
    /* Evicts the object the policy would evict next (at least one is resident). */
    void (*evict_one)(struct tmt_policy *p);
    /* Optional: a session of group started (all_starts; see tmt_pol_mini). */
    void (*observe_start)(struct tmt_policy *p, uint64_t now_s, uint64_t group);
    /* Optional: bytes of the policy's own state beyond the table and the nodes. */
    size_t (*memory)(const struct tmt_policy *p);
};

struct tmt_policy {
    unsigned magic;
    enum tmt_policy_kind kind;
    const struct pol_ops *ops;
    uint64_t budget_bytes;
    uint64_t bytes;   /* resident */
    uint64_t objects; /* resident */
    tmt_policy_evict_fn *on_evict;
    void *arg;

    struct pol_node *nodes;
    uint32_t n_nodes; /* used prefix of nodes, including index 0 */
    uint32_t cap_nodes;
    uint32_t free_nodes; /* freelist head */

    uint32_t *slots; /* node index or 0 */
    uint64_t slot_mask;
    uint64_t n_slots_used;

    struct pol_list lists[POL_Q_N];

    /* S3-FIFO */
    uint64_t small_budget, main_budget, ghost_budget;
    bool has_evicted;
    /* SIEVE */
    uint32_t hand;
    /* segment-pooled frequency (policy_segpool.c) */
    struct pol_segpool *segpool;
    unsigned bands_log2; /* size of its band table, set before init */
    double band_weight;  /* what one request adds to its band's count */
    bool all_starts;     /* every session start of the stream comes via tmt_pol_observe_start */
    /* The tiers this policy places (tiers.c), told of every node that leaves; NULL if none. */
    struct tmt_tiers *tiers;
};

extern const struct pol_ops tmt_pol_lru_ops;
extern const struct pol_ops tmt_pol_sieve_ops;
extern const struct pol_ops tmt_pol_s3fifo_ops;
extern const struct pol_ops tmt_pol_segpool_ops;

/* Node index of key (resident or ghost), or 0. */
uint32_t tmt_pol_find(const struct tmt_policy *p, uint64_t key);
/* A new node for key (which must be absent), in the table, on no list. */
uint32_t tmt_pol_node_new(struct tmt_policy *p, uint64_t key, uint64_t size,
                          const struct tmt_policy_hint *hint);
/* Removes node i from the table and frees it (it must be on no list). */
void tmt_pol_node_drop(struct tmt_policy *p, uint32_t i);

/* Lists. Putting a node on a non-ghost list counts it as resident. */
void tmt_pol_push_head(struct tmt_policy *p, enum pol_queue q, uint32_t i);
void tmt_pol_unlink(struct tmt_policy *p, uint32_t i);

/* Unlinks resident node i, reports it to the callback and frees it. */
void tmt_pol_evict(struct tmt_policy *p, uint32_t i);

/* Unlinks resident node i and frees it without the callback (removal by the owner). */
void tmt_pol_remove(struct tmt_policy *p, uint32_t i);

/*
 * Miniature simulations (mrc.c) run the same policies on a sample of the requests at a scaled
 * budget. They need a policy that starts small and counts its memory, a band weight of 1/R (a
 * band's count then estimates the whole stream's from a sample at rate R), and, when the sample
 * rate is lowered, a smaller budget and arrays shrunk to what is left.
 */
struct tmt_pol_mini {
    uint32_t initial_nodes; /* node array capacity at start (at least 2) */
    unsigned bands_log2;    /* segment-pooled frequency: band table of 2^bands_log2 entries */
    double band_weight;     /* added to a band's count per request (1 for the full stream) */
    /*
     * A sample's policy told of every request of the whole stream that starts a session
     * (position 1), sampled or not, by tmt_pol_observe_start: a key sample rarely holds an
     * asset's first segments, and segment-pooled frequency scales a young asset by its starts.
     */
    bool all_starts;
};

/* tmt_policy_new with the settings above. NULL for an unknown kind or a zero budget. */
struct tmt_policy *tmt_pol_new_mini(enum tmt_policy_kind kind, uint64_t budget_bytes,
                                    const struct tmt_pol_mini *m);
void tmt_pol_set_band_weight(struct tmt_policy *p, double weight);
/* A request of the whole stream for position 1 of a group (see all_starts); others are ignored. */
void tmt_pol_observe_start(struct tmt_policy *p, uint64_t now_s,
                           const struct tmt_policy_hint *hint);
/* Sets a new budget; the policy evicts (without the callback) until it fits. */
void tmt_pol_set_budget(struct tmt_policy *p, uint64_t budget_bytes);
/* Bytes allocated for the policy (structs, table, nodes, own state), by capacity. */
size_t tmt_pol_memory(const struct tmt_policy *p);
/* Bytes the next admission may add to tmt_pol_memory() (a growth of the table or the nodes). */
size_t tmt_pol_growth(const struct tmt_policy *p);
/* Renumbers the live nodes densely and shrinks the node array and the table to fit them. */
void tmt_pol_compact(struct tmt_policy *p);

/* tiers.c: resident node i is leaving the policy; take it off its tier. */
void tmt_tiers_node_gone(struct tmt_tiers *t, uint32_t i);

#endif
