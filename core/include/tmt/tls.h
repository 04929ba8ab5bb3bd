/*
 * tls.h: TLS contexts for listeners: certificate and key from files, TLS 1.2 and 1.3 only, ALPN
 * (h2 preferred, then http/1.1), session resumption by tickets (TLS 1.3 and 1.2) and a
 * server-side session cache (TLS 1.2).
 *
 * A context is immutable once made and refcounted (atomically: connections on every worker use
 * it); a certificate reload makes a new context for new connections while old ones finish on the
 * old one. This module is the only place that sets up OpenSSL contexts.
 */
#ifndef TMT_TLS_H
#define TMT_TLS_H

#include "tmt/err.h"

struct tmt_tls;

/*
 * A server context from PEM files: cert_path holds the certificate chain (leaf first), key_path
 * its private key. NULL with err filled (naming the file and OpenSSL's reason) on failure, e.g.
 * when the key does not match the certificate.
 */
struct tmt_tls *tmt_tls_server_new(const char *cert_path, const char *key_path,
                                   struct tmt_err *err);

void tmt_tls_ref(struct tmt_tls *t);
void tmt_tls_unref(struct tmt_tls **t);

/* The OpenSSL SSL_CTX *, for the connection code. Valid while a reference is held. */
void *tmt_tls_ssl_ctx(const struct tmt_tls *t);

#endif
