/*
 * check.c: pure checks of caller input (see check.h).
 */
#include "check.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "tmt/token.h"

#define SHOW_ID_MAX 48

void cp_random(void *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1)
        tmt_panic("RAND_bytes failed", __func__, __FILE__, __LINE__);
}

bool cp_id_ok(struct tmt_slice s, size_t max)
{
    if (s.len == 0 || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

bool cp_show_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SHOW_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

bool cp_lang_ok(const char *s)
{
    size_t i = 0;
    while (isalpha((unsigned char)s[i]))
        i++;
    if (i < 2 || i > 3)
        return false;
    while (s[i] == '-') {
        size_t j = ++i;
        while (isalnum((unsigned char)s[i]))
            i++;
        if (i - j < 1 || i - j > 8)
            return false;
    }
    return s[i] == '\0';
}

bool cp_email_normalize(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n < 3 || n > 254 || n >= cap)
        return false;
    const char *at = strchr(in, '@');
    if (at == NULL || at == in || strchr(at + 1, '@') != NULL)
        return false;
    const char *dot = strchr(at + 1, '.');
    if (dot == NULL || at[1] == '.' || in[n - 1] == '.')
        return false;
    for (size_t i = 0; i <= n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (i < n && (ch <= ' ' || ch == 0x7f))
            return false;
        out[i] = (char)tolower(ch);
    }
    return true;
}

bool cp_path_match(struct tmt_slice path, const char *pat, struct tmt_slice *args, size_t max_args)
{
    size_t i = 0, na = 0;
    const char *p = pat;
    for (;;) {
        const char *pe = strchr(p, '/');
        size_t pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
        size_t s = i;
        while (i < path.len && path.p[i] != '/')
            i++;
        struct tmt_slice seg = {path.p + s, i - s};
        if (pl == 1 && p[0] == '*') {
            if (seg.len == 0 || na == max_args)
                return false;
            args[na++] = seg;
        } else if (seg.len != pl || memcmp(seg.p, p, pl) != 0) {
            return false;
        }
        if (pe == NULL)
            return i == path.len;
        if (i == path.len)
            return false;
        i++; /* the '/' */
        p = pe + 1;
    }
}

static void ticket_mac(const unsigned char key[CP_TICKET_KEY_LEN], const char *msg, size_t len,
                       char out[23])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, CP_TICKET_KEY_LEN, (const unsigned char *)msg, len, mac, &ml);
    tmt_b64url_encode(mac, 16, out, 23);
}

size_t cp_ticket_make(const unsigned char key[CP_TICKET_KEY_LEN], const char *lease, int64_t exp,
                      char *out, size_t cap)
{
    if (!cp_id_ok((struct tmt_slice){lease, strlen(lease)}, 64) || exp < 0)
        return 0;
    int n = snprintf(out, cap, "%s.%lld", lease, (long long)exp);
    if (n < 0 || (size_t)n + 24 > cap)
        return 0;
    char mac[23];
    ticket_mac(key, out, (size_t)n, mac);
    out[n] = '.';
    memcpy(out + n + 1, mac, 23);
    return (size_t)n + 23;
}

bool cp_ticket_parse(const unsigned char key[CP_TICKET_KEY_LEN], struct tmt_slice t, char *lease,
                     size_t cap, int64_t *exp)
{
    if (t.len < 26 || t.len > CP_TICKET_MAX)
        return false;
    size_t body = t.len - 23;
    if (t.p[body] != '.')
        return false;
    char mac[23];
    ticket_mac(key, t.p, body, mac);
    if (CRYPTO_memcmp(mac, t.p + body + 1, 22) != 0)
        return false;
    /* The mac matched, so the rest was made by cp_ticket_make; still parse it strictly. */
    const char *dot = memchr(t.p, '.', body);
    if (dot == NULL)
        return false;
    struct tmt_slice l = {t.p, (size_t)(dot - t.p)};
    if (!cp_id_ok(l, 64) || l.len >= cap)
        return false;
    int64_t v = 0;
    size_t digits = 0;
    for (const char *q = dot + 1; q < t.p + body; q++, digits++) {
        if (*q < '0' || *q > '9' || digits == 18)
            return false;
        v = v * 10 + (*q - '0');
    }
    if (digits == 0)
        return false;
    memcpy(lease, l.p, l.len);
    lease[l.len] = '\0';
    *exp = v;
    return true;
}

static bool trusted_addr(const char *a, size_t len, const char *const *trusted, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(trusted[i]) == len && memcmp(trusted[i], a, len) == 0)
            return true;
    return false;
}

bool cp_client_addr(const char *peer, struct tmt_slice xff, const char *const *trusted,
                    size_t n_trusted, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer);
    if (xff.len == 0 || !trusted_addr(peer, strlen(peer), trusted, n_trusted))
        return false;
    size_t end = xff.len;
    bool from_header = false;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff.p[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (xff.p[a] == ' ' || xff.p[a] == '\t'))
            a++;
        while (b > a && (xff.p[b - 1] == ' ' || xff.p[b - 1] == '\t'))
            b--;
        bool addr = b > a && b - a < 64;
        for (size_t i = a; addr && i < b; i++)
            addr = isxdigit((unsigned char)xff.p[i]) || xff.p[i] == '.' || xff.p[i] == ':';
        if (!addr)
            break;
        if (b - a < cap) {
            memcpy(out, xff.p + a, b - a);
            out[b - a] = '\0';
            from_header = true;
        }
        if (!trusted_addr(xff.p + a, b - a, trusted, n_trusted))
            break;
        end = start > 0 ? start - 1 : 0;
    }
    return from_header;
}

/* ---- report batches ---- */

#define LAT_BUCKETS 14
#define FIELDS_MAX 64
#define ASSET_ID_MAX 64

static bool name_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '_'))
            return false;
    }
    return true;
}

/* An object of at most FIELDS_MAX non-negative integers with plain names. */
static bool int_object_ok(json_t *o)
{
    if (o == NULL)
        return true;
    if (!json_is_object(o) || json_object_size(o) > FIELDS_MAX)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!name_ok(k) || !json_is_integer(v) || json_integer_value(v) < 0)
            return false;
    }
    return true;
}

static bool hex_ok(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

#define CP_REPORT_ASSETS_MAX 100

/* Top assets as edges send them: at most 100 {"asset","requests","bytes"}. */
static bool assets_ok(json_t *a)
{
    if (a == NULL)
        return true;
    if (!json_is_array(a) || json_array_size(a) > 100)
        return false;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i);
        const char *id = json_string_value(json_object_get(x, "asset"));
        json_t *r = json_object_get(x, "requests"), *b = json_object_get(x, "bytes");
        if (!json_is_object(x) || json_object_size(x) != 3 || id == NULL ||
            !cp_id_ok((struct tmt_slice){id, strlen(id)}, ASSET_ID_MAX) || !json_is_integer(r) ||
            json_integer_value(r) < 0 || !json_is_integer(b) || json_integer_value(b) < 0)
            return false;
    }
    return true;
}

/* A miss-ratio curve as edges send it (absent is fine). */
static bool mrc_ok(json_t *m)
{
    if (m == NULL)
        return true;
    json_t *pts = json_object_get(m, "points");
    if (!json_is_object(m) || json_object_size(m) != 4 ||
        !json_is_number(json_object_get(m, "rate")) ||
        !(json_number_value(json_object_get(m, "rate")) > 0 &&
          json_number_value(json_object_get(m, "rate")) <= 1) ||
        !json_is_integer(json_object_get(m, "sampled")) ||
        !json_is_integer(json_object_get(m, "budget")) ||
        json_integer_value(json_object_get(m, "budget")) <= 0 || !json_is_array(pts) ||
        json_array_size(pts) == 0 || json_array_size(pts) > 64)
        return false;
    json_int_t last = 0;
    for (size_t i = 0; i < json_array_size(pts); i++) {
        json_t *p = json_array_get(pts, i);
        if (!json_is_array(p) || json_array_size(p) != 3 ||
            !json_is_integer(json_array_get(p, 0)) ||
            json_integer_value(json_array_get(p, 0)) <= last)
            return false;
        last = json_integer_value(json_array_get(p, 0));
        for (size_t k = 1; k < 3; k++) {
            json_t *r = json_array_get(p, k);
            if (!json_is_number(r) || !(json_number_value(r) >= 0 && json_number_value(r) <= 1))
                return false;
        }
    }
    return true;
}

const char *cp_report_batch_check(json_t *b, int64_t latest_ms, int64_t oldest_ms)
{
    const char *boot = json_string_value(json_object_get(b, "boot"));
    json_t *seq = json_object_get(b, "seq"), *from = json_object_get(b, "from_ms"),
           *to = json_object_get(b, "to_ms"), *lat = json_object_get(b, "latency_ms");
    const char *why = NULL;
    if (!hex_ok(boot, 32))
        why = "\"boot\" is 1 to 32 hex digits";
    else if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        why = "\"seq\" is an integer from 1";
    else if (!json_is_integer(from) || !json_is_integer(to) || json_integer_value(from) < 0 ||
             json_integer_value(to) < json_integer_value(from))
        why = "\"from_ms\" and \"to_ms\" are unix milliseconds, from_ms <= to_ms";
    else if (!int_object_ok(json_object_get(b, "counters")) ||
             !int_object_ok(json_object_get(b, "gauges")))
        why = "\"counters\" and \"gauges\" are objects of at most 64 non-negative integers named "
              "[a-z0-9_]";
    else if (lat != NULL && (!json_is_array(lat) || json_array_size(lat) > LAT_BUCKETS))
        why = "\"latency_ms\" is an array of at most 14 counts";
    for (size_t i = 0; why == NULL && i < json_array_size(lat); i++) {
        json_t *x = json_array_get(lat, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            why = "\"latency_ms\" holds non-negative integers";
    }
    const char *role = json_string_value(json_object_get(b, "role"));
    if (why == NULL && json_object_get(b, "role") != NULL &&
        (role == NULL || (strcmp(role, "edge") != 0 && strcmp(role, "shield") != 0)))
        why = "\"role\" is edge or shield";
    if (why == NULL && !assets_ok(json_object_get(b, "top_assets")))
        why = "\"top_assets\" is at most 100 {\"asset\", \"requests\", \"bytes\"}";
    if (why == NULL && !mrc_ok(json_object_get(b, "mrc")))
        why = "\"mrc\" is {\"rate\", \"sampled\", \"budget\", \"points\": [[size, miss_ratio, "
              "byte_miss_ratio], ...]} with at most 64 points by increasing size, ratios in [0, 1]";
    int64_t to_ms = json_integer_value(to);
    if (why == NULL && to_ms > latest_ms)
        why = "\"to_ms\" is in the future (is the node's clock right?)";
    if (why == NULL && to_ms < oldest_ms)
        why = "the batch is older than reports.minute_retention";
    return why;
}

int cp_zstd_inflate(const char *p, size_t len, size_t max, char **out, size_t *out_len)
{
    ZSTD_DCtx *z = ZSTD_createDCtx();
    if (z == NULL)
        return -1;
    size_t cap = 64 * 1024, n = 0;
    char *buf = tmt_xmalloc(cap + 1);
    ZSTD_inBuffer in = {p, len, 0};
    bool ok = true, done = false;
    while (ok && !done) {
        if (n == cap) {
            if (cap >= max) {
                ok = false;
                break;
            }
            cap = TMT_MIN(cap * 2, max);
            buf = tmt_xrealloc(buf, cap + 1);
        }
        ZSTD_outBuffer ob = {buf + n, cap - n, 0};
        size_t r = ZSTD_decompressStream(z, &ob, &in);
        n += ob.pos;
        if (ZSTD_isError(r))
            ok = false;
        else if (r == 0)
            done = in.pos == in.size; /* one frame, nothing after it */
        else if (in.pos == in.size && ob.pos < ob.size)
            ok = false; /* the frame is cut short */
        if (r == 0 && in.pos < in.size)
            ok = false;
    }
    ZSTD_freeDCtx(z);
    if (!ok) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}
