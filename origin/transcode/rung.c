/*
 * rung.c: one rung of the ladder: a bounded queue fed by the decoding thread, and a thread that
 * scales each frame, encodes it with libx264 and muxes it with the AAC packets into the rung's
 * MP4.
 *
 * Keyframes: the frames arrive at a constant rate with `per_seg` frames per segment; frame n is
 * sent with pict_type I when n % per_seg == 0 and NONE otherwise (a decoded frame's own type
 * must not leak into the encoder, since libx264 honours it), and x264 runs with forced-idr=1
 * (forced I frames are IDR), keyint = min-keyint = per_seg, scenecut=0 and no open GOP, so its
 * own decisions agree with the forced ones and there is no other keyframe.
 *
 * The encoder and the muxer are opened on the decoding thread before the rung thread starts (so
 * set-up errors are reported at once); after that only the rung thread touches them.
 */
#include "transcode_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>

void tt_queue_init(struct tt_queue *q)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
}

void tt_queue_fini(struct tt_queue *q)
{
    for (unsigned i = 0; i < q->n; i++) {
        struct tt_item *it = &q->items[(q->head + i) % TT_QUEUE_CAP];
        av_frame_free(&it->frame);
        av_packet_free(&it->pkt);
    }
    q->n = 0;
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
}

int tt_queue_push(struct tt_job *job, struct tt_queue *q, AVFrame *frame, AVPacket *pkt)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == TT_QUEUE_CAP && !atomic_load(&job->abort))
        pthread_cond_wait(&q->not_full, &q->mu);
    if (atomic_load(&job->abort)) {
        pthread_mutex_unlock(&q->mu);
        av_frame_free(&frame);
        av_packet_free(&pkt);
        return TMT_EAGAIN;
    }
    q->items[(q->head + q->n) % TT_QUEUE_CAP] = (struct tt_item){frame, pkt};
    q->n++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

/* Blocks for the next item. false once the job aborts. */
static bool queue_pop(struct tt_job *job, struct tt_queue *q, struct tt_item *out)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !atomic_load(&job->abort))
        pthread_cond_wait(&q->not_empty, &q->mu);
    if (atomic_load(&job->abort)) {
        pthread_mutex_unlock(&q->mu);
        return false;
    }
    *out = q->items[q->head];
    q->head = (q->head + 1) % TT_QUEUE_CAP;
    q->n--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void tt_job_abort(struct tt_job *job)
{
    atomic_store(&job->abort, true);
    for (unsigned i = 0; i < job->n_rungs; i++) {
        struct tt_queue *q = &job->rungs[i].q;
        pthread_mutex_lock(&q->mu);
        pthread_cond_broadcast(&q->not_empty);
        pthread_cond_broadcast(&q->not_full);
        pthread_mutex_unlock(&q->mu);
    }
}

/* buffer → scale → format=yuv420p → setsar=1 → buffersink, from the fps filter's output. */
static int open_scaler(struct tt_rung *r, struct tmt_err *err)
{
    struct tt_job *job = r->job;
    r->graph = avfilter_graph_alloc();
    if (r->graph == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for the %s scaler", r->p.id);
    r->graph->nb_threads = 1;
    AVRational tb = av_buffersink_get_time_base(job->vsink);
    AVRational sar = av_buffersink_get_sample_aspect_ratio(job->vsink);
    char args[256], desc[256];
    snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
             av_buffersink_get_w(job->vsink), av_buffersink_get_h(job->vsink),
             av_buffersink_get_format(job->vsink), tb.num, tb.den, sar.num > 0 ? sar.num : 1,
             sar.den > 0 ? sar.den : 1);
    snprintf(desc, sizeof(desc), "scale=%u:%u,format=yuv420p,setsar=1", r->p.width, r->p.height);
    AVFilterInOut *outs = NULL, *ins = NULL;
    int rc = avfilter_graph_create_filter(&r->src, avfilter_get_by_name("buffer"), "in", args, NULL,
                                          r->graph);
    if (rc >= 0)
        rc = avfilter_graph_create_filter(&r->sink, avfilter_get_by_name("buffersink"), "out", NULL,
                                          NULL, r->graph);
    if (rc >= 0) {
        outs = avfilter_inout_alloc();
        ins = avfilter_inout_alloc();
        if (outs == NULL || ins == NULL) {
            rc = AVERROR(ENOMEM);
        } else {
            outs->name = av_strdup("in");
            outs->filter_ctx = r->src;
            ins->name = av_strdup("out");
            ins->filter_ctx = r->sink;
            rc = avfilter_graph_parse_ptr(r->graph, desc, &ins, &outs, NULL);
        }
    }
    if (rc >= 0)
        rc = avfilter_graph_config(r->graph, NULL);
    avfilter_inout_free(&outs);
    avfilter_inout_free(&ins);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot set up the %s scaler (%s)", r->p.id, desc);
    return 0;
}

/* avc1.PPCCLL from the SPS in x264's Annex B extradata, as the packager reads it from avcC. */
static void sps_codecs(const uint8_t *p, int n, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i + 7 <= n; i++) {
        if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1 && (p[i + 3] & 0x1f) == 7) {
            snprintf(out, cap, "avc1.%02x%02x%02x", p[i + 4], p[i + 5], p[i + 6]);
            return;
        }
    }
}

static int open_encoder(struct tt_rung *r, struct tmt_err *err)
{
    struct tt_job *job = r->job;
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (codec == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "this libavcodec has no libx264 encoder");
    r->enc = avcodec_alloc_context3(codec);
    if (r->enc == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for the %s encoder", r->p.id);
    AVCodecContext *c = r->enc;
    c->width = (int)r->p.width;
    c->height = (int)r->p.height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->framerate = (AVRational){(int)job->rate_num, (int)job->rate_den};
    c->time_base = av_inv_q(c->framerate);
    c->bit_rate = (int64_t)r->p.bitrate;
    c->gop_size = (int)job->per_seg;
    c->keyint_min = (int)job->per_seg;
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    c->thread_count = (int)job->o->encoder_threads;
    AVDictionary *d = NULL;
    char params[160];
    snprintf(params, sizeof(params), "keyint=%u:min-keyint=%u:scenecut=0:open-gop=0", job->per_seg,
             job->per_seg);
    av_dict_set(&d, "preset", r->p.preset, 0);
    av_dict_set(&d, "forced-idr", "1", 0);
    av_dict_set(&d, "sc_threshold", "0", 0);
    av_dict_set(&d, "x264-params", params, 0);
    int rc = avcodec_open2(c, codec, &d);
    av_dict_free(&d);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot open libx264 for %s (%ux%u, preset %s)",
                         r->p.id, r->p.width, r->p.height, r->p.preset);
    sps_codecs(c->extradata, c->extradata_size, r->codecs, sizeof(r->codecs));
    return 0;
}

static int open_muxer(struct tt_rung *r, struct tmt_err *err)
{
    struct tt_job *job = r->job;
    int rc = avformat_alloc_output_context2(&r->mux, NULL, "mp4", r->tmp_path);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "cannot make the MP4 muxer for %s", r->p.id);
    AVStream *vs = avformat_new_stream(r->mux, NULL);
    if (vs == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for %s", r->p.id);
    rc = avcodec_parameters_from_context(vs->codecpar, r->enc);
    if (rc < 0)
        return tt_av_err(err, TMT_ELIMIT, rc, "%s: video stream parameters", r->p.id);
    vs->time_base = r->enc->time_base;
    vs->avg_frame_rate = r->enc->framerate;
    r->vst = vs->index;
    r->ast = -1;
    if (job->aenc != NULL) {
        AVStream *as = avformat_new_stream(r->mux, NULL);
        if (as == NULL)
            return tmt_err_set(err, TMT_ELIMIT, "out of memory for %s", r->p.id);
        rc = avcodec_parameters_from_context(as->codecpar, job->aenc);
        if (rc < 0)
            return tt_av_err(err, TMT_ELIMIT, rc, "%s: audio stream parameters", r->p.id);
        as->time_base = job->aenc->time_base;
        r->ast = as->index;
    }
    rc = avio_open(&r->mux->pb, r->tmp_path, AVIO_FLAG_WRITE);
    if (rc < 0)
        return tt_av_err(err, TMT_EIO, rc, "cannot create %s", r->tmp_path);
    AVDictionary *d = NULL;
    av_dict_set(&d, "movflags", "+faststart", 0);
    rc = avformat_write_header(r->mux, &d);
    av_dict_free(&d);
    if (rc < 0)
        return tt_av_err(err, TMT_EIO, rc, "cannot write the header of %s", r->tmp_path);
    return 0;
}

int tt_rung_open(struct tt_rung *r, struct tmt_err *err)
{
    snprintf(r->tmp_path, sizeof(r->tmp_path), "%s/%s.mp4.tmp", r->job->dir, r->p.id);
    snprintf(r->path, sizeof(r->path), "%s/%s.mp4", r->job->dir, r->p.id);
    r->pkt = av_packet_alloc();
    r->scaled = av_frame_alloc();
    if (r->pkt == NULL || r->scaled == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "out of memory for %s", r->p.id);
    int rc = open_scaler(r, err);
    if (rc == 0)
        rc = open_encoder(r, err);
    if (rc == 0)
        rc = open_muxer(r, err);
    return rc;
}

/* Writes every packet the encoder has ready; frame NULL flushes it. */
static int encode(struct tt_rung *r, AVFrame *frame)
{
    int rc = avcodec_send_frame(r->enc, frame);
    if (rc < 0)
        return tt_av_err(&r->err, TMT_ELIMIT, rc, "%s: libx264 refused frame %llu", r->p.id,
                         (unsigned long long)r->frames);
    for (;;) {
        rc = avcodec_receive_packet(r->enc, r->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return tt_av_err(&r->err, TMT_ELIMIT, rc, "%s: libx264 failed", r->p.id);
        r->pkt->stream_index = r->vst;
        av_packet_rescale_ts(r->pkt, r->enc->time_base, r->mux->streams[r->vst]->time_base);
        rc = av_interleaved_write_frame(r->mux, r->pkt);
        if (rc < 0)
            return tt_av_err(&r->err, TMT_EIO, rc, "cannot write %s", r->tmp_path);
    }
}

static int scale_and_encode(struct tt_rung *r, AVFrame *in)
{
    int rc = av_buffersrc_add_frame_flags(r->src, in, AV_BUFFERSRC_FLAG_KEEP_REF);
    if (rc < 0)
        return tt_av_err(&r->err, TMT_EINVAL, rc,
                         "%s: cannot scale frame %llu (does the source change size midway?)",
                         r->p.id, (unsigned long long)r->frames);
    for (;;) {
        rc = av_buffersink_get_frame(r->sink, r->scaled);
        if (rc == AVERROR(EAGAIN))
            return 0;
        if (rc < 0)
            return tt_av_err(&r->err, TMT_ELIMIT, rc, "%s: scaler failed", r->p.id);
        r->scaled->pts = (int64_t)r->frames;
        r->scaled->pict_type =
            r->frames % r->job->per_seg == 0 ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
        r->scaled->key_frame = 0;
        r->frames++;
        rc = encode(r, r->scaled);
        av_frame_unref(r->scaled);
        if (rc != 0)
            return rc;
    }
}

static int write_audio(struct tt_rung *r, AVPacket *pkt)
{
    if (r->ast < 0)
        return 0;
    pkt->stream_index = r->ast;
    av_packet_rescale_ts(pkt, r->job->aenc->time_base, r->mux->streams[r->ast]->time_base);
    int rc = av_interleaved_write_frame(r->mux, pkt);
    if (rc < 0)
        return tt_av_err(&r->err, TMT_EIO, rc, "cannot write %s", r->tmp_path);
    return 0;
}

/* Trailer (faststart moves the moov to the front), close, sync, rename within the work folder. */
static int finish(struct tt_rung *r)
{
    int rc = encode(r, NULL);
    if (rc != 0)
        return rc;
    rc = av_write_trailer(r->mux);
    if (rc < 0)
        return tt_av_err(&r->err, TMT_EIO, rc, "cannot finish %s", r->tmp_path);
    if (r->mux->pb->error < 0)
        return tt_av_err(&r->err, TMT_EIO, r->mux->pb->error, "cannot write %s", r->tmp_path);
    rc = avio_closep(&r->mux->pb);
    if (rc < 0)
        return tt_av_err(&r->err, TMT_EIO, rc, "cannot close %s", r->tmp_path);
    if (tt_fsync_path(r->tmp_path, &r->err) != 0)
        return r->err.code;
    if (rename(r->tmp_path, r->path) != 0)
        return tmt_err_set_errno(&r->err, TMT_EIO, errno, "cannot rename %s", r->tmp_path);
    return 0;
}

static void *rung_main(void *arg)
{
    struct tt_rung *r = arg;
    struct tt_job *job = r->job;
    struct tt_item it;
    int rc = 0;
    while (rc == 0 && queue_pop(job, &r->q, &it)) {
        if (it.frame != NULL) {
            rc = scale_and_encode(r, it.frame);
            av_frame_free(&it.frame);
        } else if (it.pkt != NULL) {
            rc = write_audio(r, it.pkt);
            av_packet_free(&it.pkt);
        } else {
            rc = finish(r);
            r->rc = rc;
            if (rc != 0)
                tt_job_abort(job);
            return NULL;
        }
    }
    r->rc = rc != 0 ? rc : TMT_EAGAIN;
    if (rc != 0)
        tt_job_abort(job);
    return NULL;
}

int tt_rung_start(struct tt_rung *r, struct tmt_err *err)
{
    r->rc = TMT_EAGAIN;
    int e = pthread_create(&r->thread, NULL, rung_main, r);
    if (e != 0)
        return tmt_err_set_errno(err, TMT_ELIMIT, e, "cannot start the %s encoder thread", r->p.id);
    r->started = true;
    return 0;
}

void tt_rung_join(struct tt_rung *r)
{
    if (r->started)
        pthread_join(r->thread, NULL);
    r->started = false;
}

void tt_rung_close(struct tt_rung *r)
{
    if (r->mux != NULL) {
        if (r->mux->pb != NULL)
            avio_closep(&r->mux->pb);
        avformat_free_context(r->mux);
        r->mux = NULL;
    }
    avcodec_free_context(&r->enc);
    avfilter_graph_free(&r->graph);
    av_frame_free(&r->scaled);
    av_packet_free(&r->pkt);
    if (r->job != NULL)
        tt_queue_fini(&r->q);
}
