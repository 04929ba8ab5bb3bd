"""tomato-load against a running edge in front of a shield with real media: the counts and bytes of
its --json report equal what the edge served (/metrics), errors are classified (404s of a missing
asset as 4xx, a port with nothing listening as connect errors), the count and time bounds hold,
and a generated trace (read by tomato-cachesim too) replays with exact figures: the generated
catalog's first asset exists on the shield, the others answer 404."""
import json
import os
import shutil
import socket
import tempfile
import time
import unittest

from harness import Edge, Shield, run
from harness.media import make_asset

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
        cls.edge = Edge("upstream.shields=127.0.0.1:%d" % cls.shield.port, "tokens.public=/v/",
                        "cache.warm_path=" + os.path.join(cls.dir, "warm"),
                        "cache.cold_path=" + os.path.join(cls.dir, "cold"))

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
        r = run("tomato-load", "--url", "https://127.0.0.1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("https is not supported", r.stderr)


if __name__ == "__main__":
    unittest.main()
