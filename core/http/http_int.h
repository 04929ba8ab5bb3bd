/*
 * http_int.h: what the server's files share: workers, connections, requests and the output
 * queue. Private to core/http.
 *
 * Ownership. A worker owns its connections (a list), its freelists and its buffers; nothing here
 * is touched by another thread except the worker's mailbox (under its mutex). A connection owns
 * its read buffer, its output queue and, on HTTP/1.1, at most one request at a time. A request
 * belongs to the handler from dispatch until it ends the response; if the connection goes away
 * first, the request is detached (c == NULL, aborted) and freed when the handler ends it.
 */
#ifndef TMT_HTTP_INT_H
#define TMT_HTTP_INT_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tmt/h1.h"
#include "tmt/metrics.h"
#include "tmt/server.h"

struct worker;
struct conn;
struct req;

/* ---- counters (server.c declares the table; the order here must match it) ---- */
enum srv_metric {
    SM_CONNS_ACCEPTED,
    SM_CONNS_REJECTED,
    SM_CONNS_OPEN,
    SM_REQUESTS,
    SM_RESP_1XX,
    SM_RESP_2XX,
    SM_RESP_3XX,
    SM_RESP_4XX,
    SM_RESP_5XX,
    SM_RESP_BYTES,
    SM_REJ_BAD_REQUEST,
    SM_REJ_URI_TOO_LONG,
    SM_REJ_HEAD_TOO_LARGE,
    SM_REJ_BODY_TOO_LARGE,
    SM_REJ_BAD_VERSION,
    SM_REJ_BAD_CODING,
    SM_TIMEOUT_HEADER,
    SM_TIMEOUT_BODY,
    SM_TIMEOUT_IDLE,
    SM_TIMEOUT_WRITE,
    SM_CLIENT_ABORTS,
    SM_H2_STREAMS,
    SM_H2_PROTOCOL_ERRORS,
    SM_TLS_HANDSHAKES,
    SM_TLS_HANDSHAKE_ERRORS,
    SM_TLS_RESUMED,
    SM_TIME_1MS, /* response times, one counter per bucket (TMT_HTTP_TIME_BUCKETS) */
    SM_TIME_LAST = SM_TIME_1MS + 13,
    SM__COUNT
};

/* ---- output queue ---- */

/* A copy chunk: pooled, refcounted by the pieces pointing into it. */
struct wchunk {
    struct wchunk *next_free;
    unsigned refs;
    size_t len, cap;
    char data[];
};

#define WCHUNK_CAP (16 * 1024 - 64)

enum oseg_kind { OSEG_MEM, OSEG_FILE };

/* How a response body piece is handed in (resp.c to h1_conn.c/h2_conn.c). */
enum body_kind { BODY_REF, BODY_FILE, BODY_COPY };

struct oseg {
    struct oseg *next;
    enum oseg_kind kind;
    const char *p; /* OSEG_MEM */
    int fd;        /* OSEG_FILE */
    off_t off;
    size_t len;
    struct wchunk *chunk; /* OSEG_MEM backed by a copy chunk (released by unref) */
    tmt_release_fn *release;
    void *arg;
};

struct outq {
    struct oseg *head;
    struct oseg **tailp;
    struct wchunk *cur; /* chunk new copies go to; the queue holds one ref on it */
    size_t bytes;       /* bytes queued, all pieces */
    bool corked;        /* TCP_CORK set while a large file range goes out */
};

void outq_init(struct outq *q);
/* Releases every piece and the current chunk. */
void outq_fini(struct worker *w, struct outq *q);
/* Appends a copy of len bytes (coalesced with the previous copy when contiguous). */
void outq_copy(struct worker *w, struct outq *q, const void *p, size_t len);
/* Reserves room for up to max bytes of copied data and returns where to write; commit after. */
char *outq_reserve(struct worker *w, struct outq *q, size_t max);
void outq_commit(struct worker *w, struct outq *q, size_t len);
void outq_ref(struct worker *w, struct outq *q, const void *p, size_t len, tmt_release_fn *rel,
              void *arg);
void outq_file(struct worker *w, struct outq *q, int fd, off_t off, size_t len, tmt_release_fn *rel,
               void *arg);
/* Queues a response body piece handed in as enum body_kind. */
void outq_body(struct worker *w, struct outq *q, int kind, const void *p, int fd, off_t off,
               size_t len, tmt_release_fn *rel, void *arg);
/* Drops the first n bytes (sent), releasing finished pieces. */
void outq_consume(struct worker *w, struct outq *q, size_t n);

/* Writes as much as the socket takes: 0 when empty, TMT_EAGAIN when the socket is full, TMT_EIO. */
int outq_flush_plain(struct worker *w, struct outq *q, int fd);

/* ---- requests ---- */

enum req_state { REQ_HANDLING, REQ_STARTED, REQ_ENDED };

struct req {
    struct tmt_http_req pub;
    struct conn *c; /* NULL once the connection has gone */
    struct worker *w;
    struct req *next;
    enum req_state state;
    bool aborted;
    bool no_body;                 /* HEAD, 1xx, 204, 304: body pieces are dropped */
    bool chunked;                 /* h1 chunked response framing */
    bool keep_alive;              /* h1: the client allows another request after this one */
    bool cors;                    /* the response gets the CORS fields (see tmt_server_limits) */
    struct tmt_slice cors_origin; /* the request's Origin when echoed (a listed origin) */
    int status;
    int64_t clen;       /* declared Content-Length, -1 if none */
    uint64_t body_sent; /* body bytes queued so far */
    uint64_t start_ms;
    int32_t stream_id; /* h2 */
    void *h2;          /* h2 stream state (h2_conn.c) */
    char client_buf[INET6_ADDRSTRLEN];
    char *body_buf;
    size_t body_len, body_cap;
    struct tmt_h1_chunked chunk_dec;
    struct tmt_http_header hdrs[TMT_SERVER_HEADERS_CAP];
};

/* ---- connections ---- */

enum conn_proto { PROTO_H1, PROTO_H2 };

enum conn_state {
    CS_TLS_HANDSHAKE,
    CS_WAIT_HEAD, /* h1: waiting for (the rest of) a request head */
    CS_READ_BODY, /* h1: reading a request body */
    CS_HANDLING,  /* h1: the handler has the request */
    CS_H2,        /* h2: the session drives everything */
    CS_CLOSING,   /* flush what is queued, then close */
};

struct conn_slab;

struct conn {
    unsigned magic;
#define CONN_MAGIC 0xc0ee0001u
    struct worker *w;
    struct conn_slab *slab;   /* server.c: the slab this connection lives in */
    struct conn *free_next;   /* server.c: the slab's free list */
    struct conn *prev, *next; /* worker's list */
    int fd;
    enum conn_proto proto;
    enum conn_state state;
    bool tls;
    bool write_armed;
    bool read_paused;
    bool in_process;
    bool peer_closed;
    bool idle_deferred; /* h1: the idle timeout waits for the output queue to drain */
    uint32_t n_reqs;    /* h1 requests started on this connection */
    struct event ev_read;
    struct event ev_write;
    uint64_t head_deadline_ms; /* h1: the current head must be complete by then; 0: not started */
    /* read buffer (h1; h2 reads into it too), released to the pool when empty */
    char *rbuf;
    uint32_t rpos, rlen, scanned;
    uint32_t head_end; /* h1: end of the current request's head in rbuf */
    struct req *req;   /* h1: the current request */
    struct outq out;
    void *h2;                  /* struct h2_sess (h2_conn.c) */
    struct tls_conn *tls_conn; /* (tls_conn.c) */
    struct sockaddr_in6 peer;  /* v4 peers are stored v4-mapped */
};

/* ---- workers ---- */

struct listener {
    int fd;
    struct event ev;
    struct worker *w;
    struct tmt_tls *tls;
};

struct server_addr {
    char *text;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint16_t port;
    struct tmt_tls *tls;
};

struct worker {
    unsigned magic;
#define WORKER_MAGIC 0x3031a001u
    struct tmt_server *s;
    unsigned idx;
    struct tmt_loop *loop;
    bool own_loop;
    pthread_t thread;
    struct event_base *base;
    struct listener *listeners;
    size_t n_listeners;
    struct conn *conns;      /* list head */
    struct conn_slab *slabs; /* slabs with a free connection (server.c) */
    unsigned n_slabs;
    unsigned n_conns;
    unsigned max_conns;
    bool stopping;
    struct tmt_server_limits limits;
    const struct timeval *tv_header, *tv_body, *tv_idle, *tv_write; /* common timeouts */
    struct event ev_mail;
    struct event ev_grace;
    struct event ev_tick; /* once a second: date, access log flush */
    pthread_mutex_t mail_mu;
    bool mail_stop;
    bool mail_limits;
    struct tmt_server_limits mail_limits_val;
    struct tmt_tls **mail_tls; /* per listener: a new context to switch to, or NULL */
    tmt_metric_slot *m;
    /* freelists */
    char *free_rbufs; /* linked through the first pointer of each buffer */
    unsigned n_free_rbufs;
    struct wchunk *free_chunks;
    unsigned n_free_chunks;
    struct oseg *free_segs;
    unsigned n_free_segs;
    struct req *free_reqs;
    unsigned n_free_reqs;
    /* "Server: ...\r\nDate: ...\r\n", rebuilt once a second */
    char fixed_hdrs[256];
    size_t fixed_len;
    int64_t date_s;
    /* access log batch */
    char *alog;
    size_t alog_len;
    uint64_t next_rid;
    unsigned trim_mark; /* connection count high-water since the last malloc_trim */
};

#define RBUF_CAP (16 * 1024)

struct tmt_server {
    unsigned magic;
#define TMT_SERVER_MAGIC 0x5e7e0001u
    struct tmt_server_opts opts;
    char *name;
    struct server_addr *addrs;
    size_t n_addrs;
    struct worker *workers;
    unsigned n_workers;
    struct tmt_metrics *own_metrics;
    struct tmt_metrics *metrics;
    size_t m_base;
    bool started;
    bool stopped;
};

/* conn_io.c: plain or TLS I/O for a connection */
struct tmt_tls;
ssize_t conn_read(struct conn *c, char *buf, size_t len);
int conn_flush(struct conn *c);
size_t conn_pending(const struct conn *c);
void conn_shutdown_write(struct conn *c);
void tls_conn_start(struct conn *c, struct tmt_tls *tls);
void tls_conn_free(struct conn *c);

/* server.c */
uint64_t srv_now_ms(struct worker *w);
/* event_add that also clears an earlier timeout when tv is NULL. */
void srv_event_add(struct event *ev, const struct timeval *tv);
void srv_update_date(struct worker *w);
struct req *srv_req_new(struct worker *w, struct conn *c);
void srv_req_free(struct worker *w, struct req *r);
void srv_req_log(struct worker *w, struct req *r);
char *srv_rbuf_get(struct worker *w);
void srv_rbuf_put(struct worker *w, char **buf);
void srv_conn_close(struct conn *c);
void srv_conn_closed_check(struct worker *w);

/* resp.c: hands a complete request to the server's handler (answering CORS preflights itself). */
void srv_dispatch(struct req *r);

/* h1_conn.c; the *_resp_* functions are called by resp.c with r->c set and r->status, r->clen
 * and r->no_body already decided */
void h1_conn_start(struct conn *c);
void h1_on_read(evutil_socket_t fd, short what, void *arg);
void h1_on_write(evutil_socket_t fd, short what, void *arg);
void h1_conn_kick(struct conn *c);
int h1_resp_start(struct req *r, int status, const struct tmt_http_header *h, size_t n,
                  int64_t clen);
void h1_resp_body(struct req *r, int kind, const void *p, int fd, off_t off, size_t len,
                  tmt_release_fn *rel, void *arg);
void h1_resp_end(struct req *r);
void h1_conn_shutdown(struct conn *c);

#endif
