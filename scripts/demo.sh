#!/usr/bin/env bash
# The demo: simulated devices in safe mode, seen and healed through healerctl.
#
# Builds everything, then starts six simulated devices (healer-sim) on
# ptys: one healthy; two whose application (travel-in-time) needs 2.0.0
# while they run 1.0.0, which no order of 2.0.0 modules can fix directly
# (they go through the 1.2.0 stepping stone); two whose application
# (heartbeat) needs 1.1.0; and one whose application (sensor) needs 2.1.0,
# which the module store does not have yet.  healerd serves them on a
# private session bus (healerd --session), with auto-heal off so a
# technician decides: `healerctl devices` shows them before, `healerctl heal
# --all` heals them with live progress (the sensor device is blocked and
# says why), `healerctl import` brings 2.1.0 from a "USB stick" (a signed
# bundle that `healerctl export` wrote from a depot gateway's store: the
# catalog's signature and every module's hash are checked before anything
# enters the store) and `healerctl heal` heals the last one; `healerctl
# devices` shows them after.
#
# HEALER_DEMO_BUILD=DIR runs it from an existing build directory instead of
# building _build/demo (the 'demo' test does).  It exits non-zero, naming the
# device, unless all six end healthy by healerctl's account and by their own:
# each device's log shows its last boot starting its application, and each,
# asked directly on its port once healerd has stopped (healerctl probe), is in
# normal mode with every module passing its checks.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh

if [[ -n ${HEALER_DEMO_BUILD:-} ]]; then
  build=$(cd "$HEALER_DEMO_BUILD" && pwd)
else
  build=$root/_build/demo
  if [[ -f $build/build.ninja ]]; then meson setup --reconfigure "$build" >/dev/null; else meson setup "$build" >/dev/null; fi
  meson compile -C "$build" >/dev/null
fi
sim=$build/device-firmware/healer-sim
healerd=$build/agent/daemon/healerd
healerctl=$build/agent/cli/healerctl
firmware=$build/device-firmware/modules
# healerd and healerctl load libcurl and libarchive through modules (docs/architecture.md, "Loaded
# on first use"): this build's, not an installed healerd's.
export HEALER_MODULE_DIR=$build/agent/modules

# A short path: the port names healerctl prints are read in full.
work=$(mktemp -d "${TMPDIR:-/tmp}/hd.XXXX")
pids=()
healerd_pid=
bus_pid=
cleanup() {
  # healerd first (it lets go of the ports and the bus name), then the bus, then the devices.
  [[ -n $healerd_pid ]] && kill -TERM "$healerd_pid" 2>/dev/null || true
  [[ -n $healerd_pid ]] && wait "$healerd_pid" 2>/dev/null || true
  [[ -n $bus_pid ]] && kill -TERM "$bus_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "healerctl $*"; "$healerctl" "$@"; }

mkdir -p "$work/ports" "$work/modules" "$work/usb-stick" "$work/depot"
# The store starts without 2.1.0; it arrives later "on a USB stick".
cp -r "$firmware"/. "$work/modules/"
rm -r "$work/modules/2.1.0"

say "A depot gateway holds every release; healerctl export writes release 2.1.0 to a USB stick"
cat >"$work/depot/healerd.conf" <<CONF
[daemon]
state-directory=$work/depot/state
[serial]
ports=
[store]
module-directories=$firmware
# The firmware build signs its catalog with the development key: trusted here, in a demo only.
trusted-keys=$root/device-firmware/keys
CONF
"$healerd" --no-bus --config "$work/depot/healerd.conf" 2>"$work/depot/healerd.log" &
depot_pid=$!
for _ in $(seq 200); do grep -q 'new module(s)' "$work/depot/healerd.log" && break; sleep 0.05; done
kill -TERM $depot_pid && wait $depot_pid
run export --state-dir "$work/depot/state" --release 2.1.0 "$work/usb-stick/release-2.1.0.tar"

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

# A private session bus: the demo needs no system bus policy installed, and leaves nothing behind.
dbus-daemon --session --nofork --print-address=3 3>"$work/bus-address" 2>"$work/dbus.log" &
bus_pid=$!
for _ in $(seq 100); do [[ -s $work/bus-address ]] && break; sleep 0.05; done
export DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$work/bus-address")
export HEALERCTL_BUS=session

cat >"$work/healerd.conf" <<CONF
[daemon]
state-directory=$work/state
[serial]
ports=$work/ports/*
[store]
module-directories=$work/modules
# The firmware build signs its catalog with the development key: trusted here, in a demo only.
trusted-keys=$root/device-firmware/keys
[healer]
retry-backoff-seconds=2
# A technician decides when to heal (the default, true, heals at once).
auto-heal=false
CONF

"$healerd" --session --config "$work/healerd.conf" 2>"$work/healerd.log" &
healerd_pid=$!
# Until healerd serves the bus and has judged every device.
for _ in $(seq 200); do
  if "$healerctl" devices --json 2>/dev/null >"$work/devices.json" &&
    [[ $(grep -c '"state":"\(healthy\|safe-mode\|blocked\)"' "$work/devices.json") -eq 6 ]]; then
    break
  fi
  sleep 0.05
done

say "Before: healerd sees five devices in safe mode (healerctl over D-Bus; the port name is an id too)"
run devices
echo
run device cabinet-a | grep -E '^(Device|Mode|LED|State):|user-part|FAIL|healerctl device'
echo
run plan cabinet-a
echo
run plan weather || true

say "During: healerctl heal --all (the sensor device is blocked: 2.1.0 is not in the store)"
rc=0
run heal --all || rc=$?
echo "(exit status $rc: 1 means some device failed)"

say "A technician imports release 2.1.0 from a USB stick, and heals the last device"
run import "$work/usb-stick/release-2.1.0.tar"
run heal weather

say "After: every device runs its application"
run devices
echo
run status
"$healerctl" devices --json >"$work/devices.json"
healthy=$(grep -o '"state":"healthy"' "$work/devices.json" | wc -l)
if [[ $healthy -ne 6 ]]; then
  echo "demo: $healthy of 6 devices are healthy at the end; healerd's log follows" >&2
  tail -n 40 "$work/healerd.log" >&2
  exit 1
fi

say "The devices themselves: each one's own log, and each asked over its port once healerd lets go"
# healerctl's word is healerd's view.  The devices are asked too, so a healerd that only believed
# a device healed cannot pass: its own log (healer-sim's stderr) must show its last boot starting
# the application (the bootloader starts it only when every system part and the application pass
# every check, dependencies included), with no safe mode, failed commit or panic after; and the
# device must answer on its port, with healerd stopped (a port has one reader), in normal mode
# with every module it describes passing every check its own firmware ran.
kill -TERM "$healerd_pid" && wait "$healerd_pid" || true
healerd_pid=
unhealed=()
check_device() { # name app
  local log=$work/$1.log boot why
  # The last boot: the lines after the last reset (the whole log if the device never reset).
  # A device answers healerd before its log line about the application may be written (a loaded
  # machine can hold the simulator between the two): wait for it, up to 30 s, before judging.
  for _ in $(seq 300); do
    boot=$(awk '/^healer-sim: reset /{n=NR} {line[NR]=$0} END{for (i=n+1; i<=NR; i++) print line[i]}' "$log")
    grep -q '^healer-sim: starting application ' <<<"$boot" && break
    sleep 0.1
  done
  if ! grep -qxF "healer-sim: starting application $2" <<<"$boot"; then
    why="its own log: the last boot did not start $2"
  elif grep -qE '^healer-sim: (PANIC|safe mode|bootloader: the staged module failed)' <<<"$boot"; then
    why="its own log: $(grep -E '^healer-sim: (PANIC|safe mode|bootloader: the staged)' <<<"$boot" | tail -n 1)"
  elif ! "$healerctl" probe --json --timeout 10 "$work/ports/$1" >"$work/$1.probe.json" 2>"$work/$1.probe.err"; then
    why="probe: $(tail -n 1 "$work/$1.probe.err")"
  else
    why=$(python3 - "$work/$1.probe.json" <<'PY'
import json, sys
(device,) = json.load(open(sys.argv[1]))
bad = [f"{m.get('f', '?')}{m.get('n', '')} v{m.get('v', '?')}: passed {m['vv']:#x} of checks {m['vc']:#x}"
       for m in device["modules"]["m"] if m["vc"] == 0 or m["vv"] != m["vc"]]
if device["mode"] != "normal":
    print(f"it answers in mode {device['mode']} ({device['safe_mode_reason']})")
elif bad:
    print("modules failing their checks: " + "; ".join(bad))
PY
    )
  fi
  if [[ -n $why ]]; then
    printf '  %-16s NOT HEALED: %s\n' "$1" "$why"
    unhealed+=("$1")
  else
    printf '  %-16s runs %s, every module valid (its own log; asked on its port)\n' "$1" "$2"
  fi
}
check_device healthy travel-in-time
check_device cabinet-a travel-in-time
check_device cabinet-b travel-in-time
check_device pump-1 heartbeat
check_device pump-2 heartbeat
check_device weather sensor
if [[ ${#unhealed[@]} -ne 0 ]]; then
  for name in "${unhealed[@]}"; do
    echo "demo: device $name is not healed by its own account (healerctl counted $healthy of 6 healthy); its log:" >&2
    tail -n 15 "$work/$name.log" >&2
  done
  exit 1
fi
say "Done: 5 devices healed, 1 was healthy all along (6 of 6 healthy by healerctl and by the devices themselves). MQTT telemetry and USB devices come next."
