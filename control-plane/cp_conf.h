/*
 * cp_conf.h: the settings of tomato-control.
 */
#ifndef CP_CONF_H
#define CP_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "tmt/config.h"
#include "tmt/daemon_conf.h"
#include "tmt/http_conf.h"

struct cp_conf {
    struct tmt_daemon_conf daemon;
    struct tmt_http_conf http;
    char *listen;       /* server.listen: the /v1 API and the /r router */
    char *admin_listen; /* admin.listen: /metrics, /healthz */
    char *public_url;   /* server.public_url: how viewers reach this control plane */
    char *server_id;    /* server.id: the iss of every token */
    int64_t api_threads;
    uint64_t max_body;
    char *store_path; /* store.path: RocksDB directory */
    bool store_sync;
    uint64_t session_ttl_ms;
    int64_t scrypt_n;
    uint64_t login_window_ms;
    int64_t max_failures_per_account;
    uint64_t address_window_ms;
    int64_t max_attempts_per_address;
    char *bootstrap_email;
    char *bootstrap_password_file;
    int64_t max_active_devices;
    int64_t max_registered_devices;
    uint64_t lease_ttl_ms;
    char *edge_url;
    uint64_t token_margin_ms;
    uint64_t default_token_ttl_ms;
    uint64_t max_token_ttl_ms;
    uint64_t ticket_ttl_ms;
    uint64_t heartbeat_interval_ms;
    struct tmt_conf_list trusted_proxies;
    char *geo_zones_file;
    char *geo_db_path;
    char *geo_default_group;
    int64_t geo_overload_pct;
    int64_t geo_tie_km;
    uint64_t health_timeout_ms;
    uint64_t rep_minute_keep_ms; /* reports.minute_retention */
    uint64_t rep_hour_keep_ms;   /* reports.hour_retention */
    uint64_t rep_day_keep_ms;    /* reports.day_retention */
    char *web_player_dir;        /* web.player_dir: npm's node_modules holding the players */
};

extern const struct tmt_conf_schema cp_conf_schema;

#endif
