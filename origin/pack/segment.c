/*
 * segment.c: where segments begin, the invariants of a track, and building an asset's index.
 *
 * Video is cut on keyframes: a segment ends at the first keyframe at least 90% of the target
 * duration after its start, so with a keyframe at every boundary (what the transcoder writes)
 * every segment lasts exactly the target and only the last is shorter. Audio has no keyframes to
 * respect but its frames (1024 samples for AAC) do not divide the video boundaries: each audio
 * segment starts at the frame whose time is nearest the corresponding video boundary, so
 * segment n of audio and of every video rendition cover the same time to within half a frame,
 * and the audio durations in the playlists are the real ones.
 *
 * A track's segments are stored as the index of their first sample; start, duration and byte
 * count follow from the samples (pack_segments_fill), so the blob loader recomputes them with
 * the same code instead of trusting stored values.
 */
#include "pack_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_BYTES_MAX (1u << 30)

static int64_t sample_pts(const struct pack_sample *s)
{
    return s->dts + s->cto;
}

/* v * to / from, rounded down, without overflow for the ranges checked elsewhere. */
static int64_t rescale(int64_t v, uint32_t from, uint32_t to)
{
    __int128 x = (__int128)v * to;
    __int128 q = x / from;
    if (x < 0 && q * from != x)
        q--;
    return (int64_t)q;
}

/* Presentation start of a run of samples: the earliest pts (video) or first dts (audio). */
static int64_t run_start(const struct pack_track *t, uint32_t first, uint32_t count)
{
    if (t->d.kind == TMT_PACK_AUDIO) {
        int64_t s = t->samples[first].dts;
        /* the edit list hides the priming: presentation begins at the first visible sample */
        if (first == 0 && t->elst_skip > 0 && s < t->samples[0].dts + (int64_t)t->elst_skip)
            s = t->samples[0].dts + (int64_t)t->elst_skip;
        return s;
    }
    int64_t m = INT64_MAX;
    for (uint32_t i = first; i < first + count; i++)
        m = TMT_MIN(m, sample_pts(&t->samples[i]));
    return m;
}

/* End of the presentation: the latest pts + duration. */
static int64_t track_end(const struct pack_track *t)
{
    if (t->d.kind == TMT_PACK_AUDIO) {
        const struct pack_sample *l = &t->samples[t->nsamples - 1];
        return l->dts + l->dur;
    }
    int64_t m = INT64_MIN;
    for (uint32_t i = 0; i < t->nsamples; i++)
        m = TMT_MAX(m, sample_pts(&t->samples[i]) + (int64_t)t->samples[i].dur);
    return m;
}

int pack_segments_fill(struct pack_track *t, const uint32_t *firsts, uint32_t n, const char *where,
                       struct tmt_err *err)
{
    free(t->segs);
    t->segs = NULL;
    t->nsegs = 0;
    if (n == 0 || n > t->nsamples || firsts[0] != 0)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: bad segment list", where);
    t->segs = calloc(n, sizeof(*t->segs));
    if (t->segs == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", where);
    t->nsegs = n;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t end = k + 1 < n ? firsts[k + 1] : t->nsamples;
        if (end <= firsts[k] || end > t->nsamples)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: segment %u is empty or out of order", where,
                               k + 1);
        struct pack_segment *g = &t->segs[k];
        g->first = firsts[k];
        g->count = end - firsts[k];
        g->start = run_start(t, g->first, g->count);
        g->bytes = 0;
        for (uint32_t i = g->first; i < end; i++)
            g->bytes += t->samples[i].size;
        if (g->bytes > SEG_BYTES_MAX)
            return tmt_err_set(err, TMT_ELIMIT, "%s: segment %u holds more than %u bytes", where,
                               k + 1, SEG_BYTES_MAX);
    }
    int64_t end = track_end(t);
    for (uint32_t k = 0; k < n; k++) {
        int64_t next = k + 1 < n ? t->segs[k + 1].start : end;
        if (next <= t->segs[k].start)
            return tmt_err_set(err, TMT_ECORRUPT,
                               "%s: segment %u: presentation times do not increase", where, k + 1);
        t->segs[k].dur = (uint64_t)(next - t->segs[k].start);
    }
    return 0;
}

int pack_segment_video(struct pack_track *t, uint32_t seg_ms, const char *where,
                       struct tmt_err *err)
{
    if (!(t->samples[0].flags & PACK_SAMPLE_KEY))
        return tmt_err_set(err, TMT_EINVAL, "%s: the first video frame is not a keyframe", where);
    int64_t target = (int64_t)seg_ms * t->timescale / 1000;
    int64_t min_len = target - target / 10;
    uint32_t *firsts = malloc(sizeof(uint32_t) * t->nsamples);
    if (firsts == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", where);
    uint32_t n = 0;
    int64_t start = sample_pts(&t->samples[0]);
    firsts[n++] = 0;
    for (uint32_t i = 1; i < t->nsamples; i++) {
        const struct pack_sample *s = &t->samples[i];
        if ((s->flags & PACK_SAMPLE_KEY) && sample_pts(s) - start >= min_len) {
            firsts[n++] = i;
            start = sample_pts(s);
        }
    }
    int rc = pack_segments_fill(t, firsts, n, where, err);
    free(firsts);
    return rc;
}

int pack_segment_audio(struct pack_track *t, const struct pack_track *ref, uint32_t seg_ms,
                       const char *where, struct tmt_err *err)
{
    uint32_t cap = ref != NULL ? ref->nsegs : t->nsamples;
    uint32_t *firsts = malloc(sizeof(uint32_t) * TMT_MAX(cap, 1u));
    if (firsts == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", where);
    uint32_t n = 0, i = 0;
    int64_t target = (int64_t)seg_ms * t->timescale / 1000;
    firsts[n++] = 0;
    for (uint32_t k = 1;; k++) {
        int64_t b;
        if (ref != NULL) {
            if (k >= ref->nsegs)
                break;
            b = rescale(ref->segs[k].start, ref->timescale, t->timescale);
        } else {
            b = run_start(t, 0, 1) + (int64_t)k * target;
        }
        while (i + 1 < t->nsamples && t->samples[i + 1].dts <= b)
            i++;
        uint32_t c = i;
        if (i + 1 < t->nsamples && t->samples[i + 1].dts - b < b - t->samples[i].dts)
            c = i + 1;
        if (c <= firsts[n - 1] || c >= t->nsamples)
            break; /* the audio ends before the video */
        if (n >= cap)
            break;
        firsts[n++] = c;
    }
    int rc = pack_segments_fill(t, firsts, n, where, err);
    free(firsts);
    return rc;
}

int pack_track_check(const struct pack_track *t, const char *where, struct tmt_err *err)
{
    int rc = pack_asset_check_desc(&t->d, where, err);
    if (rc != 0)
        return rc;
    if (t->d.kind == TMT_PACK_AUDIO && (t->d.sample_rate == 0 || t->d.channels == 0))
        return tmt_err_set(err, TMT_ECORRUPT, "%s: audio without a sample rate or channel count",
                           where);
    if (t->timescale == 0 || t->timescale > 100000000)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: timescale %u", where, t->timescale);
    if (t->nsamples == 0 || t->nsamples > TMT_PACK_MAX_SAMPLES || t->samples == NULL)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: %u samples", where, t->nsamples);
    if (t->config_len < 2 || t->config_len > PACK_CONFIG_MAX || t->d.codecs[0] == '\0')
        return tmt_err_set(err, TMT_ECORRUPT, "%s: codec configuration", where);
    if (t->dec_shift < 0 || t->dec_shift > (INT64_C(1) << 40))
        return tmt_err_set(err, TMT_ECORRUPT, "%s: decode time shift", where);
    if (t->d.kind == TMT_PACK_VIDEO ? t->elst_skip != 0 : t->elst_skip != t->dec_shift)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: edit list", where);
    for (uint32_t i = 0; i < t->nsamples; i++) {
        const struct pack_sample *s = &t->samples[i];
        if (s->size == 0 || s->pos > UINT64_MAX - s->size || s->dur == 0 ||
            (s->flags & ~PACK_SAMPLE_KEY) != 0)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: sample %u: size, offset or duration", where,
                               i);
        if (s->dts < -t->dec_shift || s->dts > (INT64_C(1) << 50))
            return tmt_err_set(err, TMT_ECORRUPT, "%s: sample %u: decode time", where, i);
        if (i + 1 < t->nsamples && s->dts + (int64_t)s->dur != t->samples[i + 1].dts)
            return tmt_err_set(err, TMT_ECORRUPT,
                               "%s: sample %u: durations and decode times "
                               "disagree",
                               where, i);
        int64_t off = (int64_t)s->cto - t->dec_shift;
        if (t->d.kind == TMT_PACK_AUDIO ? s->cto != 0 : (off < INT32_MIN || off > INT32_MAX))
            return tmt_err_set(err, TMT_ECORRUPT, "%s: sample %u: composition offset", where, i);
        if (t->d.kind == TMT_PACK_VIDEO && s->dts + s->cto < 0)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: sample %u: negative presentation time",
                               where, i);
    }
    if (t->nsegs == 0 || t->nsegs > t->nsamples || t->segs == NULL)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: %u segments", where, t->nsegs);
    uint32_t next = 0;
    for (uint32_t k = 0; k < t->nsegs; k++) {
        const struct pack_segment *g = &t->segs[k];
        if (g->first != next || g->count == 0 || g->count > t->nsamples - g->first || g->dur == 0 ||
            g->start < 0)
            return tmt_err_set(err, TMT_ECORRUPT, "%s: segment %u", where, k + 1);
        if (t->d.kind == TMT_PACK_VIDEO && !(t->samples[g->first].flags & PACK_SAMPLE_KEY))
            return tmt_err_set(err, TMT_ECORRUPT, "%s: segment %u does not start on a keyframe",
                               where, k + 1);
        next = g->first + g->count;
    }
    if (next != t->nsamples)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: segments do not cover the samples", where);
    return 0;
}

void pack_track_fini(struct pack_track *t)
{
    free(t->samples);
    free(t->segs);
    t->samples = NULL;
    t->segs = NULL;
    t->nsamples = t->nsegs = 0;
}

/* asset.json against the file: codec strings, picture size, frame rate, audio format. */
static int match_desc(struct pack_track *t, const struct pack_measured *m, const char *codecs_given,
                      const char *name, unsigned r, struct tmt_err *err)
{
    const struct pack_rendition_desc *d = &t->d;
    if (codecs_given[0] != '\0' && strcmp(codecs_given, d->codecs) != 0)
        return tmt_err_set(err, TMT_EINVAL,
                           "%s: asset.json renditions[%u] (%s): codecs \"%s\", the file has \"%s\"",
                           name, r, d->id, codecs_given, d->codecs);
    if (d->kind == TMT_PACK_VIDEO) {
        if (m->width != d->width || m->height != d->height)
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: asset.json renditions[%u] (%s): %ux%u, the file has %ux%u",
                               name, r, d->id, d->width, d->height, m->width, m->height);
        const struct pack_sample *l = &t->samples[t->nsamples - 1];
        double secs = (double)(l->dts + l->dur - t->samples[0].dts) / t->timescale;
        double fps = t->nsamples / secs, want = (double)d->fps_num / d->fps_den;
        if (t->nsamples > 1 && (fps < want * 0.98 || fps > want * 1.02))
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: asset.json renditions[%u] (%s): frame_rate %.3f, the file "
                               "has %.3f",
                               name, r, d->id, want, fps);
    } else {
        if ((d->sample_rate != 0 && m->sample_rate != d->sample_rate) ||
            (d->channels != 0 && m->channels != d->channels))
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: asset.json renditions[%u] (%s): %u Hz %u channels, the file "
                               "has %u Hz %u channels",
                               name, r, d->id, d->sample_rate, d->channels, m->sample_rate,
                               m->channels);
    }
    return 0;
}

struct tmt_pack_index *pack_index_build_io(const struct tmt_pack_asset *a,
                                           const struct tmt_pack_io *ios, bool match,
                                           struct tmt_err *err)
{
    TMT_CHECK_OBJ(a, PACK_ASSET_MAGIC);
    struct tmt_pack_index *ix = tmt_xcalloc(1, sizeof(*ix));
    struct pack_measured meas[TMT_PACK_MAX_RENDITIONS];
    bool done[TMT_PACK_MAX_RENDITIONS] = {false};
    int rc = 0;
    ix->magic = PACK_INDEX_MAGIC;
    memcpy(ix->asset, a->id, sizeof(ix->asset));
    ix->seg_ms = a->seg_ms;
    ix->n = a->n;
    memset(meas, 0, sizeof(meas));
    for (unsigned r = 0; r < a->n; r++)
        ix->t[r].d = a->r[r];
    /* one demux pass per file: the audio rendition usually shares a file with a video one */
    for (unsigned r = 0; r < a->n && rc == 0; r++) {
        if (done[r])
            continue;
        struct pack_track *v = NULL, *au = NULL;
        struct pack_measured *vm = NULL, *am = NULL;
        for (unsigned q = r; q < a->n; q++) {
            if (done[q] || strcmp(a->r[q].file, a->r[r].file) != 0)
                continue;
            struct pack_track **slot = a->r[q].kind == TMT_PACK_VIDEO ? &v : &au;
            if (*slot != NULL) {
                rc = tmt_err_set(err, TMT_EINVAL,
                                 "%s: renditions %s and %s take the same track of %s", ios[r].name,
                                 (*slot)->d.id, a->r[q].id, a->r[q].file);
                break;
            }
            *slot = &ix->t[q];
            if (a->r[q].kind == TMT_PACK_VIDEO)
                vm = &meas[q];
            else
                am = &meas[q];
            done[q] = true;
        }
        if (rc == 0)
            rc = pack_mezz_index(&ios[r], v, vm, au, am, err);
    }
    for (unsigned r = 0; r < a->n && rc == 0; r++) {
        struct pack_track *t = &ix->t[r];
        if (match)
            rc = match_desc(t, &meas[r], a->r[r].codecs, ios[r].name, r, err);
        if (t->d.kind == TMT_PACK_AUDIO) {
            /* optional in asset.json: the manifests and init segments use the file's */
            t->d.sample_rate = meas[r].sample_rate;
            t->d.channels = meas[r].channels;
        }
    }
    const struct pack_track *ref = NULL;
    for (unsigned r = 0; r < a->n && rc == 0; r++) {
        struct pack_track *t = &ix->t[r];
        if (t->d.kind != TMT_PACK_VIDEO)
            continue;
        rc = pack_segment_video(t, a->seg_ms, ios[r].name, err);
        if (rc != 0)
            break;
        if (ref == NULL) {
            ref = t;
            continue;
        }
        /* renditions switch at segment boundaries: they must agree to within a frame */
        bool same = t->nsegs == ref->nsegs;
        for (uint32_t k = 0; same && k < t->nsegs; k++) {
            int64_t a_ts = rescale(t->segs[k].start, t->timescale, 1000000);
            int64_t b_ts = rescale(ref->segs[k].start, ref->timescale, 1000000);
            int64_t frame = rescale(t->samples[0].dur, t->timescale, 1000000);
            same = llabs(a_ts - b_ts) <= frame;
        }
        if (!same)
            rc = tmt_err_set(err, TMT_EINVAL,
                             "%s: keyframes of %s do not line up with those of %s (%u and %u "
                             "segments)",
                             ios[r].name, t->d.id, ref->d.id, t->nsegs, ref->nsegs);
    }
    for (unsigned r = 0; r < a->n && rc == 0; r++) {
        if (ix->t[r].d.kind == TMT_PACK_AUDIO)
            rc = pack_segment_audio(&ix->t[r], ref, a->seg_ms, ios[r].name, err);
    }
    for (unsigned r = 0; r < a->n && rc == 0; r++)
        rc = pack_track_check(&ix->t[r], ios[r].name, err);
    if (rc != 0)
        tmt_pack_index_free(&ix);
    return ix;
}

struct tmt_pack_index *tmt_pack_index_build(const struct tmt_pack_asset *a, const char *root,
                                            struct tmt_err *err)
{
    TMT_CHECK_OBJ(a, PACK_ASSET_MAGIC);
    struct tmt_pack_io ios[TMT_PACK_MAX_RENDITIONS];
    char paths[TMT_PACK_MAX_RENDITIONS][4096];
    int fds[TMT_PACK_MAX_RENDITIONS];
    struct tmt_pack_index *ix = NULL;
    unsigned opened = 0;
    memset(ios, 0, sizeof(ios));
    for (; opened < a->n; opened++) {
        char *path = paths[opened];
        int n = snprintf(path, sizeof(paths[0]), "%s/%s/%s", root, a->id, a->r[opened].file);
        if (n < 0 || (size_t)n >= sizeof(paths[0])) {
            tmt_err_set(err, TMT_EINVAL, "mezzanine root path too long");
            goto done;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            tmt_err_set_errno(err, e == ENOENT ? TMT_ENOTFOUND : TMT_EIO, e,
                              "%s (asset.json renditions[%u] %s)", path, opened, a->r[opened].id);
            goto done;
        }
        fds[opened] = fd;
        tmt_pack_io_init_fd(&ios[opened], fd, (uint64_t)st.st_size, path);
    }
    ix = pack_index_build_io(a, ios, true, err);
done:
    for (unsigned i = 0; i < opened; i++)
        close(fds[i]);
    return ix;
}

void tmt_pack_index_free(struct tmt_pack_index **ix)
{
    if (ix == NULL || *ix == NULL)
        return;
    TMT_CHECK_OBJ(*ix, PACK_INDEX_MAGIC);
    for (unsigned r = 0; r < TMT_PACK_MAX_RENDITIONS; r++)
        pack_track_fini(&(*ix)->t[r]);
    (*ix)->magic = 0;
    free(*ix);
    *ix = NULL;
}

const char *tmt_pack_index_asset_id(const struct tmt_pack_index *ix)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    return ix->asset;
}

unsigned tmt_pack_index_renditions(const struct tmt_pack_index *ix)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    return ix->n;
}

int tmt_pack_index_find(const struct tmt_pack_index *ix, const char *rendition_id)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    for (unsigned r = 0; r < ix->n; r++) {
        if (strcmp(ix->t[r].d.id, rendition_id) == 0)
            return (int)r;
    }
    return -1;
}

/* Bytes of segment k as served: its mdat payload plus styp, moof and the mdat header. */
static uint64_t seg_wire_bytes(const struct pack_track *t, uint32_t k)
{
    return t->segs[k].bytes + pack_moof_size(t, t->segs[k].count) + PACK_STYP_SIZE + 8;
}

void tmt_pack_index_info(const struct tmt_pack_index *ix, unsigned r,
                         struct tmt_pack_rendition_info *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    TMT_ASSERT(r < ix->n);
    const struct pack_track *t = &ix->t[r];
    memset(out, 0, sizeof(*out));
    out->id = t->d.id;
    out->file = t->d.file;
    out->kind = t->d.kind;
    out->codecs = t->d.codecs;
    out->width = t->d.width;
    out->height = t->d.height;
    out->sample_rate = t->d.sample_rate;
    out->channels = t->d.channels;
    out->timescale = t->timescale;
    out->segments = t->nsegs;
    unsigned __int128 bytes = 0;
    for (uint32_t k = 0; k < t->nsegs; k++) {
        uint64_t b = seg_wire_bytes(t, k);
        unsigned __int128 bits = (unsigned __int128)b * 8 * t->timescale;
        uint64_t bps = (uint64_t)((bits + t->segs[k].dur - 1) / t->segs[k].dur);
        out->peak_bandwidth = TMT_MAX(out->peak_bandwidth, bps);
        out->duration_ts += t->segs[k].dur;
        bytes += b;
    }
    out->avg_bandwidth =
        (uint64_t)((bytes * 8 * t->timescale + out->duration_ts - 1) / out->duration_ts);
}

int tmt_pack_segment_time(const struct tmt_pack_index *ix, unsigned r, unsigned n,
                          uint64_t *start_ts, uint64_t *dur_ts)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    if (r >= ix->n || n == 0 || n > ix->t[r].nsegs)
        return TMT_ENOTFOUND;
    *start_ts = (uint64_t)ix->t[r].segs[n - 1].start;
    *dur_ts = ix->t[r].segs[n - 1].dur;
    return 0;
}
