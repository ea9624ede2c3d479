//! Base images: `lock` resolves the spec's reference to one platform manifest digest per
//! platform; `build` pulls exactly that digest (never a tag) into the content-addressed cache
//! and reuses its layers byte for byte, so the base's digest chain stays intact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use envpack_layers::digest::Sha256Digest;
use oci_spec::image::MediaType;

use crate::lock::{Lock, LockedBase};
use crate::spec::Spec;
use envpack_net::Cache;
use envpack_oci::descriptor;
use envpack_oci::BaseImage;
use envpack_oci::OciPlatform;
use envpack_oci::{ClientOptions, Reference, RegistryClient};
use envpack_oci::{ConfigLayers, Desc, Document};
use envpack_pypkg::Platform;

/// The OCI platform of an envpack platform.
pub fn oci_of(p: &Platform) -> OciPlatform {
    OciPlatform {
        os: p.oci_os.clone(),
        arch: p.oci_arch.clone(),
        variant: p.oci_variant.clone(),
    }
}

/// Resolves the spec's base reference of every linux platform in `lock` to a manifest digest.
///
/// A reference by digest whose manifest (or index) is in the cache needs no registry. With
/// `client.offline`, a platform whose base the `previous` lock already pinned under the same
/// reference keeps that pin; anything else would need the registry and fails, naming it.
pub fn resolve_bases(
    spec: &Spec,
    lock: &Lock,
    previous: Option<&Lock>,
    cache: &Cache,
    client: &ClientOptions,
) -> anyhow::Result<Vec<LockedBase>> {
    let mut clients: BTreeMap<String, RegistryClient> = BTreeMap::new();
    let mut out = Vec::new();
    for lp in &lock.platforms {
        let Some(name) = spec.image.base_for(&lp.name) else {
            continue;
        };
        let p = envpack_pypkg::platform_by_name(&lp.name)?;
        if p.oci_os != "linux" {
            continue;
        }
        let pinned = previous.and_then(|prev| {
            prev.image_bases
                .iter()
                .find(|b| b.platform == lp.name && b.name == name)
        });
        if let (true, Some(pin)) = (client.offline, pinned) {
            tracing::warn!(
                "{}: kept the previous lock's base pin {name}@{} (--offline: not resolved again)",
                lp.name,
                pin.digest
            );
            out.push(pin.clone());
            continue;
        }
        let r = Reference::parse(name)?;
        let cached = match &r.digest {
            Some(d) => cached_document(cache, d)?.map(|bytes| (d.clone(), bytes)),
            None => None,
        };
        let (top_digest, media_type, bytes) = match cached {
            Some((digest, bytes)) => (digest, String::new(), bytes),
            None => {
                let c = match clients.entry(r.registry.clone()) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        let scope = format!("repository:{}:pull", r.repository);
                        let connected = RegistryClient::connect(&r.registry, client, vec![scope])
                            .with_context(|| offline_hint(client, name, &lp.name))?;
                        e.insert(connected)
                    }
                };
                let top = c
                    .get_manifest(&r.repository, r.target())
                    .with_context(|| format!("resolving base image {name}"))?;
                (top.digest, top.media_type, top.bytes)
            }
        };
        let doc = Document::parse(&media_type, &bytes, &format!("base image {name}"))?;
        let digest = if doc.index {
            doc.select_platform(&oci_of(&p))
                .with_context(|| format!("base image {name} for {}", lp.name))?
                .digest
        } else {
            top_digest
        };
        tracing::info!(platform = %lp.name, base = name, %digest, "resolved base image");
        out.push(LockedBase {
            platform: lp.name.clone(),
            name: name.to_string(),
            digest,
        });
    }
    Ok(out)
}

/// The cached manifest or index of `digest`; a blob that is some other document (a config, a
/// layer) is left for the registry to answer.
fn cached_document(cache: &Cache, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(bytes) = cache.read(&Sha256Digest::parse_prefixed(digest)?)? else {
        return Ok(None);
    };
    Ok(Document::parse("", &bytes, digest).is_ok().then_some(bytes))
}

/// Context for a registry that could not be reached while resolving a base image.
fn offline_hint(client: &ClientOptions, name: &str, platform: &str) -> String {
    if client.offline {
        format!(
            "resolving base image {name} for {platform}: the previous lock has no pin for it and \
             its manifest is not in the cache; run `envpack lock` once without --offline"
        )
    } else {
        format!("resolving base image {name} for {platform}")
    }
}

/// The OCI layer media type for a base layer's (possibly Docker) media type; the bytes stay
/// the same, so the digest does too.
pub fn oci_layer_type(media_type: &str) -> anyhow::Result<MediaType> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(MediaType::ImageLayerGzip),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Ok(MediaType::ImageLayerZstd),
        "application/vnd.oci.image.layer.v1.tar" => Ok(MediaType::ImageLayer),
        other => bail!("base layer media type {other} is not supported"),
    }
}

/// Fetches blobs of one base image, from the cache when present.
struct BlobSource<'a> {
    cache: &'a Cache,
    reference: Reference,
    options: &'a ClientOptions,
    client: Option<RegistryClient>,
    /// A bundle's image layout, which then serves every blob (no registry is asked).
    layout: Option<PathBuf>,
}

impl BlobSource<'_> {
    fn client(&mut self) -> anyhow::Result<&RegistryClient> {
        if self.client.is_none() {
            let scope = format!("repository:{}:pull", self.reference.repository);
            self.client = Some(RegistryClient::connect(
                &self.reference.registry,
                self.options,
                vec![scope],
            )?);
        }
        self.client
            .as_ref()
            .ok_or_else(|| anyhow!("no registry client"))
    }

    /// The cached file of `digest`, downloading (and verifying) it on a miss.
    fn blob(&mut self, digest: &str, size: u64, manifest: bool) -> anyhow::Result<PathBuf> {
        let sha = Sha256Digest::parse_prefixed(digest)?;
        if let Some(p) = self.cache.get(&sha)? {
            return Ok(p);
        }
        if let Some(layout) = &self.layout {
            let path = layout.join("blobs/sha256").join(sha.to_hex());
            // A plain file of the size the manifest gives (a manifest: at most the size any
            // manifest may have), so a planted link or an endless file is never copied in.
            let plain = fs_err::symlink_metadata(&path).ok().filter(|m| m.is_file());
            let Some(meta) = plain else {
                bail!(
                    "base blob {digest} of {} is not in the bundle's image layout {} (as a plain file)",
                    self.reference,
                    layout.display()
                );
            };
            let fits = if manifest {
                meta.len() <= envpack_oci::MAX_MANIFEST_BYTES
            } else {
                meta.len() == size
            };
            if !fits {
                bail!(
                    "base blob {digest} in {} is {} bytes, not the size its manifest gives",
                    layout.display(),
                    meta.len()
                );
            }
            return self.cached(&path, &sha, digest);
        }
        let scratch = self.cache.scratch_dir()?;
        let tmp = scratch.path().join("blob");
        let repo = self.reference.repository.clone();
        if manifest {
            let m = self.client()?.get_manifest(&repo, digest)?;
            fs_err::write(&tmp, &m.bytes)?;
        } else {
            self.client()?.get_blob_to(&repo, digest, size, &tmp)?;
        }
        self.cached(&tmp, &sha, digest)
    }

    /// Copies `file` into the cache, which must hash it to `sha`.
    fn cached(
        &self,
        file: &std::path::Path,
        sha: &Sha256Digest,
        digest: &str,
    ) -> anyhow::Result<PathBuf> {
        let cached = self.cache.insert_file(file)?;
        if cached.sha256 != *sha {
            bail!(
                "base blob {digest} hashed to {} in the cache",
                cached.sha256
            );
        }
        Ok(cached.path)
    }
}

/// Pulls the pinned base of one platform (by digest) into the cache and describes it.
pub fn pull_base(
    locked: &LockedBase,
    cache: &Cache,
    options: &ClientOptions,
    platform: &OciPlatform,
) -> anyhow::Result<BaseImage> {
    let reference = Reference::parse(&locked.name)?;
    let mut src = BlobSource {
        cache,
        reference,
        options,
        client: None,
        layout: crate::config::base_layout()?,
    };
    let what = format!("base image {}@{}", locked.name, locked.digest);
    let manifest_bytes = fs_err::read(src.blob(&locked.digest, 0, true).context(what.clone())?)?;
    let manifest = Document::parse("", &manifest_bytes, &what)?;
    if manifest.index {
        bail!("{what} is an index; the lock must pin a platform manifest (re-run `envpack lock`)");
    }
    let (_, blobs) = manifest.children();
    let (config_desc, layers): (&Desc, &[Desc]) = blobs
        .split_first()
        .ok_or_else(|| anyhow!("{what}: manifest has no config"))?;
    let config_path = src.blob(&config_desc.digest, config_desc.size, false)?;
    let config = ConfigLayers::parse(&fs_err::read(&config_path)?, &format!("{what}: config"))?;
    if config.os != platform.os || config.architecture != platform.arch {
        bail!(
            "{what} is {}/{}, not {}/{}",
            config.os,
            config.architecture,
            platform.os,
            platform.arch
        );
    }
    let diff_ids = config.diff_ids;
    if diff_ids.len() != layers.len() {
        bail!(
            "{what}: {} diff_ids for {} layers",
            diff_ids.len(),
            layers.len()
        );
    }
    let history = config.history;
    let path = config
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH=").map(str::to_string));
    let mut descs = Vec::new();
    let mut files = Vec::new();
    for l in layers {
        files.push(src.blob(&l.digest, l.size, false)?);
        let d = Sha256Digest::parse_prefixed(&l.digest)?;
        descs.push(descriptor(oci_layer_type(&l.media_type)?, &d, l.size)?);
    }
    Ok(BaseImage {
        name: locked.name.clone(),
        digest: locked.digest.clone(),
        diff_ids,
        history,
        layers: descs,
        path,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_types_keep_their_bytes() {
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            MediaType::ImageLayerGzip
        );
        assert_eq!(
            oci_layer_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            MediaType::ImageLayerZstd
        );
        assert!(
            oci_layer_type("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip").is_err()
        );
    }
}
