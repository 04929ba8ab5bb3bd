/*
 * daemon_http.c: the HTTP side of every daemon (see daemon_http.h).
 */
#include "tmt/daemon_http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <strings.h>
#include <unistd.h>

#include "tmt/admin.h"
#include "tmt/log.h"
#include "tmt/metrics.h"
#include "tmt/secret.h"
#include "tmt/tls.h"

/* Answers 401/403 and returns false unless req carries the admin credential. */
static bool admin_authorized(struct tmt_daemon_http *dh, struct tmt_http_req *req)
{
    const char *why = NULL;
    if (dh->node_key_len != 0 &&
        tmt_secret_bearer_ok(req->headers, req->n_headers, dh->node_key, dh->node_key_len))
        return true;
    if (dh->admin_cred_len == 0 && dh->node_key_len == 0) {
        tmt_http_respond_error(req, 403,
                               "admin calls are disabled: set admin.credential_file in the config");
        why = "no credential configured";
    } else {
        if (dh->admin_cred_len != 0 &&
            tmt_secret_bearer_ok(req->headers, req->n_headers, dh->admin_cred, dh->admin_cred_len))
            return true;
        why = tmt_http_header_find(req->headers, req->n_headers, "authorization") == NULL
                  ? "no credential sent"
                  : "wrong credential";
        static const struct tmt_http_header challenge[] = {
            {TMT_SLICE_LIT("WWW-Authenticate"), TMT_SLICE_LIT("Bearer realm=\"admin\"")},
            {TMT_SLICE_LIT("Content-Type"), TMT_SLICE_LIT("text/plain")}};
        char body[96];
        int bl = snprintf(body, sizeof(body), "401 Unauthorized: %s\n", why);
        if (tmt_http_resp_start(req, 401, challenge, TMT_ARRAY_LEN(challenge), bl) == TMT_OK)
            tmt_http_resp_copy(req, body, (size_t)bl);
        tmt_http_resp_end(req);
    }
    tmt_log(TMT_LOG_WARN, "admin", "admin call refused", "client=%s path=%.*s why=\"%s\"",
            req->client, (int)TMT_MIN(req->path.len, 200), req->path.p, why);
    return false;
}

static void admin_handler(struct tmt_http_req *req, void *arg)
{
    struct tmt_daemon_http *dh = arg;
    if (tmt_admin_serve(req, dh->metrics, true))
        return;
    if (!admin_authorized(dh, req))
        return;
    if (dh->admin_handler != NULL) {
        dh->admin_handler(req, dh->admin_arg);
        return;
    }
    tmt_http_respond_error(req, 404, "no such admin path");
}

int tmt_daemon_http_init(struct tmt_daemon_http *dh, struct tmt_loop *loop,
                         const struct tmt_daemon_http_opts *o, struct tmt_err *err)
{
    memset(dh, 0, sizeof(*dh));
    dh->access_log_fd = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    dh->workers =
        o->daemon->workers > 0 ? (unsigned)o->daemon->workers : (unsigned)(ncpu > 0 ? ncpu : 1);
    dh->main_shard = dh->workers;
    dh->admin_handler = o->admin_handler;
    dh->admin_arg = o->admin_arg;
    const char *cred = o->daemon->admin_credential_file;
    if (cred != NULL && cred[0] != '\0' &&
        tmt_secret_load("admin.credential_file", cred, dh->admin_cred, &dh->admin_cred_len, err) !=
            TMT_OK)
        return err->code;

    const char *alog = o->http->access_log;
    if (alog[0] != '\0') {
        if (strcmp(alog, "-") == 0) {
            dh->access_log_fd = STDOUT_FILENO;
        } else {
            dh->access_log_fd = open(alog, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
            if (dh->access_log_fd < 0)
                return tmt_err_set_errno(err, TMT_EIO, errno, "log.access_log: %s", alog);
            dh->own_log_fd = true;
        }
    }

    dh->metrics = tmt_metrics_new(dh->workers + 1);
    struct tmt_server_opts so = {
        .name = o->name,
        .workers = dh->workers,
        .handler = o->handler,
        .handler_arg = o->handler_arg,
        .metrics = dh->metrics,
        .metrics_shard = 0,
        .access_log_fd = dh->access_log_fd,
        .on_done = o->on_done,
        .on_done_arg = o->on_done_arg,
    };
    tmt_http_conf_limits(o->http, &so.limits);
    dh->server = tmt_server_new(&so, err);
    if (dh->server == NULL)
        goto fail;
    int rc = tmt_server_listen(dh->server, o->listen, NULL, err);
    if (rc != 0)
        goto fail;
    if (o->tls_listen != NULL && o->tls_listen[0] != '\0') {
        struct tmt_tls *tls = tmt_tls_server_new(o->tls_cert, o->tls_key, err);
        if (tls == NULL)
            goto fail;
        dh->has_tls = true;
        rc = tmt_server_listen(dh->server, o->tls_listen, tls, err);
        tmt_tls_unref(&tls);
        if (rc != 0)
            goto fail;
    }
    if (o->admin_listen != NULL && o->admin_listen[0] != '\0') {
        struct tmt_server_opts ao = {
            .name = o->name,
            .loop = loop,
            .handler = admin_handler,
            .handler_arg = dh,
            .access_log_fd = -1,
        };
        tmt_server_limits_default(&ao.limits);
        ao.limits.max_connections = 256;
        dh->admin = tmt_server_new(&ao, err);
        if (dh->admin == NULL)
            goto fail;
        rc = tmt_server_listen(dh->admin, o->admin_listen, NULL, err);
        if (rc != 0)
            goto fail;
    }
    return TMT_OK;
fail:
    tmt_daemon_http_fini(dh);
    return err->code != 0 ? err->code : TMT_EIO;
}

int tmt_daemon_http_start(struct tmt_daemon_http *dh, struct tmt_err *err)
{
    tmt_metrics_seal(dh->metrics);
    int rc = tmt_server_start(dh->server, err);
    if (rc != 0)
        return rc;
    tmt_log(TMT_LOG_INFO, "http", "listening", "port=%u workers=%u",
            (unsigned)tmt_server_port(dh->server, 0), dh->workers);
    if (tmt_server_port(dh->server, 1) != 0)
        tmt_log(TMT_LOG_INFO, "http", "tls listening", "port=%u",
                (unsigned)tmt_server_port(dh->server, 1));
    if (dh->admin != NULL) {
        rc = tmt_server_start(dh->admin, err);
        if (rc != 0)
            return rc;
        tmt_log(TMT_LOG_INFO, "http", "admin listening", "port=%u",
                (unsigned)tmt_server_port(dh->admin, 0));
    }
    return TMT_OK;
}

int tmt_daemon_http_run(struct tmt_daemon_http *dh, struct tmt_loop *loop,
                        const struct tmt_daemon_http_opts *o)
{
    struct tmt_err err = {0};
    if (tmt_daemon_http_init(dh, loop, o, &err) != 0 || tmt_daemon_http_start(dh, &err) != 0) {
        tmt_log(TMT_LOG_ERROR, "http", "cannot start", "why=\"%s\"", err.msg);
        return -1;
    }
    return 0;
}

void tmt_daemon_http_reload(struct tmt_daemon_http *dh, const struct tmt_daemon_conf *daemon,
                            const struct tmt_http_conf *http, const char *tls_cert,
                            const char *tls_key)
{
    const char *cred = daemon->admin_credential_file;
    if (cred == NULL || cred[0] == '\0') {
        dh->admin_cred_len = 0;
    } else {
        struct tmt_err cerr = {0};
        char c[TMT_SECRET_MAX];
        size_t cl;
        if (tmt_secret_load("admin.credential_file", cred, c, &cl, &cerr) == TMT_OK) {
            memcpy(dh->admin_cred, c, cl);
            dh->admin_cred_len = cl;
        } else {
            tmt_log(TMT_LOG_ERROR, "admin", "credential reload rejected; the old one stays",
                    "why=\"%s\"", cerr.msg);
        }
    }
    struct tmt_server_limits l;
    tmt_http_conf_limits(http, &l);
    if (dh->server == NULL)
        return;
    tmt_server_set_limits(dh->server, &l);
    if (!dh->has_tls || tls_cert == NULL || tls_key == NULL)
        return;
    struct tmt_err err = {0};
    struct tmt_tls *tls = tmt_tls_server_new(tls_cert, tls_key, &err);
    if (tls == NULL) {
        tmt_log(TMT_LOG_ERROR, "tls", "certificate reload rejected; the old one stays",
                "why=\"%s\"", err.msg);
        return;
    }
    if (tmt_server_set_tls(dh->server, 1, tls) == 0)
        tmt_log(TMT_LOG_INFO, "tls", "certificate reloaded", "cert=%s", tls_cert);
    tmt_tls_unref(&tls);
}

void tmt_daemon_http_stop(struct tmt_daemon_http *dh)
{
    if (dh->admin != NULL)
        tmt_server_stop(dh->admin);
    if (dh->server != NULL)
        tmt_server_stop(dh->server);
}

void tmt_daemon_http_fini(struct tmt_daemon_http *dh)
{
    tmt_server_free(&dh->admin);
    tmt_server_free(&dh->server);
    tmt_metrics_free(&dh->metrics);
    if (dh->own_log_fd && dh->access_log_fd >= 0)
        close(dh->access_log_fd);
    dh->access_log_fd = -1;
}

void tmt_daemon_http_set_node_key(struct tmt_daemon_http *dh, const char *key, size_t len)
{
    if (len > sizeof(dh->node_key))
        len = 0;
    bool changed = len != dh->node_key_len || (len != 0 && memcmp(dh->node_key, key, len) != 0);
    OPENSSL_cleanse(dh->node_key, sizeof(dh->node_key));
    if (len != 0)
        memcpy(dh->node_key, key, len);
    dh->node_key_len = len;
    if (changed)
        tmt_log(TMT_LOG_INFO, "admin",
                len != 0 ? "control plane credential installed"
                         : "control plane credential removed",
                "%s", "");
}
