"""Static mode keeps files open for a second (its open-file cache): a changed, added or removed
file shows within that second plus a little, and never as a mix of old and new."""
import os
import shutil
import tempfile
import time
import unittest

from harness import Edge, http_get


class StaticChanges(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.root)

    def write(self, name, data):
        tmp = os.path.join(self.root, ".tmp-" + name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.root, name))

    def test_changes_show_within_the_cache_lifetime(self):
        small_v1, small_v2 = b"one\n", b"second version\n"
        big_v1, big_v2 = os.urandom(300 * 1024), os.urandom(200 * 1024)
        self.write("s.txt", small_v1)
        self.write("b.bin", big_v1)
        with Edge(static=self.root, workers=1) as e:
            for _ in range(3):
                self.assertEqual(http_get(e.port, "/s.txt").body, small_v1)
                self.assertEqual(http_get(e.port, "/b.bin").body, big_v1)
            self.write("s.txt", small_v2)
            self.write("b.bin", big_v2)
            deadline = time.monotonic() + 3
            seen = set()
            while time.monotonic() < deadline:
                s = http_get(e.port, "/s.txt").body
                b = http_get(e.port, "/b.bin").body
                self.assertIn(s, (small_v1, small_v2))
                self.assertIn(b, (big_v1, big_v2))
                seen.add((s, b))
                if (s, b) == (small_v2, big_v2):
                    break
                time.sleep(0.1)
            self.assertIn((small_v2, big_v2), seen)
            # Removed files stop being served once the cached entry expires.
            os.unlink(os.path.join(self.root, "s.txt"))
            deadline = time.monotonic() + 3
            status = 200
            while time.monotonic() < deadline and status == 200:
                status = http_get(e.port, "/s.txt").status
                time.sleep(0.1)
            self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
