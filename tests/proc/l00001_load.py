"""tomato-load against a running edge in front of a shield with real media: the counts and bytes of
its --json report equal what the edge served (/metrics), errors are classified (404s of a missing
asset as 4xx, a port with nothing listening as connect errors), the count and time bounds hold,
and a generated trace (read by tomato-cachesim too) replays with exact figures: the generated
catalog's first asset exists on the shield, the others answer 404."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Edge, Shield, run
from harness.media import make_asset
from harness.system import System

RUNGS = [("r0", 320, 180, 300000), ("r1", 480, 270, 500000), ("r2", 640, 360, 800000)]
SEGS = 4  # 8 s in 2 s segments


def load(*args, timeout=60):
    r = run("tomato-load", "--json", "true", "--progress", "false", *args, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("tomato-load exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    return json.loads(r.stdout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Load(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tmt-load-")
        cls.root = os.path.join(cls.dir, "mezz")
        make_asset(cls.root, "a1", seconds=8, seg=2, rungs=RUNGS)
        cls.shield = Shield(cls.root, os.path.join(cls.dir, "shield"), "server.open=true")
        # a self-signed certificate for the address and for localhost: its own CA
        cls.cert = os.path.join(cls.dir, "cert.pem")
        cls.key = os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        cls.key, "-out", cls.cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        cls.edge = Edge("upstream.shields=127.0.0.1:%d" % cls.shield.port, "tokens.public=/v/",
                        "cache.warm_path=" + os.path.join(cls.dir, "warm"),
                        "cache.cold_path=" + os.path.join(cls.dir, "cold"),
                        "server.tls_listen=127.0.0.1:0", "tls.cert=" + cls.cert,
                        "tls.key=" + cls.key)
        i = cls.edge.wait_line("msg=\"tls listening\" port=")
        cls.tls_url = "https://127.0.0.1:%d" % int(
            re.search(r" port=(\d+)", cls.edge.lines[i]).group(1))

    @classmethod
    def tearDownClass(cls):
        cls.edge.__exit__(None, None, None)
        cls.shield.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def served(self):
        m = self.edge.metrics()
        get = lambda name, labels="": sum(v for k, v in m.items()
                                          if k.startswith(name) and labels in k)
        return {"requests": get("tmt_http_requests_total"),
                "bytes": get("tmt_http_response_body_bytes_total"),
                "accepted": get("tmt_http_connections_accepted_total"),
                "handshakes": get("tmt_tls_handshakes_total"),
                "h2_streams": get("tmt_http2_streams_total"),
                "hit": get("tmt_edge_requests_total", "hit_"),
                "miss": get("tmt_edge_requests_total", "miss")}

    def delta(self, before):
        after = self.served()
        return {k: after[k] - before[k] for k in after}

    def check_matches_edge(self, rep, d):
        self.assertEqual(rep["requests"], d["requests"], (rep, d))
        self.assertEqual(rep["bytes"], d["bytes"], (rep, d))
        xc = rep["x_cache"]
        self.assertEqual(xc["hit_hot"] + xc["hit_warm"] + xc["hit_cold"], d["hit"], (rep, d))
        self.assertEqual(xc["miss"], d["miss"], (rep, d))

    def test_1_viewers_counts_and_bytes(self):
        before = self.served()
        rep = load("viewers", "--url", self.edge.url(""), "--assets", "a1", "--viewers", "3",
                   "--pace", "fast", "--requests", "40", "--duration", "30s",
                   "--set", "viewers.think=0", "--set", "viewers.watch_mean=100")
        d = self.delta(before)
        self.assertEqual(rep["requests"], 40)
        self.check_matches_edge(rep, d)
        self.assertEqual(rep["errors"], 0, rep)
        self.assertEqual(rep["status"]["2xx"], 40)
        # sessions of master, media playlist, init and 4 segments (more after ABR switches)
        v = rep["viewers"]
        self.assertGreaterEqual(v["sessions"], 3)
        self.assertGreaterEqual(v["segments"], 10)
        self.assertLessEqual(v["segments"], 40 - 3 * v["sessions"] + 3)
        self.assertGreater(rep["x_cache"]["hit_hot"], 0)
        self.assertGreater(rep["ttfb_ms"]["count"], 0)
        self.assertLessEqual(rep["ttfb_ms"]["p50"], rep["ttfb_ms"]["p99_9"])

    def test_2_missing_asset_is_4xx(self):
        before = self.served()
        rep = load("viewers", "--url", self.edge.url(""), "--assets", "nope", "--viewers", "2",
                   "--requests", "10", "--set", "viewers.think=0")
        d = self.delta(before)
        self.assertEqual(rep["requests"], 10)
        self.assertEqual(rep["errors_by_class"]["4xx"], 10)
        self.assertEqual(rep["status"]["4xx"], 10)
        self.assertEqual(rep["requests"], d["requests"])
        self.assertEqual(rep["bytes"], d["bytes"])

    def test_3_connect_errors(self):
        rep = load("replay", "--url", "http://127.0.0.1:%d" % free_port(), "--trace",
                   self.trace(), "--requests", "25")
        self.assertEqual(rep["requests"], 25)
        self.assertEqual(rep["errors_by_class"]["connect"], 25)
        self.assertEqual(rep["status"]["none"], 25)
        self.assertEqual(rep["bytes"], 0)

    def test_4_time_bound(self):
        t0 = time.monotonic()
        rep = load("viewers", "--url", self.edge.url(""), "--assets", "a1", "--viewers", "2",
                   "--requests", "0", "--duration", "1500ms", "--set", "viewers.buffer=2s",
                   "--set", "viewers.watch_mean=100")
        took = time.monotonic() - t0
        self.assertGreaterEqual(rep["elapsed_s"], 1.4)
        self.assertLess(took, 5.0)
        self.assertGreater(rep["requests"], 0)
        self.assertEqual(rep["errors"], 0, rep)
        # real-time pace with a 2-s buffer: each viewer has 2 segments within 1.5 s, not 4
        self.assertLessEqual(rep["viewers"]["segments"], 2 * 2)
        self.assertGreaterEqual(rep["viewers"]["segments"], 2)

    def trace(self):
        path = os.path.join(self.dir, "gen.csv")
        if not os.path.exists(path):
            r = run("tomato-load", "gen-trace", "--out", path, "--seed", "5",
                    "--set", "gen.requests=300", "--set", "gen.assets=3",
                    "--set", "gen.rungs=3", "--set", "gen.segments_min=%d" % SEGS,
                    "--set", "gen.segments_max=%d" % SEGS, "--set", "gen.sessions_per_s=5",
                    "--set", "gen.churn=0", "--set", "gen.fast=true")
            self.assertEqual(r.returncode, 0, r.stderr)
        return path

    def test_5_replay_generated_trace(self):
        path = self.trace()
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "time,obj_id,obj_size")
        objs = [int(l.split(",")[1]) for l in lines[1:]]
        self.assertEqual(len(objs), 300)
        # tomato-cachesim reads what the generator wrote
        r = run("tomato-cachesim", "--trace", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("requests=300 ", r.stdout)
        # asset 1 is a1 on the shield (r0..r2, 4 segments); assets 2 and 3 do not exist
        found = sum(1 for o in objs if o // 1000000 == 1)
        self.assertGreater(found, 0)
        self.assertLess(found, 300)
        before = self.served()
        rep = load("replay", "--url", self.edge.url(""), "--trace", path, "--connections", "4",
                   "--workers", "2")
        d = self.delta(before)
        self.assertEqual(rep["requests"], 300)
        self.assertEqual(rep["status"]["2xx"], found, rep)
        self.assertEqual(rep["errors_by_class"]["4xx"], 300 - found, rep)
        self.assertEqual(rep["requests"], d["requests"])
        self.assertEqual(rep["bytes"], d["bytes"])
        # a rate bound: 40 requests at 100/s take about 0.4 s
        rep = load("replay", "--url", self.edge.url(""), "--trace", path, "--rate", "100",
                   "--requests", "40")
        self.assertEqual(rep["requests"], 40)
        self.assertGreaterEqual(rep["elapsed_s"], 0.35)

    def test_7_hit_miss_split(self):
        """A cold edge: the first pass over an asset's objects misses every time, the second hits
        every time; the per-class latency figures count exactly those responses."""
        # every object of a1 once: master, and per rung its playlist, init and segments
        objs = [1 * 1000000 + 99 * 10000]
        for rung in range(len(RUNGS)):
            objs += [1000000 + rung * 10000 + seg for seg in [9999, 0] + list(range(1, SEGS + 1))]
        trace = os.path.join(self.dir, "once.csv")
        with open(trace, "w") as f:
            f.write("time,obj_id,obj_size\n")
            f.writelines("%d,%d,1000\n" % (t, o) for t, o in enumerate(objs))
        with tempfile.TemporaryDirectory(prefix="tmt-load-cold-") as d:
            edge = Edge("upstream.shields=127.0.0.1:%d" % self.shield.port, "tokens.public=/v/",
                        "cache.warm_path=" + os.path.join(d, "warm"),
                        "cache.cold_path=" + os.path.join(d, "cold"))
            try:
                args = ("replay", "--url", edge.url(""), "--trace", trace, "--connections", "1")
                passes = [load(*args), load(*args)]
            finally:
                edge.__exit__(None, None, None)
        n = len(objs)
        for i, rep in enumerate(passes):
            self.assertEqual(rep["requests"], n, rep)
            self.assertEqual(rep["errors"], 0, rep)
            xc = rep["x_cache"]
            hits = xc["hit_hot"] + xc["hit_warm"] + xc["hit_cold"]
            want_hit, want_miss = (0, n) if i == 0 else (n, 0)
            self.assertEqual((hits, xc["miss"]), (want_hit, want_miss), rep)
            for cls, want in (("hit", want_hit), ("miss", want_miss)):
                for h in ("ttfb_ms", "total_ms"):
                    f = rep[cls][h]
                    self.assertEqual(f["count"], want, (cls, h, rep))
                    if want:
                        self.assertGreater(f["max"], 0)
                        self.assertLessEqual(f["p50"], f["p90"])
                        self.assertLessEqual(f["p90"], f["p99"])
                        self.assertLessEqual(f["p99"], f["p99_9"])
                        self.assertLessEqual(f["p99_9"], f["max"] + 1e-9)
                    else:
                        self.assertEqual(f["p50"], 0)
            # the totals hold both classes
            self.assertEqual(rep["ttfb_ms"]["count"], n)
            self.assertEqual(rep["total_ms"]["count"], n)
        # the text report shows the split too
        r = run("tomato-load", "viewers", "--url", self.edge.url(""), "--assets", "a1",
                "--viewers", "1", "--pace", "fast", "--requests", "5", "--progress", "false")
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in ("hit   ttfb ", "hit   total", "miss  ttfb ", "miss  total"):
            self.assertIn(line, r.stdout)

    def open_conns(self, pid, port):
        """Established TCP connections of process pid to 127.0.0.1:port (ss -tnp)."""
        r = subprocess.run(["ss", "-Htnp", "state", "established", "dst", "127.0.0.1:%d" % port],
                           capture_output=True, text=True, timeout=10)
        return sum(1 for l in r.stdout.splitlines() if "pid=%d," % pid in l)

    def viewers_run(self, mode, viewers, watch):
        """Runs real-time viewers with viewers.connection=mode for a few seconds; watch(pid) is
        called while they run. Returns the report and the edge's accepted connections."""
        accepted = lambda: self.edge.metrics()["tmt_http_connections_accepted_total"]
        a0 = accepted()
        p = subprocess.Popen(
            [os.path.join(os.environ["TMT_BIN"], "tomato-load"), "viewers", "--url",
             self.edge.url(""), "--assets", "a1", "--viewers", str(viewers), "--requests", "0",
             "--duration", "30s", "--ramp", "2s", "--progress", "false", "--json", "true",
             "--set", "viewers.connection=" + mode, "--set", "viewers.watch_mean=100",
             "--set", "viewers.buffer=2s", "--set", "viewers.think=0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            watch(p.pid)
        finally:
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        rep = json.loads(out)
        self.assertEqual(rep["errors"], 0, rep)
        return rep, accepted() - a0

    def test_8_connection_per_viewer(self):
        """viewers.connection=per-viewer: each viewer holds its own keep-alive connection: the
        edge accepts exactly one connection per viewer and has that many open, and tomato-load
        has that many established. Shared pools need fewer: real-time viewers ramped up over two
        seconds seldom overlap, so they lend each other their connections."""
        if shutil.which("ss") is None:
            self.skipTest("no ss")
        port = int(self.edge.url("").rstrip("/").rsplit(":", 1)[1])
        n = 12
        seen = []

        def watch_per_viewer(pid):
            # wait until every viewer has started and holds its connection, then keep watching
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                seen.append((self.open_conns(pid, port),
                             self.edge.metrics()["tmt_http_connections_open"]))
                if len(seen) >= 5 and seen[-5:] == [(n, n)] * 5:
                    return
                time.sleep(0.3)

        rep, accepted = self.viewers_run("per-viewer", n, watch_per_viewer)
        self.assertEqual(seen[-5:], [(n, n)] * 5, seen)
        self.assertEqual(accepted, n, rep)
        # keep-alive: every viewer has made several requests on its one connection
        self.assertGreater(rep["requests"], 4 * n, rep)
        rep, accepted = self.viewers_run("shared", n, lambda pid: time.sleep(4))
        self.assertGreater(rep["requests"], 4 * n, rep)
        self.assertLess(accepted, n, rep)

    def test_6_bad_settings(self):
        r = run("tomato-load", "viewers", "--url", "http://localhost:8080", "--assets", "a1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a numeric IP address", r.stderr)
        r = run("tomato-load", "--set", "viewers.zipf_alpha=abc")
        self.assertEqual(r.returncode, 1)
        self.assertIn("viewers.zipf_alpha", r.stderr)
        r = run("tomato-load", "viewers")
        self.assertEqual(r.returncode, 1)
        self.assertIn("viewers.assets", r.stderr)
        r = run("tomato-load", "viewers", "--assets", "a1", "--url", "https://127.0.0.1:1",
                "--set", "target.ca_file=/nonexistent/ca.pem")
        self.assertEqual(r.returncode, 1)
        self.assertIn("target.ca_file", r.stderr)
        r = run("tomato-load", "--set", "target.http=3")
        self.assertEqual(r.returncode, 1)
        self.assertIn("target.http", r.stderr)

    def viewers_over(self, url, *sets, requests=40):
        return load("viewers", "--url", url, "--assets", "a1", "--viewers", "3", "--pace",
                    "fast", "--requests", str(requests), "--set", "viewers.think=0",
                    "--set", "viewers.watch_mean=100", *sets)

    def test_9_https(self):
        """HTTP/1.1 over TLS: counts, bytes and X-Cache classes equal what the edge served,
        every connection a TLS handshake; certificates are verified against target.ca_file (by
        IP SAN, or by target.host's name), refused without it, skipped with target.insecure."""
        for sets in (("--insecure", "true"), ("--set", "target.ca_file=" + self.cert),
                     ("--set", "target.ca_file=" + self.cert, "--set", "target.host=localhost")):
            with self.subTest(sets=sets):
                before = self.served()
                rep = self.viewers_over(self.tls_url, *sets)
                d = self.delta(before)
                self.assertEqual(rep["protocol"], "http/1.1+tls")
                self.assertEqual(rep["requests"], 40)
                self.assertEqual(rep["errors"], 0, rep)
                self.check_matches_edge(rep, d)
                self.assertGreater(rep["bytes"], 0)
                self.assertGreaterEqual(d["handshakes"], 1)
                self.assertEqual(d["handshakes"], d["accepted"], d)
                self.assertEqual(rep["tls"]["handshakes"], d["handshakes"], (rep, d))
                self.assertEqual(d["h2_streams"], 0, d)
                self.assertLessEqual(d["accepted"], 3, d)  # keep-alive: one per viewer at most
        # an untrusted certificate, or one that does not match target.host: no request gets out
        for sets in ((), ("--set", "target.ca_file=" + self.cert, "--set",
                          "target.host=other.example")):
            with self.subTest(sets=sets):
                before = self.served()
                rep = load("replay", "--url", self.tls_url, "--trace", self.trace(),
                           "--requests", "5", *sets)
                d = self.delta(before)
                self.assertEqual(rep["requests"], 5)
                self.assertEqual(rep["errors_by_class"]["other"], 5, rep)
                self.assertEqual(rep["status"]["none"], 5, rep)
                self.assertEqual(d["requests"], 0, d)
                self.assertEqual(d["handshakes"], 0, d)

    def test_10_http2(self):
        """HTTP/2 by ALPN over TLS and h2c with prior knowledge: a replay of 300 requests with 16
        at a time runs as streams of one connection; counts, bytes, statuses and X-Cache classes
        equal the edge's; per-viewer connections give one h2 connection per viewer."""
        path = self.trace()
        with open(path) as f:
            found = sum(1 for l in f.read().splitlines()[1:] if int(l.split(",")[1]) // 1000000 == 1)
        for url, proto, sets in ((self.tls_url, "h2", ("--insecure", "true")),
                                 (self.edge.url("").rstrip("/"), "h2c", ())):
            with self.subTest(proto=proto):
                before = self.served()
                rep = load("replay", "--url", url, "--http", "2", "--trace", path,
                           "--connections", "16", *sets)
                d = self.delta(before)
                self.assertEqual(rep["protocol"], proto)
                self.assertEqual(rep["requests"], 300)
                self.assertEqual(rep["status"]["2xx"], found, rep)
                self.assertEqual(rep["errors_by_class"]["4xx"], 300 - found, rep)
                self.check_matches_edge(rep, d)
                self.assertEqual(d["h2_streams"], 300, d)
                self.assertEqual(d["accepted"], 1, d)
                self.assertEqual(d["handshakes"], 1 if proto == "h2" else 0, d)
                # viewers, each on its own h2 connection
                before = self.served()
                rep = self.viewers_over(url, "--http", "2", "--connection", "per-viewer", *sets)
                d = self.delta(before)
                self.assertEqual(rep["errors"], 0, rep)
                self.check_matches_edge(rep, d)
                self.assertEqual(d["h2_streams"], 40, d)
                self.assertEqual(d["accepted"], 3, d)
                xc = rep["x_cache"]
                hits = xc["hit_hot"] + xc["hit_warm"] + xc["hit_cold"]
                self.assertAlmostEqual(rep["hit_ratio"], hits / 40, places=3)
                self.assertEqual(rep["hit"]["ttfb_ms"]["count"], hits)


    def test_11_tls_resumption(self):
        """An edge that closes idle connections after 100 ms: requests 500 ms apart each open a
        connection, and every one after the first resumes the TLS session (a ticket) of the one
        before, over HTTP/1.1 and h2, as the edge counts it; target.tls_resume=false makes full
        handshakes."""
        with tempfile.TemporaryDirectory(prefix="tmt-load-resume-") as d:
            edge = Edge("upstream.shields=127.0.0.1:%d" % self.shield.port, "tokens.public=/v/",
                        "cache.warm_path=" + os.path.join(d, "warm"),
                        "cache.cold_path=" + os.path.join(d, "cold"),
                        "http.idle_timeout=100ms", "server.tls_listen=127.0.0.1:0",
                        "tls.cert=" + self.cert, "tls.key=" + self.key)
            try:
                i = edge.wait_line("msg=\"tls listening\" port=")
                url = "https://127.0.0.1:%d" % int(
                    re.search(r" port=(\d+)", edge.lines[i]).group(1))
                resumed = lambda: edge.metrics().get("tmt_tls_resumed_total", 0)
                for http, resume, want in (("1.1", "true", 3), ("2", "true", 3),
                                           ("1.1", "false", 0)):
                    with self.subTest(http=http, resume=resume):
                        r0 = resumed()
                        rep = load("replay", "--url", url, "--insecure", "true", "--http", http,
                                   "--trace", self.trace(), "--connections", "1", "--rate", "2",
                                   "--requests", "4", "--set", "target.tls_resume=" + resume)
                        self.assertEqual(rep["requests"], 4, rep)
                        self.assertEqual(rep["errors"] - rep["errors_by_class"]["4xx"], 0, rep)
                        self.assertEqual(rep["tls"], {"handshakes": 4, "resumed": want}, rep)
                        self.assertEqual(resumed() - r0, want)
            finally:
                edge.__exit__(None, None, None)


class LoadControlTokens(unittest.TestCase):
    """Viewers whose tokens come from the control plane (control.url) against a managed edge that
    checks tokens: without tokens it answers 403; with control.accounts each viewer logs in
    through its account (two viewers per account, each with its own device), asks for playback
    of a show per session and plays the show's asset with the answer's token, without an error.
    The accounts hold exactly the devices of their viewers, reused by a second run, and no more
    live leases than viewers."""

    def system(self, d, *control_sets):
        """A managed system in d with the published show "film" (asset film-v1) and three viewer
        accounts in d/accounts.txt: (system, edge, accounts file, anonymous API)."""
        s = System(d)
        root = os.path.join(d, "mezz")
        make_asset(root, "film-v1", seconds=8, seg=2, rungs=[("180p", 320, 180, 300000)])
        s.control(*control_sets)
        s.shield(root)
        edge = s.edge("edge-1")
        s.wait_edge_ready(edge)
        st, _, r = s.op.call("POST", "/v1/shows", {"id": "film", "title": "Film",
                                                   "asset_id": "film-v1",
                                                   "state": "published", "duration": 8})
        self.assertEqual(st, 201, r.body)
        anon = s.cp.api()
        accounts = os.path.join(d, "accounts.txt")
        with open(accounts, "w") as f:
            f.write("# email password\n")
            for k in range(3):
                email, pw = "load%d@example.com" % k, "load-password-%d" % k
                st, _, r = anon.call("POST", "/v1/users", {"email": email, "password": pw,
                                                           "display_name": "L%d" % k})
                self.assertEqual(st, 201, r.body)
                f.write("%s %s\n" % (email, pw))
        return s, edge, accounts, anon

    def test_heartbeats_keep_leases(self):
        """Leases of 3 s: viewers that play in real time for 8 s keep theirs with heartbeats
        every second (counted), without a control-plane error or an edge error, and the
        leases are live at the end."""
        d = tempfile.mkdtemp(prefix="tmt-load-hb-")
        s = None
        try:
            s, edge, accounts, anon = self.system(d, "devices.lease_ttl=3s")
            rep = load("viewers", "--url", edge.url(""), "--assets", "film", "--viewers", "2",
                       "--requests", "0", "--duration", "8s", "--set", "viewers.buffer=2s",
                       "--set", "viewers.think=0", "--set", "viewers.watch_mean=100",
                       "--set", "control.url=http://127.0.0.1:%d" % s.cport,
                       "--set", "control.accounts=" + accounts, "--set", "control.heartbeat=1s")
            v = rep["viewers"]
            self.assertEqual(rep["errors"], 0, rep)
            self.assertEqual(v["control_errors"], 0, rep)
            self.assertGreaterEqual(v["heartbeats"], 4, rep)
            self.assertGreater(rep["requests"], 0)
            api = anon.login("load0@example.com", "load-password-0")
            self.assertEqual(len(api.call("GET", "/v1/playback")[1]["leases"]), 2)
        finally:
            if s is not None:
                s.close()
            shutil.rmtree(d, ignore_errors=True)

    def test_tokens_from_control_plane(self):
        d = tempfile.mkdtemp(prefix="tmt-load-cp-")
        s = None
        try:
            s, edge, accounts, anon = self.system(d)
            url = edge.url("")
            # no token: refused
            rep = load("viewers", "--url", url, "--assets", "film-v1", "--viewers", "2",
                       "--requests", "6", "--set", "viewers.think=0")
            self.assertEqual(rep["errors_by_class"]["4xx"], 6, rep)
            cp = ("--set", "control.url=http://127.0.0.1:%d" % s.cport,
                  "--set", "control.accounts=" + accounts)
            for run_no, requests in ((1, 60), (2, 20)):
                rep = load("viewers", "--url", url, "--assets", "film", "--viewers", "5",
                           "--pace", "fast", "--requests", str(requests), "--workers", "2",
                           "--set", "viewers.think=0", "--set", "viewers.watch_mean=100", *cp)
                self.assertEqual(rep["requests"], requests, rep)
                self.assertEqual(rep["errors"], 0, rep)
                self.assertEqual(rep["status"]["2xx"], requests, rep)
                v = rep["viewers"]
                self.assertEqual(v["control_errors"], 0, rep)
                self.assertGreaterEqual(v["playbacks"], 5, rep)
                # every session played on a token of its own (a last playback may find the
                # request budget spent)
                self.assertGreaterEqual(v["sessions"], 5, rep)
                self.assertLessEqual(v["playbacks"] - v["sessions"], 5, rep)
                # each account: its viewers' devices (two, two, one), reused by the second run,
                # and as many live leases
                for k, n in enumerate((2, 2, 1)):
                    api = anon.login("load%d@example.com" % k, "load-password-%d" % k)
                    devs = api.call("GET", "/v1/devices")[1]["devices"]
                    self.assertEqual(sorted(x["name"] for x in devs),
                                     ["tomato-load-%d" % i for i in range(n)], (run_no, devs))
                    leases = api.call("GET", "/v1/playback")[1]["leases"]
                    self.assertEqual(len(leases), n, leases)
                    self.assertEqual({x["asset_id"] for x in leases}, {"film-v1"})
            # too few accounts for the viewers: refused before any traffic
            r = run("tomato-load", "viewers", "--url", url, "--assets", "film", "--viewers", "7",
                    *cp)
            self.assertEqual(r.returncode, 1)
            self.assertIn("need 4 accounts", r.stderr)
        finally:
            if s is not None:
                s.close()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
