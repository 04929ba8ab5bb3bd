/*
 * cache_policy.h: the edge cache's eviction policy, shared by tomato-edge (one policy per tier)
 * and tomato-cachesim (which replays traces through this exact code).
 *
 * A policy keeps only metadata: 64-bit object keys and their sizes in bytes, never the bytes
 * themselves, and no sockets, storage or clocks. The caller reports every request with
 * tmt_policy_access(); on a miss the policy decides whether to admit the object and which
 * objects leave to make room, and reports each departure through the eviction callback so the
 * owner can drop the bytes or demote them to the next tier.
 *
 * Invariants: the bytes of resident objects never exceed the budget; an object larger than the
 * budget (or than what the policy can hold, see the kinds) is never admitted; an object is
 * resident at most once; every admitted object leaves either through the callback or through
 * tmt_policy_free() (which does not call the callback).
 *
 * Threads: a policy is not locked; one thread uses it at a time (the owner serialises).
 * Memory: per-object metadata is allocated on admission (amortised; a hit allocates nothing) and
 * freed with the policy. Allocation failure aborts (tmt_xmalloc).
 */
#ifndef TMT_CACHE_POLICY_H
#define TMT_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The policies. The numbering is the order of the names accepted by tmt_policy_kind_parse()
 * and by the sim.policy setting.
 */
enum tmt_policy_kind {
    /* Least recently used: the floor every other policy must beat. */
    TMT_POLICY_LRU,
    /*
     * S3-FIFO (Yang et al., SOSP 2023): a small FIFO of 10 % of the budget takes new objects; those
     * hit at least twice there move to the main FIFO, the others leave and are remembered in a
     * ghost FIFO (keys only, 90 % of the budget counted in object bytes); a miss on a ghost key
     * goes straight to main. Main is a FIFO with reinsertion and a 2-bit frequency (CLOCK-2).
     * Objects of at least a tenth of the budget are not admitted unless their key is a ghost.
     */
    TMT_POLICY_S3FIFO,
    /* SIEVE (Zhang et al., NSDI 2024): one FIFO, a visited bit, a hand that sweeps from old to new.
     */
    TMT_POLICY_SIEVE,
    /*
     * Segment-pooled frequency, the edge's own policy, for media whose viewers read an asset's
     * segments in order and mostly stop early. An object's expected request rate is estimated
     * from its own requests plus those of its band (the same group, positions in the same
     * power-of-two range: a segment's neighbours, which later viewers will also read), both as
     * counts that decay with time; the half-life follows the cache's own eviction age, so it
     * scales with the budget and the traffic instead of being tuned to one trace. To make room
     * it samples resident objects and evicts the one with the lowest estimate; a new object
     * whose estimate is below that victim's is not admitted (one-hit wonders and the late
     * segments of cold assets stay out). Without hints it is a sampled decayed-LFU with the same
     * admission rule.
     */
    TMT_POLICY_SEGPOOL,
};

/* "lru", "s3fifo", "sieve", "segpool", in enum order, '|'-separated (for settings tables). */
#define TMT_POLICY_CHOICES "lru|s3fifo|sieve|segpool"

/*
 * Called for each object that leaves the policy to make room, with its key and size as given
 * on admission, during the tmt_policy_access() that needed the room. It must not call back
 * into the same policy.
 */
typedef void tmt_policy_evict_fn(void *arg, uint64_t key, uint64_t size);

struct tmt_policy;

/*
 * What the key tells about an object beyond its identity, for policies that use it (the others
 * ignore it). A group is a set of objects that viewers read in order, such as the renditions of
 * one asset; position is the object's place in that order (a media segment's number, from 1),
 * or 0 for objects outside the order (playlists, init segments) or when unknown.
 */
struct tmt_policy_hint {
    uint64_t group;
    uint32_t position;
};

/*
 * The hint of a cache key (a normalized path): under /v/{asset}/ the group is the XXH3-64 hash of
 * the asset id, and {n}.m4s (a media segment) gives position n; other keys have no group (0) and
 * position 0. tomato-edge and tomato-cachesim (with path keys) both call this.
 */
void tmt_policy_hint_of_key(const char *key, size_t len, struct tmt_policy_hint *hint);

/*
 * Creates an empty policy holding at most budget_bytes of objects. on_evict may be NULL.
 * Returns NULL for an unknown kind or a zero budget.
 */
struct tmt_policy *tmt_policy_new(enum tmt_policy_kind kind, uint64_t budget_bytes,
                                  tmt_policy_evict_fn *on_evict, void *arg);

/* Frees the policy and its metadata without calling the eviction callback; NULLs *policy. */
void tmt_policy_free(struct tmt_policy **policy);

/*
 * Reports one request for key (size bytes; a key keeps its size) at now_s seconds of the
 * caller's clock (non-decreasing). hint may be NULL (no group, no position); it is read during
 * the call only. Returns true on a hit. On a miss the object may be admitted, evicting others
 * first (each reported through the callback before this returns).
 */
bool tmt_policy_access(struct tmt_policy *policy, uint64_t key, uint64_t size, uint64_t now_s,
                       const struct tmt_policy_hint *hint);

/*
 * Takes key out of the cache without the eviction callback (a purge, a stored copy found
 * corrupt). Returns false if it was not resident. What the policy learnt about the key's
 * requests (frequencies, ghosts) is kept where the policy keeps it.
 */
bool tmt_policy_remove(struct tmt_policy *policy, uint64_t key);

/* True if key is resident (does not count as an access and changes nothing). */
bool tmt_policy_contains(const struct tmt_policy *policy, uint64_t key);

/* Bytes and number of resident objects. */
uint64_t tmt_policy_bytes(const struct tmt_policy *policy);
uint64_t tmt_policy_objects(const struct tmt_policy *policy);

/* Name of a kind ("lru"...), or NULL. */
const char *tmt_policy_kind_name(enum tmt_policy_kind kind);

/* Parses a name from TMT_POLICY_CHOICES. Returns false for an unknown name. */
bool tmt_policy_kind_parse(const char *name, enum tmt_policy_kind *kind);

#endif
