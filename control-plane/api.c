/*
 * api.c: the route table of /v1 and /r, and what every endpoint shares: answers, request bodies,
 * ids, times and the store (see cp.h).
 */
#include "cp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/pool.h"

/* ---- answers ---- */

static void set_body(struct cp_call *c, int status, char *body, size_t len, const char *ctype)
{
    free(c->body);
    c->status = status;
    c->body = body;
    c->body_len = len;
    c->ctype = ctype;
}

void cp_reply_json(struct cp_call *c, int status, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(v);
    if (s == NULL) {
        set_body(c, 500, NULL, 0, NULL);
        return;
    }
    size_t n = strlen(s);
    char *b = tmt_xmalloc(n + 2);
    memcpy(b, s, n);
    b[n] = '\n';
    b[n + 1] = '\0';
    free(s);
    set_body(c, status, b, n + 1, "application/json");
}

void cp_reply_error(struct cp_call *c, int status, const char *error, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    cp_reply_json(c, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

void cp_reply_empty(struct cp_call *c, int status)
{
    set_body(c, status, NULL, 0, NULL);
}

void cp_add_header(struct cp_call *c, const char *name, const char *fmt, ...)
{
    if (c->n_hdrs == CP_HDRS)
        return;
    char *v = c->hbuf[c->n_hdrs];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof(c->hbuf[0]), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(c->hbuf[0]))
        return;
    c->hdrs[c->n_hdrs].name = (struct tmt_slice){name, strlen(name)};
    c->hdrs[c->n_hdrs].value = (struct tmt_slice){v, (size_t)n};
    c->n_hdrs++;
}

void cp_reply_store_error(struct cp_call *c, const char *doing, const struct tmt_err *err)
{
    tmt_log(TMT_LOG_ERROR, "control", "store failed", "doing=\"%s\" why=\"%s\"", doing,
            err != NULL ? err->msg : "bad stored record");
    if (c != NULL) {
        c->counts[CPM_STORE_ERRORS]++;
        cp_reply_error(c, 503, "store unavailable", "the store failed while %s; try again", doing);
    }
}

/* ---- request bodies ---- */

json_t *cp_parse_object(struct cp_call *c, struct tmt_slice b, const char *const *allowed)
{
    json_error_t je;
    json_t *o = json_loadb(b.p != NULL ? b.p : "", b.len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        cp_reply_error(c, 400, "malformed JSON", "%s (line %d, column %d)", je.text, je.line,
                       je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        cp_reply_error(c, 400, "malformed JSON", "the body must be a JSON object");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(allowed[i], k) == 0;
        if (!known) {
            cp_reply_error(c, 400, "unknown field", "\"%.64s\" is not a field of this request", k);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

void cp_reply_text(struct cp_call *c, int status, char *body, size_t len, const char *ctype)
{
    set_body(c, status, body, len, ctype);
}

json_t *cp_body_object(struct cp_call *c, const char *const *allowed)
{
    struct tmt_slice b = c->req->body;
    size_t max = c->body_max != 0 ? c->body_max : c->conf->max_body;
    if (b.len > max) {
        cp_reply_error(c, 413, "body too large", "request bodies are at most %zu bytes", max);
        return NULL;
    }
    /* A body must say it is JSON: "application/json", optionally with parameters. */
    const struct tmt_http_header *ct =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "content-type");
    struct tmt_slice t = ct != NULL ? ct->value : (struct tmt_slice){"", 0};
    bool json = t.len >= 16 && strncasecmp(t.p, "application/json", 16) == 0 &&
                (t.len == 16 || t.p[16] == ';' || t.p[16] == ' ');
    if (b.len > 0 && !json) {
        cp_reply_error(c, 415, "unsupported media type",
                       "send the body with Content-Type: application/json");
        return NULL;
    }
    return cp_parse_object(c, b, allowed);
}

const char *cp_json_string(struct cp_call *c, json_t *o, const char *name, bool required,
                           size_t min, size_t max, bool *bad)
{
    *bad = false;
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v)) {
        if (required) {
            *bad = true;
            cp_reply_error(c, 422, "missing field", "\"%s\" is required", name);
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        *bad = true;
        cp_reply_error(c, 400, "wrong type", "\"%s\" must be a string", name);
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < min || n > max) {
        *bad = true;
        cp_reply_error(c, 422, "invalid field", "\"%s\" must be %zu to %zu bytes long", name, min,
                       max);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            *bad = true;
            cp_reply_error(c, 422, "invalid field", "\"%s\" must not contain control characters",
                           name);
            return NULL;
        }
    }
    return s;
}

long cp_query(struct cp_call *c, const char *name, char *out, size_t cap)
{
    long n = cap > 0 ? tmt_http_query_param(c->req->query, name, out, cap - 1) : -2;
    if (n >= 0)
        out[n] = '\0';
    if (n == -2)
        cp_reply_error(c, 400, "bad query", "parameter %s is malformed or too long", name);
    return n;
}

/* ---- ids and time ---- */

void cp_new_id(char prefix, char out[CP_ID_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    unsigned char r[4];
    cp_random(r, sizeof(r));
    out[0] = prefix;
    for (int i = 0; i < 12; i++)
        out[1 + i] = hx[(ms >> (44 - 4 * i)) & 0xf];
    for (int i = 0; i < 4; i++) {
        out[13 + 2 * i] = hx[r[i] >> 4];
        out[14 + 2 * i] = hx[r[i] & 0xf];
    }
    out[CP_ID_LEN] = '\0';
}

int64_t cp_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

void cp_time_text(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *cp_time_json(int64_t t)
{
    char s[21];
    cp_time_text(t, s);
    return json_string(s);
}

/* ---- the store ---- */

static void batch_grow(struct cp_batch *b)
{
    if (b->n < b->cap)
        return;
    b->cap = b->cap == 0 ? 8 : 2 * b->cap;
    b->ops = tmt_xrealloc(b->ops, b->cap * sizeof(*b->ops));
    b->parts = tmt_xrealloc(b->parts, b->cap * sizeof(*b->parts));
    b->owned = tmt_xrealloc(b->owned, 2 * b->cap * sizeof(*b->owned));
}

static const char *own(struct cp_batch *b, const char *p, size_t len)
{
    char *s = tmt_xstrndup(p, len);
    b->owned[b->n_owned++] = s;
    return s;
}

void cp_batch_put(struct cp_batch *b, const char *key, const char *val, size_t len)
{
    batch_grow(b);
    size_t kl = strlen(key);
    const char *k = own(b, key, kl);
    const char *v = own(b, val, len);
    b->parts[b->n] = (struct tmt_slice){v, len};
    b->ops[b->n] =
        (struct tmt_kv_op){.del = false, .key = {k, kl}, .parts = &b->parts[b->n], .n_parts = 1};
    b->n++;
}

void cp_batch_put_json(struct cp_batch *b, const char *key, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    if (s == NULL)
        tmt_panic("json_dumps failed (out of memory)", __func__, __FILE__, __LINE__);
    cp_batch_put(b, key, s, strlen(s));
    free(s);
}

void cp_batch_del(struct cp_batch *b, const char *key)
{
    batch_grow(b);
    size_t kl = strlen(key);
    const char *k = own(b, key, kl);
    b->ops[b->n] = (struct tmt_kv_op){.del = true, .key = {k, kl}};
    b->n++;
}

void cp_batch_free(struct cp_batch *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->ops);
    free(b->parts);
    memset(b, 0, sizeof(*b));
}

int cp_batch_commit(struct cp *cp, struct cp_batch *b, struct cp_call *c)
{
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = b->n == 0 ? 0 : tmt_kv_write(cp->kv, b->ops, b->n, &err);
    cp_batch_free(b);
    if (rc != 0) {
        cp_reply_store_error(c, "writing a change", &err);
        return -1;
    }
    return 0;
}

int cp_get_json(struct cp *cp, const char *key, json_t **out, struct cp_call *c)
{
    struct tmt_kv_val v;
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_kv_get(cp->kv, (struct tmt_slice){key, strlen(key)}, &v, &err);
    if (rc < 0) {
        cp_reply_store_error(c, "reading a record", &err);
        return -1;
    }
    if (rc == 0)
        return 0;
    *out = json_loadb(v.p, v.len, 0, NULL);
    tmt_kv_val_release(v.pin);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        tmt_log(TMT_LOG_ERROR, "control", "bad stored record", "key=\"%.80s\"", key);
        cp_reply_store_error(c, "decoding a record", NULL);
        return -1;
    }
    return 1;
}

int cp_get_str(struct cp *cp, const char *key, char *out, size_t cap, struct cp_call *c)
{
    struct tmt_kv_val v;
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_kv_get(cp->kv, (struct tmt_slice){key, strlen(key)}, &v, &err);
    if (rc < 0) {
        cp_reply_store_error(c, "reading a record", &err);
        return -1;
    }
    if (rc == 0)
        return 0;
    bool fits = v.len < cap;
    if (fits) {
        memcpy(out, v.p, v.len);
        out[v.len] = '\0';
    }
    tmt_kv_val_release(v.pin);
    if (!fits) {
        cp_reply_store_error(c, "reading an index entry", NULL);
        return -1;
    }
    return 1;
}

struct scan_ctx {
    size_t plen;
    cp_scan_fn *fn;
    void *arg;
};

static bool scan_one(void *arg, struct tmt_slice key, struct tmt_slice val)
{
    struct scan_ctx *s = arg;
    return s->fn(s->arg, (struct tmt_slice){key.p + s->plen, key.len - s->plen}, val);
}

int cp_scan(struct cp *cp, const char *prefix, cp_scan_fn *fn, void *arg, struct cp_call *c)
{
    struct scan_ctx s = {strlen(prefix), fn, arg};
    struct tmt_err err;
    tmt_err_clear(&err);
    if (tmt_kv_scan(cp->kv, (struct tmt_slice){prefix, s.plen}, scan_one, &s, &err) != 0) {
        cp_reply_store_error(c, "scanning records", &err);
        return -1;
    }
    return 0;
}

/* ---- routes ---- */

enum need { NEED_NONE, NEED_SESSION, NEED_OPERATOR, NEED_NODE };

struct route {
    enum tmt_http_method method;
    const char *pattern; /* segments after the leading '/'; "*" captures one */
    enum need need;
    void (*fn)(struct cp_call *c);
    bool slow; /* hashes a password (scrypt, tens of ms): always on the pool */
};

static const struct route routes[] = {
    {TMT_HTTP_POST, "v1/users", NEED_NONE, cp_users_register, true},
    {TMT_HTTP_GET, "v1/users", NEED_OPERATOR, cp_users_list, false},
    {TMT_HTTP_GET, "v1/users/me", NEED_SESSION, cp_users_me, false},
    {TMT_HTTP_GET, "v1/users/*", NEED_OPERATOR, cp_users_get, false},
    {TMT_HTTP_PATCH, "v1/users/*", NEED_OPERATOR, cp_users_patch, true},
    {TMT_HTTP_DELETE, "v1/users/*", NEED_OPERATOR, cp_users_delete, false},
    {TMT_HTTP_POST, "v1/sessions", NEED_NONE, cp_sessions_create, true},
    {TMT_HTTP_DELETE, "v1/sessions/current", NEED_SESSION, cp_sessions_delete, false},
    {TMT_HTTP_POST, "v1/devices", NEED_SESSION, cp_devices_create, false},
    {TMT_HTTP_GET, "v1/devices", NEED_SESSION, cp_devices_list, false},
    {TMT_HTTP_DELETE, "v1/devices/*", NEED_SESSION, cp_devices_delete, false},
    {TMT_HTTP_GET, "v1/shows", NEED_SESSION, cp_shows_list, false},
    {TMT_HTTP_POST, "v1/shows", NEED_OPERATOR, cp_shows_create, false},
    {TMT_HTTP_POST, "v1/shows/*/ingest", NEED_OPERATOR, cp_shows_ingest, false},
    {TMT_HTTP_DELETE, "v1/shows/*/ingest", NEED_OPERATOR, cp_shows_ingest_abandon, false},
    {TMT_HTTP_GET, "v1/shows/*", NEED_SESSION, cp_shows_get, false},
    {TMT_HTTP_PUT, "v1/shows/*", NEED_OPERATOR, cp_shows_put, false},
    {TMT_HTTP_PATCH, "v1/shows/*", NEED_OPERATOR, cp_shows_patch, false},
    {TMT_HTTP_DELETE, "v1/shows/*", NEED_OPERATOR, cp_shows_delete, false},
    {TMT_HTTP_POST, "v1/playback", NEED_SESSION, cp_playback_start, false},
    {TMT_HTTP_GET, "v1/playback", NEED_SESSION, cp_playback_list, false},
    {TMT_HTTP_POST, "v1/playback/*/heartbeat", NEED_SESSION, cp_playback_heartbeat, false},
    {TMT_HTTP_DELETE, "v1/playback/*", NEED_SESSION, cp_playback_stop, false},
    {TMT_HTTP_POST, "v1/nodes", NEED_OPERATOR, cp_nodes_create, false},
    {TMT_HTTP_GET, "v1/nodes", NEED_OPERATOR, cp_nodes_list, false},
    {TMT_HTTP_GET, "v1/nodes/*/config", NEED_NODE, cp_nodes_config, false},
    {TMT_HTTP_POST, "v1/nodes/*/heartbeat", NEED_NODE, cp_nodes_heartbeat, false},
    {TMT_HTTP_POST, "v1/nodes/*/reports", NEED_NODE, cp_reports_take, false},
    {TMT_HTTP_GET, "v1/reports/cache", NEED_OPERATOR, cp_reports_cache, false},
    {TMT_HTTP_GET, "v1/reports/mrc", NEED_OPERATOR, cp_reports_mrc, false},
    {TMT_HTTP_GET, "reports", NEED_NONE, cp_reports_page, false},
    {TMT_HTTP_GET, "watch", NEED_NONE, cp_watch_page, false},
    /* Served from memory by cp_web_serve while installed; these answer 404 otherwise. */
    {TMT_HTTP_GET, "watch/hls.js", NEED_NONE, cp_web_lib_missing, false},
    {TMT_HTTP_GET, "watch/dash.js", NEED_NONE, cp_web_lib_missing, false},
    {TMT_HTTP_POST, "v1/nodes/*/drain", NEED_OPERATOR, cp_nodes_drain, false},
    {TMT_HTTP_GET, "v1/nodes/*", NEED_OPERATOR, cp_nodes_get, false},
    {TMT_HTTP_PATCH, "v1/nodes/*", NEED_OPERATOR, cp_nodes_patch, false},
    {TMT_HTTP_DELETE, "v1/nodes/*", NEED_OPERATOR, cp_nodes_delete, false},
    {TMT_HTTP_GET, "v1/route", NEED_OPERATOR, cp_route, false},
    {TMT_HTTP_GET, "v1/keys", NEED_OPERATOR, cp_keys_list, false},
    {TMT_HTTP_POST, "v1/keys/rotate", NEED_OPERATOR, cp_keys_rotate, false},
    {TMT_HTTP_GET, "r/*/master.m3u8", NEED_NONE, cp_router, false},
    {TMT_HTTP_GET, "r/*/manifest.mpd", NEED_NONE, cp_router, false},
};

/* The route of the request, its captures in c->arg; NULL after answering 404/405. */
static const struct route *find_route(struct cp_call *c)
{
    struct tmt_http_req *req = c->req;
    enum tmt_http_method m = req->method == TMT_HTTP_HEAD ? TMT_HTTP_GET : req->method;
    struct tmt_slice path = req->path;
    if (path.len == 0 || path.p[0] != '/') {
        cp_reply_error(c, 404, "not found", "no such path");
        return NULL;
    }
    path.p++;
    path.len--;
    const struct route *hit = NULL;
    char allow[96] = "";
    for (size_t i = 0; i < TMT_ARRAY_LEN(routes); i++) {
        struct tmt_slice args[CP_ARGS] = {{0}};
        if (!cp_path_match(path, routes[i].pattern, args, CP_ARGS))
            continue;
        if (routes[i].method != m) {
            const char *mn = tmt_http_method_name(routes[i].method);
            if (strstr(allow, mn) == NULL && strlen(allow) + strlen(mn) + 3 < sizeof(allow)) {
                if (allow[0] != '\0')
                    strcat(allow, ", ");
                strcat(allow, mn);
            }
            continue;
        }
        /* v1/users/me is listed before v1/users/{id}: the first match wins. */
        hit = &routes[i];
        memcpy(c->arg, args, sizeof(args));
        break;
    }
    if (hit == NULL) {
        if (strstr(allow, "GET") != NULL && strlen(allow) + 7 < sizeof(allow))
            strcat(allow, ", HEAD");
        if (allow[0] != '\0') {
            cp_add_header(c, "Allow", "%s", allow);
            cp_reply_error(c, 405, "method not allowed", "this path takes %s", allow);
        } else {
            cp_reply_error(c, 404, "not found", "no such path");
        }
        return NULL;
    }
    for (size_t i = 0; i < CP_ARGS; i++) {
        if (c->arg[i].p != NULL && !cp_id_ok(c->arg[i], CP_ID_MAX)) {
            cp_reply_error(c, 404, "not found", "ids are 1 to 64 of [A-Za-z0-9_-]");
            return NULL;
        }
    }
    return hit;
}

/* Checks the caller and runs the endpoint. */
static void dispatch(struct cp_call *c, const struct route *hit)
{
    if (hit->need == NEED_NODE) {
        if (!cp_node_auth(c))
            return;
    } else if (hit->need != NEED_NONE) {
        if (!cp_session_auth(c))
            return;
        if (hit->need == NEED_OPERATOR && c->role != CP_ROLE_OPERATOR) {
            cp_reply_error(c, 403, "forbidden", "this call is for operators");
            return;
        }
    }
    hit->fn(c);
}

static void call_work(void *arg)
{
    struct cp_call *c = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->now = (int64_t)ts.tv_sec;
    c->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    dispatch(c, c->route);
    if (c->status == 0)
        cp_reply_error(c, 500, "internal error", "the call gave no answer");
}

static void call_done(void *arg)
{
    struct cp_call *c = arg;
    struct cp *cp = c->cp;
    if (cp->metrics != NULL) {
        tmt_metric_slot *shard = tmt_metrics_shard(cp->metrics, c->req->worker);
        for (size_t i = 0; i < CPM_COUNT; i++)
            if (c->counts[i] != 0)
                tmt_metric_add(shard, cp->m_base + i, c->counts[i]);
    }
    if (c->ctype != NULL)
        cp_add_header(c, "Content-Type", "%s", c->ctype);
    if (c->status == 401)
        cp_add_header(c, "WWW-Authenticate", "Bearer realm=\"tomato\"");
    cp_add_header(c, "Cache-Control", "no-store");
    if (tmt_http_resp_start(c->req, c->status, c->hdrs, c->n_hdrs, (int64_t)c->body_len) == 0) {
        if (c->body_len > 0)
            tmt_http_resp_ref(c->req, c->body, c->body_len, free, c->body);
        else
            free(c->body);
        c->body = NULL;
    }
    tmt_http_resp_end(c->req);
    free(c->body);
    json_decref(c->user);
    json_decref(c->node);
    tmt_conf_snap_unref(&c->snap);
    free(c);
}

/* Paths whose ids name people: the access log shows the route, not the id. */
static void hide_ids(struct tmt_http_req *req)
{
    static const char *const families[] = {"/v1/users/", "/v1/devices/", "/v1/playback/"};
    /* (node ids are not people's: /v1/nodes/{id}/... is logged as it is) */
    for (size_t i = 0; i < TMT_ARRAY_LEN(families); i++) {
        size_t fl = strlen(families[i]);
        if (req->path.len > fl && memcmp(req->path.p, families[i], fl) == 0 &&
            !(req->path.len == fl + 2 && memcmp(req->path.p + fl, "me", 2) == 0)) {
            req->log_path = (struct tmt_slice){families[i], fl};
            return;
        }
    }
}

void cp_api_handle(struct tmt_http_req *req, void *arg)
{
    struct cp *cp = arg;
    if (cp_web_serve(cp, req))
        return;
    hide_ids(req);
    struct cp_call *c = tmt_xcalloc(1, sizeof(*c));
    c->cp = cp;
    c->req = req;
    c->loop = tmt_http_req_loop(req);
    pthread_mutex_lock(&cp->conf_mu);
    c->snap = tmt_conf_snap_ref(cp->snap);
    pthread_mutex_unlock(&cp->conf_mu);
    c->conf = tmt_conf_snap_get(c->snap);
    c->route = find_route(c);
    if (c->route == NULL) {
        call_done(c);
        return;
    }
    /*
     * Password hashing, and every call when each store write waits for fsync, run on the pool;
     * the rest (a few RocksDB reads and one unsynced write, microseconds) runs here: a thread
     * hop each way would cost more than the call.
     */
    if (c->route->slow || c->conf->store_sync) {
        tmt_pool_submit(cp->pool, call_work, call_done, c, c->loop);
        return;
    }
    call_work(c);
    call_done(c);
}
