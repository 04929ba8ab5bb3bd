/*
 * zipf.c: the seeded random generator and the Zipf sampler of load_lib.h.
 *
 * The sampler keeps the cumulative distribution (n doubles) and draws by binary search: exact
 * for any alpha, O(log n) per draw, and deterministic for a given uniform, which the generator's
 * reproducibility relies on.
 */
#include "tmt/load_lib.h"

#include <math.h>
#include <stdlib.h>

void tmt_rng_seed(struct tmt_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t tmt_rng_next(struct tmt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tmt_rng_unit(struct tmt_rng *r)
{
    return (double)(tmt_rng_next(r) >> 11) * 0x1.0p-53;
}

double tmt_rng_exp(struct tmt_rng *r, double mean)
{
    return -mean * log(1.0 - tmt_rng_unit(r));
}

struct tmt_zipf {
    size_t n;
    double cdf[]; /* cdf[k] = P(rank <= k); cdf[n-1] = 1 */
};

struct tmt_zipf *tmt_zipf_new(size_t n, double alpha)
{
    if (n == 0 || n > (SIZE_MAX - sizeof(struct tmt_zipf)) / sizeof(double) || !(alpha >= 0))
        return NULL;
    struct tmt_zipf *z = malloc(sizeof(*z) + n * sizeof(double));
    if (z == NULL)
        return NULL;
    z->n = n;
    double sum = 0;
    for (size_t k = 0; k < n; k++) {
        sum += pow((double)(k + 1), -alpha);
        z->cdf[k] = sum;
    }
    for (size_t k = 0; k < n; k++)
        z->cdf[k] /= sum;
    z->cdf[n - 1] = 1.0;
    return z;
}

void tmt_zipf_free(struct tmt_zipf **z)
{
    free(*z);
    *z = NULL;
}

size_t tmt_zipf_rank(const struct tmt_zipf *z, double u)
{
    return tmt_zipf_rank_below(z, u, z->n);
}

size_t tmt_zipf_rank_below(const struct tmt_zipf *z, double u, size_t n)
{
    if (n == 0 || n > z->n)
        n = z->n;
    u *= z->cdf[n - 1];
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < z->cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

double tmt_zipf_prob(const struct tmt_zipf *z, size_t k)
{
    if (k >= z->n)
        return 0;
    return k == 0 ? z->cdf[0] : z->cdf[k] - z->cdf[k - 1];
}
