#!/usr/bin/env bash
# The C compiler for targets that are only type-checked (macOS, Windows MSVC): build scripts
# of -sys crates (zstd-sys, ring) still compile their C, but `cargo check` links nothing, so the
# objects are never used, and this machine has no SDK for those targets. Each requested object
# is an empty one from the host compiler; `-E` (feature probes) preprocesses an empty file.
set -euo pipefail
out=
prev=
for arg in "$@"; do
  [[ $prev == -o ]] && out=$arg
  case $arg in
    -E) exec cc -E -x c /dev/null ;;
    -o?*) out=${arg#-o} ;;
    /Fo*) out=${arg#/Fo} ;;
    -Fo*) out=${arg#-Fo} ;;
  esac
  prev=$arg
done
[[ -n $out ]] && exec cc -c -x c /dev/null -o "$out"
exit 0
