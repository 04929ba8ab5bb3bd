/*
 * Unit tests of edge/blobloc.c: finding large records in the blob files of a real RocksDB store
 * (written through core/kv), and what it must refuse: other versions, compressed files, files
 * gone, and blob files whose layout makes no sense.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include "blobloc.h"
#include "tmt/err.h"
#include "tmt/kv.h"

#define BIG (100u * 1024u)
#define SUM_OFF 8u

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/tmt-blobloc-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* A value of len bytes whose checksum field holds sum and whose other bytes follow seed. */
static char *value(size_t len, uint64_t sum, unsigned seed)
{
    char *v = malloc(len);
    assert_non_null(v);
    for (size_t i = 0; i < len; i++)
        v[i] = (char)((i * 31u + seed) % 251u);
    uint64_t le = htole64(sum);
    memcpy(v + SUM_OFF, &le, 8);
    return v;
}

static void put(struct tmt_kv *kv, char kind, uint64_t hkey, const char *v, size_t len)
{
    char k[9];
    k[0] = kind;
    uint64_t be = htobe64(hkey);
    memcpy(k + 1, &be, 8);
    struct tmt_slice part = {v, len};
    struct tmt_kv_op op = {.key = {k, 9}, .parts = &part, .n_parts = 1};
    struct tmt_err err = {0};
    assert_int_equal(tmt_kv_write(kv, &op, 1, &err), TMT_OK);
}

static struct tmt_kv *open_kv(const char *dir, int zstd)
{
    struct tmt_kv_opts o = {.path = dir,
                            .zstd_level = zstd,
                            .blob_files = true,
                            .min_blob_size = 4096,
                            .own_checksums = true};
    struct tmt_err err = {0};
    struct tmt_kv *kv = tmt_kv_open(&o, &err);
    assert_non_null(kv);
    return kv;
}

/* The bytes at pos in its blob file equal v. */
static void check_bytes(struct edge_blobloc *l, const struct edge_blobloc_pos *pos, const char *v,
                        size_t len)
{
    assert_int_equal(pos->len, len);
    int fd = edge_blobloc_open(l, pos->file);
    assert_true(fd >= 0);
    char *got = malloc(len);
    assert_non_null(got);
    assert_int_equal(pread(fd, got, len, (off_t)pos->off), (ssize_t)len);
    assert_memory_equal(got, v, len);
    free(got);
    close(fd);
}

static void finds_current_records_after_a_flush(void **state)
{
    (void)state;
    char *dir = tmpdir();
    struct tmt_kv *kv = open_kv(dir, 0);
    char *v1 = value(BIG, 11, 1), *v2 = value(BIG + 7, 22, 2), *v3 = value(BIG, 33, 3);
    char *small = value(5000, 44, 4), *other = value(BIG, 55, 5);
    put(kv, 'o', 1, v1, BIG);
    put(kv, 'o', 2, v2, BIG + 7);
    put(kv, 'o', 3, v3, BIG);
    put(kv, 'o', 4, small, 5000); /* below the locator's minimum */
    put(kv, 'x', 5, other, BIG);  /* another kind of key */

    struct edge_blobloc *l = edge_blobloc_new(dir, 64 * 1024, 'o', SUM_OFF);
    edge_blobloc_set(l, 1, 11);
    edge_blobloc_set(l, 2, 22);
    edge_blobloc_set(l, 3, 999); /* the store says another version is current */
    edge_blobloc_set(l, 4, 44);
    edge_blobloc_set(l, 5, 55);
    struct edge_blobloc_pos pos;
    uint64_t sum, known, located, files;
    /* In the memtable: no blob file yet. */
    edge_blobloc_rescan(l, 0);
    assert_false(edge_blobloc_find(l, 1, 0, &pos, &sum));

    tmt_kv_close(&kv); /* flushes: the values go to a blob file */
    /* Not listed again within the rescan interval... */
    assert_false(edge_blobloc_find(l, 1, EDGE_BLOBLOC_RESCAN_MS - 1, &pos, &sum));
    /* ...and then it is. */
    assert_true(edge_blobloc_find(l, 1, EDGE_BLOBLOC_RESCAN_MS, &pos, &sum));
    assert_int_equal(sum, 11);
    check_bytes(l, &pos, v1, BIG);
    assert_true(edge_blobloc_find(l, 2, 1000, &pos, &sum));
    check_bytes(l, &pos, v2, BIG + 7);
    assert_false(edge_blobloc_find(l, 3, 1000, &pos, &sum)); /* other checksum */
    assert_false(edge_blobloc_find(l, 4, 1000, &pos, &sum)); /* small: inline in a table */
    assert_false(edge_blobloc_find(l, 5, 1000, &pos, &sum)); /* not an 'o' key */
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 5);
    assert_int_equal(located, 2);
    assert_int_equal(files, 1);

    /* The same checksum again keeps the place; a new one forgets it. */
    edge_blobloc_set(l, 1, 11);
    assert_true(edge_blobloc_find(l, 1, 1000, &pos, &sum));
    edge_blobloc_set(l, 2, 23);
    assert_false(edge_blobloc_find(l, 2, 1000, &pos, &sum));
    /* The file goes (as RocksDB deletes it after a compaction): it cannot be opened; the copy
     * is forgotten, not taken again from a file already read (a relocated copy would be in a
     * newer one), and the next listing forgets the file. */
    assert_true(edge_blobloc_find(l, 1, 1000, &pos, &sum));
    char path[512];
    snprintf(path, sizeof(path), "%s/%06llu.blob", dir, (unsigned long long)pos.file);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(edge_blobloc_open(l, pos.file), -1);
    edge_blobloc_lost(l, 1);
    edge_blobloc_rescan(l, 30000);
    assert_false(edge_blobloc_find(l, 1, 30000, &pos, &sum));
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(files, 0);
    assert_int_equal(located, 0);
    edge_blobloc_del(l, 1);
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 4);

    edge_blobloc_free(&l);
    assert_null(l);
    free(v1);
    free(v2);
    free(v3);
    free(small);
    free(other);
    rm_rf(dir);
    free(dir);
}

static void compressed_files_are_not_read(void **state)
{
    (void)state;
    char *dir = tmpdir();
    struct tmt_kv *kv = open_kv(dir, 3);
    char *v = value(BIG, 11, 1);
    put(kv, 'o', 1, v, BIG);
    tmt_kv_close(&kv);
    struct edge_blobloc *l = edge_blobloc_new(dir, 64 * 1024, 'o', SUM_OFF);
    edge_blobloc_set(l, 1, 11);
    edge_blobloc_rescan(l, 0);
    struct edge_blobloc_pos pos;
    uint64_t sum, known, located, files;
    assert_false(edge_blobloc_find(l, 1, 0, &pos, &sum));
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(files, 1);
    assert_int_equal(located, 0);
    edge_blobloc_free(&l);
    free(v);
    rm_rf(dir);
    free(dir);
}

static void write_file(const char *dir, const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
}

static void nonsense_files_are_survived(void **state)
{
    (void)state;
    char *dir = tmpdir();
    struct edge_blobloc *l = edge_blobloc_new(dir, 64, 'o', SUM_OFF);
    edge_blobloc_set(l, 1, 11);
    /* A valid file header, then a record whose lengths run past the end. */
    char f[30 + 32 + 16] = {0};
    uint32_t magic = htole32(0x00248f37u), version = htole32(1);
    memcpy(f, &magic, 4);
    memcpy(f + 4, &version, 4);
    uint64_t klen = htole64(9), vlen = htole64(UINT64_C(1) << 40);
    memcpy(f + 30, &klen, 8);
    memcpy(f + 38, &vlen, 8);
    write_file(dir, "000007.blob", f, sizeof(f));
    /* A key length no store writes. */
    klen = htole64(UINT64_C(1) << 50);
    vlen = htole64(100);
    memcpy(f + 30, &klen, 8);
    memcpy(f + 38, &vlen, 8);
    write_file(dir, "000008.blob", f, sizeof(f));
    /* Shorter than a header, another magic, names that are not blob files. */
    write_file(dir, "000009.blob", f, 10);
    write_file(dir, "000010.blob", "not a blob file at all, just some bytes", 40);
    write_file(dir, "x.blob", f, sizeof(f));
    write_file(dir, "000011.sst", f, sizeof(f));
    /* A record that fits: key 'o' + hash 1, a value whose checksum field holds 11. */
    char g[30 + 32 + 9 + 64 + 32] = {0};
    memcpy(g, f, 30);
    klen = htole64(9);
    vlen = htole64(64);
    memcpy(g + 30, &klen, 8);
    memcpy(g + 38, &vlen, 8);
    g[62] = 'o';
    uint64_t be = htobe64(1), sum = htole64(11);
    memcpy(g + 63, &be, 8);
    memcpy(g + 71 + SUM_OFF, &sum, 8);
    memcpy(g + 30 + 32 + 9 + 64, &magic, 4); /* the footer */
    write_file(dir, "000012.blob", g, sizeof(g));
    edge_blobloc_rescan(l, 0);
    struct edge_blobloc_pos pos;
    uint64_t s, known, located, files;
    assert_true(edge_blobloc_find(l, 1, 0, &pos, &s));
    assert_int_equal(pos.file, 12);
    assert_int_equal(pos.off, 71);
    assert_int_equal(pos.len, 64);
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(files, 5);
    edge_blobloc_free(&l);
    rm_rf(dir);
    free(dir);
}

static void table_grows_and_deletes(void **state)
{
    (void)state;
    struct edge_blobloc *l = edge_blobloc_new("/nonexistent", 64, 'o', SUM_OFF);
    uint64_t known, located, files;
    for (uint64_t i = 1; i <= 5000; i++)
        edge_blobloc_set(l, i * 0x9e3779b97f4a7c15ull, i);
    edge_blobloc_set(l, 0, 1); /* hash 0 is never kept */
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 5000);
    for (uint64_t i = 1; i <= 5000; i += 2)
        edge_blobloc_del(l, i * 0x9e3779b97f4a7c15ull);
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 2500);
    /* Each remaining key is still found in its probe run after the deletions: setting it again
     * adds nothing. */
    for (uint64_t i = 2; i <= 5000; i += 2)
        edge_blobloc_set(l, i * 0x9e3779b97f4a7c15ull, i);
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 2500);
    for (uint64_t i = 2; i <= 5000; i += 2)
        edge_blobloc_del(l, i * 0x9e3779b97f4a7c15ull);
    edge_blobloc_counts(l, &known, &located, &files);
    assert_int_equal(known, 0);
    edge_blobloc_rescan(l, 0); /* a directory that does not exist lists nothing */
    edge_blobloc_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_current_records_after_a_flush),
        cmocka_unit_test(compressed_files_are_not_read),
        cmocka_unit_test(nonsense_files_are_survived),
        cmocka_unit_test(table_grows_and_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
