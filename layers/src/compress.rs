//! Layer compression with fixed settings, so the same tar always compresses to the same bytes.

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{LayersError, Result};
use crate::zstd_frames::FramedEncoder;
use crate::zstd_parallel::ParallelDecoder;

/// zstd level; part of the output format (changing it changes every digest).
pub const ZSTD_LEVEL: i32 = 10;
/// gzip level; part of the output format.
pub const GZIP_LEVEL: u32 = 6;

/// A layer compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd, level 10, with frame checksum, in independent frames of
    /// [`FRAME_SIZE`](crate::zstd_frames::FRAME_SIZE) bytes of tar each.
    Zstd,
    /// gzip, level 6, header mtime 0, no name, OS byte 255.
    Gzip,
    /// Plain tar: for short-lived artifacts (an image re-packed for the unpacker) where
    /// compressing would only cost time.
    None,
}

impl Compression {
    /// File extension of a compressed layer.
    pub fn extension(&self) -> &str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
            Compression::None => "tar",
        }
    }

    /// The name used in configs and serialized data.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = LayersError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zstd" => Ok(Compression::Zstd),
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            _ => Err(LayersError::format(
                "compression",
                format!(
                    "\"{}\" (expected \"zstd\", \"gzip\" or \"none\")",
                    crate::shown_name(s)
                ),
            )),
        }
    }
}

/// A compressing writer that can end its stream and hand back the inner writer.
pub trait FinishWrite<W>: Write {
    /// Writes the stream trailer and returns the inner writer.
    fn finish(self: Box<Self>) -> Result<W>;
}

impl<W: Write> FinishWrite<W> for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> Result<W> {
        Ok(flate2::write::GzEncoder::finish(*self)?)
    }
}

/// The identity "compressor" of [`Compression::None`].
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite<W> for Plain<W> {
    fn finish(self: Box<Self>) -> Result<W> {
        Ok(self.0)
    }
}

/// A compressor over `w` with the format's fixed settings.
pub fn encoder<'a, W: Write + 'a>(c: Compression, w: W) -> Result<Box<dyn FinishWrite<W> + 'a>> {
    match c {
        Compression::Zstd => Ok(Box::new(FramedEncoder::new(w))),
        Compression::Gzip => {
            let enc = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(w, flate2::Compression::new(GZIP_LEVEL));
            Ok(Box::new(enc))
        }
        Compression::None => Ok(Box::new(Plain(w))),
    }
}

/// A decompressor over `r`; zstd frames are decompressed on several threads.
pub fn decoder<'a, R: Read + Send + 'a>(c: Compression, r: R) -> Result<Box<dyn Read + Send + 'a>> {
    match c {
        Compression::Zstd => Ok(Box::new(ParallelDecoder::new(r))),
        _ => serial_decoder(c, r),
    }
}

/// A decompressor over `r` on the calling thread only: the reference the parallel zstd
/// decoder is checked against.
pub fn serial_decoder<'a, R: Read + Send + 'a>(
    c: Compression,
    r: R,
) -> Result<Box<dyn Read + Send + 'a>> {
    match c {
        Compression::Zstd => Ok(crate::zstd_parallel::serial(r)?),
        Compression::Gzip => Ok(Box::new(flate2::read::GzDecoder::new(r))),
        Compression::None => Ok(Box::new(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;

    fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut enc = encoder(c, Vec::new()).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip_and_deterministic() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let a = compress(c, &data);
            let b = compress(c, &data);
            assert_eq!(Sha256Digest::of_bytes(&a), Sha256Digest::of_bytes(&b));
            if c == Compression::None {
                assert_eq!(a, data, "plain layers are the tar itself");
            } else {
                assert!(a.len() < data.len());
            }
            let mut out = Vec::new();
            decoder(c, &a[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn gzip_header_is_fixed() {
        let gz = compress(Compression::Gzip, b"x");
        // magic, deflate, no flags (no name), mtime 0, xfl, OS 255.
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        assert_eq!(gz[9], 255);
    }

    #[test]
    fn zstd_frame_has_checksum_flag() {
        let z = compress(Compression::Zstd, b"x");
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(z[4] & 0b100, 0b100, "content checksum flag");
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        let mut out = Vec::new();
        assert!(decoder(Compression::Zstd, &bad[..])
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }

    #[test]
    fn names_table() {
        for (s, c, ext) in [
            ("zstd", Compression::Zstd, "tar.zst"),
            ("gzip", Compression::Gzip, "tar.gz"),
            ("none", Compression::None, "tar"),
        ] {
            assert_eq!(s.parse::<Compression>().unwrap(), c);
            assert_eq!(c.extension(), ext);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
            assert_eq!(c.to_string(), s);
        }
        assert!("xz".parse::<Compression>().is_err());
    }
}
