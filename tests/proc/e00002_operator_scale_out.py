"""An operator grows and shrinks the edge tier of a running system (control plane, a shield, two
edges, a catalog of 60 published shows with their own assets): a third edge is provisioned through
POST /v1/nodes and started from only its control URL, id and credential; once it heartbeats,
routing (GET /v1/route and the URLs of POST /v1/playback) gives it a fair share of the assets and
moves only those (rendezvous: every other asset stays on its edge), and it serves the viewers sent
there (its metrics and access log). Drained (POST /v1/nodes/{id}/drain), it gets no new playback,
its assets go back to the edges they had before, a viewer already playing on it plays to the end,
and the router sends that viewer's next request elsewhere; made active again, it takes its share
back."""
import os
import shutil
import tempfile
import time
import unittest

from harness import http_request
from harness.media import make_asset
from harness.system import System, ffmpeg_finish, ffmpeg_play, ffmpeg_start, wait_for

ASSETS = 60


def served(edge):
    """Requests the edge's cache answered (hits, misses, passes...)."""
    return sum(v for k, v in edge.metrics().items() if k.startswith("tmt_edge_requests_total"))


class OperatorScaleOut(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-operator-")
        self.root = os.path.join(self.dir, "mezz")
        base = make_asset(self.root, "base", seconds=8, seg=2, rungs=[("180p", 320, 180, 300000)])
        # Shows need assets of their own (routing picks an edge per asset): the same media
        # under 60 asset ids, as hard links.
        self.assets = ["s%02d-v1" % i for i in range(ASSETS)]
        for a in self.assets:
            shutil.copytree(base, os.path.join(self.root, a), copy_function=os.link)
        self.sys = System(self.dir)

    def tearDown(self):
        self.sys.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def routes(self):
        """{asset: edge name} as GET /v1/route answers for this client."""
        out = {}
        for a in self.assets:
            st, doc, r = self.sys.op.call("GET", "/v1/route?asset=" + a)
            self.assertEqual(st, 200, r.body)
            out[a] = doc["edge"]["name"]
        return out

    def play(self, v, dev, asset):
        """POST /v1/playback of the asset's show on dev: the answer."""
        st, doc, r = v.call("POST", "/v1/playback", {"show_id": asset.split("-")[0],
                                                     "device_id": dev})
        self.assertIn(st, (200, 201), r.body)
        return doc

    def edge_of(self, url):
        for e in self.edges:
            if url.startswith(e.url("/t/")):
                return e.node_name
        self.fail("no edge serves " + url)

    def test_scale_out_and_drain(self):
        s = self.sys
        s.control("devices.lease_ttl=30s")
        s.shield(self.root)
        self.edges = [s.edge("edge-1"), s.edge("edge-2")]
        for e in self.edges:
            s.wait_edge_ready(e)
        for a in self.assets:
            st, _, r = s.op.call("POST", "/v1/shows", {
                "id": a.split("-")[0], "title": "Show " + a, "asset_id": a, "state": "published",
                "duration": 8})
            self.assertEqual(st, 201, r.body)
        before = self.routes()
        self.assertEqual(set(before.values()), {"edge-1", "edge-2"})

        # The third edge: provisioned through the API, started from its node settings only.
        e3 = s.edge("edge-3")
        self.edges.append(e3)
        s.wait_edge_ready(e3)
        st, nodes, _ = s.op.call("GET", "/v1/nodes?role=edge")
        self.assertEqual(sorted((n["name"], n["state"], n["health"]) for n in nodes["nodes"]),
                         [("edge-%d" % i, "active", "healthy") for i in (1, 2, 3)])
        after = self.routes()
        moved = sorted(a for a in self.assets if after[a] != before[a])
        self.assertTrue(all(after[a] == "edge-3" for a in moved),
                        {a: (before[a], after[a]) for a in moved})
        share = len(moved)
        print("edge-3 takes %d of %d assets" % (share, ASSETS))
        self.assertGreaterEqual(share, ASSETS // 10, after)
        self.assertLessEqual(share, ASSETS * 6 // 10, after)

        # Viewers follow routing: every playback URL is at the asset's edge.
        anon = s.cp.api()
        self.assertEqual(anon.call("POST", "/v1/users", {"email": "v@example.com",
                                                         "password": "viewer-pass-1",
                                                         "display_name": "V"})[0], 201)
        v = anon.login("v@example.com", "viewer-pass-1")
        devs = [v.call("POST", "/v1/devices", {"name": n})[1]["id"] for n in ("tv", "tablet")]
        urls = {}
        for a in self.assets:
            p = self.play(v, devs[0], a)
            self.assertEqual(self.edge_of(p["hls_url"]), after[a], a)
            urls[a] = p
        # The new edge serves what it was given; the others serve theirs.
        n3 = served(e3)
        for a in moved[:3] + [next(a for a in self.assets if after[a] != "edge-3")]:
            ok, err, secs = ffmpeg_play(urls[a]["hls_url"])
            self.assertTrue(ok, (a, err))
            self.assertGreaterEqual(secs, 7.5, a)
        self.assertGreaterEqual(served(e3) - n3, 3 * 4, "edge-3 served too little")

        # A viewer on the tablet is playing from edge-3 when the operator drains it.
        inflight = moved[3]
        p = self.play(v, devs[1], inflight)
        self.assertEqual(self.edge_of(p["hls_url"]), "edge-3")
        viewer = ffmpeg_start(p["hls_url"])
        try:
            time.sleep(2)
            st, node, r = s.op.call("POST", "/v1/nodes/%s/drain" % e3.node_id)
            self.assertEqual(st, 200, r.body)
            self.assertEqual(node["state"], "draining")
            drained = self.routes()
            self.assertEqual(drained, before)
            for a in moved[:5]:
                self.assertNotEqual(self.edge_of(self.play(v, devs[0], a)["hls_url"]), "edge-3")
            # The router sends the tablet's next request (a new manifest) to another edge.
            cp = "http://127.0.0.1:%d" % s.cport
            r = http_request(s.cport, "GET", p["router_hls_url"][len(cp):])
            self.assertEqual(r.status, 302)
            self.assertEqual(self.edge_of(r.header("location")), before[inflight])
            ok, err, secs = ffmpeg_finish(viewer)
            self.assertTrue(ok, err)
            self.assertGreaterEqual(secs, 7.5, "the draining edge cut a viewer short")
        finally:
            if viewer.poll() is None:
                viewer.kill()
                viewer.communicate()
        # New viewers of edge-3's former assets play elsewhere; edge-3 sees none of it.
        n3 = served(e3)
        for a in moved[:3]:
            p = self.play(v, devs[0], a)
            self.assertEqual(self.edge_of(p["hls_url"]), before[a])
            ok, err, _ = ffmpeg_play(p["hls_url"])
            self.assertTrue(ok, err)
        self.assertEqual(served(e3), n3)
        node = s.op.call("GET", "/v1/nodes/" + e3.node_id)[1]
        self.assertEqual((node["state"], node["health"]), ("draining", "healthy"))

        # Back to active: it takes the same share again.
        st, node, r = s.op.call("PATCH", "/v1/nodes/" + e3.node_id, {"state": "active"})
        self.assertEqual((st, node["state"]), (200, "active"), r.body)
        self.assertEqual(self.routes(), after)

        for d in s.procs:
            self.assertEqual(d.stop(timeout=20), 0, d.name)
        with open(s.access_log("edge-3")) as f:
            log = f.read()
        for a in moved[:4]:
            self.assertIn("/v/%s/" % a, log)
        for a in self.assets:
            if after[a] != "edge-3":
                self.assertNotIn("/v/%s/" % a, log)


if __name__ == "__main__":
    unittest.main()
