/*
 * static.c: the static-directory handler (see static.h).
 *
 * The root is held open as an O_PATH directory descriptor for the server's life; every file is
 * opened relative to it with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), which the kernel
 * enforces even against symbolic links and races. The lexical checks before it give clear 400s
 * for hostile paths instead of relying on the kernel's refusal alone.
 */
#include "tmt/static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tmt/log.h"
#include "tmt/server.h"

#define STATIC_PATH_MAX 1024

/*
 * Open-file cache, one per worker (indexed by req->worker, so no locking): a file found once
 * stays open, with its stat data, ETag and, for small files, its bytes, for FILE_TTL_MS. A hit
 * costs no open, fstat or close; a small file goes out with the head in one writev. Changes to
 * a file show within FILE_TTL_MS. Entries are refcounted by the responses still sending them;
 * an expired entry is unlinked at once and closed when its last response is done.
 */
#define FILE_TTL_MS 1000
#define FILE_BUCKETS 256
#define FILE_MAX 1024          /* entries per worker; beyond, files are served uncached */
#define FILE_SMALL (16 * 1024) /* files up to this size are kept in memory */

struct fentry {
    unsigned magic;
#define FENTRY_MAGIC 0xf11e0001u
    struct fentry *next;
    struct fcache *fc;
    char *path;
    uint32_t hash;
    int fd;
    unsigned refs; /* the cache's own (while linked) plus one per response in flight */
    bool linked;
    uint64_t expires_ms;
    uint64_t size;
    int64_t mtime;
    const char *ctype;
    char etag[48];
    size_t etag_len;
    char *bytes; /* the whole file when size <= FILE_SMALL, else NULL */
};

struct fcache {
    struct fentry *buckets[FILE_BUCKETS];
    unsigned n;
    uint64_t next_sweep_ms;
};

struct tmt_static {
    unsigned magic;
#define TMT_STATIC_MAGIC 0x57a71c00u
    int root_fd;
    bool have_openat2;
    unsigned n_caches;
    struct fcache *caches;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t path_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void fentry_unref(void *arg)
{
    struct fentry *e;
    TMT_OBJ_CAST(e, arg, FENTRY_MAGIC);
    TMT_ASSERT(e->refs > 0);
    if (--e->refs > 0)
        return;
    if (e->fd >= 0)
        close(e->fd);
    free(e->bytes);
    free(e->path);
    e->magic = 0;
    free(e);
}

static void fentry_unlink(struct fentry *e)
{
    struct fcache *fc = e->fc;
    struct fentry **pp = &fc->buckets[e->hash % FILE_BUCKETS];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    e->linked = false;
    fc->n--;
    fentry_unref(e);
}

struct tmt_static *tmt_static_new(const char *root, unsigned n_workers, struct tmt_err *err)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        tmt_err_set_errno(err, TMT_EINVAL, errno, "%s: cannot open the static root", root);
        return NULL;
    }
    struct tmt_static *st = tmt_xcalloc(1, sizeof(*st));
    st->magic = TMT_STATIC_MAGIC;
    st->root_fd = fd;
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long probe = syscall(SYS_openat2, fd, ".", &how, sizeof(how));
    st->have_openat2 = probe >= 0;
    st->n_caches = n_workers;
    st->caches = tmt_xcalloc(n_workers > 0 ? n_workers : 1, sizeof(*st->caches));
    if (probe >= 0)
        close((int)probe);
    else
        tmt_log(TMT_LOG_WARN, "static", "openat2 unavailable; relying on path checks only",
                "errno=%d", errno);
    return st;
}

void tmt_static_free(struct tmt_static **stp)
{
    struct tmt_static *st = *stp;
    *stp = NULL;
    if (st == NULL)
        return;
    TMT_CHECK_OBJ(st, TMT_STATIC_MAGIC);
    for (unsigned i = 0; i < st->n_caches; i++) {
        for (size_t b = 0; b < FILE_BUCKETS; b++) {
            while (st->caches[i].buckets[b] != NULL)
                fentry_unlink(st->caches[i].buckets[b]);
        }
    }
    free(st->caches);
    close(st->root_fd);
    st->magic = 0;
    free(st);
}

struct ctype {
    const char *ext;
    const char *type;
};

static const struct ctype ctypes[] = {
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"mpd", "application/dash+xml"},
    {"m4s", "video/iso.segment"},
    {"mp4", "video/mp4"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"ts", "video/mp2t"},
    {"aac", "audio/aac"},
    {"vtt", "text/vtt"},
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
};

const char *tmt_static_content_type(const char *name, size_t len)
{
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == '.') {
            dot = name + i;
            break;
        }
        if (name[i - 1] == '/')
            break;
    }
    if (dot != NULL) {
        size_t el = len - (size_t)(dot - name);
        for (size_t i = 0; i < TMT_ARRAY_LEN(ctypes); i++) {
            if (strlen(ctypes[i].ext) == el && strncasecmp(ctypes[i].ext, dot, el) == 0)
                return ctypes[i].type;
        }
    }
    return "application/octet-stream";
}

/*
 * Decodes the request path into out (relative: no leading '/'), checking each component.
 * Returns 0, or the HTTP status to answer with *why set.
 */
static int decode_path(struct tmt_slice path, char *out, size_t cap, const char **why)
{
    if (path.len == 0 || path.p[0] != '/') {
        *why = "path must start with /";
        return 400;
    }
    size_t o = 0;
    size_t comp_start = 0;
    for (size_t i = 1; i <= path.len; i++) {
        char ch;
        if (i == path.len || path.p[i] == '/') {
            size_t cl = o - comp_start;
            const char *comp = out + comp_start;
            if ((cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.')) {
                *why = "dot components are not allowed";
                return 400;
            }
            if (cl > 0 && comp[0] == '.') {
                *why = "hidden file";
                return 404;
            }
            if (i == path.len)
                break;
            if (cl == 0 && o > 0) {
                *why = "empty path component";
                return 400;
            }
            if (o + 1 >= cap) {
                *why = "path too long";
                return 414;
            }
            if (cl > 0)
                out[o++] = '/';
            comp_start = o;
            continue;
        }
        ch = path.p[i];
        if (ch == '%') {
            int hi = i + 2 < path.len ? tmt_hex_value((unsigned char)path.p[i + 1]) : -1;
            int lo = i + 2 < path.len ? tmt_hex_value((unsigned char)path.p[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *why = "bad percent-encoding";
                return 400;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
            if (ch == '/' || ch == '\\') {
                *why = "encoded slash";
                return 400;
            }
        }
        if ((unsigned char)ch < 0x20 || ch == 0x7f) {
            *why = "control byte in path";
            return 400;
        }
        if (o + 1 >= cap) {
            *why = "path too long";
            return 414;
        }
        out[o++] = ch;
    }
    /* A trailing slash names a directory: serve its index. */
    if (o == 0 || path.p[path.len - 1] == '/') {
        static const char idx[] = "index.html";
        if (o > 0 && out[o - 1] != '/')
            out[o++] = '/';
        if (o + sizeof(idx) > cap) {
            *why = "path too long";
            return 414;
        }
        memcpy(out + o, idx, sizeof(idx));
        return 0;
    }
    out[o] = '\0';
    return 0;
}

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

static void serve_fentry(struct tmt_http_req *req, struct fentry *e)
{
    e->refs++;
    struct tmt_http_entity ent = {
        .size = e->size,
        .content_type = e->ctype,
        .val = {.etag = {e->etag, e->etag_len}, .last_modified = e->mtime},
        .p = e->bytes,
        .fd = e->bytes != NULL ? -1 : e->fd,
        .file_off = 0,
        .release = fentry_unref,
        .release_arg = e,
    };
    tmt_http_serve_entity(req, &ent);
}

static int open_beneath(struct tmt_static *st, const char *rel)
{
    if (st->have_openat2) {
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        return (int)syscall(SYS_openat2, st->root_fd, rel, &how, sizeof(how));
    }
    return openat(st->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
}

void tmt_static_serve(struct tmt_static *st, struct tmt_http_req *req)
{
    TMT_CHECK_OBJ(st, TMT_STATIC_MAGIC);
    if (req->method != TMT_HTTP_GET && req->method != TMT_HTTP_HEAD) {
        static const struct tmt_http_header allow[] = {
            {TMT_SLICE_LIT("Allow"), TMT_SLICE_LIT("GET, HEAD")},
            {TMT_SLICE_LIT("Content-Type"), TMT_SLICE_LIT("text/plain")},
        };
        static const char msg[] = "405 Method Not Allowed: static files are GET and HEAD only\n";
        if (tmt_http_resp_start(req, 405, allow, 2, (int64_t)sizeof(msg) - 1) == TMT_OK) {
            tmt_http_resp_copy(req, msg, sizeof(msg) - 1);
            tmt_http_resp_end(req);
        }
        return;
    }
    char rel[STATIC_PATH_MAX];
    const char *why = NULL;
    int status = decode_path(req->path, rel, sizeof(rel), &why);
    if (status != 0) {
        tmt_log(TMT_LOG_INFO, "static", "path refused", "rid=%" PRIu64 " status=%d why=\"%s\"",
                req->id, status, why);
        tmt_http_respond_error(req, status, why);
        return;
    }
    struct fcache *fc = req->worker < st->n_caches ? &st->caches[req->worker] : NULL;
    uint64_t now = mono_ms();
    uint32_t h = path_hash(rel);
    if (fc != NULL && now >= fc->next_sweep_ms) {
        /* Once a second, close what expired, so files not asked for again are not held. */
        fc->next_sweep_ms = now + FILE_TTL_MS;
        for (size_t b = 0; b < FILE_BUCKETS && fc->n > 0; b++) {
            struct fentry *e = fc->buckets[b];
            while (e != NULL) {
                struct fentry *next = e->next;
                if (now >= e->expires_ms)
                    fentry_unlink(e);
                e = next;
            }
        }
    }
    if (fc != NULL) {
        for (struct fentry *e = fc->buckets[h % FILE_BUCKETS]; e != NULL; e = e->next) {
            if (e->hash != h || strcmp(e->path, rel) != 0)
                continue;
            if (now < e->expires_ms) {
                serve_fentry(req, e);
                return;
            }
            fentry_unlink(e); /* expired: look at the file again */
            break;
        }
    }
    int fd = open_beneath(st, rel);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ELOOP || e == EXDEV || e == ENAMETOOLONG)
            tmt_http_respond_error(req, 404, "no such file");
        else if (e == EACCES || e == EPERM)
            tmt_http_respond_error(req, 403, "not readable");
        else
            tmt_http_respond_error(req, 500, "cannot open the file");
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        tmt_http_respond_error(req, S_ISDIR(sb.st_mode) ? 403 : 404,
                               S_ISDIR(sb.st_mode) ? "directory without index.html"
                                                   : "not a regular file");
        return;
    }
    if (fc != NULL && fc->n < FILE_MAX) {
        struct fentry *e = tmt_xcalloc(1, sizeof(*e));
        e->magic = FENTRY_MAGIC;
        e->fc = fc;
        e->path = tmt_xstrdup(rel);
        e->hash = h;
        e->fd = fd;
        e->refs = 1;
        e->linked = true;
        e->expires_ms = now + FILE_TTL_MS;
        e->size = (uint64_t)sb.st_size;
        e->mtime = sb.st_mtime;
        e->ctype = tmt_static_content_type(rel, strlen(rel));
        int n = snprintf(e->etag, sizeof(e->etag), "\"%" PRIx64 "-%" PRIx64 "\"",
                         (uint64_t)sb.st_mtime, (uint64_t)sb.st_size);
        e->etag_len = (size_t)n;
        if (e->size <= FILE_SMALL) {
            e->bytes = tmt_xmalloc(e->size > 0 ? e->size : 1);
            if (pread(fd, e->bytes, e->size, 0) != (ssize_t)e->size) {
                free(e->bytes); /* changed under us: serve it from the descriptor */
                e->bytes = NULL;
            } else {
                close(fd); /* the bytes are all here; keep no descriptor for them */
                e->fd = -1;
            }
        }
        e->next = fc->buckets[h % FILE_BUCKETS];
        fc->buckets[h % FILE_BUCKETS] = e;
        fc->n++;
        serve_fentry(req, e);
        return;
    }
    char etag[48];
    int el = snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)sb.st_mtime,
                      (uint64_t)sb.st_size);
    struct tmt_http_entity e = {
        .size = (uint64_t)sb.st_size,
        .content_type = tmt_static_content_type(rel, strlen(rel)),
        .val = {.etag = {etag, (size_t)el}, .last_modified = sb.st_mtime},
        .p = NULL,
        .fd = fd,
        .file_off = 0,
        .release = close_fd,
        .release_arg = (void *)(intptr_t)fd,
    };
    tmt_http_serve_entity(req, &e);
}
