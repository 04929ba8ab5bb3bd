"""HTTPS on the edge: h2 and HTTP/1.1 chosen by ALPN, TLS 1.2 and 1.3, session resumption,
hostile handshakes, and clear errors for bad certificate settings."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import Daemon, Edge, run


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd, timeout=60)


class Https(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.root = os.path.join(cls.tmp, "www")
        os.mkdir(cls.root)
        cls.big = os.urandom(1024 * 1024)
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            f.write(cls.big)
        with open(os.path.join(cls.root, "index.html"), "w") as f:
            f.write("hello over tls\n")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
                cls.cert, "-days", "2", "-subj", "/CN=localhost")
        cls.edge = Edge("server.tls_listen=127.0.0.1:0", "tls.cert=" + cls.cert,
                        "tls.key=" + cls.key, static=cls.root)
        i = cls.edge.wait_line("msg=\"tls listening\" port=")
        cls.tls_port = int(re.search(r" port=(\d+)", cls.edge.lines[i]).group(1))

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.tls_port, path)

    def curl(self, *args):
        r = subprocess.run(["curl", "-sSk", "--max-time", "10", *args], capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_h2_by_alpn(self):
        out = os.path.join(self.tmp, "h2.bin")
        v = self.curl("--http2", "-o", out, "-w", "%{http_version}", self.url("/big.bin"))
        self.assertEqual(v, b"2")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.big)

    def test_http11_by_alpn(self):
        out = os.path.join(self.tmp, "h1.bin")
        v = self.curl("--http1.1", "-o", out, "-w", "%{http_version}", self.url("/big.bin"))
        self.assertEqual(v, b"1.1")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), self.big)

    def test_tls_versions(self):
        for flag in ("--tlsv1.2", "--tlsv1.3"):
            with self.subTest(flag):
                body = self.curl(flag, "--tls-max", flag[6:], "--http2", self.url("/"))
                self.assertEqual(body, b"hello over tls\n")

    def test_nghttp_and_h2load(self):
        r = subprocess.run(["nghttp", "-nv", self.url("/index.html")], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(":status: 200", r.stdout)
        self.assertIn("h2", r.stdout)  # "The negotiated protocol: h2"
        r = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "10", self.url("/index.html")],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("400 succeeded", r.stdout)
        self.assertIn("status codes: 400 2xx", r.stdout)

    def test_session_resumption(self):
        before = self.edge.metrics().get("tmt_tls_resumed_total", 0)
        sess = os.path.join(self.tmp, "sess.pem")
        target = "127.0.0.1:%d" % self.tls_port
        first = subprocess.run(["openssl", "s_client", "-connect", target, "-tls1_2",
                                "-sess_out", sess], input="", capture_output=True, text=True,
                               timeout=30)
        self.assertIn("New,", first.stdout)
        again = subprocess.run(["openssl", "s_client", "-connect", target, "-tls1_2",
                                "-sess_in", sess], input="", capture_output=True, text=True,
                               timeout=30)
        self.assertIn("Reused,", again.stdout)
        self.assertEqual(self.edge.metrics()["tmt_tls_resumed_total"], before + 1)

    def test_plain_http_on_tls_port(self):
        before = self.edge.metrics()["tmt_tls_handshake_errors_total"]
        s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            data += d
        s.close()
        self.assertNotIn(b"HTTP/1.1 200", data)
        self.assertEqual(self.edge.metrics()["tmt_tls_handshake_errors_total"], before + 1)
        self.assertEqual(self.curl("--http2", self.url("/")), b"hello over tls\n")

    def test_junk_handshake_and_abandoned_handshake(self):
        s = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        s.sendall(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff" + os.urandom(300))
        s.close()
        t = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        t.sendall(b"\x16\x03\x01")  # a record header, then silence
        t.close()
        self.assertEqual(self.curl("--http1.1", self.url("/")), b"hello over tls\n")

    def served_subject(self, port):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port],
                           input="", capture_output=True, text=True, timeout=30)
        m = re.search(r"subject=.*CN\s*=\s*([\w.-]+)", r.stdout)
        return m.group(1) if m else None

    def test_certificate_reload_on_sighup(self):
        d = os.path.join(self.tmp, "rot")
        os.mkdir(d)
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", "/CN=first.example")
        with Edge("server.tls_listen=127.0.0.1:0", "tls.cert=" + cert, "tls.key=" + key,
                  static=self.root) as e:
            i = e.wait_line("msg=\"tls listening\" port=")
            port = int(re.search(r" port=(\d+)", e.lines[i]).group(1))
            self.assertEqual(self.served_subject(port), "first.example")
            # Rotated files: new connections get the new certificate.
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                    cert, "-days", "2", "-subj", "/CN=second.example")
            e.signal(signal.SIGHUP)
            i = e.wait_line("certificate reloaded", start=i)
            self.assertEqual(self.served_subject(port), "second.example")
            # A broken file is refused and the last good certificate stays.
            with open(cert, "w") as f:
                f.write("not a certificate\n")
            e.signal(signal.SIGHUP)
            e.wait_line("certificate reload rejected", start=i)
            self.assertEqual(self.served_subject(port), "second.example")

    def test_bad_certificate_settings(self):
        other_key = os.path.join(self.tmp, "other.key")
        openssl("genrsa", "-out", other_key, "2048")
        cases = [
            (["--set", "tls.key=" + other_key], "key values mismatch"),
            (["--set", "tls.cert=" + os.path.join(self.tmp, "missing.pem")],
             "cannot load the certificate chain"),
        ]
        for extra, why in cases:
            with self.subTest(why):
                r = run("tomato-edge", "--set", "server.listen=127.0.0.1:0", "--set",
                        "admin.listen=127.0.0.1:0", "--set", "server.tls_listen=127.0.0.1:0",
                        "--set", "tls.cert=" + self.cert, "--set", "tls.key=" + self.key,
                        *extra, timeout=30)
                self.assertEqual(r.returncode, 1)
                self.assertIn(why, r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
