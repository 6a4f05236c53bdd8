#!/usr/bin/env bash
# The whole test suite, from nothing: installs what is missing, builds and
# runs every suite in four configurations, and ends with one line
# "N passed, N failed, N skipped" counted from meson's test logs.
#
#   scripts/run-tests.sh           everything (what CI runs)
#   scripts/run-tests.sh --quick   the plain build's suites only
#
# Configurations (build trees under _build/):
#   test      gcc, all suites (unit, fuzz corpus replay, real binaries, and
#             'package': the Debian package built, linted, installed into a
#             fresh Debian 12 root and smoke-tested there)
#   valgrind  the same tests under valgrind (no definite leaks, no errors)
#   sanitize  gcc with ASan+UBSan, all suites (but 'package')
#   fuzz      clang + libFuzzer + ASan/UBSan, each fuzz target for
#             $HEALER_FUZZ_SECONDS seconds (default 20: CI's 20-minute budget)
# With CI=true warnings are errors.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
quick=false
[[ "${1:-}" == "--quick" ]] && quick=true

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

werror=()
[[ "${CI:-}" == "true" ]] && werror=(--werror)
fuzz_seconds=${HEALER_FUZZ_SECONDS:-20}
logs=()
build_failures=0

# configure DIR [meson options...]: (re)configures a build tree.
configure() {
  local dir=$1; shift
  if [[ -f "$dir/build.ninja" ]]; then
    meson setup --reconfigure "$dir" "$@" >"$dir.setup.log" 2>&1
  else
    mkdir -p "$(dirname "$dir")"
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log" >&2; return 1; }
}

# phase NAME DIR TEST-ARGS -- CONFIGURE-ARGS: builds DIR and runs its tests.
phase() {
  local name=$1 dir=$2; shift 2
  local test_args=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do test_args+=("$1"); shift; done
  shift
  echo "=== $name: configure and build ($dir)"
  if ! configure "$dir" "${werror[@]}" "$@" || ! meson compile -C "$dir"; then
    echo "=== $name: BUILD FAILED" >&2
    build_failures=$((build_failures + 1))
    return
  fi
  echo "=== $name: test"
  local before
  before=$(date +%s)
  meson test -C "$dir" --print-errorlogs "${test_args[@]}"
  # meson names the log after the setup: testlog.json or testlog-SETUP.json
  local log
  log=$(ls -t "$dir"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
  if [[ -n "$log" && $(stat -c %Y "$log") -ge $before ]]; then
    logs+=("$log")
  else
    echo "=== $name: no test log written" >&2
    build_failures=$((build_failures + 1))
  fi
}

# The fault soak (200 unplugs and more) is run on demand: meson test -C _build/test --suite fault-soak
phase test _build/test --no-suite fault-soak -- -Dbuildtype=debugoptimized
if ! $quick; then
  # The soak (200 power cuts) and the Debian package test (which builds its
  # own binaries with dpkg-buildpackage) run once, in the plain configuration.
  # The security suite measures healerd's RSS and traces it with strace: under
  # valgrind both would be valgrind's, so it runs plain and sanitized.
  phase valgrind _build/test --setup=valgrind --no-rebuild --no-suite soak --no-suite fault-soak --no-suite package --no-suite demo --no-suite security -- -Dbuildtype=debugoptimized
  phase sanitize _build/sanitize --setup=sanitize --no-suite soak --no-suite fault-soak --no-suite package -- -Db_sanitize=address,undefined -Db_lundef=false
  CC=clang phase fuzz _build/fuzz --suite fuzz -- -Dfuzzing=true -Dfuzz_seconds="$fuzz_seconds" \
    -Db_sanitize=address,undefined -Db_lundef=false -Dreal_binaries_tests=false
fi

# One line for CI, counted from meson's JSON test logs by scripts/count-results.py (tested by
# tests/unit/test-count-results.sh): whole-program and subtest skips both counted and named, and
# under CI=true (which it reads from the environment) each skip fails the run.
CI="${CI:-}" python3 scripts/count-results.py --build-failures "$build_failures" "${logs[@]}"
