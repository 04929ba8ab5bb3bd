/*
 * pack.h: the packager. From an asset folder (`{root}/{asset}/asset.json` plus its H.264/AAC
 * mezzanine MP4s) it builds a sample index once, and from that index it cuts CMAF init and media
 * segments and writes HLS and DASH manifests on request. Remux only: sample bytes are copied
 * from the mezzanine into the output, never decoded.
 *
 * Life of an asset in the shield:
 *
 *   asset = tmt_pack_asset_load(root, id, &err);        asset.json, validated (docs/asset-json.md)
 *   ix = tmt_pack_index_build(asset, root, &err);       opens each MP4 once, checks it against
 *                                                       asset.json, indexes and segments it
 *   tmt_pack_index_save(ix, &buf);                      compact checksummed blob for RocksDB
 *   ix = tmt_pack_index_load(blob, len, &err);          after a restart: no re-indexing
 *   tmt_pack_hls_master(ix, &buf) ... tmt_pack_media_segment(ix, r, n, &io, &buf, &err)
 *
 * The index is self-contained (it copies what the manifests need from asset.json), immutable
 * after it is built or loaded, and may be read by any number of threads at once. Nothing here
 * touches sockets or an event loop; the calls that read files (index build, media segments) block
 * and belong on the shield's blocking pool.
 *
 * Errors: functions return 0 or a negative TMT_E* code and fill a struct tmt_err when given one.
 * TMT_EINVAL: asset.json or a request does not make sense; TMT_ENOTFOUND: no such file,
 * rendition or segment; TMT_ECORRUPT: a mezzanine or a stored index blob is damaged (the message
 * names the file); TMT_EIO: a read failed; TMT_ELIMIT: out of memory or a size limit.
 */
#ifndef TMT_PACK_H
#define TMT_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/err.h"

struct tmt_pack_asset;
struct tmt_pack_index;

#define TMT_PACK_ID_MAX 64           /* asset and rendition ids: [A-Za-z0-9_-]{1,64} */
#define TMT_PACK_MAX_RENDITIONS 16   /* per asset */
#define TMT_PACK_MAX_SAMPLES 8000000 /* per track: over 24 hours at 60 fps */

/*
 * Process-wide, once before threads start: libavformat's own messages (warnings and errors
 * about damaged files) go to the project log at debug level instead of stderr. The packager's
 * errors already name the file and the problem.
 */
void tmt_pack_libav_log_init(void);

/* ---- output buffer ---------------------------------------------------------------------- */

/*
 * A growable byte buffer the caller owns. Every writer below appends to it (it never resets
 * len), so one buffer can collect an init segment and the media segments after it. On an
 * allocation failure a writer returns TMT_ELIMIT and leaves len where it was.
 */
struct tmt_pack_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
};

void tmt_pack_buf_init(struct tmt_pack_buf *b);
/* Frees the bytes; the buffer may be initialised again. Accepts a zeroed buffer. */
void tmt_pack_buf_fini(struct tmt_pack_buf *b);
/* Makes room for `more` bytes past len. TMT_ELIMIT when that cannot be allocated. */
int tmt_pack_buf_reserve(struct tmt_pack_buf *b, size_t more) TMT_MUST_CHECK;

/* ---- sample data I/O -------------------------------------------------------------------- */

struct tmt_pack_io;

/*
 * Reads exactly len bytes at offset off of io into dst. Returns 0, TMT_ECORRUPT when the source
 * ends before off + len (a truncated file), or TMT_EIO (errno in *sys_errno).
 */
typedef int tmt_pack_read_fn(const struct tmt_pack_io *io, uint64_t off, void *dst, size_t len,
                             int *sys_errno);

/*
 * Reads the len bytes at offset off of io scattered over iov[0..n) (their lengths sum to len) in
 * one call. Same returns as tmt_pack_read_fn.
 */
struct iovec;
typedef int tmt_pack_readv_fn(const struct tmt_pack_io *io, uint64_t off, const struct iovec *iov,
                              int n, size_t len, int *sys_errno);

/*
 * Where sample bytes come from: a value the caller places on the stack. `name` (borrowed, for
 * error messages) names the file. readv may be NULL (a caller's own reader): the segment writer
 * then reads run by run.
 */
struct tmt_pack_io {
    tmt_pack_read_fn *read;
    tmt_pack_readv_fn *readv;
    void *arg;     /* for a caller's own read function */
    uint64_t size; /* bytes in the source */
    const char *name;
    /* for the built-in readers */
    int _fd;
    const uint8_t *_mem;
};

/* pread(2) on fd (borrowed, not closed), which holds size bytes. */
void tmt_pack_io_init_fd(struct tmt_pack_io *io, int fd, uint64_t size, const char *name);
/* A memory buffer (borrowed) of len bytes. */
void tmt_pack_io_init_mem(struct tmt_pack_io *io, const void *p, size_t len, const char *name);

/* ---- asset.json --------------------------------------------------------------------------- */

enum tmt_pack_kind {
    TMT_PACK_VIDEO = 1,
    TMT_PACK_AUDIO = 2,
};

/* true if s is an asset or rendition id: [A-Za-z0-9_-]{1,64}. */
bool tmt_pack_id_valid(const char *s);

/*
 * Reads and validates `{root}/{asset_id}/asset.json` (schema: docs/asset-json.md). Returns a new
 * asset description the caller frees with tmt_pack_asset_free, or NULL with err filled: the
 * message names the file and the field ("/srv/m/a1/asset.json: renditions[2].width: must be an
 * integer in [16, 8192]"). An invalid asset id is TMT_EINVAL; a missing file TMT_ENOTFOUND.
 */
struct tmt_pack_asset *tmt_pack_asset_load(const char *root, const char *asset_id,
                                           struct tmt_err *err);

/*
 * The same from JSON text already in memory; `name` stands for the file in messages. Does not
 * look at the mezzanine files.
 */
struct tmt_pack_asset *tmt_pack_asset_parse(const char *json, size_t len, const char *asset_id,
                                            const char *name, struct tmt_err *err);

void tmt_pack_asset_free(struct tmt_pack_asset **a);

/* Number of renditions, in asset.json order. */
unsigned tmt_pack_asset_renditions(const struct tmt_pack_asset *a);

/* ---- index -------------------------------------------------------------------------------- */

/*
 * Opens every mezzanine of the asset (`{root}/{asset}/{file}`) once, indexes its samples
 * through libavformat, checks them against asset.json (codec, size, frame rate, audio format,
 * CODECS strings when given) and cuts segments: video on keyframes near the target duration,
 * audio as close as possible to the video boundaries. Returns the index (free with
 * tmt_pack_index_free) or NULL with err naming the file and the problem.
 */
struct tmt_pack_index *tmt_pack_index_build(const struct tmt_pack_asset *a, const char *root,
                                            struct tmt_err *err);

void tmt_pack_index_free(struct tmt_pack_index **ix);

/*
 * Appends the index as a versioned, checksummed blob (a few bytes per sample plus the asset
 * description) to out. Returns 0 or TMT_ELIMIT.
 */
int tmt_pack_index_save(const struct tmt_pack_index *ix, struct tmt_pack_buf *out) TMT_MUST_CHECK;

/*
 * Rebuilds an index from a blob made by tmt_pack_index_save. Everything is validated (checksum,
 * version, every count, offset and timestamp, the same invariants the builder guarantees); a
 * damaged or foreign blob gives NULL and TMT_ECORRUPT in err, never a crash.
 */
struct tmt_pack_index *tmt_pack_index_load(const void *blob, size_t len, struct tmt_err *err);

const char *tmt_pack_index_asset_id(const struct tmt_pack_index *ix);
unsigned tmt_pack_index_renditions(const struct tmt_pack_index *ix);

/* Index of the rendition with this id, or -1. */
int tmt_pack_index_find(const struct tmt_pack_index *ix, const char *rendition_id);

/* Facts about rendition r (0 <= r < tmt_pack_index_renditions). Strings live as long as ix. */
struct tmt_pack_rendition_info {
    const char *id;
    const char *file; /* mezzanine file name inside the asset folder */
    enum tmt_pack_kind kind;
    const char *codecs; /* RFC 6381, e.g. "avc1.64001f", "mp4a.40.2" */
    unsigned width, height;
    unsigned sample_rate, channels;
    uint32_t timescale;
    unsigned segments;
    uint64_t duration_ts;    /* sum of the segment durations, in timescale ticks */
    uint64_t avg_bandwidth;  /* bits per second over all segments, moof and mdat headers included */
    uint64_t peak_bandwidth; /* the highest segment bit rate */
};
void tmt_pack_index_info(const struct tmt_pack_index *ix, unsigned r,
                         struct tmt_pack_rendition_info *out);

/*
 * Segment n (1-based) of rendition r: its presentation start and duration in timescale ticks.
 * TMT_ENOTFOUND when there is no such segment.
 */
int tmt_pack_segment_time(const struct tmt_pack_index *ix, unsigned r, unsigned n,
                          uint64_t *start_ts, uint64_t *dur_ts) TMT_MUST_CHECK;

/* ---- CMAF --------------------------------------------------------------------------------- */

/* Appends the init segment (ftyp + moov) of rendition r. 0, TMT_ENOTFOUND or TMT_ELIMIT. */
int tmt_pack_init_segment(const struct tmt_pack_index *ix, unsigned r,
                          struct tmt_pack_buf *out) TMT_MUST_CHECK;

/*
 * Appends media segment n (1-based) of rendition r: styp, moof (mfhd, traf with tfhd, tfdt,
 * trun) and mdat, whose sample bytes are read through io (the rendition's mezzanine). No
 * allocation besides growing out once to the exact size. TMT_ENOTFOUND for a segment number out
 * of range; TMT_ECORRUPT or TMT_EIO when the file is shorter than the index says or unreadable
 * (the message names io->name). On error out->len is unchanged.
 */
int tmt_pack_media_segment(const struct tmt_pack_index *ix, unsigned r, unsigned n,
                           const struct tmt_pack_io *io, struct tmt_pack_buf *out,
                           struct tmt_err *err) TMT_MUST_CHECK;

/* ---- manifests ---------------------------------------------------------------------------- */

/*
 * HLS master playlist, served at /v/{asset}/master.m3u8: one EXT-X-STREAM-INF per video
 * rendition (URI `{rendition}/index.m3u8`) in an audio group listing the audio rendition.
 */
int tmt_pack_hls_master(const struct tmt_pack_index *ix, struct tmt_pack_buf *out) TMT_MUST_CHECK;

/* HLS media playlist of rendition r (`init.mp4`, `{n}.m4s`, relative to the playlist). */
int tmt_pack_hls_media(const struct tmt_pack_index *ix, unsigned r,
                       struct tmt_pack_buf *out) TMT_MUST_CHECK;

/* Static DASH MPD, served at /v/{asset}/manifest.mpd. */
int tmt_pack_dash_mpd(const struct tmt_pack_index *ix, struct tmt_pack_buf *out) TMT_MUST_CHECK;

#endif
