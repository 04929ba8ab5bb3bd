"""Fault: kill -9 of an edge under load, and its restart on the same warm and cold paths.

Unmanaged system (the control plane adds nothing to an edge's disk cache): one shield
(server.open) on real media and one edge pointing at it through upstream.shields, with a small
hot tier so that objects live on the warm tier. Asset a1 is fetched once through the edge and
pushed out of RAM; then tomato-load viewers watch a2 (every hit moves objects between RAM and
the warm tier, so the kill lands among RocksDB writes), the edge is killed with SIGKILL in the
middle of it and started again on the same port and paths while the load goes on. The restarted
edge answers every a1 object from disk (X-Cache HIT-warm or HIT-cold) with the shield's exact
bytes and without asking the shield again (the shield's access log holds each a1 path once),
and every a2 object it answers is whole."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Edge, Shield, http_get, prog
from harness.media import make_asset

RUNGS = [("r0", 320, 180, 300000), ("r1", 256, 144, 200000)]
SEGS = 6  # 12 s in 2 s segments


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def asset_paths(asset):
    paths = ["/v/%s/master.m3u8" % asset]
    for rid, *_ in RUNGS:
        paths += ["/v/%s/%s/index.m3u8" % (asset, rid), "/v/%s/%s/init.mp4" % (asset, rid)]
        paths += ["/v/%s/%s/%d.m4s" % (asset, rid, n) for n in range(1, SEGS + 1)]
    return paths


def start_load(url, *args):
    return subprocess.Popen([prog("tomato-load"), "viewers", "--json", "true", "--progress",
                             "false", "--url", url, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def load_report(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("tomato-load exit %d:\n%s%s" % (p.returncode, out, err))
    return json.loads(out)


class EdgeKillUnderLoad(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x1-")
        self.root = os.path.join(self.dir, "mezz")
        for a in ("a1", "a2"):
            make_asset(self.root, a, seconds=2 * SEGS, seg=2, rungs=RUNGS)
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def edge(self, port):
        return self.start(Edge(
            "upstream.shields=127.0.0.1:%d" % self.shield.port, "tokens.public=/v/",
            "server.listen=127.0.0.1:%d" % port, "cache.policy=lru",
            "cache.hot_size=256k", "cache.warm_size=6m", "cache.cold_size=8m",
            "cache.max_object_size=1m",
            "cache.warm_path=" + os.path.join(self.dir, "warm"),
            "cache.cold_path=" + os.path.join(self.dir, "cold")))

    def test_kill_9_under_load_then_restart_serves_from_disk(self):
        alog = os.path.join(self.dir, "shield.access")
        self.shield = self.start(Shield(self.root, os.path.join(self.dir, "shield"),
                                        "server.open=true", "log.access_log=" + alog))
        port = free_port()
        e = self.edge(port)
        # a1 once through the edge (each a miss), the shield's bytes kept for the comparison.
        a1 = asset_paths("a1")
        want = {}
        for p in a1:
            r = http_get(e.port, p)
            self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"), p)
            want[p] = r.body
        # a2 fills RAM (256k): a1 goes to the warm tier.
        for p in asset_paths("a2"):
            self.assertEqual(http_get(e.port, p).status, 200, p)
        # (the store's figures are published once a second)
        self.assertTrue(wait_for(lambda: e.metrics()['tmt_edge_cache_objects{tier="warm"}'] >=
                                 len(a1) // 2), e.metrics())

        load = start_load(e.url(""), "--assets", "a2", "--viewers", "4", "--pace", "fast",
                          "--duration", "6s", "--requests", "0", "--set", "viewers.think=50ms",
                          "--set", "viewers.watch_mean=100")
        # Kill it while the viewers are being served and the tiers move objects.
        self.assertTrue(wait_for(lambda: e.metrics()["tmt_edge_cache_promotions_total"] >= 200,
                                 timeout=20), "the load did not reach the edge")
        served_before = e.metrics()["tmt_http_requests_total"]
        e.proc.send_signal(signal.SIGKILL)
        e.proc.wait()
        e2 = self.edge(port)
        rep = load_report(load)
        # The viewers were served before the kill and by the restarted edge after it.
        self.assertGreater(rep["status"]["2xx"], 0, rep)
        m = e2.metrics()
        self.assertGreater(m["tmt_http_requests_total"], 0, (rep, served_before))
        self.assertEqual(m.get("tmt_edge_cache_checksum_failures_total", 0), 0, m)

        # Every a1 object comes back from disk, byte for byte, without the shield.
        tiers = {}
        for p in a1:
            r = http_get(e2.port, p)
            self.assertEqual(r.status, 200, p)
            self.assertEqual(r.body, want[p], p)
            tiers[p] = r.header("x-cache")
        self.assertTrue(all(t in ("HIT-warm", "HIT-cold") for t in tiers.values()), tiers)
        print("x00001: load requests=%d errors=%s; after the restart a1: %d HIT-warm, %d HIT-cold"
              % (rep["requests"], rep["errors_by_class"],
                 sum(t == "HIT-warm" for t in tiers.values()),
                 sum(t == "HIT-cold" for t in tiers.values())), file=sys.stderr)
        # Every a2 object is whole (a fill cut by the kill was not stored half).
        for p in asset_paths("a2"):
            r = http_get(e2.port, p)
            self.assertEqual(r.status, 200, p)
            self.assertEqual(r.body, http_get(self.shield.port, p).body, p)
        self.assertEqual(self.shield.stop(), 0)  # writes out the access log
        counts = {}
        with open(alog) as f:
            for line in f:
                mt = re.search(r" path=(\S+) ", line)
                counts[mt.group(1)] = counts.get(mt.group(1), 0) + 1
        self.assertEqual({p: counts.get(p) for p in a1}, {p: 1 for p in a1})


if __name__ == "__main__":
    unittest.main()
