#!/usr/bin/env bash
# Rows 10 of BENCHMARKS.md: what signing and checking a signature cost. 10a: a warm-cache
# `envpack build --sign` vs the same build unsigned; 10b: `envpack-unpack --trust` of a signed
# artifact vs the same unpack unchecked, each into a new directory (nothing deleted while the
# group runs).
# Usage: trust.sh ENVPACK UNPACK CACHE SPEC LOCK PLATFORM ARTIFACT WORK RESULTS RUNS
set -euo pipefail
envpack=$1 unpack=$2 cache=$3 spec=$4 lock=$5 platform=$6 artifact=$7 work=$8 results=$9 runs=${10}
mkdir -p "$work/fresh"
rm -f "$work/bench.key" "$work/bench.pub"
"$envpack" --quiet keygen --out "$work/bench.key"
hf() { hyperfine --style basic --warmup 1 "$@"; }
build="$envpack --quiet --offline --cache-dir $cache build --spec $spec --lock $lock --platform $platform"
hf --runs "$runs" --export-json "$results/trust-build.json" --prepare "rm -rf $work/dist" \
  -n "envpack build --sign (warm cache, offline)" "$build --sign $work/bench.key --out $work/dist" \
  -n "envpack build (warm cache, offline)" "$build --out $work/dist"
signed=$work/signed.envpack.tar
cp "$artifact" "$signed"
"$envpack" --quiet sign "$signed" --key "$work/bench.key"
sync
sleep "${BENCH_SETTLE_SECS:-65}"
fresh() { echo "\$(mktemp -d -p $work/fresh)"; }
hf --runs "$runs" --export-json "$results/trust-unpack.json" \
  -n "envpack-unpack --trust" "r=$(fresh) && $unpack --quiet unpack $signed --root \$r/root --trust $work/bench.pub" \
  -n "envpack-unpack (no signature check)" "r=$(fresh) && $unpack --quiet unpack $signed --root \$r/root"
rm -rf "$work/fresh"
