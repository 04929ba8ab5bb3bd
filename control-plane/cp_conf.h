/*
 * cp_conf.h: the settings of tomato-control.
 */
#ifndef CP_CONF_H
#define CP_CONF_H

#include "tmt/config.h"
#include "tmt/daemon_conf.h"
#include "tmt/http_conf.h"

struct cp_conf {
    struct tmt_daemon_conf daemon;
    struct tmt_http_conf http;
    char *listen;       /* server.listen: the /v1 API and the /r router */
    char *admin_listen; /* admin.listen: /metrics, /healthz */
    char *public_url;   /* server.public_url: how viewers reach this control plane */
    char *store_path;   /* store.path: RocksDB directory */
};

extern const struct tmt_conf_schema cp_conf_schema;

#endif
