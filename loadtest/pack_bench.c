/*
 * tmt-pack-bench: the time to package one CMAF media segment from a warm index, with no cache
 * in between. Loads {root}/{asset}/asset.json, builds the asset's index once, then cuts media
 * segment N of one rendition ITER times, each time as tomato-shield does on a miss: open the
 * mezzanine, fstat, tmt_pack_media_segment into a fresh buffer, close, and XXH3 over the output
 * (the ETag's hash) so that no work can be skipped. Each iteration is timed with
 * CLOCK_MONOTONIC. Used by loadtest/bench/pack.sh; not installed.
 *
 *   tmt-pack-bench ROOT ASSET RENDITION N [ITER]
 *
 * Output, one key=value per line: the segment's start and duration in seconds, its size, the
 * hash, the index build time and median, p90, min and max of the iterations in microseconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "tmt/err.h"
#include "tmt/pack.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct_us(const int64_t *v, size_t n, unsigned p)
{
    size_t k = (n * p + 99) / 100;
    if (k == 0)
        k = 1;
    return (double)v[k - 1] / 1e3;
}

/* One segment as the shield's miss path makes it. Returns 0 or a TMT_E* code. */
static int cut(const struct tmt_pack_index *ix, unsigned r, unsigned n, const char *path,
               uint64_t *hash, size_t *len, struct tmt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return TMT_EIO;
    }
    struct tmt_pack_io io;
    tmt_pack_io_init_fd(&io, fd, (uint64_t)st.st_size, path);
    struct tmt_pack_buf b;
    tmt_pack_buf_init(&b);
    int rc = tmt_pack_media_segment(ix, r, n, &io, &b, err);
    close(fd);
    if (rc == 0) {
        *hash = XXH3_64bits(b.p, b.len);
        *len = b.len;
    }
    tmt_pack_buf_fini(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: tmt-pack-bench ROOT ASSET RENDITION N [ITER]\n");
        return 2;
    }
    const char *root = argv[1], *asset_id = argv[2], *rend = argv[3];
    long n = strtol(argv[4], NULL, 10);
    long iter = argc == 6 ? strtol(argv[5], NULL, 10) : 300;
    if (n < 1 || iter < 1 || iter > 1000000) {
        fprintf(stderr, "tmt-pack-bench: N and ITER must be >= 1\n");
        return 2;
    }
    tmt_pack_libav_log_init();

    struct tmt_err err;
    tmt_err_clear(&err);
    struct tmt_pack_asset *a = tmt_pack_asset_load(root, asset_id, &err);
    if (!a) {
        fprintf(stderr, "tmt-pack-bench: %s\n", err.msg);
        return 1;
    }
    int64_t t0 = now_ns();
    struct tmt_pack_index *ix = tmt_pack_index_build(a, root, &err);
    int64_t t_index = now_ns() - t0;
    tmt_pack_asset_free(&a);
    if (!ix) {
        fprintf(stderr, "tmt-pack-bench: %s\n", err.msg);
        return 1;
    }
    int r = tmt_pack_index_find(ix, rend);
    if (r < 0) {
        fprintf(stderr, "tmt-pack-bench: no rendition '%s'\n", rend);
        tmt_pack_index_free(&ix);
        return 1;
    }
    struct tmt_pack_rendition_info info;
    tmt_pack_index_info(ix, (unsigned)r, &info);
    uint64_t start_ts = 0, dur_ts = 0;
    if (tmt_pack_segment_time(ix, (unsigned)r, (unsigned)n, &start_ts, &dur_ts) != 0) {
        fprintf(stderr, "tmt-pack-bench: rendition '%s' has %u segments, no segment %ld\n", rend,
                info.segments, n);
        tmt_pack_index_free(&ix);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", root, asset_id, info.file);

    uint64_t hash = 0, first_hash = 0;
    size_t len = 0, first_len = 0;
    int64_t *t = calloc((size_t)iter, sizeof(*t));
    if (!t) {
        fprintf(stderr, "tmt-pack-bench: out of memory\n");
        tmt_pack_index_free(&ix);
        return 1;
    }
    /* One cut before timing: the file's pages and the allocator are warm, as on a busy shield. */
    int rc = cut(ix, (unsigned)r, (unsigned)n, path, &first_hash, &first_len, &err);
    for (long i = 0; rc == 0 && i < iter; i++) {
        int64_t s = now_ns();
        rc = cut(ix, (unsigned)r, (unsigned)n, path, &hash, &len, &err);
        t[i] = now_ns() - s;
        if (rc == 0 && (hash != first_hash || len != first_len)) {
            snprintf(err.msg, sizeof(err.msg), "iteration %ld gave other bytes", i);
            rc = TMT_ECORRUPT;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "tmt-pack-bench: %s (%s)\n", err.msg, tmt_strerror(rc));
        free(t);
        tmt_pack_index_free(&ix);
        return 1;
    }
    qsort(t, (size_t)iter, sizeof(*t), cmp_i64);
    printf("rendition=%s\n", rend);
    printf("segment=%ld\n", n);
    printf("segments=%u\n", info.segments);
    printf("start_s=%.6f\n", (double)start_ts / info.timescale);
    printf("duration_s=%.6f\n", (double)dur_ts / info.timescale);
    printf("bytes=%zu\n", first_len);
    printf("xxh3=%016" PRIx64 "\n", first_hash);
    printf("index_build_us=%.0f\n", (double)t_index / 1e3);
    printf("iterations=%ld\n", iter);
    printf("median_us=%.1f\n", pct_us(t, (size_t)iter, 50));
    printf("p90_us=%.1f\n", pct_us(t, (size_t)iter, 90));
    printf("min_us=%.1f\n", (double)t[0] / 1e3);
    printf("max_us=%.1f\n", (double)t[iter - 1] / 1e3);
    free(t);
    tmt_pack_index_free(&ix);
    return 0;
}
