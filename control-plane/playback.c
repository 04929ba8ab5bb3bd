/*
 * playback.c: devices, playback leases (at most devices.max_active per user), playback tokens
 * and the /r router.
 *
 * Store keys:
 *   dev:{uid}:{did}     {"id","name","type","created"}
 *   lease:{lid}         {"id","uid","device","show","asset","started","renewed","expires",
 *                        "token_ttl","token_exp"}
 *   ulease:{uid}:{did}  lid: the device's lease (live or not yet swept)
 *   rev:{lid}           {"until"}: an ended lease whose tokens edges must refuse until "until"
 *                       (its last token's expiry); the revocation list nodes fetch
 *
 * The limit. A playback start reads the user's leases, ends those whose time ran out, and takes
 * or renews the device's lease only if fewer than max_active other devices hold live ones. All of
 * that runs under cp->mu and writes one batch, so parallel starts never leave more leases than
 * the limit. A lease is live while expires > now; heartbeats (and, with nodes, edge reports) push
 * expires forward by devices.lease_ttl.
 *
 * Router tickets (check.h) let a player that cannot send headers follow
 * /r/{asset}/master.m3u8?ticket=... and get a fresh token for the same lease on the chosen edge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "tmt/log.h"

static const char *const device_types[] = {"tv",      "phone",   "tablet", "computer",
                                           "console", "browser", "other",  NULL};

/* ---- devices ---- */

static json_t *device_view(json_t *d)
{
    json_t *v = json_pack("{s:O, s:O, s:O}", "id", json_object_get(d, "id"), "name",
                          json_object_get(d, "name"), "type", json_object_get(d, "type"));
    json_object_set_new(v, "created_at",
                        cp_time_json(json_integer_value(json_object_get(d, "created"))));
    return v;
}

static bool count_one(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    (void)val;
    (*(size_t *)arg)++;
    return true;
}

void cp_devices_create(struct cp_call *c)
{
    static const char *const fields[] = {"name", "type", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *name = cp_json_string(c, o, "name", true, 1, 100, &bad);
    const char *type = bad ? NULL : cp_json_string(c, o, "type", false, 1, 16, &bad);
    if (bad) {
        json_decref(o);
        return;
    }
    if (type == NULL)
        type = "other";
    bool known = false;
    for (size_t i = 0; device_types[i] != NULL; i++)
        known = known || strcmp(type, device_types[i]) == 0;
    if (!known) {
        json_decref(o);
        cp_reply_error(c, 422, "invalid field",
                       "\"type\" is tv, phone, tablet, computer, console, browser or other");
        return;
    }
    char prefix[100], did[CP_ID_LEN + 1], key[200];
    snprintf(prefix, sizeof(prefix), "dev:%s:", c->uid);
    cp_new_id('d', did);
    snprintf(key, sizeof(key), "dev:%s:%s", c->uid, did);
    json_t *d = json_pack("{s:s, s:s, s:s, s:I}", "id", did, "name", name, "type", type, "created",
                          (json_int_t)c->now);
    json_decref(o);
    pthread_mutex_lock(&c->cp->mu);
    size_t n = 0;
    if (cp_scan(c->cp, prefix, count_one, &n, c) == 0) {
        if (n >= (size_t)c->conf->max_registered_devices) {
            cp_reply_error(c, 409, "too many devices",
                           "at most %lld devices per account; delete one first",
                           (long long)c->conf->max_registered_devices);
        } else {
            struct cp_batch b = {0};
            cp_batch_put_json(&b, key, d);
            if (cp_batch_commit(c->cp, &b, c) == 0)
                cp_reply_json(c, 201, device_view(d));
        }
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(d);
}

/* ---- leases ---- */

static bool lease_live(json_t *l, int64_t now)
{
    return json_integer_value(json_object_get(l, "expires")) > now;
}

/* Ends a lease into b: its records go, and its id enters the revocation list. */
static void lease_end(struct cp_batch *b, json_t *l, int64_t now)
{
    const char *lid = json_string_value(json_object_get(l, "id"));
    const char *uid = json_string_value(json_object_get(l, "uid"));
    const char *did = json_string_value(json_object_get(l, "device"));
    if (lid == NULL || uid == NULL || did == NULL)
        return;
    char key[200];
    snprintf(key, sizeof(key), "lease:%s", lid);
    cp_batch_del(b, key);
    snprintf(key, sizeof(key), "ulease:%s:%s", uid, did);
    cp_batch_del(b, key);
    int64_t until = json_integer_value(json_object_get(l, "token_exp"));
    if (until > now) {
        snprintf(key, sizeof(key), "rev:%s", lid);
        json_t *r = json_pack("{s:I}", "until", (json_int_t)until);
        cp_batch_put_json(b, key, r);
        json_decref(r);
    }
}

struct user_leases {
    struct cp *cp;
    json_t *leases; /* array of lease records, live or not */
    bool bad;
};

static bool collect_lease(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct user_leases *u = arg;
    char key[200];
    snprintf(key, sizeof(key), "lease:%.*s", (int)TMT_MIN(val.len, 100), val.p);
    json_t *l = NULL;
    int rc = cp_get_json(u->cp, key, &l, NULL);
    if (rc < 0) {
        u->bad = true;
        return false;
    }
    if (rc == 1)
        json_array_append_new(u->leases, l);
    return true;
}

/* The user's lease records (array, new reference), or NULL after answering 503. */
static json_t *leases_of(struct cp_call *c, const char *uid)
{
    char prefix[100];
    snprintf(prefix, sizeof(prefix), "ulease:%s:", uid);
    struct user_leases u = {c->cp, json_array(), false};
    if (cp_scan(c->cp, prefix, collect_lease, &u, c) != 0 || u.bad) {
        if (u.bad)
            cp_reply_store_error(c, "reading leases", NULL);
        json_decref(u.leases);
        return NULL;
    }
    return u.leases;
}

static json_t *lease_view(json_t *l)
{
    json_t *v = json_pack("{s:O, s:O, s:O, s:O}", "lease_id", json_object_get(l, "id"), "device_id",
                          json_object_get(l, "device"), "show_id", json_object_get(l, "show"),
                          "asset_id", json_object_get(l, "asset"));
    json_object_set_new(v, "started_at",
                        cp_time_json(json_integer_value(json_object_get(l, "started"))));
    json_object_set_new(v, "expires_at",
                        cp_time_json(json_integer_value(json_object_get(l, "expires"))));
    return v;
}

static bool list_device(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    json_t *o = json_loadb(val.p, val.len, 0, NULL);
    if (o != NULL)
        json_array_append_new(arg, device_view(o));
    json_decref(o);
    return true;
}

void cp_devices_list(struct cp_call *c)
{
    json_t *ls = leases_of(c, c->uid);
    if (ls == NULL)
        return;
    json_t *items = json_array();
    char prefix[100];
    snprintf(prefix, sizeof(prefix), "dev:%s:", c->uid);
    if (cp_scan(c->cp, prefix, list_device, items, c) != 0) {
        json_decref(items);
        json_decref(ls);
        return;
    }
    size_t i, j;
    json_t *dv, *l;
    json_array_foreach(items, i, dv)
    {
        bool active = false;
        json_array_foreach(ls, j, l)
        {
            active = active || (lease_live(l, c->now) && json_equal(json_object_get(l, "device"),
                                                                    json_object_get(dv, "id")));
        }
        json_object_set_new(dv, "active", json_boolean(active));
    }
    json_decref(ls);
    cp_reply_json(c, 200, json_pack("{s:o}", "devices", items));
}

/* Ends the device's lease, if any, into b. -1 after answering 503. */
static int end_device_lease(struct cp_call *c, const char *uid, const char *did, struct cp_batch *b)
{
    char key[200], lid[CP_ID_MAX + 1];
    snprintf(key, sizeof(key), "ulease:%s:%s", uid, did);
    int rc = cp_get_str(c->cp, key, lid, sizeof(lid), c);
    if (rc <= 0)
        return rc;
    cp_batch_del(b, key);
    snprintf(key, sizeof(key), "lease:%s", lid);
    json_t *l = NULL;
    rc = cp_get_json(c->cp, key, &l, c);
    if (rc == 1) {
        lease_end(b, l, c->now);
        json_decref(l);
    }
    return rc < 0 ? -1 : 0;
}

void cp_devices_delete(struct cp_call *c)
{
    char did[CP_ID_MAX + 1], key[200];
    snprintf(did, sizeof(did), "%.*s", (int)c->arg[0].len, c->arg[0].p);
    snprintf(key, sizeof(key), "dev:%s:%s", c->uid, did);
    pthread_mutex_lock(&c->cp->mu);
    json_t *d = NULL;
    int rc = cp_get_json(c->cp, key, &d, c);
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such device");
    if (rc == 1) {
        struct cp_batch b = {0};
        cp_batch_del(&b, key);
        if (end_device_lease(c, c->uid, did, &b) != 0)
            cp_batch_free(&b);
        else if (cp_batch_commit(c->cp, &b, c) == 0)
            cp_reply_empty(c, 204);
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(d);
}

struct cleanup_ctx {
    struct cp_call *c;
    struct cp_batch *b;
    const char *uid;
    bool bad;
};

static bool cleanup_device(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)val;
    struct cleanup_ctx *x = arg;
    char key[200], did[CP_ID_MAX + 1];
    snprintf(did, sizeof(did), "%.*s", (int)TMT_MIN(rest.len, CP_ID_MAX), rest.p);
    snprintf(key, sizeof(key), "dev:%s:%s", x->uid, did);
    cp_batch_del(x->b, key);
    return true;
}

static bool cleanup_lease(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct cleanup_ctx *x = arg;
    char key[200];
    snprintf(key, sizeof(key), "ulease:%s:%.*s", x->uid, (int)TMT_MIN(rest.len, 100), rest.p);
    cp_batch_del(x->b, key);
    snprintf(key, sizeof(key), "lease:%.*s", (int)TMT_MIN(val.len, 100), val.p);
    json_t *l = NULL;
    int rc = cp_get_json(x->c->cp, key, &l, NULL);
    if (rc < 0) {
        x->bad = true;
        return false;
    }
    if (rc == 1) {
        lease_end(x->b, l, x->c->now);
        json_decref(l);
    }
    return true;
}

int cp_user_cleanup(struct cp_call *c, const char *uid, struct cp_batch *b)
{
    struct cleanup_ctx x = {c, b, uid, false};
    char prefix[100];
    snprintf(prefix, sizeof(prefix), "ulease:%s:", uid);
    if (cp_scan(c->cp, prefix, cleanup_lease, &x, c) != 0)
        return -1;
    if (x.bad) {
        cp_reply_store_error(c, "reading leases", NULL);
        return -1;
    }
    snprintf(prefix, sizeof(prefix), "dev:%s:", uid);
    return cp_scan(c->cp, prefix, cleanup_device, &x, c);
}

/* ---- tokens and URLs ---- */

/* A signed playback token for lease l; its expiry into *exp. Length, or -1. */
static long mint(struct cp_call *c, json_t *l, char *out, size_t cap, int64_t *exp)
{
    struct tmt_token_claims k;
    memset(&k, 0, sizeof(k));
    snprintf(k.iss, sizeof(k.iss), "%s", c->conf->server_id);
    cp_pseudonym(c->cp->pseudonym_key, json_string_value(json_object_get(l, "uid")), k.sub);
    snprintf(k.dev, sizeof(k.dev), "%s", json_string_value(json_object_get(l, "device")));
    snprintf(k.lease, sizeof(k.lease), "%s", json_string_value(json_object_get(l, "id")));
    snprintf(k.prefix, sizeof(k.prefix), "/v/%s/", json_string_value(json_object_get(l, "asset")));
    k.iat = c->now;
    k.exp = c->now + json_integer_value(json_object_get(l, "token_ttl"));
    *exp = k.exp;
    long n = cp_keys_sign(c->cp, &k, out, cap);
    if (n > 0)
        c->counts[CPM_TOKENS_SIGNED]++;
    return n;
}

/* Token lifetime of a show: its duration plus the margin, capped; a default when unknown. */
static int64_t token_ttl(const struct cp_conf *conf, json_t *show)
{
    double d = show != NULL ? json_number_value(json_object_get(show, "duration")) : 0;
    int64_t ttl = d > 0 ? (int64_t)d + (int64_t)(conf->token_margin_ms / 1000)
                        : (int64_t)(conf->default_token_ttl_ms / 1000);
    return TMT_MIN(ttl, (int64_t)(conf->max_token_ttl_ms / 1000));
}

void cp_playback_start(struct cp_call *c)
{
    static const char *const fields[] = {"show_id", "device_id", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *sid = cp_json_string(c, o, "show_id", true, 1, CP_ID_MAX, &bad);
    const char *did = bad ? NULL : cp_json_string(c, o, "device_id", true, 1, CP_ID_MAX, &bad);
    if (bad) {
        json_decref(o);
        return;
    }
    struct cp *cp = c->cp;
    char key[200];
    json_t *show = NULL, *dev = NULL, *ls = NULL, *mine = NULL;
    snprintf(key, sizeof(key), "show:%s", sid);
    int rc = cp_get_json(cp, key, &show, c);
    if (rc < 0)
        goto out;
    const char *state = rc == 1 ? json_string_value(json_object_get(show, "state")) : NULL;
    const char *asset = rc == 1 ? json_string_value(json_object_get(show, "asset_id")) : NULL;
    if (state == NULL || strcmp(state, "published") != 0 || asset == NULL || asset[0] == '\0') {
        cp_reply_error(c, 404, "not found", "no such published show");
        goto out;
    }
    /* The edge first: with none available no lease is taken. */
    char edge[400];
    if (cp_pick_edge(c, asset, edge, sizeof(edge)) != 0)
        goto out;
    /* The device is read under the lock, so a deletion cannot slip between check and lease. */
    pthread_mutex_lock(&cp->mu);
    snprintf(key, sizeof(key), "dev:%s:%s", c->uid, did);
    rc = cp_get_json(cp, key, &dev, c);
    if (rc <= 0) {
        if (rc == 0)
            cp_reply_error(c, 404, "not found", "no such device (register it: POST /v1/devices)");
        pthread_mutex_unlock(&cp->mu);
        goto out;
    }
    ls = leases_of(c, c->uid);
    if (ls == NULL) {
        pthread_mutex_unlock(&cp->mu);
        goto out;
    }
    struct cp_batch b = {0};
    json_t *active = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        if (!lease_live(l, c->now)) {
            lease_end(&b, l, c->now);
            continue;
        }
        if (strcmp(json_string_value(json_object_get(l, "device")) ?: "", did) == 0)
            mine = json_incref(l);
        else
            json_array_append(active, l);
    }
    if (mine == NULL && json_array_size(active) >= (size_t)c->conf->max_active_devices) {
        /* Refused: say which devices play, so the viewer can stop one. */
        json_t *list = json_array();
        json_array_foreach(active, i, l)
        {
            json_t *v = lease_view(l);
            char dk[200];
            snprintf(dk, sizeof(dk), "dev:%s:%s", c->uid,
                     json_string_value(json_object_get(l, "device")));
            json_t *d = NULL;
            if (cp_get_json(cp, dk, &d, NULL) == 1) {
                json_object_set(v, "device_name", json_object_get(d, "name"));
                json_object_set(v, "device_type", json_object_get(d, "type"));
                json_decref(d);
            }
            json_array_append_new(list, v);
        }
        json_decref(active);
        if (cp_batch_commit(cp, &b, c) == 0) {
            c->counts[CPM_PLAYBACK_REFUSED]++;
            json_t *e = json_pack("{s:s, s:s, s:o}", "error", "device limit", "detail", "",
                                  "active_devices", list);
            char detail[160];
            snprintf(detail, sizeof(detail),
                     "%lld devices already play; stop one (DELETE /v1/playback/{lease_id})",
                     (long long)c->conf->max_active_devices);
            json_object_set_new(e, "detail", json_string(detail));
            cp_reply_json(c, 409, e);
        } else {
            json_decref(list);
        }
        pthread_mutex_unlock(&cp->mu);
        goto out;
    }
    json_decref(active);
    bool renewed = mine != NULL;
    if (!renewed) {
        char lid[CP_ID_LEN + 1];
        cp_new_id('l', lid);
        mine = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", lid, "uid", c->uid, "device", did,
                         "started", (json_int_t)c->now, "token_exp", (json_int_t)0);
    }
    int64_t ttl = token_ttl(c->conf, show);
    json_object_set_new(mine, "show", json_string(sid));
    json_object_set_new(mine, "asset", json_string(asset));
    json_object_set_new(mine, "renewed", json_integer(c->now));
    json_object_set_new(mine, "expires",
                        json_integer(c->now + (int64_t)(c->conf->lease_ttl_ms / 1000)));
    json_object_set_new(mine, "token_ttl", json_integer(ttl));
    int64_t texp = c->now + ttl;
    if (json_integer_value(json_object_get(mine, "token_exp")) < texp)
        json_object_set_new(mine, "token_exp", json_integer(texp));
    const char *lid = json_string_value(json_object_get(mine, "id"));
    snprintf(key, sizeof(key), "lease:%s", lid);
    cp_batch_put_json(&b, key, mine);
    snprintf(key, sizeof(key), "ulease:%s:%s", c->uid, did);
    cp_batch_put(&b, key, lid, strlen(lid));
    rc = cp_batch_commit(cp, &b, c);
    pthread_mutex_unlock(&cp->mu);
    if (rc != 0)
        goto out;

    char token[TMT_TOKEN_MAX + 1];
    int64_t exp;
    if (mint(c, mine, token, sizeof(token), &exp) <= 0) {
        cp_reply_error(c, 500, "internal error", "the token could not be signed");
        goto out;
    }
    char ticket[CP_TICKET_MAX + 1];
    int64_t tex = c->now + (int64_t)(c->conf->ticket_ttl_ms / 1000);
    if (cp_ticket_make(cp->ticket_key, lid, tex, ticket, sizeof(ticket)) == 0) {
        cp_reply_error(c, 500, "internal error", "the router ticket could not be made");
        goto out;
    }

    size_t ul = strlen(edge) + strlen(token) + strlen(asset) + 64;
    char *hls = tmt_xmalloc(ul), *dash = tmt_xmalloc(ul);
    snprintf(hls, ul, "%s/t/%s/v/%s/master.m3u8", edge, token, asset);
    snprintf(dash, ul, "%s/t/%s/v/%s/manifest.mpd", edge, token, asset);
    char rh[600], rd[600];
    snprintf(rh, sizeof(rh), "%s/r/%s/master.m3u8?ticket=%s", c->conf->public_url, asset, ticket);
    snprintf(rd, sizeof(rd), "%s/r/%s/manifest.mpd?ticket=%s", c->conf->public_url, asset, ticket);
    json_t *r = lease_view(mine);
    json_object_set_new(r, "edge", json_pack("{s:s}", "url", edge));
    json_object_set_new(r, "token", json_string(token));
    json_object_set_new(r, "token_expires_at", cp_time_json(exp));
    json_object_set_new(r, "hls_url", json_string(hls));
    json_object_set_new(r, "dash_url", json_string(dash));
    json_object_set_new(r, "router_hls_url", json_string(rh));
    json_object_set_new(r, "router_dash_url", json_string(rd));
    free(hls);
    free(dash);
    c->counts[renewed ? CPM_PLAYBACK_RENEWED : CPM_PLAYBACK_STARTED]++;
    cp_reply_json(c, renewed ? 200 : 201, r);
out:
    json_decref(o);
    json_decref(show);
    json_decref(dev);
    json_decref(ls);
    json_decref(mine);
}

void cp_playback_list(struct cp_call *c)
{
    json_t *ls = leases_of(c, c->uid);
    if (ls == NULL)
        return;
    json_t *a = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(ls, i, l)
    {
        if (lease_live(l, c->now))
            json_array_append_new(a, lease_view(l));
    }
    json_decref(ls);
    cp_reply_json(c, 200, json_pack("{s:o}", "leases", a));
}

/* The caller's lease in the path under cp->mu: 1, or 0/-1 after answering 404/503. */
static int own_lease(struct cp_call *c, json_t **l)
{
    char key[100];
    snprintf(key, sizeof(key), "lease:%.*s", (int)c->arg[0].len, c->arg[0].p);
    int rc = cp_get_json(c->cp, key, l, c);
    if (rc == 1 && strcmp(json_string_value(json_object_get(*l, "uid")) ?: "", c->uid) != 0) {
        json_decref(*l);
        *l = NULL;
        rc = 0;
    }
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such lease (it may have ended)");
    return rc;
}

void cp_playback_heartbeat(struct cp_call *c)
{
    pthread_mutex_lock(&c->cp->mu);
    json_t *l = NULL;
    if (own_lease(c, &l) == 1) {
        struct cp_batch b = {0};
        if (!lease_live(l, c->now)) {
            lease_end(&b, l, c->now);
            if (cp_batch_commit(c->cp, &b, c) == 0)
                cp_reply_error(c, 410, "lease ended",
                               "no heartbeat came in time; start playback again");
        } else {
            json_object_set_new(l, "renewed", json_integer(c->now));
            json_object_set_new(l, "expires",
                                json_integer(c->now + (int64_t)(c->conf->lease_ttl_ms / 1000)));
            char key[100];
            snprintf(key, sizeof(key), "lease:%s", json_string_value(json_object_get(l, "id")));
            cp_batch_put_json(&b, key, l);
            if (cp_batch_commit(c->cp, &b, c) == 0)
                cp_reply_json(c, 200, lease_view(l));
        }
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(l);
}

void cp_playback_stop(struct cp_call *c)
{
    pthread_mutex_lock(&c->cp->mu);
    json_t *l = NULL;
    if (own_lease(c, &l) == 1) {
        struct cp_batch b = {0};
        lease_end(&b, l, c->now);
        if (cp_batch_commit(c->cp, &b, c) == 0)
            cp_reply_empty(c, 204);
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(l);
}

/* ---- the router ---- */

void cp_router(struct cp_call *c)
{
    struct cp *cp = c->cp;
    char ticket[CP_TICKET_MAX + 1], lid[CP_ID_MAX + 1];
    long n = cp_query(c, "ticket", ticket, sizeof(ticket));
    if (n == -2)
        return;
    if (n <= 0) {
        cp_reply_error(c, 403, "no ticket", "router URLs carry ?ticket= from POST /v1/playback");
        return;
    }
    int64_t exp;
    if (!cp_ticket_parse(cp->ticket_key, (struct tmt_slice){ticket, (size_t)n}, lid, sizeof(lid),
                         &exp)) {
        cp_reply_error(c, 403, "bad ticket", "the ticket is malformed or forged");
        return;
    }
    if (exp <= c->now) {
        cp_reply_error(c, 403, "ticket expired", "start playback again for a new ticket");
        return;
    }
    char key[200];
    snprintf(key, sizeof(key), "lease:%s", lid);
    pthread_mutex_lock(&cp->mu);
    json_t *l = NULL;
    int rc = cp_get_json(cp, key, &l, c);
    const char *asset = rc == 1 ? json_string_value(json_object_get(l, "asset")) : NULL;
    if (rc == 0 || (rc == 1 && !lease_live(l, c->now))) {
        cp_reply_error(c, 403, "lease ended", "start playback again");
        rc = -1;
    } else if (rc == 1 && (asset == NULL || cp_slice_cmp(c->arg[0], asset) != 0)) {
        cp_reply_error(c, 403, "wrong asset", "the ticket is for another asset");
        rc = -1;
    }
    if (rc == 1) {
        /* Following a router URL is playback activity: the lease is renewed. */
        json_object_set_new(l, "renewed", json_integer(c->now));
        json_object_set_new(l, "expires",
                            json_integer(c->now + (int64_t)(c->conf->lease_ttl_ms / 1000)));
        int64_t texp = c->now + json_integer_value(json_object_get(l, "token_ttl"));
        if (json_integer_value(json_object_get(l, "token_exp")) < texp)
            json_object_set_new(l, "token_exp", json_integer(texp));
        struct cp_batch b = {0};
        cp_batch_put_json(&b, key, l);
        rc = cp_batch_commit(cp, &b, c) == 0 ? 1 : -1;
    }
    pthread_mutex_unlock(&cp->mu);
    char edge[400];
    if (rc == 1 && cp_pick_edge(c, asset, edge, sizeof(edge)) != 0)
        rc = -1;
    if (rc == 1) {
        char token[TMT_TOKEN_MAX + 1];
        int64_t texp;
        if (mint(c, l, token, sizeof(token), &texp) <= 0) {
            cp_reply_error(c, 500, "internal error", "the token could not be signed");
        } else {
            bool hls = c->req->path.len > 5 &&
                       memcmp(c->req->path.p + c->req->path.len - 5, ".m3u8", 5) == 0;
            cp_add_header(c, "Location", "%s/t/%s/v/%s/%s", edge, token, asset,
                          hls ? "master.m3u8" : "manifest.mpd");
            c->counts[CPM_ROUTER_REDIRECTS]++;
            cp_reply_empty(c, 302);
        }
    }
    json_decref(l);
}

/* ---- the sweep ---- */

struct sweep_ctx {
    int64_t now;
    struct cp_batch *b;
    size_t ended;
};

static bool sweep_lease(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct sweep_ctx *s = arg;
    json_t *l = json_loadb(val.p, val.len, 0, NULL);
    if (l != NULL && !lease_live(l, s->now)) {
        lease_end(s->b, l, s->now);
        s->ended++;
    }
    json_decref(l);
    return true;
}

static bool sweep_rev(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct sweep_ctx *s = arg;
    json_t *r = json_loadb(val.p, val.len, 0, NULL);
    if (r == NULL || json_integer_value(json_object_get(r, "until")) <= s->now) {
        char key[120];
        snprintf(key, sizeof(key), "rev:%.*s", (int)TMT_MIN(rest.len, 100), rest.p);
        cp_batch_del(s->b, key);
    }
    json_decref(r);
    return true;
}

void cp_leases_sweep(struct cp *cp, int64_t now)
{
    pthread_mutex_lock(&cp->mu);
    struct cp_batch b = {0};
    struct sweep_ctx s = {now, &b, 0};
    if (cp_scan(cp, "lease:", sweep_lease, &s, NULL) == 0 &&
        cp_scan(cp, "rev:", sweep_rev, &s, NULL) == 0) {
        if (cp_batch_commit(cp, &b, NULL) == 0 && s.ended > 0)
            tmt_log(TMT_LOG_INFO, "control", "leases ended without heartbeat", "count=%zu",
                    s.ended);
    } else {
        cp_batch_free(&b);
    }
    pthread_mutex_unlock(&cp->mu);
}
