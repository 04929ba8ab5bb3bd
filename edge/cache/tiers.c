/*
 * tiers.c: places the objects a policy keeps on the hot, warm and cold tiers (see
 * cache_tiers.h). The tier lists link the policy's own nodes (fields tier, tprev, tnext), so one
 * probe of the policy's table finds an object's policy state and its place.
 */
#include "tmt/cache_tiers.h"

#include <stdlib.h>

#include "policy_int.h"
#include "tmt/base.h"

#define TIERS_MAGIC 0x71e25000u

struct tmt_tiers {
    unsigned magic;
    struct tmt_policy *p;
    uint64_t budget[TMT_TIER_N];
    uint64_t max_object;
    struct pol_list lists[TMT_TIER_N]; /* head newest; linked through tprev/tnext */
    tmt_tiers_move_fn *on_move;
    void *arg;
};

static const char *const tier_names[] = {"hot", "warm", "cold", "none"};

const char *tmt_tier_name(enum tmt_tier t)
{
    return (unsigned)t <= TMT_TIER_NONE ? tier_names[t] : "none";
}

static enum tmt_tier node_tier(const struct pol_node *n)
{
    return n->tier == 0 ? TMT_TIER_NONE : (enum tmt_tier)(n->tier - 1);
}

static void tier_push_head(struct tmt_tiers *t, enum tmt_tier tier, uint32_t i)
{
    struct pol_node *nodes = t->p->nodes;
    struct pol_list *l = &t->lists[tier];
    nodes[i].tier = (uint8_t)(tier + 1);
    nodes[i].tprev = 0;
    nodes[i].tnext = l->head;
    if (l->head != 0)
        nodes[l->head].tprev = i;
    else
        l->tail = i;
    l->head = i;
    l->bytes += nodes[i].size;
    l->n++;
}

static void tier_push_tail(struct tmt_tiers *t, enum tmt_tier tier, uint32_t i)
{
    struct pol_node *nodes = t->p->nodes;
    struct pol_list *l = &t->lists[tier];
    nodes[i].tier = (uint8_t)(tier + 1);
    nodes[i].tnext = 0;
    nodes[i].tprev = l->tail;
    if (l->tail != 0)
        nodes[l->tail].tnext = i;
    else
        l->head = i;
    l->tail = i;
    l->bytes += nodes[i].size;
    l->n++;
}

static void tier_unlink(struct tmt_tiers *t, uint32_t i)
{
    struct pol_node *nodes = t->p->nodes;
    struct pol_node *n = &nodes[i];
    struct pol_list *l = &t->lists[node_tier(n)];
    if (n->tprev != 0)
        nodes[n->tprev].tnext = n->tnext;
    else
        l->head = n->tnext;
    if (n->tnext != 0)
        nodes[n->tnext].tprev = n->tprev;
    else
        l->tail = n->tprev;
    l->bytes -= n->size;
    l->n--;
    n->tier = 0;
    n->tprev = n->tnext = 0;
}

static void report(struct tmt_tiers *t, uint64_t key, uint64_t size, enum tmt_tier from,
                   enum tmt_tier to)
{
    if (t->on_move != NULL)
        t->on_move(t->arg, key, size, from, to);
}

void tmt_tiers_node_gone(struct tmt_tiers *t, uint32_t i)
{
    const struct pol_node *n = &t->p->nodes[i];
    enum tmt_tier from = node_tier(n);
    if (from == TMT_TIER_NONE)
        return;
    uint64_t key = n->key, size = n->size;
    tier_unlink(t, i);
    report(t, key, size, from, TMT_TIER_NONE);
}

/* The first tier from `from` down whose budget holds size bytes, or NONE. */
static enum tmt_tier first_fit(const struct tmt_tiers *t, enum tmt_tier from, uint64_t size)
{
    for (unsigned k = from; k < TMT_TIER_N; k++) {
        if (t->budget[k] != 0 && size <= t->budget[k])
            return (enum tmt_tier)k;
    }
    return TMT_TIER_NONE;
}

/*
 * Keeps the tiers packed from the top. A tier over its budget sends its least recent objects
 * down (to the next tier they fit in, or out). A tier with room takes the most recent objects
 * of the tiers below while they fit: the policy evicts from any tier, and without this the room
 * an eviction leaves in hot or warm would be pushed onto cold, which would then have to evict
 * more than the policy chose. What still overflows cold (the tiers above are packed to within
 * one object) is evicted by the policy's own choice, never by cold's recency: that would replace
 * the policy with LRU.
 */
static void cascade(struct tmt_tiers *t)
{
    struct pol_node *nodes;
    for (;;) {
        for (unsigned k = 0; k + 1 < TMT_TIER_N; k++) {
            while (t->lists[k].bytes > t->budget[k]) {
                uint32_t v = t->lists[k].tail;
                nodes = t->p->nodes;
                enum tmt_tier to = first_fit(t, (enum tmt_tier)(k + 1), nodes[v].size);
                if (to == TMT_TIER_NONE) {
                    tmt_pol_remove(t->p, v); /* reports the departure through node_gone */
                    continue;
                }
                tier_unlink(t, v);
                tier_push_head(t, to, v);
                report(t, nodes[v].key, nodes[v].size, (enum tmt_tier)k, to);
            }
        }
        for (unsigned k = 0; k + 1 < TMT_TIER_N; k++) {
            for (unsigned below = k + 1; below < TMT_TIER_N; below++) {
                if (t->lists[below].n == 0)
                    continue;
                for (;;) {
                    uint32_t v = t->lists[below].head;
                    nodes = t->p->nodes;
                    if (v == 0 || t->lists[k].bytes + nodes[v].size > t->budget[k])
                        break;
                    tier_unlink(t, v);
                    tier_push_tail(t, (enum tmt_tier)k, v);
                    report(t, nodes[v].key, nodes[v].size, (enum tmt_tier)below, (enum tmt_tier)k);
                }
                break;
            }
        }
        if (t->lists[TMT_TIER_COLD].bytes <= t->budget[TMT_TIER_COLD])
            return;
        t->p->ops->evict_one(t->p);
    }
}

struct tmt_tiers *tmt_tiers_new(const struct tmt_tiers_opts *o)
{
    uint64_t total = 0, largest = 0;
    for (unsigned k = 0; k < TMT_TIER_N; k++) {
        TMT_ASSERT(o->budget[k] <= UINT64_MAX / 4);
        total += o->budget[k];
        largest = TMT_MAX(largest, o->budget[k]);
    }
    uint64_t reserve = 0, max_object = largest;
    if (o->max_object != 0) {
        max_object = TMT_MIN(o->max_object, largest);
        reserve = 2 * max_object;
    }
    if (total <= reserve)
        return NULL;
    struct tmt_policy *p = tmt_policy_new(o->policy, total - reserve, NULL, NULL);
    if (p == NULL)
        return NULL;
    struct tmt_tiers *t = tmt_xcalloc(1, sizeof(*t));
    t->magic = TIERS_MAGIC;
    t->p = p;
    for (unsigned k = 0; k < TMT_TIER_N; k++)
        t->budget[k] = o->budget[k];
    t->max_object = max_object;
    t->on_move = o->on_move;
    t->arg = o->arg;
    p->tiers = t;
    return t;
}

void tmt_tiers_free(struct tmt_tiers **tp)
{
    struct tmt_tiers *t = *tp;
    if (t == NULL)
        return;
    TMT_CHECK_OBJ(t, TIERS_MAGIC);
    tmt_policy_free(&t->p);
    t->magic = 0;
    free(t);
    *tp = NULL;
}

enum tmt_tier tmt_tiers_access(struct tmt_tiers *t, uint64_t key, uint64_t size, uint64_t now_s,
                               const struct tmt_policy_hint *hint)
{
    TMT_CHECK_OBJ(t, TIERS_MAGIC);
    if (size > t->max_object)
        return TMT_TIER_NONE;
    enum tmt_tier from = tmt_tiers_where(t, key);
    bool hit = tmt_policy_access(t->p, key, size, now_s, hint);
    uint32_t i = tmt_pol_find(t->p, key);
    if (hit) {
        /* A policy hit never evicts, so the object is where it was. */
        TMT_ASSERT(from != TMT_TIER_NONE && i != 0);
        struct pol_node *n = &t->p->nodes[i];
        enum tmt_tier to = first_fit(t, TMT_TIER_HOT, n->size);
        tier_unlink(t, i);
        tier_push_head(t, to, i);
        if (to != from)
            report(t, key, n->size, from, to);
        cascade(t);
        return from;
    }
    if (i == 0 || t->p->nodes[i].queue == POL_Q_GHOST || t->p->nodes[i].queue == POL_Q_NONE)
        return TMT_TIER_NONE;
    /* Admitted: into the highest tier it fits (the policy's budget is the sum, so one does). */
    uint64_t osize = t->p->nodes[i].size;
    enum tmt_tier to = first_fit(t, TMT_TIER_HOT, osize);
    if (to == TMT_TIER_NONE) {
        tmt_pol_remove(t->p, i);
        return TMT_TIER_NONE;
    }
    tier_push_head(t, to, i);
    report(t, key, osize, TMT_TIER_NONE, to);
    cascade(t);
    return TMT_TIER_NONE;
}

bool tmt_tiers_restore(struct tmt_tiers *t, uint64_t key, uint64_t size, enum tmt_tier tier,
                       uint64_t now_s, const struct tmt_policy_hint *hint)
{
    TMT_CHECK_OBJ(t, TIERS_MAGIC);
    TMT_ASSERT(tier < TMT_TIER_N);
    enum tmt_tier was = tmt_tiers_where(t, key);
    if (was != TMT_TIER_NONE)
        return false; /* a second copy: the first one stays */
    if (size > t->budget[tier] || size > t->max_object)
        return false;
    if (tmt_policy_access(t->p, key, size, now_s, hint))
        return false;
    uint32_t i = tmt_pol_find(t->p, key);
    if (i == 0 || t->p->nodes[i].queue == POL_Q_GHOST || t->p->nodes[i].queue == POL_Q_NONE)
        return false;
    tier_push_tail(t, tier, i);
    if (t->lists[tier].bytes > t->budget[tier]) {
        /* It would be the first to move down: refuse it instead, the owner deletes it. */
        tier_unlink(t, i);
        tmt_pol_remove(t->p, i);
        return false;
    }
    return true;
}

enum tmt_tier tmt_tiers_remove(struct tmt_tiers *t, uint64_t key)
{
    TMT_CHECK_OBJ(t, TIERS_MAGIC);
    uint32_t i = tmt_pol_find(t->p, key);
    if (i == 0)
        return TMT_TIER_NONE;
    enum tmt_tier from = node_tier(&t->p->nodes[i]);
    if (from == TMT_TIER_NONE)
        return TMT_TIER_NONE;
    tier_unlink(t, i); /* unreported: the caller asked */
    tmt_pol_remove(t->p, i);
    return from;
}

enum tmt_tier tmt_tiers_where(const struct tmt_tiers *t, uint64_t key)
{
    TMT_CHECK_OBJ(t, TIERS_MAGIC);
    uint32_t i = tmt_pol_find(t->p, key);
    return i == 0 ? TMT_TIER_NONE : node_tier(&t->p->nodes[i]);
}

uint64_t tmt_tiers_bytes(const struct tmt_tiers *t, enum tmt_tier tier)
{
    TMT_ASSERT(tier < TMT_TIER_N);
    return t->lists[tier].bytes;
}

uint64_t tmt_tiers_objects(const struct tmt_tiers *t, enum tmt_tier tier)
{
    TMT_ASSERT(tier < TMT_TIER_N);
    return t->lists[tier].n;
}

uint64_t tmt_tiers_budget(const struct tmt_tiers *t, enum tmt_tier tier)
{
    TMT_ASSERT(tier < TMT_TIER_N);
    return t->budget[tier];
}
