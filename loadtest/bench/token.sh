#!/usr/bin/env bash
# Token benchmark: core/token checking and signing URI Signing tokens against PyJWT (Debian's
# python3-jwt, the implementation the test vectors are checked with), one thread each, pinned
# to the same core, in the same run.
#
#   loadtest/bench/token.sh [--iter N] [--runs N] [--quick] [--build-dir DIR]
#
#   ours    tmt-token-bench ITER 1 NOW (loadtest/token_bench.c) on core 0: 64 tokens of the
#           size the control plane issues (about 400 characters), NOW the real clock. Per run,
#           ITER full checks (tmt_token_verify against a ring of two keys, then
#           tmt_token_path_ok on a request path, every result checked), ITER refusals of a
#           token with a wrong signature, ITER signatures; nothing cached between calls. Also
#           ITER parses of the token's payload JSON by jansson alone, its share of a check.
#   theirs  python3 with PyJWT on core 0, the same token, key and path, ITER / 10 iterations
#           per run (each run at least ~1 s):
#             decode   jwt.decode(token, key, algorithms=["HS256"], leeway=30): header,
#                      signature, exp, nbf, iat; the key chosen by the header's kid
#                      (jwt.get_unverified_header) from a dict of two keys;
#             full     decode, then the rest of our profile in Python: iss and sub strings,
#                      cdniv == 1, cdniuc read as "regex:^" and an escaped literal prefix, the
#                      request path normalized (RFC 3986 6.2.2) and compared with it;
#             reject   jwt.decode of the token with the wrong signature (InvalidSignatureError);
#             sign     jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid}).
#           Each measured with time.perf_counter_ns() around the whole loop.
#   The runs alternate, one of ours then one of PyJWT's, so that other work on the machine falls
#   on both; each figure is the median over the runs of the time per operation; the ratio is
#   operations per second, ours ÷ theirs (higher is better for us).
#
#   --iter N            operations per run for ours (default 200000; PyJWT does N / 10)
#   --runs N            runs, the median is reported (default 5)
#   --quick             --iter 50000 --runs 3
#   --build-dir DIR     take tmt-token-bench from DIR/bin (default build; a Release build is
#                       fair: cmake -S . -B build-tok-rel -DCMAKE_BUILD_TYPE=Release &&
#                       cmake --build build-tok-rel -j1 --target tmt-token-bench)
#
# Environment: TMT_TOKEN_BENCH = path to the binary (overrides --build-dir). Tools: python3 with
# python3-jwt (scripts/setup.sh installs it), taskset. Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build
cmdline="loadtest/bench/token.sh$(printf ' %q' "$@")"
tool_pid=""

iter=200000
runs=5
core=0

while [ $# -gt 0 ]; do
    case "$1" in
    --iter)
        [ $# -ge 2 ] || die "--iter needs a value"
        iter=$2
        shift 2
        ;;
    --iter=*)
        iter=${1#*=}
        shift
        ;;
    --runs)
        [ $# -ge 2 ] || die "--runs needs a value"
        runs=$2
        shift 2
        ;;
    --runs=*)
        runs=${1#*=}
        shift
        ;;
    --quick)
        iter=50000
        runs=3
        shift
        ;;
    --build-dir)
        [ $# -ge 2 ] || die "--build-dir needs a value"
        build_dir=$2
        shift 2
        ;;
    --build-dir=*)
        build_dir=${1#*=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench/token.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
done
if ! [[ "$iter" =~ ^[1-9][0-9]*$ ]] || [ "$iter" -lt 100 ]; then
    die "--iter takes a count >= 100, got '$iter'"
fi
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "--runs takes a count >= 1, got '$runs'"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "no build dir '$build_dir'"
bench_bin=${TMT_TOKEN_BENCH:-$build_dir/bin/tmt-token-bench}

# ---- tools ----

missing=()
need_tool taskset util-linux
need_tool python3 python3
if [ "${#missing[@]}" -gt 0 ]; then
    for m in "${missing[@]}"; do note "missing $m"; done
    die "install them with: scripts/setup.sh"
fi
# python3-jwt is a Debian package: a python3 from pyenv or a venv may not see it.
py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import jwt' 2>/dev/null; then
        py=$p
        break
    fi
done
[ -n "$py" ] || die "no python3 with python3-jwt (install it with scripts/setup.sh)"
rel=${build_dir#"$top"/}
[ -x "$bench_bin" ] || die "no tmt-token-bench at $bench_bin (build it: cmake --build $rel -j1 --target tmt-token-bench)"
build_type=unknown
build_cache=$(dirname "$(dirname "$bench_bin")")/CMakeCache.txt
if [ -f "$build_cache" ]; then
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_cache")
    build_type=${build_type:-none}
fi
case "$build_type" in
Release | RelWithDebInfo) ;;
*) note "WARNING: $bench_bin is a '$build_type' build; the comparison is only fair with Release (see --help)" ;;
esac
taskset -c "$core" true 2>/dev/null || die "needs core $core (taskset -c $core failed)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tmt-bench-token.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$tool_pid" ]; then kill "$tool_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits, so that a signal stops the script at once.
run_tool() {
    "$@" &
    tool_pid=$!
    local rc=0
    wait "$tool_pid" || rc=$?
    tool_pid=""
    return "$rc"
}

# ---- the peer's program: "measure" times one run, "report" writes the Markdown ----

cat >"$tmp/peer.py" <<'EOF'
import os, platform, re, ssl, statistics, subprocess, sys, time

import jwt


def kv_file(path):
    return dict(line.rstrip("\n").split("=", 1) for line in open(path))


UNRESERVED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
HEX = set("0123456789abcdefABCDEF")
PREFIX = re.compile(r"regex:\^((?:[A-Za-z0-9/_~!&',;=:@%-]|\\[!-/:-@\[-`{-~])+)\Z")


def normalize(path):
    out = []
    for seg in path.split("/")[1:]:
        if not seg:
            continue
        if "%" in seg:
            res, j = [], 0
            while j < len(seg):
                if seg[j] != "%":
                    res.append(seg[j])
                    j += 1
                    continue
                hx = seg[j + 1:j + 3]
                if len(hx) != 2 or not set(hx) <= HEX:
                    return None
                ch = chr(int(hx, 16))
                res.append(ch if ch in UNRESERVED else "%" + hx.upper())
                j += 3
            seg = "".join(res)
        if seg == ".":
            continue
        if seg == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(seg)
    n_ = "/" + "/".join(out)
    return n_ + "/" if out and path.endswith("/") else n_


def measure(ours_path, n):
    ours = kv_file(ours_path)
    token, kid, path = ours["token"], ours["kid"], ours["path"]
    key = bytes.fromhex(ours["key_hex"])
    keys = {"k2025-12": bytes(range(1, 33)), kid: key}
    h, p, s = token.split(".")
    i = len(s) - 5
    forged = h + "." + p + "." + s[:i] + ("B" if s[i] == "A" else "A") + s[i + 1:]

    def decode():
        k = keys[jwt.get_unverified_header(token)["kid"]]
        return jwt.decode(token, k, algorithms=["HS256"], leeway=30)

    def full():
        c = decode()
        if not (isinstance(c.get("iss"), str) and isinstance(c.get("sub"), str) and
                c.get("cdniv") == 1):
            raise SystemExit("profile check failed")
        m = PREFIX.match(c["cdniuc"])
        prefix = re.sub(r"\\(.)", r"\1", m.group(1))
        np = normalize(path)
        if np is None or not np.startswith(prefix):
            raise SystemExit("path check failed")

    def reject():
        try:
            jwt.decode(forged, key, algorithms=["HS256"], leeway=30)
        except jwt.InvalidSignatureError:
            return
        raise SystemExit("the forged token was accepted")

    claims = decode()

    def sign():
        jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})

    # The same token and work must pass before anything is timed.
    full()
    reject()
    if jwt.decode(jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid}), key,
                  algorithms=["HS256"], leeway=30) != claims:
        raise SystemExit("PyJWT's own token does not read back")
    for name, fn in (("decode", decode), ("full", full), ("reject", reject), ("sign", sign)):
        for _ in range(n // 10):
            fn()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        print("%s_ns=%.1f" % (name, (time.perf_counter_ns() - t0) / n))


def src_rev(build_cache):
    src = None
    if os.path.exists(build_cache):
        for line in open(build_cache):
            if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                src = line.split("=", 1)[1].strip()
    if src and os.path.exists(os.path.join(src, "SOURCE_REV")):
        return open(os.path.join(src, "SOURCE_REV")).read().strip() + " (exported)"
    try:
        rev = subprocess.run(["git", "-C", src or ".", "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src or ".", "status", "--porcelain", "--",
                                "core", "loadtest/token_bench.c"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (", with uncommitted changes to core/ or token_bench.c" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pkg_version(name):
    r = subprocess.run(["pkg-config", "--modversion", name], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def us(ns):
    return "%.2f" % (ns / 1000)


def per_s(ns):
    return "{:,}".format(round(1e9 / ns))


def runs_us(v):
    return ", ".join("%.2f" % (x / 1000) for x in v)


def report(tmp, runs, n, cmdline, build_type, build_cache):
    ours_runs = [kv_file(os.path.join(tmp, "ours-%d.txt" % r)) for r in range(1, runs + 1)]
    their_runs = [kv_file(os.path.join(tmp, "theirs-%d.txt" % r)) for r in range(1, runs + 1)]
    first = ours_runs[0]
    o = {k: [float(x[k + "_ns_median"]) for x in ours_runs]
         for k in ("verify", "reject", "sign", "json")}
    t = {k: [float(x[k + "_ns"]) for x in their_runs] for k in ("decode", "full", "reject", "sign")}
    om = {k: statistics.median(v) for k, v in o.items()}
    tm = {k: statistics.median(v) for k, v in t.items()}
    print("### Tokens: core/token against PyJWT (one thread)")
    print()
    print("Command: `%s`" % cmdline)
    print()
    print("- tmt-token-bench (build of git %s, CMAKE_BUILD_TYPE=%s), OpenSSL %s, jansson %s"
          % (src_rev(build_cache), build_type, pkg_version("openssl"), pkg_version("jansson")))
    print("- PyJWT %s on Python %s (%s), its HMAC from Python's hashlib (%s)"
          % (jwt.__version__, platform.python_version(), sys.executable, ssl.OPENSSL_VERSION))
    print("- one token of %s characters (kid %s, iss, sub, iat, exp, nbf, cdniv, cdniuc, tmt_dev, "
          "tmt_lease), request path `%s`; both on core 0 (taskset)"
          % (first["token_bytes"], first["kid"], first["path"]))
    print("- %d runs, each one of ours (%s operations of each kind) then one of PyJWT (%d of "
          "each); the median over the runs of the time per operation"
          % (runs, first["iter"], n))
    print("- machine: %d cores (%s), Linux %s, %s" % (
        os.cpu_count(), cpu_model(), platform.release(),
        time.strftime("%Y-%m-%d", time.gmtime())))
    print()
    print("| operation | ours µs | ours per s | PyJWT µs | PyJWT per s "
          "| ratio (per s, ours ÷ PyJWT) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = (("check a token: ours in full; PyJWT decode + the profile's checks in Python",
             "verify", "full"),
            ("check a token: ours in full; PyJWT decode only (signature, exp, nbf, iat)",
             "verify", "decode"),
            ("refuse a token with a wrong signature", "reject", "reject"),
            ("sign", "sign", "sign"))
    for label, ok, tk in rows:
        print("| %s | %s | %s | %s | %s | %.1f |" % (label, us(om[ok]), per_s(om[ok]),
                                                     us(tm[tk]), per_s(tm[tk]), tm[tk] / om[ok]))
    print()
    print("Of ours' %s µs per check, jansson reading the payload JSON alone takes %s µs, and "
          "everything up to the signature (header, kid, HMAC), as in refusing a forgery, %s µs."
          % (us(om["verify"]), us(om["json"]), us(om["reject"])))
    print()
    print("Per run (µs): ours check %s; refuse %s; sign %s; payload JSON %s. PyJWT decode + "
          "profile %s; decode %s; refuse %s; sign %s." % (
              runs_us(o["verify"]), runs_us(o["reject"]), runs_us(o["sign"]),
              runs_us(o["json"]), runs_us(t["full"]), runs_us(t["decode"]),
              runs_us(t["reject"]), runs_us(t["sign"])))
    print()


if sys.argv[1] == "measure":
    measure(sys.argv[2], int(sys.argv[3]))
else:
    report(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6],
           sys.argv[7])
EOF

# ---- runs: ours, then theirs, in turn ----

now=$(date +%s)
py_iter=$((iter / 10))
note "$runs runs of tmt-token-bench ($iter operations of each kind) and PyJWT ($py, $py_iter), on core $core"
for r in $(seq "$runs"); do
    run_tool taskset -c "$core" "$bench_bin" "$iter" 1 "$now" >"$tmp/ours-$r.txt" 2>"$tmp/ours.err" ||
        die "tmt-token-bench failed: $(tail -n 5 "$tmp/ours.err")"
    run_tool taskset -c "$core" "$py" "$tmp/peer.py" measure "$tmp/ours-1.txt" "$py_iter" \
        >"$tmp/theirs-$r.txt" 2>"$tmp/theirs.err" ||
        die "the PyJWT loop failed: $(tail -n 5 "$tmp/theirs.err")"
done
"$py" "$tmp/peer.py" report "$tmp" "$runs" "$py_iter" "$cmdline" "$build_type" "$build_cache" ||
    die "the report failed"
