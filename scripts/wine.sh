#!/usr/bin/env bash
# Prepares the Windows unpacker to run under Wine and prints the directory that holds it, for
# tests/wine.rs (ENVPACK_WINE_DIR):
#   envpack-unpack.exe     built for x86_64-pc-windows-gnu with std from source (cross/toolchain.sh)
#                          and Debian's mingw-w64 as the linker
#   bcryptprimitives.dll   Wine 8 lacks ProcessPrng, which Rust's std needs at start (wine/*.c)
#   python.exe             the stand-in for the Windows CPython's interpreter (wine/*.c)
#   prefix/                the WINEPREFIX, made once
# Everything lands in a cache outside the repository (ENVPACK_CI_CACHE), so a second run only
# rebuilds what changed. Installs gcc-mingw-w64-x86-64 and wine64 (Debian) when missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "wine.sh: $*" >&2; }

cache=${ENVPACK_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/envpack-ci}
out="$cache/wine"
mkdir -p "$out"

missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
[[ -x /usr/lib/wine/wine64 ]] || missing+=(wine64)
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install "${missing[@]}"

tc=$(scripts/cross/toolchain.sh)
target=x86_64-pc-windows-gnu
log "cargo build -p envpack-unpack --target $target"
env -u RUSTUP_TOOLCHAIN PATH="$tc/bin:$PATH" RUSTC="$tc/bin/rustc" RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_DIR="$cache/target" \
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
  "$tc/bin/cargo" build --locked -Zbuild-std -p envpack-unpack --bin envpack-unpack \
  --target "$target" >&2
cp "$cache/target/$target/debug/envpack-unpack.exe" "$out/envpack-unpack.exe"

cc=(x86_64-w64-mingw32-gcc -O2 -Wall -Werror)
"${cc[@]}" -shared -o "$out/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c -ladvapi32
"${cc[@]}" -o "$out/python.exe" scripts/wine/standin-python.c

export WINEPREFIX="$out/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [[ ! -f $WINEPREFIX/.done ]]; then
  log "making the Wine prefix"
  rm -rf "$WINEPREFIX"
  /usr/lib/wine/wine64 wineboot --init >&2
  /usr/lib/wine/wineserver -w
  touch "$WINEPREFIX/.done"
fi
# The exe must start, or every test would fail for the same reason.
/usr/lib/wine/wine64 "$out/envpack-unpack.exe" --version >&2
echo "$out"
