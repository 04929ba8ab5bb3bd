/*
 * control.c: viewer tokens from the control plane (control.url). Before the workers start, the
 * main thread logs every account of control.accounts in once (POST /v1/sessions) and finds or
 * registers the devices its viewers use (GET, POST /v1/devices: "tomato-load-{slot}", one per
 * viewer of the account); viewer g uses account g / control.devices_per_account, device slot
 * g % control.devices_per_account. Each viewer session then asks for playback of its show
 * (POST /v1/playback from the worker's loop, viewer.c) and plays the asset of the answer with its
 * token. A device that plays renews its own lease, so an account never holds more live leases
 * than it has viewers, which control.devices_per_account keeps within the device limit.
 *
 * The preparation runs its calls one after the other on a loop of its own; a 429 (rate limit of
 * logins per address) waits for Retry-After and tries again.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load_int.h"
#include "tmt/loop.h"

#define CP_BODY_MAX (256 * 1024)

struct cp_result {
    struct tmt_loop *loop;
    int rc, status;
    uint64_t retry_after_s;
    char *body;
    size_t len;
    char msg[TMT_ERR_MSG_MAX];
};

static void cp_on_head(void *arg, const struct tmt_http_client_resp *resp)
{
    struct cp_result *r = arg;
    r->status = resp->status;
    const struct tmt_http_header *h =
        tmt_http_header_find(resp->headers, resp->n_headers, "retry-after");
    if (h != NULL) {
        uint64_t v = 0;
        for (size_t i = 0; i < h->value.len && i < 9; i++) {
            if (h->value.p[i] < '0' || h->value.p[i] > '9')
                break;
            v = v * 10 + (uint64_t)(h->value.p[i] - '0');
        }
        r->retry_after_s = v;
    }
}

static void cp_on_data(void *arg, const char *p, size_t len)
{
    struct cp_result *r = arg;
    if (r->len + len > CP_BODY_MAX)
        return;
    r->body = tmt_xrealloc(r->body, r->len + len + 1);
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
}

static void cp_on_done(void *arg, int rc, const struct tmt_err *err)
{
    struct cp_result *r = arg;
    r->rc = rc;
    snprintf(r->msg, sizeof(r->msg), "%s", rc != 0 ? err->msg : "");
    tmt_loop_stop(r->loop);
}

/* One call, waited for; a 429 waits for Retry-After (at most 120 s a time) and goes again. */
static json_t *cp_call(struct tmt_http_client *cl, struct tmt_loop *loop, const struct load_plan *p,
                       enum tmt_http_method m, const char *path, const char *bearer,
                       const char *body, int *status, char *why, size_t wn)
{
    for (;;) {
        struct cp_result r = {.loop = loop};
        char auth[128];
        struct tmt_http_header hs[2];
        size_t nh = 0;
        if (bearer != NULL) {
            snprintf(auth, sizeof(auth), "Bearer %s", bearer);
            hs[nh++] = (struct tmt_http_header){{"Authorization", 13}, {auth, strlen(auth)}};
        }
        if (body != NULL)
            hs[nh++] = (struct tmt_http_header){{"Content-Type", 12}, {"application/json", 16}};
        struct tmt_http_client_req req = {.upstream = p->control_upstream,
                                          .method = m,
                                          .path = {path, strlen(path)},
                                          .headers = hs,
                                          .n_headers = nh,
                                          .body = {body, body != NULL ? strlen(body) : 0}};
        static const struct tmt_http_client_cbs cbs = {cp_on_head, cp_on_data, cp_on_done};
        (void)tmt_http_client_fetch(cl, &req, &cbs, &r);
        if (tmt_loop_run(loop) != 0 && r.rc == 0)
            r.rc = TMT_EIO;
        if (r.rc != 0) {
            snprintf(why, wn, "%s", r.msg);
            free(r.body);
            return NULL;
        }
        if (r.status == 429) {
            uint64_t s = TMT_MIN(TMT_MAX(r.retry_after_s, (uint64_t)1), (uint64_t)120);
            fprintf(stderr, "tomato-load: control plane: %s: rate limited, waiting %llu s\n", path,
                    (unsigned long long)s);
            free(r.body);
            struct timespec ts = {(time_t)s, 0};
            nanosleep(&ts, NULL);
            continue;
        }
        *status = r.status;
        json_t *doc = r.len > 0 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        if (r.status < 200 || r.status >= 300) {
            snprintf(why, wn, "%s answered %d: %.200s", path, r.status, r.body ? r.body : "");
            json_decref(doc);
            doc = NULL;
        } else if (doc == NULL) {
            snprintf(why, wn, "%s: the answer is not JSON", path);
        }
        free(r.body);
        return doc;
    }
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* Reads control.accounts: "email password" per line; # comments and blank lines skipped. */
static int read_accounts(const char *path, char ***emails, char ***passwords, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[2048];
    size_t cap = 0;
    *n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *e = line + strspn(line, " \t");
        if (*e == '\0' || *e == '#')
            continue;
        char *sp = e + strcspn(e, " \t");
        if (*sp == '\0')
            continue;
        *sp++ = '\0';
        sp += strspn(sp, " \t");
        if (*sp == '\0')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *emails = tmt_xrealloc(*emails, cap * sizeof(char *));
            *passwords = tmt_xrealloc(*passwords, cap * sizeof(char *));
        }
        (*emails)[*n] = tmt_xstrdup(e);
        (*passwords)[*n] = tmt_xstrdup(sp);
        (*n)++;
    }
    fclose(f);
    return 0;
}

int load_control_prepare(struct load_plan *p)
{
    const struct load_conf *c = p->conf;
    size_t viewers = (size_t)c->viewers, per = (size_t)c->devices_per_account;
    size_t need = (viewers + per - 1) / per, n_acc = 0;
    char **emails = NULL, **passwords = NULL;
    if (read_accounts(c->accounts, &emails, &passwords, &n_acc) != 0) {
        fprintf(stderr, "tomato-load: control.accounts: cannot read %s\n", c->accounts);
        return -1;
    }
    int rc = -1;
    struct tmt_loop *loop = NULL;
    struct tmt_http_client *cl = NULL;
    if (n_acc < need) {
        fprintf(stderr,
                "tomato-load: control.accounts: %zu viewers at %zu per account need %zu accounts, "
                "%s has %zu\n",
                viewers, per, need, c->accounts, n_acc);
        goto out;
    }
    loop = tmt_loop_new();
    struct tmt_http_client_opts o;
    tmt_http_client_opts_default(&o);
    o.connect_timeout_ms = c->connect_timeout_ms;
    o.response_timeout_ms = o.read_timeout_ms = TMT_MAX(c->timeout_ms, (uint64_t)30000);
    cl = tmt_http_client_new(loop, &o);
    p->creds = tmt_xcalloc(viewers, sizeof(*p->creds));
    for (size_t a = 0; a < need; a++) {
        char why[512], body[2048];
        int st = 0;
        json_t *jb = json_pack("{s:s, s:s}", "email", emails[a], "password", passwords[a]);
        char *js = json_dumps(jb, JSON_COMPACT);
        json_decref(jb);
        json_t *s =
            cp_call(cl, loop, p, TMT_HTTP_POST, "/v1/sessions", NULL, js, &st, why, sizeof(why));
        free(js);
        if (s == NULL) {
            fprintf(stderr, "tomato-load: control plane: login of %s: %s\n", emails[a], why);
            goto out;
        }
        char session[128];
        snprintf(session, sizeof(session), "%s", jstr(s, "token"));
        json_decref(s);
        json_t *devs =
            cp_call(cl, loop, p, TMT_HTTP_GET, "/v1/devices", session, NULL, &st, why, sizeof(why));
        if (devs == NULL) {
            fprintf(stderr, "tomato-load: control plane: devices of %s: %s\n", emails[a], why);
            goto out;
        }
        for (size_t slot = 0; slot < per && a * per + slot < viewers; slot++) {
            struct load_cred *cr = &p->creds[a * per + slot];
            char name[64];
            snprintf(name, sizeof(name), "tomato-load-%zu", slot);
            size_t i;
            json_t *d;
            json_array_foreach(json_object_get(devs, "devices"), i, d)
            {
                if (strcmp(jstr(d, "name"), name) == 0) {
                    snprintf(cr->device, sizeof(cr->device), "%s", jstr(d, "id"));
                    break;
                }
            }
            if (cr->device[0] == '\0') {
                snprintf(body, sizeof(body), "{\"name\":\"%s\",\"type\":\"other\"}", name);
                json_t *nd = cp_call(cl, loop, p, TMT_HTTP_POST, "/v1/devices", session, body, &st,
                                     why, sizeof(why));
                if (nd == NULL) {
                    fprintf(stderr, "tomato-load: control plane: a device for %s: %s\n", emails[a],
                            why);
                    json_decref(devs);
                    goto out;
                }
                snprintf(cr->device, sizeof(cr->device), "%s", jstr(nd, "id"));
                json_decref(nd);
            }
            snprintf(cr->session, sizeof(cr->session), "%s", session);
            if (cr->device[0] == '\0' || cr->session[0] == '\0') {
                fprintf(stderr, "tomato-load: control plane: no session or device id for %s\n",
                        emails[a]);
                json_decref(devs);
                goto out;
            }
        }
        json_decref(devs);
    }
    fprintf(stderr, "tomato-load: control plane: %zu account(s) logged in, %zu device(s)\n", need,
            viewers);
    rc = 0;
out:
    tmt_http_client_free(&cl);
    tmt_loop_free(&loop);
    for (size_t i = 0; i < n_acc; i++) {
        free(emails[i]);
        free(passwords[i]);
    }
    free(emails);
    free(passwords);
    return rc;
}

static bool path_safe(const char *s, size_t cap)
{
    size_t n = strlen(s);
    return n > 0 && n < cap && strcspn(s, "/?#% \t\"\\") == n;
}

bool load_control_parse_playback(const char *body, size_t len, char *token, size_t tn, char *asset,
                                 size_t an, char *lease, size_t ln)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    if (doc == NULL)
        return false;
    const char *t = jstr(doc, "token"), *a = jstr(doc, "asset_id"), *l = jstr(doc, "lease_id");
    bool ok = path_safe(t, tn) && path_safe(a, an) && path_safe(l, ln);
    if (ok) {
        memcpy(token, t, strlen(t) + 1);
        memcpy(asset, a, strlen(a) + 1);
        memcpy(lease, l, strlen(l) + 1);
    }
    json_decref(doc);
    return ok;
}
