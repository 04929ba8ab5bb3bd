/*
 * test_tokens.c: the edge's token gate (edge/tokens.h): keys files and their line numbers,
 * protected and public prefixes, the token path split, checks with the verified-token cache
 * (hits, misses, expiry, revocation, key removal, eviction, per-worker caches), the lease
 * activity drain (bounded, deduplicated within and across workers),
 * and workers checking while the main thread replaces keys and revocations.
 *
 * Tokens are signed with tmt_token_sign; time is a parameter (NOW). Which path a check took is
 * read from the counters: tmt_edge_token_checks_total{result="cached"} grows when no signature
 * was checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmt/err.h"
#include "tmt/log.h"
#include "tmt/metrics.h"
#include "tmt/token.h"
#include "tokens.h"

#define NOW INT64_C(1767225600)

static struct tmt_slice sl(const char *s)
{
    return (struct tmt_slice){s, strlen(s)};
}

static struct tmt_token_key key_of(const char *kid, unsigned char fill)
{
    struct tmt_token_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.kid, sizeof(k.kid), "%s", kid);
    for (size_t i = 0; i < 32; i++)
        k.secret[i] = (unsigned char)(fill + i);
    k.secret_len = 32;
    return k;
}

struct tok {
    char s[TMT_TOKEN_MAX + 1];
};

/* A token for prefix /v/{asset}/ with this lease, expiring at exp. */
static struct tok mint(const struct tmt_token_key *k, const char *asset, const char *sub,
                       const char *dev, const char *lease, int64_t exp)
{
    struct tmt_token_claims c;
    memset(&c, 0, sizeof(c));
    strcpy(c.iss, "ctl-1");
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.dev, sizeof(c.dev), "%s", dev);
    snprintf(c.lease, sizeof(c.lease), "%s", lease);
    c.iat = NOW - 60;
    c.exp = exp;
    snprintf(c.prefix, sizeof(c.prefix), "/v/%s/", asset);
    struct tok t;
    long n = tmt_token_sign(k, &c, t.s, sizeof(t.s));
    assert_true(n > 0);
    return t;
}

/* A gate and its counters. */
struct fx {
    struct tmt_metrics *m;
    struct edge_tokens *t;
    unsigned workers;
};

static void fx_open(struct fx *f, unsigned workers, size_t cache_entries, const char *const *prot,
                    size_t n_prot, const char *const *pub, size_t n_pub)
{
    f->workers = workers;
    f->m = tmt_metrics_new(workers + 1);
    struct edge_tokens_opts o = {
        .protect = prot,
        .n_protect = n_prot,
        .public_prefixes = pub,
        .n_public = n_pub,
        .clock_skew_s = 30,
        .cache_entries = cache_entries,
        .n_workers = workers,
    };
    struct tmt_err err = {0};
    f->t = edge_tokens_new(&o, f->m, &err);
    if (f->t == NULL)
        print_error("edge_tokens_new: %s\n", err.msg);
    assert_non_null(f->t);
    tmt_metrics_seal(f->m);
}

static void fx_default(struct fx *f, unsigned workers, size_t cache_entries)
{
    static const char *const prot[] = {"/v/"};
    fx_open(f, workers, cache_entries, prot, 1, NULL, 0);
}

static void fx_close(struct fx *f)
{
    edge_tokens_free(&f->t);
    assert_null(f->t);
    tmt_metrics_free(&f->m);
}

static uint64_t metric(const struct fx *f, const char *name, const char *labels)
{
    long slot = tmt_metrics_find(f->m, name, labels);
    assert_true(slot >= 0);
    return tmt_metrics_value(f->m, (size_t)slot);
}

static uint64_t cached(const struct fx *f)
{
    return metric(f, "tmt_edge_token_checks_total", "result=\"cached\"");
}

static uint64_t verified(const struct fx *f)
{
    return metric(f, "tmt_edge_token_checks_total", "result=\"verified\"");
}

static uint64_t denied(const struct fx *f, const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    return metric(f, "tmt_edge_token_denied_total", labels);
}

/* Checks tok (NULL: none) for path on worker w at now: NULL when it passes, else the reason. */
static const char *check(struct fx *f, unsigned w, const char *tok, const char *path, int64_t now)
{
    const char *why = "(not set)";
    struct tmt_slice ts = tok != NULL ? sl(tok) : (struct tmt_slice){NULL, 0};
    if (edge_tokens_check(f->t, w, ts, sl(path), now, &why))
        return NULL;
    return why;
}

#define assert_passes(f, w, tok, path, now) assert_null(check(f, w, tok, path, now))
#define assert_refused(f, w, tok, path, now, reason)                                               \
    do {                                                                                           \
        const char *why_ = check(f, w, tok, path, now);                                            \
        assert_non_null(why_);                                                                     \
        assert_string_equal(why_, reason);                                                         \
    } while (0)

/* ---- keys files ---- */

/* 32 bytes 0x00..0x1f and 64 bytes of 0x41, in base64url. */
#define SECRET32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define SECRET64                                                                                   \
    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ"

static void test_parse_keys(void **state)
{
    (void)state;
    struct tmt_token_key keys[4];
    size_t n = 99;
    struct tmt_err err = {0};
    const char *good = "# token keys\n"
                       "\n"
                       "k1 " SECRET32 "\r\n"
                       "   \t# indented comment\n"
                       "\tk-2_B\t  " SECRET64 "   \n"
                       "k3 " SECRET32; /* no final newline */
    assert_int_equal(edge_tokens_parse_keys("keys", good, strlen(good), keys, 4, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0].kid, "k1");
    assert_int_equal(keys[0].secret_len, 32);
    for (unsigned i = 0; i < 32; i++)
        assert_int_equal(keys[0].secret[i], i);
    assert_string_equal(keys[1].kid, "k-2_B");
    assert_int_equal(keys[1].secret_len, 64);
    assert_int_equal(keys[1].secret[63], 'A');
    assert_string_equal(keys[2].kid, "k3");

    /* An empty file and a file of comments hold no keys and are fine. */
    assert_int_equal(edge_tokens_parse_keys("keys", "", 0, keys, 4, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(edge_tokens_parse_keys("keys", "# none\n\n", 8, keys, 4, &n, &err), 0);
    assert_int_equal(n, 0);

    static const struct {
        const char *text;
        const char *msg; /* the start of the message */
    } bad[] = {
        {"k1 " SECRET32 "\n\nk2\n", "f.keys:3: want two fields"},
        {"k1 " SECRET32 " extra\n", "f.keys:1: want two fields"},
        {"# c\nk.1 " SECRET32 "\n", "f.keys:2: a key id is 1 to 32"},
        {"k123456789012345678901234567890123 " SECRET32 "\n", "f.keys:1: a key id is 1 to 32"},
        {"k1 " SECRET32 "=\n", "f.keys:1: the secret of key k1 is not base64url"},
        {"k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+\n", "f.keys:1: the secret of key k1 is"},
        /* 31 bytes, 65 bytes, and something far too long */
        {"\n\n\nk1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg\n",
         "f.keys:4: the secret of key k1 must decode to 32 to 64 bytes"},
        {"k1 " SECRET64 "QQ\n", "f.keys:1: the secret of key k1 must decode to 32 to 64 bytes"},
        {"k1 " SECRET64 SECRET64 "\n", "f.keys:1: the secret of key k1 must decode"},
        {"k1 " SECRET32 "\nk2 " SECRET32 "\nk1 " SECRET64 "\n",
         "f.keys:3: key id k1 appears twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        int rc =
            edge_tokens_parse_keys("f.keys", bad[i].text, strlen(bad[i].text), keys, 4, &n, &err);
        if (rc != TMT_EINVAL || strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            print_error("case %zu: rc %d, message \"%s\", want \"%s...\"\n", i, rc, err.msg,
                        bad[i].msg);
        assert_int_equal(rc, TMT_EINVAL);
        assert_memory_equal(err.msg, bad[i].msg, strlen(bad[i].msg));
        /* Messages never carry a secret. */
        assert_null(strstr(err.msg, SECRET32));
        assert_null(strstr(err.msg, "QUFBQUFB"));
    }
    /* More keys than the caller's room. */
    const char *five =
        "a " SECRET32 "\nb " SECRET32 "\nc " SECRET32 "\nd " SECRET32 "\ne " SECRET32;
    assert_int_equal(edge_tokens_parse_keys("f.keys", five, strlen(five), keys, 4, &n, &err),
                     TMT_ELIMIT);
    assert_memory_equal(err.msg, "f.keys:5: more than 4 keys", 26);
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/tmt-test-tokens-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_keys_file(void **state)
{
    (void)state;
    struct fx f;
    fx_default(&f, 1, 64);
    struct tmt_token_key k1 = key_of("k1", 0), k2 = key_of("k2", 7);
    struct tok a = mint(&k1, "a1", "s", "d", "L1", NOW + 100);
    struct tok b = mint(&k2, "a1", "s", "d", "L1", NOW + 100);
    struct tmt_err err = {0};
    /* No keys yet: every token is refused. */
    assert_refused(&f, 0, a.s, "/v/a1/x", NOW, "unknown key id");

    char *good = write_file("k1 " SECRET32 "\n");
    assert_int_equal(edge_tokens_load_keys_file(f.t, good, &err), 0);
    assert_passes(&f, 0, a.s, "/v/a1/x", NOW);
    assert_refused(&f, 0, b.s, "/v/a1/x", NOW, "unknown key id");

    /* A bad file changes nothing, and says where. */
    char *bad = write_file("k2 " SECRET32 "\nk3 short\n");
    assert_int_equal(edge_tokens_load_keys_file(f.t, bad, &err), TMT_EINVAL);
    assert_non_null(strstr(err.msg, ":2: the secret of key k3"));
    assert_non_null(strstr(err.msg, bad));
    assert_passes(&f, 0, a.s, "/v/a1/x", NOW);
    assert_refused(&f, 0, b.s, "/v/a1/x", NOW, "unknown key id");
    assert_int_equal(edge_tokens_load_keys_file(f.t, "/nonexistent/tmt-keys", &err), TMT_EIO);
    assert_non_null(strstr(err.msg, "tokens.keys_file: /nonexistent/tmt-keys"));
    assert_passes(&f, 0, a.s, "/v/a1/x", NOW);

    /* A file over the size limit. */
    char *big_text = malloc(EDGE_TOKENS_KEYS_FILE_MAX + 10);
    memset(big_text, '#', EDGE_TOKENS_KEYS_FILE_MAX + 9);
    big_text[EDGE_TOKENS_KEYS_FILE_MAX + 9] = '\0';
    char *big = write_file(big_text);
    assert_int_equal(edge_tokens_load_keys_file(f.t, big, &err), TMT_ELIMIT);

    /* The key of b's kid replaces k1 (with the secret of key_of("k2", 7)). */
    unlink(good);
    free(good);
    char line[200];
    size_t m = tmt_b64url_encode(k2.secret, k2.secret_len, line + 3, sizeof(line) - 3);
    assert_true(m > 0);
    memcpy(line, "k2 ", 3);
    good = write_file(line);
    assert_int_equal(edge_tokens_load_keys_file(f.t, good, &err), 0);
    assert_refused(&f, 0, a.s, "/v/a1/x", NOW, "unknown key id");
    assert_passes(&f, 0, b.s, "/v/a1/x", NOW);

    for (char **p = (char *[]){good, bad, big, NULL}; *p != NULL; p++) {
        unlink(*p);
        free(*p);
    }
    free(big_text);
    fx_close(&f);
}

/* ---- paths ---- */

static void test_scope_and_split(void **state)
{
    (void)state;
    struct fx f;
    static const char *const prot[] = {"/v/", "/v/trailers/secret/", "/live/"};
    static const char *const pub[] = {"/v/trailers/", "/v/open/"};
    fx_open(&f, 1, 16, prot, 3, pub, 2);
    static const struct {
        const char *path;
        enum edge_tokens_scope want;
    } rows[] = {
        {"/v/a1/master.m3u8", EDGE_TOKENS_PROTECTED},
        {"/v/", EDGE_TOKENS_PROTECTED},
        {"/v", EDGE_TOKENS_OPEN},
        {"/video/x", EDGE_TOKENS_OPEN},
        {"/other/x?q=1", EDGE_TOKENS_OPEN},
        {"/v/a1/x?q=1", EDGE_TOKENS_PROTECTED},
        {"/v/trailers/t1/1.m4s", EDGE_TOKENS_PUBLIC},
        {"/v/trailers/secret/1.m4s", EDGE_TOKENS_PROTECTED},
        {"/v/open/x", EDGE_TOKENS_PUBLIC},
        {"/live/x", EDGE_TOKENS_PROTECTED},
        {"/", EDGE_TOKENS_OPEN},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum edge_tokens_scope got = edge_tokens_scope(f.t, rows[i].path, strlen(rows[i].path));
        if (got != rows[i].want)
            print_error("%s: scope %d, want %d\n", rows[i].path, got, rows[i].want);
        assert_int_equal(got, rows[i].want);
    }
    fx_close(&f);

    /* A prefix in both lists is public (tokens.public=/v/ opens the default protect). */
    static const char *const both[] = {"/v/"};
    fx_open(&f, 1, 16, both, 1, both, 1);
    assert_int_equal(edge_tokens_scope(f.t, "/v/a/x", 6), EDGE_TOKENS_PUBLIC);
    assert_int_equal(edge_tokens_scope(f.t, "/w/a/x", 6), EDGE_TOKENS_OPEN);
    fx_close(&f);
    fx_open(&f, 1, 16, NULL, 0, NULL, 0);
    assert_int_equal(edge_tokens_scope(f.t, "/v/a/x", 6), EDGE_TOKENS_OPEN);
    fx_close(&f);

    /* Prefixes that no normalized path could start with are refused. */
    static const char *const bad[] = {"v/",   "/v/../w/", "/v//x/",  "/v/./",
                                      "/v?x", "/v/%7e/",  "/v/%2f/", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tmt_err err = {0};
        struct edge_tokens_opts o = {.protect = &bad[i], .n_protect = 1, .n_workers = 1};
        struct edge_tokens *t = edge_tokens_new(&o, NULL, &err);
        if (t != NULL)
            print_error("prefix \"%s\" accepted\n", bad[i]);
        assert_null(t);
        assert_non_null(strstr(err.msg, "tokens.protect"));
        o = (struct edge_tokens_opts){.public_prefixes = &bad[i], .n_public = 1, .n_workers = 1};
        assert_null(edge_tokens_new(&o, NULL, &err));
        assert_non_null(strstr(err.msg, "tokens.public"));
    }

    struct tmt_slice tok, rest;
    assert_int_equal(edge_tokens_split(sl("/t/abc.def/v/a1/x"), &tok, &rest), 1);
    assert_int_equal(tok.len, 7);
    assert_memory_equal(tok.p, "abc.def", 7);
    assert_int_equal(rest.len, 7);
    assert_memory_equal(rest.p, "/v/a1/x", 7);
    assert_int_equal(edge_tokens_split(sl("/v/a1/x"), &tok, &rest), 0);
    assert_null(tok.p);
    assert_int_equal(rest.len, 7);
    assert_int_equal(edge_tokens_split(sl("/t//v/a1/x"), &tok, &rest), -1);
    assert_int_equal(edge_tokens_split(sl("/t/abc"), &tok, &rest), -1);
    assert_int_equal(edge_tokens_split(sl("/t/"), &tok, &rest), -1);
    assert_int_equal(edge_tokens_split(sl("/tx/abc/v/"), &tok, &rest), 0);
}

/* ---- checks and the cache ---- */

static void test_check_and_cache(void **state)
{
    (void)state;
    struct fx f;
    fx_default(&f, 2, 64);
    struct tmt_token_key k1 = key_of("k1", 0), k2 = key_of("k2", 100);
    struct tmt_token_key ring[] = {k1, k2};
    edge_tokens_set_keys(f.t, ring, 2);
    struct tok a = mint(&k1, "a1", "s1", "d1", "L1", NOW + 100);

    assert_refused(&f, 0, NULL, "/v/a1/x", NOW, "token required");
    assert_int_equal(denied(&f, "missing"), 1);

    /* Verified once, then answered from the cache. */
    assert_passes(&f, 0, a.s, "/v/a1/1.m4s", NOW);
    assert_int_equal(verified(&f), 1);
    assert_int_equal(cached(&f), 0);
    assert_passes(&f, 0, a.s, "/v/a1/720p/2.m4s", NOW + 1);
    assert_int_equal(verified(&f), 1);
    assert_int_equal(cached(&f), 1);

    /* Cached, and still held to its scope (normalization included). */
    assert_refused(&f, 0, a.s, "/v/a2/1.m4s", NOW, "path outside token scope");
    assert_refused(&f, 0, a.s, "/v/a1/../a2/1.m4s", NOW, "path outside token scope");
    assert_refused(&f, 0, a.s, "/v/a1/%2e%2e/a2/1.m4s", NOW, "path outside token scope");
    assert_refused(&f, 0, a.s, "/v/a1/../../x", NOW, "path outside token scope");
    assert_passes(&f, 0, a.s, "/v/a1//./720p/%31.m4s", NOW);
    assert_int_equal(verified(&f), 1);
    assert_int_equal(cached(&f), 6);
    assert_int_equal(denied(&f, "scope"), 4);

    /* The other worker has a cache of its own. */
    assert_passes(&f, 1, a.s, "/v/a1/1.m4s", NOW);
    assert_int_equal(verified(&f), 2);

    /* Revoked while cached: refused from the next request on, and again once the set changes. */
    const char *rev[] = {"L0", "L1"};
    edge_tokens_set_revoked(f.t, rev, 2);
    assert_refused(&f, 0, a.s, "/v/a1/1.m4s", NOW, "revoked lease");
    assert_refused(&f, 1, a.s, "/v/a1/1.m4s", NOW, "revoked lease");
    assert_refused(&f, 0, a.s, "/v/a1/1.m4s", NOW, "revoked lease");
    assert_int_equal(verified(&f), 2);
    assert_int_equal(denied(&f, "revoked"), 3);
    edge_tokens_set_revoked(f.t, rev, 1);
    assert_passes(&f, 0, a.s, "/v/a1/1.m4s", NOW);
    assert_int_equal(verified(&f), 2);

    /* Its key removed from the ring: verified again, and refused. */
    edge_tokens_set_keys(f.t, &k2, 1);
    assert_refused(&f, 0, a.s, "/v/a1/1.m4s", NOW, "unknown key id");
    assert_int_equal(verified(&f), 3);
    assert_int_equal(denied(&f, "signature"), 1);
    edge_tokens_set_keys(f.t, ring, 2);
    assert_passes(&f, 0, a.s, "/v/a1/1.m4s", NOW);
    assert_int_equal(verified(&f), 4);
    uint64_t c0 = cached(&f);
    /* The same keys again change nothing: the cache stays. */
    edge_tokens_set_keys(f.t, ring, 2);
    assert_passes(&f, 0, a.s, "/v/a1/1.m4s", NOW);
    assert_int_equal(verified(&f), 4);
    assert_int_equal(cached(&f), c0 + 1);
    /* A key with the same id and another secret is another ring. */
    struct tmt_token_key k1b = key_of("k1", 50);
    struct tmt_token_key ring2[] = {k1b, k2};
    edge_tokens_set_keys(f.t, ring2, 2);
    assert_refused(&f, 0, a.s, "/v/a1/1.m4s", NOW, "bad signature");
    edge_tokens_set_keys(f.t, ring, 2);

    /* Expiry while cached. */
    struct tok s = mint(&k1, "a1", "s1", "d1", "L2", NOW + 10);
    assert_passes(&f, 0, s.s, "/v/a1/1.m4s", NOW);
    c0 = cached(&f);
    assert_passes(&f, 0, s.s, "/v/a1/1.m4s", NOW + 9);
    assert_refused(&f, 0, s.s, "/v/a1/1.m4s", NOW + 10, "expired token");
    assert_int_equal(cached(&f), c0 + 2);
    assert_refused(&f, 0, s.s, "/v/a1/1.m4s", NOW + 11, "expired token");
    assert_int_equal(denied(&f, "time"), 2);

    /* Refusals by the token module's verdicts, none of them cached. */
    struct tok forged = a;
    size_t len = strlen(forged.s);
    forged.s[len - 2] = forged.s[len - 2] == 'A' ? 'B' : 'A';
    uint64_t v0 = verified(&f);
    assert_refused(&f, 0, forged.s, "/v/a1/1.m4s", NOW, "bad signature");
    assert_refused(&f, 0, forged.s, "/v/a1/1.m4s", NOW, "bad signature");
    assert_int_equal(verified(&f), v0 + 2);
    struct tmt_token_key k9 = key_of("k9", 3);
    struct tok unknown = mint(&k9, "a1", "s1", "d1", "L1", NOW + 100);
    assert_refused(&f, 0, unknown.s, "/v/a1/1.m4s", NOW, "unknown key id");
    assert_refused(&f, 0, "not-a-token", "/v/a1/1.m4s", NOW, "malformed token");
    /* {"alg":"none","kid":"k1"} with a's payload and no signature */
    char none[TMT_TOKEN_MAX + 1];
    const char *hdr = "{\"alg\":\"none\",\"kid\":\"k1\"}";
    size_t hn = tmt_b64url_encode(hdr, strlen(hdr), none, sizeof(none));
    const char *dot = strchr(a.s, '.');
    const char *dot2 = strchr(dot + 1, '.');
    memcpy(none + hn, dot, (size_t)(dot2 - dot + 1));
    none[hn + (size_t)(dot2 - dot + 1)] = '\0';
    assert_refused(&f, 0, none, "/v/a1/1.m4s", NOW, "unsupported algorithm");
    assert_int_equal(denied(&f, "malformed"), 2);

    /* Not yet valid (iat in the future beyond the skew), then valid. */
    struct tmt_token_claims c;
    memset(&c, 0, sizeof(c));
    strcpy(c.iss, "ctl-1");
    strcpy(c.sub, "s1");
    strcpy(c.lease, "L3");
    strcpy(c.prefix, "/v/a1/");
    c.iat = NOW + 100;
    c.nbf = NOW + 100;
    c.exp = NOW + 1000;
    struct tok later;
    assert_true(tmt_token_sign(&k1, &c, later.s, sizeof(later.s)) > 0);
    assert_refused(&f, 0, later.s, "/v/a1/1.m4s", NOW, "token not yet valid");
    assert_passes(&f, 0, later.s, "/v/a1/1.m4s", NOW + 71);
    fx_close(&f);
}

/* A cache of four entries on one worker: one set, the least recent goes first. */
static void test_cache_eviction(void **state)
{
    (void)state;
    struct fx f;
    fx_default(&f, 1, 4);
    struct tmt_token_key k1 = key_of("k1", 0);
    edge_tokens_set_keys(f.t, &k1, 1);
    struct tok t[5];
    char lease[16];
    for (int i = 0; i < 5; i++) {
        snprintf(lease, sizeof(lease), "L%d", i);
        t[i] = mint(&k1, "a1", "s", "d", lease, NOW + 100);
    }
    for (int i = 0; i < 4; i++)
        assert_passes(&f, 0, t[i].s, "/v/a1/x", NOW);
    assert_passes(&f, 0, t[0].s, "/v/a1/x", NOW); /* 0 is now the most recent */
    assert_int_equal(verified(&f), 4);
    assert_int_equal(cached(&f), 1);
    assert_passes(&f, 0, t[4].s, "/v/a1/x", NOW); /* evicts 1 */
    assert_passes(&f, 0, t[0].s, "/v/a1/x", NOW);
    assert_passes(&f, 0, t[2].s, "/v/a1/x", NOW);
    assert_int_equal(verified(&f), 5);
    assert_passes(&f, 0, t[1].s, "/v/a1/x", NOW);
    assert_int_equal(verified(&f), 6);
    fx_close(&f);

    /* No cache: every check verifies, and every rule still holds. */
    fx_default(&f, 1, 0);
    edge_tokens_set_keys(f.t, &k1, 1);
    assert_passes(&f, 0, t[0].s, "/v/a1/x", NOW);
    assert_passes(&f, 0, t[0].s, "/v/a1/x", NOW);
    assert_refused(&f, 0, t[0].s, "/v/a2/x", NOW, "path outside token scope");
    const char *rev[] = {"L0"};
    edge_tokens_set_revoked(f.t, rev, 1);
    assert_refused(&f, 0, t[0].s, "/v/a1/x", NOW, "revoked lease");
    assert_passes(&f, 0, t[1].s, "/v/a1/x", NOW);
    assert_refused(&f, 0, t[1].s, "/v/a1/x", NOW + 100, "expired token");
    assert_int_equal(verified(&f), 6);
    assert_int_equal(cached(&f), 0);
    fx_close(&f);
}

/* ---- activity ---- */

struct seen {
    size_t n;
    char rows[8][200];
};

static void on_activity(void *arg, const char *sub, const char *dev, const char *lease)
{
    struct seen *s = arg;
    if (s->n < 8)
        snprintf(s->rows[s->n], sizeof(s->rows[0]), "%s|%s|%s", sub, dev, lease);
    s->n++;
}

static bool seen_has(const struct seen *s, const char *row)
{
    for (size_t i = 0; i < s->n && i < 8; i++) {
        if (strcmp(s->rows[i], row) == 0)
            return true;
    }
    return false;
}

static void count_activity(void *arg, const char *sub, const char *dev, const char *lease)
{
    (void)sub;
    (void)dev;
    (void)lease;
    (*(size_t *)arg)++;
}

static void test_activity(void **state)
{
    (void)state;
    struct fx f;
    fx_default(&f, 2, 64);
    struct tmt_token_key k1 = key_of("k1", 0);
    edge_tokens_set_keys(f.t, &k1, 1);
    struct tok a = mint(&k1, "a1", "u1", "d1", "L1", NOW + 100);
    struct tok a2 = mint(&k1, "a2", "u1", "d1", "L1", NOW + 100); /* same triple */
    struct tok b = mint(&k1, "a1", "u2", "d2", "L2", NOW + 100);
    struct tok nolease = mint(&k1, "a1", "u3", "d3", "", NOW + 100);
    struct seen s = {0};
    assert_int_equal(edge_tokens_drain_activity(f.t, on_activity, &s), 0);

    for (int i = 0; i < 3; i++) {
        assert_passes(&f, 0, a.s, "/v/a1/x", NOW);
        assert_passes(&f, 0, a2.s, "/v/a2/x", NOW);
        assert_passes(&f, 1, a.s, "/v/a1/x", NOW);
        assert_passes(&f, 1, b.s, "/v/a1/x", NOW);
        assert_passes(&f, 1, nolease.s, "/v/a1/x", NOW);
    }
    /* Refused requests are no activity. */
    assert_refused(&f, 0, mint(&k1, "a9", "u4", "d4", "L4", NOW + 100).s, "/v/a1/x", NOW,
                   "path outside token scope");
    assert_int_equal(edge_tokens_drain_activity(f.t, on_activity, &s), 2);
    assert_true(seen_has(&s, "u1|d1|L1"));
    assert_true(seen_has(&s, "u2|d2|L2"));
    /* Nothing since: nothing to report; then only what came after. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(edge_tokens_drain_activity(f.t, on_activity, &s), 0);
    assert_passes(&f, 0, b.s, "/v/a1/x", NOW);
    assert_int_equal(edge_tokens_drain_activity(f.t, on_activity, &s), 1);
    assert_true(seen_has(&s, "u2|d2|L2"));
    fx_close(&f);

    /* Bounded per worker: the rest is counted. */
    fx_default(&f, 1, 64);
    edge_tokens_set_keys(f.t, &k1, 1);
    const size_t extra = 5;
    for (size_t i = 0; i < EDGE_TOKENS_ACTIVITY_MAX + extra; i++) {
        char lease[32];
        snprintf(lease, sizeof(lease), "lease-%zu", i);
        struct tok t = mint(&k1, "a1", "u", "d", lease, NOW + 100);
        assert_passes(&f, 0, t.s, "/v/a1/x", NOW);
    }
    assert_int_equal(metric(&f, "tmt_edge_token_activity_dropped_total", NULL), extra);
    /* Another token with a triple already in the full set finds it there: nothing dropped. */
    struct tok again = mint(&k1, "a2", "u", "d", "lease-0", NOW + 100);
    assert_passes(&f, 0, again.s, "/v/a2/x", NOW);
    size_t calls = 0;
    assert_int_equal(edge_tokens_drain_activity(f.t, count_activity, &calls),
                     EDGE_TOKENS_ACTIVITY_MAX);
    assert_int_equal(calls, EDGE_TOKENS_ACTIVITY_MAX);
    assert_int_equal(metric(&f, "tmt_edge_token_activity_dropped_total", NULL), extra);
    assert_int_equal(edge_tokens_drain_activity(f.t, count_activity, &calls), 0);
    fx_close(&f);
}

/* ---- threads ---- */

struct worker_arg {
    struct fx *f;
    unsigned idx;
    const struct tok *toks;
    size_t n_toks;
    size_t passed, refused;
};

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    for (size_t i = 0; i < 20000; i++) {
        const struct tok *t = &wa->toks[i % wa->n_toks];
        const char *why;
        if (edge_tokens_check(wa->f->t, wa->idx, sl(t->s), sl("/v/a1/x"), NOW, &why))
            wa->passed++;
        else
            wa->refused++;
    }
    return NULL;
}

/* Workers check while the main thread swaps keys and revocations and drains: the sanitizer
 * builds watch the references; every answer must be one of the two rings' answers. */
static void test_threads(void **state)
{
    (void)state;
    struct fx f;
    fx_default(&f, 2, 64);
    struct tmt_token_key k1 = key_of("k1", 0), k2 = key_of("k2", 9);
    struct tok toks[8];
    for (int i = 0; i < 8; i++) {
        char lease[16];
        snprintf(lease, sizeof(lease), "L%d", i);
        toks[i] = mint(i % 2 ? &k2 : &k1, "a1", "u", "d", lease, NOW + 100);
    }
    edge_tokens_set_keys(f.t, &k1, 1);
    struct worker_arg wa[2];
    pthread_t th[2];
    for (unsigned i = 0; i < 2; i++) {
        wa[i] = (struct worker_arg){.f = &f, .idx = i, .toks = toks, .n_toks = 8};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &wa[i]), 0);
    }
    size_t calls = 0;
    for (int i = 0; i < 300; i++) {
        edge_tokens_set_keys(f.t, i % 2 ? &k2 : &k1, 1);
        const char *rev[] = {"L2", "L3"};
        edge_tokens_set_revoked(f.t, rev, (size_t)(i % 3));
        (void)edge_tokens_drain_activity(f.t, count_activity, &calls);
    }
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(wa[0].passed + wa[0].refused, 20000);
    assert_true(wa[0].passed > 0 || wa[1].passed > 0);
    /* Settled: k2 only, L3 revoked. */
    edge_tokens_set_keys(f.t, &k2, 1);
    const char *rev[] = {"L3"};
    edge_tokens_set_revoked(f.t, rev, 1);
    for (unsigned w = 0; w < 2; w++) {
        assert_refused(&f, w, toks[0].s, "/v/a1/x", NOW, "unknown key id");
        assert_passes(&f, w, toks[1].s, "/v/a1/x", NOW);
        assert_refused(&f, w, toks[3].s, "/v/a1/x", NOW, "revoked lease");
    }
    fx_close(&f);
}

int main(void)
{
    tmt_log_set_level(TMT_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keys),      cmocka_unit_test(test_keys_file),
        cmocka_unit_test(test_scope_and_split), cmocka_unit_test(test_check_and_cache),
        cmocka_unit_test(test_cache_eviction),  cmocka_unit_test(test_activity),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
