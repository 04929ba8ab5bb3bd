"""Fault: one of two shields killed (kill -9) under load; the edge fails over to the other.

Unmanaged system (with upstream.shields the edge's failover is its own rendezvous order; the
control plane would only take the dead shield out of the list after nodes.health_timeout): two
shields (server.open) on the same media, one edge with both in upstream.shields and a cache
too small to hold the working set, so that tomato-load viewers keep it filling from both.

While 8 viewers (pace fast, so each has exactly one request in flight at any time) watch, one
shield is killed. A fill that has not yet had the dead shield's response head moves on to the
next shield, so only requests whose response was already coming from the dead shield can fail:
the viewers see at most one error each (errors <= viewers). The edge counts the refused
connections as upstream errors and retries, logs them at most once a second, and holds the dead
shield off after them (5 s, then one probe at a time), so that a few fills fail, not one per
fill of its keys. A second load run afterwards has no error at all and every fill of it ends at
the live shield. When the dead shield comes back on its port, a probe finds it and its keys go
to it again, without errors.

The same with a hung shield (SIGSTOP): a fill waits upstream.response_timeout before it moves
on, then the hold spares the others that wait."""
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

    def edge(self, s1, s2, response_timeout):
        # 1 MiB of RAM, no disk tiers, 256k objects: twice that stays free, so about 512k of the
        # 2 MiB working set is kept and most requests are fills.
        e = self.start(Edge("upstream.shields=127.0.0.1:%d,127.0.0.1:%d" % (s1.port, s2.port),
                            "tokens.public=/v/", "cache.policy=lru", "cache.hot_size=1m",
                            "cache.warm_size=0", "cache.cold_size=0",
                            "cache.max_object_size=256k", "upstream.connect_timeout=500ms",
                            "upstream.response_timeout=" + response_timeout,
                            "cache.warm_path=" + os.path.join(self.dir, "warm"),
                            "cache.cold_path=" + os.path.join(self.dir, "cold")))
        # Both shields packaged every object once already: the runs measure failover, not
        # packaging time.
        for s in (s1, s2):
            r = run("tomato-load", *load_args(s.url(""), "30s", "--requests", "300"))
            self.assertEqual(r.returncode, 0, r.stderr)
        return e

    def test_one_shield_hung_under_load(self):
        """A shield that hangs (SIGSTOP: connections are accepted, nothing is answered) costs a
        fill upstream.response_timeout before it moves on; the edge then holds that shield off
        (5 s) and tries it again with one fill at a time, so the viewers never wait for it
        more than once per hold and none of them times out."""
        s1, s2 = self.shield("s1"), self.shield("s2")
        e = self.edge(s1, s2, "2s")
        load = subprocess.Popen([prog("tomato-load"), *load_args(e.url(""), "12s")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base1 = shield_requests(s1)
        self.assertTrue(wait_for(lambda: shield_requests(s1) - base1 >= 100, timeout=30))
        s1.signal(signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            # The fills in flight on s1 and those that came to it first fail after 2 s.
            time.sleep(3.0)
            held = e.metrics()["tmt_edge_upstream_errors_total"]
            self.assertGreater(held, 0)
            out, err = load.communicate(timeout=60)
            after = e.metrics()["tmt_edge_upstream_errors_total"]
            left = time.monotonic() - stopped - 3.0
        finally:
            s1.signal(signal.SIGCONT)
        self.assertEqual(load.returncode, 0, err)
        rep = json.loads(out)
        self.assertEqual(rep["errors"], 0, rep)
        self.assertGreater(rep["requests"], 500, rep)
        # Afterwards only probes, one per 5 s hold plus its 2 s timeout.
        self.assertGreater(left, 3.0)
        self.assertLessEqual(after - held, left / 7.0 + 1, (held, after, left))
        self.assertLess(rep["ttfb_ms"]["max"], 2 * 2000 + 1500, rep["ttfb_ms"])
        print("x00002: hung shield: %d requests, 0 errors, %d fills timed out in the first 3 s, "
              "%d in the %.1f s after, slowest first byte %.0f ms" %
              (rep["requests"], held, after - held, left, rep["ttfb_ms"]["max"]),
              file=sys.stderr)

    def test_one_shield_killed_under_load(self):
        s1, s2 = self.shield("s1"), self.shield("s2")
        e = self.edge(s1, s2, "5s")
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

        # The edge held the dead shield off after its first refusals: a few errors, not one per
        # fill of its keys (thousands a second).
        self.assertLessEqual(e.metrics()["tmt_edge_upstream_errors_total"], 3 * VIEWERS)

        # Later: no error at all, every fill ends at s2; the dead shield is only probed (a
        # refused connection, then the next shield) once its hold is over.
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
        self.assertLessEqual(d["tmt_edge_upstream_errors_total"], 2, d)
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

        # s1 back on its port: once its hold is over (at most 5 s), a probe finds it and it
        # serves its keys again; no more errors.
        s1b = self.shield("s1", "server.listen=127.0.0.1:%d" % s1.port)
        m0 = e.metrics()
        r = run("tomato-load", *load_args(e.url(""), "6s"), timeout=60)
        rep3 = json.loads(r.stdout)
        m1 = e.metrics()
        self.assertEqual(rep3["errors"], 0, rep3)
        self.assertGreater(shield_requests(s1b), 0)
        self.assertEqual(m1["tmt_edge_upstream_errors_total"],
                         m0["tmt_edge_upstream_errors_total"])
        print("x00002: killed shield: %d requests, %d errors %s (bound %d), %d upstream errors "
              "in all; after it %d requests, 0 errors, %d probes of the dead shield" %
              (rep["requests"], rep["errors"], rep["errors_by_class"], VIEWERS,
               m0["tmt_edge_upstream_errors_total"], rep2["requests"],
               d["tmt_edge_upstream_retries_total"]), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
