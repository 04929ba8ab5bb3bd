/*
 * mezz.c: one pass of libavformat's MP4 demuxer over a mezzanine, which yields the sample tables
 * of its first H.264 and first AAC stream. The only code of the packager that calls av*.
 *
 * The demuxer reads through our own AVIOContext over a tmt_pack_io (a file descriptor in the
 * shield, memory in the fuzz target). Offsets, sizes, decode times and keyframe flags come from
 * the demuxer's index (avformat_index_get_entry); the index has no composition times, so the
 * packets are read as well for pts. Their bytes are not needed: once the header is parsed the
 * I/O layer answers reads with zeros instead of touching the file, so indexing a long mezzanine
 * reads its moov and little else. This relies on the demuxer not parsing H.264 or AAC payloads
 * (it does not for MP4); the packet count, dts and position are checked against the index so a
 * demuxer that behaved otherwise would give an error, not a wrong index.
 *
 * Edit lists are applied by the demuxer: with B-frames the first dts is negative and the first
 * pts zero; AAC priming shows as a first frame at a negative time flagged "discard". See
 * pack_int.h for how the output maps these times.
 */
#include "pack_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

#include "tmt/log.h"

#define MEZZ_AVIO_MAGIC 0x6d657a7au /* "mezz" */
#define MEZZ_AVIO_BUF 65536
#define MEZZ_SAMPLE_MAX (64u << 20) /* one access unit */

struct mezz_avio {
    unsigned magic;
    const struct tmt_pack_io *io;
    uint64_t pos;
    bool zero_fill;
    int err; /* first read failure */
    int sys_errno;
};

static int avio_read_cb(void *opaque, uint8_t *buf, int n)
{
    struct mezz_avio *m;
    TMT_OBJ_CAST(m, opaque, MEZZ_AVIO_MAGIC);
    if (n <= 0)
        return 0;
    if (m->pos >= m->io->size)
        return AVERROR_EOF;
    size_t len = (size_t)TMT_MIN((uint64_t)n, m->io->size - m->pos);
    if (m->zero_fill) {
        memset(buf, 0, len);
    } else {
        int rc = m->io->read(m->io, m->pos, buf, len, &m->sys_errno);
        if (rc != 0) {
            if (m->err == 0)
                m->err = rc;
            return AVERROR(EIO);
        }
    }
    m->pos += len;
    return (int)len;
}

static int64_t avio_seek_cb(void *opaque, int64_t off, int whence)
{
    struct mezz_avio *m;
    TMT_OBJ_CAST(m, opaque, MEZZ_AVIO_MAGIC);
    int64_t size = (int64_t)m->io->size, base;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return size;
    if (whence == SEEK_SET)
        base = 0;
    else if (whence == SEEK_CUR)
        base = (int64_t)m->pos;
    else if (whence == SEEK_END)
        base = size;
    else
        return AVERROR(EINVAL);
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0 || base + off > size)
        return AVERROR(EINVAL);
    m->pos = (uint64_t)(base + off);
    return base + off;
}

/* avcC: version 1, profile, compatibility, level, then SPS and PPS lists that fit. */
static bool avcc_valid(const uint8_t *p, size_t n)
{
    if (n < 7 || p[0] != 1)
        return false;
    size_t off = 5;
    unsigned nsps = p[off++] & 0x1f;
    if (nsps == 0)
        return false;
    for (int list = 0; list < 2; list++) {
        unsigned count = nsps;
        if (list == 1) {
            if (off >= n)
                return false;
            count = p[off++];
        }
        for (unsigned i = 0; i < count; i++) {
            if (n - off < 2)
                return false;
            size_t len = ((size_t)p[off] << 8) | p[off + 1];
            off += 2;
            if (len == 0 || len > n - off)
                return false;
            off += len;
        }
    }
    return true;
}

/* The AAC audio object type of an AudioSpecificConfig, or 0. */
static unsigned asc_object_type(const uint8_t *p, size_t n)
{
    if (n < 2)
        return 0;
    unsigned aot = p[0] >> 3;
    if (aot == 31)
        aot = 32 + (((p[0] & 7u) << 3) | (p[1] >> 5));
    return aot;
}

static int take_config(struct pack_track *t, const AVCodecParameters *cp, const char *name,
                       struct tmt_err *err)
{
    const uint8_t *x = cp->extradata;
    size_t n = cp->extradata != NULL && cp->extradata_size > 0 ? (size_t)cp->extradata_size : 0;
    if (t->d.kind == TMT_PACK_VIDEO) {
        if (!avcc_valid(x, n) || n > PACK_CONFIG_MAX)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: H.264 track without a valid avcC", name);
        snprintf(t->d.codecs, sizeof(t->d.codecs), "avc1.%02x%02x%02x", x[1], x[2], x[3]);
    } else {
        unsigned aot = asc_object_type(x, n);
        if (aot == 0 || n > PACK_CONFIG_MAX)
            return tmt_err_set(err, TMT_ECORRUPT,
                               "%s: AAC track without a valid AudioSpecificConfig", name);
        snprintf(t->d.codecs, sizeof(t->d.codecs), "mp4a.40.%u", aot);
    }
    memcpy(t->config, x, n);
    t->config_len = (uint32_t)n;
    return 0;
}

/* Sample table from the demuxer's index; pts and durations come from the packets later. */
static int take_index(struct pack_track *t, AVStream *st, uint64_t file_size, const char *name,
                      struct tmt_err *err)
{
    const char *what = t->d.kind == TMT_PACK_VIDEO ? "video" : "audio";
    if (st->time_base.num != 1 || st->time_base.den <= 0)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: %s track: unusable timescale %d/%d", name, what,
                           st->time_base.num, st->time_base.den);
    t->timescale = (uint32_t)st->time_base.den;
    int n = avformat_index_get_entries_count(st);
    if (n <= 0)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: %s track has no samples", name, what);
    if (n > TMT_PACK_MAX_SAMPLES)
        return tmt_err_set(err, TMT_ELIMIT, "%s: %s track has %d samples, more than %d", name, what,
                           n, TMT_PACK_MAX_SAMPLES);
    t->samples = calloc((size_t)n, sizeof(*t->samples));
    if (t->samples == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory for %d samples", name, n);
    t->nsamples = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(st, i);
        struct pack_sample *s = &t->samples[i];
        if (e == NULL || e->pos < 0 || e->size <= 0 || (unsigned)e->size > MEZZ_SAMPLE_MAX)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: %s sample %d: bad offset or size", name,
                               what, i);
        if ((e->flags & AVINDEX_DISCARD_FRAME) && t->d.kind == TMT_PACK_VIDEO)
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: the edit list drops video frames (not supported)", name);
        if ((uint64_t)e->pos > file_size || (uint64_t)e->size > file_size - (uint64_t)e->pos)
            return tmt_err_set(err, TMT_ECORRUPT,
                               "%s: truncated: %s sample %d at offset %lld+%d is past the end "
                               "(%llu bytes)",
                               name, what, i, (long long)e->pos, e->size,
                               (unsigned long long)file_size);
        s->pos = (uint64_t)e->pos;
        s->dts = e->timestamp;
        s->size = (uint32_t)e->size;
        s->flags = (e->flags & AVINDEX_KEYFRAME) ? PACK_SAMPLE_KEY : 0;
    }
    return 0;
}

struct mezz_want {
    struct pack_track *t;
    struct pack_measured *meas;
    int stream;
    uint32_t seen;
    int64_t last_dur;
};

/* Reads every packet of the wanted streams: pts (as cto) and the last sample's duration. */
static int read_packets(AVFormatContext *fc, struct mezz_want *w, size_t nw, const char *name,
                        struct tmt_err *err)
{
    AVPacket *pkt = av_packet_alloc();
    if (pkt == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", name);
    int rc = 0, r;
    while (rc == 0 && (r = av_read_frame(fc, pkt)) >= 0) {
        for (size_t i = 0; i < nw; i++) {
            if (w[i].t == NULL || pkt->stream_index != w[i].stream)
                continue;
            struct pack_track *t = w[i].t;
            if (w[i].seen >= t->nsamples || pkt->dts != t->samples[w[i].seen].dts ||
                (pkt->pos >= 0 && (uint64_t)pkt->pos != t->samples[w[i].seen].pos)) {
                rc = tmt_err_set(err, TMT_ECORRUPT,
                                 "%s: packets do not match the sample index (sample %u)", name,
                                 w[i].seen);
                break;
            }
            int64_t cto = pkt->pts == AV_NOPTS_VALUE ? 0 : pkt->pts - pkt->dts;
            if (cto < INT32_MIN || cto > INT32_MAX) {
                rc = tmt_err_set(err, TMT_ECORRUPT, "%s: sample %u: composition offset %lld", name,
                                 w[i].seen, (long long)cto);
                break;
            }
            t->samples[w[i].seen].cto = (int32_t)cto;
            w[i].last_dur = pkt->duration;
            w[i].seen++;
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    if (rc != 0)
        return rc;
    if (r != AVERROR_EOF)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: demuxing failed: %s", name, av_err2str(r));
    for (size_t i = 0; i < nw; i++) {
        if (w[i].t != NULL && w[i].seen != w[i].t->nsamples)
            return tmt_err_set(err, TMT_ECORRUPT,
                               "%s: %u of %u samples found (fragmented or damaged file)", name,
                               w[i].seen, w[i].t->nsamples);
    }
    return 0;
}

/* Durations from decode times, and the output time mapping. */
static int finish_track(struct pack_track *t, int64_t last_dur, const char *name,
                        struct tmt_err *err)
{
    const char *what = t->d.kind == TMT_PACK_VIDEO ? "video" : "audio";
    for (uint32_t i = 0; i < t->nsamples; i++) {
        struct pack_sample *s = &t->samples[i];
        int64_t d;
        if (i + 1 < t->nsamples) {
            if (t->samples[i + 1].dts <= s->dts ||
                __builtin_sub_overflow(t->samples[i + 1].dts, s->dts, &d))
                return tmt_err_set(err, TMT_ECORRUPT,
                                   "%s: %s decode times do not increase at "
                                   "sample %u",
                                   name, what, i + 1);
        } else {
            d = last_dur > 0 ? last_dur : (i > 0 ? (int64_t)t->samples[i - 1].dur : 0);
        }
        if (d <= 0 || d > UINT32_MAX)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: %s sample %u: duration %lld", name, what, i,
                               (long long)d);
        s->dur = (uint32_t)d;
    }
    int64_t dts0 = t->samples[0].dts;
    if (dts0 < -(INT64_C(1) << 40) || dts0 > (INT64_C(1) << 40))
        return tmt_err_set(err, TMT_ECORRUPT, "%s: %s starts at %lld", name, what, (long long)dts0);
    t->dec_shift = dts0 < 0 ? -dts0 : 0;
    if (t->d.kind == TMT_PACK_AUDIO) {
        if (t->dec_shift > UINT32_MAX / 2)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: audio priming of %lld", name,
                               (long long)t->dec_shift);
        t->elst_skip = (uint32_t)t->dec_shift;
    }
    return 0;
}

int pack_mezz_index(const struct tmt_pack_io *io, struct pack_track *video,
                    struct pack_measured *vmeas, struct pack_track *audio,
                    struct pack_measured *ameas, struct tmt_err *err)
{
    const char *name = io->name;
    struct mezz_avio m = {.magic = MEZZ_AVIO_MAGIC, .io = io};
    AVFormatContext *fc = NULL;
    AVIOContext *avio = NULL;
    uint8_t *iobuf = av_malloc(MEZZ_AVIO_BUF);
    int rc = 0;
    if (iobuf == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", name);
    avio = avio_alloc_context(iobuf, MEZZ_AVIO_BUF, 0, &m, avio_read_cb, NULL, avio_seek_cb);
    fc = avformat_alloc_context();
    if (avio == NULL || fc == NULL) {
        if (avio == NULL)
            av_free(iobuf);
        rc = tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", name);
        goto done;
    }
    fc->pb = avio;
    /* container values only: no parser looks at the (zeroed) payloads, nothing is guessed */
    fc->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN;
    /* Only the MP4 demuxer: a mezzanine is never probed as another format. */
    int r = avformat_open_input(&fc, NULL, av_find_input_format("mp4"), NULL);
    if (r < 0) {
        fc = NULL; /* freed by avformat_open_input on failure */
        if (m.err != 0)
            rc = tmt_err_set_errno(err, m.err, m.sys_errno, "%s: read failed", name);
        else
            rc = tmt_err_set(err, TMT_ECORRUPT, "%s: not a readable MP4: %s", name, av_err2str(r));
        goto done;
    }
    struct mezz_want w[2] = {{.t = video, .meas = vmeas, .stream = -1},
                             {.t = audio, .meas = ameas, .stream = -1}};
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        AVStream *st = fc->streams[i];
        const AVCodecParameters *cp = st->codecpar;
        st->discard = AVDISCARD_ALL;
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO && cp->codec_id == AV_CODEC_ID_H264 &&
            w[0].stream < 0 && video != NULL)
            w[0].stream = (int)i;
        if (cp->codec_type == AVMEDIA_TYPE_AUDIO && cp->codec_id == AV_CODEC_ID_AAC &&
            w[1].stream < 0 && audio != NULL)
            w[1].stream = (int)i;
    }
    for (int k = 0; k < 2; k++) {
        if (w[k].t == NULL)
            continue;
        if (w[k].stream < 0) {
            rc = tmt_err_set(err, TMT_EINVAL, "%s: no %s track", name,
                             k == 0 ? "H.264 video" : "AAC audio");
            goto done;
        }
        AVStream *st = fc->streams[w[k].stream];
        const AVCodecParameters *cp = st->codecpar;
        st->discard = AVDISCARD_DEFAULT;
        if ((rc = take_config(w[k].t, cp, name, err)) != 0)
            goto done;
        if ((rc = take_index(w[k].t, st, io->size, name, err)) != 0)
            goto done;
        if (k == 0) {
            w[k].meas->width = cp->width > 0 ? (uint32_t)cp->width : 0;
            w[k].meas->height = cp->height > 0 ? (uint32_t)cp->height : 0;
        } else {
            w[k].meas->sample_rate = cp->sample_rate > 0 ? (uint32_t)cp->sample_rate : 0;
            w[k].meas->channels =
                cp->ch_layout.nb_channels > 0 ? (uint32_t)cp->ch_layout.nb_channels : 0;
        }
    }
    m.zero_fill = true; /* from here on the demuxer only copies sample bytes we do not need */
    if ((rc = read_packets(fc, w, 2, name, err)) != 0)
        goto done;
    for (int k = 0; k < 2; k++) {
        if (w[k].t != NULL && (rc = finish_track(w[k].t, w[k].last_dur, name, err)) != 0)
            goto done;
    }
done:
    if (fc != NULL)
        avformat_close_input(&fc);
    if (avio != NULL) {
        av_freep(&avio->buffer);
        avio_context_free(&avio);
    }
    return rc;
}

static void libav_log(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_WARNING || TMT_LOG_DEBUG > tmt_log_level())
        return;
    char line[512];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof(line), &prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '"' || (unsigned char)line[i] < 0x20)
            line[i] = '\'';
    }
    tmt_log_write(TMT_LOG_DEBUG, "pack", "libav", "av_level=%d text=\"%s\"", level, line);
}

void tmt_pack_libav_log_init(void)
{
    av_log_set_callback(libav_log);
}
