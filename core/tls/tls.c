/*
 * tls.c: server TLS contexts (see tls.h).
 *
 * Choices: TLS 1.2 as the floor (older versions are broken or deprecated); OpenSSL's default
 * cipher lists, which are sane in 3.0; no renegotiation; session tickets on (stateless, keys
 * rotated by OpenSSL per context) plus a session-id cache for TLS 1.2 clients without tickets.
 * Compression is off (CRIME).
 */
#include "tmt/tls.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct tmt_tls {
    unsigned magic;
#define TMT_TLS_MAGIC 0x7150c001u
    atomic_uint refs;
    SSL_CTX *ctx;
};

static const unsigned char alpn_h2[] = "h2";
static const unsigned char alpn_h1[] = "http/1.1";

/* Prefers h2, then http/1.1; a client offering neither gets no ALPN (HTTP/1.1 is assumed). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    const unsigned char *pick = NULL;
    unsigned char pick_len = 0;
    for (unsigned i = 0; i < inlen;) {
        unsigned char l = in[i];
        if (i + 1u + l > inlen)
            break;
        const unsigned char *p = in + i + 1;
        if (l == 2 && memcmp(p, alpn_h2, 2) == 0) {
            *out = p;
            *outlen = l;
            return SSL_TLSEXT_ERR_OK;
        }
        if (l == 8 && memcmp(p, alpn_h1, 8) == 0) {
            pick = p;
            pick_len = l;
        }
        i += 1u + l;
    }
    if (pick == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    *out = pick;
    *outlen = pick_len;
    return SSL_TLSEXT_ERR_OK;
}

static int ssl_fail(struct tmt_err *err, const char *what, const char *path)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return tmt_err_set(err, TMT_EINVAL, "%s%s%s: %s", path != NULL ? path : "",
                       path != NULL ? ": " : "", what, buf);
}

struct tmt_tls *tmt_tls_server_new(const char *cert_path, const char *key_path, struct tmt_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_fail(err, "cannot create a TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    static const unsigned char sid_ctx[] = "tomato";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_sess_set_cache_size(ctx, 20480);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        ssl_fail(err, "cannot load the certificate chain", cert_path);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        ssl_fail(err, "cannot load the private key", key_path);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_fail(err, "the private key does not match the certificate", key_path);
        goto fail;
    }
    struct tmt_tls *t = tmt_xcalloc(1, sizeof(*t));
    t->magic = TMT_TLS_MAGIC;
    atomic_init(&t->refs, 1);
    t->ctx = ctx;
    return t;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tmt_tls_ref(struct tmt_tls *t)
{
    TMT_CHECK_OBJ(t, TMT_TLS_MAGIC);
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void tmt_tls_unref(struct tmt_tls **tp)
{
    struct tmt_tls *t = *tp;
    *tp = NULL;
    if (t == NULL)
        return;
    TMT_CHECK_OBJ(t, TMT_TLS_MAGIC);
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ctx);
    t->magic = 0;
    free(t);
}

void *tmt_tls_ssl_ctx(const struct tmt_tls *t)
{
    TMT_CHECK_OBJ(t, TMT_TLS_MAGIC);
    return t->ctx;
}
