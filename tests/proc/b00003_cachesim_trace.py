"""tomato-cachesim reads a trace, prints its statistics, and names the line of a bad one."""
import os
import unittest

from harness import run, write_temp


class CachesimTrace(unittest.TestCase):
    def test_stats(self):
        # Objects 1 (100 B), 2 (50 B), 3 (10 B); 6 requests, 260 bytes requested.
        path = write_temp("time,obj_id,obj_size\n0,1,100\n0,2,50\n1,1,100\n2,3,10\n2,2,50\n"
                          "9,3,10\n", suffix=".csv")
        try:
            r = run("tomato-cachesim", "--trace", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines(), [
                "requests=6 objects=3 footprint_bytes=160 requested_bytes=320 duration_s=9",
                "compulsory_miss_ratio=0.5000 compulsory_byte_miss_ratio=0.5000",
            ])
            # The same trace from stdin.
            with open(path) as f:
                r = run("tomato-cachesim", "--trace", "-", stdin=f.read())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("requests=6 objects=3", r.stdout)
        finally:
            os.unlink(path)

    def test_bad_trace(self):
        path = write_temp("time,obj_id,obj_size\n0,1,100\n1,two,5\n", suffix=".csv")
        try:
            r = run("tomato-cachesim", "--trace", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:3: expected three unsigned integers" % path, r.stderr)
        finally:
            os.unlink(path)

    def test_trace_is_required(self):
        r = run("tomato-cachesim")
        self.assertEqual(r.returncode, 1)
        self.assertIn("sim.trace is required", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
