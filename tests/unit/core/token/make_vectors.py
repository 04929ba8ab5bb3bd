#!/usr/bin/env python3
"""Writes tests/unit/core/token/vectors.json: URI Signing tokens and the verdict each must get.

The tokens are signed by python3-jwt (Debian's PyJWT), an implementation independent of ours,
except those PyJWT refuses to make (duplicate members, padded base64url, a forged header, ...),
which are built by hand with the standard library's hmac. The expected verdicts are written
here by hand, case by case, from our profile (core/include/tmt/token.h); test_token.c checks
core/token against them and check_vectors.py checks PyJWT plus the profile's claim rules
against them, so the three must agree.

    make_vectors.py [OUT]      (default: vectors.json next to this script)

The output is deterministic (fixed keys and times, HMAC signatures): running it again gives
the same file, and check_vectors.py fails if the committed file differs from what this
script makes.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt

NOW = 1767225600  # 2026-01-01T00:00:00Z
SKEW = 30
# The verifier's key ring; "wrong" has k1's id and another secret.
KEYS = {
    "k1": bytes(range(0x20, 0x40)),  # 32 bytes
    "k2-2026_b": bytes(range(0x80, 0xB0)),  # 48 bytes
}
WRONG_K1 = bytes(range(0x40, 0x60))
OTHER_KID = "k9"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def claims(**over):
    """A valid claim set for /v/abc-1/, with changes; a value of None removes the claim."""
    c = {
        "iss": "tomato-control",
        "sub": "u-3f9a1c",
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "cdniv": 1,
        "cdniuc": r"regex:^/v/abc\-1/",
        "tmt_dev": "dev-7",
        "tmt_lease": "lease-42",
    }
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def pyjwt_token(payload, kid="k1", key=None, headers=None, alg="HS256"):
    h = {"kid": kid}
    h.update(headers or {})
    if key is None:
        key = KEYS.get(kid, WRONG_K1)
    return jwt.encode(payload, key, algorithm=alg, headers=h)


def raw_token(header_json, payload_json, key=KEYS["k1"], sig=None):
    """A token from JSON bytes, signed with HMAC-SHA-256 unless sig (bytes) is given."""
    signing_input = b64(header_json) + "." + b64(payload_json)
    if sig is None:
        sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


HDR = compact({"alg": "HS256", "typ": "JWT", "kid": "k1"})
PATH = "/v/abc-1/720p/seg-1.m4s"


def expect_claims(payload, kid="k1", prefix="/v/abc-1/"):
    return {
        "kid": kid,
        "iss": payload["iss"],
        "sub": payload["sub"],
        "dev": payload.get("tmt_dev", ""),
        "lease": payload.get("tmt_lease", ""),
        "iat": payload["iat"],
        "exp": payload["exp"],
        "nbf": payload.get("nbf", 0),
        "prefix": prefix,
    }


def vectors():
    out = []

    def add(name, token, verdict, path=PATH, now=NOW, skew=SKEW, claims_=None):
        v = {"name": name, "token": token, "now": now, "skew": skew, "path": path,
             "verdict": verdict}
        if claims_ is not None:
            v["claims"] = claims_
        out.append(v)

    # ---- accepted ----
    c = claims()
    add("valid", pyjwt_token(c), "OK", claims_=expect_claims(c))
    add("valid_no_typ", pyjwt_token(c, headers={"typ": None}), "OK", claims_=expect_claims(c))
    c = claims(tmt_dev=None, tmt_lease=None)
    add("valid_no_private_claims", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims()
    add("valid_second_key", pyjwt_token(c, kid="k2-2026_b"), "OK",
        claims_=expect_claims(c, kid="k2-2026_b"))
    c = claims(nbf=NOW + SKEW)
    add("valid_nbf_at_skew", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(iat=NOW + SKEW)
    add("valid_iat_at_skew", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(exp=NOW + 1)
    add("valid_last_second", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(aud="someone", jti="x1", cdniip="192.0.2.1", extra={"a": [1, 2.5, None, True]})
    add("valid_unknown_claims_ignored", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(cdnicrit="exp,nbf,tmt_dev")
    add("valid_cdnicrit_string", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(cdnicrit=["tmt_lease", "cdniuc"])
    add("valid_cdnicrit_array", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(cdniuc=r"regex:^/v/a\.b\+c\$\(1\)/")
    add("valid_escaped_metacharacters", pyjwt_token(c), "OK", path="/v/a.b+c$(1)/x.m4s",
        claims_=expect_claims(c, prefix="/v/a.b+c$(1)/"))
    c = claims(cdniuc="regex:^/v/abc-1/")
    add("valid_bare_hyphen", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims()
    add("valid_path_percent_unreserved", pyjwt_token(c), "OK", path="/v/abc%2D1/%7e/seg-1.m4s",
        claims_=expect_claims(c))
    add("valid_path_dot_segments_inside", pyjwt_token(c), "OK", path="/v/abc-1/x/../720p/./a",
        claims_=expect_claims(c))
    add("valid_path_double_slash", pyjwt_token(c), "OK", path="//v//abc-1//720p/a",
        claims_=expect_claims(c))
    c = claims(iss="i" * 64, sub="s" * 64, tmt_dev="d" * 64, tmt_lease="l" * 64)
    add("valid_longest_strings", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(iss="contr\u00f4le", sub="\u7528\u6237", tmt_dev='q"b\\s\n')
    add("valid_unicode_and_escapes", pyjwt_token(c), "OK", claims_=expect_claims(c))
    c = claims(cdniuc="regex:^/v/" + "p" * 252 + "/")
    add("valid_longest_prefix", pyjwt_token(c), "OK", path="/v/" + "p" * 252 + "/x",
        claims_=expect_claims(c, prefix="/v/" + "p" * 252 + "/"))

    # ---- time ----
    add("expired_at_exp", pyjwt_token(claims(exp=NOW)), "EXPIRED")
    add("expired_long_ago", pyjwt_token(claims(iat=NOW - 7200, exp=NOW - 3600)), "EXPIRED")
    add("expired_skew_not_applied", pyjwt_token(claims(exp=NOW - 1)), "EXPIRED")
    add("not_yet_valid_nbf", pyjwt_token(claims(nbf=NOW + SKEW + 1)), "NOT_YET_VALID")
    add("not_yet_valid_iat", pyjwt_token(claims(iat=NOW + 600)), "NOT_YET_VALID")
    add("not_yet_valid_no_skew", pyjwt_token(claims(nbf=NOW + 1)), "NOT_YET_VALID", skew=0)

    # ---- keys, algorithms, signatures ----
    add("wrong_key", pyjwt_token(claims(), key=WRONG_K1), "BAD_SIGNATURE")
    add("unknown_kid", pyjwt_token(claims(), kid=OTHER_KID, key=WRONG_K1), "UNKNOWN_KID")
    add("alg_none", b64(compact({"alg": "none", "typ": "JWT", "kid": "k1"})) + "." +
        b64(compact(claims())) + ".", "BAD_ALG")
    add("alg_none_no_kid", b64(compact({"alg": "none"})) + "." + b64(compact(claims())) + ".",
        "BAD_ALG")
    add("alg_hs512", pyjwt_token(claims(), alg="HS512"), "BAD_ALG")
    add("alg_hs512_by_hand", raw_token(compact({"alg": "HS512", "typ": "JWT", "kid": "k1"}),
                                       compact(claims()),
                                       sig=hmac.new(KEYS["k1"], b"x", hashlib.sha512).digest()),
        "BAD_ALG")
    add("alg_rs256", raw_token(compact({"alg": "RS256", "typ": "JWT", "kid": "k1"}),
                               compact(claims()), sig=bytes(256)), "BAD_ALG")
    add("alg_lowercase", raw_token(compact({"alg": "hs256", "typ": "JWT", "kid": "k1"}),
                                   compact(claims())), "BAD_ALG")
    add("alg_missing", raw_token(compact({"typ": "JWT", "kid": "k1"}), compact(claims())),
        "BAD_ALG")
    good = pyjwt_token(claims())
    h, p, s = good.split(".")
    forged = compact(claims(cdniuc="regex:^/v/"))
    add("tampered_payload", h + "." + b64(forged) + "." + s, "BAD_SIGNATURE")
    flipped = s[:10] + ("A" if s[10] != "A" else "B") + s[11:]
    add("tampered_signature", h + "." + p + "." + flipped, "BAD_SIGNATURE")
    add("truncated_signature", h + "." + p + "." + s[:40], "BAD_SIGNATURE")
    add("empty_signature", h + "." + p + ".", "BAD_SIGNATURE")
    add("bad_signature_before_expiry",
        pyjwt_token(claims(exp=NOW - 10), key=WRONG_K1), "BAD_SIGNATURE")

    # ---- version ----
    add("cdniv_2", pyjwt_token(claims(cdniv=2)), "BAD_VERSION")
    add("cdniv_string", pyjwt_token(claims(cdniv="1")), "BAD_VERSION")
    add("cdniv_real", raw_token(HDR, compact(claims()).replace(b'"cdniv":1', b'"cdniv":1.0')),
        "BAD_VERSION")
    add("cdniv_missing", pyjwt_token(claims(cdniv=None)), "MALFORMED")
    add("cdniv_2_and_expired", pyjwt_token(claims(cdniv=2, exp=NOW - 5)), "BAD_VERSION")

    # ---- URI container and request path ----
    add("path_dotdot_outside", good, "PATH_OUTSIDE", path="/v/abc-1/../other/seg-1.m4s")
    add("path_encoded_dotdot_outside", good, "PATH_OUTSIDE", path="/v/abc-1/%2e%2E/other/x")
    add("path_dotdot_above_root", good, "PATH_OUTSIDE", path="/v/abc-1/../../../x")
    add("path_sibling_prefix", pyjwt_token(claims(cdniuc="regex:^/v/a/")), "PATH_OUTSIDE",
        path="/v/ab/x.m4s")
    add("path_encoded_slash", good, "PATH_OUTSIDE", path="/v/abc-1%2F720p/x")
    add("path_bad_escape", good, "PATH_OUTSIDE", path="/v/abc-1/%zz")
    add("token_for_other_prefix", pyjwt_token(claims(cdniuc="regex:^/v/xyz/")), "PATH_OUTSIDE")
    add("expired_and_outside", pyjwt_token(claims(exp=NOW - 1)), "EXPIRED", path="/v/other/x")
    add("cdniuc_wildcard", pyjwt_token(claims(cdniuc="regex:^/v/.*")), "BAD_URI_CONTAINER")
    add("cdniuc_unescaped_dot", pyjwt_token(claims(cdniuc="regex:^/v/a.b/")),
        "BAD_URI_CONTAINER")
    add("cdniuc_alternation", pyjwt_token(claims(cdniuc="regex:^/v/(a|b)/")),
        "BAD_URI_CONTAINER")
    add("cdniuc_class_escape", pyjwt_token(claims(cdniuc=r"regex:^/v/\d/")),
        "BAD_URI_CONTAINER")
    add("cdniuc_end_anchor", pyjwt_token(claims(cdniuc="regex:^/v/abc-1/$")),
        "BAD_URI_CONTAINER")
    add("cdniuc_not_anchored", pyjwt_token(claims(cdniuc="regex:/v/abc-1/")),
        "BAD_URI_CONTAINER")
    add("cdniuc_full_uri", pyjwt_token(claims(cdniuc=r"regex:^https://cdn\.example/v/")),
        "BAD_URI_CONTAINER")
    add("cdniuc_hash", pyjwt_token(claims(cdniuc="hash:" + "A" * 43)), "BAD_URI_CONTAINER")
    add("cdniuc_empty_prefix", pyjwt_token(claims(cdniuc="regex:^")), "BAD_URI_CONTAINER")
    add("cdniuc_trailing_backslash", pyjwt_token(claims(cdniuc="regex:^/v/\\")),
        "BAD_URI_CONTAINER")
    add("cdniuc_and_not_yet_valid", pyjwt_token(claims(cdniuc="regex:^/v/.*", iat=NOW + 999)),
        "NOT_YET_VALID")
    add("cdniuc_prefix_too_long", pyjwt_token(claims(cdniuc="regex:^/v/" + "p" * 254)),
        "MALFORMED")
    add("cdniuc_number", pyjwt_token(claims(cdniuc=7)), "MALFORMED")
    add("cdniuc_missing", pyjwt_token(claims(cdniuc=None)), "MALFORMED")

    # ---- malformed: header ----
    add("header_crit", pyjwt_token(claims(), headers={"crit": ["exp"], "exp": 1}), "MALFORMED")
    add("header_typ_jose", pyjwt_token(claims(), headers={"typ": "JOSE"}), "MALFORMED")
    add("header_typ_number", raw_token(compact({"alg": "HS256", "typ": 1, "kid": "k1"}),
                                       compact(claims())), "MALFORMED")
    add("kid_missing", raw_token(compact({"alg": "HS256", "typ": "JWT"}), compact(claims())),
        "MALFORMED")
    add("kid_bad_characters", pyjwt_token(claims(), kid="k 1", key=KEYS["k1"]), "MALFORMED")
    add("kid_too_long", pyjwt_token(claims(), kid="k" * 33, key=KEYS["k1"]), "MALFORMED")
    add("kid_number", raw_token(compact({"alg": "HS256", "kid": 1}), compact(claims())),
        "MALFORMED")
    add("header_duplicate_alg", raw_token(b'{"alg":"none","alg":"HS256","kid":"k1"}',
                                          compact(claims())), "MALFORMED")
    add("header_not_object", raw_token(b'["HS256"]', compact(claims())), "MALFORMED")
    add("header_not_json", raw_token(b'{"alg":"HS256",', compact(claims())), "MALFORMED")

    # ---- malformed: form ----
    add("two_parts", h + "." + p, "MALFORMED")
    add("four_parts", good + ".x", "MALFORMED")
    add("empty", "", "MALFORMED")
    # Padding: a payload whose encoding is not a multiple of 4 characters, then its '='s.
    padded = next(t for t in (pyjwt_token(claims(tmt_dev="d" * i)) for i in range(1, 4))
                  if len(t.split(".")[1]) % 4 != 0)
    ph, pp, ps = padded.split(".")
    add("padded_base64url", ph + "." + pp + "=" * (-len(pp) % 4) + "." + ps, "MALFORMED")
    add("base64_not_url", "+" + good[1:], "MALFORMED")
    last = s[-1]
    noncanon = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bumped = noncanon[noncanon.index(last) + 1]
    add("noncanonical_base64url", h + "." + p + "." + s[:-1] + bumped, "MALFORMED")
    add("too_long", pyjwt_token(claims(pad="x" * 1600)), "MALFORMED")

    # ---- malformed: claims (all signed correctly) ----
    add("exp_string", pyjwt_token(claims(exp=str(NOW + 3600))), "MALFORMED")
    add("exp_real", pyjwt_token(claims(exp=NOW + 3600.5)), "MALFORMED")
    add("exp_missing", pyjwt_token(claims(exp=None)), "MALFORMED")
    add("iat_missing", pyjwt_token(claims(iat=None)), "MALFORMED")
    add("nbf_null", raw_token(HDR, compact(claims()).replace(b"}", b',"nbf":null}')),
        "MALFORMED")
    add("iss_missing", pyjwt_token(claims(iss=None)), "MALFORMED")
    add("iss_empty", pyjwt_token(claims(iss="")), "MALFORMED")
    add("sub_number", pyjwt_token(claims(sub=12)), "MALFORMED")
    add("iss_too_long", pyjwt_token(claims(iss="i" * 65)), "MALFORMED")
    add("dev_too_long_utf8", pyjwt_token(claims(tmt_dev="\u00e9" * 33)), "MALFORMED")
    add("lease_number", pyjwt_token(claims(tmt_lease=5)), "MALFORMED")
    add("duplicate_exp", raw_token(HDR, compact(claims()).replace(
        b"}", b',"exp":%d}' % (NOW + 99999))), "MALFORMED")
    add("duplicate_nested", raw_token(HDR, compact(claims()).replace(
        b"}", b',"x":{"a":1,"a":2}}')), "MALFORMED")
    add("payload_not_object", raw_token(HDR, b"[1,2]"), "MALFORMED")
    add("payload_trailing_garbage", raw_token(HDR, compact(claims()) + b"x"), "MALFORMED")
    add("integer_overflow", raw_token(HDR, compact(claims()).replace(
        b"}", b',"big":18446744073709551616}')), "MALFORMED")
    add("nul_in_string", raw_token(HDR, compact(claims()).replace(
        b"}", b',"z":"a\\u0000b"}')), "MALFORMED")
    add("invalid_utf8", raw_token(HDR, compact(claims()).replace(b'"dev-7"', b'"dev-\xc3"')),
        "MALFORMED")
    add("cdnicrit_unknown", pyjwt_token(claims(cdnicrit="exp,cdniip")), "MALFORMED")
    add("cdnicrit_spaces", pyjwt_token(claims(cdnicrit="exp, nbf")), "MALFORMED")
    add("cdnicrit_empty", pyjwt_token(claims(cdnicrit="")), "MALFORMED")
    add("cdnicrit_empty_array", pyjwt_token(claims(cdnicrit=[])), "MALFORMED")
    add("cdnicrit_number", pyjwt_token(claims(cdnicrit=1)), "MALFORMED")
    add("malformed_claim_before_expiry", pyjwt_token(claims(exp=NOW - 9, sub=3)), "MALFORMED")
    return out


def document():
    return {
        "comment": "Made by make_vectors.py with python3-jwt; do not edit by hand.",
        "keys": [{"kid": k, "secret_hex": v.hex()} for k, v in KEYS.items()],
        "vectors": vectors(),
    }


def render():
    return json.dumps(document(), indent=1, ensure_ascii=True) + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    with open(out, "w") as f:
        f.write(render())
    print("%s: %d vectors" % (out, len(document()["vectors"])))


if __name__ == "__main__":
    main()
