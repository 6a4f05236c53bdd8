#!/usr/bin/env bash
# Installs everything healerd needs to build and test, from Debian's own
# packages only.  Idempotent: when everything is present it only checks and
# returns (well under a second).  Both README commands call it.
#
#   scripts/setup.sh          build and test dependencies
#
# Needs root or sudo when something is missing.
set -euo pipefail

# Build: compiler, meson, and the libraries the project links.
build_packages=(
  gcc pkg-config meson ninja-build python3
  libglib2.0-dev libglib2.0-bin libjson-c-dev libssl-dev zlib1g-dev
  libcurl4-openssl-dev libusb-1.0-0-dev libmosquitto-dev libsystemd-dev libarchive-dev
  libprotobuf-c-dev protobuf-c-compiler
)
# Tests: valgrind, clang with libFuzzer and the sanitizer runtimes, umockdev
# for USB, nginx and openssl (the upstream tests serve over TLS with a CA the
# test makes), the Debian packaging tools (the suite builds, lints and
# installs the package into a debootstrapped root and boots it with
# systemd-nspawn), lrzsz (YMODEM, the peer
# the link benchmark compares with) and gnuplot (the benchmarks' plots), and
# npm, which fetches the real release binaries the reader is tested on; strace
# (the security tests record every file healerd opens).  A suite missing one of these does not
# pass quietly: it reports the test skipped, naming what is missing, and CI fails on any skip
# (scripts/count-results.py).  Who needs what:
#   dbus-daemon   test-dbus, test-distribution, test-upstream, the security suites, the demo
#                 (a private bus each)
#   systemd       journalctl: test-journal checks healerd's message catalog with it
#   nginx-light, openssl   test-http-fetcher, test-upstream, test-faults' upstream row,
#                 test-security-net (TLS with a CA the test makes)
#   util-linux    setpriv: test-dbus and test-security-callers run healerctl as an unprivileged
#                 user; flock: the package test (essential in Debian, listed to say so)
#   binutils      nm, readelf: firmware-no-heap and lazy-libraries (comes with gcc)
#   gcovr         scripts/coverage.sh (on demand, not in CI)
#   dfu-util      test-usbemu: the independent DFU client the USB emulator (tests/tools/usbemu)
#                 is checked against
#   mosquitto     test-mqtt-client, test-mqtt, test-mqtt-face: a private broker each test
#                 (mosquitto, mosquitto_passwd), TLS with a CA, server and client certificates
#                 openssl makes
#   python3-jsonschema   test-mqtt-payload, test-mqtt: MQTT payloads against their JSON Schemas in
#                 docs/mqtt.md
#   mosquitto-clients    bench/mqtt-events.sh and the MQTT demo: mosquitto_sub watching the topics
# linkemu (test-faults' link rows) is built from tests/tools/linkemu; the fault suite's disk-full
# row needs root and a mount namespace, which no package provides: it skips, and CI fails, elsewhere.
test_packages=(
  valgrind clang libclang-rt-14-dev umockdev libumockdev-dev dbus-daemon libglib2.0-bin
  ca-certificates nginx-light openssl systemd util-linux binutils
  dpkg-dev debhelper fakeroot lintian debootstrap systemd-container
  lrzsz gnuplot-nox strace gcovr dfu-util mosquitto python3-jsonschema
  mosquitto-clients
)

missing=()
for pkg in "${build_packages[@]}" "${test_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
# npm ships in Debian's "npm" package, or inside a nodejs package from
# elsewhere: either will do, so look for the command.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all build and test dependencies are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: this script needs a Debian 12 (or later) system with apt-get; missing: ${missing[*]}" >&2
  exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp -t healerd-setup.XXXXXX)
if ! { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } \
    </dev/null >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "setup: apt-get failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "setup: done"
