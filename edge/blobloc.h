/*
 * blobloc.h: where the large records of one RocksDB store lie in its blob files.
 *
 * RocksDB keeps each large value in a blob file, uncompressed when the store is. A read through
 * RocksDB copies the value twice (the file into a read buffer, the buffer into the value it
 * returns) before the server copies it a third time into the socket. The locator lets a hit
 * skip all three: it remembers, for each large record, the file number and offset of its value,
 * so that the record's header fields are read with one pread, its checksum is checked by
 * streaming the file, and the body is sent with sendfile from the page cache.
 *
 * It relies on the blob file layout of RocksDB's documented format (blob_log_format.h: a
 * 30-byte file header, records of a 32-byte header, the key and the value, a 32-byte footer)
 * and on nothing else. It is safe by construction: the store tells the locator the checksum of
 * each key's current record (its own XXH3-64, written in the record), a record found in a blob
 * file is taken only if it carries that checksum, and a hit checks the bytes it sends against
 * it. A stale copy in an old file is therefore the same bytes as the current one, and a file
 * that RocksDB has since deleted fails to open: the hit then reads through RocksDB, and the
 * locator looks for the record again in newer files.
 *
 * Blob files are found by listing the store's directory, at open and then at most every
 * EDGE_BLOBLOC_RESCAN_MS when a key's record has not been found yet (it is in the memtable until
 * a flush writes its blob file). Files are opened per hit and closed when the response is done,
 * so a deleted file's space is never held by an idle locator.
 *
 * Memory: one 40-byte slot per large record (the table keeps at least a quarter free), plus 24
 * bytes per blob file. Not thread-safe: the store's mutex guards it.
 */
#ifndef EDGE_BLOBLOC_H
#define EDGE_BLOBLOC_H

#include <stdbool.h>
#include <stdint.h>

#define EDGE_BLOBLOC_RESCAN_MS 250

struct edge_blobloc;

/* Where a record's value lies: blob file number, offset of the value, its length. */
struct edge_blobloc_pos {
    uint64_t file;
    uint64_t off;
    uint64_t len;
};

/*
 * A locator for the store in dir, for values of at least min_len bytes under 9-byte keys (the
 * byte `kind`, then a 64-bit big-endian hash) whose value holds the record's checksum as a
 * little-endian u64 at offset sum_off. Reads nothing yet: edge_blobloc_rescan does, once the
 * current records are set.
 */
struct edge_blobloc *edge_blobloc_new(const char *dir, uint64_t min_len, char kind,
                                      uint32_t sum_off);
void edge_blobloc_free(struct edge_blobloc **l);

/* The current record of hkey has checksum sum (a store write, or the index at open). */
void edge_blobloc_set(struct edge_blobloc *l, uint64_t hkey, uint64_t sum);
/* hkey has no record any more, or a small one. */
void edge_blobloc_del(struct edge_blobloc *l, uint64_t hkey);

/*
 * Is hkey's current record located? Fills *pos and *sum. A known record not yet found lists the
 * directory again if the last listing is EDGE_BLOBLOC_RESCAN_MS old (now_ms: monotonic).
 */
bool edge_blobloc_find(struct edge_blobloc *l, uint64_t hkey, uint64_t now_ms,
                       struct edge_blobloc_pos *pos, uint64_t *sum);

/* The located copy of hkey could not be used (its file is gone, or it read wrong): forget it. */
void edge_blobloc_lost(struct edge_blobloc *l, uint64_t hkey);

/* Opens blob file `file` read-only: a descriptor, or -1 (errno set). Any thread. */
int edge_blobloc_open(const struct edge_blobloc *l, uint64_t file);

/* Lists the directory and reads the records of new or grown blob files now. */
void edge_blobloc_rescan(struct edge_blobloc *l, uint64_t now_ms);

/* Counts for tests and metrics: records known, records located, blob files seen. */
void edge_blobloc_counts(const struct edge_blobloc *l, uint64_t *known, uint64_t *located,
                         uint64_t *files);

#endif
