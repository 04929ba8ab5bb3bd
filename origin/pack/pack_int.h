/*
 * pack_int.h: the packager's shared structs. The asset description comes from asset.json; the
 * index holds one track per rendition with its samples (decode order) and segments.
 *
 * Timestamps are in the track's timescale (the mezzanine track's), as the demuxer reports them
 * after the mezzanine's edit list: for H.264 with B-frames the first dts is negative and the first
 * pts 0; AAC's priming frame has dts -1024. The output keeps every sample and maps times so that:
 *   decode time in the segment (tfdt, trun) = dts + dec_shift, which is >= 0;
 *   video composition offset (trun v1, signed) = pts - dts - dec_shift, so presentation = pts;
 *   audio: an edit list in init.mp4 (media_time = dec_shift) hides the priming, presentation = dts.
 * Segment start and duration (playlists, MPD timeline) are presentation times.
 */
#ifndef PACK_INT_H
#define PACK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "tmt/pack.h"

#define PACK_INDEX_MAGIC 0x7061636bu /* "pack" */
#define PACK_ASSET_MAGIC 0x61737374u /* "asst" */
#define PACK_FILE_MAX 128
#define PACK_CODECS_MAX 40
#define PACK_LANG_MAX 35
#define PACK_NAME_MAX 64
#define PACK_CONFIG_MAX 1024 /* avcC or AudioSpecificConfig bytes */

#define PACK_SAMPLE_KEY 1u

/* One access unit, in decode order. 32 bytes. */
struct pack_sample {
    uint64_t pos;  /* file offset */
    int64_t dts;   /* decode time */
    int32_t cto;   /* pts - dts */
    uint32_t dur;  /* until the next sample's dts (the last: the track's own duration) */
    uint32_t size; /* bytes */
    uint32_t flags;
};

struct pack_segment {
    uint32_t first; /* first sample */
    uint32_t count;
    int64_t start;  /* presentation start */
    uint64_t dur;   /* presentation duration */
    uint64_t bytes; /* sample bytes (mdat payload) */
};

/* A rendition as asset.json describes it. Zero means "not given" for the optional numbers. */
struct pack_rendition_desc {
    char id[TMT_PACK_ID_MAX + 1];
    char file[PACK_FILE_MAX + 1];
    enum tmt_pack_kind kind;
    char codecs[PACK_CODECS_MAX + 1]; /* "" when not given */
    char lang[PACK_LANG_MAX + 1];
    char name[PACK_NAME_MAX + 1];
    uint32_t width, height;
    uint64_t bitrate;
    uint32_t fps_num, fps_den; /* frame rate as a fraction (29.97 = 30000/1001) */
    uint32_t sample_rate, channels;
};

struct tmt_pack_asset {
    unsigned magic;
    char id[TMT_PACK_ID_MAX + 1];
    uint32_t seg_ms; /* target segment duration */
    unsigned n;
    struct pack_rendition_desc r[TMT_PACK_MAX_RENDITIONS];
};

struct pack_track {
    struct pack_rendition_desc d; /* codecs filled in from the bitstream */
    uint32_t timescale;
    int64_t dec_shift;  /* added to dts to get the output decode time */
    uint32_t elst_skip; /* audio: media time hidden by the init segment's edit list */
    uint32_t config_len;
    uint8_t config[PACK_CONFIG_MAX]; /* avcC or AudioSpecificConfig */
    uint32_t nsamples;
    struct pack_sample *samples;
    uint32_t nsegs;
    struct pack_segment *segs;
};

struct tmt_pack_index {
    unsigned magic;
    char asset[TMT_PACK_ID_MAX + 1];
    uint32_t seg_ms;
    unsigned n;
    struct pack_track t[TMT_PACK_MAX_RENDITIONS];
};

/* asset.c */
int pack_asset_check_desc(const struct pack_rendition_desc *d, const char *where,
                          struct tmt_err *err) TMT_MUST_CHECK;

/*
 * mezz.c: one demux pass over a mezzanine. Fills the video track (first H.264 stream) and/or the
 * audio track (first AAC stream) the caller asks for (NULL: not wanted; asking for a missing kind
 * is an error). Samples are allocated; the tracks' descriptors are left to the caller except
 * timescale, dec_shift, elst_skip, config and codecs and the measured width, height, sample rate
 * and channels, which go into *_meas.
 */
struct pack_measured {
    uint32_t width, height, sample_rate, channels;
};
int pack_mezz_index(const struct tmt_pack_io *io, struct pack_track *video,
                    struct pack_measured *vmeas, struct pack_track *audio,
                    struct pack_measured *ameas, struct tmt_err *err) TMT_MUST_CHECK;

/* segment.c */
/* Video cut on keyframes near seg_ms. `where` names the file in messages. */
int pack_segment_video(struct pack_track *t, uint32_t seg_ms, const char *where,
                       struct tmt_err *err) TMT_MUST_CHECK;
/* Audio cut at the frames nearest the segment starts of `ref` (by seg_ms when ref is NULL). */
int pack_segment_audio(struct pack_track *t, const struct pack_track *ref, uint32_t seg_ms,
                       const char *where, struct tmt_err *err) TMT_MUST_CHECK;
/* Segments from the first sample of each; start, duration and bytes computed from samples. */
int pack_segments_fill(struct pack_track *t, const uint32_t *firsts, uint32_t n, const char *where,
                       struct tmt_err *err) TMT_MUST_CHECK;
/* Every invariant the writers rely on; used after building and after loading a blob. */
int pack_track_check(const struct pack_track *t, const char *where,
                     struct tmt_err *err) TMT_MUST_CHECK;
/*
 * Builds an index from an asset and one io per rendition. With match off, the mezzanine is not
 * compared with asset.json (the fuzz target feeds arbitrary files).
 */
struct tmt_pack_index *pack_index_build_io(const struct tmt_pack_asset *a,
                                           const struct tmt_pack_io *ios, bool match,
                                           struct tmt_err *err);
void pack_track_fini(struct pack_track *t);

/* cmaf.c */
#define PACK_STYP_SIZE 24
size_t pack_moof_size(const struct pack_track *t, uint32_t count);

/* buf.c: checked appends for the manifest writers */
int pack_buf_put(struct tmt_pack_buf *b, const void *p, size_t n) TMT_MUST_CHECK;
int pack_buf_printf(struct tmt_pack_buf *b, const char *fmt, ...) TMT_PRINTF(2, 3) TMT_MUST_CHECK;
/* seconds as a decimal with up to 6 places, trailing zeros dropped: "4", "3.96", "0.021333" */
int pack_buf_seconds(struct tmt_pack_buf *b, uint64_t ticks, uint32_t timescale) TMT_MUST_CHECK;

#endif
