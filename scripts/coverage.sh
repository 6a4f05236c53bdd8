#!/usr/bin/env bash
# Line and branch coverage of agent/ and device-firmware/, on demand (not in CI: the
# instrumented build and the suites take long, and a number is not a pass or a fail).
#
#   scripts/coverage.sh            build _build/coverage (gcc, -Db_coverage=true), run the
#                                  suites, print gcovr's summary per area and the share of
#                                  each HEALER_ERROR code's raise sites that ran
#   scripts/coverage.sh --report   only the report, from the counters the last run left
#
# Suites run: all but the soaks (soak, fault-soak: hours), 'package' (it builds its own
# binaries with dpkg-buildpackage, which this build's counters never see) and valgrind.
# Counters from earlier runs are cleared first, so the numbers are this run's alone.
# Writes _build/coverage/coverage.json (gcovr's JSON: every line and branch) and
# _build/coverage/coverage-summary.txt.  Exit status: that of the test run (the report is
# printed either way: a failing test still ran the code it ran).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dir=_build/coverage
report_only=false
[[ "${1:-}" == "--report" ]] && report_only=true

command -v gcovr >/dev/null 2>&1 || { echo "coverage: gcovr is missing (scripts/setup.sh installs it)" >&2; exit 1; }

status=0
if ! $report_only; then
  scripts/setup.sh || exit 1
  if [[ -f "$dir/build.ninja" ]]; then
    meson setup --reconfigure "$dir" -Db_coverage=true -Dbuildtype=debug >/dev/null || exit 1
  else
    mkdir -p _build
    meson setup "$dir" -Db_coverage=true -Dbuildtype=debug >/dev/null || exit 1
  fi
  meson compile -C "$dir" || exit 1
  # Counters of an earlier run (or of the build's own generator programs) would add to this one's.
  find "$dir" -name '*.gcda' -delete
  # Instrumented code is slower: more time for each test, on a loaded machine too.
  # Programs the tests run as another user (healerctl as nobody) must be able to write their
  # counters too: else libgcov says "Cannot open" on their stderr, which those tests compare
  # exactly.  The object directories are opened to all, and the counters made under umask 0.
  find "$dir" -type d -name '*.p' -exec chmod a+rwx {} +
  (umask 000 && meson test -C "$dir" --print-errorlogs --timeout-multiplier 4 \
    --no-suite soak --no-suite fault-soak --no-suite package)
  status=$?
fi

# gcov runs once, over every counter file; the areas are filters of its JSON.
gcovr --root "$root" --object-directory "$dir" --filter 'agent/' --filter 'device-firmware/' \
  --exclude-unreachable-branches --json "$dir/coverage.json" "$dir" || exit 1

area() { # NAME gcovr-filter-arguments...: one area's summary
  local name=$1; shift
  echo "== $name"
  # Its text report goes to a scratch file: never -o /dev/null, which gcovr, run as root,
  # replaced with a regular file.
  gcovr --root "$root" --add-tracefile "$dir/coverage.json" "$@" --print-summary -o "$dir/area-report.txt" |
    grep -E '^(lines|branches):'
}
{
  area "agent/lib" --filter 'agent/lib/'
  area "agent/daemon" --filter 'agent/daemon/'
  area "agent/ (cli, modules: the rest)" --filter 'agent/' --exclude 'agent/lib/' --exclude 'agent/daemon/'
  area "device-firmware/" --filter 'device-firmware/'
  echo
  python3 scripts/error-sites.py --coverage "$dir/coverage.json" agent
} | tee "$dir/coverage-summary.txt"
exit $status
