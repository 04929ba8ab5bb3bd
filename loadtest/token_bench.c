/*
 * tmt-token-bench: the cost of one URI Signing token check and one signature (token.h) on one
 * thread, with nothing cached. Used by loadtest/bench/token.sh; not installed.
 *
 *   tmt-token-bench [ITER [RUNS [NOW]]]      (default 200000, 5 and 1767225600)
 *
 * Signs 64 tokens of the size the control plane issues (iss, 22-character sub, iat, exp, nbf,
 * cdniv, cdniuc for a 12-character id, tmt_dev, tmt_lease: about 400 characters), issued at
 * NOW - 60 s for 4 hours and checked at NOW (bench/token.sh passes the clock, so that a peer
 * reading the real clock accepts them too), then, RUNS times after one untimed pass:
 *   verify  ITER full checks, cycling through the 64 tokens: tmt_token_verify against a ring of
 *           two keys (the token's is the second), then tmt_token_path_ok on a request path;
 *           every one must be OK, or the program fails;
 *   reject  ITER checks of a token whose signature is wrong: header, kid and HMAC, no payload;
 *   sign    ITER tmt_token_sign of the 64 claim sets in turn;
 *   json    ITER parses of the first token's payload JSON by jansson alone (json_loadb with
 *           JSON_REJECT_DUPLICATES, json_decref), the share of a check the JSON reader takes.
 * Every result is checked (OK, BAD_SIGNATURE, the token's length), so no call can be skipped.
 * Each run is timed as a whole with CLOCK_MONOTONIC.
 *
 * Output, one key=value per line: the first token with its key, time and path (so that another
 * implementation can check the same token), its length, then for verify, reject and sign the
 * median nanoseconds per operation over the runs, operations per second at that median, and
 * the per-run figures; the same for json.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tmt/err.h"
#include "tmt/token.h"

#define NTOK 64
#define NOW_DEFAULT INT64_C(1767225600)
#define SKEW 30
#define MAX_RUNS 101

static const char path_text[] = "/v/k7Qx2bLm9aZc/720p/n-00042.m4s";

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, size_t n)
{
    double s[MAX_RUNS];
    memcpy(s, v, n * sizeof(v[0]));
    qsort(s, n, sizeof(s[0]), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void report(const char *what, const double *ns, size_t runs)
{
    double m = median(ns, runs);
    printf("%s_ns_median=%.1f\n%s_per_s=%.0f\n%s_ns_runs=", what, m, what, 1e9 / m, what);
    for (size_t i = 0; i < runs; i++)
        printf("%s%.1f", i ? "," : "", ns[i]);
    printf("\n");
}

static void claims_for(int i, int64_t now, struct tmt_token_claims *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->iss, "tomato-control");
    snprintf(c->sub, sizeof(c->sub), "Qm9iJ3MgcHNldWRv%06d", i);
    snprintf(c->dev, sizeof(c->dev), "d-4f1c9a2e-%04d", i);
    snprintf(c->lease, sizeof(c->lease), "l-7b3e5d10-%04d", i);
    c->iat = now - 60;
    c->nbf = now - 60;
    c->exp = now + 4 * 3600;
    strcpy(c->prefix, "/v/k7Qx2bLm9aZc/");
}

int main(int argc, char **argv)
{
    long iter = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
    long runs = argc > 2 ? strtol(argv[2], NULL, 10) : 5;
    int64_t now = argc > 3 ? (int64_t)strtoll(argv[3], NULL, 10) : NOW_DEFAULT;
    if (argc > 4 || iter < 1 || iter > 100000000 || runs < 1 || runs > MAX_RUNS || now < 86400) {
        fprintf(stderr,
                "usage: tmt-token-bench [ITER [RUNS [NOW]]] (ITER >= 1, 1 <= RUNS <= %d, NOW in "
                "seconds since the epoch)\n",
                MAX_RUNS);
        return 2;
    }
    struct tmt_token_key ring[2];
    memset(ring, 0, sizeof(ring));
    strcpy(ring[0].kid, "k2025-12");
    strcpy(ring[1].kid, "k2026-01");
    for (size_t i = 0; i < 32; i++) {
        ring[0].secret[i] = (unsigned char)(i * 7 + 1);
        ring[1].secret[i] = (unsigned char)(i * 13 + 5);
    }
    ring[0].secret_len = ring[1].secret_len = 32;

    static struct tmt_token_claims claims[NTOK];
    static char tok[NTOK][TMT_TOKEN_MAX + 1];
    size_t len[NTOK];
    for (int i = 0; i < NTOK; i++) {
        claims_for(i, now, &claims[i]);
        long n = tmt_token_sign(&ring[1], &claims[i], tok[i], sizeof(tok[i]));
        if (n < 0) {
            fprintf(stderr, "tmt-token-bench: sign: %s\n", tmt_strerror((int)n));
            return 1;
        }
        len[i] = (size_t)n;
    }
    char forged[TMT_TOKEN_MAX + 1];
    memcpy(forged, tok[0], len[0] + 1);
    forged[len[0] - 5] = forged[len[0] - 5] == 'A' ? 'B' : 'A';
    struct tmt_slice path = TMT_SLICE_LIT(path_text);

    char payload[TMT_TOKEN_MAX];
    const char *d1 = strchr(tok[0], '.'), *d2 = strrchr(tok[0], '.');
    long pl = tmt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload));
    if (pl <= 0) {
        fprintf(stderr, "tmt-token-bench: the token's payload does not decode\n");
        return 1;
    }

    double ns_verify[MAX_RUNS], ns_reject[MAX_RUNS], ns_sign[MAX_RUNS], ns_json[MAX_RUNS];
    long bad = 0, bad_reject = 0, bad_sign = 0, bad_json = 0;
    for (long r = -1; r < runs; r++) { /* run -1 warms up and is not counted */
        int64_t t0 = now_ns();
        for (long i = 0; i < iter; i++) {
            struct tmt_token_claims c;
            int k = (int)(i % NTOK);
            if (tmt_token_verify(ring, 2, (struct tmt_slice){tok[k], len[k]}, now, SKEW, &c) !=
                    TMT_TOKEN_OK ||
                !tmt_token_path_ok(&c, path))
                bad++;
        }
        int64_t t1 = now_ns();
        for (long i = 0; i < iter; i++) {
            if (tmt_token_verify(ring, 2, (struct tmt_slice){forged, len[0]}, now, SKEW, NULL) !=
                TMT_TOKEN_BAD_SIGNATURE)
                bad_reject++;
        }
        int64_t t2 = now_ns();
        for (long i = 0; i < iter; i++) {
            char out[TMT_TOKEN_MAX + 1];
            if (tmt_token_sign(&ring[1], &claims[i % NTOK], out, sizeof(out)) !=
                (long)len[i % NTOK])
                bad_sign++;
        }
        int64_t t3 = now_ns();
        for (long i = 0; i < iter; i++) {
            json_t *j = json_loadb(payload, (size_t)pl, JSON_REJECT_DUPLICATES, NULL);
            if (json_object_size(j) != 9)
                bad_json++;
            json_decref(j);
        }
        int64_t t4 = now_ns();
        if (r >= 0) {
            ns_verify[r] = (double)(t1 - t0) / (double)iter;
            ns_reject[r] = (double)(t2 - t1) / (double)iter;
            ns_sign[r] = (double)(t3 - t2) / (double)iter;
            ns_json[r] = (double)(t4 - t3) / (double)iter;
        }
    }
    if (bad != 0 || bad_reject != 0 || bad_sign != 0 || bad_json != 0) {
        fprintf(stderr,
                "tmt-token-bench: %ld verifications not OK, %ld forgeries not refused as a bad "
                "signature, %ld signatures of another length, %ld payloads not read\n",
                bad, bad_reject, bad_sign, bad_json);
        return 1;
    }

    printf("token=%s\nkid=%s\nkey_hex=", tok[0], ring[1].kid);
    for (size_t i = 0; i < ring[1].secret_len; i++)
        printf("%02x", ring[1].secret[i]);
    printf("\nnow=%" PRId64 "\nskew=%d\npath=%s\ntoken_bytes=%zu\niter=%ld\nruns=%ld\n", now, SKEW,
           path_text, len[0], iter, runs);
    report("verify", ns_verify, (size_t)runs);
    report("reject", ns_reject, (size_t)runs);
    report("sign", ns_sign, (size_t)runs);
    report("json", ns_json, (size_t)runs);
    return 0;
}
