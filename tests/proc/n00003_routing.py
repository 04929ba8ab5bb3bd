"""Routing by the control plane: coverage zones send clients to their own edge group, an asset
sticks to one edge of a group (rendezvous), clients no zone places go to the default group, an
edge group whose edges stop heartbeating is left for the others within the health timeout,
X-Forwarded-For counts only from a trusted proxy, and /v1/route says what was chosen and why.
Reloading the zone file changes the routing without a restart; a bad one changes nothing."""
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from harness import Api, Control

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s", "devices.lease_ttl=3s")

ZONES = {
    "coverageZones": {
        "east": {"network": ["10.1.0.0/16"], "network6": ["2001:db8:1::/48"],
                 "coordinates": {"latitude": 40.7, "longitude": -74.0}},
        "west": {"network": ["10.2.0.0/16"], "network6": [],
                 "coordinates": {"latitude": 37.8, "longitude": -122.4}},
    }
}


class Routing(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-routing-")
        self.zones = os.path.join(self.dir, "czf.json")
        with open(self.zones, "w") as f:
            json.dump(ZONES, f)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_zones_default_health_and_proxies(self):
        with Control(self.dir, *FAST, "geo.zones_file=" + self.zones, "geo.default_group=east",
                     "server.trusted_proxies=127.0.0.1") as cp:
            op = cp.api().login(*Control.OPERATOR)
            edges = {}
            for name, region, port in (("east-1", "east", 18081), ("east-2", "east", 18082),
                                       ("west-1", "west", 18083)):
                st, doc, r = op.call("POST", "/v1/nodes", {
                    "role": "edge", "name": name, "region": region,
                    "public_url": "http://127.0.0.1:%d" % port})
                self.assertEqual(st, 201, r.body)
                edges[name] = (doc["id"], Api(cp.port, doc["credential"]))

            def beat(*names):
                for n in names:
                    nid, api = edges[n]
                    self.assertEqual(api.call("POST", "/v1/nodes/%s/heartbeat" % nid, {})[0], 200)

            beat("east-1", "east-2", "west-1")

            def route(ip, asset="a1"):
                st, doc, r = op.call("GET", "/v1/route?ip=%s&asset=%s" % (ip, asset))
                self.assertEqual(st, 200, r.body)
                return doc

            d = route("10.2.3.4")
            self.assertEqual((d["how"], d["group"], d["edge"]["name"]), ("zone", "west", "west-1"))
            d = route("2001:db8:1::5")
            self.assertEqual((d["how"], d["group"]), ("zone", "east"))
            d = route("192.0.2.1")
            self.assertEqual((d["how"], d["group"], d["zone_group"]), ("default", "east", None))
            d = route("not-an-ip")
            self.assertEqual((d["client_parsed"], d["group"]), (False, "east"))
            # An asset sticks to one east edge; assets spread over both.
            names = {route("10.1.0.%d" % i, "a1")["edge"]["name"] for i in range(1, 20)}
            self.assertEqual(len(names), 1)
            spread = {route("10.1.0.1", "asset%d" % i)["edge"]["name"] for i in range(40)}
            self.assertEqual(spread, {"east-1", "east-2"})
            # Playback follows the same choice, for the address a trusted proxy forwards.
            self.assertEqual(op.call("POST", "/v1/shows", {
                "id": "s", "title": "S", "asset_id": "a1", "state": "published"})[0], 201)
            dev = op.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]

            def play(xff):
                st, doc, r = op.call("POST", "/v1/playback", {"show_id": "s", "device_id": dev},
                                     headers="X-Forwarded-For: %s\r\n" % xff)
                self.assertIn(st, (200, 201), r.body)
                return doc["hls_url"]

            self.assertTrue(play("198.51.100.7, 10.2.9.9").startswith("http://127.0.0.1:18083/"))
            east = play("10.1.7.7")
            self.assertTrue(east.startswith("http://127.0.0.1:1808"))
            self.assertFalse(east.startswith("http://127.0.0.1:18083/"))
            # A forwarded address that does not parse goes to the default group, and is counted.
            self.assertEqual(play("dead::beef::1").split("/")[2], east.split("/")[2])
            m = cp.metrics()
            self.assertEqual(m['tmt_control_routes_total{how="zone"}'], 2)
            self.assertEqual(m['tmt_control_routes_total{how="default"}'], 1)
            self.assertEqual(m['tmt_control_routes_total{how="none"}'], 0)
            self.assertEqual(m["tmt_control_route_unparsable_clients_total"], 1)
            # The west edges go silent: west clients go to the nearest group that can serve.
            for _ in range(4):
                time.sleep(1)
                beat("east-1", "east-2")
            d = route("10.2.3.4")
            self.assertEqual(d["group"], "east")
            self.assertEqual(d["zone_group"], "west")
            beat("west-1")
            self.assertEqual(route("10.2.3.4")["group"], "west")
            # A new zone file applies on reload; a bad one changes nothing.
            zones = json.loads(json.dumps(ZONES))
            zones["coverageZones"]["west"]["network"].append("10.9.0.0/16")
            with open(self.zones, "w") as f:
                json.dump(zones, f)
            cp.signal(signal.SIGHUP)
            cp.wait_line("coverage zones loaded", start=len(cp.lines) - 1)
            self.assertEqual(route("10.9.1.1")["how"], "zone")
            with open(self.zones, "w") as f:
                f.write('{"coverageZones": {"x": {"network": ["10.3.0.0/33"]}}}')
            i = len(cp.lines)
            cp.signal(signal.SIGHUP)
            cp.wait_line("coverage zones not reloaded", start=i)
            self.assertEqual(route("10.9.1.1")["how"], "zone")

    def test_untrusted_peer_cannot_choose_its_edge(self):
        with Control(self.dir, *FAST, "geo.zones_file=" + self.zones,
                     "geo.default_group=east") as cp:
            op = cp.api().login(*Control.OPERATOR)
            for name, region in (("east-1", "east"), ("west-1", "west")):
                st, doc, _ = op.call("POST", "/v1/nodes", {
                    "role": "edge", "name": name, "region": region,
                    "public_url": "http://%s.example:8080" % name})
                Api(cp.port, doc["credential"]).call("POST", "/v1/nodes/%s/heartbeat" % doc["id"],
                                                     {})
            st, doc, _ = op.call("GET", "/v1/route", headers="X-Forwarded-For: 10.2.3.4\r\n")
            self.assertEqual((doc["client"], doc["group"]), ("127.0.0.1", "east"))


if __name__ == "__main__":
    unittest.main()
