/*
 * shield_path.c: the shield's request paths (see shield_path.h).
 */
#include "shield_path.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Copies a path segment [p, end) into out if it is an id; false otherwise. */
static bool take_id(const char *p, const char *end, char *out)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n > TMT_PACK_ID_MAX)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return tmt_pack_id_valid(out);
}

int shield_parse_path(struct tmt_slice path, struct shield_path *rp)
{
    const char *p = path.p, *end = path.p + path.len;
    if (path.len < 4 || memcmp(p, "/v/", 3) != 0)
        return 404;
    p += 3;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL)
        return 404;
    if (!take_id(p, slash, rp->asset))
        return 400;
    p = slash + 1;
    size_t rest = (size_t)(end - p);
    if (rest == 11 && memcmp(p, "master.m3u8", 11) == 0) {
        rp->kind = K_MASTER;
        return 0;
    }
    if (rest == 12 && memcmp(p, "manifest.mpd", 12) == 0) {
        rp->kind = K_MPD;
        return 0;
    }
    slash = memchr(p, '/', rest);
    if (slash == NULL || !take_id(p, slash, rp->rend))
        return 404;
    p = slash + 1;
    rest = (size_t)(end - p);
    if (rest == 10 && memcmp(p, "index.m3u8", 10) == 0) {
        rp->kind = K_MEDIA_PL;
        return 0;
    }
    if (rest == 8 && memcmp(p, "init.mp4", 8) == 0) {
        rp->kind = K_INIT;
        return 0;
    }
    /* {n}.m4s: n from 1, no leading zero, at most 9 digits */
    unsigned n = 0;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9' && q - p < 9)
        n = n * 10 + (unsigned)(*q++ - '0');
    if (q == p || *p == '0' || end - q != 4 || memcmp(q, ".m4s", 4) != 0)
        return 404;
    rp->kind = K_SEGMENT;
    rp->n = n;
    return 0;
}

size_t shield_canonical_key(const struct shield_path *rp, char *out, size_t cap)
{
    int n;
    switch (rp->kind) {
    case K_MASTER:
        n = snprintf(out, cap, "/v/%s/master.m3u8", rp->asset);
        break;
    case K_MPD:
        n = snprintf(out, cap, "/v/%s/manifest.mpd", rp->asset);
        break;
    case K_MEDIA_PL:
        n = snprintf(out, cap, "/v/%s/%s/index.m3u8", rp->asset, rp->rend);
        break;
    case K_INIT:
        n = snprintf(out, cap, "/v/%s/%s/init.mp4", rp->asset, rp->rend);
        break;
    default:
        n = snprintf(out, cap, "/v/%s/%s/%u.m4s", rp->asset, rp->rend, rp->n);
        break;
    }
    return n < 0 ? 0 : TMT_MIN((size_t)n, cap - 1);
}
