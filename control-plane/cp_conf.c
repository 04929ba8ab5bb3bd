/*
 * cp_conf.c: the settings table of tomato-control.
 */
#include "cp_conf.h"

#include <stddef.h>

static const struct tmt_conf_key cp_keys[] = {
    {.section = "server",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct cp_conf, listen),
     .dflt = "127.0.0.1:8400",
     .help = "address of the REST API (/v1) and the playback router (/r)"},
    {.section = "server",
     .name = "public_url",
     .type = TMT_CONF_URL,
     .offset = offsetof(struct cp_conf, public_url),
     .dflt = "http://127.0.0.1:8400",
     .flags = TMT_CONF_RELOADABLE,
     .help = "base URL viewers and nodes use to reach this control plane (router URLs)"},
    {.section = "admin",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct cp_conf, admin_listen),
     .dflt = "127.0.0.1:9400",
     .help = "admin address (/metrics, /healthz); keep it on loopback"},
    {.section = "store",
     .name = "path",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct cp_conf, store_path),
     .dflt = "var/control",
     .help = "RocksDB directory holding users, devices, catalog, nodes and reports"},
};

static const struct tmt_conf_part cp_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct cp_conf, daemon)),
    TMT_HTTP_CONF_PART(offsetof(struct cp_conf, http)),
    {cp_keys, TMT_ARRAY_LEN(cp_keys), 0},
};

const struct tmt_conf_schema cp_conf_schema = {
    .program = "tomato-control",
    .parts = cp_parts,
    .n_parts = TMT_ARRAY_LEN(cp_parts),
    .size = sizeof(struct cp_conf),
};
