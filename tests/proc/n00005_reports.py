"""Cache-hit reports: an edge managed by the control plane sends report batches (every second
here, zstd-compressed); a known sequence of requests through it shows up exactly in
GET /v1/reports/cache (requests, hits per tier, misses, bytes served, hit bytes, upstream requests
and bytes, errors), grouped by node, region and minute, as JSON and CSV. The control plane goes
down (SIGKILL) while the edge keeps serving: the edge queues its batches and sends them when the
control plane is back on the same store, and nothing is lost; a batch sent twice is counted
once; bad batches and bad queries get 4xx."""
import csv
import io
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from harness import Api, Control, Edge, Shield, http_get
from harness.media import make_asset

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=20.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Reports(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-reports-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=9, rungs=[("180p", 320, 180, 300000)])
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def node(self, op, role, name, port, **extra):
        st, doc, r = op.call("POST", "/v1/nodes", dict(
            role=role, name=name, public_url="http://127.0.0.1:%d" % port, **extra))
        self.assertEqual(st, 201, r.body)
        cred = os.path.join(self.dir, name + ".cred")
        with open(cred, "w") as f:
            f.write(doc["credential"] + "\n")
        return doc["id"], doc["credential"], (
            "node.control_url=http://127.0.0.1:%d" % self.cport, "node.id=" + doc["id"],
            "node.credential_file=" + cred,
            "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def control(self):
        return self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                  "server.listen=127.0.0.1:%d" % self.cport))

    def test_counts_exactly_and_survives_an_outage(self):
        self.cport = free_port()
        cp = self.control()
        op = cp.api().login(*Control.OPERATOR)
        sport, eport = free_port(), free_port()
        _, _, ssets = self.node(op, "shield", "shield-1", sport)
        eid, ecred, esets = self.node(op, "edge", "edge-1", eport, region="eu")
        self.start(Shield(self.root, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport, "node.report_interval=1s"))
        edge = self.start(Edge(*esets, "server.listen=127.0.0.1:%d" % eport,
                               "node.report_interval=1s", "tokens.protect=", "cache.mrc_rate=1",
                               "cache.warm_path=" + os.path.join(self.dir, "warm"),
                               "cache.cold_path=" + os.path.join(self.dir, "cold")))
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_edge_upstreams", 0) == 1))
        # Whatever the edge did before (nothing through its main listener) is reported first.
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_node_reports_sent_total", 0)))

        def report(**q):
            qs = "&".join("%s=%s" % kv for kv in sorted(q.items()))
            st, doc, r = op.call("GET", "/v1/reports/cache?" + qs)
            self.assertEqual(st, 200, r.body)
            return doc

        def totals():
            rows = report(group_by="total")["rows"]
            return rows[0] if rows else {"requests": 0}

        base = totals()["requests"]
        # A known sequence: 2 misses, 3 hot hits, 1 not found.
        seg1, seg2 = "/v/film-v1/180p/1.m4s", "/v/film-v1/180p/2.m4s"
        sizes = {}
        for path, want in ((seg1, "MISS"), (seg1, "HIT-hot"), (seg1, "HIT-hot"),
                           (seg2, "MISS"), (seg2, "HIT-hot")):
            r = http_get(eport, path)
            self.assertEqual((r.status, r.header("x-cache")), (200, want))
            sizes[path] = len(r.body)
        self.assertEqual(http_get(eport, "/v/film-v1/180p/99999.m4s").status, 404)
        n1, n2 = sizes[seg1], sizes[seg2]

        def settled():
            t = totals()
            return t["requests"] - base == 6 and t
        t = wait_for(settled)
        self.assertTrue(t, totals())
        self.assertEqual((t["hits"], t["misses"], t["hits_by_tier"]["hot"]), (3, 3, 3))
        self.assertEqual(t["hit_bytes_by_tier"], {"hot": 2 * n1 + n2, "warm": 0, "cold": 0})
        self.assertEqual(t["upstream_requests"], 3)
        self.assertGreaterEqual(t["upstream_bytes"], n1 + n2)
        self.assertGreaterEqual(t["bytes_served"], 3 * n1 + 2 * n2)
        self.assertEqual(t["errors"]["4xx"], 1)
        self.assertEqual(t["hit_ratio"], 0.5)
        self.assertIsNotNone(t["latency_ms"]["p50"])
        self.assertGreater(t["bandwidth_bps"]["peak"], 0)
        self.assertEqual(t["stored"]["objects_hot"], 3)  # the 404 too (heuristically cacheable)
        # The shield reports too (role=shield): the edge's three fills reached it.
        sh = wait_for(lambda: [r for r in report(group_by="node", role="shield")["rows"]
                               if r["requests"] >= 3])
        self.assertTrue(sh, report(group_by="node", role="shield"))
        self.assertEqual((sh[0]["requests"], sh[0]["errors"]["4xx"]), (3, 1))
        self.assertEqual(report(role="all")["rows"][0]["requests"], t["requests"] + 3)
        by_node = report(group_by="node")["rows"]
        self.assertEqual([r["key"] for r in by_node], [eid])
        self.assertEqual(by_node[0]["requests"], t["requests"])
        self.assertEqual([r["key"] for r in report(group_by="region")["rows"]], ["eu"])
        minutes = report(group_by="minute")["rows"]
        self.assertEqual(sum(r["requests"] for r in minutes), t["requests"])
        self.assertEqual(report(group_by="node", region="us")["rows"], [])
        # Per asset: every request under /v/film-v1/ (the 404 too), with the bytes it got.
        (a,) = report(group_by="asset")["rows"]
        self.assertEqual((a["key"], a["requests"], a["bytes_served"], a["request_share"]),
                         ("film-v1", 6, t["bytes_served"], 1.0))
        st, _, r = op.call("GET", "/v1/reports/cache?group_by=asset&format=csv")
        self.assertEqual(r.body.decode().splitlines()[1].split(",")[:2], ["film-v1", "6"])
        # The miss-ratio curve (sampling every key here: exact): at sizes that hold everything,
        # only the first request of each object misses (3 of 6 cache lookups).
        st, doc, r = op.call("GET", "/v1/reports/mrc?node=%s&targets=0.5,0.99" % eid)
        self.assertEqual(st, 200, r.body)
        (curve,) = doc["curves"]
        self.assertEqual((curve["node"], curve["region"], curve["sample_rate"]), (eid, "eu", 1))
        sizes = [p["size"] for p in curve["points"]]
        self.assertEqual(sizes, sorted(sizes))
        self.assertGreater(len(sizes), 4)
        self.assertTrue(sizes[0] < curve["budget"] < sizes[-1])
        self.assertEqual(curve["points"][-1]["miss_ratio"], 0.5)
        self.assertEqual(curve["needed"][0]["byte_hit_ratio"], 0.5)
        self.assertIsNone(curve["needed"][1]["size"])  # never reached: compulsory misses
        self.assertEqual(op.call("GET", "/v1/reports/mrc?targets=2")[0], 400)
        st, _, r = op.call("GET", "/v1/reports/cache?group_by=node&format=csv")
        rows = list(csv.DictReader(io.StringIO(r.body.decode())))
        self.assertEqual((rows[0]["key"], int(rows[0]["requests"])), (eid, t["requests"]))
        self.assertEqual(int(rows[0]["hits_by_tier_hot"]), 3)

        # The control plane goes away; the edge serves on and queues its batches.
        cp.proc.send_signal(signal.SIGKILL)
        cp.proc.wait()
        self.procs.remove(cp)
        for _ in range(4):
            self.assertEqual(http_get(eport, seg1).header("x-cache"), "HIT-hot")
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_node_reports_queued", 0) >= 2))
        cp = self.control()
        op = cp.api().login(*Control.OPERATOR)
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_node_reports_queued", 1) == 0))
        t2 = wait_for(lambda: totals()["requests"] - base == 10 and totals())
        self.assertTrue(t2, totals())
        self.assertEqual(t2["hits_by_tier"]["hot"], 7)
        self.assertEqual(t2["hit_bytes_by_tier"]["hot"], 6 * n1 + n2)
        self.assertEqual(report(group_by="asset")["rows"][0]["requests"], 10)

        # A batch sent twice counts once; bad batches are refused.
        node = Api(cp.port, ecred)
        now = int(time.time() * 1000)
        batch = {"boot": "abc123", "seq": 1, "from_ms": now - 1000, "to_ms": now,
                 "counters": {"requests": 5, "hit_hot": 5}, "latency_ms": [5]}
        path = "/v1/nodes/%s/reports" % eid
        self.assertEqual(node.call("POST", path, batch)[1], {"duplicate": False})
        self.assertEqual(node.call("POST", path, batch)[1], {"duplicate": True})
        self.assertEqual(totals()["requests"] - base, 15)
        for bad in (dict(batch, seq=0), dict(batch, boot="not hex"),
                    dict(batch, counters={"requests": -1}), dict(batch, to_ms=now + 3600000),
                    dict(batch, to_ms=now - 10 * 86400000, from_ms=0),
                    dict(batch, latency_ms=[1] * 20), dict(batch, role="viewer")):
            self.assertEqual(node.call("POST", path, bad)[0], 422, bad)
        self.assertEqual(node.call("POST", path, dict(batch, colour=1))[0], 400)
        self.assertEqual(totals()["requests"] - base, 15)
        for q in ("group_by=x", "role=viewer", "from=yesterday", "format=xml",
                  "resolution=week", "from=100&to=50"):
            self.assertEqual(op.call("GET", "/v1/reports/cache?" + q)[0], 400, q)
        self.assertEqual(Api(cp.port).call("GET", "/v1/reports/cache")[0], 401)


if __name__ == "__main__":
    unittest.main()
