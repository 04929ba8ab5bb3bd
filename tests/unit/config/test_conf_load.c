/*
 * Unit tests of the config loader: every value type, every kind of mistake and its exact message
 * (file, line, column), source precedence, cross-key checks, dump round trips and reload diffs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf_test_schema.h"
#include "tmt/err.h"

struct loaded {
    struct conf_test c;
    struct tmt_conf_diag diag;
    int rc;
};

/* Loads `text` as "f.conf", then `sets` (NULL-terminated) as the command line. */
static void load(struct loaded *l, const char *text, const char *const *sets)
{
    struct tmt_conf_src srcs[2];
    size_t n = 0;
    memset(l, 0, sizeof(*l));
    if (text != NULL)
        srcs[n++] = (struct tmt_conf_src){TMT_CONF_SRC_TEXT, "f.conf", text, strlen(text), NULL, 0};
    if (sets != NULL) {
        size_t k = 0;
        while (sets[k] != NULL)
            k++;
        srcs[n++] = (struct tmt_conf_src){TMT_CONF_SRC_SETS, "command line", NULL, 0, sets, k};
    }
    tmt_conf_init(&conf_test_schema, &l->c);
    l->rc = tmt_conf_load(&conf_test_schema, &l->c, srcs, n, &l->diag);
}

static void unload(struct loaded *l)
{
    tmt_conf_fini(&conf_test_schema, &l->c);
    tmt_conf_diag_fini(&l->diag);
}

/* Asserts the load failed with exactly these problems, in order. */
static void expect_problems(struct loaded *l, const char *const *want)
{
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    for (size_t i = 0; i < l->diag.n; i++)
        print_message("problem: %s\n", l->diag.lines[i]);
    assert_int_equal(l->rc, TMT_EINVAL);
    assert_int_equal(l->diag.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->diag.lines[i], want[i]);
}

static void test_defaults(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, "[net]\nneeded = x\n", NULL);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.diag.n, 0);
    assert_string_equal(l.c.name, "anon");
    assert_string_equal(l.c.dir, "/var/tmp");
    assert_false(l.c.flag);
    assert_int_equal(l.c.count, 7);
    assert_int_equal(l.c.budget, 64u << 20);
    assert_int_equal(l.c.timeout_ms, 10000);
    assert_int_equal(l.c.mode, 1);
    assert_string_equal(l.c.addr, "127.0.0.1:8080");
    assert_int_equal(l.c.peers.n, 0);
    assert_int_equal(l.c.daemon.log_level, 2);
    assert_int_equal(l.c.daemon.workers, 0);
    unload(&l);
}

static void test_every_type(void **state)
{
    (void)state;
    struct loaded l;
    load(&l,
         "; a comment\n"
         "# another\n"
         "[t]\n"
         "name = hello world ; trailing comment\n"
         "flag = YES\n"
         "count = -5\n"
         "\n"
         "[u]\r\n"
         "budget = 2GiB\n"
         "timeout = 250ms\n"
         "mode = auto\n"
         "[net]\n"
         "addr = [::1]:0\n"
         "url = https://shield.example:8443/base\n"
         "peers = a:1 ,  b:2,c:3\n"
         "needed =\n"
         "[log]\n"
         "level = debug\n",
         NULL);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.c.name, "hello world");
    assert_true(l.c.flag);
    assert_int_equal(l.c.count, -5);
    assert_int_equal(l.c.budget, 2ull << 30);
    assert_int_equal(l.c.timeout_ms, 250);
    assert_int_equal(l.c.mode, 2);
    assert_string_equal(l.c.addr, "[::1]:0");
    assert_string_equal(l.c.url, "https://shield.example:8443/base");
    assert_int_equal(l.c.peers.n, 3);
    assert_string_equal(l.c.peers.items[0], "a:1");
    assert_string_equal(l.c.peers.items[1], "b:2");
    assert_string_equal(l.c.peers.items[2], "c:3");
    assert_string_equal(l.c.needed, "");
    assert_int_equal(l.c.daemon.log_level, 3);
    unload(&l);
}

static void test_errors_name_line_and_column(void **state)
{
    (void)state;
    struct loaded l;
    load(&l,
         "[t]\n"
         "count = 101\n"
         "count = 3\n"
         "  flag = maybe\n"
         "[u]\n"
         "budget = 12XB\n"
         "timeout = 99999999999999999999s\n"
         "mode = medium\n"
         "[nope]\n"
         "x = 1\n"
         "[net]\n"
         "addr = 1.2.3.4\n"
         "url = ftp://x\n"
         "peers = a,,b\n"
         "needed = ok\n"
         "what\n"
         "[bad section]\n"
         "unknown = 1\n",
         NULL);
    static const char *const want[] = {
        "f.conf:2:9: t.count: 101 is out of range [-5, 100]",
        "f.conf:3:1: t.count is set twice (first on line 2)",
        "f.conf:4:10: t.flag: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)",
        "f.conf:6:10: u.budget: \"12XB\" is not a size (examples: 512, 64k, 10MiB, 2G)",
        "f.conf:7:11: u.timeout: \"99999999999999999999s\" is too large for a duration",
        "f.conf:8:8: u.mode: \"medium\" is not one of slow|fast|auto",
        "f.conf:9:2: unknown section [nope]",
        "f.conf:12:8: net.addr: missing ':port'",
        "f.conf:13:7: net.url: \"ftp://x\" is not an http:// or https:// URL",
        "f.conf:14:9: net.peers: empty item in list (item 2)",
        "f.conf:16:1: expected 'key = value', '[section]' or a comment",
        "f.conf:17:1: malformed section header (expected [name] with letters, digits, '_', '-' "
        "or '.')",
        NULL,
    };
    expect_problems(&l, want);
    unload(&l);
}

static void test_unknown_key_and_outside_section(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, "loose = 1\n[t]\nnmae = x\n[net]\nneeded=1\n", NULL);
    static const char *const want[] = {
        "f.conf:1:1: 'loose' is outside any [section]",
        "f.conf:3:1: unknown key t.nmae",
        NULL,
    };
    expect_problems(&l, want);
    unload(&l);
}

static void test_required_and_check(void **state)
{
    (void)state;
    struct loaded l;
    load(&l, "[t]\nname = x\n", NULL);
    static const char *const want_required[] = {
        "f.conf:2: net.needed is required; the file has no [net] (a required key)", NULL};
    expect_problems(&l, want_required);
    unload(&l);

    load(&l, "[t]\nname = x\n\n[net]\npeers = a\n", NULL);
    static const char *const want_in_section[] = {
        "f.conf:4: net.needed is required in [net] (a required key)", NULL};
    expect_problems(&l, want_in_section);
    unload(&l);

    load(&l, NULL, NULL);
    static const char *const want_no_file[] = {"conf-test: net.needed is required (a required key)",
                                               NULL};
    expect_problems(&l, want_no_file);
    unload(&l);

    load(&l, "[net]\nneeded = 1\n\n[t]\nflag = on\n", NULL);
    static const char *const want_check[] = {"f.conf:5: t.flag: needs net.peers", NULL};
    expect_problems(&l, want_check);
    unload(&l);

    static const char *const sets[] = {"net.needed=1", "t.flag=1", NULL};
    load(&l, NULL, sets);
    static const char *const want_cli[] = {"command line: t.flag: needs net.peers", NULL};
    expect_problems(&l, want_cli);
    unload(&l);
}

static void test_command_line_overrides_file(void **state)
{
    (void)state;
    struct loaded l;
    static const char *const sets[] = {"t.count=42", "net.peers=x, y", "t.name=a=b", NULL};
    load(&l, "[t]\ncount = 1\nname = file\n[net]\nneeded = 1\n", sets);
    assert_int_equal(l.rc, 0);
    assert_int_equal(l.c.count, 42);
    assert_string_equal(l.c.name, "a=b");
    assert_int_equal(l.c.peers.n, 2);
    unload(&l);

    /* Values a config file could not carry are refused, so every setting can be dumped. */
    static const char *const bad[] = {
        "t.count",   "nosuch.key=1",       "t.count=x",   "net.needed=1",   "t.name=;x",
        "t.dir= /x", "t.name=http://a ;b", "t.name=a\nb", "net.peers=a,;b", NULL};
    load(&l, NULL, bad);
    static const char *const want[] = {
        "command line: \"t.count\": expected section.key=value",
        "command line: unknown key nosuch.key",
        "command line: t.count: \"x\" is not a whole number",
        "command line: t.name: a value may not start with ';' (it begins a comment)",
        "command line: t.dir: a value may not start or end with blanks",
        "command line: t.name: ' ;' in a value begins a comment",
        "command line: t.name: control character 0x0a in value",
        "command line: net.peers: a value may not start with ';' (it begins a comment) (item 2)",
        NULL,
    };
    expect_problems(&l, want);
    unload(&l);
}

static void test_hostile_lines(void **state)
{
    (void)state;
    struct loaded l;
    /* A line over the limit, a NUL byte, and no final newline. */
    size_t big = TMT_CONF_MAX_LINE + 10;
    char *text = malloc(big + 64);
    assert_non_null(text);
    strcpy(text, "[t]\nname = ");
    size_t off = strlen(text);
    memset(text + off, 'a', big);
    off += big;
    static const char tail[] = "\nx\0y = 1\n[net]\nneeded = z";
    memcpy(text + off, tail, sizeof(tail) - 1); /* the last line has no newline and no NUL */
    off += sizeof(tail) - 1;
    struct tmt_conf_src src = {TMT_CONF_SRC_TEXT, "f.conf", text, off, NULL, 0};
    memset(&l, 0, sizeof(l));
    tmt_conf_init(&conf_test_schema, &l.c);
    l.rc = tmt_conf_load(&conf_test_schema, &l.c, &src, 1, &l.diag);
    static const char *const want[] = {
        "f.conf:2:1: line longer than 4096 bytes",
        "f.conf:3:1: NUL byte in line",
        NULL,
    };
    expect_problems(&l, want);
    assert_string_equal(l.c.needed, "z");
    free(text);
    unload(&l);
}

static void test_long_lines_up_to_the_limit(void **state)
{
    (void)state;
    /* "name = " is 7 bytes: a value of 4089 makes a line of exactly TMT_CONF_MAX_LINE. */
    for (size_t vlen = 1000; vlen <= TMT_CONF_MAX_LINE - 7; vlen += TMT_CONF_MAX_LINE - 7 - 1000) {
        char *text = malloc(vlen + 64);
        assert_non_null(text);
        int off = sprintf(text, "[t]\nname = ");
        memset(text + off, 'v', vlen);
        strcpy(text + off + vlen, "\n[net]\nneeded = 1\n");
        struct loaded l;
        load(&l, text, NULL);
        for (size_t i = 0; i < l.diag.n; i++)
            print_message("problem: %s\n", l.diag.lines[i]);
        assert_int_equal(l.rc, 0);
        assert_int_equal(strlen(l.c.name), vlen);
        unload(&l);
        free(text);
    }
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    struct loaded a, b;
    load(&a,
         "[t]\nname = x y\nflag = true\n[u]\nbudget = 3072k\ntimeout = 90s\n"
         "[net]\npeers = p, q\nneeded = n\n",
         NULL);
    assert_int_equal(a.rc, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tmt_conf_dump(&conf_test_schema, &a.c, f, true);
    fclose(f);
    assert_non_null(strstr(buf, "budget = 3M\n"));
    assert_non_null(strstr(buf, "timeout = 90s\n"));
    assert_non_null(strstr(buf, "peers = p, q\n"));
    load(&b, buf, NULL);
    assert_int_equal(b.rc, 0);
    /* Equal dumps of the reloaded settings mean every value survived the trip. */
    char *buf2 = NULL;
    size_t len2 = 0;
    f = open_memstream(&buf2, &len2);
    tmt_conf_dump(&conf_test_schema, &b.c, f, true);
    fclose(f);
    assert_string_equal(buf, buf2);
    free(buf);
    free(buf2);
    unload(&a);
    unload(&b);
}

static void count_change(const char *section, const char *name, void *arg)
{
    char *out = arg;
    strcat(out, section);
    strcat(out, ".");
    strcat(out, name);
    strcat(out, " ");
}

static void test_restart_only_changes(void **state)
{
    (void)state;
    struct loaded a, b;
    load(&a, "[net]\nneeded = 1\naddr = 127.0.0.1:1\n[t]\ncount = 1\n", NULL);
    load(&b, "[net]\nneeded = 2\naddr = 127.0.0.1:2\n[t]\ncount = 2\ndir = /x\n", NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    char changed[256] = "";
    tmt_conf_each_restart_change(&conf_test_schema, &a.c, &b.c, count_change, changed);
    assert_string_equal(changed, "t.dir net.addr ");
    unload(&a);
    unload(&b);
}

static void test_find_and_reference(void **state)
{
    (void)state;
    size_t base = 99;
    const struct tmt_conf_key *k = tmt_conf_find(&conf_test_schema, "u.mode", &base);
    assert_non_null(k);
    assert_string_equal(k->name, "mode");
    assert_int_equal(base, 0);
    assert_null(tmt_conf_find(&conf_test_schema, "u.nope", &base));
    assert_null(tmt_conf_find(&conf_test_schema, "nodot", &base));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tmt_conf_reference(&conf_test_schema, f);
    fclose(f);
    assert_non_null(strstr(buf, "| `budget` | size | `64M` | 1k to 1T | yes | a size |"));
    assert_non_null(strstr(buf, "| `mode` | enum | `fast` | slow, fast, auto | yes | an enum |"));
    assert_non_null(strstr(buf, "| `needed` | string | required |  | yes | a required key |"));
    assert_non_null(strstr(buf, "| `addr` | address | `127.0.0.1:8080` |  | restart |"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_errors_name_line_and_column),
        cmocka_unit_test(test_unknown_key_and_outside_section),
        cmocka_unit_test(test_required_and_check),
        cmocka_unit_test(test_command_line_overrides_file),
        cmocka_unit_test(test_hostile_lines),
        cmocka_unit_test(test_long_lines_up_to_the_limit),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_restart_only_changes),
        cmocka_unit_test(test_find_and_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
