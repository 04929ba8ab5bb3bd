/*
 * client.c: the HTTP/1.1 client of client.h: non-blocking connects, request writing, response
 * heads and bodies (Content-Length, chunked, read-until-close), a keep-alive pool per upstream,
 * timeouts, pause/resume, cancel and one retry on a stale pooled connection.
 *
 * Objects. A client owns its upstreams (one per distinct address string, a linear list: daemons
 * talk to a handful), each upstream its idle connections, and the list of calls in progress. A
 * call owns its request bytes and, while it runs, one connection (call->conn, conn->call). A
 * connection owns a fixed 16 KiB read buffer that stays with it across the calls it serves; body
 * pieces go to on_data straight from that buffer, chunked bodies decoded in place.
 *
 * Call states: CONNECTING -> WRITING -> HEAD -> BODY -> DONE. ENDING is a call that failed inside
 * tmt_http_client_fetch: its on_done waits for a zero-timeout event so that fetch never calls
 * back. Reads happen only in HEAD and BODY; the request is written completely first.
 *
 * Re-entrancy. Callbacks may pause, resume or cancel their own call and start new fetches.
 * Every callback runs with call->in_cb raised; a cancel inside one closes the connection at once
 * but leaves the memory to the code that made the callback, which checks `cancelled` as soon as
 * the callback returns and frees the call then. So nothing touches a freed call, and a cancelled
 * call's connection is never touched again (it is only reachable through the call).
 * tmt_http_client_free must not be called from a callback (asserted).
 *
 * Timeouts are libevent event timeouts: the connect timeout on the write event while connecting,
 * the response timeout as a deadline from the request sent to the end of the head (re-armed with
 * what is left after each read, so a trickling head is cut off too), the read timeout on each
 * wait for body bytes, the idle timeout on a pooled connection's read event. A timeout of 0 means
 * none. While a call is paused its connection is not read and no timeout runs.
 *
 * Requests are refused with TMT_EINVAL when a header name or value, the path or the Host value
 * holds CR, LF or NUL, and when the caller passes Host, Content-Length or Transfer-Encoding as a
 * header field: the client writes those itself, and a second copy would let the two ends
 * disagree on framing (request smuggling).
 */
#include "tmt/client.h"

#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "tmt/h1.h"
#include "tmt/log.h"
#include "tmt/loop.h"

#define CLIENT_RBUF_CAP (16 * 1024)
#define CLIENT_HEADERS_CAP 128
#define CLIENT_READS_PER_EVENT 8 /* then let other connections have the loop */

struct upstream;

struct cconn {
    unsigned magic;
#define CCONN_MAGIC 0xc11e0c01u
    struct tmt_http_client *c;
    struct upstream *up;
    struct tmt_http_call *call; /* NULL while idle in the pool */
    struct cconn *prev, *next;  /* the upstream's idle list */
    int fd;
    struct event ev_read, ev_write;
    uint32_t rpos, rlen;
    char rbuf[CLIENT_RBUF_CAP];
};

struct upstream {
    struct upstream *next;
    char *name;
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct cconn *idle; /* most recently used first */
    size_t n_idle;
};

enum call_state { CALL_CONNECTING, CALL_WRITING, CALL_HEAD, CALL_BODY, CALL_ENDING, CALL_DONE };

enum framing { FRAME_NONE, FRAME_LENGTH, FRAME_CHUNKED, FRAME_CLOSE };

struct tmt_http_call {
    unsigned magic;
#define CALL_MAGIC 0xc11ca11u
    struct tmt_http_client *c;
    struct tmt_http_call *prev, *next; /* the client's calls in progress */
    struct upstream *up;
    const char *up_name; /* up->name, or the caller's text when it did not parse (fetch only) */
    struct tmt_http_client_cbs cbs;
    void *arg;
    enum tmt_http_method method;
    enum call_state state;
    struct cconn *conn;
    /* request bytes: head and body, written with one sendmsg */
    char *head;
    size_t head_len;
    char *body;
    size_t body_len;
    size_t woff;
    /* response */
    uint64_t head_deadline_ms; /* 0: none */
    size_t scanned;            /* prev_len for the head parser */
    enum framing framing;
    bool reusable;
    uint64_t body_left;
    struct tmt_h1_chunked dec;
    /* flags */
    bool in_fetch;
    bool reused;
    bool retried;
    bool got_bytes; /* a response byte arrived on the current connection */
    bool paused;
    bool cancelled;
    unsigned in_cb;
    int rc; /* ENDING: the result to report */
    struct event ev_done;
    struct tmt_err err;
    struct tmt_http_header hdrs[CLIENT_HEADERS_CAP];
};

struct tmt_http_client {
    unsigned magic;
#define CLIENT_MAGIC 0xc11e0001u
    struct tmt_loop *loop;
    struct event_base *base;
    struct tmt_http_client_opts o;
    struct tmt_h1_limits limits;
    struct upstream *ups;
    struct tmt_http_call *calls;
    unsigned in_cb;
    struct tmt_http_client_stats st;
};

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void call_send(struct tmt_http_call *call);
static void call_connect(struct tmt_http_call *call);

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* Adds ev with a timeout of ms (0: none). */
static void event_add_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = ms_tv(ms);
    event_add(ev, ms != 0 ? &tv : NULL);
}

void tmt_http_client_opts_default(struct tmt_http_client_opts *o)
{
    *o = (struct tmt_http_client_opts){
        .connect_timeout_ms = 2000,
        .response_timeout_ms = 10000,
        .read_timeout_ms = 10000,
        .idle_timeout_ms = 30000,
        .max_idle_per_upstream = 32,
        .max_head_bytes = CLIENT_RBUF_CAP - 1024,
        .max_headers = 100,
    };
}

struct tmt_http_client *tmt_http_client_new(struct tmt_loop *loop,
                                            const struct tmt_http_client_opts *o)
{
    TMT_ASSERT(loop != NULL && o != NULL);
    struct tmt_http_client *c = tmt_xcalloc(1, sizeof(*c));
    c->magic = CLIENT_MAGIC;
    c->loop = loop;
    c->base = tmt_loop_base(loop);
    c->o = *o;
    /* The head must fit the read buffer with room to spare, so a full buffer is always an error. */
    size_t head = TMT_MIN(TMT_MAX(o->max_head_bytes, (size_t)256), (size_t)CLIENT_RBUF_CAP - 1);
    size_t nh = TMT_MIN(TMT_MAX(o->max_headers, (size_t)1), (size_t)CLIENT_HEADERS_CAP);
    c->o.max_head_bytes = head;
    c->o.max_headers = nh;
    c->limits = (struct tmt_h1_limits){head, head, nh};
    return c;
}

void tmt_http_client_stats(const struct tmt_http_client *c, struct tmt_http_client_stats *out)
{
    TMT_CHECK_OBJ(c, CLIENT_MAGIC);
    *out = c->st;
}

/* ---- connections and the pool ---- */

static struct cconn *conn_new(struct tmt_http_client *c, struct upstream *up, int fd)
{
    struct cconn *conn = tmt_xmalloc(sizeof(*conn));
    conn->magic = CCONN_MAGIC;
    conn->c = c;
    conn->up = up;
    conn->call = NULL;
    conn->prev = conn->next = NULL;
    conn->fd = fd;
    conn->rpos = conn->rlen = 0;
    event_assign(&conn->ev_read, c->base, fd, EV_READ | EV_PERSIST, conn_on_read, conn);
    event_assign(&conn->ev_write, c->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, conn);
    return conn;
}

static void conn_close(struct cconn *conn)
{
    event_del(&conn->ev_read);
    event_del(&conn->ev_write);
    close(conn->fd);
    conn->magic = 0;
    free(conn);
}

static void pool_unlink(struct cconn *conn)
{
    struct upstream *up = conn->up;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        up->idle = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    up->n_idle--;
}

static void pool_put(struct tmt_http_client *c, struct cconn *conn)
{
    struct upstream *up = conn->up;
    event_del(&conn->ev_write);
    if (up->n_idle >= c->o.max_idle_per_upstream) {
        conn_close(conn);
        return;
    }
    conn->rpos = conn->rlen = 0;
    conn->prev = NULL;
    conn->next = up->idle;
    if (up->idle != NULL)
        up->idle->prev = conn;
    up->idle = conn;
    up->n_idle++;
    /* Readable while idle means the upstream closed it (or sent junk): see conn_on_read. */
    event_add_ms(&conn->ev_read, c->o.idle_timeout_ms);
}

/*
 * A pooled connection the upstream has closed may not have been noticed yet (its EOF waits in
 * the socket while the loop runs callbacks): peek before reuse. Nothing to read is the only
 * healthy answer.
 */
static bool conn_alive(const struct cconn *conn)
{
    char b;
    ssize_t n = recv(conn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct cconn *pool_take(struct upstream *up)
{
    while (up->idle != NULL) {
        struct cconn *conn = up->idle;
        pool_unlink(conn);
        event_del(&conn->ev_read);
        if (conn_alive(conn))
            return conn;
        conn_close(conn);
    }
    return NULL;
}

/* ---- upstreams ---- */

/* Parses "host:port" / "[v6]:port" (numeric only) into ss. Returns 0 or TMT_EINVAL. */
static int parse_upstream(const char *text, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0')
        return TMT_EINVAL;
    size_t hl = (size_t)(colon - text);
    if (hl >= sizeof(host))
        return TMT_EINVAL;
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']')
            return TMT_EINVAL;
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return TMT_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return TMT_EINVAL;
    int rc = TMT_EINVAL;
    if (res->ai_addrlen <= sizeof(*ss)) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sslen = (socklen_t)res->ai_addrlen;
        rc = TMT_OK;
    }
    freeaddrinfo(res);
    return rc;
}

static struct upstream *upstream_get(struct tmt_http_client *c, const char *name)
{
    for (struct upstream *up = c->ups; up != NULL; up = up->next) {
        if (strcmp(up->name, name) == 0)
            return up;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (parse_upstream(name, &ss, &sslen) != TMT_OK)
        return NULL;
    struct upstream *up = tmt_xcalloc(1, sizeof(*up));
    up->name = tmt_xstrdup(name);
    up->ss = ss;
    up->sslen = sslen;
    up->next = c->ups;
    c->ups = up;
    return up;
}

/* ---- ending a call ---- */

static void call_free(struct tmt_http_call *call)
{
    event_del(&call->ev_done);
    free(call->head);
    free(call->body);
    call->magic = 0;
    free(call);
}

static void call_unlink(struct tmt_http_call *call)
{
    struct tmt_http_client *c = call->c;
    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

/* Hands the connection back: to the pool after a clean, reusable response, else closed. */
static void call_release_conn(struct tmt_http_call *call, bool clean)
{
    struct cconn *conn = call->conn;
    if (conn == NULL)
        return;
    call->conn = NULL;
    conn->call = NULL;
    if (clean && call->reusable && conn->rpos == conn->rlen)
        pool_put(call->c, conn);
    else
        conn_close(conn);
}

/* Runs on_done and frees the call (or leaves that to an enclosing callback of the same call). */
static void call_report(struct tmt_http_call *call, int rc)
{
    struct tmt_http_client *c = call->c;
    call_unlink(call);
    call->state = CALL_DONE;
    if (rc != TMT_OK) {
        c->st.failures++;
        if (rc == TMT_ETIMEDOUT)
            c->st.timeouts++;
        tmt_log(TMT_LOG_DEBUG, "client", "call failed", "upstream=%s rc=%d why=\"%s\"",
                call->up_name, rc, call->err.msg);
    }
    call->in_cb++;
    c->in_cb++;
    call->cbs.on_done(call->arg, rc, &call->err);
    c->in_cb--;
    call->in_cb--;
    if (call->in_cb == 0)
        call_free(call);
}

static void call_on_deferred_done(evutil_socket_t fd, short what, void *arg)
{
    struct tmt_http_call *call;
    TMT_OBJ_CAST(call, arg, CALL_MAGIC);
    (void)fd;
    (void)what;
    call_report(call, call->rc);
}

/*
 * Ends a call with rc (call->err filled for failures). Inside tmt_http_client_fetch the report
 * waits for a zero-timeout event: fetch never calls back.
 */
static void call_end(struct tmt_http_call *call, int rc)
{
    call_release_conn(call, rc == TMT_OK);
    if (call->in_fetch) {
        call->rc = rc;
        call->state = CALL_ENDING;
        struct timeval zero = {0, 0};
        event_add(&call->ev_done, &zero);
        return;
    }
    call_report(call, rc);
}

static bool method_idempotent(enum tmt_http_method m)
{
    return m == TMT_HTTP_GET || m == TMT_HTTP_HEAD || m == TMT_HTTP_PUT || m == TMT_HTTP_DELETE ||
           m == TMT_HTTP_OPTIONS;
}

/*
 * The connection failed (reset, refused, closed early). A reused connection that fails before
 * any response byte most likely met the upstream's keep-alive close racing our request; the
 * request cannot have been processed in a way we saw, so idempotent ones go again, once, on a
 * fresh connection.
 */
static void call_conn_failed(struct tmt_http_call *call, int sys_errno, const char *what)
{
    if (call->reused && !call->got_bytes && !call->retried && method_idempotent(call->method)) {
        call_release_conn(call, false);
        call->retried = true;
        call->reused = false;
        call->c->st.retries++;
        call_connect(call);
        return;
    }
    if (sys_errno != 0)
        tmt_err_set_errno(&call->err, TMT_EUPSTREAM, sys_errno, "%s: %s", call->up_name, what);
    else
        tmt_err_set(&call->err, TMT_EUPSTREAM, "%s: %s", call->up_name, what);
    call_end(call, TMT_EUPSTREAM);
}

static void call_fail(struct tmt_http_call *call, int rc, const char *fmt, ...) TMT_PRINTF(3, 4);

static void call_fail(struct tmt_http_call *call, int rc, const char *fmt, ...)
{
    char msg[TMT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    tmt_err_set(&call->err, rc, "%s: %s", call->up_name, msg);
    call_end(call, rc);
}

/* ---- callbacks into the caller ---- */

/*
 * After a callback: false when the caller cancelled the call in it (then it is freed here unless
 * an outer callback of the same call is still running).
 */
static bool call_after_cb(struct tmt_http_call *call)
{
    call->in_cb--;
    call->c->in_cb--;
    if (!call->cancelled)
        return true;
    if (call->in_cb == 0)
        call_free(call);
    return false;
}

static bool cb_head(struct tmt_http_call *call, const struct tmt_http_client_resp *resp)
{
    if (call->cbs.on_head == NULL)
        return true;
    call->in_cb++;
    call->c->in_cb++;
    call->cbs.on_head(call->arg, resp);
    return call_after_cb(call);
}

static bool cb_data(struct tmt_http_call *call, const char *p, size_t len)
{
    if (call->cbs.on_data == NULL || len == 0)
        return true;
    call->in_cb++;
    call->c->in_cb++;
    call->cbs.on_data(call->arg, p, len);
    return call_after_cb(call);
}

/* ---- writing the request ---- */

static void call_connect(struct tmt_http_call *call)
{
    struct tmt_http_client *c = call->c;
    struct upstream *up = call->up;
    int fd = socket(up->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        tmt_err_set_errno(&call->err, TMT_EIO, errno, "%s: socket", up->name);
        call_end(call, TMT_EIO);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->st.connects++;
    struct cconn *conn = conn_new(c, up, fd);
    conn->call = call;
    call->conn = conn;
    call->got_bytes = false;
    call->woff = 0;
    if (connect(fd, (const struct sockaddr *)&up->ss, up->sslen) == 0) {
        call->state = CALL_WRITING;
        call_send(call);
        return;
    }
    if (errno == EINPROGRESS) {
        call->state = CALL_CONNECTING;
        event_add_ms(&conn->ev_write, c->o.connect_timeout_ms);
        return;
    }
    call_conn_failed(call, errno, "connect");
}

/* Starts a call: a pooled connection if a healthy one is idle, else a new one. */
static void call_start(struct tmt_http_call *call)
{
    struct cconn *conn = pool_take(call->up);
    if (conn == NULL) {
        call_connect(call);
        return;
    }
    call->c->st.reused++;
    call->reused = true;
    call->got_bytes = false;
    call->woff = 0;
    conn->call = call;
    call->conn = conn;
    call->state = CALL_WRITING;
    call_send(call);
}

static void arm_read(struct tmt_http_call *call)
{
    struct cconn *conn = call->conn;
    if (call->paused) {
        event_del(&conn->ev_read);
        return;
    }
    if (call->state == CALL_BODY) {
        event_add_ms(&conn->ev_read, call->c->o.read_timeout_ms);
        return;
    }
    if (call->head_deadline_ms == 0) {
        event_add(&conn->ev_read, NULL);
        return;
    }
    uint64_t now = tmt_loop_now_ms(call->c->loop);
    uint64_t left = call->head_deadline_ms > now ? call->head_deadline_ms - now : 0;
    struct timeval tv = ms_tv(left);
    event_add(&conn->ev_read, &tv);
}

/* Writes what is left of the request; on a full socket waits for it to drain. */
static void call_send(struct tmt_http_call *call)
{
    struct cconn *conn = call->conn;
    size_t total = call->head_len + call->body_len;
    while (call->woff < total) {
        struct iovec iov[2];
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 0};
        if (call->woff < call->head_len) {
            iov[msg.msg_iovlen++] =
                (struct iovec){call->head + call->woff, call->head_len - call->woff};
            if (call->body_len > 0)
                iov[msg.msg_iovlen++] = (struct iovec){call->body, call->body_len};
        } else {
            size_t off = call->woff - call->head_len;
            iov[msg.msg_iovlen++] = (struct iovec){call->body + off, call->body_len - off};
        }
        /* sendmsg is writev with flags: MSG_NOSIGNAL, so a closed peer is EPIPE, not SIGPIPE. */
        ssize_t n = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            call->woff += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            event_add_ms(&conn->ev_write, call->c->o.response_timeout_ms);
            return;
        }
        event_del(&conn->ev_write);
        call_conn_failed(call, errno, "send");
        return;
    }
    event_del(&conn->ev_write);
    call->state = CALL_HEAD;
    call->scanned = 0;
    uint64_t rt = call->c->o.response_timeout_ms;
    call->head_deadline_ms = rt != 0 ? tmt_loop_now_ms(call->c->loop) + rt : 0;
    arm_read(call);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct cconn *conn;
    TMT_OBJ_CAST(conn, arg, CCONN_MAGIC);
    struct tmt_http_call *call = conn->call;
    if (call == NULL) {
        event_del(&conn->ev_write);
        return;
    }
    struct tmt_http_client *c = call->c;
    if (what & EV_TIMEOUT) {
        if (call->state == CALL_CONNECTING)
            call_fail(call, TMT_ETIMEDOUT, "no connection within %llu ms",
                      (unsigned long long)c->o.connect_timeout_ms);
        else
            call_fail(call, TMT_ETIMEDOUT, "request not sent within %llu ms",
                      (unsigned long long)c->o.response_timeout_ms);
        return;
    }
    if (call->state == CALL_CONNECTING) {
        int e = 0;
        socklen_t el = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
            e = errno;
        if (e != 0) {
            event_del(&conn->ev_write);
            call_conn_failed(call, e, "connect");
            return;
        }
        call->state = CALL_WRITING;
    }
    call_send(call);
}

/* ---- reading the response ---- */

enum step { STEP_MORE, STEP_STOP };

/* The head is complete: decide the body's framing, tell the caller. */
static enum step take_head(struct tmt_http_call *call, const struct tmt_h1_response *h,
                           size_t head_len)
{
    struct cconn *conn = call->conn;
    conn->rpos += (uint32_t)head_len;
    call->scanned = 0;
    if (call->method == TMT_HTTP_HEAD || h->status == 204 || h->status == 304) {
        call->framing = FRAME_NONE;
    } else if (h->chunked) {
        call->framing = FRAME_CHUNKED;
        tmt_h1_chunked_init(&call->dec);
    } else if (h->content_length >= 0) {
        call->framing = FRAME_LENGTH;
        call->body_left = (uint64_t)h->content_length;
    } else {
        call->framing = FRAME_CLOSE;
    }
    call->reusable = h->keep_alive && call->framing != FRAME_CLOSE;
    call->state = CALL_BODY;
    struct tmt_http_client_resp resp = {
        .status = h->status,
        .headers = h->headers,
        .n_headers = h->n_headers,
        .content_length = h->chunked ? -1 : h->content_length,
    };
    /* The header slices point into the read buffer, which stays put during the callback. */
    if (!cb_head(call, &resp))
        return STEP_STOP;
    if (call->framing == FRAME_NONE || (call->framing == FRAME_LENGTH && call->body_left == 0)) {
        call_end(call, TMT_OK);
        return STEP_STOP;
    }
    return STEP_MORE;
}

/* Parses the buffered head. STEP_MORE: needs more bytes, or the head was taken (state BODY). */
static enum step consume_head(struct tmt_http_call *call)
{
    struct cconn *conn = call->conn;
    struct tmt_h1_response h;
    for (;;) {
        size_t avail = conn->rlen - conn->rpos;
        if (avail == 0)
            return STEP_MORE;
        int rc = tmt_h1_parse_response(conn->rbuf + conn->rpos, avail, call->scanned,
                                       &call->c->limits, &h, call->hdrs);
        if (rc == TMT_EAGAIN) {
            call->scanned = avail;
            if (conn->rlen == CLIENT_RBUF_CAP && conn->rpos > 0) {
                memmove(conn->rbuf, conn->rbuf + conn->rpos, avail);
                conn->rlen = (uint32_t)avail;
                conn->rpos = 0;
            }
            return STEP_MORE;
        }
        if (rc == TMT_ELIMIT) {
            call_fail(call, TMT_ELIMIT, "response head over the limit (%zu bytes, %zu fields): %s",
                      call->c->o.max_head_bytes, call->c->o.max_headers,
                      h.err_reason != NULL ? h.err_reason : "too large");
            return STEP_STOP;
        }
        if (rc < 0) {
            call_fail(call, TMT_EUPSTREAM, "bad response head: %s",
                      h.err_reason != NULL ? h.err_reason : "malformed");
            return STEP_STOP;
        }
        if (h.status >= 200)
            return take_head(call, &h, (size_t)rc);
        if (h.status == 101) {
            call_fail(call, TMT_EUPSTREAM, "unexpected 101 Switching Protocols");
            return STEP_STOP;
        }
        /* 100 Continue and other interim responses: skip, the final head follows. */
        conn->rpos += (uint32_t)rc;
        call->scanned = 0;
    }
}

/*
 * Delivers buffered body bytes (there are some). STEP_MORE: go on. On the way
 * the call may end, be paused or be cancelled (STEP_STOP).
 */
static enum step consume_body(struct tmt_http_call *call)
{
    struct cconn *conn = call->conn;
    size_t avail = conn->rlen - conn->rpos;
    TMT_ASSERT(avail > 0);
    char *p = conn->rbuf + conn->rpos;
    switch (call->framing) {
    case FRAME_LENGTH: {
        size_t n = (size_t)TMT_MIN((uint64_t)avail, call->body_left);
        conn->rpos += (uint32_t)n;
        call->body_left -= n;
        if (!cb_data(call, p, n))
            return STEP_STOP;
        if (call->body_left == 0) {
            call_end(call, TMT_OK);
            return STEP_STOP;
        }
        return STEP_MORE;
    }
    case FRAME_CHUNKED: {
        size_t out = 0, used = 0;
        int rc = tmt_h1_chunked_decode(&call->dec, p, avail, &out, &used);
        if (rc != TMT_OK && rc != TMT_EAGAIN) {
            call_fail(call, TMT_EUPSTREAM, "bad chunked body");
            return STEP_STOP;
        }
        conn->rpos += (uint32_t)used;
        if (!cb_data(call, p, out))
            return STEP_STOP;
        if (rc == TMT_OK) {
            call_end(call, TMT_OK);
            return STEP_STOP;
        }
        return STEP_MORE;
    }
    case FRAME_CLOSE:
        conn->rpos = conn->rlen;
        if (!cb_data(call, p, avail))
            return STEP_STOP;
        return STEP_MORE;
    case FRAME_NONE:
        break;
    }
    TMT_UNREACHABLE("body framing without a body");
}

/* Works through the buffer until it needs more bytes (STEP_MORE) or must stop. */
static enum step call_consume(struct tmt_http_call *call)
{
    for (;;) {
        if (call->paused)
            return STEP_STOP;
        struct cconn *conn = call->conn;
        if (call->state == CALL_HEAD) {
            if (consume_head(call) == STEP_STOP)
                return STEP_STOP;
            if (call->state == CALL_HEAD)
                return STEP_MORE;
            continue; /* the head was taken; body bytes may be buffered behind it */
        }
        if (conn->rpos == conn->rlen) {
            conn->rpos = conn->rlen = 0;
            return STEP_MORE;
        }
        /* Each body step consumes at least one byte, so this loop ends. */
        if (consume_body(call) == STEP_STOP)
            return STEP_STOP;
    }
}

static void call_eof(struct tmt_http_call *call)
{
    struct cconn *conn = call->conn;
    if (call->state == CALL_BODY && call->framing == FRAME_CLOSE) {
        call_end(call, TMT_OK);
        return;
    }
    if (call->state == CALL_HEAD) {
        if (!call->got_bytes) {
            call_conn_failed(call, 0, "connection closed before the response head");
            return;
        }
        call_fail(call, TMT_EUPSTREAM, "connection closed inside the response head (%u bytes)",
                  conn->rlen - conn->rpos);
        return;
    }
    if (call->framing == FRAME_CHUNKED) {
        call_fail(call, TMT_EUPSTREAM, "connection closed inside the chunked body");
        return;
    }
    call_fail(call, TMT_EUPSTREAM, "connection closed with %llu body bytes missing",
              (unsigned long long)call->body_left);
}

static void call_io(struct tmt_http_call *call)
{
    for (int reads = 0;; reads++) {
        if (call_consume(call) == STEP_STOP)
            return;
        struct cconn *conn = call->conn;
        if (reads == CLIENT_READS_PER_EVENT) {
            arm_read(call); /* level-triggered: the loop comes back when there is more */
            return;
        }
        TMT_ASSERT(conn->rlen < CLIENT_RBUF_CAP);
        ssize_t n = read(conn->fd, conn->rbuf + conn->rlen, CLIENT_RBUF_CAP - conn->rlen);
        if (n > 0) {
            conn->rlen += (uint32_t)n;
            call->got_bytes = true;
            continue;
        }
        if (n == 0) {
            call_eof(call);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            arm_read(call);
            return;
        }
        call_conn_failed(call, errno, "read");
        return;
    }
}

/* An idle pooled connection became readable (closed by the upstream) or timed out. */
static void idle_event(struct cconn *conn, short what)
{
    if (!(what & EV_TIMEOUT) && conn_alive(conn))
        return;
    pool_unlink(conn);
    conn_close(conn);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct cconn *conn;
    TMT_OBJ_CAST(conn, arg, CCONN_MAGIC);
    (void)fd;
    struct tmt_http_call *call = conn->call;
    if (call == NULL) {
        idle_event(conn, what);
        return;
    }
    if (call->state != CALL_HEAD && call->state != CALL_BODY) {
        event_del(&conn->ev_read);
        return;
    }
    if (what & EV_TIMEOUT) {
        if (call->state == CALL_HEAD)
            call_fail(call, TMT_ETIMEDOUT, "no response head within %llu ms",
                      (unsigned long long)call->c->o.response_timeout_ms);
        else
            call_fail(call, TMT_ETIMEDOUT, "no body bytes for %llu ms",
                      (unsigned long long)call->c->o.read_timeout_ms);
        return;
    }
    call_io(call);
}

/* ---- starting calls ---- */

static bool has_ctl(struct tmt_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '\r' || s.p[i] == '\n' || s.p[i] == '\0')
            return true;
    }
    return false;
}

static bool name_ok(struct tmt_slice n)
{
    if (n.len == 0 || has_ctl(n))
        return false;
    for (size_t i = 0; i < n.len; i++) {
        if (n.p[i] == ':' || n.p[i] == ' ' || n.p[i] == '\t')
            return false;
    }
    return !tmt_http_slice_ieq(n, "host") && !tmt_http_slice_ieq(n, "content-length") &&
           !tmt_http_slice_ieq(n, "transfer-encoding");
}

static char *put(char *p, const void *src, size_t n)
{
    if (n == 0)
        return p; /* src may be NULL then */
    memcpy(p, src, n);
    return p + n;
}

/* Checks the request and formats its head into call->head. Returns 0, or fills call->err. */
static int build_request(struct tmt_http_call *call, const struct tmt_http_client_req *req)
{
    struct tmt_slice host =
        req->host.len > 0 ? req->host : (struct tmt_slice){req->upstream, strlen(req->upstream)};
    if (req->method == TMT_HTTP_OTHER)
        return tmt_err_set(&call->err, TMT_EINVAL, "%s: no method", call->up_name);
    if (req->path.len == 0 || has_ctl(req->path) || memchr(req->path.p, ' ', req->path.len))
        return tmt_err_set(&call->err, TMT_EINVAL, "%s: bad request path", call->up_name);
    if (has_ctl(host))
        return tmt_err_set(&call->err, TMT_EINVAL, "%s: Host holds CR, LF or NUL", call->up_name);
    const char *mname = tmt_http_method_name(req->method);
    size_t mlen = strlen(mname);
    /* Every length here came from the caller's memory, so the sum cannot wrap. */
    size_t need = mlen + 1 + req->path.len + 11 + 6 + host.len + 2 + 40 + 2;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tmt_http_header *hd = &req->headers[i];
        if (!name_ok(hd->name) || has_ctl(hd->value))
            return tmt_err_set(&call->err, TMT_EINVAL,
                               "%s: header field %.*s: bad name, a field the client writes, or "
                               "CR, LF or NUL in it",
                               call->up_name, (int)TMT_MIN(hd->name.len, (size_t)64), hd->name.p);
        need += hd->name.len + 2 + hd->value.len + 2;
    }
    char *head = malloc(need);
    if (head == NULL)
        return tmt_err_set(&call->err, TMT_ELIMIT, "%s: no memory for a %zu-byte request head",
                           call->up_name, need);
    char *p = head;
    p = put(p, mname, mlen);
    *p++ = ' ';
    p = put(p, req->path.p, req->path.len);
    p = put(p, " HTTP/1.1\r\nHost: ", 17);
    p = put(p, host.p, host.len);
    p = put(p, "\r\n", 2);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct tmt_http_header *hd = &req->headers[i];
        p = put(p, hd->name.p, hd->name.len);
        p = put(p, ": ", 2);
        p = put(p, hd->value.p, hd->value.len);
        p = put(p, "\r\n", 2);
    }
    bool wants_length = req->method == TMT_HTTP_POST || req->method == TMT_HTTP_PUT ||
                        req->method == TMT_HTTP_PATCH;
    if (req->body.len > 0 || wants_length)
        p += snprintf(p, 40, "Content-Length: %zu\r\n", req->body.len);
    p = put(p, "\r\n", 2);
    call->head = head;
    call->head_len = (size_t)(p - head);
    TMT_ASSERT(call->head_len <= need);
    if (req->body.len > 0) {
        call->body = malloc(req->body.len);
        if (call->body == NULL)
            return tmt_err_set(&call->err, TMT_ELIMIT, "%s: no memory for a %zu-byte body",
                               call->up_name, req->body.len);
        memcpy(call->body, req->body.p, req->body.len);
        call->body_len = req->body.len;
    }
    return TMT_OK;
}

struct tmt_http_call *tmt_http_client_fetch(struct tmt_http_client *c,
                                            const struct tmt_http_client_req *req,
                                            const struct tmt_http_client_cbs *cbs, void *arg)
{
    TMT_CHECK_OBJ(c, CLIENT_MAGIC);
    TMT_ASSERT(req != NULL && req->upstream != NULL && cbs != NULL && cbs->on_done != NULL);
    struct tmt_http_call *call = tmt_xcalloc(1, sizeof(*call));
    call->magic = CALL_MAGIC;
    call->c = c;
    call->cbs = *cbs;
    call->arg = arg;
    call->method = req->method;
    call->up_name = req->upstream;
    call->in_fetch = true;
    tmt_err_clear(&call->err);
    evtimer_assign(&call->ev_done, c->base, call_on_deferred_done, call);
    call->next = c->calls;
    if (c->calls != NULL)
        c->calls->prev = call;
    c->calls = call;
    c->st.calls++;

    call->up = upstream_get(c, req->upstream);
    if (call->up == NULL) {
        /* The caller's string is only read while fetch runs; the message keeps a copy. */
        tmt_err_set(&call->err, TMT_EINVAL, "%s: not a numeric host:port address", req->upstream);
        call->up_name = "(bad address)";
        call_end(call, TMT_EINVAL);
    } else {
        call->up_name = call->up->name;
        int rc = build_request(call, req);
        if (rc != TMT_OK)
            call_end(call, rc);
        else
            call_start(call);
    }
    call->in_fetch = false;
    return call;
}

/* ---- pause, resume, cancel ---- */

void tmt_http_call_pause(struct tmt_http_call *call)
{
    TMT_CHECK_OBJ(call, CALL_MAGIC);
    if (call->paused || call->state >= CALL_ENDING)
        return;
    call->paused = true;
    if (call->conn != NULL && (call->state == CALL_HEAD || call->state == CALL_BODY))
        event_del(&call->conn->ev_read);
}

void tmt_http_call_resume(struct tmt_http_call *call)
{
    TMT_CHECK_OBJ(call, CALL_MAGIC);
    if (!call->paused)
        return;
    call->paused = false;
    if (call->state != CALL_HEAD && call->state != CALL_BODY)
        return;
    /* Inside its own callback the delivering loop up the stack goes on by itself. */
    if (call->in_cb > 0)
        return;
    /* Buffered bytes first: the read handler consumes the buffer before it reads. */
    arm_read(call);
    event_active(&call->conn->ev_read, EV_READ, 1);
}

void tmt_http_call_cancel(struct tmt_http_call **callp)
{
    struct tmt_http_call *call = *callp;
    *callp = NULL;
    if (call == NULL)
        return;
    TMT_CHECK_OBJ(call, CALL_MAGIC);
    if (call->cancelled || call->state == CALL_DONE)
        return; /* from inside on_done: the call is ending anyway */
    call->cancelled = true;
    call_release_conn(call, false);
    event_del(&call->ev_done);
    call_unlink(call);
    call->state = CALL_DONE;
    if (call->in_cb == 0)
        call_free(call);
}

/* ---- freeing ---- */

void tmt_http_client_free(struct tmt_http_client **cp)
{
    struct tmt_http_client *c = *cp;
    *cp = NULL;
    if (c == NULL)
        return;
    TMT_CHECK_OBJ(c, CLIENT_MAGIC);
    TMT_ASSERT(c->in_cb == 0); /* not from a callback: the caller's frame would outlive c */
    /* on_done may start new calls; they end here too. */
    while (c->calls != NULL) {
        struct tmt_http_call *call = c->calls;
        event_del(&call->ev_done);
        if (call->state == CALL_ENDING) {
            call_report(call, call->rc);
            continue;
        }
        call_release_conn(call, false);
        tmt_err_set(&call->err, TMT_EIO, "%s: client closed", call->up_name);
        call_report(call, TMT_EIO);
    }
    while (c->ups != NULL) {
        struct upstream *up = c->ups;
        c->ups = up->next;
        while (up->idle != NULL) {
            struct cconn *conn = up->idle;
            pool_unlink(conn);
            conn_close(conn);
        }
        free(up->name);
        free(up);
    }
    c->magic = 0;
    free(c);
}
