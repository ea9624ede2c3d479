//! Builds small real artifacts with the layers API for the unpacker's tests.
#![allow(dead_code)]

#[cfg(unix)]
pub mod corpus;
pub mod raw;

use std::path::{Path, PathBuf};

use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::write_layer;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::{scan_tree, TreeEntry};

pub const EPOCH: u64 = 1_700_000_000;

/// What goes into a test env.
pub struct EnvSpec<'a> {
    pub env_id: &'a str,
    /// Text written into data files, so two envs differ.
    pub flavor: &'a str,
    /// Put a file into a layer that the manifest does not list.
    pub unlisted_extra: bool,
    /// Leave a manifest entry out of every layer.
    pub drop_from_layers: Option<&'a str>,
    /// Extra data files under `lib/bulk/` (sizes vary), for a mid-size env.
    pub bulk_files: usize,
}

impl<'a> EnvSpec<'a> {
    pub fn new(env_id: &'a str, flavor: &'a str) -> Self {
        EnvSpec {
            env_id,
            flavor,
            unlisted_extra: false,
            drop_from_layers: None,
            bulk_files: 0,
        }
    }
}

fn write(root: &Path, rel: &str, text: &str, exec: bool) {
    let p = root.join(rel);
    fs_err::create_dir_all(p.parent().unwrap()).unwrap();
    fs_err::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if exec { 0o755 } else { 0o644 };
        fs_err::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Windows has no executable bit; the flag only shapes Unix modes.
    #[cfg(not(unix))]
    let _ = exec;
}

/// Which layer a path belongs to.
fn layer_of(path: &str) -> &'static str {
    match path.split('/').next().unwrap() {
        "bin" | "lib" => "python",
        "conan-home" => "conan",
        _ => "meta",
    }
}

/// An artifact built for a test, with its layer blob files (python, conan, meta).
pub struct Built {
    pub artifact: PathBuf,
    pub layer_files: Vec<PathBuf>,
}

/// Builds the env tree and its artifact under `work`.
pub fn build_artifact(work: &Path, spec: &EnvSpec) -> Built {
    let tree = work.join(format!("tree-{}", spec.env_id));
    let flavor = spec.flavor;
    write(
        &tree,
        "bin/hello",
        &format!("#!/bin/sh\necho \"hello {flavor} $*\"\n"),
        true,
    );
    write(&tree, "lib/data.txt", &format!("data {flavor}\n"), false);
    write(&tree, "lib/empty.txt", "", false);
    fs_err::create_dir_all(tree.join("lib/emptydir")).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..spec.bulk_files {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = (seed >> 33) as usize % 6000;
        let line = format!("{flavor} file {i} ");
        let text: String = line.repeat(size / line.len() + 1)[..size].to_string();
        write(
            &tree,
            &format!("lib/bulk/d{:02}/f{i:05}.txt", i % 40),
            &text,
            false,
        );
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink("hello", tree.join("bin/hi")).unwrap();
    write(
        &tree,
        "conan-home/global.conf",
        "core:non_interactive=True\n",
        false,
    );
    write(
        &tree,
        "conan-home/profiles/default",
        &format!("[settings]\n# {flavor}\n"),
        false,
    );
    write(
        &tree,
        "activate",
        &format!("ENVPACK_TEST_ACTIVE={flavor}\nexport ENVPACK_TEST_ACTIVE\n"),
        false,
    );
    let lock = format!("# lock for {}\n", spec.env_id).into_bytes();
    let info = serde_json::json!({
        "schema": 1, "name": "test-env", "env_id": spec.env_id, "platform": "linux-x86_64",
        "envpack_version": "0.1.0", "epoch": EPOCH,
        "lock_sha256": Sha256Digest::of_bytes(&lock).to_string(),
    });
    write(&tree, "envpack.json", &format!("{info}\n"), false);

    let manifest = Manifest::from_entries(scan_tree(&tree).unwrap());
    fs_err::write(tree.join("manifest"), manifest.to_bytes()).unwrap();
    if spec.unlisted_extra {
        write(&tree, "lib/smuggled.txt", "not in the manifest\n", false);
    }
    let all: Vec<TreeEntry> = scan_tree(&tree)
        .unwrap()
        .into_iter()
        .filter(|e| Some(e.path.as_str()) != spec.drop_from_layers)
        .collect();

    let out_dir = work.join(format!("layers-{}", spec.env_id));
    fs_err::create_dir_all(&out_dir).unwrap();
    let mut descs = Vec::new();
    let mut files = Vec::new();
    for name in ["python", "conan", "meta"] {
        let entries: Vec<TreeEntry> = all
            .iter()
            .filter(|e| layer_of(&e.path) == name)
            .cloned()
            .collect();
        let compression = if name == "conan" {
            Compression::Gzip
        } else {
            Compression::Zstd
        };
        let (desc, file) =
            write_layer(name, &tree, &entries, EPOCH, compression, &out_dir).unwrap();
        descs.push(desc);
        files.push(file);
    }
    let index = ArtifactIndex {
        schema: 1,
        name: "test-env".into(),
        env_id: spec.env_id.into(),
        platform: "linux-x86_64".into(),
        envpack_version: "0.1.0".into(),
        epoch: EPOCH,
        lock_sha256: Sha256Digest::of_bytes(&lock),
        layers: descs,
    };
    let out = work.join(format!("{}.tar", spec.env_id));
    write_artifact(&out, &index, &lock, &files, EPOCH).unwrap();
    Built {
        artifact: out,
        layer_files: files,
    }
}

/// Flips one byte in the middle of the first layer blob found inside the artifact.
pub fn corrupt_a_layer(artifact: &Path, blob: &Path) {
    let mut bytes = fs_err::read(artifact).unwrap();
    let needle = fs_err::read(blob).unwrap();
    let head = &needle[..needle.len().min(64)];
    let at = bytes
        .windows(head.len())
        .position(|w| w == head)
        .expect("layer blob inside artifact");
    let mid = at + needle.len() / 2;
    bytes[mid] ^= 0x5a;
    fs_err::write(artifact, bytes).unwrap();
}

/// All paths below `dir` (relative), sorted; for "nothing left behind" checks.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn no_progress(_: envpack_unpack::ProgressEvent) {}

/// Every path below `dir` with its type, mode and content digest or link target; two equal
/// snapshots mean nothing was added, removed or changed.
#[cfg(unix)]
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    for rel in listing(dir) {
        let p = dir.join(&rel);
        let m = fs_err::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode();
        let what = if m.file_type().is_symlink() {
            format!("link -> {}", fs_err::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            format!("dir {mode:o}")
        } else {
            let bytes = fs_err::read(&p).unwrap();
            format!("file {mode:o} {}", Sha256Digest::of_bytes(&bytes))
        };
        out.insert(rel, what);
    }
    out
}
