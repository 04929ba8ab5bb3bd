/*
 * Unit tests of the playlist parser and URI resolution of tomato-load (load_lib.h): the shield's
 * own master and media playlists, CRLF and quoted attributes, bad input, and relative URIs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tmt/load_lib.h"

static const char master[] =
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"en\",URI=\"audio/index.m3u8\"\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=964000,AVERAGE-BANDWIDTH=800000,RESOLUTION=640x360,"
    "CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=24.000,AUDIO=\"audio\"\n"
    "360p/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=364000,RESOLUTION=320x180,CODECS=\"a,b\"\r\n"
    "180p/index.m3u8\r\n";

static const char media[] = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"
                            "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                            "#EXTINF:4.000,\n1.m4s\n#EXTINF:3.5,title\n2.m4s\n"
                            "#EXTINF:1.0417\n../r1/3.m4s\n#EXT-X-ENDLIST\n";

static void test_master(void **state)
{
    (void)state;
    struct tmt_m3u8 m;
    struct tmt_err err;
    tmt_err_clear(&err);
    assert_int_equal(tmt_m3u8_parse(master, strlen(master), &m, &err), 0);
    assert_true(m.master);
    assert_int_equal(m.n_variants, 2);
    assert_int_equal(m.n_segs, 0);
    assert_int_equal(m.variants[0].bandwidth, 964000);
    assert_int_equal(m.variants[0].width, 640);
    assert_int_equal(m.variants[0].height, 360);
    assert_string_equal(m.variants[0].uri, "360p/index.m3u8");
    assert_int_equal(m.variants[1].bandwidth, 364000);
    assert_string_equal(m.variants[1].uri, "180p/index.m3u8");
    tmt_m3u8_fini(&m);
}

static void test_media(void **state)
{
    (void)state;
    struct tmt_m3u8 m;
    struct tmt_err err;
    tmt_err_clear(&err);
    assert_int_equal(tmt_m3u8_parse(media, strlen(media), &m, &err), 0);
    assert_false(m.master);
    assert_true(m.endlist);
    assert_int_equal(m.target_s, 4);
    assert_string_equal(m.map_uri, "init.mp4");
    assert_int_equal(m.n_segs, 3);
    assert_int_equal(m.segs[0].dur_ms, 4000);
    assert_int_equal(m.segs[1].dur_ms, 3500);
    assert_int_equal(m.segs[2].dur_ms, 1041);
    assert_string_equal(m.segs[2].uri, "../r1/3.m4s");
    tmt_m3u8_fini(&m);
}

static void expect_bad(const char *text, int code, const char *needle)
{
    struct tmt_m3u8 m;
    struct tmt_err err;
    tmt_err_clear(&err);
    assert_int_equal(tmt_m3u8_parse(text, strlen(text), &m, &err), code);
    assert_non_null(strstr(err.msg, needle));
    assert_int_equal(m.n_segs, 0);
    assert_null(m.segs);
}

static void test_bad(void **state)
{
    (void)state;
    expect_bad("", TMT_EINVAL, "no #EXTM3U");
    expect_bad("<html>\n", TMT_EINVAL, "line 1");
    expect_bad("#EXTM3U\n1.m4s\n", TMT_EINVAL, "line 2: URI without");
    expect_bad("#EXTM3U\n#EXTINF:x,\n1.m4s\n", TMT_EINVAL, "line 2: bad EXTINF");
    expect_bad("#EXTM3U\n#EXTINF:1,\na\n#EXTINF:1,\nb\n#EXT-X-STREAM-INF:BANDWIDTH=q\nc\n",
               TMT_EINVAL, "line 6: bad BANDWIDTH");
    expect_bad("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=12\nx\n", TMT_EINVAL, "RESOLUTION");
    expect_bad("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n", TMT_EINVAL, "EXT-X-MAP without URI");
    expect_bad("#EXTM3U\n#EXTINF:4,\n1\x01.m4s\n", TMT_EINVAL, "line 3: control character");
    /* a NUL inside a URI (the parser takes a length, so it can see one) */
    const char nul[] = "#EXTM3U\n#EXT-X-MAP:URI=\"a\0b\"\n";
    struct tmt_m3u8 m0;
    struct tmt_err e0;
    tmt_err_clear(&e0);
    assert_int_equal(tmt_m3u8_parse(nul, sizeof(nul) - 1, &m0, &e0), TMT_EINVAL);
    assert_non_null(strstr(e0.msg, "control character"));
    /* not NUL-terminated: the parser stops at len */
    const char cut[] = "#EXTM3U\n#EXTINF:4,\n1.m4s\nGARBAGE";
    struct tmt_m3u8 m;
    struct tmt_err err;
    assert_int_equal(tmt_m3u8_parse(cut, strlen(cut) - 8, &m, &err), 0);
    assert_int_equal(m.n_segs, 1);
    tmt_m3u8_fini(&m);
}

static void expect_resolve(const char *base, const char *uri, const char *want)
{
    char out[256];
    long n = tmt_m3u8_resolve(base, uri, "127.0.0.1:8080", out, sizeof(out));
    assert_true(n > 0);
    assert_string_equal(out, want);
    assert_int_equal((size_t)n, strlen(want));
}

static void test_resolve(void **state)
{
    (void)state;
    expect_resolve("/v/a1/master.m3u8", "360p/index.m3u8", "/v/a1/360p/index.m3u8");
    expect_resolve("/t/tok/v/a1/360p/index.m3u8?x=1", "1.m4s", "/t/tok/v/a1/360p/1.m4s");
    expect_resolve("/v/a1/r0/index.m3u8", "../r1/./3.m4s", "/v/a1/r1/3.m4s");
    expect_resolve("/v/a1/r0/index.m3u8", "/other/x.m4s?q=2", "/other/x.m4s?q=2");
    expect_resolve("/v/a1/index.m3u8", "../../../../x", "/x");
    expect_resolve("/v/a1/index.m3u8", "http://127.0.0.1:8080/v/b/1.m4s", "/v/b/1.m4s");
    char out[16];
    assert_int_equal(
        tmt_m3u8_resolve("/v/", "http://10.0.0.1:80/x", "127.0.0.1:8080", out, sizeof(out)),
        TMT_EINVAL);
    assert_int_equal(
        tmt_m3u8_resolve("/v/", "https://127.0.0.1:8080/x", "127.0.0.1:8080", out, sizeof(out)),
        TMT_EINVAL);
    assert_int_equal(tmt_m3u8_resolve("/v/", "", "a", out, sizeof(out)), TMT_EINVAL);
    assert_int_equal(
        tmt_m3u8_resolve("/v/", "a-rather-long-name/index.m3u8", "a", out, sizeof(out)),
        TMT_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
