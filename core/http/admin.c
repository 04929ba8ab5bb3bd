/*
 * admin.c: /metrics and /healthz (see admin.h). The exposition is formatted on the admin
 * listener's thread from the shards the workers write; nothing is locked.
 */
#include "tmt/admin.h"

#include <stdlib.h>

#include "tmt/metrics.h"
#include "tmt/server.h"

static void free_arg(void *arg)
{
    free(arg);
}

bool tmt_admin_serve(struct tmt_http_req *req, const struct tmt_metrics *m, bool healthy)
{
    bool metrics = tmt_http_slice_ieq(req->path, "/metrics");
    bool health = tmt_http_slice_ieq(req->path, "/healthz");
    if (!metrics && !health)
        return false;
    if (req->method != TMT_HTTP_GET && req->method != TMT_HTTP_HEAD) {
        tmt_http_respond_error(req, 405, "GET or HEAD");
        return true;
    }
    if (health) {
        if (healthy)
            tmt_http_respond(req, 200, "text/plain", "ok\n", 3);
        else
            tmt_http_respond(req, 503, "text/plain", "unhealthy\n", 10);
        return true;
    }
    size_t len = 0;
    char *text = tmt_metrics_format(m, &len);
    if (text == NULL) {
        tmt_http_respond_error(req, 503, "out of memory");
        return true;
    }
    static const struct tmt_http_header h[] = {
        {TMT_SLICE_LIT("Content-Type"), TMT_SLICE_LIT("text/plain; version=0.0.4")},
        {TMT_SLICE_LIT("Cache-Control"), TMT_SLICE_LIT("no-store")},
    };
    if (tmt_http_resp_start(req, 200, h, 2, (int64_t)len) != 0) {
        free(text);
        return true;
    }
    tmt_http_resp_ref(req, text, len, free_arg, text);
    tmt_http_resp_end(req);
    return true;
}
