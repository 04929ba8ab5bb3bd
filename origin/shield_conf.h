/*
 * shield_conf.h: the settings of tomato-shield.
 */
#ifndef SHIELD_CONF_H
#define SHIELD_CONF_H

#include "tmt/config.h"
#include "tmt/daemon_conf.h"
#include "tmt/http_conf.h"
#include "tmt/node.h"

struct shield_conf {
    struct tmt_daemon_conf daemon;
    struct tmt_http_conf http;
    char *listen;         /* server.listen: fill requests from edges */
    char *admin_listen;   /* admin.listen: /metrics, /healthz, jobs */
    char *mezzanine_root; /* mezzanine.root: {root}/{asset}/asset.json and renditions */
    bool open;            /* server.open: serve /v/ without the edges' fill key */
    char *fill_key_file;  /* fill.key_file */
    /* [cache] */
    char *cache_path;
    uint64_t ram_size, disk_size, max_object_size;
    int64_t pack_threads; /* pack.threads */
    /* [transcode]: the `transcode` command's defaults */
    char *transcode_ladder;          /* transcode.ladder: "HEIGHT:BITRATE[:PRESET],..." */
    int transcode_preset;            /* transcode.preset: index into TMT_TRANSCODE_PRESETS */
    uint64_t transcode_segment_ms;   /* transcode.segment_duration */
    int64_t transcode_audio_bitrate; /* transcode.audio_bitrate, bit/s */
    int64_t transcode_threads;       /* transcode.threads: x264 threads per rung, 0 = auto */
    /* [jobs]: background transcode jobs on the admin listener (jobs.h) */
    char *jobs_path;           /* jobs.path: RocksDB of the job records */
    char *jobs_source_root;    /* jobs.source_root: sources are paths under it */
    int64_t jobs_runners;      /* jobs.runners: jobs at once */
    struct tmt_node_conf node; /* [node]: managed by a control plane */
};

extern const struct tmt_conf_schema shield_conf_schema;

#endif
