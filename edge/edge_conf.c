/*
 * edge_conf.c: the settings table of tomato-edge.
 */
#include "edge_conf.h"

#include <stddef.h>

static const struct tmt_conf_key edge_keys[] = {
    {.section = "server",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, listen),
     .dflt = "127.0.0.1:8080",
     .help = "address for viewers over plain HTTP (HTTP/1.1, h2c with prior knowledge)"},
    {.section = "server",
     .name = "tls_listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, tls_listen),
     .dflt = "",
     .help = "address for viewers over HTTPS (h2 and HTTP/1.1 by ALPN); empty = no HTTPS"},
    {.section = "tls",
     .name = "cert",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, tls_cert),
     .flags = TMT_CONF_RELOADABLE,
     .help = "PEM certificate chain for server.tls_listen"},
    {.section = "tls",
     .name = "key",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, tls_key),
     .flags = TMT_CONF_RELOADABLE,
     .help = "PEM private key for tls.cert"},
    {.section = "admin",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, admin_listen),
     .dflt = "127.0.0.1:9080",
     .help = "admin address (/metrics, /healthz, purge); keep it on loopback"},
    {.section = "static",
     .name = "root",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, static_root),
     .dflt = "",
     .help = "serve the files under this directory (demo and benchmarks); empty = off"},
};

static void edge_conf_check(const void *settings, struct tmt_conf_check *chk)
{
    const struct edge_conf *c = settings;
    if (c->tls_listen[0] != '\0' && c->tls_cert[0] == '\0')
        tmt_conf_check_fail(chk, "server.tls_listen", "HTTPS needs tls.cert and tls.key");
    else if (c->tls_listen[0] != '\0' && c->tls_key[0] == '\0')
        tmt_conf_check_fail(chk, "tls.cert", "tls.cert is set but tls.key is not");
}

static const struct tmt_conf_part edge_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct edge_conf, daemon)),
    TMT_HTTP_CONF_PART(offsetof(struct edge_conf, http)),
    {edge_keys, TMT_ARRAY_LEN(edge_keys), 0},
};

const struct tmt_conf_schema edge_conf_schema = {
    .program = "tomato-edge",
    .parts = edge_parts,
    .n_parts = TMT_ARRAY_LEN(edge_parts),
    .size = sizeof(struct edge_conf),
    .check = edge_conf_check,
};
