"""Nodes and the control plane: operators provision, list, change, drain and remove nodes; a
node's credential opens only its own config and heartbeat; the config carries an ETag (304 when
unchanged) and, for edges, the healthy shields, the signing keys and the revocation list;
heartbeats make nodes healthy and renew the leases of the devices they report; a shield started
with only the control URL and its credential takes the fill key from its config, keeps serving
with the config kept in its state file while the control plane is down, and says so in /metrics."""
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

import jwt

from harness import Api, Control, Shield, http_get, http_request
from harness.media import make_asset

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s", "devices.lease_ttl=3s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class NodesApi(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-nodes-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def provision(self, op, role, name, url, **extra):
        st, doc, r = op.call("POST", "/v1/nodes", dict(role=role, name=name, public_url=url,
                                                       **extra))
        self.assertEqual(st, 201, r.body)
        self.assertEqual(r.header("location"), "/v1/nodes/" + doc["id"])
        return doc

    def test_provisioning_config_and_heartbeats(self):
        with Control(self.dir, *FAST) as cp:
            op = cp.api().login(*Control.OPERATOR)
            sh = self.provision(op, "shield", "shield-1", "http://127.0.0.1:18300",
                                region="eu", latitude=48.1, longitude=11.6, capacity_gbps=40,
                                cache_bytes=10 ** 12)
            ed = self.provision(op, "edge", "edge-1", "http://127.0.0.1:18080")
            self.assertEqual(len(sh["credential"]), 43)
            self.assertEqual(sh["health"], "unknown")
            self.assertEqual((sh["region"], sh["latitude"]), ("eu", 48.1))
            # The credential is never shown again.
            st, doc, _ = op.call("GET", "/v1/nodes/" + sh["id"])
            self.assertNotIn("credential", doc)
            self.assertNotIn("cred", doc)
            # Bad input.
            for body, status in (({"role": "cache", "name": "x", "public_url": "http://a:1"}, 422),
                                 ({"role": "edge", "name": "x", "public_url": "ftp://a"}, 422),
                                 ({"role": "edge", "name": "x"}, 422),
                                 ({"role": "edge", "name": "x", "public_url": "http://a:1",
                                   "latitude": 91}, 422),
                                 ({"role": "edge", "name": "x", "public_url": "http://a:1",
                                   "cred": "x"}, 400)):
                self.assertEqual(op.call("POST", "/v1/nodes", body)[0], status, body)
            v = cp.api()
            self.assertEqual(v.call("POST", "/v1/users", {"email": "v@example.com",
                                                          "password": "viewer-pass",
                                                          "display_name": "V"})[0], 201)
            v = v.login("v@example.com", "viewer-pass")
            self.assertEqual(v.call("GET", "/v1/nodes")[0], 403)
            # A node's credential opens its own paths only; sessions do not open them.
            shield_api = Api(cp.port, sh["credential"])
            edge_api = Api(cp.port, ed["credential"])
            st, cfg, r = shield_api.call("GET", "/v1/nodes/%s/config" % sh["id"])
            self.assertEqual(st, 200, r.body)
            self.assertEqual(cfg["node"]["role"], "shield")
            self.assertEqual(len(cfg["fill_key"]), 43)
            self.assertNotIn("keys", cfg)
            self.assertEqual(shield_api.call("GET", "/v1/nodes/%s/config" % ed["id"])[0], 401)
            self.assertEqual(op.call("GET", "/v1/nodes/%s/config" % ed["id"])[0], 401)
            self.assertEqual(Api(cp.port, "x" * 43).call(
                "POST", "/v1/nodes/%s/heartbeat" % ed["id"], {})[0], 401)
            # The edge's config: shields only once healthy, keys, revocations, an ETag.
            st, cfg, r = edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])
            self.assertEqual(cfg["shields"], [])
            self.assertEqual(cfg["fill_key"], shield_api.call(
                "GET", "/v1/nodes/%s/config" % sh["id"])[1]["fill_key"])
            self.assertEqual([k["state"] for k in cfg["keys"]], ["current", "next"])
            self.assertEqual(cfg["revoked"], [])
            etag = r.header("etag")
            st, _, r = edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"],
                                     headers="If-None-Match: %s\r\n" % etag)
            self.assertEqual(st, 304)
            self.assertEqual(shield_api.call("POST", "/v1/nodes/%s/heartbeat" % sh["id"],
                                             {"health": "ok", "load": 0.25})[0], 200)
            st, cfg, r = edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"],
                                       headers="If-None-Match: %s\r\n" % etag)
            self.assertEqual(st, 200)
            self.assertEqual(cfg["shields"], ["127.0.0.1:18300"])
            self.assertNotEqual(r.header("etag"), etag)
            st, doc, _ = op.call("GET", "/v1/nodes?role=shield")
            self.assertEqual([(n["id"], n["health"], n["load"]) for n in doc["nodes"]],
                             [(sh["id"], "healthy", 0.25)])
            # Rotation changes the edge's config: the next key (which edges already had) signs
            # now, the old one is retired, a new next one comes.
            nxt = [k["kid"] for k in cfg["keys"] if k["state"] == "next"][0]
            st, rot, _ = op.call("POST", "/v1/keys/rotate")
            self.assertEqual((st, rot["kid"]), (201, nxt))
            st, cfg, _ = edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])
            self.assertEqual(sorted(k["state"] for k in cfg["keys"]),
                             ["current", "next", "retired"])
            self.assertEqual([k["kid"] for k in cfg["keys"] if k["state"] == "current"], [nxt])
            # Without heartbeats a node becomes unhealthy and leaves the edges' shield list.
            time.sleep(3.5)
            st, doc, _ = op.call("GET", "/v1/nodes/" + sh["id"])
            self.assertEqual(doc["health"], "unhealthy")
            self.assertEqual(edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])[1]["shields"],
                             [])
            # Draining keeps a healthy node out; PATCH brings it back.
            shield_api.call("POST", "/v1/nodes/%s/heartbeat" % sh["id"], {})
            self.assertEqual(op.call("POST", "/v1/nodes/%s/drain" % sh["id"])[1]["state"],
                             "draining")
            self.assertEqual(edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])[1]["shields"],
                             [])
            self.assertEqual(op.call("PATCH", "/v1/nodes/" + sh["id"], {"state": "active"})[0],
                             200)
            self.assertEqual(edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])[1]["shields"],
                             ["127.0.0.1:18300"])
            self.assertEqual(op.call("PATCH", "/v1/nodes/" + sh["id"], {"role": "edge"})[0], 422)
            # Removal ends the credential.
            self.assertEqual(op.call("DELETE", "/v1/nodes/" + sh["id"])[0], 204)
            self.assertEqual(shield_api.call("GET", "/v1/nodes/%s/config" % sh["id"])[0], 401)
            self.assertEqual(op.call("GET", "/v1/nodes/" + sh["id"])[0], 404)

    def test_playback_uses_healthy_edges_and_edge_activity_renews_leases(self):
        with Control(self.dir, *FAST) as cp:
            op = cp.api().login(*Control.OPERATOR)
            self.assertEqual(op.call("POST", "/v1/shows", {
                "id": "s1", "title": "S", "asset_id": "s1-v1", "state": "published"})[0], 201)
            dev = op.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]
            # No edge provisioned: playback.edge_url.
            st, play, _ = op.call("POST", "/v1/playback", {"show_id": "s1", "device_id": dev})
            self.assertTrue(play["hls_url"].startswith("http://127.0.0.1:8080/t/"))
            ed = self.provision(op, "edge", "edge-1", "http://edge-1.example:8080")
            edge_api = Api(cp.port, ed["credential"])
            # Provisioned but never heard from: no edge to send viewers to.
            st, doc, r = op.call("POST", "/v1/playback", {"show_id": "s1", "device_id": dev})
            self.assertEqual((st, doc["error"]), (503, "no edge available"))
            self.assertEqual(edge_api.call("POST", "/v1/nodes/%s/heartbeat" % ed["id"], {})[0],
                             200)
            st, play, _ = op.call("POST", "/v1/playback", {"show_id": "s1", "device_id": dev})
            self.assertEqual(st, 200)
            self.assertTrue(play["hls_url"].startswith("http://edge-1.example:8080/t/"))
            claims = jwt.decode(play["token"], options={"verify_signature": False})
            lease = play["lease_id"]
            # The edge reports the device's segment requests: the lease outlives its TTL.
            act = [{"sub": claims["sub"], "dev": claims["tmt_dev"], "lease": lease}]
            for _ in range(5):
                time.sleep(1)
                st, doc, _ = edge_api.call("POST", "/v1/nodes/%s/heartbeat" % ed["id"],
                                           {"activity": act})
                self.assertEqual((st, doc["renewed"]), (200, 1))
            st, doc, _ = op.call("GET", "/v1/playback")
            self.assertEqual([x["lease_id"] for x in doc["leases"]], [lease])
            # A report with another pseudonym or device renews nothing.
            bad = [{"sub": "someone-else", "dev": claims["tmt_dev"], "lease": lease},
                   {"sub": claims["sub"], "dev": "d-other", "lease": lease},
                   {"sub": claims["sub"], "dev": claims["tmt_dev"], "lease": "l-unknown"}]
            st, doc, _ = edge_api.call("POST", "/v1/nodes/%s/heartbeat" % ed["id"],
                                       {"activity": bad})
            self.assertEqual((doc["renewed"], doc["stale"]), (0, 3))
            # Once reports stop the lease ends and enters the revocation list edges fetch.
            time.sleep(4)
            st, doc, _ = op.call("GET", "/v1/playback")
            self.assertEqual(doc["leases"], [])
            edge_api.call("POST", "/v1/nodes/%s/heartbeat" % ed["id"], {})
            time.sleep(5.5)  # the sweep runs every 5 s
            cfg = edge_api.call("GET", "/v1/nodes/%s/config" % ed["id"])[1]
            self.assertIn(lease, cfg["revoked"])


class ManagedShield(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tmt-nodes-shield-")
        cls.root = os.path.join(cls.dir, "mezz")
        make_asset(cls.root, "a1", seconds=5, rungs=[("180p", 320, 180, 300000)])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_shield_takes_its_config_and_survives_the_control_plane(self):
        cpdir = os.path.join(self.dir, "cp")
        os.makedirs(cpdir)
        cport = free_port()
        with Control(cpdir, *FAST, "server.listen=127.0.0.1:%d" % cport) as cp:
            op = cp.api().login(*Control.OPERATOR)
            sport = free_port()
            sh = op.call("POST", "/v1/nodes", {"role": "shield", "name": "s1",
                                               "public_url": "http://127.0.0.1:%d" % sport})[1]
            cred = os.path.join(self.dir, "shield.cred")
            with open(cred, "w") as f:
                f.write(sh["credential"] + "\n")
            fill = Api(cp.port, sh["credential"]).call(
                "GET", "/v1/nodes/%s/config" % sh["id"])[1]["fill_key"]
            state = os.path.join(self.dir, "shield.state")
            sets = ("node.control_url=http://127.0.0.1:%d" % cport, "node.id=" + sh["id"],
                    "node.credential_file=" + cred, "node.state_file=" + state)
            auth = "Authorization: Bearer %s\r\n" % fill
            with Shield(self.root, os.path.join(self.dir, "c"), *sets) as s:
                s.wait_line('msg="config applied"')
                self.assertEqual(http_get(s.port, "/v/a1/master.m3u8", auth).status, 200)
                self.assertIn(http_get(s.port, "/v/a1/master.m3u8").status, (401, 403))
                self.assertIn(http_get(s.port, "/v/a1/master.m3u8",
                                       "Authorization: Bearer wrong-key-123456\r\n").status,
                              (401, 403))
                self.assertTrue(wait_for(
                    lambda: s.metrics().get("tmt_node_heartbeats_total", 0) >= 2))
                self.assertEqual(s.metrics()["tmt_node_control_up"], 1)
                self.assertEqual(op.call("GET", "/v1/nodes/" + sh["id"])[1]["health"], "healthy")
                # Pushed settings: a layer over the shield's file, applied by a reload.
                origin = "Origin: https://pushed.example\r\n"
                self.assertEqual(http_get(s.port, "/v/a1/master.m3u8", auth + origin)
                                 .header("access-control-allow-origin"), "*")
                for bad in ({"node.id": "x"}, {"http.cors_origin": "a;b"}, {"http": "x"},
                            {"http.cors_origin": 5}):
                    self.assertEqual(op.call("PATCH", "/v1/nodes/" + sh["id"],
                                             {"settings": bad})[0], 422, bad)
                st, doc, r = op.call("PATCH", "/v1/nodes/" + sh["id"], {"settings": {
                    "http.cors_origin": "https://pushed.example", "log.level": "info"}})
                self.assertEqual(st, 200, r.body)
                self.assertTrue(wait_for(lambda: http_get(
                    s.port, "/v/a1/master.m3u8", auth + origin).header(
                    "access-control-allow-origin") == "https://pushed.example"))
                # A push the shield cannot load changes nothing there (and says why).
                op.call("PATCH", "/v1/nodes/" + sh["id"], {"settings": {
                    "http.cors_origin": "https://pushed.example", "cache.ram_size": "lots"}})
                j = s.wait_line("reload rejected")
                self.assertEqual(http_get(s.port, "/v/a1/master.m3u8", auth + origin)
                                 .header("access-control-allow-origin"), "https://pushed.example")
                op.call("PATCH", "/v1/nodes/" + sh["id"], {"settings": {
                    "http.cors_origin": "https://pushed.example"}})
                i = s.wait_line("settings pushed by the control plane changed", start=j + 1)
                s.wait_line('msg="reloaded"', start=i)
                # The control plane goes away: the shield keeps serving and says so.
                cp.proc.send_signal(signal.SIGKILL)
                cp.proc.wait()
                self.assertTrue(wait_for(lambda: s.metrics()["tmt_node_control_up"] == 0))
                s.wait_line("control plane unreachable")
                self.assertEqual(http_get(s.port, "/v/a1/180p/1.m4s", auth).status, 200)
            # A restart while it is still away serves with the kept config.
            with Shield(self.root, os.path.join(self.dir, "c"), *sets) as s:
                s.wait_line("serving with the config kept in the state file")
                self.assertEqual(http_get(s.port, "/v/a1/master.m3u8", auth).status, 200)
                # The pushed settings apply from the start.
                s.wait_line("settings pushed by the control plane applied")
                self.assertEqual(http_get(s.port, "/v/a1/master.m3u8", auth + origin)
                                 .header("access-control-allow-origin"), "https://pushed.example")
                self.assertIn(http_get(s.port, "/v/a1/master.m3u8").status, (401, 403))
                # And it finds the control plane when it is back.
                with Control(cpdir, *FAST, "server.listen=127.0.0.1:%d" % cport, operator=None):
                    self.assertTrue(wait_for(lambda: s.metrics()["tmt_node_control_up"] == 1,
                                             timeout=15))
                    s.wait_line("control plane reachable again")


if __name__ == "__main__":
    unittest.main()
