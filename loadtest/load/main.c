/*
 * tomato-load: the load generator (viewer simulator and trace replayer).
 *
 * This build has its settings and command line; the load modes are not in it yet, and running it
 * says so and exits 1 rather than pretending to send load.
 */
#include <stdio.h>

#include "tmt/prog.h"

struct load_conf {
    char *target;
    uint64_t duration_ms;
    int64_t requests;
    int64_t viewers;
};

static const struct tmt_conf_key load_keys[] = {
    {.section = "target",
     .name = "url",
     .type = TMT_CONF_URL,
     .offset = offsetof(struct load_conf, target),
     .dflt = "http://127.0.0.1:8080",
     .help = "base URL of the edge to load; traffic goes only there"},
    {.section = "load",
     .name = "duration",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct load_conf, duration_ms),
     .dflt = "30s",
     .min = 1000,
     .max = 86400000,
     .help = "stop after this long"},
    {.section = "load",
     .name = "requests",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct load_conf, requests),
     .dflt = "1000000",
     .min = 1,
     .max = INT64_MAX,
     .help = "stop after this many requests"},
    {.section = "load",
     .name = "viewers",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct load_conf, viewers),
     .dflt = "10",
     .min = 1,
     .max = 100000,
     .help = "concurrent simulated viewers"},
};

static const struct tmt_conf_part load_parts[] = {{load_keys, TMT_ARRAY_LEN(load_keys), 0}};

static const struct tmt_conf_schema load_schema = {
    .program = "tomato-load",
    .parts = load_parts,
    .n_parts = TMT_ARRAY_LEN(load_parts),
    .size = sizeof(struct load_conf),
};

static const struct tmt_prog_flag load_flags[] = {
    {"url", "URL", "target.url"},
    {"duration", "TIME", "load.duration"},
    {"requests", "N", "load.requests"},
    {"viewers", "N", "load.viewers"},
};

static const struct tmt_prog load_prog = {
    .name = "tomato-load",
    .summary = "load generator: simulated HLS/DASH viewers and trace replay against an edge",
    .schema = &load_schema,
    .flags = load_flags,
    .n_flags = TMT_ARRAY_LEN(load_flags),
};

int main(int argc, char **argv)
{
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    int rc = tmt_prog_start(&load_prog, argc, argv, &cli, &snap);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "tomato-load: this build has no load modes yet (viewer and trace replay are "
                    "tracked by the load generator issue); nothing was sent\n");
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return TMT_EXIT_FAIL;
}
