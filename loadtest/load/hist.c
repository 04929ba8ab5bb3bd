/*
 * hist.c: the log-bucketed latency histogram of load_lib.h.
 *
 * Values below 2^SUB_BITS have a bucket each; above, every power of two is split into 2^SUB_BITS
 * equal buckets (HdrHistogram's layout with 5 significant bits), so a quantile is off by at most
 * half a bucket, about 1.6 %, and recording is a few shifts: no sample is kept, nothing sorted.
 */
#include "tmt/load_lib.h"

#define SUB (1u << TMT_HIST_SUB_BITS)

size_t tmt_hist_bucket(uint64_t v)
{
    if (v < SUB)
        return (size_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - TMT_HIST_SUB_BITS;
    return (size_t)(shift + 1) * SUB + (size_t)((v >> shift) - SUB);
}

uint64_t tmt_hist_bucket_low(size_t i)
{
    if (i < SUB)
        return i;
    unsigned shift = (unsigned)(i / SUB) - 1;
    return ((uint64_t)(i % SUB) + SUB) << shift;
}

void tmt_hist_record(struct tmt_hist *h, uint64_t v)
{
    h->b[tmt_hist_bucket(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
}

void tmt_hist_merge(struct tmt_hist *dst, const struct tmt_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (size_t i = 0; i < TMT_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t tmt_hist_quantile(const struct tmt_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (!(q > 0))
        return h->min;
    if (q >= 1)
        return h->max;
    uint64_t rank = (uint64_t)((double)h->count * q);
    if ((double)rank < (double)h->count * q)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < TMT_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen < rank)
            continue;
        uint64_t lo = tmt_hist_bucket_low(i);
        uint64_t width = i < SUB ? 1 : (uint64_t)1 << (i / SUB - 1);
        uint64_t v = lo + width / 2;
        if (v < h->min)
            v = h->min;
        if (v > h->max)
            v = h->max;
        return v;
    }
    return h->max;
}
