#!/usr/bin/env bash
# The archiver beside stub-cc.sh: for MSVC targets build scripts call it like lib.exe
# (`-out:LIB OBJ…`); the host `ar` makes the (never linked) archive. Other forms go to `ar`.
set -euo pipefail
out=
objs=()
for arg in "$@"; do
  case $arg in
    -out:*|/OUT:*|/out:*) out=${arg#*:} ;;
    -nologo|/NOLOGO|/nologo) ;;
    *) objs+=("$arg") ;;
  esac
done
[[ -n $out ]] || exec ar "$@"
rm -f "$out"
exec ar crs "$out" "${objs[@]}"
