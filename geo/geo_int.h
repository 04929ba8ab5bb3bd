/*
 * geo_int.h: what the files of libtmt_geo share, and what its tests and fuzz target may reach.
 *
 * A prefix is kept as a 128-bit key in two host-order words, most significant bit first: an
 * IPv6 prefix as it is, an IPv4 prefix in the top 32 bits of k[0] (the rest zero). Bit i of a key
 * is bit i counted from the top, so the trie walks both families with the same code.
 *
 * The trie (radix.c) is a path-compressed binary trie in one array of nodes, indices instead of
 * pointers; node 0 is unused so that index 0 means "no child". A node covers the keys that share
 * its first plen bits; it is either a prefix of the file (prefix >= 0) or a branch point the
 * compression left (prefix -1, always with two children). n prefixes need at most 2n - 1 nodes.
 * Built once by geo_trie_build, then only read.
 */
#ifndef TMT_GEO_INT_H
#define TMT_GEO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/geo.h"

#define GEO_ZONES_MAGIC 0x67e0207eu
#define GEO_DB_MAGIC 0x67e0d8dbu

/* A prefix of the coverage-zone file. */
struct geo_prefix {
    uint64_t k[2];  /* the network, host bits zero */
    uint32_t group; /* index into the zones' groups */
    uint32_t line;  /* where the file lists it first */
    uint8_t plen;   /* 0..32 (IPv4) or 0..128 (IPv6) */
    uint8_t v6;     /* 1 for IPv6 */
};

struct geo_node {
    uint64_t k[2];
    uint32_t child[2]; /* by bit plen of the key; 0 = none */
    int32_t prefix;    /* index into the zones' prefixes, -1 for a branch point */
    uint8_t plen;
};

struct geo_trie {
    struct geo_node *nodes; /* nodes[0] unused */
    uint32_t n_nodes;       /* used, node 0 included */
    uint32_t root;          /* 0 when empty */
    uint8_t bits;           /* 32 or 128 */
};

struct geo_group {
    const char *name; /* in the zones' string pool */
    double lat, lon;
    bool has_coords;
};

struct tmt_geo_zones {
    unsigned magic;
    struct geo_group *groups;
    size_t n_groups;
    uint32_t *group_index; /* open addressing by name hash: group + 1, 0 empty */
    size_t group_index_mask;
    struct geo_prefix *prefixes; /* deduplicated: each (family, network, length) once */
    size_t n_prefixes;
    struct geo_trie v4, v6;
    char *pool; /* group names */
};

/* The key of an address (see the top of this file). */
void geo_addr_key(const struct tmt_geo_addr *a, uint64_t k[2]);
/* Bit i (0 = most significant) of a key. */
static inline unsigned geo_key_bit(const uint64_t k[2], unsigned i)
{
    return (unsigned)(k[i >> 6] >> (63 - (i & 63))) & 1u;
}
/* Whether the first plen bits of a and b are equal. */
static inline bool geo_key_match(const uint64_t a[2], const uint64_t b[2], unsigned plen)
{
    uint64_t hi = plen >= 64 ? ~UINT64_C(0) : plen == 0 ? 0 : ~UINT64_C(0) << (64 - plen);
    uint64_t lo = plen <= 64 ? 0 : plen >= 128 ? ~UINT64_C(0) : ~UINT64_C(0) << (128 - plen);
    return ((a[0] ^ b[0]) & hi) == 0 && ((a[1] ^ b[1]) & lo) == 0;
}
/* The key with every bit from plen on cleared. */
void geo_key_mask(uint64_t k[2], unsigned plen);

/*
 * Builds the trie of the prefixes with v6 == want_v6 (bits 32 or 128). Prefixes must be
 * distinct. Returns 0 or TMT_ELIMIT (allocation failed or too many prefixes).
 */
int geo_trie_build(struct geo_trie *t, const struct geo_prefix *prefixes, size_t n, bool want_v6);
void geo_trie_fini(struct geo_trie *t);
/* Index of the longest prefix containing key, or -1. No allocation. */
int32_t geo_trie_match(const struct geo_trie *t, const uint64_t key[2]);

/* The longest prefix of z containing a (an index into z->prefixes), or -1. */
int32_t geo_zones_match(const struct tmt_geo_zones *z, const struct tmt_geo_addr *a);

/*
 * Parses "a.b.c.d/len" (v6 false) or "x:y::/len" (v6 true), len bytes at p. Returns 0 with key
 * and *plen, or TMT_EINVAL with a reason in why (a fixed string). When the only fault is host
 * bits set, the reason is "host bits set" and key holds the masked network.
 */
int geo_cidr_parse(const char *p, size_t len, bool v6, uint64_t key[2], uint8_t *plen,
                   const char **why);

/* ---- the JSON reader (json_read.c) ---- */

#define GEO_JSON_DEPTH 64
#define GEO_STR_MAX 512

struct tmt_err;

/* Reading position and the first error; name is what messages call the file. */
struct jr {
    const char *p, *end;
    const char *name;
    unsigned line;
    struct tmt_err *err;
    int code; /* the first error's code, TMT_OK while none */
};

/* A member name as read: decoded (NUL-terminated, may hold NULs), its length, where it was. */
struct key {
    char s[GEO_STR_MAX];
    size_t len;
    bool too_long; /* only the first GEO_STR_MAX - 1 bytes are in s */
    unsigned line;
};

/* Records the first error as "NAME:LINE: message" (later ones are dropped); returns its code. */
int geo_jr_fail(struct jr *r, unsigned line, int code, const char *fmt, ...) TMT_PRINTF(4, 5);
#define GEO_JR_FAIL(r, ...) geo_jr_fail((r), (r)->line, TMT_EINVAL, __VA_ARGS__)
/* Skips whitespace, counting lines. */
void geo_jr_ws(struct jr *r);
/* Skips whitespace, then consumes c if it is next. */
bool geo_jr_eat(struct jr *r, char c);
/* What the next value looks like, for messages ("a string", "']'", "the end of the file"). */
const char *geo_jr_next_kind(const struct jr *r);
/* A string into buf (NUL-terminated, cap bytes) when buf is not NULL; *too_long if cut. */
int geo_jr_string(struct jr *r, char *buf, size_t cap, size_t *len, bool *too_long);
/* A number; *out (if not NULL) is NaN when it does not fit a double. */
int geo_jr_number(struct jr *r, double *out);
/* Reads and discards any value at nesting depth depth. */
int geo_jr_skip(struct jr *r, int depth);
/* An object: begin expects '{'; next returns 1 with the member's name in *k (the reader then
 * stands before its value), 0 at the end of the object, or the error. */
int geo_jr_obj_begin(struct jr *r, const char *what);
int geo_jr_obj_next(struct jr *r, bool *first, struct key *k);
/* Whether the name read is exactly name. */
bool geo_jr_key_is(const struct key *k, const char *name);
/* Outside text as a message may show it: printable ASCII, '?' for the rest (quotes and
 * backslashes too), at most 64 characters and then "...". */
const char *geo_shown(const char *s, size_t n, char *out, size_t cap);

#endif
