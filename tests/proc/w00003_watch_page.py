"""The viewer page, /watch, of the control plane.

WatchPage drives it in headless Chromium against a managed system (an operator provisions a
shield and an edge, publishes a show): a wrong password shows an error; the viewer logs in, the
page registers this browser as a device and keeps it across a reload, lists the show, plays it
with hls.js to a few seconds and, after a seek, to the end, then with dash.js the same way, and
Stop ends the lease; the players load from the control plane's /watch/hls.js and /watch/dash.js,
the media from the edge (another origin); no console error, no failed request, heartbeats sent,
no lease left behind. With two other devices of the account playing, the page shows the
device-limit refusal naming them, and its button stops one and plays.
(a00004_watch_files checks the URLs themselves, without a browser.)

The players come from web/package-lock.json (`npm ci` in web/ runs when web/node_modules is
missing or older than the lock, as scripts/setup.sh does). Needs node, npm and Debian's chromium
(scripts/setup.sh); label browser."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SRC, Control, Edge, Shield, npm_ci
from harness.media import make_asset

from w00001_browser import BROWSER_DIR, CHROMIUM, ensure_node_modules, missing_tools

WEB_DIR = os.path.join(SRC, "web")
PLAYER_DIR = os.path.join(WEB_DIR, "node_modules")
# A 9 s lease: the page heartbeats every 3 s.
FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s", "devices.lease_ttl=9s")
VIEWER = ("ana@example.com", "ana-password-1")
MISSING = "player library not installed: run scripts/setup.sh"


def ensure_web_players():
    """Runs `npm ci` in web/ unless node_modules matches package-lock.json already."""
    lock = os.path.join(WEB_DIR, "package-lock.json")
    installed = os.path.join(PLAYER_DIR, ".package-lock.json")
    if os.path.exists(installed) and os.path.getmtime(installed) >= os.path.getmtime(lock):
        return
    npm_ci(WEB_DIR)


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


def watch(url, mode, *args):
    """Runs watch.mjs; returns (exit status, its JSON or None, its output)."""
    r = subprocess.run(["node", os.path.join(BROWSER_DIR, "watch.mjs"), "--chromium", CHROMIUM,
                        "--url", url, "--mode", mode, *args],
                       capture_output=True, text=True, timeout=600)
    try:
        doc = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        doc = None
    return r.returncode, doc, r.stdout + r.stderr


class WatchPage(unittest.TestCase):
    def setUp(self):
        missing = missing_tools()
        if missing:
            raise AssertionError("needs %s: run scripts/setup.sh" % ", ".join(missing))
        ensure_node_modules()
        ensure_web_players()
        self.dir = tempfile.mkdtemp(prefix="tmt-watch-page-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=12, rungs=[("180p", 320, 180, 300000)])
        self.procs = []

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, d):
        self.procs.append(d)
        return d

    def node(self, op, role, name, port):
        st, doc, r = op.call("POST", "/v1/nodes", dict(
            role=role, name=name, public_url="http://127.0.0.1:%d" % port))
        self.assertEqual(st, 201, r.body)
        cred = os.path.join(self.dir, name + ".cred")
        with open(cred, "w") as f:
            f.write(doc["credential"] + "\n")
        return ("node.control_url=http://127.0.0.1:%d" % self.cport, "node.id=" + doc["id"],
                "node.credential_file=" + cred,
                "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def test_a_viewer_logs_in_and_plays(self):
        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                "server.listen=127.0.0.1:%d" % self.cport,
                                "web.player_dir=" + PLAYER_DIR))
        op = cp.api().login(*Control.OPERATOR)
        sport, eport = free_port(), free_port()
        ssets = self.node(op, "shield", "shield-1", sport)
        esets = self.node(op, "edge", "edge-1", eport)
        self.start(Shield(self.root, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport))
        edge = self.start(Edge(*esets, "server.listen=127.0.0.1:%d" % eport,
                               "cache.warm_path=" + os.path.join(self.dir, "edge", "warm"),
                               "cache.cold_path=" + os.path.join(self.dir, "edge", "cold")))
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_edge_upstreams", 0) == 1))
        self.assertEqual(op.call("POST", "/v1/shows", {
            "id": "film", "title": "The Tomato Film", "description": "Twelve seconds of test card",
            "asset_id": "film-v1", "state": "published", "duration": 12})[0], 201)
        self.assertEqual(op.call("POST", "/v1/shows", {"id": "draft", "title": "Not yet"})[0], 201)
        a = cp.api()
        self.assertEqual(a.call("POST", "/v1/users", {"email": VIEWER[0], "password": VIEWER[1],
                                                      "display_name": "Ana"})[0], 201)
        viewer = a.login(*VIEWER)
        url = "http://127.0.0.1:%d/watch" % self.cport
        t0 = time.monotonic()
        rc, page, text = watch(url, "play", "--email", VIEWER[0], "--password", VIEWER[1],
                               "--wrong-password", "not-the-password", "--show", "film")
        print("\nwatch.mjs play in %.1f s:" % (time.monotonic() - t0))
        for s in (page or {}).get("steps", []):
            print("  " + s)
        self.assertEqual(rc, 0, text)
        self.assertEqual(page["problems"], [])
        self.assertIn("Wrong email or password", page["texts"]["login_error"])
        self.assertEqual(page["texts"]["device_id"], page["texts"]["device_id_after_reload"])
        self.assertEqual(len(page["steps"]), 6, page["steps"])
        # The players came from the control plane, and every script from there.
        origin = "http://127.0.0.1:%d" % self.cport
        loaded = {u: st for u, st in page["scripts"]}
        self.assertEqual(loaded.get(origin + "/watch/hls.js"), 200, page["scripts"])
        self.assertEqual(loaded.get(origin + "/watch/dash.js"), 200, page["scripts"])
        self.assertEqual([u for u in loaded if not u.startswith(origin + "/")], [])
        # Three leases (HLS, DASH, HLS stopped), each ended by the page; heartbeats while playing.
        self.assertEqual(len(page["leases"]), 3, page)
        self.assertEqual(set(page["leases"]) - set(page["deletes"]), set())
        self.assertGreaterEqual(page["heartbeats"], 1, page)
        self.assertEqual(viewer.call("GET", "/v1/playback")[1]["leases"], [])
        devs = viewer.call("GET", "/v1/devices")[1]["devices"]
        self.assertEqual([(d["id"], d["type"]) for d in devs],
                         [(page["texts"]["device_id"], "browser")])
        # The media came from the edge, and only from there.
        self.assertEqual(list(page["media"]), ["http://127.0.0.1:%d" % eport], page["media"])
        self.assertGreater(page["media"]["http://127.0.0.1:%d" % eport], 6)

        # The device limit: two other devices play; the page names them, and its button stops
        # one of them and plays here.
        others = {}
        for name in ("Living room TV", "Phone"):
            did = viewer.call("POST", "/v1/devices", {"name": name, "type": "tv"})[1]["id"]
            st, doc, r = viewer.call("POST", "/v1/playback", {"show_id": "film", "device_id": did})
            self.assertEqual(st, 201, r.body)
            others[name] = doc["lease_id"]
        stop_beats = threading.Event()

        def keep_alive():  # the two other players' heartbeats
            while not stop_beats.wait(2):
                for lease in others.values():
                    viewer.call("POST", "/v1/playback/%s/heartbeat" % lease)
        beats = threading.Thread(target=keep_alive, daemon=True)
        beats.start()
        try:
            rc, page, text = watch(url, "limit", "--email", VIEWER[0], "--password", VIEWER[1],
                                   "--show", "film")
        finally:
            stop_beats.set()
            beats.join()
        print("watch.mjs limit:")
        for s in (page or {}).get("steps", []):
            print("  " + s)
        self.assertEqual(rc, 0, text)
        err = page["texts"]["error"]
        self.assertIn("Device limit", err)
        self.assertIn('"Living room TV"', err)
        self.assertIn('"Phone"', err)
        self.assertEqual(len(page["texts"]["error_buttons"]), 2, page)
        live = {x["lease_id"] for x in viewer.call("GET", "/v1/playback")[1]["leases"]}
        self.assertNotIn(others["Living room TV"], live)
        self.assertIn(others["Phone"], live)
        self.assertEqual(len(live), 2, live)
        self.assertEqual(len(viewer.call("GET", "/v1/devices")[1]["devices"]), 4)

    def test_without_players_the_page_says_so(self):
        with Control(os.path.join(self.dir, "cp"),
                     "web.player_dir=" + os.path.join(self.dir, "nowhere")) as cp:
            rc, page, text = watch(cp.url("/watch"), "nolib")
            self.assertEqual(rc, 0, text)
            self.assertIn(MISSING, page["texts"]["lib_error"])


if __name__ == "__main__":
    unittest.main()
