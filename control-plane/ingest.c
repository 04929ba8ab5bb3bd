/*
 * ingest.c: a show's media made by a shield's transcode job.
 *
 * POST /v1/shows/{id}/ingest {"source"[, "ladder", "preset", "segment_duration"]} names a source
 * file under the shields' jobs.source_root. The call picks the asset id ({show}-v{n}, n counting
 * the show's ingests) and a healthy shield with an admin_url (rendezvous on the asset), marks
 * the show processing and answers 202 at once. The rest is the follower's: a timer on the main
 * loop that walks the ingests in progress, one HTTP call at a time, with the shield's admin
 * credential (cp_node_admin_key, which the shield got in its config):
 *
 *   submitting  POST {admin_url}/v1/jobs {"asset","source",...}   → running, or failed on 4xx
 *   running     GET  {admin_url}/v1/jobs/{asset}                  → progress, then published
 *                                                                   (asset_id set) or failed
 *
 * Everything the follower knows is in the store (the show's "ingest" object and an
 * "ingest:{show}" index key), so a restarted control plane carries on where it was; the job API
 * is idempotent (a job is named by its asset), so a repeated POST is harmless. A shield that
 * cannot be reached, or that refuses the credential (it has not fetched its config yet), is
 * retried at every tick with the reason in ingest.last_error; DELETE /v1/shows/{id}/ingest
 * gives up on an ingest (the show fails; the job, if any, is left to the shield).
 *
 * Store keys:
 *   ingest:{sid}  "1" while the show's ingest is in progress
 *   show:{sid}    gains "ingests" (a count) and "ingest": {"asset_id","shield","source",
 *                 ["ladder","preset","segment_duration"],"state","error","last_error",
 *                 "percent","started_at","finished_at"}
 */
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "tmt/client.h"
#include "tmt/log.h"
#include "tmt/loop.h"

#define TICK_MS 1000
#define BODY_MAX (64 * 1024)
#define SOURCE_MAX 1024

/* ---- the API ---- */

static const char *ingest_state(json_t *show)
{
    return json_string_value(json_object_get(json_object_get(show, "ingest"), "state")) ?: "";
}

static bool in_progress(json_t *show)
{
    const char *st = ingest_state(show);
    return strcmp(st, "submitting") == 0 || strcmp(st, "running") == 0;
}

void cp_shows_ingest(struct cp_call *c)
{
    static const char *const fields[] = {"source", "ladder", "preset", "segment_duration", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *source = cp_json_string(c, o, "source", true, 1, SOURCE_MAX, &bad);
    const char *ladder = bad ? NULL : cp_json_string(c, o, "ladder", false, 1, 256, &bad);
    const char *preset = bad ? NULL : cp_json_string(c, o, "preset", false, 1, 16, &bad);
    json_t *seg = json_object_get(o, "segment_duration");
    if (!bad && seg != NULL &&
        (!json_is_number(seg) || json_number_value(seg) < 1 || json_number_value(seg) > 30)) {
        cp_reply_error(c, 422, "invalid field", "\"segment_duration\" is 1 to 30 seconds");
        bad = true;
    }
    if (bad) {
        json_decref(o);
        return;
    }
    char key[100], ikey[100];
    snprintf(key, sizeof(key), "show:%.*s", (int)c->arg[0].len, c->arg[0].p);
    snprintf(ikey, sizeof(ikey), "ingest:%.*s", (int)c->arg[0].len, c->arg[0].p);
    pthread_mutex_lock(&c->cp->mu);
    json_t *s = NULL;
    int rc = cp_get_json(c->cp, key, &s, c);
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such show");
    if (rc != 1)
        goto out;
    json_t *cur = json_object_get(s, "ingest");
    if (in_progress(s)) {
        cp_reply_error(c, 409, "ingest in progress",
                       "asset %s is being made on shield %s; wait, or DELETE the ingest",
                       json_string_value(json_object_get(cur, "asset_id")) ?: "?",
                       json_string_value(json_object_get(cur, "shield")) ?: "?");
        goto out;
    }
    json_int_t n = json_integer_value(json_object_get(s, "ingests")) + 1;
    char asset[CP_ID_MAX + 16];
    snprintf(asset, sizeof(asset), "%.*s-v%lld", (int)c->arg[0].len, c->arg[0].p, (long long)n);
    if (strlen(asset) > CP_ID_MAX) {
        cp_reply_error(c, 422, "invalid field", "the show id is too long to name its assets");
        goto out;
    }
    size_t n_shields = 0;
    json_t *shield = cp_pick_job_shield(c, asset, &n_shields);
    if (shield == NULL) {
        cp_add_header(c, "Retry-After", "10");
        cp_reply_error(c, 503, "no shield available",
                       "none of the %zu provisioned shields is healthy, active and has an "
                       "admin_url",
                       n_shields);
        goto out;
    }
    json_t *ing =
        json_pack("{s:s, s:O, s:s, s:s, s:n, s:n, s:i, s:o, s:n}", "asset_id", asset, "shield",
                  json_object_get(shield, "id"), "source", source, "state", "submitting", "error",
                  "last_error", "percent", 0, "started_at", cp_time_json(c->now), "finished_at");
    json_decref(shield);
    if (ladder != NULL)
        json_object_set_new(ing, "ladder", json_string(ladder));
    if (preset != NULL)
        json_object_set_new(ing, "preset", json_string(preset));
    if (seg != NULL)
        json_object_set(ing, "segment_duration", seg);
    json_object_set_new(s, "ingest", ing);
    json_object_set_new(s, "ingests", json_integer(n));
    json_object_set_new(s, "state", json_string("processing"));
    json_object_set_new(s, "updated", json_integer(c->now));
    struct cp_batch b = {0};
    cp_batch_put_json(&b, key, s);
    cp_batch_put(&b, ikey, "1", 1);
    if (cp_batch_commit(c->cp, &b, c) == 0) {
        tmt_log(TMT_LOG_INFO, "ingest", "ingest started", "show=%.*s asset=%s source=\"%s\"",
                (int)c->arg[0].len, c->arg[0].p, asset, source);
        cp_reply_json(c, 202, cp_show_view(c, s));
    }
out:
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(s);
    json_decref(o);
}

void cp_shows_ingest_abandon(struct cp_call *c)
{
    char key[100], ikey[100];
    snprintf(key, sizeof(key), "show:%.*s", (int)c->arg[0].len, c->arg[0].p);
    snprintf(ikey, sizeof(ikey), "ingest:%.*s", (int)c->arg[0].len, c->arg[0].p);
    pthread_mutex_lock(&c->cp->mu);
    json_t *s = NULL;
    int rc = cp_get_json(c->cp, key, &s, c);
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such show");
    if (rc == 1 && !in_progress(s))
        cp_reply_error(c, 409, "no ingest in progress", "the show's last ingest has %s",
                       ingest_state(s)[0] != '\0' ? ingest_state(s) : "never run");
    if (rc == 1 && in_progress(s)) {
        json_t *ing = json_object_get(s, "ingest");
        json_object_set_new(ing, "state", json_string("failed"));
        json_object_set_new(ing, "error", json_string("abandoned by an operator"));
        json_object_set_new(ing, "finished_at", cp_time_json(c->now));
        const char *asset = json_string_value(json_object_get(s, "asset_id"));
        json_object_set_new(
            s, "state", json_string(asset != NULL && asset[0] != '\0' ? "published" : "failed"));
        json_object_set_new(s, "updated", json_integer(c->now));
        struct cp_batch b = {0};
        cp_batch_put_json(&b, key, s);
        cp_batch_del(&b, ikey);
        if (cp_batch_commit(c->cp, &b, c) == 0)
            cp_reply_json(c, 200, cp_show_view(c, s));
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(s);
}

/* ---- the follower ---- */

struct cp_ingest {
    struct cp *cp;
    struct tmt_loop *loop;
    struct event *ev;
    struct tmt_http_client *cli;
    char **ids; /* shows with an ingest in progress, this round */
    size_t n, next;
    struct tmt_http_call *call;
    char show[CP_ID_MAX + 1];
    char asset[CP_ID_MAX + 1];
    bool submit; /* the call in flight is the POST */
    int status;
    char *body;
    size_t len;
    bool too_big;
};

static bool collect(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)val;
    struct cp_ingest *g = arg;
    char **ids = realloc(g->ids, (g->n + 1) * sizeof(*ids));
    TMT_ASSERT(ids != NULL);
    g->ids = ids;
    char *id = tmt_xmalloc(rest.len + 1);
    memcpy(id, rest.p, rest.len);
    id[rest.len] = '\0';
    g->ids[g->n++] = id;
    return true;
}

static void round_free(struct cp_ingest *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->ids[i]);
    free(g->ids);
    g->ids = NULL;
    g->n = g->next = 0;
}

/*
 * Changes the show's ingest under the lock: fn edits the fresh record (the ingest must still be
 * the one for g->asset, else nothing is written). Returns fn's result, false when not written.
 */
static bool change(struct cp_ingest *g, bool (*fn)(struct cp_ingest *, json_t *, json_t *, void *),
                   void *arg)
{
    char key[100], ikey[100];
    snprintf(key, sizeof(key), "show:%s", g->show);
    snprintf(ikey, sizeof(ikey), "ingest:%s", g->show);
    bool wrote = false;
    pthread_mutex_lock(&g->cp->mu);
    json_t *s = NULL;
    if (cp_get_json(g->cp, key, &s, NULL) == 1 && in_progress(s)) {
        json_t *ing = json_object_get(s, "ingest");
        if (strcmp(json_string_value(json_object_get(ing, "asset_id")) ?: "", g->asset) == 0 &&
            fn(g, s, ing, arg)) {
            json_object_set_new(s, "updated", json_integer(cp_wall_now()));
            struct cp_batch b = {0};
            cp_batch_put_json(&b, key, s);
            if (!in_progress(s))
                cp_batch_del(&b, ikey);
            wrote = cp_batch_commit(g->cp, &b, NULL) == 0;
        }
    }
    pthread_mutex_unlock(&g->cp->mu);
    json_decref(s);
    return wrote;
}

static bool set_last_error(struct cp_ingest *g, json_t *s, json_t *ing, void *arg)
{
    (void)g;
    (void)s;
    const char *why = arg;
    const char *was = json_string_value(json_object_get(ing, "last_error"));
    if (was != NULL && strcmp(was, why) == 0)
        return false; /* unchanged: no write */
    json_object_set_new(ing, "last_error", json_string(why));
    return true;
}

static bool set_failed(struct cp_ingest *g, json_t *s, json_t *ing, void *arg)
{
    (void)g;
    json_object_set_new(ing, "state", json_string("failed"));
    json_object_set_new(ing, "error", json_string(arg));
    json_object_set_new(ing, "finished_at", cp_time_json(cp_wall_now()));
    /* A show that played before keeps playing its old asset. */
    const char *asset = json_string_value(json_object_get(s, "asset_id"));
    json_object_set_new(s, "state",
                        json_string(asset != NULL && asset[0] != '\0' ? "published" : "failed"));
    return true;
}

static bool set_running(struct cp_ingest *g, json_t *s, json_t *ing, void *arg)
{
    (void)g;
    (void)s;
    json_t *job = arg;
    json_object_set_new(ing, "state", json_string("running"));
    json_object_set_new(ing, "last_error", json_null());
    double pct = json_number_value(json_object_get(json_object_get(job, "progress"), "percent"));
    json_object_set_new(ing, "percent", json_real((double)(int)(pct * 10) / 10));
    return true;
}

static bool set_resubmit(struct cp_ingest *g, json_t *s, json_t *ing, void *arg)
{
    (void)g;
    (void)s;
    (void)arg;
    json_object_set_new(ing, "state", json_string("submitting"));
    json_object_set_new(ing, "last_error",
                        json_string("the shield has no such job any more; submitting it again"));
    return true;
}

static bool set_published(struct cp_ingest *g, json_t *s, json_t *ing, void *arg)
{
    json_t *job = arg;
    json_object_set_new(ing, "state", json_string("succeeded"));
    json_object_set_new(ing, "percent", json_real(100));
    json_object_set_new(ing, "last_error", json_null());
    json_object_set_new(ing, "finished_at", cp_time_json(cp_wall_now()));
    json_object_set_new(s, "asset_id", json_string(g->asset));
    json_object_set_new(s, "state", json_string("published"));
    double d = json_number_value(json_object_get(json_object_get(job, "result"), "duration_s"));
    if (json_number_value(json_object_get(s, "duration")) <= 0 && d > 0)
        json_object_set_new(s, "duration", json_real((double)(int64_t)(d * 1000) / 1000));
    return true;
}

static void step(struct cp_ingest *g);

static void on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct cp_ingest *g = arg;
    g->status = resp->status;
}

static void on_data(void *arg, const char *p, size_t len)
{
    struct cp_ingest *g = arg;
    if (g->too_big || g->len + len > BODY_MAX) {
        g->too_big = true;
        return;
    }
    char *b = realloc(g->body, g->len + len + 1);
    TMT_ASSERT(b != NULL);
    g->body = b;
    memcpy(g->body + g->len, p, len);
    g->len += len;
    g->body[g->len] = '\0';
}

/* The shield's answer to the call for the current show. */
static void outcome(struct cp_ingest *g, int rc, const struct tmt_err *err)
{
    char why[600];
    if (rc != 0) {
        snprintf(why, sizeof(why), "the shield did not answer: %s", err->msg);
        change(g, set_last_error, why);
        return;
    }
    json_t *doc = g->body != NULL && !g->too_big ? json_loads(g->body, 0, NULL) : NULL;
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    if (g->status == 401 || g->status == 403) {
        change(g, set_last_error,
               "the shield refused the control plane's credential (has it fetched its config "
               "since it was provisioned?)");
    } else if (g->submit && (g->status == 200 || g->status == 201)) {
        if (change(g, set_running, doc))
            tmt_log(TMT_LOG_INFO, "ingest", "job accepted by the shield", "show=%s asset=%s",
                    g->show, g->asset);
    } else if (g->submit && g->status >= 400 && g->status < 500) {
        snprintf(why, sizeof(why), "the shield refused the job (%d): %s", g->status,
                 detail != NULL ? detail : "no reason given");
        if (change(g, set_failed, why))
            tmt_log(TMT_LOG_ERROR, "ingest", "ingest failed", "show=%s asset=%s why=\"%s\"",
                    g->show, g->asset, why);
    } else if (!g->submit && g->status == 404) {
        change(g, set_resubmit, NULL);
    } else if (!g->submit && g->status == 200) {
        const char *st = json_string_value(json_object_get(doc, "state")) ?: "";
        if (strcmp(st, "succeeded") == 0) {
            if (change(g, set_published, doc))
                tmt_log(TMT_LOG_INFO, "ingest", "show published", "show=%s asset=%s", g->show,
                        g->asset);
        } else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0) {
            const char *e = json_string_value(json_object_get(doc, "error"));
            snprintf(why, sizeof(why), "the transcode job %s: %s", st, e != NULL ? e : "?");
            if (change(g, set_failed, why))
                tmt_log(TMT_LOG_ERROR, "ingest", "ingest failed", "show=%s asset=%s why=\"%s\"",
                        g->show, g->asset, why);
        } else {
            change(g, set_running, doc);
        }
    } else {
        snprintf(why, sizeof(why), "the shield answered %d: %s", g->status,
                 detail != NULL ? detail : "no reason given");
        change(g, set_last_error, why);
    }
    json_decref(doc);
}

static void on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct cp_ingest *g = arg;
    g->call = NULL;
    outcome(g, rc, err);
    free(g->body);
    g->body = NULL;
    g->len = 0;
    g->too_big = false;
    step(g);
}

/* Starts the call for show id, or returns false when it needs none. */
static bool start(struct cp_ingest *g, const char *id)
{
    char key[100];
    snprintf(key, sizeof(key), "show:%s", id);
    json_t *s = NULL;
    if (cp_get_json(g->cp, key, &s, NULL) != 1 || !in_progress(s)) {
        /* Deleted, or finished by an operator: the index entry goes. */
        pthread_mutex_lock(&g->cp->mu);
        json_t *again = NULL;
        int rc = cp_get_json(g->cp, key, &again, NULL);
        if (rc == 0 || (rc == 1 && !in_progress(again))) {
            struct cp_batch b = {0};
            snprintf(key, sizeof(key), "ingest:%s", id);
            cp_batch_del(&b, key);
            (void)cp_batch_commit(g->cp, &b, NULL);
        }
        pthread_mutex_unlock(&g->cp->mu);
        json_decref(again);
        json_decref(s);
        return false;
    }
    json_t *ing = json_object_get(s, "ingest");
    snprintf(g->show, sizeof(g->show), "%s", id);
    snprintf(g->asset, sizeof(g->asset), "%s",
             json_string_value(json_object_get(ing, "asset_id")) ?: "");
    const char *nid = json_string_value(json_object_get(ing, "shield")) ?: "";
    json_t *node = NULL;
    char nkey[100], addr[80];
    snprintf(nkey, sizeof(nkey), "node:%s", nid);
    if (cp_get_json(g->cp, nkey, &node, NULL) != 1 ||
        !cp_node_admin_addr(node, addr, sizeof(addr))) {
        change(g, set_failed, "the shield chosen for the job was removed or lost its admin_url");
        json_decref(node);
        json_decref(s);
        return false;
    }
    json_decref(node);
    char cred[64], auth[96];
    cp_node_admin_key(g->cp, nid, cred, sizeof(cred));
    int al = snprintf(auth, sizeof(auth), "Bearer %s", cred);
    g->submit = strcmp(ingest_state(s), "submitting") == 0;
    char path[160];
    char *body = NULL;
    if (g->submit) {
        json_t *job =
            json_pack("{s:s, s:O}", "asset", g->asset, "source", json_object_get(ing, "source"));
        static const char *const opt[] = {"ladder", "preset", "segment_duration"};
        for (size_t i = 0; i < TMT_ARRAY_LEN(opt); i++) {
            if (json_object_get(ing, opt[i]) != NULL)
                json_object_set(job, opt[i], json_object_get(ing, opt[i]));
        }
        body = json_dumps(job, JSON_COMPACT);
        json_decref(job);
        snprintf(path, sizeof(path), "/v1/jobs");
    } else {
        snprintf(path, sizeof(path), "/v1/jobs/%s", g->asset);
    }
    const struct tmt_http_header h[] = {
        {TMT_SLICE_LIT("Authorization"), {auth, (size_t)al}},
        {TMT_SLICE_LIT("Content-Type"), TMT_SLICE_LIT("application/json")},
    };
    struct tmt_http_client_req req = {
        .upstream = addr,
        .method = g->submit ? TMT_HTTP_POST : TMT_HTTP_GET,
        .path = {path, strlen(path)},
        .headers = h,
        .n_headers = g->submit ? 2 : 1,
        .body = {body, body != NULL ? strlen(body) : 0},
    };
    static const struct tmt_http_client_cbs cbs = {on_head, on_data, on_done};
    g->status = 0;
    g->call = tmt_http_client_fetch(g->cli, &req, &cbs, g);
    OPENSSL_cleanse(auth, sizeof(auth));
    OPENSSL_cleanse(cred, sizeof(cred));
    free(body);
    json_decref(s);
    return true;
}

/* The next show of the round with a call to make; the round ends when none is left. */
static void step(struct cp_ingest *g)
{
    while (g->next < g->n) {
        const char *id = g->ids[g->next++];
        if (start(g, id))
            return;
    }
    round_free(g);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cp_ingest *g = arg;
    if (g->call != NULL || g->n != 0)
        return; /* the last round is still going */
    if (cp_scan(g->cp, "ingest:", collect, g, NULL) != 0) {
        round_free(g);
        return;
    }
    step(g);
}

struct cp_ingest *cp_ingest_start(struct cp *cp, struct tmt_loop *loop)
{
    struct cp_ingest *g = tmt_xcalloc(1, sizeof(*g));
    g->cp = cp;
    g->loop = loop;
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.max_idle_per_upstream = 2;
    g->cli = tmt_http_client_new(loop, &o);
    g->ev = event_new(tmt_loop_base(loop), -1, EV_PERSIST, on_tick, g);
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    event_add(g->ev, &tv);
    return g;
}

void cp_ingest_stop(struct cp_ingest **p)
{
    struct cp_ingest *g = *p;
    if (g == NULL)
        return;
    event_free(g->ev);
    tmt_http_call_cancel(&g->call);
    tmt_http_client_free(&g->cli);
    round_free(g);
    free(g->body);
    free(g);
    *p = NULL;
}
