/*
 * conn_io.c: a connection's bytes in and out, plain or through TLS, and the TLS handshake.
 *
 * Plain connections read with read(2) and write the output queue with writev and sendfile.
 * TLS connections read with SSL_read and write by copying the queue into a 16 KiB staging
 * record (file ranges with pread) that SSL_write encrypts; the staging buffer stays put until
 * OpenSSL has taken all of it, as SSL_write's retry rule requires. No kernel TLS here, so TLS
 * bodies always cost one copy.
 *
 * OpenSSL may hold decrypted bytes the caller had no room for (SSL_pending); the socket is then
 * not readable although data waits, so conn_read re-activates the read event itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "h2_int.h"
#include "http_int.h"
#include "tmt/log.h"
#include "tmt/tls.h"

#define TLS_STAGE 16384

struct tls_conn {
    SSL *ssl;
    struct tmt_tls *tls;
    size_t wlen, woff;
    char *wbuf; /* TLS_STAGE bytes from the worker's buffer pool while output is pending */
};

_Static_assert(TLS_STAGE <= RBUF_CAP, "the staging record fits a pooled buffer");

static void tls_on_handshake(evutil_socket_t fd, short what, void *arg);

ssize_t conn_read(struct conn *c, char *buf, size_t len)
{
    if (c->tls_conn == NULL)
        return read(c->fd, buf, len);
    SSL *ssl = c->tls_conn->ssl;
    ERR_clear_error();
    int n = SSL_read(ssl, buf, (int)TMT_MIN(len, (size_t)INT32_MAX));
    if (n > 0) {
        if (SSL_pending(ssl) > 0)
            event_active(&c->ev_read, EV_READ, 1);
        return n;
    }
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = ECONNRESET;
    return -1;
}

int conn_flush(struct conn *c)
{
    struct tls_conn *t = c->tls_conn;
    if (t == NULL)
        return outq_flush_plain(c->w, &c->out, c->fd);
    for (;;) {
        if (t->woff == t->wlen) {
            t->woff = t->wlen = 0;
            if (c->out.head == NULL) {
                srv_rbuf_put(c->w, &t->wbuf); /* idle TLS connections hold no staging buffer */
                return TMT_OK;
            }
            if (t->wbuf == NULL)
                t->wbuf = srv_rbuf_get(c->w);
            /* Stage the next record's worth of the queue. */
            while (t->wlen < TLS_STAGE && c->out.head != NULL) {
                struct oseg *s = c->out.head;
                size_t n = TMT_MIN(s->len, TLS_STAGE - t->wlen);
                if (s->kind == OSEG_FILE) {
                    ssize_t r = pread(s->fd, t->wbuf + t->wlen, n, s->off);
                    if (r <= 0)
                        return TMT_EIO;
                    n = (size_t)r;
                } else {
                    memcpy(t->wbuf + t->wlen, s->p, n);
                }
                t->wlen += n;
                outq_consume(c->w, &c->out, n);
            }
            if (t->wlen == 0)
                return TMT_OK;
        }
        ERR_clear_error();
        int n = SSL_write(t->ssl, t->wbuf + t->woff, (int)(t->wlen - t->woff));
        if (n > 0) {
            t->woff += (size_t)n;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return TMT_EAGAIN;
        return TMT_EIO;
    }
}

size_t conn_pending(const struct conn *c)
{
    size_t n = c->out.bytes;
    if (c->tls_conn != NULL)
        n += c->tls_conn->wlen - c->tls_conn->woff;
    return n;
}

void conn_shutdown_write(struct conn *c)
{
    if (c->tls_conn != NULL) {
        ERR_clear_error();
        (void)SSL_shutdown(c->tls_conn->ssl);
    }
    shutdown(c->fd, SHUT_WR);
}

void tls_conn_start(struct conn *c, struct tmt_tls *tls)
{
    struct worker *w = c->w;
    struct tls_conn *t = tmt_xmalloc(sizeof(*t));
    t->wlen = t->woff = 0;
    t->wbuf = NULL;
    t->ssl = SSL_new(tmt_tls_ssl_ctx(tls));
    if (t->ssl == NULL || SSL_set_fd(t->ssl, c->fd) != 1) {
        if (t->ssl != NULL)
            SSL_free(t->ssl);
        free(t);
        tmt_metric_inc(w->m, SM_TLS_HANDSHAKE_ERRORS);
        srv_conn_close(c);
        return;
    }
    SSL_set_accept_state(t->ssl);
    tmt_tls_ref(tls);
    t->tls = tls;
    c->tls_conn = t;
    c->state = CS_TLS_HANDSHAKE;
    event_assign(&c->ev_read, w->base, c->fd, EV_READ | EV_PERSIST, tls_on_handshake, c);
    event_assign(&c->ev_write, w->base, c->fd, EV_WRITE | EV_PERSIST, tls_on_handshake, c);
    event_add(&c->ev_read, w->tv_header);
    tls_on_handshake(c->fd, EV_READ, c);
}

static void tls_on_handshake(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c;
    TMT_OBJ_CAST(c, arg, CONN_MAGIC);
    struct worker *w = c->w;
    (void)fd;
    if (what & EV_TIMEOUT) {
        tmt_metric_inc(w->m, SM_TIMEOUT_HEADER);
        tmt_metric_inc(w->m, SM_TLS_HANDSHAKE_ERRORS);
        srv_conn_close(c);
        return;
    }
    SSL *ssl = c->tls_conn->ssl;
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl);
    if (rc != 1) {
        int e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            event_del(&c->ev_write);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            event_add(&c->ev_write, w->tv_write);
            return;
        }
        char why[160] = "connection closed";
        unsigned long le = ERR_get_error();
        if (le != 0)
            ERR_error_string_n(le, why, sizeof(why));
        tmt_log(TMT_LOG_DEBUG, "tls", "handshake failed", "why=\"%s\"", why);
        tmt_metric_inc(w->m, SM_TLS_HANDSHAKE_ERRORS);
        srv_conn_close(c);
        return;
    }
    tmt_metric_inc(w->m, SM_TLS_HANDSHAKES);
    if (SSL_session_reused(ssl))
        tmt_metric_inc(w->m, SM_TLS_RESUMED);
    event_del(&c->ev_read);
    event_del(&c->ev_write);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0) {
        h2_conn_start(c);
        return;
    }
    c->n_reqs = 1; /* no h2c preface sniffing inside TLS: ALPN decided */
    h1_conn_start(c);
}

void tls_conn_free(struct conn *c)
{
    struct tls_conn *t = c->tls_conn;
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    srv_rbuf_put(c->w, &t->wbuf);
    tmt_tls_unref(&t->tls);
    free(t);
    c->tls_conn = NULL;
}
