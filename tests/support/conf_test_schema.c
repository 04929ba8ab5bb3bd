/*
 * conf_test_schema.c: see conf_test_schema.h. `check` requires t.peers when t.flag is on, to
 * exercise cross-key checks.
 */
#include "conf_test_schema.h"

#include <stddef.h>

static const struct tmt_conf_key test_keys[] = {
    {"t", "name", TMT_CONF_STR, offsetof(struct conf_test, name), "anon", 0, 0, NULL,
     TMT_CONF_RELOADABLE, "a string"},
    {"t", "dir", TMT_CONF_PATH, offsetof(struct conf_test, dir), "/var/tmp", 0, 0, NULL, 0,
     "a path"},
    {"t", "flag", TMT_CONF_BOOL, offsetof(struct conf_test, flag), "false", 0, 0, NULL,
     TMT_CONF_RELOADABLE, "a boolean"},
    {"t", "count", TMT_CONF_INT, offsetof(struct conf_test, count), "7", -5, 100, NULL,
     TMT_CONF_RELOADABLE, "an integer"},
    {"u", "budget", TMT_CONF_SIZE, offsetof(struct conf_test, budget), "64M", 1024,
     (int64_t)1 << 40, NULL, TMT_CONF_RELOADABLE, "a size"},
    {"u", "timeout", TMT_CONF_DURATION, offsetof(struct conf_test, timeout_ms), "10s", 1, 86400000,
     NULL, TMT_CONF_RELOADABLE, "a duration"},
    {"u", "mode", TMT_CONF_ENUM, offsetof(struct conf_test, mode), "fast", 0, 0, "slow|fast|auto",
     TMT_CONF_RELOADABLE, "an enum"},
    {"net", "addr", TMT_CONF_ADDR, offsetof(struct conf_test, addr), "127.0.0.1:8080", 0, 0, NULL,
     0, "an address"},
    {"net", "url", TMT_CONF_URL, offsetof(struct conf_test, url), "http://127.0.0.1:8300", 0, 0,
     NULL, TMT_CONF_RELOADABLE, "a URL"},
    {"net", "peers", TMT_CONF_LIST, offsetof(struct conf_test, peers), "", 0, 4, NULL,
     TMT_CONF_RELOADABLE, "a list"},
    {"net", "needed", TMT_CONF_STR, offsetof(struct conf_test, needed), NULL, 0, 0, NULL,
     TMT_CONF_REQUIRED | TMT_CONF_RELOADABLE, "a required key"},
};

static void test_check(const void *settings, struct tmt_conf_check *chk)
{
    const struct conf_test *c = settings;
    if (c->flag && c->peers.n == 0)
        tmt_conf_check_fail(chk, "t.flag", "needs net.peers");
}

static const struct tmt_conf_part test_parts[] = {
    TMT_DAEMON_CONF_PART(offsetof(struct conf_test, daemon)),
    {test_keys, TMT_ARRAY_LEN(test_keys), 0},
};

const struct tmt_conf_schema conf_test_schema = {
    .program = "conf-test",
    .parts = test_parts,
    .n_parts = TMT_ARRAY_LEN(test_parts),
    .size = sizeof(struct conf_test),
    .check = test_check,
};
