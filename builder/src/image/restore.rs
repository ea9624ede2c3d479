//! Turning one platform's envpack image back into the portable artifact it was built from,
//! so the unpacker restores it exactly as it restores a tarball.
//!
//! The image's env layers hold the env under `opt/envpack/<name>/envs/<name>-<platform>/`;
//! without that prefix they are byte-for-byte the layers the env id was computed from. Each
//! layer is streamed once — compressed digest and diff_id checked on the way — into scratch
//! space, then re-written unprefixed; the diff_ids must match the ones `envpack.json` records.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::{decoder, Compression};
use envpack_layers::digest::{HashingReader, Sha256Digest};
use envpack_layers::extract::{extract_layer, ExtractOptions};
use envpack_layers::layer::{write_layer, LayerDesc};
use envpack_layers::tree::TreeEntry;
use rayon::prelude::*;
use serde_json::Value;

use super::config::OciPlatform;
use super::layout_reader::{children, is_index_type, Desc};
use super::{env_slot, image_root, ROOT_LAYER};
use crate::package::{artifact_name, LAYERS};

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
}

/// Whether an index entry's platform object matches `want`.
pub fn platform_matches(p: &Value, want: &OciPlatform) -> bool {
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    if s("os") != Some(want.os.as_str()) || s("architecture") != Some(want.arch.as_str()) {
        return false;
    }
    match (s("variant"), want.variant.as_deref()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Picks the manifest for `want` out of an index.
pub fn select_platform(index: &Value, want: &OciPlatform) -> anyhow::Result<Desc> {
    let list = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the image index has no manifests list"))?;
    let mut offered = Vec::new();
    for m in list {
        let Some(p) = m.get("platform") else { continue };
        if platform_matches(p, want) {
            return Ok(Desc::from_value(m, "image index")?);
        }
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
        offered.push(format!("{}/{}", s("os"), s("architecture")));
    }
    bail!(
        "the image has no {}/{} manifest (it has: {}); build the lock with that platform",
        want.os,
        want.arch,
        if offered.is_empty() {
            "none".to_string()
        } else {
            offered.join(", ")
        }
    )
}

/// Reads `rootfs.diff_ids` and the `created_by` of each history entry that adds a layer.
fn config_layers(config: &Value) -> anyhow::Result<(Vec<Sha256Digest>, Vec<String>)> {
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("image config has no rootfs.diff_ids"))?
        .iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| Sha256Digest::parse_prefixed(s).ok())
                .ok_or_else(|| anyhow!("image config has a bad diff_id {d}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let history = config
        .get("history")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter(|e| {
                    !e.get("empty_layer")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .map(|e| {
                    e.get("created_by")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((diff_ids, history))
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

/// Streams layer `desc` into `dest`, checking its digest, size and `diff_id`; returns its
/// entries (paths as in the image).
fn extract_checked(
    file: &Path,
    desc: &Desc,
    diff_id: &Sha256Digest,
    dest: &Dir,
) -> anyhow::Result<Vec<TreeEntry>> {
    let compression = layer_compression(&desc.media_type)?;
    let compressed = std::sync::Arc::new(std::sync::Mutex::new(None));
    let f = fs_err::File::open(file)?;
    let outer = HashingReader::new(std::io::BufReader::with_capacity(1 << 20, f));
    let slot = compressed.clone();
    let outer = FinishOnEof {
        inner: Some(outer),
        slot,
    };
    let mut inner = HashingReader::new(decoder(compression, outer)?);
    let extracted = extract_layer(
        &mut inner,
        dest,
        &ExtractOptions {
            manifest: None,
            max_total_bytes: MAX_ENV_BYTES,
            ..Default::default()
        },
    );
    let entries = match extracted {
        Ok(e) => e,
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
            return Err(e).with_context(|| format!("extracting layer {}", desc.digest));
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
    Ok(entries)
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

/// Entries under `prefix/`, with the prefix removed (the prefix directories themselves go).
fn strip_prefix(entries: Vec<TreeEntry>, prefix: &str) -> anyhow::Result<Vec<TreeEntry>> {
    let with_slash = format!("{prefix}/");
    let mut out = Vec::new();
    for e in entries {
        if let Some(rest) = e.path.strip_prefix(&with_slash) {
            out.push(TreeEntry {
                path: rest.to_string(),
                kind: e.kind,
            });
        } else if !(prefix == e.path || prefix.starts_with(&format!("{}/", e.path))) {
            bail!("env layer entry {} lies outside {prefix}", e.path);
        }
    }
    Ok(out)
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
    if is_index_type(&top.media_type) {
        let index: Value =
            serde_json::from_slice(&manifest_bytes).context("image index is not JSON")?;
        manifest_desc = select_platform(&index, platform)?;
        manifest_bytes = store.read_doc(&manifest_desc)?;
    }
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).context("image manifest is not JSON")?;
    let (_, blobs) = children(&manifest, &manifest_desc.digest)?;
    let (config_desc, layers) = blobs
        .split_first()
        .ok_or_else(|| anyhow!("manifest {} has no config", manifest_desc.digest))?;
    let config: Value = serde_json::from_slice(&store.read_doc(config_desc)?)
        .context("image config is not JSON")?;
    let s = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
    if s("os") != platform.os || s("architecture") != platform.arch {
        bail!(
            "the image is {}/{}, this host needs {}/{}",
            s("os"),
            s("architecture"),
            platform.os,
            platform.arch
        );
    }
    let (diff_ids, history) = config_layers(&config)?;
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

    let scratch = work.join("image-tree");
    fs_err::create_dir_all(&scratch)?;
    let dir = Dir::open_ambient_dir(&scratch, ambient_authority())
        .with_context(|| format!("opening {}", scratch.display()))?;
    let mut per_layer = Vec::new();
    for (i, desc) in layers[first..first + LAYERS.len()].iter().enumerate() {
        let file = store.blob_file(desc)?;
        per_layer.push(extract_checked(&file, desc, &diff_ids[first + i], &dir)?);
    }
    let prefix = env_prefix(&per_layer[LAYERS.len() - 1])?;
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
    // The artifact only lives until the unpacker has read it: plain tar layers, no compression.
    let written: Vec<(LayerDesc, PathBuf)> = per_layer
        .into_par_iter()
        .enumerate()
        .map(|(i, entries)| {
            let entries = strip_prefix(entries, &prefix)?;
            write_layer(
                LAYERS[i],
                &env_root,
                &entries,
                info.epoch,
                Compression::None,
                &layer_dir,
            )
            .with_context(|| format!("re-writing layer {}", LAYERS[i]))
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
mod tests {
    use super::*;
    use serde_json::json;

    fn want(arch: &str, variant: Option<&str>) -> OciPlatform {
        OciPlatform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    #[test]
    fn selects_the_host_platform() {
        let d = |c: &str| format!("sha256:{}", c.repeat(64));
        let index = json!({"manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("a"), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("b"), "size": 2, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("c"), "size": 3}
        ]});
        assert_eq!(
            select_platform(&index, &want("amd64", None))
                .unwrap()
                .digest,
            d("b")
        );
        assert_eq!(
            select_platform(&index, &want("arm64", Some("v8")))
                .unwrap()
                .digest,
            d("a")
        );
        assert_eq!(
            select_platform(&index, &want("arm64", None))
                .unwrap()
                .digest,
            d("a")
        );
        assert!(select_platform(&index, &want("arm64", Some("v7"))).is_err());
        let err = select_platform(&index, &want("riscv64", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linux/amd64") && err.contains("linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn prefixes() {
        let e = |p: &str| TreeEntry {
            path: p.into(),
            kind: envpack_layers::tree::EntryKind::Dir,
        };
        let meta = vec![
            e("opt"),
            e("opt/envpack/dev/envs/dev-linux-x86_64/envpack.json"),
            e("opt/envpack/dev/envs/dev-linux-x86_64/bin"),
        ];
        assert_eq!(
            env_prefix(&meta).unwrap(),
            "opt/envpack/dev/envs/dev-linux-x86_64"
        );
        assert!(env_prefix(&[e("envpack.json")]).is_err());
        let p = "opt/envpack/dev/envs/dev-linux-x86_64";
        let stripped = strip_prefix(
            vec![
                e("opt"),
                e("opt/envpack"),
                e(p),
                e(&format!("{p}/bin")),
                e(&format!("{p}/bin/x")),
            ],
            p,
        )
        .unwrap();
        let paths: Vec<&str> = stripped.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["bin", "bin/x"]);
        assert!(strip_prefix(vec![e("etc/passwd")], p).is_err());
    }

    #[test]
    fn history_counts_only_layers() {
        let cfg = json!({"rootfs": {"diff_ids": [format!("sha256:{}", "a".repeat(64))]}, "history": [
            {"created_by": "ENV x", "empty_layer": true}, {"created_by": "envpack: root"}]});
        let (ids, hist) = config_layers(&cfg).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(hist, ["envpack: root"]);
        assert!(config_layers(&json!({})).is_err());
    }
}
