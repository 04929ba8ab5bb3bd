/*
 * blobloc.c: where the large records of one RocksDB store lie in its blob files (see blobloc.h).
 */
#include "blobloc.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmt/base.h"
#include "tmt/log.h"

/* RocksDB's blob file layout (db/blob/blob_log_format.h), little-endian. */
#define BLOB_MAGIC 0x00248f37u
#define BLOB_VERSION 1u
#define BLOB_HEADER_LEN 30u     /* magic, version, column family, flags, compression, expiry */
#define BLOB_COMPRESSION_OFF 13 /* one byte, 0 = none */
#define BLOB_RECORD_HEAD 32u    /* key length u64, value length u64, expiry, two CRCs */
#define BLOB_FOOTER_LEN 32u     /* starts with the magic */

#define KEY_LEN 9u
#define WINDOW (64u * 1024u)
#define WALK_BUDGET 65536u /* records per rescan at run time (the first one reads everything) */

struct slot {
    uint64_t hkey; /* 0 = free */
    uint64_t sum;
    uint64_t file; /* 0 = not found yet (RocksDB numbers its files from 1) */
    uint64_t off, len;
};

struct bfile {
    uint64_t num;
    uint64_t walked; /* offset of the next record; 0 = header not read yet */
    bool done;       /* footer reached, or not a file this reads: never read again */
};

struct edge_blobloc {
    char *dir;
    uint64_t min_len;
    char kind;
    uint32_t sum_off;
    struct slot *slots;
    size_t mask, used, located;
    struct bfile *files;
    size_t n_files;
    uint64_t last_scan_ms;
    bool scanned;
    char *win; /* WINDOW bytes */
};

/* ---- the table: linear probing, deletion by backward shift ---- */

static size_t home(const struct edge_blobloc *l, uint64_t hkey)
{
    return (size_t)(tmt_mix64(hkey) & l->mask);
}

static struct slot *slot_find(const struct edge_blobloc *l, uint64_t hkey)
{
    for (size_t i = home(l, hkey);; i = (i + 1) & l->mask) {
        struct slot *s = &l->slots[i];
        if (s->hkey == hkey)
            return s;
        if (s->hkey == 0)
            return NULL;
    }
}

static void grow(struct edge_blobloc *l)
{
    size_t old_n = l->mask + 1;
    struct slot *old = l->slots;
    l->mask = old_n * 2 - 1;
    l->slots = tmt_xcalloc(l->mask + 1, sizeof(*l->slots));
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].hkey == 0)
            continue;
        size_t j = home(l, old[i].hkey);
        while (l->slots[j].hkey != 0)
            j = (j + 1) & l->mask;
        l->slots[j] = old[i];
    }
    free(old);
}

static void slot_remove(struct edge_blobloc *l, struct slot *s)
{
    if (s->file != 0)
        l->located--;
    l->used--;
    size_t i = (size_t)(s - l->slots);
    for (size_t j = (i + 1) & l->mask;; j = (j + 1) & l->mask) {
        struct slot *n = &l->slots[j];
        if (n->hkey == 0)
            break;
        size_t h = home(l, n->hkey);
        /* n may move into the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (stays)
            continue;
        l->slots[i] = *n;
        i = j;
    }
    l->slots[i] = (struct slot){0};
}

void edge_blobloc_set(struct edge_blobloc *l, uint64_t hkey, uint64_t sum)
{
    if (hkey == 0)
        return;
    struct slot *s = slot_find(l, hkey);
    if (s == NULL) {
        if ((l->used + 1) * 4 > (l->mask + 1) * 3)
            grow(l);
        size_t i = home(l, hkey);
        while (l->slots[i].hkey != 0)
            i = (i + 1) & l->mask;
        s = &l->slots[i];
        s->hkey = hkey;
        l->used++;
    } else if (s->sum == sum) {
        return; /* the same bytes again: where they were found still holds them */
    }
    if (s->file != 0)
        l->located--;
    s->sum = sum;
    s->file = 0;
}

void edge_blobloc_del(struct edge_blobloc *l, uint64_t hkey)
{
    struct slot *s = hkey != 0 ? slot_find(l, hkey) : NULL;
    if (s != NULL)
        slot_remove(l, s);
}

void edge_blobloc_lost(struct edge_blobloc *l, uint64_t hkey)
{
    struct slot *s = hkey != 0 ? slot_find(l, hkey) : NULL;
    if (s != NULL && s->file != 0) {
        s->file = 0;
        l->located--;
    }
}

bool edge_blobloc_find(struct edge_blobloc *l, uint64_t hkey, uint64_t now_ms,
                       struct edge_blobloc_pos *pos, uint64_t *sum)
{
    struct slot *s = hkey != 0 ? slot_find(l, hkey) : NULL;
    if (s == NULL)
        return false;
    if (s->file == 0 && now_ms - l->last_scan_ms >= EDGE_BLOBLOC_RESCAN_MS) {
        edge_blobloc_rescan(l, now_ms);
        s = slot_find(l, hkey);
    }
    if (s == NULL || s->file == 0)
        return false;
    *pos = (struct edge_blobloc_pos){.file = s->file, .off = s->off, .len = s->len};
    *sum = s->sum;
    return true;
}

/* ---- blob files ---- */

static int file_open(const struct edge_blobloc *l, uint64_t num)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%06" PRIu64 ".blob", l->dir, num);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

int edge_blobloc_open(const struct edge_blobloc *l, uint64_t file)
{
    return file_open(l, file);
}

static uint64_t le64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static uint32_t le32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

/* A record of blob file f: if its key and checksum are a known key's current record, note where. */
static void note_record(struct edge_blobloc *l, const struct bfile *f, const char *key,
                        const char *sum, uint64_t value_off, uint64_t value_len)
{
    if (key[0] != l->kind)
        return;
    uint64_t be;
    memcpy(&be, key + 1, 8);
    struct slot *s = slot_find(l, be64toh(be));
    if (s == NULL || s->sum != le64(sum) || (s->file != 0 && s->file >= f->num))
        return; /* unknown, another version, or already found in a newer file */
    if (s->file == 0)
        l->located++;
    s->file = f->num;
    s->off = value_off;
    s->len = value_len;
}

/* Reads f's records from where the last walk stopped, at most *budget of them. */
static void walk(struct edge_blobloc *l, struct bfile *f, uint64_t *budget)
{
    int fd = file_open(l, f->num);
    if (fd < 0)
        return; /* deleted since the listing */
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto out;
    uint64_t size = (uint64_t)st.st_size;
    if (f->walked == 0) {
        char h[BLOB_HEADER_LEN];
        if (size < BLOB_HEADER_LEN)
            goto out; /* being written */
        if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
            goto out;
        if (le32(h) != BLOB_MAGIC || le32(h + 4) != BLOB_VERSION || h[BLOB_COMPRESSION_OFF] != 0) {
            f->done = true; /* not a layout this knows, or compressed: hits read through RocksDB */
            goto out;
        }
        f->walked = BLOB_HEADER_LEN;
    }
    const uint64_t need = BLOB_RECORD_HEAD + KEY_LEN + l->sum_off + 8;
    uint64_t win_off = 0, win_len = 0;
    while (*budget > 0 && size - f->walked >= BLOB_FOOTER_LEN) {
        uint64_t off = f->walked;
        if (off < win_off || off + need > win_off + win_len) {
            ssize_t n = pread(fd, l->win, TMT_MIN((uint64_t)WINDOW, size - off), (off_t)off);
            if (n < (ssize_t)BLOB_FOOTER_LEN)
                break;
            win_off = off;
            win_len = (uint64_t)n;
        }
        const char *p = l->win + (off - win_off);
        if (le32(p) == BLOB_MAGIC) {
            f->done = true; /* the footer: the file is complete */
            break;
        }
        uint64_t klen = le64(p), vlen = le64(p + 8);
        if (klen > (1u << 20) || vlen > size) {
            tmt_log(TMT_LOG_WARN, "store", "blob file layout not understood, not located",
                    "dir=%s file=%" PRIu64 " offset=%" PRIu64, l->dir, f->num, off);
            f->done = true;
            break;
        }
        uint64_t end = off + BLOB_RECORD_HEAD + klen + vlen;
        if (end > size)
            break; /* the rest is being written */
        /* The window holds `need` bytes from off unless the read came up short. */
        if (klen == KEY_LEN && vlen >= l->min_len && vlen >= l->sum_off + 8u &&
            off + need <= win_off + win_len) {
            const char *k = p + BLOB_RECORD_HEAD;
            note_record(l, f, k, k + KEY_LEN + l->sum_off, off + BLOB_RECORD_HEAD + KEY_LEN, vlen);
        }
        f->walked = end;
        (*budget)--;
    }
out:
    close(fd);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool blob_name(const char *name, uint64_t *num)
{
    size_t n = strlen(name);
    if (n < 6 || n > 25 || strcmp(name + n - 5, ".blob") != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n - 5; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *num = v;
    return v != 0;
}

void edge_blobloc_rescan(struct edge_blobloc *l, uint64_t now_ms)
{
    l->last_scan_ms = now_ms;
    DIR *d = opendir(l->dir);
    if (d == NULL)
        return;
    uint64_t *nums = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        uint64_t num;
        if (!blob_name(e->d_name, &num))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            nums = tmt_xrealloc(nums, cap * sizeof(*nums));
        }
        nums[n++] = num;
    }
    closedir(d);
    if (n > 1)
        qsort(nums, n, sizeof(*nums), cmp_u64);
    /* The files now listed, keeping what was read of those already known (both sorted). */
    struct bfile *files = tmt_xcalloc(n > 0 ? n : 1, sizeof(*files));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        while (k < l->n_files && l->files[k].num < nums[i])
            k++;
        if (k < l->n_files && l->files[k].num == nums[i])
            files[i] = l->files[k];
        else
            files[i] = (struct bfile){.num = nums[i]};
    }
    free(nums);
    free(l->files);
    l->files = files;
    l->n_files = n;
    uint64_t budget = l->scanned ? WALK_BUDGET : UINT64_MAX;
    l->scanned = true;
    for (size_t i = 0; i < n && budget > 0; i++) {
        if (!files[i].done)
            walk(l, &files[i], &budget);
    }
}

struct edge_blobloc *edge_blobloc_new(const char *dir, uint64_t min_len, char kind,
                                      uint32_t sum_off)
{
    struct edge_blobloc *l = tmt_xcalloc(1, sizeof(*l));
    l->dir = tmt_xstrdup(dir);
    l->min_len = min_len;
    l->kind = kind;
    l->sum_off = sum_off;
    l->mask = 1023;
    l->slots = tmt_xcalloc(l->mask + 1, sizeof(*l->slots));
    l->win = tmt_xmalloc(WINDOW);
    return l;
}

void edge_blobloc_free(struct edge_blobloc **lp)
{
    struct edge_blobloc *l = *lp;
    if (l == NULL)
        return;
    free(l->dir);
    free(l->slots);
    free(l->files);
    free(l->win);
    free(l);
    *lp = NULL;
}

void edge_blobloc_counts(const struct edge_blobloc *l, uint64_t *known, uint64_t *located,
                         uint64_t *files)
{
    *known = l->used;
    *located = l->located;
    *files = l->n_files;
}
