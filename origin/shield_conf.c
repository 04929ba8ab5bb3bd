/*
 * shield_conf.c: the settings table of tomato-shield.
 */
#include "shield_conf.h"

#include <stddef.h>

static const struct tmt_conf_key shield_keys[] = {
    {.section = "server",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct shield_conf, listen),
     .dflt = "127.0.0.1:8300",
     .help = "address edges fill from (/v/{asset}/...)"},
    {.section = "server",
     .name = "open",
     .type = TMT_CONF_BOOL,
     .offset = offsetof(struct shield_conf, open),
     .dflt = "false",
     .flags = TMT_CONF_RELOADABLE,
     .help = "serve /v/ requests without the edges' fill key (single-host demos and tests only)"},
    {.section = "admin",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct shield_conf, admin_listen),
     .dflt = "127.0.0.1:9300",
     .help = "admin address (/metrics, /healthz, transcode jobs); keep it on loopback"},
    {.section = "mezzanine",
     .name = "root",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct shield_conf, mezzanine_root),
     .dflt = "var/mezzanine",
     .help = "folder holding {asset}/asset.json and {asset}/{rendition}.mp4"},
};

static const struct tmt_conf_part shield_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct shield_conf, daemon)),
    TMT_HTTP_CONF_PART(offsetof(struct shield_conf, http)),
    {shield_keys, TMT_ARRAY_LEN(shield_keys), 0},
};

const struct tmt_conf_schema shield_conf_schema = {
    .program = "tomato-shield",
    .parts = shield_parts,
    .n_parts = TMT_ARRAY_LEN(shield_parts),
    .size = sizeof(struct shield_conf),
};
