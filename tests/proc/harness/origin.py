"""A scripted HTTP/1.1 origin for process tests: tomato-edge proxies to it and caches.

Standard library only, on plain sockets and one thread per connection, so that the framing and
the faults are exact to the byte (http.server would frame for us).

    with Origin() as o:
        o.put("/a.bin", body=b"...", headers={"Cache-Control": "max-age=60"})
        o.fault("/slow", "delay", seconds=0.5)
        ... point tomato-edge at o.addr, make requests ...
        assert o.count("/a.bin") == 1

Resources are looked up by the request-target in origin form, query string included, exactly as
sent (an absolute-form target is reduced to its path and query first). Counts, the request log,
holds and faults use the same key. Any method gets the resource (HEAD without the body);
conditional requests (If-None-Match, then If-Modified-Since) answer 304 to GET and HEAD of a 200
resource. An unknown target gets a 404 with a small text body.

Faults (o.fault(path, kind, value, **params); value is the kind's main parameter):
  delay            seconds=1.0        wait before the head is sent
  body_delay       seconds=1.0, at    send the head and the body up to at (default: half), wait,
                                      then the rest
  reset_mid_body   at, pause=0.05     head with the full length, the body up to at (default:
                                      half), then after pause an abortive close (SO_LINGER 0:
                                      the peer sees a reset)
  short_body       at                 head with the full length, the body up to at (default:
                                      half), then a clean close (FIN)
  garbage          data               reply with non-HTTP bytes, then close cleanly
  close_before_head                   read the request, then close cleanly without a byte
  status           code=503, body, headers
                                      answer with that status and a small text body instead
  chunked          size=1024          Transfer-Encoding: chunked, in chunks of size bytes
  slow_drip        interval=0.05, size=16
                                      the body in pieces of size bytes, interval seconds apart
  close_delimited                     no Content-Length: the body ends when the connection closes
Every kind also takes times=N: the fault applies to the next N requests for the path only.
Several kinds combine on one path (e.g. delay + chunked + slow_drip); "at" counts bytes as sent
on the wire, after any chunk framing. Body faults do not apply to HEAD or bodiless statuses.
"""
import collections
import email.utils
import hashlib
import re
import socket
import struct
import threading
import time

LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
NOT_FOUND_BODY = b"not found\n"
GARBAGE = b"\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n"
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 410: "Gone", 412: "Precondition Failed",
    416: "Range Not Satisfiable", 429: "Too Many Requests", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}

# kind -> (main parameter for the positional value, {parameter: default})
FAULTS = {
    "delay": ("seconds", {"seconds": 1.0}),
    "body_delay": ("seconds", {"seconds": 1.0, "at": None}),
    "reset_mid_body": ("at", {"at": None, "pause": 0.05}),
    "short_body": ("at", {"at": None}),
    "garbage": ("data", {"data": GARBAGE}),
    "close_before_head": (None, {}),
    "status": ("code", {"code": 503, "body": None, "headers": None}),
    "chunked": ("size", {"size": 1024}),
    "slow_drip": ("interval", {"interval": 0.05, "size": 16}),
    "close_delimited": (None, {}),
}

# One request as received: headers is {lowercased name: value} (repeats joined with ", ").
Request = collections.namedtuple("Request", "method target headers body")

_AUTO_DATE = object()
_KEEP, _CLOSE, _GONE = "keep", "close", "gone"


class _BadRequest(Exception):
    pass


class _Stopped(Exception):
    pass


def etag_of(body):
    """The default ETag for a body: a quoted prefix of its SHA-1."""
    return '"%s"' % hashlib.sha1(body).hexdigest()[:16]


def _find(headers, name):
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def _origin_form(target):
    m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*(.*)$", target)
    if m is None:
        return target
    return m.group(1) or "/"


def _http_time(value):
    if value is None:
        return None
    t = email.utils.parsedate_tz(value)
    if t is None:
        return None
    try:
        return email.utils.mktime_tz(t)
    except (OverflowError, ValueError):
        return None


def _opaque(tag):
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


class _Resource:
    def __init__(self, status, body, headers, ranges):
        self.status = status
        self.body = body
        self.headers = headers  # [(name, value)], value may be _AUTO_DATE
        self.ranges = ranges


class Origin:
    """The origin server; starts listening on 127.0.0.1 (an ephemeral port) when constructed.

    keepalive=False closes every connection after one response. idle_timeout (seconds) closes a
    connection that sends nothing (and bounds each blocking send).
    """

    def __init__(self, host="127.0.0.1", keepalive=True, idle_timeout=30.0, backlog=1024):
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self.counts = collections.Counter()
        self.requests = []
        self.connections_accepted = 0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._resources = {}  # (method or None, key) -> _Resource
        self._faults = {}  # key -> {kind: params (times included)}
        self._holds = set()
        self._waiting = collections.Counter()
        self._conns = {}  # socket -> thread
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._lsock.bind((host, 0))
            self._lsock.listen(backlog)
            self._lsock.settimeout(0.5)  # a backstop: close() also shuts the socket down
        except BaseException:
            self._lsock.close()
            raise
        self.host = host
        self.port = self._lsock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self._acceptor = threading.Thread(target=self._accept_loop, name="origin-accept",
                                          daemon=True)
        self._acceptor.start()

    def url(self, path="/"):
        return "http://%s%s" % (self.addr, path)

    # ---- scripting ----

    def put(self, path, body=b"", headers=None, status=200, method=None, ranges=False):
        """Defines (or replaces) the response for path (exact, query included).

        Default headers: Content-Type: application/octet-stream, ETag: etag_of(body),
        Last-Modified: LAST_MODIFIED and a current Date. headers (a dict or a list of pairs)
        replaces a default of the same name (case-insensitive); a value None removes it; a list
        value sends the field once per item. Content-Length is computed unless given (a given
        one is sent as is, even if it lies); "Transfer-Encoding: chunked" among the headers
        chunks the body as the chunked fault does. method restricts the definition to one
        method (it takes precedence over a definition for all). ranges=True honours a single
        "Range: bytes=..." on GET of a 200 (206/416) and sends Accept-Ranges: bytes.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = bytes(body)
        hdrs = [("Content-Type", "application/octet-stream"), ("ETag", etag_of(body)),
                ("Last-Modified", LAST_MODIFIED), ("Date", _AUTO_DATE)]
        if ranges:
            hdrs.append(("Accept-Ranges", "bytes"))
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        replaced = set()
        for name, value in items:
            if name.lower() not in replaced:
                replaced.add(name.lower())
                hdrs = [(n, v) for n, v in hdrs if n.lower() != name.lower()]
            if value is None:
                continue
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                hdrs.append((name, v if isinstance(v, str) else str(v)))
        res = _Resource(int(status), body, hdrs, ranges)
        with self._lock:
            self._resources[(method.upper() if method else None, _origin_form(path))] = res

    def remove(self, path, method=None):
        """Forgets path's definition (later requests get 404)."""
        with self._lock:
            self._resources.pop((method.upper() if method else None, _origin_form(path)), None)

    def fault(self, path, kind, value=None, times=None, **params):
        """Adds (or replaces) a fault of kind on path; see the module docstring for the kinds.

        value sets the kind's main parameter (delay/body_delay: seconds, status: code, chunked:
        size, slow_drip: interval, reset_mid_body/short_body: at, garbage: data). times=N
        limits it to the next N requests for path.
        """
        if kind not in FAULTS:
            raise ValueError("unknown fault kind %r (known: %s)" % (kind, ", ".join(FAULTS)))
        main, defaults = FAULTS[kind]
        unknown = set(params) - set(defaults)
        if unknown:
            raise TypeError("fault %r takes no parameter %s" % (kind, ", ".join(sorted(unknown))))
        p = dict(defaults)
        p.update(params)
        if value is not None:
            if main is None:
                raise TypeError("fault %r takes no value" % kind)
            p[main] = value
        if kind == "garbage" and isinstance(p["data"], str):
            p["data"] = p["data"].encode("latin-1")
        p["times"] = times
        with self._lock:
            self._faults.setdefault(_origin_form(path), {})[kind] = p

    def clear_fault(self, path, kind=None):
        """Removes every fault on path, or only the one of kind."""
        key = _origin_form(path)
        with self._lock:
            if kind is None:
                self._faults.pop(key, None)
            elif key in self._faults:
                self._faults[key].pop(kind, None)
                if not self._faults[key]:
                    del self._faults[key]

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def hold(self, path):
        """Requests for path (arriving from now, or already waiting) wait before their head is
        sent until release(path)."""
        with self._lock:
            self._holds.add(_origin_form(path))

    def release(self, path=None):
        """Lets held requests for path (every path if None) go on, and stops holding it."""
        with self._lock:
            if path is None:
                self._holds.clear()
            else:
                self._holds.discard(_origin_form(path))
            self._lock.notify_all()

    def waiting(self, path):
        """How many requests for path are held right now."""
        with self._lock:
            return self._waiting[_origin_form(path)]

    def count(self, path):
        """How many requests for path have been received (thread-safe)."""
        with self._lock:
            return self.counts[_origin_form(path)]

    def requests_for(self, path):
        """The Request records for path, in arrival order."""
        key = _origin_form(path)
        with self._lock:
            return [r for r in self.requests if _origin_form(r.target) == key]

    def reset_counts(self):
        """Zeroes the counts and empties the request log (connections_accepted too)."""
        with self._lock:
            self.counts.clear()
            del self.requests[:]
            self.connections_accepted = 0

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def _wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self._lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("origin: timed out after %.1fs waiting for %s" %
                                         (timeout, what))
                self._lock.wait(left)

    def wait_waiting(self, path, n, timeout=5.0):
        """Waits until at least n requests for path are held; AssertionError on timeout."""
        key = _origin_form(path)
        self._wait_for(lambda: self._waiting[key] >= n, timeout,
                       "%d held requests for %s (have %d)" % (n, key, self._waiting[key]))

    def wait_count(self, path, n, timeout=5.0):
        """Waits until at least n requests for path have arrived; AssertionError on timeout."""
        key = _origin_form(path)
        self._wait_for(lambda: self.counts[key] >= n, timeout,
                       "%d requests for %s (have %d)" % (n, key, self.counts[key]))

    # ---- life cycle ----

    def close(self, timeout=3.0):
        """Stops: wakes held and sleeping requests, closes the listening socket and every client
        connection, and waits (up to timeout seconds) for the threads."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            self._holds.clear()
            self._lock.notify_all()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._acceptor.join(timeout)
        self._lsock.close()
        with self._lock:
            conns = list(self._conns.items())
        for s, _ in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, t in conns:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if not self._stop.is_set():
                self.close(timeout=0.5)
        except Exception:
            pass

    # ---- serving ----

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)  # e.g. EMFILE: try again shortly
                continue
            if self._stop.is_set():
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(self.idle_timeout)
            t = threading.Thread(target=self._serve, args=(conn,), name="origin-conn",
                                 daemon=True)
            with self._lock:
                self.connections_accepted += 1
                self._conns[conn] = t
            t.start()

    def _sleep(self, seconds):
        if seconds and seconds > 0 and self._stop.wait(seconds):
            raise _Stopped()

    def _serve(self, conn):
        end = _CLOSE
        buf = b""
        try:
            while not self._stop.is_set():
                try:
                    req, version, buf = self._read_request(conn, buf)
                except _BadRequest as e:
                    msg = ("bad request: %s\n" % e).encode("latin-1", "replace")
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" %
                                 (len(msg), msg))
                    end = _CLOSE
                    break
                if req is None:
                    end = _GONE if self._stop.is_set() else _CLOSE
                    break
                end = self._handle(conn, req, version)
                if end != _KEEP:
                    break
        except _Stopped:
            end = _CLOSE
        except (OSError, ValueError):
            end = _CLOSE
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            if end == _GONE:
                if conn.fileno() != -1:
                    conn.close()
            elif end == _CLOSE and not self._stop.is_set():
                self._close_gracefully(conn)
            else:
                conn.close()

    def _close_gracefully(self, conn):
        """FIN, then reads until the peer closes (bounded), so no unread bytes turn the close
        into a reset."""
        try:
            conn.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 2.0
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                conn.settimeout(min(left, 0.5))
                try:
                    if not conn.recv(65536):
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass
        finally:
            conn.close()

    def _recv_more(self, conn, buf):
        d = conn.recv(65536)
        if not d:
            return buf, False
        return buf + d, True

    def _read_request(self, conn, buf):
        """One request from conn; (None, None, b"") on a clean end between requests."""
        while True:
            buf = buf.lstrip(b"\r\n")  # empty lines before a request line (RFC 9112 2.2)
            if b"\r\n\r\n" in buf:
                break
            if len(buf) > MAX_HEAD:
                raise _BadRequest("head too large")
            try:
                buf, more = self._recv_more(conn, buf)
            except socket.timeout:
                return None, None, b""
            if not more:
                return None, None, b""
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) (HTTP/\d\.\d)$", lines[0])
        if m is None:
            raise _BadRequest("request line %r" % lines[0][:100])
        method, target, version = m.groups()
        headers = {}
        for ln in lines[1:]:
            name, sep, value = ln.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest("field line %r" % ln[:100])
            name = name.lower()
            value = value.strip(" \t")
            headers[name] = headers[name] + ", " + value if name in headers else value
        te = headers.get("transfer-encoding")
        cl = headers.get("content-length")
        if te is not None:
            if te.lower().replace(" ", "") != "chunked":
                raise _BadRequest("transfer-encoding %r" % te)
            self._maybe_continue(conn, headers, buf)
            body, buf = self._read_chunked(conn, buf)
        elif cl is not None:
            if not re.match(r"^\d{1,15}$", cl):
                raise _BadRequest("content-length %r" % cl)
            n = int(cl)
            if n > MAX_BODY:
                raise _BadRequest("body too large")
            if len(buf) < n:
                self._maybe_continue(conn, headers, buf)
            while len(buf) < n:
                buf, more = self._recv_more(conn, buf)
                if not more:
                    return None, None, b""
            body, buf = buf[:n], buf[n:]
        else:
            body = b""
        req = Request(method, target, headers, body)
        key = _origin_form(target)
        with self._lock:
            self.counts[key] += 1
            self.requests.append(req)
            self._lock.notify_all()
        return req, version, buf

    def _maybe_continue(self, conn, headers, buf):
        if headers.get("expect", "").lower() == "100-continue" and not buf:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _read_chunked(self, conn, buf):
        body = b""

        def need(pred):
            nonlocal buf
            while not pred():
                buf, more = self._recv_more(conn, buf)
                if not more:
                    raise _BadRequest("connection closed in a chunked body")

        while True:
            need(lambda: b"\r\n" in buf)
            line, _, buf = buf.partition(b"\r\n")
            size_s = line.split(b";")[0].strip()
            if not re.match(rb"^[0-9A-Fa-f]{1,15}$", size_s):
                raise _BadRequest("chunk size %r" % line[:40])
            size = int(size_s, 16)
            if len(body) + size > MAX_BODY:
                raise _BadRequest("body too large")
            if size == 0:
                while True:  # trailer fields, up to the empty line
                    need(lambda: b"\r\n" in buf)
                    line, _, buf = buf.partition(b"\r\n")
                    if not line:
                        return body, buf
            need(lambda: len(buf) >= size + 2)
            if buf[size:size + 2] != b"\r\n":
                raise _BadRequest("chunk not followed by CRLF")
            body += buf[:size]
            buf = buf[size + 2:]

    def _handle(self, conn, req, version):
        key = _origin_form(req.target)
        tokens = {t.strip().lower() for t in req.headers.get("connection", "").split(",")}
        if version == "HTTP/1.0":
            keep = "keep-alive" in tokens
        else:
            keep = "close" not in tokens
        keep = keep and self.keepalive

        with self._lock:
            if key in self._holds:
                self._waiting[key] += 1
                self._lock.notify_all()
                try:
                    while key in self._holds and not self._stop.is_set():
                        self._lock.wait()
                finally:
                    self._waiting[key] -= 1
                    self._lock.notify_all()
            if self._stop.is_set():
                raise _Stopped()
            faults = {}
            for kind, p in list(self._faults.get(key, {}).items()):
                faults[kind] = p
                if p["times"] is not None:
                    p["times"] -= 1
                    if p["times"] <= 0:
                        del self._faults[key][kind]
            if key in self._faults and not self._faults[key]:
                del self._faults[key]
            res = (self._resources.get((req.method.upper(), key)) or
                   self._resources.get((None, key)))

        if "delay" in faults:
            self._sleep(faults["delay"]["seconds"])
        if "close_before_head" in faults:
            return _CLOSE
        if "garbage" in faults:
            conn.sendall(faults["garbage"]["data"])
            return _CLOSE

        if "status" in faults:
            p = faults["status"]
            status = int(p["code"])
            body = p["body"]
            if body is None:
                body = ("origin fault: status %d\n" % status).encode()
            elif isinstance(body, str):
                body = body.encode("utf-8")
            headers = [("Content-Type", "text/plain"), ("Date", _AUTO_DATE)]
            for n, v in (p["headers"] or {}).items():
                headers = [(hn, hv) for hn, hv in headers if hn.lower() != n.lower()]
                if v is not None:
                    headers.append((n, str(v)))
        elif res is None:
            status, body = 404, NOT_FOUND_BODY
            headers = [("Content-Type", "text/plain"), ("Date", _AUTO_DATE)]
        else:
            status, body, headers = res.status, res.body, list(res.headers)
            if status == 200 and req.method in ("GET", "HEAD") and \
                    self._not_modified(req.headers, headers):
                status, body = 304, b""
                headers = [(n, v) for n, v in headers
                           if not n.lower().startswith("content-") or
                           n.lower() == "content-location"]
            elif status == 200 and res.ranges and req.method == "GET":
                status, body, headers = self._range(req.headers, body, headers)

        return self._send(conn, req, version, keep, status, headers, body, faults)

    @staticmethod
    def _not_modified(rh, headers):
        inm = rh.get("if-none-match")
        if inm is not None:
            etag = _find(headers, "etag")
            if inm.strip() == "*":
                return True
            if etag is None:
                return False
            tags = re.findall(r'(?:W/)?"[^"]*"', inm)
            return any(_opaque(t) == _opaque(etag) for t in tags)
        ims = _http_time(rh.get("if-modified-since"))
        lm = _http_time(_find(headers, "last-modified"))
        return ims is not None and lm is not None and lm <= ims

    @staticmethod
    def _range(rh, body, headers):
        rng = rh.get("range")
        if rng is None:
            return 200, body, headers
        if_range = rh.get("if-range")
        if if_range is not None and if_range.strip() not in (_find(headers, "etag"),
                                                             _find(headers, "last-modified")):
            return 200, body, headers
        m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", rng)
        if m is None or (m.group(1) == "" and m.group(2) == ""):
            return 200, body, headers  # multiple or malformed ranges: the whole body
        n = len(body)
        if m.group(1) == "":
            first, last = max(0, n - int(m.group(2))), n - 1
            ok = int(m.group(2)) > 0 and n > 0
        else:
            first = int(m.group(1))
            last = min(int(m.group(2)), n - 1) if m.group(2) else n - 1
            ok = first < n and first <= last
        if not ok:
            hdrs = [(k, v) for k, v in headers if k.lower() != "content-type"]
            hdrs += [("Content-Range", "bytes */%d" % n), ("Content-Type", "text/plain")]
            return 416, b"range not satisfiable\n", hdrs
        return 206, body[first:last + 1], headers + [("Content-Range",
                                                      "bytes %d-%d/%d" % (first, last, n))]

    def _send(self, conn, req, version, keep, status, headers, body, faults):
        head_only = req.method == "HEAD"
        bodiless = status in (204, 304) or 100 <= status < 200
        te = _find(headers, "transfer-encoding")
        chunk_size = None
        if "chunked" in faults:
            chunk_size = max(1, int(faults["chunked"]["size"]))
        elif te is not None and "chunked" in te.lower():
            chunk_size = 1024
        if version == "HTTP/1.0":
            chunk_size = None  # an HTTP/1.0 client cannot take chunks
            headers = [(n, v) for n, v in headers if n.lower() != "transfer-encoding"]
        close_delimited = "close_delimited" in faults and not bodiless

        out = []
        for n, v in headers:
            if v is _AUTO_DATE:
                v = email.utils.formatdate(usegmt=True)
            out.append((n, v))
        if not bodiless:
            if chunk_size is not None:
                out = [(n, v) for n, v in out if n.lower() != "content-length"]
                if _find(out, "transfer-encoding") is None:
                    out.append(("Transfer-Encoding", "chunked"))
            elif close_delimited:
                out = [(n, v) for n, v in out if n.lower() != "content-length"]
                keep = False
            elif _find(out, "content-length") is None:
                out.append(("Content-Length", str(len(body))))
        if _find(out, "connection") is None:
            if not keep:
                out.append(("Connection", "close"))
            elif version == "HTTP/1.0":
                out.append(("Connection", "keep-alive"))
        reason = REASONS.get(status, "Status")
        head = ("HTTP/1.1 %d %s\r\n" % (status, reason) +
                "".join("%s: %s\r\n" % (n, v) for n, v in out) + "\r\n").encode("latin-1")
        if head_only or bodiless:
            conn.sendall(head)
            return _KEEP if keep else _CLOSE

        if chunk_size is not None:
            wire = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + chunk_size]),
                                                 body[i:i + chunk_size])
                            for i in range(0, len(body), chunk_size)) + b"0\r\n\r\n"
        else:
            wire = body

        end = _KEEP if keep else _CLOSE
        cut = None
        if "reset_mid_body" in faults:
            at = faults["reset_mid_body"]["at"]
            cut, end = (len(wire) // 2 if at is None else min(int(at), len(wire))), "reset"
        elif "short_body" in faults:
            at = faults["short_body"]["at"]
            cut, end = (len(wire) // 2 if at is None else min(int(at), len(wire))), _CLOSE
        if cut is not None:
            wire = wire[:cut]

        # Pacing: offsets into wire at which to pause, and for how long.
        pauses = collections.defaultdict(float)
        if "slow_drip" in faults:
            p = faults["slow_drip"]
            size = max(1, int(p["size"]))
            for off in range(size, len(wire), size):
                pauses[off] = max(pauses[off], float(p["interval"]))
        if "body_delay" in faults:
            p = faults["body_delay"]
            at = len(wire) // 2 if p["at"] is None else min(int(p["at"]), len(wire))
            pauses[at] += float(p["seconds"])

        pos = 0
        pending = head
        for off in sorted(pauses):
            conn.sendall(pending + wire[pos:off])
            pending = b""
            pos = off
            self._sleep(pauses[off])
        conn.sendall(pending + wire[pos:])

        if end == "reset":
            self._sleep(faults["reset_mid_body"]["pause"])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return _GONE
        return end
