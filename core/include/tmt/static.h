/*
 * static.h: serving the files under a directory, and never anything outside it.
 *
 * The path is percent-decoded and checked component by component before any file system call: dot
 * components ("." and "..", also when encoded as %2e), encoded slashes, NUL and control bytes are
 * refused with 400; names starting with '.' are not served (404). The file is then opened relative
 * to the root with RESOLVE_BENEATH, so a symbolic link cannot lead out of the root either.
 *
 * Files are sent with sendfile; conditional requests, ranges and HEAD go through
 * tmt_http_serve_entity. Only GET and HEAD are allowed (405 with Allow otherwise).
 *
 * XXX: open and fstat run on the loop thread; the page cache makes them cheap for the demo and
 * benchmark content this serves, but a blocking pool would be needed for cold disks.
 */
#ifndef TMT_STATIC_H
#define TMT_STATIC_H

#include "tmt/err.h"

struct tmt_static;
struct tmt_http_req;

/*
 * Opens root (a directory). n_workers is the number of worker shards requests come from
 * (req->worker below it): each gets an open-file cache of its own (files stay open for a second,
 * small ones in memory), so a change to a file shows within a second. NULL with err filled if
 * root is not a directory.
 */
struct tmt_static *tmt_static_new(const char *root, unsigned n_workers, struct tmt_err *err);
void tmt_static_free(struct tmt_static **st);

/* Answers req from the directory (always ends the request). Any worker thread. */
void tmt_static_serve(struct tmt_static *st, struct tmt_http_req *req);

/* The media type the server sends for a file name ("video/mp4"); never NULL. */
const char *tmt_static_content_type(const char *name, size_t len);

#endif
