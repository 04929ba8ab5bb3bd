/*
 * server.h: the HTTP server every daemon runs: HTTP/1.1 (keep-alive, pipelining, chunked bodies),
 * h2c with prior knowledge, and (with a TLS context) h2 and HTTP/1.1 over TLS chosen by ALPN,
 * behind one request/response abstraction.
 *
 * Threads. A server either owns `workers` threads, each with its own event loop and its own
 * SO_REUSEPORT listening socket per address (no lock on the request path), or runs on one given
 * loop (the admin listener on the main loop). A connection, its requests and everything a handler
 * does for them stay on the thread that accepted it. Handlers run on that thread and must not
 * block it.
 *
 * Requests. The handler gets a struct tmt_http_req whose public fields are read-only views into
 * memory the server owns: valid until the response is ended (tmt_http_resp_end or one of the
 * tmt_http_respond* calls). A handler may answer at once or later from the same loop (after a
 * fill, say); it must answer exactly once, even when the client has gone (answers to a request
 * whose client went away are dropped, and the body pieces released). HTTP/1.1 requests on one
 * connection are handled one at a time, in order; HTTP/2 streams concurrently.
 *
 * Bodies go out without copies where possible: tmt_http_resp_ref hands memory with a release
 * callback, tmt_http_resp_file sends a file range with sendfile on plain connections. HEAD and 304
 * responses drop body pieces automatically (releasing them), so handlers treat HEAD like GET.
 */
#ifndef TMT_SERVER_H
#define TMT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tmt/base.h"
#include "tmt/err.h"
#include "tmt/http.h"

struct tmt_loop;
struct tmt_metrics;
struct tmt_tls;

/* A request as handlers see it. Read-only for handlers except the fields marked writable. */
struct tmt_http_req {
    unsigned magic;
#define TMT_HTTP_REQ_MAGIC 0x7e9e5700u
    enum tmt_http_method method;
    int version; /* 10, 11 or 20 */
    struct tmt_slice method_name;
    struct tmt_slice target;    /* as sent (h1) or :path (h2) */
    struct tmt_slice path;      /* target up to '?', still percent-encoded */
    struct tmt_slice query;     /* after '?', p NULL when there is none */
    struct tmt_slice authority; /* Host or :authority; len 0 if absent */
    const struct tmt_http_header *headers;
    size_t n_headers;
    struct tmt_slice
        body;           /* the whole request body (buffered up to the body limit); len 0 if none */
    uint64_t id;        /* request id, for rid= in logs */
    unsigned worker;    /* index of the worker thread: the metrics shard to write */
    const char *client; /* client address as text ("127.0.0.1", "::1") */
    bool tls;

    /* Writable by the handler, read when the access log line is written. */
    struct tmt_slice log_path; /* path to log (default: path); set it to hide secrets */
    const char
        *cache_status; /* short cache outcome for the access log ("hit", "miss"); NULL: "-" */
};

typedef void tmt_http_handler_fn(struct tmt_http_req *req, void *arg);

/* Releases what a body piece pointed at once the server is done with it. */
typedef void tmt_release_fn(void *arg);

/* Limits and timeouts. Every one is a budget a hostile client meets, so each has a safe default. */
struct tmt_server_limits {
    uint64_t header_timeout_ms; /* from the first byte of a request head to its end */
    uint64_t body_timeout_ms;   /* between body reads */
    uint64_t idle_timeout_ms;   /* keep-alive wait for the next request */
    uint64_t write_timeout_ms;  /* without progress writing to the client */
    uint64_t shutdown_grace_ms; /* how long a graceful stop lets in-flight requests finish */
    size_t max_head_bytes;      /* request line and headers; more gives 431 */
    size_t max_target_len;      /* request-target; longer gives 414 */
    size_t max_headers;         /* header fields; more gives 431 (at most TMT_SERVER_HEADERS_CAP) */
    size_t max_body_bytes;      /* request body; larger gives 413 */
    unsigned max_connections;   /* per server, shared out evenly among the workers */
    unsigned h2_max_streams;    /* concurrent HTTP/2 streams per connection */
    /*
     * CORS (players on other origins): "*" gives every request with an Origin
     * "Access-Control-Allow-Origin: *"; a list of origins separated by spaces or commas
     * ("https://a.example https://b.example:8443") gives only requests whose Origin is one of
     * them that Origin back, with "Vary: Origin". Such requests also get the exposed headers,
     * and their preflights (OPTIONS with Access-Control-Request-Method) are answered 204 without
     * reaching the handler. "" = off.
     */
    char cors_origin[512];
};

#define TMT_SERVER_HEADERS_CAP 256

/* The defaults: 10 s header, 10 s body, 60 s idle, 30 s write, 10 s grace, 8 KiB head, ... */
void tmt_server_limits_default(struct tmt_server_limits *l);

struct tmt_server_opts {
    const char *name;      /* Server header value, e.g. "tomato/0.1.0" */
    unsigned workers;      /* worker threads (>= 1); ignored when loop is set */
    struct tmt_loop *loop; /* run on this loop instead of owning threads (admin listeners) */
    struct tmt_server_limits limits;
    tmt_http_handler_fn *handler;
    void *handler_arg;
    /*
     * Registry for the server's counters (registered by tmt_server_new, so it must not be sealed
     * yet), and the first shard: worker i writes shard metrics_shard + i. NULL: count privately.
     */
    struct tmt_metrics *metrics;
    unsigned metrics_shard;
    int access_log_fd; /* -1: no access log; lines are written in batches */
    /*
     * Called once per finished request (when its access log line would be written), on the
     * worker that served it, with the status and the body bytes sent; NULL: none. For per-path
     * accounting: it must be quick and must not touch req after returning.
     */
    void (*on_done)(void *arg, const struct tmt_http_req *req, int status, uint64_t body_bytes);
    void *on_done_arg;
};

struct tmt_server;

/* A server, not yet listening. NULL with err filled on failure. */
struct tmt_server *tmt_server_new(const struct tmt_server_opts *opts, struct tmt_err *err);

/*
 * Adds a listening address ("127.0.0.1:8080", "[::1]:0", ":8080" for all addresses). With tls
 * non-NULL the listener speaks TLS (the server takes a reference). Port 0 picks one port for all
 * workers. Before tmt_server_start. Returns 0, or TMT_EIO/TMT_EINVAL with err filled.
 */
int tmt_server_listen(struct tmt_server *s, const char *addr, struct tmt_tls *tls,
                      struct tmt_err *err) TMT_MUST_CHECK;

/* The port listener i ended up on (for port 0). */
uint16_t tmt_server_port(const struct tmt_server *s, size_t i);

/* Starts the workers (or registers on the given loop). Returns 0 or an error with err filled. */
int tmt_server_start(struct tmt_server *s, struct tmt_err *err) TMT_MUST_CHECK;

/* New limits for connections from now on (reload). Any thread that owns the server. */
void tmt_server_set_limits(struct tmt_server *s, const struct tmt_server_limits *l);

/*
 * Replaces the TLS context of TLS listener i (certificate rotation on reload): connections
 * accepted from then on use tls (the server takes a reference); connections already open keep
 * the context they started with. Returns TMT_EINVAL if listener i is not a TLS listener.
 */
int tmt_server_set_tls(struct tmt_server *s, size_t i, struct tmt_tls *tls) TMT_MUST_CHECK;

/*
 * Graceful stop: close the listeners, close idle connections, let in-flight requests finish
 * (their connections close after the response), and after shutdown_grace_ms close whatever is
 * left. With owned workers this blocks until every worker thread has exited. With a given loop
 * it returns at once and the connections wind down on that loop.
 */
void tmt_server_stop(struct tmt_server *s);

/* Frees a stopped (or never started) server. NULL-safe. */
void tmt_server_free(struct tmt_server **s);

/* ---- responses ---- */

/*
 * Starts the response: status and header fields (the server adds Date, Server, and the framing:
 * Content-Length or chunked on HTTP/1.1, Connection when it closes). content_length is the body
 * size, or -1 if unknown (chunked on HTTP/1.1, read-to-close on 1.0). For HEAD, pass the length a
 * GET would get. Header names and values are copied; they must not contain CR or LF (asserted:
 * handlers build them). Returns 0, or TMT_EINVAL if a response was already started.
 */
int tmt_http_resp_start(struct tmt_http_req *req, int status, const struct tmt_http_header *h,
                        size_t n, int64_t content_length) TMT_MUST_CHECK;

/* Queues len bytes by reference; release(arg) runs once they are sent or dropped. */
void tmt_http_resp_ref(struct tmt_http_req *req, const void *p, size_t len, tmt_release_fn *release,
                       void *arg);

/* Queues a copy of len bytes (for small generated bodies). */
void tmt_http_resp_copy(struct tmt_http_req *req, const void *p, size_t len);

/*
 * Queues len bytes of file fd from offset off; sent with sendfile on plain connections. The fd
 * stays the caller's: release(arg) runs once the bytes are sent or dropped, and may close it.
 */
void tmt_http_resp_file(struct tmt_http_req *req, int fd, off_t off, size_t len,
                        tmt_release_fn *release, void *arg);

/* Ends the response. After this the handler must not touch req again. */
void tmt_http_resp_end(struct tmt_http_req *req);

/* Whole response with a copied body of content_type (NULL: no Content-Type). Ends the request. */
void tmt_http_respond(struct tmt_http_req *req, int status, const char *content_type,
                      const void *body, size_t len);

/*
 * An error answer: the status and a one-line text/plain body "<status> <reason text>: <why>\n"
 * (why may be NULL). Ends the request.
 */
void tmt_http_respond_error(struct tmt_http_req *req, int status, const char *why);

/* True when the client has gone; a handler waiting on something may stop early. */
bool tmt_http_req_aborted(const struct tmt_http_req *req);

/* The loop of the worker handling req (for timers, clients and posts from other threads). */
struct tmt_loop *tmt_http_req_loop(const struct tmt_http_req *req);

/* ---- serving a stored representation: conditionals, ranges, HEAD in one place ---- */

struct tmt_http_entity {
    uint64_t size;
    const char *content_type;            /* NULL: none */
    struct tmt_http_validators val;      /* ETag and Last-Modified */
    const struct tmt_http_header *extra; /* more header fields (Cache-Control, ...) */
    size_t n_extra;
    /* Body source: memory (p != NULL) or a file (fd >= 0, from offset file_off). */
    const void *p;
    int fd;
    off_t file_off;
    tmt_release_fn *release; /* runs once when the server is done with p or fd */
    void *release_arg;
};

/*
 * Answers req from entity: evaluates the conditional headers (304, 412), If-Range and Range
 * (206 with Content-Range, 416), adds ETag, Last-Modified and Accept-Ranges, and sends the body
 * (none for HEAD and 304). Ends the request; release runs in every case.
 */
void tmt_http_serve_entity(struct tmt_http_req *req, const struct tmt_http_entity *e);

#endif
