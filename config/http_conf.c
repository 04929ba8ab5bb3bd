/*
 * http_conf.c: the [http] settings table (see http_conf.h). Defaults match
 * tmt_server_limits_default; bounds keep every budget finite.
 */
#include "tmt/http_conf.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "tmt/server.h"

#define K(field) offsetof(struct tmt_http_conf, field)

const struct tmt_conf_key tmt_http_conf_keys[TMT_HTTP_CONF_N_KEYS] = {
    {.section = "http",
     .name = "header_timeout",
     .type = TMT_CONF_DURATION,
     .offset = K(header_timeout_ms),
     .dflt = "10s",
     .min = 100,
     .max = 3600000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "time a client has to send a whole request head (slow clients get 408)"},
    {.section = "http",
     .name = "body_timeout",
     .type = TMT_CONF_DURATION,
     .offset = K(body_timeout_ms),
     .dflt = "10s",
     .min = 100,
     .max = 3600000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "longest pause while a request body arrives"},
    {.section = "http",
     .name = "idle_timeout",
     .type = TMT_CONF_DURATION,
     .offset = K(idle_timeout_ms),
     .dflt = "60s",
     .min = 100,
     .max = 3600000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "how long a keep-alive connection may wait idle"},
    {.section = "http",
     .name = "write_timeout",
     .type = TMT_CONF_DURATION,
     .offset = K(write_timeout_ms),
     .dflt = "30s",
     .min = 100,
     .max = 3600000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "longest time without progress sending to a client that does not read"},
    {.section = "http",
     .name = "shutdown_grace",
     .type = TMT_CONF_DURATION,
     .offset = K(shutdown_grace_ms),
     .dflt = "10s",
     .min = 0,
     .max = 600000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "on SIGTERM, how long in-flight requests may take before connections are cut"},
    {.section = "http",
     .name = "max_head_size",
     .type = TMT_CONF_SIZE,
     .offset = K(max_head_bytes),
     .dflt = "8k",
     .min = 256,
     .max = 16000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "request line plus headers; larger heads get 431"},
    {.section = "http",
     .name = "max_uri_length",
     .type = TMT_CONF_INT,
     .offset = K(max_uri_length),
     .dflt = "4096",
     .min = 16,
     .max = 16000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "longest request-target; longer gets 414"},
    {.section = "http",
     .name = "max_headers",
     .type = TMT_CONF_INT,
     .offset = K(max_headers),
     .dflt = "64",
     .min = 1,
     .max = 256,
     .flags = TMT_CONF_RELOADABLE,
     .help = "most header fields in a request; more gets 431"},
    {.section = "http",
     .name = "max_body_size",
     .type = TMT_CONF_SIZE,
     .offset = K(max_body_bytes),
     .dflt = "1M",
     .min = 0,
     .max = (int64_t)1 << 30,
     .flags = TMT_CONF_RELOADABLE,
     .help = "largest request body; larger gets 413"},
    {.section = "http",
     .name = "max_connections",
     .type = TMT_CONF_INT,
     .offset = K(max_connections),
     .dflt = "10240",
     .min = 1,
     .max = 10000000,
     .flags = TMT_CONF_RELOADABLE,
     .help = "open client connections, shared evenly by the workers; more are closed at once"},
    {.section = "http",
     .name = "h2_max_streams",
     .type = TMT_CONF_INT,
     .offset = K(h2_max_streams),
     .dflt = "128",
     .min = 1,
     .max = 1024,
     .help = "concurrent HTTP/2 streams per connection"},
    {.section = "http",
     .name = "cors_origin",
     .type = TMT_CONF_STR,
     .offset = K(cors_origin),
     .dflt = "*",
     .flags = TMT_CONF_RELOADABLE,
     .help = "CORS for web players on other origins: * = any origin; or the allowed origins "
             "(scheme://host[:port]) separated by spaces or commas, each answered with its own "
             "Origin and Vary: Origin; preflights answered; at most 511 characters; empty = no "
             "CORS"},
    {.section = "log",
     .name = "access_log",
     .type = TMT_CONF_PATH,
     .offset = K(access_log),
     .dflt = "",
     .help = "file for one line per request (appended); empty = off, - = stdout"},
};

void tmt_http_conf_limits(const struct tmt_http_conf *c, struct tmt_server_limits *l)
{
    tmt_server_limits_default(l);
    l->header_timeout_ms = c->header_timeout_ms;
    l->body_timeout_ms = c->body_timeout_ms;
    l->idle_timeout_ms = c->idle_timeout_ms;
    l->write_timeout_ms = c->write_timeout_ms;
    l->shutdown_grace_ms = c->shutdown_grace_ms;
    l->max_head_bytes = (size_t)c->max_head_bytes;
    l->max_target_len = (size_t)c->max_uri_length;
    l->max_headers = (size_t)c->max_headers;
    l->max_body_bytes = (size_t)c->max_body_bytes;
    l->max_connections = (unsigned)c->max_connections;
    l->h2_max_streams = (unsigned)c->h2_max_streams;
    snprintf(l->cors_origin, sizeof(l->cors_origin), "%s", c->cors_origin);
}

void tmt_http_conf_check(const struct tmt_http_conf *c, struct tmt_conf_check *chk)
{
    const char *s = c->cors_origin;
    if (strlen(s) >= sizeof(((struct tmt_server_limits *)NULL)->cors_origin)) {
        tmt_conf_check_fail(chk, "http.cors_origin", "longer than 511 characters");
        return;
    }
    if (strcmp(s, "*") == 0)
        return;
    for (const char *p = s; *p != '\0';) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n == 0)
            break;
        /* An origin as browsers send it: scheme "://" host [":" port], nothing after. */
        const char *sep = memmem(p, n, "://", 3);
        const char *host = sep != NULL ? sep + 3 : NULL;
        if (sep == NULL || sep == p || host >= p + n || memchr(host, '/', (size_t)(p + n - host)) ||
            memchr(p, '*', n)) {
            tmt_conf_check_fail(chk, "http.cors_origin",
                                "'%.*s' is not an origin (scheme://host[:port], or * alone)",
                                (int)n, p);
            return;
        }
        p += n;
    }
}
