#!/usr/bin/env bash
# Times `envpack push` against `skopeo copy --all --preserve-digests oci:LAYOUT docker://…`
# into a local Debian `docker-registry` (started here on 127.0.0.1, own storage), for a first
# push into a fresh repository and for a no-op re-push, and prints medians and ratios
# (targets: first push <= 1.0x skopeo; no-op re-push under 0.5 s).
#
#   scripts/bench/push.sh LAYOUT [RUNS]
#
# LAYOUT is an OCI image layout from `envpack build --format oci`. ENVPACK_BIN overrides the
# binary (default: <repo>/target/release/envpack, built if missing). Output, one `key=value` a
# line: envpack_push_median_s skopeo_push_median_s push_ratio envpack_noop_median_s
# skopeo_noop_median_s noop_ratio blob_bytes
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
layout=$(cd "${1:?usage: scripts/bench/push.sh LAYOUT [RUNS]}" && pwd)
runs=${2:-5}
envpack=${ENVPACK_BIN:-$repo/target/release/envpack}
if [[ ! -x $envpack ]]; then
  (cd "$repo" && cargo build --release -p envpack --quiet)
fi
for tool in docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || { echo "push.sh: $tool is missing" >&2; exit 2; }
done
# shellcheck source=registry.sh
source "$repo/scripts/bench/registry.sh"
tag=$(layout_tag "$layout")

registry_scratch

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ep() { "$envpack" --quiet --cache-dir "$work/cache" push "$host/$1:$tag" --layout "$layout" >/dev/null; }
sk() { skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false "oci:$layout:$tag" "docker://$host/$1:$tag" >/dev/null; }
timed() { local t0; t0=$(now); "$@"; echo "$(now) - $t0" | bc -l; }

# Warm-up (page cache) against a throwaway registry.
start_registry
ep warm/envpack
sk warm/skopeo
stop_registry

ep_first=() sk_first=() ep_noop=() sk_noop=()
for i in $(seq "$runs"); do
  start_registry
  # Fresh repositories each run, alternating who goes first.
  if ((i % 2)); then
    ep_first+=("$(timed ep "run$i/envpack")")
    sk_first+=("$(timed sk "run$i/skopeo")")
  else
    sk_first+=("$(timed sk "run$i/skopeo")")
    ep_first+=("$(timed ep "run$i/envpack")")
  fi
  ep_noop+=("$(timed ep "run$i/envpack")")
  sk_noop+=("$(timed sk "run$i/skopeo")")
  stop_registry
done
ef=$(printf '%s\n' "${ep_first[@]}" | median)
sf=$(printf '%s\n' "${sk_first[@]}" | median)
en=$(printf '%s\n' "${ep_noop[@]}" | median)
sn=$(printf '%s\n' "${sk_noop[@]}" | median)
bytes=$(du -sb "$layout/blobs" | cut -f1)
printf 'envpack_push_median_s=%.3f\nskopeo_push_median_s=%.3f\npush_ratio=%.2f\n' "$ef" "$sf" "$(echo "$ef / $sf" | bc -l)"
printf 'envpack_noop_median_s=%.3f\nskopeo_noop_median_s=%.3f\nnoop_ratio=%.2f\nblob_bytes=%s\n' "$en" "$sn" "$(echo "$en / $sn" | bc -l)" "$bytes"
