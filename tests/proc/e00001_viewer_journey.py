"""A viewer's whole journey through the provisioned system (control plane, shield, edge): register,
log in, add devices, list the published catalog (drafts stay hidden), start playback, follow the
router URL's 302 to the edge and play the whole asset, HLS and DASH, with ffmpeg (no error line,
every second of the media). The device limit as a viewer meets it: while two devices play (ffmpeg
at the media's pace), a third is refused with 409 and the two leases; when one stops
(DELETE /v1/playback/{lease}) the third is admitted at once, and when a device goes quiet its
lease runs out, the slot frees, and the edge refuses the quiet device's token."""
import os
import shutil
import tempfile
import time
import unittest

from harness import Api, http_get, http_request
from harness.media import make_asset
from harness.system import System, ffmpeg_finish, ffmpeg_play, ffmpeg_start, wait_for

LEASE_TTL = 8


class ViewerJourney(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-viewer-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=12,
                   rungs=[("270p", 480, 270, 500000), ("180p", 320, 180, 300000)])
        make_asset(self.root, "other-v1", seconds=8, rungs=[("180p", 320, 180, 300000)])
        self.sys = System(self.dir)

    def tearDown(self):
        self.sys.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def follow(self, router_url):
        """GET a router URL on the control plane: the 302's Location (checked to be the edge)."""
        prefix = "http://127.0.0.1:%d" % self.sys.cport
        self.assertTrue(router_url.startswith(prefix + "/r/"), router_url)
        r = http_request(self.sys.cport, "GET", router_url[len(prefix):])
        self.assertEqual(r.status, 302, r.body)
        loc = r.header("location")
        self.assertTrue(loc.startswith(self.edge.url("/t/")), (loc, self.edge.port))
        return loc

    def test_viewer_journey(self):
        s = self.sys
        s.control("devices.lease_ttl=%ds" % LEASE_TTL)
        shield = s.shield(self.root)
        self.edge = edge = s.edge("edge-1")
        s.wait_edge_ready(edge)
        op = s.op
        for show in ({"id": "film", "title": "The Film", "asset_id": "film-v1",
                      "state": "published", "duration": 12, "genres": ["drama"]},
                     {"id": "other", "title": "Another", "asset_id": "other-v1",
                      "state": "published"},
                     {"id": "soon", "title": "Coming soon", "asset_id": "other-v1"}):
            st, _, r = op.call("POST", "/v1/shows", show)
            self.assertEqual(st, 201, r.body)

        # Register, log in, add devices.
        anon = s.cp.api()
        st, me, r = anon.call("POST", "/v1/users", {"email": "Ana@Example.com",
                                                    "password": "correct-horse-1",
                                                    "display_name": "Ana"})
        self.assertEqual(st, 201, r.body)
        self.assertEqual((me["email"], me["role"]), ("ana@example.com", "viewer"))
        self.assertEqual(anon.call("POST", "/v1/sessions", {
            "email": "ana@example.com", "password": "wrong-horse-1"})[0], 401)
        v = anon.login("ana@example.com", "correct-horse-1")
        self.assertEqual(v.call("GET", "/v1/users/me")[1]["id"], me["id"])
        self.assertEqual(v.call("GET", "/v1/nodes")[0], 403)
        devs = []
        for name, kind in (("Living room", "tv"), ("Phone", "phone"), ("Laptop", "computer")):
            st, d, r = v.call("POST", "/v1/devices", {"name": name, "type": kind})
            self.assertEqual(st, 201, r.body)
            devs.append(d["id"])
        listed = v.call("GET", "/v1/devices")[1]["devices"]
        # (Oldest first, to the millisecond of the id: these three may share one.)
        self.assertEqual(sorted((d["id"], d["active"]) for d in listed),
                         sorted((d, False) for d in devs))

        # The catalog: published shows only; a draft does not exist for a viewer.
        st, cat, _ = v.call("GET", "/v1/shows")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(x["id"] for x in cat["shows"]), ["film", "other"])
        self.assertEqual([x["id"] for x in v.call("GET", "/v1/shows?genre=DRAMA")[1]["shows"]],
                         ["film"])
        self.assertEqual(v.call("GET", "/v1/shows/soon")[0], 404)
        self.assertEqual(v.call("POST", "/v1/playback", {"show_id": "soon",
                                                         "device_id": devs[0]})[0], 404)
        film = v.call("GET", "/v1/shows/film")[1]
        # The catalog's router URL identifies the media but has no ticket: it does not play.
        r = http_request(s.cport, "GET", film["hls_url"].split(str(s.cport), 1)[1])
        self.assertEqual(r.status, 403)

        # Playback on the TV: the router URL sends the player to the edge with a fresh token.
        st, p1, r = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": devs[0]})
        self.assertEqual(st, 201, r.body)
        self.assertTrue(p1["hls_url"].startswith(edge.url("/t/")), p1["hls_url"])
        hls = self.follow(p1["router_hls_url"])
        self.assertTrue(hls.endswith("/v/film-v1/master.m3u8"), hls)
        before = shield.metrics().get('tmt_shield_requests_total{result="miss"}', 0)
        ok, err, secs = ffmpeg_play(hls)
        self.assertTrue(ok, err)
        self.assertGreaterEqual(secs, 11.5, "HLS played %.2f s of 12" % secs)
        self.assertGreater(shield.metrics().get('tmt_shield_requests_total{result="miss"}', 0),
                           before)
        dash = self.follow(p1["router_dash_url"])
        self.assertTrue(dash.endswith("/v/film-v1/manifest.mpd"), dash)
        ok, err, secs = ffmpeg_play(dash)
        self.assertTrue(ok, err)
        self.assertGreaterEqual(secs, 11.5, "DASH played %.2f s of 12" % secs)
        # The second play of the same media came from the edge's cache.
        m = edge.metrics()
        hits = sum(val for k, val in m.items()
                   if k.startswith("tmt_edge_requests_total") and "hit_" in k)
        self.assertGreater(hits, 0, m)

        # Two devices play at the media's pace; a third is refused while they do.
        st, p2, r = v.call("POST", "/v1/playback", {"show_id": "other", "device_id": devs[1]})
        self.assertEqual(st, 201, r.body)
        tv = ffmpeg_start(self.follow(p1["router_hls_url"]))
        phone = ffmpeg_start(self.follow(p2["router_dash_url"]))
        leases = {p1["lease_id"]: devs[0], p2["lease_id"]: devs[1]}
        try:
            st, doc, r = v.call("POST", "/v1/playback", {"show_id": "film",
                                                         "device_id": devs[2]})
            self.assertEqual(st, 409, r.body)
            self.assertEqual(doc["error"], "device limit")
            self.assertEqual({(x["lease_id"], x["device_id"]) for x in doc["active_devices"]},
                             set(leases.items()))
            active = {d["id"]: d["active"] for d in v.call("GET", "/v1/devices")[1]["devices"]}
            self.assertEqual(active, {devs[0]: True, devs[1]: True, devs[2]: False})
            # The app heartbeats while it plays (as docs/api.md asks).
            while phone.poll() is None:
                for lid in leases:
                    self.assertEqual(v.call("POST", "/v1/playback/%s/heartbeat" % lid)[0], 200)
                time.sleep(1)
            ok, err, secs = ffmpeg_finish(phone)
            self.assertTrue(ok, err)
            self.assertGreaterEqual(secs, 7.5)
            # The phone stops: its slot is free at once, and the laptop starts.
            self.assertEqual(v.call("DELETE", "/v1/playback/" + p2["lease_id"])[0], 204)
            del leases[p2["lease_id"]]
            st, p3, r = v.call("POST", "/v1/playback", {"show_id": "film",
                                                        "device_id": devs[2]})
            self.assertEqual(st, 201, r.body)
            leases[p3["lease_id"]] = devs[2]
            self.assertEqual(v.call("POST", "/v1/playback", {"show_id": "other",
                                                             "device_id": devs[1]})[0], 409)
            while tv.poll() is None:
                for lid in leases:
                    self.assertEqual(v.call("POST", "/v1/playback/%s/heartbeat" % lid)[0], 200)
                time.sleep(1)
            ok, err, secs = ffmpeg_finish(tv)
            self.assertTrue(ok, err)
            self.assertGreaterEqual(secs, 11.5)
        finally:
            for p in (tv, phone):
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        laptop = self.follow(p3["router_hls_url"])
        self.assertEqual(http_get(edge.port, laptop[len(edge.url("")):]).status, 200)

        # The TV goes quiet (no segments, no heartbeats): its lease runs out, the phone gets
        # the slot, and the edge refuses the TV's token once the revocation reaches it.
        t0 = time.monotonic()

        def phone_plays():
            v.call("POST", "/v1/playback/%s/heartbeat" % p3["lease_id"])
            st, doc, _ = v.call("POST", "/v1/playback", {"show_id": "other",
                                                         "device_id": devs[1]})
            return doc if st == 201 else None

        p4 = wait_for(phone_plays, timeout=4 * LEASE_TTL + 20, step=1.0)
        self.assertTrue(p4, "the TV's lease never ran out")
        self.assertGreaterEqual(time.monotonic() - t0, LEASE_TTL - 3)
        live = {x["lease_id"] for x in v.call("GET", "/v1/playback")[1]["leases"]}
        self.assertEqual(live, {p3["lease_id"], p4["lease_id"]})
        tv_path = "/t/%s/v/film-v1/270p/1.m4s" % p1["token"]
        self.assertTrue(wait_for(lambda: http_get(edge.port, tv_path).status == 403, 20),
                        "the edge still plays an ended lease's token")
        self.assertEqual(http_get(edge.port, tv_path).header("x-tomato-reason"), "revoked lease")
        # The ended lease's router ticket no longer redirects.
        r = http_request(s.cport, "GET",
                         p1["router_hls_url"].split(str(s.cport), 1)[1])
        self.assertEqual(r.status, 403)
        ok, err, secs = ffmpeg_play(self.follow(p4["router_hls_url"]))
        self.assertTrue(ok, err)
        self.assertGreaterEqual(secs, 7.5)
        # Logging out ends the session.
        self.assertEqual(v.call("DELETE", "/v1/sessions/current")[0], 204)
        self.assertEqual(v.call("GET", "/v1/devices")[0], 401)
        for p in s.procs:
            self.assertEqual(p.stop(timeout=20), 0, p.name)
        # The edge logged what it served, without the tokens.
        with open(s.access_log("edge-1")) as f:
            log = f.read()
        self.assertIn("/v/film-v1/", log)
        self.assertIn("/v/other-v1/", log)
        for tok in (p1["token"], p3["token"], p4["token"]):
            self.assertNotIn(tok.split(".")[2], log)


if __name__ == "__main__":
    unittest.main()
