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
    {.section = "fill",
     .name = "key_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct shield_conf, fill_key_file),
     .dflt = "",
     .flags = TMT_CONF_RELOADABLE,
     .help = "file holding the fill key edges send as a bearer credential on /v/ requests "
             "(16 to 255 characters); without it, and without server.open, /v/ is refused"},
    {.section = "cache",
     .name = "path",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct shield_conf, cache_path),
     .dflt = "var/shield/cache",
     .help = "folder of the shield cache: objects/ (packaged objects, RocksDB) and indexes/ (asset "
             "indexes, RocksDB)"},
    {.section = "cache",
     .name = "ram_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct shield_conf, ram_size),
     .dflt = "256MiB",
     .help = "bytes of packaged objects kept in RAM"},
    {.section = "cache",
     .name = "disk_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct shield_conf, disk_size),
     .dflt = "4GiB",
     .min = 1 << 20,
     .help = "bytes of packaged objects kept in cache.path"},
    {.section = "cache",
     .name = "max_object_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct shield_conf, max_object_size),
     .dflt = "64MiB",
     .min = 1 << 16,
     .help = "largest packaged object kept (indexes included); larger ones are served, not kept"},
    {.section = "pack",
     .name = "threads",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct shield_conf, pack_threads),
     .dflt = "0",
     .min = 0,
     .max = 256,
     .help = "threads that index mezzanines and cut segments (blocking file reads); 0 = two per "
             "core"},
};

static const struct tmt_conf_part shield_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct shield_conf, daemon)),
    TMT_HTTP_CONF_PART(offsetof(struct shield_conf, http)),
    TMT_NODE_CONF_PART(offsetof(struct shield_conf, node)),
    {shield_keys, TMT_ARRAY_LEN(shield_keys), 0},
};

const struct tmt_conf_schema shield_conf_schema = {
    .program = "tomato-shield",
    .parts = shield_parts,
    .n_parts = TMT_ARRAY_LEN(shield_parts),
    .size = sizeof(struct shield_conf),
};
