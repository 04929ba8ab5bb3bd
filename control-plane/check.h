/*
 * check.h: the control plane's pure checks of what callers send (emails, language tags, ids,
 * route paths, router tickets). No store, no sockets: unit-tested and fuzzed on their own.
 */
#ifndef CP_CHECK_H
#define CP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tmt/base.h"

#define CP_TICKET_KEY_LEN 32
#define CP_TICKET_MAX 160

/* Fills n random bytes from OpenSSL's CSPRNG (aborts if it fails, which it does not on Linux). */
void cp_random(void *out, size_t n);

/* True when s is 1..max of [A-Za-z0-9_-] (the id alphabet of INTERFACES.md). */
bool cp_id_ok(struct tmt_slice s, size_t max);

/* Show ids chosen by operators: 1..48 of [A-Za-z0-9_] (no '-', so "{show}-v{n}" asset ids stay
 * unambiguous). */
bool cp_show_id_ok(const char *s);

/* A BCP 47-looking language tag: 2-3 letters, then any number of "-" and 1-8 alphanumerics. */
bool cp_lang_ok(const char *s);

/*
 * Lower-cases an email into out (cap bytes) if it looks like one: 3..254 bytes, one '@' with
 * text before it, a dot in the domain (not first or last), no spaces or control characters.
 */
bool cp_email_normalize(const char *in, char *out, size_t cap);

/*
 * Matches a path without its leading '/' against a route pattern of '/'-separated literals and
 * "*" (one non-empty component, captured into args[0..max_args)). Returns true on a match.
 */
bool cp_path_match(struct tmt_slice path, const char *pattern, struct tmt_slice *args,
                   size_t max_args);

/*
 * Router tickets: "{lease}.{exp}.{mac}", mac the first 16 bytes (base64url) of HMAC-SHA256 of
 * "{lease}.{exp}" under key. cp_ticket_make returns the length written to out (with a NUL), 0
 * if the lease id is not an id or it does not fit. cp_ticket_parse checks the form and the mac
 * (constant-time) and fills lease (NUL-terminated, cap bytes) and *exp; false for anything
 * else. Expiry is the caller's check.
 */
size_t cp_ticket_make(const unsigned char key[CP_TICKET_KEY_LEN], const char *lease, int64_t exp,
                      char *out, size_t cap);
bool cp_ticket_parse(const unsigned char key[CP_TICKET_KEY_LEN], struct tmt_slice ticket,
                     char *lease, size_t cap, int64_t *exp);

/*
 * The client address of a request: the connection's peer, unless the peer is one of the trusted
 * proxies (exact address texts), in which case X-Forwarded-For is read from its right end,
 * skipping trusted proxies, and the first address that is not one is the client (an entry that
 * is not an address ends the walk: the last trusted hop is then the client). Writes the address
 * text (at most cap - 1 bytes, NUL-terminated) and returns true when it came from the header.
 */
bool cp_client_addr(const char *peer, struct tmt_slice xff, const char *const *trusted,
                    size_t n_trusted, char *out, size_t cap);

/*
 * Report batches from nodes (reports.c), after JSON parsing: NULL when b holds a valid batch
 * (boot, seq, from_ms <= to_ms within [oldest_ms, latest_ms], counters, gauges, latency_ms,
 * role, top_assets, mrc), else what is wrong, for a 422.
 */
const char *cp_report_batch_check(json_t *b, int64_t latest_ms, int64_t oldest_ms);

/*
 * Inflates exactly one complete zstd frame of at most max bytes: 0 with *out (malloc'd,
 * NUL-terminated) and *out_len, or -1 (not zstd, cut short, too large, bytes after the frame).
 */
int cp_zstd_inflate(const char *p, size_t len, size_t max, char **out, size_t *out_len);

#endif
