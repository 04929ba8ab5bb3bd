"""tomato-control's /v1 API driven over HTTP as viewers and operators use it: the viewer flow
(register, login, devices, shows, playback, heartbeat, stop), the operator flow (shows, users,
keys), the limit of two playing devices (also under 50 parallel starts), router tickets, the
tokens' claims (decoded with python3-jwt), rate limits, and every kind of bad input answered
with its status and a JSON error body."""
import base64
import json
import os
import shutil
import tempfile
import threading
import time
import unittest

import jwt

from harness import Api, Control, http_request

PUB = "http://127.0.0.1:8999"
EDGE = "http://edge.example:8080"


def b64json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class ControlApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tmt-control-")
        cls.log = os.path.join(cls.dir, "access.log")
        cls.cp = Control(cls.dir, "server.public_url=" + PUB, "playback.edge_url=" + EDGE,
                         "auth.max_attempts_per_address=100000", "auth.max_failures_per_account=3",
                         "playback.token_margin=2h", "log.access_log=" + cls.log).__enter__()
        cls.anon = cls.cp.api()
        cls.op = cls.anon.login(*Control.OPERATOR)
        st, doc, _ = cls.op.call("POST", "/v1/shows", {
            "id": "film1", "title": "The Tomato Harvest", "description": "A farm documentary",
            "genres": ["documentary"], "languages": ["en", "pt-BR"], "duration": 600,
            "asset_id": "film1-v1", "state": "published"})
        assert st == 201, doc

    @classmethod
    def tearDownClass(cls):
        cls.cp.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def viewer(self, email, password="viewer-password"):
        st, doc, r = self.anon.call("POST", "/v1/users", {
            "email": email, "password": password, "display_name": email.split("@")[0]})
        self.assertEqual(st, 201, r.body)
        return self.anon.login(email, password), doc

    def device(self, api, name, kind="tv"):
        st, doc, r = api.call("POST", "/v1/devices", {"name": name, "type": kind})
        self.assertEqual(st, 201, r.body)
        return doc["id"]

    def play(self, api, dev, show="film1"):
        return api.call("POST", "/v1/playback", {"show_id": show, "device_id": dev})

    def assert_error(self, res, status, error=None):
        st, doc, r = res
        self.assertEqual(st, status, r.body)
        self.assertIsNotNone(doc, r.body)
        self.assertIsInstance(doc.get("error"), str)
        self.assertIsInstance(doc.get("detail"), str)
        if error is not None:
            self.assertEqual(doc["error"], error)

    # ---- the viewer flow ----

    def test_viewer_flow(self):
        v, me = self.viewer("Viewer.One@Example.com")
        self.assertEqual(me["email"], "viewer.one@example.com")
        self.assertEqual(me["role"], "viewer")
        self.assertNotIn("pw", me)
        st, doc, _ = v.call("GET", "/v1/users/me")
        self.assertEqual((st, doc["id"]), (200, me["id"]))
        st, doc, _ = v.call("GET", "/v1/shows")
        self.assertEqual(st, 200)
        self.assertIn("film1", [s["id"] for s in doc["shows"]])
        film = [s for s in doc["shows"] if s["id"] == "film1"][0]
        self.assertEqual(film["hls_url"], PUB + "/r/film1-v1/master.m3u8")
        d1 = self.device(v, "living room", "tv")
        st, doc, r = self.play(v, d1)
        self.assertEqual(st, 201, r.body)
        for k in ("lease_id", "expires_at", "edge", "hls_url", "dash_url", "router_hls_url",
                  "router_dash_url", "token_expires_at"):
            self.assertIn(k, doc)
        tok = doc["token"]
        self.assertEqual(doc["hls_url"], "%s/t/%s/v/film1-v1/master.m3u8" % (EDGE, tok))
        self.assertEqual(doc["dash_url"], "%s/t/%s/v/film1-v1/manifest.mpd" % (EDGE, tok))
        self.assertTrue(doc["router_hls_url"].startswith(PUB + "/r/film1-v1/master.m3u8?ticket="))
        lease = doc["lease_id"]
        st, doc, _ = v.call("POST", "/v1/playback/%s/heartbeat" % lease)
        self.assertEqual((st, doc["lease_id"]), (200, lease))
        st, doc, _ = v.call("GET", "/v1/playback")
        self.assertEqual([x["lease_id"] for x in doc["leases"]], [lease])
        st, doc, _ = v.call("GET", "/v1/devices")
        self.assertEqual([(d["id"], d["active"]) for d in doc["devices"]], [(d1, True)])
        st, _, _ = v.call("DELETE", "/v1/playback/%s" % lease)
        self.assertEqual(st, 204)
        self.assert_error(v.call("POST", "/v1/playback/%s/heartbeat" % lease), 404)
        st, doc, _ = v.call("GET", "/v1/devices")
        self.assertEqual(doc["devices"][0]["active"], False)
        st, _, _ = v.call("DELETE", "/v1/sessions/current")
        self.assertEqual(st, 204)
        self.assert_error(v.call("GET", "/v1/users/me"), 401, "unauthorized")

    def test_token_claims(self):
        v, me = self.viewer("claims@example.com")
        d = self.device(v, "phone", "phone")
        st, doc, _ = self.play(v, d)
        self.assertEqual(st, 201)
        tok = doc["token"]
        hdr = jwt.get_unverified_header(tok)
        self.assertEqual(hdr["alg"], "HS256")
        self.assertEqual(hdr["typ"], "JWT")
        self.assertTrue(hdr["kid"])
        c = jwt.decode(tok, options={"verify_signature": False})
        self.assertEqual(c["iss"], "tomato-control")
        self.assertEqual(c["cdniv"], 1)
        self.assertEqual(c["cdniuc"], "regex:^/v/film1\\-v1/")
        self.assertEqual(c["tmt_dev"], d)
        self.assertEqual(c["tmt_lease"], doc["lease_id"])
        # duration 600 s + margin 2 h
        self.assertEqual(c["exp"] - c["iat"], 600 + 7200)
        # The subject is a pseudonym: stable per user, never the id or the email.
        self.assertNotIn(me["id"], tok)
        self.assertNotIn(me["id"], json.dumps(c))
        self.assertNotIn("claims", json.dumps(c))
        st, doc2, _ = self.play(v, d)
        self.assertEqual(st, 200)
        self.assertEqual(doc2["lease_id"], doc["lease_id"])
        self.assertEqual(jwt.decode(doc2["token"], options={"verify_signature": False})["sub"],
                         c["sub"])
        v2, _ = self.viewer("claims2@example.com")
        st, doc3, _ = self.play(v2, self.device(v2, "pc", "computer"))
        self.assertNotEqual(jwt.decode(doc3["token"], options={"verify_signature": False})["sub"],
                            c["sub"])

    # ---- the device limit ----

    def test_device_limit(self):
        v, _ = self.viewer("family@example.com")
        d = [self.device(v, "dev%d" % i) for i in range(3)]
        st, a, _ = self.play(v, d[0])
        self.assertEqual(st, 201)
        st, b, _ = self.play(v, d[1])
        self.assertEqual(st, 201)
        st, doc, r = self.play(v, d[2])
        self.assertEqual(st, 409, r.body)
        self.assertEqual(doc["error"], "device limit")
        self.assertEqual(sorted(x["device_id"] for x in doc["active_devices"]), sorted(d[:2]))
        self.assertEqual({x["device_name"] for x in doc["active_devices"]}, {"dev0", "dev1"})
        # A device that already plays renews its own lease.
        st, again, _ = self.play(v, d[0])
        self.assertEqual((st, again["lease_id"]), (200, a["lease_id"]))
        # Stopping one frees its slot.
        self.assertEqual(v.call("DELETE", "/v1/playback/" + b["lease_id"])[0], 204)
        st, c, _ = self.play(v, d[2])
        self.assertEqual(st, 201)
        # Another user cannot touch these leases.
        other, _ = self.viewer("stranger@example.com")
        self.assert_error(other.call("POST", "/v1/playback/%s/heartbeat" % c["lease_id"]), 404)
        self.assert_error(other.call("DELETE", "/v1/playback/" + c["lease_id"]), 404)
        self.assert_error(other.call("DELETE", "/v1/devices/" + d[0]), 404)
        # Deleting a playing device ends its lease.
        self.assertEqual(v.call("DELETE", "/v1/devices/" + d[2])[0], 204)
        st, doc, _ = v.call("GET", "/v1/playback")
        self.assertEqual([x["lease_id"] for x in doc["leases"]], [a["lease_id"]])

    def test_parallel_starts_leave_two_leases(self):
        v, _ = self.viewer("crowd@example.com")
        devs = [self.device(v, "dev%d" % i) for i in range(5)]
        results = []
        lock = threading.Lock()
        go = threading.Event()

        def start(i):
            go.wait()
            st, doc, _ = self.play(v, devs[i % 5])
            with lock:
                results.append((st, devs[i % 5], doc.get("lease_id")))

        threads = [threading.Thread(target=start, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 50)
        ok = [(dev, lease) for st, dev, lease in results if st in (200, 201)]
        self.assertTrue(all(st in (200, 201, 409) for st, _, _ in results), results)
        self.assertEqual(len({dev for dev, _ in ok}), 2, results)
        self.assertEqual(len({lease for _, lease in ok}), 2, results)
        self.assertEqual(sum(1 for st, _, _ in results if st == 201), 2)
        st, doc, _ = v.call("GET", "/v1/playback")
        self.assertEqual(len(doc["leases"]), 2)

    def test_registered_device_cap(self):
        v, _ = self.viewer("gadgets@example.com")
        for i in range(10):
            self.device(v, "g%d" % i, "other")
        self.assert_error(v.call("POST", "/v1/devices", {"name": "one more"}), 409)
        self.assert_error(v.call("POST", "/v1/devices", {"name": "x", "type": "toaster"}), 422)

    # ---- the router ----

    def test_router(self):
        v, _ = self.viewer("router@example.com")
        st, doc, _ = self.play(v, self.device(v, "tv"))
        path = doc["router_hls_url"][len(PUB):]
        r = http_request(self.cp.port, "GET", path)
        self.assertEqual(r.status, 302)
        loc = r.header("location")
        self.assertTrue(loc.startswith(EDGE + "/t/"), loc)
        self.assertTrue(loc.endswith("/v/film1-v1/master.m3u8"), loc)
        tok = loc[len(EDGE + "/t/"):-len("/v/film1-v1/master.m3u8")]
        c = jwt.decode(tok, options={"verify_signature": False})
        self.assertEqual(c["tmt_lease"], doc["lease_id"])
        dash = doc["router_dash_url"][len(PUB):]
        r = http_request(self.cp.port, "GET", dash)
        self.assertTrue(r.header("location").endswith("/v/film1-v1/manifest.mpd"))
        # Tampered, for another asset, missing.
        bad = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        self.assertEqual(http_request(self.cp.port, "GET", bad).status, 403)
        other = path.replace("/r/film1-v1/", "/r/film2-v1/")
        self.assertEqual(http_request(self.cp.port, "GET", other).status, 403)
        self.assertEqual(http_request(self.cp.port, "GET", "/r/film1-v1/master.m3u8").status,
                         403)
        # An ended lease's ticket no longer routes.
        self.assertEqual(v.call("DELETE", "/v1/playback/" + doc["lease_id"])[0], 204)
        r = http_request(self.cp.port, "GET", path)
        self.assertEqual(r.status, 403)
        self.assertEqual(json.loads(r.body)["error"], "lease ended")

    # ---- the operator flow ----

    def test_operator_catalog(self):
        op = self.op
        st, doc, r = op.call("POST", "/v1/shows", {"title": "Seeds", "genres": ["drama"],
                                                   "languages": ["es"], "duration": 5400.5})
        self.assertEqual(st, 201, r.body)
        sid = doc["id"]
        self.assertEqual(doc["state"], "draft")
        self.assertIsNone(doc["hls_url"])
        self.assertEqual(r.header("location"), "/v1/shows/" + sid)
        v, _ = self.viewer("catalog@example.com")
        # Drafts are invisible to viewers.
        self.assert_error(v.call("GET", "/v1/shows/" + sid), 404)
        st, doc, _ = v.call("GET", "/v1/shows?q=seeds")
        self.assertEqual(doc["shows"], [])
        st, doc, _ = op.call("GET", "/v1/shows?q=seeds")
        self.assertEqual([s["id"] for s in doc["shows"]], [sid])
        # Published needs an asset.
        self.assert_error(op.call("PATCH", "/v1/shows/" + sid, {"state": "published"}), 409,
                          "no asset")
        self.assert_error(op.call("PATCH", "/v1/shows/" + sid, {"state": "processing"}), 422)
        st, doc, _ = op.call("PATCH", "/v1/shows/" + sid,
                             {"asset_id": "seeds-v1", "state": "published"})
        self.assertEqual((st, doc["state"]), (200, "published"))
        self.assertEqual(doc["dash_url"], PUB + "/r/seeds-v1/manifest.mpd")
        st, doc, _ = v.call("GET", "/v1/shows/" + sid)
        self.assertEqual((st, doc["title"]), (200, "Seeds"))
        # Search and filters.
        for q, want in (("q=SEED", [sid]), ("q=harvest", ["film1"]), ("genre=drama", [sid]),
                        ("language=pt-br", ["film1"]), ("q=farm%20doc", ["film1"]),
                        ("genre=drama&language=en", [])):
            st, doc, _ = v.call("GET", "/v1/shows?" + q)
            self.assertEqual(st, 200)
            self.assertEqual([s["id"] for s in doc["shows"] if s["id"] in (sid, "film1")], want,
                             q)
        self.assert_error(v.call("GET", "/v1/shows?state=draft"), 403)
        # Paging.
        st, doc, _ = v.call("GET", "/v1/shows?limit=1")
        self.assertEqual(len(doc["shows"]), 1)
        self.assertIsNotNone(doc["next"])
        st, doc2, _ = v.call("GET", "/v1/shows?limit=1&after=" + doc["next"])
        self.assertNotEqual(doc2["shows"][0]["id"], doc["shows"][0]["id"])
        self.assert_error(v.call("GET", "/v1/shows?limit=0"), 400)
        self.assert_error(v.call("GET", "/v1/shows?limit=1000"), 400)
        # PUT replaces every field.
        st, doc, _ = op.call("PUT", "/v1/shows/" + sid, {"title": "Seeds II",
                                                         "asset_id": "seeds-v2",
                                                         "state": "published"})
        self.assertEqual((st, doc["genres"], doc["asset_id"]), (200, [], "seeds-v2"))
        st, doc, _ = op.call("PUT", "/v1/shows/" + sid, {"title": "Seeds III"})
        self.assertEqual((st, doc["state"], doc["asset_id"], doc["duration"]),
                         (200, "draft", "", 0))
        self.assertEqual(op.call("PUT", "/v1/shows/" + sid, {
            "title": "Seeds II", "asset_id": "seeds-v2", "state": "published"})[0], 200)
        self.assert_error(op.call("GET", "/v1/shows?state=gone"), 400)
        self.assert_error(op.call("GET", "/v1/users?role=admin"), 400)
        self.assert_error(op.call("PUT", "/v1/shows/" + sid, {"state": "draft"}), 422,
                          "missing field")
        # Viewers cannot write.
        self.assert_error(v.call("POST", "/v1/shows", {"title": "Mine"}), 403, "forbidden")
        self.assert_error(v.call("PATCH", "/v1/shows/" + sid, {"title": "Mine"}), 403)
        self.assert_error(v.call("DELETE", "/v1/shows/" + sid), 403)
        # Playback follows the current asset; unpublished shows do not play.
        d = self.device(v, "tv")
        st, doc, _ = self.play(v, d, sid)
        self.assertIn("/v/seeds-v2/", doc["hls_url"])
        self.assertEqual(op.call("PATCH", "/v1/shows/" + sid, {"state": "draft"})[0], 200)
        self.assert_error(self.play(v, d, sid), 404)
        self.assertEqual(op.call("DELETE", "/v1/shows/" + sid)[0], 204)
        self.assert_error(op.call("GET", "/v1/shows/" + sid), 404)
        # Ids of one's own choosing; duplicates refused.
        self.assertEqual(op.call("POST", "/v1/shows", {"id": "dup_1", "title": "A"})[0], 201)
        self.assert_error(op.call("POST", "/v1/shows", {"id": "dup_1", "title": "B"}), 409)
        self.assert_error(op.call("POST", "/v1/shows", {"id": "has-dash", "title": "B"}), 422)

    def test_operator_users(self):
        op = self.op
        v, me = self.viewer("managed@example.com")
        self.assert_error(v.call("GET", "/v1/users"), 403, "forbidden")
        self.assert_error(v.call("GET", "/v1/users/" + me["id"]), 403)
        st, doc, _ = op.call("GET", "/v1/users/" + me["id"])
        self.assertEqual((st, doc["email"]), (200, "managed@example.com"))
        st, doc, _ = op.call("GET", "/v1/users?role=operator")
        self.assertEqual([u["email"] for u in doc["users"]], [Control.OPERATOR[0]])
        st, doc, _ = op.call("PATCH", "/v1/users/" + me["id"], {"display_name": "Renamed"})
        self.assertEqual((st, doc["display_name"]), (200, "Renamed"))
        self.assert_error(op.call("PATCH", "/v1/users/" + me["id"], {"role": "admin"}), 422)
        # The last operator stays.
        st, doc, _ = op.call("GET", "/v1/users/me")
        self.assert_error(op.call("PATCH", "/v1/users/" + doc["id"], {"role": "viewer"}), 409,
                          "last operator")
        self.assert_error(op.call("DELETE", "/v1/users/" + doc["id"]), 409, "last operator")
        # A password reset ends the user's sessions.
        st, _, _ = op.call("PATCH", "/v1/users/" + me["id"], {"password": "a-new-password"})
        self.assertEqual(st, 200)
        self.assert_error(v.call("GET", "/v1/users/me"), 401)
        v = self.anon.login("managed@example.com", "a-new-password")
        d = self.device(v, "tv")
        st, play, _ = self.play(v, d)
        self.assertEqual(st, 201)
        # Deletion ends sessions, devices and leases.
        self.assertEqual(op.call("DELETE", "/v1/users/" + me["id"])[0], 204)
        self.assert_error(v.call("GET", "/v1/users/me"), 401)
        self.assert_error(op.call("GET", "/v1/users/" + me["id"]), 404)
        self.assertEqual(self.anon.call("POST", "/v1/sessions", {
            "email": "managed@example.com", "password": "a-new-password"})[0], 401)
        r = http_request(self.cp.port, "GET", play["router_hls_url"][len(PUB):])
        self.assertEqual(r.status, 403)
        # Promote a viewer; then the first operator may step down.
        v2, me2 = self.viewer("second-op@example.com")
        self.assertEqual(op.call("PATCH", "/v1/users/" + me2["id"], {"role": "operator"})[0],
                         200)
        self.assertEqual(v2.call("GET", "/v1/users")[0], 200)
        self.assertEqual(v2.call("PATCH", "/v1/users/" + me2["id"], {"role": "viewer"})[0], 200)

    def test_keys(self):
        st, doc, _ = self.op.call("GET", "/v1/keys")
        self.assertEqual(st, 200)
        cur = [k for k in doc["keys"] if k["state"] == "current"]
        nxt = [k["kid"] for k in doc["keys"] if k["state"] == "next"]
        self.assertEqual((len(cur), len(nxt)), (1, 1))
        self.assertNotIn("secret", json.dumps(doc))
        v, _ = self.viewer("keys@example.com")
        d = self.device(v, "tv")
        st, before, _ = self.play(v, d)
        self.assertEqual(jwt.get_unverified_header(before["token"])["kid"], cur[0]["kid"])
        self.assert_error(v.call("POST", "/v1/keys/rotate"), 403)
        st, rot, _ = self.op.call("POST", "/v1/keys/rotate")
        self.assertEqual(st, 201)
        self.assertEqual(rot["previous"]["kid"], cur[0]["kid"])
        self.assertNotEqual(rot["kid"], cur[0]["kid"])
        # The key that was next signs now (nodes had it before it signed anything).
        self.assertEqual(rot["kid"], nxt[0])
        self.assertNotIn(rot["next"]["kid"], (rot["kid"], cur[0]["kid"]))
        st, after, _ = self.play(v, d)
        self.assertEqual(jwt.get_unverified_header(after["token"])["kid"], rot["kid"])
        st, doc, _ = self.op.call("GET", "/v1/keys")
        states = {k["kid"]: k["state"] for k in doc["keys"]}
        self.assertEqual(states[rot["kid"]], "current")
        self.assertEqual(states[cur[0]["kid"]], "retired")

    # ---- bad input ----

    def test_bad_input(self):
        a = self.anon
        reg = "/v1/users"
        good = {"email": "bad-input@example.com", "password": "long-enough", "display_name": "B"}
        self.assert_error(a.call("POST", reg, raw="{not json"), 400, "malformed JSON")
        self.assert_error(a.call("POST", reg, raw="[1,2]"), 400, "malformed JSON")
        self.assert_error(a.call("POST", reg, raw='{"email":"a@b.c","email":"x@y.z"}'), 400)
        self.assert_error(a.call("POST", reg, raw=b'{"email":"\xff"}'), 400)
        self.assert_error(a.call("POST", reg, dict(good, role="operator")), 400, "unknown field")
        self.assert_error(a.call("POST", reg, dict(good, email=5)), 400, "wrong type")
        self.assert_error(a.call("POST", reg, {"email": good["email"]}), 422, "missing field")
        self.assert_error(a.call("POST", reg, dict(good, email="not-an-email")), 422)
        self.assert_error(a.call("POST", reg, dict(good, password="short")), 422)
        self.assert_error(a.call("POST", reg, dict(good, display_name="a\u0001b")), 422)
        self.assert_error(a.call("POST", reg, raw=json.dumps(good), ctype="text/plain"), 415)
        self.assert_error(a.call("POST", reg, raw=json.dumps(good), ctype=None), 415)
        self.assert_error(a.call("POST", reg, raw=json.dumps(good),
                                 ctype="application/jsonx"), 415)
        big = dict(good, display_name="x" * 70000)
        self.assert_error(a.call("POST", reg, big), 413)
        self.assertEqual(a.call("POST", reg, good)[0], 201)
        self.assert_error(a.call("POST", reg, dict(good, email="BAD-INPUT@example.com")), 409,
                          "email taken")
        # Sessions.
        self.assert_error(a.call("POST", "/v1/sessions", {"email": good["email"],
                                                          "password": "wrong-one"}), 401)
        self.assert_error(a.call("GET", "/v1/users/me"), 401, "unauthorized")
        st, _, r = a.call("GET", "/v1/users/me")
        self.assertTrue(r.header("www-authenticate", "").startswith("Bearer"))
        self.assert_error(a.call("GET", "/v1/users/me", token="A" * 43), 401)
        self.assert_error(a.call("GET", "/v1/users/me", token="short"), 401)
        self.assert_error(a.call("GET", "/v1/users/me", headers="Authorization: Basic eDp5\r\n"),
                          401)
        # Paths, methods, ids.
        self.assert_error(a.call("GET", "/v1/nothing"), 404, "not found")
        st, _, r = a.call("PUT", "/v1/sessions", {})
        self.assertEqual(st, 405)
        self.assertEqual(r.header("allow"), "POST")
        st, _, r = a.call("DELETE", "/v1/shows")
        self.assertEqual((st, r.header("allow")), (405, "GET, POST, HEAD"))
        v = a.login(good["email"], good["password"])
        self.assert_error(v.call("GET", "/v1/shows/" + "x" * 65), 404)
        self.assert_error(v.call("GET", "/v1/shows/a%2Fb"), 404)
        self.assert_error(v.call("POST", "/v1/playback", {"show_id": "film1"}), 422)
        self.assert_error(v.call("POST", "/v1/playback", {"show_id": "film1",
                                                          "device_id": "d-unknown"}), 404)
        self.assert_error(v.call("POST", "/v1/playback", {"show_id": "nope",
                                                          "device_id": "x"}), 404)
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T", "duration": "long"}),
                          400, "wrong type")
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T", "duration": -1}), 422)
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T",
                                                             "languages": ["english!"]}), 422)
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T", "genres": "drama"}),
                          400, "wrong type")
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T", "genres": [1]}), 400)
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T",
                                                             "genres": ["g"] * 17}), 422)
        self.assert_error(self.op.call("POST", "/v1/shows", {"title": "T",
                                                             "asset_id": "a/b"}), 422)
        # Still serving after all of that.
        self.assertEqual(v.call("GET", "/v1/users/me")[0], 200)

    def test_login_rate_limit_per_account(self):
        a = self.anon
        st, _, _ = a.call("POST", "/v1/users", {"email": "target@example.com",
                                                "password": "right-password",
                                                "display_name": "T"})
        self.assertEqual(st, 201)
        for _ in range(3):
            self.assert_error(a.call("POST", "/v1/sessions", {"email": "target@example.com",
                                                              "password": "guess"}), 401)
        st, doc, r = a.call("POST", "/v1/sessions", {"email": "TARGET@example.com",
                                                     "password": "right-password"})
        self.assertEqual(st, 429, r.body)
        self.assertGreater(int(r.header("retry-after")), 0)
        # Other accounts are not affected.
        self.assertEqual(a.call("POST", "/v1/sessions", {"email": Control.OPERATOR[0],
                                                         "password": Control.OPERATOR[1]})[0],
                         201)
        m = self.cp.metrics()
        self.assertGreaterEqual(m['tmt_control_logins_total{result="limited"}'], 1)

    def test_access_log_hides_people(self):
        v, me = self.viewer("private.person@example.com")
        st, doc, _ = self.op.call("GET", "/v1/users/" + me["id"])
        self.assertEqual(st, 200)
        d = self.device(v, "tv")
        st, play, _ = self.play(v, d)
        self.assertEqual(v.call("POST", "/v1/playback/%s/heartbeat" % play["lease_id"])[0], 200)
        http_request(self.cp.port, "GET", play["router_hls_url"][len(PUB):])
        deadline = time.monotonic() + 5
        text = ""
        while time.monotonic() < deadline and "/v1/playback/" not in text:
            time.sleep(0.2)
            with open(self.log) as f:
                text = f.read()
        self.assertIn("/v1/playback/", text)
        for secret in (me["id"], "private.person", play["lease_id"], play["token"][:40],
                       v.token, "ticket="):
            self.assertNotIn(secret, text)


class ControlLimits(unittest.TestCase):
    """Limits that need their own settings: leases that time out, addresses that try too often."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-control-lim-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_lease_expires_without_heartbeat(self):
        with Control(self.dir, "devices.lease_ttl=3s", "nodes.heartbeat_interval=1s",
                     "devices.max_active=1") as cp:
            op = cp.api().login(*Control.OPERATOR)
            self.assertEqual(op.call("POST", "/v1/shows", {
                "id": "s", "title": "S", "asset_id": "s-v1", "state": "published"})[0], 201)
            d1 = op.call("POST", "/v1/devices", {"name": "a"})[1]["id"]
            d2 = op.call("POST", "/v1/devices", {"name": "b"})[1]["id"]
            st, l1, _ = op.call("POST", "/v1/playback", {"show_id": "s", "device_id": d1})
            self.assertEqual(st, 201)
            # Heartbeats keep it alive past the TTL.
            for _ in range(4):
                time.sleep(1)
                self.assertEqual(op.call("POST", "/v1/playback/%s/heartbeat" %
                                         l1["lease_id"])[0], 200)
            self.assertEqual(op.call("POST", "/v1/playback",
                                     {"show_id": "s", "device_id": d2})[0], 409)
            # Without them it ends, and the slot is free.
            time.sleep(3.5)
            st = op.call("POST", "/v1/playback/%s/heartbeat" % l1["lease_id"])[0]
            self.assertIn(st, (404, 410))
            self.assertEqual(op.call("POST", "/v1/playback",
                                     {"show_id": "s", "device_id": d2})[0], 201)

    def test_session_expires(self):
        with Control(self.dir, "auth.session_ttl=2s") as cp:
            op = cp.api().login(*Control.OPERATOR)
            self.assertEqual(op.call("GET", "/v1/users/me")[0], 200)
            time.sleep(2.5)
            st, doc, _ = op.call("GET", "/v1/users/me")
            self.assertEqual(st, 401)
            self.assertIn("expired", doc["detail"])

    def test_address_rate_limit(self):
        with Control(self.dir, "auth.max_attempts_per_address=3") as cp:
            a = cp.api()
            body = {"email": "nobody@example.com", "password": "whatever"}
            for _ in range(3):
                self.assertEqual(a.call("POST", "/v1/sessions", body)[0], 401)
            st, doc, r = a.call("POST", "/v1/sessions", body)
            self.assertEqual(st, 429)
            self.assertEqual(doc["error"], "too many attempts")
            self.assertTrue(r.header("retry-after"))
            st, _, _ = a.call("POST", "/v1/users", {"email": "new@example.com",
                                                    "password": "password-1",
                                                    "display_name": "N"})
            self.assertEqual(st, 429)


if __name__ == "__main__":
    unittest.main()
