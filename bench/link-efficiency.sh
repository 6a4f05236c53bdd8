#!/usr/bin/env bash
# Link efficiency: payload bytes per second over the line rate (baud/10 for 8N1), healerd's link
# protocol against YMODEM, on the same emulated line (tests/tools/linkemu: exact pacing each way,
# a fixed one-way latency) with the same bytes: release 1.1.0's two system parts, 92,288 bytes.
#
#   bench/link-efficiency.sh [BUILD_DIR] [OUT_DIR] [RUNS]
#
# healerd's protocol: healer-sim, its own pacing off, behind linkemu; bench-link-transfer (healerd's
# own HealerDevice and serial transport, linked from healerd-core) installs both modules.
#   data    = first DATA written -> the ACK of the last byte read (FINISH goes out behind the last
#             DATA frame, before that ACK)
#   session = BEGIN written -> UPDATE_RESULT read (the reset after it is the device's, not the link's)
# YMODEM: lrzsz `sb --ymodem -k` -> `rb --ymodem` (1K blocks), both run by linkemu on the line.
#   data    = block 1 read from sb -> the ACK of the file's last block delivered to sb, per file,
#             from linkemu's --trace (a serial sniffer's view)
#   session = the line's first byte -> its last byte (includes lrzsz's own 1 s pauses, see README)
# Prints a table (every run, then mean and range) and writes OUT_DIR/link-efficiency.{tsv,png}.
# Measures; passes or fails nothing.
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
out=$(mkdir -p "${2:-.}" && cd "${2:-.}" && pwd)
runs=${3:-2}
settings=("115200 1" "115200 16" "921600 1" "921600 16")
sim=$build/device-firmware/healer-sim
linkemu=$build/tests/tools/linkemu/linkemu
driver=$build/bench/bench-link-transfer
modules=$build/device-firmware/modules
files=("$modules/1.1.0/system-part1.bin" "$modules/1.1.0/system-part2.bin")
for f in "$sim" "$linkemu" "$driver" "${files[@]}"; do
	[[ -e $f ]] || { echo "build first: $f missing" >&2; exit 1; }
done
for p in sb rb gnuplot; do
	command -v "$p" >/dev/null || { echo "$p missing (scripts/setup.sh installs lrzsz and gnuplot-nox): skipped" >&2; exit 77; }
done
bytes=0
for f in "${files[@]}"; do bytes=$((bytes + $(stat -c %s "$f"))); done

pids=()
work=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -z $work ]] || rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # file pattern: waits up to 10 s for a line matching pattern
	for _ in $(seq 1000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
	echo "timed out waiting for '$2' in $1" >&2
	return 1
}

healer_run() { # baud latency: sets data_s and session_s
	local baud=$1 lat=$2 emu
	work=$(mktemp -d -t link-eff.XXXXXX)
	"$sim" --state "$work/dev" --release 1.0.0 --app heartbeat --link "$work/dev.tty" 2>"$work/sim.log" &
	pids=($!)
	for _ in $(seq 1000); do [[ -e $work/dev.tty ]] && break; sleep 0.01; done
	"$linkemu" --baud "$baud" --latency-ms "$lat" --stats "$work/stats.json" \
		"pty:$work/host.tty" "tty:$work/dev.tty" >"$work/emu.out" 2>"$work/emu.err" &
	emu=$!
	pids+=("$emu")
	wait_for "$work/emu.out" ready
	timeout 600 "$driver" "$work/host.tty" "${files[@]}" >"$work/result"
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	pids=()
	read -r data_s session_s < <(awk '!/^#/ { data += $6; session += $5 + $6 + $7 }
		END { printf "%.6f %.6f\n", data, session }' "$work/result")
	rm -rf "$work"
	work=""
}

ymodem_run() { # baud latency: sets data_s and session_s
	local baud=$1 lat=$2 f
	work=$(mktemp -d -t link-eff.XXXXXX)
	mkdir "$work/tx" "$work/rx"
	cp "${files[@]}" "$work/tx/"
	timeout 600 "$linkemu" --baud "$baud" --latency-ms "$lat" --stats "$work/stats.json" --trace "$work/trace" \
		"cmd:cd '$work/tx' && exec sb --ymodem -k -q ${files[*]##*/}" "cmd:cd '$work/rx' && exec rb --ymodem -q" \
		>"$work/emu.out" 2>"$work/emu.err" &
	pids=($!)
	wait "${pids[0]}" || { echo "YMODEM run failed:" >&2; cat "$work/emu.err" >&2; exit 1; }
	pids=()
	for f in "${files[@]}"; do cmp -s "$f" "$work/rx/${f##*/}" || { echo "YMODEM: ${f##*/} differs" >&2; return 1; }; done
	# data: block 1 (STX 01 FE) read from sb .. the last ACK (06) delivered to sb before its EOT (04).
	data_s=$(awk -v files=${#files[@]} '
		$2 == "in" && $3 == "to_device" && substr($5, 1, 6) == "0201fe" && !active { start = $1; active = 1 }
		$2 == "out" && $3 == "to_host" && substr($5, 1, 2) == "06" { ack = $1 }
		$2 == "in" && $3 == "to_device" && $5 == "04" && active { data += ack - start; n++; active = 0 }
		END { if (n != files) { print "YMODEM trace: " n " files seen" > "/dev/stderr"; exit 1 }
		      printf "%.6f", data }' "$work/trace")
	session_s=$(sed -E 's/.*"first_byte_s":([0-9.]+),"last_byte_s":([0-9.]+).*/\1 \2/' "$work/stats.json" |
		awk '{ printf "%.6f", $2 - $1 }')
	rm -rf "$work"
	work=""
}

tsv=$out/link-efficiency.tsv
printf '# protocol\tbaud\tlatency_ms\trun\tbytes\tdata_s\tdata_eff\tsession_s\tsession_eff\n' >"$tsv"
printf '# link efficiency: %d payload bytes (1.1.0 system-part1 + system-part2) over linkemu, %d run(s) each\n' \
	"$bytes" "$runs"
printf '# %s, %s cores, load average at start: %s\n' \
	"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %7s %6s %4s %8s %9s %9s %10s %11s\n' protocol baud lat_ms run bytes data_s data_eff session_s session_eff
for s in "${settings[@]}"; do
	read -r baud lat <<<"$s"
	for run in $(seq "$runs"); do
		for proto in healerd ymodem; do
			if [[ $proto == healerd ]]; then healer_run "$baud" "$lat"; else ymodem_run "$baud" "$lat"; fi
			awk -v p="$proto" -v b="$baud" -v l="$lat" -v r="$run" -v n="$bytes" -v d="$data_s" -v s="$session_s" 'BEGIN {
				rate = b / 10
				printf "%s\t%s\t%s\t%s\t%s\t%.6f\t%.4f\t%.6f\t%.4f\n", p, b, l, r, n, d, n / d / rate, s, n / s / rate
			}' | tee -a "$tsv" | awk -F'\t' '{ printf "%-8s %7s %6s %4s %8s %9.3f %9.4f %10.3f %11.4f\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }'
		done
	done
done
printf '# load average at end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

# Mean and range per setting, the targets, and the plot's data.
summary=$out/link-efficiency-summary.tsv
echo
awk -F'\t' -v summary="$summary" '
function keep(name, v) {
	sum[k, name] += v; n[k, name]++
	if (!((k, name) in lo) || v < lo[k, name]) lo[k, name] = v
	if (!((k, name) in hi) || v > hi[k, name]) hi[k, name] = v
}
function stat(name) { return sprintf("%.4f\t%.4f\t%.4f", sum[k, name] / n[k, name], lo[k, name], hi[k, name]) }
function show(name) { return sprintf("%.4f (%.4f-%.4f)", sum[k, name] / n[k, name], lo[k, name], hi[k, name]) }
!/^#/ {
	k = $2 " " $3
	if (!(k in order)) { order[k] = ++nk; keys[nk] = k }
	keep($1 " data", $7); keep($1 " session", $9)
}
END {
	printf "%7s %6s  %-22s %-22s %-22s %-22s %s\n", "baud", "lat_ms", "healerd data", "YMODEM data",
	       "healerd session", "YMODEM session", "targets (data phase)"
	for (i = 1; i <= nk; i++) {
		k = keys[i]; split(k, f, " ")
		t = lo[k, "healerd data"] > hi[k, "ymodem data"] ? "ahead of YMODEM: met" : "ahead of YMODEM: NOT met"
		if (f[1] == 115200 && f[2] == 16)
			t = t "; >= 0.97: " (lo[k, "healerd data"] >= 0.97 ? "met" : "NOT met")
		printf "%7s %6s  %-22s %-22s %-22s %-22s %s\n", f[1], f[2], show("healerd data"), show("ymodem data"),
		       show("healerd session"), show("ymodem session"), t
		printf "\"%s baud\\n%s ms\"\t%s\t%s\t%s\t%s\n", f[1], f[2], stat("healerd data"), stat("healerd session"),
		       stat("ymodem data"), stat("ymodem session") > summary
	}
}' "$tsv"

gnuplot <<EOF
set terminal pngcairo size 960,560 font "sans,10"
set output "$out/link-efficiency.png"
set title "Link efficiency: payload rate / line rate, 92,288 bytes over linkemu (mean of $runs runs; bars: range)"
set ylabel "payload bytes/s / (baud/10)"
set yrange [0:1.18]
set ytics 0.1
set grid ytics
set bmargin 4
set key top center horizontal
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set arrow from graph 0, first 0.97 to graph 1, first 0.97 nohead dt 2 lc rgb "red"
set label "target 0.97 (115200 baud, 16 ms)" at graph 0.99, first 1.01 right tc rgb "red"
plot "$summary" using 2:3:4:xtic(1) title "healerd: data" lc rgb "#1f5f8b", \\
     "" using 5:6:7 title "healerd: BEGIN..RESULT" lc rgb "#7fb3d5", \\
     "" using 8:9:10 title "YMODEM: data" lc rgb "#a93226", \\
     "" using 11:12:13 title "YMODEM: whole session (lrzsz)" lc rgb "#e6b0aa"
EOF
echo "# wrote $tsv, $summary and $out/link-efficiency.png"
