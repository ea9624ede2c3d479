#!/usr/bin/env bash
# Keeps the workspace's `rust-version` true.
# 1. No locked dependency may declare a newer `rust-version` than the workspace's (cargo
#    metadata; the newest today is pubgrub 0.4's 1.92, which is why the workspace says 1.92).
# 2. The workspace's own use of std is checked against it by clippy's `incompatible_msrv` lint,
#    which reads `rust-version` (part of `cargo clippy -D warnings` in .ci/run). It can't see
#    APIs reached through a wrapper (fs-err's `File::lock`, 1.89), hence point 3.
# 3. When a toolchain of exactly that version is installed (rustup toolchain `X.Y`), the
#    workspace is compiled with it. Machines of the CI kind here carry only their one toolchain
#    and can't download another, so there this step says so; the GitHub `msrv` job runs it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "msrv.sh: $*" >&2; }

msrv=$(cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
ver = lambda s: tuple(int(x) for x in s.split("."))
members = set(m["workspace_members"])
own = {p["rust_version"] for p in m["packages"] if p["id"] in members}
if len(own) != 1 or None in own:
    sys.exit(f"msrv.sh: workspace members disagree on rust-version: {sorted(map(str, own))}")
msrv = own.pop()
newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in m["packages"]
    if p["id"] not in members and p.get("rust_version") and ver(p["rust_version"]) > ver(msrv)
)
for name, version, rv in newer:
    print(f"msrv.sh: {name} {version} needs rust {rv}, the workspace says {msrv}", file=sys.stderr)
if newer:
    sys.exit(1)
print(msrv)
')
log "rust-version $msrv: no locked dependency needs a newer compiler"
if rustup toolchain list 2>/dev/null | grep -q "^$msrv[.-]"; then
  log "cargo +$msrv check --workspace --all-targets --locked"
  cargo "+$msrv" check --workspace --all-targets --locked
  log "compiled with rust $msrv"
else
  log "no rust $msrv toolchain on this machine (only: $(rustup toolchain list 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ')); the GitHub msrv job compiles with it"
fi
