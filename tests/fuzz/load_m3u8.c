/*
 * Fuzz target: arbitrary bytes as an HLS playlist through tomato-load's parser (load_lib.h), and
 * each URI it yields through the resolver.
 *
 * Input layout: the whole input is the playlist (parsed from an exact-size heap copy, so a read
 * past len is caught). Checks, aborting on a violation: success leaves counts within the limits
 * with every URI non-NULL, NUL-terminated within TMT_M3U8_MAX_URI and free of line breaks;
 * failure leaves the playlist empty with a message; a master has no segments; parsing twice
 * gives the same result; every resolved path starts with '/', has the returned length, fits
 * the buffer and holds no "/../" or "/./" segment.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tmt/load_lib.h"

static void check_uri(const char *uri)
{
    FUZZ_CHECK("load_m3u8", uri != NULL);
    size_t n = strlen(uri);
    FUZZ_CHECK("load_m3u8", n > 0 && n <= TMT_M3U8_MAX_URI);
    FUZZ_CHECK("load_m3u8", strchr(uri, '\n') == NULL);
    char out[512];
    long r = tmt_m3u8_resolve("/t/tok/v/a1/r0/index.m3u8?x", uri, "127.0.0.1:80", out, sizeof(out));
    if (r < 0) {
        FUZZ_CHECK("load_m3u8", r == TMT_EINVAL || r == TMT_ELIMIT);
        return;
    }
    FUZZ_CHECK("load_m3u8", (size_t)r < sizeof(out) && strlen(out) == (size_t)r);
    FUZZ_CHECK("load_m3u8", out[0] == '/');
    size_t pl = strcspn(out, "?");
    char path[512];
    memcpy(path, out, pl);
    path[pl] = '\0';
    FUZZ_CHECK("load_m3u8", strstr(path, "/../") == NULL && strstr(path, "/./") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    struct tmt_m3u8 m, again;
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_m3u8_parse(copy, size, &m, &err);
    if (rc != 0) {
        FUZZ_CHECK("load_m3u8", rc == TMT_EINVAL || rc == TMT_ELIMIT);
        FUZZ_CHECK("load_m3u8", err.msg[0] != '\0');
        FUZZ_CHECK("load_m3u8", m.n_segs == 0 && m.n_variants == 0 && m.map_uri == NULL);
        free(copy);
        return 0;
    }
    FUZZ_CHECK("load_m3u8", m.n_segs <= TMT_M3U8_MAX_ENTRIES);
    FUZZ_CHECK("load_m3u8", m.n_variants <= TMT_M3U8_MAX_ENTRIES);
    FUZZ_CHECK("load_m3u8", !m.master || m.n_segs == 0);
    for (size_t i = 0; i < m.n_variants; i++)
        check_uri(m.variants[i].uri);
    for (size_t i = 0; i < m.n_segs; i++) {
        check_uri(m.segs[i].uri);
        FUZZ_CHECK("load_m3u8", m.segs[i].dur_ms <= 86400999u);
    }
    if (m.map_uri != NULL)
        check_uri(m.map_uri);
    FUZZ_CHECK("load_m3u8", tmt_m3u8_parse(copy, size, &again, &err) == 0);
    FUZZ_CHECK("load_m3u8", again.n_segs == m.n_segs && again.n_variants == m.n_variants);
    for (size_t i = 0; i < m.n_segs; i++)
        FUZZ_CHECK("load_m3u8", strcmp(again.segs[i].uri, m.segs[i].uri) == 0 &&
                                    again.segs[i].dur_ms == m.segs[i].dur_ms);
    tmt_m3u8_fini(&again);
    tmt_m3u8_fini(&m);
    free(copy);
    return 0;
}
