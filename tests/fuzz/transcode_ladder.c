/*
 * Fuzz target: the transcoder's ladder syntax ("HEIGHT:BITRATE[:PRESET],..."), which arrives from
 * settings files and from the job API (POST /v1/jobs, the control plane's ingest). Beyond not
 * crashing: a ladder that parses has 1 to TMT_TRANSCODE_MAX_RUNGS rungs, even distinct heights in
 * [16, 4320] kept highest first, bit rates above zero and presets that are valid or empty; a
 * ladder that fails leaves the options as they were and says why.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "tmt/transcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* the parser takes a C string */
    FUZZ_CHECK("transcode_ladder", text != NULL);
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    struct tmt_transcode_opts o, before;
    tmt_transcode_opts_init(&o);
    before = o;
    struct tmt_err err;
    tmt_err_clear(&err);
    if (tmt_transcode_ladder_parse(&o, text, &err) == 0) {
        FUZZ_CHECK("transcode_ladder", o.n_rungs >= 1 && o.n_rungs <= TMT_TRANSCODE_MAX_RUNGS);
        for (unsigned i = 0; i < o.n_rungs; i++) {
            const struct tmt_transcode_rung *r = &o.ladder[i];
            FUZZ_CHECK("transcode_ladder", r->height >= 16 && r->height <= 4320);
            FUZZ_CHECK("transcode_ladder", r->height % 2 == 0);
            FUZZ_CHECK("transcode_ladder", r->bitrate > 0);
            FUZZ_CHECK("transcode_ladder",
                       r->preset[0] == '\0' || tmt_transcode_preset_valid(r->preset));
            FUZZ_CHECK("transcode_ladder", i == 0 || o.ladder[i - 1].height > r->height);
        }
    } else {
        FUZZ_CHECK("transcode_ladder", memcmp(&o, &before, sizeof(o)) == 0);
        FUZZ_CHECK("transcode_ladder", err.msg[0] != '\0');
    }
    free(text);
    return 0;
}
