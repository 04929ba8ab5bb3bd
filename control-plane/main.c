/*
 * tomato-control: the control plane. Users, devices, catalog, playback authorization, nodes,
 * routing and reports, as a REST/JSON API over RocksDB.
 */
#include <stddef.h>

#include "cp_conf.h"
#include "tmt/prog.h"

static const struct tmt_prog_flag cp_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"store", "DIR", "store.path"},
};

static const struct tmt_prog cp_prog = {
    .name = "tomato-control",
    .summary = "control plane: users, devices, catalog, playback tokens, nodes, routing, reports",
    .schema = &cp_conf_schema,
    .flags = cp_flags,
    .n_flags = TMT_ARRAY_LEN(cp_flags),
};

int main(int argc, char **argv)
{
    static const struct tmt_daemon_hooks hooks = {0};
    return tmt_prog_daemon_main(&cp_prog, offsetof(struct cp_conf, daemon), argc, argv, &hooks);
}
