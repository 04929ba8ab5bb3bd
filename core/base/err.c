/*
 * err.c: status code names, the status -> HTTP mapping, and struct tmt_err filling.
 */
#include "tmt/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tmt_strerror(int code)
{
    switch (code) {
    case TMT_OK:
        return "success";
    case TMT_EAGAIN:
        return "try again";
    case TMT_EINVAL:
        return "invalid input";
    case TMT_ELIMIT:
        return "limit exceeded";
    case TMT_ENOTFOUND:
        return "not found";
    case TMT_ECORRUPT:
        return "corrupt data";
    case TMT_ETIMEDOUT:
        return "timed out";
    case TMT_EUPSTREAM:
        return "upstream error";
    case TMT_EIO:
        return "I/O error";
    case TMT_EEXIST:
        return "already exists";
    case TMT_EPERM:
        return "not permitted";
    default:
        return "unknown error";
    }
}

void tmt_err_clear(struct tmt_err *err)
{
    if (err == NULL)
        return;
    err->code = TMT_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

TMT_PRINTF(4, 0)
static void err_vset(struct tmt_err *err, int code, int sys_errno, const char *fmt, va_list ap)
{
    err->code = code;
    err->sys_errno = sys_errno;
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (n < 0) {
        err->msg[0] = '\0';
        n = 0;
    }
    if (sys_errno != 0 && (size_t)n < sizeof(err->msg)) {
        char buf[128];
        /* GNU strerror_r may return a static string instead of filling buf. */
        const char *s = strerror_r(sys_errno, buf, sizeof(buf));
        snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", s);
    }
}

int tmt_err_set(struct tmt_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, code, 0, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tmt_err_set_errno(struct tmt_err *err, int code, int sys_errno, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err_vset(err, code, sys_errno, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tmt_err_http_status(int code)
{
    switch (code) {
    case TMT_OK:
        return 200;
    case TMT_EINVAL:
        return 400;
    case TMT_EPERM:
        return 403;
    case TMT_ENOTFOUND:
        return 404;
    case TMT_EEXIST:
        return 409;
    case TMT_EUPSTREAM:
        return 502;
    case TMT_ELIMIT:
    case TMT_EAGAIN:
        return 503;
    case TMT_ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}
