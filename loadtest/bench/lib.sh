# lib.sh: helpers the loadtest/bench_*.sh scripts share (sourced, not run): usage from
# the script's header comment, messages, tool checks and the preflight of daemon benchmarks,
# server process trees and their stop, free
# loopback ports and waiting for them, CPU ticks of a process tree, a nanosecond clock.
# shellcheck shell=bash

bench_name=$(basename "$0")

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

die() {
    echo "$bench_name: $*" >&2
    exit 1
}

note() { echo "$bench_name: $*" >&2; }

need_tool() { # command debian-package
    command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package $2)")
}

# The checks a benchmark of our daemons makes before it starts anything: the tools it needs
# (need_tool calls before this fill missing[]), the binaries (Release build advised), and the two
# cores it pins server and client to (server_core, client_core). Dies with what to install.
preflight() { # build-dir binary...
    local build_dir=$1 b m build_type
    shift
    if [ "${#missing[@]}" -gt 0 ]; then
        for m in "${missing[@]}"; do note "missing $m"; done
        die "install them with: scripts/setup.sh --bench"
    fi
    for b in "$@"; do
        [ -x "$build_dir/bin/$b" ] ||
            die "no $build_dir/bin/$b (cmake --build ${build_dir#"$top"/} -j1 --target $*)"
    done
    build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
    bench_build_type=${build_type:-unknown} # for the report
    case "$build_type" in
    Release | RelWithDebInfo) ;;
    *) note "WARNING: $build_dir is a '${build_type:-unknown}' build; compare with a Release build" ;;
    esac
    taskset -c "$server_core,$client_core" true 2>/dev/null ||
        die "needs cores $server_core and $client_core (taskset -c $server_core,$client_core failed)"
}

# Prints PID and all its descendants.
tree_pids() {
    ps -e -o pid= -o ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            keep[root] = 1; print root
            do {
                added = 0
                for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; added = 1 } }
            } while (added)
        }'
}

stop_server() { # pid
    local pid=$1 kids i
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kids=$(tree_pids "$pid" | tail -n +2 | tr '\n' ' ')
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
}

# Prints N free TCP ports on 127.0.0.1.
free_ports() {
    python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
' "$1"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# utime+stime, in clock ticks, summed over the processes of a server.
cpu_ticks() { # pid
    local p sum=0 stat rest
    for p in $(tree_pids "$1"); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${stat##*) } # fields from 3 on; comm may hold spaces
        # shellcheck disable=SC2086
        set -- $rest
        sum=$((sum + ${12} + ${13}))
    done
    echo "$sum"
}

now_ns() { date +%s%N; }

# Waits up to 20 s until every port accepts connections; fails if the process exits first.
wait_ready() { # pid port...
    local pid=$1 i p ok
    shift
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 1
        ok=1
        for p in "$@"; do port_open "$p" || ok=0; done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    return 1
}
