/*
 * cmaf.c: CMAF init and media segments, written box by box (ISO/IEC 14496-12, 23000-19).
 *
 * Init segment (one track, track_ID 1): ftyp, moov { mvhd, trak { tkhd, [edts/elst], mdia { mdhd,
 * hdlr, minf { vmhd|smhd, dinf/dref, stbl { stsd { avc1/avcC | mp4a/esds }, empty stts, stsc,
 * stsz, stco } } } }, mvex/trex }.
 * Media segment n: styp, moof { mfhd(n), traf { tfhd (default-base-is-moof), tfdt (v1),
 * trun } }, mdat.
 *
 * Timestamps (pack_int.h): tfdt = first dts + dec_shift. Video uses trun version 1 with signed
 * composition offsets pts - dts - dec_shift, so a frame's presentation time in the output is
 * exactly its pts in the mezzanine and the keyframe that starts a segment presents at the
 * segment's tfdt: a player that seeks into segment n needs nothing from earlier segments, and no
 * video edit list is needed. AAC priming (the encoder delay, one frame at dts -1024 in ffmpeg's
 * output) stays in the first segment, since the decoder needs it, and the audio init segment
 * carries an edit list with media_time = the priming, which hides it; after that, presentation
 * time equals the mezzanine's dts on both tracks, so audio and video stay in sync in every
 * segment.
 *
 * Speed: the media segment's size is known before writing (pack_moof_size + sample bytes), so
 * the output grows once, the trun is written in one loop without allocating, and sample bytes
 * are read straight into the output, one read per run of samples that are contiguous in the
 * file (faststart mezzanines interleave audio and video in chunks).
 */
#include "pack_int.h"

#include <string.h>
#include <sys/uio.h>

#define TRUN_DATA_OFFSET 0x000001u
#define TRUN_DURATION 0x000100u
#define TRUN_SIZE 0x000200u
#define TRUN_FLAGS 0x000400u
#define TRUN_CTO 0x000800u
#define TFHD_DEFAULT_BASE_IS_MOOF 0x020000u
/* sample_depends_on = 2 (an I frame); non-sync: depends_on = 1 and sample_is_non_sync_sample */
#define SAMPLE_FLAGS_SYNC 0x02000000u
#define SAMPLE_FLAGS_NON_SYNC 0x01010000u

struct w {
    uint8_t *p;
    size_t len;
};

static void u8(struct w *w, unsigned v)
{
    w->p[w->len++] = (uint8_t)v;
}

static void u16(struct w *w, unsigned v)
{
    u8(w, v >> 8);
    u8(w, v);
}

static void u32(struct w *w, uint32_t v)
{
    w->p[w->len] = (uint8_t)(v >> 24);
    w->p[w->len + 1] = (uint8_t)(v >> 16);
    w->p[w->len + 2] = (uint8_t)(v >> 8);
    w->p[w->len + 3] = (uint8_t)v;
    w->len += 4;
}

static void u64(struct w *w, uint64_t v)
{
    u32(w, (uint32_t)(v >> 32));
    u32(w, (uint32_t)v);
}

static void bytes(struct w *w, const void *p, size_t n)
{
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

static void zeros(struct w *w, size_t n)
{
    memset(w->p + w->len, 0, n);
    w->len += n;
}

static void fourcc(struct w *w, const char *cc)
{
    bytes(w, cc, 4);
}

/* Opens a box; box_end patches its size. */
static size_t box(struct w *w, const char *type)
{
    size_t at = w->len;
    u32(w, 0);
    fourcc(w, type);
    return at;
}

static size_t fullbox(struct w *w, const char *type, unsigned version, uint32_t flags)
{
    size_t at = box(w, type);
    u32(w, ((uint32_t)version << 24) | flags);
    return at;
}

static void box_end(struct w *w, size_t at)
{
    size_t len = w->len - at;
    w->p[at] = (uint8_t)(len >> 24);
    w->p[at + 1] = (uint8_t)(len >> 16);
    w->p[at + 2] = (uint8_t)(len >> 8);
    w->p[at + 3] = (uint8_t)len;
}

static void matrix(struct w *w)
{
    static const uint32_t unity[9] = {0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000};
    for (int i = 0; i < 9; i++)
        u32(w, unity[i]);
}

/* An MPEG-4 descriptor header with the 4-byte size form ffmpeg and most muxers write. */
static void descr(struct w *w, unsigned tag, size_t len)
{
    u8(w, tag);
    u8(w, 0x80 | ((len >> 21) & 0x7f));
    u8(w, 0x80 | ((len >> 14) & 0x7f));
    u8(w, 0x80 | ((len >> 7) & 0x7f));
    u8(w, len & 0x7f);
}

static void write_esds(struct w *w, const struct pack_track *t)
{
    size_t at = fullbox(w, "esds", 0, 0);
    size_t dsi = 5 + t->config_len;
    size_t dcd = 13 + dsi;
    size_t esd = 3 + (5 + dcd) + (5 + 1);
    descr(w, 0x03, esd); /* ES_Descriptor */
    u16(w, 1);           /* ES_ID */
    u8(w, 0);            /* no dependency, URL or OCR */
    descr(w, 0x04, dcd); /* DecoderConfigDescriptor */
    u8(w, 0x40);         /* objectTypeIndication: MPEG-4 audio */
    u8(w, 0x15);         /* streamType audio (5) << 2 | reserved 1 */
    u8(w, 0);            /* bufferSizeDB, 24 bits */
    u16(w, 0);
    uint64_t br = t->d.bitrate > UINT32_MAX ? UINT32_MAX : t->d.bitrate;
    u32(w, (uint32_t)br);          /* maxBitrate */
    u32(w, (uint32_t)br);          /* avgBitrate */
    descr(w, 0x05, t->config_len); /* DecoderSpecificInfo: the AudioSpecificConfig */
    bytes(w, t->config, t->config_len);
    descr(w, 0x06, 1); /* SLConfigDescriptor, predefined 2 (MP4) */
    u8(w, 2);
    box_end(w, at);
}

static void write_sample_entry(struct w *w, const struct pack_track *t)
{
    if (t->d.kind == TMT_PACK_VIDEO) {
        size_t at = box(w, "avc1");
        zeros(w, 6);
        u16(w, 1); /* data_reference_index */
        zeros(w, 16);
        u16(w, t->d.width);
        u16(w, t->d.height);
        u32(w, 0x00480000); /* 72 dpi */
        u32(w, 0x00480000);
        u32(w, 0);
        u16(w, 1);    /* frame_count */
        zeros(w, 32); /* compressorname */
        u16(w, 0x0018);
        u16(w, 0xffff);
        size_t c = box(w, "avcC");
        bytes(w, t->config, t->config_len);
        box_end(w, c);
        box_end(w, at);
    } else {
        size_t at = box(w, "mp4a");
        zeros(w, 6);
        u16(w, 1);
        zeros(w, 8);
        u16(w, t->d.channels > 0 ? t->d.channels : 2);
        u16(w, 16);
        u16(w, 0);
        u16(w, 0);
        /* 16.16: rates above 65535 Hz do not fit; the AudioSpecificConfig has the real one */
        u32(w, t->d.sample_rate <= 0xffff ? t->d.sample_rate << 16 : 0);
        write_esds(w, t);
        box_end(w, at);
    }
}

static void write_trak(struct w *w, const struct pack_track *t)
{
    bool video = t->d.kind == TMT_PACK_VIDEO;
    size_t trak = box(w, "trak");
    size_t at = fullbox(w, "tkhd", 0, 0x000003); /* enabled, in movie */
    u32(w, 0);
    u32(w, 0);
    u32(w, 1); /* track_ID */
    u32(w, 0);
    u32(w, 0); /* duration: unknown, fragmented */
    zeros(w, 8);
    u16(w, 0);                  /* layer */
    u16(w, 0);                  /* alternate_group */
    u16(w, video ? 0 : 0x0100); /* volume */
    u16(w, 0);
    matrix(w);
    u32(w, video ? t->d.width << 16 : 0);
    u32(w, video ? t->d.height << 16 : 0);
    box_end(w, at);
    if (t->elst_skip > 0) {
        size_t edts = box(w, "edts");
        at = fullbox(w, "elst", 0, 0);
        u32(w, 1);
        u32(w, 0);            /* segment_duration: the whole (fragmented) track */
        u32(w, t->elst_skip); /* media_time: skip the priming */
        u32(w, 0x00010000);   /* media_rate 1.0 */
        box_end(w, at);
        box_end(w, edts);
    }
    size_t mdia = box(w, "mdia");
    at = fullbox(w, "mdhd", 0, 0);
    u32(w, 0);
    u32(w, 0);
    u32(w, t->timescale);
    u32(w, 0);
    u16(w, 0x55c4); /* "und" */
    u16(w, 0);
    box_end(w, at);
    at = fullbox(w, "hdlr", 0, 0);
    u32(w, 0);
    fourcc(w, video ? "vide" : "soun");
    zeros(w, 12);
    const char *hname = video ? "VideoHandler" : "SoundHandler";
    bytes(w, hname, strlen(hname) + 1);
    box_end(w, at);
    size_t minf = box(w, "minf");
    if (video) {
        at = fullbox(w, "vmhd", 0, 1);
        zeros(w, 8);
    } else {
        at = fullbox(w, "smhd", 0, 0);
        zeros(w, 4);
    }
    box_end(w, at);
    size_t dinf = box(w, "dinf");
    size_t dref = fullbox(w, "dref", 0, 0);
    u32(w, 1);
    at = fullbox(w, "url ", 0, 1); /* self-contained */
    box_end(w, at);
    box_end(w, dref);
    box_end(w, dinf);
    size_t stbl = box(w, "stbl");
    at = fullbox(w, "stsd", 0, 0);
    u32(w, 1);
    write_sample_entry(w, t);
    box_end(w, at);
    static const char *const empty[] = {"stts", "stsc", "stco"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(empty); i++) {
        at = fullbox(w, empty[i], 0, 0);
        u32(w, 0);
        box_end(w, at);
    }
    at = fullbox(w, "stsz", 0, 0);
    u32(w, 0);
    u32(w, 0);
    box_end(w, at);
    box_end(w, stbl);
    box_end(w, minf);
    box_end(w, mdia);
    box_end(w, trak);
}

int tmt_pack_init_segment(const struct tmt_pack_index *ix, unsigned r, struct tmt_pack_buf *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    if (r >= ix->n)
        return TMT_ENOTFOUND;
    const struct pack_track *t = &ix->t[r];
    size_t cap = 1024 + t->config_len;
    int rc = tmt_pack_buf_reserve(out, cap);
    if (rc != 0)
        return rc;
    struct w w = {out->p + out->len, 0};
    size_t at = box(&w, "ftyp");
    fourcc(&w, "iso6");
    u32(&w, 0);
    fourcc(&w, "iso6");
    fourcc(&w, "cmfc");
    fourcc(&w, "dash");
    box_end(&w, at);
    size_t moov = box(&w, "moov");
    at = fullbox(&w, "mvhd", 0, 0);
    u32(&w, 0);
    u32(&w, 0);
    u32(&w, 1000);
    u32(&w, 0);
    u32(&w, 0x00010000); /* rate */
    u16(&w, 0x0100);     /* volume */
    zeros(&w, 10);
    matrix(&w);
    zeros(&w, 24);
    u32(&w, 2); /* next_track_ID */
    box_end(&w, at);
    write_trak(&w, t);
    size_t mvex = box(&w, "mvex");
    at = fullbox(&w, "trex", 0, 0);
    u32(&w, 1); /* track_ID */
    u32(&w, 1); /* default_sample_description_index */
    u32(&w, 0);
    u32(&w, 0);
    u32(&w, t->d.kind == TMT_PACK_VIDEO ? SAMPLE_FLAGS_NON_SYNC : SAMPLE_FLAGS_SYNC);
    box_end(&w, at);
    box_end(&w, mvex);
    box_end(&w, moov);
    TMT_ASSERT(w.len <= cap);
    out->len += w.len;
    return 0;
}

static size_t trun_entry_size(const struct pack_track *t)
{
    return t->d.kind == TMT_PACK_VIDEO ? 16 : 8;
}

size_t pack_moof_size(const struct pack_track *t, uint32_t count)
{
    /* moof 8, mfhd 16, traf 8, tfhd 16, tfdt 20, trun 20 + entries */
    return 8 + 16 + 8 + 16 + 20 + 20 + (size_t)count * trun_entry_size(t);
}

#define SPAN_IOV 512
#define SPAN_SCRATCH (64 * 1024)

/*
 * Reads the samples s[0..count) (bytes in all) into dst with one preadv over their span, the
 * bytes between them going to a scratch buffer. Returns false, reading nothing, when that does
 * not pay (too many runs, or gaps over a quarter of the bytes); else true with *rc set.
 */
static bool read_span(const struct tmt_pack_io *io, const struct pack_sample *s, uint32_t count,
                      uint8_t *dst, size_t bytes, int *rc, struct tmt_err *err)
{
    static _Thread_local uint8_t scratch[SPAN_SCRATCH];
    struct iovec iov[SPAN_IOV];
    int n = 0;
    uint64_t first = s[0].pos, end = first;
    size_t gaps = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (s[i].pos < end)
            return false; /* out of order or overlapping: run by run */
        for (uint64_t gap = s[i].pos - end; gap > 0;) {
            size_t piece = (size_t)TMT_MIN(gap, (uint64_t)SPAN_SCRATCH);
            if (n == SPAN_IOV)
                return false;
            iov[n++] = (struct iovec){scratch, piece};
            gaps += piece;
            gap -= piece;
        }
        if (gaps > bytes / 4)
            return false;
        if (n > 0 && s[i].pos == end && iov[n - 1].iov_base != scratch) {
            iov[n - 1].iov_len += s[i].size;
        } else {
            if (n == SPAN_IOV)
                return false;
            iov[n++] = (struct iovec){dst, s[i].size};
        }
        dst += s[i].size;
        end = s[i].pos + s[i].size;
    }
    int sys_errno = 0;
    *rc = io->readv(io, first, iov, n, (size_t)(end - first), &sys_errno);
    if (*rc == TMT_EIO)
        tmt_err_set_errno(err, *rc, sys_errno, "%s: read of %llu bytes at %llu", io->name,
                          (unsigned long long)(end - first), (unsigned long long)first);
    else if (*rc != 0)
        tmt_err_set(err, *rc,
                    "%s: truncated: %llu bytes at offset %llu are past the end (%llu bytes)",
                    io->name, (unsigned long long)(end - first), (unsigned long long)first,
                    (unsigned long long)io->size);
    return true;
}

int tmt_pack_media_segment(const struct tmt_pack_index *ix, unsigned r, unsigned n,
                           const struct tmt_pack_io *io, struct tmt_pack_buf *out,
                           struct tmt_err *err)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    if (r >= ix->n || n == 0 || n > ix->t[r].nsegs)
        return tmt_err_set(err, TMT_ENOTFOUND, "no segment %u of rendition %u", n, r);
    const struct pack_track *t = &ix->t[r];
    const struct pack_segment *g = &t->segs[n - 1];
    const struct pack_sample *s = &t->samples[g->first];
    bool video = t->d.kind == TMT_PACK_VIDEO;
    size_t moof_size = pack_moof_size(t, g->count);
    size_t total = PACK_STYP_SIZE + moof_size + 8 + (size_t)g->bytes;
    int rc = tmt_pack_buf_reserve(out, total);
    if (rc != 0)
        return tmt_err_set(err, rc, "segment of %zu bytes: out of memory", total);
    struct w w = {out->p + out->len, 0};
    size_t at = box(&w, "styp");
    fourcc(&w, "msdh");
    u32(&w, 0);
    fourcc(&w, "msdh");
    fourcc(&w, "msix");
    box_end(&w, at);
    size_t moof = box(&w, "moof");
    at = fullbox(&w, "mfhd", 0, 0);
    u32(&w, n);
    box_end(&w, at);
    size_t traf = box(&w, "traf");
    at = fullbox(&w, "tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
    u32(&w, 1);
    box_end(&w, at);
    at = fullbox(&w, "tfdt", 1, 0);
    u64(&w, (uint64_t)(s->dts + t->dec_shift));
    box_end(&w, at);
    uint32_t tflags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE;
    if (video)
        tflags |= TRUN_FLAGS | TRUN_CTO;
    at = fullbox(&w, "trun", 1, tflags);
    u32(&w, g->count);
    u32(&w, (uint32_t)(moof_size + 8)); /* data_offset from the moof to the first sample */
    for (uint32_t i = 0; i < g->count; i++) {
        u32(&w, s[i].dur);
        u32(&w, s[i].size);
        if (video) {
            u32(&w, (s[i].flags & PACK_SAMPLE_KEY) ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC);
            u32(&w, (uint32_t)(int32_t)(s[i].cto - t->dec_shift));
        }
    }
    box_end(&w, at);
    box_end(&w, traf);
    box_end(&w, moof);
    TMT_ASSERT(w.len - moof == moof_size);
    u32(&w, (uint32_t)(8 + g->bytes));
    fourcc(&w, "mdat");
    /* sample bytes: one scattered read of the whole span when the other track's chunks in it
     * are few and small (interleaved files), else one read per run of adjacent samples */
    if (io->readv != NULL && read_span(io, s, g->count, w.p + w.len, (size_t)g->bytes, &rc, err)) {
        if (rc != 0)
            return rc;
        w.len += (size_t)g->bytes;
        TMT_ASSERT(w.len == total);
        out->len += w.len;
        return 0;
    }
    for (uint32_t i = 0; i < g->count;) {
        uint64_t pos = s[i].pos;
        size_t len = s[i].size;
        uint32_t j = i + 1;
        while (j < g->count && s[j].pos == pos + len) {
            len += s[j].size;
            j++;
        }
        int sys_errno = 0;
        rc = io->read(io, pos, w.p + w.len, len, &sys_errno);
        if (rc != 0) {
            if (rc == TMT_EIO)
                return tmt_err_set_errno(err, rc, sys_errno, "%s: read of %zu bytes at %llu",
                                         io->name, len, (unsigned long long)pos);
            return tmt_err_set(err, rc,
                               "%s: truncated: %zu bytes at offset %llu are past the end "
                               "(%llu bytes)",
                               io->name, len, (unsigned long long)pos,
                               (unsigned long long)io->size);
        }
        w.len += len;
        i = j;
    }
    TMT_ASSERT(w.len == total);
    out->len += w.len;
    return 0;
}
