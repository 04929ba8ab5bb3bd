/*
 * tokens.h: the edge's token gate (docs/ARCHITECTURE.md, "Edge cache": Tokens and the
 * verified-token cache).
 *
 * Which request paths need a playback token (tokens.protect, minus tokens.public), the check of
 * a token on such a path with core/token (signature with the key named by kid, HS256 only,
 * expiry, cdniv, scope of the path), a per-worker cache of tokens already verified (a repeated
 * token costs one hash lookup, not a signature), the key ring and the revocation list that the
 * main thread replaces while the workers run, and the (sub, dev, lease) activity that the node's
 * heartbeats report.
 *
 * Threads. edge_tokens_check runs on worker `worker` only and takes no lock shared with another
 * worker: each worker keeps its own cache and its own references to the current key ring and
 * revocation set (immutable, refcounted), refreshed under a mutex only when a generation
 * counter says the main thread installed new ones. edge_tokens_set_keys, _set_revoked,
 * _reload_keys_file and _drain_activity are for the main thread (one caller at a time) and may
 * run while the workers serve. The activity of a worker sits behind a mutex that only that
 * worker and the drain take, and the worker takes it only when a token's triple is not yet in
 * its current set.
 */
#ifndef EDGE_TOKENS_H
#define EDGE_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/err.h"
#include "tmt/token.h"

struct edge_tokens;
struct tmt_http_req;
struct tmt_metrics;

#define EDGE_TOKENS_KEYS_MAX 64         /* keys in a ring (file or pushed) */
#define EDGE_TOKENS_ACTIVITY_MAX 4096   /* distinct triples per worker between two drains */
#define EDGE_TOKENS_PREFIXES_MAX 32     /* entries of tokens.protect and of tokens.public */
#define EDGE_TOKENS_KEYS_FILE_MAX 65536 /* bytes of a keys file */

struct edge_tokens_opts {
    /* Path prefixes (normalized, starting with '/'): protected ones need a token, public ones
     * do not; the longest matching prefix decides, and a prefix in both lists is public (so
     * tokens.public=/v/ opens the default tokens.protect). Copied. */
    const char *const *protect;
    size_t n_protect;
    const char *const *public_prefixes;
    size_t n_public;
    int64_t clock_skew_s;    /* allowed for nbf and iat (tmt_token_verify's skew) */
    size_t cache_entries;    /* verified tokens kept, in total, shared out among the workers;
                              * 0: no cache, every request verifies its token */
    unsigned n_workers;      /* worker i calls edge_tokens_check with worker = i */
    unsigned metrics_shard0; /* worker i writes shard metrics_shard0 + i, the main thread
                              * metrics_shard0 + n_workers */
};

/*
 * A gate with an empty key ring and no revocations (every token is refused until keys are set).
 * Registers the counters on metrics (not sealed yet; NULL: none). Returns NULL with err filled
 * when a prefix is not a normalized path or there are too many.
 */
struct edge_tokens *edge_tokens_new(const struct edge_tokens_opts *o, struct tmt_metrics *metrics,
                                    struct tmt_err *err);

/* After the workers have stopped. NULL-safe. */
void edge_tokens_free(struct edge_tokens **t);

/* How a (normalized) path is treated. */
enum edge_tokens_scope {
    EDGE_TOKENS_OPEN,      /* under no prefix of either list: no token, none expected */
    EDGE_TOKENS_PUBLIC,    /* under a public prefix: a token, if any, is ignored */
    EDGE_TOKENS_PROTECTED, /* under a protected prefix: a valid token is required */
};

/*
 * The scope of npath[0..len), a normalized path, optionally followed by '?' and a query (the
 * edge's cache key): prefixes never hold '?'. Any thread.
 */
enum edge_tokens_scope edge_tokens_scope(const struct edge_tokens *t, const char *npath,
                                         size_t len);

/*
 * Splits a request path "/t/{token}/rest" into the token and "/rest" (both slices into path).
 * Returns 1 when path has that form, 0 when it does not start with "/t/" (token {NULL, 0},
 * *rest = path), -1 for "/t/" without a token or without a path after it. Pure.
 */
int edge_tokens_split(struct tmt_slice path, struct tmt_slice *token, struct tmt_slice *rest);

/*
 * The check of a request to a protected path, on worker `worker`: token (p NULL: none was
 * given) must verify against the current key ring at time now_s (seconds since the epoch), its
 * lease must not be revoked, and raw_path (the request path with the /t/{token} part removed,
 * still percent-encoded) must be inside its scope (tmt_token_path_ok). A token verified before
 * is taken from the worker's cache, its expiry, lease and scope checked again, and verified
 * again when the key ring changed since. Records the token's (sub, dev, lease) as activity when
 * it passes. Returns true to let the request through; false with *reason set to a short
 * static text for the X-Tomato-Reason header ("token required", "revoked lease", or
 * tmt_token_verdict_text's). Counts both.
 */
bool edge_tokens_check(struct edge_tokens *t, unsigned worker, struct tmt_slice token,
                       struct tmt_slice raw_path, int64_t now_s, const char **reason);

/*
 * Replaces the key ring with a copy of keys[0..n) (n <= EDGE_TOKENS_KEYS_MAX, more are
 * dropped with a log line). Tokens cached as verified under the old ring are verified again on
 * their next request (so a removed key's tokens are refused from then on), unless the new ring
 * holds exactly the same keys. Main thread.
 */
void edge_tokens_set_keys(struct edge_tokens *t, const struct tmt_token_key *keys, size_t n);

/*
 * Replaces the set of revoked lease ids with a copy of lease_ids[0..n) (NUL-terminated, at most
 * TMT_TOKEN_STR_MAX bytes; longer or empty ones cannot match a token and are skipped). From the
 * workers' next requests on, a token whose tmt_lease is in the set is refused, cached or not.
 * Main thread.
 */
void edge_tokens_set_revoked(struct edge_tokens *t, const char *const *lease_ids, size_t n);

/*
 * Parses a keys file's text: one key per line, "KID SECRET" separated by blanks, KID
 * [A-Za-z0-9_-]{1,32} (each once), SECRET in base64url without padding, 32 to 64 bytes once
 * decoded; blank lines and lines starting with '#' are skipped. name is what messages call the
 * file. Returns 0 with keys[0..*n) filled, or TMT_EINVAL with "name:LINE: what" in err (never
 * the secret), TMT_ELIMIT past cap keys.
 */
int edge_tokens_parse_keys(const char *name, const char *text, size_t len,
                           struct tmt_token_key *keys, size_t cap, size_t *n,
                           struct tmt_err *err) TMT_MUST_CHECK;

/*
 * Reads and parses the keys file path (at most EDGE_TOKENS_KEYS_FILE_MAX bytes) and, when it
 * is good, installs its keys with edge_tokens_set_keys. A file that does not read or parse
 * changes nothing and returns the error (naming path and line). Main thread.
 */
int edge_tokens_load_keys_file(struct edge_tokens *t, const char *path,
                               struct tmt_err *err) TMT_MUST_CHECK;

/*
 * The admin call POST /tokens/revoked (behind the admin credential): the body holds one lease id
 * per line (1 to TMT_TOKEN_STR_MAX bytes, no control characters; blanks around it and blank
 * lines are skipped, CR LF is accepted) and replaces the revocation set, an empty body empties
 * it. Answers 200 {"revoked":N}, 400 naming the first bad line (nothing changes), 405 for other
 * methods. Main thread (the admin listener's loop).
 */
void edge_tokens_admin_revoked(struct tmt_http_req *req, struct edge_tokens *t);

/* Called once per distinct triple by edge_tokens_drain_activity; the strings live for the call. */
typedef void edge_tokens_activity_fn(void *arg, const char *sub, const char *dev,
                                     const char *lease);

/*
 * Reports the distinct (sub, dev, lease) triples of the tokens that passed since the previous
 * drain, on every worker (each triple once, whichever workers saw it), and starts new sets.
 * Tokens without a lease are not recorded. A worker records at most EDGE_TOKENS_ACTIVITY_MAX
 * triples between drains; more are counted (tmt_edge_token_activity_dropped_total) and
 * dropped. Returns the number of calls made. Main thread.
 */
size_t edge_tokens_drain_activity(struct edge_tokens *t, edge_tokens_activity_fn *fn, void *arg);

#endif
