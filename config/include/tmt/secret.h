/*
 * secret.h: bearer secrets kept in files (the admin credential, the edges' fill key): read with
 * a clear error, compared in constant time.
 */
#ifndef TMT_SECRET_H
#define TMT_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "tmt/base.h"
#include "tmt/err.h"
#include "tmt/http.h"

#define TMT_SECRET_MAX 255

/*
 * Reads the first line of file path (trailing white space dropped) into out (TMT_SECRET_MAX
 * bytes): 16 to TMT_SECRET_MAX printable ASCII characters without spaces. `setting` names the
 * setting in errors ("admin.credential_file"). Returns 0 or an error naming the setting and path.
 */
int tmt_secret_load(const char *setting, const char *path, char *out, size_t *out_len,
                    struct tmt_err *err) TMT_MUST_CHECK;

/* Compares a and b without an early exit (the time taken tells nothing of how much matched). */
bool tmt_secret_equal(const char *a, size_t a_len, const char *b, size_t b_len);

/* True if h holds "Authorization: Bearer <secret>" for this secret (len 0: never). */
bool tmt_secret_bearer_ok(const struct tmt_http_header *h, size_t n, const char *secret,
                          size_t len);

#endif
