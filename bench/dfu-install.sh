#!/usr/bin/env bash
# dfu-install: healerd's DFU install (the DFU family's code, run by tests/tools/dfu-family-client
# as healerd runs it) against dfu-util's, on the same emulated device (tests/tools/usbemu), same
# module.  Control transfers and time come from usbemu's --trace: each transfer is one line with
# a timestamp.  bench/README.md ("dfu-install") has a table and what it means.
#
#   dfu-install.sh BUILD_DIR [SIZE_KIB] [REPS]
#
# For each model: a fresh device per run; dfu-util -a 0 -s ADDR -D FILE (download, no verify, no
# leave); the family's install (erase, blocks, verify by UPLOAD, headers read again).  Printed per
# model: transfers and milliseconds of the download (first ERASE to the last block's status),
# of the whole tool run on the device (first to last transfer), and the family's extra phases.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"

build=${1:?usage: dfu-install.sh BUILD_DIR [SIZE_KIB] [REPS]}
size_kib=${2:-256}
reps=${3:-3}
usbemu=$build/tests/tools/usbemu/usbemu
client=$build/tests/tools/dfu-family-client
mkmodule=$build/agent/tools/mkmodule
command -v dfu-util >/dev/null || { echo "dfu-util is not installed (scripts/setup.sh)" >&2; exit 77; }

bench_workdir work

# model platform address
models=(
  "stm32f2 6 0x08020000"
  "particle-photon 6 0x08020000"
  "particle-argon 12 0x00030000"
  "particle-p2 32 0x08060000"
)

# analyse TRACE: "all_n all_ms dl_n dl_ms" (download = first ERASE .. last DNLOAD block's last GETSTATUS before
# anything else: the transfers between the first ERASE and the last data DNLOAD, plus its status polls).
analyse() {
  python3 - "$1" <<'EOF'
import sys
lines = [l.split() for l in open(sys.argv[1]) if ' ctrl ' in l]
t = [float(l[0]) for l in lines]
req = [next(w for w in l if w.startswith('bRequest=')) for l in lines]
text = [' '.join(l) for l in lines]
first_erase = next(i for i, s in enumerate(text) if 'dfuse=ERASE' in s)
last_data = max(i for i, s in enumerate(text) if 'bRequest=DNLOAD' in s and 'wValue=0x0002' in s)
end = last_data
while end + 1 < len(lines) and req[end + 1] == 'bRequest=GETSTATUS':
    end += 1
uploads = sum(1 for i in range(end + 1, len(lines)) if req[i] == 'bRequest=UPLOAD')
print(len(lines), round((t[-1] - t[0]) * 1000, 1), end - first_erase + 1,
      round((t[end] - t[first_erase]) * 1000, 1), len(lines) - (end - first_erase + 1), uploads)
EOF
}

printf '%s KiB module, %s runs each (medians)\n\n' "$size_kib" "$reps"
printf '| model | tool | download transfers | download ms | all transfers | all ms | other transfers (UPLOADs) |\n'
printf '|---|---|---|---|---|---|---|\n'
for row in "${models[@]}"; do
  read -r model platform address <<<"$row"
  head -c $((size_kib * 1024 - 64)) /dev/urandom >"$work/raw"
  "$mkmodule" -p "$platform" -f system-part -i 1 -v 300 -a "$address" -o "$work/module.bin" "$work/raw" >/dev/null
  for tool in dfu-util healerd; do
    results=()
    for ((r = 0; r < reps; r++)); do
      rm -rf "$work/state" "$work/trace"
      if [[ $tool == dfu-util ]]; then
        "$usbemu" --trace "$work/trace" --dfu "$model" --state "$work/state" -- \
          dfu-util -a 0 -s "$address" -D "$work/module.bin" >/dev/null 2>&1
      else
        "$usbemu" --trace "$work/trace" --dfu "$model" --state "$work/state" -- \
          "$client" install "$work/module.bin" >/dev/null
      fi
      results+=("$(analyse "$work/trace")")
    done
    # The median run by download time.
    median=$(printf '%s\n' "${results[@]}" | sort -n -k4 | sed -n "$(((reps + 1) / 2))p")
    read -r all_n all_ms dl_n dl_ms other_n uploads <<<"$median"
    printf '| %s | %s | %s | %s | %s | %s | %s (%s) |\n' "$model" "$tool" "$dl_n" "$dl_ms" "$all_n" "$all_ms" \
      "$other_n" "$uploads"
  done
done
