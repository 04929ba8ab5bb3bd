/*
 * cache_tiers.h: where the edge cache keeps each object: hot (RAM), warm (fast disk) or cold
 * (large disk). One model, used by tomato-edge to move bytes and by tomato-cachesim to replay
 * traces, so that a live edge and the simulator make the same decision for every request.
 *
 * What is kept is decided by one eviction policy (cache_policy.h) over the sum of the three
 * budgets: the policy's hit ratio is the cache's. Where it is kept follows recency: each tier is
 * a recency list with its own byte budget. A hit moves the object to the head of the hot tier
 * (a promotion when it came from below); a newly admitted object enters hot; when a tier is over
 * its budget its least recently used objects move down to the head of the next tier (hot ->
 * warm -> cold), and what overflows cold leaves. An object larger than a tier's budget skips
 * that tier (it enters, or is promoted to, the highest tier it fits in; a demotion goes to the
 * next tier it fits in, or out). Objects the policy evicts leave from whichever tier they are
 * on.
 *
 * Every change of place is reported through the move callback during the call that caused it,
 * in the order it happens, so the owner can copy bytes between its stores: from
 * TMT_TIER_NONE is an admission, to TMT_TIER_NONE a departure.
 *
 * Threads: not locked; one thread at a time (the owner serialises). Memory: one node per
 * resident object (shared with the policy's table), allocated on admission.
 */
#ifndef TMT_CACHE_TIERS_H
#define TMT_CACHE_TIERS_H

#include <stdbool.h>
#include <stdint.h>

#include "tmt/cache_policy.h"

enum tmt_tier {
    TMT_TIER_HOT,
    TMT_TIER_WARM,
    TMT_TIER_COLD,
    TMT_TIER_N,
    TMT_TIER_NONE = TMT_TIER_N, /* not stored */
};

/* "hot", "warm", "cold", or "none". */
const char *tmt_tier_name(enum tmt_tier t);

/*
 * key changed place from `from` to `to` (one of them may be TMT_TIER_NONE). It must not call
 * back into the tiers.
 */
typedef void tmt_tiers_move_fn(void *arg, uint64_t key, uint64_t size, enum tmt_tier from,
                               enum tmt_tier to);

struct tmt_tiers_opts {
    enum tmt_policy_kind policy;
    uint64_t budget[TMT_TIER_N]; /* bytes per tier; a tier of 0 holds nothing */
    /*
     * Largest object stored; larger ones are never admitted. The policy keeps twice this much
     * of the total free: the hot and warm tiers are packed to within one object, and the
     * reserve is what keeps cold within its budget without evictions the policy did not choose.
     * 0: the largest tier budget (no reserve is kept then: only for tests of the model).
     */
    uint64_t max_object;
    tmt_tiers_move_fn *on_move; /* may be NULL */
    void *arg;
};

struct tmt_tiers;

/* NULL if the kind is unknown or the budgets leave nothing beyond the reserve. */
struct tmt_tiers *tmt_tiers_new(const struct tmt_tiers_opts *o);
void tmt_tiers_free(struct tmt_tiers **t);

/*
 * One request for key (size bytes) at now_s (the caller's clock, non-decreasing). Returns the
 * tier it was served from, or TMT_TIER_NONE on a miss (after which the object may have been
 * admitted: see tmt_tiers_where). Moves are reported before this returns.
 */
enum tmt_tier tmt_tiers_access(struct tmt_tiers *t, uint64_t key, uint64_t size, uint64_t now_s,
                               const struct tmt_policy_hint *hint);

/*
 * Puts back an object the owner still holds in `tier` (a restart that found it on disk), as the
 * least recent of that tier, counted as one request. Returns false, reporting nothing, if the
 * policy does not take it or it does not fit the tier: the owner then deletes its copy. Moves
 * of other objects it causes are reported.
 */
bool tmt_tiers_restore(struct tmt_tiers *t, uint64_t key, uint64_t size, enum tmt_tier tier,
                       uint64_t now_s, const struct tmt_policy_hint *hint);

/* Takes key out (purge, corrupt copy) without reporting it. Returns its tier, or NONE. */
enum tmt_tier tmt_tiers_remove(struct tmt_tiers *t, uint64_t key);

/* Where key is, without counting a request. */
enum tmt_tier tmt_tiers_where(const struct tmt_tiers *t, uint64_t key);

/* Bytes and objects on a tier. */
uint64_t tmt_tiers_bytes(const struct tmt_tiers *t, enum tmt_tier tier);
uint64_t tmt_tiers_objects(const struct tmt_tiers *t, enum tmt_tier tier);
uint64_t tmt_tiers_budget(const struct tmt_tiers *t, enum tmt_tier tier);

#endif
