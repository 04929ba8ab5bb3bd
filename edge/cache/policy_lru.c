/*
 * policy_lru.c: least recently used, the floor. One list, newest at the head; a hit moves the
 * object to the head, a miss evicts from the tail until the new object fits.
 */
#include "policy_int.h"

static bool lru_access(struct tmt_policy *p, uint64_t key, uint64_t size, uint64_t now_s,
                       const struct tmt_policy_hint *hint)
{
    uint32_t i = tmt_pol_find(p, key);
    if (i != 0) {
        tmt_pol_unlink(p, i);
        tmt_pol_push_head(p, POL_Q_MAIN, i);
        return true;
    }
    if (size > p->budget_bytes)
        return false;
    while (p->bytes + size > p->budget_bytes)
        tmt_pol_evict(p, p->lists[POL_Q_MAIN].tail);
    (void)now_s;
    i = tmt_pol_node_new(p, key, size, hint);
    tmt_pol_push_head(p, POL_Q_MAIN, i);
    return false;
}

static void lru_evict_one(struct tmt_policy *p)
{
    tmt_pol_evict(p, p->lists[POL_Q_MAIN].tail);
}

const struct pol_ops tmt_pol_lru_ops = {.access = lru_access, .evict_one = lru_evict_one};
