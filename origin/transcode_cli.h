/*
 * transcode_cli.h: `tomato-shield transcode`, one transcode job in the foreground.
 */
#ifndef SHIELD_TRANSCODE_CLI_H
#define SHIELD_TRANSCODE_CLI_H

#include <stdbool.h>

#include "tmt/prog.h"

#define SHIELD_TRANSCODE_USAGE                                                                     \
    "Commands:\n"                                                                                  \
    "  (none)                  run the shield\n"                                                   \
    "  transcode --source FILE --asset ID [--root DIR] [--ladder H:BITRATE[:PRESET],...]\n"        \
    "            [--preset P] [--segment-duration 4s] [--audio-bitrate 128000] [--threads N]\n"    \
    "            [--quiet]\n"                                                                      \
    "                          make the asset {root}/{ID} (mezzanine MP4s + asset.json) from\n"    \
    "                          FILE, in the foreground, with a progress line on stderr; the\n"     \
    "                          defaults come from [transcode] and mezzanine.root\n"

struct shield_conf;
struct tmt_transcode_opts;
struct tmt_err;

/* The transcoder's options from the [transcode] settings (for the command and for jobs):
 * 0, or TMT_EINVAL with err filled (a bad transcode.ladder). */
int shield_transcode_base(const struct shield_conf *c, struct tmt_transcode_opts *o,
                          struct tmt_err *err);

/* true when the command line names the transcode command (the first argument not a flag). */
bool shield_transcode_wanted(const struct tmt_prog *prog, int argc, char **argv);

/* main() of the command: 0 done, 1 failed, 2 usage error, 130 interrupted. */
int shield_transcode_main(const struct tmt_prog *prog, int argc, char **argv);

#endif
