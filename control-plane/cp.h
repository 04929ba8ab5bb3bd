/*
 * cp.h: what the parts of tomato-control share: the daemon's state (struct cp), one API call
 * (struct cp_call) and the helpers every endpoint uses to read JSON, answer and store.
 *
 * Threads. Requests arrive on the HTTP workers' loops. Calls that hash a password (scrypt, tens
 * of milliseconds), and every call when store.sync makes each write wait for fsync, are handed
 * whole to the API thread pool (struct cp_call) and their answer goes back to the worker's loop;
 * the rest run on the loop itself (a few RocksDB reads and one unsynced write: microseconds,
 * less than the two thread hops would cost). Changes to
 * the store that read before they write (the device limit, a unique email) run under cp->mu, so
 * two calls never decide on the same stale state; plain reads take no lock (RocksDB is
 * thread-safe and every change is one atomic batch).
 */
#ifndef CP_H
#define CP_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cp_conf.h"
#include "tmt/base.h"
#include "tmt/geo.h"
#include "tmt/kv.h"
#include "tmt/server.h"
#include "tmt/token.h"

struct tmt_pool;
struct tmt_metrics;
struct cp_limiter;
struct cp_web_lib;

/* Web players served to the /watch page: hls.js and dash.js. */
#define CP_WEB_LIBS 2

/* Ids are a letter and 20 hex digits: 48 bits of milliseconds then 32 random bits, so that
 * keys sort by creation time. */
#define CP_ID_LEN 21
#define CP_ID_MAX 64 /* ids given by operators (shows, assets) are at most this long */

enum cp_role { CP_ROLE_VIEWER, CP_ROLE_OPERATOR };

/* Counters of the control plane, bumped on the worker loop when the call is answered. */
enum cp_metric {
    CPM_LOGIN_OK,
    CPM_LOGIN_FAILED,
    CPM_LOGIN_LIMITED,
    CPM_REGISTERED,
    CPM_PLAYBACK_STARTED,
    CPM_PLAYBACK_RENEWED,
    CPM_PLAYBACK_REFUSED,
    CPM_TOKENS_SIGNED,
    CPM_ROUTER_REDIRECTS,
    CPM_STORE_ERRORS,
    CPM_ROUTE_ZONE, /* viewers routed, by how: same order as enum tmt_geo_how */
    CPM_ROUTE_LOCATION,
    CPM_ROUTE_DEFAULT,
    CPM_ROUTE_NONE,
    CPM_ROUTE_UNPARSABLE,
    CPM_ROUTE_DB_ERRORS,
    CPM_COUNT
};

/* The key ring: the current signing key, the next one (already handed to nodes) and the retired
 * ones still valid for verification. */
#define CP_KEYS_MAX 16
struct cp_keyring {
    struct tmt_token_key keys[CP_KEYS_MAX];
    int64_t created[CP_KEYS_MAX];
    int64_t retired[CP_KEYS_MAX];     /* 0: current */
    int64_t valid_until[CP_KEYS_MAX]; /* retired keys: when their last token expires */
    size_t n;
    size_t current; /* index of the signing key */
    size_t next;    /* index of the key the next rotation makes current */
};
/* "current", "next" or "retired". */
const char *cp_key_state(const struct cp_keyring *r, size_t i);

struct cp {
    unsigned magic;
#define CP_MAGIC 0xc0a7201bu
    struct tmt_kv *kv;
    struct tmt_pool *pool;
    pthread_mutex_t mu; /* read-decide-write changes of the store */
    /* Settings that a reload may change: copied under conf_mu, read through cp_conf_get. */
    pthread_mutex_t conf_mu;
    const struct cp_conf *conf; /* the snapshot's settings (kept alive by snap) */
    struct tmt_conf_snap *snap;
    /* Secrets made at the first start and kept in the store. */
    unsigned char pseudonym_key[32];
    unsigned char ticket_key[32];
    unsigned char fill_key[32];
    unsigned char node_admin_key[32]; /* nodes' admin credentials derive from it */
    /* Signing keys; changed by rotation under mu, read under keys_lock. */
    pthread_rwlock_t keys_lock;
    struct cp_keyring ring;
    struct cp_limiter *limiter;
    /* Routing data (geo.zones_file, geo.db_path): replaced by reloads under geo_lock. */
    pthread_rwlock_t geo_lock;
    struct tmt_geo_zones *zones;
    struct tmt_geo_db *geodb;
    struct tmt_metrics *metrics;
    size_t m_base;
    /* A password hash of nothing, checked on logins for unknown emails so they take as long. */
    char dummy_hash[160];
    /* The web players /watch loads (watch.c): replaced by reloads under web_mu. */
    pthread_mutex_t web_mu;
    struct cp_web_lib *web_libs[CP_WEB_LIBS];
};

struct route;

/* One API call: on the worker loop, or from it to the pool and back. */
#define CP_ARGS 3
#define CP_HDRS 4
struct cp_call {
    struct cp *cp;
    struct tmt_http_req *req; /* read-only on the pool thread */
    struct tmt_loop *loop;
    const struct cp_conf *conf; /* settings for this call (the snapshot is held by ref) */
    struct tmt_conf_snap *snap;
    const struct route *route;
    int64_t now;    /* wall clock, seconds */
    int64_t now_ms; /* the same, in milliseconds */
    /* Captured path segments ("*" in the route) and the caller. */
    struct tmt_slice arg[CP_ARGS];
    bool authed;
    char uid[CP_ID_MAX + 1];
    enum cp_role role;
    char session_key[64]; /* store key of the session, for logout */
    json_t *user;         /* the caller's user record */
    json_t *node;         /* the calling node's record (node calls) */
    size_t body_max;      /* largest body this call takes; 0: server.max_body */
    /* The answer. */
    int status;
    char *body;
    size_t body_len;
    const char *ctype;
    struct tmt_http_header hdrs[CP_HDRS];
    size_t n_hdrs;
    char hbuf[CP_HDRS][1200];
    uint32_t counts[CPM_COUNT];
};

/* The HTTP handler of the API listener: hands the request to the pool (arg: struct cp). */
void cp_api_handle(struct tmt_http_req *req, void *arg);

/* ---- answering (pool thread) ---- */

/* Answers with a JSON body (takes the reference to v). */
void cp_reply_json(struct cp_call *c, int status, json_t *v);
/* Answers {"error": error, "detail": <formatted>}. */
void cp_reply_error(struct cp_call *c, int status, const char *error, const char *fmt, ...)
    TMT_PRINTF(4, 5);
/* Answers 204 without a body. */
void cp_reply_empty(struct cp_call *c, int status);
/* Adds a response header field (name and value copied). */
void cp_add_header(struct cp_call *c, const char *name, const char *fmt, ...) TMT_PRINTF(3, 4);
/* 503 for a store failure, logged with what was being done. */
void cp_reply_store_error(struct cp_call *c, const char *doing, const struct tmt_err *err);

/* ---- request bodies ---- */

/*
 * The request body as a JSON object whose members are all in `allowed` (NULL-terminated).
 * NULL after answering 400/413/415 when it is not.
 */
json_t *cp_body_object(struct cp_call *c, const char *const *allowed);
/* The same for a body already read (decompressed, say): no Content-Type or size checks. */
json_t *cp_parse_object(struct cp_call *c, struct tmt_slice b, const char *const *allowed);
/* Answers with body (malloc'd, taken) of content type ctype (a static string). */
void cp_reply_text(struct cp_call *c, int status, char *body, size_t len, const char *ctype);

/*
 * Member `name` of o as a string of min..max bytes without control characters: returns it, or
 * NULL with *bad set and a 400/422 answered (bad type, length) - or NULL with *bad false when it
 * is absent and not required (absent and required answers 422 too).
 */
const char *cp_json_string(struct cp_call *c, json_t *o, const char *name, bool required,
                           size_t min, size_t max, bool *bad);

/* The caller's query parameter, decoded and NUL-terminated, into out (cap bytes): its length, -1
 * when absent, -2 when malformed or too long (answered 400). */
long cp_query(struct cp_call *c, const char *name, char *out, size_t cap);

/* limit= (1..100, default 20) into *limit; false after answering 400. */
bool cp_page_limit(struct cp_call *c, size_t *limit);

/* Compares a slice with a string as strcmp does. */
static inline int cp_slice_cmp(struct tmt_slice a, const char *b)
{
    size_t bl = strlen(b), m = a.len < bl ? a.len : bl;
    int r = m > 0 ? memcmp(a.p, b, m) : 0;
    if (r != 0)
        return r;
    return a.len < bl ? -1 : a.len > bl ? 1 : 0;
}

/* ---- ids and time ---- */

/* A new id: prefix letter + 20 hex digits (CP_ID_LEN chars and a NUL into out). */
void cp_new_id(char prefix, char out[CP_ID_LEN + 1]);
/* RFC 3339 UTC ("2026-11-23T01:02:03Z") of unix seconds, into a 21-byte buffer. */
void cp_time_text(int64_t t, char out[21]);
json_t *cp_time_json(int64_t t);
int64_t cp_wall_now(void);

/* ---- the store ---- */

/* A batch of changes applied at once: every op or none. Keys and values are owned copies. */
struct cp_batch {
    struct tmt_kv_op *ops;
    struct tmt_slice *parts;
    char **owned;
    size_t n, cap, n_owned;
};
void cp_batch_put(struct cp_batch *b, const char *key, const char *val, size_t len);
void cp_batch_put_json(struct cp_batch *b, const char *key, json_t *v); /* v borrowed */
void cp_batch_del(struct cp_batch *b, const char *key);
/* Applies and frees the batch. 0, or -1 after answering 503 (c may be NULL: then only logged). */
int cp_batch_commit(struct cp *cp, struct cp_batch *b, struct cp_call *c);
void cp_batch_free(struct cp_batch *b);

/*
 * The JSON value stored at key: 1 (found, *out a new reference), 0 (absent) or -1 (store or
 * decode error: logged, and 503 answered when c is set).
 */
int cp_get_json(struct cp *cp, const char *key, json_t **out, struct cp_call *c);
/* The string stored at key into out (cap bytes, NUL-terminated): 1, 0 absent, -1 error. */
int cp_get_str(struct cp *cp, const char *key, char *out, size_t cap, struct cp_call *c);
/* Calls fn for each key under prefix (key without the prefix, value). -1 on store error. */
typedef bool cp_scan_fn(void *arg, struct tmt_slice rest, struct tmt_slice val);
int cp_scan(struct cp *cp, const char *prefix, cp_scan_fn *fn, void *arg, struct cp_call *c);

/* ---- auth (auth.c) ---- */

/* "scrypt$N$r$p$salt$hash" of a password with a fresh salt; returns 0 or -1 (out too small). */
int cp_password_hash(const struct cp_conf *conf, const char *pw, size_t len, char *out, size_t cap);
/* True when pw matches a stored hash (constant-time comparison). */
bool cp_password_check(const char *stored, const char *pw, size_t len);
/* The pseudonymous id of a user (HMAC under the control plane's key), 22 chars and a NUL. */
void cp_pseudonym(const unsigned char key[32], const char *uid, char out[23]);

struct cp_limiter *cp_limiter_new(void);
void cp_limiter_free(struct cp_limiter **l);
/*
 * Counts one event for `what` (an account or an address) in fixed windows of window_s seconds:
 * returns 0 while at most `max` events happened in the current window, else the seconds until
 * it ends (for Retry-After). `count` false only asks.
 */
int64_t cp_limiter_hit(struct cp_limiter *l, const char *kind, const char *what, int64_t now,
                       int64_t window_s, uint64_t max, bool count);
void cp_limiter_reset(struct cp_limiter *l, const char *kind, const char *what);

/* ---- endpoints ---- */

void cp_users_register(struct cp_call *c);
void cp_users_me(struct cp_call *c);
void cp_users_list(struct cp_call *c);
void cp_users_get(struct cp_call *c);
void cp_users_patch(struct cp_call *c);
void cp_users_delete(struct cp_call *c);
void cp_sessions_create(struct cp_call *c);
void cp_sessions_delete(struct cp_call *c);
/* Resolves the Authorization bearer to c->uid/role/user; false after answering 401. */
bool cp_session_auth(struct cp_call *c);
/* Removes sessions past their expiry (the periodic sweep). */
void cp_sessions_sweep(struct cp *cp, int64_t now);
/* Public view of a user record (no password hash). */
json_t *cp_user_view(json_t *user);
/*
 * Creates an operator account (CLI and bootstrap). Returns 0, or -1 with why filled.
 */
int cp_create_operator(struct cp *cp, const char *email, const char *display, const char *pw,
                       size_t pw_len, char *why, size_t why_cap);

void cp_devices_create(struct cp_call *c);
void cp_devices_list(struct cp_call *c);
void cp_devices_delete(struct cp_call *c);
void cp_playback_start(struct cp_call *c);
void cp_playback_list(struct cp_call *c);
void cp_playback_heartbeat(struct cp_call *c);
void cp_playback_stop(struct cp_call *c);
void cp_router(struct cp_call *c);
/* Removes a user's devices and ends their leases (user deletion) into b. -1 on store error. */
int cp_user_cleanup(struct cp_call *c, const char *uid, struct cp_batch *b);
/* Ends leases whose time ran out (the periodic sweep). */
void cp_leases_sweep(struct cp *cp, int64_t now);

void cp_shows_list(struct cp_call *c);
void cp_shows_create(struct cp_call *c);
void cp_shows_get(struct cp_call *c);
void cp_shows_put(struct cp_call *c);
void cp_shows_patch(struct cp_call *c);
void cp_shows_delete(struct cp_call *c);

/* catalog.c: a show record as the API shows it (new reference). */
json_t *cp_show_view(const struct cp_call *c, json_t *s);

/* ingest.c: POST and DELETE /v1/shows/{id}/ingest, and the follower of ingests in progress (a
 * timer on the main loop calling the shields' job API). */
void cp_shows_ingest(struct cp_call *c);
void cp_shows_ingest_abandon(struct cp_call *c);
struct cp_ingest;
struct tmt_loop;
struct cp_ingest *cp_ingest_start(struct cp *cp, struct tmt_loop *loop);
void cp_ingest_stop(struct cp_ingest **g);

/* reports.c: report batches from nodes, cache-hit reports, retention. */
void cp_reports_take(struct cp_call *c);
void cp_reports_cache(struct cp_call *c);
void cp_reports_sweep(struct cp *cp, int64_t now_ms);
void cp_reports_mrc(struct cp_call *c);  /* GET /v1/reports/mrc: the nodes' latest curves */
void cp_reports_page(struct cp_call *c); /* GET /reports: the charts page (HTML + script) */

/* watch.c: the viewer page and its web players. */
void cp_watch_page(struct cp_call *c);      /* GET /watch */
void cp_web_lib_missing(struct cp_call *c); /* GET /watch/{hls,dash}.js while not installed: 404 */
/* Answers GET and HEAD of a player's URL while it is loaded (true: req is answered); any thread. */
bool cp_web_serve(struct cp *cp, struct tmt_http_req *req);
/* Reads the players under web.player_dir (start and reload); what is missing is logged once. */
void cp_web_load(struct cp *cp, const struct cp_conf *conf, bool start);
void cp_web_free(struct cp *cp);

void cp_nodes_create(struct cp_call *c);
void cp_nodes_list(struct cp_call *c);
void cp_nodes_get(struct cp_call *c);
void cp_nodes_patch(struct cp_call *c);
void cp_nodes_drain(struct cp_call *c);
void cp_nodes_delete(struct cp_call *c);
void cp_nodes_config(struct cp_call *c);
/* The credential the control plane presents on node nid's admin listener (base64url, 43
 * characters): HMAC-SHA256 of the id under node_admin_key, handed to the node in its config. */
void cp_node_admin_key(const struct cp *cp, const char *nid, char *out, size_t cap);
/* A healthy, active shield with an admin_url for the job that makes asset (rendezvous on the
 * asset): a new reference, or NULL (*n_shields: shields provisioned). Under no lock. */
json_t *cp_pick_job_shield(struct cp_call *c, const char *asset, size_t *n_shields);
/* "IP:PORT" of a node's admin_url ("http://IP:PORT"), into out; false when it has none. */
bool cp_node_admin_addr(json_t *node, char *out, size_t cap);
void cp_nodes_heartbeat(struct cp_call *c);
/* Resolves a node credential for the node in the path (c->node); false after answering 401. */
bool cp_node_auth(struct cp_call *c);
/*
 * The public URL of the edge a playback of asset goes to, into url: the geo choice (coverage
 * zones, then location, then the default group; rendezvous on the asset within the group) among
 * healthy active edges, or playback.edge_url while no edge is provisioned. 0, or -1 after
 * answering 503.
 */
int cp_pick_edge(struct cp_call *c, const char *asset, char *url, size_t cap);
/* GET /v1/route?ip=ADDR&asset=ID: the choice and why (operators). */
void cp_route(struct cp_call *c);
/* Loads geo.zones_file and geo.db_path (start and reload); what does not load is logged and the
 * old data stays. */
void cp_geo_load(struct cp *cp, const struct cp_conf *conf, bool start);

void cp_keys_list(struct cp_call *c);
void cp_keys_rotate(struct cp_call *c);
/* Loads (or makes, at the first start) the secrets and the key ring. 0 or -1 with err. */
int cp_keys_load(struct cp *cp, struct tmt_err *err);
/* Signs a token with the current key; returns its length or -1. Thread-safe. */
long cp_keys_sign(struct cp *cp, const struct tmt_token_claims *claims, char *out, size_t cap);
/* Drops retired keys whose last token has expired. */
void cp_keys_sweep(struct cp *cp, int64_t now);

#endif
