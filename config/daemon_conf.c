/*
 * daemon_conf.c: the settings table every daemon shares (see daemon_conf.h).
 */
#include "tmt/daemon_conf.h"

#include <stddef.h>

const struct tmt_conf_key tmt_daemon_conf_keys[TMT_DAEMON_CONF_N_KEYS] = {
    {.section = "log",
     .name = "level",
     .type = TMT_CONF_ENUM,
     .offset = offsetof(struct tmt_daemon_conf, log_level),
     .dflt = "info",
     .choices = "error|warn|info|debug",
     .flags = TMT_CONF_RELOADABLE,
     .help = "lowest level of the lines written to the log"},
    {.section = "server",
     .name = "workers",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct tmt_daemon_conf, workers),
     .dflt = "0",
     .min = 0,
     .max = 256,
     .help = "worker threads, each with its own event loop and listener; 0 = one per core"},
    {.section = "admin",
     .name = "credential_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct tmt_daemon_conf, admin_credential_file),
     .dflt = "",
     .flags = TMT_CONF_RELOADABLE,
     .help = "file holding the bearer credential (16 to 255 printable characters) that admin "
             "calls other than /metrics and /healthz must send; empty = those calls are refused"},
};
