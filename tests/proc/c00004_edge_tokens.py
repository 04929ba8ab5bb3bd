"""tomato-edge enforces playback tokens on protected paths (tokens.protect, default /v/): a valid
token plays, and every bad one (missing, malformed, expired, not yet valid, forged, unknown key,
another asset, '..' out of its prefix, alg none, HS512, cdniv 2, revoked lease) gets 403 with
X-Tomato-Reason and never reaches the cache or the origin. Tokens are minted here with
python3-jwt as the control plane mints them (docs: INTERFACES "Tokens"). Also: the verified-token
cache still applies every rule, SIGHUP reads the keys file again (a bad one keeps the old keys),
a bad keys file stops the start with its line, the revocation admin call, public prefixes, an
access log without tokens, and ffmpeg playing HLS and DASH from a real shield through the edge
with the token in the path only (relative URIs carry it to every segment)."""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import jwt

from harness import Daemon, Edge, Shield, http_get, http_request
from harness.media import make_asset
from harness.origin import Origin

CRED = "s3cret-admin-credential-0123"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body(n, seed):
    return bytes((i * 7 + seed) % 253 for i in range(n))


class Key:
    def __init__(self, kid, seed):
        self.kid = kid
        self.secret = bytes((seed + i * 13) % 256 for i in range(32))

    def line(self):
        return "%s %s\n" % (self.kid, b64u(self.secret))


K1, K2, K9 = Key("k1", 1), Key("k-2", 2), Key("k9", 9)


def claims(asset, exp=None, lease="lease-1", **extra):
    now = int(time.time())
    c = {"iss": "ctl-test", "sub": "u-5e1f", "iat": now - 5,
         "exp": exp if exp is not None else now + 600, "cdniv": 1,
         "cdniuc": "regex:^/v/%s/" % asset.replace("-", "\\-"), "tmt_dev": "dev-1",
         "tmt_lease": lease}
    c.update(extra)
    return c


def mint(key, asset, alg="HS256", secret=None, **kw):
    return jwt.encode(claims(asset, **kw), secret if secret is not None else key.secret,
                      algorithm=alg, headers={"kid": key.kid})


def unsigned(key, asset):
    """alg none: the header says so and the signature is empty."""
    h = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    p = b64u(json.dumps(claims(asset)).encode())
    return "%s.%s." % (h, p)


class EdgeTokens(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tmt-edge-tokens-")
        self.origin = Origin()
        self.cred_file = os.path.join(self.dir, "admin.cred")
        with open(self.cred_file, "w") as f:
            f.write(CRED + "\n")
        self.keys = os.path.join(self.dir, "token.keys")
        self.write_keys("# test keys\n" + K1.line() + K2.line())
        self.log = os.path.join(self.dir, "access.log")
        self.seg = body(3000, 1)
        self.put("/v/a-1/720p/1.m4s", self.seg)
        self.put("/v/a-1/720p/2.m4s", body(2000, 2))
        self.put("/v/a2/720p/1.m4s", body(2500, 3))
        self.put("/v/open/trailer.m4s", body(1500, 4))
        self.put("/other/x.txt", b"general cache\n")

    def tearDown(self):
        self.origin.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_keys(self, text):
        tmp = self.keys + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.keys)

    def put(self, path, data):
        self.origin.put(path, body=data, headers={"Cache-Control": "max-age=600"})

    def edge(self, *sets, keys=True):
        extra = ["tokens.keys_file=" + self.keys] if keys else []
        return Edge("upstream.shields=" + self.origin.addr, "cache.hot_size=1m",
                    "cache.warm_size=1m", "cache.cold_size=2m", "cache.max_object_size=64k",
                    "cache.warm_path=" + os.path.join(self.dir, "warm"),
                    "cache.cold_path=" + os.path.join(self.dir, "cold"),
                    "admin.credential_file=" + self.cred_file, "log.access_log=" + self.log,
                    *extra, *sets)

    def assert_denied(self, r, reason, what=""):
        self.assertEqual(r.status, 403, "%s: %r %r" % (what, r, r.body))
        self.assertEqual(r.header("x-tomato-reason"), reason, what)
        self.assertEqual(r.body, ("403 Forbidden: %s\n" % reason).encode(), what)
        self.assertEqual(r.header("cache-control"), "no-store", what)

    def metric(self, e, name, labels):
        return e.metrics().get("%s{%s}" % (name, labels), 0)

    def revoke(self, e, text, cred=CRED):
        auth = "Authorization: Bearer %s\r\n" % cred if cred is not None else ""
        return http_request(e.admin_port, "POST", "/tokens/revoked", extra=auth,
                            body=text.encode())

    def test_valid_token_plays_and_bad_ones_are_refused(self):
        good = mint(K1, "a-1")
        seg = "/v/a-1/720p/1.m4s"
        with self.edge() as e:
            r = http_get(e.port, "/t/%s%s" % (good, seg))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.body, self.seg)
            self.assertEqual(r.header("x-cache"), "MISS")
            r = http_get(e.port, "/t/%s%s" % (good, seg))
            self.assertEqual(r.header("x-cache"), "HIT-hot")
            # The key with a '-' in its id (escaped '\-' in no way matters for kids), HEAD too.
            r = http_request(e.port, "HEAD", "/t/%s%s" % (mint(K2, "a-1"), seg))
            self.assertEqual(r.status, 200)
            now = int(time.time())
            cases = [
                ("no token", seg, "token required"),
                ("expired", "/t/%s%s" % (mint(K1, "a-1", exp=now - 10), seg), "expired token"),
                ("not yet valid", "/t/%s%s" % (mint(K1, "a-1", nbf=now + 3600), seg),
                 "token not yet valid"),
                ("forged", "/t/%s%s" % (mint(K1, "a-1", secret=K9.secret), seg), "bad signature"),
                ("unknown kid", "/t/%s%s" % (mint(K9, "a-1"), seg), "unknown key id"),
                ("another asset", "/t/%s/v/a2/720p/1.m4s" % good, "path outside token scope"),
                ("dot-dot", "/t/%s/v/a-1/../a2/720p/1.m4s" % good, "path outside token scope"),
                ("escaped dot-dot", "/t/%s/v/a-1/%%2e%%2e/a2/720p/1.m4s" % good,
                 "path outside token scope"),
                ("alg none", "/t/%s%s" % (unsigned(K1, "a-1"), seg), "unsupported algorithm"),
                ("HS512", "/t/%s%s" % (mint(K1, "a-1", alg="HS512"), seg),
                 "unsupported algorithm"),
                ("cdniv 2", "/t/%s%s" % (mint(K1, "a-1", cdniv=2), seg),
                 "unsupported token version"),
                ("garbage", "/t/not-a-token%s" % seg, "malformed token"),
                ("no token, not cached yet", "/v/a2/720p/1.m4s", "token required"),
            ]
            for what, path, reason in cases:
                self.assert_denied(http_get(e.port, path), reason, what)
            # Other methods are refused the same way (nothing is forwarded).
            self.assert_denied(http_request(e.port, "POST", seg, body=b"x"), "token required",
                               "POST")
            r = http_request(e.port, "HEAD", seg)
            self.assertEqual((r.status, r.header("x-tomato-reason")), (403, "token required"))
            # A token path outside every prefix, and one that does not normalize: 400.
            self.assertEqual(http_get(e.port, "/t/%s/other/x.txt" % good).status, 400)
            self.assertEqual(http_get(e.port, "/t/%s/v/../../x" % good).status, 400)
            # Outside tokens.protect the edge is a general shared cache: no token needed.
            r = http_get(e.port, "/other/x.txt")
            self.assertEqual((r.status, r.body), (200, b"general cache\n"))
            # The origin saw the one fill of the valid token and the open path, nothing else.
            self.assertEqual(self.origin.count(seg), 1)
            self.assertEqual(self.origin.count("/v/a2/720p/1.m4s"), 0)
            self.assertEqual(sorted(r.target for r in self.origin.requests),
                             ["/other/x.txt", seg])
            m = e.metrics()
            den = {k: m.get('tmt_edge_token_denied_total{reason="%s"}' % k, 0)
                   for k in ("missing", "malformed", "signature", "time", "scope", "revoked")}
            self.assertEqual(den, {"missing": 4, "malformed": 4, "signature": 2, "time": 2,
                                   "scope": 3, "revoked": 0})
            self.assertEqual(e.stop(), 0)
        with open(self.log) as f:
            text = f.read()
        self.assertIn(seg, text)
        self.assertIn("path=/v/a2/720p/1.m4s proto=h1.1 status=403 bytes=", text)
        self.assertIn("cache=denied", text)
        for tok in (good, "not-a-token"):
            self.assertNotIn(tok, text)
        self.assertNotIn("eyJ", text)

    def test_cached_tokens_keep_every_rule(self):
        seg1, seg2 = "/v/a-1/720p/1.m4s", "/v/a-1/720p/2.m4s"
        exp = int(time.time()) + 3
        short = mint(K1, "a-1", exp=exp, lease="lease-short")
        with self.edge("server.workers=1") as e:
            def cached():
                return self.metric(e, "tmt_edge_token_checks_total", 'result="cached"')

            def verified():
                return self.metric(e, "tmt_edge_token_checks_total", 'result="verified"')

            self.assertEqual(http_get(e.port, "/t/%s%s" % (short, seg1)).status, 200)
            self.assertEqual(http_get(e.port, "/t/%s%s" % (short, seg2)).status, 200)
            self.assertEqual((verified(), cached()), (1, 1))
            # Cached, and still held to its asset.
            self.assert_denied(http_get(e.port, "/t/%s/v/a2/720p/1.m4s" % short),
                               "path outside token scope")
            self.assert_denied(http_get(e.port, "/t/%s/v/a-1/../a2/720p/1.m4s" % short),
                               "path outside token scope")
            self.assertEqual((verified(), cached()), (1, 3))
            # Expired while cached.
            while time.time() < exp + 0.05:
                time.sleep(0.1)
            self.assert_denied(http_get(e.port, "/t/%s%s" % (short, seg1)), "expired token")
            self.assertEqual((verified(), cached()), (1, 4))

            # Revoked while cached (the admin call replaces the set).
            tok = mint(K1, "a-1", lease="lease-7")
            other = mint(K1, "a-1", lease="lease-8")
            for t in (tok, tok, other):
                self.assertEqual(http_get(e.port, "/t/%s%s" % (t, seg1)).status, 200)
            v0 = verified()
            self.assertEqual(self.revoke(e, "lease-7\n", cred=None).status, 401)
            self.assertEqual(self.revoke(e, "lease-7\n" + "x" * 65 + "\n").status, 400)
            r = self.revoke(e, "  lease-7 \r\n\r\nlease-9\n")
            self.assertEqual((r.status, r.body), (200, b'{"revoked":2}\n'))
            self.assert_denied(http_get(e.port, "/t/%s%s" % (tok, seg1)), "revoked lease")
            self.assertEqual(http_get(e.port, "/t/%s%s" % (other, seg1)).status, 200)
            self.assertEqual(verified(), v0)
            self.assertEqual(http_request(e.admin_port, "GET", "/tokens/revoked",
                                          extra="Authorization: Bearer %s\r\n" % CRED).status,
                             405)
            self.assertEqual(self.revoke(e, "").body, b'{"revoked":0}\n')
            self.assertEqual(http_get(e.port, "/t/%s%s" % (tok, seg1)).status, 200)
            self.assertEqual(self.metric(e, "tmt_edge_token_denied_total", 'reason="revoked"'), 1)
            self.assertEqual(e.stop(), 0)

    def test_sighup_reads_the_keys_file_again(self):
        seg = "/v/a-1/720p/1.m4s"
        t1, t2 = mint(K1, "a-1"), mint(K2, "a-1")
        with self.edge() as e:
            for t in (t1, t1, t2):
                self.assertEqual(http_get(e.port, "/t/%s%s" % (t, seg)).status, 200)
            # k1 retired, k9 added.
            self.write_keys(K2.line() + K9.line())
            n = len(e.lines)
            e.signal(signal.SIGHUP)
            e.wait_line('msg="token keys installed" keys=2 kids=k-2,k9', start=n)
            e.wait_line('msg="reloaded"', start=n)
            self.assert_denied(http_get(e.port, "/t/%s%s" % (t1, seg)), "unknown key id")
            self.assertEqual(http_get(e.port, "/t/%s%s" % (t2, seg)).status, 200)
            self.assertEqual(http_get(e.port, "/t/%s%s" % (mint(K9, "a-1"), seg)).status, 200)
            # A bad file changes nothing and says where.
            self.write_keys(K1.line() + "k5 too-short\n")
            n = len(e.lines)
            e.signal(signal.SIGHUP)
            i = e.wait_line('msg="token keys reload rejected; the old keys stay"', start=n)
            self.assertIn("%s:2: the secret of key k5" % self.keys, e.lines[i])
            self.assertEqual(http_get(e.port, "/t/%s%s" % (t2, seg)).status, 200)
            self.assert_denied(http_get(e.port, "/t/%s%s" % (t1, seg)), "unknown key id")
            self.assertEqual(e.stop(), 0)
            # Secrets never reach the log.
            self.assertNotIn(b64u(K1.secret), "\n".join(e.lines))

    def test_bad_keys_file_is_a_start_error(self):
        self.write_keys(K1.line() + "\n# fine so far\nk.bad " + b64u(K2.secret) + "\n")
        argv = ["--set", "server.listen=127.0.0.1:0", "--set", "admin.listen=127.0.0.1:0",
                "--set", "upstream.shields=" + self.origin.addr,
                "--set", "cache.warm_path=" + os.path.join(self.dir, "w"),
                "--set", "cache.cold_path=" + os.path.join(self.dir, "c"),
                "--set", "tokens.keys_file=" + self.keys]
        with Daemon("tomato-edge", *argv) as d:
            self.assertNotEqual(d.proc.wait(10), 0)
            i = d.wait_line('msg="cannot start"')
            self.assertIn("%s:4: a key id is 1 to 32" % self.keys, d.lines[i])
        d.proc.stdout.close()
        # A prefix that no normalized path starts with is a settings error.
        r = Daemon("tomato-edge", "--check-config", "--set", "tokens.protect=/v/../x/")
        with r:
            self.assertNotEqual(r.proc.wait(10), 0)
            r.wait_line("tokens.protect")
        r.proc.stdout.close()

    def test_public_prefixes_and_defaults(self):
        # Without keys every protected request is refused; public ones and others pass.
        with self.edge("tokens.public=/v/open/", keys=False) as e:
            e.wait_line('msg="no token keys yet')
            r = http_get(e.port, "/v/open/trailer.m4s")
            self.assertEqual(r.status, 200)
            # A token on a public path is stripped and ignored, even a bad one.
            r = http_get(e.port, "/t/whatever/v/open/trailer.m4s")
            self.assertEqual((r.status, r.header("x-cache")), (200, "HIT-hot"))
            self.assert_denied(http_get(e.port, "/t/%s/v/a-1/720p/1.m4s" % mint(K1, "a-1")),
                               "unknown key id")
            self.assertEqual(self.origin.count("/v/open/trailer.m4s"), 1)
        # All of /v/ public (tests, the demo): tokens are stripped, never checked.
        with self.edge("tokens.public=/v/", keys=False) as e:
            self.assertEqual(http_get(e.port, "/v/a-1/720p/1.m4s").status, 200)
            r = http_get(e.port, "/t/junk/v/a-1/720p/1.m4s")
            self.assertEqual((r.status, r.header("x-cache")), (200, "HIT-hot"))
            m = e.metrics()
            self.assertEqual(sum(v for k, v in m.items() if k.startswith("tmt_edge_token_")), 0)

    def test_players_carry_the_token_to_every_segment(self):
        # A real shield packages a small asset; ffmpeg plays HLS and DASH from the edge with the
        # token in the path only: the manifests' relative URIs carry it to every segment.
        root = os.path.join(self.dir, "mezz")
        make_asset(root, "a-1", seconds=5, rungs=[("180p", 320, 180, 300000)])
        with Shield(root, os.path.join(self.dir, "shield"), "server.open=true") as s:
            with Edge("upstream.shields=127.0.0.1:%d" % s.port, "tokens.keys_file=" + self.keys,
                      "cache.warm_path=" + os.path.join(self.dir, "ew"),
                      "cache.cold_path=" + os.path.join(self.dir, "ec")) as e:
                tok = mint(K2, "a-1")
                for manifest in ("master.m3u8", "manifest.mpd"):
                    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                                        e.url("/t/%s/v/a-1/%s" % (tok, manifest)), "-map", "0",
                                        "-c", "copy", "-f", "null", "-"],
                                       capture_output=True, text=True, timeout=120)
                    self.assertEqual((r.returncode, r.stderr), (0, ""), manifest)
                # Every segment passed the gate; at most one signature check per worker.
                m = e.metrics()
                self.assertLessEqual(m['tmt_edge_token_checks_total{result="verified"}'], 2)
                self.assertGreater(m['tmt_edge_token_checks_total{result="cached"}'], 6)
                self.assertEqual(sum(v for k, v in m.items()
                                     if k.startswith("tmt_edge_token_denied_total")), 0)
                # Without the token the player gets nothing.
                r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                                    e.url("/v/a-1/master.m3u8"), "-f", "null", "-"],
                                   capture_output=True, text=True, timeout=60)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("403", r.stderr)


if __name__ == "__main__":
    unittest.main()
