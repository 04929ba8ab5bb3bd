"""The /reports page in headless Chromium: an operator logs in through the page, which draws hit
ratio and bandwidth over time per region, hits per tier per node (GET /v1/reports/cache) and
each edge's miss-ratio curve (GET /v1/reports/mrc), as SVG. Every plotted value is read back from the page and compared with the API's
JSON for the same window, and the page must raise no error, log none to the console, and make no
request that fails. Two edges in two regions report through the control plane.

Needs node, npm and Debian's chromium (scripts/setup.sh); label browser."""
import calendar
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Control, Edge, Shield, http_get
from harness.media import make_asset

from w00001_browser import BROWSER_DIR, CHROMIUM, ensure_node_modules, missing_tools

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


class ReportsPage(unittest.TestCase):
    def setUp(self):
        missing = missing_tools()
        if missing:
            raise AssertionError("needs %s: run scripts/setup.sh" % ", ".join(missing))
        ensure_node_modules()
        self.dir = tempfile.mkdtemp(prefix="tmt-reports-page-")
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
        return doc["id"], ("node.control_url=http://127.0.0.1:%d" % self.cport,
                           "node.id=" + doc["id"], "node.credential_file=" + cred,
                           "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def test_page_plots_what_the_api_says(self):
        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                "server.listen=127.0.0.1:%d" % self.cport))
        op = cp.api().login(*Control.OPERATOR)
        sport = free_port()
        _, ssets = self.node(op, "shield", "shield-1", sport)
        self.start(Shield(self.root, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport))
        edges = {}
        for name, region in (("edge-eu", "eu"), ("edge-us", "us")):
            port = free_port()
            nid, sets = self.node(op, "edge", name, port, region=region)
            e = self.start(Edge(*sets, "server.listen=127.0.0.1:%d" % port,
                                "node.report_interval=1s", "tokens.protect=", "cache.mrc_rate=1",
                                "cache.warm_path=" + os.path.join(self.dir, name, "warm"),
                                "cache.cold_path=" + os.path.join(self.dir, name, "cold")))
            edges[region] = (nid, port, e)
        for _, port, e in edges.values():
            self.assertTrue(wait_for(lambda e=e: e.metrics().get("tmt_edge_upstreams", 0) == 1))
        # eu: 1 miss, 3 hits; us: 2 misses, 1 hit.
        for region, paths in (("eu", ["1", "1", "1", "1"]), ("us", ["1", "2", "2"])):
            for seg in paths:
                self.assertEqual(http_get(edges[region][1], "/v/film-v1/180p/%s.m4s" % seg)
                                 .status, 200)

        def total():
            st, doc, _ = op.call("GET", "/v1/reports/cache?group_by=total")
            return doc["rows"][0]["requests"] if doc["rows"] else 0
        self.assertTrue(wait_for(lambda: total() == 7), total())

        r = subprocess.run(["node", os.path.join(BROWSER_DIR, "reports.mjs"), "--chromium",
                            CHROMIUM, "--url", "http://127.0.0.1:%d/reports" % self.cport,
                            "--email", Control.OPERATOR[0], "--password", Control.OPERATOR[1]],
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        page = json.loads(r.stdout)
        self.assertEqual((page["status"], page["problems"]), ("ready", []))
        q = "from=%d&to=%d" % (page["from"], page["to"])

        def rows(extra):
            st, doc, _ = op.call("GET", "/v1/reports/cache?%s&%s" % (extra, q))
            self.assertEqual(st, 200)
            return doc["rows"]

        regions = rows("group_by=region")
        self.assertEqual({x["key"]: (x["requests"], x["hit_ratio"], x["bytes_served"])
                          for x in regions},
                         {k: (v["requests"], v["hit_ratio"], v["bytes_served"])
                          for k, v in page["totals"].items()})
        self.assertEqual({k: v["requests"] for k, v in page["totals"].items()},
                         {"eu": 4, "us": 3})
        for region in ("eu", "us"):
            minutes = rows("group_by=minute&region=" + region)
            want_hits = [[int(time_of(x["key"])), x["hit_ratio"]] for x in minutes
                         if x["lookups"] > 0]
            self.assertEqual(page["hit_ratio"][region], want_hits)
            want_bw = [[int(time_of(x["key"])), x["bytes_served"] * 8 / 60] for x in minutes]
            got_bw = page["bandwidth"][region]
            self.assertEqual([t for t, _ in got_bw], [t for t, _ in want_bw])
            for (_, g), (_, w) in zip(got_bw, want_bw):
                self.assertAlmostEqual(g, w, places=6)
        nodes = rows("group_by=node")
        want_tiers = {x["key"]: {"hot": x["hits_by_tier"]["hot"], "warm": x["hits_by_tier"]["warm"],
                                 "cold": x["hits_by_tier"]["cold"],
                                 "miss": x["lookups"] - sum(x["hits_by_tier"].values())}
                      for x in nodes}
        self.assertEqual(page["tiers"], want_tiers)
        self.assertEqual(page["tiers"][edges["eu"][0]]["hot"], 3)
        self.assertEqual(page["tiers"][edges["us"][0]]["miss"], 2)
        # The miss-ratio curves: the page's points are the API's, per edge.
        st, doc, _ = op.call("GET", "/v1/reports/mrc")
        want_mrc = {c["node"]: {"budget": c["budget"],
                                "points": [[p["size"], p["byte_miss_ratio"]] for p in c["points"]]}
                    for c in doc["curves"]}
        self.assertEqual(set(want_mrc), {edges["eu"][0], edges["us"][0]})
        self.assertEqual(page["mrc"], want_mrc)
        # The top assets: the one asset, with all 7 requests.
        want_assets = [[x["key"], x["requests"], x["bytes_served"]]
                       for x in rows("group_by=asset")[:10]]
        self.assertEqual(page["assets"], want_assets)
        self.assertEqual(page["assets"][0][:2], ["film-v1", 7])


def time_of(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


if __name__ == "__main__":
    unittest.main()
