/*
 * hls.c: HLS playlists (RFC 8216, version 7 for EXT-X-MAP with fMP4 media).
 *
 * The master lists each video rendition once, with the audio rendition as its audio group, so a
 * variant's BANDWIDTH (the peak segment bit rate) and AVERAGE-BANDWIDTH are video plus audio,
 * both measured from the segments as served (styp, moof and mdat headers included), and CODECS
 * names both. All URIs are relative: `{rendition}/index.m3u8` from the master,
 * `init.mp4` and `{n}.m4s` from a media playlist, so a path prefix put in front by an edge
 * (`/t/{token}`) reaches every request.
 */
#include "pack_int.h"

#include <stdio.h>

static int audio_track(const struct tmt_pack_index *ix)
{
    for (unsigned r = 0; r < ix->n; r++) {
        if (ix->t[r].d.kind == TMT_PACK_AUDIO)
            return (int)r;
    }
    return -1;
}

int tmt_pack_hls_master(const struct tmt_pack_index *ix, struct tmt_pack_buf *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    size_t start = out->len;
    int a = audio_track(ix);
    struct tmt_pack_rendition_info ai = {0};
    int rc = pack_buf_printf(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if (a >= 0) {
        const struct pack_track *t = &ix->t[a];
        tmt_pack_index_info(ix, (unsigned)a, &ai);
        if (rc == 0)
            rc = pack_buf_printf(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"%s\",%s%s%s"
                "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%u\",URI=\"%s/index.m3u8\"\n",
                t->d.name[0] != '\0' ? t->d.name : t->d.id,
                t->d.lang[0] != '\0' ? "LANGUAGE=\"" : "", t->d.lang,
                t->d.lang[0] != '\0' ? "\"," : "", t->d.channels, t->d.id);
    }
    for (unsigned r = 0; r < ix->n && rc == 0; r++) {
        const struct pack_track *t = &ix->t[r];
        if (t->d.kind != TMT_PACK_VIDEO)
            continue;
        struct tmt_pack_rendition_info vi;
        tmt_pack_index_info(ix, r, &vi);
        rc = pack_buf_printf(out,
                             "#EXT-X-STREAM-INF:BANDWIDTH=%llu,AVERAGE-BANDWIDTH=%llu,"
                             "RESOLUTION=%ux%u,CODECS=\"%s%s%s\",FRAME-RATE=%.3f%s\n"
                             "%s/index.m3u8\n",
                             (unsigned long long)(vi.peak_bandwidth + ai.peak_bandwidth),
                             (unsigned long long)(vi.avg_bandwidth + ai.avg_bandwidth), t->d.width,
                             t->d.height, t->d.codecs, a >= 0 ? "," : "",
                             a >= 0 ? ix->t[a].d.codecs : "", (double)t->d.fps_num / t->d.fps_den,
                             a >= 0 ? ",AUDIO=\"audio\"" : "", t->d.id);
    }
    if (rc != 0)
        out->len = start;
    return rc;
}

int tmt_pack_hls_media(const struct tmt_pack_index *ix, unsigned r, struct tmt_pack_buf *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    if (r >= ix->n)
        return TMT_ENOTFOUND;
    const struct pack_track *t = &ix->t[r];
    size_t start = out->len;
    uint64_t target = 1;
    for (uint32_t k = 0; k < t->nsegs; k++) {
        /* EXTINF rounded to the nearest integer must not exceed the target duration */
        uint64_t rounded = (2 * t->segs[k].dur + t->timescale) / (2 * (uint64_t)t->timescale);
        target = TMT_MAX(target, rounded);
    }
    int rc = pack_buf_printf(out,
                             "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%llu\n"
                             "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                             "#EXT-X-MAP:URI=\"init.mp4\"\n",
                             (unsigned long long)target);
    for (uint32_t k = 0; k < t->nsegs && rc == 0; k++) {
        rc = pack_buf_printf(out, "#EXTINF:");
        if (rc == 0)
            rc = pack_buf_seconds(out, t->segs[k].dur, t->timescale);
        if (rc == 0)
            rc = pack_buf_printf(out, ",\n%u.m4s\n", k + 1);
    }
    if (rc == 0)
        rc = pack_buf_printf(out, "#EXT-X-ENDLIST\n");
    if (rc != 0)
        out->len = start;
    return rc;
}
