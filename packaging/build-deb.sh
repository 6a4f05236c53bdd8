#!/usr/bin/env bash
# Builds healerd's Debian packages with Debian's own tools (dpkg-buildpackage
# -us -uc, debhelper, meson), outside the source tree:
#
#   packaging/build-deb.sh [--output DIR] [--source DIR]
#
# It copies the source tree (with git: the tracked and untracked-but-not-
# ignored files of the work tree, as they are now) to a temporary directory,
# puts packaging/debian/ at debian/ there, makes a fresh Ed25519 key pair
# whose private key signs the embedded firmware store's catalog (and is
# deleted when the build ends: the store is sealed by a one-time key), and
# builds the source and binary packages.  The results (.deb, .dsc, .tar.xz,
# .buildinfo, .changes) go to DIR (default build-pkg/ in the source tree),
# replacing earlier ones of the same version; the build log is DIR/build.log.
# The package version is meson.build's project version; if
# packaging/debian/changelog's latest entry names another, an entry for this
# one is added to the copy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
out=
while [[ $# -gt 0 ]]; do
  case $1 in
    --output) out=$2; shift 2 ;;
    --output=*) out=${1#*=}; shift ;;
    --source) src=$(cd "$2" && pwd); shift 2 ;;
    --source=*) src=$(cd "${1#*=}" && pwd); shift ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$src/build-pkg}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-buildpackage dh meson openssl; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "build-deb.sh: $tool is missing (scripts/setup.sh installs the packaging tools)" >&2
    exit 1
  }
done

version=$(sed -n "s/^  version: '\([^']*\)',\$/\1/p" "$src/meson.build" | head -n 1)
[[ -n $version ]] || { echo "build-deb.sh: no project version in $src/meson.build" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/healerd-deb.XXXXXX")
keys=$(mktemp -d "${TMPDIR:-/tmp}/healerd-key.XXXXXX")
cleanup() {
  rm -rf "$keys" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The source tree, as it is now (not build trees, not .git).
tree=$work/healerd-$version
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $src/$f || -L $src/$f ]] && printf '%s\0' "$f"; done |
    tar -C "$src" --null --no-recursion -T - -cf - | tar -C "$tree" -xf -
else
  tar -C "$src" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude='./_build' \
    --exclude='./obj-*' -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -r "$tree/packaging/debian" "$tree/debian"

# The version is meson's.
changelog_version=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Version)
if [[ $changelog_version != "$version" ]]; then
  maintainer=$(sed -n 's/^Maintainer: //p' "$tree/debian/control")
  {
    printf 'healerd (%s) bookworm; urgency=medium\n\n' "$version"
    printf '  * Build of version %s (meson.build).\n\n' "$version"
    printf ' -- %s  %s\n\n' "$maintainer" "$(date -R)"
    cat "$here/debian/changelog"
  } >"$tree/debian/changelog"
fi

# The one-time signing key.
chmod 0700 "$keys"
(umask 077 && openssl genpkey -algorithm ed25519 -out "$keys/firmware-signing.pem" 2>/dev/null)

echo "build-deb.sh: building healerd $version in $tree (log: $out/build.log)"
jobs=$(nproc 2>/dev/null || echo 1)
if ! (cd "$tree" &&
      HEALERD_FIRMWARE_SIGNING_KEY="$keys/firmware-signing.pem" \
      DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
      dpkg-buildpackage -us -uc) >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 1
fi
rm -rf "$keys"

changes=$work/healerd_${version}_$(dpkg --print-architecture).changes
files=("$changes")
while read -r _ _ _ _ name; do
  [[ -n $name ]] && files+=("$work/$name")
done < <(sed -n '/^Files:/,/^[^ ]/p' "$changes" | grep '^ ')
for f in "${files[@]}"; do
  rm -f "$out/$(basename "$f")"
  cp "$f" "$out/"
done
echo "build-deb.sh: wrote to $out:"
for f in "${files[@]}"; do echo "  $(basename "$f")"; done
