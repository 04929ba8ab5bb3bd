"""Transcode jobs on the shield's admin listener, as an operator (or the control plane) uses them:
POST /v1/jobs makes an asset from a source under jobs.source_root in the background, GET shows
its state and progress, and the shield then packages the asset; bad requests get 400/415/422 and
conflicts 409 without a job; a source that is not media fails with its reason; DELETE cancels a
running job and leaves nothing in the mezzanine root; a shield killed mid-job runs the job again
when it restarts (the half-made folder removed), and a graceful stop puts it back in the queue
without counting an attempt."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import Shield, http_get, http_request

CRED = "jobs-admin-credential-for-the-tests"
FAST_LADDER = "180:300k,120:150k"


def make_source(path, seconds, size="320x180", rate=25):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=%s:rate=%d" % (size, rate), "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=44100", "-t", str(seconds), "-c:v",
                    "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", path],
                   check=True, timeout=120)


def wait_for(pred, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Jobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tmt-jobs-")
        cls.src = os.path.join(cls.dir, "sources")
        os.makedirs(os.path.join(cls.src, "in"))
        make_source(os.path.join(cls.src, "in", "short.mp4"), 5)
        # Long enough at 640x360 with a slow preset to be caught mid-job.
        make_source(os.path.join(cls.src, "long.mp4"), 40, size="640x360")
        with open(os.path.join(cls.src, "notes.txt"), "w") as f:
            f.write("not a video\n")
        with open(os.path.join(cls.dir, "secret.mp4"), "w") as f:
            f.write("outside the source root\n")
        os.symlink(os.path.join(cls.dir, "secret.mp4"), os.path.join(cls.src, "escape.mp4"))
        with open(os.path.join(cls.dir, "admin.cred"), "w") as f:
            f.write(CRED + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.case = tempfile.mkdtemp(dir=self.dir)
        self.mezz = os.path.join(self.case, "mezz")
        os.makedirs(self.mezz)

    def shield(self, *sets):
        return Shield(self.mezz, os.path.join(self.case, "shield"), "server.open=true",
                      "jobs.source_root=" + self.src,
                      "admin.credential_file=" + os.path.join(self.dir, "admin.cred"),
                      "transcode.ladder=" + FAST_LADDER, *sets)

    def call(self, s, method, path, body=None, cred=CRED, ctype="application/json"):
        extra = ""
        if cred:
            extra += "Authorization: Bearer %s\r\n" % cred
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            extra += "Content-Type: %s\r\n" % ctype
        r = http_request(s.admin_port, method, path, extra, data)
        doc = None
        if r.body:
            try:
                doc = json.loads(r.body)
            except ValueError:
                pass
        return r.status, doc, r

    def job(self, s, asset):
        return self.call(s, "GET", "/v1/jobs/" + asset)[1]

    def wait_state(self, s, asset, states, timeout=60):
        got = wait_for(lambda: self.job(s, asset)["state"] in states and self.job(s, asset),
                       timeout=timeout)
        self.assertTrue(got, self.job(s, asset))
        return self.job(s, asset)

    def test_job_makes_an_asset_the_shield_packages(self):
        with self.shield() as s:
            st, doc, r = self.call(s, "POST", "/v1/jobs", {"asset": "film-v1",
                                                           "source": "in/short.mp4"})
            self.assertEqual(st, 201, r.body)
            self.assertEqual(r.header("location"), "/v1/jobs/film-v1")
            self.assertIn(doc["state"], ("queued", "running"))
            # The same request again is the same job; another source for the asset is refused.
            st, again, _ = self.call(s, "POST", "/v1/jobs", {"asset": "film-v1",
                                                             "source": "in/short.mp4"})
            self.assertEqual((st, again["id"]), (200, "film-v1"))
            self.assertEqual(self.call(s, "POST", "/v1/jobs", {
                "asset": "film-v1", "source": "long.mp4"})[0], 409)
            done = self.wait_state(s, "film-v1", ("succeeded", "failed"))
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual([(x["id"], x["height"]) for x in done["result"]["renditions"]],
                             [("180p", 180), ("120p", 120)])
            self.assertTrue(done["result"]["audio"])
            self.assertEqual(done["attempts"], 1)
            # The shield packages what the job made; ffmpeg reads every rendition.
            m = http_get(s.port, "/v/film-v1/master.m3u8")
            self.assertEqual(m.status, 200)
            r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                                "http://127.0.0.1:%d/v/film-v1/master.m3u8" % s.port, "-map",
                                "0", "-c", "copy", "-f", "null", "-"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertEqual([n for n in os.listdir(self.mezz)], ["film-v1"])
            # A new job for an asset that exists: 409, assets are immutable.
            shutil.copytree(os.path.join(self.mezz, "film-v1"), os.path.join(self.mezz, "x-v1"))
            self.assertEqual(self.call(s, "POST", "/v1/jobs", {
                "asset": "x-v1", "source": "in/short.mp4"})[0], 409)
            # The list, newest first; the counters.
            st, lst, _ = self.call(s, "GET", "/v1/jobs")
            self.assertEqual([j["id"] for j in lst["jobs"]], ["film-v1"])
            self.assertTrue(wait_for(lambda: s.metrics().get(
                'tmt_shield_jobs_total{result="succeeded"}') == 1))

    def test_bad_requests_and_bad_sources(self):
        with self.shield() as s:
            good = {"asset": "a1", "source": "in/short.mp4"}
            self.assertEqual(self.call(s, "POST", "/v1/jobs", good, cred=None)[0], 401)
            self.assertEqual(self.call(s, "POST", "/v1/jobs", good, ctype="text/plain")[0], 415)
            cases = [
                (b"{not json", 400),
                (dict(good, colour="red"), 400),
                ({"asset": "a1"}, 422),
                (dict(good, asset="a/1"), 422),
                (dict(good, source="../secret.mp4"), 422),
                (dict(good, source="/etc/passwd"), 422),
                (dict(good, source="in/../in/short.mp4"), 422),
                (dict(good, source="missing.mp4"), 422),
                (dict(good, source="escape.mp4"), 422),
                (dict(good, source="in"), 422),
                (dict(good, ladder="1080:lots"), 422),
                (dict(good, preset="warp"), 422),
                (dict(good, segment_duration=0.5), 422),
            ]
            for body, want in cases:
                st, doc, r = self.call(s, "POST", "/v1/jobs", body)
                self.assertEqual(st, want, (body, r.body))
                self.assertTrue(doc["error"] and doc["detail"], r.body)
            self.assertEqual(self.call(s, "GET", "/v1/jobs")[1], {"jobs": []})
            self.assertEqual(self.call(s, "GET", "/v1/jobs/none")[0], 404)
            self.assertEqual(self.call(s, "PUT", "/v1/jobs/none", {})[0], 405)
            # A source that is not media: the job fails with a reason, and leaves nothing.
            st, _, _ = self.call(s, "POST", "/v1/jobs", {"asset": "txt", "source": "notes.txt"})
            self.assertEqual(st, 201)
            done = self.wait_state(s, "txt", ("succeeded", "failed"))
            self.assertEqual(done["state"], "failed")
            self.assertIn("notes.txt", done["error"])
            self.assertEqual(os.listdir(self.mezz), [])
            # Submitted again after the failure: a new run of the same job.
            st, doc, _ = self.call(s, "POST", "/v1/jobs", {"asset": "txt", "source": "notes.txt"})
            self.assertEqual((st, doc["state"]), (201, "queued"))
            self.assertEqual(self.call(s, "DELETE", "/v1/jobs/txt")[0] in (202, 409), True)

    def test_cancel_leaves_nothing(self):
        with self.shield("transcode.preset=slow") as s:
            self.assertEqual(self.call(s, "POST", "/v1/jobs", {
                "asset": "long-v1", "source": "long.mp4", "ladder": "360:800k,180:300k"})[0], 201)
            running = self.wait_state(s, "long-v1", ("running",))
            self.assertTrue(wait_for(lambda: self.job(s, "long-v1").get(
                "progress", {}).get("percent", 0) > 0))
            self.assertEqual(running["state"], "running")
            st, doc, _ = self.call(s, "DELETE", "/v1/jobs/long-v1")
            self.assertEqual(st, 202)
            self.assertIn(doc["state"], ("cancelling", "cancelled"))
            done = self.wait_state(s, "long-v1", ("cancelled", "succeeded", "failed"))
            self.assertEqual(done["state"], "cancelled")
            self.assertEqual(os.listdir(self.mezz), [])
            self.assertEqual(self.call(s, "DELETE", "/v1/jobs/long-v1")[0], 409)

    def test_restart_runs_an_interrupted_job_again(self):
        body = {"asset": "long-v2", "source": "long.mp4", "ladder": "360:800k,180:300k",
                "preset": "slow"}
        s = self.shield()
        with s:
            self.assertEqual(self.call(s, "POST", "/v1/jobs", body)[0], 201)
            self.assertTrue(wait_for(lambda: self.job(s, "long-v2").get(
                "progress", {}).get("percent", 0) > 0))
            partial = [n for n in os.listdir(self.mezz) if n.startswith(".long-v2.partial-")]
            self.assertEqual(len(partial), 1)
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait()
        self.assertTrue(os.path.isdir(os.path.join(self.mezz, partial[0])))
        with self.shield() as s:
            job = self.job(s, "long-v2")
            self.assertIn(job["state"], ("queued", "running"))
            self.assertFalse(os.path.exists(os.path.join(self.mezz, partial[0])))
            self.assertTrue(wait_for(lambda: self.job(s, "long-v2").get(
                "progress", {}).get("percent", 0) > 0))
            # A graceful stop puts it back in the queue; the attempt is not counted.
            s.proc.send_signal(signal.SIGTERM)
            self.assertEqual(s.proc.wait(timeout=30), 0)
        with self.shield() as s:
            done = self.wait_state(s, "long-v2", ("succeeded", "failed"), timeout=180)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual(done["attempts"], 2)
            self.assertEqual(sorted(os.listdir(self.mezz)), ["long-v2"])
            self.assertEqual(http_get(s.port, "/v/long-v2/master.m3u8").status, 200)


if __name__ == "__main__":
    unittest.main()
