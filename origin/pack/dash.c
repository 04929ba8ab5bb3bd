/*
 * dash.c: the static DASH MPD (ISO/IEC 23009-1, live profile for SegmentTemplate).
 *
 * One Period; one video AdaptationSet with every video rendition and one audio AdaptationSet.
 * Each Representation has its own SegmentTemplate (renditions may differ in timescale) with
 * `$RepresentationID$/init.mp4` and `$RepresentationID$/$Number$.m4s`, startNumber 1, and a
 * SegmentTimeline whose S elements carry the exact presentation start and durations (runs of
 * equal durations folded with @r). Segment numbers and URIs are those of HLS: the same CMAF
 * segments serve both. Ids, codecs, languages and names are validated to characters that need no
 * XML escaping.
 */
#include "pack_int.h"

#include <stdio.h>

static int timeline(struct tmt_pack_buf *out, const struct pack_track *t)
{
    int rc = pack_buf_printf(out,
                             "        <SegmentTemplate timescale=\"%u\" "
                             "initialization=\"$RepresentationID$/init.mp4\" "
                             "media=\"$RepresentationID$/$Number$.m4s\" startNumber=\"1\">\n"
                             "          <SegmentTimeline>\n",
                             t->timescale);
    for (uint32_t k = 0; k < t->nsegs && rc == 0;) {
        uint32_t j = k + 1;
        while (j < t->nsegs && t->segs[j].dur == t->segs[k].dur)
            j++;
        if (k == 0)
            rc = pack_buf_printf(out, "            <S t=\"%lld\" d=\"%llu\"",
                                 (long long)t->segs[k].start, (unsigned long long)t->segs[k].dur);
        else
            rc = pack_buf_printf(out, "            <S d=\"%llu\"",
                                 (unsigned long long)t->segs[k].dur);
        if (rc == 0)
            rc = j - k > 1 ? pack_buf_printf(out, " r=\"%u\"/>\n", j - k - 1)
                           : pack_buf_printf(out, "/>\n");
        k = j;
    }
    if (rc == 0)
        rc = pack_buf_printf(out, "          </SegmentTimeline>\n        </SegmentTemplate>\n");
    return rc;
}

static int adaptation_set(struct tmt_pack_buf *out, const struct tmt_pack_index *ix,
                          enum tmt_pack_kind kind, unsigned id)
{
    const struct pack_track *first = NULL;
    uint32_t maxw = 0, maxh = 0;
    for (unsigned r = 0; r < ix->n; r++) {
        if (ix->t[r].d.kind != kind)
            continue;
        if (first == NULL)
            first = &ix->t[r];
        maxw = TMT_MAX(maxw, ix->t[r].d.width);
        maxh = TMT_MAX(maxh, ix->t[r].d.height);
    }
    if (first == NULL)
        return 0;
    int rc;
    if (kind == TMT_PACK_VIDEO)
        rc = pack_buf_printf(out,
                             "    <AdaptationSet id=\"%u\" contentType=\"video\" "
                             "mimeType=\"video/mp4\" segmentAlignment=\"true\" "
                             "startWithSAP=\"1\" maxWidth=\"%u\" maxHeight=\"%u\">\n",
                             id, maxw, maxh);
    else
        rc = pack_buf_printf(out,
                             "    <AdaptationSet id=\"%u\" contentType=\"audio\" "
                             "mimeType=\"audio/mp4\" segmentAlignment=\"true\" "
                             "startWithSAP=\"1\"%s%s%s>\n",
                             id, first->d.lang[0] != '\0' ? " lang=\"" : "", first->d.lang,
                             first->d.lang[0] != '\0' ? "\"" : "");
    for (unsigned r = 0; r < ix->n && rc == 0; r++) {
        const struct pack_track *t = &ix->t[r];
        if (t->d.kind != kind)
            continue;
        struct tmt_pack_rendition_info info;
        tmt_pack_index_info(ix, r, &info);
        if (kind == TMT_PACK_VIDEO)
            rc = pack_buf_printf(out,
                                 "      <Representation id=\"%s\" bandwidth=\"%llu\" "
                                 "codecs=\"%s\" width=\"%u\" height=\"%u\" "
                                 "frameRate=\"%u/%u\">\n",
                                 t->d.id, (unsigned long long)info.peak_bandwidth, t->d.codecs,
                                 t->d.width, t->d.height, t->d.fps_num, t->d.fps_den);
        else
            rc = pack_buf_printf(
                out,
                "      <Representation id=\"%s\" bandwidth=\"%llu\" codecs=\"%s\" "
                "audioSamplingRate=\"%u\">\n"
                "        <AudioChannelConfiguration "
                "schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" "
                "value=\"%u\"/>\n",
                t->d.id, (unsigned long long)info.peak_bandwidth, t->d.codecs, t->d.sample_rate,
                t->d.channels);
        if (rc == 0)
            rc = timeline(out, t);
        if (rc == 0)
            rc = pack_buf_printf(out, "      </Representation>\n");
    }
    if (rc == 0)
        rc = pack_buf_printf(out, "    </AdaptationSet>\n");
    return rc;
}

int tmt_pack_dash_mpd(const struct tmt_pack_index *ix, struct tmt_pack_buf *out)
{
    TMT_CHECK_OBJ(ix, PACK_INDEX_MAGIC);
    size_t start = out->len;
    /* the presentation lasts until the end of the longest track */
    uint64_t dur_us = 0, max_seg_ms = 0;
    for (unsigned r = 0; r < ix->n; r++) {
        const struct pack_track *t = &ix->t[r];
        const struct pack_segment *l = &t->segs[t->nsegs - 1];
        uint64_t end = (uint64_t)l->start + l->dur;
        dur_us = TMT_MAX(dur_us, (uint64_t)((unsigned __int128)end * 1000000 / t->timescale));
        for (uint32_t k = 0; k < t->nsegs; k++)
            max_seg_ms = TMT_MAX(max_seg_ms, t->segs[k].dur * 1000 / t->timescale);
    }
    int rc =
        pack_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                             "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" "
                             "mediaPresentationDuration=\"PT");
    if (rc == 0)
        rc = pack_buf_seconds(out, dur_us, 1000000);
    if (rc == 0)
        rc = pack_buf_printf(out, "S\" minBufferTime=\"PT");
    if (rc == 0)
        rc = pack_buf_seconds(out, max_seg_ms, 1000);
    if (rc == 0)
        rc = pack_buf_printf(out, "S\">\n  <Period id=\"0\" start=\"PT0S\">\n");
    if (rc == 0)
        rc = adaptation_set(out, ix, TMT_PACK_VIDEO, 0);
    if (rc == 0)
        rc = adaptation_set(out, ix, TMT_PACK_AUDIO, 1);
    if (rc == 0)
        rc = pack_buf_printf(out, "  </Period>\n</MPD>\n");
    if (rc != 0)
        out->len = start;
    return rc;
}
