"""Fault: the disk of an edge's warm tier fills up, and space comes back.

Unmanaged system (the control plane plays no part in an edge's disk): one shield
(server.open) on real media and one edge whose warm tier lives on a 32 MiB tmpfs, with a
256 KiB hot tier so that objects move to disk as they leave RAM. Needs root for the mount:
without it the test exits 77 (skipped).

A filler file takes every free byte of the tmpfs. The edge keeps answering every request with
the right bytes (from RAM, and from the shield for what it could not keep), counts the refused
writes in tmt_edge_cache_write_errors_total, logs them (at most once a second), and stores
nothing on the warm tier. The filler is deleted: new objects are stored on the warm tier again
(X-Cache HIT-warm once they have left RAM) and the write error counter stops increasing."""
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Edge, Shield, http_get
from harness.media import make_asset

RUNGS = [("r0", 320, 180, 300000), ("r1", 256, 144, 200000)]
SEGS = 6


def asset_paths(asset):
    paths = ["/v/%s/master.m3u8" % asset]
    for rid, *_ in RUNGS:
        paths += ["/v/%s/%s/index.m3u8" % (asset, rid), "/v/%s/%s/init.mp4" % (asset, rid)]
        paths += ["/v/%s/%s/%d.m4s" % (asset, rid, n) for n in range(1, SEGS + 1)]
    return paths


def wait_for(pred, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def fill(path):
    """Writes path until the file system has no byte left; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 64 << 10, 4 << 10, 512):
            block = b"\0" * chunk
            while True:
                try:
                    f.write(block)
                    n += chunk
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return n


def can_mount():
    d = tempfile.mkdtemp(prefix="tmt-x5-probe-")
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d],
                          capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", "-l", d], capture_output=True)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


class DiskFullRecovery(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x5-")
        self.mnt = os.path.join(self.dir, "small")
        os.mkdir(self.mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", self.mnt],
                          capture_output=True).returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.skipTest("cannot mount a small tmpfs here (needs root)")
        self.root = os.path.join(self.dir, "mezz")
        for a in ("a1", "a2"):
            make_asset(self.root, a, seconds=2 * SEGS, seg=2, rungs=RUNGS)
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def test_full_warm_disk_then_space_returns(self):
        shield = self.start(Shield(self.root, os.path.join(self.dir, "shield"),
                                   "server.open=true"))
        # warm: 4 MiB budget, so 2 x 1 MiB write buffer + 2 x 512k + 16 MiB are kept free.
        e = self.start(Edge("upstream.shields=127.0.0.1:%d" % shield.port, "tokens.public=/v/",
                            "cache.policy=lru", "cache.hot_size=256k", "cache.warm_size=4m",
                            "cache.cold_size=0", "cache.max_object_size=512k",
                            "cache.warm_path=" + os.path.join(self.mnt, "warm"),
                            "cache.cold_path=" + os.path.join(self.dir, "cold")))
        want = {p: http_get(shield.port, p).body for p in asset_paths("a1") + asset_paths("a2")}
        filler = os.path.join(self.mnt, "filler")
        filled = fill(filler)
        st = os.statvfs(self.mnt)
        self.assertLess(st.f_bavail * st.f_frsize, 64 << 10)

        def errors():
            return e.metrics()["tmt_edge_cache_write_errors_total"]

        # Full: every answer is right, from RAM or the shield; nothing reaches the disk.
        a1 = asset_paths("a1")
        for _ in range(2):
            for p in a1:
                r = http_get(e.port, p)
                self.assertEqual((r.status, r.body == want[p]), (200, True), p)
                self.assertIn(r.header("x-cache"), ("MISS", "HIT-hot"), p)
        e.wait_line("disk nearly full")
        self.assertTrue(wait_for(lambda: errors() >= 10), errors())
        self.assertEqual(e.metrics()['tmt_edge_cache_objects{tier="warm"}'], 0)
        self.assertTrue(any(re.search(r"level=error mod=store .*tier=warm", ln) for ln in e.lines))
        self.assertEqual(http_get(e.admin_port, "/healthz").status, 200)

        # Space returns: objects leaving RAM are stored on the warm tier again.
        os.unlink(filler)
        time.sleep(1.2)  # the store's figures are published once a second
        before = errors()
        a2 = asset_paths("a2")
        for p in a2:
            r = http_get(e.port, p)
            self.assertEqual((r.status, r.header("x-cache"), r.body == want[p]),
                             (200, "MISS", True), p)
        tiers = {}
        for p in a2:
            r = http_get(e.port, p)
            self.assertEqual((r.status, r.body == want[p]), (200, True), p)
            tiers[p] = r.header("x-cache")
        warm = [p for p, t in tiers.items() if t == "HIT-warm"]
        self.assertGreaterEqual(len(warm), len(a2) // 2, tiers)
        self.assertTrue(wait_for(lambda: e.metrics()['tmt_edge_cache_objects{tier="warm"}'] > 0))
        time.sleep(1.2)
        self.assertEqual(errors(), before)
        print("x00005: %d MiB filler; %d write errors counted while full, none after; after "
              "the filler went, %d of %d a2 objects HIT-warm" %
              (filled >> 20, before, len(warm), len(a2)), file=sys.stderr)


if __name__ == "__main__":
    if not can_mount():
        print("skipped: mounting a tmpfs needs root", file=sys.stderr)
        sys.exit(77)
    unittest.main()
