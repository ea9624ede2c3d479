//! Turning one platform's envpack image back into the portable artifact it was built from,
//! so the unpacker restores it exactly as it restores a tarball.
//!
//! The image's env layers hold the env under `opt/envpack/<name>/envs/<name>-<platform>/`;
//! without that prefix they are byte-for-byte the layers the env id was computed from. Each
//! layer is streamed once — compressed digest and diff_id checked on the way — straight into a
//! plain tar with the prefix removed and the headers re-made as the builder makes them, so
//! nothing but the small meta layer is extracted; the re-written layers' diff_ids must match
//! the ones `envpack.json` records.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::{decoder, Compression};
use envpack_layers::digest::{HashingReader, HashingWriter, Sha256Digest};
use envpack_layers::extract::{extract_layer, ExtractOptions};
use envpack_layers::layer::LayerDesc;
use envpack_layers::tarfmt::{entry_header, file_header, padding, END_OF_ARCHIVE};
use envpack_layers::tree::{EntryKind, TreeEntry};
use rayon::prelude::*;
use serde_json::Value;

use super::{env_slot, image_root, ROOT_LAYER};
use crate::artifact_writer::artifact_name;
use crate::env_layers::LAYERS;
use envpack_oci::{ConfigLayers, Desc, Document, OciPlatform};

/// Upper bound on what one image's env layers may decompress to.
const MAX_ENV_BYTES: u64 = 64 << 30;

/// Where image content comes from: a layout on disk or a registry.
pub trait ImageStore {
    /// The descriptor the reference or tag points at.
    fn top(&mut self) -> anyhow::Result<Desc>;
    /// A manifest, index or config, digest-checked.
    fn read_doc(&mut self, desc: &Desc) -> anyhow::Result<Vec<u8>>;
    /// A local file holding blob `desc` (not yet hashed: the caller hashes it while reading).
    fn blob_file(&mut self, desc: &Desc) -> anyhow::Result<PathBuf>;
    /// The referrer manifests whose `subject` is the manifest `subject` (each digest-checked),
    /// with their parsed documents: a layout's `index.json` entries, a registry's
    /// `sha256-<hex>` fallback tag.
    fn referrers(&mut self, subject: &str) -> anyhow::Result<Vec<(Desc, Document)>>;
}

fn layer_compression(media_type: &str) -> anyhow::Result<Compression> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Ok(Compression::Zstd),
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
        other => bail!("layer media type {other} is not a gzip or zstd tar"),
    }
}

/// Runs `consume` on the decompressed tar of layer `desc` (blob in `file`), then reads the
/// rest and checks the blob's digest and size and the tar's `diff_id`. `doing` names the work
/// in `consume`'s errors.
fn with_checked_layer<T>(
    file: &Path,
    desc: &Desc,
    diff_id: &Sha256Digest,
    doing: &str,
    consume: impl FnOnce(&mut dyn Read) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let compression = layer_compression(&desc.media_type)?;
    let compressed = std::sync::Arc::new(std::sync::Mutex::new(None));
    let f = fs_err::File::open(file)?;
    let outer = HashingReader::new(std::io::BufReader::with_capacity(1 << 20, f));
    let outer = FinishOnEof {
        inner: Some(outer),
        slot: compressed.clone(),
    };
    let mut inner = HashingReader::new(decoder(compression, outer)?);
    let out = match consume(&mut inner) {
        Ok(out) => out,
        Err(e) => {
            // A damaged blob usually breaks decompression first; name the real cause.
            let (actual, size) = Sha256Digest::of_file(file)?;
            if actual.to_string() != desc.digest || size != desc.size {
                bail!(
                    "layer {}: digest mismatch: {} hashes to {actual} ({size} bytes)",
                    desc.digest,
                    file.display()
                );
            }
            return Err(e).with_context(|| format!("{doing} layer {}", desc.digest));
        }
    };
    std::io::copy(&mut inner, &mut std::io::sink())?;
    let (actual_diff, _) = inner.finish();
    let (actual, size) = compressed
        .lock()
        .ok()
        .and_then(|g| *g)
        .ok_or_else(|| anyhow!("layer {} was not read to its end", desc.digest))?;
    if actual.to_string() != desc.digest || size != desc.size {
        bail!(
            "layer {}: digest mismatch: the blob hashes to {actual} ({size} bytes, {} expected)",
            desc.digest,
            desc.size
        );
    }
    if actual_diff != *diff_id {
        bail!(
            "layer {}: uncompressed digest {actual_diff} is not the config's diff_id {diff_id}",
            desc.digest
        );
    }
    Ok(out)
}

/// Streams layer `desc` into `dest`, checking its digest, size and `diff_id`; returns its
/// entries (paths as in the image).
fn extract_checked(
    file: &Path,
    desc: &Desc,
    diff_id: &Sha256Digest,
    dest: &Dir,
) -> anyhow::Result<Vec<TreeEntry>> {
    with_checked_layer(file, desc, diff_id, "extracting", |tar| {
        let opts = ExtractOptions {
            manifest: None,
            max_total_bytes: MAX_ENV_BYTES,
            ..Default::default()
        };
        Ok(extract_layer(tar, dest, &opts)?)
    })
}

/// Streams layer `desc` straight into a plain tar layer at `out_dir` holding the same entries
/// with `prefix/` removed (the prefix's own directories dropped), checking the blob's digest,
/// size and `diff_id` on the way. Headers are re-made the way the builder makes them, so the
/// result is the artifact's layer byte for byte; the caller compares its diff_id with the one
/// `envpack.json` records. Nothing is extracted.
fn rewrite_checked(
    file: &Path,
    desc: &Desc,
    diff_id: &Sha256Digest,
    prefix: &str,
    epoch: u64,
    name: &str,
    out_dir: &Path,
) -> anyhow::Result<(LayerDesc, PathBuf)> {
    let out_path = out_dir.join(format!("{name}.tar"));
    let out = fs_err::File::create(&out_path)?;
    let mut tar_out = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, out));
    with_checked_layer(file, desc, diff_id, "re-writing", |tar| {
        copy_unprefixed(tar, prefix, epoch, &mut tar_out)
    })?;
    let (digest, len, buffered) = tar_out.into_parts();
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", out_path.display()))?;
    Ok((
        LayerDesc {
            name: name.to_string(),
            digest,
            size: len,
            diff_id: digest,
            uncompressed_size: len,
            compression: Compression::None,
        },
        out_path,
    ))
}

/// Copies the tar `input` to `out` with `prefix/` removed from every path, ending the archive.
fn copy_unprefixed(
    input: &mut dyn Read,
    prefix: &str,
    epoch: u64,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let with_slash = format!("{prefix}/");
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(input));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| anyhow!("env layer entry with a non-UTF-8 name"))?;
        let ty = entry.header().entry_type();
        let path = match ty {
            tar::EntryType::Directory => raw.strip_suffix('/').unwrap_or(&raw).to_string(),
            _ => raw.clone(),
        };
        let Some(rel) = path.strip_prefix(&with_slash) else {
            if path == prefix || prefix.starts_with(&format!("{path}/")) {
                continue;
            }
            bail!("env layer entry {path} lies outside {prefix}");
        };
        let mode = entry.header().mode().context("unreadable tar mode")?;
        let header = match ty {
            tar::EntryType::Directory => entry_header(
                &TreeEntry {
                    path: rel.to_string(),
                    kind: EntryKind::Dir,
                },
                epoch,
            )?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8(t.into_owned()))
                    .transpose()
                    .map_err(|_| anyhow!("{path}: non-UTF-8 symlink target"))?
                    .ok_or_else(|| anyhow!("{path}: symlink without a target"))?;
                entry_header(
                    &TreeEntry {
                        path: rel.to_string(),
                        kind: EntryKind::Symlink { target },
                    },
                    epoch,
                )?
            }
            tar::EntryType::Regular => {
                let exec = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                file_header(rel, entry.size(), exec, epoch)?
            }
            other => bail!(
                "env layer entry {path}: unsupported type (tar type byte {})",
                other.as_byte()
            ),
        };
        out.write_all(&header)?;
        if ty == tar::EntryType::Regular {
            let size = entry.size();
            let copied = std::io::copy(&mut entry, out)?;
            if copied != size {
                bail!("env layer entry {path}: {copied} of {size} bytes");
            }
            out.write_all(&END_OF_ARCHIVE[..padding(size)])?;
        }
    }
    out.write_all(&END_OF_ARCHIVE)?;
    Ok(())
}

/// Drains the compressed side to EOF (a decoder may stop before trailing bytes) and records
/// its digest and length there.
struct FinishOnEof<R: Read> {
    inner: Option<HashingReader<R>>,
    slot: std::sync::Arc<std::sync::Mutex<Option<(Sha256Digest, u64)>>>,
}

impl<R: Read> Read for FinishOnEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(r) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = r.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(r) = self.inner.take() {
                if let Ok(mut g) = self.slot.lock() {
                    *g = Some(r.finish());
                }
            }
        }
        Ok(n)
    }
}

impl<R: Read> Drop for FinishOnEof<R> {
    fn drop(&mut self) {
        // The gzip decoder stops at the end of the member; hash whatever follows too.
        if let Some(mut r) = self.inner.take() {
            if std::io::copy(&mut r, &mut std::io::sink()).is_ok() {
                if let Ok(mut g) = self.slot.lock() {
                    *g = Some(r.finish());
                }
            }
        }
    }
}

/// The env's facts from its `envpack.json`.
struct EnvInfo {
    name: String,
    platform: String,
    env_id: String,
    envpack_version: String,
    epoch: u64,
    lock_sha256: Sha256Digest,
    diff_ids: Vec<(String, Sha256Digest)>,
}

fn env_info(bytes: &[u8]) -> anyhow::Result<EnvInfo> {
    let v: Value = serde_json::from_slice(bytes).context("envpack.json is not JSON")?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("envpack.json has no {k}"))
    };
    let diff_ids = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("envpack.json has no layers"))?
        .iter()
        .map(|l| {
            let name = l
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let d = l
                .get("diff_id")
                .and_then(Value::as_str)
                .and_then(|d| Sha256Digest::parse_prefixed(d).ok())
                .ok_or_else(|| anyhow!("envpack.json layer {name} has no diff_id"))?;
            Ok((name, d))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(EnvInfo {
        name: s("name")?,
        platform: s("platform")?,
        env_id: s("env_id")?,
        envpack_version: s("envpack_version")?,
        epoch: v
            .get("epoch")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("envpack.json has no epoch"))?,
        lock_sha256: Sha256Digest::parse_prefixed(&s("lock_sha256")?)?,
        diff_ids,
    })
}

/// Finds the single `opt/envpack/<name>/envs/<slot>` directory holding `envpack.json`.
fn env_prefix(entries: &[TreeEntry]) -> anyhow::Result<String> {
    let found: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.path.strip_suffix("/envpack.json"))
        .filter(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            parts.len() == 5 && parts[0] == "opt" && parts[1] == "envpack" && parts[3] == "envs"
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        _ => bail!("the meta layer does not hold exactly one opt/envpack/<name>/envs/<env>/envpack.json; not an envpack image"),
    }
}

/// What [`restore_artifact`] produced.
#[derive(Debug, Clone)]
pub struct RestoredArtifact {
    /// The artifact file (in the work dir).
    pub path: PathBuf,
    /// Its env id.
    pub env_id: String,
    /// The platform manifest it came from.
    pub manifest_digest: String,
}

/// Rebuilds the portable artifact of `platform`'s image from `store` inside `work`.
pub fn restore_artifact(
    store: &mut dyn ImageStore,
    platform: &OciPlatform,
    work: &Path,
) -> anyhow::Result<RestoredArtifact> {
    let top = store.top()?;
    let mut manifest_desc = top.clone();
    let top_bytes = store.read_doc(&top)?;
    let mut manifest_bytes = top_bytes;
    let mut manifest = Document::parse(&top.media_type, &manifest_bytes, &top.digest)?;
    if manifest.index {
        manifest_desc = manifest.select_platform(platform)?;
        manifest_bytes = store.read_doc(&manifest_desc)?;
        manifest = Document::parse(
            &manifest_desc.media_type,
            &manifest_bytes,
            &manifest_desc.digest,
        )?;
        if manifest.index {
            bail!(
                "{} is an index inside an index; an envpack image lists platform manifests",
                manifest_desc.digest
            );
        }
    }
    let (_, blobs) = manifest.children();
    let (config_desc, layers) = blobs
        .split_first()
        .ok_or_else(|| anyhow!("manifest {} has no config", manifest_desc.digest))?;
    let config = ConfigLayers::parse(&store.read_doc(config_desc)?, &config_desc.digest)?;
    if config.os != platform.os || config.architecture != platform.arch {
        bail!(
            "the image is {}/{}, this host needs {}/{}",
            config.os,
            config.architecture,
            platform.os,
            platform.arch
        );
    }
    let (diff_ids, history) = (config.diff_ids, config.created_by);
    if diff_ids.len() != layers.len() {
        bail!(
            "image config lists {} diff_ids for {} layers",
            diff_ids.len(),
            layers.len()
        );
    }
    let ours: Vec<String> = LAYERS
        .iter()
        .chain([ROOT_LAYER].iter())
        .map(|n| format!("envpack: {n}"))
        .collect();
    if layers.len() < ours.len()
        || history.len() < ours.len()
        || history[history.len() - ours.len()..] != ours[..]
    {
        bail!(
            "not an envpack image: its last layers are not envpack's {}",
            LAYERS.join(", ")
        );
    }
    let first = layers.len() - ours.len();

    // Only the (small) meta layer is extracted, to learn where the env sits and what it is;
    // every layer is then re-written as a stream, never extracted.
    let scratch = work.join("image-tree");
    fs_err::create_dir_all(&scratch)?;
    let dir = Dir::open_ambient_dir(&scratch, ambient_authority())
        .with_context(|| format!("opening {}", scratch.display()))?;
    let env_layers = &layers[first..first + LAYERS.len()];
    let meta = LAYERS.len() - 1;
    let meta_file = store.blob_file(&env_layers[meta])?;
    let meta_entries =
        extract_checked(&meta_file, &env_layers[meta], &diff_ids[first + meta], &dir)?;
    let prefix = env_prefix(&meta_entries)?;
    let env_root = scratch.join(&prefix);
    let info = env_info(&fs_err::read(env_root.join("envpack.json"))?)?;
    let expected_prefix = format!(
        "{}/envs/{}",
        image_root(&info.name),
        env_slot(&info.name, &info.platform)
    );
    if prefix != expected_prefix {
        bail!("env found at {prefix}, but its envpack.json says {expected_prefix}");
    }
    let lock = fs_err::read(env_root.join("envpack.lock"))?;
    if Sha256Digest::of_bytes(&lock) != info.lock_sha256 {
        bail!("the env's envpack.lock does not match the lock_sha256 in its envpack.json");
    }

    let layer_dir = work.join("layers");
    fs_err::create_dir_all(&layer_dir)?;
    let blob_files = env_layers
        .iter()
        .map(|d| store.blob_file(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The artifact only lives until the unpacker has read it: plain tar layers, no compression.
    let written: Vec<(LayerDesc, PathBuf)> = (0..LAYERS.len())
        .into_par_iter()
        .map(|i| {
            rewrite_checked(
                &blob_files[i],
                &env_layers[i],
                &diff_ids[first + i],
                &prefix,
                info.epoch,
                LAYERS[i],
                &layer_dir,
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let mut descs: Vec<LayerDesc> = Vec::new();
    let mut files = Vec::new();
    for (i, (desc, file)) in written.into_iter().enumerate() {
        if let Some((name, want)) = info.diff_ids.get(i) {
            if *name != LAYERS[i] || *want != desc.diff_id {
                bail!(
                    "layer {} does not reproduce the env: diff_id {} but envpack.json records {name} {want}",
                    LAYERS[i],
                    desc.diff_id
                );
            }
        }
        descs.push(desc);
        files.push(file);
    }
    let index = ArtifactIndex {
        schema: 1,
        name: info.name.clone(),
        env_id: info.env_id.clone(),
        platform: info.platform.clone(),
        envpack_version: info.envpack_version.clone(),
        epoch: info.epoch,
        lock_sha256: info.lock_sha256,
        layers: descs,
    };
    let out = work.join(artifact_name(&info.name, &info.platform));
    write_artifact(&out, &index, &lock, &files, info.epoch)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(RestoredArtifact {
        path: out,
        env_id: info.env_id,
        manifest_digest: manifest_desc.digest,
    })
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
