/*
 * shield.h: what tomato-shield answers on its main listener: /v/{asset}/... packaged on request
 * from the mezzanine store (origin/pack), kept in the shield cache (the edge's store: RAM and
 * one RocksDB tier) so that many edges missing one object cost one packaging.
 *
 * Paths (docs/ARCHITECTURE.md): master.m3u8 and manifest.mpd under /v/{asset}/, and
 * {rendition}/index.m3u8, {rendition}/init.mp4, {rendition}/{n}.m4s. An asset's index is built
 * once (on the blocking pool) and kept in a RocksDB of its own, so a restart does not re-index.
 */
#ifndef SHIELD_H
#define SHIELD_H

#include "shield_conf.h"
#include "tmt/err.h"
#include "tmt/server.h"

struct shield;
struct tmt_metrics;

/* Opens the cache and starts the packaging threads; registers the counters. NULL with err. */
struct shield *shield_new(const struct shield_conf *c, struct tmt_metrics *metrics,
                          struct tmt_err *err);

/* Settings that apply on reload (server.open, the fill key). */
void shield_reload(struct shield *s, const struct shield_conf *c);

/*
 * The fill key the control plane hands out (a managed node): replaces fill.key_file's, and
 * reloads no longer read that file. Any thread.
 */
void shield_set_fill_key(struct shield *s, const char *key, size_t len);

/* The request handler (arg: the shield). */
void shield_handle(struct tmt_http_req *req, void *arg);

/* After the servers stopped: waits for packaging in progress, closes the cache. NULL-safe. */
void shield_free(struct shield **s);

#endif
