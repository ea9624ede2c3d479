//! One pipeline for both formats: the big CPython and packages layers are made once per
//! platform and reused from the layer cache by tarball and image builds alike, cold and warm
//! builds write the same bytes, and a profile change rewrites only the small layers. Which
//! layers a build wrote is read from the layers crate's debug log ("wrote layer").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use envpack_e2e::*;

const PLATFORM: &str = "linux-x86_64";
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

/// A spec locked for one platform, with its own (cold) cache.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cache: PathBuf,
    index: IndexServer,
    mirror_url: String,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::Builder::new()
            .prefix("envpack-reuse-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let s = Setup {
            cache: dir.join("cache"),
            dir,
            _tmp: tmp,
            index: IndexServer::start(&index_dir(), &[]),
            mirror_url: format!("file://{}", python_mirror().display()),
        };
        write_fixture_spec_dir(&s.spec(), &[PLATFORM], GCC12);
        run(s.envpack().arg("lock"));
        s
    }

    fn spec(&self) -> PathBuf {
        self.dir.join("spec")
    }

    fn envpack(&self) -> Command {
        envpack_cmd(&self.spec(), &self.cache, &self.index.url, &self.mirror_url)
    }

    /// Builds `format` into `out` (under the setup's dir); returns the names of the layers the
    /// build wrote, in order.
    fn build(&self, format: &str, out: &str) -> Vec<String> {
        let o = run(self
            .envpack()
            .env("RUST_LOG", "envpack_layers=debug")
            .env("NO_COLOR", "1")
            .args(["build", "--platform", PLATFORM, "--format", format, "--out"])
            .arg(self.dir.join(out)));
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.contains("wrote layer"))
            .map(|l| {
                let (_, rest) = l.split_once("layer=").unwrap_or_else(|| panic!("{l}"));
                let name = rest.split_whitespace().next().unwrap_or_default();
                name.trim_matches('"').to_string()
            })
            .collect()
    }

    fn path(&self, out: &str) -> PathBuf {
        self.dir.join(out)
    }
}

/// Every file under `dir` (relative path → sha256), symlinks as their targets.
fn tree_digests(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let md = fs_err::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                todo.push(p);
            } else if md.file_type().is_symlink() {
                let target = fs_err::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else {
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    out
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cold_and_warm_builds_write_the_same_bytes_and_reuse_the_big_layers() {
    let s = Setup::new();
    let all_image = names(&["cpython", "packages", "conan", "meta", "root"]);
    let small_image = names(&["conan", "meta", "root"]);

    assert_eq!(s.build("oci", "oci-cold"), all_image, "cold image build");
    assert_eq!(s.build("oci", "oci-warm"), small_image, "warm image build");
    let cold = tree_digests(&s.path("oci-cold"));
    assert!(cold.len() > 5, "{cold:?}");
    assert_eq!(cold, tree_digests(&s.path("oci-warm")));

    // The trees are cached, their unprefixed files are not yet: those are written once.
    assert_eq!(
        s.build("tarball", "tar-first"),
        names(&["cpython", "packages", "conan", "meta"])
    );
    assert_eq!(s.build("tarball", "tar-warm"), names(&["conan", "meta"]));
    let artifact = format!("openssl-devenv-{PLATFORM}.envpack.tar");
    let first = sha256_file(&s.path("tar-first").join(&artifact));
    assert_eq!(first, sha256_file(&s.path("tar-warm").join(&artifact)));

    // A tarball from a cache that never saw an image: the same bytes again.
    let other = Setup::new();
    other.build("tarball", "tar-cold");
    assert_eq!(first, sha256_file(&other.path("tar-cold").join(&artifact)));

    // The archive of a warm image holds the warm layout's blobs.
    assert_eq!(s.build("oci-archive", "img.oci.tar"), small_image);
    let x = s.path("archive-x");
    fs_err::create_dir_all(&x).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(s.path("img.oci.tar"))
        .arg("-C")
        .arg(&x));
    assert_eq!(cold, tree_digests(&x));

    // Layouts are the user's: an edit of every blob in one changes neither another layout
    // nor what the next build writes (no blob shares an inode with the cache).
    for blob in fs_err::read_dir(s.path("oci-cold").join("blobs/sha256")).unwrap() {
        let path = blob.unwrap().path();
        let mut f = fs_err::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"edited").unwrap();
    }
    assert_eq!(cold, tree_digests(&s.path("oci-warm")));
    s.build("oci", "oci-after-edit");
    assert_eq!(cold, tree_digests(&s.path("oci-after-edit")));
}

#[test]
fn a_profile_change_rewrites_only_the_small_layers_in_both_formats() {
    let s = Setup::new();
    s.build("oci", "oci-before");
    s.build("tarball", "tar-before");
    write_fixture_spec_dir(
        &s.spec(),
        &[PLATFORM],
        &GCC12.replace("compiler.version=12", "compiler.version=13"),
    );
    run(s.envpack().arg("lock"));
    assert_eq!(
        s.build("oci", "oci-after"),
        names(&["conan", "meta", "root"])
    );
    assert_eq!(s.build("tarball", "tar-after"), names(&["conan", "meta"]));

    // The two biggest blobs (cpython, packages) are shared by both layouts.
    let biggest = |dir: &Path| -> Vec<String> {
        let blobs = dir.join("blobs/sha256");
        let mut v: Vec<(u64, String)> = fs_err::read_dir(&blobs)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let len = e.metadata().unwrap().len();
                (len, e.file_name().to_string_lossy().into_owned())
            })
            .collect();
        v.sort();
        v.into_iter().rev().take(2).map(|(_, n)| n).collect()
    };
    let big = biggest(&s.path("oci-before"));
    assert_eq!(big, biggest(&s.path("oci-after")));
    for b in &big {
        let before = s.path("oci-before/blobs/sha256").join(b);
        assert_eq!(sha256_file(&before), *b);
    }
    let artifact = format!("openssl-devenv-{PLATFORM}.envpack.tar");
    assert_ne!(
        sha256_file(&s.path("tar-before").join(&artifact)),
        sha256_file(&s.path("tar-after").join(&artifact))
    );
}
