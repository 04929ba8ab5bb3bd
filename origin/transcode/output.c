/*
 * output.c: the asset folder. A job writes into `{root}/.{asset}.partial-XXXXXX` (hidden, so the
 * packager and directory listings never take it for an asset), writes asset.json last, syncs the
 * files and the folder, and renames the folder to `{root}/{asset}` with RENAME_NOREPLACE, so
 * that a concurrent job for the same id or an existing asset is never replaced. On failure the
 * work folder and everything in it are removed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2 */
#endif
#include "transcode_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tt_fsync_path(const char *path, struct tmt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "cannot open %s", path);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return tmt_err_set_errno(err, TMT_EIO, e, "cannot sync %s", path);
    }
    close(fd);
    return 0;
}

int tt_out_begin(struct tt_job *job, struct tmt_err *err)
{
    const struct tmt_transcode_opts *o = job->o;
    struct stat st;
    if (stat(o->root, &st) != 0)
        return tmt_err_set_errno(err, errno == ENOENT ? TMT_ENOTFOUND : TMT_EIO, errno,
                                 "mezzanine root %s", o->root);
    if (!S_ISDIR(st.st_mode))
        return tmt_err_set(err, TMT_EINVAL, "mezzanine root %s is not a folder", o->root);
    int n = snprintf(job->final_dir, sizeof(job->final_dir), "%s/%s", o->root, o->asset_id);
    if (n < 0 || (size_t)n >= sizeof(job->final_dir) - 32)
        return tmt_err_set(err, TMT_EINVAL, "mezzanine root %s: path too long", o->root);
    if (lstat(job->final_dir, &st) == 0)
        return tmt_err_set(err, TMT_EEXIST,
                           "%s already exists: assets are immutable, use a new asset id",
                           job->final_dir);
    snprintf(job->dir, sizeof(job->dir), "%s/.%s.partial-XXXXXX", o->root, o->asset_id);
    if (mkdtemp(job->dir) == NULL) {
        int e = errno;
        job->dir[0] = '\0';
        return tmt_err_set_errno(err, TMT_EIO, e, "cannot make a work folder in %s", o->root);
    }
    /* mkdtemp makes it 0700; the asset is read by the shield, maybe as another user. */
    if (chmod(job->dir, 0755) != 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "cannot chmod %s", job->dir);
    return 0;
}

void tt_out_remove(struct tt_job *job)
{
    if (job->dir[0] == '\0')
        return;
    DIR *d = opendir(job->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(job->dir);
    job->dir[0] = '\0';
}

/* The frame rate as asset.json wants it: an integer or "num/den". */
static void format_rate(char *out, size_t cap, unsigned num, unsigned den)
{
    if (den == 1)
        snprintf(out, cap, "%u", num);
    else
        snprintf(out, cap, "\"%u/%u\"", num, den);
}

static int write_asset_json(struct tt_job *job, struct tmt_err *err)
{
    char tmp[TT_PATH_MAX + 32], path[TT_PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s/asset.json.tmp", job->dir);
    snprintf(path, sizeof(path), "%s/asset.json", job->dir);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return tmt_err_set_errno(err, TMT_EIO, errno, "cannot create %s", tmp);
    char rate[32], seg[32];
    format_rate(rate, sizeof(rate), job->rate_num, job->rate_den);
    if (job->o->segment_ms % 1000 == 0)
        snprintf(seg, sizeof(seg), "%u", job->o->segment_ms / 1000);
    else
        snprintf(seg, sizeof(seg), "%u.%03u", job->o->segment_ms / 1000, job->o->segment_ms % 1000);
    fprintf(f, "{\n  \"version\": 1,\n  \"segment_duration\": %s,\n  \"renditions\": [\n", seg);
    for (unsigned i = 0; i < job->n_rungs; i++) {
        const struct tt_rung *r = &job->rungs[i];
        fprintf(f, "    {\"id\": \"%s\", \"type\": \"video\", \"file\": \"%s.mp4\", ", r->p.id,
                r->p.id);
        if (r->codecs[0] != '\0')
            fprintf(f, "\"codecs\": \"%s\", ", r->codecs);
        fprintf(f, "\"width\": %u, \"height\": %u, \"bitrate\": %llu, \"frame_rate\": %s}%s\n",
                r->p.width, r->p.height, (unsigned long long)r->p.bitrate, rate,
                i + 1 < job->n_rungs || job->aenc != NULL ? "," : "");
    }
    if (job->aenc != NULL) {
        fprintf(f,
                "    {\"id\": \"audio\", \"type\": \"audio\", \"file\": \"%s.mp4\", \"codecs\": "
                "\"mp4a.40.2\", \"bitrate\": %lld, \"sample_rate\": %d, \"channels\": %d}\n",
                job->rungs[0].p.id, (long long)job->aenc->bit_rate, job->aenc->sample_rate,
                job->aenc->ch_layout.nb_channels);
    }
    fprintf(f, "  ]\n}\n");
    int werr = ferror(f) ? errno : 0;
    if (fflush(f) != 0 && werr == 0)
        werr = errno;
    if (werr == 0 && fsync(fileno(f)) != 0)
        werr = errno;
    if (fclose(f) != 0 && werr == 0)
        werr = errno;
    if (werr != 0)
        return tmt_err_set_errno(err, TMT_EIO, werr, "cannot write %s", tmp);
    if (rename(tmp, path) != 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "cannot rename %s", tmp);
    return 0;
}

int tt_out_commit(struct tt_job *job, struct tmt_err *err)
{
    int rc = write_asset_json(job, err);
    if (rc == 0)
        rc = tt_fsync_path(job->dir, err);
    if (rc != 0)
        return rc;
    if (renameat2(AT_FDCWD, job->dir, AT_FDCWD, job->final_dir, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == EEXIST || e == ENOTEMPTY)
            return tmt_err_set(err, TMT_EEXIST,
                               "%s appeared while transcoding: assets are immutable, use a new "
                               "asset id",
                               job->final_dir);
        return tmt_err_set_errno(err, TMT_EIO, e, "cannot rename %s to %s", job->dir,
                                 job->final_dir);
    }
    job->dir[0] = '\0';
    /* The rename is durable once the root is synced; the asset is complete either way. */
    (void)tt_fsync_path(job->o->root, NULL);
    return 0;
}
