/*
 * buf.c: the growable output buffer, the sample readers (pread on a descriptor, or memory) and
 * the checked appends the manifest writers use.
 *
 * The buffer grows by doubling; a writer that needs n more bytes reserves them first, so a
 * failed allocation leaves the buffer as it was. Manifests are small and built once per asset
 * before the shield caches them, so formatting with vsnprintf is fine here; the segment writer
 * does not format.
 */
#include "pack_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void tmt_pack_buf_init(struct tmt_pack_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void tmt_pack_buf_fini(struct tmt_pack_buf *b)
{
    if (b == NULL)
        return;
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int tmt_pack_buf_reserve(struct tmt_pack_buf *b, size_t more)
{
    TMT_ASSERT(b != NULL && b->len <= b->cap);
    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return TMT_ELIMIT;
    size_t need = b->len + more;
    size_t cap = b->cap > 0 ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return TMT_ELIMIT;
    b->p = p;
    b->cap = cap;
    return 0;
}

int pack_buf_put(struct tmt_pack_buf *b, const void *p, size_t n)
{
    int rc = tmt_pack_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int pack_buf_printf(struct tmt_pack_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return TMT_EINVAL;
    if ((size_t)n < sizeof(small))
        return pack_buf_put(b, small, (size_t)n);
    int rc = tmt_pack_buf_reserve(b, (size_t)n + 1);
    if (rc != 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int pack_buf_seconds(struct tmt_pack_buf *b, uint64_t ticks, uint32_t timescale)
{
    TMT_ASSERT(timescale > 0);
    uint64_t whole = ticks / timescale;
    /* micro-seconds, rounded to nearest */
    uint64_t frac = ((ticks % timescale) * 1000000u + timescale / 2) / timescale;
    if (frac >= 1000000u) {
        whole++;
        frac -= 1000000u;
    }
    if (frac == 0)
        return pack_buf_printf(b, "%llu", (unsigned long long)whole);
    char digits[24];
    snprintf(digits, sizeof(digits), "%06llu", (unsigned long long)frac);
    size_t n = 6;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    return pack_buf_printf(b, "%llu.%s", (unsigned long long)whole, digits);
}

static int read_fd(const struct tmt_pack_io *io, uint64_t off, void *dst, size_t len,
                   int *sys_errno)
{
    uint8_t *d = dst;
    while (len > 0) {
        if (off > (uint64_t)INT64_MAX)
            return TMT_ECORRUPT;
        ssize_t r = pread(io->_fd, d, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *sys_errno = errno;
            return TMT_EIO;
        }
        if (r == 0)
            return TMT_ECORRUPT; /* the file ends before the index says */
        d += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int readv_fd(const struct tmt_pack_io *io, uint64_t off, const struct iovec *iov, int n,
                    size_t len, int *sys_errno)
{
    if (off > (uint64_t)INT64_MAX - len)
        return TMT_ECORRUPT;
    ssize_t r;
    do
        r = preadv(io->_fd, iov, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        *sys_errno = errno;
        return TMT_EIO;
    }
    if ((size_t)r == len)
        return 0;
    /* Short (the end of the file, or a rare partial read): the rest piece by piece. */
    size_t done = (size_t)r;
    for (int i = 0; i < n; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            off += iov[i].iov_len;
            continue;
        }
        int rc = read_fd(io, off + done, (uint8_t *)iov[i].iov_base + done, iov[i].iov_len - done,
                         sys_errno);
        if (rc != 0)
            return rc;
        off += iov[i].iov_len;
        done = 0;
    }
    return 0;
}

static int read_mem(const struct tmt_pack_io *io, uint64_t off, void *dst, size_t len,
                    int *sys_errno)
{
    (void)sys_errno;
    if (off > io->size || len > io->size - off)
        return TMT_ECORRUPT;
    memcpy(dst, io->_mem + off, len);
    return 0;
}

void tmt_pack_io_init_fd(struct tmt_pack_io *io, int fd, uint64_t size, const char *name)
{
    memset(io, 0, sizeof(*io));
    io->read = read_fd;
    io->readv = readv_fd;
    io->size = size;
    io->name = name != NULL ? name : "(fd)";
    io->_fd = fd;
}

void tmt_pack_io_init_mem(struct tmt_pack_io *io, const void *p, size_t len, const char *name)
{
    memset(io, 0, sizeof(*io));
    io->read = read_mem;
    io->size = len;
    io->name = name != NULL ? name : "(memory)";
    io->_fd = -1;
    io->_mem = p;
}
