/*
 * conn.c: tomato-load's own connections for what the core client does not speak: HTTP/1.1 over
 * TLS and HTTP/2 (over TLS by ALPN, or h2c with prior knowledge), through OpenSSL and nghttp2's
 * client session. Plain HTTP/1.1 stays on the core client (run.c chooses).
 *
 * Objects. A client (one per worker, or one per viewer with viewers.connection=per-viewer) owns
 * its connections and its calls. An HTTP/1.1 connection serves one call at a time and goes back
 * to the client's idle list after a response whose framing allows reuse; an HTTP/2 connection
 * carries up to `max_streams` calls at once (fewer if the target's SETTINGS say so; nghttp2
 * queues the rest), and the client opens another one when all are full. Calls come from a
 * freelist and connections keep their buffers, so the steady state allocates only in nghttp2.
 *
 * I/O. Each connection has a persistent read event, a write event armed while output waits (or
 * the TLS handshake wants to write) and one timer: the connect timeout until the handshake is
 * done, then the read timeout while calls are active (reset by every read; a connection that
 * stays silent that long fails all its calls with TMT_ETIMEDOUT). Idle connections have no timer:
 * they live until the target closes them, as a player's do.
 *
 * Re-entrancy. Callbacks (on_head, on_data, on_done) may start new calls and cancel calls. A
 * connection is never freed while one of its handlers runs (`busy`): closing then marks it dead
 * and the handler frees it on the way out. A call ended or cancelled inside its own callback is
 * recycled when the callback returns.
 *
 * Errors use the core client's words, so the request layer classifies them the same way:
 * "ADDR: connect: ..." for connects that fail, TMT_ETIMEDOUT for timeouts, TMT_EUPSTREAM for the
 * rest (TLS handshake, certificate, ALPN, resets, truncated bodies).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "load_int.h"
#include "tmt/h1.h"
#include "tmt/loop.h"

#define LC_CLIENT_MAGIC 0x1c0c1100u
#define LC_CONN_MAGIC 0x1c0c0c00u
#define LC_CALL_MAGIC 0x1c0ca110u
#define LC_RBUF 16384
#define LC_HDRS 64
#define LC_HBUF 4096 /* h2: bytes of response header names and values kept per call */

enum lc_state { LC_CONNECTING, LC_HANDSHAKE, LC_READY };
enum lc_framing { LC_FR_NONE, LC_FR_LENGTH, LC_FR_CHUNKED, LC_FR_CLOSE };

struct lc_conn;

struct lc_call {
    unsigned magic;
    struct lc_client *c;
    struct lc_conn *conn;
    struct lc_call *prev, *next; /* the client's calls in progress, or its freelist */
    struct tmt_http_client_cbs cbs;
    void *arg;
    int32_t stream_id;
    bool head_done, cancelled, ended;
    unsigned in_cb;
    /* h1 */
    bool reused, retried, got_bytes; /* for the one retry of a request on a stale connection */
    char *path;                      /* kept for that retry; the buffer stays with the call */
    size_t path_cap;
    size_t scanned;
    enum lc_framing framing;
    bool reusable;
    uint64_t body_left;
    struct tmt_h1_chunked dec;
    /* h2: the response head as it arrives */
    int status;
    int64_t clen;
    size_t nh, hlen;
    struct tmt_http_header hdrs[LC_HDRS];
    char hbuf[LC_HBUF];
    struct tmt_err err;
    struct event ev_fail; /* a failure inside lc_fetch is reported from the loop */
};

struct lc_conn {
    unsigned magic;
    struct lc_client *c;
    struct lc_conn *prev, *next; /* the client's connections */
    int fd;
    SSL *ssl;
    enum lc_state state;
    bool dead, write_armed, h2_closing, in_recv;
    unsigned busy;
    struct event ev_read, ev_write, ev_timer;
    char *out;
    size_t out_len, out_off, out_cap;
    struct lc_call *call; /* h1: the call being served, NULL when idle */
    nghttp2_session *ng;
    unsigned n_streams;
    uint32_t rlen, rpos;
    char rbuf[LC_RBUF];
};

struct lc_client {
    unsigned magic;
    struct tmt_loop *loop;
    struct event_base *base;
    struct lc_opts o;
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct tmt_h1_limits limits;
    struct lc_conn *conns;
    size_t n_conns;
    struct lc_call *calls, *free_calls;
    unsigned in_cb;
    SSL_SESSION *sess; /* the latest TLS session (ticket) of this client, for resumption */
    uint64_t handshakes, resumed;
};

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_flush(struct lc_conn *k);
static void h1_start(struct lc_conn *k, struct lc_call *call, const char *path);
static struct lc_conn *conn_new(struct lc_client *c, int *sys_errno);
static void fail_deferred(evutil_socket_t fd, short what, void *arg);

/* ---- TLS contexts ---- */

/*
 * A new session (TLS 1.3: a ticket after the handshake) goes to the connection's client: its
 * next connections resume it. A copy: OpenSSL marks a connection's own session not resumable
 * when the connection ends without close_notify, as an edge's idle close does. The callback runs
 * on the thread of the connection's loop.
 */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct lc_conn *k = SSL_get_app_data(ssl);
    if (k == NULL || !k->c->o.tls_resume)
        return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy == NULL)
        return 0;
    if (k->c->sess != NULL)
        SSL_SESSION_free(k->c->sess);
    k->c->sess = copy;
    return 0; /* sess stays OpenSSL's */
}

void *lc_tls_ctx_new(bool h2, const char *ca_file, bool insecure, struct tmt_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn_h2[] = "\x02h2";
    static const unsigned char alpn_h1[] = "\x08http/1.1";
    if (h2)
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2) - 1);
    else
        SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file != NULL && ca_file[0] != '\0'
                 ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        tmt_err_set(err, TMT_EINVAL, "cannot load CA certificates from %s: %s",
                    ca_file != NULL && ca_file[0] ? ca_file : "the system's default paths", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void lc_tls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* ---- calls ---- */

static struct lc_call *call_get(struct lc_client *c)
{
    struct lc_call *call = c->free_calls;
    char *path = NULL;
    size_t path_cap = 0;
    if (call != NULL) {
        c->free_calls = call->next;
        path = call->path;
        path_cap = call->path_cap;
    } else {
        call = tmt_xmalloc(sizeof(*call));
    }
    memset(call, 0, offsetof(struct lc_call, hdrs));
    call->path = path;
    call->path_cap = path_cap;
    call->magic = LC_CALL_MAGIC;
    call->c = c;
    call->stream_id = -1;
    call->clen = -1;
    tmt_err_clear(&call->err);
    evtimer_assign(&call->ev_fail, c->base, fail_deferred, call);
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    return call;
}

static void call_unlink(struct lc_call *call)
{
    struct lc_client *c = call->c;
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->prev = NULL;
    call->next = NULL;
}

static void call_recycle(struct lc_call *call)
{
    struct lc_client *c = call->c;
    call->magic = LC_CALL_MAGIC;
    call->cbs.on_done = NULL;
    call->next = c->free_calls;
    c->free_calls = call;
}

/* Reports the end of a call (once) and recycles it unless a callback of it is running. */
static void call_done(struct lc_call *call, int rc)
{
    if (call->ended || call->cancelled)
        return;
    call->ended = true;
    call->conn = NULL;
    call_unlink(call);
    call->in_cb++;
    call->c->in_cb++;
    call->cbs.on_done(call->arg, rc, &call->err);
    call->c->in_cb--;
    call->in_cb--;
    if (call->in_cb == 0)
        call_recycle(call);
}

static bool call_head(struct lc_call *call, const struct tmt_http_client_resp *resp)
{
    call->head_done = true;
    if (call->cbs.on_head == NULL)
        return true;
    call->in_cb++;
    call->cbs.on_head(call->arg, resp);
    call->in_cb--;
    if (call->cancelled && call->in_cb == 0) {
        call_recycle(call);
        return false;
    }
    return !call->cancelled;
}

static bool call_data(struct lc_call *call, const char *p, size_t n)
{
    if (n == 0 || call->cbs.on_data == NULL)
        return !call->cancelled;
    call->in_cb++;
    call->cbs.on_data(call->arg, p, n);
    call->in_cb--;
    if (call->cancelled && call->in_cb == 0) {
        call_recycle(call);
        return false;
    }
    return !call->cancelled;
}

static void call_fail(struct lc_call *call, int rc, const char *what, int sys_errno)
{
    if (sys_errno != 0)
        tmt_err_set_errno(&call->err, rc, sys_errno, "%s: %s", call->c->o.upstream, what);
    else
        tmt_err_set(&call->err, rc, "%s: %s", call->c->o.upstream, what);
    call_done(call, rc);
}

/* ---- connections ---- */

static void conn_unlink(struct lc_conn *k)
{
    struct lc_client *c = k->c;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    c->n_conns--;
}

static void conn_free(struct lc_conn *k)
{
    event_del(&k->ev_read);
    event_del(&k->ev_write);
    event_del(&k->ev_timer);
    if (k->ng != NULL)
        nghttp2_session_del(k->ng);
    if (k->ssl != NULL)
        SSL_free(k->ssl);
    close(k->fd);
    free(k->out);
    k->magic = 0;
    free(k);
}

/*
 * A request that failed on a reused HTTP/1.1 connection before any byte of its response most
 * likely met the target's keep-alive close: it goes again, once, on a new connection (GET is
 * idempotent), as the core client does. false: it may not (the caller fails it).
 */
static bool h1_retry(struct lc_call *call)
{
    if (!call->reused || call->got_bytes || call->retried || call->path == NULL)
        return false;
    int sys_errno = 0;
    struct lc_conn *k = conn_new(call->c, &sys_errno);
    if (k == NULL)
        return false;
    call->retried = true;
    call->reused = false;
    h1_start(k, call, call->path);
    return true;
}

/*
 * Fails every call on the connection with rc and closes it (freed now, or by the handler that
 * runs on it). The calls' callbacks may start calls: they go to other connections.
 */
static void conn_fail(struct lc_conn *k, int rc, const char *what, int sys_errno)
{
    if (k->dead)
        return;
    k->dead = true;
    conn_unlink(k);
    event_del(&k->ev_read);
    event_del(&k->ev_write);
    event_del(&k->ev_timer);
    k->busy++;
    if (k->call != NULL) {
        struct lc_call *call = k->call;
        k->call = NULL;
        if (rc != TMT_EUPSTREAM || !h1_retry(call))
            call_fail(call, rc, what, sys_errno);
    }
    /* h2: the calls whose stream is on this connection (from the start each time: a callback
     * may start or cancel calls) */
    for (;;) {
        struct lc_call *call = k->c->calls;
        while (call != NULL && call->conn != k)
            call = call->next;
        if (call == NULL)
            break;
        call_fail(call, rc, what, sys_errno);
    }
    k->busy--;
    if (k->busy == 0)
        conn_free(k);
}

static void conn_arm_timer(struct lc_conn *k, uint64_t ms)
{
    if (ms == 0) {
        event_del(&k->ev_timer);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(&k->ev_timer, &tv);
}

/* The timer while calls wait: the connect timeout before the handshake, then the read timeout. */
static void conn_rearm(struct lc_conn *k)
{
    bool active = k->ng != NULL ? k->n_streams > 0 : k->call != NULL;
    if (k->state != LC_READY)
        conn_arm_timer(k, k->c->o.connect_timeout_ms);
    else if (active)
        conn_arm_timer(k, k->c->o.timeout_ms);
    else
        event_del(&k->ev_timer);
}

static void ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, n, "connection closed");
    else
        ERR_error_string_n(e, buf, n);
    ERR_clear_error();
}

/* Reads into buf: > 0 bytes, 0 at EOF, -1 would block, -2 error (errno or TLS reason in what). */
static ssize_t conn_read(struct lc_conn *k, char *buf, size_t n, char *what, size_t wn)
{
    if (k->ssl == NULL) {
        for (;;) {
            ssize_t r = read(k->fd, buf, n);
            if (r >= 0)
                return r;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -1;
            snprintf(what, wn, "read: %s", strerror(errno));
            return -2;
        }
    }
    ERR_clear_error();
    int r = SSL_read(k->ssl, buf, (int)TMT_MIN(n, (size_t)INT32_MAX));
    if (r > 0)
        return r;
    int e = SSL_get_error(k->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -1;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return 0; /* EOF without close_notify: the target closed */
    char why[200];
    ssl_reason(why, sizeof(why));
    snprintf(what, wn, "TLS read: %s", why);
    return -2;
}

/* Writes the pending output; arms the write event while some is left. */
static void conn_flush(struct lc_conn *k)
{
    if (k->dead || k->state != LC_READY)
        return;
    if (k->ng != NULL && !k->in_recv) {
        /* move nghttp2's pending frames to the output buffer */
        for (;;) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(k->ng, &data);
            if (n < 0) {
                conn_fail(k, TMT_EUPSTREAM, nghttp2_strerror((int)n), 0);
                return;
            }
            if (n == 0)
                break;
            if (k->out_len + (size_t)n > k->out_cap) {
                size_t cap = TMT_MAX(k->out_cap * 2, k->out_len + (size_t)n);
                k->out = tmt_xrealloc(k->out, cap);
                k->out_cap = cap;
            }
            memcpy(k->out + k->out_len, data, (size_t)n);
            k->out_len += (size_t)n;
        }
    }
    while (k->out_off < k->out_len) {
        size_t left = k->out_len - k->out_off;
        ssize_t w;
        if (k->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_write(k->ssl, k->out + k->out_off, (int)TMT_MIN(left, (size_t)INT32_MAX));
            if (r <= 0) {
                int e = SSL_get_error(k->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    break;
                char why[200], what[256];
                ssl_reason(why, sizeof(why));
                snprintf(what, sizeof(what), "TLS write: %s", why);
                conn_fail(k, TMT_EUPSTREAM, what, 0);
                return;
            }
            w = r;
        } else {
            w = send(k->fd, k->out + k->out_off, left, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_fail(k, TMT_EUPSTREAM, "write", errno);
                return;
            }
        }
        k->out_off += (size_t)w;
    }
    if (k->out_off == k->out_len) {
        k->out_off = k->out_len = 0;
        if (k->write_armed) {
            event_del(&k->ev_write);
            k->write_armed = false;
        }
    } else if (!k->write_armed) {
        event_add(&k->ev_write, NULL);
        k->write_armed = true;
    }
}

/* ---- HTTP/2 ---- */

static struct lc_call *stream_call(struct lc_conn *k, int32_t id)
{
    void *p = nghttp2_session_get_stream_user_data(k->ng, id);
    if (p == NULL)
        return NULL;
    struct lc_call *call;
    TMT_OBJ_CAST(call, p, LC_CALL_MAGIC);
    return call;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *arg)
{
    (void)ng;
    (void)flags;
    struct lc_conn *k = arg;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct lc_call *call = stream_call(k, frame->hd.stream_id);
    if (call == NULL || call->head_done)
        return 0; /* a cancelled stream, or trailers */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        call->status = st;
        return 0;
    }
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        int64_t v = 0;
        for (size_t i = 0; i < valuelen && i < 18; i++)
            v = v * 10 + (value[i] - '0');
        call->clen = v;
    }
    if (call->nh < LC_HDRS && call->hlen + namelen + valuelen <= LC_HBUF) {
        char *p = call->hbuf + call->hlen;
        memcpy(p, name, namelen);
        memcpy(p + namelen, value, valuelen);
        call->hdrs[call->nh].name = (struct tmt_slice){p, namelen};
        call->hdrs[call->nh].value = (struct tmt_slice){p + namelen, valuelen};
        call->nh++;
        call->hlen += namelen + valuelen;
    }
    return 0;
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
    (void)ng;
    struct lc_conn *k = arg;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        k->h2_closing = true; /* no new streams here */
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        return 0;
    struct lc_call *call = stream_call(k, frame->hd.stream_id);
    if (call == NULL || call->head_done)
        return 0;
    if (call->status >= 100 && call->status < 200) {
        call->nh = call->hlen = 0; /* an interim response: the final head follows */
        call->status = 0;
        return 0;
    }
    struct tmt_http_client_resp resp = {call->status, call->hdrs, call->nh, call->clen};
    if (!call_head(call, &resp))
        nghttp2_session_set_stream_user_data(k->ng, frame->hd.stream_id, NULL);
    return 0;
}

static int h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                      size_t len, void *arg)
{
    (void)ng;
    (void)flags;
    struct lc_conn *k = arg;
    struct lc_call *call = stream_call(k, id);
    if (call != NULL && !call_data(call, (const char *)data, len))
        nghttp2_session_set_stream_user_data(k->ng, id, NULL);
    return 0;
}

static int h2_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
    (void)ng;
    struct lc_conn *k = arg;
    k->n_streams--;
    struct lc_call *call = stream_call(k, id);
    if (call == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(k->ng, id, NULL);
    if (code != NGHTTP2_NO_ERROR) {
        char what[128];
        snprintf(what, sizeof(what), "stream reset (%s)", nghttp2_http2_strerror(code));
        call_fail(call, TMT_EUPSTREAM, what, 0);
    } else if (!call->head_done) {
        call_fail(call, TMT_EUPSTREAM, "stream closed before the response head", 0);
    } else {
        call_done(call, TMT_OK);
    }
    return 0;
}

static int h2_setup(struct lc_conn *k)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
    int rc = nghttp2_session_client_new(&k->ng, cbs, k);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20}};
    nghttp2_submit_settings(k->ng, NGHTTP2_FLAG_NONE, iv, TMT_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(k->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    return 0;
}

static bool h2_submit(struct lc_conn *k, struct lc_call *call, const char *path)
{
    const struct lc_opts *o = &k->c->o;
#define NV(n, v, vl)                                                                               \
    {(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, vl,                      \
     NGHTTP2_NV_FLAG_NO_COPY_NAME}
    nghttp2_nv nva[] = {
        NV(":method", "GET", 3),
        NV(":scheme", o->ssl_ctx != NULL ? "https" : "http", o->ssl_ctx != NULL ? 5u : 4u),
        NV(":authority", o->authority, strlen(o->authority)),
        NV(":path", path, strlen(path)),
    };
#undef NV
    int32_t id = nghttp2_submit_request(k->ng, NULL, nva, TMT_ARRAY_LEN(nva), NULL, call);
    if (id < 0) {
        tmt_err_set(&call->err, TMT_EUPSTREAM, "%s: %s", o->upstream, nghttp2_strerror(id));
        return false;
    }
    call->stream_id = id;
    call->conn = k;
    k->n_streams++;
    return true;
}

/* ---- HTTP/1.1 ---- */

static void h1_start(struct lc_conn *k, struct lc_call *call, const char *path)
{
    const struct lc_opts *o = &k->c->o;
    k->call = call;
    call->conn = k;
    call->reused = k->state == LC_READY;
    if (path != call->path) {
        size_t pl = strlen(path) + 1;
        if (pl > call->path_cap) {
            call->path = tmt_xrealloc(call->path, pl);
            call->path_cap = pl;
        }
        memcpy(call->path, path, pl);
    }
    size_t need = strlen(path) + strlen(o->authority) + 64;
    if (k->out_len + need > k->out_cap) {
        k->out_cap = k->out_len + need;
        k->out = tmt_xrealloc(k->out, k->out_cap);
    }
    k->out_len += (size_t)snprintf(k->out + k->out_len, need, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                                   path, o->authority);
    k->rpos = k->rlen = 0;
}

/* The connection's h1 call is over: the connection goes idle, or closes. */
static void h1_finish(struct lc_conn *k, struct lc_call *call, int rc)
{
    k->call = NULL;
    call->conn = NULL;
    bool keep = rc == TMT_OK && call->reusable && k->rpos == k->rlen;
    if (!keep)
        conn_fail(k, TMT_EUPSTREAM, "closed", 0); /* first: no new call may pick it */
    else
        conn_rearm(k);
    call_done(call, rc);
}

/* The call fails and its connection closes (first, so that no new call picks it). */
static void h1_abort(struct lc_conn *k, struct lc_call *call, int rc, const char *what)
{
    k->call = NULL;
    call->conn = NULL;
    conn_fail(k, TMT_EUPSTREAM, "closed", 0);
    call_fail(call, rc, what, 0);
}

/* Works through the buffered bytes. false: the connection is gone or the call ended. */
static bool h1_consume(struct lc_conn *k)
{
    struct lc_call *call = k->call;
    while (k->rpos < k->rlen) {
        if (!call->head_done) {
            struct tmt_h1_response h;
            struct tmt_http_header hdrs[LC_HDRS];
            size_t avail = k->rlen - k->rpos;
            int rc = tmt_h1_parse_response(k->rbuf + k->rpos, avail, call->scanned, &k->c->limits,
                                           &h, hdrs);
            if (rc == TMT_EAGAIN) {
                call->scanned = avail;
                if (k->rpos > 0) {
                    memmove(k->rbuf, k->rbuf + k->rpos, avail);
                    k->rlen = (uint32_t)avail;
                    k->rpos = 0;
                }
                return true;
            }
            if (rc < 0) {
                char what[160];
                snprintf(what, sizeof(what), "bad response head: %s",
                         h.err_reason != NULL ? h.err_reason : "malformed");
                h1_abort(k, call, rc == TMT_ELIMIT ? TMT_ELIMIT : TMT_EUPSTREAM, what);
                return false;
            }
            k->rpos += (uint32_t)rc;
            call->scanned = 0;
            if (h.status < 200)
                continue;
            call->reusable = h.keep_alive;
            if (h.status == 204 || h.status == 304) {
                call->framing = LC_FR_NONE;
            } else if (h.chunked) {
                call->framing = LC_FR_CHUNKED;
                tmt_h1_chunked_init(&call->dec);
            } else if (h.content_length >= 0) {
                call->framing = LC_FR_LENGTH;
                call->body_left = (uint64_t)h.content_length;
            } else {
                call->framing = LC_FR_CLOSE;
                call->reusable = false;
            }
            struct tmt_http_client_resp resp = {h.status, hdrs, h.n_headers, h.content_length};
            if (!call_head(call, &resp)) {
                k->call = NULL;
                conn_fail(k, TMT_EUPSTREAM, "closed", 0);
                return false;
            }
            if (call->framing == LC_FR_NONE ||
                (call->framing == LC_FR_LENGTH && call->body_left == 0)) {
                h1_finish(k, call, TMT_OK);
                return false;
            }
            continue;
        }
        char *p = k->rbuf + k->rpos;
        size_t avail = k->rlen - k->rpos;
        size_t out = avail;
        bool end = false;
        if (call->framing == LC_FR_LENGTH) {
            out = (size_t)TMT_MIN((uint64_t)avail, call->body_left);
            call->body_left -= out;
            k->rpos += (uint32_t)out;
            end = call->body_left == 0;
        } else if (call->framing == LC_FR_CHUNKED) {
            size_t used = 0;
            int rc = tmt_h1_chunked_decode(&call->dec, p, avail, &out, &used);
            if (rc != TMT_OK && rc != TMT_EAGAIN) {
                h1_abort(k, call, TMT_EUPSTREAM, "bad chunked body");
                return false;
            }
            k->rpos += (uint32_t)used;
            end = rc == TMT_OK;
        } else {
            k->rpos = k->rlen;
        }
        if (!call_data(call, p, out)) {
            k->call = NULL;
            conn_fail(k, TMT_EUPSTREAM, "closed", 0);
            return false;
        }
        if (end) {
            h1_finish(k, call, TMT_OK);
            return false;
        }
    }
    k->rpos = k->rlen = 0;
    return true;
}

static void h1_eof(struct lc_conn *k)
{
    struct lc_call *call = k->call;
    if (call == NULL) {
        conn_fail(k, TMT_EUPSTREAM, "closed", 0);
        return;
    }
    if (call->head_done && call->framing == LC_FR_CLOSE) {
        h1_finish(k, call, TMT_OK);
        return;
    }
    conn_fail(k, TMT_EUPSTREAM,
              call->head_done ? "connection closed inside the body"
                              : "connection closed before the response head",
              0);
}

/* ---- connection events ---- */

static void conn_ready(struct lc_conn *k)
{
    if (k->ssl != NULL) {
        const unsigned char *p = NULL;
        unsigned n = 0;
        SSL_get0_alpn_selected(k->ssl, &p, &n);
        bool h2 = n == 2 && memcmp(p, "h2", 2) == 0;
        if (k->c->o.h2 && !h2) {
            conn_fail(k, TMT_EUPSTREAM, "TLS: the target did not agree to h2 by ALPN", 0);
            return;
        }
        if (!k->c->o.h2 && n > 0 && !(n == 8 && memcmp(p, "http/1.1", 8) == 0)) {
            conn_fail(k, TMT_EUPSTREAM, "TLS: the target chose another protocol by ALPN", 0);
            return;
        }
    }
    k->state = LC_READY;
    conn_rearm(k);
    conn_flush(k);
}

static void conn_handshake(struct lc_conn *k)
{
    ERR_clear_error();
    int r = SSL_connect(k->ssl);
    if (r == 1) {
        if (k->write_armed) {
            event_del(&k->ev_write);
            k->write_armed = false;
        }
        k->c->handshakes++;
        if (SSL_session_reused(k->ssl))
            k->c->resumed++;
        conn_ready(k);
        return;
    }
    int e = SSL_get_error(k->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        if (k->write_armed) {
            event_del(&k->ev_write);
            k->write_armed = false;
        }
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        if (!k->write_armed) {
            event_add(&k->ev_write, NULL);
            k->write_armed = true;
        }
        return;
    }
    char why[200], what[320];
    long v = SSL_get_verify_result(k->ssl);
    if (v != X509_V_OK)
        snprintf(why, sizeof(why), "certificate: %s", X509_verify_cert_error_string(v));
    else
        ssl_reason(why, sizeof(why));
    ERR_clear_error();
    snprintf(what, sizeof(what), "TLS handshake: %s", why);
    conn_fail(k, TMT_EUPSTREAM, what, 0);
}

static void conn_connected(struct lc_conn *k)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        conn_fail(k, TMT_EUPSTREAM, "connect", soerr);
        return;
    }
    event_del(&k->ev_write);
    k->write_armed = false;
    event_add(&k->ev_read, NULL);
    if (k->ssl != NULL) {
        k->state = LC_HANDSHAKE;
        conn_handshake(k);
        return;
    }
    conn_ready(k);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_conn *k;
    TMT_OBJ_CAST(k, arg, LC_CONN_MAGIC);
    k->busy++;
    if (k->state == LC_CONNECTING)
        conn_connected(k);
    else if (k->state == LC_HANDSHAKE)
        conn_handshake(k);
    else
        conn_flush(k);
    if (--k->busy == 0 && k->dead)
        conn_free(k);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_conn *k;
    TMT_OBJ_CAST(k, arg, LC_CONN_MAGIC);
    char msg[96];
    if (k->state != LC_READY)
        snprintf(msg, sizeof(msg), "connect: no connection within %llu ms",
                 (unsigned long long)k->c->o.connect_timeout_ms);
    else
        snprintf(msg, sizeof(msg), "no response bytes for %llu ms",
                 (unsigned long long)k->c->o.timeout_ms);
    conn_fail(k, TMT_ETIMEDOUT, msg, 0);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_conn *k;
    TMT_OBJ_CAST(k, arg, LC_CONN_MAGIC);
    if (k->state == LC_HANDSHAKE) {
        k->busy++;
        conn_handshake(k);
        if (--k->busy == 0 && k->dead)
            conn_free(k);
        return;
    }
    if (k->state != LC_READY)
        return;
    k->busy++;
    char what_s[256];
    for (int reads = 0; !k->dead; reads++) {
        if (reads == 16) {
            event_active(&k->ev_read, EV_READ, 1); /* more may wait inside TLS: come back */
            break;
        }
        if (k->ng == NULL && k->call == NULL) {
            /* An idle h1 connection: readable means closed, or junk, or (TLS 1.3) a session
             * ticket, which SSL_read takes in and reports as nothing to read yet. */
            ssize_t n = conn_read(k, k->rbuf, LC_RBUF, what_s, sizeof(what_s));
            if (n != -1)
                conn_fail(k, TMT_EUPSTREAM, "closed", 0);
            break;
        }
        size_t off = k->ng != NULL ? 0 : k->rlen;
        if (off == LC_RBUF) {
            conn_fail(k, TMT_ELIMIT, "response head too large", 0);
            break;
        }
        ssize_t n = conn_read(k, k->rbuf + off, LC_RBUF - off, what_s, sizeof(what_s));
        if (n == -1)
            break;
        if (n == -2) {
            conn_fail(k, TMT_EUPSTREAM, what_s, 0);
            break;
        }
        if (n == 0) {
            if (k->ng != NULL)
                conn_fail(k, TMT_EUPSTREAM, "connection closed", 0);
            else
                h1_eof(k);
            break;
        }
        if (k->ng != NULL) {
            k->in_recv = true;
            ssize_t used = nghttp2_session_mem_recv(k->ng, (const uint8_t *)k->rbuf, (size_t)n);
            k->in_recv = false;
            if (used < 0) {
                conn_fail(k, TMT_EUPSTREAM, nghttp2_strerror((int)used), 0);
                break;
            }
        } else {
            k->rlen += (uint32_t)n;
            k->call->got_bytes = true;
            h1_consume(k);
        }
    }
    if (!k->dead) {
        conn_rearm(k);
        conn_flush(k);
        if (k->ng != NULL && !k->dead && !nghttp2_session_want_read(k->ng) &&
            !nghttp2_session_want_write(k->ng))
            conn_fail(k, TMT_EUPSTREAM, "connection closed by GOAWAY", 0);
    }
    if (--k->busy == 0 && k->dead)
        conn_free(k);
}

static struct lc_conn *conn_new(struct lc_client *c, int *sys_errno)
{
    int fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *sys_errno = errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&c->ss, c->sslen) != 0 && errno != EINPROGRESS) {
        *sys_errno = errno;
        close(fd);
        return NULL;
    }
    struct lc_conn *k = tmt_xcalloc(1, sizeof(*k));
    k->magic = LC_CONN_MAGIC;
    k->c = c;
    k->fd = fd;
    k->state = LC_CONNECTING;
    event_assign(&k->ev_read, c->base, fd, EV_READ | EV_PERSIST, conn_on_read, k);
    event_assign(&k->ev_write, c->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, k);
    evtimer_assign(&k->ev_timer, c->base, conn_on_timer, k);
    if (c->o.ssl_ctx != NULL) {
        k->ssl = SSL_new(c->o.ssl_ctx);
        SSL_set_app_data(k->ssl, k);
        SSL_set_fd(k->ssl, fd);
        SSL_set_connect_state(k->ssl);
        if (c->sess != NULL && c->o.tls_resume)
            SSL_set_session(k->ssl, c->sess);
        if (c->o.sni[0] != '\0') {
            SSL_set_tlsext_host_name(k->ssl, c->o.sni);
            SSL_set1_host(k->ssl, c->o.sni);
        } else {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), c->o.ip);
        }
    }
    if (c->o.h2 && h2_setup(k) != 0) {
        conn_free(k);
        *sys_errno = ENOMEM;
        return NULL;
    }
    event_add(&k->ev_write, NULL);
    k->write_armed = true;
    conn_arm_timer(k, c->o.connect_timeout_ms);
    k->next = c->conns;
    if (c->conns != NULL)
        c->conns->prev = k;
    c->conns = k;
    c->n_conns++;
    return k;
}

/* ---- the client ---- */

struct lc_client *lc_client_new(struct tmt_loop *loop, const struct lc_opts *o,
                                const struct sockaddr_storage *ss, socklen_t sslen)
{
    struct lc_client *c = tmt_xcalloc(1, sizeof(*c));
    c->magic = LC_CLIENT_MAGIC;
    c->loop = loop;
    c->base = tmt_loop_base(loop);
    c->o = *o;
    if (c->o.max_streams == 0)
        c->o.max_streams = 1;
    c->ss = *ss;
    c->sslen = sslen;
    c->limits = (struct tmt_h1_limits){LC_RBUF - 1024, LC_RBUF - 1024, LC_HDRS};
    return c;
}

/* A connection with room for a call: idle (h1) or with a free stream slot (h2); else a new one. */
static struct lc_conn *conn_pick(struct lc_client *c, int *sys_errno)
{
    for (struct lc_conn *k = c->conns; k != NULL; k = k->next) {
        if (k->dead)
            continue;
        if (k->ng != NULL) {
            uint32_t peer =
                nghttp2_session_get_remote_settings(k->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
            if (!k->h2_closing && k->n_streams < TMT_MIN(c->o.max_streams, peer))
                return k;
        } else if (k->call == NULL) {
            return k;
        }
    }
    return conn_new(c, sys_errno);
}

void lc_client_tls_stats(const struct lc_client *c, uint64_t *handshakes, uint64_t *resumed)
{
    *handshakes += c->handshakes;
    *resumed += c->resumed;
}

struct lc_call *lc_fetch(struct lc_client *c, const char *path,
                         const struct tmt_http_client_cbs *cbs, void *arg)
{
    TMT_CHECK_OBJ(c, LC_CLIENT_MAGIC);
    struct lc_call *call = call_get(c);
    call->cbs = *cbs;
    call->arg = arg;
    int sys_errno = 0;
    struct lc_conn *k = conn_pick(c, &sys_errno);
    if (k != NULL && k->ng != NULL) {
        if (h2_submit(k, call, path)) {
            if (k->state == LC_READY) {
                conn_rearm(k);
                conn_flush(k); /* may close k: the last use of it */
            }
            return call;
        }
    } else if (k != NULL) {
        h1_start(k, call, path);
        if (k->state == LC_READY) {
            conn_rearm(k);
            conn_flush(k);
        }
        return call;
    } else {
        tmt_err_set_errno(&call->err, TMT_EUPSTREAM, sys_errno, "%s: connect", c->o.upstream);
    }
    /* never call back from inside fetch: report from the loop */
    struct timeval zero = {0, 0};
    evtimer_add(&call->ev_fail, &zero);
    return call;
}

static void fail_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lc_call *call;
    TMT_OBJ_CAST(call, arg, LC_CALL_MAGIC);
    call_done(call, call->err.code != 0 ? call->err.code : TMT_EUPSTREAM);
}

void lc_call_cancel(struct lc_call **callp)
{
    struct lc_call *call = *callp;
    *callp = NULL;
    if (call == NULL)
        return;
    TMT_CHECK_OBJ(call, LC_CALL_MAGIC);
    if (call->cancelled || call->ended)
        return;
    call->cancelled = true;
    call_unlink(call);
    event_del(&call->ev_fail);
    struct lc_conn *k = call->conn;
    call->conn = NULL;
    if (k != NULL && k->ng != NULL) {
        if (call->stream_id >= 0) {
            nghttp2_session_set_stream_user_data(k->ng, call->stream_id, NULL);
            nghttp2_submit_rst_stream(k->ng, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
            conn_flush(k);
        }
    } else if (k != NULL) {
        k->call = NULL;
        conn_fail(k, TMT_EUPSTREAM, "cancelled", 0);
    }
    if (call->in_cb == 0)
        call_recycle(call);
}

void lc_client_free(struct lc_client **cp)
{
    struct lc_client *c = *cp;
    *cp = NULL;
    if (c == NULL)
        return;
    TMT_CHECK_OBJ(c, LC_CLIENT_MAGIC);
    TMT_ASSERT(c->in_cb == 0);
    while (c->calls != NULL) {
        struct lc_call *call = c->calls;
        lc_call_cancel(&call);
    }
    while (c->conns != NULL) {
        struct lc_conn *k = c->conns;
        conn_unlink(k);
        conn_free(k);
    }
    if (c->sess != NULL)
        SSL_SESSION_free(c->sess);
    while (c->free_calls != NULL) {
        struct lc_call *call = c->free_calls;
        c->free_calls = call->next;
        call->magic = 0;
        free(call->path);
        free(call);
    }
    c->magic = 0;
    free(c);
}
