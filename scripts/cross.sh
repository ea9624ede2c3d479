#!/usr/bin/env bash
# Type-checks and lints the whole workspace for the macOS and Windows targets from Linux:
# `cargo clippy --all-targets -D warnings` with std built from source (-Zbuild-std), so the
# `cfg(windows)` and `cfg(target_os = "macos")` code is compiled on every CI run here.
# Usage: scripts/cross.sh [TARGET...]   (default: the four targets below; with the host's
# x86_64-unknown-linux-gnu, which .ci/run lints, that is every platform envpack builds for)
# The std sources come from scripts/cross/toolchain.sh; the build lands in a cache outside the
# repository (ENVPACK_CI_CACHE), so a second run only re-checks the workspace crates.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "cross.sh: $*" >&2; }

targets=("$@")
# x86_64-pc-windows-msvc also checks (pass it by name); it is left out of the default set because
# its `cfg(windows)` code is the gnu target's and its std + dependencies cost CI minutes.
((${#targets[@]})) || targets=(x86_64-pc-windows-gnu x86_64-apple-darwin aarch64-apple-darwin aarch64-unknown-linux-gnu)
cache=${ENVPACK_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/envpack-ci}
tc=$(scripts/cross/toolchain.sh)
export PATH="$tc/bin:$PATH" RUSTC="$tc/bin/rustc" RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$cache/target"
# The same linker as scripts/wine.sh's build of the exe, so the two share one cache; the gnu
# target's -sys crates compile their C with mingw too (scripts/wine.sh installs it).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
unset RUSTUP_TOOLCHAIN

failed=()
for target in "${targets[@]}"; do
  if [[ $target == x86_64-pc-windows-gnu ]] && ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    log "$target: FAILED (needs x86_64-w64-mingw32-gcc: apt-get install gcc-mingw-w64-x86-64)"
    failed+=("$target")
    continue
  fi
  if [[ $target != *-windows-gnu ]]; then
    # No SDK for this target here: -sys crates' C gets scripts/cross/stub-cc.sh (see there).
    t=${target//-/_}
    export "CC_$t=$repo/scripts/cross/stub-cc.sh" "AR_$t=$repo/scripts/cross/stub-ar.sh"
  fi
  log "cargo clippy --workspace --all-targets --target $target -- -D warnings"
  start=$SECONDS
  if "$tc/bin/cargo" clippy --workspace --all-targets --locked -Zbuild-std --target "$target" \
      -- -D warnings; then
    log "$target: ok ($((SECONDS - start)) s)"
  else
    log "$target: FAILED ($((SECONDS - start)) s)"
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  log "${#targets[@]} targets checked, ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
log "${#targets[@]} targets checked, 0 failed"
