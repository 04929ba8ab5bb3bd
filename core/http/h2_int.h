/*
 * h2_int.h: the HTTP/2 side of a connection (h2_conn.c), for the other server files.
 */
#ifndef TMT_H2_INT_H
#define TMT_H2_INT_H

#include "http_int.h"

/* The client connection preface; a plain connection that starts with it speaks h2c. */
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/*
 * Turns c into an HTTP/2 connection. The bytes already in c's read buffer from rpos on (the
 * preface and whatever followed) are fed to the session first. Returns false if c was closed.
 */
bool h2_conn_start(struct conn *c);

/* Event callbacks for an HTTP/2 connection. */
void h2_on_read(evutil_socket_t fd, short what, void *arg);
void h2_on_write(evutil_socket_t fd, short what, void *arg);

/* Graceful stop: GOAWAY, finish open streams, then close. */
void h2_conn_shutdown(struct conn *c);

/* Detaches every stream still with a handler and frees the session (from srv_conn_close). */
void h2_conn_free(struct conn *c);

int h2_resp_start(struct req *r, int status, const struct tmt_http_header *h, size_t n,
                  int64_t clen);
void h2_resp_body(struct req *r, int kind, const void *p, int fd, off_t off, size_t len,
                  tmt_release_fn *rel, void *arg);
void h2_resp_end(struct req *r);

#endif
