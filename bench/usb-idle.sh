#!/usr/bin/env bash
# USB idle: healerd's wakeups, CPU and memory with USB devices attached and
# idle (issue 16: no thread of healerd's own, no polling, 0 wakeups a second),
# counted as heal-resources.sh counts them: voluntary+involuntary context
# switches of all of healerd's threads over the window (no tracer attached),
# and where each thread sleeps at its end (/proc/PID/task/*/syscall: poll's
# timeout, -1 = no timer armed).
#
#   bench/usb-idle.sh BUILD_DIR [OUT_DIR]
#   environment: DEVICES=16 IDLE_S=30
#
# The USB devices are usbemu's (tests/tools/usbemu, on umockdev): DEVICES
# Photons in their DFU bootloader (2b04:d006, on the ports of a hub), each
# with its own state directory, answering as the device does.  healerd has no
# serial ports, no modules and no D-Bus face here.  Cases:
#   usb-off   [usb] enable=false: healerd without libusb (the baseline)
#   dfu-held  [usb] enable=true: every Photon served by the DFU family, read
#             (its serial, layouts and module headers) and judged ("nothing
#             to heal"), then held: its usbfs node open and its interface
#             claimed, its node's descriptor in the main loop's poll set
# usbemu's node polls writable only while a URB waits to be reaped (as the
# kernel's usbdev_poll), so an idle held device is measured as on hardware.
# Writes OUT_DIR/usb-idle.tsv and prints the table.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
out=${2:-$build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
devices=${DEVICES:-16}
idle_s=${IDLE_S:-30}
healerd=$build/agent/daemon/healerd
usbemu=$build/tests/tools/usbemu/usbemu
[[ -x $usbemu ]] || { echo "$usbemu is missing (a build with umockdev: scripts/setup.sh installs it)" >&2; exit 1; }

bench_workdir work
tsv=$out/usb-idle.tsv
printf 'case\tusb_devices\theld_open\twindow_s\tvmrss_kib\trssfile_kib\tcpu_s\tswitches\tswitches_per_s\tthreads\tblocked_in\n' >"$tsv"

# usbemu's device arguments: the same Photons (state directories) in every case.
device_args=()
for i in $(seq "$devices"); do
  device_args+=(--dfu particle-photon --state "$work/photon-$i")
done

# The child usbemu started: healerd under umockdev's preload library.
child_of() {
  local c=""
  for _ in $(seq 200); do
    read -r c _ <"/proc/$1/task/$1/children" 2>/dev/null || true
    [[ -n $c ]] && { printf '%s' "$c"; return 0; }
    sleep 0.05
  done
  return 1
}

# run_case CASE ENABLE
run_case() {
  local name=$1 enable=$2 held fd seen upid hpid c0 c1 w0 w1 sw rss file t0 t1 secs threads="" blocked="" t comm sc k v n
  mkdir -p "$work/$name/state"
  printf '[daemon]\nstate-directory=%s\n[serial]\nports=\n[usb]\nenable=%s\n[store]\nmodule-directories=\n' \
    "$work/$name/state" "$enable" >"$work/$name/healerd.conf"
  "$usbemu" "${device_args[@]}" -- "$healerd" --no-bus --verbose --config "$work/$name/healerd.conf" \
    2>"$work/$name/healerd.log" &
  upid=$!
  bench_pids+=("$upid")
  hpid=$(child_of "$upid") || { echo "$name: healerd did not start" >&2; return 1; }
  # Ready once it serves and, with USB on, has judged every device (each read through).
  for _ in $(seq 3600); do
    if grep -q 'serving' "$work/$name/healerd.log"; then
      [[ $enable == false ]] && break
      (($(grep -c 'nothing to heal' "$work/$name/healerd.log") >= devices)) && break
    fi
    sleep 0.05
  done
  grep -q 'serving' "$work/$name/healerd.log" || { echo "$name: healerd not ready; $work/$name/healerd.log" >&2; return 1; }
  if [[ $enable == true ]] && (($(grep -c 'nothing to heal' "$work/$name/healerd.log") < devices)); then
    echo "$name: $(grep -c 'nothing to heal' "$work/$name/healerd.log") of $devices devices judged in 180 s:" >&2
    tail -n 5 "$work/$name/healerd.log" >&2
    return 1
  fi
  sleep 1
  bench_cpu_ticks c0 "$hpid"
  bench_switches w0 "$hpid"
  t0=$EPOCHREALTIME
  sleep "$idle_s"
  t1=$EPOCHREALTIME
  bench_cpu_ticks c1 "$hpid"
  bench_switches w1 "$hpid"
  bench_switches_delta sw "$w0" "$w1"
  bench_status_kib "$hpid" VmRSS rss
  bench_status_kib "$hpid" RssFile file
  for t in /proc/"$hpid"/task/*; do
    read -r comm <"$t/comm"
    n=0
    while read -r k v; do
      case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) n=$((n + v)) ;; esac
    done <"$t/status"
    threads+="${threads:+,}$comm:$n"
    read -r -a sc <"$t/syscall" 2>/dev/null || sc=(?)
    case ${sc[0]} in
    7)
      local to=$((${sc[3]} & 0xffffffff))
      ((to < 0x80000000)) || to=$((to - 0x100000000))
      blocked+="${blocked:+,}$comm:poll(timeout=$to)"
      ;;
    *) blocked+="${blocked:+,}$comm:syscall${sc[0]}" ;;
    esac
  done
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  seen=$(grep -c 'served by the dfu family' "$work/$name/healerd.log" || true)
  # usbfs nodes healerd holds open at the window's end (umockdev's testbed has them under dev/bus/usb).
  held=0
  for fd in /proc/"$hpid"/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == */dev/bus/usb/* ]] && held=$((held + 1))
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seen" "$held" "$secs" "$rss" "$file" \
    "$(awk -v a="$c0" -v b="$c1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" "$sw" \
    "$(awk -v n="$sw" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')" "$threads" "$blocked" >>"$tsv"
  bench_stop "$upid"
  echo "  $name: done ($secs s)" >&2
}

bench_wait_quiet
run_case usb-off false
run_case dfu-held true

printf '\n%s; %s Photons in DFU mode (usbemu), %s s idle windows\n\n' "$(bench_machine)" "$devices" "$idle_s"
printf '| case | devices served | held open | VmRSS MiB | RssFile MiB | CPU s | wakeups | wakeups/s | threads (switches) | where each thread sleeps |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n'
tail -n +2 "$tsv" | while IFS=$'\t' read -r name seen held secs rss file cpu sw rate threads blocked; do
  printf '| %s | %s | %s | %.1f | %.1f | %s | %s in %s s | **%s** | %s | %s |\n' "$name" "$seen" "$held" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$file" 'BEGIN { print k / 1024 }')" "$cpu" \
    "$sw" "$secs" "$rate" "$threads" "$blocked"
done
