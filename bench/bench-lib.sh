# shellcheck shell=bash
# Shared by the heal-* benchmark scripts (sourced, not run).
#
# Every process a script starts goes through bench_spawn (or is added to
# bench_pids by hand), so the EXIT trap ends exactly those, by pid; work
# directories made with bench_workdir are removed.  Reading /proc uses bash
# builtins only: no fork disturbs what is measured.

bench_pids=()
bench_dirs=()
bench_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bench_pids=()
  for p in "${bench_dirs[@]}"; do rm -rf "$p"; done
  bench_dirs=()
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

# bench_workdir VAR: a fresh directory, removed at exit.
bench_workdir() {
  local d
  d=$(mktemp -d -t healerd-bench.XXXXXX)
  bench_dirs+=("$d")
  printf -v "$1" '%s' "$d"
}

# bench_stop PID...: end these (started by us) and forget them.
bench_stop() {
  local p q keep=()
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  for q in "${bench_pids[@]}"; do
    for p in "$@"; do [[ $q == "$p" ]] && continue 2; done
    keep+=("$q")
  done
  bench_pids=("${keep[@]}")
}

bench_clk_tck=$(getconf CLK_TCK)

# bench_cpu_ticks VAR PID...: utime+stime (clock ticks) summed over the pids
# (all threads; a simulator's reset restarts its firmware in the same process).
# Gone pids count 0.
bench_cpu_ticks() {
  local var=$1 sum=0 p line rest
  shift
  for p in "$@"; do
    line=""
    { read -r line </proc/"$p"/stat; } 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2206
    local f=($rest)
    sum=$((sum + f[11] + f[12]))
  done
  printf -v "$var" '%s' "$sum"
}

# bench_sys_busy VAR: ticks all CPUs spent not idle (from /proc/stat).
bench_sys_busy() {
  local cpu u n s i w irq sirq st rest
  read -r cpu u n s i w irq sirq st rest </proc/stat
  printf -v "$1" '%s' $((u + n + s + irq + sirq + st))
}

# bench_status_kib PID FIELD VAR: a "kB" line of /proc/PID/status (VmRSS, VmHWM, ...).
bench_status_kib() {
  local k v u
  while read -r k v u; do
    if [[ $k == "$2:" ]]; then
      printf -v "$3" '%s' "$v"
      return 0
    fi
  done </proc/"$1"/status
  printf -v "$3" '%s' 0
}

# bench_switches VAR PID: voluntary+involuntary context switches of each thread
# of PID (from /proc/PID/task/*/status), as "TID:COUNT ..."; each is a wakeup or a
# preemption.  bench_switches_delta VAR BEFORE AFTER: their increase, counting
# threads that started in between from 0 (the switches of threads that ended in
# between are not seen).
bench_switches() {
  local var=$1 pid=$2 out="" t k v n
  for t in /proc/"$pid"/task/*; do
    n=0
    while read -r k v; do
      case $k in
      voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) n=$((n + v)) ;;
      esac
    done <"$t/status" 2>/dev/null || continue
    out+="${t##*/}:$n "
  done
  printf -v "$var" '%s' "$out"
}
bench_switches_delta() {
  local var=$1 e tid n sum=0
  local -A before=()
  for e in $2; do before[${e%%:*}]=${e##*:}; done
  for e in $3; do
    tid=${e%%:*}
    n=${e##*:}
    sum=$((sum + n - ${before[$tid]:-0}))
  done
  printf -v "$var" '%s' "$sum"
}

# bench_machine: one line naming the machine, for the tables.
bench_machine() {
  printf '%s, %s cores, %s' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" \
    "$(uname -r)"
}

# bench_start_sims BUILD WORK N BAUD APP RELEASE [EXTRA...]: N simulators with
# their ports in WORK/ports; returns once every one has booted (sets bench_sim_pids).
bench_start_sims() {
  local build=$1 work=$2 n=$3 baud=$4 app=$5 release=$6 i
  shift 6
  bench_sim_pids=()
  mkdir -p "$work/ports"
  for i in $(seq "$n"); do
    "$build/device-firmware/healer-sim" --state "$work/dev$i" --release "$release" --app "$app" \
      --link "$work/ports/dev$i" --baud "$baud" "$@" 2>>"$work/sims.log" &
    bench_pids+=($!)
    bench_sim_pids+=($!)
  done
  # Booted: the line a simulator prints once its flash is programmed and it said HELLO.
  local tries=0
  until [[ $(grep -c 'healer-sim: device ' "$work/sims.log" 2>/dev/null || true) -ge $n ]]; do
    sleep 0.05
    tries=$((tries + 1))
    ((tries < 1200)) || { echo "simulators did not start" >&2; return 1; }
  done
}

# bench_write_conf BUILD WORK [EXTRA]: WORK/healerd.conf for WORK/ports/*; EXTRA (whole groups) is
# appended.  The state directory is WORK/state, or a fresh one under $BENCH_STATE_BASE when set
# (e.g. /dev/shm: a tmpfs, where fsync costs nothing; for A/B runs).
bench_write_conf() {
  local build=$1 work=$2 extra=${3:-} src state=$2/state
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -n ${BENCH_STATE_BASE:-} ]]; then
    state=$(mktemp -d "$BENCH_STATE_BASE/healerd-bench-state.XXXXXX")
    bench_dirs+=("$state")
  fi
  printf '[daemon]\nstate-directory=%s\n[serial]\nports=%s/ports/*\n[store]\nmodule-directories=%s\ntrusted-keys=%s\n%s' \
    "$state" "$work" "$build/device-firmware/modules" "$src/device-firmware/keys" "$extra" >"$work/healerd.conf"
}

# bench_median VAR VALUES...
bench_median() {
  local var=$1
  shift
  printf -v "$var" '%s' "$(printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
}

# bench_kworker_ticks VAR: CPU ticks of the kernel's workqueue threads (kworker/*), where
# pty writes are pushed to the reading side (flush_to_ldisc): line work no process is charged for.
bench_kworker_ticks() {
  local var=$1 sum=0 f line rest
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    [[ $line == *"(kworker/"* ]] || continue
    rest=${line##*) }
    # shellcheck disable=SC2206
    local v=($rest)
    sum=$((sum + v[11] + v[12]))
  done
  printf -v "$var" '%s' "$sum"
}

# bench_wait_quiet: before a measured run, wait (up to $QUIET_WAIT_S, default 120; 0: not at all)
# until the rest of the machine used under $QUIET_MAX (default 0.25) of a core for 2 s running,
# so that other people's builds and tests disturb the numbers less.  Sets bench_quiet to the
# busy fraction last seen (of one core).
bench_wait_quiet() {
  local max=${QUIET_MAX:-0.25} limit=${QUIET_WAIT_S:-120} waited=0 b0 b1 ok=0
  bench_quiet=nan
  ((limit > 0)) || return 0
  while ((waited < limit)); do
    bench_sys_busy b0
    sleep 1
    bench_sys_busy b1
    waited=$((waited + 1))
    bench_quiet=$(awk -v a="$b0" -v b="$b1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
    if awk -v q="$bench_quiet" -v m="$max" 'BEGIN { exit !(q <= m) }'; then
      ok=$((ok + 1))
      ((ok >= 2)) && return 0
    else
      ok=0
    fi
  done
  echo "  (the machine did not get quiet in $limit s: $bench_quiet of a core busy; measuring anyway)" >&2
}

# bench_runq_ns VAR PID...: nanoseconds the pids' threads spent runnable but waiting for a CPU
# (second field of /proc/PID/task/TID/schedstat): time lost to CPU contention.
bench_runq_ns() {
  local var=$1 sum=0 p t a b c
  shift
  for p in "$@"; do
    for t in /proc/"$p"/task/*/schedstat; do
      { read -r a b c <"$t"; } 2>/dev/null || continue
      sum=$((sum + b))
    done
  done
  printf -v "$var" '%s' "$sum"
}

# The timing helpers (tslog.py, pty-relay.py) run with a real-time priority when allowed: with
# 64 simulators on 2 cores, a helper at normal priority waits on the run queue and stamps lines late.
bench_rt=()
if chrt -f 50 true 2>/dev/null; then bench_rt=(chrt -f 50); fi
# Debian's python3 for them, not a version manager's shim first in PATH (pyenv's runs several
# bash scripts before Python starts: ~0.2 s of CPU at that real-time priority, seen in heal-scale).
bench_python=python3
if [[ -x /usr/bin/python3 ]]; then bench_python=/usr/bin/python3; fi

# bench_tslog_start WORK TSLOG-ARGS...: tslog.py (real-time priority) timing the lines written to
# WORK/err into WORK/healerd.log; returns once it runs, so its start-up is over before the caller
# starts a clock.  Start healerd with 2>&"$bench_tslog_in" {bench_tslog_in}>&-, then call
# bench_tslog_started; read its reports with bench_tslog_read VAR TIMEOUT_S; bench_tslog_close at
# the end.  Sets bench_tslog_pid.
bench_tslog_start() {
  local work=$1
  shift
  rm -f "$work/err" "$work/done"
  mkfifo "$work/err" "$work/done"
  # Held open read-write, so tslog's open of its stdout does not wait for a reader.
  exec {bench_tslog_out}<>"$work/done"
  "${bench_rt[@]}" "$bench_python" "$bench_lib_dir/tslog.py" --input "$work/err" --log "$work/healerd.log" "$@" \
    >"$work/done" &
  bench_tslog_pid=$!
  bench_pids+=("$bench_tslog_pid")
  # A FIFO's write end opens once its reader has opened it: tslog.py does after Python started.
  exec {bench_tslog_in}>"$work/err"
}
bench_tslog_started() { exec {bench_tslog_in}>&-; }
bench_tslog_read() { read -r -t "$2" "$1" <&"$bench_tslog_out" || true; }
bench_tslog_close() { exec {bench_tslog_out}<&-; }

# ---- MQTT (issue 18): a private mosquitto and a subscriber that stamps what arrives ----

# bench_free_port VAR: a TCP port of 127.0.0.1 free right now (the kernel's pick, released again:
# mosquitto cannot listen on port 0 and say which it got).
bench_free_port() {
  printf -v "$1" '%s' "$("$bench_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
}

# bench_broker_start WORK PORT: mosquitto on 127.0.0.1:PORT, anonymous, its files in WORK/broker.
# Persistence on (in that directory, saved when it stops), unlimited queues: a subscriber's
# persistent session and what was queued for it survive bench_broker_stop and the next start.
# Returns once it listens (its log, WORK/broker/log, says "running").  Sets bench_broker_pid.
bench_broker_start() {
  local work=$1 port=$2 dir=$1/broker tries=0 from=0
  mkdir -p "$dir"
  [[ -f $dir/log ]] && from=$(wc -l <"$dir/log")
  {
    printf 'persistence true\npersistence_location %s/\nautosave_interval 0\n' "$dir"
    printf 'max_queued_messages 0\n'
    printf 'log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n'
    printf 'log_type subscribe\nconnection_messages true\nallow_anonymous true\n'
    # As root it would switch to the user "mosquitto", who may not write the work directory.
    [[ $(id -u) == 0 ]] && printf 'user root\n'
    printf 'listener %s 127.0.0.1\n' "$port"
  } >"$dir/mosquitto.conf"
  /usr/sbin/mosquitto -c "$dir/mosquitto.conf" 2>>"$dir/log" &
  bench_broker_pid=$!
  bench_pids+=("$bench_broker_pid")
  until tail -n +$((from + 1)) "$dir/log" 2>/dev/null | grep -q ' running$'; do
    sleep 0.02
    tries=$((tries + 1))
    ((tries < 500)) || { echo "mosquitto did not start on port $port: $dir/log" >&2; return 1; }
    kill -0 "$bench_broker_pid" 2>/dev/null || { echo "mosquitto exited: $dir/log" >&2; return 1; }
  done
}

# bench_broker_stop: SIGTERM (it saves its database) and wait.
bench_broker_stop() { bench_stop "$bench_broker_pid"; }

# bench_sub_start WORK PORT FILTER: mosquitto_sub (real-time priority when allowed, MQTT v5, QoS 1,
# a persistent session "healerd-bench-sub": what arrives while it is away is kept for it) appending
# "ARRIVAL RETAINED TOPIC PAYLOAD" to WORK/sub.out: ARRIVAL stamped by mosquitto_sub itself as the
# message arrives (%U, CLOCK_REALTIME, as $EPOCHREALTIME), RETAINED 1 for what the broker replays
# from its retained store at a subscription.  Returns once the broker logged the subscription.
# Sets bench_sub_pid.  mosquitto_sub reconnects by itself when the broker comes back.
bench_sub_start() {
  local work=$1 port=$2 filter=$3 tries=0
  "${bench_rt[@]}" mosquitto_sub -h 127.0.0.1 -p "$port" -V mqttv5 -q 1 -c -i healerd-bench-sub -x 86400 \
    -t "$filter" -F '%U %r %t %p' >>"$work/sub.out" 2>>"$work/sub.err" &
  bench_sub_pid=$!
  bench_pids+=("$bench_sub_pid")
  until grep -q "healerd-bench-sub 1 $filter" "$work/broker/log" 2>/dev/null; do
    sleep 0.02
    tries=$((tries + 1))
    ((tries < 500)) || { echo "mosquitto_sub did not subscribe: $work/sub.err" >&2; return 1; }
  done
}
