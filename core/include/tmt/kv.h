/*
 * kv.h: an embedded ordered key-value store on one directory (RocksDB), for what daemons keep
 * across restarts: cached objects, jobs, accounts.
 *
 * Writes go through the write-ahead log without fsync by default, so a process killed with
 * SIGKILL loses nothing the kernel already has; a machine crash may lose the last writes (opts.sync
 * makes every write durable). Values can be kept in blob files (large values written once, out of
 * the LSM tree) and compressed with zstd. Reads return the value pinned in RocksDB's memory: no
 * copy, released by the caller.
 *
 * Threads: every function may be called from any thread (RocksDB locks internally).
 */
#ifndef TMT_KV_H
#define TMT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tmt/base.h"
#include "tmt/err.h"

struct tmt_kv_opts {
    const char *path;           /* directory, created if missing */
    int zstd_level;             /* 0: no compression; else zstd at this level (1..19) */
    bool blob_files;            /* values of at least min_blob_size go to blob files */
    uint64_t min_blob_size;     /* bytes */
    uint64_t block_cache_size;  /* bytes of RocksDB's block cache; 0: 8 MiB */
    bool sync;                  /* fsync the log at every write */
    uint64_t write_buffer_size; /* memtable bytes before a flush; 0: 16 MiB */
    /*
     * The caller checks every value it reads with its own checksum: tmt_kv_get skips RocksDB's
     * block and blob CRCs (table-driven CRC32C in Debian's build: most of the cost of reading a
     * large blob). Scans still verify.
     */
    bool own_checksums;
    /*
     * Writes are refused (TMT_ENOSPC-like TMT_EIO, "disk nearly full") while the file system
     * has less than this many bytes free, so that RocksDB itself never runs out of space
     * (its flushes and compactions need room). 0: no check.
     */
    uint64_t min_free_bytes;
};

struct tmt_kv;

/* Opens (or creates, with missing parent directories) the store. NULL with err filled (the path
 * and RocksDB's reason). */
struct tmt_kv *tmt_kv_open(const struct tmt_kv_opts *o, struct tmt_err *err);
/* Flushes the memtables to files (the next open replays no log) and closes. NULL-safe. */
void tmt_kv_close(struct tmt_kv **kv);

/* One change in an atomic batch: a put whose value is the concatenation of parts, or a delete. */
struct tmt_kv_op {
    bool del;
    struct tmt_slice key;
    const struct tmt_slice *parts; /* put only */
    size_t n_parts;
};

/*
 * Applies every op or none. Returns 0 or TMT_EIO with err filled (a full disk, say). After a
 * failed write the store is read-only until it is reopened: later writes fail at once (and
 * tmt_kv_compact and the flush at close are skipped).
 */
int tmt_kv_write(struct tmt_kv *kv, const struct tmt_kv_op *ops, size_t n,
                 struct tmt_err *err) TMT_MUST_CHECK;

/* A value read: p/len stay valid until tmt_kv_val_release. */
struct tmt_kv_val {
    const char *p;
    size_t len;
    void *pin;
};

/* Returns 1 (found, *out filled), 0 (absent) or TMT_EIO with err filled. */
int tmt_kv_get(struct tmt_kv *kv, struct tmt_slice key, struct tmt_kv_val *out,
               struct tmt_err *err) TMT_MUST_CHECK;

/* Releases a value from tmt_kv_get (a tmt_release_fn shape: the argument is val->pin). */
void tmt_kv_val_release(void *pin);

/*
 * Calls fn for every key starting with prefix, in key order, until it returns false. The views
 * are valid during the call only. Returns 0 or TMT_EIO.
 */
typedef bool tmt_kv_scan_fn(void *arg, struct tmt_slice key, struct tmt_slice val);
int tmt_kv_scan(struct tmt_kv *kv, struct tmt_slice prefix, tmt_kv_scan_fn *fn, void *arg,
                struct tmt_err *err) TMT_MUST_CHECK;

/* Bytes of live table and blob files on disk (RocksDB's size properties). */
uint64_t tmt_kv_disk_bytes(struct tmt_kv *kv);

/* Compacts the whole key range (and collects garbage blobs). Blocking; for tests and tools. */
void tmt_kv_compact(struct tmt_kv *kv);

#endif
