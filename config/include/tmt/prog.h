/*
 * prog.h: what every Tomato CDN program does the same way: its command line, loading its
 * settings, and (for the daemons) the lifecycle of signals and reloads.
 *
 * Common flags:
 *   -h, --help            usage, the program's flags and subcommands
 *   -V, --version         version
 *   -c, --config FILE     settings file (without it: embedded defaults)
 *   -s, --set KEY=VALUE   override one setting (section.key=value), repeatable
 *   --check-config        load and validate, print FILE:LINE: message per problem, exit 0 or 1
 *   --dump-config         print the effective settings (defaults + file + flags) and exit
 *   --config-reference    print the Markdown reference of every key and exit
 * Program flags (struct tmt_prog_flag) are shorthands for one key each (`--static DIR` sets
 * `static.root`), so flags override the file exactly as --set does. Arguments that are not flags
 * are left for the program (subcommands).
 *
 * Exit codes: 0 success, 1 invalid settings or a failure while running, 2 usage error.
 */
#ifndef TMT_PROG_H
#define TMT_PROG_H

#include <stdbool.h>
#include <stdint.h>

#include "tmt/config.h"

struct tmt_conf_snap;
struct tmt_loop;

#define TMT_EXIT_OK 0
#define TMT_EXIT_FAIL 1
#define TMT_EXIT_USAGE 2

/* A shorthand flag for one config key. */
struct tmt_prog_flag {
    const char *name;     /* "static" for --static */
    const char *arg_name; /* "DIR" */
    const char *key;      /* "static.root" */
};

struct tmt_prog {
    const char *name;    /* "tomato-edge" */
    const char *summary; /* one line */
    const struct tmt_conf_schema *schema;
    const struct tmt_prog_flag *flags;
    size_t n_flags;
    const char *usage_more; /* extra usage text (subcommands), or NULL */
};

/* The parsed command line. Strings point into argv or are owned (sets). */
struct tmt_prog_cli {
    const char *config_path;
    bool check_config;
    bool dump_config;
    bool reference;
    char **sets; /* "section.key=value", owned */
    size_t n_sets;
    char **args; /* arguments that are not flags, in order (pointers into argv) */
    int n_args;
};

/*
 * Parses argv. Returns TMT_EXIT_OK to go on, or an exit code with `*done` set when the program
 * should exit now (help and version print to stdout; usage errors to stderr).
 */
int tmt_prog_parse(const struct tmt_prog *prog, int argc, char **argv, struct tmt_prog_cli *cli,
                   bool *done);
void tmt_prog_cli_fini(struct tmt_prog_cli *cli);

/*
 * Loads settings as the command line says: defaults, then the --config file, then --set and
 * shorthand flags. On success returns a new snapshot (generation as given); on failure prints
 * every problem to stderr, one per line, and returns NULL.
 */
struct tmt_conf_snap *tmt_prog_load(const struct tmt_prog *prog, const struct tmt_prog_cli *cli,
                                    uint64_t generation);

/*
 * The common front end: parses argv, handles --help, --version, --check-config, --dump-config
 * and --config-reference, and loads the settings. Returns -1 with *snap and cli filled when the
 * program should go on and run; otherwise the exit code to return from main.
 */
int tmt_prog_start(const struct tmt_prog *prog, int argc, char **argv, struct tmt_prog_cli *cli,
                   struct tmt_conf_snap **snap);

/*
 * A daemon's hooks, all optional. on_start runs once the settings are loaded and the loop exists
 * (bind listeners, open stores); a non-zero return exits with TMT_EXIT_FAIL. on_reload gets the
 * new snapshot after it validated and before the old one is dropped; it takes its own reference
 * to keep it. on_stop runs on SIGTERM/SIGINT before the loop stops: stop accepting, let in-flight
 * work finish within its bound. on_exit runs after the loop returned, to free what on_start made.
 */
struct tmt_daemon_hooks {
    int (*on_start)(struct tmt_loop *loop, struct tmt_conf_snap *snap, void *arg);
    void (*on_reload)(struct tmt_conf_snap *snap, void *arg);
    void (*on_stop)(void *arg);
    void (*on_exit)(void *arg);
    /*
     * Optional: settings pushed by a control plane and kept from the last run (INI text,
     * malloc'd, or NULL), read from the file-and-flags settings before anything starts, so that
     * they apply from the start (see tmt_prog_set_pushed).
     */
    char *(*pushed_at_start)(const void *settings, void *arg);
    void *arg;
};

/*
 * Settings pushed by a control plane (INI text, copied; len 0 clears them): the layer between
 * the settings file and the command line, used by every later load (a reload applies them).
 * Returns true when the text differs from the one in place. Any thread.
 */
bool tmt_prog_set_pushed(const char *text, size_t len);

/* Asks the running daemon to reload its settings, as SIGHUP does. Any thread. */
void tmt_prog_request_reload(void);

/*
 * The whole main() of a daemon: tmt_prog_start, then the log level from the settings (the struct
 * tmt_daemon_conf at `daemon_offset` in them), a loop, on_start, and the main loop until SIGTERM
 * or SIGINT. SIGHUP reloads: the file is read again with the same command-line overrides; a
 * complete new snapshot replaces the old only if it is valid (otherwise every problem is logged
 * and nothing changes); restart-only keys that changed are logged. Returns the exit code.
 */
int tmt_prog_daemon_main(const struct tmt_prog *prog, size_t daemon_offset, int argc, char **argv,
                         const struct tmt_daemon_hooks *hooks);

#endif
