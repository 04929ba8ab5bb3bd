"""tomato-cachesim --size replays a trace through the edge cache's policy code: the last line has
the agreed format, and LRU's figures equal those of an independent LRU model written here (the
cache keeps twice the largest cacheable object free and never admits larger ones)."""
import collections
import os
import random
import re
import unittest

from harness import run, write_temp

LAST_LINE = re.compile(r"^miss_ratio=(\d+\.\d+) byte_miss_ratio=(\d+\.\d+)$")


def make_trace(n=20000, seed=3):
    """A small VOD-like trace: assets of Zipf-ish popularity, segments read in order, early stops."""
    rnd = random.Random(seed)
    lines = ["time,obj_id,obj_size"]
    sizes = {}
    t = 0
    while len(lines) <= n:
        asset = int(rnd.paretovariate(1.0)) % 200
        rung = rnd.randrange(3)
        for seg in range(1, 2 + int(rnd.expovariate(0.2))):
            obj = asset * 1000000 + rung * 10000 + seg
            size = sizes.setdefault(obj, 1000 + (obj * 7919) % 9000)
            lines.append("%d,%d,%d" % (t, obj, size))
        t += rnd.randrange(3)
    return "\n".join(lines[:n + 1]) + "\n", [tuple(map(int, l.split(","))) for l in lines[1:n + 1]]


def lru_model(reqs, budget, max_object):
    cache = collections.OrderedDict()
    used = misses = missed = 0
    for _, obj, size in reqs:
        if obj in cache:
            cache.move_to_end(obj)
            continue
        misses += 1
        missed += size
        if size > budget or size > max_object:
            continue
        while used + size > budget:
            _, s = cache.popitem(last=False)
            used -= s
        cache[obj] = size
        used += size
    return misses, missed


class CachesimReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        text, cls.reqs = make_trace()
        cls.path = write_temp(text, suffix=".csv")

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.path)

    def replay(self, *args):
        r = run("tomato-cachesim", "--trace", self.path, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_lru_matches_model(self):
        total = sum(s for _, _, s in self.reqs)
        for budget, max_object in ((20000, 3000), (200000, 10000), (1000000, 10000)):
            lines = self.replay("--size", str(budget), "--policy", "lru", "--max-object-size",
                                str(max_object))
            m = LAST_LINE.match(lines[-1])
            self.assertIsNotNone(m, lines[-1])
            misses, missed = lru_model(self.reqs, budget - 2 * max_object, max_object)
            self.assertIn("policy=lru size_bytes=%d misses=%d missed_bytes=%d " %
                          (budget, misses, missed), lines[-3])
            self.assertEqual(m.group(1), "%.6f" % (misses / len(self.reqs)))
            self.assertEqual(m.group(2), "%.6f" % (missed / total))
            # The trace statistics still come first.
            self.assertTrue(lines[0].startswith("requests=%d " % len(self.reqs)))

    def test_every_policy(self):
        ratios = {}
        for policy in ("lru", "s3fifo", "sieve", "segpool"):
            dec = write_temp("", suffix=".txt")
            lines = self.replay("--size", "100k", "--policy", policy, "--max-object-size", "10k",
                                "--hot-size", "10k", "--warm-size", "30k", "--decisions", dec)
            m = LAST_LINE.match(lines[-1])
            self.assertIsNotNone(m, lines[-1])
            ratios[policy] = float(m.group(2))
            self.assertTrue(0 < ratios[policy] <= 1, lines[-1])
            resident = re.search(r"resident_bytes=(\d+)", lines[-3])
            self.assertLessEqual(int(resident.group(1)), 100 * 1024)
            # One decision per request, and their counts are the reported hits and misses.
            with open(dec) as f:
                decisions = collections.Counter(f.read().split())
            os.unlink(dec)
            self.assertEqual(sum(decisions.values()), len(self.reqs))
            tiers = dict(kv.split("=") for kv in lines[-2].split())
            self.assertEqual(tiers["hot_bytes"], str(10 * 1024))
            self.assertEqual(tiers["warm_bytes"], str(30 * 1024))
            for tier in ("hot", "warm", "cold"):
                self.assertEqual(decisions[tier], int(tiers["hits_" + tier]), policy)
                self.assertGreater(decisions[tier], 0, policy)
            misses = re.search(r" misses=(\d+)", lines[-3])
            self.assertEqual(decisions["miss"], int(misses.group(1)))
        # The default policy is the edge's own.
        self.assertIn("policy=segpool ", self.replay("--size", "100k")[-3])

    def test_no_size_no_replay(self):
        lines = self.replay()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[-1].startswith("compulsory_miss_ratio="))

    def test_bad_split(self):
        r = run("tomato-cachesim", "--trace", self.path, "--size", "100k", "--hot-size", "60k",
                "--warm-size", "60k")
        self.assertEqual(r.returncode, 1)
        self.assertIn("sim.hot_size", r.stderr)
        r = run("tomato-cachesim", "--trace", self.path, "--size", "30k", "--max-object-size", "15k")
        self.assertEqual(r.returncode, 1)
        self.assertIn("reserve", r.stderr)

    def test_bad_policy(self):
        r = run("tomato-cachesim", "--trace", self.path, "--size", "1M", "--policy", "arc")
        self.assertEqual(r.returncode, 1)
        self.assertIn("sim.policy", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
