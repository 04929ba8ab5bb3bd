/*
 * jobs.c: background transcode jobs (see jobs.h).
 *
 * Records are compact JSON under "job:{asset}" in a RocksDB of their own, written with sync on
 * every change of state. In memory every job has a struct job in an array (operators keep a few
 * thousand at most; lookups are linear) and the queued ones are in a FIFO. Runner threads take
 * jobs from the FIFO, run tmt_transcode_run without the lock, and write the outcome.
 *
 * A stop sets every running job's cancel flag with `stopping` set: those jobs go back to queued
 * (and their attempt is not counted), so a graceful stop loses nothing. A kill leaves them
 * "running" in the store; the next open counts that as an interrupted attempt, removes the
 * job's hidden work folders in the mezzanine root, and queues it again. A job interrupted
 * SHIELD_JOBS_MAX_ATTEMPTS times fails instead: a source that kills the shield must not do it
 * forever. If the asset folder is complete (the rename was done, the record not yet), the job
 * succeeded.
 */
#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tmt/base.h"
#include "tmt/kv.h"
#include "tmt/log.h"

#define JOBS_MAGIC 0x70b5b5e1u
#define ID_MAX 64
#define SOURCE_MAX 1024
#define LADDER_MAX 256
#define MAX_RUNNERS 16

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };
static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

struct job {
    char id[ID_MAX + 1]; /* the asset id */
    char source[SOURCE_MAX + 1];
    char ladder[LADDER_MAX + 1]; /* "" = the shield's */
    char preset[TMT_TRANSCODE_PRESET_MAX];
    unsigned segment_ms; /* 0 = the shield's */
    enum job_state state;
    char error[TMT_ERR_MSG_MAX];
    int64_t created, started, finished; /* unix seconds, 0 = not yet */
    unsigned attempts;                  /* runs started */
    bool has_result;
    struct tmt_transcode_result res;
    struct tmt_transcode_progress prog; /* while running */
    atomic_bool cancel;
    bool user_cancel;
    struct job *next; /* in the queue */
};

struct shield_jobs {
    unsigned magic;
    struct shield_jobs_opts o;
    char *store_path, *mezz_root, *source_root, *source_real;
    struct tmt_kv *kv;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct job **jobs;
    size_t n, cap;
    struct job *head, *tail; /* queue */
    bool stopping;
    pthread_t runners[MAX_RUNNERS];
    unsigned n_runners;
    uint64_t succeeded, failed, cancelled, frames;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static json_t *time_json(int64_t t)
{
    if (t == 0)
        return json_null();
    char b[32];
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(b);
}

static bool id_ok(const char *s, size_t len)
{
    if (len == 0 || len > ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A source names a file under the source root: relative, no "." or ".." segment, no controls. */
static bool source_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > SOURCE_MAX || s[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            return false;
    }
    const char *p = s;
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n + (e != NULL ? 1 : 0);
        if (e != NULL && *p == '\0')
            return false; /* a trailing slash */
    }
    return true;
}

/* ---- records ---- */

static json_t *result_json(const struct tmt_transcode_result *r)
{
    json_t *rungs = json_array();
    for (unsigned i = 0; i < r->n_rungs; i++)
        json_array_append_new(rungs, json_pack("{s:s, s:i, s:i, s:I}", "id", r->rungs[i].id,
                                               "width", (json_int_t)r->rungs[i].width, "height",
                                               (json_int_t)r->rungs[i].height, "bitrate",
                                               (json_int_t)r->rungs[i].bitrate));
    char rate[32];
    snprintf(rate, sizeof(rate), "%u/%u", r->rate_num, r->rate_den);
    return json_pack("{s:o, s:b, s:s, s:i, s:I, s:f, s:f}", "renditions", rungs, "audio", r->audio,
                     "frame_rate", rate, "frames_per_segment", (json_int_t)r->frames_per_segment,
                     "frames", (json_int_t)r->frames, "duration_s", r->duration_s, "elapsed_s",
                     r->elapsed_s);
}

/* The job as stored (live: also its progress, for answers). Under the lock. */
static json_t *job_json(const struct job *jb, bool live)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:i}", "id", jb->id, "asset", jb->id,
                          "source", jb->source, "created_at", time_json(jb->created), "started_at",
                          time_json(jb->started), "finished_at", time_json(jb->finished),
                          "attempts", (json_int_t)jb->attempts);
    json_object_set_new(v, "state",
                        json_string(live && jb->state == JOB_RUNNING && atomic_load(&jb->cancel)
                                        ? "cancelling"
                                        : state_names[jb->state]));
    if (jb->ladder[0] != '\0')
        json_object_set_new(v, "ladder", json_string(jb->ladder));
    if (jb->preset[0] != '\0')
        json_object_set_new(v, "preset", json_string(jb->preset));
    if (jb->segment_ms != 0)
        json_object_set_new(v, "segment_duration", json_real(jb->segment_ms / 1000.0));
    json_object_set_new(v, "error", jb->error[0] != '\0' ? json_string(jb->error) : json_null());
    if (jb->has_result)
        json_object_set_new(v, "result", result_json(&jb->res));
    if (live && jb->state == JOB_RUNNING)
        json_object_set_new(v, "progress",
                            json_pack("{s:f, s:I, s:f, s:f, s:f, s:f, s:f}", "percent",
                                      jb->prog.percent, "frames", (json_int_t)jb->prog.frames,
                                      "fps", jb->prog.fps, "speed", jb->prog.speed, "media_s",
                                      jb->prog.media_s, "duration_s", jb->prog.duration_s,
                                      "elapsed_s", jb->prog.elapsed_s));
    return v;
}

/* Writes the job's record. Under the lock. A store that fails is logged: the job goes on. */
static int job_save(struct shield_jobs *j, const struct job *jb)
{
    json_t *v = job_json(jb, false);
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    char key[8 + ID_MAX];
    int kl = snprintf(key, sizeof(key), "job:%s", jb->id);
    struct tmt_slice part = {text, strlen(text)};
    struct tmt_kv_op op = {.key = {key, (size_t)kl}, .parts = &part, .n_parts = 1};
    struct tmt_err err;
    int rc = tmt_kv_write(j->kv, &op, 1, &err);
    free(text);
    if (rc != 0)
        tmt_log(TMT_LOG_ERROR, "jobs", "job record not written", "job=%s why=\"%s\"", jb->id,
                err.msg);
    return rc;
}

static void get_str(json_t *o, const char *k, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, k));
    snprintf(out, cap, "%s", s != NULL ? s : "");
}

static int64_t get_time(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    struct tm tm = {0};
    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
        return 0;
    return (int64_t)timegm(&tm);
}

/* A job from its record; NULL if the record is not one of ours (logged by the caller). */
static struct job *job_from_json(json_t *v)
{
    struct job *jb = tmt_xcalloc(1, sizeof(*jb));
    get_str(v, "id", jb->id, sizeof(jb->id));
    get_str(v, "source", jb->source, sizeof(jb->source));
    get_str(v, "ladder", jb->ladder, sizeof(jb->ladder));
    get_str(v, "preset", jb->preset, sizeof(jb->preset));
    get_str(v, "error", jb->error, sizeof(jb->error));
    jb->segment_ms = (unsigned)(json_number_value(json_object_get(v, "segment_duration")) * 1000);
    jb->created = get_time(v, "created_at");
    jb->started = get_time(v, "started_at");
    jb->finished = get_time(v, "finished_at");
    jb->attempts = (unsigned)json_integer_value(json_object_get(v, "attempts"));
    const char *st = json_string_value(json_object_get(v, "state"));
    bool known = false;
    for (size_t i = 0; st != NULL && i < TMT_ARRAY_LEN(state_names); i++) {
        if (strcmp(st, state_names[i]) == 0) {
            jb->state = (enum job_state)i;
            known = true;
        }
    }
    json_t *r = json_object_get(v, "result");
    if (json_is_object(r)) {
        json_t *rungs = json_object_get(r, "renditions"), *x;
        size_t i;
        json_array_foreach(rungs, i, x)
        {
            if (i >= TMT_TRANSCODE_MAX_RUNGS)
                break;
            get_str(x, "id", jb->res.rungs[i].id, sizeof(jb->res.rungs[i].id));
            jb->res.rungs[i].width = (unsigned)json_integer_value(json_object_get(x, "width"));
            jb->res.rungs[i].height = (unsigned)json_integer_value(json_object_get(x, "height"));
            jb->res.rungs[i].bitrate = (uint64_t)json_integer_value(json_object_get(x, "bitrate"));
            jb->res.n_rungs = (unsigned)i + 1;
        }
        jb->res.audio = json_is_true(json_object_get(r, "audio"));
        const char *rate = json_string_value(json_object_get(r, "frame_rate"));
        if (rate == NULL || sscanf(rate, "%u/%u", &jb->res.rate_num, &jb->res.rate_den) != 2)
            jb->res.rate_num = jb->res.rate_den = 0;
        jb->res.frames_per_segment =
            (unsigned)json_integer_value(json_object_get(r, "frames_per_segment"));
        jb->res.frames = (uint64_t)json_integer_value(json_object_get(r, "frames"));
        jb->res.duration_s = json_number_value(json_object_get(r, "duration_s"));
        jb->res.elapsed_s = json_number_value(json_object_get(r, "elapsed_s"));
        jb->has_result = true;
    }
    if (!known || !id_ok(jb->id, strlen(jb->id)) || !source_ok(jb->source)) {
        free(jb);
        return NULL;
    }
    return jb;
}

/* ---- the queue and the runners ---- */

static struct job *find(struct shield_jobs *j, const char *id, size_t len)
{
    for (size_t i = 0; i < j->n; i++) {
        if (strlen(j->jobs[i]->id) == len && memcmp(j->jobs[i]->id, id, len) == 0)
            return j->jobs[i];
    }
    return NULL;
}

static void add(struct shield_jobs *j, struct job *jb)
{
    if (j->n == j->cap) {
        j->cap = j->cap != 0 ? j->cap * 2 : 16;
        j->jobs = realloc(j->jobs, j->cap * sizeof(*j->jobs));
        TMT_ASSERT(j->jobs != NULL);
    }
    j->jobs[j->n++] = jb;
}

static void enqueue(struct shield_jobs *j, struct job *jb)
{
    jb->next = NULL;
    if (j->tail != NULL)
        j->tail->next = jb;
    else
        j->head = jb;
    j->tail = jb;
    pthread_cond_signal(&j->cond);
}

static void unqueue(struct shield_jobs *j, struct job *jb)
{
    struct job **pp = &j->head, *prev = NULL;
    while (*pp != NULL && *pp != jb) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = jb->next;
    if (j->tail == jb)
        j->tail = prev;
    jb->next = NULL;
}

struct progress_ctx {
    struct shield_jobs *j;
    struct job *jb;
};

static void on_progress(const struct tmt_transcode_progress *p, void *arg)
{
    struct progress_ctx *c = arg;
    pthread_mutex_lock(&c->j->mu);
    c->jb->prog = *p;
    pthread_mutex_unlock(&c->j->mu);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        tmt_log(TMT_LOG_WARN, "jobs", "cannot remove", "path=%s why=\"%s\"", path, strerror(errno));
    return 0;
}

/* Removes the hidden work folders `.{asset}.partial-*` that an interrupted run left behind. */
static void remove_partials(struct shield_jobs *j, const char *asset)
{
    DIR *d = opendir(j->mezz_root);
    if (d == NULL)
        return;
    char prefix[ID_MAX + 16];
    int pl = snprintf(prefix, sizeof(prefix), ".%s.partial-", asset);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)pl) != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", j->mezz_root, e->d_name) >= (int)sizeof(path))
            continue;
        tmt_log(TMT_LOG_INFO, "jobs", "removing an interrupted run's work folder", "path=%s", path);
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

static void run_one(struct shield_jobs *j, struct job *jb)
{
    struct tmt_transcode_opts o = j->o.base;
    struct tmt_err err;
    tmt_err_clear(&err);
    char src[PATH_MAX];
    int rc = 0;
    if (snprintf(src, sizeof(src), "%s/%s", j->source_root, jb->source) >= (int)sizeof(src))
        rc = tmt_err_set(&err, TMT_EINVAL, "%s/%s: path too long", j->source_root, jb->source);
    if (rc == 0 && jb->ladder[0] != '\0')
        rc = tmt_transcode_ladder_parse(&o, jb->ladder, &err);
    if (jb->preset[0] != '\0')
        snprintf(o.preset, sizeof(o.preset), "%s", jb->preset);
    if (jb->segment_ms != 0)
        o.segment_ms = jb->segment_ms;
    struct progress_ctx pc = {j, jb};
    o.source = src;
    o.root = j->mezz_root;
    o.asset_id = jb->id;
    o.progress = on_progress;
    o.progress_arg = &pc;
    o.cancel = &jb->cancel;
    struct tmt_transcode_result res;
    if (rc == 0) {
        remove_partials(j, jb->id);
        rc = tmt_transcode_run(&o, &res, &err);
    }
    pthread_mutex_lock(&j->mu);
    if (rc == TMT_EAGAIN && !jb->user_cancel && j->stopping) {
        jb->state = JOB_QUEUED; /* the shield stops: the next start runs it again */
        jb->attempts--;
        jb->started = 0;
        atomic_store(&jb->cancel, false);
        job_save(j, jb);
        pthread_mutex_unlock(&j->mu);
        tmt_log(TMT_LOG_INFO, "jobs", "job interrupted by the stop; it runs at the next start",
                "job=%s", jb->id);
        return;
    }
    jb->finished = now_s();
    if (rc == 0) {
        jb->state = JOB_SUCCEEDED;
        jb->res = res;
        jb->has_result = true;
        jb->error[0] = '\0';
        j->succeeded++;
        j->frames += res.frames * res.n_rungs;
    } else if (rc == TMT_EAGAIN) {
        jb->state = JOB_CANCELLED;
        snprintf(jb->error, sizeof(jb->error), "cancelled");
        j->cancelled++;
    } else {
        jb->state = JOB_FAILED;
        snprintf(jb->error, sizeof(jb->error), "%s", err.msg);
        j->failed++;
    }
    job_save(j, jb);
    pthread_mutex_unlock(&j->mu);
    if (rc == 0)
        tmt_log(TMT_LOG_INFO, "jobs", "job succeeded",
                "job=%s rungs=%u duration_s=%.1f elapsed_s=%.1f speed=%.2f", jb->id, res.n_rungs,
                res.duration_s, res.elapsed_s,
                res.elapsed_s > 0 ? res.duration_s / res.elapsed_s : 0.0);
    else
        tmt_log(rc == TMT_EAGAIN ? TMT_LOG_INFO : TMT_LOG_ERROR, "jobs",
                rc == TMT_EAGAIN ? "job cancelled" : "job failed", "job=%s why=\"%s\"", jb->id,
                rc == TMT_EAGAIN ? "cancelled" : err.msg);
}

static void *runner(void *arg)
{
    struct shield_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->stopping && j->head == NULL)
            pthread_cond_wait(&j->cond, &j->mu);
        if (j->stopping)
            break;
        struct job *jb = j->head;
        unqueue(j, jb);
        jb->state = JOB_RUNNING;
        jb->started = now_s();
        jb->attempts++;
        jb->error[0] = '\0';
        memset(&jb->prog, 0, sizeof(jb->prog));
        job_save(j, jb);
        pthread_mutex_unlock(&j->mu);
        tmt_log(TMT_LOG_INFO, "jobs", "job started", "job=%s source=%s attempt=%u", jb->id,
                jb->source, jb->attempts);
        run_one(j, jb);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- open and free ---- */

static bool load_one(void *arg, struct tmt_slice key, struct tmt_slice val)
{
    struct shield_jobs *j = arg;
    json_t *v = json_loadb(val.p, val.len, 0, NULL);
    struct job *jb = v != NULL ? job_from_json(v) : NULL;
    json_decref(v);
    if (jb == NULL) {
        tmt_log(TMT_LOG_WARN, "jobs", "unreadable job record skipped", "key=%.*s",
                (int)TMT_MIN(key.len, 80), key.p);
        return true;
    }
    add(j, jb);
    return true;
}

static int by_created(const void *a, const void *b)
{
    const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;
    return x->created < y->created ? -1 : x->created > y->created ? 1 : strcmp(x->id, y->id);
}

/* Jobs an earlier run left queued or running: queued again, failed, or found complete. */
static void recover(struct shield_jobs *j)
{
    if (j->n > 1)
        qsort(j->jobs, j->n, sizeof(*j->jobs), by_created);
    for (size_t i = 0; i < j->n; i++) {
        struct job *jb = j->jobs[i];
        if (jb->state != JOB_QUEUED && jb->state != JOB_RUNNING)
            continue;
        if (jb->state == JOB_RUNNING) {
            char done[PATH_MAX];
            struct stat st;
            snprintf(done, sizeof(done), "%s/%s/asset.json", j->mezz_root, jb->id);
            remove_partials(j, jb->id);
            if (stat(done, &st) == 0) {
                jb->state = JOB_SUCCEEDED;
                jb->finished = (int64_t)st.st_mtime;
                tmt_log(TMT_LOG_INFO, "jobs", "interrupted job had finished", "job=%s", jb->id);
                job_save(j, jb);
                continue;
            }
            if (jb->attempts >= SHIELD_JOBS_MAX_ATTEMPTS) {
                jb->state = JOB_FAILED;
                jb->finished = now_s();
                snprintf(jb->error, sizeof(jb->error),
                         "the shield stopped during the job %u times (killed, or crashed on this "
                         "source); submit it again to retry",
                         jb->attempts);
                tmt_log(TMT_LOG_ERROR, "jobs", "job failed", "job=%s why=\"%s\"", jb->id,
                        jb->error);
                job_save(j, jb);
                continue;
            }
            tmt_log(TMT_LOG_WARN, "jobs", "job was interrupted; running it again",
                    "job=%s attempts=%u", jb->id, jb->attempts);
        }
        jb->state = JOB_QUEUED;
        jb->started = 0;
        job_save(j, jb);
        enqueue(j, jb);
    }
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    TMT_ASSERT(d != NULL);
    return d;
}

struct shield_jobs *shield_jobs_open(const struct shield_jobs_opts *o, struct tmt_err *err)
{
    if (o->runners < 1 || o->runners > MAX_RUNNERS) {
        tmt_err_set(err, TMT_EINVAL, "jobs.runners: %u is not in [1, %d]", o->runners, MAX_RUNNERS);
        return NULL;
    }
    struct shield_jobs *j = tmt_xcalloc(1, sizeof(*j));
    j->magic = JOBS_MAGIC;
    j->o = *o;
    j->store_path = xstrdup(o->store_path);
    j->mezz_root = xstrdup(o->mezz_root);
    j->source_root = xstrdup(o->source_root);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    struct tmt_kv_opts ko = {.path = j->store_path, .sync = true, .zstd_level = 0};
    j->kv = tmt_kv_open(&ko, err);
    if (j->kv == NULL) {
        shield_jobs_free(&j);
        return NULL;
    }
    if (tmt_kv_scan(j->kv, (struct tmt_slice){"job:", 4}, load_one, j, err) != 0) {
        shield_jobs_free(&j);
        return NULL;
    }
    recover(j);
    for (unsigned i = 0; i < o->runners; i++) {
        if (pthread_create(&j->runners[i], NULL, runner, j) != 0) {
            tmt_err_set_errno(err, TMT_EIO, errno, "cannot start a job runner");
            shield_jobs_free(&j);
            return NULL;
        }
        j->n_runners++;
    }
    size_t queued = 0;
    for (struct job *q = j->head; q != NULL; q = q->next)
        queued++;
    tmt_log(TMT_LOG_INFO, "jobs", "jobs ready",
            "store=%s sources=%s jobs=%zu queued=%zu runners=%u", j->store_path, j->source_root,
            j->n, queued, j->n_runners);
    return j;
}

void shield_jobs_free(struct shield_jobs **p)
{
    struct shield_jobs *j = *p;
    if (j == NULL)
        return;
    TMT_CHECK_OBJ(j, JOBS_MAGIC);
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    for (size_t i = 0; i < j->n; i++) {
        if (j->jobs[i]->state == JOB_RUNNING)
            atomic_store(&j->jobs[i]->cancel, true);
    }
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->mu);
    for (unsigned i = 0; i < j->n_runners; i++)
        pthread_join(j->runners[i], NULL);
    tmt_kv_close(&j->kv);
    for (size_t i = 0; i < j->n; i++)
        free(j->jobs[i]);
    free(j->jobs);
    free(j->store_path);
    free(j->mezz_root);
    free(j->source_root);
    free(j->source_real);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->mu);
    free(j);
    *p = NULL;
}

void shield_jobs_counts(struct shield_jobs *j, struct shield_jobs_counts *out)
{
    memset(out, 0, sizeof(*out));
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < j->n; i++) {
        out->queued += j->jobs[i]->state == JOB_QUEUED;
        out->running += j->jobs[i]->state == JOB_RUNNING;
    }
    out->succeeded = j->succeeded;
    out->failed = j->failed;
    out->cancelled = j->cancelled;
    out->frames = j->frames;
    pthread_mutex_unlock(&j->mu);
}

/* ---- the admin API ---- */

static void reply_json(struct tmt_http_req *req, int status, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    size_t len = strlen(text);
    text[len] = '\n';
    tmt_http_respond(req, status, "application/json", text, len + 1);
    free(text);
}

/* {"error": short, "detail": why}, as the control plane answers. */
static void reply_error(struct tmt_http_req *req, int status, const char *what, const char *fmt,
                        ...) TMT_PRINTF(4, 5);
static void reply_error(struct tmt_http_req *req, int status, const char *what, const char *fmt,
                        ...)
{
    char detail[TMT_ERR_MSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    reply_json(req, status, json_pack("{s:s, s:s}", "error", what, "detail", detail));
}

/* Checks the source exists, is a regular file and stays under the source root (symlinks
 * resolved). 0, or an answer was sent. */
static int check_source(struct tmt_http_req *req, struct shield_jobs *j, const char *source)
{
    char path[PATH_MAX], real[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", j->source_root, source) >= (int)sizeof(path)) {
        reply_error(req, 422, "invalid field", "source: the path is too long");
        return -1;
    }
    if (j->source_real == NULL) {
        char r[PATH_MAX];
        if (realpath(j->source_root, r) == NULL) {
            reply_error(req, 422, "invalid field",
                        "source: the source root %s does not exist (jobs.source_root)",
                        j->source_root);
            return -1;
        }
        j->source_real = xstrdup(r);
    }
    struct stat st;
    if (realpath(path, real) == NULL || stat(real, &st) != 0) {
        reply_error(req, 422, "invalid field", "source: %s: %s", path, strerror(errno));
        return -1;
    }
    size_t rl = strlen(j->source_real);
    if (strncmp(real, j->source_real, rl) != 0 || (real[rl] != '/' && rl != 1)) {
        reply_error(req, 422, "invalid field", "source: %s leads outside %s", path, j->source_root);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        reply_error(req, 422, "invalid field", "source: %s is not a regular file", path);
        return -1;
    }
    return 0;
}

static void create(struct tmt_http_req *req, struct shield_jobs *j)
{
    const struct tmt_http_header *ct =
        tmt_http_header_find(req->headers, req->n_headers, "content-type");
    if (ct == NULL || ct->value.len < 16 || strncasecmp(ct->value.p, "application/json", 16) != 0) {
        reply_error(req, 415, "unsupported media type", "send the job as application/json");
        return;
    }
    json_error_t jerr;
    json_t *v = json_loadb(req->body.p, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        reply_error(req, 400, "bad request", "the body is not a JSON object: %s", jerr.text);
        return;
    }
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        static const char *const known[] = {"asset", "source", "ladder", "preset",
                                            "segment_duration"};
        bool ok = false;
        for (size_t i = 0; i < TMT_ARRAY_LEN(known); i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok) {
            reply_error(req, 400, "unknown field",
                        "%.64s: not a job field (asset, source, "
                        "ladder, preset, segment_duration)",
                        k);
            json_decref(v);
            return;
        }
    }
    const char *asset = json_string_value(json_object_get(v, "asset"));
    const char *source = json_string_value(json_object_get(v, "source"));
    const char *ladder = json_string_value(json_object_get(v, "ladder"));
    const char *preset = json_string_value(json_object_get(v, "preset"));
    json_t *seg = json_object_get(v, "segment_duration");
    struct tmt_transcode_opts o = j->o.base;
    struct tmt_err err;
    tmt_err_clear(&err);
    int status = 0;
    const char *what = "invalid field";
    char detail[TMT_ERR_MSG_MAX + 64] = "";
    if (asset == NULL || source == NULL) {
        status = 422;
        what = "missing field";
        snprintf(detail, sizeof(detail), "%s: a string is required",
                 asset == NULL ? "asset" : "source");
    } else if (!id_ok(asset, strlen(asset))) {
        status = 422;
        snprintf(detail, sizeof(detail), "asset: 1 to %d of A-Z a-z 0-9 _ -", ID_MAX);
    } else if (!source_ok(source)) {
        status = 422;
        snprintf(detail, sizeof(detail),
                 "source: a relative path under the source root, without . or .. segments, at "
                 "most %d bytes",
                 SOURCE_MAX);
    } else if (json_object_get(v, "ladder") != NULL &&
               (ladder == NULL || strlen(ladder) > LADDER_MAX ||
                tmt_transcode_ladder_parse(&o, ladder, &err) != 0)) {
        status = 422;
        snprintf(detail, sizeof(detail), "ladder: %s",
                 err.msg[0] != '\0' ? err.msg : "a string HEIGHT:BITRATE[:PRESET],...");
    } else if (json_object_get(v, "preset") != NULL &&
               (preset == NULL || !tmt_transcode_preset_valid(preset))) {
        status = 422;
        snprintf(detail, sizeof(detail), "preset: one of %s", TMT_TRANSCODE_PRESETS);
    } else if (seg != NULL && (!json_is_number(seg) || json_number_value(seg) < 1 ||
                               json_number_value(seg) > 30)) {
        status = 422;
        snprintf(detail, sizeof(detail), "segment_duration: seconds, 1 to 30");
    }
    if (status != 0) {
        reply_error(req, status, what, "%s", detail);
        json_decref(v);
        return;
    }
    if (check_source(req, j, source) != 0) {
        json_decref(v);
        return;
    }
    /* Own copies: v goes before the answers. */
    char asset_buf[ID_MAX + 1], source_buf[SOURCE_MAX + 1], ladder_buf[LADDER_MAX + 1],
        preset_buf[TMT_TRANSCODE_PRESET_MAX];
    snprintf(asset_buf, sizeof(asset_buf), "%s", asset);
    snprintf(source_buf, sizeof(source_buf), "%s", source);
    snprintf(ladder_buf, sizeof(ladder_buf), "%s", ladder != NULL ? ladder : "");
    snprintf(preset_buf, sizeof(preset_buf), "%s", preset != NULL ? preset : "");
    unsigned seg_ms = seg != NULL ? (unsigned)(json_number_value(seg) * 1000 + 0.5) : 0;
    json_decref(v);
    asset = asset_buf;
    source = source_buf;
    char done[PATH_MAX];
    struct stat st;
    snprintf(done, sizeof(done), "%s/%s", j->mezz_root, asset);
    pthread_mutex_lock(&j->mu);
    struct job *jb = find(j, asset, strlen(asset));
    if (jb != NULL &&
        (jb->state == JOB_QUEUED || jb->state == JOB_RUNNING || jb->state == JOB_SUCCEEDED)) {
        json_t *cur = job_json(jb, true);
        pthread_mutex_unlock(&j->mu);
        if (strcmp(jb->source, source) == 0) { /* the same request again: the same job */
            reply_json(req, 200, cur);
            return;
        }
        json_decref(cur);
        reply_error(req, 409, "conflict", "asset %s has a %s job from another source", asset,
                    state_names[jb->state]);
        return;
    }
    if (lstat(done, &st) == 0) {
        pthread_mutex_unlock(&j->mu);
        reply_error(req, 409, "conflict",
                    "asset %s exists in the mezzanine root; assets are immutable, use a new id",
                    asset);
        return;
    }
    bool fresh = jb == NULL;
    if (fresh) {
        jb = tmt_xcalloc(1, sizeof(*jb));
        snprintf(jb->id, sizeof(jb->id), "%s", asset);
    } else {
        /* A failed or cancelled job is submitted again: same record, counts kept. */
        jb->has_result = false;
        jb->error[0] = '\0';
        jb->started = jb->finished = 0;
        jb->user_cancel = false;
        atomic_store(&jb->cancel, false);
    }
    snprintf(jb->source, sizeof(jb->source), "%s", source);
    snprintf(jb->ladder, sizeof(jb->ladder), "%s", ladder_buf);
    snprintf(jb->preset, sizeof(jb->preset), "%s", preset_buf);
    jb->segment_ms = seg_ms;
    jb->state = JOB_QUEUED;
    jb->created = now_s();
    jb->attempts = 0;
    if (job_save(j, jb) != 0) {
        if (fresh)
            free(jb);
        else
            jb->state = JOB_FAILED;
        pthread_mutex_unlock(&j->mu);
        reply_error(req, 503, "store failed", "the job could not be recorded (see the log)");
        return;
    }
    if (fresh)
        add(j, jb);
    enqueue(j, jb);
    json_t *out = job_json(jb, true);
    pthread_mutex_unlock(&j->mu);
    tmt_log(TMT_LOG_INFO, "jobs", "job queued", "job=%s source=%s", jb->id, jb->source);
    char loc[32 + ID_MAX];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", asset);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    const struct tmt_http_header h[] = {
        {{"Content-Type", 12}, {"application/json", 16}},
        {{"Location", 8}, {loc, strlen(loc)}},
    };
    size_t len = strlen(text);
    if (tmt_http_resp_start(req, 201, h, TMT_ARRAY_LEN(h), (int64_t)len + 1) == 0) {
        tmt_http_resp_copy(req, text, len);
        tmt_http_resp_copy(req, "\n", 1);
    }
    tmt_http_resp_end(req);
    free(text);
}

static int newest_first(const void *a, const void *b)
{
    return -by_created(a, b);
}

static void list(struct tmt_http_req *req, struct shield_jobs *j)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&j->mu);
    struct job **sorted = tmt_xcalloc(j->n + 1, sizeof(*sorted));
    if (j->n > 0)
        memcpy(sorted, j->jobs, j->n * sizeof(*sorted));
    if (j->n > 1)
        qsort(sorted, j->n, sizeof(*sorted), newest_first);
    for (size_t i = 0; i < j->n; i++)
        json_array_append_new(arr, job_json(sorted[i], true));
    pthread_mutex_unlock(&j->mu);
    free(sorted);
    reply_json(req, 200, json_pack("{s:o}", "jobs", arr));
}

static void one(struct tmt_http_req *req, struct shield_jobs *j, struct tmt_slice id)
{
    if (!id_ok(id.p, id.len)) {
        reply_error(req, 404, "not found", "no such job");
        return;
    }
    pthread_mutex_lock(&j->mu);
    struct job *jb = find(j, id.p, id.len);
    if (jb == NULL) {
        pthread_mutex_unlock(&j->mu);
        reply_error(req, 404, "not found", "no job for asset %.*s", (int)id.len, id.p);
        return;
    }
    if (req->method == TMT_HTTP_DELETE) {
        if (jb->state == JOB_QUEUED) {
            unqueue(j, jb);
            jb->state = JOB_CANCELLED;
            jb->finished = now_s();
            snprintf(jb->error, sizeof(jb->error), "cancelled");
            j->cancelled++;
            job_save(j, jb);
            tmt_log(TMT_LOG_INFO, "jobs", "job cancelled", "job=%s", jb->id);
        } else if (jb->state == JOB_RUNNING) {
            jb->user_cancel = true;
            atomic_store(&jb->cancel, true); /* the runner writes the outcome */
        } else {
            json_t *cur = job_json(jb, true);
            pthread_mutex_unlock(&j->mu);
            json_decref(cur);
            reply_error(req, 409, "conflict", "the job has %s; nothing to cancel",
                        state_names[jb->state]);
            return;
        }
    }
    json_t *v = job_json(jb, true);
    pthread_mutex_unlock(&j->mu);
    reply_json(req, req->method == TMT_HTTP_DELETE ? 202 : 200, v);
}

bool shield_jobs_path(struct tmt_slice path)
{
    return (path.len == 8 && memcmp(path.p, "/v1/jobs", 8) == 0) ||
           (path.len > 9 && memcmp(path.p, "/v1/jobs/", 9) == 0);
}

void shield_jobs_admin(struct tmt_http_req *req, struct shield_jobs *j)
{
    TMT_CHECK_OBJ(j, JOBS_MAGIC);
    static const struct tmt_http_header allow_list[] = {{{"Allow", 5}, {"GET, POST", 9}}};
    static const struct tmt_http_header allow_one[] = {{{"Allow", 5}, {"GET, DELETE", 11}}};
    if (req->path.len == 8) {
        if (req->method == TMT_HTTP_GET || req->method == TMT_HTTP_HEAD)
            list(req, j);
        else if (req->method == TMT_HTTP_POST)
            create(req, j);
        else if (tmt_http_resp_start(req, 405, allow_list, 1, 0) == 0)
            tmt_http_resp_end(req);
        return;
    }
    struct tmt_slice id = {req->path.p + 9, req->path.len - 9};
    if (req->method == TMT_HTTP_GET || req->method == TMT_HTTP_HEAD ||
        req->method == TMT_HTTP_DELETE)
        one(req, j, id);
    else if (tmt_http_resp_start(req, 405, allow_one, 1, 0) == 0)
        tmt_http_resp_end(req);
}
