"""Process-level test harness: runs the real programs from the build tree and watches their logs.

Standard library only. The build's bin/ comes from $TMT_BIN (CTest sets it), the source tree
from $TMT_SRC.
"""
import os
import signal
import subprocess
import tempfile
import threading
import time

BIN = os.environ.get("TMT_BIN") or os.path.join(os.path.dirname(__file__), "../../../build/bin")
SRC = os.environ.get("TMT_SRC") or os.path.join(os.path.dirname(__file__), "../../..")
PROGRAMS = ["tomato-edge", "tomato-shield", "tomato-control", "tomato-load", "tomato-cachesim"]
DAEMONS = ["tomato-edge", "tomato-shield", "tomato-control"]


def prog(name):
    return os.path.join(BIN, name)


def run(name, *args, stdin=None, timeout=60):
    """Runs a program to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([prog(name), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def write_temp(text, suffix=".conf", dirpath=None):
    fd, path = tempfile.mkstemp(suffix=suffix, dir=dirpath)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Daemon:
    """A daemon started in the background whose stderr (the log) is collected line by line."""

    def __init__(self, name, *args):
        self.name = name
        self.proc = subprocess.Popen([prog(name), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, needle, start=0, timeout=10.0):
        """Waits for a log line containing needle at index >= start; returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError("%s: no log line with %r; log:\n%s" %
                                         (self.name, needle, "\n".join(self.lines)))
                self.cond.wait(left)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then the exit code (killing it if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %.0fs of SIGTERM" % (self.name, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
