/*
 * tomato-shield: the origin shield. Packages HLS/DASH on request from mezzanine files, keeps what
 * it made in its own cache, and runs transcode jobs.
 *
 * main() stays thin: the shared front end runs the lifecycle; the hooks build the servers.
 * `tomato-shield transcode --source FILE --asset ID` runs one transcode job (transcode_cli.c).
 */
#include <stddef.h>
#include <string.h>

#include "shield.h"
#include "shield_conf.h"
#include "transcode_cli.h"
#include "tmt/daemon_http.h"
#include "tmt/log.h"
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
static struct shield *shield;
static struct tmt_node *node;

/* A config from the control plane: the fill key edges will send. */
static void node_apply(const struct tmt_node_config *cfg, void *arg)
{
    (void)arg;
    if (cfg->fill_key != NULL && shield != NULL)
        shield_set_fill_key(shield, cfg->fill_key, strlen(cfg->fill_key));
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
    };
    if (tmt_daemon_http_init(&shield_http, loop, &o, &err) != 0)
        goto fail;
    /* Requests arrive only after start: the handler's state is made between the phases. */
    shield = shield_new(c, shield_http.metrics, &err);
    if (shield == NULL)
        goto fail;
    tmt_node_register_metrics(shield_http.metrics);
    if (tmt_node_conf_check(&c->node, &err) != 0)
        goto fail;
    if (tmt_daemon_http_start(&shield_http, &err) != 0)
        goto fail;
    static const struct tmt_node_hooks hooks = {.apply = node_apply};
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
