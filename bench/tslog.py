#!/usr/bin/env python3
"""Timestamps the lines of a log read on stdin (healerd's stderr) as they arrive.

    tslog.py --log FILE [--input FIFO] [--pattern TEXT (--count N | --every)]

Each line goes to FILE as "SECONDS LINE", SECONDS being CLOCK_REALTIME (bash's
$EPOCHREALTIME clock).  With --pattern, when the Nth line containing TEXT has
arrived its time is printed on stdout (one line, flushed), so a script can wait
for it with a blocking `read` instead of polling; then it keeps copying until
EOF, so the writer never sees a broken pipe.  With --every, each matching
line is printed ("SECONDS LINE") as it arrives.  Waking once per line, it costs
next to nothing next to what it watches.

--input FIFO: reads FIFO instead of stdin, opened once Python has started.  A
script that then opens FIFO's write end returns from that open only when this
reader is up, so the interpreter's start-up (tens of milliseconds of CPU, more
behind a version manager's shims, at real-time priority) is over before the
script starts its clock and healerd.
"""
import argparse
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--pattern")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--every", action="store_true")
    ap.add_argument("--input")
    a = ap.parse_args()
    source = open(a.input, "rb") if a.input else sys.stdin.buffer
    seen = 0
    told = a.pattern is None
    pattern = a.pattern.encode() if a.pattern else None
    with open(a.log, "wb", buffering=0) as log:
        for line in source:
            t = time.time()
            log.write(b"%.6f " % t + line)
            if a.every and pattern in line:
                try:
                    sys.stdout.write("%.6f %s" % (t, line.decode(errors="replace")))
                    sys.stdout.flush()
                except BrokenPipeError:
                    pass
                continue
            if not told and pattern in line:
                seen += 1
                if seen >= a.count:
                    told = True
                    try:
                        sys.stdout.write("%.6f\n" % t)
                        sys.stdout.flush()
                    except BrokenPipeError:
                        pass


if __name__ == "__main__":
    main()
