"""A live tomato-edge runs the policy tomato-cachesim simulates: a generated VOD trace replayed
through an edge with tiny budgets answers every request from the tier (X-Cache) that
`tomato-cachesim --keys path --decisions` says, for every policy; and the budgets hold both as
accounted bytes and on disk (RocksDB's size properties after a full compaction)."""
import http.client
import json
import os
import random
import shutil
import tempfile
import unittest

from harness import Edge, http_request, run
from harness.origin import Origin

CRED = "decisions-admin-credential"
HOT, WARM, COLD, MAX_OBJ = 96 * 1024, 128 * 1024, 320 * 1024, 24 * 1024
XCACHE = {"hot": "HIT-hot", "warm": "HIT-warm", "cold": "HIT-cold", "miss": "MISS"}


def trace_path(obj):
    """tmt_trace_path(): the URL path of a trace object id."""
    asset, rung, seg = obj // 1000000, obj // 10000 % 100, obj % 10000
    if rung == 99:
        return "/v/a%d/master.m3u8" % asset
    if seg == 0:
        return "/v/a%d/r%d/init.mp4" % (asset, rung)
    if seg == 9999:
        return "/v/a%d/r%d/index.m3u8" % (asset, rung)
    return "/v/a%d/r%d/%d.m4s" % (asset, rung, seg)


def make_trace(n, seed):
    """Viewers of Zipf-ish assets: master, playlist and init, then segments in order with early
    stops. All times 0 (the edge runs with its policy clock frozen)."""
    rnd = random.Random(seed)
    reqs, sizes = [], {}

    def req(obj, size):
        reqs.append((obj, sizes.setdefault(obj, size)))

    while len(reqs) < n:
        asset = 1 + int(rnd.paretovariate(0.8)) % 12
        rung = rnd.randrange(2)
        req(asset * 1000000 + 99 * 10000 + 9999, 1200 + asset * 7)
        req(asset * 1000000 + rung * 10000 + 9999, 900 + asset * 5 + rung)
        req(asset * 1000000 + rung * 10000, 700 + rung)
        for seg in range(1, 2 + min(int(rnd.expovariate(0.15)), 20)):
            obj = asset * 1000000 + rung * 10000 + seg
            req(obj, 3000 + (obj * 7919) % (MAX_OBJ - 3000))
    return reqs[:n], sizes


class EdgeDecisions(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-edge-dec-")
        self.origin = Origin()
        self.cred = os.path.join(self.dir, "cred")
        with open(self.cred, "w") as f:
            f.write(CRED + "\n")
        self.reqs, sizes = make_trace(900, 11)
        # Incompressible bodies, so that cold (zstd) holds as many bytes on disk as it accounts.
        for obj, size in sizes.items():
            self.origin.put(trace_path(obj), body=random.Random(obj).randbytes(size),
                            headers={"Cache-Control": "max-age=3600"})
        self.trace = os.path.join(self.dir, "trace.csv")
        with open(self.trace, "w") as f:
            f.write("time,obj_id,obj_size\n")
            f.writelines("0,%d,%d\n" % r for r in self.reqs)

    def tearDown(self):
        self.origin.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def admin(self, e, method, path):
        r = http_request(e.admin_port, method, path, extra="Authorization: Bearer %s\r\n" % CRED)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def check_policy(self, policy):
        dec = os.path.join(self.dir, "decisions-%s.txt" % policy)
        out = run("tomato-cachesim", "--trace", self.trace, "--size", str(HOT + WARM + COLD),
                  "--hot-size", str(HOT), "--warm-size", str(WARM), "--max-object-size",
                  str(MAX_OBJ), "--policy", policy, "--keys", "path", "--decisions", dec)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(dec) as f:
            want = [XCACHE[ln.strip()] for ln in f]
        self.assertEqual(len(want), len(self.reqs))
        # Every tier and both outcomes occur, or the comparison would prove little.
        self.assertTrue({"MISS", "HIT-hot", "HIT-warm", "HIT-cold"} <= set(want), policy)
        wd = os.path.join(self.dir, policy)
        with Edge("upstream.shields=" + self.origin.addr, "tokens.public=/v/",
                  "cache.policy=" + policy, "cache.policy_clock=frozen", "cache.hot_size=%d" % HOT,
                  "cache.warm_size=%d" % WARM, "cache.cold_size=%d" % COLD,
                  "cache.max_object_size=%d" % MAX_OBJ,
                  "cache.warm_path=" + os.path.join(wd, "warm"),
                  "cache.cold_path=" + os.path.join(wd, "cold"),
                  "admin.credential_file=" + self.cred, workers=1) as e:
            conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
            for i, (obj, size) in enumerate(self.reqs):
                conn.request("GET", trace_path(obj))
                r = conn.getresponse()
                data = r.read()
                self.assertEqual((r.status, len(data)), (200, size))
                got = r.getheader("X-Cache")
                if got != want[i]:
                    self.fail("%s: request %d (%s): edge %s, cachesim %s; the 5 before: %s" % (
                        policy, i, trace_path(obj), got, want[i], want[max(0, i - 5):i]))
            conn.close()
            # Budgets: accounted, then on disk after a full compaction.
            st = self.admin(e, "GET", "/cache")
            for t in ("hot", "warm", "cold"):
                self.assertLessEqual(st[t]["bytes"], st[t]["budget"], (policy, t, st))
                self.assertGreater(st[t]["objects"], 0, (policy, t, st))
            self.assertEqual([st[t]["budget"] for t in ("hot", "warm", "cold")],
                             [HOT, WARM, COLD])
            st = self.admin(e, "POST", "/cache/compact")
            for t in ("warm", "cold"):
                # Each record also holds its key and header fields (under 300 bytes here), and
                # the files their own index and footer: allowed as 300 bytes per object + 8 KiB.
                slack = 300 * st[t]["objects"] + 8192
                self.assertLessEqual(st[t]["disk_bytes"], st[t]["budget"] + slack,
                                     (policy, t, st))
                self.assertGreaterEqual(st[t]["disk_bytes"], st[t]["bytes"], (policy, t, st))
        return want

    def test_segpool(self):
        self.check_policy("segpool")

    def test_lru(self):
        self.check_policy("lru")

    def test_s3fifo(self):
        self.check_policy("s3fifo")

    def test_sieve(self):
        self.check_policy("sieve")


if __name__ == "__main__":
    unittest.main()
