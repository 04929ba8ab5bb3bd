/*
 * Unit tests of the packager (tmt/pack.h) on real media: the group setup makes an asset with the
 * ffmpeg CLI in a temporary folder (three H.264 renditions with a keyframe every 2 s and B-frames,
 * AAC audio, 9 s, so with 4 s segments the last one is short), writes its asset.json and indexes
 * it. The tests then check the segmentation against ffprobe's view of the files, the index blob
 * (round trip, corruption), the manifests, the CMAF output as ffmpeg and ffprobe read it (whole
 * renditions, and single segments as a player seeking into the middle or to the end would fetch
 * them), asset.json validation and damaged or missing mezzanines.
 */
#include "tmt/pack.h"

#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pack_int.h"

#define ASSET "a1"
#define FPS 25
#define SECONDS 9
#define SEG_S 4

static char g_root[256];
static char g_dir[300];
static struct tmt_pack_index *g_ix;

static const struct {
    const char *id;
    int w, h;
} RUNGS[] = {{"r180", 320, 180}, {"r144", 256, 144}, {"r90", 160, 90}};

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

/* Runs a command and returns its whole output (stdout and stderr) in a static buffer. */
static const char *capture(const char *fmt, ...) TMT_PRINTF(1, 2);
static const char *capture(const char *fmt, ...)
{
    static char out[65536];
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_asset_json(const char *dir, const char *body)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/asset.json", dir);
    write_file(path, body, strlen(body));
}

static const char *GOOD_JSON =
    "{\"version\": 1, \"segment_duration\": 4, \"renditions\": [\n"
    " {\"id\": \"r180\", \"type\": \"video\", \"file\": \"r180.mp4\", \"width\": 320,"
    "  \"height\": 180, \"bitrate\": 300000, \"frame_rate\": 25},\n"
    " {\"id\": \"r144\", \"type\": \"video\", \"file\": \"r144.mp4\", \"width\": 256,"
    "  \"height\": 144, \"bitrate\": 200000, \"frame_rate\": 25},\n"
    " {\"id\": \"r90\", \"type\": \"video\", \"file\": \"r90.mp4\", \"width\": 160,"
    "  \"height\": 90, \"bitrate\": 100000, \"frame_rate\": \"25/1\"},\n"
    " {\"id\": \"audio\", \"type\": \"audio\", \"file\": \"r180.mp4\", \"bitrate\": 64000,"
    "  \"sample_rate\": 48000, \"channels\": 2, \"language\": \"en\", \"codecs\": \"mp4a.40.2\"}\n"
    "]}\n";

static int setup(void **state)
{
    (void)state;
    tmt_pack_libav_log_init();
    snprintf(g_root, sizeof(g_root), "/tmp/tmt-pack-XXXXXX");
    if (mkdtemp(g_root) == NULL)
        return -1;
    snprintf(g_dir, sizeof(g_dir), "%s/%s", g_root, ASSET);
    if (mkdir(g_dir, 0755) != 0)
        return -1;
    for (size_t i = 0; i < TMT_ARRAY_LEN(RUNGS); i++) {
        /* a keyframe exactly every 2 s, B-frames, AAC in every file (as the transcoder does) */
        int rc = run("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=%dx%d:rate=%d "
                     "-f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t %d "
                     "-c:v libx264 -preset veryfast -pix_fmt yuv420p -bf 2 "
                     "-x264-params keyint=%d:min-keyint=%d:scenecut=0 -c:a aac -b:a 64k "
                     "-movflags +faststart %s/%s.mp4",
                     RUNGS[i].w, RUNGS[i].h, FPS, SECONDS, 2 * FPS, 2 * FPS, g_dir, RUNGS[i].id);
        if (rc != 0)
            return -1;
    }
    write_asset_json(g_dir, GOOD_JSON);
    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_asset *a = tmt_pack_asset_load(g_root, ASSET, &err);
    if (a == NULL) {
        fprintf(stderr, "asset: %s\n", err.msg);
        return -1;
    }
    g_ix = tmt_pack_index_build(a, g_root, &err);
    tmt_pack_asset_free(&a);
    if (g_ix == NULL) {
        fprintf(stderr, "index: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmt_pack_index_free(&g_ix);
    if (g_root[0] != '\0')
        run("rm -rf %s", g_root);
    return 0;
}

static const struct pack_track *track(const char *id)
{
    int r = tmt_pack_index_find(g_ix, id);
    assert_true(r >= 0);
    return &g_ix->t[r];
}

/* ffprobe's duration of one stream of a file, in seconds. */
static double probe_duration(const char *file, const char *sel)
{
    const char *o = capture("ffprobe -v error -select_streams %s -show_entries stream=duration "
                            "-of csv=p=0 %s",
                            sel, file);
    return atof(o);
}

/* ---- index ---- */

static void test_segments_on_keyframes(void **state)
{
    (void)state;
    assert_int_equal(tmt_pack_index_renditions(g_ix), 4);
    assert_string_equal(tmt_pack_index_asset_id(g_ix), ASSET);
    assert_int_equal(tmt_pack_index_find(g_ix, "nope"), -1);
    bool bframes = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(RUNGS); i++) {
        const struct pack_track *t = track(RUNGS[i].id);
        assert_int_equal(t->nsamples, FPS * SECONDS);
        /* 9 s cut at 4 s: 4, 4, 1 */
        assert_int_equal(t->nsegs, 3);
        uint64_t sum = 0;
        for (uint32_t k = 0; k < t->nsegs; k++) {
            const struct pack_segment *g = &t->segs[k];
            assert_true(t->samples[g->first].flags & PACK_SAMPLE_KEY);
            /* a segment starts at its keyframe's presentation time */
            assert_int_equal(g->start, t->samples[g->first].dts + t->samples[g->first].cto);
            assert_int_equal(g->start, (int64_t)k * SEG_S * t->timescale);
            sum += g->dur;
        }
        for (uint32_t s = 0; s < t->nsamples; s++)
            bframes |= t->samples[s].cto != t->samples[0].cto;
        char file[512];
        snprintf(file, sizeof(file), "%s/%s.mp4", g_dir, RUNGS[i].id);
        double want = probe_duration(file, "v:0");
        double got = (double)sum / t->timescale;
        assert_true(fabs(got - want) <= 1.0 / FPS);
        assert_true(fabs(got - SECONDS) <= 1.0 / FPS);
        struct tmt_pack_rendition_info info;
        tmt_pack_index_info(g_ix, (unsigned)tmt_pack_index_find(g_ix, RUNGS[i].id), &info);
        assert_int_equal(info.duration_ts, sum);
        assert_int_equal(info.width, RUNGS[i].w);
        assert_true(strncmp(info.codecs, "avc1.64", 7) == 0 && strlen(info.codecs) == 11);
        assert_true(info.peak_bandwidth >= info.avg_bandwidth && info.avg_bandwidth > 0);
    }
    assert_true(bframes); /* the test media exercises composition offsets */
}

/* The index against ffprobe's packets, which ffprobe reads with their data: every sample's
 * offset, size, decode and presentation time and keyframe flag. */
static void test_index_matches_ffprobe(void **state)
{
    (void)state;
    static const struct {
        const char *id, *sel;
    } cases[] = {{"r144", "v:0"}, {"audio", "a:0"}};
    for (size_t c = 0; c < TMT_ARRAY_LEN(cases); c++) {
        const struct pack_track *t = track(cases[c].id);
        char file[512];
        snprintf(file, sizeof(file), "%s/%s", g_dir, t->d.file);
        const char *o = capture("ffprobe -v error -select_streams %s -show_entries "
                                "packet=pts,dts,size,pos,flags -of csv=p=0 %s",
                                cases[c].sel, file);
        uint32_t i = 0;
        for (const char *line = o; *line != '\0' && i < t->nsamples; i++) {
            while (*line == '\n') /* the priming packet's side data makes an empty line */
                line++;
            long long pts, dts, pos;
            unsigned size;
            char flags[8];
            assert_int_equal(
                sscanf(line, "%lld,%lld,%u,%lld,%7[^,\n]", &pts, &dts, &size, &pos, flags), 5);
            const struct pack_sample *s = &t->samples[i];
            if (s->dts != dts || s->dts + s->cto != pts)
                fprintf(stderr, "%s sample %u: ffprobe \"%.40s\", index dts %lld pts %lld\n",
                        cases[c].id, i, line, (long long)s->dts, (long long)(s->dts + s->cto));
            assert_int_equal(s->dts, dts);
            assert_int_equal(s->dts + s->cto, pts);
            assert_int_equal(s->size, size);
            assert_int_equal(s->pos, pos);
            assert_int_equal((s->flags & PACK_SAMPLE_KEY) != 0, flags[0] == 'K');
            line = strchr(line, '\n');
            assert_non_null(line);
            line++;
        }
        assert_int_equal(i, t->nsamples);
    }
}

/* A reader over a memory copy that counts what it serves and can fail from a given offset. */
struct counting {
    const uint8_t *p;
    uint64_t bytes, fail_from;
};

static int counting_read(const struct tmt_pack_io *io, uint64_t off, void *dst, size_t len,
                         int *sys_errno)
{
    struct counting *c = io->arg;
    if (off + len > c->fail_from) {
        *sys_errno = 5; /* EIO */
        return TMT_EIO;
    }
    memcpy(dst, c->p + off, len);
    c->bytes += len;
    return 0;
}

/* Indexing reads the moov, not the media data; a read error is an error naming the file. */
static void test_index_reads_little(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/r180.mp4", g_dir);
    size_t len;
    uint8_t *file = read_file(path, &len);
    struct tmt_err err;
    const char *json = "{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\","
                       "\"type\":\"video\",\"file\":\"r180.mp4\",\"width\":320,\"height\":180,"
                       "\"bitrate\":300000,\"frame_rate\":25},{\"id\":\"a\",\"type\":\"audio\","
                       "\"file\":\"r180.mp4\",\"bitrate\":64000}]}";
    struct tmt_pack_asset *a = tmt_pack_asset_parse(json, strlen(json), "c1", NULL, &err);
    assert_non_null(a);
    struct counting c = {file, 0, UINT64_MAX};
    struct tmt_pack_io ios[2] = {{.read = counting_read, .arg = &c, .size = len, .name = "c.mp4"}};
    ios[1] = ios[0];
    struct tmt_pack_index *ix = pack_index_build_io(a, ios, true, &err);
    assert_non_null(ix);
    printf("pack: indexing read %llu of %zu bytes\n", (unsigned long long)c.bytes, len);
    assert_true(c.bytes < len / 3);
    tmt_pack_index_free(&ix);
    /* the storage fails inside the moov */
    c.fail_from = 2000;
    tmt_err_clear(&err);
    assert_null(pack_index_build_io(a, ios, true, &err));
    assert_int_equal(err.code, TMT_EIO);
    assert_non_null(strstr(err.msg, "c.mp4: read failed"));
    tmt_pack_asset_free(&a);
    /* and while cutting a segment */
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    c.fail_from = (uint64_t)len / 2;
    ios[0].size = len;
    tmt_err_clear(&err);
    assert_int_equal(tmt_pack_media_segment(g_ix, 0, 3, &ios[0], &b, &err), TMT_EIO);
    assert_non_null(strstr(err.msg, "c.mp4: read of "));
    assert_int_equal(err.sys_errno, 5);
    assert_int_equal(b.len, 0);
    tmt_pack_buf_fini(&b);
    free(file);
}

static void test_audio_aligned(void **state)
{
    (void)state;
    const struct pack_track *a = track("audio"), *v = track("r180");
    assert_int_equal(a->nsegs, v->nsegs);
    assert_int_equal(a->timescale, 48000);
    assert_int_equal(a->elst_skip, 1024); /* the AAC priming, hidden by the edit list */
    uint64_t sum = 0;
    for (uint32_t k = 0; k < a->nsegs; k++) {
        double as = (double)a->segs[k].start / a->timescale;
        double vs = (double)v->segs[k].start / v->timescale;
        /* within half an AAC frame of the video boundary */
        assert_true(fabs(as - vs) <= 512.0 / 48000 + 1e-9);
        sum += a->segs[k].dur;
    }
    char file[512];
    snprintf(file, sizeof(file), "%s/r180.mp4", g_dir);
    double want = probe_duration(file, "a:0");
    assert_true(fabs((double)sum / a->timescale - want) <= 1024.0 / 48000);
    assert_string_equal(a->d.codecs, "mp4a.40.2");
    assert_int_equal(a->d.channels, 2);
}

/* ---- index blob ---- */

static void test_blob_round_trip(void **state)
{
    (void)state;
    struct tmt_pack_buf b1, b2, m1, m2;
    tmt_pack_buf_init(&b1);
    tmt_pack_buf_init(&b2);
    tmt_pack_buf_init(&m1);
    tmt_pack_buf_init(&m2);
    assert_int_equal(tmt_pack_index_save(g_ix, &b1), 0);
    /* compact: well under 32 bytes per sample */
    uint32_t samples = 0;
    for (unsigned r = 0; r < g_ix->n; r++)
        samples += g_ix->t[r].nsamples;
    assert_true(b1.len < (size_t)samples * 12 + 4096);
    struct tmt_err err;
    struct tmt_pack_index *ix = tmt_pack_index_load(b1.p, b1.len, &err);
    assert_non_null(ix);
    assert_int_equal(tmt_pack_index_save(ix, &b2), 0);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.p, b2.p, b1.len);
    for (unsigned r = 0; r < g_ix->n; r++) {
        const struct pack_track *x = &g_ix->t[r], *y = &ix->t[r];
        assert_int_equal(x->nsamples, y->nsamples);
        assert_memory_equal(x->samples, y->samples, sizeof(*x->samples) * x->nsamples);
        assert_int_equal(x->nsegs, y->nsegs);
        assert_memory_equal(x->segs, y->segs, sizeof(*x->segs) * x->nsegs);
    }
    assert_int_equal(tmt_pack_dash_mpd(g_ix, &m1), 0);
    assert_int_equal(tmt_pack_dash_mpd(ix, &m2), 0);
    assert_int_equal(m1.len, m2.len);
    assert_memory_equal(m1.p, m2.p, m1.len);
    tmt_pack_index_free(&ix);
    assert_null(ix);
    tmt_pack_buf_fini(&b1);
    tmt_pack_buf_fini(&b2);
    tmt_pack_buf_fini(&m1);
    tmt_pack_buf_fini(&m2);
}

static void test_blob_corruption(void **state)
{
    (void)state;
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    assert_int_equal(tmt_pack_index_save(g_ix, &b), 0);
    struct tmt_err err;
    /* every truncation */
    for (size_t n = 0; n < b.len; n += n < 64 ? 1 : 97) {
        tmt_err_clear(&err);
        assert_null(tmt_pack_index_load(b.p, n, &err));
        assert_int_equal(err.code, TMT_ECORRUPT);
    }
    /* flipped bits everywhere: the checksum or the header catches each */
    for (size_t i = 0; i < b.len; i += i < 64 ? 1 : 31) {
        b.p[i] ^= 0x10;
        tmt_err_clear(&err);
        assert_null(tmt_pack_index_load(b.p, b.len, &err));
        assert_int_equal(err.code, TMT_ECORRUPT);
        b.p[i] ^= 0x10;
    }
    assert_null(tmt_pack_index_load(NULL, 0, &err));
    struct tmt_pack_index *ok = tmt_pack_index_load(b.p, b.len, &err);
    assert_non_null(ok);
    tmt_pack_index_free(&ok);
    tmt_pack_buf_fini(&b);
}

/* A blob whose checksum is right but whose content is not: the loader validates anyway. */
static void test_blob_bad_content(void **state)
{
    (void)state;
    struct tmt_pack_index *ix = tmt_pack_index_load(NULL, 0, NULL);
    assert_null(ix);
    /* rebuild a copy with one impossible fact at a time, re-saved so the checksum matches */
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    assert_int_equal(tmt_pack_index_save(g_ix, &b), 0);
    struct tmt_err err;
    struct tmt_pack_index *copy = tmt_pack_index_load(b.p, b.len, &err);
    assert_non_null(copy);
    struct pack_track *v = &copy->t[0];
    uint32_t first = v->segs[1].first;
    for (int c = 0; c < 4; c++) {
        struct pack_sample saved = v->samples[first];
        if (c == 0)
            v->samples[first].flags = 0; /* segment 2 would not start on a keyframe */
        else if (c == 1)
            v->segs[1].first = first + 1;
        else if (c == 2)
            v->samples[first].cto = INT32_MIN + 5;
        else
            v->samples[first].flags = 0x80;
        tmt_pack_buf_fini(&b);
        tmt_pack_buf_init(&b);
        assert_int_equal(tmt_pack_index_save(copy, &b), 0);
        tmt_err_clear(&err);
        assert_null(tmt_pack_index_load(b.p, b.len, &err));
        assert_int_equal(err.code, TMT_ECORRUPT);
        v->samples[first] = saved;
        v->segs[1].first = first;
    }
    tmt_pack_index_free(&copy);
    tmt_pack_buf_fini(&b);
}

/* ---- manifests ---- */

static unsigned count(const char *s, const char *needle)
{
    unsigned n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static char *text(struct tmt_pack_buf *b)
{
    assert_int_equal(tmt_pack_buf_reserve(b, 1), 0);
    b->p[b->len] = '\0';
    return (char *)b->p;
}

static void test_hls(void **state)
{
    (void)state;
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    assert_int_equal(tmt_pack_hls_master(g_ix, &b), 0);
    const char *m = text(&b);
    assert_true(strncmp(m, "#EXTM3U\n#EXT-X-VERSION:7\n", 25) == 0);
    assert_int_equal(count(m, "#EXT-X-STREAM-INF:"), 3);
    assert_int_equal(count(m, "AVERAGE-BANDWIDTH="), 3);
    assert_int_equal(count(m, ",mp4a.40.2\",FRAME-RATE=25.000,AUDIO=\"audio\""), 3);
    assert_non_null(strstr(m, "RESOLUTION=320x180,CODECS=\"avc1.64"));
    assert_non_null(strstr(m, "RESOLUTION=160x90,"));
    assert_non_null(strstr(m, "\nr144/index.m3u8\n"));
    assert_non_null(strstr(m, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\","
                              "LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
                              "URI=\"audio/index.m3u8\"\n"));
    assert_null(strstr(m, "/v/")); /* relative URIs only */
    /* BANDWIDTH is the peak, video plus audio */
    struct tmt_pack_rendition_info vi, ai;
    tmt_pack_index_info(g_ix, 0, &vi);
    tmt_pack_index_info(g_ix, 3, &ai);
    char want[128];
    snprintf(want, sizeof(want), "BANDWIDTH=%llu,AVERAGE-BANDWIDTH=%llu,",
             (unsigned long long)(vi.peak_bandwidth + ai.peak_bandwidth),
             (unsigned long long)(vi.avg_bandwidth + ai.avg_bandwidth));
    assert_non_null(strstr(m, want));

    b.len = 0;
    assert_int_equal(tmt_pack_hls_media(g_ix, 0, &b), 0);
    m = text(&b);
    assert_non_null(strstr(m, "#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"
                              "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                              "#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4,\n1.m4s\n#EXTINF:4,\n2.m4s\n"
                              "#EXTINF:1,\n3.m4s\n#EXT-X-ENDLIST\n"));
    b.len = 0;
    assert_int_equal(tmt_pack_hls_media(g_ix, 3, &b), 0);
    m = text(&b);
    /* audio durations are exact: they add up to the audio's length, not 9 */
    double sum = 0;
    for (const char *p = m; (p = strstr(p, "#EXTINF:")) != NULL; p++)
        sum += atof(p + 8);
    const struct pack_track *a = track("audio");
    double want_a = (double)(a->segs[2].start + (int64_t)a->segs[2].dur) / a->timescale;
    assert_true(fabs(sum - want_a) < 3e-6);
    assert_null(strstr(m, "#EXTINF:4,")); /* 4 s is not a whole number of AAC frames */
    assert_int_equal(tmt_pack_hls_media(g_ix, 9, &b), TMT_ENOTFOUND);
    tmt_pack_buf_fini(&b);
}

static void test_dash(void **state)
{
    (void)state;
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    assert_int_equal(tmt_pack_dash_mpd(g_ix, &b), 0);
    const char *m = text(&b);
    assert_non_null(strstr(m, "type=\"static\" mediaPresentationDuration=\"PT9"));
    assert_int_equal(count(m, "<AdaptationSet "), 2);
    assert_int_equal(count(m, "contentType=\"video\""), 1);
    assert_int_equal(count(m, "<Representation "), 4);
    assert_int_equal(count(m, "startNumber=\"1\""), 4);
    assert_int_equal(count(m, "media=\"$RepresentationID$/$Number$.m4s\""), 4);
    assert_int_equal(count(m, "initialization=\"$RepresentationID$/init.mp4\""), 4);
    assert_non_null(strstr(m, "<S t=\"0\" d=\"51200\" r=\"1\"/>\n            <S d=\"12800\"/>"));
    assert_non_null(strstr(m, "id=\"r90\" bandwidth=\""));
    assert_non_null(strstr(m, "codecs=\"mp4a.40.2\" audioSamplingRate=\"48000\""));
    assert_non_null(strstr(m, "lang=\"en\""));
    char mpd[512];
    snprintf(mpd, sizeof(mpd), "%s/test.mpd", g_root);
    write_file(mpd, b.p, b.len);
    /* well-formed XML (Python's standard library: the test needs nothing beyond setup.sh) */
    const char *o = capture("python3 -c 'import sys, xml.dom.minidom; "
                            "xml.dom.minidom.parse(sys.argv[1])' %s",
                            mpd);
    assert_string_equal(o, "");
    tmt_pack_buf_fini(&b);
}

/* ---- CMAF, read back by ffmpeg and ffprobe ---- */

static void append_segment(const char *id, unsigned n, struct tmt_pack_buf *out)
{
    char path[512];
    int r = tmt_pack_index_find(g_ix, id);
    snprintf(path, sizeof(path), "%s/%s", g_dir, g_ix->t[r].d.file);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    struct tmt_pack_io io;
    tmt_pack_io_init_fd(&io, fd, (uint64_t)st.st_size, path);
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_pack_media_segment(g_ix, (unsigned)r, n, &io, out, &err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    close(fd);
}

static void test_ffmpeg_reads_renditions(void **state)
{
    (void)state;
    for (unsigned r = 0; r < g_ix->n; r++) {
        const struct pack_track *t = &g_ix->t[r];
        struct tmt_pack_buf b;
        tmt_pack_buf_init(&b);
        assert_int_equal(tmt_pack_init_segment(g_ix, r, &b), 0);
        for (unsigned n = 1; n <= t->nsegs; n++)
            append_segment(t->d.id, n, &b);
        char path[512];
        snprintf(path, sizeof(path), "%s/out-%s.mp4", g_root, t->d.id);
        write_file(path, b.p, b.len);
        const char *o = capture("ffmpeg -nostdin -v error -i %s -c copy -f null -", path);
        assert_string_equal(o, "");
        o = capture("ffmpeg -nostdin -v error -i %s -f null -", path); /* decode as well */
        assert_string_equal(o, "");
        double d = probe_duration(path, t->d.kind == TMT_PACK_VIDEO ? "v:0" : "a:0");
        double want = (double)(t->segs[t->nsegs - 1].start + (int64_t)t->segs[t->nsegs - 1].dur) /
                      t->timescale;
        assert_true(fabs(d - want) <= 1.0 / FPS);
        /* the frame count survives */
        o = capture("ffprobe -v error -select_streams 0 -count_packets -show_entries "
                    "stream=nb_read_packets -of csv=p=0 %s",
                    path);
        assert_int_equal(atoi(o), (int)t->nsamples);
        tmt_pack_buf_fini(&b);
    }
}

/*
 * Init + segment n alone, as a player seeking there fetches it: the first packet must be the
 * segment's first sample at the segment's start time, and it must decode without errors.
 * The keyframe that opens a video segment has composition offset 0 and tfdt = its pts, so its
 * presentation time is the segment start. ffmpeg, reading trun version 1 with negative offsets,
 * moves every pts later by the largest negative offset it has seen (to keep pts >= dts), so the
 * pts it reports is the start plus that amount; its dts is tfdt itself.
 */
static void test_seek_timestamps(void **state)
{
    (void)state;
    for (unsigned r = 0; r < g_ix->n; r++) {
        const struct pack_track *t = &g_ix->t[r];
        for (unsigned n = 2; n <= t->nsegs; n++) {
            struct tmt_pack_buf b;
            tmt_pack_buf_init(&b);
            assert_int_equal(tmt_pack_init_segment(g_ix, r, &b), 0);
            append_segment(t->d.id, n, &b);
            char path[512];
            snprintf(path, sizeof(path), "%s/seek-%s-%u.mp4", g_root, t->d.id, n);
            write_file(path, b.p, b.len);
            const char *o = capture("ffprobe -v error -show_entries packet=pts,dts,flags -of "
                                    "csv=p=0 -read_intervals %%+#1 %s",
                                    path);
            long long pts = 0, dts = 0;
            char flags[8] = "";
            assert_int_equal(sscanf(o, "%lld,%lld,%7s", &pts, &dts, flags), 3);
            const struct pack_segment *g = &t->segs[n - 1];
            int64_t shift = 0;
            for (uint32_t i = g->first; i < g->first + g->count; i++)
                shift = TMT_MAX(shift, t->dec_shift - t->samples[i].cto);
            uint64_t start, dur;
            assert_int_equal(tmt_pack_segment_time(g_ix, r, n, &start, &dur), 0);
            assert_int_equal(flags[0], 'K');
            if (t->d.kind == TMT_PACK_VIDEO) {
                assert_int_equal(dts, (long long)start);
                assert_int_equal(pts, (long long)start + shift);
            } else {
                /* the edit list hides the priming; ffmpeg applies it */
                assert_int_equal(pts, (long long)start);
                assert_int_equal(dts, (long long)start);
            }
            o = capture("ffmpeg -nostdin -v error -i %s -f null -", path);
            assert_string_equal(o, "");
            tmt_pack_buf_fini(&b);
        }
    }
    uint64_t s, d;
    assert_int_equal(tmt_pack_segment_time(g_ix, 0, 0, &s, &d), TMT_ENOTFOUND);
    assert_int_equal(tmt_pack_segment_time(g_ix, 0, 4, &s, &d), TMT_ENOTFOUND);
}

/*
 * The whole asset as the shield serves it, laid out as files (master.m3u8, manifest.mpd,
 * {rendition}/index.m3u8, init.mp4, {n}.m4s): ffprobe lists every rendition through both
 * manifests and ffmpeg reads all of them (-map 0) to the end without a single error line.
 */
static void test_ffmpeg_reads_manifests(void **state)
{
    (void)state;
    char dir[512], path[700];
    snprintf(dir, sizeof(dir), "%s/served", g_root);
    assert_int_equal(mkdir(dir, 0755), 0);
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    assert_int_equal(tmt_pack_hls_master(g_ix, &b), 0);
    snprintf(path, sizeof(path), "%s/master.m3u8", dir);
    write_file(path, b.p, b.len);
    b.len = 0;
    assert_int_equal(tmt_pack_dash_mpd(g_ix, &b), 0);
    snprintf(path, sizeof(path), "%s/manifest.mpd", dir);
    write_file(path, b.p, b.len);
    for (unsigned r = 0; r < g_ix->n; r++) {
        const struct pack_track *t = &g_ix->t[r];
        snprintf(path, sizeof(path), "%s/%s", dir, t->d.id);
        assert_int_equal(mkdir(path, 0755), 0);
        b.len = 0;
        assert_int_equal(tmt_pack_hls_media(g_ix, r, &b), 0);
        snprintf(path, sizeof(path), "%s/%s/index.m3u8", dir, t->d.id);
        write_file(path, b.p, b.len);
        b.len = 0;
        assert_int_equal(tmt_pack_init_segment(g_ix, r, &b), 0);
        snprintf(path, sizeof(path), "%s/%s/init.mp4", dir, t->d.id);
        write_file(path, b.p, b.len);
        for (unsigned n = 1; n <= t->nsegs; n++) {
            b.len = 0;
            append_segment(t->d.id, n, &b);
            snprintf(path, sizeof(path), "%s/%s/%u.m4s", dir, t->d.id, n);
            write_file(path, b.p, b.len);
        }
    }
    tmt_pack_buf_fini(&b);
    static const char *const manifests[] = {"master.m3u8", "manifest.mpd"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(manifests); i++) {
        /* streams are listed once more under each HLS program: count distinct indexes */
        const char *o = capture("ffprobe -v error -show_entries stream=index,codec_type,width "
                                "-of csv=p=0 %s/%s | sort -u",
                                dir, manifests[i]);
        if (count(o, "video,") != 3 || count(o, "audio") != 1)
            fprintf(stderr, "%s: %s\n", manifests[i], o);
        assert_int_equal(count(o, "video,320"), 1);
        assert_int_equal(count(o, "video,256"), 1);
        assert_int_equal(count(o, "video,160"), 1);
        assert_int_equal(count(o, "audio"), 1);
        o = capture("ffmpeg -nostdin -v error -i %s/%s -map 0 -c copy -f null -", dir,
                    manifests[i]);
        if (o[0] != '\0')
            fprintf(stderr, "%s: %s\n", manifests[i], o);
        assert_string_equal(o, "");
        /* everything is read: the last packet ends at the full duration */
        o = capture("ffmpeg -nostdin -v info -i %s/%s -map 0 -c copy -f null - 2>&1 | "
                    "grep -o 'time=[0-9:.]*' | tail -n 1",
                    dir, manifests[i]);
        int hh = 0, mm = 0;
        double ss = 0;
        assert_int_equal(sscanf(o, "time=%d:%d:%lf", &hh, &mm, &ss), 3);
        double secs = hh * 3600 + mm * 60 + ss;
        if (fabs(secs - SECONDS) > 0.1)
            fprintf(stderr, "%s: read %f s\n", manifests[i], secs);
        assert_true(fabs(secs - SECONDS) <= 0.1);
    }
}

/* The boxes of a media segment, read back by hand. */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_segment_layout(void **state)
{
    (void)state;
    const struct pack_track *t = track("r180");
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    b.len = 0;
    append_segment("r180", 2, &b);
    const uint8_t *p = b.p;
    assert_memory_equal(p + 4, "styp", 4);
    const uint8_t *moof = p + be32(p);
    assert_memory_equal(moof + 4, "moof", 4);
    assert_memory_equal(moof + 12, "mfhd", 4);
    assert_int_equal(be32(moof + 20), 2);
    const uint8_t *tfdt = moof + 8 + 16 + 8 + 16;
    assert_memory_equal(tfdt + 4, "tfdt", 4);
    uint64_t bmdt = (uint64_t)be32(tfdt + 12) << 32 | be32(tfdt + 16);
    assert_int_equal(bmdt, (uint64_t)t->segs[1].start); /* keyframe decode time = its pts */
    const uint8_t *trun = tfdt + 20;
    assert_memory_equal(trun + 4, "trun", 4);
    assert_int_equal(trun[8], 1); /* version 1: signed composition offsets */
    assert_int_equal(be32(trun + 12), t->segs[1].count);
    const uint8_t *mdat = moof + be32(moof);
    assert_memory_equal(mdat + 4, "mdat", 4);
    assert_int_equal(be32(mdat), 8 + t->segs[1].bytes);
    assert_int_equal(moof + be32(trun + 16), mdat + 8); /* data_offset */
    /* the first sample's bytes are the file's */
    char path[512];
    snprintf(path, sizeof(path), "%s/r180.mp4", g_dir);
    size_t flen;
    uint8_t *file = read_file(path, &flen);
    const struct pack_sample *s = &t->samples[t->segs[1].first];
    assert_memory_equal(mdat + 8, file + s->pos, s->size);
    assert_int_equal(b.len, (size_t)(mdat - p) + 8 + t->segs[1].bytes);
    /* a segment number out of range */
    struct tmt_err err;
    struct tmt_pack_io io;
    tmt_pack_io_init_mem(&io, file, flen, "mem");
    size_t before = b.len;
    assert_int_equal(tmt_pack_media_segment(g_ix, 0, 4, &io, &b, &err), TMT_ENOTFOUND);
    assert_int_equal(tmt_pack_media_segment(g_ix, 0, 0, &io, &b, &err), TMT_ENOTFOUND);
    /* the file shrank after indexing: an error naming it, the buffer unchanged */
    tmt_pack_io_init_mem(&io, file, flen / 2, "shrunk.mp4");
    tmt_err_clear(&err);
    assert_int_equal(tmt_pack_media_segment(g_ix, 0, 3, &io, &b, &err), TMT_ECORRUPT);
    assert_non_null(strstr(err.msg, "shrunk.mp4: truncated"));
    assert_int_equal(b.len, before);
    free(file);
    tmt_pack_buf_fini(&b);
}

/* Time to write one 4 s segment from a warm index (pread from the page cache). */
static void test_segment_speed(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/r180.mp4", g_dir);
    int fd = open(path, O_RDONLY);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    struct tmt_pack_io io;
    tmt_pack_io_init_fd(&io, fd, (uint64_t)st.st_size, path);
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    enum { N = 301 };
    static double us[N];
    uint64_t hash = 0;
    for (int i = 0; i < N; i++) {
        struct timespec t0, t1;
        b.len = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(tmt_pack_media_segment(g_ix, 0, 2, &io, &b, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        hash += b.p[b.len / 2] + b.len;
        us[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
    }
    for (int i = 1; i < N; i++) { /* insertion sort: N is small */
        double x = us[i];
        int j = i - 1;
        for (; j >= 0 && us[j] > x; j--)
            us[j + 1] = us[j];
        us[j + 1] = x;
    }
    printf("pack: 4 s segment (%zu bytes, 100 samples): median %.1f us, p90 %.1f us "
           "(hash %llu)\n",
           b.len, us[N / 2], us[N * 9 / 10], (unsigned long long)hash);
    assert_true(us[N / 2] < 20000); /* loose: sanitizer builds are slow */
    close(fd);
    tmt_pack_buf_fini(&b);
}

/* ---- asset.json ---- */

static void test_asset_json(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[]", "the top level must be an object"},
        {"{", "x.json:1:"},
        {"{\"version\":2,\"segment_duration\":4,\"renditions\":[]}", "x.json.version: must be"},
        {"{\"version\":1,\"segment_duration\":0.5,\"renditions\":[]}", "x.json.segment_duration"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[]}", "x.json.renditions: must"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[],\"x\":1}", "x.json.x: unknown"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"a b\",\"type\":"
         "\"video\",\"file\":\"a.mp4\",\"width\":320,\"height\":180,\"bitrate\":1000,"
         "\"frame_rate\":25}]}",
         "x.json: renditions[0].id: \"a b\" is not"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"video\",\"file\":\"../a.mp4\",\"width\":320,\"height\":180,\"bitrate\":1000,"
         "\"frame_rate\":25}]}",
         "renditions[0].file: \"../a.mp4\" is not a file name"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"video\",\"file\":\"a.mp4\",\"width\":3,\"height\":180,\"bitrate\":1000,"
         "\"frame_rate\":25}]}",
         "renditions[0].width: must be an integer in [16, 8192]"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"video\",\"file\":\"a.mp4\",\"width\":320,\"height\":180,\"bitrate\":1000}]}",
         "renditions[0].frame_rate: missing"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"video\",\"file\":\"a.mp4\",\"width\":320,\"height\":180,\"bitrate\":1000,"
         "\"frame_rate\":25,\"channels\":2}]}",
         "renditions[0].channels: unknown field"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"subtitles\",\"file\":\"a.mp4\"}]}",
         "renditions[0].type: must be"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"a\",\"type\":"
         "\"audio\",\"file\":\"a.mp4\",\"bitrate\":64000}]}",
         "x.json.renditions: no video rendition"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"v\",\"type\":"
         "\"video\",\"file\":\"a.mp4\",\"width\":320,\"height\":180,\"bitrate\":1000,"
         "\"frame_rate\":25},{\"id\":\"v\",\"type\":\"video\",\"file\":\"b.mp4\",\"width\":320,"
         "\"height\":180,\"bitrate\":1000,\"frame_rate\":25}]}",
         "renditions[1].id: \"v\" is used twice"},
        {"{\"version\":1,\"segment_duration\":4,\"renditions\":[{\"id\":\"a\",\"type\":"
         "\"audio\",\"file\":\"a.mp4\",\"bitrate\":64000,\"sample_rate\":44}]}",
         "renditions[0].sample_rate: must be an integer in [8000, 96000]"},
        {"{\"version\":1,\"version\":1}", "duplicate"},
    };
    struct tmt_err err;
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad); i++) {
        tmt_err_clear(&err);
        struct tmt_pack_asset *a =
            tmt_pack_asset_parse(bad[i].json, strlen(bad[i].json), "a1", "x.json", &err);
        if (a != NULL || strstr(err.msg, bad[i].msg) == NULL)
            fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err.msg, bad[i].msg);
        assert_null(a);
        assert_int_equal(err.code, TMT_EINVAL);
        assert_non_null(strstr(err.msg, bad[i].msg));
    }
    struct tmt_pack_asset *a = tmt_pack_asset_parse(GOOD_JSON, strlen(GOOD_JSON), "a1", NULL, &err);
    assert_non_null(a);
    assert_int_equal(tmt_pack_asset_renditions(a), 4);
    tmt_pack_asset_free(&a);
    assert_null(a);
    /* 29.97 becomes 30000/1001 */
    const char *ntsc = "{\"version\":1,\"segment_duration\":6,\"renditions\":[{\"id\":\"v\","
                       "\"type\":\"video\",\"file\":\"a.mp4\",\"width\":320,\"height\":180,"
                       "\"bitrate\":1000,\"frame_rate\":29.97}]}";
    a = tmt_pack_asset_parse(ntsc, strlen(ntsc), "a1", NULL, &err);
    assert_non_null(a);
    assert_int_equal(a->r[0].fps_num, 30000);
    assert_int_equal(a->r[0].fps_den, 1001);
    assert_int_equal(a->seg_ms, 6000);
    tmt_pack_asset_free(&a);
    /* ids */
    assert_null(tmt_pack_asset_parse(ntsc, strlen(ntsc), "../x", NULL, &err));
    assert_true(tmt_pack_id_valid("abc_DEF-09"));
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    assert_false(tmt_pack_id_valid(long_id));
    long_id[64] = '\0';
    assert_true(tmt_pack_id_valid(long_id));
    assert_false(tmt_pack_id_valid(""));
    assert_false(tmt_pack_id_valid("a/b"));
    /* missing asset */
    tmt_err_clear(&err);
    assert_null(tmt_pack_asset_load(g_root, "nope", &err));
    assert_int_equal(err.code, TMT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nope/asset.json"));
}

/* ---- bad mezzanines and asset.json that does not match its files ---- */

/* A second asset folder holding copies of the media; returns the error of building its index. */
static int build_variant(const char *json, const char *damage, struct tmt_err *err)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/bad", g_root);
    run("rm -rf %s && mkdir -p %s && cp %s/*.mp4 %s/", dir, dir, g_dir, dir);
    if (damage != NULL) {
        /* @ in the command stands for the folder */
        char cmd[2048];
        size_t n = 0;
        for (const char *c = damage; *c != '\0' && n + sizeof(dir) < sizeof(cmd); c++) {
            if (*c == '@') {
                n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s", dir);
            } else {
                cmd[n++] = *c;
            }
        }
        cmd[n] = '\0';
        assert_int_equal(system(cmd), 0);
    }
    write_asset_json(dir, json);
    tmt_err_clear(err);
    struct tmt_pack_asset *a = tmt_pack_asset_load(g_root, "bad", err);
    if (a == NULL)
        return err->code;
    struct tmt_pack_index *ix = tmt_pack_index_build(a, g_root, err);
    tmt_pack_asset_free(&a);
    if (ix != NULL) {
        tmt_pack_index_free(&ix);
        return 0;
    }
    return err->code;
}

static char *replace(const char *s, const char *from, const char *to)
{
    static char out[4096];
    const char *p = strstr(s, from);
    assert_non_null(p);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return out;
}

static void test_bad_mezzanines(void **state)
{
    (void)state;
    struct tmt_err err;
    assert_int_equal(build_variant(GOOD_JSON, NULL, &err), 0);
    /* audio in a file of its own; a mezzanine with its moov at the end */
    assert_int_equal(build_variant(replace(GOOD_JSON, "\"file\": \"r180.mp4\", \"bitrate\": 64000",
                                           "\"file\": \"audio.mp4\", \"bitrate\": 64000"),
                                   "ffmpeg -nostdin -v error -i @/r180.mp4 -vn -c copy @/audio.mp4",
                                   &err),
                     0);
    assert_int_equal(build_variant(GOOD_JSON,
                                   "ffmpeg -nostdin -v error -i @/r90.mp4 -c copy @/x.mp4 && "
                                   "mv @/x.mp4 @/r90.mp4",
                                   &err),
                     0);
    /* missing */
    assert_int_equal(build_variant(GOOD_JSON, "rm @/r144.mp4", &err), TMT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/bad/r144.mp4"));
    /* truncated in the middle of the media data (faststart: the moov is intact) */
    assert_int_equal(build_variant(GOOD_JSON, "truncate -s -20000 @/r90.mp4", &err), TMT_ECORRUPT);
    assert_non_null(strstr(err.msg, "/bad/r90.mp4: truncated"));
    /* truncated inside the moov */
    assert_int_equal(build_variant(GOOD_JSON, "truncate -s 900 @/r90.mp4", &err), TMT_ECORRUPT);
    assert_non_null(strstr(err.msg, "/bad/r90.mp4"));
    /* garbage, empty */
    assert_int_equal(build_variant(GOOD_JSON, "head -c 5000 /dev/urandom > @/r180.mp4", &err),
                     TMT_ECORRUPT);
    assert_non_null(strstr(err.msg, "/bad/r180.mp4"));
    assert_int_equal(build_variant(GOOD_JSON, ": > @/r144.mp4", &err), TMT_ECORRUPT);
    assert_non_null(strstr(err.msg, "/bad/r144.mp4"));
    /* asset.json does not match the files */
    assert_int_equal(
        build_variant(replace(GOOD_JSON, "\"width\": 320", "\"width\": 640"), NULL, &err),
        TMT_EINVAL);
    assert_non_null(strstr(err.msg, "r180.mp4: asset.json renditions[0] (r180): 640x180, the "
                                    "file has 320x180"));
    assert_int_equal(
        build_variant(replace(GOOD_JSON, "\"mp4a.40.2\"", "\"mp4a.40.5\""), NULL, &err),
        TMT_EINVAL);
    assert_non_null(strstr(err.msg, "codecs \"mp4a.40.5\", the file has \"mp4a.40.2\""));
    assert_int_equal(
        build_variant(replace(GOOD_JSON, "\"frame_rate\": 25}", "\"frame_rate\": 30}"), NULL, &err),
        TMT_EINVAL);
    assert_non_null(strstr(err.msg, "frame_rate 30.000, the file has 25.000"));
    assert_int_equal(
        build_variant(replace(GOOD_JSON, "\"channels\": 2", "\"channels\": 1"), NULL, &err),
        TMT_EINVAL);
    /* an audio-only file given as video */
    assert_int_equal(build_variant(GOOD_JSON,
                                   "ffmpeg -nostdin -v error -y -i @/r90.mp4 -vn -c copy "
                                   "@/x.mp4 && mv @/x.mp4 @/r90.mp4",
                                   &err),
                     TMT_EINVAL);
    assert_non_null(strstr(err.msg, "r90.mp4: no H.264 video track"));
    /* keyframes that do not line up across renditions */
    assert_int_equal(build_variant(GOOD_JSON,
                                   "ffmpeg -nostdin -v error -y -f lavfi -i "
                                   "testsrc2=size=256x144:rate=25 -t 9 -c:v libx264 -preset "
                                   "ultrafast -pix_fmt yuv420p -x264-params "
                                   "keyint=75:min-keyint=75:scenecut=0 @/r144.mp4",
                                   &err),
                     TMT_EINVAL);
    assert_non_null(strstr(err.msg, "keyframes of r144 do not line up with those of r180"));
    run("rm -rf %s/bad", g_root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asset_json),
        cmocka_unit_test(test_segments_on_keyframes),
        cmocka_unit_test(test_audio_aligned),
        cmocka_unit_test(test_index_matches_ffprobe),
        cmocka_unit_test(test_index_reads_little),
        cmocka_unit_test(test_blob_round_trip),
        cmocka_unit_test(test_blob_corruption),
        cmocka_unit_test(test_blob_bad_content),
        cmocka_unit_test(test_hls),
        cmocka_unit_test(test_dash),
        cmocka_unit_test(test_ffmpeg_reads_renditions),
        cmocka_unit_test(test_seek_timestamps),
        cmocka_unit_test(test_ffmpeg_reads_manifests),
        cmocka_unit_test(test_segment_layout),
        cmocka_unit_test(test_segment_speed),
        cmocka_unit_test(test_bad_mezzanines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
