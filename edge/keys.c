/*
 * keys.c: cache keys of request paths (see keys.h).
 */
#include "keys.h"

#include <stdbool.h>
#include <string.h>

#include "tmt/http.h"

size_t edge_cache_key(struct tmt_slice path, struct tmt_slice query, char *key, size_t cap,
                      int *status, const char **why)
{
    size_t plen = tmt_http_path_normalize(path, key, cap);
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
