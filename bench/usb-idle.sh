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
# The USB devices are emulated with umockdev (umockdev-run: sysfs attributes,
# descriptors and a /dev/bus/usb node each, uevents for libusb's hotplug): a
# root hub, a hub, and DEVICES devices on its ports, in turn a Particle device
# in DFU mode (2b04:d006), one in normal mode with cdc_acm on its serial
# interfaces (2b04:c006) and a serial adapter (0403:6001).  healerd has no
# serial ports and no D-Bus face here.  Cases:
#   usb-off   [usb] enable=false: healerd without libusb (the baseline)
#   usb-on    [usb] enable=true: every device enumerated through libusb, its
#             hotplug registered, the libusb context on the main loop
# No family in this build serves these devices yet (the DFU family comes
# next): healerd lists and matches them and opens none.  A family that holds a
# device open adds its usbfs node to the poll set; a real node polls ready
# only when a transfer completed (the kernel's usbdev_poll), an emulated one
# always, so this bench measures devices nobody holds open.
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
command -v umockdev-run >/dev/null || { echo "umockdev-run is missing (scripts/setup.sh installs umockdev)" >&2; exit 1; }

bench_workdir work
tsv=$out/usb-idle.tsv
printf 'case\tusb_devices\twindow_s\tvmrss_kib\trssfile_kib\tcpu_s\tswitches\tswitches_per_s\tthreads\tblocked_in\n' >"$tsv"

# The emulated tree, in umockdev's record format: parents first, each device's interfaces with it.
"$bench_python" - "$devices" >"$work/devices.umockdev" <<'EOF'
import sys
n = int(sys.argv[1])
root = "/devices/pci0000:00/0000:00:14.0/usb1"
kinds = [  # vendor, product, device class, interfaces (class, subclass, protocol, driver)
    (0x2b04, 0xd006, 0x00, [(0xfe, 0x01, 0x02, None)]),
    (0x2b04, 0xc006, 0xef, [(0x02, 0x02, 0x01, "cdc_acm"), (0x0a, 0x00, 0x00, "cdc_acm"), (0xff, 0xff, 0xff, None)]),
    (0x0403, 0x6001, 0x00, [(0xff, 0xff, 0xff, "ftdi_sio")]),
]

def device(path, devnum, vendor, product, dclass, interfaces):
    name = path.rsplit("/", 1)[1]
    d = bytes([18, 1, 0x00, 0x02, dclass, 0, 0, 64, vendor & 0xff, vendor >> 8, product & 0xff, product >> 8,
               0x51, 0x02, 0, 0, 0, 1])
    total = 9 + 9 * len(interfaces)
    d += bytes([9, 2, total & 0xff, total >> 8, len(interfaces), 1, 0, 0x80, 50])
    for i, (c, s, p, _) in enumerate(interfaces):
        d += bytes([9, 4, i, 0, 0, c, s, p, 0])
    print(f"P: {path}\nN: bus/usb/001/{devnum:03d}\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\n"
          f"E: DEVNAME=/dev/bus/usb/001/{devnum:03d}\nE: BUSNUM=001\nE: DEVNUM={devnum:03d}\n"
          f"A: busnum=1\\n\nA: devnum={devnum}\\n\nA: idVendor={vendor:04x}\\n\nA: idProduct={product:04x}\\n\n"
          f"A: speed=480\\n\nA: bConfigurationValue=1\\n\nA: bNumConfigurations=1\\n\nA: dev=189:{devnum - 1}\\n\n"
          f"H: descriptors={d.hex().upper()}\n")
    for i, (c, s, p, driver) in enumerate(interfaces):
        link = f"L: driver=../../../../../../../bus/usb/drivers/{driver}\n" if driver else ""
        print(f"P: {path}/{name}:1.{i}\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\nE: INTERFACE={c}/{s}/{p}\n"
              f"A: bInterfaceNumber={i:02x}\\n\nA: bInterfaceClass={c:02x}\\n\n{link}")

device(root, 1, 0x1d6b, 0x0002, 0x09, [(0x09, 0, 0, "hub")])
device(root + "/1-1", 2, 0x05e3, 0x0608, 0x09, [(0x09, 0, 0, "hub")])
for i in range(n):
    vendor, product, dclass, interfaces = kinds[i % len(kinds)]
    device(f"{root}/1-1/1-1.{i + 1}", 3 + i, vendor, product, dclass, interfaces)
EOF

# The child umockdev-run started: healerd under umockdev's preload library.
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
  local name=$1 enable=$2 upid hpid c0 c1 w0 w1 sw rss file t0 t1 secs threads="" blocked="" t comm sc k v n
  mkdir -p "$work/$name/state"
  printf '[daemon]\nstate-directory=%s\n[serial]\nports=\n[usb]\nenable=%s\n[store]\nmodule-directories=\n' \
    "$work/$name/state" "$enable" >"$work/$name/healerd.conf"
  umockdev-run -d "$work/devices.umockdev" -- "$healerd" --no-bus --verbose --config "$work/$name/healerd.conf" \
    2>"$work/$name/healerd.log" &
  upid=$!
  bench_pids+=("$upid")
  hpid=$(child_of "$upid") || { echo "$name: healerd did not start" >&2; return 1; }
  # Ready once it says it serves (the devices there at start are enumerated before that).
  for _ in $(seq 600); do
    grep -q 'serving' "$work/$name/healerd.log" && break
    sleep 0.05
  done
  grep -q 'serving' "$work/$name/healerd.log" || { echo "$name: healerd not ready; $work/$name/healerd.log" >&2; return 1; }
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
  local seen
  seen=$(grep -c 'ignored: no family serves it' "$work/$name/healerd.log" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seen" "$secs" "$rss" "$file" \
    "$(awk -v a="$c0" -v b="$c1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" "$sw" \
    "$(awk -v n="$sw" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')" "$threads" "$blocked" >>"$tsv"
  bench_stop "$upid"
  echo "  $name: done ($secs s)" >&2
}

bench_wait_quiet
run_case usb-off false
run_case usb-on true

printf '\n%s; %s emulated USB devices (+ root hub and hub), %s s idle windows\n\n' "$(bench_machine)" "$devices" "$idle_s"
printf '| case | USB devices seen | VmRSS MiB | RssFile MiB | CPU s | wakeups | wakeups/s | threads (switches) | where each thread sleeps |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---|---|\n'
tail -n +2 "$tsv" | while IFS=$'\t' read -r name seen secs rss file cpu sw rate threads blocked; do
  printf '| %s | %s | %.1f | %.1f | %s | %s in %s s | **%s** | %s | %s |\n' "$name" "$seen" \
    "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$file" 'BEGIN { print k / 1024 }')" "$cpu" \
    "$sw" "$secs" "$rate" "$threads" "$blocked"
done
