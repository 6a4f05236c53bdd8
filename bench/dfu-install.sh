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
# model, the median run by download time: transfers before the download (finding the device; the
# family reads the module headers at attach), transfers and ms of the download, and after it.
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

# analyse TRACE: "before_n dl_n dl_ms after_n after_ms uploads": the transfers before the first ERASE (the
# tool finding and reading the device), the download (first ERASE to the last data block's last GETSTATUS),
# and after it (the family's verify by UPLOAD and its headers read again; dfu-util's ABORT), with the UPLOADs.
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
# The last block's status polls, up to the one saying it is done (what follows is the next phase).
while end + 1 < len(lines) and req[end + 1] == 'bRequest=GETSTATUS' and 'state=dfuDNLOAD-IDLE' not in text[end]:
    end += 1
uploads = sum(1 for i in range(end + 1, len(lines)) if req[i] == 'bRequest=UPLOAD')
after_ms = (t[-1] - t[end]) * 1000 if end + 1 < len(lines) else 0.0
print(first_erase, end - first_erase + 1, round((t[end] - t[first_erase]) * 1000, 1),
      len(lines) - end - 1, round(after_ms, 1), uploads)
EOF
}

printf '%s KiB module, %s runs each (medians)\n\n' "$size_kib" "$reps"
printf '| model | tool | before: transfers | download: transfers | download: ms | after: transfers (UPLOADs) | after: ms |\n'
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
    median=$(printf '%s\n' "${results[@]}" | sort -n -k3 | sed -n "$(((reps + 1) / 2))p")
    read -r before_n dl_n dl_ms after_n after_ms uploads <<<"$median"
    printf '| %s | %s | %s | %s | %s | %s (%s) | %s |\n' "$model" "$tool" "$before_n" "$dl_n" "$dl_ms" "$after_n" \
      "$uploads" "$after_ms"
  done
done
