/*
 * tomato-edge: serves viewers from a tiered cache and fills misses from origin shields.
 *
 * main() stays thin: the shared front end parses the command line and settings and runs the
 * daemon lifecycle (signals, reload, shutdown); the hooks here build the servers.
 */
#include <stddef.h>
#include <string.h>

#include "edge_conf.h"
#include "assets.h"
#include "proxy.h"
#include "tokens.h"
#include "tmt/config.h"
#include "tmt/daemon_http.h"
#include "tmt/log.h"
#include "tmt/metrics.h"
#include "tmt/node.h"
#include "tmt/prog.h"
#include "tmt/static.h"
#include "tmt/version.h"

static const struct tmt_prog_flag edge_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"static", "DIR", "static.root"},
};

static const struct tmt_prog edge_prog = {
    .name = "tomato-edge",
    .summary = "edge caching node: serves HLS/DASH viewers from a hot/warm/cold cache",
    .schema = &edge_conf_schema,
    .flags = edge_flags,
    .n_flags = TMT_ARRAY_LEN(edge_flags),
};

#define REPORT_TOP_ASSETS 20 /* the busiest assets of each report batch */
#define REPORT_N 48          /* at least TMT_ARRAY_LEN(report_fields) + TMT_NODE_REPORT_LATENCY */

struct edge {
    struct tmt_daemon_http http;
    struct tmt_static *st;
    struct edge_tokens *tokens;
    struct edge_proxy *proxy;
    struct tmt_node *node;
    struct edge_assets *assets;     /* requests and bytes per asset, for report batches */
    uint64_t report_last[REPORT_N]; /* counter totals at the last report batch */
};

/* ---- managed by the control plane ---- */

/* A config from the control plane: its shields, fill key, token keys and revocations replace
 * what the files said. */
static void node_apply(const struct tmt_node_config *cfg, void *arg)
{
    struct edge *e = arg;
    /* The control plane's credential for purges on the admin listener. */
    tmt_daemon_http_set_node_key(&e->http, cfg->admin_key,
                                 cfg->admin_key != NULL ? strlen(cfg->admin_key) : 0);
    if (e->proxy == NULL)
        return;
    edge_proxy_set_upstreams(e->proxy, cfg->shields, cfg->n_shields);
    if (cfg->fill_key != NULL)
        edge_proxy_set_fill_key(e->proxy, cfg->fill_key, strlen(cfg->fill_key));
    edge_tokens_set_keys(e->tokens, cfg->keys, cfg->n_keys);
    edge_tokens_set_revoked(e->tokens, cfg->revoked, cfg->n_revoked);
}

static void add_activity(void *arg, const char *sub, const char *dev, const char *lease)
{
    json_array_append_new(arg,
                          json_pack("{s:s, s:s, s:s}", "sub", sub, "dev", dev, "lease", lease));
}

/* A heartbeat: the devices whose tokens passed since the last one renew their leases. */
static void node_heartbeat(json_t *body, void *arg)
{
    struct edge *e = arg;
    if (e->tokens == NULL)
        return;
    json_t *a = json_array();
    edge_tokens_drain_activity(e->tokens, add_activity, a);
    json_object_set_new(body, "activity", a);
    /* The cache's running totals, for cache-hit reports (the control plane keeps the last). */
    static const struct {
        const char *field, *name, *labels;
    } totals[] = {
        {"hit_hot", "tmt_edge_requests_total", "result=\"hit_hot\""},
        {"hit_warm", "tmt_edge_requests_total", "result=\"hit_warm\""},
        {"hit_cold", "tmt_edge_requests_total", "result=\"hit_cold\""},
        {"miss", "tmt_edge_requests_total", "result=\"miss\""},
        {"stale", "tmt_edge_requests_total", "result=\"stale\""},
        {"pass", "tmt_edge_requests_total", "result=\"pass\""},
        {"upstream_requests", "tmt_edge_upstream_requests_total", NULL},
        {"objects_hot", "tmt_edge_cache_objects", "tier=\"hot\""},
        {"bytes_hot", "tmt_edge_cache_bytes", "tier=\"hot\""},
        {"bytes_warm", "tmt_edge_cache_bytes", "tier=\"warm\""},
        {"bytes_cold", "tmt_edge_cache_bytes", "tier=\"cold\""},
    };
    json_t *counters = json_object();
    for (size_t i = 0; i < TMT_ARRAY_LEN(totals); i++) {
        long slot = tmt_metrics_find(e->http.metrics, totals[i].name, totals[i].labels);
        if (slot >= 0)
            json_object_set_new(
                counters, totals[i].field,
                json_integer((json_int_t)tmt_metrics_value(e->http.metrics, (size_t)slot)));
    }
    json_object_set_new(body, "counters", counters);
}

/* What report batches carry: counters as deltas since the last batch, gauges as they are. */
static const struct tmt_node_report_field report_fields[] = {
    {"requests", "tmt_http_requests_total", NULL, false},
    {"hit_hot", "tmt_edge_requests_total", "result=\"hit_hot\"", false},
    {"hit_warm", "tmt_edge_requests_total", "result=\"hit_warm\"", false},
    {"hit_cold", "tmt_edge_requests_total", "result=\"hit_cold\"", false},
    {"revalidated", "tmt_edge_requests_total", "result=\"revalidated\"", false},
    {"stale", "tmt_edge_requests_total", "result=\"stale\"", false},
    {"miss", "tmt_edge_requests_total", "result=\"miss\"", false},
    {"pass", "tmt_edge_requests_total", "result=\"pass\"", false},
    {"bytes_served", "tmt_http_response_body_bytes_total", NULL, false},
    {"hit_bytes_hot", "tmt_edge_hit_bytes_total", "tier=\"hot\"", false},
    {"hit_bytes_warm", "tmt_edge_hit_bytes_total", "tier=\"warm\"", false},
    {"hit_bytes_cold", "tmt_edge_hit_bytes_total", "tier=\"cold\"", false},
    {"upstream_requests", "tmt_edge_upstream_requests_total", NULL, false},
    {"upstream_bytes", "tmt_edge_upstream_bytes_total", NULL, false},
    {"upstream_errors", "tmt_edge_upstream_errors_total", NULL, false},
    {"evictions", "tmt_edge_cache_evictions_total", NULL, false},
    {"promotions", "tmt_edge_cache_promotions_total", NULL, false},
    {"demotions", "tmt_edge_cache_demotions_total", NULL, false},
    {"responses_4xx", "tmt_http_responses_total", "code=\"4xx\"", false},
    {"responses_5xx", "tmt_http_responses_total", "code=\"5xx\"", false},
    {"objects_hot", "tmt_edge_cache_objects", "tier=\"hot\"", true},
    {"objects_warm", "tmt_edge_cache_objects", "tier=\"warm\"", true},
    {"objects_cold", "tmt_edge_cache_objects", "tier=\"cold\"", true},
    {"bytes_hot", "tmt_edge_cache_bytes", "tier=\"hot\"", true},
    {"bytes_warm", "tmt_edge_cache_bytes", "tier=\"warm\"", true},
    {"bytes_cold", "tmt_edge_cache_bytes", "tier=\"cold\"", true},
};
_Static_assert(TMT_ARRAY_LEN(report_fields) + TMT_NODE_REPORT_LATENCY <= REPORT_N,
               "report_last holds every reported counter");

/* A report batch: the cache's counters since the last one, for cache-hit reports. */
static void node_report(json_t *body, void *arg)
{
    struct edge *e = arg;
    tmt_node_report_metrics(body, e->http.metrics, report_fields, TMT_ARRAY_LEN(report_fields),
                            e->report_last);
    if (e->proxy != NULL) {
        struct tmt_mrc_point pts[TMT_MRC_MAX_SIZES];
        double rate;
        uint64_t sampled, budget;
        size_t n = edge_proxy_mrc(e->proxy, pts, TMT_MRC_MAX_SIZES, &rate, &sampled, &budget);
        if (n > 0 && sampled > 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_pack("[I, f, f]", (json_int_t)pts[i].size_bytes,
                                                     pts[i].miss_ratio, pts[i].byte_miss_ratio));
            json_object_set_new(body, "mrc",
                                json_pack("{s:f, s:I, s:I, s:o}", "rate", rate, "sampled",
                                          (json_int_t)sampled, "budget", (json_int_t)budget,
                                          "points", arr));
        }
    }
    if (e->assets != NULL) {
        struct edge_asset_count top[REPORT_TOP_ASSETS];
        size_t n = edge_assets_take(e->assets, top, REPORT_TOP_ASSETS);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "asset", top[i].asset,
                                                 "requests", (json_int_t)top[i].requests, "bytes",
                                                 (json_int_t)top[i].bytes));
        json_object_set_new(body, "top_assets", arr);
    }
    json_object_set_new(body, "role", json_string("edge"));
}

/* Each finished request of the main listener: counted for its asset (/v/{asset}/...). */
static void edge_on_done(void *arg, const struct tmt_http_req *req, int status, uint64_t bytes)
{
    (void)status;
    struct edge *e = arg;
    if (e->assets != NULL)
        edge_assets_count(e->assets, req->worker,
                          req->log_path.p != NULL ? req->log_path : req->path, bytes);
}

static void edge_handle(struct tmt_http_req *req, void *arg)
{
    struct edge *e = arg;
    if (e->proxy != NULL) {
        edge_proxy_handle(req, e->proxy);
        return;
    }
    if (e->st != NULL) {
        tmt_static_serve(e->st, req);
        return;
    }
    tmt_http_respond_error(req, 404,
                           "nothing is served here (set upstream.shields or static.root)");
}

/* Admin paths beyond /metrics and /healthz (the credential is checked before this runs). */
static void edge_admin(struct tmt_http_req *req, void *arg)
{
    struct edge *e = arg;
    bool purge = tmt_http_slice_ieq(req->path, "/purge");
    bool report = tmt_http_slice_ieq(req->path, "/cache");
    bool compact = tmt_http_slice_ieq(req->path, "/cache/compact");
    bool revoked = tmt_http_slice_ieq(req->path, "/tokens/revoked");
    if (!purge && !report && !compact && !revoked) {
        tmt_http_respond_error(req, 404,
                               "no such admin path (POST /purge, GET /cache, "
                               "POST /cache/compact, POST /tokens/revoked)");
        return;
    }
    if (e->proxy == NULL)
        tmt_http_respond_error(req, 409, "nothing is cached here (upstream.shields is empty)");
    else if (revoked)
        edge_tokens_admin_revoked(req, e->tokens);
    else if (purge)
        edge_proxy_purge(req, e->proxy);
    else
        edge_proxy_cache_report(req, e->proxy, compact);
}

/* The token gate of the proxy, with the keys of tokens.keys_file when it is set. */
static struct edge_tokens *tokens_new(const struct edge_conf *c, unsigned workers,
                                      struct tmt_metrics *metrics, struct tmt_err *err)
{
    const struct edge_tokens_opts o = {
        .protect = (const char *const *)c->tok_protect.items,
        .n_protect = c->tok_protect.n,
        .public_prefixes = (const char *const *)c->tok_public.items,
        .n_public = c->tok_public.n,
        .clock_skew_s = (int64_t)(c->tok_skew_ms / 1000),
        .cache_entries = (size_t)c->tok_cache_entries,
        .n_workers = workers,
        .metrics_shard0 = 0,
    };
    struct edge_tokens *t = edge_tokens_new(&o, metrics, err);
    if (t == NULL)
        return NULL;
    if (c->tok_keys_file[0] != '\0' && edge_tokens_load_keys_file(t, c->tok_keys_file, err) != 0) {
        edge_tokens_free(&t);
        return NULL;
    }
    if (c->tok_protect.n > 0 && c->tok_keys_file[0] == '\0')
        tmt_log(TMT_LOG_WARN, "tokens",
                "no token keys yet: requests to protected prefixes get 403 until keys arrive",
                "protect=%s", c->tok_protect.items[0]);
    return t;
}

static int edge_start(struct tmt_loop *loop, struct tmt_conf_snap *snap, void *arg)
{
    struct edge *e = arg;
    const struct edge_conf *c = tmt_conf_snap_get(snap);
    struct tmt_err err = {0};
    struct tmt_daemon_http_opts o = {
        .name = "tomato-edge/" TMT_VERSION,
        .daemon = &c->daemon,
        .http = &c->http,
        .listen = c->listen,
        .admin_listen = c->admin_listen,
        .tls_listen = c->tls_listen,
        .tls_cert = c->tls_cert,
        .tls_key = c->tls_key,
        .handler = edge_handle,
        .handler_arg = e,
        .admin_handler = edge_admin,
        .admin_arg = e,
        .on_done = edge_on_done,
        .on_done_arg = e,
    };
    if (tmt_daemon_http_init(&e->http, loop, &o, &err) != 0)
        goto fail;
    e->assets = edge_assets_new(e->http.workers);
    /* Requests arrive only after start, so the handler's state can be made between the phases;
     * the static files get one open-file cache per worker. */
    /* A managed edge takes its shields from the control plane: it proxies from the start. */
    bool managed = c->node.control_url[0] != '\0';
    if (tmt_node_conf_check(&c->node, &err) != 0)
        goto fail;
    tmt_node_register_metrics(e->http.metrics);
    if (c->shields.n > 0 || managed) {
        e->tokens = tokens_new(c, e->http.workers, e->http.metrics, &err);
        if (e->tokens == NULL)
            goto fail;
        e->proxy = edge_proxy_new(c, e->http.workers, e->http.metrics, e->tokens, &err);
        if (e->proxy == NULL)
            goto fail;
    }
    if (c->static_root[0] != '\0' && e->proxy == NULL) {
        e->st = tmt_static_new(c->static_root, e->http.workers, &err);
        if (e->st == NULL)
            goto fail;
    }
    if (tmt_daemon_http_start(&e->http, &err) != 0)
        goto fail;
    if (e->proxy != NULL)
        edge_proxy_start(e->proxy, loop, e->http.main_shard);
    if (managed) {
        const struct tmt_node_hooks hooks = {
            .apply = node_apply, .heartbeat = node_heartbeat, .report = node_report, .arg = e};
        e->node = tmt_node_start(loop, &c->node, TMT_VERSION, &hooks, e->http.main_shard, &err);
        if (e->node == NULL)
            goto fail;
    }
    if (e->st != NULL)
        tmt_log(TMT_LOG_INFO, "edge", "serving a static directory", "root=%s", c->static_root);
    return 0;
fail:
    tmt_log(TMT_LOG_ERROR, "edge", "cannot start", "why=\"%s\"", err.msg);
    return -1;
}

static void edge_reload(struct tmt_conf_snap *snap, void *arg)
{
    struct edge *e = arg;
    const struct edge_conf *c = tmt_conf_snap_get(snap);
    tmt_daemon_http_reload(&e->http, &c->daemon, &c->http, c->tls_cert, c->tls_key);
    struct tmt_err err = {0};
    /* A managed edge's keys come from the control plane: the file is not read again. */
    if (e->tokens != NULL && e->node == NULL && c->tok_keys_file[0] != '\0' &&
        edge_tokens_load_keys_file(e->tokens, c->tok_keys_file, &err) != 0)
        tmt_log(TMT_LOG_ERROR, "tokens", "token keys reload rejected; the old keys stay",
                "why=\"%s\"", err.msg);
}

static void edge_stop(void *arg)
{
    struct edge *e = arg;
    tmt_daemon_http_stop(&e->http);
}

static void edge_exit(void *arg)
{
    struct edge *e = arg;
    tmt_node_stop(&e->node);
    edge_proxy_free(&e->proxy);
    edge_tokens_free(&e->tokens);
    tmt_daemon_http_fini(&e->http);
    tmt_static_free(&e->st);
    edge_assets_free(&e->assets);
}

/* Settings the control plane pushed before the last stop, from the node's state file. */
static char *edge_pushed_at_start(const void *settings, void *arg)
{
    (void)arg;
    return tmt_node_pushed_at_start(&((const struct edge_conf *)settings)->node);
}

int main(int argc, char **argv)
{
    static struct edge edge;
    const struct tmt_daemon_hooks hooks = {
        .on_start = edge_start,
        .on_reload = edge_reload,
        .on_stop = edge_stop,
        .on_exit = edge_exit,
        .pushed_at_start = edge_pushed_at_start,
        .arg = &edge,
    };
    return tmt_prog_daemon_main(&edge_prog, offsetof(struct edge_conf, daemon), argc, argv, &hooks);
}
