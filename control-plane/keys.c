/*
 * keys.c: the control plane's secrets and token signing keys.
 *
 * Store keys:
 *   meta:secrets  {"pseudonym_key","ticket_key","fill_key","node_admin_key"} (base64url, 32 bytes
 * each), made at the first start: pseudonymous user ids, router tickets, and the fill key edges
 * send to shields (handed to nodes with their config) skey:{kid}
 * {"kid","secret","created","retired","valid_until"}: a signing key; retired 0 for the current one,
 * valid_until the time its last token expires meta:kid      the current key's kid meta:next_kid the
 * next key's kid
 *
 * Three kinds of key: the current one signs; the next one is already handed to nodes but signs
 * nothing yet, so that when a rotation makes it current, tokens it signs verify at once on every
 * edge that has polled since it was made; retired ones stay valid (and with nodes) until
 * playback.max_token_ttl after their retirement: no token they signed can live longer. A
 * rotation retires the current key, makes the next one current and makes a new next one.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "cp.h"
#include "tmt/log.h"

#define SECRET_LEN 32

static int get_secret(json_t *o, const char *name, unsigned char *out, size_t len)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s != NULL && tmt_b64url_decode(s, strlen(s), out, len) == (long)len ? 0 : -1;
}

static json_t *key_record(const struct cp_keyring *r, size_t i)
{
    char sec[96];
    tmt_b64url_encode(r->keys[i].secret, r->keys[i].secret_len, sec, sizeof(sec));
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "kid", r->keys[i].kid, "secret", sec,
                          "created", (json_int_t)r->created[i], "retired",
                          (json_int_t)r->retired[i], "valid_until", (json_int_t)r->valid_until[i]);
    OPENSSL_cleanse(sec, sizeof(sec));
    return o;
}

static void put_key(struct cp_batch *b, const struct cp_keyring *r, size_t i)
{
    char key[80];
    snprintf(key, sizeof(key), "skey:%s", r->keys[i].kid);
    json_t *o = key_record(r, i);
    cp_batch_put_json(b, key, o);
    json_decref(o);
}

/* A fresh key at the end of the ring (the caller makes it current or next). */
static size_t new_key(struct cp_keyring *r, int64_t now)
{
    size_t i = r->n++;
    memset(&r->keys[i], 0, sizeof(r->keys[i]));
    char kid[CP_ID_LEN + 1];
    cp_new_id('k', kid);
    snprintf(r->keys[i].kid, sizeof(r->keys[i].kid), "%s", kid);
    cp_random(r->keys[i].secret, SECRET_LEN);
    r->keys[i].secret_len = SECRET_LEN;
    r->created[i] = now;
    r->retired[i] = 0;
    r->valid_until[i] = 0;
    return i;
}

struct load_ctx {
    struct cp_keyring *r;
    bool bad;
};

static bool load_key(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    struct load_ctx *l = arg;
    if (l->r->n == CP_KEYS_MAX)
        return false;
    json_t *o = json_loadb(val.p, val.len, 0, NULL);
    const char *kid = json_string_value(json_object_get(o, "kid"));
    size_t i = l->r->n;
    if (kid == NULL || strlen(kid) > TMT_TOKEN_KID_MAX ||
        get_secret(o, "secret", l->r->keys[i].secret, SECRET_LEN) != 0) {
        json_decref(o);
        l->bad = true;
        return false;
    }
    snprintf(l->r->keys[i].kid, sizeof(l->r->keys[i].kid), "%s", kid);
    l->r->keys[i].secret_len = SECRET_LEN;
    l->r->created[i] = json_integer_value(json_object_get(o, "created"));
    l->r->retired[i] = json_integer_value(json_object_get(o, "retired"));
    l->r->valid_until[i] = json_integer_value(json_object_get(o, "valid_until"));
    l->r->n++;
    json_decref(o);
    return true;
}

int cp_keys_load(struct cp *cp, struct tmt_err *err)
{
    /* Each secret is made the first time a start finds it missing, and kept from then on. */
    static const char *const names[] = {"pseudonym_key", "ticket_key", "fill_key",
                                        "node_admin_key"};
    unsigned char *dst[] = {cp->pseudonym_key, cp->ticket_key, cp->fill_key, cp->node_admin_key};
    json_t *sec = NULL;
    int rc = cp_get_json(cp, "meta:secrets", &sec, NULL);
    if (rc < 0)
        return tmt_err_set(err, TMT_EIO, "cannot read the secrets from the store"), -1;
    if (rc == 0)
        sec = json_object();
    bool made = false;
    for (size_t i = 0; i < TMT_ARRAY_LEN(names); i++) {
        if (json_object_get(sec, names[i]) == NULL) {
            char t[64];
            cp_random(dst[i], SECRET_LEN);
            tmt_b64url_encode(dst[i], SECRET_LEN, t, sizeof(t));
            json_object_set_new(sec, names[i], json_string(t));
            made = true;
        } else if (get_secret(sec, names[i], dst[i], SECRET_LEN) != 0) {
            json_decref(sec);
            return tmt_err_set(err, TMT_ECORRUPT, "meta:secrets in the store is damaged (%s)",
                               names[i]),
                   -1;
        }
    }
    if (made) {
        struct cp_batch b = {0};
        cp_batch_put_json(&b, "meta:secrets", sec);
        if (cp_batch_commit(cp, &b, NULL) != 0) {
            json_decref(sec);
            return tmt_err_set(err, TMT_EIO, "cannot store the secrets"), -1;
        }
    }
    json_decref(sec);
    struct cp_keyring *r = &cp->ring;
    memset(r, 0, sizeof(*r));
    struct load_ctx l = {r, false};
    if (cp_scan(cp, "skey:", load_key, &l, NULL) != 0 || l.bad)
        return tmt_err_set(err, TMT_ECORRUPT, "cannot read the signing keys from the store"), -1;
    char cur[TMT_TOKEN_KID_MAX + 1] = "", next[TMT_TOKEN_KID_MAX + 1] = "";
    if (cp_get_str(cp, "meta:kid", cur, sizeof(cur), NULL) < 0 ||
        cp_get_str(cp, "meta:next_kid", next, sizeof(next), NULL) < 0)
        return tmt_err_set(err, TMT_EIO, "cannot read meta:kid from the store"), -1;
    bool found_cur = false, found_next = false;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->keys[i].kid, cur) == 0) {
            r->current = i;
            found_cur = true;
        } else if (strcmp(r->keys[i].kid, next) == 0) {
            r->next = i;
            found_next = true;
        }
    }
    /* A first start (or a store from before next keys) makes what is missing. */
    static const char *const what[] = {"meta:kid", "meta:next_kid"};
    bool *found[] = {&found_cur, &found_next};
    size_t *idx[] = {&r->current, &r->next};
    for (int k = 0; k < 2; k++) {
        if (*found[k])
            continue;
        if (r->n == CP_KEYS_MAX)
            return tmt_err_set(err, TMT_ECORRUPT, "no room for a signing key among %d",
                               CP_KEYS_MAX),
                   -1;
        size_t i = new_key(r, cp_wall_now());
        *idx[k] = i;
        struct cp_batch b = {0};
        put_key(&b, r, i);
        cp_batch_put(&b, what[k], r->keys[i].kid, strlen(r->keys[i].kid));
        if (cp_batch_commit(cp, &b, NULL) != 0)
            return tmt_err_set(err, TMT_EIO, "cannot store a new signing key"), -1;
        tmt_log(TMT_LOG_INFO, "control", k == 0 ? "signing key made" : "next signing key made",
                "kid=%s", r->keys[i].kid);
    }
    return 0;
}

long cp_keys_sign(struct cp *cp, const struct tmt_token_claims *claims, char *out, size_t cap)
{
    pthread_rwlock_rdlock(&cp->keys_lock);
    long n = tmt_token_sign(&cp->ring.keys[cp->ring.current], claims, out, cap);
    pthread_rwlock_unlock(&cp->keys_lock);
    return n;
}

const char *cp_key_state(const struct cp_keyring *r, size_t i)
{
    return i == r->current ? "current" : i == r->next ? "next" : "retired";
}

static json_t *key_view(const struct cp_keyring *r, size_t i)
{
    json_t *o = json_pack("{s:s, s:s, s:o}", "kid", r->keys[i].kid, "state", cp_key_state(r, i),
                          "created_at", cp_time_json(r->created[i]));
    if (i != r->current && i != r->next)
        json_object_set_new(o, "valid_until", cp_time_json(r->valid_until[i]));
    return o;
}

void cp_keys_list(struct cp_call *c)
{
    json_t *a = json_array();
    pthread_rwlock_rdlock(&c->cp->keys_lock);
    for (size_t i = 0; i < c->cp->ring.n; i++)
        json_array_append_new(a, key_view(&c->cp->ring, i));
    pthread_rwlock_unlock(&c->cp->keys_lock);
    cp_reply_json(c, 200, json_pack("{s:o}", "keys", a));
}

void cp_keys_rotate(struct cp_call *c)
{
    struct cp *cp = c->cp;
    pthread_mutex_lock(&cp->mu);
    /* Work on a copy; the ring changes only once the store has the change. */
    struct cp_keyring r = cp->ring;
    if (r.n == CP_KEYS_MAX) {
        pthread_mutex_unlock(&cp->mu);
        cp_reply_error(c, 409, "too many keys",
                       "%d keys are still valid; rotate again once the oldest expires",
                       CP_KEYS_MAX);
        return;
    }
    size_t old = r.current;
    r.retired[old] = c->now;
    r.valid_until[old] = c->now + (int64_t)(c->conf->max_token_ttl_ms / 1000);
    size_t i = r.next;
    r.current = i;
    r.next = new_key(&r, c->now);
    struct cp_batch b = {0};
    put_key(&b, &r, old);
    put_key(&b, &r, r.next);
    cp_batch_put(&b, "meta:kid", r.keys[i].kid, strlen(r.keys[i].kid));
    cp_batch_put(&b, "meta:next_kid", r.keys[r.next].kid, strlen(r.keys[r.next].kid));
    if (cp_batch_commit(cp, &b, c) == 0) {
        pthread_rwlock_wrlock(&cp->keys_lock);
        cp->ring = r;
        pthread_rwlock_unlock(&cp->keys_lock);
        tmt_log(TMT_LOG_INFO, "control", "signing key rotated", "kid=%s previous=%s", r.keys[i].kid,
                r.keys[old].kid);
        json_t *v = key_view(&r, i);
        json_object_set_new(v, "previous", key_view(&r, old));
        json_object_set_new(v, "next", key_view(&r, r.next));
        cp_add_header(c, "Location", "/v1/keys");
        cp_reply_json(c, 201, v);
    }
    OPENSSL_cleanse(&r, sizeof(r));
    pthread_mutex_unlock(&cp->mu);
}

void cp_keys_sweep(struct cp *cp, int64_t now)
{
    pthread_mutex_lock(&cp->mu);
    struct cp_keyring r = cp->ring;
    struct cp_batch b = {0};
    size_t w = 0;
    char cur[TMT_TOKEN_KID_MAX + 1], next[TMT_TOKEN_KID_MAX + 1];
    snprintf(cur, sizeof(cur), "%s", r.keys[r.current].kid);
    snprintf(next, sizeof(next), "%s", r.keys[r.next].kid);
    for (size_t i = 0; i < r.n; i++) {
        if (i != r.current && i != r.next && r.valid_until[i] <= now) {
            char key[80];
            snprintf(key, sizeof(key), "skey:%s", r.keys[i].kid);
            cp_batch_del(&b, key);
            tmt_log(TMT_LOG_INFO, "control", "retired signing key dropped", "kid=%s",
                    r.keys[i].kid);
            continue;
        }
        if (w != i) {
            r.keys[w] = r.keys[i];
            r.created[w] = r.created[i];
            r.retired[w] = r.retired[i];
            r.valid_until[w] = r.valid_until[i];
        }
        if (strcmp(r.keys[w].kid, cur) == 0)
            r.current = w;
        if (strcmp(r.keys[w].kid, next) == 0)
            r.next = w;
        w++;
    }
    if (w != r.n) {
        r.n = w;
        if (cp_batch_commit(cp, &b, NULL) == 0) {
            pthread_rwlock_wrlock(&cp->keys_lock);
            cp->ring = r;
            pthread_rwlock_unlock(&cp->keys_lock);
        }
    } else {
        cp_batch_free(&b);
    }
    OPENSSL_cleanse(&r, sizeof(r));
    pthread_mutex_unlock(&cp->mu);
}
