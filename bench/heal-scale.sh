#!/usr/bin/env bash
# Scale: 1..64 devices healed at once, at each baud: total time against one
# device, and where the CPU went (healerd, the simulators, everything else).
#
#   bench/heal-scale.sh BUILD_DIR [OUT_DIR]
#   environment: BAUDS="115200 921600" COUNTS="1 8 32 64" REPS=2
#                QUIET_MAX=0.25 QUIET_WAIT_S=120: before each run, wait up to QUIET_WAIT_S for
#                the machine's other load to stay under QUIET_MAX of a core (see bench-lib.sh)
#                BENCH_STATE_BASE=/dev/shm: healerd's state directory on a tmpfs (A/B for fsync)
#                SIM_ARGS=--no-engines: more healer-sim options (A/B: the firmware hashing in software)
#
# Each device runs release 1.0.0 with the heartbeat application (it needs
# 1.1.0's two system parts: 92,288 bytes, two resets) on a pty paced at BAUD.
# Simulators are started and booted first; the clock starts when healerd
# does (fresh state directory, so its store is seeded each run, as in
# heal-many.sh) and stops when the Nth "heal succeeded" line arrives (timed
# by tslog.py as it is written, no polling).  CPU seconds are utime+stime
# from /proc over that window; "kworker" is the kernel's workqueue threads
# (pty writes are pushed to the reader there, charged to no process);
# "other" is the rest of the machine's busy time in it (other people's
# compilers and tests, the shell): the noise indicator.
#
# Writes OUT_DIR/heal-scale.tsv (every run), OUT_DIR/heal-scale-summary.dat
# and OUT_DIR/heal-scale.png (x devices, y total / one device, a line per
# baud, the 1.1 target), and prints the table.  Passes or fails nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
out=${2:-$build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
read -r -a bauds <<<"${BAUDS:-115200 921600}"
read -r -a counts <<<"${COUNTS:-1 8 32 64}"
reps=${REPS:-2}
healerd=$build/agent/daemon/healerd
for f in "$healerd" "$build/device-firmware/healer-sim"; do
  [[ -x $f ]] || { echo "build first: $f missing" >&2; exit 1; }
done

# run BAUD N: sets r_total r_hcpu r_scpu r_kcpu r_other r_ok r_retries r_startup
run() {
  local baud=$1 n=$2 work hpid tpid t0 tdone s0 s1 b0 b1 h1 k0 k1 line
  bench_workdir work
  bench_wait_quiet
  # shellcheck disable=SC2086 # SIM_ARGS: words for healer-sim (e.g. --no-engines)
  bench_start_sims "$build" "$work" "$n" "$baud" heartbeat 1.0.0 ${SIM_ARGS:-}
  sleep 0.3 # every HELLO is on the line
  bench_write_conf "$build" "$work"
  bench_tslog_start "$work" --pattern "heal succeeded" --count "$n"
  tpid=$bench_tslog_pid
  bench_cpu_ticks s0 "${bench_sim_pids[@]}"
  bench_kworker_ticks k0
  bench_sys_busy b0
  t0=$EPOCHREALTIME
  "$healerd" --no-bus --config "$work/healerd.conf" 2>&"$bench_tslog_in" {bench_tslog_in}>&- &
  hpid=$!
  bench_pids+=("$hpid")
  bench_tslog_started
  tdone=""
  bench_tslog_read tdone 600
  bench_tslog_close
  bench_cpu_ticks h1 "$hpid"
  bench_cpu_ticks s1 "${bench_sim_pids[@]}"
  bench_kworker_ticks k1
  bench_sys_busy b1
  bench_stop "$hpid" "${bench_sim_pids[@]}" "$tpid"
  r_ok=$(grep -c 'heal succeeded' "$work/healerd.log" || true)
  r_retries=$(grep -c 'heal attempt' "$work/healerd.log" || true)
  line=$(grep -m1 'serving' "$work/healerd.log" || true)
  r_startup=$(awk -v t0="$t0" -v l="$line" 'BEGIN { split(l, f, " "); printf "%.3f", (l == "" ? 0 : f[1] - t0) }')
  if [[ -z $tdone ]]; then
    echo "baud $baud, $n devices: not all healed within 600 s ($r_ok did); log kept in $out/failed-$baud-$n.log" >&2
    cp "$work/healerd.log" "$out/failed-$baud-$n.log"
    tdone=nan
  fi
  r_total=$(awk -v a="$t0" -v b="$tdone" 'BEGIN { printf "%.3f", b - a }')
  r_hcpu=$(awk -v t="$h1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", t / hz }')
  r_scpu=$(awk -v a="$s0" -v b="$s1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
  r_kcpu=$(awk -v a="$k0" -v b="$k1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
  r_other=$(awk -v a="$b0" -v b="$b1" -v h="$h1" -v s0="$s0" -v s1="$s1" -v k0="$k0" -v k1="$k1" -v hz="$bench_clk_tck" \
    'BEGIN { o = (b - a - h - (s1 - s0) - (k1 - k0)) / hz; printf "%.2f", o < 0 ? 0 : o }')
  rm -rf "$work"
}

tsv=$out/heal-scale.tsv
printf 'baud\tdevices\trep\ttotal_s\thealerd_cpu_s\tsims_cpu_s\tother_cpu_s\thealed\tretries\tstartup_s\tkworker_cpu_s\n' >"$tsv"
echo "# healerd: N devices healed at once (1.0.0 -> 1.1.0, 92,288 bytes each), $reps runs each"
echo "# $(bench_machine); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$reps"); do
  for baud in "${bauds[@]}"; do
    for n in "${counts[@]}"; do
      run "$baud" "$n"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$baud" "$n" "$rep" "$r_total" "$r_hcpu" "$r_scpu" \
        "$r_other" "$r_ok" "$r_retries" "$r_startup" "$r_kcpu" >>"$tsv"
      printf '  run %s: %7s baud %3s devices: %7s s (healerd %s s CPU, sims %s s, kworkers %s s, other %s s)\n' \
        "$rep" "$baud" "$n" "$r_total" "$r_hcpu" "$r_scpu" "$r_kcpu" "$r_other" >&2
    done
  done
done

# Medians per (baud, devices); the ratio is against the median for one device at that baud.
summary=$out/heal-scale-summary.dat
awk -F'\t' -v reps="$reps" '
  function median(s,   a, k, i, j, v) {
    k = split(s, a, " ")
    for (i = 2; i <= k; i++) { v = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  NR > 1 { key = $1 " " $2; if (!(key in T)) { order[++nk] = key }
           T[key] = T[key] " " $4; H[key] = H[key] " " $5; S[key] = S[key] " " $6; O[key] = O[key] " " $7; K[key] = K[key] " " $11
           if (!(key in LO) || $4 + 0 < LO[key]) LO[key] = $4 + 0; if (!(key in HI) || $4 + 0 > HI[key]) HI[key] = $4 + 0 }
  END {
    print "# baud devices total_s x_one min_s max_s healerd_cpu_s sims_cpu_s other_cpu_s cpu_used_of_2 kworker_cpu_s"
    prev = ""
    for (i = 1; i <= nk; i++) {
      split(order[i], k, " ")
      t = median(T[order[i]]); if (k[2] == 1) one[k[1]] = t
    }
    for (i = 1; i <= nk; i++) {
      split(order[i], k, " ")
      if (prev != "" && k[1] != prev) printf "\n\n"
      prev = k[1]
      t = median(T[order[i]]); h = median(H[order[i]]); s = median(S[order[i]]); o = median(O[order[i]]); w = median(K[order[i]])
      printf "%d %d %.3f %.3f %.3f %.3f %.2f %.2f %.2f %.2f %.2f\n", k[1], k[2], t, t / one[k[1]], LO[order[i]], HI[order[i]], h, s, o, (h + s + o + w) / (2 * t), w
    }
  }' "$tsv" >"$summary"

printf '\n| baud | devices | total s (median) | min..max s | x one device | healerd CPU s | sims CPU s | kworker CPU s | other CPU s | 2 cores busy |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
awk '!/^#/ && NF { printf "| %d | %d | %.2f | %.2f..%.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d%% |\n", $1, $2, $3, $5, $6, $4, $7, $8, $11, $9, $10 * 100 }' "$summary"

if command -v gnuplot >/dev/null; then
  gnuplot -e "data='$summary'; out='$out/heal-scale.png'; bauds='${bauds[*]}'" "$here/heal-scale.gp"
  echo "plot: $out/heal-scale.png"
fi
echo "runs: $tsv"
