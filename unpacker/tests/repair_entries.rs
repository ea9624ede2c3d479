//! Restoring single entries from a small real artifact: only the named entries change, and a
//! file whose bytes do not match the manifest is never put in place.

#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{build_artifact, no_progress, EnvSpec};
use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::EntryKind;
use envpack_unpack::kept_artifact::{artifact_manifest_bytes, kept_artifact_path};
use envpack_unpack::repair::restore_entries::{restore_entries, RestoreTarget};
use envpack_unpack::{unpack, verify_root};

fn stamp(p: &Path) -> (u64, i64) {
    let m = fs_err::symlink_metadata(p).unwrap();
    (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|s| s.to_string()).collect()
}

#[test]
fn restores_only_named_entries_and_keeps_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let built = build_artifact(work.path(), &EnvSpec::new("env-r", "r"));
    let root = work.path().join("root");
    unpack(&built.artifact, &root, &no_progress).unwrap();
    let env = root.join("envs/env-r");
    assert!(kept_artifact_path(&envpack_unpack::layout::RootLayout::new(&root), "env-r").is_file());

    fs_err::write(env.join("lib/data.txt"), "damaged\n").unwrap();
    fs_err::remove_file(env.join("bin/hi")).unwrap();
    std::os::unix::fs::symlink("elsewhere", env.join("bin/hi")).unwrap();
    fs_err::remove_dir(env.join("lib/emptydir")).unwrap();
    fs_err::write(env.join("lib/emptydir"), "now a file").unwrap();
    fs_err::remove_file(env.join("manifest")).unwrap();
    let healthy = stamp(&env.join("bin/hello"));
    let healthy_conf = stamp(&env.join("conan-home/global.conf"));

    let reader = ArtifactReader::open(&built.artifact).unwrap();
    let bytes = artifact_manifest_bytes(&reader).unwrap();
    let manifest = Manifest::parse(&bytes).unwrap();
    let scratch = work.path().join("scratch");
    let quarantine = work.path().join("quarantine");
    fs_err::create_dir_all(&scratch).unwrap();
    let target = RestoreTarget {
        env_dir: &env,
        scratch: &scratch,
        quarantine: &quarantine,
    };
    let paths = set(&["bin/hi", "lib/data.txt", "lib/emptydir", "manifest"]);
    let restored = restore_entries(&reader, &manifest, &bytes, &target, &paths).unwrap();
    assert_eq!(restored.len(), 4);
    let report = verify_root(&root).unwrap();
    assert!(report.differences.is_empty(), "{:?}", report.differences);
    assert_eq!(stamp(&env.join("bin/hello")), healthy);
    assert_eq!(stamp(&env.join("conan-home/global.conf")), healthy_conf);
    assert_eq!(
        fs_err::read_to_string(env.join("lib/data.txt")).unwrap(),
        "data r\n"
    );
    // A replaced non-directory under a directory's name is only moved aside.
    assert!(quarantine.join("lib/emptydir").is_file());
}

#[test]
fn refuses_content_that_does_not_match_the_manifest() {
    let work = tempfile::tempdir().unwrap();
    let built = build_artifact(work.path(), &EnvSpec::new("env-v", "v"));
    let root = work.path().join("root");
    unpack(&built.artifact, &root, &no_progress).unwrap();
    let env = root.join("envs/env-v");
    fs_err::write(env.join("lib/data.txt"), "damaged\n").unwrap();

    let reader = ArtifactReader::open(&built.artifact).unwrap();
    let bytes = artifact_manifest_bytes(&reader).unwrap();
    // A reference that disagrees with the layer's bytes: the restore must not trust either.
    let mut manifest = Manifest::parse(&bytes).unwrap();
    for e in &mut manifest.entries {
        if e.path == "lib/data.txt" {
            if let EntryKind::File { sha256, .. } = &mut e.kind {
                *sha256 = Sha256Digest::of_bytes(b"something else");
            }
        }
    }
    let scratch = work.path().join("scratch");
    fs_err::create_dir_all(&scratch).unwrap();
    let target = RestoreTarget {
        env_dir: &env,
        scratch: &scratch,
        quarantine: &work.path().join("q"),
    };
    let err = restore_entries(&reader, &manifest, &bytes, &target, &set(&["lib/data.txt"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        fs_err::read_to_string(env.join("lib/data.txt")).unwrap(),
        "damaged\n"
    );
    let unknown = restore_entries(&reader, &manifest, &bytes, &target, &set(&["lib/nope"]));
    assert!(unknown.is_err());
}
