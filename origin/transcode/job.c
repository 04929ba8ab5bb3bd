/*
 * job.c: tmt_transcode_run. Opens the source, plans the ladder, sets up the decoders, the
 * filter graphs and the audio encoder, starts one thread per rung, then demuxes and decodes on
 * the calling thread and feeds the rungs (see transcode_int.h for who owns what).
 *
 * Time: video leaves the fps filter at a constant rate and is renumbered 0, 1, 2... in units of
 * one frame; audio is renumbered by samples from 0. Both start at the first decoded frame of
 * their stream, so a source whose audio starts later or earlier than its video is muxed with
 * both starting together (XXX: offsets between streams are not kept).
 *
 * A truncated source: libavformat stops at the end of the data; if that end is well before the
 * duration the container states (under 95 % and more than a second short), the job fails.
 */
#include "transcode_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#define TT_SAMPLE_RATE 48000
#define TT_PROGRESS_S 0.5

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int check_opts(const struct tmt_transcode_opts *o, struct tmt_err *err)
{
    if (o->source == NULL || o->source[0] == '\0')
        return tmt_err_set(err, TMT_EINVAL, "no source file given");
    if (o->root == NULL || o->root[0] == '\0')
        return tmt_err_set(err, TMT_EINVAL, "no mezzanine root given");
    if (o->asset_id == NULL || !tt_asset_id_valid(o->asset_id))
        return tmt_err_set(err, TMT_EINVAL, "asset id \"%s\": expected [A-Za-z0-9_-]{1,64}",
                           o->asset_id != NULL ? o->asset_id : "");
    if (o->n_rungs == 0 || o->n_rungs > TMT_TRANSCODE_MAX_RUNGS)
        return tmt_err_set(err, TMT_EINVAL, "the ladder has %u rungs (1 to %d)", o->n_rungs,
                           TMT_TRANSCODE_MAX_RUNGS);
    if (!tmt_transcode_preset_valid(o->preset))
        return tmt_err_set(err, TMT_EINVAL, "unknown x264 preset \"%s\" (%s)", o->preset,
                           TMT_TRANSCODE_PRESETS);
    if (o->segment_ms < 1000 || o->segment_ms > 30000)
        return tmt_err_set(err, TMT_EINVAL, "segment duration %u ms: must be 1 to 30 s",
                           o->segment_ms);
    if (o->audio_bitrate < 32000 || o->audio_bitrate > 512000)
        return tmt_err_set(err, TMT_EINVAL, "audio bit rate %llu: must be 32k to 512k",
                           (unsigned long long)o->audio_bitrate);
    return 0;
}

static int open_source(struct tt_job *job, struct tmt_err *err)
{
    const char *src = job->o->source;
    struct stat st;
    if (stat(src, &st) != 0)
        return tmt_err_set_errno(err, errno == ENOENT ? TMT_ENOTFOUND : TMT_EIO, errno, "%s", src);
    if (!S_ISREG(st.st_mode))
        return tmt_err_set(err, TMT_EINVAL, "%s is not a file", src);
    int rc = avformat_open_input(&job->in, src, NULL, NULL);
    if (rc == AVERROR_INVALIDDATA)
        return tt_av_err(err, TMT_EINVAL, rc, "%s is not a media file libavformat can read", src);
    if (rc < 0)
        return tt_av_err(err, rc == AVERROR(EIO) ? TMT_EIO : TMT_EINVAL, rc, "cannot open %s", src);
    /*
     * libavformat reads almost anything as something: a text file is "tty" (ANSI art), and a
     * format recognised by its extension alone is a guess. Neither is a source.
     */
    if (strcmp(job->in->iformat->name, "tty") == 0 || job->in->probe_score <= AVPROBE_SCORE_RETRY)
        return tmt_err_set(
            err, TMT_EINVAL,
            "%s is not a media file libavformat can read (it looks like %s, "
            "probe score %d)",
            src, job->in->iformat->long_name ? job->in->iformat->long_name : job->in->iformat->name,
            job->in->probe_score);
    rc = avformat_find_stream_info(job->in, NULL);
    if (rc < 0)
        return tt_av_err(err, TMT_ECORRUPT, rc, "%s: cannot read stream information", src);
    job->vsi = av_find_best_stream(job->in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    job->asi = av_find_best_stream(job->in, AVMEDIA_TYPE_AUDIO, -1, job->vsi, NULL, 0);
    if (job->vsi < 0)
        return tmt_err_set(err, TMT_EINVAL,
                           "%s: no video stream (%s); audio-only sources are not transcoded", src,
                           job->asi >= 0 ? "audio only" : "no audio either");
    if (job->in->duration > 0)
        job->duration_s = (double)job->in->duration / AV_TIME_BASE;
    return 0;
}

static int open_decoder(struct tt_job *job, int si, AVCodecContext **out, struct tmt_err *err)
{
    AVStream *st = job->in->streams[si];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (codec == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s: no decoder for the %s stream (%s)", job->o->source,
                           av_get_media_type_string(st->codecpar->codec_type),
                           avcodec_get_name(st->codecpar->codec_id));
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (c == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for a decoder");
    *out = c;
    int rc = avcodec_parameters_to_context(c, st->codecpar);
    if (rc >= 0) {
        c->pkt_timebase = st->time_base;
        c->thread_count = 0;
        AVDictionary *d = NULL;
        rc = avcodec_open2(c, codec, &d);
        av_dict_free(&d);
    }
    if (rc < 0)
        return tt_av_err(err, TMT_EINVAL, rc, "%s: cannot decode the %s stream (%s)",
                         job->o->source, av_get_media_type_string(st->codecpar->codec_type),
                         avcodec_get_name(st->codecpar->codec_id));
    return 0;
}

/* src → desc → sink; args for the source filter. */
static int make_graph(AVFilterGraph **g, AVFilterContext **src, AVFilterContext **sink,
                      const char *src_name, const char *sink_name, const char *args,
                      const char *desc)
{
    *g = avfilter_graph_alloc();
    if (*g == NULL)
        return AVERROR(ENOMEM);
    (*g)->nb_threads = 1;
    int rc =
        avfilter_graph_create_filter(src, avfilter_get_by_name(src_name), "in", args, NULL, *g);
    if (rc < 0)
        return rc;
    rc = avfilter_graph_create_filter(sink, avfilter_get_by_name(sink_name), "out", NULL, NULL, *g);
    if (rc < 0)
        return rc;
    AVFilterInOut *outs = avfilter_inout_alloc(), *ins = avfilter_inout_alloc();
    if (outs == NULL || ins == NULL) {
        rc = AVERROR(ENOMEM);
    } else {
        outs->name = av_strdup("in");
        outs->filter_ctx = *src;
        ins->name = av_strdup("out");
        ins->filter_ctx = *sink;
        rc = avfilter_graph_parse_ptr(*g, desc, &ins, &outs, NULL);
    }
    avfilter_inout_free(&outs);
    avfilter_inout_free(&ins);
    if (rc >= 0)
        rc = avfilter_graph_config(*g, NULL);
    return rc;
}

static int open_video(struct tt_job *job, struct tmt_err *err)
{
    int rc = open_decoder(job, job->vsi, &job->vdec, err);
    if (rc != 0)
        return rc;
    AVStream *st = job->in->streams[job->vsi];
    AVCodecContext *d = job->vdec;
    if (d->width <= 0 || d->height <= 0 || d->pix_fmt == AV_PIX_FMT_NONE)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: the video stream has no size or pixel format",
                           job->o->source);
    AVRational guess = av_guess_frame_rate(job->in, st, NULL);
    tmt_transcode_out_rate(guess.num, guess.den, job->o->segment_ms, &job->rate_num, &job->rate_den,
                           &job->per_seg);
    AVRational sar = av_guess_sample_aspect_ratio(job->in, st, NULL);
    struct tt_plan_rung plan[TMT_TRANSCODE_MAX_RUNGS];
    unsigned n = 0;
    rc = tt_plan(job->o, d->width, d->height, sar, plan, &n, err);
    if (rc != 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        job->rungs[i].job = job;
        job->rungs[i].p = plan[i];
        tt_queue_init(&job->rungs[i].q);
    }
    job->n_rungs = n;
    char args[256], desc[64];
    snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
             d->width, d->height, d->pix_fmt, st->time_base.num, st->time_base.den,
             sar.num > 0 ? sar.num : 1, sar.den > 0 ? sar.den : 1);
    snprintf(desc, sizeof(desc), "fps=fps=%u/%u", job->rate_num, job->rate_den);
    rc = make_graph(&job->vgraph, &job->vsrc, &job->vsink, "buffer", "buffersink", args, desc);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot set up the video filters (%s)", desc);
    return 0;
}

static int open_audio(struct tt_job *job, struct tmt_err *err)
{
    if (job->asi < 0)
        return 0;
    int rc = open_decoder(job, job->asi, &job->adec, err);
    if (rc != 0)
        return rc;
    AVCodecContext *d = job->adec;
    AVStream *st = job->in->streams[job->asi];
    if (d->sample_rate <= 0 || d->ch_layout.nb_channels <= 0)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: the audio stream has no sample rate or channels",
                           job->o->source);
    const AVCodec *codec = avcodec_find_encoder_by_name("aac");
    if (codec == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "this libavcodec has no AAC encoder");
    job->aenc = avcodec_alloc_context3(codec);
    if (job->aenc == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for the AAC encoder");
    AVCodecContext *e = job->aenc;
    e->sample_rate = TT_SAMPLE_RATE;
    e->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&e->ch_layout, 2);
    e->bit_rate = (int64_t)job->o->audio_bitrate;
    e->time_base = (AVRational){1, TT_SAMPLE_RATE};
    e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    rc = avcodec_open2(e, codec, NULL);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot open the AAC encoder");

    char layout[128], args[320];
    if (d->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&d->ch_layout, d->ch_layout.nb_channels);
    av_channel_layout_describe(&d->ch_layout, layout, sizeof(layout));
    snprintf(args, sizeof(args), "time_base=%d/%d:sample_rate=%d:sample_fmt=%s:channel_layout=%s",
             st->time_base.num, st->time_base.den, d->sample_rate,
             av_get_sample_fmt_name(d->sample_fmt), layout);
    const char *desc =
        "aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";
    rc = make_graph(&job->agraph, &job->asrc, &job->asink, "abuffer", "abuffersink", args, desc);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot set up the audio filters");
    av_buffersink_set_frame_size(job->asink, (unsigned)e->frame_size);
    snprintf(job->audio_codecs, sizeof(job->audio_codecs), "mp4a.40.2");
    return 0;
}

/* Every packet the AAC encoder has ready goes to every rung; frame NULL flushes. */
static int encode_audio(struct tt_job *job, AVFrame *frame, struct tmt_err *err)
{
    int rc = avcodec_send_frame(job->aenc, frame);
    if (rc < 0 && rc != AVERROR_EOF)
        return tt_av_err(err, TMT_ELIMIT, rc, "the AAC encoder refused a frame");
    for (;;) {
        rc = avcodec_receive_packet(job->aenc, job->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return tt_av_err(err, TMT_ELIMIT, rc, "the AAC encoder failed");
        for (unsigned i = 0; i < job->n_rungs; i++) {
            AVPacket *copy = av_packet_clone(job->pkt);
            if (copy == NULL)
                return tmt_err_set(err, TMT_ELIMIT, "out of memory");
            if (tt_queue_push(job, &job->rungs[i].q, NULL, copy) != 0)
                return TMT_EAGAIN;
        }
        av_packet_unref(job->pkt);
    }
}

/* Pulls what the filter graph has ready (after a push, or after EOF into it). */
static int drain_video(struct tt_job *job, struct tmt_err *err)
{
    for (;;) {
        int rc = av_buffersink_get_frame(job->vsink, job->filt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return tt_av_err(err, TMT_ELIMIT, rc, "the fps filter failed");
        job->vframes++;
        for (unsigned i = 0; i < job->n_rungs; i++) {
            AVFrame *ref = av_frame_clone(job->filt);
            if (ref == NULL) {
                av_frame_unref(job->filt);
                return tmt_err_set(err, TMT_ELIMIT, "out of memory");
            }
            if (tt_queue_push(job, &job->rungs[i].q, ref, NULL) != 0) {
                av_frame_unref(job->filt);
                return TMT_EAGAIN;
            }
        }
        av_frame_unref(job->filt);
    }
}

static int drain_audio(struct tt_job *job, struct tmt_err *err)
{
    for (;;) {
        int rc = av_buffersink_get_frame(job->asink, job->filt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return tt_av_err(err, TMT_ELIMIT, rc, "the audio resampler failed");
        job->filt->pts = job->asamples;
        job->asamples += job->filt->nb_samples;
        rc = encode_audio(job, job->filt, err);
        av_frame_unref(job->filt);
        if (rc != 0)
            return rc;
    }
}

/* Sends pkt (NULL flushes) to the decoder of its stream and pushes the frames into the graph. */
static int decode(struct tt_job *job, AVCodecContext *dec, const AVPacket *pkt, bool video,
                  struct tmt_err *err)
{
    int rc = avcodec_send_packet(dec, pkt);
    if (rc == AVERROR_INVALIDDATA) {
        job->decode_errors++;
        return 0;
    }
    if (rc < 0 && rc != AVERROR_EOF)
        return tt_av_err(err, TMT_ECORRUPT, rc, "%s: decoding failed", job->o->source);
    for (;;) {
        rc = avcodec_receive_frame(dec, job->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc == AVERROR_INVALIDDATA) {
            job->decode_errors++;
            continue;
        }
        if (rc < 0)
            return tt_av_err(err, TMT_ECORRUPT, rc, "%s: decoding failed", job->o->source);
        AVRational tb = job->in->streams[video ? job->vsi : job->asi]->time_base;
        job->frame->pts = job->frame->best_effort_timestamp;
        if (video && job->frame->pts != AV_NOPTS_VALUE) {
            double t = job->frame->pts * av_q2d(tb);
            if (t > job->last_media_s)
                job->last_media_s = t;
            int64_t dur = job->frame->pkt_duration;
            if (dur <= 0)
                dur = av_rescale_q(1, (AVRational){(int)job->rate_den, (int)job->rate_num}, tb);
            if (job->frame->pts + dur > job->vend_pts)
                job->vend_pts = job->frame->pts + dur;
        }
        rc = av_buffersrc_add_frame_flags(video ? job->vsrc : job->asrc, job->frame, 0);
        av_frame_unref(job->frame);
        if (rc < 0)
            return tt_av_err(err, TMT_EINVAL, rc,
                             "%s: the %s changes format midway, which is not supported",
                             job->o->source, video ? "video" : "audio");
        rc = video ? drain_video(job, err) : drain_audio(job, err);
        if (rc != 0)
            return rc;
    }
}

static void report(struct tt_job *job, double t0, bool done)
{
    const struct tmt_transcode_opts *o = job->o;
    if (o->progress == NULL)
        return;
    struct tmt_transcode_progress p = {0};
    double start = job->in->start_time != AV_NOPTS_VALUE ? (double)job->in->start_time / 1e6 : 0;
    p.elapsed_s = now_s() - t0;
    p.frames = job->vframes;
    p.media_s = (double)job->vframes * job->rate_den / job->rate_num;
    p.duration_s = job->duration_s;
    if (job->duration_s > 0)
        p.percent = 100.0 * (job->last_media_s - start) / job->duration_s;
    if (p.percent < 0)
        p.percent = 0;
    if (p.percent > 100 || done)
        p.percent = done ? 100 : 99.9;
    if (p.elapsed_s > 0) {
        p.fps = (double)p.frames / p.elapsed_s;
        p.speed = p.media_s / p.elapsed_s;
    }
    p.done = done;
    o->progress(&p, o->progress_arg);
}

static bool cancelled(const struct tmt_transcode_opts *o)
{
    return o->cancel != NULL && atomic_load(o->cancel);
}

/* The decoding loop, then the flushes and the end-of-stream item to every rung. */
static int pump(struct tt_job *job, double t0, struct tmt_err *err)
{
    double next_report = t0 + TT_PROGRESS_S;
    int rc = 0;
    while (rc == 0) {
        if (cancelled(job->o))
            return tmt_err_set(err, TMT_EAGAIN, "cancelled");
        if (atomic_load(&job->abort))
            return TMT_EAGAIN;
        double now = now_s();
        if (now >= next_report) {
            report(job, t0, false);
            next_report = now + TT_PROGRESS_S;
        }
        int r = av_read_frame(job->in, job->pkt);
        if (r == AVERROR_EOF)
            break;
        if (r < 0)
            return tt_av_err(err, r == AVERROR(EIO) ? TMT_EIO : TMT_ECORRUPT, r,
                             "%s: reading failed at %.1f s", job->o->source, job->last_media_s);
        if (job->pkt->stream_index == job->vsi)
            rc = decode(job, job->vdec, job->pkt, true, err);
        else if (job->pkt->stream_index == job->asi)
            rc = decode(job, job->adec, job->pkt, false, err);
        av_packet_unref(job->pkt);
    }
    if (rc != 0)
        return rc;
    rc = decode(job, job->vdec, NULL, true, err);
    /* Closing at the end of the last frame (not its start) lets fps keep that frame. */
    if (rc == 0 && (rc = av_buffersrc_close(job->vsrc, job->vend_pts, 0)) >= 0)
        rc = drain_video(job, err);
    if (rc < 0 && rc != TMT_EAGAIN && err->code == TMT_OK)
        return tt_av_err(err, TMT_ELIMIT, rc, "flushing the video filters");
    if (rc == 0 && job->adec != NULL) {
        rc = decode(job, job->adec, NULL, false, err);
        if (rc == 0 && (rc = av_buffersrc_add_frame(job->asrc, NULL)) >= 0)
            rc = drain_audio(job, err);
        if (rc == 0)
            rc = encode_audio(job, NULL, err);
        if (rc < 0 && rc != TMT_EAGAIN && err->code == TMT_OK)
            return tt_av_err(err, TMT_ELIMIT, rc, "flushing the audio");
    }
    if (rc != 0)
        return rc;
    if (job->vframes == 0)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: no video frame could be decoded (%u errors)",
                           job->o->source, job->decode_errors);
    double start = job->in->start_time != AV_NOPTS_VALUE ? (double)job->in->start_time / 1e6 : 0;
    double reached = job->last_media_s - start;
    if (job->duration_s > 0 && reached < job->duration_s * 0.95 && reached + 1.0 < job->duration_s)
        return tmt_err_set(err, TMT_ECORRUPT,
                           "%s: the video ends at %.1f s but the file says %.1f s: truncated or "
                           "damaged",
                           job->o->source, reached, job->duration_s);
    for (unsigned i = 0; i < job->n_rungs; i++) {
        if (tt_queue_push(job, &job->rungs[i].q, NULL, NULL) != 0)
            return TMT_EAGAIN;
    }
    return 0;
}

static void job_close(struct tt_job *job)
{
    for (unsigned i = 0; i < job->n_rungs; i++)
        tt_rung_close(&job->rungs[i]);
    avfilter_graph_free(&job->vgraph);
    avfilter_graph_free(&job->agraph);
    avcodec_free_context(&job->vdec);
    avcodec_free_context(&job->adec);
    avcodec_free_context(&job->aenc);
    avformat_close_input(&job->in);
    av_frame_free(&job->frame);
    av_frame_free(&job->filt);
    av_packet_free(&job->pkt);
}

/* The first error of a rung, if one failed (a rung that only saw the abort reports EAGAIN). */
static int rung_error(struct tt_job *job, struct tmt_err *err)
{
    for (unsigned i = 0; i < job->n_rungs; i++) {
        const struct tt_rung *r = &job->rungs[i];
        if (r->rc != 0 && r->rc != TMT_EAGAIN) {
            if (err != NULL)
                *err = r->err;
            return r->rc;
        }
    }
    return 0;
}

int tmt_transcode_run(const struct tmt_transcode_opts *o, struct tmt_transcode_result *res,
                      struct tmt_err *err)
{
    struct tmt_err local;
    if (err == NULL)
        err = &local;
    tmt_err_clear(err);
    int rc = check_opts(o, err);
    if (rc != 0)
        return rc;
    double t0 = now_s();
    struct tt_job *job = tmt_xcalloc(1, sizeof(*job));
    job->o = o;
    job->vsi = job->asi = -1;
    job->vend_pts = INT64_MIN;
    atomic_init(&job->abort, false);
    job->frame = av_frame_alloc();
    job->filt = av_frame_alloc();
    job->pkt = av_packet_alloc();
    if (job->frame == NULL || job->filt == NULL || job->pkt == NULL) {
        rc = tmt_err_set(err, TMT_ELIMIT, "out of memory");
        goto out;
    }
    if ((rc = open_source(job, err)) != 0 || (rc = open_video(job, err)) != 0 ||
        (rc = open_audio(job, err)) != 0 || (rc = tt_out_begin(job, err)) != 0)
        goto out;
    for (unsigned i = 0; i < job->n_rungs && rc == 0; i++)
        rc = tt_rung_open(&job->rungs[i], err);
    for (unsigned i = 0; i < job->n_rungs && rc == 0; i++)
        rc = tt_rung_start(&job->rungs[i], err);
    if (rc == 0)
        rc = pump(job, t0, err);
    if (rc != 0)
        tt_job_abort(job);
    for (unsigned i = 0; i < job->n_rungs; i++)
        tt_rung_join(&job->rungs[i]);
    /* A rung's own failure (a full disk) explains more than the producer's "aborted". */
    if (rc == 0 || (rc == TMT_EAGAIN && err->code == TMT_OK)) {
        int rrc = rung_error(job, err);
        if (rrc != 0)
            rc = rrc;
    }
    if (rc == TMT_EAGAIN && err->code == TMT_OK)
        rc = tmt_err_set(err, TMT_EAGAIN, "cancelled");
    if (rc == 0)
        rc = tt_out_commit(job, err);
    if (rc == 0) {
        report(job, t0, true);
        if (res != NULL) {
            memset(res, 0, sizeof(*res));
            res->n_rungs = job->n_rungs;
            for (unsigned i = 0; i < job->n_rungs; i++) {
                snprintf(res->rungs[i].id, sizeof(res->rungs[i].id), "%s", job->rungs[i].p.id);
                res->rungs[i].width = job->rungs[i].p.width;
                res->rungs[i].height = job->rungs[i].p.height;
                res->rungs[i].bitrate = job->rungs[i].p.bitrate;
            }
            res->rate_num = job->rate_num;
            res->rate_den = job->rate_den;
            res->frames_per_segment = job->per_seg;
            res->audio = job->aenc != NULL;
            res->frames = job->vframes;
            res->duration_s = (double)job->vframes * job->rate_den / job->rate_num;
            res->elapsed_s = now_s() - t0;
        }
    }
out:
    if (rc != 0) {
        for (unsigned i = 0; i < job->n_rungs; i++)
            tt_rung_join(&job->rungs[i]);
        job_close(job); /* closes the files before they are removed */
        tt_out_remove(job);
    } else {
        job_close(job);
    }
    free(job);
    return rc;
}
