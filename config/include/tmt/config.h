/*
 * config.h: one configuration format and one loader for every Tomato CDN program.
 *
 * The format is INI (parsed by libinih): `[section]` headers, `key = value` lines, comments on
 * lines starting with `#` or `;`, and inline comments after ` ;`. Every key lives in a section and
 * is named `section.key` in messages, on the command line (`--set server.listen=127.0.0.1:8080`)
 * and in docs.
 *
 * Each program describes its settings with tables of struct tmt_conf_key: name, type, where the
 * value goes in the program's settings struct, the default (written in file syntax and parsed by
 * the same code as file values), bounds, whether a reload may change it, and one line of help.
 * From those tables come parsing, validation, --check-config, --dump-config and the reference page
 * (docs/config.md).
 *
 * Loading applies, in order: the defaults, then each source given (a file, text pushed by the
 * control plane, command-line overrides); later sources override earlier ones. Every problem is
 * collected, not just the first, as `FILE:LINE:COL: section.key: message`. A settings struct that
 * loaded without errors is complete and valid; one that did not must be discarded (tmt_conf_fini).
 *
 * Lifetimes: a settings struct and the strings it points to belong to whoever called
 * tmt_conf_init; tmt_conf_fini frees them. Loaded settings are never modified: a reload builds a
 * new struct (see struct tmt_conf_snap for sharing one between threads).
 */
#ifndef TMT_CONFIG_H
#define TMT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tmt/base.h"

enum tmt_conf_type {
    TMT_CONF_STR,      /* char *: any text (may be empty) */
    TMT_CONF_PATH,     /* char *: a filesystem path, not checked for existence here */
    TMT_CONF_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 */
    TMT_CONF_INT,      /* int64_t within [min, max] */
    TMT_CONF_SIZE,     /* uint64_t bytes: 512, 64k, 10MiB, 2G (k/M/G/T are powers of 1024) */
    TMT_CONF_DURATION, /* uint64_t milliseconds: 250ms, 10s, 5m, 1h, 2d (bare number: seconds) */
    TMT_CONF_ENUM,     /* int: index into the key's `choices` ("a|b|c") */
    TMT_CONF_ADDR,     /* char *: "host:port", "[v6]:port" or "*:port"; port 0 = any (tests) */
    TMT_CONF_URL,      /* char *: "http://" or "https://" host[:port][/path] */
    TMT_CONF_LIST,     /* struct tmt_conf_list: comma-separated items, each trimmed, none empty */
};

/* Flags of a key. */
#define TMT_CONF_RELOADABLE 0x1u /* a reload (SIGHUP) may change it; otherwise restart-only */
#define TMT_CONF_REQUIRED 0x2u   /* must be set by some source; the default is not enough */

struct tmt_conf_list {
    char **items;
    size_t n;
};

struct tmt_conf_key {
    const char *section; /* "server" */
    const char *name;    /* "listen" */
    enum tmt_conf_type type;
    size_t offset;       /* of the value within the part (see struct tmt_conf_part) */
    const char *dflt;    /* default in file syntax; NULL means empty/zero */
    int64_t min, max;    /* INT, SIZE (bytes), DURATION (ms), LIST (item count) when max > 0 */
    const char *choices; /* ENUM only */
    unsigned flags;      /* TMT_CONF_* flags */
    const char *help;    /* one line, shown by --dump-config and in docs/config.md */
};

/* A table of keys whose offsets are relative to `base` within the program's settings struct. */
struct tmt_conf_part {
    const struct tmt_conf_key *keys;
    size_t n_keys;
    size_t base;
};

struct tmt_conf_check;

/*
 * Cross-key validation, run after all sources are applied and every value parsed (e.g. "a TLS
 * listener needs a certificate"). Report with tmt_conf_check_fail(); the return value is ignored.
 */
typedef void tmt_conf_check_fn(const void *settings, struct tmt_conf_check *chk);

struct tmt_conf_schema {
    const char *program; /* "tomato-edge" */
    const struct tmt_conf_part *parts;
    size_t n_parts;
    size_t size; /* sizeof the settings struct */
    tmt_conf_check_fn *check;
};

/* Where settings come from. */
enum tmt_conf_src_kind {
    TMT_CONF_SRC_TEXT, /* INI text; `name` is what messages call it (a file path, "pushed") */
    TMT_CONF_SRC_SETS, /* "section.key=value" strings from the command line */
};

struct tmt_conf_src {
    enum tmt_conf_src_kind kind;
    const char *name;
    const char *text;        /* TEXT */
    size_t len;              /* TEXT */
    const char *const *sets; /* SETS */
    size_t n_sets;           /* SETS */
};

/* The collected problems of one load, each a whole line ready to print. */
struct tmt_conf_diag {
    char **lines;
    size_t n;
    size_t cap;
};

/* Largest config text accepted (a file or pushed text). */
#define TMT_CONF_MAX_TEXT (1u << 20)
/* Longest line accepted. */
#define TMT_CONF_MAX_LINE 4096

/* Zeroes settings (schema->size bytes). Call before tmt_conf_load. */
void tmt_conf_init(const struct tmt_conf_schema *schema, void *settings);

/* Frees what the settings struct points to. Accepts an initialized but never loaded struct. */
void tmt_conf_fini(const struct tmt_conf_schema *schema, void *settings);

/*
 * Fills settings from the defaults and then the sources, in order. Returns 0 when there were no
 * problems; otherwise TMT_EINVAL, with every problem in diag (which the caller frees with
 * tmt_conf_diag_fini). settings must come from tmt_conf_init and not have been loaded before.
 */
int tmt_conf_load(const struct tmt_conf_schema *schema, void *settings,
                  const struct tmt_conf_src *srcs, size_t n_srcs,
                  struct tmt_conf_diag *diag) TMT_MUST_CHECK;

/*
 * Reads a config file into memory for a TEXT source. Returns a malloc'd NUL-terminated buffer and
 * its length, or NULL with a message in diag (missing file, unreadable, over TMT_CONF_MAX_TEXT).
 */
char *tmt_conf_read_file(const char *path, size_t *len, struct tmt_conf_diag *diag);

void tmt_conf_diag_fini(struct tmt_conf_diag *diag);
void tmt_conf_diag_add(struct tmt_conf_diag *diag, const char *fmt, ...) TMT_PRINTF(2, 3);

/* Used by a schema's check function. `key` is "section.key"; the message names its source line. */
void tmt_conf_check_fail(struct tmt_conf_check *chk, const char *key, const char *fmt, ...)
    TMT_PRINTF(3, 4);

/* Writes the effective settings as a config file that loads back to the same values. */
void tmt_conf_dump(const struct tmt_conf_schema *schema, const void *settings, FILE *out,
                   bool with_help);

/* Writes the Markdown reference of every key (the source of docs/config.md). */
void tmt_conf_reference(const struct tmt_conf_schema *schema, FILE *out);

/*
 * Calls fn for each restart-only key whose value differs between two loaded settings structs:
 * a reload applies the rest and logs these as needing a restart.
 */
typedef void tmt_conf_changed_fn(const char *section, const char *name, void *arg);
void tmt_conf_each_restart_change(const struct tmt_conf_schema *schema, const void *old_settings,
                                  const void *new_settings, tmt_conf_changed_fn *fn, void *arg);

/* Looks a key up by "section.key". NULL if the schema has none. */
const struct tmt_conf_key *tmt_conf_find(const struct tmt_conf_schema *schema, const char *dotted,
                                         size_t *base);

/*
 * Parsers for single values, shared with anything else that reads the same syntax. They return 0
 * or TMT_EINVAL (syntax) / TMT_ELIMIT (out of range), with a short reason in why (>= 128 bytes).
 */
int tmt_conf_parse_size(const char *s, uint64_t *bytes, char *why, size_t why_len) TMT_MUST_CHECK;
int tmt_conf_parse_duration(const char *s, uint64_t *ms, char *why, size_t why_len) TMT_MUST_CHECK;
int tmt_conf_parse_bool(const char *s, bool *out) TMT_MUST_CHECK;

/*
 * Splits a validated ADDR value into host (brackets removed, "*" becomes "") and port. host must
 * hold at least 256 bytes. Returns 0 or TMT_EINVAL.
 */
int tmt_conf_addr_split(const char *addr, char *host, size_t host_len,
                        uint16_t *port) TMT_MUST_CHECK;

/*
 * A loaded settings struct shared between threads: immutable, reference-counted. A reload makes a
 * new snapshot and swaps the pointer the program holds; requests that hold the old one keep it
 * until they drop their reference, and the last unref frees it.
 */
struct tmt_conf_snap;

/*
 * Takes ownership of a loaded settings struct (malloc'd by the caller, freed with tmt_conf_fini and
 * free by the last unref). `generation` numbers the snapshots of one program (1 for the first load,
 * then one more per successful reload) for logs and /metrics.
 */
struct tmt_conf_snap *tmt_conf_snap_new(const struct tmt_conf_schema *schema, void *settings,
                                        uint64_t generation);
struct tmt_conf_snap *tmt_conf_snap_ref(struct tmt_conf_snap *snap);
void tmt_conf_snap_unref(struct tmt_conf_snap **snap);
const void *tmt_conf_snap_get(const struct tmt_conf_snap *snap);
uint64_t tmt_conf_snap_generation(const struct tmt_conf_snap *snap);

#endif
