#!/usr/bin/env bash
# The Particle control-request client's polling (agent/daemon/particle-poll.h) against particle-usb's
# fixed schedule (50, 50, 100, 100, 250, 250, 500, 500, 1000 ms), on usbemu's Photon in normal mode
# with Device OS' modelled times (tests/tools/usbemu/particle-channel.c): one OTA of a system part
# over control requests (START with its erase, DATA in the 1024-byte chunks START answers, FINISH),
# as particle-usb's updateFirmware() sends it, through tests/tools/particle-client-probe.
#
#   bench/particle-client.sh [BUILD_DIR] [KIB] [RUNS]
#
# Each run: a fresh device holding system part 1, the OTA of a KIB KiB (default 128) system part 2
# timed by the probe (START to FINISH's answer), the client's stats.  Median of RUNS (default 3).
# Prints a table; passes or fails nothing.
set -euo pipefail

build=${1:-build}
kib=${2:-128}
runs=${3:-3}
usbemu=$build/tests/tools/usbemu/usbemu
probe=$build/tests/tools/particle-client-probe
mkmodule=$build/agent/tools/mkmodule
for p in "$usbemu" "$probe" "$mkmodule"; do
  [[ -x $p ]] || { echo "build first: $p missing" >&2; exit 1; }
done
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_workdir work
head -c 30000 /dev/urandom >"$work/sp1.raw"
head -c $((kib * 1024)) /dev/urandom >"$work/sp2.raw"
"$mkmodule" -p photon -f system-part -i 1 -v 2300 -a 0x08020000 -o "$work/sp1.bin" "$work/sp1.raw"
"$mkmodule" -p photon -f system-part -i 2 -v 2300 -a 0x08060000 -d system-part:1:2300 -o "$work/sp2.bin" "$work/sp2.raw"
bytes=$(stat -c %s "$work/sp2.bin")

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '| polling | module bytes | OTA s | KiB/s | control transfers | CHECKs | bytes out | bytes in |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
declare -A seconds
for schedule in measured pusb; do
  times=() transfers=() polls=() outs=() ins=()
  for r in $(seq "$runs"); do
    dir="$work/$schedule-$r"
    mkdir -p "$dir"
    "$usbemu" --trace "$dir/trace" --particle photon --modules "$work/sp1.bin" --state "$dir/state" -- \
      "$probe" --schedule "$schedule" open ota "$work/sp2.bin" stats >"$dir/out"
    grep -q '^ota: .* result 0, ' "$dir/out" || { echo "$schedule run $r failed:" >&2; cat "$dir/out" >&2; exit 1; }
    times+=("$(sed -n 's/^ota: .*, \([0-9.]*\) ms$/\1/p' "$dir/out" | awk '{ printf "%.3f", $1 / 1000 }')")
    read -r t p o i < <(sed -n 's/^stats: transfers \([0-9]*\) polls \([0-9]*\) bytes-out \([0-9]*\) bytes-in \([0-9]*\)$/\1 \2 \3 \4/p' "$dir/out")
    transfers+=("$t") polls+=("$p") outs+=("$o") ins+=("$i")
  done
  s=$(printf '%s\n' "${times[@]}" | median)
  seconds[$schedule]=$s
  printf '| %s | %s | %s | %.1f | %s | %s | %s | %s |\n' \
    "$([[ $schedule == pusb ]] && echo "particle-usb's schedule" || echo measured)" "$bytes" "$s" \
    "$(awk -v b="$bytes" -v s="$s" 'BEGIN { print b / 1024 / s }')" \
    "$(printf '%s\n' "${transfers[@]}" | median)" "$(printf '%s\n' "${polls[@]}" | median)" \
    "$(printf '%s\n' "${outs[@]}" | median)" "$(printf '%s\n' "${ins[@]}" | median)"
done
printf '\nthroughput, measured against particle-usb'"'"'s schedule: %.1fx\n' \
  "$(awk -v a="${seconds[pusb]}" -v b="${seconds[measured]}" 'BEGIN { print a / b }')"
