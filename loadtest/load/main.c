/*
 * tomato-load: the load generator. Three modes, chosen by the first argument or load.mode:
 *   viewers    simulated HLS viewers over a catalog of assets (viewer.c)
 *   replay     a request trace replayed at a rate or as fast as possible (replay.c)
 *   gen-trace  writes a synthetic trace in the same CSV format (gen.c), no traffic
 * Traffic goes only to target.url, a numeric address: plain HTTP/1.1 with keep-alive through the
 * core client, HTTP/1.1 over TLS and HTTP/2 (h2 by ALPN, h2c with prior knowledge) through
 * conn.c. Every run stops by itself: load.duration, and
 * load.requests when it is not 0. This file holds the settings and their checks; run.c runs
 * the workers and prints the report.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_int.h"
#include "tmt/prog.h"
#include "tmt/trace.h"

#define K(sec, nm, ty, field, def, h, ...)                                                         \
    {                                                                                              \
        .section = sec, .name = nm, .type = ty, .offset = offsetof(struct load_conf, field),       \
        .dflt = def, .help = h, __VA_ARGS__                                                        \
    }

static const struct tmt_conf_key load_keys[] = {
    K("target", "url", TMT_CONF_URL, target, "http://127.0.0.1:8080",
      "base URL of the edge (http[s]://IP:PORT[/prefix], numeric address); traffic goes only "
      "there"),
    K("target", "http", TMT_CONF_ENUM, http, "1.1",
      "HTTP version: 1.1, or 2 (h2 by ALPN with https://, h2c with prior knowledge with http://)",
      .choices = "1.1|2"),
    K("target", "host", TMT_CONF_STR, host, "",
      "name sent as Host (:authority) and as TLS server name, and that the certificate must "
      "match; empty = the address (the certificate must then hold it as an IP SAN)"),
    K("target", "ca_file", TMT_CONF_PATH, ca_file, "",
      "https: PEM file of the CA certificates to trust; empty = the system's"),
    K("target", "insecure", TMT_CONF_BOOL, insecure, "false",
      "https: skip certificate verification (self-signed test certificates only)"),
    K("target", "tls_resume", TMT_CONF_BOOL, tls_resume, "true",
      "https: a new connection resumes the TLS session of the client's previous one (a "
      "worker's pool, or a viewer's own connection), as players do; false = full handshakes"),
    K("target", "h2_streams", TMT_CONF_INT, h2_streams, "100",
      "HTTP/2: concurrent streams per connection (fewer if the target says so) before another "
      "connection opens",
      .min = 1, .max = 10000),
    K("target", "token", TMT_CONF_STR, token, "",
      "viewer token: paths become /t/{token}/v/...; empty = none"),
    K("target", "token_file", TMT_CONF_PATH, token_file, "",
      "file whose first line is the viewer token (instead of target.token)"),
    K("control", "url", TMT_CONF_URL, control_url, "",
      "viewers: control plane (http://IP:PORT) to get each session's token from with "
      "POST /v1/playback; viewers.assets are then show ids; empty = no control plane"),
    K("control", "accounts", TMT_CONF_PATH, accounts, "",
      "viewer accounts for control.url: one \"email password\" per line"),
    K("control", "devices_per_account", TMT_CONF_INT, devices_per_account, "2",
      "viewers (each with its own device) per account: at most the control plane's "
      "devices.max_active",
      .min = 1, .max = 1000),
    K("control", "heartbeat", TMT_CONF_DURATION, heartbeat_ms, "20s",
      "a viewer sends POST /v1/playback/{lease}/heartbeat this often while it plays (well "
      "within the control plane's devices.lease_ttl); 0 = never",
      .max = 3600000),
    K("load", "mode", TMT_CONF_ENUM, mode, "viewers", "what to do when no mode argument is given",
      .choices = "viewers|replay|gen-trace"),
    K("load", "duration", TMT_CONF_DURATION, duration_ms, "30s",
      "stop after this long (in-flight requests are then cancelled)", .min = 100, .max = 86400000),
    K("load", "requests", TMT_CONF_INT, requests, "1000000",
      "stop after this many requests (0 = by duration only)", .min = 0, .max = INT64_MAX),
    K("load", "workers", TMT_CONF_INT, workers, "1",
      "worker threads, each with its own loop and connections", .min = 1, .max = 64),
    K("load", "json", TMT_CONF_BOOL, json, "false", "final report as one JSON object"),
    K("load", "progress", TMT_CONF_BOOL, progress, "true",
      "a progress line on stderr once a second"),
    K("load", "connect_timeout", TMT_CONF_DURATION, connect_timeout_ms, "2s", "TCP connect timeout",
      .min = 1, .max = 600000),
    K("load", "timeout", TMT_CONF_DURATION, timeout_ms, "10s",
      "response head timeout and longest pause within a body", .min = 1, .max = 3600000),
    K("load", "seed", TMT_CONF_INT, seed, "1", "seed of the viewers' random choices", .min = 0,
      .max = INT64_MAX),
    K("viewers", "count", TMT_CONF_INT, viewers, "10", "concurrent simulated viewers", .min = 1,
      .max = 100000),
    K("viewers", "ramp", TMT_CONF_DURATION, ramp_ms, "0",
      "viewers start evenly spread over this time", .max = 86400000),
    K("viewers", "assets", TMT_CONF_LIST, assets, "",
      "asset ids to watch (/v/{id}/master.m3u8), most popular first"),
    K("viewers", "zipf_alpha", TMT_CONF_STR, zipf_alpha, "0.8",
      "Zipf exponent of asset popularity by position in viewers.assets (0 = uniform)"),
    K("viewers", "pace", TMT_CONF_ENUM, pace, "realtime",
      "realtime: segments as a player needs them (EXTINF); fast: back to back",
      .choices = "realtime|fast"),
    K("viewers", "connection", TMT_CONF_ENUM, connection, "shared",
      "shared: a worker's viewers share its keep-alive pool; per-viewer: each viewer holds its "
      "own keep-alive connection, as a player does",
      .choices = "shared|per-viewer"),
    K("viewers", "watch_mean", TMT_CONF_STR, watch_mean, "0.5",
      "mean watched fraction of an asset (exponential, capped at 1): early abandonment"),
    K("viewers", "buffer", TMT_CONF_DURATION, buffer_ms, "12s",
      "realtime pace: fetch the next segment when less than this is buffered", .max = 600000),
    K("viewers", "think", TMT_CONF_DURATION, think_ms, "1s", "pause between a viewer's sessions",
      .max = 3600000),
    K("viewers", "abr_safety", TMT_CONF_STR, abr_safety, "0.8",
      "ABR picks the highest BANDWIDTH under this fraction of measured throughput"),
    K("replay", "trace", TMT_CONF_PATH, trace, "",
      "trace to replay (CSV time,obj_id,obj_size; - = stdin with one worker)"),
    K("replay", "rate", TMT_CONF_INT, rate, "0",
      "requests per second over all workers; 0 = as fast as replay.connections allow", .min = 0,
      .max = 10000000),
    K("replay", "connections", TMT_CONF_INT, connections, "16",
      "concurrent requests (keep-alive connections) over all workers", .min = 1, .max = 100000),
    K("gen", "out", TMT_CONF_PATH, gen_out, "-", "where gen-trace writes (- = stdout)"),
    K("gen", "requests", TMT_CONF_INT, gen_requests, "100000",
      "lines to write (0 = up to gen.duration)", .min = 0, .max = INT64_MAX),
    K("gen", "duration", TMT_CONF_DURATION, gen_duration_ms, "1d", "trace time span", .min = 1000,
      .max = (int64_t)365 * 86400000),
    K("gen", "assets", TMT_CONF_INT, gen_assets, "1000", "catalog at time 0", .min = 1,
      .max = 100000000),
    K("gen", "first_asset", TMT_CONF_INT, gen_first_asset, "1",
      "id of the first asset (paths /v/a{id}/...)", .min = 1, .max = 1000000000),
    K("gen", "churn", TMT_CONF_STR, gen_churn, "10",
      "new assets released per hour (they enter among the ten most popular)"),
    K("gen", "alpha", TMT_CONF_STR, gen_alpha, "0.9", "Zipf exponent of popularity"),
    K("gen", "rungs", TMT_CONF_INT, gen_rungs, "6", "renditions per asset", .min = 1, .max = 6),
    K("gen", "segments_min", TMT_CONF_INT, gen_seg_min, "30", "fewest segments of an asset",
      .min = 1, .max = 9998),
    K("gen", "segments_max", TMT_CONF_INT, gen_seg_max, "900", "most segments of an asset",
      .min = 1, .max = 9998),
    K("gen", "sessions_per_s", TMT_CONF_STR, gen_sessions, "2",
      "mean arrival rate of viewing sessions"),
    K("gen", "watch_mean", TMT_CONF_STR, gen_watch, "0.3", "mean watched fraction of an asset"),
    K("gen", "fast", TMT_CONF_BOOL, gen_fast, "false",
      "sessions request all their segments at once instead of one per segment duration"),
};

/* A finite number in [lo, hi], or NaN. */
static double parse_num(const char *s, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return NAN;
    return v;
}

static void load_check(const void *settings, struct tmt_conf_check *chk)
{
    const struct load_conf *c = settings;
    static const struct {
        const char *key;
        size_t off;
        double lo, hi;
    } nums[] = {
        {"viewers.zipf_alpha", offsetof(struct load_conf, zipf_alpha), 0, 10},
        {"viewers.watch_mean", offsetof(struct load_conf, watch_mean), 0.001, 100},
        {"viewers.abr_safety", offsetof(struct load_conf, abr_safety), 0.01, 10},
        {"gen.churn", offsetof(struct load_conf, gen_churn), 0, 1e6},
        {"gen.alpha", offsetof(struct load_conf, gen_alpha), 0, 10},
        {"gen.sessions_per_s", offsetof(struct load_conf, gen_sessions), 1e-6, 1e6},
        {"gen.watch_mean", offsetof(struct load_conf, gen_watch), 0.001, 100},
    };
    for (size_t i = 0; i < TMT_ARRAY_LEN(nums); i++) {
        const char *v = *(char *const *)((const char *)c + nums[i].off);
        if (isnan(parse_num(v, nums[i].lo, nums[i].hi)))
            tmt_conf_check_fail(chk, nums[i].key, "\"%s\" is not a number in [%g, %g]", v,
                                nums[i].lo, nums[i].hi);
    }
    if (c->gen_seg_min > c->gen_seg_max)
        tmt_conf_check_fail(chk, "gen.segments_min", "more than gen.segments_max");
    if (strcspn(c->host, "/?#@ \t\r\n") != strlen(c->host))
        tmt_conf_check_fail(chk, "target.host", "holds a character not allowed in a host name");
    if (c->control_url[0] != '\0') {
        if (strncmp(c->control_url, "http://", 7) != 0)
            tmt_conf_check_fail(chk, "control.url", "the control plane speaks plain http://");
        if (c->accounts[0] == '\0')
            tmt_conf_check_fail(chk, "control.accounts", "control.url needs viewer accounts");
        if (c->token[0] != '\0' || c->token_file[0] != '\0')
            tmt_conf_check_fail(chk, "target.token",
                                "tokens come from control.url: give no target.token");
        for (size_t i = 0; i < c->assets.n; i++) {
            const char *a = c->assets.items[i];
            if (a[0] == '\0' || strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_-") != strlen(a))
                tmt_conf_check_fail(chk, "viewers.assets", "\"%s\" is not a show id", a);
        }
    }
    if (c->token[0] != '\0' && c->token_file[0] != '\0')
        tmt_conf_check_fail(chk, "target.token", "give target.token or target.token_file");
    if (strcspn(c->token, "/?#% \t") != strlen(c->token))
        tmt_conf_check_fail(chk, "target.token", "holds a character not allowed in a path");
}

static const struct tmt_conf_part load_parts[] = {{load_keys, TMT_ARRAY_LEN(load_keys), 0}};

static const struct tmt_conf_schema load_schema = {
    .program = "tomato-load",
    .parts = load_parts,
    .n_parts = TMT_ARRAY_LEN(load_parts),
    .size = sizeof(struct load_conf),
    .check = load_check,
};

static const struct tmt_prog_flag load_flags[] = {
    {"url", "URL", "target.url"},
    {"http", "1.1|2", "target.http"},
    {"insecure", "BOOL", "target.insecure"},
    {"token", "TOKEN", "target.token"},
    {"token-file", "FILE", "target.token_file"},
    {"mode", "MODE", "load.mode"},
    {"duration", "TIME", "load.duration"},
    {"requests", "N", "load.requests"},
    {"workers", "N", "load.workers"},
    {"json", "BOOL", "load.json"},
    {"progress", "BOOL", "load.progress"},
    {"viewers", "N", "viewers.count"},
    {"ramp", "TIME", "viewers.ramp"},
    {"assets", "IDS", "viewers.assets"},
    {"alpha", "A", "viewers.zipf_alpha"},
    {"pace", "realtime|fast", "viewers.pace"},
    {"connection", "shared|per-viewer", "viewers.connection"},
    {"trace", "FILE", "replay.trace"},
    {"rate", "N", "replay.rate"},
    {"connections", "N", "replay.connections"},
    {"out", "FILE", "gen.out"},
    {"seed", "N", "load.seed"},
};

static const struct tmt_prog load_prog = {
    .name = "tomato-load",
    .summary = "load generator: simulated HLS viewers, trace replay and a trace generator",
    .schema = &load_schema,
    .flags = load_flags,
    .n_flags = TMT_ARRAY_LEN(load_flags),
    .usage_more =
        "Modes (first argument, or load.mode):\n"
        "  viewers    N simulated HLS viewers over viewers.assets (Zipf popularity, ABR, "
        "abandonment)\n"
        "  replay     replay.trace against target.url at replay.rate or as fast as possible\n"
        "  gen-trace  write a synthetic trace (gen.*) to gen.out; sends nothing\n"
        "Traffic: HTTP/1.1 with keep-alive or HTTP/2 (target.http), plain or over TLS "
        "(https://), to the numeric address of target.url only (and to control.url for viewer "
        "tokens).\n"
        "Stops after load.duration and load.requests. Report on stdout (--json BOOL for one "
        "JSON object), progress on stderr.\n",
};

/*
 * Parses the numeric host[:port] at hp (hl bytes) of setting key: upstream "IP:PORT" (dport when
 * no port), ip, and the socket address. Prints the problem and returns false when it cannot.
 */
static bool parse_hostport(const char *key, const char *hp, size_t hl, const char *dport,
                           char upstream[128], char ip[128], struct sockaddr_storage *ss,
                           socklen_t *sslen)
{
    if (hl + 6 >= 128) {
        fprintf(stderr, "tomato-load: %s: address too long\n", key);
        return false;
    }
    char host[128];
    const char *port = NULL;
    if (hp[0] == '[') {
        const char *rb = memchr(hp, ']', hl);
        if (rb == NULL)
            goto bad;
        memcpy(host, hp + 1, (size_t)(rb - hp - 1));
        host[rb - hp - 1] = '\0';
        if (rb + 1 < hp + hl && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(hp, ':', hl);
        size_t n = colon != NULL ? (size_t)(colon - hp) : hl;
        memcpy(host, hp, n);
        host[n] = '\0';
        if (colon != NULL)
            port = colon + 1;
    }
    unsigned char bin[16];
    bool v6 = inet_pton(AF_INET6, host, bin) == 1;
    if (!v6 && inet_pton(AF_INET, host, bin) != 1) {
        fprintf(stderr,
                "tomato-load: %s: \"%s\" is not a numeric IP address (no name "
                "lookups: traffic goes only to addresses given)\n",
                key, host);
        return false;
    }
    int plen = port != NULL ? (int)(hp + hl - port) : 0;
    if (plen > 5)
        goto bad;
    char portbuf[8];
    snprintf(portbuf, sizeof(portbuf), "%.*s", plen > 0 ? plen : (int)strlen(dport),
             plen > 0 ? port : dport);
    snprintf(upstream, 128, v6 ? "[%s]:%s" : "%s:%s", host, portbuf);
    snprintf(ip, 128, "%s", host);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portbuf, &hints, &res) != 0 || res == NULL ||
        res->ai_addrlen > sizeof(*ss)) {
        if (res != NULL)
            freeaddrinfo(res);
        goto bad;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return true;
bad:
    fprintf(stderr, "tomato-load: %s: bad address\n", key);
    return false;
}

/* Fills plan from the settings; prints the problem and returns false when it cannot. */
static bool make_plan(const struct load_conf *c, struct load_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->conf = c;
    p->workers = (unsigned)c->workers;
    p->alpha = parse_num(c->zipf_alpha, 0, 10);
    p->watch_mean = parse_num(c->watch_mean, 0.001, 100);
    p->abr_safety = parse_num(c->abr_safety, 0.01, 10);
    p->tls = strncmp(c->target, "https://", 8) == 0;
    p->h2 = c->http == 1;
    const char *hp = c->target + (p->tls ? strlen("https://") : strlen("http://"));
    size_t hl = strcspn(hp, "/?#");
    if (!parse_hostport("target.url", hp, hl, p->tls ? "443" : "80", p->upstream, p->ip, &p->ss,
                        &p->sslen))
        return false;
    snprintf(p->authority, sizeof(p->authority), "%s", c->host[0] ? c->host : p->upstream);
    if (c->control_url[0] != '\0' && c->mode == LOAD_MODE_VIEWERS) {
        const char *cp = c->control_url + strlen("http://");
        char ip[128];
        struct sockaddr_storage ss;
        socklen_t sslen;
        if (!parse_hostport("control.url", cp, strcspn(cp, "/?#"), "80", p->control_upstream, ip,
                            &ss, &sslen))
            return false;
        p->control = true;
    }
    /* Control-plane tokens run to several hundred characters: one that does not fit is refused,
     * never cut (a cut token is a malformed one, and every request would get 403). */
    char token[4096] = "";
    const char *token_key = "target.token";
    if (c->token_file[0] != '\0') {
        token_key = "target.token_file";
        FILE *f = fopen(c->token_file, "r");
        if (f == NULL || fgets(token, sizeof(token), f) == NULL) {
            fprintf(stderr, "tomato-load: target.token_file: cannot read %s\n", c->token_file);
            if (f != NULL)
                fclose(f);
            return false;
        }
        bool whole = strchr(token, '\n') != NULL || feof(f);
        fclose(f);
        if (!whole) {
            fprintf(stderr, "tomato-load: target.token_file: the token is longer than %zu bytes\n",
                    sizeof(token) - 2);
            return false;
        }
        token[strcspn(token, "\r\n")] = '\0';
        if (token[0] == '\0' || strcspn(token, "/?#% \t") != strlen(token)) {
            fprintf(stderr, "tomato-load: target.token_file: not a token\n");
            return false;
        }
    } else if (snprintf(token, sizeof(token), "%s", c->token) >= (int)sizeof(token)) {
        fprintf(stderr, "tomato-load: target.token: longer than %zu bytes\n", sizeof(token) - 1);
        return false;
    }
    const char *path = hp + hl;
    size_t pl = strcspn(path, "?#");
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    int n = snprintf(p->prefix, sizeof(p->prefix), "%.*s%s%s", (int)pl, path, token[0] ? "/t/" : "",
                     token);
    if (n < 0 || (size_t)n >= sizeof(p->prefix)) {
        fprintf(stderr,
                "tomato-load: %s: the URL's path and the token take %d bytes, at most %zu fit\n",
                token_key, n, sizeof(p->prefix) - 1);
        return false;
    }
    return true;
}

static int gen_trace(const struct load_conf *c)
{
    struct tmt_gen_params g;
    tmt_gen_params_default(&g);
    g.seed = (uint64_t)c->seed;
    g.requests = (uint64_t)c->gen_requests;
    g.duration_s = c->gen_duration_ms / 1000;
    g.assets = (uint64_t)c->gen_assets;
    g.first_asset = (uint64_t)c->gen_first_asset;
    g.churn_per_hour = parse_num(c->gen_churn, 0, 1e6);
    g.alpha = parse_num(c->gen_alpha, 0, 10);
    g.rungs = (unsigned)c->gen_rungs;
    g.seg_min = (unsigned)c->gen_seg_min;
    g.seg_max = (unsigned)c->gen_seg_max;
    g.sessions_per_s = parse_num(c->gen_sessions, 1e-6, 1e6);
    g.watch_mean = parse_num(c->gen_watch, 0.001, 100);
    g.realtime = !c->gen_fast;
    bool to_stdout = strcmp(c->gen_out, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(c->gen_out, "w");
    if (out == NULL) {
        perror(c->gen_out);
        return TMT_EXIT_FAIL;
    }
    struct tmt_gen_stats st;
    struct tmt_err err;
    tmt_err_clear(&err);
    int rc = tmt_gen_write(&g, out, &st, &err);
    if (!to_stdout && fclose(out) != 0 && rc == 0)
        rc = tmt_err_set(&err, TMT_EIO, "closing %s", c->gen_out);
    if (rc != 0) {
        fprintf(stderr, "tomato-load: gen-trace: %s\n", err.msg);
        return TMT_EXIT_FAIL;
    }
    fprintf(stderr,
            "tomato-load: gen-trace: %llu requests, %llu sessions, %llu assets, %llu bytes\n",
            (unsigned long long)st.requests, (unsigned long long)st.sessions,
            (unsigned long long)st.assets, (unsigned long long)st.bytes);
    return TMT_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct tmt_prog_cli cli;
    struct tmt_conf_snap *snap = NULL;
    int rc = tmt_prog_start(&load_prog, argc, argv, &cli, &snap);
    if (rc >= 0)
        return rc;
    const struct load_conf *conf = tmt_conf_snap_get(snap);
    struct load_conf c = *conf;
    rc = TMT_EXIT_USAGE;
    if (cli.n_args > 1) {
        fprintf(stderr, "tomato-load: one mode argument at most (see --help)\n");
        goto out;
    }
    if (cli.n_args == 1) {
        if (strcmp(cli.args[0], "viewers") == 0)
            c.mode = LOAD_MODE_VIEWERS;
        else if (strcmp(cli.args[0], "replay") == 0)
            c.mode = LOAD_MODE_REPLAY;
        else if (strcmp(cli.args[0], "gen-trace") == 0)
            c.mode = LOAD_MODE_GEN;
        else {
            fprintf(stderr, "tomato-load: unknown mode \"%s\" (viewers, replay, gen-trace)\n",
                    cli.args[0]);
            goto out;
        }
    }
    rc = TMT_EXIT_FAIL;
    if (c.mode == LOAD_MODE_GEN) {
        rc = gen_trace(&c);
        goto out;
    }
    if (c.mode == LOAD_MODE_VIEWERS && c.assets.n == 0) {
        fprintf(stderr, "tomato-load: viewers.assets: viewer mode needs asset ids (--assets "
                        "a1,a2)\n");
        goto out;
    }
    if (c.mode == LOAD_MODE_REPLAY) {
        if (c.trace[0] == '\0') {
            fprintf(stderr, "tomato-load: replay.trace: replay needs a trace (--trace FILE)\n");
            goto out;
        }
        if (strcmp(c.trace, "-") == 0 && c.workers != 1) {
            fprintf(stderr, "tomato-load: replay.trace: stdin needs load.workers=1\n");
            goto out;
        }
        if (strcmp(c.trace, "-") != 0) {
            struct tmt_err err;
            tmt_err_clear(&err);
            struct tmt_trace *t = tmt_trace_open(c.trace, &err);
            if (t == NULL) {
                fprintf(stderr, "tomato-load: replay.trace: %s\n", err.msg);
                goto out;
            }
            tmt_trace_close(&t);
        }
    }
    struct load_plan plan;
    if (make_plan(&c, &plan) && (!plan.control || load_control_prepare(&plan) == 0))
        rc = load_run(&plan);
    free(plan.creds);
out:
    tmt_conf_snap_unref(&snap);
    tmt_prog_cli_fini(&cli);
    return rc;
}
