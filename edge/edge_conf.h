/*
 * edge_conf.h: the settings of tomato-edge.
 */
#ifndef EDGE_CONF_H
#define EDGE_CONF_H

#include "tmt/config.h"
#include "tmt/daemon_conf.h"
#include "tmt/http_conf.h"
#include "tmt/node.h"

struct edge_conf {
    struct tmt_daemon_conf daemon;
    struct tmt_http_conf http;
    char *listen;       /* server.listen: plain HTTP (HTTP/1.1 and h2c) */
    char *tls_listen;   /* server.tls_listen: HTTPS (h2 and HTTP/1.1 by ALPN); empty = off */
    char *tls_cert;     /* tls.cert */
    char *tls_key;      /* tls.key */
    char *admin_listen; /* admin.listen: /metrics, /healthz, purge */
    char *static_root;  /* static.root: serve this directory (demo and benchmarks); empty = off */
    /* [upstream]: the origin shields (or any HTTP origin) misses are filled from */
    struct tmt_conf_list shields;
    char *fill_key_file; /* upstream.fill_key_file */
    uint64_t up_connect_ms, up_response_ms, up_read_ms, up_holdoff_ms;
    /* [cache] */
    uint64_t hot_size, warm_size, cold_size, max_object_size;
    char *warm_path, *cold_path;
    int64_t warm_zstd, cold_zstd;
    int policy;       /* enum tmt_policy_kind */
    int policy_clock; /* 0 real, 1 frozen */
    char *mrc_rate;   /* cache.mrc_rate: sample rate of the miss-ratio-curve estimate, "0" = off */
    uint64_t mrc_memory;
    uint64_t heuristic_max_ms;
    bool cdn_cache_control;
    char *cache_name; /* the Cache-Status entry's name */
    /* [tokens]: playback tokens checked on protected paths (tokens.h) */
    struct tmt_conf_list tok_protect, tok_public;
    char *tok_keys_file;
    uint64_t tok_skew_ms;
    int64_t tok_cache_entries;
    struct tmt_node_conf node; /* [node]: managed by a control plane */
};

extern const struct tmt_conf_schema edge_conf_schema;

#endif
