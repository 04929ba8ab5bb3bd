/*
 * node.h: the node side of the control plane (edges and shields): a node starts with the control
 * plane's URL, its id and its credential, fetches its config (shields, fill key, token keys,
 * revocations), polls it with an ETag, and heartbeats (health, load, lease activity).
 *
 * The config may push settings (settings-file text), a layer between the node's settings file and
 * its command line, applied by a reload when it changes. The last config is kept in
 * node.state_file, so a node that starts while the control plane is unreachable serves with what
 * it had; failures are retried with backoff, logged once per
 * outage, and shown in /metrics (tmt_node_control_up).
 *
 * Report batches (for cache-hit reports) go apart from heartbeats, every node.report_interval:
 * numbered per boot of the node ({"boot","seq","from_ms","to_ms",...the report hook's fields}),
 * zstd-compressed, queued, and POSTed to /v1/nodes/{id}/reports oldest first until the control
 * plane takes them, so an outage of the control plane loses nothing (up to REPORTS_QUEUE_MAX
 * batches are kept, then the oldest go, counted); the control plane ignores a batch it already
 * has, so a resend after a lost answer is not counted twice.
 *
 * Threads: everything runs on the daemon's main loop; the hooks are called there.
 */
#ifndef TMT_NODE_H
#define TMT_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/config.h"
#include "tmt/err.h"
#include "tmt/token.h"

struct tmt_loop;
struct tmt_metrics;

/* The [node] settings every node daemon has. */
struct tmt_node_conf {
    char *control_url;     /* node.control_url: "" = not managed (file settings only) */
    char *id;              /* node.id, from provisioning */
    char *credential_file; /* node.credential_file: the node credential shown at provisioning */
    char *state_file; /* node.state_file: the last config, for starts without the control plane */
    uint64_t report_interval_ms; /* node.report_interval: report batches; 0 = none */
};

#define TMT_NODE_CONF_N_KEYS 5
extern const struct tmt_conf_key tmt_node_conf_keys[TMT_NODE_CONF_N_KEYS];
/* The schema part of the [node] keys, at offset base of the daemon's settings struct. */
#define TMT_NODE_CONF_PART(base)                                                                   \
    {                                                                                              \
        tmt_node_conf_keys, TMT_NODE_CONF_N_KEYS, (base)                                           \
    }

/* A config as the control plane sent it, parsed. Valid during the apply hook only. */
struct tmt_node_config {
    const char *id, *role, *name, *region;
    uint64_t heartbeat_interval_ms;
    const char *fill_key;  /* base64url text, used as the fill bearer credential; NULL: none */
    const char *admin_key; /* the control plane's credential on this node's admin listener (jobs,
                              purge); NULL: none */
    const char *settings;  /* pushed settings, settings-file text ("" or NULL: none) */
    const char *const *shields; /* "host:port" (edges) */
    size_t n_shields;
    const struct tmt_token_key *keys; /* token verification keys (edges) */
    size_t n_keys;
    const char *const *revoked; /* lease ids whose tokens must be refused (edges) */
    size_t n_revoked;
    bool from_state_file; /* applied from node.state_file, not fresh from the control plane */
};

struct tmt_node_hooks {
    /* A new config (at start from the state file, then each time it changes). */
    void (*apply)(const struct tmt_node_config *cfg, void *arg);
    /* Adds to a heartbeat's JSON body: "load" (number), "health", "activity" ([{sub,dev,lease}]).
     */
    void (*heartbeat)(json_t *body, void *arg);
    /*
     * Fills a report batch (every node.report_interval) with what happened since the last one:
     * "counters" (an object of integer deltas), "gauges" (integers now), "latency_ms" (the
     * response-time histogram's deltas: an array of counts per bucket), "top_assets". NULL: no
     * reports.
     */
    void (*report)(json_t *body, void *arg);
    void *arg;
};

struct tmt_node;

/* One counter or gauge of a report batch, read from the daemon's metrics registry. */
struct tmt_node_report_field {
    const char *field;  /* name in the batch */
    const char *metric; /* metric name and labels (as registered; labels may be NULL) */
    const char *labels;
    bool gauge; /* reported as it is, not as a delta */
};

/* Response-time buckets of the core server (tmt_http_response_time_total{ms=...}). */
#define TMT_NODE_REPORT_LATENCY 14

/*
 * For a report hook: adds "counters" (deltas of the non-gauge fields since the last call,
 * kept in last[]), "gauges" and "latency_ms" (the core server's response-time histogram, as
 * deltas) to body. last holds n + TMT_NODE_REPORT_LATENCY values, zero at first. Missing
 * metrics count as 0.
 */
void tmt_node_report_metrics(json_t *body, const struct tmt_metrics *m,
                             const struct tmt_node_report_field *f, size_t n, uint64_t *last);

/*
 * Checks the [node] settings (a control URL needs an id and a credential file; the URL must be
 * http://IP:PORT, as the HTTP client connects to numeric addresses). 0, or -1 with err filled.
 */
int tmt_node_conf_check(const struct tmt_node_conf *c, struct tmt_err *err);

/*
 * Registers the agent's counters in metrics (before it is sealed; may be NULL). Call before
 * tmt_node_start.
 */
void tmt_node_register_metrics(struct tmt_metrics *metrics);

/*
 * Starts the agent when c->control_url is set (otherwise returns NULL with err clear: nothing to
 * do). Applies the state file's config, if any, before returning; the first fetch runs at once
 * from the loop. NULL with err filled on a bad credential file or settings.
 */
struct tmt_node *tmt_node_start(struct tmt_loop *main_loop, const struct tmt_node_conf *c,
                                const char *version, const struct tmt_node_hooks *hooks,
                                unsigned metrics_shard, struct tmt_err *err);

/* Stops polling (in-flight calls are cancelled) and frees. NULL-safe. */
void tmt_node_stop(struct tmt_node **n);

/*
 * The pushed settings kept in node.state_file (malloc'd INI text, or NULL), for the daemon's
 * pushed_at_start hook (tmt/prog.h), so that they apply from the start. The agent itself
 * applies later changes (tmt_prog_set_pushed, then a reload).
 */
char *tmt_node_pushed_at_start(const struct tmt_node_conf *c);

/* True while the last call to the control plane succeeded. */
bool tmt_node_control_up(const struct tmt_node *n);

/*
 * Parses a config answer (the JSON of GET /v1/nodes/{id}/config) and calls fn with it. 0, or -1
 * with err saying what is wrong. Exposed for tests.
 */
int tmt_node_config_parse(const char *text, size_t len,
                          void (*fn)(const struct tmt_node_config *cfg, void *arg), void *arg,
                          struct tmt_err *err);

#endif
