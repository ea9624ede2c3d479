#!/usr/bin/env bash
# The project's test command: installs the system tools the tests use, builds the cached real
# fixtures (CPython mirror, Conan wheelhouse, local index), builds the workspace, runs the tests.
# Extra arguments go to `cargo test --workspace` (e.g. `scripts/test.sh -- --nocapture`).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "test.sh: $*" >&2; }

# Tools the tests shell out to, as Debian package:command.
needed=(patchelf:patchelf zstd:zstd tar:tar fish:fish zsh:zsh)
missing=()
for entry in "${needed[@]}"; do
  command -v "${entry#*:}" >/dev/null || missing+=("${entry%%:*}")
done
if ((${#missing[@]})); then
  sudo_=()
  [[ $(id -u) -eq 0 ]] || sudo_=(sudo)
  log "installing ${missing[*]}"
  "${sudo_[@]}" apt-get update -qq >&2
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

export ENVPACK_FIXTURES=${ENVPACK_FIXTURES:-$repo/.fixtures}
mkdir -p "$ENVPACK_FIXTURES"
python=${PYTHON:-python3}
log "fixtures in $ENVPACK_FIXTURES"
scripts/fixtures/python-mirror.sh --foreign "$ENVPACK_FIXTURES/python-mirror"
scripts/fixtures/wheelhouse.sh "$ENVPACK_FIXTURES/wheelhouse"
"$python" scripts/fixtures/index.py build "$ENVPACK_FIXTURES/wheelhouse" "$ENVPACK_FIXTURES/index"

log "cargo build --workspace"
cargo build --workspace
log "cargo test --workspace $*"
cargo test --workspace "$@"
