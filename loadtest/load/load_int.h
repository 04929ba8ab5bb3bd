/*
 * load_int.h: what the files of tomato-load share: the settings, the per-worker request layer
 * (run.c) and the two drivers (replay.c, viewer.c).
 *
 * Threads: one struct load_worker per worker thread, each with its own loop and HTTP client;
 * a worker's requests, drivers and stats are touched only by its thread, except `live`, which
 * the main thread reads (relaxed atomics) for the progress line. The request budget and the stop
 * flag are process-wide atomics. Stats are merged after the threads are joined.
 */
#ifndef LOAD_INT_H
#define LOAD_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tmt/client.h"
#include "tmt/config.h"
#include "tmt/load_lib.h"

enum load_mode { LOAD_MODE_VIEWERS, LOAD_MODE_REPLAY, LOAD_MODE_GEN };

struct load_conf {
    char *target;
    char *host;
    int http; /* 0 HTTP/1.1, 1 HTTP/2 */
    bool insecure, tls_resume;
    char *ca_file;
    int64_t h2_streams;
    char *token;
    char *token_file;
    char *control_url, *accounts;
    int64_t devices_per_account;
    uint64_t heartbeat_ms;
    int mode;
    uint64_t duration_ms;
    int64_t requests;
    int64_t workers;
    bool json;
    bool progress;
    uint64_t connect_timeout_ms, timeout_ms;
    int64_t viewers;
    uint64_t ramp_ms;
    struct tmt_conf_list assets;
    char *zipf_alpha;
    int pace;       /* 0 realtime, 1 fast */
    int connection; /* 0 shared (the worker's pool), 1 per-viewer */
    char *watch_mean;
    uint64_t buffer_ms, think_ms;
    char *abr_safety;
    int64_t seed;
    char *trace;
    int64_t rate;
    int64_t connections;
    char *gen_out;
    int64_t gen_requests;
    uint64_t gen_duration_ms;
    int64_t gen_assets, gen_first_asset, gen_rungs, gen_seg_min, gen_seg_max;
    char *gen_churn, *gen_alpha, *gen_sessions, *gen_watch;
    bool gen_fast;
};

/* A viewer's control-plane identity: its account's session token and its device. */
struct load_cred {
    char session[128];
    char device[80];
};

/* What a run derived from the settings: where to send, and the parsed numbers. */
struct load_plan {
    const struct load_conf *conf;
    char upstream[128];  /* "127.0.0.1:8080" */
    char ip[128];        /* "127.0.0.1" or "::1" */
    char authority[256]; /* Host / :authority: target.host or upstream */
    struct sockaddr_storage ss;
    socklen_t sslen;
    bool tls, h2;  /* https://, target.http=2 */
    void *ssl_ctx; /* SSL_CTX * for https, made by load_run */
    bool control;  /* tokens from the control plane (control.url) */
    char control_upstream[128];
    struct load_cred *creds; /* control: one per viewer (global index) */
    char prefix[512];        /* "" or "/base" (+ "/t/TOKEN") put before every /v/ path */
    double alpha, watch_mean, abr_safety;
    unsigned workers;
};

enum load_err_class {
    LOAD_ERR_CONNECT,
    LOAD_ERR_TIMEOUT,
    LOAD_ERR_4XX,
    LOAD_ERR_5XX,
    LOAD_ERR_OTHER,
    LOAD_ERR_N
};

enum load_xcache {
    LOAD_XC_HOT,
    LOAD_XC_WARM,
    LOAD_XC_COLD,
    LOAD_XC_MISS,
    LOAD_XC_STALE,
    LOAD_XC_REVALIDATED,
    LOAD_XC_OTHER, /* another value */
    LOAD_XC_NONE,  /* no X-Cache (or no response) */
    LOAD_XC_N
};

struct load_stats {
    uint64_t requests, bytes, status[6]; /* status[k]: responses kxx (k 1..5), [0] none */
    uint64_t errors[LOAD_ERR_N];
    uint64_t xcache[LOAD_XC_N];
    uint64_t cancelled; /* in flight when the time ran out */
    uint64_t sessions, sessions_abandoned, segments, switches, stalls, stall_ms;
    uint64_t playbacks, control_errors; /* control: POST /v1/playback answered, failed */
    uint64_t heartbeats;                /* control: lease heartbeats answered 200 */
    uint64_t tls_handshakes, tls_resumed;
    struct tmt_hist ttfb_us, total_us;
    /* the same, split by X-Cache: [LOAD_HM_HIT] starts with HIT, [LOAD_HM_MISS] with MISS */
    struct tmt_hist ttfb_hm_us[2], total_hm_us[2];
};

enum load_hm { LOAD_HM_HIT, LOAD_HM_MISS, LOAD_HM_NONE };

/* What the progress line reads from another thread. */
struct load_live {
    uint64_t requests, bytes, errors, hits, with_xcache;
};

struct load_result {
    int rc;     /* 0 or the client's error */
    int status; /* 0 without a response */
    enum load_xcache xc;
    uint64_t bytes;
    uint64_t ttfb_us, total_us;
    const char *body; /* the body when kept (valid during the callback), else NULL */
    size_t body_len;
};

typedef void load_done_fn(void *arg, const struct load_result *res);

struct load_worker;

/* ---- conn.c: connections for HTTP/1.1 over TLS and HTTP/2 ---- */

struct lc_client;
struct lc_call;
struct tmt_loop;
struct lc_opts {
    void *ssl_ctx; /* SSL_CTX *: TLS; NULL: plain TCP */
    bool h2;       /* HTTP/2 (ALPN h2 over TLS, prior knowledge without); else HTTP/1.1 */
    char upstream[128], ip[128], authority[256];
    char sni[256]; /* server name to send and verify; "" = none, verify ip */
    uint64_t connect_timeout_ms, timeout_ms;
    unsigned max_streams; /* h2: concurrent streams per connection before another one opens */
    bool tls_resume;      /* new connections resume the client's latest TLS session */
};
/* A client SSL_CTX offering one protocol by ALPN, verifying the target's certificate against
 * ca_file (or the system's CAs when empty) unless insecure. NULL with err filled. */
void *lc_tls_ctx_new(bool h2, const char *ca_file, bool insecure, struct tmt_err *err);
void lc_tls_ctx_free(void *ctx);
struct lc_client *lc_client_new(struct tmt_loop *loop, const struct lc_opts *o,
                                const struct sockaddr_storage *ss, socklen_t sslen);
/* Cancels what is in progress and frees (not from a callback). */
void lc_client_free(struct lc_client **c);
/* A GET of path with the core client's callback contract (client.h): on_head, on_data, then
 * on_done exactly once, never from inside lc_fetch. */
struct lc_call *lc_fetch(struct lc_client *c, const char *path,
                         const struct tmt_http_client_cbs *cbs, void *arg);
void lc_call_cancel(struct lc_call **call);
/* Adds the client's completed TLS handshakes and those that resumed a session. */
void lc_client_tls_stats(const struct lc_client *c, uint64_t *handshakes, uint64_t *resumed);

/* ---- control.c: tokens from the control plane ---- */

/* Main thread, before the run: logs the accounts in and finds or registers the viewers' devices
 * (plan->creds). -1 after printing why. */
int load_control_prepare(struct load_plan *p);
/* Token and asset id of a POST /v1/playback answer; false when absent or unfit for a path. */
bool load_control_parse_playback(const char *body, size_t len, char *token, size_t tn, char *asset,
                                 size_t an, char *lease, size_t ln);

/* ---- run.c: the request layer ---- */

/* Starts a GET of path (prefix applied by the caller) unless the request budget is spent or the
 * run is stopping: false then, and cb is never called. keep_body keeps up to 1 MiB of body for
 * the callback. cb runs on the worker's loop, once. */
bool load_fetch(struct load_worker *w, const char *path, bool keep_body, load_done_fn *cb,
                void *arg);
/* Connections to the target: the core client for plain HTTP/1.1, conn.c for TLS and HTTP/2. */
struct load_client;
/* The same through another client of the worker's loop (a viewer's own connection). */
bool load_fetch_via(struct load_worker *w, struct load_client *client, const char *path,
                    bool keep_body, load_done_fn *cb, void *arg);
/* A client on the worker's loop with the run's protocol and timeouts. own: for one viewer (one
 * connection at a time, kept until the target closes it); else the worker's shared pool. */
struct load_client *load_client_new(struct load_worker *w, bool own);
/* Frees c after adding its TLS figures to w's stats. */
void load_client_free(struct load_worker *w, struct load_client **c);
/* The worker's loop, plan, index, stats, and a timer helper (one-shot, ms from now). */
struct tmt_loop *load_worker_loop(struct load_worker *w);
const struct load_plan *load_worker_plan(struct load_worker *w);
unsigned load_worker_index(struct load_worker *w);
struct load_stats *load_worker_stats(struct load_worker *w);
bool load_worker_stopping(struct load_worker *w);
/* Tells the worker its driver has nothing more to send (the worker ends when nothing is in
 * flight). */
void load_worker_driver_done(struct load_worker *w);

struct event;
struct event *load_timer_new(struct load_worker *w, void (*cb)(int, short, void *), void *arg);
void load_timer_arm(struct event *ev, uint64_t ms);

/* Drivers: start on the worker's loop; free after the loop returned. */
void *load_replay_start(struct load_worker *w);
void load_replay_free(void *d);
void *load_viewers_start(struct load_worker *w);
void load_viewers_free(void *d);

/* Runs the load as the plan says; prints the report; returns the exit code. */
int load_run(struct load_plan *plan);

#endif
