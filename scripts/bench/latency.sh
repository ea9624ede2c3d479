#!/usr/bin/env bash
# Rows 9a–9c of scripts/bench.sh: a cold five-platform lock, and a cold five-platform build's
# downloads, through a loopback proxy that holds every request 50 ms (a far index), against
# uv pip compile --universal and pip download through the same proxy.
#
#   latency.sh WORK RESULTS RUNS ENVPACK PYTHON UV SPEC_DIR WHEELHOUSE
#
# ENVPACK_INDEX_URL (the local index) and ENVPACK_PYTHON_MIRROR come from bench.sh; the CPython
# archives stay file:// (they are copied and hashed, and pip has no counterpart for them).
set -euo pipefail
work=$1 results=$2 runs=$3 envpack=$4 python=$5 uv=$6 spec_src=$7 wheelhouse=$8
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
delay_ms=${BENCH_DELAY_MS:-50}
log() { echo "bench/latency: $*" >&2; }

rm -rf "$work"
mkdir -p "$work/spec"
upstream=${ENVPACK_INDEX_URL%/simple/}
proxy_pid=
trap '[[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null; true' EXIT
coproc PROXY { exec python3 "$here/slow_proxy.py" "$upstream" --delay-ms "$delay_ms" 2>"$work/proxy.log"; }
proxy_pid=$PROXY_PID
read -r line <&"${PROXY[0]}"
index="http://127.0.0.1:${line#PORT=}/simple/"

# The example's environment for all five platforms.
cp "$spec_src/envpack.toml" "$work/spec/"
cp -rL "$spec_src/profiles" "$work/spec/"
sed -i 's/^platforms = .*/platforms = ["linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-arm64", "windows-x86_64"]/' \
  "$work/spec/envpack.toml"
spec=$work/spec/envpack.toml
echo "conan==2.21.0" >"$work/requirements.in"
echo "delay_ms=$delay_ms" >"$results/latency.txt"

hf() { hyperfine --style basic "$@"; }
# Each run gets a new cache directory and nothing is deleted while the group runs (a new CI
# runner): a cache deleted just before would make every file creation skip the inodes it freed
# (ext4 without a journal keeps them for 60 s), which is the filesystem's cost, not latency's.
fresh() { echo "\$(mktemp -d $work/fresh/$1-XXXXXX)"; }
mkdir -p "$work/fresh"
lock_cmd="ENVPACK_INDEX_URL=$index $envpack --quiet --cache-dir $(fresh lock) lock --spec $spec --out $work/lock.toml"
log "9a. cold lock through the proxy"
args=(--runs "$runs" --export-json "$results/lock-latency.json"
  -n "envpack lock (five platforms, cold cache)" "$lock_cmd"
  -n "envpack lock, ENVPACK_HTTP_CONCURRENCY=1" "ENVPACK_HTTP_CONCURRENCY=1 $lock_cmd")
if [[ -n $uv ]]; then
  args+=(-n "uv pip compile --universal (cold cache)"
    "$uv pip compile --quiet --universal --python $python --python-version 3.11 --index-url $index --cache-dir $(fresh uv) $work/requirements.in -o $work/uv-requirements.txt")
fi
sync
sleep "${BENCH_SETTLE_SECS:-65}"
hf "${args[@]}"
rm -rf "$work/fresh"

log "9b. a cold build's downloads through the proxy"
lock=$work/spec/envpack.lock
ENVPACK_INDEX_URL=$index "$envpack" --quiet --cache-dir "$work/lock-cache" lock --spec "$spec" --out "$lock"
# The CPython archives come from the file:// mirror, which pip has no counterpart for: they
# are in the build's cache already (hard links from the lock's), so the phase times the same
# files pip downloads (each still hashed on use).
pythons=$(python3 -c '
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
shas = {p["python"]["sha256"] for p in lock["platform"]}
if "build-python" in lock:
    shas.add(lock["build-python"]["sha256"])
print(" ".join(sorted(shas)))' "$lock")
phase() { # CONCURRENCY: one cold build's download phase, in seconds
  rm -rf "$work/build-cache" "$work/dist"
  mkdir -p "$work/build-cache/blobs/sha256"
  for sha in $pythons; do
    ln "$work/lock-cache/blobs/sha256/$sha" "$work/build-cache/blobs/sha256/$sha"
  done
  ENVPACK_HTTP_CONCURRENCY=$1 ENVPACK_INDEX_URL=$index python3 "$here/download_phase.py" \
    "$envpack" --cache-dir "$work/build-cache" build --spec "$spec" --lock "$lock" --out "$work/dist"
}
: >"$results/build-downloads.txt"
for _ in $(seq "$runs"); do
  echo "envpack=$(phase 8)" >>"$results/build-downloads.txt"
  echo "envpack_c1=$(phase 1)" >>"$results/build-downloads.txt"
done
# pip prepares an sdist's metadata even for `download`: from a venv holding the build
# backend (setuptools, wheel, from the local wheelhouse) with --no-build-isolation, so that
# costs one backend run per sdist and no build-env downloads.
"$python" -m venv "$work/pip-venv"
"$work/pip-venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
  --find-links "$wheelhouse" setuptools wheel
hf --runs "$runs" --export-json "$results/pip-download.json" --prepare "rm -rf $work/pip-dl" \
  -n "pip download (same files, five platforms)" \
  "python3 $here/pip_download.py $work/pip-venv/bin/python $lock $index $work/pip-dl"
rm -rf "$work/build-cache" "$work/dist" "$work/lock-cache" "$work/uv-cache" "$work/pip-dl"
