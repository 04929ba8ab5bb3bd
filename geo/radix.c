/*
 * radix.c: the coverage zones' longest-prefix match, a path-compressed binary trie (one per
 * family; layout in geo_int.h).
 *
 * Built once from the parsed prefixes, in file order, into an array sized for the worst case
 * (2n - 1 nodes) and then shrunk to what was used; read-only afterwards, so lookups need no lock.
 * A lookup walks from the root, checking at each node that the key still shares the node's bits
 * (the compression skipped them) and remembering the last prefix node that matched: at most one
 * node per distinct prefix length on the way, and no allocation.
 */
#include "geo_int.h"

#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"

/* Number of leading bits a and b share, at most max. */
static unsigned common_bits(const uint64_t a[2], const uint64_t b[2], unsigned max)
{
    uint64_t x = a[0] ^ b[0];
    unsigned n;
    if (x != 0) {
        n = (unsigned)__builtin_clzll(x);
    } else {
        x = a[1] ^ b[1];
        n = x != 0 ? 64 + (unsigned)__builtin_clzll(x) : 128;
    }
    return n < max ? n : max;
}

static uint32_t new_node(struct geo_trie *t, const uint64_t k[2], unsigned plen, int32_t prefix)
{
    uint32_t i = t->n_nodes++;
    struct geo_node *nd = &t->nodes[i];
    nd->k[0] = k[0];
    nd->k[1] = k[1];
    geo_key_mask(nd->k, plen);
    nd->plen = (uint8_t)plen;
    nd->prefix = prefix;
    nd->child[0] = nd->child[1] = 0;
    return i;
}

/* Inserts one distinct prefix. slot points at the link being followed: the root or a child. */
static void insert(struct geo_trie *t, const struct geo_prefix *p, int32_t idx)
{
    uint32_t *slot = &t->root;
    for (;;) {
        if (*slot == 0) {
            *slot = new_node(t, p->k, p->plen, idx);
            return;
        }
        uint32_t cur = *slot;
        struct geo_node *nd = &t->nodes[cur];
        unsigned np = nd->plen;
        unsigned c = common_bits(nd->k, p->k, np < p->plen ? np : p->plen);
        if (c == np && np == p->plen) {
            /* A branch point becomes the prefix (distinct prefixes never meet twice). */
            TMT_ASSERT(nd->prefix < 0);
            nd->prefix = idx;
            return;
        }
        if (c == np) { /* the node covers the new prefix: go down */
            slot = &nd->child[geo_key_bit(p->k, np)];
            continue;
        }
        if (c == p->plen) { /* the new prefix covers the node: it goes above */
            uint32_t n = new_node(t, p->k, p->plen, idx);
            t->nodes[n].child[geo_key_bit(t->nodes[cur].k, p->plen)] = cur;
            *slot = n;
            return;
        }
        /* They part at bit c: a branch point with the node and a new leaf below. */
        uint32_t leaf = new_node(t, p->k, p->plen, idx);
        uint32_t br = new_node(t, p->k, c, -1);
        t->nodes[br].child[geo_key_bit(p->k, c)] = leaf;
        t->nodes[br].child[geo_key_bit(t->nodes[cur].k, c)] = cur;
        *slot = br;
        return;
    }
}

int geo_trie_build(struct geo_trie *t, const struct geo_prefix *prefixes, size_t n, bool want_v6)
{
    memset(t, 0, sizeof(*t));
    t->bits = want_v6 ? 128 : 32;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += (prefixes[i].v6 != 0) == want_v6;
    if (count > (UINT32_MAX - 2) / 2 || n > INT32_MAX)
        return TMT_ELIMIT;
    size_t cap = 2 * count + 1;
    t->nodes = calloc(cap, sizeof(t->nodes[0]));
    if (t->nodes == NULL)
        return TMT_ELIMIT;
    t->n_nodes = 1;
    for (size_t i = 0; i < n; i++) {
        if ((prefixes[i].v6 != 0) == want_v6)
            insert(t, &prefixes[i], (int32_t)i);
    }
    TMT_ASSERT(t->n_nodes <= cap);
    struct geo_node *shrunk = realloc(t->nodes, t->n_nodes * sizeof(t->nodes[0]));
    if (shrunk != NULL)
        t->nodes = shrunk;
    return 0;
}

void geo_trie_fini(struct geo_trie *t)
{
    free(t->nodes);
    memset(t, 0, sizeof(*t));
}

int32_t geo_trie_match(const struct geo_trie *t, const uint64_t key[2])
{
    int32_t best = -1;
    uint32_t i = t->root;
    while (i != 0) {
        const struct geo_node *nd = &t->nodes[i];
        if (!geo_key_match(key, nd->k, nd->plen))
            break;
        if (nd->prefix >= 0)
            best = nd->prefix;
        if (nd->plen >= t->bits)
            break;
        i = nd->child[geo_key_bit(key, nd->plen)];
    }
    return best;
}
