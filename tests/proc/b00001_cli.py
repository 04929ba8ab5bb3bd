"""Every program answers --help, --version, --check-config, --dump-config and reports bad
settings as FILE:LINE: message, with the documented exit codes."""
import os
import re
import unittest

from harness import DAEMONS, PROGRAMS, SRC, run, write_temp


class Cli(unittest.TestCase):
    def test_help_and_version(self):
        for p in PROGRAMS:
            with self.subTest(p):
                r = run(p, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("Usage: %s" % p, r.stdout)
                self.assertIn("--check-config", r.stdout)
                r = run(p, "-V")
                self.assertEqual(r.returncode, 0)
                self.assertRegex(r.stdout, r"^%s \d+\.\d+\.\d+\n$" % p)

    def test_usage_errors_exit_2(self):
        for p in PROGRAMS:
            with self.subTest(p):
                r = run(p, "--no-such-flag")
                self.assertEqual(r.returncode, 2)
                self.assertIn("unknown option '--no-such-flag'", r.stderr)
                r = run(p, "--config")
                self.assertEqual(r.returncode, 2)
                self.assertIn("--config needs a value", r.stderr)
                r = run(p, "--set", "novalue")
                self.assertEqual(r.returncode, 2)

    def test_examples_are_valid(self):
        examples = os.path.join(SRC, "config", "examples")
        names = {"edge.conf": "tomato-edge", "shield.conf": "tomato-shield",
                 "control.conf": "tomato-control", "load.conf": "tomato-load"}
        for f, p in names.items():
            with self.subTest(f):
                r = run(p, "--check-config", "--config", os.path.join(examples, f))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("settings are valid", r.stdout)

    def test_defaults_are_valid_and_dump_round_trips(self):
        for p in DAEMONS + ["tomato-load"]:
            with self.subTest(p):
                r = run(p, "--check-config")
                self.assertEqual(r.returncode, 0, r.stderr)
                dump = run(p, "--dump-config").stdout
                path = write_temp(dump)
                try:
                    r2 = run(p, "--config", path, "--dump-config")
                    self.assertEqual(r2.returncode, 0, r2.stderr)
                    self.assertEqual(r2.stdout, dump)
                finally:
                    os.unlink(path)

    def test_default_ports(self):
        want = {"tomato-edge": ("127.0.0.1:8080", "127.0.0.1:9080"),
                "tomato-shield": ("127.0.0.1:8300", "127.0.0.1:9300"),
                "tomato-control": ("127.0.0.1:8400", "127.0.0.1:9400")}
        for p, (viewer, admin) in want.items():
            dump = run(p, "--dump-config").stdout
            self.assertRegex(dump, r"\[server\][^\[]*\nlisten = %s\n" % re.escape(viewer))
            self.assertRegex(dump, r"\[admin\][^\[]*\nlisten = %s\n" % re.escape(admin))

    def test_bad_file_lists_every_problem(self):
        path = write_temp("[server]\nlisten = 127.0.0.1:99999\nworkers = 1000\n"
                          "[log]\nlevel = loud\n[caches]\n")
        try:
            r = run("tomato-edge", "--check-config", "-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.splitlines(), [
                "%s:2:10: server.listen: port must be a number from 0 to 65535" % path,
                "%s:3:11: server.workers: 1000 is out of range [0, 256]" % path,
                "%s:5:9: log.level: \"loud\" is not one of error|warn|info|debug" % path,
                "%s:6:2: unknown section [caches]" % path,
                "tomato-edge: settings are not valid",
            ])
        finally:
            os.unlink(path)

    def test_missing_file(self):
        r = run("tomato-shield", "--check-config", "-c", "/nonexistent/x.conf")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/x.conf: cannot open: No such file or directory", r.stderr)

    def test_flags_override_file(self):
        path = write_temp("[static]\nroot = /from/file\n[server]\nlisten = 127.0.0.1:1\n")
        try:
            r = run("tomato-edge", "-c", path, "--static", "/from/flag",
                    "--set", "server.listen=127.0.0.1:2", "--dump-config")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("root = /from/flag\n", r.stdout)
            self.assertIn("listen = 127.0.0.1:2\n", r.stdout)
        finally:
            os.unlink(path)

    def test_cross_key_check_names_the_line(self):
        path = write_temp("[server]\n\ntls_listen = 127.0.0.1:8443\n")
        try:
            r = run("tomato-edge", "--check-config", "-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:3: server.tls_listen: HTTPS needs tls.cert and tls.key" % path,
                          r.stderr)
        finally:
            os.unlink(path)

    def test_load_without_assets_says_what_is_missing(self):
        # The default mode simulates viewers, which need assets to watch: nothing is sent.
        r = run("tomato-load")
        self.assertEqual(r.returncode, 1)
        self.assertIn("viewers.assets", r.stderr)
        r = run("tomato-load", "bogus-mode")
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
