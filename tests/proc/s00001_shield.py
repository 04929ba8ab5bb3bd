"""tomato-shield packages HLS and DASH on request from ffmpeg-made mezzanines: real clients
(ffprobe, ffmpeg) read the master playlist and the MPD over HTTP, directly and through an edge,
and list every rendition with no error; segments start on keyframes and add up to the
mezzanine's duration; the shield cache answers repeats (X-Cache HIT) and coalesces concurrent
misses into one packaging; the index survives a restart; bad requests and damaged mezzanines
get 400/404/502 while other assets keep working; /v/ needs the fill key unless open."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Edge, Shield, http_get, http_request
from harness.media import make_asset

FILL_KEY = "fill-key-for-the-shield-tests"


def ff(*args, timeout=120):
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *args], capture_output=True,
                          text=True, timeout=timeout)


def probe(url):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of",
                          "json", url], capture_output=True, text=True, timeout=120)
    return out, (json.loads(out.stdout) if out.returncode == 0 else None)


class ShieldPackaging(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tmt-shield-")
        cls.root = os.path.join(cls.dir, "mezz")
        make_asset(cls.root, "a1")
        # A second asset whose mezzanine gets damaged (truncated) after asset.json is written.
        d = make_asset(cls.root, "bad", seconds=5, rungs=[("180p", 320, 180, 300000)])
        with open(os.path.join(d, "180p.mp4"), "r+b") as f:
            f.truncate(os.path.getsize(os.path.join(d, "180p.mp4")) // 2)
        cls.dur = float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             os.path.join(cls.root, "a1", "360p.mp4")], capture_output=True, text=True).stdout)
        with open(os.path.join(cls.dir, "fill.key"), "w") as f:
            f.write(FILL_KEY + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def shield(self, *sets, cache="c1"):
        return Shield(self.root, os.path.join(self.dir, cache), "server.open=true", *sets)

    def test_real_clients_read_hls_and_dash(self):
        with self.shield() as s:
            for manifest in ("master.m3u8", "manifest.mpd"):
                url = s.url("/v/a1/" + manifest)
                out, info = probe(url)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stderr, "", manifest)
                sizes = sorted((st.get("width"), st.get("height")) for st in info["streams"]
                               if st["codec_type"] == "video")
                self.assertEqual(sizes, [(320, 180), (480, 270), (640, 360)], manifest)
                self.assertTrue(any(st["codec_type"] == "audio" for st in info["streams"]))
                r = ff("-i", url, "-map", "0", "-c", "copy", "-f", "null", "-")
                self.assertEqual((r.returncode, r.stderr), (0, ""), manifest)
                # The whole duration is read.
                r = subprocess.run(["ffmpeg", "-nostdin", "-i", url, "-map", "0:v:0", "-c",
                                    "copy", "-f", "null", "-"], capture_output=True, text=True)
                last = [ln for ln in r.stderr.splitlines() if "time=" in ln][-1]
                t = last.split("time=")[1].split()[0]
                h, m, sec = t.split(":")
                self.assertAlmostEqual(int(h) * 3600 + int(m) * 60 + float(sec), self.dur,
                                       delta=0.2, msg=manifest)
            r = http_get(s.port, "/v/a1/master.m3u8")
            self.assertEqual(r.header("content-type"), "application/vnd.apple.mpegurl")
            self.assertIn(b"#EXT-X-STREAM-INF", r.body)
            self.assertEqual(http_get(s.port, "/v/a1/manifest.mpd").header("content-type"),
                             "application/dash+xml")

    def test_segments_keyframes_durations_and_headers(self):
        with self.shield() as s:
            pl = http_get(s.port, "/v/a1/360p/index.m3u8")
            self.assertEqual(pl.status, 200)
            text = pl.body.decode()
            self.assertIn("#EXT-X-MAP:URI=\"init.mp4\"", text)
            extinf = [float(ln.split(":")[1].rstrip(",")) for ln in text.splitlines()
                      if ln.startswith("#EXTINF")]
            self.assertAlmostEqual(sum(extinf), self.dur, delta=1 / 24 + 0.001)
            init = http_get(s.port, "/v/a1/360p/init.mp4")
            self.assertEqual((init.status, init.header("content-type")), (200, "video/mp4"))
            self.assertIn("immutable", init.header("cache-control"))
            for n in range(1, len(extinf) + 1):
                seg = http_get(s.port, "/v/a1/360p/%d.m4s" % n)
                self.assertEqual(seg.status, 200)
                self.assertEqual(seg.header("content-type"), "video/iso.segment")
                self.assertIsNotNone(seg.header("etag"))
                self.assertIsNotNone(seg.header("last-modified"))
                path = os.path.join(self.dir, "seg%d.mp4" % n)
                with open(path, "wb") as f:
                    f.write(init.body + seg.body)
                out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0",
                                      "-show_entries", "packet=flags", "-of", "csv=p=0",
                                      "-read_intervals", "%+#1", path],
                                     capture_output=True, text=True)
                self.assertTrue(out.stdout.startswith("K"), (n, out.stdout, out.stderr))
            # Ranges and conditionals come from the stored object.
            r = http_get(s.port, "/v/a1/360p/1.m4s", extra="Range: bytes=0-99\r\n")
            self.assertEqual((r.status, len(r.body)), (206, 100))
            etag = http_get(s.port, "/v/a1/360p/1.m4s").header("etag")
            r = http_get(s.port, "/v/a1/360p/1.m4s", extra="If-None-Match: %s\r\n" % etag)
            self.assertEqual(r.status, 304)

    def test_cache_hits_coalescing_and_restart(self):
        # No RAM tier, so that everything is on disk (RAM is not kept across a restart).
        with self.shield("cache.ram_size=0", cache="c2") as s:
            paths = ["/v/a1/270p/%d.m4s" % n for n in (1, 2, 3)]
            with concurrent.futures.ThreadPoolExecutor(24) as ex:
                rs = list(ex.map(lambda p: http_get(s.port, p), paths * 8))
            bodies = {}
            for p, r in zip(paths * 8, rs):
                self.assertEqual(r.status, 200)
                self.assertEqual(bodies.setdefault(p, r.body), r.body)
            m = s.metrics()
            self.assertEqual(m.get("tmt_shield_packaged_total", 0), 3)
            self.assertEqual(m.get("tmt_shield_index_builds_total", 0), 1)
            r = http_get(s.port, paths[0])
            self.assertEqual(r.header("x-cache"), "HIT")
            self.assertEqual(r.body, bodies[paths[0]])
            self.assertEqual(s.stop(), 0)
        # After a restart: hits from the disk tier, and the index is not built again.
        with self.shield("cache.ram_size=0", cache="c2") as s:
            r = http_get(s.port, paths[1])
            self.assertEqual((r.header("x-cache"), r.body), ("HIT", bodies[paths[1]]))
            r = http_get(s.port, "/v/a1/270p/init.mp4")
            self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"))
            self.assertEqual(s.metrics().get("tmt_shield_index_builds_total", 0), 0)

    def test_index_kept_across_restart_with_defaults(self):
        # The RAM tier (default size) is not kept, but the asset's index is.
        with self.shield(cache="c6") as s:
            self.assertEqual(http_get(s.port, "/v/a1/master.m3u8").status, 200)
            self.assertEqual(s.metrics().get("tmt_shield_index_builds_total", 0), 1)
            self.assertEqual(s.stop(), 0)
        with self.shield(cache="c6") as s:
            r = http_get(s.port, "/v/a1/180p/1.m4s")
            self.assertEqual((r.status, r.header("x-cache")), (200, "MISS"))
            self.assertEqual(s.metrics().get("tmt_shield_index_builds_total", 0), 0)
            self.assertEqual(s.metrics().get("tmt_shield_packaged_total", 0), 1)

    def test_bad_requests_and_damaged_mezzanine(self):
        with self.shield(cache="c3") as s:
            cases = {
                "/v/a%2F1/master.m3u8": 400, "/v/" + "x" * 65 + "/master.m3u8": 400,
                "/v/a.b/master.m3u8": 400, "/v/nope/master.m3u8": 404,
                "/v/a1/1080p/index.m3u8": 404, "/v/a1/360p/99.m4s": 404,
                "/v/a1/360p/0.m4s": 404, "/v/a1/360p/01.m4s": 404, "/v/a1/other": 404,
                "/v/a1/360p/x.m4s": 404, "/elsewhere": 404,
            }
            for path, want in cases.items():
                self.assertEqual(http_get(s.port, path).status, want, path)
            self.assertEqual(http_request(s.port, "POST", "/v/a1/master.m3u8").status, 405)
            r = http_get(s.port, "/v/bad/master.m3u8")
            self.assertEqual(r.status, 502)
            i = s.wait_line("cannot index the asset")
            self.assertIn("180p.mp4", s.lines[i])
            # The daemon keeps serving other assets.
            self.assertEqual(http_get(s.port, "/v/a1/180p/1.m4s").status, 200)
            self.assertGreaterEqual(s.metrics().get("tmt_shield_errors_total", 0), 1)

    def test_fill_key(self):
        key = os.path.join(self.dir, "fill.key")
        with Shield(self.root, os.path.join(self.dir, "c4"), "fill.key_file=" + key) as s:
            self.assertEqual(http_get(s.port, "/v/a1/master.m3u8").status, 401)
            r = http_get(s.port, "/v/a1/master.m3u8", extra="Authorization: Bearer wrong-key-xxxxxxxx\r\n")
            self.assertEqual(r.status, 401)
            r = http_get(s.port, "/v/a1/master.m3u8",
                         extra="Authorization: Bearer %s\r\n" % FILL_KEY)
            self.assertEqual(r.status, 200)
            # An edge with the key in front of it: ffmpeg reads the whole asset through it.
            # /v/ without tokens (tokens.public; c00004 tests the tokens).
            with Edge("upstream.shields=127.0.0.1:%d" % s.port, "upstream.fill_key_file=" + key,
                      "tokens.public=/v/",
                      "cache.warm_path=" + os.path.join(self.dir, "ew"),
                      "cache.cold_path=" + os.path.join(self.dir, "ec")) as e:
                for manifest in ("master.m3u8", "manifest.mpd"):
                    r = ff("-i", e.url("/v/a1/" + manifest), "-map", "0", "-c", "copy", "-f",
                           "null", "-")
                    self.assertEqual((r.returncode, r.stderr), (0, ""), manifest)
                r = http_get(e.port, "/v/a1/360p/2.m4s")
                self.assertEqual(r.header("x-cache"), "HIT-hot")
                self.assertIn("tomato-shield", r.header("cache-status") or "")
        # No key and not open: refused with a reason.
        with Shield(self.root, os.path.join(self.dir, "c5")) as s:
            r = http_get(s.port, "/v/a1/master.m3u8")
            self.assertEqual(r.status, 403)
            self.assertIn(b"fill.key_file", r.body)


if __name__ == "__main__":
    unittest.main()
