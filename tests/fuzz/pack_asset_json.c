/*
 * Fuzz target: arbitrary bytes as asset.json through tmt_pack_asset_parse.
 *
 * Checks: a failure is TMT_EINVAL with a message naming the file; a success describes 1 to 16
 * renditions with valid, distinct ids and file names that stay inside the asset folder, at least
 * one video rendition with a size and a frame rate, and a target duration in [1, 30] s.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "pack_int.h"
#include "tmt/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) FUZZ_CHECK("pack_asset_json", cond)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = fuzz_dup(data, size);
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_asset *a = tmt_pack_asset_parse(copy, size, "a1", "x.json", &err);
    if (a == NULL) {
        CHECK(err.code == TMT_EINVAL);
        CHECK(strncmp(err.msg, "x.json", 6) == 0);
        free(copy);
        return 0;
    }
    unsigned n = tmt_pack_asset_renditions(a), videos = 0;
    CHECK(n >= 1 && n <= TMT_PACK_MAX_RENDITIONS);
    CHECK(a->seg_ms >= 1000 && a->seg_ms <= 30000);
    for (unsigned i = 0; i < n; i++) {
        const struct pack_rendition_desc *d = &a->r[i];
        CHECK(tmt_pack_id_valid(d->id));
        CHECK(d->file[0] != '\0' && d->file[0] != '.' && strchr(d->file, '/') == NULL);
        CHECK(pack_asset_check_desc(d, "x", NULL) == 0);
        for (unsigned j = 0; j < i; j++)
            CHECK(strcmp(a->r[j].id, d->id) != 0);
        if (d->kind == TMT_PACK_VIDEO) {
            videos++;
            CHECK(d->width >= 16 && d->height >= 16 && d->fps_num > 0 && d->fps_den > 0);
        }
    }
    CHECK(videos >= 1);
    tmt_pack_asset_free(&a);
    CHECK(a == NULL);
    free(copy);
    return 0;
}
