#!/usr/bin/env bash
# Resources: healerd's memory, CPU and wakeups with 64 devices attached and
# idle (watchdog off and on, with and without its D-Bus face, with and without
# MQTT), and during and after a 64-device heal (with and without MQTT).
#
#   bench/heal-resources.sh BUILD_DIR [OUT_DIR]
#   environment: DEVICES=64 IDLE_S=30 BAUD=921600 STRACE_S=10 (0: no strace pass)
#                CASES="..." (default: all of those below, in that order; "heal" also runs
#                after-heal, "heal+mqtt" after-heal+mqtt)
#                OUTBOX_FULL_BYTES=16777216 (safe-idle+mqtt-full: the outbox's payload bytes)
#
# Memory: VmRSS, VmHWM (peak), RssAnon from /proc/PID/status.  CPU:
# utime+stime over the window.  Wakeups: voluntary+involuntary context
# switches of all of healerd's threads over the window (each sleep of a
# thread that ran is one): no tracer attached while measuring.  After each
# idle window, an strace pass (STRACE_S seconds, separate, so its overhead
# is not in the numbers) records every poll healerd's threads made and the
# timeout each passed: -1 means no timer was armed.
#
# Cases:
#   safe-idle      DEVICES simulators in safe mode that was asked for (reported, nothing to heal)
#   safe-idle+wd   the same with WATCHDOG_USEC=4000000 and NOTIFY_SOCKET (a ping expected every 2 s)
#   safe-idle+bus  the same with the D-Bus face on a private session bus
#   healthy-idle   DEVICES simulators running tinker on 1.0.0 (each publishes every 10 s)
#   silent-ports   DEVICES ports with no device answering (pty-relay.py): what healerd does meanwhile
#   heal           DEVICES heartbeat devices on 1.0.0 healed at once (window: healerd start .. last success)
#   after-heal     the same devices, idle after it (heartbeat logs its uptime every 10 s)
#   safe-idle+mqtt, heal+mqtt, after-heal+mqtt
#                  the same with [mqtt] broker= a private mosquitto on a free loopback port
#                  (bench-lib.sh: bench_broker_start), connected, nothing subscribed; the state
#                  directory (and its outbox) as in the others
#   safe-idle+mqtt-full
#                  safe-idle+mqtt with no broker listening and the outbox full: OUTBOX_FULL_BYTES of
#                  event payloads pending (make-outbox.py; 16 MiB is outbox-max-bytes' default),
#                  what healerd holds after the broker was away long enough
# Writes OUT_DIR/heal-resources.tsv and OUT_DIR/heal-resources-strace-CASE.txt; prints the table,
# and MQTT off and on side by side.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
out=${2:-$build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
devices=${DEVICES:-64}
idle_s=${IDLE_S:-30}
baud=${BAUD:-921600}
strace_s=${STRACE_S:-10}
read -r -a cases <<<"${CASES:-safe-idle safe-idle+wd safe-idle+bus healthy-idle silent-ports heal safe-idle+mqtt heal+mqtt safe-idle+mqtt-full}"
outbox_full_bytes=${OUTBOX_FULL_BYTES:-16777216}
healerd=$build/agent/daemon/healerd
command -v strace >/dev/null || strace_s=0

tsv=$out/heal-resources.tsv
: >"$out/heal-resources-notes.txt"
printf 'case\tdevices\twindow_s\tvmrss_kib\tvmhwm_kib\trssanon_kib\tcpu_s\tswitches\tswitches_per_s\tthreads\tnotify_msgs\twatchdog_pings\tblocked_in\trssfile_kib\tpss_kib\n' >"$tsv"
printf 'case\tmapping\trss_kib\tpss_kib\n' >"$out/heal-resources-maps.tsv"

# start_healerd WORK PATTERN COUNT [ENV...]: healerd with its log timed by tslog.py;
# returns once COUNT lines matching PATTERN arrived (sets hpid, t_start, t_ready).
start_healerd() {
  local work=$1 pattern=$2 count=$3 args=(--no-bus)
  shift 3
  bench_tslog_start "$work" --pattern "$pattern" --count "$count"
  [[ ${HEALERD_SESSION:-} ]] && args=(--session)
  t_start=$EPOCHREALTIME
  env "$@" "$healerd" "${args[@]}" --config "$work/healerd.conf" 2>&"$bench_tslog_in" {bench_tslog_in}>&- &
  hpid=$!
  bench_pids+=("$hpid")
  bench_tslog_started
  t_ready=""
  bench_tslog_read t_ready 300
  bench_tslog_close
  [[ -n $t_ready ]] || { echo "healerd: '$pattern' x$count not seen; log: $work/healerd.log" >&2; return 1; }
}

# measure CASE WORK SECONDS: a window of SECONDS from now, then a row.
measure() {
  local name=$1 work=$2 secs=$3 c0 c1 w0 w1 rss hwm anon threads="" t comm k v sw n_notify=0 n_wd=0
  bench_cpu_ticks c0 "$hpid"
  bench_switches w0 "$hpid"
  local t0=$EPOCHREALTIME
  sleep "$secs"
  bench_cpu_ticks c1 "$hpid"
  bench_switches w1 "$hpid"
  row "$name" "$work" "$t0" "$EPOCHREALTIME" "$c0" "$c1" "$w0" "$w1"
}

# row CASE WORK T0 T1 CPU0 CPU1 SW0 SW1
row() {
  local name=$1 work=$2 t0=$3 t1=$4 rss hwm anon threads="" t comm sw k v n_notify=0 n_wd=0 secs blocked sc file pss
  bench_status_kib "$hpid" VmRSS rss
  bench_status_kib "$hpid" VmHWM hwm
  bench_status_kib "$hpid" RssAnon anon
  bench_status_kib "$hpid" RssFile file
  pss=0
  while read -r k v _; do [[ $k == Pss: ]] && pss=$v; done </proc/"$hpid"/smaps_rollup
  # Resident memory by mapping (library, heap, stacks), largest first.
  awk -v c="$name" '/^[0-9a-f]+-[0-9a-f]+ / { m = (NF >= 6) ? $6 : "[anon]"; sub(/.*\//, "", m) }
       /^Rss:/ { r[m] += $2 } /^Pss:/ { p[m] += $2 }
       END { for (k in r) if (r[k] > 0) printf "%s\t%s\t%d\t%d\n", c, k, r[k], p[k] }' /proc/"$hpid"/smaps |
    sort -t$'\t' -k3,3nr >>"$out/heal-resources-maps.tsv"
  for t in /proc/"$hpid"/task/*; do
    read -r comm <"$t/comm"
    sw=0
    while read -r k v; do
      case $k in voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) sw=$((sw + v)) ;; esac
    done <"$t/status"
    threads+="${threads:+,}$comm:$sw"
  done
  # Where each thread sleeps now (/proc/PID/task/TID/syscall: number, then arguments): poll (7) with
  # a timeout (third argument) of -1 waits for fds only, i.e. no GLib timer is armed.
  blocked=""
  for t in /proc/"$hpid"/task/*; do
    read -r comm <"$t/comm"
    read -r -a sc <"$t/syscall" 2>/dev/null || sc=(?)
    case ${sc[0]} in
    7)
      local to=$(( ${sc[3]} & 0xffffffff ))
      ((to < 0x80000000)) || to=$((to - 0x100000000))
      blocked+="${blocked:+,}$comm:poll(timeout=$to)"
      ;;
    *) blocked+="${blocked:+,}$comm:syscall${sc[0]}" ;;
    esac
  done
  if [[ -f $work/notify.log ]]; then
    n_notify=$(awk -v a="$t0" -v b="$t1" '$1 >= a && $1 < b' "$work/notify.log" | wc -l)
    n_wd=$(awk -v a="$t0" -v b="$t1" '$1 >= a && $1 < b && /WATCHDOG=1/' "$work/notify.log" | wc -l)
  fi
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  bench_switches_delta sw "$7" "$8"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$devices" "$secs" "$rss" "$hwm" "$anon" \
    "$(awk -v a="$5" -v b="$6" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
    "$sw" "$(awk -v n="$sw" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')" \
    "$threads" "$n_notify" "$n_wd" "$blocked" "$file" "$pss" >>"$tsv"
  echo "  $name: done ($secs s)" >&2
}

# strace_pass CASE: which polls healerd's threads made, and with which timeouts.
strace_pass() {
  local name=$1 f=$out/heal-resources-strace-$1.txt spid
  ((strace_s > 0)) || return 0
  strace -f -tt -T -e trace=poll,ppoll,epoll_wait,read,write,sendmsg -p "$hpid" -o "$f.raw" 2>/dev/null &
  spid=$!
  bench_pids+=("$spid")
  sleep "$strace_s"
  bench_stop "$spid"
  {
    echo "# $name: healerd's syscalls over $strace_s s (strace -f -tt -T, after the measured window)"
    echo "# poll calls by timeout argument (ms; -1 = no timer armed):"
    { grep -E ' (poll|ppoll)\(' "$f.raw" | grep -v 'resumed' | sed -E 's/.*\], [0-9]+, (-?[0-9]+|NULL|\{[^}]*\}).*/\1/' |
      sort | uniq -c | sort -rn | head -10 | sed 's/^/#   /'; } || true
    echo "# calls by syscall:"
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[a-z_0-9]+\(/) { sub(/\(.*/, "", $i); c[$i]++; break } } END { for (k in c) printf "#   %6d %s\n", c[k], k }' "$f.raw" | sort -k2
    echo "# the first 60 lines ($(wc -l <"$f.raw") in all):"
    head -60 "$f.raw"
  } >"$f"
  rm -f "$f.raw"
}

# idle_case CASE APP RELEASE PATTERN [SIM ARGS...] -- [ENV...]
idle_case() {
  local name=$1 app=$2 release=$3 pattern=$4 work sim_args=() env_args=()
  shift 4
  while [[ $# -gt 0 && $1 != -- ]]; do sim_args+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  env_args=("$@")
  bench_workdir work
  bench_start_sims "$build" "$work" "$devices" "$baud" "$app" "$release" "${sim_args[@]}"
  mqtt_setup "$work" "$name"
  if [[ $name == *+wd ]]; then
    python3 "$here/notify-listen.py" "$work/notify.sock" "$work/notify.log" &
    bench_pids+=($!)
    while [[ ! -S $work/notify.sock ]]; do sleep 0.05; done
    env_args+=(NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=4000000)
  fi
  if [[ $name == *+bus ]]; then
    dbus-daemon --session --nofork --nopidfile --address="unix:path=$work/bus" &
    bench_pids+=($!)
    while [[ ! -S $work/bus ]]; do sleep 0.05; done
    env_args+=(DBUS_SESSION_BUS_ADDRESS="unix:path=$work/bus")
    HEALERD_SESSION=1 start_healerd "$work" "$pattern" "$devices" "${env_args[@]}"
  else
    start_healerd "$work" "$pattern" "$devices" "${env_args[@]}"
  fi
  sleep 2 # the last describes and journal lines
  measure "$name" "$work" "$idle_s"
  strace_pass "$name"
  bench_cleanup
}

# mqtt_setup WORK CASE: WORK/healerd.conf, with [mqtt] for a +mqtt case: a private mosquitto
# (+mqtt), or a port nobody listens on and a full outbox (+mqtt-full).
mqtt_setup() {
  local work=$1 name=$2 port state n
  if [[ $name != *+mqtt* ]]; then
    bench_write_conf "$build" "$work"
    return 0
  fi
  bench_free_port port
  [[ $name == *+mqtt-full ]] || bench_broker_start "$work" "$port"
  bench_write_conf "$build" "$work" "$(printf '[mqtt]\nbroker=mqtt://127.0.0.1:%s\ngateway-id=bench\n' "$port")"
  if [[ $name == *+mqtt-full ]]; then
    state=$(sed -n 's/^state-directory=//p' "$work/healerd.conf")
    n=$("$bench_python" "$here/make-outbox.py" "$state/mqtt" "$outbox_full_bytes")
    echo "$name: the outbox holds $n events, $(stat -c %s "$state/mqtt/outbox.log") bytes in outbox.log, no broker" \
      >>"$out/heal-resources-notes.txt"
  fi
}

# silent_case: DEVICES ports with nothing answering (pty-relay.py, never plugged): an adapter
# whose device is off.  Counts the frames healerd sends on one of them.
silent_case() {
  local name=silent-ports work t0 n0 n1 a
  bench_workdir work
  mkdir -p "$work/ports"
  mkfifo "$work/control"
  "${bench_rt[@]}" "$bench_python" "$here/pty-relay.py" --ports "$work/ports" --count "$devices" \
    --control "$work/control" >"$work/relay.out" &
  bench_pids+=($!)
  while [[ ! -e $work/ports/dev$devices ]]; do sleep 0.05; done
  bench_write_conf "$build" "$work"
  start_healerd "$work" "serving" 1
  sleep 2
  echo "probes 1" >"$work/control"
  sleep 0.2
  read -r a a n0 < <(tail -1 "$work/relay.out")
  t0=$EPOCHREALTIME
  measure "$name" "$work" "$idle_s"
  echo "probes 1" >"$work/control"
  sleep 0.2
  read -r a a n1 < <(tail -1 "$work/relay.out")
  awk -v a="$n0" -v b="$n1" -v t0="$t0" -v t1="$EPOCHREALTIME" -v d="$devices" \
    'BEGIN { printf "silent-ports: healerd sent %d frames to port 1 in %.1f s (%.2f/s; x%d ports)\n", b - a, t1 - t0, (b - a) / (t1 - t0), d }' \
    >>"$out/heal-resources-notes.txt"
  strace_pass "$name"
  bench_cleanup
}

# heal_case CASE: the heal, and the same devices idle after it (CASE heal or heal+mqtt).
heal_case() {
  local name=$1 suffix=${1#heal} work c1 w1
  bench_workdir work
  bench_start_sims "$build" "$work" "$devices" "$baud" heartbeat 1.0.0
  sleep 0.3
  mqtt_setup "$work" "$name"
  start_healerd "$work" "heal succeeded" "$devices"
  bench_cpu_ticks c1 "$hpid"
  bench_switches w1 "$hpid"
  row "$name" "$work" "$t_start" "$t_ready" 0 "$c1" "" "$w1"
  sleep 2
  measure "after-heal$suffix" "$work" "$idle_s"
  strace_pass "after-heal$suffix"
  bench_cleanup
}

echo "# healerd resources, $devices devices; $(bench_machine); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${cases[@]}"; do
  case $c in
  safe-idle | safe-idle+wd | safe-idle+bus | safe-idle+mqtt | safe-idle+mqtt-full)
    idle_case "$c" tinker 1.0.0 "nothing to heal" --safe-mode
    ;;
  healthy-idle) idle_case healthy-idle tinker 1.0.0 "attached on" ;;
  silent-ports) silent_case ;;
  heal | heal+mqtt) heal_case "$c" ;;
  *) echo "unknown case: $c" >&2; exit 2 ;;
  esac
done

printf '\n| case | devices | window s | VmRSS MiB | VmHWM MiB | RssAnon MiB | RssFile MiB | Pss MiB | CPU s | CPU %% | wakeups/s | notify msgs | watchdog pings |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
awk -F'\t' 'NR > 1 { printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %d | %d |\n", $1, $2, $3, $4 / 1024, $5 / 1024, $6 / 1024, $14 / 1024, $15 / 1024, $7, 100 * $7 / $3, $9, $11, $12 }' "$tsv"
echo
echo "resident memory by mapping in the first case (KiB; rss, pss):"
awk -F'\t' 'NR > 1 && !seen { first = $1; seen = 1 } NR > 1 && $1 == first && n++ < 12 { printf "  %-32s %6d %6d\n", $2, $3, $4 }' "$out/heal-resources-maps.tsv"
echo
echo "threads (context switches since start; where each sleeps at the end of the window):"
awk -F'\t' 'NR > 1 { printf "  %-14s %s\n  %-14s %s\n", $1, $10, "", $13 }' "$tsv"
# Which of that only libcurl and libarchive bring in (their dependencies that nothing else healerd
# links needs), for a healerd that links them (before they moved into modules loaded on first use),
# and whether healerd mapped them in each case.
python3 - "$healerd" "$out/heal-resources-maps.tsv" <<'EOF' >>"$out/heal-resources-notes.txt"
import subprocess, sys
def deps(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return {l.split()[0].rsplit("/", 1)[-1] for l in out.splitlines() if l.strip() and "vdso" not in l}
needed = [l.split("[")[1].rstrip("]") for l in subprocess.run(["readelf", "-d", sys.argv[1]], capture_output=True,
          text=True).stdout.splitlines() if "(NEEDED)" in l]
libdir = {}
for l in subprocess.run(["ldd", sys.argv[1]], capture_output=True, text=True).stdout.splitlines():
    if "=>" in l:
        libdir[l.split()[0]] = l.split("=>")[1].split()[0]
lazy_roots = [n for n in needed if n.startswith(("libcurl", "libarchive"))]
others = set()
for n in needed:
    if n not in lazy_roots and n in libdir:
        others |= deps(libdir[n]) | {n}
groups = {r: ({r} | deps(libdir[r])) - others for r in lazy_roots if r in libdir}
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])][1:]
first = rows[0][0] if rows else None
rss = {m: int(r) for c, m, r, p in rows if c == first}
allonly = set().union(*groups.values()) if groups else set()
def total(names):
    return sum(v for m, v in rss.items() if any(m.startswith(n) for n in names))
for r, g in groups.items():
    print("%s: %s and the %d libraries only it needs hold %d KiB of healerd's RSS (%s)" % (
        first, r, len(g) - 1, total(g), " ".join(sorted(x.split(".so")[0] for x in g if x != r))))
if groups:
    print("%s: together, with no upstream and no bundle in use: %d KiB" % (first, total(allonly)))
# Since healerd loads them through its modules (agent/lib/healer-loadable.h) on first use: whether any case mapped them.
lazy = ("libcurl", "libarchive", "healerd-http", "healer-archive")
for case in dict.fromkeys(c for c, m, r, p in rows):
    got = sorted({m for c, m, r, p in rows if c == case and m.startswith(lazy)})
    print("%s: libcurl, libarchive or their modules mapped: %s" % (case, " ".join(got) if got else "none"))
EOF
cat "$out/heal-resources-notes.txt"
# MQTT off and on side by side, for the cases measured both ways.
if grep -q '+mqtt' "$tsv"; then
  printf '\nMQTT off / on (KiB):\n\n| case (%s devices) | VmRSS off / on | VmHWM off / on | RssAnon off / on | Pss off / on |\n' "$devices"
  printf '|---|---:|---:|---:|---:|\n'
  awk -F'\t' 'NR > 1 { rss[$1] = $4; hwm[$1] = $5; anon[$1] = $6; pss[$1] = $15; order[++n] = $1 }
    END {
      for (i = 1; i <= n; i++) {
        c = order[i]
        if (c !~ /\+mqtt/) continue
        base = c; sub(/\+mqtt.*/, "", base)
        off = (base in rss)
        printf "| %s | %s / %d | %s / %d | %s / %d | %s / %d |\n", c, off ? rss[base] : "-", rss[c], off ? hwm[base] : "-", hwm[c],
          off ? anon[base] : "-", anon[c], off ? pss[base] : "-", pss[c]
        if (rss[c] > worst) { worst = rss[c]; worst_case = c }
      }
      printf "\nwith MQTT on, the largest VmRSS: %.1f MiB (%s); the issue asks for <= 16 MiB with 64 devices\n", worst / 1024, worst_case
    }' "$tsv"
fi
echo "runs: $tsv; strace passes: $out/heal-resources-strace-*.txt"
