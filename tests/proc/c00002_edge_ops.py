"""tomato-edge operations and request forms: admin calls need the bearer credential of
admin.credential_file; purge by key and by asset removes stored objects (and a fill in flight
for them is not stored); /t/{token}/ paths share the key and upstream path of /v/ and keep the
token out of the access log."""
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Edge, RawConn, http_get, http_request, run
from harness.origin import Origin

CRED = "s3cret-admin-credential-0123"


def body(n, seed):
    return bytes((i * 7 + seed) % 253 for i in range(n))


class EdgeOps(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-edge-ops-")
        self.origin = Origin()
        self.cred_file = os.path.join(self.dir, "admin.cred")
        with open(self.cred_file, "w") as f:
            f.write(CRED + "\n")

    def tearDown(self):
        self.origin.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def edge(self, *sets, cred=True, workers=2):
        extra = ["admin.credential_file=" + self.cred_file] if cred else []
        # /v/ paths without tokens: tokens.public opens the default tokens.protect, and
        # /t/{token}/v/ paths are only stripped (c00004 tests the tokens).
        return Edge("upstream.shields=" + self.origin.addr, "tokens.public=/v/",
                    "cache.hot_size=64k", "cache.warm_size=64k", "cache.cold_size=128k",
                    "cache.max_object_size=16k", "cache.policy=lru",
                    "cache.warm_path=" + os.path.join(self.dir, "warm"),
                    "cache.cold_path=" + os.path.join(self.dir, "cold"), *extra, *sets,
                    workers=workers)

    def put(self, path, data, cc="max-age=600", **kw):
        headers = {"Cache-Control": cc}
        headers.update(kw.pop("headers", {}))
        self.origin.put(path, body=data, headers=headers, **kw)

    def purge(self, e, query, cred=CRED):
        auth = "Authorization: Bearer %s\r\n" % cred if cred is not None else ""
        return http_request(e.admin_port, "POST", "/purge?" + query, extra=auth)

    def test_admin_credential(self):
        with self.edge() as e:
            # /metrics and /healthz stay open.
            self.assertEqual(http_get(e.admin_port, "/healthz").status, 200)
            self.assertEqual(http_get(e.admin_port, "/metrics").status, 200)
            r = self.purge(e, "key=/v/a/1.m4s", cred=None)
            self.assertEqual(r.status, 401)
            self.assertIn("Bearer", r.header("www-authenticate"))
            e.wait_line('msg="admin call refused"')
            self.assertEqual(self.purge(e, "key=/v/a/1.m4s", cred=CRED[:-1]).status, 401)
            self.assertEqual(self.purge(e, "key=/v/a/1.m4s", cred=CRED + "x").status, 401)
            r = http_request(e.admin_port, "POST", "/purge?key=/v/a/1.m4s",
                             extra="Authorization: Basic %s\r\n" % CRED)
            self.assertEqual(r.status, 401)
            self.assertEqual(self.purge(e, "key=/v/a/1.m4s").status, 200)
            r = http_request(e.admin_port, "POST", "/nope",
                             extra="Authorization: Bearer %s\r\n" % CRED)
            self.assertEqual(r.status, 404)
        # No credential configured: admin calls are refused, /metrics is not.
        with self.edge(cred=False) as e:
            self.assertEqual(self.purge(e, "key=/v/a/1.m4s").status, 403)
            self.assertEqual(http_get(e.admin_port, "/metrics").status, 200)

    def test_bad_credential_file_is_a_start_error(self):
        bad = os.path.join(self.dir, "short.cred")
        with open(bad, "w") as f:
            f.write("short\n")
        for path in (bad, os.path.join(self.dir, "missing.cred")):
            with self.assertRaises(Exception):
                with Edge("upstream.shields=" + self.origin.addr,
                          "cache.warm_path=" + os.path.join(self.dir, "w2"),
                          "cache.cold_path=" + os.path.join(self.dir, "c2"),
                          "admin.credential_file=" + path):
                    pass

    def test_purge_by_key_and_asset(self):
        keys = ["/v/a1/720p/1.m4s", "/v/a1/720p/2.m4s", "/v/a1/master.m3u8", "/v/a2/720p/1.m4s",
                "/other/x.txt?q=1"]
        for i, k in enumerate(keys):
            self.put(k, body(3000 + i, i))
        with self.edge() as e:
            for k in keys:
                self.assertEqual(http_get(e.port, k).header("x-cache"), "MISS")
            # Push some to warm and cold so that purge reaches every tier.
            for i in range(40):
                self.put("/filler/%d" % i, body(4000, i))
                http_get(e.port, "/filler/%d" % i)
            tiers = {k: http_get(e.port, k).header("x-cache") for k in keys}
            self.assertTrue(all(t.startswith("HIT") for t in tiers.values()), tiers)
            # One key (given as a viewer would: un-normalized, percent-encoded in the query).
            r = self.purge(e, "key=%2Fv%2Fa1%2F.%2F720p%2F%2F1.m4s")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.body, b'{"purged":1}\n')
            self.assertEqual(http_get(e.port, keys[0]).header("x-cache"), "MISS")
            self.assertEqual(self.origin.count(keys[0]), 2)
            self.assertEqual(self.purge(e, "key=/v/nothing/here").body, b'{"purged":0}\n')
            # A query counts outside /v/.
            self.assertEqual(self.purge(e, "key=/other/x.txt%3Fq%3D2").body, b'{"purged":0}\n')
            self.assertEqual(self.purge(e, "key=/other/x.txt%3Fq%3D1").body, b'{"purged":1}\n')
            # A whole asset: its three keys (key 0 again stored by the refetch), not a2's.
            r = self.purge(e, "asset=a1")
            self.assertEqual(r.body, b'{"purged":3}\n')
            for k in keys[:3]:
                self.assertEqual(http_get(e.port, k).header("x-cache"), "MISS", k)
            self.assertTrue(http_get(e.port, keys[3]).header("x-cache").startswith("HIT"))
            e.wait_line('msg="purge" asset=a1 purged=3')
            # Bad calls.
            self.assertEqual(self.purge(e, "asset=a/b").status, 400)
            self.assertEqual(self.purge(e, "asset=" + "x" * 65).status, 400)
            self.assertEqual(self.purge(e, "key=/a&asset=b").status, 400)
            self.assertEqual(self.purge(e, "").status, 400)
            self.assertEqual(self.purge(e, "key=%zz").status, 400)
            self.assertEqual(self.purge(e, "key=/../x").status, 400)
            r = http_request(e.admin_port, "GET", "/purge?key=/x",
                             extra="Authorization: Bearer %s\r\n" % CRED)
            self.assertEqual(r.status, 405)
            self.assertEqual(self.origin.count(keys[3]), 1)

    def test_purge_during_fill_is_not_stored(self):
        self.put("/v/a3/720p/1.m4s", body(6000, 3))
        self.origin.hold("/v/a3/720p/1.m4s")
        with self.edge() as e:
            res = {}
            t = threading.Thread(target=lambda: res.update(r=http_get(e.port, "/v/a3/720p/1.m4s")))
            t.start()
            self.origin.wait_waiting("/v/a3/720p/1.m4s", 1)
            self.assertEqual(self.purge(e, "asset=a3").body, b'{"purged":0}\n')
            self.origin.release("/v/a3/720p/1.m4s")
            t.join(10)
            self.assertEqual(res["r"].status, 200)
            self.assertEqual(res["r"].body, body(6000, 3))
            # The fill's bytes predate the purge: the next request misses again.
            self.assertEqual(http_get(e.port, "/v/a3/720p/1.m4s").header("x-cache"), "MISS")
            self.assertEqual(self.origin.count("/v/a3/720p/1.m4s"), 2)

    def test_vary(self):
        path = "/api/vary"
        data = body(2000, 5)
        self.put(path, data, headers={"Vary": "Accept-Encoding, X-Variant"})
        gz = "Accept-Encoding: gzip\r\n"
        br = "Accept-Encoding: br\r\n"
        with self.edge() as e:
            r = http_get(e.port, path, extra=gz)
            self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"))
            self.assertEqual(r.header("vary"), "Accept-Encoding, X-Variant")
            r = http_get(e.port, path, extra="Accept-Encoding:  GZIP \r\n")
            self.assertEqual(r.header("x-cache"), "HIT-hot")  # Accept-Encoding: any case
            self.assertEqual(r.body, data)
            # The request values it was stored with are never sent.
            self.assertFalse(any(k.startswith(":") for k, _ in r.headers), r.headers)
            self.assertEqual(http_get(e.port, path, extra=br).header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, path, extra=br).header("x-cache"), "HIT-hot")
            self.assertEqual(http_get(e.port, path, extra=br + "X-Variant: 1\r\n")
                             .header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, path).header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, path).header("x-cache"), "HIT-hot")
            self.assertEqual(self.origin.count(path), 4)
            # Vary: * is never stored.
            self.put("/api/star", data, headers={"Vary": "*"})
            self.assertEqual(http_get(e.port, "/api/star").header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, "/api/star").header("x-cache"), "MISS")
            # Requests waiting on one fill that turns out to vary: each variant gets its own
            # response; only the first is stored.
            self.put("/api/v2", data, headers={"Vary": "Accept-Encoding"})
            self.origin.hold("/api/v2")
            res = {}
            ts = [threading.Thread(target=lambda n=n, x=x: res.update(
                {n: http_get(e.port, "/api/v2", extra=x)})) for n, x in (("a", gz), ("b", br))]
            ts[0].start()
            self.origin.wait_waiting("/api/v2", 1)
            ts[1].start()
            time.sleep(0.3)
            self.origin.release("/api/v2")
            for t in ts:
                t.join(10)
            self.assertEqual(res["a"].body, data)
            self.assertEqual(res["b"].body, data)
            self.assertEqual(self.origin.count("/api/v2"), 2)
            seen = sorted(r.headers.get("accept-encoding") for r in self.origin.requests_for("/api/v2"))
            self.assertEqual(seen, ["br", "gzip"])
            self.assertEqual(http_get(e.port, "/api/v2", extra=gz).header("x-cache"), "HIT-hot")

    def test_stale_while_revalidate(self):
        path = "/v/a5/master.m3u8"
        old, new = body(1500, 1), body(1500, 2)
        self.put(path, old, cc="max-age=1, stale-while-revalidate=30")
        self.put("/v/a5/strict.m3u8", old, cc="max-age=1, stale-while-revalidate=30, "
                 "must-revalidate")
        with self.edge() as e:
            self.assertEqual(http_get(e.port, path).header("x-cache"), "MISS")
            self.assertEqual(http_get(e.port, "/v/a5/strict.m3u8").header("x-cache"), "MISS")
            time.sleep(1.3)
            # Stale: answered at once from the store while the origin holds the revalidation.
            self.put(path, new, cc="max-age=60, stale-while-revalidate=30")
            self.origin.hold(path)
            r = http_get(e.port, path)
            self.assertEqual((r.status, r.header("x-cache"), r.body), (200, "STALE", old))
            self.assertIn("stale-while-revalidate", r.header("cache-status"))
            self.origin.wait_waiting(path, 1)
            # More requests meanwhile: stale too, and no second upstream request.
            self.assertEqual(http_get(e.port, path).header("x-cache"), "STALE")
            self.origin.release(path)
            deadline = time.time() + 5
            while time.time() < deadline:
                r = http_get(e.port, path)
                if r.body == new:
                    break
                time.sleep(0.05)
            self.assertEqual((r.header("x-cache"), r.body), ("HIT-hot", new))
            self.assertEqual(self.origin.count(path), 2)
            # The revalidation carried the stored validator.
            self.assertIsNotNone(self.origin.requests_for(path)[1].headers.get("if-none-match"))
            # must-revalidate: never served stale.
            r = http_get(e.port, "/v/a5/strict.m3u8")
            self.assertIn(r.header("x-cache"), ("REVALIDATED", "MISS"))
            self.assertEqual(self.origin.count("/v/a5/strict.m3u8"), 2)
            m = e.metrics()
            self.assertGreaterEqual(m.get('tmt_edge_requests_total{result="stale"}', 0), 2)

    def test_larger_than_max_object_is_passed_through(self):
        big = random.Random(1).randbytes(300 * 1024)  # max_object_size is 16k here
        huge = random.Random(2).randbytes(6 * 1024 * 1024)
        self.put("/v/a6/r0/1.m4s", big)
        self.put("/v/a6/r0/2.m4s", big, headers={"Transfer-Encoding": "chunked"})
        self.put("/v/a6/r0/3.m4s", huge)
        with self.edge() as e:
            for path in ("/v/a6/r0/1.m4s", "/v/a6/r0/2.m4s"):
                for _ in range(2):
                    r = http_get(e.port, path)
                    self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"), path)
                    self.assertEqual(r.body, big, path)
                    self.assertIn("larger-than-max-object", r.header("cache-status"))
                self.assertEqual(self.origin.count(path), 2)
            r = http_get(e.port, "/v/a6/r0/1.m4s", extra="Range: bytes=0-9\r\n")
            self.assertEqual((r.status, r.body), (200, big))
            # A client that reads slowly: the upstream is paused and resumed, nothing is lost.
            with RawConn(e.port, timeout=20, rcvbuf=8192) as c:
                c.send("GET /v/a6/r0/3.m4s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                time.sleep(1.0)
                r = c.read_response(timeout=20)
            self.assertEqual((r.status, len(r.body)), (200, len(huge)))
            self.assertEqual(r.body, huge)
            # Concurrent clients (on both workers) each get the whole body.
            res = []
            ts = [threading.Thread(target=lambda: res.append(http_get(e.port, "/v/a6/r0/1.m4s")))
                  for _ in range(6)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(20)
            self.assertEqual([r.body == big for r in res], [True] * 6)
            st = e.metrics()
            self.assertEqual(st.get('tmt_edge_cache_objects{tier="hot"}', 0), 0)

    def test_full_disk_degrades_to_ram_and_upstream(self):
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a small tmpfs here (needs root)")
        try:
            # 120 x 150 KiB = 17.6 MiB for warm and cold (8 MiB each, and the 22 MiB of free
            # space the store keeps for RocksDB) on a 32 MiB disk: the disk fills first.
            objs = {"/v/a7/r0/%d.m4s" % i: random.Random(i).randbytes(150 * 1024)
                    for i in range(1, 121)}
            for k, v in objs.items():
                self.put(k, v)
            with Edge("upstream.shields=" + self.origin.addr, "tokens.public=/v/",
                      "cache.hot_size=1m", "cache.warm_size=8m", "cache.cold_size=8m",
                      "cache.max_object_size=1m", "cache.policy=lru",
                      "cache.warm_path=" + os.path.join(mnt, "warm"),
                      "cache.cold_path=" + os.path.join(mnt, "cold"), workers=2) as e:
                started = time.time()
                for _ in range(2):
                    for k, v in objs.items():
                        r = http_get(e.port, k)
                        self.assertEqual((r.status, r.body == v), (200, True), k)
                e.wait_line("disk nearly full")
                deadline = time.time() + 3  # the store's figures are published each second
                while e.metrics().get("tmt_edge_cache_write_errors_total", 0) < 20:
                    self.assertLess(time.time(), deadline, "too few write errors counted")
                    time.sleep(0.1)
                # Counted every time, logged at most once a second per tier.
                logged = [ln for ln in e.lines if "level=error mod=store" in ln]
                self.assertLessEqual(len(logged), 2 * (int(time.time() - started) + 2), logged)
                # Still serving: hot hits, and misses from upstream.
                last = "/v/a7/r0/120.m4s"
                self.assertEqual(http_get(e.port, last).header("x-cache"), "HIT-hot")
                self.put("/v/a7/r0/99.m4s", b"x" * 1000)
                r = http_get(e.port, "/v/a7/r0/99.m4s")
                self.assertEqual((r.status, r.body), (200, b"x" * 1000))
                self.assertEqual(http_get(e.port, "/healthz").status, 404)
                self.assertEqual(http_get(e.admin_port, "/healthz").status, 200)
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)

    def test_cors(self):
        data = body(1200, 4)
        # The upstream sends its own CORS fields: the edge answers with its own, once.
        self.put("/v/a8/master.m3u8", data, headers={"Access-Control-Allow-Origin": "http://x"})
        origin = "Origin: http://player.example\r\n"
        with self.edge() as e:
            r = http_get(e.port, "/v/a8/master.m3u8", extra=origin)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header_all("access-control-allow-origin"), ["*"])
            self.assertIn("X-Cache", r.header("access-control-expose-headers"))
            r = http_get(e.port, "/v/a8/master.m3u8", extra=origin)
            self.assertEqual((r.header("x-cache"), r.header_all("access-control-allow-origin")),
                             ("HIT-hot", ["*"]))
            # No Origin: no CORS fields.
            r = http_get(e.port, "/v/a8/master.m3u8")
            self.assertIsNone(r.header("access-control-allow-origin"))
            # A preflight is answered by the edge itself, never forwarded.
            r = http_request(e.port, "OPTIONS", "/v/a8/master.m3u8",
                             extra=origin + "Access-Control-Request-Method: GET\r\n"
                             "Access-Control-Request-Headers: range\r\n")
            self.assertEqual(r.status, 204)
            self.assertEqual(r.header("access-control-allow-origin"), "*")
            self.assertIn("GET", r.header("access-control-allow-methods"))
            self.assertEqual(r.header("access-control-allow-headers"), "range")
            self.assertEqual(len(self.origin.requests_for("/v/a8/master.m3u8")), 1)
        with self.edge("http.cors_origin=") as e:
            r = http_get(e.port, "/v/a8/master.m3u8", extra=origin)
            self.assertIsNone(r.header("access-control-allow-origin"))
        # A list: a listed Origin gets itself back (and Vary: Origin), others get no CORS.
        listed = "https://player.example, http://player.example:8000 http://player.example"
        with self.edge("http.cors_origin=" + listed) as e:
            for o in ("https://player.example", "http://player.example:8000",
                      "http://player.example"):
                r = http_get(e.port, "/v/a8/master.m3u8", extra="Origin: %s\r\n" % o)
                self.assertEqual(r.header_all("access-control-allow-origin"), [o])
                self.assertIn("Origin", [v.strip() for v in ",".join(r.header_all("vary")).split(",")])
            for o in ("https://other.example", "http://player.example:800", "null"):
                r = http_get(e.port, "/v/a8/master.m3u8", extra="Origin: %s\r\n" % o)
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("access-control-allow-origin"), o)
            r = http_request(e.port, "OPTIONS", "/v/a8/master.m3u8",
                             extra="Origin: http://player.example:8000\r\n"
                             "Access-Control-Request-Method: GET\r\n")
            self.assertEqual((r.status, r.header("access-control-allow-origin")),
                             (204, "http://player.example:8000"))
        # Settings that are not origins are refused with the key named.
        for bad in ("https://player.example/path", "player.example", "https://*.example"):
            res = run("tomato-edge", "--check-config", "--set", "http.cors_origin=" + bad)
            self.assertEqual(res.returncode, 1, bad)
            self.assertIn("http.cors_origin", res.stderr)
            self.assertIn("is not an origin", res.stderr)

    def test_token_path_shares_key_and_hides_token(self):
        data = body(5000, 9)
        self.put("/v/a4/720p/1.m4s", data)
        log = os.path.join(self.dir, "access.log")
        with self.edge("log.access_log=" + log) as e:
            r = http_get(e.port, "/t/eyJhbGciOiJIUzI1NiJ9.e30.c2ln/v/a4/720p/1.m4s")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, data)
            self.assertEqual(r.header("x-cache"), "MISS")
            r = http_get(e.port, "/v/a4/720p/1.m4s")
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            r = http_get(e.port, "/t/another-token/v/a4/./720p/1.m4s")
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            # The upstream saw /v/... once, never the token.
            self.assertEqual(self.origin.count("/v/a4/720p/1.m4s"), 1)
            self.assertEqual(http_get(e.port, "/t//v/a4/720p/1.m4s").status, 400)
            self.assertEqual(http_get(e.port, "/t/tok").status, 400)
            self.assertEqual(http_get(e.port, "/t/tok/other/x").status, 400)
            self.assertEqual(http_get(e.port, "/t/tok/v/../../x").status, 400)
            e.stop()
        with open(log) as f:
            text = f.read()
        self.assertIn("/v/a4/720p/1.m4s", text)
        self.assertNotIn("eyJhbGciOiJIUzI1NiJ9", text)
        self.assertNotIn("another-token", text)


if __name__ == "__main__":
    unittest.main()
