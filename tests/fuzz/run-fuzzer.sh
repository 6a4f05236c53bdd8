#!/usr/bin/env bash
# run-fuzzer.sh FUZZER CORPUS SECONDS ARTIFACT_PREFIX: the 'fuzz' suite's
# test.  Runs a libFuzzer target for SECONDS on the committed corpus, new
# inputs going to a temporary directory (the source tree stays untouched),
# crash/leak/timeout inputs to ARTIFACT_PREFIXcrash-* in the build tree.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 FUZZER CORPUS SECONDS ARTIFACT_PREFIX" >&2
  exit 2
fi
fuzzer=$1 corpus=$2 seconds=$3 artifacts=$4
[[ -d "$corpus" ]] || { echo "$0: no corpus directory $corpus" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/healer-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# libFuzzer writes new inputs to the first directory only.
# A fixed seed (HEALER_FUZZ_SEED overrides it) keeps CI's run repeatable: the same
# mutations in the same order, as far as the time allows.  Longer, randomly
# seeded runs are for developers (HEALER_FUZZ_SEED=0 makes libFuzzer pick one).
"$fuzzer" -seed="${HEALER_FUZZ_SEED:-20261125}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts" "$work" "$corpus"
