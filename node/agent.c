/*
 * agent.c: a node's conversation with the control plane (see node.h).
 *
 * One cycle: GET /v1/nodes/{id}/config with If-None-Match (200: parse, apply, keep in the state
 * file; 304: nothing new), then POST /v1/nodes/{id}/heartbeat. The next cycle starts after the
 * heartbeat interval the control plane asks for, or sooner after a failure: 1 s, doubling up to
 * that interval, so a control plane that comes back is found quickly.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "tmt/client.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/node.h"
#include "tmt/prog.h"
#include "tmt/secret.h"

#define BODY_MAX (8u << 20)
#define DEFAULT_INTERVAL_MS 10000
#define KEYS_MAX 32
#define REPORTS_QUEUE_MAX 1440 /* a day of batches at the default interval */
#define REPORT_ZSTD_LEVEL 3

enum {
    M_UP,
    M_UPDATES,
    M_FAILURES,
    M_HEARTBEATS,
    M_REPORTS_SENT,
    M_REPORTS_QUEUED,
    M_REPORTS_DROPPED,
    M_COUNT
};

static const struct tmt_metric_def node_metrics[] = {
    {"tmt_node_control_up", NULL, TMT_METRIC_GAUGE,
     "1 while the last call to the control plane succeeded, else 0 (serving the last config)"},
    {"tmt_node_config_updates_total", NULL, TMT_METRIC_COUNTER,
     "configs received from the control plane and applied"},
    {"tmt_node_control_failures_total", NULL, TMT_METRIC_COUNTER,
     "calls to the control plane that failed (unreachable, timeout, error status)"},
    {"tmt_node_heartbeats_total", NULL, TMT_METRIC_COUNTER, "heartbeats the control plane took"},
    {"tmt_node_reports_sent_total", NULL, TMT_METRIC_COUNTER,
     "report batches the control plane took"},
    {"tmt_node_reports_queued", NULL, TMT_METRIC_GAUGE,
     "report batches waiting to be sent (the control plane unreachable)"},
    {"tmt_node_reports_dropped_total", NULL, TMT_METRIC_COUNTER,
     "report batches dropped: the queue was full, or the control plane refused them"},
};

static struct tmt_metrics *g_metrics;
static size_t g_base;

void tmt_node_register_metrics(struct tmt_metrics *metrics)
{
    if (metrics == NULL)
        return;
    g_metrics = metrics;
    g_base = tmt_metrics_register(metrics, node_metrics, TMT_ARRAY_LEN(node_metrics));
}

enum phase { P_IDLE, P_CONFIG, P_HEARTBEAT };

struct tmt_node {
    unsigned magic;
#define NODE_MAGIC 0x90de0a61u
    struct tmt_loop *loop;
    struct tmt_http_client *client;
    char upstream[128];
    char base[256]; /* path prefix of the control URL, without a trailing '/' */
    char id[65];
    char auth[TMT_SECRET_MAX + 8];
    char *state_file;
    char version[64];
    struct tmt_node_hooks hooks;
    struct event *timer;
    uint64_t interval_ms, backoff_ms;
    bool up, down_logged;
    enum phase phase;
    struct tmt_http_call *call;
    int status;
    char *buf;
    size_t len, cap;
    bool too_big;
    char etag[80], resp_etag[80];
    uint64_t seq;
    unsigned shard;
    /* Report batches: a queue of compressed batches, oldest first, sent one at a time. */
    uint64_t report_ms;
    struct event *report_timer;
    char boot[17];
    uint64_t rseq;
    int64_t last_report_ms; /* wall clock of the last batch's end */
    struct report_batch {
        uint64_t seq;
        void *buf;
        size_t len;
    } * queue;
    size_t q_head, q_len; /* ring of REPORTS_QUEUE_MAX */
    struct tmt_http_call *rcall;
    int rstatus;
};

static void count(struct tmt_node *n, size_t m, int64_t v)
{
    if (g_metrics != NULL)
        tmt_metric_add(tmt_metrics_shard(g_metrics, n->shard), g_base + m, (uint64_t)v);
}

/* ---- settings ---- */

const struct tmt_conf_key tmt_node_conf_keys[TMT_NODE_CONF_N_KEYS] = {
    {.section = "node",
     .name = "control_url",
     .type = TMT_CONF_STR,
     .offset = offsetof(struct tmt_node_conf, control_url),
     .dflt = "",
     .help = "the control plane (http://IP:PORT) this node takes its config from and "
             "heartbeats to; empty = not managed, file settings only"},
    {.section = "node",
     .name = "id",
     .type = TMT_CONF_STR,
     .offset = offsetof(struct tmt_node_conf, id),
     .dflt = "",
     .help = "this node's id, from POST /v1/nodes"},
    {.section = "node",
     .name = "credential_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct tmt_node_conf, credential_file),
     .dflt = "",
     .help = "file holding the node credential shown once by POST /v1/nodes"},
    {.section = "node",
     .name = "state_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct tmt_node_conf, state_file),
     .dflt = "",
     .help = "where the last config from the control plane is kept, so that a start while it is "
             "unreachable serves with it; empty = not kept"},
    {.section = "node",
     .name = "report_interval",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct tmt_node_conf, report_interval_ms),
     .dflt = "60s",
     .max = 3600000,
     .help = "how often the node sends a report batch (counters for cache-hit reports; queued "
             "while the control plane is unreachable); 0 = none"},
};

/* "http://IP:PORT[/prefix]" into upstream and base. */
static int parse_url(const char *url, char *up, size_t up_cap, char *base, size_t base_cap)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    size_t n = strcspn(h, "/");
    if (n == 0 || n >= up_cap || memchr(h, ':', n) == NULL)
        return -1;
    memcpy(up, h, n);
    up[n] = '\0';
    int w = snprintf(base, base_cap, "%s", h + n);
    if (w < 0 || (size_t)w >= base_cap)
        return -1;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    return 0;
}

int tmt_node_conf_check(const struct tmt_node_conf *c, struct tmt_err *err)
{
    if (c->control_url[0] == '\0')
        return 0;
    char up[128], base[256];
    if (parse_url(c->control_url, up, sizeof(up), base, sizeof(base)) != 0)
        return tmt_err_set(err, TMT_EINVAL,
                           "node.control_url: expected http://IP:PORT[/path], got \"%s\"",
                           c->control_url);
    size_t il = strlen(c->id);
    bool id_ok = il > 0 && il <= 64;
    for (size_t i = 0; i < il && id_ok; i++)
        id_ok = (c->id[i] >= 'a' && c->id[i] <= 'z') || (c->id[i] >= 'A' && c->id[i] <= 'Z') ||
                (c->id[i] >= '0' && c->id[i] <= '9') || c->id[i] == '_' || c->id[i] == '-';
    if (!id_ok)
        return tmt_err_set(err, TMT_EINVAL,
                           "node.id: a managed node needs its id (1 to 64 of "
                           "[A-Za-z0-9_-], from POST /v1/nodes)");
    if (c->credential_file[0] == '\0')
        return tmt_err_set(err, TMT_EINVAL,
                           "node.credential_file: a managed node needs its credential");
    return 0;
}

/* ---- the config ---- */

static const char *str(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

int tmt_node_config_parse(const char *text, size_t len,
                          void (*fn)(const struct tmt_node_config *cfg, void *arg), void *arg,
                          struct tmt_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        tmt_err_set(err, TMT_EINVAL, "config is not a JSON object (%s)", je.text);
        return -1;
    }
    struct tmt_node_config c;
    memset(&c, 0, sizeof(c));
    json_t *node = json_object_get(o, "node");
    c.id = str(node, "id");
    c.role = str(node, "role");
    c.name = str(node, "name");
    c.region = str(node, "region");
    json_int_t hb = json_integer_value(json_object_get(o, "heartbeat_interval"));
    c.heartbeat_interval_ms = hb > 0 && hb <= 3600 ? (uint64_t)hb * 1000 : DEFAULT_INTERVAL_MS;
    c.fill_key = str(o, "fill_key");
    c.admin_key = str(o, "admin_key");
    json_t *set = json_object_get(o, "settings");
    c.settings = json_string_value(set);
    if (set != NULL && c.settings == NULL) {
        json_decref(o);
        tmt_err_set(err, TMT_EINVAL, "settings is not a string of settings-file text");
        return -1;
    }
    int rc = -1;
    const char **shields = NULL, **revoked = NULL;
    struct tmt_token_key *keys = NULL;
    if (c.id == NULL || c.role == NULL) {
        tmt_err_set(err, TMT_EINVAL, "config without node.id or node.role");
        goto out;
    }
    json_t *a = json_object_get(o, "shields");
    size_t i;
    json_t *e;
    if (a != NULL) {
        shields = tmt_xcalloc(json_array_size(a) + 1, sizeof(*shields));
        json_array_foreach(a, i, e)
        {
            if ((shields[c.n_shields] = json_string_value(e)) == NULL) {
                tmt_err_set(err, TMT_EINVAL, "shields[%zu] is not a string", i);
                goto out;
            }
            c.n_shields++;
        }
    }
    a = json_object_get(o, "revoked");
    if (a != NULL) {
        revoked = tmt_xcalloc(json_array_size(a) + 1, sizeof(*revoked));
        json_array_foreach(a, i, e)
        {
            if ((revoked[c.n_revoked] = json_string_value(e)) == NULL) {
                tmt_err_set(err, TMT_EINVAL, "revoked[%zu] is not a string", i);
                goto out;
            }
            c.n_revoked++;
        }
    }
    a = json_object_get(o, "keys");
    if (a != NULL) {
        if (json_array_size(a) > KEYS_MAX) {
            tmt_err_set(err, TMT_EINVAL, "more than %d keys", KEYS_MAX);
            goto out;
        }
        keys = tmt_xcalloc(json_array_size(a) + 1, sizeof(*keys));
        json_array_foreach(a, i, e)
        {
            const char *kid = str(e, "kid"), *sec = str(e, "secret");
            struct tmt_token_key *k = &keys[c.n_keys];
            long sl = sec != NULL
                          ? tmt_b64url_decode(sec, strlen(sec), k->secret, sizeof(k->secret))
                          : -1;
            if (kid == NULL || strlen(kid) == 0 || strlen(kid) > TMT_TOKEN_KID_MAX ||
                sl < TMT_TOKEN_SECRET_MIN) {
                tmt_err_set(err, TMT_EINVAL, "keys[%zu] is not a {kid, secret} key", i);
                goto out;
            }
            snprintf(k->kid, sizeof(k->kid), "%s", kid);
            k->secret_len = (size_t)sl;
            c.n_keys++;
        }
    }
    c.shields = shields;
    c.revoked = revoked;
    c.keys = keys;
    fn(&c, arg);
    rc = 0;
out:
    if (keys != NULL)
        memset(keys, 0, (c.n_keys + 1) * sizeof(*keys));
    free(keys);
    free(shields);
    free(revoked);
    json_decref(o);
    return rc;
}

struct apply_ctx {
    struct tmt_node *n;
    bool from_state;
};

static void apply_cb(const struct tmt_node_config *cfg, void *arg)
{
    struct apply_ctx *a = arg;
    struct tmt_node_config c = *cfg;
    c.from_state_file = a->from_state;
    a->n->interval_ms = c.heartbeat_interval_ms;
    /* Pushed settings: a layer over the settings file, applied by a reload when they change
     * (one that does not validate is logged by the reload and changes nothing). */
    const char *set = c.settings != NULL ? c.settings : "";
    if (tmt_prog_set_pushed(set, strlen(set))) {
        tmt_log(TMT_LOG_INFO, "node", "settings pushed by the control plane changed; reloading",
                "bytes=%zu", strlen(set));
        tmt_prog_request_reload();
    }
    if (a->n->hooks.apply != NULL)
        a->n->hooks.apply(&c, a->n->hooks.arg);
}

/* Keeps the config text in the state file (written whole, then renamed over the old one). */
static void save_state(struct tmt_node *n, const char *text, size_t len)
{
    if (n->state_file == NULL)
        return;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", n->state_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (ok && rename(tmp, n->state_file) == 0)
        return;
    tmt_log(TMT_LOG_WARN, "node", "cannot keep the config in the state file",
            "path=\"%s\" errno=%d", n->state_file, errno);
    unlink(tmp);
}

static void load_state(struct tmt_node *n)
{
    if (n->state_file == NULL)
        return;
    FILE *f = fopen(n->state_file, "r");
    if (f == NULL)
        return;
    char *text = tmt_xmalloc(BODY_MAX);
    size_t len = fread(text, 1, BODY_MAX, f);
    fclose(f);
    struct apply_ctx a = {n, true};
    struct tmt_err err;
    tmt_err_clear(&err);
    if (tmt_node_config_parse(text, len, apply_cb, &a, &err) == 0)
        tmt_log(TMT_LOG_INFO, "node", "serving with the config kept in the state file",
                "path=\"%s\"", n->state_file);
    else
        tmt_log(TMT_LOG_WARN, "node", "the state file holds no usable config",
                "path=\"%s\" why=\"%s\"", n->state_file, err.msg);
    free(text);
}

/* ---- the cycle ---- */

static void cycle(struct tmt_node *n);

static void schedule(struct tmt_node *n, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(n->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cycle(arg);
}

static void set_up(struct tmt_node *n, bool up, const char *why)
{
    if (up && !n->up) {
        count(n, M_UP, 1);
        if (n->down_logged)
            tmt_log(TMT_LOG_INFO, "node", "control plane reachable again", "url=%s%s", n->upstream,
                    n->base);
        n->down_logged = false;
    }
    if (!up) {
        count(n, M_FAILURES, 1);
        if (n->up)
            count(n, M_UP, -1);
        if (!n->down_logged)
            tmt_log(TMT_LOG_WARN, "node",
                    "control plane unreachable; serving with the last config, retrying",
                    "url=%s%s why=\"%s\"", n->upstream, n->base, why);
        n->down_logged = true;
    }
    n->up = up;
}

static void failed(struct tmt_node *n, const char *why)
{
    set_up(n, false, why);
    n->phase = P_IDLE;
    n->backoff_ms = n->backoff_ms == 0 ? 1000 : TMT_MIN(2 * n->backoff_ms, n->interval_ms);
    schedule(n, n->backoff_ms);
}

static void on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct tmt_node *n = arg;
    n->status = resp->status;
    n->len = 0;
    n->too_big = false;
    n->resp_etag[0] = '\0';
    const struct tmt_http_header *e = tmt_http_header_find(resp->headers, resp->n_headers, "etag");
    if (e != NULL && e->value.len < sizeof(n->resp_etag)) {
        memcpy(n->resp_etag, e->value.p, e->value.len);
        n->resp_etag[e->value.len] = '\0';
    }
}

static void on_data(void *arg, const char *p, size_t len)
{
    struct tmt_node *n = arg;
    if (n->too_big || n->len + len > BODY_MAX) {
        n->too_big = true;
        return;
    }
    if (n->len + len > n->cap) {
        n->cap = TMT_MAX(n->len + len, 2 * n->cap + 4096);
        n->buf = tmt_xrealloc(n->buf, n->cap);
    }
    memcpy(n->buf + n->len, p, len);
    n->len += len;
}

static void heartbeat(struct tmt_node *n);

static void on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct tmt_node *n = arg;
    n->call = NULL;
    char why[200];
    if (rc != 0) {
        snprintf(why, sizeof(why), "%.190s", err->msg);
        failed(n, why);
        return;
    }
    if (n->phase == P_CONFIG) {
        if (n->status == 304) {
            heartbeat(n);
            return;
        }
        if (n->status != 200 || n->too_big) {
            snprintf(why, sizeof(why), "GET config: status %d%s", n->status,
                     n->too_big ? " (too large)" : "");
            failed(n, why);
            return;
        }
        struct apply_ctx a = {n, false};
        struct tmt_err perr;
        tmt_err_clear(&perr);
        if (tmt_node_config_parse(n->buf, n->len, apply_cb, &a, &perr) != 0) {
            snprintf(why, sizeof(why), "bad config: %.180s", perr.msg);
            failed(n, why);
            return;
        }
        count(n, M_UPDATES, 1);
        snprintf(n->etag, sizeof(n->etag), "%s", n->resp_etag);
        save_state(n, n->buf, n->len);
        tmt_log(TMT_LOG_INFO, "node", "config applied", "etag=%s", n->etag);
        heartbeat(n);
        return;
    }
    if (n->status != 200) {
        snprintf(why, sizeof(why), "POST heartbeat: status %d", n->status);
        failed(n, why);
        return;
    }
    count(n, M_HEARTBEATS, 1);
    set_up(n, true, NULL);
    n->backoff_ms = 0;
    n->phase = P_IDLE;
    schedule(n, n->interval_ms);
}

static const struct tmt_http_client_cbs cbs = {on_head, on_data, on_done};

static void heartbeat(struct tmt_node *n)
{
    json_t *body = json_pack("{s:I, s:s, s:s, s:f}", "seq", (json_int_t)++n->seq, "version",
                             n->version, "health", "ok", "load", 0.0);
    if (n->hooks.heartbeat != NULL)
        n->hooks.heartbeat(body, n->hooks.arg);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char path[400];
    int pl = snprintf(path, sizeof(path), "%s/v1/nodes/%s/heartbeat", n->base, n->id);
    struct tmt_http_header h[2] = {
        {{"Authorization", 13}, {n->auth, strlen(n->auth)}},
        {{"Content-Type", 12}, {"application/json", 16}},
    };
    struct tmt_http_client_req req = {
        .upstream = n->upstream,
        .method = TMT_HTTP_POST,
        .path = {path, (size_t)pl},
        .headers = h,
        .n_headers = 2,
        .body = {text, strlen(text)},
    };
    n->phase = P_HEARTBEAT;
    n->call = tmt_http_client_fetch(n->client, &req, &cbs, n);
    free(text);
}

static void cycle(struct tmt_node *n)
{
    if (n->phase != P_IDLE)
        return;
    char path[400];
    int pl = snprintf(path, sizeof(path), "%s/v1/nodes/%s/config", n->base, n->id);
    struct tmt_http_header h[2] = {
        {{"Authorization", 13}, {n->auth, strlen(n->auth)}},
        {{"If-None-Match", 13}, {n->etag, strlen(n->etag)}},
    };
    struct tmt_http_client_req req = {
        .upstream = n->upstream,
        .method = TMT_HTTP_GET,
        .path = {path, (size_t)pl},
        .headers = h,
        .n_headers = n->etag[0] != '\0' ? 2 : 1,
    };
    n->phase = P_CONFIG;
    n->call = tmt_http_client_fetch(n->client, &req, &cbs, n);
}

/* ---- report batches ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report_flush(struct tmt_node *n);

static void report_on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct tmt_node *n = arg;
    n->rstatus = resp->status;
}

static void report_on_data(void *arg, const char *p, size_t len)
{
    (void)arg;
    (void)p;
    (void)len;
}

static void report_pop(struct tmt_node *n)
{
    struct report_batch *b = &n->queue[n->q_head];
    free(b->buf);
    b->buf = NULL;
    n->q_head = (n->q_head + 1) % REPORTS_QUEUE_MAX;
    n->q_len--;
    count(n, M_REPORTS_QUEUED, -1);
}

static void report_on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct tmt_node *n = arg;
    n->rcall = NULL;
    if (n->q_len == 0)
        return;
    uint64_t seq = n->queue[n->q_head].seq;
    if (rc == 0 && n->rstatus == 200) {
        count(n, M_REPORTS_SENT, 1);
        report_pop(n);
        report_flush(n); /* the next one, if the control plane was away */
        return;
    }
    if (rc == 0 && n->rstatus >= 400 && n->rstatus < 500 && n->rstatus != 401 &&
        n->rstatus != 403 && n->rstatus != 429) {
        /* Refused for what it is: sending it again would not change that. */
        tmt_log(TMT_LOG_ERROR, "node", "report batch refused by the control plane; dropped",
                "seq=%llu status=%d", (unsigned long long)seq, n->rstatus);
        count(n, M_REPORTS_DROPPED, 1);
        report_pop(n);
        report_flush(n);
        return;
    }
    /* Unreachable or failing: kept, tried again with the next batch. */
    tmt_log(TMT_LOG_DEBUG, "node", "report batch not sent; kept", "seq=%llu why=\"%s\"",
            (unsigned long long)seq, rc != 0 ? err->msg : "error status");
}

static const struct tmt_http_client_cbs report_cbs = {report_on_head, report_on_data,
                                                      report_on_done};

static void report_flush(struct tmt_node *n)
{
    if (n->rcall != NULL || n->q_len == 0)
        return;
    struct report_batch *b = &n->queue[n->q_head];
    char path[400];
    int pl = snprintf(path, sizeof(path), "%s/v1/nodes/%s/reports", n->base, n->id);
    struct tmt_http_header h[3] = {
        {{"Authorization", 13}, {n->auth, strlen(n->auth)}},
        {{"Content-Type", 12}, {"application/json", 16}},
        {{"Content-Encoding", 16}, {"zstd", 4}},
    };
    struct tmt_http_client_req req = {
        .upstream = n->upstream,
        .method = TMT_HTTP_POST,
        .path = {path, (size_t)pl},
        .headers = h,
        .n_headers = 3,
        .body = {b->buf, b->len},
    };
    n->rstatus = 0;
    n->rcall = tmt_http_client_fetch(n->client, &req, &report_cbs, n);
}

/* One batch: what the daemon reports since the last one, numbered, compressed, queued. */
static void report_make(struct tmt_node *n)
{
    int64_t now = wall_ms();
    json_t *body =
        json_pack("{s:s, s:I, s:I, s:I}", "boot", n->boot, "seq", (json_int_t)(n->rseq + 1),
                  "from_ms", (json_int_t)n->last_report_ms, "to_ms", (json_int_t)now);
    n->hooks.report(body, n->hooks.arg);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t len = strlen(text), cap = ZSTD_compressBound(len);
    void *z = tmt_xmalloc(cap);
    size_t zl = ZSTD_compress(z, cap, text, len, REPORT_ZSTD_LEVEL);
    free(text);
    if (ZSTD_isError(zl)) {
        tmt_log(TMT_LOG_ERROR, "node", "report batch not compressed; dropped", "why=\"%s\"",
                ZSTD_getErrorName(zl));
        free(z);
        count(n, M_REPORTS_DROPPED, 1);
        return;
    }
    n->rseq++;
    n->last_report_ms = now;
    if (n->q_len == REPORTS_QUEUE_MAX) {
        tmt_log(TMT_LOG_WARN, "node", "report queue full; the oldest batch is dropped", "seq=%llu",
                (unsigned long long)n->queue[n->q_head].seq);
        count(n, M_REPORTS_DROPPED, 1);
        report_pop(n);
    }
    struct report_batch *b = &n->queue[(n->q_head + n->q_len) % REPORTS_QUEUE_MAX];
    *b = (struct report_batch){n->rseq, z, zl};
    n->q_len++;
    count(n, M_REPORTS_QUEUED, 1);
}

static void on_report_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tmt_node *n = arg;
    report_make(n);
    report_flush(n);
}

struct tmt_node *tmt_node_start(struct tmt_loop *main_loop, const struct tmt_node_conf *c,
                                const char *version, const struct tmt_node_hooks *hooks,
                                unsigned metrics_shard, struct tmt_err *err)
{
    if (c->control_url[0] == '\0')
        return NULL;
    if (tmt_node_conf_check(c, err) != 0)
        return NULL;
    struct tmt_node *n = tmt_xcalloc(1, sizeof(*n));
    n->magic = NODE_MAGIC;
    n->loop = main_loop;
    n->shard = metrics_shard;
    (void)parse_url(c->control_url, n->upstream, sizeof(n->upstream), n->base, sizeof(n->base));
    snprintf(n->id, sizeof(n->id), "%s", c->id);
    snprintf(n->version, sizeof(n->version), "%s", version);
    char cred[TMT_SECRET_MAX];
    size_t cl = 0;
    if (tmt_secret_load("node.credential_file", c->credential_file, cred, &cl, err) != TMT_OK) {
        free(n);
        return NULL;
    }
    snprintf(n->auth, sizeof(n->auth), "Bearer %.*s", (int)cl, cred);
    memset(cred, 0, sizeof(cred));
    n->state_file = c->state_file[0] != '\0' ? tmt_xstrdup(c->state_file) : NULL;
    n->hooks = *hooks;
    n->interval_ms = DEFAULT_INTERVAL_MS;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.connect_timeout_ms = 2000;
    o.response_timeout_ms = 5000;
    o.read_timeout_ms = 5000;
    o.max_idle_per_upstream = 1;
    n->client = tmt_http_client_new(main_loop, &o);
    n->timer = event_new(tmt_loop_base(main_loop), -1, 0, on_timer, n);
    n->report_ms = hooks->report != NULL ? c->report_interval_ms : 0;
    if (n->report_ms > 0) {
        unsigned char r[8];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
            uint64_t t = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);
            memcpy(r, &t, sizeof(r));
        }
        for (size_t i = 0; i < sizeof(r); i++)
            snprintf(n->boot + 2 * i, 3, "%02x", r[i]);
        n->queue = tmt_xcalloc(REPORTS_QUEUE_MAX, sizeof(*n->queue));
        n->last_report_ms = wall_ms();
        n->report_timer = event_new(tmt_loop_base(main_loop), -1, EV_PERSIST, on_report_timer, n);
        struct timeval tv = {(time_t)(n->report_ms / 1000),
                             (suseconds_t)(n->report_ms % 1000) * 1000};
        event_add(n->report_timer, &tv);
    }
    load_state(n);
    schedule(n, 0);
    tmt_log(TMT_LOG_INFO, "node", "managed by the control plane", "url=%s node=%s", c->control_url,
            n->id);
    return n;
}

void tmt_node_stop(struct tmt_node **np)
{
    struct tmt_node *n = *np;
    if (n == NULL)
        return;
    TMT_CHECK_OBJ(n, NODE_MAGIC);
    if (n->call != NULL)
        tmt_http_call_cancel(&n->call);
    if (n->rcall != NULL)
        tmt_http_call_cancel(&n->rcall);
    event_free(n->timer);
    if (n->report_timer != NULL)
        event_free(n->report_timer);
    while (n->q_len > 0)
        report_pop(n);
    free(n->queue);
    tmt_http_client_free(&n->client);
    if (n->up)
        count(n, M_UP, -1);
    free(n->state_file);
    free(n->buf);
    memset(n->auth, 0, sizeof(n->auth));
    n->magic = 0;
    free(n);
    *np = NULL;
}

bool tmt_node_control_up(const struct tmt_node *n)
{
    return n != NULL && n->up;
}

char *tmt_node_pushed_at_start(const struct tmt_node_conf *c)
{
    if (c->control_url[0] == '\0' || c->state_file[0] == '\0')
        return NULL;
    json_t *o = json_load_file(c->state_file, JSON_REJECT_DUPLICATES, NULL);
    const char *set = json_string_value(json_object_get(o, "settings"));
    char *out = set != NULL && set[0] != '\0' ? tmt_xstrdup(set) : NULL;
    json_decref(o);
    return out;
}

/* ---- report helpers ---- */

static uint64_t metric_now(const struct tmt_metrics *m, const char *name, const char *labels)
{
    long slot = tmt_metrics_find(m, name, labels);
    return slot >= 0 ? tmt_metrics_value(m, (size_t)slot) : 0;
}

void tmt_node_report_metrics(json_t *body, const struct tmt_metrics *m,
                             const struct tmt_node_report_field *f, size_t n, uint64_t *last)
{
    static const char *const upper[TMT_NODE_REPORT_LATENCY] = {
        "1",   "2",   "5",    "10",   "20",   "50",    "100",
        "200", "500", "1000", "2000", "5000", "10000", "inf"};
    json_t *counters = json_object(), *gauges = json_object(), *lat = json_array();
    for (size_t i = 0; i < n; i++) {
        uint64_t v = metric_now(m, f[i].metric, f[i].labels);
        if (f[i].gauge) {
            json_object_set_new(gauges, f[i].field, json_integer((json_int_t)v));
        } else {
            json_object_set_new(counters, f[i].field, json_integer((json_int_t)(v - last[i])));
            last[i] = v;
        }
    }
    for (size_t b = 0; b < TMT_NODE_REPORT_LATENCY; b++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "ms=\"%s\"", upper[b]);
        uint64_t v = metric_now(m, "tmt_http_response_time_total", labels);
        json_array_append_new(lat, json_integer((json_int_t)(v - last[n + b])));
        last[n + b] = v;
    }
    json_object_set_new(body, "counters", counters);
    json_object_set_new(body, "gauges", gauges);
    json_object_set_new(body, "latency_ms", lat);
}
