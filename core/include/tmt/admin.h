/*
 * admin.h: the endpoints every daemon's admin listener has: GET /metrics (the counters registry
 * as Prometheus text) and GET /healthz.
 */
#ifndef TMT_ADMIN_H
#define TMT_ADMIN_H

#include <stdbool.h>

struct tmt_http_req;
struct tmt_metrics;

/*
 * Answers req if it is one of the built-in admin paths and returns true; returns false (req
 * untouched) otherwise, so a daemon adds its own paths after these. `healthy` decides /healthz:
 * 200 "ok" or 503 "unhealthy".
 */
bool tmt_admin_serve(struct tmt_http_req *req, const struct tmt_metrics *m, bool healthy);

#endif
