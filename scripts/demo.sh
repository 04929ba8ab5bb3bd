#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs Tomato CDN on loopback with
# its embedded defaults, until Ctrl-C.
#
#   scripts/demo.sh            run until Ctrl-C
#   scripts/demo.sh --smoke    start everything, check it came up, stop it, exit 0/1 (used by tests)
#
# What runs today: the control plane, one shield and one edge, each on its default ports, with its
# log in var/demo/. The edge serves a sample folder (var/demo/www: a page, a text file, a short
# test video when ffmpeg is there) over HTTP/1.1 and h2c, and over HTTPS (h2) with a self-signed
# certificate; every daemon answers /healthz and /metrics on its admin port.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
for a in "$@"; do
    case "$a" in
    --smoke) smoke=1 ;;
    -h | --help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "demo.sh: unknown option '$a' (try --help)" >&2
        exit 2
        ;;
    esac
done

scripts/setup.sh
if [ ! -x build/bin/tomato-edge ] || [ "$smoke" = 1 ] || [ -n "$(find core config edge origin control-plane loadtest geo CMakeLists.txt -newer build/bin/tomato-edge -print -quit 2>/dev/null)" ]; then
    echo "demo: building"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
fi

logs=var/demo
mkdir -p "$logs"
pids=()
names=()

stop_all() {
    for i in "${!pids[@]}"; do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    local rc=0
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            echo "demo: ${names[$i]} stopped"
        else
            echo "demo: ${names[$i]} exited with an error (see $logs/${names[$i]}.log)"
            rc=1
        fi
    done
    pids=()
    return $rc
}
trap 'echo; stop_all; exit $?' INT TERM

start() {
    local name=$1
    shift
    "build/bin/$name" "$@" >"$logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

# Sample content and a self-signed certificate for the edge's HTTPS listener.
www=$logs/www
mkdir -p "$www"
cat >"$www/index.html" <<'HTML'
<!doctype html>
<title>Tomato CDN edge</title>
<h1>Tomato CDN edge</h1>
<p>Served from the edge's static folder. Try <a href="hello.txt">hello.txt</a>,
<a href="sample.mp4">sample.mp4</a> (when ffmpeg made one) or <a href="1m.bin">1m.bin</a>.</p>
HTML
echo "hello from the Tomato CDN edge" >"$www/hello.txt"
[ -f "$www/1m.bin" ] || head -c 1048576 /dev/urandom >"$www/1m.bin"
if [ ! -f "$www/sample.mp4" ] && command -v ffmpeg >/dev/null; then
    ffmpeg -v error -f lavfi -i testsrc=duration=4:size=640x360:rate=25 \
        -f lavfi -i sine=frequency=440:duration=4 -c:v libx264 -pix_fmt yuv420p -c:a aac \
        -movflags +faststart -y "$www/sample.mp4" || rm -f "$www/sample.mp4"
fi
if [ ! -f "$logs/demo.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$logs/demo.key" -out "$logs/demo.crt" \
        -days 30 -subj /CN=localhost >/dev/null 2>&1
fi

start tomato-control
start tomato-shield
start tomato-edge --static "$www" --set server.tls_listen=127.0.0.1:8443 \
    --set tls.cert="$logs/demo.crt" --set tls.key="$logs/demo.key" \
    --set log.access_log="$logs/edge-access.log"

# Each daemon logs msg="started" once its settings loaded and its loop runs.
for name in "${names[@]}"; do
    for _ in $(seq 50); do
        grep -q 'msg="started"' "$logs/$name.log" 2>/dev/null && break
        sleep 0.1
    done
    if ! grep -q 'msg="started"' "$logs/$name.log"; then
        echo "demo: $name did not start; its log:" >&2
        cat "$logs/$name.log" >&2
        stop_all || true
        exit 1
    fi
done

cat <<MSG

Tomato CDN $(build/bin/tomato-edge --version | cut -d' ' -f2) is running on loopback:

  tomato-control  pid ${pids[0]}  API 127.0.0.1:8400, admin 127.0.0.1:9400   log $logs/tomato-control.log
  tomato-shield   pid ${pids[1]}  fill 127.0.0.1:8300, admin 127.0.0.1:9300  log $logs/tomato-shield.log
  tomato-edge     pid ${pids[2]}  HTTP 127.0.0.1:8080, HTTPS 127.0.0.1:8443, admin 127.0.0.1:9080
                  log $logs/tomato-edge.log, access log $logs/edge-access.log

Fetch from the edge (it serves $www):

  curl http://127.0.0.1:8080/hello.txt
  curl --http2-prior-knowledge -r 0-99 http://127.0.0.1:8080/1m.bin | wc -c
  curl -k --http2 https://127.0.0.1:8443/index.html
  curl http://127.0.0.1:9080/metrics                   counters (also :9300, :9400)

The shield's packager and the control plane's API are not there yet: their main ports answer 404.

  build/bin/tomato-edge --dump-config                  effective settings with their help
  kill -HUP ${pids[2]}                                     reload the edge (see its log)

Ctrl-C stops everything.
MSG

if [ "$smoke" = 1 ]; then
    fail() {
        echo "demo: $*" >&2
        stop_all || true
        exit 1
    }
    got=$(curl -sS --max-time 5 http://127.0.0.1:8080/hello.txt) || fail "the edge did not answer"
    [ "$got" = "hello from the Tomato CDN edge" ] || fail "the edge answered '$got'"
    n=$(curl -sS --max-time 5 --http2-prior-knowledge -r 0-99 http://127.0.0.1:8080/1m.bin | wc -c)
    [ "$n" = 100 ] || fail "h2c range request gave $n bytes"
    v=$(curl -sSk --max-time 5 --http2 -o /dev/null -w '%{http_version}' https://127.0.0.1:8443/)
    [ "$v" = 2 ] || fail "HTTPS did not speak h2 (got '$v')"
    for port in 9080 9300 9400; do
        curl -sSf --max-time 5 "http://127.0.0.1:$port/healthz" >/dev/null ||
            fail "admin port $port did not answer /healthz"
    done
    kill -HUP "${pids[2]}"
    for _ in $(seq 50); do
        grep -q 'msg="reloaded" generation=2' "$logs/tomato-edge.log" && break
        sleep 0.1
    done
    grep -q 'msg="reloaded" generation=2' "$logs/tomato-edge.log" || {
        echo "demo: the edge did not reload" >&2
        stop_all || true
        exit 1
    }
    stop_all
    echo "demo: smoke run passed"
    exit 0
fi
wait
