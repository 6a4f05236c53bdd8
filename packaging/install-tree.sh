#!/bin/sh
# meson install script: copies the directory tree SOURCE (made at build
# time, so meson cannot list its files) to DEST under $DESTDIR, files 0644
# and directories 0755.  Used for the firmware the build makes
# (build/device-firmware/modules/ -> ${datadir}/healerd/firmware/).
#
#   install-tree.sh SOURCE DEST
set -eu
src=$1
dest=${DESTDIR:-}$2
[ -d "$src" ] || { echo "install-tree.sh: $src: no such directory (was it built?)" >&2; exit 1; }
if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
  echo "Would install the tree $src to $dest"
  exit 0
fi
cd "$src"
find . -type d | while IFS= read -r d; do install -d -m 0755 "$dest/$d"; done
find . -type f | while IFS= read -r f; do install -m 0644 "$f" "$dest/$f"; done
[ -n "${MESON_INSTALL_QUIET:-}" ] || echo "Installing the tree $src to $dest"
