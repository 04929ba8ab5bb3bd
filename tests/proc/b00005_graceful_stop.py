"""SIGTERM stops accepting, lets a response in progress finish, closes idle keep-alive
connections, and exits 0; past the grace period it cuts what is left."""
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import Edge

BIG = 8 * 1024 * 1024


def slow_reader(port, path):
    """A connection that asks for path with a tiny receive buffer and does not read yet."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    return s


def read_all(s, deadline):
    data = b""
    s.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


class GracefulStop(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(BIG))

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_in_flight_response_finishes(self):
        with Edge("http.shutdown_grace=20s", static=self.root, workers=1) as d:
            busy = slow_reader(d.port, "/big.bin")
            idle = socket.create_connection(("127.0.0.1", d.port))
            idle.sendall(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertIn(b" 404 ", idle.recv(4096))
            time.sleep(0.3)  # the big response is under way, stuck on the small buffer
            d.signal(signal.SIGTERM)
            d.wait_line("msg=\"stopping\"")
            # The idle keep-alive connection is closed at once.
            idle.settimeout(5)
            self.assertEqual(idle.recv(4096), b"")
            # New connections are refused: the listener is closed.
            time.sleep(0.2)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", d.port), timeout=2).recv(1)
            # The response in progress still arrives whole, then the daemon exits 0.
            data = read_all(busy, time.monotonic() + 20)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertIn(b"HTTP/1.1 200 OK", head)
            self.assertEqual(len(body), BIG)
            self.assertEqual(d.stop(timeout=10), 0)
            busy.close()
            idle.close()

    def test_grace_period_cuts_stuck_clients(self):
        with Edge("http.shutdown_grace=1s", "http.write_timeout=60s", static=self.root,
                  workers=1) as d:
            stuck = slow_reader(d.port, "/big.bin")
            time.sleep(0.3)
            t0 = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.stop(timeout=10), 0)
            self.assertLess(time.monotonic() - t0, 5.0)
            d.wait_line("shutdown grace over")
            stuck.close()


if __name__ == "__main__":
    unittest.main()
