#!/usr/bin/env bash
# Transcoding benchmark: `tomato-shield transcode` against the `ffmpeg` program making the same
# ladder from the same source with the same settings, one after the other on the same cores.
#
#   loadtest/bench/transcode.sh [--runs N] [--seconds S] [--build-dir DIR] [--keep]
#
# The source is made with ffmpeg in a temp dir: S seconds (default 30) of testsrc2 at 1920x1080
# 30 fps (libx264 veryfast crf 18, yuv420p) with a 440 Hz sine as AAC 192 kbit/s 44.1 kHz stereo.
#
#   ours    tomato-shield transcode --source src.mp4 --asset bench --root DIR --quiet, with the
#           defaults: ladder 1080:5M,720:3M,480:1200k,360:600k, preset veryfast, 4 s segments,
#           AAC 128 kbit/s 48 kHz stereo, x264 threads auto, one thread per rung.
#   ffmpeg  one ffmpeg process, one decode: -filter_complex "[0:v]fps=30/1,split=4[..]" then per
#           rung scale=W:H,format=yuv420p,setsar=1 and libx264 with the same preset, -b:v, keyint
#           (-g 120 -keyint_min 120 -sc_threshold 0 -forced-idr 1, -force_key_frames every 120
#           frames, x264-params keyint=120:min-keyint=120:scenecut=0:open-gop=0), AAC 128k 48 kHz
#           stereo in every output (ffmpeg encodes it once per output), -movflags +faststart.
#
# Wall time per side (median of the runs, ours first in each run), the ratio ours ÷ ffmpeg
# (target ≤ 1.0), then per rung: file sizes and their ratio (should be within 5 %), and PSNR of
# the rung against the source scaled to the rung's size (ffmpeg's psnr filter, average over
# Y/U/V; should be within 0.1 dB).
#
#   --runs N         runs per side, the median is reported (default 1)
#   --seconds S      source length (default 30)
#   --build-dir DIR  take tomato-shield from DIR/bin (default build-rel; configure it with
#                    cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release &&
#                    cmake --build build-rel -j1 --target tomato-shield)
#   --keep           keep the temp dir (source, both ladders), print its path
#
# Environment: TOMATO_SHIELD = path to the binary (overrides --build-dir). Tools: ffmpeg,
# ffprobe, python3. Output: a Markdown report on stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=loadtest/bench/lib.sh
. "$here/lib.sh"
build_dir=$top/build-rel
cmdline="loadtest/bench/transcode.sh$(printf ' %q' "$@")"

runs=1
seconds=30
keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (try --help)" ;;
    esac
done
shield=${TOMATO_SHIELD:-$build_dir/bin/tomato-shield}
[ -x "$shield" ] || die "no $shield (build it, or set TOMATO_SHIELD)"
missing=()
need_tool ffmpeg ffmpeg
need_tool ffprobe ffmpeg
need_tool python3 python3
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}"

tmp=$(mktemp -d /tmp/tmt-bench-transcode-XXXXXX)
cleanup() { if [ "$keep" = 1 ]; then note "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

rate=30
seg=4
per=$((rate * seg))
heights=(1080 720 480 360)
widths=(1920 1280 854 640)
bitrates=(5000000 3000000 1200000 600000)

note "making the source: ${seconds} s of 1920x1080 ${rate} fps"
ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=$rate" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100" -ac 2 -t "$seconds" \
    -c:v libx264 -preset veryfast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 192k "$tmp/src.mp4"

now() { date +%s.%N; }

run_ours() { # dir
    rm -rf "$1"
    mkdir -p "$1"
    local t0 t1
    t0=$(now)
    "$shield" transcode --source "$tmp/src.mp4" --asset bench --root "$1" --quiet >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}

run_ffmpeg() { # dir
    rm -rf "$1"
    mkdir -p "$1"
    local fc="[0:v]fps=$rate/1,split=4[s0][s1][s2][s3]" args=() i t0 t1
    for i in 0 1 2 3; do
        fc+=";[s$i]scale=${widths[$i]}:${heights[$i]},format=yuv420p,setsar=1[v$i]"
        args+=(-map "[v$i]" -map 0:a -c:v libx264 -preset veryfast -b:v "${bitrates[$i]}"
            -g $per -keyint_min $per -sc_threshold 0 -forced-idr 1
            -force_key_frames "expr:eq(mod(n,$per),0)"
            -x264-params "keyint=$per:min-keyint=$per:scenecut=0:open-gop=0"
            -c:a aac -b:a 128000 -ar 48000 -ac 2 -movflags +faststart "$1/${heights[$i]}p.mp4")
    done
    t0=$(now)
    ffmpeg -nostdin -v error -y -i "$tmp/src.mp4" -filter_complex "$fc" "${args[@]}"
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}

median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ours_t=()
ff_t=()
for r in $(seq 1 "$runs"); do
    note "run $r/$runs: ours"
    ours_t+=("$(run_ours "$tmp/ours")")
    note "run $r/$runs: ffmpeg"
    ff_t+=("$(run_ffmpeg "$tmp/ffmpeg")")
done
ours_med=$(echo "${ours_t[*]}" | median)
ff_med=$(echo "${ff_t[*]}" | median)

psnr() { # rung-file width height
    ffmpeg -nostdin -hide_banner -i "$1" -i "$tmp/src.mp4" -filter_complex \
        "[1:v]fps=$rate/1,scale=$2:$3,format=yuv420p,setsar=1[ref];[0:v]format=yuv420p[main];[main][ref]psnr" \
        -an -f null - 2>&1 | sed -n 's/.*PSNR.* average:\([0-9.inf]*\).*/\1/p' | tail -1
}

echo "## Transcoding: ${seconds} s 1080p30 source, 4-rung ladder"
echo
echo "\`$cmdline\` ($(nproc) cores, $(date -u +%Y-%m-%d), $(ffmpeg -version | head -1 | cut -d' ' -f1-3))"
echo
echo "| | wall time (s) | runs |"
echo "| --- | ---: | --- |"
echo "| ours (tomato-shield transcode) | $(printf %.2f "$ours_med") | ${ours_t[*]} |"
echo "| ffmpeg (one process, split) | $(printf %.2f "$ff_med") | ${ff_t[*]} |"
echo "| **ours ÷ ffmpeg** | **$(echo "$ours_med / $ff_med" | bc -l | xargs printf %.3f)** | |"
echo
echo "| rung | ours bytes | ffmpeg bytes | ours ÷ ffmpeg | ours PSNR (dB) | ffmpeg PSNR (dB) | Δ dB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for i in 0 1 2 3; do
    f=${heights[$i]}p.mp4
    [ -f "$tmp/ours/bench/$f" ] || die "ours made no $f"
    so=$(stat -c %s "$tmp/ours/bench/$f")
    sf=$(stat -c %s "$tmp/ffmpeg/$f")
    po=$(psnr "$tmp/ours/bench/$f" "${widths[$i]}" "${heights[$i]}")
    pf=$(psnr "$tmp/ffmpeg/$f" "${widths[$i]}" "${heights[$i]}")
    python3 - "$f" "$so" "$sf" "$po" "$pf" <<'EOF'
import sys
f, so, sf, po, pf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"| {f[:-4]} | {so} | {sf} | {so / sf:.3f} | {po:.2f} | {pf:.2f} | {po - pf:+.2f} |")
EOF
done
