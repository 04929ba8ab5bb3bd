/*
 * outq.c: a connection's output queue: a list of pieces (copied bytes in pooled chunks, bytes
 * by reference, file ranges) written with writev and sendfile.
 *
 * Copies land in 16 KiB chunks taken from the worker's freelist. Each piece that points into a
 * chunk holds a reference on it, and the queue holds one on the chunk it is filling, so a chunk
 * goes back to the freelist only when nothing points into it. Consecutive copies into the same
 * chunk extend the previous piece, so a response head plus a small body is one iovec.
 *
 * Pieces themselves come from a freelist too: a steady-state response allocates nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http_int.h"

#define FREE_KEEP 256 /* objects each freelist keeps; the rest go back to malloc */
#define IOV_BATCH 64
#define CORK_MIN (64 * 1024) /* file ranges from this size go out corked */

/*
 * Connections run with TCP_NODELAY, so a head written alone would leave as a packet of its own and
 * sendfile into a socket whose buffer opens bit by bit would send small packets. The head goes
 * with MSG_MORE when a file range follows, and large file ranges are sent under TCP_CORK (lifted
 * when the queue is empty), so the kernel builds full-sized packets: the client pays per packet.
 */
static void set_cork(struct outq *q, int fd, bool on)
{
    int v = on ? 1 : 0;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
    q->corked = on;
}

static struct wchunk *chunk_get(struct worker *w)
{
    struct wchunk *ch = w->free_chunks;
    if (ch != NULL) {
        w->free_chunks = ch->next_free;
        w->n_free_chunks--;
    } else {
        ch = tmt_xmalloc(sizeof(*ch) + WCHUNK_CAP);
        ch->cap = WCHUNK_CAP;
    }
    ch->next_free = NULL;
    ch->refs = 1;
    ch->len = 0;
    return ch;
}

static void chunk_unref(struct worker *w, struct wchunk *ch)
{
    TMT_ASSERT(ch->refs > 0);
    if (--ch->refs > 0)
        return;
    if (w->n_free_chunks < FREE_KEEP / 4) {
        ch->next_free = w->free_chunks;
        w->free_chunks = ch;
        w->n_free_chunks++;
    } else {
        free(ch);
    }
}

static struct oseg *seg_get(struct worker *w)
{
    struct oseg *s = w->free_segs;
    if (s != NULL) {
        w->free_segs = s->next;
        w->n_free_segs--;
    } else {
        s = tmt_xmalloc(sizeof(*s));
    }
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    return s;
}

static void seg_put(struct worker *w, struct oseg *s)
{
    if (s->chunk != NULL)
        chunk_unref(w, s->chunk);
    if (s->release != NULL)
        s->release(s->arg);
    if (w->n_free_segs < FREE_KEEP) {
        s->next = w->free_segs;
        w->free_segs = s;
        w->n_free_segs++;
    } else {
        free(s);
    }
}

static void append(struct outq *q, struct oseg *s)
{
    s->next = NULL;
    *q->tailp = s;
    q->tailp = &s->next;
    q->bytes += s->len;
}

void outq_init(struct outq *q)
{
    q->head = NULL;
    q->tailp = &q->head;
    q->cur = NULL;
    q->bytes = 0;
    q->corked = false;
}

void outq_fini(struct worker *w, struct outq *q)
{
    struct oseg *s = q->head;
    while (s != NULL) {
        struct oseg *next = s->next;
        seg_put(w, s);
        s = next;
    }
    if (q->cur != NULL)
        chunk_unref(w, q->cur);
    outq_init(q);
}

/* The last piece, if it is a copy ending exactly where the current chunk's data ends. */
static struct oseg *tail_copy(struct outq *q)
{
    if (q->head == NULL || q->cur == NULL)
        return NULL;
    struct oseg *last = (struct oseg *)((char *)q->tailp - offsetof(struct oseg, next));
    if (last->chunk == q->cur && last->p + last->len == q->cur->data + q->cur->len)
        return last;
    return NULL;
}

char *outq_reserve(struct worker *w, struct outq *q, size_t max)
{
    TMT_ASSERT(max <= WCHUNK_CAP);
    if (q->cur == NULL || q->cur->cap - q->cur->len < max) {
        if (q->cur != NULL)
            chunk_unref(w, q->cur);
        q->cur = chunk_get(w);
    }
    return q->cur->data + q->cur->len;
}

void outq_commit(struct worker *w, struct outq *q, size_t len)
{
    struct wchunk *ch = q->cur;
    TMT_ASSERT(ch != NULL && ch->cap - ch->len >= len);
    if (len == 0)
        return;
    struct oseg *last = tail_copy(q);
    ch->len += len;
    if (last != NULL) {
        last->len += len;
        q->bytes += len;
        return;
    }
    struct oseg *s = seg_get(w);
    s->kind = OSEG_MEM;
    s->p = ch->data + ch->len - len;
    s->len = len;
    s->chunk = ch;
    ch->refs++;
    append(q, s);
}

void outq_copy(struct worker *w, struct outq *q, const void *p, size_t len)
{
    const char *src = p;
    while (len > 0) {
        size_t room = q->cur != NULL ? q->cur->cap - q->cur->len : 0;
        if (room == 0) {
            outq_reserve(w, q, WCHUNK_CAP);
            room = q->cur->cap - q->cur->len;
        }
        size_t n = TMT_MIN(room, len);
        memcpy(q->cur->data + q->cur->len, src, n);
        outq_commit(w, q, n);
        src += n;
        len -= n;
    }
}

void outq_ref(struct worker *w, struct outq *q, const void *p, size_t len, tmt_release_fn *rel,
              void *arg)
{
    struct oseg *s = seg_get(w);
    s->kind = OSEG_MEM;
    s->p = p;
    s->len = len;
    s->release = rel;
    s->arg = arg;
    append(q, s);
}

void outq_file(struct worker *w, struct outq *q, int fd, off_t off, size_t len, tmt_release_fn *rel,
               void *arg)
{
    struct oseg *s = seg_get(w);
    s->kind = OSEG_FILE;
    s->fd = fd;
    s->off = off;
    s->len = len;
    s->release = rel;
    s->arg = arg;
    append(q, s);
}

void outq_body(struct worker *w, struct outq *q, int kind, const void *p, int fd, off_t off,
               size_t len, tmt_release_fn *rel, void *arg)
{
    /* Small pieces are copied even when handed by reference: one iovec beats two. */
    if (kind == BODY_FILE)
        outq_file(w, q, fd, off, len, rel, arg);
    else if (kind == BODY_COPY || (rel == NULL && len <= 2048))
        outq_copy(w, q, p, len);
    else
        outq_ref(w, q, p, len, rel, arg);
}

void outq_consume(struct worker *w, struct outq *q, size_t n)
{
    TMT_ASSERT(n <= q->bytes);
    q->bytes -= n;
    while (n > 0 || (q->head != NULL && q->head->len == 0)) {
        struct oseg *s = q->head;
        TMT_ASSERT(s != NULL);
        if (s->len > n) {
            s->len -= n;
            if (s->kind == OSEG_MEM)
                s->p += n;
            else
                s->off += (off_t)n;
            return;
        }
        n -= s->len;
        q->head = s->next;
        if (q->head == NULL)
            q->tailp = &q->head;
        seg_put(w, s);
    }
}

int outq_flush_plain(struct worker *w, struct outq *q, int fd)
{
    while (q->head != NULL) {
        struct oseg *s = q->head;
        ssize_t n;
        if (s->kind == OSEG_FILE) {
            if (!q->corked && s->len >= CORK_MIN)
                set_cork(q, fd, true);
            off_t off = s->off;
            n = sendfile(fd, s->fd, &off, TMT_MIN(s->len, (size_t)1 << 30));
            if (n == 0) {
                /* The file shrank under us: the promised length cannot be sent. */
                errno = EIO;
                return TMT_EIO;
            }
        } else {
            struct iovec iov[IOV_BATCH];
            int cnt = 0;
            struct oseg *t = s;
            for (; t != NULL && t->kind == OSEG_MEM && cnt < IOV_BATCH; t = t->next) {
                iov[cnt].iov_base = (void *)(uintptr_t)t->p;
                iov[cnt].iov_len = t->len;
                cnt++;
            }
            if (t != NULL && t->kind == OSEG_FILE) {
                struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
                n = sendmsg(fd, &mh, MSG_MORE | MSG_NOSIGNAL);
            } else {
                n = writev(fd, iov, cnt);
            }
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return TMT_EAGAIN;
            if (errno == EINTR)
                continue;
            return TMT_EIO;
        }
        outq_consume(w, q, (size_t)n);
    }
    if (q->corked)
        set_cork(q, fd, false);
    /* Nothing queued: give the chunk back rather than hold 16 KiB per idle connection. */
    if (q->cur != NULL) {
        chunk_unref(w, q->cur);
        q->cur = NULL;
    }
    return TMT_OK;
}
