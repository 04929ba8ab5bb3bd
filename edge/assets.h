/*
 * assets.h: requests and bytes per asset (/v/{asset}/...), for the top assets of report batches.
 *
 * Each worker counts into its own table of EDGE_ASSETS_K entries with the Space-Saving algorithm
 * (Metwally et al., 2005): an asset not in a full table takes the place of the entry with the
 * fewest requests and inherits its count, so every asset with more than 1/K of a worker's
 * requests is kept and no count is under-estimated (over-estimates are bounded by the evicted
 * count). The report hook takes the tables (and empties them), merges the workers and keeps the
 * busiest.
 *
 * Threads: edge_assets_count on the worker `worker` (one mutex per worker, taken only by it and
 * the report); edge_assets_take on any thread.
 */
#ifndef EDGE_ASSETS_H
#define EDGE_ASSETS_H

#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"

#define EDGE_ASSETS_K 256
#define EDGE_ASSET_ID_MAX 64

struct edge_asset_count {
    char asset[EDGE_ASSET_ID_MAX + 1];
    uint64_t requests, bytes;
};

struct edge_assets;

struct edge_assets *edge_assets_new(unsigned workers);
void edge_assets_free(struct edge_assets **a);

/* One finished request for path (the cache path, /v/{asset}/...; others are not counted). */
void edge_assets_count(struct edge_assets *a, unsigned worker, struct tmt_slice path,
                       uint64_t bytes);

/*
 * The counts since the last call, merged over the workers, the n busiest by requests into out
 * (n <= cap, returned); the tables start empty again.
 */
size_t edge_assets_take(struct edge_assets *a, struct edge_asset_count *out, size_t cap);

#endif
