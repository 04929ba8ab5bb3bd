/*
 * Unit tests of the transcoder (tmt/transcode.h) on real media. Sources are made with the ffmpeg
 * CLI (testsrc2 + sine) in a temporary folder; each job's output is read back with ffprobe (size,
 * codec, frame rate, keyframes exactly on segment boundaries) and with the packager
 * (tmt_pack_asset_load + tmt_pack_index_build, which checks asset.json against the files and
 * the alignment of keyframes across renditions). Clips are short and small; one is 1080p for two
 * seconds. Bad inputs (not media, truncated, audio-only, missing, existing asset, a full disk,
 * cancel) must fail with their code and leave nothing under the root.
 *
 * A full disk is simulated with RLIMIT_FSIZE in a forked child (writes past the limit fail with
 * EFBIG once SIGXFSZ is ignored), which needs no mount and no root.
 */
#include "tmt/transcode.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmt/pack.h"
#include "transcode_int.h"

static char g_tmp[256];  /* sources */
static char g_root[300]; /* mezzanine root, emptied after every test */

static int run(const char *fmt, ...) TMT_PRINTF(1, 2);
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static const char *capture(const char *fmt, ...) TMT_PRINTF(1, 2);
static const char *capture(const char *fmt, ...)
{
    static char out[262144];
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

/* Makes {tmp}/{name} with ffmpeg: `input` are the -f lavfi inputs and options. */
static const char *make_source(const char *name, const char *input)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_tmp, name);
    struct stat st;
    if (stat(path, &st) != 0)
        assert_int_equal(run("ffmpeg -nostdin -v error -y %s %s", input, path), 0);
    return path;
}

#define AV_SRC(size, rate, secs)                                                                   \
    "-f lavfi -i testsrc2=size=" size ":rate=" rate " -f lavfi -i "                                \
    "sine=frequency=440:sample_rate=44100 -t " secs " -c:v libx264 -preset ultrafast "             \
    "-pix_fmt yuv420p -c:a aac -b:a 64k"

/* Entries in the root other than . and .. */
static unsigned root_entries(void)
{
    DIR *d = opendir(g_root);
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void opts_for(struct tmt_transcode_opts *o, const char *src, const char *asset)
{
    tmt_transcode_opts_init(o);
    snprintf(o->preset, sizeof(o->preset), "ultrafast");
    o->source = src;
    o->root = g_root;
    o->asset_id = asset;
}

/*
 * Checks rung `id` of asset with ffprobe: size, codec, constant frame rate, and key packets at
 * exactly every multiple of seg_s and nowhere else. Returns the number of video frames.
 */
static unsigned check_rung(const char *asset, const char *id, unsigned w, unsigned h, double rate,
                           double seg_s, bool audio)
{
    char file[512];
    snprintf(file, sizeof(file), "%s/%s/%s.mp4", g_root, asset, id);
    const char *s = capture("ffprobe -v error -show_entries stream=codec_type,codec_name,width,"
                            "height,avg_frame_rate,sample_rate,channels -of csv=p=0 %s",
                            file);
    char want[128];
    snprintf(want, sizeof(want), "h264,video,%u,%u,", w, h);
    if (strstr(s, want) == NULL)
        fail_msg("%s: expected %s in\n%s", file, want, s);
    assert_int_equal(strstr(s, "aac,audio,48000,2") != NULL, audio);
    /* packets in decode order: pts and flags */
    s = capture("ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags -of "
                "csv=p=0 %s",
                file);
    unsigned frames = 0, keys = 0;
    double pts[20000];
    const char *p = s;
    while (*p != '\0' && frames < 20000) {
        double t;
        char flags[8];
        if (sscanf(p, "%lf,%7s", &t, flags) != 2)
            fail_msg("%s: cannot read packet line %.40s", file, p);
        pts[frames++] = t;
        /* ffprobe shows pts shifted by the B-frame delay: measured against the first key */
        if (flags[0] == 'K') {
            keys++;
            double rel = t - pts[0];
            double n = rel / seg_s;
            if (fabs(n - round(n)) > 0.001)
                fail_msg("%s: keyframe at %.3f s, not on a %.3f s boundary", file, rel, seg_s);
        }
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        p++;
    }
    double dur = frames / rate;
    unsigned want_keys = (unsigned)ceil(dur / seg_s - 1e-6);
    if (keys != want_keys)
        fail_msg("%s: %u keyframes for %u frames, expected %u", file, keys, frames, want_keys);
    /* constant rate: sorted presentation times one frame apart */
    for (unsigned i = 1; i < frames; i++) {
        for (unsigned j = i; j > 0 && pts[j - 1] > pts[j]; j--) {
            double x = pts[j];
            pts[j] = pts[j - 1];
            pts[j - 1] = x;
        }
    }
    for (unsigned i = 1; i < frames; i++) {
        if (fabs(pts[i] - pts[i - 1] - 1 / rate) > 0.002)
            fail_msg("%s: frame %u at %.4f s after %.4f s (rate %.3f)", file, i, pts[i], pts[i - 1],
                     rate);
    }
    return frames;
}

/* Loads the asset with the packager; checks segment starts and the audio rendition. */
static void check_packager(const char *asset, unsigned n_video, bool audio, double seg_s)
{
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_asset *a = tmt_pack_asset_load(g_root, asset, &err);
    if (a == NULL)
        fail_msg("asset.json: %s", err.msg);
    assert_int_equal(tmt_pack_asset_renditions(a), n_video + (audio ? 1 : 0));
    struct tmt_pack_index *ix = tmt_pack_index_build(a, g_root, &err);
    tmt_pack_asset_free(&a);
    if (ix == NULL)
        fail_msg("index: %s", err.msg);
    unsigned segs = 0;
    for (unsigned r = 0; r < tmt_pack_index_renditions(ix); r++) {
        struct tmt_pack_rendition_info in;
        tmt_pack_index_info(ix, r, &in);
        if (in.kind == TMT_PACK_AUDIO) {
            assert_true(audio);
            assert_int_equal(in.sample_rate, 48000);
            assert_int_equal(in.channels, 2);
            assert_string_equal(in.codecs, "mp4a.40.2");
            continue;
        }
        if (segs == 0)
            segs = in.segments;
        assert_int_equal(in.segments, segs);
        for (unsigned n = 1; n <= in.segments; n++) {
            uint64_t start, dur;
            assert_int_equal(tmt_pack_segment_time(ix, r, n, &start, &dur), 0);
            double want = (n - 1) * seg_s * in.timescale;
            if (fabs((double)start - want) > 1)
                fail_msg("%s segment %u starts at %llu, expected %.0f", in.id, n,
                         (unsigned long long)start, want);
        }
    }
    tmt_pack_index_free(&ix);
}

static void clear_root(void)
{
    run("rm -rf %s/* %s/.[!.]*", g_root, g_root);
}

static int setup(void **state)
{
    (void)state;
    tmt_pack_libav_log_init();
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/tmt-transcode-XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return -1;
    snprintf(g_root, sizeof(g_root), "%s/root", g_tmp);
    return mkdir(g_root, 0755);
}

static int teardown(void **state)
{
    (void)state;
    if (g_tmp[0] != '\0')
        run("rm -rf %s", g_tmp);
    return 0;
}

static int after_each(void **state)
{
    (void)state;
    clear_root();
    return 0;
}

/* ---- options and decisions ------------------------------------------------------------- */

static void test_ladder_parse(void **state)
{
    (void)state;
    struct tmt_transcode_opts o;
    tmt_transcode_opts_init(&o);
    assert_int_equal(o.n_rungs, 4);
    assert_int_equal(o.ladder[0].height, 1080);
    assert_int_equal(o.ladder[0].bitrate, 5000000);
    assert_int_equal(o.ladder[3].height, 360);
    assert_int_equal(o.ladder[3].bitrate, 600000);
    assert_string_equal(o.preset, "veryfast");
    assert_int_equal(o.segment_ms, 4000);
    struct tmt_err err;
    assert_int_equal(tmt_transcode_ladder_parse(&o, "360:600k, 720:2.5M:fast", &err), 0);
    assert_int_equal(o.n_rungs, 2);
    assert_int_equal(o.ladder[0].height, 720); /* highest first */
    assert_int_equal(o.ladder[0].bitrate, 2500000);
    assert_string_equal(o.ladder[0].preset, "fast");
    assert_string_equal(o.ladder[1].preset, "");
    static const char *const bad[] = {"",
                                      "721:1M",
                                      "720",
                                      "720:x",
                                      "720:1M:turbo",
                                      "720:1M,720:2M",
                                      "8:1M",
                                      "1,2,3,4,5,6,7,8,9",
                                      "720:1M,480:1M,360:1M,240:1M,180:1M,144:1M,120:1M,90:1M,"
                                      "60:1M"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad); i++) {
        tmt_err_clear(&err);
        assert_int_equal(tmt_transcode_ladder_parse(&o, bad[i], &err), TMT_EINVAL);
        assert_non_null(strstr(err.msg, "ladder"));
        assert_int_equal(o.n_rungs, 2); /* unchanged */
    }
    assert_true(tmt_transcode_preset_valid("veryslow"));
    assert_false(tmt_transcode_preset_valid("very"));
    assert_false(tmt_transcode_preset_valid(""));
}

static void test_out_rate(void **state)
{
    (void)state;
    static const struct {
        int num, den;
        unsigned seg_ms, rnum, rden, per;
    } cases[] = {
        {25, 1, 4000, 25, 1, 100},      {30000, 1001, 4000, 30, 1, 120},
        {24000, 1001, 4000, 24, 1, 96}, {60000, 1001, 2000, 60, 1, 120},
        {25, 2, 4000, 25, 2, 50},       {0, 0, 4000, 25, 1, 100},
        {30000, 1001, 2500, 30, 1, 75}, {50, 1, 1000, 50, 1, 50},
        {1000, 1, 4000, 240, 1, 960},   {15, 1, 2500, 15, 1, 38 /* 37.5 rounds up */},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(cases); i++) {
        unsigned n, d, per;
        tmt_transcode_out_rate(cases[i].num, cases[i].den, cases[i].seg_ms, &n, &d, &per);
        if (cases[i].per == 38) {
            /* 38 frames per 2.5 s: 76/5 fps, still a whole number per segment */
            assert_int_equal(per, 38);
            assert_int_equal(n, 76);
            assert_int_equal(d, 5);
            continue;
        }
        assert_int_equal(n, cases[i].rnum);
        assert_int_equal(d, cases[i].rden);
        assert_int_equal(per, cases[i].per);
    }
}

static void test_plan_sizes(void **state)
{
    (void)state;
    struct tmt_transcode_opts o;
    tmt_transcode_opts_init(&o);
    o.source = "x";
    struct tt_plan_rung r[TMT_TRANSCODE_MAX_RUNGS];
    unsigned n;
    struct tmt_err err;
    assert_int_equal(tt_plan(&o, 1366, 767, (AVRational){1, 1}, r, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].id, "720p");
    assert_int_equal(r[0].width, 1282);
    assert_int_equal(r[1].width, 854);
    assert_int_equal(r[2].width, 642);
    /* anamorphic PAL 16:9: 720x576 with 64:45 pixels */
    assert_int_equal(tt_plan(&o, 720, 576, (AVRational){64, 45}, r, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].height, 480);
    assert_int_equal(r[0].width, 854);
    /* below the lowest rung: one rung at its own (even) height */
    assert_int_equal(tt_plan(&o, 321, 241, (AVRational){0, 1}, r, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].height, 240);
    assert_int_equal(r[0].width, 320);
    assert_string_equal(r[0].id, "240p");
    assert_int_equal(r[0].bitrate, 266667);
    assert_string_equal(r[0].preset, "veryfast");
    assert_int_equal(tt_plan(&o, 8, 8, (AVRational){1, 1}, r, &n, &err), TMT_EINVAL);
    assert_int_equal(tt_plan(&o, 20000, 360, (AVRational){1, 1}, r, &n, &err), TMT_EINVAL);
}

/* ---- jobs ------------------------------------------------------------------------------- */

struct progress_log {
    unsigned calls, done_calls;
    double last_percent;
    bool went_back;
    uint64_t frames;
};

static void log_progress(const struct tmt_transcode_progress *p, void *arg)
{
    struct progress_log *l = arg;
    l->calls++;
    l->done_calls += p->done;
    if (p->percent < l->last_percent)
        l->went_back = true;
    l->last_percent = p->percent;
    l->frames = p->frames;
}

/* The one 1080p job: every default rung, 1 s segments. */
static void test_full_ladder_1080p(void **state)
{
    (void)state;
    const char *src = make_source("1080.mp4", AV_SRC("1920x1080", "25", "2"));
    struct tmt_transcode_opts o;
    opts_for(&o, src, "full");
    o.segment_ms = 1000;
    struct progress_log pl = {0};
    o.progress = log_progress;
    o.progress_arg = &pl;
    struct tmt_transcode_result res;
    struct tmt_err err;
    int rc = tmt_transcode_run(&o, &res, &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.n_rungs, 4);
    assert_int_equal(res.rate_num, 25);
    assert_int_equal(res.rate_den, 1);
    assert_int_equal(res.frames_per_segment, 25);
    assert_true(res.audio);
    static const unsigned W[] = {1920, 1280, 854, 640}, H[] = {1080, 720, 480, 360};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(res.rungs[i].width, W[i]);
        assert_int_equal(res.rungs[i].height, H[i]);
        assert_int_equal(check_rung("full", res.rungs[i].id, W[i], H[i], 25, 1, true), 50);
    }
    check_packager("full", 4, true, 1);
    /* progress: ends with one done call at 100 %, never goes back */
    assert_int_equal(pl.done_calls, 1);
    assert_true(pl.last_percent == 100);
    assert_false(pl.went_back);
    assert_int_equal(pl.frames, 50);
    assert_int_equal(root_entries(), 1); /* the asset and nothing else */
}

/* 29.97 fps becomes 30 fps with 120 frames per 4 s segment. */
static void test_ntsc_rate(void **state)
{
    (void)state;
    const char *src = make_source("ntsc.mp4", AV_SRC("854x480", "30000/1001", "9"));
    struct tmt_transcode_opts o;
    opts_for(&o, src, "ntsc");
    struct tmt_transcode_result res;
    struct tmt_err err;
    if (tmt_transcode_run(&o, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.n_rungs, 2);
    assert_int_equal(res.rate_num, 30);
    assert_int_equal(res.frames_per_segment, 120);
    unsigned f = check_rung("ntsc", "480p", 854, 480, 30, 4, true);
    assert_in_range(f, 269, 271);
    assert_int_equal(check_rung("ntsc", "360p", 640, 360, 30, 4, true), f);
    check_packager("ntsc", 2, true, 4);
    const char *json = capture("cat %s/ntsc/asset.json", g_root);
    assert_non_null(strstr(json, "\"frame_rate\": 30}"));
    assert_non_null(strstr(json, "\"codecs\": \"avc1.")); /* accepted by the packager above */
}

static void test_odd_size(void **state)
{
    (void)state;
    /* x264 needs even sizes in 4:2:0: the source is 4:4:4 */
    const char *src = make_source("odd.mkv", "-f lavfi -i testsrc2=size=1366x768:rate=10 -f lavfi "
                                             "-i sine -t 3 -vf crop=1366:767:0:0:exact=1,"
                                             "format=yuv444p -c:v libx264 -preset ultrafast");
    assert_non_null(strstr(capture("ffprobe -v error -show_entries stream=width,height -of "
                                   "csv=p=0 %s",
                                   src),
                           "1366,767"));
    struct tmt_transcode_opts o;
    opts_for(&o, src, "odd");
    assert_int_equal(tmt_transcode_ladder_parse(&o, "720:1M,480:600k,360:300k", NULL), 0);
    o.segment_ms = 1000;
    struct tmt_transcode_result res;
    struct tmt_err err;
    if (tmt_transcode_run(&o, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.n_rungs, 3);
    check_rung("odd", "720p", 1282, 720, 10, 1, true);
    check_rung("odd", "480p", 854, 480, 10, 1, true);
    check_rung("odd", "360p", 642, 360, 10, 1, true);
    check_packager("odd", 3, true, 1);
}

/* Frames 1 s, 0.1 s, 0.5 s... apart: the output is constant 25 fps, keyframes on boundaries. */
static void test_variable_frame_rate(void **state)
{
    (void)state;
    const char *src = make_source(
        "vfr.mkv", "-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine -t 6 -vf "
                   "\"select='lt(mod(n\\,25)\\,8)+eq(mod(n\\,7)\\,0)'\" -fps_mode vfr "
                   "-c:v libx264 -preset ultrafast -c:a aac");
    /* the source really has gaps: frames 40 ms apart, then 280 ms */
    const char *ts = capture("ffprobe -v error -select_streams v:0 -show_entries packet=pts_time "
                             "-of csv=p=0 %s | head -12",
                             src);
    double prev = -1, min_gap = 1, max_gap = 0;
    for (const char *p = ts; *p != '\0'; p = strchr(p, '\n') + 1) {
        double t = atof(p);
        if (prev >= 0) {
            min_gap = fmin(min_gap, t - prev);
            max_gap = fmax(max_gap, t - prev);
        }
        prev = t;
        if (strchr(p, '\n') == NULL)
            break;
    }
    assert_true(min_gap < 0.05);
    assert_true(max_gap > 0.2);
    struct tmt_transcode_opts o;
    opts_for(&o, src, "vfr");
    o.segment_ms = 2000;
    struct tmt_transcode_result res;
    struct tmt_err err;
    if (tmt_transcode_run(&o, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.n_rungs, 1);
    assert_int_equal(res.rungs[0].height, 240);
    unsigned rate = res.rate_num / res.rate_den;
    assert_true(rate >= 1);
    check_rung("vfr", "240p", 320, 240, (double)res.rate_num / res.rate_den, 2, true);
    check_packager("vfr", 1, true, 2);
}

/* Shorter than one segment: one segment, still a valid asset. */
static void test_short_source(void **state)
{
    (void)state;
    const char *src = make_source("short.mp4", AV_SRC("640x360", "25", "1.5"));
    struct tmt_transcode_opts o;
    opts_for(&o, src, "short");
    struct tmt_transcode_result res;
    struct tmt_err err;
    if (tmt_transcode_run(&o, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(check_rung("short", "360p", 640, 360, 25, 4, true), 38);
    check_packager("short", 1, true, 4);
}

static void test_video_only(void **state)
{
    (void)state;
    const char *src = make_source("vonly.mp4", "-f lavfi -i testsrc2=size=640x360:rate=25 -t 5 "
                                               "-c:v libx264 -preset ultrafast");
    struct tmt_transcode_opts o;
    opts_for(&o, src, "vonly");
    struct tmt_transcode_result res;
    struct tmt_err err;
    if (tmt_transcode_run(&o, &res, &err) != 0)
        fail_msg("%s", err.msg);
    assert_false(res.audio);
    check_rung("vonly", "360p", 640, 360, 25, 4, false);
    check_packager("vonly", 1, false, 4);
    assert_null(strstr(capture("cat %s/vonly/asset.json", g_root), "audio"));
}

/* Runs a job expected to fail; checks the code, a piece of the message and an empty root. */
static void expect_failure(const char *src, const char *asset, int code, const char *msg_part)
{
    struct tmt_transcode_opts o;
    opts_for(&o, src, asset);
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_transcode_run(&o, NULL, &err);
    if (rc != code || strstr(err.msg, msg_part) == NULL)
        fail_msg("%s: got %d \"%s\", expected %d \"...%s...\"", src, rc, err.msg, code, msg_part);
    assert_int_equal(root_entries(), 0);
}

static void test_bad_sources(void **state)
{
    (void)state;
    char path[600];
    /* audio only: refused */
    const char *aonly = make_source("aonly.m4a", "-f lavfi -i sine -t 3 -c:a aac");
    expect_failure(aonly, "x", TMT_EINVAL, "no video stream");
    /* not media */
    snprintf(path, sizeof(path), "%s/notes.txt", g_tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fprintf(f, "this is a text file, line %d\n", i);
    fclose(f);
    expect_failure(path, "x", TMT_EINVAL, "not a media file");
    snprintf(path, sizeof(path), "%s/notes.mp4", g_tmp);
    assert_int_equal(run("cp %s/notes.txt %s", g_tmp, path), 0);
    expect_failure(path, "x", TMT_EINVAL, "not a media file");
    snprintf(path, sizeof(path), "%s/zeros.mkv", g_tmp);
    assert_int_equal(run("head -c 100000 /dev/zero > %s", path), 0);
    expect_failure(path, "x", TMT_EINVAL, "not a media file");
    /* missing */
    snprintf(path, sizeof(path), "%s/nothing-here.mp4", g_tmp);
    expect_failure(path, "x", TMT_ENOTFOUND, "nothing-here.mp4");
    /* truncated, moov at the end: cannot be opened */
    const char *whole = make_source("whole.mp4", AV_SRC("320x240", "25", "6"));
    snprintf(path, sizeof(path), "%s/cut-end.mp4", g_tmp);
    assert_int_equal(run("head -c 60000 %s > %s", whole, path), 0);
    expect_failure(path, "x", TMT_EINVAL, "cut-end.mp4");
    /* truncated, moov in front: data ends early */
    const char *fs = make_source("fs.mp4", AV_SRC("320x240", "25", "6") " -movflags +faststart");
    snprintf(path, sizeof(path), "%s/cut-fs.mp4", g_tmp);
    struct stat st;
    assert_int_equal(stat(fs, &st), 0);
    assert_int_equal(run("head -c %lld %s > %s", (long long)st.st_size / 2, fs, path), 0);
    expect_failure(path, "x", TMT_ECORRUPT, "truncated");
    /* bad options */
    const char *ok = make_source("ok.mp4", AV_SRC("320x240", "25", "2"));
    expect_failure(ok, "bad/id", TMT_EINVAL, "asset id");
    struct tmt_transcode_opts o;
    opts_for(&o, ok, "x");
    o.root = "/nonexistent-root-for-test";
    struct tmt_err err;
    assert_int_equal(tmt_transcode_run(&o, NULL, &err), TMT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent-root-for-test"));
}

static void test_existing_asset(void **state)
{
    (void)state;
    const char *ok = make_source("ok.mp4", AV_SRC("320x240", "25", "2"));
    char path[600];
    snprintf(path, sizeof(path), "%s/taken", g_root);
    assert_int_equal(mkdir(path, 0755), 0);
    struct tmt_transcode_opts o;
    opts_for(&o, ok, "taken");
    struct tmt_err err;
    assert_int_equal(tmt_transcode_run(&o, NULL, &err), TMT_EEXIST);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(root_entries(), 1);
    assert_int_equal(rmdir(path), 0); /* still the empty folder made above */
}

struct canceller {
    atomic_bool cancel;
    atomic_uint calls;
};

static void count_progress(const struct tmt_transcode_progress *p, void *arg)
{
    (void)p;
    struct canceller *c = arg;
    atomic_fetch_add(&c->calls, 1);
}

static void *cancel_thread(void *arg)
{
    struct canceller *c = arg;
    while (atomic_load(&c->calls) == 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&c->cancel, true);
    return NULL;
}

/* Cancelled from another thread mid-job: TMT_EAGAIN and no trace. Pre-set: stops at once. */
static void test_cancel(void **state)
{
    (void)state;
    const char *src = make_source("long.mp4", AV_SRC("640x360", "25", "30"));
    struct canceller c;
    atomic_init(&c.cancel, false);
    atomic_init(&c.calls, 0);
    struct tmt_transcode_opts o;
    opts_for(&o, src, "cancelled");
    snprintf(o.preset, sizeof(o.preset), "medium"); /* slow enough to be caught midway */
    o.cancel = &c.cancel;
    o.progress = count_progress;
    o.progress_arg = &c;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
    struct tmt_err err;
    int rc = tmt_transcode_run(&o, NULL, &err);
    pthread_join(t, NULL);
    assert_int_equal(rc, TMT_EAGAIN);
    assert_string_equal(err.msg, "cancelled");
    assert_int_equal(root_entries(), 0);
    atomic_store(&c.cancel, true);
    assert_int_equal(tmt_transcode_run(&o, NULL, &err), TMT_EAGAIN);
    assert_int_equal(root_entries(), 0);
}

/* A full disk: file size limit in a child; the write error names the file, nothing is left. */
static void test_full_disk(void **state)
{
    (void)state;
    const char *src = make_source("ok9.mp4", AV_SRC("640x360", "25", "9"));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {200 * 1024, 200 * 1024};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        struct tmt_transcode_opts o;
        opts_for(&o, src, "full-disk");
        struct tmt_err err;
        int rc = tmt_transcode_run(&o, NULL, &err);
        fprintf(stderr, "full disk: %d %s\n", rc, err.msg);
        _exit(rc == TMT_EIO && err.sys_errno == EFBIG && strstr(err.msg, "360p.mp4") != NULL ? 0
                                                                                             : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(root_entries(), 0);
}

struct par_job {
    struct tmt_transcode_opts o;
    int rc;
    struct tmt_err err;
};

static void *par_main(void *arg)
{
    struct par_job *j = arg;
    j->rc = tmt_transcode_run(&j->o, NULL, &j->err);
    return NULL;
}

/* Two jobs at once in two threads (reentrancy), the same source, different assets. */
static void test_parallel_jobs(void **state)
{
    (void)state;
    const char *src = make_source("ok.mp4", AV_SRC("320x240", "25", "2"));
    struct par_job j[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        opts_for(&j[i].o, src, i == 0 ? "p0" : "p1");
        j[i].o.segment_ms = 1000;
        assert_int_equal(pthread_create(&t[i], NULL, par_main, &j[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (j[i].rc != 0)
            fail_msg("job %d: %s", i, j[i].err.msg);
    }
    check_rung("p0", "240p", 320, 240, 25, 1, true);
    check_rung("p1", "240p", 320, 240, 25, 1, true);
    assert_int_equal(root_entries(), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ladder_parse),
        cmocka_unit_test(test_out_rate),
        cmocka_unit_test(test_plan_sizes),
        cmocka_unit_test_teardown(test_full_ladder_1080p, after_each),
        cmocka_unit_test_teardown(test_ntsc_rate, after_each),
        cmocka_unit_test_teardown(test_odd_size, after_each),
        cmocka_unit_test_teardown(test_variable_frame_rate, after_each),
        cmocka_unit_test_teardown(test_short_source, after_each),
        cmocka_unit_test_teardown(test_video_only, after_each),
        cmocka_unit_test_teardown(test_bad_sources, after_each),
        cmocka_unit_test_teardown(test_existing_asset, after_each),
        cmocka_unit_test_teardown(test_cancel, after_each),
        cmocka_unit_test_teardown(test_full_disk, after_each),
        cmocka_unit_test_teardown(test_parallel_jobs, after_each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
