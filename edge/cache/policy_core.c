/*
 * policy_core.c: the public entry points of the eviction policies and what they share: the
 * object table, the node pool and the lists (see policy_int.h).
 *
 * The table is open addressing with linear probing and backward-shift deletion (no tombstones,
 * so probe lengths do not degrade under churn); it holds node indices and compares the keys in
 * the nodes. It grows at 3/4 load, which happens only when a node is added (a miss).
 */
#include "tmt/cache_policy.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "policy_int.h"
#include "tmt/base.h"

static const char *const kind_names[] = {"lru", "s3fifo", "sieve", "segpool"};
/* One name per kind, in the order of TMT_POLICY_CHOICES. */
static_assert(TMT_ARRAY_LEN(kind_names) == TMT_POLICY_SEGPOOL + 1, "a policy kind has no name");

uint32_t tmt_pol_find(const struct tmt_policy *p, uint64_t key)
{
    for (uint64_t s = tmt_mix64(key) & p->slot_mask;; s = (s + 1) & p->slot_mask) {
        uint32_t i = p->slots[s];
        if (i == 0 || p->nodes[i].key == key)
            return i;
    }
}

static void slot_put(struct tmt_policy *p, uint32_t i)
{
    uint64_t s = tmt_mix64(p->nodes[i].key) & p->slot_mask;
    while (p->slots[s] != 0)
        s = (s + 1) & p->slot_mask;
    p->slots[s] = i;
}

static void table_grow(struct tmt_policy *p)
{
    uint64_t old_n = p->slot_mask + 1;
    uint32_t *old = p->slots;
    p->slots = tmt_xcalloc(old_n * 2, sizeof(*p->slots));
    p->slot_mask = old_n * 2 - 1;
    for (uint64_t s = 0; s < old_n; s++) {
        if (old[s] != 0)
            slot_put(p, old[s]);
    }
    free(old);
}

uint32_t tmt_pol_node_new(struct tmt_policy *p, uint64_t key, uint64_t size,
                          const struct tmt_policy_hint *hint)
{
    uint32_t i = p->free_nodes;
    if (i != 0) {
        p->free_nodes = p->nodes[i].next;
    } else {
        if (p->n_nodes == p->cap_nodes) {
            TMT_ASSERT(p->cap_nodes < UINT32_MAX / 2);
            p->cap_nodes *= 2;
            p->nodes = tmt_xrealloc(p->nodes, (size_t)p->cap_nodes * sizeof(*p->nodes));
        }
        i = p->n_nodes++;
    }
    p->nodes[i] = (struct pol_node){
        .key = key, .size = size, .group = hint->group, .position = hint->position};
    if ((p->n_slots_used + 1) * 4 > (p->slot_mask + 1) * 3)
        table_grow(p);
    slot_put(p, i);
    p->n_slots_used++;
    return i;
}

void tmt_pol_node_drop(struct tmt_policy *p, uint32_t i)
{
    TMT_DASSERT(p->nodes[i].queue == POL_Q_NONE);
    uint64_t s = tmt_mix64(p->nodes[i].key) & p->slot_mask;
    while (p->slots[s] != i)
        s = (s + 1) & p->slot_mask;
    /* Backward shift: move later members of the probe run into the hole when allowed. */
    uint64_t hole = s;
    for (uint64_t t = (s + 1) & p->slot_mask; p->slots[t] != 0; t = (t + 1) & p->slot_mask) {
        uint64_t home = tmt_mix64(p->nodes[p->slots[t]].key) & p->slot_mask;
        /* The entry at t may move to hole if its home is not in (hole, t] cyclically. */
        bool stays = hole <= t ? (home > hole && home <= t) : (home > hole || home <= t);
        if (!stays) {
            p->slots[hole] = p->slots[t];
            hole = t;
        }
    }
    p->slots[hole] = 0;
    p->n_slots_used--;
    p->nodes[i].next = p->free_nodes;
    p->free_nodes = i;
}

void tmt_pol_push_head(struct tmt_policy *p, enum pol_queue q, uint32_t i)
{
    struct pol_node *n = &p->nodes[i];
    struct pol_list *l = &p->lists[q];
    TMT_DASSERT(n->queue == POL_Q_NONE);
    n->queue = (uint8_t)q;
    n->prev = 0;
    n->next = l->head;
    if (l->head != 0)
        p->nodes[l->head].prev = i;
    else
        l->tail = i;
    l->head = i;
    l->bytes += n->size;
    l->n++;
    if (q != POL_Q_GHOST) {
        p->bytes += n->size;
        p->objects++;
    }
}

void tmt_pol_unlink(struct tmt_policy *p, uint32_t i)
{
    struct pol_node *n = &p->nodes[i];
    TMT_DASSERT(n->queue != POL_Q_NONE);
    struct pol_list *l = &p->lists[n->queue];
    if (n->prev != 0)
        p->nodes[n->prev].next = n->next;
    else
        l->head = n->next;
    if (n->next != 0)
        p->nodes[n->next].prev = n->prev;
    else
        l->tail = n->prev;
    l->bytes -= n->size;
    l->n--;
    if (n->queue != POL_Q_GHOST) {
        p->bytes -= n->size;
        p->objects--;
    }
    n->queue = POL_Q_NONE;
    n->prev = n->next = 0;
}

void tmt_pol_evict(struct tmt_policy *p, uint32_t i)
{
    uint64_t key = p->nodes[i].key, size = p->nodes[i].size;
    if (p->tiers != NULL)
        tmt_tiers_node_gone(p->tiers, i);
    if (p->hand == i)
        p->hand = p->nodes[i].prev;
    tmt_pol_unlink(p, i);
    tmt_pol_node_drop(p, i);
    if (p->on_evict != NULL)
        p->on_evict(p->arg, key, size);
}

void tmt_pol_remove(struct tmt_policy *p, uint32_t i)
{
    TMT_DASSERT(p->nodes[i].queue != POL_Q_GHOST);
    if (p->tiers != NULL)
        tmt_tiers_node_gone(p->tiers, i);
    /* SIEVE's hand must not point at a freed node: it moves to the newer neighbour. */
    if (p->hand == i)
        p->hand = p->nodes[i].prev;
    tmt_pol_unlink(p, i);
    tmt_pol_node_drop(p, i);
}

static void set_budget_fields(struct tmt_policy *p, uint64_t budget_bytes)
{
    p->budget_bytes = budget_bytes;
    /* S3-FIFO split, as in the paper and libCacheSim: 10 % small, the rest main, ghost 90 %. */
    p->small_budget = budget_bytes / 10;
    p->main_budget = budget_bytes - p->small_budget;
    p->ghost_budget = budget_bytes / 10 * 9;
}

struct tmt_policy *tmt_pol_new_mini(enum tmt_policy_kind kind, uint64_t budget_bytes,
                                    const struct tmt_pol_mini *m)
{
    const struct pol_ops *ops;
    switch (kind) {
    case TMT_POLICY_LRU:
        ops = &tmt_pol_lru_ops;
        break;
    case TMT_POLICY_S3FIFO:
        ops = &tmt_pol_s3fifo_ops;
        break;
    case TMT_POLICY_SIEVE:
        ops = &tmt_pol_sieve_ops;
        break;
    case TMT_POLICY_SEGPOOL:
        ops = &tmt_pol_segpool_ops;
        break;
    default:
        return NULL;
    }
    if (budget_bytes == 0)
        return NULL;
    TMT_ASSERT(m->initial_nodes >= 2 && m->bands_log2 >= 1 && m->bands_log2 < 32);
    struct tmt_policy *p = tmt_xcalloc(1, sizeof(*p));
    p->magic = TMT_POLICY_MAGIC;
    p->kind = kind;
    p->ops = ops;
    p->cap_nodes = m->initial_nodes;
    p->nodes = tmt_xmalloc((size_t)p->cap_nodes * sizeof(*p->nodes));
    memset(&p->nodes[0], 0, sizeof(p->nodes[0]));
    p->n_nodes = 1;
    /* The table starts at twice the nodes, so the first growths are of the nodes only. */
    uint64_t n_slots = 4;
    while (n_slots < 2 * (uint64_t)m->initial_nodes)
        n_slots *= 2;
    p->slot_mask = n_slots - 1;
    p->slots = tmt_xcalloc(n_slots, sizeof(*p->slots));
    p->bands_log2 = m->bands_log2;
    p->band_weight = m->band_weight;
    p->all_starts = m->all_starts;
    set_budget_fields(p, budget_bytes);
    if (ops->init != NULL)
        ops->init(p);
    return p;
}

struct tmt_policy *tmt_policy_new(enum tmt_policy_kind kind, uint64_t budget_bytes,
                                  tmt_policy_evict_fn *on_evict, void *arg)
{
    static const struct tmt_pol_mini full = {
        .initial_nodes = 1024, .bands_log2 = 18, .band_weight = 1.0};
    struct tmt_policy *p = tmt_pol_new_mini(kind, budget_bytes, &full);
    if (p != NULL) {
        p->on_evict = on_evict;
        p->arg = arg;
    }
    return p;
}

void tmt_pol_set_band_weight(struct tmt_policy *p, double weight)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    p->band_weight = weight;
}

void tmt_pol_observe_start(struct tmt_policy *p, uint64_t now_s, const struct tmt_policy_hint *hint)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    if (p->ops->observe_start != NULL && hint != NULL && hint->group != 0 && hint->position == 1)
        p->ops->observe_start(p, now_s, hint->group);
}

void tmt_pol_set_budget(struct tmt_policy *p, uint64_t budget_bytes)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    TMT_ASSERT(budget_bytes != 0);
    set_budget_fields(p, budget_bytes);
    while (p->bytes > p->budget_bytes)
        p->ops->evict_one(p);
    /* S3-FIFO's ghosts follow their own budget. */
    struct pol_list *g = &p->lists[POL_Q_GHOST];
    while (g->n != 0 && g->bytes > p->ghost_budget) {
        uint32_t t = g->tail;
        tmt_pol_unlink(p, t);
        tmt_pol_node_drop(p, t);
    }
}

size_t tmt_pol_memory(const struct tmt_policy *p)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    size_t n = sizeof(*p) + (size_t)p->cap_nodes * sizeof(*p->nodes) +
               (size_t)(p->slot_mask + 1) * sizeof(*p->slots);
    if (p->ops->memory != NULL)
        n += p->ops->memory(p);
    return n;
}

size_t tmt_pol_growth(const struct tmt_policy *p)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    size_t n = 0;
    if (p->free_nodes == 0 && p->n_nodes == p->cap_nodes)
        n += (size_t)p->cap_nodes * sizeof(*p->nodes);
    if ((p->n_slots_used + 1) * 4 > (p->slot_mask + 1) * 3)
        n += (size_t)(p->slot_mask + 1) * sizeof(*p->slots);
    return n;
}

void tmt_pol_compact(struct tmt_policy *p)
{
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    /* The live nodes are exactly those in the table; old index -> new index. */
    uint32_t live = (uint32_t)p->n_slots_used;
    uint32_t *map = tmt_xcalloc(p->n_nodes, sizeof(*map));
    uint32_t next = 1;
    for (uint32_t i = 1; i < p->n_nodes; i++) {
        if (tmt_pol_find(p, p->nodes[i].key) == i)
            map[i] = next++;
    }
    TMT_ASSERT(next == live + 1);
    uint32_t cap = TMT_MAX(live + live / 4 + 2, 2u);
    struct pol_node *nodes = tmt_xmalloc((size_t)cap * sizeof(*nodes));
    memset(&nodes[0], 0, sizeof(nodes[0]));
    for (uint32_t i = 1; i < p->n_nodes; i++) {
        if (map[i] == 0)
            continue;
        struct pol_node n = p->nodes[i];
        n.prev = map[n.prev];
        n.next = map[n.next];
        n.tprev = map[n.tprev];
        n.tnext = map[n.tnext];
        nodes[map[i]] = n;
    }
    for (unsigned q = 0; q < POL_Q_N; q++) {
        p->lists[q].head = map[p->lists[q].head];
        p->lists[q].tail = map[p->lists[q].tail];
    }
    p->hand = map[p->hand];
    free(map);
    free(p->nodes);
    p->nodes = nodes;
    p->n_nodes = live + 1;
    p->cap_nodes = cap;
    p->free_nodes = 0;
    uint64_t n_slots = 4;
    while (n_slots * 3 < ((uint64_t)live + 1) * 4 * 2)
        n_slots *= 2;
    free(p->slots);
    p->slot_mask = n_slots - 1;
    p->slots = tmt_xcalloc(n_slots, sizeof(*p->slots));
    for (uint32_t i = 1; i <= live; i++)
        slot_put(p, i);
}

void tmt_policy_free(struct tmt_policy **policy)
{
    struct tmt_policy *p = *policy;
    if (p == NULL)
        return;
    TMT_CHECK_OBJ(p, TMT_POLICY_MAGIC);
    if (p->ops->fini != NULL)
        p->ops->fini(p);
    free(p->slots);
    free(p->nodes);
    p->magic = 0;
    free(p);
    *policy = NULL;
}

bool tmt_policy_access(struct tmt_policy *policy, uint64_t key, uint64_t size, uint64_t now_s,
                       const struct tmt_policy_hint *hint)
{
    static const struct tmt_policy_hint no_hint = {0, 0};
    TMT_CHECK_OBJ(policy, TMT_POLICY_MAGIC);
    bool hit = policy->ops->access(policy, key, size, now_s, hint != NULL ? hint : &no_hint);
    TMT_ASSERT(policy->bytes <= policy->budget_bytes);
    return hit;
}

bool tmt_policy_remove(struct tmt_policy *policy, uint64_t key)
{
    TMT_CHECK_OBJ(policy, TMT_POLICY_MAGIC);
    uint32_t i = tmt_pol_find(policy, key);
    if (i == 0 || policy->nodes[i].queue == POL_Q_GHOST)
        return false;
    tmt_pol_remove(policy, i);
    return true;
}

bool tmt_policy_contains(const struct tmt_policy *policy, uint64_t key)
{
    TMT_CHECK_OBJ(policy, TMT_POLICY_MAGIC);
    uint32_t i = tmt_pol_find(policy, key);
    return i != 0 && policy->nodes[i].queue != POL_Q_GHOST;
}

uint64_t tmt_policy_bytes(const struct tmt_policy *policy)
{
    TMT_CHECK_OBJ(policy, TMT_POLICY_MAGIC);
    return policy->bytes;
}

uint64_t tmt_policy_objects(const struct tmt_policy *policy)
{
    TMT_CHECK_OBJ(policy, TMT_POLICY_MAGIC);
    return policy->objects;
}

const char *tmt_policy_kind_name(enum tmt_policy_kind kind)
{
    if ((unsigned)kind >= TMT_ARRAY_LEN(kind_names))
        return NULL;
    return kind_names[kind];
}

bool tmt_policy_kind_parse(const char *name, enum tmt_policy_kind *kind)
{
    for (size_t k = 0; k < TMT_ARRAY_LEN(kind_names); k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (enum tmt_policy_kind)k;
            return true;
        }
    }
    return false;
}

void tmt_policy_hint_of_key(const char *k, size_t len, struct tmt_policy_hint *h)
{
    h->group = 0;
    h->position = 0;
    if (len < 4 || memcmp(k, "/v/", 3) != 0)
        return;
    const char *a = k + 3, *end = k + len;
    const char *slash = memchr(a, '/', (size_t)(end - a));
    if (slash == NULL)
        return;
    h->group = XXH3_64bits(a, (size_t)(slash - a));
    const char *last = end;
    while (last > slash && last[-1] != '/')
        last--;
    if (last == slash + 1)
        return; /* /v/{asset}/master.m3u8 */
    uint32_t n = 0;
    const char *q = last;
    while (q < end && *q >= '0' && *q <= '9' && n < 100000000)
        n = n * 10 + (uint32_t)(*q++ - '0');
    if (q > last && end - q == 4 && memcmp(q, ".m4s", 4) == 0)
        h->position = n;
}
