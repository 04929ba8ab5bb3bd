/*
 * conf_test_schema.h: a settings schema with one key of every type, for the config tests and the
 * config fuzz target.
 */
#ifndef TMT_CONF_TEST_SCHEMA_H
#define TMT_CONF_TEST_SCHEMA_H

#include "tmt/config.h"
#include "tmt/daemon_conf.h"

struct conf_test {
    struct tmt_daemon_conf daemon;
    char *name;
    char *dir;
    bool flag;
    int64_t count;
    uint64_t budget;
    uint64_t timeout_ms;
    int mode;
    char *addr;
    char *url;
    struct tmt_conf_list peers;
    char *needed;
};

extern const struct tmt_conf_schema conf_test_schema;

#endif
