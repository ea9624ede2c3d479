#!/usr/bin/env bash
# Times `envpack audit --root ROOT` (re-hash of every file of the current env against its
# manifest, plus the meta/SBOM checks) against `sha256sum` over the same regular files, and
# prints both medians and their ratio (target: audit <= 1.2x sha256sum).
#
#   scripts/bench/audit.sh ROOT [RUNS]
#
# ROOT is an unpacked root (ROOT/current -> envs/<id>). ENVPACK_BIN overrides the binary
# (default: <repo>/target/release/envpack, built if missing). Output, one `key=value` a line:
#   audit_median_s=…  sha256sum_median_s=…  ratio=…  files=…
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
root=${1:?usage: scripts/bench/audit.sh ROOT [RUNS]}
runs=${2:-5}
envpack=${ENVPACK_BIN:-$repo/target/release/envpack}
if [[ ! -x $envpack ]]; then
  (cd "$repo" && cargo build --release -p envpack --quiet)
fi
env_dir=$root/$(readlink "$root/current")
[[ -f $env_dir/manifest ]] || { echo "audit.sh: $env_dir has no manifest" >&2; exit 2; }

list=$(mktemp)
trap 'rm -f "$list"' EXIT
(cd "$env_dir" && find . -type f ! -name manifest -print0 | sort -z) >"$list"
files=$(tr -cd '\0' <"$list" | wc -c)

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# One warm-up each so both read from the page cache.
"$envpack" --quiet audit --root "$root" >/dev/null
(cd "$env_dir" && xargs -0 sha256sum <"$list" >/dev/null)

audit_times=()
sum_times=()
for _ in $(seq "$runs"); do
  t0=$(now)
  "$envpack" --quiet audit --root "$root" >/dev/null
  t1=$(now)
  (cd "$env_dir" && xargs -0 sha256sum <"$list" >/dev/null)
  t2=$(now)
  audit_times+=("$(echo "$t1 - $t0" | bc -l)")
  sum_times+=("$(echo "$t2 - $t1" | bc -l)")
done
a=$(printf '%s\n' "${audit_times[@]}" | median)
s=$(printf '%s\n' "${sum_times[@]}" | median)
printf 'audit_median_s=%.3f\nsha256sum_median_s=%.3f\nratio=%.2f\nfiles=%s\n' \
  "$a" "$s" "$(echo "$a / $s" | bc -l)" "$files"
