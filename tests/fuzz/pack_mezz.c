/*
 * Fuzz target: arbitrary bytes as a mezzanine MP4 through the packager's indexer (libavformat
 * over in-memory I/O), and as a stored index blob.
 *
 * Input: the whole input is
 *   1. a mezzanine: indexed as the file of a video and an audio rendition (first H.264 and first
 *      AAC track) without comparing it to asset.json, so any file the demuxer accepts goes on to
 *      segmentation; when that succeeds, every init and media segment and all manifests are
 *      written (sample bytes read from the same input), and the index makes a blob that must
 *      load back and save to the same bytes;
 *   2. an index blob, as is (a mutated blob fails its checksum: the error path);
 *   3. the payload of an index blob behind a header made valid here (the part after the 32-byte
 *      header when the input starts with the blob magic, otherwise all of it), so the decoder and
 *      the validator see arbitrary bytes.
 * Checks: no crash or sanitizer report; an error always comes with a message; a segment is
 * written whole or not at all; what loads from a blob passes through every writer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fuzz_util.h"
#include "pack_int.h"
#include "tmt/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) FUZZ_CHECK("pack_mezz", cond)

static const char ASSET_JSON[] =
    "{\"version\":1,\"segment_duration\":1,\"renditions\":["
    "{\"id\":\"v\",\"type\":\"video\",\"file\":\"m.mp4\",\"width\":160,\"height\":90,"
    "\"bitrate\":100000,\"frame_rate\":10},"
    "{\"id\":\"a\",\"type\":\"audio\",\"file\":\"m.mp4\",\"bitrate\":32000}]}";

/* Every writer over every rendition; segments read from io when given. */
static void exercise(const struct tmt_pack_index *ix, const struct tmt_pack_io *io)
{
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    CHECK(tmt_pack_hls_master(ix, &b) == 0);
    CHECK(tmt_pack_dash_mpd(ix, &b) == 0);
    for (unsigned r = 0; r < tmt_pack_index_renditions(ix); r++) {
        struct tmt_pack_rendition_info info;
        tmt_pack_index_info(ix, r, &info);
        CHECK(info.segments > 0 && info.duration_ts > 0);
        b.len = 0;
        CHECK(tmt_pack_hls_media(ix, r, &b) == 0);
        b.len = 0;
        CHECK(tmt_pack_init_segment(ix, r, &b) == 0);
        for (unsigned n = 1; io != NULL && n <= info.segments && n <= 64; n++) {
            struct tmt_err err;
            size_t before = b.len;
            tmt_err_clear(&err);
            int rc = tmt_pack_media_segment(ix, r, n, io, &b, &err);
            CHECK(rc == 0 ? b.len > before : (b.len == before && err.msg[0] != '\0'));
        }
    }
    tmt_pack_buf_fini(&b);
}

static void try_blob(const uint8_t *p, size_t n)
{
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_index *ix = tmt_pack_index_load(p, n, &err);
    if (ix == NULL) {
        CHECK(err.code == TMT_ECORRUPT || err.code == TMT_ELIMIT);
        CHECK(err.msg[0] != '\0');
        return;
    }
    exercise(ix, NULL);
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    CHECK(tmt_pack_index_save(ix, &b) == 0);
    struct tmt_pack_index *again = tmt_pack_index_load(b.p, b.len, &err);
    CHECK(again != NULL);
    tmt_pack_index_free(&again);
    tmt_pack_buf_fini(&b);
    tmt_pack_index_free(&ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tmt_pack_asset *asset;
    if (asset == NULL) {
        av_log_set_level(AV_LOG_QUIET);
        asset = tmt_pack_asset_parse(ASSET_JSON, strlen(ASSET_JSON), "fuzz", NULL, NULL);
        CHECK(asset != NULL);
    }
    uint8_t *copy = (uint8_t *)fuzz_dup(data, size);

    /* 1: a mezzanine */
    struct tmt_pack_io ios[2];
    tmt_pack_io_init_mem(&ios[0], copy, size, "m.mp4");
    ios[1] = ios[0];
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_index *ix = pack_index_build_io(asset, ios, false, &err);
    if (ix == NULL) {
        CHECK(err.code != TMT_OK && err.msg[0] != '\0');
    } else {
        exercise(ix, &ios[0]);
        struct tmt_pack_buf b1, b2;
        tmt_pack_buf_init(&b1);
        tmt_pack_buf_init(&b2);
        CHECK(tmt_pack_index_save(ix, &b1) == 0);
        struct tmt_pack_index *back = tmt_pack_index_load(b1.p, b1.len, &err);
        CHECK(back != NULL);
        CHECK(tmt_pack_index_save(back, &b2) == 0);
        CHECK(b1.len == b2.len && memcmp(b1.p, b2.p, b1.len) == 0);
        tmt_pack_index_free(&back);
        tmt_pack_buf_fini(&b1);
        tmt_pack_buf_fini(&b2);
        tmt_pack_index_free(&ix);
    }

    /* 2: a blob as is */
    try_blob(copy, size);

    /* 3: a payload behind a valid header */
    const uint8_t *payload = data;
    size_t plen = size;
    if (size >= 32 && memcmp(data, "TMTPKIX", 8) == 0) {
        payload += 32;
        plen -= 32;
    }
    uint8_t *blob = malloc(plen + 32);
    CHECK(blob != NULL);
    memcpy(blob, "TMTPKIX", 8);
    uint64_t fields[3] = {1, plen, XXH3_64bits(payload, plen)};
    for (int i = 0; i < 8; i++) {
        blob[8 + i] = (uint8_t)(fields[0] >> (8 * i)); /* version 1, then 4 zero bytes */
        blob[16 + i] = (uint8_t)(fields[1] >> (8 * i));
        blob[24 + i] = (uint8_t)(fields[2] >> (8 * i));
    }
    if (plen > 0)
        memcpy(blob + 32, payload, plen);
    try_blob(blob, plen + 32);
    free(blob);
    free(copy);
    return 0;
}
