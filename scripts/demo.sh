#!/usr/bin/env bash
# The demo: simulated devices in safe mode, healed by healerd.
#
# Builds everything, then starts six simulated devices (healer-sim) on
# ptys: one healthy; two whose application (travel-in-time) needs 2.0.0
# while they run 1.0.0, which no order of 2.0.0 modules can fix directly
# (they go through the 1.2.0 stepping stone); two whose application
# (heartbeat) needs 1.1.0; and one whose application (sensor) needs 2.1.0,
# which the module store does not have yet.  healerd finds them, plans and
# installs the modules one reset at a time, and reports the last device
# blocked until 2.1.0 is dropped into its module directory, when it heals
# that one too.  `healerctl probe` shows the devices before and after.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh

build=_build/demo
if [[ -f $build/build.ninja ]]; then meson setup --reconfigure $build >/dev/null; else meson setup $build >/dev/null; fi
meson compile -C $build >/dev/null
sim=$root/$build/device-firmware/healer-sim
healerd=$root/$build/agent/daemon/healerd
healerctl=$root/$build/agent/cli/healerctl
firmware=$root/$build/device-firmware/modules

work=$(mktemp -d -t healerd-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$work/ports" "$work/modules" "$work/usb-stick"
# The store starts without 2.1.0; it arrives later "on a USB stick".
cp -r "$firmware"/. "$work/modules/"
mv "$work/modules/2.1.0" "$work/usb-stick/"

say "Six simulated devices (healer-sim): flash in a file, serial port on a pty"
start() { # name release app
  # 921600 baud: each device's link is paced like a fast USB-serial line.
  "$sim" --state "$work/devices/$1" --release "$2" --app "$3" --link "$work/ports/$1" --baud 921600 \
    2>"$work/$1.log" &
  pids+=($!)
  printf '  %-16s release %-6s application %s\n' "$1" "$2" "$3"
}
start healthy 2.0.0 travel-in-time
start cabinet-a 1.0.0 travel-in-time
start cabinet-b 1.0.0 travel-in-time
start pump-1 1.0.0 heartbeat
start pump-2 1.0.0 heartbeat
start weather 2.0.0 sensor
for _ in $(seq 100); do [[ $(ls "$work/ports" | wc -l) -eq 6 ]] && break; sleep 0.05; done

say "Before: healerctl probe (a technician's look, straight over the serial lines)"
$healerctl probe "$work"/ports/* | grep -E '^/|Mode:|LED:|user-part|needs .* FAIL' | sed "s|$work/ports/||"

cat >"$work/healerd.conf" <<CONF
[daemon]
state-directory=$work/state
[serial]
ports=$work/ports/*
[store]
module-directories=$work/modules
[healer]
retry-backoff-seconds=2
CONF

say "healerd heals them (its journal lines, as journalctl -u healerd would show them)"
"$healerd" --config "$work/healerd.conf" 2>"$work/healerd.log" &
healerd_pid=$!
pids+=($healerd_pid)
tail --pid=$healerd_pid -n +1 -f "$work/healerd.log" | grep --line-buffered -E 'attached on|in safe mode|starting the heal|installed|succeeded|cannot heal|failed' \
  | sed -u "s|$work/||g" &

wait_for() { # count pattern seconds
  for _ in $(seq $(( $3 * 10 ))); do
    [[ $(grep -c -- "$2" "$work/healerd.log" || true) -ge $1 ]] && return 0
    sleep 0.1
  done
  echo "demo: timed out waiting for '$2'" >&2
  return 1
}
wait_for 4 "heal succeeded" 120
wait_for 1 "cannot heal" 30

say "A technician copies release 2.1.0 into the module directory; healerd sees it and heals the last device"
mv "$work/usb-stick/2.1.0" "$work/modules/"
wait_for 5 "heal succeeded" 120
sleep 0.3
kill -TERM $healerd_pid
wait $healerd_pid 2>/dev/null || true
sleep 0.2

say "After: every device runs its application"
$healerctl probe "$work"/ports/* | grep -E '^/|Mode:|LED:|user-part' | sed "s|$work/ports/||"
say "Done: 5 devices healed, 1 was healthy all along. (D-Bus, fetching over HTTPS and packaging come next.)"
