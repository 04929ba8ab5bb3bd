/*
 * check.c: pure checks of caller input (see check.h).
 */
#include "check.h"

#include <ctype.h>
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