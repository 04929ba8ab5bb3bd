#!/usr/bin/env bash
# Installs everything Tomato CDN needs to build, test and benchmark, from Debian 12's packages.
# Idempotent: packages already installed are skipped, and apt is not touched when nothing is missing.
#
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --bench    also the peers used by loadtest/ (nginx, h2o, varnish, trafficserver,
#                               wrk, h2load)
set -euo pipefail

want_bench=0
for a in "$@"; do
    case "$a" in
    --bench) want_bench=1 ;;
    -h | --help)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "setup.sh: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done

# Toolchain and build.
pkgs=(build-essential cmake pkg-config git clang libclang-rt-14-dev clang-format python3)
# Libraries (one owner module each, see docs/ARCHITECTURE.md).
pkgs+=(libevent-dev libnghttp2-dev libssl-dev librocksdb-dev libmaxminddb-dev
    libavformat-dev libavcodec-dev libavutil-dev libavfilter-dev libswscale-dev libswresample-dev
    libzstd-dev libjansson-dev libinih-dev libxxhash-dev libcmocka-dev)
# Tools the tests drive as real clients.
pkgs+=(ffmpeg curl openssl nghttp2-client zstd python3-jwt python3-h2 iproute2 valgrind)
pkgs+=(libmaxmind-db-writer-perl mmdb-bin) # geo tests write City databases; mmdblookup reads them
# The browser test (tests/browser): Debian's Chromium, driven by playwright-core from npm. Node.js
# and npm come from Debian unless the machine has them already (a Node.js from elsewhere that
# bundles npm conflicts with Debian's npm package).
pkgs+=(chromium)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
if [ "$want_bench" = 1 ]; then
    pkgs+=(nginx-light h2o varnish trafficserver wrk linux-perf)
fi
# Services these packages start: loadtest/ runs its own instances, and the packaged Traffic
# Server would hold port 8080 (tomato-edge's default).
bench_services=(varnish trafficserver)

missing=()
for p in "${pkgs[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done

# The web players the control plane serves to its /watch page (web/package-lock.json): npm ci
# when web/node_modules is missing or older than the lock file.
web_players() {
    local web
    web="$(cd "$(dirname "$0")/.." && pwd)/web"
    if [ ! -f "$web/node_modules/.package-lock.json" ] ||
        [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
        echo "setup: installing the web players (npm ci in web/)"
        # The registry is across the network: a timeout is retried twice before setup gives up.
        local try
        for try in 1 2 3; do
            (cd "$web" && npm ci --no-audit --no-fund --loglevel=error --fetch-retries=4) && return 0
            [ "$try" -lt 3 ] || break
            echo "setup: npm ci failed (attempt $try of 3), trying again in $((try * 15)) s" >&2
            sleep $((try * 15))
        done
        echo "setup: npm ci in $web failed 3 times" >&2
        return 1
    fi
}

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all ${#pkgs[@]} packages present"
    web_players
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "setup: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    }
    sudo="sudo"
fi
echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$want_bench" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for s in "${bench_services[@]}"; do
        for p in "${missing[@]}"; do
            [ "$p" != "$s" ] || $sudo systemctl disable --now "$s" >/dev/null 2>&1 || true
        done
    done
fi
web_players
echo "setup: done"
