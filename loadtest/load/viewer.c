/*
 * viewer.c: viewer mode. Each worker runs its share of viewers.count simulated players; viewer i
 * starts at i * ramp / count. A session picks an asset by Zipf popularity over viewers.assets,
 * fetches the master playlist, picks a variant, fetches its media playlist and init segment, and
 * then the segments in order until it abandons (the watched fraction is exponential with mean
 * viewers.watch_mean, capped at the whole asset); then, after viewers.think, a new session.
 *
 * ABR: the throughput of each segment (bits / full response time) feeds an average; the next
 * segment comes from the highest BANDWIDTH at most abr_safety times that average, and the player
 * only switches up while its buffer holds at least one segment. Pacing (viewers.pace=realtime):
 * playback starts when the first segment arrives; segment k is due at start + its position +
 * stalls so far; one that arrives later stalls playback for the difference (the rebuffering
 * estimate); the next request waits while the buffer is above viewers.buffer. With pace=fast
 * the segments go back to back and no stall is counted.
 *
 * A playlist that fails (4xx, 5xx, unparsable) ends the session; the errors are counted by the
 * request layer. The viewer's playlists live for its session.
 *
 * Connections: with viewers.connection=shared a worker's viewers take connections from the
 * worker's pool; with per-viewer each viewer has a client of its own that keeps one idle
 * connection with no idle timeout, so a viewer holds one keep-alive connection across its
 * requests and sessions (a new one only after the target closed it or a request failed).
 */
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_int.h"
#include "tmt/loop.h"

#define VIEWER_MAGIC 0x71e3e4a0u
#define VIEWER_MAX_VARIANTS 32
#define CTL_BODY_MAX (64 * 1024)

enum viewer_step { V_IDLE, V_CONTROL, V_MASTER, V_MEDIA, V_INIT, V_SEG, V_DONE };

struct viewer {
    unsigned magic;
    struct viewers *vs;
    struct event *timer;
    struct load_client *client; /* viewers.connection=per-viewer: its own; else NULL */
    size_t g;                   /* index among all viewers (control.c's credentials) */
    struct tmt_http_call *ctl_call, *hb_call;
    struct event *hb_timer; /* lease heartbeats (control.heartbeat) */
    char lease[80];         /* the lease of the latest POST /v1/playback */
    int hb_status;
    char *ctl_body; /* the POST /v1/playback answer, CTL_BODY_MAX at most */
    size_t ctl_len;
    int ctl_status;
    enum viewer_step step;
    struct tmt_m3u8 master;
    struct tmt_m3u8 media[VIEWER_MAX_VARIANTS];
    bool have_media[VIEWER_MAX_VARIANTS], have_init[VIEWER_MAX_VARIANTS];
    size_t variant, seg, last_seg;
    double tput_bps;
    uint64_t play_start_ms, queued_ms, stall_ms; /* queued: media time downloaded */
    bool playing;
    char master_path[1024];
    char path[2048];
};

struct viewers {
    struct load_worker *w;
    struct tmt_http_client *ctl; /* to control.url, when tokens come from there */
    bool closing;
    struct tmt_zipf *zipf;
    struct tmt_rng rng;
    struct viewer *v;
    size_t n, active;
};

static void viewer_next(struct viewer *v);
static void session_start(struct viewer *v);

static uint64_t now_ms(struct viewer *v)
{
    return tmt_loop_now_ms(load_worker_loop(v->vs->w));
}

static void session_end(struct viewer *v, bool abandoned)
{
    struct load_stats *st = load_worker_stats(v->vs->w);
    if (abandoned)
        st->sessions_abandoned++;
    tmt_m3u8_fini(&v->master);
    for (size_t i = 0; i < VIEWER_MAX_VARIANTS; i++) {
        if (v->have_media[i])
            tmt_m3u8_fini(&v->media[i]);
        v->have_media[i] = v->have_init[i] = false;
    }
    v->step = V_IDLE;
    uint64_t think = load_worker_plan(v->vs->w)->conf->think_ms;
    load_timer_arm(v->timer, think);
}

static void viewer_stop(struct viewer *v)
{
    v->step = V_DONE;
    tmt_m3u8_fini(&v->master);
    for (size_t i = 0; i < VIEWER_MAX_VARIANTS; i++) {
        if (v->have_media[i])
            tmt_m3u8_fini(&v->media[i]);
        v->have_media[i] = false;
    }
    if (--v->vs->active == 0)
        load_worker_driver_done(v->vs->w);
}

/* Resolves uri against base into v->path (with nothing else); false when it cannot. */
static bool resolve(struct viewer *v, const char *base, const char *uri)
{
    const struct load_plan *p = load_worker_plan(v->vs->w);
    return tmt_m3u8_resolve(base, uri, p->upstream, v->path, sizeof(v->path)) > 0;
}

static void on_result(void *arg, const struct load_result *res);

/* Starts the request of v->path; false (the viewer stopped) when the run allows no more. */
static bool fetch(struct viewer *v, bool keep)
{
    bool ok = v->client != NULL ? load_fetch_via(v->vs->w, v->client, v->path, keep, on_result, v)
                                : load_fetch(v->vs->w, v->path, keep, on_result, v);
    if (!ok)
        viewer_stop(v);
    return ok;
}

/* The variant ABR picks: highest bandwidth under safety * throughput, else the lowest. */
static size_t pick_variant(struct viewer *v, double buffer_s)
{
    const struct load_plan *p = load_worker_plan(v->vs->w);
    size_t n = TMT_MIN(v->master.n_variants, (size_t)VIEWER_MAX_VARIANTS), best = 0, low = 0;
    double limit = v->tput_bps * p->abr_safety;
    uint64_t best_bw = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        uint64_t bw = v->master.variants[i].bandwidth;
        if (bw < v->master.variants[low].bandwidth)
            low = i;
        if ((double)bw <= limit && (!found || bw > best_bw)) {
            best = i;
            best_bw = bw;
            found = true;
        }
    }
    if (!found)
        best = low;
    /* with a thin buffer, never switch up */
    if (v->seg > 0 && buffer_s < 1.0 &&
        v->master.variants[best].bandwidth > v->master.variants[v->variant].bandwidth)
        best = v->variant;
    return best;
}

static double buffer_s(struct viewer *v)
{
    if (!v->playing)
        return (double)v->queued_ms / 1000;
    int64_t played = (int64_t)(now_ms(v) - v->play_start_ms) - (int64_t)v->stall_ms;
    return ((double)v->queued_ms - (double)played) / 1000;
}

/* Decides the next request of the session and starts it (or ends the session). */
static void viewer_next(struct viewer *v)
{
    const struct load_plan *p = load_worker_plan(v->vs->w);
    if (v->step == V_MASTER) {
        /* master parsed: pick the lowest variant to start with */
        v->variant = pick_variant(v, 0);
        v->step = V_MEDIA;
    }
    if (v->step == V_MEDIA && v->have_media[v->variant])
        v->step = V_INIT;
    if (v->step == V_MEDIA) {
        if (!resolve(v, v->master_path, v->master.variants[v->variant].uri)) {
            session_end(v, false);
            return;
        }
        fetch(v, true);
        return;
    }
    struct tmt_m3u8 *m = &v->media[v->variant];
    char base[2048];
    if (!resolve(v, v->master_path, v->master.variants[v->variant].uri)) {
        session_end(v, false);
        return;
    }
    snprintf(base, sizeof(base), "%s", v->path);
    if (v->step == V_INIT) {
        v->step = V_SEG;
        if (m->map_uri != NULL && !v->have_init[v->variant]) {
            v->have_init[v->variant] = true;
            if (!resolve(v, base, m->map_uri)) {
                session_end(v, false);
                return;
            }
            v->step = V_INIT;
            fetch(v, false);
            return;
        }
    }
    if (v->seg > v->last_seg || v->seg >= m->n_segs) {
        session_end(v, v->last_seg + 1 < m->n_segs);
        return;
    }
    if (p->conf->pace == 0 && v->playing) {
        double ahead = buffer_s(v) - (double)p->conf->buffer_ms / 1000;
        if (ahead > 0) {
            load_timer_arm(v->timer, (uint64_t)(ahead * 1000) + 1);
            return;
        }
    }
    if (!resolve(v, base, m->segs[v->seg].uri)) {
        session_end(v, false);
        return;
    }
    fetch(v, false);
}

static void on_segment(struct viewer *v, const struct load_result *res)
{
    const struct load_plan *p = load_worker_plan(v->vs->w);
    struct load_stats *st = load_worker_stats(v->vs->w);
    struct tmt_m3u8 *m = &v->media[v->variant];
    uint64_t now = now_ms(v);
    st->segments++;
    if (res->total_us > 0) {
        double bps = (double)res->bytes * 8e6 / (double)res->total_us;
        v->tput_bps = v->tput_bps == 0 ? bps : 0.7 * v->tput_bps + 0.3 * bps;
    }
    if (p->conf->pace == 0) {
        if (!v->playing) {
            v->playing = true;
            v->play_start_ms = now;
        } else {
            uint64_t due = v->play_start_ms + v->queued_ms + v->stall_ms;
            if (now > due) {
                st->stalls++;
                st->stall_ms += now - due;
                v->stall_ms += now - due;
            }
        }
    }
    v->queued_ms += m->segs[v->seg].dur_ms;
    v->seg++;
    size_t next = pick_variant(v, buffer_s(v));
    if (next != v->variant) {
        st->switches++;
        v->variant = next;
        v->step = V_MEDIA;
    }
}

static void on_result(void *arg, const struct load_result *res)
{
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    bool ok = res->rc == 0 && res->status >= 200 && res->status < 300;
    struct tmt_err err;
    tmt_err_clear(&err);
    switch (v->step) {
    case V_MASTER:
        if (!ok || res->body == NULL ||
            tmt_m3u8_parse(res->body, res->body_len, &v->master, &err) != 0 ||
            v->master.n_variants == 0) {
            session_end(v, false);
            return;
        }
        break;
    case V_MEDIA:
        if (!ok || res->body == NULL ||
            tmt_m3u8_parse(res->body, res->body_len, &v->media[v->variant], &err) != 0) {
            session_end(v, false);
            return;
        }
        v->have_media[v->variant] = true;
        {
            struct tmt_m3u8 *m = &v->media[v->variant];
            if (v->last_seg == SIZE_MAX && m->n_segs > 0) {
                const struct load_plan *p = load_worker_plan(v->vs->w);
                double f = tmt_rng_exp(&v->vs->rng, p->watch_mean);
                size_t n = f >= 1 ? m->n_segs : (size_t)ceil(f * (double)m->n_segs);
                v->last_seg = TMT_MAX(n, (size_t)1) - 1;
            }
        }
        v->step = V_INIT;
        break;
    case V_INIT:
        if (!ok) {
            session_end(v, false);
            return;
        }
        v->step = V_SEG;
        break;
    case V_SEG:
        if (!ok) {
            session_end(v, false);
            return;
        }
        on_segment(v, res);
        break;
    case V_IDLE:
    case V_CONTROL:
    case V_DONE:
        TMT_UNREACHABLE("a result for a viewer that sent nothing");
    }
    viewer_next(v);
}

/* The session's first request: its master playlist (v->master_path). */
static void session_play(struct viewer *v)
{
    snprintf(v->path, sizeof(v->path), "%s", v->master_path);
    v->step = V_MASTER;
    /* a session counts once its first request went out (not when the budget was spent) */
    if (fetch(v, true))
        load_worker_stats(v->vs->w)->sessions++;
}

static void ctl_on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    v->ctl_status = resp->status;
}

static void ctl_on_data(void *arg, const char *p, size_t len)
{
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    if (v->ctl_len + len > CTL_BODY_MAX)
        return;
    memcpy(v->ctl_body + v->ctl_len, p, len);
    v->ctl_len += len;
}

/* The control plane answered POST /v1/playback: play the asset with the token, or try again
 * after a second. */
static void ctl_on_done(void *arg, int rc, const struct tmt_err *err)
{
    (void)err;
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    v->ctl_call = NULL;
    if (v->vs->closing)
        return;
    if (load_worker_stopping(v->vs->w)) {
        viewer_stop(v);
        return;
    }
    const struct load_plan *p = load_worker_plan(v->vs->w);
    struct load_stats *st = load_worker_stats(v->vs->w);
    char token[4096], asset[256];
    if (rc == 0 && v->ctl_status >= 200 && v->ctl_status < 300 &&
        load_control_parse_playback(v->ctl_body, v->ctl_len, token, sizeof(token), asset,
                                    sizeof(asset), v->lease, sizeof(v->lease))) {
        /* the playback call renewed the lease: the next heartbeat is a period from now */
        if (p->conf->heartbeat_ms > 0)
            load_timer_arm(v->hb_timer, p->conf->heartbeat_ms);
        int n = snprintf(v->master_path, sizeof(v->master_path), "%s/t/%s/v/%s/master.m3u8",
                         p->prefix, token, asset);
        if (n > 0 && (size_t)n < sizeof(v->master_path)) {
            st->playbacks++;
            session_play(v);
            return;
        }
    }
    st->control_errors++;
    v->step = V_IDLE;
    load_timer_arm(v->timer, 1000);
}

static void hb_on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    v->hb_status = resp->status;
}

static void hb_on_done(void *arg, int rc, const struct tmt_err *err)
{
    (void)err;
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    v->hb_call = NULL;
    if (v->vs->closing)
        return;
    struct load_stats *st = load_worker_stats(v->vs->w);
    if (rc == 0 && v->hb_status == 200)
        st->heartbeats++;
    else
        st->control_errors++; /* the lease ended: the next session takes a new one */
}

/* Keeps the viewer's lease alive while it plays: POST /v1/playback/{lease}/heartbeat. */
static void on_hb_timer(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    const struct load_plan *p = load_worker_plan(v->vs->w);
    if (v->step == V_DONE || load_worker_stopping(v->vs->w))
        return;
    load_timer_arm(v->hb_timer, p->conf->heartbeat_ms);
    if (v->hb_call != NULL || v->lease[0] == '\0')
        return;
    const struct load_cred *cr = &p->creds[v->g];
    char auth[160], path[160];
    snprintf(auth, sizeof(auth), "Bearer %s", cr->session);
    snprintf(path, sizeof(path), "/v1/playback/%s/heartbeat", v->lease);
    const struct tmt_http_header hs[] = {{{"Authorization", 13}, {auth, strlen(auth)}}};
    struct tmt_http_client_req req = {.upstream = p->control_upstream,
                                      .method = TMT_HTTP_POST,
                                      .path = {path, strlen(path)},
                                      .headers = hs,
                                      .n_headers = 1};
    static const struct tmt_http_client_cbs cbs = {hb_on_head, NULL, hb_on_done};
    v->hb_status = 0;
    v->hb_call = tmt_http_client_fetch(v->vs->ctl, &req, &cbs, v);
}

static void session_start(struct viewer *v)
{
    struct viewers *vs = v->vs;
    const struct load_plan *p = load_worker_plan(vs->w);
    size_t k = tmt_zipf_rank(vs->zipf, tmt_rng_unit(&vs->rng));
    const char *asset = p->conf->assets.items[k];
    memset(&v->master, 0, sizeof(v->master));
    v->seg = 0;
    v->last_seg = SIZE_MAX;
    v->variant = 0;
    v->tput_bps = 0;
    v->playing = false;
    v->queued_ms = v->stall_ms = 0;
    if (!p->control) {
        snprintf(v->master_path, sizeof(v->master_path), "%s/v/%s/master.m3u8", p->prefix, asset);
        session_play(v);
        return;
    }
    /* the show's asset and a token for this session, from the control plane */
    const struct load_cred *cr = &p->creds[v->g];
    char auth[160], body[256];
    snprintf(auth, sizeof(auth), "Bearer %s", cr->session);
    snprintf(body, sizeof(body), "{\"show_id\":\"%s\",\"device_id\":\"%s\"}", asset, cr->device);
    const struct tmt_http_header hs[] = {
        {{"Authorization", 13}, {auth, strlen(auth)}},
        {{"Content-Type", 12}, {"application/json", 16}},
    };
    struct tmt_http_client_req req = {.upstream = p->control_upstream,
                                      .method = TMT_HTTP_POST,
                                      .path = {"/v1/playback", 12},
                                      .headers = hs,
                                      .n_headers = TMT_ARRAY_LEN(hs),
                                      .body = {body, strlen(body)}};
    static const struct tmt_http_client_cbs cbs = {ctl_on_head, ctl_on_data, ctl_on_done};
    if (v->ctl_body == NULL)
        v->ctl_body = tmt_xmalloc(CTL_BODY_MAX);
    v->ctl_len = 0;
    v->ctl_status = 0;
    v->step = V_CONTROL;
    v->ctl_call = tmt_http_client_fetch(vs->ctl, &req, &cbs, v);
}

static void on_timer(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct viewer *v;
    TMT_OBJ_CAST(v, arg, VIEWER_MAGIC);
    if (v->step == V_DONE)
        return;
    if (load_worker_stopping(v->vs->w)) {
        viewer_stop(v);
        return;
    }
    if (v->step == V_IDLE)
        session_start(v);
    else
        viewer_next(v);
}

void *load_viewers_start(struct load_worker *w)
{
    const struct load_plan *p = load_worker_plan(w);
    const struct load_conf *c = p->conf;
    struct viewers *vs = tmt_xcalloc(1, sizeof(*vs));
    vs->w = w;
    vs->zipf = tmt_zipf_new(c->assets.n, p->alpha);
    tmt_rng_seed(&vs->rng, (uint64_t)c->seed * 1000003u + load_worker_index(w));
    unsigned idx = load_worker_index(w);
    uint64_t total = (uint64_t)c->viewers;
    vs->n = (size_t)(total / p->workers + (idx < total % p->workers ? 1 : 0));
    vs->v = tmt_xcalloc(vs->n ? vs->n : 1, sizeof(*vs->v));
    vs->active = vs->n;
    if (p->control) {
        struct tmt_http_client_opts o;
        tmt_http_client_opts_default(&o);
        o.connect_timeout_ms = c->connect_timeout_ms;
        o.response_timeout_ms = o.read_timeout_ms = c->timeout_ms;
        vs->ctl = tmt_http_client_new(load_worker_loop(w), &o);
    }
    if (vs->n == 0) {
        load_worker_driver_done(w);
        return vs;
    }
    for (size_t i = 0; i < vs->n; i++) {
        struct viewer *v = &vs->v[i];
        v->magic = VIEWER_MAGIC;
        v->vs = vs;
        v->step = V_IDLE;
        v->timer = load_timer_new(w, on_timer, v);
        v->g = (size_t)i * p->workers + idx;
        if (p->control)
            v->hb_timer = load_timer_new(w, on_hb_timer, v);
        /* one idle connection, kept until the target closes it: a player's keep-alive */
        if (c->connection == 1)
            v->client = load_client_new(w, true);
        uint64_t global = (uint64_t)i * p->workers + idx;
        load_timer_arm(v->timer, total > 0 ? c->ramp_ms * global / total : 0);
    }
    return vs;
}

void load_viewers_free(void *d)
{
    struct viewers *vs = d;
    if (vs == NULL)
        return;
    vs->closing = true; /* calls to the control plane end now: their callbacks do nothing */
    tmt_http_client_free(&vs->ctl);
    for (size_t i = 0; i < vs->n; i++) {
        struct viewer *v = &vs->v[i];
        if (v->timer != NULL)
            event_free(v->timer);
        if (v->hb_timer != NULL)
            event_free(v->hb_timer);
        load_client_free(vs->w, &v->client);
        free(v->ctl_body);
        if (v->step != V_DONE) {
            tmt_m3u8_fini(&v->master);
            for (size_t k = 0; k < VIEWER_MAX_VARIANTS; k++) {
                if (v->have_media[k])
                    tmt_m3u8_fini(&v->media[k]);
            }
        }
        v->magic = 0;
    }
    free(vs->v);
    tmt_zipf_free(&vs->zipf);
    free(vs);
}
