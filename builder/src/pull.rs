//! `envpack unpack REF|DIR|FILE`: restoring an env from a registry, an image layout or an
//! oci-archive. Only the host platform's manifest, config and env layers are fetched; every
//! blob is digest-checked before anything built from it is used, and the env reaches the root
//! through the unpacker, so a failed pull changes nothing there.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use crate::image::referrer::find_signature;
use crate::image::restore::{restore_artifact, ImageStore, RestoredArtifact};
use envpack_oci::OciPlatform;
use envpack_oci::{extract_layout_archive, is_layout_archive};
use envpack_oci::{ClientOptions, Reference, RegistryClient};
use envpack_oci::{Desc, Document, LayoutReader};

/// What `envpack unpack` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnpackSource {
    /// A portable artifact file.
    Artifact(PathBuf),
    /// An OCI image layout directory, with an optional `:TAG` suffix.
    Layout(PathBuf, Option<String>),
    /// An oci-archive file.
    Archive(PathBuf),
    /// A registry reference.
    Registry(Reference),
}

impl UnpackSource {
    /// Decides what `arg` names: an existing path (by content), else a registry reference.
    pub fn classify(arg: &str) -> anyhow::Result<Self> {
        let path = Path::new(arg);
        if path.is_dir() {
            return Ok(UnpackSource::Layout(path.to_path_buf(), None));
        }
        if path.is_file() {
            return Ok(if is_layout_archive(path)? {
                UnpackSource::Archive(path.to_path_buf())
            } else {
                UnpackSource::Artifact(path.to_path_buf())
            });
        }
        // `DIR:TAG` for a layout holding several tags.
        if let Some((dir, tag)) = arg.rsplit_once(':') {
            if Path::new(dir).join("oci-layout").is_file() {
                return Ok(UnpackSource::Layout(dir.into(), Some(tag.to_string())));
            }
        }
        // Checked before the reference grammar: `dist.v2/env.envpack.tar` is also a valid
        // reference (host `dist.v2`), and a typo must not become a request to that host.
        if looks_like_path(arg) {
            return Err(anyhow!("{arg}: no such file or directory"));
        }
        Reference::parse(arg)
            .map(UnpackSource::Registry)
            .map_err(|e| {
                anyhow!(
                    "{arg} is neither an existing file or directory nor an image reference: {e}"
                )
            })
    }
}

/// Whether an argument that is no image reference was meant as a path: then the missing file is
/// the whole story, not the reference grammar.
fn looks_like_path(arg: &str) -> bool {
    let name = arg.rsplit(['/', '\\']).next().unwrap_or(arg);
    arg.starts_with(['/', '.', '~'])
        || arg.contains('\\')
        || [".tar", ".tar.zst", ".tar.gz", ".tgz"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// An image layout as an [`ImageStore`].
pub struct LayoutStore {
    reader: LayoutReader,
    tag: Option<String>,
}

impl LayoutStore {
    /// Opens the layout at `dir`; `tag` picks among several tags.
    pub fn open(dir: &Path, tag: Option<String>) -> anyhow::Result<Self> {
        Ok(LayoutStore {
            reader: LayoutReader::open(dir)?,
            tag,
        })
    }
}

impl ImageStore for LayoutStore {
    fn top(&mut self) -> anyhow::Result<Desc> {
        Ok(self.reader.tagged(self.tag.as_deref())?.0)
    }
    fn read_doc(&mut self, desc: &Desc) -> anyhow::Result<Vec<u8>> {
        Ok(self.reader.read_verified(desc)?)
    }
    fn blob_file(&mut self, desc: &Desc) -> anyhow::Result<PathBuf> {
        Ok(self.reader.blob_path(&desc.digest)?)
    }
    fn referrers(&mut self, subject: &str) -> anyhow::Result<Vec<(Desc, Document)>> {
        let entries: Vec<Desc> = self
            .reader
            .index()
            .entries
            .iter()
            .map(|e| e.desc.clone())
            .collect();
        let reader = &self.reader;
        Ok(naming_subject(entries, subject, |d| {
            Ok(reader.read_verified(d)?)
        }))
    }
}

/// A registry repository as an [`ImageStore`]; blobs download into `downloads`.
pub struct RegistryStore {
    client: RegistryClient,
    reference: Reference,
    downloads: PathBuf,
}

impl RegistryStore {
    /// Connects for pulling `reference`.
    pub fn connect(
        reference: Reference,
        options: &ClientOptions,
        downloads: &Path,
    ) -> anyhow::Result<Self> {
        let scope = format!("repository:{}:pull", reference.repository);
        let client = RegistryClient::connect(&reference.registry, options, vec![scope])?;
        fs_err::create_dir_all(downloads)?;
        Ok(RegistryStore {
            client,
            reference,
            downloads: downloads.to_path_buf(),
        })
    }
}

impl ImageStore for RegistryStore {
    fn top(&mut self) -> anyhow::Result<Desc> {
        let m = self
            .client
            .get_manifest(&self.reference.repository, self.reference.target())?;
        Ok(Desc {
            media_type: envpack_oci::media_type_of(&m.media_type, &m.bytes),
            digest: m.digest,
            size: m.bytes.len() as u64,
        })
    }
    fn read_doc(&mut self, desc: &Desc) -> anyhow::Result<Vec<u8>> {
        let repo = &self.reference.repository;
        let bytes = if envpack_oci::is_manifest_type(&desc.media_type) {
            self.client.get_manifest(repo, &desc.digest)?.bytes
        } else {
            let path = self.blob_file(desc)?;
            fs_err::read(&path)?
        };
        if bytes.len() as u64 != desc.size {
            return Err(anyhow!(
                "{}: {} bytes, the descriptor says {}",
                desc.digest,
                bytes.len(),
                desc.size
            ));
        }
        Ok(bytes)
    }
    fn blob_file(&mut self, desc: &Desc) -> anyhow::Result<PathBuf> {
        let name = desc.digest.replace(':', "-");
        let dest = self.downloads.join(name);
        if !dest.exists() {
            self.client
                .get_blob_to(&self.reference.repository, &desc.digest, desc.size, &dest)?;
        }
        Ok(dest)
    }
    fn referrers(&mut self, subject: &str) -> anyhow::Result<Vec<(Desc, Document)>> {
        let repo = self.reference.repository.clone();
        // The referrers API where the registry has one, else the `sha256-<hex>` fallback tag.
        let listed = match self.client.get_referrers(&repo, subject)? {
            Some(bytes) => bytes,
            None => {
                let tag = envpack_oci::fallback_tag(subject);
                if self.client.manifest_digest(&repo, &tag)?.is_none() {
                    return Ok(Vec::new());
                }
                self.client.get_manifest(&repo, &tag)?.bytes
            }
        };
        let what = format!("the referrers of {subject}");
        let index = Document::parse("application/vnd.oci.image.index.v1+json", &listed, &what)?;
        // Anyone who can push may add entries: at most MAX_REFERRERS are read.
        let entries: Vec<Desc> = index
            .entries
            .into_iter()
            .map(|e| e.desc)
            .take(MAX_REFERRERS)
            .collect();
        Ok(naming_subject(entries, subject, |d| self.read_doc(d)))
    }
}

/// The most referrers of one manifest read from a registry.
const MAX_REFERRERS: usize = 256;

/// The manifests among `listed` whose `subject` is `subject`, each read with `read` (digest-
/// checked by it) and parsed. Only manifest entries of at most a manifest's size are read; one
/// that can't be read or parsed is passed over with a warning, so a damaged entry neither hides
/// the others nor blocks an unpack that needs none of them.
fn naming_subject(
    listed: Vec<Desc>,
    subject: &str,
    mut read: impl FnMut(&Desc) -> anyhow::Result<Vec<u8>>,
) -> Vec<(Desc, Document)> {
    let mut out = Vec::new();
    for desc in listed {
        if !envpack_oci::is_manifest_type(&desc.media_type)
            || desc.size > envpack_oci::MAX_MANIFEST_BYTES
        {
            continue;
        }
        let doc =
            read(&desc).and_then(|b| Ok(Document::parse(&desc.media_type, &b, &desc.digest)?));
        match doc {
            Ok(doc) if doc.subject.as_ref().is_some_and(|s| s.digest == subject) => {
                out.push((desc, doc))
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("passing over referrer {} of {subject}: {e:#}", desc.digest),
        }
    }
    out
}

/// The OCI platform of the machine we run on.
pub fn host_oci_platform() -> anyhow::Result<OciPlatform> {
    let p = envpack_pypkg::host_platform()
        .ok_or_else(|| anyhow!("this host is not one of envpack's platforms"))?;
    Ok(OciPlatform {
        os: p.oci_os,
        arch: p.oci_arch,
        variant: p.oci_variant,
    })
}

/// Rebuilds the host platform's artifact from an image source inside `work` (a scratch dir
/// the caller removes). `Artifact` sources are returned as they are.
pub fn artifact_from_source(
    source: &UnpackSource,
    work: &Path,
    client: &ClientOptions,
    keys: &envpack_trust::TrustedKeys,
) -> anyhow::Result<Option<RestoredArtifact>> {
    let platform = host_oci_platform()?;
    let restored = match source {
        UnpackSource::Artifact(_) => return Ok(None),
        UnpackSource::Layout(dir, tag) => {
            let mut store = LayoutStore::open(dir, tag.clone())?;
            restore_signed(&mut store, &platform, work, keys)
        }
        UnpackSource::Archive(file) => {
            let layout = work.join("layout");
            extract_layout_archive(file, &layout)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut store = LayoutStore::open(&layout, None)?;
            restore_signed(&mut store, &platform, work, keys)
        }
        UnpackSource::Registry(r) => {
            let mut store = RegistryStore::connect(r.clone(), client, &work.join("downloads"))?;
            restore_signed(&mut store, &platform, work, keys)
        }
    };
    restored.map(Some)
}

/// Restores the artifact of `platform` and puts the signature the image carries for it (if
/// any) beside it, where the unpacker looks for a tarball's.
fn restore_signed(
    store: &mut dyn ImageStore,
    platform: &OciPlatform,
    work: &Path,
    keys: &envpack_trust::TrustedKeys,
) -> anyhow::Result<RestoredArtifact> {
    let restored = restore_artifact(store, platform, work)?;
    // Not finding one is not an error here: the unpacker decides whether one is needed.
    match find_signature(store, &restored.manifest_digest, keys) {
        Ok(Some(sig)) => fs_err::write(envpack_trust::signature_path(&restored.path), sig)?,
        Ok(None) => {}
        Err(e) => tracing::warn!(
            "could not list the signatures of {}: {e:#}",
            restored.manifest_digest
        ),
    }
    Ok(restored)
}

/// An artifact ready for the unpacker, with the scratch space it lives in (removed on drop).
#[derive(Debug)]
pub struct PreparedArtifact {
    /// The artifact file.
    pub path: PathBuf,
    /// Set when it was rebuilt from an image.
    pub restored: Option<RestoredArtifact>,
    _work: Option<tempfile::TempDir>,
}

/// Resolves `source` to an artifact file: as given, or rebuilt from the image in a scratch
/// directory under the cache (opened from `cache_dir` only then).
pub fn prepare_artifact(
    source: &UnpackSource,
    cache_dir: Option<&Path>,
    client: &ClientOptions,
    keys: &envpack_trust::TrustedKeys,
) -> anyhow::Result<PreparedArtifact> {
    if let UnpackSource::Artifact(p) = source {
        return Ok(PreparedArtifact {
            path: p.clone(),
            restored: None,
            _work: None,
        });
    }
    let work = envpack_net::Cache::open(cache_dir)?.scratch_dir()?;
    let restored = artifact_from_source(source, work.path(), client, keys)?
        .ok_or_else(|| anyhow!("no image in the source"))?;
    Ok(PreparedArtifact {
        path: restored.path.clone(),
        restored: Some(restored),
        _work: Some(work),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        fs_err::create_dir_all(&layout).unwrap();
        fs_err::write(layout.join("oci-layout"), b"{}").unwrap();
        let s = layout.to_str().unwrap();
        assert_eq!(
            UnpackSource::classify(s).unwrap(),
            UnpackSource::Layout(layout.clone(), None)
        );
        assert_eq!(
            UnpackSource::classify(&format!("{s}:v1")).unwrap(),
            UnpackSource::Layout(layout.clone(), Some("v1".into()))
        );
        let art = dir.path().join("a.envpack.tar");
        fs_err::write(&art, b"not a tar").unwrap();
        assert_eq!(
            UnpackSource::classify(art.to_str().unwrap()).unwrap(),
            UnpackSource::Artifact(art.clone())
        );
        match UnpackSource::classify("127.0.0.1:5000/team/env:v1").unwrap() {
            UnpackSource::Registry(r) => assert_eq!(r.repository, "team/env"),
            other => panic!("{other:?}"),
        }
        for (arg, want) in [
            (
                "missing-file.tar",
                "missing-file.tar: no such file or directory",
            ),
            (
                "./dist/nope.envpack.tar",
                "./dist/nope.envpack.tar: no such file or directory",
            ),
            ("../layout", "../layout: no such file or directory"),
            (
                "dist.v2/env.envpack.tar",
                "dist.v2/env.envpack.tar: no such file or directory",
            ),
            (r"dist\env", r"dist\env: no such file or directory"),
            (
                "team-env",
                "team-env is neither an existing file or directory nor an image reference: ",
            ),
        ] {
            let err = UnpackSource::classify(arg).unwrap_err().to_string();
            assert!(err.starts_with(want), "{arg}: {err}");
        }
    }
}
