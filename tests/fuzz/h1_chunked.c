/*
 * Fuzz target: arbitrary bytes as a chunked message body (tmt_h1_chunked_decode).
 *
 * The input is decoded in one call, then again cut into pieces at positions drawn from a hash of
 * the input, and, for short inputs, one byte at a time; each piece is an exact-size heap copy.
 * All decodings must agree on the result, and, unless it is an error, on the decoded bytes and on
 * how much input the message took. Each call must keep the per-call contract: out_len <= consumed
 * <= len, TMT_EAGAIN consumes everything, and a finished or failed decoder consumes nothing more.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"
#include "tmt/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "h1_chunked invariant failed: %s (line %d)\n", #cond, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_CUTS 16

struct result {
    int rc;
    uint8_t *data;
    size_t data_len;
    size_t consumed;
};

static struct result decode(const uint8_t *in, size_t len, const size_t *cuts, size_t n_cuts)
{
    struct tmt_h1_chunked d;
    tmt_h1_chunked_init(&d);
    struct result res = {TMT_EAGAIN, malloc(len > 0 ? len : 1), 0, 0};
    CHECK(res.data != NULL);
    size_t start = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t stop = i < n_cuts ? cuts[i] : len;
        size_t n = stop - start;
        char *piece = malloc(n > 0 ? n : 1);
        CHECK(piece != NULL);
        if (n > 0)
            memcpy(piece, in + start, n);
        size_t out = SIZE_MAX, used = SIZE_MAX;
        int rc = tmt_h1_chunked_decode(&d, piece, n, &out, &used);
        CHECK(rc == 0 || rc == TMT_EAGAIN || rc == TMT_EINVAL || rc == TMT_ELIMIT);
        CHECK(out <= used && used <= n);
        if (rc == TMT_EAGAIN)
            CHECK(used == n);
        memcpy(res.data + res.data_len, piece, out);
        res.data_len += out;
        res.consumed += used;
        if (rc != TMT_EAGAIN) {
            /* Done or failed: a further call gives the same answer and takes nothing. */
            int again = tmt_h1_chunked_decode(&d, piece, n, &out, &used);
            CHECK(again == rc && out == 0 && used == 0);
        }
        free(piece);
        start = stop;
        res.rc = rc;
        if (rc != TMT_EAGAIN)
            break;
    }
    return res;
}

static void check_same(const struct result *a, const struct result *b)
{
    CHECK(a->rc == b->rc);
    if (a->rc == TMT_EINVAL || a->rc == TMT_ELIMIT)
        return;
    CHECK(a->consumed == b->consumed);
    CHECK(a->data_len == b->data_len);
    CHECK(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    struct result one = decode(data, size, NULL, 0);
    CHECK(one.data_len <= one.consumed && one.consumed <= size);
    if (one.rc == TMT_EAGAIN)
        CHECK(one.consumed == size);

    /* Cut points from an FNV-1a hash of the input and a xorshift stream. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    size_t cuts[MAX_CUTS];
    size_t n_cuts = size > 0 ? (size_t)(h % MAX_CUTS) + 1 : 0;
    for (size_t i = 0; i < n_cuts; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        cuts[i] = (size_t)(h % (size + 1));
    }
    qsort(cuts, n_cuts, sizeof(cuts[0]), cmp_size);
    struct result split = decode(data, size, cuts, n_cuts);
    check_same(&one, &split);
    free(split.data);

    if (size <= 512) {
        size_t *all = malloc((size + 1) * sizeof(*all));
        CHECK(all != NULL);
        for (size_t i = 0; i < size; i++)
            all[i] = i + 1;
        struct result bytes = decode(data, size, all, size > 0 ? size - 1 : 0);
        check_same(&one, &bytes);
        free(bytes.data);
        free(all);
    }
    free(one.data);
    return 0;
}
