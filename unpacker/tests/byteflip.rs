//! Byte flips: every byte of a small artifact is flipped in turn (two bit patterns), grouped
//! by what the byte is (outer tar header, index JSON, lock, layer blob data, padding,
//! end-of-archive blocks). Each flip must be caught by the read-only checks that run before
//! the unpacker writes anything into ROOT — or leave every byte the unpacker consumes
//! unchanged, which proves it harmless. A sample also goes through the real binary.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::raw::{self, EnvLayers};
use common::{build_artifact, listing, no_progress, snapshot, EnvSpec};
use envpack_layers::artifact::{ArtifactIndex, ArtifactReader};
use envpack_unpack::env_id::validate_env_id;
use envpack_unpack::env_info::check_index_against_env_info;
use envpack_unpack::staging::meta_layer_index;

/// Bit patterns each byte is XORed with: the smallest change and the top bit.
const MASKS: [u8; 2] = [0x01, 0x80];

/// What one byte of the artifact is.
fn classes(members: &[(String, Vec<u8>)], total: usize) -> Vec<&'static str> {
    let mut class = Vec::with_capacity(total);
    for (name, data) in members {
        class.extend(std::iter::repeat_n("outer tar header", 512));
        let data_class = match name.as_str() {
            "envpack-artifact.json" => "index JSON",
            "envpack.lock" => "lock",
            _ => "layer blob data",
        };
        class.extend(std::iter::repeat_n(data_class, data.len()));
        class.extend(std::iter::repeat_n(
            "padding",
            envpack_layers::tarfmt::padding(data.len() as u64),
        ));
    }
    class.extend(std::iter::repeat_n("end-of-archive blocks", 1024));
    assert_eq!(class.len(), total);
    class
}

/// The checks `unpack` runs before it creates anything in ROOT; returns the reader on success.
fn pre_write_checks(path: &Path) -> Result<ArtifactReader, String> {
    let r = ArtifactReader::open(path).map_err(|e| e.to_string())?;
    validate_env_id(&r.index().env_id).map_err(|e| e.to_string())?;
    let meta = meta_layer_index(&r, path).map_err(|e| e.to_string())?;
    r.verify_layers().map_err(|e| e.to_string())?;
    r.verify_uncompressed().map_err(|e| e.to_string())?;
    check_index_against_env_info(&r, meta, path).map_err(|e| e.to_string())?;
    Ok(r)
}

#[derive(Default, Debug)]
struct Tally {
    positions: usize,
    detected: usize,
    harmless: usize,
}

#[test]
fn every_flip_is_detected_before_writing_or_harmless() {
    let work = tempfile::tempdir().unwrap();
    let parts = EnvLayers::small("env-flip").into_parts();
    let members = parts.members();
    let original = raw::outer_tar(&members);
    let class = classes(&members, original.len());
    let good = raw::write_to(work.path(), "good", &original);
    let reference = pre_write_checks(&good).unwrap();
    let (want_index, want_lock): (ArtifactIndex, Vec<u8>) =
        (reference.index().clone(), reference.lock_bytes().to_vec());

    let flipped_path = work.path().join("flipped.tar");
    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut harmless_samples: Vec<(usize, u8)> = Vec::new();
    let mut undetected = Vec::new();
    for pos in 0..original.len() {
        for mask in MASKS {
            let mut bytes = original.clone();
            bytes[pos] ^= mask;
            fs_err::write(&flipped_path, &bytes).unwrap();
            let t = tally.entry(class[pos]).or_default();
            t.positions += 1;
            match pre_write_checks(&flipped_path) {
                Err(_) => t.detected += 1,
                // Everything extraction consumes is identical: index, lock and (through their
                // digests, just re-checked) the blobs. Only bytes no reader interprets changed.
                Ok(r) if *r.index() == want_index && r.lock_bytes() == want_lock => {
                    if class[pos] == "outer tar header" {
                        // Only the byte after the checksum's terminating NUL goes unread.
                        assert_eq!(
                            (original[pos - 1], original[pos]),
                            (0, b' '),
                            "header byte {pos}"
                        );
                    }
                    t.harmless += 1;
                    harmless_samples.push((pos, mask));
                }
                Ok(r) => undetected.push(format!(
                    "byte {pos} ({}) ^ {mask:#04x}: accepted with a different index {:?}",
                    class[pos],
                    r.index()
                )),
            }
        }
    }
    println!("byte flips over a {}-byte artifact:", original.len());
    for (c, t) in &tally {
        println!(
            "  {c:<22} {:>5} flips: {:>5} detected before writing, {:>4} harmless",
            t.positions, t.detected, t.harmless
        );
    }
    assert!(undetected.is_empty(), "{}", undetected.join("\n"));
    // Meaningful bytes are always caught; only padding-like bytes may be harmless.
    for c in ["index JSON", "lock", "layer blob data"] {
        let t = &tally[c];
        assert_eq!(t.detected, t.positions, "{c}: {t:?}");
    }
    assert!(tally["outer tar header"].detected > tally["outer tar header"].positions * 9 / 10);

    // Harmless flips really are: a sample unpacks to exactly the reference tree.
    let ref_root = work.path().join("ref-root");
    envpack_unpack::unpack(&good, &ref_root, &no_progress).unwrap();
    let ref_tree = snapshot(&ref_root.join("envs/env-flip"));
    let step = (harmless_samples.len() / 25).max(1);
    for (i, (pos, mask)) in harmless_samples.iter().step_by(step).enumerate() {
        let mut bytes = original.clone();
        bytes[*pos] ^= mask;
        fs_err::write(&flipped_path, &bytes).unwrap();
        let root = work.path().join(format!("harmless-{i}"));
        envpack_unpack::unpack(&flipped_path, &root, &no_progress)
            .unwrap_or_else(|e| panic!("byte {pos} ^ {mask:#04x} ({}): {e}", class[*pos]));
        assert_eq!(
            snapshot(&root.join("envs/env-flip")),
            ref_tree,
            "byte {pos}"
        );
        fs_err::remove_dir_all(&root).unwrap();
    }
}

/// One flip per meaningful class through the real binary: exit 1, ROOT unchanged.
#[test]
fn binary_rejects_flips_and_leaves_root_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let base = build_artifact(
        &work.path().join("build"),
        &EnvSpec::new("env-base", "base"),
    );
    let root = work.path().join("root");
    envpack_unpack::unpack(&base.artifact, &root, &no_progress).unwrap();
    let before = snapshot(&root);

    let members = EnvLayers::small("env-flip").into_parts().members();
    let original = raw::outer_tar(&members);
    let class = classes(&members, original.len());
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (pos, c) in class.iter().enumerate() {
        by_class.entry(c).or_default().push(pos);
    }
    let mut runs = 0;
    for c in ["outer tar header", "index JSON", "lock", "layer blob data"] {
        let positions = &by_class[c];
        for k in 0..4 {
            // Spread over the class; header picks land in name, size and checksum fields.
            let pos = positions[(positions.len() - 1) * k / 3];
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            let path: PathBuf = raw::write_to(work.path(), &format!("flip-{pos}"), &bytes);
            let out = Command::new(env!("CARGO_BIN_EXE_envpack-unpack"))
                .arg(&path)
                .arg("--root")
                .arg(&root)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{c} byte {pos}: {out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("error: unpacking"), "{stderr}");
            assert_eq!(snapshot(&root), before, "{c} byte {pos}: root changed");
            assert!(listing(&root.join(".envpack/tmp")).is_empty());
            runs += 1;
        }
    }
    assert_eq!(runs, 16);
}
