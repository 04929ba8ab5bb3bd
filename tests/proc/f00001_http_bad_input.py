"""Hostile HTTP/1.1 input against tomato-edge --static: each gets the exact status (rejections
close the connection), the matching counter in /metrics moves, and the server goes on serving.
Paths never lead out of the static root; slow, idle and non-reading clients are cut off by the
[http] timeouts."""
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Edge, RawConn, http_get

MIB = 1024 * 1024
SECRET = b"TOP-SECRET-outside-the-root\n"

BAD_REQUEST = 'tmt_http_requests_rejected_total{reason="bad_request"}'
URI_TOO_LONG = 'tmt_http_requests_rejected_total{reason="uri_too_long"}'
HEAD_TOO_LARGE = 'tmt_http_requests_rejected_total{reason="head_too_large"}'
BODY_TOO_LARGE = 'tmt_http_requests_rejected_total{reason="body_too_large"}'
BAD_VERSION = 'tmt_http_requests_rejected_total{reason="bad_version"}'
BAD_CODING = 'tmt_http_requests_rejected_total{reason="bad_coding"}'
RESP_4XX = 'tmt_http_responses_total{code="4xx"}'
T_HEADER = 'tmt_http_timeouts_total{phase="header"}'
T_BODY = 'tmt_http_timeouts_total{phase="body"}'
T_IDLE = 'tmt_http_timeouts_total{phase="idle"}'
T_WRITE = 'tmt_http_timeouts_total{phase="write"}'


def req(line, *fields, body=b""):
    head = line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    return head.encode("latin-1") + body


GOOD = req("GET /small.txt HTTP/1.1", "Host: t")


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="f00001-")
        cls.root = os.path.join(cls.tmp, "root")
        outside = os.path.join(cls.tmp, "outside")
        os.makedirs(os.path.join(cls.root, "sub"))
        os.makedirs(outside)
        cls.small = b"small file\n"
        cls.big = os.urandom(MIB)
        for name, data in (("small.txt", cls.small), ("big.bin", cls.big),
                           ("sub/page.txt", b"page\n"), (".hidden", SECRET),
                           ("sub/.env", SECRET)):
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        with open(os.path.join(cls.root, "large.bin"), "wb") as f:
            f.write(os.urandom(300 * 1024))
        with open(os.path.join(cls.root, "huge.bin"), "wb") as f:
            f.truncate(64 * MIB)  # sparse: more than any socket buffer holds
        with open(os.path.join(cls.root, "8m.bin"), "wb") as f:
            f.truncate(8 * MIB)
        with open(os.path.join(outside, "secret.txt"), "wb") as f:
            f.write(SECRET)
        # Links inside the root that point out of it, absolute and relative, to a file and to a
        # directory.
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(cls.root, "abs-link.txt"))
        os.symlink("../outside/secret.txt", os.path.join(cls.root, "rel-link.txt"))
        os.symlink("../../outside", os.path.join(cls.root, "sub", "out-dir"))
        cls.edge = Edge("http.max_head_size=1k", "http.max_headers=8",
                        "http.max_uri_length=64", "http.max_body_size=1k",
                        "http.header_timeout=1s", "http.body_timeout=1s", static=cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.port = self.edge.port

    def tearDown(self):
        self.assert_serving()

    def assert_serving(self):
        """The server is up and answers a plain request on a new connection."""
        self.assertIsNone(self.edge.proc.poll(), "tomato-edge exited:\n" +
                          "\n".join(self.edge.lines[-20:]))
        r = http_get(self.port, "/small.txt", timeout=3)
        self.assertEqual((r.status, r.body), (200, self.small))

    def metrics(self):
        return self.edge.metrics()

    def assert_moved(self, before, key, by=1):
        after = self.metrics()
        self.assertEqual(after[key] - before[key], by, key)

    def send_expect(self, data, status, counter=None, close=True, head_only=False):
        """Sends data on a new connection; asserts the response status, that the connection is
        closed (or kept, with close=False), and that counter moved by one."""
        before = self.metrics()
        with RawConn(self.port, timeout=4) as c:
            try:
                c.send(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may refuse before taking everything; its answer is still there
            r = c.read_response(head_only=head_only)
            self.assertEqual(r.status, status, r)
            if close:
                self.assertEqual(r.header("Connection"), "close", r)
                self.assertTrue(c.closed_by_peer(3), "the server kept the connection open")
                self.assertEqual(c.buf, b"", "bytes after the rejection")
            else:
                self.assertIsNone(r.header("Connection"))
                c.send(GOOD)
                r2 = c.read_response()
                self.assertEqual((r2.status, r2.body), (200, self.small))
        if counter is not None:
            self.assert_moved(before, counter)
        self.assert_moved(before, RESP_4XX if status < 500 else
                          'tmt_http_responses_total{code="5xx"}')
        return r

    # ---- malformed heads ----

    def test_malformed_request_line(self):
        for data in (b"GET\r\n\r\n", b"GET /small.txt\r\nHost: t\r\n\r\n",
                     b"GET  /small.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                     b"GET /small.txt HTTP/1.1 extra\r\nHost: t\r\n\r\n",
                     b"GET /small.txt HTTP/1.x\r\nHost: t\r\n\r\n",
                     b"G(T /small.txt HTTP/1.1\r\nHost: t\r\n\r\n",
                     b"GET /small.txt#frag HTTP/1.1\r\nHost: t\r\n\r\n",
                     b"GET /small.txt HTTP/1.1\rHost: t\r\n\r\n"):
            with self.subTest(data):
                self.send_expect(data, 400, BAD_REQUEST)

    def test_space_before_colon(self):
        self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", "X-Bad : 1"), 400,
                         BAD_REQUEST)

    def test_bad_header_names(self):
        for field in ("X(Bad): 1", ": empty name", "X-Bad\x01: 1", "No colon here"):
            with self.subTest(field):
                self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", field), 400,
                                 BAD_REQUEST)

    def test_obs_fold(self):
        self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", "X-Folded: a", " b"), 400,
                         BAD_REQUEST)
        self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", "X-Folded: a", "\tb"), 400,
                         BAD_REQUEST)

    def test_control_bytes_in_header_value(self):
        # NUL, other controls and DEL, at positions both in and after the first 8 value bytes.
        for value in ("a\x00b", "abcdefghijkl\x00mnop", "abcdefghijkl\x1fmnop", "abc\x10",
                      "abcdefghijklmnop\x7f", "\x0bvertical-tab"):
            with self.subTest(value):
                self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", "X-V: " + value),
                                 400, BAD_REQUEST)

    def test_missing_host(self):
        self.send_expect(req("GET /small.txt HTTP/1.1", "Accept: */*"), 400, BAD_REQUEST)
        self.send_expect(req("GET /small.txt HTTP/1.1", "Host: a", "Host: b"), 400, BAD_REQUEST)
        # HTTP/1.0 needs none.
        with RawConn(self.port) as c:
            c.send(req("GET /small.txt HTTP/1.0"))
            self.assertEqual(c.read_response().status, 200)

    def test_bad_version(self):
        for version in ("HTTP/2.0", "HTTP/3.7", "HTTP/1.2", "HTTP/0.9"):
            with self.subTest(version):
                self.send_expect(req("GET /small.txt " + version, "Host: t"), 505, BAD_VERSION)

    def test_garbage(self):
        junk = bytes(range(256)) * 2
        self.send_expect(junk[128:] + b"\r\n\r\n", 400, BAD_REQUEST)
        self.send_expect(b"\x00\x01\x02\x03\r\n\r\n", 400, BAD_REQUEST)
        self.send_expect(b"\xff\xfe GET / HTTP/1.1\r\n\r\n", 400, BAD_REQUEST)
        self.send_expect(b"\r\n" * 20 + GOOD, 400, BAD_REQUEST)

    def test_tls_client_hello_on_plain_port(self):
        # A TLS record has no line end: the server waits for one, then gives up within the
        # header timeout (or refuses at once), and closes.
        hello = (b"\x16\x03\x01\x00\xc0\x01\x00\x00\xbc\x03\x03" + bytes(range(32)) +
                 b"\x00\x02\x13\x01\x01\x00" + b"\x00" * 100)
        hello = hello.replace(b"\n", b"\x0b")
        with RawConn(self.port, timeout=4) as c:
            t0 = time.monotonic()
            c.send(hello)
            r = c.read_response()
            self.assertIn(r.status, (400, 408))
            self.assertTrue(c.closed_by_peer(3))
            self.assertLess(time.monotonic() - t0, 3.5)

    # ---- limits ----

    def test_head_too_large(self):
        self.send_expect(req("GET /small.txt HTTP/1.1", "Host: t", "X-Big: " + "a" * 2000), 431,
                         HEAD_TOO_LARGE)
        # Many small fields adding up to more than 1 KiB, still under the field count.
        fields = ["Host: t"] + ["X-F%d: %s" % (i, "b" * 200) for i in range(6)]
        self.send_expect(req("GET /small.txt HTTP/1.1", *fields), 431, HEAD_TOO_LARGE)
        # Just under the limit is fine.
        fields = ["Host: t", "X-Fit: " + "c" * 900]
        with RawConn(self.port) as c:
            c.send(req("GET /small.txt HTTP/1.1", *fields))
            self.assertEqual(c.read_response().status, 200)

    def test_too_many_headers(self):
        fields = ["Host: t"] + ["X-H%d: v" % i for i in range(11)]
        self.send_expect(req("GET /small.txt HTTP/1.1", *fields), 431, HEAD_TOO_LARGE)
        # Eight fields are allowed.
        with RawConn(self.port) as c:
            c.send(req("GET /small.txt HTTP/1.1", *fields[:8]))
            self.assertEqual(c.read_response().status, 200)

    def test_uri_too_long(self):
        self.send_expect(req("GET /" + "u" * 100 + " HTTP/1.1", "Host: t"), 414, URI_TOO_LONG)
        self.send_expect(req("GET /small.txt?" + "q" * 80 + " HTTP/1.1", "Host: t"), 414,
                         URI_TOO_LONG)
        # A request line with no end, longer than the whole head may be.
        before = self.metrics()
        with RawConn(self.port) as c:
            c.send(b"GET /" + b"v" * 3000)
            r = c.read_response()
            self.assertIn(r.status, (414, 431))
            self.assertTrue(c.closed_by_peer(3))
        after = self.metrics()
        self.assertEqual(after[URI_TOO_LONG] + after[HEAD_TOO_LARGE] -
                         before[URI_TOO_LONG] - before[HEAD_TOO_LARGE], 1)

    def test_body_too_large_content_length(self):
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 2000"),
                         413, BODY_TOO_LARGE)
        # The body sent eagerly behind the head, more than the server reads before refusing.
        body = b"x" * (2 * MIB)
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                             "Content-Length: %d" % len(body), body=body), 413, BODY_TOO_LARGE)
        self.send_expect(req("PUT /small.txt HTTP/1.1", "Host: t",
                             "Content-Length: 99999999999999", body=b"x" * 100), 413,
                         BODY_TOO_LARGE)

    def test_body_too_large_chunked(self):
        chunk = b"400\r\n" + b"y" * 1024 + b"\r\n"
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                             body=chunk * 2 + b"0\r\n\r\n"), 413, BODY_TOO_LARGE)
        # Many small chunks adding up past the limit.
        small = b"10\r\n" + b"z" * 16 + b"\r\n"
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                             body=small * 100 + b"0\r\n\r\n"), 413, BODY_TOO_LARGE)

    def test_body_within_limit_reaches_handler(self):
        # A body under the limit is read whole; static answers 405 and the connection stays.
        body = b"k" * 1000
        r = self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                                 "Content-Length: %d" % len(body), body=body), 405, close=False)
        self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_bad_chunked_body(self):
        for body in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX0\r\n\r\n",
                     b"-1\r\nabc\r\n0\r\n\r\n"):
            with self.subTest(body):
                self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                                     "Transfer-Encoding: chunked", body=body), 400, BAD_REQUEST)

    def test_method_not_allowed(self):
        for method in ("POST", "PUT", "DELETE", "PATCH", "BREW", "OPTIONS"):
            with self.subTest(method):
                fields = ["Host: t"]
                if method in ("POST", "PUT", "PATCH"):
                    fields.append("Content-Length: 0")
                r = self.send_expect(req("%s /small.txt HTTP/1.1" % method, *fields), 405,
                                     close=False)
                self.assertEqual(r.header("Allow"), "GET, HEAD")

    # ---- message framing ----

    def test_content_length_and_transfer_encoding(self):
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 5",
                             "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400, BAD_REQUEST)
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                             "Content-Length: 5", body=b"0\r\n\r\n"), 400, BAD_REQUEST)

    def test_differing_content_length(self):
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 5",
                             "Content-Length: 6", body=b"abcdef"), 400, BAD_REQUEST)
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 5, 6",
                             body=b"abcdef"), 400, BAD_REQUEST)
        for bad in ("+5", "-1", "0x5", "5 5", "", "1" * 30):
            with self.subTest(bad):
                self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                                     "Content-Length: " + bad, body=b"abcde"), 400, BAD_REQUEST)

    def test_transfer_codings(self):
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Transfer-Encoding: gzip",
                             body=b"abc"), 501, BAD_CODING)
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                             "Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 501,
                         BAD_CODING)
        # chunked not last, or twice, is a framing error.
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t",
                             "Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), 400,
                         BAD_REQUEST)
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                             "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400, BAD_REQUEST)
        self.send_expect(req("POST /small.txt HTTP/1.0", "Transfer-Encoding: chunked",
                             body=b"0\r\n\r\n"), 400, BAD_REQUEST)

    # ---- paths ----

    def test_path_traversal(self):
        cases = [
            ("/../etc/passwd", 400),
            ("/%2e%2e/%2e%2e/etc/passwd", 400),
            ("/sub/%2E%2E/..%2f", 400),
            ("/sub/..%2fsmall.txt", 400),
            ("/sub/%2e%2e%2fsmall.txt", 400),
            ("/sub/..%5csmall.txt", 400),
            ("/sub/./page.txt", 400),
            ("/sub/%2e/page.txt", 400),
            ("/a%00b", 400),
            ("/small.txt%00.html", 400),
            ("/a%0d%0ab", 400),
            ("/bad%zzpercent", 400),
            ("/trail%2", 400),
            ("/.hidden", 404),
            ("/%2ehidden", 404),
            ("/sub/.env", 404),
            ("/abs-link.txt", 404),
            ("/rel-link.txt", 404),
            ("/sub/out-dir/secret.txt", 404),
            ("//etc/passwd", 404),
            ("/etc/passwd", 404),
        ]
        for path, status in cases:
            with self.subTest(path):
                before = self.metrics()
                with RawConn(self.port) as c:
                    c.send(req("GET %s HTTP/1.1" % path, "Host: t"))
                    r = c.read_response()
                    self.assertEqual(r.status, status, r)
                    self.assertNotIn(SECRET.strip(), r.body)
                    self.assertNotIn(b"root:", r.body)
                    # A handler's refusal keeps the connection.
                    c.send(GOOD)
                    self.assertEqual(c.read_response().body, self.small)
                self.assert_moved(before, RESP_4XX)
        # Absolute-form and HEAD take the same checks.
        for line in ("GET http://t/../etc/passwd HTTP/1.1", "HEAD /%2e%2e/etc/passwd HTTP/1.1"):
            with self.subTest(line), RawConn(self.port) as c:
                c.send(req(line, "Host: t"))
                self.assertEqual(c.read_response(head_only=line.startswith("HEAD")).status, 400)

    def test_path_traversal_h2(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        for path, status in (("/../etc/passwd", 400), ("/%2e%2e/etc/passwd", 400),
                             ("/abs-link.txt", 404), ("/sub/out-dir/secret.txt", 404),
                             ("/.hidden", 404)):
            with self.subTest(path):
                r = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "10",
                                    "--http2-prior-knowledge", "--path-as-is",
                                    "-w", "\n%{http_code}", self.edge.url(path)],
                                   capture_output=True, timeout=20)
                body, _, code = r.stdout.rpartition(b"\n")
                self.assertEqual(code, b"%d" % status)
                self.assertNotIn(SECRET.strip(), body)

    # ---- slow and idle clients ----

    def test_slowloris(self):
        before = self.metrics()
        with RawConn(self.port, timeout=5) as c:
            data = b"GET /small.txt HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 200
            t0 = time.monotonic()
            answered = None
            for i in range(len(data)):
                try:
                    c.send(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    answered = time.monotonic() - t0
                    break
                r, _, _ = select.select([c.sock], [], [], 0.3)
                if r:
                    answered = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > 5:
                    break
            self.assertIsNotNone(answered, "the server took a trickled head for over 5 s")
            self.assertGreater(answered, 0.9)
            self.assertLess(answered, 3.0)
            r = c.read_response()
            self.assertEqual(r.status, 408)
            self.assertTrue(c.closed_by_peer(3))
        self.assert_moved(before, T_HEADER)

    def test_partial_head_then_silence(self):
        before = self.metrics()
        with RawConn(self.port, timeout=5) as c:
            t0 = time.monotonic()
            c.send(b"GET /small.txt HTTP/1.1\r\nHost: t\r\n")
            r = c.read_response()
            took = time.monotonic() - t0
            self.assertEqual(r.status, 408)
            self.assertTrue(c.closed_by_peer(3))
            self.assertGreater(took, 0.8)
            self.assertLess(took, 3.0)
        self.assert_moved(before, T_HEADER)

    def test_body_timeout(self):
        before = self.metrics()
        with RawConn(self.port, timeout=5) as c:
            t0 = time.monotonic()
            c.send(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 100",
                       body=b"only part"))
            r = c.read_response()
            took = time.monotonic() - t0
            self.assertEqual(r.status, 408)
            self.assertTrue(c.closed_by_peer(3))
            self.assertGreater(took, 0.8)
            self.assertLess(took, 3.0)
        self.assert_moved(before, T_BODY)

    def test_idle_keep_alive_closed(self):
        with Edge("http.idle_timeout=1s", static=self.root) as e:
            with RawConn(e.port, timeout=5) as c:
                c.send(GOOD)
                self.assertEqual(c.read_response().status, 200)
                t0 = time.monotonic()
                self.assertTrue(c.closed_by_peer(4), "idle keep-alive connection not closed")
                took = time.monotonic() - t0
                self.assertEqual(c.buf, b"")
                self.assertGreater(took, 0.8)
                self.assertLess(took, 3.0)
            # A connection that never sends anything is idle too.
            with RawConn(e.port, timeout=5) as c:
                t0 = time.monotonic()
                self.assertTrue(c.closed_by_peer(4))
                self.assertLess(time.monotonic() - t0, 3.0)
                self.assertEqual(c.buf, b"")
            # The gauge drops just after the close the client saw: give the worker a moment.
            deadline = time.monotonic() + 3
            while e.metrics()["tmt_http_connections_open"] != 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            m = e.metrics()
            self.assertEqual(m[T_IDLE], 2)
            self.assertEqual(m["tmt_http_connections_open"], 0)

    def client_never_reads(self, data):
        """Sends data on a connection that never reads, to a server whose write timeout (1 s) is
        shorter than its idle timeout: the server must drop the connection after the write
        timeout while it goes on serving others."""
        with Edge("http.write_timeout=1s", "http.idle_timeout=30s", static=self.root) as e:
            before = e.metrics()
            c = RawConn(e.port, timeout=5, rcvbuf=4096)
            try:
                c.send(data)
                t0 = time.monotonic()
                # Others are served while this client stalls.
                for _ in range(3):
                    r = http_get(e.port, "/small.txt", timeout=2)
                    self.assertEqual(r.status, 200)
                self.assertLess(time.monotonic() - t0, 1.0)
                # The server gives up on it after the write timeout.
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    m = e.metrics()
                    if m[T_WRITE] > before[T_WRITE]:
                        break
                    time.sleep(0.1)
                took = time.monotonic() - t0
                self.assertEqual(m[T_WRITE] - before[T_WRITE], 1, "no write timeout")
                self.assertGreater(took, 0.8)
                self.assertLess(took, 4.0)
                self.assertEqual(m["tmt_http_connections_open"], 0)
                # The client sees the end too, once it reads what the kernel still holds for it
                # (with a larger window now, so that this goes fast), far short of what it asked
                # for.
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                self.assertTrue(c.closed_by_peer(15))
                self.assertLess(len(c.buf), 16 * MIB)
            finally:
                c.close()
            self.assertEqual(http_get(e.port, "/small.txt").body, self.small)

    def test_client_never_reads(self):
        self.client_never_reads(req("GET /huge.bin HTTP/1.1", "Host: t"))

    # Regression: requests pipelined behind a response of more than 256 KiB that the socket took
    # whole were never processed (b00004 test_pipelining_after_large_response), leaving the
    # connection with no timeout armed, so a client that never read held it forever.
    def test_client_never_reads_pipelined(self):
        self.client_never_reads(req("GET /large.bin HTTP/1.1", "Host: t") * 30)

    # Regression: on HTTP/1.1 the idle timeout started when the handler ended the response, not
    # when the response had been written, so a client reading a large response steadily for
    # longer than http.idle_timeout was cut off mid-body.
    def test_slow_reader_not_cut_by_idle_timeout(self):
        size = 8 * MIB
        # The write timeout is left long: with a 4 MiB send buffer the kernel reports room only
        # when a third of it is free, which at 2 MB/s can take longer than a second.
        with Edge("http.idle_timeout=1s", "http.write_timeout=10s", static=self.root) as e, \
                RawConn(e.port, timeout=5, rcvbuf=64 * 1024) as c:
            c.send(req("GET /8m.bin HTTP/1.1", "Host: t"))
            got = 0
            t0 = time.monotonic()
            # About 2 MB/s, 4 s in all: four times the idle timeout.
            while got < size + 200 and time.monotonic() - t0 < 15:
                c.sock.settimeout(3)
                try:
                    d = c.sock.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    d = b""
                if not d:
                    break
                got += len(d)
                time.sleep(0.03)
            self.assertGreater(got, size, "connection closed after %d bytes in %.1f s" %
                               (got, time.monotonic() - t0))
            # The idle wait may end the connection once the last bytes are in the socket (the
            # kernel still delivers them); it must never cut the body short.
            self.assertEqual(e.metrics()[T_WRITE], 0)

    def test_client_aborts_mid_response(self):
        # Clients that leave in the middle of large responses leave nothing open behind them.
        pid = self.edge.proc.pid
        # Static mode keeps a file it served open for a second in each worker's open-file
        # cache: the baseline allows one descriptor per worker (two here) for it.
        with RawConn(self.port, timeout=5) as c:
            c.send(req("HEAD /huge.bin HTTP/1.1", "Host: t"))
            c.read_response(head_only=True)
        fds = len(os.listdir("/proc/%d/fd" % pid)) + 1
        for _ in range(10):
            with RawConn(self.port, timeout=5, rcvbuf=4096) as c:
                c.send(req("GET /huge.bin HTTP/1.1", "Host: t"))
                self.assertTrue(c.sock.recv(1000).startswith(b"HTTP/1.1 200 "))
        # Every viewer connection closes (the admin connection of each scrape is not counted
        # there, but it holds a descriptor for a moment: count descriptors after the scrapes).
        deadline = time.monotonic() + 3
        while self.metrics()["tmt_http_connections_open"] != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.metrics()["tmt_http_connections_open"], 0)
        deadline = time.monotonic() + 3
        while len(os.listdir("/proc/%d/fd" % pid)) > fds and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertLessEqual(len(os.listdir("/proc/%d/fd" % pid)), fds)

    def test_connection_limit(self):
        # Two workers share four connections: the rest are closed at once and counted.
        with Edge("http.max_connections=4", static=self.root) as e:
            conns = []
            try:
                for _ in range(12):
                    conns.append(RawConn(e.port, timeout=3))
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    m = e.metrics()
                    if m["tmt_http_connections_accepted_total"] + \
                            m["tmt_http_connections_rejected_total"] >= 12:
                        break
                    time.sleep(0.05)
                self.assertLessEqual(m["tmt_http_connections_accepted_total"], 4)
                self.assertGreaterEqual(m["tmt_http_connections_rejected_total"], 8)
                self.assertEqual(m["tmt_http_connections_accepted_total"] +
                                 m["tmt_http_connections_rejected_total"], 12)
                served = 0
                for c in conns:
                    try:
                        c.send(GOOD)
                        if c.read_response().status == 200:
                            served += 1
                    except (AssertionError, OSError):
                        pass
                self.assertEqual(served, m["tmt_http_connections_accepted_total"])
            finally:
                for c in conns:
                    c.close()
            # Once they are gone there is room again.
            deadline = time.monotonic() + 3
            while e.metrics()["tmt_http_connections_open"] > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(http_get(e.port, "/small.txt").body, self.small)

    def test_expect_continue(self):
        with RawConn(self.port) as c:
            c.send(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 10",
                       "Expect: 100-continue"))
            self.assertEqual(c.read_response().status, 100)
            c.send(b"0123456789")
            r = c.read_response()
            self.assertEqual(r.status, 405)
            c.send(GOOD)
            self.assertEqual(c.read_response().body, self.small)
        # Over the limit: refused without a 100 Continue.
        self.send_expect(req("POST /small.txt HTTP/1.1", "Host: t", "Content-Length: 5000",
                             "Expect: 100-continue"), 413, BODY_TOO_LARGE)

    def test_many_idle_connections_do_not_block(self):
        # A crowd of connections that opened and sent nothing does not stop others.
        conns = [RawConn(self.port, timeout=5) for _ in range(50)]
        try:
            r = http_get(self.port, "/sub/page.txt", timeout=2)
            self.assertEqual(r.status, 200)
        finally:
            for c in conns:
                c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
