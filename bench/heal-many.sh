#!/usr/bin/env bash
# How long healerd takes to heal N simulated devices at once, against one.
#
#   bench/heal-many.sh [BUILD_DIR] [BAUD] [COUNTS...]
#
# Each device runs release 1.0.0 with the heartbeat application (it needs
# 1.1.0's two system parts: 92,288 bytes, two resets), on a pty paced at
# BAUD (default 921600, 8N1).  Prints a table; passes or fails nothing.
set -euo pipefail

build=${1:-build}
baud=${2:-921600}
shift 2 2>/dev/null || shift $#
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1 8 32 64)
sim=$build/device-firmware/healer-sim
healerd=$build/agent/daemon/healerd
modules=$(cd "$build/device-firmware/modules" && pwd)
# The firmware build's catalog is signed with the development key: trusted for the benchmark only.
keys=$(cd "$(dirname "${BASH_SOURCE[0]}")/../device-firmware/keys" && pwd)
for f in "$sim" "$healerd"; do [[ -x $f ]] || { echo "build first: $f missing" >&2; exit 1; }; done

run() { # count -> seconds
  local n=$1 work pids=() start end
  work=$(mktemp -d -t healerd-bench.XXXXXX)
  mkdir -p "$work/ports"
  for i in $(seq "$n"); do
    "$sim" --state "$work/dev$i" --release 1.0.0 --app heartbeat --link "$work/ports/dev$i" --baud "$baud" \
      2>/dev/null &
    pids+=($!)
  done
  while [[ $(ls "$work/ports" | wc -l) -lt $n ]]; do sleep 0.01; done
  printf '[daemon]\nstate-directory=%s/state\n[serial]\nports=%s/ports/*\n[store]\nmodule-directories=%s\ntrusted-keys=%s\n' \
    "$work" "$work" "$modules" "$keys" >"$work/healerd.conf"
  start=$(date +%s.%N)
  "$healerd" --config "$work/healerd.conf" 2>"$work/healerd.log" &
  local hpid=$!
  until [[ $(grep -c "heal succeeded" "$work/healerd.log" || true) -ge $n ]]; do sleep 0.02; done
  end=$(date +%s.%N)
  kill "$hpid" "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }' 
}

printf '# healerd: N devices healed at once (1.0.0 -> 1.1.0, 92,288 bytes each, %s baud)\n' "$baud"
printf '# %s, %s cores\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)"
printf '%8s %12s %16s %14s\n' devices "total s" "s per device" "x one device"
one=""
for n in "${counts[@]}"; do
  t=$(run "$n")
  [[ -n $one ]] || one=$t
  awk -v n="$n" -v t="$t" -v one="$one" 'BEGIN { printf "%8d %12.2f %16.3f %14.2f\n", n, t, t / n, t / one }' 
done
