#!/usr/bin/env bash
# check-no-heap.sh LIB.a: fails if the firmware core references an allocator.
set -euo pipefail
lib=$1
if ! command -v nm >/dev/null; then echo "nm not found (binutils)" >&2; exit 1; fi
found=$(nm -u "$lib" | awk '{print $2}' | grep -E '^(malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign|reallocarray|__libc_malloc)$' || true)
if [[ -n "$found" ]]; then
  echo "the firmware core uses the heap: $found" >&2
  nm -A -u "$lib" | grep -wE "$(echo "$found" | paste -sd'|')" >&2
  exit 1
fi
echo "no allocator referenced by $(basename "$lib") ($(nm -u "$lib" | awk '{print $2}' | sort -u | paste -sd' '))"
