/*
 * m3u8.c: the minimal HLS playlist parser and URI resolver of load_lib.h.
 *
 * Untrusted input (whatever the target answers): every read is bounded by len, numbers are
 * range-checked, entry counts and URI lengths are capped. The parser keeps what a simulated
 * player needs: EXT-X-STREAM-INF BANDWIDTH and RESOLUTION with the URI line after it,
 * EXT-X-MAP URI, EXTINF durations with their URI lines, EXT-X-TARGETDURATION, EXT-X-ENDLIST.
 * The playlist owns its URIs (one malloc each; a viewer parses a playlist once per rendition).
 */
#include "tmt/load_lib.h"

#include <stdlib.h>
#include <string.h>

static bool has_prefix(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && memcmp(p, lit, n) == 0;
}

static char *dup_bounded(const char *p, size_t len)
{
    char *s = tmt_xmalloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/*
 * Finds attribute `name` in an attribute list (after the tag's colon) and returns its value
 * (quotes removed) in v and vlen. Quoted values may hold commas.
 */
/* A URI holds no control characters (a NUL would cut it short once copied). */
static bool uri_chars_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    }
    return true;
}

static bool attr_find(const char *p, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nlen = strlen(name), i = 0;
    while (i < len) {
        while (i < len && (p[i] == ' ' || p[i] == ','))
            i++;
        size_t k = i;
        while (i < len && p[i] != '=' && p[i] != ',')
            i++;
        size_t klen = i - k;
        if (i >= len || p[i] == ',')
            continue;
        i++; /* '=' */
        size_t vs = i, ve;
        if (i < len && p[i] == '"') {
            vs = ++i;
            while (i < len && p[i] != '"')
                i++;
            ve = i;
            if (i < len)
                i++;
        } else {
            while (i < len && p[i] != ',')
                i++;
            ve = i;
        }
        if (klen == nlen && memcmp(p + k, name, nlen) == 0) {
            *v = p + vs;
            *vlen = ve - vs;
            return true;
        }
    }
    return false;
}

static bool parse_u64(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* "6.006" or "6" (then anything up to the comma) into milliseconds, at most a day. */
static bool parse_dur_ms(const char *p, size_t len, uint32_t *ms)
{
    size_t i = 0;
    uint64_t whole = 0, frac = 0, scale = 1000;
    if (len == 0 || p[0] < '0' || p[0] > '9')
        return false;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
        whole = whole * 10 + (uint64_t)(p[i] - '0');
        if (whole > 86400)
            return false;
    }
    if (i < len && p[i] == '.') {
        for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(p[i] - '0') * scale;
            }
        }
    }
    if (i < len && p[i] != ',' && p[i] != ' ')
        return false;
    *ms = (uint32_t)(whole * 1000 + frac);
    return true;
}

static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    if (n >= TMT_M3U8_MAX_ENTRIES)
        return TMT_ELIMIT;
    size_t ncap = *cap == 0 ? 16 : *cap * 2;
    *arr = tmt_xrealloc(*arr, ncap * elem);
    *cap = ncap;
    return 0;
}

int tmt_m3u8_parse(const char *p, size_t len, struct tmt_m3u8 *out, struct tmt_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t cap_v = 0, cap_s = 0, line_no = 0, pos = 0;
    bool seen_header = false, pending_inf = false, pending_seg = false;
    struct tmt_m3u8_variant cur_v = {0};
    uint32_t cur_dur = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        const char *nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - p) : len;
        const char *l = p + pos;
        size_t ll = end - pos;
        pos = end + 1;
        line_no++;
        if (ll > 0 && l[ll - 1] == '\r')
            ll--;
        while (ll > 0 && (l[0] == ' ' || l[0] == '\t')) {
            l++;
            ll--;
        }
        while (ll > 0 && (l[ll - 1] == ' ' || l[ll - 1] == '\t'))
            ll--;
        if (ll == 0)
            continue;
        if (!seen_header) {
            if (ll >= 3 && (unsigned char)l[0] == 0xef && (unsigned char)l[1] == 0xbb &&
                (unsigned char)l[2] == 0xbf) {
                l += 3;
                ll -= 3;
            }
            if (!has_prefix(l, ll, "#EXTM3U")) {
                rc = tmt_err_set(err, TMT_EINVAL, "line %zu: not a playlist (no #EXTM3U)", line_no);
                break;
            }
            seen_header = true;
            continue;
        }
        if (l[0] == '#') {
            const char *v;
            size_t vl;
            if (has_prefix(l, ll, "#EXT-X-STREAM-INF:")) {
                const char *a = l + 18;
                size_t al = ll - 18;
                memset(&cur_v, 0, sizeof(cur_v));
                if (attr_find(a, al, "BANDWIDTH", &v, &vl) && !parse_u64(v, vl, &cur_v.bandwidth))
                    rc = tmt_err_set(err, TMT_EINVAL, "line %zu: bad BANDWIDTH", line_no);
                if (rc == 0 && attr_find(a, al, "RESOLUTION", &v, &vl)) {
                    const char *x = memchr(v, 'x', vl);
                    uint64_t w, h;
                    if (x == NULL || !parse_u64(v, (size_t)(x - v), &w) ||
                        !parse_u64(x + 1, vl - (size_t)(x - v) - 1, &h) || w > 65535 || h > 65535)
                        rc = tmt_err_set(err, TMT_EINVAL, "line %zu: bad RESOLUTION", line_no);
                    else {
                        cur_v.width = (unsigned)w;
                        cur_v.height = (unsigned)h;
                    }
                }
                pending_inf = true;
                out->master = true;
            } else if (has_prefix(l, ll, "#EXT-X-MAP:")) {
                if (!attr_find(l + 11, ll - 11, "URI", &v, &vl) || vl == 0)
                    rc = tmt_err_set(err, TMT_EINVAL, "line %zu: EXT-X-MAP without URI", line_no);
                else if (vl > TMT_M3U8_MAX_URI)
                    rc = tmt_err_set(err, TMT_ELIMIT, "line %zu: URI too long", line_no);
                else if (!uri_chars_ok(v, vl))
                    rc =
                        tmt_err_set(err, TMT_EINVAL, "line %zu: control character in URI", line_no);
                else if (out->map_uri == NULL)
                    out->map_uri = dup_bounded(v, vl);
            } else if (has_prefix(l, ll, "#EXTINF:")) {
                if (!parse_dur_ms(l + 8, ll - 8, &cur_dur))
                    rc = tmt_err_set(err, TMT_EINVAL, "line %zu: bad EXTINF duration", line_no);
                pending_seg = true;
            } else if (has_prefix(l, ll, "#EXT-X-TARGETDURATION:")) {
                uint64_t t;
                if (!parse_u64(l + 22, ll - 22, &t) || t > 86400)
                    rc =
                        tmt_err_set(err, TMT_EINVAL, "line %zu: bad EXT-X-TARGETDURATION", line_no);
                else
                    out->target_s = (uint32_t)t;
            } else if (has_prefix(l, ll, "#EXT-X-ENDLIST")) {
                out->endlist = true;
            }
            continue;
        }
        /* a URI line */
        if (ll > TMT_M3U8_MAX_URI) {
            rc = tmt_err_set(err, TMT_ELIMIT, "line %zu: URI too long", line_no);
        } else if (!uri_chars_ok(l, ll)) {
            rc = tmt_err_set(err, TMT_EINVAL, "line %zu: control character in URI", line_no);
        } else if (pending_inf) {
            rc = grow((void **)&out->variants, out->n_variants, &cap_v, sizeof(*out->variants));
            if (rc == 0) {
                cur_v.uri = dup_bounded(l, ll);
                out->variants[out->n_variants++] = cur_v;
                pending_inf = false;
            } else {
                tmt_err_set(err, rc, "line %zu: more than %d variants", line_no,
                            TMT_M3U8_MAX_ENTRIES);
            }
        } else if (pending_seg) {
            rc = grow((void **)&out->segs, out->n_segs, &cap_s, sizeof(*out->segs));
            if (rc == 0) {
                out->segs[out->n_segs++] =
                    (struct tmt_m3u8_seg){.dur_ms = cur_dur, .uri = dup_bounded(l, ll)};
                pending_seg = false;
            } else {
                tmt_err_set(err, rc, "line %zu: more than %d segments", line_no,
                            TMT_M3U8_MAX_ENTRIES);
            }
        } else {
            rc = tmt_err_set(err, TMT_EINVAL, "line %zu: URI without #EXTINF or #EXT-X-STREAM-INF",
                             line_no);
        }
    }
    if (rc == 0 && !seen_header)
        rc = tmt_err_set(err, TMT_EINVAL, "empty playlist (no #EXTM3U)");
    if (rc == 0 && out->master && out->n_segs > 0)
        rc = tmt_err_set(err, TMT_EINVAL, "both variants and segments");
    if (rc != 0)
        tmt_m3u8_fini(out);
    return rc;
}

void tmt_m3u8_fini(struct tmt_m3u8 *m)
{
    for (size_t i = 0; i < m->n_variants; i++)
        free(m->variants[i].uri);
    for (size_t i = 0; i < m->n_segs; i++)
        free(m->segs[i].uri);
    free(m->variants);
    free(m->segs);
    free(m->map_uri);
    memset(m, 0, sizeof(*m));
}

/* Appends the segments of src (a path without query) to out, applying "." and "..". */
static long append_segments(char *out, size_t cap, size_t n, const char *src, size_t slen)
{
    size_t i = 0;
    while (i < slen) {
        size_t j = i;
        while (j < slen && src[j] != '/')
            j++;
        size_t sl = j - i;
        bool last = j >= slen;
        if (sl == 1 && src[i] == '.') {
            /* nothing */
        } else if (sl == 2 && src[i] == '.' && src[i + 1] == '.') {
            if (n > 1) {
                n--; /* drop the trailing '/' then the segment */
                while (n > 0 && out[n - 1] != '/')
                    n--;
            }
        } else if (sl > 0) {
            if (n + sl + 2 > cap)
                return TMT_ELIMIT;
            memcpy(out + n, src + i, sl);
            n += sl;
            if (!last)
                out[n++] = '/';
        }
        i = j + 1;
    }
    return (long)n;
}

long tmt_m3u8_resolve(const char *base_path, const char *uri, const char *authority, char *out,
                      size_t cap)
{
    if (cap < 2 || uri[0] == '\0')
        return TMT_EINVAL;
    const char *path = uri;
    if (strncmp(uri, "http://", 7) == 0) {
        const char *auth = uri + 7;
        size_t al = strcspn(auth, "/?#");
        if (authority == NULL || al != strlen(authority) || strncmp(auth, authority, al) != 0)
            return TMT_EINVAL;
        path = auth + al;
        if (*path != '/')
            return TMT_EINVAL;
    } else if (strchr(uri, ':') != NULL && strcspn(uri, ":") < strcspn(uri, "/?#")) {
        return TMT_EINVAL; /* another scheme: https://, data:, ... */
    }
    size_t qpos = strcspn(path, "?#");
    size_t n = 0;
    out[n++] = '/';
    long r;
    if (path[0] == '/') {
        r = append_segments(out, cap, n, path + 1, qpos - 1);
    } else {
        size_t blen = strcspn(base_path, "?#");
        while (blen > 0 && base_path[blen - 1] != '/')
            blen--;
        r = (long)n;
        if (blen > 1)
            r = append_segments(out, cap, n, base_path + 1, blen - 1);
        if (r >= 0)
            r = append_segments(out, cap, (size_t)r, path, qpos);
    }
    if (r < 0)
        return r;
    n = (size_t)r;
    size_t ql = strlen(path + qpos);
    if (path[qpos] == '#')
        ql = 0;
    else if (ql > 0)
        ql = strcspn(path + qpos, "#");
    if (n + ql + 1 > cap)
        return TMT_ELIMIT;
    memcpy(out + n, path + qpos, ql);
    n += ql;
    out[n] = '\0';
    return (long)n;
}
