//! The copy of each unpacked artifact kept in the root (`ROOT/.envpack/artifacts/<env-id>.envpack.tar`),
//! the source `repair` re-extracts damaged files from.

use std::io::Read;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;

use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::root_dirs::RootDirs;
use crate::scratch::Scratch;
use crate::staging::{meta_layer_index, MANIFEST_FILE};

/// Where the kept copy of `env_id`'s artifact lives.
pub fn kept_artifact_path(layout: &RootLayout, env_id: &str) -> PathBuf {
    layout
        .meta_dir()
        .join("artifacts")
        .join(format!("{env_id}.envpack.tar"))
}

/// Keeps `artifact` as `env_id`'s copy unless one is there already: a hard link when the
/// root is on the same filesystem, else a copy; made in `scratch` and renamed in through the
/// root's handles, so a partial copy is never visible.
pub fn keep_artifact(
    dirs: &RootDirs,
    env_id: &str,
    artifact: &Path,
    scratch: &Scratch,
) -> Result<PathBuf, UnpackError> {
    let kept = kept_artifact_path(&dirs.layout, env_id);
    let name = kept_name(env_id);
    if dirs.artifacts()?.symlink_metadata(&name).is_ok() {
        return Ok(kept);
    }
    replace_kept(dirs, env_id, artifact, scratch)?;
    Ok(kept)
}

fn kept_name(env_id: &str) -> String {
    format!("{env_id}.envpack.tar")
}

/// Puts a copy (or hard link) of `artifact` at `env_id`'s kept path, replacing what is there.
pub fn replace_kept(
    dirs: &RootDirs,
    env_id: &str,
    artifact: &Path,
    scratch: &Scratch,
) -> Result<(), UnpackError> {
    const TMP: &str = "kept-artifact.tar";
    let kept = kept_artifact_path(&dirs.layout, env_id);
    let artifacts = dirs.artifacts()?;
    let io = UnpackError::at;
    let tmp_shown = scratch.path().join(TMP);
    let linked = match (artifact.parent(), artifact.file_name()) {
        (Some(parent), Some(file)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            cap_std::fs::Dir::open_ambient_dir(parent, cap_std::ambient_authority())
                .and_then(|src| src.hard_link(file, scratch.dir(), TMP))
                .is_ok()
        }
        _ => false,
    };
    if !linked {
        let mut from = fs_err::File::open(artifact)?;
        let mut to = scratch.dir().create(TMP).map_err(|e| io(e, &tmp_shown))?;
        std::io::copy(&mut from, &mut to).map_err(|e| io(e, &tmp_shown))?;
        // Flushed through the handle that wrote it (Windows needs write access for that).
        to.sync_all().map_err(|e| io(e, &tmp_shown))?;
    }
    scratch
        .dir()
        .rename(TMP, &artifacts, kept_name(env_id))
        .map_err(|e| io(e, &kept))?;
    crate::root_dirs::sync_dir(&artifacts)?;
    tracing::info!(path = %kept.display(), "kept a copy of the artifact");
    Ok(())
}

/// Opens `artifact` and proves it is `env_id`'s as the root at `root` unpacked it: the env id
/// matches, the index is the one verified at unpack (required where the root requires
/// signatures: else an unsigned artifact handed to `repair` would rewrite a signed env),
/// every layer blob matches its digest and the index agrees with the env's `envpack.json`.
/// The error says why not.
pub fn open_verified(artifact: &Path, env_id: &str, root: &Path) -> Result<ArtifactReader, String> {
    if !artifact.is_file() {
        return Err(format!("{} does not exist", artifact.display()));
    }
    let reader = ArtifactReader::open(artifact).map_err(|e| e.to_string())?;
    if reader.index().env_id != env_id {
        return Err(format!(
            "{} holds env {}, not {env_id}",
            artifact.display(),
            reader.index().env_id
        ));
    }
    crate::root_trust::RootTrust::read(root)
        .map_err(|e| e.to_string())?
        .check_index(env_id, &reader.index_digest().to_string())
        .map_err(|e| format!("{} cannot stand in for the env: {e}", artifact.display()))?;
    reader.verify_layers().map_err(|e| e.to_string())?;
    let meta = meta_layer_index(&reader, artifact).map_err(|e| e.to_string())?;
    crate::env_info::check_index_against_env_info(&reader, meta, artifact)
        .map_err(|e| e.to_string())?;
    Ok(reader)
}

/// The raw bytes of the `manifest` file in the artifact's meta layer.
pub fn artifact_manifest_bytes(reader: &ArtifactReader) -> Result<Vec<u8>, UnpackError> {
    let meta = meta_layer_index(reader, reader.path())?;
    let stream = reader.open_layer(meta)?;
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(stream));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() == tar::EntryType::Regular
            && entry.path_bytes().as_ref() == MANIFEST_FILE.as_bytes()
        {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            return Ok(bytes);
        }
    }
    Err(UnpackError::BadArtifact {
        path: reader.path().to_path_buf(),
        detail: format!("its meta layer has no \"{MANIFEST_FILE}\" file"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_once_via_link_or_copy() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(&dir.path().join("root"));
        fs_err::create_dir_all(&layout.root).unwrap();
        let dirs = RootDirs::open(&layout).unwrap();
        let scratch = Scratch::new(&dirs).unwrap();
        let artifact = dir.path().join("a.tar");
        fs_err::write(&artifact, "v1").unwrap();
        let kept = keep_artifact(&dirs, "e1", &artifact, &scratch).unwrap();
        assert_eq!(kept, layout.meta_dir().join("artifacts/e1.envpack.tar"));
        assert_eq!(fs_err::read_to_string(&kept).unwrap(), "v1");
        let other = dir.path().join("b.tar");
        fs_err::write(&other, "v2").unwrap();
        keep_artifact(&dirs, "e1", &other, &scratch).unwrap();
        assert_eq!(
            fs_err::read_to_string(&kept).unwrap(),
            "v1",
            "an existing copy stays"
        );
        assert!(
            open_verified(&dir.path().join("none.tar"), "e1", &layout.root)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(open_verified(&artifact, "e1", &layout.root).is_err());
    }
}
