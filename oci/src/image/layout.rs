//! Writing an OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use envpack_layers::canonical::to_canonical_vec;
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::LayerDesc;
use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};
use serde::Serialize;

use crate::error::Result;

/// The `oci-layout` file's exact bytes.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The OCI media type of a layer compressed with `c`.
pub fn layer_media_type(c: Compression) -> MediaType {
    match c {
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
        Compression::None => MediaType::ImageLayer,
    }
}

/// A descriptor for content of `media_type` with our digest type.
pub fn descriptor(media_type: MediaType, digest: &Sha256Digest, size: u64) -> Result<Descriptor> {
    let digest = Digest::from_str(&digest.to_string())?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// An image layout being written; blobs are content-addressed, so adding one twice is a no-op.
pub struct LayoutWriter {
    dir: PathBuf,
}

impl LayoutWriter {
    /// Starts a layout in `dir` (created if missing, expected empty).
    pub fn create(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir.join("blobs").join("sha256"))?;
        Ok(LayoutWriter {
            dir: dir.to_path_buf(),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the blob with `digest`.
    pub fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.to_hex())
    }

    /// Stores `bytes` as a blob and describes it.
    pub fn put_bytes(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor> {
        let digest = Sha256Digest::of_bytes(bytes);
        let dest = self.blob_path(&digest);
        if !dest.exists() {
            let tmp = dest.with_extension("tmp");
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs_err::rename(&tmp, &dest)?;
        }
        descriptor(media_type, &digest, bytes.len() as u64)
    }

    /// Stores `value` as canonical JSON (sorted keys, compact) and describes it.
    pub fn put_json<T: Serialize>(&self, media_type: MediaType, value: &T) -> Result<Descriptor> {
        self.put_bytes(media_type, &to_canonical_vec(value)?)
    }

    /// Moves a written layer file into the blobs and describes it.
    pub fn put_layer(&self, file: &Path, layer: &LayerDesc) -> Result<Descriptor> {
        let dest = self.blob_path(&layer.digest);
        if dest.exists() {
            fs_err::remove_file(file)?;
        } else {
            fs_err::rename(file, &dest)?;
        }
        descriptor(
            layer_media_type(layer.compression),
            &layer.digest,
            layer.size,
        )
    }

    /// Adds a copy of the existing file `src` as blob `desc`; its size must match, its digest
    /// was checked when it entered the cache. Never a hard link: a layout is the user's to
    /// move, edit or hand to other tools, and a link would let an edit in one layout change
    /// the cached blob and every other layout made from it.
    pub fn put_file(&self, src: &Path, desc: &Descriptor) -> Result<()> {
        let digest = Sha256Digest::parse_prefixed(desc.digest().as_ref())?;
        let dest = self.blob_path(&digest);
        if dest.exists() {
            return Ok(());
        }
        let len = fs_err::metadata(src)?.len();
        if len != desc.size() {
            return Err(std::io::Error::other(format!(
                "{} is {len} bytes, its descriptor says {}",
                src.display(),
                desc.size()
            ))
            .into());
        }
        let tmp = dest.with_extension("tmp");
        let _ = fs_err::remove_file(&tmp);
        // copy_file_range on Linux: the bytes don't pass through user space.
        fs_err::copy(src, &tmp)?;
        fs_err::rename(&tmp, &dest)?;
        Ok(())
    }

    /// Writes `index.json` and `oci-layout`, which make the directory a layout.
    pub fn finish(self, index: &ImageIndex) -> Result<PathBuf> {
        fs_err::write(self.dir.join("index.json"), to_canonical_vec(index)?)?;
        fs_err::write(self.dir.join("oci-layout"), OCI_LAYOUT)?;
        Ok(self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::create(&dir.path().join("l")).unwrap();
        let d1 = w.put_bytes(MediaType::ImageConfig, b"{}").unwrap();
        let d2 = w.put_bytes(MediaType::ImageConfig, b"{}").unwrap();
        assert_eq!(d1, d2);
        assert_eq!(d1.size(), 2);
        let hex = Sha256Digest::of_bytes(b"{}").to_hex();
        assert_eq!(d1.digest().to_string(), format!("sha256:{hex}"));
        assert_eq!(
            fs_err::read(dir.path().join("l/blobs/sha256").join(&hex)).unwrap(),
            b"{}"
        );
        let blobs = fs_err::read_dir(dir.path().join("l/blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 1, "temp files left behind");
    }

    #[test]
    fn media_types() {
        assert_eq!(
            layer_media_type(Compression::Gzip).to_string(),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            layer_media_type(Compression::Zstd).to_string(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}
