/*
 * metrics.c: the counters registry: tables of struct tmt_metric_def become per-thread slot
 * arrays, the Prometheus text exposition and the Markdown reference.
 *
 * Invariants:
 * - Slot index i is the i-th def registered over all tables, in order; defs[] holds a pointer to
 *   each def (the tables themselves are the caller's static data).
 * - Every def was checked at registration: a Prometheus name, counters end in "_total", labels
 *   NULL or well-formed `k="v",...` text with no '}' or newline, non-empty help. A name belongs
 *   to one table, where its defs are adjacent and share type and help; no two defs share name
 *   and labels. A table that breaks this is a bug in the program, so registration panics.
 * - After the seal, defs[] and the shard pointers never change. Each shard is its own allocation,
 *   starting on a 64-byte boundary and padded to a whole number of 64-byte lines, so no two
 *   writer threads (and no unrelated heap data) share a cache line.
 *
 * Threading: registration and the seal happen on one thread before the writer threads start.
 * After that, shard i is written only by its owner (relaxed load + store, see metrics.h) and any
 * thread may read: sums are relaxed loads, so a reader sees each slot at some recent value and
 * no lock is taken anywhere.
 */
#include "tmt/metrics.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/log.h"

#define METRICS_MAGIC 0x4d455452u
#define METRICS_LINE 64
#define METRICS_SLOTS_PER_LINE (METRICS_LINE / sizeof(tmt_metric_slot))

static_assert(sizeof(tmt_metric_slot) == 8, "a slot is one 64-bit word");
static_assert(METRICS_LINE % sizeof(tmt_metric_slot) == 0, "slots tile a cache line");

struct tmt_metrics {
    unsigned magic;
    unsigned n_shards;
    bool sealed;
    const struct tmt_metric_def **defs; /* by slot index; n_defs used of cap_defs */
    size_t n_defs;
    size_t cap_defs;
    tmt_metric_slot **shards; /* n_shards arrays, allocated by the seal */
};

/* ---- table validation ---- */

static TMT_NORETURN void bad_table(const struct tmt_metric_def *defs, size_t i, const char *why,
                                   const char *func, int line)
{
    const char *name = defs[i].name != NULL ? defs[i].name : "(null)";
    const char *labels = defs[i].labels != NULL ? defs[i].labels : "";
    tmt_log_write(TMT_LOG_ERROR, "metrics", "malformed metrics table",
                  "index=%zu name=\"%s\" labels={%s} why=\"%s\"", i, name, labels, why);
    tmt_panic(why, func, __FILE__, line);
}

#define TABLE_CHECK(cond, defs, i, why)                                                            \
    do {                                                                                           \
        if (TMT_UNLIKELY(!(cond)))                                                                 \
            bad_table((defs), (i), "metrics table: " why, __func__, __LINE__);                     \
    } while (0)

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool name_ok(const char *s)
{
    if (!(is_alpha(*s) || *s == '_' || *s == ':'))
        return false;
    for (s++; *s != '\0'; s++) {
        if (!(is_alpha(*s) || is_digit(*s) || *s == '_' || *s == ':'))
            return false;
    }
    return true;
}

static bool ends_with_total(const char *s)
{
    static const char suffix[] = "_total";
    size_t n = strlen(s);
    return n > sizeof(suffix) - 1 && strcmp(s + n - (sizeof(suffix) - 1), suffix) == 0;
}

/*
 * label="value"(,label="value")*, values escaped as the exposition wants (\\ \" \n). A '}' is
 * refused even inside a value, and so is a raw newline: either would cut the sample line.
 */
static bool labels_ok(const char *s)
{
    for (;;) {
        if (!(is_alpha(*s) || *s == '_'))
            return false;
        for (s++; is_alpha(*s) || is_digit(*s) || *s == '_'; s++)
            ;
        if (*s++ != '=' || *s++ != '"')
            return false;
        for (;;) {
            char c = *s++;
            if (c == '\0' || c == '\n' || c == '}')
                return false;
            if (c == '"')
                break;
            if (c == '\\') {
                c = *s++;
                if (c != '\\' && c != '"' && c != 'n')
                    return false;
            }
        }
        if (*s == '\0')
            return true;
        if (*s++ != ',')
            return false;
    }
}

static bool same_labels(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void check_def(const struct tmt_metric_def *defs, size_t i)
{
    const struct tmt_metric_def *d = &defs[i];

    TABLE_CHECK(d->name != NULL && name_ok(d->name), defs, i, "bad name");
    TABLE_CHECK(d->type == TMT_METRIC_COUNTER || d->type == TMT_METRIC_GAUGE, defs, i, "bad type");
    TABLE_CHECK(d->type != TMT_METRIC_COUNTER || ends_with_total(d->name), defs, i,
                "counter name must end in _total");
    TABLE_CHECK(d->labels == NULL || labels_ok(d->labels), defs, i,
                "labels must be NULL or label=\"value\",... without '}' or newline");
    TABLE_CHECK(d->help != NULL && d->help[0] != '\0', defs, i, "help missing");
}

/*
 * defs[i] against everything before it: what is already registered (m->defs) and defs[0..i-1]
 * of the same table. A def either continues the group of defs[i-1] or starts a name never seen.
 */
static void check_group(const struct tmt_metrics *m, const struct tmt_metric_def *defs, size_t i)
{
    const struct tmt_metric_def *d = &defs[i];

    if (i > 0 && strcmp(d->name, defs[i - 1].name) == 0) {
        TABLE_CHECK(d->type == defs[i - 1].type, defs, i, "one name, two types");
        TABLE_CHECK(strcmp(d->help, defs[i - 1].help) == 0, defs, i, "one name, two helps");
        for (size_t j = i; j-- > 0 && strcmp(defs[j].name, d->name) == 0;)
            TABLE_CHECK(!same_labels(defs[j].labels, d->labels), defs, i, "duplicate labels");
        return;
    }
    for (size_t j = 0; j < i; j++)
        TABLE_CHECK(strcmp(defs[j].name, d->name) != 0, defs, i, "name group not adjacent");
    for (size_t j = 0; j < m->n_defs; j++)
        TABLE_CHECK(strcmp(m->defs[j]->name, d->name) != 0, defs, i,
                    "name already registered by another table");
}

/* ---- lifecycle ---- */

struct tmt_metrics *tmt_metrics_new(unsigned n_shards)
{
    TMT_ASSERT(n_shards >= 1);
    struct tmt_metrics *m = tmt_xcalloc(1, sizeof(*m));
    m->magic = METRICS_MAGIC;
    m->n_shards = n_shards;
    return m;
}

void tmt_metrics_free(struct tmt_metrics **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    struct tmt_metrics *m = *mp;
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    if (m->shards != NULL) {
        for (unsigned i = 0; i < m->n_shards; i++)
            free(m->shards[i]);
        free(m->shards);
    }
    free(m->defs);
    m->magic = 0;
    free(m);
    *mp = NULL;
}

size_t tmt_metrics_register(struct tmt_metrics *m, const struct tmt_metric_def *defs, size_t n)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(!m->sealed);
    TMT_ASSERT(defs != NULL || n == 0);
    TMT_ASSERT(n <= SIZE_MAX / sizeof(*m->defs) - m->n_defs);

    for (size_t i = 0; i < n; i++) {
        check_def(defs, i);
        check_group(m, defs, i);
    }
    if (m->n_defs + n > m->cap_defs) {
        size_t cap = TMT_MAX(m->n_defs + n, 2 * m->cap_defs);
        m->defs = tmt_xrealloc(m->defs, cap * sizeof(*m->defs));
        m->cap_defs = cap;
    }
    size_t base = m->n_defs;
    for (size_t i = 0; i < n; i++)
        m->defs[base + i] = &defs[i];
    m->n_defs += n;
    return base;
}

static tmt_metric_slot *alloc_shard(size_t n_slots)
{
    /* aligned_alloc wants a size that is a multiple of the alignment: n_slots fills whole lines. */
    size_t bytes = n_slots * sizeof(tmt_metric_slot);
    tmt_metric_slot *s = aligned_alloc(METRICS_LINE, bytes);
    if (TMT_UNLIKELY(s == NULL)) {
        tmt_log_write(TMT_LOG_ERROR, "metrics", "out of memory", "bytes=%zu", bytes);
        abort();
    }
    for (size_t i = 0; i < n_slots; i++)
        atomic_init(&s[i], 0);
    return s;
}

void tmt_metrics_seal(struct tmt_metrics *m)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(!m->sealed);

    /* At least one line, so an empty registry still hands out distinct valid arrays. */
    size_t lines = (m->n_defs + METRICS_SLOTS_PER_LINE - 1) / METRICS_SLOTS_PER_LINE;
    size_t n_slots = TMT_MAX(lines, (size_t)1) * METRICS_SLOTS_PER_LINE;
    m->shards = tmt_xcalloc(m->n_shards, sizeof(*m->shards));
    for (unsigned i = 0; i < m->n_shards; i++)
        m->shards[i] = alloc_shard(n_slots);
    m->sealed = true;
}

tmt_metric_slot *tmt_metrics_shard(struct tmt_metrics *m, unsigned i)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(m->sealed);
    TMT_ASSERT(i < m->n_shards);
    return m->shards[i];
}

unsigned tmt_metrics_n_shards(const struct tmt_metrics *m)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    return m->n_shards;
}

uint64_t tmt_metrics_value(const struct tmt_metrics *m, size_t slot)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(m->sealed);
    TMT_ASSERT(slot < m->n_defs);
    uint64_t sum = 0;
    for (unsigned i = 0; i < m->n_shards; i++)
        sum += atomic_load_explicit(&m->shards[i][slot], memory_order_relaxed);
    return sum;
}

long tmt_metrics_find(const struct tmt_metrics *m, const char *name, const char *labels)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(name != NULL);
    for (size_t i = 0; i < m->n_defs; i++) {
        if (strcmp(m->defs[i]->name, name) == 0 && same_labels(m->defs[i]->labels, labels))
            return (long)i;
    }
    return -1;
}

/* ---- text output ---- */

/*
 * Both outputs are written twice by the same code: first with p NULL to count the bytes, then
 * into a buffer of exactly that size. The values are snapshotted beforehand, so the two passes
 * see the same numbers and agree on every digit.
 */
struct out {
    char *p;
    size_t len;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
    if (o->p != NULL)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_char(struct out *o, char c)
{
    put_mem(o, &c, 1);
}

static void put_u64(struct out *o, uint64_t v)
{
    char buf[20];
    size_t i = sizeof(buf);
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(o, buf + i, sizeof(buf) - i);
}

/* A gauge sum is a two's complement int64: shards' contributions wrap modulo 2^64. */
static void put_i64_bits(struct out *o, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        put_char(o, '-');
        v = (uint64_t)0 - v;
    }
    put_u64(o, v);
}

static const char *type_name(enum tmt_metric_type t)
{
    switch (t) {
    case TMT_METRIC_COUNTER:
        return "counter";
    case TMT_METRIC_GAUGE:
        return "gauge";
    }
    TMT_UNREACHABLE("type checked at registration");
}

/* HELP text escaping of the 0.0.4 text format: backslash and line feed only. */
static void put_help(struct out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            put_mem(o, "\\\\", 2);
        else if (*s == '\n')
            put_mem(o, "\\n", 2);
        else
            put_char(o, *s);
    }
}

static bool group_starts(const struct tmt_metrics *m, size_t i)
{
    return i == 0 || strcmp(m->defs[i]->name, m->defs[i - 1]->name) != 0;
}

static void write_exposition(const struct tmt_metrics *m, const uint64_t *vals, struct out *o)
{
    for (size_t i = 0; i < m->n_defs; i++) {
        const struct tmt_metric_def *d = m->defs[i];
        if (group_starts(m, i)) {
            put_str(o, "# HELP ");
            put_str(o, d->name);
            put_char(o, ' ');
            put_help(o, d->help);
            put_str(o, "\n# TYPE ");
            put_str(o, d->name);
            put_char(o, ' ');
            put_str(o, type_name(d->type));
            put_char(o, '\n');
        }
        put_str(o, d->name);
        if (d->labels != NULL) {
            put_char(o, '{');
            put_str(o, d->labels);
            put_char(o, '}');
        }
        put_char(o, ' ');
        if (d->type == TMT_METRIC_GAUGE)
            put_i64_bits(o, vals[i]);
        else
            put_u64(o, vals[i]);
        put_char(o, '\n');
    }
}

char *tmt_metrics_format(const struct tmt_metrics *m, size_t *len)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);
    TMT_ASSERT(m->sealed);

    uint64_t *vals = malloc(TMT_MAX(m->n_defs, (size_t)1) * sizeof(*vals));
    if (vals == NULL)
        return NULL;
    for (size_t i = 0; i < m->n_defs; i++)
        vals[i] = tmt_metrics_value(m, i);

    struct out o = {NULL, 0};
    write_exposition(m, vals, &o);
    size_t need = o.len;
    o.p = malloc(need + 1);
    if (o.p == NULL) {
        free(vals);
        return NULL;
    }
    o.len = 0;
    write_exposition(m, vals, &o);
    TMT_ASSERT(o.len == need);
    o.p[need] = '\0';
    free(vals);
    if (len != NULL)
        *len = need;
    return o.p;
}

/* A table cell keeps its pipes from ending the cell; a newline would end the row. */
static void put_cell_text(struct out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            put_mem(o, "\\|", 2);
        else if (*s == '\\')
            put_mem(o, "\\\\", 2);
        else if (*s == '\n')
            put_char(o, ' ');
        else
            put_char(o, *s);
    }
}

/*
 * A Markdown code span: fenced with one backtick more than the longest run inside, padded with
 * spaces when the text has backticks, pipes escaped for the table (GFM unescapes them first).
 */
static void put_code(struct out *o, const char *s)
{
    size_t longest = 0, run = 0;
    for (const char *p = s; *p != '\0'; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = TMT_MAX(longest, run);
    }
    for (size_t k = 0; k <= longest; k++)
        put_char(o, '`');
    if (longest > 0)
        put_char(o, ' ');
    for (; *s != '\0'; s++) {
        if (*s == '|')
            put_mem(o, "\\|", 2);
        else
            put_char(o, *s);
    }
    if (longest > 0)
        put_char(o, ' ');
    for (size_t k = 0; k <= longest; k++)
        put_char(o, '`');
}

static void write_reference(const struct tmt_metrics *m, struct out *o)
{
    put_str(o, "| metric | type | labels | help |\n| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < m->n_defs;) {
        const struct tmt_metric_def *d = m->defs[i];
        size_t end = i + 1;
        while (end < m->n_defs && !group_starts(m, end))
            end++;

        put_str(o, "| ");
        put_code(o, d->name);
        put_str(o, " | ");
        put_str(o, type_name(d->type));
        put_str(o, " |");
        /* A lone def without labels leaves the cell empty; in a group, "(none)" marks it. */
        if (end - i > 1 || d->labels != NULL) {
            for (size_t j = i; j < end; j++) {
                put_str(o, j == i ? " " : ", ");
                if (m->defs[j]->labels != NULL)
                    put_code(o, m->defs[j]->labels);
                else
                    put_str(o, "(none)");
            }
        }
        put_str(o, " | ");
        put_cell_text(o, d->help);
        put_str(o, " |\n");
        i = end;
    }
}

char *tmt_metrics_reference(const struct tmt_metrics *m)
{
    TMT_CHECK_OBJ(m, METRICS_MAGIC);

    struct out o = {NULL, 0};
    write_reference(m, &o);
    size_t need = o.len;
    o.p = malloc(need + 1);
    if (o.p == NULL)
        return NULL;
    o.len = 0;
    write_reference(m, &o);
    TMT_ASSERT(o.len == need);
    o.p[need] = '\0';
    return o.p;
}
