/*
 * conf_field.c: reading, writing, comparing and freeing one typed field of a settings struct.
 * The loader, the dumper and the reload diff all go through here, so a type is defined once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "tmt/err.h"

size_t tmt_conf_n_keys(const struct tmt_conf_schema *schema)
{
    size_t n = 0;
    for (size_t i = 0; i < schema->n_parts; i++)
        n += schema->parts[i].n_keys;
    return n;
}

const struct tmt_conf_key *tmt_conf_key_at(const struct tmt_conf_schema *schema, size_t idx,
                                           size_t *base)
{
    for (size_t i = 0; i < schema->n_parts; i++) {
        const struct tmt_conf_part *part = &schema->parts[i];
        if (idx < part->n_keys) {
            *base = part->base;
            return &part->keys[idx];
        }
        idx -= part->n_keys;
    }
    TMT_UNREACHABLE("key index past the schema");
}

static void list_clear(struct tmt_conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void tmt_conf_clear_value(const struct tmt_conf_key *k, void *field)
{
    switch (k->type) {
    case TMT_CONF_STR:
    case TMT_CONF_PATH:
    case TMT_CONF_ADDR:
    case TMT_CONF_URL: {
        char **sp = field;
        free(*sp);
        *sp = NULL;
        break;
    }
    case TMT_CONF_LIST:
        list_clear(field);
        break;
    case TMT_CONF_BOOL:
        *(bool *)field = false;
        break;
    case TMT_CONF_INT:
        *(int64_t *)field = 0;
        break;
    case TMT_CONF_SIZE:
    case TMT_CONF_DURATION:
        *(uint64_t *)field = 0;
        break;
    case TMT_CONF_ENUM:
        *(int *)field = 0;
        break;
    }
}

/* Index of `value` among "a|b|c", or -1. */
static int enum_index(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    int idx = 0;
    for (const char *p = choices;; idx++) {
        size_t n = strcspn(p, "|");
        if (n == vlen && memcmp(p, value, n) == 0)
            return idx;
        if (p[n] == '\0')
            return -1;
        p += n + 1;
    }
}

/*
 * Whether a config file can carry this text as a value: inih strips surrounding blanks, treats a
 * leading ';' or '#' and a ';' after a blank as comments, and a line ends at a newline. Values
 * from any source must pass, so that every loaded setting can be written back (--dump-config,
 * config pushed to nodes) and read again unchanged.
 */
static bool starts_comment(char c, char *why, size_t why_len)
{
    if (c != ';' && c != '#')
        return false;
    snprintf(why, why_len, "a value may not start with '%c' (it begins a comment)", c);
    return true;
}

static bool representable(const char *value, char *why, size_t why_len)
{
    size_t len = strlen(value);
    if (len == 0)
        return true;
    if (starts_comment(value[0], why, why_len))
        return false;
    if (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' || value[len - 1] == '\t') {
        snprintf(why, why_len, "a value may not start or end with blanks");
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(why, why_len, "control character 0x%02x in value", c);
            return false;
        }
        if (c == ';' && i > 0 && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
            snprintf(why, why_len, "' ;' in a value begins a comment");
            return false;
        }
    }
    return true;
}

static int parse_list(const struct tmt_conf_key *k, struct tmt_conf_list *out, const char *value,
                      char *why, size_t why_len)
{
    struct tmt_conf_list l = {NULL, 0};
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0') {
        for (;;) {
            size_t n = strcspn(p, ",");
            size_t a = 0, b = n;
            while (a < b && (p[a] == ' ' || p[a] == '\t'))
                a++;
            while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
                b--;
            if (a == b) {
                snprintf(why, why_len, "empty item in list (item %zu)", l.n + 1);
                list_clear(&l);
                return TMT_EINVAL;
            }
            /*
             * The whole value passed representable() already; the only new way an item can fail
             * a dump and reload is to begin a comment once the dump writes it after ", ".
             */
            if (starts_comment(p[a], why, why_len)) {
                size_t w = strlen(why);
                snprintf(why + w, why_len - w, " (item %zu)", l.n + 1);
                list_clear(&l);
                return TMT_EINVAL;
            }
            if (l.n >= 4096) {
                snprintf(why, why_len, "more than 4096 items");
                list_clear(&l);
                return TMT_ELIMIT;
            }
            l.items = tmt_xrealloc(l.items, (l.n + 1) * sizeof(*l.items));
            l.items[l.n++] = tmt_xstrndup(p + a, b - a);
            if (p[n] == '\0')
                break;
            p += n + 1;
        }
    }
    if (k->max > 0 && ((int64_t)l.n < k->min || (int64_t)l.n > k->max)) {
        snprintf(why, why_len, "needs %" PRId64 " to %" PRId64 " items, has %zu", k->min, k->max,
                 l.n);
        list_clear(&l);
        return TMT_ELIMIT;
    }
    list_clear(out);
    *out = l;
    return TMT_OK;
}

static int check_range(const struct tmt_conf_key *k, uint64_t v, const char *value, char *why,
                       size_t why_len)
{
    if (k->max <= 0)
        return TMT_OK;
    if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
        char lo[64], hi[64];
        uint64_t mn = (uint64_t)k->min, mx = (uint64_t)k->max;
        tmt_conf_format_value(k, &mn, lo, sizeof(lo));
        tmt_conf_format_value(k, &mx, hi, sizeof(hi));
        snprintf(why, why_len, "%s is out of range [%s, %s]", value, lo, hi);
        return TMT_ELIMIT;
    }
    return TMT_OK;
}

int tmt_conf_set_value(const struct tmt_conf_key *k, void *field, const char *value, char *why,
                       size_t why_len)
{
    int rc;
    if (!representable(value, why, why_len))
        return TMT_EINVAL;
    switch (k->type) {
    case TMT_CONF_STR:
    case TMT_CONF_PATH:
    case TMT_CONF_ADDR:
    case TMT_CONF_URL: {
        if (k->type == TMT_CONF_ADDR && value[0] != '\0' &&
            (rc = tmt_conf_check_addr(value, why, why_len)) != 0)
            return rc;
        if (k->type == TMT_CONF_URL && value[0] != '\0' &&
            (rc = tmt_conf_check_url(value, why, why_len)) != 0)
            return rc;
        char **sp = field;
        free(*sp);
        *sp = tmt_xstrdup(value);
        return TMT_OK;
    }
    case TMT_CONF_BOOL:
        if (tmt_conf_parse_bool(value, field) != 0) {
            snprintf(why, why_len, "\"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)",
                     value);
            return TMT_EINVAL;
        }
        return TMT_OK;
    case TMT_CONF_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno != 0) {
            snprintf(why, why_len, "\"%s\" is not a whole number", value);
            return TMT_EINVAL;
        }
        if (k->max > k->min && (v < k->min || v > k->max)) {
            snprintf(why, why_len, "%lld is out of range [%" PRId64 ", %" PRId64 "]", v, k->min,
                     k->max);
            return TMT_ELIMIT;
        }
        *(int64_t *)field = v;
        return TMT_OK;
    }
    case TMT_CONF_SIZE:
    case TMT_CONF_DURATION: {
        uint64_t v;
        rc = k->type == TMT_CONF_SIZE ? tmt_conf_parse_size(value, &v, why, why_len)
                                      : tmt_conf_parse_duration(value, &v, why, why_len);
        if (rc != 0)
            return rc;
        if ((rc = check_range(k, v, value, why, why_len)) != 0)
            return rc;
        *(uint64_t *)field = v;
        return TMT_OK;
    }
    case TMT_CONF_ENUM: {
        int idx = enum_index(k->choices, value);
        if (idx < 0) {
            snprintf(why, why_len, "\"%s\" is not one of %s", value, k->choices);
            return TMT_EINVAL;
        }
        *(int *)field = idx;
        return TMT_OK;
    }
    case TMT_CONF_LIST:
        return parse_list(k, field, value, why, why_len);
    }
    TMT_UNREACHABLE("config type");
}

static const char *format_scaled(uint64_t v, const char *const *names, const uint64_t *mults,
                                 size_t n, char *buf, size_t len)
{
    /* The largest unit that divides exactly, so the text parses back to the same value. */
    for (size_t i = n; i-- > 0;) {
        if (v != 0 && v % mults[i] == 0) {
            snprintf(buf, len, "%" PRIu64 "%s", v / mults[i], names[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRIu64 "%s", v, names[0]);
    return buf;
}

const char *tmt_conf_format_value(const struct tmt_conf_key *k, const void *field, char *buf,
                                  size_t len)
{
    static const char *const size_names[] = {"", "k", "M", "G", "T"};
    static const uint64_t size_mults[] = {1, 1ull << 10, 1ull << 20, 1ull << 30, 1ull << 40};
    static const char *const dur_names[] = {"ms", "s", "m", "h", "d"};
    static const uint64_t dur_mults[] = {1, 1000, 60000, 3600000, 86400000};

    buf[0] = '\0';
    switch (k->type) {
    case TMT_CONF_STR:
    case TMT_CONF_PATH:
    case TMT_CONF_ADDR:
    case TMT_CONF_URL: {
        const char *const *sp = field;
        snprintf(buf, len, "%s", *sp != NULL ? *sp : "");
        return buf;
    }
    case TMT_CONF_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        return buf;
    case TMT_CONF_INT:
        snprintf(buf, len, "%" PRId64, *(const int64_t *)field);
        return buf;
    case TMT_CONF_SIZE:
        return format_scaled(*(const uint64_t *)field, size_names, size_mults, 5, buf, len);
    case TMT_CONF_DURATION:
        return format_scaled(*(const uint64_t *)field, dur_names, dur_mults, 5, buf, len);
    case TMT_CONF_ENUM: {
        int idx = *(const int *)field;
        const char *p = k->choices;
        for (int i = 0; i < idx && p != NULL; i++) {
            p = strchr(p, '|');
            if (p != NULL)
                p++;
        }
        if (p != NULL)
            snprintf(buf, len, "%.*s", (int)strcspn(p, "|"), p);
        return buf;
    }
    case TMT_CONF_LIST: {
        const struct tmt_conf_list *l = field;
        size_t off = 0;
        for (size_t i = 0; i < l->n && off < len; i++) {
            int w = snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "", l->items[i]);
            if (w < 0)
                break;
            off += (size_t)w;
        }
        return buf;
    }
    }
    TMT_UNREACHABLE("config type");
}

bool tmt_conf_value_equal(const struct tmt_conf_key *k, const void *a, const void *b)
{
    switch (k->type) {
    case TMT_CONF_STR:
    case TMT_CONF_PATH:
    case TMT_CONF_ADDR:
    case TMT_CONF_URL: {
        const char *sa = *(const char *const *)a, *sb = *(const char *const *)b;
        return strcmp(sa != NULL ? sa : "", sb != NULL ? sb : "") == 0;
    }
    case TMT_CONF_BOOL:
        return *(const bool *)a == *(const bool *)b;
    case TMT_CONF_INT:
        return *(const int64_t *)a == *(const int64_t *)b;
    case TMT_CONF_SIZE:
    case TMT_CONF_DURATION:
        return *(const uint64_t *)a == *(const uint64_t *)b;
    case TMT_CONF_ENUM:
        return *(const int *)a == *(const int *)b;
    case TMT_CONF_LIST: {
        const struct tmt_conf_list *la = a, *lb = b;
        if (la->n != lb->n)
            return false;
        for (size_t i = 0; i < la->n; i++) {
            if (strcmp(la->items[i], lb->items[i]) != 0)
                return false;
        }
        return true;
    }
    }
    TMT_UNREACHABLE("config type");
}
