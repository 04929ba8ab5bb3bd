/*
 * tomato-control: the control plane. Users, devices, catalog, playback authorization, nodes,
 * routing and reports, as a REST/JSON API over RocksDB.
 *
 * main() stays thin: the shared front end runs the lifecycle; the hooks build the servers.
 */
#include <stddef.h>

#include "cp_conf.h"
#include "tmt/daemon_http.h"
#include "tmt/log.h"
#include "tmt/prog.h"
#include "tmt/version.h"

static const struct tmt_prog_flag cp_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"store", "DIR", "store.path"},
};

static const struct tmt_prog cp_prog = {
    .name = "tomato-control",
    .summary = "control plane: users, devices, catalog, playback tokens, nodes, routing, reports",
    .schema = &cp_conf_schema,
    .flags = cp_flags,
    .n_flags = TMT_ARRAY_LEN(cp_flags),
};

static struct tmt_daemon_http cp_http;

static void cp_handle(struct tmt_http_req *req, void *arg)
{
    (void)arg;
    /* XXX(#6): the /v1 API and the /r router answer here. */
    tmt_http_respond_error(req, 404, "no such path (the API is not available yet)");
}

static int cp_start(struct tmt_loop *loop, struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct cp_conf *c = tmt_conf_snap_get(snap);
    struct tmt_daemon_http_opts o = {
        .name = "tomato-control/" TMT_VERSION,
        .daemon = &c->daemon,
        .http = &c->http,
        .listen = c->listen,
        .admin_listen = c->admin_listen,
        .handler = cp_handle,
    };
    return tmt_daemon_http_run(&cp_http, loop, &o);
}

static void cp_reload(struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct cp_conf *c = tmt_conf_snap_get(snap);
    tmt_daemon_http_reload(&cp_http, &c->daemon, &c->http, NULL, NULL);
}

static void cp_stop(void *arg)
{
    (void)arg;
    tmt_daemon_http_stop(&cp_http);
}

static void cp_exit(void *arg)
{
    (void)arg;
    tmt_daemon_http_fini(&cp_http);
}

int main(int argc, char **argv)
{
    static const struct tmt_daemon_hooks hooks = {
        .on_start = cp_start,
        .on_reload = cp_reload,
        .on_stop = cp_stop,
        .on_exit = cp_exit,
    };
    return tmt_prog_daemon_main(&cp_prog, offsetof(struct cp_conf, daemon), argc, argv, &hooks);
}
