/*
 * h2_conn.c: HTTP/2 connections through nghttp2: h2c with prior knowledge on plain listeners and
 * h2 by ALPN on TLS ones, with the same request/response abstraction as HTTP/1.1.
 *
 * Input: bytes read into the connection's read buffer go to nghttp2_session_mem_recv, which
 * copies what it keeps; the buffer goes back to the pool right after. Header fields of a stream
 * are copied into a pooled buffer of the stream (its "head"), bounded by max_head_bytes, so the
 * handler sees slices exactly as with HTTP/1.1.
 *
 * Output: control frames come from nghttp2_session_mem_send and are copied into the connection's
 * output queue; DATA payloads are never copied: the data source answers NGHTTP2_DATA_FLAG_NO_COPY
 * and the send_data callback moves the stream's queued pieces (memory by reference, file ranges)
 * into the connection's queue behind the 9-byte frame header. A stream with nothing queued yet
 * answers NGHTTP2_ERR_DEFERRED and is resumed when the handler adds a piece. Frames are only
 * produced while less than OUT_HIGH_WATER bytes wait for the socket, so a slow client holds back
 * its streams instead of making the server buffer whole bodies.
 *
 * Lifetimes: a stream (struct req + struct h2_strm) lives until both the handler has ended it
 * and nghttp2 has closed it; whichever comes second frees it. If the connection goes first,
 * streams still with a handler are detached (c == NULL) and freed when the handler ends them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"
#include "tmt/log.h"

#define OUT_HIGH_WATER (128 * 1024)
#define H2_MAX_RESP_HDRS 40

struct h2_strm {
    struct outq pending; /* body pieces not yet framed */
    bool ended;          /* the handler ended the response */
    bool deferred;       /* the data source answered DEFERRED */
    bool dispatched;     /* the handler has (or had) the request */
    bool closed;         /* nghttp2 closed the stream */
    int refused;         /* status the server answers itself with (413, 431); 0: none */
    char *head;          /* header bytes (pooled read buffer) */
    size_t head_len;
    struct req *prev, *next; /* the session's list */
};

struct h2_sess {
    unsigned magic;
#define H2_SESS_MAGIC 0x4832c001u
    nghttp2_session *ng;
    struct conn *c;
    struct req *streams;
    bool in_recv;
    bool going_away;
};

static void h2_send(struct conn *c);

static struct h2_strm *strm(struct req *r)
{
    return r->h2;
}

/* ---- streams ---- */

static struct req *stream_new(struct h2_sess *s, int32_t id)
{
    struct conn *c = s->c;
    struct req *r = srv_req_new(c->w, c);
    struct h2_strm *st = tmt_xcalloc(1, sizeof(*st));
    outq_init(&st->pending);
    r->h2 = st;
    r->stream_id = id;
    r->pub.version = 20;
    r->keep_alive = true;
    r->pub.headers = r->hdrs;
    st->next = s->streams;
    if (s->streams != NULL)
        strm(s->streams)->prev = r;
    s->streams = r;
    tmt_metric_inc(c->w->m, SM_H2_STREAMS);
    return r;
}

static void stream_unlink(struct h2_sess *s, struct req *r)
{
    struct h2_strm *st = strm(r);
    if (st->prev != NULL)
        strm(st->prev)->next = st->next;
    else if (s->streams == r)
        s->streams = st->next;
    if (st->next != NULL)
        strm(st->next)->prev = st->prev;
    st->prev = st->next = NULL;
}

static void stream_free(struct worker *w, struct req *r)
{
    struct h2_strm *st = strm(r);
    outq_fini(w, &st->pending);
    srv_rbuf_put(w, &st->head);
    free(st);
    r->h2 = NULL;
    srv_req_free(w, r);
}

/* ---- request assembly ---- */

static bool head_put(struct worker *w, struct h2_strm *st, const uint8_t *p, size_t len,
                     struct tmt_slice *out)
{
    if (st->head == NULL)
        st->head = srv_rbuf_get(w);
    if (st->head_len + len > w->limits.max_head_bytes)
        return false;
    memcpy(st->head + st->head_len, p, len);
    out->p = st->head + st->head_len;
    out->len = len;
    st->head_len += len;
    return true;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_sess *s = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct req *r = stream_new(s, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, r);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct h2_sess *s = ud;
    (void)flags;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct req *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (r == NULL)
        return 0;
    struct h2_strm *st = strm(r);
    struct worker *w = s->c->w;
    struct tmt_slice v;
    if (st->refused)
        return 0;
    if (!head_put(w, st, value, valuelen, &v)) {
        st->refused = 431;
        return 0;
    }
    if (namelen > 0 && name[0] == ':') {
        if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
            r->pub.method_name = v;
            r->pub.method = tmt_http_method_parse(v.p, v.len);
        } else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
            r->pub.target = v;
            const char *q = memchr(v.p, '?', v.len);
            r->pub.path = (struct tmt_slice){v.p, q != NULL ? (size_t)(q - v.p) : v.len};
            if (q != NULL)
                r->pub.query = (struct tmt_slice){q + 1, v.len - (size_t)(q - v.p) - 1};
        } else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
            r->pub.authority = v;
        }
        return 0;
    }
    struct tmt_slice nm;
    if (r->pub.n_headers >= w->limits.max_headers || !head_put(w, st, name, namelen, &nm)) {
        st->refused = 431;
        return 0;
    }
    if (r->pub.authority.len == 0 && tmt_http_slice_ieq(nm, "host"))
        r->pub.authority = v;
    r->hdrs[r->pub.n_headers].name = nm;
    r->hdrs[r->pub.n_headers].value = v;
    r->pub.n_headers++;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2_sess *s = ud;
    (void)flags;
    struct req *r = nghttp2_session_get_stream_user_data(ng, id);
    if (r == NULL || strm(r)->refused || strm(r)->dispatched)
        return 0;
    struct worker *w = s->c->w;
    if (r->body_len + len > w->limits.max_body_bytes) {
        strm(r)->refused = 413;
        return 0;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap =
            TMT_MIN(TMT_MAX(r->body_cap * 2, r->body_len + len + 4096), w->limits.max_body_bytes);
        char *nb = realloc(r->body_buf, cap);
        if (nb == NULL) {
            strm(r)->refused = 503;
            return 0;
        }
        r->body_buf = nb;
        r->body_cap = cap;
    }
    memcpy(r->body_buf + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

static void dispatch(struct h2_sess *s, struct req *r)
{
    struct h2_strm *st = strm(r);
    struct worker *w = s->c->w;
    st->dispatched = true;
    r->state = REQ_HANDLING;
    r->no_body = r->pub.method == TMT_HTTP_HEAD;
    r->pub.body = (struct tmt_slice){r->body_buf, r->body_len};
    if (st->refused != 0) {
        if (st->refused == 413)
            tmt_metric_inc(w->m, SM_REJ_BODY_TOO_LARGE);
        else if (st->refused == 431)
            tmt_metric_inc(w->m, SM_REJ_HEAD_TOO_LARGE);
        tmt_http_respond_error(&r->pub, st->refused,
                               st->refused == 413   ? "request body larger than the limit"
                               : st->refused == 431 ? "request header fields too large"
                                                    : "out of memory");
        return;
    }
    if (r->pub.method_name.len == 0 || r->pub.path.len == 0) {
        tmt_metric_inc(w->m, SM_REJ_BAD_REQUEST);
        tmt_http_respond_error(&r->pub, 400, "missing :method or :path");
        return;
    }
    srv_dispatch(r);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_sess *s = ud;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct req *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (r == NULL || strm(r)->dispatched)
        return 0;
    dispatch(s, r);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct h2_sess *s = ud;
    (void)code;
    struct req *r = nghttp2_session_get_stream_user_data(ng, id);
    if (r == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    struct h2_strm *st = strm(r);
    struct worker *w = s->c->w;
    st->closed = true;
    stream_unlink(s, r);
    if (st->dispatched && r->state != REQ_ENDED) {
        /* Reset by the client while the handler works: detach, free at its end. */
        r->c = NULL;
        r->aborted = true;
        tmt_metric_inc(w->m, SM_CLIENT_ABORTS);
        outq_fini(w, &st->pending);
        return 0;
    }
    stream_free(w, r);
    return 0;
}

/* ---- output ---- */

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)buf;
    (void)ud;
    struct req *r = src->ptr;
    struct h2_strm *st = strm(r);
    size_t avail = st->pending.bytes;
    if (avail == 0) {
        if (st->ended) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = TMT_MIN(avail, length);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->ended && n == avail)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* A release shared by the parts of a split piece. */
struct relhold {
    unsigned refs;
    tmt_release_fn *rel;
    void *arg;
};

static void holder_unref(void *arg)
{
    struct relhold *hd = arg;
    if (--hd->refs > 0)
        return;
    if (hd->rel != NULL)
        hd->rel(hd->arg);
    free(hd);
}

/* Moves the first n bytes of `from` to the end of `to`, splitting a piece if needed. */
static void move_bytes(struct worker *w, struct outq *from, struct outq *to, size_t n)
{
    while (n > 0) {
        struct oseg *s = from->head;
        TMT_ASSERT(s != NULL);
        if (s->len <= n) {
            from->head = s->next;
            if (from->head == NULL)
                from->tailp = &from->head;
            from->bytes -= s->len;
            n -= s->len;
            s->next = NULL;
            *to->tailp = s;
            to->tailp = &s->next;
            to->bytes += s->len;
            continue;
        }
        /*
         * Split: the front part goes out now, the rest waits for the next frame. Both must keep
         * what they point at alive: a chunk gets one more reference; a release is shared through
         * a counted holder so it runs once, after the last part is done with.
         */
        if (s->release != NULL && s->release != holder_unref) {
            struct relhold *hd = tmt_xmalloc(sizeof(*hd));
            hd->refs = 1;
            hd->rel = s->release;
            hd->arg = s->arg;
            s->release = holder_unref;
            s->arg = hd;
        }
        if (s->release != NULL)
            ((struct relhold *)s->arg)->refs++;
        if (s->kind == OSEG_FILE)
            outq_file(w, to, s->fd, s->off, n, s->release, s->arg);
        else
            outq_ref(w, to, s->p, n, s->release, s->arg);
        if (s->chunk != NULL) {
            struct oseg *front = (struct oseg *)((char *)to->tailp - offsetof(struct oseg, next));
            front->chunk = s->chunk;
            s->chunk->refs++;
        }
        if (s->kind == OSEG_FILE)
            s->off += (off_t)n;
        else
            s->p += n;
        s->len -= n;
        from->bytes -= n;
        n = 0;
    }
}

static int send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *ud)
{
    struct h2_sess *s = ud;
    (void)ng;
    (void)f;
    struct req *r = src->ptr;
    struct worker *w = s->c->w;
    outq_copy(w, &s->c->out, framehd, 9);
    move_bytes(w, &strm(r)->pending, &s->c->out, length);
    return 0;
}

/* Counts the connection errors nghttp2 answers by itself (GOAWAY with an error code). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_sess *s = ud;
    (void)ng;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
        tmt_metric_inc(s->c->w->m, SM_H2_PROTOCOL_ERRORS);
        tmt_log(TMT_LOG_INFO, "http", "HTTP/2 connection error", "code=%u",
                (unsigned)f->goaway.error_code);
    }
    return 0;
}

static void h2_close(struct conn *c)
{
    srv_conn_close(c);
}

/* Produces frames while the output queue has room, then writes. May close c. */
static void h2_send(struct conn *c)
{
    struct h2_sess *s = c->h2;
    if (s->in_recv)
        return;
    for (;;) {
        while (c->out.bytes < OUT_HIGH_WATER) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(s->ng, &data);
            if (n < 0) {
                tmt_metric_inc(c->w->m, SM_H2_PROTOCOL_ERRORS);
                h2_close(c);
                return;
            }
            if (n == 0)
                break;
            outq_copy(c->w, &c->out, data, (size_t)n);
        }
        int rc = conn_flush(c);
        if (rc == TMT_EAGAIN) {
            if (!c->write_armed) {
                c->write_armed = true;
                event_add(&c->ev_write, c->w->tv_write);
            }
            return;
        }
        if (rc != TMT_OK) {
            h2_close(c);
            return;
        }
        if (c->write_armed) {
            c->write_armed = false;
            event_del(&c->ev_write);
        }
        if (!nghttp2_session_want_write(s->ng))
            break;
    }
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng)) {
        h2_close(c);
        return;
    }
    /* Idle (no open stream): the idle timeout applies; otherwise no read timeout. */
    srv_event_add(&c->ev_read, s->streams == NULL ? c->w->tv_idle : NULL);
}

static void feed(struct conn *c, const char *p, size_t len)
{
    struct h2_sess *s = c->h2;
    s->in_recv = true;
    ssize_t n = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, len);
    s->in_recv = false;
    if (n < 0) {
        tmt_log(TMT_LOG_INFO, "http", "HTTP/2 protocol error", "err=\"%s\"",
                nghttp2_strerror((int)n));
        /* Send a GOAWAY (counted when it goes out), then close. */
        (void)nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
    }
}

void h2_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c;
    TMT_OBJ_CAST(c, arg, CONN_MAGIC);
    (void)fd;
    if (what & EV_TIMEOUT) {
        tmt_metric_inc(c->w->m, SM_TIMEOUT_IDLE);
        h2_close(c);
        return;
    }
    if (c->rbuf == NULL)
        c->rbuf = srv_rbuf_get(c->w);
    ssize_t n = conn_read(c, c->rbuf, RBUF_CAP);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        h2_close(c);
        return;
    }
    if (n > 0)
        feed(c, c->rbuf, (size_t)n);
    srv_rbuf_put(c->w, &c->rbuf);
    h2_send(c);
}

void h2_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c;
    TMT_OBJ_CAST(c, arg, CONN_MAGIC);
    (void)fd;
    if (what & EV_TIMEOUT) {
        tmt_metric_inc(c->w->m, SM_TIMEOUT_WRITE);
        h2_close(c);
        return;
    }
    h2_send(c);
}

bool h2_conn_start(struct conn *c)
{
    struct worker *w = c->w;
    struct h2_sess *s = tmt_xcalloc(1, sizeof(*s));
    s->magic = H2_SESS_MAGIC;
    s->c = c;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        tmt_panic("nghttp2 callbacks", __func__, __FILE__, __LINE__);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    /* Bounds a hostile peer meets: header block size, reset floods (rapid reset). */
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    int rc = nghttp2_session_server_new2(&s->ng, cbs, s, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        tmt_panic("nghttp2 session", __func__, __FILE__, __LINE__);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, w->limits.h2_max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)w->limits.max_head_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    (void)nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, TMT_ARRAY_LEN(iv));
    c->h2 = s;
    c->proto = PROTO_H2;
    c->state = CS_H2;
    event_del(&c->ev_read);
    event_del(&c->ev_write);
    event_assign(&c->ev_read, w->base, c->fd, EV_READ | EV_PERSIST, h2_on_read, c);
    event_assign(&c->ev_write, w->base, c->fd, EV_WRITE | EV_PERSIST, h2_on_write, c);
    c->write_armed = false;
    if (c->rbuf != NULL && c->rlen > c->rpos)
        feed(c, c->rbuf + c->rpos, c->rlen - c->rpos);
    srv_rbuf_put(w, &c->rbuf);
    c->rpos = c->rlen = 0;
    if (w->stopping)
        h2_conn_shutdown(c);
    h2_send(c);
    return true;
}

void h2_conn_shutdown(struct conn *c)
{
    struct h2_sess *s = c->h2;
    if (s->going_away)
        return;
    s->going_away = true;
    (void)nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                                nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
                                NULL, 0);
    h2_send(c);
}

void h2_conn_free(struct conn *c)
{
    struct h2_sess *s = c->h2;
    struct worker *w = c->w;
    while (s->streams != NULL) {
        struct req *r = s->streams;
        stream_unlink(s, r);
        if (strm(r)->dispatched && r->state != REQ_ENDED) {
            r->c = NULL;
            r->aborted = true;
            tmt_metric_inc(w->m, SM_CLIENT_ABORTS);
            outq_fini(w, &strm(r)->pending);
        } else {
            stream_free(w, r);
        }
    }
    nghttp2_session_del(s->ng);
    s->magic = 0;
    free(s);
    c->h2 = NULL;
}

/* ---- responses ---- */

static bool hop_by_hop(struct tmt_slice n)
{
    return tmt_http_slice_ieq(n, "connection") || tmt_http_slice_ieq(n, "transfer-encoding") ||
           tmt_http_slice_ieq(n, "keep-alive") || tmt_http_slice_ieq(n, "upgrade") ||
           tmt_http_slice_ieq(n, "proxy-connection");
}

int h2_resp_start(struct req *r, int status, const struct tmt_http_header *h, size_t n,
                  int64_t clen)
{
    struct conn *c = r->c;
    struct h2_sess *s = c->h2;
    struct worker *w = c->w;
    if (n + 4 > H2_MAX_RESP_HDRS)
        return TMT_ELIMIT;
    nghttp2_nv nv[H2_MAX_RESP_HDRS];
    size_t k = 0;
    char st[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                  (char)('0' + status % 10)};
    char date[TMT_HTTP_DATE_LEN + 1];
    char cl[24];
    /* Names must be lowercase on the wire: lowercase copies go in one buffer. */
    char names[2048];
    size_t used = 0;
#define NV(nm, nl, vp, vl)                                                                         \
    nv[k++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(nm), (uint8_t *)(uintptr_t)(vp), (nl), (vl),     \
                           NGHTTP2_NV_FLAG_NONE}
    NV(":status", 7, st, 3);
    NV("server", 6, w->s->name, strlen(w->s->name));
    tmt_http_date_format(w->date_s, date);
    NV("date", 4, date, TMT_HTTP_DATE_LEN);
    for (size_t i = 0; i < n; i++) {
        if (hop_by_hop(h[i].name))
            continue;
        if (used + h[i].name.len > sizeof(names))
            return TMT_ELIMIT;
        char *lname = names + used;
        for (size_t j = 0; j < h[i].name.len; j++) {
            char ch = h[i].name.p[j];
            lname[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch | 0x20) : ch;
        }
        used += h[i].name.len;
        NV(lname, h[i].name.len, h[i].value.p, h[i].value.len);
    }
    if (clen >= 0 && !(status < 200 || status == 204 || status == 304)) {
        int cll = snprintf(cl, sizeof(cl), "%lld", (long long)clen);
        NV("content-length", 14, cl, (size_t)cll);
    }
#undef NV
    nghttp2_data_provider dp = {.source = {.ptr = r}, .read_callback = data_read};
    bool body = !r->no_body && clen != 0;
    int rc = nghttp2_submit_response(s->ng, r->stream_id, nv, k, body ? &dp : NULL);
    if (rc != 0) {
        tmt_log(TMT_LOG_WARN, "http", "HTTP/2 response not submitted", "err=\"%s\"",
                nghttp2_strerror(rc));
        return TMT_OK; /* the stream is gone; the body pieces will be dropped */
    }
    /* Sending waits for the first body piece or the end, so a stream never closes under a
     * handler that is still answering. */
    return TMT_OK;
}

void h2_resp_body(struct req *r, int kind, const void *p, int fd, off_t off, size_t len,
                  tmt_release_fn *rel, void *arg)
{
    struct conn *c = r->c;
    struct h2_strm *st = strm(r);
    outq_body(c->w, &st->pending, kind, p, fd, off, len, rel, arg);
    if (st->deferred) {
        st->deferred = false;
        (void)nghttp2_session_resume_data(((struct h2_sess *)c->h2)->ng, r->stream_id);
    }
    h2_send(c);
}

void h2_resp_end(struct req *r)
{
    struct conn *c = r->c;
    struct worker *w = r->w;
    struct h2_strm *st = strm(r);
    srv_req_log(w, r);
    if (c == NULL || st->closed) {
        stream_free(w, r);
        return;
    }
    st->ended = true;
    if (r->clen >= 0 && !r->no_body && r->body_sent != (uint64_t)r->clen) {
        tmt_log(TMT_LOG_ERROR, "http", "response ended short of its Content-Length", "rid=%llu",
                (unsigned long long)r->pub.id);
        (void)nghttp2_submit_rst_stream(((struct h2_sess *)c->h2)->ng, NGHTTP2_FLAG_NONE,
                                        r->stream_id, NGHTTP2_INTERNAL_ERROR);
    }
    if (st->deferred) {
        st->deferred = false;
        (void)nghttp2_session_resume_data(((struct h2_sess *)c->h2)->ng, r->stream_id);
    }
    h2_send(c);
}
