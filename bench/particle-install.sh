#!/usr/bin/env bash
# One heal of a real Particle device in dependency safe mode, by healerd, on usbemu's Photon with
# Device OS' modelled times (tests/tools/usbemu, docs/testing.md): the reference's real safe mode
# (bootloader 1.5.0, system part 1 1.5.0, system part 2 2.2.0, Tinker: part 2 needs part 1 and a
# bootloader of 2.2.0), healed with the real 2.2.0 bootloader and system part 1 (256 620 bytes) from
# a store signed with healer-publish, over control requests and over DFU ([particle] install = dfu:
# the bootloader still over control requests, part 1 by DfuSe after a mode switch).  Then the same
# two modules sent by tests/tools/particle-client-probe (START, DATA, FINISH one after another, as
# particle-usb's updateFirmware() does) with healerd's measured polling and with particle-usb's
# fixed CHECK schedule (50, 50, 100, 100, 250, 250, 500, 500, 1000 ms).
#
#   bench/particle-install.sh [BUILD_DIR] [RUNS]
#
# The binaries come from npm through tests/realbin/fetch-reference-binaries.sh into the build's
# cache.  healerd's lines and usbemu's trace lines are stamped as they arrive (bench/tslog.py): the
# heal is "starting the heal" to "heal succeeded"; detection is a hot-plug arrival judged: the
# device back from its first reset (still in safe mode: part 1 is not there yet), usbemu's second
# "event plugged mode=normal" to healerd's second "attached ... safe" (module info read and judged);
# transfers and bytes are the trace's control transfers
# in the heal's window (data stages: bytes out, bytes in).  Medians of RUNS (default 3), a fresh
# device each.  Prints a table; passes or fails nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

build=$(cd "${1:-build}" && pwd)
runs=${2:-3}
usbemu=$build/tests/tools/usbemu/usbemu
probe=$build/tests/tools/particle-client-probe
healerd=$build/agent/daemon/healerd
publish=$build/agent/tools/healer-publish
for p in "$usbemu" "$probe" "$healerd" "$publish"; do
  [[ -x $p ]] || { echo "build first: $p missing" >&2; exit 1; }
done
cache=$build/tests/realbin/cache
bash "$src/tests/realbin/fetch-reference-binaries.sh" "$cache" >/dev/null
x=$cache/extracted
u150=$x/particle-cli-2.3.0/package/assets/updates
u220=$x/particle-cli-3.0.0/package/assets/updates
device_modules=$u150/photon-bootloader@1.5.0+lto.bin,$u150/photon-system-part1@1.5.0.bin,$u220/photon-system-part2@2.2.0.bin,$x/particle-cli-3.51.0/package/assets/knownApps/photon/tinker/tinker-0.4.5-photon.bin
bootloader=$u220/photon-bootloader@2.2.0+lto.bin
part1=$u220/photon-system-part1@2.2.0.bin
module_bytes=$(($(stat -c %s "$bootloader") + $(stat -c %s "$part1")))

bench_workdir work
mkdir -p "$work/store"
cp "$bootloader" "$part1" "$work/store/"
"$publish" catalog --modules "$work/store" --serial 1 \
  --key "$src/device-firmware/keys/development-DO-NOT-USE-IN-PRODUCTION.pem" \
  --releases "$src/data/particle-device-os-releases.json" --output "$work/store/catalog.json" >/dev/null

# heal ROUTE DIR: one heal by healerd; prints "seconds detect_ms transfers bytes_out bytes_in".
heal() {
  local route=$1 dir=$2 t tail_pid usbemu_pid
  mkdir -p "$dir/ports" "$dir/state"
  printf '[daemon]\nstate-directory=%s\n[serial]\nports=%s/ports/*\n[store]\nmodule-directories=%s\ntrusted-keys=%s\n[particle]\ninstall=%s\n' \
    "$dir/state" "$dir" "$work/store" "$src/device-firmware/keys" "$route" >"$dir/healerd.conf"
  : >"$dir/trace"
  mkfifo "$dir/err" "$dir/done"
  exec {done_fd}<>"$dir/done"
  "${bench_rt[@]}" "$bench_python" "$here/tslog.py" --input "$dir/err" --log "$dir/healerd.log" \
    --pattern "heal succeeded" >"$dir/done" &
  bench_pids+=($!)
  tail -n +1 -F "$dir/trace" 2>/dev/null | "${bench_rt[@]}" "$bench_python" "$here/tslog.py" --log "$dir/trace.ts" &
  tail_pid=$!
  bench_pids+=("$tail_pid")
  "$usbemu" --trace "$dir/trace" --particle photon --state "$dir/device" --modules "$device_modules" -- \
    "$healerd" --no-bus --config "$dir/healerd.conf" 2>"$dir/err" &
  usbemu_pid=$!
  bench_pids+=("$usbemu_pid")
  read -r -t 300 t <&"$done_fd" || { echo "$route: no heal in 300 s; healerd's log:" >&2; cat "$dir/healerd.log" >&2; exit 1; }
  exec {done_fd}<&-
  sleep 0.5 # the trace's last lines reach tslog (this is after the measurement)
  bench_stop "$usbemu_pid"
  bench_stop "$tail_pid"
  awk -v route="$route" '
    FNR == 1 { file++ }
    file == 1 && /starting the heal/ && !start { start = $1 }
    file == 1 && /heal succeeded/ && !end { end = $1 }
    file == 1 && /attached on usb:1-1.1: platform 6, safe/ && ++attached == 2 { safe = $1 }
    file == 2 && / event plugged mode=normal/ && ++plugs == 2 { plugged = $1 }
    file == 2 && / ctrl / { t[NR] = $1; line[NR] = $0 }
    END {
      for (i in t) {
        if (t[i] < start || t[i] > end) continue
        transfers++
        if (match(line[i], / result=[0-9]+/)) {
          n = substr(line[i], RSTART + 8, RLENGTH - 8)
          if (line[i] ~ / ctrl out /) out += n; else inb += n
        }
      }
      printf "%.3f %.1f %d %d %d\n", end - start, (safe - plugged) * 1000, transfers, out, inb
    }' "$dir/healerd.log" "$dir/trace.ts"
}

# ota SCHEDULE DIR: the two modules by the probe, one usbemu run each on the same device;
# prints "seconds transfers bytes_out bytes_in" (OTA times summed: START to FINISH's answer).
ota() {
  local schedule=$1 dir=$2 s=0 t=0 o=0 i=0 file out first=1 mods
  for file in "$bootloader" "$part1"; do
    out=$dir/$(basename "$file").out
    mods=()
    ((first)) && mods=(--modules "$device_modules")
    first=0
    "$usbemu" --trace "$dir/trace" --particle photon --state "$dir/device" "${mods[@]}" -- \
      "$probe" --schedule "$schedule" open ota "$file" stats >"$out"
    grep -q '^ota: .* result 0, ' "$out" || { echo "$schedule: the OTA of $file failed:" >&2; cat "$out" >&2; exit 1; }
    s=$(awk -v a="$s" -v b="$(sed -n 's/^ota: .*, \([0-9.]*\) ms$/\1/p' "$out")" 'BEGIN { printf "%.3f", a + b / 1000 }')
    read -r tt oo ii < <(sed -n 's/^stats: transfers \([0-9]*\) polls [0-9]* bytes-out \([0-9]*\) bytes-in \([0-9]*\)$/\1 \2 \3/p' "$out")
    t=$((t + tt)) o=$((o + oo)) i=$((i + ii))
  done
  echo "$s $t $o $i"
}

declare -A secs
ms='' mtr='' mbo='' mbi='' # set by bench_median
printf '| what | polling | module bytes | s | KiB/s | control transfers | bytes out | bytes in | arrival -> safe mode detected, ms |\n'
printf '|---|---|---:|---:|---:|---:|---:|---:|---:|\n'
for what in "heal control" "heal dfu" "ota measured" "ota pusb"; do
  read -r kind arg <<<"$what"
  s=() tr=() bo=() bi=() det=()
  for r in $(seq "$runs"); do
    bench_wait_quiet
    dir="$work/$kind-$arg-$r"
    mkdir -p "$dir"
    if [[ $kind == heal ]]; then
      read -r a b c d e < <(heal "$arg" "$dir")
      s+=("$a") det+=("$b") tr+=("$c") bo+=("$d") bi+=("$e")
    else
      read -r a c d e < <(ota "$arg" "$dir")
      s+=("$a") tr+=("$c") bo+=("$d") bi+=("$e")
    fi
  done
  bench_median ms "${s[@]}"
  bench_median mtr "${tr[@]}"
  bench_median mbo "${bo[@]}"
  bench_median mbi "${bi[@]}"
  mdet=-
  [[ ${#det[@]} -gt 0 ]] && bench_median mdet "${det[@]}"
  secs[$what]=$ms
  case $what in
  "heal control") label="healerd heal, control requests" polling=measured ;;
  "heal dfu") label="healerd heal, DFU (bootloader: control requests)" polling=measured ;;
  "ota measured") label="probe OTA, control requests" polling=measured ;;
  "ota pusb") label="probe OTA, control requests" polling="particle-usb's schedule" ;;
  esac
  printf '| %s | %s | %s | %s | %.1f | %s | %s | %s | %s |\n' "$label" "$polling" "$module_bytes" "$ms" \
    "$(awk -v b="$module_bytes" -v s="$ms" 'BEGIN { print b / 1024 / s }')" "$mtr" "$mbo" "$mbi" "$mdet"
done
printf '\nthroughput over control requests, measured polling against particle-usb'"'"'s schedule: %.1fx\n' \
  "$(awk -v a="${secs[ota pusb]}" -v b="${secs[ota measured]}" 'BEGIN { print a / b }')"
