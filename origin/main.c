/*
 * tomato-shield: the origin shield. Packages HLS/DASH on request from mezzanine files, keeps what
 * it made in its own cache, and runs transcode jobs.
 *
 * main() stays thin: the shared front end runs the lifecycle; the hooks build the servers.
 * `tomato-shield transcode --source FILE --asset ID` runs one transcode job (transcode_cli.c).
 */
#include <stddef.h>
#include <string.h>

#include <event2/event.h>

#include "jobs.h"
#include "shield.h"
#include "shield_conf.h"
#include "transcode_cli.h"
#include "tmt/daemon_http.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/node.h"
#include "tmt/prog.h"
#include "tmt/version.h"

static const struct tmt_prog_flag shield_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"mezzanine", "DIR", "mezzanine.root"},
};

static const struct tmt_prog shield_prog = {
    .name = "tomato-shield",
    .summary = "origin shield: just-in-time HLS/DASH packaging behind a shield cache",
    .schema = &shield_conf_schema,
    .flags = shield_flags,
    .n_flags = TMT_ARRAY_LEN(shield_flags),
    .usage_more = SHIELD_TRANSCODE_USAGE,
};

static struct tmt_daemon_http shield_http;
/* What the shield's report batches carry (counters as deltas, for cache-hit reports): its
 * packaged-object cache outcomes, the bytes it served, and what it packaged (its "upstream"). */
static const struct tmt_node_report_field report_fields[] = {
    {"requests", "tmt_http_requests_total", NULL, false},
    {"hit", "tmt_shield_requests_total", "result=\"hit\"", false},
    {"miss", "tmt_shield_requests_total", "result=\"miss\"", false},
    {"bytes_served", "tmt_http_response_body_bytes_total", NULL, false},
    {"upstream_requests", "tmt_shield_packaged_total", NULL, false},
    {"upstream_bytes", "tmt_shield_packaged_bytes_total", NULL, false},
    {"responses_4xx", "tmt_http_responses_total", "code=\"4xx\"", false},
    {"responses_5xx", "tmt_http_responses_total", "code=\"5xx\"", false},
};
static uint64_t report_last[TMT_ARRAY_LEN(report_fields) + TMT_NODE_REPORT_LATENCY];

static void node_report(json_t *body, void *arg)
{
    (void)arg;
    tmt_node_report_metrics(body, shield_http.metrics, report_fields, TMT_ARRAY_LEN(report_fields),
                            report_last);
    json_object_set_new(body, "role", json_string("shield"));
}
static struct shield *shield;
static struct tmt_node *node;
static struct shield_jobs *jobs;
static struct event *jobs_ev;
static size_t jobs_m;         /* first slot of jobs_metrics */
static uint64_t jobs_seen[6]; /* what the slots hold, in jobs_metrics order */

static const struct tmt_metric_def jobs_metrics[] = {
    {"tmt_shield_jobs", "state=\"queued\"", TMT_METRIC_GAUGE, "transcode jobs waiting or running"},
    {"tmt_shield_jobs", "state=\"running\"", TMT_METRIC_GAUGE, "transcode jobs waiting or running"},
    {"tmt_shield_jobs_total", "result=\"succeeded\"", TMT_METRIC_COUNTER,
     "transcode jobs finished since the start, by outcome"},
    {"tmt_shield_jobs_total", "result=\"failed\"", TMT_METRIC_COUNTER,
     "transcode jobs finished since the start, by outcome"},
    {"tmt_shield_jobs_total", "result=\"cancelled\"", TMT_METRIC_COUNTER,
     "transcode jobs finished since the start, by outcome"},
    {"tmt_shield_transcoded_frames_total", NULL, TMT_METRIC_COUNTER,
     "video frames encoded by finished jobs (every rung counts)"},
};

/* Once a second on the main loop: the jobs' counts into the counters (runner threads own no
 * shard). */
static void jobs_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct shield_jobs_counts n;
    shield_jobs_counts(jobs, &n);
    const uint64_t now[] = {n.queued, n.running, n.succeeded, n.failed, n.cancelled, n.frames};
    tmt_metric_slot *shard = tmt_metrics_shard(shield_http.metrics, shield_http.main_shard);
    for (size_t i = 0; i < TMT_ARRAY_LEN(now); i++) {
        tmt_metric_add(shard, jobs_m + i, now[i] - jobs_seen[i]);
        jobs_seen[i] = now[i];
    }
}

/* Admin paths beyond /metrics and /healthz (the credential is checked before this runs). */
static void shield_admin(struct tmt_http_req *req, void *arg)
{
    (void)arg;
    if (shield_jobs_path(req->path))
        shield_jobs_admin(req, jobs);
    else
        tmt_http_respond_error(req, 404,
                               "no such admin path (GET, POST /v1/jobs; GET, DELETE "
                               "/v1/jobs/{asset})");
}

/* A config from the control plane: the fill key edges will send. */
static void node_apply(const struct tmt_node_config *cfg, void *arg)
{
    (void)arg;
    if (cfg->fill_key != NULL && shield != NULL)
        shield_set_fill_key(shield, cfg->fill_key, strlen(cfg->fill_key));
    /* The control plane's credential for jobs on the admin listener. */
    tmt_daemon_http_set_node_key(&shield_http, cfg->admin_key,
                                 cfg->admin_key != NULL ? strlen(cfg->admin_key) : 0);
}

/* The shield is made after the servers (it registers counters): requests reach it from here. */
static void handle(struct tmt_http_req *req, void *arg)
{
    (void)arg;
    shield_handle(req, shield);
}

static int shield_start(struct tmt_loop *loop, struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct shield_conf *c = tmt_conf_snap_get(snap);
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_daemon_http_opts o = {
        .name = "tomato-shield/" TMT_VERSION,
        .daemon = &c->daemon,
        .http = &c->http,
        .listen = c->listen,
        .admin_listen = c->admin_listen,
        .handler = handle,
        .admin_handler = shield_admin,
    };
    if (tmt_daemon_http_init(&shield_http, loop, &o, &err) != 0)
        goto fail;
    /* Requests arrive only after start: the handler's state is made between the phases. */
    shield = shield_new(c, shield_http.metrics, &err);
    if (shield == NULL)
        goto fail;
    tmt_node_register_metrics(shield_http.metrics);
    jobs_m = tmt_metrics_register(shield_http.metrics, jobs_metrics, TMT_ARRAY_LEN(jobs_metrics));
    struct shield_jobs_opts jo = {
        .store_path = c->jobs_path,
        .mezz_root = c->mezzanine_root,
        .source_root = c->jobs_source_root,
        .runners = (unsigned)c->jobs_runners,
    };
    if (shield_transcode_base(c, &jo.base, &err) != 0)
        goto fail;
    jobs = shield_jobs_open(&jo, &err);
    if (jobs == NULL)
        goto fail;
    if (tmt_node_conf_check(&c->node, &err) != 0)
        goto fail;
    if (tmt_daemon_http_start(&shield_http, &err) != 0)
        goto fail;
    jobs_ev = event_new(tmt_loop_base(loop), -1, EV_PERSIST, jobs_tick, NULL);
    struct timeval second = {1, 0};
    event_add(jobs_ev, &second);
    static const struct tmt_node_hooks hooks = {.apply = node_apply, .report = node_report};
    node = tmt_node_start(loop, &c->node, TMT_VERSION, &hooks, shield_http.main_shard, &err);
    if (node == NULL && err.code != TMT_OK)
        goto fail;
    tmt_log(TMT_LOG_INFO, "shield", "packaging", "mezzanine=%s cache=%s open=%s", c->mezzanine_root,
            c->cache_path, c->open ? "yes" : "no");
    return 0;
fail:
    tmt_log(TMT_LOG_ERROR, "shield", "cannot start", "why=\"%s\"", err.msg);
    return -1;
}

static void shield_conf_reload(struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct shield_conf *c = tmt_conf_snap_get(snap);
    tmt_daemon_http_reload(&shield_http, &c->daemon, &c->http, NULL, NULL);
    if (shield != NULL)
        shield_reload(shield, c);
}

static void shield_stop(void *arg)
{
    (void)arg;
    tmt_daemon_http_stop(&shield_http);
}

static void shield_exit(void *arg)
{
    (void)arg;
    tmt_node_stop(&node);
    if (jobs_ev != NULL)
        event_free(jobs_ev);
    jobs_ev = NULL;
    shield_jobs_free(&jobs); /* running jobs go back to the queue for the next start */
    shield_free(&shield);
    tmt_daemon_http_fini(&shield_http);
}

/* Settings the control plane pushed before the last stop, from the node's state file. */
static char *shield_pushed_at_start(const void *settings, void *arg)
{
    (void)arg;
    return tmt_node_pushed_at_start(&((const struct shield_conf *)settings)->node);
}

int main(int argc, char **argv)
{
    if (shield_transcode_wanted(&shield_prog, argc, argv))
        return shield_transcode_main(&shield_prog, argc, argv);
    static const struct tmt_daemon_hooks hooks = {
        .on_start = shield_start,
        .on_reload = shield_conf_reload,
        .on_stop = shield_stop,
        .on_exit = shield_exit,
        .pushed_at_start = shield_pushed_at_start,
    };
    return tmt_prog_daemon_main(&shield_prog, offsetof(struct shield_conf, daemon), argc, argv,
                                &hooks);
}
