#!/usr/bin/env bash
# scripts/count-results.py, the count behind run-tests.sh's last line, on fabricated meson JSON
# logs (one object per test, stdout holding the TAP it printed, as meson writes them): passes,
# failures, a timeout, whole-program skips ("1..0 # SKIP", exit 77), skipped and incomplete
# subtests inside tests meson calls OK, and a subtest whose name merely contains "skip".
# Asserts the line, the exit status and the named reasons, with and without CI=true.
set -uo pipefail

count=${COUNT_RESULTS:-$(dirname "$0")/../../scripts/count-results.py}
work=$(mktemp -d -t test-count-results.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# expect NAME WANT-LINE WANT-STATUS [ENV...] -- ARGS...: runs the counter and checks its output.
expect() {
  local name=$1 want_line=$2 want_status=$3; shift 3
  local envs=()
  while [[ $1 != "--" ]]; do envs+=("$1"); shift; done
  shift
  local out status
  out=$(env -u CI "${envs[@]}" python3 "$count" "$@" 2>"$work/stderr")
  status=$?
  if [[ "$out" != "$want_line" || $status -ne $want_status ]]; then
    echo "not ok: $name: got '$out' (exit $status), want '$want_line' (exit $want_status)"
    sed 's/^/#   /' "$work/stderr"
    failures=$((failures + 1))
  else
    echo "ok: $name: $out (exit $status)"
  fi
}

# stderr_has NAME TEXT: the last run named TEXT on stderr.
stderr_has() {
  if ! grep -qF -- "$2" "$work/stderr"; then
    echo "not ok: $1: stderr lacks '$2':"
    sed 's/^/#   /' "$work/stderr"
    failures=$((failures + 1))
  fi
}

# One test per line; stdout as meson keeps it (GLib's TAP).
cat >"$work/a.json" <<'EOF'
{"name": "healerd:unit / passes", "stdout": "# random seed: R02S\n1..2\nok 1 /store/import\nok 2 /store/skipped-entry\n", "result": "OK", "returncode": 0}
{"name": "healerd:unit / fails", "stdout": "1..2\nok 1 /a\nnot ok 2 /b\n", "result": "FAIL", "returncode": 1}
{"name": "healerd:integration / upstream", "stdout": "1..0 # SKIP nginx or openssl not installed (scripts/setup.sh installs them)\n", "result": "SKIP", "returncode": 0}
{"name": "healerd:integration / dbus", "stdout": "1..3\nok 1 /dbus/e2e # SKIP no dbus-daemon\nok 2 /dbus/events\nok 3 /dbus/other # SKIP not root or no setpriv: the unprivileged checks did not run\n", "result": "OK", "returncode": 0}
{"name": "healerd:unit / journal", "stdout": "1..1\nnot ok 1 /journal/message-catalog # TODO message catalog not checked\n", "result": "OK", "returncode": 0}
{"name": "healerd:integration / faults", "stdout": "1..1\n", "result": "TIMEOUT", "returncode": -15, "stderr": "usbemu exited 1; the end of its output:\ntimed out waiting for 2b04:d006\n--4145-- WARNING: unhandled amd64-linux syscall: 434\n"}
EOF
cat >"$work/b.json" <<'EOF'
{"name": "healerd:demo / demo", "stdout": "all six devices healthy\n", "result": "OK", "returncode": 0}

{"name": "healerd:integration / exit-77", "stdout": "", "result": "SKIP", "returncode": 77}
{"name": "healerd:package / debian-package", "stdout": "SKIP: needs root (debootstrap, chroot, mounts)\n", "result": "SKIP", "returncode": 77}
EOF
cat >"$work/clean.json" <<'EOF'
{"name": "healerd:unit / semver", "stdout": "1..1\nok 1 /semver/parse\n", "result": "OK", "returncode": 0}
{"name": "healerd:unit / resolver", "stdout": "1..1\nok 1 /resolver/cost\n", "result": "EXPECTEDFAIL", "returncode": 0}
EOF
cat >"$work/skip-only.json" <<'EOF'
{"name": "healerd:unit / semver", "stdout": "1..1\nok 1 /semver/parse\n", "result": "OK", "returncode": 0}
{"name": "healerd:unit / journal", "stdout": "1..1\nok 1 /journal/message-catalog-journalctl # SKIP journalctl not installed\n", "result": "OK", "returncode": 0}
EOF

# Passed: passes, dbus, journal, demo.  Failed: fails, the timeout, one build failure.  Skipped:
# upstream, exit-77 and debian-package (whole programs), dbus's two subtests, journal's incomplete one.
expect "mixed" "4 passed, 3 failed, 6 skipped" 1 -- --build-failures 1 "$work/a.json" "$work/b.json"
for reason in "upstream (whole program): nginx or openssl not installed" "exit-77 (whole program): no reason given" \
  "debian-package (whole program): needs root (debootstrap, chroot, mounts)" \
  "/dbus/e2e: no dbus-daemon" "/dbus/other: not root or no setpriv" "/journal/message-catalog: message catalog not checked"; do
  stderr_has "mixed names" "$reason"
done
# Each failure named with the last lines it printed, valgrind's notes about itself left out.
stderr_has "mixed failure" "failed: $work/a.json: healerd:unit / fails (FAIL)"
stderr_has "mixed failure" "stdout: not ok 2 /b"
stderr_has "mixed timeout" "failed: $work/a.json: healerd:integration / faults (TIMEOUT)"
stderr_has "mixed timeout" "stderr: timed out waiting for 2b04:d006"
if grep -qF -- "unhandled amd64-linux syscall" "$work/stderr"; then
  echo "not ok: mixed: valgrind's note shown among a failure's lines"
  failures=$((failures + 1))
fi
expect "mixed, CI" "4 passed, 9 failed, 6 skipped" 1 CI=true -- --build-failures 1 "$work/a.json" "$work/b.json"
stderr_has "mixed, CI" "skipped, which CI counts as failed"

expect "clean" "2 passed, 0 failed, 0 skipped" 0 -- "$work/clean.json"
expect "clean, CI" "2 passed, 0 failed, 0 skipped" 0 CI=true -- "$work/clean.json"

# A skipped subtest alone: a pass outside CI, a failure in it (CI=false is not CI).
expect "skip only" "2 passed, 0 failed, 1 skipped" 0 -- "$work/skip-only.json"
stderr_has "skip only" "/journal/message-catalog-journalctl: journalctl not installed"
expect "skip only, CI=false" "2 passed, 0 failed, 1 skipped" 0 CI=false -- "$work/skip-only.json"
expect "skip only, CI" "2 passed, 1 failed, 1 skipped" 1 CI=true -- "$work/skip-only.json"

# A build that failed before any test ran.
expect "no logs" "0 passed, 1 failed, 0 skipped" 1 -- --build-failures 1

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
