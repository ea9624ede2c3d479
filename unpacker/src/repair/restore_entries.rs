//! Re-creating single env entries from the artifact: each file is hashed against the
//! manifest in scratch space before it is renamed into place; nothing else is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::EntryKind;
use sha2::Digest as _;

use crate::error::UnpackError;
use crate::staging::MANIFEST_FILE;

/// Where restore writes: the env dir, scratch space and the quarantine for what it replaces.
#[derive(Debug)]
pub struct RestoreTarget<'a> {
    /// `ROOT/envs/<env-id>`.
    pub env_dir: &'a Path,
    /// Scratch dir on the same filesystem.
    pub scratch: &'a Path,
    /// Where replaced directories are moved (never deleted).
    pub quarantine: &'a Path,
}

/// A native path for a '/'-separated relative path under `base`.
pub fn native(base: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(base.to_path_buf(), |p, c| p.join(c))
}

/// Restores `paths` (env-relative) from `reader` per `manifest` (whose bytes are
/// `manifest_bytes`, restored for the path `manifest`). Returns the paths restored.
pub fn restore_entries(
    reader: &ArtifactReader,
    manifest: &Manifest,
    manifest_bytes: &[u8],
    target: &RestoreTarget<'_>,
    paths: &BTreeSet<String>,
) -> Result<Vec<String>, UnpackError> {
    let bad = |detail: String| UnpackError::BadArtifact {
        path: reader.path().to_path_buf(),
        detail,
    };
    for p in paths {
        if p != MANIFEST_FILE && manifest.get(p).is_none() {
            return Err(bad(format!(
                "{p} is not in the manifest; nothing to restore it from"
            )));
        }
    }
    let mut staged = fetch_files(reader, manifest, target.scratch, paths)?;
    if paths.contains(MANIFEST_FILE) {
        let tmp = target.scratch.join("restore-manifest");
        fs_err::write(&tmp, manifest_bytes)?;
        set_mode(&tmp, 0o644)?;
        staged.insert(MANIFEST_FILE.to_owned(), tmp);
    }
    let mut restored = Vec::new();
    for (n, rel) in paths.iter().enumerate() {
        no_link_on_chain(target.env_dir, rel)?;
        let dest = native(target.env_dir, rel);
        let kind = manifest.get(rel).map(|e| &e.kind);
        match kind {
            Some(EntryKind::Dir) => {
                if !is_real_dir(&dest) {
                    move_aside(target, rel)?;
                    fs_err::create_dir(&dest)?;
                }
                set_mode(&dest, 0o755)?;
            }
            Some(EntryKind::Symlink { target: link }) => {
                let tmp = target.scratch.join(format!("restore-link-{n}"));
                make_symlink(link, &tmp)?;
                if is_real_dir(&dest) {
                    move_aside(target, rel)?;
                }
                fs_err::rename(&tmp, &dest)?;
            }
            Some(EntryKind::File { .. }) | None => {
                let tmp = staged
                    .remove(rel)
                    .ok_or_else(|| bad(format!("{rel}: no layer holds this file")))?;
                if is_real_dir(&dest) {
                    move_aside(target, rel)?;
                }
                fs_err::rename(&tmp, &dest)?;
            }
        }
        tracing::info!(path = %rel, "restored from the artifact");
        restored.push(rel.clone());
    }
    if let Some(parent) = target.env_dir.parent() {
        crate::durability::sync_dir(parent)?;
    }
    Ok(restored)
}

/// Streams the layers and writes each wanted regular file to scratch, hashed and checked
/// against the manifest, with the manifest's mode. Returns path → scratch file.
fn fetch_files(
    reader: &ArtifactReader,
    manifest: &Manifest,
    scratch: &Path,
    paths: &BTreeSet<String>,
) -> Result<BTreeMap<String, PathBuf>, UnpackError> {
    let mut wanted: BTreeMap<&str, (u64, Sha256Digest, u32)> = BTreeMap::new();
    for p in paths {
        if let Some(e) = manifest.get(p) {
            if let EntryKind::File { size, sha256, .. } = e.kind {
                wanted.insert(p, (size, sha256, e.mode()));
            }
        }
    }
    let mut staged = BTreeMap::new();
    for i in 0..reader.index().layers.len() {
        if staged.len() == wanted.len() {
            break;
        }
        let stream = reader.open_layer(i)?;
        let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(stream));
        for entry in archive.entries()? {
            let mut entry = entry?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(&(size, sha256, mode)) = wanted.get(name.as_str()) else {
                continue;
            };
            if staged.contains_key(&name) {
                continue;
            }
            let tmp = scratch.join(format!("restore-file-{}", staged.len()));
            let mut hasher = sha2::Sha256::new();
            {
                let mut out = fs_err::File::create(&tmp)?;
                let mut tee = TeeWriter {
                    file: &mut out,
                    hasher: &mut hasher,
                };
                let n = std::io::copy(&mut entry, &mut tee)?;
                out.sync_all()?;
                let got = Sha256Digest(hasher.finalize().into());
                if n != size || got != sha256 {
                    return Err(UnpackError::BadArtifact {
                        path: reader.path().to_path_buf(),
                        detail: format!(
                            "{name}: the layer holds {n} bytes with {got}, the manifest says {size} bytes with {sha256}; nothing was changed"
                        ),
                    });
                }
            }
            set_mode(&tmp, mode)?;
            staged.insert(name, tmp);
        }
    }
    Ok(staged)
}

/// Writes to a file and a hasher at once.
struct TeeWriter<'a> {
    file: &'a mut fs_err::File,
    hasher: &'a mut sha2::Sha256,
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn is_real_dir(p: &Path) -> bool {
    fs_err::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Refuses to write below a symlink or a non-directory: a damaged tree must not redirect
/// a restore outside the env.
fn no_link_on_chain(env_dir: &Path, rel: &str) -> Result<(), UnpackError> {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut p = env_dir.to_path_buf();
    for part in &parts[..parts.len().saturating_sub(1)] {
        p.push(part);
        let m = fs_err::symlink_metadata(&p)?;
        if m.file_type().is_symlink() || !m.is_dir() {
            return Err(UnpackError::BadRoot {
                path: p,
                reason: format!(
                    "{rel} would be written through a non-directory; restore that first"
                ),
            });
        }
    }
    Ok(())
}

/// Moves whatever is at `rel` into the quarantine (kept, not deleted).
pub fn move_aside(target: &RestoreTarget<'_>, rel: &str) -> Result<(), UnpackError> {
    let from = native(target.env_dir, rel);
    if fs_err::symlink_metadata(&from).is_err() {
        return Ok(());
    }
    let mut to = native(target.quarantine, rel);
    let mut n = 1;
    while fs_err::symlink_metadata(&to).is_ok() {
        to = native(target.quarantine, &format!("{rel}.{n}"));
        n += 1;
    }
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::rename(&from, &to)?;
    tracing::info!(from = %from.display(), to = %to.display(), "moved into quarantine");
    Ok(())
}

/// Sets permission bits (no-op where there are none).
#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets permission bits (no-op where there are none).
#[cfg(not(unix))]
pub fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &str, at: &Path) -> std::io::Result<()> {
    fs_err::os::unix::fs::symlink(target, at)
}

#[cfg(windows)]
fn make_symlink(target: &str, at: &Path) -> std::io::Result<()> {
    fs_err::os::windows::fs::symlink_file(target.replace('/', "\\"), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_joins_components() {
        assert_eq!(
            native(Path::new("/r"), "a/b/c"),
            Path::new("/r").join("a").join("b").join("c")
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_paths_through_links() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("env/real")).unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("env/link")).unwrap();
        let env = dir.path().join("env");
        assert!(no_link_on_chain(&env, "real/x").is_ok());
        assert!(no_link_on_chain(&env, "top").is_ok());
        let err = no_link_on_chain(&env, "link/x").unwrap_err().to_string();
        assert!(err.contains("non-directory"), "{err}");
    }
}
