/*
 * resp.c: the response API of server.h, the same for HTTP/1.1 and HTTP/2, and serving a stored
 * representation (conditional requests, ranges, HEAD) in one place.
 *
 * Every body piece handed in is released exactly once: when sent, when dropped (HEAD, 304, a
 * client that left), or at once if the response is in a state that cannot carry it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "h2_int.h"
#include "http_int.h"
#include "tmt/log.h"

static struct req *to_req(struct tmt_http_req *pub)
{
    TMT_CHECK_OBJ(pub, TMT_HTTP_REQ_MAGIC);
    return (struct req *)pub;
}

static bool is_h2(const struct req *r)
{
    return r->pub.version == 20;
}

/* ---- CORS ---- */

#define CORS_EXPOSE "Content-Length, Content-Range, ETag, Age, X-Cache, Cache-Status"

/* Whether the origin is one of the list's (separated by spaces or commas), byte for byte. */
static bool origin_listed(const char *list, struct tmt_slice origin)
{
    for (const char *p = list; *p != '\0';) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n > 0 && n == origin.len && memcmp(p, origin.p, n) == 0)
            return true;
        p += n;
    }
    return false;
}

void srv_dispatch(struct req *r)
{
    struct worker *w = r->w;
    const char *allow = w->limits.cors_origin;
    const struct tmt_http_header *origin =
        allow[0] != '\0' ? tmt_http_header_find(r->pub.headers, r->pub.n_headers, "origin") : NULL;
    bool any = origin != NULL && strcmp(allow, "*") == 0;
    if (origin != NULL && (any || origin_listed(allow, origin->value))) {
        r->cors = true;
        r->cors_origin = any ? (struct tmt_slice){NULL, 0} : origin->value;
        const struct tmt_http_header *acrm =
            tmt_http_header_find(r->pub.headers, r->pub.n_headers, "access-control-request-method");
        if (r->pub.method == TMT_HTTP_OPTIONS && acrm != NULL) {
            const struct tmt_http_header *acrh = tmt_http_header_find(
                r->pub.headers, r->pub.n_headers, "access-control-request-headers");
            struct tmt_http_header h[4] = {
                {TMT_SLICE_LIT("Access-Control-Allow-Methods"),
                 TMT_SLICE_LIT("GET, HEAD, OPTIONS")},
                {TMT_SLICE_LIT("Access-Control-Max-Age"), TMT_SLICE_LIT("86400")},
            };
            size_t n = 2;
            if (acrh != NULL)
                h[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Access-Control-Allow-Headers"),
                                                  acrh->value};
            r->pub.cache_status = "preflight";
            if (tmt_http_resp_start(&r->pub, 204, h, n, 0) == TMT_OK)
                tmt_http_resp_end(&r->pub);
            return;
        }
    }
    w->s->opts.handler(&r->pub, w->s->opts.handler_arg);
}

int tmt_http_resp_start(struct tmt_http_req *pub, int status, const struct tmt_http_header *h,
                        size_t n, int64_t content_length)
{
    struct req *r = to_req(pub);
    if (r->state != REQ_HANDLING)
        return TMT_EINVAL;
    struct tmt_http_header with_cors[TMT_SERVER_HEADERS_CAP];
    if (r->cors && n + 3 <= TMT_ARRAY_LEN(with_cors)) {
        /* "*", or the request's own Origin when it is listed (then the answer varies with it);
         * any such field from upstream was dropped by the handler. */
        if (n > 0)
            memcpy(with_cors, h, n * sizeof(*h));
        if (r->cors_origin.p == NULL) {
            with_cors[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Access-Control-Allow-Origin"),
                                                      TMT_SLICE_LIT("*")};
        } else {
            with_cors[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Access-Control-Allow-Origin"),
                                                      r->cors_origin};
            with_cors[n++] =
                (struct tmt_http_header){TMT_SLICE_LIT("Vary"), TMT_SLICE_LIT("Origin")};
        }
        with_cors[n++] = (struct tmt_http_header){TMT_SLICE_LIT("Access-Control-Expose-Headers"),
                                                  TMT_SLICE_LIT(CORS_EXPOSE)};
        h = with_cors;
    }
    TMT_ASSERT(status >= 100 && status <= 999);
    r->state = REQ_STARTED;
    r->status = status;
    r->clen = content_length;
    if (status < 200 || status == 204 || status == 304)
        r->no_body = true;
    if (r->c == NULL)
        return TMT_OK; /* the client left: nothing to frame */
    int rc = is_h2(r) ? h2_resp_start(r, status, h, n, content_length)
                      : h1_resp_start(r, status, h, n, content_length);
    if (rc != TMT_OK) {
        /* Header block too large for the output chunk: a handler bug, answered as 500. */
        tmt_log(TMT_LOG_ERROR, "http", "response head too large", "rid=%llu",
                (unsigned long long)r->pub.id);
        r->state = REQ_HANDLING;
        tmt_http_respond_error(pub, 500, "response head too large");
        r->state = REQ_ENDED;
        return rc;
    }
    return TMT_OK;
}

static void body(struct req *r, int kind, const void *p, int fd, off_t off, size_t len,
                 tmt_release_fn *rel, void *arg)
{
    if (r->state != REQ_STARTED) {
        if (rel != NULL)
            rel(arg);
        return;
    }
    /* Dropped: the client left, the response has no body (HEAD, 304), or nothing to send. */
    if (r->c == NULL || r->no_body || len == 0 || r->clen == 0) {
        if (rel != NULL)
            rel(arg);
        return;
    }
    if (r->clen >= 0 && r->body_sent + len > (uint64_t)r->clen) {
        /* More than declared would corrupt the framing of what follows on the connection. */
        tmt_log(TMT_LOG_ERROR, "http", "response body longer than its Content-Length",
                "rid=%llu declared=%lld", (unsigned long long)r->pub.id, (long long)r->clen);
        r->keep_alive = false;
        if (rel != NULL)
            rel(arg);
        return;
    }
    r->body_sent += len;
    tmt_metric_add(r->w->m, SM_RESP_BYTES, len);
    if (is_h2(r))
        h2_resp_body(r, kind, p, fd, off, len, rel, arg);
    else
        h1_resp_body(r, kind, p, fd, off, len, rel, arg);
}

void tmt_http_resp_ref(struct tmt_http_req *pub, const void *p, size_t len, tmt_release_fn *release,
                       void *arg)
{
    body(to_req(pub), BODY_REF, p, -1, 0, len, release, arg);
}

void tmt_http_resp_copy(struct tmt_http_req *pub, const void *p, size_t len)
{
    body(to_req(pub), BODY_COPY, p, -1, 0, len, NULL, NULL);
}

void tmt_http_resp_file(struct tmt_http_req *pub, int fd, off_t off, size_t len,
                        tmt_release_fn *release, void *arg)
{
    body(to_req(pub), BODY_FILE, NULL, fd, off, len, release, arg);
}

void tmt_http_resp_end(struct tmt_http_req *pub)
{
    struct req *r = to_req(pub);
    if (r->state == REQ_ENDED)
        return;
    if (r->state == REQ_HANDLING) {
        /* Ended without a response: a handler bug; the client still gets an answer. */
        tmt_log(TMT_LOG_ERROR, "http", "request ended without a response", "rid=%llu",
                (unsigned long long)r->pub.id);
        tmt_http_respond_error(pub, 500, "no response");
        return;
    }
    r->state = REQ_ENDED;
    if (is_h2(r))
        h2_resp_end(r);
    else
        h1_resp_end(r);
}

void tmt_http_respond(struct tmt_http_req *pub, int status, const char *content_type, const void *b,
                      size_t len)
{
    struct tmt_http_header h[1];
    size_t n = 0;
    if (content_type != NULL) {
        h[0].name = TMT_SLICE_LIT("Content-Type");
        h[0].value = (struct tmt_slice){content_type, strlen(content_type)};
        n = 1;
    }
    if (tmt_http_resp_start(pub, status, h, n, (int64_t)len) != TMT_OK)
        return;
    if (len > 0)
        tmt_http_resp_copy(pub, b, len);
    tmt_http_resp_end(pub);
}

void tmt_http_respond_error(struct tmt_http_req *pub, int status, const char *why)
{
    char b[512];
    int n = snprintf(b, sizeof(b), "%d %s%s%s\n", status, tmt_http_status_text(status),
                     why != NULL ? ": " : "", why != NULL ? why : "");
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(b))
        n = (int)sizeof(b) - 1;
    tmt_http_respond(pub, status, "text/plain", b, (size_t)n);
}

bool tmt_http_req_aborted(const struct tmt_http_req *pub)
{
    TMT_CHECK_OBJ(pub, TMT_HTTP_REQ_MAGIC);
    const struct req *r = (const struct req *)pub;
    return r->aborted || r->c == NULL;
}

struct tmt_loop *tmt_http_req_loop(const struct tmt_http_req *pub)
{
    TMT_CHECK_OBJ(pub, TMT_HTTP_REQ_MAGIC);
    const struct req *r = (const struct req *)pub;
    return r->w->loop;
}

/* ---- entities ---- */

#define ENTITY_MAX_HDRS 96

void tmt_http_serve_entity(struct tmt_http_req *pub, const struct tmt_http_entity *e)
{
    struct tmt_http_header h[ENTITY_MAX_HDRS];
    size_t n = 0;
    char lm[TMT_HTTP_DATE_LEN + 1];
    char cr[80];

    int status = 200;
    uint64_t first = 0, last = e->size ? e->size - 1 : 0;
    enum tmt_http_cond_result cond =
        tmt_http_cond_evaluate(pub->method, pub->headers, pub->n_headers, &e->val);
    if (cond == TMT_HTTP_COND_FAILED) {
        if (e->release != NULL)
            e->release(e->release_arg);
        tmt_http_respond_error(pub, 412, "precondition failed");
        return;
    }
    if (cond == TMT_HTTP_COND_NOT_MODIFIED) {
        status = 304;
    } else if (pub->method == TMT_HTTP_GET || pub->method == TMT_HTTP_HEAD) {
        const struct tmt_http_header *rh =
            tmt_http_header_find(pub->headers, pub->n_headers, "range");
        const struct tmt_http_header *ir =
            tmt_http_header_find(pub->headers, pub->n_headers, "if-range");
        if (rh != NULL && (ir == NULL || tmt_http_if_range_ok(ir->value, &e->val))) {
            switch (tmt_http_range_parse(rh->value, e->size, &first, &last)) {
            case TMT_HTTP_RANGE_OK:
                status = 206;
                break;
            case TMT_HTTP_RANGE_UNSATISFIABLE:
                status = 416;
                break;
            case TMT_HTTP_RANGE_NONE:
                break;
            }
        }
    }

    if (e->content_type != NULL && status != 304 && status != 416) {
        h[n].name = TMT_SLICE_LIT("Content-Type");
        h[n++].value = (struct tmt_slice){e->content_type, strlen(e->content_type)};
    }
    if (e->val.etag.len > 0) {
        h[n].name = TMT_SLICE_LIT("ETag");
        h[n++].value = e->val.etag;
    }
    if (e->val.last_modified >= 0) {
        tmt_http_date_format(e->val.last_modified, lm);
        h[n].name = TMT_SLICE_LIT("Last-Modified");
        h[n++].value = (struct tmt_slice){lm, TMT_HTTP_DATE_LEN};
    }
    h[n].name = TMT_SLICE_LIT("Accept-Ranges");
    h[n++].value = TMT_SLICE_LIT("bytes");
    if (status == 206 || status == 416) {
        int cl = status == 206 ? snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                                          first, last, e->size)
                               : snprintf(cr, sizeof(cr), "bytes */%" PRIu64, e->size);
        h[n].name = TMT_SLICE_LIT("Content-Range");
        h[n++].value = (struct tmt_slice){cr, (size_t)cl};
    }
    for (size_t i = 0; i < e->n_extra && n < ENTITY_MAX_HDRS - 1; i++)
        h[n++] = e->extra[i];

    if (status == 416) {
        static const char msg[] = "416 Range Not Satisfiable\n";
        h[n].name = TMT_SLICE_LIT("Content-Type");
        h[n++].value = TMT_SLICE_LIT("text/plain");
        if (tmt_http_resp_start(pub, 416, h, n, (int64_t)(sizeof(msg) - 1)) == TMT_OK) {
            tmt_http_resp_copy(pub, msg, sizeof(msg) - 1);
            tmt_http_resp_end(pub);
        }
        if (e->release != NULL)
            e->release(e->release_arg);
        return;
    }
    uint64_t len = (status == 304) ? 0 : (e->size == 0 ? 0 : last - first + 1);
    if (tmt_http_resp_start(pub, status, h, n, status == 304 ? -1 : (int64_t)len) != TMT_OK) {
        if (e->release != NULL)
            e->release(e->release_arg);
        return;
    }
    if (len == 0 || status == 304 || pub->method == TMT_HTTP_HEAD) {
        if (e->release != NULL)
            e->release(e->release_arg);
    } else if (e->p != NULL) {
        tmt_http_resp_ref(pub, (const char *)e->p + first, (size_t)len, e->release, e->release_arg);
    } else {
        tmt_http_resp_file(pub, e->fd, e->file_off + (off_t)first, (size_t)len, e->release,
                           e->release_arg);
    }
    tmt_http_resp_end(pub);
}
