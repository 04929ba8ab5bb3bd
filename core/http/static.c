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
#include <unistd.h>

#include "tmt/log.h"
#include "tmt/server.h"

#define STATIC_PATH_MAX 1024

struct tmt_static {
    unsigned magic;
#define TMT_STATIC_MAGIC 0x57a71c00u
    int root_fd;
    bool have_openat2;
};

struct tmt_static *tmt_static_new(const char *root, struct tmt_err *err)
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

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
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
            int hi = i + 2 < path.len ? hexval(path.p[i + 1]) : -1;
            int lo = i + 2 < path.len ? hexval(path.p[i + 2]) : -1;
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
