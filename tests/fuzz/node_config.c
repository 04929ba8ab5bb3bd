/*
 * Fuzz target: the node side's parser of the config the control plane sends (a node trusts its
 * control plane, but a broken or hostile answer must not crash it). Beyond not crashing: every
 * key handed on has a kid and a secret of an acceptable length, and every list entry is a string.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "tmt/node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct tmt_node_config *c, void *arg)
{
    (void)arg;
    FUZZ_CHECK("node_config", c->id != NULL && c->role != NULL);
    FUZZ_CHECK("node_config", c->heartbeat_interval_ms >= 1000);
    for (size_t i = 0; i < c->n_keys; i++) {
        FUZZ_CHECK("node_config", c->keys[i].kid[0] != '\0');
        FUZZ_CHECK("node_config", c->keys[i].secret_len >= TMT_TOKEN_SECRET_MIN &&
                                      c->keys[i].secret_len <= TMT_TOKEN_SECRET_MAX);
    }
    for (size_t i = 0; i < c->n_shields; i++)
        FUZZ_CHECK("node_config", c->shields[i] != NULL);
    for (size_t i = 0; i < c->n_revoked; i++)
        FUZZ_CHECK("node_config", c->revoked[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_dup(data, size);
    struct tmt_err err;
    tmt_err_clear(&err);
    (void)tmt_node_config_parse(text, size, check, NULL, &err);
    free(text);
    return 0;
}
