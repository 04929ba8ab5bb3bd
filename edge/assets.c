/*
 * assets.c: per-asset counts for report batches (see assets.h).
 */
#include "assets.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct entry {
    uint64_t h;
    uint64_t requests, bytes;
    uint8_t len;
    char asset[EDGE_ASSET_ID_MAX];
};

struct table {
    pthread_mutex_t mu;
    size_t n;
    struct entry e[EDGE_ASSETS_K];
};

struct edge_assets {
    unsigned workers;
    struct table *t;
};

struct edge_assets *edge_assets_new(unsigned workers)
{
    struct edge_assets *a = tmt_xcalloc(1, sizeof(*a));
    a->workers = workers;
    a->t = tmt_xcalloc(workers, sizeof(*a->t));
    for (unsigned i = 0; i < workers; i++)
        pthread_mutex_init(&a->t[i].mu, NULL);
    return a;
}

void edge_assets_free(struct edge_assets **ap)
{
    struct edge_assets *a = *ap;
    if (a == NULL)
        return;
    for (unsigned i = 0; i < a->workers; i++)
        pthread_mutex_destroy(&a->t[i].mu);
    free(a->t);
    free(a);
    *ap = NULL;
}

/* The asset of a cache path "/v/{asset}/...", or a zero-length slice. */
static struct tmt_slice asset_of(struct tmt_slice path)
{
    struct tmt_slice none = {NULL, 0};
    if (path.len < 4 || memcmp(path.p, "/v/", 3) != 0)
        return none;
    size_t i = 3;
    while (i < path.len && path.p[i] != '/') {
        char c = path.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return none;
        i++;
    }
    if (i == 3 || i - 3 > EDGE_ASSET_ID_MAX)
        return none;
    return (struct tmt_slice){path.p + 3, i - 3};
}

void edge_assets_count(struct edge_assets *a, unsigned worker, struct tmt_slice path,
                       uint64_t bytes)
{
    struct tmt_slice id = asset_of(path);
    if (id.len == 0 || worker >= a->workers)
        return;
    uint64_t h = XXH3_64bits(id.p, id.len);
    struct table *t = &a->t[worker];
    pthread_mutex_lock(&t->mu);
    struct entry *hit = NULL, *min = NULL;
    for (size_t i = 0; i < t->n; i++) {
        struct entry *e = &t->e[i];
        if (e->h == h && e->len == id.len && memcmp(e->asset, id.p, id.len) == 0) {
            hit = e;
            break;
        }
        if (min == NULL || e->requests < min->requests)
            min = e;
    }
    if (hit == NULL) {
        if (t->n < EDGE_ASSETS_K) {
            hit = &t->e[t->n++];
            hit->requests = hit->bytes = 0;
        } else {
            hit = min; /* Space-Saving: inherits the count it replaces */
        }
        hit->h = h;
        hit->len = (uint8_t)id.len;
        memcpy(hit->asset, id.p, id.len);
    }
    hit->requests++;
    hit->bytes += bytes;
    pthread_mutex_unlock(&t->mu);
}

static int busiest_first(const void *x, const void *y)
{
    const struct edge_asset_count *a = x, *b = y;
    if (a->requests != b->requests)
        return a->requests < b->requests ? 1 : -1;
    return strcmp(a->asset, b->asset);
}

size_t edge_assets_take(struct edge_assets *a, struct edge_asset_count *out, size_t cap)
{
    size_t max = (size_t)a->workers * EDGE_ASSETS_K, n = 0;
    struct edge_asset_count *all = tmt_xcalloc(max + 1, sizeof(*all));
    for (unsigned w = 0; w < a->workers; w++) {
        struct table *t = &a->t[w];
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; i < t->n; i++) {
            const struct entry *e = &t->e[i];
            size_t k = 0;
            while (k < n &&
                   !(strlen(all[k].asset) == e->len && memcmp(all[k].asset, e->asset, e->len) == 0))
                k++;
            if (k == n) {
                memcpy(all[n].asset, e->asset, e->len);
                all[n].asset[e->len] = '\0';
                n++;
            }
            all[k].requests += e->requests;
            all[k].bytes += e->bytes;
        }
        t->n = 0;
        pthread_mutex_unlock(&t->mu);
    }
    if (n > 1)
        qsort(all, n, sizeof(*all), busiest_first);
    size_t m = TMT_MIN(n, cap);
    if (m > 0)
        memcpy(out, all, m * sizeof(*out));
    free(all);
    return m;
}
