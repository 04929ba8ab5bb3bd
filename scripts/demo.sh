#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs Tomato CDN on loopback with
# its embedded defaults, until Ctrl-C.
#
#   scripts/demo.sh            run until Ctrl-C
#   scripts/demo.sh --smoke    start everything, check it came up, stop it, exit 0/1 (used by tests)
#
# What runs today: the control plane, one shield and one edge, each on its default ports, with its
# log in var/demo/. They load and validate their settings, reload on SIGHUP and stop cleanly on
# SIGTERM; serving HTTP arrives with the HTTP core (see README, "Status").
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

start tomato-control
start tomato-shield
start tomato-edge

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
  tomato-edge     pid ${pids[2]}  HTTP 127.0.0.1:8080, admin 127.0.0.1:9080  log $logs/tomato-edge.log

The daemons run their lifecycle (settings, logging, reload, shutdown); their listeners come with
the HTTP core. Things to try meanwhile:

  build/bin/tomato-edge --dump-config                  effective settings with their help
  build/bin/tomato-edge --check-config -c FILE         validate a settings file
  kill -HUP ${pids[2]}                                     reload the edge (see its log)

Ctrl-C stops everything.
MSG

if [ "$smoke" = 1 ]; then
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
