#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer) targets in fuzz/ for a while each and prints one line per
# target: executions, seconds, corpus size, crashes. The committed seed corpus (fuzz/corpus/)
# is read-only input; what libFuzzer finds goes to out/fuzz/corpus/<target>, crashes to
# fuzz/artifacts/<target>/ (a non-zero exit).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# The stable toolchain builds the sanitizer flags with RUSTC_BOOTSTRAP=1; cargo-fuzz is
# installed from the crate registry when missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
secs=${1:-60}
shift || true
all=(layer_extract artifact_reader lock_parse wheel_metadata oci_json)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
log() { echo "fuzz.sh: $*" >&2; }

command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1

# Seeds: written once from real inputs and committed; regenerated only when missing.
if [[ ! -d fuzz/corpus/lock_parse ]]; then
  log "making the seed corpus"
  wheels=${ENVPACK_FIXTURES:-$repo/.fixtures}/wheelhouse
  cargo run --quiet --release --manifest-path fuzz/Cargo.toml --bin make_seeds -- "$repo" "$wheels" \
    ${FUZZ_OCI_LAYOUT:+"$FUZZ_OCI_LAYOUT"}
fi

log "building the targets"
cargo fuzz build --release
status=0
for t in "${targets[@]}"; do
  work=out/fuzz/corpus/$t
  mkdir -p "$work" "fuzz/artifacts/$t"
  logf=out/fuzz/$t.log
  if cargo fuzz run --release "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -timeout=20 -print_final_stats=1 \
    >"$logf" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logf" | grep -o '[0-9]*$' || echo '?')
  corpus=$(find "$work" -type f | wc -l)
  echo "$t: $result, $runs executions in ${secs}s, corpus $corpus (+$(find "fuzz/corpus/$t" -type f | wc -l) seeds)"
  [[ $result == ok ]] || tail -40 "$logf" >&2
done
exit "$status"
