/*
 * transcode.h: the transcoder. One source file (any container and codecs libavformat reads) in,
 * one asset out: an ABR ladder of H.264/AAC mezzanine MP4s plus asset.json, in the form the
 * packager reads (docs/asset-json.md).
 *
 *   struct tmt_transcode_opts o;
 *   tmt_transcode_opts_init(&o);                     default ladder, preset, 4 s segments
 *   o.source = "in.mov"; o.root = "/srv/mezzanine"; o.asset_id = "show1-v1";
 *   rc = tmt_transcode_run(&o, &res, &err);          blocks until done, failed or cancelled
 *
 * The source is decoded once. Video goes through an `fps` filter to a constant rate with a whole
 * number of frames per segment (tmt_transcode_out_rate), then every rung scales it and encodes it
 * with libx264 in a thread of its own, with an IDR frame exactly at every segment boundary and no
 * other keyframe. Audio is resampled once to 48 kHz stereo, encoded once with the native AAC
 * encoder and muxed into every rung's MP4.
 *
 * Nothing is visible before the whole asset is complete: everything is written in a hidden
 * folder `{root}/.{asset}.partial-XXXXXX`, asset.json last, synced, and the folder is renamed to
 * `{root}/{asset}` in one step. On failure or cancel the folder is removed. An existing
 * `{root}/{asset}` is an error (assets are immutable).
 *
 * Threads: tmt_transcode_run is reentrant (no global state; any number of jobs may run at once in
 * different threads) and blocks its caller; it starts one thread per rung and joins them before
 * returning. It touches no sockets and no event loop. The progress callback runs on the caller's
 * thread. The cancel flag may be set from any thread; the job notices it within one packet.
 */
#ifndef TMT_TRANSCODE_H
#define TMT_TRANSCODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/err.h"

#define TMT_TRANSCODE_MAX_RUNGS 8
#define TMT_TRANSCODE_PRESET_MAX 16
/* x264 presets, in the form of a config ENUM's choices. */
#define TMT_TRANSCODE_PRESETS "ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow"
/* The default ladder, in the syntax of tmt_transcode_ladder_parse. */
#define TMT_TRANSCODE_LADDER "1080:5M,720:3M,480:1200k,360:600k"
#define TMT_TRANSCODE_PRESET "veryfast"

/* One rung of the ladder. */
struct tmt_transcode_rung {
    unsigned height;                       /* output height in pixels (even, 16 to 4320) */
    uint64_t bitrate;                      /* x264 target in bit/s */
    char preset[TMT_TRANSCODE_PRESET_MAX]; /* "" = the job's preset */
};

struct tmt_transcode_progress {
    double percent;    /* of the source duration decoded, 0 to 100 */
    uint64_t frames;   /* output frames (after the fps filter) handed to the encoders */
    double fps;        /* frames per second of wall time so far */
    double speed;      /* media seconds per wall second (2.0 = twice real time) */
    double media_s;    /* media time reached */
    double duration_s; /* the source's duration, 0 if unknown */
    double elapsed_s;  /* wall time since the job started */
    bool done;         /* the last call, after every file is written */
};

/* Called on the thread running the job, at most twice a second and once with done set. */
typedef void tmt_transcode_progress_fn(const struct tmt_transcode_progress *p, void *arg);

struct tmt_transcode_opts {
    const char *source;   /* file to read (borrowed) */
    const char *root;     /* mezzanine root: the asset lands in {root}/{asset_id} */
    const char *asset_id; /* [A-Za-z0-9_-]{1,64} */
    struct tmt_transcode_rung ladder[TMT_TRANSCODE_MAX_RUNGS];
    unsigned n_rungs;
    char preset[TMT_TRANSCODE_PRESET_MAX]; /* x264 preset of rungs that name none */
    unsigned segment_ms;                   /* segment duration, 1000 to 30000 ms */
    uint64_t audio_bitrate;                /* AAC bit/s, 32000 to 512000 */
    unsigned encoder_threads;              /* x264 threads per rung, 0 = x264's choice */
    tmt_transcode_progress_fn *progress;   /* or NULL */
    void *progress_arg;
    const atomic_bool *cancel; /* or NULL; set it to stop the job (TMT_EAGAIN) */
};

/* What a successful job made. */
struct tmt_transcode_result {
    unsigned n_rungs;
    struct {
        char id[16]; /* "720p": also the file name without ".mp4" */
        unsigned width, height;
        uint64_t bitrate;
    } rungs[TMT_TRANSCODE_MAX_RUNGS];
    unsigned rate_num, rate_den; /* output frame rate */
    unsigned frames_per_segment;
    bool audio;        /* an audio rendition was made */
    uint64_t frames;   /* per rung */
    double duration_s; /* of the output video */
    double elapsed_s;
};

/* Defaults: TMT_TRANSCODE_LADDER, TMT_TRANSCODE_PRESET, 4 s segments, 128 kbit/s AAC. */
void tmt_transcode_opts_init(struct tmt_transcode_opts *o);

/*
 * Parses a ladder, "HEIGHT:BITRATE[:PRESET],..." (bit rates in bit/s with an optional k or M
 * suffix, powers of 1000: "1080:5M,720:3M:fast,360:600k"), into o->ladder and o->n_rungs. Heights
 * must be even and distinct; rungs are kept highest first. TMT_EINVAL with a message naming the
 * item on a bad ladder; o is unchanged then.
 */
int tmt_transcode_ladder_parse(struct tmt_transcode_opts *o, const char *text,
                               struct tmt_err *err) TMT_MUST_CHECK;

/* true if name is one of TMT_TRANSCODE_PRESETS. */
bool tmt_transcode_preset_valid(const char *name);

/*
 * The output frame rate for a source rate src_num/src_den (0/0 when unknown: 25 fps is used) and
 * a segment duration: frames per segment = round(rate * segment), output rate = that / segment,
 * so every segment starts on a frame. 25 and 30 fps stay as they are with 4 s segments;
 * 30000/1001 becomes 30, 24000/1001 becomes 24, 12.5 stays 25/2. Rates are limited to 1 to 240.
 */
void tmt_transcode_out_rate(int src_num, int src_den, unsigned segment_ms, unsigned *rate_num,
                            unsigned *rate_den, unsigned *frames_per_segment);

/*
 * Runs one job: decodes o->source once and writes the asset (see the top of this file). Blocks
 * until done. res (may be NULL) is filled on success. Returns 0 or fills err with a message a
 * person can act on, naming the file:
 *   TMT_EINVAL     options (ladder, asset id, segment duration), not a media file, no video
 *                  stream (audio-only sources are refused), a source too small or too large
 *   TMT_ENOTFOUND  the source or the root does not exist
 *   TMT_EEXIST     {root}/{asset_id} already exists
 *   TMT_ECORRUPT   the source is damaged or truncated (it ends well before its stated duration)
 *   TMT_EIO        reading or writing failed (a full disk: errno ENOSPC or EFBIG in sys_errno)
 *   TMT_EAGAIN     cancelled through o->cancel
 *   TMT_ELIMIT     a codec or filter could not be set up (out of memory, missing libx264)
 * On any error nothing is left under root.
 */
int tmt_transcode_run(const struct tmt_transcode_opts *o, struct tmt_transcode_result *res,
                      struct tmt_err *err) TMT_MUST_CHECK;

#endif
