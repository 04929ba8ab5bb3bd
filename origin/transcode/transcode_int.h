/*
 * transcode_int.h: what the files of the transcoder share.
 *
 * A job (struct tt_job) lives on the stack of tmt_transcode_run. The calling thread demuxes,
 * decodes, runs the fps filter and the audio chain, and hands every output frame (a new
 * reference to the same buffers) and every AAC packet (a copy) to each rung's bounded queue.
 * Each rung thread owns its scale graph, its x264 encoder and its muxer and touches nothing
 * else; the queue is the only shared state, under its own mutex. `abort` stops everyone: a rung
 * that fails sets it and wakes the producer; the producer sets it on error or cancel and wakes
 * every rung.
 */
#ifndef TMT_TRANSCODE_INT_H
#define TMT_TRANSCODE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>

#include "tmt/transcode.h"

#define TT_QUEUE_CAP 16
#define TT_PATH_MAX 4096

/* A frame, a packet, or neither: the end of the stream. */
struct tt_item {
    AVFrame *frame;
    AVPacket *pkt;
};

struct tt_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct tt_item items[TT_QUEUE_CAP];
    unsigned head, n;
};

struct tt_job;

/* A planned rung: sizes decided from the source (tt_plan). */
struct tt_plan_rung {
    char id[16];
    unsigned width, height;
    uint64_t bitrate;
    char preset[TMT_TRANSCODE_PRESET_MAX];
};

struct tt_rung {
    struct tt_job *job;
    struct tt_plan_rung p;
    struct tt_queue q;
    pthread_t thread;
    bool started;
    AVFilterGraph *graph;
    AVFilterContext *src, *sink;
    AVCodecContext *enc;
    AVFormatContext *mux;
    AVPacket *pkt;
    AVFrame *scaled;
    int vst, ast; /* stream indexes in mux, ast -1 without audio */
    uint64_t frames;
    char tmp_path[TT_PATH_MAX + 64], path[TT_PATH_MAX + 64];
    char codecs[32]; /* avc1.PPCCLL from x264's SPS, "" if unknown */
    int rc;
    struct tmt_err err;
};

struct tt_job {
    const struct tmt_transcode_opts *o;
    char dir[TT_PATH_MAX]; /* the hidden work folder */
    char final_dir[TT_PATH_MAX];
    AVFormatContext *in;
    int vsi, asi;
    AVCodecContext *vdec, *adec, *aenc;
    AVFilterGraph *vgraph, *agraph;
    AVFilterContext *vsrc, *vsink, *asrc, *asink;
    AVFrame *frame, *filt;
    AVPacket *pkt;
    unsigned rate_num, rate_den, per_seg;
    struct tt_rung rungs[TMT_TRANSCODE_MAX_RUNGS];
    unsigned n_rungs;
    atomic_bool abort;
    uint64_t vframes; /* frames out of the fps filter */
    int64_t asamples; /* samples into the AAC encoder */
    int64_t vend_pts; /* end of the last decoded video frame (stream time base) */
    double last_media_s, duration_s;
    unsigned decode_errors;
    char audio_codecs[32];
};

/* ladder.c */
int tt_plan(const struct tmt_transcode_opts *o, int src_w, int src_h, AVRational sar,
            struct tt_plan_rung *out, unsigned *n, struct tmt_err *err);
bool tt_asset_id_valid(const char *s);

/* rung.c */
void tt_queue_init(struct tt_queue *q);
void tt_queue_fini(struct tt_queue *q);
/* Takes ownership of frame or pkt (both NULL: end of stream). TMT_EAGAIN once the job aborts. */
int tt_queue_push(struct tt_job *job, struct tt_queue *q, AVFrame *frame, AVPacket *pkt);
/* Sets abort and wakes every waiter of the job. */
void tt_job_abort(struct tt_job *job);
int tt_rung_open(struct tt_rung *r, struct tmt_err *err);
int tt_rung_start(struct tt_rung *r, struct tmt_err *err);
void tt_rung_join(struct tt_rung *r);
void tt_rung_close(struct tt_rung *r);

/* output.c */
int tt_out_begin(struct tt_job *job, struct tmt_err *err);
int tt_out_commit(struct tt_job *job, struct tmt_err *err);
void tt_out_remove(struct tt_job *job);
int tt_fsync_path(const char *path, struct tmt_err *err);

/* Sets err from an av* error code, with a prefix; returns code. */
int tt_av_err(struct tmt_err *err, int code, int averr, const char *fmt, ...) TMT_PRINTF(4, 5);

#endif
