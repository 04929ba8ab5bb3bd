"""Ingest through the control plane, as an operator does it: a draft show, a source file in the
shields' ingest area, POST /v1/shows/{id}/ingest; the control plane has a healthy shield (one with
an admin_url) run the transcode job with the credential it handed the shield in its config,
follows it, and publishes the show with the new asset, which a viewer then plays through an
edge. A second ingest of a bad source fails with the shield's reason and leaves the show playing
its earlier asset; a source the shield refuses fails at once; without a shield that can take
jobs the call is 503; an ingest can be abandoned; the shield's admin refuses other credentials."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import Control, Edge, Shield, http_request

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=60.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Ingest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-ingest-")
        self.sources = os.path.join(self.dir, "sources")
        self.mezz = os.path.join(self.dir, "mezz")
        os.makedirs(self.sources)
        os.makedirs(self.mezz)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=48000", "-t", "6", "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", "-shortest",
                        os.path.join(self.sources, "film.mp4")], check=True, timeout=60)
        with open(os.path.join(self.sources, "notes.txt"), "w") as f:
            f.write("not a video\n")
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

    def show(self, op, sid):
        return op.call("GET", "/v1/shows/" + sid)[1]

    def settled(self, op, sid):
        return wait_for(lambda: self.show(op, sid)["state"] != "processing" and
                        self.show(op, sid))

    def test_ingest_publishes_and_plays(self):
        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                "server.listen=127.0.0.1:%d" % self.cport))
        op = cp.api().login(*Control.OPERATOR)
        sport, sadmin, eport = free_port(), free_port(), free_port()
        sid, ssets = self.node(op, "shield", "shield-1", sport,
                               admin_url="http://127.0.0.1:%d" % sadmin)
        _, esets = self.node(op, "edge", "edge-1", eport)
        self.assertEqual(op.call("PATCH", "/v1/nodes/" + sid,
                                 {"admin_url": "http://shield.example:9300"})[0], 422)
        self.start(Shield(self.mezz, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport,
                          "admin.listen=127.0.0.1:%d" % sadmin,
                          "jobs.source_root=" + self.sources, "transcode.ladder=180:300k,120:150k"))
        edge = self.start(Edge(*esets, "server.listen=127.0.0.1:%d" % eport,
                               "cache.warm_path=" + os.path.join(self.dir, "warm"),
                               "cache.cold_path=" + os.path.join(self.dir, "cold")))
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_edge_upstreams", 0) == 1))
        # The shield's admin takes the control plane's credential only.
        r = http_request(sadmin, "GET", "/v1/jobs", "Authorization: Bearer not-the-key\r\n")
        self.assertEqual(r.status, 401)

        self.assertEqual(op.call("POST", "/v1/shows", {"id": "film", "title": "Film"})[0], 201)
        self.assertEqual(op.call("DELETE", "/v1/shows/film/ingest")[0], 409)
        self.assertEqual(op.call("POST", "/v1/shows/film/ingest", {})[0], 422)
        self.assertEqual(op.call("POST", "/v1/shows/none/ingest", {"source": "film.mp4"})[0],
                         404)
        st, doc, r = op.call("POST", "/v1/shows/film/ingest", {"source": "film.mp4"})
        self.assertEqual(st, 202, r.body)
        self.assertEqual((doc["state"], doc["ingest"]["asset_id"], doc["ingest"]["shield"]),
                         ("processing", "film-v1", sid))
        st, _, r = op.call("POST", "/v1/shows/film/ingest", {"source": "film.mp4"})
        self.assertEqual(st, 409, r.body)
        s = self.settled(op, "film")
        self.assertEqual((s["state"], s["asset_id"], s["ingest"]["state"]),
                         ("published", "film-v1", "succeeded"), s)
        self.assertAlmostEqual(s["duration"], 6, delta=0.2)
        self.assertTrue(os.path.isfile(os.path.join(self.mezz, "film-v1", "asset.json")))

        # A viewer plays it through the edge.
        self.assertEqual(cp.api().call("POST", "/v1/users", {
            "email": "v@example.com", "password": "viewer-pass", "display_name": "V"})[0], 201)
        v = cp.api().login("v@example.com", "viewer-pass")
        dev = v.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]
        st, play, r = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 201, r.body)
        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", play["hls_url"], "-map",
                            "0", "-c", "copy", "-f", "null", "-"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stderr), (0, ""))

        # A bad source: the job fails with the shield's reason; the show keeps its asset.
        st, doc, _ = op.call("POST", "/v1/shows/film/ingest", {"source": "notes.txt"})
        self.assertEqual((st, doc["ingest"]["asset_id"]), (202, "film-v2"))
        s = self.settled(op, "film")
        self.assertEqual((s["state"], s["asset_id"], s["ingest"]["state"]),
                         ("published", "film-v1", "failed"), s)
        self.assertIn("notes.txt", s["ingest"]["error"])
        # A source the shield refuses outright (not in its ingest area).
        st, doc, _ = op.call("POST", "/v1/shows/film/ingest", {"source": "../etc/passwd"})
        self.assertEqual(st, 202)
        s = self.settled(op, "film")
        self.assertEqual(s["ingest"]["state"], "failed")
        self.assertIn("refused", s["ingest"]["error"])
        # A new show fails when its first ingest does.
        self.assertEqual(op.call("POST", "/v1/shows", {"id": "bad", "title": "Bad"})[0], 201)
        self.assertEqual(op.call("POST", "/v1/shows/bad/ingest", {"source": "notes.txt"})[0], 202)
        self.assertEqual(self.settled(op, "bad")["state"], "failed")

        # Without a shield that takes jobs: 503. An ingest can be abandoned.
        self.assertEqual(op.call("PATCH", "/v1/nodes/" + sid, {"admin_url": ""})[0], 200)
        st, _, r = op.call("POST", "/v1/shows/bad/ingest", {"source": "film.mp4"})
        self.assertEqual(st, 503, r.body)
        self.assertEqual(op.call("PATCH", "/v1/nodes/" + sid, {
            "admin_url": "http://127.0.0.1:%d" % free_port()})[0], 200)
        self.assertEqual(op.call("POST", "/v1/shows/bad/ingest", {"source": "film.mp4"})[0], 202)
        self.assertTrue(wait_for(lambda: self.show(op, "bad")["ingest"]["last_error"]))
        self.assertIn("did not answer", self.show(op, "bad")["ingest"]["last_error"])
        st, doc, _ = op.call("DELETE", "/v1/shows/bad/ingest")
        self.assertEqual((st, doc["state"], doc["ingest"]["error"]),
                         (200, "failed", "abandoned by an operator"))
        self.assertEqual(op.call("GET", "/v1/shows/film/ingest")[0], 405)


if __name__ == "__main__":
    unittest.main()
