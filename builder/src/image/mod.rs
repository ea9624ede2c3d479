//! OCI output: an image layout (or oci-archive) holding a complete envpack root at
//! `/opt/envpack/<name>/` — the four env layers under `envs/<name>-<platform>/` (linked from
//! `envs/<env-id>`), then a small root layer — with one manifest per linux platform and an
//! image index over them.

pub mod referrer;
pub mod restore;
pub mod root_layer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use envpack_layers::compress::Compression;
use envpack_layers::layer::{write_layer_prefixed, LayerDesc};
use oci_spec::image::{Descriptor, MediaType};

use crate::assemble::LayerForm;
use crate::env_layers::{EnvLayers, EnvMeta};
use envpack_oci::{
    container_env, descriptor, image_annotations, image_config, image_index, image_manifest,
    layer_media_type, layout_index, oci_platform, AnnotationInputs, BaseImage, LayerRecord,
    LayoutWriter, OciPlatform,
};
use envpack_pypkg::Platform;

/// Name of the layer holding the root around the env (link, shims, state seed).
pub const ROOT_LAYER: &str = "root";

/// The default tag: `<python version>-conan<conan version>`, e.g. `3.11.7-conan2.21.0`.
pub fn default_tag(python_version: &str, conan_version: Option<&str>) -> String {
    match conan_version {
        Some(c) => format!("{python_version}-conan{c}"),
        None => python_version.to_string(),
    }
}

/// Choices for the image besides the lock.
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    /// Tag in the layout's `index.json` (default: `<python>-conan<conan>`).
    pub tag: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// Extra annotations (`--annotation KEY=VALUE`), applied last.
    pub annotations: BTreeMap<String, String>,
    /// Base image, `None` for scratch.
    pub base: Option<BaseImage>,
}

/// One platform's image in the layout.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlatformImage {
    /// Platform name.
    pub platform: String,
    /// Env id.
    pub env_id: String,
    /// Digest of the platform manifest.
    pub manifest_digest: String,
    /// Digest of the config.
    pub config_digest: String,
    /// Our layers (cpython, packages, conan, meta, root), in image order.
    pub layers: Vec<LayerDesc>,
}

/// A written image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    /// The layout directory or oci-archive file.
    pub path: PathBuf,
    /// The tag in `index.json`.
    pub tag: String,
    /// Digest of what the tag points to (the image index, or the manifest for one platform).
    pub digest: String,
    /// sha256 of the oci-archive file, when one was written.
    pub archive_sha256: Option<String>,
    /// Per platform, sorted by name.
    pub platforms: Vec<PlatformImage>,
    /// The platform manifests signed (`build --sign`), with their signature referrers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<referrer::SignedImage>,
}

/// The root's directory inside the image, without the leading '/': `opt/envpack/<name>`.
pub fn image_root(name: &str) -> String {
    format!("opt/envpack/{name}")
}

/// The env's directory name under `envs/` in the image: `<name>-<platform>`. Unlike the env
/// id it doesn't change with the config, so the big CPython and packages layers keep their
/// digests (and stay cached in registries) when only a profile or remote changes.
pub fn env_slot(name: &str, platform: &str) -> String {
    format!("{name}-{platform}")
}

/// Where the env of platform `platform` sits in the image: `opt/envpack/<name>/envs/<slot>`.
pub fn env_prefix(name: &str, platform: &str) -> String {
    format!("{}/envs/{}", image_root(name), env_slot(name, platform))
}

/// Builds an image layout one platform at a time.
pub struct ImageWriter {
    layout: LayoutWriter,
    work: PathBuf,
    compression: Compression,
    settings: ImageSettings,
    manifests: Vec<(String, Descriptor)>,
    platforms: Vec<PlatformImage>,
    annotations: Option<AnnotationInputs>,
    sbom_referrers: Vec<referrer::SbomReferrer>,
}

impl ImageWriter {
    /// Starts a layout in `layout_dir`; `work_dir` holds temporary layer files (same
    /// filesystem, so finished layers are renamed into the blobs).
    pub fn new(
        layout_dir: &Path,
        work_dir: &Path,
        compression: Compression,
        settings: ImageSettings,
    ) -> envpack_oci::Result<Self> {
        fs_err::create_dir_all(work_dir)?;
        Ok(ImageWriter {
            layout: LayoutWriter::create(layout_dir)?,
            work: work_dir.to_path_buf(),
            compression,
            settings,
            manifests: Vec::new(),
            platforms: Vec::new(),
            annotations: None,
            sbom_referrers: Vec::new(),
        })
    }

    /// The form the env layers of an image are made in: under `prefix` (see [`env_prefix`]),
    /// with the image's compression.
    pub fn layer_form<'a>(&self, prefix: &'a str) -> LayerForm<'a> {
        LayerForm {
            prefix,
            compression: self.compression,
        }
    }

    /// Sets the base image of the platforms added next (`None`: `FROM scratch`).
    pub fn set_base(&mut self, base: Option<BaseImage>) {
        self.settings.base = base;
    }

    /// Adds the platform image of `env`, whose layers were made in the form
    /// [`ImageWriter::layer_form`] gives; `staging` holds its config files.
    pub fn add_platform(
        &mut self,
        staging: &Path,
        env: &EnvLayers,
        meta: &EnvMeta,
        platform: &Platform,
    ) -> anyhow::Result<&PlatformImage> {
        let epoch = meta.epoch;
        let env_id = env.env_id.clone();
        let root = image_root(meta.name);
        let slot = env_slot(meta.name, meta.platform);

        let mut layers: Vec<LayerDesc> = Vec::new();
        let mut descs: Vec<Descriptor> = Vec::new();
        if let Some(base) = &self.settings.base {
            for (d, file) in base.layers.iter().zip(&base.files) {
                self.layout.put_file(file, d)?;
                descs.push(d.clone());
            }
        }
        for f in &env.files {
            let d = descriptor(
                layer_media_type(f.desc.compression),
                &f.desc.digest,
                f.desc.size,
            )?;
            // Linked, not moved: the stable layers' files belong to the layer cache.
            self.layout.put_file(&f.path, &d)?;
            descs.push(d);
            layers.push(f.desc.clone());
        }
        let root_work = tempfile::Builder::new()
            .prefix(".envpack-root-")
            .tempdir_in(&self.work)
            .with_context(|| format!("creating a work dir in {}", self.work.display()))?;
        let abs_root = format!("/{root}");
        let all_env: Vec<_> = env.parts.iter().flatten().cloned().collect();
        let root_entries = root_layer::root_layer_entries(
            root_work.path(),
            staging,
            &all_env,
            &env_id,
            &slot,
            &abs_root,
        )?;
        let (desc, file) = write_layer_prefixed(
            ROOT_LAYER,
            root_work.path(),
            &root_entries,
            &root,
            epoch,
            self.compression,
            &self.work,
        )
        .with_context(|| format!("writing image layer {ROOT_LAYER} for {}", platform.name))?;
        descs.push(self.layout.put_layer(&file, &desc)?);
        layers.push(desc);

        let oci = OciPlatform {
            os: platform.oci_os.clone(),
            arch: platform.oci_arch.clone(),
            variant: platform.oci_variant.clone(),
        };
        let base = self.settings.base.as_ref();
        let records: Vec<LayerRecord> = layers
            .iter()
            .map(|l| LayerRecord {
                name: l.name.clone(),
                diff_id: l.diff_id,
            })
            .collect();
        let vars = container_env(
            &abs_root,
            &slot,
            &env_id,
            base.and_then(|b| b.path.as_deref()),
        );
        let cfg = image_config(&oci, vars, &records, epoch, base)?;
        let config_desc = self.layout.put_json(MediaType::ImageConfig, &cfg)?;

        let inputs = AnnotationInputs {
            epoch,
            title: meta.name.to_string(),
            version: default_tag(meta.python_version, env.conan_version.as_deref()),
            source: self.settings.source.clone(),
            revision: self.settings.revision.clone(),
            extra: self.settings.annotations.clone(),
        };
        let manifest =
            image_manifest(config_desc.clone(), descs, image_annotations(&inputs, base))?;
        let mut manifest_desc = self.layout.put_json(MediaType::ImageManifest, &manifest)?;
        manifest_desc.set_platform(Some(oci_platform(&oci)?));
        self.annotations.get_or_insert(inputs);
        let sboms =
            referrer::attach_sboms(&self.layout, &manifest_desc, &platform.name, staging, epoch)?;
        self.sbom_referrers.extend(sboms);
        self.manifests
            .push((platform.name.clone(), manifest_desc.clone()));
        self.platforms.push(PlatformImage {
            platform: platform.name.clone(),
            env_id,
            manifest_digest: manifest_desc.digest().to_string(),
            config_digest: config_desc.digest().to_string(),
            layers,
        });
        let last = self.platforms.len() - 1;
        Ok(&self.platforms[last])
    }

    /// Writes the image index (for several platforms) and the layout's `index.json`.
    pub fn finish(mut self) -> anyhow::Result<BuiltImage> {
        let inputs = self
            .annotations
            .take()
            .ok_or_else(|| envpack_oci::OciError::NoPlatforms {
                built: "none".into(),
            })?;
        let target = if self.manifests.len() == 1 {
            self.manifests[0].1.clone()
        } else {
            // Platforms may sit on different base manifests; each manifest names its own.
            let idx = image_index(self.manifests.clone(), image_annotations(&inputs, None))?;
            self.layout.put_json(MediaType::ImageIndex, &idx)?
        };
        let tag = self.settings.tag.clone().unwrap_or(inputs.version.clone());
        let digest = target.digest().to_string();
        let mut top = layout_index(target, &tag)?;
        referrer::list_in_index(&mut top, &self.sbom_referrers);
        let path = self.layout.finish(&top)?;
        self.platforms
            .sort_by(|a, b| a.platform.as_bytes().cmp(b.platform.as_bytes()));
        Ok(BuiltImage {
            path,
            tag,
            digest,
            archive_sha256: None,
            platforms: self.platforms,
            signatures: Vec::new(),
        })
    }
}

/// Moves a finished layout from `built` to `out`, replacing an earlier layout (or an empty
/// directory) there but nothing else.
pub fn place_layout(built: &Path, out: &Path) -> envpack_oci::Result<()> {
    match fs_err::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
        Ok(md) => {
            let in_the_way = || envpack_oci::OciError::OutputInTheWay {
                path: out.display().to_string(),
            };
            if !md.is_dir() {
                return Err(in_the_way());
            }
            if out.join("oci-layout").is_file() {
                fs_err::remove_dir_all(out)?;
            } else if fs_err::read_dir(out)?.next().is_none() {
                fs_err::remove_dir(out)?;
            } else {
                return Err(in_the_way());
            }
        }
    }
    fs_err::rename(built, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_names_python_and_conan() {
        assert_eq!(default_tag("3.11.7", Some("2.21.0")), "3.11.7-conan2.21.0");
        assert_eq!(default_tag("3.11.7", None), "3.11.7");
    }

    #[test]
    fn place_layout_replaces_only_layouts_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str| {
            let p = dir.path().join(name);
            fs_err::create_dir_all(&p).unwrap();
            fs_err::write(p.join("oci-layout"), envpack_oci::OCI_LAYOUT).unwrap();
            p
        };
        let out = dir.path().join("out");
        place_layout(&make("a"), &out).unwrap();
        assert!(out.join("oci-layout").is_file());
        place_layout(&make("b"), &out).unwrap();
        assert!(!dir.path().join("b").exists());
        let other = dir.path().join("other");
        fs_err::create_dir_all(&other).unwrap();
        fs_err::write(other.join("precious"), b"x").unwrap();
        let err = place_layout(&make("c"), &other).unwrap_err();
        assert!(err.to_string().contains("not an OCI image layout"), "{err}");
        assert!(other.join("precious").is_file());
        let empty = dir.path().join("empty");
        fs_err::create_dir_all(&empty).unwrap();
        place_layout(&make("d"), &empty).unwrap();
        assert!(empty.join("oci-layout").is_file());
    }
}
