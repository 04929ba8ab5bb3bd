/*
 * test_client.c: the HTTP/1.1 client (core/http/client.c) through client.h, over real sockets on
 * 127.0.0.1, all in one process on one loop.
 *
 * Two peers. The project's own server (server.h, on the test's loop) answers by path: /small,
 * /chunked, /big (1 MiB), /slow (never answers until teardown), /echo (the request body), /close
 * ("Connection: close"), /hdr (echoes X-Test and Host), /nocontent (204). A raw listening socket
 * plays the misbehaving upstream: it answers every request head it reads with a scripted reply,
 * and can close after the reply, or close instead of answering the second request on a
 * connection (a keep-alive close racing the next request).
 *
 * The loop is driven with EVLOOP_ONCE until a condition holds; a 20 ms guard timer keeps each
 * turn short, and a deadline fails the test instead of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "tmt/client.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/server.h"

#define BIG_LEN (1024 * 1024)
#define MAX_SLOW 8
#define RAW_CONNS 8

/* ---- the raw upstream ---- */

struct raw_conn {
    int fd; /* -1: free slot */
    struct event ev;
    char buf[4096];
    size_t len;
    int n_reqs;
    struct raw *raw;
};

struct raw {
    int lfd;
    char up[64];
    struct event ev;
    int accepts;
    const char *reply; /* NULL: never answer */
    size_t reply_len;
    bool close_after_reply;
    bool close_on_second; /* the second request on a connection gets a close, no answer */
    struct raw_conn conns[RAW_CONNS];
};

struct res;

/* ---- fixture ---- */

struct fx {
    struct tmt_loop *loop;
    struct event_base *base;
    struct event guard;
    struct tmt_metrics *metrics;
    long slot_accepted, slot_open;
    struct tmt_server *srv;
    char up[64];
    struct tmt_http_req *slow[MAX_SLOW];
    size_t n_slow;
    struct raw raw;
    struct tmt_http_client *cli;
    struct res *res[32]; /* call records live here, so a failed test leaves nothing dangling */
    size_t n_res;
};

static struct fx *F;
static char *big_body;

/* ---- one call's record ---- */

struct res {
    struct tmt_http_call *call;
    int heads, datas, dones;
    int status;
    int64_t clen;
    int rc;
    struct tmt_err err;
    char *body;
    size_t len, cap;
    /* behaviours */
    bool pause_on_head;
    int pause_every; /* pause after every n-th piece, resumed by a timer */
    bool paused;     /* paused by the test: on_data now is an error */
    int pauses;
    int data_while_paused;
    bool cancel_on_data;
    struct res *then; /* on_done starts this call to the same upstream */
    const char *then_path;
    const char *then_up; /* NULL: the server */
    struct event resume_ev;
};

static uint64_t now_ms(void)
{
    return tmt_loop_now_ms(F->loop);
}

static void loop_once(void)
{
    event_base_loop(F->base, EVLOOP_ONCE);
}

#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        uint64_t dl_ = now_ms() + (ms);                                                            \
        while (!(cond)) {                                                                          \
            if (now_ms() >= dl_)                                                                   \
                fail_msg("timed out after %d ms waiting for %s", (int)(ms), #cond);                \
            loop_once();                                                                           \
        }                                                                                          \
    } while (0)

/* Runs the loop for ms, whatever happens. */
static void run_for(uint64_t ms)
{
    uint64_t dl = now_ms() + ms;
    while (now_ms() < dl)
        loop_once();
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static uint64_t metric(long slot)
{
    return tmt_metrics_value(F->metrics, (size_t)slot);
}

/* ---- the server's handler ---- */

static void handler(struct tmt_http_req *req, void *arg)
{
    (void)arg;
    if (tmt_http_slice_ieq(req->path, "/small")) {
        tmt_http_respond(req, 200, "text/plain", "hello, world\n", 13);
    } else if (tmt_http_slice_ieq(req->path, "/chunked")) {
        assert_int_equal(tmt_http_resp_start(req, 200, NULL, 0, -1), 0);
        tmt_http_resp_copy(req, "one-", 4);
        tmt_http_resp_copy(req, "two-", 4);
        tmt_http_resp_copy(req, "three", 5);
        tmt_http_resp_end(req);
    } else if (tmt_http_slice_ieq(req->path, "/big")) {
        tmt_http_respond(req, 200, "application/octet-stream", big_body, BIG_LEN);
    } else if (tmt_http_slice_ieq(req->path, "/slow")) {
        assert_true(F->n_slow < MAX_SLOW);
        F->slow[F->n_slow++] = req;
    } else if (tmt_http_slice_ieq(req->path, "/echo")) {
        /*
         * Not tmt_http_respond: on HTTP/1.1 the server queues pieces over 2 KiB handed to
         * tmt_http_resp_copy by reference (h1_conn.c, h1_resp_body), and the request body is
         * freed when the response ends, so the echo would send freed memory. A copy we own,
         * released by the server, sidesteps that here.
         */
        char *copy = malloc(req->body.len + 1);
        assert_non_null(copy);
        if (req->body.len > 0)
            memcpy(copy, req->body.p, req->body.len);
        assert_int_equal(tmt_http_resp_start(req, 200, NULL, 0, (int64_t)req->body.len), 0);
        tmt_http_resp_ref(req, copy, req->body.len, free, copy);
        tmt_http_resp_end(req);
    } else if (tmt_http_slice_ieq(req->path, "/close")) {
        struct tmt_http_header h = {TMT_SLICE_LIT("Connection"), TMT_SLICE_LIT("close")};
        assert_int_equal(tmt_http_resp_start(req, 200, &h, 1, 5), 0);
        tmt_http_resp_copy(req, "close", 5);
        tmt_http_resp_end(req);
    } else if (tmt_http_slice_ieq(req->path, "/hdr")) {
        const struct tmt_http_header *x =
            tmt_http_header_find(req->headers, req->n_headers, "x-test");
        char out[256];
        int n = snprintf(out, sizeof(out), "%.*s|%.*s", x != NULL ? (int)x->value.len : 0,
                         x != NULL ? x->value.p : "", (int)req->authority.len, req->authority.p);
        tmt_http_respond(req, 200, NULL, out, (size_t)n);
    } else if (tmt_http_slice_ieq(req->path, "/nocontent")) {
        tmt_http_respond(req, 204, NULL, NULL, 0);
    } else {
        tmt_http_respond_error(req, 404, "no such test path");
    }
}

/* ---- the raw upstream ---- */

static void raw_close(struct raw_conn *rc)
{
    if (rc->fd < 0)
        return;
    event_del(&rc->ev);
    close(rc->fd);
    rc->fd = -1;
}

static void raw_reply(struct raw_conn *rc)
{
    struct raw *raw = rc->raw;
    rc->n_reqs++;
    if (raw->close_on_second && rc->n_reqs >= 2) {
        raw_close(rc);
        return;
    }
    if (raw->reply == NULL)
        return;
    size_t off = 0;
    while (off < raw->reply_len) {
        ssize_t n = write(rc->fd, raw->reply + off, raw->reply_len - off);
        if (n <= 0)
            break; /* loopback buffers hold every scripted reply */
        off += (size_t)n;
    }
    if (raw->close_after_reply)
        raw_close(rc);
}

static void raw_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct raw_conn *rc = arg;
    (void)what;
    if (rc->len == sizeof(rc->buf))
        rc->len = 0; /* the tests send small heads; this only keeps the buffer bounded */
    ssize_t n = read(fd, rc->buf + rc->len, sizeof(rc->buf) - rc->len);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            raw_close(rc);
        return;
    }
    rc->len += (size_t)n;
    for (;;) {
        char *end = memmem(rc->buf, rc->len, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        size_t used = (size_t)(end + 4 - rc->buf);
        memmove(rc->buf, rc->buf + used, rc->len - used);
        rc->len -= used;
        raw_reply(rc);
        if (rc->fd < 0)
            return;
    }
}

static void raw_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct raw *raw = arg;
    (void)what;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    raw->accepts++;
    for (size_t i = 0; i < RAW_CONNS; i++) {
        struct raw_conn *rc = &raw->conns[i];
        if (rc->fd >= 0)
            continue;
        rc->fd = fd;
        rc->len = 0;
        rc->n_reqs = 0;
        rc->raw = raw;
        event_assign(&rc->ev, F->base, fd, EV_READ | EV_PERSIST, raw_on_read, rc);
        event_add(&rc->ev, NULL);
        return;
    }
    close(fd);
}

static void raw_script(const char *reply, size_t len, bool close_after)
{
    F->raw.reply = reply;
    F->raw.reply_len = len;
    F->raw.close_after_reply = close_after;
}

static uint16_t listen_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    return ntohs(sin.sin_port);
}

static int bind_loopback(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void raw_start(struct raw *raw)
{
    raw->lfd = bind_loopback();
    assert_int_equal(listen(raw->lfd, 16), 0);
    snprintf(raw->up, sizeof(raw->up), "127.0.0.1:%u", listen_port(raw->lfd));
    for (size_t i = 0; i < RAW_CONNS; i++)
        raw->conns[i].fd = -1;
    event_assign(&raw->ev, F->base, raw->lfd, EV_READ | EV_PERSIST, raw_on_accept, raw);
    event_add(&raw->ev, NULL);
}

static void raw_stop(struct raw *raw)
{
    for (size_t i = 0; i < RAW_CONNS; i++)
        raw_close(&raw->conns[i]);
    event_del(&raw->ev);
    close(raw->lfd);
}

/* ---- setup / teardown ---- */

static struct tmt_http_client *client_with(const struct tmt_http_client_opts *o)
{
    tmt_http_client_free(&F->cli);
    F->cli = tmt_http_client_new(F->loop, o);
    assert_non_null(F->cli);
    return F->cli;
}

static int setup(void **state)
{
    (void)state;
    F = calloc(1, sizeof(*F));
    assert_non_null(F);
    F->loop = tmt_loop_new();
    assert_non_null(F->loop);
    F->base = tmt_loop_base(F->loop);
    event_assign(&F->guard, F->base, -1, EV_PERSIST, on_guard, NULL);
    struct timeval tv = {0, 20 * 1000};
    event_add(&F->guard, &tv);

    F->metrics = tmt_metrics_new(1);
    struct tmt_server_opts so = {.name = "test",
                                 .loop = F->loop,
                                 .handler = handler,
                                 .metrics = F->metrics,
                                 .access_log_fd = -1};
    tmt_server_limits_default(&so.limits);
    so.limits.max_body_bytes = 8 * 1024 * 1024;
    struct tmt_err err;
    F->srv = tmt_server_new(&so, &err);
    assert_non_null(F->srv);
    tmt_metrics_seal(F->metrics);
    F->slot_accepted = tmt_metrics_find(F->metrics, "tmt_http_connections_accepted_total", NULL);
    F->slot_open = tmt_metrics_find(F->metrics, "tmt_http_connections_open", NULL);
    assert_true(F->slot_accepted >= 0 && F->slot_open >= 0);
    assert_int_equal(tmt_server_listen(F->srv, "127.0.0.1:0", NULL, &err), 0);
    assert_int_equal(tmt_server_start(F->srv, &err), 0);
    snprintf(F->up, sizeof(F->up), "127.0.0.1:%u", tmt_server_port(F->srv, 0));

    raw_start(&F->raw);

    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    client_with(&o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < F->n_slow; i++)
        tmt_http_respond_error(F->slow[i], 503, "test over");
    tmt_http_client_free(&F->cli);
    raw_stop(&F->raw);
    tmt_server_stop(F->srv);
    tmt_server_free(&F->srv);
    tmt_metrics_free(&F->metrics);
    event_del(&F->guard);
    tmt_loop_free(&F->loop);
    for (size_t i = 0; i < F->n_res; i++) {
        free(F->res[i]->body);
        free(F->res[i]);
    }
    free(F);
    F = NULL;
    return 0;
}

/* ---- callbacks ---- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct res *r = arg;
    (void)fd;
    (void)what;
    r->paused = false;
    if (r->call != NULL) /* a pause after the last piece: the call has ended since */
        tmt_http_call_resume(r->call);
}

static void pause_for(struct res *r, int ms)
{
    tmt_http_call_pause(r->call);
    r->paused = true;
    r->pauses++;
    evtimer_assign(&r->resume_ev, F->base, on_resume, r);
    struct timeval tv = {0, ms * 1000};
    evtimer_add(&r->resume_ev, &tv);
}

static void on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct res *r = arg;
    r->heads++;
    r->status = resp->status;
    r->clen = resp->content_length;
    if (r->pause_on_head)
        pause_for(r, 400); /* long enough that a loaded machine still sees the pause */
}

static void on_data(void *arg, const char *p, size_t len)
{
    struct res *r = arg;
    r->datas++;
    if (r->paused)
        r->data_while_paused++;
    if (r->len + len > r->cap) {
        r->cap = (r->len + len) * 2;
        r->body = realloc(r->body, r->cap);
        assert_non_null(r->body);
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    if (r->cancel_on_data) {
        tmt_http_call_cancel(&r->call);
        assert_null(r->call);
        return;
    }
    if (r->pause_every > 0 && r->datas % r->pause_every == 0 && !r->paused)
        pause_for(r, 5);
}

static struct tmt_http_call *fetch(struct res *r, const char *up, enum tmt_http_method m,
                                   const char *path);

static void on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct res *r = arg;
    r->dones++;
    r->call = NULL; /* gone once on_done returns */
    r->rc = rc;
    assert_non_null(err);
    r->err = *err;
    if (r->then != NULL) {
        struct res *next = r->then;
        r->then = NULL;
        fetch(next, r->then_up != NULL ? r->then_up : F->up, TMT_HTTP_GET, r->then_path);
    }
}

static const struct tmt_http_client_cbs cbs = {on_head, on_data, on_done};

static struct tmt_http_call *fetch_req(struct res *r, const struct tmt_http_client_req *req)
{
    r->rc = 1;
    r->clen = -2;
    r->call = tmt_http_client_fetch(F->cli, req, &cbs, r);
    assert_non_null(r->call);
    return r->call;
}

static struct tmt_http_call *fetch(struct res *r, const char *up, enum tmt_http_method m,
                                   const char *path)
{
    struct tmt_http_client_req req = {.upstream = up, .method = m};
    req.path = (struct tmt_slice){path, strlen(path)};
    return fetch_req(r, &req);
}

/* A zeroed call record owned by the fixture. */
static struct res *R(void)
{
    assert_true(F->n_res < TMT_ARRAY_LEN(F->res));
    struct res *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    F->res[F->n_res++] = r;
    return r;
}

/* Sum of on_done calls over n records. */
static int dones(struct res *const *r, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += r[i]->dones;
    return sum;
}

static bool body_is(const struct res *r, const char *s)
{
    return r->len == strlen(s) && (r->len == 0 || memcmp(r->body, s, r->len) == 0);
}

static uint32_t checksum(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static struct tmt_http_client_stats stats(void)
{
    struct tmt_http_client_stats st;
    tmt_http_client_stats(F->cli, &st);
    return st;
}

/* ---- tests against the server ---- */

static void get_small(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/small");
    assert_int_equal(r->dones, 0); /* never from inside fetch */
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->heads, 1);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->clen, 13);
    assert_true(body_is(r, "hello, world\n"));
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.failures, 0);
}

static void get_chunked(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/chunked");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->clen, -1);
    assert_true(body_is(r, "one-two-three"));
    /* Chunked framing allows reuse. */
    struct res *r2 = R();
    fetch(r2, F->up, TMT_HTTP_GET, "/chunked");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_true(body_is(r2, "one-two-three"));
    assert_int_equal(stats().reused, 1);
}

static void get_big(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/big");
    WAIT_FOR(r->dones == 1, 10000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->clen, BIG_LEN);
    assert_int_equal(r->len, BIG_LEN);
    assert_true(r->datas > 1);
    assert_int_equal(checksum(r->body, r->len), checksum(big_body, BIG_LEN));
    assert_memory_equal(r->body, big_body, BIG_LEN);
}

static void head_has_no_body(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_HEAD, "/small");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->clen, 13);
    assert_int_equal(r->datas, 0);
    /* The connection was not left waiting for 13 bytes: the next call reuses it cleanly. */
    struct res *r2 = R();
    fetch(r2, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    assert_true(body_is(r2, "hello, world\n"));
    assert_int_equal(stats().reused, 1);
    /* 204: no body either, and reusable. */
    struct res *r3 = R();
    fetch(r3, F->up, TMT_HTTP_GET, "/nocontent");
    WAIT_FOR(r3->dones == 1, 3000);
    assert_int_equal(r3->rc, 0);
    assert_int_equal(r3->status, 204);
    assert_int_equal(r3->datas, 0);
    assert_int_equal(stats().reused, 2);
    assert_int_equal(metric(F->slot_accepted), 1);
}

static void post_echo(void **state)
{
    (void)state;
    size_t n = 6 * 1024 * 1024; /* more than a loopback socket takes at once: partial writes */
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 23);
    struct res *r = R();
    struct tmt_http_client_req req = {
        .upstream = F->up, .method = TMT_HTTP_POST, .path = TMT_SLICE_LIT("/echo")};
    req.body = (struct tmt_slice){body, n};
    fetch_req(r, &req);
    memset(body, 0, n); /* the client copied it */
    WAIT_FOR(r->dones == 1, 10000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, n);
    for (size_t i = 0; i < n; i++) {
        if (r->body[i] != (char)('a' + i % 23))
            fail_msg("echoed body differs at byte %zu of %zu (%d pieces)", i, n, r->datas);
    }
    /* POST without a body still says Content-Length: 0 (else the server waits or refuses). */
    struct res *r2 = R();
    struct tmt_http_client_req req2 = {
        .upstream = F->up, .method = TMT_HTTP_POST, .path = TMT_SLICE_LIT("/echo")};
    fetch_req(r2, &req2);
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    assert_int_equal(r2->status, 200);
    assert_int_equal(r2->len, 0);
    free(body);
}

static void request_headers_sent(void **state)
{
    (void)state;
    struct tmt_http_header h[] = {{TMT_SLICE_LIT("X-Test"), TMT_SLICE_LIT("abc def")}};
    struct res *r = R();
    struct tmt_http_client_req req = {.upstream = F->up,
                                      .method = TMT_HTTP_GET,
                                      .path = TMT_SLICE_LIT("/hdr"),
                                      .headers = h,
                                      .n_headers = 1};
    fetch_req(r, &req);
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    char want[128];
    snprintf(want, sizeof(want), "abc def|%s", F->up); /* Host defaults to the upstream */
    assert_true(body_is(r, want));
    struct res *r2 = R();
    req.host = TMT_SLICE_LIT("example.test");
    fetch_req(r2, &req);
    WAIT_FOR(r2->dones == 1, 3000);
    assert_true(body_is(r2, "abc def|example.test"));
}

static void reuse_from_on_done(void **state)
{
    (void)state;
    struct res *r2 = R();
    struct res *r = R();
    r->then = r2;
    r->then_path = "/small";
    fetch(r, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r2->rc, 0);
    assert_true(body_is(r2, "hello, world\n"));
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.calls, 2);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 1);
    assert_int_equal(metric(F->slot_accepted), 1);
}

static void pool_idle_timeout(void **state)
{
    (void)state;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.idle_timeout_ms = 100;
    client_with(&o);
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(metric(F->slot_open), 1);
    /* The client closes its idle connection; the server sees it go (its own idle limit is 60 s). */
    WAIT_FOR(metric(F->slot_open) == 0, 3000);
    struct res *r2 = R();
    fetch(r2, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reused, 0);
}

static void pool_keeps_at_most_max_idle(void **state)
{
    (void)state;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.max_idle_per_upstream = 1;
    client_with(&o);
    struct res *r[3];
    for (size_t k = 0; k < 3; k++)
        r[k] = R();
    for (int i = 0; i < 3; i++)
        fetch(r[i], F->up, TMT_HTTP_GET, i == 1 ? "/chunked" : "/small");
    WAIT_FOR(dones(r, 3) == 3, 3000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i]->rc, 0);
    assert_int_equal(stats().connects, 3);
    WAIT_FOR(metric(F->slot_open) == 1, 3000);
    run_for(50);
    assert_int_equal(metric(F->slot_open), 1);
}

static void connection_close_not_pooled(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/close");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_true(body_is(r, "close"));
    struct res *r2 = R();
    fetch(r2, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reused, 0);
}

static void concurrent_calls(void **state)
{
    (void)state;
    struct res *r[10];
    for (size_t k = 0; k < 10; k++)
        r[k] = R();
    for (int i = 0; i < 10; i++)
        fetch(r[i], F->up, TMT_HTTP_GET, i % 2 ? "/chunked" : "/small");
    WAIT_FOR(dones(r, 10) == 10, 5000);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(r[i]->rc, 0);
        assert_true(body_is(r[i], i % 2 ? "one-two-three" : "hello, world\n"));
    }
}

static void response_timeout(void **state)
{
    (void)state;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.response_timeout_ms = 100;
    client_with(&o);
    struct res *r = R();
    uint64_t t0 = now_ms();
    fetch(r, F->up, TMT_HTTP_GET, "/slow");
    WAIT_FOR(r->dones == 1, 3000);
    assert_true(now_ms() - t0 >= 90);
    assert_int_equal(r->rc, TMT_ETIMEDOUT);
    assert_int_equal(r->err.code, TMT_ETIMEDOUT);
    assert_int_equal(r->heads, 0);
    char want[128];
    snprintf(want, sizeof(want), "%s: no response head within 100 ms", F->up);
    assert_string_equal(r->err.msg, want);
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.failures, 1);
}

static void connect_refused(void **state)
{
    (void)state;
    int fd = bind_loopback(); /* bound, never listening: connects are refused */
    char up[64];
    snprintf(up, sizeof(up), "127.0.0.1:%u", listen_port(fd));
    struct res *r = R();
    fetch(r, up, TMT_HTTP_GET, "/");
    assert_int_equal(r->dones, 0);
    WAIT_FOR(r->dones == 1, 3000);
    close(fd);
    assert_int_equal(r->rc, TMT_EUPSTREAM);
    assert_non_null(strstr(r->err.msg, up));
    assert_non_null(strstr(r->err.msg, "Connection refused"));
    assert_int_equal(r->err.sys_errno, ECONNREFUSED);
    assert_int_equal(stats().failures, 1);
}

static void bad_address(void **state)
{
    (void)state;
    const char *bad[] = {
        "localhost:80", "127.0.0.1", "127.0.0.1:", "[::1:80", "1.2.3.4:http", ":80"};
    struct res *r[6];
    for (size_t k = 0; k < 6; k++)
        r[k] = R();
    for (size_t i = 0; i < 6; i++) {
        fetch(r[i], bad[i], TMT_HTTP_GET, "/");
        assert_int_equal(r[i]->dones, 0);
    }
    WAIT_FOR(dones(r, 6) == 6, 3000);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(r[i]->rc, TMT_EINVAL);
        assert_non_null(strstr(r[i]->err.msg, bad[i]));
    }
    assert_int_equal(stats().connects, 0);
    /* A bad address cancelled before the loop runs never calls back. */
    struct res *rc = R();
    fetch(rc, "nope", TMT_HTTP_GET, "/");
    tmt_http_call_cancel(&rc->call);
    run_for(30);
    assert_int_equal(rc->dones, 0);
}

static void ipv6_upstream(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd < 0 || bind(fd, (struct sockaddr *)&s6, sizeof(s6)) != 0) {
        if (fd >= 0)
            close(fd);
        skip(); /* no IPv6 loopback here */
    }
    socklen_t sl = sizeof(s6);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&s6, &sl), 0);
    char up[64];
    snprintf(up, sizeof(up), "[::1]:%u", ntohs(s6.sin6_port));
    struct res *r = R();
    fetch(r, up, TMT_HTTP_GET, "/"); /* bound, not listening: refused, so it was parsed */
    WAIT_FOR(r->dones == 1, 3000);
    close(fd);
    assert_int_equal(r->rc, TMT_EUPSTREAM);
    assert_int_equal(r->err.sys_errno, ECONNREFUSED);
}

static void bad_request_fields(void **state)
{
    (void)state;
    struct tmt_http_header crlf[] = {{TMT_SLICE_LIT("X-A"), TMT_SLICE_LIT("a\r\nX-B: b")}};
    struct tmt_http_header lf_name[] = {{TMT_SLICE_LIT("X\nA"), TMT_SLICE_LIT("a")}};
    struct tmt_http_header nul[] = {{TMT_SLICE_LIT("X-A"), {"a\0b", 3}}};
    struct tmt_http_header clen[] = {{TMT_SLICE_LIT("Content-Length"), TMT_SLICE_LIT("5")}};
    const struct tmt_http_header *sets[] = {crlf, lf_name, nul, clen};
    struct res *r[5];
    for (size_t k = 0; k < 5; k++)
        r[k] = R();
    for (size_t i = 0; i < 4; i++) {
        struct tmt_http_client_req req = {.upstream = F->up,
                                          .method = TMT_HTTP_GET,
                                          .path = TMT_SLICE_LIT("/small"),
                                          .headers = sets[i],
                                          .n_headers = 1};
        fetch_req(r[i], &req);
    }
    struct tmt_http_client_req req = {
        .upstream = F->up, .method = TMT_HTTP_GET, .path = TMT_SLICE_LIT("/small\r\nX: y")};
    fetch_req(r[4], &req);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(r[i]->dones, 0);
    WAIT_FOR(dones(r, 5) == 5, 3000);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(r[i]->rc, TMT_EINVAL);
    assert_int_equal(stats().connects, 0);
    assert_int_equal(metric(F->slot_accepted), 0);
}

/* ---- tests against the raw upstream ---- */

static void garbage_response(void **state)
{
    (void)state;
    static const char reply[] = "garbage\r\n\r\n";
    raw_script(reply, sizeof(reply) - 1, false);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, TMT_EUPSTREAM);
    assert_int_equal(r->heads, 0);
    char want[96];
    snprintf(want, sizeof(want), "%s: bad response head: ", F->raw.up);
    assert_memory_equal(r->err.msg, want, strlen(want));
}

static void truncated_body(void **state)
{
    (void)state;
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
    raw_script(reply, sizeof(reply) - 1, true);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, TMT_EUPSTREAM);
    assert_int_equal(r->heads, 1);
    assert_int_equal(r->clen, 100);
    assert_true(body_is(r, "abc"));
    assert_non_null(strstr(r->err.msg, "97 body bytes missing"));
    /* Truncated chunked body too. */
    static const char reply2[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    raw_script(reply2, sizeof(reply2) - 1, true);
    struct res *r2 = R();
    fetch(r2, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, TMT_EUPSTREAM);
    assert_true(body_is(r2, "hello"));
}

static void head_never_ends(void **state)
{
    (void)state;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.response_timeout_ms = 150;
    client_with(&o);
    static const char reply[] = "HTTP/1.1 200 OK\r\nX-A: 1\r\n";
    raw_script(reply, sizeof(reply) - 1, false);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, TMT_ETIMEDOUT);
    assert_non_null(strstr(r->err.msg, "no response head within 150 ms"));
}

static void body_stalls(void **state)
{
    (void)state;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.read_timeout_ms = 100;
    client_with(&o);
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    raw_script(reply, sizeof(reply) - 1, false);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, TMT_ETIMEDOUT);
    assert_true(body_is(r, "abc"));
    char want[128];
    snprintf(want, sizeof(want), "%s: no body bytes for 100 ms", F->raw.up);
    assert_string_equal(r->err.msg, want);
    assert_int_equal(stats().timeouts, 1);
}

static void connect_timeout(void **state)
{
    (void)state;
    /*
     * A listener with backlog 0 that never accepts: once one connection waits in its accept
     * queue, Linux drops further SYNs, so the next connect hangs in SYN-SENT.
     */
    int lfd = bind_loopback();
    assert_int_equal(listen(lfd, 0), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(listen_port(lfd))};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fill[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fill[i] >= 0);
        (void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
    }
    run_for(20);
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.connect_timeout_ms = 100;
    client_with(&o);
    char up[64];
    snprintf(up, sizeof(up), "127.0.0.1:%u", listen_port(lfd));
    struct res *r = R();
    fetch(r, up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
    assert_int_equal(r->rc, TMT_ETIMEDOUT);
    char want[128];
    snprintf(want, sizeof(want), "%s: no connection within 100 ms", up);
    assert_string_equal(r->err.msg, want);
}

static void head_too_large(void **state)
{
    (void)state;
    size_t cap = 40 * 1024, n = 0;
    char *reply = malloc(cap);
    assert_non_null(reply);
    n += (size_t)snprintf(reply, cap, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; n + 100 < cap; i++)
        n += (size_t)snprintf(reply + n, cap - n, "X-Filler-%04d: %060d\r\n", i, i);
    raw_script(reply, n, false);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, TMT_ELIMIT);
    assert_int_equal(r->heads, 0);
    /* Many small fields hit the count limit before the byte limit. */
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.max_headers = 128;
    client_with(&o);
    struct res *r2 = R();
    fetch(r2, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, TMT_ELIMIT);
    free(reply);
}

static void interim_head_and_read_to_close(void **state)
{
    (void)state;
    static const char reply[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil-close";
    raw_script(reply, sizeof(reply) - 1, true);
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->heads, 1);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->clen, -1);
    assert_true(body_is(r, "until-close"));
}

static void retry_on_stale_pooled_connection(void **state)
{
    (void)state;
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    raw_script(reply, sizeof(reply) - 1, false);
    F->raw.close_on_second = true;
    struct res *r = R();
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    /* The pooled connection looks healthy; the upstream closes it on seeing the request. */
    struct res *r2 = R();
    fetch(r2, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    assert_true(body_is(r2, "ok"));
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.connects, 2);
    assert_int_equal(F->raw.accepts, 2);
    /* Not idempotent: no retry, the failure is reported. */
    struct res *r3 = R();
    struct tmt_http_client_req req = {.upstream = F->raw.up,
                                      .method = TMT_HTTP_POST,
                                      .path = TMT_SLICE_LIT("/"),
                                      .body = TMT_SLICE_LIT("x")};
    fetch_req(r3, &req);
    WAIT_FOR(r3->dones == 1, 3000);
    assert_int_equal(r3->rc, TMT_EUPSTREAM);
    assert_non_null(strstr(r3->err.msg, "closed before the response head"));
    assert_int_equal(stats().retries, 1);
}

static void closed_pooled_connection_detected(void **state)
{
    (void)state;
    /* Keep-alive framing, but the upstream closes right after the answer. */
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    raw_script(reply, sizeof(reply) - 1, true);
    struct res *r2 = R();
    struct res *r = R();
    r->then = r2;
    r->then_path = "/";
    r->then_up = F->raw.up;
    /* on_done fetches at once, before the loop has looked at the pooled socket again. */
    fetch(r, F->raw.up, TMT_HTTP_GET, "/");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r2->rc, 0);
    assert_true(body_is(r2, "ok"));
    struct tmt_http_client_stats st = stats();
    assert_int_equal(st.reused, 0);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.connects, 2);
}

/* ---- pause, cancel, free ---- */

static void pause_resume(void **state)
{
    (void)state;
    struct res *r = R();
    r->pause_on_head = true;
    r->pause_every = 4;
    fetch(r, F->up, TMT_HTTP_GET, "/big");
    WAIT_FOR(r->heads == 1, 3000);
    assert_true(r->paused);
    run_for(30);
    assert_true(r->paused);        /* the resume timer is still ahead */
    assert_int_equal(r->datas, 0); /* nothing while paused, although bytes are buffered */
    WAIT_FOR(r->dones == 1, 10000);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->data_while_paused, 0);
    assert_true(r->pauses > 2);
    assert_int_equal(r->len, BIG_LEN);
    assert_int_equal(checksum(r->body, r->len), checksum(big_body, BIG_LEN));
}

static void pause_before_head(void **state)
{
    (void)state;
    struct res *r = R();
    fetch(r, F->up, TMT_HTTP_GET, "/small");
    tmt_http_call_pause(r->call);
    run_for(100);
    assert_int_equal(r->heads, 0);
    assert_int_equal(r->dones, 0);
    tmt_http_call_resume(r->call);
    WAIT_FOR(r->dones == 1, 3000);
    assert_int_equal(r->rc, 0);
    assert_true(body_is(r, "hello, world\n"));
}

static void cancel_mid_body(void **state)
{
    (void)state;
    struct res *r = R();
    r->cancel_on_data = true;
    fetch(r, F->up, TMT_HTTP_GET, "/big");
    WAIT_FOR(r->datas == 1, 3000);
    run_for(200);
    assert_int_equal(r->datas, 1);
    assert_int_equal(r->dones, 0);
    assert_true(r->len < BIG_LEN);
    /* The connection was closed, not pooled: the next call connects again. */
    struct res *r2 = R();
    fetch(r2, F->up, TMT_HTTP_GET, "/small");
    WAIT_FOR(r2->dones == 1, 3000);
    assert_int_equal(r2->rc, 0);
    assert_int_equal(stats().connects, 2);
    assert_int_equal(stats().failures, 0);
    /* Cancelled from outside a callback, while waiting for the head. */
    struct res *r3 = R();
    fetch(r3, F->up, TMT_HTTP_GET, "/slow");
    WAIT_FOR(F->n_slow == 1, 3000);
    tmt_http_call_cancel(&r3->call);
    run_for(50);
    assert_int_equal(r3->heads + r3->dones, 0);
}

static void free_with_calls_in_flight(void **state)
{
    (void)state;
    struct res *r[3];
    for (size_t k = 0; k < 3; k++)
        r[k] = R();
    fetch(r[0], F->up, TMT_HTTP_GET, "/slow");
    fetch(r[1], F->up, TMT_HTTP_GET, "/slow");
    WAIT_FOR(F->n_slow == 2, 3000);
    fetch(r[2], "bad", TMT_HTTP_GET, "/"); /* its report is still pending */
    tmt_http_client_free(&F->cli);
    assert_null(F->cli);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i]->dones, 1);
        assert_int_equal(r[i]->rc, TMT_EIO);
        assert_non_null(strstr(r[i]->err.msg, "client closed"));
    }
    assert_int_equal(r[2]->dones, 1);
    assert_int_equal(r[2]->rc, TMT_EINVAL);
    run_for(50);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i]->dones, 1);
}

int main(void)
{
    /* As in the daemons: writes to a closed peer are errors, not signals. */
    signal(SIGPIPE, SIG_IGN);
    big_body = malloc(BIG_LEN);
    if (big_body == NULL)
        return 1;
    for (size_t i = 0; i < BIG_LEN; i++)
        big_body[i] = (char)((i * 131 + i / 4099) & 0xff);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(get_small),
        T(get_chunked),
        T(get_big),
        T(head_has_no_body),
        T(post_echo),
        T(request_headers_sent),
        T(reuse_from_on_done),
        T(pool_idle_timeout),
        T(pool_keeps_at_most_max_idle),
        T(connection_close_not_pooled),
        T(concurrent_calls),
        T(response_timeout),
        T(connect_refused),
        T(bad_address),
        T(ipv6_upstream),
        T(bad_request_fields),
        T(garbage_response),
        T(truncated_body),
        T(head_never_ends),
        T(body_stalls),
        T(connect_timeout),
        T(head_too_large),
        T(interim_head_and_read_to_close),
        T(retry_on_stale_pooled_connection),
        T(closed_pooled_connection_detected),
        T(pause_resume),
        T(pause_before_head),
        T(cancel_mid_body),
        T(free_with_calls_in_flight),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(big_body);
    return rc;
}
