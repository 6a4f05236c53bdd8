#!/usr/bin/env bash
# Detection latency: from a device in safe mode saying HELLO to healerd's
# first update frames (BEGIN, then the first DATA) to it.
#
#   bench/heal-detect.sh BUILD_DIR [OUT_DIR]
#   environment: BAUDS="115200 921600" DEVICES=20 REPS=2
#
# healerd runs (--verbose) with DEVICES ports made by pty-relay.py, silent at
# first.  One at a time, a simulator (release 1.0.0, heartbeat: safe mode,
# its application's dependencies unmet) is plugged into a port: its boot
# HELLO reaches healerd then.  The relay times the end of each frame on the
# wire: HELLO, DESCRIBE, DESCRIBE_REPLY, BEGIN, UPDATE_READY, the first DATA;
# tslog.py times healerd's log lines (attached, heal started).  The next
# device is plugged once the previous heal succeeded, so each is measured on
# an otherwise quiet healerd.
#
# Writes OUT_DIR/heal-detect.tsv (one row per device and run) and prints
# median and p95 of each step.  Passes or fails nothing.
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
devices=${DEVICES:-20}
reps=${REPS:-2}
healerd=$build/agent/daemon/healerd
tsv=$out/heal-detect.tsv
printf 'baud\trep\tdevice\thello\tdescribe\tdescribe_reply\tattached_log\theal_started_log\tbegin\tupdate_ready\tdata\n' >"$tsv"

run() {
  local baud=$1 rep=$2 work rfd sfd i line dev ev t
  bench_workdir work
  mkdir -p "$work/ports" "$work/sims"
  bench_start_sims "$build" "$work/sims" "$devices" "$baud" heartbeat 1.0.0
  mkfifo "$work/control" "$work/relay.out" "$work/err" "$work/succeeded"
  "${bench_rt[@]}" "$bench_python" "$here/pty-relay.py" --ports "$work/ports" --count "$devices" --sims "$work/sims/ports" \
    --control "$work/control" >"$work/relay.out" &
  bench_pids+=($!)
  exec {rfd}<"$work/relay.out"
  while [[ ! -e $work/ports/dev$devices ]]; do sleep 0.05; done
  bench_write_conf "$build" "$work"
  "${bench_rt[@]}" "$bench_python" "$here/tslog.py" --log "$work/healerd.log" --pattern "heal succeeded" --every \
    <"$work/err" >"$work/succeeded" &
  bench_pids+=($!)
  "$healerd" --no-bus --verbose --config "$work/healerd.conf" 2>"$work/err" &
  bench_pids+=($!)
  exec {sfd}<"$work/succeeded"
  sleep 1.5 # every port opened (and probed: nothing answers yet)
  : >"$work/events"
  for i in $(seq "$devices"); do
    echo "plug $i" >"$work/control"
    while read -r -t 60 -u "$rfd" dev ev t; do
      echo "$dev $ev $t" >>"$work/events"
      [[ $dev == "$i" && $ev == DATA ]] && break
    done
    read -r -t 300 -u "$sfd" line || { echo "device $i: no heal within 300 s" >&2; break; }
  done
  exec {rfd}<&- {sfd}<&-
  python3 - "$work/events" "$work/healerd.log" "$baud" "$rep" >>"$tsv" <<'EOF'
import re, sys
events, log, baud, rep = sys.argv[1:5]
ev = {}
for line in open(events):
    d, name, t = line.split()
    ev.setdefault(int(d), {})[name] = float(t)
ids, logged = {}, {}
for line in open(log, errors="replace"):
    m = re.match(r"(\S+) healerd\[\w+\]: \[(\w+)\] attached on \S*/dev(\d+):", line)
    if m:
        ids[m.group(2)] = int(m.group(3))
        logged.setdefault(int(m.group(3)), {})["attached"] = float(m.group(1))
        continue
    m = re.match(r"(\S+) healerd\[\w+\]: \[(\w+)\] starting the heal", line)
    if m and m.group(2) in ids:
        logged.setdefault(ids[m.group(2)], {}).setdefault("started", float(m.group(1)))
for d in sorted(ev):
    e, l = ev[d], logged.get(d, {})
    cols = [e.get("HELLO"), e.get("DESCRIBE"), e.get("DESCRIBE_REPLY"), l.get("attached"), l.get("started"),
            e.get("BEGIN"), e.get("UPDATE_READY"), e.get("DATA")]
    print("\t".join([baud, rep, str(d)] + ["%.6f" % c if c is not None else "nan" for c in cols]))
EOF
  # The processes of one run end before the next starts; the trap covers a stop mid-run.
  bench_cleanup
}

echo "# detection latency, $devices devices plugged one at a time, $reps runs; $(bench_machine); $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$reps"); do
  for baud in "${bauds[@]}"; do
    run "$baud" "$rep"
    echo "  run $rep at $baud baud: done" >&2
  done
done

python3 - "$tsv" <<'EOF'
import math, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
head, rows = rows[0], rows[1:]
col = {n: i for i, n in enumerate(head)}
steps = [("HELLO -> DESCRIBE sent (healerd)", "hello", "describe"),
         ("DESCRIBE -> DESCRIBE_REPLY received (device, line)", "describe", "describe_reply"),
         ("DESCRIBE_REPLY -> 'attached' logged (healerd)", "describe_reply", "attached_log"),
         ("'attached' -> 'starting the heal' logged (healerd: plan)", "attached_log", "heal_started_log"),
         ("'starting the heal' -> BEGIN sent (healerd: job file, store read)", "heal_started_log", "begin"),
         ("BEGIN -> UPDATE_READY (device: erase staging)", "begin", "update_ready"),
         ("UPDATE_READY -> first DATA sent (healerd)", "update_ready", "data"),
         ("HELLO -> BEGIN: first update frame", "hello", "begin"),
         ("HELLO -> first DATA", "hello", "data")]
def q(v, p):
    v = sorted(v)
    return v[max(0, math.ceil(p * len(v)) - 1)] if v else float("nan")
def med(v):
    v = sorted(v); n = len(v)
    return (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2) if n else float("nan")
bauds = sorted({r[0] for r in rows}, key=int)
print("\n| step | " + " | ".join("%s baud: median ms | p95 ms" % b for b in bauds) + " |")
print("|---|" + "---:|---:|" * len(bauds))
for name, a, b in steps:
    cells = []
    for baud in bauds:
        v = [1000 * (float(r[col[b]]) - float(r[col[a]])) for r in rows if r[0] == baud]
        v = [x for x in v if not math.isnan(x)]
        cells += ["%.1f" % med(v), "%.1f" % q(v, 0.95)]
    print("| %s | %s |" % (name, " | ".join(cells)))
print("\nsamples: " + ", ".join("%s baud: %d" % (b, sum(1 for r in rows if r[0] == b)) for b in bauds))
EOF
echo "runs: $tsv"
