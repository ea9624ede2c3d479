#!/usr/bin/env bash
# Measures envpack against the tools a user would otherwise reach for, on this machine, and
# writes BENCHMARKS.md (a table of medians and ratios, machine facts, method notes).
#
#   scripts/bench.sh [OUT.md]        (default: <repo>/BENCHMARKS.md)
#
# Self-contained: builds the release binaries and the fixtures (a relocatable CPython mirror,
# the Conan 2.21.0 wheelhouse, a local index served on 127.0.0.1), installs hyperfine, GNU time
# and zstd with apt-get and uv with pip into a throwaway venv when missing. The only network use
# is those package clients and the local index server.
#
# Knobs: BENCH_RUNS (fast benchmarks, default 10), BENCH_SLOW_RUNS (installs, default 3),
# ENVPACK_BENCH_DIR (scratch, default <repo>/out/bench), ENVPACK_FIXTURES (default
# <repo>/.fixtures), BENCH_SKIP_UV=1 to leave uv out.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
report=${1:-$repo/BENCHMARKS.md}
work=${ENVPACK_BENCH_DIR:-$repo/out/bench}
fixtures=${ENVPACK_FIXTURES:-$repo/.fixtures}
runs=${BENCH_RUNS:-10}
slow_runs=${BENCH_SLOW_RUNS:-3}
platform=linux-x86_64
# The peer gets the artifact's own settings: zstd level 10, one worker (layers/src/compress.rs).
zstd_level=10
log() { echo "bench: $*" >&2; }
# Paths go into hyperfine command strings unquoted.
for dir in "$repo" "$work" "$fixtures"; do
  [[ $dir != *[[:space:]]* ]] || { log "paths with whitespace are not supported: $dir"; exit 2; }
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tools -------------------------------------------------------------------------------
need_apt=()
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v patchelf >/dev/null || need_apt+=(patchelf)
command -v bc >/dev/null || need_apt+=(bc)
command -v curl >/dev/null || need_apt+=(curl)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]}"
  sudo_=()
  [[ $(id -u) -eq 0 ]] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq >&2
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi
# The real interpreter, not a version-manager shim, so the pip side pays no shim start-up.
python=$(python3.11 -c 'import sys; print(sys.executable)')

log "building release binaries"
cargo build --release --workspace --quiet
envpack=$repo/target/release/envpack
unpack=$repo/target/release/envpack-unpack

rm -rf "$work"
mkdir -p "$work"/{spec,results,peer}

# --- fixtures and the local index --------------------------------------------------------
# --foreign like scripts/test.sh, so a fixture dir shared with the tests keeps every archive.
bash scripts/fixtures/python-mirror.sh --foreign "$fixtures/python-mirror"
export ENVPACK_PYTHON_MIRROR="file://$fixtures/python-mirror"
wheelhouse=$fixtures/wheelhouse
bash scripts/fixtures/wheelhouse.sh "$wheelhouse"
python3 scripts/fixtures/index.py build "$wheelhouse" "$fixtures/index"
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
coproc SERVER { exec python3 scripts/fixtures/index.py serve "$fixtures/index" --port 0 2>"$work/index-server.log"; }
server_pid=$SERVER_PID
read -r line <&"${SERVER[0]}"
export ENVPACK_INDEX_URL="http://127.0.0.1:${line#PORT=}/simple/"
# Nothing from the caller's Python tooling may redirect the index.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL UV_INDEX_URL UV_EXTRA_INDEX_URL PIP_FIND_LINKS CONAN_HOME
export SOURCE_DATE_EPOCH=1700000000

results=$work/results
cache=$work/cache
cp lockfiles/local-devenv/envpack.toml "$work/spec/"
# -L: profiles/ is a relative symlink into a sibling example.
cp -rL lockfiles/local-devenv/profiles lockfiles/local-devenv/recipes "$work/spec/"
# The OpenSSL tarball the example's recipe pins.
bash scripts/fixtures/debian-source.sh "$fixtures/sources"
export ENVPACK_SOURCE_MIRROR="file://$fixtures/sources/"
spec=$work/spec/envpack.toml
lock=$work/spec/envpack.lock
ep=("$envpack" --quiet --cache-dir "$cache")

log "lock and cold build (fills the cache)"
"${ep[@]}" lock --spec "$spec" --out "$lock"
# One run only (its cache is what makes later builds warm): wall seconds and max RSS, for context.
/usr/bin/time -f '%e %M' -o "$results/build-cold.txt" \
  "${ep[@]}" build --spec "$spec" --lock "$lock" --platform "$platform" --out "$work/dist"
artifact=$work/dist/openssl-devenv-$platform.envpack.tar
[[ -f $artifact ]] || { log "no artifact at $artifact"; exit 1; }

# The unpacked env tree is the file tree both sides of every comparison handle.
"$unpack" --quiet "$artifact" --root "$work/ref-root"
tree=$(readlink -f "$work/ref-root/current")
peer_tar=$work/peer/tree.tar.zst
tar --sort=name -C "$tree" -cf - . | zstd -"$zstd_level" -T1 -q -o "$peer_tar"
{
  echo "artifact_bytes=$(stat -c %s "$artifact")"
  echo "peer_tar_zst_bytes=$(stat -c %s "$peer_tar")"
  echo "tree_files=$(find "$tree" -type f | wc -l)"
  echo "tree_bytes=$(du -sb "$tree" | cut -f1)"
} >"$results/sizes.txt"

hf() { hyperfine --style basic --warmup 1 "$@"; }

# Two filesystem states. "fresh": every run writes into a new directory and nothing is deleted
# while the group runs (a new CI runner, a new machine). "re-bootstrap": every run follows the
# deletion of the previous run's tree, and ext4 then spends much of each file creation skipping
# inodes it freed seconds ago. Both sides of a comparison always get the same state.
# Let freed inodes age out between groups: ext4 without a journal (as on this machine) skips
# every inode freed in the last 60 s when it allocates one (5 minutes more while the freed
# inode's table block is still dirty, hence the sync), scanning past each of them. Without the
# wait, one group's cleanup (tens of thousands of inodes) slows the next group's file
# creation several times over, and the "fresh" rows measure the previous group's deletions.
settle() { sync; sleep "${BENCH_SETTLE_SECS:-65}"; }
fresh_dir() { echo "\$(mktemp -d -p $1)"; }

# --- 1. unpack with every hash verified vs tar --zstd -xf ------------------------------------
settle # the previous bench's tree and the cold build's scratch were just deleted
log "1. unpack (fresh directories)"
u=$work/u
mkdir -p "$u/fresh"
hf --runs "$runs" --export-json "$results/unpack-fresh.json" \
  -n envpack-unpack "r=$(fresh_dir "$u/fresh") && $unpack --quiet $artifact --root \$r/root" \
  -n "tar --zstd -xf" "t=$(fresh_dir "$u/fresh") && tar --zstd -xf $peer_tar -C \$t"
# The same on one core: envpack-unpack's frames can't be decompressed in parallel, and tar and
# its zstd child process share the core too.
log "1. unpack on one core (taskset -c 0, fresh directories)"
hf --runs "$runs" --export-json "$results/unpack-1core.json" \
  -n "envpack-unpack (1 core)" "r=$(fresh_dir "$u/fresh") && taskset -c 0 $unpack --quiet $artifact --root \$r/root" \
  -n "tar --zstd -xf (1 core)" "t=$(fresh_dir "$u/fresh") && taskset -c 0 tar --zstd -xf $peer_tar -C \$t"
rm -rf "$u/fresh"
settle
log "1. unpack (right after deleting the previous tree)"
hf --runs "$runs" --export-json "$results/unpack.json" \
  --prepare "rm -rf $u/root" --prepare "rm -rf $u/tar && mkdir -p $u/tar" \
  -n envpack-unpack "$unpack --quiet $artifact --root $u/root" \
  -n "tar --zstd -xf" "tar --zstd -xf $peer_tar -C $u/tar"

# --- 2. bootstrap: unpack + first conan --version vs venv + pip/uv install --------------------
log "2. bootstrap"
b=$work/b
uv=
if [[ ${BENCH_SKIP_UV:-0} != 1 ]]; then
  if "$python" -m venv "$work/tools/uv" >&2 \
    && "$work/tools/uv/bin/pip" install --quiet --disable-pip-version-check uv >&2; then
    uv=$work/tools/uv/bin/uv
    "$uv" --version >"$results/uv-version.txt"
  else
    log "uv could not be installed; leaving it out"
  fi
fi
"$python" -m pip --version >"$results/pip-version.txt"
pip_cmd="$python -m venv $b/pip-venv && $b/pip-venv/bin/pip install --quiet --disable-pip-version-check --no-cache-dir --no-index --find-links $wheelhouse conan==2.21.0 && CONAN_HOME=$b/pip-conan-home $b/pip-venv/bin/conan --version"
bootstrap=(
  --prepare "rm -rf $b/root" -n "envpack-unpack + conan --version"
  "$unpack --quiet $artifact --root $b/root && $b/root/bin/conan --version"
  --prepare "rm -rf $b/pip-venv $b/pip-conan-home" -n "venv + pip install + conan --version" "$pip_cmd"
)
if [[ -n $uv ]]; then
  uv_install="$uv venv --quiet --python $python $b/uv-venv && $uv pip install --quiet --python $b/uv-venv/bin/python --offline --no-index --find-links $wheelhouse"
  bootstrap+=(
    --prepare "rm -rf $b/uv-venv $b/uv-cache $b/uv-conan-home" -n "uv venv + uv pip install (cold cache) + conan --version"
    "$uv_install --cache-dir $b/uv-cache conan==2.21.0 && CONAN_HOME=$b/uv-conan-home $b/uv-venv/bin/conan --version"
    # The warm-cache variant keeps uv's cache from the warmup run: the best case for uv.
    --prepare "rm -rf $b/uv-venv $b/uv-conan-home" -n "uv venv + uv pip install (warm cache) + conan --version"
    "$uv_install --cache-dir $b/uv-cache-warm conan==2.21.0 && CONAN_HOME=$b/uv-conan-home $b/uv-venv/bin/conan --version"
  )
fi
rm -rf "$u"
settle
mkdir -p "$b/fresh"
hf --runs "$slow_runs" --export-json "$results/bootstrap-fresh.json" \
  -n "envpack-unpack + conan --version" \
  "r=$(fresh_dir "$b/fresh") && $unpack --quiet $artifact --root \$r/root && \$r/root/bin/conan --version" \
  -n "venv + pip install + conan --version" \
  "v=$(fresh_dir "$b/fresh") && ${pip_cmd//$b\//\$v/}"
rm -rf "$b/fresh"
settle
hf --runs "$slow_runs" --export-json "$results/bootstrap.json" "${bootstrap[@]}"

# --- 3. warm-cache build vs tar --sort=name | zstd over the same tree -----------------------
log "3. warm build"
w=$work/w
hf --runs "$runs" --export-json "$results/build.json" \
  --prepare "rm -rf $w/dist" --prepare "rm -rf $w/peer && mkdir -p $w/peer" \
  -n "envpack build (warm cache, offline)" \
  "$envpack --quiet --offline --cache-dir $cache build --spec $spec --lock $lock --platform $platform --out $w/dist" \
  -n "tar --sort=name | zstd -$zstd_level" \
  "tar --sort=name -C $tree -cf - . | zstd -$zstd_level -T1 -q -o $w/peer/tree.tar.zst"
# Same bytes each time: the warm rebuild must reproduce the cold build's artifact.
if cmp -s "$artifact" "$w/dist/openssl-devenv-$platform.envpack.tar"; then
  echo same >"$results/build-reproduced.txt"
else
  echo differs >"$results/build-reproduced.txt"
fi

# Where a warm build spends its time: its progress lines, stamped as they arrive.
rm -rf "$w/dist"
"$envpack" --offline --cache-dir "$cache" build --spec "$spec" --lock "$lock" --platform "$platform" \
  --out "$w/dist" 2>&1 | python3 scripts/bench/timestamp.py >"$results/build-phases.txt"

# --- 3o. warm OCI build vs warm tarball build --------------------------------------------
# One pipeline: the image reads its prefixed cpython/packages layers from the layer cache too
# (the warmup run puts them there), and writes only its small layers.
log "3o. warm OCI build"
hf --runs "$runs" --export-json "$results/build-oci.json" --prepare "rm -rf $w/oci $w/dist" \
  -n "envpack build --format oci (warm cache, offline)" \
  "$envpack --quiet --offline --cache-dir $cache build --spec $spec --lock $lock --platform $platform --format oci --out $w/oci" \
  -n "envpack build (warm cache, offline)" \
  "$envpack --quiet --offline --cache-dir $cache build --spec $spec --lock $lock --platform $platform --out $w/dist"

# --- 4. peak RSS (max over three runs) ------------------------------------------------------
log "4. peak RSS"
peak_rss() { # NAME COMMAND...: the largest max-RSS (KiB) of three runs; PREP runs before each
  local name=$1 max=0 kb
  shift
  for _ in 1 2 3; do
    eval "${PREP:-true}"
    /usr/bin/time -f %M -o "$results/.rss" "$@" >/dev/null
    kb=$(tail -n1 "$results/.rss")
    if ((kb > max)); then max=$kb; fi
  done
  echo "$max" >"$results/rss-$name.txt"
}
PREP="rm -rf $w/dist" peak_rss build-warm \
  "$envpack" --quiet --offline --cache-dir "$cache" build --spec "$spec" --lock "$lock" --platform "$platform" --out "$w/dist"
PREP="rm -rf $w/peer && mkdir -p $w/peer" peak_rss build-peer \
  bash -c "tar --sort=name -C $tree -cf - . | zstd -$zstd_level -T1 -q -o $w/peer/tree.tar.zst"
PREP="rm -rf $u/root" peak_rss unpack "$unpack" --quiet "$artifact" --root "$u/root"
PREP="rm -rf $u/tar && mkdir -p $u/tar" peak_rss unpack-peer tar --zstd -xf "$peer_tar" -C "$u/tar"
rm -f "$results/.rss"

# --- 5. conan --version in the unpacked env vs the pip venv; the env must not change --------
log "5. conan --version"
c=$work/c
"$unpack" --quiet "$artifact" --root "$c/root"
"$python" -m venv "$c/venv"
"$c/venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir --no-index \
  --find-links "$wheelhouse" conan==2.21.0
env_tree=$(readlink -f "$c/root/current")
touch "$work/before-conan-runs"
sleep 1 # mtime granularity: anything written by the runs below is strictly newer.
hf --runs "$runs" --export-json "$results/conan.json" \
  -n "envpack env: bin/conan --version" "$c/root/bin/conan --version" \
  -n "pip venv: bin/conan --version" "CONAN_HOME=$c/pip-conan-home $c/venv/bin/conan --version"
"$c/root/bin/python3" -c 'import conan, yaml, jinja2, requests' # importing more must not write either
{
  if "$envpack" verify --root "$c/root" >"$results/verify.out" 2>&1; then echo "verify=ok"; else echo "verify=failed"; fi
  echo "files_written_in_env=$(find "$env_tree" -newer "$work/before-conan-runs" | wc -l)"
  echo "pycache_files_in_env=$(find "$env_tree" -name '*.pyc' | wc -l)"
} >"$results/unchanged.txt"

# --- 6. audit of an unpacked root vs sha256sum over the same files --------------------------
log "6. audit --root"
audit_list=$work/audit-files
(cd "$env_tree" && find . -type f ! -name manifest -print0 | sort -z) >"$audit_list"
hf --runs "$runs" --export-json "$results/audit.json" \
  -n "envpack audit --root" "$envpack --quiet audit --root $c/root" \
  -n "sha256sum over the same files" "cd $env_tree && xargs -0 sha256sum <$audit_list >/dev/null"

# --- 10. what signing and checking a signature cost -----------------------------------------
log "10. signatures"
settle
bash scripts/bench/trust.sh "$envpack" "$unpack" "$cache" "$spec" "$lock" "$platform" "$artifact" \
  "$work/trust" "$results" "$runs"

# --- 7. push an image layout to a local registry vs skopeo copy -----------------------------
log "7. push"
"${ep[@]}" --offline build --spec "$spec" --lock "$lock" --platform "$platform" --format oci \
  --out "$work/oci"
bash scripts/bench/push.sh "$work/oci" "$runs" >"$results/push.txt"

# --- 8. unpack from a registry vs skopeo copy + umoci unpack ---------------------------------
log "8. unpack REF"
if ! bash scripts/bench/pull.sh "$work/oci" "$runs" "$results/pull.json"; then
  log "8. unpack REF failed (above); BENCHMARKS.md leaves its row out"
  rm -f "$results/pull.json"
fi

# --- 9. a cold lock and a cold build's downloads through a far index (50 ms per request) ----
log "9. lock and downloads through a slow proxy"
if ! bash scripts/bench/latency.sh "$work/latency" "$results" "$slow_runs" "$envpack" "$python" \
  "$uv" lockfiles/local-devenv "$wheelhouse"; then
  log "9. failed (above); BENCHMARKS.md leaves its rows out"
  rm -f "$results/lock-latency.json" "$results/build-downloads.txt" "$results/pip-download.json"
fi

# --- machine facts and the report ----------------------------------------------------------
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total=$(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
  echo "kernel=$(uname -sr)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "fs=$(df -T "$work" | awk 'NR==2 {print $2}')"
  echo "envpack=$("$envpack" --version)"
  echo "python=$("$python" --version 2>&1)"
  echo "pip=$(cut -d' ' -f1-2 "$results/pip-version.txt")"
  [[ -f $results/uv-version.txt ]] && echo "uv=$(cat "$results/uv-version.txt")"
  echo "tar=$(tar --version | head -n1)"
  echo "zstd=zstd $(zstd --version | grep -o 'v[0-9.]*' | head -n1)"
  echo "hyperfine=$(hyperfine --version)"
  echo "load=$load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15 min)"
  echo "runs=$runs"
  echo "slow_runs=$slow_runs"
} >"$results/facts.txt"
python3 scripts/bench/report.py "$results" "$report"
log "wrote $report"
