/*
 * edge_conf.c: the settings table of tomato-edge.
 */
#include "edge_conf.h"

#include <stddef.h>
#include <string.h>

#include "tmt/cache_policy.h"
#include "tmt/http.h"
#include "tokens.h"

static const struct tmt_conf_key edge_keys[] = {
    {.section = "server",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, listen),
     .dflt = "127.0.0.1:8080",
     .help = "address for viewers over plain HTTP (HTTP/1.1, h2c with prior knowledge)"},
    {.section = "server",
     .name = "tls_listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, tls_listen),
     .dflt = "",
     .help = "address for viewers over HTTPS (h2 and HTTP/1.1 by ALPN); empty = no HTTPS"},
    {.section = "tls",
     .name = "cert",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, tls_cert),
     .flags = TMT_CONF_RELOADABLE,
     .help = "PEM certificate chain for server.tls_listen"},
    {.section = "tls",
     .name = "key",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, tls_key),
     .flags = TMT_CONF_RELOADABLE,
     .help = "PEM private key for tls.cert"},
    {.section = "admin",
     .name = "listen",
     .type = TMT_CONF_ADDR,
     .offset = offsetof(struct edge_conf, admin_listen),
     .dflt = "127.0.0.1:9080",
     .help = "admin address (/metrics, /healthz, purge); keep it on loopback"},
    {.section = "static",
     .name = "root",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, static_root),
     .dflt = "",
     .help = "serve the files under this directory (demo and benchmarks); empty = off"},
    {.section = "upstream",
     .name = "shields",
     .type = TMT_CONF_LIST,
     .offset = offsetof(struct edge_conf, shields),
     .dflt = "",
     .max = 64,
     .help = "origin shields (host:port, numeric) that fill misses, chosen per key by rendezvous "
             "hashing; empty = no cache (static.root or 404)"},
    {.section = "upstream",
     .name = "fill_key_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, fill_key_file),
     .dflt = "",
     .help = "file holding the shields' fill key, sent as a bearer credential on every fill "
             "(in place of the viewer's Authorization); empty = none"},
    {.section = "upstream",
     .name = "connect_timeout",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, up_connect_ms),
     .dflt = "2s",
     .min = 1,
     .help = "TCP connect to a shield; on expiry the next shield is tried"},
    {.section = "upstream",
     .name = "response_timeout",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, up_response_ms),
     .dflt = "10s",
     .min = 1,
     .help = "from the request sent to the response head; on expiry the next shield is tried"},
    {.section = "upstream",
     .name = "holdoff",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, up_holdoff_ms),
     .dflt = "5s",
     .min = 0,
     .max = 600000,
     .help = "after a shield refused, timed out or reset, how long fills try it after the "
             "others (then one fill probes it); 0 = never hold a shield off"},
    {.section = "upstream",
     .name = "read_timeout",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, up_read_ms),
     .dflt = "10s",
     .min = 1,
     .help = "longest pause while a body arrives; the fill then fails and nothing is stored"},
    {.section = "cache",
     .name = "hot_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct edge_conf, hot_size),
     .dflt = "256MiB",
     .help = "bytes of objects kept in RAM (the hot tier)"},
    {.section = "cache",
     .name = "warm_path",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, warm_path),
     .dflt = "var/edge/warm",
     .help = "RocksDB directory of the warm tier (fast disk)"},
    {.section = "cache",
     .name = "warm_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct edge_conf, warm_size),
     .dflt = "1GiB",
     .help = "bytes of objects on the warm tier; 0 = no warm tier"},
    {.section = "cache",
     .name = "warm_zstd_level",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct edge_conf, warm_zstd),
     .dflt = "0",
     .min = 0,
     .max = 19,
     .help = "zstd level on the warm tier; 0 = none (media does not compress, reads stay cheap)"},
    {.section = "cache",
     .name = "cold_path",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, cold_path),
     .dflt = "var/edge/cold",
     .help = "RocksDB directory of the cold tier (large, slow disk)"},
    {.section = "cache",
     .name = "cold_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct edge_conf, cold_size),
     .dflt = "4GiB",
     .help = "bytes of objects on the cold tier; 0 = no cold tier"},
    {.section = "cache",
     .name = "cold_zstd_level",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct edge_conf, cold_zstd),
     .dflt = "9",
     .min = 0,
     .max = 19,
     .help = "zstd level on the cold tier (heavier: playlists and headers shrink, disk is slow)"},
    {.section = "cache",
     .name = "max_object_size",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct edge_conf, max_object_size),
     .dflt = "16MiB",
     .min = 1,
     .help = "largest response body cached and coalesced; twice this much of the total stays free"},
    {.section = "cache",
     .name = "policy",
     .type = TMT_CONF_ENUM,
     .offset = offsetof(struct edge_conf, policy),
     .dflt = "segpool",
     .choices = TMT_POLICY_CHOICES,
     .help = "eviction policy over the three tiers (the one tomato-cachesim replays)"},
    {.section = "cache",
     .name = "policy_clock",
     .type = TMT_CONF_ENUM,
     .offset = offsetof(struct edge_conf, policy_clock),
     .dflt = "real",
     .choices = "real|frozen",
     .help = "the policy's clock: real seconds, or frozen at 0 (only to check a live edge against "
             "tomato-cachesim --decisions on a trace whose times are all 0)"},
    {.section = "cache",
     .name = "mrc_rate",
     .type = TMT_CONF_STR,
     .offset = offsetof(struct edge_conf, mrc_rate),
     .dflt = "0.01",
     .help = "fraction of the keys sampled to estimate this edge's miss-ratio curve (the byte "
             "miss ratio its policy would have from 1/16 to 16 times its budget, sent in report "
             "batches); 0 = no estimate"},
    {.section = "cache",
     .name = "mrc_memory",
     .type = TMT_CONF_SIZE,
     .offset = offsetof(struct edge_conf, mrc_memory),
     .dflt = "4MiB",
     .min = 64 << 10,
     .help = "memory bound of the miss-ratio-curve estimate (it samples fewer keys to stay "
             "within it)"},
    {.section = "cache",
     .name = "heuristic_max",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, heuristic_max_ms),
     .dflt = "1d",
     .help = "cap of heuristic freshness (10 % of the time since Last-Modified, RFC 9111 4.2.2)"},
    {.section = "cache",
     .name = "cdn_cache_control",
     .type = TMT_CONF_BOOL,
     .offset = offsetof(struct edge_conf, cdn_cache_control),
     .dflt = "true",
     .help = "let CDN-Cache-Control (RFC 9213) override Cache-Control and Expires here"},
    {.section = "cache",
     .name = "name",
     .type = TMT_CONF_STR,
     .offset = offsetof(struct edge_conf, cache_name),
     .dflt = "tomato-edge",
     .help = "this cache's name in Cache-Status (RFC 9211)"},
    {.section = "tokens",
     .name = "protect",
     .type = TMT_CONF_LIST,
     .offset = offsetof(struct edge_conf, tok_protect),
     .dflt = "/v/",
     .max = EDGE_TOKENS_PREFIXES_MAX,
     .help = "path prefixes (normalized) whose requests must come as /t/{token}/... with a valid "
             "token, or get 403 without reaching the cache or the shields"},
    {.section = "tokens",
     .name = "public",
     .type = TMT_CONF_LIST,
     .offset = offsetof(struct edge_conf, tok_public),
     .dflt = "",
     .max = EDGE_TOKENS_PREFIXES_MAX,
     .help = "path prefixes that need no token (trailers, tests); the longest matching prefix of "
             "the two lists decides, and a prefix in both is public"},
    {.section = "tokens",
     .name = "keys_file",
     .type = TMT_CONF_PATH,
     .offset = offsetof(struct edge_conf, tok_keys_file),
     .dflt = "",
     .flags = TMT_CONF_RELOADABLE,
     .help = "token signing keys, one \"KID SECRET\" per line (SECRET base64url, 32 to 64 bytes), "
             "read again on reload; empty = no file (keys only from the control plane)"},
    {.section = "tokens",
     .name = "clock_skew",
     .type = TMT_CONF_DURATION,
     .offset = offsetof(struct edge_conf, tok_skew_ms),
     .dflt = "30s",
     .max = 600000,
     .help = "how far in the future a token's nbf and iat may be (clocks of the control plane "
             "and the edge differ)"},
    {.section = "tokens",
     .name = "cache_entries",
     .type = TMT_CONF_INT,
     .offset = offsetof(struct edge_conf, tok_cache_entries),
     .dflt = "65536",
     .min = 0,
     .max = 16777216,
     .help = "verified tokens remembered, in total over the workers (each keeps its share); a "
             "repeated token then costs a lookup, not a signature check; 0 = verify every time"},
};

/* A prefix a normalized request path can start with (see tokens.h). */
static bool prefix_ok(const char *p)
{
    size_t len = strlen(p);
    char norm[1025];
    return len > 0 && len < sizeof(norm) && p[0] == '/' && strpbrk(p, "?#") == NULL &&
           tmt_http_path_normalize((struct tmt_slice){p, len}, norm, sizeof(norm)) == len &&
           memcmp(norm, p, len) == 0;
}

static void check_prefixes(const struct tmt_conf_list *l, const char *key,
                           struct tmt_conf_check *chk)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!prefix_ok(l->items[i]))
            tmt_conf_check_fail(chk, key,
                                "\"%s\" is not a normalized path prefix: it starts with '/' and "
                                "has no '?', '#', '//', '.' or '..' components, no escapes of "
                                "unreserved characters and other escapes in upper case",
                                l->items[i]);
    }
}

static void edge_conf_check(const void *settings, struct tmt_conf_check *chk)
{
    tmt_http_conf_check(&((const struct edge_conf *)settings)->http, chk);
    {
        const struct edge_conf *ec = settings;
        char *end = NULL;
        double r = strtod(ec->mrc_rate, &end);
        if (end == ec->mrc_rate || *end != '\0' || !(r >= 0 && r <= 1))
            tmt_conf_check_fail(chk, "cache.mrc_rate", "\"%s\" is not a rate in [0, 1]",
                                ec->mrc_rate);
    }
    const struct edge_conf *c = settings;
    check_prefixes(&c->tok_protect, "tokens.protect", chk);
    check_prefixes(&c->tok_public, "tokens.public", chk);
    if (c->tls_listen[0] != '\0' && c->tls_cert[0] == '\0')
        tmt_conf_check_fail(chk, "server.tls_listen", "HTTPS needs tls.cert and tls.key");
    else if (c->tls_listen[0] != '\0' && c->tls_key[0] == '\0')
        tmt_conf_check_fail(chk, "tls.cert", "tls.cert is set but tls.key is not");
    if (c->shields.n > 0) {
        uint64_t total = c->hot_size + c->warm_size + c->cold_size;
        if (total <= 2 * TMT_MIN(c->max_object_size,
                                 TMT_MAX(c->hot_size, TMT_MAX(c->warm_size, c->cold_size))))
            tmt_conf_check_fail(chk, "cache.max_object_size",
                                "the cache budgets must exceed twice cache.max_object_size");
        for (size_t i = 0; i < c->shields.n; i++) {
            if (strchr(c->shields.items[i], ':') == NULL)
                tmt_conf_check_fail(chk, "upstream.shields", "each shield is host:port");
        }
    }
}

static const struct tmt_conf_part edge_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct edge_conf, daemon)),
    TMT_HTTP_CONF_PART(offsetof(struct edge_conf, http)),
    TMT_NODE_CONF_PART(offsetof(struct edge_conf, node)),
    {edge_keys, TMT_ARRAY_LEN(edge_keys), 0},
};

const struct tmt_conf_schema edge_conf_schema = {
    .program = "tomato-edge",
    .parts = edge_parts,
    .n_parts = TMT_ARRAY_LEN(edge_parts),
    .size = sizeof(struct edge_conf),
    .check = edge_conf_check,
};
