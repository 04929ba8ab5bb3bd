"""The three daemons under Valgrind's memcheck, as one provisioned system: tomato-control, then a
tomato-shield and a tomato-edge provisioned through its API and started from their node settings.
A viewer registers, logs in and starts playback (API calls), and fetches through the edge a
manifest and segments twice: a miss that the shield packages, then a hit. A key rotation and an
ended lease reach the edge (the lease's token is then refused), every daemon reloads its
settings (SIGHUP), the nodes send report batches, and tomato-load (under memcheck too) plays
viewers through the edge for a few seconds. Each daemon then gets
SIGTERM and must stop gracefully with exit status 0, no memory error (invalid read or write,
use of uninitialised memory, bad free) and no block definitely lost.

Suppressions: tests/valgrind/system.supp (only reports inside system libraries, each with its
reason). Labelled "valgrind" (not "proc"): the sanitizer stage leaves it out, since memcheck
cannot run an AddressSanitizer build. Exits 77 (skipped) when valgrind is not installed."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import Api, Control, http_get, prog, scrape_metrics
from harness.media import make_asset
from harness.system import free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SUPP = os.path.join(HERE, "..", "valgrind", "system.supp")
HWY_TIMER = os.path.join(HERE, "..", "valgrind", "hwy_timer.c")
# Everything is some 20 to 50 times slower under memcheck.
START_TIMEOUT = 120


class Memchecked:
    """A daemon on given loopback ports run by valgrind --tool=memcheck, log collected."""

    def __init__(self, name, logdir, port, *sets, env=None):
        self.name = name
        self.port = port
        self.admin_port = free_port()
        self.vglog = os.path.join(logdir, name + ".valgrind")
        argv = ["valgrind", "--tool=memcheck", "--leak-check=full",
                "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                "--error-exitcode=99", "--num-callers=40", "--log-file=" + self.vglog]
        if os.path.exists(SUPP):
            argv.append("--suppressions=" + SUPP)
        argv += [prog(name), "--set", "server.listen=127.0.0.1:%d" % port,
                 "--set", "admin.listen=127.0.0.1:%d" % self.admin_port,
                 "--set", "server.workers=2"]
        for s in sets:
            argv += ["--set", s]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_line('msg="started"', START_TIMEOUT)

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, needle, timeout, start=0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(needle in ln for ln in self.lines[start:]):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    vg = ""
                    if os.path.exists(self.vglog):
                        with open(self.vglog) as f:
                            vg = f.read()
                    raise AssertionError("%s: no %r; log:\n%s\nvalgrind:\n%s" % (
                        self.name, needle, "\n".join(self.lines), vg))
                self.cond.wait(min(left, 1.0))

    def metrics(self):
        return scrape_metrics(self.admin_port, timeout=30)

    def stop(self):
        """SIGTERM; returns (exit status, valgrind's log)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not stop within %ds of SIGTERM; log:\n%s" %
                                 (self.name, START_TIMEOUT, "\n".join(self.lines[-30:])))
        self.reader.join(timeout=10)
        self.proc.stdout.close()
        with open(self.vglog) as f:
            return rc, f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)
        self.proc.stdout.close()


class Valgrind(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-valgrind-")
        self.root = os.path.join(self.dir, "mezz")
        make_asset(self.root, "film-v1", seconds=4, seg=2, rungs=[("180p", 320, 180, 300000)])
        self.daemons = []

    def tearDown(self):
        for d in reversed(self.daemons):
            d.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, port, *sets, env=None):
        d = Memchecked(name, self.dir, port, *sets, env=env)
        self.daemons.append(d)
        return d

    def check_clean(self, d, rc, log, name=None):
        name = name or d.name
        summary = "\n".join(ln for ln in log.splitlines() if "SUMMARY" in ln or "lost:" in ln
                            or "reachable:" in ln)
        print("%s: exit %d\n%s" % (name, rc, summary))
        self.assertEqual(rc, 0, "%s exit %d (99: memcheck found errors); valgrind log:\n%s" %
                         (name, rc, log))
        self.assertRegex(log, r"ERROR SUMMARY: 0 errors from 0 contexts", log)
        self.assertTrue(re.search(r"definitely lost: 0 bytes in 0 blocks", log) or
                        "All heap blocks were freed" in log, log)
        for bad in ("Invalid read", "Invalid write", "Invalid free", "uninitialised",
                    "Mismatched free", "overlap"):
            self.assertNotIn(bad, log, name)
        if d is not None:
            self.assertIn('msg="stopped"', "\n".join(d.lines), name)

    def test_daemons_are_memcheck_clean(self):
        cport, sport, eport = free_port(), free_port(), free_port()
        store = os.path.join(self.dir, "cp")
        os.makedirs(store)
        pw = os.path.join(store, "operator.pw")
        with open(pw, "w") as f:
            f.write(Control.OPERATOR[1] + "\n")
        cp = self.start("tomato-control", cport, "store.path=" + os.path.join(store, "store"),
                        "auth.scrypt_n=1024", "nodes.heartbeat_interval=1s",
                        "nodes.health_timeout=20s",
                        "auth.bootstrap_operator_email=" + Control.OPERATOR[0],
                        "auth.bootstrap_operator_password_file=" + pw)
        op = Api(cport).login(*Control.OPERATOR)

        def provision(role, name, port):
            st, doc, r = op.call("POST", "/v1/nodes", {"role": role, "name": name,
                                                       "public_url": "http://127.0.0.1:%d" % port})
            self.assertEqual(st, 201, r.body)
            cred = os.path.join(self.dir, name + ".cred")
            with open(cred, "w") as f:
                f.write(doc["credential"] + "\n")
            return ["node.control_url=http://127.0.0.1:%d" % cport, "node.id=" + doc["id"],
                    "node.credential_file=" + cred,
                    "node.state_file=" + os.path.join(self.dir, name + ".state")]

        # libhwy's initializer stops under memcheck on some hosts (see hwy_timer.c).
        preload = os.path.join(self.dir, "libhwy_timer.so")
        subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-o", preload,
                        HWY_TIMER], check=True)
        env = dict(os.environ, LD_PRELOAD=preload)
        shield = self.start("tomato-shield", sport, *provision("shield", "shield-1", sport),
                            "mezzanine.root=" + self.root,
                            "cache.path=" + os.path.join(self.dir, "shield", "cache"),
                            "jobs.path=" + os.path.join(self.dir, "shield", "jobs"),
                            "node.report_interval=2s", env=env)
        edge = self.start("tomato-edge", eport, *provision("edge", "edge-1", eport),
                          "cache.warm_path=" + os.path.join(self.dir, "warm"),
                          "cache.cold_path=" + os.path.join(self.dir, "cold"),
                          "upstream.connect_timeout=10s", "upstream.response_timeout=60s",
                          "upstream.read_timeout=60s", "node.report_interval=2s",
                          "log.access_log=" + os.path.join(self.dir, "edge.access"))
        self.assertTrue(wait_for(lambda: edge.metrics().get("tmt_edge_upstreams", 0) == 1,
                                 timeout=START_TIMEOUT, step=1.0), edge.lines[-20:])
        # A viewer, through the API.
        self.assertEqual(op.call("POST", "/v1/shows", {
            "id": "film", "title": "Film", "asset_id": "film-v1", "state": "published"})[0], 201)
        anon = Api(cport)
        self.assertEqual(anon.call("POST", "/v1/users", {"email": "v@example.com",
                                                         "password": "viewer-pass-1",
                                                         "display_name": "V"})[0], 201)
        v = anon.login("v@example.com", "viewer-pass-1")
        dev = v.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]
        self.assertEqual(len(v.call("GET", "/v1/shows")[1]["shows"]), 1)
        st, play, r = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 201, r.body)
        self.assertTrue(play["hls_url"].startswith("http://127.0.0.1:%d/t/" % eport))
        base = "/t/%s/v/film-v1/" % play["token"]
        # The edge gets the signing keys with its config: wait until the token plays.
        self.assertTrue(wait_for(lambda: http_get(eport, base + "master.m3u8",
                                                  timeout=60).status == 200,
                                 timeout=START_TIMEOUT, step=1.0), edge.lines[-20:])
        for path in ("180p/index.m3u8", "180p/init.mp4", "180p/1.m4s", "manifest.mpd"):
            first = http_get(eport, base + path, timeout=90)
            self.assertEqual((first.status, first.header("x-cache")), (200, "MISS"), path)
            again = http_get(eport, base + path, timeout=90)
            self.assertEqual((again.status, again.body), (200, first.body), path)
            self.assertTrue(again.header("x-cache").startswith("HIT"), again.header("x-cache"))
        self.assertEqual(http_get(eport, "/t/bad/v/film-v1/master.m3u8", timeout=60).status, 403)
        # A range over h2c (prior knowledge), as curl sends it.
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-r", "0-99", "-o",
                            "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}",
                            "http://127.0.0.1:%d%s180p/1.m4s" % (eport, base)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.stdout, "2 206 100", r.stderr)
        # A key rotation, then the lease ends: its token is refused once the edge has the
        # revocation (both come with the edge's next config).
        self.assertEqual(op.call("POST", "/v1/keys/rotate")[0], 201)
        st, play2, _ = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 200)
        self.assertEqual(v.call("DELETE", "/v1/playback/" + play["lease_id"])[0], 204)
        seg = "/t/%s/v/film-v1/180p/1.m4s" % play2["token"]
        self.assertTrue(wait_for(lambda: http_get(eport, seg, timeout=60).status == 403,
                                 timeout=START_TIMEOUT, step=1.0), edge.lines[-20:])
        # tomato-load (not a daemon, but part of the system) plays viewers through the edge.
        st, play3, _ = v.call("POST", "/v1/playback", {"show_id": "film", "device_id": dev})
        self.assertEqual(st, 201)
        r = http_get(eport, "/t/%s/v/film-v1/master.m3u8" % play3["token"], timeout=60)
        self.assertEqual(r.status, 200, (r.header("x-tomato-reason"), r.body))
        loadlog = os.path.join(self.dir, "tomato-load.valgrind")
        r = subprocess.run(["valgrind", "--tool=memcheck", "--leak-check=full",
                            "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                            "--error-exitcode=99", "--num-callers=40", "--log-file=" + loadlog,
                            prog("tomato-load"), "viewers", "--url", "http://127.0.0.1:%d" % eport,
                            "--assets", "film-v1", "--viewers", "3", "--workers", "2",
                            "--pace", "fast", "--duration", "4s", "--json", "true",
                            "--progress", "false", "--set", "target.token=" + play3["token"],
                            "--set", "viewers.think=0"],
                           capture_output=True, text=True, timeout=START_TIMEOUT)
        with open(loadlog) as f:
            log = f.read()
        self.check_clean(None, r.returncode, log, "tomato-load")
        rep = json.loads(r.stdout)
        self.assertEqual(rep["errors"], 0, r.stdout)
        self.assertGreater(rep["viewers"]["segments"], 0, r.stdout)
        # Each daemon reloads its settings (SIGHUP).
        for d in (cp, shield, edge):
            at = len(d.lines)
            d.proc.send_signal(signal.SIGHUP)
            d.wait_line('msg="reloaded"', START_TIMEOUT, start=at)
        self.assertEqual(op.call("GET", "/v1/nodes")[0], 200)
        # The shield packaged what the edge missed; the nodes heartbeated.
        m = shield.metrics()
        self.assertGreaterEqual(m.get('tmt_shield_requests_total{result="miss"}', 0), 4, m)
        self.assertGreaterEqual(edge.metrics().get("tmt_node_heartbeats_total", 0), 1)
        # Both send report batches (zstd from the edge) that the control plane takes.
        for d in (edge, shield):
            self.assertTrue(wait_for(lambda d=d: d.metrics().get("tmt_node_reports_sent_total",
                                                                 0) >= 1,
                                     timeout=START_TIMEOUT, step=1.0), d.name)
        st, rep, r = op.call("GET", "/v1/reports/cache?role=all")
        self.assertEqual(st, 200, r.body)
        for d in (edge, shield, cp):
            rc, log = d.stop()
            self.check_clean(d, rc, log)


if __name__ == "__main__":
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: skipped")
        sys.exit(77)
    unittest.main()
