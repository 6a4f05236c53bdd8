#!/usr/bin/env python3
"""The one line scripts/run-tests.sh ends with, "N passed, N failed, N skipped", counted from
meson's JSON test logs (meson-logs/testlog*.json: one JSON object per test and line).

    scripts/count-results.py [--build-failures N] LOG...

Counted:
  passed   tests meson calls OK or EXPECTEDFAIL
  failed   every other result (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS...), plus N build failures
  skipped  tests meson calls SKIP (a TAP program that printed "1..0 # SKIP reason", or exit 77)
           and skipped subtests of any test: meson reports a TAP test OK, "Skipped: 0" in its
           summary, when some of its subtests skipped ("ok 3 /path # SKIP reason", GLib's
           g_test_skip()) or were left incomplete ("not ok 3 /path # TODO reason",
           g_test_incomplete()); they are read from the TAP it printed, which the log keeps.
Every skip is named on stderr with its reason, and every failed test with the last lines it
printed (valgrind's own "--PID--" notes left out): what CI shows of a run is its end.  With CI=true
in the environment each skip also counts as failed: a check that did not run proves nothing.
Exit status: 0 when nothing failed, 1 otherwise.
"""
import json
import os
import re
import sys

SUBTEST_SKIP = re.compile(r"^(?:not\s+)?ok\s+\d+\s*(.*?)\s*#\s*(?:skip|todo)\b\s*(.*)$", re.IGNORECASE)
# A TAP plan of no test, or what an exit-77 script says (tests/package: "SKIP: needs root").
PLAN_SKIP = re.compile(r"^(?:1\.\.0\s*#\s*skip\b|SKIP:)\s*(.*)$", re.IGNORECASE)
# valgrind's notes about itself ("--4145-- WARNING: unhandled amd64-linux syscall: 434"), not the test's.
VALGRIND_NOTE = re.compile(r"^--\d+--")
FAILURE_TAIL_LINES = 12


def failure_tail(test):
    """The last lines a failed test printed on stdout and on stderr, valgrind's notes left out."""
    shown = []
    for stream in ("stdout", "stderr"):
        lines = [line for line in (test.get(stream) or "").splitlines()
                 if line.strip() and not VALGRIND_NOTE.match(line)]
        shown += [f"    {stream}: {line}" for line in lines[-FAILURE_TAIL_LINES:]]
    return shown


def count(paths, build_failures, ci):
    passed, failed, skips, failures = 0, build_failures, [], []
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                test = json.loads(line)
                result, name = test["result"], test["name"]
                lines = [out.strip() for out in (test.get("stdout") or "").splitlines()]
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    why = next((m.group(1) for m in map(PLAN_SKIP.match, lines) if m), "")
                    skips.append(f"{path}: {name} (whole program): {why or 'no reason given'}")
                    continue  # its plan says it ran no subtest
                else:
                    failed += 1
                    failures.append((f"{path}: {name} ({result})", failure_tail(test)))
                for m in filter(None, map(SUBTEST_SKIP.match, lines)):
                    skips.append(f"{path}: {name}: {m.group(1)}: {m.group(2) or 'no reason given'}")
    for what, tail in failures:
        print(f"=== failed: {what}", file=sys.stderr)
        for line in tail:
            print(line, file=sys.stderr)
    if skips:
        print("=== skipped, which CI counts as failed:" if ci else "=== skipped:", file=sys.stderr)
        for s in skips:
            print(f"  {s}", file=sys.stderr)
        if ci:
            failed += len(skips)
    return passed, failed, len(skips)


def main(argv):
    build_failures = 0
    if argv[:1] == ["--build-failures"]:
        build_failures = int(argv[1])
        argv = argv[2:]
    passed, failed, skipped = count(argv, build_failures, os.environ.get("CI") == "true")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
