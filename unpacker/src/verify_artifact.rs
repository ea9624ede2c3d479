//! Checking an artifact without unpacking it: every digest, and every layer entry against the
//! manifest carried by the meta layer.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::{EntryKind, TreeEntry};
use sha2::Digest as _;

use crate::env_id::validate_env_id;
use crate::error::UnpackError;
use crate::staging::{meta_layer_index, MANIFEST_FILE};
use crate::verify_root::VerifyReport;

/// Verifies all layer digests and compares every entry of every layer with the manifest;
/// findings (not the first one only) go into the report.
pub fn verify_artifact(artifact: &Path) -> Result<VerifyReport, UnpackError> {
    let reader = ArtifactReader::open(artifact)?;
    let env_id = reader.index().env_id.clone();
    validate_env_id(&env_id)?;
    let meta = meta_layer_index(&reader, artifact)?;
    let layers = &reader.index().layers;
    let mut differences = Vec::new();
    if let Err(e) = reader.verify_layers() {
        differences.push(e.to_string());
    }
    let manifest = match read_manifest(&reader, meta) {
        Ok(m) => m,
        Err(e) => {
            differences.push(format!(
                "layer {}: manifest unreadable: {e}",
                layers[meta].name
            ));
            return Ok(VerifyReport {
                env_id,
                files_checked: 0,
                differences,
                signature: None,
            });
        }
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut files_checked = 0;
    let mut unreadable_layers = 0;
    for (i, layer) in layers.iter().enumerate() {
        let mut check = LayerCheck {
            layer: &layer.name,
            manifest: &manifest,
            seen: &mut seen,
            differences: &mut differences,
            is_meta: i == meta,
        };
        match check.run(&reader, i) {
            Ok(n) => files_checked += n,
            Err(e) => {
                unreadable_layers += 1;
                differences.push(format!("layer {}: {e}", layer.name));
            }
        }
    }
    if unreadable_layers > 0 {
        // Entries of a layer that could not be read would all show up as missing: noise.
        return Ok(VerifyReport {
            env_id,
            files_checked,
            differences,
            signature: None,
        });
    }
    for entry in &manifest.entries {
        if !seen.contains(&entry.path) {
            differences.push(format!(
                "{}: listed in the manifest but in no layer",
                entry.path
            ));
        }
    }
    Ok(VerifyReport {
        env_id,
        files_checked,
        differences,
        signature: None,
    })
}

/// Reads the `manifest` file out of the meta layer's stream.
fn read_manifest(reader: &ArtifactReader, meta: usize) -> Result<Manifest, UnpackError> {
    let mut stream = reader.open_layer(meta)?;
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(&mut stream));
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file()
            && entry.path_bytes().as_ref() == MANIFEST_FILE.as_bytes()
        {
            let mut bytes = Vec::new();
            entry
                .take(crate::staging::MAX_META_FILE)
                .read_to_end(&mut bytes)?;
            let manifest = Manifest::parse(&bytes)?;
            crate::staging::check_env_structure(&manifest)?;
            return Ok(manifest);
        }
    }
    Err(envpack_layers::LayersError::format("meta layer", "it has no manifest file").into())
}

/// State of checking one layer's entries.
struct LayerCheck<'a> {
    layer: &'a str,
    manifest: &'a Manifest,
    seen: &'a mut HashSet<String>,
    differences: &'a mut Vec<String>,
    is_meta: bool,
}

impl LayerCheck<'_> {
    /// Streams the layer, comparing each entry; returns how many entries were checked.
    fn run(&mut self, reader: &ArtifactReader, i: usize) -> Result<usize, UnpackError> {
        let mut stream = reader.open_layer(i)?;
        let mut checked = 0;
        {
            let mut archive =
                tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(&mut stream));
            for entry in archive.entries()? {
                let entry = entry?;
                self.entry(entry)?;
                checked += 1;
            }
        }
        // Reading to the end makes the reader check the layer's diff_id.
        std::io::copy(&mut stream, &mut std::io::sink())?;
        Ok(checked)
    }

    fn note(&mut self, path: &str, what: impl std::fmt::Display) {
        self.differences
            .push(format!("layer {}: {path}: {what}", self.layer));
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = raw.strip_suffix('/').unwrap_or(&raw).to_owned();
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => match entry.link_name_bytes() {
                Some(t) => EntryKind::Symlink {
                    target: String::from_utf8_lossy(&t).into_owned(),
                },
                None => {
                    self.note(&path, "symlink without a target");
                    return Ok(());
                }
            },
            t if t.is_file() => {
                let mut hasher = sha2::Sha256::new();
                let size = std::io::copy(&mut entry, &mut hasher)?;
                EntryKind::File {
                    size,
                    sha256: Sha256Digest(hasher.finalize().into()),
                    executable: mode & 0o111 != 0,
                }
            }
            t => {
                self.note(&path, format!("unsupported entry type {}", type_name(t)));
                return Ok(());
            }
        };
        let found = TreeEntry { path, kind };
        if self.is_meta && found.path == MANIFEST_FILE {
            return Ok(());
        }
        if mode != found.mode() {
            self.note(
                &found.path,
                format!("mode {mode:04o} is not the normalized {:04o}", found.mode()),
            );
        }
        if !self.seen.insert(found.path.clone()) && !found.is_dir() {
            self.note(&found.path, "appears more than once");
        }
        match self.manifest.get(&found.path) {
            None => self.note(&found.path, "not listed in the manifest"),
            Some(expected) if *expected != found => {
                let detail = format!(
                    "differs from the manifest: it has {}, the layer {}",
                    expected.kind, found.kind
                );
                self.note(&found.path, detail);
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// A tar entry type for a message: its kind in words, or its type byte.
fn type_name(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        other => format!("'{}'", char::from(other.as_byte()).escape_default()),
    }
}
