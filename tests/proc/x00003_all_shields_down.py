"""Fault: every shield down, hung (SIGSTOP) and then dead (SIGKILL).

Unmanaged system (the edge's behaviour without upstreams does not involve the control plane):
two shields (server.open) and one edge with both in upstream.shields, a small
upstream.connect_timeout and upstream.response_timeout. Asset a1 is watched once through the
edge (tomato-load viewers), a2 never.

With both shields stopped (they accept connections in the kernel but never answer), and then
with both killed (connections refused):
- viewers of a1 keep playing: a tomato-load run has no error and every answer is a hit;
  playlists are fresh for the shield's max-age=300, so they are hits too (after that, its
  stale-if-error=86400 lets the edge serve them STALE for a day, as the second test shows with
  shorter times);
- an a2 object gets 504 once each shield's response_timeout has passed (hung shields), or 502
  at once (refused connections), well under the configured timeouts plus a margin; nothing of it
  is stored.
A shield started again on its port serves a2 through the edge at once.

A shield's playlists stay fresh for 300 s, too long to wait for here: a second test puts two
scripted origins (tests/proc/harness/origin.py) in the shields' place, whose objects expire
after a second. When every upstream fails (answers
500, 502, 503 or 504, or refuses the connection) a stored copy within its stale-if-error window
is served STALE; a copy without the directive, with must-revalidate, or past its window is
not, and the client gets the error."""
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

from harness import Edge, Shield, http_get, run
from harness.origin import Origin
from harness.media import make_asset

RUNGS = [("r0", 320, 180, 300000), ("r1", 256, 144, 200000)]
SEGS = 5
CONNECT_S, RESPONSE_S = 0.3, 1.0


def asset_paths(asset):
    paths = ["/v/%s/master.m3u8" % asset]
    for rid, *_ in RUNGS:
        paths += ["/v/%s/%s/index.m3u8" % (asset, rid), "/v/%s/%s/init.mp4" % (asset, rid)]
        paths += ["/v/%s/%s/%d.m4s" % (asset, rid, n) for n in range(1, SEGS + 1)]
    return paths


def viewers(url, asset, requests):
    r = run("tomato-load", "viewers", "--json", "true", "--progress", "false", "--url", url,
            "--assets", asset, "--viewers", "3", "--pace", "fast", "--requests", str(requests),
            "--duration", "30s", "--set", "viewers.think=0", "--set", "viewers.watch_mean=100",
            timeout=60)
    if r.returncode != 0:
        raise AssertionError("tomato-load exit %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


class AllShieldsDown(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x3-")
        self.root = os.path.join(self.dir, "mezz")
        for a in ("a1", "a2"):
            make_asset(self.root, a, seconds=2 * SEGS, seg=2, rungs=RUNGS)
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def check_cached_plays(self, e):
        rep = viewers(e.url(""), "a1", 150)
        self.assertEqual((rep["requests"], rep["errors"]), (150, 0), rep)
        xc = rep["x_cache"]
        self.assertEqual(xc["hit_hot"] + xc["hit_warm"] + xc["hit_cold"], 150, rep)
        for p in asset_paths("a1"):
            r = http_get(e.port, p)
            self.assertEqual((r.status, r.header("x-cache")), (200, "HIT-hot"), p)

    def uncached_fails(self, e, status, bound):
        """GETs of a2 objects: each gets status within bound seconds; returns the fastest and
        the slowest time."""
        best, worst = bound, 0.0
        for p in asset_paths("a2")[:4]:
            t0 = time.monotonic()
            r = http_get(e.port, p, timeout=bound + 5)
            took = time.monotonic() - t0
            self.assertEqual(r.status, status, (p, r))
            self.assertLess(took, bound, p)
            best, worst = min(best, took), max(worst, took)
        return best, worst

    def test_cached_plays_uncached_fails_fast(self):
        shields = [self.start(Shield(self.root, os.path.join(self.dir, n), "server.open=true"))
                   for n in ("s1", "s2")]
        ports = [s.port for s in shields]
        e = self.start(Edge(
            "upstream.shields=" + ",".join("127.0.0.1:%d" % p for p in ports),
            "tokens.public=/v/", "upstream.connect_timeout=%dms" % (CONNECT_S * 1000),
            "upstream.response_timeout=%dms" % (RESPONSE_S * 1000),
            "upstream.read_timeout=%dms" % (RESPONSE_S * 1000),
            "cache.warm_path=" + os.path.join(self.dir, "warm"),
            "cache.cold_path=" + os.path.join(self.dir, "cold")))
        for p in asset_paths("a1"):
            r = http_get(e.port, p, timeout=20)
            self.assertEqual(r.status, 200, p)
            if p.endswith(".m3u8"):
                self.assertEqual(r.header("cache-control"),
                                 "public, max-age=300, stale-if-error=86400", p)

        # Hung shields: each is tried for response_timeout, then 504.
        for s in shields:
            s.signal(signal.SIGSTOP)
        self.check_cached_plays(e)
        fastest, hung = self.uncached_fails(e, 504, 2 * RESPONSE_S + 1.5)
        self.assertGreaterEqual(fastest, 2 * RESPONSE_S * 0.9)  # both were tried

        # Dead shields: refused at once, 502 well before connect_timeout.
        for s in shields:
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait()
        self.check_cached_plays(e)
        _, dead = self.uncached_fails(e, 502, CONNECT_S + 0.7)
        m = e.metrics()
        self.assertEqual(m['tmt_edge_requests_total{result="stale"}'], 0)
        self.assertGreaterEqual(m["tmt_edge_upstream_errors_total"], 2 * 2 * 4)
        self.assertEqual(http_get(e.port, asset_paths("a2")[0]).status, 502)  # nothing stored

        # A shield back on its port: a2 plays through the edge again.
        self.start(Shield(self.root, os.path.join(self.dir, "s1"), "server.open=true",
                          "server.listen=127.0.0.1:%d" % ports[0]))
        rep = viewers(e.url(""), "a2", 60)
        self.assertEqual((rep["requests"], rep["errors"]), (60, 0), rep)
        print("x00003: uncached with hung shields: 504 in at most %.2f s (2 x %.1f s response "
              "timeout); with dead shields: 502 in at most %.3f s" % (hung, RESPONSE_S, dead),
              file=sys.stderr)


class UpstreamErrorsStaleIfError(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x3-")
        self.origins = [Origin(), Origin()]

    def tearDown(self):
        for o in self.origins:
            o.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_stale_if_error_stands_in_for_failing_upstreams(self):
        objs = {"/v/b/master.m3u8": "max-age=1, stale-if-error=60",
                "/v/b/short.m3u8": "max-age=1, stale-if-error=2",
                "/v/b/plain.m3u8": "max-age=1",
                "/v/b/strict.m3u8": "max-age=1, stale-if-error=60, must-revalidate"}
        for o in self.origins:
            for p, cc in objs.items():
                o.put(p, body=("#EXTM3U\n# %s\n" % p).encode(), headers={"Cache-Control": cc})
        with Edge("upstream.shields=" + ",".join(o.addr for o in self.origins),
                  "tokens.public=/v/", "upstream.connect_timeout=300ms",
                  "cache.warm_path=" + os.path.join(self.dir, "warm"),
                  "cache.cold_path=" + os.path.join(self.dir, "cold")) as e:
            for p in objs:
                self.assertEqual(http_get(e.port, p).header("x-cache"), "MISS", p)
            time.sleep(1.3)
            for code in (500, 502, 503, 504):
                for o in self.origins:
                    for p in objs:
                        o.fault(p, "status", code=code)
                r = http_get(e.port, "/v/b/master.m3u8")
                self.assertEqual((r.status, r.header("x-cache")), (200, "STALE"), code)
                self.assertIn("stale-if-error", r.header("cache-status"))
                self.assertEqual(r.body, b"#EXTM3U\n# /v/b/master.m3u8\n")
                self.assertEqual(http_get(e.port, "/v/b/plain.m3u8").status, code)
                self.assertEqual(http_get(e.port, "/v/b/strict.m3u8").status, code)
                for o in self.origins:
                    o.clear_faults()
            # Both gone: the copy stands in for the refused connections too.
            for o in self.origins:
                o.close()
            r = http_get(e.port, "/v/b/master.m3u8")
            self.assertEqual((r.status, r.header("x-cache")), (200, "STALE"))
            self.assertEqual(http_get(e.port, "/v/b/plain.m3u8").status, 502)
            # Past its window (1 s fresh + 2 s), a copy is no longer served.
            time.sleep(max(0.0, 3.3 - 1.3))
            self.assertEqual(http_get(e.port, "/v/b/short.m3u8").status, 502)
            m = e.metrics()
            self.assertGreaterEqual(m['tmt_edge_requests_total{result="stale"}'], 5)


if __name__ == "__main__":
    unittest.main()
