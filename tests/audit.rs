//! `envpack audit` end to end on the real fixtures: clean artifacts, roots, layouts, caches and
//! rebuilds pass; one flipped byte in a cached wheel, a layer of a tarball, a file of an unpacked
//! tree or a package hash in the lock makes it fail naming the exact item.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use envpack_e2e::*;
use serde_json::Value;

const NAME: &str = "openssl-devenv";
const PLATFORM: &str = "linux-x86_64";
const GCC12: &str = "[settings]\nos=Linux\narch=x86_64\ncompiler=gcc\ncompiler.version=12\ncompiler.libcxx=libstdc++11\nbuild_type=Release\n";

struct Built {
    dir: PathBuf,
    cache: PathBuf,
    index: IndexServer,
    mirror_url: String,
    artifact: PathBuf,
}

impl Built {
    fn envpack_in(&self, dir: &Path) -> Command {
        envpack_cmd(dir, &self.cache, &self.index.url, &self.mirror_url)
    }
    fn envpack(&self) -> Command {
        self.envpack_in(&self.dir)
    }
}

fn write_spec(dir: &Path, profile: &str) {
    write_fixture_spec_dir(dir, &[PLATFORM], profile);
}

/// One linux-x86_64 lock, built into `dist/`.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mirror = python_mirror();
        let index = IndexServer::start(&index_dir(), &[]);
        let dir = envpack_e2e::process_dir("envpack-audit-");
        write_spec(&dir, GCC12);
        let b = Built {
            cache: dir.join("cache"),
            index,
            mirror_url: format!("file://{}", mirror.display()),
            artifact: dir
                .join("dist")
                .join(format!("{NAME}-{PLATFORM}.envpack.tar")),
            dir,
        };
        run(b.envpack().arg("lock"));
        run(b.envpack().args(["build", "--out", "dist"]));
        b
    })
}

fn unpack(b: &Built, name: &str) -> PathBuf {
    let root = b.dir.join(name);
    run(Command::new(unpack_bin())
        .arg(&b.artifact)
        .arg("--root")
        .arg(&root));
    root
}

/// Runs an audit that must fail; returns its stdout.
fn failing(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "audit passed but should not have:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn lock_package(lock_text: &str, name: &str) -> (String, String) {
    let lock: toml::Value = toml::from_str(lock_text).unwrap();
    let p = lock["platform"][0]["package"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .unwrap()
        .clone();
    (
        p["filename"].as_str().unwrap().to_string(),
        p["sha256"].as_str().unwrap().to_string(),
    )
}

fn flip_hex(hex: &str) -> String {
    let mut c: Vec<char> = hex.chars().collect();
    c[10] = if c[10] == '0' { '1' } else { '0' };
    c.into_iter().collect()
}

#[test]
fn clean_lock_artifact_root_and_layout_pass() {
    let b = built();
    let out = run(b.envpack().arg("audit"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("ok: "), "{text}");
    let json = run(b.envpack().args(["--json", "audit"]).arg(&b.artifact));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["findings"], serde_json::json!([]));
    assert!(v["checked"].as_u64().unwrap() > 1000, "{v}");
    let root = unpack(b, "root-clean");
    run(b
        .envpack()
        .args(["audit", "--lock", "envpack.lock", "--root"])
        .arg(&root));
    run(b
        .envpack()
        .args(["build", "--format", "oci", "--out", "layout"]));
    run(b
        .envpack()
        .args(["audit", "--lock", "envpack.lock"])
        .arg(b.dir.join("layout")));
    // --offline says what it skipped.
    let out = run(b.envpack().args(["--offline", "audit"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--offline: not checked"));
}

/// The OCI layout of the lock, built once.
fn layout() -> &'static PathBuf {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let b = built();
        run(b
            .envpack()
            .args(["build", "--format", "oci", "--out", "layout"]));
        b.dir.join("layout")
    })
}

#[test]
fn damaged_sbom_referrer_in_a_layout_is_named() {
    let b = built();
    let copy = b.dir.join("layout-tampered");
    run(Command::new("cp").arg("-r").arg(layout()).arg(&copy));
    let index: Value =
        serde_json::from_slice(&fs_err::read(copy.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["dev.envpack.sbom.format"] == "spdx")
        .unwrap();
    let blob = |d: &str| {
        copy.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let m: Value =
        serde_json::from_slice(&fs_err::read(blob(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let sbom = blob(m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = fs_err::read(&sbom).unwrap();
    bytes[10] ^= 1;
    fs_err::write(&sbom, bytes).unwrap();
    let text = failing(b.envpack().arg("audit").arg(&copy));
    let subject = m["subject"]["digest"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "spdx referrer of manifest {subject}: blob sha256:"
        )),
        "{text}"
    );
    assert_eq!(text.matches("FINDING").count(), 1, "{text}");
}

#[test]
fn flipped_byte_in_a_cached_wheel_is_named() {
    let b = built();
    let lock_text = fs_err::read_to_string(b.dir.join("envpack.lock")).unwrap();
    let (filename, sha) = lock_package(&lock_text, "pyyaml");
    // A copy of the cache (hard links) with one wheel replaced by a damaged copy.
    let cache = b.dir.join("cache-tampered");
    let blobs = cache.join("blobs/sha256");
    fs_err::create_dir_all(&blobs).unwrap();
    for e in fs_err::read_dir(b.cache.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        fs_err::hard_link(e.path(), blobs.join(e.file_name())).unwrap();
    }
    let wheel = blobs.join(&sha);
    let mut bytes = fs_err::read(&wheel).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs_err::remove_file(&wheel).unwrap();
    fs_err::write(&wheel, bytes).unwrap();
    let mut cmd = Command::new(envpack_bin());
    cmd.current_dir(&b.dir)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--offline", "audit"]);
    let text = failing(&mut cmd);
    assert!(
        text.contains(&format!("package pyyaml ({filename}) in the cache")),
        "{text}"
    );
    assert_eq!(text.matches("FINDING").count(), 1, "{text}");
}

/// Offset and size of member `name` in a plain tar file.
fn tar_member(bytes: &[u8], name: &str) -> (usize, usize) {
    let mut pos = 0;
    while pos + 512 <= bytes.len() {
        let h = &bytes[pos..pos + 512];
        let n = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size_field = String::from_utf8_lossy(&h[124..136])
            .trim_matches(|c| c == '\0' || c == ' ')
            .to_string();
        let size = usize::from_str_radix(&size_field, 8).unwrap_or(0);
        if n == name {
            return (pos + 512, size);
        }
        pos += 512 + size.div_ceil(512) * 512;
    }
    panic!("no member {name}");
}

#[test]
fn flipped_byte_in_a_layer_of_the_tarball_is_named() {
    let b = built();
    let bytes = fs_err::read(&b.artifact).unwrap();
    let (off, size) = tar_member(&bytes, "envpack-artifact.json");
    let index: Value = serde_json::from_slice(&bytes[off..off + size]).unwrap();
    let layer = index["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "packages")
        .unwrap();
    let hex = layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let (off, size) = tar_member(&bytes, &format!("blobs/sha256/{hex}"));
    let mut damaged = bytes.clone();
    damaged[off + size / 2] ^= 1;
    let copy = b.dir.join("tampered.envpack.tar");
    fs_err::write(&copy, damaged).unwrap();
    let text = failing(b.envpack().arg("audit").arg(&copy));
    assert!(text.contains("layer 1 \"packages\""), "{text}");
}

#[test]
fn flipped_byte_in_an_unpacked_file_is_named() {
    let b = built();
    let root = unpack(b, "root-tampered");
    let env = root.join(fs_err::read_link(root.join("current")).unwrap());
    let file = env.join("python/lib/python3.11/site-packages/yaml/__init__.py");
    let mut bytes = fs_err::read(&file).unwrap();
    bytes[0] ^= 1;
    fs_err::write(&file, bytes).unwrap();
    let text = failing(b.envpack().args(["audit", "--root"]).arg(&root));
    assert!(
        text.contains("python/lib/python3.11/site-packages/yaml/__init__.py: modified"),
        "{text}"
    );
    assert_eq!(text.matches("FINDING").count(), 1, "{text}");
}

#[test]
fn flipped_package_hash_in_the_lock_is_named() {
    let b = built();
    let lock_text = fs_err::read_to_string(b.dir.join("envpack.lock")).unwrap();
    let (filename, sha) = lock_package(&lock_text, "pyyaml");
    let dir = b.dir.join("tampered-lock");
    write_spec(&dir, GCC12);
    fs_err::write(
        dir.join("envpack.lock"),
        lock_text.replace(&sha, &flip_hex(&sha)),
    )
    .unwrap();
    // The index still serves the real file: its hash disagrees with the lock.
    let text = failing(b.envpack_in(&dir).arg("audit"));
    assert!(
        text.contains(&format!(
            "package pyyaml ({filename}) on the index: the index announces sha256 sha256:{sha}"
        )),
        "{text}"
    );
    // The artifact was built from the real lock: the given lock disagrees entry by entry.
    let text = failing(
        b.envpack_in(&dir)
            .args(["audit", "--lock", "envpack.lock"])
            .arg(&b.artifact),
    );
    assert!(
        text.contains(&format!(
            "lock entry {PLATFORM} package pyyaml ({filename}): sha256"
        )),
        "{text}"
    );
}

#[test]
fn rebuild_reproduces_and_names_files_of_differing_layers() {
    let b = built();
    run(b
        .envpack()
        .args(["audit", "--rebuild", "--against", "dist"]));
    // Artifacts built from another profile: the conan and meta layers differ, file by file.
    let other = b.dir.join("other-profile");
    write_spec(
        &other,
        &GCC12.replace("compiler.version=12", "compiler.version=13"),
    );
    run(b.envpack_in(&other).arg("lock"));
    run(b.envpack_in(&other).args(["build", "--out", "dist"]));
    let text = failing(
        b.envpack()
            .args(["audit", "--rebuild", "--against"])
            .arg(other.join("dist")),
    );
    assert!(
        text.contains("layer conan: conan-home/profiles/default: content hash"),
        "{text}"
    );
    assert!(
        text.contains("layer meta: envpack.lock: content hash"),
        "{text}"
    );
    assert!(!text.contains("layer cpython"), "{text}");
    assert!(!text.contains("layer packages"), "{text}");
}
