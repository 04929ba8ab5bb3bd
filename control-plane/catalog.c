/*
 * catalog.c: shows.
 *
 * Store keys:
 *   show:{sid}  {"id","title","description","genres","languages","duration","state","asset_id",
 *                "created","updated"}
 *
 * A show is the catalog entry; its asset_id names the immutable packaged media it plays now
 * (INTERFACES.md, "Identifiers"). States: draft, processing, published, failed; operators move
 * shows between draft and published (published needs an asset), ingest jobs set processing and
 * failed. Viewers see published shows only. Listing scans the shows in id order (ids sort by
 * creation time) and filters: fine for catalogs of thousands, not millions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp.h"

#define SHOW_ID_MAX 48
#define LIST_MAX 16

static const char *const states[] = {"draft", "processing", "published", "failed", NULL};

json_t *cp_show_view(const struct cp_call *c, json_t *s)
{
    json_t *v = json_deep_copy(s);
    json_object_del(v, "created");
    json_object_del(v, "updated");
    json_object_set_new(v, "created_at",
                        cp_time_json(json_integer_value(json_object_get(s, "created"))));
    json_object_set_new(v, "updated_at",
                        cp_time_json(json_integer_value(json_object_get(s, "updated"))));
    const char *asset = json_string_value(json_object_get(s, "asset_id"));
    if (asset != NULL && asset[0] != '\0') {
        char u[600];
        snprintf(u, sizeof(u), "%s/r/%s/master.m3u8", c->conf->public_url, asset);
        json_object_set_new(v, "hls_url", json_string(u));
        snprintf(u, sizeof(u), "%s/r/%s/manifest.mpd", c->conf->public_url, asset);
        json_object_set_new(v, "dash_url", json_string(u));
    } else {
        json_object_set_new(v, "hls_url", json_null());
        json_object_set_new(v, "dash_url", json_null());
    }
    return v;
}

/* A list of 0..LIST_MAX strings accepted by ok(), or absent. false after answering. */
static bool string_list(struct cp_call *c, json_t *o, const char *name, bool (*ok)(const char *),
                        json_t *show)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL)
        return true;
    if (!json_is_array(v) || json_array_size(v) > LIST_MAX) {
        cp_reply_error(c, json_is_array(v) ? 422 : 400,
                       json_is_array(v) ? "invalid field" : "wrong type",
                       "\"%s\" is an array of at most %d strings", name, LIST_MAX);
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL) {
            cp_reply_error(c, 400, "wrong type", "\"%s\" holds strings only", name);
            return false;
        }
        if (json_string_length(e) == 0 || json_string_length(e) > 40 || !ok(s)) {
            cp_reply_error(c, 422, "invalid field", "\"%s\" item %zu is not valid", name, i);
            return false;
        }
    }
    json_object_set(show, name, v);
    return true;
}

static bool genre_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20)
            return false;
    return true;
}

/*
 * Applies the fields of o to show. `replace` (PUT): every writable field is set, absent ones to
 * their defaults. false after answering.
 */
static bool show_apply(struct cp_call *c, json_t *show, json_t *o, bool replace)
{
    bool bad;
    const char *title = cp_json_string(c, o, "title", replace, 1, 200, &bad);
    if (bad)
        return false;
    const char *desc = cp_json_string(c, o, "description", false, 0, 5000, &bad);
    if (bad)
        return false;
    const char *asset = cp_json_string(c, o, "asset_id", false, 0, CP_ID_MAX, &bad);
    if (bad)
        return false;
    if (asset != NULL && asset[0] != '\0' &&
        !cp_id_ok((struct tmt_slice){asset, strlen(asset)}, CP_ID_MAX)) {
        cp_reply_error(c, 422, "invalid field", "\"asset_id\" is 1 to 64 of [A-Za-z0-9_-]");
        return false;
    }
    const char *state = cp_json_string(c, o, "state", false, 1, 16, &bad);
    if (bad)
        return false;
    if (replace) {
        json_object_set_new(show, "description", json_string(""));
        json_object_set_new(show, "genres", json_array());
        json_object_set_new(show, "languages", json_array());
        json_object_set_new(show, "duration", json_real(0));
        json_object_set_new(show, "asset_id", json_string(""));
        json_object_set_new(show, "state", json_string("draft"));
    }
    if (!string_list(c, o, "genres", genre_ok, show) ||
        !string_list(c, o, "languages", cp_lang_ok, show))
        return false;
    json_t *d = json_object_get(o, "duration");
    if (d != NULL) {
        if (!json_is_number(d)) {
            cp_reply_error(c, 400, "wrong type", "\"duration\" is a number of seconds");
            return false;
        }
        double sec = json_number_value(d);
        if (!(sec >= 0 && sec <= 1e7)) {
            cp_reply_error(c, 422, "invalid field", "\"duration\" is 0 to 10000000 seconds");
            return false;
        }
        json_object_set_new(show, "duration", json_real(round(sec * 1000) / 1000));
    }
    if (title != NULL)
        json_object_set_new(show, "title", json_string(title));
    if (desc != NULL)
        json_object_set_new(show, "description", json_string(desc));
    if (asset != NULL)
        json_object_set_new(show, "asset_id", json_string(asset));
    if (state != NULL) {
        bool known = false;
        for (size_t i = 0; states[i] != NULL; i++)
            known = known || strcmp(states[i], state) == 0;
        if (!known) {
            cp_reply_error(c, 422, "invalid field",
                           "\"state\" is draft, processing, published or failed");
            return false;
        }
        if (strcmp(state, "processing") == 0 || strcmp(state, "failed") == 0) {
            cp_reply_error(c, 422, "invalid field",
                           "\"state\" %s is set by ingest jobs, not by hand", state);
            return false;
        }
        json_object_set_new(show, "state", json_string(state));
    }
    const char *st = json_string_value(json_object_get(show, "state"));
    const char *as = json_string_value(json_object_get(show, "asset_id"));
    if (st != NULL && strcmp(st, "published") == 0 && (as == NULL || as[0] == '\0')) {
        cp_reply_error(c, 409, "no asset", "a show needs an asset_id to be published");
        return false;
    }
    return true;
}

void cp_shows_create(struct cp_call *c)
{
    static const char *const fields[] = {
        "id", "title", "description", "genres", "languages", "duration", "asset_id", "state", NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    bool bad;
    const char *id = cp_json_string(c, o, "id", false, 1, SHOW_ID_MAX, &bad);
    if (bad) {
        json_decref(o);
        return;
    }
    if (id != NULL && !cp_show_id_ok(id)) {
        json_decref(o);
        cp_reply_error(c, 422, "invalid field", "\"id\" is 1 to %d of [A-Za-z0-9_]", SHOW_ID_MAX);
        return;
    }
    char sid[SHOW_ID_MAX + 1];
    if (id != NULL)
        snprintf(sid, sizeof(sid), "%s", id);
    else
        cp_new_id('s', sid);
    json_t *show =
        json_pack("{s:s, s:s, s:s, s:[], s:[], s:f, s:s, s:s, s:I, s:I}", "id", sid, "title", "",
                  "description", "", "genres", "languages", "duration", 0.0, "state", "draft",
                  "asset_id", "", "created", (json_int_t)c->now, "updated", (json_int_t)c->now);
    if (!show_apply(c, show, o, true)) {
        json_decref(show);
        json_decref(o);
        return;
    }
    json_decref(o);
    char key[80];
    snprintf(key, sizeof(key), "show:%s", sid);
    pthread_mutex_lock(&c->cp->mu);
    json_t *old = NULL;
    int rc = cp_get_json(c->cp, key, &old, c);
    if (rc == 1) {
        cp_reply_error(c, 409, "exists", "a show with id %s exists", sid);
        json_decref(old);
    } else if (rc == 0) {
        struct cp_batch b = {0};
        cp_batch_put_json(&b, key, show);
        if (cp_batch_commit(c->cp, &b, c) == 0) {
            cp_add_header(c, "Location", "/v1/shows/%s", sid);
            cp_reply_json(c, 201, cp_show_view(c, show));
        }
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(show);
}

/* The show in the path; viewers see published ones only. 1, or 0/-1 after answering. */
static int path_show(struct cp_call *c, json_t **s)
{
    char key[100];
    snprintf(key, sizeof(key), "show:%.*s", (int)c->arg[0].len, c->arg[0].p);
    int rc = cp_get_json(c->cp, key, s, c);
    if (rc == 1 && c->role != CP_ROLE_OPERATOR &&
        strcmp(json_string_value(json_object_get(*s, "state")) ?: "", "published") != 0) {
        json_decref(*s);
        *s = NULL;
        rc = 0;
    }
    if (rc == 0)
        cp_reply_error(c, 404, "not found", "no such show");
    return rc;
}

void cp_shows_get(struct cp_call *c)
{
    json_t *s = NULL;
    if (path_show(c, &s) != 1)
        return;
    cp_reply_json(c, 200, cp_show_view(c, s));
    json_decref(s);
}

static void update(struct cp_call *c, bool replace)
{
    static const char *const fields[] = {"title",    "description", "genres", "languages",
                                         "duration", "asset_id",    "state",  NULL};
    json_t *o = cp_body_object(c, fields);
    if (o == NULL)
        return;
    pthread_mutex_lock(&c->cp->mu);
    json_t *s = NULL;
    if (path_show(c, &s) == 1 && show_apply(c, s, o, replace)) {
        json_object_set_new(s, "updated", json_integer(c->now));
        char key[100];
        snprintf(key, sizeof(key), "show:%.*s", (int)c->arg[0].len, c->arg[0].p);
        struct cp_batch b = {0};
        cp_batch_put_json(&b, key, s);
        if (cp_batch_commit(c->cp, &b, c) == 0)
            cp_reply_json(c, 200, cp_show_view(c, s));
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(s);
    json_decref(o);
}

void cp_shows_put(struct cp_call *c)
{
    update(c, true);
}

void cp_shows_patch(struct cp_call *c)
{
    update(c, false);
}

void cp_shows_delete(struct cp_call *c)
{
    pthread_mutex_lock(&c->cp->mu);
    json_t *s = NULL;
    if (path_show(c, &s) == 1) {
        char key[100];
        snprintf(key, sizeof(key), "show:%.*s", (int)c->arg[0].len, c->arg[0].p);
        struct cp_batch b = {0};
        cp_batch_del(&b, key);
        if (cp_batch_commit(c->cp, &b, c) == 0)
            cp_reply_empty(c, 204);
    }
    pthread_mutex_unlock(&c->cp->mu);
    json_decref(s);
}

/* ---- listing ---- */

struct list_ctx {
    const struct cp_call *c;
    json_t *items;
    size_t limit;
    const char *after, *q, *genre, *language, *state;
    char next[SHOW_ID_MAX + 1];
    bool bad, more;
};

/* ASCII case-insensitive substring. */
static bool contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return n == 0;
}

static bool has_item(json_t *arr, const char *want)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(e);
        if (s != NULL && strcasecmp(s, want) == 0)
            return true;
    }
    return false;
}

static bool list_show(void *arg, struct tmt_slice rest, struct tmt_slice val)
{
    struct list_ctx *l = arg;
    if (l->after != NULL && cp_slice_cmp(rest, l->after) <= 0)
        return true;
    json_t *s = json_loadb(val.p, val.len, 0, NULL);
    if (s == NULL) {
        l->bad = true;
        return false;
    }
    const char *st = json_string_value(json_object_get(s, "state")) ?: "";
    bool keep = l->state == NULL || strcmp(st, l->state) == 0;
    if (keep && l->q != NULL)
        keep = contains(json_string_value(json_object_get(s, "title")) ?: "", l->q) ||
               contains(json_string_value(json_object_get(s, "description")) ?: "", l->q);
    if (keep && l->genre != NULL)
        keep = has_item(json_object_get(s, "genres"), l->genre);
    if (keep && l->language != NULL)
        keep = has_item(json_object_get(s, "languages"), l->language);
    bool more = true;
    if (keep) {
        if (json_array_size(l->items) == l->limit) {
            more = false;
            l->more = true;
        } else {
            json_array_append_new(l->items, cp_show_view(l->c, s));
            snprintf(l->next, sizeof(l->next), "%.*s", (int)rest.len, rest.p);
        }
    }
    json_decref(s);
    return more;
}

void cp_shows_list(struct cp_call *c)
{
    char after[SHOW_ID_MAX + 1], q[201], genre[41], lang[41], state[17];
    long na = cp_query(c, "after", after, sizeof(after));
    long nq = na == -2 ? -2 : cp_query(c, "q", q, sizeof(q));
    long ng = nq == -2 ? -2 : cp_query(c, "genre", genre, sizeof(genre));
    long nl = ng == -2 ? -2 : cp_query(c, "language", lang, sizeof(lang));
    long ns = nl == -2 ? -2 : cp_query(c, "state", state, sizeof(state));
    struct list_ctx l = {.c = c};
    if (ns == -2 || !cp_page_limit(c, &l.limit))
        return;
    l.after = na > 0 ? after : NULL;
    l.q = nq > 0 ? q : NULL;
    l.genre = ng > 0 ? genre : NULL;
    l.language = nl > 0 ? lang : NULL;
    l.state = ns > 0 ? state : NULL;
    if (l.state != NULL) {
        bool known = false;
        for (size_t i = 0; states[i] != NULL; i++)
            known = known || strcmp(states[i], l.state) == 0;
        if (!known) {
            cp_reply_error(c, 400, "bad query", "state is draft, processing, published or failed");
            return;
        }
    }
    if (c->role != CP_ROLE_OPERATOR) {
        if (l.state != NULL && strcmp(l.state, "published") != 0) {
            cp_reply_error(c, 403, "forbidden", "viewers see published shows only");
            return;
        }
        l.state = "published";
    }
    l.items = json_array();
    if (cp_scan(c->cp, "show:", list_show, &l, c) != 0) {
        json_decref(l.items);
        return;
    }
    if (l.bad) {
        json_decref(l.items);
        cp_reply_store_error(c, "decoding a show", NULL);
        return;
    }
    json_t *r = json_pack("{s:o}", "shows", l.items);
    json_object_set_new(r, "next", l.more ? json_string(l.next) : json_null());
    cp_reply_json(c, 200, r);
}
