"""tomato-control keeps what it acknowledged: writes answered before a kill -9 are all there after
a restart (users, sessions, devices, leases, shows, signing keys, the pseudonym key), and
`tomato-control create-operator` makes the first operator from the command line."""
import os
import shutil
import signal
import tempfile
import threading
import unittest

import jwt

from harness import Control, Daemon, run


def claims(token):
    return jwt.decode(token, options={"verify_signature": False})


class ControlDurability(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-control-dur-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_kill_9_loses_nothing_acknowledged(self):
        with Control(self.dir) as cp:
            op = cp.api().login(*Control.OPERATOR)
            self.assertEqual(op.call("POST", "/v1/shows", {
                "id": "keep", "title": "Kept", "asset_id": "keep-v1", "state": "published",
                "duration": 30})[0], 201)
            a = cp.api()
            self.assertEqual(a.call("POST", "/v1/users", {
                "email": "durable@example.com", "password": "durable-pass",
                "display_name": "D"})[0], 201)
            v = a.login("durable@example.com", "durable-pass")
            dev = v.call("POST", "/v1/devices", {"name": "tv"})[1]["id"]
            st, play, _ = v.call("POST", "/v1/playback", {"show_id": "keep", "device_id": dev})
            self.assertEqual(st, 201)
            st, rot, _ = op.call("POST", "/v1/keys/rotate")
            self.assertEqual(st, 201)
            # Many writes from parallel clients; the kill comes right after the last answer.
            made = []
            lock = threading.Lock()

            def create(i):
                for j in range(20):
                    sid = "s%d_%d" % (i, j)
                    st = op.call("POST", "/v1/shows", {"id": sid, "title": sid})[0]
                    if st == 201:
                        with lock:
                            made.append(sid)

            threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(made), 160)
            cp.proc.send_signal(signal.SIGKILL)
            cp.proc.wait()
        with Control(self.dir) as cp:
            # The viewer's session survived: no new login.
            v.port = op.port = cp.port
            st, me, _ = v.call("GET", "/v1/users/me")
            self.assertEqual((st, me["email"]), (200, "durable@example.com"))
            st, doc, _ = v.call("GET", "/v1/playback")
            self.assertEqual([x["lease_id"] for x in doc["leases"]], [play["lease_id"]])
            st, doc, _ = v.call("GET", "/v1/devices")
            self.assertEqual([d["id"] for d in doc["devices"]], [dev])
            st, doc, _ = op.call("GET", "/v1/keys")
            cur = [k["kid"] for k in doc["keys"] if k["state"] == "current"]
            self.assertEqual(cur, [rot["kid"]])
            got = set()
            after = ""
            while True:
                st, doc, _ = op.call("GET", "/v1/shows?limit=100" + after)
                self.assertEqual(st, 200)
                got.update(s["id"] for s in doc["shows"])
                if doc["next"] is None:
                    break
                after = "&after=" + doc["next"]
            self.assertEqual(set(made) - got, set())
            self.assertIn("keep", got)
            # Same lease renewed, same pseudonym, signed with the rotated key.
            st, again, _ = v.call("POST", "/v1/playback", {"show_id": "keep", "device_id": dev})
            self.assertEqual((st, again["lease_id"]), (200, play["lease_id"]))
            self.assertEqual(claims(again["token"])["sub"], claims(play["token"])["sub"])
            self.assertEqual(jwt.get_unverified_header(again["token"])["kid"], rot["kid"])
            # Exactly one operator: the bootstrap did not run twice.
            st, doc, _ = op.call("GET", "/v1/users?role=operator")
            self.assertEqual(len(doc["users"]), 1)

    def test_bootstrap_operator(self):
        # The email is compared in lower case: restarts find the operator and make no other.
        with Control(self.dir, operator=("Boss@Example.COM", "boss-password-1")) as cp:
            op = cp.api().login("boss@example.com", "boss-password-1")
            self.assertEqual(op.call("GET", "/v1/users/me")[1]["role"], "operator")
        with Control(self.dir, operator=("Boss@Example.COM", "boss-password-1")) as cp:
            op = cp.api().login("boss@example.com", "boss-password-1")
            st, doc, _ = op.call("GET", "/v1/users?role=operator")
            self.assertEqual(len(doc["users"]), 1)
        # No operator, and the bootstrap email is a viewer's: no silent promotion, no start.
        other = tempfile.mkdtemp(prefix="tmt-control-boot-")
        try:
            with Control(other, operator=None) as cp:
                self.assertEqual(cp.api().call("POST", "/v1/users", {
                    "email": "taken@example.com", "password": "viewer-pass",
                    "display_name": "T"})[0], 201)
            pw = os.path.join(other, "pw")
            with open(pw, "w") as f:
                f.write("operator-pass\n")
            with Daemon("tomato-control", "--store", os.path.join(other, "store"),
                        "--set", "server.listen=127.0.0.1:0", "--set", "admin.listen=127.0.0.1:0",
                        "--set", "auth.bootstrap_operator_email=taken@example.com",
                        "--set", "auth.bootstrap_operator_password_file=" + pw) as d:
                self.assertEqual(d.proc.wait(20), 1)
                d.wait_line("bootstrap email belongs to a viewer")
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_create_operator_cli(self):
        store = os.path.join(self.dir, "store")
        args = ["--store", store, "create-operator"]
        r = run("tomato-control", *args, "boss@example.com", "The Boss",
                stdin="boss-password-1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("boss@example.com", r.stdout)
        r = run("tomato-control", *args, "boss@example.com", stdin="another-password\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        r = run("tomato-control", *args, "not-an-email", stdin="boss-password-1\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an email", r.stderr)
        r = run("tomato-control", *args, "short@example.com", stdin="short\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("password", r.stderr)
        r = run("tomato-control", *args)
        self.assertEqual(r.returncode, 2)
        r = run("tomato-control", "--store", store, "frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)
        with Control(self.dir, operator=None) as cp:
            op = cp.api().login("boss@example.com", "boss-password-1")
            st, me, _ = op.call("GET", "/v1/users/me")
            self.assertEqual((st, me["role"], me["display_name"]), (200, "operator", "The Boss"))
            self.assertEqual(op.call("GET", "/v1/users")[0], 200)
            # The store is in use while the daemon runs.
            r = run("tomato-control", *args, "second@example.com", stdin="second-password\n")
            self.assertEqual(r.returncode, 1)
            self.assertIn("running", r.stderr)


if __name__ == "__main__":
    unittest.main()
