"""Routing between hosts: the control plane, a shield and two edge groups far apart (eu in
Frankfurt, us in Ashburn) run in one network namespace, and viewers in three others, each with its
own address and link: one that the location database puts in London, one in New York, and one in
a private network that a coverage zone gives to the us group. Each viewer logs in, starts playback
and plays the HLS URL it gets (ffmpeg, from its own namespace) through its nearest edge, which
sees the viewer's own address; the router URL sends it to the same edge. When the eu edge stops
heartbeating, its viewer is sent to the us edge within the health timeout, and back once it
heartbeats again. A changed location database applies on SIGHUP without a restart.

Needs root (network namespaces); exits 77 (skipped) without it."""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Control, Edge, Shield
from harness.media import make_asset

FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=3s")
CLONE_NEWNET = 0x40000000
TAG = "t%d" % (os.getpid() % 100000)
HOST = TAG + "r"  # daemons
VIEWERS = {  # namespace: (its address, the host's address on that link, what it stands for)
    TAG + "a": ("81.2.69.2", "81.2.69.1", "London"),
    TAG + "b": ("216.160.83.2", "216.160.83.1", "New York"),
    TAG + "c": ("10.77.3.2", "10.77.3.1", "a private network in the us zone"),
}
PUBLIC = "203.0.113.10"  # the control plane's public address, on the host's lo
ZONES = {"coverageZones": {"us": {"network": ["10.77.3.0/24"], "network6": []}}}
GEO_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "geo",
                          "make_city_mmdb.pl")

# What a viewer runs in its namespace: log in, name a device, start playback; prints the answer.
VIEWER = r"""
import json, sys, urllib.request
base, email, pw = sys.argv[1:4]
op = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(method, path, body, token=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(base + path, json.dumps(body).encode(), h, method=method)
    with op.open(req, timeout=10) as r:
        return json.load(r)
tok = call("POST", "/v1/sessions", {"email": email, "password": pw})["token"]
dev = call("POST", "/v1/devices", {"name": "tv"}, tok)["id"]
print(json.dumps(call("POST", "/v1/playback", {"show_id": "film", "device_id": dev}, tok)))
"""


def run(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def wait_for(pred, timeout=15.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def delete_namespaces():
    for ns in [HOST] + list(VIEWERS):
        run("ip", "netns", "del", ns, check=False)


def make_namespaces():
    """The host namespace with lo up and one veth link per viewer namespace, each viewer routing
    everything through its link (so it reaches the other group's edge too)."""
    delete_namespaces()
    run("ip", "netns", "add", HOST)
    run("ip", "-n", HOST, "link", "set", "lo", "up")
    run("ip", "-n", HOST, "addr", "add", PUBLIC + "/32", "dev", "lo")
    for i, (ns, (addr, gw, _)) in enumerate(VIEWERS.items()):
        run("ip", "netns", "add", ns)
        host_if, ns_if = "%sh%d" % (TAG, i), "%sv%d" % (TAG, i)
        run("ip", "link", "add", host_if, "netns", HOST, "type", "veth", "peer", "name", ns_if,
            "netns", ns)
        run("ip", "-n", HOST, "addr", "add", gw + "/24", "dev", host_if)
        run("ip", "-n", HOST, "link", "set", host_if, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", addr + "/24", "dev", ns_if)
        run("ip", "-n", ns, "link", "set", ns_if, "up")
        run("ip", "-n", ns, "route", "add", "default", "via", gw)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NetnsRouting(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-netns-")
        self.procs = []
        self.root_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        make_namespaces()
        setns("/run/netns/" + HOST)  # this process and the daemons it starts live on the host

    def tearDown(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.setns(self.root_ns, CLONE_NEWNET)
        os.close(self.root_ns)
        delete_namespaces()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, daemon):
        self.procs.append(daemon)
        return daemon

    def in_ns(self, ns, *cmd, timeout=120):
        return subprocess.run(("ip", "netns", "exec", ns) + cmd, capture_output=True, text=True,
                              timeout=timeout)

    def node(self, op, role, name, url, **where):
        st, doc, r = op.call("POST", "/v1/nodes", dict(role=role, name=name, public_url=url,
                                                       **where))
        self.assertEqual(st, 201, r.body)
        cred = os.path.join(self.dir, name + ".cred")
        with open(cred, "w") as f:
            f.write(doc["credential"] + "\n")
        return ("node.control_url=http://127.0.0.1:%d" % self.cport, "node.id=" + doc["id"],
                "node.credential_file=" + cred,
                "node.state_file=" + os.path.join(self.dir, name + ".state"))

    def play(self, ns):
        """The viewer of namespace ns starts playback from there: the control plane's answer."""
        r = self.in_ns(ns, sys.executable, "-c", VIEWER,
                       "http://%s:%d" % (PUBLIC, self.cport), ns + "@example.com",
                       "viewer-pass", timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def follow(self, ns, url):
        """Where the router URL sends the viewer of ns (curl from its namespace)."""
        r = self.in_ns(ns, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                       url, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        code, loc = r.stdout.split(" ", 1)
        self.assertEqual(code, "302", r.stdout)
        return loc

    def plays(self, ns, url):
        r = self.in_ns(ns, "ffmpeg", "-nostdin", "-v", "error", "-i", url, "-map", "0", "-c",
                       "copy", "-f", "null", "-")
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), url)

    def test_viewers_play_from_their_nearest_edge(self):
        geo = os.path.join(self.dir, "geo")
        os.makedirs(geo)
        run("perl", GEO_SCRIPT, geo)
        db = os.path.join(self.dir, "city.mmdb")
        shutil.copy(os.path.join(geo, "city.mmdb"), db)
        zones = os.path.join(self.dir, "czf.json")
        with open(zones, "w") as f:
            json.dump(ZONES, f)
        root = os.path.join(self.dir, "mezz")
        make_asset(root, "film-v1", seconds=5, rungs=[("180p", 320, 180, 300000)])

        self.cport = free_port()
        cp = self.start(Control(os.path.join(self.dir, "cp"), *FAST,
                                "server.listen=0.0.0.0:%d" % self.cport,
                                "server.public_url=http://%s:%d" % (PUBLIC, self.cport),
                                "geo.zones_file=" + zones, "geo.db_path=" + db,
                                "geo.default_group=eu"))
        op = cp.api().login(*Control.OPERATOR)
        sport, eu_port, us_port = free_port(), free_port(), free_port()
        ssets = self.node(op, "shield", "shield-1", "http://127.0.0.1:%d" % sport)
        eu_url = "http://81.2.69.1:%d" % eu_port
        us_url = "http://216.160.83.1:%d" % us_port
        eu_sets = self.node(op, "edge", "eu-1", eu_url, region="eu", latitude=50.11,
                            longitude=8.68)
        us_sets = self.node(op, "edge", "us-1", us_url, region="us", latitude=39.04,
                            longitude=-77.49)
        self.start(Shield(root, os.path.join(self.dir, "shield"), *ssets,
                          "server.listen=127.0.0.1:%d" % sport))
        edges = {}
        for name, port, sets in (("eu", eu_port, eu_sets), ("us", us_port, us_sets)):
            edges[name] = self.start(Edge(
                *sets, "server.listen=0.0.0.0:%d" % port,
                "cache.warm_path=" + os.path.join(self.dir, name, "warm"),
                "cache.cold_path=" + os.path.join(self.dir, name, "cold"),
                "log.access_log=" + os.path.join(self.dir, name + ".access")))
        for e in edges.values():
            self.assertTrue(wait_for(lambda e=e: e.metrics().get("tmt_edge_upstreams", 0) == 1),
                            e.lines[-20:])
        self.assertEqual(op.call("POST", "/v1/shows", {
            "id": "film", "title": "Film", "asset_id": "film-v1", "state": "published",
            "duration": 5})[0], 201)
        for ns in VIEWERS:
            self.assertEqual(cp.api().call("POST", "/v1/users", {
                "email": ns + "@example.com", "password": "viewer-pass",
                "display_name": ns})[0], 201)

        # Each viewer plays from its own nearest edge, which sees the viewer's own address.
        want = {TAG + "a": eu_url, TAG + "b": us_url, TAG + "c": us_url}
        plays = {}
        for ns, edge_url in want.items():
            p = plays[ns] = self.play(ns)
            self.assertTrue(p["hls_url"].startswith(edge_url + "/t/"), (VIEWERS[ns], p))
            self.assertTrue(self.follow(ns, p["router_hls_url"]).startswith(edge_url + "/t/"))
            self.plays(ns, p["hls_url"])
        for name, addrs in (("eu", [VIEWERS[TAG + "a"][0]]),
                            ("us", [VIEWERS[TAG + "b"][0], VIEWERS[TAG + "c"][0]])):
            log = os.path.join(self.dir, name + ".access")

            def seen(log=log, addrs=addrs):
                text = open(log).read() if os.path.exists(log) else ""
                return all(" client=%s " % a in text for a in addrs)
            self.assertTrue(wait_for(seen), name)
        m = cp.metrics()
        self.assertEqual(m['tmt_control_routes_total{how="location"}'], 4)
        self.assertEqual(m['tmt_control_routes_total{how="zone"}'], 2)

        # The eu edge stops heartbeating: its viewer goes to us within the health timeout...
        a = TAG + "a"
        edges["eu"].proc.send_signal(signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            self.assertTrue(wait_for(lambda: self.follow(a, plays[a]["router_hls_url"])
                                     .startswith(us_url + "/t/"), timeout=10))
            self.assertLess(time.monotonic() - stopped, 3 + 1 + 2)
            self.plays(a, self.follow(a, plays[a]["router_hls_url"]))
        finally:
            edges["eu"].proc.send_signal(signal.SIGCONT)
        # ... and back once it heartbeats again.
        self.assertTrue(wait_for(lambda: self.follow(a, plays[a]["router_hls_url"])
                                 .startswith(eu_url + "/t/"), timeout=10))

        # A database that no longer places New York, swapped in by rename: applies on SIGHUP,
        # and the New York viewer goes to the default group.
        b = TAG + "b"
        shutil.copy(os.path.join(geo, "city4.mmdb"), db + ".new")
        os.rename(db + ".new", db)
        i = len(cp.lines)
        cp.signal(signal.SIGHUP)
        cp.wait_line("geolocation database opened", start=i)
        self.assertTrue(self.follow(b, plays[b]["router_hls_url"]).startswith(eu_url + "/t/"))


if __name__ == "__main__":
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("skipped: network namespaces need root and iproute2", file=sys.stderr)
        sys.exit(77)
    unittest.main()
