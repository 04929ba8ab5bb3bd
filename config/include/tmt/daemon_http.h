/*
 * daemon_http.h: what every daemon does to serve HTTP, once: the counters registry, the main
 * server on its worker threads, the admin server (/metrics, /healthz and the daemon's own admin
 * paths, which need the bearer credential of admin.credential_file) on the main loop, the access
 * log, reload of the limits, and graceful stop.
 *
 * Two phases so that a daemon's other modules can add their counters: tmt_daemon_http_init
 * creates the registry and the servers (registering the server counters), the daemon registers
 * its own tables on dh->metrics, then tmt_daemon_http_start seals the registry and starts.
 * Shards: worker i of the main server writes shard i; the main thread writes shard `workers`
 * (dh->main_shard).
 */
#ifndef TMT_DAEMON_HTTP_H
#define TMT_DAEMON_HTTP_H

#include <stdbool.h>

#include "tmt/daemon_conf.h"
#include "tmt/err.h"
#include "tmt/http_conf.h"
#include "tmt/secret.h"
#include "tmt/server.h"

struct tmt_loop;
struct tmt_metrics;

struct tmt_daemon_http_opts {
    const char *name; /* Server header, e.g. "tomato-shield/0.1.0" */
    const struct tmt_daemon_conf *daemon;
    const struct tmt_http_conf *http;
    const char *listen;       /* main listener address */
    const char *admin_listen; /* admin listener address; empty: none */
    const char *tls_listen; /* HTTPS listener address (h2 and HTTP/1.1 by ALPN); NULL/empty: none */
    const char *tls_cert;   /* PEM chain for tls_listen */
    const char *tls_key;    /* PEM key for tls_cert */
    tmt_http_handler_fn *handler;
    void *handler_arg;
    /* The daemon's own admin paths, tried after /metrics and /healthz; NULL: 404. */
    tmt_http_handler_fn *admin_handler;
    void *admin_arg;
    /* Per finished request of the main server (tmt_server_opts.on_done); NULL: none. */
    void (*on_done)(void *arg, const struct tmt_http_req *req, int status, uint64_t body_bytes);
    void *on_done_arg;
};

struct tmt_daemon_http {
    struct tmt_metrics *metrics;
    struct tmt_server *server;
    struct tmt_server *admin;
    unsigned workers;
    unsigned main_shard;
    int access_log_fd;
    bool own_log_fd;
    bool has_tls; /* listener 1 of server is the HTTPS one */
    tmt_http_handler_fn *admin_handler;
    void *admin_arg;
    /* admin.credential_file's credential (length 0: admin calls refused); main loop only */
    char admin_cred[TMT_SECRET_MAX];
    size_t admin_cred_len;
    /* the control plane's credential for this node (tmt_daemon_http_set_node_key); main loop */
    char node_key[TMT_SECRET_MAX];
    size_t node_key_len;
};

/* Phase one. Returns 0 or an error with err filled (nothing left to free on error). */
int tmt_daemon_http_init(struct tmt_daemon_http *dh, struct tmt_loop *loop,
                         const struct tmt_daemon_http_opts *o, struct tmt_err *err) TMT_MUST_CHECK;

/* Phase two: seal the registry, bind, start the workers. Logs the addresses it listens on. */
int tmt_daemon_http_start(struct tmt_daemon_http *dh, struct tmt_err *err) TMT_MUST_CHECK;

/*
 * Both phases at once, for daemons with no counters of their own yet; on failure logs why and
 * returns -1 (the on_start convention).
 */
int tmt_daemon_http_run(struct tmt_daemon_http *dh, struct tmt_loop *loop,
                        const struct tmt_daemon_http_opts *o);

/*
 * New limits from reloaded settings, the admin credential read again (a file that does not load
 * is logged and the old credential stays), and the certificate and key read again (tls_cert and
 * tls_key may name new files or the same files with new contents; NULL: no HTTPS listener). A
 * certificate that does not load is logged and the old one stays.
 */
void tmt_daemon_http_reload(struct tmt_daemon_http *dh, const struct tmt_daemon_conf *daemon,
                            const struct tmt_http_conf *http, const char *tls_cert,
                            const char *tls_key);

/*
 * A second credential the admin listener accepts: the one the control plane presents on this
 * node's admin paths (from the node's config). len 0 removes it. Main loop.
 */
void tmt_daemon_http_set_node_key(struct tmt_daemon_http *dh, const char *key, size_t len);

/* Graceful stop of both servers (blocks until the workers are done). */
void tmt_daemon_http_stop(struct tmt_daemon_http *dh);

/* Frees everything. Safe after a failed init or start. */
void tmt_daemon_http_fini(struct tmt_daemon_http *dh);

#endif
