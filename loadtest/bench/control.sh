#!/usr/bin/env bash
# Playback-authorization benchmark: tomato-control answering POST /v1/playback (session lookup,
# device-limit check over the user's leases, lease write to RocksDB, token signing, URLs) against
# nginx answering the same requests with a fixed JSON body (the HTTP floor of this client and
# machine), in the same run.
#
#   loadtest/bench/control.sh [--duration SECONDS] [--runs N] [--quick] [--users N] [--build-dir DIR]
#
# Setup: tomato-control (server.workers=1, server.api_threads=2, auth.scrypt_n=1024 so that
# making the accounts is quick; scrypt is not on the measured path) with a published show and
# --users viewers (default 200), each logged in with one registered device. The server is pinned
# to core 0 (taskset -c 0), the load generator to core 1. Each measurement is
# wrk -t1 -c32 -d DURATION with a Lua script that cycles through the viewers: every request is a
# real authorization (the first for each device takes a lease, the rest renew it and sign a new
# token). A run fails if any answer is not 2xx. Rows:
#   authorize   tomato-control POST /v1/playback
#   session     tomato-control GET /v1/users/me (session lookup only: the floor of any /v1 call)
#   nginx       nginx `return 200` of a 900-byte JSON body to the same POSTs, one worker
# Per row: requests/s, server CPU-seconds per 1000 requests, and the ratio to nginx. Median of
# the runs.
#
#   --duration SECONDS  length of one measurement (default 10)
#   --runs N            measurements per row (default 3)
#   --quick             --duration 3 --runs 1
#   --users N           viewers the requests cycle through (default 200)
#   --build-dir DIR     take tomato-control from DIR/bin (default build; Release is fair)
#   --keep              keep the temp dir and print its path
#
# Tools: wrk, nginx (scripts/setup.sh --bench). Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"

duration=10
runs=3
users=200
build_dir=$top/build
keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --quick) duration=3; runs=1; shift ;;
    --users) users=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
control_bin=$build_dir/bin/tomato-control
[ -x "$control_bin" ] || die "no $control_bin (build first)"
missing=()
need_tool wrk wrk
need_tool nginx nginx
need_tool taskset util-linux
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (scripts/setup.sh --bench)"

tmp=$(mktemp -d /tmp/tmt-bench-control.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do stop_server "$p"; done
    if [ "$keep" = 1 ]; then note "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

read -r cport aport nport <<<"$(free_ports 3)"
echo "operator-password-1" >"$tmp/op.pw"
taskset -c 0 "$control_bin" --store "$tmp/store" --listen "127.0.0.1:$cport" \
    -s admin.listen="127.0.0.1:$aport" -s server.workers=1 -s server.api_threads=2 \
    -s auth.scrypt_n=1024 -s auth.max_attempts_per_address=1000000 \
    -s auth.bootstrap_operator_email=op@example.com \
    -s auth.bootstrap_operator_password_file="$tmp/op.pw" -s devices.lease_ttl=1h \
    -s log.level=warn >"$tmp/control.log" 2>&1 &
pids+=($!)
wait_ready "${pids[0]}" "$cport" || die "tomato-control did not start: $(tail -5 "$tmp/control.log")"

# Accounts, devices and the wrk script that cycles through them.
python3 - "$cport" "$users" "$tmp" <<'EOF'
import http.client, json, sys
port, users, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None, token=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    doc = json.loads(r.read() or b"null")
    if r.status >= 300:
        sys.exit("setup: %s %s -> %d %s" % (method, path, r.status, doc))
    return doc
op = call("POST", "/v1/sessions", {"email": "op@example.com", "password": "operator-password-1"})["token"]
call("POST", "/v1/shows", {"id": "bench", "title": "Bench", "asset_id": "bench-v1",
                           "state": "published", "duration": 3600}, op)
rows = []
for i in range(users):
    email = "viewer%d@example.com" % i
    call("POST", "/v1/users", {"email": email, "password": "viewer-password", "display_name": "V"})
    tok = call("POST", "/v1/sessions", {"email": email, "password": "viewer-password"})["token"]
    dev = call("POST", "/v1/devices", {"name": "tv", "type": "tv"}, tok)["id"]
    rows.append((tok, dev))
with open(tmp + "/authorize.lua", "w") as f:
    f.write("local creds = {\n")
    for tok, dev in rows:
        f.write('  {"%s", "%s"},\n' % (tok, dev))
    f.write("}\n")
    f.write("""
local n = 0
request = function()
  n = n + 1
  local c = creds[(n % #creds) + 1]
  return wrk.format("POST", "/v1/playback",
    {["Authorization"] = "Bearer " .. c[1], ["Content-Type"] = "application/json"},
    '{"show_id":"bench","device_id":"' .. c[2] .. '"}')
end
""")
with open(tmp + "/session.lua", "w") as f:
    f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % rows[0][0])
# One real answer, to size the floor's body like ours.
doc = call("POST", "/v1/playback", {"show_id": "bench", "device_id": rows[0][1]}, rows[0][0])
with open(tmp + "/answer.json", "w") as f:
    f.write(json.dumps(doc))
EOF

mkdir -p "$tmp/nginx"
body=$(sed "s/'/x/g" "$tmp/answer.json")
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        location / {
            default_type application/json;
            return 200 '$body';
        }
    }
}
EOF
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
    -g 'daemon off;' &
pids+=($!)
wait_ready "${pids[1]}" "$nport" || die "nginx did not start"

# One measurement: prints "requests/s cpu-seconds-per-1000".
measure() { # server-pid url script
    local pid=$1 url=$2 script=$3 raw t0 t1
    raw=$tmp/wrk.$RANDOM.txt
    t0=$(cpu_ticks "$pid")
    taskset -c 1 wrk -t1 -c32 -d"${duration}s" -s "$script" "$url" >"$raw" 2>&1 ||
        die "wrk failed: $(tail -3 "$raw")"
    t1=$(cpu_ticks "$pid")
    if grep -q "Non-2xx" "$raw"; then die "non-2xx answers from $url: $(grep Non-2xx "$raw")"; fi
    python3 - "$raw" "$((t1 - t0))" "$(getconf CLK_TCK)" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
t = re.search(r"(\d+) requests in", text)
if not m or not t:
    sys.exit("cannot parse wrk output: " + text[-300:])
cpu = int(sys.argv[2]) / int(sys.argv[3])
print("%.0f %.4f" % (float(m.group(1)), 1000 * cpu / max(int(t.group(1)), 1)))
EOF
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n' \
    >"$tmp/floor.lua"
declare -A rps cpu
for row in authorize session nginx; do
    r_list=()
    c_list=()
    for _ in $(seq "$runs"); do
        case $row in
        authorize) out=$(measure "${pids[0]}" "http://127.0.0.1:$cport/v1/playback" "$tmp/authorize.lua") ;;
        session) out=$(measure "${pids[0]}" "http://127.0.0.1:$cport/v1/users/me" "$tmp/session.lua") ;;
        nginx) out=$(measure "${pids[1]}" "http://127.0.0.1:$nport/v1/playback" "$tmp/floor.lua") ;;
        esac
        r_list+=("${out% *}")
        c_list+=("${out#* }")
    done
    rps[$row]=$(printf '%s\n' "${r_list[@]}" | median)
    cpu[$row]=$(printf '%s\n' "${c_list[@]}" | median)
done

leases=$(curl -s "http://127.0.0.1:$aport/metrics" | awk '/^tmt_control_tokens_signed_total/ { print $2 }')
echo "## Playback authorizations: tomato-control vs the nginx floor"
echo
echo "- command: \`loadtest/bench/control.sh --duration $duration --runs $runs --users $users --build-dir $build_dir\`"
echo "- $(nproc) cores, $(uname -r); $(wrk -v 2>&1 | head -n 1 | awk '{ print "wrk " $2 }'); $(nginx -v 2>&1)"
echo "- wrk -t1 -c32 on core 1, servers on core 0; median of $runs run(s); tokens signed in all: ${leases:-?}"
echo
echo "| row | requests/s | server CPU-s per 1000 requests | vs nginx floor |"
echo "| --- | ---: | ---: | ---: |"
for row in authorize session nginx; do
    ratio=$(awk -v a="${rps[$row]}" -v b="${rps[nginx]}" 'BEGIN { printf "%.2f", a / b }')
    echo "| $row | ${rps[$row]} | ${cpu[$row]} | $ratio |"
done
