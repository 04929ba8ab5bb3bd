/*
 * Fuzz target: arbitrary bytes as request paths and queries, through the edge's cache keys
 * (edge/keys.h), the policy hint of a key, the query parameters of admin calls and the shield's
 * path grammar (origin/shield_path.h).
 *
 * Input: the bytes up to the first '?' are the path, the rest (if any) the query.
 *
 * Besides memory safety (every call reads an exact-size heap copy), it checks, aborting on a
 * violation:
 * - a normalized path starts with '/', has no empty, "." or ".." segment, only upper-case
 *   escapes of characters that are not unreserved, and normalizes to itself;
 * - a cache key is the normalized path, plus '?' and the query only outside /v/;
 * - a query parameter's value fits the buffer and is no longer than the query;
 * - a segment position in a hint comes from a key ending in ".m4s";
 * - a path the shield accepts has a canonical form it accepts again, unchanged, made of
 *   [A-Za-z0-9_./-] only.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "keys.h"
#include "shield_path.h"
#include "tmt/cache_policy.h"
#include "tmt/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) FUZZ_CHECK("request_paths", cond)
#define CAP 512

static bool unreserved(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void check_normalized(const char *k, size_t n)
{
    CHECK(n > 0 && k[0] == '/');
    size_t seg = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && k[i] != '/')
            continue;
        size_t len = i - seg - 1;
        bool last = i == n;
        /* "/" alone, or a trailing slash, is the one empty segment allowed */
        CHECK(len > 0 || (last && k[n - 1] == '/'));
        CHECK(!(len == 1 && k[seg + 1] == '.'));
        CHECK(!(len == 2 && k[seg + 1] == '.' && k[seg + 2] == '.'));
        seg = i;
    }
    for (size_t i = 0; i < n; i++) {
        if (k[i] != '%')
            continue;
        CHECK(i + 2 < n);
        int h = tmt_hex_value((unsigned char)k[i + 1]), l = tmt_hex_value((unsigned char)k[i + 2]);
        CHECK(h >= 0 && l >= 0);
        CHECK(!(k[i + 1] >= 'a' && k[i + 1] <= 'f') && !(k[i + 2] >= 'a' && k[i + 2] <= 'f'));
        CHECK(!unreserved((char)(h * 16 + l)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);
    const char *q = memchr(in, '?', size);
    struct tmt_slice path = {in, q != NULL ? (size_t)(q - in) : size};
    struct tmt_slice query = {q != NULL ? q + 1 : NULL, q != NULL ? size - path.len - 1 : 0};

    char norm[CAP], again[CAP], key[CAP];
    size_t n = tmt_http_path_normalize(path, norm, sizeof(norm));
    CHECK(n <= sizeof(norm));
    if (n > 0) {
        check_normalized(norm, n);
        size_t m = tmt_http_path_normalize((struct tmt_slice){norm, n}, again, sizeof(again));
        CHECK(m == n && memcmp(again, norm, n) == 0);
    }
    int status = 0;
    const char *why = NULL;
    size_t kl = edge_cache_key(path, query, key, sizeof(key), &status, &why);
    if (kl == 0) {
        CHECK((status == 400 && n == 0) || status == 414);
        CHECK(why != NULL);
    } else {
        CHECK(n > 0 && kl >= n && memcmp(key, norm, n) == 0);
        bool ours = n >= 3 && memcmp(norm, "/v/", 3) == 0;
        if (ours || query.p == NULL)
            CHECK(kl == n);
        else
            CHECK(kl == n + 1 + query.len && key[n] == '?' &&
                  memcmp(key + n + 1, query.p, query.len) == 0);
        struct tmt_policy_hint h;
        tmt_policy_hint_of_key(key, kl, &h);
        if (h.position > 0)
            CHECK(kl > 4 && memcmp(key + kl - 4, ".m4s", 4) == 0 && ours);
        if (!ours)
            CHECK(h.group == 0 && h.position == 0);
    }

    char val[64];
    long vl = tmt_http_query_param(query, "key", val, sizeof(val));
    CHECK(vl >= -2 && vl <= (long)sizeof(val) && (vl < 0 || (size_t)vl <= query.len));

    struct shield_path sp;
    int st = shield_parse_path(path, &sp);
    CHECK(st == 0 || st == 400 || st == 404);
    if (st == 0) {
        char canon[CAP];
        size_t cl = shield_canonical_key(&sp, canon, sizeof(canon));
        CHECK(cl > 3 && cl < sizeof(canon) && canon[cl] == '\0');
        for (size_t i = 0; i < cl; i++) {
            char c = canon[i];
            CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == '/');
        }
        struct shield_path sp2;
        CHECK(shield_parse_path((struct tmt_slice){canon, cl}, &sp2) == 0);
        char canon2[CAP];
        size_t cl2 = shield_canonical_key(&sp2, canon2, sizeof(canon2));
        CHECK(cl2 == cl && memcmp(canon, canon2, cl) == 0);
    }
    free(in);
    return 0;
}
