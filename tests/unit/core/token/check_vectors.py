#!/usr/bin/env python3
"""Checks our URI Signing tokens against python3-jwt (Debian's PyJWT), both ways.

    check_vectors.py VECTORS_JSON TOKEN_TOOL

1. vectors.json is what make_vectors.py makes today (the committed file is not stale).
2. Every vector's verdict, computed here: signature, alg, exp, nbf and iat by PyJWT (its clock
   set to the vector's `now`), the rest of our profile (core/include/tmt/token.h) by the rules
   below, written from the header's text and not from core/token/token.c. It must equal the
   verdict make_vectors.py wrote by hand, which test_token.c checks core/token against.
3. Our signer, through TOKEN_TOOL (tmt-token-tool, tests/unit/core/token/token_tool.c): tokens
   it signs for a spread of claim sets decode with PyJWT to exactly those claims, under the
   header {"alg":"HS256","typ":"JWT","kid":...}.
4. Our verifier, through TOKEN_TOOL: tokens PyJWT signs for the same spread verify with the
   same claims, and a few PyJWT-signed variants get the verdict this file computes.

Standard library and python3-jwt only. Exit status 0 when everything agrees.
"""
import base64
import binascii
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import unittest.mock

import jwt
import jwt.api_jwt

TOKEN_MAX = 2048
KID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
STR_MAX = 64
PREFIX_MAX = 256
UNDERSTOOD = {"iss", "sub", "iat", "exp", "nbf", "cdniv", "cdniuc", "cdnicrit", "tmt_dev",
              "tmt_lease"}
PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_~!&',;=:@%-")
UNRESERVED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")


class Bad(Exception):
    def __init__(self, verdict):
        super().__init__(verdict)
        self.verdict = verdict


def b64_strict(s):
    """base64url without padding, with zero unused bits; None otherwise."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", s) or len(s) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != s:
        return None
    return raw


def json_strict(raw):
    """A JSON object as jansson reads it with JSON_REJECT_DUPLICATES; None otherwise."""

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                raise ValueError("duplicate " + k)
            d[k] = v
        return d

    def no_constant(name):
        raise ValueError(name)

    def int64(s):
        v = int(s)
        if not -(2 ** 63) <= v < 2 ** 63:
            raise ValueError("integer out of range")
        return v

    def real(s):
        v = float(s)
        if v in (float("inf"), float("-inf")):
            raise ValueError("real out of range")
        return v

    def clean(v):
        if isinstance(v, str):
            if "\0" in v or any(0xD800 <= ord(ch) <= 0xDFFF for ch in v):
                raise ValueError("NUL or lone surrogate")
        elif isinstance(v, dict):
            for k, x in v.items():
                clean(k)
                clean(x)
        elif isinstance(v, list):
            for x in v:
                clean(x)

    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, object_pairs_hook=pairs, parse_constant=no_constant,
                         parse_int=int64, parse_float=real)
        clean(obj)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def is_int(v):
    return type(v) is int


def str_claim(v, required):
    if not isinstance(v, str) or len(v.encode("utf-8")) > STR_MAX:
        raise Bad("MALFORMED")
    if required and v == "":
        raise Bad("MALFORMED")
    return v


def uri_container(s):
    """("ok", prefix), ("unsupported", None) or ("too_long", None)."""
    if not s.startswith("regex:^"):
        return "unsupported", None
    out, i = [], len("regex:^")
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            if i + 1 == len(s):
                return "unsupported", None
            ch = s[i + 1]
            i += 1
            if not ("!" <= ch <= "~") or ch.isalnum():
                return "unsupported", None
        elif ch not in PLAIN:
            return "unsupported", None
        out.append(ch)
        i += 1
    prefix = "".join(out)
    if not prefix.startswith("/"):
        return "unsupported", None
    if len(prefix) > PREFIX_MAX:
        return "too_long", None
    return "ok", prefix


def crit_ok(v):
    if isinstance(v, str):
        names = v.split(",")
    elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        names = v
    else:
        return False
    return all(n in UNDERSTOOD for n in names)


def normalize(path):
    """RFC 3986 6.2.2 as the servers do it (see tmt_http_path_normalize); None if invalid."""
    if not path.startswith("/"):
        return None
    out = []
    for seg in path.split("/")[1:]:
        if seg == "":
            continue
        res, i = [], 0
        while i < len(seg):
            if seg[i] != "%":
                res.append(seg[i])
                i += 1
                continue
            h = seg[i + 1:i + 3]
            if len(h) != 2 or not all(c in "0123456789abcdefABCDEF" for c in h):
                return None
            ch = chr(int(h, 16))
            res.append(ch if ch in UNRESERVED else "%" + h.upper())
            i += 3
        seg = "".join(res)
        if seg == ".":
            continue
        if seg == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(seg)
    n = "/" + "/".join(out)
    if out and path.endswith("/"):
        n += "/"
    return n


def frozen_clock(now):
    """PyJWT reads datetime.now(tz=utc); this makes it read `now`."""

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.fromtimestamp(now, tz=tz)

    return unittest.mock.patch.object(jwt.api_jwt, "datetime", Clock)


def verify(token, ring, now, skew, path=None):
    """(verdict, claims or None) for our profile."""
    try:
        return verify_or_raise(token, ring, now, skew, path)
    except Bad as e:
        return e.verdict, None


def verify_or_raise(token, ring, now, skew, path):
    if not token or len(token) > TOKEN_MAX or not token.isascii():
        raise Bad("MALFORMED")
    parts = token.split(".")
    if len(parts) != 3:
        raise Bad("MALFORMED")
    hraw, praw, sraw = (b64_strict(p) for p in parts)
    if not hraw or not praw or sraw is None:
        raise Bad("MALFORMED")
    header = json_strict(hraw)
    if header is None:
        raise Bad("MALFORMED")
    if header.get("alg") != "HS256":
        raise Bad("BAD_ALG")
    if "typ" in header and header["typ"] != "JWT":
        raise Bad("MALFORMED")
    if "crit" in header:
        raise Bad("MALFORMED")
    kid = header.get("kid")
    if not isinstance(kid, str) or not KID_RE.match(kid):
        raise Bad("MALFORMED")
    key = next((k for i, k in ring if i == kid), None)
    if key is None:
        raise Bad("UNKNOWN_KID")
    try:  # the signature only: PyJWS does not read the payload
        jwt.api_jws.PyJWS().decode_complete(token, key, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        raise Bad("BAD_SIGNATURE")
    p = json_strict(praw)
    if p is None:
        raise Bad("MALFORMED")
    claims = {"kid": kid}
    for name, required in (("iss", True), ("sub", True)):
        if name not in p:
            raise Bad("MALFORMED")
        claims[name] = str_claim(p[name], required)
    for name, field in (("tmt_dev", "dev"), ("tmt_lease", "lease")):
        claims[field] = str_claim(p[name], False) if name in p else ""
    for name in ("iat", "exp"):
        if not is_int(p.get(name)):
            raise Bad("MALFORMED")
        claims[name] = p[name]
    if "nbf" in p and not is_int(p["nbf"]):
        raise Bad("MALFORMED")
    claims["nbf"] = p.get("nbf", 0)
    if "cdniv" not in p or not isinstance(p.get("cdniuc"), str):
        raise Bad("MALFORMED")
    if "cdnicrit" in p and not crit_ok(p["cdnicrit"]):
        raise Bad("MALFORMED")
    uc, prefix = uri_container(p["cdniuc"])
    if uc == "too_long":
        raise Bad("MALFORMED")
    if not is_int(p["cdniv"]) or p["cdniv"] != 1:
        raise Bad("BAD_VERSION")
    none = {"verify_exp": False, "verify_nbf": False, "verify_iat": False,
            "verify_aud": False, "verify_iss": False}
    with frozen_clock(now):
        try:  # no leeway for exp: a token is dead at exp on every clock
            jwt.decode(token, key, algorithms=["HS256"], options=dict(none, verify_exp=True))
        except jwt.ExpiredSignatureError:
            raise Bad("EXPIRED")
        try:
            jwt.decode(token, key, algorithms=["HS256"], leeway=max(skew, 0),
                       options=dict(none, verify_nbf=True, verify_iat=True))
        except jwt.ImmatureSignatureError:
            raise Bad("NOT_YET_VALID")
    if uc != "ok":
        raise Bad("BAD_URI_CONTAINER")
    claims["prefix"] = prefix
    if path is not None:
        n = normalize(path)
        if n is None or not n.startswith(prefix):
            raise Bad("PATH_OUTSIDE")
    return "OK", claims


# ---- the C side, through tmt-token-tool ----

class Tool:
    """tmt-token-tool in batch mode: one process for all the commands."""

    def __init__(self, path):
        self.p = subprocess.Popen([path, "batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, encoding="utf-8")

    def run(self, *args):
        if any("\t" in a or "\n" in a for a in args):
            raise ValueError("a tab or newline in %r" % (args,))
        self.p.stdin.write("\t".join(args) + "\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                raise SystemExit("tmt-token-tool exited (status %s) after %r" % (
                    self.p.wait(), lines))
            if line == "end\n":
                break
            lines.append(line.rstrip("\n"))
        if any(line.startswith("error=") for line in lines):
            raise SystemExit("tmt-token-tool %s failed: %s" % (args[0], " / ".join(lines)))
        return lines

    def close(self):
        self.p.stdin.close()
        if self.p.wait() != 0:
            raise SystemExit("tmt-token-tool batch exited with %d" % self.p.returncode)

    def sign(self, kid, key, c):
        args = ["sign", "%s:%s" % (kid, key.hex())]
        for name in ("iss", "sub", "iat", "exp", "nbf", "prefix", "dev", "lease"):
            if name in c:
                args.append("%s=%s" % (name, c[name]))
        (token,) = self.run(*args)
        return token

    def verify(self, ring, now, skew, token, path=None):
        args = ["verify", ",".join("%s:%s" % (k, v.hex()) for k, v in ring), str(now), str(skew),
                token] + ([path] if path is not None else [])
        kv = dict(line.split("=", 1) for line in self.run(*args))
        claims = None
        if kv["verdict"] == "OK":
            claims = {"kid": kv["kid"], "iat": int(kv["iat"]), "exp": int(kv["exp"]),
                      "nbf": int(kv["nbf"])}
            for n in ("iss", "sub", "dev", "lease", "prefix"):
                claims[n] = bytes.fromhex(kv[n + "_hex"]).decode("utf-8")
        return kv["verdict"], claims


def escape_prefix(prefix):
    return "regex:^" + "".join("\\" + ch if ch in ".$()*+-" else ch for ch in prefix)


def random_claims(rng, now):
    alphabet = "abcXYZ019-_. ~\u00e9\u4e2d\"\\"
    word = lambda lo, hi: "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))
    seg = lambda: "".join(rng.choice("abcxyz0129-_.~$()*+!&',;=:@")
                          for _ in range(rng.randint(1, 12)))
    prefix = "/v/" + seg() + "/"
    while seg_dot(prefix):
        prefix = "/v/" + seg() + "/"
    c = {"iss": word(1, 20), "sub": word(1, 20), "iat": now - rng.randint(0, 600),
         "exp": now + rng.randint(1, 86400), "prefix": prefix}
    if rng.random() < 0.5:
        c["nbf"] = now - rng.randint(1, 600)
    if rng.random() < 0.7:
        c["dev"] = word(1, 16)
    if rng.random() < 0.7:
        c["lease"] = word(1, 16)
    return c


def seg_dot(prefix):
    """True when a path component is "." or "..", which normalization would remove."""
    return any(s in (".", "..") for s in prefix.split("/"))


def check_cross(tool, rng, failures):
    now = 1767225600
    kid, key = "ring-1", bytes(rng.randrange(256) for _ in range(40))
    ring = [("old", bytes(32)), (kid, key)]
    n = 0
    for _ in range(300):
        c = random_claims(rng, now)
        want = {"kid": kid, "iss": c["iss"], "sub": c["sub"], "dev": c.get("dev", ""),
                "lease": c.get("lease", ""), "iat": c["iat"], "exp": c["exp"],
                "nbf": c.get("nbf", 0), "prefix": c["prefix"]}
        # Ours signs, PyJWT verifies (and the claims come back as they went in).
        tok = tool.sign(kid, key, c)
        try:
            header = jwt.get_unverified_header(tok)
            got = jwt.decode(tok, key, algorithms=["HS256"], options={"verify_exp": False,
                                                                       "verify_nbf": False,
                                                                       "verify_iat": False})
        except jwt.PyJWTError as e:
            failures.append("PyJWT refused our token for %r: %s" % (c, e))
            continue
        expect = {"iss": c["iss"], "sub": c["sub"], "iat": c["iat"], "exp": c["exp"],
                  "cdniv": 1, "cdniuc": escape_prefix(c["prefix"])}
        for name, field in (("nbf", "nbf"), ("tmt_dev", "dev"), ("tmt_lease", "lease")):
            if field in c:
                expect[name] = c[field]
        if header != {"alg": "HS256", "typ": "JWT", "kid": kid} or got != expect:
            failures.append("our token for %r reads in PyJWT as %r %r" % (c, header, got))
        v, cl = verify(tok, ring, now, 30, c["prefix"] + "x")
        if v != "OK" or cl != want:
            failures.append("our token for %r: the profile here says %s %r" % (c, v, cl))
        # PyJWT signs, ours verifies.
        payload = dict(expect)
        ptok = jwt.encode(payload, key, algorithm="HS256", headers={"kid": kid})
        v, cl = tool.verify(ring, now, 30, ptok, c["prefix"] + "a/b")
        if v != "OK" or cl != want:
            failures.append("PyJWT's token for %r: ours says %s %r" % (c, v, cl))
        # Variants: both sides must compute the same verdict.
        for label, var_now, var_path in (("expired", c["exp"], None),
                                         ("outside", now, "/v/other/x"),
                                         ("dot-dot", now, c["prefix"] + "../x")):
            mine, _ = verify(ptok, ring, var_now, 30, var_path)
            theirs, _ = tool.verify(ring, var_now, 30, ptok, var_path)
            if mine != theirs:
                failures.append("%s variant of %r: here %s, ours %s" % (label, c, mine, theirs))
        n += 1
    return n


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: check_vectors.py VECTORS_JSON TOKEN_TOOL")
    vec_path, tool = sys.argv[1], Tool(sys.argv[2])
    failures = []

    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_vectors

    with open(vec_path) as f:
        text = f.read()
    if text != make_vectors.render():
        failures.append("%s differs from what make_vectors.py makes; run it again" % vec_path)
    doc = json.loads(text)
    ring = [(k["kid"], binascii.unhexlify(k["secret_hex"])) for k in doc["keys"]]
    for v in doc["vectors"]:
        verdict, claims = verify(v["token"], ring, v["now"], v["skew"], v["path"])
        if verdict != v["verdict"]:
            failures.append("%s: PyJWT and the profile say %s, the vector %s" % (
                v["name"], verdict, v["verdict"]))
        elif verdict == "OK" and claims != v["claims"]:
            failures.append("%s: claims %r, the vector %r" % (v["name"], claims, v["claims"]))
        theirs, tclaims = tool.verify(ring, v["now"], v["skew"], v["token"], v["path"])
        if theirs != v["verdict"] or (theirs == "OK" and tclaims != v["claims"]):
            failures.append("%s: tmt-token-tool says %s %r, the vector %s" % (
                v["name"], theirs, tclaims, v["verdict"]))

    n = check_cross(tool, random.Random(9246), failures)
    tool.close()
    for f in failures:
        print("FAIL", f)
    print("%d vectors, %d random claim sets signed both ways: %s" % (
        len(doc["vectors"]), n, "%d failures" % len(failures) if failures else "all agree"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
