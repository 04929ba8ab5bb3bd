/*
 * client.h: an HTTP/1.1 client on a worker's own loop, for the calls daemons make to each other
 * (fills from an upstream, node -> control plane): a keep-alive connection pool per upstream
 * address, timeouts on every phase, response bodies streamed to the caller with backpressure,
 * and errors that say what failed.
 *
 * Threads: a client belongs to one loop; every function is called on that loop's thread and every
 * callback runs there. Nothing here blocks: addresses are numeric (host:port), connects are
 * non-blocking.
 *
 * A call's callbacks: on_head once when the response head has arrived, on_data for each piece of
 * the body (already de-chunked), on_done exactly once at the end, successful or not (rc 0, or
 * TMT_ETIMEDOUT / TMT_EUPSTREAM / TMT_EIO / TMT_ELIMIT, or TMT_EINVAL for a bad upstream address,
 * CR/LF/NUL in a field, or a Host, Content-Length or Transfer-Encoding the caller passed; err is
 * never NULL and says what happened). After on_done, or after tmt_http_call_cancel, the call
 * handle is gone (cancelling from inside on_done does nothing). Pointers handed to callbacks are
 * valid only during the callback. tmt_http_client_free must not be called from a callback.
 * Pause holds back on_head too while the head is not delivered. A timeout of 0 means none.
 *
 * Connections go back to the pool only after a complete response whose framing allows reuse
 * (Content-Length or chunked, no "Connection: close"); a pooled connection that the upstream has
 * closed is detected before reuse, and a request that fails on a reused connection before any
 * byte of the response arrived is retried once on a new connection (idempotent methods only).
 */
#ifndef TMT_CLIENT_H
#define TMT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/err.h"
#include "tmt/http.h"

struct tmt_loop;
struct tmt_http_client;
struct tmt_http_call;

struct tmt_http_client_opts {
    uint64_t connect_timeout_ms;  /* TCP connect */
    uint64_t response_timeout_ms; /* from the request sent to the response head */
    uint64_t read_timeout_ms;     /* longest pause while the body arrives */
    uint64_t idle_timeout_ms;     /* a pooled connection is closed after this long unused */
    size_t max_idle_per_upstream; /* pooled connections kept per address */
    size_t max_head_bytes;        /* response head limit (TMT_ELIMIT beyond) */
    size_t max_headers;           /* response header count limit (at most 128) */
};

/* Defaults: connect 2 s, response 10 s, read 10 s, idle 30 s, 32 idle per upstream, 16 KiB head
 * limit minus slack, 100 headers. */
void tmt_http_client_opts_default(struct tmt_http_client_opts *o);

struct tmt_http_client *tmt_http_client_new(struct tmt_loop *loop,
                                            const struct tmt_http_client_opts *o);

/* Cancels every call in progress (their on_done runs with TMT_EIO, "client closed") and frees. */
void tmt_http_client_free(struct tmt_http_client **c);

struct tmt_http_client_req {
    const char *upstream; /* "127.0.0.1:8300" or "[::1]:8300" (numeric) */
    enum tmt_http_method method;
    struct tmt_slice path;                 /* origin-form target: path and query */
    struct tmt_slice host;                 /* Host header value; len 0: the upstream string */
    const struct tmt_http_header *headers; /* more fields (Authorization, ...); copied */
    size_t n_headers;
    struct tmt_slice body; /* request body, copied; sent with Content-Length */
};

struct tmt_http_client_resp {
    int status;
    const struct tmt_http_header *headers;
    size_t n_headers;
    int64_t content_length; /* -1 if unknown */
};

struct tmt_http_client_cbs {
    void (*on_head)(void *arg, const struct tmt_http_client_resp *resp);
    void (*on_data)(void *arg, const char *p, size_t len);
    void (*on_done)(void *arg, int rc, const struct tmt_err *err);
};

/*
 * Starts a call. Returns the handle (never NULL; failures such as a bad upstream address are
 * reported through on_done, from the loop, never from inside this function).
 */
struct tmt_http_call *tmt_http_client_fetch(struct tmt_http_client *c,
                                            const struct tmt_http_client_req *req,
                                            const struct tmt_http_client_cbs *cbs, void *arg);

/*
 * Stops delivering body pieces (the connection is not read, so the upstream is held back by TCP)
 * until resume. For callers whose consumer is slower than the upstream.
 */
void tmt_http_call_pause(struct tmt_http_call *call);
void tmt_http_call_resume(struct tmt_http_call *call);

/* Abandons a call: no more callbacks; its connection is closed (not pooled). */
void tmt_http_call_cancel(struct tmt_http_call **call);

/* Counters of a client, for the daemon's metrics. */
struct tmt_http_client_stats {
    uint64_t calls, connects, reused, retries, failures, timeouts;
};
void tmt_http_client_stats(const struct tmt_http_client *c, struct tmt_http_client_stats *out);

#endif
