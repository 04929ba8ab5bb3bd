/*
 * watch.c: the viewer page (GET /watch) and the two web players it loads from this control plane,
 * GET /watch/hls.js and GET /watch/dash.js.
 *
 * The page is edited as watch.html and compiled in (cmake/TmtEmbedFile.cmake). The players are
 * files of the npm packages under web.player_dir (scripts/setup.sh installs them in
 * web/node_modules), read whole into memory at start and at each reload: each URL maps to one
 * fixed file, so nothing from the request ever names a file. A player that is not there is
 * answered 404 by its route, and the page says what to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cp.h"
#include "tmt/log.h"

/* Larger files are not players (the two are under 1 MiB). */
#define WEB_LIB_MAX (16u << 20)

struct cp_web_lib {
    atomic_uint refs;
    size_t len;
    char etag[24]; /* "\"" 16 hex digits of FNV-1a 64 of the bytes "\"" */
    unsigned char body[];
};

static const struct {
    const char *path; /* request path */
    const char *file; /* under web.player_dir */
} web_libs[CP_WEB_LIBS] = {
    {"/watch/hls.js", "hls.js/dist/hls.min.js"},
    {"/watch/dash.js", "dashjs/dist/modern/umd/dash.all.min.js"},
};

static void lib_unref(void *arg)
{
    struct cp_web_lib *l = arg;
    if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1)
        free(l);
}

/* The file, read whole; NULL with why set when it cannot be read. */
static struct cp_web_lib *lib_read(const char *path, char *why, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    struct cp_web_lib *l = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > WEB_LIB_MAX) {
        snprintf(why, cap, "not a regular file of 1 byte to %u MiB", WEB_LIB_MAX >> 20);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    l = tmt_xmalloc(sizeof(*l) + len);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, l->body + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, cap, "%s", n < 0 ? strerror(errno) : "the file shrank while read");
            free(l);
            l = NULL;
            goto out;
        }
        got += (size_t)n;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ l->body[i]) * 0x100000001b3ull;
    atomic_init(&l->refs, 1);
    l->len = len;
    snprintf(l->etag, sizeof(l->etag), "\"%016llx\"", (unsigned long long)h);
out:
    close(fd);
    return l;
}

void cp_web_load(struct cp *cp, const struct cp_conf *conf, bool start)
{
    struct cp_web_lib *fresh[CP_WEB_LIBS] = {NULL};
    char missing[256] = "", why[160] = "";
    for (size_t i = 0; i < CP_WEB_LIBS; i++) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", conf->web_player_dir, web_libs[i].file);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            snprintf(why, sizeof(why), "path too long");
        } else {
            fresh[i] = lib_read(path, why, sizeof(why));
        }
        if (fresh[i] == NULL && strlen(missing) + strlen(web_libs[i].file) + 2 < sizeof(missing)) {
            if (missing[0] != '\0')
                strcat(missing, ",");
            strcat(missing, web_libs[i].file);
        }
    }
    /* What is not there now is not served: the page says so rather than play an old copy. */
    struct cp_web_lib *old[CP_WEB_LIBS];
    pthread_mutex_lock(&cp->web_mu);
    for (size_t i = 0; i < CP_WEB_LIBS; i++) {
        old[i] = cp->web_libs[i];
        cp->web_libs[i] = fresh[i];
    }
    pthread_mutex_unlock(&cp->web_mu);
    for (size_t i = 0; i < CP_WEB_LIBS; i++)
        lib_unref(old[i]);
    if (missing[0] != '\0')
        tmt_log(TMT_LOG_WARN, "control",
                "player library not installed: run scripts/setup.sh; /watch cannot play",
                "path=\"%s\" missing=\"%s\" why=\"%s\" %s", conf->web_player_dir, missing, why,
                start ? "at=start" : "at=reload");
}

void cp_web_free(struct cp *cp)
{
    for (size_t i = 0; i < CP_WEB_LIBS; i++) {
        lib_unref(cp->web_libs[i]);
        cp->web_libs[i] = NULL;
    }
}

bool cp_web_serve(struct cp *cp, struct tmt_http_req *req)
{
    if (req->method != TMT_HTTP_GET && req->method != TMT_HTTP_HEAD)
        return false;
    size_t i = 0;
    while (i < CP_WEB_LIBS && cp_slice_cmp(req->path, web_libs[i].path) != 0)
        i++;
    if (i == CP_WEB_LIBS)
        return false;
    pthread_mutex_lock(&cp->web_mu);
    struct cp_web_lib *l = cp->web_libs[i];
    if (l != NULL)
        atomic_fetch_add(&l->refs, 1);
    pthread_mutex_unlock(&cp->web_mu);
    if (l == NULL)
        return false; /* the route answers 404 */
    static const struct tmt_http_header extra[] = {
        {TMT_SLICE_LIT("Cache-Control"), TMT_SLICE_LIT("no-cache")},
        {TMT_SLICE_LIT("X-Content-Type-Options"), TMT_SLICE_LIT("nosniff")},
    };
    struct tmt_http_entity e = {
        .size = l->len,
        .content_type = "text/javascript; charset=utf-8",
        .val = {.etag = {l->etag, strlen(l->etag)}, .last_modified = -1},
        .extra = extra,
        .n_extra = TMT_ARRAY_LEN(extra),
        .p = l->body,
        .fd = -1,
        .release = lib_unref,
        .release_arg = l,
    };
    tmt_http_serve_entity(req, &e);
    return true;
}

void cp_web_lib_missing(struct cp_call *c)
{
    cp_reply_error(c, 404, "not found",
                   "player library not installed: run scripts/setup.sh (web.player_dir)");
}

/* ---- the page ---- */

extern const unsigned char cp_watch_page_html[];
extern const size_t cp_watch_page_html_len;

void cp_watch_page(struct cp_call *c)
{
    /* The page holds no data: it logs in and calls /v1 like any viewer app. The media comes
     * from the edges, another origin (they answer with CORS); MSE plays from blob: URLs and
     * hls.js runs its demuxer in a blob: worker. */
    char *b = tmt_xmalloc(cp_watch_page_html_len);
    memcpy(b, cp_watch_page_html, cp_watch_page_html_len);
    cp_add_header(c, "Content-Security-Policy",
                  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
                  "'unsafe-inline'; img-src 'self' data:; connect-src 'self' http: https:; "
                  "media-src 'self' blob: http: https:; worker-src 'self' blob:; "
                  "frame-ancestors 'none'");
    cp_add_header(c, "X-Content-Type-Options", "nosniff");
    cp_add_header(c, "Cache-Control", "no-cache");
    cp_reply_text(c, 200, b, cp_watch_page_html_len, "text/html; charset=utf-8");
}
