"""Daemons reload on SIGHUP (a bad file changes nothing and says why; restart-only changes are
named) and exit 0 on SIGTERM."""
import os
import signal
import unittest

from harness import DAEMONS, Daemon, write_temp


class Lifecycle(unittest.TestCase):
    def test_sigterm_exits_zero(self):
        for p in DAEMONS:
            with self.subTest(p), Daemon(p) as d:
                d.wait_line("msg=\"started\"")
                self.assertEqual(d.stop(), 0)
                d.wait_line("msg=\"stopped\"")

    def test_reload(self):
        path = write_temp("[log]\nlevel = info\n")
        try:
            with Daemon("tomato-edge", "--config", path) as d:
                d.wait_line("msg=\"started\"")

                with open(path, "w") as f:
                    f.write("[log]\nlevel = noisy\n[server]\nworkers = x\n")
                d.signal(signal.SIGHUP)
                i = d.wait_line("reload rejected; settings unchanged")
                text = "\n".join(d.lines)
                self.assertIn("%s:2:9: log.level: \\\"noisy\\\" is not one of" % path, text)
                self.assertIn("%s:4:11: server.workers" % path, text)
                self.assertIn("problems=2 generation=1", d.lines[i])

                with open(path, "w") as f:
                    f.write("[log]\nlevel = debug\n[server]\nworkers = 2\n")
                d.signal(signal.SIGHUP)
                i = d.wait_line("msg=\"reloaded\" generation=2", start=i)
                text = "\n".join(d.lines)
                self.assertIn("takes effect only at restart\" key=server.workers", text)

                os.unlink(path)
                d.signal(signal.SIGHUP)
                d.wait_line("cannot open: No such file or directory", start=i)
                self.assertIsNone(d.proc.poll())
                self.assertEqual(d.stop(), 0)
        finally:
            if os.path.exists(path):
                os.unlink(path)

    def test_bad_config_fails_start(self):
        path = write_temp("[server]\nlisten = nowhere\n")
        try:
            with Daemon("tomato-shield", "-c", path) as d:
                self.assertEqual(d.proc.wait(10), 1)
                d.reader.join(5)
                self.assertIn("%s:2:10: server.listen: missing ':port'" % path, d.lines)
        finally:
            os.unlink(path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
