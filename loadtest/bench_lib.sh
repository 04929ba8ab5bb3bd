# bench_lib.sh: helpers the loadtest/bench_*.sh scripts share (sourced, not run): usage from
# the script's header comment, messages, tool checks, server process trees and their stop, free
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
