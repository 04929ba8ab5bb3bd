/*
 * trace.h: reading request traces (CSV `time,obj_id,obj_size`, one header line, then one request
 * per line in time order), as replayed by tomato-cachesim and tomato-load.
 *
 * The reader streams: one request at a time, constant memory, from a file or stdin. It checks
 * every line (three unsigned integers, non-decreasing time) and names the line of the first bad
 * one; it does not check that an object keeps its size (callers that care do).
 */
#ifndef TMT_TRACE_H
#define TMT_TRACE_H

#include <stdint.h>

#include "tmt/base.h"
#include "tmt/err.h"

struct tmt_trace_req {
    uint64_t time_s;
    uint64_t obj_id;
    uint64_t size;
};

struct tmt_trace;

/* Opens path ("-" = stdin). NULL with err filled on failure. */
struct tmt_trace *tmt_trace_open(const char *path, struct tmt_err *err);
void tmt_trace_close(struct tmt_trace **trace);

/*
 * Reads the next request. Returns 1 with *req filled, 0 at the end, or TMT_EINVAL/TMT_EIO with
 * err naming the file and line.
 */
int tmt_trace_next(struct tmt_trace *trace, struct tmt_trace_req *req,
                   struct tmt_err *err) TMT_MUST_CHECK;

/* Decodes the object id scheme of our traces: asset * 1e6 + rung * 1e4 + seg. */
struct tmt_trace_obj {
    uint64_t asset;
    unsigned rung; /* 0-5 renditions, 99 master playlist */
    unsigned seg;  /* 1-9998 media segment, 0 init segment, 9999 playlist */
};
void tmt_trace_decode(uint64_t obj_id, struct tmt_trace_obj *out);

/*
 * The URL path a replay requests for obj_id: /v/a{asset}/r{rung}/{seg}.m4s, .../init.mp4 (seg 0),
 * .../index.m3u8 (seg 9999), /v/a{asset}/master.m3u8 (rung 99). Writes a NUL-terminated path
 * (cap >= 64 always suffices) and returns its length.
 */
size_t tmt_trace_path(uint64_t obj_id, char *out, size_t cap);

#endif
