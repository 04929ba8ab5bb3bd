/*
 * tomato-edge: serves viewers from a tiered cache and fills misses from origin shields.
 *
 * main() stays thin: the shared front end parses the command line and settings, and runs the
 * daemon lifecycle (signals, reload, shutdown).
 */
#include <stddef.h>

#include "edge_conf.h"
#include "tmt/prog.h"

static const struct tmt_prog_flag edge_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"static", "DIR", "static.root"},
};

static const struct tmt_prog edge_prog = {
    .name = "tomato-edge",
    .summary = "edge caching node: serves HLS/DASH viewers from a hot/warm/cold cache",
    .schema = &edge_conf_schema,
    .flags = edge_flags,
    .n_flags = TMT_ARRAY_LEN(edge_flags),
};

int main(int argc, char **argv)
{
    static const struct tmt_daemon_hooks hooks = {0};
    return tmt_prog_daemon_main(&edge_prog, offsetof(struct edge_conf, daemon), argc, argv, &hooks);
}
