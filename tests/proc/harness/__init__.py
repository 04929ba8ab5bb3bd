"""Process-level test harness: runs the real programs from the build tree and watches their logs.

Standard library only. The build's bin/ comes from $TMT_BIN (CTest sets it), the source tree
from $TMT_SRC.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

BIN = os.environ.get("TMT_BIN") or os.path.join(os.path.dirname(__file__), "../../../build/bin")
SRC = os.environ.get("TMT_SRC") or os.path.join(os.path.dirname(__file__), "../../..")
PROGRAMS = ["tomato-edge", "tomato-shield", "tomato-control", "tomato-load", "tomato-cachesim"]
DAEMONS = ["tomato-edge", "tomato-shield", "tomato-control"]


def prog(name):
    return os.path.join(BIN, name)


def run(name, *args, stdin=None, timeout=60):
    """Runs a program to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([prog(name), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def write_temp(text, suffix=".conf", dirpath=None):
    fd, path = tempfile.mkstemp(suffix=suffix, dir=dirpath)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Daemon:
    """A daemon started in the background whose stderr (the log) is collected line by line."""

    def __init__(self, name, *args):
        self.name = name
        self.proc = subprocess.Popen([prog(name), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, needle, start=0, timeout=10.0):
        """Waits for a log line containing needle at index >= start; returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError("%s: no log line with %r; log:\n%s" %
                                         (self.name, needle, "\n".join(self.lines)))
                self.cond.wait(left)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then the exit code (killing it if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %.0fs of SIGTERM" % (self.name, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)


# ---- HTTP helpers ----


class Listening(Daemon):
    """A daemon on loopback ports the kernel picks, with extra --set KEY=VALUE settings.

    port and admin_port are read from the "listening" log lines once the daemon has started.
    """

    def __init__(self, name, *sets, workers=2, args=()):
        argv = ["--set", "server.listen=127.0.0.1:0", "--set", "admin.listen=127.0.0.1:0",
                "--set", "server.workers=%d" % workers]
        for s in sets:
            argv += ["--set", s]
        super().__init__(name, *argv, *args)
        try:
            i = self.wait_line("msg=\"listening\" port=")
            self.port = int(re.search(r" port=(\d+)", self.lines[i]).group(1))
            i = self.wait_line("msg=\"admin listening\" port=")
            self.admin_port = int(re.search(r" port=(\d+)", self.lines[i]).group(1))
            self.wait_line("msg=\"started\"")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.proc.stdout.close()

    def metrics(self):
        return scrape_metrics(self.admin_port)


class Edge(Listening):
    """tomato-edge (see Listening); static=DIR serves a folder."""

    def __init__(self, *sets, static=None, workers=2, args=()):
        extra = ["--static", static] if static is not None else []
        super().__init__("tomato-edge", *sets, workers=workers, args=(*extra, *args))


class Shield(Listening):
    """tomato-shield (see Listening) on a mezzanine root, with its cache in cache_dir."""

    def __init__(self, root, cache_dir, *sets, workers=2, args=()):
        super().__init__("tomato-shield", "mezzanine.root=" + root,
                         "cache.path=" + os.path.join(cache_dir, "cache"),
                         "jobs.path=" + os.path.join(cache_dir, "jobs"), *sets,
                         workers=workers, args=args)


class Control(Listening):
    """tomato-control (see Listening) with its store in store_dir and a bootstrap operator.

    scrypt runs with a small N (tests hash many passwords); everything else is the defaults
    unless sets say otherwise. operator is (email, password) or None.
    """

    OPERATOR = ("op@example.com", "operator-password-1")

    def __init__(self, store_dir, *sets, workers=2, args=(), operator=OPERATOR):
        os.makedirs(store_dir, exist_ok=True)
        base = ["store.path=" + os.path.join(store_dir, "store"), "auth.scrypt_n=1024"]
        if operator is not None:
            pw = os.path.join(store_dir, "operator.pw")
            with open(pw, "w") as f:
                f.write(operator[1] + "\n")
            base += ["auth.bootstrap_operator_email=" + operator[0],
                     "auth.bootstrap_operator_password_file=" + pw]
        super().__init__("tomato-control", *base, *sets, workers=workers, args=args)

    def api(self, token=None):
        return Api(self.port, token)


class Api:
    """A JSON client of the control plane's /v1 API: call() returns (status, json, Response)."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, token=None, headers="", raw=None,
             ctype="application/json"):
        extra = headers
        tok = token if token is not None else self.token
        if tok:
            extra += "Authorization: Bearer %s\r\n" % tok
        data = b""
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data and ctype:
            extra += "Content-Type: %s\r\n" % ctype
        r = http_request(self.port, method, path, extra=extra, body=data, timeout=15.0)
        doc = None
        if r.body and (r.header("content-type") or "").startswith("application/json"):
            doc = json.loads(r.body)
        return r.status, doc, r

    def login(self, email, password):
        st, doc, r = self.call("POST", "/v1/sessions", {"email": email, "password": password},
                               token="")
        if st != 201:
            raise AssertionError("login %s: %s %r" % (email, st, r.body))
        return Api(self.port, doc["token"])


def scrape_metrics(port, timeout=5.0):
    """GET /metrics on 127.0.0.1:port; returns {"name{labels}": value} (labels as exposed)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d/metrics" % port, timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        out[key] = float(val)
    return out


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name, default=None):
        """The first field named name (case-insensitive), or default."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<Response %d %s %r body=%d bytes>" % (self.status, self.reason, self.headers,
                                                     len(self.body))


class RawConn:
    """A plain TCP client connection that sends bytes as given and parses HTTP/1.x responses.

    Every read has a deadline (timeout seconds): a server that hangs fails the test.
    """

    def __init__(self, port, timeout=5.0, rcvbuf=None, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read deadline passed")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _need(self, deadline, pred):
        while not pred():
            if self.eof or not self._fill(deadline):
                raise AssertionError("connection closed before a complete response; got %r" %
                                     self.buf[:300])

    def read_response(self, head_only=False, timeout=None):
        """Reads one response; head_only for answers to HEAD (no body follows the head)."""
        try:
            return self._read_response(head_only, timeout)
        except socket.timeout:
            raise AssertionError("no complete response in time; received %r" % self.buf[:300])

    def _read_response(self, head_only, timeout):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self._need(deadline, lambda: b"\r\n\r\n" in self.buf)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", lines[0])
        if m is None:
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            n, _, v = ln.partition(":")
            headers.append((n, v.strip()))
        resp = Response(m.group(1), int(m.group(2)), m.group(3), headers, b"")
        status = resp.status
        if head_only or status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and te.lower().endswith("chunked"):
            body = b""
            while True:
                self._need(deadline, lambda: b"\r\n" in self.buf)
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._need(deadline, lambda: b"\r\n" in self.buf)
                    # Trailers are not expected: the line after the last chunk is empty.
                    _, _, self.buf = self.buf.partition(b"\r\n")
                    break
                self._need(deadline, lambda: len(self.buf) >= size + 2)
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
            resp.body = body
        elif cl is not None:
            n = int(cl)
            self._need(deadline, lambda: len(self.buf) >= n)
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while not self.eof and self._fill(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_by_peer(self, timeout=3.0):
        """True if the server closes the connection (EOF or reset) within timeout seconds, any
        bytes still unread are kept in buf."""
        deadline = time.monotonic() + timeout
        try:
            while not self.eof:
                self._fill(deadline)
        except (socket.timeout, TimeoutError):
            return False
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_get(port, path="/", extra="", timeout=5.0):
    """One HTTP/1.1 GET on a fresh connection (Connection: close); returns its Response."""
    with RawConn(port, timeout) as c:
        c.send("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % (path, extra))
        return c.read_response()


def http_request(port, method, path="/", extra="", body=b"", timeout=5.0):
    """One HTTP/1.1 request of any method on a fresh connection; returns its Response."""
    with RawConn(port, timeout) as c:
        head = "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s" % (method, path, extra)
        if body or method in ("POST", "PUT"):
            head += "Content-Length: %d\r\n" % len(body)
        c.send(head + "\r\n")
        if body:
            c.send(body)
        return c.read_response(head_only=(method == "HEAD"))


def npm_ci(directory, attempts=3):
    """`npm ci` in directory; the registry is across the network, so a failure is retried
    (after 15 s, then 30 s) before the test fails with npm's output."""
    for attempt in range(1, attempts + 1):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error",
                            "--fetch-retries=4"], cwd=directory, capture_output=True, text=True,
                           timeout=300)
        if r.returncode == 0:
            return
        if attempt < attempts:
            time.sleep(15 * attempt)
    raise AssertionError("npm ci in %s failed %d times (last exit %d):\n%s%s" %
                         (directory, attempts, r.returncode, r.stdout, r.stderr))
