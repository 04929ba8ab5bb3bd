/*
 * edge_conf.h: the settings of tomato-edge.
 */
#ifndef EDGE_CONF_H
#define EDGE_CONF_H

#include "tmt/config.h"
#include "tmt/daemon_conf.h"
#include "tmt/http_conf.h"

struct edge_conf {
    struct tmt_daemon_conf daemon;
    struct tmt_http_conf http;
    char *listen;       /* server.listen: plain HTTP (HTTP/1.1 and h2c) */
    char *tls_listen;   /* server.tls_listen: HTTPS (h2 and HTTP/1.1 by ALPN); empty = off */
    char *tls_cert;     /* tls.cert */
    char *tls_key;      /* tls.key */
    char *admin_listen; /* admin.listen: /metrics, /healthz, purge */
    char *static_root;  /* static.root: serve this directory (demo and benchmarks); empty = off */
};

extern const struct tmt_conf_schema edge_conf_schema;

#endif
