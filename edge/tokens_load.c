/*
 * tokens_load.c: what the token gate is loaded with besides the node agent's pushes (see
 * tokens.h): keys files (tokens.keys_file, read at start and on reload) and the revocation list
 * of the admin call POST /tokens/revoked. Both parse everything before installing anything, so
 * a bad file or body changes nothing; secrets are wiped from the buffers that held them and never
 * appear in messages.
 */
#include "tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmt/server.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- keys files ---- */

static bool kid_ok(const char *p, size_t len)
{
    if (len == 0 || len > TMT_TOKEN_KID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int edge_tokens_parse_keys(const char *name, const char *text, size_t len,
                           struct tmt_token_key *keys, size_t cap, size_t *n, struct tmt_err *err)
{
    size_t pos = 0, line = 0, count = 0;
    *n = 0;
    while (pos < len) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        while (ll > 0 && (blank(s[ll - 1]) || s[ll - 1] == '\r'))
            ll--;
        size_t i = 0;
        while (i < ll && blank(s[i]))
            i++;
        if (i == ll || s[i] == '#')
            continue;
        size_t k0 = i;
        while (i < ll && !blank(s[i]))
            i++;
        size_t kl = i - k0;
        while (i < ll && blank(s[i]))
            i++;
        size_t s0 = i;
        while (i < ll && !blank(s[i]))
            i++;
        size_t sl = i - s0;
        while (i < ll && blank(s[i]))
            i++;
        if (sl == 0 || i < ll)
            return tmt_err_set(err, TMT_EINVAL, "%s:%zu: want two fields: KID SECRET", name, line);
        if (!kid_ok(s + k0, kl))
            return tmt_err_set(err, TMT_EINVAL, "%s:%zu: a key id is 1 to %d of [A-Za-z0-9_-]",
                               name, line, TMT_TOKEN_KID_MAX);
        for (size_t j = 0; j < count; j++) {
            if (strlen(keys[j].kid) == kl && memcmp(keys[j].kid, s + k0, kl) == 0)
                return tmt_err_set(err, TMT_EINVAL, "%s:%zu: key id %.*s appears twice", name, line,
                                   (int)kl, s + k0);
        }
        unsigned char secret[TMT_TOKEN_SECRET_MAX + 3];
        long d = sl <= (TMT_TOKEN_SECRET_MAX + 2) / 3 * 4
                     ? tmt_b64url_decode(s + s0, sl, secret, sizeof(secret))
                     : (long)sizeof(secret);
        if (d < 0)
            return tmt_err_set(err, TMT_EINVAL,
                               "%s:%zu: the secret of key %.*s is not base64url without padding",
                               name, line, (int)kl, s + k0);
        if (d < TMT_TOKEN_SECRET_MIN || d > TMT_TOKEN_SECRET_MAX) {
            explicit_bzero(secret, sizeof(secret));
            return tmt_err_set(err, TMT_EINVAL,
                               "%s:%zu: the secret of key %.*s must decode to %d to %d bytes", name,
                               line, (int)kl, s + k0, TMT_TOKEN_SECRET_MIN, TMT_TOKEN_SECRET_MAX);
        }
        if (count == cap) {
            explicit_bzero(secret, sizeof(secret));
            return tmt_err_set(err, TMT_ELIMIT, "%s:%zu: more than %zu keys", name, line, cap);
        }
        struct tmt_token_key *k = &keys[count++];
        memset(k, 0, sizeof(*k));
        memcpy(k->kid, s + k0, kl);
        memcpy(k->secret, secret, (size_t)d);
        k->secret_len = (size_t)d;
        explicit_bzero(secret, sizeof(secret));
    }
    *n = count;
    return TMT_OK;
}

int edge_tokens_load_keys_file(struct edge_tokens *t, const char *path, struct tmt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tmt_err_set_errno(err, TMT_EIO, errno, "tokens.keys_file: %s", path);
    char *text = tmt_xmalloc(EDGE_TOKENS_KEYS_FILE_MAX + 1);
    size_t len = 0;
    int rc = TMT_OK;
    for (;;) {
        ssize_t r = read(fd, text + len, EDGE_TOKENS_KEYS_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = tmt_err_set_errno(err, TMT_EIO, errno, "tokens.keys_file: %s", path);
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > EDGE_TOKENS_KEYS_FILE_MAX) {
            rc = tmt_err_set(err, TMT_ELIMIT, "tokens.keys_file: %s: larger than %d bytes", path,
                             EDGE_TOKENS_KEYS_FILE_MAX);
            break;
        }
    }
    close(fd);
    struct tmt_token_key *keys = NULL;
    size_t n = 0;
    if (rc == TMT_OK) {
        keys = tmt_xcalloc(EDGE_TOKENS_KEYS_MAX, sizeof(*keys));
        rc = edge_tokens_parse_keys(path, text, len, keys, EDGE_TOKENS_KEYS_MAX, &n, err);
    }
    explicit_bzero(text, len);
    free(text);
    if (rc == TMT_OK)
        edge_tokens_set_keys(t, keys, n);
    if (keys != NULL) {
        explicit_bzero(keys, EDGE_TOKENS_KEYS_MAX * sizeof(*keys));
        free(keys);
    }
    return rc;
}

void edge_tokens_admin_revoked(struct tmt_http_req *req, struct edge_tokens *t)
{
    if (req->method != TMT_HTTP_POST) {
        tmt_http_respond_error(req, 405, "use POST /tokens/revoked with one lease id per line");
        return;
    }
    const char *b = req->body.p;
    size_t len = req->body.len, lines = 0, n = 0;
    for (size_t i = 0; i < len; i++)
        lines += b[i] == '\n';
    char *copy = tmt_xmalloc(len + 1);
    const char **ids = tmt_xcalloc(lines + 1, sizeof(*ids));
    if (len > 0)
        memcpy(copy, b, len);
    copy[len] = '\0';
    size_t pos = 0, line = 0;
    while (pos < len) {
        line++;
        char *s = copy + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        while (ll > 0 && (blank(s[ll - 1]) || s[ll - 1] == '\r'))
            ll--;
        while (ll > 0 && blank(*s)) {
            s++;
            ll--;
        }
        if (ll == 0)
            continue;
        bool ok = ll <= TMT_TOKEN_STR_MAX;
        for (size_t i = 0; ok && i < ll; i++)
            ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
        if (!ok) {
            char why[128];
            snprintf(why, sizeof(why), "line %zu: a lease id is 1 to %d bytes without controls",
                     line, TMT_TOKEN_STR_MAX);
            tmt_http_respond_error(req, 400, why);
            free(ids);
            free(copy);
            return;
        }
        s[ll] = '\0';
        ids[n++] = s;
    }
    edge_tokens_set_revoked(t, ids, n);
    char body[64];
    int bl = snprintf(body, sizeof(body), "{\"revoked\":%zu}\n", n);
    tmt_http_respond(req, 200, "application/json", body, (size_t)bl);
    free(ids);
    free(copy);
}
