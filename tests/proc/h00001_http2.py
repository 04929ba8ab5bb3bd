"""h2c (prior knowledge) against tomato-edge --static, frame by frame: many concurrent streams and
the stream limit, streams reset mid-response (also in bulk), oversized header blocks, request
bodies over the limit, protocol errors and the idle timeout. The server survives each, releases
what a reset stream held, and counts what happened.

The client is a small HTTP/2 framer in the standard library. It asks for an HPACK dynamic table
of size 0, so the server's header blocks hold only static-table references and literals."""
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest

from harness import Edge, RawConn, http_get

MIB = 1024 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL = 0x0, 0x1, 0x7, 0x8
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)

# RFC 7541 Appendix A.
STATIC = [None,
          (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
          (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"),
          (":status", "200"), (":status", "204"), (":status", "206"), (":status", "304"),
          (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
          ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
          ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
          ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
          ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
          ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
          ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
          ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
          ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
          ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
          ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
          ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
          ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", "")]

# The Huffman code (RFC 7541 Appendix B) is canonical: the code lengths of symbols 0..256, in
# order, determine it. "L*N" is N symbols of length L.
HUFF_LENGTHS = (
    "13 23 28*7 24 30 28*2 30 28*8 30 28*9 "
    "6 10 10 12 13 6 8 11 10 10 8 11 8 6 6 6 5*3 6*7 7 8 15 6 12 10 13 6 7*22 8 7 8 13 19 13 "
    "14 6 15 5 6 5 6 5 6 6 6 5 7 7 6 6 6 5 6 7 6 5 5 6 7*5 15 11 14 13 28 "
    "20 22 20 20 22 22 22 23 22 23 23 23 23 23 24 23 24 24 22 23 24 23 23 23 23 21 22 23 22 23 "
    "23 24 22 21 20 22 22 23 23 21 23 22 22 24 21 22 23 23 21 21 22 21 23 22 23 23 20 22 22 22 "
    "23 22 22 23 26 26 20 19 22 23 22 25 26 26 26 27 27 26 24 25 19 21 26 27 27 26 27 24 21 21 "
    "26 26 28 27 27 27 20 24 20 21 22 21 21 23 22 22 25 25 24 24 26 23 26 27 26 26 27 27 27 27 "
    "27 28 27 27 27 27 27 26 30")


def huff_table():
    lens = []
    for tok in HUFF_LENGTHS.split():
        length, _, n = tok.partition("*")
        lens += [int(length)] * int(n or 1)
    assert len(lens) == 257
    table, code, prev = {}, -1, 0
    for sym in sorted(range(257), key=lambda s: (lens[s], s)):
        code = (code + 1) << (lens[sym] - prev)
        prev = lens[sym]
        table[(code, prev)] = sym
    return table


HUFF = huff_table()


def huff_decode(data):
    out, code, n = bytearray(), 0, 0
    for byte in data:
        for i in range(7, -1, -1):
            code = (code << 1) | ((byte >> i) & 1)
            n += 1
            sym = HUFF.get((code, n))
            if sym == 256:
                raise ValueError("EOS in a Huffman string")
            if sym is not None:
                out.append(sym)
                code, n = 0, 0
    if n >= 8 or code != (1 << n) - 1:  # padding: at most 7 bits, all ones
        raise ValueError("bad Huffman padding")
    return bytes(out)


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode(headers):
    """Literal fields without indexing, no Huffman: any encoder's simplest form."""
    out = b""
    for name, value in headers:
        name, value = name.encode(), value.encode("latin-1")
        out += b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value
    return out


class HpackError(Exception):
    pass


def hpack_decode(block):
    """Decodes a header block sent for a dynamic table of size 0."""
    pos = 0

    def integer(prefix_bits):
        nonlocal pos
        limit = (1 << prefix_bits) - 1
        v = block[pos] & limit
        pos += 1
        if v < limit:
            return v
        shift = 0
        while True:
            b = block[pos]
            pos += 1
            v += (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v

    def string():
        nonlocal pos
        huff = block[pos] & 0x80
        n = integer(7)
        raw = block[pos:pos + n]
        pos += n
        return (huff_decode(raw) if huff else raw).decode("latin-1")

    out = []
    while pos < len(block):
        b = block[pos]
        if b & 0x80:
            idx = integer(7)
            if not 0 < idx < len(STATIC):
                raise HpackError("index %d outside the static table" % idx)
            out.append(STATIC[idx])
            continue
        if b & 0xe0 == 0x20:
            if integer(5) != 0:
                raise HpackError("dynamic table size update above 0")
            continue
        idx = integer(6 if b & 0x40 else 4)
        if idx >= len(STATIC):
            raise HpackError("name index %d outside the static table" % idx)
        name = STATIC[idx][0] if idx else string()
        out.append((name, string()))
    return out


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None
        self.data = b""
        self.ended = False
        self.reset = None  # RST_STREAM error code from the server

    @property
    def status(self):
        for n, v in self.headers or ():
            if n == ":status":
                return int(v)
        return None

    def header(self, name):
        for n, v in self.headers or ():
            if n == name:
                return v
        return None

    @property
    def done(self):
        return self.ended or self.reset is not None


class H2Conn:
    """A client connection with prior knowledge. window: the stream flow-control window to
    announce (None keeps the 65,535 default, so the server stops after that much of each
    response); the connection's window is opened wide either way."""

    def __init__(self, port, window=(1 << 31) - 1, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.streams = {}
        self.next_sid = 1
        self.server_settings = {}
        self.goaway = None  # (last stream id, error code)
        self.frames = []  # (type, flags, stream id, length) of every frame received
        settings = [(S_HEADER_TABLE_SIZE, 0), (S_ENABLE_PUSH, 0)]
        if window is not None:
            settings.append((S_INITIAL_WINDOW_SIZE, window))
        self.sock.sendall(PREFACE + self.frame(SETTINGS, 0, 0, b"".join(
            struct.pack(">HI", k, v) for k, v in settings)))
        self.window_update(0, (1 << 31) - 1 - 65535)

    @staticmethod
    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
            struct.pack(">I", sid) + payload

    def send(self, data):
        self.sock.sendall(data)

    def _reply(self, data):
        """Sends a frame the protocol requires (an ACK); a peer that has gone is no error."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def window_update(self, sid, inc):
        self.send(self.frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc)))

    def headers_frame(self, path, method="GET", extra=(), end_stream=True, sid=None):
        if sid is None:
            sid = self.next_sid
            self.next_sid += 2
        self.streams[sid] = Stream(sid)
        block = hpack_encode([(":method", method), (":scheme", "http"), (":path", path),
                              (":authority", "t")] + list(extra))
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return sid, self.frame(HEADERS, flags, sid, block)

    def request(self, path, method="GET", extra=(), body=None):
        sid, f = self.headers_frame(path, method, extra, end_stream=body is None)
        if body is not None:
            f += self.frame(DATA, END_STREAM, sid, body)
        self.send(f)
        return sid

    def rst(self, sid, code=CANCEL):
        self.send(self.frame(RST_STREAM, 0, sid, struct.pack(">I", code)))

    def _read_frame(self, deadline):
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    return ftype, flags, sid, payload
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame in time")
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(1 << 20)
            except ConnectionResetError:
                d = b""
            if not d:
                self.eof = True
            self.buf += d

    def pump(self, until, timeout=None):
        """Reads and handles frames until until() holds or the connection ends. Returns
        until()'s last value; raises AssertionError on the deadline."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        header_block = None
        while not until():
            try:
                fr = self._read_frame(deadline)
            except socket.timeout:
                raise AssertionError("HTTP/2: condition not met in time; frames so far: %r" %
                                     self.frames[-20:])
            if fr is None:
                return until()
            ftype, flags, sid, payload = fr
            self.frames.append((ftype, flags, sid, len(payload)))
            st = self.streams.get(sid)
            if ftype == SETTINGS and not flags & ACK:
                for i in range(0, len(payload), 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
                self._reply(self.frame(SETTINGS, ACK, 0, b""))
            elif ftype == PING and not flags & ACK:
                self._reply(self.frame(PING, ACK, 0, payload))
            elif ftype == GOAWAY:
                self.goaway = struct.unpack(">II", payload[:8])
            elif ftype in (HEADERS, CONTINUATION):
                frag = payload
                if ftype == HEADERS and flags & 0x8:  # PADDED
                    frag = frag[1:len(frag) - frag[0]]
                if ftype == HEADERS and flags & 0x20:  # PRIORITY
                    frag = frag[5:]
                header_block = (header_block or b"") + frag
                if flags & END_HEADERS:
                    fields = hpack_decode(header_block)
                    header_block = None
                    if st is not None:
                        st.headers = (st.headers or []) + fields
                if st is not None and ftype == HEADERS and flags & END_STREAM:
                    st.ended = True
            elif ftype == DATA and st is not None:
                st.data += payload
                if flags & END_STREAM:
                    st.ended = True
            elif ftype == RST_STREAM and st is not None:
                st.reset = struct.unpack(">I", payload)[0]
        return until()

    def wait(self, sids, timeout=None):
        self.pump(lambda: all(self.streams[s].done for s in sids), timeout)
        return [self.streams[s] for s in sids]

    def closed_by_peer(self, timeout=3.0):
        try:
            self.pump(lambda: self.eof, timeout)
        except AssertionError:
            return False
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Http2(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="h00001-")
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(cls.root)
        cls.small = b"small over h2\n"
        cls.big = os.urandom(MIB)
        for name, data in (("small.txt", cls.small), ("big.bin", cls.big)):
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        cls.edge = Edge("http.max_head_size=1k", "http.max_headers=8", "http.max_body_size=1k",
                        "http.h2_max_streams=16", "http.idle_timeout=2s", static=cls.root)

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.port = self.edge.port

    def tearDown(self):
        self.assertIsNone(self.edge.proc.poll(), "tomato-edge exited")
        r = http_get(self.port, "/small.txt", timeout=3)
        self.assertEqual((r.status, r.body), (200, self.small))
        with H2Conn(self.port) as c:
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual((st.status, st.data), (200, self.small))

    def metrics(self):
        return self.edge.metrics()

    def fd_baseline(self, path):
        """Open descriptors once path has been served: static mode keeps a file it served open
        for a second in each worker's open-file cache, so the baseline allows one descriptor per
        worker (two here) for it."""
        with RawConn(self.port, 5) as c:
            c.send("HEAD %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
            c.read_response(head_only=True)
        return open_fds(self.edge.proc.pid) + 1

    def wait_fds(self, want, timeout=3.0):
        deadline = time.monotonic() + timeout
        while open_fds(self.edge.proc.pid) > want and time.monotonic() < deadline:
            time.sleep(0.05)
        return open_fds(self.edge.proc.pid)

    def test_get_head_and_settings(self):
        with H2Conn(self.port) as c:
            a = c.request("/small.txt")
            b = c.request("/big.bin")
            h = c.request("/big.bin", method="HEAD")
            n = c.request("/no-such")
            sa, sb, sh, sn = c.wait([a, b, h, n])
            self.assertEqual(c.server_settings.get(S_MAX_CONCURRENT_STREAMS), 16)
            self.assertEqual(c.server_settings.get(S_MAX_HEADER_LIST_SIZE), 1024)
            self.assertEqual(c.server_settings.get(S_ENABLE_PUSH), 0)
            self.assertEqual((sa.status, sa.data), (200, self.small))
            self.assertEqual(sa.header("content-length"), str(len(self.small)))
            self.assertEqual((sb.status, sb.data), (200, self.big))
            self.assertEqual((sh.status, sh.data), (200, b""))
            self.assertEqual(sh.header("content-length"), str(MIB))
            # HEAD: the HEADERS frame itself ends the stream.
            self.assertIn((HEADERS, END_HEADERS | END_STREAM, h),
                          [(t, f, s) for t, f, s, _ in c.frames if s == h and t == HEADERS])
            self.assertEqual(sn.status, 404)
            for st in (sa, sb, sh, sn):
                self.assertIsNone(st.reset)

    def test_many_streams(self):
        before = self.metrics()
        with H2Conn(self.port) as c:
            # 16 at a time, 160 in all, on one connection.
            sids = []
            for _ in range(10):
                batch = [c.headers_frame("/small.txt") for _ in range(16)]
                c.send(b"".join(f for _, f in batch))
                sids += [s for s, _ in batch]
                c.wait([s for s, _ in batch])
            for s in sids:
                st = c.streams[s]
                self.assertEqual((st.status, st.data, st.reset), (200, self.small, None))
        after = self.metrics()
        self.assertEqual(after["tmt_http2_streams_total"] - before["tmt_http2_streams_total"], 160)

    def test_stream_limit(self):
        # 40 requests in one write where 16 may be open: those over the limit are refused with
        # RST_STREAM(REFUSED_STREAM), the others served; the connection goes on.
        with H2Conn(self.port) as c:
            batch = [c.headers_frame("/big.bin") for _ in range(40)]
            c.send(b"".join(f for _, f in batch))
            sids = [s for s, _ in batch]
            c.wait(sids, 10)
            ok = [s for s in sids if c.streams[s].ended and c.streams[s].data == self.big]
            refused = [s for s in sids if c.streams[s].reset == REFUSED_STREAM]
            self.assertGreaterEqual(len(ok), 16)
            self.assertGreaterEqual(len(refused), 1)
            self.assertEqual(len(ok) + len(refused), 40)
            self.assertEqual(ok, sids[:len(ok)])
            self.assertIsNone(c.goaway)
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual((st.status, st.data), (200, self.small))

    def test_reset_mid_response(self):
        pid = self.edge.proc.pid
        fds = self.fd_baseline("/big.bin")
        before = self.metrics()
        # The default window lets the server send 64 KiB, then it waits: reset it there.
        with H2Conn(self.port, window=None) as c:
            sid = c.request("/big.bin")
            c.pump(lambda: len(c.streams[sid].data) >= 16384)
            c.rst(sid)
            # The connection goes on: a new stream on it gets its answer.
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual((st.status, st.data), (200, self.small))
            self.assertLess(len(c.streams[sid].data), MIB)
            # Many at once, each reset after its first bytes.
            sids = [c.request("/big.bin") for _ in range(12)]
            c.pump(lambda: all(c.streams[s].data for s in sids))
            for s in sids:
                c.rst(s)
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual(st.status, 200)
            self.assertIsNone(c.goaway)
            # The reset streams' files are closed while the connection is still open.
            self.assertLessEqual(self.wait_fds(fds + 1), fds + 1)
        self.assertLessEqual(self.wait_fds(fds), fds)
        after = self.metrics()
        self.assertEqual(after["tmt_http2_protocol_errors_total"],
                         before["tmt_http2_protocol_errors_total"])

    def test_rapid_reset(self):
        # Streams opened and reset at once, in bulk (CVE-2023-44487's pattern): the server may
        # end the connection, but it stays up and keeps no file open for them.
        pid = self.edge.proc.pid
        fds = self.fd_baseline("/big.bin")
        with H2Conn(self.port, window=None) as c:
            out = b""
            for _ in range(500):
                sid, f = c.headers_frame("/big.bin")
                out += f + c.frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
            try:
                c.send(out)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                c.pump(lambda: c.eof or c.goaway is not None, 2)
            except AssertionError:
                pass  # still open and quiet: fine too
        self.assertLessEqual(self.wait_fds(fds), fds)

    def test_header_block_too_large(self):
        before = self.metrics()
        with H2Conn(self.port) as c:
            big = c.request("/small.txt", extra=[("x-big", "a" * 3000)])
            many = c.request("/small.txt", extra=[("x-h%d" % i, "v") for i in range(20)])
            fine = c.request("/small.txt", extra=[("x-ok", "b" * 200)] * 3)
            sb, sm, sf = c.wait([big, many, fine])
            self.assertEqual(sb.status, 431)
            self.assertEqual(sm.status, 431)
            self.assertNotEqual(sb.data, self.small)
            self.assertEqual((sf.status, sf.data), (200, self.small))
            self.assertIsNone(c.goaway)
        after = self.metrics()
        key = 'tmt_http_requests_rejected_total{reason="head_too_large"}'
        self.assertEqual(after[key] - before[key], 2)

    def test_continuation_flood(self):
        # A header block that never ends, in many CONTINUATION frames (200 KB): the server must
        # not buffer it all; the connection is ended with GOAWAY.
        with H2Conn(self.port) as c:
            sid, f = c.headers_frame("/small.txt")
            f = f[:4] + bytes([END_STREAM]) + f[5:]  # HEADERS without END_HEADERS
            cont = c.frame(CONTINUATION, 0, sid, hpack_encode([("x-c", "d" * 100)]))
            try:
                c.send(f + cont * 2000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            c.pump(lambda: c.eof or c.goaway is not None, 5)
            self.assertIsNone(c.streams[sid].status)
            if c.goaway is not None:
                self.assertNotEqual(c.goaway[1], NO_ERROR)

    def test_body_too_large(self):
        before = self.metrics()
        with H2Conn(self.port) as c:
            big = c.request("/small.txt", method="POST", body=b"x" * 2000)
            sid, f = c.headers_frame("/small.txt", method="POST", end_stream=False)
            chunks = b"".join(c.frame(DATA, 0, sid, b"y" * 300) for _ in range(5))
            c.send(f + chunks + c.frame(DATA, END_STREAM, sid, b""))
            ok = c.request("/small.txt", method="POST", body=b"z" * 500)
            sb, sc, so = c.wait([big, sid, ok])
            self.assertEqual(sb.status, 413)
            self.assertEqual(sc.status, 413)
            # Within the limit the handler answers: static files take GET and HEAD only.
            self.assertEqual(so.status, 405)
            self.assertEqual(so.header("allow"), "GET, HEAD")
        after = self.metrics()
        key = 'tmt_http_requests_rejected_total{reason="body_too_large"}'
        self.assertEqual(after[key] - before[key], 2)

    def test_bad_requests(self):
        with H2Conn(self.port) as c:
            trav = c.request("/../etc/passwd")
            enc = c.request("/%2e%2e/%2e%2e/etc/passwd")
            hidden = c.request("/.hidden")
            st = c.wait([trav, enc, hidden])
            self.assertEqual([s.status for s in st], [400, 400, 404])
            # A request without :path is malformed (RFC 9113 section 8.3.1): the stream is
            # reset or answered 400, never served.
            sid = c.next_sid
            c.next_sid += 2
            c.streams[sid] = Stream(sid)
            c.send(c.frame(HEADERS, END_HEADERS | END_STREAM, sid,
                           hpack_encode([(":method", "GET"), (":scheme", "http"),
                                         (":authority", "t")])))
            s, = c.wait([sid])
            self.assertTrue(s.reset == PROTOCOL_ERROR or s.status == 400, (s.reset, s.headers))
            self.assertIsNone(c.goaway)

    def protocol_error(self):
        with H2Conn(self.port) as c:
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual(st.status, 200)
            # DATA on stream 0 is a connection error.
            c.send(c.frame(DATA, 0, 0, b"junk"))
            self.assertTrue(c.closed_by_peer(3))
            self.assertIsNotNone(c.goaway)
            self.assertEqual(c.goaway[1], PROTOCOL_ERROR)

    def test_protocol_error(self):
        self.protocol_error()
        # A bad preface: the h1 parser sees "PRI * HTTP/2.0" and refuses it.
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
            self.assertRegex(s.recv(100), rb"^HTTP/1.1 (400|505) ")

    # Regression: tmt_http2_protocol_errors_total did not move for connection errors that
    # nghttp2 answers by itself (DATA on stream 0 gets GOAWAY(PROTOCOL_ERROR) while
    # nghttp2_session_mem_recv still succeeds); the GOAWAY that goes out is what is counted.
    def test_protocol_error_counted(self):
        before = self.metrics()
        self.protocol_error()
        after = self.metrics()
        self.assertEqual(after["tmt_http2_protocol_errors_total"] -
                         before["tmt_http2_protocol_errors_total"], 1)

    def test_idle_timeout(self):
        before = self.metrics()
        with H2Conn(self.port) as c:
            st, = c.wait([c.request("/small.txt")])
            self.assertEqual(st.status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.closed_by_peer(5), "idle h2 connection not closed")
            took = time.monotonic() - t0
            self.assertGreater(took, 1.5)
            self.assertLess(took, 4.0)
        after = self.metrics()
        key = 'tmt_http_timeouts_total{phase="idle"}'
        self.assertEqual(after[key] - before[key], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
