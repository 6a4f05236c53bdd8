#!/usr/bin/env bash
# The Debian package, end to end (docs/packaging.md):
#
#   test-package.sh SOURCE_DIR [OUTPUT_DIR]
#
#  1. builds healerd and healerd-tools with packaging/build-deb.sh (the .debs,
#     .changes and build log stay in OUTPUT_DIR, default a temporary one);
#  2. lintian: no error and no warning (info tags are printed);
#  3. unpacks a fresh Debian 12 root (debootstrap --variant=minbase bookworm
#     from deb.debian.org, cached as a tarball in $HEALERD_CI_CACHE, default
#     /var/cache/healerd-ci, remade when 30 days old), mounts /proc, a private
#     devpts, /run and /tmp into it, and installs the packages' dependencies
#     with apt (downloads cached beside the tarball);
#  4. lists the root's files, installs the packages (apt-get install ./*.deb)
#     and checks what they installed: user healerd in dialout and plugdev,
#     /var/lib/healerd, the conffile, the firmware catalog verifying with the
#     installed one-time key (and not with the development key); rates the
#     installed unit with systemd-analyze security;
#  5. the smoke test, from installed files only: the root's own system bus
#     (dbus-daemon with the installed policy), one simulated device in safe
#     mode (healer-sim), and healerd started with the unit's ExecStart line as
#     user healerd with its groups, no capabilities and no new privileges,
#     with NOTIFY_SOCKET and WATCHDOG_USEC as systemd sets them: READY=1,
#     STATUS= and WATCHDOG=1 arrive, `healerctl status` answers (as root and
#     as nobody), the device is healed from the embedded store, SIGTERM stops
#     healerd with status 0;
#  6. upgrades the package over itself with an edited
#     /etc/healerd/healerd.conf, which stays as edited;
#  7. purges both packages and compares the root's file list with the one
#     before the install (apt and dpkg bookkeeping aside): nothing is left;
#  8. where systemd-nspawn is installed (Debian package systemd-container):
#     installs systemd and the packages again and boots the root with
#     systemd-nspawn, so the unit runs as written (its sandbox, Type=notify,
#     the watchdog): healerd.service heals a simulated device (a unit too)
#     under seccomp with no capabilities, journalctl -x explains its records,
#     D-Bus activation starts it, udev reads the rules without a complaint; under
#     its sandbox healerd maps neither libcurl nor libarchive until a tar bundle
#     import loads healer-archive.so and an [upstream] url healerd-http.so.
#
# Everything started is stopped and everything mounted is unmounted on the
# way out, failed or not; the work directory is removed (kept, unmounted,
# with HEALERD_KEEP_ROOT=1).  Needs root; exit 77 (skip) without it.
set -euo pipefail

src=$(cd "${1:?usage: test-package.sh SOURCE_DIR [OUTPUT_DIR]}" && pwd)
out=${2:-}

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, chroot, mounts)"
for tool in debootstrap dpkg-buildpackage lintian systemd-analyze python3 flock chroot; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is missing (scripts/setup.sh installs it)"
done

cache=${HEALERD_CI_CACHE:-/var/cache/healerd-ci}
mirror=${HEALERD_CI_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# systemd-analyze security's exposure (0 best .. 10): above this the test fails.
max_exposure=${HEALERD_MAX_EXPOSURE:-2.0}

started=$(date +%s)
last=$started
timings=()
step() {
  local now
  now=$(date +%s)
  [[ ${#timings[@]} -eq 0 && -z ${current:-} ]] || timings+=("$(printf '%4ds  %s' $((now - last)) "$current")")
  last=$now
  current=$*
  echo "=== [$((now - started))s] $*"
}
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/healerd-package.XXXXXX")
root=$work/root
pids=()

# Processes whose root directory is inside the work directory (the chroot's).
root_pids() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [[ $r == "$work"/* ]] && echo "${p#/proc/}"
  done
  return 0
}
mounts_under() { awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r; }
cleanup() {
  local status=$? pid m i
  set +e
  if [[ $status -ne 0 ]]; then
    show_logs >&2
    echo "=== FAILED (exit $status) during: ${current:-start}" >&2
  fi
  # What the test started (newest first; the container shuts down on
  # SIGTERM), then whatever else runs inside the root; SIGKILL after 20s.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null; done
  for pid in $(root_pids); do kill -TERM "$pid" 2>/dev/null; done
  alive() {
    local p
    for p in "${pids[@]}" $(root_pids); do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
  }
  for _ in $(seq 200); do alive || break; sleep 0.1; done
  for pid in "${pids[@]}" $(root_pids); do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m"; done
  if [[ -n $(mounts_under) ]]; then
    echo "test-package.sh: still mounted, $work left in place:" >&2
    mounts_under >&2
  elif [[ -n ${HEALERD_KEEP_ROOT:-} ]]; then
    echo "test-package.sh: HEALERD_KEEP_ROOT: $work left in place" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A command inside the root, with a clean environment ("${inroot[@]}" CMD &
# for one in the background: its pid is then the command's own).
inroot=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
  DEBIAN_FRONTEND=noninteractive chroot "$root")
inroot() { "${inroot[@]}" "$@"; }
# The root's files, apt and dpkg bookkeeping and the mounted directories aside.
file_list() {
  (cd "$root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./run -o -path ./tmp \
    -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache/apt -o -path ./var/log/apt \
    -o -path ./var/log/dpkg.log -o -path ./var/cache/debconf -o -path ./var/cache/ldconfig \
    -o -path ./etc/ld.so.cache \) -prune -o -print) | LC_ALL=C sort
}
# wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + seconds))
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "$what: not within ${seconds}s"
    sleep 0.2
  done
}
# wait_for_quietly SECONDS COMMAND...: until COMMAND succeeds; false when it does not.
wait_for_quietly() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
}
show_logs() {
  local f
  for f in "$work"/*.log "$work/notify.txt"; do
    [[ -f $f ]] || continue
    echo "--- $(basename "$f")"
    tail -n 40 "$f"
  done
}

# ---- 1. build ----
step "build the packages (packaging/build-deb.sh)"
debs=${out:-$work/debs}
"$src/packaging/build-deb.sh" --source "$src" --output "$debs"
version=$(sed -n "s/^  version: '\([^']*\)',\$/\1/p" "$src/meson.build" | head -n 1)
arch=$(dpkg --print-architecture)
deb=$debs/healerd_${version}_$arch.deb
tools_deb=$debs/healerd-tools_${version}_$arch.deb
changes=$debs/healerd_${version}_$arch.changes
for f in "$deb" "$tools_deb" "$changes"; do [[ -f $f ]] || fail "$f was not built"; done
if dpkg-deb -c "$deb" | grep -qiE 'private|signing.*\.pem|DO-NOT-USE'; then
  fail "the package holds a private or development key"
fi
ok "built $(basename "$deb") and $(basename "$tools_deb")"

# ---- 2. lintian ----
step "lintian"
lintian_status=0
lintian --pedantic --display-info --fail-on error,warning "$changes" >"$work/lintian.txt" 2>&1 ||
  lintian_status=$?
grep -v '^running with root privileges is not recommended!$' "$work/lintian.txt" || true
[[ $lintian_status -eq 0 ]] || fail "lintian reports errors or warnings (above)"
ok "lintian: no errors, no warnings"

# ---- 3. a fresh Debian 12 root ----
step "Debian 12 root (cached debootstrap --variant=minbase $suite)"
mkdir -p "$cache/apt/archives/partial" "$cache/apt/lists/partial"
# One test at a time uses the cache (and its apt directories).
exec 9>"$cache/lock"
flock 9
tarball=$cache/$suite-minbase.tar
if [[ ! -s $tarball || -n $(find "$tarball" -mtime +30) ]]; then
  echo "making $tarball (debootstrap from $mirror)"
  if ! debootstrap --variant=minbase "$suite" "$work/debootstrap" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    fail "debootstrap"
  fi
  rm -f "$work"/debootstrap/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$work/debootstrap" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$work/debootstrap"
fi
mkdir "$root"
tar --numeric-owner -C "$root" -xpf "$tarball"
dialout_gid=$(awk -F: '$1 == "dialout" { print $3 }' "$root/etc/group")
mount -t proc proc "$root/proc"
# Ptys of our own, owned by group dialout like real serial ports.
mount -t devpts -o newinstance,gid="$dialout_gid",mode=0660,ptmxmode=0666 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
mount --bind "$cache/apt/archives" "$root/var/cache/apt/archives"
mount --bind "$cache/apt/lists" "$root/var/lib/apt/lists"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
apt_options=(-q -y -o APT::Sandbox::User=root -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0)

step "the packages' dependencies (apt-get satisfy)"
inroot apt-get "${apt_options[@]}" update >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; fail "apt-get update"; }
deps=()
for field in "$deb Depends" "$deb Recommends" "$tools_deb Depends"; do
  read -r f name <<<"$field"
  IFS=',' read -r -a list <<<"$(dpkg-deb -f "$f" "$name")"
  for d in "${list[@]}"; do
    d=$(echo "$d" | sed 's/^ *//; s/ *$//')
    [[ -n $d && $d != healerd\ * && $d != healerd ]] && deps+=("$d")
  done
done
echo "dependencies: ${deps[*]}"
inroot apt-get "${apt_options[@]}" --no-install-recommends satisfy "$(IFS=','; echo "${deps[*]}")" \
  >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log"; fail "apt-get satisfy"; }
file_list >"$work/files-before"
# The accounts as they were, for systemd-sysusers below.
mkdir -p "$work/sysusers/etc"
for f in passwd group shadow gshadow; do [[ ! -f $root/etc/$f ]] || cp -p "$root/etc/$f" "$work/sysusers/etc/"; done
inroot dpkg-query -W -f '${Package}\n' | LC_ALL=C sort >"$work/packages-before"

# ---- 4. install ----
step "install (apt-get install ./healerd_*.deb ./healerd-tools_*.deb)"
cp "$deb" "$tools_deb" "$root/tmp/"
inroot apt-get "${apt_options[@]}" --no-install-recommends install \
  "/tmp/$(basename "$deb")" "/tmp/$(basename "$tools_deb")" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install"; }
inroot dpkg-query -W -f '${Package}\n' | LC_ALL=C sort >"$work/packages-after"
new=$(comm -13 "$work/packages-before" "$work/packages-after" | tr '\n' ' ')
[[ $new == "healerd healerd-tools " ]] || fail "the install added more than healerd and healerd-tools: $new"
ok "installed: $new"

file_list >"$work/files-installed"
added=$(comm -13 "$work/files-before" "$work/files-installed")
for p in ./usr/sbin/healerd ./var/lib/healerd ./etc/systemd/system/multi-user.target.wants/healerd.service; do
  grep -qx "$p" <<<"$added" || fail "$p did not appear with the install"
done
ok "the install added $(wc -l <<<"$added") paths (among them /var/lib/healerd and the unit's enablement link)"

# This root has no systemd, so postinst made the accounts with adduser; the
# sysusers.d file (what postinst uses where systemd is) must make the same.
systemd-sysusers --root="$work/sysusers" "$root/usr/lib/sysusers.d/healerd.conf" ||
  fail "systemd-sysusers refuses the sysusers.d file"
for entry in "passwd healerd 6 /var/lib/healerd" "passwd healerd 7 /usr/sbin/nologin"; do
  read -r db name field want <<<"$entry"
  for where in "$work/sysusers" "$root"; do
    got=$(awk -F: -v n="$name" -v f="$field" '$1 == n { print $f }' "$where/etc/$db")
    [[ $got == "$want" ]] || fail "$where/etc/$db: $name field $field is '$got', not '$want'"
  done
done
for g in dialout plugdev; do
  grep -Eq "^$g:[^:]*:[0-9]+:(.*,)?healerd(,.*)?\$" "$work/sysusers/etc/group" ||
    fail "systemd-sysusers did not put healerd in group $g"
done
grep -q '^healer:' "$work/sysusers/etc/group" || fail "systemd-sysusers did not make group healer"
ok "systemd-sysusers makes the same accounts from the sysusers.d file"

groups=$(inroot id -nG healerd) || fail "no user healerd"
for g in healerd dialout plugdev; do
  [[ " $groups " == *" $g "* ]] || fail "user healerd is not in group $g (groups: $groups)"
done
inroot getent group healer >/dev/null || fail "no group healer"
ok "user healerd in groups: $groups; group healer exists"
[[ $(inroot stat -c '%U:%G %a' /var/lib/healerd) == "healerd:healerd 750" ]] ||
  fail "/var/lib/healerd: $(inroot stat -c '%U:%G %a' /var/lib/healerd)"
ok "/var/lib/healerd healerd:healerd 0750"
inroot dpkg-query -W -f '${Conffiles}\n' healerd | grep -q '^ /etc/healerd/healerd.conf ' ||
  fail "/etc/healerd/healerd.conf is not a conffile"
ok "/etc/healerd/healerd.conf is a conffile"
for f in /lib/systemd/system/healerd.service /usr/lib/sysusers.d/healerd.conf /usr/lib/tmpfiles.d/healerd.conf \
  /lib/udev/rules.d/60-healerd.rules /usr/share/dbus-1/system.d/io.healerd.Healer1.conf \
  /usr/share/dbus-1/system-services/io.healerd.Healer1.service /usr/lib/systemd/catalog/healerd.catalog \
  /usr/share/bash-completion/completions/healerctl /usr/share/man/man8/healerd.8.gz \
  /usr/share/healerd/firmware/catalog.json.sig /usr/share/healerd/trusted-keys.d/healerd-firmware.pem; do
  [[ -f $root$f ]] || fail "$f is not installed"
done
ok "unit, sysusers, tmpfiles, udev rules, bus policy and activation, catalog, completion, man pages"
inroot healer-publish verify --catalog /usr/share/healerd/firmware/catalog.json \
  --keys /usr/share/healerd/trusted-keys.d || fail "the embedded store's catalog does not verify"
mkdir "$root/tmp/development-key"
cp "$src/device-firmware/keys/development-DO-NOT-USE-IN-PRODUCTION.pub.pem" "$root/tmp/development-key/"
if inroot healer-publish verify --catalog /usr/share/healerd/firmware/catalog.json \
  --keys /tmp/development-key >/dev/null 2>&1; then
  fail "the embedded store's catalog verifies with the development key"
fi
ok "the embedded catalog verifies with the installed one-time key, not with the development key"

step "systemd-analyze security (installed unit)"
systemd-analyze security --root="$root" --offline=true --no-pager healerd.service \
  >"$work/security.txt" 2>"$work/security.log" || true
grep -E '✗|Overall' "$work/security.txt" || true
if grep -iE 'unknown|failed|invalid|ignoring' "$work/security.log"; then
  fail "systemd-analyze does not accept the unit as written"
fi
exposure=$(sed -n 's/.*Overall exposure level for healerd.service: \([0-9.]*\).*/\1/p' "$work/security.txt")
[[ -n $exposure ]] || { cat "$work/security.txt" "$work/security.log"; fail "no exposure level"; }
awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }' ||
  fail "exposure $exposure is above $max_exposure"
ok "systemd-analyze security: exposure $exposure (at most $max_exposure)"

# ---- 5. smoke test ----
step "smoke test: healerd heals a simulated device from the embedded store"
unit=$root/lib/systemd/system/healerd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
unit_user=$(sed -n 's/^User=//p' "$unit")
unit_groups=$(sed -n 's/^SupplementaryGroups=//p' "$unit" | tr ' ' ',')
[[ $exec_start == /* && $unit_user == healerd ]] || fail "unexpected unit: ExecStart=$exec_start User=$unit_user"
cat >"$root/etc/healerd/healerd.conf.d/smoke.conf" <<'CONF'
# The package test's simulated device (removed before the purge, as an
# administrator removes their own files).
[serial]
ports=/run/healer-sim/*/tty
CONF

mkdir -p "$root/run/dbus" "$root/run/healer-sim/device-1" "$root/run/healerd-smoke"
"${inroot[@]}" dbus-daemon --system --nofork --nopidfile --nosyslog >"$work/dbus.log" 2>&1 &
pids+=($!)
wait_for 10 "the root's system bus" test -S "$root/run/dbus/system_bus_socket"

"${inroot[@]}" healer-sim --state /run/healerd-smoke/device-1 --release 1.0.0 --app heartbeat \
  --link /run/healer-sim/device-1/tty 2>"$work/healer-sim.log" &
pids+=($!)
wait_for 10 "the simulated device's port" test -L "$root/run/healer-sim/device-1/tty"
inroot healerctl probe --json /run/healer-sim/device-1/tty >"$work/probe.json" || fail "healerctl probe"
grep -q '"mode":"safe-mode"' "$work/probe.json" || { cat "$work/probe.json"; fail "the device is not in safe mode"; }
device_id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/probe.json" | head -n 1)
ok "device $device_id is in safe mode (healerctl probe)"

# systemd's side of sd_notify: a datagram socket, every message logged.
python3 - "$root/run/healerd-smoke/notify" "$work/notify.txt" <<'PY' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(log, "a", buffering=1) as f:
    while True:
        for line in s.recv(65536).decode(errors="replace").splitlines():
            f.write(line + "\n")
PY
pids+=($!)
wait_for 10 "the notify socket" test -S "$root/run/healerd-smoke/notify"

# The unit's ExecStart, as the unit's user with its groups, no capabilities
# and no new privileges, its umask and the environment systemd gives it.
# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin LANG=C.UTF-8 HOME=/var/lib/healerd \
  USER=healerd LOGNAME=healerd NOTIFY_SOCKET=/run/healerd-smoke/notify WATCHDOG_USEC=4000000 \
  STATE_DIRECTORY=/var/lib/healerd CONFIGURATION_DIRECTORY=/etc/healerd \
  chroot "$root" setpriv --reuid="$unit_user" --regid="$unit_user" --init-groups --no-new-privs \
  --bounding-set=-all --inh-caps=-all -- sh -c 'umask 0077 && exec "$@"' sh $exec_start \
  >"$work/healerd.log" 2>&1 &
healerd_pid=$!
pids+=("$healerd_pid")
wait_for 30 "READY=1 from healerd" grep -qx 'READY=1' "$work/notify.txt"
inroot healerctl status >"$work/status.txt" 2>&1 || { cat "$work/status.txt"; fail "healerctl status"; }
cat "$work/status.txt"
ok "healerd is ready; healerctl status answers"
inroot setpriv --reuid=nobody --regid=nogroup --clear-groups healerctl status >/dev/null ||
  fail "healerctl status as nobody"
ok "healerctl status answers user nobody too (bus policy)"

healthy() {
  inroot healerctl devices --json >"$work/devices.json" 2>/dev/null &&
    grep -q "\"id\":\"$device_id\"" "$work/devices.json" &&
    grep -q '"state":"healthy"' "$work/devices.json"
}
deadline=$(($(date +%s) + 180))
until healthy; do
  if (($(date +%s) > deadline)); then
    cat "$work/devices.json" 2>/dev/null
    # What healerd holds and where it waits, and how the device answers now (busy if healerd has it).
    ls -l "/proc/$healerd_pid/fd" 2>&1 | sed 's/^/healerd fd: /'
    grep -E '^(State|Threads)' "/proc/$healerd_pid/status" 2>&1 | sed 's/^/healerd: /'
    inroot healerctl probe /run/healer-sim/device-1/tty 2>&1 | sed 's/^/probe again: /'
    fail "the device was not healed within 180s"
  fi
  kill -0 "$healerd_pid" 2>/dev/null || fail "healerd exited"
  sleep 0.5
done
grep -q 'heal succeeded' "$work/healerd.log" || fail "healerd did not log the heal"
inroot healerctl devices
ok "device $device_id healed: $(grep -m1 'heal succeeded' "$work/healerd.log" | sed 's/^.*heal succeeded/heal succeeded/')"
grep -q '^STATUS=' "$work/notify.txt" || fail "no STATUS= from healerd"
pings() { [[ $(grep -cx 'WATCHDOG=1' "$work/notify.txt") -ge 2 ]]; }
wait_for 10 "WATCHDOG=1 from healerd (twice)" pings
ok "sd_notify: READY=1, $(grep -c '^STATUS=' "$work/notify.txt") STATUS= ($(grep '^STATUS=' "$work/notify.txt" | tail -n 1)), $(grep -cx 'WATCHDOG=1' "$work/notify.txt") WATCHDOG=1"
uid=$(awk -F: '$1 == "healerd" { print $3 }' "$root/etc/passwd")
[[ -z $(find "$root/var/lib/healerd" ! -uid "$uid") ]] || fail "files in /var/lib/healerd not owned by healerd"
[[ -n $(find "$root/var/lib/healerd" -type f) ]] || fail "healerd kept nothing in /var/lib/healerd"
ok "the store in /var/lib/healerd belongs to healerd ($(find "$root/var/lib/healerd" -type f | wc -l) files)"
kill -TERM "$healerd_pid"
status=0
wait "$healerd_pid" || status=$?
[[ $status -eq 0 ]] || fail "healerd exited with $status on SIGTERM"
grep -qx 'STOPPING=1' "$work/notify.txt" || fail "no STOPPING=1 from healerd"
ok "SIGTERM: STOPPING=1, exit status 0"

# ---- 6. upgrade over itself ----
step "upgrade over itself keeps an edited /etc/healerd/healerd.conf"
conf=$root/etc/healerd/healerd.conf
sed -i 's/^#log-level=info$/log-level=info/' "$conf"
echo "# edited by the package test" >>"$conf"
grep -qx 'log-level=info' "$conf" || fail "could not edit $conf"
sum=$(sha256sum <"$conf")
# With the bus still up: postinst reloads its configuration.
inroot dpkg -i "/tmp/$(basename "$deb")" "/tmp/$(basename "$tools_deb")" </dev/null >"$work/upgrade.log" 2>&1 ||
  { cat "$work/upgrade.log"; fail "dpkg -i over the installed packages"; }
[[ $(sha256sum <"$conf") == "$sum" ]] || fail "the upgrade changed the edited healerd.conf"
leftovers=$(find "$root/etc/healerd" -name '*.dpkg-*')
[[ -z $leftovers ]] || fail "the upgrade left $leftovers"
[[ -d $root/var/lib/healerd/store || -n $(find "$root/var/lib/healerd" -type f) ]] || fail "the upgrade lost the state"
inroot healerd --config /etc/healerd/healerd.conf --version >/dev/null || fail "healerd --version after the upgrade"
ok "the edited healerd.conf is kept, the state too"

for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# ---- 7. purge ----
step "purge leaves nothing behind"
rm "$root/etc/healerd/healerd.conf.d/smoke.conf"
inroot apt-get "${apt_options[@]}" purge healerd healerd-tools >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; fail "apt-get purge"; }
[[ -z $(inroot dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 'healerd*' 2>/dev/null | grep -v '^un ') ]] ||
  fail "dpkg still knows healerd: $(inroot dpkg-query -W 'healerd*')"
file_list >"$work/files-after"
if ! diff -u "$work/files-before" "$work/files-after" >"$work/files.diff"; then
  cat "$work/files.diff"
  fail "the root after purge differs from the root before install"
fi
ok "after purge the root has exactly the files it had before the install ($(wc -l <"$work/files-before") paths)"

# ---- 8. under systemd ----
if command -v systemd-nspawn >/dev/null 2>&1; then
  step "under systemd: the unit as written, booted with systemd-nspawn"
  # The same root, with systemd now (postinst makes the accounts with
  # systemd-sysusers), a simulated device as a unit and the smoke drop-in.
  inroot apt-get "${apt_options[@]}" --no-install-recommends install systemd dbus udev \
    "/tmp/$(basename "$deb")" "/tmp/$(basename "$tools_deb")" >"$work/install-systemd.log" 2>&1 ||
    { cat "$work/install-systemd.log"; fail "installing systemd and the packages"; }
  cat >"$root/etc/healerd/healerd.conf.d/smoke.conf" <<'CONF'
[serial]
ports=/run/healer-sim/*/tty
CONF
  cat >"$root/etc/systemd/system/healer-sim.service" <<'UNIT'
[Unit]
Description=A simulated device in safe mode (the package test)
Before=healerd.service
[Service]
User=healerd
RuntimeDirectory=healer-sim/device-1
RuntimeDirectoryMode=0755
ExecStart=/usr/bin/healer-sim --state /var/tmp/healer-sim/device-1 --release 1.0.0 --app travel-in-time --link /run/healer-sim/device-1/tty
[Install]
WantedBy=multi-user.target
UNIT
  ln -s /etc/systemd/system/healer-sim.service "$root/etc/systemd/system/multi-user.target.wants/"
  # Nothing of ours may run in the root now (the root's bus was started by
  # hand above; a package's script may have started something too).
  for pid in $(root_pids); do
    echo "stopping $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) ($pid), still running in the root"
    kill -TERM "$pid" 2>/dev/null || true
  done
  no_root_pids() { [[ -z $(root_pids) ]]; }
  wait_for 10 "every process in the root stopped" no_root_pids
  for m in $(mounts_under); do umount "$m"; done
  nspawn_options=()
  # With no systemd on the host: no machined to register with, no scope to make.
  [[ -d /run/systemd/system ]] || nspawn_options=(--register=no --keep-unit)
  systemd-nspawn -q -D "$root" -b --console=passive -M "healerd-test-$$" "${nspawn_options[@]}" \
    >"$work/nspawn.log" 2>&1 &
  nspawn_pid=$!
  pids+=("$nspawn_pid")
  container_init() { pgrep -P "$nspawn_pid" | head -n 1; }
  wait_for 30 "the container's systemd" container_init
  init_pid=$(container_init)
  incontainer() { nsenter -t "$init_pid" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
  active() { [[ $(incontainer systemctl is-active healerd.service) == active ]]; }
  wait_for 60 "healerd.service active" active
  healed_in_container() {
    incontainer healerctl devices --json >"$work/devices.json" 2>/dev/null &&
      grep -q '"state":"healthy"' "$work/devices.json"
  }
  wait_for 120 "the device healed under systemd" healed_in_container
  incontainer systemctl --no-pager status healerd.service | head -n 12
  main_pid=$(incontainer systemctl show -p MainPID --value healerd.service)
  proc=$(incontainer cat "/proc/$main_pid/status")
  for want in "Uid:.*\b$(awk -F: '$1 == "healerd" { print $3 }' "$root/etc/passwd")\b" \
    'CapEff:.*0000000000000000' 'CapBnd:.*0000000000000000' 'NoNewPrivs:.*1' 'Seccomp:.*2'; do
    grep -Eq "$want" <<<"$proc" || fail "healerd under systemd: /proc status lacks $want"
  done
  ok "healerd.service: Type=notify active ($(incontainer systemctl show -p StatusText --value healerd.service)); runs as healerd with no capabilities, no new privileges, a system call filter"
  explained() { incontainer journalctl -x -u healerd.service --no-pager | grep -q 'Defined-By: healerd'; }
  if ! wait_for_quietly 15 explained; then
    incontainer journalctl -x -u healerd.service --no-pager -o verbose | tail -n 40
    incontainer journalctl --list-catalog | grep -i healer | head
    fail "journalctl -x shows no explanation from the installed message catalog"
  fi
  ok "journalctl -x explains healerd's records (message catalog)"
  incontainer systemctl stop healerd.service
  incontainer healerctl status >/dev/null || fail "healerctl status did not start healerd through D-Bus activation"
  active || fail "D-Bus activation did not start healerd.service"
  ok "with healerd stopped, healerctl status starts it (D-Bus activation, SystemdService=healerd.service)"
  [[ $(incontainer systemctl show -p NRestarts --value healerd.service) == 0 ]] || fail "healerd.service restarted"
  # udev reads the installed rules without a complaint (one would name the
  # file and line).
  incontainer udevadm test --action=add /class/tty/console >"$work/udevadm-test.log" 2>&1 || true
  grep -q 'Reading rules file: .*/60-healerd.rules' "$work/udevadm-test.log" || fail "udev did not read 60-healerd.rules"
  if grep '60-healerd.rules:' "$work/udevadm-test.log"; then
    fail "udev complains about 60-healerd.rules"
  fi
  ok "udevadm test reads 60-healerd.rules without a complaint"
  if incontainer journalctl -u healerd.service -p warning --no-pager -q | grep .; then
    echo "WARNING: healerd logged warnings under systemd (above)"
  fi
  # The loadable modules under the unit's sandbox (MemoryDenyWriteExecute=, SystemCallFilter=):
  # nothing has needed libcurl or libarchive yet, so neither is mapped; a tar bundle import loads
  # healer-archive.so (libarchive), an [upstream] url healerd-http.so (libcurl), and curl gets as
  # far as a refused connection.
  maps() { incontainer cat "/proc/$(incontainer systemctl show -p MainPID --value healerd.service)/maps"; }
  maps >"$work/maps-idle.txt"
  if grep -E '/(libcurl|libarchive)\.so' "$work/maps-idle.txt"; then
    fail "healerd maps libcurl or libarchive before it needs them"
  fi
  incontainer tar -C /usr/share/healerd/firmware -cf /tmp/firmware.tar .
  incontainer healerctl import /tmp/firmware.tar >"$work/import.log" 2>&1 ||
    { cat "$work/import.log"; fail "healerctl import of a tar bundle (healerd under systemd)"; }
  maps >"$work/maps-import.txt"
  grep -q '/healerd/healer-archive\.so$' "$work/maps-import.txt" && grep -q '/libarchive\.so' "$work/maps-import.txt" ||
    fail "healerd imported a tar bundle without mapping healer-archive.so and libarchive"
  ok "under the unit's sandbox: neither libcurl nor libarchive mapped idle; a tar bundle import loads healer-archive.so ($(head -n 1 "$work/import.log"))"
  printf '[upstream]\nurl=https://127.0.0.1:9\n' >"$root/etc/healerd/healerd.conf.d/upstream.conf"
  incontainer systemctl restart healerd.service
  wait_for 60 "healerd.service active again" active
  upstream_tried() {
    incontainer journalctl -u healerd.service --no-pager -q | grep 'upstream catalog: https://127.0.0.1:9/' | grep -q 'next try in'
  }
  wait_for 60 "an upstream catalog fetch (healerd under systemd)" upstream_tried
  if incontainer journalctl -u healerd.service --no-pager -q | grep 'cannot load'; then
    fail "healerd could not load a module under systemd"
  fi
  maps >"$work/maps-upstream.txt"
  grep -q '/healerd/healerd-http\.so$' "$work/maps-upstream.txt" && grep -q '/libcurl\.so' "$work/maps-upstream.txt" ||
    fail "healerd fetched without mapping healerd-http.so and libcurl"
  ok "with an [upstream] url healerd loads healerd-http.so: $(incontainer journalctl -u healerd.service --no-pager -q -o cat | grep -m 1 'upstream catalog:')"
  rm "$root/etc/healerd/healerd.conf.d/upstream.conf"
  kill -TERM "$nspawn_pid"
  wait "$nspawn_pid" || fail "the container did not shut down cleanly"
  pids=()
  ok "the container shut down"
else
  # Not a skip: scripts/setup.sh installs systemd-container, so its absence is a setup bug.
  fail "no systemd-nspawn (Debian package systemd-container, which scripts/setup.sh installs): the unit did not run under systemd"
fi

step "done"
echo "timings:"
printf '%s\n' "${timings[@]}"
echo "total: $(($(date +%s) - started))s; exposure $exposure"
