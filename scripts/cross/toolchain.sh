#!/usr/bin/env bash
# Prints the path of a copy of the active Rust toolchain that can build std for any target.
#
# The machine's toolchain has only the Linux std and rustup's servers are not reachable, so
# `rustup target add` is no option. Debian ships the std sources as `rust-src`; the package of
# the *same* rustc version, linked in as `lib/rustlib/src/rust`, lets `-Zbuild-std` build std
# for Windows and macOS. The version is read from `rustc --version` at run time rather than
# pinned in a `rust-toolchain.toml`: a fresh machine of this kind has exactly one toolchain,
# and a pin naming any other channel would break every cargo command there.
#
# The Debian archive's address comes from the machine's own apt sources; nothing is
# installed: the .deb is fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# a cache outside the repository (ENVPACK_CI_CACHE, default ~/.cache/envpack-ci).
set -euo pipefail
log() { echo "cross/toolchain.sh: $*" >&2; }

cache=${ENVPACK_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/envpack-ci}
suite=${ENVPACK_RUST_SRC_SUITE:-trixie-backports}
version=$(rustc --version | awk '{print $2}')
sysroot=$(rustc --print sysroot)
tc="$cache/toolchain-$version"

if [[ -x $tc/bin/cargo && -f $tc/lib/rustlib/src/rust/library/std/src/lib.rs ]]; then
  echo "$tc"
  exit 0
fi
mkdir -p "$cache"

src="$cache/rust-src-$version"
if [[ ! -f $src/.done ]]; then
  apt_dir="$cache/apt-$suite"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  # The machine's Debian main archive entry (a deb822 stanza whose suites name the release,
  # not its -security or third-party repositories), re-pointed at the backports suite.
  python3 - "$suite" "$apt_dir/sources.list" <<'PY'
import glob, sys
suite, out = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        suites = fields.get("Suites", "").split()
        uris = fields.get("URIs", "").split()
        if fields.get("Types") == "deb" and uris and any(
            s.isalpha() and not s.endswith("security") for s in suites
        ) and not any(u.rstrip("/").endswith("-security") for u in uris):
            signed = fields.get("Signed-By", "/usr/share/keyrings/debian-archive-keyring.gpg")
            with open(out, "w") as f:
                f.write(f"deb [signed-by={signed}] {uris[0]} {suite} main\n")
            sys.exit(0)
sys.exit("no Debian archive entry found in /etc/apt/sources.list.d/*.sources")
PY
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  log "reading the $suite package list"
  apt-get "${apt_opts[@]}" update -qq >&2
  # The Debian version whose upstream part is exactly this rustc's (e.g. 1.95.0+dfsg1-2~bpo13+1).
  deb_version=$(apt-cache "${apt_opts[@]}" madison rust-src | awk -F'|' '{gsub(/ /,"",$2); print $2}' \
    | grep -E "^${version//./\\.}(\+|-)" | head -n1 || true)
  if [[ -z $deb_version ]]; then
    log "no rust-src for rustc $version in $suite; have: $(apt-cache "${apt_opts[@]}" madison rust-src | awk -F'|' '{print $2}' | tr -d ' ' | tr '\n' ' ')"
    exit 1
  fi
  log "downloading rust-src $deb_version"
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download -qq "rust-src=$deb_version" >&2)
  rm -rf "$src.tmp"
  dpkg-deb -x "$apt_dir"/rust-src_*.deb "$src.tmp"
  rm -f "$apt_dir"/rust-src_*.deb
  rm -rf "$src"
  mv "$src.tmp" "$src"
  touch "$src/.done"
fi
library=$(dirname "$(dirname "$(ls -d "$src"/usr/src/rustc-*/library/std)")")
[[ -f $library/library/std/src/lib.rs ]] || { log "no std sources in $src"; exit 1; }

log "hard-link copy of $sysroot with the std sources at $tc"
rm -rf "$tc.tmp"
cp -al "$sysroot" "$tc.tmp" 2>/dev/null || cp -a "$sysroot" "$tc.tmp"
mkdir -p "$tc.tmp/lib/rustlib/src"
rm -rf "$tc.tmp/lib/rustlib/src/rust"
ln -s "$library" "$tc.tmp/lib/rustlib/src/rust"
rm -rf "$tc"
mv "$tc.tmp" "$tc"
echo "$tc"
