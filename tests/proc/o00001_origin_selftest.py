"""The scripted test origin (harness/origin.py) that edge cache tests put behind tomato-edge:
keep-alive with both framings, HEAD, conditional requests, request bodies, every fault as a
client sees it, hold/release with concurrent clients, counts, many connections and a clean
shutdown. Drives the origin alone, with http.client and raw sockets."""
import http.client
import socket
import threading
import time
import unittest

from harness import RawConn
from harness.origin import LAST_MODIFIED, NOT_FOUND_BODY, Origin, etag_of

BODY = bytes(range(256)) * 40  # 10240 bytes


def recv_all(sock, timeout=5.0):
    """Everything until the peer closes: (bytes, "eof" or "reset")."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not d:
            return data, "eof"
        data += d


def raw(port, request, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    return s


def split_head(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for ln in lines[1:]:
        n, _, v = ln.partition(":")
        fields[n.strip().lower()] = v.strip()
    return lines[0], fields, body


class OriginSelfTest(unittest.TestCase):
    def setUp(self):
        self.o = Origin()
        self.o.put("/obj", body=BODY)
        self.port = self.o.port

    def tearDown(self):
        self.o.close()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def test_address(self):
        self.assertGreater(self.port, 0)
        self.assertEqual(self.o.addr, "127.0.0.1:%d" % self.port)
        self.assertEqual(self.o.url("/x"), "http://127.0.0.1:%d/x" % self.port)

    def test_keep_alive_content_length_and_chunked(self):
        self.o.put("/chunked", body=BODY, headers={"Transfer-Encoding": "chunked"})
        c = self.conn()
        for path in ("/obj", "/chunked", "/obj", "/missing", "/chunked"):
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            if path == "/missing":
                self.assertEqual((r.status, body), (404, NOT_FOUND_BODY))
            else:
                self.assertEqual((r.status, body), (200, BODY), path)
                self.assertEqual(r.getheader("Content-Type"), "application/octet-stream")
                self.assertEqual(r.getheader("ETag"), etag_of(BODY))
                self.assertEqual(r.getheader("Last-Modified"), LAST_MODIFIED)
                self.assertIsNotNone(r.getheader("Date"))
            if path == "/chunked":
                self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
                self.assertIsNone(r.getheader("Content-Length"))
            elif path == "/obj":
                self.assertEqual(r.getheader("Content-Length"), str(len(BODY)))
        c.close()
        self.assertEqual(self.o.connections_accepted, 1)
        self.assertEqual((self.o.count("/obj"), self.o.counts["/chunked"],
                          self.o.count("/missing")), (2, 2, 1))
        self.assertEqual([r.target for r in self.o.requests],
                         ["/obj", "/chunked", "/obj", "/missing", "/chunked"])
        self.assertEqual(self.o.requests[0].headers["host"], "127.0.0.1:%d" % self.port)
        self.o.reset_counts()
        self.assertEqual((self.o.count("/obj"), len(self.o.requests)), (0, 0))

    def test_connection_close_and_http10(self):
        with RawConn(self.port) as c:
            c.send("GET /obj HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            r = c.read_response()
            self.assertEqual((r.status, r.body, r.header("Connection")), (200, BODY, "close"))
            self.assertTrue(c.closed_by_peer(2))
        with RawConn(self.port) as c:
            c.send("GET /obj HTTP/1.0\r\n\r\n")
            self.assertEqual(c.read_response().body, BODY)
            self.assertTrue(c.closed_by_peer(2))
        with RawConn(self.port) as c:
            for _ in range(2):
                c.send("GET /obj HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response()
                self.assertEqual((r.body, r.header("Connection")), (BODY, "keep-alive"))

    def test_head_pipelined(self):
        with RawConn(self.port) as c:
            c.send("HEAD /obj HTTP/1.1\r\nHost: t\r\n\r\nGET /obj?q=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
            h = c.read_response(head_only=True)
            self.assertEqual((h.status, h.header("Content-Length")), (200, str(len(BODY))))
            self.assertEqual(c.read_response().status, 404)  # query strings match exactly
            self.assertEqual(c.read_response().body, BODY)
            self.assertEqual(c.buf, b"")
        self.assertEqual([(r.method, r.target) for r in self.o.requests],
                         [("HEAD", "/obj"), ("GET", "/obj?q=1"), ("GET", "/obj")])

    def test_conditional(self):
        etag = etag_of(BODY)
        cases = [
            ("If-None-Match: %s" % etag, 304),
            ('If-None-Match: "other", W/%s' % etag, 304),
            ("If-None-Match: *", 304),
            ('If-None-Match: "other"', 200),
            ("If-Modified-Since: %s" % LAST_MODIFIED, 304),
            ("If-Modified-Since: Tue, 02 Jan 2024 00:00:00 GMT", 304),
            ("If-Modified-Since: Sun, 31 Dec 2023 23:59:59 GMT", 200),
            ("If-Modified-Since: not a date", 200),
            # If-None-Match wins over If-Modified-Since.
            ('If-None-Match: "other"\r\nIf-Modified-Since: %s' % LAST_MODIFIED, 200),
        ]
        with RawConn(self.port) as c:
            for field, want in cases:
                for method in ("GET", "HEAD"):
                    c.send("%s /obj HTTP/1.1\r\nHost: t\r\n%s\r\n\r\n" % (method, field))
                    r = c.read_response(head_only=method == "HEAD")
                    self.assertEqual(r.status, want, (method, field))
                    if want == 304:
                        self.assertEqual(r.header("ETag"), etag)
                        self.assertIsNone(r.header("Content-Length"))
                    elif method == "GET":
                        self.assertEqual(r.body, BODY)
            # Not for other methods, nor for non-200 resources.
            c.send("POST /obj HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\nContent-Length: 0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)

    def test_headers_override_status_and_method(self):
        self.o.put("/h", body="text", headers={"Content-Type": "text/plain", "ETag": None,
                                               "Last-Modified": None, "Date": None,
                                               "Cache-Control": "max-age=60",
                                               "Vary": ["Accept", "Accept-Encoding"]})
        self.o.put("/gone", body=b"gone\n", status=410)
        self.o.put("/h", body=b"posted", status=201, method="POST")
        with RawConn(self.port) as c:
            c.send("GET /h HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.body, b"text")
            self.assertEqual(r.header("Content-Type"), "text/plain")
            self.assertEqual(r.header("Cache-Control"), "max-age=60")
            self.assertEqual(r.header_all("Vary"), ["Accept", "Accept-Encoding"])
            for name in ("ETag", "Last-Modified", "Date"):
                self.assertIsNone(r.header(name), name)
            c.send("GET /gone HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            self.assertEqual((r.status, r.body), (410, b"gone\n"))
            c.send("POST /h HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            r = c.read_response()
            self.assertEqual((r.status, r.body), (201, b"posted"))

    def test_request_bodies(self):
        with RawConn(self.port) as c:
            c.send("POST /obj HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                   "PUT /obj HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
                   "DELETE /obj HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            for _ in range(3):
                self.assertEqual(c.read_response().body, BODY)
        c = self.conn()
        c.request("PUT", "/obj", body=b"x" * 100000, headers={"Expect": "100-continue"})
        self.assertEqual(c.getresponse().read(), BODY)
        c.close()
        got = [(r.method, r.body) for r in self.o.requests]
        self.assertEqual(got, [("POST", b"hello"), ("PUT", b"abcde"), ("DELETE", b""),
                               ("PUT", b"x" * 100000)])

    def test_ranges_opt_in(self):
        self.o.put("/r", body=b"0123456789", ranges=True)
        with RawConn(self.port) as c:
            for rng, status, body in (("bytes=2-5", 206, b"2345"), ("bytes=-3", 206, b"789"),
                                      ("bytes=8-", 206, b"89"), ("bytes=20-", 416, None)):
                c.send("GET /r HTTP/1.1\r\nHost: t\r\nRange: %s\r\n\r\n" % rng)
                r = c.read_response()
                self.assertEqual(r.status, status, rng)
                if body is not None:
                    self.assertEqual(r.body, body)
            c.send("GET /obj HTTP/1.1\r\nHost: t\r\nRange: bytes=0-0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)

    # ---- faults ----

    def test_fault_chunked(self):
        self.o.fault("/obj", "chunked", size=4000)
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual(how, "eof")
        _, fields, body = split_head(data)
        self.assertEqual(fields["transfer-encoding"], "chunked")
        self.assertNotIn("content-length", fields)
        self.assertEqual(body, b"fa0\r\n" + BODY[:4000] + b"\r\nfa0\r\n" + BODY[4000:8000] +
                         b"\r\n8c0\r\n" + BODY[8000:] + b"\r\n0\r\n\r\n")
        # HEAD stays bodiless, and the connection is kept.
        with RawConn(self.port) as c:
            c.send("HEAD /obj HTTP/1.1\r\nHost: t\r\n\r\nGET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
            h = c.read_response(head_only=True)
            self.assertEqual(h.header("Transfer-Encoding"), "chunked")
            self.assertEqual(c.read_response().body, BODY)

    def test_fault_delay(self):
        self.o.fault("/obj", "delay", 0.5)
        c = self.conn()
        t0 = time.monotonic()
        c.request("GET", "/obj")
        r = c.getresponse()
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.assertEqual(r.read(), BODY)
        self.o.clear_fault("/obj")
        t0 = time.monotonic()
        c.request("GET", "/obj")
        self.assertEqual(c.getresponse().read(), BODY)
        self.assertLess(time.monotonic() - t0, 0.4)
        c.close()

    def test_fault_body_delay(self):
        self.o.fault("/obj", "body_delay", seconds=1.0)
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(2)
        data = b""
        while len(split_head(data)[2]) < len(BODY) // 2:
            d = s.recv(65536)
            self.assertTrue(d)
            data += d
        _, fields, body = split_head(data)
        self.assertEqual(fields["content-length"], str(len(BODY)))
        self.assertEqual(body, BODY[:len(BODY) // 2])
        # The rest comes only after the pause.
        s.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            s.recv(65536)
        s.settimeout(3)
        while len(body) < len(BODY):
            d = s.recv(65536)
            self.assertTrue(d)
            body += d
        self.assertGreaterEqual(time.monotonic() - t0, 0.95)
        self.assertEqual(body, BODY)
        s.close()

    def test_fault_reset_mid_body(self):
        self.o.fault("/obj", "reset_mid_body")
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual(how, "reset")
        _, fields, body = split_head(data)
        self.assertEqual(fields["content-length"], str(len(BODY)))
        self.assertEqual(body, BODY[:len(BODY) // 2])
        # With at= and chunked: the cut counts bytes on the wire.
        self.o.fault("/obj", "chunked", 100)
        self.o.fault("/obj", "reset_mid_body", at=50)
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual(how, "reset")
        self.assertEqual(split_head(data)[2], (b"64\r\n" + BODY[:100])[:50])

    def test_fault_short_body(self):
        self.o.fault("/obj", "short_body", at=1000)
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual(how, "eof")
        _, fields, body = split_head(data)
        self.assertEqual(fields["content-length"], str(len(BODY)))
        self.assertEqual(body, BODY[:1000])

    def test_fault_garbage_and_close_before_head(self):
        self.o.fault("/g", "garbage")
        self.o.fault("/c", "close_before_head")
        s = raw(self.port, b"GET /g HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual(how, "eof")
        self.assertTrue(data)
        self.assertFalse(data.startswith(b"HTTP/"))
        s = raw(self.port, b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        self.assertEqual((data, how), (b"", "eof"))
        self.assertEqual((self.o.count("/g"), self.o.count("/c")), (1, 1))
        c = self.conn()
        c.request("GET", "/c")
        with self.assertRaises(http.client.RemoteDisconnected):
            c.getresponse()
        c.close()

    def test_fault_status_and_times(self):
        self.o.fault("/obj", "status", 503, times=2)
        self.o.fault("/x", "status", code=500, body=b"boom", headers={"Retry-After": "1"})
        c = self.conn()
        got = []
        for _ in range(3):
            c.request("GET", "/obj")
            r = c.getresponse()
            got.append((r.status, r.read() == BODY))
        self.assertEqual(got, [(503, False), (503, False), (200, True)])
        c.request("GET", "/x")
        r = c.getresponse()
        self.assertEqual((r.status, r.read(), r.getheader("Retry-After")), (500, b"boom", "1"))
        c.close()
        self.assertEqual(self.o.connections_accepted, 1)

    def test_fault_slow_drip(self):
        self.o.put("/drip", body=b"abcdefghij" * 2)
        self.o.fault("/drip", "slow_drip", interval=0.05, size=4)
        s = raw(self.port, b"GET /drip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        t0 = time.monotonic()
        s.settimeout(3)
        reads = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            reads.append(d)
        s.close()
        # 5 pieces, 4 gaps of 50 ms; the pieces arrive separately.
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)
        self.assertGreaterEqual(len(reads), 5)
        self.assertEqual(split_head(b"".join(reads))[2], b"abcdefghij" * 2)

    def test_fault_close_delimited(self):
        self.o.fault("/obj", "close_delimited")
        s = raw(self.port, b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
        data, how = recv_all(s)
        s.close()
        _, fields, body = split_head(data)
        self.assertEqual(how, "eof")
        self.assertNotIn("content-length", fields)
        self.assertEqual(body, BODY)

    def test_fault_bad_kind(self):
        with self.assertRaises(ValueError):
            self.o.fault("/obj", "nope")
        with self.assertRaises(TypeError):
            self.o.fault("/obj", "delay", secs=1)

    # ---- hold/release, concurrency, shutdown ----

    def test_hold_release_20_clients(self):
        self.o.hold("/obj")
        results = []
        lock = threading.Lock()

        def client():
            c = self.conn()
            try:
                c.request("GET", "/obj")
                r = c.getresponse()
                out = (r.status, r.read())
            finally:
                c.close()
            with lock:
                results.append((time.monotonic(), out))

        threads = [threading.Thread(target=client) for _ in range(20)]
        for t in threads:
            t.start()
        self.o.wait_waiting("/obj", 20)
        self.assertEqual(self.o.waiting("/obj"), 20)
        self.assertEqual(self.o.count("/obj"), 20)
        time.sleep(0.1)
        self.assertEqual(results, [])
        released = time.monotonic()
        self.o.release("/obj")
        for t in threads:
            t.join(5)
        self.assertEqual(len(results), 20)
        self.assertTrue(all(out == (200, BODY) for _, out in results))
        self.assertTrue(all(when >= released for when, _ in results))
        self.assertEqual(self.o.waiting("/obj"), 0)
        # Not held any more.
        c = self.conn()
        c.request("GET", "/obj")
        self.assertEqual(c.getresponse().status, 200)
        c.close()

    def test_many_connections(self):
        socks = []
        try:
            for i in range(250):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /obj HTTP/1.1\r\nHost: t\r\n\r\n")
                socks.append(s)
            for s in socks:
                c = RawConn.__new__(RawConn)
                c.sock, c.timeout, c.buf, c.eof = s, 5.0, b"", False
                self.assertEqual(c.read_response().body, BODY)
            self.assertEqual(self.o.connections_accepted, 250)
            self.assertEqual(self.o.open_connections(), 250)
        finally:
            for s in socks:
                s.close()

    def test_close_does_not_hang(self):
        o = Origin()
        o.put("/a", body=b"x" * 1000)
        o.hold("/a")
        o.fault("/b", "slow_drip", interval=5)
        o.put("/b", body=b"y" * 100)
        idle = socket.create_connection(("127.0.0.1", o.port))
        held = raw(o.port, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        drip = raw(o.port, b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        o.wait_waiting("/a", 1)
        o.wait_count("/b", 1)
        t0 = time.monotonic()
        with o:
            pass
        self.assertLess(time.monotonic() - t0, 1.0)
        for s in (idle, held, drip):
            data, _ = recv_all(s, timeout=2)
            s.close()
        self.assertEqual(o.open_connections(), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", o.port), timeout=1).close()
        o.close()  # twice is fine


if __name__ == "__main__":
    unittest.main(verbosity=2)
