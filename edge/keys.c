/*
 * keys.c: cache keys of request paths (see keys.h).
 */
#include "keys.h"

#include <stdbool.h>
#include <string.h>

static bool unreserved(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t edge_normalize_path(struct tmt_slice in, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    if (in.len == 0 || in.p[0] != '/')
        return 0;
    size_t n = 0, i = 0;
    while (i < in.len) {
        while (i < in.len && in.p[i] == '/')
            i++;
        if (i == in.len)
            break;
        /* One segment, written after a '/' at seg and dropped or undone if it is . or .. */
        size_t seg = n;
        if (n + 1 > cap)
            return 0;
        out[n++] = '/';
        while (i < in.len && in.p[i] != '/') {
            char c = in.p[i];
            if (c != '%') {
                if (n + 1 > cap)
                    return 0;
                out[n++] = c;
                i++;
                continue;
            }
            int h = in.len - i >= 3 ? tmt_hex_value((unsigned char)in.p[i + 1]) : -1;
            int l = in.len - i >= 3 ? tmt_hex_value((unsigned char)in.p[i + 2]) : -1;
            if (h < 0 || l < 0 || n + 3 > cap)
                return 0;
            char d = (char)(h * 16 + l);
            if (unreserved(d)) {
                out[n++] = d;
            } else {
                out[n++] = '%';
                out[n++] = hx[h];
                out[n++] = hx[l];
            }
            i += 3;
        }
        size_t sl = n - seg - 1;
        if (sl == 1 && out[seg + 1] == '.') {
            n = seg;
        } else if (sl == 2 && out[seg + 1] == '.' && out[seg + 2] == '.') {
            if (seg == 0)
                return 0; /* above the root */
            n = seg;
            while (out[n - 1] != '/')
                n--;
            n--;
        }
    }
    if (n == 0 || in.p[in.len - 1] == '/') {
        if (n + 1 > cap)
            return 0;
        out[n++] = '/';
    }
    return n;
}

size_t edge_cache_key(struct tmt_slice path, struct tmt_slice query, char *key, size_t cap,
                      int *status, const char **why)
{
    size_t plen = edge_normalize_path(path, key, cap);
    if (plen == 0) {
        *status = 400;
        *why = "bad path";
        return 0;
    }
    bool ours = plen >= 3 && memcmp(key, "/v/", 3) == 0;
    size_t klen = plen;
    if (!ours && query.p != NULL) {
        if (plen + 1 + query.len > cap) {
            *status = 414;
            *why = "path and query too long";
            return 0;
        }
        key[klen++] = '?';
        memcpy(key + klen, query.p, query.len);
        klen += query.len;
    }
    return klen;
}
