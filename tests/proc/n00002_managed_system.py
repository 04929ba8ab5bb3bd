"""The three daemons as one system, as INTERFACES.md describes it: an operator provisions a shield
and two edges through the API; the nodes start from only the control URL, their id and their
credential; a viewer's playback URL plays through an edge (ffmpeg reads it without an error);
after a key rotation old tokens still play and new ones play at once; forged, expired,
other-asset and alg-none tokens get 403; a device that keeps fetching segments through an edge
keeps its lease without player heartbeats, and loses it (and its token) after it stops; with
the control plane killed, edges keep serving cached and uncached content to valid tokens."""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import jwt

from harness import Api, Control, Edge, Shield, http_get
from harness.media import make_asset

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s", "devices.lease_ttl=3s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def ffmpeg_reads(url):
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0", "-c", "copy",
                        "-f", "null", "-"], capture_output=True, text=True, timeout=120)
    return r.returncode == 0 and r.stderr.strip() == "", r.stderr


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


class ManagedSystem(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-system-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=9, rungs=[("180p", 320, 180, 300000)])
        make_asset(self.root, "other-v1", seconds=5, rungs=[("180p", 320, 180, 300000)])
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, daemon):
        self.procs.append(daemon)
        return daemon

    def node(self, op, role, name, port):
        st, doc, r = op.call("POST", "/v1/nodes", {"role": role, "name": name,
                                                   "public_url": "http://127.0.0.1:%d" % port})
        self.assertEqual(st, 201, r.body)
        cred = os.path.join(self.dir, name + ".cred")
        with open(cred, "w") as f:
            f.write(doc["credential"] + "\n")
        return doc["id"], ("node.control_url=http://127.0.0.1:%d" % self.cport,
                           "node.id=" + doc["id"], "node.credential_file=" + cred,
                           "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def test_the_whole_flow(self):
        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                "server.listen=127.0.0.1:%d" % self.cport))
        op = cp.api().login(*Control.OPERATOR)
        sport, e1port, e2port = free_port(), free_port(), free_port()
        sid, ssets = self.node(op, "shield", "shield-1", sport)
        e1id, e1sets = self.node(op, "edge", "edge-1", e1port)
        e2id, e2sets = self.node(op, "edge", "edge-2", e2port)
        shield = self.start(Shield(self.root, os.path.join(self.dir, "shield"), *ssets,
                                   "server.listen=127.0.0.1:%d" % sport))
        edges = []
        for name, port, sets in (("e1", e1port, e1sets), ("e2", e2port, e2sets)):
            edges.append(self.start(Edge(
                *sets, "server.listen=127.0.0.1:%d" % port,
                "cache.warm_path=" + os.path.join(self.dir, name, "warm"),
                "cache.cold_path=" + os.path.join(self.dir, name, "cold"),
                "log.access_log=" + os.path.join(self.dir, name + ".access"))))
        e1, e2 = edges
        # Both edges learn the shield once it has heartbeated.
        for e in edges:
            self.assertTrue(wait_for(lambda e=e: e.metrics().get(
                "tmt_node_heartbeats_total", 0) >= 1 and e.metrics().get(
                "tmt_edge_upstreams", 0) == 1), e.lines[-20:])
        self.assertEqual(op.call("POST", "/v1/shows", {
            "id": "film", "title": "Film", "asset_id": "film-v1", "state": "published",
            "duration": 9})[0], 201)
        self.assertEqual(op.call("POST", "/v1/shows", {
            "id": "other", "title": "Other", "asset_id": "other-v1", "state": "published"})[0],
            201)
        a = cp.api()
        self.assertEqual(a.call("POST", "/v1/users", {"email": "viewer@example.com",
                                                      "password": "viewer-pass",
                                                      "display_name": "V"})[0], 201)
        v = a.login("viewer@example.com", "viewer-pass")
        dev = v.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]
        st, play, r = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 201, r.body)
        # Both edges are in one group: the film's edge is its rendezvous pick, one of the two.
        chosen = [e for e in edges if play["hls_url"].startswith(
            "http://127.0.0.1:%d/t/" % e.port)]
        self.assertEqual(len(chosen), 1, play["hls_url"])
        if chosen[0] is not e1:
            e1, e2 = e2, e1
            e1id, e2id = e2id, e1id
            e1port, e2port = e2port, e1port
        ok, err = ffmpeg_reads(play["hls_url"])
        self.assertTrue(ok, err)
        ok, err = ffmpeg_reads(play["dash_url"])
        self.assertTrue(ok, err)
        token = play["token"]

        def get(edge, tok, path):
            return http_get(edge.port, "/t/%s%s" % (tok, path))

        self.assertEqual(get(e2, token, "/v/film-v1/master.m3u8").status, 200)
        # Refusals: each gets 403 with a reason and never reaches the shield.
        hdr = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        h, p, s = token.split(".")
        forged = "%s.%s.%s" % (h, b64(dict(claims, cdniuc="regex:^/v/other\\-v1/")), s)
        expired_claims = dict(claims, exp=int(time.time()) - 10, iat=int(time.time()) - 100)
        none_tok = "%s.%s." % (b64({"alg": "none", "typ": "JWT", "kid": hdr["kid"]}), p)
        cases = {
            "forged": (forged, "/v/other-v1/master.m3u8"),
            "expired": ("%s.%s.%s" % (h, b64(expired_claims), s), "/v/film-v1/master.m3u8"),
            "other asset": (token, "/v/other-v1/master.m3u8"),
            "escape": (token, "/v/film-v1/../other-v1/master.m3u8"),
            "alg none": (none_tok, "/v/film-v1/master.m3u8"),
            "no token": (None, "/v/film-v1/master.m3u8"),
        }
        before = shield.metrics().get('tmt_shield_requests_total{result="miss"}', 0)
        for what, (tok, path) in cases.items():
            r = http_get(e1.port, path) if tok is None else get(e1, tok, path)
            self.assertEqual(r.status, 403, what)
            self.assertTrue(r.header("x-tomato-reason"), what)
        self.assertEqual(shield.metrics().get('tmt_shield_requests_total{result="miss"}', 0),
                         before)
        # Rotation: the old token still plays, a new one plays at once.
        st, rot, _ = op.call("POST", "/v1/keys/rotate")
        self.assertEqual(st, 201)
        st, play2, _ = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(jwt.get_unverified_header(play2["token"])["kid"], rot["kid"])
        self.assertEqual(get(e1, play2["token"], "/v/film-v1/180p/2.m4s").status, 200)
        self.assertEqual(get(e1, token, "/v/film-v1/180p/2.m4s").status, 200)
        # The device keeps fetching through an edge, no player heartbeat: the lease lives on.
        lease = play2["lease_id"]
        end = time.monotonic() + 7
        while time.monotonic() < end:
            self.assertEqual(get(e1, play2["token"], "/v/film-v1/180p/1.m4s").status, 200)
            time.sleep(0.5)
        st, doc, _ = v.call("GET", "/v1/playback")
        self.assertEqual([x["lease_id"] for x in doc["leases"]], [lease])
        # It stops: the lease ends, enters the revocation list, and edges refuse its token.
        self.assertTrue(wait_for(lambda: v.call("GET", "/v1/playback")[1]["leases"] == [],
                                 timeout=10))
        self.assertTrue(wait_for(lambda: get(e1, play2["token"],
                                             "/v/film-v1/180p/1.m4s").status == 403, timeout=15))
        self.assertEqual(get(e1, play2["token"], "/v/film-v1/180p/1.m4s")
                         .header("x-tomato-reason"), "revoked lease")
        # A new playback; then the control plane dies: cached and uncached content still plays.
        st, play3, _ = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 201)
        self.assertEqual(get(e1, play3["token"], "/v/film-v1/180p/1.m4s").status, 200)
        d2 = v.call("POST", "/v1/devices", {"name": "phone"})[1]["id"]
        st, play4, _ = v.call("POST", "/v1/playback", {"show_id": "other", "device_id": d2})
        self.assertEqual(st, 201)
        # Edges report their cache totals in heartbeats: the control plane shows the last ones.
        def counters():
            return op.call("GET", "/v1/nodes/" + e1id)[1].get("counters", {})
        self.assertTrue(wait_for(lambda: counters().get("hit_hot", 0) >= 1 and
                                 counters().get("miss", 0) >= 1), counters())
        cp.proc.send_signal(signal.SIGKILL)
        cp.proc.wait()
        self.assertTrue(wait_for(lambda: e1.metrics()["tmt_node_control_up"] == 0))
        r = get(e1, play3["token"], "/v/film-v1/180p/1.m4s")
        self.assertEqual((r.status, r.header("x-cache")), (200, "HIT-hot"))
        r = get(e1, play4["token"], "/v/other-v1/180p/1.m4s")
        self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"))
        ok, err = ffmpeg_reads("http://127.0.0.1:%d/t/%s/v/film-v1/manifest.mpd" %
                               (e2port, play3["token"]))
        self.assertTrue(ok, err)
        # No token, email or user id in the edges' access logs.
        for name in ("e1", "e2"):
            with open(os.path.join(self.dir, name + ".access")) as f:
                text = f.read()
            self.assertIn("/v/film-v1/", text)
            for secret in (token, play3["token"][:30], "viewer@example.com"):
                self.assertNotIn(secret, text)


if __name__ == "__main__":
    unittest.main()
