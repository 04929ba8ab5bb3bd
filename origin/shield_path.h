/*
 * shield_path.h: the paths tomato-shield answers, parsed strictly: /v/{asset}/master.m3u8,
 * manifest.mpd, {rendition}/index.m3u8, {rendition}/init.mp4, {rendition}/{n}.m4s (n from 1, no
 * leading zero). Pure functions of their input.
 */
#ifndef SHIELD_PATH_H
#define SHIELD_PATH_H

#include <stddef.h>

#include "tmt/base.h"
#include "tmt/pack.h"

enum shield_kind { K_MASTER, K_MPD, K_MEDIA_PL, K_INIT, K_SEGMENT };

struct shield_path {
    char asset[TMT_PACK_ID_MAX + 1];
    char rend[TMT_PACK_ID_MAX + 1];
    enum shield_kind kind;
    unsigned n;
};

/* Parses a request path (as sent); returns 0, or the status to answer: 400 for an asset id that
 * is not [A-Za-z0-9_-]{1,64}, 404 for any other shape. */
int shield_parse_path(struct tmt_slice path, struct shield_path *out);

/* The canonical path of a parsed one (what the cache keys): its length, NUL-terminated. */
size_t shield_canonical_key(const struct shield_path *p, char *out, size_t cap);

#endif
