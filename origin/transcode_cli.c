/*
 * transcode_cli.c: `tomato-shield [options] transcode --source FILE --asset ID [...]`, one
 * transcode job in the foreground.
 *
 * The command's own flags that mirror a setting become `--set` overrides (`--root` is
 * mezzanine.root, `--ladder` transcode.ladder, ...), so the settings file, --set and the flags
 * layer exactly as for the daemon and are validated by the same table. Everything else on the
 * command line goes to the shared front end (-c, -s, --help, ...).
 *
 * Progress goes to stderr: one line rewritten in place on a terminal, a line a second otherwise.
 * SIGINT and SIGTERM cancel the job (its work folder is removed) and exit with 130.
 */
#include "transcode_cli.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shield_conf.h"
#include "tmt/pack.h"
#include "tmt/transcode.h"

#define EXIT_INTERRUPTED 130

static atomic_bool cancel_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&cancel_flag, true);
}

/* Flags of the front end that take a value in the next argument. */
static bool takes_value(const struct tmt_prog *prog, const char *a)
{
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-s") == 0 ||
        strcmp(a, "--set") == 0)
        return true;
    for (size_t i = 0; i < prog->n_flags; i++) {
        if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, prog->flags[i].name) == 0)
            return true;
    }
    return false;
}

bool shield_transcode_wanted(const struct tmt_prog *prog, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-')
            return strcmp(argv[i], "transcode") == 0;
        if (takes_value(prog, argv[i]))
            i++;
    }
    return false;
}

/* The command's flags: those with a key are turned into --set KEY=VALUE. */
static const struct {
    const char *flag;
    const char *key; /* NULL: the command's own */
} cmd_flags[] = {
    {"source", NULL},
    {"asset", NULL},
    {"root", "mezzanine.root"},
    {"ladder", "transcode.ladder"},
    {"preset", "transcode.preset"},
    {"segment-duration", "transcode.segment_duration"},
    {"audio-bitrate", "transcode.audio_bitrate"},
    {"threads", "transcode.threads"},
};

struct cli_args {
    const char *source, *asset;
    bool quiet;
    char **argv; /* for the front end */
    int argc;
    char **owned;
    int n_owned;
};

/* Splits argv. Returns 0, or TMT_EXIT_USAGE after a message. */
static int split_args(int argc, char **argv, struct cli_args *a)
{
    a->argv = tmt_xcalloc((size_t)argc * 2 + 1, sizeof(*a->argv));
    a->owned = tmt_xcalloc((size_t)argc + 1, sizeof(*a->owned));
    a->argv[a->argc++] = argv[0];
    bool seen_cmd = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!seen_cmd && strcmp(arg, "transcode") == 0) {
            seen_cmd = true;
            continue;
        }
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            a->quiet = true;
            continue;
        }
        bool done = false;
        for (size_t f = 0; f < TMT_ARRAY_LEN(cmd_flags) && !done; f++) {
            size_t n = strlen(cmd_flags[f].flag);
            if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, cmd_flags[f].flag, n) != 0)
                continue;
            const char *v;
            if (arg[2 + n] == '=') {
                v = arg + 3 + n;
            } else if (arg[2 + n] == '\0') {
                if (i + 1 >= argc) {
                    fprintf(stderr, "tomato-shield: transcode: --%s needs a value\n",
                            cmd_flags[f].flag);
                    return TMT_EXIT_USAGE;
                }
                v = argv[++i];
            } else {
                continue;
            }
            done = true;
            if (cmd_flags[f].key == NULL) {
                if (f == 0)
                    a->source = v;
                else
                    a->asset = v;
                continue;
            }
            size_t len = strlen(cmd_flags[f].key) + strlen(v) + 2;
            char *set = tmt_xmalloc(len);
            snprintf(set, len, "%s=%s", cmd_flags[f].key, v);
            a->owned[a->n_owned++] = set;
            a->argv[a->argc++] = (char *)"--set";
            a->argv[a->argc++] = set;
        }
        if (!done)
            a->argv[a->argc++] = argv[i];
    }
    return 0;
}

static void cli_args_fini(struct cli_args *a)
{
    for (int i = 0; i < a->n_owned; i++)
        free(a->owned[i]);
    free(a->owned);
    free(a->argv);
}

struct progress_state {
    bool tty;
    bool quiet;
    double last_line_s;
};

static void on_progress(const struct tmt_transcode_progress *p, void *arg)
{
    struct progress_state *s = arg;
    if (s->quiet)
        return;
    if (!s->tty && !p->done && p->elapsed_s - s->last_line_s < 1.0)
        return;
    s->last_line_s = p->elapsed_s;
    fprintf(stderr, "%stranscode: %5.1f%%  %llu frames  %.1f fps  %.2fx realtime  %.1f s%s",
            s->tty ? "\r" : "", p->percent, (unsigned long long)p->frames, p->fps, p->speed,
            p->elapsed_s, s->tty && !p->done ? "" : "\n");
    fflush(stderr);
}

/* The preset's name from its index in TMT_TRANSCODE_PRESETS. */
static void preset_name(int idx, char *out, size_t cap)
{
    const char *p = TMT_TRANSCODE_PRESETS;
    for (int i = 0; i < idx && p != NULL; i++) {
        p = strchr(p, '|');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        p = TMT_TRANSCODE_PRESET;
    size_t len = strcspn(p, "|");
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

int shield_transcode_base(const struct shield_conf *c, struct tmt_transcode_opts *o,
                          struct tmt_err *err)
{
    tmt_transcode_opts_init(o);
    if (tmt_transcode_ladder_parse(o, c->transcode_ladder, err) != 0)
        return TMT_EINVAL;
    preset_name(c->transcode_preset, o->preset, sizeof(o->preset));
    o->segment_ms = (unsigned)c->transcode_segment_ms;
    o->audio_bitrate = (uint64_t)c->transcode_audio_bitrate;
    o->encoder_threads = (unsigned)c->transcode_threads;
    return 0;
}

static int run(const struct shield_conf *c, const struct cli_args *a)
{
    struct tmt_transcode_opts o;
    struct tmt_err err;
    tmt_err_clear(&err);
    if (shield_transcode_base(c, &o, &err) != 0) {
        fprintf(stderr, "tomato-shield: transcode.ladder: %s\n", err.msg);
        return TMT_EXIT_USAGE;
    }
    o.source = a->source;
    o.asset_id = a->asset;
    o.root = c->mezzanine_root;
    struct progress_state ps = {.tty = isatty(STDERR_FILENO) == 1, .quiet = a->quiet};
    o.progress = on_progress;
    o.progress_arg = &ps;
    o.cancel = &cancel_flag;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tmt_pack_libav_log_init();
    struct tmt_transcode_result res;
    int rc = tmt_transcode_run(&o, &res, &err);
    if (rc != 0) {
        if (ps.tty && !ps.quiet)
            fputc('\n', stderr);
        fprintf(stderr, "tomato-shield: transcode: %s\n", err.msg);
        return rc == TMT_EAGAIN && atomic_load(&cancel_flag) ? EXIT_INTERRUPTED : TMT_EXIT_FAIL;
    }
    printf("%s/%s: %u rung%s,", o.root, o.asset_id, res.n_rungs, res.n_rungs == 1 ? "" : "s");
    for (unsigned i = 0; i < res.n_rungs; i++)
        printf(" %s %ux%u", res.rungs[i].id, res.rungs[i].width, res.rungs[i].height);
    printf("; %s; %llu frames at %u/%u fps (%u per segment), %.3f s, made in %.1f s\n",
           res.audio ? "audio" : "no audio", (unsigned long long)res.frames, res.rate_num,
           res.rate_den, res.frames_per_segment, res.duration_s, res.elapsed_s);
    return TMT_EXIT_OK;
}

int shield_transcode_main(const struct tmt_prog *prog, int argc, char **argv)
{
    struct cli_args a;
    memset(&a, 0, sizeof(a));
    int rc = split_args(argc, argv, &a);
    if (rc != 0) {
        cli_args_fini(&a);
        return rc;
    }
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    rc = tmt_prog_start(prog, a.argc, a.argv, &cli, &snap);
    if (rc >= 0) {
        cli_args_fini(&a);
        return rc;
    }
    if (cli.n_args > 0 || a.source == NULL || a.asset == NULL) {
        fprintf(stderr, "usage: tomato-shield [options] transcode --source FILE --asset ID "
                        "[--root DIR] [...] (try --help)\n");
        rc = TMT_EXIT_USAGE;
    } else {
        rc = run(tmt_conf_snap_get(snap), &a);
    }
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    cli_args_fini(&a);
    return rc;
}
