#!/usr/bin/env python3
"""Hold many idle HTTP/1.1 keep-alive connections open against one server.

Each connection sends one GET, reads the whole response (status 200, Content-Length framing),
then stays open and idle. Used by bench/static.sh --memory to measure the server's memory per
idle connection. Non-blocking sockets with selectors; at most --parallel connections are being
set up at any time, so the server's listen backlog never overflows.

Protocol on stdin/stdout, one line each (progress and problems go to stderr):
  -> "ready open=N failed=M seconds=S"   every connection has finished its request or failed
  <- any line (or end of input)           the caller has read the server's memory
  -> "alive=N"                            connections still open just before closing them
  -> "closed"                             all connections closed

Traffic goes only to --host, which must be a loopback address.
"""

import argparse
import errno
import ipaddress
import resource
import selectors
import socket
import sys
import time

CONNECTING, SENDING, READING, IDLE, DEAD = range(5)


class Conn:
    __slots__ = ("sock", "state", "out", "buf", "need", "started")

    def __init__(self, sock, request):
        self.sock = sock
        self.state = CONNECTING
        self.out = request
        self.buf = b""
        self.need = -1  # total bytes of head + body once the head is parsed
        self.started = time.monotonic()


def parse_head(buf):
    """Returns the total response length (head + body), 0 if the head is not complete yet,
    or raises ValueError for a response this tool does not accept."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError("response head over 64 KiB")
        return 0
    head = buf[:end].decode("latin-1").split("\r\n")
    status = head[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise ValueError("status line %r" % head[0])
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        n = name.strip().lower()
        if n == "content-length":
            length = int(value.strip())
        elif n == "connection" and "close" in value.lower():
            raise ValueError("server answered Connection: close")
        elif n == "transfer-encoding":
            raise ValueError("chunked response; a file with a known length is expected")
    if length is None:
        raise ValueError("no Content-Length")
    return end + 4 + length


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/1k.bin")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--parallel", type=int, default=128,
                    help="connections being set up at once (default 128)")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds one connection may take to finish its request (default 30)")
    a = ap.parse_args()

    if not ipaddress.ip_address(a.host).is_loopback:
        ap.error("--host must be a loopback address")
    limit = raise_fd_limit(a.conns + 64)
    if limit < a.conns + 16:
        ap.error("open-file limit %d is too low for %d connections (raise ulimit -n)"
                 % (limit, a.conns))

    host_hdr = "%s:%d" % (a.host, a.port)
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: idle_conns.py\r\n\r\n"
               % (a.path, host_hdr)).encode()
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET

    sel = selectors.DefaultSelector()
    idle = []
    failed = 0
    reasons = {}
    pending = 0  # connections not yet started
    active = {}
    t0 = time.monotonic()

    def fail(c, why):
        nonlocal failed
        failed += 1
        reasons[why] = reasons.get(why, 0) + 1
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.state = DEAD
        active.pop(id(c), None)

    def start_one():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        c = Conn(s, request)
        err = s.connect_ex((a.host, a.port))
        if err not in (0, errno.EINPROGRESS):
            active[id(c)] = c
            fail(c, "connect: " + errno.errorcode.get(err, str(err)))
            return
        active[id(c)] = c
        sel.register(s, selectors.EVENT_WRITE, c)

    pending = a.conns
    while pending or active:
        while pending and len(active) < a.parallel:
            pending -= 1
            start_one()
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            s = c.sock
            try:
                if c.state == CONNECTING:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c, "connect: " + errno.errorcode.get(err, str(err)))
                        continue
                    c.state = SENDING
                if c.state == SENDING:
                    n = s.send(c.out)
                    c.out = c.out[n:]
                    if not c.out:
                        c.state = READING
                        sel.modify(s, selectors.EVENT_READ, c)
                    continue
                if c.state == READING:
                    data = s.recv(262144)
                    if not data:
                        fail(c, "closed by the server before the response ended")
                        continue
                    c.buf += data
                    if c.need < 0:
                        n = parse_head(c.buf)
                        if n:
                            c.need = n
                    if c.need >= 0 and len(c.buf) >= c.need:
                        if len(c.buf) > c.need:
                            fail(c, "bytes after the response")
                            continue
                        c.buf = b""
                        c.state = IDLE
                        sel.unregister(s)
                        active.pop(id(c))
                        idle.append(c)
            except ValueError as e:
                fail(c, str(e))
            except OSError as e:
                fail(c, "%s: %s" % (("connect", "send", "recv")[min(c.state, 2)],
                                    errno.errorcode.get(e.errno, str(e))))
        now = time.monotonic()
        for c in list(active.values()):
            if now - c.started > a.timeout:
                fail(c, "no complete response within %gs" % a.timeout)

    for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print("idle_conns: %d connections failed: %s" % (n, why), file=sys.stderr)
    print("ready open=%d failed=%d seconds=%.1f" % (len(idle), failed, time.monotonic() - t0),
          flush=True)

    sys.stdin.readline()

    alive = 0
    for c in idle:
        try:
            if c.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                continue  # the server closed it
            alive += 1  # unexpected bytes: still open, though not idle
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print("alive=%d" % alive, flush=True)
    for c in idle:
        c.sock.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
