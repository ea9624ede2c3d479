#!/usr/bin/env bash
# The project's test command: installs the system tools the tests use, builds the cached real
# fixtures (CPython mirror, Conan wheelhouse, local index), builds the workspace, runs the tests.
# Extra arguments go to `cargo test --workspace` (e.g. `scripts/test.sh -- --nocapture`).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { echo "test.sh: $*" >&2; }

# The fast loops (documented in the README's "Tests"):
#   scripts/test.sh --quick [ARGS]        unit tests of every crate: no apt, no fixtures
#   scripts/test.sh --suite NAME [ARGS]   one end-to-end suite (tests/NAME.rs) against the
#                                         fixtures an earlier full run made
case ${1:-} in
  --quick)
    shift
    log "unit tests (cargo test --workspace --lib --bins $*)"
    exec cargo test --workspace --lib --bins "$@"
    ;;
  --suite)
    [[ $# -ge 2 ]] || { log "--suite needs a NAME (one of: $(cd tests && ls ./*.rs | sed 's|./||; s|\.rs$||' | grep -v '^support$' | tr '\n' ' '))"; exit 2; }
    suite=$2
    shift 2
    [[ -f tests/$suite.rs ]] || { log "no suite tests/$suite.rs"; exit 2; }
    export ENVPACK_FIXTURES=${ENVPACK_FIXTURES:-${XDG_CACHE_HOME:-$HOME/.cache}/envpack-fixtures}
    [[ -d $ENVPACK_FIXTURES/index ]] || { log "no fixtures in $ENVPACK_FIXTURES: run scripts/test.sh once"; exit 2; }
    export ENVPACK_REQUIRE_FIXTURES=1 ENVPACK_TEST_CONAN=$ENVPACK_FIXTURES/conan-venv/bin/conan \
      ENVPACK_TEST_CONAN_SERVER=$ENVPACK_FIXTURES/conan-server-venv/bin/conan_server \
      ENVPACK_SBOM_TOOLS=$ENVPACK_FIXTURES/sbom-tools ENVPACK_DSSE_TOOLS=$ENVPACK_FIXTURES/dsse-tools
    cargo build --workspace
    exec cargo test -p envpack-e2e --test "$suite" "$@"
    ;;
esac

# Tools the tests shell out to, as Debian package:command.
needed=(patchelf:patchelf zstd:zstd tar:tar fish:fish zsh:zsh skopeo:skopeo umoci:umoci
        docker-registry:docker-registry podman:podman runc:runc buildah:buildah
        debootstrap:debootstrap uidmap:newuidmap slirp4netns:slirp4netns minisign:minisign)
missing=()
for entry in "${needed[@]}"; do
  command -v "${entry#*:}" >/dev/null || missing+=("${entry%%:*}")
done
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install "${missing[@]}"

# Outside the checkout, so a fresh clone (CI) reuses what an earlier run downloaded and built.
export ENVPACK_FIXTURES=${ENVPACK_FIXTURES:-${XDG_CACHE_HOME:-$HOME/.cache}/envpack-fixtures}
mkdir -p "$ENVPACK_FIXTURES"
python=${PYTHON:-python3}
log "fixtures in $ENVPACK_FIXTURES"
scripts/fixtures/python-mirror.sh --foreign "$ENVPACK_FIXTURES/python-mirror"
scripts/fixtures/wheelhouse.sh "$ENVPACK_FIXTURES/wheelhouse"
# Wheels whose newest files need a raised glibc/macOS target (tests/targets.rs).
scripts/fixtures/targets-wheelhouse.sh "$ENVPACK_FIXTURES/targets-wheelhouse"
"$python" scripts/fixtures/index.py build "$ENVPACK_FIXTURES/wheelhouse" "$ENVPACK_FIXTURES/index"
# The upstream OpenSSL tarball of the example's recipe, from Debian's source archive.
scripts/fixtures/debian-source.sh "$ENVPACK_FIXTURES/sources"
# A Debian root with gcc, make and perl: the base of the image that builds C with Conan.
scripts/fixtures/compiler-rootfs.sh "$ENVPACK_FIXTURES/compiler-rootfs"

# Real wheels for the installer's own tests, and a pip-installed Conan 2.21.0 (from the local
# wheelhouse, no index) that checks the CONAN_HOME template; with these present the tests that
# use them must run, not skip.
wheels_c="$ENVPACK_FIXTURES/wheels-c"
if [[ ! -f $wheels_c/.stamp ]]; then
  log "real wheels for the installer tests"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
    -d "$wheels_c" PyYAML==6.0.2 Jinja2==3.1.6 MarkupSafe==3.0.2 colorama==0.4.6 wheel==0.45.1
  touch "$wheels_c/.stamp"
fi
# Real wheels of versions with published advisories, for the vulnerability gate
# (tests/vulns.rs); their dependencies come from the wheelhouse above.
vuln_wheels="$ENVPACK_FIXTURES/vuln-wheels"
if [[ ! -f $vuln_wheels/.stamp ]]; then
  log "wheels with known advisories for the vulnerability gate"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$vuln_wheels" requests==2.31.0 idna==3.6 Jinja2==3.1.4 urllib3==2.2.1
  touch "$vuln_wheels/.stamp"
fi
# 57 popular real requirements per platform (and cmake 4.x), with their dependencies, for the differential test
# against pip (tests/pip_differential.rs); ~700 MB, re-downloaded only when the pinned
# lists in scripts/fixtures/differential/ change.
scripts/fixtures/differential.sh "$ENVPACK_FIXTURES/differential"
conan_venv="$ENVPACK_FIXTURES/conan-venv"
if [[ ! -x $conan_venv/bin/conan ]]; then
  log "a pip-installed Conan from the wheelhouse"
  rm -rf "$conan_venv"
  "$python" -m venv "$conan_venv"
  "$conan_venv/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$ENVPACK_FIXTURES/wheelhouse" conan==2.21.0
fi
# The real Conan remote (conan-server, the same version as conan) for tests/conan_content.rs,
# from the configured package index.
conan_server_venv="$ENVPACK_FIXTURES/conan-server-venv"
if [[ ! -x $conan_server_venv/bin/conan_server ]]; then
  log "conan-server 2.21.0"
  rm -rf "$conan_server_venv"
  "$python" -m venv "$conan_server_venv"
  "$conan_server_venv/bin/pip" install --quiet --disable-pip-version-check conan-server==2.21.0
fi
export ENVPACK_TEST_CONAN_SERVER="$conan_server_venv/bin/conan_server"
# The official SBOM validators (CycloneDX JSON schema, SPDX tools) in a venv of their own.
sbom_tools="$ENVPACK_FIXTURES/sbom-tools"
if [[ ! -x $sbom_tools/bin/pyspdxtools ]]; then
  log "SBOM validators"
  rm -rf "$sbom_tools"
  "$python" -m venv "$sbom_tools"
  "$sbom_tools/bin/pip" install --quiet --disable-pip-version-check \
    "cyclonedx-python-lib[json-validation]==11.12.0" "spdx-tools==0.8.5"
fi
export ENVPACK_SBOM_TOOLS="$sbom_tools"
# securesystemslib (DSSE, ed25519), the independent check of envpack's signed provenance.
dsse_tools="$ENVPACK_FIXTURES/dsse-tools"
if [[ ! -x $dsse_tools/bin/python ]] || ! "$dsse_tools/bin/python" -c "import securesystemslib.dsse, cryptography" 2>/dev/null; then
  log "DSSE verifier (securesystemslib)"
  rm -rf "$dsse_tools"
  "$python" -m venv "$dsse_tools"
  "$dsse_tools/bin/pip" install --quiet --disable-pip-version-check "securesystemslib[crypto]==1.3.0"
fi
export ENVPACK_DSSE_TOOLS="$dsse_tools"
export ENVPACK_REQUIRE_FIXTURES=1
export ENVPACK_TEST_CONAN="$conan_venv/bin/conan"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0

# The workspace's rust-version, then clippy of the workspace for the Windows and macOS targets
# (std built from Debian's rust-src); each target counts as one test in the closing line.
scripts/msrv.sh
# The Windows unpacker under Wine (tests/wine.rs): these tests must run here, not skip.
# (First: it installs mingw, which the windows-gnu cross-check needs too.)
log "the Windows unpacker for Wine (scripts/wine.sh)"
ENVPACK_WINE_DIR=$(scripts/wine.sh)
export ENVPACK_WINE_DIR ENVPACK_REQUIRE_WINE=1
log "cross-checking the other targets (scripts/cross.sh)"
scripts/cross.sh 2>&1 | tee -a "$out" || status=$?

log "cargo build --workspace"
cargo build --workspace
log "cargo test --workspace --no-fail-fast $*"
# --no-fail-fast: one failing test binary must not hide what the later ones would say.
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee -a "$out" || status=$?
# One closing line over every test binary (cargo's own last line is the doc-test run's) and
# every cross-checked target.
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^cross.sh: [^ ]+: ok/ { p++ } /^cross.sh: [^ ]+: FAILED/ { f++ }
     END { printf "%d passed, %d failed\n", p, f }' "$out"
log "disk after the tests: $(df -h --output=avail,pcent "${TMPDIR:-/tmp}" | tail -n1)"
exit "$status"
