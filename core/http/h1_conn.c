/*
 * h1_conn.c: an HTTP/1.1 connection: reading request heads and bodies, handing requests to the
 * handler one at a time, framing responses, keep-alive and pipelining, timeouts.
 *
 * States (enum conn_state): WAIT_HEAD -> (READ_BODY) -> HANDLING -> WAIT_HEAD ... or CLOSING.
 * The parsed head's slices point into the read buffer, so the buffer is never moved or reused
 * while a request is in progress; it is compacted only in WAIT_HEAD, between requests.
 *
 * Pipelining: process() handles every complete request already buffered before it flushes, so a
 * batch of pipelined requests costs one writev. A handler that answers later (a fill) ends the
 * request from outside process(); h1_resp_end then restarts process() for the next request.
 * process() never recurses: `in_process` makes a nested end just record its state.
 *
 * Timeouts. In WAIT_HEAD with nothing buffered, the read event carries the idle timeout; once a
 * head has begun it carries the header timeout, and head_deadline_ms bounds the whole head so a
 * client trickling one byte at a time (slowloris) is cut off too. The write event carries the
 * write timeout, which fires only when the socket makes no progress.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2_int.h"
#include "http_int.h"
#include "tmt/log.h"

static void process(struct conn *c);
static bool flush(struct conn *c);

static void arm_read(struct conn *c)
{
    struct worker *w = c->w;
    const struct timeval *tv = NULL;
    switch (c->state) {
    case CS_WAIT_HEAD:
        if (c->rlen > c->rpos) {
            tv = w->tv_header;
        } else if (conn_pending(c) > 0) {
            /* Still sending the last answer: the write timeout watches that; the idle wait
             * starts when it is out (flush re-arms). */
            tv = NULL;
            c->idle_deferred = true;
        } else {
            tv = w->tv_idle;
        }
        break;
    case CS_READ_BODY:
        tv = w->tv_body;
        break;
    default:
        tv = NULL; /* the handler has the request; reads only notice the client leaving */
        break;
    }
    srv_event_add(&c->ev_read, tv);
}

void h1_conn_start(struct conn *c)
{
    struct worker *w = c->w;
    c->proto = PROTO_H1;
    c->state = CS_WAIT_HEAD;
    event_assign(&c->ev_read, w->base, c->fd, EV_READ | EV_PERSIST, h1_on_read, c);
    event_assign(&c->ev_write, w->base, c->fd, EV_WRITE | EV_PERSIST, h1_on_write, c);
    arm_read(c);
    /* The request often arrives with the connection: try at once, saving a loop round. */
    h1_on_read(c->fd, EV_READ, c);
}

/* A response the server makes itself (bad requests, limits): always closes the connection. */
static void reject(struct conn *c, int status, const char *why, int metric)
{
    struct worker *w = c->w;
    if (metric >= 0)
        tmt_metric_inc(w->m, (size_t)metric);
    tmt_log(TMT_LOG_DEBUG, "http", "request rejected", "status=%d why=\"%s\"", status, why);
    char body[256];
    int bl = snprintf(body, sizeof(body), "%d %s: %s\n", status, tmt_http_status_text(status), why);
    if (bl < 0 || (size_t)bl >= sizeof(body))
        bl = 0;
    char *p = outq_reserve(w, &c->out, 1024);
    int n =
        snprintf(p, 1024,
                 "HTTP/1.1 %d %s\r\n%.*sContent-Type: text/plain\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n%s",
                 status, tmt_http_status_text(status), (int)w->fixed_len, w->fixed_hdrs, bl, body);
    if (n > 0 && n < 1024)
        outq_commit(w, &c->out, (size_t)n);
    size_t cls = (size_t)status / 100;
    tmt_metric_inc(w->m, SM_RESP_1XX + cls - 1);
    c->state = CS_CLOSING;
}

static void close_now(struct conn *c)
{
    srv_conn_close(c);
}

/* After CLOSING output is flushed: half-close and let the client read the answer. */
static void finish_closing(struct conn *c)
{
    conn_shutdown_write(c);
    close_now(c);
}

static void on_timeout(struct conn *c)
{
    struct worker *w = c->w;
    switch (c->state) {
    case CS_WAIT_HEAD:
        if (c->rlen > c->rpos) {
            tmt_metric_inc(w->m, SM_TIMEOUT_HEADER);
            tmt_log(TMT_LOG_INFO, "http", "request head timed out", "bytes=%u", c->rlen - c->rpos);
            reject(c, 408, "request head not received in time", -1);
            (void)flush(c);
        } else {
            tmt_metric_inc(w->m, SM_TIMEOUT_IDLE);
            close_now(c);
        }
        return;
    case CS_READ_BODY:
        tmt_metric_inc(w->m, SM_TIMEOUT_BODY);
        tmt_log(TMT_LOG_INFO, "http", "request body timed out", "rid=%llu",
                (unsigned long long)c->req->pub.id);
        srv_req_free(w, c->req);
        c->req = NULL;
        reject(c, 408, "request body not received in time", -1);
        (void)flush(c);
        return;
    default:
        return;
    }
}

void h1_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c;
    TMT_OBJ_CAST(c, arg, CONN_MAGIC);
    struct worker *w = c->w;
    (void)fd;
    if (what & EV_TIMEOUT) {
        on_timeout(c);
        return;
    }
    if (c->state == CS_CLOSING) {
        /* Discard what a rejected client keeps sending; the close follows the flush. */
        char sink[4096];
        ssize_t n = conn_read(c, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            close_now(c);
        return;
    }
    if (c->rbuf == NULL) {
        c->rbuf = srv_rbuf_get(w);
        c->rpos = c->rlen = c->scanned = 0;
    }
    /* In WAIT_HEAD the buffer may be compacted; otherwise the current head must stay put. */
    if (c->rlen == RBUF_CAP && c->state == CS_WAIT_HEAD && c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->scanned = c->scanned > c->rpos ? c->scanned - c->rpos : 0;
        c->rpos = 0;
    }
    if (c->rlen == RBUF_CAP) {
        /* Full while the handler holds a request: stop reading until it is done. */
        event_del(&c->ev_read);
        c->read_paused = true;
        return;
    }
    ssize_t n = conn_read(c, c->rbuf + c->rlen, RBUF_CAP - c->rlen);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->peer_closed = true;
        if (c->state == CS_HANDLING && c->req != NULL) {
            /* The client left while its request is in progress: drop the connection; the
             * handler's answer goes nowhere. */
            close_now(c);
            return;
        }
        close_now(c);
        return;
    }
    if (n < 0) {
        /* Nothing yet: an empty buffer goes back, so waiting connections hold none. */
        if (c->rlen == 0 && c->state == CS_WAIT_HEAD)
            srv_rbuf_put(w, &c->rbuf);
        return;
    }
    if (c->rlen == c->rpos && c->state == CS_WAIT_HEAD)
        c->head_deadline_ms = srv_now_ms(w) + w->limits.header_timeout_ms;
    c->rlen += (uint32_t)n;
    if (c->state == CS_HANDLING)
        return; /* buffered for after the current request */
    process(c);
}

void h1_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c;
    TMT_OBJ_CAST(c, arg, CONN_MAGIC);
    (void)fd;
    if (what & EV_TIMEOUT) {
        tmt_metric_inc(c->w->m, SM_TIMEOUT_WRITE);
        tmt_log(TMT_LOG_INFO, "http", "write timed out, client not reading", "queued=%zu",
                c->out.bytes);
        close_now(c);
        return;
    }
    bool was_backlogged = c->out.bytes > 0;
    if (!flush(c))
        return;
    /* process() stops taking requests while much is queued; go on once it drained. */
    if (was_backlogged && c->out.bytes == 0 && c->state == CS_WAIT_HEAD && c->rlen > c->rpos)
        process(c);
}

/*
 * Writes what is queued; arms the write event when the socket is full. Returns false when the
 * connection was closed (and freed) on the way.
 */
static bool flush(struct conn *c)
{
    int rc = conn_flush(c);
    if (rc == TMT_EAGAIN) {
        if (!c->write_armed) {
            c->write_armed = true;
            event_add(&c->ev_write, c->w->tv_write);
        }
        return true;
    }
    if (c->write_armed) {
        c->write_armed = false;
        event_del(&c->ev_write);
    }
    if (rc != TMT_OK) {
        close_now(c);
        return false;
    }
    if (c->state == CS_CLOSING) {
        finish_closing(c);
        return false;
    }
    if (c->state == CS_WAIT_HEAD && (c->read_paused || c->idle_deferred)) {
        c->read_paused = false;
        c->idle_deferred = false;
        arm_read(c);
    }
    if (c->state == CS_WAIT_HEAD && c->w->stopping && c->rlen == c->rpos) {
        close_now(c);
        return false;
    }
    return true;
}

static void reject_parse(struct conn *c, int rc, const struct tmt_h1_request *h)
{
    int metric = SM_REJ_BAD_REQUEST;
    switch (h->err_status) {
    case 414:
        metric = SM_REJ_URI_TOO_LONG;
        break;
    case 431:
        metric = SM_REJ_HEAD_TOO_LARGE;
        break;
    case 505:
        metric = SM_REJ_BAD_VERSION;
        break;
    case 501:
        metric = SM_REJ_BAD_CODING;
        break;
    default:
        break;
    }
    int status = h->err_status != 0 ? h->err_status : (rc == TMT_ELIMIT ? 431 : 400);
    tmt_log(TMT_LOG_INFO, "http", "bad request", "status=%d why=\"%s\"", status,
            h->err_reason != NULL ? h->err_reason : "malformed");
    reject(c, status, h->err_reason != NULL ? h->err_reason : "malformed request", metric);
}

static void dispatch(struct conn *c)
{
    struct req *r = c->req;
    c->state = CS_HANDLING;
    arm_read(c);
    srv_dispatch(r);
}

/* Moves request body bytes from the read buffer into the request. Returns true when complete. */
static bool take_body(struct conn *c)
{
    struct req *r = c->req;
    struct worker *w = c->w;
    size_t avail = c->rlen - c->rpos;
    if (!r->chunked) {
        size_t want = (size_t)r->clen - r->body_len;
        size_t n = TMT_MIN(avail, want);
        memcpy(r->body_buf + r->body_len, c->rbuf + c->rpos, n);
        r->body_len += n;
        c->rpos += (uint32_t)n;
    } else {
        while (c->rpos < c->rlen) {
            size_t out = 0, used = 0;
            char *in = c->rbuf + c->rpos;
            int rc = tmt_h1_chunked_decode(&r->chunk_dec, in, c->rlen - c->rpos, &out, &used);
            if (rc != TMT_OK && rc != TMT_EAGAIN) {
                srv_req_free(w, r);
                c->req = NULL;
                reject(c, rc == TMT_ELIMIT ? 413 : 400, "malformed chunked body",
                       rc == TMT_ELIMIT ? SM_REJ_BODY_TOO_LARGE : SM_REJ_BAD_REQUEST);
                return false;
            }
            if (r->body_len + out > w->limits.max_body_bytes) {
                srv_req_free(w, r);
                c->req = NULL;
                reject(c, 413, "request body larger than the limit", SM_REJ_BODY_TOO_LARGE);
                return false;
            }
            if (r->body_len + out > r->body_cap) {
                size_t cap = TMT_MAX(r->body_cap * 2, r->body_len + out);
                cap = TMT_MIN(TMT_MAX(cap, (size_t)4096), w->limits.max_body_bytes);
                char *nb = realloc(r->body_buf, cap);
                if (nb == NULL) {
                    srv_req_free(w, r);
                    c->req = NULL;
                    reject(c, 503, "out of memory for the request body", -1);
                    return false;
                }
                r->body_buf = nb;
                r->body_cap = cap;
            }
            memcpy(r->body_buf + r->body_len, in, out);
            r->body_len += out;
            c->rpos += (uint32_t)used;
            if (rc == TMT_OK) {
                r->clen = (int64_t)r->body_len;
                goto complete;
            }
        }
        /* Consumed everything: reuse the space after the head for the next reads. */
        c->rlen = c->rpos = c->head_end;
        return false;
    }
    if ((int64_t)r->body_len < r->clen) {
        c->rlen = c->rpos = c->head_end;
        return false;
    }
complete:
    r->pub.body.p = r->body_buf;
    r->pub.body.len = r->body_len;
    return true;
}

static void start_request(struct conn *c, const struct tmt_h1_request *h, size_t head_len)
{
    struct worker *w = c->w;
    struct req *r = c->req;
    r->pub.method = h->method;
    r->pub.method_name = h->method_name;
    r->pub.version = 10 + h->minor_version;
    r->pub.target = h->target;
    r->pub.path = h->path;
    r->pub.query = h->query;
    r->pub.authority = h->host;
    r->pub.headers = h->headers;
    r->pub.n_headers = h->n_headers;
    r->keep_alive = h->keep_alive && !w->stopping;
    r->no_body = h->method == TMT_HTTP_HEAD;
    r->start_ms = srv_now_ms(w);
    c->rpos += (uint32_t)head_len;
    c->head_end = c->rpos;
    c->scanned = 0;
    c->head_deadline_ms = 0;

    if (h->content_length > 0 || h->chunked) {
        if (h->content_length > (int64_t)w->limits.max_body_bytes) {
            srv_req_free(w, r);
            c->req = NULL;
            reject(c, 413, "request body larger than the limit", SM_REJ_BODY_TOO_LARGE);
            return;
        }
        r->chunked = h->chunked;
        r->clen = h->content_length;
        if (!h->chunked) {
            r->body_buf = malloc((size_t)h->content_length);
            if (r->body_buf == NULL) {
                srv_req_free(w, r);
                c->req = NULL;
                reject(c, 503, "out of memory for the request body", -1);
                return;
            }
            r->body_cap = (size_t)h->content_length;
        } else {
            tmt_h1_chunked_init(&r->chunk_dec);
        }
        if (h->expect_continue && c->rlen == c->rpos)
            outq_copy(w, &c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->state = CS_READ_BODY;
        if (!take_body(c)) {
            if (c->state == CS_READ_BODY)
                arm_read(c);
            return; /* process() flushes (the 100 Continue, or a rejection) */
        }
        /* The request's framing is done; the response framing starts clean. */
        r->chunked = false;
        r->clen = -1;
    }
    dispatch(c);
}

static void process(struct conn *c)
{
    struct worker *w = c->w;
    if (c->in_process)
        return;
    c->in_process = true;
    for (;;) {
        if (c->state == CS_READ_BODY) {
            if (!take_body(c)) {
                if (c->state == CS_READ_BODY)
                    arm_read(c);
                break;
            }
            c->req->chunked = false;
            c->req->clen = -1;
            dispatch(c);
            continue;
        }
        if (c->state != CS_WAIT_HEAD)
            break;
        if (c->rpos == c->rlen) {
            /* Idle: hand the buffer back; idle connections hold no buffer at all. */
            srv_rbuf_put(w, &c->rbuf);
            c->rpos = c->rlen = c->scanned = 0;
            arm_read(c);
            break;
        }
        if (c->head_deadline_ms != 0 && srv_now_ms(w) > c->head_deadline_ms) {
            tmt_metric_inc(w->m, SM_TIMEOUT_HEADER);
            reject(c, 408, "request head not received in time", -1);
            break;
        }
        /*
         * Backpressure: do not take another request while much of the earlier answers is still
         * queued. Write first; only a socket that is really full stops the loop, and the write
         * event picks the next request up once it drains (h1_on_write).
         */
        if (conn_pending(c) > 256 * 1024) {
            if (!flush(c))
                return; /* closed */
            if (conn_pending(c) > 256 * 1024)
                break;
        }
        if (c->n_reqs == 0) {
            /* h2c with prior knowledge: the connection preface instead of a request. */
            size_t avail = c->rlen - c->rpos;
            size_t cmp = TMT_MIN(avail, (size_t)H2_PREFACE_LEN);
            if (memcmp(c->rbuf + c->rpos, H2_PREFACE, cmp) == 0) {
                if (cmp < H2_PREFACE_LEN) {
                    arm_read(c);
                    break;
                }
                c->in_process = false;
                h2_conn_start(c);
                return;
            }
        }
        struct req *r = srv_req_new(w, c);
        c->req = r;
        struct tmt_h1_request h;
        struct tmt_h1_limits lim = {w->limits.max_head_bytes, w->limits.max_target_len,
                                    w->limits.max_headers};
        int rc = tmt_h1_parse_request(c->rbuf + c->rpos, c->rlen - c->rpos, c->scanned, &lim, &h,
                                      r->hdrs);
        if (rc == TMT_EAGAIN) {
            srv_req_free(w, r);
            c->req = NULL;
            c->scanned = c->rlen - c->rpos;
            if (c->rpos > 0 && c->rlen == RBUF_CAP) {
                memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
            }
            if (c->head_deadline_ms == 0)
                c->head_deadline_ms = srv_now_ms(w) + w->limits.header_timeout_ms;
            arm_read(c);
            break;
        }
        if (rc < 0) {
            srv_req_free(w, r);
            c->req = NULL;
            reject_parse(c, rc, &h);
            break;
        }
        c->n_reqs++;
        start_request(c, &h, (size_t)rc);
    }
    c->in_process = false;
    (void)flush(c);
}

/* ---- responses ---- */

static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

int h1_resp_start(struct req *r, int status, const struct tmt_http_header *h, size_t n,
                  int64_t clen)
{
    struct conn *c = r->c;
    struct worker *w = c->w;
    bool v10 = r->pub.version == 10;
    r->chunked = false;
    if (clen < 0 && !r->no_body) {
        if (v10)
            r->keep_alive = false; /* read-to-close framing */
        else
            r->chunked = true;
    }
    if (w->stopping)
        r->keep_alive = false;

    size_t need = 64 + w->fixed_len + 64;
    for (size_t i = 0; i < n; i++)
        need += h[i].name.len + h[i].value.len + 4;
    if (need > WCHUNK_CAP)
        return TMT_ELIMIT;
    char *p = outq_reserve(w, &c->out, need);
    char *start = p;
    const char *text = tmt_http_status_text(status);
    memcpy(p, v10 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
    p += 9;
    p[0] = (char)('0' + status / 100 % 10);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    p[3] = ' ';
    p += 4;
    size_t tl = strlen(text);
    memcpy(p, text, tl);
    p += tl;
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, w->fixed_hdrs, w->fixed_len);
    p += w->fixed_len;
    for (size_t i = 0; i < n; i++) {
        TMT_DASSERT(memchr(h[i].value.p, '\n', h[i].value.len) == NULL);
        memcpy(p, h[i].name.p, h[i].name.len);
        p += h[i].name.len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h[i].value.p, h[i].value.len);
        p += h[i].value.len;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (clen >= 0 && status >= 200 && status != 204 && !(status == 304)) {
        memcpy(p, "Content-Length: ", 16);
        p += 16;
        p += put_u64(p, (uint64_t)clen);
        *p++ = '\r';
        *p++ = '\n';
    } else if (r->chunked) {
        memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
        p += 28;
    }
    if (!r->keep_alive) {
        memcpy(p, "Connection: close\r\n", 19);
        p += 19;
    } else if (v10) {
        memcpy(p, "Connection: keep-alive\r\n", 24);
        p += 24;
    }
    *p++ = '\r';
    *p++ = '\n';
    outq_commit(w, &c->out, (size_t)(p - start));
    return TMT_OK;
}

void h1_resp_body(struct req *r, int kind, const void *ptr, int fd, off_t off, size_t len,
                  tmt_release_fn *rel, void *arg)
{
    struct conn *c = r->c;
    struct worker *w = c->w;
    if (r->chunked) {
        char *p = outq_reserve(w, &c->out, 20);
        int hn = snprintf(p, 20, "%zx\r\n", len);
        outq_commit(w, &c->out, (size_t)hn);
    }
    outq_body(w, &c->out, kind, ptr, fd, off, len, rel, arg);
    if (r->chunked)
        outq_copy(w, &c->out, "\r\n", 2);
    /* Large bodies start moving now rather than waiting for the end. */
    if (c->out.bytes >= 64 * 1024 && !c->in_process)
        (void)flush(c);
}

void h1_resp_end(struct req *r)
{
    struct conn *c = r->c;
    if (c == NULL) {
        /* The client left; the connection is gone already. */
        srv_req_log(r->w, r);
        srv_req_free(r->w, r);
        return;
    }
    struct worker *w = c->w;
    if (r->chunked)
        outq_copy(w, &c->out, "0\r\n\r\n", 5);
    bool complete = r->no_body || r->clen < 0 || r->body_sent == (uint64_t)r->clen;
    if (!complete) {
        tmt_log(TMT_LOG_ERROR, "http", "response ended short of its Content-Length",
                "rid=%llu declared=%lld sent=%llu", (unsigned long long)r->pub.id,
                (long long)r->clen, (unsigned long long)r->body_sent);
    }
    bool keep = r->keep_alive && complete && !w->stopping;
    srv_req_log(w, r);
    c->req = NULL;
    srv_req_free(w, r);
    if (!keep) {
        c->state = CS_CLOSING;
        event_del(&c->ev_read);
        arm_read(c);
        if (!c->in_process)
            (void)flush(c);
        return;
    }
    c->state = CS_WAIT_HEAD;
    c->scanned = 0;
    c->head_deadline_ms = 0;
    if (c->read_paused) {
        c->read_paused = false;
    }
    if (c->in_process)
        return; /* process() goes on with the next buffered request */
    process(c);
}

void h1_conn_shutdown(struct conn *c)
{
    if (c->proto == PROTO_H2) {
        h2_conn_shutdown(c);
        return;
    }
    if (c->state == CS_WAIT_HEAD && c->rlen == c->rpos && c->out.bytes == 0)
        srv_conn_close(c);
    /* Others close after their current response: resp_start sees w->stopping. */
}

void h1_conn_kick(struct conn *c)
{
    process(c);
}
