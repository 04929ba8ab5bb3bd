"""The control plane's viewer page and its players, without a browser: GET /watch is the page
(HTML, with its security policy); /watch/hls.js and /watch/dash.js are the bytes of two fixed
files under web.player_dir, as JavaScript with a validator (304 on If-None-Match, HEAD with the
length); nothing else under /watch is served, whatever the path says. Without the players,
/watch/*.js answer 404 naming scripts/setup.sh, the page still loads and carries the same words,
and one warning at start names the folder; files installed later are served after SIGHUP.

The players here are stand-in files (web/node_modules is for the browser test, w00003)."""
import json
import os
import shutil
import signal
import tempfile
import unittest

from harness import Control, http_get, http_request

LIBS = {"/watch/hls.js": "hls.js/dist/hls.min.js",
        "/watch/dash.js": "dashjs/dist/modern/umd/dash.all.min.js"}
MISSING = "player library not installed: run scripts/setup.sh"


class WatchFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-watch-files-")
        self.nm = os.path.join(self.dir, "node_modules")
        self.bytes = {}

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def install(self, path, size):
        f = os.path.join(self.nm, LIBS[path])
        os.makedirs(os.path.dirname(f), exist_ok=True)
        body = b"/* %s */\n" % path.encode() + os.urandom(size)
        with open(f, "wb") as out:
            out.write(body)
        self.bytes[path] = body

    def test_page_and_players(self):
        self.install("/watch/hls.js", 600 * 1024)
        self.install("/watch/dash.js", 1300 * 1024)
        # Files beside the players that no URL names.
        with open(os.path.join(self.nm, "hls.js", "dist", "hls.min.js.map"), "w") as f:
            f.write("{}")
        with open(os.path.join(self.dir, "secret"), "w") as f:
            f.write("secret")
        with Control(os.path.join(self.dir, "cp"), "web.player_dir=" + self.nm) as cp:
            self.assertFalse(any(MISSING in x for x in cp.lines), cp.lines)
            r = http_get(cp.port, "/watch")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
            csp = r.header("content-security-policy")
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertIn("worker-src 'self' blob:", csp)
            self.assertIn(b"<title>Tomato CDN: watch</title>", r.body)
            self.assertIn(b'"/watch/hls.js"', r.body)
            for path, want in self.bytes.items():
                r = http_get(cp.port, path, timeout=15)
                self.assertEqual(r.status, 200, path)
                self.assertEqual(r.header("content-type"), "text/javascript; charset=utf-8")
                self.assertEqual(r.header("x-content-type-options"), "nosniff")
                self.assertTrue(r.body == want, "%s: %d bytes, the file has %d" %
                                (path, len(r.body), len(want)))
                etag = r.header("etag")
                self.assertTrue(etag and etag.startswith('"'), r.headers)
                self.assertEqual(http_get(cp.port, path, "If-None-Match: %s\r\n" % etag).status,
                                 304)
                self.assertEqual(http_get(cp.port, path + "?v=2").body, want)
                r = http_request(cp.port, "HEAD", path)
                self.assertEqual((r.status, r.header("content-length"), r.body),
                                 (200, str(len(want)), b""))
                r = http_request(cp.port, "POST", path)
                self.assertEqual(r.status, 405)
                self.assertEqual(r.header("allow"), "GET, HEAD")
            self.assertNotEqual(http_get(cp.port, "/watch/hls.js").header("etag"),
                                http_get(cp.port, "/watch/dash.js").header("etag"))
            # A fixed list: no other name, and no path from the request, reaches the folder.
            for path in ("/watch/../x", "/watch/../secret", "/watch/../watch/hls.js",
                         "/watch/%2e%2e/secret", "/watch/%2e%2e/hls.js", "/watch/",
                         "/watch/hls.js/", "/watch//hls.js", "/watch/./hls.js", "/watch/hls.min.js",
                         "/watch/x.js", "/watch/hls.js.map", "/watch/dash.all.min.js",
                         "/watch/hls.js/dist/hls.min.js", "/watch/hls.js%2fdist%2fhls.min.js",
                         "/watch/node_modules/hls.js", "/watch/hls%2ejs", "/watch/HLS.JS",
                         "/hls.js", "/watch.js", "/watch/secret"):
                r = http_get(cp.port, path)
                self.assertIn(r.status, (400, 404), path)
                self.assertLess(len(r.body), 500, path)

    def test_without_players_then_installed(self):
        with Control(os.path.join(self.dir, "cp"), "web.player_dir=" + self.nm) as cp:
            i = cp.wait_line(MISSING)
            self.assertIn('path="%s"' % self.nm, cp.lines[i])
            self.assertIn('missing="%s,%s"' % (LIBS["/watch/hls.js"], LIBS["/watch/dash.js"]),
                          cp.lines[i])
            self.assertEqual(sum(MISSING in x for x in cp.lines), 1, cp.lines)
            r = http_get(cp.port, "/watch")
            self.assertEqual(r.status, 200)
            self.assertIn(MISSING.encode(), r.body)
            for path in LIBS:
                r = http_get(cp.port, path)
                self.assertEqual(r.status, 404, path)
                self.assertIn(MISSING, json.loads(r.body)["detail"])
            # hls.js installed: served after a reload; dash.js still missing, and said so.
            self.install("/watch/hls.js", 1000)
            n = len(cp.lines)
            cp.signal(signal.SIGHUP)
            i = cp.wait_line(MISSING, start=n)
            self.assertIn('missing="%s"' % LIBS["/watch/dash.js"], cp.lines[i])
            cp.wait_line('msg="reloaded"', start=n)
            r = http_get(cp.port, "/watch/hls.js")
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == self.bytes["/watch/hls.js"])
            self.assertEqual(http_get(cp.port, "/watch/dash.js").status, 404)
            # Both there: no warning at the next reload. Removed again: 404 after a reload.
            self.install("/watch/dash.js", 1000)
            n = len(cp.lines)
            cp.signal(signal.SIGHUP)
            cp.wait_line('msg="reloaded"', start=n)
            self.assertFalse(any(MISSING in x for x in cp.lines[n:]), cp.lines[n:])
            self.assertEqual(http_get(cp.port, "/watch/dash.js").body, self.bytes["/watch/dash.js"])
            shutil.rmtree(os.path.join(self.nm, "hls.js"))
            n = len(cp.lines)
            cp.signal(signal.SIGHUP)
            cp.wait_line('msg="reloaded"', start=n)
            self.assertEqual(http_get(cp.port, "/watch/hls.js").status, 404)


if __name__ == "__main__":
    unittest.main()
