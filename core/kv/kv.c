/*
 * kv.c: the key-value store over RocksDB's C API (see kv.h).
 */
#include "tmt/kv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define KV_MAGIC 0x6b760001u

struct tmt_kv {
    unsigned magic;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    char *path;
    /*
     * Set by the first failed write: no write, flush or compaction is tried after it (RocksDB
     * 7.8 asserts when a log writer that failed is written to again), reads go on. The store
     * is then read-only until the process restarts.
     */
    atomic_bool failed;
    uint64_t min_free;
};

static int kv_fail(struct tmt_err *err, const char *what, const char *path, char *msg)
{
    tmt_err_set(err, TMT_EIO, "%s %s: %s", what, path, msg != NULL ? msg : "unknown error");
    free(msg);
    return TMT_EIO;
}

/* mkdir -p: creates path and the directories above it that are missing. */
static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        buf[i] = '/';
    }
    return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

struct tmt_kv *tmt_kv_open(const struct tmt_kv_opts *o, struct tmt_err *err)
{
    if (mkdirs(o->path) != 0) {
        tmt_err_set_errno(err, TMT_EIO, errno, "cannot create %s", o->path);
        return NULL;
    }
    struct tmt_kv *kv = tmt_xcalloc(1, sizeof(*kv));
    kv->magic = KV_MAGIC;
    kv->path = tmt_xstrdup(o->path);
    kv->min_free = o->min_free_bytes;
    kv->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(kv->opts, 1);
    rocksdb_options_set_max_open_files(kv->opts, 256);
    rocksdb_options_set_keep_log_file_num(kv->opts, 2);
    rocksdb_options_set_max_background_jobs(kv->opts, 2);
    /* The log is preallocated at about the memtable size: keep both small. */
    rocksdb_options_set_write_buffer_size(kv->opts, o->write_buffer_size != 0 ? o->write_buffer_size
                                                                              : 16u << 20);
    if (o->zstd_level > 0) {
        rocksdb_options_set_compression(kv->opts, rocksdb_zstd_compression);
        rocksdb_options_set_compression_options(kv->opts, -14, o->zstd_level, 0, 0);
        rocksdb_options_set_blob_compression_type(kv->opts, rocksdb_zstd_compression);
    } else {
        rocksdb_options_set_compression(kv->opts, rocksdb_no_compression);
    }
    if (o->blob_files) {
        rocksdb_options_set_enable_blob_files(kv->opts, 1);
        rocksdb_options_set_min_blob_size(kv->opts, o->min_blob_size);
        rocksdb_options_set_enable_blob_gc(kv->opts, 1);
        rocksdb_options_set_blob_gc_age_cutoff(kv->opts, 0.5);
    }
    kv->topts = rocksdb_block_based_options_create();
    kv->cache = rocksdb_cache_create_lru(o->block_cache_size != 0 ? o->block_cache_size : 8u << 20);
    rocksdb_block_based_options_set_block_cache(kv->topts, kv->cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(kv->topts, 1);
    rocksdb_options_set_block_based_table_factory(kv->opts, kv->topts);
    kv->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(kv->wopts, o->sync ? 1 : 0);
    kv->ropts = rocksdb_readoptions_create();
    if (o->own_checksums)
        rocksdb_readoptions_set_verify_checksums(kv->ropts, 0);
    char *msg = NULL;
    kv->db = rocksdb_open(kv->opts, o->path, &msg);
    if (kv->db == NULL) {
        kv_fail(err, "cannot open store", o->path, msg);
        tmt_kv_close(&kv);
        return NULL;
    }
    return kv;
}

void tmt_kv_close(struct tmt_kv **kvp)
{
    struct tmt_kv *kv = *kvp;
    if (kv == NULL)
        return;
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    if (kv->db != NULL && !atomic_load(&kv->failed)) {
        /* Memtables to table and blob files: the next open replays no log. */
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        char *msg = NULL;
        rocksdb_flush(kv->db, fo, &msg);
        free(msg);
        rocksdb_flushoptions_destroy(fo);
    }
    if (kv->db != NULL)
        rocksdb_close(kv->db);
    rocksdb_readoptions_destroy(kv->ropts);
    rocksdb_writeoptions_destroy(kv->wopts);
    rocksdb_options_destroy(kv->opts);
    rocksdb_block_based_options_destroy(kv->topts);
    rocksdb_cache_destroy(kv->cache);
    free(kv->path);
    kv->magic = 0;
    free(kv);
    *kvp = NULL;
}

int tmt_kv_write(struct tmt_kv *kv, const struct tmt_kv_op *ops, size_t n, struct tmt_err *err)
{
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    if (atomic_load(&kv->failed))
        return tmt_err_set(err, TMT_EIO, "%s: read-only after an earlier write error", kv->path);
    struct statvfs fs;
    if (kv->min_free > 0 && statvfs(kv->path, &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < kv->min_free)
        return tmt_err_set(err, TMT_EIO, "%s: disk nearly full (%llu bytes free, %llu kept)",
                           kv->path, (unsigned long long)fs.f_bavail * fs.f_frsize,
                           (unsigned long long)kv->min_free);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        const struct tmt_kv_op *op = &ops[i];
        if (op->del) {
            rocksdb_writebatch_delete(b, op->key.p, op->key.len);
            continue;
        }
        const char *ptrs[8];
        size_t lens[8];
        TMT_ASSERT(op->n_parts <= TMT_ARRAY_LEN(ptrs));
        for (size_t k = 0; k < op->n_parts; k++) {
            ptrs[k] = op->parts[k].p;
            lens[k] = op->parts[k].len;
        }
        const char *kp = op->key.p;
        size_t kl = op->key.len;
        rocksdb_writebatch_putv(b, 1, &kp, &kl, (int)op->n_parts, ptrs, lens);
    }
    char *msg = NULL;
    rocksdb_write(kv->db, kv->wopts, b, &msg);
    rocksdb_writebatch_destroy(b);
    if (msg != NULL) {
        atomic_store(&kv->failed, true);
        return kv_fail(err, "cannot write to", kv->path, msg);
    }
    return TMT_OK;
}

int tmt_kv_get(struct tmt_kv *kv, struct tmt_slice key, struct tmt_kv_val *out, struct tmt_err *err)
{
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    char *msg = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(kv->db, kv->ropts, key.p, key.len, &msg);
    if (msg != NULL)
        return kv_fail(err, "cannot read from", kv->path, msg);
    if (ps == NULL)
        return 0;
    out->p = rocksdb_pinnableslice_value(ps, &out->len);
    out->pin = ps;
    if (out->p == NULL) { /* not found is reported as a slice without a value */
        rocksdb_pinnableslice_destroy(ps);
        return 0;
    }
    return 1;
}

void tmt_kv_val_release(void *pin)
{
    if (pin != NULL)
        rocksdb_pinnableslice_destroy(pin);
}

int tmt_kv_scan(struct tmt_kv *kv, struct tmt_slice prefix, tmt_kv_scan_fn *fn, void *arg,
                struct tmt_err *err)
{
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    /* An upper bound keeps the iterator from reading the values of the keys after the prefix. */
    char upper[256];
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t ul = prefix.len;
    if (ul > 0 && ul <= sizeof(upper)) {
        memcpy(upper, prefix.p, ul);
        while (ul > 0 && (unsigned char)upper[ul - 1] == 0xff)
            ul--;
        if (ul > 0) {
            upper[ul - 1]++;
            rocksdb_readoptions_set_iterate_upper_bound(ro, upper, ul);
        }
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator(kv->db, ro);
    rocksdb_iter_seek(it, prefix.p, prefix.len);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < prefix.len || memcmp(k, prefix.p, prefix.len) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        if (!fn(arg, (struct tmt_slice){k, kl}, (struct tmt_slice){v, vl}))
            break;
    }
    char *msg = NULL;
    rocksdb_iter_get_error(it, &msg);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (msg != NULL)
        return kv_fail(err, "cannot scan", kv->path, msg);
    return TMT_OK;
}

static uint64_t prop_u64(struct tmt_kv *kv, const char *name)
{
    uint64_t v = 0;
    if (rocksdb_property_int(kv->db, name, &v) != 0)
        return 0;
    return v;
}

uint64_t tmt_kv_disk_bytes(struct tmt_kv *kv)
{
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    return prop_u64(kv, "rocksdb.live-sst-files-size") +
           prop_u64(kv, "rocksdb.live-blob-file-size");
}

void tmt_kv_compact(struct tmt_kv *kv)
{
    TMT_CHECK_OBJ(kv, KV_MAGIC);
    if (atomic_load(&kv->failed))
        return;
    char *msg = NULL;
    rocksdb_flush_wal(kv->db, 0, &msg);
    free(msg);
    /* Every blob file rewritten too (the garbage of deleted values goes), then back to the
     * usual age cutoff. */
    static const char *const k[] = {"blob_garbage_collection_age_cutoff"};
    static const char *const all[] = {"1.0"}, *const usual[] = {"0.5"};
    msg = NULL;
    rocksdb_set_options(kv->db, 1, k, all, &msg);
    free(msg);
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
    rocksdb_compact_range_opt(kv->db, co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
    msg = NULL;
    rocksdb_set_options(kv->db, 1, k, usual, &msg);
    free(msg);
}
