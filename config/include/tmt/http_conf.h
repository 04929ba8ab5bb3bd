/*
 * http_conf.h: the HTTP server settings every daemon shares ([http] limits and timeouts, the
 * access log), declared once and turned into struct tmt_server_limits.
 *
 * A daemon embeds struct tmt_http_conf in its settings and adds TMT_HTTP_CONF_PART(offsetof(its
 * struct, member)) to its schema's parts, as with tmt_daemon_conf.
 */
#ifndef TMT_HTTP_CONF_H
#define TMT_HTTP_CONF_H

#include <stdint.h>

#include "tmt/config.h"

struct tmt_server_limits;

struct tmt_http_conf {
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t write_timeout_ms;
    uint64_t shutdown_grace_ms;
    uint64_t max_head_bytes;
    int64_t max_uri_length;
    int64_t max_headers;
    uint64_t max_body_bytes;
    int64_t max_connections;
    int64_t h2_max_streams;
    char *access_log;  /* path; empty = off; "-" = standard output */
    char *cors_origin; /* Access-Control-Allow-Origin; empty = no CORS */
};

#define TMT_HTTP_CONF_N_KEYS 13
extern const struct tmt_conf_key tmt_http_conf_keys[TMT_HTTP_CONF_N_KEYS];

#define TMT_HTTP_CONF_PART(base)                                                                   \
    {                                                                                              \
        tmt_http_conf_keys, TMT_HTTP_CONF_N_KEYS, (base)                                           \
    }

/* The server limits these settings describe. */
void tmt_http_conf_limits(const struct tmt_http_conf *c, struct tmt_server_limits *l);

/* The checks of a program's settings check function for its [http] part: http.cors_origin is
 * "*" or a list of origins and fits the server's limits. */
void tmt_http_conf_check(const struct tmt_http_conf *c, struct tmt_conf_check *chk);

#endif
