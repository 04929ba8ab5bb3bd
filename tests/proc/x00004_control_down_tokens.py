"""Fault: the control plane killed (kill -9) while viewers play; tokens live on until they expire.

Managed system, as n00002 provisions it: the control plane, a shield and an edge created through
the API, the nodes started from their id and credential only. Playback tokens live for the
show's duration plus playback.token_margin: here 8 s + 14 s = 22 s.

Two tokens are issued (two devices); the first one plays, then the control plane is killed.
The edge verifies tokens with the keys it was given, not by asking the control plane:
- it is restarted while the control plane is down (node.state_file keeps its config and keys)
  and still serves;
- the second token, never seen by the edge before, is verified (a signature check, counted)
  and plays;
- tomato-load viewers with the first token play without an error until shortly before it
  expires;
- once the token's exp has passed, the edge answers 403 ("expired") to both tokens, to direct
  requests and to tomato-load alike, while the control plane is still down."""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import unittest

import jwt

from harness import Control, Edge, Shield, http_get, run
from harness.media import make_asset

DURATION, MARGIN = 8, 14


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def viewers(url, token, duration):
    r = run("tomato-load", "viewers", "--json", "true", "--progress", "false", "--url", url,
            "--token", token, "--assets", "film-v1", "--viewers", "3", "--requests", "0",
            "--duration", duration, "--set", "viewers.buffer=2s", "--set", "viewers.think=200ms",
            "--set", "viewers.watch_mean=100", timeout=120)
    if r.returncode != 0:
        raise AssertionError("tomato-load exit %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


class ControlDownTokens(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x4-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=DURATION, seg=2,
                   rungs=[("180p", 320, 180, 300000)])
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
        return ("node.control_url=http://127.0.0.1:%d" % self.cport, "node.id=" + doc["id"],
                "node.credential_file=" + cred,
                "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def edge(self):
        return self.start(Edge(*self.esets, "server.listen=127.0.0.1:%d" % self.eport,
                               "cache.warm_path=" + os.path.join(self.dir, "warm"),
                               "cache.cold_path=" + os.path.join(self.dir, "cold")))

    def test_tokens_play_until_exp_without_control_plane(self):
        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), "nodes.heartbeat_interval=1s",
                                "nodes.health_timeout=3s",
                                "playback.token_margin=%ds" % MARGIN,
                                "server.listen=127.0.0.1:%d" % self.cport))
        op = cp.api().login(*Control.OPERATOR)
        sport, self.eport = free_port(), free_port()
        ssets = self.node(op, "shield", "shield-1", sport)
        self.esets = self.node(op, "edge", "edge-1", self.eport)
        self.start(Shield(self.root, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport))
        e = self.edge()
        self.assertTrue(wait_for(lambda: e.metrics().get("tmt_edge_upstreams", 0) == 1 and
                                 e.metrics().get("tmt_node_heartbeats_total", 0) >= 1),
                        e.lines[-20:])
        st, _, r = op.call("POST", "/v1/shows", {"id": "film", "title": "Film",
                                                 "asset_id": "film-v1", "state": "published",
                                                 "duration": DURATION})
        self.assertEqual(st, 201, r.body)
        a = cp.api()
        self.assertEqual(a.call("POST", "/v1/users", {"email": "v@example.com",
                                                      "password": "viewer-pass",
                                                      "display_name": "V"})[0], 201)
        v = a.login("v@example.com", "viewer-pass")
        plays = []
        for name in ("tv", "phone"):
            dev = v.call("POST", "/v1/devices", {"name": name})[1]["id"]
            st, play, r = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
            self.assertEqual(st, 201, r.body)
            plays.append(play)
        tok1, tok2 = plays[0]["token"], plays[1]["token"]
        exp = max(jwt.decode(t, options={"verify_signature": False})["exp"] for t in (tok1, tok2))
        iat = jwt.decode(tok1, options={"verify_signature": False})["iat"]
        self.assertEqual(exp - iat, DURATION + MARGIN)

        def get(tok, path="/v/film-v1/180p/1.m4s"):
            return http_get(self.eport, "/t/%s%s" % (tok, path), timeout=10)

        self.assertEqual(get(tok1, "/v/film-v1/master.m3u8").status, 200)
        self.assertEqual(get(tok1).status, 200)

        # The control plane dies; the edge is restarted without it (from its state file).
        cp.proc.send_signal(signal.SIGKILL)
        cp.proc.wait()
        self.assertTrue(wait_for(lambda: e.metrics()["tmt_node_control_up"] == 0))
        self.assertEqual(e.stop(), 0)
        e = self.edge()
        self.assertEqual(e.metrics()["tmt_node_control_up"], 0)
        self.assertEqual(e.metrics()["tmt_edge_upstreams"], 1)
        # A token the edge has never seen: verified with the kept keys, and it plays.
        r = get(tok2, "/v/film-v1/180p/2.m4s")
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(e.metrics()['tmt_edge_token_checks_total{result="verified"}'], 1)
        # Viewers keep playing until shortly before the tokens expire.
        left = exp - time.time() - 2.5
        self.assertGreater(left, 3, "too slow to get here before the tokens expire")
        rep = viewers(e.url(""), tok1, "%dms" % (left * 1000))
        before_exp = exp - time.time()
        self.assertEqual(rep["errors"], 0, rep)
        self.assertGreater(rep["viewers"]["segments"], 3, rep)
        self.assertEqual(e.metrics()["tmt_node_control_up"], 0)

        # After exp: 403 for both, still without the control plane.
        time.sleep(max(0.0, exp + 1.2 - time.time()))
        for tok in (tok1, tok2):
            for path in ("/v/film-v1/master.m3u8", "/v/film-v1/180p/1.m4s"):
                r = get(tok, path)
                self.assertEqual(r.status, 403, (path, r))
                self.assertIn("expired", r.header("x-tomato-reason"))
        rep2 = viewers(e.url(""), tok1, "1s")
        self.assertGreater(rep2["requests"], 0, rep2)
        self.assertEqual(rep2["errors_by_class"]["4xx"], rep2["requests"], rep2)
        self.assertEqual(rep2["status"]["2xx"], 0, rep2)
        self.assertGreaterEqual(e.metrics()['tmt_edge_token_denied_total{reason="time"}'], 4)
        print("x00004: control plane down: %d viewer requests with 0 errors until %.1f s before "
              "exp, then %d of %d refused with 403" % (rep["requests"], before_exp, rep2["errors"],
                                                     rep2["requests"]), file=sys.stderr)


class LoadTokenLength(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-x4-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_load_refuses_a_token_it_cannot_send_whole(self):
        # tomato-load sends a token whole or not at all: a cut one would only collect 403s (the
        # control plane's tokens are longer than 255 characters, which it once cut silently).
        for tok, why in (("t" * 5000, "target.token: longer than"),
                         ("t" * 600, "the URL's path and the token take")):
            r = run("tomato-load", "viewers", "--url", "http://127.0.0.1:9", "--token", tok,
                    "--assets", "a1", "--duration", "1s")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(why, r.stderr)
        path = os.path.join(self.dir, "token")
        with open(path, "w") as f:
            f.write("t" * 5000 + "\n")
        r = run("tomato-load", "viewers", "--url", "http://127.0.0.1:9", "--token-file", path,
                "--assets", "a1", "--duration", "1s")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("target.token_file: the token is longer than", r.stderr)


if __name__ == "__main__":
    unittest.main()
