/*
 * test_node.c: the node side's settings check and config parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tmt/node.h"

struct seen {
    int calls;
    struct tmt_node_config c;
    char shields[4][64];
    char revoked[4][64];
    struct tmt_token_key keys[4];
    char settings[128];
    bool has_settings;
};

static void record(const struct tmt_node_config *c, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->c = *c;
    for (size_t i = 0; i < c->n_shields && i < 4; i++)
        snprintf(s->shields[i], sizeof(s->shields[i]), "%s", c->shields[i]);
    for (size_t i = 0; i < c->n_revoked && i < 4; i++)
        snprintf(s->revoked[i], sizeof(s->revoked[i]), "%s", c->revoked[i]);
    for (size_t i = 0; i < c->n_keys && i < 4; i++)
        s->keys[i] = c->keys[i];
    /* The config's strings live for the call only. */
    s->has_settings = c->settings != NULL;
    if (c->settings != NULL)
        snprintf(s->settings, sizeof(s->settings), "%s", c->settings);
}

static int parse(const char *text, struct seen *s)
{
    struct tmt_err err;
    tmt_err_clear(&err);
    memset(s, 0, sizeof(*s));
    return tmt_node_config_parse(text, strlen(text), record, s, &err);
}

static void test_parse_edge_config(void **state)
{
    (void)state;
    struct seen s;
    const char *text =
        "{\"node\":{\"id\":\"n1\",\"role\":\"edge\",\"name\":\"e\",\"region\":\"eu\"},"
        "\"heartbeat_interval\":5,\"fill_key\":\"fk-0123456789abcdef\","
        "\"shields\":[\"127.0.0.1:8300\",\"127.0.0.2:8300\"],"
        "\"keys\":[{\"kid\":\"k1\",\"secret\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\","
        "\"state\":\"current\"}],\"revoked\":[\"l1\",\"l2\",\"l3\"]}";
    assert_int_equal(parse(text, &s), 0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.c.heartbeat_interval_ms, 5000);
    assert_int_equal(s.c.n_shields, 2);
    assert_string_equal(s.shields[1], "127.0.0.2:8300");
    assert_int_equal(s.c.n_revoked, 3);
    assert_string_equal(s.revoked[2], "l3");
    assert_int_equal(s.c.n_keys, 1);
    assert_string_equal(s.keys[0].kid, "k1");
    assert_int_equal(s.keys[0].secret_len, 32);
    assert_memory_equal(s.keys[0].secret, "0123456789abcdef0123456789abcdef", 32);
    assert_false(s.c.from_state_file);
    assert_false(s.has_settings);
    assert_int_equal(parse("{\"node\":{\"id\":\"n\",\"role\":\"shield\"},"
                           "\"settings\":\"[log]\\nlevel = debug\\n\"}",
                           &s),
                     0);
    assert_true(s.has_settings);
    assert_string_equal(s.settings, "[log]\nlevel = debug\n");
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct seen s;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"node\":{\"role\":\"edge\"}}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"shields\":[1]}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"revoked\":[null]}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"keys\":[{\"kid\":\"k\",\"secret\":"
        "\"c2hvcnQ\"}]}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"keys\":[{\"secret\":\"x\"}]}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"node\":{}}",
        "{\"node\":{\"id\":\"n\",\"role\":\"edge\"},\"settings\":5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &s), -1);
        assert_int_equal(s.calls, 0);
    }
    /* An absurd interval falls back to the default. */
    assert_int_equal(
        parse("{\"node\":{\"id\":\"n\",\"role\":\"shield\"},\"heartbeat_interval\":-3}", &s), 0);
    assert_int_equal(s.c.heartbeat_interval_ms, 10000);
    assert_int_equal(s.c.n_keys, 0);
}

static void test_conf_check(void **state)
{
    (void)state;
    struct tmt_err err;
    struct tmt_node_conf c = {"", "", "", "", 0};
    tmt_err_clear(&err);
    assert_int_equal(tmt_node_conf_check(&c, &err), 0); /* not managed */
    c.control_url = "http://127.0.0.1:8400";
    assert_true(tmt_node_conf_check(&c, &err) != 0); /* no id */
    assert_non_null(strstr(err.msg, "node.id"));
    c.id = "n01";
    tmt_err_clear(&err);
    assert_true(tmt_node_conf_check(&c, &err) != 0); /* no credential */
    assert_non_null(strstr(err.msg, "credential"));
    c.credential_file = "/x";
    tmt_err_clear(&err);
    assert_int_equal(tmt_node_conf_check(&c, &err), 0);
    static char *const bad_urls[] = {"https://127.0.0.1:8400", "127.0.0.1:8400", "http://127.0.0.1",
                                     "http:///v1"};
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        c.control_url = bad_urls[i];
        tmt_err_clear(&err);
        assert_true(tmt_node_conf_check(&c, &err) != 0);
    }
    c.control_url = "http://127.0.0.1:8400/cp/";
    c.id = "bad id";
    tmt_err_clear(&err);
    assert_true(tmt_node_conf_check(&c, &err) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_edge_config),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_conf_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
