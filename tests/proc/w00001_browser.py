"""Real web players in headless Chromium play the shield's HLS (hls.js) and DASH (dash.js), from the
shield itself and from an edge in front of it: playback starts, a seek into the middle plays on,
a forced switch to another rendition shows that rendition's frames, and a seek into the last
segment plays to the end, with no player error and no failed request. The page comes from
another loopback origin than the media, so every media response needs CORS, as for viewers.

Needs node, npm and Debian's chromium (scripts/setup.sh installs them); a missing one fails the
test. The players come from tests/browser/package-lock.json: `npm ci` runs there when
node_modules is missing or older than the lock file. Label: browser (the sanitizer run skips it).
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import SRC, Edge, Shield, npm_ci
from harness.media import make_asset

BROWSER_DIR = os.path.join(SRC, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# 24 s in 4 s segments: a middle to seek into and a last segment to play out.
SECONDS = 24
SEGMENT = 4


def missing_tools():
    missing = [t for t in ("node", "npm", "ffmpeg", "ffprobe") if shutil.which(t) is None]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


def ensure_node_modules():
    """Runs `npm ci` in tests/browser unless node_modules matches package-lock.json already."""
    lock = os.path.join(BROWSER_DIR, "package-lock.json")
    installed = os.path.join(BROWSER_DIR, "node_modules", ".package-lock.json")
    if os.path.exists(installed) and os.path.getmtime(installed) >= os.path.getmtime(lock):
        return
    npm_ci(BROWSER_DIR)


class BrowserPlayers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = missing_tools()
        if missing:
            raise AssertionError("browser test needs %s: run scripts/setup.sh (Debian packages "
                                 "chromium, nodejs, npm, ffmpeg)" % ", ".join(missing))
        ensure_node_modules()
        cls.dir = tempfile.mkdtemp(prefix="tmt-browser-")
        cls.root = os.path.join(cls.dir, "mezz")
        make_asset(cls.root, "a1", seconds=SECONDS, seg=SEGMENT)
        cls.duration = float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             os.path.join(cls.root, "a1", "360p.mp4")], capture_output=True, text=True).stdout)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def play(self, base):
        """Plays base + master.m3u8 with hls.js and base + manifest.mpd with dash.js."""
        argv = ["node", os.path.join(BROWSER_DIR, "play.mjs"), "--chromium", CHROMIUM,
                "--duration", "%.3f" % self.duration,
                "--hls", base + "master.m3u8", "--dash", base + "manifest.mpd"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=400)
        print(r.stdout, end="")
        if r.stderr:
            print(r.stderr, end="")
        self.assertEqual(r.returncode, 0, "players failed:\n" + r.stdout + r.stderr)

    def shield(self, cache):
        return Shield(self.root, os.path.join(self.dir, cache), "server.open=true")

    def test_players_from_the_shield(self):
        with self.shield("shield1") as s:
            self.play(s.url("/v/a1/"))

    def test_players_from_an_edge_in_front_of_the_shield(self):
        with self.shield("shield2") as s:
            # The players fetch /v/ without tokens (tokens.public; c00004 tests the tokens).
            with Edge("upstream.shields=127.0.0.1:%d" % s.port, "tokens.public=/v/",
                      "cache.warm_path=" + os.path.join(self.dir, "edge-warm"),
                      "cache.cold_path=" + os.path.join(self.dir, "edge-cold")) as e:
                self.play(e.url("/v/a1/"))


if __name__ == "__main__":
    unittest.main()
