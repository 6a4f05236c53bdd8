#!/usr/bin/env bash
# What a DFU flash of a 92 KiB module costs through usbemu (tests/tools/usbemu), per model: the
# baseline a DFU family's own flashes can be held against.
#
#   bench/usbemu-dfu.sh [BUILD_DIR] [RUNS]
#
# Each run: a fresh device, `dfu-util -a 0 -s ADDRESS:leave -D module` (94,208 bytes), timed
# around dfu-util, and its control transfers counted in usbemu's trace; the span is the first to
# the last transfer dfu-util made.  Median of RUNS (default 5).  Prints a table; passes or fails
# nothing.
set -euo pipefail

build=${1:-build}
runs=${2:-5}
usbemu=$build/tests/tools/usbemu/usbemu
[[ -x $usbemu ]] || { echo "build first: $usbemu missing" >&2; exit 1; }
command -v dfu-util >/dev/null || { echo "dfu-util is not installed (scripts/setup.sh)" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

bench_workdir work
head -c 94208 /dev/urandom >"$work/module.bin"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '| model | wTransferSize | control transfers | dfu-util s | transfers span s | ms per transfer |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for spec in stm32f2:0x08004000:2048 particle-photon:0x080a0000:4096 particle-argon:0x000b4000:4096 \
            particle-p2:0x08060000:4096; do
  IFS=: read -r model address size <<<"$spec"
  walls=() spans=() counts=()
  for r in $(seq "$runs"); do
    dir="$work/$model-$r"
    mkdir -p "$dir"
    "$usbemu" --trace "$dir/trace" --dfu "$model" --state "$dir/state" -- sh -c \
      "s=\$(date +%s.%N); dfu-util -a 0 -s $address:leave -D '$work/module.bin' >/dev/null 2>&1; e=\$(date +%s.%N); echo \$s \$e >'$dir/wall'"
    walls+=("$(awk '{ printf "%.3f", $2 - $1 }' "$dir/wall")")
    counts+=("$(grep -c ' ctrl ' "$dir/trace")")
    spans+=("$(awk '/ ctrl / { if (first == "") first = $1; last = $1 } END { printf "%.3f", last - first }' "$dir/trace")")
  done
  wall=$(printf '%s\n' "${walls[@]}" | median)
  span=$(printf '%s\n' "${spans[@]}" | median)
  count=$(printf '%s\n' "${counts[@]}" | median)
  printf '| %s | %s | %s | %s | %s | %.2f |\n' "$model" "$size" "$count" "$wall" "$span" \
    "$(awk -v s="$span" -v n="$count" 'BEGIN { print 1000 * s / n }')"
done
