/*
 * jobs.h: the shield's transcode jobs, run in the background and kept in RocksDB.
 *
 * A job makes one asset from one source file with the transcoder (tmt/transcode.h); it is named
 * by the asset it makes (assets are immutable, so an asset has at most one job that succeeds).
 * Jobs are asked for on the admin listener:
 *
 *   POST   /v1/jobs          {"asset", "source"[, "ladder", "preset", "segment_duration"]}
 *   GET    /v1/jobs          every job, newest first
 *   GET    /v1/jobs/{asset}  one job, with its progress while it runs
 *   DELETE /v1/jobs/{asset}  cancel a queued or running job
 *
 * Sources are paths under jobs.source_root (a shared ingest area, like the mezzanine root), never
 * outside it. States: queued → running → succeeded | failed | cancelled. Every change of state
 * is written (synced) before it is answered or acted on: a shield that stops or is killed
 * mid-job starts the job again when it next starts (its half-made folder is removed first), up
 * to SHIELD_JOBS_MAX_ATTEMPTS interrupted runs.
 *
 * Threads: runner threads (jobs.runners) run the jobs; everything else is called on the main
 * loop. One mutex guards the jobs.
 */
#ifndef SHIELD_JOBS_H
#define SHIELD_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "tmt/err.h"
#include "tmt/server.h"
#include "tmt/transcode.h"

#define SHIELD_JOBS_MAX_ATTEMPTS 3

struct shield_jobs_opts {
    const char *store_path;  /* RocksDB directory of the job records */
    const char *mezz_root;   /* where assets are made */
    const char *source_root; /* sources are named relative to it */
    unsigned runners;        /* jobs run at once, 1 to 16 */
    /* Ladder, preset, segment duration, audio bit rate and threads of jobs that name none
     * (source, root, asset id, progress and cancel are the jobs' own). */
    struct tmt_transcode_opts base;
};

struct shield_jobs;

/* Opens the store, queues again the jobs an earlier run left unfinished, starts the runners.
 * NULL with err filled. */
struct shield_jobs *shield_jobs_open(const struct shield_jobs_opts *o, struct tmt_err *err);

/* Stops the runners: running jobs are interrupted and stay queued for the next start. NULL-safe. */
void shield_jobs_free(struct shield_jobs **j);

/* True for the paths shield_jobs_admin answers (/v1/jobs and below). */
bool shield_jobs_path(struct tmt_slice path);

/* Answers one admin request on a jobs path (the admin credential was checked). Main loop. */
void shield_jobs_admin(struct tmt_http_req *req, struct shield_jobs *j);

struct shield_jobs_counts {
    uint64_t queued, running;              /* now */
    uint64_t succeeded, failed, cancelled; /* since the start */
    uint64_t frames;                       /* encoded (per rung) since the start */
};

/* The counts, for the daemon's counters. Any thread. */
void shield_jobs_counts(struct shield_jobs *j, struct shield_jobs_counts *out);

#endif
