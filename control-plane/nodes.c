/*
 * nodes.c: edges and shields as the control plane knows them: provisioning, the config each node
 * polls (shields, fill key, signing keys, revocations), heartbeats (health, load, lease
 * activity) and the choice of an edge for playback.
 *
 * Store keys:
 *   node:{nid}      {"id","role","name","region","latitude","longitude","public_url",
 *                    "admin_url","capacity_gbps","cache_bytes","state","cred","created",
 *                    "updated"}; admin_url (optional) is where the control plane calls the
 *                    node's admin listener (shields: ingest jobs); cred is
 *                    the base64url SHA-256 of the node credential, which is shown once
 *   nodestat:{nid}  {"last_seen_ms","health","load","version","seq"}: the last heartbeat
 *
 * A node is healthy while its last heartbeat is younger than nodes.health_timeout; draining
 * nodes and unhealthy ones leave routing (and edges' shield lists) and come back with the next
 * heartbeat. Nodes authenticate with "Authorization: Bearer {credential}" on their own
 * /v1/nodes/{id}/... paths.
 */
#include <math.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "tmt/log.h"

#define CRED_BYTES 32
#define ACTIVITY_MAX 20000

static void cred_hash(const char *cred, size_t len, char out[48])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)cred, len, d);
    tmt_b64url_encode(d, sizeof(d), out, 48);
}

static bool url_ok(const char *u)
{
    const char *h = strncmp(u, "http://", 7) == 0    ? u + 7
                    : strncmp(u, "https://", 8) == 0 ? u + 8
                                                     : NULL;
    if (h == NULL || *h == '\0' || *h == '/')
        return false;
    for (const char *p = u; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\')
            return false;
    return u[strlen(u) - 1] != '/';
}

/* An admin URL: "http://IP:PORT" with a numeric address (the control plane's client resolves
 * no names), into "IP:PORT". */
static bool admin_url_addr(const char *u, char *out, size_t cap)
{
    if (u == NULL || strncmp(u, "http://", 7) != 0)
        return false;
    const char *h = u + 7, *colon = strrchr(h, ':');
    if (colon == NULL || colon == h || strchr(colon, '/') != NULL)
        return false;
    char host[64];
    size_t hl = (size_t)(colon - h);
    if (hl >= sizeof(host))
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char a[16];
    bool v6 = host[0] == '[' && hl > 2 && host[hl - 1] == ']';
    if (v6) {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, a) != 1)
        return false;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535 || colon[1] == '\0')
        return false;
    int w = snprintf(out, cap, "%s", h);
    return w > 0 && (size_t)w < cap;
}

bool cp_node_admin_addr(json_t *node, char *out, size_t cap)
{
    return admin_url_addr(json_string_value(json_object_get(node, "admin_url")), out, cap);
}

void cp_node_admin_key(const struct cp *cp, const char *nid, char *out, size_t cap)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "node-admin:%s", nid);
    HMAC(EVP_sha256(), cp->node_admin_key, sizeof(cp->node_admin_key), (const unsigned char *)msg,
         (size_t)n, mac, &ml);
    tmt_b64url_encode(mac, ml, out, cap);
    OPENSSL_cleanse(mac, sizeof(mac));
}

/* "host:port" of a public URL (the port from the scheme when absent), into out. */
static bool url_authority(const char *u, char *out, size_t cap)
{
    bool tls = strncmp(u, "https://", 8) == 0;
    const char *h = u + (tls ? 8 : 7);
    size_t n = strcspn(h, "/");
    bool has_port = false;
    if (h[0] == '[') {
        const char *e = memchr(h, ']', n);
        has_port = e != NULL && e + 1 < h + n && e[1] == ':';
    } else {
        has_port = memchr(h, ':', n) != NULL;
    }
    int w = has_port ? snprintf(out, cap, "%.*s", (int)n, h)
                     : snprintf(out, cap, "%.*s:%d", (int)n, h, tls ? 443 : 80);
    return w > 0 && (size_t)w < cap;
}

static json_t *node_view(struct cp_call *c, json_t *n, json_t *stat)
{
    json_t *v = json_deep_copy(n);
    json_object_del(v, "cred");
    json_object_del(v, "created");
    json_object_del(v, "updated");
    json_object_set_new(v, "created_at",
                        cp_time_json(json_integer_value(json_object_get(n, "created"))));
    int64_t seen = stat != NULL ? json_integer_value(json_object_get(stat, "last_seen_ms")) : 0;
    const char *health = seen == 0                                                ? "unknown"
                         : c->now_ms - seen < (int64_t)c->conf->health_timeout_ms ? "healthy"
                                                                                  : "unhealthy";
    json_object_set_new(v, "health", json_string(health));
    json_object_set_new(v, "last_seen_at", seen != 0 ? cp_time_json(seen / 1000) : json_null());
    if (stat != NULL) {
        json_object_set(v, "load", json_object_get(stat, "load"));
        json_object_set(v, "reported_health", json_object_get(stat, "health"));
        json_object_set(v, "version", json_object_get(stat, "version"));
        json_t *counters = json_object_get(stat, "counters");
        if (counters != NULL)
            json_object_set(v, "counters", counters);
    }
    return v;
}

static json_t *node_stat(struct cp *cp, const char *nid)
{
    char key[100];
    snprintf(key, sizeof(key), "nodestat:%s", nid);
    json_t *s = NULL;
    return cp_get_json(cp, key, &s, NULL) == 1 ? s : NULL;
}

/* A number member within [lo, hi] into *out (absent: untouched). false after answering. */
static bool number(struct cp_call *c, json_t *o, const char *name, double lo, double hi,
                   double *out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL)
        return true;
    if (!json_is_number(v)) {
        cp_reply_error(c, 400, "wrong type", "\"%s\" is a number", name);
        return false;
    }
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        cp_reply_error(c, 422, "invalid field", "\"%s\" is %g to %g", name, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

#define SETTINGS_MAX 100
#define SETTING_VALUE_MAX 1024

/* "section.name", both [a-z][a-z0-9_]*, and not the node's own identity (node.*). */
static bool setting_key_ok(const char *k)
{
    const char *dot = strchr(k, '.');
    if (dot == NULL || dot == k || dot[1] == '\0' || strchr(dot + 1, '.') != NULL ||
        strncmp(k, "node.", 5) == 0 || strlen(k) > 100)
        return false;
    for (const char *p = k; *p != '\0'; p++) {
        bool start = p == k || p == dot + 1;
        if (p == dot)
            continue;
        if (!((*p >= 'a' && *p <= 'z') || (!start && ((*p >= '0' && *p <= '9') || *p == '_'))))
            return false;
    }
    return true;
}

/* A value the settings-file format carries as it is: no control characters, no comment
 * characters, no blanks at either end. */
static bool setting_value_ok(const char *v, size_t len)
{
    if (len > SETTING_VALUE_MAX || (len > 0 && (v[0] == ' ' || v[len - 1] == ' ')))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || v[i] == ';' || v[i] == '#')
            return false;
    return true;
}

/* The "settings" member of o ({"section.name": "value"}) into n. false after answering. */
static bool settings_apply(struct cp_call *c, json_t *n, json_t *o)
{
    json_t *v = json_object_get(o, "settings");
    if (v == NULL)
        return true;
    if (!json_is_object(v)) {
        cp_reply_error(c, 400, "wrong type",
                       "\"settings\" is an object of \"section.key\": \"value\" strings");
        return false;
    }
    if (json_object_size(v) > SETTINGS_MAX) {
        cp_reply_error(c, 422, "invalid field", "at most %d pushed settings", SETTINGS_MAX);
        return false;
    }
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        if (!setting_key_ok(k)) {
            cp_reply_error(c, 422, "invalid field",
                           "setting \"%.100s\" is not section.key (node.* cannot be pushed)", k);
            return false;
        }
        if (!json_is_string(e) || !setting_value_ok(json_string_value(e), json_string_length(e))) {
            cp_reply_error(c, 422, "invalid field",
                           "setting %.100s: a string of at most %d characters without control "
                           "characters, ';' or '#', and no blanks at either end",
                           k, SETTING_VALUE_MAX);
            return false;
        }
    }
    json_object_set(n, "settings", v);
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pushed settings as settings-file text: one [section] per section, keys sorted. */
static char *settings_text(json_t *set)
{
    size_t n = json_object_size(set), i = 0, cap = 1, len = 0;
    const char **keys = tmt_xcalloc(n + 1, sizeof(*keys));
    const char *k;
    json_t *e;
    json_object_foreach(set, k, e)
    {
        keys[i++] = k;
        cap += strlen(k) + json_string_length(e) + 8;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    char *out = tmt_xmalloc(cap + n * 110);
    out[0] = '\0';
    size_t prev = 0;
    const char *prev_key = NULL;
    for (i = 0; i < n; i++) {
        const char *dot = strchr(keys[i], '.');
        size_t sl = (size_t)(dot - keys[i]);
        if (prev_key == NULL || sl != prev || strncmp(prev_key, keys[i], sl) != 0)
            len += (size_t)sprintf(out + len, "%s[%.*s]\n", len > 0 ? "\n" : "", (int)sl, keys[i]);
        len += (size_t)sprintf(out + len, "%s = %s\n", dot + 1,
                               json_string_value(json_object_get(set, keys[i])));
        prev = sl;
        prev_key = keys[i];
    }
    free(keys);
    return out;
}

/* Applies the writable fields of o to the node record n. false after answering. */
static bool node_apply(struct cp_call *c, json_t *n, json_t *o, bool create)
{
    bool bad;
    const char *role = cp_json_string(c, o, "role", create, 1, 16, &bad);
    if (bad)
        return false;
    if (role != NULL && strcmp(role, "edge") != 0 && strcmp(role, "shield") != 0) {
        cp_reply_error(c, 422, "invalid field", "\"role\" is edge or shield");
        return false;
    }
    const char *name = cp_json_string(c, o, "name", create, 1, 100, &bad);
    if (bad)
        return false;
    const char *region = cp_json_string(c, o, "region", false, 1, 64, &bad);
    if (bad)
        return false;
    const char *url = cp_json_string(c, o, "public_url", create, 8, 300, &bad);
    if (bad)
        return false;
    if (url != NULL && !url_ok(url)) {
        cp_reply_error(c, 422, "invalid field",
                       "\"public_url\" is http:// or https:// and a host, without a trailing /");
        return false;
    }
    const char *admin = cp_json_string(c, o, "admin_url", false, 0, 300, &bad);
    if (bad)
        return false;
    char addr[80];
    if (admin != NULL && admin[0] != '\0' && !admin_url_addr(admin, addr, sizeof(addr))) {
        cp_reply_error(c, 422, "invalid field",
                       "\"admin_url\" is http://IP:PORT, a numeric address (\"\" removes it)");
        return false;
    }
    const char *state = cp_json_string(c, o, "state", false, 1, 16, &bad);
    if (bad)
        return false;
    if (state != NULL && strcmp(state, "active") != 0 && strcmp(state, "draining") != 0) {
        cp_reply_error(c, 422, "invalid field", "\"state\" is active or draining");
        return false;
    }
    double lat = json_number_value(json_object_get(n, "latitude"));
    double lon = json_number_value(json_object_get(n, "longitude"));
    double gbps = json_number_value(json_object_get(n, "capacity_gbps"));
    double bytes = json_number_value(json_object_get(n, "cache_bytes"));
    if (!number(c, o, "latitude", -90, 90, &lat) || !number(c, o, "longitude", -180, 180, &lon) ||
        !number(c, o, "capacity_gbps", 0, 1e6, &gbps) ||
        !number(c, o, "cache_bytes", 0, 9e18, &bytes) || !settings_apply(c, n, o))
        return false;
    if (role != NULL)
        json_object_set_new(n, "role", json_string(role));
    if (name != NULL)
        json_object_set_new(n, "name", json_string(name));
    if (region != NULL)
        json_object_set_new(n, "region", json_string(region));
    if (url != NULL)
        json_object_set_new(n, "public_url", json_string(url));
    if (state != NULL)
        json_object_set_new(n, "state", json_string(state));
    if (admin != NULL && admin[0] != '\0')
        json_object_set_new(n, "admin_url", json_string(admin));
    else if (admin != NULL)
        json_object_del(n, "admin_url");
    json_object_set_new(n, "latitude", json_real(lat));
    json_object_set_new(n, "longitude", json_real(lon));
    json_object_set_new(n, "capacity_gbps", json_real(gbps));
    json_object_set_new(n, "cache_bytes", json_integer((json_int_t)bytes));
    return true;
}

void cp_nodes_create(struct cp_call *c)
{
    static const char *const fields[] = {"role",        "name",       "region",    "latitude",
                                         "longitude",   "public_url", "admin_url", "capacity_gbps",
                                         "cache_bytes", "settings",   NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    char nid[CP_ID_LEN + 1];
    cp_new_id('n', nid);
    json_t *n = json_pack("{s:s, s:s, s:I, s:I}", "id", nid, "region", "default", "created",
                          (json_int_t)c->now, "updated", (json_int_t)c->now);
    json_object_set_new(n, "state", json_string("active"));
    if (!node_apply(c, n, o, true)) {
        json_decref(n);
        json_decref(o);
        return;
    }
    json_decref(o);
    unsigned char raw[CRED_BYTES];
    cp_random(raw, sizeof(raw));
    char cred[64], h[48];
    tmt_b64url_encode(raw, sizeof(raw), cred, sizeof(cred));
    OPENSSL_cleanse(raw, sizeof(raw));
    cred_hash(cred, strlen(cred), h);
    json_object_set_new(n, "cred", json_string(h));
    char key[100];
    snprintf(key, sizeof(key), "node:%s", nid);
    struct cp_batch b = {0};
    cp_batch_put_json(&b, key, n);
    if (cp_batch_commit(c->cp, &b, c) == 0) {
        tmt_log(TMT_LOG_INFO, "control", "node provisioned", "node=%s role=%s", nid,
                json_string_value(json_object_get(n, "role")));
        json_t *v = node_view(c, n, NULL);
        /* Shown this once: only its hash is kept. */
        json_object_set_new(v, "credential", json_string(cred));
        cp_add_header(c, "Location", "/v1/nodes/%s", nid);
        cp_reply_json(c, 201, v);
    }
    OPENSSL_cleanse(cred, sizeof(cred));
    json_decref(n);
}

struct list_ctx {
    struct cp_call *c;
    json_t *items;
    const char *role;
    bool bad;
};

static bool list_node(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct list_ctx *l = arg;
    json_t *n = json_loadb(val.p, val.len, 0, NULL);
    if (n == NULL) {
        l->bad = true;
        return false;
    }
    const char *role = json_string_value(json_object_get(n, "role"));
    if (l->role == NULL || (role != NULL && strcmp(role, l->role) == 0)) {
        json_t *st = node_stat(l->c->cp, json_string_value(json_object_get(n, "id")));
        json_array_append_new(l->items, node_view(l->c, n, st));
        json_decref(st);
    }
    json_decref(n);
    return true;
}

void cp_nodes_list(struct cp_call *c)
{
    char role[16];
    long rn = cp_query(c, "role", role, sizeof(role));
    if (rn == -2)
        return;
    struct list_ctx l = {c, json_array(), rn > 0 ? role : NULL, false};
    if (l.role != NULL && strcmp(l.role, "edge") != 0 && strcmp(l.role, "shield") != 0) {
        json_decref(l.items);
        cp_reply_error(c, 400, "bad query", "role is edge or shield");
        return;
    }
    if (cp_scan(c->cp, "node:", list_node, &l, c) != 0) {
        json_decref(l.items);
        return;
    }
    if (l.bad) {
        json_decref(l.items);
        cp_reply_store_error(c, "decoding a node", NULL);
        return;
    }
    cp_reply_json(c, 200, json_pack("{s:o}", "nodes", l.items));
}

/* The node in the path: 1, or 0/-1 after answering 404/503. */
static int path_node(struct cp_call *c, json_t **n)
{
    char key[100];
    snprintf(key, sizeof(key), "node:%.*s", (int)c->arg[0].len, c->arg[0].p);
    int rc = cp_get_json(c->cp, key, n, c);
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such node");
    return rc;
}

void cp_nodes_get(struct cp_call *c)
{
    json_t *n = NULL;
    if (path_node(c, &n) != 1)
        return;
    json_t *st = node_stat(c->cp, json_string_value(json_object_get(n, "id")));
    cp_reply_json(c, 200, node_view(c, n, st));
    json_decref(st);
    json_decref(n);
}

static void update(struct cp_call *c, json_t *o)
{
    pthread_mutex_lock(&c->cp->mu);
    json_t *n = NULL;
    if (path_node(c, &n) == 1) {
        const char *old_role = json_string_value(json_object_get(n, "role"));
        char role[16];
        snprintf(role, sizeof(role), "%s", old_role != NULL ? old_role : "");
        if (node_apply(c, n, o, false)) {
            if (strcmp(role, json_string_value(json_object_get(n, "role")) ?: "") != 0) {
                cp_reply_error(c, 422, "invalid field",
                               "a node's role cannot change; provision a new node");
            } else {
                json_object_set_new(n, "updated", json_integer(c->now));
                char key[100];
                snprintf(key, sizeof(key), "node:%s", json_string_value(json_object_get(n, "id")));
                struct cp_batch b = {0};
                cp_batch_put_json(&b, key, n);
                if (cp_batch_commit(c->cp, &b, c) == 0) {
                    json_t *st = node_stat(c->cp, json_string_value(json_object_get(n, "id")));
                    cp_reply_json(c, 200, node_view(c, n, st));
                    json_decref(st);
                }
            }
        }
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(n);
}

void cp_nodes_patch(struct cp_call *c)
{
    static const char *const fields[] = {"name",          "region",      "latitude", "longitude",
                                         "public_url",    "admin_url",   "state",    "role",
                                         "capacity_gbps", "cache_bytes", "settings", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    update(c, o);
    json_decref(o);
}

void cp_nodes_drain(struct cp_call *c)
{
    json_t *o = json_pack("{s:s}", "state", "draining");
    update(c, o);
    json_decref(o);
}

void cp_nodes_delete(struct cp_call *c)
{
    pthread_mutex_lock(&c->cp->mu);
    json_t *n = NULL;
    if (path_node(c, &n) == 1) {
        const char *nid = json_string_value(json_object_get(n, "id"));
        char key[100];
        struct cp_batch b = {0};
        snprintf(key, sizeof(key), "node:%s", nid);
        cp_batch_del(&b, key);
        snprintf(key, sizeof(key), "nodestat:%s", nid);
        cp_batch_del(&b, key);
        if (cp_batch_commit(c->cp, &b, c) == 0) {
            tmt_log(TMT_LOG_INFO, "control", "node removed", "node=%s", nid);
            cp_reply_empty(c, 204);
        }
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(n);
}

/* ---- what nodes call ---- */

bool cp_node_auth(struct cp_call *c)
{
    const struct tmt_http_header *h =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "authorization");
    struct tmt_slice v = h != NULL ? h->value : (struct tmt_slice){NULL, 0};
    if (v.len < 8 || strncasecmp(v.p, "bearer ", 7) != 0) {
        cp_reply_error(c, 401, "unauthorized", "nodes send \"Authorization: Bearer CREDENTIAL\"");
        return false;
    }
    char got[48];
    cred_hash(v.p + 7, v.len - 7, got);
    json_t *n = NULL;
    char key[100];
    snprintf(key, sizeof(key), "node:%.*s", (int)c->arg[0].len, c->arg[0].p);
    int rc = cp_get_json(c->cp, key, &n, c);
    if (rc < 0)
        return false;
    const char *want = rc == 1 ? json_string_value(json_object_get(n, "cred")) : NULL;
    bool ok =
        want != NULL && strlen(want) == strlen(got) && CRYPTO_memcmp(want, got, strlen(got)) == 0;
    if (!ok) {
        json_decref(n);
        cp_reply_error(c, 401, "unauthorized", "unknown node or wrong credential");
        return false;
    }
    c->node = n;
    return true;
}

struct pick_ctx {
    struct cp_call *c;
    const char *role;
    json_t *out; /* array of healthy active nodes of role */
    size_t total;
};

static bool pick_node(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct pick_ctx *p = arg;
    json_t *n = json_loadb(val.p, val.len, 0, NULL);
    const char *role = json_string_value(json_object_get(n, "role"));
    if (role != NULL && strcmp(role, p->role) == 0) {
        p->total++;
        const char *state = json_string_value(json_object_get(n, "state"));
        json_t *st = node_stat(p->c->cp, json_string_value(json_object_get(n, "id")));
        int64_t seen = st != NULL ? json_integer_value(json_object_get(st, "last_seen_ms")) : 0;
        if (state != NULL && strcmp(state, "active") == 0 && seen != 0 &&
            p->c->now_ms - seen < (int64_t)p->c->conf->health_timeout_ms)
            json_array_append(p->out, n);
        json_decref(st);
    }
    json_decref(n);
    return true;
}

/* Healthy, active nodes of a role (new array); *total counts all of that role. */
static json_t *healthy(struct cp_call *c, const char *role, size_t *total)
{
    struct pick_ctx p = {c, role, json_array(), 0};
    if (cp_scan(c->cp, "node:", pick_node, &p, NULL) != 0) {
        json_decref(p.out);
        return NULL;
    }
    *total = p.total;
    return p.out;
}

json_t *cp_pick_job_shield(struct cp_call *c, const char *asset, size_t *n_shields)
{
    size_t total = 0;
    json_t *sh = healthy(c, "shield", &total);
    *n_shields = total;
    if (sh == NULL)
        return NULL;
    size_t n = json_array_size(sh), k = 0;
    struct tmt_geo_edge *cand = tmt_xcalloc(n + 1, sizeof(*cand));
    json_t **rec = tmt_xcalloc(n + 1, sizeof(*rec));
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(sh, i);
        char addr[80];
        if (!cp_node_admin_addr(x, addr, sizeof(addr)))
            continue;
        cand[k] = (struct tmt_geo_edge){.id = json_string_value(json_object_get(x, "id")),
                                        .healthy = true};
        rec[k++] = x;
    }
    int pick = k > 0 ? tmt_geo_rendezvous(asset, cand, k) : -1;
    json_t *out = pick >= 0 ? json_incref(rec[pick]) : NULL;
    free(cand);
    free(rec);
    json_decref(sh);
    return out;
}

/* ---- routing ---- */

void cp_geo_load(struct cp *cp, const struct cp_conf *conf, bool start)
{
    struct tmt_err err;
    struct tmt_geo_zones *z = NULL;
    struct tmt_geo_db *db = NULL;
    bool keep_z = false, keep_db = false;
    tmt_err_clear(&err);
    if (conf->geo_zones_file[0] != '\0') {
        z = tmt_geo_zones_load(conf->geo_zones_file, &err);
        if (z == NULL) {
            keep_z = !start;
            tmt_log(TMT_LOG_ERROR, "geo",
                    start ? "coverage zones not loaded; routing without them"
                          : "coverage zones not reloaded; the old ones stay",
                    "why=\"%s\"", err.msg);
        }
    }
    tmt_err_clear(&err);
    if (conf->geo_db_path[0] != '\0') {
        db = tmt_geo_db_open(conf->geo_db_path, &err);
        if (db == NULL) {
            keep_db = !start;
            tmt_log(TMT_LOG_WARN, "geo",
                    start ? "geolocation database not opened; routing by zones and the default"
                          : "geolocation database not reopened; the old one stays",
                    "why=\"%s\"", err.msg);
        }
    }
    pthread_rwlock_wrlock(&cp->geo_lock);
    struct tmt_geo_zones *old_z = keep_z ? NULL : cp->zones;
    struct tmt_geo_db *old_db = keep_db ? NULL : cp->geodb;
    if (!keep_z)
        cp->zones = z;
    if (!keep_db)
        cp->geodb = db;
    pthread_rwlock_unlock(&cp->geo_lock);
    /* Said once in place, so that a reader of the log may rely on it. */
    if (z != NULL)
        tmt_log(TMT_LOG_INFO, "geo", "coverage zones loaded", "file=%s prefixes=%zu groups=%zu",
                conf->geo_zones_file, tmt_geo_zones_prefixes(z), tmt_geo_zones_groups(z));
    if (db != NULL)
        tmt_log(TMT_LOG_INFO, "geo", "geolocation database opened", "file=%s", conf->geo_db_path);
    tmt_geo_zones_free(&old_z);
    tmt_geo_db_close(&old_db);
}

struct route_ctx {
    struct cp_call *c;
    json_t *nodes; /* node records of edges */
    json_t *stats; /* their nodestat records, same order (null when none) */
};

static bool collect_edge(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct route_ctx *r = arg;
    json_t *n = json_loadb(val.p, val.len, 0, NULL);
    if (n != NULL && strcmp(json_string_value(json_object_get(n, "role")) ?: "", "edge") == 0) {
        json_t *st = node_stat(r->c->cp, json_string_value(json_object_get(n, "id")));
        json_array_append(r->nodes, n);
        json_array_append_new(r->stats, st != NULL ? st : json_null());
    }
    json_decref(n);
    return true;
}

/*
 * The geo choice among the provisioned edges for client (address text) and asset: 0 with *out
 * and the chosen record in *chosen (borrowed from r->nodes), TMT_ENOTFOUND when none can serve,
 * or 1 when no edge is provisioned at all.
 */
static int route(struct cp_call *c, struct route_ctx *r, const char *client, const char *asset,
                 struct tmt_geo_choice *out, json_t **chosen)
{
    r->c = c;
    r->nodes = json_array();
    r->stats = json_array();
    if (cp_scan(c->cp, "node:", collect_edge, r, NULL) != 0)
        return -1;
    size_t n = json_array_size(r->nodes);
    if (n == 0)
        return 1;
    struct tmt_geo_edge *edges = tmt_xcalloc(n, sizeof(*edges));
    for (size_t i = 0; i < n; i++) {
        json_t *nd = json_array_get(r->nodes, i), *st = json_array_get(r->stats, i);
        int64_t seen = json_integer_value(json_object_get(st, "last_seen_ms"));
        double lat = json_number_value(json_object_get(nd, "latitude"));
        double lon = json_number_value(json_object_get(nd, "longitude"));
        bool placed = lat != 0 || lon != 0; /* 0,0 is "not given" at provisioning */
        edges[i] = (struct tmt_geo_edge){
            .id = json_string_value(json_object_get(nd, "id")),
            .group = json_string_value(json_object_get(nd, "region")),
            .lat = placed ? lat : NAN,
            .lon = placed ? lon : NAN,
            .load = json_number_value(json_object_get(st, "load")),
            .healthy =
                strcmp(json_string_value(json_object_get(nd, "state")) ?: "", "active") == 0 &&
                seen != 0 && c->now_ms - seen < (int64_t)c->conf->health_timeout_ms,
        };
    }
    struct tmt_geo_addr a;
    bool parsed = tmt_geo_addr_parse(client, &a) == 0;
    const char *dflt = c->conf->geo_default_group[0] != '\0' ? c->conf->geo_default_group : NULL;
    pthread_rwlock_rdlock(&c->cp->geo_lock);
    int rc =
        tmt_geo_choose(c->cp->zones, c->cp->geodb, dflt, parsed ? &a : NULL, asset, edges, n,
                       (double)c->conf->geo_overload_pct / 100.0, (double)c->conf->geo_tie_km, out);
    pthread_rwlock_unlock(&c->cp->geo_lock);
    /* No default group set: any healthy edge, by the asset's rendezvous, rather than none. */
    if (rc != 0 && dflt == NULL) {
        int k = tmt_geo_rendezvous(asset, edges, n);
        if (k >= 0) {
            *out = (struct tmt_geo_choice){.edge = k,
                                           .group = edges[k].group,
                                           .how = TMT_GEO_BY_DEFAULT,
                                           .distance_km = -1,
                                           .why = "no group placed the client: any healthy edge",
                                           .zone_group = out->zone_group};
            rc = 0;
        }
    }
    free(edges);
    if (rc == 0)
        *chosen = json_array_get(r->nodes, (size_t)out->edge);
    return rc == 0 ? 0 : TMT_ENOTFOUND;
}

static void route_fini(struct route_ctx *r)
{
    json_decref(r->nodes);
    json_decref(r->stats);
}

/* The client's address (X-Forwarded-For only from a trusted proxy). */
static void client_of(struct cp_call *c, char *out, size_t cap)
{
    const struct tmt_http_header *x =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "x-forwarded-for");
    cp_client_addr(c->req->client, x != NULL ? x->value : (struct tmt_slice){NULL, 0},
                   (const char *const *)c->conf->trusted_proxies.items, c->conf->trusted_proxies.n,
                   out, cap);
}

int cp_pick_edge(struct cp_call *c, const char *asset, char *url, size_t cap)
{
    char client[64];
    client_of(c, client, sizeof(client));
    struct route_ctx r = {0};
    struct tmt_geo_choice ch = {0};
    json_t *chosen = NULL;
    int rc = route(c, &r, client, asset, &ch, &chosen);
    struct tmt_geo_addr a;
    if (tmt_geo_addr_parse(client, &a) != 0)
        c->counts[CPM_ROUTE_UNPARSABLE]++;
    if (rc == 0 || rc == TMT_ENOTFOUND) {
        c->counts[rc == 0 ? CPM_ROUTE_ZONE + ch.how : CPM_ROUTE_NONE]++;
        if (ch.db_error)
            c->counts[CPM_ROUTE_DB_ERRORS]++;
    }
    if (rc == 1) {
        snprintf(url, cap, "%s", c->conf->edge_url); /* no edge provisioned: the setting */
        rc = 0;
    } else if (rc == 0) {
        snprintf(url, cap, "%s", json_string_value(json_object_get(chosen, "public_url")));
    } else if (rc == TMT_ENOTFOUND) {
        cp_add_header(c, "Retry-After", "10");
        cp_reply_error(c, 503, "no edge available",
                       "none of the %zu provisioned edges is healthy, active and placed for this "
                       "client",
                       json_array_size(r.nodes));
        rc = -1;
    } else {
        cp_reply_store_error(c, "choosing an edge", NULL);
        rc = -1;
    }
    route_fini(&r);
    return rc;
}

void cp_route(struct cp_call *c)
{
    char ip[64], asset[CP_ID_MAX + 1];
    long ni = cp_query(c, "ip", ip, sizeof(ip));
    long na = ni == -2 ? -2 : cp_query(c, "asset", asset, sizeof(asset));
    if (na == -2)
        return;
    if (ni <= 0)
        client_of(c, ip, sizeof(ip));
    if (na <= 0)
        asset[0] = '\0';
    struct tmt_geo_addr a;
    bool parsed = tmt_geo_addr_parse(ip, &a) == 0;
    struct route_ctx r = {0};
    struct tmt_geo_choice ch;
    json_t *chosen = NULL;
    int rc = route(c, &r, ip, asset, &ch, &chosen);
    static const char *const hows[] = {"zone", "location", "default", "none"};
    json_t *v = json_pack("{s:s, s:s, s:b}", "client", ip, "asset", asset, "client_parsed", parsed);
    if (rc == 1) {
        json_object_set_new(v, "how", json_string("setting"));
        json_object_set_new(v, "edge", json_pack("{s:s}", "public_url", c->conf->edge_url));
        json_object_set_new(v, "why", json_string("no edge is provisioned: playback.edge_url"));
    } else if (rc < 0 && rc != TMT_ENOTFOUND) {
        json_decref(v);
        route_fini(&r);
        cp_reply_store_error(c, "choosing an edge", NULL);
        return;
    } else {
        json_object_set_new(v, "how", json_string(hows[rc == 0 ? ch.how : TMT_GEO_NONE]));
        json_object_set_new(v, "why", json_string(ch.why != NULL ? ch.why : ""));
        json_object_set_new(v, "zone_group",
                            ch.zone_group != NULL ? json_string(ch.zone_group) : json_null());
        json_object_set_new(v, "group", rc == 0 ? json_string(ch.group) : json_null());
        json_object_set_new(v, "distance_km",
                            rc == 0 && ch.distance_km >= 0 ? json_real(ch.distance_km)
                                                           : json_null());
        json_object_set_new(v, "db_error", json_boolean(ch.db_error));
        json_object_set_new(v, "edge",
                            rc == 0
                                ? json_pack("{s:O, s:O, s:O}", "id", json_object_get(chosen, "id"),
                                            "name", json_object_get(chosen, "name"), "public_url",
                                            json_object_get(chosen, "public_url"))
                                : json_null());
    }
    route_fini(&r);
    cp_reply_json(c, 200, v);
}

static bool list_revoked(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)val;
    json_array_append_new(arg, json_stringn(rest.p, rest.len));
    return true;
}

void cp_nodes_config(struct cp_call *c)
{
    struct cp *cp = c->cp;
    json_t *n = c->node;
    json_t *cfg = json_pack("{s:{s:O, s:O, s:O, s:O}}", "node", "id", json_object_get(n, "id"),
                            "role", json_object_get(n, "role"), "name", json_object_get(n, "name"),
                            "region", json_object_get(n, "region"));
    json_object_set_new(cfg, "heartbeat_interval",
                        json_integer((json_int_t)(c->conf->heartbeat_interval_ms / 1000)));
    char fk[64];
    tmt_b64url_encode(cp->fill_key, sizeof(cp->fill_key), fk, sizeof(fk));
    json_object_set_new(cfg, "fill_key", json_string(fk));
    char ak[64];
    cp_node_admin_key(cp, json_string_value(json_object_get(n, "id")), ak, sizeof(ak));
    json_object_set_new(cfg, "admin_key", json_string(ak));
    OPENSSL_cleanse(ak, sizeof(ak));
    /* Pushed settings, in the settings-file format: a layer over the node's own file. */
    json_t *set = json_object_get(n, "settings");
    char *ini = set != NULL ? settings_text(set) : NULL;
    json_object_set_new(cfg, "settings", json_string(ini != NULL ? ini : ""));
    free(ini);
    OPENSSL_cleanse(fk, sizeof(fk));
    if (strcmp(json_string_value(json_object_get(n, "role")) ?: "", "edge") == 0) {
        size_t total = 0;
        json_t *sh = healthy(c, "shield", &total);
        json_t *addrs = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(sh, i, s)
        {
            char a[300];
            if (url_authority(json_string_value(json_object_get(s, "public_url")), a, sizeof(a)))
                json_array_append_new(addrs, json_string(a));
        }
        json_decref(sh);
        json_object_set_new(cfg, "shields", addrs);
        json_t *keys = json_array();
        pthread_rwlock_rdlock(&cp->keys_lock);
        for (size_t k = 0; k < cp->ring.n; k++) {
            char sec[96];
            tmt_b64url_encode(cp->ring.keys[k].secret, cp->ring.keys[k].secret_len, sec,
                              sizeof(sec));
            json_array_append_new(keys,
                                  json_pack("{s:s, s:s, s:s}", "kid", cp->ring.keys[k].kid,
                                            "secret", sec, "state", cp_key_state(&cp->ring, k)));
            OPENSSL_cleanse(sec, sizeof(sec));
        }
        pthread_rwlock_unlock(&cp->keys_lock);
        json_object_set_new(cfg, "keys", keys);
        json_t *rev = json_array();
        if (cp_scan(cp, "rev:", list_revoked, rev, c) != 0) {
            json_decref(rev);
            json_decref(cfg);
            return;
        }
        json_object_set_new(cfg, "revoked", rev);
    }
    /* The ETag is a hash of the answer: polls that find nothing new get 304 without a body. */
    char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    free(text);
    char tag[40], etag[48];
    tmt_b64url_encode(d, 18, tag, sizeof(tag));
    snprintf(etag, sizeof(etag), "\"%s\"", tag);
    cp_add_header(c, "ETag", "%s", etag);
    const struct tmt_http_header *inm =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "if-none-match");
    if (inm != NULL && inm->value.len == strlen(etag) &&
        memcmp(inm->value.p, etag, inm->value.len) == 0) {
        json_decref(cfg);
        cp_reply_empty(c, 304);
        return;
    }
    cp_reply_json(c, 200, cfg);
}

void cp_nodes_heartbeat(struct cp_call *c)
{
    static const char *const fields[] = {"health",   "load",     "version", "seq",
                                         "activity", "counters", NULL};
    c->body_max = 4u << 20; /* activity lists are long; http.max_body_size still bounds them */
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *health = cp_json_string(c, o, "health", false, 1, 32, &bad);
    const char *version = bad ? NULL : cp_json_string(c, o, "version", false, 1, 64, &bad);
    double load = 0;
    if (bad || !number(c, o, "load", 0, 1e6, &load)) {
        json_decref(o);
        return;
    }
    json_t *act = json_object_get(o, "activity");
    if (act != NULL && (!json_is_array(act) || json_array_size(act) > ACTIVITY_MAX)) {
        json_decref(o);
        cp_reply_error(c, json_is_array(act) ? 422 : 400, "invalid field",
                       "\"activity\" is an array of at most %d {sub, dev, lease}", ACTIVITY_MAX);
        return;
    }
    struct cp *cp = c->cp;
    const char *nid = json_string_value(json_object_get(c->node, "id"));
    json_t *st = json_pack("{s:I, s:s, s:f, s:s}", "last_seen_ms", (json_int_t)c->now_ms, "health",
                           health != NULL ? health : "ok", "load", load, "version",
                           version != NULL ? version : "");
    json_object_set(st, "seq", json_object_get(o, "seq"));
    /* The node's running totals (cache hits and misses for edges), kept as the last report. */
    json_t *counters = json_object_get(o, "counters");
    if (counters != NULL) {
        const char *k;
        json_t *v;
        bool ok = json_is_object(counters) && json_object_size(counters) <= 64;
        json_object_foreach(counters, k, v) ok = ok && json_is_integer(v) && strlen(k) <= 64;
        if (!ok) {
            json_decref(st);
            json_decref(o);
            cp_reply_error(c, 422, "invalid field",
                           "\"counters\" is an object of at most 64 integers");
            return;
        }
        json_object_set(st, "counters", counters);
    }
    char key[200];
    snprintf(key, sizeof(key), "nodestat:%s", nid);
    struct cp_batch b = {0};
    cp_batch_put_json(&b, key, st);
    json_decref(st);
    /*
     * Lease activity: each (pseudonymous user, device, lease) an edge saw renews that lease, if
     * it is still live and the pseudonym and device match it (a token cannot renew another's).
     */
    size_t renewed = 0, stale = 0;
    pthread_mutex_lock(&cp->mu);
    size_t i;
    json_t *a;
    json_array_foreach(act, i, a)
    {
        const char *sub = json_string_value(json_object_get(a, "sub"));
        const char *dev = json_string_value(json_object_get(a, "dev"));
        const char *lid = json_string_value(json_object_get(a, "lease"));
        if (sub == NULL || dev == NULL || lid == NULL ||
            !cp_id_ok((struct tmt_slice){lid, strlen(lid)}, CP_ID_MAX)) {
            stale++;
            continue;
        }
        snprintf(key, sizeof(key), "lease:%s", lid);
        json_t *l = NULL;
        if (cp_get_json(cp, key, &l, NULL) != 1) {
            stale++;
            continue;
        }
        char pseud[23];
        cp_pseudonym(cp->pseudonym_key, json_string_value(json_object_get(l, "uid")) ?: "", pseud);
        if (json_integer_value(json_object_get(l, "expires")) > c->now && strcmp(pseud, sub) == 0 &&
            strcmp(json_string_value(json_object_get(l, "device")) ?: "", dev) == 0) {
            json_object_set_new(l, "renewed", json_integer(c->now));
            json_object_set_new(l, "expires",
                                json_integer(c->now + (int64_t)(c->conf->lease_ttl_ms / 1000)));
            cp_batch_put_json(&b, key, l);
            renewed++;
        } else {
            stale++;
        }
        json_decref(l);
    }
    int rc = cp_batch_commit(cp, &b, c);
    pthread_mutex_unlock(&cp->mu);
    json_decref(o);
    if (rc == 0)
        cp_reply_json(c, 200,
                      json_pack("{s:I, s:I, s:I}", "renewed", (json_int_t)renewed, "stale",
                                (json_int_t)stale, "heartbeat_interval",
                                (json_int_t)(c->conf->heartbeat_interval_ms / 1000)));
}
