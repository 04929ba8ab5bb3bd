"""tomato-edge as a caching proxy in front of a real test origin on loopback: misses fill and
are stored, hits come from hot, warm and cold with tiny budgets, 100 concurrent misses make one
upstream request, warm and cold survive kill -9, a damaged record is a miss and is refetched,
freshness and revalidation follow Cache-Control, and upstream faults give 502/504 with nothing
stored."""
import concurrent.futures
import glob
import os
import random
import shutil
import signal
import tempfile
import time
import unittest

from harness import Edge, http_get, http_request
from harness.origin import Origin

KB = 1024


def body(n, seed):
    return bytes((i * 31 + seed) % 251 for i in range(n))


class EdgeCache(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-edge-cache-")
        self.origin = Origin()

    def tearDown(self):
        self.origin.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def edge(self, *sets, upstreams=None, hot="40k", warm="40k", cold="80k", max_obj="16k",
             policy="lru", workers=2):
        ups = upstreams if upstreams is not None else [self.origin.addr]
        # /v/ paths without tokens: tokens.public opens the default tokens.protect (c00004 tests
        # the tokens).
        return Edge("upstream.shields=" + ",".join(ups), "tokens.public=/v/",
                    "cache.hot_size=" + hot, "cache.warm_size=" + warm, "cache.cold_size=" + cold,
                    "cache.max_object_size=" + max_obj, "cache.policy=" + policy,
                    "cache.warm_path=" + os.path.join(self.dir, "warm"),
                    "cache.cold_path=" + os.path.join(self.dir, "cold"),
                    "upstream.response_timeout=2s", "upstream.read_timeout=1s", *sets,
                    workers=workers)

    def put(self, path, data, cc="max-age=600", **kw):
        headers = {"Cache-Control": cc} if cc is not None else {}
        headers.update(kw.pop("headers", {}))
        self.origin.put(path, body=data, headers=headers, **kw)

    def test_miss_then_hot_hit(self):
        data = body(5000, 1)
        self.put("/v/a1/720p/1.m4s", data)
        with self.edge() as e:
            r = http_get(e.port, "/v/a1/720p/1.m4s")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("x-cache"), "MISS")
            self.assertIn("tomato-edge; fwd=miss; stored", r.header("cache-status"))
            r = http_get(e.port, "/v/a1/720p/1.m4s")
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            self.assertEqual(r.body, data)
            self.assertIsNotNone(r.header("age"))
            self.assertEqual(r.header("cache-control"), "max-age=600")
            # Normalized paths and ignored queries under /v/ share the key.
            r = http_get(e.port, "/v/a1/./720p//%31.m4s?x=1")
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            r = http_get(e.port, "/v/a1/x/y/../../720p/1.m4s")
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            self.assertEqual(http_get(e.port, "/v/../../etc").status, 400)
            self.assertEqual(http_get(e.port, "/v/a1/%zz").status, 400)
            # HEAD and ranges come from the stored object.
            r = http_get(e.port, "/v/a1/720p/1.m4s", extra="Range: bytes=10-19\r\n")
            self.assertEqual(r.status, 206)
            self.assertEqual(r.body, data[10:20])
            self.assertEqual(self.origin.count("/v/a1/720p/1.m4s"), 1)
            m = e.metrics()
            self.assertGreaterEqual(m.get('tmt_edge_requests_total{result="hit_hot"}', 0), 3)
            self.assertEqual(m.get('tmt_edge_upstream_requests_total', 0), 1)

    def test_tiers_and_restart_after_kill(self):
        objs = {"/v/a2/720p/%d.m4s" % i: body(9 * KB, i) for i in range(1, 15)}
        for p, d in objs.items():
            self.put(p, d)
        with self.edge() as e:
            for p in objs:
                self.assertEqual(http_get(e.port, p).header("x-cache"), "MISS")
            seen = {}
            # 40k hot + 40k warm + 80k cold minus a 32k reserve: 14 objects of 9k do not all
            # fit; the newest are hot, older warm, older cold, the oldest gone.
            for p in reversed(list(objs)):
                r = http_get(e.port, p)
                self.assertEqual(r.body, objs[p])
                seen[p] = r.header("x-cache")
            self.assertIn("HIT-hot", seen.values())
            self.assertIn("HIT-warm", seen.values())
            self.assertIn("HIT-cold", seen.values())
            before = sum(self.origin.count(p) for p in objs)
            e.proc.send_signal(signal.SIGKILL)
            e.proc.wait()
        self.origin.reset_counts()
        with self.edge() as e:
            tiers = {}
            for p in objs:
                r = http_get(e.port, p)
                self.assertEqual(r.body, objs[p])
                tiers[p] = r.header("x-cache")
            disk_hits = [p for p, x in tiers.items() if x in ("HIT-warm", "HIT-cold")]
            self.assertGreaterEqual(len(disk_hits), 4, tiers)
            for p in disk_hits:
                self.assertEqual(self.origin.count(p), 0, p)
        self.assertGreater(before, 0)

    def test_coalescing_100_concurrent(self):
        data = body(12 * KB, 7)
        path = "/v/a3/1080p/1.m4s"
        self.put(path, data)
        self.origin.hold(path)
        with self.edge() as e:
            with concurrent.futures.ThreadPoolExecutor(100) as pool:
                futs = [pool.submit(http_get, e.port, path, "", 15.0) for _ in range(100)]
                self.origin.wait_waiting(path, 1)
                time.sleep(0.5)
                self.assertEqual(self.origin.count(path), 1)
                self.origin.release(path)
                rs = [f.result() for f in futs]
            for r in rs:
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, data)
            self.assertEqual(self.origin.count(path), 1)
            m = e.metrics()
            self.assertGreaterEqual(m.get("tmt_edge_coalesced_waits_total", 0), 90)

    def test_corrupt_record_is_miss_and_refetched(self):
        data = body(9 * KB, 3)
        self.put("/v/a4/720p/1.m4s", data)
        with self.edge(hot="1k", warm="100k", cold="0") as e:
            self.assertEqual(http_get(e.port, "/v/a4/720p/1.m4s").header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, "/v/a4/720p/1.m4s").header("x-cache"), "HIT-warm")
            self.assertEqual(e.stop(), 0)  # a graceful stop flushes the memtables to files
        # Flip bytes of the stored body in the blob files (values of 4k and more live there).
        blobs = glob.glob(os.path.join(self.dir, "warm", "*.blob"))
        self.assertTrue(blobs)
        flipped = 0
        for b in blobs:
            with open(b, "r+b") as f:
                raw = bytearray(f.read())
                i = raw.find(data[1000:1100])
                if i >= 0:
                    raw[i] ^= 0xff
                    f.seek(0)
                    f.write(raw)
                    flipped += 1
        self.assertEqual(flipped, 1)
        with self.edge(hot="1k", warm="100k", cold="0") as e:
            r = http_get(e.port, "/v/a4/720p/1.m4s")
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("x-cache"), "MISS")
            self.assertEqual(self.origin.count("/v/a4/720p/1.m4s"), 2)
            time.sleep(1.2)
            self.assertGreaterEqual(e.metrics().get("tmt_edge_cache_checksum_failures_total", 0), 1)
            self.assertEqual(http_get(e.port, "/v/a4/720p/1.m4s").header("x-cache"), "HIT-warm")

    def test_large_warm_objects(self):
        # Large warm records live in RocksDB's blob files: hits after a restart read them from
        # there (checked), also as ranges and HEAD; a stale one is revalidated; a damaged one is
        # never sent.
        # Random bytes: a slice of one body is found in no other.
        objs = {"/v/big/720p/%d.m4s" % i: random.Random(i).randbytes(200 * KB + i)
                for i in range(1, 4)}
        stale = "/v/big/720p/9.m4s"
        objs[stale] = random.Random(9).randbytes(150 * KB)
        for p, d in objs.items():
            self.put(p, d, cc="max-age=2" if p == stale else "max-age=600")
        sets = dict(hot="1k", warm="4m", cold="0", max_obj="1m")
        with self.edge(**sets) as e:
            for p in objs:
                self.assertEqual(http_get(e.port, p).header("x-cache"), "MISS")
                # The client may have the whole body before the fill is stored: a request then
                # joins the fill. Then from the memtable, through RocksDB.
                deadline = time.time() + 5
                while True:
                    r = http_get(e.port, p)
                    self.assertEqual(r.body, objs[p])
                    if r.header("x-cache") == "HIT-warm" or time.time() > deadline:
                        break
                    time.sleep(0.05)
                self.assertEqual(r.header("x-cache"), "HIT-warm")
            self.assertEqual(e.stop(), 0)  # flushed: the records are in a blob file now
        self.origin.reset_counts()
        for run in (1, 2):
            with self.edge(**sets) as e:
                for p in sorted(objs):
                    if p == stale:
                        continue
                    r = http_get(e.port, p)
                    self.assertEqual((r.status, r.header("x-cache")), (200, "HIT-warm"), p)
                    self.assertEqual(r.body, objs[p], p)
                    self.assertEqual(int(r.header("content-length")), len(objs[p]))
                p = "/v/big/720p/2.m4s"
                r = http_get(e.port, p, extra="Range: bytes=100000-100099\r\n")
                self.assertEqual((r.status, r.body), (206, objs[p][100000:100100]))
                r = http_request(e.port, "HEAD", p)
                self.assertEqual((r.status, r.body), (200, b""))
                self.assertEqual(int(r.header("content-length")), len(objs[p]))
                time.sleep(1.2)
                m = e.metrics()
                self.assertGreaterEqual(m.get('tmt_edge_requests_total{result="hit_warm"}', 0), 5,
                                        m)
        self.assertEqual(sum(self.origin.count(p) for p in objs), 0)
        # A stale large record is revalidated: its body comes into memory, a 304 refreshes it.
        time.sleep(2.2)
        with self.edge(**sets) as e:
            r = http_get(e.port, stale)
            self.assertEqual((r.header("x-cache"), r.body), ("REVALIDATED", objs[stale]))
            self.assertIn("if-none-match", self.origin.requests_for(stale)[-1].headers)
            r = http_get(e.port, stale)
            self.assertEqual((r.header("x-cache"), r.body), ("HIT-warm", objs[stale]))
            self.assertEqual(e.stop(), 0)
        # A damaged byte in a large record: never sent; a miss, refetched, counted.
        p = "/v/big/720p/3.m4s"
        flipped = 0
        for b in glob.glob(os.path.join(self.dir, "warm", "*.blob")):
            with open(b, "r+b") as f:
                raw = bytearray(f.read())
                i = raw.find(objs[p][150000:150100])
                if i >= 0:
                    raw[i + 50] ^= 0x01
                    f.seek(0)
                    f.write(raw)
                    flipped += 1
        self.assertEqual(flipped, 1)
        with self.edge(**sets) as e:
            r = http_get(e.port, p)
            self.assertEqual((r.header("x-cache"), r.body), ("MISS", objs[p]))
            self.assertEqual(self.origin.count(p), 1)
            time.sleep(1.2)
            self.assertGreaterEqual(e.metrics().get("tmt_edge_cache_checksum_failures_total", 0),
                                    1)
            r = http_get(e.port, p)
            self.assertEqual((r.header("x-cache"), r.body), ("HIT-warm", objs[p]))

    def test_freshness_and_revalidation(self):
        self.put("/other/p.m3u8", b"#EXTM3U\n", cc="max-age=1")
        self.put("/other/nostore", b"x", cc="no-store")
        self.put("/other/private", b"x", cc="private, max-age=60")
        self.put("/other/cdn", b"c", cc="no-store", headers={"CDN-Cache-Control": "max-age=60"})
        with self.edge() as e:
            self.assertEqual(http_get(e.port, "/other/p.m3u8").header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, "/other/p.m3u8").header("x-cache"), "HIT-hot")
            time.sleep(1.3)
            r = http_get(e.port, "/other/p.m3u8")
            self.assertEqual(r.header("x-cache"), "REVALIDATED")
            self.assertEqual(r.body, b"#EXTM3U\n")
            last = self.origin.requests_for("/other/p.m3u8")[-1]
            self.assertIn("if-none-match", last.headers)
            for p in ("/other/nostore", "/other/private"):
                http_get(e.port, p)
                self.assertEqual(http_get(e.port, p).header("x-cache"), "MISS", p)
            http_get(e.port, "/other/cdn")
            self.assertEqual(http_get(e.port, "/other/cdn").header("x-cache"), "HIT-hot")
            # Outside /v/ the query is part of the key.
            self.put("/other/q?a=1", b"1")
            self.put("/other/q?a=2", b"2")
            self.assertEqual(http_get(e.port, "/other/q?a=1").body, b"1")
            self.assertEqual(http_get(e.port, "/other/q?a=2").body, b"2")

    def test_upstream_faults(self):
        data = body(10 * KB, 5)
        for p in ("/v/f/1/1.m4s", "/v/f/1/2.m4s", "/v/f/1/3.m4s", "/v/f/1/4.m4s", "/v/f/1/5.m4s"):
            self.put(p, data)
        self.origin.fault("/v/f/1/1.m4s", "reset_mid_body")
        self.origin.fault("/v/f/1/2.m4s", "short_body")
        self.origin.fault("/v/f/1/3.m4s", "garbage")
        self.origin.fault("/v/f/1/4.m4s", "delay", 3.0)
        self.origin.fault("/v/f/1/5.m4s", "status", 503)
        with self.edge() as e:
            for p, want in (("/v/f/1/3.m4s", 502), ("/v/f/1/4.m4s", 504), ("/v/f/1/5.m4s", 503)):
                r = http_get(e.port, p, timeout=10)
                self.assertEqual(r.status, want, p)
            for p in ("/v/f/1/1.m4s", "/v/f/1/2.m4s"):
                try:
                    r = http_get(e.port, p, timeout=5)
                    self.assertNotEqual(r.body, data)
                except Exception:
                    pass  # the response was cut: the connection closed
            self.origin.clear_faults()
            for p in ("/v/f/1/1.m4s", "/v/f/1/2.m4s", "/v/f/1/3.m4s"):
                r = http_get(e.port, p)
                self.assertEqual(r.header("x-cache"), "MISS", p)
                self.assertEqual(r.body, data)
            self.assertEqual(http_get(e.port, "/v/f/1/1.m4s").header("x-cache"), "HIT-hot")

    def test_failover_to_next_upstream(self):
        data = body(3000, 9)
        with Origin() as second:
            paths = ["/v/fo/1/%d.m4s" % i for i in range(1, 41)]
            for p in paths:
                self.put(p, data)
                second.put(p, data, headers={"Cache-Control": "max-age=60"})
            dead = "127.0.0.1:1"
            # The dead upstream is held off after its first refusal (upstream.holdoff): later
            # fills try the live one first, whatever their rendezvous order. With holdoff 0,
            # every key whose order puts the dead one first meets its refusal.
            errors = {}
            for holdoff in ("5s", "0"):
                d = os.path.join(self.dir, "holdoff-" + holdoff)
                with self.edge("upstream.holdoff=" + holdoff, "cache.warm_path=" + d + "/w",
                               "cache.cold_path=" + d + "/c", upstreams=[dead, self.origin.addr],
                               workers=1) as e:
                    for p in paths:
                        r = http_get(e.port, p)
                        self.assertEqual(r.status, 200, p)
                    errors[holdoff] = e.metrics().get("tmt_edge_upstream_errors_total", 0)
            self.assertEqual(errors["5s"], 1, errors)
            self.assertGreater(errors["0"], 1, errors)  # 40 keys: about 20 put it first
            # Rendezvous: keys spread over both live upstreams.
            with self.edge(upstreams=[self.origin.addr, second.addr], hot="1k", warm="0",
                           cold="100k") as e:
                for p in ["/v/fo/2/%d.m4s" % i for i in range(1, 21)]:
                    self.put(p, data)
                    second.put(p, data, headers={"Cache-Control": "max-age=60"})
                    self.assertEqual(http_get(e.port, p).status, 200)
                a = sum(self.origin.count("/v/fo/2/%d.m4s" % i) for i in range(1, 21))
                b = sum(second.count("/v/fo/2/%d.m4s" % i) for i in range(1, 21))
                self.assertEqual(a + b, 20)
                self.assertGreater(a, 2)
                self.assertGreater(b, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
