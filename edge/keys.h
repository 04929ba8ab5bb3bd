/*
 * keys.h: the edge's cache keys (docs/ARCHITECTURE.md, "Cache keys"): request paths normalized
 * (tmt_http_path_normalize) as RFC 3986 section 6.2.2 allows, the query kept outside /v/. Pure
 * functions of their input.
 */
#ifndef EDGE_KEYS_H
#define EDGE_KEYS_H

#include <stddef.h>

#include "tmt/base.h"

/*
 * The cache key of a request path (still percent-encoded) and query (p NULL: none): the
 * normalized path, plus '?' and the query outside /v/. Returns its length, or 0 with *status
 * (400, 414) and *why saying what is wrong.
 */
size_t edge_cache_key(struct tmt_slice path, struct tmt_slice query, char *key, size_t cap,
                      int *status, const char **why);

#endif
