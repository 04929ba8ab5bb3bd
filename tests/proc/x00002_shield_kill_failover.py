"""Fault: one of two shields killed (kill -9) under load; the edge fails over to the other.

Unmanaged system (with upstream.shields the edge's failover is its own rendezvous order; the
control plane would only take the dead shield out of the list after nodes.health_timeout): two
shields (server.open) on the same media, one edge with both in upstream.shields and a cache
too small to hold the working set, so that tomato-load viewers keep it filling from both.

While 8 viewers (pace fast, so each has exactly one request in flight at any time) watch, one
shield is killed. A fill that has not yet had the dead shield's response head moves on to the
next shield, so only requests whose response was already coming from the dead shield can fail:
the viewers see at most one error each (errors <= viewers). A second load run afterwards has no
error at all, every fill of it reaches the live shield, and the edge counts the dead shield's
refused connections as upstream errors and retries, logging them at most once a second (a dead
shield fails thousands of fills a second). When the dead shield comes back on its port, its
keys go to it again and the errors stop."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Edge, Shield, prog, run
from harness.media import make_asset

RUNGS = [("r0", 320, 180, 300000), ("r1", 256, 144, 200000)]
VIEWERS = 8


def wait_for(pred, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def load_args(url, duration, *extra):
    return ["viewers", "--json", "true", "--progress", "false", "--url", url, "--assets",
            "a1,a2,a3", "--viewers", str(VIEWERS), "--pace", "fast", "--duration", duration,
            "--requests", "0", "--set", "viewers.think=0", "--set", "viewers.watch_mean=100",
            *extra]


def shield_requests(s):
    m = s.metrics()
    return sum(v for k, v in m.items() if k.startswith("tmt_shield_requests_total"))


class ShieldKillFailover(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x2-")
        self.root = os.path.join(self.dir, "mezz")
        for a in ("a1", "a2", "a3"):
            make_asset(self.root, a, seconds=12, seg=2, rungs=RUNGS)
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def shield(self, name, *sets):
        return self.start(Shield(self.root, os.path.join(self.dir, name), "server.open=true",
                                 *sets))

    def test_one_shield_killed_under_load(self):
        s1, s2 = self.shield("s1"), self.shield("s2")
        # 1 MiB of RAM, no disk tiers, 256k objects: twice that stays free, so about 512k of the
        # 2 MiB working set is kept and most requests are fills.
        e = self.start(Edge("upstream.shields=127.0.0.1:%d,127.0.0.1:%d" % (s1.port, s2.port),
                            "tokens.public=/v/", "cache.policy=lru", "cache.hot_size=1m",
                            "cache.warm_size=0", "cache.cold_size=0",
                            "cache.max_object_size=256k", "upstream.connect_timeout=500ms",
                            "upstream.response_timeout=5s",
                            "cache.warm_path=" + os.path.join(self.dir, "warm"),
                            "cache.cold_path=" + os.path.join(self.dir, "cold")))
        # Both shields packaged every object once already: the run below measures failover,
        # not packaging time.
        for s in (s1, s2):
            r = run("tomato-load", *load_args(s.url(""), "30s", "--requests", "300"))
            self.assertEqual(r.returncode, 0, r.stderr)
        load = subprocess.Popen([prog("tomato-load"), *load_args(e.url(""), "5s")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill s1 once the edge has been filling from both shields for a while.
        base1, base2 = shield_requests(s1), shield_requests(s2)
        self.assertTrue(wait_for(lambda: shield_requests(s1) - base1 >= 100 and
                                 shield_requests(s2) - base2 >= 100, timeout=30),
                        (shield_requests(s1) - base1, shield_requests(s2) - base2))
        s1.proc.send_signal(signal.SIGKILL)
        s1.proc.wait()
        killed_at = time.monotonic()
        out, err = load.communicate(timeout=60)
        self.assertEqual(load.returncode, 0, err)
        rep = json.loads(out)
        # The load ran on after the kill.
        self.assertGreater(time.monotonic() - killed_at, 2.0, "the load ended too soon")
        # Only requests in flight on the dead shield fail: one per viewer at most.
        self.assertLessEqual(rep["errors"], VIEWERS, rep)
        self.assertEqual(rep["errors_by_class"]["connect"] + rep["errors_by_class"]["timeout"],
                         0, rep)
        self.assertGreater(rep["status"]["2xx"], 500, rep)

        # Later: no error at all, every fill ends at s2, the dead shield's keys are retried.
        m0, s2_0 = e.metrics(), shield_requests(s2)
        r = run("tomato-load", *load_args(e.url(""), "2s"), timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        rep2 = json.loads(r.stdout)
        m1 = e.metrics()
        d = {k: m1[k] - m0[k] for k in ("tmt_edge_upstream_requests_total",
                                        "tmt_edge_upstream_errors_total",
                                        "tmt_edge_upstream_retries_total")}
        self.assertEqual(rep2["errors"], 0, rep2)
        self.assertGreater(rep2["requests"], 200, rep2)
        self.assertGreater(d["tmt_edge_upstream_errors_total"], 0, d)
        self.assertEqual(d["tmt_edge_upstream_retries_total"],
                         d["tmt_edge_upstream_errors_total"], d)
        self.assertEqual(shield_requests(s2) - s2_0,
                         d["tmt_edge_upstream_requests_total"] -
                         d["tmt_edge_upstream_errors_total"], d)

        # Each failure is counted, but logged at most once a second per worker and shield (the
        # edge has 2 workers), with the number left out.
        down_s = time.monotonic() - killed_at
        failed = [ln for ln in e.lines if "upstream request failed" in ln]
        self.assertTrue(failed)
        self.assertTrue(all("upstream=127.0.0.1:%d " % s1.port in ln for ln in failed), failed)
        self.assertLessEqual(len(failed), 2 * (down_s + 1), failed)
        self.assertGreater(sum(int(ln.rpartition("unlogged_before=")[2]) for ln in failed),
                           d["tmt_edge_upstream_errors_total"] / 2, failed)

        # s1 back on its port: it serves its keys again, and the errors stop.
        s1b = self.shield("s1", "server.listen=127.0.0.1:%d" % s1.port)
        m0 = e.metrics()
        r = run("tomato-load", *load_args(e.url(""), "2s"), timeout=60)
        rep3 = json.loads(r.stdout)
        m1 = e.metrics()
        self.assertEqual(rep3["errors"], 0, rep3)
        self.assertGreater(shield_requests(s1b), 0)
        self.assertEqual(m1["tmt_edge_upstream_errors_total"],
                         m0["tmt_edge_upstream_errors_total"])
        print("x00002: during the kill %d requests, %d errors %s (bound %d); after it %d "
              "requests, 0 errors, %d fills retried on the live shield" %
              (rep["requests"], rep["errors"], rep["errors_by_class"], VIEWERS,
               rep2["requests"], d["tmt_edge_upstream_retries_total"]), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
