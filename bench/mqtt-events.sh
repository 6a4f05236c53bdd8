#!/usr/bin/env bash
# MQTT events (issue 18): what healerd's MQTT face delivers through a local broker, and what it
# costs the heals.
#
#   bench/mqtt-events.sh BUILD_DIR [OUT_DIR]
#   environment: COUNTS="1 8 32 64" BAUD=921600 REPS=3 MODES="off disk tmpfs"
#                BURST_DEVICES=64 BURST_ROUNDS=4 BURST_REPS=3 BURST_FS="disk tmpfs"
#                QUIET_MAX=0.25 QUIET_WAIT_S=120 (bench-lib.sh)
#                BACKLOG_BYTES=16506880 BACKLOG_REPS=1 (0: no backlog case)
#                KEEP_RUNS=1: each run's subscriber output and healerd log kept in OUT_DIR/mqtt-runs/
#
# Every run has its own mosquitto on a free port of 127.0.0.1 (bench-lib.sh: bench_broker_start)
# and a subscriber to healerd/bench/# (mosquitto_sub, QoS 1, MQTT v5, at real-time priority, each
# message stamped by mosquitto_sub as it arrives).  Devices: healer-sim on ptys at BAUD, release
# 1.0.0 with the heartbeat application (each heal: 1.1.0's two system parts, 92,288 bytes, two
# resets; six events: device-attached, safe-mode-detected, heal-started, two heal-step,
# heal-succeeded).  healerd: the real binary, --no-bus, a fresh state directory.
#
# live   N devices healed at once, the broker up.  MODE off: no [mqtt] (the heal's baseline);
#        disk: [mqtt] on, the state directory (and so the outbox, which fdatasyncs each event before
#        it is sent) under /var/tmp; tmpfs: the same under /dev/shm.  heal s: healerd's start to
#        the Nth "heal succeeded" in its log (tslog.py); healerd CPU s over that window.  Events:
#        those the subscriber got (the two of the store's seeding included), their rate from the
#        first to the last arrival (bounded by the heals, not by MQTT), and the latency from each
#        device event's "time" to its arrival.  Also how many retained device and status messages
#        arrived in the run.
# burst  The broker stopped before healerd starts: BURST_ROUNDS rounds of BURST_DEVICES fresh devices
#        healed with no broker (each round's simulators ended before the next round's start: a
#        device-detached each), so every event waits in the outbox (size and disk use of the state
#        directory's mqtt/ then);
#        then the broker started, and the subscriber (its persistent session kept by the broker)
#        back.  drain s: healerd's "mqtt: connected" log line to the last backlog event's
#        arrival; acked s: to the outbox's acked file recording the last one (polled every 10 ms);
#        healerd CPU s over broker start .. acked; healerd's memory with the backlog and after.
#        FS disk: the state directory under /var/tmp; tmpfs: under /dev/shm.  A run where healerd
#        reconnected before the subscriber was back is done again (its events would have waited in
#        the broker).  The outbox's own costs per append and acknowledgement: bench-mqtt-outbox.
# backlog  A full outbox: BACKLOG_BYTES of event payloads (default: the most outbox-max-bytes'
#        default of 16 MiB holds after a drop step, less 8 KiB for the start's own events, so
#        that none of the backlog is dropped: 16 MiB - 256 KiB - 8 KiB, ~58,500 events of 282
#        bytes) written by make-outbox.py into a fresh state
#        directory, healerd started with no device and the broker up.  open s: healerd's start to
#        "mqtt: connected"; drain and acked as in burst; healerd's peak and final memory.
#
# Writes OUT_DIR/mqtt-events.tsv, mqtt-burst.tsv and mqtt-backlog.tsv (every run) and prints medians.
# Passes or fails nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
out=${2:-$build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
read -r -a counts <<<"${COUNTS:-1 8 32 64}"
read -r -a modes <<<"${MODES:-off disk tmpfs}"
read -r -a burst_fs <<<"${BURST_FS:-disk tmpfs}"
baud=${BAUD:-921600}
reps=${REPS:-3}
burst_devices=${BURST_DEVICES:-64}
burst_reps=${BURST_REPS:-3}
burst_rounds=${BURST_ROUNDS:-4}
backlog_bytes=${BACKLOG_BYTES:-16506880}
backlog_reps=${BACKLOG_REPS:-1}
healerd=$build/agent/daemon/healerd
stats=$here/mqtt-sub-stats.py
for f in "$healerd" "$build/device-firmware/healer-sim" /usr/sbin/mosquitto; do
  [[ -x $f ]] || { echo "missing: $f (build first; mosquitto: scripts/setup.sh)" >&2; exit 1; }
done
command -v mosquitto_sub >/dev/null || { echo "missing: mosquitto_sub (mosquitto-clients: scripts/setup.sh)" >&2; exit 1; }

state_base() { case $1 in tmpfs) echo /dev/shm ;; *) echo /var/tmp ;; esac; }
mqtt_conf() { printf '[mqtt]\nbroker=mqtt://127.0.0.1:%s\ngateway-id=bench\n' "$1"; }

# keep WORK NAME: the run's subscriber output and healerd log into OUT_DIR/mqtt-runs (KEEP_RUNS=1).
keep() {
  [[ ${KEEP_RUNS:-0} == 1 ]] || return 0
  mkdir -p "$out/mqtt-runs"
  cp "$1/sub.out" "$out/mqtt-runs/$2.sub" 2>/dev/null || true
  cp "$1/healerd.log" "$out/mqtt-runs/$2.log" 2>/dev/null || true
}

# kv VAR KEY LINE: the value of KEY=VALUE in LINE.
kv() {
  local w
  for w in $3; do
    [[ $w == "$2="* ]] && { printf -v "$1" '%s' "${w#*=}"; return 0; }
  done
  printf -v "$1" '%s' nan
}

# nap SECONDS: a sleep without a fork (a read that times out on a pipe nobody writes), so that
# polling does not add processes to the machine being measured.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }

# wait_for DESCRIPTION TIMEOUT_S INTERVAL_S COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 limit=$2 interval=$3 t0=${EPOCHREALTIME/./}
  shift 3
  until "$@"; do
    nap "$interval"
    if ((${EPOCHREALTIME/./} - t0 > limit * 1000000)); then
      echo "timed out after $limit s waiting for $what" >&2
      return 1
    fi
  done
}
log_has() { (($(grep -c "$2" "$1" 2>/dev/null || true) >= $3)); }
sub_has_events() { (($(grep -c "$2" "$1/sub.out" 2>/dev/null || true) >= $3)); }

# start_round WORK R N: N fresh simulators (ports WORK/ports/rRdI); returns once all booted (sets
# bench_sim_pids).
start_round() {
  local work=$1 r=$2 n=$3 i
  bench_sim_pids=()
  mkdir -p "$work/ports"
  for i in $(seq "$n"); do
    "$build/device-firmware/healer-sim" --state "$work/r${r}dev$i" --release 1.0.0 --app heartbeat \
      --link "$work/ports/r${r}d$i" --baud "$baud" 2>>"$work/sims-r$r.log" &
    bench_pids+=($!)
    bench_sim_pids+=($!)
  done
  wait_for "round $r's simulators" 60 0.05 log_has "$work/sims-r$r.log" 'healer-sim: device ' "$n"
}

# start_healerd WORK COUNT: healerd, its log timed by tslog.py; returns once COUNT "heal succeeded"
# lines arrived (sets hpid, t_start, t_ready).
start_healerd() {
  local work=$1 n=$2
  bench_tslog_start "$work" --pattern "heal succeeded" --count "$n"
  t_start=$EPOCHREALTIME
  "$healerd" --no-bus --config "$work/healerd.conf" 2>&"$bench_tslog_in" {bench_tslog_in}>&- &
  hpid=$!
  bench_pids+=("$hpid")
  bench_tslog_started
  t_ready=""
  bench_tslog_read t_ready 300
  bench_tslog_close
  [[ -n $t_ready ]] || { echo "healerd: $n heals not seen; log: $work/healerd.log" >&2; return 1; }
}

live_tsv=$out/mqtt-events.tsv
burst_tsv=$out/mqtt-burst.tsv
printf 'mode\tdevices\theal_s\thealerd_cpu_s\tevents\tunique\tevents_per_s\tlat_p50_ms\tlat_p95_ms\tlat_max_ms\tdevice_msgs\tstatus_msgs\tquiet\n' >"$live_tsv"
backlog_tsv=$out/mqtt-backlog.tsv
printf 'fs\tbacklog\toutbox_bytes\topen_s\tdrain_s\tevents_per_s\tacked_s\thealerd_cpu_s\tdups\tvmhwm_kib\trss_after_kib\tanon_after_kib\toutbox_bytes_after\n' >"$backlog_tsv"
printf 'fs\tdevices\tbacklog\toutbox_bytes\tmqtt_dir_kib\treconnect_s\tdrain_s\tevents_per_s\tacked_s\thealerd_cpu_s\tdups\trss_backlog_kib\tanon_backlog_kib\trss_after_kib\tanon_after_kib\toutbox_bytes_after\tstatus_pending_after\ttries\n' >"$burst_tsv"

# live MODE N: one run, a row of mqtt-events.tsv.
live() {
  local mode=$1 n=$2 work port="" extra="" c1 s=""
  local events=nan unique=nan rate=nan p50=nan p95=nan pmax=nan ndev=nan nstatus=nan
  bench_workdir work
  if [[ $mode != off ]]; then
    bench_free_port port
    bench_broker_start "$work" "$port"
    bench_sub_start "$work" "$port" "healerd/bench/#"
    extra=$(mqtt_conf "$port")
  fi
  bench_start_sims "$build" "$work" "$n" "$baud" heartbeat 1.0.0
  BENCH_STATE_BASE=$(state_base "$mode") bench_write_conf "$build" "$work" "$extra"
  bench_wait_quiet
  start_healerd "$work" "$n"
  bench_cpu_ticks c1 "$hpid"
  if [[ $mode != off ]]; then
    wait_for "$n heal-succeeded events at the subscriber" 60 0.1 sub_has_events "$work" '"event":"heal-succeeded"' "$n"
    # The devices' last retained state goes out at most a second after the change (DEVICE_PUBLISH_MS).
    sleep 1.5
    s=$("$bench_python" "$stats" "$work/sub.out" --device-events)
    kv events events "$s"
    kv unique unique "$s"
    kv rate rate "$s"
    kv p50 lat_p50 "$s"
    kv p95 lat_p95 "$s"
    kv pmax lat_max "$s"
    kv ndev devices "$s"
    kv nstatus status "$s"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$n" \
    "$(awk -v a="$t_start" -v b="$t_ready" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v c="$c1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", c / hz }')" \
    "$events" "$unique" "$rate" "$p50" "$p95" "$pmax" "$ndev" "$nstatus" "$bench_quiet" >>"$live_tsv"
  echo "  live $mode $n: $(tail -1 "$live_tsv" | cut -f3-12 | tr '\t' ' ')" >&2
  keep "$work" "live-$mode-$n-$EPOCHSECONDS"
  bench_cleanup
}

# burst FS: one run (tried again, up to 3 times, when healerd reconnected before the subscriber).
burst() {
  local fs=$1 n=$burst_devices try
  for try in 1 2 3; do
    burst_once "$fs" "$n" "$try" && return 0
    echo "  burst $fs: healerd reconnected before the subscriber; again" >&2
  done
  echo "  burst $fs: raced three times; the last run is kept" >&2
}

# The outbox's acked watermark (its first line) reached SEQ.
acked_reached() {
  local w=0
  { read -r w <"$1"; } 2>/dev/null || true
  ((w >= $2))
}

burst_once() {
  local fs=$1 n=$2 try=$3 r work port mqtt_dir c0 c1 line t_broker t_sub t_conn backlog t_acked s
  local bytes kib rss_b anon_b rss_a anon_a bytes_a rate dups pending last drain
  bench_workdir work
  bench_free_port port
  # The subscriber's session made, then the broker stopped: it keeps the session for the restart.
  bench_broker_start "$work" "$port"
  bench_sub_start "$work" "$port" "healerd/bench/#"
  bench_stop "$bench_sub_pid"
  bench_broker_stop
  BENCH_STATE_BASE=$(state_base "$fs") bench_write_conf "$build" "$work" "$(mqtt_conf "$port")"
  mqtt_dir=$(sed -n 's/^state-directory=//p' "$work/healerd.conf")/mqtt
  for r in $(seq "$burst_rounds"); do
    start_round "$work" "$r" "$n"
    if ((r == 1)); then
      bench_wait_quiet
      start_healerd "$work" "$n"
    else
      wait_for "round $r's heals" 300 0.1 log_has "$work/healerd.log" "heal succeeded" $((n * r))
    fi
    if ((r < burst_rounds)); then
      bench_stop "${bench_sim_pids[@]}"
      rm -f "$work"/ports/r"$r"d*
    fi
  done
  sleep 0.5 # the last events of the heals appended
  bytes=$(stat -c %s "$mqtt_dir/outbox.log")
  kib=$(du -sk "$mqtt_dir" | cut -f1)
  bench_status_kib "$hpid" VmRSS rss_b
  bench_status_kib "$hpid" RssAnon anon_b
  bench_wait_quiet
  bench_cpu_ticks c0 "$hpid"
  t_broker=$EPOCHREALTIME
  bench_broker_start "$work" "$port"
  bench_sub_start "$work" "$port" "healerd/bench/#"
  t_sub=$EPOCHREALTIME
  wait_for "healerd's reconnection" 120 0.01 grep -q 'mqtt: connected' "$work/healerd.log"
  line=$(grep -m1 'mqtt: connected' "$work/healerd.log")
  t_conn=${line%% *}
  backlog=$(sed -E 's/.*; ([0-9]+) event\(s\) to deliver.*/\1/' <<<"$line")
  # A fresh outbox: the backlog is seq 1..backlog (the journal line counted it; none was made since).
  last=$backlog
  wait_for "the outbox's acked file" 120 0.01 acked_reached "$mqtt_dir/acked" "$last"
  t_acked=$EPOCHREALTIME
  bench_cpu_ticks c1 "$hpid"
  wait_for "the backlog at the subscriber" 300 0.1 sub_has_events "$work" '/events ' "$backlog"
  sleep 1.5 # a status the face may publish after the drain
  s=$("$bench_python" "$stats" "$work/sub.out" --from "$t_broker")
  kv rate rate "$s"
  kv dups dups "$s"
  kv pending status_pending "$s"
  kv drain last "$s"
  bench_status_kib "$hpid" VmRSS rss_a
  bench_status_kib "$hpid" RssAnon anon_a
  bytes_a=$(stat -c %s "$mqtt_dir/outbox.log")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$n" "$backlog" "$bytes" "$kib" \
    "$(awk -v a="$t_broker" -v b="$t_conn" 'BEGIN { printf "%.2f", b - a }')" \
    "$(awk -v a="$t_conn" -v b="$drain" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v a="$t_conn" -v b="$drain" -v n="$backlog" 'BEGIN { printf "%.0f", n / (b - a) }')" \
    "$(awk -v a="$t_conn" -v b="$t_acked" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v a="$c0" -v b="$c1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')" \
    "$dups" "$rss_b" "$anon_b" "$rss_a" "$anon_a" "$bytes_a" "$pending" "$try" >>"$burst_tsv"
  echo "  burst $fs: $(tail -1 "$burst_tsv" | cut -f3-17 | tr '\t' ' ')" >&2
  keep "$work" "burst-$fs-$EPOCHSECONDS"
  bench_cleanup
  # Raced: healerd was connected before the subscriber was back.
  awk -v c="$t_conn" -v s="$t_sub" 'BEGIN { exit !(c >= s) }'
}

# backlog FS: one run of the full outbox's drain.
backlog() {
  local fs=$1 work port state n bytes c1 t_conn t_acked s rate dups last hwm rss anon bytes_a
  bench_workdir work
  bench_free_port port
  bench_broker_start "$work" "$port"
  bench_sub_start "$work" "$port" "healerd/bench/#"
  mkdir -p "$work/ports"
  BENCH_STATE_BASE=$(state_base "$fs") bench_write_conf "$build" "$work" "$(mqtt_conf "$port")"
  state=$(sed -n 's/^state-directory=//p' "$work/healerd.conf")
  n=$("$bench_python" "$here/make-outbox.py" "$state/mqtt" "$backlog_bytes")
  bytes=$(stat -c %s "$state/mqtt/outbox.log")
  sync
  bench_wait_quiet
  bench_tslog_start "$work" --pattern "mqtt: connected" --count 1
  t_start=$EPOCHREALTIME
  "$healerd" --no-bus --config "$work/healerd.conf" 2>&"$bench_tslog_in" {bench_tslog_in}>&- &
  hpid=$!
  bench_pids+=("$hpid")
  bench_tslog_started
  t_conn=""
  bench_tslog_read t_conn 300
  bench_tslog_close
  [[ -n $t_conn ]] || { echo "healerd did not connect; log: $work/healerd.log" >&2; return 1; }
  wait_for "the outbox's acked file" 900 0.01 acked_reached "$state/mqtt/acked" "$n"
  t_acked=$EPOCHREALTIME
  bench_cpu_ticks c1 "$hpid"
  wait_for "the backlog at the subscriber" 300 0.2 sub_has_events "$work" '/events ' "$n"
  s=$("$bench_python" "$stats" "$work/sub.out")
  kv rate rate "$s"
  kv dups dups "$s"
  kv last last "$s"
  bench_status_kib "$hpid" VmHWM hwm
  bench_status_kib "$hpid" VmRSS rss
  bench_status_kib "$hpid" RssAnon anon
  bytes_a=$(stat -c %s "$state/mqtt/outbox.log")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$fs" "$n" "$bytes" \
    "$(awk -v a="$t_start" -v b="$t_conn" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v a="$t_conn" -v b="$last" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v a="$t_conn" -v b="$last" -v n="$n" 'BEGIN { printf "%.0f", n / (b - a) }')" \
    "$(awk -v a="$t_conn" -v b="$t_acked" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v c="$c1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", c / hz }')" \
    "$dups" "$hwm" "$rss" "$anon" "$bytes_a" >>"$backlog_tsv"
  echo "  backlog $fs: $(tail -1 "$backlog_tsv" | cut -f2-13 | tr '\t' ' ')" >&2
  keep "$work" "backlog-$fs-$EPOCHSECONDS"
  bench_cleanup
}

echo "# healerd MQTT events; $(bench_machine); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(/usr/sbin/mosquitto -h 2>/dev/null | head -1 || true)"
for _ in $(seq "$reps"); do
  for n in "${counts[@]}"; do
    for mode in "${modes[@]}"; do live "$mode" "$n"; done
  done
done
for _ in $(seq "$burst_reps"); do
  for fs in "${burst_fs[@]}"; do burst "$fs"; done
done
if ((backlog_bytes > 0)); then
  for _ in $(seq "$backlog_reps"); do
    for fs in "${burst_fs[@]}"; do backlog "$fs"; done
  done
fi

echo
echo "live: N devices healed at once at $baud baud, the broker up ($reps runs, medians; latency over device events)"
printf '\n| mqtt | devices | heal s | healerd CPU s | events | events/s | latency p50 ms | p95 ms | max ms | device msgs | status msgs |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
"$bench_python" - "$live_tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = rows[0], rows[1:]
col = {k: i for i, k in enumerate(head)}
groups = {}
for r in rows:
    groups.setdefault((r[col["mode"]], int(r[col["devices"]])), []).append(r)
def med(rs, k, fmt):
    v = [float(r[col[k]]) for r in rs if r[col[k]] != "nan"]
    return fmt % statistics.median(v) if v else "-"
order = {"off": 0, "disk": 1, "tmpfs": 2}
for (mode, n), rs in sorted(groups.items(), key=lambda g: (g[0][1], order.get(g[0][0], 9))):
    print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        mode, n, med(rs, "heal_s", "%.2f"), med(rs, "healerd_cpu_s", "%.2f"), med(rs, "events", "%.0f"),
        med(rs, "events_per_s", "%.0f"), med(rs, "lat_p50_ms", "%.1f"), med(rs, "lat_p95_ms", "%.1f"),
        med(rs, "lat_max_ms", "%.1f"), med(rs, "device_msgs", "%.0f"), med(rs, "status_msgs", "%.0f")))
EOF
echo
echo "burst: $burst_rounds x $burst_devices devices healed with the broker stopped, then the broker started ($burst_reps runs, medians)"
printf '\n| state dir | backlog events | outbox.log bytes | mqtt/ KiB on disk | drain s | events/s | acked s | healerd CPU s | RssAnon KiB with backlog / after | retained status outbox_pending after |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
"$bench_python" - "$burst_tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = rows[0], rows[1:]
col = {k: i for i, k in enumerate(head)}
groups = {}
for r in rows:
    groups.setdefault(r[col["fs"]], []).append(r)
def med(rs, k, fmt):
    v = [float(r[col[k]]) for r in rs if r[col[k]] != "nan"]
    return fmt % statistics.median(v) if v else "-"
for fs, rs in groups.items():
    print("| %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
        fs, "/dev/shm" if fs == "tmpfs" else "/var/tmp", med(rs, "backlog", "%.0f"), med(rs, "outbox_bytes", "%.0f"),
        med(rs, "mqtt_dir_kib", "%.0f"), med(rs, "drain_s", "%.3f"), med(rs, "events_per_s", "%.0f"),
        med(rs, "acked_s", "%.3f"), med(rs, "healerd_cpu_s", "%.2f"), med(rs, "anon_backlog_kib", "%.0f"),
        med(rs, "anon_after_kib", "%.0f"), med(rs, "status_pending_after", "%.0f")))
EOF
echo
echo "backlog: a full outbox ($backlog_bytes bytes of payload) drained at healerd's start ($backlog_reps runs, medians)"
printf '\n| state dir | events | outbox.log bytes | start -> connected s | drain s | events/s | acked s | healerd CPU s | VmHWM KiB | RssAnon KiB after | outbox.log bytes after |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
"$bench_python" - "$backlog_tsv" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = rows[0], rows[1:]
col = {k: i for i, k in enumerate(head)}
groups = {}
for r in rows:
    groups.setdefault(r[col["fs"]], []).append(r)
def med(rs, k, fmt):
    v = [float(r[col[k]]) for r in rs if r[col[k]] != "nan"]
    return fmt % statistics.median(v) if v else "-"
for fs, rs in groups.items():
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        fs, med(rs, "backlog", "%.0f"), med(rs, "outbox_bytes", "%.0f"), med(rs, "open_s", "%.3f"),
        med(rs, "drain_s", "%.2f"), med(rs, "events_per_s", "%.0f"), med(rs, "acked_s", "%.2f"),
        med(rs, "healerd_cpu_s", "%.2f"), med(rs, "vmhwm_kib", "%.0f"), med(rs, "anon_after_kib", "%.0f"),
        med(rs, "outbox_bytes_after", "%.0f")))
EOF
echo
echo "runs: $live_tsv $burst_tsv $backlog_tsv"
