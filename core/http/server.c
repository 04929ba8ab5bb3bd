/*
 * server.c: the server object, its worker threads and listeners, accepting connections, the
 * per-worker clock, Date header and access log, and graceful stop.
 *
 * Each worker has its own event loop and its own listening socket per address (SO_REUSEPORT):
 * the kernel spreads connections over the workers and nothing on the request path is shared.
 * For port 0 the first socket is bound, its port read back, and the other workers bind to that
 * same port. Messages to a worker (stop, new limits) go through a small mutex-protected mailbox
 * and event_active on the worker's loop; nothing else crosses threads.
 *
 * Lifetimes: the server and workers are process-lifetime objects; connections are freed on close;
 * buffers, pieces and requests go to per-worker freelists bounded in size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/thread.h>

#include "h2_int.h"
#include "http_int.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/tls.h"

#define ALOG_CAP (64 * 1024)
#define ALOG_FLUSH_AT (ALOG_CAP - 1024)

/* Order matches enum srv_metric. Names get the server's prefix at registration. */
static const struct tmt_metric_def srv_metric_defs[] = {
    {"tmt_http_connections_accepted_total", NULL, TMT_METRIC_COUNTER, "connections accepted"},
    {"tmt_http_connections_rejected_total", NULL, TMT_METRIC_COUNTER,
     "connections closed at once because the connection limit was reached"},
    {"tmt_http_connections_open", NULL, TMT_METRIC_GAUGE, "connections open now"},
    {"tmt_http_requests_total", NULL, TMT_METRIC_COUNTER, "requests handled"},
    {"tmt_http_responses_total", "code=\"1xx\"", TMT_METRIC_COUNTER, "responses by status class"},
    {"tmt_http_responses_total", "code=\"2xx\"", TMT_METRIC_COUNTER, "responses by status class"},
    {"tmt_http_responses_total", "code=\"3xx\"", TMT_METRIC_COUNTER, "responses by status class"},
    {"tmt_http_responses_total", "code=\"4xx\"", TMT_METRIC_COUNTER, "responses by status class"},
    {"tmt_http_responses_total", "code=\"5xx\"", TMT_METRIC_COUNTER, "responses by status class"},
    {"tmt_http_response_body_bytes_total", NULL, TMT_METRIC_COUNTER, "response body bytes queued"},
    {"tmt_http_requests_rejected_total", "reason=\"bad_request\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_requests_rejected_total", "reason=\"uri_too_long\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_requests_rejected_total", "reason=\"head_too_large\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_requests_rejected_total", "reason=\"body_too_large\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_requests_rejected_total", "reason=\"bad_version\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_requests_rejected_total", "reason=\"bad_coding\"", TMT_METRIC_COUNTER,
     "requests refused before reaching a handler, by cause"},
    {"tmt_http_timeouts_total", "phase=\"header\"", TMT_METRIC_COUNTER,
     "connections closed by a timeout, by phase"},
    {"tmt_http_timeouts_total", "phase=\"body\"", TMT_METRIC_COUNTER,
     "connections closed by a timeout, by phase"},
    {"tmt_http_timeouts_total", "phase=\"idle\"", TMT_METRIC_COUNTER,
     "connections closed by a timeout, by phase"},
    {"tmt_http_timeouts_total", "phase=\"write\"", TMT_METRIC_COUNTER,
     "connections closed by a timeout, by phase"},
    {"tmt_http_client_aborts_total", NULL, TMT_METRIC_COUNTER,
     "requests whose client went away before the response was sent"},
    {"tmt_http2_streams_total", NULL, TMT_METRIC_COUNTER, "HTTP/2 streams opened"},
    {"tmt_http2_protocol_errors_total", NULL, TMT_METRIC_COUNTER,
     "HTTP/2 connections ended for a protocol error"},
    {"tmt_tls_handshakes_total", NULL, TMT_METRIC_COUNTER, "TLS handshakes completed"},
    {"tmt_tls_handshake_errors_total", NULL, TMT_METRIC_COUNTER, "TLS handshakes that failed"},
    {"tmt_tls_resumed_total", NULL, TMT_METRIC_COUNTER,
     "TLS handshakes that resumed an earlier session"},
#define TIME_HELP                                                                                  \
    "responses by time from the request head to the end of the response, one counter per bucket "  \
    "(ms: the bucket's upper bound; not cumulative)"
    {"tmt_http_response_time_total", "ms=\"1\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"2\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"5\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"10\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"20\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"50\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"100\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"200\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"500\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"1000\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"2000\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"5000\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"10000\"", TMT_METRIC_COUNTER, TIME_HELP},
    {"tmt_http_response_time_total", "ms=\"inf\"", TMT_METRIC_COUNTER, TIME_HELP},
#undef TIME_HELP
};
_Static_assert(TMT_ARRAY_LEN(srv_metric_defs) == SM__COUNT, "metric table matches the enum");

void tmt_server_limits_default(struct tmt_server_limits *l)
{
    *l = (struct tmt_server_limits){
        .header_timeout_ms = 10000,
        .body_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .write_timeout_ms = 30000,
        .shutdown_grace_ms = 10000,
        .max_head_bytes = 8192,
        .max_target_len = 4096,
        .max_headers = 64,
        .max_body_bytes = 1024 * 1024,
        .max_connections = 10240,
        .h2_max_streams = 128,
    };
}

/* ---- clock, date ---- */

uint64_t srv_now_ms(struct worker *w)
{
    return tmt_loop_now_ms(w->loop);
}

void srv_update_date(struct worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == w->date_s)
        return;
    w->date_s = ts.tv_sec;
    char date[TMT_HTTP_DATE_LEN + 1];
    tmt_http_date_format(ts.tv_sec, date);
    int n = snprintf(w->fixed_hdrs, sizeof(w->fixed_hdrs), "Server: %s\r\nDate: %s\r\n", w->s->name,
                     date);
    w->fixed_len = (n > 0 && (size_t)n < sizeof(w->fixed_hdrs)) ? (size_t)n : 0;
}

void srv_event_add(struct event *ev, const struct timeval *tv)
{
    /* event_add(ev, NULL) keeps a timeout the event already has: drop it explicitly. */
    if (tv == NULL && event_pending(ev, EV_TIMEOUT, NULL))
        event_remove_timer(ev);
    event_add(ev, tv);
}

/* ---- freelists ---- */

char *srv_rbuf_get(struct worker *w)
{
    char *b = w->free_rbufs;
    if (b != NULL) {
        memcpy(&w->free_rbufs, b, sizeof(char *));
        w->n_free_rbufs--;
        return b;
    }
    return tmt_xmalloc(RBUF_CAP);
}

void srv_rbuf_put(struct worker *w, char **bufp)
{
    char *b = *bufp;
    *bufp = NULL;
    if (b == NULL)
        return;
    if (w->n_free_rbufs < 64) {
        memcpy(b, &w->free_rbufs, sizeof(char *));
        w->free_rbufs = b;
        w->n_free_rbufs++;
    } else {
        free(b);
    }
}

struct req *srv_req_new(struct worker *w, struct conn *c)
{
    struct req *r = w->free_reqs;
    if (r != NULL) {
        w->free_reqs = r->next;
        w->n_free_reqs--;
    } else {
        r = tmt_xmalloc(sizeof(*r));
    }
    /* Clear everything but the header array, which the parser fills. */
    memset(r, 0, offsetof(struct req, hdrs));
    r->pub.magic = TMT_HTTP_REQ_MAGIC;
    r->pub.worker = w->s->opts.metrics_shard + w->idx;
    /* Worker i hands out i+1, i+1+n, i+1+2n, ...: ids never collide between workers. */
    r->pub.id = w->next_rid;
    w->next_rid += w->s->n_workers;
    r->c = c;
    r->w = w;
    r->clen = -1;
    r->start_ms = srv_now_ms(w);
    if (c != NULL) {
        r->pub.tls = c->tls;
        const struct sockaddr_in6 *p = &c->peer;
        if (IN6_IS_ADDR_V4MAPPED(&p->sin6_addr))
            inet_ntop(AF_INET, &p->sin6_addr.s6_addr[12], r->client_buf, sizeof(r->client_buf));
        else
            inet_ntop(AF_INET6, &p->sin6_addr, r->client_buf, sizeof(r->client_buf));
    }
    r->pub.client = r->client_buf;
    return r;
}

void srv_req_free(struct worker *w, struct req *r)
{
    free(r->body_buf);
    r->body_buf = NULL;
    r->pub.magic = 0;
    if (w->n_free_reqs < 64) {
        r->next = w->free_reqs;
        w->free_reqs = r;
        w->n_free_reqs++;
    } else {
        free(r);
    }
}

/* ---- access log ---- */

static void alog_flush(struct worker *w)
{
    int fd = w->s->opts.access_log_fd;
    size_t off = 0;
    while (off < w->alog_len) {
        ssize_t n = write(fd, w->alog + off, w->alog_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk must not stall the loop; the lines are lost */
        off += (size_t)n;
    }
    w->alog_len = 0;
}

/* Copies s into dst, replacing bytes a log reader could trip on (space, quote, controls). */
static size_t log_safe(char *dst, size_t cap, struct tmt_slice s)
{
    size_t n = TMT_MIN(s.len, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        dst[i] = (ch <= 0x20 || ch >= 0x7f || ch == '"') ? '_' : (char)ch;
    }
    return n;
}

void srv_req_log(struct worker *w, struct req *r)
{
    size_t cls = (size_t)(r->status / 100);
    if (cls >= 1 && cls <= 5)
        tmt_metric_inc(w->m, SM_RESP_1XX + cls - 1);
    tmt_metric_inc(w->m, SM_REQUESTS);
    uint64_t dur = srv_now_ms(w) - r->start_ms;
    static const uint16_t upper[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
    size_t b = 0;
    while (b < TMT_ARRAY_LEN(upper) && dur > upper[b])
        b++;
    tmt_metric_inc(w->m, SM_TIME_1MS + b);
    if (w->s->opts.on_done != NULL)
        w->s->opts.on_done(w->s->opts.on_done_arg, &r->pub, r->status, r->body_sent);
    if (w->s->opts.access_log_fd < 0)
        return;
    if (w->alog == NULL)
        w->alog = tmt_xmalloc(ALOG_CAP);
    struct tmt_slice path = r->pub.log_path.p != NULL ? r->pub.log_path : r->pub.path;
    char pbuf[512];
    size_t plen = log_safe(pbuf, sizeof(pbuf), path);
    char date[TMT_HTTP_DATE_LEN + 1];
    tmt_http_date_format(w->date_s, date);
    int n = snprintf(w->alog + w->alog_len, ALOG_CAP - w->alog_len,
                     "time=\"%s\" client=%s method=%s path=%.*s proto=%s status=%d bytes=%llu "
                     "dur_ms=%llu cache=%s rid=%llu%s\n",
                     date, r->pub.client, tmt_http_method_name(r->pub.method), (int)plen, pbuf,
                     r->pub.version == 20 ? "h2" : (r->pub.version == 10 ? "h1.0" : "h1.1"),
                     r->status, (unsigned long long)r->body_sent, (unsigned long long)dur,
                     r->pub.cache_status != NULL ? r->pub.cache_status : "-",
                     (unsigned long long)r->pub.id, r->aborted ? " aborted=1" : "");
    if (n > 0 && (size_t)n < ALOG_CAP - w->alog_len)
        w->alog_len += (size_t)n;
    if (w->alog_len >= ALOG_FLUSH_AT)
        alog_flush(w);
}

/* ---- connection slabs ----
 *
 * Connections come from per-worker slabs of CONN_SLAB_N mapped straight from the kernel, not
 * from malloc. Connections are long-lived and arrive in bursts; from the heap they would sit
 * between small long-lived allocations (libevent's per-fd records) and, once freed, leave holes
 * that malloc_trim cannot give back. A slab whose connections have all closed is unmapped (one
 * spare is kept), so the memory of a burst of connections goes back to the system when they close.
 */

#define CONN_SLAB_N 64

struct conn_slab {
    struct conn_slab *prev, *next; /* the worker's slabs with a free entry */
    struct conn *free;             /* linked through free_next */
    unsigned used;
    struct conn conns[CONN_SLAB_N];
};

static size_t slab_bytes(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (sizeof(struct conn_slab) + page - 1) / page * page;
}

static void slab_unlink(struct worker *w, struct conn_slab *sl)
{
    if (sl->prev != NULL)
        sl->prev->next = sl->next;
    else if (w->slabs == sl)
        w->slabs = sl->next;
    if (sl->next != NULL)
        sl->next->prev = sl->prev;
    sl->prev = sl->next = NULL;
}

static void slab_push(struct worker *w, struct conn_slab *sl)
{
    sl->prev = NULL;
    sl->next = w->slabs;
    if (w->slabs != NULL)
        w->slabs->prev = sl;
    w->slabs = sl;
}

static struct conn *conn_slab_alloc(struct worker *w)
{
    struct conn_slab *sl = w->slabs;
    if (sl == NULL) {
        sl = mmap(NULL, slab_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (sl == MAP_FAILED)
            tmt_panic("out of memory for connections", __func__, __FILE__, __LINE__);
        for (int i = CONN_SLAB_N - 1; i >= 0; i--) {
            sl->conns[i].free_next = sl->free;
            sl->conns[i].slab = sl;
            sl->free = &sl->conns[i];
        }
        slab_push(w, sl);
        w->n_slabs++;
    }
    struct conn *c = sl->free;
    sl->free = c->free_next;
    if (++sl->used == CONN_SLAB_N)
        slab_unlink(w, sl); /* full: off the list until one of its connections closes */
    memset(c, 0, sizeof(*c));
    c->slab = sl;
    return c;
}

static void conn_slab_free(struct worker *w, struct conn *c)
{
    struct conn_slab *sl = c->slab;
    if (sl->used-- == CONN_SLAB_N)
        slab_push(w, sl);
    c->free_next = sl->free;
    sl->free = c;
    if (sl->used == 0 && w->n_slabs > 1) {
        slab_unlink(w, sl);
        munmap(sl, slab_bytes());
        w->n_slabs--;
    }
}

static void conn_slabs_fini(struct worker *w)
{
    while (w->slabs != NULL) {
        struct conn_slab *sl = w->slabs;
        TMT_ASSERT(sl->used == 0);
        slab_unlink(w, sl);
        munmap(sl, slab_bytes());
    }
}

/* ---- connections ---- */

void srv_conn_closed_check(struct worker *w)
{
    if (w->stopping && w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

void srv_conn_close(struct conn *c)
{
    struct worker *w = c->w;
    if (c->req != NULL) {
        struct req *r = c->req;
        c->req = NULL;
        r->c = NULL;
        if (r->state != REQ_ENDED) {
            r->aborted = true;
            tmt_metric_inc(w->m, SM_CLIENT_ABORTS);
        }
    }
    if (c->h2 != NULL)
        h2_conn_free(c);
    event_del(&c->ev_read);
    event_del(&c->ev_write);
    tls_conn_free(c);
    outq_fini(w, &c->out);
    srv_rbuf_put(w, &c->rbuf);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    tmt_metric_sub(w->m, SM_CONNS_OPEN, 1);
    c->magic = 0;
    conn_slab_free(w, c);
    srv_conn_closed_check(w);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct listener *l = arg;
    struct worker *w = l->w;
    (void)what;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in6 peer;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                tmt_log(TMT_LOG_WARN, "http", "accept failed: out of file descriptors", "errno=%d",
                        errno);
            return;
        }
        if (w->n_conns >= w->max_conns || w->stopping) {
            tmt_metric_inc(w->m, SM_CONNS_REJECTED);
            close(fd);
            continue;
        }
        memset(&peer, 0, sizeof(peer));
        peer.sin6_family = AF_INET6;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
            peer.sin6_addr.s6_addr[10] = 0xff;
            peer.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&peer.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
            peer.sin6_port = v4->sin_port;
        } else if (ss.ss_family == AF_INET6) {
            memcpy(&peer, &ss, sizeof(peer));
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = conn_slab_alloc(w);
        c->magic = CONN_MAGIC;
        c->w = w;
        c->fd = fd;
        c->peer = peer;
        c->tls = l->tls != NULL;
        outq_init(&c->out);
        c->next = w->conns;
        if (w->conns != NULL)
            w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        tmt_metric_inc(w->m, SM_CONNS_ACCEPTED);
        tmt_metric_add(w->m, SM_CONNS_OPEN, 1);
        if (l->tls != NULL)
            tls_conn_start(c, l->tls);
        else
            h1_conn_start(c);
    }
}

/* ---- worker lifecycle ---- */

static void close_listeners(struct worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->listeners[i].fd >= 0) {
            event_del(&w->listeners[i].ev);
            close(w->listeners[i].fd);
            w->listeners[i].fd = -1;
        }
    }
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->n_conns > 0)
        tmt_log(TMT_LOG_WARN, "http", "shutdown grace over, closing connections", "worker=%u n=%u",
                w->idx, w->n_conns);
    while (w->conns != NULL)
        srv_conn_close(w->conns);
    event_base_loopexit(w->base, NULL);
}

static void worker_begin_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    close_listeners(w);
    struct timeval tv = {(time_t)(w->limits.shutdown_grace_ms / 1000),
                         (suseconds_t)(w->limits.shutdown_grace_ms % 1000) * 1000};
    evtimer_assign(&w->ev_grace, w->base, on_grace, w);
    evtimer_add(&w->ev_grace, &tv);
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        h1_conn_shutdown(c);
        c = next;
    }
    srv_conn_closed_check(w);
}

static void set_timeouts(struct worker *w)
{
    struct timeval tv;
#define COMMON_TV(field, ms)                                                                       \
    tv.tv_sec = (time_t)((ms) / 1000);                                                             \
    tv.tv_usec = (suseconds_t)((ms) % 1000) * 1000;                                                \
    w->field = event_base_init_common_timeout(w->base, &tv);
    COMMON_TV(tv_header, w->limits.header_timeout_ms)
    COMMON_TV(tv_body, w->limits.body_timeout_ms)
    COMMON_TV(tv_idle, w->limits.idle_timeout_ms)
    COMMON_TV(tv_write, w->limits.write_timeout_ms)
#undef COMMON_TV
    unsigned nw = w->s->n_workers;
    w->max_conns = (w->limits.max_connections + nw - 1) / nw;
}

static void on_mail(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mail_mu);
    bool stop = w->mail_stop;
    bool limits = w->mail_limits;
    struct tmt_server_limits l = w->mail_limits_val;
    w->mail_limits = false;
    for (size_t i = 0; i < w->n_listeners; i++) {
        if (w->mail_tls[i] != NULL) {
            tmt_tls_unref(&w->listeners[i].tls);
            w->listeners[i].tls = w->mail_tls[i];
            w->mail_tls[i] = NULL;
        }
    }
    pthread_mutex_unlock(&w->mail_mu);
    if (limits) {
        w->limits = l;
        set_timeouts(w);
    }
    if (stop)
        worker_begin_stop(w);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    srv_update_date(w);
    if (w->alog_len > 0)
        alog_flush(w);
    /*
     * glibc keeps freed memory; after many connections closed, hand it back so that the memory
     * of a burst does not stay with the process. At most once a second, and only after a drop.
     */
    if (w->n_conns + 1000 < w->trim_mark) {
        malloc_trim(0);
        w->trim_mark = w->n_conns;
    } else if (w->n_conns > w->trim_mark) {
        w->trim_mark = w->n_conns;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (tmt_loop_run(w->loop) != 0)
        tmt_log(TMT_LOG_ERROR, "http", "worker loop failed", "worker=%u", w->idx);
    return NULL;
}

/* ---- sockets ---- */

static int parse_addr(const char *text, struct server_addr *a, struct tmt_err *err)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s: address needs a port (host:port)", text);
    size_t hl = (size_t)(colon - text);
    if (hl >= sizeof(host))
        return tmt_err_set(err, TMT_EINVAL, "%s: host too long", text);
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
        return tmt_err_set(err, TMT_EINVAL, "%s: bad port", text);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[8];
    snprintf(ps, sizeof(ps), "%ld", port);
    int rc = getaddrinfo(host[0] != '\0' ? host : NULL, ps, &hints, &res);
    if (rc != 0 || res == NULL)
        return tmt_err_set(err, TMT_EINVAL, "%s: not a numeric address: %s", text,
                           gai_strerror(rc));
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->sslen = res->ai_addrlen;
    a->port = (uint16_t)port;
    freeaddrinfo(res);
    return TMT_OK;
}

static int open_listener(struct server_addr *a, struct tmt_err *err)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "%s: socket", a->text);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(a->port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(a->port);
    if (bind(fd, (struct sockaddr *)&a->ss, a->sslen) != 0) {
        int e = errno;
        close(fd);
        return tmt_err_set_errno(err, TMT_EIO, e, "%s: cannot bind", a->text);
    }
    if (listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return tmt_err_set_errno(err, TMT_EIO, e, "%s: cannot listen", a->text);
    }
    if (a->port == 0) {
        /* Every worker must share the port the first socket got. */
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        getsockname(fd, (struct sockaddr *)&got, &gl);
        a->port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                 : ((struct sockaddr_in6 *)&got)->sin6_port);
    }
    return fd;
}

/* ---- public API ---- */

struct tmt_server *tmt_server_new(const struct tmt_server_opts *opts, struct tmt_err *err)
{
    if (opts->handler == NULL) {
        tmt_err_set(err, TMT_EINVAL, "server needs a handler");
        return NULL;
    }
    if (opts->limits.max_headers == 0 || opts->limits.max_headers > TMT_SERVER_HEADERS_CAP ||
        opts->limits.max_head_bytes >= RBUF_CAP || opts->limits.max_head_bytes < 256) {
        tmt_err_set(err, TMT_EINVAL, "server limits out of range (headers 1..%d, head 256..%d)",
                    TMT_SERVER_HEADERS_CAP, RBUF_CAP - 1);
        return NULL;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads); /* also in tmt_loop_new */

    struct tmt_server *s = tmt_xcalloc(1, sizeof(*s));
    s->magic = TMT_SERVER_MAGIC;
    s->opts = *opts;
    s->name = tmt_xstrdup(opts->name != NULL ? opts->name : "tomato");
    s->n_workers = opts->loop != NULL ? 1 : TMT_MAX(opts->workers, 1u);
    s->metrics = opts->metrics;
    if (s->metrics == NULL) {
        s->own_metrics = tmt_metrics_new(s->n_workers);
        s->metrics = s->own_metrics;
        s->opts.metrics_shard = 0;
    }
    s->m_base = tmt_metrics_register(s->metrics, srv_metric_defs, SM__COUNT);
    if (s->own_metrics != NULL)
        tmt_metrics_seal(s->own_metrics);
    return s;
}

int tmt_server_listen(struct tmt_server *s, const char *addr, struct tmt_tls *tls,
                      struct tmt_err *err)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    TMT_ASSERT(!s->started);
    struct server_addr a = {0};
    int rc = parse_addr(addr, &a, err);
    if (rc != 0)
        return rc;
    a.text = tmt_xstrdup(addr);
    if (tls != NULL)
        tmt_tls_ref(tls);
    a.tls = tls;
    s->addrs = tmt_xrealloc(s->addrs, (s->n_addrs + 1) * sizeof(*s->addrs));
    s->addrs[s->n_addrs++] = a;
    return TMT_OK;
}

uint16_t tmt_server_port(const struct tmt_server *s, size_t i)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    return i < s->n_addrs ? s->addrs[i].port : 0;
}

int tmt_server_start(struct tmt_server *s, struct tmt_err *err)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    TMT_ASSERT(!s->started);
    s->workers = tmt_xcalloc(s->n_workers, sizeof(*s->workers));
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        w->magic = WORKER_MAGIC;
        w->s = s;
        w->idx = i;
        w->limits = s->opts.limits;
        w->next_rid = i + 1;
        pthread_mutex_init(&w->mail_mu, NULL);
        if (s->opts.loop != NULL) {
            w->loop = s->opts.loop;
        } else {
            w->loop = tmt_loop_new();
            w->own_loop = true;
            if (w->loop == NULL)
                return tmt_err_set(err, TMT_EIO, "cannot create worker loop");
        }
        w->base = tmt_loop_base(w->loop);
        w->m = tmt_metrics_shard(s->metrics, s->opts.metrics_shard + i);
        w->m += s->m_base;
        set_timeouts(w);
        srv_update_date(w);
        w->listeners = tmt_xcalloc(s->n_addrs, sizeof(*w->listeners));
        w->mail_tls = tmt_xcalloc(s->n_addrs, sizeof(*w->mail_tls));
        w->n_listeners = s->n_addrs;
        for (size_t j = 0; j < s->n_addrs; j++) {
            int fd = open_listener(&s->addrs[j], err);
            if (fd < 0)
                return fd;
            struct listener *l = &w->listeners[j];
            l->fd = fd;
            l->w = w;
            l->tls = s->addrs[j].tls;
            if (l->tls != NULL)
                tmt_tls_ref(l->tls);
            event_assign(&l->ev, w->base, fd, EV_READ | EV_PERSIST, on_accept, l);
            event_add(&l->ev, NULL);
        }
        event_assign(&w->ev_mail, w->base, -1, 0, on_mail, w);
        event_assign(&w->ev_tick, w->base, -1, EV_PERSIST, on_tick, w);
        struct timeval one = {1, 0};
        event_add(&w->ev_tick, &one);
    }
    if (s->opts.loop == NULL) {
        for (unsigned i = 0; i < s->n_workers; i++) {
            if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0)
                return tmt_err_set_errno(err, TMT_EIO, errno, "cannot start worker thread");
        }
    }
    s->started = true;
    return TMT_OK;
}

void tmt_server_set_limits(struct tmt_server *s, const struct tmt_server_limits *l)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    if (!s->started) {
        s->opts.limits = *l;
        return;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        pthread_mutex_lock(&w->mail_mu);
        w->mail_limits = true;
        w->mail_limits_val = *l;
        pthread_mutex_unlock(&w->mail_mu);
        event_active(&w->ev_mail, 0, 0);
    }
}

int tmt_server_set_tls(struct tmt_server *s, size_t i, struct tmt_tls *tls)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    if (i >= s->n_addrs || s->addrs[i].tls == NULL || tls == NULL)
        return TMT_EINVAL;
    tmt_tls_ref(tls);
    tmt_tls_unref(&s->addrs[i].tls);
    s->addrs[i].tls = tls;
    if (!s->started)
        return TMT_OK;
    for (unsigned k = 0; k < s->n_workers; k++) {
        struct worker *w = &s->workers[k];
        pthread_mutex_lock(&w->mail_mu);
        tmt_tls_ref(tls);
        tmt_tls_unref(&w->mail_tls[i]);
        w->mail_tls[i] = tls;
        pthread_mutex_unlock(&w->mail_mu);
        event_active(&w->ev_mail, 0, 0);
    }
    return TMT_OK;
}

void tmt_server_stop(struct tmt_server *s)
{
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    if (!s->started || s->stopped)
        return;
    s->stopped = true;
    if (s->opts.loop != NULL) {
        worker_begin_stop(&s->workers[0]);
        return;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct worker *w = &s->workers[i];
        pthread_mutex_lock(&w->mail_mu);
        w->mail_stop = true;
        pthread_mutex_unlock(&w->mail_mu);
        event_active(&w->ev_mail, 0, 0);
    }
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i].thread, NULL);
}

static void worker_fini(struct worker *w)
{
    close_listeners(w);
    while (w->conns != NULL)
        srv_conn_close(w->conns);
    if (w->alog_len > 0)
        alog_flush(w);
    free(w->alog);
    event_del(&w->ev_tick);
    event_del(&w->ev_mail);
    event_del(&w->ev_grace);
    while (w->free_rbufs != NULL) {
        char *b = w->free_rbufs;
        memcpy(&w->free_rbufs, b, sizeof(char *));
        free(b);
    }
    while (w->free_chunks != NULL) {
        struct wchunk *ch = w->free_chunks;
        w->free_chunks = ch->next_free;
        free(ch);
    }
    while (w->free_segs != NULL) {
        struct oseg *sg = w->free_segs;
        w->free_segs = sg->next;
        free(sg);
    }
    while (w->free_reqs != NULL) {
        struct req *r = w->free_reqs;
        w->free_reqs = r->next;
        free(r);
    }
    conn_slabs_fini(w);
    for (size_t i = 0; i < w->n_listeners; i++) {
        tmt_tls_unref(&w->listeners[i].tls);
        tmt_tls_unref(&w->mail_tls[i]);
    }
    free(w->mail_tls);
    free(w->listeners);
    pthread_mutex_destroy(&w->mail_mu);
    if (w->own_loop)
        tmt_loop_free(&w->loop);
    w->magic = 0;
}

void tmt_server_free(struct tmt_server **sp)
{
    struct tmt_server *s = *sp;
    *sp = NULL;
    if (s == NULL)
        return;
    TMT_CHECK_OBJ(s, TMT_SERVER_MAGIC);
    if (s->workers != NULL) {
        for (unsigned i = 0; i < s->n_workers; i++) {
            if (s->workers[i].magic == WORKER_MAGIC)
                worker_fini(&s->workers[i]);
        }
        free(s->workers);
    }
    for (size_t i = 0; i < s->n_addrs; i++) {
        free(s->addrs[i].text);
        tmt_tls_unref(&s->addrs[i].tls);
    }
    free(s->addrs);
    tmt_metrics_free(&s->own_metrics);
    free(s->name);
    s->magic = 0;
    free(s);
}
