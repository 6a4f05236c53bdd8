#!/usr/bin/env bash
# check-needed.sh PROGRAM... -- MODULE...: the libraries healerd loads only on
# first use (agent/lib/healer-loadable.h) must not be in any PROGRAM's
# DT_NEEDED, and each must be in the DT_NEEDED of one of the MODULEs (where
# the code that calls it went).
set -euo pipefail
lazy='^lib(curl|archive)\.'
command -v readelf >/dev/null || { echo "readelf not found (binutils)" >&2; exit 1; }
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }
programs=()
while [[ $# -gt 0 && $1 != -- ]]; do programs+=("$1"); shift; done
shift
status=0
for p in "${programs[@]}"; do
  found=$(needed "$p" | grep -E "$lazy" || true)
  if [[ -n $found ]]; then
    echo "$(basename "$p") links $(echo "$found" | paste -sd' ') directly (DT_NEEDED): it must load it through its module" >&2
    status=1
  else
    echo "$(basename "$p"): neither libcurl nor libarchive in DT_NEEDED ($(needed "$p" | paste -sd' '))"
  fi
done
modules_needed=$(for m in "$@"; do needed "$m"; done)
for lib in libcurl libarchive; do
  if ! grep -q "^$lib\." <<<"$modules_needed"; then
    echo "no module ($(for m in "$@"; do basename "$m"; done | paste -sd' ')) needs $lib" >&2
    status=1
  fi
done
exit $status
