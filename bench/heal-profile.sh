#!/usr/bin/env bash
# Where the time of an N-device heal goes (the "why" behind heal-scale.sh).
#
#   bench/heal-profile.sh BUILD_DIR [OUT_DIR]
#   environment: N=64 BAUD=921600 PASSES="plain files syscalls perf cpu" (also: callgrind)
#                QUIET_MAX, QUIET_WAIT_S, BENCH_STATE_BASE, SIM_ARGS: as in heal-scale.sh
#                PLAIN_WRAP="chrt -f 10": run healerd under this in the plain pass (an A/B for
#                how much waiting for a CPU behind the simulators costs)
#
# Each pass is one heal of N devices (release 1.0.0 + heartbeat, as in
# heal-scale.sh) and one of a single device for comparison:
#   plain      no tool attached: total time, CPU seconds of healerd, the
#              simulators, the kernel's kworkers and everything else, and a
#              timeline from healerd's log (attached, heal started, step 1
#              and 2 installed, succeeded: min/median/max over the devices)
#   files      strace --seccomp-bpf (only these syscalls stop): time healerd's
#              main loop spent blocked in fsync/fdatasync/openat/rename/unlink
#   syscalls   strace -c -f: every syscall healerd made, per KiB of modules
#   perf       perf record --call-graph dwarf on healerd: CPU by what it does
#   cpu        cpu-sampler.py every 25 ms: cores used by healerd, the simulators, kworkers and
#              the rest, per phase of the heal, and a plot (heal-profile-cpu.png)
#   callgrind  valgrind --tool=callgrind: instructions per module byte (slow)
# Writes OUT_DIR/heal-profile-*.txt; prints a summary.  Passes or fails nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"

[[ $# -ge 1 ]] || { echo "usage: $0 BUILD_DIR [OUT_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
out=${2:-$build/bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)
n=${N:-64}
baud=${BAUD:-921600}
read -r -a passes <<<"${PASSES:-plain files syscalls perf cpu}"
healerd=$build/agent/daemon/healerd
module_bytes=92288

# heal COUNT WRAPPER...: one heal of COUNT devices with healerd run under WRAPPER (may be empty);
# sets total, hcpu, scpu, kcpu, ocpu; leaves the log in $out/heal-profile-last.log and the
# timeline in $out/heal-profile-timeline.txt
heal() {
  local count=$1 work hpid tpid t0 tdone="" s0 s1 b0 b1 h1 k0 k1 q0 q1 hq
  shift
  bench_workdir work
  bench_wait_quiet
  # shellcheck disable=SC2086 # SIM_ARGS: words for healer-sim (e.g. --no-engines)
  bench_start_sims "$build" "$work" "$count" "$baud" heartbeat 1.0.0 ${SIM_ARGS:-}
  sleep 0.3
  bench_write_conf "$build" "$work"
  bench_tslog_start "$work" --pattern "heal succeeded" --count "$count"
  tpid=$bench_tslog_pid
  bench_cpu_ticks s0 "${bench_sim_pids[@]}"
  bench_runq_ns q0 "${bench_sim_pids[@]}"
  bench_kworker_ticks k0
  bench_sys_busy b0
  t0=$EPOCHREALTIME
  "$@" "$healerd" --no-bus --config "$work/healerd.conf" 2>&"$bench_tslog_in" {bench_tslog_in}>&- &
  hpid=$!
  bench_pids+=("$hpid")
  bench_tslog_started
  local spid=""
  if [[ -n ${cpu_sample:-} ]]; then
    local sims
    sims=$(IFS=,; echo "${bench_sim_pids[*]}")
    "${bench_rt[@]}" "$bench_python" "$here/cpu-sampler.py" --out "$cpu_sample" --interval 0.025 \
      --group healerd="$hpid" --group simulators="$sims" &
    spid=$!
    bench_pids+=("$spid")
  fi
  bench_tslog_read tdone 900
  bench_tslog_close
  [[ -z $spid ]] || bench_stop "$spid"
  # healerd's own pid when a wrapper runs it as a child
  local hp=$hpid c
  for c in $(cat /proc/"$hpid"/task/*/children 2>/dev/null); do [[ $(cat /proc/"$c"/comm 2>/dev/null) == healerd* ]] && hp=$c; done
  bench_cpu_ticks h1 "$hp"
  bench_cpu_ticks s1 "${bench_sim_pids[@]}"
  bench_runq_ns q1 "${bench_sim_pids[@]}"
  bench_runq_ns hq "$hp"
  bench_kworker_ticks k1
  bench_sys_busy b1
  # A wrapper (strace, perf) writes its report when healerd ends: stop healerd, then wait for it.
  kill -INT "$hp" 2>/dev/null || true
  [[ $hp != "$hpid" ]] && kill -INT "$hpid" 2>/dev/null || true
  wait "$hpid" 2>/dev/null || true
  bench_stop "${bench_sim_pids[@]}" "$tpid"
  cp "$work/healerd.log" "$out/heal-profile-last.log"
  [[ -n $tdone ]] || { echo "not all $count healed (see $out/heal-profile-last.log)" >&2; tdone=nan; }
  t0_last=$t0
  total=$(awk -v a="$t0" -v b="$tdone" 'BEGIN { printf "%.3f", b - a }')
  hcpu=$(awk -v t="$h1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", t / hz }')
  scpu=$(awk -v a="$s0" -v b="$s1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
  kcpu=$(awk -v a="$k0" -v b="$k1" -v hz="$bench_clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')
  ocpu=$(awk -v a="$b0" -v b="$b1" -v h="$h1" -v s="$scpu" -v k="$kcpu" -v hz="$bench_clk_tck" \
    'BEGIN { o = (b - a - h) / hz - s - k; printf "%.2f", o < 0 ? 0 : o }')
  runq=$(awk -v h="$hq" -v a="$q0" -v b="$q1" -v n="$count" \
    'BEGIN { printf "healerd %.3f s, simulators %.3f s (%.1f ms each)", h / 1e9, (b - a) / 1e9, (b - a) / 1e6 / n }')
  timeline "$t0" "$out/heal-profile-last.log" >"$out/heal-profile-timeline.txt"
  bench_cleanup
}

# timeline T0 LOG: when each device reached each point (s after healerd started).
timeline() {
  python3 - "$1" "$2" <<'EOF'
import re, sys
t0 = float(sys.argv[1]); per = {}; serving = None
for line in open(sys.argv[2], errors="replace"):
    t = float(line.split()[0]) - t0
    if serving is None and "serving" in line:
        serving = t
    m = re.search(r"\]: \[(\w+)\] (.*)", line)
    if not m:
        continue
    d, msg = m.groups()
    p = per.setdefault(d, {})
    for key, pat in [("attached", "attached on"), ("started", "starting the heal"), ("step1", "(step 1 of"),
                     ("step2", "(step 2 of"), ("healed", "heal succeeded")]:
        if pat in msg:
            p.setdefault(key, t)
    # The device's LOG frame after FINISH was accepted, just before it resets.
    if "update staged" in msg:
        p.setdefault("staged2" if "staged1" in p else "staged1", t)
def st(v):
    v = sorted(v)
    return "%6.3f %6.3f %6.3f" % (v[0], v[len(v) // 2], v[-1]) if v else "     -      -      -"
print("    healerd serving at %.3f s" % (serving if serving is not None else float("nan")))
print("    %-28s %6s %6s %6s" % ("s after healerd started", "min", "median", "max"))
for k in ["attached", "started", "staged1", "step1", "staged2", "step2", "healed"]:
    print("    %-28s %s" % (k, st([p[k] for p in per.values() if k in p])))
print("    %-28s %6s %6s %6s" % ("durations, s", "min", "median", "max"))
for a, b, what in [("started", "staged1", "BEGIN, module 1 sent, FINISH"), ("staged1", "step1", "reset, boot, describe"),
                   ("step1", "staged2", "module 2"), ("staged2", "step2", "reset, boot, describe"),
                   ("step2", "healed", ""), ("started", "healed", "the whole heal")]:
    print("    %-28s %s  %s" % ("%s -> %s" % (a, b), st([p[b] - p[a] for p in per.values() if a in p and b in p]), what))
EOF
}

summary=$out/heal-profile-summary.txt
{
  echo "# healerd heal profile: $n devices at $baud baud; $(bench_machine); $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$summary"

for pass in "${passes[@]}"; do
  case $pass in
  plain)
    for c in 1 "$n"; do
      echo "## plain, $c device(s)${PLAIN_WRAP:+, healerd under: $PLAIN_WRAP}" | tee -a "$summary"
      # shellcheck disable=SC2086
      heal "$c" ${PLAIN_WRAP:-}
      tee -a "$summary" <"$out/heal-profile-timeline.txt"
      printf '    total %s s; CPU s: healerd %s, simulators %s, kworkers %s, other %s\n' "$total" "$hcpu" "$scpu" \
        "$kcpu" "$ocpu" | tee -a "$summary"
      printf '    waiting for a CPU (run queue): %s\n' "$runq" | tee -a "$summary"
    done
    ;;
  files)
    for c in 1 "$n"; do
      f=$out/heal-profile-files-$c.txt
      heal "$c" strace -f --seccomp-bpf -T -qq -e trace=fsync,fdatasync,openat,rename,renameat2,unlink,unlinkat \
        -o "$f" >/dev/null
      printf '## files: strace --seccomp-bpf -T of healerd file syscalls, %s device(s): total %s s (strace attached)\n' \
        "$c" "$total" | tee -a "$summary"
    done
    # Startup (store seeding) is the same in both: the difference is what the N-1 more heals cost.
    awk -v n="$n" 'function add(f, w) { while ((getline l < f) > 0) if (match(l, /<[0-9.]+>$/)) {
                       t = substr(l, RSTART + 1, RLENGTH - 2); split(l, x, " "); split(x[2], a, "("); c[a[1], w]++; s[a[1], w] += t; k[a[1]] = 1 } }
         BEGIN { add(ARGV[1], 1); add(ARGV[2], 2); ARGV[1] = ARGV[2] = ""
                 printf "    %-10s %9s %9s %12s %14s\n", "syscall", "1 device", n " devs", "per device", "main loop s"
                 for (y in k) { printf "    %-10s %9d %9d %12.1f %14.3f\n", y, c[y, 1], c[y, 2], (c[y, 2] - c[y, 1]) / (n - 1), s[y, 2]; all += s[y, 2] }
                 printf "    blocked in file syscalls during the %d-device run: %.3f s\n", n, all }' \
      "$out/heal-profile-files-1.txt" "$out/heal-profile-files-$n.txt" | tee -a "$summary"
    ;;
  syscalls)
    for c in 1 "$n"; do
      f=$out/heal-profile-syscalls-$c.txt
      heal "$c" strace -f -c -o "$f" >/dev/null
      printf '## syscalls: strace -c -f, %s device(s): total %s s (strace attached)\n' "$c" "$total" | tee -a "$summary"
    done
    # The difference between N devices and 1 is what N-1 more heals cost: per KiB of module sent.
    printf '    %-12s %9s %9s %16s\n' syscall "1 device" "$n devs" "per KiB (N-1)" | tee -a "$summary"
    awk -v n="$n" -v kib="$(((n - 1) * module_bytes / 1024))" '
         function add(f, w) { while ((getline l < f) > 0) { m = split(l, x, " "); if (m >= 5 && x[1] ~ /^[0-9.]+$/) { c[x[m], w] = x[4]; k[x[m]] = 1 } } }
         BEGIN { add(ARGV[1], 1); add(ARGV[2], 2); ARGV[1] = ARGV[2] = ""
                 for (y in k) if (c[y, 2] - c[y, 1] > kib / 20 || y == "total") printf "    %-12s %9d %9d %16.2f\n", y, c[y, 1], c[y, 2], (c[y, 2] - c[y, 1]) / kib }' \
      "$out/heal-profile-syscalls-1.txt" "$out/heal-profile-syscalls-$n.txt" | sort -k4 -rn | tee -a "$summary"
    ;;
  perf)
    command -v perf >/dev/null || continue
    f=$out/heal-profile-perf.data
    echo "## perf: healerd's CPU by what it does, $n devices (perf record --call-graph dwarf -F 999)" | tee -a "$summary"
    heal "$n" perf record -q --call-graph dwarf,16384 -F 999 -e cpu-clock -o "$f" -- >/dev/null
    printf '    total %s s (perf attached); healerd %s s CPU\n' "$total" "$hcpu" | tee -a "$summary"
    perf report -i "$f" --children --sort sym --stdio -g none 2>/dev/null >"$out/heal-profile-perf.txt" || true
    # Inclusive share of healerd's samples for the functions that tell the story.
    awk '$3 == "[.]" || $3 == "[k]" { name = $4; for (i = 5; i <= NF; i++) name = name " " $i; if (!(name in seen)) { seen[name] = $1 } }
         END {
           n = split("g_main_context_dispatch|__poll|__GI___poll (inlined)|g_main_context_check|g_main_context_prepare|on_input|__GI___libc_read (inlined)|on_frame|on_ack (inlined)|send_window|healer_link_build_data|fw_crc32_update|on_output|__GI___libc_write|persist|__GI_fsync (inlined)|healer_store_read_verified|healer_sha256|on_describe_reply (inlined)|healer_describe_parse|healer_journal_event_full|start_job|run_step", want, "|")
           for (i = 1; i <= n; i++) if (want[i] in seen) printf "    %-32s %7s of healerd CPU (inclusive)\n", want[i], seen[want[i]]
         }' "$out/heal-profile-perf.txt" | tee -a "$summary"
    rm -f "$f"
    ;;
  cpu)
    # Who used the CPUs, 25 ms at a time, against the phases of the heal.
    f=$out/heal-profile-cpu.dat
    echo "## cpu: cores used over time, $n devices (cpu-sampler.py every 25 ms)" | tee -a "$summary"
    cpu_sample=$f heal "$n"
    cpu_sample=""
    printf '    total %s s\n' "$total" | tee -a "$summary"
    python3 - "$f" "$t0_last" "$out/heal-profile-last.log" "$out/heal-profile-cpu-phases.dat" <<'EOF' | tee -a "$summary"
import re, sys
data, t0, log, phases_out = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = [[float(x) for x in l.split()] for l in open(data) if not l.startswith("#")]
per = {}
for line in open(log, errors="replace"):
    t = float(line.split()[0]) - t0
    m = re.search(r"\]: \[(\w+)\] (.*)", line)
    if not m:
        continue
    p = per.setdefault(m.group(1), {})
    for key, pat in [("started", "starting the heal"), ("step1", "(step 1 of"), ("step2", "(step 2 of"),
                     ("healed", "heal succeeded")]:
        if pat in m.group(2):
            p.setdefault(key, t)
    if "update staged" in m.group(2):
        p.setdefault("staged2" if "staged1" in p else "staged1", t)
def at(k, f):
    v = [p[k] for p in per.values() if k in p]
    return f(v) if v else float("nan")
b = [("start", 0.0), ("first BEGIN", at("started", min)), ("first FINISH 1", at("staged1", min)),
     ("last step 1", at("step1", max)), ("first FINISH 2", at("staged2", min)), ("last step 2", at("step2", max)),
     ("last healed", at("healed", max))]
with open(phases_out, "w") as f:
    for name, t in b:
        f.write("%.4f \"%s\"\n" % (t, name))
print("    %-34s %6s %8s %8s %8s %8s %8s" % ("mean cores busy in", "s", "all", "healerd", "sims", "kworker", "other"))
for (n1, a), (n2, z) in zip(b, b[1:]):
    sel = [r for r in rows if a <= r[0] - t0 < z]
    if not sel:
        continue
    m = [sum(r[i] for r in sel) / len(sel) for i in range(1, 5)]
    print("    %-34s %6.3f %8.2f %8.2f %8.2f %8.2f %8.2f" % ("%s .. %s" % (n1, n2), z - a, m[0], m[1], m[2], m[3],
                                                          max(0.0, m[0] - m[1] - m[2] - m[3])))
EOF
    if command -v gnuplot >/dev/null; then
      gnuplot -e "data='$f'; t0=$t0_last; phases='$out/heal-profile-cpu-phases.dat'; out='$out/heal-profile-cpu.png'; n=$n; baud=$baud" \
        "$here/heal-profile-cpu.gp" && echo "    plot: $out/heal-profile-cpu.png" | tee -a "$summary"
    fi
    ;;
  callgrind)
    f=$out/heal-profile-callgrind.out
    echo "## callgrind: healerd's instructions, $n devices (valgrind --tool=callgrind)" | tee -a "$summary"
    heal "$n" valgrind -q --tool=callgrind --callgrind-out-file="$f" >/dev/null
    printf '    total %s s (under valgrind)\n' "$total" | tee -a "$summary"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null | head -60 >"$out/heal-profile-callgrind.txt" || true
    awk -v bytes="$((n * module_bytes))" '/PROGRAM TOTALS/ { gsub(",", "", $1); printf "    %s instructions: %.0f per module byte\n", $1, $1 / bytes }' \
      "$out/heal-profile-callgrind.txt" | tee -a "$summary"
    ;;
  esac
done
echo "summary: $summary"
