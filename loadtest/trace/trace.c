/*
 * trace.c: the streaming trace reader (see trace.h).
 */
#include "tmt/trace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tmt_trace {
    unsigned magic;
#define TMT_TRACE_MAGIC 0x7ace0001u
    FILE *fp;
    bool is_stdin;
    char *path;
    uint64_t line;
    uint64_t last_time;
    char buf[256];
};

struct tmt_trace *tmt_trace_open(const char *path, struct tmt_err *err)
{
    struct tmt_trace *t = tmt_xcalloc(1, sizeof(*t));
    t->magic = TMT_TRACE_MAGIC;
    t->path = tmt_xstrdup(path);
    if (strcmp(path, "-") == 0) {
        t->fp = stdin;
        t->is_stdin = true;
    } else {
        t->fp = fopen(path, "re");
        if (t->fp == NULL) {
            tmt_err_set_errno(err, TMT_EIO, errno, "%s: cannot open", path);
            goto fail;
        }
    }
    /* The header line names the columns; anything else is a different format. */
    if (fgets(t->buf, sizeof(t->buf), t->fp) == NULL) {
        tmt_err_set(err, TMT_EINVAL, "%s: empty trace (expected a header line)", path);
        goto fail;
    }
    t->line = 1;
    t->buf[strcspn(t->buf, "\r\n")] = '\0';
    if (strcmp(t->buf, "time,obj_id,obj_size") != 0) {
        tmt_err_set(err, TMT_EINVAL, "%s:1: expected header \"time,obj_id,obj_size\"", path);
        goto fail;
    }
    return t;
fail:
    tmt_trace_close(&t);
    return NULL;
}

void tmt_trace_close(struct tmt_trace **tp)
{
    struct tmt_trace *t = *tp;
    *tp = NULL;
    if (t == NULL)
        return;
    TMT_CHECK_OBJ(t, TMT_TRACE_MAGIC);
    if (t->fp != NULL && !t->is_stdin)
        fclose(t->fp);
    free(t->path);
    t->magic = 0;
    free(t);
}

/* Parses an unsigned decimal field ending at `stop`; returns the byte after it or NULL. */
static const char *field_u64(const char *p, char stop, uint64_t *v)
{
    uint64_t n = 0;
    const char *start = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return NULL;
        n = n * 10 + d;
    }
    if (p == start || *p != stop)
        return NULL;
    *v = n;
    return p + 1;
}

int tmt_trace_next(struct tmt_trace *t, struct tmt_trace_req *req, struct tmt_err *err)
{
    TMT_CHECK_OBJ(t, TMT_TRACE_MAGIC);
    for (;;) {
        if (fgets(t->buf, sizeof(t->buf), t->fp) == NULL) {
            if (ferror(t->fp))
                return tmt_err_set_errno(err, TMT_EIO, errno, "%s: read failed", t->path);
            return 0;
        }
        t->line++;
        size_t len = strlen(t->buf);
        if (len == sizeof(t->buf) - 1 && t->buf[len - 1] != '\n')
            return tmt_err_set(err, TMT_EINVAL, "%s:%llu: line too long", t->path,
                               (unsigned long long)t->line);
        t->buf[strcspn(t->buf, "\r\n")] = '\0';
        if (t->buf[0] != '\0')
            break;
    }
    const char *p = t->buf;
    if ((p = field_u64(p, ',', &req->time_s)) == NULL ||
        (p = field_u64(p, ',', &req->obj_id)) == NULL ||
        (p = field_u64(p, '\0', &req->size)) == NULL)
        return tmt_err_set(err, TMT_EINVAL,
                           "%s:%llu: expected three unsigned integers time,obj_id,obj_size",
                           t->path, (unsigned long long)t->line);
    if (req->time_s < t->last_time)
        return tmt_err_set(err, TMT_EINVAL, "%s:%llu: time goes backwards (%llu after %llu)",
                           t->path, (unsigned long long)t->line, (unsigned long long)req->time_s,
                           (unsigned long long)t->last_time);
    t->last_time = req->time_s;
    return 1;
}

void tmt_trace_decode(uint64_t obj_id, struct tmt_trace_obj *out)
{
    out->asset = obj_id / 1000000u;
    out->rung = (unsigned)(obj_id / 10000u % 100u);
    out->seg = (unsigned)(obj_id % 10000u);
}

size_t tmt_trace_path(uint64_t obj_id, char *out, size_t cap)
{
    struct tmt_trace_obj o;
    tmt_trace_decode(obj_id, &o);
    int n;
    if (o.rung == 99)
        n = snprintf(out, cap, "/v/a%" PRIu64 "/master.m3u8", o.asset);
    else if (o.seg == 0)
        n = snprintf(out, cap, "/v/a%" PRIu64 "/r%u/init.mp4", o.asset, o.rung);
    else if (o.seg == 9999)
        n = snprintf(out, cap, "/v/a%" PRIu64 "/r%u/index.m3u8", o.asset, o.rung);
    else
        n = snprintf(out, cap, "/v/a%" PRIu64 "/r%u/%u.m4s", o.asset, o.rung, o.seg);
    if (n < 0)
        n = 0;
    return TMT_MIN((size_t)n, cap > 0 ? cap - 1 : 0);
}
