//! The portable artifact: one plain tar holding the index, the lock and the layer blobs.

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_vec;
use crate::compress::decoder;
use crate::digest::{with_path, HashingReader, HashingWriter, Sha256Digest};
use crate::error::{LayersError, Result};
use crate::layer::{LayerDesc, TempFile};
use crate::tarfmt::{file_header, padding, END_OF_ARCHIVE};

/// Name of the index member (first in the tar).
pub const INDEX_NAME: &str = "envpack-artifact.json";
/// Name of the lock member (second in the tar).
pub const LOCK_NAME: &str = "envpack.lock";
/// Directory of the layer blobs inside the tar.
pub const BLOBS_DIR: &str = "blobs/sha256/";
/// Current index schema.
pub const SCHEMA: u32 = 1;
/// Largest index accepted when reading.
pub const MAX_INDEX_BYTES: u64 = 1 << 20;
/// Largest lock accepted when reading.
pub const MAX_LOCK_BYTES: u64 = 16 << 20;

/// The artifact's table of contents, stored as canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactIndex {
    /// Format version; currently 1.
    pub schema: u32,
    /// Environment name.
    pub name: String,
    /// Environment id (directory name under `ROOT/envs`).
    pub env_id: String,
    /// Platform name.
    pub platform: String,
    /// Version of envpack that wrote it.
    pub envpack_version: String,
    /// The epoch used for every timestamp.
    pub epoch: u64,
    /// Digest of the lock member.
    pub lock_sha256: Sha256Digest,
    /// Layers in extraction order.
    pub layers: Vec<LayerDesc>,
}

impl ArtifactIndex {
    /// Canonical JSON (sorted keys, no spaces) with a trailing newline.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Plain strings, numbers and digests always serialize; a failure here is a bug.
        let mut v = to_canonical_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks the schema version.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let idx: ArtifactIndex =
            serde_json::from_slice(bytes).map_err(|source| LayersError::Json {
                what: format!("artifact index {INDEX_NAME}"),
                source,
            })?;
        if idx.schema != SCHEMA {
            return Err(LayersError::format(
                "artifact index",
                format!(
                    "schema {} is not supported (expected {SCHEMA}); use a matching envpack",
                    idx.schema
                ),
            ));
        }
        Ok(idx)
    }
}

/// Blob member names in tar order: distinct digests in order of first use.
fn blob_order(index: &ArtifactIndex) -> Vec<(Sha256Digest, u64)> {
    let mut out: Vec<(Sha256Digest, u64)> = Vec::new();
    for l in &index.layers {
        if !out.iter().any(|(d, _)| *d == l.digest) {
            out.push((l.digest, l.size));
        }
    }
    out
}

/// Writes the artifact to `out` (temp file, fsync, rename); returns its digest and size.
/// `layer_files[i]` holds the bytes of `index.layers[i]`.
pub fn write_artifact(
    out: &Path,
    index: &ArtifactIndex,
    lock: &[u8],
    layer_files: &[PathBuf],
    epoch: u64,
) -> Result<(Sha256Digest, u64)> {
    write_artifact_observed(out, index, lock, layer_files, epoch, &mut |_| {})
}

/// [`write_artifact`], handing every chunk written, in order, to `observe` (a signer hashes
/// the artifact as it is written instead of reading it again).
pub fn write_artifact_observed(
    out: &Path,
    index: &ArtifactIndex,
    lock: &[u8],
    layer_files: &[PathBuf],
    epoch: u64,
    observe: &mut dyn FnMut(&[u8]),
) -> Result<(Sha256Digest, u64)> {
    if layer_files.len() != index.layers.len() {
        return Err(LayersError::format(
            "artifact",
            format!(
                "{} layer files for {} layers",
                layer_files.len(),
                index.layers.len()
            ),
        ));
    }
    let lock_digest = Sha256Digest::of_bytes(lock);
    if lock_digest != index.lock_sha256 {
        return Err(LayersError::DigestMismatch {
            what: "lock in artifact index".into(),
            expected: index.lock_sha256,
            actual: lock_digest,
        });
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .to_string();
    let (temp, file) = TempFile::create(&dir, &stem)?;
    let tee = Tee {
        inner: file,
        observe,
    };
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, tee));

    let json = index.to_canonical_json();
    for (name, bytes) in [(INDEX_NAME, &json[..]), (LOCK_NAME, lock)] {
        w.write_all(&file_header(name, bytes.len() as u64, 0o644, epoch)?)?;
        w.write_all(bytes)?;
        w.write_all(&END_OF_ARCHIVE[..padding(bytes.len() as u64)])?;
    }
    let mut written: Vec<Sha256Digest> = Vec::new();
    for (desc, path) in index.layers.iter().zip(layer_files) {
        if written.contains(&desc.digest) {
            continue;
        }
        let name = format!("{BLOBS_DIR}{}", desc.digest.to_hex());
        w.write_all(&file_header(&name, desc.size, 0o644, epoch)?)?;
        let mut r = HashingReader::new(fs_err::File::open(path)?.take(desc.size + 1));
        let n = std::io::copy(&mut r, &mut w).map_err(|e| with_path(e, path))?;
        let (actual, _) = r.finish();
        if n != desc.size {
            return Err(LayersError::format(
                "layer file",
                format!(
                    "{}: {n} bytes or more, expected {}",
                    path.display(),
                    desc.size
                ),
            ));
        }
        if actual != desc.digest {
            return Err(LayersError::DigestMismatch {
                what: format!("layer {} ({})", desc.name, path.display()),
                expected: desc.digest,
                actual,
            });
        }
        w.write_all(&END_OF_ARCHIVE[..padding(desc.size)])?;
        written.push(desc.digest);
    }
    w.write_all(&END_OF_ARCHIVE)?;
    let (digest, size, buffered) = w.into_parts();
    let file = buffered
        .into_inner()
        .map_err(|e| LayersError::Io(e.into_error()))?
        .inner;
    file.sync_all()?;
    drop(file);
    temp.persist(out)?;
    sync_dir(&dir);
    Ok((digest, size))
}

/// A writer that shows what goes through it to `observe` (below the buffer: big chunks).
struct Tee<'a, W> {
    inner: W,
    observe: &'a mut dyn FnMut(&[u8]),
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        (self.observe)(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Makes the rename durable; best effort because not every platform can open directories.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// An opened, structurally validated artifact.
#[derive(Debug)]
pub struct ArtifactReader {
    path: PathBuf,
    index: ArtifactIndex,
    /// Digest of the index member's bytes as stored.
    index_digest: Sha256Digest,
    /// (offset, size) of the index member's bytes in the file.
    index_range: (u64, u64),
    lock: Vec<u8>,
    /// (offset, size) of each layer's blob, parallel to `index.layers`.
    ranges: Vec<(u64, u64)>,
}

impl ArtifactReader {
    /// Reads headers, index and lock; checks member names, order, sizes and the lock digest.
    pub fn open(path: &Path) -> Result<Self> {
        let bad =
            |detail: String| LayersError::format(format!("artifact {}", path.display()), detail);
        // Checked before opening: a FIFO or a device would block the read.
        if !fs_err::metadata(path)?.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let file = fs_err::File::open(path)?;
        // Guarded like the layers: an outer PAX header is otherwise read whole into memory.
        let mut archive = tar::Archive::new(crate::tar_guard::TarGuard::new(file));
        let mut members: Vec<(String, u64, u64)> = Vec::new();
        let mut index_bytes = Vec::new();
        let mut lock = Vec::new();
        let unreadable = |e: std::io::Error| {
            bad(format!(
                "unreadable tar structure ({}); the file is damaged or not an envpack artifact",
                crate::error::shown_name(&e.to_string())
            ))
        };
        for (i, entry) in archive.entries_with_seek().map_err(unreadable)?.enumerate() {
            let mut entry = entry.map_err(unreadable)?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| bad(format!("member {i} has a non-UTF-8 name")))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(format!(
                    "member \"{}\" is not a regular file",
                    crate::shown_name(&name)
                )));
            }
            let size = entry.size();
            let limit = match i {
                0 => Some((INDEX_NAME, MAX_INDEX_BYTES, &mut index_bytes)),
                1 => Some((LOCK_NAME, MAX_LOCK_BYTES, &mut lock)),
                _ => None,
            };
            if let Some((want, max, buf)) = limit {
                if name != want {
                    return Err(bad(format!(
                        "member {} is \"{}\", expected \"{want}\"",
                        i + 1,
                        crate::shown_name(&name)
                    )));
                }
                if size > max {
                    return Err(bad(format!(
                        "{name} is {size} bytes, more than the {max} allowed"
                    )));
                }
                entry.read_to_end(buf).map_err(|e| with_path(e, path))?;
            }
            members.push((name, entry.raw_file_position(), size));
        }
        if members.len() < 2 {
            return Err(bad(format!(
                "missing {INDEX_NAME} or {LOCK_NAME}; not an envpack artifact"
            )));
        }
        let index = ArtifactIndex::from_json(&index_bytes)?;
        let index_digest = Sha256Digest::of_bytes(&index_bytes);
        let index_range = (members[0].1, members[0].2);
        let lock_digest = Sha256Digest::of_bytes(&lock);
        if lock_digest != index.lock_sha256 {
            return Err(LayersError::DigestMismatch {
                what: format!("{LOCK_NAME} in {}", path.display()),
                expected: index.lock_sha256,
                actual: lock_digest,
            });
        }
        let blobs = blob_order(&index);
        let found = &members[2..];
        if found.len() != blobs.len() {
            return Err(bad(format!(
                "{} blobs, the index lists {}",
                found.len(),
                blobs.len()
            )));
        }
        for ((name, _, size), (digest, want_size)) in found.iter().zip(&blobs) {
            let want = format!("{BLOBS_DIR}{}", digest.to_hex());
            if *name != want {
                return Err(bad(format!(
                    "member \"{}\" where \"{want}\" was expected",
                    crate::shown_name(name)
                )));
            }
            if size != want_size {
                return Err(bad(format!(
                    "{name} is {size} bytes, the index says {want_size}"
                )));
            }
        }
        let ranges = index
            .layers
            .iter()
            .map(|l| {
                let pos = blobs.iter().position(|(d, _)| *d == l.digest).unwrap_or(0);
                (found[pos].1, found[pos].2)
            })
            .collect();
        Ok(ArtifactReader {
            path: path.to_path_buf(),
            index,
            index_digest,
            index_range,
            lock,
            ranges,
        })
    }

    /// The parsed index.
    pub fn index(&self) -> &ArtifactIndex {
        &self.index
    }

    /// Digest of the index member as stored: it pins the lock and every layer, so a signature
    /// over it covers the whole artifact.
    pub fn index_digest(&self) -> &Sha256Digest {
        &self.index_digest
    }

    /// Where the index member's bytes are in the file: (offset, size).
    pub fn index_range(&self) -> (u64, u64) {
        self.index_range
    }

    /// The lock bytes (digest already checked).
    pub fn lock_bytes(&self) -> &[u8] {
        &self.lock
    }

    /// Path of the artifact file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn blob(&self, i: usize) -> Result<std::io::Take<fs_err::File>> {
        let (offset, size) = *self.ranges.get(i).ok_or_else(|| {
            LayersError::format(
                "layer index",
                format!("{i} out of range ({} layers)", self.ranges.len()),
            )
        })?;
        let mut f = fs_err::File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f.take(size))
    }

    /// Re-hashes every layer blob against its digest; the error names the first bad layer.
    /// Blobs are hashed in parallel: one SHA-256 stream runs on one core, and the whole
    /// unpack waits for this check.
    pub fn verify_layers(&self) -> Result<()> {
        use rayon::prelude::*;
        let results: Vec<Result<()>> = (0..self.index.layers.len())
            .into_par_iter()
            .map(|i| self.verify_layer(i))
            .collect();
        results.into_iter().collect()
    }

    fn verify_layer(&self, i: usize) -> Result<()> {
        let l = &self.index.layers[i];
        let (actual, n) =
            Sha256Digest::of_reader(self.blob(i)?).map_err(|e| with_path(e, &self.path))?;
        if actual != l.digest || n != l.size {
            return Err(LayersError::DigestMismatch {
                what: format!(
                    "layer {i} \"{}\" in {}",
                    crate::shown_name(&l.name),
                    self.path.display()
                ),
                expected: l.digest,
                actual,
            });
        }
        Ok(())
    }

    /// Decompresses every layer to nowhere, checking its diff_id and uncompressed size, so
    /// a damaged index is caught before extraction writes anything.
    pub fn verify_uncompressed(&self) -> Result<()> {
        for i in 0..self.index.layers.len() {
            let mut r = self.open_layer(i)?;
            std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| {
                // Digest and size errors name the layer already; decoder errors do not.
                if e.get_ref().is_some_and(|inner| inner.is::<LayersError>()) {
                    LayersError::Io(e)
                } else {
                    LayersError::format(
                        format!(
                            "layer {i} \"{}\" in {}",
                            crate::shown_name(&self.index.layers[i].name),
                            self.path.display()
                        ),
                        format!("cannot be decompressed: {e}"),
                    )
                }
            })?;
        }
        Ok(())
    }

    /// The decompressed tar of layer `i`, on its own file handle. Reading it to EOF checks
    /// the diff_id; a mismatch surfaces as an `InvalidData` I/O error at the end.
    pub fn open_layer(&self, i: usize) -> Result<DiffIdReader> {
        self.open_layer_with(i, true)
    }

    /// Like [`Self::open_layer`], with the same length limit and end-of-stream length check,
    /// but without recomputing the diff_id. Only for extraction that checks every entry
    /// against a manifest carried by a digest-checked layer, after [`Self::verify_layers`]:
    /// the compressed digest then already fixes every byte, and the manifest proves the tree
    /// file by file, so a second SHA-256 pass over the whole stream proves nothing more.
    pub fn open_layer_unhashed(&self, i: usize) -> Result<DiffIdReader> {
        self.open_layer_with(i, false)
    }

    fn open_layer_with(&self, i: usize, hash: bool) -> Result<DiffIdReader> {
        let blob = self.blob(i)?;
        let l = &self.index.layers[i];
        Ok(DiffIdReader {
            inner: decoder(l.compression, blob)?,
            hasher: hash.then(Sha256::new),
            expected: l.diff_id,
            expected_len: l.uncompressed_size,
            read_so_far: 0,
            over_limit: false,
            what: format!(
                "layer {i} \"{}\" in {}",
                crate::shown_name(&l.name),
                self.path.display()
            ),
        })
    }
}

/// A reader that fails at EOF unless the bytes read match the expected length and (when
/// opened with [`ArtifactReader::open_layer`]) digest.
pub struct DiffIdReader {
    inner: Box<dyn Read + Send>,
    hasher: Option<Sha256>,
    expected: Sha256Digest,
    expected_len: u64,
    /// Bytes decompressed so far; checked on every read so a bomb stops at the limit.
    read_so_far: u64,
    /// The stream went past `expected_len`; every further read fails.
    over_limit: bool,
    what: String,
}

impl Read for DiffIdReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.over_limit {
            let err = LayersError::format(
                self.what.clone(),
                format!(
                    "decompresses to more than the {} bytes the index declares \
                     (decompression bomb or tampered index); nothing past the limit was read",
                    self.expected_len
                ),
            );
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, err));
        }
        let mut n = self.inner.read(buf)?;
        let allowed = self.expected_len.saturating_sub(self.read_so_far);
        if n as u64 > allowed {
            // Hand out the bytes up to the limit first, so a reader parsing them (with its
            // own, more specific limits) sees the same stream however large its reads are.
            self.over_limit = true;
            n = allowed as usize;
            if n == 0 {
                return self.read(buf);
            }
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.read_so_far += n as u64;
        if n == 0 && !buf.is_empty() {
            let len = self.read_so_far;
            let actual = self
                .hasher
                .as_ref()
                .map(|h| Sha256Digest(h.clone().finalize().into()));
            let digest_ok = actual.is_none_or(|a| a == self.expected);
            if !digest_ok || len != self.expected_len {
                let err = match actual {
                    Some(actual) => LayersError::DigestMismatch {
                        what: format!("uncompressed {} ({len} bytes)", self.what),
                        expected: self.expected,
                        actual,
                    },
                    None => LayersError::format(
                        self.what.clone(),
                        format!(
                            "decompresses to {len} bytes, the index declares {}",
                            self.expected_len
                        ),
                    ),
                };
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, err));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "artifact_tests.rs"]
mod tests;
