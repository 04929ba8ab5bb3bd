/*
 * prog.c: the command line, settings loading and daemon lifecycle shared by every program
 * (see prog.h).
 */
#include "tmt/prog.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmt/daemon_conf.h"
#include "tmt/err.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/version.h"

/*
 * Settings pushed by a control plane: one INI text, the layer between the file and the command
 * line. Set from the main thread (a node's config) and read by every load.
 */
static pthread_mutex_t pushed_mu = PTHREAD_MUTEX_INITIALIZER;
static char *pushed_text;
static size_t pushed_len;

bool tmt_prog_set_pushed(const char *text, size_t len)
{
    pthread_mutex_lock(&pushed_mu);
    bool same = len == pushed_len && (len == 0 || memcmp(text, pushed_text, len) == 0);
    if (!same) {
        free(pushed_text);
        pushed_text = len > 0 ? tmt_xstrndup(text, len) : NULL;
        pushed_len = len;
    }
    pthread_mutex_unlock(&pushed_mu);
    return !same;
}

void tmt_prog_request_reload(void)
{
    kill(getpid(), SIGHUP);
}

static void usage(const struct tmt_prog *prog, FILE *out)
{
    fprintf(out, "%s %s: %s\n\n", prog->name, TMT_VERSION, prog->summary);
    fprintf(out, "Usage: %s [options]%s\n\n", prog->name, prog->usage_more ? " [command]" : "");
    fprintf(out, "Options:\n"
                 "  -h, --help            show this help and exit\n"
                 "  -V, --version         show the version and exit\n"
                 "  -c, --config FILE     read settings from FILE (default: embedded defaults)\n"
                 "  -s, --set KEY=VALUE   override a setting, e.g. --set log.level=debug\n"
                 "      --check-config    validate the settings, print each problem, exit 0/1\n"
                 "      --dump-config     print the effective settings and exit\n"
                 "      --config-reference  print the reference of every setting (Markdown)\n");
    for (size_t i = 0; i < prog->n_flags; i++) {
        const struct tmt_prog_flag *f = &prog->flags[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", f->name, f->arg_name);
        fprintf(out, "      %-18s same as --set %s=%s\n", left, f->key, f->arg_name);
    }
    if (prog->usage_more != NULL)
        fprintf(out, "\n%s", prog->usage_more);
    fprintf(out, "\nExit status: 0 success, 1 invalid settings or failure, 2 usage error.\n");
}

static void add_set(struct tmt_prog_cli *cli, const char *key, const char *value)
{
    size_t n = strlen(key) + 1 + strlen(value) + 1;
    char *s = tmt_xmalloc(n);
    snprintf(s, n, "%s=%s", key, value);
    cli->sets = tmt_xrealloc(cli->sets, (cli->n_sets + 1) * sizeof(*cli->sets));
    cli->sets[cli->n_sets++] = s;
}

void tmt_prog_cli_fini(struct tmt_prog_cli *cli)
{
    for (size_t i = 0; i < cli->n_sets; i++)
        free(cli->sets[i]);
    free(cli->sets);
    free(cli->args);
    memset(cli, 0, sizeof(*cli));
}

/* Matches "--name", "--name=value" or the short form; sets *value when the flag takes one. */
static bool match_flag(const char *arg, const char *lng, char shrt, const char **inline_value)
{
    *inline_value = NULL;
    if (shrt != '\0' && arg[0] == '-' && arg[1] == shrt && arg[2] == '\0')
        return true;
    if (arg[0] != '-' || arg[1] != '-')
        return false;
    size_t n = strlen(lng);
    if (strncmp(arg + 2, lng, n) != 0)
        return false;
    if (arg[2 + n] == '\0')
        return true;
    if (arg[2 + n] == '=') {
        *inline_value = arg + 3 + n;
        return true;
    }
    return false;
}

int tmt_prog_parse(const struct tmt_prog *prog, int argc, char **argv, struct tmt_prog_cli *cli,
                   bool *done)
{
    memset(cli, 0, sizeof(*cli));
    *done = false;
    cli->args = tmt_xcalloc((size_t)argc + 1, sizeof(*cli->args));

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool flag_done = false;
#define NEED_VALUE(flagname)                                                                       \
    do {                                                                                           \
        if (v == NULL) {                                                                           \
            if (i + 1 >= argc) {                                                                   \
                fprintf(stderr, "%s: %s needs a value (try --help)\n", prog->name, flagname);      \
                goto usage_error;                                                                  \
            }                                                                                      \
            v = argv[++i];                                                                         \
        }                                                                                          \
    } while (0)

        if (match_flag(a, "help", 'h', &v)) {
            usage(prog, stdout);
            tmt_prog_cli_fini(cli);
            *done = true;
            return TMT_EXIT_OK;
        }
        if (match_flag(a, "version", 'V', &v)) {
            printf("%s %s\n", prog->name, TMT_VERSION);
            tmt_prog_cli_fini(cli);
            *done = true;
            return TMT_EXIT_OK;
        }
        if (match_flag(a, "config", 'c', &v)) {
            NEED_VALUE("--config");
            cli->config_path = v;
            continue;
        }
        if (match_flag(a, "set", 's', &v)) {
            NEED_VALUE("--set");
            if (strchr(v, '=') == NULL) {
                fprintf(stderr, "%s: --set %s: expected section.key=value\n", prog->name, v);
                goto usage_error;
            }
            cli->sets = tmt_xrealloc(cli->sets, (cli->n_sets + 1) * sizeof(*cli->sets));
            cli->sets[cli->n_sets++] = tmt_xstrdup(v);
            continue;
        }
        if (strcmp(a, "--check-config") == 0) {
            cli->check_config = true;
            continue;
        }
        if (strcmp(a, "--dump-config") == 0) {
            cli->dump_config = true;
            continue;
        }
        if (strcmp(a, "--config-reference") == 0) {
            cli->reference = true;
            continue;
        }
        for (size_t f = 0; f < prog->n_flags; f++) {
            if (match_flag(a, prog->flags[f].name, '\0', &v)) {
                char flagname[64];
                snprintf(flagname, sizeof(flagname), "--%s", prog->flags[f].name);
                NEED_VALUE(flagname);
                add_set(cli, prog->flags[f].key, v);
                flag_done = true;
                break;
            }
        }
#undef NEED_VALUE
        if (flag_done)
            continue;
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog->name, a);
            goto usage_error;
        }
        cli->args[cli->n_args++] = argv[i];
    }
    return TMT_EXIT_OK;

usage_error:
    tmt_prog_cli_fini(cli);
    *done = true;
    return TMT_EXIT_USAGE;
}

/*
 * Reads the --config file and applies it and the command-line sets to a fresh settings struct.
 * Returns it, or NULL with the problems in diag.
 */
static void *load_settings(const struct tmt_prog *prog, const struct tmt_prog_cli *cli,
                           struct tmt_conf_diag *diag)
{
    const struct tmt_conf_schema *schema = prog->schema;
    struct tmt_conf_src srcs[3];
    size_t n_srcs = 0;
    char *text = NULL, *pushed = NULL;

    if (cli->config_path != NULL) {
        size_t len;
        text = tmt_conf_read_file(cli->config_path, &len, diag);
        if (text == NULL)
            return NULL;
        srcs[n_srcs++] = (struct tmt_conf_src){
            .kind = TMT_CONF_SRC_TEXT, .name = cli->config_path, .text = text, .len = len};
    }
    pthread_mutex_lock(&pushed_mu);
    size_t plen = pushed_len;
    if (plen > 0)
        pushed = tmt_xstrndup(pushed_text, plen);
    pthread_mutex_unlock(&pushed_mu);
    if (pushed != NULL)
        srcs[n_srcs++] = (struct tmt_conf_src){
            .kind = TMT_CONF_SRC_TEXT, .name = "control plane", .text = pushed, .len = plen};
    if (cli->n_sets > 0) {
        srcs[n_srcs++] = (struct tmt_conf_src){.kind = TMT_CONF_SRC_SETS,
                                               .name = "command line",
                                               .sets = (const char *const *)cli->sets,
                                               .n_sets = cli->n_sets};
    }
    void *settings = tmt_xmalloc(schema->size);
    tmt_conf_init(schema, settings);
    int rc = tmt_conf_load(schema, settings, srcs, n_srcs, diag);
    free(text);
    free(pushed);
    if (rc != 0) {
        tmt_conf_fini(schema, settings);
        free(settings);
        return NULL;
    }
    return settings;
}

struct tmt_conf_snap *tmt_prog_load(const struct tmt_prog *prog, const struct tmt_prog_cli *cli,
                                    uint64_t generation)
{
    struct tmt_conf_diag diag = {0};
    void *settings = load_settings(prog, cli, &diag);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.lines[i]);
    tmt_conf_diag_fini(&diag);
    return settings != NULL ? tmt_conf_snap_new(prog->schema, settings, generation) : NULL;
}

static void apply_log_level(size_t daemon_offset, const void *settings)
{
    const struct tmt_daemon_conf *d =
        (const struct tmt_daemon_conf *)((const char *)settings + daemon_offset);
    if (d->log_level >= TMT_LOG_ERROR && d->log_level <= TMT_LOG_DEBUG)
        tmt_log_set_level((enum tmt_log_level)d->log_level);
}

int tmt_prog_start(const struct tmt_prog *prog, int argc, char **argv, struct tmt_prog_cli *cli,
                   struct tmt_conf_snap **snap)
{
    bool done;
    int rc = tmt_prog_parse(prog, argc, argv, cli, &done);
    if (done)
        return rc;
    if (cli->reference) {
        tmt_conf_reference(prog->schema, stdout);
        tmt_prog_cli_fini(cli);
        return TMT_EXIT_OK;
    }
    *snap = tmt_prog_load(prog, cli, 1);
    if (*snap == NULL) {
        if (cli->check_config)
            fprintf(stderr, "%s: settings are not valid\n", prog->name);
        tmt_prog_cli_fini(cli);
        return TMT_EXIT_FAIL;
    }
    if (cli->dump_config)
        tmt_conf_dump(prog->schema, tmt_conf_snap_get(*snap), stdout, true);
    if (cli->check_config)
        printf("%s: settings are valid\n", cli->config_path ? cli->config_path : prog->name);
    if (cli->dump_config || cli->check_config) {
        tmt_conf_snap_unref(snap);
        tmt_prog_cli_fini(cli);
        return TMT_EXIT_OK;
    }
    return -1;
}

struct daemon_run {
    unsigned magic;
#define DAEMON_RUN_MAGIC 0xdae40001u
    const struct tmt_prog *prog;
    const struct tmt_prog_cli *cli;
    struct tmt_loop *loop;
    struct tmt_conf_snap **snap;
    const struct tmt_daemon_hooks *hooks;
    size_t daemon_offset;
    uint64_t generation;
    bool stopping;
};

static void log_restart_key(const char *section, const char *name, void *arg)
{
    (void)arg;
    tmt_log(TMT_LOG_WARN, "config", "setting changed but takes effect only at restart", "key=%s.%s",
            section, name);
}

static void reload(struct daemon_run *run)
{
    const struct tmt_prog *prog = run->prog;
    struct tmt_conf_diag diag = {0};
    void *settings = load_settings(prog, run->cli, &diag);
    if (settings == NULL) {
        for (size_t i = 0; i < diag.n; i++) {
            /* As the message, so the logger escapes the quotes a problem may hold. */
            char msg[1100];
            snprintf(msg, sizeof(msg), "reload rejected: %s", diag.lines[i]);
            tmt_log(TMT_LOG_ERROR, "config", msg, "%s", "");
        }
        tmt_log(TMT_LOG_ERROR, "config", "reload rejected; settings unchanged",
                "problems=%zu generation=%llu", diag.n, (unsigned long long)run->generation);
        tmt_conf_diag_fini(&diag);
        return;
    }
    tmt_conf_each_restart_change(prog->schema, tmt_conf_snap_get(*run->snap), settings,
                                 log_restart_key, NULL);
    struct tmt_conf_snap *fresh = tmt_conf_snap_new(prog->schema, settings, ++run->generation);
    apply_log_level(run->daemon_offset, settings);
    if (run->hooks->on_reload != NULL)
        run->hooks->on_reload(fresh, run->hooks->arg);
    tmt_conf_snap_unref(run->snap);
    *run->snap = fresh;
    tmt_log(TMT_LOG_INFO, "config", "reloaded", "generation=%llu file=%s",
            (unsigned long long)run->generation,
            run->cli->config_path ? run->cli->config_path : "-");
}

static void on_signal(int signo, void *arg)
{
    struct daemon_run *run;
    TMT_OBJ_CAST(run, arg, DAEMON_RUN_MAGIC);
    if (signo == SIGHUP) {
        tmt_log(TMT_LOG_INFO, "config", "reload requested", "signal=HUP");
        reload(run);
        return;
    }
    if (run->stopping)
        return;
    run->stopping = true;
    tmt_log(TMT_LOG_INFO, "main", "stopping", "signal=%s", signo == SIGTERM ? "TERM" : "INT");
    if (run->hooks->on_stop != NULL)
        run->hooks->on_stop(run->hooks->arg);
    tmt_loop_stop(run->loop);
}

int tmt_prog_daemon_main(const struct tmt_prog *prog, size_t daemon_offset, int argc, char **argv,
                         const struct tmt_daemon_hooks *hooks)
{
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    int rc = tmt_prog_start(prog, argc, argv, &cli, &snap);
    if (rc >= 0)
        return rc;
    /* Settings a control plane pushed before the last stop apply from the start, restart-only
     * ones included; when they do not load with the rest, the daemon starts without them. */
    char *pushed = hooks->pushed_at_start != NULL
                       ? hooks->pushed_at_start(tmt_conf_snap_get(snap), hooks->arg)
                       : NULL;
    if (pushed != NULL && pushed[0] != '\0') {
        tmt_prog_set_pushed(pushed, strlen(pushed));
        struct tmt_conf_snap *with = tmt_prog_load(prog, &cli, 1);
        if (with != NULL) {
            tmt_conf_snap_unref(&snap);
            snap = with;
            tmt_log(TMT_LOG_INFO, "config", "settings pushed by the control plane applied",
                    "bytes=%zu", strlen(pushed));
        } else {
            tmt_prog_set_pushed("", 0);
            tmt_log(TMT_LOG_ERROR, "config",
                    "settings pushed by the control plane do not load; starting without them", "%s",
                    "");
        }
    }
    free(pushed);

    struct daemon_run run = {
        .magic = DAEMON_RUN_MAGIC,
        .prog = prog,
        .cli = &cli,
        .snap = &snap,
        .hooks = hooks,
        .daemon_offset = daemon_offset,
        .generation = tmt_conf_snap_generation(snap),
    };
    bool started = false;
    apply_log_level(daemon_offset, tmt_conf_snap_get(snap));
    /* Writes to a closed peer must fail with EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    rc = TMT_EXIT_FAIL;
    run.loop = tmt_loop_new();
    if (run.loop == NULL)
        goto out;
    if (tmt_loop_on_signal(run.loop, SIGTERM, on_signal, &run) != 0 ||
        tmt_loop_on_signal(run.loop, SIGINT, on_signal, &run) != 0 ||
        tmt_loop_on_signal(run.loop, SIGHUP, on_signal, &run) != 0) {
        tmt_log(TMT_LOG_ERROR, "main", "cannot register signal handlers", "%s", "");
        goto out;
    }
    if (hooks->on_start != NULL && hooks->on_start(run.loop, snap, hooks->arg) != 0)
        goto out;
    started = true;
    tmt_log(TMT_LOG_INFO, "main", "started", "program=%s version=%s pid=%ld config=%s", prog->name,
            TMT_VERSION, (long)getpid(), cli.config_path ? cli.config_path : "-");
    if (tmt_loop_run(run.loop) != 0) {
        tmt_log(TMT_LOG_ERROR, "main", "event loop failed", "%s", "");
        goto out;
    }
    tmt_log(TMT_LOG_INFO, "main", "stopped", "program=%s", prog->name);
    rc = TMT_EXIT_OK;
out:
    if (started && hooks->on_exit != NULL)
        hooks->on_exit(hooks->arg);
    tmt_loop_free(&run.loop);
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return rc;
}
