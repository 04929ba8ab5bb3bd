/*
 * blob.c: the index as bytes, so the shield keeps it in RocksDB and does not re-index after a
 * restart.
 *
 *   header (32 bytes): "TMTPKIX\0", u32 version (1), u32 0, u64 payload length,
 *                      u64 XXH3-64 of the payload; all little-endian
 *   payload: asset id, target segment duration, rendition count, then per rendition its
 *            description (ids, file, codecs, numbers), timescale, time mapping, codec
 *            configuration, samples and the first sample of each segment.
 *
 * Samples take about 6 to 9 bytes each: LEB128 varints for the size, the duration, the gap
 * between the sample's offset and the end of the previous one (zigzag, since audio and video
 * chunks interleave), the composition offset (zigzag) and the keyframe flag; decode times follow
 * from the first one and the durations. Segment start, duration and bytes are recomputed by the
 * same code the builder uses, and the whole track goes through pack_track_check, so a blob that
 * decodes cleanly but says something impossible is still refused. Every read is bounds-checked:
 * arbitrary bytes give TMT_ECORRUPT.
 */
#include "pack_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define BLOB_MAGIC "TMTPKIX"
#define BLOB_VERSION 1u
#define BLOB_HEADER 32u

/* ---- writing ---- */

struct bw {
    struct tmt_pack_buf *b;
    int rc;
};

static void put(struct bw *w, const void *p, size_t n)
{
    if (w->rc == 0)
        w->rc = pack_buf_put(w->b, p, n);
}

static void put_u8(struct bw *w, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(w, &c, 1);
}

static void put_var(struct bw *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        tmp[n++] = c | (v != 0 ? 0x80 : 0);
    } while (v != 0);
    put(w, tmp, n);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static void put_str(struct bw *w, const char *s)
{
    size_t n = strlen(s);
    put_var(w, n);
    put(w, s, n);
}

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_track(struct bw *w, const struct pack_track *t)
{
    const struct pack_rendition_desc *d = &t->d;
    put_str(w, d->id);
    put_str(w, d->file);
    put_str(w, d->codecs);
    put_str(w, d->lang);
    put_str(w, d->name);
    put_u8(w, d->kind);
    put_var(w, d->width);
    put_var(w, d->height);
    put_var(w, d->bitrate);
    put_var(w, d->fps_num);
    put_var(w, d->fps_den);
    put_var(w, d->sample_rate);
    put_var(w, d->channels);
    put_var(w, t->timescale);
    put_var(w, zigzag(t->dec_shift));
    put_var(w, t->elst_skip);
    put_var(w, t->config_len);
    put(w, t->config, t->config_len);
    put_var(w, t->nsamples);
    put_var(w, zigzag(t->samples[0].dts));
    uint64_t end = 0;
    for (uint32_t i = 0; i < t->nsamples; i++) {
        const struct pack_sample *s = &t->samples[i];
        put_var(w, s->size);
        put_var(w, s->dur);
        put_var(w, zigzag((int64_t)(s->pos - end)));
        put_var(w, zigzag(s->cto));
        put_u8(w, s->flags);
        end = s->pos + s->size;
    }
    put_var(w, t->nsegs);
    for (uint32_t k = 0; k < t->nsegs; k++)
        put_var(w, t->segs[k].first - (k > 0 ? t->segs[k - 1].first : 0));
}

int tmt_pack_index_save(const struct tmt_pack_index *ix, struct tmt_pack_buf *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    size_t start = out->len;
    uint8_t hdr[BLOB_HEADER] = {0};
    struct bw w = {out, 0};
    put(&w, hdr, sizeof(hdr));
    put_str(&w, ix->asset);
    put_var(&w, ix->seg_ms);
    put_var(&w, ix->n);
    for (unsigned r = 0; r < ix->n; r++)
        put_track(&w, &ix->t[r]);
    if (w.rc != 0) {
        out->len = start;
        return w.rc;
    }
    uint8_t *h = out->p + start;
    size_t plen = out->len - start - BLOB_HEADER;
    memcpy(h, BLOB_MAGIC, 8);
    le(h + 8, BLOB_VERSION, 4);
    le(h + 16, plen, 8);
    le(h + 24, XXH3_64bits(h + BLOB_HEADER, plen), 8);
    return 0;
}

/* ---- reading ---- */

struct br {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static uint64_t get_var(struct br *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->off >= r->len) {
            r->bad = true;
            return 0;
        }
        uint8_t c = r->p[r->off++];
        if (shift == 63 && c > 1) {
            r->bad = true;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* A varint that must be at most max. */
static uint64_t get_max(struct br *r, uint64_t max)
{
    uint64_t v = get_var(r);
    if (v > max)
        r->bad = true;
    return r->bad ? 0 : v;
}

static int64_t get_zz(struct br *r)
{
    uint64_t v = get_var(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void get_bytes(struct br *r, void *dst, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}

static void get_str(struct br *r, char *dst, size_t cap)
{
    size_t n = (size_t)get_max(r, cap - 1);
    get_bytes(r, dst, n);
    dst[r->bad ? 0 : n] = '\0';
    if (memchr(dst, '\0', n) != NULL)
        r->bad = true;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int get_track(struct br *r, struct pack_track *t, const char *where, struct tmt_err *err)
{
    struct pack_rendition_desc *d = &t->d;
    get_str(r, d->id, sizeof(d->id));
    get_str(r, d->file, sizeof(d->file));
    get_str(r, d->codecs, sizeof(d->codecs));
    get_str(r, d->lang, sizeof(d->lang));
    get_str(r, d->name, sizeof(d->name));
    uint8_t kind = 0;
    get_bytes(r, &kind, 1);
    d->kind = (enum tmt_pack_kind)kind;
    d->width = (uint32_t)get_max(r, 8192);
    d->height = (uint32_t)get_max(r, 8192);
    d->bitrate = get_max(r, 1000000000);
    d->fps_num = (uint32_t)get_max(r, UINT32_MAX);
    d->fps_den = (uint32_t)get_max(r, UINT32_MAX);
    d->sample_rate = (uint32_t)get_max(r, 96000);
    d->channels = (uint32_t)get_max(r, 8);
    t->timescale = (uint32_t)get_max(r, UINT32_MAX);
    t->dec_shift = get_zz(r);
    t->elst_skip = (uint32_t)get_max(r, UINT32_MAX);
    t->config_len = (uint32_t)get_max(r, PACK_CONFIG_MAX);
    get_bytes(r, t->config, t->config_len);
    uint32_t n = (uint32_t)get_max(r, TMT_PACK_MAX_SAMPLES);
    /* each sample takes at least 5 bytes: refuse counts the blob cannot hold before allocating */
    if (r->bad || n == 0 || n > (r->len - r->off) / 5)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: sample count", where);
    t->samples = calloc(n, sizeof(*t->samples));
    if (t->samples == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", where);
    t->nsamples = n;
    int64_t dts = get_zz(r);
    if (dts < -(INT64_C(1) << 50) || dts > (INT64_C(1) << 50))
        r->bad = true;
    uint64_t end = 0;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        struct pack_sample *s = &t->samples[i];
        s->size = (uint32_t)get_max(r, UINT32_MAX);
        s->dur = (uint32_t)get_max(r, UINT32_MAX);
        int64_t gap = get_zz(r);
        int64_t cto = get_zz(r);
        uint8_t flags = 0;
        get_bytes(r, &flags, 1);
        s->flags = flags;
        uint64_t mag = gap < 0 ? (uint64_t)0 - (uint64_t)gap : (uint64_t)gap;
        if (cto < INT32_MIN || cto > INT32_MAX || (gap < 0 && mag > end) ||
            (gap > 0 && end > (uint64_t)INT64_MAX - mag))
            r->bad = true;
        s->cto = (int32_t)cto;
        s->pos = end + (uint64_t)gap;
        s->dts = dts;
        dts += s->dur; /* bounded: dts < 2^50 + 2^32 * i */
        if (s->pos > UINT64_MAX - s->size)
            r->bad = true;
        end = s->pos + s->size;
    }
    uint32_t nsegs = (uint32_t)get_max(r, n);
    if (r->bad || nsegs == 0 || nsegs > r->len - r->off)
        return tmt_err_set(err, TMT_ECORRUPT, "%s: samples or segment count", where);
    uint32_t *firsts = malloc(sizeof(uint32_t) * nsegs);
    if (firsts == NULL)
        return tmt_err_set(err, TMT_ELIMIT, "%s: out of memory", where);
    uint64_t first = 0;
    for (uint32_t k = 0; k < nsegs; k++) {
        first += get_max(r, n);
        if (first >= n)
            r->bad = true;
        firsts[k] = (uint32_t)(r->bad ? 0 : first);
    }
    int rc = 0;
    if (r->bad)
        rc = tmt_err_set(err, TMT_ECORRUPT, "%s: segment list", where);
    else if (d->kind != TMT_PACK_VIDEO && d->kind != TMT_PACK_AUDIO)
        rc = tmt_err_set(err, TMT_ECORRUPT, "%s: kind %u", where, kind);
    else if (t->timescale == 0)
        rc = tmt_err_set(err, TMT_ECORRUPT, "%s: timescale", where);
    if (rc == 0)
        rc = pack_segments_fill(t, firsts, nsegs, where, err);
    free(firsts);
    if (rc == 0)
        rc = pack_track_check(t, where, err);
    if (rc == TMT_EINVAL)
        rc = err != NULL ? (err->code = TMT_ECORRUPT) : TMT_ECORRUPT;
    return rc;
}

struct tmt_pack_index *tmt_pack_index_load(const void *blob, size_t len, struct tmt_err *err)
{
    const uint8_t *p = blob;
    if (p == NULL || len < BLOB_HEADER || memcmp(p, BLOB_MAGIC, 8) != 0) {
        tmt_err_set(err, TMT_ECORRUPT, "index blob: not a packager index");
        return NULL;
    }
    if (rd_le(p + 8, 4) != BLOB_VERSION || rd_le(p + 12, 4) != 0) {
        tmt_err_set(err, TMT_ECORRUPT, "index blob: version %u is not %u",
                    (unsigned)rd_le(p + 8, 4), BLOB_VERSION);
        return NULL;
    }
    if (rd_le(p + 16, 8) != len - BLOB_HEADER) {
        tmt_err_set(err, TMT_ECORRUPT, "index blob: length %zu, header says %llu",
                    len - BLOB_HEADER, (unsigned long long)rd_le(p + 16, 8));
        return NULL;
    }
    if (rd_le(p + 24, 8) != XXH3_64bits(p + BLOB_HEADER, len - BLOB_HEADER)) {
        tmt_err_set(err, TMT_ECORRUPT, "index blob: checksum mismatch");
        return NULL;
    }
    struct br r = {p, len, BLOB_HEADER, false};
    struct tmt_pack_index *ix = tmt_xcalloc(1, sizeof(*ix));
    ix->magic = PACK_INDEX_MAGIC;
    get_str(&r, ix->asset, sizeof(ix->asset));
    ix->seg_ms = (uint32_t)get_max(&r, 30000);
    ix->n = (unsigned)get_max(&r, TMT_PACK_MAX_RENDITIONS);
    int rc = 0;
    if (r.bad || ix->n == 0 || !tmt_pack_id_valid(ix->asset) || ix->seg_ms < 1000)
        rc = tmt_err_set(err, TMT_ECORRUPT, "index blob: header fields");
    for (unsigned i = 0; i < ix->n && rc == 0; i++) {
        char where[64];
        snprintf(where, sizeof(where), "index blob: rendition %u", i);
        rc = get_track(&r, &ix->t[i], where, err);
        for (unsigned j = 0; j < i && rc == 0; j++) {
            if (strcmp(ix->t[j].d.id, ix->t[i].d.id) == 0)
                rc = tmt_err_set(err, TMT_ECORRUPT, "%s: duplicate id", where);
        }
    }
    if (rc == 0 && r.off != len)
        rc = tmt_err_set(err, TMT_ECORRUPT, "index blob: %zu bytes left over", len - r.off);
    if (rc != 0)
        tmt_pack_index_free(&ix);
    return ix;
}
