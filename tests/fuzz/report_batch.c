/*
 * Fuzz target: the report batches nodes send to the control plane (POST /v1/nodes/{id}/reports):
 * the body is inflated when it is a zstd frame, parsed as JSON (jansson's) and checked by
 * cp_report_batch_check. Beyond not crashing: an inflated body never exceeds the limit and is
 * NUL-terminated; a batch that passes has the promised shapes (seq from 1, from_ms <= to_ms in
 * the window, non-negative integer counters, at most 14 latency buckets, a known role, sizes of
 * the miss-ratio curve increasing).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fuzz_util.h"

#define LIMIT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_batch(json_t *b)
{
    const char *why = cp_report_batch_check(b, 2000000000000, 1000);
    if (why != NULL) {
        FUZZ_CHECK("report_batch", why[0] != '\0');
        return;
    }
    json_int_t from = json_integer_value(json_object_get(b, "from_ms"));
    json_int_t to = json_integer_value(json_object_get(b, "to_ms"));
    FUZZ_CHECK("report_batch", json_integer_value(json_object_get(b, "seq")) >= 1);
    FUZZ_CHECK("report_batch", from <= to && to >= 1000 && to <= 2000000000000);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(b, "counters"), k, v)
        FUZZ_CHECK("report_batch", json_is_integer(v) && json_integer_value(v) >= 0);
    FUZZ_CHECK("report_batch", json_array_size(json_object_get(b, "latency_ms")) <= 14);
    const char *role = json_string_value(json_object_get(b, "role"));
    FUZZ_CHECK("report_batch",
               role == NULL || strcmp(role, "edge") == 0 || strcmp(role, "shield") == 0);
    json_t *pts = json_object_get(json_object_get(b, "mrc"), "points");
    for (size_t i = 1; i < json_array_size(pts); i++)
        FUZZ_CHECK("report_batch",
                   json_integer_value(json_array_get(json_array_get(pts, i), 0)) >
                       json_integer_value(json_array_get(json_array_get(pts, i - 1), 0)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = NULL;
    size_t len = 0;
    if (cp_zstd_inflate((const char *)data, size, LIMIT, &text, &len) == 0) {
        FUZZ_CHECK("report_batch", len <= LIMIT && text[len] == '\0');
    } else {
        text = malloc(size + 1);
        FUZZ_CHECK("report_batch", text != NULL);
        if (size > 0)
            memcpy(text, data, size);
        text[size] = '\0';
        len = size;
    }
    json_t *b = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(b))
        check_batch(b);
    json_decref(b);
    free(text);
    return 0;
}
