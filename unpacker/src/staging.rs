//! Extracting a verified artifact into a staging directory, checked against its manifest.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::extract::{extract_layer, ExtractOptions};
use envpack_layers::file_writers::with_file_writers;
use envpack_layers::manifest::Manifest;
use envpack_layers::read_ahead::with_read_ahead;
use envpack_layers::tree::TreeEntry;
use envpack_layers::LayersError;

use crate::error::UnpackError;
use crate::progress::ProgressEvent;

/// Name of the layer that carries the manifest; always the artifact's last layer.
pub const META_LAYER: &str = "meta";
/// The manifest's file name at the env root.
pub const MANIFEST_FILE: &str = "manifest";

/// Index of the meta layer, which must be the last one.
pub fn meta_layer_index(reader: &ArtifactReader, artifact: &Path) -> Result<usize, UnpackError> {
    let layers = &reader.index().layers;
    match layers.last() {
        Some(l) if l.name == META_LAYER => Ok(layers.len() - 1),
        _ => Err(UnpackError::BadArtifact {
            path: artifact.to_path_buf(),
            detail: format!("its last layer must be named \"{META_LAYER}\""),
        }),
    }
}

/// Extracts layer `i` into `dest`, then reads the stream to its end so the layer's length
/// (and without a manifest, its diff_id) is checked even when the tar ends before the
/// compressed stream does.
fn extract_one(
    reader: &ArtifactReader,
    i: usize,
    dest: &cap_std::fs::Dir,
    opts: &ExtractOptions,
) -> Result<Vec<TreeEntry>, LayersError> {
    let name = &reader.index().layers[i].name;
    let quoted = format!("\"{}\"", envpack_layers::shown_name(name));
    let in_layer = |e: LayersError| match e {
        // Malformed tar headers carry no entry name; say at least which layer broke.
        LayersError::Io(io) if !io.to_string().contains(&quoted) => {
            LayersError::Io(std::io::Error::new(
                io.kind(),
                format!(
                    "layer {i} {quoted}: {}",
                    envpack_layers::shown_name(&io.to_string())
                ),
            ))
        }
        other => other,
    };
    // Entries checked against the manifest are proven file by file (the manifest itself comes
    // from the meta layer, whose diff_id is checked), so only that layer pays for a full
    // SHA-256 pass over its decompressed stream.
    let stream = match opts.manifest {
        Some(_) => reader.open_layer_unhashed(i),
        None => reader.open_layer(i),
    }
    .map_err(in_layer)?;
    // Decompressing and digesting on a second thread overlaps with parsing and checking.
    with_read_ahead(stream, |stream| {
        let entries = extract_layer(&mut *stream, dest, opts)?;
        std::io::copy(stream, &mut std::io::sink())?;
        Ok(entries)
    })
    .map_err(in_layer)
}

/// Worker threads that create files while the layer threads parse and check: enough to keep
/// the cores busy with system calls, few enough not to crowd out decompression.
fn writer_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Whether env trees for `platform` usually live on a case-insensitive filesystem.
pub fn case_insensitive_platform(platform: &str) -> bool {
    let os = platform.split('-').next().unwrap_or(platform);
    matches!(os, "macos" | "darwin" | "windows" | "win")
}

/// The first pair of manifest paths that name the same file when case is ignored.
pub fn case_collision(manifest: &Manifest) -> Option<(String, String)> {
    let mut folded: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for e in &manifest.entries {
        if let Some(prev) = folded.insert(e.path.to_lowercase(), &e.path) {
            return Some((prev.to_owned(), e.path.clone()));
        }
    }
    None
}

/// Extracts only the meta layer into the new dir `parent/name` (shown as `shown` in messages)
/// and returns the manifest's raw bytes.
pub fn extract_meta(
    reader: &ArtifactReader,
    meta: usize,
    parent: &cap_std::fs::Dir,
    name: &str,
    shown: &Path,
) -> Result<(Vec<TreeEntry>, Vec<u8>), UnpackError> {
    parent
        .create_dir(name)
        .map_err(|e| io_at(e, "creating", shown))?;
    let dir = crate::root_dirs::open_child(parent, name).map_err(|e| io_at(e, "opening", shown))?;
    let opts = ExtractOptions {
        manifest: None,
        max_total_bytes: reader.index().layers[meta].uncompressed_size,
        ..Default::default()
    };
    let entries = extract_one(reader, meta, &dir, &opts)?;
    let has_manifest = entries.iter().any(|e| {
        e.path == MANIFEST_FILE && matches!(e.kind, envpack_layers::tree::EntryKind::File { .. })
    });
    if !has_manifest {
        return Err(LayersError::format(
            "meta layer",
            format!("it has no {MANIFEST_FILE} file (a regular file; links are refused)"),
        )
        .into());
    }
    let manifest_shown = shown.join(MANIFEST_FILE);
    let file = crate::root_dirs::open_file_no_follow(&dir, MANIFEST_FILE)
        .map_err(|e| io_at(e, "opening", &manifest_shown))?;
    let bytes = read_limited(file, &manifest_shown)?;
    Ok((entries, bytes))
}

fn io_at(e: std::io::Error, what: &str, path: &Path) -> UnpackError {
    UnpackError::Io(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

/// Reads at most [`MAX_META_FILE`] bytes of `file`, erroring when it holds more.
fn read_limited(file: std::fs::File, shown: &Path) -> Result<Vec<u8>, UnpackError> {
    let mut bytes = Vec::new();
    file.take(MAX_META_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_at(e, "reading", shown))?;
    if bytes.len() as u64 > MAX_META_FILE {
        return Err(UnpackError::Io(std::io::Error::other(format!(
            "{} is larger than {MAX_META_FILE} bytes",
            shown.display()
        ))));
    }
    Ok(bytes)
}

/// Extracts every layer into the new dir `parent/name` (meta first, the rest in parallel threads,
/// each entry checked against the manifest) and checks that nothing in the manifest is
/// missing. `verify_layers` must have passed already.
pub fn extract_artifact(
    reader: &ArtifactReader,
    artifact: &Path,
    parent: &cap_std::fs::Dir,
    name: &str,
    shown: &Path,
    progress: &dyn Fn(ProgressEvent),
) -> Result<Manifest, UnpackError> {
    let meta = meta_layer_index(reader, artifact)?;
    let layers = &reader.index().layers;
    progress(ProgressEvent::Extracting {
        layer: layers[meta].name.clone(),
    });
    let (meta_entries, manifest_bytes) = extract_meta(reader, meta, parent, name, shown)?;
    let manifest = Manifest::parse(&manifest_bytes)?;
    check_env_structure(&manifest)?;
    let platform = &reader.index().platform;
    if case_insensitive_platform(platform) {
        if let Some((first, second)) = case_collision(&manifest) {
            return Err(UnpackError::BadArtifact {
                path: artifact.to_path_buf(),
                detail: format!(
                    "entries \"{}\" and \"{}\" collide on the case-insensitive \
                     filesystems of {platform} targets",
                    envpack_layers::shown_name(&first),
                    envpack_layers::shown_name(&second)
                ),
            });
        }
    }
    for entry in &meta_entries {
        if entry.path != MANIFEST_FILE {
            check_against(&manifest, entry)?;
        }
    }

    let dir = crate::root_dirs::open_child(parent, name).map_err(|e| io_at(e, "opening", shown))?;
    let others: Vec<usize> = (0..layers.len()).filter(|i| *i != meta).collect();
    for &i in &others {
        progress(ProgressEvent::Extracting {
            layer: layers[i].name.clone(),
        });
    }
    let max_total_bytes = layers.iter().map(|l| l.uncompressed_size).sum();
    // Layers go in parallel threads sharing one pool of file writers; a write failure is
    // reported over the layer error it caused.
    let per_layer = with_file_writers(&dir, writer_threads(), |writers| {
        let opts = ExtractOptions {
            manifest: Some(&manifest),
            max_total_bytes,
            writers: Some(writers),
        };
        let results: Vec<Result<Vec<TreeEntry>, LayersError>> = std::thread::scope(|s| {
            let handles: Vec<_> = others
                .iter()
                .map(|&i| {
                    let (dir, opts) = (&dir, &opts);
                    s.spawn(move || extract_one(reader, i, dir, opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LayersError::format(
                            "layer extraction",
                            "a worker thread panicked",
                        ))
                    })
                })
                .collect()
        });
        let mut all = Vec::with_capacity(results.len());
        for (i, result) in others.iter().zip(results) {
            all.push(result.inspect_err(|_| {
                tracing::debug!(layer = %layers[*i].name, "layer extraction failed");
            })?);
        }
        Ok(all)
    })?;

    let mut seen: HashSet<String> = meta_entries.into_iter().map(|e| e.path).collect();
    for entries in per_layer {
        seen.extend(entries.into_iter().map(|e| e.path));
    }
    let missing: Vec<String> = manifest
        .entries
        .iter()
        .filter(|e| !seen.contains(&e.path))
        .map(|e| e.path.clone())
        .collect();
    if !missing.is_empty() {
        return Err(UnpackError::MissingEntries {
            count: missing.len(),
            examples: missing.into_iter().take(5).collect(),
        });
    }
    Ok(manifest)
}

/// Errors unless `entry` is in the manifest with the same kind and content.
fn check_against(manifest: &Manifest, entry: &TreeEntry) -> Result<(), LayersError> {
    match manifest.get(&entry.path) {
        Some(expected) if expected == entry => Ok(()),
        Some(expected) => Err(LayersError::ManifestMismatch {
            path: entry.path.clone(),
            detail: format!(
                "the manifest has {}, the layer {}",
                expected.kind, entry.kind
            ),
        }),
        None => Err(LayersError::ManifestMismatch {
            path: entry.path.clone(),
            detail: "not listed in the manifest".into(),
        }),
    }
}

/// Path of the manifest inside an env dir.
pub fn manifest_path(env_dir: &Path) -> PathBuf {
    env_dir.join(MANIFEST_FILE)
}

/// Largest env metadata file (`manifest`, `envpack.json`) read into memory.
pub const MAX_META_FILE: u64 = 64 << 20;

/// Reads the env's own file `name` (at most [`MAX_META_FILE`] bytes), refusing anything but a
/// regular file: a link there would let the env choose what the unpacker reads.
pub fn read_env_file(env_dir: &Path, name: &str) -> Result<Vec<u8>, UnpackError> {
    let path = env_dir.join(name);
    let file = crate::root_guard::no_follow(fs_err::OpenOptions::new().read(true)).open(&path)?;
    if !file.metadata()?.is_file() {
        return Err(UnpackError::Io(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        ))));
    }
    read_limited(file.into_parts().0, &path)
}

/// The manifest of the env at `env_dir`, read only as a regular file and checked for
/// structure (see [`check_env_structure`]).
pub fn env_manifest(env_dir: &Path) -> Result<Manifest, UnpackError> {
    let manifest = Manifest::parse(&read_env_file(env_dir, MANIFEST_FILE)?)?;
    check_env_structure(&manifest)?;
    Ok(manifest)
}

/// Top-level entries the unpacker itself uses, and whether each must be a directory (else a
/// regular file). A link at any of them would make post-processing read or copy something
/// the manifest does not describe.
const ENV_STRUCTURE: &[(&str, bool)] = &[
    ("bin", true),
    ("conan-home", true),
    ("python", true),
    ("envpack.json", false),
    ("envpack.lock", false),
    ("activate", false),
    ("activate.bat", false),
    ("activate.fish", false),
    ("activate.ps1", false),
];

/// Errors when one of the env's structural entries (`bin`, `conan-home`, `envpack.json`, …)
/// is a link or of the wrong kind, or when the manifest lists a `manifest` entry.
pub fn check_env_structure(manifest: &Manifest) -> Result<(), LayersError> {
    if manifest.get(MANIFEST_FILE).is_some() {
        return Err(LayersError::BadLink {
            path: MANIFEST_FILE.into(),
            detail: "the manifest may not list itself".into(),
        });
    }
    for (name, dir) in ENV_STRUCTURE {
        let Some(entry) = manifest.get(name) else {
            continue;
        };
        let ok = match &entry.kind {
            envpack_layers::tree::EntryKind::Dir => *dir,
            envpack_layers::tree::EntryKind::File { .. } => !*dir,
            envpack_layers::tree::EntryKind::Symlink { .. } => false,
        };
        if !ok {
            let want = if *dir {
                "a directory"
            } else {
                "a regular file"
            };
            return Err(LayersError::BadLink {
                path: (*name).into(),
                detail: format!(
                    "must be {want}: the unpacker reads it and never follows a link there"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::tree::EntryKind;

    #[test]
    fn case_insensitive_platforms_table() {
        for (p, want) in [
            ("macos-arm64", true),
            ("macos-x86_64", true),
            ("windows-x86_64", true),
            ("linux-x86_64", false),
            ("linux-aarch64", false),
        ] {
            assert_eq!(case_insensitive_platform(p), want, "{p}");
        }
    }

    #[test]
    fn case_collision_finds_the_pair() {
        let dir = |p: &str| TreeEntry {
            path: p.into(),
            kind: EntryKind::Dir,
        };
        let clean = Manifest::from_entries(vec![dir("a"), dir("a/b"), dir("c")]);
        assert_eq!(case_collision(&clean), None);
        let clash = Manifest::from_entries(vec![dir("Lib"), dir("lib"), dir("x")]);
        assert_eq!(
            case_collision(&clash),
            Some(("Lib".to_owned(), "lib".to_owned()))
        );
    }
}
