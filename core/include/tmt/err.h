/*
 * err.h: the project-wide status codes and a carrier for human-readable errors.
 *
 * Functions that can fail return int: 0 on success, a negative TMT_E* code on failure. Parsers
 * return bytes consumed (> 0), TMT_EAGAIN for incomplete input, or an error. The set is kept small;
 * each code has one meaning everywhere (and one HTTP status, see tmt_err_http_status()).
 *
 * Where a person must understand the failure (a config line, a request body, a CLI argument), the
 * caller passes a struct tmt_err, which the callee fills with the code, errno if any, and a short
 * message such as `node.conf:41:12: cache.hot.budget: "12XB" is not a size`.
 */
#ifndef TMT_ERR_H
#define TMT_ERR_H

#include "tmt/base.h"

enum tmt_status {
    TMT_OK = 0,
    TMT_EAGAIN = -1,    /* need more input, or would block */
    TMT_EINVAL = -2,    /* bad input */
    TMT_ELIMIT = -3,    /* a budget, limit or arena exhausted */
    TMT_ENOTFOUND = -4, /* no such thing */
    TMT_ECORRUPT = -5,  /* checksum or format mismatch in stored data */
    TMT_ETIMEDOUT = -6, /* a deadline passed */
    TMT_EUPSTREAM = -7, /* the upstream failed or answered garbage */
    TMT_EIO = -8,       /* system or storage error; errno kept in tmt_err.sys_errno */
    TMT_EEXIST = -9,    /* already exists, or a conflicting state */
    TMT_EPERM = -10,    /* not allowed */
};

#define TMT_ERR_MSG_MAX 512

struct tmt_err {
    int code;      /* a TMT_E* code, TMT_OK when nothing was set */
    int sys_errno; /* errno at the failure, 0 if none */
    char msg[TMT_ERR_MSG_MAX];
};

/* Short fixed name of a status code ("invalid input", ...). Never NULL. */
const char *tmt_strerror(int code);

/* Clears err to "no error". err may be NULL. */
void tmt_err_clear(struct tmt_err *err);

/*
 * Fills err (if not NULL) with code and a formatted message, truncated to fit, and returns code so
 * callers can write `return tmt_err_set(err, TMT_EINVAL, "...")`.
 */
int tmt_err_set(struct tmt_err *err, int code, const char *fmt, ...) TMT_PRINTF(3, 4);

/* As tmt_err_set, also recording errno and appending ": strerror(errno)" to the message. */
int tmt_err_set_errno(struct tmt_err *err, int code, int sys_errno, const char *fmt, ...)
    TMT_PRINTF(4, 5);

/*
 * The HTTP status every daemon answers for a status code: EINVAL 400, ENOTFOUND 404, EPERM 403,
 * EEXIST 409, ELIMIT 503, EUPSTREAM 502, ETIMEDOUT 504, anything else 500. Callers that know a
 * more precise status (413 or 431 for a limit) use it instead.
 */
int tmt_err_http_status(int code);

#endif
