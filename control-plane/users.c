/*
 * users.c: accounts and login sessions.
 *
 * Store keys (docs/api.md, "Store"):
 *   user:{uid}            {"id","email","display_name","role","pw","created","updated"}
 *   email:{email}         uid (emails are unique, compared in lower case)
 *   op:{uid}              "" for each operator (so the last one cannot be removed)
 *   sess:{sha256(token)}  {"uid","created","expires"}; the token itself is never stored
 *   usess:{uid}:{hash}    "" (a user's sessions, to end them all)
 */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"
#include "tmt/log.h"

#define PW_MIN 8
#define PW_MAX 1024
#define HASH_MAX 160
#define TOKEN_BYTES 32
#define TOKEN_LEN 43 /* base64url of 32 bytes */

/* ---- records ---- */

json_t *cp_user_view(json_t *user)
{
    json_t *v =
        json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(user, "id"), "email",
                  json_object_get(user, "email"), "display_name",
                  json_object_get(user, "display_name"), "role", json_object_get(user, "role"));
    json_object_set_new(v, "created_at",
                        cp_time_json(json_integer_value(json_object_get(user, "created"))));
    return v;
}

static enum cp_role role_of(json_t *user)
{
    const char *r = json_string_value(json_object_get(user, "role"));
    return r != NULL && strcmp(r, "operator") == 0 ? CP_ROLE_OPERATOR : CP_ROLE_VIEWER;
}

static void token_key(const char *token, size_t len, char *key, size_t cap)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, len, d);
    char h[48];
    tmt_b64url_encode(d, sizeof(d), h, sizeof(h));
    snprintf(key, cap, "sess:%s", h);
}

/* Number of operators (op: index). -1 on store error. */
static bool count_one(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)rest;
    (void)val;
    (*(int *)arg)++;
    return true;
}

static int operators(struct cp *cp, struct cp_call *c)
{
    int n = 0;
    return cp_scan(cp, "op:", count_one, &n, c) != 0 ? -1 : n;
}

/* Puts a new user (email not yet checked) under cp->mu. 1 made, 0 email taken, -1 error. */
static int user_insert(struct cp *cp, struct cp_call *c, const char *email, const char *display,
                       const char *hash, enum cp_role role, int64_t now, char uid[CP_ID_LEN + 1])
{
    char ekey[300];
    snprintf(ekey, sizeof(ekey), "email:%s", email);
    char other[CP_ID_MAX + 1];
    int rc = cp_get_str(cp, ekey, other, sizeof(other), c);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    cp_new_id('u', uid);
    json_t *u =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "id", uid, "email", email, "display_name",
                  display, "role", role == CP_ROLE_OPERATOR ? "operator" : "viewer", "pw", hash,
                  "created", (json_int_t)now, "updated", (json_int_t)now);
    struct cp_batch b = {0};
    char key[80];
    snprintf(key, sizeof(key), "user:%s", uid);
    cp_batch_put_json(&b, key, u);
    cp_batch_put(&b, ekey, uid, strlen(uid));
    if (role == CP_ROLE_OPERATOR) {
        snprintf(key, sizeof(key), "op:%s", uid);
        cp_batch_put(&b, key, "", 0);
    }
    json_decref(u);
    return cp_batch_commit(cp, &b, c) == 0 ? 1 : -1;
}

/* ---- register ---- */

/* Counts an attempt from the caller's address; false after answering 429. */
static bool address_ok(struct cp_call *c)
{
    int64_t wait = cp_limiter_hit(c->cp->limiter, "addr", c->req->client, c->now,
                                  (int64_t)(c->conf->address_window_ms / 1000),
                                  (uint64_t)c->conf->max_attempts_per_address, true);
    if (wait == 0)
        return true;
    c->counts[CPM_LOGIN_LIMITED]++;
    cp_add_header(c, "Retry-After", "%lld", (long long)wait);
    cp_reply_error(c, 429, "too many attempts",
                   "too many attempts from this address; retry in %lld s", (long long)wait);
    return false;
}

void cp_users_register(struct cp_call *c)
{
    static const char *const fields[] = {"email", "password", "display_name", NULL};
    if (!address_ok(c))
        return;
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *email = cp_json_string(c, o, "email", true, 3, 254, &bad);
    const char *pw = bad ? NULL : cp_json_string(c, o, "password", true, PW_MIN, PW_MAX, &bad);
    const char *name = bad ? NULL : cp_json_string(c, o, "display_name", true, 1, 100, &bad);
    char em[256];
    if (!bad && !cp_email_normalize(email, em, sizeof(em))) {
        bad = true;
        cp_reply_error(c, 422, "invalid field", "\"email\" is not an email address");
    }
    char hash[HASH_MAX];
    if (!bad && cp_password_hash(c->conf, pw, strlen(pw), hash, sizeof(hash)) != 0) {
        bad = true;
        cp_reply_error(c, 500, "internal error", "password hashing failed");
    }
    if (bad) {
        json_decref(o);
        return;
    }
    char uid[CP_ID_LEN + 1];
    pthread_mutex_lock(&c->cp->mu);
    int rc = user_insert(c->cp, c, em, name, hash, CP_ROLE_VIEWER, c->now, uid);
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(o);
    if (rc < 0)
        return;
    if (rc == 0) {
        cp_reply_error(c, 409, "email taken", "an account with this email exists");
        return;
    }
    c->counts[CPM_REGISTERED]++;
    json_t *u = NULL;
    char key[80];
    snprintf(key, sizeof(key), "user:%s", uid);
    if (cp_get_json(c->cp, key, &u, c) != 1)
        return;
    cp_reply_json(c, 201, cp_user_view(u));
    json_decref(u);
}

int cp_create_operator(struct cp *cp, const char *email, const char *display, const char *pw,
                       size_t pw_len, char *why, size_t why_cap)
{
    char em[256];
    if (!cp_email_normalize(email, em, sizeof(em))) {
        snprintf(why, why_cap, "\"%s\" is not an email address", email);
        return -1;
    }
    if (pw_len < PW_MIN || pw_len > PW_MAX) {
        snprintf(why, why_cap, "the password must be %d to %d bytes long", PW_MIN, PW_MAX);
        return -1;
    }
    char hash[HASH_MAX];
    if (cp_password_hash(cp->conf, pw, pw_len, hash, sizeof(hash)) != 0) {
        snprintf(why, why_cap, "password hashing failed");
        return -1;
    }
    char uid[CP_ID_LEN + 1];
    pthread_mutex_lock(&cp->mu);
    int rc = user_insert(cp, NULL, em, display, hash, CP_ROLE_OPERATOR, cp_wall_now(), uid);
    pthread_mutex_unlock(&cp->mu);
    if (rc == 0)
        snprintf(why, why_cap, "an account with the email %s exists", em);
    else if (rc < 0)
        snprintf(why, why_cap, "the store failed (see the log)");
    else {
        char pseud[23];
        cp_pseudonym(cp->pseudonym_key, uid, pseud);
        tmt_log(TMT_LOG_INFO, "control", "operator created", "user=%s", pseud);
    }
    return rc == 1 ? 0 : -1;
}

/* ---- sessions ---- */

void cp_sessions_create(struct cp_call *c)
{
    static const char *const fields[] = {"email", "password", NULL};
    if (!address_ok(c))
        return;
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *email = cp_json_string(c, o, "email", true, 1, 254, &bad);
    const char *pw = bad ? NULL : cp_json_string(c, o, "password", true, 1, PW_MAX, &bad);
    if (bad) {
        json_decref(o);
        return;
    }
    char em[256];
    if (!cp_email_normalize(email, em, sizeof(em)))
        snprintf(em, sizeof(em), "%s", email);
    int64_t window = (int64_t)(c->conf->login_window_ms / 1000);
    uint64_t maxf = (uint64_t)c->conf->max_failures_per_account;
    int64_t wait = cp_limiter_hit(c->cp->limiter, "acct", em, c->now, window, maxf, false);
    if (wait != 0) {
        json_decref(o);
        c->counts[CPM_LOGIN_LIMITED]++;
        cp_add_header(c, "Retry-After", "%lld", (long long)wait);
        cp_reply_error(c, 429, "too many attempts",
                       "too many failed logins for this account; retry in %lld s", (long long)wait);
        return;
    }
    char ekey[300], uid[CP_ID_MAX + 1];
    snprintf(ekey, sizeof(ekey), "email:%s", em);
    json_t *u = NULL;
    int rc = cp_get_str(c->cp, ekey, uid, sizeof(uid), c);
    if (rc == 1) {
        char key[80];
        snprintf(key, sizeof(key), "user:%s", uid);
        rc = cp_get_json(c->cp, key, &u, c);
    }
    if (rc < 0) {
        json_decref(o);
        return;
    }
    /* An unknown email costs the same scrypt as a wrong password. */
    const char *stored = u != NULL ? json_string_value(json_object_get(u, "pw")) : NULL;
    bool ok =
        cp_password_check(stored != NULL ? stored : c->cp->dummy_hash, pw, strlen(pw)) && u != NULL;
    json_decref(o);
    if (!ok) {
        json_decref(u);
        cp_limiter_hit(c->cp->limiter, "acct", em, c->now, window, maxf, true);
        c->counts[CPM_LOGIN_FAILED]++;
        cp_reply_error(c, 401, "unauthorized", "wrong email or password");
        return;
    }
    cp_limiter_reset(c->cp->limiter, "acct", em);
    unsigned char raw[TOKEN_BYTES];
    cp_random(raw, sizeof(raw));
    char token[64];
    tmt_b64url_encode(raw, sizeof(raw), token, sizeof(token));
    OPENSSL_cleanse(raw, sizeof(raw));
    char skey[80], ukey[200];
    token_key(token, strlen(token), skey, sizeof(skey));
    snprintf(ukey, sizeof(ukey), "usess:%s:%s", uid, skey + 5);
    int64_t exp = c->now + (int64_t)(c->conf->session_ttl_ms / 1000);
    json_t *s = json_pack("{s:s, s:I, s:I}", "uid", uid, "created", (json_int_t)c->now, "expires",
                          (json_int_t)exp);
    struct cp_batch b = {0};
    cp_batch_put_json(&b, skey, s);
    cp_batch_put(&b, ukey, "", 0);
    json_decref(s);
    if (cp_batch_commit(c->cp, &b, c) != 0) {
        json_decref(u);
        return;
    }
    c->counts[CPM_LOGIN_OK]++;
    json_t *r = json_pack("{s:s, s:o, s:o}", "token", token, "expires_at", cp_time_json(exp),
                          "user", cp_user_view(u));
    json_decref(u);
    OPENSSL_cleanse(token, sizeof(token));
    cp_reply_json(c, 201, r);
}

bool cp_session_auth(struct cp_call *c)
{
    const struct tmt_http_header *h =
        tmt_http_header_find(c->req->headers, c->req->n_headers, "authorization");
    struct tmt_slice v = h != NULL ? h->value : (struct tmt_slice){NULL, 0};
    if (v.len < 7 || strncasecmp(v.p, "bearer ", 7) != 0) {
        cp_reply_error(c, 401, "unauthorized", "log in and send \"Authorization: Bearer TOKEN\"");
        return false;
    }
    struct tmt_slice t = {v.p + 7, v.len - 7};
    while (t.len > 0 && t.p[0] == ' ') {
        t.p++;
        t.len--;
    }
    if (t.len != TOKEN_LEN || !cp_id_ok(t, TOKEN_LEN)) {
        cp_reply_error(c, 401, "unauthorized", "not a session token");
        return false;
    }
    token_key(t.p, t.len, c->session_key, sizeof(c->session_key));
    json_t *s = NULL;
    int rc = cp_get_json(c->cp, c->session_key, &s, c);
    if (rc < 0)
        return false;
    if (rc == 0) {
        cp_reply_error(c, 401, "unauthorized", "unknown or ended session; log in again");
        return false;
    }
    const char *uid = json_string_value(json_object_get(s, "uid"));
    int64_t exp = json_integer_value(json_object_get(s, "expires"));
    if (uid == NULL || strlen(uid) > CP_ID_MAX || exp <= c->now) {
        json_decref(s);
        cp_reply_error(c, 401, "unauthorized", "the session has expired; log in again");
        return false;
    }
    snprintf(c->uid, sizeof(c->uid), "%s", uid);
    json_decref(s);
    char key[80];
    snprintf(key, sizeof(key), "user:%s", c->uid);
    rc = cp_get_json(c->cp, key, &c->user, c);
    if (rc < 0)
        return false;
    if (rc == 0) {
        cp_reply_error(c, 401, "unauthorized", "the account no longer exists");
        return false;
    }
    c->role = role_of(c->user);
    c->authed = true;
    return true;
}

void cp_sessions_delete(struct cp_call *c)
{
    struct cp_batch b = {0};
    char ukey[200];
    snprintf(ukey, sizeof(ukey), "usess:%s:%s", c->uid, c->session_key + 5);
    cp_batch_del(&b, c->session_key);
    cp_batch_del(&b, ukey);
    if (cp_batch_commit(c->cp, &b, c) == 0)
        cp_reply_empty(c, 204);
}

/* ---- users ---- */

struct end_ctx {
    struct cp_batch *b;
    const char *uid;
};

static bool end_one(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    (void)val;
    struct end_ctx *e = arg;
    char key[200];
    snprintf(key, sizeof(key), "sess:%.*s", (int)rest.len, rest.p);
    cp_batch_del(e->b, key);
    snprintf(key, sizeof(key), "usess:%s:%.*s", e->uid, (int)rest.len, rest.p);
    cp_batch_del(e->b, key);
    return true;
}

/* Ends every session of uid into b. -1 after answering 503. */
static int end_sessions(struct cp_call *c, const char *uid, struct cp_batch *b)
{
    char prefix[100];
    snprintf(prefix, sizeof(prefix), "usess:%s:", uid);
    struct end_ctx e = {b, uid};
    return cp_scan(c->cp, prefix, end_one, &e, c);
}

void cp_users_me(struct cp_call *c)
{
    cp_reply_json(c, 200, cp_user_view(c->user));
}

struct list_ctx {
    json_t *items;
    const char *after;
    const char *role;
    size_t limit;
    char next[CP_ID_MAX + 1];
    bool bad, more;
};

static bool list_user(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct list_ctx *l = arg;
    if (l->after != NULL && cp_slice_cmp(rest, l->after) <= 0)
        return true;
    json_t *u = json_loadb(val.p, val.len, 0, NULL);
    if (u == NULL) {
        l->bad = true;
        return false;
    }
    const char *r = json_string_value(json_object_get(u, "role"));
    if (l->role == NULL || (r != NULL && strcmp(r, l->role) == 0)) {
        if (json_array_size(l->items) == l->limit) {
            json_decref(u);
            l->more = true;
            return false;
        }
        json_array_append_new(l->items, cp_user_view(u));
        snprintf(l->next, sizeof(l->next), "%.*s", (int)rest.len, rest.p);
    }
    json_decref(u);
    return true;
}

/* limit= (1..100, default 20) into *limit; false after answering 400. */
bool cp_page_limit(struct cp_call *c, size_t *limit)
{
    char b[16];
    long n = cp_query(c, "limit", b, sizeof(b));
    if (n == -2)
        return false;
    *limit = 20;
    if (n >= 0) {
        char *end;
        long v = strtol(b, &end, 10);
        if (n == 0 || *end != '\0' || v < 1 || v > 100) {
            cp_reply_error(c, 400, "bad query", "limit is 1 to 100");
            return false;
        }
        *limit = (size_t)v;
    }
    return true;
}

void cp_users_list(struct cp_call *c)
{
    struct list_ctx l = {.items = json_array()};
    char after[CP_ID_MAX + 1], role[16];
    long n = cp_query(c, "after", after, sizeof(after));
    long rn = n == -2 ? -2 : cp_query(c, "role", role, sizeof(role));
    if (rn == -2 || !cp_page_limit(c, &l.limit)) {
        json_decref(l.items);
        return;
    }
    l.after = n > 0 ? after : NULL;
    l.role = rn > 0 ? role : NULL;
    if (l.role != NULL && strcmp(l.role, "viewer") != 0 && strcmp(l.role, "operator") != 0) {
        json_decref(l.items);
        cp_reply_error(c, 400, "bad query", "role is viewer or operator");
        return;
    }
    if (cp_scan(c->cp, "user:", list_user, &l, c) != 0) {
        json_decref(l.items);
        return;
    }
    if (l.bad) {
        json_decref(l.items);
        cp_reply_store_error(c, "decoding a user record", NULL);
        return;
    }
    json_t *r = json_pack("{s:o}", "users", l.items);
    json_object_set_new(r, "next", l.more ? json_string(l.next) : json_null());
    cp_reply_json(c, 200, r);
}

/* The record of the user in the path: 1, or 0/-1 after answering 404/503. */
static int path_user(struct cp_call *c, json_t **u)
{
    char key[100];
    snprintf(key, sizeof(key), "user:%.*s", (int)c->arg[0].len, c->arg[0].p);
    int rc = cp_get_json(c->cp, key, u, c);
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such user");
    return rc;
}

void cp_users_get(struct cp_call *c)
{
    json_t *u = NULL;
    if (path_user(c, &u) != 1)
        return;
    cp_reply_json(c, 200, cp_user_view(u));
    json_decref(u);
}

void cp_users_patch(struct cp_call *c)
{
    static const char *const fields[] = {"display_name", "role", "password", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *name = cp_json_string(c, o, "display_name", false, 1, 100, &bad);
    const char *role = bad ? NULL : cp_json_string(c, o, "role", false, 1, 16, &bad);
    const char *pw = bad ? NULL : cp_json_string(c, o, "password", false, PW_MIN, PW_MAX, &bad);
    if (!bad && role != NULL && strcmp(role, "viewer") != 0 && strcmp(role, "operator") != 0) {
        bad = true;
        cp_reply_error(c, 422, "invalid field", "\"role\" is viewer or operator");
    }
    char hash[HASH_MAX];
    if (!bad && pw != NULL && cp_password_hash(c->conf, pw, strlen(pw), hash, sizeof(hash)) != 0) {
        bad = true;
        cp_reply_error(c, 500, "internal error", "password hashing failed");
    }
    if (bad) {
        json_decref(o);
        return;
    }
    struct cp *cp = c->cp;
    pthread_mutex_lock(&cp->mu);
    json_t *u = NULL;
    if (path_user(c, &u) != 1)
        goto out;
    const char *uid = json_string_value(json_object_get(u, "id"));
    char key[100];
    struct cp_batch b = {0};
    if (role != NULL && role_of(u) == CP_ROLE_OPERATOR && strcmp(role, "viewer") == 0) {
        int ops = operators(cp, c);
        if (ops < 0)
            goto out;
        if (ops <= 1) {
            cp_reply_error(c, 409, "last operator", "the last operator cannot become a viewer");
            goto out;
        }
    }
    if (role != NULL) {
        json_object_set_new(u, "role", json_string(role));
        snprintf(key, sizeof(key), "op:%s", uid);
        if (strcmp(role, "operator") == 0)
            cp_batch_put(&b, key, "", 0);
        else
            cp_batch_del(&b, key);
    }
    if (name != NULL)
        json_object_set_new(u, "display_name", json_string(name));
    if (pw != NULL) {
        /* A new password ends every session the old one opened. */
        json_object_set_new(u, "pw", json_string(hash));
        if (end_sessions(c, uid, &b) != 0) {
            cp_batch_free(&b);
            goto out;
        }
    }
    json_object_set_new(u, "updated", json_integer(c->now));
    snprintf(key, sizeof(key), "user:%s", uid);
    cp_batch_put_json(&b, key, u);
    if (cp_batch_commit(cp, &b, c) == 0)
        cp_reply_json(c, 200, cp_user_view(u));
out:
    pthread_mutex_unlock(&cp->mu);
    json_decref(u);
    json_decref(o);
}

void cp_users_delete(struct cp_call *c)
{
    struct cp *cp = c->cp;
    pthread_mutex_lock(&cp->mu);
    json_t *u = NULL;
    if (path_user(c, &u) != 1)
        goto out;
    if (role_of(u) == CP_ROLE_OPERATOR) {
        int ops = operators(cp, c);
        if (ops < 0)
            goto out;
        if (ops <= 1) {
            cp_reply_error(c, 409, "last operator", "the last operator cannot be deleted");
            goto out;
        }
    }
    const char *uid = json_string_value(json_object_get(u, "id"));
    char key[300];
    struct cp_batch b = {0};
    snprintf(key, sizeof(key), "user:%s", uid);
    cp_batch_del(&b, key);
    snprintf(key, sizeof(key), "op:%s", uid);
    cp_batch_del(&b, key);
    snprintf(key, sizeof(key), "email:%s", json_string_value(json_object_get(u, "email")));
    cp_batch_del(&b, key);
    if (end_sessions(c, uid, &b) != 0 || cp_user_cleanup(c, uid, &b) != 0) {
        cp_batch_free(&b);
        goto out;
    }
    if (cp_batch_commit(cp, &b, c) == 0)
        cp_reply_empty(c, 204);
out:
    pthread_mutex_unlock(&cp->mu);
    json_decref(u);
}

/* ---- the sweep ---- */

struct sweep_ctx {
    int64_t now;
    struct cp_batch *b;
    size_t ended;
};

static bool sweep_session(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct sweep_ctx *s = arg;
    json_t *o = json_loadb(val.p, val.len, 0, NULL);
    const char *uid = json_string_value(json_object_get(o, "uid"));
    if (o == NULL || json_integer_value(json_object_get(o, "expires")) <= s->now) {
        char key[200];
        snprintf(key, sizeof(key), "sess:%.*s", (int)TMT_MIN(rest.len, 100), rest.p);
        cp_batch_del(s->b, key);
        if (uid != NULL) {
            snprintf(key, sizeof(key), "usess:%s:%.*s", uid, (int)TMT_MIN(rest.len, 100), rest.p);
            cp_batch_del(s->b, key);
        }
        s->ended++;
    }
    json_decref(o);
    return true;
}

void cp_sessions_sweep(struct cp *cp, int64_t now)
{
    struct cp_batch b = {0};
    struct sweep_ctx s = {now, &b, 0};
    if (cp_scan(cp, "sess:", sweep_session, &s, NULL) == 0) {
        if (cp_batch_commit(cp, &b, NULL) == 0 && s.ended > 0)
            tmt_log(TMT_LOG_INFO, "control", "expired sessions removed", "count=%zu", s.ended);
    } else {
        cp_batch_free(&b);
    }
}
