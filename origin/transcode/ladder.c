/*
 * ladder.c: options, the ladder syntax, and the decisions made from the source before anything
 * is decoded: which rungs, at which sizes, at which frame rate.
 *
 * Sizes: a rung keeps the source's display aspect ratio (storage size times sample aspect
 * ratio) at the rung's height, with the width rounded to the nearest even number, and square
 * pixels out. Only rungs at or below the source height are made; a source below the lowest rung
 * gets one rung at its own height (rounded down to even) with the lowest rung's bit rate scaled
 * by the pixel count.
 */
#include "transcode_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>
#include <libavutil/rational.h>

#define TT_MIN_SIZE 16
#define TT_MAX_WIDTH 8192
#define TT_MAX_HEIGHT 4320
#define TT_MIN_BITRATE 100000

void tmt_transcode_opts_init(struct tmt_transcode_opts *o)
{
    memset(o, 0, sizeof(*o));
    struct tmt_err err;
    int rc = tmt_transcode_ladder_parse(o, TMT_TRANSCODE_LADDER, &err);
    TMT_ASSERT(rc == 0);
    snprintf(o->preset, sizeof(o->preset), "%s", TMT_TRANSCODE_PRESET);
    o->segment_ms = 4000;
    o->audio_bitrate = 128000;
}

bool tmt_transcode_preset_valid(const char *name)
{
    const char *p = TMT_TRANSCODE_PRESETS;
    size_t n = strlen(name);
    while (n > 0 && *p != '\0') {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return false;
}

static int cmp_rung_desc(const void *a, const void *b)
{
    const struct tmt_transcode_rung *x = a, *y = b;
    return x->height < y->height ? 1 : x->height > y->height ? -1 : 0;
}

/* "5M", "1200k", "600000" → bit/s; 0 when not a bit rate. */
static uint64_t parse_bitrate(const char *s, size_t len)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno != 0 || end == buf || !(v > 0))
        return 0;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6, end++;
    if (*end != '\0' || v < 1000 || v > 1e9)
        return 0;
    return (uint64_t)llround(v);
}

int tmt_transcode_ladder_parse(struct tmt_transcode_opts *o, const char *text, struct tmt_err *err)
{
    struct tmt_transcode_rung rungs[TMT_TRANSCODE_MAX_RUNGS];
    unsigned n = 0;
    memset(rungs, 0, sizeof(rungs));
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (n == TMT_TRANSCODE_MAX_RUNGS)
            return tmt_err_set(err, TMT_EINVAL, "ladder \"%s\": more than %d rungs", text,
                               TMT_TRANSCODE_MAX_RUNGS);
        /* HEIGHT:BITRATE[:PRESET] */
        const char *c1 = memchr(p, ':', len);
        const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
        char *hend;
        long h = strtol(p, &hend, 10);
        if (c1 == NULL || hend != c1 || h < TT_MIN_SIZE || h > TT_MAX_HEIGHT || h % 2 != 0)
            return tmt_err_set(err, TMT_EINVAL,
                               "ladder \"%s\": item %u \"%.*s\": expected HEIGHT:BITRATE[:PRESET] "
                               "with an even height from %d to %d",
                               text, n + 1, (int)len, p, TT_MIN_SIZE, TT_MAX_HEIGHT);
        size_t blen = c2 != NULL ? (size_t)(c2 - c1 - 1) : len - (size_t)(c1 + 1 - p);
        uint64_t br = parse_bitrate(c1 + 1, blen);
        if (br == 0)
            return tmt_err_set(err, TMT_EINVAL,
                               "ladder \"%s\": item %u: \"%.*s\" is not a bit rate (e.g. 600k, "
                               "5M, 1000 to 1G)",
                               text, n + 1, (int)blen, c1 + 1);
        rungs[n].height = (unsigned)h;
        rungs[n].bitrate = br;
        if (c2 != NULL) {
            size_t plen = len - (size_t)(c2 + 1 - p);
            if (plen >= TMT_TRANSCODE_PRESET_MAX)
                plen = TMT_TRANSCODE_PRESET_MAX - 1;
            memcpy(rungs[n].preset, c2 + 1, plen);
            rungs[n].preset[plen] = '\0';
            if (!tmt_transcode_preset_valid(rungs[n].preset))
                return tmt_err_set(err, TMT_EINVAL,
                                   "ladder \"%s\": item %u: unknown preset \"%s\" (%s)", text,
                                   n + 1, rungs[n].preset, TMT_TRANSCODE_PRESETS);
        }
        for (unsigned i = 0; i < n; i++) {
            if (rungs[i].height == rungs[n].height)
                return tmt_err_set(err, TMT_EINVAL, "ladder \"%s\": height %ld appears twice", text,
                                   h);
        }
        n++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (n == 0)
        return tmt_err_set(err, TMT_EINVAL, "ladder \"%s\": no rungs", text);
    qsort(rungs, n, sizeof(rungs[0]), cmp_rung_desc);
    memcpy(o->ladder, rungs, sizeof(rungs));
    o->n_rungs = n;
    return 0;
}

void tmt_transcode_out_rate(int src_num, int src_den, unsigned segment_ms, unsigned *rate_num,
                            unsigned *rate_den, unsigned *frames_per_segment)
{
    double r = src_num > 0 && src_den > 0 ? (double)src_num / src_den : 25.0;
    if (r < 1)
        r = 1;
    if (r > 240)
        r = 240;
    long per = lround(r * segment_ms / 1000.0);
    if (per < 1)
        per = 1;
    int num, den;
    av_reduce(&num, &den, (int64_t)per * 1000, segment_ms, INT_MAX);
    *rate_num = (unsigned)num;
    *rate_den = (unsigned)den;
    *frames_per_segment = (unsigned)per;
}

bool tt_asset_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

int tt_plan(const struct tmt_transcode_opts *o, int src_w, int src_h, AVRational sar,
            struct tt_plan_rung *out, unsigned *n, struct tmt_err *err)
{
    if (src_w < TT_MIN_SIZE || src_h < TT_MIN_SIZE)
        return tmt_err_set(err, TMT_EINVAL, "%s: the video is %dx%d, smaller than %dx%d", o->source,
                           src_w, src_h, TT_MIN_SIZE, TT_MIN_SIZE);
    if (sar.num <= 0 || sar.den <= 0)
        sar = (AVRational){1, 1};
    double dar = (double)src_w * sar.num / sar.den / src_h; /* display width per height */
    *n = 0;
    for (unsigned i = 0; i < o->n_rungs; i++) {
        if (o->ladder[i].height > (unsigned)src_h)
            continue;
        struct tt_plan_rung *r = &out[(*n)++];
        memset(r, 0, sizeof(*r));
        r->height = o->ladder[i].height;
        r->bitrate = o->ladder[i].bitrate;
        snprintf(r->preset, sizeof(r->preset), "%s",
                 o->ladder[i].preset[0] != '\0' ? o->ladder[i].preset : o->preset);
    }
    if (*n == 0) {
        const struct tmt_transcode_rung *low = &o->ladder[o->n_rungs - 1];
        struct tt_plan_rung *r = &out[(*n)++];
        memset(r, 0, sizeof(*r));
        r->height = (unsigned)src_h & ~1u;
        double share = (double)r->height * r->height / ((double)low->height * low->height);
        r->bitrate = (uint64_t)llround((double)low->bitrate * share);
        if (r->bitrate < TT_MIN_BITRATE)
            r->bitrate = TT_MIN_BITRATE;
        snprintf(r->preset, sizeof(r->preset), "%s",
                 low->preset[0] != '\0' ? low->preset : o->preset);
    }
    for (unsigned i = 0; i < *n; i++) {
        struct tt_plan_rung *r = &out[i];
        long w = 2 * lround(r->height * dar / 2);
        if (w < TT_MIN_SIZE || w > TT_MAX_WIDTH || r->height < TT_MIN_SIZE)
            return tmt_err_set(err, TMT_EINVAL,
                               "%s: a %dx%d video (aspect %.3f) gives a %ldx%u rung, outside "
                               "%dx%d to %dx%d",
                               o->source, src_w, src_h, dar, w, r->height, TT_MIN_SIZE, TT_MIN_SIZE,
                               TT_MAX_WIDTH, TT_MAX_HEIGHT);
        r->width = (unsigned)w;
        snprintf(r->id, sizeof(r->id), "%up", r->height);
    }
    return 0;
}

int tt_av_err(struct tmt_err *err, int code, int averr, const char *fmt, ...)
{
    char what[TMT_ERR_MSG_MAX / 2], why[AV_ERROR_MAX_STRING_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    av_strerror(averr, why, sizeof(why));
    int rc = tmt_err_set(err, code, "%s: %s", what, why);
    if (err != NULL && averr < 0 && averr > -4096)
        err->sys_errno = AVUNERROR(averr);
    return rc;
}
