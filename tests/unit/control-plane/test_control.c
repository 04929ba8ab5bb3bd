/*
 * test_control.c: the control plane's pure checks (check.c) and its password, pseudonym and
 * rate-limit code (auth.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "cp.h"

static struct tmt_slice sl(const char *s)
{
    return (struct tmt_slice){s, strlen(s)};
}

static void test_email(void **state)
{
    (void)state;
    char out[300];
    assert_true(cp_email_normalize("Ann.Lee@Example.COM", out, sizeof(out)));
    assert_string_equal(out, "ann.lee@example.com");
    assert_true(cp_email_normalize("a@b.c", out, sizeof(out)));
    static const char *const bad[] = {"",       "a@b",     "@b.c", "a@@b.c",   "a@b@c.d",   "a@.b",
                                      "a@b.c.", "a b@c.d", "ab.c", "a@b\tc.d", "a\x7f@b.cd"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad); i++)
        assert_false(cp_email_normalize(bad[i], out, sizeof(out)));
    char longer[300];
    memset(longer, 'a', 260);
    memcpy(longer + 250, "@b.cd", 6);
    assert_false(cp_email_normalize(longer, out, sizeof(out)));
    /* Does not fit the output buffer. */
    assert_false(cp_email_normalize("abcdef@gh.ij", out, 8));
}

static void test_ids_and_tags(void **state)
{
    (void)state;
    assert_true(cp_id_ok(sl("abc-DEF_123"), 64));
    assert_false(cp_id_ok(sl(""), 64));
    assert_false(cp_id_ok(sl("a/b"), 64));
    assert_false(cp_id_ok(sl("a.b"), 64));
    assert_false(cp_id_ok(sl("abcd"), 3));
    assert_true(cp_show_id_ok("film_1"));
    assert_false(cp_show_id_ok("film-1"));
    assert_false(cp_show_id_ok(""));
    char big[60];
    memset(big, 'x', 49);
    big[49] = '\0';
    assert_false(cp_show_id_ok(big));
    big[48] = '\0';
    assert_true(cp_show_id_ok(big));
    static const char *const good[] = {"en", "pt-BR", "zh-Hant-TW", "gsw", "sl-rozaj-biske"};
    for (size_t i = 0; i < TMT_ARRAY_LEN(good); i++)
        assert_true(cp_lang_ok(good[i]));
    static const char *const bad[] = {"e",  "engl",  "en-", "en--US", "en_US", "en-abcdefghi",
                                      "12", "en US", ""};
    for (size_t i = 0; i < TMT_ARRAY_LEN(bad); i++)
        assert_false(cp_lang_ok(bad[i]));
}

static void test_path_match(void **state)
{
    (void)state;
    struct tmt_slice a[3] = {{0}};
    assert_true(cp_path_match(sl("v1/users"), "v1/users", a, 3));
    assert_false(cp_path_match(sl("v1/users/"), "v1/users", a, 3));
    assert_false(cp_path_match(sl("v1/user"), "v1/users", a, 3));
    assert_false(cp_path_match(sl("v1/usersx"), "v1/users", a, 3));
    assert_true(cp_path_match(sl("v1/playback/l1/heartbeat"), "v1/playback/*/heartbeat", a, 3));
    assert_int_equal(a[0].len, 2);
    assert_memory_equal(a[0].p, "l1", 2);
    assert_false(cp_path_match(sl("v1/playback//heartbeat"), "v1/playback/*/heartbeat", a, 3));
    assert_false(cp_path_match(sl("v1/playback/l1"), "v1/playback/*/heartbeat", a, 3));
    assert_false(cp_path_match(sl("v1/playback/l1/heartbeat/x"), "v1/playback/*/heartbeat", a, 3));
    assert_true(cp_path_match(sl("r/a1/master.m3u8"), "r/*/master.m3u8", a, 3));
    assert_false(cp_path_match(sl("r/a1/master.m3u8"), "r/*/master.m3u8", a, 0));
    assert_false(cp_path_match(sl(""), "v1", a, 3));
}

static const unsigned char key1[CP_TICKET_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[CP_TICKET_KEY_LEN] = "0123456789abcdef0123456789abcdeX";

static void test_tickets(void **state)
{
    (void)state;
    char t[CP_TICKET_MAX + 1], lease[65];
    int64_t exp = 0;
    size_t n = cp_ticket_make(key1, "l0123", 1795397669, t, sizeof(t));
    assert_true(n > 0);
    assert_int_equal(n, strlen(t));
    assert_true(cp_ticket_parse(key1, (struct tmt_slice){t, n}, lease, sizeof(lease), &exp));
    assert_string_equal(lease, "l0123");
    assert_int_equal(exp, 1795397669);
    /* Another key, every single-character change, truncation: refused. */
    assert_false(cp_ticket_parse(key2, (struct tmt_slice){t, n}, lease, sizeof(lease), &exp));
    for (size_t i = 0; i < n; i++) {
        char m[CP_TICKET_MAX + 1];
        memcpy(m, t, n);
        m[i] = m[i] == 'A' ? 'B' : 'A';
        assert_false(cp_ticket_parse(key1, (struct tmt_slice){m, n}, lease, sizeof(lease), &exp));
    }
    assert_false(cp_ticket_parse(key1, (struct tmt_slice){t, n - 1}, lease, sizeof(lease), &exp));
    /* The lease does not fit the caller's buffer. */
    assert_false(cp_ticket_parse(key1, (struct tmt_slice){t, n}, lease, 3, &exp));
    /* Not an id, negative time, too small a buffer: nothing made. */
    assert_int_equal(cp_ticket_make(key1, "l.1", 5, t, sizeof(t)), 0);
    assert_int_equal(cp_ticket_make(key1, "l1", -5, t, sizeof(t)), 0);
    assert_int_equal(cp_ticket_make(key1, "l1", 5, t, 20), 0);
}

static void test_limiter(void **state)
{
    (void)state;
    struct cp_limiter *l = cp_limiter_new();
    /* Three allowed per 60 s window; the fourth waits for the window's end. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(cp_limiter_hit(l, "acct", "a@b.c", 1000 + i, 60, 3, true), 0);
    assert_int_equal(cp_limiter_hit(l, "acct", "a@b.c", 1010, 60, 3, false), 50);
    assert_int_equal(cp_limiter_hit(l, "acct", "a@b.c", 1010, 60, 3, true), 50);
    /* Others, and other kinds of the same name, are not affected. */
    assert_int_equal(cp_limiter_hit(l, "acct", "x@b.c", 1010, 60, 3, false), 0);
    assert_int_equal(cp_limiter_hit(l, "addr", "a@b.c", 1010, 60, 3, true), 0);
    /* A new window starts clean. */
    assert_int_equal(cp_limiter_hit(l, "acct", "a@b.c", 1060, 60, 3, true), 0);
    /* Reset clears. */
    cp_limiter_hit(l, "acct", "r", 2000, 60, 1, true);
    assert_true(cp_limiter_hit(l, "acct", "r", 2000, 60, 1, false) > 0);
    cp_limiter_reset(l, "acct", "r");
    assert_int_equal(cp_limiter_hit(l, "acct", "r", 2000, 60, 1, false), 0);
    /* Asking about an unknown key does not make an entry; many keys never grow memory and
     * a key seen recently survives a flood of others in other sets. */
    for (int i = 0; i < 20000; i++) {
        char k[32];
        snprintf(k, sizeof(k), "flood%d", i);
        cp_limiter_hit(l, "addr", k, 3000, 60, 5, true);
    }
    cp_limiter_free(&l);
    assert_null(l);
}

static void test_passwords(void **state)
{
    (void)state;
    struct cp_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.scrypt_n = 1024;
    char h1[160], h2[160];
    assert_int_equal(cp_password_hash(&conf, "correct horse", 13, h1, sizeof(h1)), 0);
    assert_int_equal(cp_password_hash(&conf, "correct horse", 13, h2, sizeof(h2)), 0);
    assert_true(strncmp(h1, "scrypt$1024$8$1$", 16) == 0);
    assert_string_not_equal(h1, h2); /* a fresh salt each time */
    assert_true(cp_password_check(h1, "correct horse", 13));
    assert_true(cp_password_check(h2, "correct horse", 13));
    assert_false(cp_password_check(h1, "correct horsE", 13));
    assert_false(cp_password_check(h1, "correct hors", 12));
    /* Hashes made with another N still check. */
    conf.scrypt_n = 2048;
    char h3[160];
    assert_int_equal(cp_password_hash(&conf, "pw", 2, h3, sizeof(h3)), 0);
    assert_true(cp_password_check(h3, "pw", 2));
    /* Damaged or absurd records never match (and never ask for huge work). */
    assert_false(cp_password_check("", "pw", 2));
    assert_false(cp_password_check("scrypt$1024$8$1$AAAA", "pw", 2));
    assert_false(cp_password_check("scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA$"
                                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                   "pw", 2));
    assert_false(cp_password_check("scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$"
                                   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                   "pw", 2));
    h1[strlen(h1) - 2] ^= 1;
    assert_false(cp_password_check(h1, "correct horse", 13));
    /* Too small an output buffer. */
    conf.scrypt_n = 1024;
    assert_int_equal(cp_password_hash(&conf, "pw", 2, h3, 20), -1);
}

static void test_pseudonym(void **state)
{
    (void)state;
    char a[23], b[23], c[23], d[23];
    cp_pseudonym(key1, "u1", a);
    cp_pseudonym(key1, "u1", b);
    cp_pseudonym(key1, "u2", c);
    cp_pseudonym(key2, "u1", d);
    assert_int_equal(strlen(a), 22);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_null(strstr(a, "u1"));
}

static void test_client_addr(void **state)
{
    (void)state;
    static const char *const trusted[] = {"127.0.0.1", "10.0.0.9"};
    char out[64];
    /* An untrusted peer: the header is ignored. */
    assert_false(cp_client_addr("192.0.2.7", sl("10.1.2.3"), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "192.0.2.7");
    /* A trusted peer: the rightmost address that is not a trusted proxy. */
    assert_true(
        cp_client_addr("127.0.0.1", sl("203.0.113.5, 10.2.0.1"), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "10.2.0.1");
    assert_true(
        cp_client_addr("127.0.0.1", sl("203.0.113.5,10.0.0.9"), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "203.0.113.5");
    assert_true(cp_client_addr("127.0.0.1", sl(" 2001:db8::1 "), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "2001:db8::1");
    /* Garbage ends the walk; what was seen so far stands. */
    assert_false(cp_client_addr("127.0.0.1", sl("not-an-address"), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "127.0.0.1");
    assert_true(cp_client_addr("127.0.0.1", sl("evil<x>, 10.0.0.9"), trusted, 2, out, sizeof(out)));
    assert_string_equal(out, "10.0.0.9");
    /* No trusted proxies configured: the peer, always. */
    assert_false(cp_client_addr("127.0.0.1", sl("10.1.2.3"), trusted, 0, out, sizeof(out)));
    assert_string_equal(out, "127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),      cmocka_unit_test(test_ids_and_tags),
        cmocka_unit_test(test_path_match), cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_limiter),    cmocka_unit_test(test_passwords),
        cmocka_unit_test(test_pseudonym),  cmocka_unit_test(test_client_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
