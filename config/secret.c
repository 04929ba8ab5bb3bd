/*
 * secret.c: bearer secrets in files (see secret.h).
 */
#include "tmt/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int tmt_secret_load(const char *setting, const char *path, char *out, size_t *out_len,
                    struct tmt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "%s: %s", setting, path);
    char buf[TMT_SECRET_MAX + 64];
    ssize_t n = read(fd, buf, sizeof(buf));
    int e = errno;
    close(fd);
    if (n < 0)
        return tmt_err_set_errno(err, TMT_EIO, e, "%s: %s", setting, path);
    size_t len = 0;
    while (len < (size_t)n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    bool ok = len >= 16 && len <= TMT_SECRET_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] > ' ' && buf[i] < 0x7f;
    if (!ok)
        return tmt_err_set(err, TMT_EINVAL,
                           "%s: %s: the first line must be 16 to %d printable characters without "
                           "spaces",
                           setting, path, TMT_SECRET_MAX);
    memcpy(out, buf, len);
    *out_len = len;
    return TMT_OK;
}

bool tmt_secret_equal(const char *a, size_t a_len, const char *b, size_t b_len)
{
    unsigned char d = a_len == b_len ? 0 : 1;
    for (size_t i = 0; i < a_len; i++)
        d |= (unsigned char)(a[i] ^ b[i % (b_len > 0 ? b_len : 1)]);
    return d == 0;
}

bool tmt_secret_bearer_ok(const struct tmt_http_header *h, size_t n, const char *secret, size_t len)
{
    if (len == 0)
        return false;
    const struct tmt_http_header *a = tmt_http_header_find(h, n, "authorization");
    if (a == NULL || a->value.len <= 7 || strncasecmp(a->value.p, "bearer ", 7) != 0)
        return false;
    return tmt_secret_equal(a->value.p + 7, a->value.len - 7, secret, len);
}
