#!/usr/bin/env python3
"""Samples who uses the CPUs, every INTERVAL seconds, until killed.

    cpu-sampler.py --out FILE [--interval 0.01] --group NAME=PID,PID,... [--group ...]

Each line of FILE: "SECONDS  busy  NAME1 NAME2 ...  kworkers" where each field
after the time is CPU time used since the previous sample, in cores (1.0 = one
core busy for the whole interval), from /proc: time on a CPU of every thread
of the group's pids and of the kernel's kworker threads (schedstat, in ns), and
the machine's busy time (/proc/stat, in clock ticks: coarse over short intervals).  SECONDS is CLOCK_REALTIME.
"""
import argparse
import os
import signal
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    """Nanoseconds on a CPU, all threads (schedstat: precise, unlike utime/stime's ticks)."""
    total, seen = 0, False
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
                seen = True
        except (OSError, IndexError, ValueError):
            pass
    return total if seen else None


def kworker_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().startswith("kworker/"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--group", action="append", default=[])
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    groups = []
    for g in a.group:
        name, pids = g.split("=", 1)
        groups.append((name, [int(p) for p in pids.split(",") if p]))
    kw = kworker_pids()
    last = {}  # pid -> ticks (a pid that ends keeps its last value)

    def group_ticks(pids):
        s = 0
        for p in pids:
            t = ticks(p)
            if t is not None:
                last[p] = t
            s += last.get(p, 0)
        return s

    # /proc/stat counts in ticks, the rest in nanoseconds: one scale per column.
    scale = [1 / HZ] + [1e-9] * (len(groups) + 1)
    prev_t = time.time()
    prev = [busy()] + [group_ticks(p) for _, p in groups] + [group_ticks(kw)]
    with open(a.out, "w", buffering=1) as out:
        out.write("# seconds busy %s kworkers (cores)\n" % " ".join(n for n, _ in groups))
        while True:
            time.sleep(a.interval)
            t = time.time()
            cur = [busy()] + [group_ticks(p) for _, p in groups] + [group_ticks(kw)]
            dt = t - prev_t
            out.write("%.4f %s\n" % (t, " ".join("%.3f" % ((c - p) * k / dt) for c, p, k in zip(cur, prev, scale))))
            prev, prev_t = cur, t


if __name__ == "__main__":
    main()
