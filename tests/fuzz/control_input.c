/*
 * Fuzz target: what callers of the control plane send that our own code reads (the JSON itself
 * is jansson's): emails, language tags, ids, route paths and router tickets. Beyond not
 * crashing, it checks that normalizing an email twice changes nothing, that a ticket which
 * parses is exactly the one cp_ticket_make makes from its parts, and that a route match
 * captures slices inside the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[CP_TICKET_KEY_LEN] = "fuzz-ticket-key-0123456789abcdef";

static const char *const patterns[] = {
    "v1/users",
    "v1/users/me",
    "v1/users/*",
    "v1/sessions/current",
    "v1/playback/*/heartbeat",
    "r/*/master.m3u8",
    "r/*/manifest.mpd",
    "*/*/*",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct tmt_slice in = {s, size};

    char e1[300], e2[300];
    if (cp_email_normalize(s, e1, sizeof(e1))) {
        FUZZ_CHECK("control_input", cp_email_normalize(e1, e2, sizeof(e2)));
        FUZZ_CHECK("control_input", strcmp(e1, e2) == 0);
    }
    (void)cp_lang_ok(s);
    (void)cp_show_id_ok(s);
    (void)cp_id_ok(in, 64);

    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        struct tmt_slice a[3] = {{0}};
        if (cp_path_match(in, patterns[i], a, 3)) {
            for (size_t j = 0; j < 3; j++)
                FUZZ_CHECK("control_input",
                           a[j].p == NULL ||
                               (a[j].p >= s && a[j].p + a[j].len <= s + size && a[j].len > 0));
        }
    }

    char lease[65];
    int64_t exp;
    if (cp_ticket_parse(key, in, lease, sizeof(lease), &exp)) {
        char again[CP_TICKET_MAX + 1];
        size_t n = cp_ticket_make(key, lease, exp, again, sizeof(again));
        FUZZ_CHECK("control_input", n == size && memcmp(again, s, size) == 0);
    }
    /* And the other way: whatever id the input starts with makes a ticket that parses back. */
    size_t idl = 0;
    while (idl < size && idl < 64 && cp_id_ok((struct tmt_slice){s, idl + 1}, 64))
        idl++;
    if (idl > 0) {
        char id[65], t[CP_TICKET_MAX + 1];
        memcpy(id, s, idl);
        id[idl] = '\0';
        size_t n = cp_ticket_make(key, id, (int64_t)size * 977, t, sizeof(t));
        FUZZ_CHECK("control_input", n > 0);
        FUZZ_CHECK("control_input",
                   cp_ticket_parse(key, (struct tmt_slice){t, n}, lease, sizeof(lease), &exp));
        FUZZ_CHECK("control_input", strcmp(lease, id) == 0 && exp == (int64_t)size * 977);
    }
    free(s);
    return 0;
}
