/*
 * auth.c: password hashes (scrypt), pseudonymous user ids (HMAC-SHA256) and the login rate
 * limiter.
 *
 * Hashes are stored as "scrypt$N$r$p$salt$hash" (salt 16 random bytes, hash 32 bytes, both
 * base64url), so a change of auth.scrypt_n applies to new hashes and old ones still check.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cp.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define SCRYPT_R 8
#define SCRYPT_P 1

static int scrypt(const char *pw, size_t len, const unsigned char *salt, size_t salt_len,
                  uint64_t n, uint64_t r, uint64_t p, unsigned char out[HASH_LEN])
{
    uint64_t maxmem = 128 * r * (n + p + 2) + (1u << 22);
    return EVP_PBE_scrypt(pw, len, salt, salt_len, n, r, p, maxmem, out, HASH_LEN) == 1 ? 0 : -1;
}

int cp_password_hash(const struct cp_conf *conf, const char *pw, size_t len, char *out, size_t cap)
{
    unsigned char salt[SALT_LEN], h[HASH_LEN];
    cp_random(salt, sizeof(salt));
    if (scrypt(pw, len, salt, sizeof(salt), (uint64_t)conf->scrypt_n, SCRYPT_R, SCRYPT_P, h) != 0)
        return -1;
    char s64[32], h64[48];
    tmt_b64url_encode(salt, sizeof(salt), s64, sizeof(s64));
    tmt_b64url_encode(h, sizeof(h), h64, sizeof(h64));
    OPENSSL_cleanse(h, sizeof(h));
    int n = snprintf(out, cap, "scrypt$%lld$%d$%d$%s$%s", (long long)conf->scrypt_n, SCRYPT_R,
                     SCRYPT_P, s64, h64);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

bool cp_password_check(const char *stored, const char *pw, size_t len)
{
    unsigned long long n, r, p;
    char s64[64], h64[64];
    if (sscanf(stored, "scrypt$%llu$%llu$%llu$%63[A-Za-z0-9_-]$%63[A-Za-z0-9_-]", &n, &r, &p, s64,
               h64) != 5)
        return false;
    /* Bounds that keep a corrupted record from asking for absurd work. */
    if (n < 2 || n > (1u << 20) || (n & (n - 1)) != 0 || r < 1 || r > 32 || p < 1 || p > 16)
        return false;
    unsigned char salt[48], want[48], got[HASH_LEN];
    long sl = tmt_b64url_decode(s64, strlen(s64), salt, sizeof(salt));
    long hl = tmt_b64url_decode(h64, strlen(h64), want, sizeof(want));
    if (sl <= 0 || hl != HASH_LEN)
        return false;
    if (scrypt(pw, len, salt, (size_t)sl, n, r, p, got) != 0)
        return false;
    bool ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

void cp_pseudonym(const unsigned char key[32], const char *uid, char out[23])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)uid, strlen(uid), mac, &ml);
    tmt_b64url_encode(mac, 16, out, 23);
}

/* ---- the rate limiter ---- */

/*
 * Fixed windows per (kind, what), in a 4-way set-associative table of bounded size: a new key
 * takes the way whose window is oldest, so memory never grows with the number of attackers.
 * Keys are hashed with a random seed, so no one can aim collisions at another's entry.
 */
#define LIM_SETS 2048
#define LIM_WAYS 4

struct lim_entry {
    uint64_t h;
    int64_t start;
    uint64_t count;
};

struct cp_limiter {
    pthread_mutex_t mu;
    uint64_t seed;
    struct lim_entry e[LIM_SETS][LIM_WAYS];
};

struct cp_limiter *cp_limiter_new(void)
{
    struct cp_limiter *l = tmt_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    cp_random(&l->seed, sizeof(l->seed));
    return l;
}

void cp_limiter_free(struct cp_limiter **lp)
{
    if (*lp == NULL)
        return;
    pthread_mutex_destroy(&(*lp)->mu);
    free(*lp);
    *lp = NULL;
}

static uint64_t lim_hash(const struct cp_limiter *l, const char *kind, const char *what)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%s%c%s", kind, '\0', what);
    size_t len = n < 0 ? 0 : TMT_MIN((size_t)n, sizeof(buf) - 1);
    uint64_t h = XXH3_64bits_withSeed(buf, len, l->seed);
    return h == 0 ? 1 : h;
}

int64_t cp_limiter_hit(struct cp_limiter *l, const char *kind, const char *what, int64_t now,
                       int64_t window_s, uint64_t max, bool count)
{
    uint64_t h = lim_hash(l, kind, what);
    struct lim_entry *set = l->e[h % LIM_SETS];
    pthread_mutex_lock(&l->mu);
    struct lim_entry *e = NULL;
    for (int i = 0; i < LIM_WAYS && e == NULL; i++)
        if (set[i].h == h)
            e = &set[i];
    if (e == NULL) {
        if (!count) {
            pthread_mutex_unlock(&l->mu);
            return 0;
        }
        e = &set[0];
        for (int i = 1; i < LIM_WAYS; i++)
            if (set[i].start < e->start)
                e = &set[i];
        *e = (struct lim_entry){.h = h, .start = now, .count = 0};
    }
    if (now >= e->start + window_s) {
        e->start = now;
        e->count = 0;
    }
    if (count)
        e->count++;
    int64_t wait = 0;
    if (count ? e->count > max : e->count >= max)
        wait = TMT_MAX(e->start + window_s - now, 1);
    pthread_mutex_unlock(&l->mu);
    return wait;
}

void cp_limiter_reset(struct cp_limiter *l, const char *kind, const char *what)
{
    uint64_t h = lim_hash(l, kind, what);
    struct lim_entry *set = l->e[h % LIM_SETS];
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < LIM_WAYS; i++)
        if (set[i].h == h)
            set[i] = (struct lim_entry){0};
    pthread_mutex_unlock(&l->mu);
}
