/*
 * tomato-control: the control plane. Users, sessions, devices and their playback leases, the
 * catalog, playback tokens and the router, as a REST/JSON API over RocksDB (docs/api.md).
 *
 * main() stays thin: the shared front end runs the lifecycle; the hooks open the store, start
 * the API threads and the servers. `tomato-control create-operator EMAIL [NAME]` makes an
 * operator account (password on standard input) while the daemon is stopped.
 */
#include <event2/event.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cp.h"
#include "cp_conf.h"
#include "tmt/daemon_http.h"
#include "tmt/log.h"
#include "tmt/loop.h"
#include "tmt/metrics.h"
#include "tmt/pool.h"
#include "tmt/prog.h"
#include "tmt/version.h"

static const struct tmt_prog_flag cp_flags[] = {
    {"listen", "ADDR", "server.listen"},
    {"store", "DIR", "store.path"},
};

static const struct tmt_prog cp_prog = {
    .name = "tomato-control",
    .summary = "control plane: users, devices, catalog, playback tokens, nodes, routing, reports",
    .schema = &cp_conf_schema,
    .flags = cp_flags,
    .n_flags = TMT_ARRAY_LEN(cp_flags),
    .usage_more = "Commands:\n"
                  "  (none)                       run the control plane\n"
                  "  create-operator EMAIL [NAME] make an operator account; the password is read\n"
                  "                               from standard input (stop the daemon first)\n",
};

/* Same order as enum cp_metric. */
static const struct tmt_metric_def cp_metrics[] = {
    {"tmt_control_logins_total", "result=\"ok\"", TMT_METRIC_COUNTER, "login attempts by outcome"},
    {"tmt_control_logins_total", "result=\"failed\"", TMT_METRIC_COUNTER,
     "login attempts by outcome"},
    {"tmt_control_logins_total", "result=\"limited\"", TMT_METRIC_COUNTER,
     "login attempts by outcome"},
    {"tmt_control_registrations_total", NULL, TMT_METRIC_COUNTER, "accounts registered"},
    {"tmt_control_playback_total", "result=\"started\"", TMT_METRIC_COUNTER,
     "playback starts by outcome (renewed: the device already held a lease)"},
    {"tmt_control_playback_total", "result=\"renewed\"", TMT_METRIC_COUNTER,
     "playback starts by outcome (renewed: the device already held a lease)"},
    {"tmt_control_playback_total", "result=\"device_limit\"", TMT_METRIC_COUNTER,
     "playback starts by outcome (renewed: the device already held a lease)"},
    {"tmt_control_tokens_signed_total", NULL, TMT_METRIC_COUNTER, "playback tokens signed"},
    {"tmt_control_router_redirects_total", NULL, TMT_METRIC_COUNTER,
     "router URLs followed to an edge"},
    {"tmt_control_store_errors_total", NULL, TMT_METRIC_COUNTER,
     "calls answered 503 because the store failed"},
    {"tmt_control_routes_total", "how=\"zone\"", TMT_METRIC_COUNTER,
     "viewers sent to an edge (playback and router), by what placed them"},
    {"tmt_control_routes_total", "how=\"location\"", TMT_METRIC_COUNTER,
     "viewers sent to an edge (playback and router), by what placed them"},
    {"tmt_control_routes_total", "how=\"default\"", TMT_METRIC_COUNTER,
     "viewers sent to an edge (playback and router), by what placed them"},
    {"tmt_control_routes_total", "how=\"none\"", TMT_METRIC_COUNTER,
     "viewers sent to an edge (playback and router), by what placed them"},
    {"tmt_control_route_unparsable_clients_total", NULL, TMT_METRIC_COUNTER,
     "viewer addresses that did not parse (routed to the default group)"},
    {"tmt_control_route_db_errors_total", NULL, TMT_METRIC_COUNTER,
     "location database lookups that failed (corrupt data)"},
};
_Static_assert(TMT_ARRAY_LEN(cp_metrics) == CPM_COUNT, "one counter per enum cp_metric");

#define SWEEP_INTERVAL_S 5
#define SESSION_SWEEP_ROUNDS 120

static struct tmt_daemon_http cp_http;
static struct cp *cp;
static struct event *sweep_ev;
static struct cp_ingest *ingest;
static atomic_bool sweeping;

/* ---- the state ---- */

static void cp_free(struct cp **p)
{
    struct cp *s = *p;
    if (s == NULL)
        return;
    tmt_pool_free(&s->pool);
    tmt_kv_close(&s->kv);
    cp_limiter_free(&s->limiter);
    tmt_conf_snap_unref(&s->snap);
    tmt_geo_zones_free(&s->zones);
    tmt_geo_db_close(&s->geodb);
    cp_web_free(s);
    pthread_mutex_destroy(&s->web_mu);
    pthread_rwlock_destroy(&s->geo_lock);
    pthread_rwlock_destroy(&s->keys_lock);
    pthread_mutex_destroy(&s->conf_mu);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
    free(s);
    *p = NULL;
}

/* Opens the store and loads the keys; with threads > 0 also starts the API pool. */
static struct cp *cp_open(struct tmt_conf_snap *snap, unsigned threads, struct tmt_err *err)
{
    struct cp *s = tmt_xcalloc(1, sizeof(*s));
    s->magic = CP_MAGIC;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->conf_mu, NULL);
    pthread_rwlock_init(&s->keys_lock, NULL);
    pthread_rwlock_init(&s->geo_lock, NULL);
    pthread_mutex_init(&s->web_mu, NULL);
    s->snap = tmt_conf_snap_ref(snap);
    s->conf = tmt_conf_snap_get(snap);
    s->limiter = cp_limiter_new();
    struct tmt_kv_opts ko = {
        .path = s->conf->store_path,
        .zstd_level = 3,
        .sync = s->conf->store_sync,
        .min_free_bytes = 64u << 20,
    };
    s->kv = tmt_kv_open(&ko, err);
    if (s->kv == NULL)
        goto fail;
    if (cp_keys_load(s, err) != 0)
        goto fail;
    /* A hash with the current cost, checked when a login names no account. */
    unsigned char junk[16];
    cp_random(junk, sizeof(junk));
    if (cp_password_hash(s->conf, (const char *)junk, sizeof(junk), s->dummy_hash,
                         sizeof(s->dummy_hash)) != 0) {
        tmt_err_set(err, TMT_EINVAL, "scrypt with N=%lld failed", (long long)s->conf->scrypt_n);
        goto fail;
    }
    if (threads > 0) {
        s->pool = tmt_pool_new(threads, "api");
        if (s->pool == NULL) {
            tmt_err_set(err, TMT_EIO, "cannot start the API threads");
            goto fail;
        }
    }
    return s;
fail:
    cp_free(&s);
    return NULL;
}

/* Reads a password: the first line of standard input (without echo on a terminal). */
static size_t read_password(const char *prompt, char *out, size_t cap)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    size_t n = 0;
    if (fgets(out, (int)cap, stdin) != NULL) {
        n = strcspn(out, "\r\n");
        out[n] = '\0';
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    return n;
}

static bool stop_at_first(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    (void)val;
    *(bool *)arg = true;
    return false;
}

/* auth.bootstrap_operator_*: the first operator, made at start while none exists. */
static int bootstrap_operator(struct cp *s)
{
    const struct cp_conf *c = s->conf;
    if (c->bootstrap_email[0] == '\0')
        return 0;
    /* Only while no operator exists: a deleted bootstrap operator is not made again. */
    bool found = false;
    if (cp_scan(s, "op:", stop_at_first, &found, NULL) != 0)
        return -1;
    if (found)
        return 0;
    char em[300], key[320], uid[CP_ID_MAX + 1];
    if (!cp_email_normalize(c->bootstrap_email, em, sizeof(em))) {
        tmt_log(TMT_LOG_ERROR, "control", "auth.bootstrap_operator_email is not an email address",
                "value=\"%s\"", c->bootstrap_email);
        return -1;
    }
    snprintf(key, sizeof(key), "email:%s", em);
    int rc = cp_get_str(s, key, uid, sizeof(uid), NULL);
    if (rc != 0) {
        /* A viewer holds the email: promoting it would hand the role to whoever registered it. */
        if (rc > 0)
            tmt_log(TMT_LOG_ERROR, "control",
                    "no operator exists and the bootstrap email belongs to a viewer account",
                    "email=%s hint=\"use another email, or tomato-control create-operator\"", em);
        return -1;
    }
    FILE *f = fopen(c->bootstrap_password_file, "r");
    if (f == NULL) {
        tmt_log(TMT_LOG_ERROR, "control", "cannot read the bootstrap operator's password",
                "path=\"%s\"", c->bootstrap_password_file);
        return -1;
    }
    char pw[1100] = "";
    if (fgets(pw, sizeof(pw), f) == NULL)
        pw[0] = '\0';
    fclose(f);
    size_t n = strcspn(pw, "\r\n");
    pw[n] = '\0';
    char why[200];
    rc = cp_create_operator(s, em, "Operator", pw, n, why, sizeof(why));
    memset(pw, 0, sizeof(pw));
    if (rc != 0)
        tmt_log(TMT_LOG_ERROR, "control", "cannot create the bootstrap operator", "why=\"%s\"",
                why);
    return rc;
}

static int create_operator_main(int argc, char **argv)
{
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    int rc = tmt_prog_start(&cp_prog, argc, argv, &cli, &snap);
    if (rc >= 0)
        return rc;
    rc = TMT_EXIT_FAIL;
    if (cli.n_args < 2 || cli.n_args > 3) {
        fprintf(stderr, "usage: tomato-control [options] create-operator EMAIL [NAME]\n");
        rc = TMT_EXIT_USAGE;
        goto out;
    }
    struct tmt_err err;
    tmt_err_clear(&err);
    struct cp *s = cp_open(snap, 0, &err);
    if (s == NULL) {
        fprintf(stderr, "tomato-control: %s%s\n", err.msg,
                strstr(err.msg, "lock") != NULL ? " (is tomato-control running? stop it first)"
                                                : "");
        goto out;
    }
    char pw[1100], why[200];
    size_t n = read_password("password: ", pw, sizeof(pw));
    const char *name = cli.n_args == 3 ? cli.args[2] : "Operator";
    if (cp_create_operator(s, cli.args[1], name, pw, n, why, sizeof(why)) != 0) {
        fprintf(stderr, "tomato-control: create-operator: %s\n", why);
    } else {
        printf("operator %s created\n", cli.args[1]);
        rc = TMT_EXIT_OK;
    }
    memset(pw, 0, sizeof(pw));
    cp_free(&s);
out:
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return rc;
}

/* ---- the daemon ---- */

static void sweep_work(void *arg)
{
    static unsigned rounds;
    struct cp *s = arg;
    int64_t now = cp_wall_now();
    cp_leases_sweep(s, now);
    cp_keys_sweep(s, now);
    /* Sessions are many and expire slowly: every SESSION_SWEEP_ROUNDS rounds (10 minutes). */
    if (rounds % SESSION_SWEEP_ROUNDS == 0)
        cp_sessions_sweep(s, now);
    /* Report buckets past their retention: every minute. */
    if (rounds % 12 == 0)
        cp_reports_sweep(s, now * 1000);
    rounds++;
    atomic_store(&sweeping, false);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cp *s = arg;
    if (!atomic_exchange(&sweeping, true))
        tmt_pool_submit(s->pool, sweep_work, NULL, s, NULL);
}

static int cp_start(struct tmt_loop *loop, struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct cp_conf *c = tmt_conf_snap_get(snap);
    struct tmt_err err;
    tmt_err_clear(&err);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads =
        c->api_threads > 0 ? (unsigned)c->api_threads : (unsigned)(2 * (ncpu > 0 ? ncpu : 1));
    cp = cp_open(snap, threads, &err);
    if (cp == NULL)
        goto fail;
    if (bootstrap_operator(cp) != 0)
        return -1;
    cp_geo_load(cp, c, true);
    cp_web_load(cp, c, true);
    struct tmt_daemon_http_opts o = {
        .name = "tomato-control/" TMT_VERSION,
        .daemon = &c->daemon,
        .http = &c->http,
        .listen = c->listen,
        .admin_listen = c->admin_listen,
        .handler = cp_api_handle,
        .handler_arg = cp,
    };
    if (tmt_daemon_http_init(&cp_http, loop, &o, &err) != 0)
        goto fail;
    cp->metrics = cp_http.metrics;
    cp->m_base = tmt_metrics_register(cp_http.metrics, cp_metrics, TMT_ARRAY_LEN(cp_metrics));
    if (tmt_daemon_http_start(&cp_http, &err) != 0)
        goto fail;
    ingest = cp_ingest_start(cp, loop);
    sweep_ev = event_new(tmt_loop_base(loop), -1, EV_PERSIST, on_sweep, cp);
    struct timeval tv = {SWEEP_INTERVAL_S, 0};
    event_add(sweep_ev, &tv);
    tmt_log(TMT_LOG_INFO, "control", "serving", "store=%s api_threads=%u edge=%s", c->store_path,
            threads, c->edge_url);
    return 0;
fail:
    tmt_log(TMT_LOG_ERROR, "control", "cannot start", "why=\"%s\"", err.msg);
    return -1;
}

static void cp_reload(struct tmt_conf_snap *snap, void *arg)
{
    (void)arg;
    const struct cp_conf *c = tmt_conf_snap_get(snap);
    tmt_daemon_http_reload(&cp_http, &c->daemon, &c->http, NULL, NULL);
    if (cp != NULL) {
        struct tmt_conf_snap *old;
        pthread_mutex_lock(&cp->conf_mu);
        old = cp->snap;
        cp->snap = tmt_conf_snap_ref(snap);
        cp->conf = c;
        pthread_mutex_unlock(&cp->conf_mu);
        tmt_conf_snap_unref(&old);
        cp_geo_load(cp, c, false);
        cp_web_load(cp, c, false);
    }
}

static void cp_stop(void *arg)
{
    (void)arg;
    if (sweep_ev != NULL)
        event_del(sweep_ev);
    cp_ingest_stop(&ingest);
    tmt_daemon_http_stop(&cp_http);
}

static void cp_exit(void *arg)
{
    (void)arg;
    if (sweep_ev != NULL)
        event_free(sweep_ev);
    sweep_ev = NULL;
    cp_ingest_stop(&ingest);
    /* The pool's last jobs post to the workers' loops, which the servers own: pool first. */
    if (cp != NULL)
        tmt_pool_free(&cp->pool);
    tmt_daemon_http_fini(&cp_http);
    cp_free(&cp);
}

int main(int argc, char **argv)
{
    struct tmt_prog_cli cli;
    bool done = false;
    int rc = tmt_prog_parse(&cp_prog, argc, argv, &cli, &done);
    if (done)
        return rc;
    bool create = cli.n_args > 0 && strcmp(cli.args[0], "create-operator") == 0;
    if (cli.n_args > 0 && !create) {
        fprintf(stderr, "tomato-control: unknown command '%s' (try --help)\n", cli.args[0]);
        tmt_prog_cli_fini(&cli);
        return TMT_EXIT_USAGE;
    }
    tmt_prog_cli_fini(&cli);
    if (create)
        return create_operator_main(argc, argv);
    static const struct tmt_daemon_hooks hooks = {
        .on_start = cp_start,
        .on_reload = cp_reload,
        .on_stop = cp_stop,
        .on_exit = cp_exit,
    };
    return tmt_prog_daemon_main(&cp_prog, offsetof(struct cp_conf, daemon), argc, argv, &hooks);
}
