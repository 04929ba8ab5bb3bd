/*
 * proxy.h: the edge's caching reverse proxy: answers GET and HEAD from the store (store.h),
 * fills misses from the upstreams (one upstream request per key however many clients miss it
 * at once, streamed to them as it arrives), and forwards other methods uncached.
 */
#ifndef EDGE_PROXY_H
#define EDGE_PROXY_H

#include "edge_conf.h"
#include "tmt/err.h"
#include "tmt/server.h"

struct edge_proxy;
struct tmt_metrics;
struct tmt_loop;

/*
 * Opens the store and registers the counters in metrics (not yet sealed). n_workers: the
 * server's worker threads (each gets its own upstream client).
 */
struct edge_proxy *edge_proxy_new(const struct edge_conf *c, unsigned n_workers,
                                  struct tmt_metrics *metrics, struct tmt_err *err);

/* Once the registry is sealed: starts the gauge updates on the main loop. */
void edge_proxy_start(struct edge_proxy *p, struct tmt_loop *main_loop, unsigned main_shard);

/* The request handler (handler_arg: the proxy). */
void edge_proxy_handle(struct tmt_http_req *req, void *arg);

/* After the servers have stopped (no handler runs any more). NULL-safe. */
void edge_proxy_free(struct edge_proxy **p);

#endif
