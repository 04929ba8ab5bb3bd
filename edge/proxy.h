/*
 * proxy.h: the edge's caching reverse proxy: answers GET and HEAD from the store (store.h),
 * fills misses from the upstreams (one upstream request per key however many clients miss it
 * at once, streamed to them as it arrives), and forwards other methods uncached.
 */
#ifndef EDGE_PROXY_H
#define EDGE_PROXY_H

#include <stdbool.h>

#include "edge_conf.h"
#include "tmt/cache_mrc.h"
#include "tmt/err.h"
#include "tmt/server.h"

struct edge_proxy;
struct edge_tokens;
struct tmt_metrics;
struct tmt_loop;

/*
 * Opens the store and registers the counters in metrics (not yet sealed). n_workers: the
 * server's worker threads (each gets its own upstream client). tokens: the token gate every
 * request passes before the cache (borrowed, must outlive the proxy; NULL: none, and /t/{token}
 * paths are only stripped).
 */
struct edge_proxy *edge_proxy_new(const struct edge_conf *c, unsigned n_workers,
                                  struct tmt_metrics *metrics, struct edge_tokens *tokens,
                                  struct tmt_err *err);

/* Once the registry is sealed: starts the gauge updates on the main loop. */
void edge_proxy_start(struct edge_proxy *p, struct tmt_loop *main_loop, unsigned main_shard);

/* The request handler (handler_arg: the proxy). */
void edge_proxy_handle(struct tmt_http_req *req, void *arg);

/*
 * The admin call POST /purge?key=PATH (one key: a path, and a query outside /v/, as a viewer
 * would request it, percent-encoded) or ?asset=ID (every key under /v/{ID}/). Answers 200 with
 * {"purged":N}; fills in flight for what is purged are not stored. Any thread.
 */
void edge_proxy_purge(struct tmt_http_req *req, struct edge_proxy *p);

/*
 * The admin calls GET /cache (budget, accounted bytes and objects per tier, bytes on disk of warm
 * and cold) and POST /cache/compact (the same after a full compaction of warm and cold, which
 * blocks the calling loop while it runs). Any thread.
 */
void edge_proxy_cache_report(struct tmt_http_req *req, struct edge_proxy *p, bool compact);

/* The cache's miss-ratio-curve estimate (edge_store_mrc). Any thread. */
size_t edge_proxy_mrc(struct edge_proxy *p, struct tmt_mrc_point *out, size_t cap, double *rate,
                      uint64_t *sampled, uint64_t *budget);

/* After the servers have stopped (no handler runs any more). NULL-safe. */
/*
 * Replaces the upstreams fills go to (the control plane's shield list): fills started from then
 * on use the new list in rendezvous order; fills in flight finish with the list they started
 * with. Main thread.
 */
void edge_proxy_set_upstreams(struct edge_proxy *p, const char *const *names, size_t n);

/* Replaces the fill key sent to upstreams (the control plane's). Main thread. */
void edge_proxy_set_fill_key(struct edge_proxy *p, const char *key, size_t len);

void edge_proxy_free(struct edge_proxy **p);

#endif
