/*
 * conf_load.c: applying defaults and sources to a settings struct.
 *
 * libinih tokenizes each source. It is fed through our own line reader, which keeps the line
 * number and the raw line (so messages carry LINE:COL), and which screens every line first: a line
 * that is not blank, a comment, a well-formed `[section]` or a `key = value` is reported by us with
 * its line and replaced by a comment, so inih never splits, truncates or silently drops anything.
 * inih's multi-line continuation is off: an indented line is a line of its own.
 *
 * Per load, each key remembers where it was last set (source and line) for duplicate detection and
 * for the messages of the schema's cross-key check.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_int.h"
#include "tmt/err.h"

struct key_state {
    const char *src;       /* name of the source that last set it; NULL = default */
    unsigned line;         /* its line there (0 for command-line sets) */
    unsigned src_index;    /* which source, to tell duplicates within one source */
    unsigned section_line; /* line of its [section] header in the last text source, or 0 */
};

struct load_ctx {
    const struct tmt_conf_schema *schema;
    void *settings;
    struct tmt_conf_diag *diag;
    struct key_state *keys;
    size_t n_keys;

    /* The TEXT source being read. */
    const struct tmt_conf_src *src;
    unsigned src_index;
    size_t pos;
    unsigned line;
    const char *raw; /* the current raw line (not NUL-terminated) */
    size_t raw_len;
    bool section_ok; /* the current [section] exists in the schema */
};

struct tmt_conf_check {
    struct load_ctx *ctx;
};

void tmt_conf_diag_add(struct tmt_conf_diag *diag, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (diag->n == diag->cap) {
        diag->cap = diag->cap ? diag->cap * 2 : 8;
        diag->lines = tmt_xrealloc(diag->lines, diag->cap * sizeof(*diag->lines));
    }
    diag->lines[diag->n++] = tmt_xstrdup(buf);
}

void tmt_conf_diag_fini(struct tmt_conf_diag *diag)
{
    for (size_t i = 0; i < diag->n; i++)
        free(diag->lines[i]);
    free(diag->lines);
    diag->lines = NULL;
    diag->n = diag->cap = 0;
}

void tmt_conf_init(const struct tmt_conf_schema *schema, void *settings)
{
    memset(settings, 0, schema->size);
}

void tmt_conf_fini(const struct tmt_conf_schema *schema, void *settings)
{
    if (settings == NULL)
        return;
    size_t n = tmt_conf_n_keys(schema);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        tmt_conf_clear_value(k, tmt_conf_field(settings, base, k));
    }
}

static bool section_exists(const struct tmt_conf_schema *schema, const char *s, size_t len)
{
    size_t n = tmt_conf_n_keys(schema);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (strlen(k->section) == len && memcmp(k->section, s, len) == 0)
            return true;
    }
    return false;
}

static long find_key(const struct tmt_conf_schema *schema, const char *section, size_t slen,
                     const char *name, size_t nlen)
{
    size_t n = tmt_conf_n_keys(schema);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (strlen(k->section) == slen && memcmp(k->section, section, slen) == 0 &&
            strlen(k->name) == nlen && memcmp(k->name, name, nlen) == 0)
            return (long)i;
    }
    return -1;
}

const struct tmt_conf_key *tmt_conf_find(const struct tmt_conf_schema *schema, const char *dotted,
                                         size_t *base)
{
    const char *dot = strchr(dotted, '.');
    if (dot == NULL)
        return NULL;
    long i = find_key(schema, dotted, (size_t)(dot - dotted), dot + 1, strlen(dot + 1));
    if (i < 0)
        return NULL;
    return tmt_conf_key_at(schema, (size_t)i, base);
}

static bool is_name_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* 1-based column of p within the current raw line. */
static unsigned col_of(const struct load_ctx *ctx, const char *p)
{
    if (p < ctx->raw || p > ctx->raw + ctx->raw_len)
        return 1;
    return (unsigned)(p - ctx->raw) + 1;
}

static void line_error(struct load_ctx *ctx, const char *at, const char *fmt, ...) TMT_PRINTF(3, 4);
static void line_error(struct load_ctx *ctx, const char *at, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tmt_conf_diag_add(ctx->diag, "%s:%u:%u: %s", ctx->src->name, ctx->line, col_of(ctx, at), msg);
}

/* Remembers where a section starts, to point at it when one of its required keys is missing. */
static void note_section_line(struct load_ctx *ctx, const char *name, size_t len)
{
    for (size_t i = 0; i < ctx->n_keys; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(ctx->schema, i, &base);
        if (strlen(k->section) == len && memcmp(k->section, name, len) == 0 &&
            ctx->keys[i].section_line == 0)
            ctx->keys[i].section_line = ctx->line;
    }
}

/*
 * Screens one raw line. Returns true if inih may see it. Section lines are handled here entirely
 * (inih still sees them so its section name follows).
 */
static bool screen_line(struct load_ctx *ctx)
{
    const char *p = ctx->raw, *end = ctx->raw + ctx->raw_len;
    if (memchr(p, '\0', ctx->raw_len) != NULL) {
        line_error(ctx, p, "NUL byte in line");
        return false;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p == '#' || *p == ';')
        return true;
    if (*p == '[') {
        const char *name = p + 1, *q = name;
        while (q < end && is_name_char((unsigned char)*q))
            q++;
        if (q == name || q == end || *q != ']') {
            line_error(ctx, p,
                       "malformed section header (expected [name] with letters, digits, "
                       "'_', '-' or '.')");
            ctx->section_ok = false;
            return false;
        }
        const char *after = q + 1;
        while (after < end && (*after == ' ' || *after == '\t'))
            after++;
        if (after < end && *after != '#' && *after != ';') {
            line_error(ctx, after, "unexpected text after section header");
            ctx->section_ok = false;
            return false;
        }
        ctx->section_ok = section_exists(ctx->schema, name, (size_t)(q - name));
        if (!ctx->section_ok)
            line_error(ctx, name, "unknown section [%.*s]", (int)(q - name), name);
        else
            note_section_line(ctx, name, (size_t)(q - name));
        return true;
    }
    const char *k = p;
    while (p < end && is_name_char((unsigned char)*p))
        p++;
    const char *kend = p;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (kend == k || p == end || *p != '=') {
        line_error(ctx, k, "expected 'key = value', '[section]' or a comment");
        return false;
    }
    return true;
}

/* inih's reader: hands over one screened line at a time. */
static char *read_line(char *buf, int size, void *stream)
{
    struct load_ctx *ctx = stream;
    const struct tmt_conf_src *src = ctx->src;
    if (ctx->pos >= src->len)
        return NULL;
    const char *start = src->text + ctx->pos;
    const char *nl = memchr(start, '\n', src->len - ctx->pos);
    size_t len = nl != NULL ? (size_t)(nl - start) : src->len - ctx->pos;
    ctx->pos += len + (nl != NULL);
    ctx->line++;
    if (len > 0 && start[len - 1] == '\r')
        len--;
    ctx->raw = start;
    ctx->raw_len = len;

    /* Room for the newline and the NUL inih expects; normally size is TMT_CONF_MAX_LINE + 3. */
    size_t limit = size > 2 ? TMT_MIN((size_t)TMT_CONF_MAX_LINE, (size_t)size - 2) : 0;
    bool ok;
    if (len > limit) {
        line_error(ctx, start, "line longer than %zu bytes", limit);
        ok = false;
    } else {
        ok = screen_line(ctx);
    }
    if (!ok) {
        /* Hand inih a comment in its place: the problem is already reported. */
        memcpy(buf, "#\n", 3);
        return buf;
    }
    memcpy(buf, start, len);
    buf[len] = '\n';
    buf[len + 1] = '\0';
    return buf;
}

static void apply(struct load_ctx *ctx, long idx, const char *value, const char *where,
                  const char *at)
{
    size_t base;
    const struct tmt_conf_key *k = tmt_conf_key_at(ctx->schema, (size_t)idx, &base);
    /* Recorded even when the value is bad, so a second setting is still seen as a duplicate. */
    struct key_state *ks = &ctx->keys[idx];
    ks->src = ctx->src->name;
    ks->line = ctx->line;
    ks->src_index = ctx->src_index;

    char why[512];
    if (tmt_conf_set_value(k, tmt_conf_field(ctx->settings, base, k), value, why, sizeof(why)) !=
        0) {
        if (at != NULL)
            line_error(ctx, at, "%s.%s: %s", k->section, k->name, why);
        else
            tmt_conf_diag_add(ctx->diag, "%s: %s.%s: %s", where, k->section, k->name, why);
    }
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    const char *name_at = ctx->raw;
    while (name_at < ctx->raw + ctx->raw_len && (*name_at == ' ' || *name_at == '\t'))
        name_at++;
    if (section[0] == '\0') {
        line_error(ctx, name_at, "'%s' is outside any [section]", name);
        return 1;
    }
    if (!ctx->section_ok)
        return 1; /* the section header was reported already */
    long idx = find_key(ctx->schema, section, strlen(section), name, strlen(name));
    if (idx < 0) {
        line_error(ctx, name_at, "unknown key %s.%s", section, name);
        return 1;
    }
    struct key_state *ks = &ctx->keys[idx];
    if (ks->src != NULL && ks->src_index == ctx->src_index) {
        line_error(ctx, name_at, "%s.%s is set twice (first on line %u)", section, name, ks->line);
        return 1;
    }
    /* inih trimmed the value in its own buffer; find it in the raw line for the column. */
    const char *eq = memchr(ctx->raw, '=', ctx->raw_len);
    const char *val_at = eq != NULL ? eq + 1 : name_at;
    while (val_at < ctx->raw + ctx->raw_len && (*val_at == ' ' || *val_at == '\t'))
        val_at++;
    apply(ctx, idx, value, NULL, val_at);
    return 1;
}

static void configure_inih(void)
{
    /* Debian's libinih exposes its options as globals; config is their only user. */
    ini_allow_multiline = false;
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    /* With the heap buffer, inih sizes it by ini_initial_alloc (200 bytes by default). */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_initial_alloc = TMT_CONF_MAX_LINE + 3;
    ini_max_line = TMT_CONF_MAX_LINE + 3;
}

static void load_text(struct load_ctx *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_inih);
    ctx->pos = 0;
    ctx->line = 0;
    ctx->section_ok = false;
    int rc = ini_parse_stream(read_line, ctx, on_pair, ctx);
    if (rc > 0) {
        /* Lines inih refuses were screened out already; this is a safety net. */
        tmt_conf_diag_add(ctx->diag, "%s:%d: syntax error", ctx->src->name, rc);
    } else if (rc < 0) {
        tmt_conf_diag_add(ctx->diag, "%s: could not parse (out of memory)", ctx->src->name);
    }
}

static void load_sets(struct load_ctx *ctx)
{
    const struct tmt_conf_src *src = ctx->src;
    for (size_t i = 0; i < src->n_sets; i++) {
        const char *s = src->sets[i];
        const char *eq = strchr(s, '=');
        const char *dot = strchr(s, '.');
        if (eq == NULL || dot == NULL || dot > eq) {
            tmt_conf_diag_add(ctx->diag, "%s: \"%s\": expected section.key=value", src->name, s);
            continue;
        }
        long idx = find_key(ctx->schema, s, (size_t)(dot - s), dot + 1, (size_t)(eq - dot - 1));
        if (idx < 0) {
            tmt_conf_diag_add(ctx->diag, "%s: unknown key %.*s", src->name, (int)(eq - s), s);
            continue;
        }
        ctx->line = 0;
        apply(ctx, idx, eq + 1, src->name, NULL);
    }
}

void tmt_conf_check_fail(struct tmt_conf_check *chk, const char *key, const char *fmt, ...)
{
    struct load_ctx *ctx = chk->ctx;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    const char *dot = strchr(key, '.');
    long idx = dot != NULL
                   ? find_key(ctx->schema, key, (size_t)(dot - key), dot + 1, strlen(dot + 1))
                   : -1;
    TMT_ASSERT(idx >= 0); /* the schema's own check names its own keys */
    const struct key_state *ks = &ctx->keys[idx];
    if (ks->src == NULL)
        tmt_conf_diag_add(ctx->diag, "%s: %s (default): %s", ctx->schema->program, key, msg);
    else if (ks->line == 0)
        tmt_conf_diag_add(ctx->diag, "%s: %s: %s", ks->src, key, msg);
    else
        tmt_conf_diag_add(ctx->diag, "%s:%u: %s: %s", ks->src, ks->line, key, msg);
}

int tmt_conf_load(const struct tmt_conf_schema *schema, void *settings,
                  const struct tmt_conf_src *srcs, size_t n_srcs, struct tmt_conf_diag *diag)
{
    struct load_ctx ctx = {
        .schema = schema,
        .settings = settings,
        .diag = diag,
        .n_keys = tmt_conf_n_keys(schema),
    };
    size_t before = diag->n;
    ctx.keys = tmt_xcalloc(ctx.n_keys ? ctx.n_keys : 1, sizeof(*ctx.keys));

    for (size_t i = 0; i < ctx.n_keys; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        char why[512];
        int rc = tmt_conf_set_value(k, tmt_conf_field(settings, base, k),
                                    k->dflt != NULL ? k->dflt : "", why, sizeof(why));
        if (rc != 0)
            tmt_conf_diag_add(diag, "%s: default of %s.%s: %s", schema->program, k->section,
                              k->name, why);
        TMT_DASSERT(rc == 0);
    }

    const char *last_text = NULL;
    unsigned last_text_lines = 0;
    for (size_t i = 0; i < n_srcs; i++) {
        ctx.src = &srcs[i];
        ctx.src_index = (unsigned)i;
        if (srcs[i].kind == TMT_CONF_SRC_TEXT) {
            for (size_t k = 0; k < ctx.n_keys; k++)
                ctx.keys[k].section_line = 0;
            load_text(&ctx);
            last_text = srcs[i].name;
            last_text_lines = ctx.line;
        } else {
            load_sets(&ctx);
        }
    }

    /* A missing required key points at its section in the file, or at the file's end. */
    for (size_t i = 0; i < ctx.n_keys; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (!(k->flags & TMT_CONF_REQUIRED) || ctx.keys[i].src != NULL)
            continue;
        if (last_text == NULL)
            tmt_conf_diag_add(diag, "%s: %s.%s is required (%s)", schema->program, k->section,
                              k->name, k->help);
        else if (ctx.keys[i].section_line != 0)
            tmt_conf_diag_add(diag, "%s:%u: %s.%s is required in [%s] (%s)", last_text,
                              ctx.keys[i].section_line, k->section, k->name, k->section, k->help);
        else
            tmt_conf_diag_add(diag, "%s:%u: %s.%s is required; the file has no [%s] (%s)",
                              last_text, last_text_lines > 0 ? last_text_lines : 1, k->section,
                              k->name, k->section, k->help);
    }

    if (diag->n == before && schema->check != NULL) {
        struct tmt_conf_check chk = {&ctx};
        schema->check(settings, &chk);
    }
    free(ctx.keys);
    return diag->n == before ? TMT_OK : TMT_EINVAL;
}

char *tmt_conf_read_file(const char *path, size_t *len, struct tmt_conf_diag *diag)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        tmt_conf_diag_add(diag, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tmt_conf_diag_add(diag, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size > (off_t)TMT_CONF_MAX_TEXT) {
        tmt_conf_diag_add(diag, "%s: larger than %u bytes", path, TMT_CONF_MAX_TEXT);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size, got = 0;
    char *buf = tmt_xmalloc(cap + 1);
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                tmt_conf_diag_add(diag, "%s: read failed: %s", path, strerror(errno));
            else
                tmt_conf_diag_add(diag, "%s: changed size while being read", path);
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;
}
