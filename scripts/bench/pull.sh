#!/usr/bin/env bash
# Times `envpack unpack REF --root R` from a local Debian `docker-registry` (started here on
# 127.0.0.1) against what a user would otherwise run to get the same image's files onto disk:
# `skopeo copy docker://REF oci:DIR:TAG` then `umoci unpack --rootless --image DIR:TAG BUNDLE`.
# Every run of either side starts from nothing: a new directory, and for envpack a new
# --cache-dir, so both download every blob (target: <= 1.2x).
#
#   scripts/bench/pull.sh LAYOUT RUNS OUT.json
#
# LAYOUT is an OCI image layout from `envpack build --format oci` (pushed once by envpack).
# OUT.json is hyperfine's export, envpack first. ENVPACK_BIN overrides the binary.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
layout=$(cd "${1:?usage: scripts/bench/pull.sh LAYOUT RUNS OUT.json}" && pwd)
runs=${2:?usage: scripts/bench/pull.sh LAYOUT RUNS OUT.json}
out=${3:?usage: scripts/bench/pull.sh LAYOUT RUNS OUT.json}
envpack=${ENVPACK_BIN:-$repo/target/release/envpack}
for tool in docker-registry skopeo umoci hyperfine python3 curl; do
  command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing" >&2; exit 2; }
done
# shellcheck source=registry.sh
source "$repo/scripts/bench/registry.sh"
tag=$(layout_tag "$layout")

registry_scratch
[[ $work != *[[:space:]]* ]] || { echo "pull.sh: scratch path has whitespace: $work" >&2; exit 2; }

start_registry
ref=$host/bench/env:$tag
"$envpack" --quiet --cache-dir "$work/push-cache" push "$ref" --layout "$layout" >/dev/null
mkdir -p "$work/fresh"
fresh='d=$(mktemp -d -p '"$work/fresh"')'
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out" \
  -n "envpack unpack REF" \
  "$fresh && $envpack --quiet --cache-dir \$d/cache unpack $ref --root \$d/root" \
  -n "skopeo copy + umoci unpack" \
  "$fresh && skopeo copy --quiet --src-tls-verify=false docker://$ref oci:\$d/layout:$tag && umoci unpack --rootless --image \$d/layout:$tag \$d/bundle >/dev/null"
# Both sides must have produced the env: the last run of each is checked.
last_root=$(ls -td "$work"/fresh/*/root | head -n1)
last_bundle=$(ls -td "$work"/fresh/*/bundle | head -n1)
[[ -f $last_root/current/envpack.json ]] || { echo "pull.sh: envpack left no env in $last_root" >&2; exit 1; }
compgen -G "$last_bundle/rootfs/opt/envpack/*/current/envpack.json" >/dev/null \
  || { echo "pull.sh: umoci left no env in $last_bundle" >&2; exit 1; }
