//! SHA-256 digests and hashing reader/writer adapters.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::{LayersError, Result};

/// A SHA-256 digest; displayed and serialized as `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Digest of a byte slice.
    pub fn of_bytes(b: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(b).into())
    }

    /// Digest and length of a file's contents, streamed.
    pub fn of_file(p: &Path) -> Result<(Self, u64)> {
        let file = fs_err::File::open(p)?;
        Self::of_reader(file).map_err(|e| with_path(e, p).into())
    }

    /// Digest and length of everything `r` yields, read in large blocks (the default 8 KiB
    /// copy buffer costs a system call per 8 KiB).
    pub fn of_reader(mut r: impl Read) -> io::Result<(Self, u64)> {
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let got = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..got]);
            n += got as u64;
        }
        Ok((Sha256Digest(hasher.finalize().into()), n))
    }

    /// Lowercase hex without prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(LayersError::format(
                "sha256 digest",
                format!(
                    "\"{}\" is not 64 lowercase hex digits",
                    crate::shown_name(s)
                ),
            ));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| {
            LayersError::format(
                "sha256 digest",
                format!("\"{}\": {e}", crate::shown_name(s)),
            )
        })?;
        Ok(Sha256Digest(out))
    }

    /// Parses `sha256:<64 hex>`.
    pub fn parse_prefixed(s: &str) -> Result<Self> {
        match s.strip_prefix("sha256:") {
            Some(hex) => Self::from_hex(hex),
            None => Err(LayersError::format(
                "sha256 digest",
                format!(
                    "\"{}\" does not start with \"sha256:\"",
                    crate::shown_name(s)
                ),
            )),
        }
    }
}

/// Keeps the path in an error raised while streaming an already opened file.
pub(crate) fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_prefixed(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Digest and byte count of what was written.
    pub fn finish(self) -> (Sha256Digest, u64) {
        let (d, n, _) = self.into_parts();
        (d, n)
    }

    /// Digest, byte count and the inner writer (to finish or flush it).
    pub fn into_parts(self) -> (Sha256Digest, u64, W) {
        (
            Sha256Digest(self.hasher.finalize().into()),
            self.len,
            self.inner,
        )
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Digest and byte count of what was read.
    pub fn finish(self) -> (Sha256Digest, u64) {
        (Sha256Digest(self.hasher.finalize().into()), self.len)
    }

    /// Digest of what was read so far, without consuming the reader.
    pub fn current(&self) -> (Sha256Digest, u64) {
        (
            Sha256Digest(self.hasher.clone().finalize().into()),
            self.len,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn known_vectors() {
        assert_eq!(Sha256Digest::of_bytes(b"").to_hex(), EMPTY);
        assert_eq!(
            Sha256Digest::of_bytes(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, bool)] = &[
            (&format!("sha256:{EMPTY}"), true),
            (EMPTY, false),
            (&format!("sha512:{EMPTY}"), false),
            (&format!("sha256:{}", EMPTY.to_uppercase()), false),
            (&format!("sha256:{}", &EMPTY[1..]), false),
            (&format!("sha256:{EMPTY}0"), false),
            (&format!("sha256:{}g", &EMPTY[1..]), false),
        ];
        for (s, ok) in cases {
            assert_eq!(Sha256Digest::parse_prefixed(s).is_ok(), *ok, "{s}");
        }
    }

    #[test]
    fn display_and_serde_round_trip() {
        let d = Sha256Digest::of_bytes(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        let back: Sha256Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Sha256Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn hashing_adapters_agree_with_of_bytes() {
        let data = vec![7u8; 100_000];
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (d, n, inner) = w.into_parts();
        assert_eq!((d, n), (Sha256Digest::of_bytes(&data), 100_000));
        assert_eq!(inner, data);
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish(), (Sha256Digest::of_bytes(&data), 100_000));
    }

    #[test]
    fn of_file_names_missing_path() {
        let err = Sha256Digest::of_file(Path::new("/nonexistent/zzz")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/zzz"), "{err}");
    }
}
