#!/usr/bin/env bash
# The main job: build the example environment in lockfiles/local-devenv from its lock, unpack it
# into a root, run Conan from it and build OpenSSL offline with the team's recipe.
#
# CPython comes from a python-build-standalone style mirror and packages from a simple index.
# By default both are made on this machine (the public releases may be out of reach): the
# machine's own CPython 3.11.7 made relocatable, and the Conan 2.21.0 closure downloaded with pip
# and served on 127.0.0.1. Set ENVPACK_PYTHON_MIRROR / ENVPACK_INDEX_URL to use your own.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
fixtures=${ENVPACK_FIXTURES:-$repo/.fixtures}
out=${1:-$repo/out/example}
log() { echo "example: $*" >&2; }

cargo build --release --workspace --quiet
envpack=$repo/target/release/envpack
unpack=$repo/target/release/envpack-unpack

if [[ -z ${ENVPACK_PYTHON_MIRROR:-} ]]; then
  bash scripts/fixtures/python-mirror.sh "$fixtures/python-mirror"
  export ENVPACK_PYTHON_MIRROR="file://$fixtures/python-mirror"
fi
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [[ -z ${ENVPACK_INDEX_URL:-} ]]; then
  bash scripts/fixtures/wheelhouse.sh "$fixtures/wheelhouse"
  python3 scripts/fixtures/index.py build "$fixtures/wheelhouse" "$fixtures/index"
  coproc SERVER { exec python3 scripts/fixtures/index.py serve "$fixtures/index" --port 0; }
  server_pid=$SERVER_PID
  read -r line <&"${SERVER[0]}"
  export ENVPACK_INDEX_URL="http://127.0.0.1:${line#PORT=}/simple/"
  log "serving the local index at $ENVPACK_INDEX_URL"
fi

# The OpenSSL tarball the example's recipe pins, from Debian's source archive (by sha256, so
# any mirror of it serves): Conan gets it from the env, never from the network.
if [[ -z ${ENVPACK_SOURCE_MIRROR:-} ]]; then
  bash scripts/fixtures/debian-source.sh "$fixtures/sources"
  export ENVPACK_SOURCE_MIRROR="file://$fixtures/sources/"
fi

spec=lockfiles/local-devenv/envpack.toml
lock=lockfiles/local-devenv/envpack.lock
mkdir -p "$out"
"$envpack" build --spec "$spec" --lock "$lock" --out "$out/dist"
rm -rf "$out/root"
"$unpack" "$out/dist/openssl-devenv-linux-x86_64.envpack.tar" --root "$out/root"
"$out/root/bin/conan" --version
"$out/root/bin/conan" remote list
"$out/root/bin/conan" list "openssl-tools/*#*" -r envpack-recipes

# OpenSSL from the env's own recipe, python_requires and source, with no network at all when
# this machine can make a network namespace (EXAMPLE_OPENSSL=0 skips it; ~2 min on 2 cores).
if [[ ${EXAMPLE_OPENSSL:-1} != 0 ]]; then
  offline=()
  unshare -n true 2>/dev/null && offline=(unshare -n)
  log "building OpenSSL 3.0.22 ${offline:+with no network }from the env's recipe"
  "${offline[@]}" "$out/root/bin/conan" create \
    "$out/root/current/conan-recipes/recipes/openssl/3.0.22" --version 3.0.22 \
    -r envpack-recipes --build=missing
fi
"$envpack" verify --root "$out/root"
log "done: activate with '. $out/root/bin/activate'"
