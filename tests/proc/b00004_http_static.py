"""tomato-edge --static serves a directory over HTTP/1.1 and h2c as clients use it: whole files,
HEAD, ranges, conditional requests, directory indexes, keep-alive, pipelining, many concurrent
HTTP/2 streams, the admin endpoints and the access log."""
import email.utils
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Edge, RawConn, http_get, scrape_metrics

MIB = 1024 * 1024
CURL = ["curl", "-sS", "--noproxy", "*", "--max-time", "20"]


def have(tool):
    return shutil.which(tool) is not None


def run_tool(argv, timeout=30):
    return subprocess.run(argv, capture_output=True, timeout=timeout)


class HttpStatic(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="b00004-")
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(os.path.join(cls.root, "sub"))
        os.makedirs(os.path.join(cls.root, "alog"))
        cls.files = {
            "small.txt": b"hello tomato\n",
            "big.bin": random.Random(4).randbytes(MIB),
            "mid.bin": random.Random(5).randbytes(200 * 1024),
            "large.bin": random.Random(6).randbytes(300 * 1024),
            "index.html": b"<p>root index</p>\n",
            "sub/index.html": b"<p>sub index</p>\n",
            "sub/page.txt": b"a page in sub\n",
            "alog/one.txt": b"0123456789abcdefghij",
        }
        for name, data in cls.files.items():
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        cls.access_log = os.path.join(cls.tmp, "access.log")
        cls.edge = Edge("log.access_log=" + cls.access_log, static=cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.assertIsNone(self.edge.proc.poll(), "tomato-edge exited")
        self.port = self.edge.port

    def url(self, path):
        return self.edge.url(path)

    def curl(self, *args):
        r = run_tool(CURL + list(args))
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r

    # ---- whole files ----

    def test_get_files_h1_and_h2c(self):
        out = os.path.join(self.tmp, "out.bin")
        for proto, want_ver in (("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")):
            for name in ("small.txt", "big.bin", "sub/page.txt"):
                with self.subTest(proto=proto, name=name):
                    r = self.curl(proto, "-o", out, "-w", "%{http_code} %{http_version}",
                                  self.url("/" + name))
                    self.assertEqual(r.stdout.decode(), "200 " + want_ver)
                    with open(out, "rb") as f:
                        self.assertEqual(f.read(), self.files[name])

    def test_content_type(self):
        r = http_get(self.port, "/small.txt")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        r = http_get(self.port, "/big.bin")
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_head(self):
        size = len(self.files["big.bin"])
        with RawConn(self.port) as c:
            # A GET pipelined behind the HEAD: any body bytes after the HEAD's head would be
            # read as the GET's status line.
            c.send("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            h = c.read_response(head_only=True)
            self.assertEqual(h.status, 200)
            self.assertEqual(h.header("Content-Length"), str(size))
            self.assertIsNotNone(h.header("ETag"))
            g = c.read_response()
            self.assertEqual(g.status, 200)
            self.assertEqual(g.body, self.files["small.txt"])
        r = self.curl("--http2-prior-knowledge", "-I", self.url("/big.bin"))
        self.assertRegex(r.stdout.decode(), r"(?mi)^content-length: %d\r?$" % size)
        self.assertRegex(r.stdout.decode(), r"^HTTP/2 200")

    # ---- ranges ----

    def test_range(self):
        data = self.files["big.bin"]
        size = len(data)
        cases = [
            ("bytes=0-9", 0, 9),
            ("bytes=1000-", 1000, size - 1),
            ("bytes=-5", size - 5, size - 1),
            ("bytes=100-99999999", 100, size - 1),
        ]
        for rng, first, last in cases:
            with self.subTest(rng):
                r = http_get(self.port, "/big.bin", "Range: %s\r\n" % rng)
                self.assertEqual(r.status, 206)
                self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, size))
                self.assertEqual(r.header("Content-Length"), str(last - first + 1))
                self.assertEqual(r.body, data[first:last + 1])

        r = http_get(self.port, "/big.bin", "Range: bytes=%d-\r\n" % size)
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */%d" % size)

        # Several ranges: the server may ignore Range, and does: the whole file.
        r = http_get(self.port, "/big.bin", "Range: bytes=0-1,5-6\r\n")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Range"))
        self.assertEqual(r.body, data)

        # The same over h2c through curl.
        out = os.path.join(self.tmp, "range.bin")
        r = self.curl("--http2-prior-knowledge", "-r", "10-19", "-o", out, "-w", "%{http_code}",
                      self.url("/big.bin"))
        self.assertEqual(r.stdout, b"206")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data[10:20])

    def test_if_range(self):
        data = self.files["big.bin"]
        etag = http_get(self.port, "/big.bin").header("ETag")
        r = http_get(self.port, "/big.bin", "Range: bytes=0-3\r\nIf-Range: %s\r\n" % etag)
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, data[:4])
        r = http_get(self.port, "/big.bin", "Range: bytes=0-3\r\nIf-Range: \"other\"\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), len(data))

    # ---- conditional requests ----

    def test_conditional(self):
        r = http_get(self.port, "/small.txt")
        etag, lm = r.header("ETag"), r.header("Last-Modified")
        self.assertRegex(etag, r'^"[^"]+"$')
        self.assertIsNotNone(lm)

        with RawConn(self.port) as c:
            c.send("GET /small.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"nope\", %s\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"nope\"\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\n"
                   "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n\r\n"
                   % (etag, etag, lm))
            for i, want in enumerate((304, 304, 304, 200, 200)):
                r = c.read_response()
                self.assertEqual(r.status, want, "request %d" % i)
                if want == 304:
                    self.assertEqual(r.body, b"")
                    self.assertEqual(r.header("ETag"), etag)
                else:
                    self.assertEqual(r.body, self.files["small.txt"])
            # Still in step: a last plain GET after the 304s.
            c.send("GET /sub/page.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(c.read_response().body, self.files["sub/page.txt"])

        r = self.curl("--http2-prior-knowledge", "-H", "If-None-Match: " + etag, "-o",
                      os.devnull, "-w", "%{http_code}", self.url("/small.txt"))
        self.assertEqual(r.stdout, b"304")

    # ---- directories, headers ----

    def test_directory_index(self):
        r = http_get(self.port, "/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.files["index.html"])
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        r = http_get(self.port, "/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, self.files["sub/index.html"])
        r = http_get(self.port, "/alog/")
        self.assertEqual(r.status, 404)
        self.assertNotEqual(r.body, b"")

    def test_date_and_server(self):
        for path in ("/small.txt", "/no-such-file"):
            r = http_get(self.port, path)
            self.assertTrue(r.header("Server", "").startswith("tomato-edge/"), r.headers)
            date = r.header("Date")
            self.assertRegex(date, r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
            when = email.utils.parsedate_to_datetime(date).timestamp()
            self.assertLess(abs(when - time.time()), 5)
            self.assertEqual(len(r.header_all("Date")), 1)
        self.assertEqual(http_get(self.port, "/no-such-file").status, 404)

    # ---- connections ----

    def test_keep_alive_reuse(self):
        before = self.edge.metrics()["tmt_http_connections_accepted_total"]
        r = self.curl("--http1.1", "-v", "-o", os.devnull, "-o", os.devnull,
                      self.url("/small.txt"), self.url("/big.bin"))
        self.assertIn(b"Re-using existing connection", r.stderr)
        after = self.edge.metrics()["tmt_http_connections_accepted_total"]
        self.assertEqual(after - before, 1)

    def test_pipelining(self):
        with RawConn(self.port) as c:
            c.send("GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /mid.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                   "HEAD /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /sub/page.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            for name in ("small.txt", "mid.bin", None, "sub/page.txt"):
                r = c.read_response(head_only=name is None)
                self.assertEqual(r.status, 200)
                if name is not None:
                    self.assertEqual(r.body, self.files[name], name)
            self.assertEqual(c.buf, b"")
            # The connection stays open for more.
            c.send("GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(c.read_response().body, self.files["small.txt"])

    # Regression: a request pipelined behind a response of more than 256 KiB was never answered
    # when the socket took that whole response at once (as loopback does): the backpressure
    # check stopped taking requests and nothing restarted it.
    def test_pipelining_after_large_response(self):
        for name in ("large.bin", "big.bin"):
            with self.subTest(name), RawConn(self.port) as c:
                c.send("GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /sub/page.txt HTTP/1.1\r\nHost: t\r\n\r\n" % name)
                for want in ("small.txt", name, "sub/page.txt"):
                    r = c.read_response(timeout=3)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.body, self.files[want], want)

    def test_chunked_post_gets_405_and_keeps_framing(self):
        with RawConn(self.port) as c:
            c.send("POST /small.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
                   "GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("Allow"), "GET, HEAD")
            # The body was consumed as chunks, so the next request parses cleanly on the same
            # connection.
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.files["small.txt"])

    def test_http10(self):
        with RawConn(self.port) as c:
            c.send("GET /small.txt HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.version, "HTTP/1.0")
            self.assertEqual(r.body, self.files["small.txt"])
            self.assertTrue(c.closed_by_peer(3), "HTTP/1.0 without keep-alive must close")
        with RawConn(self.port) as c:
            for _ in range(2):
                c.send("GET /small.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.header("Connection"), "keep-alive")
                self.assertEqual(r.body, self.files["small.txt"])
        with RawConn(self.port) as c:
            c.send("GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer(3))

    # ---- HTTP/2 ----

    @unittest.skipUnless(have("nghttp"), "nghttp (nghttp2-client) is not installed")
    def test_nghttp_frames(self):
        r = run_tool(["nghttp", "-nv", "-t", "20", self.url("/big.bin")])
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-2000:])
        m = re.search(r"recv \(stream_id=(\d+)\) :status: 200", out)
        self.assertIsNotNone(m, out[-2000:])
        sid = m.group(1)
        self.assertRegex(out, r"recv \(stream_id=%s\) content-length: %d" % (sid, MIB))
        lens = [int(n) for n in re.findall(r"recv DATA frame <length=(\d+), flags=0x0[01], "
                                           r"stream_id=%s>" % sid, out)]
        self.assertEqual(sum(lens), MIB)
        self.assertTrue(all(n <= 16384 for n in lens))
        self.assertRegex(out, r"recv DATA frame <length=\d+, flags=0x01, stream_id=%s>\s+"
                              r"; END_STREAM" % sid)
        self.assertRegex(out, r"recv SETTINGS frame <length=\d+, flags=0x00, stream_id=0>\s+"
                              r"\(niv=\d+\)\s+\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):128\]")
        self.assertNotIn("RST_STREAM", out)

    @unittest.skipUnless(have("nghttp"), "nghttp (nghttp2-client) is not installed")
    def test_nghttp_many_streams(self):
        before = self.edge.metrics()["tmt_http2_streams_total"]
        r = run_tool(["nghttp", "-n", "-s", "-m", "50", "-t", "20", self.url("/small.txt")])
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out[-2000:])
        # -s prints one statistics line per stream: "+<time> +<time> <id> /small.txt".
        self.assertEqual(len(re.findall(r"/small\.txt\s*$", out, re.M)), 50, out[-2000:])
        after = self.edge.metrics()["tmt_http2_streams_total"]
        self.assertEqual(after - before, 50)

    @unittest.skipUnless(have("h2load"), "h2load (nghttp2-client) is not installed")
    def test_h2load(self):
        before = self.edge.metrics()
        r = run_tool(["h2load", "-n", "200", "-c", "2", "-m", "20", "-T", "20",
                      self.url("/sub/page.txt")], timeout=40)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored",
                      out)
        self.assertRegex(out, r"status codes: 200 2xx, 0 3xx, 0 4xx, 0 5xx")
        after = self.edge.metrics()
        self.assertEqual(after["tmt_http2_streams_total"] - before["tmt_http2_streams_total"], 200)
        self.assertEqual(after['tmt_http_responses_total{code="2xx"}'] -
                         before['tmt_http_responses_total{code="2xx"}'], 200)
        self.assertEqual(after["tmt_http2_protocol_errors_total"],
                         before["tmt_http2_protocol_errors_total"])

    # ---- admin ----

    def test_admin(self):
        port = self.edge.admin_port
        r = http_get(port, "/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        r = http_get(port, "/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/plain; version=0.0.4")
        self.assertIn(b"# TYPE tmt_http_requests_total counter\n", r.body)
        # Anything else needs admin.credential_file's credential, configured or not.
        self.assertEqual(http_get(port, "/no-such").status, 403)
        # The viewer port serves files, not the admin endpoints.
        self.assertEqual(http_get(self.port, "/metrics").status, 404)

        m = scrape_metrics(port)
        for key in ("tmt_http_requests_total", 'tmt_http_responses_total{code="2xx"}',
                    'tmt_http_timeouts_total{phase="write"}', "tmt_http_connections_open"):
            self.assertIn(key, m)
        # The counters follow requests on the viewer port.
        http_get(self.port, "/small.txt")
        http_get(self.port, "/no-such-file")
        m2 = scrape_metrics(port)
        self.assertEqual(m2["tmt_http_requests_total"] - m["tmt_http_requests_total"], 2)
        self.assertEqual(m2['tmt_http_responses_total{code="4xx"}'] -
                         m['tmt_http_responses_total{code="4xx"}'], 1)
        self.assertEqual(m2["tmt_http_response_body_bytes_total"] -
                         m["tmt_http_response_body_bytes_total"],
                         len(self.files["small.txt"]) +
                         int(http_get(self.port, "/no-such-file").header("Content-Length")))

    # ---- access log ----

    def test_access_log(self):
        data = self.files["alog/one.txt"]
        got = {}
        got["get"] = http_get(self.port, "/alog/one.txt")
        with RawConn(self.port) as c:
            c.send("HEAD /alog/one.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            got["head"] = c.read_response(head_only=True)
        got["range"] = http_get(self.port, "/alog/one.txt", "Range: bytes=2-5\r\n")
        got["missing"] = http_get(self.port, "/alog/missing.txt?token=secret")
        self.curl("--http2-prior-knowledge", "-o", os.devnull, self.url("/alog/one.txt?h2"))
        self.assertEqual([r.status for r in got.values()], [200, 200, 206, 404])

        # Lines are written in batches, at the latest about a second later.
        deadline = time.monotonic() + 5
        lines = []
        while time.monotonic() < deadline:
            with open(self.access_log) as f:
                lines = [ln for ln in f.read().splitlines() if " path=/alog/" in ln]
            if len(lines) >= 5:
                break
            time.sleep(0.2)
        self.assertEqual(len(lines), 5, lines)
        fields = []
        for ln in lines:
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', ln))
            for k in ("time", "client", "method", "path", "proto", "status", "bytes", "dur_ms",
                      "cache", "rid"):
                self.assertIn(k, kv, ln)
            self.assertEqual(kv["client"], "127.0.0.1")
            fields.append(kv)
        by = {(f["method"], f["path"], f["proto"], f["status"]): f for f in fields}
        self.assertEqual(by[("GET", "/alog/one.txt", "h1.1", "200")]["bytes"], str(len(data)))
        self.assertEqual(by[("HEAD", "/alog/one.txt", "h1.1", "200")]["bytes"], "0")
        self.assertEqual(by[("GET", "/alog/one.txt", "h1.1", "206")]["bytes"], "4")
        miss = by[("GET", "/alog/missing.txt", "h1.1", "404")]
        self.assertEqual(miss["bytes"], str(len(got["missing"].body)))
        self.assertEqual(by[("GET", "/alog/one.txt", "h2", "200")]["bytes"], str(len(data)))


    # Regression: request ids (rid=) were counted per worker from 1, so requests served by
    # different workers shared ids.
    def test_request_ids_unique(self):
        log = os.path.join(self.tmp, "rid.log")
        with Edge("log.access_log=" + log, static=self.root, workers=2) as e:
            # Separate connections spread over both workers (all 24 on one: odds 2^-23).
            for _ in range(24):
                self.assertEqual(http_get(e.port, "/small.txt").status, 200)
            deadline = time.monotonic() + 5
            rids = []
            while time.monotonic() < deadline and len(rids) < 24:
                time.sleep(0.2)
                with open(log) as f:
                    rids = re.findall(r" rid=(\d+)", f.read())
            self.assertEqual(len(rids), 24)
            self.assertEqual(len(set(rids)), 24, sorted(rids, key=int))


if __name__ == "__main__":
    unittest.main(verbosity=2)
