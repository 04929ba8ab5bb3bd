/*
 * policy_sieve.c: SIEVE (Zhang et al., NSDI 2024). One FIFO, newest at the head. A hit only sets
 * the object's visited bit (no list move, which is what makes it cheap). To evict, the hand
 * walks from where it stopped last time towards the head (wrapping to the tail): a visited
 * object loses its bit and stays where it is, the first unvisited one leaves and the hand stops
 * on its newer neighbour. New objects enter at the head unvisited.
 */
#include "policy_int.h"

static void sieve_evict_one(struct tmt_policy *p)
{
    const struct pol_list *l = &p->lists[POL_Q_MAIN];
    uint32_t i = p->hand != 0 ? p->hand : l->tail;
    while (p->nodes[i].freq != 0) {
        p->nodes[i].freq = 0;
        i = p->nodes[i].prev != 0 ? p->nodes[i].prev : l->tail;
    }
    p->hand = p->nodes[i].prev;
    tmt_pol_evict(p, i);
}

static bool sieve_access(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                         const struct tmt_policy_hint *hint)
{
    uint32_t i = tmt_pol_find(p, key);
    if (i != 0) {
        p->nodes[i].freq = 1;
        return true;
    }
    if (size > p->budget_bytes)
        return false;
    while (p->bytes + size > p->budget_bytes)
        sieve_evict_one(p);
    (void)now_s;
    i = tmt_pol_node_new(p, key, size, hint);
    tmt_pol_push_head(p, POL_Q_MAIN, i);
    return false;
}

const struct pol_ops tmt_pol_sieve_ops = {.access = sieve_access, .evict_one = sieve_evict_one};
