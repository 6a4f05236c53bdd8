#!/usr/bin/env bash
# Time to heal one device against the physical limit of its link.
#
#   bench/heal-vs-limit.sh [BUILD_DIR] [OUT_DIR] [RUNS]
#
# Two heals: release 1.0.0 with the heartbeat application (needs 1.1.0: two system parts) and
# release 1.0.0 with travel-in-time (needs 2.0.0, through the 1.2.0 stepping stone: five modules).
# healer-sim, its own pacing off, sits behind tests/tools/linkemu at 115200 and 921600 baud with 1 ms
# and 16 ms one-way latency; healerd finds the port linkemu creates in its ports directory.
#
#   heal s  = healerd's "starting the heal" log line -> its "heal succeeded" line (each line is
#             stamped as healerd writes it)
#   limit s = plan bytes / (baud/10) + modules x the device's reset time
# The reset time is measured first, from the sim's own log (below): its restart, the bootloader
# copying the module into its slot and verifying it, and the boot up to HELLO.  Prints a table and writes
# OUT_DIR/heal-vs-limit.{tsv,png}.
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
out=$(mkdir -p "${2:-.}" && cd "${2:-.}" && pwd)
runs=${3:-2}
settings=("115200 1" "115200 16" "921600 1" "921600 16")
apps=(heartbeat travel-in-time)
sim=$build/device-firmware/healer-sim
linkemu=$build/tests/tools/linkemu/linkemu
driver=$build/bench/bench-link-transfer
healerd=$build/agent/daemon/healerd
modules=$(cd "$build/device-firmware/modules" && pwd)
# The firmware build's catalog is signed with the development key: trusted for the benchmark only.
keys=$(cd "$(dirname "${BASH_SOURCE[0]}")/../device-firmware/keys" && pwd)
for f in "$sim" "$linkemu" "$driver" "$healerd"; do [[ -x $f ]] || { echo "build first: $f missing" >&2; exit 1; }; done
command -v gnuplot >/dev/null || { echo "gnuplot missing (scripts/setup.sh installs gnuplot-nox): skipped" >&2; exit 77; }

pids=()
work=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -z $work ]] || rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # file pattern [tenths of a second]
	for _ in $(seq "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "timed out waiting for '$2' in $1" >&2
	return 1
}

new_device() { # app: starts a sim in $work, its port at $work/dev.tty
	"$sim" --state "$work/dev" --release 1.0.0 --app "$1" --link "$work/dev.tty" 2>"$work/sim.log" &
	pids+=($!)
	for _ in $(seq 1000); do [[ -e $work/dev.tty ]] && break; sleep 0.01; done
}

stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
	rm -rf "$work"
	work=""
}

# The device's reset time, from the device's side: its "reset" log line (written just before it
# restarts) to the LED line its next boot writes right before HELLO, each line stamped as the sim
# writes it.  Six resets (three fresh devices, two modules each, no linkemu); the median.  The host's
# view (UPDATE_RESULT -> HELLO) cannot tell it apart: both frames often arrive in one read.
resets=()
for _ in 1 2 3; do
	work=$(mktemp -d -t heal-limit.XXXXXX)
	"$sim" --state "$work/dev" --release 1.0.0 --app heartbeat --link "$work/dev.tty" \
		2> >(while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$work/sim.log") &
	pids+=($!)
	for _ in $(seq 1000); do [[ -e $work/dev.tty ]] && break; sleep 0.01; done
	"$driver" "$work/dev.tty" "$modules/1.1.0/system-part1.bin" "$modules/1.1.0/system-part2.bin" >"$work/result"
	sleep 0.2
	resets+=($(awk '/healer-sim: reset \(reason 3\)/ { t = $1 } / healer-sim: LED / && t { print $1 - t; t = 0 }' "$work/sim.log"))
	stop_all
done
[[ ${#resets[@]} -eq 6 ]] || { echo "expected 6 resets in the sim's logs, saw ${#resets[@]}" >&2; exit 1; }
read -r reset_s reset_lo reset_hi < <(printf '%s\n' "${resets[@]}" | sort -g |
	awk '{ v[NR] = $1 } END { printf "%.6f %.6f %.6f\n", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2, v[1], v[NR] }')

heal_run() { # app baud latency: sets heal_s, n_modules, plan_bytes
	local app=$1 baud=$2 lat=$3 line
	work=$(mktemp -d -t heal-limit.XXXXXX)
	mkdir "$work/ports"
	new_device "$app"
	"$linkemu" --baud "$baud" --latency-ms "$lat" --stats "$work/stats.json" \
		"pty:$work/ports/dev" "tty:$work/dev.tty" >"$work/emu.out" 2>"$work/emu.err" &
	pids+=($!)
	wait_for "$work/emu.out" ready
	printf '[daemon]\nstate-directory=%s/state\n[serial]\nports=%s/ports/*\n[store]\nmodule-directories=%s\ntrusted-keys=%s\n' \
		"$work" "$work" "$modules" "$keys" >"$work/healerd.conf"
	# Each line stamped as healerd writes it (bash's EPOCHREALTIME, microseconds).
	"$healerd" --no-bus --config "$work/healerd.conf" \
		2> >(while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$work/healerd.log") &
	pids+=($!)
	wait_for "$work/healerd.log" "heal succeeded" 3000
	read -r heal_s n_modules plan_bytes < <(awk '
		/starting the heal: / { t0 = $1; for (i = 1; i <= NF; i++) { if ($i == "module(s),") n = $(i - 1); if ($i ~ /^bytes/) b = $(i - 1) } }
		/heal succeeded/ && !t1 { t1 = $1 }
		END { printf "%.6f %d %d\n", t1 - t0, n, b }' "$work/healerd.log")
	stop_all
}

tsv=$out/heal-vs-limit.tsv
printf '# app\tbaud\tlatency_ms\trun\tmodules\tbytes\theal_s\tlimit_s\tlimit_over_heal\n' >"$tsv"
printf '# heal one device against the link limit (plan bytes / line rate + modules x reset), %d run(s) each\n' "$runs"
printf '# %s, %s cores, load average at start: %s\n' \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v r="$reset_s" -v lo="$reset_lo" -v hi="$reset_hi" \
	'BEGIN { printf "# the device reset (healer-sim, its reset line -> its next boot): median %.2f ms of 6 (%.2f-%.2f)\n", r * 1000, lo * 1000, hi * 1000 }'
printf '%-15s %7s %6s %4s %7s %7s %8s %8s %11s\n' app baud lat_ms run modules bytes heal_s limit_s limit/heal
for app in "${apps[@]}"; do
	for s in "${settings[@]}"; do
		read -r baud lat <<<"$s"
		for run in $(seq "$runs"); do
			heal_run "$app" "$baud" "$lat"
			awk -v a="$app" -v b="$baud" -v l="$lat" -v r="$run" -v m="$n_modules" -v n="$plan_bytes" -v h="$heal_s" \
				-v reset="$reset_s" 'BEGIN {
				limit = n / (b / 10) + m * reset
				printf "%s\t%s\t%s\t%s\t%d\t%d\t%.3f\t%.3f\t%.4f\n", a, b, l, r, m, n, h, limit, limit / h
			}' | tee -a "$tsv" | awk -F'\t' '{ printf "%-15s %7s %6s %4s %7s %7s %8.3f %8.3f %11.4f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
		done
	done
done
printf '# load average at end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

summary=$out/heal-vs-limit-summary.tsv
awk -F'\t' '!/^#/ {
	k = $1 " " $2 " " $3
	if (!(k in n)) keys[++nk] = k
	n[k]++; heal[k] += $7; limit[k] = $8
}
END {
	for (i = 1; i <= nk; i++) {
		k = keys[i]; split(k, f, " ")
		printf "\"%s\\n%s baud\\n%s ms\"\t%.3f\t%.3f\n", f[1], f[2], f[3], heal[k] / n[k], limit[k]
	}
}' "$tsv" >"$summary"

gnuplot <<EOF
set terminal pngcairo size 1100,560 font "sans,10"
set output "$out/heal-vs-limit.png"
set title "Healing one device: healerd against the link limit (bytes / line rate + resets; mean of $runs runs)"
set ylabel "seconds"
set logscale y
set yrange [0.5:40]
set grid ytics
set bmargin 6
set key top right
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
plot "$summary" using 2:xtic(1) title "healerd: heal" lc rgb "#1f5f8b", \\
     "" using 3 title "physical limit" lc rgb "#bbbbbb"
EOF
echo "# wrote $tsv, $summary and $out/heal-vs-limit.png"
