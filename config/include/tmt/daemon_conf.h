/*
 * daemon_conf.h: settings every daemon has (edge, shield, control plane), declared once.
 *
 * A daemon embeds struct tmt_daemon_conf in its settings struct and adds
 * TMT_DAEMON_CONF_PART(offsetof(its struct, member)) to its schema's parts. The listen addresses
 * differ per daemon (their defaults are the ports of docs/ARCHITECTURE.md), so each daemon declares
 * those in its own table.
 */
#ifndef TMT_DAEMON_CONF_H
#define TMT_DAEMON_CONF_H

#include <stdint.h>

#include "tmt/config.h"

struct tmt_daemon_conf {
    int log_level;   /* index into "error|warn|info|debug" */
    int64_t workers; /* worker threads; 0 = one per core */
    /* admin.credential_file: the bearer credential admin calls other than /metrics and
     * /healthz need; empty = those calls are refused */
    char *admin_credential_file;
};

/* The count is a constant so that daemons can put the part in their static schema tables. */
#define TMT_DAEMON_CONF_N_KEYS 3
extern const struct tmt_conf_key tmt_daemon_conf_keys[TMT_DAEMON_CONF_N_KEYS];

#define TMT_DAEMON_CONF_PART(base)                                                                 \
    {                                                                                              \
        tmt_daemon_conf_keys, TMT_DAEMON_CONF_N_KEYS, (base)                                       \
    }

#endif
