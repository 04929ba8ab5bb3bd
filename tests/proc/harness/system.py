"""The whole system as an operator builds it (INTERFACES.md): a control plane, then a shield and
edges provisioned through its API and started from only the control URL, their node id and their
credential (plus where they listen and keep their cache). Also what viewers do with the result:
play a URL with the ffmpeg CLI to its end. Standard library only."""
import os
import re
import socket
import subprocess
import time

from . import Control, Edge, Shield

# Nodes heartbeat every second; one is unhealthy only after 10 s of silence, so that a loaded
# machine does not make routing flap.
FAST = ("nodes.heartbeat_interval=1s", "nodes.health_timeout=10s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=20.0, step=0.2):
    """Polls pred until it returns a true value (returned) or timeout passes (its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def ffmpeg_play(url, realtime=False, timeout=180):
    """Reads every stream of url to its end as a player would (-map 0 -c copy -f null).

    Returns (ok, stderr, seconds): ok when ffmpeg exits 0 without printing an error line;
    seconds is the last out_time of its progress report (how much media it went through).
    realtime (-re) reads at the media's own pace, like a viewer watching it."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1"]
    if realtime:
        argv.append("-re")
    argv += ["-i", url, "-map", "0", "-c", "copy", "-f", "null", "-"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    times = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", r.stdout, re.M)]
    secs = max(times) / 1e6 if times else 0.0
    return r.returncode == 0 and r.stderr.strip() == "", r.stderr, secs


def ffmpeg_start(url, realtime=True):
    """ffmpeg_play in the background: returns the Popen (communicate() for its output)."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-nostats", "-progress", "pipe:1"]
    if realtime:
        argv.append("-re")
    argv += ["-i", url, "-map", "0", "-c", "copy", "-f", "null", "-"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ffmpeg_finish(proc, timeout=180):
    """Waits for a process from ffmpeg_start; returns what ffmpeg_play returns."""
    out, err = proc.communicate(timeout=timeout)
    times = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", out, re.M)]
    secs = max(times) / 1e6 if times else 0.0
    return proc.returncode == 0 and err.strip() == "", err, secs


class System:
    """Daemons of one system under dir; close() stops them all (kills what is left).

    control() starts the control plane with an operator (self.op, an Api logged in);
    provision() makes a node through POST /v1/nodes; shield() and edge() start provisioned
    nodes. Each edge writes its access log to {dir}/{name}.access."""

    def __init__(self, dirpath):
        self.dir = dirpath
        self.procs = []
        self.cport = None
        self.cp = None
        self.op = None

    def control(self, *sets):
        self.cport = free_port()
        self.cp = self._keep(Control(os.path.join(self.dir, "cp"), *FAST, *sets,
                                     "server.listen=127.0.0.1:%d" % self.cport,
                                     "server.public_url=http://127.0.0.1:%d" % self.cport))
        self.op = self.cp.api().login(*Control.OPERATOR)
        return self.cp

    def provision(self, role, name, **fields):
        """POST /v1/nodes as the operator; returns (node id, port, node settings)."""
        port = free_port()
        body = {"role": role, "name": name, "public_url": "http://127.0.0.1:%d" % port}
        body.update(fields)
        st, doc, r = self.op.call("POST", "/v1/nodes", body)
        if st != 201:
            raise AssertionError("POST /v1/nodes %s: %d %r" % (name, st, r.body))
        cred = os.path.join(self.dir, name + ".cred")
        with open(cred, "w") as f:
            f.write(doc["credential"] + "\n")
        sets = ("node.control_url=http://127.0.0.1:%d" % self.cport, "node.id=" + doc["id"],
                "node.credential_file=" + cred,
                "node.state_file=" + os.path.join(self.dir, name + ".state"))
        return doc["id"], port, sets

    def shield(self, root, name="shield-1", *sets):
        nid, port, nsets = self.provision("shield", name)
        s = self._keep(Shield(root, os.path.join(self.dir, name), *nsets, *sets,
                              "server.listen=127.0.0.1:%d" % port))
        s.node_id = nid
        return s

    def edge(self, name, *sets, provisioned=None):
        """Starts an edge; provisioned=(id, port, sets) from provision(), else provisions one."""
        nid, port, nsets = provisioned or self.provision("edge", name)
        e = self._keep(Edge(*nsets, *sets, "server.listen=127.0.0.1:%d" % port,
                            "cache.warm_path=" + os.path.join(self.dir, name, "warm"),
                            "cache.cold_path=" + os.path.join(self.dir, name, "cold"),
                            "log.access_log=" + self.access_log(name)))
        e.node_id = nid
        e.node_name = name
        return e

    def access_log(self, name):
        return os.path.join(self.dir, name + ".access")

    def wait_edge_ready(self, edge, shields=1, timeout=30.0):
        """Until the edge has heartbeated, knows its shields and the control plane calls it
        healthy."""
        def ready():
            m = edge.metrics()
            if m.get("tmt_node_heartbeats_total", 0) < 1 or m.get("tmt_edge_upstreams",
                                                                     0) != shields:
                return False
            st, doc, _ = self.op.call("GET", "/v1/nodes/" + edge.node_id)
            return st == 200 and doc["health"] == "healthy"
        if not wait_for(ready, timeout):
            raise AssertionError("edge %s not ready:\n%s" % (edge.node_name,
                                                             "\n".join(edge.lines[-20:])))

    def _keep(self, daemon):
        self.procs.append(daemon)
        return daemon

    def close(self):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)
        self.procs = []
