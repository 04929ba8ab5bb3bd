/*
 * tomato-shield: the origin shield. Packages HLS/DASH on request from mezzanine files, keeps what
 * it made in its own cache, and runs transcode jobs.
 */
#include <stddef.h>

#include "shield_conf.h"
#include "tmt/prog.h"

static const struct tmt_prog_flag shield_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"mezzanine", "DIR", "mezzanine.root"},
};

static const struct tmt_prog shield_prog = {
    .name = "tomato-shield",
    .summary = "origin shield: just-in-time HLS/DASH packaging behind a shield cache",
    .schema = &shield_conf_schema,
    .flags = shield_flags,
    .n_flags = TMT_ARRAY_LEN(shield_flags),
};

int main(int argc, char **argv)
{
    static const struct tmt_daemon_hooks hooks = {0};
    return tmt_prog_daemon_main(&shield_prog, offsetof(struct shield_conf, daemon), argc, argv,
                                &hooks);
}
