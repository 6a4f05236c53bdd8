#!/usr/bin/env bash
# check-no-heap.sh LIB.a: fails if the firmware core references an allocator.
set -euo pipefail
lib=$1
if ! command -v nm >/dev/null; then echo "nm not found (binutils)" >&2; exit 1; fi
# The symbols the core uses and does not define: "U name" lines (file headers are skipped).
undefined=$(nm -u "$lib" | awk 'NF == 2 && $1 == "U" {print $2}' | sort -u)
# The core reaches the board only through hal.h: a listing without the HAL is not the core's (or
# nm's format changed), and finding no allocator in it would prove nothing.
for hal in hal_board hal_flash_read hal_flash_program; do
  if ! grep -qx "$hal" <<<"$undefined"; then
    echo "$(basename "$lib") does not list $hal as undefined: not the firmware core, or nm -u changed format" >&2
    exit 1
  fi
done
found=$(grep -xE '(malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign|reallocarray|__libc_malloc)' <<<"$undefined" || true)
if [[ -n "$found" ]]; then
  echo "the firmware core uses the heap: $found" >&2
  nm -A -u "$lib" | grep -wE "$(echo "$found" | paste -sd'|')" >&2
  exit 1
fi
echo "no allocator referenced by $(basename "$lib") ($(paste -sd' ' <<<"$undefined"))"
