"""Soak: two edges in front of one shield under tomato-load's simulated viewers (realtime pace,
sessions over three assets, ABR, abandonment) for TMT_SOAK_SECONDS (600 by default). One edge keeps
everything in RAM; the other has tiers small enough that objects keep moving between RAM, warm and
cold storage and out. Every 10 s the test samples each daemon's resident memory (VmRSS) and open
file descriptors (/proc/PID/fd) and prints them. It requires no request error on either edge, an
RSS at the end within 2 % of the RSS after the warm-up (the first 20 % of the run), no more file
descriptors open in the last 40 % of the run than in the 40 % before (at most a few more:
they follow the connections open at the moment), and a graceful stop. Labelled "soak"."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Edge, Shield, prog
from harness.media import make_asset
from harness.system import ffmpeg_play

SECONDS = int(os.environ.get("TMT_SOAK_SECONDS", "600"))
VIEWERS = 60  # per edge
ASSETS = ["a1", "a2", "a3"]
RUNGS = [("r0", 320, 180, 300000), ("r1", 480, 270, 500000)]
RSS_GROWTH = 0.02
FD_ALLOWANCE = 8


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Soak(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-soak-")
        self.root = os.path.join(self.dir, "mezz")
        for a in ASSETS:
            make_asset(self.root, a, seconds=30, seg=2, rungs=RUNGS)
        self.daemons = []
        self.loads = []

    def tearDown(self):
        for p in self.loads:
            if p.poll() is None:
                p.kill()
                p.communicate()
        for d in reversed(self.daemons):
            d.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def keep(self, d):
        self.daemons.append(d)
        return d

    def test_soak(self):
        shield = self.keep(Shield(self.root, os.path.join(self.dir, "shield"),
                                  "server.open=true"))
        common = ("upstream.shields=127.0.0.1:%d" % shield.port, "tokens.public=/v/")
        edges = {
            "edge-ram": self.keep(Edge(*common,
                                       "cache.warm_path=" + os.path.join(self.dir, "e1w"),
                                       "cache.cold_path=" + os.path.join(self.dir, "e1c"))),
            "edge-tiers": self.keep(Edge(*common, "cache.hot_size=2MiB", "cache.warm_size=3MiB",
                                         "cache.cold_size=4MiB",
                                         "cache.warm_path=" + os.path.join(self.dir, "e2w"),
                                         "cache.cold_path=" + os.path.join(self.dir, "e2c"))),
        }
        # Every object once through each edge (and the shield's packaging warm).
        for e in edges.values():
            for a in ASSETS:
                ok, err, _ = ffmpeg_play(e.url("/v/%s/master.m3u8" % a))
                self.assertTrue(ok, err)

        for i, (name, e) in enumerate(sorted(edges.items())):
            self.loads.append(subprocess.Popen(
                [prog("tomato-load"), "viewers", "--url", e.url(""), "--assets", ",".join(ASSETS),
                 "--viewers", str(VIEWERS), "--ramp", "10s", "--duration", "%ds" % SECONDS,
                 "--pace", "realtime", "--json", "true", "--progress", "false",
                 "--set", "load.seed=%d" % (i + 1), "--set", "load.requests=0"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs = dict(edges, shield=shield)
        names = sorted(edges) + ["shield"]
        print("\n%6s  %s" % ("t (s)", "  ".join("%22s" % ("%s RSS KiB/fds" % n) for n in names)))
        samples = []  # (t, {name: (rss, fds)})
        t0 = time.monotonic()
        while any(p.poll() is None for p in self.loads):
            t = time.monotonic() - t0
            row = {n: (rss_kib(procs[n].proc.pid), fds(procs[n].proc.pid)) for n in names}
            samples.append((t, row))
            print("%6.0f  %s" % (t, "  ".join("%15d / %4d" % row[n] for n in names)), flush=True)
            for n, d in procs.items():
                self.assertIsNone(d.proc.poll(), "%s exited during the soak" % n)
            next_at = t0 + 10 * len(samples)
            while time.monotonic() < next_at and any(p.poll() is None for p in self.loads):
                time.sleep(0.5)
        reports = {}
        for (name, _), p in zip(sorted(edges.items()), self.loads):
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            reports[name] = json.loads(out)

        for name, rep in reports.items():
            v = rep["viewers"]
            print("%s: %d requests (%.1f/s), %d errors, %d sessions, %d segments, hit ratio "
                  "%.3f, %d stalls, ttfb p99 %.1f ms" % (
                      name, rep["requests"], rep["requests_per_s"], rep["errors"],
                      v["sessions"], v["segments"], rep["hit_ratio"], v["stalls"],
                      rep["ttfb_ms"]["p99"] or 0))
            self.assertEqual(rep["errors"], 0, json.dumps(rep))
            self.assertEqual(rep["status"]["2xx"], rep["requests"], json.dumps(rep))
            self.assertGreater(v["segments"], VIEWERS * SECONDS / 8, json.dumps(rep))
        # After the warm-up: no growth of memory or descriptors.
        warm = [s for s in samples if s[0] >= 0.2 * SECONDS]
        self.assertGreaterEqual(len(warm), 4, samples)
        base, last = warm[0], warm[-1]
        # Descriptors follow the connections open at the moment (tens, up and down): the most
        # open in the second half after the warm-up against the most in the first half.
        mid = 0.6 * SECONDS
        for name in edges:
            rss0, rss1 = base[1][name][0], last[1][name][0]
            peak = max(s[1][name][0] for s in warm)
            growth = (rss1 - rss0) / rss0
            fd_early = max(s[1][name][1] for s in warm if s[0] < mid)
            fd_late = max(s[1][name][1] for s in warm if s[0] >= mid)
            print("%s: RSS %d KiB at %.0f s, %d KiB at %.0f s (%+.2f %%), peak %d KiB; "
                  "most fds %d before %.0f s, %d after" % (
                      name, rss0, base[0], rss1, last[0], 100 * growth, peak, fd_early, mid,
                      fd_late))
            self.assertLess(growth, RSS_GROWTH, "%s: RSS grew %.2f %%" % (name, 100 * growth))
            self.assertLessEqual(fd_late, fd_early + FD_ALLOWANCE,
                                 "%s: descriptors grew" % name)
        for n in names:
            self.assertEqual(procs[n].stop(timeout=30), 0, n)


if __name__ == "__main__":
    unittest.main()
