/*
 * conf_dump.c: writing settings back out (--dump-config), the Markdown reference (docs/config.md)
 * and the restart-only diff a reload reports.
 *
 * A dump parses back to the same values: every value is written in the same syntax the loader
 * reads, with sizes and durations in the largest unit that is exact.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* Whether `section` was already printed by an earlier key (sections print in first-use order). */
static bool section_seen_before(const struct tmt_conf_schema *schema, size_t idx)
{
    size_t base;
    const char *section = tmt_conf_key_at(schema, idx, &base)->section;
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(tmt_conf_key_at(schema, j, &base)->section, section) == 0)
            return true;
    }
    return false;
}

void tmt_conf_dump(const struct tmt_conf_schema *schema, const void *settings, FILE *out,
                   bool with_help)
{
    size_t n = tmt_conf_n_keys(schema);
    char *buf = tmt_xmalloc(TMT_CONF_MAX_LINE);
    fprintf(out, "# Effective settings of %s\n", schema->program);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (section_seen_before(schema, i))
            continue;
        fprintf(out, "\n[%s]\n", k->section);
        for (size_t j = i; j < n; j++) {
            size_t b;
            const struct tmt_conf_key *kj = tmt_conf_key_at(schema, j, &b);
            if (strcmp(kj->section, k->section) != 0)
                continue;
            if (with_help)
                fprintf(out, "# %s\n", kj->help);
            const char *v =
                tmt_conf_format_value(kj, tmt_conf_field(settings, b, kj), buf, TMT_CONF_MAX_LINE);
            fprintf(out, "%s =%s%s\n", kj->name, v[0] != '\0' ? " " : "", v);
        }
    }
    free(buf);
}

static const char *type_name(const struct tmt_conf_key *k)
{
    switch (k->type) {
    case TMT_CONF_STR:
        return "string";
    case TMT_CONF_PATH:
        return "path";
    case TMT_CONF_BOOL:
        return "bool";
    case TMT_CONF_INT:
        return "integer";
    case TMT_CONF_SIZE:
        return "size";
    case TMT_CONF_DURATION:
        return "duration";
    case TMT_CONF_ENUM:
        return "enum";
    case TMT_CONF_ADDR:
        return "address";
    case TMT_CONF_URL:
        return "URL";
    case TMT_CONF_LIST:
        return "list";
    }
    return "?";
}

static void print_range(const struct tmt_conf_key *k, FILE *out)
{
    if (k->type == TMT_CONF_ENUM) {
        for (const char *p = k->choices; *p != '\0'; p++) {
            if (*p == '|')
                fputs(", ", out);
            else
                fputc(*p, out);
        }
        return;
    }
    if (k->max <= 0 || (k->type != TMT_CONF_INT && k->type != TMT_CONF_SIZE &&
                        k->type != TMT_CONF_DURATION && k->type != TMT_CONF_LIST))
        return;
    if (k->type == TMT_CONF_INT || k->type == TMT_CONF_LIST) {
        fprintf(out, "%" PRId64 " to %" PRId64 "%s", k->min, k->max,
                k->type == TMT_CONF_LIST ? " items" : "");
        return;
    }
    char lo[64], hi[64];
    uint64_t mn = (uint64_t)k->min, mx = (uint64_t)k->max;
    fprintf(out, "%s to %s", tmt_conf_format_value(k, &mn, lo, sizeof(lo)),
            tmt_conf_format_value(k, &mx, hi, sizeof(hi)));
}

void tmt_conf_reference(const struct tmt_conf_schema *schema, FILE *out)
{
    size_t n = tmt_conf_n_keys(schema);
    fprintf(out, "## %s\n", schema->program);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (section_seen_before(schema, i))
            continue;
        fprintf(out, "\n### `[%s]`\n\n", k->section);
        fprintf(out, "| key | type | default | range | reload | meaning |\n");
        fprintf(out, "| --- | --- | --- | --- | --- | --- |\n");
        for (size_t j = i; j < n; j++) {
            size_t b;
            const struct tmt_conf_key *kj = tmt_conf_key_at(schema, j, &b);
            if (strcmp(kj->section, k->section) != 0)
                continue;
            const char *d = kj->dflt != NULL && kj->dflt[0] != '\0' ? kj->dflt : NULL;
            fprintf(out, "| `%s` | %s | %s%s%s | ", kj->name, type_name(kj), d ? "`" : "",
                    d ? d : ((kj->flags & TMT_CONF_REQUIRED) ? "required" : "(empty)"),
                    d ? "`" : "");
            print_range(kj, out);
            fprintf(out, " | %s | %s |\n", (kj->flags & TMT_CONF_RELOADABLE) ? "yes" : "restart",
                    kj->help);
        }
    }
}

void tmt_conf_each_restart_change(const struct tmt_conf_schema *schema, const void *old_settings,
                                  const void *new_settings, tmt_conf_changed_fn *fn, void *arg)
{
    size_t n = tmt_conf_n_keys(schema);
    for (size_t i = 0; i < n; i++) {
        size_t base;
        const struct tmt_conf_key *k = tmt_conf_key_at(schema, i, &base);
        if (k->flags & TMT_CONF_RELOADABLE)
            continue;
        if (!tmt_conf_value_equal(k, tmt_conf_field(old_settings, base, k),
                                  tmt_conf_field(new_settings, base, k)))
            fn(k->section, k->name, arg);
    }
}
